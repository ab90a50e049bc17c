//! `strategy = "fedavg"` of `mpi.train`: federated averaging (McMahan et al. 2017) with one client
//! per MPI rank (`scalelab_ml::mlp::fedavg`). The clients' shards are non-IID: label skew `skew`
//! and quantity skew `quantity_skew` (power-law shard sizes). Two servers:
//!
//! * **`aggregation = "sync"`** (FedAvg). A round: every client that takes part (a seeded draw
//!   leaves `⌊drop · K⌋` out) trains the global model locally for `epochs` epochs on its shard;
//!   seeded stragglers sleep `straggler_ms` before reporting when the server waits for them
//!   (`straggler_policy = "wait"`), or report past the deadline and are discarded (`"skip"`);
//!   then the clients' weights are gathered (`MPI_Allgather`, the dropped and late clients' too,
//!   since MPI needs every rank, but ignored) and every rank computes the server's
//!   sample-weighted average in client order: the same operations on the same bits, so every
//!   rank holds the same global model. Checked after every repetition against the serial
//!   simulation (`fedavg::simulate`, all clients in one process, untimed in `prepare`): the global
//!   weights after **every** round bit for bit, and each client's momentum.
//! * **`aggregation = "async"`** (FedAsync, `fedavg::Server`). Rank 0 is the server and ranks
//!   `1 … K` the clients (`ranks = K + 1`). The server takes the updates in the order they arrive
//!   (`MPI_Mprobe` from any source), mixes each in with weight `mixing · (1 + τ)^−a`
//!   (`a` = `staleness_exponent`, `τ` its staleness), logs (client, base version) and sends the
//!   client the new model and version; a client trains, sends, and waits only for that reply.
//!   (A server that also trained as client 0 was tried: on an oversubscribed node every exchange
//!   costs a context switch, the server spent its time serving, and client 0's first update came
//!   60 versions stale.)
//!   Each client trains `rounds` local rounds (less its dropped ones), so the clients do the
//!   same work as under `"sync"`, but nobody waits for a straggler. Which update arrives when is
//!   up to the machine, so the check replays the server's log: the log is broadcast in `verify`,
//!   every rank replays it serially (`fedavg::replay`), and the server's every version, each
//!   model a client was sent, and each client's momentum must equal the replay's bit for bit.
//! * **`aggregation = "buffered"`** (FedBuff, `fedavg::BufferedServer`). The same placement and
//!   exchange as async, but a client sends its delta `w_k − w_b` (`fedavg::delta`) and the server
//!   buffers `s(τ)·Δ` in the order of arrival, replying at once with its current model; once
//!   `buffer` (`M`) updates are held it steps `w ← w + (server_lr / M) · Σ s(τ_i)·Δ_i` and bumps
//!   the version (the run's last update closes a partial buffer). The log of arrivals fixes which
//!   updates make which version (`M` each, in order), so the check is async's with
//!   `fedavg::replay_buffered`; a version that differs is named with the updates folded into it
//!   (`fedavg::check_versions`).
//!
//! Records: `loss` and `accuracy` of the final global model on the held-out fifth, the curve as
//! the detail `round_curve` (`round:loss:accuracy; …`: async, after every `U / rounds` applied
//! updates, `U` the updates of the run; buffered, the first version holding those updates),
//! `time_curve` (`seconds:loss:accuracy` at the same points, the wall time at which the server
//! had that model), `client_rows` (each client's shard size), async `apply_log` (`client@base`
//! per applied update; buffered, per arrival, the updates of one server step separated by `; `),
//! `samples_per_s` (samples all clients trained, per second), `compute_s` (local training, a
//! straggler's delay included), `comm_s` (sync: the averaging, waiting for stragglers included;
//! async and buffered: a client's wait for the server's reply; the server counts neither), `round_s`, `bytes_per_round`, `mem_per_rank_bytes`,
//! `clients_reporting` (per round), `updates_applied`, `staleness_mean` and `staleness_max` (0 for
//! sync) and `rounds`.

use std::time::{Duration, Instant};

use ::mpi::collective::{CommunicatorCollectives, Root};
use ::mpi::point_to_point::{Destination, Source};
use ::mpi::topology::Communicator;
use ::mpi::Tag;
use scalelab_ml::mlp::fedavg::{
    self, Applied, BufferedServer, Buffering, Client, FedConfig, Mixing, Part, Server,
};
use scalelab_ml::mlp::sharded::model_state_bytes;
use scalelab_ml::mlp::{Mlp, Trainer};

use super::{count, text, Data, Setup};
use crate::workload::{Comm, Instance, Params};

/// The federated options of a point, checked.
#[derive(Clone, Copy, Debug)]
pub(super) struct Fed {
    pub(super) cfg: FedConfig,
    pub(super) rounds: usize,
    skew: f64,
    /// The quantity skew: the exponent of the clients' power-law shares.
    quantity: f64,
    drop: f64,
    stragglers: f64,
    straggler_ms: f64,
    /// Whether the server waits for stragglers (`straggler_policy = "wait"`) or discards their
    /// late models (`"skip"`).
    wait: bool,
    /// Which server aggregates the clients' models (`aggregation`).
    server: Aggregation,
}

/// The server of a federated run (`aggregation`).
#[derive(Clone, Copy, Debug)]
pub(super) enum Aggregation {
    /// `"sync"`: FedAvg rounds, the average on every rank.
    Sync,
    /// `"async"`: FedAsync on rank 0, each arriving model mixed in.
    Async(Mixing),
    /// `"buffered"`: FedBuff on rank 0, a step per `M` buffered deltas.
    Buffered(Buffering),
}

impl Aggregation {
    /// Whether rank 0 is a server of its own (async and buffered).
    fn has_server_rank(self) -> bool {
        !matches!(self, Aggregation::Sync)
    }

    /// The updates folded into one version: `M` when buffered, 1 otherwise (sync's rounds are
    /// no log's).
    fn buffer(self) -> usize {
        match self {
            Aggregation::Buffered(b) => b.size,
            _ => 1,
        }
    }

    /// The `aggregation` value, for messages.
    fn name(self) -> &'static str {
        match self {
            Aggregation::Sync => "sync",
            Aggregation::Async(_) => "async",
            Aggregation::Buffered(_) => "buffered",
        }
    }
}

/// Read and check the federated options of a point on `ranks` ranks (sync: one client per rank;
/// async and buffered: rank 0 the server, the others clients); `setup` has already checked the
/// local batch against the grain.
pub(super) fn fed(name: &str, params: &Params, setup: &Setup, ranks: usize) -> Result<Fed, String> {
    let aggregation = text(params, "aggregation")?;
    let asynchronous = aggregation != "sync";
    if asynchronous && ranks < 2 {
        let server = if aggregation == "buffered" {
            "buffered"
        } else {
            "asynchronous"
        };
        return Err(format!(
            "{name}: aggregation = \"{aggregation}\" with 1 rank: rank 0 is the {server} server \
             and every other rank a client, so there is no client; use ranks = K + 1 for K \
             clients (e.g. ranks = 2 for one client, 5 for four)"
        ));
    }
    let clients = if asynchronous { ranks - 1 } else { ranks };
    let skew = params.float("skew");
    if !(0.0..=1.0).contains(&skew) {
        return Err(format!(
            "{name}: skew = {skew}: the label skew is the share of each client's rows drawn from \
             its own classes; use a value in [0, 1] (0 = IID, 1 = each client sees only its own \
             classes)"
        ));
    }
    let quantity = params.float("quantity_skew");
    if !(quantity.is_finite() && quantity >= 0.0) {
        return Err(format!(
            "{name}: quantity_skew = {quantity}: the quantity skew is the exponent a of the \
             clients' power-law shares of the rows (∝ 1, 2^−a, 3^−a, …); use a finite a ≥ 0 \
             (0 = equal shares; with 4 clients 1 gives 48/24/16/12 %, 2 gives 70/18/8/4 %)"
        ));
    }
    let drop = params.float("drop");
    if !(0.0..=1.0).contains(&drop) {
        return Err(format!(
            "{name}: drop = {drop}: the share of clients that do not report in a round must be \
             in [0, 1); use e.g. drop = 0.25"
        ));
    }
    let dropped = fedavg::dropped_count(clients, drop);
    if dropped >= clients {
        let plural = if clients == 1 { "client" } else { "clients" };
        return Err(format!(
            "{name}: drop = {drop} with {clients} {plural} drops ⌊{drop} × {clients}⌋ = {dropped} \
             {plural} every round, so no client reports and the server has nothing to average; \
             use drop < 1 (e.g. drop = {} drops {} of {clients})",
            (clients - 1) as f64 / clients as f64,
            clients - 1
        ));
    }
    let stragglers = params.float("stragglers");
    if !(0.0..=1.0).contains(&stragglers) {
        return Err(format!(
            "{name}: stragglers = {stragglers}: the share of clients slowed in a round must be \
             in [0, 1]; use e.g. stragglers = 0.25"
        ));
    }
    let straggler_ms = params.float("straggler_ms");
    if !(straggler_ms.is_finite() && (0.0..=60_000.0).contains(&straggler_ms)) {
        return Err(format!(
            "{name}: straggler_ms = {straggler_ms}: a straggler's delay per round must be 0 to \
             60000 milliseconds"
        ));
    }
    let wait = text(params, "straggler_policy")? != "skip";
    let server = match aggregation {
        "async" => Aggregation::Async(mixing(name, params, wait)?),
        "buffered" => Aggregation::Buffered(buffering(name, params, wait, clients)?),
        _ => Aggregation::Sync,
    };
    Ok(Fed {
        cfg: FedConfig {
            clients,
            epochs: count(params, "epochs")?,
            batch: setup.schedule.batch,
            grain: setup.schedule.grain,
            sgd: setup.sgd,
        },
        rounds: count(params, "rounds")?,
        skew,
        quantity,
        drop,
        stragglers,
        straggler_ms,
        wait,
        server,
    })
}

/// The asynchronous server's mixing (`mixing`, `staleness_exponent`), checked; a deadline
/// (`straggler_policy = "skip"`) is refused, as the server never waits.
fn mixing(name: &str, params: &Params, wait: bool) -> Result<Mixing, String> {
    let alpha = params.float("mixing");
    if !(alpha > 0.0 && alpha <= 1.0) {
        return Err(format!(
            "{name}: mixing = {alpha}: the asynchronous server mixes an arriving model in as \
             w ← (1 − α·s(τ))·w + α·s(τ)·w_k, so α must be in (0, 1]; use e.g. mixing = 0.6 \
             (1 replaces the global model by a fresh update)"
        ));
    }
    let exponent = staleness_exponent(name, params)?;
    if !wait {
        return Err(format!(
            "{name}: straggler_policy = \"skip\" with aggregation = \"async\": the \
             asynchronous server never closes a round, so there is no deadline to skip \
             stragglers at (their updates are mixed in when they arrive, weighted down by their \
             staleness); use straggler_policy = \"wait\" (the default) with async, or \
             aggregation = \"sync\" for a deadline"
        ));
    }
    Ok(Mixing { alpha, exponent })
}

/// The staleness exponent `a` of `s(τ) = (1 + τ)^−a` (async and buffered), checked.
fn staleness_exponent(name: &str, params: &Params) -> Result<f64, String> {
    let exponent = params.float("staleness_exponent");
    if !(exponent.is_finite() && exponent >= 0.0) {
        return Err(format!(
            "{name}: staleness_exponent = {exponent}: the staleness weight s(τ) = (1 + τ)^−a \
             must not grow with staleness; use a finite a ≥ 0 (e.g. 0.5; 0 ignores staleness)"
        ));
    }
    Ok(exponent)
}

/// The buffered server's step (`buffer`, `server_lr`, `staleness_exponent`) for `clients`
/// clients, checked. The buffer holds 1 to `clients` updates: FedBuff keeps `M` below the
/// clients in flight, and a larger buffer makes some client report twice from one version
/// before the server steps. A deadline (`straggler_policy = "skip"`) is refused, as for async.
fn buffering(name: &str, params: &Params, wait: bool, clients: usize) -> Result<Buffering, String> {
    let size = params.int("buffer");
    if size < 1 || size > clients as u64 {
        let plural = if clients == 1 { "client" } else { "clients" };
        return Err(format!(
            "{name}: buffer = {size} with {clients} {plural}: the buffered server steps once it \
             holds M client updates, and M must be from 1 to the client count (a larger buffer \
             makes some client report twice from one version before the server steps); use \
             e.g. buffer = {} (1 steps on every update)",
            clients.min(2)
        ));
    }
    let server_lr = params.float("server_lr");
    if !(server_lr.is_finite() && server_lr > 0.0) {
        return Err(format!(
            "{name}: server_lr = {server_lr}: the buffered server steps \
             w ← w + η · Σ s(τ_i)·Δ_i / M along the buffered updates' weighted mean delta, so \
             the server learning rate η must be a finite number > 0; use e.g. server_lr = 1 \
             (the mean delta itself)"
        ));
    }
    let exponent = staleness_exponent(name, params)?;
    if !wait {
        return Err(format!(
            "{name}: straggler_policy = \"skip\" with aggregation = \"buffered\": the \
             buffered server never closes a round, so there is no deadline to skip stragglers \
             at (it steps once any M updates have arrived; a straggler's update joins a later \
             buffer, weighted down by its staleness); use straggler_policy = \"wait\" (the \
             default) with buffered, or aggregation = \"sync\" for a deadline"
        ));
    }
    Ok(Buffering {
        size: size as usize,
        server_lr,
        exponent,
    })
}

impl Fed {
    /// Clients slowed per round: `⌊stragglers · K⌋`.
    fn straggler_count(&self) -> usize {
        fedavg::dropped_count(self.cfg.clients, self.stragglers)
    }

    /// The share of clients that report in a round.
    pub(super) fn reporting_share(&self) -> f64 {
        let k = self.cfg.clients;
        (k - fedavg::dropped_count(k, self.drop)) as f64 / k as f64
    }

    /// Words of model state a rank keeps beyond one replica, in units of the parameter count:
    /// the serial reference's clients (weights, momentum, trainer) and the global weights of
    /// every round, simulated and run; async: every version, on the server and in the replay,
    /// and the models each client was sent; buffered: as async (no more versions, one model
    /// sent per update), and the buffer's sum.
    pub(super) fn state_words(&self) -> f64 {
        let (k, rounds) = (self.cfg.clients as f64, self.rounds as f64);
        match self.server {
            Aggregation::Sync => 4.0 * k + 2.0 * rounds,
            Aggregation::Async(_) => 4.0 * k + 2.0 * k * rounds + rounds,
            Aggregation::Buffered(_) => 4.0 * k + 2.0 * k * rounds + rounds + 1.0,
        }
    }

    /// The drop and straggler draws of round `round`, and each client's part in it.
    fn round(&self, round: usize, seed: u64) -> (Vec<bool>, Vec<Part>) {
        let dropped = fedavg::dropped(round, self.cfg.clients, self.drop, seed);
        let slow = fedavg::stragglers(round, &dropped, self.straggler_count(), seed);
        let parts = fedavg::parts(&dropped, &slow, self.wait);
        (slow, parts)
    }
}

/// The tags of the asynchronous exchange: a client's update (its model, then its base version)
/// to the server, and the server's reply (the new model, then its version).
const UPDATE: Tag = 61;
const REPLY: Tag = 62;

/// One client (rank) of a federated run.
pub(super) struct FedInstance {
    rank: usize,
    comm: Comm,
    fed: Fed,
    seed: u64,
    data: Data,
    shards: Vec<Vec<usize>>,
    initial: Mlp,
    /// Sync: the simulation's global weights after each round, and this client's final momentum.
    reference: Vec<Vec<f64>>,
    reference_velocity: Vec<f64>,
    /// Samples all clients train over the rounds (every rank knows every shard and every draw).
    samples: usize,
    /// Models the server counts over the run (sync: reporting clients summed over the rounds;
    /// async: the updates it applies).
    reporting: usize,
    /// Async: updates each client sends (its rounds less its dropped ones; none without rows).
    quota: Vec<usize>,
    client: Option<Client>,
    /// Sync: the global weights after each round; async (rank 0): every version of the model.
    history: Vec<Vec<f64>>,
    /// Rank 0: the seconds into the run at which each round closed (sync) or each update was
    /// applied (async).
    times: Vec<f64>,
    /// Async: the server's log (rank 0's, broadcast in `verify`), and the (version, model) pairs
    /// this client was sent.
    log: Vec<Applied>,
    received: Vec<(usize, Vec<f64>)>,
    wall_s: f64,
    compute_s: f64,
    comm_s: f64,
    bytes_sent: f64,
    /// (round, loss, accuracy, seconds) after each round (async: each `U / rounds` updates).
    curve: Vec<(usize, f64, f64, f64)>,
    loss: f64,
    accuracy: f64,
}

impl FedInstance {
    pub(super) fn new(
        comm: &Comm,
        setup: &Setup,
        fed: Fed,
        data: Data,
        initial: Mlp,
    ) -> FedInstance {
        let rank = comm.rank() as usize;
        let shards = fedavg::split(
            &data.train,
            &data.labels,
            data.classes,
            fed.cfg.clients,
            fed.skew,
            fed.quantity,
            setup.seed,
        );
        let (reference, reference_velocity) = match fed.server {
            Aggregation::Sync => {
                let (reference, clients) = fedavg::simulate(
                    &data.x,
                    &data.labels,
                    &shards,
                    &initial,
                    &fed.cfg,
                    fed.rounds,
                    |round| fed.round(round, setup.seed).1,
                );
                let velocity = clients[rank].trainer.mlp.velocity.clone();
                (reference, velocity)
            }
            // An asynchronous run is replayed from its log after it ran.
            Aggregation::Async(_) | Aggregation::Buffered(_) => (Vec::new(), Vec::new()),
        };
        let (mut samples, mut reporting) = (0, 0);
        let mut quota = vec![0; fed.cfg.clients];
        for round in 0..fed.rounds {
            let parts = fed.round(round, setup.seed).1;
            for (k, (shard, part)) in shards.iter().zip(parts).enumerate() {
                if part.trains() {
                    samples += fed.cfg.epochs * shard.len().div_ceil(fed.cfg.batch) * fed.cfg.batch;
                }
                // A client without rows never reports to the asynchronous server.
                quota[k] += usize::from(part.trains() && !shard.is_empty());
                reporting += usize::from(part.counted());
            }
        }
        if fed.server.has_server_rank() {
            reporting = quota.iter().sum();
        }
        FedInstance {
            rank,
            comm: comm.duplicate(),
            fed,
            seed: setup.seed,
            reference_velocity,
            reference,
            samples,
            reporting,
            quota,
            data,
            shards,
            initial,
            client: None,
            history: Vec::new(),
            times: Vec::new(),
            log: Vec::new(),
            received: Vec::new(),
            wall_s: 0.0,
            compute_s: 0.0,
            comm_s: 0.0,
            bytes_sent: 0.0,
            curve: Vec::new(),
            loss: f64::NAN,
            accuracy: f64::NAN,
        }
    }

    /// Synchronous FedAvg: rounds closed by an allgather and the average on every rank.
    fn run_sync(&mut self) {
        let (initial, rows) = (&self.initial, &self.shards[self.rank]);
        let client = self
            .client
            .get_or_insert_with(|| Client::new(initial, rows.clone()));
        let (k, p) = (self.fed.cfg.clients, initial.params.len());
        let mut global = initial.params.clone();
        let mut gathered = vec![0.0; k * p];
        self.history.clear();
        self.times.clear();
        let (mut compute_s, mut comm_s) = (0.0, 0.0);
        let start = Instant::now();
        for round in 0..self.fed.rounds {
            let t0 = Instant::now();
            let (slow, parts) = self.fed.round(round, self.seed);
            if parts[self.rank].trains() {
                client.train_round(&self.data.x, &self.data.labels, &global, &self.fed.cfg);
            }
            // A straggler the server waits for delays the round; one it skips reports after the
            // deadline, when the round has closed (its model is discarded below), so its delay
            // is not slept.
            if slow[self.rank] && self.fed.wait {
                std::thread::sleep(Duration::from_secs_f64(self.fed.straggler_ms / 1e3));
            }
            let t1 = Instant::now();
            self.comm
                .all_gather_into(&client.trainer.mlp.params[..], &mut gathered[..]);
            let models: Vec<(&[f64], usize)> = (0..k)
                .filter(|&c| parts[c].counted())
                .map(|c| (&gathered[c * p..(c + 1) * p], self.shards[c].len()))
                .collect();
            fedavg::average(&models, &mut global);
            self.history.push(global.clone());
            self.times.push(start.elapsed().as_secs_f64());
            compute_s += (t1 - t0).as_secs_f64();
            comm_s += t1.elapsed().as_secs_f64();
        }
        self.wall_s = start.elapsed().as_secs_f64();
        (self.compute_s, self.comm_s) = (compute_s, comm_s);
        self.bytes_sent = 8.0 * (p * (k - 1) * self.fed.rounds) as f64;
    }

    /// The client this rank plays: its own rank under sync; under async and buffered rank
    /// `r ≥ 1` is client `r − 1` and rank 0 the server (none).
    fn client_index(&self) -> Option<usize> {
        match self.fed.server.has_server_rank() {
            false => Some(self.rank),
            true => self.rank.checked_sub(1),
        }
    }

    /// Asynchronous FedAvg (FedAsync or FedBuff): rank 0 serves in order of arrival, the others
    /// train and report.
    fn run_async(&mut self) {
        let p = self.initial.params.len();
        let total: usize = self.quota.iter().sum();
        let (mut compute_s, mut comm_s, mut bytes) = (0.0, 0.0, 0.0);
        self.received.clear();
        let start = Instant::now();
        match self.client_index() {
            None => {
                let server = match self.fed.server {
                    Aggregation::Buffered(b) => {
                        Rule::Buffer(BufferedServer::new(&self.initial.params, b, true))
                    }
                    Aggregation::Async(m) => Rule::Mix(Server::new(&self.initial.params, m, true)),
                    Aggregation::Sync => unreachable!("the synchronous run has no server rank"),
                };
                let mut hub = Hub {
                    comm: &self.comm,
                    server,
                    total,
                    buf: vec![0.0; p + 1],
                    times: Vec::with_capacity(total),
                    start,
                    bytes: 0.0,
                };
                while hub.server.log().len() < total {
                    hub.serve_one();
                }
                // The server trains nothing and mostly waits; `comm_s` is the clients' wait.
                bytes = hub.bytes;
                self.times = std::mem::take(&mut hub.times);
                (self.log, self.history) = hub.server.into_parts();
            }
            Some(k) => {
                let (initial, rows) = (&self.initial, &self.shards[k]);
                let client = self
                    .client
                    .get_or_insert_with(|| Client::new(initial, rows.clone()));
                let (x, labels, cfg) = (&self.data.x, &self.data.labels, &self.fed.cfg);
                let delay = Duration::from_secs_f64(self.fed.straggler_ms / 1e3);
                let server = self.comm.process_at_rank(0);
                let mut buf = vec![0.0; p + 1];
                let mut global = initial.params.clone();
                let mut base = 0usize;
                let deltas = matches!(self.fed.server, Aggregation::Buffered(_));
                for round in 0..self.fed.rounds {
                    let (slow, parts) = self.fed.round(round, self.seed);
                    if !parts[k].trains() || rows.is_empty() {
                        continue;
                    }
                    let t0 = Instant::now();
                    client.train_round(x, labels, &global, cfg);
                    if slow[k] {
                        std::thread::sleep(delay);
                    }
                    let t1 = Instant::now();
                    if deltas {
                        // FedBuff: the delta from the version it started from.
                        fedavg::delta(&client.trainer.mlp.params, &global, &mut buf[..p]);
                    } else {
                        buf[..p].copy_from_slice(&client.trainer.mlp.params);
                    }
                    buf[p] = base as f64;
                    server.send_with_tag(&buf[..], UPDATE);
                    server.receive_into_with_tag(&mut buf[..], REPLY);
                    global.copy_from_slice(&buf[..p]);
                    base = buf[p] as usize;
                    self.received.push((base, global.clone()));
                    bytes += 8.0 * (p + 1) as f64;
                    compute_s += (t1 - t0).as_secs_f64();
                    comm_s += t1.elapsed().as_secs_f64();
                }
            }
        }
        self.wall_s = start.elapsed().as_secs_f64();
        (self.compute_s, self.comm_s, self.bytes_sent) = (compute_s, comm_s, bytes);
    }

    /// Check an asynchronous run: share the server's log, replay it, compare bit for bit.
    fn verify_async(&mut self, name: &str, client: Option<&Client>) -> Result<(), String> {
        // Every rank calls `verify` after `run`: the log goes out first, before any check can
        // return early.
        let total: usize = self.quota.iter().sum();
        let mut raw = vec![u64::MAX; 2 * total];
        if self.rank == 0 {
            for (slot, a) in raw.chunks_mut(2).zip(&self.log) {
                slot.copy_from_slice(&[a.client as u64, a.base as u64]);
            }
        }
        self.comm.process_at_rank(0).broadcast_into(&mut raw[..]);
        self.log = raw
            .chunks(2)
            .map(|a| Applied {
                client: usize::try_from(a[0]).unwrap_or(usize::MAX),
                base: usize::try_from(a[1]).unwrap_or(usize::MAX),
            })
            .collect();
        let (data, cfg) = (&self.data, &self.fed.cfg);
        let (shards, initial, log, quota) = (&self.shards, &self.initial, &self.log, &self.quota);
        let server = self.fed.server;
        let label = server.name();
        let (versions, clients) = match server {
            Aggregation::Async(mixing) => fedavg::replay(
                &data.x,
                &data.labels,
                shards,
                initial,
                cfg,
                mixing,
                log,
                quota,
            ),
            Aggregation::Buffered(buffering) => fedavg::replay_buffered(
                &data.x,
                &data.labels,
                shards,
                initial,
                cfg,
                buffering,
                log,
                quota,
            ),
            Aggregation::Sync => unreachable!("a synchronous run has no log"),
        }
        .map_err(|e| {
            format!("{name}: fedavg ({label}): the server's log cannot be replayed: {e}")
        })?;
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let differ = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count()
        };
        if self.rank == 0 {
            fedavg::check_versions(&self.history, &versions, &self.log, server.buffer())
                .map_err(|e| format!("{name}: fedavg ({label}) server: {e}"))?;
        }
        for (base, got) in &self.received {
            if bits(got) != bits(&versions[*base]) {
                return Err(format!(
                    "{name}: fedavg ({label}) rank {}: the model it was sent as version {base} \
                     differs from the replay's in {} of {} weights",
                    self.rank,
                    differ(got, &versions[*base]),
                    got.len()
                ));
            }
        }
        if let Some(k) = self.client_index() {
            let Some(client) = client else {
                return Err(format!("{name}: no training to check: run did not finish"));
            };
            let twin = &clients[k].trainer.mlp;
            if bits(&client.trainer.mlp.velocity) != bits(&twin.velocity)
                || bits(&client.trainer.mlp.params) != bits(&twin.params)
            {
                return Err(format!(
                    "{name}: fedavg ({label}) client {k} (rank {}): its model or momentum differs \
                     from the replay's bits",
                    self.rank
                ));
            }
        }
        // The curve's points: after every `U / rounds` updates (rounded up), U the run's; when
        // buffered, the first version holding that many (`⌈updates / M⌉`).
        let rounds = self.fed.rounds;
        let points: Vec<usize> = (1..=rounds)
            .map(|r| {
                (r * total)
                    .div_ceil(rounds.max(1))
                    .div_ceil(server.buffer())
            })
            .collect();
        self.history = points.iter().map(|&v| versions[v].clone()).collect();
        if self.rank == 0 {
            self.times = points
                .iter()
                .map(|&v| if v == 0 { 0.0 } else { self.times[v - 1] })
                .collect();
        }
        Ok(())
    }
}

/// The rule of the server on rank 0: FedAsync's mixing or FedBuff's buffer.
enum Rule {
    Mix(Server),
    Buffer(BufferedServer),
}

impl Rule {
    fn log(&self) -> &[Applied] {
        match self {
            Rule::Mix(s) => &s.log,
            Rule::Buffer(s) => &s.log,
        }
    }

    fn version(&self) -> usize {
        match self {
            Rule::Mix(s) => s.version(),
            Rule::Buffer(s) => s.version(),
        }
    }

    fn global(&self) -> &[f64] {
        match self {
            Rule::Mix(s) => &s.global,
            Rule::Buffer(s) => &s.global,
        }
    }

    /// The log and every version, the check's material.
    fn into_parts(self) -> (Vec<Applied>, Vec<Vec<f64>>) {
        match self {
            Rule::Mix(s) => (s.log, s.history),
            Rule::Buffer(s) => (s.log, s.history),
        }
    }
}

/// The asynchronous server on rank 0: the model, the exchange buffer, and the bytes it sent.
struct Hub<'c> {
    comm: &'c Comm,
    server: Rule,
    /// The updates of the run: the last closes a partial buffer.
    total: usize,
    buf: Vec<f64>,
    /// The seconds into the run at which each version was made.
    times: Vec<f64>,
    start: Instant,
    bytes: f64,
}

impl Hub<'_> {
    /// Wait for the next update from any client, apply it (mix it in, or buffer it and step when
    /// the buffer is full or the run's updates are all in), log it, and send the client the
    /// current model and its version.
    fn serve_one(&mut self) {
        let (message, status) = self.comm.any_process().matched_probe_with_tag(UPDATE);
        message.matched_receive_into(&mut self.buf[..]);
        let source = status.source_rank();
        let p = self.buf.len() - 1;
        let base = self.buf[p] as usize;
        let before = self.server.version();
        // Rank r is client r − 1.
        let client = source as usize - 1;
        match &mut self.server {
            Rule::Mix(s) => {
                s.apply(client, base, &self.buf[..p]);
            }
            Rule::Buffer(s) => {
                s.arrive(client, base, &self.buf[..p]);
                if s.log.len() == self.total {
                    s.flush();
                }
            }
        }
        let now = self.start.elapsed().as_secs_f64();
        for _ in before..self.server.version() {
            self.times.push(now);
        }
        self.buf[..p].copy_from_slice(self.server.global());
        self.buf[p] = self.server.version() as f64;
        self.comm
            .process_at_rank(source)
            .send_with_tag(&self.buf[..], REPLY);
        self.bytes += 8.0 * self.buf.len() as f64;
    }
}

impl Instance for FedInstance {
    fn reset(&mut self) {
        self.client = self
            .client_index()
            .map(|k| Client::new(&self.initial, self.shards[k].clone()));
    }
    fn run(&mut self) {
        match self.fed.server.has_server_rank() {
            false => self.run_sync(),
            true => self.run_async(),
        }
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.train";
        let client = self.client.take();
        let history = if self.fed.server.has_server_rank() {
            // Every rank reaches the log's broadcast, the server (no client) included.
            self.verify_async(name, client.as_ref())?;
            std::mem::take(&mut self.history)
        } else {
            let Some(client) = client else {
                return Err(format!("{name}: no training to check: run did not finish"));
            };
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let history = std::mem::take(&mut self.history);
            if history.len() != self.reference.len() {
                return Err(format!(
                    "{name}: fedavg client {}: {} rounds recorded, {} expected",
                    self.rank,
                    history.len(),
                    self.reference.len()
                ));
            }
            for (round, (got, want)) in history.iter().zip(&self.reference).enumerate() {
                if bits(got) != bits(want) {
                    let differ = got
                        .iter()
                        .zip(want)
                        .filter(|(a, b)| a.to_bits() != b.to_bits())
                        .count();
                    return Err(format!(
                        "{name}: fedavg client {} of {}: after round {} {differ} of {} global \
                         weights differ from the serial simulation's bits",
                        self.rank,
                        self.fed.cfg.clients,
                        round + 1,
                        got.len()
                    ));
                }
            }
            if bits(&client.trainer.mlp.velocity) != bits(&self.reference_velocity) {
                return Err(format!(
                    "{name}: fedavg client {}: its momentum differs from the serial simulation's \
                     bits",
                    self.rank
                ));
            }
            history
        };
        let mut model = Trainer::new(self.initial.clone());
        let (x, labels, test) = (&self.data.x, &self.data.labels, &self.data.test);
        self.curve.clear();
        for (round, w) in history.iter().enumerate() {
            // The curve is recorded from rank 0; the final point on every rank (the metrics).
            if self.rank == 0 || round + 1 == history.len() {
                model.mlp.params.copy_from_slice(w);
                let (loss, accuracy) = model.evaluate(x, labels, test);
                let seconds = self.times.get(round).copied().unwrap_or(f64::NAN);
                self.curve.push((round + 1, loss, accuracy, seconds));
            }
        }
        (self.loss, self.accuracy) = self
            .curve
            .last()
            .map_or((f64::NAN, f64::NAN), |c| (c.1, c.2));
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let rounds = self.fed.rounds.max(1) as f64;
        let (p, k) = (self.initial.params.len(), self.fed.cfg.clients);
        let staleness = fedavg::buffered_staleness(&self.log, self.fed.server.buffer());
        let (staleness_mean, staleness_max) = match self.fed.server {
            Aggregation::Async(_) | Aggregation::Buffered(_) if !staleness.is_empty() => (
                staleness.iter().sum::<usize>() as f64 / staleness.len() as f64,
                staleness.iter().copied().max().unwrap_or(0) as f64,
            ),
            _ => (0.0, 0.0),
        };
        let peak = match self.fed.server {
            // A whole model per client, plus the gathered models of every client.
            Aggregation::Sync => model_state_bytes(p, 1, false) + 8 * (p * k) as u64,
            // A client's model state, the global model it was sent and its exchange buffer
            // (the server holds less: the global model, the exchange buffer and, when buffered,
            // the buffer's sum, besides the versions it keeps for the check).
            Aggregation::Async(_) | Aggregation::Buffered(_) => {
                model_state_bytes(p, 1, false) + 8 * (2 * p + 1) as u64
            }
        };
        vec![
            (
                "samples_per_s",
                self.samples as f64 / self.wall_s.max(f64::MIN_POSITIVE),
            ),
            ("compute_s", self.compute_s),
            ("comm_s", self.comm_s),
            ("round_s", self.wall_s / rounds),
            // Sync: what a ring allgather sends per rank, the other clients' models; async: the
            // models (and versions) a rank sends, the server's replies being the most.
            ("bytes_per_round", self.bytes_sent / rounds),
            ("param_bytes", 8.0 * p as f64),
            ("mem_per_rank_bytes", model_state_bytes(p, 1, false) as f64),
            ("mem_peak_bytes", peak as f64),
            ("clients_reporting", self.reporting as f64 / rounds),
            ("updates_applied", self.reporting as f64),
            ("staleness_mean", staleness_mean),
            ("staleness_max", staleness_max),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
            ("rounds", self.fed.rounds as f64),
        ]
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        let join = |v: Vec<String>, sep: &str| v.join(sep);
        let curve = join(
            self.curve
                .iter()
                .map(|(r, loss, acc, _)| format!("{r}:{loss}:{acc}"))
                .collect(),
            "; ",
        );
        let time_curve = join(
            self.curve
                .iter()
                .map(|(_, loss, acc, t)| format!("{t}:{loss}:{acc}"))
                .collect(),
            "; ",
        );
        let rows = join(
            self.shards.iter().map(|s| s.len().to_string()).collect(),
            ", ",
        );
        let mut out = vec![
            ("round_curve", curve),
            ("time_curve", time_curve),
            ("client_rows", rows),
        ];
        if self.fed.server.has_server_rank() {
            // Async: one update per version, ` ` between them; buffered: one group of updates
            // per server step, `; ` between groups.
            let m = self.fed.server.buffer();
            let log = self
                .log
                .chunks(m)
                .map(|step| {
                    let entries = step.iter().map(|a| format!("{}@{}", a.client, a.base));
                    entries.collect::<Vec<_>>().join(" ")
                })
                .collect();
            let sep = match self.fed.server {
                Aggregation::Buffered(_) => "; ",
                _ => " ",
            };
            out.push(("apply_log", join(log, sep)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::workload::mpi::{Train, TRAIN_PARAMS};
    use crate::workload::{test_params, Target, Workload};

    fn check(ranks: u32, overrides: &[(&str, &str)]) -> Result<(), String> {
        let mut target = Target::test(1);
        target.resources.ranks = ranks;
        let mut all = vec![("strategy", "fedavg")];
        all.extend_from_slice(overrides);
        Train.check(&test_params(TRAIN_PARAMS, &all), &target)
    }

    #[test]
    fn bad_federated_options_are_refused_with_the_fix() {
        assert_eq!(
            check(4, &[("skew", "-0.1")]).unwrap_err(),
            "mpi.train: skew = -0.1: the label skew is the share of each client's rows drawn \
             from its own classes; use a value in [0, 1] (0 = IID, 1 = each client sees only its \
             own classes)"
        );
        assert_eq!(
            check(1, &[("drop", "1")]).unwrap_err(),
            "mpi.train: drop = 1 with 1 client drops ⌊1 × 1⌋ = 1 client every round, so no \
             client reports and the server has nothing to average; use drop < 1 (e.g. drop = 0 \
             drops 0 of 1)"
        );
        assert_eq!(
            check(4, &[("drop", "1.5")]).unwrap_err(),
            "mpi.train: drop = 1.5: the share of clients that do not report in a round must be \
             in [0, 1); use e.g. drop = 0.25"
        );
        assert_eq!(
            check(4, &[("straggler_ms", "-5")]).unwrap_err(),
            "mpi.train: straggler_ms = -5: a straggler's delay per round must be 0 to 60000 \
             milliseconds"
        );
        // ⌊0.99 × 4⌋ = 3 of 4 clients dropped still leaves one to average.
        assert!(check(4, &[("drop", "0.99"), ("stragglers", "1")]).is_ok());
    }

    #[test]
    fn any_client_count_is_accepted_but_sharded_needs_a_power_of_two() {
        assert!(check(3, &[]).is_ok());
        let mut target = Target::test(1);
        target.resources.ranks = 3;
        let p = test_params(TRAIN_PARAMS, &[("strategy", "sharded")]);
        assert!(Train
            .check(&p, &target)
            .unwrap_err()
            .contains("3 ranks: the fixed reduction tree halves the global batch"));
    }

    #[test]
    fn bad_quantity_skew_and_async_settings_are_refused_with_the_fix() {
        assert_eq!(
            check(4, &[("quantity_skew", "-1")]).unwrap_err(),
            "mpi.train: quantity_skew = -1: the quantity skew is the exponent a of the clients' \
             power-law shares of the rows (∝ 1, 2^−a, 3^−a, …); use a finite a ≥ 0 (0 = equal \
             shares; with 4 clients 1 gives 48/24/16/12 %, 2 gives 70/18/8/4 %)"
        );
        assert_eq!(
            check(4, &[("aggregation", "async"), ("mixing", "0")]).unwrap_err(),
            "mpi.train: mixing = 0: the asynchronous server mixes an arriving model in as \
             w ← (1 − α·s(τ))·w + α·s(τ)·w_k, so α must be in (0, 1]; use e.g. mixing = 0.6 (1 \
             replaces the global model by a fresh update)"
        );
        assert_eq!(
            check(
                4,
                &[("aggregation", "async"), ("staleness_exponent", "-0.5")]
            )
            .unwrap_err(),
            "mpi.train: staleness_exponent = -0.5: the staleness weight s(τ) = (1 + τ)^−a must \
             not grow with staleness; use a finite a ≥ 0 (e.g. 0.5; 0 ignores staleness)"
        );
        assert_eq!(
            check(
                4,
                &[
                    ("aggregation", "async"),
                    ("stragglers", "0.25"),
                    ("straggler_policy", "skip")
                ]
            )
            .unwrap_err(),
            "mpi.train: straggler_policy = \"skip\" with aggregation = \"async\": the \
             asynchronous server never closes a round, so there is no deadline to skip \
             stragglers at (their updates are mixed in when they arrive, weighted down by their \
             staleness); use straggler_policy = \"wait\" (the default) with async, or \
             aggregation = \"sync\" for a deadline"
        );
        assert_eq!(
            check(1, &[("aggregation", "async")]).unwrap_err(),
            "mpi.train: aggregation = \"async\" with 1 rank: rank 0 is the asynchronous server \
             and every other rank a client, so there is no client; use ranks = K + 1 for K \
             clients (e.g. ranks = 2 for one client, 5 for four)"
        );
        // The drop rule counts the clients, not the server: 2 of them at 3 ranks.
        assert!(check(3, &[("aggregation", "async"), ("drop", "0.5")]).is_ok());
        assert!(check(3, &[("aggregation", "async"), ("drop", "1")])
            .unwrap_err()
            .contains("drop = 1 with 2 clients drops ⌊1 × 2⌋ = 2 clients every round"));
        // Sync ignores the mixing settings; async takes any client count.
        assert!(check(4, &[("mixing", "0")]).is_ok());
        assert!(check(2, &[("aggregation", "async"), ("quantity_skew", "2")]).is_ok());
        assert!(check(4, &[("aggregation", "async"), ("stragglers", "0.5")]).is_ok());
    }

    #[test]
    fn bad_buffered_settings_are_refused_with_the_fix() {
        let buffered = |ranks, extra: &[(&'static str, &'static str)]| {
            let mut all = vec![("aggregation", "buffered")];
            all.extend_from_slice(extra);
            check(ranks, &all)
        };
        // 4 ranks are 3 clients beside the server (a buffer of 0 is no positive integer, refused
        // when the manifest is read).
        assert_eq!(
            buffered(4, &[("buffer", "4")]).unwrap_err(),
            "mpi.train: buffer = 4 with 3 clients: the buffered server steps once it holds M \
             client updates, and M must be from 1 to the client count (a larger buffer makes \
             some client report twice from one version before the server steps); use e.g. \
             buffer = 2 (1 steps on every update)"
        );
        assert!(buffered(4, &[("buffer", "3")]).is_ok());
        assert_eq!(
            buffered(2, &[("buffer", "2")]).unwrap_err(),
            "mpi.train: buffer = 2 with 1 client: the buffered server steps once it holds M \
             client updates, and M must be from 1 to the client count (a larger buffer makes \
             some client report twice from one version before the server steps); use e.g. \
             buffer = 1 (1 steps on every update)"
        );
        assert_eq!(
            buffered(4, &[("server_lr", "0")]).unwrap_err(),
            "mpi.train: server_lr = 0: the buffered server steps w ← w + η · Σ s(τ_i)·Δ_i / M \
             along the buffered updates' weighted mean delta, so the server learning rate η \
             must be a finite number > 0; use e.g. server_lr = 1 (the mean delta itself)"
        );
        assert!(buffered(4, &[("server_lr", "2.5")]).is_ok());
        assert_eq!(
            buffered(4, &[("staleness_exponent", "-1")]).unwrap_err(),
            "mpi.train: staleness_exponent = -1: the staleness weight s(τ) = (1 + τ)^−a must \
             not grow with staleness; use a finite a ≥ 0 (e.g. 0.5; 0 ignores staleness)"
        );
        assert_eq!(
            buffered(4, &[("stragglers", "0.25"), ("straggler_policy", "skip")]).unwrap_err(),
            "mpi.train: straggler_policy = \"skip\" with aggregation = \"buffered\": the \
             buffered server never closes a round, so there is no deadline to skip stragglers \
             at (it steps once any M updates have arrived; a straggler's update joins a later \
             buffer, weighted down by its staleness); use straggler_policy = \"wait\" (the \
             default) with buffered, or aggregation = \"sync\" for a deadline"
        );
        assert_eq!(
            buffered(1, &[]).unwrap_err(),
            "mpi.train: aggregation = \"buffered\" with 1 rank: rank 0 is the buffered server \
             and every other rank a client, so there is no client; use ranks = K + 1 for K \
             clients (e.g. ranks = 2 for one client, 5 for four)"
        );
        // The buffer is a buffered setting only: sync and async ignore it, and buffered
        // ignores the mixing weight.
        assert!(check(4, &[("buffer", "9")]).is_ok());
        assert!(check(4, &[("aggregation", "async"), ("buffer", "9")]).is_ok());
        assert!(buffered(4, &[("mixing", "0")]).is_ok());
    }

    #[test]
    fn async_settings_apply_to_async_fedavg_only() {
        let applies = |over: &[(&str, &str)], key| {
            let mut all = vec![("strategy", "fedavg"), ("stragglers", "0.25")];
            all.extend_from_slice(over);
            crate::workload::param_applies("mpi.train", &test_params(TRAIN_PARAMS, &all), key)
        };
        let sync = [("aggregation", "sync")];
        let asyn = [("aggregation", "async")];
        assert!(applies(&sync, "quantity_skew") && applies(&asyn, "quantity_skew"));
        assert!(!applies(&sync, "mixing") && applies(&asyn, "mixing"));
        assert!(!applies(&sync, "staleness_exponent") && applies(&asyn, "staleness_exponent"));
        assert!(applies(&sync, "straggler_policy") && !applies(&asyn, "straggler_policy"));
        assert!(applies(&asyn, "straggler_ms"));
        // Buffered: its buffer, server learning rate and staleness exponent; no mixing weight
        // and, like async, no straggler policy.
        let buf = [("aggregation", "buffered")];
        for key in ["buffer", "server_lr"] {
            assert!(applies(&buf, key) && !applies(&sync, key) && !applies(&asyn, key));
        }
        assert!(applies(&buf, "staleness_exponent") && !applies(&buf, "mixing"));
        assert!(!applies(&buf, "straggler_policy") && applies(&buf, "straggler_ms"));
        let ddp = test_params(TRAIN_PARAMS, &[("strategy", "ddp")]);
        for key in ["quantity_skew", "aggregation", "mixing"] {
            assert!(!crate::workload::param_applies("mpi.train", &ddp, key));
        }
    }
}

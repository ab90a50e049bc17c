//! Federated averaging (FedAvg; McMahan, Moore, Ramage, Hampson, Agüera y Arcas, "Communication-
//! Efficient Learning of Deep Networks from Decentralized Data", AISTATS 2017): `K` clients each
//! hold a private shard of the training rows, train the global model locally for `E` epochs of
//! minibatch SGD, and the server replaces the global model by the average of the clients' models,
//! weighted by their sample counts: `w ← Σ_k (n_k / n) · w_k` over the clients that reported.
//!
//! Everything here is deterministic and MPI-free; the `mpi.train` workload runs one client per rank
//! and [`simulate`] is its serial reference (all clients in one process, in client order):
//!
//! * **Non-IID shards** ([`split`]): label skew `s ∈ [0, 1]`. Client `k` *owns* class `c` when
//!   `c mod K = k` (at least as many classes as clients) or `k mod C = c` (fewer classes than
//!   clients), so every class has an owner and every client a class. Each training row, in the
//!   given order, goes with probability `s` to an owner of its class (the owners of a class take
//!   turns) and otherwise to a client drawn with probability `q_k`; one seeded generator draws
//!   both. `s = 0` is an IID split, `s = 1` gives each client rows of its own classes only.
//! * **Quantity skew** ([`quantity_shares`]): the shares `q_k` follow a power law of exponent
//!   `a ≥ 0` over a seeded ranking of the clients, `q ∝ 1, 2^−a, 3^−a, …` (Zipf: the sizes of real
//!   federated datasets, e.g. LEAF's, are heavy-tailed). `a = 0` is the uniform draw (equal shards
//!   in expectation), `a = 1` gives 4 clients 48 %, 24 %, 16 % and 12 % of the drawn rows, `a = 2`
//!   70 %, 18 %, 8 % and 4 %. The two skews combine: the label-skewed rows go to their class's
//!   owners whatever their share (so at `s = 1` the class counts alone set the sizes).
//! * **Local training** ([`Client::train_round`]): the client starts the round from the global
//!   weights and takes `E · ⌈n_k / B⌉` steps of the fixed-grain SGD with momentum (`Trainer::step`
//!   on one process), minibatch `t` being rows `t·B … (t+1)·B − 1` of its shard, wrapping around
//!   and continuing across rounds. Its momentum stays on the client between rounds (a stateful
//!   client), so one client is plain local training.
//! * **Dropped clients** ([`dropped`]): each round `⌊drop · K⌋` clients, a seeded draw per round,
//!   do not report; they are left out of the average, whose weights are renormalised over the
//!   clients that report.
//! * **Stragglers** ([`stragglers`]): each round a seeded draw of `stragglers` reporting clients is
//!   slowed by a set delay (simulated by the workload). FedAvg's synchronous server waits for them;
//!   a server with a deadline does not: the stragglers train but their late models are discarded
//!   ([`Part::Late`], [`parts`]).
//! * **Averaging** ([`average`]): in client order, `a_k · w_k` with `a_k = n_k / n`, the first term
//!   assigned and the others added: the same bits wherever it runs, and one client's weights are
//!   returned unchanged (`1.0 · w = w`). `n_k` is the client's shard size, so under quantity skew
//!   a client with ten times the rows weighs ten times as much (McMahan et al.'s rule; a client
//!   without rows weighs nothing and never trains).
//! * **Asynchronous FedAvg** ([`Server`], [`replay`]): FedAsync (Xie, Koyejo and Gupta,
//!   "Asynchronous Federated Optimization", 2019). The server holds the global model and its
//!   version `v` (the updates applied so far); a client trains from the version `b` it was last
//!   sent and reports, and the server mixes its model in *as it arrives*,
//!   `w ← (1 − β)·w + β·w_k` with `β = α · s(τ)`, staleness `τ = v − b` and the polynomial
//!   staleness function `s(τ) = (1 + τ)^(−a)` ([`Mixing`]), then sends the client the new model
//!   and version. Nobody waits for anybody: a slow client delays only its own updates, which
//!   arrive stale and weigh less. Each arrival changes the model on its own, so staleness is seen
//!   update by update, and the order of arrivals — the one thing MPI does not fix — is the whole
//!   of the nondeterminism, recorded in the server's log ([`Applied`]: client, base version) and
//!   replayed serially. The mixing weight is not scaled by `n_k` (FedAsync's rule): a small
//!   client's quicker rounds give it more updates, not heavier ones.
//! * **Buffered asynchronous FedAvg** ([`BufferedServer`], [`replay_buffered`]): FedBuff (Nguyen,
//!   Malik, Zhao, Zhang, Rabbat, Malek and Huba, "Federated Learning with Buffered Asynchronous
//!   Aggregation", AISTATS 2022). A client sends its *delta* `Δ_k = w_k − w_b` ([`delta`]: its
//!   trained model less the version `b` it started from), and the server adds `s(τ)·Δ_k` to a
//!   buffer in the order of arrival (the first assigned, the others added), replying at once with
//!   its current model and version. Once the buffer holds `M` updates the server takes a step,
//!   `w ← w + (η / M) · Σ_i s(τ_i)·Δ_i` ([`Buffering`]: `η` the server learning rate, the
//!   coefficient `η / M` computed once), empties the buffer and bumps the version; the run's last
//!   update closes a partial buffer of `r < M` updates with `η / r`, so no update is lost.
//!   Arrival `i` (from 0) thus meets version `⌊i / M⌋` and is folded into version `⌊i / M⌋ + 1`:
//!   the log of arrivals alone fixes every version, and the same [`Applied`] entries are replayed.
//!   `M = 1`, `η = 1`, `a = 0` is FedAsync with `α = 1` while updates are fresh (one client:
//!   `w_b + (w_k − w_b)`, which is `w_k` up to the rounding of the delta), not otherwise: FedAsync
//!   then replaces the model by the stale one, FedBuff adds the stale delta to the current model.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use scalelab_kernels::mix64;

use super::{global_batch, shuffled, LocalReducer, Mlp, Schedule, Sgd, Trainer};
use crate::data::Matrix;

/// The clients' training setup.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FedConfig {
    pub clients: usize,
    /// Local epochs per round (`E`).
    pub epochs: usize,
    /// Local minibatch (`B`), a multiple of `grain`.
    pub batch: usize,
    pub grain: usize,
    pub sgd: Sgd,
}

impl FedConfig {
    /// The schedule of one client's local step: one process, one micro-batch.
    pub fn schedule(&self) -> Schedule {
        Schedule {
            batch: self.batch,
            grain: self.grain,
            ranks: 1,
            micro: 1,
        }
    }
}

/// Whether client `client` of `clients` owns class `class` of `classes` (module docs).
pub fn owns(client: usize, class: usize, clients: usize, classes: usize) -> bool {
    if classes >= clients {
        class % clients == client
    } else {
        client % classes == class
    }
}

/// The share `q_k` of the rows drawn for each client under quantity skew `exponent` (`a`, module
/// docs): the client ranked `i`-th (from 1) by a seeded shuffle gets `i^−a / Σ_j j^−a`. Every
/// client gets `1/K` at `a = 0`; the shares sum to 1 (up to rounding).
pub fn quantity_shares(clients: usize, exponent: f64, seed: u64) -> Vec<f64> {
    let order = shuffled(clients, mix64(seed ^ 0x7175_616e_7469_7479));
    let raw: Vec<f64> = (1..=clients).map(|i| (i as f64).powf(-exponent)).collect();
    let total: f64 = raw.iter().sum();
    let mut out = vec![0.0; clients];
    for (i, &k) in order.iter().enumerate() {
        out[k] = raw[i] / total;
    }
    out
}

/// The clients' shards of `rows` under label skew `skew` and quantity skew `quantity` (the
/// exponent of [`quantity_shares`]; module docs): one list of rows per client, each in the order
/// of `rows`, every row in exactly one. `labels[r] < classes` for every row. At `quantity = 0`
/// the other rows' client is `random_range(0..K)`, so such splits are those of label skew alone.
pub fn split(
    rows: &[usize],
    labels: &[u32],
    classes: usize,
    clients: usize,
    skew: f64,
    quantity: f64,
    seed: u64,
) -> Vec<Vec<usize>> {
    let owners: Vec<Vec<usize>> = (0..classes)
        .map(|c| {
            (0..clients)
                .filter(|&k| owns(k, c, clients, classes))
                .collect()
        })
        .collect();
    let cumulative: Vec<f64> = quantity_shares(clients, quantity, seed)
        .iter()
        .scan(0.0, |sum, q| {
            *sum += q;
            Some(*sum)
        })
        .collect();
    let mut turn = vec![0usize; classes];
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix64(seed ^ 0x6665_6461_7667));
    let mut out = vec![Vec::new(); clients];
    for &r in rows {
        let y = labels[r] as usize;
        let k = if rng.random::<f64>() < skew {
            let o = &owners[y];
            turn[y] += 1;
            o[(turn[y] - 1) % o.len()]
        } else if quantity == 0.0 {
            rng.random_range(0..clients)
        } else {
            let u = rng.random::<f64>();
            cumulative
                .iter()
                .position(|&c| u < c)
                .unwrap_or(clients - 1)
        };
        out[k].push(r);
    }
    out
}

/// How many of `clients` clients `drop` leaves out each round: `⌊drop · clients⌋`.
pub fn dropped_count(clients: usize, drop: f64) -> usize {
    ((drop * clients as f64).floor() as usize).min(clients)
}

/// Which clients do not report in round `round`: [`dropped_count`] of them, a seeded draw per
/// round.
pub fn dropped(round: usize, clients: usize, drop: f64, seed: u64) -> Vec<bool> {
    let order = shuffled(clients, mix64(seed ^ mix64(round as u64 ^ 0x64726f70)));
    let mut out = vec![false; clients];
    for &k in &order[..dropped_count(clients, drop)] {
        out[k] = true;
    }
    out
}

/// Which reporting clients straggle in round `round`: `count` of those not in `dropped` (all of
/// them if fewer report), a seeded draw per round.
pub fn stragglers(round: usize, dropped: &[bool], count: usize, seed: u64) -> Vec<bool> {
    let order = shuffled(
        dropped.len(),
        mix64(seed ^ mix64(round as u64 ^ 0x736c6f77)),
    );
    let mut out = vec![false; dropped.len()];
    for &k in order.iter().filter(|&&k| !dropped[k]).take(count) {
        out[k] = true;
    }
    out
}

/// The server's average of the reporting clients' weights, in client order: `out = Σ a_k · w_k`
/// with `a_k = n_k / n` over the `(weights, n_k)` given (module docs). Returns `false`, leaving
/// `out` alone, when they hold no samples at all.
pub fn average(models: &[(&[f64], usize)], out: &mut [f64]) -> bool {
    let n: usize = models.iter().map(|m| m.1).sum();
    let mut first = true;
    for &(w, nk) in models.iter().filter(|m| m.1 > 0) {
        let a = nk as f64 / n as f64;
        if first {
            for (o, v) in out.iter_mut().zip(w) {
                *o = a * v;
            }
            first = false;
        } else {
            for (o, v) in out.iter_mut().zip(w) {
                *o += a * v;
            }
        }
    }
    !first
}

/// One client: its shard, its model (the global weights once a round starts) and momentum, and how
/// many local steps it has taken.
pub struct Client {
    pub trainer: Trainer,
    pub rows: Vec<usize>,
    steps_done: usize,
}

impl Client {
    pub fn new(initial: &Mlp, rows: Vec<usize>) -> Client {
        Client {
            trainer: Trainer::new(initial.clone()),
            rows,
            steps_done: 0,
        }
    }

    /// Local steps per round: `E · ⌈n_k / B⌉` (none for an empty shard).
    pub fn round_steps(&self, cfg: &FedConfig) -> usize {
        cfg.epochs * self.rows.len().div_ceil(cfg.batch)
    }

    /// One round's local training from the global weights `global`.
    pub fn train_round(&mut self, x: &Matrix, labels: &[u32], global: &[f64], cfg: &FedConfig) {
        self.trainer.mlp.params.copy_from_slice(global);
        let schedule = cfg.schedule();
        for _ in 0..self.round_steps(cfg) {
            let batch = global_batch(&self.rows, cfg.batch, self.steps_done);
            self.trainer
                .step(x, labels, &batch, &schedule, 0, cfg.sgd, &LocalReducer);
            self.steps_done += 1;
        }
    }
}

/// A client's part in one round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// Trains and reports in time: its model is averaged.
    Reports,
    /// Does not take part (offline): neither trains nor reports.
    Dropped,
    /// A straggler past the server's deadline: it trains (its momentum and data position move on)
    /// but its late model is discarded.
    Late,
}

impl Part {
    pub fn trains(self) -> bool {
        self != Part::Dropped
    }
    pub fn counted(self) -> bool {
        self == Part::Reports
    }
}

/// Every client's part in a round from the drop and straggler draws: dropped clients are
/// [`Part::Dropped`]; stragglers are [`Part::Late`] when the server does not wait for them
/// (`wait = false`) and report (late but waited for) otherwise.
pub fn parts(dropped: &[bool], stragglers: &[bool], wait: bool) -> Vec<Part> {
    dropped
        .iter()
        .zip(stragglers)
        .map(|(&d, &s)| match (d, s && !wait) {
            (true, _) => Part::Dropped,
            (false, true) => Part::Late,
            (false, false) => Part::Reports,
        })
        .collect()
}

/// The serial reference: `rounds` rounds of FedAvg over `shards` (one per client) from `initial`,
/// every client in one process in client order, each playing its `parts(round)`. Returns the
/// global weights after each round and the clients (their momentum).
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    x: &Matrix,
    labels: &[u32],
    shards: &[Vec<usize>],
    initial: &Mlp,
    cfg: &FedConfig,
    rounds: usize,
    parts: impl Fn(usize) -> Vec<Part>,
) -> (Vec<Vec<f64>>, Vec<Client>) {
    let mut clients: Vec<Client> = shards
        .iter()
        .map(|rows| Client::new(initial, rows.clone()))
        .collect();
    let mut global = initial.params.clone();
    let mut history = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let parts = parts(round);
        for (c, _) in clients.iter_mut().zip(&parts).filter(|(_, p)| p.trains()) {
            c.train_round(x, labels, &global, cfg);
        }
        let models: Vec<(&[f64], usize)> = clients
            .iter()
            .zip(&parts)
            .filter(|(_, p)| p.counted())
            .map(|(c, _)| (&c.trainer.mlp.params[..], c.rows.len()))
            .collect();
        let mut next = global.clone();
        if average(&models, &mut next) {
            global = next;
        }
        history.push(global.clone());
    }
    (history, clients)
}

/// FedAsync's mixing weight (module docs): `β = α · s(τ)`, `s(τ) = (1 + τ)^(−a)` (Xie et al.'s
/// polynomial staleness function; they report `a = 0.5` working well).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mixing {
    /// `α ∈ (0, 1]`: the weight of a fresh update (`τ = 0`).
    pub alpha: f64,
    /// `a ≥ 0`: how fast the weight falls with staleness (0 ignores staleness).
    pub exponent: f64,
}

/// The polynomial staleness function `s(τ) = (1 + τ)^(−a)` (Xie et al.): 1 for a fresh update,
/// exactly.
pub fn staleness_weight(staleness: usize, exponent: f64) -> f64 {
    (1.0 + staleness as f64).powf(-exponent)
}

impl Mixing {
    /// `s(τ) = (1 + τ)^(−a)`: 1 for a fresh update, exactly.
    pub fn staleness_weight(&self, staleness: usize) -> f64 {
        staleness_weight(staleness, self.exponent)
    }

    /// `β = α · s(τ)`, the weight an update of staleness `τ` is mixed in with.
    pub fn weight(&self, staleness: usize) -> f64 {
        self.alpha * self.staleness_weight(staleness)
    }
}

/// `w ← (1 − β)·w + β·w_k` elementwise. `β = 1` copies `w_k` (sign of zero included), so one
/// client with `α = 1` is plain local training.
pub fn mix(global: &mut [f64], update: &[f64], beta: f64) {
    if beta == 1.0 {
        global.copy_from_slice(update);
        return;
    }
    let keep = 1.0 - beta;
    for (w, u) in global.iter_mut().zip(update) {
        *w = keep * *w + beta * u;
    }
}

/// One entry of the asynchronous server's log: the update of `client`, trained from global
/// version `base`, applied as the next version. The log is the whole of what the order of
/// arrivals decides; [`replay`] recomputes everything else from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    pub client: usize,
    pub base: usize,
}

/// The asynchronous server's state: the global model, its version, the log of applied updates
/// and, when kept, every version (`history[v]`, the check's material).
pub struct Server {
    pub global: Vec<f64>,
    pub mixing: Mixing,
    pub log: Vec<Applied>,
    pub history: Vec<Vec<f64>>,
    keep_history: bool,
}

impl Server {
    /// A server holding `initial` as version 0; `keep_history` keeps every version.
    pub fn new(initial: &[f64], mixing: Mixing, keep_history: bool) -> Server {
        Server {
            global: initial.to_vec(),
            mixing,
            log: Vec::new(),
            history: if keep_history {
                vec![initial.to_vec()]
            } else {
                Vec::new()
            },
            keep_history,
        }
    }

    /// The version of the global model: the updates applied so far.
    pub fn version(&self) -> usize {
        self.log.len()
    }

    /// Mix in `client`'s model `update`, trained from version `base`; returns its staleness
    /// `τ = v − b`.
    pub fn apply(&mut self, client: usize, base: usize, update: &[f64]) -> usize {
        let staleness = self.version() - base;
        mix(&mut self.global, update, self.mixing.weight(staleness));
        self.log.push(Applied { client, base });
        if self.keep_history {
            self.history.push(self.global.clone());
        }
        staleness
    }
}

/// The staleness `τ = v − b` of every entry of a log, in order.
pub fn staleness(log: &[Applied]) -> Vec<usize> {
    log.iter().enumerate().map(|(v, a)| v - a.base).collect()
}

/// Check entry `v` (from 0) of an asynchronous server's log before it is replayed: its client
/// must exist and have an update left (`sent[k] < updates[k]`), and its base must be the version
/// the server sent that client last (`next_base[k]`, 0 before its first update).
fn check_entry(
    v: usize,
    a: Applied,
    sent: &[usize],
    updates: &[usize],
    next_base: &[usize],
) -> Result<(), String> {
    let k = a.client;
    if k >= sent.len() || sent[k] >= updates[k] {
        return Err(format!(
            "update {} of the log is client {k}'s update {}, but {} client(s) send {:?} updates",
            v + 1,
            sent.get(k).map_or(1, |s| s + 1),
            sent.len(),
            updates
        ));
    }
    if a.base != next_base[k] {
        return Err(format!(
            "update {} of the log says client {k} trained from version {}, but the server had \
             sent it version {}",
            v + 1,
            a.base,
            next_base[k]
        ));
    }
    Ok(())
}

/// The serial reference of asynchronous FedAvg: replay the server's `log` over `shards` from
/// `initial`, each entry training its client's next round from the version it names and mixing
/// the result in ([`Server::apply`]). `updates[k]` is how many updates client `k` sends (its
/// rounds less its dropped ones; none without rows). Returns every version of the global model
/// (`[0]` the initial weights) and the clients, or what makes the log impossible: a client out
/// of range or past its count, a base that is not the version the server sent that client after
/// its last update (0 for its first), or a client that sent fewer updates than it should.
#[allow(clippy::too_many_arguments)]
pub fn replay(
    x: &Matrix,
    labels: &[u32],
    shards: &[Vec<usize>],
    initial: &Mlp,
    cfg: &FedConfig,
    mixing: Mixing,
    log: &[Applied],
    updates: &[usize],
) -> Result<(Vec<Vec<f64>>, Vec<Client>), String> {
    let mut clients: Vec<Client> = shards
        .iter()
        .map(|rows| Client::new(initial, rows.clone()))
        .collect();
    let mut server = Server::new(&initial.params, mixing, true);
    let mut sent = vec![0usize; clients.len()];
    let mut next_base = vec![0usize; clients.len()];
    for (v, &a) in log.iter().enumerate() {
        check_entry(v, a, &sent, updates, &next_base)?;
        let k = a.client;
        let start = server.history[a.base].clone();
        clients[k].train_round(x, labels, &start, cfg);
        server.apply(k, a.base, &clients[k].trainer.mlp.params);
        sent[k] += 1;
        next_base[k] = v + 1;
    }
    if sent != updates {
        return Err(format!(
            "the log holds {sent:?} updates per client, {updates:?} expected"
        ));
    }
    Ok((server.history, clients))
}

/// FedBuff's server step (module docs): `w ← w + (η / M) · Σ_i s(τ_i)·Δ_i` once `M` updates are
/// buffered, `s(τ) = (1 + τ)^(−a)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Buffering {
    /// `M ≥ 1`: the client updates buffered per server step (1 steps on every arrival).
    pub size: usize,
    /// `η > 0`: the server learning rate, the step along the buffer's mean delta (1 adds the
    /// mean itself).
    pub server_lr: f64,
    /// `a ≥ 0`: how fast an update's weight falls with its staleness (0 ignores staleness).
    pub exponent: f64,
}

impl Buffering {
    /// `s(τ) = (1 + τ)^(−a)`.
    pub fn staleness_weight(&self, staleness: usize) -> f64 {
        staleness_weight(staleness, self.exponent)
    }
}

/// A client's update to the buffered server: `out = w_k − w_b` elementwise, its trained model
/// less the version it started from. One function for the client and the replay, so both
/// round the same way.
pub fn delta(model: &[f64], start: &[f64], out: &mut [f64]) {
    for ((o, w), b) in out.iter_mut().zip(model).zip(start) {
        *o = w - b;
    }
}

/// The buffered (FedBuff) server's state: the global model and its version, the buffer's
/// weighted sum `Σ s(τ_i)·Δ_i` and how many updates it holds, the log of every arrival (in
/// order; arrival `i` meets version `⌊i / M⌋`) and, when kept, every version.
pub struct BufferedServer {
    pub global: Vec<f64>,
    pub buffering: Buffering,
    pub log: Vec<Applied>,
    pub history: Vec<Vec<f64>>,
    sum: Vec<f64>,
    held: usize,
    version: usize,
    keep_history: bool,
}

impl BufferedServer {
    /// A server holding `initial` as version 0 and an empty buffer; `keep_history` keeps every
    /// version.
    pub fn new(initial: &[f64], buffering: Buffering, keep_history: bool) -> BufferedServer {
        BufferedServer {
            global: initial.to_vec(),
            buffering,
            log: Vec::new(),
            history: if keep_history {
                vec![initial.to_vec()]
            } else {
                Vec::new()
            },
            sum: vec![0.0; initial.len()],
            held: 0,
            version: 0,
            keep_history,
        }
    }

    /// The version of the global model: the server steps taken so far.
    pub fn version(&self) -> usize {
        self.version
    }

    /// The updates in the buffer, not yet applied.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Buffer `client`'s delta `update` (its model less version `base`, [`delta`]), weighted by
    /// its staleness, and step once the buffer holds `M` updates; returns the staleness
    /// `τ = v − b` (`v` the version it met).
    pub fn arrive(&mut self, client: usize, base: usize, update: &[f64]) -> usize {
        let staleness = self.version - base;
        let s = self.buffering.staleness_weight(staleness);
        if self.held == 0 {
            for (acc, d) in self.sum.iter_mut().zip(update) {
                *acc = s * d;
            }
        } else {
            for (acc, d) in self.sum.iter_mut().zip(update) {
                *acc += s * d;
            }
        }
        self.held += 1;
        self.log.push(Applied { client, base });
        if self.held == self.buffering.size {
            self.step();
        }
        staleness
    }

    /// Apply a partial buffer (the run's last updates) as one more step, averaged over the `r`
    /// updates it holds; nothing when it is empty.
    pub fn flush(&mut self) {
        if self.held > 0 {
            self.step();
        }
    }

    /// `w ← w + (η / r) · Σ s(τ_i)·Δ_i` over the `r` buffered updates, then a new version.
    fn step(&mut self) {
        let c = self.buffering.server_lr / self.held as f64;
        for (w, acc) in self.global.iter_mut().zip(&self.sum) {
            *w += c * acc;
        }
        self.held = 0;
        self.version += 1;
        if self.keep_history {
            self.history.push(self.global.clone());
        }
    }
}

/// The staleness `τ_i = ⌊i / M⌋ − b_i` of every arrival of a buffered server's log, in order
/// (`M = 1` is [`staleness`]).
pub fn buffered_staleness(log: &[Applied], size: usize) -> Vec<usize> {
    log.iter()
        .enumerate()
        .map(|(i, a)| (i / size.max(1)).saturating_sub(a.base))
        .collect()
}

/// The arrivals (positions in the log, from 0) folded into version `v ≥ 1` of a buffered server
/// of buffer `size` whose run had `arrivals` updates: `M` per version, the last version the rest.
pub fn folded(v: usize, size: usize, arrivals: usize) -> std::ops::Range<usize> {
    let size = size.max(1);
    let start = (v.saturating_sub(1) * size).min(arrivals);
    start..(v * size).min(arrivals)
}

/// The serial reference of buffered asynchronous FedAvg: replay the server's arrival `log` over
/// `shards` from `initial`: each entry trains its client's next round from the version it names,
/// takes the [`delta`], and buffers it ([`BufferedServer::arrive`]); the last entry flushes a
/// partial buffer. `updates` and the refusals are [`replay`]'s; a client's base is the version
/// the server held after taking its previous update. Returns every version (`[0]` the initial
/// weights, `⌈U / M⌉` more for `U` arrivals) and the clients.
#[allow(clippy::too_many_arguments)]
pub fn replay_buffered(
    x: &Matrix,
    labels: &[u32],
    shards: &[Vec<usize>],
    initial: &Mlp,
    cfg: &FedConfig,
    buffering: Buffering,
    log: &[Applied],
    updates: &[usize],
) -> Result<(Vec<Vec<f64>>, Vec<Client>), String> {
    let mut clients: Vec<Client> = shards
        .iter()
        .map(|rows| Client::new(initial, rows.clone()))
        .collect();
    let mut server = BufferedServer::new(&initial.params, buffering, true);
    let mut sent = vec![0usize; clients.len()];
    let mut next_base = vec![0usize; clients.len()];
    let mut update = vec![0.0; initial.params.len()];
    for (i, &a) in log.iter().enumerate() {
        check_entry(i, a, &sent, updates, &next_base)?;
        let k = a.client;
        let start = &server.history[a.base];
        clients[k].train_round(x, labels, start, cfg);
        delta(&clients[k].trainer.mlp.params, start, &mut update);
        server.arrive(k, a.base, &update);
        if i + 1 == log.len() {
            server.flush();
        }
        sent[k] += 1;
        next_base[k] = server.version();
    }
    if sent != updates {
        return Err(format!(
            "the log holds {sent:?} updates per client, {updates:?} expected"
        ));
    }
    Ok((server.history, clients))
}

/// Compare an asynchronous server's versions (`server`, `[0]` the initial weights) with the
/// replay's, bit for bit; the first that differs is named by the updates of `log` folded into it
/// (buffer `size`; 1 for FedAsync, one update per version).
pub fn check_versions(
    server: &[Vec<f64>],
    replay: &[Vec<f64>],
    log: &[Applied],
    size: usize,
) -> Result<(), String> {
    if server.len() != replay.len() {
        return Err(format!(
            "{} versions recorded, {} replayed",
            server.len(),
            replay.len()
        ));
    }
    for (v, (got, want)) in server.iter().zip(replay).enumerate().skip(1) {
        let differ = got
            .iter()
            .zip(want)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        if differ == 0 && got.len() == want.len() {
            continue;
        }
        let which = folded(v, size, log.len());
        let what = if size == 1 {
            let a = log[which.start];
            format!(
                "after update {v} (client {}, trained from version {})",
                a.client, a.base
            )
        } else {
            let names: Vec<String> = log[which.clone()]
                .iter()
                .map(|a| format!("client {} from version {}", a.client, a.base))
                .collect();
            format!(
                "after server step {v} (updates {}–{} of the log: {})",
                which.start + 1,
                which.end,
                names.join(", ")
            )
        };
        return Err(format!(
            "{what} {differ} of {} global weights differ from the replay's bits",
            got.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;

    fn iris() -> (data::Dataset, Vec<u32>) {
        let d = data::load("iris").unwrap();
        let y = d.y.labels().unwrap().to_vec();
        (d, y)
    }

    const CFG: FedConfig = FedConfig {
        clients: 1,
        epochs: 2,
        batch: 16,
        grain: 4,
        sgd: Sgd {
            lr: 0.05,
            momentum: 0.9,
        },
    };

    #[test]
    fn fedavg_with_one_client_is_local_training_bit_for_bit() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let (history, clients) = simulate(
            &d.x,
            &y,
            std::slice::from_ref(&rows),
            &initial,
            &CFG,
            4,
            |_| vec![Part::Reports],
        );
        // Local training: 4 rounds × 2 epochs × ⌈150 / 16⌉ = 80 steps on one process.
        let mut local = Trainer::new(initial.clone());
        for t in 0..80 {
            let batch = global_batch(&rows, 16, t);
            local.step(&d.x, &y, &batch, &CFG.schedule(), 0, CFG.sgd, &LocalReducer);
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&history[3]), bits(&local.mlp.params));
        assert_eq!(
            bits(&clients[0].trainer.mlp.velocity),
            bits(&local.mlp.velocity)
        );
        assert_ne!(bits(&history[0]), bits(&history[3]));
    }

    #[test]
    fn dropped_clients_are_left_out_of_the_average() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 3, 0.5, 0.0, 9);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 3, ..CFG };
        // Client 1 never reports: the run equals one over clients 0 and 2 alone...
        let never_1 = |_| vec![Part::Reports, Part::Dropped, Part::Reports];
        let (with_drop, _) = simulate(&d.x, &y, &shards, &initial, &cfg, 3, never_1);
        let two = [shards[0].clone(), shards[2].clone()];
        let cfg2 = FedConfig { clients: 2, ..CFG };
        let (without, _) = simulate(&d.x, &y, &two, &initial, &cfg2, 3, |_| {
            vec![Part::Reports; 2]
        });
        assert_eq!(with_drop, without);
        // ...and differs from one where it reports.
        let (all, _) = simulate(&d.x, &y, &shards, &initial, &cfg, 3, |_| {
            vec![Part::Reports; 3]
        });
        assert_ne!(with_drop[2], all[2]);
    }

    #[test]
    fn a_late_straggler_trains_but_is_left_out_of_the_average() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 3, 0.5, 0.0, 9);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 3, ..CFG };
        let part = |p: Part| move |_| vec![Part::Reports, p, Part::Reports];
        let (late, late_clients) = simulate(&d.x, &y, &shards, &initial, &cfg, 1, part(Part::Late));
        let (dropped, dropped_clients) =
            simulate(&d.x, &y, &shards, &initial, &cfg, 1, part(Part::Dropped));
        // After one round the global model is the same (client 1 counted in neither)...
        assert_eq!(late, dropped);
        // ...but the late client did train: its momentum moved, the dropped one's did not.
        assert!(late_clients[1]
            .trainer
            .mlp
            .velocity
            .iter()
            .any(|&v| v != 0.0));
        assert!(dropped_clients[1]
            .trainer
            .mlp
            .velocity
            .iter()
            .all(|&v| v == 0.0));
        assert_eq!(
            parts(&[true, false, false], &[false, true, false], false),
            vec![Part::Dropped, Part::Late, Part::Reports]
        );
        assert_eq!(
            parts(&[true, false, false], &[false, true, false], true),
            vec![Part::Dropped, Part::Reports, Part::Reports]
        );
    }

    #[test]
    fn the_average_weights_clients_by_samples_and_skips_empty_ones() {
        let mut out = [0.0; 2];
        assert!(average(
            &[(&[1.0, 2.0], 1), (&[9.0, 9.0], 0), (&[4.0, 8.0], 3)],
            &mut out
        ));
        assert_eq!(out, [0.25 * 1.0 + 0.75 * 4.0, 0.25 * 2.0 + 0.75 * 8.0]);
        let mut out = [7.0];
        assert!(!average(&[(&[1.0], 0)], &mut out));
        assert_eq!(out, [7.0]);
        // One client: its weights unchanged, sign of zero included.
        let mut out = [1.0, 1.0];
        assert!(average(&[(&[-0.0, 0.3], 5)], &mut out));
        assert_eq!(out[0].to_bits(), (-0.0f64).to_bits());
    }

    #[test]
    fn label_skew_moves_from_iid_to_own_classes_only() {
        let (_, y) = iris();
        let rows = shuffled(150, 1);
        let classes_of = |shard: &[usize]| {
            let mut c: Vec<u32> = shard.iter().map(|&r| y[r]).collect();
            c.sort_unstable();
            c.dedup();
            c
        };
        // skew 1, 3 clients, 3 classes: client k holds class k, all 50 rows of it.
        let full = split(&rows, &y, 3, 3, 1.0, 0.0, 4);
        for (k, shard) in full.iter().enumerate() {
            assert_eq!(classes_of(shard), vec![k as u32]);
            assert_eq!(shard.len(), 50);
        }
        // More clients than classes: clients 0 and 3 share class 0, taking turns.
        let four = split(&rows, &y, 3, 4, 1.0, 0.0, 4);
        assert_eq!(classes_of(&four[3]), vec![0]);
        assert_eq!((four[0].len(), four[3].len()), (25, 25));
        // skew 0: every client sees every class; the split covers every row once, seeded.
        let iid = split(&rows, &y, 3, 3, 0.0, 0.0, 4);
        for shard in &iid {
            assert_eq!(classes_of(shard), vec![0, 1, 2]);
        }
        let mut all: Vec<usize> = iid.concat();
        all.sort_unstable();
        assert_eq!(all, (0..150).collect::<Vec<_>>());
        assert_eq!(iid, split(&rows, &y, 3, 3, 0.0, 0.0, 4));
        assert_ne!(iid, split(&rows, &y, 3, 3, 0.0, 0.0, 5));
    }

    #[test]
    fn drops_and_stragglers_are_seeded_per_round() {
        assert_eq!(dropped_count(4, 0.5), 2);
        assert_eq!(dropped_count(4, 0.74), 2);
        assert_eq!(dropped_count(4, 1.0), 4);
        let d = dropped(3, 8, 0.25, 11);
        assert_eq!(d.iter().filter(|&&x| x).count(), 2);
        assert_eq!(d, dropped(3, 8, 0.25, 11));
        assert!((0..8).any(|r| dropped(r, 8, 0.25, 11) != d));
        let s = stragglers(3, &d, 3, 11);
        assert_eq!(s.iter().filter(|&&x| x).count(), 3);
        assert!(s.iter().zip(&d).all(|(s, d)| !(*s && *d)));
        assert_eq!(
            stragglers(0, &[true, false], 2, 1),
            vec![false, true],
            "only reporting clients straggle"
        );
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn quantity_skew_gives_seeded_power_law_shards_using_every_row_once() {
        // a = 1 over 4 clients: 1, 1/2, 1/3, 1/4 over H = 25/12.
        let mut q = quantity_shares(4, 1.0, 7);
        q.sort_by(|a, b| b.total_cmp(a));
        let want = [12.0 / 25.0, 6.0 / 25.0, 4.0 / 25.0, 3.0 / 25.0];
        for (got, want) in q.iter().zip(want) {
            assert!((got - want).abs() < 1e-15, "{q:?}");
        }
        assert_eq!(quantity_shares(4, 0.0, 7), vec![0.25; 4]);
        // The seed decides which client is the large one.
        let largest = |seed| {
            let q = quantity_shares(4, 1.0, seed);
            (0..4).max_by(|&a, &b| q[a].total_cmp(&q[b])).unwrap()
        };
        assert!((0..16).any(|seed| largest(seed) != largest(7)));
        // 2 000 rows, a = 2: 70 %, 18 %, 8 % and 4 % expected; every row once, seeded.
        let labels: Vec<u32> = (0..2000).map(|r| (r % 3) as u32).collect();
        let rows = shuffled(2000, 2);
        let shards = split(&rows, &labels, 3, 4, 0.0, 2.0, 5);
        let q = quantity_shares(4, 2.0, 5);
        for (shard, q) in shards.iter().zip(&q) {
            let expected = 2000.0 * q;
            assert!(
                (shard.len() as f64 - expected).abs() < 4.0 * expected.sqrt() + 1.0,
                "{} rows where {expected} were expected",
                shard.len()
            );
        }
        let sizes: Vec<usize> = shards.iter().map(Vec::len).collect();
        let (min, max) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
        assert!(*max > 8 * *min, "{sizes:?}");
        let mut all = shards.concat();
        all.sort_unstable();
        assert_eq!(all, (0..2000).collect::<Vec<_>>());
        assert_eq!(shards, split(&rows, &labels, 3, 4, 0.0, 2.0, 5));
        assert_ne!(shards, split(&rows, &labels, 3, 4, 0.0, 2.0, 6));
        // Both skews: the label-skewed rows still go to their owners, the others by size.
        let both = split(&rows, &labels, 3, 4, 0.5, 2.0, 5);
        let mut all = both.concat();
        all.sort_unstable();
        assert_eq!(all.len(), 2000);
        all.dedup();
        assert_eq!(all.len(), 2000);
        let sizes: Vec<usize> = both.iter().map(Vec::len).collect();
        assert!(sizes.iter().max().unwrap() > &(2 * sizes.iter().min().unwrap()));
        // One client holds every row, whatever the skew.
        assert_eq!(split(&rows, &labels, 3, 1, 0.5, 2.0, 5), vec![rows.clone()]);
    }

    #[test]
    fn the_average_weights_clients_by_their_sample_counts() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 3, 0.0, 2.0, 9);
        let n: Vec<usize> = shards.iter().map(Vec::len).collect();
        assert!(n[0] != n[1] && n[1] != n[2] && n[0] != n[2], "{n:?}");
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 3, ..CFG };
        let (history, clients) = simulate(&d.x, &y, &shards, &initial, &cfg, 1, |_| {
            vec![Part::Reports; 3]
        });
        // After one round the clients hold their local models: the global is Σ (n_k / n)·w_k in
        // client order, the first term assigned.
        let total: usize = n.iter().sum();
        let mut want = vec![0.0; initial.params.len()];
        for (k, c) in clients.iter().enumerate() {
            let a = n[k] as f64 / total as f64;
            for (o, w) in want.iter_mut().zip(&c.trainer.mlp.params) {
                *o = if k == 0 { a * w } else { *o + a * w };
            }
        }
        assert_eq!(bits(&history[0]), bits(&want));
        // Not the plain mean of the three models.
        let mean: Vec<f64> = (0..want.len())
            .map(|i| clients.iter().map(|c| c.trainer.mlp.params[i]).sum::<f64>() / 3.0)
            .collect();
        let far = want
            .iter()
            .zip(&mean)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(far > 1e-3, "{far}");
    }

    #[test]
    fn async_fedavg_with_one_client_and_full_mixing_is_local_training_bit_for_bit() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let mixing = Mixing {
            alpha: 1.0,
            exponent: 0.5,
        };
        let log: Vec<Applied> = (0..4).map(|v| Applied { client: 0, base: v }).collect();
        let shards = [rows.clone()];
        let (history, clients) =
            replay(&d.x, &y, &shards, &initial, &CFG, mixing, &log, &[4]).unwrap();
        let mut local = Trainer::new(initial.clone());
        for t in 0..80 {
            let batch = global_batch(&rows, 16, t);
            local.step(&d.x, &y, &batch, &CFG.schedule(), 0, CFG.sgd, &LocalReducer);
        }
        assert_eq!(history.len(), 5);
        assert_eq!(bits(&history[4]), bits(&local.mlp.params));
        assert_eq!(
            bits(&clients[0].trainer.mlp.velocity),
            bits(&local.mlp.velocity)
        );
        // Quantity skew leaves one client all the rows: synchronous FedAvg is local training too.
        let one = split(&rows, &y, 3, 1, 0.0, 2.0, 9);
        let (sync, _) = simulate(&d.x, &y, &one, &initial, &CFG, 4, |_| vec![Part::Reports]);
        assert_eq!(bits(&sync[3]), bits(&local.mlp.params));
    }

    #[test]
    fn async_replay_mixes_each_update_in_by_its_staleness() {
        let mixing = Mixing {
            alpha: 0.6,
            exponent: 0.5,
        };
        assert_eq!(mixing.staleness_weight(0), 1.0);
        assert_eq!(mixing.staleness_weight(3), 0.5);
        assert_eq!(mixing.weight(3), 0.3);
        let mut w = [1.0, -2.0];
        mix(&mut w, &[3.0, 2.0], 0.25);
        assert_eq!(w, [0.75 * 1.0 + 0.25 * 3.0, 0.75 * -2.0 + 0.25 * 2.0]);
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 2, 0.5, 1.0, 9);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 2, ..CFG };
        let at = |client, base| Applied { client, base };
        // Both clients start from version 0; client 0 arrives first, so client 1's first
        // update is one version stale; each then trains from the version it was sent back.
        let log = [at(0, 0), at(1, 0), at(0, 1), at(1, 2), at(1, 4)];
        assert_eq!(staleness(&log), vec![0, 1, 1, 1, 0]);
        let (history, _) =
            replay(&d.x, &y, &shards, &initial, &cfg, mixing, &log, &[2, 3]).unwrap();
        // By hand: the clients train in their own order from the versions named.
        let mut c: Vec<Client> = shards
            .iter()
            .map(|r| Client::new(&initial, r.clone()))
            .collect();
        let mut versions = vec![initial.params.clone()];
        for (v, a) in log.iter().enumerate() {
            let start = versions[a.base].clone();
            c[a.client].train_round(&d.x, &y, &start, &cfg);
            let mut next = versions[v].clone();
            mix(
                &mut next,
                &c[a.client].trainer.mlp.params,
                0.6 * (1.0 + (v - a.base) as f64).powf(-0.5),
            );
            versions.push(next);
        }
        assert_eq!(history.len(), 6);
        for (got, want) in history.iter().zip(&versions) {
            assert_eq!(bits(got), bits(want));
        }
        // Another order of arrival is another model: the log is what the check needs.
        let other = [at(1, 0), at(0, 0), at(1, 1), at(0, 2), at(1, 3)];
        let (reordered, _) =
            replay(&d.x, &y, &shards, &initial, &cfg, mixing, &other, &[2, 3]).unwrap();
        assert_ne!(bits(&reordered[5]), bits(&history[5]));
    }

    #[test]
    fn an_impossible_log_is_refused() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 2, 0.0, 0.0, 9);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 2, ..CFG };
        let mixing = Mixing {
            alpha: 0.6,
            exponent: 0.5,
        };
        let at = |client, base| Applied { client, base };
        let err = |log: &[Applied]| {
            replay(&d.x, &y, &shards, &initial, &cfg, mixing, log, &[1, 1])
                .err()
                .unwrap()
        };
        assert_eq!(
            err(&[at(0, 0), at(1, 1)]),
            "update 2 of the log says client 1 trained from version 1, but the server had sent \
             it version 0"
        );
        assert_eq!(
            err(&[at(0, 0), at(0, 1)]),
            "update 2 of the log is client 0's update 2, but 2 client(s) send [1, 1] updates"
        );
        assert_eq!(
            err(&[at(0, 0)]),
            "the log holds [1, 0] updates per client, [1, 1] expected"
        );
    }

    #[test]
    fn buffered_fedavg_steps_by_the_staleness_weighted_mean_of_a_buffer_of_deltas() {
        // Dyadic numbers: every product and sum below is exact, so the bits are the arithmetic.
        let buffering = Buffering {
            size: 2,
            server_lr: 0.5,
            exponent: 1.0,
        };
        assert_eq!(buffering.staleness_weight(0), 1.0);
        assert_eq!(buffering.staleness_weight(1), 0.5);
        let mut d = [0.0; 2];
        delta(&[1.5, -1.0], &[1.0, -2.0], &mut d);
        assert_eq!(d, [0.5, 1.0]);
        let mut server = BufferedServer::new(&[1.0, -2.0], buffering, true);
        // Clients 0 and 1 report fresh deltas: the buffer fills and the server steps,
        // w ← w + (0.5 / 2) · (Δ₀ + Δ₁).
        assert_eq!(server.arrive(0, 0, &[0.5, 1.0]), 0);
        assert_eq!((server.version(), server.held()), (0, 1));
        assert_eq!(server.global, [1.0, -2.0], "one update waits in the buffer");
        assert_eq!(server.arrive(1, 0, &[2.0, -4.0]), 0);
        assert_eq!((server.version(), server.held()), (1, 0));
        assert_eq!(server.global, [1.0 + 0.25 * 2.5, -2.0 + 0.25 * -3.0]);
        // Client 2 trained from version 0 and arrives at version 1 (τ = 1, weight ½); client 0
        // from version 1 (τ = 0): w ← w + 0.25 · (½·Δ₂ + Δ₀).
        assert_eq!(server.arrive(2, 0, &[4.0, 8.0]), 1);
        assert_eq!(server.arrive(0, 1, &[-1.0, 0.5]), 0);
        assert_eq!(server.global, [1.625 + 0.25 * 1.0, -2.75 + 0.25 * 4.5]);
        // The run's last update closes a partial buffer, averaged over the one it holds:
        // w ← w + (0.5 / 1) · ½·Δ₁ (client 1 trained from version 1, met version 2).
        assert_eq!(server.arrive(1, 1, &[2.0, 2.0]), 1);
        assert_eq!(server.version(), 2);
        server.flush();
        assert_eq!(server.version(), 3);
        assert_eq!(server.global, [1.875 + 0.5 * 1.0, -1.625 + 0.5 * 1.0]);
        server.flush();
        assert_eq!(server.version(), 3, "an empty buffer is no step");
        assert_eq!(server.history.len(), 4);
        assert_eq!(
            buffered_staleness(&server.log, 2),
            vec![0, 0, 1, 0, 1],
            "arrival i meets version ⌊i / 2⌋"
        );
        assert_eq!(
            (folded(1, 2, 5), folded(2, 2, 5), folded(3, 2, 5)),
            (0..2, 2..4, 4..5)
        );
    }

    #[test]
    fn buffered_replay_follows_the_log_and_its_buffers_step_by_step() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 3, 0.5, 1.0, 9);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 3, ..CFG };
        let buffering = Buffering {
            size: 2,
            server_lr: 1.5,
            exponent: 0.5,
        };
        let at = |client, base| Applied { client, base };
        // Versions: arrivals 1–2 make version 1, 3–4 version 2, 5–6 version 3, 7 (the last,
        // alone) version 4. Client 0 reports twice from version 0: its first update left the
        // buffer half full, so the server sent it version 0 again; client 1's first update,
        // trained from version 0, meets version 1.
        let log = [
            at(0, 0),
            at(0, 0),
            at(1, 0),
            at(2, 0),
            at(0, 1),
            at(1, 1),
            at(2, 2),
        ];
        let updates = [3, 2, 2];
        let (history, clients) =
            replay_buffered(&d.x, &y, &shards, &initial, &cfg, buffering, &log, &updates).unwrap();
        assert_eq!(history.len(), 5);
        assert_eq!(buffered_staleness(&log, 2), vec![0, 0, 1, 1, 1, 1, 1]);
        // By hand: the clients train from the versions named, the deltas are weighted and
        // summed in arrival order (the first assigned), and each pair steps by (η / 2)·Σ.
        let mut c: Vec<Client> = shards
            .iter()
            .map(|r| Client::new(&initial, r.clone()))
            .collect();
        let mut versions = vec![initial.params.clone()];
        let mut sum = vec![0.0; initial.params.len()];
        for (i, a) in log.iter().enumerate() {
            let start = versions[a.base].clone();
            c[a.client].train_round(&d.x, &y, &start, &cfg);
            let s = (1.0 + (i / 2 - a.base) as f64).powf(-0.5);
            for ((acc, w), b) in sum
                .iter_mut()
                .zip(&c[a.client].trainer.mlp.params)
                .zip(&start)
            {
                *acc = if i % 2 == 0 {
                    s * (w - b)
                } else {
                    *acc + s * (w - b)
                };
            }
            if i % 2 == 1 || i + 1 == log.len() {
                let held = if i % 2 == 1 { 2.0 } else { 1.0 };
                let coefficient = 1.5 / held;
                let mut next = versions.last().unwrap().clone();
                for (w, acc) in next.iter_mut().zip(&sum) {
                    *w += coefficient * acc;
                }
                versions.push(next);
            }
        }
        for (got, want) in history.iter().zip(&versions) {
            assert_eq!(bits(got), bits(want));
        }
        for (got, want) in clients.iter().zip(&c) {
            assert_eq!(
                bits(&got.trainer.mlp.velocity),
                bits(&want.trainer.mlp.velocity)
            );
        }
        // Another order of arrival is another model.
        let other = [
            at(1, 0),
            at(0, 0),
            at(0, 1),
            at(2, 0),
            at(0, 1),
            at(1, 0),
            at(2, 2),
        ];
        let (reordered, _) = replay_buffered(
            &d.x, &y, &shards, &initial, &cfg, buffering, &other, &updates,
        )
        .unwrap();
        assert_ne!(bits(&reordered[4]), bits(&history[4]));
    }

    #[test]
    fn buffered_fedavg_with_one_update_per_step_is_fedasync_while_updates_are_fresh() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let one = Buffering {
            size: 1,
            server_lr: 1.0,
            exponent: 0.0,
        };
        let full = Mixing {
            alpha: 1.0,
            exponent: 0.0,
        };
        // One client: every update is fresh, and w_b + (w_k − w_b) is FedAsync's w_k (local
        // training) up to the rounding of the delta, which each round's training carries on.
        let log: Vec<Applied> = (0..4).map(|v| Applied { client: 0, base: v }).collect();
        let shards = [rows.clone()];
        let (buffered, bc) =
            replay_buffered(&d.x, &y, &shards, &initial, &CFG, one, &log, &[4]).unwrap();
        let (fedasync, ac) = replay(&d.x, &y, &shards, &initial, &CFG, full, &log, &[4]).unwrap();
        assert_eq!(buffered.len(), 5);
        let far = |a: &[f64], b: &[f64]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
                .fold(0.0, f64::max)
        };
        for (b, a) in buffered.iter().zip(&fedasync) {
            assert!(far(b, a) < 1e-12, "{}", far(b, a));
        }
        assert!(far(&bc[0].trainer.mlp.velocity, &ac[0].trainer.mlp.velocity) < 1e-12);
        // The same step on a model that is exactly representable as w_b + Δ: the bits agree.
        let mut step = BufferedServer::new(&[1.0, -0.5], one, false);
        let mut dw = [0.0; 2];
        delta(&[1.25, -0.375], &[1.0, -0.5], &mut dw);
        step.arrive(0, 0, &dw);
        let mut mixed = [1.0, -0.5];
        mix(&mut mixed, &[1.25, -0.375], 1.0);
        assert_eq!(step.global, mixed);
        // Two clients: the second arrival is stale. FedAsync with α = 1 replaces the model by
        // the stale one; FedBuff adds its delta to the current model: not the same run.
        let shards = split(&rows, &y, 3, 2, 0.0, 0.0, 9);
        let cfg = FedConfig { clients: 2, ..CFG };
        let at = |client, base| Applied { client, base };
        let log = [at(0, 0), at(1, 0), at(0, 1), at(1, 2)];
        let (b, _) =
            replay_buffered(&d.x, &y, &shards, &initial, &cfg, one, &log, &[2, 2]).unwrap();
        let (a, _) = replay(&d.x, &y, &shards, &initial, &cfg, full, &log, &[2, 2]).unwrap();
        assert!(far(&b[1], &a[1]) < 1e-12, "the first update is fresh");
        assert!(far(&b[2], &a[2]) > 1e-3, "the second is not");
    }

    #[test]
    fn an_impossible_buffered_log_is_refused() {
        let (d, y) = iris();
        let rows = shuffled(150, 3);
        let shards = split(&rows, &y, 3, 2, 0.0, 0.0, 9);
        let initial = Mlp::new(&[4, 8, 3], 5).unwrap();
        let cfg = FedConfig { clients: 2, ..CFG };
        let buffering = Buffering {
            size: 2,
            server_lr: 1.0,
            exponent: 0.5,
        };
        let at = |client, base| Applied { client, base };
        let run = |log: &[Applied], updates: &[usize]| {
            replay_buffered(&d.x, &y, &shards, &initial, &cfg, buffering, log, updates)
        };
        // After client 0's first update the buffer is half full and the version still 0: its
        // second update starts from 0 (possible under FedBuff, not under FedAsync), not 1.
        assert!(run(&[at(0, 0), at(0, 0), at(1, 0)], &[2, 1]).is_ok());
        assert_eq!(
            run(&[at(0, 0), at(0, 1), at(1, 0)], &[2, 1]).err().unwrap(),
            "update 2 of the log says client 0 trained from version 1, but the server had sent \
             it version 0"
        );
        assert_eq!(
            run(&[at(0, 0), at(1, 1)], &[1, 1]).err().unwrap(),
            "update 2 of the log says client 1 trained from version 1, but the server had sent \
             it version 0"
        );
        assert_eq!(
            run(&[at(0, 0), at(2, 0)], &[1, 1]).err().unwrap(),
            "update 2 of the log is client 2's update 1, but 2 client(s) send [1, 1] updates"
        );
        assert_eq!(
            run(&[at(0, 0)], &[1, 1]).err().unwrap(),
            "the log holds [1, 0] updates per client, [1, 1] expected"
        );
    }

    #[test]
    fn a_version_that_differs_from_the_replay_names_the_updates_folded_into_it() {
        let at = |client, base| Applied { client, base };
        let log = [at(0, 0), at(1, 0), at(2, 0), at(0, 1), at(1, 1)];
        let replayed = vec![
            vec![0.0, 1.0],
            vec![0.5, 1.5],
            vec![0.75, 2.0],
            vec![1.0, 2.5],
        ];
        assert_eq!(check_versions(&replayed, &replayed, &log, 2), Ok(()));
        // One bit flipped in the server's version 2 (updates 3 and 4 folded into it).
        let mut server = replayed.clone();
        server[2][1] = f64::from_bits(server[2][1].to_bits() ^ 1);
        assert_eq!(
            check_versions(&server, &replayed, &log, 2).unwrap_err(),
            "after server step 2 (updates 3–4 of the log: client 2 from version 0, client 0 \
             from version 1) 1 of 2 global weights differ from the replay's bits"
        );
        // The last, partial buffer.
        let mut server = replayed.clone();
        server[3][0] = -0.0;
        assert_eq!(
            check_versions(&server, &replayed, &log, 2).unwrap_err(),
            "after server step 3 (updates 5–5 of the log: client 1 from version 1) 1 of 2 global \
             weights differ from the replay's bits"
        );
        // FedAsync: one update per version, named as before.
        let log1 = [at(0, 0), at(1, 0), at(0, 1)];
        let mut server = replayed.clone();
        server[2][0] = 0.0;
        assert_eq!(
            check_versions(&server, &replayed, &log1, 1).unwrap_err(),
            "after update 2 (client 1, trained from version 0) 1 of 2 global weights differ \
             from the replay's bits"
        );
        assert_eq!(
            check_versions(&server[..3], &replayed, &log1, 1).unwrap_err(),
            "3 versions recorded, 4 replayed"
        );
    }
}

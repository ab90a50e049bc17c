//! `strategy = "fedavg"` of `mpi.train`: federated averaging (McMahan et al. 2017) with one client
//! per MPI rank (`scalelab_ml::mlp::fedavg`). A round: every client that takes part (a seeded draw
//! leaves `⌊drop · K⌋` out) trains the global model locally for `epochs` epochs on its non-IID
//! shard (label skew `skew`); seeded stragglers sleep `straggler_ms` before reporting when the
//! server waits for them (`straggler_policy = "wait"`), or report past the deadline and are
//! discarded (`"skip"`); then the clients' weights are gathered (`MPI_Allgather`, the dropped and
//! late clients' too, since MPI needs every rank, but ignored) and every rank computes the
//! server's sample-weighted average in client order: the same operations on the same bits, so
//! every rank holds the same global model.
//!
//! Verification after every repetition: the global weights after **every** round must equal the
//! serial simulation's (`fedavg::simulate`, all clients in one process, untimed in `prepare`) bit
//! for bit, and each client's momentum its simulated twin's.
//!
//! Records: `loss` and `accuracy` of the final global model on the held-out fifth, the per-round
//! curve as the detail `round_curve` (`round:loss:accuracy; …`, evaluated after the timed run),
//! `client_rows` (each client's shard size), `samples_per_s` (samples all clients trained, per
//! second), `compute_s` (local training, a straggler's delay included), `comm_s` (the averaging,
//! waiting for stragglers included), `round_s`, `bytes_per_round`, `mem_per_rank_bytes`,
//! `clients_reporting` (per round) and `rounds`.

use std::time::{Duration, Instant};

use ::mpi::collective::CommunicatorCollectives;
use ::mpi::topology::Communicator;
use scalelab_ml::mlp::fedavg::{self, Client, FedConfig, Part};
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
    drop: f64,
    stragglers: f64,
    straggler_ms: f64,
    /// Whether the server waits for stragglers (`straggler_policy = "wait"`) or discards their
    /// late models (`"skip"`).
    wait: bool,
}

/// Read and check the federated options for `clients` clients (the point's ranks); `setup` has
/// already checked the local batch against the grain.
pub(super) fn fed(
    name: &str,
    params: &Params,
    setup: &Setup,
    clients: usize,
) -> Result<Fed, String> {
    let skew = params.float("skew");
    if !(0.0..=1.0).contains(&skew) {
        return Err(format!(
            "{name}: skew = {skew}: the label skew is the share of each client's rows drawn from \
             its own classes; use a value in [0, 1] (0 = IID, 1 = each client sees only its own \
             classes)"
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
        drop,
        stragglers,
        straggler_ms,
        wait: text(params, "straggler_policy")? != "skip",
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

    /// The drop and straggler draws of round `round`, and each client's part in it.
    fn round(&self, round: usize, seed: u64) -> (Vec<bool>, Vec<Part>) {
        let dropped = fedavg::dropped(round, self.cfg.clients, self.drop, seed);
        let slow = fedavg::stragglers(round, &dropped, self.straggler_count(), seed);
        let parts = fedavg::parts(&dropped, &slow, self.wait);
        (slow, parts)
    }
}

/// One client (rank) of a federated run.
pub(super) struct FedInstance {
    rank: usize,
    comm: Comm,
    fed: Fed,
    seed: u64,
    data: Data,
    shards: Vec<Vec<usize>>,
    initial: Mlp,
    /// The simulation's global weights after each round, and this client's final momentum.
    reference: Vec<Vec<f64>>,
    reference_velocity: Vec<f64>,
    /// Samples all clients train over the rounds (every rank knows every shard and every draw).
    samples: usize,
    reporting: usize,
    client: Option<Client>,
    history: Vec<Vec<f64>>,
    wall_s: f64,
    compute_s: f64,
    comm_s: f64,
    curve: Vec<(f64, f64)>,
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
            setup.seed,
        );
        let (reference, clients) = fedavg::simulate(
            &data.x,
            &data.labels,
            &shards,
            &initial,
            &fed.cfg,
            fed.rounds,
            |round| fed.round(round, setup.seed).1,
        );
        let (mut samples, mut reporting) = (0, 0);
        for round in 0..fed.rounds {
            for (c, part) in clients.iter().zip(fed.round(round, setup.seed).1) {
                if part.trains() {
                    samples += c.round_steps(&fed.cfg) * fed.cfg.batch;
                }
                reporting += usize::from(part.counted());
            }
        }
        FedInstance {
            rank,
            comm: comm.duplicate(),
            fed,
            seed: setup.seed,
            reference_velocity: clients[rank].trainer.mlp.velocity.clone(),
            reference,
            samples,
            reporting,
            data,
            shards,
            initial,
            client: None,
            history: Vec::new(),
            wall_s: 0.0,
            compute_s: 0.0,
            comm_s: 0.0,
            curve: Vec::new(),
            loss: f64::NAN,
            accuracy: f64::NAN,
        }
    }
}

impl Instance for FedInstance {
    fn reset(&mut self) {
        self.client = Some(Client::new(&self.initial, self.shards[self.rank].clone()));
    }
    fn run(&mut self) {
        let (initial, rows) = (&self.initial, &self.shards[self.rank]);
        let client = self
            .client
            .get_or_insert_with(|| Client::new(initial, rows.clone()));
        let (k, p) = (self.fed.cfg.clients, initial.params.len());
        let mut global = initial.params.clone();
        let mut gathered = vec![0.0; k * p];
        self.history.clear();
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
            compute_s += (t1 - t0).as_secs_f64();
            comm_s += t1.elapsed().as_secs_f64();
        }
        self.wall_s = start.elapsed().as_secs_f64();
        (self.compute_s, self.comm_s) = (compute_s, comm_s);
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.train";
        let Some(client) = self.client.take() else {
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
                    "{name}: fedavg client {} of {}: after round {} {differ} of {} global weights \
                     differ from the serial simulation's bits",
                    self.rank,
                    self.fed.cfg.clients,
                    round + 1,
                    got.len()
                ));
            }
        }
        if bits(&client.trainer.mlp.velocity) != bits(&self.reference_velocity) {
            return Err(format!(
                "{name}: fedavg client {}: its momentum differs from the serial simulation's bits",
                self.rank
            ));
        }
        let mut model = Trainer::new(self.initial.clone());
        let (x, labels, test) = (&self.data.x, &self.data.labels, &self.data.test);
        self.curve.clear();
        for (round, w) in history.iter().enumerate() {
            // The curve is recorded from rank 0; the final point on every rank (the metrics).
            if self.rank == 0 || round + 1 == history.len() {
                model.mlp.params.copy_from_slice(w);
                self.curve.push(model.evaluate(x, labels, test));
            }
        }
        (self.loss, self.accuracy) = self.curve.last().copied().unwrap_or((f64::NAN, f64::NAN));
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let rounds = self.fed.rounds.max(1) as f64;
        let (p, k) = (self.initial.params.len(), self.fed.cfg.clients);
        vec![
            (
                "samples_per_s",
                self.samples as f64 / self.wall_s.max(f64::MIN_POSITIVE),
            ),
            ("compute_s", self.compute_s),
            ("comm_s", self.comm_s),
            ("round_s", self.wall_s / rounds),
            // What a ring allgather sends per rank: the other clients' models.
            ("bytes_per_round", 8.0 * (p * (k - 1)) as f64),
            ("param_bytes", 8.0 * p as f64),
            ("mem_per_rank_bytes", model_state_bytes(p, 1, false) as f64),
            // A whole model per client, plus the gathered models of every client.
            (
                "mem_peak_bytes",
                (model_state_bytes(p, 1, false) + 8 * (p * k) as u64) as f64,
            ),
            ("clients_reporting", self.reporting as f64 / rounds),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
            ("rounds", self.fed.rounds as f64),
        ]
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        let curve = self
            .curve
            .iter()
            .enumerate()
            .map(|(r, (loss, acc))| format!("{}:{loss}:{acc}", r + 1))
            .collect::<Vec<_>>()
            .join("; ");
        let rows = self
            .shards
            .iter()
            .map(|s| s.len().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        vec![("round_curve", curve), ("client_rows", rows)]
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
}

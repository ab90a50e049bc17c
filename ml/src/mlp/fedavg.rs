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
//!   turns) and otherwise to a client drawn uniformly; one seeded generator draws both. `s = 0` is
//!   an IID split, `s = 1` gives each client rows of its own classes only.
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
//!   returned unchanged (`1.0 · w = w`).

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

/// The clients' shards of `rows` under label skew `skew` (module docs): one list of rows per
/// client, each in the order of `rows`. `labels[r] < classes` for every row.
pub fn split(
    rows: &[usize],
    labels: &[u32],
    classes: usize,
    clients: usize,
    skew: f64,
    seed: u64,
) -> Vec<Vec<usize>> {
    let owners: Vec<Vec<usize>> = (0..classes)
        .map(|c| {
            (0..clients)
                .filter(|&k| owns(k, c, clients, classes))
                .collect()
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
        } else {
            rng.random_range(0..clients)
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
        let shards = split(&rows, &y, 3, 3, 0.5, 9);
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
        let shards = split(&rows, &y, 3, 3, 0.5, 9);
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
        let full = split(&rows, &y, 3, 3, 1.0, 4);
        for (k, shard) in full.iter().enumerate() {
            assert_eq!(classes_of(shard), vec![k as u32]);
            assert_eq!(shard.len(), 50);
        }
        // More clients than classes: clients 0 and 3 share class 0, taking turns.
        let four = split(&rows, &y, 3, 4, 1.0, 4);
        assert_eq!(classes_of(&four[3]), vec![0]);
        assert_eq!((four[0].len(), four[3].len()), (25, 25));
        // skew 0: every client sees every class; the split covers every row once, seeded.
        let iid = split(&rows, &y, 3, 3, 0.0, 4);
        for shard in &iid {
            assert_eq!(classes_of(shard), vec![0, 1, 2]);
        }
        let mut all: Vec<usize> = iid.concat();
        all.sort_unstable();
        assert_eq!(all, (0..150).collect::<Vec<_>>());
        assert_eq!(iid, split(&rows, &y, 3, 3, 0.0, 4));
        assert_ne!(iid, split(&rows, &y, 3, 3, 0.0, 5));
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
}

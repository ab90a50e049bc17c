//! Fully sharded data parallelism (ZeRO stage 3, PyTorch's `FullyShardedDataParallel`): the
//! parameters and the optimizer state (the momentum) are cut into one chunk per rank, and each rank
//! keeps only its own chunk between steps. A step:
//!
//! 1. **allgather** the chunks into the full parameter vector (the only time a rank holds all of
//!    it);
//! 2. forward and backward on the rank's share of the global batch, exactly as `ddp` does (fixed
//!    grains, the rank's subtree of the fixed tree, `Trainer`'s binary-counter stack);
//! 3. **reduce-scatter** the gradient into chunks: rank `r` receives the whole batch's gradient for
//!    its chunk `r` only ([`halving_reduce_scatter`]);
//! 4. SGD with momentum on its chunk alone (the same expression as [`Trainer::step`]), then the
//!    gathered parameters are freed (FSDP's "reshard").
//!
//! Bitwise equality with the serial reference: the reduce-scatter is recursive halving with the
//! distance growing from 1, so at step `s` rank `r` adds the partial sum of rank `r XOR 2ˢ` for the
//! chunks it keeps: the same additions, in the same tree, as the recursive doubling of `ddp`, each
//! chunk summed over adjacent rank ranges first. The allgather only moves bits. Every element of the
//! parameters and the momentum therefore takes the serial reference's value.
//!
//! A parameter count that the rank count does not divide is padded with zeros to `ranks ×
//! ceil(P / ranks)` ([`Shards`]): padding has zero gradient, so it stays zero.
//!
//! Memory ([`model_state_bytes`], [`peak_state_bytes`]): ZeRO counts the model states (parameters,
//! gradients, optimizer state) per rank: `ddp` keeps all three whole (`3 × 8P` bytes in f64 with
//! one momentum vector), stage 3 keeps `3 × 8⌈P/R⌉`. This implementation gathers the whole model at
//! once for the step (FSDP wrapping the model as one unit), so its peak within a step is higher
//! than the steady state: both figures are given.

use std::ops::Range;
use std::time::Instant;

use super::{LocalReducer, Mlp, Schedule, Sgd, StepTiming, Trainer};
use crate::data::Matrix;

/// How the flat parameter vector of `len` entries is cut into `ranks` equal chunks, padded with
/// zeros at the end to `ranks × chunk`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shards {
    pub len: usize,
    pub ranks: usize,
}

impl Shards {
    /// Entries per chunk: `ceil(len / ranks)`.
    pub fn chunk(&self) -> usize {
        self.len.div_ceil(self.ranks.max(1))
    }

    /// Length of the padded vector, `ranks × chunk`.
    pub fn padded(&self) -> usize {
        self.chunk() * self.ranks
    }

    /// Positions of rank `rank`'s chunk in the padded vector.
    pub fn range(&self, rank: usize) -> Range<usize> {
        let c = self.chunk();
        rank * c..(rank + 1) * c
    }
}

/// Bytes of model state (parameters, gradient, momentum; f64) a rank keeps between steps, as ZeRO
/// counts them: whole for `ddp` and `accumulate` (`sharded = false`), one chunk each for stage 3.
pub fn model_state_bytes(len: usize, ranks: usize, sharded: bool) -> u64 {
    let per = if sharded {
        Shards { len, ranks }.chunk()
    } else {
        len
    };
    3 * 8 * per as u64
}

/// Bytes of parameters, gradient and momentum resident at the peak of one step (communication
/// buffers, activations and per-grain gradients not counted). `ddp`: the three vectors whole.
/// Sharded: the gathered parameters (the rank's own chunk moved into them) and the full local
/// gradient, both padded, beside the rank's momentum chunk.
pub fn peak_state_bytes(len: usize, ranks: usize, sharded: bool) -> u64 {
    if sharded {
        let s = Shards { len, ranks };
        8 * (2 * s.padded() + s.chunk()) as u64
    } else {
        3 * 8 * len as u64
    }
}

/// The two collectives of a sharded step. Every rank calls them in the same order with buffers of
/// the same length (`shards.padded()`), so a collective implementation cannot deadlock.
pub trait ShardCollective {
    /// On entry `grad` holds this rank's subtree sum of the gradient (padded); on return its chunk
    /// `shards.range(rank)` holds the whole tree's sum of that chunk (the rest is clobbered).
    /// Implementations must add as [`halving_reduce_scatter`] does. Returns the bytes sent.
    fn reduce_scatter(&self, grad: &mut [f64], shards: &Shards) -> u64;
    /// On entry `full[shards.range(rank)]` holds this rank's chunk; on return `full` holds every
    /// rank's chunk. Returns the bytes sent.
    fn allgather(&self, full: &mut [f64], shards: &Shards) -> u64;
}

impl ShardCollective for LocalReducer {
    fn reduce_scatter(&self, _grad: &mut [f64], _shards: &Shards) -> u64 {
        0
    }
    fn allgather(&self, _full: &mut [f64], _shards: &Shards) -> u64 {
        0
    }
}

/// Reduce-scatter by recursive halving along the fixed tree, over any pairwise exchange
/// `exchange(peer, send, recv)` (`MPI_Sendrecv` under MPI; both sides send equally many values).
///
/// At step `s` (distance `d = 2ˢ`, growing from 1) rank `r` still holds the chunks `j` that agree
/// with `r` on bits `0..s`; it sends those whose bit `s` differs from its own to rank `r XOR d`,
/// receives the partner's partial sums of the ones it keeps, and adds them. After `log₂ R` steps it
/// holds chunk `r`, summed over rank pairs, then pairs of pairs: the tree's additions in the tree's
/// order (IEEE addition is commutative, so which partner is left does not matter). Sends
/// `(R − 1) / R` of the vector in all. `ranks` must be a power of two (`Schedule::check`).
pub fn halving_reduce_scatter(
    grad: &mut [f64],
    rank: usize,
    shards: &Shards,
    mut exchange: impl FnMut(usize, &[f64], &mut [f64]),
) -> u64 {
    let (ranks, c) = (shards.ranks, shards.chunk());
    let (mut send, mut recv) = (Vec::new(), Vec::new());
    let mut bytes = 0u64;
    let mut d = 1;
    while d < ranks {
        let held = |j: usize| j & (d - 1) == rank & (d - 1);
        let keep = |j: usize| j & d == rank & d;
        send.clear();
        for j in (0..ranks).filter(|&j| held(j) && !keep(j)) {
            send.extend_from_slice(&grad[j * c..(j + 1) * c]);
        }
        recv.resize(send.len(), 0.0);
        exchange(rank ^ d, &send, &mut recv);
        for (k, j) in (0..ranks).filter(|&j| held(j) && keep(j)).enumerate() {
            for (a, b) in grad[j * c..(j + 1) * c]
                .iter_mut()
                .zip(&recv[k * c..(k + 1) * c])
            {
                *a += *b;
            }
        }
        bytes += 8 * send.len() as u64;
        d <<= 1;
    }
    bytes
}

/// One rank of a sharded model: its chunk of the parameters and of the momentum, and a trainer
/// whose parameter vector exists only during a step.
pub struct ShardedTrainer {
    pub shards: Shards,
    pub rank: usize,
    /// This rank's chunk of the parameters (padded with zeros past the model's end).
    pub params: Vec<f64>,
    /// This rank's chunk of the momentum.
    pub velocity: Vec<f64>,
    trainer: Trainer,
}

impl ShardedTrainer {
    /// Rank `rank` of `ranks` keeps its chunk of `mlp`'s parameters and momentum.
    pub fn new(mlp: &Mlp, rank: usize, ranks: usize) -> ShardedTrainer {
        let shards = Shards {
            len: mlp.layout.len(),
            ranks,
        };
        let chunk = |v: &[f64]| {
            let mut padded = v.to_vec();
            padded.resize(shards.padded(), 0.0);
            padded[shards.range(rank)].to_vec()
        };
        ShardedTrainer {
            shards,
            rank,
            params: chunk(&mlp.params),
            velocity: chunk(&mlp.velocity),
            trainer: Trainer::new(Mlp {
                layout: mlp.layout.clone(),
                params: Vec::new(),
                velocity: Vec::new(),
            }),
        }
    }

    /// The timing so far, and zero it.
    pub fn take_timing(&mut self) -> StepTiming {
        self.trainer.take_timing()
    }

    /// The timing so far.
    pub fn timing(&self) -> &StepTiming {
        self.trainer.timing()
    }

    /// The full parameter vector, gathered from every rank's chunk (a collective).
    pub fn gather(&self, coll: &dyn ShardCollective) -> (Vec<f64>, u64) {
        let mut full = vec![0.0; self.shards.padded()];
        full[self.shards.range(self.rank)].copy_from_slice(&self.params);
        let bytes = coll.allgather(&mut full, &self.shards);
        full.truncate(self.shards.len);
        (full, bytes)
    }

    /// Mean loss and accuracy of the gathered model on `rows` (a collective: every rank calls it).
    pub fn evaluate(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        rows: &[usize],
        coll: &dyn ShardCollective,
    ) -> (f64, f64) {
        self.trainer.mlp.params = self.gather(coll).0;
        let out = self.trainer.evaluate(x, labels, rows);
        self.trainer.mlp.params = Vec::new();
        out
    }

    /// One optimizer step on the global batch `batch` (module docs): allgather, forward and
    /// backward on this rank's share, reduce-scatter, SGD with momentum on the rank's chunk.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        schedule: &Schedule,
        sgd: Sgd,
        coll: &dyn ShardCollective,
    ) {
        let start = Instant::now();
        let (shards, rank) = (self.shards, self.rank);
        // The own chunk moves into the gathered vector for the step (no second copy of it).
        let mut full = vec![0.0; shards.padded()];
        full[shards.range(rank)].copy_from_slice(&std::mem::take(&mut self.params));
        let gathered = coll.allgather(&mut full, &shards);
        full.truncate(shards.len);
        self.trainer.mlp.params = full;
        let gathered_at = Instant::now();
        let mut grad =
            self.trainer
                .local_gradient(x, labels, batch, schedule, self.rank, &mut |_, _| {});
        grad.resize(self.shards.padded(), 0.0);
        let before_scatter = Instant::now();
        let scattered = coll.reduce_scatter(&mut grad, &self.shards);
        let after_scatter = Instant::now();
        let scale = schedule.batch as f64;
        let Sgd { lr, momentum } = sgd;
        let mut full = std::mem::take(&mut self.trainer.mlp.params);
        full.resize(shards.padded(), 0.0);
        for ((w, v), g) in full[shards.range(rank)]
            .iter_mut()
            .zip(self.velocity.iter_mut())
            .zip(&grad[shards.range(rank)])
        {
            *v = momentum * *v + g / scale;
            *w -= lr * *v;
        }
        drop(grad);
        // Reshard: between steps this rank holds its chunks only.
        self.params = full[shards.range(rank)].to_vec();
        drop(full);
        let comm = (gathered_at - start + (after_scatter - before_scatter)).as_secs_f64();
        let timing = &mut self.trainer.timing;
        timing.comm_s += comm;
        timing.compute_s += start.elapsed().as_secs_f64() - comm;
        timing.bytes_sent += gathered + scattered;
        timing.steps += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex};

    use super::super::global_batch;
    use super::*;
    use crate::data;

    /// Ranks as threads: a mailbox per rank and a barrier around every exchange (every rank takes
    /// part in every step of both collectives).
    struct Threads {
        barrier: Barrier,
        slots: Mutex<Vec<Vec<f64>>>,
        /// Halve with the distance shrinking from R/2 (pairs far apart first) instead of growing:
        /// the wrong order, to show that the check catches it.
        reversed: bool,
    }

    struct Rank<'s> {
        shared: &'s Threads,
        rank: usize,
    }

    impl Rank<'_> {
        fn exchange(&self, peer: usize, send: &[f64], recv: &mut [f64]) {
            self.shared.slots.lock().unwrap()[self.rank] = send.to_vec();
            self.shared.barrier.wait();
            recv.copy_from_slice(&self.shared.slots.lock().unwrap()[peer]);
            self.shared.barrier.wait();
        }
    }

    impl ShardCollective for Rank<'_> {
        fn reduce_scatter(&self, grad: &mut [f64], shards: &Shards) -> u64 {
            if !self.shared.reversed {
                return halving_reduce_scatter(grad, self.rank, shards, |p, s, r| {
                    self.exchange(p, s, r)
                });
            }
            // Distance R/2 first, each rank keeping its own chunk at the end.
            let c = shards.chunk();
            let mut d = shards.ranks / 2;
            while d >= 1 {
                let held = |j: usize| j / (2 * d) == self.rank / (2 * d);
                let keep = |j: usize| (j / d) % 2 == (self.rank / d) % 2;
                let send: Vec<f64> = (0..shards.ranks)
                    .filter(|&j| held(j) && !keep(j))
                    .flat_map(|j| grad[j * c..(j + 1) * c].to_vec())
                    .collect();
                let mut recv = vec![0.0; send.len()];
                self.exchange(self.rank ^ d, &send, &mut recv);
                for (k, j) in (0..shards.ranks)
                    .filter(|&j| held(j) && keep(j))
                    .enumerate()
                {
                    for (a, b) in grad[j * c..(j + 1) * c].iter_mut().zip(&recv[k * c..]) {
                        *a += *b;
                    }
                }
                d /= 2;
            }
            0
        }
        fn allgather(&self, full: &mut [f64], shards: &Shards) -> u64 {
            let mine = full[shards.range(self.rank)].to_vec();
            self.shared.slots.lock().unwrap()[self.rank] = mine;
            self.shared.barrier.wait();
            let slots = self.shared.slots.lock().unwrap().clone();
            for (r, chunk) in slots.iter().enumerate() {
                full[shards.range(r)].copy_from_slice(chunk);
            }
            self.shared.barrier.wait();
            8 * (shards.chunk() * (shards.ranks - 1)) as u64
        }
    }

    const WIDTHS: [usize; 4] = [4, 8, 5, 3];
    const SGD: Sgd = Sgd {
        lr: 0.05,
        momentum: 0.9,
    };

    fn reference(steps: usize) -> Mlp {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let schedule = Schedule {
            batch: 48,
            grain: 3,
            ranks: 1,
            micro: 1,
        };
        let mut t = Trainer::new(Mlp::new(&WIDTHS, 7).unwrap());
        for step in 0..steps {
            let batch = global_batch(&order, 48, step);
            t.step(&iris.x, &y, &batch, &schedule, 0, SGD, &LocalReducer);
        }
        t.mlp
    }

    /// Trains sharded over `ranks` threads; each rank's gathered parameters and its momentum
    /// chunk, as bits, and the bytes it sent per step.
    fn sharded(ranks: usize, steps: usize, reversed: bool) -> Vec<(Vec<u64>, Vec<u64>, u64)> {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let schedule = Schedule {
            batch: 48,
            grain: 3,
            ranks,
            micro: 1,
        };
        let shared = Threads {
            barrier: Barrier::new(ranks),
            slots: Mutex::new(vec![Vec::new(); ranks]),
            reversed,
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..ranks)
                .map(|rank| {
                    let (shared, y, order, iris) = (&shared, &y, &order, &iris);
                    s.spawn(move || {
                        let mlp = Mlp::new(&WIDTHS, 7).unwrap();
                        let mut t = ShardedTrainer::new(&mlp, rank, ranks);
                        let coll = Rank { shared, rank };
                        for step in 0..steps {
                            let batch = global_batch(order, 48, step);
                            t.step(&iris.x, y, &batch, &schedule, SGD, &coll);
                        }
                        let timing = t.take_timing();
                        let full = t.gather(&coll).0;
                        (
                            bits(&full),
                            bits(&t.velocity),
                            timing.bytes_sent / timing.steps,
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn sharded_weights_and_momentum_are_bitwise_the_serial_ones_at_1_2_and_4_ranks() {
        let want = reference(12);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        // 103 parameters: not a multiple of 2 or 4, so the padding is exercised.
        assert_eq!(want.params.len(), 103);
        for ranks in [1, 2, 4] {
            let shards = Shards { len: 103, ranks };
            let mut velocity = want.velocity.clone();
            velocity.resize(shards.padded(), 0.0);
            for (rank, (params, v, bytes)) in sharded(ranks, 12, false).into_iter().enumerate() {
                assert!(
                    params == bits(&want.params),
                    "{ranks} ranks, rank {rank}: parameters differ from the serial reference"
                );
                assert_eq!(v, bits(&velocity[shards.range(rank)]), "{ranks} ranks");
                // Allgather and reduce-scatter each send (R − 1) chunks.
                assert_eq!(bytes, 2 * 8 * (shards.chunk() * (ranks - 1)) as u64);
            }
        }
    }

    #[test]
    fn reduce_scattering_far_pairs_first_changes_the_weights() {
        // The check can fail: adding rank 0 to rank 2 before rank 1 is not the tree's order.
        let want = reference(12);
        let bits: Vec<u64> = want.params.iter().map(|x| x.to_bits()).collect();
        assert_eq!(sharded(4, 12, false)[0].0, bits);
        assert_ne!(sharded(4, 12, true)[0].0, bits);
    }

    #[test]
    fn shards_pad_and_memory_is_counted_per_rank() {
        let s = Shards { len: 103, ranks: 4 };
        assert_eq!((s.chunk(), s.padded(), s.range(3)), (26, 104, 78..104));
        assert_eq!(model_state_bytes(103, 4, false), 3 * 8 * 103);
        assert_eq!(model_state_bytes(103, 4, true), 3 * 8 * 26);
        assert_eq!(model_state_bytes(103, 1, true), 3 * 8 * 103);
        assert_eq!(peak_state_bytes(103, 4, false), 3 * 8 * 103);
        assert_eq!(peak_state_bytes(103, 4, true), 8 * (2 * 104 + 26));
        // One rank: the same three vectors as ddp.
        assert_eq!(peak_state_bytes(103, 1, true), 3 * 8 * 103);
    }
}

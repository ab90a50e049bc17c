//! Fully sharded data parallelism (ZeRO stage 3, PyTorch's `FullyShardedDataParallel`): the
//! parameters and the optimizer state (the momentum) are cut into one chunk per rank, and each rank
//! keeps only its own chunks between steps.
//!
//! **Units.** FSDP shards and gathers the model in *units* (what PyTorch's `auto_wrap_policy`
//! wraps): [`Units::Model`] is the whole model as one unit, [`Units::Layer`] one unit per layer.
//! Each unit's parameters (weights and biases, consecutive in the flat vector) are sharded over
//! the ranks on their own ([`Shards`]). A step ([`ShardedTrainer::step`]):
//!
//! 1. **forward**, unit by unit: wait for the unit's **allgather**, start the next unit's
//!    allgather (the *prefetch*: non-blocking, it moves while this unit computes), run the unit's
//!    layers over the rank's share of the batch, then free the gathered unit (*reshard after
//!    forward*), except the last unit, which backward needs first and keeps;
//! 2. **backward**, unit by unit from the last: wait for the unit's allgather again (prefetched
//!    during the later unit's backward), compute its layers' gradients (fixed grains, the fixed
//!    tree, as `ddp`) and start its **reduce-scatter** at once, non-blocking, so that it moves
//!    while the earlier units' backward runs; free the unit;
//! 3. wait for the reduce-scatters: rank `r` holds the whole batch's gradient of its chunk of
//!    every unit; SGD with momentum on those chunks alone (the expression of [`Trainer::step`]).
//!
//! With one unit this is the whole model gathered once per step (one allgather, one
//! reduce-scatter); with one unit per layer, every layer but the last is gathered twice (forward
//! and backward) and each layer's gradient is reduce-scattered as soon as it is final, so a rank
//! holds its chunks plus about two gathered layers and one layer's gradient.
//!
//! **Bitwise equality with the serial reference.** The forward and backward run layer by layer
//! on all of the rank's rows (`Trainer::forward_layer`, `Trainer::layer_gradient`,
//! `Trainer::input_delta`): the same GEMMs, with the same shapes and operands, as the
//! whole-model pass, whatever the units. The reduce-scatter is recursive halving with the distance
//! growing from 1 ([`Halving`]), so at step `s` rank `r` adds the partial sum of rank `r XOR 2ˢ`
//! for the chunks it keeps: the same additions, in the same tree, as the recursive doubling of
//! `ddp`, each chunk summed over adjacent rank ranges first. The allgather only moves bits. Every
//! element of the parameters and the momentum therefore takes the serial reference's value.
//!
//! **Gradient accumulation** (`Schedule::micro` = k > 1, a power of two): every micro-batch runs
//! the forward and backward above, gathering every unit again (FSDP regathers per micro-batch),
//! and the gradient is accumulated one of the two ways PyTorch users do ([`Accumulation`]):
//! reduce-scatter after every micro-batch and accumulate the rank's chunk, or keep the whole
//! unit gradients locally inside `no_sync()` and reduce-scatter once after the last. Both give
//! the serial reference's bits because each cuts the global batch so that what it sums first is
//! a subtree of the fixed tree ([`Accumulation::rows`]): inside `no_sync` a rank's contiguous
//! share is cut into consecutive micro-batches (the rank sums its micro-batches, then the
//! reduce-scatter sums the ranks: ranks on top of the tree, as `accumulate`); reduce-scattering
//! every micro-batch, the global batch is cut into `k` consecutive global micro-batches, each
//! split over the ranks (the reduce-scatter sums the ranks' parts of one global micro-batch, then
//! the rank sums the `k` chunks: micro-batches on top). Summing the ranks first with `no_sync`'s
//! cut would add rank 0's first micro-batch to rank 1's first before rank 0's second, which is
//! not the tree's order and does change the weights (tested). A rank merges its partial sums on
//! a binary-counter stack (`push_merge`, as `Trainer::local_gradient`), one per unit.
//!
//! A unit whose parameter count the rank count does not divide is padded with zeros to
//! `ranks × ceil(len / ranks)` ([`Shards`]): padding has zero gradient, so it stays zero.
//!
//! **Memory.** ZeRO counts the model states (parameters, gradients, optimizer state) per rank:
//! `ddp` keeps all three whole (`3 × 8P` bytes in f64 with one momentum vector), stage 3 one
//! chunk of each ([`model_state_bytes`]). Within a step the gathered units and the unit
//! gradients in flight come on top: [`ShardedTrainer::take_peak`] counts them as the step runs
//! (every buffer of parameters, gradients and momentum the rank holds, its own and those the
//! collectives hold while in flight), [`peak_state_bytes`] is the analytic figure for one unit,
//! [`peak_bytes`] for any units and accumulation, and [`accumulated_step_bytes`] the traffic.

use std::ops::Range;
use std::time::Instant;

use super::ddp::Overlap;
use super::{Mlp, Schedule, Sgd, StepTiming, Trainer};
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

/// How the model is cut into FSDP units (the `units` parameter of `mpi.train`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Units {
    /// The whole model as one unit: gathered once per step, its gradient reduce-scattered after
    /// backward.
    #[default]
    Model,
    /// One unit per layer: gathered just before the layer runs (the next one prefetched),
    /// freed after it, and each layer's gradient reduce-scattered as soon as it is final.
    Layer,
}

impl Units {
    /// The names of the `units` parameter, in the order of the enum.
    pub const NAMES: &'static [&'static str] = &["model", "layer"];

    /// The units named `name` (one of [`Units::NAMES`]).
    pub fn parse(name: &str) -> Result<Units, String> {
        match name {
            "model" => Ok(Units::Model),
            "layer" => Ok(Units::Layer),
            _ => Err(format!(
                "units = \"{name}\" is not a way to cut the model into FSDP units; choose model \
                 (the whole model gathered at once) or layer (one unit per layer)"
            )),
        }
    }

    /// The name of the setting.
    pub fn name(self) -> &'static str {
        Units::NAMES[self as usize]
    }

    /// The layers of each unit, in forward order.
    pub fn layers(self, layout: &super::Layout) -> Vec<Range<usize>> {
        let layers = layout.layers();
        match self {
            Units::Model => std::iter::once(0..layers).collect(),
            Units::Layer => (0..layers).map(|l| l..l + 1).collect(),
        }
    }

    /// Each unit's range in the flat parameter vector, in forward order.
    pub fn ranges(self, layout: &super::Layout) -> Vec<Range<usize>> {
        self.layers(layout)
            .into_iter()
            .map(|ls| layout.layer(ls.start).0.start..layout.layer(ls.end - 1).1.end)
            .collect()
    }
}

/// How a step of several micro-batches (`Schedule::micro` = k > 1) accumulates the gradient:
/// the two ways a PyTorch FSDP user accumulates (the `no_sync` parameter of `mpi.train`). Both
/// give the serial reference's bits; they differ in which rows a rank computes in which
/// micro-batch (module docs), in traffic and in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Accumulation {
    /// Reduce-scatter every micro-batch's gradient and accumulate the rank's chunk: what FSDP
    /// does when `backward()` runs k times before `optimizer.step()` (`no_sync = "off"`). It
    /// holds a few chunks across micro-batches instead of a whole gradient, and sends k
    /// reduce-scatters. The default: FSDP is chosen for its memory, and this is what PyTorch does
    /// unless told otherwise.
    #[default]
    Sharded,
    /// The first k − 1 micro-batches inside FSDP's `no_sync()`: each rank keeps the whole
    /// (unsharded) gradient of every unit and reduce-scatters once, after the last micro-batch
    /// (`no_sync = "on"`). One reduce-scatter per step, the memory of a whole gradient (more: the
    /// fixed tree keeps up to log₂ k partial sums, [`peak_bytes`]).
    NoSync,
}

impl Accumulation {
    /// The `no_sync` setting's name (`"off"` reduce-scatters every micro-batch).
    pub fn name(self) -> &'static str {
        match self {
            Accumulation::Sharded => "off",
            Accumulation::NoSync => "on",
        }
    }

    /// Positions in the global batch of rank `rank`'s micro-batch `j` (of `schedule.micro`).
    /// [`Accumulation::NoSync`]: the rank's contiguous share (`Schedule::shard`) cut into `k`
    /// consecutive micro-batches, as `accumulate` does: the rank sums its micro-batches first,
    /// then the reduce-scatter sums the ranks, the fixed tree's order with the ranks on top.
    /// [`Accumulation::Sharded`]: the global batch cut into `k` consecutive *global*
    /// micro-batches, each split over the ranks in rank order: the reduce-scatter of micro-batch
    /// `j` sums the ranks' parts of global micro-batch `j` (a subtree of the fixed tree), and the
    /// rank sums the `k` chunks after, the tree with the micro-batches on top. Either way every
    /// micro-batch is `batch / (ranks × micro)` samples and the step covers the global batch once.
    pub fn rows(self, schedule: &Schedule, rank: usize, j: usize) -> Range<usize> {
        let per = schedule.batch / schedule.ranks / schedule.micro;
        let start = match self {
            Accumulation::NoSync => (rank * schedule.micro + j) * per,
            Accumulation::Sharded => (j * schedule.ranks + rank) * per,
        };
        start..start + per
    }
}

/// Bytes of model state (parameters, gradient, momentum; f64) a rank keeps between steps, as ZeRO
/// counts them: whole for `ddp` and `accumulate` (`sharded = false`), one chunk each for stage 3
/// with the model as one unit.
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
/// Sharded with the model as one unit: the gathered parameters (the rank's own chunk moved into
/// them) and the full local gradient, both padded, beside the rank's momentum chunk. What
/// [`ShardedTrainer::take_peak`] counts for [`Units::Model`].
pub fn peak_state_bytes(len: usize, ranks: usize, sharded: bool) -> u64 {
    if sharded {
        let s = Shards { len, ranks };
        8 * (2 * s.padded() + s.chunk()) as u64
    } else {
        3 * 8 * len as u64
    }
}

/// Reduce-scatter of one unit's gradient by recursive halving along the fixed tree, one exchange
/// at a time, so that a non-blocking implementation can post each exchange and come back later.
///
/// At step `s` (distance `d = 2ˢ`, growing from 1) rank `r` still holds the chunks `j` that agree
/// with `r` on bits `0..s`; it sends those whose bit `s` differs from its own to rank `r XOR d`,
/// receives the partner's partial sums of the ones it keeps, and adds them. After `log₂ R` steps it
/// holds chunk `r`, summed over rank pairs, then pairs of pairs: the tree's additions in the tree's
/// order (IEEE addition is commutative, so which partner is left does not matter). Sends
/// `(R − 1) / R` of the vector in all. `ranks` must be a power of two (`Schedule::check`).
#[derive(Debug)]
pub struct Halving {
    grad: Vec<f64>,
    rank: usize,
    shards: Shards,
    d: usize,
    send: Vec<f64>,
    recv: Vec<f64>,
}

impl Halving {
    /// Rank `rank` starts reducing `grad` (its subtree sum, `shards.padded()` long).
    pub fn new(grad: Vec<f64>, rank: usize, shards: Shards) -> Halving {
        debug_assert_eq!(grad.len(), shards.padded());
        Halving {
            grad,
            rank,
            shards,
            d: 1,
            send: Vec::new(),
            recv: Vec::new(),
        }
    }

    /// The partner of the next exchange, with [`Halving::send`] filled and [`Halving::recv`]
    /// sized for it; `None` once every step is done. Call [`Halving::absorb`] when the exchange
    /// has completed, before calling this again.
    pub fn prepare(&mut self) -> Option<usize> {
        let (ranks, c, d, rank) = (self.shards.ranks, self.shards.chunk(), self.d, self.rank);
        if d >= ranks {
            return None;
        }
        self.send.clear();
        for j in (0..ranks).filter(|&j| j & (d - 1) == rank & (d - 1) && j & d != rank & d) {
            self.send.extend_from_slice(&self.grad[j * c..(j + 1) * c]);
        }
        self.recv.clear();
        self.recv.resize(self.send.len(), 0.0);
        Some(rank ^ d)
    }

    /// What the prepared exchange sends.
    pub fn send(&self) -> &[f64] {
        &self.send
    }

    /// Where the prepared exchange receives.
    pub fn recv(&mut self) -> &mut [f64] {
        &mut self.recv
    }

    /// The prepared exchange has completed: add the partner's partial sums to the kept chunks.
    /// The bytes it sent.
    pub fn absorb(&mut self) -> u64 {
        let (ranks, c, d, rank) = (self.shards.ranks, self.shards.chunk(), self.d, self.rank);
        let kept = (0..ranks).filter(|&j| j & (d - 1) == rank & (d - 1) && j & d == rank & d);
        for (k, j) in kept.enumerate() {
            for (a, b) in self.grad[j * c..(j + 1) * c]
                .iter_mut()
                .zip(&self.recv[k * c..(k + 1) * c])
            {
                *a += *b;
            }
        }
        self.d <<= 1;
        8 * self.send.len() as u64
    }

    /// This rank's chunk of the whole tree's sum (after the last step).
    pub fn into_chunk(self) -> Vec<f64> {
        self.grad[self.shards.range(self.rank)].to_vec()
    }

    /// All steps at once over a blocking pairwise exchange `exchange(peer, send, recv)`
    /// (`MPI_Sendrecv`; both sides send equally many values): the rank's chunk and the bytes sent.
    pub fn run(mut self, mut exchange: impl FnMut(usize, &[f64], &mut [f64])) -> (Vec<f64>, u64) {
        let mut bytes = 0;
        while let Some(peer) = self.prepare() {
            exchange(peer, &self.send, &mut self.recv);
            bytes += self.absorb();
        }
        (self.into_chunk(), bytes)
    }
}

/// The collectives of a sharded step, per unit, non-blocking: `start_*` must not wait for other
/// ranks, and every rank starts the same collectives in the same order, so an implementation
/// cannot deadlock. Buffers are handed over whole and stay untouched until finished.
pub trait UnitCollective {
    /// Start gathering unit `unit`: `full` (`shards.padded()` long) holds this rank's chunk at
    /// `shards.range(rank)`.
    fn start_gather(&mut self, unit: usize, full: Vec<f64>, shards: &Shards);
    /// Wait for unit `unit`'s gather: the buffer with every rank's chunk.
    fn finish_gather(&mut self, unit: usize) -> Vec<f64>;
    /// Start reduce-scattering unit `unit`'s gradient `grad` (this rank's subtree sum, padded),
    /// adding exactly as [`Halving`] does.
    fn start_scatter(&mut self, unit: usize, grad: Vec<f64>, shards: &Shards);
    /// Wait for unit `unit`'s reduce-scatter: this rank's chunk of the whole tree's sum.
    fn finish_scatter(&mut self, unit: usize) -> Vec<f64>;
    /// Let the started collectives move on (called after each layer's forward and backward);
    /// whether any is still in flight.
    fn progress(&mut self) -> bool;
    /// Whether a started collective has not been seen complete yet (no communication).
    fn in_flight(&self) -> bool;
    /// Bytes of parameters and gradients the collectives hold for the trainer right now (the
    /// buffers handed over and not yet finished; a reduce-scatter that has completed holds its
    /// chunk only). Their own send and receive buffers are not counted.
    fn held_bytes(&self) -> u64;
    /// Bytes this rank sent since the last call.
    fn take_bytes(&mut self) -> u64;
}

/// Peak bytes of parameters, gradients and momentum within a step of [`ShardedTrainer`] with one
/// unit per layer when every reduce-scatter completes as soon as it starts (one rank; the
/// in-process collectives of the tests): the rank's chunks, the gathered layer and the prefetched
/// one, the layer's whole gradient, and the gradient chunks of the layers after it. Over MPI a
/// layer's gradient stays whole until its reduce-scatter has completed, so the counted peak lies
/// between this and this plus the sum over layers of (padded − chunk) × 8 bytes.
pub fn layer_peak_bytes(layout: &super::Layout, ranks: usize) -> u64 {
    let shards: Vec<Shards> = Units::Layer
        .ranges(layout)
        .into_iter()
        .map(|r| Shards {
            len: r.len(),
            ranks,
        })
        .collect();
    let c = |k: usize| shards[k].chunk();
    let p = |k: usize| shards[k].padded();
    let n = shards.len();
    let chunks: usize = (0..n).map(c).sum();
    // Parameter and momentum chunks; at the end of backward every gradient chunk beside them.
    let base = 2 * chunks;
    let mut peak = base + chunks;
    for k in 0..n {
        // Forward: layer k gathered, layer k + 1 prefetched.
        let next = if k + 1 < n { p(k + 1) - c(k + 1) } else { 0 };
        peak = peak.max(base - c(k) + p(k) + next);
        // Backward: layer k gathered with its whole gradient, layer k − 1 prefetched, and the
        // gradient chunks of the layers after k.
        let later: usize = (k + 1..n).map(c).sum();
        let prev = if k > 0 { p(k - 1) - c(k - 1) } else { 0 };
        peak = peak.max(base + later - c(k) + 2 * p(k) + prev);
    }
    8 * peak as u64
}

/// Peak bytes of parameters, gradients and momentum within a step of [`ShardedTrainer`] of
/// `micro` micro-batches accumulated by `acc`, when every collective completes as soon as it
/// starts (the in-process collectives of the tests; over MPI a gradient in flight stays whole
/// until its reduce-scatter completes, up to `8 Σ (padded − chunk)` more). Per micro-batch `j`
/// the rank holds, beside its parameter and momentum chunks, the gathered unit and the prefetched
/// one (forward), or the gathered unit, its whole gradient and the prefetched earlier unit
/// (backward), and the partial sums of the earlier micro-batches: a binary-counter stack of the
/// fixed tree, one partial sum per set bit of `j` per unit (a chunk each with
/// [`Accumulation::Sharded`], a padded unit gradient with [`Accumulation::NoSync`]). PyTorch's
/// `no_sync()` adds in place into one gradient; the fixed tree's order needs up to `log₂ k` sums
/// at once. With `micro = 1` this is [`peak_state_bytes`] (one unit) and [`layer_peak_bytes`].
pub fn peak_bytes(
    layout: &super::Layout,
    ranks: usize,
    units: Units,
    micro: usize,
    acc: Accumulation,
) -> u64 {
    let shards: Vec<Shards> = units
        .ranges(layout)
        .into_iter()
        .map(|r| Shards {
            len: r.len(),
            ranks,
        })
        .collect();
    let c = |u: usize| shards[u].chunk();
    let p = |u: usize| shards[u].padded();
    let n = shards.len();
    let chunks: usize = (0..n).map(c).sum();
    let padded: usize = (0..n).map(p).sum();
    // Parameter and momentum chunks.
    let base = 2 * chunks;
    let mut peak = base;
    for j in 0..micro {
        let held = j.count_ones() as usize;
        let last = j + 1 == micro;
        // The earlier micro-batches' partial sums, all units.
        let stacks = match acc {
            Accumulation::Sharded => held * chunks,
            Accumulation::NoSync => held * padded,
        };
        for k in 0..n {
            // Forward: unit k gathered, unit k + 1 prefetched.
            let next = if k + 1 < n { p(k + 1) - c(k + 1) } else { 0 };
            peak = peak.max(base + stacks - c(k) + p(k) + next);
            // Backward of unit k: gathered with its whole gradient, unit k − 1 prefetched; the
            // later units' gradients are reduce-scattered (a chunk each) or, inside no_sync,
            // pushed on their stacks.
            let prev = if k > 0 { p(k - 1) - c(k - 1) } else { 0 };
            let (later, earlier) = match acc {
                Accumulation::Sharded => ((k + 1..n).map(c).sum::<usize>(), stacks),
                Accumulation::NoSync => {
                    let later = if last {
                        (k + 1..n).map(c).sum::<usize>()
                    } else {
                        (j + 1).count_ones() as usize * (k + 1..n).map(p).sum::<usize>()
                    };
                    (later, held * (0..=k).map(p).sum::<usize>())
                }
            };
            peak = peak.max(base + earlier + later - c(k) + 2 * p(k) + prev);
        }
        match acc {
            // Every unit's reduce-scattered chunk beside the earlier micro-batches' chunks.
            Accumulation::Sharded => peak = peak.max(base + stacks + chunks),
            // The whole sums went into the reduce-scatters.
            Accumulation::NoSync if last => peak = peak.max(base + chunks),
            Accumulation::NoSync => {}
        }
    }
    8 * peak as u64
}

/// Bytes one rank sends per step of [`ShardedTrainer`] with `micro` micro-batches accumulated by
/// `acc`: every micro-batch gathers every unit in forward and again in backward, except the last
/// unit (kept gathered from forward to backward), as FSDP regathers per micro-batch; the
/// gradient is reduce-scattered after every micro-batch ([`Accumulation::Sharded`]) or once
/// ([`Accumulation::NoSync`]). Each collective sends `(R − 1)` chunks of its unit.
pub fn accumulated_step_bytes(
    layout: &super::Layout,
    ranks: usize,
    units: Units,
    micro: usize,
    acc: Accumulation,
) -> u64 {
    let chunks: Vec<usize> = units
        .ranges(layout)
        .into_iter()
        .map(|r| {
            Shards {
                len: r.len(),
                ranks,
            }
            .chunk()
        })
        .collect();
    let last = *chunks.last().unwrap_or(&0);
    let all: usize = chunks.iter().sum();
    let scatters = match acc {
        Accumulation::Sharded => micro,
        Accumulation::NoSync => 1,
    };
    8 * ((micro * (2 * all - last) + scatters * all) * (ranks - 1)) as u64
}

/// Bytes one rank sends per step of [`ShardedTrainer`] with one micro-batch: an allgather of
/// every unit in forward and again in backward except the last unit (kept gathered from forward
/// to backward), and a reduce-scatter of every unit; each sends `(R − 1)` chunks of its unit
/// ([`accumulated_step_bytes`] at `micro = 1`).
pub fn step_bytes(layout: &super::Layout, ranks: usize, units: Units) -> u64 {
    accumulated_step_bytes(layout, ranks, units, 1, Accumulation::Sharded)
}

/// One unit of a sharded model: its layers, its range in the flat parameter vector and how it is
/// cut over the ranks.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Unit {
    layers: Range<usize>,
    range: Range<usize>,
    shards: Shards,
}

impl Unit {
    /// Layer `l`'s weights and biases within the unit's gathered buffer.
    fn local(&self, layout: &super::Layout, l: usize) -> (Range<usize>, Range<usize>) {
        let (w, b) = layout.layer(l);
        let at = self.range.start;
        (w.start - at..w.end - at, b.start - at..b.end - at)
    }
}

/// Where the time of a step goes: inside the collectives (`comm_s`) or computing, and of the
/// computing, how much ran while a collective was in flight (communication it hid).
struct Clock {
    comm_s: f64,
    hidden_s: f64,
    since: Instant,
    flying: bool,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            comm_s: 0.0,
            hidden_s: 0.0,
            since: Instant::now(),
            flying: false,
        }
    }

    /// Time a call into the collectives; afterwards, whether anything is still in flight.
    fn comm<T>(
        &mut self,
        coll: &mut dyn UnitCollective,
        call: impl FnOnce(&mut dyn UnitCollective) -> T,
    ) -> T {
        let t = Instant::now();
        if self.flying {
            self.hidden_s += (t - self.since).as_secs_f64();
        }
        let out = call(coll);
        self.flying = coll.in_flight();
        self.since = Instant::now();
        self.comm_s += (self.since - t).as_secs_f64();
        out
    }
}

/// One rank of a sharded model: its chunk of each unit's parameters and momentum, and a trainer
/// that holds no parameters of its own (each layer's come from its gathered unit).
pub struct ShardedTrainer {
    pub rank: usize,
    pub units: Units,
    /// How several micro-batches accumulate ([`ShardedTrainer::with_accumulation`]).
    pub acc: Accumulation,
    plan: Vec<Unit>,
    /// This rank's chunk of each unit's parameters (padded with zeros past the unit's end); empty
    /// while the unit is gathered (the chunk lives in the gathered buffer then).
    params: Vec<Vec<f64>>,
    /// This rank's chunk of each unit's momentum.
    velocity: Vec<Vec<f64>>,
    trainer: Trainer,
    /// Bytes of parameter, gradient and momentum buffers the trainer holds now, and the most the
    /// trainer and its collectives held together since the last [`ShardedTrainer::take_peak`].
    held: u64,
    peak: u64,
    hidden: Overlap,
    /// Tests: cut the micro-batches as this accumulation would (the wrong layout for the other).
    #[cfg(test)]
    rows_as: Option<Accumulation>,
}

impl ShardedTrainer {
    /// Rank `rank` of `ranks` keeps its chunk of each unit of `mlp`'s parameters and momentum.
    pub fn new(mlp: &Mlp, rank: usize, ranks: usize, units: Units) -> ShardedTrainer {
        let layout = &mlp.layout;
        let plan: Vec<Unit> = units
            .layers(layout)
            .into_iter()
            .zip(units.ranges(layout))
            .map(|(layers, range)| Unit {
                layers,
                shards: Shards {
                    len: range.len(),
                    ranks,
                },
                range,
            })
            .collect();
        let mut t = ShardedTrainer {
            rank,
            units,
            acc: Accumulation::default(),
            params: Vec::new(),
            velocity: Vec::new(),
            plan,
            trainer: Trainer::new(Mlp {
                layout: mlp.layout.clone(),
                params: Vec::new(),
                velocity: Vec::new(),
            }),
            held: 0,
            peak: 0,
            hidden: Overlap::default(),
            #[cfg(test)]
            rows_as: None,
        };
        t.params = t.chunks_of(&mlp.params);
        t.velocity = t.chunks_of(&mlp.velocity);
        t.held = 8 * 2 * t.params.iter().map(|c| c.len() as u64).sum::<u64>();
        t.peak = t.held;
        t
    }

    /// The trainer accumulating several micro-batches by `acc` (the default reduce-scatters
    /// every micro-batch).
    pub fn with_accumulation(mut self, acc: Accumulation) -> ShardedTrainer {
        self.acc = acc;
        self
    }

    /// This rank's chunk of each unit of a full parameter-sized vector (padded with zeros).
    pub fn chunks_of(&self, full: &[f64]) -> Vec<Vec<f64>> {
        self.plan
            .iter()
            .map(|u| {
                let mut padded = full[u.range.clone()].to_vec();
                padded.resize(u.shards.padded(), 0.0);
                padded[u.shards.range(self.rank)].to_vec()
            })
            .collect()
    }

    /// This rank's momentum chunks, one per unit.
    pub fn velocity(&self) -> &[Vec<f64>] {
        &self.velocity
    }

    /// The timing so far, and zero it.
    pub fn take_timing(&mut self) -> StepTiming {
        self.trainer.take_timing()
    }

    /// The timing so far.
    pub fn timing(&self) -> &StepTiming {
        self.trainer.timing()
    }

    /// Computation done while a collective was in flight since the last call, and zero it.
    pub fn take_hidden(&mut self) -> Overlap {
        std::mem::take(&mut self.hidden)
    }

    /// The most bytes of parameters, gradients and momentum this rank held at once since the last
    /// call (its chunks, the gathered units, the unit gradients, and what the collectives held
    /// for it), counted from the buffers as the steps ran; then start counting again.
    pub fn take_peak(&mut self) -> u64 {
        std::mem::replace(&mut self.peak, self.held)
    }

    /// ZeRO's count of the model states this rank keeps between steps: a chunk of the
    /// parameters, of the gradient and of the momentum, per unit.
    pub fn state_bytes(&self) -> u64 {
        3 * 8 * self.params_len() as u64
    }

    fn params_len(&self) -> usize {
        self.plan.iter().map(|u| u.shards.chunk()).sum()
    }

    /// The trainer now holds `add` more bytes and `sub` fewer.
    fn account(&mut self, add: usize, sub: usize) {
        self.held = self.held + 8 * add as u64 - 8 * sub as u64;
    }

    /// Note the peak: what the trainer holds beside what the collectives hold for it.
    fn note(&mut self, coll: &dyn UnitCollective) {
        self.peak = self.peak.max(self.held + coll.held_bytes());
    }

    /// The full parameter vector, gathered unit by unit from every rank's chunks (a collective,
    /// outside the timed steps: what gathering a full state dict for a checkpoint does), and the
    /// bytes this rank sent for it.
    pub fn gather(&self, coll: &mut dyn UnitCollective) -> (Vec<f64>, u64) {
        coll.take_bytes();
        let mut out = Vec::with_capacity(self.plan.last().map_or(0, |u| u.range.end));
        for (k, u) in self.plan.iter().enumerate() {
            let mut full = vec![0.0; u.shards.padded()];
            full[u.shards.range(self.rank)].copy_from_slice(&self.params[k]);
            coll.start_gather(k, full, &u.shards);
            let full = coll.finish_gather(k);
            out.extend_from_slice(&full[..u.range.len()]);
        }
        (out, coll.take_bytes())
    }

    /// Start gathering unit `k`: its chunk moves into the buffer handed to the collective (a
    /// chunk moving into or out of its gathered buffer is counted once).
    fn start_gather(&mut self, k: usize, coll: &mut dyn UnitCollective, clock: &mut Clock) {
        let u = &self.plan[k];
        let (padded, range, shards) = (u.shards.padded(), u.shards.range(self.rank), u.shards);
        let mut full = vec![0.0; padded];
        let chunk = std::mem::take(&mut self.params[k]);
        full[range].copy_from_slice(&chunk);
        self.account(padded, chunk.len());
        drop(chunk);
        self.note(coll);
        self.account(0, padded);
        clock.comm(coll, |c| c.start_gather(k, full, &shards));
        self.note(coll);
    }

    /// Unit `k`'s gathered buffer, once its allgather is done.
    fn finish_gather(
        &mut self,
        k: usize,
        coll: &mut dyn UnitCollective,
        clock: &mut Clock,
    ) -> Vec<f64> {
        let full = clock.comm(coll, |c| c.finish_gather(k));
        self.account(full.len(), 0);
        self.note(coll);
        full
    }

    /// Free gathered unit `k` (*reshard*): its chunk moves back out of the buffer.
    fn reshard(&mut self, k: usize, full: Vec<f64>, coll: &dyn UnitCollective) {
        let range = self.plan[k].shards.range(self.rank);
        self.params[k] = full[range].to_vec();
        self.account(self.params[k].len(), full.len());
        drop(full);
        self.note(coll);
    }

    /// One optimizer step on the global batch `batch` (module docs) in `schedule.micro`
    /// micro-batches: each forward and backward unit by unit, each unit gathered just before it
    /// runs (the next one prefetched), its gradient reduce-scattered as soon as it is final (every
    /// micro-batch, or after the last one inside `no_sync`: [`Accumulation`]), the micro-batches'
    /// sums merged along the fixed tree, then SGD with momentum on the rank's chunks.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        schedule: &Schedule,
        sgd: Sgd,
        coll: &mut dyn UnitCollective,
    ) {
        let start = Instant::now();
        let mut clock = Clock::new();
        let n = self.plan.len();
        // Per unit, the binary-counter stack of the micro-batches' partial sums (`push_merge`):
        // chunks when every micro-batch is reduce-scattered, whole unit gradients inside
        // no_sync; after the last micro-batch, the rank's chunk of the step's gradient.
        let mut sums: Vec<Vec<(Vec<f64>, usize)>> = vec![Vec::new(); n];
        for j in 0..schedule.micro {
            let rows = &batch[self.rows(schedule, j)];
            let last = j + 1 == schedule.micro;
            let scatter = last || self.acc == Accumulation::Sharded;
            self.micro_batch(
                x,
                labels,
                rows,
                schedule.grain,
                scatter,
                &mut sums,
                coll,
                &mut clock,
            );
            if scatter {
                // The reduce-scatters finish in the order they started.
                for k in (0..n).rev() {
                    let g = clock.comm(coll, |c| c.finish_scatter(k));
                    self.account(g.len(), 0);
                    self.note(coll);
                    self.push(&mut sums[k], g);
                }
            }
        }
        // Each chunk's update is the whole-model step's expression on those elements.
        let scale = schedule.batch as f64;
        let Sgd { lr, momentum } = sgd;
        for (k, mut sum) in sums.into_iter().enumerate().rev() {
            debug_assert_eq!(
                sum.len(),
                1,
                "a power-of-two micro-batch count merges to one sum"
            );
            let (g, _) = sum.pop().expect("the unit's gradient chunk");
            for ((w, v), g) in self.params[k]
                .iter_mut()
                .zip(self.velocity[k].iter_mut())
                .zip(&g)
            {
                *v = momentum * *v + g / scale;
                *w -= lr * *v;
            }
            self.account(0, g.len());
        }
        let bytes = coll.take_bytes();
        self.hidden.hidden_s += clock.hidden_s;
        let timing = &mut self.trainer.timing;
        timing.comm_s += clock.comm_s;
        timing.compute_s += start.elapsed().as_secs_f64() - clock.comm_s;
        timing.bytes_sent += bytes;
        timing.steps += 1;
    }

    /// Positions in the global batch of this rank's micro-batch `j` ([`Accumulation::rows`]).
    fn rows(&self, schedule: &Schedule, j: usize) -> Range<usize> {
        #[cfg(test)]
        if let Some(acc) = self.rows_as {
            return acc.rows(schedule, self.rank, j);
        }
        self.acc.rows(schedule, self.rank, j)
    }

    /// Push a partial sum on a unit's stack ([`super::push_merge`]: equal sizes merge, left +
    /// right), counting the buffers the merges free.
    fn push(&mut self, stack: &mut Vec<(Vec<f64>, usize)>, g: Vec<f64>) {
        let len = |s: &Vec<(Vec<f64>, usize)>| s.iter().map(|(v, _)| v.len()).sum::<usize>();
        let before = len(stack) + g.len();
        super::push_merge(stack, g);
        self.account(0, before - len(stack));
    }

    /// One micro-batch `rows`, forward and backward unit by unit. Each unit's gradient, once
    /// final, is reduce-scattered (`scatter`; the unit's no_sync sums merged into it first) or
    /// pushed on the unit's stack in `sums` (inside no_sync).
    #[allow(clippy::too_many_arguments)]
    fn micro_batch(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        rows: &[usize],
        grain: usize,
        scatter: bool,
        sums: &mut [Vec<(Vec<f64>, usize)>],
        coll: &mut dyn UnitCollective,
        clock: &mut Clock,
    ) {
        let n = self.plan.len();
        let layout = self.trainer.mlp.layout.clone();
        self.trainer.load_rows(x, rows);
        self.start_gather(0, coll, clock);
        let mut kept = Vec::new();
        for k in 0..n {
            let full = self.finish_gather(k, coll, clock);
            if k + 1 < n {
                self.start_gather(k + 1, coll, clock);
            }
            for l in self.plan[k].layers.clone() {
                let (w, b) = self.plan[k].local(&layout, l);
                self.trainer.forward_layer(l, &full[w], &full[b]);
                clock.comm(coll, |c| c.progress());
            }
            if k + 1 < n {
                self.reshard(k, full, coll);
            } else {
                // The last unit is the first that backward needs: it stays gathered.
                kept = full;
            }
        }
        self.trainer.loss_delta(labels, rows);
        for k in (0..n).rev() {
            let full = if k + 1 == n {
                std::mem::take(&mut kept)
            } else {
                self.finish_gather(k, coll, clock)
            };
            if k > 0 {
                self.start_gather(k - 1, coll, clock);
            }
            let shards = self.plan[k].shards;
            let mut grad = vec![0.0; shards.padded()];
            self.account(grad.len(), 0);
            self.note(coll);
            for l in self.plan[k].layers.clone().rev() {
                let (w, b) = self.plan[k].local(&layout, l);
                self.trainer
                    .layer_gradient(l, grain, &mut grad[w.start..b.end]);
                if l > 0 {
                    self.trainer.input_delta(l, &full[w]);
                }
                clock.comm(coll, |c| c.progress());
            }
            if scatter {
                if self.acc == Accumulation::NoSync && !sums[k].is_empty() {
                    // The last micro-batch inside no_sync: the rank's whole sum of the unit,
                    // s₀ + (s₁ + (… + last)), is what the reduce-scatter takes.
                    self.push(&mut sums[k], grad);
                    grad = sums[k].pop().expect("the merged sum").0;
                    debug_assert!(sums[k].is_empty());
                }
                self.account(0, grad.len());
                clock.comm(coll, |c| c.start_scatter(k, grad, &shards));
                self.note(coll);
            } else {
                self.push(&mut sums[k], grad);
            }
            self.reshard(k, full, coll);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::{Barrier, Mutex};

    use super::super::{global_batch, LocalReducer};
    use super::*;
    use crate::data;

    /// Ranks as threads: a mailbox per rank and a barrier around every exchange. The collectives
    /// complete as soon as they start (every rank starts the same ones in the same order).
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
        gathered: BTreeMap<usize, Vec<f64>>,
        scattered: BTreeMap<usize, Vec<f64>>,
        bytes: u64,
        /// The calls in order: `gather k`, `wait gather k`, `scatter k`, `wait scatter k`, and
        /// `L` after each layer's forward or backward.
        log: Vec<String>,
    }

    impl Rank<'_> {
        fn exchange(&self, peer: usize, send: &[f64], recv: &mut [f64]) {
            self.shared.slots.lock().unwrap()[self.rank] = send.to_vec();
            self.shared.barrier.wait();
            recv.copy_from_slice(&self.shared.slots.lock().unwrap()[peer]);
            self.shared.barrier.wait();
        }

        /// Distance R/2 first, each rank keeping its own chunk at the end.
        fn far_first(&self, mut grad: Vec<f64>, shards: &Shards) -> Vec<f64> {
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
            grad[shards.range(self.rank)].to_vec()
        }
    }

    impl UnitCollective for Rank<'_> {
        fn start_gather(&mut self, unit: usize, mut full: Vec<f64>, shards: &Shards) {
            let mine = full[shards.range(self.rank)].to_vec();
            self.shared.slots.lock().unwrap()[self.rank] = mine;
            self.shared.barrier.wait();
            let slots = self.shared.slots.lock().unwrap().clone();
            for (r, chunk) in slots.iter().enumerate() {
                full[shards.range(r)].copy_from_slice(chunk);
            }
            self.shared.barrier.wait();
            self.bytes += 8 * (shards.chunk() * (shards.ranks - 1)) as u64;
            self.gathered.insert(unit, full);
            self.log.push(format!("gather {unit}"));
        }
        fn finish_gather(&mut self, unit: usize) -> Vec<f64> {
            self.log.push(format!("wait gather {unit}"));
            self.gathered.remove(&unit).expect("a started gather")
        }
        fn start_scatter(&mut self, unit: usize, grad: Vec<f64>, shards: &Shards) {
            let chunk = if self.shared.reversed {
                self.far_first(grad, shards)
            } else {
                let (chunk, bytes) = Halving::new(grad, self.rank, *shards)
                    .run(|peer, send, recv| self.exchange(peer, send, recv));
                self.bytes += bytes;
                chunk
            };
            self.scattered.insert(unit, chunk);
            self.log.push(format!("scatter {unit}"));
        }
        fn finish_scatter(&mut self, unit: usize) -> Vec<f64> {
            self.log.push(format!("wait scatter {unit}"));
            self.scattered
                .remove(&unit)
                .expect("a started reduce-scatter")
        }
        fn progress(&mut self) -> bool {
            self.log.push("L".into());
            false
        }
        fn in_flight(&self) -> bool {
            false
        }
        fn held_bytes(&self) -> u64 {
            let held = self.gathered.values().chain(self.scattered.values());
            8 * held.map(|v| v.len() as u64).sum::<u64>()
        }
        fn take_bytes(&mut self) -> u64 {
            std::mem::take(&mut self.bytes)
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

    /// What one rank ends with: its gathered parameters and its momentum chunks (as bits), the
    /// bytes it sent per step and its counted peak.
    struct Outcome {
        params: Vec<u64>,
        velocity: Vec<Vec<u64>>,
        bytes: u64,
        peak: u64,
        /// The collectives' calls of the last step.
        log: Vec<String>,
    }

    fn bits(v: &[f64]) -> Vec<u64> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// Trains sharded over `ranks` threads, one micro-batch per step.
    fn sharded(ranks: usize, steps: usize, units: Units, reversed: bool) -> Vec<Outcome> {
        accumulated(
            ranks,
            1,
            Accumulation::Sharded,
            steps,
            units,
            reversed,
            None,
        )
    }

    /// Trains sharded over `ranks` threads, `micro` micro-batches per step accumulated by `acc`
    /// (their rows cut as `rows_as` would, if given).
    fn accumulated(
        ranks: usize,
        micro: usize,
        acc: Accumulation,
        steps: usize,
        units: Units,
        reversed: bool,
        rows_as: Option<Accumulation>,
    ) -> Vec<Outcome> {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let schedule = Schedule {
            batch: 48,
            grain: 3,
            ranks,
            micro,
        };
        let shared = Threads {
            barrier: Barrier::new(ranks),
            slots: Mutex::new(vec![Vec::new(); ranks]),
            reversed,
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..ranks)
                .map(|rank| {
                    let (shared, y, order, iris) = (&shared, &y, &order, &iris);
                    s.spawn(move || {
                        let mlp = Mlp::new(&WIDTHS, 7).unwrap();
                        let mut t =
                            ShardedTrainer::new(&mlp, rank, ranks, units).with_accumulation(acc);
                        t.rows_as = rows_as;
                        let mut coll = Rank {
                            shared,
                            rank,
                            gathered: BTreeMap::new(),
                            scattered: BTreeMap::new(),
                            bytes: 0,
                            log: Vec::new(),
                        };
                        for step in 0..steps {
                            let batch = global_batch(order, 48, step);
                            coll.log.clear();
                            t.step(&iris.x, y, &batch, &schedule, SGD, &mut coll);
                        }
                        let log = std::mem::take(&mut coll.log);
                        let timing = t.take_timing();
                        let peak = t.take_peak();
                        Outcome {
                            params: bits(&t.gather(&mut coll).0),
                            velocity: t.velocity().iter().map(|v| bits(v)).collect(),
                            bytes: timing.bytes_sent / timing.steps,
                            peak,
                            log,
                        }
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    #[test]
    fn sharded_weights_and_momentum_are_bitwise_the_serial_ones_at_1_2_and_4_ranks() {
        let want = reference(12);
        // 103 parameters, layers of 40, 45 and 18: not multiples of 2 or 4, so the padding is
        // exercised for the model and for each layer.
        assert_eq!(want.params.len(), 103);
        for units in [Units::Model, Units::Layer] {
            for ranks in [1, 2, 4] {
                for (rank, got) in sharded(ranks, 12, units, false).into_iter().enumerate() {
                    assert!(
                        got.params == bits(&want.params),
                        "{units:?}, {ranks} ranks, rank {rank}: parameters differ from the \
                         serial reference"
                    );
                    let t = ShardedTrainer::new(&want, rank, ranks, units);
                    let chunks: Vec<Vec<u64>> = t
                        .chunks_of(&want.velocity)
                        .iter()
                        .map(|v| bits(v))
                        .collect();
                    assert_eq!(got.velocity, chunks, "{units:?}, {ranks} ranks");
                    assert_eq!(
                        got.bytes,
                        step_bytes(&want.layout, ranks, units),
                        "{units:?}, {ranks} ranks"
                    );
                }
            }
        }
    }

    #[test]
    fn reduce_scattering_far_pairs_first_changes_the_weights() {
        // The check can fail: adding rank 0 to rank 2 before rank 1 is not the tree's order.
        let want = bits(&reference(12).params);
        for units in [Units::Model, Units::Layer] {
            assert_eq!(sharded(4, 12, units, false)[0].params, want);
            assert_ne!(sharded(4, 12, units, true)[0].params, want, "{units:?}");
        }
    }

    #[test]
    fn per_layer_units_prefetch_the_next_layer_and_reduce_scatter_each_as_soon_as_it_is_final() {
        let log = |units| sharded(2, 1, units, false).swap_remove(0).log.join(", ");
        // Forward: layer k + 1's gather starts before layer k computes (L), each layer is waited
        // for just before it runs; backward re-gathers layers 1 and 0 (layer 2 stayed gathered),
        // each one prefetched before the later layer's backward, and each layer's reduce-scatter
        // starts before the earlier layers' backward; the update waits for them at the end.
        assert_eq!(
            log(Units::Layer),
            "gather 0, wait gather 0, gather 1, L, wait gather 1, gather 2, L, wait gather 2, L, \
             gather 1, L, scatter 2, wait gather 1, gather 0, L, scatter 1, wait gather 0, L, \
             scatter 0, wait scatter 2, wait scatter 1, wait scatter 0"
        );
        // The model as one unit: one gather before forward, one reduce-scatter after backward.
        assert_eq!(
            log(Units::Model),
            "gather 0, wait gather 0, L, L, L, L, L, L, scatter 0, wait scatter 0"
        );
    }

    #[test]
    fn traffic_per_step_counts_each_collective_of_each_unit() {
        let layout = super::super::Layout::new(&WIDTHS).unwrap();
        // Model: one allgather and one reduce-scatter of 26 values × 3 peers.
        assert_eq!(step_bytes(&layout, 4, Units::Model), 8 * 2 * 26 * 3);
        // Layers of 40, 45, 18 → chunks 10, 12, 5 at 4 ranks: forward gathers all three,
        // backward the first two again (the last stays gathered), reduce-scatter all three.
        assert_eq!(step_bytes(&layout, 4, Units::Layer), 8 * (27 + 22 + 27) * 3);
        assert_eq!(step_bytes(&layout, 1, Units::Layer), 0);
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
        let layout = super::super::Layout::new(&WIDTHS).unwrap();
        // Layers 40, 45, 18 at 4 ranks: chunks 10, 12, 5 (27), padded 40, 48, 20. The peak is
        // layer 1's backward: the chunks (54), less layer 1's and 0's chunk, layer 1 gathered
        // with its whole gradient (2 × 48), layer 0 prefetched (40), layer 2's gradient chunk (5).
        assert_eq!(
            layer_peak_bytes(&layout, 4),
            8 * (54 - 12 - 10 + 2 * 48 + 40 + 5)
        );
        // One rank: ddp's three vectors (at the end of backward every gradient is there).
        assert_eq!(layer_peak_bytes(&layout, 1), 3 * 8 * 103);
    }

    #[test]
    fn the_counted_peak_is_the_analytic_one_and_per_layer_units_hold_less() {
        let layout = super::super::Layout::new(&WIDTHS).unwrap();
        for ranks in [1, 2, 4] {
            let model = sharded(ranks, 2, Units::Model, false);
            let layer = sharded(ranks, 2, Units::Layer, false);
            for (m, l) in model.iter().zip(&layer) {
                assert_eq!(m.peak, peak_state_bytes(103, ranks, true), "{ranks} ranks");
                assert_eq!(l.peak, layer_peak_bytes(&layout, ranks), "{ranks} ranks");
            }
            if ranks > 1 {
                assert!(layer[0].peak < model[0].peak, "{ranks} ranks");
            }
        }
        let t = ShardedTrainer::new(&Mlp::new(&WIDTHS, 7).unwrap(), 0, 4, Units::Layer);
        assert_eq!(t.state_bytes(), 3 * 8 * 27);
    }

    #[test]
    fn accumulated_micro_batches_give_the_serial_bits_both_ways_at_1_2_and_4_ranks() {
        // 48 samples in 16 grains of 3: at 4 ranks × 4 micro-batches every micro-batch is one
        // grain, and every way of cutting the batch is a set of subtrees of the fixed tree.
        let want = reference(12);
        let layout = &want.layout;
        for units in [Units::Model, Units::Layer] {
            for acc in [Accumulation::Sharded, Accumulation::NoSync] {
                for ranks in [1, 2, 4] {
                    for micro in [2, 4] {
                        let got = accumulated(ranks, micro, acc, 12, units, false, None);
                        for (rank, got) in got.into_iter().enumerate() {
                            let at = format!("{units:?}, {acc:?}, {ranks} ranks × {micro}");
                            assert!(
                                got.params == bits(&want.params),
                                "{at}, rank {rank}: parameters differ from the serial reference"
                            );
                            let t = ShardedTrainer::new(&want, rank, ranks, units);
                            let chunks: Vec<Vec<u64>> = t
                                .chunks_of(&want.velocity)
                                .iter()
                                .map(|v| bits(v))
                                .collect();
                            assert_eq!(got.velocity, chunks, "{at}");
                            assert_eq!(
                                got.bytes,
                                accumulated_step_bytes(layout, ranks, units, micro, acc),
                                "{at}"
                            );
                            assert_eq!(
                                got.peak,
                                peak_bytes(layout, ranks, units, micro, acc),
                                "{at}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn reduce_scattering_each_micro_batch_of_a_contiguous_share_changes_the_weights() {
        // Reduce-scattering every micro-batch sums the ranks first; with each rank's share cut
        // into consecutive micro-batches (no_sync's layout) that adds rank 0's first micro-batch
        // to rank 1's first before rank 0's second: not the tree's order. Global micro-batches
        // split over the ranks are. Likewise no_sync on the global micro-batches' layout.
        let want = bits(&reference(12).params);
        for units in [Units::Model, Units::Layer] {
            for (ranks, micro) in [(2, 2), (4, 2), (2, 4)] {
                let run = |acc, rows_as| accumulated(ranks, micro, acc, 12, units, false, rows_as);
                let (sharded, no_sync) = (Accumulation::Sharded, Accumulation::NoSync);
                assert_eq!(run(sharded, None)[0].params, want);
                let at = format!("{units:?}, {ranks} ranks × {micro}");
                assert_ne!(run(sharded, Some(no_sync))[0].params, want, "{at}");
                assert_ne!(run(no_sync, Some(sharded))[0].params, want, "{at}");
            }
        }
    }

    #[test]
    fn micro_batches_are_cut_per_rank_for_no_sync_and_per_global_batch_otherwise() {
        let schedule = Schedule {
            batch: 16,
            grain: 1,
            ranks: 2,
            micro: 4,
        };
        let rows = |acc: Accumulation, rank| -> Vec<Range<usize>> {
            (0..4).map(|j| acc.rows(&schedule, rank, j)).collect()
        };
        // no_sync: rank 1's share is the second half, its micro-batches consecutive in it.
        assert_eq!(
            rows(Accumulation::NoSync, 1),
            vec![8..10, 10..12, 12..14, 14..16]
        );
        // Every micro-batch reduce-scattered: global micro-batch j is 4j..4j + 4, rank 1 its
        // second half.
        assert_eq!(
            rows(Accumulation::Sharded, 1),
            vec![2..4, 6..8, 10..12, 14..16]
        );
        assert_eq!(Accumulation::default().name(), "off");
        assert_eq!(Accumulation::NoSync.name(), "on");
    }

    #[test]
    fn accumulated_traffic_and_peak_are_counted_per_micro_batch() {
        let layout = super::super::Layout::new(&WIDTHS).unwrap();
        let (sharded, no_sync) = (Accumulation::Sharded, Accumulation::NoSync);
        for units in [Units::Model, Units::Layer] {
            for ranks in [1, 2, 4] {
                // One micro-batch: both ways are the step without accumulation.
                for acc in [sharded, no_sync] {
                    assert_eq!(
                        accumulated_step_bytes(&layout, ranks, units, 1, acc),
                        step_bytes(&layout, ranks, units)
                    );
                }
                let one = peak_bytes(&layout, ranks, units, 1, sharded);
                assert_eq!(one, peak_bytes(&layout, ranks, units, 1, no_sync));
                let before = match units {
                    Units::Model => peak_state_bytes(103, ranks, true),
                    Units::Layer => layer_peak_bytes(&layout, ranks),
                };
                assert_eq!(one, before, "{units:?}, {ranks} ranks");
            }
        }
        // The model as one unit at 4 ranks (chunk 26, padded 104), 4 micro-batches: every
        // micro-batch gathers once and reduce-scatters once (8 collectives of 3 chunks), or
        // gathers 4 times and reduce-scatters once (5).
        assert_eq!(
            accumulated_step_bytes(&layout, 4, Units::Model, 4, sharded),
            8 * 8 * 26 * 3
        );
        assert_eq!(
            accumulated_step_bytes(&layout, 4, Units::Model, 4, no_sync),
            8 * 5 * 26 * 3
        );
        // Layers with chunks 10, 12, 5 (27): 2 × 27 − 5 gathered per micro-batch.
        assert_eq!(
            accumulated_step_bytes(&layout, 4, Units::Layer, 2, no_sync),
            8 * (2 * 49 + 27) * 3
        );
        // The peak, the model as one unit, the last micro-batch's backward: the momentum chunk,
        // the gathered model and its gradient, and the earlier micro-batches' sums of micro-batches
        // 0–1 and 2: two chunks, or two whole gradients inside no_sync.
        assert_eq!(
            peak_bytes(&layout, 4, Units::Model, 4, sharded),
            8 * (26 + 2 * 104 + 2 * 26)
        );
        assert_eq!(
            peak_bytes(&layout, 4, Units::Model, 4, no_sync),
            8 * (26 + 2 * 104 + 2 * 104)
        );
        // Two micro-batches, per-layer units, no_sync: layer 1's backward in the second
        // micro-batch holds the chunks of parameters and momentum less layer 1's and layer 0's,
        // layer 1 gathered with its gradient (2 × 48), layer 0 prefetched (40), the first
        // micro-batch's whole gradients of layers 0 and 1 (40 + 48) and layer 2's
        // reduce-scattered chunk (5).
        assert_eq!(
            peak_bytes(&layout, 4, Units::Layer, 2, no_sync),
            8 * (54 - 12 - 10 + 2 * 48 + 40 + 88 + 5)
        );
        // Per-layer units hold less than the whole model either way, and no_sync more than
        // reduce-scattering every micro-batch.
        for micro in [2, 4] {
            for units in [Units::Model, Units::Layer] {
                assert!(
                    peak_bytes(&layout, 4, units, micro, sharded)
                        < peak_bytes(&layout, 4, units, micro, no_sync)
                );
            }
            for acc in [sharded, no_sync] {
                assert!(
                    peak_bytes(&layout, 4, Units::Layer, micro, acc)
                        < peak_bytes(&layout, 4, Units::Model, micro, acc)
                );
            }
        }
    }

    #[test]
    fn units_are_parsed_and_a_typo_is_refused_with_the_choices() {
        assert_eq!(Units::parse("layer"), Ok(Units::Layer));
        assert_eq!(Units::parse("model").map(Units::name), Ok("model"));
        assert_eq!(
            Units::parse("block").unwrap_err(),
            "units = \"block\" is not a way to cut the model into FSDP units; choose model (the \
             whole model gathered at once) or layer (one unit per layer)"
        );
        let layout = super::super::Layout::new(&WIDTHS).unwrap();
        assert_eq!(Units::Layer.ranges(&layout), vec![0..40, 40..85, 85..103]);
        assert_eq!(
            Units::Model.ranges(&layout),
            std::iter::once(0..103).collect::<Vec<_>>()
        );
    }
}

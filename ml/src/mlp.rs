//! Data-parallel training of a small multilayer perceptron: the model (dense layers, ReLU, softmax
//! cross-entropy), minibatch SGD with momentum, and the fixed-order gradient reduction that makes
//! the weights trained over any power-of-two number of processes the bitwise same as one
//! process's (and, over a ring, over any number of processes the bitwise same as one process
//! adding in the ring's order: [`ddp`]).
//!
//! Forward and backward passes run on the tuned DGEMM of `scalelab_kernels` (`C += A·B`,
//! [`Workspace::update`]). That GEMM sums each output element as one chain of FMAs over the shared
//! dimension, in an order fixed by that dimension and the cache blocking alone: not by the number
//! of rows, nor by the thread that computes them. So a sample's activations do not depend on which
//! other samples share its batch, and neither does a product whose shared dimension is fixed.
//!
//! The weight gradient is a sum over the samples of the global batch, and the order of that sum is
//! what a naive split over ranks changes. The scheme (docs/training.md):
//!
//! 1. The global batch of `B` samples is cut into `B / grain` fixed **grains** of `grain`
//!    consecutive samples, whatever the rank count. A grain's gradient is one GEMM with shared
//!    dimension `grain` (and a sequential sum for the biases): the same bits on any rank.
//! 2. The grains are summed along one fixed binary tree: the sum over grains `lo..hi` is the sum
//!    over `lo..mid` plus the sum over `mid..hi`, `mid = lo + (hi − lo) / 2` ([`tree_sum`]).
//! 3. With `R` ranks and `k` micro-batches per step, both powers of two dividing the grain count,
//!    every rank's contiguous share of grains and every micro-batch inside it is a subtree of that
//!    tree. A rank sums its micro-batches' subtrees as they come (a binary-counter stack: two
//!    partial sums of equal size merge, left + right), then [`GradientReducer::combine`] joins the
//!    ranks' subtrees in the same tree (recursive doubling: at step `s`, rank `r` and `r ^ 2^s`
//!    both compute left + right). Each addition of the serial tree happens once, with the same
//!    operands, wherever it runs: the sum is bitwise the one-process sum.
//!
//! Inside a rank, a micro-batch's grains are computed in parallel on the current rayon pool (one
//! contiguous run of grains per thread, each with its own GEMM workspace) and summed by the same
//! tree afterwards (its element-wise additions cut into blocks of columns over the same pool:
//! `tree_sum_columns`), so the thread count changes no bit either. The forward pass and the input
//! gradient are split over the same pool by contiguous runs of rows (samples), each run one GEMM
//! with its own workspace and its own bias, ReLU, mask and rounding: a sample's row of
//! `Z = A·W` or of `Δ·Wᵀ` depends on that row alone (`rows_per_run` says where in the kernel
//! this holds), so these splits change no bit either.
//!
//! The ml crate stays free of MPI: the cross-rank step is the [`GradientReducer`] trait,
//! [`LocalReducer`] (one process) here and the MPI implementation in the binary's `mpi.train`
//! workload. The `ddp` variants (buckets reduced while backward runs, a ring's order and its serial
//! reference, the MPI library's own order) are in [`ddp`].
//!
//! Mixed precision ([`precision`], [`Trainer::with_precision`]): with a reduced format every GEMM
//! operand (weights, activations, activation gradients) is rounded to it, and so is each grain's
//! weight and bias gradient as it leaves its GEMM; the loss gradient is that of the mean loss
//! times the loss scale. All of it is element by element and per grain, so the fixed tree above
//! still gives the one-process bits at every rank count, in every format. The fp64 default takes
//! none of these steps: its bits are the exact path's.

use std::ops::Range;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;
use scalelab_kernels::gemm::tuned::Workspace;

use crate::data::Matrix;

pub mod ddp;
pub mod engine;
pub mod fedavg;
pub mod pipeline;
pub mod precision;
pub mod sharded;

pub use precision::{LossScale, LossScaler, MixedPrecision, Precision};

/// Joins the ranks' partial gradients into the whole. Every rank calls it once per optimizer step
/// with a buffer of the same length, so a collective implementation cannot deadlock.
pub trait GradientReducer {
    /// On entry `grad` holds this rank's subtree sum (rank `r` of `R` owns grains
    /// `r·n/R .. (r+1)·n/R` of the global batch); on return it holds the whole tree's sum, on
    /// every rank. Implementations must add exactly as [`tree_sum`] does over the ranks' partial
    /// sums (left + right, halves of the rank range); the bytes this rank sent are returned.
    fn combine(&self, grad: &mut [f64]) -> u64;
}

/// The reducer of a single process: its gradient already covers the whole batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalReducer;

impl GradientReducer for LocalReducer {
    fn combine(&self, _grad: &mut [f64]) -> u64 {
        0
    }
}

/// Sums `n = buf.len() / len` consecutive vectors of length `len` along the fixed tree (module
/// docs): on return the first vector holds the sum; the others are clobbered.
pub fn tree_sum(buf: &mut [f64], len: usize) {
    let n = buf.len().checked_div(len).unwrap_or(0);
    if n > 1 {
        let mid = n / 2;
        let (left, right) = buf.split_at_mut(mid * len);
        tree_sum(left, len);
        tree_sum(right, len);
        for (a, b) in left[..len].iter_mut().zip(&right[..len]) {
            *a += *b;
        }
    }
}

/// Fewest elements per column block of [`tree_sum_columns`]: a block is a rayon task that walks
/// every vector, so a few thousand elements keep each task's work well above its cost.
const MIN_TREE_COLUMNS: usize = 4096;

/// [`tree_sum`] on the current rayon pool: the vectors are cut into blocks of columns (element
/// positions), and each block is summed along the same tree by one task. The tree adds element by
/// element, so every element gets the same additions of the same operands in the same order as
/// in [`tree_sum`]: the same bits, on any number of threads. One thread, fewer than two vectors or
/// vectors shorter than two blocks take [`tree_sum`] itself.
fn tree_sum_columns(buf: &mut [f64], len: usize) {
    let n = buf.len().checked_div(len).unwrap_or(0);
    let threads = rayon::current_num_threads();
    if threads == 1 || n < 2 || len < 2 * MIN_TREE_COLUMNS {
        tree_sum(buf, len);
        return;
    }
    // A few blocks per thread, so that a thread slowed by another process does not hold the rest.
    let block = len.div_ceil(4 * threads).max(MIN_TREE_COLUMNS);
    let mut columns: Vec<Vec<&mut [f64]>> = (0..len.div_ceil(block))
        .map(|_| Vec::with_capacity(n))
        .collect();
    for v in buf[..n * len].chunks_mut(len) {
        for (c, part) in v.chunks_mut(block).enumerate() {
            columns[c].push(part);
        }
    }
    columns
        .par_iter_mut()
        .for_each(|parts| tree_sum_parts(parts));
}

/// [`tree_sum`]'s tree over one block of columns of each vector: on return `parts[0]` holds the
/// sum; the others are clobbered.
fn tree_sum_parts(parts: &mut [&mut [f64]]) {
    let n = parts.len();
    if n > 1 {
        let mid = n / 2;
        let (left, right) = parts.split_at_mut(mid);
        tree_sum_parts(left);
        tree_sum_parts(right);
        for (a, b) in left[0].iter_mut().zip(right[0].iter()) {
            *a += *b;
        }
    }
}

/// How one optimizer step's global batch is split: `batch` samples in grains of `grain`, over
/// `ranks` processes, each doing `micro` micro-batches (gradient accumulation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub batch: usize,
    pub grain: usize,
    pub ranks: usize,
    pub micro: usize,
}

impl Schedule {
    /// Refuse a split the fixed reduction tree cannot follow, saying which value to change.
    /// `name` prefixes the message (the workload's name).
    pub fn check(&self, name: &str) -> Result<(), String> {
        self.check_tree_ranks(name)?;
        self.check_shares(name)
    }

    /// The fixed tree's rule on the rank count alone: recursive doubling joins halves of the rank
    /// range, so the count must be a power of two.
    pub fn check_tree_ranks(&self, name: &str) -> Result<(), String> {
        let ranks = self.ranks;
        if ranks > 0 && !ranks.is_power_of_two() {
            return Err(format!(
                "{name}: {ranks} ranks: the fixed reduction tree halves the global batch, so the \
                 rank count must be a power of two; use {} or {} ranks",
                ranks.next_power_of_two() / 2,
                ranks.next_power_of_two()
            ));
        }
        Ok(())
    }

    /// [`Schedule::check`] without its rule on the rank count: what a reduction whose serial
    /// reference joins the ranks' shares in its own order needs (a ring, whose order
    /// [`ddp::Allreduce::combine_serial`] follows for any rank count, or `MPI_Allreduce`, checked
    /// within a tolerance). Each rank's share is still whole micro-batches of whole grains, and
    /// its micro-batches the fixed tree over that share.
    pub fn check_shares(&self, name: &str) -> Result<(), String> {
        let Schedule {
            batch,
            grain,
            ranks,
            micro,
        } = *self;
        if batch == 0 || grain == 0 || micro == 0 || ranks == 0 {
            return Err(format!(
                "{name}: batch, grain and micro must be at least 1 (batch = {batch}, grain = \
                 {grain}, micro = {micro})"
            ));
        }
        if !micro.is_power_of_two() {
            return Err(format!(
                "{name}: micro = {micro}: the fixed reduction tree halves each rank's share, so \
                 the micro-batch count must be a power of two; use micro = {} or {}",
                micro.next_power_of_two() / 2,
                micro.next_power_of_two()
            ));
        }
        let unit = ranks * micro * grain;
        if !batch.is_multiple_of(unit) {
            // One process (or a federated client, which trains its own minibatches) has no rank
            // factor to name.
            let factors = if ranks == 1 {
                format!("micro-batches × grain = {micro} × {grain}")
            } else {
                format!("ranks × micro-batches × grain = {ranks} × {micro} × {grain}")
            };
            return Err(format!(
                "{name}: the global batch of {batch} samples is not divisible by {factors} = \
                 {unit}: every micro-batch must hold whole grains; use a batch that is a multiple \
                 of {unit} (e.g. {})",
                batch.next_multiple_of(unit)
            ));
        }
        Ok(())
    }

    /// Positions in the global batch of rank `rank`'s share.
    pub fn shard(&self, rank: usize) -> Range<usize> {
        let per = self.batch / self.ranks;
        rank * per..(rank + 1) * per
    }
}

/// SGD with (heavy-ball) momentum, as `torch.optim.SGD(momentum=μ)`: `v ← μ·v + g`, `w ← w − lr·v`,
/// with `g` the gradient of the mean loss over the global batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sgd {
    pub lr: f64,
    pub momentum: f64,
}

/// Where each layer's weights (`inputs × outputs`, row-major) and biases live in the flat
/// parameter vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    widths: Vec<usize>,
    offsets: Vec<usize>,
    len: usize,
}

impl Layout {
    /// Widths from the inputs to the classes, e.g. `[4, 16, 3]`: at least two, none zero.
    pub fn new(widths: &[usize]) -> Result<Layout, String> {
        if widths.len() < 2 || widths.contains(&0) {
            return Err(format!(
                "an MLP needs at least an input and an output width, none zero (got {widths:?})"
            ));
        }
        let mut offsets = Vec::with_capacity(widths.len() - 1);
        let mut len = 0usize;
        for w in widths.windows(2) {
            offsets.push(len);
            len += w[0] * w[1] + w[1];
        }
        Ok(Layout {
            widths: widths.to_vec(),
            offsets,
            len,
        })
    }

    /// Number of parameters (weights and biases).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the model has no parameters (never, for a valid layout).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The widths, inputs first.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    fn layers(&self) -> usize {
        self.widths.len() - 1
    }

    /// Ranges of layer `l`'s weights and biases.
    fn layer(&self, l: usize) -> (Range<usize>, Range<usize>) {
        let (i, o) = (self.widths[l], self.widths[l + 1]);
        let at = self.offsets[l];
        (at..at + i * o, at + i * o..at + i * o + o)
    }

    /// FLOPs of one sample's forward and backward pass: 2·i·o for the forward product, twice that
    /// for the two backward products (the input gradient is skipped for the first layer).
    pub fn flops_per_sample(&self) -> f64 {
        (0..self.layers())
            .map(|l| {
                let io = (self.widths[l] * self.widths[l + 1]) as f64;
                if l == 0 {
                    4.0 * io
                } else {
                    6.0 * io
                }
            })
            .sum()
    }
}

/// The model: its layout, parameters and the optimizer's velocity.
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    pub layout: Layout,
    pub params: Vec<f64>,
    pub velocity: Vec<f64>,
}

impl Mlp {
    /// He-uniform weights (`U(±√(6 / inputs))`) from `seed`, zero biases and velocity.
    pub fn new(widths: &[usize], seed: u64) -> Result<Mlp, String> {
        let layout = Layout::new(widths)?;
        let mut params = vec![0.0; layout.len()];
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        for l in 0..layout.layers() {
            let (w, _) = layout.layer(l);
            let a = (6.0 / layout.widths[l] as f64).sqrt();
            for p in &mut params[w] {
                *p = rng.random_range(-a..a);
            }
        }
        let velocity = vec![0.0; layout.len()];
        Ok(Mlp {
            layout,
            params,
            velocity,
        })
    }
}

/// Seconds and bytes of the steps taken so far (reset with [`Trainer::take_timing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StepTiming {
    /// Forward, backward, local reduction and the optimizer update.
    pub compute_s: f64,
    /// Inside [`GradientReducer::combine`], waiting for slower ranks included ([`split_waiting`]
    /// separates the two).
    pub comm_s: f64,
    /// Bytes this rank sent in `combine`.
    pub bytes_sent: u64,
    pub steps: u64,
    /// Sum over the steps of the share of gradient elements that were exactly zero after the
    /// reduction (ReLU's dead units, and under a reduced precision the gradients that underflowed).
    pub zero_grad_share: f64,
}

/// The per-step record a rank keeps to split its reduction time into waiting and communicating
/// ([`split_waiting`]): compute and reduction seconds of each step, from the running totals of
/// [`StepTiming`] read after every step.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepLog {
    /// Compute seconds of each step.
    pub compute: Vec<f64>,
    /// Seconds inside the reduction of each step.
    pub comm: Vec<f64>,
    last: (f64, f64),
}

impl StepLog {
    /// A repetition begins: forget the last one's steps.
    pub fn restart(&mut self) {
        *self = StepLog::default();
    }

    /// A step is done; `total` is the trainer's timing since the repetition began.
    pub fn record(&mut self, total: &StepTiming) {
        self.compute.push(total.compute_s - self.last.0);
        self.comm.push(total.comm_s - self.last.1);
        self.last = (total.compute_s, total.comm_s);
    }
}

/// Split rank `rank`'s seconds inside each step's reduction (`comm[s]`) into waiting for the
/// slowest rank and communicating: `(wait_s, comm_s)` summed over the steps. `compute` holds
/// every rank's compute seconds per step, rank after rank (`compute[q * steps + s]`).
///
/// A reduction needs every rank's gradient, so the ranks leave a step's reduction together and a
/// rank whose step computed `c` seconds reaches the next one `max_q c_q − c` after the slowest
/// rank began to wait. That much of its reduction time is waiting for the slowest rank (capped by
/// the time it spent there); the rest moved data. It is an estimate: it takes the update after a
/// reduction as part of the next arrival (the same few milliseconds on every rank), and assumes
/// the ranks left the previous reduction at the same instant. The slowest rank of a step waits
/// for nobody, so its whole reduction time is communication. What this separates is what overlap
/// can hide (moving data) from what it cannot (a rank that is behind).
pub fn split_waiting(compute: &[f64], ranks: usize, rank: usize, comm: &[f64]) -> (f64, f64) {
    let steps = comm.len();
    assert_eq!(
        compute.len(),
        ranks * steps,
        "compute seconds of every rank and step"
    );
    let (mut wait, mut moving) = (0.0, 0.0);
    for (s, &m) in comm.iter().enumerate() {
        let slowest = (0..ranks)
            .map(|q| compute[q * steps + s])
            .fold(f64::NEG_INFINITY, f64::max);
        let behind = (slowest - compute[rank * steps + s]).clamp(0.0, m);
        wait += behind;
        moving += m - behind;
    }
    (wait, moving)
}

/// A model with the buffers and GEMM workspace to train it on one rank.
pub struct Trainer {
    pub mlp: Mlp,
    ws: Workspace,
    /// Activations per layer (inputs first) of the current micro-batch, `rows × width`.
    acts: Vec<Vec<f64>>,
    delta: Vec<f64>,
    next_delta: Vec<f64>,
    transposed: Vec<f64>,
    /// One gradient per grain of the current micro-batch.
    leaves: Vec<f64>,
    /// One GEMM workspace and transpose buffer per rayon thread that computes grains or a run of
    /// rows, made with `ws`'s micro-kernel and blocking ([`ThreadScratch::like`]).
    scratch: Vec<ThreadScratch>,
    /// The GEMM operands' format and the loss scale (fp64, none: the exact path).
    mp: MixedPrecision,
    scaler: LossScaler,
    /// The weights rounded to `mp.precision` for the current forward and backward pass (the
    /// master weights in `mlp.params` stay f64); empty at fp64.
    low_params: Vec<f64>,
    /// What the loss gradient of each sample is multiplied by under a reduced precision: the loss
    /// scale over the global batch (the gradient of the scaled mean loss).
    delta_scale: f64,
    /// The runs of grains handed to the pool, by index (tests: the work really is split, one run
    /// per thread; which thread takes which run is rayon's work stealing).
    #[cfg(test)]
    grain_threads: std::sync::Mutex<std::collections::BTreeSet<usize>>,
    /// The runs of rows of the forward pass (`"forward"`) and of the input gradient (`"input"`),
    /// by pass and index (tests: those passes really are split; the single call is run 0).
    #[cfg(test)]
    row_runs: std::sync::Mutex<std::collections::BTreeSet<(&'static str, usize)>>,
    timing: StepTiming,
}

/// What one thread needs to compute grain gradients or a run of rows: its own GEMM workspace and
/// the transposed activations of the grain at hand.
struct ThreadScratch {
    ws: Workspace,
    transposed: Vec<f64>,
}

impl ThreadScratch {
    /// A scratch whose workspace has `ws`'s micro-kernel and cache blocking: the kernel's sums
    /// depend on both ([`rows_per_run`]), so every thread's GEMM must use the trainer's.
    fn like(ws: &Workspace) -> ThreadScratch {
        let ws = Workspace::for_isa(ws.isa())
            .expect("the trainer's workspace already runs this micro-kernel")
            .with_blocking(ws.blocking());
        ThreadScratch {
            ws,
            transposed: Vec::new(),
        }
    }

    /// At least `threads` scratches in `scratch`, new ones like `ws`.
    fn ensure(scratch: &mut Vec<ThreadScratch>, ws: &Workspace, threads: usize) {
        if scratch.len() < threads {
            scratch.resize_with(threads, || ThreadScratch::like(ws));
        }
    }
}

/// Fewest rows per thread for which [`Trainer::forward_layer`] and [`Trainer::input_delta`] split
/// their rows over the pool. Each run packs the whole weight matrix into its own workspace (about
/// the work of multiplying a handful of rows by it) and costs a rayon task, so runs of a few rows
/// would spend more on that than they share out; a smaller problem stays one call, whose kernel
/// still splits its rows over the pool with one packed copy of the weights shared by all threads.
const MIN_ROWS_PER_THREAD: usize = 64;

/// Rows per run when `n` rows are split into contiguous runs over the current rayon pool (the last
/// run may be shorter): `n` itself, one call, when the pool has one thread or `n` is below two
/// runs of [`MIN_ROWS_PER_THREAD`].
///
/// Why a split changes no bit (checked in `scalelab_kernels::gemm::tuned`): for `C += A·B` the
/// tuned GEMM computes each element of C as follows. The shared dimension `k` is cut into blocks
/// of the workspace's `KC` in ascending order; for each block the micro-kernel starts an
/// accumulator at zero and runs one chain of multiply-adds over the block's `p` in ascending order
/// (FMAs in the AVX2 and AVX-512 kernels, a multiply then an add in the portable one), and then C
/// gets `C + acc` (the block's sum is stored instead for the first block of a `C = A·B`). A full
/// micro-tile adds in registers and an edge tile through a buffer, with the same addition; the
/// zero rows and columns that pad an edge tile only feed their own lanes. Which rows share a
/// micro-tile, an `MC` block or a thread's band, and the `NC` column blocks, decide only where
/// an element is computed, never its operations. So an element depends on its row of A, its
/// column of B, `k`, `KC` and the micro-kernel: not on `m`, nor on the other rows in the call.
/// A split must therefore cut rows only (never the shared dimension), and every run's workspace
/// must have the same micro-kernel and `KC` as the single call's ([`ThreadScratch::like`]).
fn rows_per_run(n: usize) -> usize {
    let runs = rayon::current_num_threads()
        .min(n / MIN_ROWS_PER_THREAD)
        .max(1);
    n.div_ceil(runs).max(1)
}

/// One run of rows of a forward layer: round the run's input rows `a` (`rows × i`) to the GEMM's
/// format in place (backward reads them rounded too), `z = a·W + b` for its output rows
/// (`rows × o`, every element overwritten), and ReLU unless `relu` is false (the last layer).
fn forward_rows(
    ws: &mut Workspace,
    a: &mut [f64],
    z: &mut [f64],
    (weights, bias): (&[f64], &[f64]),
    (i, o): (usize, usize),
    relu: bool,
    precision: Precision,
) {
    let n = z.len() / o;
    for row in z.chunks_exact_mut(o) {
        row.copy_from_slice(bias);
    }
    precision.round_slice(a);
    ws.update(n, o, i, a, i, weights, o, z, o);
    if relu {
        for v in z.iter_mut() {
            *v = v.max(0.0);
        }
    }
}

impl Trainer {
    pub fn new(mlp: Mlp) -> Trainer {
        Trainer {
            mlp,
            ws: Workspace::new(),
            acts: Vec::new(),
            delta: Vec::new(),
            next_delta: Vec::new(),
            transposed: Vec::new(),
            leaves: Vec::new(),
            scratch: Vec::new(),
            mp: MixedPrecision::default(),
            scaler: LossScaler::new(&MixedPrecision::default()),
            low_params: Vec::new(),
            delta_scale: 1.0,
            #[cfg(test)]
            grain_threads: Default::default(),
            #[cfg(test)]
            row_runs: Default::default(),
            timing: StepTiming::default(),
        }
    }

    /// The trainer computing in `mp`'s format with its loss scale (module docs, [`precision`]),
    /// the scaler at its initial scale.
    pub fn with_precision(mut self, mp: MixedPrecision) -> Trainer {
        self.scaler = LossScaler::new(&mp);
        self.mp = mp;
        self
    }

    /// The precision setting.
    pub fn precision(&self) -> MixedPrecision {
        self.mp
    }

    /// The loss scaler: its current scale and the steps it skipped.
    pub fn scaler(&self) -> &LossScaler {
        &self.scaler
    }

    /// The timing so far, and zero it.
    pub fn take_timing(&mut self) -> StepTiming {
        std::mem::take(&mut self.timing)
    }

    /// The timing so far.
    pub fn timing(&self) -> &StepTiming {
        &self.timing
    }

    /// Forward pass of `rows` of `x`: fills `self.acts` (the last entry holds the logits).
    fn forward(&mut self, x: &Matrix, rows: &[usize]) {
        let layers = self.mlp.layout.layers();
        let precision = self.mp.precision;
        if precision.is_reduced() {
            // The weights as the GEMMs read them; the biases stay wide (added in the accumulator).
            self.low_params.clear();
            self.low_params.extend_from_slice(&self.mlp.params);
            for l in 0..layers {
                precision.round_slice(&mut self.low_params[self.mlp.layout.layer(l).0]);
            }
        }
        self.load_rows(x, rows);
        let params = std::mem::take(&mut self.mlp.params);
        let low = std::mem::take(&mut self.low_params);
        for l in 0..layers {
            let (w, b) = self.mlp.layout.layer(l);
            let weights = if precision.is_reduced() {
                &low[w]
            } else {
                &params[w]
            };
            self.forward_layer(l, weights, &params[b]);
        }
        (self.mlp.params, self.low_params) = (params, low);
    }

    /// The samples `rows` of `x` as the first layer's input: the start of a forward pass run
    /// layer by layer with [`Trainer::forward_layer`].
    pub(crate) fn load_rows(&mut self, x: &Matrix, rows: &[usize]) {
        self.acts
            .resize_with(self.mlp.layout.widths.len(), Vec::new);
        let a0 = &mut self.acts[0];
        a0.clear();
        for &r in rows {
            a0.extend_from_slice(x.row(r));
        }
    }

    /// Layer `l`'s forward pass over the loaded rows: its output `ReLU(A·W + b)` (no ReLU after
    /// the last layer) from its input `A`, with `weights` (`inputs × outputs`, row-major, as the
    /// GEMM reads them) and `bias`. It reads no parameter from `self.mlp`, so a caller may hold
    /// the layer anywhere (`mlp::sharded` gathers one layer at a time). On a pool of several
    /// threads the rows are split into contiguous runs, one per thread ([`rows_per_run`]), each
    /// one GEMM on its own workspace with its own bias, ReLU and rounding; otherwise one GEMM over
    /// all the rows. The shared dimension is the layer's input width either way: a sample's
    /// output does not depend on which rows share the call, nor on the layers computed before or
    /// after it.
    pub(crate) fn forward_layer(&mut self, l: usize, weights: &[f64], bias: &[f64]) {
        let layout = &self.mlp.layout;
        let (i, o) = (layout.widths[l], layout.widths[l + 1]);
        let relu = l + 1 != layout.layers();
        let precision = self.mp.precision;
        let (before, after) = self.acts.split_at_mut(l + 1);
        let a = &mut before[l];
        let n = a.len() / i;
        let z = &mut after[0];
        // Every element is overwritten by its bias in `forward_rows`: no zeroing needed.
        z.resize(n * o, 0.0);
        #[cfg(test)]
        let row_runs = &self.row_runs;
        let run = |t: usize, a: &mut [f64], z: &mut [f64], ws: &mut Workspace| {
            #[cfg(test)]
            row_runs.lock().unwrap().insert(("forward", t));
            #[cfg(not(test))]
            let _ = t;
            forward_rows(ws, a, z, (weights, bias), (i, o), relu, precision);
        };
        let per = rows_per_run(n);
        if per >= n {
            run(0, a, z, &mut self.ws);
        } else {
            ThreadScratch::ensure(&mut self.scratch, &self.ws, n.div_ceil(per));
            a.par_chunks_mut(per * i)
                .zip(z.par_chunks_mut(per * o))
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .for_each(|(t, ((a, z), s))| run(t, a, z, &mut s.ws));
        }
    }

    /// Mean cross-entropy loss and accuracy of the model on `rows` (forward only).
    pub fn evaluate(&mut self, x: &Matrix, labels: &[u32], rows: &[usize]) -> (f64, f64) {
        if rows.is_empty() {
            return (f64::NAN, f64::NAN);
        }
        self.forward(x, rows);
        let c = *self.mlp.layout.widths.last().unwrap();
        let logits = self.acts.last().unwrap();
        let (mut loss, mut right) = (0.0, 0usize);
        for (k, &r) in rows.iter().enumerate() {
            let z = &logits[k * c..(k + 1) * c];
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
            let y = labels[r] as usize;
            loss += m + s.ln() - z[y];
            let best = (0..c).fold(0, |b, j| if z[j] > z[b] { j } else { b });
            right += usize::from(best == y);
        }
        (loss / rows.len() as f64, right as f64 / rows.len() as f64)
    }

    /// The summed (not averaged) loss gradient of one micro-batch `rows` (a whole number of
    /// grains), as the tree sum of its grains' gradients, into `out`.
    fn micro_gradient(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        rows: &[usize],
        grain: usize,
        out: &mut [f64],
    ) {
        self.micro_gradient_with(x, labels, rows, grain, out, &mut |_, _| {});
    }

    /// [`Trainer::micro_gradient`], calling `ready(range, &out[range])` as soon as backward has
    /// finished a layer (the last layer first): `range` covers that layer's weights and biases,
    /// whose values in `out` are then final. The grains are tree-summed layer by layer; the tree
    /// adds element by element, so the bits are those of one tree sum over the whole vector.
    fn micro_gradient_with(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        rows: &[usize],
        grain: usize,
        out: &mut [f64],
        ready: &mut dyn FnMut(Range<usize>, &[f64]),
    ) {
        self.forward(x, rows);
        self.loss_delta(labels, rows);
        let layout = self.mlp.layout.clone();
        let reduced = self.mp.precision.is_reduced();
        let params = std::mem::take(&mut self.mlp.params);
        let low = std::mem::take(&mut self.low_params);
        for l in (0..layout.layers()).rev() {
            let (w, b) = layout.layer(l);
            let done = w.start..b.end;
            self.layer_gradient(l, grain, &mut out[done.clone()]);
            ready(done.clone(), &out[done]);
            if l > 0 {
                self.input_delta(l, if reduced { &low[w] } else { &params[w] });
            }
        }
        (self.mlp.params, self.low_params) = (params, low);
    }

    /// The gradient of each loaded sample's loss with respect to its logits (softmax minus
    /// one-hot; `rows` are the loaded rows, for their labels) as the last layer's `Δ`, after a
    /// forward pass. Under a reduced precision, that of the scaled mean loss, rounded as the
    /// backward GEMMs read it.
    pub(crate) fn loss_delta(&mut self, labels: &[u32], rows: &[usize]) {
        let c = *self.mlp.layout.widths.last().unwrap();
        self.delta.clear();
        self.delta.extend_from_slice(self.acts.last().unwrap());
        for (k, &r) in rows.iter().enumerate() {
            let z = &mut self.delta[k * c..(k + 1) * c];
            let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut s = 0.0;
            for v in z.iter_mut() {
                *v = (*v - m).exp();
                s += *v;
            }
            for v in z.iter_mut() {
                *v /= s;
            }
            z[labels[r] as usize] -= 1.0;
        }
        let precision = self.mp.precision;
        if precision.is_reduced() {
            let scale = self.delta_scale;
            for v in self.delta.iter_mut() {
                *v = precision.round(*v * scale);
            }
        }
    }

    /// Layer `l`'s weight and bias gradient over the loaded rows, from its input (the forward
    /// pass's) and its `Δ` (from [`Trainer::loss_delta`] or [`Trainer::input_delta`]): one GEMM
    /// per grain of `grain` samples, the grains summed along the fixed tree, into `out` (the
    /// layer's weights then biases, `inputs·outputs + outputs` values, as in the flat vector).
    /// Every grain's GEMM and every addition are those of the whole-model pass, so the bits do not
    /// depend on which layers are computed together.
    pub(crate) fn layer_gradient(&mut self, l: usize, grain: usize, out: &mut [f64]) {
        let (i, o) = (self.mlp.layout.widths[l], self.mlp.layout.widths[l + 1]);
        let len = i * o + o;
        let (w, b) = (0..i * o, i * o..len);
        let grains = self.delta.len() / o / grain;
        let precision = self.mp.precision;
        // Each grain zeroes its own leaf below, on the thread that computes it.
        self.leaves.resize(grains * len, 0.0);
        let a = &self.acts[l];
        // The grains' gradients are independent: the rayon pool's threads (the `threads` axis)
        // take contiguous runs of them, each thread with its own workspace. A grain's gradient is
        // the same bits on any thread, and the tree below sums them in the fixed order
        // afterwards, so the thread count changes no bit.
        let threads = rayon::current_num_threads().clamp(1, grains.max(1));
        ThreadScratch::ensure(&mut self.scratch, &self.ws, threads);
        let per_thread = grains.div_ceil(threads).max(1);
        let delta = &self.delta;
        #[cfg(test)]
        let grain_threads = &self.grain_threads;
        let grain_run = |t: usize, run: &mut [f64], scratch: &mut ThreadScratch| {
            #[cfg(test)]
            grain_threads.lock().unwrap().insert(t);
            for (k, leaf) in run.chunks_mut(len).enumerate() {
                leaf.fill(0.0);
                let g = t * per_thread + k;
                // dW_g = A_gᵀ · Δ_g: shared dimension = the grain's samples.
                let transposed = &mut scratch.transposed;
                transposed.clear();
                transposed.resize(i * grain, 0.0);
                for s in 0..grain {
                    for f in 0..i {
                        transposed[f * grain + s] = a[(g * grain + s) * i + f];
                    }
                }
                let d = &delta[g * grain * o..(g + 1) * grain * o];
                scratch.ws.update(
                    i,
                    o,
                    grain,
                    transposed,
                    grain,
                    d,
                    o,
                    &mut leaf[w.clone()],
                    o,
                );
                let db = &mut leaf[b.clone()];
                for s in 0..grain {
                    for (acc, v) in db.iter_mut().zip(&d[s * o..(s + 1) * o]) {
                        *acc += v;
                    }
                }
                // The grain's gradient leaves its GEMM in the format, as a micro-batch's
                // half-precision gradient does before it is accumulated in the wide one.
                precision.round_slice(&mut leaf[w.clone()]);
                precision.round_slice(&mut leaf[b.clone()]);
            }
        };
        if threads == 1 {
            grain_run(0, &mut self.leaves, &mut self.scratch[0]);
        } else {
            self.leaves
                .par_chunks_mut(per_thread * len)
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .for_each(|(t, (run, scratch))| grain_run(t, run, scratch));
        }
        tree_sum_columns(&mut self.leaves, len);
        out.copy_from_slice(&self.leaves[..len]);
    }

    /// `Δ_{l−1} = (Δ_l · W_lᵀ) ⊙ ReLU'(Z_{l−1})`: layer `l`'s input gradient becomes the `Δ` of
    /// layer `l − 1`, with `weights` layer `l`'s as the GEMM reads them. On a pool of several
    /// threads the rows are split as in [`Trainer::forward_layer`] (Wᵀ transposed once, each run
    /// one GEMM on its own workspace with its own mask and rounding); otherwise it is
    /// [`relu_input_gradient`]'s one GEMM.
    pub(crate) fn input_delta(&mut self, l: usize, weights: &[f64]) {
        let (i, o) = (self.mlp.layout.widths[l], self.mlp.layout.widths[l + 1]);
        let precision = self.mp.precision;
        let n = self.delta.len() / o;
        let per = rows_per_run(n);
        #[cfg(test)]
        let row_runs = &self.row_runs;
        let record = |t: usize| {
            #[cfg(test)]
            row_runs.lock().unwrap().insert(("input", t));
            #[cfg(not(test))]
            let _ = t;
        };
        if per >= n {
            record(0);
            relu_input_gradient(
                &mut self.ws,
                &mut self.transposed,
                &mut self.next_delta,
                (&self.delta, weights, &self.acts[l]),
                (i, o),
            );
            precision.round_slice(&mut self.next_delta);
        } else {
            transpose_weights(&mut self.transposed, weights, (i, o));
            self.next_delta.resize(n * i, 0.0);
            ThreadScratch::ensure(&mut self.scratch, &self.ws, n.div_ceil(per));
            let wt = &self.transposed;
            self.next_delta
                .par_chunks_mut(per * i)
                .zip(self.delta.par_chunks(per * o))
                .zip(self.acts[l].par_chunks(per * i))
                .zip(self.scratch.par_iter_mut())
                .enumerate()
                .for_each(|(t, (((out, delta), input), s))| {
                    record(t);
                    relu_gradient_rows(&mut s.ws, wt, out, (delta, input), (i, o));
                    precision.round_slice(out);
                });
        }
        std::mem::swap(&mut self.delta, &mut self.next_delta);
    }

    /// One optimizer step on the global batch `batch` (dataset row indices, `schedule.batch`
    /// long) as rank `rank`: its share in `schedule.micro` micro-batches, the partial sums merged
    /// along the fixed tree, the ranks joined by `reducer`, then SGD with momentum on the mean.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        schedule: &Schedule,
        rank: usize,
        sgd: Sgd,
        reducer: &dyn GradientReducer,
    ) {
        let start = Instant::now();
        let mut grad = self.local_gradient(x, labels, batch, schedule, rank, &mut |_, _| {});
        let before_comm = Instant::now();
        let bytes = reducer.combine(&mut grad);
        let after_comm = Instant::now();
        self.apply(&grad, schedule.batch, sgd);
        let comm = (after_comm - before_comm).as_secs_f64();
        self.timing.comm_s += comm;
        self.timing.compute_s += start.elapsed().as_secs_f64() - comm;
        self.timing.bytes_sent += bytes;
        self.timing.steps += 1;
    }
}

impl Trainer {
    /// Rank `rank`'s subtree sum of the gradient of the global batch `batch`: its share in
    /// `schedule.micro` micro-batches, merged along the fixed tree. During the last micro-batch's
    /// backward pass `ready(range, whole)` is called once per layer (the last layer first), when
    /// that layer's parameters `range` have their final subtree sum: `whole` is the gradient so
    /// far, final from `range.start` to its end. A caller can start reducing it while the earlier
    /// layers' backward runs (`mlp::ddp`); `mlp::sharded` reduce-scatters it whole.
    pub(crate) fn local_gradient(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        schedule: &Schedule,
        rank: usize,
        ready: &mut dyn FnMut(Range<usize>, &[f64]),
    ) -> Vec<f64> {
        let p = self.mlp.layout.len();
        self.delta_scale = self.scaler.scale() / schedule.batch as f64;
        let shard = &batch[schedule.shard(rank)];
        let per_micro = shard.len() / schedule.micro;
        // Binary-counter stack of (partial sum, micro-batches it covers): equal sizes merge, so
        // with a power-of-two count the merges are the fixed tree's.
        let mut stack: Vec<(Vec<f64>, usize)> = Vec::new();
        for j in 0..schedule.micro - 1 {
            let mut g = vec![0.0; p];
            let rows = &shard[j * per_micro..(j + 1) * per_micro];
            self.micro_gradient(x, labels, rows, schedule.grain, &mut g);
            push_merge(&mut stack, g);
        }
        // The last micro-batch: with a power-of-two count the stack now holds sums over
        // micro/2, micro/4, …, 1 micro-batches, and pushing the last one merges them all,
        // top first: s₀ + (s₁ + (… + (s_top + last))). Done layer by layer, as each layer's
        // gradient is final, so that `ready` sees the rank's whole subtree sum of that layer.
        let rows = &shard[(schedule.micro - 1) * per_micro..];
        let mut last = vec![0.0; p];
        let mut whole = vec![0.0; p];
        self.micro_gradient_with(
            x,
            labels,
            rows,
            schedule.grain,
            &mut last,
            &mut |range, g| {
                let acc = &mut whole[range.clone()];
                acc.copy_from_slice(g);
                for (part, _) in stack.iter().rev() {
                    for (a, b) in acc.iter_mut().zip(&part[range.clone()]) {
                        // part + acc: IEEE addition is commutative, so the bits of
                        // the stack's left + right.
                        *a += *b;
                    }
                }
                ready(range, &whole);
            },
        );
        whole
    }

    /// SGD with momentum on the mean gradient: `grad / batch` at fp64; under a reduced precision
    /// `grad` is the scaled mean gradient, divided by the loss scale here (in f64) unless the
    /// scaler skips the step for a non-finite gradient.
    fn apply(&mut self, grad: &[f64], batch: usize, sgd: Sgd) {
        let zeros = grad.iter().filter(|g| **g == 0.0).count();
        self.timing.zero_grad_share += zeros as f64 / grad.len().max(1) as f64;
        let scale = if self.mp.precision.is_reduced() {
            let scale = self.scaler.scale();
            if !self.scaler.update(grad.iter().all(|g| g.is_finite())) {
                return;
            }
            scale
        } else {
            batch as f64
        };
        let Sgd { lr, momentum } = sgd;
        for ((w, v), g) in self
            .mlp
            .params
            .iter_mut()
            .zip(self.mlp.velocity.iter_mut())
            .zip(grad)
        {
            *v = momentum * *v + g / scale;
            *w -= lr * *v;
        }
    }
}

/// `0..n` in a seeded random order: the order in which the training rows are visited.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    order
}

/// The global batch of step `step`: `batch` consecutive entries of `order` (a fixed shuffle of the
/// training rows), wrapping around.
pub fn global_batch(order: &[usize], batch: usize, step: usize) -> Vec<usize> {
    (0..batch)
        .map(|i| order[(step * batch + i) % order.len()])
        .collect()
}

/// `out = (delta · Wᵀ) ⊙ ReLU'(input)`: the gradient with respect to the input of a layer of
/// `i` inputs and `o` outputs whose weights (`i × o`, row-major) are `weights`, for the rows of
/// `delta` (`n × o`); `input` is the layer's input (`n × i`, post-ReLU), `transposed` scratch for
/// `Wᵀ`. One GEMM over all the rows, the same for the whole-model trainer and the pipeline's
/// stages, so both compute the same bits; [`Trainer::input_delta`] on several threads runs
/// [`relu_gradient_rows`] on runs of the rows instead, with the same bits ([`rows_per_run`]).
pub(crate) fn relu_input_gradient(
    ws: &mut Workspace,
    transposed: &mut Vec<f64>,
    out: &mut Vec<f64>,
    (delta, weights, input): (&[f64], &[f64], &[f64]),
    (i, o): (usize, usize),
) {
    let n = delta.len() / o;
    transpose_weights(transposed, weights, (i, o));
    // `relu_gradient_rows` zeroes every element before its GEMM adds into it.
    out.resize(n * i, 0.0);
    relu_gradient_rows(ws, transposed, out, (delta, input), (i, o));
}

/// `Wᵀ` (`o × i`, row-major) of the `i × o` row-major `weights` into `transposed`.
fn transpose_weights(transposed: &mut Vec<f64>, weights: &[f64], (i, o): (usize, usize)) {
    transposed.clear();
    transposed.resize(o * i, 0.0);
    for f in 0..i {
        for j in 0..o {
            transposed[j * i + f] = weights[f * o + j];
        }
    }
}

/// Rows of [`relu_input_gradient`]: `out = (delta · Wᵀ) ⊙ ReLU'(input)` for `out` (`rows × i`,
/// every element overwritten), `delta` (`rows × o`) and `input` (`rows × i`) the same rows, with
/// `wt` the transposed weights (`o × i`).
fn relu_gradient_rows(
    ws: &mut Workspace,
    wt: &[f64],
    out: &mut [f64],
    (delta, input): (&[f64], &[f64]),
    (i, o): (usize, usize),
) {
    let n = delta.len() / o;
    out.fill(0.0);
    ws.update(n, i, o, delta, o, wt, i, out, i);
    for (d, act) in out.iter_mut().zip(input) {
        if *act <= 0.0 {
            *d = 0.0;
        }
    }
}

/// Push a micro-batch's subtree sum on the binary-counter stack: two sums over equal numbers of
/// micro-batches merge (left + right), so with a power-of-two count the merges are the fixed
/// tree's (`Trainer::local_gradient` and the engines' host side).
pub(crate) fn push_merge(stack: &mut Vec<(Vec<f64>, usize)>, g: Vec<f64>) {
    stack.push((g, 1));
    while stack.len() >= 2 && stack[stack.len() - 1].1 == stack[stack.len() - 2].1 {
        let (right, size) = stack.pop().expect("two entries");
        let left = stack.last_mut().expect("one entry");
        for (a, b) in left.0.iter_mut().zip(&right) {
            *a += *b;
        }
        left.1 += size;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex};

    use super::*;
    use crate::data::{self, Dataset};
    use scalelab_kernels::gemm::tuned::Blocking;

    fn labels(d: &Dataset) -> Vec<u32> {
        d.y.labels().unwrap().to_vec()
    }

    /// Ranks as threads: each deposits its subtree sum, then every thread tree-sums the deposits
    /// in rank order (what recursive doubling computes).
    struct Shared {
        barrier: Barrier,
        parts: Mutex<Vec<Vec<f64>>>,
        /// Add the ranks' sums one after another (what a ring or a chain does) instead of along
        /// the tree: the wrong order, to show that the check catches it.
        sequential: bool,
    }

    struct Handle<'s> {
        shared: &'s Shared,
        rank: usize,
    }

    impl GradientReducer for Handle<'_> {
        fn combine(&self, grad: &mut [f64]) -> u64 {
            self.shared.parts.lock().unwrap()[self.rank] = grad.to_vec();
            self.shared.barrier.wait();
            let mut all: Vec<f64> = self.shared.parts.lock().unwrap().concat();
            if self.shared.sequential {
                let (first, rest) = all.split_at_mut(grad.len());
                for part in rest.chunks(grad.len()) {
                    for (a, b) in first.iter_mut().zip(part) {
                        *a += *b;
                    }
                }
            } else {
                tree_sum(&mut all, grad.len());
            }
            grad.copy_from_slice(&all[..grad.len()]);
            self.shared.barrier.wait();
            0
        }
    }

    fn train(data: &Dataset, schedule: Schedule, steps: usize) -> Vec<u64> {
        train_with(data, schedule, steps, false)
    }

    fn train_with(data: &Dataset, schedule: Schedule, steps: usize, sequential: bool) -> Vec<u64> {
        train_in_pools(data, schedule, steps, sequential, 1)
    }

    /// [`train_with`], each rank (a thread) computing in its own rayon pool of `threads`
    /// threads (the `threads` axis inside an MPI rank).
    fn train_in_pools(
        data: &Dataset,
        schedule: Schedule,
        steps: usize,
        sequential: bool,
        threads: usize,
    ) -> Vec<u64> {
        let mp = MixedPrecision::default();
        train_in_pools_at(data, schedule, steps, sequential, threads, mp)
    }

    /// [`train_in_pools`] with the GEMM operands in `mp`'s format and its loss scale.
    fn train_in_pools_at(
        data: &Dataset,
        schedule: Schedule,
        steps: usize,
        sequential: bool,
        threads: usize,
        mp: MixedPrecision,
    ) -> Vec<u64> {
        train_ranks(data, schedule, steps, sequential, threads, &|t| {
            t.with_precision(mp)
        })
        .0
    }

    /// The runs of rows a trainer handed to its pool (`Trainer::row_runs`).
    type RowRuns = std::collections::BTreeSet<(&'static str, usize)>;

    /// The runs `0..n` of both split passes, forward and input gradient.
    fn runs_of_both(n: usize) -> RowRuns {
        (0..n)
            .flat_map(|t| [("forward", t), ("input", t)])
            .collect()
    }

    /// The ranks of [`train_in_pools_at`] as threads, each trainer made by `prepare` from a fresh
    /// one: the weights, momentum and loss scaler's state every rank agrees on, and each rank's
    /// runs of rows.
    fn train_ranks(
        data: &Dataset,
        schedule: Schedule,
        steps: usize,
        sequential: bool,
        threads: usize,
        prepare: &(dyn Fn(Trainer) -> Trainer + Sync),
    ) -> (Vec<u64>, Vec<RowRuns>) {
        let y = labels(data);
        let order: Vec<usize> = (0..data.rows()).rev().collect();
        let widths = [data.features(), 8, 5, data.y.n_classes()];
        let sgd = Sgd {
            lr: 0.05,
            momentum: 0.9,
        };
        let shared = Shared {
            barrier: Barrier::new(schedule.ranks),
            parts: Mutex::new(vec![Vec::new(); schedule.ranks]),
            sequential,
        };
        let results: Vec<(Vec<u64>, RowRuns)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..schedule.ranks)
                .map(|rank| {
                    let (shared, y, order) = (&shared, &y, &order);
                    s.spawn(move || {
                        let pool = rayon::ThreadPoolBuilder::new()
                            .num_threads(threads)
                            .build()
                            .unwrap();
                        pool.install(|| {
                            let mlp = Mlp::new(&widths, 7).unwrap();
                            let mut t = prepare(Trainer::new(mlp));
                            let reducer = Handle { shared, rank };
                            for step in 0..steps {
                                let batch = global_batch(order, schedule.batch, step);
                                t.step(&data.x, y, &batch, &schedule, rank, sgd, &reducer);
                            }
                            let mut bits: Vec<u64> =
                                t.mlp.params.iter().map(|v| v.to_bits()).collect();
                            bits.extend(t.mlp.velocity.iter().map(|v| v.to_bits()));
                            bits.push(t.scaler().scale().to_bits());
                            bits.push(t.scaler().skipped());
                            (bits, t.row_runs.into_inner().unwrap())
                        })
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (bits, runs): (Vec<_>, Vec<_>) = results.into_iter().unzip();
        for r in &bits[1..] {
            assert_eq!(r, &bits[0], "ranks disagree");
        }
        (bits.into_iter().next().unwrap(), runs)
    }

    /// Synthetic data for the row splits: enough samples that every thread of a pool of up to 4
    /// gets at least `MIN_ROWS_PER_THREAD` rows of a rank's micro-batch.
    fn rows_data() -> Dataset {
        data::make_classification(&data::Synthetic {
            samples: 600,
            features: 10,
            informative: 4,
            classes: 3,
            seed: 5,
            ..data::Synthetic::default()
        })
        .unwrap()
    }

    #[test]
    fn weights_are_bitwise_the_serial_ones_at_any_power_of_two_split() {
        let iris = data::load("iris").unwrap();
        let serial = train(
            &iris,
            Schedule {
                batch: 48,
                grain: 3,
                ranks: 1,
                micro: 1,
            },
            12,
        );
        for (ranks, micro) in [(2, 1), (4, 1), (1, 4), (2, 2), (4, 2), (2, 8)] {
            let got = train(
                &iris,
                Schedule {
                    batch: 48,
                    grain: 3,
                    ranks,
                    micro,
                },
                12,
            );
            assert!(
                got == serial,
                "ranks = {ranks}, micro = {micro}: weights differ from the serial reference"
            );
        }
    }

    #[test]
    fn rayon_threads_inside_a_rank_change_no_bit_at_any_threads_times_ranks() {
        // The grains of a micro-batch computed by 1 to 4 threads per rank, on 1, 2 and 4
        // ranks, and with micro-batches: the weights stay the serial ones (one thread, one rank).
        let iris = data::load("iris").unwrap();
        let base = Schedule {
            batch: 48,
            grain: 3,
            ranks: 1,
            micro: 1,
        };
        let serial = train_in_pools(&iris, base, 12, false, 1);
        for (threads, ranks, micro) in [
            (2, 1, 1),
            (3, 1, 1),
            (4, 1, 2),
            (2, 2, 1),
            (2, 2, 2),
            (2, 4, 1),
        ] {
            let schedule = Schedule {
                ranks,
                micro,
                ..base
            };
            assert!(
                train_in_pools(&iris, schedule, 12, false, threads) == serial,
                "threads = {threads}, ranks = {ranks}, micro = {micro}: weights differ from the \
                 serial reference"
            );
        }
        // The grains really are split: a pool of two threads gets two runs of grains.
        let y = labels(&iris);
        let order: Vec<usize> = (0..iris.rows()).collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let used = pool.install(|| {
            let mut t = Trainer::new(Mlp::new(&[4, 8, 3], 7).unwrap());
            let batch = global_batch(&order, 48, 0);
            let sgd = Sgd {
                lr: 0.05,
                momentum: 0.9,
            };
            t.step(&iris.x, &y, &batch, &base, 0, sgd, &LocalReducer);
            t.grain_threads.into_inner().unwrap()
        });
        assert_eq!(used, [0, 1].into(), "runs of grains {used:?}");
        // The check can fail: the four ranks joined in sequence differ, threads or not.
        let four = Schedule { ranks: 4, ..base };
        assert_ne!(train_in_pools(&iris, four, 12, true, 2), serial);
    }

    #[test]
    fn rayon_threads_split_the_rows_of_forward_and_input_gradient_without_changing_a_bit() {
        // A global batch of 518 = 2 · 7 · 37 samples in grains of 7: 518 rows per micro-batch on
        // one rank, 259 on two ranks or with two micro-batches, split over 2 to 4 threads into
        // runs that do not divide evenly (259 over 3 threads: 87 + 87 + 85; over 4: 65 · 3 + 64),
        // in fp64, bf16 and fp16 with its dynamic loss scale. Every run is asserted to have
        // happened, so the bitwise comparison covers the split, not a single call.
        let d = rows_data();
        let base = Schedule {
            batch: 518,
            grain: 7,
            ranks: 1,
            micro: 1,
        };
        for (precision, scale) in [("fp64", "none"), ("bf16", "none"), ("fp16", "dynamic")] {
            let mp = MixedPrecision::parse(precision, scale, 4).unwrap();
            let prepare = move |t: Trainer| t.with_precision(mp);
            let (serial, runs) = train_ranks(&d, base, 6, false, 1, &prepare);
            assert_eq!(runs, [runs_of_both(1)], "{precision}: one thread, one call");
            for (threads, ranks, micro) in [
                (2, 1, 1),
                (3, 1, 1),
                (4, 1, 1),
                (3, 1, 2),
                (4, 1, 2),
                (2, 2, 1),
                (3, 2, 1),
                (4, 2, 1),
            ] {
                let s = Schedule {
                    ranks,
                    micro,
                    ..base
                };
                let (got, runs) = train_ranks(&d, s, 6, false, threads, &prepare);
                let rows = base.batch / (ranks * micro);
                assert!(
                    got == serial,
                    "{precision}, threads = {threads}, ranks = {ranks}, micro = {micro} \
                     ({rows} rows per micro-batch): weights differ from the serial reference"
                );
                for (rank, r) in runs.iter().enumerate() {
                    assert_eq!(
                        r,
                        &runs_of_both(threads),
                        "{precision}, threads = {threads}, rank {rank}: runs of rows"
                    );
                }
            }
        }
    }

    #[test]
    fn a_pool_of_two_threads_computes_forward_and_input_gradient_in_two_runs_of_rows() {
        let d = rows_data();
        let y = labels(&d);
        let order: Vec<usize> = (0..d.rows()).collect();
        let sgd = Sgd {
            lr: 0.05,
            momentum: 0.9,
        };
        let one_step = |threads: usize, batch: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut t = Trainer::new(Mlp::new(&[10, 8, 5, 3], 7).unwrap());
                let schedule = Schedule {
                    batch,
                    grain: 7,
                    ranks: 1,
                    micro: 1,
                };
                let rows = global_batch(&order, batch, 0);
                t.step(&d.x, &y, &rows, &schedule, 0, sgd, &LocalReducer);
                t.row_runs.into_inner().unwrap()
            })
        };
        // 259 rows on two threads: two runs (130 + 129) of each pass.
        assert_eq!(one_step(2, 259), runs_of_both(2));
        // 126 rows are fewer than two runs of MIN_ROWS_PER_THREAD: one call, not split.
        const { assert!(126 < 2 * MIN_ROWS_PER_THREAD) };
        assert_eq!(one_step(2, 126), runs_of_both(1));
        // One thread: the single call.
        assert_eq!(one_step(1, 259), runs_of_both(1));
        // `evaluate` (forward only) on 301 rows: three runs on three threads, the same loss and
        // accuracy bits as one thread's single call.
        let rows: Vec<usize> = (0..301).collect();
        let eval = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut t = Trainer::new(Mlp::new(&[10, 8, 5, 3], 7).unwrap())
                    .with_precision(MixedPrecision::parse("bf16", "none", 4).unwrap());
                let (loss, acc) = t.evaluate(&d.x, &y, &rows);
                (
                    (loss.to_bits(), acc.to_bits()),
                    t.row_runs.into_inner().unwrap(),
                )
            })
        };
        let (serial, runs) = eval(1);
        assert_eq!(runs, [("forward", 0)].into());
        let (split, runs) = eval(3);
        assert_eq!(
            runs,
            [("forward", 0), ("forward", 1), ("forward", 2)].into()
        );
        assert_eq!(split, serial, "evaluate on three threads");
    }

    #[test]
    fn a_gemm_that_sums_in_other_blocks_changes_the_weights_and_every_run_uses_the_trainers() {
        // The row-split check can fail: a workspace that cuts the shared dimension into blocks
        // of 3 (instead of one block) adds in another order, and the weights differ. Each run of
        // rows uses a workspace like the trainer's (its micro-kernel and blocking): with that
        // blocking, the split still gives the single call's bits.
        let d = rows_data();
        let base = Schedule {
            batch: 518,
            grain: 7,
            ranks: 1,
            micro: 1,
        };
        let blocks_of_3 = |t: Trainer| {
            let ws = Workspace::new().with_blocking(Blocking {
                kc: 3,
                ..t.ws.blocking()
            });
            Trainer { ws, ..t }
        };
        let (serial, _) = train_ranks(&d, base, 6, false, 1, &|t| t);
        let (other, _) = train_ranks(&d, base, 6, false, 1, &blocks_of_3);
        assert_ne!(other, serial, "blocks of 3 changed no bit");
        let (split, runs) = train_ranks(&d, base, 6, false, 3, &blocks_of_3);
        assert_eq!(runs, [runs_of_both(3)]);
        assert!(
            split == other,
            "the runs of rows did not use the trainer's blocking"
        );
    }

    #[test]
    fn joining_four_ranks_in_sequence_instead_of_the_tree_changes_the_weights() {
        // The bitwise check can fail: ((a + b) + c) + d over the ranks is not the tree's
        // (a + b) + (c + d), and after a few steps the weights differ.
        let iris = data::load("iris").unwrap();
        let schedule = Schedule {
            batch: 48,
            grain: 3,
            ranks: 4,
            micro: 1,
        };
        let serial = train(
            &iris,
            Schedule {
                ranks: 1,
                ..schedule
            },
            12,
        );
        assert_eq!(train(&iris, schedule, 12), serial);
        assert_ne!(train_with(&iris, schedule, 12, true), serial);
    }

    #[test]
    fn the_tree_over_column_blocks_is_the_trees_bits_on_1_to_4_threads() {
        // 13 vectors (not a power of two) of a length no block size divides, with values whose
        // sums depend on the order: every pool gives tree_sum's bits, and the blocks are really
        // several (the vectors are longer than two blocks).
        let len = 3 * MIN_TREE_COLUMNS + 5;
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let buf: Vec<f64> = (0..13 * len)
            .map(|_| rng.random_range(-1.0..1.0) * 10f64.powi(rng.random_range(-8..8)))
            .collect();
        let mut want = buf.clone();
        tree_sum(&mut want, len);
        for threads in 1..=4 {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut got = buf.clone();
            pool.install(|| tree_sum_columns(&mut got, len));
            let bits = |v: &[f64]| v[..len].iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert!(bits(&got) == bits(&want), "threads = {threads}");
        }
        // The order matters for these values: summing the vectors in sequence differs.
        let mut seq = buf[..len].to_vec();
        for v in buf[len..].chunks(len) {
            for (a, b) in seq.iter_mut().zip(v) {
                *a += *b;
            }
        }
        assert_ne!(seq, want[..len]);
    }

    #[test]
    fn a_plain_sequential_sum_over_ranks_would_differ() {
        // Guard that the test above can fail: summing the grains in another order changes bits.
        let v = [1e16, 1.0, -1e16, 1.0];
        let mut tree = v.to_vec();
        tree_sum(&mut tree, 1);
        let seq = v.iter().fold(0.0, |a, b| a + b);
        assert_ne!(tree[0].to_bits(), seq.to_bits());
    }

    #[test]
    fn the_gradient_matches_finite_differences() {
        let iris = data::load("iris").unwrap();
        let y = labels(&iris);
        let rows: Vec<usize> = (0..150).step_by(10).collect();
        let mut t = Trainer::new(Mlp::new(&[4, 6, 5, 3], 3).unwrap());
        // Nudge the biases off zero so that every ReLU has a definite side.
        for p in t.mlp.params.iter_mut() {
            *p += 0.01;
        }
        let mut g = vec![0.0; t.mlp.layout.len()];
        t.micro_gradient(&iris.x, &y, &rows, 5, &mut g);
        let n = rows.len() as f64;
        let h = 1e-6;
        for (k, &gk) in g.iter().enumerate() {
            let keep = t.mlp.params[k];
            t.mlp.params[k] = keep + h;
            let up = t.evaluate(&iris.x, &y, &rows).0;
            t.mlp.params[k] = keep - h;
            let down = t.evaluate(&iris.x, &y, &rows).0;
            t.mlp.params[k] = keep;
            let numeric = (up - down) / (2.0 * h);
            let analytic = gk / n;
            assert!(
                (numeric - analytic).abs() <= 1e-6 * (1.0 + analytic.abs()),
                "parameter {k}: finite difference {numeric} vs backward {analytic}"
            );
        }
    }

    #[test]
    fn training_lowers_the_loss() {
        let iris = data::load("iris").unwrap();
        let y = labels(&iris);
        let all: Vec<usize> = (0..150).collect();
        let mut t = Trainer::new(Mlp::new(&[4, 16, 3], 1).unwrap());
        let before = t.evaluate(&iris.x, &y, &all).0;
        let schedule = Schedule {
            batch: 30,
            grain: 5,
            ranks: 1,
            micro: 1,
        };
        let sgd = Sgd {
            lr: 0.02,
            momentum: 0.9,
        };
        for step in 0..100 {
            let batch = global_batch(&all, 30, step);
            t.step(&iris.x, &y, &batch, &schedule, 0, sgd, &LocalReducer);
        }
        let (after, acc) = t.evaluate(&iris.x, &y, &all);
        assert!(after < before * 0.5, "loss {before} → {after}");
        assert!(acc > 0.8, "accuracy {acc}");
    }

    #[test]
    fn bad_splits_are_refused_with_the_fix() {
        let s = |batch, grain, ranks, micro| Schedule {
            batch,
            grain,
            ranks,
            micro,
        };
        assert_eq!(
            s(100, 4, 2, 4).check("mpi.train").unwrap_err(),
            "mpi.train: the global batch of 100 samples is not divisible by ranks × micro-batches \
             × grain = 2 × 4 × 4 = 32: every micro-batch must hold whole grains; use a batch that \
             is a multiple of 32 (e.g. 128)"
        );
        assert_eq!(
            s(96, 4, 3, 1).check("mpi.train").unwrap_err(),
            "mpi.train: 3 ranks: the fixed reduction tree halves the global batch, so the rank \
             count must be a power of two; use 2 or 4 ranks"
        );
        assert_eq!(
            s(96, 4, 2, 3).check("mpi.train").unwrap_err(),
            "mpi.train: micro = 3: the fixed reduction tree halves each rank's share, so the \
             micro-batch count must be a power of two; use micro = 2 or 4"
        );
        assert!(s(128, 4, 4, 2).check("mpi.train").is_ok());
    }

    #[test]
    fn reduced_precision_weights_are_bitwise_the_serial_ones_at_1_2_4_ranks() {
        // Rounding is per element and per grain, so the fixed tree still gives the one-process
        // bits: bf16 without a scale, fp16 with the dynamic scaler (its scale and skipped steps
        // included), over ranks, micro-batches (accumulate) and threads.
        let iris = data::load("iris").unwrap();
        let base = Schedule {
            batch: 48,
            grain: 3,
            ranks: 1,
            micro: 1,
        };
        for (precision, scale) in [("bf16", "none"), ("fp16", "dynamic"), ("tf32", "none")] {
            let mp = MixedPrecision::parse(precision, scale, 4).unwrap();
            let serial = train_in_pools_at(&iris, base, 12, false, 1, mp);
            assert_ne!(
                serial,
                train(&iris, base, 12),
                "{precision}: rounding changed nothing"
            );
            for (ranks, micro, threads) in [(2, 1, 1), (4, 1, 1), (2, 2, 1), (4, 2, 2), (1, 4, 2)] {
                let s = Schedule {
                    ranks,
                    micro,
                    ..base
                };
                assert!(
                    train_in_pools_at(&iris, s, 12, false, threads, mp) == serial,
                    "{precision}, ranks = {ranks}, micro = {micro}, threads = {threads}: weights \
                     differ from the serial reference at the same precision"
                );
            }
            // (Joining the ranks in sequence gives these bits too, here: each grain's gradient
            // holds at most 11 significant bits, so sums of a few are exact in f64 in any order.
            // The fp64 tests above show that the check fails when the order matters.)
        }
    }

    #[test]
    fn fp16_without_a_loss_scale_stalls_and_the_dynamic_scale_tracks_fp64() {
        // A confident model (trained, then its output layer sharpened ×3): the gradient of the
        // mean loss per sample is below fp16's smallest subnormal (2^-24), so unscaled fp16
        // gradients are all zero and the weights never move; the dynamic loss scale lifts them
        // into range and the update is fp64's to about 1%. bf16 needs no scale: fp32's range.
        let d = data::make_classification(&data::Synthetic {
            samples: 512,
            features: 8,
            informative: 4,
            redundant: 0,
            classes: 2,
            class_sep: 3.0,
            flip_y: 0.0,
            seed: 3,
            ..data::Synthetic::default()
        })
        .unwrap();
        let y = labels(&d);
        let all: Vec<usize> = (0..d.rows()).collect();
        let schedule = Schedule {
            batch: 256,
            grain: 8,
            ranks: 1,
            micro: 1,
        };
        let sgd = Sgd {
            lr: 0.1,
            momentum: 0.9,
        };
        let mut warm = Trainer::new(Mlp::new(&[8, 16, 2], 1).unwrap());
        for step in 0..300 {
            let batch = global_batch(&all, 256, step);
            warm.step(&d.x, &y, &batch, &schedule, 0, sgd, &LocalReducer);
        }
        let mut start = warm.mlp.clone();
        let (w, b) = start.layout.layer(1);
        for v in &mut start.params[w.start..b.end] {
            *v *= 3.0;
        }
        start.velocity.fill(0.0);
        let steps = 50;
        let run = |precision: &str, scale: &str| {
            let mp = MixedPrecision::parse(precision, scale, 25).unwrap();
            let mut t = Trainer::new(start.clone()).with_precision(mp);
            for step in 0..steps {
                let batch = global_batch(&all, 256, step);
                t.step(&d.x, &y, &batch, &schedule, 0, sgd, &LocalReducer);
            }
            let update: Vec<f64> = t
                .mlp
                .params
                .iter()
                .zip(&start.params)
                .map(|(a, b)| a - b)
                .collect();
            (update, t.take_timing(), *t.scaler())
        };
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let gap = |a: &[f64], b: &[f64]| {
            let diff: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
            norm(&diff) / norm(b)
        };
        let (exact, timing, _) = run("fp64", "none");
        assert!(norm(&exact) > 0.0 && timing.zero_grad_share == 0.0);
        // fp16, no scale: every gradient element underflowed in every step; not one weight moved.
        let (stalled, timing, scaler) = run("fp16", "none");
        assert!(
            stalled.iter().all(|u| *u == 0.0),
            "fp16 without a scale moved"
        );
        assert_eq!(timing.zero_grad_share, steps as f64);
        assert_eq!(scaler.skipped(), 0);
        // fp16 with the dynamic scale: the update is fp64's within a few percent, and the scale
        // grew from 2^16 (no overflow here, so no skipped step).
        let (scaled, _, scaler) = run("fp16", "dynamic");
        assert!(gap(&scaled, &exact) < 0.05, "gap {}", gap(&scaled, &exact));
        assert_eq!((scaler.scale(), scaler.skipped()), (65536.0 * 4.0, 0));
        // bf16 without a scale: nothing underflows (its exponent is fp32's); the update is as
        // large as fp64's, only noisier (8 significant bits).
        let (bf16, timing, _) = run("bf16", "none");
        assert_eq!(timing.zero_grad_share, 0.0);
        assert!((0.5..2.0).contains(&(norm(&bf16) / norm(&exact))));
        // fp32 is fp64 to about its 24 bits.
        let (fp32, _, _) = run("fp32", "none");
        assert!(gap(&fp32, &exact) < 1e-5);
    }

    #[test]
    fn a_loss_scale_that_overflows_fp16_skips_the_step_and_leaves_the_weights() {
        // S = 2^40 pushes the loss gradient past 65504: infinities, a skipped step (the fixed
        // scale stays), and weights and momentum untouched, where no scale trains normally.
        let iris = data::load("iris").unwrap();
        let y = labels(&iris);
        let all: Vec<usize> = (0..150).collect();
        let schedule = Schedule {
            batch: 30,
            grain: 5,
            ranks: 1,
            micro: 1,
        };
        let sgd = Sgd {
            lr: 0.02,
            momentum: 0.9,
        };
        let mlp = Mlp::new(&[4, 16, 3], 1).unwrap();
        let mp = MixedPrecision::parse("fp16", "1099511627776", 25).unwrap();
        let mut t = Trainer::new(mlp.clone()).with_precision(mp);
        for step in 0..3 {
            let batch = global_batch(&all, 30, step);
            t.step(&iris.x, &y, &batch, &schedule, 0, sgd, &LocalReducer);
        }
        assert_eq!(t.scaler().skipped(), 3);
        assert_eq!(t.scaler().scale(), 2f64.powi(40));
        assert!(t.mlp == mlp, "a skipped step changed the model");
        let mut ok = Trainer::new(mlp.clone()).with_precision(MixedPrecision {
            loss_scale: LossScale::Fixed(1024.0),
            ..mp
        });
        let batch = global_batch(&all, 30, 0);
        ok.step(&iris.x, &y, &batch, &schedule, 0, sgd, &LocalReducer);
        assert_eq!(ok.scaler().skipped(), 0);
        assert!(ok.mlp.params != mlp.params);
    }

    #[test]
    fn a_rank_that_computed_less_waits_for_the_slowest_and_the_slowest_only_communicates() {
        // Two ranks, two steps: rank 0 is faster in step 0 by 0.5 s, rank 1 in step 1 by 1 s.
        let compute = [1.0, 2.0, 1.5, 1.0];
        // Rank 0: 0.5 s of its 0.75 s in step 0's reduction is waiting; step 1 it is slowest.
        assert_eq!(split_waiting(&compute, 2, 0, &[0.75, 0.125]), (0.5, 0.375));
        // Rank 1 behind by 1 s in step 1 but only 0.25 s inside the reduction: all of it waiting.
        assert_eq!(split_waiting(&compute, 2, 1, &[0.125, 0.25]), (0.25, 0.125));
        // One rank never waits.
        assert_eq!(split_waiting(&[1.0, 3.0], 1, 0, &[0.5, 0.25]), (0.0, 0.75));
    }

    #[test]
    fn a_step_log_keeps_each_steps_seconds_from_the_running_totals() {
        let mut log = StepLog::default();
        let mut total = StepTiming::default();
        for (c, m) in [(1.0, 0.5), (2.0, 0.25)] {
            total.compute_s += c;
            total.comm_s += m;
            log.record(&total);
        }
        assert_eq!(log.compute, [1.0, 2.0]);
        assert_eq!(log.comm, [0.5, 0.25]);
        log.restart();
        log.record(&total);
        assert_eq!((log.compute[0], log.comm[0]), (3.0, 0.75));
    }
}

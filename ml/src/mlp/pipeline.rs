//! Pipeline (model) parallelism, GPipe style: the layers of the [`Mlp`] split over
//! stages, each global batch cut into micro-batches that flow forward stage to stage and then
//! backward, and weights that end bitwise the serial reference's.
//!
//! * [`Partition`]: which contiguous layers each stage owns. The rule: minimise the largest
//!   stage's training FLOPs per sample (forward `2·i·o`, backward `4·i·o`, the first layer's input
//!   gradient skipped, as [`Layout::flops_per_sample`]); of the partitions that reach that
//!   bottleneck, the one that gives every stage, first to last, as many layers as it can.
//! * [`Stage`]: one stage's layers, momentum and buffers, and its step ([`Stage::step`]): the
//!   `micro` forwards (activations sent to the next stage) and backwards (activation gradients
//!   sent to the previous stage) in the order of its [`PipeSchedule`] (GPipe: all forwards, then
//!   all backwards in reverse micro-batch order; or 1F1B), then the SGD update of the stage's own
//!   layers.
//! * [`StageLink`]: how activations and their gradients reach the neighbouring stages. The crate
//!   stays free of MPI: the binary's `mpi.train` implements it with `MPI_Isend` and matched probes;
//!   the tests here with threads and channels.
//!
//! Why the weights are the serial ones: a sample's activations and activation gradients do not
//! depend on which samples share its micro-batch (the tuned GEMM's per-element FMA chain, see the
//! parent module), and sending them between stages moves the same bits. A stage's weight gradient
//! per micro-batch is the fixed grain tree over the micro-batch's grains, restricted to the
//! stage's parameters (the sum is element-wise, so the restriction changes no bit). With `micro` a
//! power of two the micro-batches are subtrees of the global tree and are merged with the
//! binary-counter stack of the `accumulate` strategy; GPipe's backward pass visits them last to
//! first, and since IEEE addition is commutative (`a + b` and `b + a` are the same bits) the right-to-left
//! counter performs the same additions as the left-to-right one.
//!
//! Time per step is split into compute, communication (inside the link's calls, moving data) and
//! waiting (blocked until a neighbour's message arrives or a send completes). The waiting share of
//! a stage's step is the measured **bubble**; GPipe predicts `(S − 1) / (m + S − 1)` for `S`
//! balanced stages and `m` micro-batches ([`bubble_prediction`]).

use std::ops::Range;
use std::time::Instant;

use scalelab_kernels::gemm::tuned::Workspace;

use super::{tree_sum, Layout, Mlp, Sgd};
use crate::data::Matrix;

/// GPipe's predicted idle share of a step: `(S − 1) / (m + S − 1)` for `S` stages and `m`
/// micro-batches (Huang et al., "GPipe", 2019, §2.3), assuming every stage takes the same time
/// per micro-batch and communication is free.
pub fn bubble_prediction(stages: usize, micro: usize) -> f64 {
    let (s, m) = (stages as f64, micro as f64);
    if stages == 0 || m + s - 1.0 <= 0.0 {
        return 0.0;
    }
    (s - 1.0) / (m + s - 1.0)
}

/// Refuse a pipeline split of the global batch that the fixed grain tree cannot follow, saying
/// which value to change; `name` prefixes the message (the workload's name). Every stage sees
/// every micro-batch, so the batch is split by `micro` alone, not by the stage count.
pub fn check_micro(name: &str, batch: usize, grain: usize, micro: usize) -> Result<(), String> {
    if micro < 1 {
        return Err(format!(
            "{name}: micro = {micro}: the pipeline needs at least one micro-batch per step; use \
             micro = 1 or more (more micro-batches, a smaller bubble)"
        ));
    }
    if !micro.is_power_of_two() {
        return Err(format!(
            "{name}: micro = {micro}: the fixed reduction tree halves the global batch, so the \
             pipeline's micro-batch count must be a power of two; use micro = {} or {}",
            micro.next_power_of_two() / 2,
            micro.next_power_of_two()
        ));
    }
    if grain == 0 || batch == 0 {
        return Err(format!(
            "{name}: batch and grain must be at least 1 (batch = {batch}, grain = {grain})"
        ));
    }
    let unit = micro * grain;
    if !batch.is_multiple_of(unit) {
        return Err(format!(
            "{name}: the global batch of {batch} samples is not divisible by micro-batches × \
             grain = {micro} × {grain} = {unit}: every pipeline micro-batch must hold whole \
             grains; use a batch that is a multiple of {unit} (e.g. {})",
            batch.next_multiple_of(unit)
        ));
    }
    Ok(())
}

/// The contiguous layers of each stage (module docs for the balancing rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Stage `s` owns layers `bounds[s]..bounds[s + 1]`.
    bounds: Vec<usize>,
}

/// Training FLOPs per sample of layer `l` (what [`Layout::flops_per_sample`] sums).
fn layer_flops(layout: &Layout, l: usize) -> u64 {
    let io = (layout.widths[l] * layout.widths[l + 1]) as u64;
    if l == 0 {
        4 * io
    } else {
        6 * io
    }
}

impl Partition {
    /// Split `layout`'s layers over `stages` stages, balanced by FLOPs. Refused when a stage would
    /// get no layer.
    pub fn balanced(layout: &Layout, stages: usize) -> Result<Partition, String> {
        let layers = layout.layers();
        if stages == 0 || stages > layers {
            let widths: Vec<String> = layout.widths.iter().map(usize::to_string).collect();
            return Err(format!(
                "{stages} pipeline stages (one per rank) but the model {} has {layers} layer{}: \
                 every stage needs at least one layer; use 1 to {layers} ranks, or more hidden \
                 layers (`hidden`)",
                widths.join("-"),
                if layers == 1 { "" } else { "s" }
            ));
        }
        let cost: Vec<u64> = (0..layers).map(|l| layer_flops(layout, l)).collect();
        let span = |lo: usize, hi: usize| cost[lo..hi].iter().sum::<u64>();
        // best[s][l]: the smallest bottleneck of the first l layers over s stages.
        let mut best = vec![vec![u64::MAX; layers + 1]; stages + 1];
        best[0][0] = 0;
        for s in 1..=stages {
            for l in s..=layers {
                for cut in s - 1..l {
                    if best[s - 1][cut] != u64::MAX {
                        let b = best[s - 1][cut].max(span(cut, l));
                        best[s][l] = best[s][l].min(b);
                    }
                }
            }
        }
        let bottleneck = best[stages][layers];
        // Greedy under the bottleneck: each stage takes layers while it stays within it and
        // leaves one for every later stage. Its cuts are never left of any optimal partition's,
        // so the last stage fits too.
        let mut bounds = vec![0];
        let mut at = 0;
        for s in 0..stages - 1 {
            let mut end = at + 1;
            while end < layers - (stages - 1 - s) && span(at, end + 1) <= bottleneck {
                end += 1;
            }
            bounds.push(end);
            at = end;
        }
        bounds.push(layers);
        Ok(Partition { bounds })
    }

    /// Number of stages.
    pub fn stages(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The layers of stage `stage`.
    pub fn layers(&self, stage: usize) -> Range<usize> {
        self.bounds[stage]..self.bounds[stage + 1]
    }

    /// Where stage `stage`'s parameters lie in the model's flat vector (layers are stored in
    /// order, so a stage's are contiguous and the stages' ranges tile the vector in stage order).
    pub fn params(&self, layout: &Layout, stage: usize) -> Range<usize> {
        let Range { start, end } = self.layers(stage);
        let lo = layout.offsets[start];
        let hi = if end < layout.layers() {
            layout.offsets[end]
        } else {
            layout.len()
        };
        lo..hi
    }

    /// Training FLOPs per sample of stage `stage`.
    pub fn flops(&self, layout: &Layout, stage: usize) -> u64 {
        self.layers(stage).map(|l| layer_flops(layout, l)).sum()
    }
}

/// What one call on a [`StageLink`] cost beyond moving data.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct LinkTime {
    /// Seconds blocked until the partner's message arrived or a send completed.
    pub wait_s: f64,
    /// Bytes this stage sent in the call.
    pub bytes: u64,
}

/// The channels of a stage to its neighbours. Messages are tagged with their micro-batch, and
/// each direction carries them in the order sent.
pub trait StageLink {
    /// Send micro-batch `micro`'s output activations to the next stage. The data may be reused by
    /// the caller as soon as this returns (implementations copy or complete before returning).
    fn send_next(&mut self, micro: usize, data: &[f64]) -> LinkTime;
    /// Receive micro-batch `micro`'s input activations from the previous stage into `data` (sized
    /// by the caller).
    fn recv_prev(&mut self, micro: usize, data: &mut [f64]) -> LinkTime;
    /// Send micro-batch `micro`'s input gradient to the previous stage.
    fn send_prev(&mut self, micro: usize, data: &[f64]) -> LinkTime;
    /// Receive micro-batch `micro`'s output gradient from the next stage into `data`.
    fn recv_next(&mut self, micro: usize, data: &mut [f64]) -> LinkTime;
    /// Complete this step's sends, before the step ends.
    fn finish(&mut self) -> LinkTime;
}

/// Seconds and bytes of a stage's steps so far (reset with [`Stage::take_timing`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PipelineTiming {
    /// Forward, backward, the gradient sums and the update of the stage's layers.
    pub compute_s: f64,
    /// Inside the link's calls, moving data (posting sends, receiving a message that arrived).
    pub comm_s: f64,
    /// Inside the link's calls, blocked on a neighbour: the bubble.
    pub wait_s: f64,
    /// The whole steps (compute + comm + wait).
    pub step_s: f64,
    /// Bytes this stage sent (activations forward, gradients backward).
    pub bytes_sent: u64,
    pub steps: u64,
}

impl PipelineTiming {
    /// The measured bubble: the share of the stage's step time spent waiting.
    pub fn bubble(&self) -> f64 {
        if self.step_s > 0.0 {
            self.wait_s / self.step_s
        } else {
            0.0
        }
    }
}

/// The order of a stage's forward and backward passes within a step. Both give the same weights
/// (bitwise) and, for balanced stages, the same bubble `(S − 1) / (m + S − 1)`; they differ in the
/// activations a stage holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeSchedule {
    /// GPipe: all `m` forwards, then all backwards, last micro-batch first; every micro-batch's
    /// activations are held until its backward pass.
    GPipe,
    /// 1F1B (PipeDream-flush, as Megatron-LM schedules it): stage `s` of `S` does
    /// `min(S − s − 1, m)` warm-up forwards, then one forward and one backward alternately, then
    /// the remaining backwards, in micro-batch order; at most `S − s` micro-batches' activations
    /// are held at a time.
    OneFOneB,
}

impl PipeSchedule {
    /// The names on the `schedule` axis.
    pub const NAMES: &'static [&'static str] = &["gpipe", "1f1b"];

    /// The schedule called `name` (one of [`PipeSchedule::NAMES`]).
    pub fn parse(name: &str) -> Option<PipeSchedule> {
        match name {
            "gpipe" => Some(PipeSchedule::GPipe),
            "1f1b" => Some(PipeSchedule::OneFOneB),
            _ => None,
        }
    }
}

/// One pipeline stage: its layers' parameters and momentum (a slice of the model's), and the
/// activations of every micro-batch of the step in flight (GPipe keeps them all until the
/// backward pass; no re-materialisation).
pub struct Stage {
    layout: Layout,
    partition: Partition,
    stage: usize,
    /// This stage's parameters: the model's `partition.params(layout, stage)`.
    pub params: Vec<f64>,
    pub velocity: Vec<f64>,
    ws: Workspace,
    schedule: PipeSchedule,
    /// `acts[slot][k]`: the input to the stage's `k`-th layer of the micro-batch in activation
    /// slot `slot`; the last entry holds the stage's output (the logits on the last stage).
    acts: Vec<Vec<Vec<f64>>>,
    delta: Vec<f64>,
    next_delta: Vec<f64>,
    transposed: Vec<f64>,
    leaves: Vec<f64>,
    timing: PipelineTiming,
}

/// Adds `right` into `left` element-wise.
fn add_into(left: &mut [f64], right: &[f64]) {
    for (a, b) in left.iter_mut().zip(right) {
        *a += *b;
    }
}

impl Stage {
    /// Stage `stage` of `partition`, its parameters and momentum taken from `mlp`.
    pub fn new(mlp: &Mlp, partition: Partition, stage: usize) -> Stage {
        let range = partition.params(&mlp.layout, stage);
        Stage {
            layout: mlp.layout.clone(),
            params: mlp.params[range.clone()].to_vec(),
            velocity: mlp.velocity[range].to_vec(),
            partition,
            stage,
            schedule: PipeSchedule::GPipe,
            ws: Workspace::new(),
            acts: Vec::new(),
            delta: Vec::new(),
            next_delta: Vec::new(),
            transposed: Vec::new(),
            leaves: Vec::new(),
            timing: PipelineTiming::default(),
        }
    }

    /// Start again from `mlp`'s parameters and momentum (this stage's slice of them), keeping the
    /// activation slots and buffers of earlier steps, so a repeated run allocates nothing new.
    pub fn restart(&mut self, mlp: &Mlp) {
        let range = self.partition.params(&mlp.layout, self.stage);
        self.params.copy_from_slice(&mlp.params[range.clone()]);
        self.velocity.copy_from_slice(&mlp.velocity[range]);
        self.timing = PipelineTiming::default();
    }

    /// The same stage, its passes ordered by `schedule` (GPipe unless told).
    pub fn with_schedule(mut self, schedule: PipeSchedule) -> Stage {
        self.schedule = schedule;
        self
    }

    /// The partition this stage belongs to.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Bytes of the activations this stage holds at its peak (the inputs to its layers and its
    /// outputs, of as many micro-batches as its schedule keeps in flight).
    pub fn activation_bytes(&self) -> u64 {
        8 * self
            .acts
            .iter()
            .flatten()
            .map(|a| a.len() as u64)
            .sum::<u64>()
    }

    /// The timing so far, and zero it.
    pub fn take_timing(&mut self) -> PipelineTiming {
        std::mem::take(&mut self.timing)
    }

    /// Layer `l`'s weight and bias ranges within this stage's `params`.
    fn local(&self, l: usize) -> (Range<usize>, Range<usize>) {
        let base = self.partition.params(&self.layout, self.stage).start;
        let (w, b) = self.layout.layer(l);
        (w.start - base..w.end - base, b.start - base..b.end - base)
    }

    /// Forward pass of the micro-batch in slot `j`, whose input is already in `acts[j][0]` (`n`
    /// rows).
    fn forward(&mut self, j: usize, n: usize) {
        let layers = self.partition.layers(self.stage);
        let last_layer = self.layout.layers() - 1;
        for (k, l) in layers.enumerate() {
            let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
            let (w, b) = self.local(l);
            let (before, after) = self.acts[j].split_at_mut(k + 1);
            let z = &mut after[0];
            z.clear();
            for _ in 0..n {
                z.extend_from_slice(&self.params[b.clone()]);
            }
            self.ws
                .update(n, o, i, &before[k], i, &self.params[w], o, z, o);
            if l < last_layer {
                for v in z.iter_mut() {
                    *v = v.max(0.0);
                }
            }
        }
    }

    /// `next_delta = (delta · W_lᵀ) ⊙ ReLU'(input)`: the gradient with respect to layer `l`'s
    /// input, for the `n` rows of the micro-batch in slot `j` (`input` is `acts[j][k]`).
    fn input_gradient(&mut self, j: usize, k: usize, l: usize, n: usize) {
        let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
        let (w, _) = self.local(l);
        let wl = &self.params[w];
        self.transposed.clear();
        self.transposed.resize(o * i, 0.0);
        for f in 0..i {
            for c in 0..o {
                self.transposed[c * i + f] = wl[f * o + c];
            }
        }
        self.next_delta.clear();
        self.next_delta.resize(n * i, 0.0);
        self.ws.update(
            n,
            i,
            o,
            &self.delta,
            o,
            &self.transposed,
            i,
            &mut self.next_delta,
            i,
        );
        for (d, act) in self.next_delta.iter_mut().zip(&self.acts[j][k]) {
            if *act <= 0.0 {
                *d = 0.0;
            }
        }
    }

    /// Layer `l`'s weight and bias gradients of every grain of the micro-batch in slot `j` into
    /// the grains' leaves (each `p` long, the stage's parameter count).
    fn weight_gradient(&mut self, j: usize, k: usize, l: usize, grains: usize, grain: usize) {
        let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
        let (w, b) = self.local(l);
        let p = self.params.len();
        let a = &self.acts[j][k];
        for g in 0..grains {
            let leaf = &mut self.leaves[g * p..(g + 1) * p];
            // dW_g = A_gᵀ · Δ_g: shared dimension = the grain's samples, as in the serial pass.
            self.transposed.clear();
            self.transposed.resize(i * grain, 0.0);
            for s in 0..grain {
                for f in 0..i {
                    self.transposed[f * grain + s] = a[(g * grain + s) * i + f];
                }
            }
            let d = &self.delta[g * grain * o..(g + 1) * grain * o];
            self.ws.update(
                i,
                o,
                grain,
                &self.transposed,
                grain,
                d,
                o,
                &mut leaf[w.clone()],
                o,
            );
            let db = &mut leaf[b.clone()];
            for s in 0..grain {
                add_into(db, &d[s * o..(s + 1) * o]);
            }
        }
    }

    /// Softmax minus one-hot of the logits in slot `j` (rows `rows`) into `delta`.
    fn loss_gradient(&mut self, j: usize, labels: &[u32], rows: &[usize]) {
        let c = *self.layout.widths.last().unwrap();
        self.delta.clear();
        self.delta.extend_from_slice(self.acts[j].last().unwrap());
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
    }

    /// Time one link call: its waiting share is the link's `wait_s`, the rest is communication.
    fn timed(&mut self, call: impl FnOnce(&mut Self) -> LinkTime) {
        let t = Instant::now();
        let got = call(self);
        let total = t.elapsed().as_secs_f64();
        let wait = got.wait_s.min(total);
        self.timing.wait_s += wait;
        self.timing.comm_s += total - wait;
        self.timing.bytes_sent += got.bytes;
    }

    /// The order of this stage's passes in a step of `micro` micro-batches: `(true, j)` is
    /// micro-batch `j`'s forward, `(false, j)` its backward.
    fn order(&self, micro: usize) -> Vec<(bool, usize)> {
        match self.schedule {
            PipeSchedule::GPipe => (0..micro)
                .map(|j| (true, j))
                .chain((0..micro).rev().map(|j| (false, j)))
                .collect(),
            PipeSchedule::OneFOneB => {
                let warm = (self.partition.stages() - self.stage - 1).min(micro);
                let mut ops: Vec<(bool, usize)> = (0..warm).map(|j| (true, j)).collect();
                for i in 0..micro - warm {
                    ops.push((true, warm + i));
                    ops.push((false, i));
                }
                ops.extend((micro - warm..micro).map(|i| (false, i)));
                ops
            }
        }
    }

    /// Micro-batch `j`'s forward pass (rows `rows`) into activation slot `slot`: its input from
    /// the dataset or the previous stage, its output handed on at once.
    fn forward_micro(
        &mut self,
        x: &Matrix,
        rows: &[usize],
        j: usize,
        slot: usize,
        link: &mut dyn StageLink,
    ) {
        let layers = self.partition.layers(self.stage);
        let nl = layers.len();
        let n = rows.len();
        let width = self.layout.widths[layers.start];
        let mut input = std::mem::take(&mut self.acts[slot][0]);
        input.clear();
        if self.stage == 0 {
            for &r in rows {
                input.extend_from_slice(x.row(r));
            }
        } else {
            input.resize(n * width, 0.0);
            self.timed(|_| link.recv_prev(j, &mut input));
        }
        self.acts[slot][0] = input;
        self.forward(slot, n);
        if self.stage + 1 < self.partition.stages() {
            let out = std::mem::take(&mut self.acts[slot][nl]);
            self.timed(|_| link.send_next(j, &out));
            self.acts[slot][nl] = out;
        }
    }

    /// Micro-batch `j`'s backward pass from activation slot `slot`: its output gradient from the
    /// loss or the next stage, its input gradient sent back, and its weight gradient (the tree over
    /// its grains) into `out` (the stage's parameter count long).
    #[allow(clippy::too_many_arguments)]
    fn backward_micro(
        &mut self,
        labels: &[u32],
        rows: &[usize],
        j: usize,
        slot: usize,
        grain: usize,
        link: &mut dyn StageLink,
        out: &mut Vec<f64>,
    ) {
        let layers = self.partition.layers(self.stage);
        let n = rows.len();
        let grains = n / grain;
        let p = self.params.len();
        if self.stage + 1 == self.partition.stages() {
            self.loss_gradient(slot, labels, rows);
        } else {
            let mut delta = std::mem::take(&mut self.delta);
            delta.clear();
            delta.resize(n * self.layout.widths[layers.end], 0.0);
            self.timed(|_| link.recv_next(j, &mut delta));
            self.delta = delta;
        }
        self.leaves.clear();
        self.leaves.resize(grains * p, 0.0);
        for (k, l) in layers.clone().enumerate().rev() {
            if k == 0 {
                // The stage's input gradient first, so the previous stage can go on while this
                // one computes its first layer's weight gradient.
                if self.stage > 0 {
                    self.input_gradient(slot, k, l, n);
                    let sent = std::mem::take(&mut self.next_delta);
                    self.timed(|_| link.send_prev(j, &sent));
                    self.next_delta = sent;
                }
                self.weight_gradient(slot, k, l, grains, grain);
            } else {
                self.weight_gradient(slot, k, l, grains, grain);
                self.input_gradient(slot, k, l, n);
                std::mem::swap(&mut self.delta, &mut self.next_delta);
            }
        }
        tree_sum(&mut self.leaves, p);
        out.clear();
        out.extend_from_slice(&self.leaves[..p]);
    }

    /// One optimizer step of this stage on the global batch `batch` (dataset row indices):
    /// `micro` micro-batches of whole `grain`s (checked by [`check_micro`]), forward and backward
    /// in the stage's [`PipeSchedule`], then SGD with momentum on the stage's layers with the
    /// gradient of the mean loss. Every stage calls it with the same arguments.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        batch: &[usize],
        grain: usize,
        micro: usize,
        sgd: Sgd,
        link: &mut dyn StageLink,
    ) {
        let start = Instant::now();
        let (comm0, wait0) = (self.timing.comm_s, self.timing.wait_s);
        let nl = self.partition.layers(self.stage).len();
        let n = batch.len() / micro;
        // Activation slots: one per micro-batch in flight (forward done, backward not yet),
        // kept from step to step; GPipe needs `micro` of them, 1F1B at most `S − s`.
        let mut free: Vec<usize> = (0..self.acts.len()).rev().collect();
        let mut slot_of = vec![0; micro];
        // Binary-counter stack of (partial sum, micro-batches it covers). GPipe pushes the
        // micro-batches last to first, 1F1B first to last; either way equal-sized neighbours
        // merge into the fixed tree's subtrees, and older + newer is newer + older bitwise.
        let mut stack: Vec<(Vec<f64>, usize)> = Vec::new();
        for (forward, j) in self.order(micro) {
            let rows = &batch[j * n..(j + 1) * n];
            if forward {
                let slot = free.pop().unwrap_or_else(|| {
                    self.acts.push(vec![Vec::new(); nl + 1]);
                    self.acts.len() - 1
                });
                slot_of[j] = slot;
                self.forward_micro(x, rows, j, slot, link);
            } else {
                let mut g = Vec::new();
                self.backward_micro(labels, rows, j, slot_of[j], grain, link, &mut g);
                free.push(slot_of[j]);
                stack.push((g, 1));
                while stack.len() >= 2 && stack[stack.len() - 1].1 == stack[stack.len() - 2].1 {
                    let (newer, size) = stack.pop().unwrap();
                    let older = stack.last_mut().unwrap();
                    add_into(&mut older.0, &newer);
                    older.1 += size;
                }
            }
        }
        self.timed(|_| link.finish());
        let grad = stack.swap_remove(0).0;
        let scale = batch.len() as f64;
        let Sgd { lr, momentum } = sgd;
        for ((w, v), g) in self
            .params
            .iter_mut()
            .zip(self.velocity.iter_mut())
            .zip(&grad)
        {
            *v = momentum * *v + g / scale;
            *w -= lr * *v;
        }
        let total = start.elapsed().as_secs_f64();
        let linked = (self.timing.comm_s - comm0) + (self.timing.wait_s - wait0);
        self.timing.compute_s += total - linked;
        self.timing.step_s += total;
        self.timing.steps += 1;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::{channel, Receiver, Sender};

    use super::super::{global_batch, LocalReducer, Schedule, Trainer};
    use super::*;
    use crate::data;

    type Wire = (usize, Vec<f64>);

    /// Stages as threads, neighbours joined by channels (unbounded: sends never block).
    struct ChannelLink {
        to_next: Option<Sender<Wire>>,
        from_prev: Option<Receiver<Wire>>,
        to_prev: Option<Sender<Wire>>,
        from_next: Option<Receiver<Wire>>,
    }

    fn send(to: &Option<Sender<Wire>>, micro: usize, data: &[f64]) -> LinkTime {
        to.as_ref()
            .expect("a neighbour on that side")
            .send((micro, data.to_vec()))
            .unwrap();
        LinkTime {
            wait_s: 0.0,
            bytes: 8 * data.len() as u64,
        }
    }

    fn recv(from: &Option<Receiver<Wire>>, micro: usize, data: &mut [f64]) -> LinkTime {
        let t = Instant::now();
        let (tag, got) = from
            .as_ref()
            .expect("a neighbour on that side")
            .recv()
            .unwrap();
        let wait_s = t.elapsed().as_secs_f64();
        assert_eq!(tag, micro, "micro-batches out of order");
        data.copy_from_slice(&got);
        LinkTime { wait_s, bytes: 0 }
    }

    impl StageLink for ChannelLink {
        fn send_next(&mut self, micro: usize, data: &[f64]) -> LinkTime {
            send(&self.to_next, micro, data)
        }
        fn recv_prev(&mut self, micro: usize, data: &mut [f64]) -> LinkTime {
            recv(&self.from_prev, micro, data)
        }
        fn send_prev(&mut self, micro: usize, data: &[f64]) -> LinkTime {
            send(&self.to_prev, micro, data)
        }
        fn recv_next(&mut self, micro: usize, data: &mut [f64]) -> LinkTime {
            recv(&self.from_next, micro, data)
        }
        fn finish(&mut self) -> LinkTime {
            LinkTime::default()
        }
    }

    fn links(stages: usize) -> Vec<ChannelLink> {
        let mut links: Vec<ChannelLink> = (0..stages)
            .map(|_| ChannelLink {
                to_next: None,
                from_prev: None,
                to_prev: None,
                from_next: None,
            })
            .collect();
        for s in 0..stages.saturating_sub(1) {
            let (tx, rx) = channel();
            links[s].to_next = Some(tx);
            links[s + 1].from_prev = Some(rx);
            let (tx, rx) = channel();
            links[s + 1].to_prev = Some(tx);
            links[s].from_next = Some(rx);
        }
        links
    }

    const WIDTHS: [usize; 6] = [4, 12, 10, 8, 6, 3];
    const BATCH: usize = 48;
    const GRAIN: usize = 3;
    const SGD: Sgd = Sgd {
        lr: 0.05,
        momentum: 0.9,
    };

    /// The serial reference: one process, one micro-batch; its weights and momentum as bits.
    fn serial(steps: usize, batch: usize, grain: usize) -> (Vec<u64>, Vec<u64>) {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let mut t = Trainer::new(Mlp::new(&WIDTHS, 7).unwrap());
        let schedule = Schedule {
            batch,
            grain,
            ranks: 1,
            micro: 1,
        };
        for step in 0..steps {
            let b = global_batch(&order, batch, step);
            t.step(&iris.x, &y, &b, &schedule, 0, SGD, &LocalReducer);
        }
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect();
        (bits(&t.mlp.params), bits(&t.mlp.velocity))
    }

    /// Train with `stages` threads in `schedule`; the stages' weights and momentum put together,
    /// as bits, and each stage's timing and activation bytes.
    fn pipelined(
        schedule: PipeSchedule,
        stages: usize,
        micro: usize,
        steps: usize,
    ) -> (Vec<u64>, Vec<u64>, Vec<(PipelineTiming, u64)>) {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let mlp = Mlp::new(&WIDTHS, 7).unwrap();
        let partition = Partition::balanced(&mlp.layout, stages).unwrap();
        type Part = (Vec<f64>, Vec<f64>, (PipelineTiming, u64));
        let parts: Vec<Part> = std::thread::scope(|sc| {
            let handles: Vec<_> = links(stages)
                .into_iter()
                .enumerate()
                .map(|(s, mut link)| {
                    let (iris, y, order, mlp, partition) = (&iris, &y, &order, &mlp, &partition);
                    sc.spawn(move || {
                        let mut stage =
                            Stage::new(mlp, partition.clone(), s).with_schedule(schedule);
                        for step in 0..steps {
                            let b = global_batch(order, BATCH, step);
                            stage.step(&iris.x, y, &b, GRAIN, micro, SGD, &mut link);
                        }
                        let acts = stage.activation_bytes();
                        let timing = stage.take_timing();
                        (stage.params.clone(), stage.velocity.clone(), (timing, acts))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
        let params = parts.iter().flat_map(|p| bits(&p.0)).collect();
        let velocity = parts.iter().flat_map(|p| bits(&p.1)).collect();
        (params, velocity, parts.into_iter().map(|p| p.2).collect())
    }

    #[test]
    fn threads_as_stages_give_the_serial_weights_bitwise() {
        let reference = serial(10, BATCH, GRAIN);
        let layout = Mlp::new(&WIDTHS, 7).unwrap().layout;
        for schedule in [PipeSchedule::GPipe, PipeSchedule::OneFOneB] {
            for stages in 1..=5 {
                let partition = Partition::balanced(&layout, stages).unwrap();
                for micro in [1, 2, 4, 8, 16] {
                    let (params, velocity, timing) = pipelined(schedule, stages, micro, 10);
                    assert!(
                        params == reference.0 && velocity == reference.1,
                        "{schedule:?}, {stages} stages, {micro} micro-batches: weights differ \
                         from the serial ones"
                    );
                    for (s, (t, _)) in timing.iter().enumerate() {
                        assert_eq!(t.steps, 10);
                        assert!(t.compute_s > 0.0 && t.step_s >= t.compute_s);
                        assert!((0.0..=1.0).contains(&t.bubble()), "stage {s}: {t:?}");
                        // Activations forward and gradients backward, per step: the batch's
                        // rows at the cut's width each way, none beyond the ends.
                        let mut want = 0;
                        if s + 1 < stages {
                            want += BATCH * WIDTHS[partition.layers(s).end];
                        }
                        if s > 0 {
                            want += BATCH * WIDTHS[partition.layers(s).start];
                        }
                        assert_eq!(t.bytes_sent, 8 * 10 * want as u64, "stage {s}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_restarted_stage_trains_the_same_weights_again() {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).collect();
        let mlp = Mlp::new(&WIDTHS, 7).unwrap();
        let partition = Partition::balanced(&mlp.layout, 1).unwrap();
        let mut stage = Stage::new(&mlp, partition, 0);
        let mut link = links(1).pop().unwrap();
        let mut run = |stage: &mut Stage| {
            for step in 0..5 {
                let b = global_batch(&order, BATCH, step);
                stage.step(&iris.x, &y, &b, GRAIN, 4, SGD, &mut link);
            }
            stage.params.clone()
        };
        let first = run(&mut stage);
        stage.params.fill(f64::NAN);
        stage.restart(&mlp);
        assert_eq!(stage.take_timing().steps, 0);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&run(&mut stage)), bits(&first));
    }

    #[test]
    fn one_f_one_b_holds_fewer_activations_than_gpipe() {
        // 4 stages, 8 micro-batches: GPipe's stages hold all 8 micro-batches' activations, 1F1B's
        // stage s at most 4 − s of them.
        let (.., gpipe) = pipelined(PipeSchedule::GPipe, 4, 8, 2);
        let (.., ofob) = pipelined(PipeSchedule::OneFOneB, 4, 8, 2);
        for s in 0..4 {
            let (g, o) = (gpipe[s].1, ofob[s].1);
            assert!(g > 0 && g % 8 == 0, "stage {s}: {g}");
            assert_eq!(
                o,
                g / 8 * (4 - s) as u64,
                "stage {s}: GPipe {g} bytes, 1F1B {o}"
            );
        }
    }

    #[test]
    fn summing_the_micro_batches_in_sequence_would_differ() {
        // The check above can fail: with 4 micro-batches the tree adds (g0 + g1) + (g2 + g3); a
        // running sum ((g0 + g1) + g2) + g3 changes bits. Shown on values where it shows.
        let g = [1e16, 1.0, -1e16, 1.0];
        let mut stack: Vec<(Vec<f64>, usize)> = Vec::new();
        for v in g.iter().rev() {
            stack.push((vec![*v], 1));
            while stack.len() >= 2 && stack[stack.len() - 1].1 == stack[stack.len() - 2].1 {
                let (left, size) = stack.pop().unwrap();
                let right = stack.last_mut().unwrap();
                add_into(&mut right.0, &left);
                right.1 += size;
            }
        }
        let mut tree = g.to_vec();
        tree_sum(&mut tree, 1);
        assert_eq!(stack[0].0[0].to_bits(), tree[0].to_bits());
        assert_ne!(
            g.iter().fold(0.0, |a, b| a + b).to_bits(),
            tree[0].to_bits()
        );
    }

    #[test]
    fn layers_are_balanced_by_flops() {
        // 64-256-256-256-8: FLOPs per layer 4·16384, 6·65536, 6·65536, 6·2048.
        let layout = Layout::new(&[64, 256, 256, 256, 8]).unwrap();
        let p = Partition::balanced(&layout, 2).unwrap();
        assert_eq!((p.layers(0), p.layers(1)), (0..2, 2..4));
        assert_eq!(p.flops(&layout, 0), 4 * 16384 + 6 * 65536);
        let p = Partition::balanced(&layout, 3).unwrap();
        assert_eq!((p.layers(0), p.layers(1), p.layers(2)), (0..1, 1..2, 2..4));
        let p = Partition::balanced(&layout, 4).unwrap();
        assert_eq!(p.layers(3), 3..4);
        // The stages' parameter ranges tile the model's vector.
        let mut at = 0;
        for s in 0..p.stages() {
            let r = p.params(&layout, s);
            assert_eq!(r.start, at);
            at = r.end;
        }
        assert_eq!(at, layout.len());
        // By FLOPs, not by layer count: 8-512-8-8-8 costs 16384, 24576, 384, 384 per sample, so
        // two stages split 1 + 3 layers (16384 | 25344), not 2 + 2 (40960 | 768).
        let layout = Layout::new(&[8, 512, 8, 8, 8]).unwrap();
        let p = Partition::balanced(&layout, 2).unwrap();
        assert_eq!((p.layers(0), p.layers(1)), (0..1, 1..4));
    }

    #[test]
    fn more_stages_than_layers_and_bad_micro_batches_are_refused_with_the_fix() {
        let layout = Layout::new(&[4, 8, 3]).unwrap();
        assert_eq!(
            Partition::balanced(&layout, 3).unwrap_err(),
            "3 pipeline stages (one per rank) but the model 4-8-3 has 2 layers: every stage \
             needs at least one layer; use 1 to 2 ranks, or more hidden layers (`hidden`)"
        );
        assert_eq!(
            check_micro("mpi.train", 96, 8, 0).unwrap_err(),
            "mpi.train: micro = 0: the pipeline needs at least one micro-batch per step; use \
             micro = 1 or more (more micro-batches, a smaller bubble)"
        );
        assert_eq!(
            check_micro("mpi.train", 100, 8, 4).unwrap_err(),
            "mpi.train: the global batch of 100 samples is not divisible by micro-batches × \
             grain = 4 × 8 = 32: every pipeline micro-batch must hold whole grains; use a batch \
             that is a multiple of 32 (e.g. 128)"
        );
        assert_eq!(
            check_micro("mpi.train", 96, 8, 3).unwrap_err(),
            "mpi.train: micro = 3: the fixed reduction tree halves the global batch, so the \
             pipeline's micro-batch count must be a power of two; use micro = 2 or 4"
        );
        assert!(check_micro("mpi.train", 96, 8, 4).is_ok());
    }

    #[test]
    fn the_bubble_prediction_is_gpipes_formula() {
        assert_eq!(bubble_prediction(1, 4), 0.0);
        assert_eq!(bubble_prediction(2, 1), 0.5);
        assert_eq!(bubble_prediction(2, 8), 1.0 / 9.0);
        assert_eq!(bubble_prediction(4, 4), 3.0 / 7.0);
    }
}

//! Pipeline (model) parallelism, GPipe style and interleaved: the layers of the [`Mlp`] split
//! over stages, each global batch cut into micro-batches that flow forward stage to stage and then
//! backward, and weights that end bitwise the serial reference's.
//!
//! * [`Partition`]: which contiguous layers each *model chunk* owns, and which chunks each stage
//!   (rank) holds. With one chunk per stage (`virtual = 1`) chunk `s` is stage `s`'s; with `v`
//!   virtual stages per rank (Megatron-LM's interleaved pipeline, Narayanan et al. 2021, §2.2)
//!   the model is cut into `S·v` chunks and rank `r` holds the non-contiguous chunks `r`,
//!   `r + S`, `r + 2S`, … The rule: minimise the largest chunk's training FLOPs per sample
//!   (forward `2·i·o`, backward `4·i·o`, the first layer's input gradient skipped, as
//!   [`Layout::flops_per_sample`]); of the partitions that reach that bottleneck, the one that
//!   gives every chunk, first to last, as many layers as it can.
//! * [`Stage`]: one rank's chunks, momentum and buffers, and its step ([`Stage::step`]): the
//!   forwards (activations sent to the next chunk's rank) and backwards (activation gradients sent
//!   to the previous chunk's rank) of every micro-batch through every chunk it holds, in the order
//!   of its [`PipeSchedule`] ([`pass_order`]), then the SGD update of its own layers.
//! * [`StageLink`]: how activations and their gradients reach the neighbouring ranks. The crate
//!   stays free of MPI: the binary's `mpi.train` implements it with `MPI_Isend` and matched probes;
//!   the tests here with threads and channels. Interleaved, the ranks form a ring: the last rank's
//!   chunk `c` feeds the first rank's chunk `c + 1`.
//!
//! Why the weights are the serial ones: a sample's activations and activation gradients do not
//! depend on which samples share its micro-batch (the tuned GEMM's per-element FMA chain, see the
//! parent module), and sending them between ranks moves the same bits. A chunk's weight gradient
//! per micro-batch is the fixed grain tree over the micro-batch's grains, restricted to the
//! chunk's parameters (the sum is element-wise, so the restriction changes no bit). With `micro` a
//! power of two the micro-batches are subtrees of the global tree and are merged, per chunk, with
//! the binary-counter stack of the `accumulate` strategy; every schedule visits one chunk's
//! micro-batches in one direction (GPipe last to first, 1F1B first to last), and since IEEE
//! addition is commutative (`a + b` and `b + a` are the same bits) the right-to-left counter
//! performs the same additions as the left-to-right one.
//!
//! Time per step is split into compute, communication (inside the link's calls, moving data) and
//! waiting (blocked until a neighbour's message arrives or a send completes). The waiting share of
//! a stage's step is the measured **bubble**; for `S` balanced stages, `v` chunks per stage and `m`
//! micro-batches the schedules here predict `(S − 1) / (v·m + S − 1)` ([`bubble_prediction`]:
//! GPipe's `(S − 1) / (m + S − 1)` at `v = 1`).

use std::ops::Range;
use std::time::Instant;

use scalelab_kernels::gemm::tuned::Workspace;

use super::{relu_input_gradient, tree_sum, Layout, Mlp, Sgd};
use crate::data::Matrix;

/// The predicted idle share of a stage's step: `(S − 1) / (v·m + S − 1)` for `S` stages, `v`
/// virtual stages (chunks) per stage and `m` micro-batches, assuming every chunk takes the same
/// time per micro-batch and communication is free.
///
/// At `v = 1` this is GPipe's `(S − 1) / (m + S − 1)` (Huang et al., "GPipe", 2019, §2.3), which
/// 1F1B shares. Interleaved, the pipeline fills and drains in `S − 1` *chunk* slots, each `1/v` of
/// a stage's work per micro-batch: the idle time is `(S − 1)·(t_f + t_b)/v` against the ideal
/// `m·(t_f + t_b)` (Narayanan et al., "Efficient Large-Scale Language Model Training on GPU
/// Clusters Using Megatron-LM", 2021, §2.2.2, who quote the ratio to the ideal time,
/// `(1/v)·(S − 1)/m`). The measured bubble is the idle share of the *whole* step (ideal plus idle),
/// so the matching form is `((S − 1)/v) / (m + (S − 1)/v) = (S − 1) / (v·m + S − 1)`.
pub fn bubble_prediction(stages: usize, virtual_stages: usize, micro: usize) -> f64 {
    let (s, v, m) = (stages as f64, virtual_stages as f64, micro as f64);
    if stages == 0 || v * m + s - 1.0 <= 0.0 {
        return 0.0;
    }
    (s - 1.0) / (v * m + s - 1.0)
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

/// The largest tag a message of the interleaved link may carry: MPI guarantees tags up to 32767
/// (`MPI_TAG_UB` is at least that), and a step's messages are numbered `0..2·S·v·m`
/// ([`message_tag`]).
pub const MAX_TAG: usize = 32767;

/// Refuse a virtual-stage count the interleaved schedule cannot run with `stages` ranks and
/// `micro` micro-batches (the layer count is [`Partition::interleaved`]'s to check), saying which
/// value to change.
pub fn check_virtual(
    name: &str,
    stages: usize,
    virtual_stages: usize,
    micro: usize,
) -> Result<(), String> {
    if virtual_stages < 1 {
        return Err(format!(
            "{name}: virtual = {virtual_stages}: every stage needs at least one chunk of layers; \
             use virtual = 1 (one contiguous block of layers per rank) or more (interleaved)"
        ));
    }
    if virtual_stages > 1 && !micro.is_multiple_of(stages) {
        let fix = if stages.is_power_of_two() {
            format!("use micro = {} (or more)", stages)
        } else {
            format!(
                "micro is a power of two, so use a power-of-two rank count (e.g. {} or {}), or \
                 virtual = 1",
                stages.next_power_of_two() / 2,
                stages.next_power_of_two()
            )
        };
        return Err(format!(
            "{name}: virtual = {virtual_stages} with {stages} stages and micro = {micro}: the \
             interleaved schedule (Megatron-LM's) runs the micro-batches through each chunk in \
             groups of one per stage, so micro must be a multiple of the stage (rank) count; \
             {fix}"
        ));
    }
    let tags = 2 * stages * virtual_stages * micro;
    if tags > MAX_TAG + 1 {
        return Err(format!(
            "{name}: {stages} stages × virtual = {virtual_stages} × micro = {micro}: a step's \
             {tags} messages need tags beyond {MAX_TAG}, the largest MPI guarantees; use fewer \
             micro-batches or virtual stages"
        ));
    }
    Ok(())
}

/// The contiguous layers of each model chunk, and how the chunks are dealt to the stages
/// (module docs for the balancing rule).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    /// Chunk `c` owns layers `bounds[c]..bounds[c + 1]`.
    bounds: Vec<usize>,
    /// The stage (rank) count `S`; chunk `c` lives on stage `c mod S`.
    stages: usize,
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

/// The smallest-bottleneck split of `cost` into `parts` contiguous non-empty ranges, as bounds
/// (module docs for the tie rule).
fn balanced_bounds(cost: &[u64], parts: usize) -> Vec<usize> {
    let layers = cost.len();
    let span = |lo: usize, hi: usize| cost[lo..hi].iter().sum::<u64>();
    // best[s][l]: the smallest bottleneck of the first l layers over s parts.
    let mut best = vec![vec![u64::MAX; layers + 1]; parts + 1];
    best[0][0] = 0;
    for s in 1..=parts {
        for l in s..=layers {
            for cut in s - 1..l {
                if best[s - 1][cut] != u64::MAX {
                    let b = best[s - 1][cut].max(span(cut, l));
                    best[s][l] = best[s][l].min(b);
                }
            }
        }
    }
    let bottleneck = best[parts][layers];
    // Greedy under the bottleneck: each part takes layers while it stays within it and leaves
    // one for every later part. Its cuts are never left of any optimal partition's, so the last
    // part fits too.
    let mut bounds = vec![0];
    let mut at = 0;
    for s in 0..parts - 1 {
        let mut end = at + 1;
        while end < layers - (parts - 1 - s) && span(at, end + 1) <= bottleneck {
            end += 1;
        }
        bounds.push(end);
        at = end;
    }
    bounds.push(layers);
    bounds
}

impl Partition {
    /// Split `layout`'s layers over `stages` stages, one contiguous block each, balanced by
    /// FLOPs. Refused when a stage would get no layer.
    pub fn balanced(layout: &Layout, stages: usize) -> Result<Partition, String> {
        Partition::interleaved(layout, stages, 1)
    }

    /// Split `layout`'s layers into `stages × virtual_stages` chunks balanced by FLOPs, stage `r`
    /// holding chunks `r, r + S, …` (Megatron-LM's interleaved assignment). Refused when a chunk
    /// would get no layer.
    pub fn interleaved(
        layout: &Layout,
        stages: usize,
        virtual_stages: usize,
    ) -> Result<Partition, String> {
        let layers = layout.layers();
        let chunks = stages * virtual_stages;
        if chunks == 0 || chunks > layers {
            let widths: Vec<String> = layout.widths.iter().map(usize::to_string).collect();
            let plural = if layers == 1 { "" } else { "s" };
            if virtual_stages <= 1 || stages > layers {
                return Err(format!(
                    "{stages} pipeline stages (one per rank) but the model {} has {layers} \
                     layer{plural}: every stage needs at least one layer; use 1 to {layers} \
                     ranks, or more hidden layers (`hidden`)",
                    widths.join("-"),
                ));
            }
            return Err(format!(
                "{stages} pipeline stages (one per rank) × virtual = {virtual_stages} = {chunks} \
                 model chunks but the model {} has {layers} layer{plural}: every chunk needs at \
                 least one layer; use virtual = {} or less, fewer ranks, or more hidden layers \
                 (`hidden`)",
                widths.join("-"),
                layers / stages
            ));
        }
        let cost: Vec<u64> = (0..layers).map(|l| layer_flops(layout, l)).collect();
        Ok(Partition {
            bounds: balanced_bounds(&cost, chunks),
            stages,
        })
    }

    /// Number of stages (ranks).
    pub fn stages(&self) -> usize {
        self.stages
    }

    /// Chunks per stage: `v`, 1 unless interleaved.
    pub fn virtual_stages(&self) -> usize {
        self.chunks() / self.stages
    }

    /// Number of model chunks, `S·v` (the virtual stages of the whole pipeline).
    pub fn chunks(&self) -> usize {
        self.bounds.len() - 1
    }

    /// The chunks stage `stage` holds, in model order: `stage, stage + S, …`.
    pub fn chunks_of(&self, stage: usize) -> impl Iterator<Item = usize> {
        (stage..self.chunks()).step_by(self.stages)
    }

    /// The layers of chunk `chunk` (with one chunk per stage, of stage `chunk`).
    pub fn layers(&self, chunk: usize) -> Range<usize> {
        self.bounds[chunk]..self.bounds[chunk + 1]
    }

    /// Where chunk `chunk`'s parameters lie in the model's flat vector (layers are stored in
    /// order, so a chunk's are contiguous and the chunks' ranges tile the vector in chunk order).
    pub fn params(&self, layout: &Layout, chunk: usize) -> Range<usize> {
        let Range { start, end } = self.layers(chunk);
        let lo = layout.offsets[start];
        let hi = if end < layout.layers() {
            layout.offsets[end]
        } else {
            layout.len()
        };
        lo..hi
    }

    /// Training FLOPs per sample of chunk `chunk`.
    pub fn flops(&self, layout: &Layout, chunk: usize) -> u64 {
        self.layers(chunk).map(|l| layer_flops(layout, l)).sum()
    }

    /// Parameters held by stage `stage` (all its chunks).
    pub fn stage_params(&self, layout: &Layout, stage: usize) -> usize {
        self.chunks_of(stage)
            .map(|c| self.params(layout, c).len())
            .sum()
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

/// The tag of a step's message across the boundary after chunk `boundary` (between chunks
/// `boundary` and `boundary + 1`), forward (activations) or backward (their gradient), of
/// micro-batch `micro` of `micros`: `(2·boundary + backward)·micros + micro`, unique within a step
/// and below `2·S·v·m`. Interleaved over 2 stages, rank 0 receives both the forward messages of
/// rank 1's chunks and their backward ones from the same rank: the direction is in the tag.
pub fn message_tag(boundary: usize, backward: bool, micro: usize, micros: usize) -> usize {
    (2 * boundary + usize::from(backward)) * micros + micro
}

/// The channels of a stage to its neighbours in the ring of stages (stage `S − 1`'s next is
/// stage 0, used only when interleaved). Every message carries its [`message_tag`]; receives
/// name the tag they want, and a link must deliver that message whatever else arrived first (the
/// stages' orders of passes need not match message for message).
pub trait StageLink {
    /// Send the message `tag` (output activations) to the next stage. The data may be reused by
    /// the caller as soon as this returns (implementations copy or complete before returning).
    fn send_next(&mut self, tag: usize, data: &[f64]) -> LinkTime;
    /// Receive the message `tag` (input activations) from the previous stage into `data` (sized
    /// by the caller).
    fn recv_prev(&mut self, tag: usize, data: &mut [f64]) -> LinkTime;
    /// Send the message `tag` (an input gradient) to the previous stage.
    fn send_prev(&mut self, tag: usize, data: &[f64]) -> LinkTime;
    /// Receive the message `tag` (an output gradient) from the next stage into `data`.
    fn recv_next(&mut self, tag: usize, data: &mut [f64]) -> LinkTime;
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
/// (bitwise) and, for balanced stages, the same bubble `(S − 1) / (v·m + S − 1)`; they differ in
/// the activations a stage holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeSchedule {
    /// GPipe: all forwards, then all backwards in the reverse order; every micro-batch's
    /// activations (of every chunk) are held until its backward pass.
    GPipe,
    /// 1F1B (PipeDream-flush, as Megatron-LM schedules it): warm-up forwards, then one forward
    /// and one backward alternately, then the remaining backwards. With one chunk per stage,
    /// stage `s` of `S` warms up with `min(S − s − 1, m)` forwards and holds at most `S − s`
    /// micro-batches' activations; interleaved, with Megatron-LM's
    /// `min(2·(S − s − 1) + (v − 1)·S, v·m)`.
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

/// One pass of a stage: the forward or backward of micro-batch `micro` through the stage's
/// `chunk`-th chunk (0 to `v − 1`, the stage's own numbering: chunk `chunk·S + s` of the model).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pass {
    pub forward: bool,
    pub chunk: usize,
    pub micro: usize,
}

/// The order of stage `stage`'s passes in a step of `micro` micro-batches through `virtual_stages`
/// chunks per stage, over `stages` stages (Megatron-LM's `forward_backward_pipelining_with_
/// interleaving`): the `k`-th forward runs chunk `(k mod S·v) / S` on micro-batch
/// `⌊k / S·v⌋·S + k mod S` (groups of `S` micro-batches go through chunk 0, then chunk 1, …), the
/// `k`-th backward the same micro-batch through the chunks in reverse. GPipe runs every forward,
/// then every backward in the reverse order of the forwards; 1F1B interleaves them after a
/// warm-up ([`PipeSchedule::OneFOneB`]). With `v = 1` these are the plain GPipe and 1F1B orders
/// (forward `k` is micro-batch `k`). Interleaved (`v > 1`), `micro` must be a multiple of `S`
/// ([`check_virtual`]).
pub fn pass_order(
    schedule: PipeSchedule,
    stages: usize,
    virtual_stages: usize,
    stage: usize,
    micro: usize,
) -> Vec<Pass> {
    let (s, v) = (stages, virtual_stages);
    let total = micro * v;
    let pass = |k: usize, forward: bool| {
        let in_group = k % (s * v);
        let chunk = in_group / s;
        Pass {
            forward,
            chunk: if forward { chunk } else { v - 1 - chunk },
            micro: k / (s * v) * s + k % s,
        }
    };
    match schedule {
        PipeSchedule::GPipe => {
            let forwards: Vec<Pass> = (0..total).map(|k| pass(k, true)).collect();
            let backwards = forwards.iter().rev().map(|p| Pass {
                forward: false,
                ..*p
            });
            forwards.iter().copied().chain(backwards).collect()
        }
        PipeSchedule::OneFOneB => {
            let warm = if v == 1 {
                s - stage - 1
            } else {
                2 * (s - stage - 1) + (v - 1) * s
            }
            .min(total);
            let mut ops: Vec<Pass> = (0..warm).map(|k| pass(k, true)).collect();
            for k in 0..total - warm {
                ops.push(pass(warm + k, true));
                ops.push(pass(k, false));
            }
            ops.extend((total - warm..total).map(|k| pass(k, false)));
            ops
        }
    }
}

/// Run every stage's [`pass_order`] on a model clock: a pass takes `cost(chunk, forward)` (the
/// model's chunk numbering), messages are free, and a pass starts when its stage is free and its
/// input has been produced. Each stage's idle share of the step (the last pass's end), or `None`
/// if the stages' orders deadlock.
pub fn simulate_idle(
    schedule: PipeSchedule,
    stages: usize,
    virtual_stages: usize,
    micro: usize,
    cost: impl Fn(usize, bool) -> f64,
) -> Option<Vec<f64>> {
    let chunks = stages * virtual_stages;
    let orders: Vec<Vec<Pass>> = (0..stages)
        .map(|s| pass_order(schedule, stages, virtual_stages, s, micro))
        .collect();
    // done[backward][chunk][micro]: when that pass ended.
    let mut done = vec![vec![vec![None::<f64>; micro]; chunks]; 2];
    let (mut at, mut clock, mut busy) = (vec![0; stages], vec![0.0; stages], vec![0.0; stages]);
    let mut moved = true;
    while moved {
        moved = false;
        for s in 0..stages {
            while let Some(p) = orders[s].get(at[s]) {
                let chunk = p.chunk * stages + s;
                let input = match (p.forward, chunk) {
                    (true, 0) => Some(0.0),
                    (true, c) => done[0][c - 1][p.micro],
                    (false, c) if c + 1 == chunks => done[0][c][p.micro],
                    (false, c) => done[1][c + 1][p.micro],
                };
                let Some(ready) = input else { break };
                let t = cost(chunk, p.forward);
                clock[s] = f64::max(clock[s], ready) + t;
                busy[s] += t;
                done[usize::from(!p.forward)][chunk][p.micro] = Some(clock[s]);
                at[s] += 1;
                moved = true;
            }
        }
    }
    if (0..stages).any(|s| at[s] < orders[s].len()) {
        return None;
    }
    let end = clock.iter().copied().fold(0.0, f64::max);
    Some(
        busy.iter()
            .map(|b| if end > 0.0 { 1.0 - b / end } else { 0.0 })
            .collect(),
    )
}

/// The bubble the schedule leaves with this partition's real chunk costs: the idlest stage's
/// share in [`simulate_idle`] with each chunk's forward costing its layers' `2·i·o` FLOPs per
/// sample and its backward the rest of [`Partition::flops`]. Where chunks are unequal (the input
/// and output layers are often light) it departs from [`bubble_prediction`], which assumes equal
/// ones; what the measured bubble adds beyond it is the machine's (messages, scheduling).
pub fn simulated_bubble(
    schedule: PipeSchedule,
    partition: &Partition,
    layout: &Layout,
    micro: usize,
) -> f64 {
    let forward = |c: usize| -> f64 {
        partition
            .layers(c)
            .map(|l| 2.0 * (layout.widths[l] * layout.widths[l + 1]) as f64)
            .sum()
    };
    let cost = |c: usize, f: bool| {
        if f {
            forward(c)
        } else {
            partition.flops(layout, c) as f64 - forward(c)
        }
    };
    simulate_idle(
        schedule,
        partition.stages(),
        partition.virtual_stages(),
        micro,
        cost,
    )
    .map_or(f64::NAN, |idle| idle.into_iter().fold(0.0, f64::max))
}

/// One pipeline stage: its chunks' parameters and momentum (slices of the model's, concatenated
/// in chunk order), and the activations of every micro-batch of the step in flight (GPipe keeps
/// them all until the backward pass; with [`Stage::with_recompute`] only each chunk's input).
pub struct Stage {
    layout: Layout,
    partition: Partition,
    stage: usize,
    /// The model chunks this stage holds, in its own chunk order.
    chunks: Vec<usize>,
    /// Local chunk `c`'s parameters are `params[bases[c]..bases[c + 1]]`.
    bases: Vec<usize>,
    /// This stage's parameters: its chunks' slices of the model's, concatenated.
    pub params: Vec<f64>,
    pub velocity: Vec<f64>,
    ws: Workspace,
    schedule: PipeSchedule,
    /// `acts[c][slot][k]`: the input to local chunk `c`'s `k`-th layer of the micro-batch in its
    /// activation slot `slot`; the last entry holds the chunk's output (the logits on the model's
    /// last chunk).
    acts: Vec<Vec<Vec<Vec<f64>>>>,
    delta: Vec<f64>,
    next_delta: Vec<f64>,
    transposed: Vec<f64>,
    leaves: Vec<f64>,
    timing: PipelineTiming,
    /// Activation re-materialisation: keep only each chunk's input per micro-batch in flight and
    /// run the chunk's forward again in the backward pass.
    recompute: bool,
    /// With `recompute`, per local chunk, the outputs of its layers for the one micro-batch whose
    /// forward or backward is running (lent to its slot meanwhile).
    scratch: Vec<Vec<Vec<f64>>>,
}

/// Adds `right` into `left` element-wise.
fn add_into(left: &mut [f64], right: &[f64]) {
    for (a, b) in left.iter_mut().zip(right) {
        *a += *b;
    }
}

impl Stage {
    /// Stage `stage` of `partition`, its chunks' parameters and momentum taken from `mlp`.
    pub fn new(mlp: &Mlp, partition: Partition, stage: usize) -> Stage {
        let chunks: Vec<usize> = partition.chunks_of(stage).collect();
        let mut bases = vec![0];
        let (mut params, mut velocity) = (Vec::new(), Vec::new());
        for &c in &chunks {
            let range = partition.params(&mlp.layout, c);
            params.extend_from_slice(&mlp.params[range.clone()]);
            velocity.extend_from_slice(&mlp.velocity[range]);
            bases.push(params.len());
        }
        Stage {
            layout: mlp.layout.clone(),
            params,
            velocity,
            acts: vec![Vec::new(); chunks.len()],
            scratch: chunks
                .iter()
                .map(|&c| vec![Vec::new(); partition.layers(c).len()])
                .collect(),
            recompute: false,
            chunks,
            bases,
            partition,
            stage,
            schedule: PipeSchedule::GPipe,
            ws: Workspace::new(),
            delta: Vec::new(),
            next_delta: Vec::new(),
            transposed: Vec::new(),
            leaves: Vec::new(),
            timing: PipelineTiming::default(),
        }
    }

    /// Start again from `mlp`'s parameters and momentum (this stage's slices of them), keeping
    /// the activation slots and buffers of earlier steps, so a repeated run allocates nothing new.
    pub fn restart(&mut self, mlp: &Mlp) {
        for (c, &chunk) in self.chunks.iter().enumerate() {
            let range = self.partition.params(&mlp.layout, chunk);
            let local = self.bases[c]..self.bases[c + 1];
            self.params[local.clone()].copy_from_slice(&mlp.params[range.clone()]);
            self.velocity[local].copy_from_slice(&mlp.velocity[range]);
        }
        self.timing = PipelineTiming::default();
    }

    /// The same stage, its passes ordered by `schedule` (GPipe unless told).
    pub fn with_schedule(mut self, schedule: PipeSchedule) -> Stage {
        self.schedule = schedule;
        self
    }

    /// The same stage, re-materialising activations (`true`): a micro-batch in flight keeps only
    /// each chunk's input, and the backward pass runs the chunk's forward again first. The
    /// recomputed activations are the same bits (the same GEMMs on the same input), so the
    /// weights are too; the price is one more forward per chunk and micro-batch.
    pub fn with_recompute(mut self, recompute: bool) -> Stage {
        self.recompute = recompute;
        self
    }

    /// The partition this stage belongs to.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// Where local chunk `c`'s parameters lie in [`Stage::params`] (and `velocity`).
    pub fn chunk_range(&self, c: usize) -> Range<usize> {
        self.bases[c]..self.bases[c + 1]
    }

    /// Bytes of the activations this stage holds at its peak (the inputs to its chunks' layers
    /// and their outputs, of as many micro-batches as its schedule keeps in flight; with
    /// re-materialisation, the chunks' inputs of those micro-batches and the layer outputs of one
    /// micro-batch per chunk).
    pub fn activation_bytes(&self) -> u64 {
        let held: u64 = self
            .acts
            .iter()
            .flatten()
            .flatten()
            .map(|a| a.len() as u64)
            .sum();
        let scratch: u64 = self.scratch.iter().flatten().map(|a| a.len() as u64).sum();
        8 * (held + scratch)
    }

    /// With re-materialisation, swap local chunk `c`'s scratch layer outputs into slot `slot`
    /// (before its forward runs) or back out (after): the slot itself holds only its input.
    fn swap_scratch(&mut self, c: usize, slot: usize) {
        if self.recompute {
            for (held, lent) in self.acts[c][slot][1..]
                .iter_mut()
                .zip(self.scratch[c].iter_mut())
            {
                std::mem::swap(held, lent);
            }
        }
    }

    /// The timing so far, and zero it.
    pub fn take_timing(&mut self) -> PipelineTiming {
        std::mem::take(&mut self.timing)
    }

    /// Layer `l`'s weight and bias ranges within this stage's `params` (`l` in local chunk `c`).
    fn local(&self, c: usize, l: usize) -> (Range<usize>, Range<usize>) {
        let base = self.partition.params(&self.layout, self.chunks[c]).start - self.bases[c];
        let (w, b) = self.layout.layer(l);
        (w.start - base..w.end - base, b.start - base..b.end - base)
    }

    /// Forward pass of local chunk `c` on the micro-batch in its slot `j`, whose input is already
    /// in `acts[c][j][0]` (`n` rows).
    fn forward(&mut self, c: usize, j: usize, n: usize) {
        let layers = self.partition.layers(self.chunks[c]);
        let last_layer = self.layout.layers() - 1;
        for (k, l) in layers.enumerate() {
            let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
            let (w, b) = self.local(c, l);
            let (before, after) = self.acts[c][j].split_at_mut(k + 1);
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
    /// input, for the `n` rows of the micro-batch in local chunk `c`'s slot `j` (`input` is
    /// `acts[c][j][k]`).
    fn input_gradient(&mut self, c: usize, j: usize, k: usize, l: usize, n: usize) {
        let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
        let (w, _) = self.local(c, l);
        relu_input_gradient(
            &mut self.ws,
            &mut self.transposed,
            &mut self.next_delta,
            (&self.delta[..n * o], &self.params[w], &self.acts[c][j][k]),
            (i, o),
        );
    }

    /// Layer `l`'s weight and bias gradients of every grain of the micro-batch in local chunk
    /// `c`'s slot `j` into the grains' leaves (each as long as the chunk's parameters).
    fn weight_gradient(&mut self, c: usize, j: usize, k: usize, l: usize, grain: usize) {
        let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
        let (w, b) = self.local(c, l);
        let base = self.bases[c];
        let (w, b) = (w.start - base..w.end - base, b.start - base..b.end - base);
        let p = self.bases[c + 1] - base;
        let grains = self.leaves.len() / p;
        let a = &self.acts[c][j][k];
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

    /// Softmax minus one-hot of the logits in the last chunk's slot `j` (rows `rows`) into `delta`.
    fn loss_gradient(&mut self, c: usize, j: usize, labels: &[u32], rows: &[usize]) {
        let classes = *self.layout.widths.last().unwrap();
        self.delta.clear();
        self.delta
            .extend_from_slice(self.acts[c][j].last().unwrap());
        for (k, &r) in rows.iter().enumerate() {
            let z = &mut self.delta[k * classes..(k + 1) * classes];
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

    /// Micro-batch `j`'s forward pass (rows `rows`, of `micros`) through local chunk `c` into its
    /// activation slot `slot`: its input from the dataset or the previous chunk's stage, its output
    /// handed on at once.
    #[allow(clippy::too_many_arguments)]
    fn forward_micro(
        &mut self,
        x: &Matrix,
        rows: &[usize],
        c: usize,
        j: usize,
        micros: usize,
        slot: usize,
        link: &mut dyn StageLink,
    ) {
        let chunk = self.chunks[c];
        let layers = self.partition.layers(chunk);
        let nl = layers.len();
        let n = rows.len();
        let width = self.layout.widths[layers.start];
        let mut input = std::mem::take(&mut self.acts[c][slot][0]);
        input.clear();
        if chunk == 0 {
            for &r in rows {
                input.extend_from_slice(x.row(r));
            }
        } else {
            input.resize(n * width, 0.0);
            let tag = message_tag(chunk - 1, false, j, micros);
            self.timed(|_| link.recv_prev(tag, &mut input));
        }
        self.acts[c][slot][0] = input;
        self.swap_scratch(c, slot);
        self.forward(c, slot, n);
        if chunk + 1 < self.partition.chunks() {
            let out = std::mem::take(&mut self.acts[c][slot][nl]);
            let tag = message_tag(chunk, false, j, micros);
            self.timed(|_| link.send_next(tag, &out));
            self.acts[c][slot][nl] = out;
        }
        self.swap_scratch(c, slot);
    }

    /// Micro-batch `j`'s backward pass through local chunk `c` from its activation slot `slot`:
    /// its output gradient from the loss or the next chunk's stage, its input gradient sent back,
    /// and its weight gradient (the tree over its grains) into `out` (the chunk's parameter count
    /// long).
    #[allow(clippy::too_many_arguments)]
    fn backward_micro(
        &mut self,
        labels: &[u32],
        rows: &[usize],
        c: usize,
        j: usize,
        micros: usize,
        slot: usize,
        grain: usize,
        link: &mut dyn StageLink,
        out: &mut Vec<f64>,
    ) {
        let chunk = self.chunks[c];
        let layers = self.partition.layers(chunk);
        let n = rows.len();
        let grains = n / grain;
        let p = self.bases[c + 1] - self.bases[c];
        if self.recompute {
            // Re-materialise: the chunk's forward again from its kept input.
            self.swap_scratch(c, slot);
            self.forward(c, slot, n);
        }
        if chunk + 1 == self.partition.chunks() {
            self.loss_gradient(c, slot, labels, rows);
        } else {
            let mut delta = std::mem::take(&mut self.delta);
            delta.clear();
            delta.resize(n * self.layout.widths[layers.end], 0.0);
            let tag = message_tag(chunk, true, j, micros);
            self.timed(|_| link.recv_next(tag, &mut delta));
            self.delta = delta;
        }
        self.leaves.clear();
        self.leaves.resize(grains * p, 0.0);
        for (k, l) in layers.clone().enumerate().rev() {
            if k == 0 {
                // The chunk's input gradient first, so the previous chunk's stage can go on
                // while this one computes its first layer's weight gradient.
                if chunk > 0 {
                    self.input_gradient(c, slot, k, l, n);
                    let sent = std::mem::take(&mut self.next_delta);
                    let tag = message_tag(chunk - 1, true, j, micros);
                    self.timed(|_| link.send_prev(tag, &sent));
                    self.next_delta = sent;
                }
                self.weight_gradient(c, slot, k, l, grain);
            } else {
                self.weight_gradient(c, slot, k, l, grain);
                self.input_gradient(c, slot, k, l, n);
                std::mem::swap(&mut self.delta, &mut self.next_delta);
            }
        }
        self.swap_scratch(c, slot);
        tree_sum(&mut self.leaves, p);
        out.clear();
        out.extend_from_slice(&self.leaves[..p]);
    }

    /// One optimizer step of this stage on the global batch `batch` (dataset row indices):
    /// `micro` micro-batches of whole `grain`s (checked by [`check_micro`], and interleaved by
    /// [`check_virtual`]), forward and backward through each of the stage's chunks in the order
    /// of its [`PipeSchedule`] ([`pass_order`]), then SGD with momentum on the stage's layers
    /// with the gradient of the mean loss. Every stage calls it with the same arguments.
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
        let v = self.chunks.len();
        let n = batch.len() / micro;
        // Activation slots per chunk: one per micro-batch in flight (forward done, backward not
        // yet), kept from step to step; GPipe needs `micro` of them per chunk, 1F1B fewer.
        let mut free: Vec<Vec<usize>> = self
            .acts
            .iter()
            .map(|slots| (0..slots.len()).rev().collect())
            .collect();
        let mut slot_of = vec![vec![0; micro]; v];
        // Per chunk, a binary-counter stack of (partial sum, micro-batches it covers). Every
        // schedule visits one chunk's micro-batches in one direction (GPipe last to first, 1F1B
        // first to last); either way equal-sized neighbours merge into the fixed tree's subtrees,
        // and older + newer is newer + older bitwise.
        let mut stacks: Vec<Vec<(Vec<f64>, usize)>> = vec![Vec::new(); v];
        let order = pass_order(self.schedule, self.partition.stages(), v, self.stage, micro);
        for Pass {
            forward,
            chunk: c,
            micro: j,
        } in order
        {
            let rows = &batch[j * n..(j + 1) * n];
            if forward {
                let nl = self.partition.layers(self.chunks[c]).len();
                let slot = free[c].pop().unwrap_or_else(|| {
                    self.acts[c].push(vec![Vec::new(); nl + 1]);
                    self.acts[c].len() - 1
                });
                slot_of[c][j] = slot;
                self.forward_micro(x, rows, c, j, micro, slot, link);
            } else {
                let mut g = Vec::new();
                self.backward_micro(
                    labels,
                    rows,
                    c,
                    j,
                    micro,
                    slot_of[c][j],
                    grain,
                    link,
                    &mut g,
                );
                free[c].push(slot_of[c][j]);
                let stack = &mut stacks[c];
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
        let scale = batch.len() as f64;
        let Sgd { lr, momentum } = sgd;
        for (c, stack) in stacks.iter_mut().enumerate() {
            let grad = stack.swap_remove(0).0;
            let range = self.bases[c]..self.bases[c + 1];
            for ((w, v), g) in self.params[range.clone()]
                .iter_mut()
                .zip(self.velocity[range].iter_mut())
                .zip(&grad)
            {
                *v = momentum * *v + g / scale;
                *w -= lr * *v;
            }
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
    use std::collections::HashMap;
    use std::sync::mpsc::{channel, Receiver, Sender};

    use super::super::{global_batch, LocalReducer, Schedule, Trainer};
    use super::*;
    use crate::data;

    type Wire = (usize, Vec<f64>);

    /// Stages as threads, neighbours in the ring joined by channels (unbounded: sends never
    /// block). A receive keeps the messages that arrived before the one it wants, by tag.
    struct ChannelLink {
        to_next: Option<Sender<Wire>>,
        from_prev: Option<Receiver<Wire>>,
        to_prev: Option<Sender<Wire>>,
        from_next: Option<Receiver<Wire>>,
        early: HashMap<usize, Vec<f64>>,
    }

    fn send(to: &Option<Sender<Wire>>, tag: usize, data: &[f64]) -> LinkTime {
        to.as_ref()
            .expect("a neighbour on that side")
            .send((tag, data.to_vec()))
            .unwrap();
        LinkTime {
            wait_s: 0.0,
            bytes: 8 * data.len() as u64,
        }
    }

    fn recv(
        from: &Option<Receiver<Wire>>,
        early: &mut HashMap<usize, Vec<f64>>,
        tag: usize,
        data: &mut [f64],
    ) -> LinkTime {
        let t = Instant::now();
        let got = loop {
            if let Some(got) = early.remove(&tag) {
                break got;
            }
            let (got_tag, got) = from
                .as_ref()
                .expect("a neighbour on that side")
                .recv()
                .unwrap();
            assert!(early.insert(got_tag, got).is_none(), "tag {got_tag} twice");
        };
        let wait_s = t.elapsed().as_secs_f64();
        data.copy_from_slice(&got);
        LinkTime { wait_s, bytes: 0 }
    }

    impl StageLink for ChannelLink {
        fn send_next(&mut self, tag: usize, data: &[f64]) -> LinkTime {
            send(&self.to_next, tag, data)
        }
        fn recv_prev(&mut self, tag: usize, data: &mut [f64]) -> LinkTime {
            recv(&self.from_prev, &mut self.early, tag, data)
        }
        fn send_prev(&mut self, tag: usize, data: &[f64]) -> LinkTime {
            send(&self.to_prev, tag, data)
        }
        fn recv_next(&mut self, tag: usize, data: &mut [f64]) -> LinkTime {
            recv(&self.from_next, &mut self.early, tag, data)
        }
        fn finish(&mut self) -> LinkTime {
            assert!(
                self.early.is_empty(),
                "messages left unread at the step's end"
            );
            LinkTime::default()
        }
    }

    /// The links of `stages` threads: a line, or (`ring`, for interleaving) a ring where the
    /// last stage's next is the first (with one stage, itself).
    fn links(stages: usize, ring: bool) -> Vec<ChannelLink> {
        let mut links: Vec<ChannelLink> = (0..stages)
            .map(|_| ChannelLink {
                to_next: None,
                from_prev: None,
                to_prev: None,
                from_next: None,
                early: HashMap::new(),
            })
            .collect();
        let joins = if ring {
            stages
        } else {
            stages.saturating_sub(1)
        };
        for s in 0..joins {
            let t = (s + 1) % stages;
            let (tx, rx) = channel();
            links[s].to_next = Some(tx);
            links[t].from_prev = Some(rx);
            let (tx, rx) = channel();
            links[t].to_prev = Some(tx);
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
    fn serial(widths: &[usize], steps: usize, batch: usize, grain: usize) -> (Vec<u64>, Vec<u64>) {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let mut t = Trainer::new(Mlp::new(widths, 7).unwrap());
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

    /// What [`pipelined`] returns: the model's weights and momentum as bits, put together from
    /// the stages' chunks, and each stage's timing and activation bytes.
    type Trained = (Vec<u64>, Vec<u64>, Vec<(PipelineTiming, u64)>);

    /// Train the model `widths` with `stages` threads, `virtual_stages` chunks each, in
    /// `schedule`.
    fn pipelined(
        widths: &[usize],
        schedule: PipeSchedule,
        stages: usize,
        virtual_stages: usize,
        micro: usize,
        steps: usize,
    ) -> Trained {
        pipelined_with(
            widths,
            schedule,
            stages,
            virtual_stages,
            micro,
            steps,
            false,
        )
    }

    /// [`pipelined`], re-materialising activations if `recompute`.
    fn pipelined_with(
        widths: &[usize],
        schedule: PipeSchedule,
        stages: usize,
        virtual_stages: usize,
        micro: usize,
        steps: usize,
        recompute: bool,
    ) -> Trained {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap().to_vec();
        let order: Vec<usize> = (0..iris.rows()).rev().collect();
        let mlp = Mlp::new(widths, 7).unwrap();
        let partition = Partition::interleaved(&mlp.layout, stages, virtual_stages).unwrap();
        type Part = (Vec<f64>, Vec<f64>, (PipelineTiming, u64));
        let parts: Vec<Part> = std::thread::scope(|sc| {
            let handles: Vec<_> = links(stages, virtual_stages > 1)
                .into_iter()
                .enumerate()
                .map(|(s, mut link)| {
                    let (iris, y, order, mlp, partition) = (&iris, &y, &order, &mlp, &partition);
                    sc.spawn(move || {
                        let mut stage = Stage::new(mlp, partition.clone(), s)
                            .with_schedule(schedule)
                            .with_recompute(recompute);
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
        let mut params = vec![u64::MAX; mlp.layout.len()];
        let mut velocity = params.clone();
        for (s, part) in parts.iter().enumerate() {
            let mut at = 0;
            for chunk in partition.chunks_of(s) {
                let r = partition.params(&mlp.layout, chunk);
                for (i, k) in r.clone().enumerate() {
                    params[k] = part.0[at + i].to_bits();
                    velocity[k] = part.1[at + i].to_bits();
                }
                at += r.len();
            }
            assert_eq!(at, part.0.len());
        }
        (params, velocity, parts.into_iter().map(|p| p.2).collect())
    }

    /// Bytes a stage sends per step: for each chunk it holds, the batch's rows at the width of
    /// the cut after it (activations forward) and before it (gradients backward), none beyond
    /// the model's ends.
    fn bytes_per_step(widths: &[usize], partition: &Partition, stage: usize, batch: usize) -> u64 {
        let mut want = 0;
        for chunk in partition.chunks_of(stage) {
            if chunk + 1 < partition.chunks() {
                want += batch * widths[partition.layers(chunk).end];
            }
            if chunk > 0 {
                want += batch * widths[partition.layers(chunk).start];
            }
        }
        8 * want as u64
    }

    #[test]
    fn threads_as_stages_give_the_serial_weights_bitwise() {
        let reference = serial(&WIDTHS, 10, BATCH, GRAIN);
        let layout = Mlp::new(&WIDTHS, 7).unwrap().layout;
        for schedule in [PipeSchedule::GPipe, PipeSchedule::OneFOneB] {
            for stages in 1..=5 {
                let partition = Partition::balanced(&layout, stages).unwrap();
                for micro in [1, 2, 4, 8, 16] {
                    let (params, velocity, timing) =
                        pipelined(&WIDTHS, schedule, stages, 1, micro, 10);
                    assert!(
                        params == reference.0 && velocity == reference.1,
                        "{schedule:?}, {stages} stages, {micro} micro-batches: weights differ \
                         from the serial ones"
                    );
                    for (s, (t, _)) in timing.iter().enumerate() {
                        assert_eq!(t.steps, 10);
                        assert!(t.compute_s > 0.0 && t.step_s >= t.compute_s);
                        assert!((0.0..=1.0).contains(&t.bubble()), "stage {s}: {t:?}");
                        assert_eq!(
                            t.bytes_sent,
                            10 * bytes_per_step(&WIDTHS, &partition, s, BATCH),
                            "stage {s}"
                        );
                    }
                }
            }
        }
    }

    /// Eight layers, so that 4 stages × 2 chunks and 2 stages × 4 chunks fit.
    const DEEP: [usize; 9] = [4, 12, 10, 9, 8, 7, 6, 5, 3];

    #[test]
    fn interleaved_stages_give_the_serial_weights_bitwise() {
        let reference = serial(&DEEP, 6, BATCH, GRAIN);
        let layout = Layout::new(&DEEP).unwrap();
        for schedule in [PipeSchedule::GPipe, PipeSchedule::OneFOneB] {
            for (stages, virtual_stages) in [(1, 2), (2, 2), (4, 2), (2, 4), (1, 8)] {
                let partition = Partition::interleaved(&layout, stages, virtual_stages).unwrap();
                assert_eq!(partition.chunks(), stages * virtual_stages);
                for micro in [1, 2, 4, 8, 16] {
                    if check_virtual("t", stages, virtual_stages, micro).is_err() {
                        continue;
                    }
                    let (params, velocity, timing) =
                        pipelined(&DEEP, schedule, stages, virtual_stages, micro, 6);
                    assert!(
                        params == reference.0 && velocity == reference.1,
                        "{schedule:?}, {stages} stages × {virtual_stages} chunks, {micro} \
                         micro-batches: weights differ from the serial ones"
                    );
                    for (s, (t, _)) in timing.iter().enumerate() {
                        assert_eq!(t.steps, 6);
                        // v-fold the boundary crossings: every chunk but the model's ends sends
                        // both ways.
                        assert_eq!(
                            t.bytes_sent,
                            6 * bytes_per_step(&DEEP, &partition, s, BATCH),
                            "stage {s}"
                        );
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
        let mut link = links(1, false).pop().unwrap();
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
        let (.., gpipe) = pipelined(&WIDTHS, PipeSchedule::GPipe, 4, 1, 8, 2);
        let (.., ofob) = pipelined(&WIDTHS, PipeSchedule::OneFOneB, 4, 1, 8, 2);
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
    fn the_bubble_prediction_is_gpipes_formula_with_v_chunks_per_stage() {
        assert_eq!(bubble_prediction(1, 1, 4), 0.0);
        assert_eq!(bubble_prediction(2, 1, 1), 0.5);
        assert_eq!(bubble_prediction(2, 1, 8), 1.0 / 9.0);
        assert_eq!(bubble_prediction(4, 1, 4), 3.0 / 7.0);
        // Interleaved: (S − 1) / (v·m + S − 1); Megatron-LM's (1/v)·(S − 1)/m is the same idle
        // time over the ideal time instead of over the whole step.
        assert_eq!(bubble_prediction(2, 2, 4), 1.0 / 9.0);
        assert_eq!(bubble_prediction(4, 2, 4), 3.0 / 11.0);
        assert_eq!(bubble_prediction(4, 4, 8), 3.0 / 35.0);
        let (s, v, m) = (4.0, 2.0, 8.0);
        let idle_over_ideal = (s - 1.0) / m / v;
        let share = idle_over_ideal / (1.0 + idle_over_ideal);
        assert!((bubble_prediction(4, 2, 8) - share).abs() < 1e-15);
    }

    /// `F(c, j)` / `B(c, j)`: the forward / backward of micro-batch `j` through local chunk `c`.
    #[allow(non_snake_case)]
    fn F(chunk: usize, micro: usize) -> Pass {
        Pass {
            forward: true,
            chunk,
            micro,
        }
    }
    #[allow(non_snake_case)]
    fn B(chunk: usize, micro: usize) -> Pass {
        Pass {
            forward: false,
            chunk,
            micro,
        }
    }

    #[test]
    fn the_pass_orders_are_gpipe_1f1b_and_megatrons_interleaved_1f1b() {
        // One chunk per stage: the orders the stages have always run.
        assert_eq!(
            pass_order(PipeSchedule::GPipe, 2, 1, 0, 3),
            [F(0, 0), F(0, 1), F(0, 2), B(0, 2), B(0, 1), B(0, 0)]
        );
        assert_eq!(
            pass_order(PipeSchedule::OneFOneB, 3, 1, 0, 4),
            [
                F(0, 0),
                F(0, 1),
                F(0, 2),
                B(0, 0),
                F(0, 3),
                B(0, 1),
                B(0, 2),
                B(0, 3)
            ]
        );
        // 2 stages × 2 chunks, 4 micro-batches, worked by hand from Megatron-LM's rule: forwards
        // in groups of S = 2 micro-batches per chunk (0,1 through chunk 0, then 0,1 through
        // chunk 1, then 2,3 …); backwards the same groups through the chunks in reverse. Stage 0
        // warms up with 2·(2 − 0 − 1) + (2 − 1)·2 = 4 forwards, stage 1 with 2.
        assert_eq!(
            pass_order(PipeSchedule::OneFOneB, 2, 2, 0, 4),
            [
                F(0, 0),
                F(0, 1),
                F(1, 0),
                F(1, 1),
                F(0, 2),
                B(1, 0),
                F(0, 3),
                B(1, 1),
                F(1, 2),
                B(0, 0),
                F(1, 3),
                B(0, 1),
                B(1, 2),
                B(1, 3),
                B(0, 2),
                B(0, 3),
            ]
        );
        assert_eq!(
            pass_order(PipeSchedule::OneFOneB, 2, 2, 1, 4),
            [
                F(0, 0),
                F(0, 1),
                F(1, 0),
                B(1, 0),
                F(1, 1),
                B(1, 1),
                F(0, 2),
                B(0, 0),
                F(0, 3),
                B(0, 1),
                F(1, 2),
                B(1, 2),
                F(1, 3),
                B(1, 3),
                B(0, 2),
                B(0, 3),
            ]
        );
        // Interleaved GPipe: the same forwards, then the backwards in the reverse order.
        assert_eq!(
            pass_order(PipeSchedule::GPipe, 2, 2, 1, 2),
            [
                F(0, 0),
                F(0, 1),
                F(1, 0),
                F(1, 1),
                B(1, 1),
                B(1, 0),
                B(0, 1),
                B(0, 0)
            ]
        );
    }

    #[test]
    fn on_a_unit_time_clock_every_schedule_idles_exactly_the_predicted_share() {
        for schedule in [PipeSchedule::GPipe, PipeSchedule::OneFOneB] {
            for stages in 1..=4 {
                for virtual_stages in 1..=4 {
                    for micro in [1, 2, 4, 8, 16] {
                        if check_virtual("t", stages, virtual_stages, micro).is_err() {
                            continue;
                        }
                        let what = format!(
                            "{schedule:?}, {stages} stages × {virtual_stages}, {micro} micro"
                        );
                        // A forward through one chunk takes 1/v, a backward 2/v: a stage's work
                        // per micro-batch is 3 whatever v.
                        let v = virtual_stages as f64;
                        let unit = |_: usize, f: bool| if f { 1.0 / v } else { 2.0 / v };
                        let idle = simulate_idle(schedule, stages, virtual_stages, micro, unit)
                            .unwrap_or_else(|| panic!("{what}: the stages' orders deadlock"));
                        let want = bubble_prediction(stages, virtual_stages, micro);
                        for (s, i) in idle.iter().enumerate() {
                            assert!(
                                (i - want).abs() < 1e-12,
                                "{what}: stage {s} idles {i}, predicted {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_simulated_bubble_follows_the_real_chunk_costs() {
        // Equal layers, but the first skips its input gradient: stage 0 (chunks 0 and 2) does
        // 10 units of the 12 stage 1 does per micro-batch, so it idles at least 1/6 besides.
        let even = Layout::new(&[16, 16, 16, 16, 16]).unwrap();
        let p = Partition::interleaved(&even, 2, 2).unwrap();
        let got = simulated_bubble(PipeSchedule::OneFOneB, &p, &even, 4);
        assert!(got > 1.0 / 6.0 && got > bubble_prediction(2, 2, 4), "{got}");
        // A wide input layer makes chunk 0 the bottleneck: the pipeline idles more than the
        // formula says, and a hand count agrees. 2 stages, 1 chunk each, 1 micro-batch: stage 1
        // waits for stage 0's forward, and stage 0 for stage 1's forward and backward.
        let skewed = Layout::new(&[64, 8, 8]).unwrap();
        let p = Partition::balanced(&skewed, 2).unwrap();
        let (f0, b0) = (2.0 * 512.0, 2.0 * 512.0);
        let (f1, b1) = (2.0 * 64.0, 4.0 * 64.0);
        let step = f0 + f1 + b1 + b0;
        let want = f64::max(1.0 - (f0 + b0) / step, 1.0 - (f1 + b1) / step);
        let got = simulated_bubble(PipeSchedule::GPipe, &p, &skewed, 1);
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        assert!(got > bubble_prediction(2, 1, 1));
    }

    #[test]
    fn re_materialised_stages_give_the_serial_weights_bitwise_holding_fewer_activations() {
        let reference = serial(&DEEP, 6, BATCH, GRAIN);
        for schedule in [PipeSchedule::GPipe, PipeSchedule::OneFOneB] {
            for (stages, virtual_stages, micro) in
                [(1, 1, 4), (2, 1, 8), (4, 1, 4), (2, 2, 4), (4, 2, 8)]
            {
                let (params, velocity, kept) =
                    pipelined_with(&DEEP, schedule, stages, virtual_stages, micro, 6, true);
                assert!(
                    params == reference.0 && velocity == reference.1,
                    "{schedule:?}, {stages} stages × {virtual_stages}, {micro} micro-batches, \
                     recomputed: weights differ from the serial ones"
                );
                let (.., held) = pipelined(&DEEP, schedule, stages, virtual_stages, micro, 1);
                // Fewer bytes wherever a stage holds more than one micro-batch (GPipe: all of
                // them); the same where it holds one (1F1B's last stage without interleaving).
                for s in 0..stages {
                    let one_in_flight = schedule == PipeSchedule::OneFOneB
                        && virtual_stages == 1
                        && s + 1 == stages;
                    assert!(
                        kept[s].1 < held[s].1 || (one_in_flight && kept[s].1 == held[s].1),
                        "{schedule:?}, {stages} × {virtual_stages}, stage {s}: {} bytes \
                         recomputed, {} held",
                        kept[s].1,
                        held[s].1
                    );
                }
            }
        }
        // GPipe, one stage, 4 micro-batches of 12 rows through 8 layers: without recompute the
        // 4 slots hold every layer's input and the logits; with it, 4 inputs (4 features) and
        // one micro-batch's 8 layer outputs.
        let outputs: usize = DEEP[1..].iter().sum();
        let (.., held) = pipelined(&DEEP, PipeSchedule::GPipe, 1, 1, 4, 1);
        let (.., kept) = pipelined_with(&DEEP, PipeSchedule::GPipe, 1, 1, 4, 1, true);
        assert_eq!(held[0].1, 8 * 4 * 12 * (DEEP[0] + outputs) as u64);
        assert_eq!(kept[0].1, 8 * 12 * (4 * DEEP[0] + outputs) as u64);
    }

    #[test]
    fn interleaving_is_refused_where_its_schedule_cannot_run_with_the_fix() {
        let layout = Layout::new(&[4, 8, 8, 8, 3]).unwrap();
        assert_eq!(
            Partition::interleaved(&layout, 2, 4).unwrap_err(),
            "2 pipeline stages (one per rank) × virtual = 4 = 8 model chunks but the model \
             4-8-8-8-3 has 4 layers: every chunk needs at least one layer; use virtual = 2 or \
             less, fewer ranks, or more hidden layers (`hidden`)"
        );
        assert_eq!(
            Partition::interleaved(&layout, 4, 2).unwrap_err(),
            "4 pipeline stages (one per rank) × virtual = 2 = 8 model chunks but the model \
             4-8-8-8-3 has 4 layers: every chunk needs at least one layer; use virtual = 1 or \
             less, fewer ranks, or more hidden layers (`hidden`)"
        );
        let p = Partition::interleaved(&layout, 2, 2).unwrap();
        assert_eq!(p.chunks_of(0).collect::<Vec<_>>(), [0, 2]);
        assert_eq!(p.chunks_of(1).collect::<Vec<_>>(), [1, 3]);
        assert_eq!((p.stages(), p.virtual_stages()), (2, 2));
        assert_eq!(
            check_virtual("mpi.train", 2, 0, 4).unwrap_err(),
            "mpi.train: virtual = 0: every stage needs at least one chunk of layers; use \
             virtual = 1 (one contiguous block of layers per rank) or more (interleaved)"
        );
        assert_eq!(
            check_virtual("mpi.train", 4, 2, 2).unwrap_err(),
            "mpi.train: virtual = 2 with 4 stages and micro = 2: the interleaved schedule \
             (Megatron-LM's) runs the micro-batches through each chunk in groups of one per \
             stage, so micro must be a multiple of the stage (rank) count; use micro = 4 (or \
             more)"
        );
        assert_eq!(
            check_virtual("mpi.train", 3, 2, 4).unwrap_err(),
            "mpi.train: virtual = 2 with 3 stages and micro = 4: the interleaved schedule \
             (Megatron-LM's) runs the micro-batches through each chunk in groups of one per \
             stage, so micro must be a multiple of the stage (rank) count; micro is a power of \
             two, so use a power-of-two rank count (e.g. 2 or 4), or virtual = 1"
        );
        assert_eq!(
            check_virtual("mpi.train", 4, 4, 2048).unwrap_err(),
            "mpi.train: 4 stages × virtual = 4 × micro = 2048: a step's 65536 messages need \
             tags beyond 32767, the largest MPI guarantees; use fewer micro-batches or virtual \
             stages"
        );
        assert!(check_virtual("mpi.train", 3, 1, 4).is_ok());
        assert!(check_virtual("mpi.train", 4, 2, 8).is_ok());
    }

    #[test]
    fn interleaved_one_f_one_b_holds_fewer_activations_than_interleaved_gpipe() {
        // 2 stages × 4 chunks, 8 micro-batches: GPipe holds every micro-batch of every chunk;
        // 1F1B's stage 0 warms up with 2 + 3·2 = 8 of the 32 chunk-passes.
        let (.., gpipe) = pipelined(&DEEP, PipeSchedule::GPipe, 2, 4, 8, 1);
        let (.., ofob) = pipelined(&DEEP, PipeSchedule::OneFOneB, 2, 4, 8, 1);
        for s in 0..2 {
            assert!(
                ofob[s].1 < gpipe[s].1,
                "stage {s}: 1F1B {:?}, GPipe {:?}",
                ofob[s],
                gpipe[s]
            );
        }
    }
}

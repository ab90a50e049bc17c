//! `mpi.train` with `strategy = "pipeline"`: the MLP's layers split over the point's ranks, one
//! stage per rank, trained GPipe style, 1F1B or interleaved (`scalelab_ml::mlp::pipeline`), and
//! the MPI implementation of its [`StageLink`].
//!
//! Stage `s` (rank `s`) owns a contiguous range of layers, balanced by training FLOPs
//! ([`Partition::balanced`]). Each global batch is cut into `micro` micro-batches; all of them flow
//! forward (rank `s` sends its output activations to rank `s + 1`), then backward, last
//! micro-batch first (rank `s` sends the gradient of its input to rank `s − 1`); then every stage
//! updates its own layers. With `schedule = "1f1b"` the stages alternate one forward and one
//! backward instead (fewer activations held, the same weights). No data is split over the ranks:
//! every stage sees every micro-batch. With `virtual = v > 1` the model is cut into `ranks × v`
//! chunks and rank `s` holds chunks `s, s + S, …` ([`Partition::interleaved`], Megatron-LM's
//! virtual pipeline stages): the ranks form a ring (the last rank's chunk feeds the first rank's
//! next chunk), each micro-batch crosses `S·v − 1` boundaries instead of `S − 1`, and the bubble
//! shrinks v-fold.
//!
//! The link: sends are `MPI_Isend` from a buffer per micro-batch and direction (so a stage never
//! blocks on a busy neighbour and can run ahead, as GPipe's schedule assumes), completed at the end
//! of the step; receives are a matched probe (`MPI_Mprobe`: blocked until the neighbour's message
//! is there, counted as **waiting**) followed by the matched receive (the copy, counted as
//! **communication**). Completing the step's sends counts as waiting too. Each message is tagged
//! with its boundary, direction and micro-batch ([`pipeline::message_tag`]), so that over 2
//! interleaved ranks the forward and backward messages between the same pair stay apart.
//!
//! Verification: after every repetition the stages' parameters and momentum are gathered
//! (`MPI_Allgatherv`: the stages' ranges tile the model's flat vector in rank order) and must be
//! bitwise the serial reference's; the assembled model is then scored on the held-out rows. The
//! stage's own slice is poisoned afterwards so the next repetition is checked on its own result.
//!
//! Metrics besides those of the data-parallel strategies (maximum over stages, as every MPI
//! point): `wait_s` (seconds blocked on a neighbour), `bubble` (the measured idle share of a
//! stage's step, `wait_s / step time`), `bubble_predicted` (`(S − 1) / (v·m + S − 1)`: GPipe's
//! `(S − 1) / (m + S − 1)` at `v = 1`, for equal chunks), `bubble_simulated` (the idlest
//! stage's share when the schedule runs on a clock of this partition's chunk FLOPs with free
//! messages: what the split itself costs, before the machine's share), `stages`, `virtual`, `stage_param_bytes` (the largest
//! stage's parameters), `activation_bytes` (the activations a stage keeps for its backward
//! passes: every micro-batch's with GPipe; with `recompute = "on"` only each chunk's input per
//! micro-batch in flight plus one micro-batch's layer outputs, the forward being run again in the
//! backward pass) and `bytes_per_step` (what a stage sends per step: v-fold with interleaving).

use std::time::Instant;

use ::mpi::collective::CommunicatorCollectives;
use ::mpi::datatype::PartitionMut;
use ::mpi::point_to_point::{Destination, Source};
use ::mpi::request::{LocalScope, Request};
use ::mpi::topology::Communicator;
use ::mpi::traits::Equivalence;
use ::mpi::{Count, Tag};
use scalelab_ml::mlp::pipeline::{
    self, LinkTime, Partition, PipeSchedule, PipelineTiming, Stage, StageLink,
};
use scalelab_ml::mlp::{Layout, Mlp, Schedule, Trainer};

use super::{Data, LossCurve, Setup};
use crate::workload::{Comm, Instance, Params, Target};

/// The strategy's name on the `strategy` axis.
pub(super) const PIPELINE: &str = "pipeline";

/// The data split of a point: for the pipeline, every stage sees the whole global batch in `micro`
/// micro-batches (checked here with messages in the pipeline's terms), so the tree's split is one
/// rank's; other strategies keep theirs.
pub(super) fn data_split(
    name: &str,
    strategy: &str,
    schedule: Schedule,
) -> Result<Schedule, String> {
    if strategy != PIPELINE {
        return Ok(schedule);
    }
    pipeline::check_micro(name, schedule.batch, schedule.grain, schedule.micro)?;
    Ok(Schedule {
        ranks: 1,
        ..schedule
    })
}

/// The `virtual` parameter of a point: chunks per stage.
fn virtual_stages(params: &Params) -> Result<usize, String> {
    super::count(params, "virtual")
}

/// Check time: a stage per rank needs a layer per chunk, the interleaved schedule its micro-batch
/// count, and the stage's memory must fit.
pub(super) fn check(
    name: &str,
    params: &Params,
    setup: &Setup,
    layout: &Layout,
    ranks: usize,
    data_values: usize,
    target: &Target,
) -> Result<(), String> {
    let Schedule {
        batch,
        grain,
        micro,
        ..
    } = setup.schedule;
    let v = virtual_stages(params).map_err(|e| format!("{name}: {e}"))?;
    pipeline::check_virtual(name, ranks, v, micro)?;
    Partition::interleaved(layout, ranks, v).map_err(|e| format!("{name}: {e}"))?;
    // Data twice (raw and standardised); every micro-batch's activations of every layer (an upper
    // bound on a stage's share) and two gradient buffers; a gradient per grain of a micro-batch and
    // the counter stack; weights, momentum, the reference's, and the gathered copies.
    let widths: usize = layout.widths().iter().sum();
    let p = layout.len() as f64;
    let grains = (batch / micro / grain) as f64;
    let per_rank = 8.0
        * (2.0 * data_values as f64
            + batch as f64 * widths as f64
            + 2.0 * (batch / micro) as f64 * *layout.widths().iter().max().unwrap_or(&1) as f64
            + (grains + 2.0 + (micro as f64).log2() + 8.0) * p);
    target.fits_memory(
        name,
        per_rank,
        "use a smaller dataset (`size`), batch or hidden widths",
    )
}

/// Build rank `comm.rank()`'s stage of a pipeline point.
pub(super) fn prepare(
    comm: &Comm,
    params: &Params,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    curve: LossCurve,
) -> anyhow::Result<Box<dyn Instance>> {
    let stages = comm.size() as usize;
    let v = virtual_stages(params).map_err(|e| anyhow::anyhow!("mpi.train: {e}"))?;
    let partition = Partition::interleaved(&initial.layout, stages, v)
        .map_err(|e| anyhow::anyhow!("mpi.train: {e}"))?;
    let micro = setup.schedule.micro;
    let name = super::text(params, "schedule").map_err(|e| anyhow::anyhow!("mpi.train: {e}"))?;
    let schedule = PipeSchedule::parse(name).ok_or_else(|| {
        anyhow::anyhow!(
            "mpi.train: schedule = \"{name}\" is not a pipeline schedule; use one of {}",
            PipeSchedule::NAMES.join(", ")
        )
    })?;
    let recompute =
        super::text(params, "recompute").map_err(|e| anyhow::anyhow!("mpi.train: {e}"))? == "on";
    Ok(Box::new(PipelineInstance {
        curve,
        schedule,
        recompute,
        stage_index: comm.rank() as usize,
        comm: comm.duplicate(),
        sends: vec![Vec::new(); 2 * micro * v],
        setup,
        data,
        initial,
        reference,
        partition,
        stage: None,
        wall_s: 0.0,
        timing: PipelineTiming::default(),
        activation_bytes: 0,
        loss: f64::NAN,
        accuracy: f64::NAN,
    }))
}

/// A stage's [`StageLink`] for one step: its sends live in `free` (one buffer per message of the
/// step) until [`StageLink::finish`] completes them, inside one `mpi::request::scope`. The
/// neighbours are `rank ± 1` around the ring of `size` ranks (the wrap is used only when
/// interleaved).
struct MpiLink<'a, 's> {
    comm: &'a Comm,
    rank: i32,
    size: i32,
    scope: &'s LocalScope<'a>,
    free: &'a mut [Vec<f64>],
    pending: Vec<Request<'a, [f64], &'s LocalScope<'a>>>,
}

impl<'a> MpiLink<'a, '_> {
    fn post(&mut self, to: i32, tag: usize, data: &[f64]) -> LinkTime {
        let free = std::mem::take(&mut self.free);
        let (buf, rest) = free
            .split_first_mut()
            .expect("one send buffer per micro-batch, chunk and direction");
        self.free = rest;
        buf.clear();
        buf.extend_from_slice(data);
        let buf: &'a [f64] = buf;
        let request = self
            .comm
            .process_at_rank(to)
            .immediate_send_with_tag(self.scope, buf, tag as Tag);
        self.pending.push(request);
        LinkTime {
            wait_s: 0.0,
            bytes: 8 * data.len() as u64,
        }
    }

    fn take(&mut self, from: i32, tag: usize, data: &mut [f64]) -> LinkTime {
        let t = Instant::now();
        let (message, status) = self
            .comm
            .process_at_rank(from)
            .matched_probe_with_tag(tag as Tag);
        let wait_s = t.elapsed().as_secs_f64();
        let count = status.count(f64::equivalent_datatype());
        assert_eq!(
            count,
            data.len() as Count,
            "stage {}: message {tag} from rank {from} has {count} values, expected {}",
            self.rank,
            data.len()
        );
        message.matched_receive_into(data);
        LinkTime { wait_s, bytes: 0 }
    }
}

impl MpiLink<'_, '_> {
    fn next(&self) -> i32 {
        (self.rank + 1) % self.size
    }
    fn prev(&self) -> i32 {
        (self.rank + self.size - 1) % self.size
    }
}

impl StageLink for MpiLink<'_, '_> {
    fn send_next(&mut self, tag: usize, data: &[f64]) -> LinkTime {
        self.post(self.next(), tag, data)
    }
    fn recv_prev(&mut self, tag: usize, data: &mut [f64]) -> LinkTime {
        self.take(self.prev(), tag, data)
    }
    fn send_prev(&mut self, tag: usize, data: &[f64]) -> LinkTime {
        self.post(self.prev(), tag, data)
    }
    fn recv_next(&mut self, tag: usize, data: &mut [f64]) -> LinkTime {
        self.take(self.next(), tag, data)
    }
    fn finish(&mut self) -> LinkTime {
        let t = Instant::now();
        for request in self.pending.drain(..) {
            request.wait();
        }
        LinkTime {
            wait_s: t.elapsed().as_secs_f64(),
            bytes: 0,
        }
    }
}

/// One stage of a pipeline training run.
struct PipelineInstance {
    curve: LossCurve,
    schedule: PipeSchedule,
    /// Activation re-materialisation (`recompute = "on"`).
    recompute: bool,
    stage_index: usize,
    comm: Comm,
    /// Send buffers, one per micro-batch, chunk and direction, reused every step.
    sends: Vec<Vec<f64>>,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    partition: Partition,
    stage: Option<Stage>,
    wall_s: f64,
    timing: PipelineTiming,
    activation_bytes: u64,
    loss: f64,
    accuracy: f64,
}

impl PipelineInstance {
    fn new_stage(&self) -> Stage {
        Stage::new(&self.initial, self.partition.clone(), self.stage_index)
            .with_schedule(self.schedule)
            .with_recompute(self.recompute)
    }

    /// `local` (this stage's chunks, concatenated) gathered from every stage into the model's
    /// whole vector: one `MPI_Allgatherv` per chunk index `c`, whose chunks `c·S .. c·S + S − 1`
    /// (one per rank, in rank order) tile a contiguous range of the vector.
    fn gather(&self, local: &[f64]) -> Vec<f64> {
        let layout = &self.initial.layout;
        let (stages, v) = (self.partition.stages(), self.partition.virtual_stages());
        let mut whole = vec![0.0; layout.len()];
        let mut at = 0;
        for c in 0..v {
            let ranges: Vec<_> = (0..stages)
                .map(|s| self.partition.params(layout, c * stages + s))
                .collect();
            let counts: Vec<Count> = ranges.iter().map(|r| r.len() as Count).collect();
            let displs: Vec<Count> = ranges.iter().map(|r| r.start as Count).collect();
            let mine = ranges[self.stage_index].len();
            let mut parts = PartitionMut::new(&mut whole[..], counts, displs);
            self.comm
                .all_gather_varcount_into(&local[at..at + mine], &mut parts);
            at += mine;
        }
        whole
    }
}

impl Instance for PipelineInstance {
    fn reset(&mut self) {
        // Keep the stage's buffers (activation slots sized by the warm-up), fresh weights.
        match self.stage.as_mut() {
            Some(stage) => stage.restart(&self.initial),
            None => self.stage = Some(self.new_stage()),
        }
    }
    fn run(&mut self) {
        let mut stage = match self.stage.take() {
            Some(s) => s,
            None => self.new_stage(),
        };
        let rank = self.stage_index as i32;
        let size = self.partition.stages() as i32;
        let (grain, micro, batch) = (
            self.setup.schedule.grain,
            self.setup.schedule.micro,
            self.setup.schedule.batch,
        );
        let start = Instant::now();
        self.curve.restart();
        for step in 0..self.setup.steps {
            let rows = scalelab_ml::mlp::global_batch(&self.data.train, batch, step);
            let (comm, free, stage, data, sgd) = (
                &self.comm,
                &mut self.sends[..],
                &mut stage,
                &self.data,
                self.setup.sgd,
            );
            ::mpi::request::scope(move |scope| {
                let mut link = MpiLink {
                    comm,
                    rank,
                    size,
                    scope,
                    free,
                    pending: Vec::new(),
                };
                stage.step(&data.x, &data.labels, &rows, grain, micro, sgd, &mut link);
            });
            self.curve.step_done(start);
        }
        self.wall_s = start.elapsed().as_secs_f64();
        self.timing = stage.take_timing();
        self.activation_bytes = stage.activation_bytes();
        self.stage = Some(stage);
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.train";
        // Every rank takes part in the gathers, whatever its own state, so none is left waiting.
        let (local_params, local_velocity) = match &self.stage {
            Some(s) => (s.params.clone(), s.velocity.clone()),
            None => {
                let len = self
                    .partition
                    .stage_params(&self.initial.layout, self.stage_index);
                (vec![f64::NAN; len], vec![f64::NAN; len])
            }
        };
        let params = self.gather(&local_params);
        let velocity = self.gather(&local_velocity);
        let Some(stage) = self.stage.as_mut() else {
            return Err(format!("{name}: no training to check: run did not finish"));
        };
        let differs = |got: &[f64], want: &[f64]| {
            got.iter()
                .zip(want)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count()
        };
        let (dp, dv) = (
            differs(&params, &self.reference.params),
            differs(&velocity, &self.reference.velocity),
        );
        if dp + dv > 0 {
            let layout = &self.initial.layout;
            let (stages, v) = (self.partition.stages(), self.partition.virtual_stages());
            let bad: Vec<String> = (0..self.partition.chunks())
                .filter(|&c| {
                    let r = self.partition.params(layout, c);
                    differs(&params[r.clone()], &self.reference.params[r.clone()])
                        + differs(&velocity[r.clone()], &self.reference.velocity[r])
                        > 0
                })
                .map(|c| {
                    let l = self.partition.layers(c);
                    if v == 1 {
                        format!("stage {c} (layers {}..{})", l.start, l.end)
                    } else {
                        format!(
                            "stage {}'s chunk {} (layers {}..{})",
                            c % stages,
                            c / stages,
                            l.start,
                            l.end
                        )
                    }
                })
                .collect();
            let chunks = if v == 1 {
                String::new()
            } else {
                format!(" × {v} chunks")
            };
            return Err(format!(
                "{name}: pipeline of {stages} stages{chunks}, {} micro-batches: after {} steps \
                 {dp} of {} weights and {dv} momentum values differ from the serial reference's \
                 bits, in {}",
                self.setup.schedule.micro,
                self.setup.steps,
                params.len(),
                bad.join(", ")
            ));
        }
        let mut whole = Trainer::new(Mlp {
            layout: self.initial.layout.clone(),
            params,
            velocity,
        });
        (self.loss, self.accuracy) =
            whole.evaluate(&self.data.x, &self.data.labels, &self.data.test);
        // Poison: the next repetition must produce its own weights.
        stage.params.fill(f64::NAN);
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let t = &self.timing;
        let steps = t.steps.max(1) as f64;
        let samples = (self.setup.schedule.batch * self.setup.steps) as f64;
        let (stages, v) = (self.partition.stages(), self.partition.virtual_stages());
        let stage_params = self
            .partition
            .stage_params(&self.initial.layout, self.stage_index);
        vec![
            (
                "samples_per_s",
                samples / self.wall_s.max(f64::MIN_POSITIVE),
            ),
            ("compute_s", t.compute_s),
            ("comm_s", t.comm_s),
            ("wait_s", t.wait_s),
            ("step_s", self.wall_s / steps),
            ("bubble", t.bubble()),
            (
                "bubble_predicted",
                pipeline::bubble_prediction(stages, v, self.setup.schedule.micro),
            ),
            (
                "bubble_simulated",
                pipeline::simulated_bubble(
                    self.schedule,
                    &self.partition,
                    &self.initial.layout,
                    self.setup.schedule.micro,
                ),
            ),
            ("stages", stages as f64),
            ("virtual", v as f64),
            ("bytes_per_step", t.bytes_sent as f64 / steps),
            ("param_bytes", 8.0 * self.reference.params.len() as f64),
            ("stage_param_bytes", 8.0 * stage_params as f64),
            ("activation_bytes", self.activation_bytes as f64),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
            ("steps", t.steps as f64),
        ]
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        let layout = &self.initial.layout;
        // One entry per stage: its chunks' layers (joined by " + " when interleaved) and FLOPs.
        let stages: Vec<String> = (0..self.partition.stages())
            .map(|s| {
                let layers: Vec<String> = self
                    .partition
                    .chunks_of(s)
                    .map(|c| {
                        let l = self.partition.layers(c);
                        format!("{}..{}", l.start, l.end)
                    })
                    .collect();
                let flops: u64 = self
                    .partition
                    .chunks_of(s)
                    .map(|c| self.partition.flops(layout, c))
                    .sum();
                format!("layers {} ({flops} FLOP/sample)", layers.join(" + "))
            })
            .collect();
        let mut details = vec![("stages", stages.join(" | "))];
        details.extend(self.curve.detail());
        details
    }
}

#[cfg(test)]
mod tests {
    use crate::workload::mpi::{Train, TRAIN_PARAMS, TRAIN_PIPE_SCHEDULES};
    use crate::workload::{test_params, Target, Workload};
    use scalelab_ml::mlp::pipeline::PipeSchedule;

    fn check(ranks: u32, overrides: &[(&str, &str)]) -> Result<(), String> {
        let mut target = Target::test(1);
        target.resources.ranks = ranks;
        let mut all = vec![("strategy", "pipeline")];
        all.extend_from_slice(overrides);
        Train.check(&test_params(TRAIN_PARAMS, &all), &target)
    }

    #[test]
    fn the_schedule_axis_lists_the_schedules_the_stages_know() {
        assert_eq!(TRAIN_PIPE_SCHEDULES, PipeSchedule::NAMES);
        for name in TRAIN_PIPE_SCHEDULES {
            assert!(PipeSchedule::parse(name).is_some(), "{name}");
        }
    }

    #[test]
    fn pipeline_points_are_refused_at_check_time_with_the_fix() {
        assert_eq!(
            check(4, &[("hidden", "16,16")]).unwrap_err(),
            "mpi.train: 4 pipeline stages (one per rank) but the model 32-16-16-4 has 3 layers: \
             every stage needs at least one layer; use 1 to 3 ranks, or more hidden layers \
             (`hidden`)"
        );
        // (micro = 0 never gets here: the manifest refuses a count below 1 for every workload.)
        assert_eq!(
            check(2, &[("micro", "3")]).unwrap_err(),
            "mpi.train: micro = 3: the fixed reduction tree halves the global batch, so the \
             pipeline's micro-batch count must be a power of two; use micro = 2 or 4"
        );
        assert_eq!(
            check(2, &[("batch", "200")]).unwrap_err(),
            "mpi.train: the global batch of 200 samples is not divisible by micro-batches × \
             grain = 4 × 8 = 32: every pipeline micro-batch must hold whole grains; use a batch \
             that is a multiple of 32 (e.g. 224)"
        );
        // The stages share the batch: 3 ranks (not a power of two) and a batch that 3 does not
        // divide are fine for the pipeline, which the data-parallel strategies refuse.
        assert!(check(3, &[("batch", "256")]).is_ok());
        let mut target = Target::test(1);
        target.resources.ranks = 3;
        assert!(Train
            .check(&test_params(TRAIN_PARAMS, &[("strategy", "ddp")]), &target)
            .unwrap_err()
            .contains("must be a power of two"));
        assert!(check(1, &[]).is_ok());
    }

    #[test]
    fn interleaved_points_are_refused_at_check_time_with_the_fix() {
        // 32-16-16-16-4 has 4 layers: 4 stages × 2 chunks do not fit.
        assert_eq!(
            check(4, &[("hidden", "16,16,16"), ("virtual", "2")]).unwrap_err(),
            "mpi.train: 4 pipeline stages (one per rank) × virtual = 2 = 8 model chunks but the \
             model 32-16-16-16-4 has 4 layers: every chunk needs at least one layer; use \
             virtual = 1 or less, fewer ranks, or more hidden layers (`hidden`)"
        );
        let deep = ("hidden", "16,16,16,16,16,16,16");
        assert_eq!(
            check(4, &[deep, ("virtual", "2"), ("micro", "2")]).unwrap_err(),
            "mpi.train: virtual = 2 with 4 stages and micro = 2: the interleaved schedule \
             (Megatron-LM's) runs the micro-batches through each chunk in groups of one per \
             stage, so micro must be a multiple of the stage (rank) count; use micro = 4 (or \
             more)"
        );
        assert_eq!(
            check(3, &[deep, ("virtual", "2"), ("batch", "192")]).unwrap_err(),
            "mpi.train: virtual = 2 with 3 stages and micro = 4: the interleaved schedule \
             (Megatron-LM's) runs the micro-batches through each chunk in groups of one per \
             stage, so micro must be a multiple of the stage (rank) count; micro is a power of \
             two, so use a power-of-two rank count (e.g. 2 or 4), or virtual = 1"
        );
        assert!(check(4, &[deep, ("virtual", "2")]).is_ok());
        assert!(check(2, &[deep, ("virtual", "4"), ("schedule", "1f1b")]).is_ok());
        // One rank holding every chunk is allowed (the ring closes on itself).
        assert!(check(1, &[deep, ("virtual", "8")]).is_ok());
    }

    #[test]
    fn virtual_stages_and_recompute_are_shown_only_for_the_pipeline() {
        for key in ["virtual", "recompute"] {
            let applies = |strategy: &str| {
                crate::workload::param_applies(
                    "mpi.train",
                    &test_params(TRAIN_PARAMS, &[("strategy", strategy)]),
                    key,
                )
            };
            assert!(applies("pipeline"), "{key}");
            for other in ["ddp", "accumulate", "sharded", "fedavg"] {
                assert!(!applies(other), "{key} with {other}");
            }
        }
    }
}

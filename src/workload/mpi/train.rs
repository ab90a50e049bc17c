//! `mpi.train`: a multilayer perceptron trained data-parallel over the point's MPI ranks
//! (feature `mpi`), and the MPI implementation of `scalelab_ml`'s [`GradientReducer`].
//!
//! Every rank builds the same dataset (synthetic or built-in), standardises its features with the
//! same column statistics, shuffles the rows with the point's seed and holds out one fifth for
//! scoring. A repetition trains `steps` optimizer steps from the seeded initial weights: each
//! global batch of `batch` rows is split in contiguous shards, one per rank (`ddp`), each shard
//! in `micro` micro-batches for `accumulate`; the ranks' gradient sums are joined by
//! [`TreeAllreduce`], recursive doubling whose additions are exactly those of the fixed tree
//! (`scalelab_ml::mlp`), so the weights are bitwise the serial reference's.
//!
//! Why not `MPI_Allreduce`: the library picks its own algorithm by message size and rank count
//! (recursive doubling, Rabenseifner, ring), and a ring adds the ranks' partial sums in a
//! different order for every chunk; the result may differ in the last bits from the serial sum.
//! The hand-written recursive doubling sends the same bytes as `MPI_Allreduce`'s small-message
//! algorithm (`log₂ R` exchanges of the whole gradient) and fixes the order. The `ddp` variants
//! (`allreduce = "ring" | "mpi"`, `overlap = "on"` with `bucket`) are in `train/ddp.rs`: a ring
//! is checked bitwise against a reference that adds in the ring's order, `MPI_Allreduce` within
//! a tolerance (`bitwise` and `weight_distance` say which held).
//!
//! Verification: `prepare_mpi` trains the serial reference (one process, one micro-batch, the
//! same global batches; untimed; for a ring, every rank's share joined in the ring's order) on
//! every rank; after every repetition each rank's weights and
//! momentum must equal it bit for bit, then they are poisoned so the next repetition is checked on
//! its own result.
//!
//! Metrics (maximum over ranks, as every MPI point): `samples_per_s` (global samples per second
//! of the repetition), `compute_s` (seconds in computation), `wait_s` and `comm_s` (the seconds
//! inside the reduction split into waiting for the slowest rank and moving data, [`waiting`]; with
//! overlap the exposed part), `comm_hidden_s` and `comm_total_s` (computation done while buckets
//! were in flight; `comm_s` + hidden), `step_s`,
//! `bytes_per_step` (gradient bytes this rank sends per step), `bitwise` and `weight_distance`
//! (the check's outcome), `param_bytes`, `mem_per_rank_bytes` and `mem_peak_bytes` (parameter,
//! gradient and momentum bytes a rank keeps between steps and at the peak of a step, analytic:
//! `mlp::sharded::model_state_bytes`), `loss` and `accuracy` on the held-out fifth after the last
//! step, `steps`; and of mixed precision (`precision`, `loss_scale`: the GEMM operands rounded to
//! an emulated format, `scalelab_ml::mlp::precision`, the serial reference trained at the same
//! setting) `skipped_steps`, the final `loss_scale`, `fp64_loss_gap` (the loss curve against an
//! fp64 reference trained in `prepare` too, per-epoch means, [`loss_gap`]) and `zero_grad_share`.
//!
//! The other strategies have their own instances: `pipeline` (GPipe / 1F1B stages) in
//! `train/pipeline.rs`, `sharded` (ZeRO-3 / FSDP) in `train/sharded.rs`, `fedavg` (one federated
//! client per rank) in `train/fedavg.rs`.

use std::cell::RefCell;
use std::time::Instant;

use ::mpi::collective::CommunicatorCollectives;
use ::mpi::point_to_point::send_receive_into;
use ::mpi::topology::Communicator;
use anyhow::anyhow;
use scalelab_ml::mlp::sharded::{model_state_bytes, peak_state_bytes};
use scalelab_ml::mlp::{
    self, GradientReducer, MixedPrecision, Mlp, Schedule, Sgd, StepLog, Trainer,
};

use super::TRAIN;
use crate::workload::training::{
    self, count, differing_weights, hidden, load, serial_reference, shape, text, widths, Data,
    LossCurve,
};
use crate::workload::{
    int_param, not_under_mpi, Comm, Description, Instance, Params, Target, Work, Workload,
};

mod ddp;
mod fedavg;
mod gpu;
mod pipeline;
mod sharded;

/// `mpi.train`; see the module documentation.
pub struct Train;

/// A point's training setup, read and checked from its parameters.
struct Setup {
    strategy: String,
    widths_hidden: Vec<usize>,
    schedule: Schedule,
    steps: usize,
    sgd: Sgd,
    seed: u64,
    /// The `ddp` variant: allreduce algorithm, overlap, bucket size (train/ddp.rs).
    variant: ddp::Variant,
    /// The GEMM operands' number format and the loss scale (`precision`, `loss_scale`).
    mp: MixedPrecision,
    /// `sharded`'s FSDP units (train/sharded.rs).
    units: mlp::sharded::Units,
    /// How `sharded` accumulates its micro-batches (`no_sync`, train/sharded.rs).
    accumulation: mlp::sharded::Accumulation,
}

/// The precision setting of a point; a reduced precision is refused for the strategies that train
/// through their own code (with the fix).
fn mixed_precision(name: &str, params: &Params, strategy: &str) -> Result<MixedPrecision, String> {
    let mp = training::precision(name, params)?;
    if mp.precision.is_reduced() && !matches!(strategy, "ddp" | "accumulate") {
        return Err(format!(
            "{name}: precision = \"{}\" with strategy = \"{strategy}\": reduced precision is \
             emulated for ddp and accumulate, whose steps go through the trainer that rounds and \
             scales (sharded holds only a chunk of the gradient to test for overflow; pipeline \
             and fedavg step through their own code); use strategy = \"ddp\" or \
             \"accumulate\", or precision = \"fp64\"",
            mp.precision.name()
        ));
    }
    Ok(mp)
}

fn setup(name: &str, params: &Params, ranks: usize) -> Result<Setup, String> {
    let strategy = text(params, "strategy")?.to_string();
    let micro = match strategy.as_str() {
        "ddp" | "fedavg" => 1,
        _ => count(params, "micro")?,
    };
    // FedAvg's batch is each client's local minibatch, trained on one process.
    let ranks = if strategy == "fedavg" { 1 } else { ranks };
    let schedule = Schedule {
        batch: count(params, "batch")?,
        grain: count(params, "grain")?,
        ranks,
        micro,
    };
    let schedule = pipeline::data_split(name, &strategy, schedule)?;
    let variant = ddp::Variant::from_params(name, params)?;
    // The rank rule first: a batch that 3 ranks cannot split is moot with the tree.
    if !variant.any_rank_count(&strategy) {
        schedule.check_tree_ranks(name).map_err(|e| {
            if matches!(strategy.as_str(), "ddp" | "accumulate") {
                format!("{e}, or allreduce = \"ring\" (any rank count)")
            } else {
                e
            }
        })?;
    }
    schedule.check_shares(name)?;
    let steps = count(params, "steps")?;
    let sgd = training::sgd(name, params)?;
    let mp = mixed_precision(name, params, &strategy)?;
    let units = sharded::units(name, params, &strategy)?;
    let accumulation = sharded::accumulation(name, params, &strategy)?;
    Ok(Setup {
        strategy,
        mp,
        units,
        accumulation,
        widths_hidden: hidden(name, params)?,
        schedule,
        steps,
        sgd,
        seed: int_param(params, "seed")?,
        variant,
    })
}

impl Workload for Train {
    fn description(&self) -> &'static Description {
        &TRAIN
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let name = self.name();
        let ranks = target.resources.ranks.max(1) as usize;
        let s = setup(name, params, ranks)?;
        gpu::check(name, &s, target)?;
        let fed = match s.strategy.as_str() {
            "fedavg" => Some(fedavg::fed(name, params, &s, ranks)?),
            _ => None,
        };
        let (rows, features, classes) = shape(name, params)?;
        let widths = widths(features, &s.widths_hidden, classes);
        let layout = mlp::Layout::new(&widths).map_err(|e| format!("{name}: {e}"))?;
        if s.strategy == pipeline::PIPELINE {
            let ranks = target.resources.ranks.max(1) as usize;
            return pipeline::check(name, params, &s, &layout, ranks, rows * features, target);
        }
        let mut per_rank = training::process_bytes(rows, &widths, &s.schedule, layout.len());
        if let Some(fed) = fed {
            // The serial reference's clients and the global weights it keeps (train/fedavg.rs).
            per_rank += 8.0 * fed.state_words() * layout.len() as f64;
        }
        target.fits_memory(
            name,
            per_rank,
            "use a smaller dataset (`size`), batch or hidden widths",
        )
    }
    fn data_file<'p>(&self, params: &'p Params) -> Option<(&'static str, &'p str)> {
        crate::workload::ml::csv_dataset(params)
    }
    fn work(&self, params: &Params) -> Work {
        // The FLOPs of the training steps; samples/s is the metric `samples_per_s`.
        training::training_work(self.name(), params, |p| {
            setup(self.name(), p, 1).map(|s| (s.widths_hidden, s.schedule.batch * s.steps))
        })
    }
    fn work_for(&self, params: &Params, resources: &crate::resources::Resources) -> Work {
        let work = self.work(params);
        if text(params, "strategy") != Ok("fedavg") {
            return work;
        }
        // FedAvg: the reporting clients' local epochs over the training rows (four fifths), per
        // round; `work` counted `batch × steps` samples. The expected count: the last minibatch
        // of each epoch wraps around and the drops fall on shards of different sizes, so
        // `samples_per_s` (the samples actually trained) is the exact figure.
        let clients = resources.ranks.max(1) as usize;
        let Ok(s) = setup(self.name(), params, clients) else {
            return Work::default();
        };
        let Ok(fed) = fedavg::fed(self.name(), params, &s, clients) else {
            return Work::default();
        };
        let rows = shape(self.name(), params).map_or(0, |(rows, _, _)| rows);
        let per_sample = work.flops / (s.schedule.batch * s.steps).max(1) as f64;
        let reporting = fed.reporting_share();
        let samples =
            (rows - rows / 5) as f64 * fed.rounds as f64 * fed.cfg.epochs as f64 * reporting;
        Work {
            flops: per_sample * samples,
            bytes: 0.0,
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        training::EXPECTED_EFFICIENCY
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let name = self.name();
        let ranks = comm.size() as usize;
        let s = setup(name, params, ranks).map_err(|e| anyhow!(e))?;
        let data = load(name, params, s.seed).map_err(|e| anyhow!("{name}: {e}"))?;
        let widths = widths(data.x.cols(), &s.widths_hidden, data.classes);
        let initial = Mlp::new(&widths, s.seed).map_err(|e| anyhow!("{name}: {e}"))?;
        if s.strategy == "fedavg" {
            let fed = fedavg::fed(name, params, &s, ranks).map_err(|e| anyhow!(e))?;
            let instance = fedavg::FedInstance::new(comm, &s, fed, data, initial);
            return Ok(Box::new(instance));
        }
        // With `gpus = 1`, this rank's GPU first: no device fails the point before the
        // reference is trained (train/gpu.rs).
        let device = gpu::open(&s, &initial, target)?;
        // The serial reference (one process on one thread, one micro-batch, the same global
        // batches) with the loss each step descends on: the recorded `loss_curve`, the same for
        // every strategy and rank count.
        let batches = (s.schedule.batch, s.schedule.grain);
        let mut reference = serial_reference(&data, &initial, batches, s.steps, s.sgd, s.mp)?;
        if s.variant.allreduce == mlp::ddp::Allreduce::Ring {
            // A ring adds the ranks' sums in its own order; the reference follows it.
            reference.mlp = ddp::ring_reference(
                initial.clone(),
                s.mp,
                s.variant,
                &s.schedule,
                s.sgd,
                s.steps,
                &data,
            );
        }
        let fp64_loss_gap = reference.fp64_loss_gap;
        let curve = LossCurve::new(reference.losses);
        if let Some(engine) = device {
            return gpu::instance(engine, comm, s, data, initial, reference.mlp, curve);
        }
        if s.strategy == pipeline::PIPELINE {
            return pipeline::prepare(comm, params, s, data, initial, reference.mlp, curve);
        }
        if s.strategy == "sharded" {
            let instance =
                sharded::ShardedInstance::new(comm, s, data, initial, reference.mlp, curve);
            return Ok(Box::new(instance));
        }
        Ok(Box::new(TrainInstance {
            curve,
            rank: comm.rank() as usize,
            comm: comm.duplicate(),
            setup: s,
            data,
            initial,
            reference: reference.mlp,
            trainer: None,
            wall_s: 0.0,
            timing: mlp::StepTiming::default(),
            steps: StepLog::default(),
            wait_s: 0.0,
            comm_s: 0.0,
            hidden: mlp::ddp::Overlap::default(),
            distance: 0.0,
            loss: f64::NAN,
            accuracy: f64::NAN,
            fp64_loss_gap,
            scaler: None,
        }))
    }
}

/// [`GradientReducer`] over an MPI communicator: recursive doubling with `MPI_Sendrecv`. At step
/// `s` rank `r` exchanges its partial sum with rank `r ^ 2^s` and both add the two: the partial
/// sums of two adjacent, equal rank ranges, which is the fixed tree's addition at that level
/// (IEEE addition is commutative, so both partners get the same bits). Needs a power-of-two rank
/// count (`Schedule::check`).
pub(crate) struct TreeAllreduce<'c, C: Communicator> {
    comm: &'c C,
    recv: RefCell<Vec<f64>>,
}

impl<C: Communicator> GradientReducer for TreeAllreduce<'_, C> {
    fn combine(&self, grad: &mut [f64]) -> u64 {
        let (rank, size) = (self.comm.rank(), self.comm.size());
        let mut recv = self.recv.borrow_mut();
        recv.resize(grad.len(), 0.0);
        let mut bytes = 0u64;
        let mut d = 1;
        while d < size {
            let peer = self.comm.process_at_rank(rank ^ d);
            send_receive_into(&grad[..], &peer, &mut recv[..], &peer);
            for (a, b) in grad.iter_mut().zip(recv.iter()) {
                *a += *b;
            }
            bytes += 8 * grad.len() as u64;
            d <<= 1;
        }
        bytes
    }
}

/// This rank's seconds inside the steps' reductions (`log.comm`) split into `(waiting for the
/// slowest rank, moving data)` ([`mlp::split_waiting`]), after one `MPI_Allgather` of every
/// rank's per-step compute seconds. Every rank of the point calls it after its steps: outside
/// `wall_s` (and so `samples_per_s`), inside the repetition's time, where it adds one collective
/// of 8 bytes a step.
pub(crate) fn waiting(comm: &Comm, log: &StepLog) -> (f64, f64) {
    let ranks = comm.size() as usize;
    let mut all = vec![0.0; ranks * log.compute.len()];
    comm.all_gather_into(&log.compute[..], &mut all[..]);
    mlp::split_waiting(&all, ranks, comm.rank() as usize, &log.comm)
}

/// One rank of a data-parallel training run.
struct TrainInstance {
    curve: LossCurve,
    rank: usize,
    comm: Comm,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    trainer: Option<Trainer>,
    wall_s: f64,
    timing: mlp::StepTiming,
    /// Each step's compute and reduction seconds of the last repetition.
    steps: StepLog,
    /// `timing.comm_s` split into waiting for the slowest rank and moving data ([`waiting`]).
    wait_s: f64,
    comm_s: f64,
    /// Computation done while gradient buckets were in flight (overlap).
    hidden: mlp::ddp::Overlap,
    /// `allreduce = "mpi"`: how far the weights are from the reference (`ddp::distance`).
    distance: f64,
    loss: f64,
    accuracy: f64,
    /// The largest relative difference of the loss curve from the fp64 reference's (0 at fp64).
    fp64_loss_gap: f64,
    /// The loss scaler after the last repetition (final scale, skipped steps).
    scaler: Option<mlp::LossScaler>,
}

impl Instance for TrainInstance {
    fn reset(&mut self) {
        self.trainer = Some(Trainer::new(self.initial.clone()).with_precision(self.setup.mp));
    }
    fn run(&mut self) {
        let trainer = self.trainer.get_or_insert_with(|| {
            Trainer::new(self.initial.clone()).with_precision(self.setup.mp)
        });
        let reducer = TreeAllreduce {
            comm: &self.comm,
            recv: RefCell::new(Vec::new()),
        };
        let start = Instant::now();
        self.curve.restart();
        self.steps.restart();
        let variant = self.setup.variant;
        if !variant.is_plain() {
            let (curve, log) = (&mut self.curve, &mut self.steps);
            self.hidden = ddp::train(
                trainer,
                &self.comm,
                variant,
                &self.setup.schedule,
                self.setup.sgd,
                self.setup.steps,
                &self.data,
                self.rank,
                &mut |t| {
                    curve.step_done(start);
                    log.record(t.timing());
                },
            );
        }
        let plain_steps = if variant.is_plain() {
            self.setup.steps
        } else {
            0
        };
        for step in 0..plain_steps {
            let batch = mlp::global_batch(&self.data.train, self.setup.schedule.batch, step);
            trainer.step(
                &self.data.x,
                &self.data.labels,
                &batch,
                &self.setup.schedule,
                self.rank,
                self.setup.sgd,
                &reducer,
            );
            self.curve.step_done(start);
            self.steps.record(trainer.timing());
        }
        self.wall_s = start.elapsed().as_secs_f64();
        self.timing = trainer.take_timing();
        self.scaler = Some(*trainer.scaler());
        (self.wait_s, self.comm_s) = waiting(&self.comm, &self.steps);
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.train";
        let Some(mut trainer) = self.trainer.take() else {
            return Err(format!("{name}: no training to check: run did not finish"));
        };
        let got = &trainer.mlp;
        self.distance = ddp::distance(got, &self.reference);
        let tolerated = !self.setup.variant.allreduce.bitwise();
        if tolerated && self.distance > mlp::ddp::MPI_TOLERANCE {
            return Err(format!(
                "{name}: rank {} of {}, allreduce = \"mpi\": after {} steps the weights are \
                 {:e} (relative) from the serial reference's, beyond the tolerance {:e} \
                 (docs/training.md)",
                self.rank,
                self.setup.schedule.ranks,
                self.setup.steps,
                self.distance,
                mlp::ddp::MPI_TOLERANCE
            ));
        }
        if let Some(differ) = differing_weights(got, &self.reference).filter(|_| !tolerated) {
            return Err(format!(
                "{name}: rank {} of {}, strategy {}: after {} steps {differ} of {} weights (or \
                 the momentum) differ from the serial reference's bits",
                self.rank,
                self.setup.schedule.ranks,
                self.setup.strategy,
                self.setup.steps,
                got.params.len()
            ));
        }
        (self.loss, self.accuracy) = training::score_and_poison(&mut trainer, &self.data);
        self.trainer = Some(trainer);
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let steps = self.timing.steps.max(1) as f64;
        let samples = (self.setup.schedule.batch * self.setup.steps) as f64;
        vec![
            (
                "samples_per_s",
                samples / self.wall_s.max(f64::MIN_POSITIVE),
            ),
            ("compute_s", self.timing.compute_s),
            ("comm_s", self.comm_s),
            ("wait_s", self.wait_s),
            ("comm_hidden_s", self.hidden.hidden_s),
            ("comm_total_s", self.comm_s + self.hidden.hidden_s),
            ("bitwise", f64::from(u8::from(self.distance == 0.0))),
            ("weight_distance", self.distance),
            ("step_s", self.wall_s / steps),
            ("bytes_per_step", self.timing.bytes_sent as f64 / steps),
            ("param_bytes", 8.0 * self.reference.params.len() as f64),
            (
                "mem_per_rank_bytes",
                model_state_bytes(self.reference.params.len(), 1, false) as f64,
            ),
            (
                "mem_peak_bytes",
                peak_state_bytes(self.reference.params.len(), 1, false) as f64,
            ),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
        ]
        .into_iter()
        .chain(training::step_metrics(
            &self.timing,
            self.scaler,
            self.fp64_loss_gap,
        ))
        .collect()
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        self.curve.detail().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::test_params;

    #[test]
    fn a_batch_that_does_not_split_is_refused_at_check_time() {
        let mut target = Target::test(1);
        target.resources.ranks = 4;
        let p = test_params(
            super::super::TRAIN_PARAMS,
            &[("strategy", "accumulate"), ("batch", "200")],
        );
        assert_eq!(
            Train.check(&p, &target).unwrap_err(),
            "mpi.train: the global batch of 200 samples is not divisible by ranks × \
             micro-batches × grain = 4 × 4 × 8 = 128: every micro-batch must hold whole grains; \
             use a batch that is a multiple of 128 (e.g. 256)"
        );
        let p = test_params(super::super::TRAIN_PARAMS, &[("batch", "200")]);
        assert!(Train
            .check(&p, &target)
            .unwrap_err()
            .contains("4 × 1 × 8 = 32"));
        let p = test_params(super::super::TRAIN_PARAMS, &[]);
        assert!(Train.check(&p, &target).is_ok());
    }

    #[test]
    fn ddp_variants_are_read_and_a_bucket_under_one_gradient_is_refused() {
        let target = Target::test(1);
        let p = test_params(super::super::TRAIN_PARAMS, &[]);
        let v = ddp::Variant::from_params("mpi.train", &p).unwrap();
        assert!(v.is_plain());
        assert_eq!(v.bucket, 64 * 1024 / 8);
        let p = test_params(
            super::super::TRAIN_PARAMS,
            &[("allreduce", "ring"), ("overlap", "on"), ("bucket", "1000")],
        );
        let v = ddp::Variant::from_params("mpi.train", &p).unwrap();
        assert_eq!(
            (v.allreduce, v.overlap, v.bucket),
            (mlp::ddp::Allreduce::Ring, true, 1000)
        );
        assert_eq!(v.buckets(2500), vec![1500..2500, 500..1500, 0..500]);
        assert!(Train.check(&p, &target).is_ok());
        let p = test_params(super::super::TRAIN_PARAMS, &[("bucket", "7B")]);
        assert_eq!(
            Train.check(&p, &target).unwrap_err(),
            "mpi.train: bucket = 7B: a bucket must hold at least one gradient (8 bytes); give \
             its capacity as a count of gradients or in bytes, e.g. bucket = \"64KiB\" (what \
             PyTorch calls bucket_cap_mb)"
        );
    }

    #[test]
    fn bad_hidden_widths_and_regression_data_are_refused() {
        let target = Target::test(1);
        let p = test_params(super::super::TRAIN_PARAMS, &[("hidden", "64,x")]);
        assert_eq!(
            Train.check(&p, &target).unwrap_err(),
            "mpi.train: hidden = \"64,x\": `x` is not a positive width; write the hidden layer \
             widths as comma-separated counts, e.g. \"64,64\" (\"\" for none)"
        );
        let p = test_params(super::super::TRAIN_PARAMS, &[("dataset", "diabetes")]);
        assert!(Train
            .check(&p, &target)
            .unwrap_err()
            .contains("regression task"));
    }
}

//! `mpi.train` with `gpus = 1`: one GPU per rank runs the forward and backward passes (fp64,
//! cuBLAS DGEMM and NVRTC kernels: `scalelab_kernels::cuda::mlp`), the host keeps everything
//! that fixes the bits (`scalelab_ml::mlp::engine`): the grains' tree, the micro-batch merge, the
//! ranks' [`TreeAllreduce`] (host-staged: each rank's gradient is copied to the host and joined
//! by MPI exactly as on the CPU) and SGD with momentum, after which the new parameters are copied
//! back to the device.
//!
//! Strategies `ddp` and `accumulate` with `allreduce = "tree"` and `overlap = "off"`; the others,
//! and more than one GPU per rank, are refused at check time with the fix ([`check`]). A build
//! without the `cuda` feature refuses `gpus >= 1` the same way, and a machine without a driver, a
//! GPU, NVRTC or cuBLAS fails the point when it prepares, with a reason that names the fix.
//!
//! Verification, after every repetition on every rank: cuBLAS adds a dot product's terms in
//! another order than the CPU GEMM, and the GPU's `exp` is not libm's, so the weights are not the
//! CPU serial reference's bits. The check is a tolerance: the weights' and momentum's relative
//! distance from the CPU fp64 reference at most [`WEIGHT_TOLERANCE`], and each step's loss (the
//! GPU forward pass of the global batch before the update) within [`LOSS_TOLERANCE`] of the
//! reference's loss curve; a point outside either fails. Between rank counts the bits should not
//! move (a grain's GEMMs have one shape whatever the ranks, and cuBLAS is deterministic for a
//! fixed shape on one GPU model and library version): the detail `weights_fnv` (a hash of the
//! final weights' bits) is what `scripts/gpu-check.sh` compares across 1, 2 and 4 ranks.
//!
//! Metrics: those of the CPU `ddp` (`samples_per_s`, `compute_s` without the copies, `comm_s`,
//! `wait_s`, `step_s`, `bytes_per_step`, `weight_distance`, `loss`, `accuracy`, ...) plus `h2d_s` (the
//! parameters after each update, the samples and labels of each micro-batch) and `d2h_s` (the
//! grains' gradients and the samples' losses), and `loss_distance` (the loss curve's largest
//! relative distance from the reference's). This path has never run on a GPU yet.

use scalelab_ml::mlp::Mlp;

use super::{Data, LossCurve, Setup};
use crate::workload::{Comm, Instance, Target};

/// The strategies that run on GPUs.
pub(super) const GPU_STRATEGIES: &[&str] = &["ddp", "accumulate"];

/// Largest relative distance `|w − w_ref| / (1 + |w_ref|)` over the weights and momentum allowed
/// between a GPU run and the CPU fp64 reference. Each GPU operation differs from the CPU's by a
/// few units in the last place (about 1e-16 relative); SGD carries such differences along over
/// the short runs here, growing them far less than 1e8. A first bound, to be revisited with the
/// first GPU runs (docs/training.md, "On GPUs").
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(super) const WEIGHT_TOLERANCE: f64 = 1e-8;

/// Largest relative distance `|l − l_ref| / (1 + |l_ref|)` allowed between a step's loss on the
/// GPU and the reference's loss curve.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(super) const LOSS_TOLERANCE: f64 = 1e-8;

/// Refuse at check time what the GPU path cannot run, saying what to use instead. Nothing to say
/// for `gpus = 0`.
pub(super) fn check(name: &str, s: &Setup, target: &Target) -> Result<(), String> {
    let gpus = target.resources.gpus;
    if gpus == 0 {
        return Ok(());
    }
    let ranks = target.resources.ranks.max(1);
    if gpus > 1 {
        return Err(format!(
            "{name}: gpus = {gpus}: training runs one GPU per rank; use gpus = 1 with ranks = {} \
             (one rank per GPU)",
            ranks * gpus
        ));
    }
    if !cfg!(feature = "cuda") {
        return Err(format!(
            "{name}: gpus = 1 needs a build with CUDA: cargo build --release --features \
             mpi,cuda (or set gpus = 0 to train on the CPU)"
        ));
    }
    if !GPU_STRATEGIES.contains(&s.strategy.as_str()) {
        return Err(format!(
            "{name}: strategy = \"{}\" does not run on GPUs yet; with gpus = 1 use strategy = \
             \"ddp\" or \"accumulate\", or set gpus = 0 to run {} on the CPU",
            s.strategy, s.strategy
        ));
    }
    if s.mp.precision.is_reduced() {
        return Err(format!(
            "{name}: precision = \"{}\" with gpus = 1: GPU points train in fp64 only so far (the \
             device engine's fp32 and TF32 modes are not wired to `precision`); set precision = \
             \"fp64\", or gpus = 0 to emulate {} on the CPU",
            s.mp.precision.name(),
            s.mp.precision.name()
        ));
    }
    if !s.variant.is_plain() {
        return Err(format!(
            "{name}: gpus = 1 joins the ranks' gradients on the host after backward, along the \
             fixed tree; set allreduce = \"tree\" and overlap = \"off\" (or gpus = 0 for the \
             other ddp variants)"
        ));
    }
    Ok(())
}

/// A rank's opened GPU engine; uninhabited in a build without CUDA (where [`check`] refuses
/// every point that would need one).
#[cfg(feature = "cuda")]
pub(super) type Engine = device::GpuEngine;
#[cfg(not(feature = "cuda"))]
pub(super) enum Engine {}

/// This rank's GPU engine for a point with `gpus = 1`, opened before the reference is trained so
/// that a machine without a GPU fails at once with the fix; `None` for `gpus = 0`.
pub(super) fn open(s: &Setup, initial: &Mlp, target: &Target) -> anyhow::Result<Option<Engine>> {
    if target.resources.gpus == 0 {
        return Ok(None);
    }
    #[cfg(feature = "cuda")]
    {
        device::open(s, initial).map(Some)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (s, initial);
        Err(anyhow::anyhow!(
            "mpi.train: gpus = 1 needs a build with CUDA: cargo build --release --features \
             mpi,cuda"
        ))
    }
}

/// The instance of one rank training on its GPU.
pub(super) fn instance(
    engine: Engine,
    comm: &Comm,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    curve: LossCurve,
) -> anyhow::Result<Box<dyn Instance>> {
    #[cfg(feature = "cuda")]
    {
        device::instance(engine, comm, setup, data, initial, reference, curve)
    }
    #[cfg(not(feature = "cuda"))]
    {
        let _ = (comm, setup, data, initial, reference, curve);
        match engine {}
    }
}

/// FNV-1a over the bits of the weights and momentum: one number to compare runs by.
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(super) fn fingerprint(m: &Mlp) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in m.params.iter().chain(&m.velocity) {
        for b in v.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// Largest relative distance between two loss curves (infinite for a NaN or a length mismatch).
#[cfg_attr(not(feature = "cuda"), allow(dead_code))]
pub(super) fn curve_distance(got: &[f64], reference: &[f64]) -> f64 {
    if got.len() != reference.len() {
        return f64::INFINITY;
    }
    got.iter().zip(reference).fold(0.0, |m: f64, (a, b)| {
        let d = (a - b).abs() / (1.0 + b.abs());
        if d.is_nan() {
            f64::INFINITY
        } else {
            m.max(d)
        }
    })
}

#[cfg(feature = "cuda")]
mod device {
    use std::cell::RefCell;
    use std::time::Instant;

    use anyhow::anyhow;
    use scalelab_kernels::cuda::mlp::MlpDevice;
    use scalelab_kernels::cuda::runtime;
    use scalelab_ml::data::Matrix;
    use scalelab_ml::mlp::engine::{EngineTrainer, GradientEngine, Staging};
    use scalelab_ml::mlp::{self, Mlp, StepLog, StepTiming};

    use super::super::{ddp, waiting, Data, LossCurve, Setup, TreeAllreduce};
    use super::{curve_distance, fingerprint, LOSS_TOLERANCE, WEIGHT_TOLERANCE};
    use crate::workload::{Comm, Instance};

    /// [`MlpDevice`] as a [`GradientEngine`]: gathers a micro-batch's rows on the host, then the
    /// device computes their grains.
    pub(crate) struct GpuEngine {
        device: MlpDevice,
        grain: usize,
        x: Vec<f64>,
        labels: Vec<u32>,
    }

    impl GradientEngine for GpuEngine {
        fn load(&mut self, params: &[f64]) -> Result<(), String> {
            self.device.load(params)
        }

        fn grain_gradients(
            &mut self,
            x: &Matrix,
            labels: &[u32],
            rows: &[usize],
            grain: usize,
            leaves: &mut [f64],
            losses: &mut [f64],
        ) -> Result<(), String> {
            if grain != self.grain {
                return Err(format!(
                    "internal: grains of {grain} on an engine opened for {}",
                    self.grain
                ));
            }
            self.x.clear();
            self.labels.clear();
            for &r in rows {
                self.x.extend_from_slice(x.row(r));
                self.labels.push(labels[r]);
            }
            self.device
                .grain_gradients(&self.x, &self.labels, leaves, losses)
        }

        fn take_staging(&mut self) -> Staging {
            let t = self.device.take_times();
            Staging {
                h2d_s: t.h2d_s,
                d2h_s: t.d2h_s,
            }
        }
    }

    /// This rank's GPU: device 0 when the launcher shows each rank only its own (SLURM's
    /// `--gpus-per-task`), else the node-local rank's.
    pub(super) fn open(s: &Setup, initial: &Mlp) -> anyhow::Result<GpuEngine> {
        let visible = runtime::driver().map_err(|e| anyhow!(e))?;
        let ordinal = if visible == 1 {
            0
        } else {
            crate::workload::cuda::local_rank()
        };
        let rows = s.schedule.batch / s.schedule.ranks / s.schedule.micro;
        let device = MlpDevice::open(ordinal, initial.layout.widths(), rows, s.schedule.grain)
            .map_err(|e| anyhow!(e))?;
        Ok(GpuEngine {
            device,
            grain: s.schedule.grain,
            x: Vec::new(),
            labels: Vec::new(),
        })
    }

    pub(super) fn instance(
        engine: GpuEngine,
        comm: &Comm,
        setup: Setup,
        data: Data,
        initial: Mlp,
        reference: Mlp,
        curve: LossCurve,
    ) -> anyhow::Result<Box<dyn Instance>> {
        use ::mpi::topology::Communicator;
        let trainer = EngineTrainer::new(initial.clone(), engine).map_err(|e| anyhow!(e))?;
        Ok(Box::new(GpuTrainInstance {
            curve,
            rank: comm.rank() as usize,
            comm: comm.duplicate(),
            setup,
            data,
            initial,
            reference,
            trainer,
            losses: Vec::new(),
            failure: None,
            wall_s: 0.0,
            timing: StepTiming::default(),
            steps: StepLog::default(),
            wait_s: 0.0,
            comm_s: 0.0,
            staging: Staging::default(),
            distance: 0.0,
            loss_distance: 0.0,
            fnv: String::new(),
            loss: f64::NAN,
            accuracy: f64::NAN,
        }))
    }

    /// One rank of a training run on its GPU.
    struct GpuTrainInstance {
        curve: LossCurve,
        rank: usize,
        comm: Comm,
        setup: Setup,
        data: Data,
        initial: Mlp,
        reference: Mlp,
        trainer: EngineTrainer<GpuEngine>,
        /// The loss of each step's global batch, from the GPU's forward pass.
        losses: Vec<f64>,
        /// What stopped the last repetition (a device error, a non-finite gradient).
        failure: Option<String>,
        wall_s: f64,
        timing: StepTiming,
        /// Each step's compute and reduction seconds of the last repetition.
        steps: StepLog,
        /// `timing.comm_s` split into waiting for the slowest rank and moving data.
        wait_s: f64,
        comm_s: f64,
        staging: Staging,
        distance: f64,
        loss_distance: f64,
        fnv: String,
        loss: f64,
        accuracy: f64,
    }

    impl Instance for GpuTrainInstance {
        fn reset(&mut self) {
            self.failure = None;
            self.trainer.restart(self.initial.clone());
        }
        fn run(&mut self) {
            let reducer = TreeAllreduce {
                comm: &self.comm,
                recv: RefCell::new(Vec::new()),
            };
            let start = Instant::now();
            self.curve.restart();
            self.steps.restart();
            self.losses.clear();
            let s = &self.setup;
            {
                for step in 0..s.steps {
                    let batch = mlp::global_batch(&self.data.train, s.schedule.batch, step);
                    let done = self.trainer.step(
                        &self.data.x,
                        &self.data.labels,
                        &batch,
                        &s.schedule,
                        self.rank,
                        s.sgd,
                        &reducer,
                    );
                    match done {
                        Ok(loss) => self.losses.push(loss),
                        // Every rank fails at the same step: a device error poisons the
                        // gradient this rank contributes, so all ranks see it non-finite.
                        Err(e) => {
                            self.failure = Some(e);
                            break;
                        }
                    }
                    self.curve.step_done(start);
                    self.steps.record(self.trainer.timing());
                }
            }
            self.wall_s = start.elapsed().as_secs_f64();
            (self.timing, self.staging) = self.trainer.take_timing();
            // Every rank stops at the same step (a failure poisons the reduced gradient), so the
            // logs are of one length.
            (self.wait_s, self.comm_s) = waiting(&self.comm, &self.steps);
        }
        fn verify(&mut self) -> Result<(), String> {
            let name = "mpi.train";
            let (rank, ranks) = (self.rank, self.setup.schedule.ranks);
            if let Some(e) = self.failure.take() {
                return Err(format!("{name}: rank {rank} of {ranks}, gpus = 1: {e}"));
            }
            let got = self.trainer.mlp();
            self.distance = ddp::distance(got, &self.reference);
            self.fnv = fingerprint(got);
            if self.distance.is_nan() || self.distance > WEIGHT_TOLERANCE {
                return Err(format!(
                    "{name}: rank {rank} of {ranks}, gpus = 1: after {} steps the weights are \
                     {:e} (relative) from the CPU fp64 reference's, beyond the tolerance {:e} \
                     (docs/training.md, On GPUs)",
                    self.setup.steps, self.distance, WEIGHT_TOLERANCE
                ));
            }
            self.loss_distance = curve_distance(&self.losses, &self.curve.losses);
            if self.loss_distance.is_nan() || self.loss_distance > LOSS_TOLERANCE {
                return Err(format!(
                    "{name}: rank {rank} of {ranks}, gpus = 1: the loss curve is {:e} \
                     (relative) from the CPU fp64 reference's, beyond the tolerance {:e} \
                     (docs/training.md, On GPUs)",
                    self.loss_distance, LOSS_TOLERANCE
                ));
            }
            (self.loss, self.accuracy) =
                self.trainer
                    .evaluate(&self.data.x, &self.data.labels, &self.data.test);
            // Poison the host's copy: the next repetition starts from `initial` and must
            // produce its own weights.
            self.trainer.mlp_mut().params.fill(f64::NAN);
            Ok(())
        }
        fn metrics(&self) -> Vec<(&'static str, f64)> {
            let steps = self.timing.steps.max(1) as f64;
            let samples = (self.setup.schedule.batch * self.setup.steps) as f64;
            let p = self.reference.params.len();
            vec![
                (
                    "samples_per_s",
                    samples / self.wall_s.max(f64::MIN_POSITIVE),
                ),
                (
                    "compute_s",
                    self.timing.compute_s - self.staging.h2d_s - self.staging.d2h_s,
                ),
                ("comm_s", self.comm_s),
                ("wait_s", self.wait_s),
                ("h2d_s", self.staging.h2d_s),
                ("d2h_s", self.staging.d2h_s),
                ("bitwise", f64::from(u8::from(self.distance == 0.0))),
                ("weight_distance", self.distance),
                ("loss_distance", self.loss_distance),
                ("step_s", self.wall_s / steps),
                ("bytes_per_step", self.timing.bytes_sent as f64 / steps),
                ("param_bytes", 8.0 * p as f64),
                (
                    "mem_per_rank_bytes",
                    mlp::sharded::model_state_bytes(p, 1, false) as f64,
                ),
                ("loss", self.loss),
                ("accuracy", self.accuracy),
                ("steps", self.timing.steps as f64),
            ]
        }
        fn devices(&self) -> Vec<crate::device::DevicePeaks> {
            vec![crate::workload::cuda::peaks(
                self.trainer.engine.device.info(),
            )]
        }
        fn details(&self) -> Vec<(&'static str, String)> {
            let mut d: Vec<_> = self.curve.detail().into_iter().collect();
            if !self.fnv.is_empty() {
                d.push(("weights_fnv", self.fnv.clone()));
            }
            d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{test_params, Workload};

    fn gpu_target(ranks: u32, gpus: u32) -> Target {
        let mut t = Target::test(1);
        t.resources.ranks = ranks;
        t.resources.gpus = gpus;
        t
    }

    fn refusal(overrides: &[(&str, &str)], ranks: u32, gpus: u32) -> Result<(), String> {
        let p = test_params(super::super::super::TRAIN_PARAMS, overrides);
        super::super::Train.check(&p, &gpu_target(ranks, gpus))
    }

    #[test]
    fn more_than_one_gpu_per_rank_is_refused_with_the_fix() {
        assert_eq!(
            refusal(&[], 2, 2).unwrap_err(),
            "mpi.train: gpus = 2: training runs one GPU per rank; use gpus = 1 with ranks = 4 \
             (one rank per GPU)"
        );
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn a_build_without_cuda_refuses_gpus() {
        assert_eq!(
            refusal(&[], 2, 1).unwrap_err(),
            "mpi.train: gpus = 1 needs a build with CUDA: cargo build --release --features \
             mpi,cuda (or set gpus = 0 to train on the CPU)"
        );
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn strategies_and_variants_the_gpu_path_lacks_are_refused_with_the_fix() {
        assert_eq!(
            refusal(&[("strategy", "sharded")], 2, 1).unwrap_err(),
            "mpi.train: strategy = \"sharded\" does not run on GPUs yet; with gpus = 1 use \
             strategy = \"ddp\" or \"accumulate\", or set gpus = 0 to run sharded on the CPU"
        );
        assert_eq!(
            refusal(&[("strategy", "pipeline"), ("hidden", "64,64,64")], 2, 1).unwrap_err(),
            "mpi.train: strategy = \"pipeline\" does not run on GPUs yet; with gpus = 1 use \
             strategy = \"ddp\" or \"accumulate\", or set gpus = 0 to run pipeline on the CPU"
        );
        let variant = "mpi.train: gpus = 1 joins the ranks' gradients on the host after \
                       backward, along the fixed tree; set allreduce = \"tree\" and overlap = \
                       \"off\" (or gpus = 0 for the other ddp variants)";
        assert_eq!(
            refusal(&[("allreduce", "ring")], 2, 1).unwrap_err(),
            variant
        );
        assert_eq!(refusal(&[("overlap", "on")], 2, 1).unwrap_err(), variant);
        assert_eq!(
            refusal(&[("precision", "bf16")], 2, 1).unwrap_err(),
            "mpi.train: precision = \"bf16\" with gpus = 1: GPU points train in fp64 only so far \
             (the device engine's fp32 and TF32 modes are not wired to `precision`); set \
             precision = \"fp64\", or gpus = 0 to emulate bf16 on the CPU"
        );
        assert_eq!(refusal(&[("precision", "bf16")], 2, 0), Ok(()));
        // What the GPU path runs passes the check; the same at gpus = 0 runs on the CPU.
        assert_eq!(refusal(&[], 2, 1), Ok(()));
        assert_eq!(refusal(&[("strategy", "accumulate")], 4, 1), Ok(()));
        assert_eq!(refusal(&[("strategy", "sharded")], 2, 0), Ok(()));
    }

    #[test]
    fn the_fingerprint_and_the_curve_distance_see_every_bit() {
        let a = Mlp::new(&[4, 8, 3], 1).unwrap();
        let mut b = a.clone();
        assert_eq!(fingerprint(&a), fingerprint(&b));
        b.velocity[5] = f64::from_bits(b.velocity[5].to_bits() ^ 1);
        assert_ne!(fingerprint(&a), fingerprint(&b));
        assert_eq!(fingerprint(&a).len(), 16);
        assert_eq!(curve_distance(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        assert_eq!(curve_distance(&[1.0, 2.0], &[1.0, 3.0]), 0.25);
        assert_eq!(curve_distance(&[1.0], &[1.0, 3.0]), f64::INFINITY);
        assert_eq!(curve_distance(&[f64::NAN], &[1.0]), f64::INFINITY);
    }
}

//! Training with the forward and backward passes done elsewhere (a GPU): the narrow interface
//! [`GradientEngine`] and the host side every engine shares, [`EngineTrainer`].
//!
//! An engine holds a copy of the parameters and turns a micro-batch into **one gradient per
//! grain** (and each sample's loss); it never sums grains. Everything that fixes the bits stays
//! on the host, as in the CPU [`Trainer`]: the grains of a micro-batch are joined by
//! [`tree_sum`], a rank's micro-batches by the same binary-counter merge, the ranks by the
//! [`GradientReducer`] (host-staged: the gradient is on the host when the reducer sees it), and
//! the update is [`Trainer`]'s SGD with momentum on the host, after which the engine is given the
//! new parameters. So if an engine computes a grain's gradient to the same bits wherever that
//! grain falls, runs at any power-of-two rank count agree bitwise with one rank.
//!
//! [`CpuEngine`] computes each grain with the CPU trainer's own backward pass; with it an
//! [`EngineTrainer`] gives bitwise the weights of [`Trainer::step`] (the tests below), which is
//! what checks this host side without a GPU. The GPU engine lives in the binary (`mpi.train`
//! with `gpus = 1`) over `scalelab_kernels::cuda::mlp`.

use std::time::Instant;

use super::{push_merge, tree_sum, GradientReducer, Mlp, Schedule, Sgd, StepTiming, Trainer};
use crate::data::Matrix;

/// Seconds an engine spent copying between host and device (zero for the CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Staging {
    pub h2d_s: f64,
    pub d2h_s: f64,
}

/// The part of a training step that runs on a device.
pub trait GradientEngine {
    /// Take the parameters (the initial ones, then the host's after every update).
    fn load(&mut self, params: &[f64]) -> Result<(), String>;

    /// The summed (not averaged) loss gradient of each grain of the micro-batch `rows` (dataset
    /// rows of `x`, a whole number of grains of `grain`): grain `g`'s into
    /// `leaves[g·p..(g+1)·p]` (`p` parameters, the [`super::Layout`] order), each sample's
    /// cross-entropy loss into `losses`.
    fn grain_gradients(
        &mut self,
        x: &Matrix,
        labels: &[u32],
        rows: &[usize],
        grain: usize,
        leaves: &mut [f64],
        losses: &mut [f64],
    ) -> Result<(), String>;

    /// The copies' seconds since the last call, zeroed.
    fn take_staging(&mut self) -> Staging {
        Staging::default()
    }
}

/// The engine that computes each grain with the CPU trainer's backward pass (one grain per
/// call: a grain's gradient does not depend on the samples beside it, `mlp` module docs).
pub struct CpuEngine {
    trainer: Trainer,
}

impl CpuEngine {
    /// An engine for models shaped like `mlp` (its parameters are replaced by [`load`]).
    ///
    /// [`load`]: GradientEngine::load
    pub fn new(mlp: &Mlp) -> CpuEngine {
        CpuEngine {
            trainer: Trainer::new(mlp.clone()),
        }
    }
}

impl GradientEngine for CpuEngine {
    fn load(&mut self, params: &[f64]) -> Result<(), String> {
        self.trainer.mlp.params.copy_from_slice(params);
        Ok(())
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
        let p = self.trainer.mlp.layout.len();
        for (g, leaf) in leaves.chunks_mut(p).enumerate() {
            leaf.fill(0.0);
            let grain_rows = &rows[g * grain..(g + 1) * grain];
            self.trainer
                .micro_gradient(x, labels, grain_rows, grain, leaf);
        }
        for (loss, &r) in losses.iter_mut().zip(rows) {
            *loss = self.trainer.evaluate(x, labels, &[r]).0;
        }
        Ok(())
    }
}

/// A model trained on the host through a [`GradientEngine`]: the parameters and momentum on the
/// host, the passes on the engine (module docs).
pub struct EngineTrainer<E: GradientEngine> {
    host: Trainer,
    pub engine: E,
    leaves: Vec<f64>,
    losses: Vec<f64>,
    staging: Staging,
    /// An engine error not yet reported to the caller (a failed parameter upload): the next
    /// step contributes a poisoned gradient and returns it.
    broken: Option<String>,
}

impl<E: GradientEngine> EngineTrainer<E> {
    /// Start from `mlp`, giving its parameters to `engine`.
    pub fn new(mlp: Mlp, mut engine: E) -> Result<EngineTrainer<E>, String> {
        engine.load(&mlp.params)?;
        Ok(EngineTrainer {
            host: Trainer::new(mlp),
            engine,
            leaves: Vec::new(),
            losses: Vec::new(),
            staging: Staging::default(),
            broken: None,
        })
    }

    /// Start again from `mlp` (a new repetition), giving its parameters to the engine; a failed
    /// upload is reported by the next [`step`](EngineTrainer::step), in step with the other
    /// ranks.
    pub fn restart(&mut self, mlp: Mlp) {
        self.host.mlp = mlp;
        self.broken = self.engine.load(&self.host.mlp.params).err();
    }

    /// The model (parameters and momentum) as the host holds it.
    pub fn mlp(&self) -> &Mlp {
        &self.host.mlp
    }

    /// The host's model, e.g. to poison it after a check.
    pub fn mlp_mut(&mut self) -> &mut Mlp {
        &mut self.host.mlp
    }

    /// Mean loss and accuracy of the host's model on `rows` (the CPU forward pass).
    pub fn evaluate(&mut self, x: &Matrix, labels: &[u32], rows: &[usize]) -> (f64, f64) {
        self.host.evaluate(x, labels, rows)
    }

    /// The step timing so far (`compute_s` without the copies) and the copies' seconds, zeroed.
    pub fn take_timing(&mut self) -> (StepTiming, Staging) {
        (self.host.take_timing(), std::mem::take(&mut self.staging))
    }

    /// The step timing so far.
    pub fn timing(&self) -> &StepTiming {
        self.host.timing()
    }

    /// One optimizer step of rank `rank` on the global batch `batch`, as [`Trainer::step`]: the
    /// rank's share in `schedule.micro` micro-batches, each the tree sum of its grains (computed
    /// by the engine), merged along the fixed tree; the ranks joined by `reducer`; SGD with
    /// momentum on the host; the new parameters loaded into the engine. Returns the mean loss of
    /// the global batch before the update (each rank's loss sum travels with its gradient, as
    /// one extra element). A non-finite gradient is an error and leaves the weights unchanged.
    ///
    /// An engine that fails does not leave the other ranks waiting in the reduction: this rank
    /// still calls `reducer` once, with a NaN gradient, so every rank sees a non-finite sum at the
    /// same step and returns an error there (this rank the engine's own message). A failed upload
    /// of the new parameters is reported by the next step the same way.
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
    ) -> Result<f64, String> {
        let start = Instant::now();
        let p = self.host.mlp.layout.len();
        let shard = &batch[schedule.shard(rank)];
        let per_micro = shard.len() / schedule.micro;
        let grains = per_micro / schedule.grain;
        let mut stack: Vec<(Vec<f64>, usize)> = Vec::new();
        let mut loss = 0.0;
        let mut failure = self.broken.take();
        for j in 0..schedule.micro {
            let rows = &shard[j * per_micro..(j + 1) * per_micro];
            self.leaves.resize(grains * p, 0.0);
            self.losses.resize(rows.len(), 0.0);
            if failure.is_none() {
                failure = self
                    .engine
                    .grain_gradients(
                        x,
                        labels,
                        rows,
                        schedule.grain,
                        &mut self.leaves,
                        &mut self.losses,
                    )
                    .err();
            }
            if failure.is_some() {
                self.leaves.fill(f64::NAN);
            }
            tree_sum(&mut self.leaves, p);
            loss += self.losses.iter().sum::<f64>();
            push_merge(&mut stack, self.leaves[..p].to_vec());
        }
        let staged = self.engine.take_staging();
        self.staging.h2d_s += staged.h2d_s;
        self.staging.d2h_s += staged.d2h_s;
        // A power-of-two micro count leaves one subtree: the rank's share.
        let mut grad = stack.pop().map(|(g, _)| g).unwrap_or_else(|| vec![0.0; p]);
        grad.push(loss);
        let before_comm = Instant::now();
        let bytes = reducer.combine(&mut grad);
        let comm = before_comm.elapsed().as_secs_f64();
        let loss = grad.pop().unwrap_or(f64::NAN) / schedule.batch as f64;
        if let Some(e) = failure {
            return Err(format!("rank {rank}: {e}"));
        }
        if let Some(k) = grad.iter().position(|g| !g.is_finite()) {
            return Err(format!(
                "rank {rank}: the gradient of parameter {k} is {} (and the step's loss {loss}): \
                 training diverged or the device computed garbage; lower lr or check the data",
                grad[k]
            ));
        }
        self.host.apply(&grad, schedule.batch, sgd);
        self.broken = self.engine.load(&self.host.mlp.params).err();
        let staged = self.engine.take_staging();
        self.staging.h2d_s += staged.h2d_s;
        self.staging.d2h_s += staged.d2h_s;
        let timing = &mut self.host.timing;
        timing.comm_s += comm;
        timing.compute_s += start.elapsed().as_secs_f64() - comm;
        timing.bytes_sent += bytes;
        timing.steps += 1;
        Ok(loss)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Barrier, Mutex};

    use super::*;
    use crate::data;
    use crate::mlp::{global_batch, shuffled, LocalReducer};

    /// Ranks as threads joined along the fixed tree (what the MPI reducer computes).
    struct Shared {
        barrier: Barrier,
        parts: Mutex<Vec<Vec<f64>>>,
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
            tree_sum(&mut all, grad.len());
            grad.copy_from_slice(&all[..grad.len()]);
            self.shared.barrier.wait();
            0
        }
    }

    const SGD: Sgd = Sgd {
        lr: 0.05,
        momentum: 0.9,
    };

    fn widths(d: &data::Dataset) -> [usize; 4] {
        [d.features(), 8, 5, d.y.n_classes()]
    }

    /// The CPU trainer's weights and momentum bits after `steps` on one rank.
    fn cpu_reference(d: &data::Dataset, schedule: Schedule, steps: usize) -> Vec<u64> {
        let y = d.y.labels().unwrap();
        let order = shuffled(d.rows(), 3);
        let mut t = Trainer::new(Mlp::new(&widths(d), 7).unwrap());
        for step in 0..steps {
            let batch = global_batch(&order, schedule.batch, step);
            t.step(&d.x, y, &batch, &schedule, 0, SGD, &LocalReducer);
        }
        bits(&t.mlp)
    }

    fn bits(m: &Mlp) -> Vec<u64> {
        m.params
            .iter()
            .chain(&m.velocity)
            .map(|v| v.to_bits())
            .collect()
    }

    /// Every rank (a thread) trains through a [`CpuEngine`]; the ranks' bits and their losses.
    fn engine_run(d: &data::Dataset, schedule: Schedule, steps: usize) -> (Vec<u64>, Vec<f64>) {
        let y = d.y.labels().unwrap();
        let order = shuffled(d.rows(), 3);
        let shared = Shared {
            barrier: Barrier::new(schedule.ranks),
            parts: Mutex::new(vec![Vec::new(); schedule.ranks]),
        };
        let results: Vec<(Vec<u64>, Vec<f64>)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..schedule.ranks)
                .map(|rank| {
                    let (shared, order) = (&shared, &order);
                    s.spawn(move || {
                        let mlp = Mlp::new(&widths(d), 7).unwrap();
                        let engine = CpuEngine::new(&mlp);
                        let mut t = EngineTrainer::new(mlp, engine).unwrap();
                        let reducer = Handle { shared, rank };
                        let losses: Vec<f64> = (0..steps)
                            .map(|step| {
                                let batch = global_batch(order, schedule.batch, step);
                                t.step(&d.x, y, &batch, &schedule, rank, SGD, &reducer)
                                    .unwrap()
                            })
                            .collect();
                        (bits(t.mlp()), losses)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in &results[1..] {
            assert_eq!(r.0, results[0].0, "ranks disagree");
        }
        results.into_iter().next().unwrap()
    }

    #[test]
    fn the_shared_host_side_gives_the_cpu_trainers_bits_for_ddp_and_accumulate() {
        let iris = data::load("iris").unwrap();
        let serial = Schedule {
            batch: 48,
            grain: 3,
            ranks: 1,
            micro: 1,
        };
        let reference = cpu_reference(&iris, serial, 10);
        // ddp at 1, 2, 4 ranks; accumulate with 2 and 4 micro-batches.
        for (ranks, micro) in [(1, 1), (2, 1), (4, 1), (1, 4), (2, 2), (4, 2)] {
            let schedule = Schedule {
                ranks,
                micro,
                ..serial
            };
            let (got, _) = engine_run(&iris, schedule, 10);
            assert!(
                got == reference,
                "ranks = {ranks}, micro = {micro}: the engine's weights differ from the CPU \
                 trainer's bits"
            );
        }
    }

    #[test]
    fn the_step_loss_is_the_global_batch_loss_before_the_update() {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap();
        let schedule = Schedule {
            batch: 48,
            grain: 3,
            ranks: 2,
            micro: 2,
        };
        let (_, losses) = engine_run(&iris, schedule, 5);
        let order = shuffled(iris.rows(), 3);
        let mut t = Trainer::new(Mlp::new(&widths(&iris), 7).unwrap());
        let serial = Schedule {
            ranks: 1,
            micro: 1,
            ..schedule
        };
        for (step, got) in losses.iter().enumerate() {
            let batch = global_batch(&order, 48, step);
            let want = t.evaluate(&iris.x, y, &batch).0;
            assert!(
                (got - want).abs() <= 1e-12 * want.abs(),
                "step {step}: loss {got} vs {want}"
            );
            t.step(&iris.x, y, &batch, &serial, 0, SGD, &LocalReducer);
        }
        // The loss does go down: the values are not all one number.
        assert!(losses[4] < losses[0], "{losses:?}");
    }

    #[test]
    fn a_non_finite_gradient_fails_the_step_and_keeps_the_weights() {
        let iris = data::load("iris").unwrap();
        let y = iris.y.labels().unwrap();
        let mut mlp = Mlp::new(&widths(&iris), 7).unwrap();
        mlp.params[3] = f64::INFINITY;
        let engine = CpuEngine::new(&mlp);
        let mut t = EngineTrainer::new(mlp.clone(), engine).unwrap();
        let schedule = Schedule {
            batch: 12,
            grain: 3,
            ranks: 1,
            micro: 1,
        };
        let batch: Vec<usize> = (0..12).collect();
        let err = t
            .step(&iris.x, y, &batch, &schedule, 0, SGD, &LocalReducer)
            .unwrap_err();
        assert!(
            err.starts_with("rank 0: the gradient of parameter ") && err.contains("is NaN"),
            "{err}"
        );
        assert!(
            err.ends_with(
                "training diverged or the device computed garbage; lower lr or \
                               check the data"
            ),
            "{err}"
        );
        assert_eq!(bits(t.mlp()), bits(&mlp));
    }
}

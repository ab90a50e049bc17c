//! `strategy = "sharded"` of `mpi.train`: ZeRO stage 3 / FSDP over MPI ranks
//! (`scalelab_ml::mlp::sharded`). Each rank keeps its chunk of every FSDP unit's parameters and
//! momentum (`units = "model"`: the whole model as one unit; `"layer"`: one unit per layer). A step
//! gathers each unit just before it computes (`MPI_Iallgather`, the next unit's started while the
//! current one computes), frees it after, and reduce-scatters each unit's gradient as soon as it is
//! final, by recursive halving over `MPI_Isend`/`MPI_Irecv` in the fixed tree's order
//! ([`Halving`]), so every chunk ends bitwise the serial reference's.
//!
//! [`MpiUnits`] keeps every collective in flight as a small state machine over non-blocking MPI
//! calls, as the `ddp` buckets do (train/ddp.rs): an allgather is one request; a reduce-scatter
//! posts one exchange of its halving at a time and, when [`UnitCollective::progress`] finds it
//! complete (tested between layers), adds what arrived and posts the next. Every buffer a request
//! reads or writes is a heap allocation owned by its state machine and untouched until the request
//! completes. OpenMPI moves a non-blocking operation on only inside MPI calls (it has no progress
//! thread by default), so the prefetch and the reduce-scatter advance at those layer boundaries.
//!
//! Gradient accumulation (`micro` > 1): every micro-batch gathers the units again; `no_sync =
//! "off"` (the default) reduce-scatters every micro-batch's gradient and accumulates the rank's
//! chunk, `"on"` keeps the whole gradient over the micro-batches (FSDP's `no_sync()`) and
//! reduce-scatters once after the last (`mlp::sharded::Accumulation`, which also says how each
//! cuts the batch so that both give the serial bits). `no_sync = "on"` with another strategy is
//! refused at check time ([`accumulation`]).
//!
//! Verification after every repetition: the parameters gathered after the last step (outside the
//! timed steps, as a full state dict is gathered to save a checkpoint) must equal the serial
//! reference's bit for bit, and so must each rank's momentum chunks.
//!
//! Metrics beside `ddp`'s: `mem_per_rank_bytes` (parameters, gradient and momentum kept between
//! steps, ZeRO's count: a chunk of each, per unit), `mem_peak_bytes` (the most parameter, gradient
//! and momentum bytes the rank held at once within a step, counted from its buffers as the steps
//! ran: `ShardedTrainer::take_peak`), `bytes_per_step` (every allgather and reduce-scatter sends
//! `R − 1` chunks of its unit, per micro-batch: `mlp::sharded::accumulated_step_bytes`), `wait_s` and `comm_s` (the seconds
//! inside the collectives split into waiting for the slowest rank and moving data, as `ddp`'s:
//! `super::waiting`), `comm_hidden_s` and `comm_total_s` (computation done while a collective was
//! in flight, and `comm_s` + hidden).

use std::collections::BTreeMap;
use std::os::raw::{c_int, c_void};
use std::time::Instant;

use ::mpi::ffi;
use ::mpi::raw::AsRaw;
use ::mpi::topology::Communicator;
use scalelab_ml::mlp::sharded::{
    Accumulation, Halving, ShardedTrainer, Shards, UnitCollective, Units,
};
use scalelab_ml::mlp::{ddp::Overlap, Mlp, StepLog, StepTiming, Trainer};

use super::{waiting, Data, LossCurve, Setup};
use crate::value::Value;
use crate::workload::{Comm, Instance, Params};

/// Tags of the reduce-scatters' messages: one per unit (each unit's exchanges go to a different
/// partner at every step, and a unit's reduce-scatter ends before the next step starts it again).
const TAG_BASE: c_int = 2000;

fn check(rc: c_int, what: &str) {
    // MPI's default error handler aborts first; this catches a handler that returns.
    assert_eq!(rc, 0, "{what} failed with MPI error code {rc}");
}

fn count(n: usize) -> c_int {
    c_int::try_from(n).expect("a unit of more than 2³¹ parameters")
}

/// Test (`wait = false`) or wait for `n` requests; whether all have completed.
fn complete(reqs: &mut [ffi::MPI_Request], wait: bool) -> bool {
    let n = reqs.len() as c_int;
    // SAFETY: request handles owned by the caller's state machine, null or pending.
    unsafe {
        if wait {
            check(
                ffi::MPI_Waitall(n, reqs.as_mut_ptr(), ffi::RSMPI_STATUSES_IGNORE),
                "MPI_Waitall",
            );
            true
        } else {
            let mut flag: c_int = 0;
            check(
                ffi::MPI_Testall(n, reqs.as_mut_ptr(), &mut flag, ffi::RSMPI_STATUSES_IGNORE),
                "MPI_Testall",
            );
            flag != 0
        }
    }
}

/// An allgather in flight: the rank's chunk (sent) and the unit's buffer (received into).
struct Gather {
    send: Vec<f64>,
    full: Vec<f64>,
    req: [ffi::MPI_Request; 1],
    done: bool,
}

/// A reduce-scatter in flight: its halving, the requests of the exchange posted, and once done
/// the rank's chunk (the halving's buffers freed).
struct Scatter {
    halving: Option<Halving>,
    reqs: [ffi::MPI_Request; 2],
    posted: bool,
    chunk: Option<Vec<f64>>,
    tag: c_int,
    padded: usize,
}

/// [`UnitCollective`] over an MPI communicator with non-blocking calls.
pub(super) struct MpiUnits<'c> {
    comm: &'c Comm,
    gathers: BTreeMap<usize, Gather>,
    scatters: BTreeMap<usize, Scatter>,
    bytes: u64,
}

impl<'c> MpiUnits<'c> {
    pub(super) fn new(comm: &'c Comm) -> MpiUnits<'c> {
        MpiUnits {
            comm,
            gathers: BTreeMap::new(),
            scatters: BTreeMap::new(),
            bytes: 0,
        }
    }

    /// Move unit `unit`'s reduce-scatter on: fold in each completed exchange and post the next,
    /// until one is pending (or, with `wait`, until the last is done). Whether it is done.
    fn drive(&mut self, unit: usize, wait: bool) -> bool {
        let comm = self.comm.as_raw();
        let s = self
            .scatters
            .get_mut(&unit)
            .expect("a started reduce-scatter");
        loop {
            if s.chunk.is_some() {
                return true;
            }
            let h = s.halving.as_mut().expect("a reduce-scatter in flight");
            if s.posted {
                if !complete(&mut s.reqs, wait) {
                    return false;
                }
                self.bytes += h.absorb();
                s.posted = false;
            }
            let Some(peer) = h.prepare() else {
                s.chunk = s.halving.take().map(Halving::into_chunk);
                return true;
            };
            let n = count(h.send().len());
            // SAFETY: `send` and `recv` are the halving's own allocations, sized by `prepare`;
            // neither is touched until both requests complete above.
            unsafe {
                check(
                    ffi::MPI_Irecv(
                        h.recv().as_mut_ptr().cast::<c_void>(),
                        n,
                        ffi::RSMPI_DOUBLE,
                        peer as c_int,
                        s.tag,
                        comm,
                        &mut s.reqs[0],
                    ),
                    "MPI_Irecv",
                );
                check(
                    ffi::MPI_Isend(
                        h.send().as_ptr().cast::<c_void>(),
                        n,
                        ffi::RSMPI_DOUBLE,
                        peer as c_int,
                        s.tag,
                        comm,
                        &mut s.reqs[1],
                    ),
                    "MPI_Isend",
                );
            }
            s.posted = true;
        }
    }
}

impl UnitCollective for MpiUnits<'_> {
    fn start_gather(&mut self, unit: usize, full: Vec<f64>, shards: &Shards) {
        let rank = self.comm.rank() as usize;
        let mut g = Gather {
            send: full[shards.range(rank)].to_vec(),
            full,
            req: [unsafe { ffi::RSMPI_REQUEST_NULL }],
            done: false,
        };
        // SAFETY: `send` and `full` are the gather's own allocations (the heap buffers stay put
        // when `g` moves into the map), untouched until the request completes.
        unsafe {
            check(
                ffi::MPI_Iallgather(
                    g.send.as_ptr().cast::<c_void>(),
                    count(shards.chunk()),
                    ffi::RSMPI_DOUBLE,
                    g.full.as_mut_ptr().cast::<c_void>(),
                    count(shards.chunk()),
                    ffi::RSMPI_DOUBLE,
                    self.comm.as_raw(),
                    &mut g.req[0],
                ),
                "MPI_Iallgather",
            );
        }
        // Tested once at once, as a reduce-scatter's first exchange is: on one rank (or a gather
        // the library completed eagerly) nothing is left in flight.
        g.done = complete(&mut g.req, false);
        // What a ring or recursive-doubling allgather sends per rank.
        self.bytes += 8 * (shards.chunk() * (shards.ranks - 1)) as u64;
        self.gathers.insert(unit, g);
    }

    fn finish_gather(&mut self, unit: usize) -> Vec<f64> {
        let mut g = self.gathers.remove(&unit).expect("a started gather");
        if !g.done {
            complete(&mut g.req, true);
        }
        g.full
    }

    fn start_scatter(&mut self, unit: usize, grad: Vec<f64>, shards: &Shards) {
        let rank = self.comm.rank() as usize;
        let padded = grad.len();
        self.scatters.insert(
            unit,
            Scatter {
                halving: Some(Halving::new(grad, rank, *shards)),
                reqs: [unsafe { ffi::RSMPI_REQUEST_NULL }; 2],
                posted: false,
                chunk: None,
                tag: TAG_BASE + (unit % 30_000) as c_int,
                padded,
            },
        );
        self.drive(unit, false);
    }

    fn finish_scatter(&mut self, unit: usize) -> Vec<f64> {
        self.drive(unit, true);
        let s = self
            .scatters
            .remove(&unit)
            .expect("a started reduce-scatter");
        s.chunk.expect("a finished reduce-scatter")
    }

    fn progress(&mut self) -> bool {
        let mut busy = false;
        for g in self.gathers.values_mut() {
            if !g.done {
                g.done = complete(&mut g.req, false);
                busy |= !g.done;
            }
        }
        let units: Vec<usize> = self.scatters.keys().copied().collect();
        for unit in units {
            busy |= !self.drive(unit, false);
        }
        busy
    }

    fn in_flight(&self) -> bool {
        self.gathers.values().any(|g| !g.done) || self.scatters.values().any(|s| s.chunk.is_none())
    }

    fn held_bytes(&self) -> u64 {
        let gathers = self.gathers.values().map(|g| g.full.len());
        let scatters = self.scatters.values().map(|s| match &s.chunk {
            Some(chunk) => chunk.len(),
            None => s.padded,
        });
        8 * gathers.chain(scatters).map(|n| n as u64).sum::<u64>()
    }

    fn take_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }
}

/// The `units` of a point: how `sharded` cuts the model into FSDP units. Another strategy has no
/// units, and one asked for there is refused with the fix (a sweep over units beside `ddp` would
/// otherwise give `ddp` points that differ in nothing).
pub(super) fn units(name: &str, params: &Params, strategy: &str) -> Result<Units, String> {
    let raw = match params.get("units") {
        Some(Value::Text(t)) => t.as_str(),
        other => return Err(format!("parameter `units` must be text (found {other:?})")),
    };
    let units = Units::parse(raw).map_err(|e| format!("{name}: {e}"))?;
    if units != Units::Model && strategy != "sharded" {
        return Err(format!(
            "{name}: units = \"{raw}\" with strategy = \"{strategy}\": FSDP units are how \
             sharded gathers and frees the parameters; {strategy} keeps them whole and has no \
             units; use strategy = \"sharded\", or leave units at \"model\" (put ddp and per-layer \
             sharding side by side in two studies, as experiments/sharded-vs-ddp.toml does)"
        ));
    }
    Ok(units)
}

/// How `sharded` accumulates its micro-batches: the `no_sync` of a point. `"on"` with another
/// strategy is refused with the fix, as `units` is (those points would differ in nothing);
/// `accumulate` is told that it already reduces once per step, which is DDP's `no_sync()`. With
/// one micro-batch both settings are the same step.
pub(super) fn accumulation(
    name: &str,
    params: &Params,
    strategy: &str,
) -> Result<Accumulation, String> {
    let acc = match params.get("no_sync") {
        Some(Value::Text(t)) if t == "off" => Accumulation::Sharded,
        Some(Value::Text(t)) if t == "on" => Accumulation::NoSync,
        other => {
            return Err(format!(
                "{name}: no_sync must be \"off\" or \"on\" (found {other:?})"
            ))
        }
    };
    if acc == Accumulation::NoSync && strategy != "sharded" {
        let why = if strategy == "accumulate" {
            "accumulate already reduces once per step, after its micro-batches, which is what \
             DDP's no_sync() does"
                .to_string()
        } else {
            format!("{strategy} does not reduce-scatter micro-batches")
        };
        return Err(format!(
            "{name}: no_sync = \"on\" with strategy = \"{strategy}\": no_sync is how sharded \
             accumulates its micro-batches (one reduce-scatter after the last instead of one \
             per micro-batch); {why}; use strategy = \"sharded\" with micro > 1, or leave \
             no_sync at \"off\""
        ));
    }
    Ok(acc)
}

/// One rank of a sharded training run.
pub(super) struct ShardedInstance {
    curve: LossCurve,
    rank: usize,
    comm: Comm,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    trainer: Option<ShardedTrainer>,
    /// The parameters gathered after the last step of the last run.
    gathered: Vec<f64>,
    wall_s: f64,
    timing: StepTiming,
    /// Each step's compute and collective seconds of the last repetition.
    steps: StepLog,
    /// `timing.comm_s` split into waiting for the slowest rank and moving data.
    wait_s: f64,
    comm_s: f64,
    hidden: Overlap,
    /// The counted peak of the last run, and ZeRO's count of the state kept between steps.
    peak: u64,
    state: u64,
    loss: f64,
    accuracy: f64,
}

impl ShardedInstance {
    pub(super) fn new(
        comm: &Comm,
        setup: Setup,
        data: Data,
        initial: Mlp,
        reference: Mlp,
        curve: LossCurve,
    ) -> ShardedInstance {
        ShardedInstance {
            curve,
            rank: comm.rank() as usize,
            comm: comm.duplicate(),
            setup,
            data,
            initial,
            reference,
            trainer: None,
            gathered: Vec::new(),
            wall_s: 0.0,
            timing: StepTiming::default(),
            steps: StepLog::default(),
            wait_s: 0.0,
            comm_s: 0.0,
            hidden: Overlap::default(),
            peak: 0,
            state: 0,
            loss: f64::NAN,
            accuracy: f64::NAN,
        }
    }

    fn fresh(&self) -> ShardedTrainer {
        ShardedTrainer::new(
            &self.initial,
            self.rank,
            self.setup.schedule.ranks,
            self.setup.units,
        )
        .with_accumulation(self.setup.accumulation)
    }
}

impl Instance for ShardedInstance {
    fn reset(&mut self) {
        self.trainer = Some(self.fresh());
    }
    fn run(&mut self) {
        let mut trainer = match self.trainer.take() {
            Some(t) => t,
            None => self.fresh(),
        };
        let mut coll = MpiUnits::new(&self.comm);
        let start = Instant::now();
        self.curve.restart();
        self.steps.restart();
        for step in 0..self.setup.steps {
            let batch =
                scalelab_ml::mlp::global_batch(&self.data.train, self.setup.schedule.batch, step);
            trainer.step(
                &self.data.x,
                &self.data.labels,
                &batch,
                &self.setup.schedule,
                self.setup.sgd,
                &mut coll,
            );
            self.curve.step_done(start);
            self.steps.record(trainer.timing());
        }
        self.wall_s = start.elapsed().as_secs_f64();
        self.timing = trainer.take_timing();
        (self.wait_s, self.comm_s) = waiting(&self.comm, &self.steps);
        self.hidden = trainer.take_hidden();
        self.peak = trainer.take_peak();
        self.state = trainer.state_bytes();
        self.gathered = trainer.gather(&mut coll).0;
        self.trainer = Some(trainer);
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.train";
        let Some(trainer) = self.trainer.take() else {
            return Err(format!("{name}: no training to check: run did not finish"));
        };
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let chunks = |vs: &[Vec<f64>]| vs.iter().map(|v| bits(v)).collect::<Vec<_>>();
        if bits(&self.gathered) != bits(&self.reference.params)
            || chunks(trainer.velocity()) != chunks(&trainer.chunks_of(&self.reference.velocity))
        {
            let differ = self
                .gathered
                .iter()
                .zip(&self.reference.params)
                .filter(|(a, b)| a.to_bits() != b.to_bits())
                .count();
            return Err(format!(
                "{name}: rank {} of {}, strategy sharded, units = \"{}\", micro = {}, no_sync = \
                 \"{}\": after {} steps {differ} of {} gathered weights (or the rank's momentum \
                 chunks) differ from the serial reference's bits",
                self.rank,
                self.setup.schedule.ranks,
                self.setup.units.name(),
                self.setup.schedule.micro,
                self.setup.accumulation.name(),
                self.setup.steps,
                self.reference.params.len()
            ));
        }
        let mut model = Trainer::new(Mlp {
            layout: self.initial.layout.clone(),
            params: std::mem::take(&mut self.gathered),
            velocity: Vec::new(),
        });
        (self.loss, self.accuracy) =
            model.evaluate(&self.data.x, &self.data.labels, &self.data.test);
        // The next repetition starts from fresh chunks and must gather its own result.
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let steps = self.timing.steps.max(1) as f64;
        let samples = (self.setup.schedule.batch * self.setup.steps) as f64;
        let len = self.initial.params.len();
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
            ("step_s", self.wall_s / steps),
            ("bytes_per_step", self.timing.bytes_sent as f64 / steps),
            ("param_bytes", 8.0 * len as f64),
            ("mem_per_rank_bytes", self.state as f64),
            ("mem_peak_bytes", self.peak as f64),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
            ("steps", self.timing.steps as f64),
        ]
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        self.curve.detail().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use crate::workload::mpi::{Train, TRAIN_PARAMS};
    use crate::workload::{test_params, Target, Workload};

    #[test]
    fn per_layer_units_are_refused_for_a_strategy_without_units_with_the_fix() {
        let target = Target::test(1);
        let check =
            |pairs: &[(&str, &str)]| Train.check(&test_params(TRAIN_PARAMS, pairs), &target);
        assert!(check(&[("strategy", "sharded"), ("units", "layer")]).is_ok());
        assert!(check(&[("strategy", "sharded"), ("units", "model")]).is_ok());
        // The default suits every strategy, so ddp and sharded can share a study.
        assert!(check(&[("strategy", "ddp")]).is_ok());
        assert_eq!(
            check(&[("strategy", "ddp"), ("units", "layer")]).unwrap_err(),
            "mpi.train: units = \"layer\" with strategy = \"ddp\": FSDP units are how sharded \
             gathers and frees the parameters; ddp keeps them whole and has no units; use \
             strategy = \"sharded\", or leave units at \"model\" (put ddp and per-layer sharding \
             side by side in two studies, as experiments/sharded-vs-ddp.toml does)"
        );
        assert!(check(&[("strategy", "pipeline"), ("units", "layer")])
            .unwrap_err()
            .contains("strategy = \"pipeline\": FSDP units"));
    }

    #[test]
    fn sharded_takes_micro_batches_and_no_sync_is_refused_elsewhere_with_the_fix() {
        let target = Target::test(1);
        let check =
            |pairs: &[(&str, &str)]| Train.check(&test_params(TRAIN_PARAMS, pairs), &target);
        for no_sync in ["off", "on"] {
            for micro in ["1", "2", "4"] {
                let p = [
                    ("strategy", "sharded"),
                    ("micro", micro),
                    ("no_sync", no_sync),
                ];
                assert!(check(&p).is_ok(), "{p:?}");
            }
        }
        assert_eq!(
            check(&[("strategy", "sharded"), ("micro", "6")]).unwrap_err(),
            "mpi.train: micro = 6: the fixed reduction tree halves each rank's share, so the \
             micro-batch count must be a power of two; use micro = 4 or 8"
        );
        assert_eq!(
            check(&[("strategy", "pipeline"), ("no_sync", "on")]).unwrap_err(),
            "mpi.train: no_sync = \"on\" with strategy = \"pipeline\": no_sync is how sharded \
             accumulates its micro-batches (one reduce-scatter after the last instead of one per \
             micro-batch); pipeline does not reduce-scatter micro-batches; use strategy = \
             \"sharded\" with micro > 1, or leave no_sync at \"off\""
        );
        assert!(check(&[("strategy", "accumulate"), ("no_sync", "on")])
            .unwrap_err()
            .contains("which is what DDP's no_sync() does"));
        assert!(check(&[("strategy", "ddp"), ("no_sync", "off")]).is_ok());
    }
}

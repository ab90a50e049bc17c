//! Diagnostic workloads that misbehave on purpose, so that failure handling can be tested and taught:
//! a point that sleeps (to exceed its time limit), and one that panics, aborts, errors or returns a
//! wrong answer, and an MPI job whose rank 1 does the same. They do no useful work; their work counts
//! are zero.

use anyhow::bail;

use super::{Backend, Description, Instance, ParamKind, ParamSpec, Params, Target, Work, Workload};

/// `debug.sleep`: sleeps `seconds` per repetition.
pub struct Sleep;

/// `debug.sleep`, as `scalelab list` shows it.
pub const SLEEP: Description = Description::new(
    "debug.sleep",
    "sleeps for `seconds` per repetition (to exercise time limits)",
    Backend::Debug,
    &[ParamSpec {
        name: "seconds",
        kind: ParamKind::Float,
        default: "0.01",
        doc: "seconds to sleep in each repetition",
    }],
);

impl Workload for Sleep {
    fn description(&self) -> &'static Description {
        &SLEEP
    }
    fn problem_size(&self, _params: &Params) -> u64 {
        0
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn check(&self, params: &Params, _target: &Target) -> Result<(), String> {
        let seconds = params.float("seconds");
        if (0.0..=86_400.0).contains(&seconds) {
            Ok(())
        } else {
            Err(format!(
                "seconds = {seconds} is outside 0..=86400; give a sleep of at most a day"
            ))
        }
    }
    fn prepare(&self, params: &Params, target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        self.check(params, target)
            .map_err(|e| anyhow::anyhow!("debug.sleep: {e}"))?;
        Ok(Box::new(SleepInstance {
            seconds: params.float("seconds"),
        }))
    }
}

struct SleepInstance {
    seconds: f64,
}

impl Instance for SleepInstance {
    fn run(&mut self) {
        std::thread::sleep(std::time::Duration::from_secs_f64(self.seconds));
    }
    fn verify(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// `debug.fail`: fails in the way `mode` names.
pub struct Fail;

const FAIL_MODES: &[&str] = &["panic", "abort", "error", "wrong", "ok"];

/// `debug.fail`, as `scalelab list` shows it.
pub const FAIL: Description = Description::new(
    "debug.fail",
    "fails on purpose: panics, aborts, errors in prepare, or gives a wrong answer (mode)",
    Backend::Debug,
    &[ParamSpec {
        name: "mode",
        kind: ParamKind::Choice(FAIL_MODES),
        default: "panic",
        doc: "panic | abort | error | wrong (fails verification) | ok (succeeds)",
    }],
);

impl Workload for Fail {
    fn description(&self) -> &'static Description {
        &FAIL
    }
    fn problem_size(&self, _params: &Params) -> u64 {
        0
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        let mode = params.str("mode").to_string();
        if mode == "error" {
            bail!("debug.fail: prepare failed on purpose (mode = \"error\")");
        }
        Ok(Box::new(FailInstance { mode }))
    }
}

struct FailInstance {
    mode: String,
}

impl Instance for FailInstance {
    fn run(&mut self) {
        match self.mode.as_str() {
            "panic" => panic!("debug.fail: panicked on purpose (mode = \"panic\")"),
            "abort" => std::process::abort(),
            _ => {}
        }
    }
    fn verify(&mut self) -> Result<(), String> {
        if self.mode == "wrong" {
            Err("debug.fail: result 41 differs from the reference 42 (mode = \"wrong\")".into())
        } else {
            Ok(())
        }
    }
}

/// `mpi.debug`: an MPI diagnostic. Every rank sleeps `seconds / ranks` per repetition (so a strong
/// scaling sweep has a known speedup of `ranks`), and rank 1 misbehaves as `mode` says: it panics
/// in `run`, fails `verify`, fails `prepare`, or exits the process abruptly without finalising MPI.
/// With one rank (or without the `mpi` feature) there is no rank 1 and every mode succeeds.
///
/// Each repetition reports the metric `rank_plus_one` (the rank + 1), so the point's record, which
/// keeps the maximum over ranks, shows the number of ranks that ran.
pub struct DebugMpi;

const MPI_MODES: &[&str] = &["ok", "panic", "wrong", "error", "exit"];

/// `mpi.debug`, as `scalelab list` shows it.
pub const DEBUG_MPI: Description = Description::new(
    "mpi.debug",
    "MPI diagnostic: sleeps seconds/ranks; rank 1 panics, errs, exits or gives a wrong answer (mode)",
    Backend::Mpi,
    &[
        ParamSpec {
            name: "mode",
            kind: ParamKind::Choice(MPI_MODES),
            default: "ok",
            doc: "ok | panic | wrong (fails verification) | error (in prepare) | exit (no MPI_Finalize): what rank 1 does",
        },
        ParamSpec {
            name: "seconds",
            kind: ParamKind::Float,
            default: "0.01",
            doc: "seconds of work per repetition, divided evenly among the ranks",
        },
    ],
);

impl Workload for DebugMpi {
    fn description(&self) -> &'static Description {
        &DEBUG_MPI
    }
    fn problem_size(&self, _params: &Params) -> u64 {
        0
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        DebugMpiInstance::prepare(params, 0, 1)
    }
    #[cfg(feature = "mpi")]
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &super::Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        use mpi::traits::Communicator;
        DebugMpiInstance::prepare(params, comm.rank(), comm.size())
    }
}

struct DebugMpiInstance {
    mode: String,
    /// Seconds this rank sleeps per repetition.
    share_s: f64,
    rank: i32,
}

impl DebugMpiInstance {
    /// The instance of rank `rank` of `size`, or rank 1's preparation error in mode "error".
    fn prepare(params: &Params, rank: i32, size: i32) -> anyhow::Result<Box<dyn Instance>> {
        let mode = params.str("mode").to_string();
        let seconds = params.float("seconds");
        if !(0.0..=86_400.0).contains(&seconds) {
            bail!("mpi.debug: seconds = {seconds} is outside 0..=86400");
        }
        if rank == 1 && mode == "error" {
            bail!("mpi.debug: rank 1 failed to prepare on purpose (mode = \"error\")");
        }
        Ok(Box::new(DebugMpiInstance {
            mode,
            share_s: seconds / f64::from(size.max(1)),
            rank,
        }))
    }
}

impl Instance for DebugMpiInstance {
    fn run(&mut self) {
        std::thread::sleep(std::time::Duration::from_secs_f64(self.share_s));
        if self.rank == 1 {
            match self.mode.as_str() {
                "panic" => panic!("mpi.debug: rank 1 panicked on purpose (mode = \"panic\")"),
                "exit" => {
                    eprintln!("mpi.debug: rank 1 exits without finalising MPI (mode = \"exit\")");
                    std::process::exit(3)
                }
                _ => {}
            }
        }
    }
    fn verify(&mut self) -> Result<(), String> {
        if self.rank == 1 && self.mode == "wrong" {
            Err(
                "mpi.debug: rank 1's result 41 differs from the reference 42 (mode = \"wrong\")"
                    .into(),
            )
        } else {
            Ok(())
        }
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("rank_plus_one", f64::from(self.rank + 1))]
    }
}

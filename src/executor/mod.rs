//! Executors: how points are launched, and the sweep loop that drives them.
//!
//! An [`Executor`] turns one point into one record. [`LocalExecutor`] runs each point as its own
//! process (`scalelab point <run-dir> --spec <run-dir>/specs/<id>.json`, reading that one point
//! and not the whole plan; under `mpirun -n <ranks>` when the point has several ranks or an MPI
//! workload), one at a time so timings never overlap, and records from
//! outside what the point could not record itself (a time limit, an abort, a signal, a rank that
//! ended the MPI job).
//! [`MockExecutor`] is its deterministic twin: it writes records whose times follow a model
//! `t(p) = a + b/p`, so the scaling math and the sweep loop are testable against known answers.
//! [`sweep`] runs every unfinished point of a plan through an executor, writes each record as it
//! arrives and reports progress; a failed point fails only itself. An [`Interrupt`] (SIGINT,
//! SIGTERM, SIGHUP) ends the sweep between points, or stops the point in flight without recording
//! it, so that a resume measures it again.

mod interrupt;
mod local;
mod mock;

pub use interrupt::{signal_name, Interrupt, Interrupted};
pub use local::{mpirun_args, write_spec, LocalExecutor};
pub use mock::MockExecutor;

use anyhow::Result;

use crate::plan::{Plan, Point};
use crate::results::{PointRecord, RunDir, Status};

/// Launches one point and returns its record, which it has written to the run directory.
pub trait Executor {
    /// Short name recorded in provenance ("local", "mock").
    fn name(&self) -> &'static str;
    /// Run `point` and make sure its record exists in `run`. An `Err` means the executor itself
    /// failed (e.g. the run directory is unwritable), not the point, or, as [`Interrupted`], that
    /// a signal stopped the point and nothing was recorded for it.
    fn execute(&mut self, run: &RunDir, point: &Point) -> Result<PointRecord>;
    /// Wait before each point, at most `wait.bound`, until the machine is quiet (the manifest's
    /// `wait_idle`). Executors that measure nothing (the mock) ignore it.
    fn set_wait_idle(&mut self, _wait: crate::load::WaitIdle) {}
}

/// Counts of a finished sweep.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Points measured now that succeeded.
    pub ok: usize,
    /// Points measured now that failed (any status but ok).
    pub failed: usize,
    /// Points skipped because a record already existed (resume).
    pub skipped: usize,
    /// Of the skipped points, how many had failed before.
    pub skipped_failed: usize,
    /// Set when a signal ended the sweep early.
    pub interrupted: Option<Interruption>,
}

/// How a signal ended a sweep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interruption {
    pub signal: i32,
    /// The point that was running and was stopped without a record (None: between points).
    pub in_flight: Option<String>,
}

impl SweepOutcome {
    /// Whether any point of the run, measured now or before, failed.
    pub fn any_failed(&self) -> bool {
        self.failed + self.skipped_failed > 0
    }
}

/// Run every point of `plan` that has no usable record in `run` yet, in plan order. The caller
/// holds the run's lock ([`RunDir::lock`]).
///
/// `on_record` is called after each point (for live output); `on_start` before it. Once
/// `interrupt` has seen a signal no further point starts.
pub fn sweep(
    run: &RunDir,
    plan: &Plan,
    executor: &mut dyn Executor,
    interrupt: &Interrupt,
    mut on_start: impl FnMut(&Point, usize),
    mut on_record: impl FnMut(&PointRecord),
) -> Result<SweepOutcome> {
    let mut outcome = SweepOutcome::default();
    for (i, point) in plan.points.iter().enumerate() {
        if let Some(signal) = interrupt.signal() {
            outcome.interrupted = Some(Interruption {
                signal,
                in_flight: None,
            });
            break;
        }
        // A record that cannot be used (corrupt, another point's, impossible times) is no result:
        // measure the point again (the new record replaces it atomically) rather than stop the
        // sweep. The caller names such records before the sweep (`RunDir::survey`).
        if let Ok(Some(rec)) = run.load_record(point) {
            outcome.skipped += 1;
            if rec.status != Status::Ok {
                outcome.skipped_failed += 1;
            }
            continue;
        }
        on_start(point, i);
        let rec = match executor.execute(run, point) {
            Ok(rec) => rec,
            Err(e) => match e.downcast_ref::<Interrupted>() {
                Some(stopped) => {
                    outcome.interrupted = Some(Interruption {
                        signal: stopped.signal,
                        in_flight: Some(point.id.clone()),
                    });
                    break;
                }
                None => return Err(e),
            },
        };
        if rec.status == Status::Ok {
            outcome.ok += 1;
        } else {
            outcome.failed += 1;
        }
        on_record(&rec);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn plan() -> Plan {
        let m = crate::manifest::parse(
            Path::new("m.toml"),
            "name = \"m\"\nrepetitions = 1\nwarmup = 0\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2, 0.3]\n",
        )
        .unwrap();
        crate::plan::expand(&m).unwrap()
    }

    /// Records the first point, then acts as if Ctrl-C stopped the second one in flight.
    struct StoppedAtSecond {
        mock: MockExecutor,
        calls: usize,
        interrupt: Interrupt,
    }

    impl Executor for StoppedAtSecond {
        fn name(&self) -> &'static str {
            "stopped"
        }
        fn execute(&mut self, run: &RunDir, point: &Point) -> Result<PointRecord> {
            self.calls += 1;
            if self.calls == 2 {
                self.interrupt.raise(2);
                return Err(Interrupted { signal: 2 }.into());
            }
            self.mock.execute(run, point)
        }
    }

    #[test]
    fn an_interrupt_ends_the_sweep_and_leaves_the_point_in_flight_unrecorded() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let plan = plan();
        let interrupt = Interrupt::never();
        let mut ex = StoppedAtSecond {
            mock: MockExecutor {
                serial_s: 0.1,
                parallel_s: 0.9,
                jitter: 0.0,
            },
            calls: 0,
            interrupt: interrupt.clone(),
        };
        let out = sweep(&run, &plan, &mut ex, &interrupt, |_, _| {}, |_| {}).unwrap();
        assert_eq!(ex.calls, 2, "no point starts after the interrupt");
        assert_eq!(out.ok, 1);
        assert_eq!(out.failed, 0);
        assert_eq!(
            out.interrupted,
            Some(Interruption {
                signal: 2,
                in_flight: Some(plan.points[1].id.clone()),
            })
        );
        assert!(run.record(&plan.points[0].id).exists());
        assert!(!run.record(&plan.points[1].id).exists());

        // Interrupted before it began: nothing runs, nothing is in flight.
        let mut ex = MockExecutor {
            serial_s: 0.1,
            parallel_s: 0.9,
            jitter: 0.0,
        };
        let out = sweep(&run, &plan, &mut ex, &interrupt, |_, _| {}, |_| {}).unwrap();
        assert_eq!(out.ok, 0);
        assert_eq!(
            out.interrupted,
            Some(Interruption {
                signal: 2,
                in_flight: None
            })
        );
        assert!(!run.record(&plan.points[1].id).exists());
    }
}

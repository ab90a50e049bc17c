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
//! arrives and reports progress; a failed point fails only itself.

mod local;
mod mock;

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
    /// failed (e.g. the run directory is unwritable), not the point.
    fn execute(&mut self, run: &RunDir, point: &Point) -> Result<PointRecord>;
}

/// Counts of a finished sweep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Points measured now that succeeded.
    pub ok: usize,
    /// Points measured now that failed (any status but ok).
    pub failed: usize,
    /// Points skipped because a record already existed (resume).
    pub skipped: usize,
    /// Of the skipped points, how many had failed before.
    pub skipped_failed: usize,
}

impl SweepOutcome {
    /// Whether any point of the run, measured now or before, failed.
    pub fn any_failed(&self) -> bool {
        self.failed + self.skipped_failed > 0
    }
}

/// Run every point of `plan` that has no record in `run` yet, in plan order.
///
/// `on_record` is called after each point (for live output); `on_start` before it.
pub fn sweep(
    run: &RunDir,
    plan: &Plan,
    executor: &mut dyn Executor,
    mut on_start: impl FnMut(&Point, usize),
    mut on_record: impl FnMut(&PointRecord),
) -> Result<SweepOutcome> {
    let mut outcome = SweepOutcome::default();
    for (i, point) in plan.points.iter().enumerate() {
        match run.load_record(&point.id) {
            Ok(Some(rec)) => {
                outcome.skipped += 1;
                if rec.status != Status::Ok {
                    outcome.skipped_failed += 1;
                }
                continue;
            }
            Ok(None) => {}
            // A record that cannot be read is no result: measure the point again (the new record
            // replaces it atomically) rather than stop the sweep.
            Err(e) => eprintln!("warning: {e:#}; measuring that point again"),
        }
        on_start(point, i);
        let rec = executor.execute(run, point)?;
        if rec.status == Status::Ok {
            outcome.ok += 1;
        } else {
            outcome.failed += 1;
        }
        on_record(&rec);
    }
    Ok(outcome)
}

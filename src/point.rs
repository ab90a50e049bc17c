//! The point runner: what `scalelab point <run-dir> <point-id>` does.
//!
//! Every launch path (direct, mpirun, srun, a SLURM array task) ends here, so every path produces the
//! same record. The runner builds a rayon pool of exactly `threads` workers (never the global pool),
//! and inside it: prepares the workload's instance (untimed), runs the warm-ups, then times each
//! repetition with a monotonic clock and verifies its result right after. The record is written
//! atomically to `points/<id>.json`, whatever happened: a preparation error, a failed verification
//! or a panic each give a record with its status and reason. What the runner cannot record itself
//! (an abort, a signal, a time limit) the executor records from outside.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};

use crate::plan::Point;
use crate::results::{now_rfc3339, PointRecord, Repetition, RunDir, Status};
use crate::workload::Work;

/// Run point `id` of the run in `run` and write its record. Returns the record.
///
/// Errors only when the record cannot be produced at all (no such run or point, unwritable folder);
/// a point that fails still returns `Ok` with a failed record.
pub fn run(run: &RunDir, id: &str) -> Result<PointRecord> {
    let plan = run.load_plan()?;
    let point = plan
        .points
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| {
            anyhow!(
                "no point `{id}` in {}; `scalelab plan` lists the point ids of a manifest",
                run.plan().display()
            )
        })?;
    let record = measure(&point);
    run.write_record(&record)?;
    Ok(record)
}

/// A record of `point` with no repetitions yet: work and size filled from its workload.
pub fn unmeasured(point: &Point, status: Status, reason: String) -> PointRecord {
    let mut record = PointRecord {
        point: point.clone(),
        status,
        reason,
        repetitions: Vec::new(),
        work: Work::default(),
        size: 0,
        size_unit: String::new(),
        backend: String::new(),
        host: crate::machine::Machine::detect_quick().host,
        started: now_rfc3339(),
        finished: now_rfc3339(),
    };
    if let Some(w) = point.workload() {
        record.work = w.work(&point.params);
        record.size = w.problem_size(&point.params);
        record.size_unit = w.size_unit().to_string();
        record.backend = w.backend().as_str().to_string();
    }
    record
}

/// Measure `point` in this process and return its record (not written).
pub fn measure(point: &Point) -> PointRecord {
    let mut record = unmeasured(point, Status::Ok, String::new());
    if point.workload().is_none() {
        record.status = Status::Failed;
        record.reason = format!(
            "workload `{}` is not in this build of scalelab; see `scalelab list`",
            point.workload
        );
        return record;
    }
    match catch_panic(|| time_repetitions(point, &mut record.repetitions)) {
        Ok(Ok(())) => {}
        Ok(Err(Failure { status, reason })) => {
            record.status = status;
            record.reason = reason;
        }
        Err(panic_message) => {
            record.status = Status::Crashed;
            record.reason = format!("panicked: {panic_message}");
        }
    }
    record.finished = now_rfc3339();
    record
}

struct Failure {
    status: Status,
    reason: String,
}

fn time_repetitions(point: &Point, reps: &mut Vec<Repetition>) -> Result<(), Failure> {
    let failed = |reason: String| Failure {
        status: Status::Failed,
        reason,
    };
    let workload = point.workload().expect("checked by the caller");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(point.resources.threads as usize)
        .thread_name(|i| format!("scalelab-worker-{i}"))
        .build()
        .map_err(|e| {
            failed(format!(
                "could not start {} threads: {e}",
                point.resources.threads
            ))
        })?;
    pool.install(|| {
        let mut instance = workload
            .prepare(&point.params)
            .with_context(|| format!("preparing {}", point.workload))
            .map_err(|e| failed(format!("{e:#}")))?;
        for _ in 0..point.warmup {
            instance.run();
        }
        for i in 0..point.repetitions {
            let t = Instant::now();
            instance.run();
            let seconds = t.elapsed().as_secs_f64();
            let check = instance.verify();
            reps.push(Repetition {
                seconds,
                verified: check.is_ok(),
                metrics: instance
                    .metrics()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
            if let Err(why) = check {
                return Err(Failure {
                    status: Status::VerifyFailed,
                    reason: format!("repetition {}: {why}", i + 1),
                });
            }
        }
        Ok(())
    })
}

/// The message of the last panic seen by [`catch_panic`]'s hook, with its location.
static PANIC_MESSAGE: Mutex<Option<String>> = Mutex::new(None);

/// Run `f`, turning a panic (in this thread or a rayon worker it waits on) into `Err(message)`.
/// The panic is still printed to stderr (the point's log) by the default hook.
fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    let default_hook = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut slot) = PANIC_MESSAGE.lock() {
            slot.get_or_insert(format!("{msg}{at}"));
        }
        default_hook(info);
    }));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let _ = panic::take_hook();
    result.map_err(|_| {
        PANIC_MESSAGE
            .lock()
            .ok()
            .and_then(|mut s| s.take())
            .unwrap_or_else(|| "(no message)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Resources, Scaling};
    use crate::value::Value;
    use crate::workload::Params;

    fn debug_point(workload: &str, key: &str, value: Value) -> Point {
        Point {
            id: "test".into(),
            study: 0,
            study_name: workload.into(),
            workload: workload.into(),
            scaling: Scaling::Strong,
            resources: Resources {
                threads: 2,
                ..Resources::default()
            },
            params: Params([(key.to_string(), value)].into_iter().collect()),
            repetitions: 3,
            warmup: 1,
            timeout_s: 60.0,
            oversubscribed: false,
        }
    }

    #[test]
    fn a_good_point_times_every_repetition() {
        let rec = measure(&debug_point("debug.sleep", "seconds", Value::Float(0.001)));
        assert_eq!(rec.status, Status::Ok, "{}", rec.reason);
        assert_eq!(rec.repetitions.len(), 3);
        assert!(rec
            .repetitions
            .iter()
            .all(|r| r.verified && r.seconds >= 0.001));
    }

    #[test]
    fn failures_become_records() {
        let rec = measure(&debug_point(
            "debug.fail",
            "mode",
            Value::Text("panic".into()),
        ));
        assert_eq!(rec.status, Status::Crashed);
        assert!(
            rec.reason
                .starts_with("panicked: debug.fail: panicked on purpose"),
            "{}",
            rec.reason
        );

        let rec = measure(&debug_point(
            "debug.fail",
            "mode",
            Value::Text("wrong".into()),
        ));
        assert_eq!(rec.status, Status::VerifyFailed);
        assert_eq!(rec.repetitions.len(), 1);
        assert!(!rec.repetitions[0].verified);
        assert!(
            rec.reason
                .starts_with("repetition 1: debug.fail: result 41 differs"),
            "{}",
            rec.reason
        );

        let rec = measure(&debug_point(
            "debug.fail",
            "mode",
            Value::Text("error".into()),
        ));
        assert_eq!(rec.status, Status::Failed);
        assert!(
            rec.reason.contains("prepare failed on purpose"),
            "{}",
            rec.reason
        );

        let rec = measure(&debug_point("no.such", "mode", Value::Text("x".into())));
        assert_eq!(rec.status, Status::Failed);
        assert!(rec.reason.contains("not in this build"), "{}", rec.reason);
    }
}

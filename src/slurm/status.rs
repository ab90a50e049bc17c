//! Where each point of a SLURM run stands, and what `--resume` does about it.
//!
//! The point's record decides when it exists (a point that wrote `verify_failed` failed, whatever
//! SLURM says). Without a record, the task it was last submitted as decides, from `sacct`: pending,
//! running, or how SLURM ended it (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, FAILED, CANCELLED), with the
//! sacct lines and the end of the task's output as evidence.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::sacct::{JobState, SacctRow, Task};
use super::shape::{Override, Shape};
use super::submit::Jobs;
use super::units::{format_mem_mb, format_time, parse_reported_mem_mb, parse_time_s};
use super::RetryPolicy;
use crate::plan::{Plan, Point};
use crate::results::{PointRecord, RunDir, Status};

/// Lines of a task's output shown as evidence.
pub const LOG_TAIL_LINES: usize = 6;

/// A point's state in a SLURM run.
#[derive(Clone, Debug, PartialEq)]
pub enum PointState {
    /// Its record says ok.
    Finished,
    Pending,
    Running,
    Failed(Failure),
    /// Never submitted (or its submission was not recorded).
    NotSubmitted,
}

/// Why a point failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Failure {
    /// The point ran and its result differed from the reference.
    Verify,
    /// The point recorded another failure (crashed, failed to prepare, its own time limit).
    Point(Status),
    /// SLURM ended the task before the point could record anything.
    Slurm(JobState),
    /// The task ended normally but left no record.
    Lost,
}

impl PointState {
    /// The word `status` prints.
    pub fn label(&self) -> String {
        match self {
            PointState::Finished => "finished".into(),
            PointState::Pending => "pending".into(),
            PointState::Running => "running".into(),
            PointState::NotSubmitted => "not submitted".into(),
            PointState::Failed(Failure::Verify) => "verify_failed".into(),
            PointState::Failed(Failure::Point(s)) => s.as_str().into(),
            PointState::Failed(Failure::Slurm(s)) => s.label(),
            PointState::Failed(Failure::Lost) => "no record (task ended without one)".into(),
        }
    }
}

/// One point's status with its evidence.
#[derive(Clone, Debug)]
pub struct PointStatus<'a> {
    pub point: &'a Point,
    pub state: PointState,
    /// `<job>_<task>` (array) or `<job> task <i>` (packed), when submitted.
    pub job: Option<String>,
    /// The record's reason, the sacct lines of the task.
    pub evidence: Vec<String>,
    /// The task's output file, and its last lines.
    pub log: Option<PathBuf>,
    pub log_tail: Vec<String>,
    /// What the task asked for, from sacct (ReqMem, Timelimit).
    pub req_mem_mb: Option<u64>,
    pub time_limit_s: Option<u64>,
}

/// The sacct rows of a run, indexed: allocation rows by (job, task), step rows by (job, task),
/// pending array tasks by (job, task). A packed job's rows have no task.
struct SacctIndex<'r> {
    alloc: HashMap<(&'r str, Option<u64>), &'r SacctRow>,
    steps: HashMap<(&'r str, Option<u64>), Vec<&'r SacctRow>>,
    pending: HashMap<(&'r str, u64), &'r SacctRow>,
}

impl<'r> SacctIndex<'r> {
    fn new(rows: &'r [SacctRow]) -> SacctIndex<'r> {
        let mut index = SacctIndex {
            alloc: HashMap::new(),
            steps: HashMap::new(),
            pending: HashMap::new(),
        };
        for row in rows {
            match (&row.task, &row.step) {
                (Task::Pending(tasks), _) => {
                    for &t in tasks {
                        index.pending.insert((&row.job, t), row);
                    }
                }
                (Task::One(t), None) => {
                    index.alloc.insert((&row.job, *t), row);
                }
                (Task::One(t), Some(_)) => index.steps.entry((&row.job, *t)).or_default().push(row),
            }
        }
        index
    }
}

/// The status of every point of `plan`: from the task it was last submitted as (by `sacct`'s
/// `rows`), then from its record, which, when there is one, is the truth about the point.
pub fn compute<'a>(
    run: &RunDir,
    plan: &'a Plan,
    jobs: &Jobs,
    rows: &[SacctRow],
) -> Vec<PointStatus<'a>> {
    let index = SacctIndex::new(rows);
    let mut round_of: HashMap<&str, u32> = HashMap::new();
    for r in &jobs.rounds {
        for j in &r.jobs {
            round_of.insert(&j.job_id, r.round);
        }
    }
    let latest = jobs.latest();
    plan.points
        .iter()
        .map(|p| {
            let mut st = PointStatus {
                point: p,
                state: PointState::NotSubmitted,
                job: None,
                evidence: Vec::new(),
                log: None,
                log_tail: Vec::new(),
                req_mem_mb: None,
                time_limit_s: None,
            };
            let record = run.load_record(p);
            if let Some(&(job, task, packed)) = latest.get(p.id.as_str()) {
                let logs = run
                    .root
                    .join("slurm")
                    .join(format!("round-{}", round_of.get(job).copied().unwrap_or(1)))
                    .join("logs");
                from_task(&mut st, &index, &logs, (job, task, packed));
            }
            from_record(&mut st, record);
            st
        })
        .collect()
}

/// Fill `st` from the task `(job, task, packed)` the point was last submitted as: its sacct lines
/// as evidence, what it asked for, its state, the end of its output (in `logs`).
fn from_task(
    st: &mut PointStatus<'_>,
    index: &SacctIndex<'_>,
    logs: &Path,
    (job, task, packed): (&str, u64, bool),
) {
    let (key, step_rows, log) = if packed {
        let own: Vec<&SacctRow> = index
            .steps
            .get(&(job, None))
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|r| r.step.as_deref() == Some(&task.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        ((job, None), own, logs.join(format!("{job}.out")))
    } else {
        let own = index
            .steps
            .get(&(job, Some(task)))
            .cloned()
            .unwrap_or_default();
        (
            (job, Some(task)),
            own,
            logs.join(format!("{job}_{task}.out")),
        )
    };
    st.job = Some(if packed {
        format!("{job} task {task}")
    } else {
        format!("{job}_{task}")
    });
    let alloc_row = index.alloc.get(&key).copied();
    if let Some(a) = alloc_row {
        st.evidence.push(format!("sacct: {}", a.line));
        st.req_mem_mb = parse_reported_mem_mb(&a.req_mem).ok();
        st.time_limit_s = parse_time_s(&a.timelimit).ok();
    }
    for s in &step_rows {
        st.evidence.push(format!("sacct: {}", s.line));
    }
    st.state = match alloc_row {
        None if !packed && index.pending.contains_key(&(job, task)) => PointState::Pending,
        // Just submitted: accounting has not caught up yet.
        None => PointState::Pending,
        Some(a) if packed => packed_state(&a.state, step_rows.last().copied()),
        Some(a) => match &a.state {
            JobState::Pending => PointState::Pending,
            JobState::Running => PointState::Running,
            JobState::Completed => PointState::Failed(Failure::Lost),
            state => PointState::Failed(Failure::Slurm(cause(
                state,
                step_rows.iter().map(|r| &r.state),
            ))),
        },
    };
    if log.exists() {
        st.log_tail = tail(&log, LOG_TAIL_LINES);
        st.log = Some(log);
    }
}

/// The state of a point of a packed job in state `job`, whose own step (if it started) is `step`.
fn packed_state(job: &JobState, step: Option<&SacctRow>) -> PointState {
    match (job, step) {
        (JobState::Pending, _) | (JobState::Running, None) => PointState::Pending,
        (_, Some(s)) if !s.state.ended() => PointState::Running,
        (_, Some(s)) if s.state == JobState::Completed => PointState::Failed(Failure::Lost),
        // The step failed; a job that ended by TIMEOUT (or NODE_FAIL) says why.
        (job, Some(s)) => PointState::Failed(Failure::Slurm(cause(&s.state, [job]))),
        (JobState::Completed, None) => PointState::Failed(Failure::Lost),
        // The job ended before this point's turn came.
        (job, None) => PointState::Failed(Failure::Slurm(job.clone())),
    }
}

/// The point's record, when there is one, decides its state; a record that cannot be read is
/// evidence, and a failure where SLURM says nothing else.
fn from_record(st: &mut PointStatus<'_>, record: Result<Option<PointRecord>>) {
    match record {
        Ok(Some(rec)) => {
            st.state = match rec.status {
                Status::Ok => PointState::Finished,
                Status::VerifyFailed => PointState::Failed(Failure::Verify),
                other => PointState::Failed(Failure::Point(other)),
            };
            if rec.status != Status::Ok {
                st.evidence.insert(0, format!("record: {}", rec.reason));
            }
        }
        Ok(None) => {}
        Err(e) => {
            st.evidence.insert(0, format!("record: {e:#}"));
            if st.state == PointState::NotSubmitted || st.state == PointState::Failed(Failure::Lost)
            {
                st.state = PointState::Failed(Failure::Point(Status::Failed));
            }
        }
    }
}

/// The failure class of a task that ended in `state`, refined by the `others` that belong to it
/// (its steps; for a packed point, its job): when the OOM killer ends a step, the allocation itself
/// only says FAILED (srun's exit code); when a packed job runs out of time, the point's step says
/// CANCELLED. The most specific class wins: OUT_OF_MEMORY, then TIMEOUT, NODE_FAIL, CANCELLED.
fn cause<'s>(state: &'s JobState, others: impl IntoIterator<Item = &'s JobState>) -> JobState {
    let rank = |s: &JobState| match s {
        JobState::OutOfMemory => 4,
        JobState::Timeout => 3,
        JobState::NodeFail => 2,
        JobState::Cancelled => 1,
        _ => 0,
    };
    others
        .into_iter()
        .chain(std::iter::once(state))
        .max_by_key(|s| rank(s))
        .filter(|s| rank(s) > rank(state))
        .unwrap_or(state)
        .clone()
}

/// The last `n` lines of a text file (lossy UTF-8), read from its end.
fn tail(path: &std::path::Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

/// What `sbatch --resume` does with one point.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Submit again, with these changes to memory and time.
    Resubmit(Override),
    /// Still pending or running: leave it alone.
    Wait,
    /// Not again, and why.
    Leave(String),
}

/// The retry policy applied to one point whose current shape is `shape` (override included).
pub fn decide(
    st: &PointStatus<'_>,
    shape: &Shape,
    current: Option<&Override>,
    policy: &RetryPolicy,
) -> Option<Decision> {
    let keep = current.copied().unwrap_or_default();
    Some(match &st.state {
        PointState::Finished => return None,
        PointState::Pending | PointState::Running => Decision::Wait,
        PointState::NotSubmitted => Decision::Resubmit(keep),
        PointState::Failed(Failure::Verify) => Decision::Leave(
            "its result was wrong (verify_failed); running it again gives the same wrong answer: fix the workload, then start a new run".into(),
        ),
        PointState::Failed(Failure::Slurm(JobState::OutOfMemory)) => {
            if policy.out_of_memory <= 1.0 {
                Decision::Leave("[slurm.retry] out_of_memory is off".into())
            } else {
                match shape.mem_mb.or(st.req_mem_mb) {
                    Some(mem) => Decision::Resubmit(Override {
                        mem_mb: Some((mem as f64 * policy.out_of_memory).ceil() as u64),
                        ..keep
                    }),
                    None => Decision::Leave(
                        "it ran out of memory but its memory request is unknown: set [slurm] mem".into(),
                    ),
                }
            }
        }
        PointState::Failed(Failure::Slurm(JobState::Timeout)) => {
            if policy.timeout <= 1.0 {
                Decision::Leave("[slurm.retry] timeout is off".into())
            } else {
                let base = st.time_limit_s.unwrap_or(shape.time_s).max(shape.time_s);
                Decision::Resubmit(Override {
                    time_s: Some((base as f64 * policy.timeout).ceil() as u64),
                    ..keep
                })
            }
        }
        PointState::Failed(_) => {
            if policy.failed {
                Decision::Resubmit(keep)
            } else {
                Decision::Leave("[slurm.retry] failed = false".into())
            }
        }
    })
}

/// How one decision reads: "with 4G (was 2G)", "with 00:04:00 (was 00:02:00)", "as before".
pub fn describe_change(shape: &Shape, new: &Override) -> String {
    let mut parts = Vec::new();
    if let Some(mem) = new.mem_mb.filter(|&m| Some(m) != shape.mem_mb) {
        let was = shape
            .mem_mb
            .map(format_mem_mb)
            .unwrap_or_else(|| "the default".into());
        parts.push(format!("--mem={} (was {was})", format_mem_mb(mem)));
    }
    if let Some(t) = new.time_s.filter(|&t| t != shape.time_s) {
        parts.push(format!(
            "--time={} (was {})",
            format_time(t),
            format_time(shape.time_s)
        ));
    }
    if parts.is_empty() {
        "as before".into()
    } else {
        format!("with {}", parts.join(" and "))
    }
}

/// Counts by state, in the order `status` prints them.
pub fn counts(statuses: &[PointStatus<'_>]) -> BTreeMap<&'static str, usize> {
    let mut c = BTreeMap::from([
        ("1 finished", 0),
        ("2 pending", 0),
        ("3 running", 0),
        ("4 failed", 0),
        ("5 not submitted", 0),
    ]);
    for s in statuses {
        let key = match s.state {
            PointState::Finished => "1 finished",
            PointState::Pending => "2 pending",
            PointState::Running => "3 running",
            PointState::Failed(_) => "4 failed",
            PointState::NotSubmitted => "5 not submitted",
        };
        *c.get_mut(key).expect("every key is present") += 1;
    }
    c
}

/// The text `scalelab status` prints: a count line, then each point that is not finished with its
/// state, job and evidence.
pub fn render(run: &RunDir, statuses: &[PointStatus<'_>]) -> String {
    let mut s = String::new();
    let c = counts(statuses);
    let _ = writeln!(
        s,
        "{}: {} point{}: {}",
        run.root.display(),
        statuses.len(),
        crate::units::plural(statuses.len()),
        c.iter()
            .map(|(k, v)| format!("{v} {}", &k[2..]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Every failure with its evidence; of the points still waiting, the first few.
    let waiting = statuses
        .iter()
        .filter(|s| !matches!(s.state, PointState::Finished | PointState::Failed(_)))
        .count();
    let mut shown_waiting = 0;
    for st in statuses.iter().filter(|s| s.state != PointState::Finished) {
        if !matches!(st.state, PointState::Failed(_)) {
            shown_waiting += 1;
            if shown_waiting > WAITING_ROWS {
                continue;
            }
        }
        let p = st.point;
        let _ = writeln!(
            s,
            "\n{}  {}  {}{}",
            p.id,
            st.state.label(),
            p.study_name,
            st.job
                .as_ref()
                .map(|j| format!("  job {j}"))
                .unwrap_or_default()
        );
        if matches!(st.state, PointState::Failed(_)) {
            for e in &st.evidence {
                let _ = writeln!(s, "    {e}");
            }
            if let Some(log) = &st.log {
                let shown = log.strip_prefix(&run.root).unwrap_or(log);
                let _ = writeln!(s, "    output ({}), last lines:", shown.display());
                for l in &st.log_tail {
                    let _ = writeln!(s, "      | {l}");
                }
            }
        }
    }
    if waiting > WAITING_ROWS {
        let _ = writeln!(
            s,
            "\n... and {} more pending, running or not submitted",
            waiting - WAITING_ROWS
        );
    }
    s
}

/// Points still pending, running or unsubmitted that `status` lists one by one.
pub const WAITING_ROWS: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::sacct::parse;
    use crate::slurm::shape::tests::point;
    use crate::slurm::submit::{JobRecord, Round};
    use crate::slurm::Settings;

    fn setup() -> (tempfile::TempDir, RunDir, Plan, Jobs) {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let ids = [
            "ok", "oom", "time", "fail", "cancel", "node", "wrong", "pend", "run", "lost", "quiet",
        ];
        let plan = Plan {
            experiment: "t".into(),
            manifest_sha256: String::new(),
            points: ids.iter().map(|id| point(id, 1, 1, 0)).collect(),
        };
        let jobs = Jobs {
            rounds: vec![Round {
                round: 1,
                submitted: String::new(),
                packed: false,
                jobs: vec![JobRecord {
                    job_id: "40".into(),
                    script: String::new(),
                    points: ids[..10].iter().map(|s| s.to_string()).collect(),
                }],
                collect: Some("41".into()),
            }],
        };
        let mut ok = crate::point_runner::unmeasured(&plan.points[0], Status::Ok, String::new());
        ok.repetitions.push(crate::results::Repetition {
            seconds: 1.0,
            verified: true,
            metrics: Default::default(),
            details: Default::default(),
        });
        run.write_record(&ok).unwrap();
        let wrong = crate::point_runner::unmeasured(
            &plan.points[6],
            Status::VerifyFailed,
            "result 41 differs from the reference 42".into(),
        );
        run.write_record(&wrong).unwrap();
        let logs = run.root.join("slurm/round-1/logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(
            logs.join("40_1.out"),
            "starting\nslurmstepd: error: Detected 1 oom_kill event in StepId=40_1.0. Some of the step tasks have been OOM Killed.\n",
        )
        .unwrap();
        (dir, run, plan, jobs)
    }

    const SACCT: &str = "\
40_0|COMPLETED|0:0|00:00:02||1G|00:01:00|node1
40_1|FAILED|1:0|00:00:05||1G|00:01:00|node1
40_1.batch|FAILED|1:0|00:00:05|0|||node1
40_1.0|OUT_OF_MEMORY|0:125|00:00:05|0|||node1
40_2|TIMEOUT|0:0|00:01:27||1G|00:01:00|node1
40_2.batch|CANCELLED|0:15|00:01:28|220K|||node1
40_3|FAILED|3:0|00:00:01||1G|00:01:00|node1
40_4|CANCELLED by 0|0:0|00:00:00||1G|00:01:00|node1
40_5|NODE_FAIL|0:0|00:00:10||1G|00:01:00|node1
40_6|FAILED|1:0|00:00:01||1G|00:01:00|node1
40_8|RUNNING|0:0|00:00:05||1G|00:01:00|node1
40_9|COMPLETED|0:0|00:00:01||1G|00:01:00|node1
40_[7]|PENDING|0:0|00:00:00||1G|00:01:00|None assigned
";

    #[test]
    fn every_failure_class_is_named_with_its_evidence() {
        let (_d, run, plan, jobs) = setup();
        let st = compute(&run, &plan, &jobs, &parse(SACCT));
        let labels: Vec<String> = st.iter().map(|s| s.state.label()).collect();
        assert_eq!(
            labels,
            [
                "finished",
                "OUT_OF_MEMORY",
                "TIMEOUT",
                "FAILED (exit code 3)",
                "CANCELLED",
                "NODE_FAIL",
                "verify_failed",
                "pending",
                "running",
                "no record (task ended without one)",
                "not submitted",
            ]
        );
        let oom = &st[1];
        assert_eq!(oom.job.as_deref(), Some("40_1"));
        assert_eq!(oom.req_mem_mb, Some(1024));
        assert_eq!(oom.time_limit_s, Some(60));
        assert_eq!(
            oom.evidence,
            [
                "sacct: 40_1|FAILED|1:0|00:00:05||1G|00:01:00|node1",
                "sacct: 40_1.batch|FAILED|1:0|00:00:05|0|||node1",
                "sacct: 40_1.0|OUT_OF_MEMORY|0:125|00:00:05|0|||node1"
            ]
        );
        assert!(
            oom.log_tail[1].contains("oom_kill event"),
            "{:?}",
            oom.log_tail
        );
        // The record beats SLURM's view: the wrong answer is verify_failed, not FAILED exit 1.
        assert_eq!(
            st[6].evidence[0],
            "record: result 41 differs from the reference 42"
        );
        let text = render(&run, &st);
        assert!(
            text.contains(
                ": 11 points: 1 finished, 1 pending, 1 running, 7 failed, 1 not submitted\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("      | slurmstepd: error: Detected 1 oom_kill event"),
            "{text}"
        );
    }

    #[test]
    fn packed_points_map_to_the_steps_of_their_job() {
        let (_d, run, plan, _) = setup();
        let jobs = Jobs {
            rounds: vec![Round {
                round: 1,
                submitted: String::new(),
                packed: true,
                jobs: vec![JobRecord {
                    job_id: "50".into(),
                    script: String::new(),
                    points: ["pend", "run", "lost", "quiet"].map(String::from).to_vec(),
                }],
                collect: None,
            }],
        };
        // Task 0's step ran out of memory, task 1 runs, tasks 2 and 3 wait for their turn.
        let rows = parse(
            "50|RUNNING|0:0|00:00:09||1G|00:04:00|node1\n\
             50.batch|RUNNING|0:0|00:00:09||||node1\n\
             50.0|OUT_OF_MEMORY|0:125|00:00:03|0|||node1\n\
             50.1|RUNNING|0:0|00:00:06||||node1\n",
        );
        let st = compute(&run, &plan, &jobs, &rows);
        let labels: Vec<String> = st[7..].iter().map(|s| s.state.label()).collect();
        assert_eq!(labels, ["OUT_OF_MEMORY", "running", "pending", "pending"]);
        assert_eq!(st[7].job.as_deref(), Some("50 task 0"));
        // The job ran out of time before reaching task 3: that point failed as TIMEOUT.
        let rows = parse(
            "50|TIMEOUT|0:0|00:04:30||1G|00:04:00|node1\n\
             50.0|COMPLETED|0:0|00:00:03|0|||node1\n\
             50.1|COMPLETED|0:0|00:00:03|0|||node1\n\
             50.2|CANCELLED|0:15|00:04:00|0|||node1\n",
        );
        let st = compute(&run, &plan, &jobs, &rows);
        let labels: Vec<String> = st[7..].iter().map(|s| s.state.label()).collect();
        assert_eq!(
            labels,
            [
                "no record (task ended without one)",
                "no record (task ended without one)",
                "TIMEOUT",
                "TIMEOUT"
            ]
        );
    }

    #[test]
    fn the_retry_policy_decides_per_class() {
        let (_d, run, plan, jobs) = setup();
        let st = compute(&run, &plan, &jobs, &parse(SACCT));
        let mut settings = Settings {
            time_s: Some(60),
            mem_mb: Some(1024),
            ..Settings::default()
        };
        let decide_all = |settings: &Settings| -> Vec<Option<Decision>> {
            st.iter()
                .map(|s| {
                    let shape = Shape::of(s.point, settings, None);
                    decide(s, &shape, None, &settings.retry)
                })
                .collect()
        };
        let d = decide_all(&settings);
        let again = Some(Decision::Resubmit(Override::default()));
        assert_eq!(d[0], None);
        assert_eq!(
            d[1],
            Some(Decision::Resubmit(Override {
                mem_mb: Some(2048),
                time_s: None
            }))
        );
        assert_eq!(
            d[2],
            Some(Decision::Resubmit(Override {
                mem_mb: None,
                time_s: Some(120)
            }))
        );
        assert_eq!(d[3], again);
        assert_eq!(d[4], again);
        assert_eq!(d[5], again);
        assert!(matches!(&d[6], Some(Decision::Leave(why)) if why.contains("verify_failed")));
        assert_eq!(d[7], Some(Decision::Wait));
        assert_eq!(d[8], Some(Decision::Wait));
        assert_eq!(d[9], again);
        assert_eq!(d[10], again);
        settings.retry = RetryPolicy {
            out_of_memory: 0.0,
            timeout: 0.0,
            failed: false,
        };
        let d = decide_all(&settings);
        assert!(
            matches!(&d[1], Some(Decision::Leave(why)) if why == "[slurm.retry] out_of_memory is off")
        );
        assert!(
            matches!(&d[2], Some(Decision::Leave(why)) if why == "[slurm.retry] timeout is off")
        );
        assert!(
            matches!(&d[3], Some(Decision::Leave(why)) if why == "[slurm.retry] failed = false")
        );
        // Never-submitted points are submitted whatever the policy.
        assert_eq!(d[10], again);
        let shape = Shape::of(&plan.points[1], &settings, None);
        assert_eq!(
            describe_change(
                &shape,
                &Override {
                    mem_mb: Some(2048),
                    time_s: Some(120)
                }
            ),
            "with --mem=2G (was 1G) and --time=00:02:00 (was 00:01:00)"
        );
    }
}

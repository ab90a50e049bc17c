//! Reading `sacct`: one batched query for every job of a run, parsed into per-task states.

use std::fmt;

/// The fields asked of `sacct`, in order (`sacct -P -n --format=...`).
pub const FORMAT: &str = "JobID,State,ExitCode,Elapsed,MaxRSS,ReqMem,Timelimit,NodeList";

/// A job's (or array task's) state as SLURM accounting reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Running,
    Completed,
    /// Ended with a non-zero exit code (the first number of ExitCode) or signal.
    Failed {
        exit: i32,
        signal: i32,
    },
    /// Went over its `--mem` (the cgroup's OOM killer ended it).
    OutOfMemory,
    /// Ran past its `--time`.
    Timeout,
    /// Its node failed.
    NodeFail,
    /// Cancelled by a user or an administrator (`CANCELLED by <uid>`).
    Cancelled,
    /// Anything else (PREEMPTED, BOOT_FAIL, DEADLINE, REQUEUED, SUSPENDED, ...), as printed.
    Other(String),
}

impl JobState {
    /// Parse sacct's State and ExitCode (`exit:signal`) columns.
    pub fn parse(state: &str, exit_code: &str) -> JobState {
        let word = state.split_whitespace().next().unwrap_or("");
        match word {
            "PENDING" => JobState::Pending,
            "RUNNING" | "COMPLETING" | "CONFIGURING" => JobState::Running,
            "COMPLETED" => JobState::Completed,
            "FAILED" => {
                let (exit, signal) = exit_code.split_once(':').unwrap_or((exit_code, "0"));
                JobState::Failed {
                    exit: exit.trim().parse().unwrap_or(-1),
                    signal: signal.trim().parse().unwrap_or(0),
                }
            }
            "OUT_OF_MEMORY" | "OUT_OF_ME+" => JobState::OutOfMemory,
            "TIMEOUT" => JobState::Timeout,
            "NODE_FAIL" => JobState::NodeFail,
            "CANCELLED" => JobState::Cancelled,
            other => JobState::Other(other.to_string()),
        }
    }

    /// Whether the job has ended (and will not change any more).
    pub fn ended(&self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }

    /// The name `scalelab status` prints: SLURM's, with the exit code for FAILED.
    pub fn label(&self) -> String {
        match self {
            JobState::Pending => "PENDING".into(),
            JobState::Running => "RUNNING".into(),
            JobState::Completed => "COMPLETED".into(),
            JobState::Failed { exit, signal: 0 } => format!("FAILED (exit code {exit})"),
            JobState::Failed { exit, signal } => {
                format!("FAILED (exit code {exit}, signal {signal})")
            }
            JobState::OutOfMemory => "OUT_OF_MEMORY".into(),
            JobState::Timeout => "TIMEOUT".into(),
            JobState::NodeFail => "NODE_FAIL".into(),
            JobState::Cancelled => "CANCELLED".into(),
            JobState::Other(s) => s.clone(),
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// Which task of which job a row describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Task {
    /// One array task (`123_4`) or a plain job (`123`, task `None`).
    One(Option<u64>),
    /// A pending array's not-yet-started tasks (`123_[0-5,7%2]`).
    Pending(Vec<u64>),
}

/// One line of `sacct -P -n --format=FORMAT`.
#[derive(Clone, Debug, PartialEq)]
pub struct SacctRow {
    /// The array's (or plain job's) id: `123` of `123_4`.
    pub job: String,
    pub task: Task,
    /// The step: `None` for the allocation itself, `Some("batch")`, `Some("0")`, ...
    pub step: Option<String>,
    pub state: JobState,
    pub exit_code: String,
    pub elapsed: String,
    pub max_rss: String,
    pub req_mem: String,
    pub timelimit: String,
    pub nodelist: String,
    /// The line as sacct printed it (the evidence `status` shows).
    pub line: String,
}

/// Parse sacct's parsable output (`-P -n --format=FORMAT`); lines that do not fit are skipped.
pub fn parse(text: &str) -> Vec<SacctRow> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<SacctRow> {
    let f: Vec<&str> = line.trim_end().split('|').collect();
    if f.len() < 8 || f[0].is_empty() {
        return None;
    }
    let (id, step) = match f[0].split_once('.') {
        Some((id, step)) => (id, Some(step.to_string())),
        None => (f[0], None),
    };
    let (job, task) = match id.split_once('_') {
        None => (id, Task::One(None)),
        Some((job, t)) => match t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            Some(ranges) => (job, Task::Pending(expand_ranges(ranges)?)),
            None => (job, Task::One(Some(t.parse().ok()?))),
        },
    };
    if job.is_empty() || !job.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some(SacctRow {
        job: job.to_string(),
        task,
        step,
        state: JobState::parse(f[1], f[2]),
        exit_code: f[2].to_string(),
        elapsed: f[3].to_string(),
        max_rss: f[4].to_string(),
        req_mem: f[5].to_string(),
        timelimit: f[6].to_string(),
        nodelist: f[7].to_string(),
        line: line.trim_end().to_string(),
    })
}

/// `0-5,7,9-10%2` → [0, 1, 2, 3, 4, 5, 7, 9, 10] (the throttle is dropped).
fn expand_ranges(spec: &str) -> Option<Vec<u64>> {
    let spec = spec.split('%').next()?;
    let mut out = Vec::new();
    for part in spec.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u64, u64) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > 10_000_000 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_exit_codes() {
        assert_eq!(JobState::parse("COMPLETED", "0:0"), JobState::Completed);
        assert_eq!(
            JobState::parse("FAILED", "3:0"),
            JobState::Failed { exit: 3, signal: 0 }
        );
        assert_eq!(
            JobState::parse("CANCELLED by 0", "0:15"),
            JobState::Cancelled
        );
        assert_eq!(
            JobState::parse("OUT_OF_MEMORY", "0:125"),
            JobState::OutOfMemory
        );
        assert_eq!(JobState::parse("TIMEOUT", "0:0"), JobState::Timeout);
        assert_eq!(JobState::parse("NODE_FAIL", "0:0"), JobState::NodeFail);
        assert_eq!(
            JobState::parse("PREEMPTED", "0:0"),
            JobState::Other("PREEMPTED".into())
        );
        assert_eq!(
            JobState::parse("FAILED", "1:0").label(),
            "FAILED (exit code 1)"
        );
        assert!(!JobState::Running.ended());
        assert!(JobState::Timeout.ended());
    }

    #[test]
    fn array_tasks_steps_and_pending_ranges() {
        let rows = parse(
            "12_3|OUT_OF_MEMORY|0:125|00:00:04||100M|00:10:00|node1\n\
             12_3.batch|OUT_OF_MEMORY|0:125|00:00:04|102400K|||node1\n\
             12_[4-6,9%2]|PENDING|0:0|00:00:00||100M|00:10:00|None assigned\n\
             13|TIMEOUT|0:0|00:01:02||1G|00:01:00|node1\n\
             13.0|CANCELLED by 0|0:15|00:01:03|5000K|||node1\n\
             garbage line\n",
        );
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].job, "12");
        assert_eq!(rows[0].task, Task::One(Some(3)));
        assert_eq!(rows[0].step, None);
        assert_eq!(rows[0].state, JobState::OutOfMemory);
        assert_eq!(rows[1].step.as_deref(), Some("batch"));
        assert_eq!(rows[2].task, Task::Pending(vec![4, 5, 6, 9]));
        assert_eq!(rows[3].task, Task::One(None));
        assert_eq!(rows[3].state, JobState::Timeout);
        assert_eq!(rows[4].step.as_deref(), Some("0"));
        assert_eq!(rows[4].max_rss, "5000K");
    }
}

//! The local executor: each point in its own process, one at a time, with a time limit.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use wait_timeout::ChildExt;

use super::Executor;
use crate::plan::Point;
use crate::results::{now_rfc3339, PointRecord, RunDir, Status};

/// Runs `<program> point <run-dir> <point-id>` for each point, with the point's stdout and stderr
/// in `logs/<id>.txt`, and kills it at the point's time limit.
pub struct LocalExecutor {
    /// The scalelab binary to launch (normally the running one).
    pub program: PathBuf,
}

impl LocalExecutor {
    /// An executor that launches the running binary.
    pub fn current() -> Result<LocalExecutor> {
        let program = std::env::current_exe().context("finding the scalelab binary")?;
        Ok(LocalExecutor { program })
    }
}

impl Executor for LocalExecutor {
    fn name(&self) -> &'static str {
        "local"
    }

    fn execute(&mut self, run: &RunDir, point: &Point) -> Result<PointRecord> {
        let log_path = run.log(&point.id);
        std::fs::create_dir_all(run.logs_dir())?;
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let started = now_rfc3339();
        let mut cmd = Command::new(&self.program);
        cmd.arg("point")
            .arg(&run.root)
            .arg(&point.id)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        die_with_parent(&mut cmd);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("launching {}", self.program.display()))?;
        let limit = Duration::from_secs_f64(point.timeout_s.max(0.001));
        let status = match child.wait_timeout(limit)? {
            Some(status) => status,
            None => {
                let _ = child.kill();
                let _ = child.wait();
                let reason = format!(
                    "exceeded its time limit of {}; raise `timeout` in the manifest or shrink the point",
                    human_seconds(point.timeout_s)
                );
                return record_failure(run, point, Status::Timeout, reason, started);
            }
        };
        match run.load_record(&point.id)? {
            Some(rec) => Ok(rec),
            None => {
                let reason = format!(
                    "{}; last output:\n{}",
                    describe_exit(status),
                    tail(&log_path, 12)
                );
                record_failure(run, point, Status::Crashed, reason, started)
            }
        }
    }
}

/// Ask the kernel to kill the point's process when this one dies (even by SIGKILL), so that an
/// interrupted sweep leaves no orphan that would write a record while a resumed run measures the
/// same point.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the child's own process attributes.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}

/// Write and return the record of a point that could not record itself.
pub(crate) fn record_failure(
    run: &RunDir,
    point: &Point,
    status: Status,
    reason: String,
    started: String,
) -> Result<PointRecord> {
    let mut rec = crate::point::unmeasured(point, status, reason);
    rec.started = started;
    run.write_record(&rec)?;
    Ok(rec)
}

fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                4 => " (SIGILL)",
                6 => " (SIGABRT: the process aborted)",
                7 => " (SIGBUS)",
                8 => " (SIGFPE)",
                9 => " (SIGKILL: killed, often by the out-of-memory killer)",
                11 => " (SIGSEGV: invalid memory access)",
                15 => " (SIGTERM)",
                _ => "",
            };
            return format!(
                "the point's process was killed by signal {sig}{name} before writing its record"
            );
        }
    }
    match status.code() {
        Some(code) => {
            format!("the point's process exited with status {code} without writing its record")
        }
        None => "the point's process ended without writing its record".into(),
    }
}

/// The last `lines` lines of a log file (at most 8 KiB read).
fn tail(path: &std::path::Path, lines: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(8192)));
        let _ = f.read_to_string(&mut text);
    }
    let all: Vec<&str> = text.lines().collect();
    let out = all[all.len().saturating_sub(lines)..].join("\n");
    if out.is_empty() {
        "(none)".into()
    } else {
        out
    }
}

/// Seconds as "90 s", "10 min", "1.5 h".
pub fn human_seconds(s: f64) -> String {
    if s < 120.0 {
        format!("{} s", (s * 100.0).round() / 100.0)
    } else if s < 7200.0 {
        format!("{} min", (s / 60.0 * 10.0).round() / 10.0)
    } else {
        format!("{} h", (s / 3600.0 * 10.0).round() / 10.0)
    }
}

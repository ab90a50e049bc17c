//! The local executor: each point in its own process, one at a time, with a time limit.
//!
//! Just before it launches a point, the executor writes the point alone to
//! `<run-dir>/specs/<id>.json` (see [`write_spec`]), and the launched process reads that file, not
//! `plan.json`: starting a point then costs the same at 10 points as at 10^6 (parsing a 10^5-point
//! plan took 0.35 s and 134 MB per point). The executor, which already holds the plan, writes
//! the spec rather than the planner writing an index of the plan: the run directory gains no
//! second copy of the plan that must be kept in step with `plan.json`, resume works on runs made
//! before specs existed, and the launched point is exactly the one the sweep chose. The spec is
//! removed once the point has ended (its record holds the point), and `specs/` with the last one;
//! a spec left by an interrupted run is overwritten on resume. A point that [`needs_mpi`](crate::point_runner::needs_mpi) is launched as
//! `mpirun -n <ranks> [--oversubscribe] [--allow-run-as-root] --bind-to core|none <scalelab> point
//! <run-dir> --spec <spec>` (see [`mpirun_args`]), and every rank reads the same spec; every other
//! point as `<scalelab> point <run-dir> --spec <spec>`. Either way the launched process's output
//! goes to `logs/<id>.txt`, it is stopped at the point's time limit and dies with this process, and
//! when it ends without a record this executor records the crash with the end of the log (and, for
//! an MPI job, the first panic message in it).
//! While the point runs, this process samples what else the machine does ([`crate::load::Sampler`],
//! from outside, so the measured process does no extra work) and adds it to the point's record as
//! its `load`; the point is told so ([`crate::load::SAMPLED_BY_PARENT`]) and does not sample again.
//! With `--wait-idle` it first waits, bounded, until the machine leaves the point its cores.
//! When the sweep is interrupted (SIGINT, SIGTERM, SIGHUP: see [`Interrupt`]) the point is stopped
//! and *not* recorded, even though its process died of the signal too: it did not crash, and a
//! resume must measure it again.

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use wait_timeout::ChildExt;

use super::{Executor, Interrupt, Interrupted};
use crate::plan::Point;
use crate::results::{PointRecord, RunDir, Status};
use crate::units::now_rfc3339;

/// Runs `<program> point <run-dir> --spec <run-dir>/specs/<id>.json` for each point, with the
/// point's stdout and stderr in `logs/<id>.txt`, and kills it at the point's time limit.
pub struct LocalExecutor {
    /// The scalelab binary to launch (normally the running one).
    pub program: PathBuf,
    /// Checked while a point runs: once set, the point is stopped and left unrecorded.
    pub interrupt: Interrupt,
    /// `--wait-idle`: before each point, wait (at most this long) until the machine is quiet.
    pub wait_idle: Option<crate::load::WaitIdle>,
}

/// How often a running point's wait looks at the interrupt flag.
const INTERRUPT_POLL: Duration = Duration::from_millis(50);

impl LocalExecutor {
    /// An executor that launches the running binary.
    pub fn current() -> Result<LocalExecutor> {
        let program = std::env::current_exe().context("finding the scalelab binary")?;
        Ok(LocalExecutor {
            program,
            interrupt: Interrupt::never(),
            wait_idle: None,
        })
    }

    /// The same executor, waiting before each point until the machine is quiet (`--wait-idle`).
    pub fn waiting_for_idle(self, wait_idle: Option<crate::load::WaitIdle>) -> LocalExecutor {
        LocalExecutor { wait_idle, ..self }
    }

    /// Wait before `point` until the machine is quiet enough for it ([`crate::load::wait_idle`]),
    /// saying what it waits for, and at the bound say that the point runs anyway.
    fn wait_for_idle(&self, point: &Point) -> Result<()> {
        let Some(how) = self.wait_idle else {
            return Ok(());
        };
        let needed = point.resources.cores_needed();
        let interrupt = &self.interrupt;
        let idle = crate::load::wait_idle(
            needed,
            how,
            |msg| {
                crate::errln!("point {}: {msg}", point.id);
            },
            || interrupt.signal().is_some(),
        );
        match idle {
            crate::load::Idle::GaveUp(other) => {
                crate::errln!(
                    "point {}: the machine is still busy after {} s (other work keeps {other:.1} cores busy); running the point anyway: the report marks it if it was disturbed",
                    point.id,
                    how.bound.as_secs()
                );
            }
            crate::load::Idle::Stopped => {
                if let Some(signal) = interrupt.signal() {
                    return Err(Interrupted { signal }.into());
                }
            }
            crate::load::Idle::Unknown => {
                crate::errln!(
                    "point {}: --wait-idle cannot tell how busy the machine is (no readable /proc/stat); running the point without waiting",
                    point.id
                );
            }
            crate::load::Idle::Quiet(_) => {}
        }
        Ok(())
    }

    /// The same executor, stopping its point when `interrupt` sees a signal.
    pub fn interruptible(self, interrupt: Interrupt) -> LocalExecutor {
        LocalExecutor { interrupt, ..self }
    }
}

impl Executor for LocalExecutor {
    fn set_wait_idle(&mut self, wait: crate::load::WaitIdle) {
        self.wait_idle = Some(wait);
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn execute(&mut self, run: &RunDir, point: &Point) -> Result<PointRecord> {
        self.wait_for_idle(point)?;
        let log_path = run.log(&point.id);
        std::fs::create_dir_all(run.logs_dir())?;
        let log =
            File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
        let started = now_rfc3339();
        let mpi = crate::point_runner::needs_mpi(point);
        let mut cmd = if mpi {
            match mpi_launcher(point, &self.program) {
                Ok(cmd) => cmd,
                Err(reason) => return record_failure(run, point, Status::Failed, reason, started),
            }
        } else {
            Command::new(&self.program)
        };
        let spec = write_spec(run, point)?;
        cmd.arg("point")
            .arg(&run.root)
            .arg("--spec")
            .arg(&spec)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // This process samples the machine while the point runs: the point need not.
        cmd.env(crate::load::SAMPLED_BY_PARENT, "1");
        // mpirun ends its ranks when it gets SIGTERM; SIGKILL would leave them orphaned.
        die_with_parent(&mut cmd, if mpi { Signal::Terminate } else { Signal::Kill });
        // Started just before the launch and finished just after the point is reaped, so that
        // the CPU time of reaped children between the two is the point's alone.
        let mut sampler = crate::load::Sampler::start(crate::load::OwnCpu::Children, "parent");
        let mut child = cmd
            .spawn()
            .with_context(|| format!("launching {}", cmd.get_program().to_string_lossy()))?;
        // Removed however the point ends (the `?`s below included).
        let _spec = RemoveOnDrop(spec);
        let status = match self.wait(&mut child, point, sampler.as_mut())? {
            Ended::Exited(status) => status,
            Ended::Interrupted(signal) => {
                stop(&mut child, mpi);
                // A record written in the instant before is a complete measurement: keep it.
                if let Ok(Some(rec)) = run.load_record(point) {
                    return Ok(rec);
                }
                return Err(Interrupted { signal }.into());
            }
            Ended::TimedOut => {
                stop(&mut child, mpi);
                // It may have written its record in the instant before the limit: keep that.
                if let Ok(Some(rec)) = run.load_record(point) {
                    return Ok(rec);
                }
                let reason = format!(
                    "exceeded its time limit of {}; raise `timeout` in the manifest or shrink the point",
                    crate::units::duration(point.timeout_s)
                );
                return record_failure(run, point, Status::Timeout, reason, started);
            }
        };
        let load = sampler.and_then(|s| s.finish(point.resources.cores_needed()));
        let exit = Exit {
            status,
            log: &log_path,
            mpi,
            started,
        };
        self.after_exit(run, point, exit, load)
    }
}

/// How a point's process ended, as [`LocalExecutor::wait`] saw it.
enum Ended {
    Exited(ExitStatus),
    /// The point's time limit passed; the process is still running.
    TimedOut,
    /// The sweep was interrupted by this signal; the process may still be running.
    Interrupted(i32),
}

/// A point's process that exited by itself, for [`LocalExecutor::after_exit`].
struct Exit<'a> {
    status: ExitStatus,
    /// Its output (`logs/<id>.txt`).
    log: &'a Path,
    mpi: bool,
    /// When it was launched (RFC 3339), for a failure's record.
    started: String,
}

impl LocalExecutor {
    /// Wait for `child` until it exits, its time limit passes or the sweep is interrupted,
    /// sampling the machine meanwhile.
    fn wait(
        &self,
        child: &mut Child,
        point: &Point,
        mut sampler: Option<&mut crate::load::Sampler>,
    ) -> Result<Ended> {
        let limit = Duration::from_secs_f64(point.timeout_s.max(0.001));
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if let Some(status) = child.wait_timeout(left.min(INTERRUPT_POLL))? {
                return Ok(Ended::Exited(status));
            }
            if let Some(sampler) = sampler.as_mut() {
                sampler.tick();
            }
            if let Some(signal) = self.interrupt.signal() {
                return Ok(Ended::Interrupted(signal));
            }
            if left.is_zero() {
                return Ok(Ended::TimedOut);
            }
        }
    }

    /// The record of a point whose process exited: its own, with the machine's `load` added, or a
    /// crash with the exit status and the end of its log (and an MPI job's first panic).
    fn after_exit(
        &self,
        run: &RunDir,
        point: &Point,
        exit: Exit<'_>,
        load: Option<crate::load::MachineLoad>,
    ) -> Result<PointRecord> {
        let written = match run.load_record(point) {
            Ok(written) => written,
            // Something the point wrote is no usable record: the point fails, and only itself.
            Err(e) => {
                let reason = format!(
                    "{}; its record is unusable: {e:#}",
                    describe_exit(exit.status)
                );
                return record_failure(run, point, Status::Crashed, reason, exit.started);
            }
        };
        if let Some(mut rec) = written {
            if load.is_some() {
                rec.load = load;
                run.write_record(&rec)?;
            }
            return Ok(rec);
        }
        // Ctrl-C reaches the point's process group too: it died of the interrupt, not of a fault
        // of its own. The handler ran before the wait returned (the signal was pending here before
        // the point could die of it), so the flag is set by now.
        if let Some(signal) = self.interrupt.signal() {
            return Err(Interrupted { signal }.into());
        }
        let panic = if exit.mpi {
            first_panic(exit.log).or_else(|| mpirun_culprit(exit.log))
        } else {
            None
        };
        let reason = match panic {
            Some(line) => format!(
                "{line}; {}; last output:\n{}",
                describe_exit(exit.status),
                tail(exit.log, 12)
            ),
            None => format!(
                "{}; last output:\n{}",
                describe_exit(exit.status),
                tail(exit.log, 12)
            ),
        };
        record_failure(run, point, Status::Crashed, reason, exit.started)
    }
}

/// Write `point` alone, as JSON, to its spec file `<run-dir>/specs/<id>.json`, and return the path.
///
/// Written through a temporary file and a rename, so that a process never reads a torn spec, but
/// not synced to disk: the spec is read at once by the process launched next, and after a crash a
/// resume writes it anew.
pub fn write_spec(run: &RunDir, point: &Point) -> Result<PathBuf> {
    let path = crate::point_runner::spec_path(run, &point.id);
    let dir = path.parent().expect("a spec path has a folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(&serde_json::to_vec(point)?)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A point's spec file, removed when the point has ended, with the `specs` folder once it is
/// empty (so a finished run has no `specs/`).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        // A spec that stays behind is harmless (a resume overwrites it), so failures are ignored;
        // `remove_dir` removes only an empty folder.
        let _ = std::fs::remove_file(&self.0);
        if let Some(dir) = self.0.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The `mpirun` command (without the scalelab part) that launches `point`, or why it cannot be
/// launched: a build without MPI, or no `mpirun` on `PATH`.
fn mpi_launcher(point: &Point, program: &Path) -> Result<Command, String> {
    if !cfg!(feature = "mpi") {
        return Err(format!(
            "point has {} ranks or an MPI workload, but this scalelab was built without MPI; \
             rebuild with `--features mpi`",
            point.resources.ranks
        ));
    }
    let mpirun = find_on_path("mpirun").ok_or_else(|| {
        "mpirun not found: install OpenMPI (scripts/install-deps.sh --mpi) or `module load openmpi`"
            .to_string()
    })?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut cmd = Command::new(mpirun);
    cmd.args(mpirun_args(point, cores, running_as_root()))
        .arg(program);
    Ok(cmd)
}

/// `mpirun`'s options for `point` on a machine with `cores` cores, before the program:
/// `-n <ranks>`; `--oversubscribe` when the point is oversubscribed or has more ranks than cores;
/// `--allow-run-as-root` when running as root (OpenMPI refuses root otherwise); `--bind-to none`
/// when a rank has several threads (binding would pin all of a rank's rayon workers to one core) or
/// when oversubscribed (OpenMPI refuses to bind more ranks than cores), else `--bind-to core`.
pub fn mpirun_args(point: &Point, cores: usize, as_root: bool) -> Vec<OsString> {
    let ranks = point.resources.ranks.max(1);
    let over = point.oversubscribed || ranks as usize > cores;
    let mut args: Vec<OsString> = vec!["-n".into(), ranks.to_string().into()];
    if over {
        args.push("--oversubscribe".into());
    }
    if as_root {
        args.push("--allow-run-as-root".into());
    }
    let bind = if point.resources.threads > 1 || over {
        "none"
    } else {
        "core"
    };
    args.push("--bind-to".into());
    args.push(bind.into());
    args
}

/// The first executable file named `name` in a folder of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| is_executable(p))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(target_os = "linux")]
fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(target_os = "linux"))]
fn running_as_root() -> bool {
    false
}

/// How a launched point is told to stop.
#[derive(Clone, Copy)]
enum Signal {
    /// SIGKILL: a plain point process, which holds nothing worth cleaning up.
    Kill,
    /// SIGTERM: `mpirun`, which then ends its ranks.
    Terminate,
}

/// Stop a point that ran past its time limit. `mpirun` gets SIGTERM first, so that it ends its
/// ranks, and SIGKILL only if it has not exited 5 s later.
fn stop(child: &mut Child, mpi: bool) {
    #[cfg(unix)]
    if mpi {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill has no memory preconditions; the pid is our unreaped child's.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            if let Ok(Some(_)) = child.wait_timeout(Duration::from_secs(5)) {
                return;
            }
        }
    }
    let _ = mpi;
    let _ = child.kill();
    let _ = child.wait();
}

/// Ask the kernel to send `signal` to the point's process when this one dies (even by SIGKILL), so
/// that an interrupted sweep leaves no orphan that would write a record while a resumed run
/// measures the same point.
#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command, signal: Signal) {
    use std::os::unix::process::CommandExt;
    let sig = match signal {
        Signal::Kill => libc::SIGKILL,
        Signal::Terminate => libc::SIGTERM,
    };
    // SAFETY: prctl is async-signal-safe and touches only the child's own process attributes.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, sig) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command, _signal: Signal) {}

/// Which rank ended an MPI job, as `mpirun` reports it at the end of the log: "mpirun noticed that
/// process rank 1 … exited on signal 9 (Killed)", or "rank 1 exited with status 3" from its
/// "Process name: [[job,1],1]" / "Exit code: 3" lines.
fn mpirun_culprit(log: &Path) -> Option<String> {
    let text = read_tail(log, 64 * 1024);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    if let Some(line) = lines
        .iter()
        .find(|l| l.starts_with("mpirun noticed that process rank"))
    {
        return Some(line.trim_start_matches("mpirun noticed that ").to_string());
    }
    let i = lines
        .iter()
        .position(|l| l.starts_with("Process name: [["))?;
    let rank = lines[i].rsplit(',').next()?.trim_end_matches(']');
    let code = lines
        .get(i + 1)?
        .strip_prefix("Exit code:")
        .map(str::trim)?;
    Some(format!("rank {rank} exited with status {code}"))
}

/// The first panic message of an MPI job's log: the point runner's own line
/// ("scalelab: rank 1 panicked: <message> at <file>:<line>; aborting the MPI job"), or else Rust's
/// "thread '…' panicked at <file>" line joined with the message on the line after it.
fn first_panic(log: &Path) -> Option<String> {
    let text = read_tail(log, 64 * 1024);
    let lines: Vec<&str> = text.lines().collect();
    if let Some(line) = lines.iter().find(|l| l.contains(" panicked: ")) {
        let line = line.trim_start_matches("scalelab: ");
        return Some(line.trim_end_matches("; aborting the MPI job").to_string());
    }
    let i = lines.iter().position(|l| l.contains("panicked"))?;
    let mut out = lines[i].trim().to_string();
    if out.ends_with(':') {
        if let Some(next) = lines.get(i + 1) {
            out.push(' ');
            out.push_str(next.trim());
        }
    }
    Some(out)
}

/// Write and return the record of a point that could not record itself.
pub(crate) fn record_failure(
    run: &RunDir,
    point: &Point,
    status: Status,
    reason: String,
    started: String,
) -> Result<PointRecord> {
    let mut rec = crate::point_runner::unmeasured(point, status, reason);
    rec.started = started;
    run.write_record(&rec)?;
    Ok(rec)
}

/// Why a point's process ended without a record, in words: the signal that killed it by name
/// (numbers differ between Unix systems, so they come from `libc` through signal-hook), with the
/// usual cause where there is one, else its exit status.
fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use signal_hook::consts::signal;
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            let name = match sig {
                signal::SIGABRT => " (SIGABRT: the process aborted)".to_string(),
                signal::SIGKILL => {
                    " (SIGKILL: killed, often by the out-of-memory killer)".to_string()
                }
                signal::SIGSEGV => " (SIGSEGV: invalid memory access)".to_string(),
                _ => signal_hook::low_level::signal_name(sig)
                    .map(|name| format!(" ({name})"))
                    .unwrap_or_default(),
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

/// The last `bytes` bytes of a file, as text (invalid UTF-8 replaced).
fn read_tail(path: &Path, bytes: u64) -> String {
    let mut raw = Vec::new();
    if let Ok(mut f) = File::open(path) {
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(bytes)));
        let _ = f.read_to_end(&mut raw);
    }
    String::from_utf8_lossy(&raw).into_owned()
}

/// The last `lines` lines of a log file (at most 8 KiB read).
fn tail(path: &Path, lines: usize) -> String {
    let text = read_tail(path, 8192);
    let all: Vec<&str> = text.lines().collect();
    let out = all[all.len().saturating_sub(lines)..].join("\n");
    if out.is_empty() {
        "(none)".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Resources, Scaling};
    use crate::workload::Params;

    /// A process killed by `sig` (a wait status whose low 7 bits are the signal).
    #[cfg(unix)]
    fn killed_by(sig: i32) -> ExitStatus {
        std::os::unix::process::ExitStatusExt::from_raw(sig)
    }

    #[cfg(unix)]
    #[test]
    fn an_exit_by_signal_names_the_signal_from_this_systems_numbers() {
        use signal_hook::consts::signal::{SIGBUS, SIGKILL, SIGSEGV, SIGXCPU};
        assert_eq!(
            describe_exit(killed_by(SIGKILL)),
            format!(
                "the point's process was killed by signal {SIGKILL} (SIGKILL: killed, often by \
                 the out-of-memory killer) before writing its record"
            )
        );
        assert!(describe_exit(killed_by(SIGSEGV)).contains("(SIGSEGV: invalid memory access)"));
        // Numbers that differ between Linux and the BSDs, and signals the list did not name.
        assert!(describe_exit(killed_by(SIGBUS)).contains(&format!("signal {SIGBUS} (SIGBUS)")));
        assert!(describe_exit(killed_by(SIGXCPU)).contains(&format!("signal {SIGXCPU} (SIGXCPU)")));
        assert_eq!(
            describe_exit(std::os::unix::process::ExitStatusExt::from_raw(3 << 8)),
            "the point's process exited with status 3 without writing its record"
        );
    }

    fn point(ranks: u32, threads: u32, oversubscribed: bool) -> Point {
        Point {
            id: "p".into(),
            study: 0,
            study_name: "s".into(),
            workload: "mpi.debug".into(),
            scaling: Scaling::Strong,
            resources: Resources {
                ranks,
                threads,
                ..Resources::default()
            },
            params: Params::default(),
            repetitions: 1,
            warmup: 0,
            timeout_s: 60.0,
            oversubscribed,
            data: None,
        }
    }

    fn args(p: &Point, cores: usize, root: bool) -> String {
        let a: Vec<String> = mpirun_args(p, cores, root)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        a.join(" ")
    }

    #[test]
    fn mpirun_binds_single_threaded_ranks_to_cores() {
        assert_eq!(args(&point(2, 1, false), 2, false), "-n 2 --bind-to core");
        assert_eq!(
            args(&point(1, 1, false), 8, true),
            "-n 1 --allow-run-as-root --bind-to core"
        );
    }

    #[test]
    fn mpirun_leaves_threaded_ranks_unbound() {
        assert_eq!(args(&point(2, 4, false), 16, false), "-n 2 --bind-to none");
    }

    #[test]
    fn mpirun_oversubscribes_when_the_point_or_the_rank_count_asks() {
        assert_eq!(
            args(&point(2, 2, true), 2, true),
            "-n 2 --oversubscribe --allow-run-as-root --bind-to none"
        );
        assert_eq!(
            args(&point(4, 1, false), 2, false),
            "-n 4 --oversubscribe --bind-to none"
        );
    }

    #[test]
    fn the_first_panic_of_a_log_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.txt");
        std::fs::write(
            &log,
            "thread 'scalelab-worker-0' (7) panicked at src/x.rs:1:2:\nboom\nscalelab: rank 1 panicked: boom at src/x.rs:1; aborting the MPI job\nMPI_ABORT was invoked\n",
        )
        .unwrap();
        assert_eq!(
            first_panic(&log).as_deref(),
            Some("rank 1 panicked: boom at src/x.rs:1")
        );
        std::fs::write(&log, "thread 'main' panicked at src/x.rs:1:2:\nboom\n").unwrap();
        assert_eq!(
            first_panic(&log).as_deref(),
            Some("thread 'main' panicked at src/x.rs:1:2: boom")
        );
        std::fs::write(&log, "all fine\n").unwrap();
        assert_eq!(first_panic(&log), None);
        assert_eq!(mpirun_culprit(&log), None);
    }

    #[test]
    fn the_rank_that_ended_an_mpi_job_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.txt");
        std::fs::write(
            &log,
            "-----\nmpirun detected that one or more processes exited with non-zero status, thus causing\nthe job to be terminated. The first process to do so was:\n\n  Process name: [[8518,1],1]\n  Exit code:    3\n-----\n",
        )
        .unwrap();
        assert_eq!(
            mpirun_culprit(&log).as_deref(),
            Some("rank 1 exited with status 3")
        );
        std::fs::write(
            &log,
            "mpirun noticed that process rank 1 with PID 0 on node h exited on signal 9 (Killed).\n",
        )
        .unwrap();
        assert_eq!(
            mpirun_culprit(&log).as_deref(),
            Some("process rank 1 with PID 0 on node h exited on signal 9 (Killed).")
        );
    }
}

//! The machine's state while a point runs: what else used the CPUs, and whether that disturbed the
//! measurement.
//!
//! A benchmark's numbers are only as good as the quiet of the machine that made them: a 2-thread
//! point on a 2-core laptop that is compiling at the same time measures the compiler as much as
//! the kernel. This module samples, while each point runs, what the kernel says about the whole
//! machine and stores it in the point's record ([`MachineLoad`], the record's `load` field); the
//! report then judges each point with one documented rule ([`judge`]).
//!
//! **Who samples.** Normally the parent: the local executor waits on the point's process and
//! samples meanwhile ([`Sampler`] with [`OwnCpu::Children`]), so the measured process does no extra
//! work. It tells the point so through the environment variable [`SAMPLED_BY_PARENT`]. A point
//! started without it (a SLURM task under `srun`, or `scalelab point` by hand) samples from a thread
//! of its own ([`InTask`]) and subtracts its own CPU time ([`OwnCpu::Process`]), or, as one rank of
//! an MPI job, the CPU time of every process under its launcher ([`OwnCpu::Tree`]).
//!
//! **What is sampled.** At the start and the end of the point (counters, so nothing between two
//! samples is missed): the busy and steal time of the cores the sampler may run on (its affinity:
//! the whole machine, or under SLURM and `taskset` the cores given) from the `cpuN` lines of
//! `/proc/stat`, in clock ticks (`USER_HZ`, 100 per second on Linux); the CPU time of the point's own process tree.
//! Every [`TICK`] meanwhile: runnable tasks (`procs_running` of `/proc/stat`, which counts the
//! point's own running threads and the sampler itself), and the current clock (the mean over cores
//! of `/sys/devices/system/cpu/cpu*/cpufreq/scaling_cur_freq`, else of the `cpu MHz` lines of
//! `/proc/cpuinfo`; absent where neither is readable). At the end: the 1-minute load average
//! (`/proc/loadavg`), kept for the reader, not judged: it lags by a minute and counts the point
//! itself.
//!
//! **Other work.** Busy time is user + nice + system + irq + softirq ticks of all cores (guest time
//! is already part of user; idle, iowait and steal are not busy). The point's own CPU time is
//! exact: the parent takes it from `getrusage(RUSAGE_CHILDREN)` before the launch and after it has
//! reaped the point, which covers the point's process and every descendant that was waited for
//! (`mpirun` waits for its ranks); a sampler inside the task uses `getrusage(RUSAGE_SELF)`, or the
//! sum of `utime + stime` of `/proc/<pid>/stat` over the launcher's process tree. The CPU time of
//! other work is the machine's busy time minus the point's, and [`MachineLoad::other_cores`] is that
//! divided by the point's wall time: how many cores other work kept busy, on average.
//!
//! **The rule** ([`judge`]). A point needs `threads × ranks` cores of the node (at most all of
//! them); the others are free. A point is *disturbed* when
//! 1. other work kept more cores busy, on average, than the point left free, plus a margin of 10 %
//!    of the cores the point needed (daemons and the sampler itself) plus the counters' own
//!    uncertainty (one tick per core at each end, `2 × cores / (USER_HZ × seconds)`, which matters
//!    only for points shorter than a second): other work then ran on the point's cores and took
//!    time from it; or
//! 2. the hypervisor stole more than 5 % of the machine's CPU time (steal): the point's cores were
//!    not the point's even when nothing else ran in the guest.
//!
//! On a quiet machine other work is a few hundredths of a core, so the rule does not flag quiet
//! points; a compiler or a `yes > /dev/null` on every core exceeds it by a whole core. The rule
//! judges the point's whole process (preparation included), because a disturbance during
//! preparation usually lasts into the timed region. A disturbed point stays `ok`: its numbers are
//! right for the machine as it was, just not for the machine as the report describes it.

use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Set by the local executor on each point's process (value `1`): the parent samples the machine,
/// so the point must not sample it again.
pub const SAMPLED_BY_PARENT: &str = "SCALELAB_LOAD_SAMPLED_BY_PARENT";

/// How often runnable tasks and the clock are sampled while a point runs.
pub const TICK: Duration = Duration::from_millis(250);

/// Share of the cores a point needed that other work may use on top of the free cores.
pub const MARGIN_SHARE: f64 = 0.10;

/// Share of the machine's CPU time the hypervisor may steal before a point is disturbed.
pub const MAX_STEAL_SHARE: f64 = 0.05;

/// The machine's state while one point ran: the record's `load` field (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MachineLoad {
    /// Who sampled: `parent` (the local executor) or `task` (a thread of the point's own process).
    pub sampled_by: String,
    /// Wall time sampled, seconds (the point's process, from launch to end).
    pub seconds: f64,
    /// Cores sampled: those of the machine that the sampler may run on (its affinity).
    pub cores: u32,
    /// Cores the point needed: threads × ranks, at most `cores`.
    pub cores_needed: u32,
    /// Cores that other work kept busy on average: (machine busy − point CPU time) / seconds.
    pub other_cores: f64,
    /// Cores the point's own process tree kept busy on average: its CPU time / seconds.
    pub point_cores: f64,
    /// Share of the machine's CPU time stolen by the hypervisor (0–1).
    pub steal_share: f64,
    /// Mean of `procs_running` over the samples (the point's running threads and the sampler
    /// included).
    pub runnable_mean: f64,
    /// Highest `procs_running` seen.
    pub runnable_max: u32,
    /// The 1-minute load average at the end of the point.
    pub loadavg_1m: f64,
    /// Mean current clock over cores and samples, MHz; `None` where the kernel does not say.
    #[serde(default)]
    pub clock_mhz: Option<f64>,
}

impl MachineLoad {
    /// The problem with a record's load figures, if any: every number must be finite and not
    /// negative, and the point cannot need more cores than the machine has. Used by
    /// [`crate::results::parse_record`].
    pub fn check(&self) -> Result<(), String> {
        let numbers = [
            ("seconds", self.seconds),
            ("other_cores", self.other_cores),
            ("point_cores", self.point_cores),
            ("steal_share", self.steal_share),
            ("runnable_mean", self.runnable_mean),
            ("loadavg_1m", self.loadavg_1m),
            ("clock_mhz", self.clock_mhz.unwrap_or(0.0)),
        ];
        if let Some((name, v)) = numbers.iter().find(|(_, v)| !v.is_finite() || *v < 0.0) {
            return Err(format!("load.{name} is {v}, not a finite number ≥ 0"));
        }
        if self.steal_share > 1.0 {
            return Err(format!(
                "load.steal_share is {}, more than the whole machine",
                self.steal_share
            ));
        }
        if self.cores == 0 || self.cores_needed > self.cores {
            return Err(format!(
                "load.cores_needed is {} of load.cores {}, which no machine has",
                self.cores_needed, self.cores
            ));
        }
        Ok(())
    }
}

/// A point's judgement under the rule of the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub disturbed: bool,
    /// Why, in plain words (empty when not disturbed).
    pub why: String,
}

/// The most cores other work may keep busy beside a point that needs `needed` of `cores` cores
/// for `seconds`: the free cores, the margin and the counters' uncertainty (see the module docs).
pub fn allowed_other_cores(cores: u32, needed: u32, seconds: f64) -> f64 {
    let needed = needed.min(cores);
    let free = (cores - needed) as f64;
    let uncertainty = if seconds > 0.0 {
        2.0 * cores as f64 / (clock_ticks_per_second() * seconds)
    } else {
        f64::INFINITY
    };
    free + MARGIN_SHARE * needed as f64 + uncertainty
}

/// Judge one point's load with the rule of the module docs.
pub fn judge(load: &MachineLoad) -> Verdict {
    let mut why = Vec::new();
    let allowed = allowed_other_cores(load.cores, load.cores_needed, load.seconds);
    if load.other_cores > allowed {
        why.push(format!(
            "other work kept {:.2} of {} cores busy while the point needed {} (at most {:.2} allowed)",
            load.other_cores, load.cores, load.cores_needed, allowed
        ));
    }
    if load.steal_share > MAX_STEAL_SHARE {
        why.push(format!(
            "the hypervisor stole {:.0}% of the CPU time (at most {:.0}% allowed)",
            load.steal_share * 100.0,
            MAX_STEAL_SHARE * 100.0
        ));
    }
    Verdict {
        disturbed: !why.is_empty(),
        why: why.join("; "),
    }
}

/// The figures of `/proc/stat` this module uses.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProcStat {
    /// Busy ticks of all cores: user + nice + system + irq + softirq.
    pub busy: u64,
    /// Steal ticks of all cores.
    pub steal: u64,
    /// All ticks of all cores (busy + idle + iowait + steal).
    pub total: u64,
    /// `cpuN` lines.
    pub cores: u32,
    /// `procs_running`.
    pub procs_running: u32,
}

/// Parse the text of `/proc/stat`, summing the `cpuN` lines of the cores in `only` (all cores
/// when `None`, or when none of them is listed); `None` when it lacks the `cpu` lines.
pub fn parse_proc_stat(text: &str, only: Option<&[usize]>) -> Option<ProcStat> {
    let mut all = None;
    let mut mine: Option<(u64, u64, u64)> = None;
    let mut cores = 0;
    let mut mine_cores = 0;
    let mut running = 0;
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        let Some(name) = f.next() else { continue };
        if name == "procs_running" {
            running = f.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            continue;
        }
        let Some(index) = name.strip_prefix("cpu") else {
            continue;
        };
        let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
        if v.len() < 4 {
            continue;
        }
        let at = |i: usize| v.get(i).copied().unwrap_or(0);
        let (user, nice, system, idle, iowait, irq, softirq, steal) =
            (at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7));
        let busy = user + nice + system + irq + softirq;
        let ticks = (busy, steal, busy + idle + iowait + steal);
        if index.is_empty() {
            all = Some(ticks);
            continue;
        }
        cores += 1;
        let Ok(n) = index.parse::<usize>() else {
            continue;
        };
        if only.is_some_and(|o| o.contains(&n)) {
            mine_cores += 1;
            let m = mine.get_or_insert((0, 0, 0));
            m.0 += ticks.0;
            m.1 += ticks.1;
            m.2 += ticks.2;
        }
    }
    let ((busy, steal, total), cores) = match mine {
        Some(m) => (m, mine_cores),
        None => (all?, cores),
    };
    Some(ProcStat {
        busy,
        steal,
        total,
        cores: cores.max(1),
        procs_running: running,
    })
}

/// `/proc/stat` now, if readable, over the cores this process may run on (its affinity: under
/// SLURM or `taskset` the cores it was given, whose other work is what disturbs it).
pub fn read_proc_stat() -> Option<ProcStat> {
    let only = allowed_cpus();
    parse_proc_stat(
        &std::fs::read_to_string("/proc/stat").ok()?,
        only.as_deref(),
    )
}

/// The cores this process may run on (`sched_getaffinity`), or `None` where unknown.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Option<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return None;
    }
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: i is below CPU_SETSIZE, the set's capacity.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect();
    (!cpus.is_empty()).then_some(cpus)
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Option<Vec<usize>> {
    None
}

/// The 1-minute load average of the text of `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_ascii_whitespace().next()?.parse().ok()
}

fn read_loadavg() -> Option<f64> {
    parse_loadavg(&std::fs::read_to_string("/proc/loadavg").ok()?)
}

/// The mean of the `cpu MHz` lines of the text of `/proc/cpuinfo`.
pub fn parse_cpuinfo_mhz(text: &str) -> Option<f64> {
    let v: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("cpu MHz"))
        .filter_map(|l| l.split(':').nth(1)?.trim().parse().ok())
        .collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// The current clock, MHz: the mean of `scaling_cur_freq` (kHz) over cores, else of the
/// `cpu MHz` lines of `/proc/cpuinfo`.
pub fn read_clock_mhz() -> Option<f64> {
    let mut khz = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/devices/system/cpu") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if !name
                .strip_prefix("cpu")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            {
                continue;
            }
            let path = entry.path().join("cpufreq/scaling_cur_freq");
            if let Some(v) = read_number(&path) {
                khz.push(v);
            }
        }
    }
    if !khz.is_empty() {
        return Some(khz.iter().sum::<f64>() / khz.len() as f64 / 1000.0);
    }
    parse_cpuinfo_mhz(&std::fs::read_to_string("/proc/cpuinfo").ok()?)
}

fn read_number(path: &Path) -> Option<f64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `USER_HZ`: the unit of `/proc/stat` and `/proc/<pid>/stat` times (100 on Linux).
pub fn clock_ticks_per_second() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: sysconf has no preconditions.
        let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        if v > 0 {
            return v as f64;
        }
    }
    100.0
}

/// Whose CPU time is the point's own.
#[derive(Clone, Copy, Debug)]
pub enum OwnCpu {
    /// The children this process has reaped (`getrusage(RUSAGE_CHILDREN)`): the local executor,
    /// which reaps the point before it finishes its sample.
    Children,
    /// This process (`getrusage(RUSAGE_SELF)`): a point that samples itself.
    Process,
    /// The process `pid` and all its descendants (`/proc/<pid>/stat`): every rank of an MPI job
    /// under its launcher.
    Tree(u32),
}

impl OwnCpu {
    /// CPU seconds (user + system) of the point's processes so far.
    pub fn seconds(self) -> f64 {
        match self {
            OwnCpu::Children => rusage_seconds(RusageWho::Children),
            OwnCpu::Process => rusage_seconds(RusageWho::Process),
            OwnCpu::Tree(pid) => tree_cpu_seconds(pid).unwrap_or(0.0),
        }
    }
}

enum RusageWho {
    Children,
    Process,
}

#[cfg(unix)]
fn rusage_seconds(who: RusageWho) -> f64 {
    let who = match who {
        RusageWho::Children => libc::RUSAGE_CHILDREN,
        RusageWho::Process => libc::RUSAGE_SELF,
    };
    // SAFETY: getrusage writes only into the struct we pass, which is zeroed and large enough.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[cfg(not(unix))]
fn rusage_seconds(_who: RusageWho) -> f64 {
    0.0
}

/// The parent pid and `utime + stime` ticks of the text of `/proc/<pid>/stat`. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted from its last `)`.
pub fn parse_pid_stat(text: &str) -> Option<(u32, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After the name: state(3) ppid(4) … utime(14) stime(15), so index = field − 3.
    let ppid = f.get(1)?.parse().ok()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// CPU seconds of process `root` and all its descendants now, from `/proc/*/stat`.
pub fn tree_cpu_seconds(root: u32) -> Option<f64> {
    let mut procs: Vec<(u32, u32, u64)> = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some((ppid, ticks)) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|t| parse_pid_stat(&t))
        {
            procs.push((pid, ppid, ticks));
        }
    }
    let mut inside = vec![root];
    let mut ticks = 0;
    let mut i = 0;
    while i < inside.len() {
        let parent = inside[i];
        for &(pid, ppid, t) in &procs {
            if pid == parent {
                ticks += t;
            }
            if ppid == parent && !inside.contains(&pid) {
                inside.push(pid);
            }
        }
        i += 1;
    }
    Some(ticks as f64 / clock_ticks_per_second())
}

/// Samples the machine while one point runs: [`Sampler::start`] just before the launch,
/// [`Sampler::tick`] while waiting, [`Sampler::finish`] once the point has ended.
#[derive(Debug)]
pub struct Sampler {
    own: OwnCpu,
    sampled_by: &'static str,
    started: Instant,
    stat0: ProcStat,
    own0: f64,
    last_tick: Option<Instant>,
    runnable_sum: f64,
    runnable_max: u32,
    samples: u32,
    clock_sum: f64,
    clock_samples: u32,
}

impl Sampler {
    /// Start sampling; `None` where `/proc/stat` is unreadable (not Linux).
    pub fn start(own: OwnCpu, sampled_by: &'static str) -> Option<Sampler> {
        let stat0 = read_proc_stat()?;
        Some(Sampler {
            own,
            sampled_by,
            own0: own.seconds(),
            started: Instant::now(),
            stat0,
            last_tick: None,
            runnable_sum: 0.0,
            runnable_max: 0,
            samples: 0,
            clock_sum: 0.0,
            clock_samples: 0,
        })
    }

    /// Sample runnable tasks and the clock, at most once per [`TICK`].
    pub fn tick(&mut self) {
        if self.last_tick.is_some_and(|t| t.elapsed() < TICK) {
            return;
        }
        self.last_tick = Some(Instant::now());
        if let Some(s) = read_proc_stat() {
            self.runnable_sum += s.procs_running as f64;
            self.runnable_max = self.runnable_max.max(s.procs_running);
            self.samples += 1;
        }
        if let Some(mhz) = read_clock_mhz() {
            self.clock_sum += mhz;
            self.clock_samples += 1;
        }
    }

    /// The load over the whole sample, for a point that needs `needed` cores; `None` if
    /// `/proc/stat` became unreadable.
    pub fn finish(mut self, needed: u32) -> Option<MachineLoad> {
        if self.samples == 0 {
            self.last_tick = None;
            self.tick();
        }
        let stat1 = read_proc_stat()?;
        let own = (self.own.seconds() - self.own0).max(0.0);
        let seconds = self.started.elapsed().as_secs_f64();
        let hz = clock_ticks_per_second();
        let busy = stat1.busy.saturating_sub(self.stat0.busy) as f64 / hz;
        let total = stat1.total.saturating_sub(self.stat0.total);
        let steal = stat1.steal.saturating_sub(self.stat0.steal);
        let per_s = |v: f64| if seconds > 0.0 { v / seconds } else { 0.0 };
        let cores = stat1.cores;
        Some(MachineLoad {
            sampled_by: self.sampled_by.to_string(),
            seconds,
            cores,
            cores_needed: needed.clamp(1, cores),
            other_cores: per_s((busy - own).max(0.0)),
            point_cores: per_s(own),
            steal_share: if total > 0 {
                steal as f64 / total as f64
            } else {
                0.0
            },
            runnable_mean: self.runnable_sum / self.samples.max(1) as f64,
            runnable_max: self.runnable_max,
            loadavg_1m: read_loadavg().unwrap_or(0.0),
            clock_mhz: (self.clock_samples > 0).then(|| self.clock_sum / self.clock_samples as f64),
        })
    }
}

/// A sampler on a thread of the point's own process, for points that no parent samples (under
/// SLURM): [`InTask::start`] before the point is prepared, [`InTask::finish`] before its record
/// is written.
pub struct InTask {
    stop: mpsc::Sender<()>,
    handle: std::thread::JoinHandle<Option<MachineLoad>>,
}

impl InTask {
    /// Start sampling on a thread, unless the parent samples ([`SAMPLED_BY_PARENT`]) or
    /// `/proc/stat` is unreadable. `needed` is the point's cores; under MPI the point's CPU time
    /// is that of every process under this rank's launcher, else this process's.
    pub fn start(needed: u32) -> Option<InTask> {
        if std::env::var_os(SAMPLED_BY_PARENT).is_some() {
            return None;
        }
        let own = if under_mpi_launcher() {
            OwnCpu::Tree(parent_pid()?)
        } else {
            OwnCpu::Process
        };
        let mut sampler = Sampler::start(own, "task")?;
        let (stop, stopped) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("scalelab-load".into())
            .spawn(move || {
                loop {
                    sampler.tick();
                    match stopped.recv_timeout(TICK) {
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        _ => break,
                    }
                }
                sampler.finish(needed)
            })
            .ok()?;
        Some(InTask { stop, handle })
    }

    /// Stop sampling and return the load.
    pub fn finish(self) -> Option<MachineLoad> {
        let _ = self.stop.send(());
        self.handle.join().ok().flatten()
    }
}

/// Whether this process is one rank of a job that `mpirun` or `srun` started with several ranks.
fn under_mpi_launcher() -> bool {
    ["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|n| n.parse::<u32>().is_ok_and(|n| n > 1)))
}

#[cfg(unix)]
fn parent_pid() -> Option<u32> {
    // SAFETY: getppid has no preconditions and cannot fail.
    u32::try_from(unsafe { libc::getppid() }).ok()
}

#[cfg(not(unix))]
fn parent_pid() -> Option<u32> {
    None
}

/// How `scalelab run --wait-idle` waits before a point.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WaitIdle {
    /// The longest wait before the point runs anyway.
    pub bound: Duration,
    /// The window over which the machine must be quiet.
    pub window: Duration,
}

/// The outcome of [`wait_idle`].
#[derive(Clone, Debug, PartialEq)]
pub enum Idle {
    /// The machine was quiet within the bound (after waiting this long).
    Quiet(Duration),
    /// Still busy at the bound: other work kept this many cores busy in the last window.
    GaveUp(f64),
    /// `/proc/stat` is unreadable: nothing to wait for.
    Unknown,
    /// `stop` said to stop waiting (a signal).
    Stopped,
}

/// Wait until other work leaves a point that needs `needed` cores what the rule allows
/// ([`allowed_other_cores`] over one window), or until `how.bound`. `say` gets one message when
/// the wait begins (what it waits for and how long at most); `stop` ends the wait early (a signal).
pub fn wait_idle(
    needed: u32,
    how: WaitIdle,
    mut say: impl FnMut(&str),
    stop: impl Fn() -> bool,
) -> Idle {
    let begun = Instant::now();
    let mut said = false;
    loop {
        let Some(before) = read_proc_stat() else {
            return Idle::Unknown;
        };
        let own0 = rusage_seconds(RusageWho::Process);
        let t0 = Instant::now();
        let mut left = how.window;
        while !left.is_zero() && !stop() {
            let step = left.min(Duration::from_millis(50));
            std::thread::sleep(step);
            left = left.saturating_sub(step);
        }
        let Some(after) = read_proc_stat() else {
            return Idle::Unknown;
        };
        let seconds = t0.elapsed().as_secs_f64().max(1e-3);
        let own = rusage_seconds(RusageWho::Process) - own0;
        let busy = after.busy.saturating_sub(before.busy) as f64 / clock_ticks_per_second();
        let other = ((busy - own) / seconds).max(0.0);
        let needed = needed.clamp(1, after.cores);
        let allowed = allowed_other_cores(after.cores, needed, seconds);
        if stop() {
            return Idle::Stopped;
        }
        if other <= allowed {
            return Idle::Quiet(begun.elapsed());
        }
        if !said {
            said = true;
            say(&format!(
                "waiting for the machine to quiet down: other work keeps {other:.1} of {} cores busy, and the point needs {needed}, so at most {allowed:.1} may be busy (waiting up to {} s)",
                after.cores,
                how.bound.as_secs()
            ));
        }
        if begun.elapsed() >= how.bound {
            return Idle::GaveUp(other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(cores: u32, needed: u32, other: f64, steal: f64) -> MachineLoad {
        MachineLoad {
            sampled_by: "parent".into(),
            seconds: 10.0,
            cores,
            cores_needed: needed,
            other_cores: other,
            point_cores: needed as f64,
            steal_share: steal,
            runnable_mean: needed as f64 + other,
            runnable_max: needed + other.ceil() as u32,
            loadavg_1m: 1.0,
            clock_mhz: Some(2600.0),
        }
    }

    #[test]
    fn a_quiet_point_is_not_disturbed() {
        // Daemons and the sampler: a few hundredths of a core.
        assert_eq!(
            judge(&load(2, 2, 0.05, 0.0)),
            Verdict {
                disturbed: false,
                why: String::new()
            }
        );
        // Other work on the core a 1-thread point left free does not compete with it.
        assert!(!judge(&load(2, 1, 1.0, 0.01)).disturbed);
        assert!(!judge(&load(64, 8, 40.0, 0.0)).disturbed);
    }

    #[test]
    fn other_work_on_the_points_cores_disturbs_it() {
        let v = judge(&load(2, 2, 1.5, 0.0));
        assert!(v.disturbed);
        assert_eq!(
            v.why,
            "other work kept 1.50 of 2 cores busy while the point needed 2 (at most 0.20 allowed)"
        );
        assert!(judge(&load(2, 1, 1.4, 0.0)).disturbed);
        assert!(judge(&load(64, 64, 7.0, 0.0)).disturbed);
    }

    #[test]
    fn steal_disturbs() {
        let v = judge(&load(4, 1, 0.0, 0.12));
        assert_eq!(
            v.why,
            "the hypervisor stole 12% of the CPU time (at most 5% allowed)"
        );
        let v = judge(&load(2, 2, 2.0, 0.2));
        assert!(v.why.contains("; the hypervisor stole 20%"), "{}", v.why);
    }

    #[test]
    fn short_points_get_the_counters_uncertainty() {
        // 0.1 s on 2 cores: one tick per core at each end is 0.4 cores.
        let mut l = load(2, 2, 0.5, 0.0);
        l.seconds = 0.1;
        assert!(!judge(&l).disturbed);
        l.other_cores = 0.7;
        assert!(judge(&l).disturbed);
    }

    #[test]
    fn proc_files_parse() {
        let stat = "cpu  100 20 30 400 5 1 2 7 0 0\ncpu0 50 10 15 200 2 1 1 3 0 0\ncpu1 50 10 15 200 3 0 1 4 0 0\nintr 1\nprocs_running 3\nprocs_blocked 0\n";
        assert_eq!(
            parse_proc_stat(stat, None),
            Some(ProcStat {
                busy: 153,
                steal: 7,
                total: 565,
                cores: 2,
                procs_running: 3
            })
        );
        // Only the cores this process may use (SLURM, taskset); an affinity that names no listed
        // core falls back to the whole machine.
        assert_eq!(
            parse_proc_stat(stat, Some(&[1])),
            Some(ProcStat {
                busy: 76,
                steal: 4,
                total: 283,
                cores: 1,
                procs_running: 3
            })
        );
        assert_eq!(parse_proc_stat(stat, Some(&[7])).unwrap().cores, 2);
        assert_eq!(parse_proc_stat("intr 1\n", None), None);
        assert_eq!(parse_loadavg("9.87 5.00 1.00 3/200 42\n"), Some(9.87));
        assert_eq!(
            parse_cpuinfo_mhz("cpu MHz\t\t: 2600.000\nx: 1\ncpu MHz\t\t: 3000.000\n"),
            Some(2800.0)
        );
        assert_eq!(parse_cpuinfo_mhz("model name: x\n"), None);
        assert_eq!(
            parse_pid_stat("42 (a (b) c) R 7 42 42 0 -1 0 0 0 0 0 120 30 0 0 20 0 1 0"),
            Some((7, 150))
        );
    }

    #[test]
    fn a_records_load_is_checked() {
        assert_eq!(load(2, 2, 0.1, 0.0).check(), Ok(()));
        let mut l = load(2, 2, f64::NAN, 0.0);
        assert_eq!(
            l.check().unwrap_err(),
            "load.other_cores is NaN, not a finite number ≥ 0"
        );
        l = load(2, 3, 0.0, 0.0);
        assert!(l.check().unwrap_err().contains("which no machine has"));
        l = load(2, 2, 0.0, 1.5);
        assert!(l
            .check()
            .unwrap_err()
            .contains("more than the whole machine"));
    }

    #[test]
    fn the_tree_of_this_process_counts_its_own_cpu_time() {
        // Burn at least 0.2 s of CPU (by the kernel's count, not the wall clock).
        let mut x = 0u64;
        while rusage_seconds(RusageWho::Process) < 0.2 {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        let own = rusage_seconds(RusageWho::Process);
        let tree = tree_cpu_seconds(std::process::id()).unwrap();
        // The same time in clock ticks: at most a few ticks apart.
        assert!((tree - own).abs() < 0.1, "tree {tree} s, own {own} s");
    }
}

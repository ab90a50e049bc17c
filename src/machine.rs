//! The machine a run happens on: CPU, caches, SIMD width, clock and theoretical peak FLOP/s.
//!
//! Everything is read from the OS (`/proc`, `/sys`) and the CPU's feature flags, except two
//! figures no OS interface reports truthfully: the clock (virtual machines and turbo make
//! `/proc/cpuinfo`'s MHz a nominal figure) and how many full-width FMAs a core retires per cycle
//! (cores with the same instruction set differ: AMD Zen 4 splits a 512-bit FMA over two 256-bit
//! pipes and retires one per cycle, Zen 5 and Intel server cores two). [`probe`] measures both,
//! interleaved, as the best of many short trials, and checks the answer against the ISA (see
//! [`judge_fma`]). The theoretical peak is `f64 lanes × FMA pipes × 2 flops × clock` per core.
//!
//! The measured figure is cached per machine (host, CPU model, CPU flags, cores) in a small JSON
//! file (see [`cache_dir`]), so `scalelab info`, every run and every SLURM task on that node quote
//! the same peak instead of a fresh measurement that a busy moment could tilt.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What `scalelab info` prints and `provenance.json` records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub host: String,
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Cache sizes in bytes, per level ("L1d", "L2", "L3"), as the OS reports them for CPU 0.
    pub caches: Vec<(String, u64)>,
    /// Widest SIMD instruction set usable here: "avx512", "avx2", "sse2", "neon", "scalar".
    pub simd: String,
    /// f64 lanes of one SIMD register.
    pub simd_f64_lanes: u32,
    /// Full-width FMAs retired per cycle per core: measured by [`probe`], else assumed
    /// (2 on x86 cores with FMA).
    pub fma_units: u32,
    /// Whether `fma_units` was measured rather than assumed.
    #[serde(default)]
    pub fma_measured: bool,
    /// Full-width FMAs per cycle as measured, before [`judge_fma`] rounded it (0 if not measured).
    #[serde(default)]
    pub fma_per_cycle: f64,
    /// Clock in GHz measured with a dependent add chain (0 if not measured).
    pub clock_ghz: f64,
    /// Nominal clock from the OS, GHz (0 if unknown).
    pub nominal_ghz: f64,
    /// Theoretical f64 peak per core: lanes × FMA units × 2 × clock, GFLOP/s.
    pub peak_gflops_per_core: f64,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// Where the clock and FMA figures came from: "measured" (this process measured them),
    /// "cached" (read from `peak_cache_file`), or "nominal" (not measured: nominal clock, FMA
    /// pipes assumed). Empty in provenance files written before it existed.
    #[serde(default)]
    pub peak_source: String,
    /// When the clock and FMA figures were measured (RFC 3339; empty if never).
    #[serde(default)]
    pub peak_measured_at: String,
    /// The cache file holding them (empty if none).
    #[serde(default)]
    pub peak_cache_file: String,
}

impl Machine {
    /// Everything, with the clock and FMA throughput from this machine's cache file, measured
    /// (about 0.1 s) and cached when there is none. Problems with the cache (unreadable, corrupt,
    /// another machine's, implausible) are warned about on stderr and answered by measuring.
    pub fn detect() -> Machine {
        Machine::detect_cached(false)
    }

    /// [`Machine::detect`], measuring anew when `remeasure` (the cache file is replaced).
    pub fn detect_cached(remeasure: bool) -> Machine {
        let (m, warnings) = detect_in(cache_dir().as_deref(), remeasure, probe);
        for w in warnings {
            crate::errln!("warning: {w}");
        }
        m
    }

    /// This machine with its cached clock and FMA figure where a usable one exists, else
    /// [`Machine::detect_quick`]'s nominal one: never measures, never warns. For estimates
    /// (`scalelab plan`) that must not take the probe's time.
    pub fn detect_if_cached() -> Machine {
        let mut m = Machine::detect_quick();
        let Some(path) = cache_dir().map(|d| d.join(CacheKey::of(&m).file_name())) else {
            return m;
        };
        if let Ok(Some(c)) = read_cached(&path, &CacheKey::of(&m)) {
            m.apply(&c);
            m.peak_source = "cached".into();
            m.peak_cache_file = path.display().to_string();
        }
        m
    }

    /// Everything but the clock measurement: the peak uses the nominal clock. Instant.
    pub fn detect_quick() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| cpuinfo_field(&cpuinfo, name);
        let (simd, lanes, fma) = simd_features();
        let nominal_ghz =
            fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|khz| khz / 1e6)
                .or_else(|| {
                    field("cpu MHz")
                        .and_then(|s| s.parse::<f64>().ok())
                        .map(|mhz| mhz / 1e3)
                })
                .unwrap_or(0.0);
        let mut m = Machine {
            host: hostname(),
            cpu_model: field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            caches: caches(),
            simd: simd.to_string(),
            simd_f64_lanes: lanes,
            fma_units: fma,
            fma_measured: false,
            fma_per_cycle: 0.0,
            clock_ghz: 0.0,
            nominal_ghz,
            peak_gflops_per_core: 0.0,
            memory_bytes: memory_total().unwrap_or(0),
            peak_source: "nominal".into(),
            peak_measured_at: String::new(),
            peak_cache_file: String::new(),
        };
        m.peak_gflops_per_core = m.peak_per_core(m.clock());
        m
    }

    /// The clock used for peaks: measured if available, else nominal.
    pub fn clock(&self) -> f64 {
        if self.clock_ghz > 0.0 {
            self.clock_ghz
        } else {
            self.nominal_ghz
        }
    }

    /// lanes × FMA units × 2 × clock, to 0.1 GFLOP/s (the clock is not known more precisely).
    fn peak_per_core(&self, ghz: f64) -> f64 {
        let peak = self.simd_f64_lanes as f64 * self.fma_units as f64 * 2.0 * ghz;
        (peak * 10.0).round() / 10.0
    }

    /// Take the clock and FMA pipes of `p` and recompute the peak.
    fn apply(&mut self, p: &MeasuredPeak) {
        self.clock_ghz = p.clock_ghz;
        self.fma_units = p.fma_units;
        self.fma_measured = true;
        self.fma_per_cycle = p.full_fma_per_cycle;
        self.peak_measured_at = p.measured_at.clone();
        self.peak_gflops_per_core = self.peak_per_core(self.clock());
    }

    /// The CPU part of what `scalelab info` prints (the GPU lines come from
    /// [`crate::workload::gpu_description`], added by the command: this module knows no workload).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<22}{v}\n"));
        line(&mut s, "host", self.host.clone());
        line(&mut s, "cpu", self.cpu_model.clone());
        line(&mut s, "cores (available)", self.cores.to_string());
        for (level, bytes) in &self.caches {
            line(
                &mut s,
                &format!("cache {level}"),
                crate::units::bytes(*bytes),
            );
        }
        line(&mut s, "memory", crate::units::bytes(self.memory_bytes));
        line(
            &mut s,
            "simd",
            format!("{} ({} f64 lanes)", self.simd, self.simd_f64_lanes),
        );
        line(
            &mut s,
            "clock",
            format!(
                "{:.2} GHz measured (dependent add chain); nominal {:.2} GHz",
                self.clock_ghz, self.nominal_ghz
            ),
        );
        line(
            &mut s,
            "peak f64 per core",
            format!(
                "{:.1} GFLOP/s = {} lanes x {} FMA/cycle ({}) x 2 x {:.2} GHz",
                self.peak_gflops_per_core,
                self.simd_f64_lanes,
                self.fma_units,
                if self.fma_measured {
                    format!("measured {:.2}", self.fma_per_cycle)
                } else {
                    "assumed".to_string()
                },
                self.clock()
            ),
        );
        line(
            &mut s,
            "peak f64 all cores",
            format!(
                "{:.1} GFLOP/s",
                self.peak_gflops_per_core * self.cores as f64
            ),
        );
        line(&mut s, "peak measured", self.peak_provenance());
        s
    }

    /// Where the peak's figures came from, in a few words for a report: "clock and FMA pipes
    /// measured `<date>`", or "nominal clock, FMA pipes assumed".
    pub fn peak_basis(&self) -> String {
        if self.fma_measured && self.clock_ghz > 0.0 {
            let date = self.peak_measured_at.get(..10).unwrap_or("");
            if date.is_empty() {
                "clock and FMA pipes measured".to_string()
            } else {
                format!("clock and FMA pipes measured {date}")
            }
        } else if self.clock_ghz > 0.0 {
            "measured clock, FMA pipes assumed".to_string()
        } else {
            "nominal clock, FMA pipes assumed".to_string()
        }
    }

    /// Where the peak's clock and FMA figures came from, in words, with how to measure again.
    pub fn peak_provenance(&self) -> String {
        let redo = "re-measure with `scalelab info --remeasure`";
        match self.peak_source.as_str() {
            "measured" if self.peak_cache_file.is_empty() => {
                format!("now, at {} (not cached)", self.peak_measured_at)
            }
            "measured" => format!(
                "now, at {}; cached in {}",
                self.peak_measured_at, self.peak_cache_file
            ),
            "cached" => format!(
                "cached from {} in {}; {redo}",
                self.peak_measured_at, self.peak_cache_file
            ),
            _ if self.clock_ghz > 0.0 => {
                "clock measured now; FMA pipes assumed (no FMA probe for this CPU)".to_string()
            }
            _ => "not measured: nominal clock, FMA pipes assumed".to_string(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The cache of measured peaks.
// ---------------------------------------------------------------------------------------------

/// Environment variable naming the folder of the cache files, overriding the default.
pub const CACHE_ENV: &str = "SCALELAB_MACHINE_CACHE";

/// The folder of the cache files: `$SCALELAB_MACHINE_CACHE` if set and not empty, else
/// `$XDG_CACHE_HOME/scalelab`, else `$HOME/.cache/scalelab`; `None` when none is known (nothing
/// is cached then: each process measures).
///
/// On a cluster whose nodes share one home folder every node writes beside the others: the file
/// name hashes the host with the CPU model, flags and the node's CPU count, so heterogeneous nodes
/// never read each other's figure, while every allocation shape on one node (1 core or 64) reads
/// that node's one file.
pub fn cache_dir() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env(CACHE_ENV)
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("scalelab")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("scalelab")))
}

/// What identifies a machine for its cached peak: everything the figure depends on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    pub host: String,
    pub cpu_model: String,
    /// SHA-256 of the CPU's feature flags as `/proc/cpuinfo` lists them (its "flags" or
    /// "Features" line), so a microcode or hypervisor change of the ISA invalidates the figure.
    pub cpu_flags_sha256: String,
    pub simd: String,
    pub simd_f64_lanes: u32,
    /// The node's online CPUs (not the share an allocation or affinity mask grants this process,
    /// so every task shape on one node reads the same file).
    pub cores: usize,
    /// `PROBE_VERSION`: figures measured by an older probe are measured again.
    pub probe_version: u32,
}

impl CacheKey {
    /// The key of `m`, with the flags of this machine's `/proc/cpuinfo`.
    pub fn of(m: &Machine) -> CacheKey {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let flags = cpuinfo_field(&cpuinfo, "flags")
            .or_else(|| cpuinfo_field(&cpuinfo, "Features"))
            .unwrap_or_default();
        CacheKey {
            host: m.host.clone(),
            cpu_model: m.cpu_model.clone(),
            cpu_flags_sha256: hex(&Sha256::digest(flags.as_bytes())),
            simd: m.simd.clone(),
            simd_f64_lanes: m.simd_f64_lanes,
            cores: cpuinfo
                .lines()
                .filter(|l| l.starts_with("processor"))
                .count()
                .max(m.cores),
            probe_version: PROBE_VERSION,
        }
    }

    /// `machine-<16 hex digits of the key's SHA-256>.json`.
    pub fn file_name(&self) -> String {
        let json = serde_json::to_vec(self).expect("a key serialises");
        format!("machine-{}.json", &hex(&Sha256::digest(&json))[..16])
    }
}

/// One cache file: the key it was measured under and what the probe found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasuredPeak {
    pub key: CacheKey,
    /// RFC 3339 time of the measurement.
    pub measured_at: String,
    pub scalelab_version: String,
    pub clock_ghz: f64,
    /// Full-width FMA pipes, as [`judge_fma`] decided.
    pub fma_units: u32,
    /// The raw figures behind it.
    pub full_fma_per_cycle: f64,
    pub half_fma_per_cycle: f64,
    /// Whether [`fallback_fma_units`] decided (the trials stayed ambiguous).
    pub fallback: bool,
    pub rounds: usize,
}

impl MeasuredPeak {
    fn new(key: CacheKey, p: &Probe) -> MeasuredPeak {
        MeasuredPeak {
            key,
            measured_at: crate::units::now_rfc3339(),
            scalelab_version: env!("CARGO_PKG_VERSION").to_string(),
            clock_ghz: p.clock_ghz,
            fma_units: p.fma_units,
            full_fma_per_cycle: p.full_per_cycle,
            half_fma_per_cycle: p.half_per_cycle,
            fallback: p.fallback,
            rounds: p.rounds,
        }
    }

    /// The ISA sanity bound on a cached figure: `Err` says what is implausible. One or two
    /// full-width FMA pipes (no x86 core has more), a measured per-cycle figure that is not wildly
    /// off that (within 0.5 of 1–2; the ambiguous band is allowed when the fallback decided), and
    /// a clock between 0.3 and 10 GHz.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=2).contains(&self.fma_units) {
            return Err(format!(
                "{} FMA pipes per core, where every core has 1 or 2",
                self.fma_units
            ));
        }
        if !(0.5..=2.5).contains(&self.full_fma_per_cycle) {
            return Err(format!(
                "{:.2} full-width FMAs per cycle, outside the ISA's 1 to 2",
                self.full_fma_per_cycle
            ));
        }
        if !self.fallback
            && judge_fma(
                self.full_fma_per_cycle,
                if self.fma_units == 2 { 1.0 } else { 0.5 },
            ) != FmaVerdict::Units(self.fma_units)
        {
            return Err(format!(
                "{:.2} full-width FMAs per cycle does not round to its {} FMA pipes",
                self.full_fma_per_cycle, self.fma_units
            ));
        }
        if !(0.3..=10.0).contains(&self.clock_ghz) {
            return Err(format!("a clock of {:.2} GHz", self.clock_ghz));
        }
        Ok(())
    }
}

/// [`Machine::detect`] with the cache folder (`None`: no cache) and the probe given: returns the
/// machine and the warnings to show. Reads `<dir>/<key file>` unless `remeasure`; measures with
/// `measure` when there is no usable file (missing, unreadable, corrupt, another key, failing
/// [`MeasuredPeak::check`]) and writes the new figure there.
pub fn detect_in(
    dir: Option<&Path>,
    remeasure: bool,
    measure: impl Fn(u32) -> Option<Probe>,
) -> (Machine, Vec<String>) {
    detect_from(Machine::detect_quick(), dir, remeasure, measure)
}

/// [`detect_in`] for a given quick description `m` (tests vary its key).
pub fn detect_from(
    mut m: Machine,
    dir: Option<&Path>,
    remeasure: bool,
    measure: impl Fn(u32) -> Option<Probe>,
) -> (Machine, Vec<String>) {
    let mut warnings = Vec::new();
    let key = CacheKey::of(&m);
    let path = dir.map(|d| d.join(key.file_name()));
    // Held until the figure is read or measured and written: tasks starting together on a node
    // with no figure yet measure once, and the others then read that figure rather than measure
    // their own (each slightly different) one.
    let _lock = path.as_deref().and_then(lock_beside);
    if let (Some(path), false) = (&path, remeasure) {
        match read_cached(path, &key) {
            Ok(Some(c)) => {
                m.apply(&c);
                m.peak_source = "cached".into();
                m.peak_cache_file = path.display().to_string();
                return (m, warnings);
            }
            Ok(None) => {}
            Err(w) => warnings.push(w),
        }
    }
    let Some(p) = measure(m.simd_f64_lanes) else {
        // No FMA probe here: the nominal figure, said so; the clock alone is still worth having.
        if let Some(ghz) = measure_clock_ghz() {
            m.clock_ghz = ghz;
            m.peak_gflops_per_core = m.peak_per_core(m.clock());
        }
        return (m, warnings);
    };
    let measured = MeasuredPeak::new(key, &p);
    m.apply(&measured);
    m.peak_source = "measured".into();
    if let Some(path) = path {
        let saved = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .map_err(anyhow::Error::from)
            .and_then(|()| {
                crate::files::write_atomic(&path, &serde_json::to_vec_pretty(&measured)?)
            });
        match saved {
            Ok(()) => m.peak_cache_file = path.display().to_string(),
            Err(e) => warnings.push(format!(
                "cannot cache the measured peak in {} ({e:#}); the next run measures again: set {CACHE_ENV} to a writable folder",
                path.display()
            )),
        }
    }
    (m, warnings)
}

// ---------------------------------------------------------------------------------------------
// The compute nodes' figures, recorded in a run.
// ---------------------------------------------------------------------------------------------

/// Folder of a run directory where SLURM tasks record the machine they ran on.
pub const RUN_MACHINES_DIR: &str = "machines";

/// Record this node's machine (clock and FMA figures from its cache, measured now if the node's
/// key is not cached) in `<run_root>/machines/<host>-<key>.json`, for the report: `scalelab
/// sbatch` runs on a login node, whose CPU may differ from the compute nodes' and whose figure
/// would only be the nominal one. Every task of a node writes the same content, atomically.
pub fn record_in_run(run_root: &Path) -> anyhow::Result<Machine> {
    let m = Machine::detect();
    let dir = run_root.join(RUN_MACHINES_DIR);
    fs::create_dir_all(&dir).map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    let name = format!("{}-{}", m.host, CacheKey::of(&m).file_name());
    crate::files::write_atomic(&dir.join(name), &serde_json::to_vec_pretty(&m)?)?;
    Ok(m)
}

/// The machine a run's report quotes peaks for: the compute nodes' recorded figures (see
/// [`record_in_run`]) when there are any, else `provenance` (the machine `scalelab run` ran on),
/// else this machine's cached figure (see [`Machine::detect_if_cached`]). Returns it with a
/// warning when the points ran on node types whose peaks differ (the report then uses the first
/// by host name).
pub fn for_report(run_root: &Path, provenance: Option<Machine>) -> (Machine, Option<String>) {
    let nodes = run_nodes(run_root);
    let Some(first) = nodes.first().cloned() else {
        return (provenance.unwrap_or_else(Machine::detect_if_cached), None);
    };
    let differ: Vec<String> = nodes
        .iter()
        .filter(|n| n.peak_gflops_per_core != first.peak_gflops_per_core)
        .map(|n| format!("{} {:.1}", n.host, n.peak_gflops_per_core))
        .collect();
    let warning = (!differ.is_empty()).then(|| {
        format!(
            "the points ran on nodes with different peaks per core ({} {:.1}, {} GFLOP/s); each point's \"% peak\" is of its own node's figure, but the header and the roofline quote {}'s, so compare points of one node type only",
            first.host,
            first.peak_gflops_per_core,
            differ.join(", "),
            first.host
        )
    });
    (first, warning)
}

/// The compute nodes of a run as SLURM tasks recorded them ([`record_in_run`]), with measured
/// peaks only, sorted by host name; empty for a local run.
pub fn run_nodes(run_root: &Path) -> Vec<Machine> {
    let mut nodes: Vec<Machine> = fs::read_dir(run_root.join(RUN_MACHINES_DIR))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read(e.path()).ok())
        .filter_map(|b| serde_json::from_slice::<Machine>(&b).ok())
        .filter(|m| m.fma_measured)
        .collect();
    nodes.sort_by(|a, b| a.host.cmp(&b.host));
    nodes
}

/// The figure cached in `path` for `key`: `Ok(None)` when there is no file, `Err` with the warning
/// to show when the file is unreadable, corrupt, another key's or fails [`MeasuredPeak::check`].
fn read_cached(path: &Path, key: &CacheKey) -> Result<Option<MeasuredPeak>, String> {
    let again = "measuring the clock and FMA throughput again";
    let shown = path.display();
    let text = match fs::read_to_string(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {shown} ({e}); {again}")),
        Ok(text) => text,
    };
    let c = serde_json::from_str::<MeasuredPeak>(&text)
        .map_err(|e| format!("{shown} is corrupt ({e}); {again} and replacing it"))?;
    if c.key != *key {
        return Err(format!(
            "{shown} was measured on another machine (host {}, cpu {}, {} cores); {again} and replacing it",
            c.key.host, c.key.cpu_model, c.key.cores
        ));
    }
    c.check().map_err(|why| {
        format!("{shown} holds an implausible figure ({why}); {again} and replacing it")
    })?;
    Ok(Some(c))
}

/// An exclusive lock on `<path without .json>.lock`, created (with its folder) if need be;
/// `None` where the folder cannot be made or the file system has no locks (the cache then works
/// unlocked: at worst two processes measure at once and the last write wins).
fn lock_beside(path: &Path) -> Option<fs::File> {
    fs::create_dir_all(path.parent()?).ok()?;
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_extension("lock"))
        .ok()?;
    file.lock().ok()?;
    Some(file)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of the first `/proc/cpuinfo` line starting with `name`.
fn cpuinfo_field(cpuinfo: &str, name: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

/// Logical CPUs this process may use (1 if unknown): its affinity mask, as
/// [`std::thread::available_parallelism`] reads it.
pub fn available_cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else "unknown").
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Memory of this machine in bytes (`MemTotal` of `/proc/meminfo`), read once; `None` when it
/// cannot be read. Checks of points judge their memory against it (see
/// [`crate::workload::Node::this_machine`]).
pub fn memory_total() -> Option<u64> {
    static MEM: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *MEM.get_or_init(|| {
        fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|kb| kb.parse::<u64>().ok())
                    })
            })
            .map(|kb| kb * 1024)
            .filter(|&b| b > 0)
    })
}

fn caches() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let read = |f: &str| fs::read_to_string(format!("{dir}/{f}")).map(|s| s.trim().to_string());
        let (Ok(level), Ok(kind), Ok(size)) = (read("level"), read("type"), read("size")) else {
            break;
        };
        if kind == "Instruction" {
            continue;
        }
        let bytes = parse_cache_size(&size);
        let name = if kind == "Data" {
            format!("L{level}d")
        } else {
            format!("L{level}")
        };
        out.push((name, bytes));
    }
    out
}

fn parse_cache_size(s: &str) -> u64 {
    let (num, mult) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1024),
        Some('M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().unwrap_or(0) * mult
}

/// (name, f64 lanes, FMA pipes assumed).
fn simd_features() -> (&'static str, u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = if std::arch::is_x86_feature_detected!("fma") {
            2
        } else {
            1
        };
        if std::arch::is_x86_feature_detected!("avx512f") {
            return ("avx512", 8, fma);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return ("avx2", 4, fma);
        }
        ("sse2", 2, 1)
    }
    #[cfg(target_arch = "aarch64")]
    {
        ("neon", 2, 2)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        ("scalar", 1, 1)
    }
}

// ---------------------------------------------------------------------------------------------
// The probe: clock and FMA throughput, measured together.
// ---------------------------------------------------------------------------------------------

/// Version of the probe's method, part of the cache key: a change to the probe invalidates every
/// cached figure measured the old way.
const PROBE_VERSION: u32 = 2;

/// Rounds of interleaved trials in the first batch; each further batch doubles them. A round is
/// one clock trial, one full-width and one half-width FMA trial, about half a millisecond in all,
/// so the first batch takes about 50 ms and all four at most about 0.75 s.
const PROBE_ROUNDS: usize = 100;

/// Batches the probe may take before the fallback rule decides (see [`judge_fma`]).
const PROBE_BATCHES: usize = 4;

/// How far a measured FMAs-per-cycle figure may lie from a whole number of pipes and still count
/// as that number: ±0.25 leaves the band 1.25–1.75 as "neither" (see [`judge_fma`]).
pub const FMA_TOLERANCE: f64 = 0.25;

/// The clock-free ratio (full-width FMA rate / half-width FMA rate) at or above which a core
/// counts as two full-width pipes: the ratio is 1.0 for two pipes and 0.5 for one, so 0.75 is the
/// midpoint.
pub const FMA_RATIO_SPLIT: f64 = 0.75;

/// Adds in one clock trial: a million cycles, a quarter of a millisecond at 4 GHz.
const CLOCK_ADDS: u64 = 1_000_000;

/// Loop iterations of one FMA trial; each iteration issues one FMA on every chain (16 or 15), so a
/// trial is about 300,000 cycles on a two-pipe core: as long as a clock trial, so both see the
/// same chance of being interrupted.
const FMA_LOOPS: u64 = 40_000;

/// Multiplier of the FMA chains `a = a·m + a`: small enough that `a` stays exactly 1.0 (no
/// overflow, no subnormals, which are slow on some cores), yet not zero, so no core can take a
/// shortcut on it.
const FMA_MULTIPLIER: f64 = 1.0 / (1u64 << 60) as f64;

/// What one probe measured, and what it decided.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Probe {
    /// Clock in GHz: the fastest dependent-add trial.
    pub clock_ghz: f64,
    /// Full-width FMAs retired per cycle: fastest full-width trial / clock.
    pub full_per_cycle: f64,
    /// Half-width FMAs retired per cycle: fastest half-width trial / clock.
    pub half_per_cycle: f64,
    /// Full-width FMA pipes, decided by [`judge_fma`] (or [`fallback_fma_units`]).
    pub fma_units: u32,
    /// Whether the last batch was still ambiguous and the clock-free ratio decided.
    pub fallback: bool,
    /// Rounds of trials taken (each round: one trial of each kind).
    pub rounds: usize,
}

/// The answer of one batch of trials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FmaVerdict {
    /// A whole number of full-width FMA pipes that both measures agree on.
    Units(u32),
    /// The measures disagree or fall between 1 and 2 pipes: measure more.
    Ambiguous,
}

/// The ISA sanity rule. `full` is the full-width FMAs per cycle (FMA rate over the add-chain
/// clock); `ratio` the full-width FMA rate over the half-width rate, both measured interleaved.
///
/// Every x86 core with FMA retires one or two full-width FMAs per cycle (Zen 4 one 512-bit FMA,
/// Zen 3, Zen 5 and Intel cores two of their widest), and two half-width ones (two 128-bit FMAs
/// on AVX2 cores, two 256-bit ones on AVX-512 cores), so:
/// - `full` must lie within [`FMA_TOLERANCE`] of 1 or 2;
/// - `ratio` says the same without any clock: ≈ 1.0 for two full-width pipes, ≈ 0.5 for one
///   ([`FMA_RATIO_SPLIT`] between them).
///
/// Both agreeing gives [`FmaVerdict::Units`]; anything else — a value between 1.25 and 1.75, a
/// value outside the ISA's 1–2, or the two measures disagreeing (a busy hyperthread sibling
/// halves the FMA rate but not the add chain's) — is [`FmaVerdict::Ambiguous`], and the probe takes
/// another, larger batch of trials.
pub fn judge_fma(full: f64, ratio: f64) -> FmaVerdict {
    let by_clock = [1u32, 2]
        .into_iter()
        .find(|&u| (full - u as f64).abs() <= FMA_TOLERANCE);
    match by_clock {
        Some(u) if u == fallback_fma_units(ratio) => FmaVerdict::Units(u),
        _ => FmaVerdict::Ambiguous,
    }
}

/// The rule when the last batch is still ambiguous: the clock-free ratio decides, rounded at
/// [`FMA_RATIO_SPLIT`]. Both its trials are full FMA loops run back to back, so whatever slows
/// the core (another process, a busy sibling thread, a lower AVX-512 clock) slows both alike,
/// while the clock-based figure mixes a latency-bound add chain with a throughput-bound FMA loop.
pub fn fallback_fma_units(ratio: f64) -> u32 {
    if ratio >= FMA_RATIO_SPLIT {
        2
    } else {
        1
    }
}

/// Measure the clock and the FMA throughput of this core for `lanes`-wide f64 registers
/// (8: AVX-512, 4: AVX2); `None` where the CPU lacks FMA or is not x86-64.
///
/// Why each choice:
/// - **Independent chains.** An FMA's result is ready 4 cycles later (3–5 on current cores), and a
///   core has at most 2 pipes, so at least 4 × 2 = 8 FMAs must be in flight to keep both pipes
///   busy; the full-width loop runs 16 independent chains on AVX-512 (32 registers) and 15 on
///   AVX2 (16 registers, one holding the multiplier): about twice what the pipes need, so neither
///   latency nor a slower sibling chain can make two pipes look like one. The loop is written in
///   assembly so the compiler can neither spill an accumulator nor drop a chain.
/// - **Best of many short trials.** Another process, an interrupt or a descheduled vCPU only ever
///   make a trial slower, never faster, so the fastest trial of many is the undisturbed one. Each
///   trial lasts about a quarter of a millisecond, well inside a scheduler time slice, so even on
///   a fully loaded machine most trials run uninterrupted.
/// - **Clock and FMA interleaved.** Each round times a clock trial, then a full-width and a
///   half-width FMA trial, so all three see the same conditions (turbo state, vCPU placement);
///   the clock is the same best-of statistic as the FMA rate.
/// - **A sanity bound against the ISA.** See [`judge_fma`]: when a batch's answer is not a clean
///   1 or 2 that the clock-free ratio confirms, the probe takes up to `PROBE_BATCHES` batches,
///   each twice the last (keeping the bests), and then lets [`fallback_fma_units`] decide.
pub fn probe(lanes: u32) -> Option<Probe> {
    probe_with(lanes, PROBE_ROUNDS, PROBE_BATCHES)
}

/// [`probe`] with its batch size and count, for tests that want a quicker answer.
#[cfg(target_arch = "x86_64")]
pub fn probe_with(lanes: u32, first_rounds: usize, batches: usize) -> Option<Probe> {
    // (full-width trial, its chains, half-width trial, its chains)
    type Trial = unsafe fn(u64);
    let (full, full_chains, half, half_chains): (Trial, u64, Trial, u64) = match lanes {
        8 if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("fma") =>
        {
            (fma_zmm16, 16, fma_ymm15, 15)
        }
        4 if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma") =>
        {
            (fma_ymm15, 15, fma_xmm15, 15)
        }
        _ => return None,
    };
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64()
    };
    let mut best = [f64::INFINITY; 3];
    let mut rounds = 0;
    let mut last = None;
    for batch in 0..batches.max(1) {
        let n = first_rounds.max(1) << batch;
        for _ in 0..n {
            best[0] = best[0].min(time(&|| add_chain(CLOCK_ADDS / 100)));
            // SAFETY: the match above chose trials whose instruction sets this CPU has.
            best[1] = best[1].min(time(&|| unsafe { full(FMA_LOOPS) }));
            best[2] = best[2].min(time(&|| unsafe { half(FMA_LOOPS) }));
        }
        rounds += n;
        if best.iter().any(|&t| t <= 0.0) {
            return None;
        }
        let hz = CLOCK_ADDS as f64 / best[0];
        let full_rate = (FMA_LOOPS * full_chains) as f64 / best[1];
        let half_rate = (FMA_LOOPS * half_chains) as f64 / best[2];
        let (full_pc, half_pc) = (full_rate / hz, half_rate / hz);
        let mut p = Probe {
            clock_ghz: hz / 1e9,
            full_per_cycle: full_pc,
            half_per_cycle: half_pc,
            fma_units: 0,
            fallback: false,
            rounds,
        };
        if let FmaVerdict::Units(u) = judge_fma(full_pc, full_rate / half_rate) {
            p.fma_units = u;
            return Some(p);
        }
        p.fma_units = fallback_fma_units(full_rate / half_rate);
        p.fallback = true;
        last = Some(p);
    }
    last
}

#[cfg(not(target_arch = "x86_64"))]
pub fn probe_with(_lanes: u32, _first_rounds: usize, _batches: usize) -> Option<Probe> {
    None
}

/// Measure the clock alone: the add chain of [`probe`], best of 300 trials. x86-64 only.
pub fn measure_clock_ghz() -> Option<f64> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let mut best = f64::INFINITY;
    for _ in 0..300 {
        let t = Instant::now();
        add_chain(CLOCK_ADDS / 100);
        best = best.min(t.elapsed().as_secs_f64());
    }
    (best > 0.0).then(|| CLOCK_ADDS as f64 / best / 1e9)
}

/// `loops` × 100 dependent integer additions: each needs the previous result, so one retires per
/// cycle on every current x86 core, and the time is the cycle count over the clock.
#[cfg(target_arch = "x86_64")]
fn add_chain(loops: u64) {
    // SAFETY: pure register arithmetic; no memory is touched.
    unsafe {
        std::arch::asm!(
            "2:",
            ".rept 100",
            "add {x}, 1",
            ".endr",
            "dec {n}",
            "jnz 2b",
            x = inout(reg) 0u64 => _,
            n = inout(reg) loops => _,
            options(nomem, nostack),
        );
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn add_chain(_loops: u64) {}

/// 16 independent chains `zmm_i = zmm_i · m + zmm_i` on AVX-512 registers, `loops` times.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn fma_zmm16(loops: u64) {
    let consts = [1.0f64, FMA_MULTIPLIER];
    // SAFETY: reads the two constants; every register written is declared clobbered.
    unsafe {
        std::arch::asm!(
            "vbroadcastsd zmm16, qword ptr [{c} + 8]",
            "vbroadcastsd zmm0, qword ptr [{c}]",
            ".irp r,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "vmovapd zmm\\r, zmm0",
            ".endr",
            "2:",
            ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "vfmadd231pd zmm\\r, zmm\\r, zmm16",
            ".endr",
            "dec {n}",
            "jnz 2b",
            c = in(reg) consts.as_ptr(),
            n = inout(reg) loops => _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
            out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _,
            out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _,
            options(nostack, readonly),
        );
    }
}

/// 15 independent chains on 256-bit registers (the 16th holds the multiplier).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_ymm15(loops: u64) {
    let consts = [1.0f64, FMA_MULTIPLIER];
    // SAFETY: reads the two constants; every register written is declared clobbered.
    unsafe {
        std::arch::asm!(
            "vbroadcastsd ymm15, qword ptr [{c} + 8]",
            "vbroadcastsd ymm0, qword ptr [{c}]",
            ".irp r,1,2,3,4,5,6,7,8,9,10,11,12,13,14",
            "vmovapd ymm\\r, ymm0",
            ".endr",
            "2:",
            ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14",
            "vfmadd231pd ymm\\r, ymm\\r, ymm15",
            ".endr",
            "dec {n}",
            "jnz 2b",
            c = in(reg) consts.as_ptr(),
            n = inout(reg) loops => _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _,
            out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
            out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _,
            out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack, readonly),
        );
    }
}

/// 15 independent chains on 128-bit registers: the half-width reference of AVX2 cores.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,fma")]
unsafe fn fma_xmm15(loops: u64) {
    let consts = [1.0f64, FMA_MULTIPLIER];
    // SAFETY: reads the two constants; every register written is declared clobbered.
    unsafe {
        std::arch::asm!(
            "vmovddup xmm15, qword ptr [{c} + 8]",
            "vmovddup xmm0, qword ptr [{c}]",
            ".irp r,1,2,3,4,5,6,7,8,9,10,11,12,13,14",
            "vmovapd xmm\\r, xmm0",
            ".endr",
            "2:",
            ".irp r,0,1,2,3,4,5,6,7,8,9,10,11,12,13,14",
            "vfmadd231pd xmm\\r, xmm\\r, xmm15",
            ".endr",
            "dec {n}",
            "jnz 2b",
            c = in(reg) consts.as_ptr(),
            n = inout(reg) loops => _,
            out("xmm0") _, out("xmm1") _, out("xmm2") _, out("xmm3") _,
            out("xmm4") _, out("xmm5") _, out("xmm6") _, out("xmm7") _,
            out("xmm8") _, out("xmm9") _, out("xmm10") _, out("xmm11") _,
            out("xmm12") _, out("xmm13") _, out("xmm14") _, out("xmm15") _,
            options(nostack, readonly),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    #[test]
    fn detects_something_plausible() {
        let dir = tempfile::tempdir().unwrap();
        let (m, warnings) = detect_in(Some(dir.path()), false, probe);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert!(m.cores >= 1);
        assert!(m.simd_f64_lanes >= 1);
        if cfg!(target_arch = "x86_64") {
            assert!(
                m.clock_ghz > 0.3 && m.clock_ghz < 10.0,
                "clock {}",
                m.clock_ghz
            );
            let expect = m.simd_f64_lanes as f64 * m.fma_units as f64 * 2.0 * m.clock_ghz;
            assert!((m.peak_gflops_per_core - expect).abs() <= 0.05 + 1e-9);
        }
        if m.fma_measured {
            assert!((1..=2).contains(&m.fma_units), "{}", m.fma_units);
            assert_eq!(m.peak_source, "measured");
        }
        assert!(m.describe().contains("peak f64 per core"));
    }

    #[test]
    fn the_isa_rule_on_synthetic_inputs() {
        use FmaVerdict::*;
        // Clean answers that the clock-free ratio confirms.
        assert_eq!(judge_fma(2.0, 1.0), Units(2));
        assert_eq!(judge_fma(1.97, 0.99), Units(2));
        assert_eq!(judge_fma(1.0, 0.5), Units(1));
        assert_eq!(judge_fma(1.25, 0.5), Units(1));
        assert_eq!(judge_fma(1.75, 0.9), Units(2));
        // Between 1 and 2 pipes: measure more.
        assert_eq!(judge_fma(1.26, 0.5), Ambiguous);
        assert_eq!(judge_fma(1.5, 1.0), Ambiguous);
        assert_eq!(judge_fma(1.74, 0.9), Ambiguous);
        // Outside the ISA's 1..2.
        assert_eq!(judge_fma(0.6, 0.5), Ambiguous);
        assert_eq!(judge_fma(2.4, 1.0), Ambiguous);
        // Half the FMA rate but a full clock (a busy sibling thread): the measures disagree.
        assert_eq!(judge_fma(1.0, 1.0), Ambiguous);
        assert_eq!(judge_fma(2.0, 0.5), Ambiguous);
        // The fallback: the clock-free ratio, split at 0.75.
        assert_eq!(fallback_fma_units(1.0), 2);
        assert_eq!(fallback_fma_units(0.75), 2);
        assert_eq!(fallback_fma_units(0.74), 1);
        assert_eq!(fallback_fma_units(0.5), 1);
    }

    fn peak(units: u32, full: f64, fallback: bool, ghz: f64) -> MeasuredPeak {
        MeasuredPeak {
            key: CacheKey::of(&Machine::detect_quick()),
            measured_at: "2026-12-06T10:00:00Z".into(),
            scalelab_version: "0".into(),
            clock_ghz: ghz,
            fma_units: units,
            full_fma_per_cycle: full,
            half_fma_per_cycle: 2.0,
            fallback,
            rounds: 100,
        }
    }

    #[test]
    fn cached_figures_are_checked_against_the_isa() {
        assert_eq!(peak(2, 1.98, false, 3.2).check(), Ok(()));
        assert_eq!(peak(1, 1.02, false, 3.2).check(), Ok(()));
        assert_eq!(peak(2, 1.6, true, 3.2).check(), Ok(()));
        assert_eq!(
            peak(3, 2.9, false, 3.2).check(),
            Err("3 FMA pipes per core, where every core has 1 or 2".into())
        );
        assert_eq!(
            peak(2, 1.6, false, 3.2).check(),
            Err("1.60 full-width FMAs per cycle does not round to its 2 FMA pipes".into())
        );
        assert_eq!(
            peak(1, 0.3, true, 3.2).check(),
            Err("0.30 full-width FMAs per cycle, outside the ISA's 1 to 2".into())
        );
        assert_eq!(
            peak(2, 2.0, false, 0.0).check(),
            Err("a clock of 0.00 GHz".into())
        );
    }

    /// A probe that answers 2 pipes at 3 GHz and counts its calls.
    fn fake(calls: &Cell<usize>) -> impl Fn(u32) -> Option<Probe> + '_ {
        move |_| {
            calls.set(calls.get() + 1);
            Some(Probe {
                clock_ghz: 3.0,
                full_per_cycle: 1.98,
                half_per_cycle: 1.99,
                fma_units: 2,
                fallback: false,
                rounds: 100,
            })
        }
    }

    #[test]
    fn the_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let calls = Cell::new(0);
        let mut quick = Machine::detect_quick();
        quick.simd_f64_lanes = 8;
        quick.simd = "avx512".into();
        let path = dir.path().join(CacheKey::of(&quick).file_name());
        let shown = path.display().to_string();
        let again = "measuring the clock and FMA throughput again and replacing it";

        // Nothing cached: measured, written.
        let (m, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!((calls.get(), w.len()), (1, 0), "{w:?}");
        assert_eq!(m.peak_source, "measured");
        assert_eq!(m.peak_cache_file, shown);
        assert_eq!(
            (m.fma_units, m.clock_ghz, m.peak_gflops_per_core),
            (2, 3.0, 96.0)
        );
        let file: MeasuredPeak = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(file.key, CacheKey::of(&quick));
        assert_eq!((file.fma_units, file.full_fma_per_cycle), (2, 1.98));

        // Cached: read, not measured; the same figure and date.
        let (c, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!((calls.get(), w.len()), (1, 0), "{w:?}");
        assert_eq!(c.peak_source, "cached");
        assert_eq!(c.peak_gflops_per_core, m.peak_gflops_per_core);
        assert_eq!(c.peak_measured_at, m.peak_measured_at);
        assert!(
            c.describe().contains(&format!(
                "cached from {} in {shown}; re-measure with `scalelab info --remeasure`",
                m.peak_measured_at
            )),
            "{}",
            c.describe()
        );

        assert_eq!(
            c.peak_basis(),
            format!("clock and FMA pipes measured {}", &m.peak_measured_at[..10])
        );
        assert_eq!(quick.peak_basis(), "nominal clock, FMA pipes assumed");

        // --remeasure: measured again.
        let (r, _) = detect_from(quick.clone(), Some(dir.path()), true, fake(&calls));
        assert_eq!((calls.get(), r.peak_source.as_str()), (2, "measured"));

        // Another host (a heterogeneous cluster sharing one home): its own file, measured.
        let mut other = quick.clone();
        other.host = "node17".into();
        let (o, w) = detect_from(other.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!((calls.get(), w.len()), (3, 0));
        assert_ne!(o.peak_cache_file, shown);
        let figures = fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap() == "json")
            .count();
        assert_eq!(figures, 2);
        assert!(path.with_extension("lock").exists());
        // A smaller allocation on the same node is the same key (the node's CPUs count)...
        let mut fewer = quick.clone();
        fewer.cores = 1;
        assert_eq!(CacheKey::of(&fewer), CacheKey::of(&quick));
        // ... while a node with another CPU count, model or flags, or a newer probe, is another.
        let key = CacheKey::of(&quick);
        for other in [
            CacheKey {
                cores: key.cores + 1,
                ..key.clone()
            },
            CacheKey {
                cpu_model: "AMD EPYC 7B13".into(),
                ..key.clone()
            },
            CacheKey {
                cpu_flags_sha256: hex(&Sha256::digest(b"fpu fma")),
                ..key.clone()
            },
            CacheKey {
                probe_version: PROBE_VERSION + 1,
                ..key.clone()
            },
        ] {
            assert_ne!(other.file_name(), key.file_name(), "{other:?}");
        }

        // A file whose key is not this machine's: measured again, replaced.
        let mut edited = file.clone();
        edited.key.cores = 99;
        fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
        let (_, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!(calls.get(), 4);
        assert_eq!(
            w,
            vec![format!(
                "{shown} was measured on another machine (host {}, cpu {}, 99 cores); {again}",
                quick.host, quick.cpu_model
            )]
        );
        let (_, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!((calls.get(), w.len()), (4, 0), "replaced by a good file");

        // A corrupt file: a warning, measured again, replaced.
        fs::write(&path, "{\"key\": tru").unwrap();
        let (m2, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!(calls.get(), 5);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with(&format!("{shown} is corrupt (")) && w[0].ends_with(again),
            "{}",
            w[0]
        );
        assert_eq!(m2.peak_source, "measured");
        let (_, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!((calls.get(), w.len()), (5, 0));

        // A figure that fails the ISA sanity bound: measured again.
        let mut bad = file.clone();
        bad.fma_units = 4;
        fs::write(&path, serde_json::to_vec(&bad).unwrap()).unwrap();
        let (m3, w) = detect_from(quick.clone(), Some(dir.path()), false, fake(&calls));
        assert_eq!(calls.get(), 6);
        assert_eq!(
            w,
            vec![format!(
                "{shown} holds an implausible figure (4 FMA pipes per core, where every core has 1 or 2); {again}"
            )]
        );
        assert_eq!(m3.fma_units, 2);

        // A cache folder that cannot be written: measured, said so, not fatal.
        let blocked = dir.path().join("a-file");
        fs::write(&blocked, "").unwrap();
        let (m4, w) = detect_from(quick.clone(), Some(&blocked), false, fake(&calls));
        assert_eq!((m4.fma_units, m4.peak_cache_file.as_str()), (2, ""));
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[0].starts_with("cannot read "), "{}", w[0]);
        assert!(
            w[1].starts_with("cannot cache the measured peak in "),
            "{}",
            w[1]
        );
        assert!(
            w[1].ends_with("set SCALELAB_MACHINE_CACHE to a writable folder"),
            "{}",
            w[1]
        );
    }

    /// Tasks starting together on a node with no figure yet: one measures, the others wait for
    /// its file and quote the same figure.
    #[test]
    fn processes_starting_together_measure_once() {
        let dir = tempfile::tempdir().unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let slow = |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(200));
            Some(Probe {
                clock_ghz: 3.0 + calls.load(Ordering::SeqCst) as f64 * 0.01,
                full_per_cycle: 2.0,
                half_per_cycle: 2.0,
                fma_units: 2,
                fallback: false,
                rounds: 100,
            })
        };
        let quick = Machine::detect_quick();
        let peaks: Vec<f64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| detect_from(quick.clone(), Some(dir.path()), false, slow).0))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().peak_gflops_per_core)
                .collect()
        });
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(peaks.iter().all(|&p| p == peaks[0]), "{peaks:?}");
    }

    #[test]
    fn a_report_quotes_the_compute_nodes_peak() {
        let dir = tempfile::tempdir().unwrap();
        let login = Machine {
            host: "login".into(),
            peak_gflops_per_core: 39.1,
            peak_source: "nominal".into(),
            ..Machine::default()
        };
        // No node recorded (a local run): the provenance's machine.
        let (m, w) = for_report(dir.path(), Some(login.clone()));
        assert_eq!((m.host.as_str(), w), ("login", None));
        let nodes = dir.path().join(RUN_MACHINES_DIR);
        fs::create_dir_all(&nodes).unwrap();
        let node = |host: &str, peak: f64| Machine {
            host: host.into(),
            fma_measured: true,
            peak_gflops_per_core: peak,
            peak_source: "cached".into(),
            ..Machine::default()
        };
        fs::write(
            nodes.join("n2.json"),
            serde_json::to_vec(&node("n2", 51.9)).unwrap(),
        )
        .unwrap();
        let (m, w) = for_report(dir.path(), Some(login.clone()));
        assert_eq!(
            (m.host.as_str(), m.peak_gflops_per_core, w),
            ("n2", 51.9, None)
        );
        fs::write(
            nodes.join("n1.json"),
            serde_json::to_vec(&node("n1", 135.6)).unwrap(),
        )
        .unwrap();
        let (m, w) = for_report(dir.path(), Some(login));
        assert_eq!(m.host, "n1");
        assert_eq!(
            w.as_deref(),
            Some(
                "the points ran on nodes with different peaks per core (n1 135.6, n2 51.9 GFLOP/s); each point's \"% peak\" is of its own node's figure, but the header and the roofline quote n1's, so compare points of one node type only"
            )
        );
    }

    /// The probe's answer does not change when every core also runs a busy thread (FMA work, the
    /// worst neighbour for an FMA probe). Compares the rounded FMA pipes, never times.
    #[test]
    fn the_probe_gives_the_same_answer_beside_busy_threads() {
        let lanes = Machine::detect_quick().simd_f64_lanes;
        let Some(quiet) = probe(lanes) else {
            return; // no FMA probe on this CPU (not x86-64, or no FMA)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let hogs: Vec<_> = (0..cores)
            .map(|k| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    let mut x = [1.0 + k as f64; 8];
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..10_000 {
                            for v in x.iter_mut() {
                                *v = v.mul_add(0.999_999, 1e-9);
                            }
                        }
                        x = std::hint::black_box(x);
                    }
                })
            })
            .collect();
        let busy: Vec<Probe> = (0..2).filter_map(|_| probe(lanes)).collect();
        stop.store(true, Ordering::Relaxed);
        for h in hogs {
            h.join().unwrap();
        }
        assert_eq!(busy.len(), 2);
        for b in busy {
            assert_eq!(
                b.fma_units, quiet.fma_units,
                "quiet {quiet:?}, beside {cores} busy threads {b:?}"
            );
        }
    }

    /// Both register widths the probe knows (AVX-512 and AVX2, each with its half-width
    /// reference) give one or two whole pipes here, so neither path counts its FMAs wrong.
    #[test]
    fn both_probe_paths_give_whole_pipes() {
        for lanes in [8, 4] {
            let Some(p) = probe(lanes) else {
                continue; // this CPU lacks that instruction set
            };
            assert!((1..=2).contains(&p.fma_units), "{lanes} lanes: {p:?}");
            assert!(
                (0.5..=2.5).contains(&p.full_per_cycle) && (0.5..=2.5).contains(&p.half_per_cycle),
                "{lanes} lanes: {p:?}"
            );
        }
    }

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("48K"), 48 * 1024);
        assert_eq!(parse_cache_size("32M"), 32 << 20);
    }

    /// `machine` sits below `workload` (workloads read the host name and memory from here): no
    /// code line of this file may reach into `crate::workload`, or the two modules would form a
    /// cycle again.
    #[test]
    fn machine_does_not_depend_on_workload() {
        let code: Vec<&str> = include_str!("machine.rs")
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .filter(|l| l.contains(concat!("crate::", "workload")))
            .collect();
        assert!(code.is_empty(), "{code:?}");
    }
}

//! The machine profile: what `scalelab calibrate` measured, as JSON, and where it lives.
//!
//! A profile holds the *attainable* peaks of one machine (STREAM triad bandwidth and DGEMM
//! GFLOP/s at each core count, the bandwidth of each cache level, MPI ping-pong latency and
//! bandwidth), beside the theoretical figures of [`Machine`]. Reports divide a point's rate by
//! these to give "% of measured peak" next to "% of theoretical peak"; the roofline draws its
//! ceilings from them. The schema is documented field by field in `docs/benchmarking.md`
//! ("Machine profile"); [`SCHEMA`] changes whenever a field changes meaning or is removed, and a
//! profile of another schema is refused with the command that makes a new one.
//!
//! Where profiles live: [`default_path`] (`$SCALELAB_PROFILE`, else
//! `$XDG_CACHE_HOME/scalelab/profile-<key>.json`, else `~/.cache/scalelab/…`), keyed by
//! [`machine_key`] (host, CPU model, cores) so that a profile is never used on another machine
//! shape. `scalelab run` copies the profile it used into the run directory as
//! [`RUN_FILE`], so a report stays reproducible after the cache is gone.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::machine::Machine;

/// The schema version this build writes and reads.
pub const SCHEMA: u32 = 1;

/// The profile's name inside a run directory.
pub const RUN_FILE: &str = "machine-profile.json";

/// The environment variable that overrides [`default_path`].
pub const ENV_PATH: &str = "SCALELAB_PROFILE";

/// Attainable peaks of one machine, measured by `scalelab calibrate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Schema version ([`SCHEMA`]).
    pub schema: u32,
    /// When the calibration finished (RFC 3339).
    pub created: String,
    /// The scalelab version that measured it.
    pub scalelab_version: String,
    /// [`machine_key`] of the machine it was measured on.
    pub key: String,
    /// The machine, with its measured clock and theoretical peak ([`Machine::detect`]).
    pub machine: Machine,
    /// Made with `--quick` (small sizes, few repetitions: for trying things, not for reports).
    pub quick: bool,
    /// Seconds the calibration took.
    pub wall_s: f64,
    /// Load averages (1, 5, 15 min) from `/proc/loadavg` before and after measuring.
    pub load_before: [f64; 3],
    /// See `load_before`.
    pub load_after: [f64; 3],
    /// STREAM triad (`a = b + q·c`, streaming stores, 24 bytes per element) at each core count.
    pub triad: Vec<Bandwidth>,
    /// Bandwidth of the cache-resident triad at each working set and core count.
    pub sweep: Vec<Bandwidth>,
    /// The sweep read at one working set per cache level (L1, L2, L3) and DRAM, per core count.
    pub levels: Vec<Level>,
    /// DGEMM at each core count, one entry per variant (`tuned`, `faer`).
    pub dgemm: Vec<Gemm>,
    /// MPI ping-pong between two ranks, or why it was not measured.
    pub mpi: Mpi,
    /// MPI ping-pong between two nodes, one rank on each: measured when `calibrate` runs in a
    /// SLURM allocation of two or more nodes (`scalelab sbatch --calibrate` asks for two where the
    /// partition has them); absent otherwise, and in older profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mpi_nodes: Option<Mpi>,
}

/// A bandwidth measured at one working set and core count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bandwidth {
    /// Threads (one per core) that ran the kernel.
    pub cores: usize,
    /// Bytes of the three arrays, summed over all threads.
    pub working_set_bytes: u64,
    /// Best repetition, GB/s (10⁹ bytes/s, STREAM's count: 24 bytes per element).
    pub gbps: f64,
    /// Median repetition, GB/s.
    pub gbps_median: f64,
}

/// The bandwidth of one level of the memory hierarchy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// "L1", "L2", "L3" or "DRAM".
    pub level: String,
    /// Threads that ran the kernel.
    pub cores: usize,
    /// Working set per thread that stands for this level, bytes.
    pub working_set_per_core_bytes: u64,
    /// Best repetition, GB/s, all threads together.
    pub gbps: f64,
    /// Median repetition, GB/s.
    pub gbps_median: f64,
}

/// DGEMM throughput at one core count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gemm {
    /// "tuned" (scalelab's packed kernel) or "faer".
    pub variant: String,
    /// Threads.
    pub cores: usize,
    /// Matrix order (n × n, 2n³ flops).
    pub n: usize,
    /// Best repetition, GFLOP/s.
    pub gflops: f64,
    /// Median repetition, GFLOP/s.
    pub gflops_median: f64,
}

/// MPI ping-pong, measured or skipped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Mpi {
    /// Two ranks under `mpirun`: on this node (`mpi`), or one on each of two nodes (`mpi_nodes`).
    Measured {
        /// One-way time of an 8-byte message, µs (best of the repetitions).
        latency_us: f64,
        /// 1 MiB messages: bytes sent one way per second, GB/s (best).
        bandwidth_gbps: f64,
        /// Ranks that took part (2).
        ranks: usize,
        /// Nodes the ranks ran on (1 for `mpi`, 2 for `mpi_nodes`).
        nodes: usize,
    },
    /// Not measured, and why (no MPI in this build, no `mpirun`, a failed launch).
    Skipped {
        /// In plain words, with what to do.
        reason: String,
    },
}

impl Profile {
    /// STREAM triad GB/s at `cores` threads (exactly that count), if measured.
    pub fn triad_gbps(&self, cores: usize) -> Option<f64> {
        self.triad.iter().find(|b| b.cores == cores).map(|b| b.gbps)
    }

    /// The median of the STREAM triad's passes at `cores` threads, GB/s: the figure a point's
    /// median is compared with ("% measured"), the same statistic on both sides.
    pub fn triad_gbps_median(&self, cores: usize) -> Option<f64> {
        self.triad
            .iter()
            .find(|b| b.cores == cores)
            .map(|b| b.gbps_median)
    }

    /// The median GFLOP/s of the DGEMM variant with the highest median at `cores` threads.
    pub fn dgemm_gflops_median(&self, cores: usize) -> Option<f64> {
        self.dgemm
            .iter()
            .filter(|g| g.cores == cores)
            .map(|g| g.gflops_median)
            .reduce(f64::max)
    }

    /// The best DGEMM GFLOP/s of any variant at `cores` threads, if measured.
    pub fn dgemm_gflops(&self, cores: usize) -> Option<f64> {
        self.dgemm
            .iter()
            .filter(|g| g.cores == cores)
            .map(|g| g.gflops)
            .reduce(f64::max)
    }

    /// Bandwidth of `level` ("L1", "L2", "L3", "DRAM") at `cores` threads, if measured.
    pub fn level_gbps(&self, level: &str, cores: usize) -> Option<f64> {
        self.levels
            .iter()
            .find(|l| l.level == level && l.cores == cores)
            .map(|l| l.gbps)
    }

    /// The core counts that were measured, ascending.
    pub fn core_counts(&self) -> Vec<usize> {
        let mut c: Vec<usize> = self.triad.iter().map(|b| b.cores).collect();
        c.sort_unstable();
        c.dedup();
        c
    }

    /// Read and check a profile. Errors name the file and say how to make a new one.
    pub fn load(path: &Path) -> Result<Profile> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Profile::parse(&bytes).with_context(|| {
            format!(
                "{} is not a machine profile this scalelab can read; make a new one with `scalelab calibrate --out {}`",
                path.display(),
                path.display()
            )
        })
    }

    /// Parse and check profile JSON (any schema other than [`SCHEMA`] is refused).
    pub fn parse(bytes: &[u8]) -> Result<Profile> {
        #[derive(Deserialize)]
        struct Head {
            schema: u32,
        }
        let head: Head = serde_json::from_slice(bytes).context("no \"schema\" field")?;
        if head.schema != SCHEMA {
            bail!(
                "schema {} (this scalelab reads schema {SCHEMA})",
                head.schema
            );
        }
        let p: Profile = serde_json::from_slice(bytes)?;
        p.check()?;
        Ok(p)
    }

    /// What every profile must satisfy: at least one core count, every rate positive and finite.
    fn check(&self) -> Result<()> {
        if self.triad.is_empty() || self.dgemm.is_empty() {
            bail!("no triad or DGEMM measurements");
        }
        let rates = self
            .triad
            .iter()
            .chain(&self.sweep)
            .flat_map(|b| [b.gbps, b.gbps_median])
            .chain(self.levels.iter().flat_map(|l| [l.gbps, l.gbps_median]))
            .chain(self.dgemm.iter().flat_map(|g| [g.gflops, g.gflops_median]));
        for r in rates {
            if !(r.is_finite() && r > 0.0) {
                bail!("a measured rate is {r}, not a positive number");
            }
        }
        Ok(())
    }
}

/// The key a profile is filed under: host, CPU model and core count, lower-case, with every run
/// of other characters as one `-` (e.g. `node01-amd-epyc-7b13-2c`).
pub fn machine_key(m: &Machine) -> String {
    let raw = format!("{}-{}-{}c", m.host, m.cpu_model, m.cores);
    let mut key = String::new();
    for ch in raw.chars() {
        if ch.is_ascii_alphanumeric() {
            key.push(ch.to_ascii_lowercase());
        } else if !key.ends_with('-') {
            key.push('-');
        }
    }
    key.trim_matches('-').to_string()
}

/// Where this machine's profile is read and written: `$SCALELAB_PROFILE` if set, else
/// `$XDG_CACHE_HOME/scalelab/profile-<key>.json`, else `$HOME/.cache/scalelab/profile-<key>.json`,
/// else `./.scalelab/profile-<key>.json`.
pub fn default_path(m: &Machine) -> PathBuf {
    if let Some(p) = std::env::var_os(ENV_PATH).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let dir = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("scalelab"))
        .unwrap_or_else(|| PathBuf::from(".scalelab"));
    dir.join(format!("profile-{}.json", machine_key(m)))
}

/// What a run directory says about measured peaks: its profile, or why there is none.
#[derive(Clone, Debug)]
pub enum RunProfile {
    /// `<run>/machine-profile.json`, read and checked.
    Found(Box<Profile>),
    /// No profile in the run directory.
    Missing,
    /// A profile that cannot be read, with the reason.
    Unreadable(String),
}

impl RunProfile {
    /// Look for [`RUN_FILE`] in `run_root`.
    pub fn load(run_root: &Path) -> RunProfile {
        let path = run_root.join(RUN_FILE);
        if !path.exists() {
            return RunProfile::Missing;
        }
        match Profile::load(&path) {
            Ok(p) => RunProfile::Found(Box::new(p)),
            Err(e) => RunProfile::Unreadable(format!("{e:#}")),
        }
    }

    /// The profile, if one was found.
    pub fn profile(&self) -> Option<&Profile> {
        match self {
            RunProfile::Found(p) => Some(p),
            _ => None,
        }
    }

    /// The line report.md shows under the machine line: where the measured peaks come from, or
    /// how to get them.
    pub fn describe(&self, run_root: &Path) -> String {
        let fix = format!(
            "make one with `scalelab calibrate --out {}` on the machine that ran it, then `scalelab report {}`",
            run_root.join(RUN_FILE).display(),
            run_root.display()
        );
        match self {
            RunProfile::Found(p) => {
                let cores = p.core_counts();
                let top = cores.last().copied().unwrap_or(1);
                format!(
                    "Measured peaks ([{RUN_FILE}]({RUN_FILE}), `scalelab calibrate`{}, {}): STREAM triad {} GB/s on 1 core (median {}), {} GB/s on {top} (median {}); DGEMM {} GFLOP/s on 1 core (median {}), {} on {top} (median {}). \"% peak\" is of the theoretical peak; \"% measured\" is the point's median rate over calibrate's median at the point's core count (the same statistic on both sides); the roofline draws calibrate's best as the ceiling.",
                    if p.quick { " --quick: rough" } else { "" },
                    p.created,
                    fmt(p.triad_gbps(1)),
                    fmt(p.triad_gbps_median(1)),
                    fmt(p.triad_gbps(top)),
                    fmt(p.triad_gbps_median(top)),
                    fmt(p.dgemm_gflops(1)),
                    fmt(p.dgemm_gflops_median(1)),
                    fmt(p.dgemm_gflops(top)),
                    fmt(p.dgemm_gflops_median(top)),
                )
            }
            RunProfile::Missing => format!(
                "No measured peaks: this run has no {RUN_FILE}, so \"% measured\" is empty; {fix}."
            ),
            RunProfile::Unreadable(e) => {
                format!("**Measured peaks unusable**: {e}. \"% measured\" is empty; {fix}.")
            }
        }
    }
}

fn fmt(x: Option<f64>) -> String {
    match x {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
        None => "–".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A complete profile with made-up figures, for the tests of every module that reads one.
    pub fn fixture() -> Profile {
        let bw = |cores, ws, g| Bandwidth {
            cores,
            working_set_bytes: ws,
            gbps: g,
            gbps_median: g * 0.95,
        };
        let level = |level: &str, cores, ws, g| Level {
            level: level.into(),
            cores,
            working_set_per_core_bytes: ws,
            gbps: g,
            gbps_median: g * 0.95,
        };
        let gemm = |variant: &str, cores, g| Gemm {
            variant: variant.into(),
            cores,
            n: 1024,
            gflops: g,
            gflops_median: g * 0.97,
        };
        Profile {
            schema: SCHEMA,
            created: "2026-12-06T10:00:00Z".into(),
            scalelab_version: "0.0.0".into(),
            key: "testhost-test-cpu-2c".into(),
            machine: Machine {
                host: "testhost".into(),
                cpu_model: "Test CPU".into(),
                cores: 2,
                ..Machine::default()
            },
            quick: false,
            wall_s: 30.0,
            load_before: [0.1, 0.2, 0.3],
            load_after: [0.4, 0.3, 0.3],
            triad: vec![bw(1, 1 << 30, 40.0), bw(2, 1 << 30, 50.0)],
            sweep: vec![bw(1, 24 << 10, 120.0), bw(2, 48 << 10, 240.0)],
            levels: vec![
                level("L1", 1, 24 << 10, 120.0),
                level("DRAM", 1, 128 << 20, 25.0),
            ],
            dgemm: vec![
                gemm("tuned", 1, 20.0),
                gemm("faer", 1, 25.0),
                gemm("tuned", 2, 45.0),
                gemm("faer", 2, 40.0),
            ],
            mpi: Mpi::Skipped {
                reason: "this scalelab was built without MPI".into(),
            },
            mpi_nodes: None,
        }
    }

    #[test]
    fn round_trips_and_looks_up_per_core_count() {
        let p = fixture();
        let json = serde_json::to_vec_pretty(&p).unwrap();
        let back = Profile::parse(&json).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.triad_gbps(2), Some(50.0));
        assert_eq!(back.triad_gbps(3), None);
        // The best variant at each core count.
        assert_eq!(back.dgemm_gflops(1), Some(25.0));
        assert_eq!(back.dgemm_gflops(2), Some(45.0));
        assert_eq!(back.level_gbps("L1", 1), Some(120.0));
        assert_eq!(back.core_counts(), vec![1, 2]);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["mpi"]["status"], "skipped");
    }

    #[test]
    fn other_schemas_and_bad_rates_are_refused() {
        let mut v = serde_json::to_value(fixture()).unwrap();
        v["schema"] = 99.into();
        let e = Profile::parse(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "schema 99 (this scalelab reads schema 1)");
        let mut p = fixture();
        p.dgemm[0].gflops = 0.0;
        let e = Profile::parse(&serde_json::to_vec(&p).unwrap()).unwrap_err();
        assert_eq!(e.to_string(), "a measured rate is 0, not a positive number");
    }

    #[test]
    fn key_is_filesystem_safe() {
        let m = Machine {
            host: "Node01.cluster".into(),
            cpu_model: "AMD EPYC 7B13 64-Core Processor".into(),
            cores: 2,
            ..Machine::default()
        };
        assert_eq!(
            machine_key(&m),
            "node01-cluster-amd-epyc-7b13-64-core-processor-2c"
        );
    }

    #[test]
    fn run_dir_without_or_with_a_broken_profile_says_how_to_make_one() {
        let dir = tempfile::tempdir().unwrap();
        let rp = RunProfile::load(dir.path());
        assert!(matches!(rp, RunProfile::Missing));
        let text = rp.describe(dir.path());
        assert!(
            text.starts_with("No measured peaks: this run has no machine-profile.json"),
            "{text}"
        );
        assert!(text.contains(&format!(
            "`scalelab calibrate --out {}`",
            dir.path().join(RUN_FILE).display()
        )));
        std::fs::write(dir.path().join(RUN_FILE), b"{\"schema\": 1, \"triad\": 3}").unwrap();
        let rp = RunProfile::load(dir.path());
        let RunProfile::Unreadable(why) = &rp else {
            panic!("{rp:?}")
        };
        assert!(
            why.contains("is not a machine profile this scalelab can read"),
            "{why}"
        );
        assert!(rp
            .describe(dir.path())
            .starts_with("**Measured peaks unusable**: "));
    }
}

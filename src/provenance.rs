//! Provenance: where, when and with what a run was made, written beside its results.
//!
//! `provenance.json` answers "can I trust and repeat this number?": the source revision (and whether
//! the tree had uncommitted changes), the scalelab version and compiled features, the compiler, the
//! machine (see [`crate::machine`]), the manifest's sha256 (its copy is `manifest.toml` beside it),
//! the executor, start and end times, SLURM job ids when present, and every environment variable
//! that changes results.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::machine::Machine;
use crate::results::{now_rfc3339, write_atomic, RunDir};

/// The contents of `provenance.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub scalelab_version: String,
    /// Cargo features compiled in ("mpi", "cuda").
    pub features: Vec<String>,
    pub rustc: String,
    /// Source revision: of the checkout the binary was built in, read when the run started (falls
    /// back to the revision at build time when that checkout is gone).
    pub git_revision: String,
    /// Whether tracked files differed from that revision (None when unknown).
    pub git_dirty: Option<bool>,
    pub machine: Machine,
    pub experiment: String,
    /// The manifest as given on the command line.
    pub manifest_path: String,
    /// sha256 of the manifest text (copied to `manifest.toml`).
    pub manifest_sha256: String,
    pub executor: String,
    pub command_line: Vec<String>,
    pub started: String,
    /// Empty while the run is going on or after it was interrupted.
    pub finished: String,
    /// Points in the plan, and how many ended ok / failed when the run finished.
    pub points: usize,
    pub points_ok: usize,
    pub points_failed: usize,
    /// SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, ... when the run happens inside a job.
    pub slurm: BTreeMap<String, String>,
    /// Environment variables that change results (threads, affinity, BLAS, GPUs).
    pub environment: BTreeMap<String, String>,
}

/// Variables (or prefixes ending in `_`) that change results and are recorded.
const RECORDED_ENV: &[&str] = &[
    "RAYON_NUM_THREADS",
    "OMP_",
    "GOMP_",
    "OPENBLAS_",
    "MKL_",
    "CUDA_VISIBLE_DEVICES",
    "OMPI_",
    "HWLOC_",
    "RUSTFLAGS",
];

impl Provenance {
    /// Provenance for a run starting now.
    pub fn start(
        machine: Machine,
        experiment: &str,
        manifest_path: &str,
        manifest_sha256: &str,
        executor: &str,
        points: usize,
    ) -> Provenance {
        let (git_revision, git_dirty) = git_state();
        let mut slurm = BTreeMap::new();
        let mut environment = BTreeMap::new();
        for (k, v) in std::env::vars() {
            if k.starts_with("SLURM_") {
                slurm.insert(k, v);
            } else if RECORDED_ENV.iter().any(|p| {
                if p.ends_with('_') {
                    k.starts_with(p)
                } else {
                    &k == p
                }
            }) {
                environment.insert(k, v);
            }
        }
        Provenance {
            scalelab_version: env!("CARGO_PKG_VERSION").into(),
            features: features(),
            rustc: env!("SCALELAB_RUSTC").into(),
            git_revision,
            git_dirty,
            machine,
            experiment: experiment.into(),
            manifest_path: manifest_path.into(),
            manifest_sha256: manifest_sha256.into(),
            executor: executor.into(),
            command_line: std::env::args().collect(),
            started: now_rfc3339(),
            finished: String::new(),
            points,
            points_ok: 0,
            points_failed: 0,
            slurm,
            environment,
        }
    }

    pub fn write(&self, run: &RunDir) -> Result<()> {
        write_atomic(&run.provenance(), &serde_json::to_vec_pretty(self)?)
    }

    pub fn load(run: &RunDir) -> Result<Provenance> {
        let path = run.provenance();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))
    }
}

/// The cargo features compiled into this binary.
pub fn features() -> Vec<String> {
    let mut f = Vec::new();
    if cfg!(feature = "mpi") {
        f.push("mpi".to_string());
    }
    if cfg!(feature = "cuda") {
        f.push("cuda".to_string());
    }
    f
}

fn git_state() -> (String, Option<bool>) {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]) {
        Some(rev) => {
            let dirty =
                git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty());
            (rev, dirty)
        }
        None => (env!("SCALELAB_BUILD_REV").to_string(), None),
    }
}

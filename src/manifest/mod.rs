//! Manifests: `experiments/*.toml` read into a checked [`Manifest`]. (Being written.)

use std::path::PathBuf;

use crate::plan::Scaling;
use crate::value::Value;
use crate::workload::{WeakRule, Workload};

/// A checked manifest: every key known, every value typed, every study runnable in this build.
pub struct Manifest {
    /// The file as given on the command line.
    pub path: PathBuf,
    /// Its text, copied into each run directory.
    pub source: String,
    /// sha256 of `source`, hex.
    pub sha256: String,
    pub name: String,
    pub description: String,
    pub repetitions: u32,
    pub warmup: u32,
    /// Per-point time limit in seconds.
    pub timeout_s: f64,
    pub studies: Vec<Study>,
    /// The `[slurm]` table, keys checked, kept for `scalelab sbatch`.
    pub slurm: Option<toml::Table>,
}

/// One `[[study]]` block.
pub struct Study {
    pub index: usize,
    /// The `name` key, or the workload name.
    pub name: String,
    pub workload: &'static dyn Workload,
    pub scaling: Scaling,
    /// Axes in manifest order: resource axes (`nodes`, `ranks`, `threads`, `gpus`) and workload axes.
    pub axes: Vec<Axis>,
    /// Groups of axis names that move together (zipped) instead of being crossed.
    pub zip: Vec<Vec<String>>,
    pub weak_rule: WeakRule,
    pub repetitions: u32,
    pub warmup: u32,
    pub timeout_s: f64,
    pub oversubscribe: bool,
}

/// One swept axis with its values (never empty).
pub struct Axis {
    pub name: String,
    pub values: Vec<Value>,
}

//! SLURM: run a plan as job arrays on a cluster, follow it, resubmit what failed.
//!
//! `scalelab sbatch <manifest>` plans the sweep like `run` does, then groups its points by resource
//! [`Shape`] (nodes, tasks, CPUs per task, GPUs, memory, time limit) and writes one job-array script
//! per shape into `<run-dir>/slurm/round-<N>/` ([`script`]). Each array task reads its point from a
//! task file (one point as JSON per line, so a task never parses the whole plan) and runs
//! `scalelab point` under `srun` (or `mpirun` inside the allocation for MPI points, see
//! [`Launcher`]). A last job, dependent on every array (`afterany`), runs `scalelab collect` and
//! `scalelab report`. `--pack` writes one job per shape that runs its points one after another inside
//! a single allocation instead (the launcher pattern).
//!
//! `scalelab status` joins three sources per point ([`status`]): the record in `points/` (the
//! truth for finished points), the job it was last submitted in (`slurm/jobs.json`), and one batched
//! `sacct` query for those jobs ([`sacct`]), which tells pending, running, and SLURM's failure
//! classes (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, FAILED with exit code, CANCELLED) with the task's
//! output as evidence. `scalelab sbatch --resume` resubmits only missing or failed points, each
//! under the manifest's [`RetryPolicy`] (more memory after OUT_OF_MEMORY, more time after TIMEOUT,
//! never after a failed verification), in a new round.
//!
//! Everything that talks to SLURM goes through the [`Slurm`] trait, so rendering, grouping and the
//! policies are tested without a cluster, and `tests/slurm.rs` drives a real one
//! (`scripts/local-slurm.sh up`).

pub mod commands;
pub mod sacct;
pub mod script;
pub mod shape;
pub mod status;
pub mod submit;
mod units;

pub use sacct::{JobState, SacctRow};
pub use script::{render_array, render_collect, render_pack, ScriptContext};
pub use shape::{group, split_arrays, ArrayJob, Cost, Shape};
pub use status::{PointState, PointStatus};
pub use submit::{CommandSlurm, Slurm};
pub use units::{format_mem_mb, format_time, parse_mem_mb, parse_time_s};

use anyhow::{bail, Result};

/// How an array task starts the ranks of an MPI point inside its allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Launcher {
    /// `srun scalelab point ...`: SLURM starts every rank (needs an MPI plugin, `srun --mpi=list`).
    Srun,
    /// `mpirun scalelab point ...` inside the allocation: OpenMPI reads the allocation from SLURM.
    Mpirun,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Srun => "srun",
            Launcher::Mpirun => "mpirun",
        }
    }
}

/// What to do with a failed point on `scalelab sbatch --resume`, per failure class
/// (the manifest's `[slurm.retry]` table).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// After OUT_OF_MEMORY, resubmit with `--mem` multiplied by this; 0 leaves such points failed.
    pub out_of_memory: f64,
    /// After TIMEOUT (SLURM's time limit), resubmit with `--time` multiplied by this; 0 leaves them.
    pub timeout: f64,
    /// Resubmit unchanged the points whose task FAILED, was CANCELLED, lost its node (NODE_FAIL), or
    /// whose point crashed or could not be prepared.
    pub failed: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            out_of_memory: 2.0,
            timeout: 2.0,
            failed: true,
        }
    }
}

/// The manifest's `[slurm]` table, read (its keys and values were checked with the manifest).
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub constraint: Option<String>,
    /// `--time` of every task, seconds; unset: from the study's point time limit.
    pub time_s: Option<u64>,
    /// `--mem` per node, megabytes; unset: the partition's default.
    pub mem_mb: Option<u64>,
    /// `module load` lines, in order.
    pub modules: Vec<String>,
    /// Shell lines run before the point (e.g. activating an environment).
    pub setup: Vec<String>,
    /// The cluster's MaxArraySize (highest array index + 1); unset: asked from `scontrol`.
    pub max_array: Option<u64>,
    /// At most this many tasks of one array run at once (`%K`).
    pub throttle: Option<u64>,
    pub launcher: Launcher,
    pub retry: RetryPolicy,
}

impl Settings {
    /// Read the checked `[slurm]` table. Errors say which key and how to fix it.
    pub fn from_table(table: Option<&toml::Table>) -> Result<Settings> {
        let empty = toml::Table::new();
        let t = table.unwrap_or(&empty);
        let text = |k: &str| t.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let lines = |k: &str| -> Vec<String> {
            t.get(k)
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        let count = |k: &str| t.get(k).and_then(|v| v.as_integer()).map(|i| i as u64);
        let time_s = match t.get("time") {
            Some(toml::Value::Integer(m)) => Some(*m as u64 * 60),
            Some(toml::Value::String(s)) => Some(parse_time_s(s)?),
            _ => None,
        };
        let mem_mb = match t.get("mem") {
            Some(toml::Value::Integer(m)) => Some(*m as u64),
            Some(toml::Value::String(s)) => Some(parse_mem_mb(s)?),
            _ => None,
        };
        let launcher = match text("launcher").as_deref() {
            None | Some("srun") => Launcher::Srun,
            Some("mpirun") => Launcher::Mpirun,
            Some(other) => bail!("[slurm] launcher = {other:?}: write \"srun\" or \"mpirun\""),
        };
        let mut retry = RetryPolicy::default();
        if let Some(r) = t.get("retry").and_then(|v| v.as_table()) {
            let factor = |k: &str, default: f64| match r.get(k) {
                Some(toml::Value::Float(f)) => *f,
                Some(toml::Value::Integer(i)) => *i as f64,
                _ => default,
            };
            retry.out_of_memory = factor("out_of_memory", retry.out_of_memory);
            retry.timeout = factor("timeout", retry.timeout);
            retry.failed = r
                .get("failed")
                .and_then(|v| v.as_bool())
                .unwrap_or(retry.failed);
        }
        Ok(Settings {
            partition: text("partition"),
            account: text("account"),
            qos: text("qos"),
            constraint: text("constraint"),
            time_s,
            mem_mb,
            modules: lines("modules"),
            setup: lines("setup"),
            max_array: count("max_array"),
            throttle: count("throttle"),
            launcher,
            retry,
        })
    }
}

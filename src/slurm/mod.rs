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
//! The manifest's `[slurm]` section arrives already checked and typed: [`Settings`], [`Launcher`],
//! [`RetryPolicy`] and the `--time`/`--mem` grammar live with the manifest
//! (`crate::manifest::Settings`, re-exported here), so the check and sbatch read it one way.
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
pub use units::{format_mem_mb, format_time, parse_mem_mb, parse_reported_mem_mb, parse_time_s};

pub use crate::manifest::{Launcher, RetryPolicy, Settings};

//! Manifests: `experiments/*.toml` read into a checked [`Manifest`].
//!
//! This module owns the first step of the pipeline: raw TOML text becomes a typed, fully checked
//! [`Manifest`] or a [`ManifestError`] that lists *every* problem found, each with the file, the
//! 1-based line, where in the manifest it is, what is wrong and how to fix it:
//!
//! ```text
//! error: experiments/x.toml:12: study 2 (stream.triad): unknown key `threds`
//!   fix: did you mean `threads`? stream.triad takes: threads, ranks, ranks_per_node, nodes, gpus, size (see `scalelab list`)
//! 1 problem in experiments/x.toml
//! ```
//!
//! Checking happens once, before anything runs ("parse, then validate once"): the document is read
//! with `toml_edit` (which keeps the position of every key and value), every key and value of every
//! study is checked against the workload registry, and then every study is expanded into its points
//! so that per-point rules (the workload's own `check`, cores, duplicate points) are checked too.
//! The [`Manifest`] keeps those points, so a plan ([`crate::plan::expand`]) reuses them rather
//! than expanding every study a second time, and always succeeds (but for a data file that can no
//! longer be read).
//!
//! * `check`: the checker, a folder with one file per part of the document;
//! * `expand` and `point`: what a study denotes: its [`Point`]s (resources, parameters, a stable
//!   id from [`point_id`]) in odometer order. They live here, not in [`crate::plan`], because the
//!   check needs them, and so `plan` depends on `manifest` and never the reverse;
//! * `points`: the per-point rules, and the plan-size and duplicate-id checks that
//!   [`Manifest::with_studies`] also applies to hand-built studies;
//! * `slurm`, `hyper`: the `[slurm]` table and the `hyper`/`grid` tables of ML studies.
//!
//! The format is described for users in `docs/manifest.md`.

mod check;
mod error;
mod expand;
mod hyper;
mod point;
pub(crate) mod points;
mod slurm;

pub use check::wait_idle_seconds;

#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::value::Value;
use crate::workload::{Node, WeakRule, Workload};

pub use check::{parse_duration, DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S};
pub use error::{ManifestError, Problem};
pub(crate) use expand::expand_study;
pub use expand::{canonical, point_id};
pub(crate) use point::resolve_data;
pub use point::{sha256_file, DataFile, Point, Resources};
pub use slurm::{
    parse_mem_mb, parse_time_s, Launcher, RetryPolicy, Settings, MAX_MEM_DIGITS, MAX_TIME_DIGITS,
};

/// Largest manifest file `load` reads; a manifest is a small hand-written text file.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A checked manifest: every key known, every value typed, every study runnable in this build.
///
/// It carries the points its studies expand into, expanded once by the check (which must look at
/// every point) and reused by [`crate::plan::expand`]. The studies and their points are therefore
/// private: read them with [`Manifest::studies`]; a manifest whose studies are made by hand
/// rather than checked goes through [`Manifest::with_studies`], which expands them again.
#[derive(Clone)]
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
    /// `wait_idle`: before each point, wait at most this many seconds for the machine to be
    /// quiet, as `scalelab run --wait-idle=SECONDS` (which overrides it). `None` when unset.
    pub wait_idle_s: Option<u64>,
    studies: Vec<Study>,
    /// Every study's points in manifest order, as [`expand_study`] gives them (no data file
    /// pinned yet; `oversubscribed` judged for the checked node's cores).
    points: Vec<Point>,
    /// The `[slurm]` section, checked and typed for `scalelab sbatch`; `None` when the manifest
    /// has none (sbatch then uses [`Settings::default`]).
    pub slurm: Option<Settings>,
    /// The absolute folder relative data files (a CSV `dataset`) are resolved against: the
    /// manifest's own folder unless [`Context::data_dir`] says otherwise.
    pub data_dir: PathBuf,
}

impl fmt::Debug for Manifest {
    /// Every field but the points, which are counted (a plan may hold a million).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manifest")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("name", &self.name)
            .field("description", &self.description)
            .field("repetitions", &self.repetitions)
            .field("warmup", &self.warmup)
            .field("timeout_s", &self.timeout_s)
            .field("wait_idle_s", &self.wait_idle_s)
            .field("studies", &self.studies)
            .field("points", &self.points.len())
            .field("slurm", &self.slurm)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Manifest {
    /// The studies, in manifest order.
    pub fn studies(&self) -> &[Study] {
        &self.studies
    }

    /// Every study's points, in manifest order, as the check expanded them.
    pub(crate) fn points(&self) -> &[Point] {
        &self.points
    }

    /// This manifest with other studies, made by hand rather than checked (tests, tools): they
    /// are expanded again, and refused when the plan would exceed [`MAX_POINTS`] or two points
    /// share an id. The studies' values are otherwise trusted, as the check would not see them.
    pub fn with_studies(mut self, studies: Vec<Study>) -> Result<Manifest, ManifestError> {
        let error = |problems| ManifestError {
            path: self.path.clone(),
            problems,
        };
        let total = points::plan_size(&studies).map_err(|problem| error(vec![problem]))?;
        let mut expanded = Vec::with_capacity(total);
        for study in &studies {
            expand_study(study, crate::machine::available_cores(), &mut expanded);
        }
        let problems = points::hand_built_duplicates(&studies, &expanded);
        if !problems.is_empty() {
            return Err(error(problems));
        }
        self.studies = studies;
        self.points = expanded;
        Ok(self)
    }
}

/// One `[[study]]` block.
#[derive(Clone)]
pub struct Study {
    pub index: usize,
    /// The `name` key, or the workload name.
    pub name: String,
    pub workload: &'static dyn Workload,
    pub scaling: Scaling,
    /// Axes in manifest order: resource axes (`nodes`, `ranks`, `ranks_per_node`, `threads`,
    /// `gpus`) and workload axes. Only the axes the manifest sets; unset ones take their defaults
    /// when the plan is expanded.
    pub axes: Vec<Axis>,
    /// Groups of axis names that move together (zipped) instead of being crossed.
    pub zip: Vec<Vec<String>>,
    pub weak_rule: WeakRule,
    /// Per-study values, the manifest's unless the study overrides them.
    pub repetitions: u32,
    pub warmup: u32,
    pub timeout_s: f64,
    pub oversubscribe: bool,
}

impl fmt::Debug for Study {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Study")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("workload", &self.workload.name())
            .field("scaling", &self.scaling)
            .field("axes", &self.axes)
            .field("zip", &self.zip)
            .field("weak_rule", &self.weak_rule)
            .field("repetitions", &self.repetitions)
            .field("warmup", &self.warmup)
            .field("timeout_s", &self.timeout_s)
            .field("oversubscribe", &self.oversubscribe)
            .finish()
    }
}

impl Study {
    /// The axis called `name`, if the study sets it.
    pub fn axis(&self, name: &str) -> Option<&Axis> {
        self.axes.iter().find(|a| a.name == name)
    }

    /// The composite axes of the study, as indices into `axes`: one group per zip group (at the
    /// place of its first member, members in manifest order) and one single-axis group per other
    /// axis. Expansion crosses these groups.
    pub fn composite_axes(&self) -> Vec<Vec<usize>> {
        let n = self.axes.len();
        let mut taken = vec![false; n];
        let mut out = Vec::new();
        for i in 0..n {
            if taken[i] {
                continue;
            }
            let name = &self.axes[i].name;
            let mut group = vec![i];
            if let Some(zip) = self.zip.iter().find(|g| g.iter().any(|m| m == name)) {
                for (j, axis) in self.axes.iter().enumerate().skip(i + 1) {
                    if !taken[j] && zip.iter().any(|m| m == &axis.name) {
                        group.push(j);
                    }
                }
            }
            for &j in &group {
                taken[j] = true;
            }
            out.push(group);
        }
        out
    }

    /// Number of points this study expands into: the product of the lengths of its composite axes
    /// (a zip group counts once). Saturates at `usize::MAX`.
    pub fn point_count(&self) -> usize {
        self.composite_axes()
            .iter()
            .map(|g| {
                g.iter()
                    .map(|&a| self.axes[a].values.len())
                    .min()
                    .unwrap_or(0)
            })
            .fold(1usize, usize::saturating_mul)
    }
}

/// Strong scaling keeps the problem fixed while workers grow; weak scaling grows it with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    Strong,
    Weak,
}

impl Scaling {
    pub fn as_str(self) -> &'static str {
        match self {
            Scaling::Strong => "strong",
            Scaling::Weak => "weak",
        }
    }
}

/// One swept axis with its values (never empty).
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub name: String,
    pub values: Vec<Value>,
}

/// The resource axes a study may sweep besides its workload's parameters.
pub const RESOURCE_AXES: &[&str] = &["threads", "ranks", "ranks_per_node", "nodes", "gpus"];

/// Study keys that are not axes.
pub const STUDY_KEYS: &[&str] = &[
    "name",
    "workload",
    "scaling",
    "zip",
    "weak",
    "repetitions",
    "warmup",
    "timeout",
    "oversubscribe",
];

/// Top-level keys of a manifest.
pub const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "repetitions",
    "warmup",
    "timeout",
    "wait_idle",
    "study",
    "slurm",
];

/// Keys of the `[slurm]` table.
pub const SLURM_KEYS: &[&str] = &[
    "partition",
    "account",
    "qos",
    "constraint",
    "time",
    "mem",
    "modules",
    "setup",
    "max_array",
    "throttle",
    "launcher",
    "retry",
];

/// Keys of the `[slurm.retry]` table (the resubmission policy of `scalelab sbatch --resume`).
pub const SLURM_RETRY_KEYS: &[&str] = &["out_of_memory", "timeout", "failed"];

/// Most points one manifest may expand into (larger plans are almost always a mistake, and would
/// not fit in memory as a plan).
pub const MAX_POINTS: usize = 1_000_000;

/// What a manifest is checked against: the workloads that exist, the node its points run on, the
/// optional parts compiled into this build, and where relative data files live.
/// [`Context::this_build`] is what [`load`] and [`parse`] use; tests inject their own workloads and
/// nodes through [`parse_with`], and `scalelab sbatch` a node of the cluster's partition.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    /// Workloads a study may name.
    pub registry: &'a [&'static dyn Workload],
    /// The node every point is checked for: its cores (threads × ranks per node above them need
    /// `oversubscribe`) and its memory (every workload's estimate must fit).
    pub node: Node,
    /// The `mpi` feature is compiled in.
    pub mpi: bool,
    /// The `cuda` feature is compiled in.
    pub cuda: bool,
    /// The folder relative data files are resolved against; `None`: the manifest's own folder.
    /// (`scalelab sbatch --resume` checks the run's copy of the manifest against the folder of the
    /// original, which its plan records.)
    pub data_dir: Option<&'a Path>,
}

impl Context<'static> {
    /// The workload registry, this machine as the node, and this build's features.
    pub fn this_build() -> Context<'static> {
        Context {
            registry: crate::workload::REGISTRY,
            node: Node::this_machine(),
            mpi: cfg!(feature = "mpi"),
            cuda: cfg!(feature = "cuda"),
            data_dir: None,
        }
    }
}

/// Read and check the manifest at `path` against this build ([`Context::this_build`]). A missing,
/// unreadable, oversized or non-UTF-8 file is a [`ManifestError`] naming the path.
pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
    load_with(path, &Context::this_build())
}

/// [`load`] against an explicit [`Context`]: `scalelab sbatch` checks against the cluster's nodes,
/// not the cores and memory of the login node it runs on.
pub fn load_with(path: &Path, ctx: &Context<'_>) -> Result<Manifest, ManifestError> {
    let unreadable = |message: String, fix: &str| ManifestError {
        path: path.to_path_buf(),
        problems: vec![Problem {
            line: None,
            place: String::new(),
            message,
            fix: fix.to_string(),
        }],
    };
    let read_fix = "check the path; the manifests of this repository are in experiments/ (e.g. experiments/quickstart.toml)";
    let meta = std::fs::metadata(path)
        .map_err(|e| unreadable(format!("cannot read the manifest: {e}"), read_fix))?;
    if meta.is_dir() {
        return Err(unreadable(
            "is a folder, not a manifest file".into(),
            read_fix,
        ));
    }
    let too_large = |len: String| {
        unreadable(
            format!("is {len} bytes; a manifest is a small TOML text file (at most {MAX_MANIFEST_BYTES} bytes)"),
            "give the path of a TOML manifest, e.g. experiments/quickstart.toml",
        )
    };
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(too_large(meta.len().to_string()));
    }
    // The size in the metadata is not trusted: a device (/dev/zero), a pipe (`<(yes)`) or a file
    // that grows reports less than it gives. Read one byte past the limit at most.
    let file = std::fs::File::open(path)
        .map_err(|e| unreadable(format!("cannot read the manifest: {e}"), read_fix))?;
    let mut bytes = Vec::with_capacity(meta.len().min(MAX_MANIFEST_BYTES) as usize);
    file.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| unreadable(format!("cannot read the manifest: {e}"), read_fix))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(too_large(format!("more than {MAX_MANIFEST_BYTES}")));
    }
    let source = String::from_utf8(bytes).map_err(|e| {
        unreadable(
            format!(
                "is not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
            "save the manifest as UTF-8 text; is this really a TOML manifest?",
        )
    })?;
    parse_with(path, &source, ctx)
}

/// Check `source` as the manifest at `path` (the path only names the file in messages) against
/// this build ([`Context::this_build`]).
///
/// ```
/// use std::path::Path;
///
/// let source = r#"
/// name = "triad"
/// repetitions = 3
///
/// [[study]]
/// workload = "stream.triad"
/// threads = 1
/// size = [1000, 1000000]
/// "#;
/// let m = scalelab::manifest::parse(Path::new("triad.toml"), source)?;
/// assert_eq!((m.name.as_str(), m.repetitions), ("triad", 3));
/// assert_eq!(m.studies()[0].point_count(), 2);
///
/// // A mistake is refused with the file, the line, and a fix.
/// let typo = source.replace("threads", "threds");
/// let err = scalelab::manifest::parse(Path::new("triad.toml"), &typo).unwrap_err();
/// let text = err.to_string();
/// assert!(text.starts_with("error: triad.toml:7: "), "{text}");
/// assert!(text.contains("unknown key `threds`"), "{text}");
/// assert!(text.contains("fix: did you mean `threads`?"), "{text}");
/// # Ok::<(), scalelab::manifest::ManifestError>(())
/// ```
pub fn parse(path: &Path, source: &str) -> Result<Manifest, ManifestError> {
    parse_with(path, source, &Context::this_build())
}

/// [`parse`] against an explicit [`Context`] (workloads, cores, features).
pub fn parse_with(path: &Path, source: &str, ctx: &Context<'_>) -> Result<Manifest, ManifestError> {
    check::check(path, source, ctx)
}

/// sha256 of `text`, as 64 lower-case hex digits.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

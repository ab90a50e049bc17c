//! The record of one point, and the run directory that holds the records of a run.
//!
//! A run directory is `results/<experiment>/<run-id>/`:
//!
//! ```text
//! manifest.toml      the manifest as it was when the run started
//! plan.json          the expanded plan: every point with its parameters
//! points/<id>.json   one record per finished point (ok or failed), written atomically
//! logs/<id>.txt      stdout and stderr of the point's process
//! provenance.json    where, when, with what the run was made
//! measurements.csv   one row per repetition   } written by `report`
//! summary.csv        one row per point        }
//! report.md, plots/  the scaling report       }
//! ```
//!
//! Every file is written by [`write_atomic`] (temporary file + rename), so a killed run leaves
//! either the old or the new content, never half a file; a point's record is its only result, so
//! a resumed run skips exactly the points whose record exists.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::plan::{Plan, Point};
use crate::workload::Work;

/// How a point ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Every repetition ran and verified.
    Ok,
    /// A repetition's result differed from the serial reference.
    VerifyFailed,
    /// The point's process ran past its time limit and was killed.
    Timeout,
    /// The point panicked, aborted or was killed by a signal.
    Crashed,
    /// The point could not be prepared or launched (an error with a message).
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::VerifyFailed => "verify_failed",
            Status::Timeout => "timeout",
            Status::Crashed => "crashed",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Ok,
            Status::VerifyFailed,
            Status::Timeout,
            Status::Crashed,
            Status::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// One timed execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Repetition {
    /// Wall-clock seconds of the timed region (under MPI: the maximum over ranks).
    pub seconds: f64,
    pub verified: bool,
    /// The instance's extra measurements (`Instance::metrics`), by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics: BTreeMap<String, f64>,
}

/// Everything measured for one point: the file `points/<id>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointRecord {
    pub point: Point,
    pub status: Status,
    /// Why the point did not succeed (empty when ok).
    #[serde(default)]
    pub reason: String,
    /// Timed repetitions, in order (warm-ups are not recorded).
    pub repetitions: Vec<Repetition>,
    /// Analytic work of one repetition.
    pub work: Work,
    /// The problem size in the workload's unit (`size_unit`).
    pub size: u64,
    pub size_unit: String,
    pub backend: String,
    pub host: String,
    /// RFC 3339 times of the point's start and end.
    pub started: String,
    pub finished: String,
    /// The SLURM job, array task and nodes the point ran in (`SLURM_JOB_ID`, ...), when it ran under
    /// SLURM.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slurm: BTreeMap<String, String>,
}

/// Read the record of `expected` from `bytes`, the content of the file at `path` (named in every
/// error). A record that does not parse, or that belongs to another point (a file copied under
/// another point's name), is an error naming the file and saying how to measure the point again.
pub fn parse_record(bytes: &[u8], path: &Path, expected: &Point) -> Result<PointRecord> {
    let fix = "delete it and resume the run (`scalelab run --resume <run-dir>`) to measure that point again";
    let rec: PointRecord = serde_json::from_slice(bytes)
        .with_context(|| format!("{} is corrupt; {fix}", path.display()))?;
    if rec.point.id != expected.id {
        anyhow::bail!(
            "{} holds the record of point {}, not of point {}; {fix}",
            path.display(),
            rec.point.id,
            expected.id
        );
    }
    Ok(rec)
}

/// Paths inside one run directory.
#[derive(Clone, Debug)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }
    pub fn manifest(&self) -> PathBuf {
        self.root.join("manifest.toml")
    }
    pub fn plan(&self) -> PathBuf {
        self.root.join("plan.json")
    }
    pub fn provenance(&self) -> PathBuf {
        self.root.join("provenance.json")
    }
    pub fn points_dir(&self) -> PathBuf {
        self.root.join("points")
    }
    pub fn record(&self, id: &str) -> PathBuf {
        self.points_dir().join(format!("{id}.json"))
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.root.join("logs")
    }
    pub fn log(&self, id: &str) -> PathBuf {
        self.logs_dir().join(format!("{id}.txt"))
    }
    pub fn measurements(&self) -> PathBuf {
        self.root.join("measurements.csv")
    }
    pub fn summary(&self) -> PathBuf {
        self.root.join("summary.csv")
    }
    pub fn report(&self) -> PathBuf {
        self.root.join("report.md")
    }
    pub fn plots_dir(&self) -> PathBuf {
        self.root.join("plots")
    }

    /// Read `plan.json`, with an error that says this is not a run directory when it is missing.
    pub fn load_plan(&self) -> Result<Plan> {
        let path = self.plan();
        let text = fs::read_to_string(&path).with_context(|| {
            format!(
                "{} is not a run directory (no plan.json); give a folder made by `scalelab run`, e.g. results/<experiment>/<run-id>",
                self.root.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is corrupt; start a new run with `scalelab run <manifest>`",
                path.display()
            )
        })
    }

    /// The record of point `id`, if it has finished. A corrupt record is an error naming the file.
    pub fn load_record(&self, id: &str) -> Result<Option<PointRecord>> {
        let path = self.record(id);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let rec = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is corrupt; delete it and run `scalelab run --resume {}` to measure that point again",
                path.display(),
                self.root.display()
            )
        })?;
        Ok(Some(rec))
    }

    /// The records of every finished point of the plan, in plan order, and one message per record
    /// that could not be read: a corrupt record fails only its own point, never the whole report.
    pub fn load_records(&self, plan: &Plan) -> (Vec<PointRecord>, Vec<String>) {
        let mut out = Vec::new();
        let mut problems = Vec::new();
        for p in &plan.points {
            match self.load_record(&p.id) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => {}
                Err(e) => problems.push(format!("{e:#}")),
            }
        }
        (out, problems)
    }

    /// Write a point's record atomically.
    pub fn write_record(&self, rec: &PointRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(rec)?;
        write_atomic(&self.record(&rec.point.id), &json)
    }
}

/// Write `bytes` to `path` through a temporary file in the same folder and a rename, so readers and
/// a later resume see the old content or the new one, never a torn file. Creates parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes)?;
    // Temporary files are created private (0600); results are meant to be read by others (a
    // teaching assistant on a shared cluster), so give them the usual 0644 before they appear.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Now, as RFC 3339 text (UTC).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

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
//! .lock              held by the process writing the run (see RunDir::lock)
//! ```
//!
//! Every file is written by [`write_atomic`] (temporary file + rename), so a killed run leaves
//! either the old or the new content, never half a file; a point's record is its only result, so
//! a resumed run skips exactly the points whose record is usable. A record is checked when it is
//! read ([`parse_record`]): one that is truncated, not JSON, holds another point (copied or
//! renamed) or impossible times is no result: reports leave it out with a warning naming the file,
//! and a resume measures that point again.
//!
//! One process at a time writes a run: [`RunDir::lock`] refuses a second one at once, naming the
//! holder.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::files::write_atomic;
use crate::plan::{Plan, Point};
use crate::workload::{Backend, Work};

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
    /// Facts about the result that are not numbers (`Instance::details`), by name: e.g. the
    /// candidate each outer fold of a nested cross-validation chose.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, String>,
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
    /// The workload's backend, written as [`Backend::as_str`] does; `None` (written `""`) when
    /// the workload is not in the build that made the record.
    #[serde(with = "backend_text")]
    pub backend: Option<Backend>,
    pub host: String,
    /// RFC 3339 times of the point's start and end.
    pub started: String,
    pub finished: String,
    /// The SLURM job, array task and nodes the point ran in (`SLURM_JOB_ID`, ...), when it ran under
    /// SLURM.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub slurm: BTreeMap<String, String>,
    /// The node each MPI rank ran on, in rank order: SLURM's node name (`SLURMD_NODENAME`) where
    /// the rank ran under SLURM, the host name otherwise. It shows where the ranks really landed
    /// (one node or several); empty for a point without MPI, and in older records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rank_hosts: Vec<String>,
    /// What else the machine did while the point ran ([`crate::load`]): sampled by the local
    /// executor, or inside the task under SLURM. Absent in records made before it was sampled, or
    /// where `/proc` is unreadable; the report judges it ([`crate::load::judge`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<crate::load::MachineLoad>,
    /// The GPUs a CUDA point ran on, with their theoretical peaks ([`crate::device`]): what its
    /// roofline is drawn against. Empty for CPU points and in records made before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<crate::device::DevicePeaks>,
}

impl PointRecord {
    /// The backend as results and CSV files write it (`""` when unknown).
    pub fn backend_name(&self) -> &'static str {
        self.backend.map_or("", Backend::as_str)
    }

    /// Whether the point's FLOP/s are judged against the CPU's peaks
    /// ([`Backend::counts_against_cpu_peaks`]); a point of an unknown backend is, like a CPU one.
    pub fn counts_against_cpu_peaks(&self) -> bool {
        self.backend.is_none_or(Backend::counts_against_cpu_peaks)
    }

    /// Whether the point's bytes are judged against the CPU's memory bandwidth
    /// ([`Backend::bytes_count_against_memory`]); a point of an unknown backend is.
    pub fn bytes_count_against_memory(&self) -> bool {
        self.backend.is_none_or(Backend::bytes_count_against_memory)
    }

    /// Whether the point ran on GPUs ([`Backend::on_device`]).
    pub fn on_device(&self) -> bool {
        self.backend.is_some_and(Backend::on_device)
    }

    /// The judgement of the machine's load while the point ran ([`crate::load::judge`]): `None`
    /// when the record has no load figures (made before they existed, or where `/proc` is
    /// unreadable).
    pub fn load_verdict(&self) -> Option<crate::load::Verdict> {
        self.load.as_ref().map(crate::load::judge)
    }

    /// Whether the record is an ok point measured on a disturbed machine.
    pub fn is_disturbed(&self) -> bool {
        self.status == Status::Ok && self.load_verdict().is_some_and(|v| v.disturbed)
    }
}

/// A record's backend as text: the backend's name, or `""` for a workload the writing build did
/// not have, exactly as records have always been written.
mod backend_text {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::workload::Backend;

    pub fn serialize<S: Serializer>(backend: &Option<Backend>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(backend.map_or("", Backend::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Backend>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        Backend::parse(&text).map(Some).ok_or_else(|| {
            D::Error::custom(format!(
                "unknown backend `{text}` (known: {})",
                Backend::ALL.map(Backend::as_str).join(", ")
            ))
        })
    }
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
        let text = fs::read_to_string(&path).map_err(|e| {
            let missing = e.kind() == std::io::ErrorKind::NotFound;
            let err = anyhow::Error::new(e).context(format!(
                "{} is not a run directory (no plan.json); give a folder made by `scalelab run`, e.g. results/<experiment>/<run-id>",
                self.root.display()
            ));
            // A wrong path is the user's to fix (exit code 2); an unreadable file is not.
            if missing {
                crate::exit::BadInput::wrap(err)
            } else {
                err
            }
        })?;
        serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is corrupt; start a new run with `scalelab run <manifest>`",
                path.display()
            )
        })
    }

    /// The record of `point`, if it has finished. A record that cannot be read or does not hold
    /// this point's measurement (see [`parse_record`]) is an error naming the file and the fix.
    pub fn load_record(&self, point: &Point) -> Result<Option<PointRecord>> {
        match self.read_record(point) {
            Ok(rec) => Ok(rec),
            Err(problem) => Err(anyhow!("{problem:#}; {}", self.remeasure_fix())),
        }
    }

    /// [`RunDir::load_record`] without the fix in its error: the problem with the file alone.
    fn read_record(&self, point: &Point) -> Result<Option<PointRecord>> {
        let path = self.record(&point.id);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        parse_record(&bytes, &path, point).map(Some)
    }

    /// How to get a point measured again whose record is unusable: the sweep of this run's kind
    /// replaces such a record (a run made by `scalelab sbatch` has a `slurm/` folder).
    pub fn remeasure_fix(&self) -> String {
        if self.root.join("slurm").is_dir() {
            format!(
                "`scalelab sbatch --resume {} --submit` measures that point again",
                self.root.display()
            )
        } else {
            format!(
                "`scalelab run --resume {}` measures that point again",
                self.root.display()
            )
        }
    }

    /// Where each point of `plan` stands in this run directory: recorded (with its status),
    /// missing, or unusable (with the problem), read once, in plan order.
    pub fn survey<'p>(&self, plan: &'p Plan) -> Survey<'p> {
        let mut survey = Survey::default();
        for p in &plan.points {
            match self.read_record(p) {
                Ok(Some(rec)) => survey.recorded.push(rec),
                Ok(None) => survey.missing.push(p),
                Err(e) => survey.unreadable.push((p, format!("{e:#}"))),
            }
        }
        survey
    }

    /// The records of every finished point of the plan, in plan order, and one message per record
    /// that could not be read: a corrupt record fails only its own point, never the whole report.
    pub fn load_records(&self, plan: &Plan) -> (Vec<PointRecord>, Vec<String>) {
        let survey = self.survey(plan);
        let fix = self.remeasure_fix();
        let problems = survey
            .unreadable
            .iter()
            .map(|(_, problem)| format!("{problem}; {fix}"))
            .collect();
        (survey.recorded, problems)
    }

    /// Write a point's record atomically.
    pub fn write_record(&self, rec: &PointRecord) -> Result<()> {
        let json = serde_json::to_vec_pretty(rec)?;
        write_atomic(&self.record(&rec.point.id), &json)
    }
}

/// Where the points of a plan stand in a run directory ([`RunDir::survey`]).
#[derive(Debug, Default)]
pub struct Survey<'p> {
    /// The usable records, in plan order.
    pub recorded: Vec<PointRecord>,
    /// Points with no record yet.
    pub missing: Vec<&'p Point>,
    /// Points whose record exists but cannot be used, with the problem (naming the file).
    pub unreadable: Vec<(&'p Point, String)>,
}

impl Survey<'_> {
    /// Points a sweep measures: the missing ones and those whose record is unusable.
    pub fn to_measure(&self) -> usize {
        self.missing.len() + self.unreadable.len()
    }
}

/// Parse the bytes of the record file `path` (`points/<id>.json`) of the plan's point `expected`,
/// and check that it is that point's measurement: the record's point id is the file's id, its
/// point is the plan's point (parameters, resources, limits), and every repetition lasted a finite,
/// non-negative time with finite metrics, and its machine load, if any, holds possible figures
/// ([`crate::load::MachineLoad::check`]). A record copied under another point's name, edited by
/// hand or written by another plan is no result for this point, like a truncated one.
///
/// Pure: the error names `path` and the problem, never a fix (the caller knows the run).
pub fn parse_record(bytes: &[u8], path: &Path, expected: &Point) -> Result<PointRecord> {
    let shown = path.display();
    let rec: PointRecord = serde_json::from_slice(bytes)
        .map_err(|e| anyhow!("{shown} is corrupt (not a point record: {e})"))?;
    let file_id = path.file_stem().map(|s| s.to_string_lossy());
    if file_id.as_deref() != Some(rec.point.id.as_str()) || rec.point.id != expected.id {
        bail!(
            "{shown} holds the record of point `{}`, not of point `{}` (was it copied or renamed?)",
            rec.point.id,
            expected.id
        );
    }
    if rec.point != *expected {
        bail!(
            "{shown} holds point `{}` with other settings than plan.json ({}); it was not measured by this plan",
            expected.id,
            differing_fields(&rec.point, expected)
        );
    }
    for (i, r) in rec.repetitions.iter().enumerate() {
        if !r.seconds.is_finite() || r.seconds < 0.0 {
            bail!(
                "{shown} is corrupt (repetition {} lasted {} s, which is no duration)",
                i + 1,
                r.seconds
            );
        }
        if let Some((name, v)) = r.metrics.iter().find(|(_, v)| !v.is_finite()) {
            bail!(
                "{shown} is corrupt (metric `{name}` of repetition {} is {v}, not a finite number)",
                i + 1
            );
        }
    }
    if let Some(load) = &rec.load {
        if let Err(problem) = load.check() {
            bail!("{shown} is corrupt ({problem})");
        }
    }
    Ok(rec)
}

/// The names of the fields in which two points differ, for a message.
fn differing_fields(a: &Point, b: &Point) -> String {
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return "its fields differ".into();
    };
    let names: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    let differ: Vec<String> = names
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("`{k}`"))
        .collect();
    if differ.is_empty() {
        "its fields differ".into()
    } else {
        format!("{} differ", differ.join(", "))
    }
}

/// The exclusive hold of one process on a run directory, released when dropped or when the
/// process dies (see [`RunDir::lock`]).
#[derive(Debug)]
pub struct RunLock {
    _file: Option<fs::File>,
}

/// Who holds a run directory's lock: written into `.lock` for the message of a refused process.
#[derive(Debug, Serialize, Deserialize)]
struct LockHolder {
    pid: u32,
    host: String,
    command: String,
    since: String,
}

impl RunDir {
    /// `.lock`: the file a process writing this run holds an exclusive lock on.
    pub fn lock_path(&self) -> PathBuf {
        self.root.join(".lock")
    }

    /// Take the run directory for this process: every command that writes a run (`run`,
    /// `run --resume`, `sbatch`, `report`, `collect`) holds this lock while it writes, so two
    /// processes never measure or write one run at the same time. A second process is refused at
    /// once with the holder's pid, host, command line and start time and what to do. The lock is
    /// the kernel's (`flock`): it ends with the holding process, even when that is killed, so a
    /// lock is never stale; the `.lock` file stays and only describes the last holder. Points
    /// (`scalelab point`) take no lock: they run concurrently under the holder or under SLURM
    /// and each writes only its own record, atomically.
    ///
    /// On a file system without locks the run goes on with a warning.
    pub fn lock(&self) -> Result<RunLock> {
        let path = self.lock_path();
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("creating the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                crate::bad_input!("{}", self.busy_message(&text));
            }
            Err(fs::TryLockError::Error(e)) => {
                crate::errln!(
                    "warning: cannot lock {} ({e}); make sure no other scalelab process writes to {} meanwhile",
                    path.display(),
                    self.root.display()
                );
                return Ok(RunLock { _file: None });
            }
        }
        let holder = LockHolder {
            pid: std::process::id(),
            host: crate::machine::hostname(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            since: crate::units::now_rfc3339(),
        };
        // Only a description for the message of a refused process: a failure to write it leaves
        // the lock held all the same.
        let _ = file
            .set_len(0)
            .and_then(|()| serde_json::to_writer(&file, &holder).map_err(std::io::Error::from));
        Ok(RunLock { _file: Some(file) })
    }

    /// Whether this folder may receive a new run of manifest `m` (`--run-dir`): it must not exist,
    /// be empty, or hold only the first files of an interrupted start of this same manifest
    /// (`manifest.toml` with the same text, `provenance.json`), which the new run rewrites. Any
    /// other folder is refused, naming one file it holds, so a user's files are never overwritten
    /// and two manifests never share a folder. `finish` is the sentence that says how to go on
    /// with a run of this manifest that is already there. The `.lock` file is ignored.
    pub fn check_fresh(&self, m: &crate::manifest::Manifest, finish: &str) -> Result<()> {
        let root = self.root.display();
        let meta = match fs::metadata(&self.root) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("reading {root}")),
        };
        if !meta.is_dir() {
            crate::bad_input!(
                "{root} exists and is not a folder; give --run-dir a new or empty folder"
            );
        }
        let mut names: Vec<String> = fs::read_dir(&self.root)
            .with_context(|| format!("reading {root}"))?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {root}"))?;
        names.retain(|n| n != ".lock");
        names.sort();
        if names.is_empty() {
            return Ok(());
        }
        if self.plan().exists() {
            let plan = self.load_plan()?;
            if plan.manifest_sha256 == m.sha256 {
                crate::bad_input!("{root} already holds this run (experiment `{}`); {finish}, or choose another --run-dir", plan.experiment);
            }
            crate::bad_input!(
                "{root} belongs to another manifest (experiment `{}`, manifest sha256 {}…, not {}'s {}…): choose another --run-dir, or go on with that run with its own `--resume`",
                plan.experiment,
                &plan.manifest_sha256[..12.min(plan.manifest_sha256.len())],
                m.path.display(),
                &m.sha256[..12.min(m.sha256.len())],
            );
        }
        // A start killed before plan.json was written: the same manifest may take the folder over.
        let start_files =
            |n: &String| n == "manifest.toml" || n == "provenance.json" || n.starts_with(".tmp");
        let same_manifest = fs::read(self.manifest()).is_ok_and(|b| b == m.source.as_bytes());
        if same_manifest && names.iter().all(start_files) {
            return Ok(());
        }
        let shown = names.iter().find(|n| !start_files(n)).unwrap_or(&names[0]);
        crate::bad_input!(
            "{root} is not empty (it holds `{shown}`) and holds no run of {}; give --run-dir a new or empty folder, or leave --run-dir out to make a new run folder under the results folder",
            m.path.display()
        )
    }

    /// The refusal of a process that found the run locked; `holder` is the `.lock` file's text.
    fn busy_message(&self, holder: &str) -> String {
        let root = self.root.display();
        match serde_json::from_str::<LockHolder>(holder) {
            Ok(h) => format!(
                "{root} is in use by another scalelab process: pid {} on {}, `{}`, since {}; wait until it ends (or stop it with `kill {}` on {}), then try again",
                h.pid, h.host, h.command, h.since, h.pid, h.host
            ),
            Err(_) => format!(
                "{root} is in use by another scalelab process that is just starting (see {}); wait until it ends, then try again",
                self.lock_path().display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scaling;
    use crate::report::test_support::record;

    fn sample() -> PointRecord {
        record(0, "gemm", Scaling::Strong, 2, 256, &[0.5, 0.25])
    }

    fn path_of(rec: &PointRecord) -> PathBuf {
        PathBuf::from(format!("run/points/{}.json", rec.point.id))
    }

    fn parse(rec: &PointRecord, path: &Path, expected: &Point) -> Result<PointRecord> {
        parse_record(&serde_json::to_vec(rec).unwrap(), path, expected)
    }

    #[test]
    fn a_record_of_its_point_parses_back_equal() {
        let rec = sample();
        assert_eq!(parse(&rec, &path_of(&rec), &rec.point).unwrap(), rec);
        // A float parameter survives the round trip bit for bit (the plan's point is compared
        // exactly).
        let mut rec = sample();
        rec.point.timeout_s = 0.1 + 0.2;
        assert_eq!(parse(&rec, &path_of(&rec), &rec.point).unwrap(), rec);
    }

    /// The backend is a type in memory and the same text as ever in the file: `"rayon"`,
    /// `"cuda"`, ..., and `""` for a workload the writing build did not have.
    #[test]
    fn the_backend_is_written_as_its_name_and_read_back() {
        let mut rec = sample();
        for (backend, text) in [
            (Some(Backend::Rayon), "\"backend\":\"rayon\""),
            (Some(Backend::Cuda), "\"backend\":\"cuda\""),
            (Some(Backend::Io), "\"backend\":\"io\""),
            (None, "\"backend\":\"\""),
        ] {
            rec.backend = backend;
            let json = serde_json::to_string(&rec).unwrap();
            assert!(json.contains(text), "{json}");
            assert_eq!(parse(&rec, &path_of(&rec), &rec.point).unwrap(), rec);
        }
        let json = serde_json::to_string(&rec)
            .unwrap()
            .replace("\"backend\":\"\"", "\"backend\":\"fpga\"");
        let err = parse_record(json.as_bytes(), &path_of(&rec), &rec.point)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("is corrupt (not a point record: unknown backend `fpga` (known: rayon, mpi, cuda, debug, io)"),
            "{err}"
        );
    }

    #[test]
    fn a_record_under_another_name_or_of_another_plan_is_refused() {
        let a = sample();
        let mut b_point = a.point.clone();
        b_point.id = "b0b0b0b0b0b0".into();
        let b_path = PathBuf::from("run/points/b0b0b0b0b0b0.json");
        let e = parse(&a, &b_path, &b_point).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "run/points/b0b0b0b0b0b0.json holds the record of point `{}`, not of point `b0b0b0b0b0b0` (was it copied or renamed?)",
                a.point.id
            )
        );
        let mut other = a.point.clone();
        other.repetitions += 1;
        other.timeout_s = 1.0;
        let e = parse(&a, &path_of(&a), &other).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "{} holds point `{}` with other settings than plan.json (`repetitions`, `timeout_s` differ); it was not measured by this plan",
                path_of(&a).display(),
                a.point.id
            )
        );
    }

    #[test]
    fn impossible_times_and_broken_bytes_are_corrupt() {
        let mut rec = sample();
        rec.repetitions[0].seconds = -0.5;
        let e = parse(&rec, &path_of(&rec), &rec.point).unwrap_err();
        assert!(
            format!("{e:#}")
                .ends_with("is corrupt (repetition 1 lasted -0.5 s, which is no duration)"),
            "{e:#}"
        );
        rec.repetitions[0].seconds = -0.0;
        assert!(parse(&rec, &path_of(&rec), &rec.point).is_ok());
        rec.repetitions[1].seconds = f64::INFINITY;
        assert!(parse(&rec, &path_of(&rec), &rec.point).is_err());
        let mut rec = sample();
        rec.repetitions[1]
            .metrics
            .insert("latency_us".into(), f64::NAN);
        // JSON has no NaN: serde writes null, which is no number.
        let e = parse(&rec, &path_of(&rec), &rec.point).unwrap_err();
        assert!(format!("{e:#}").contains("is corrupt (not a point record: "));
        for bytes in [&b""[..], b"{", b"\xff\xfe{}", b"null", b"[1, 2]"] {
            let e = parse_record(bytes, &path_of(&rec), &rec.point).unwrap_err();
            assert!(
                format!("{e:#}").starts_with("run/points/")
                    && format!("{e:#}").contains(" is corrupt (not a point record: "),
                "{e:#}"
            );
        }
    }

    #[test]
    fn a_records_machine_load_is_optional_and_checked() {
        use crate::report::test_support::with_load;
        // A record written before loads were sampled has no `load` key, and parses.
        let rec = sample();
        let text = serde_json::to_string(&rec).unwrap();
        assert!(!text.contains("\"load\""));
        assert_eq!(
            parse_record(text.as_bytes(), &path_of(&rec), &rec.point)
                .unwrap()
                .load,
            None
        );
        let rec = with_load(sample(), 1.5);
        assert_eq!(parse(&rec, &path_of(&rec), &rec.point).unwrap(), rec);
        let mut bad = rec.clone();
        bad.load.as_mut().unwrap().other_cores = -1.0;
        let e = parse(&bad, &path_of(&bad), &bad.point).unwrap_err();
        assert_eq!(
            format!("{e:#}"),
            format!(
                "{} is corrupt (load.other_cores is -1, not a finite number ≥ 0)",
                path_of(&bad).display()
            )
        );
    }

    #[test]
    fn load_record_names_the_fix_of_the_runs_kind() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let rec = sample();
        fs::create_dir_all(run.points_dir()).unwrap();
        fs::write(run.record(&rec.point.id), b"\xff").unwrap();
        let e = run.load_record(&rec.point).unwrap_err();
        assert!(
            format!("{e:#}").ends_with(&format!(
                "; `scalelab run --resume {}` measures that point again",
                dir.path().display()
            )),
            "{e:#}"
        );
        fs::create_dir(dir.path().join("slurm")).unwrap();
        let e = run.load_record(&rec.point).unwrap_err();
        assert!(
            format!("{e:#}").ends_with(&format!(
                "; `scalelab sbatch --resume {} --submit` measures that point again",
                dir.path().display()
            )),
            "{e:#}"
        );
        fs::remove_file(run.record(&rec.point.id)).unwrap();
        assert!(run.load_record(&rec.point).unwrap().is_none());
    }

    #[test]
    fn a_second_lock_in_the_same_process_is_refused_and_the_first_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let held = run.lock().unwrap();
        let e = run.lock().unwrap_err();
        assert!(
            format!("{e:#}").contains(&format!(
                "is in use by another scalelab process: pid {} on ",
                std::process::id()
            )),
            "{e:#}"
        );
        drop(held);
        run.lock().unwrap();
        // A lock file that describes nobody (a holder that just started) still gives a message.
        assert!(run.busy_message("").contains("that is just starting (see "));
    }
}

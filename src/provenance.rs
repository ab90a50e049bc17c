//! Provenance: where, when and with what a run was made, written beside its results.
//!
//! `provenance.json` answers "can I trust and repeat this number?": the source revision the binary
//! was built from and whether that tree had uncommitted changes (both embedded at compile time by
//! `build.rs`, so a later commit or edit cannot pass for what was measured), the state of the
//! source checkout when the run started (recorded separately, and a mismatch with the build
//! flagged), the scalelab version and compiled features, the compiler, the machine (see
//! [`crate::machine`]), the manifest's sha256 (its copy is `manifest.toml` beside it), the
//! executor, start and end times, SLURM job ids when present, every environment variable that
//! changes results, and one entry per invocation that worked on the run (the first, then each
//! `run --resume` or `sbatch --resume`).
//!
//! Fields added since the first version have serde defaults, so older files stay readable. A
//! `provenance.json` that cannot be read does not block resuming: [`Provenance::resume`] moves it
//! aside to `provenance.json.damaged` and starts a fresh one that says so.
//!
//! [`start_run`] writes a new run's first files (`manifest.toml`, `provenance.json`, `plan.json`
//! last) for both `scalelab run` and `scalelab sbatch`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::files::write_atomic;
use crate::machine::Machine;
use crate::manifest::Manifest;
use crate::plan::Plan;
use crate::results::{RunDir, RunLock};
use crate::units::now_rfc3339;

/// The folders a new run of `experiment` may take under `results`, in order:
/// `<results>/<experiment>/<yyyymmdd-hhmmss>`, then the same with `-1`, `-2`, … (two runs started
/// in the same second). `run` creates the first that is free; `sbatch` picks the first that does
/// not exist (a dry run creates nothing).
pub fn run_dir_candidates(results: &Path, experiment: &str) -> impl Iterator<Item = PathBuf> {
    let stamp = crate::units::stamp_now();
    let base = results.join(experiment);
    (0u32..).map(move |n| {
        if n == 0 {
            base.join(&stamp)
        } else {
            base.join(format!("{stamp}-{n}"))
        }
    })
}

/// What a new run starts from, for [`start_run`].
pub struct NewRun<'a> {
    pub manifest: &'a Manifest,
    /// The manifest as given on the command line (recorded in provenance.json).
    pub manifest_path: &'a Path,
    pub plan: &'a Plan,
    /// The executor's name (`local`, `mock`, `slurm`).
    pub executor: &'a str,
    /// How to go on with a run already in the folder, for the refusal (`finish it with ...`).
    pub finish_hint: &'a str,
}

/// Take the (existing) folder of a new run and write its first files in the one order that makes
/// an interrupted start safe: lock; check, under the lock, that the folder is new or empty (another
/// process may have started a run there since an earlier check); `manifest.toml`; whatever
/// `before_provenance` adds (`run` copies the machine profile); `provenance.json`; and `plan.json`
/// last, since its existence is what makes a folder a run that `--resume` finishes (a start killed
/// before it may be taken over by the same manifest, see [`RunDir::check_fresh`]).
///
/// Returns the lock (held until the run's files are written), the provenance as written, and what
/// `before_provenance` returned.
pub fn start_run<T>(
    run: &RunDir,
    new: &NewRun<'_>,
    machine: Machine,
    before_provenance: impl FnOnce(&Machine) -> Result<T>,
) -> Result<(RunLock, Provenance, T)> {
    let m = new.manifest;
    let lock = run.lock()?;
    run.check_fresh(m, new.finish_hint)?;
    write_atomic(&run.manifest(), m.source.as_bytes())?;
    let extra = before_provenance(&machine)?;
    let prov = Provenance::start(
        machine,
        &m.name,
        &new.manifest_path.display().to_string(),
        &m.sha256,
        new.executor,
        new.plan.points.len(),
    );
    prov.write(run)?;
    write_atomic(&run.plan(), &serde_json::to_vec_pretty(new.plan)?)?;
    Ok((lock, prov, extra))
}

/// The contents of `provenance.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub scalelab_version: String,
    /// Cargo features compiled in ("mpi", "cuda").
    pub features: Vec<String>,
    pub rustc: String,
    /// The source revision this binary was built from (embedded at compile time; "unknown" when
    /// built outside a git checkout). Files written before that recorded the checkout's revision
    /// at run time here.
    pub git_revision: String,
    /// Whether tracked files differed from that revision when the binary was built (None when
    /// unknown).
    pub git_dirty: Option<bool>,
    /// The source checkout the binary was built in, as found when the run started; None when that
    /// folder is gone or is no git checkout (a binary copied to a cluster).
    #[serde(default)]
    pub checkout: Option<Checkout>,
    /// Set when the checkout differs from what the binary was built from: what was measured is
    /// the build, not the checkout.
    #[serde(default)]
    pub source_mismatch: Option<String>,
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
    /// Points in the plan, and how many ended ok / failed when the run last finished.
    pub points: usize,
    pub points_ok: usize,
    pub points_failed: usize,
    /// SLURM_JOB_ID, SLURM_ARRAY_JOB_ID, ... when the run happens inside a job.
    pub slurm: BTreeMap<String, String>,
    /// Environment variables that change results (threads, affinity, BLAS, GPUs).
    pub environment: BTreeMap<String, String>,
    /// Every invocation that worked on this run, oldest first: the one that made it, then each
    /// resume. (Empty in files written before this list existed.)
    #[serde(default)]
    pub invocations: Vec<Invocation>,
    /// Set when an unreadable provenance.json was moved aside and this one started afresh: what
    /// was lost, and where the old file is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<String>,
}

/// The state of a source checkout: its revision and whether tracked files had changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkout {
    pub path: String,
    pub revision: String,
    /// None when `git status` could not tell.
    pub dirty: Option<bool>,
}

/// One invocation that worked on a run: `scalelab run`, `run --resume`, `sbatch`, `sbatch --resume`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Invocation {
    /// When it started (RFC 3339).
    pub started: String,
    pub command_line: Vec<String>,
    pub host: String,
    pub executor: String,
    pub scalelab_version: String,
    /// The build's revision and dirty flag, as in [`Provenance::git_revision`].
    pub git_revision: String,
    pub git_dirty: Option<bool>,
    #[serde(default)]
    pub checkout: Option<Checkout>,
    #[serde(default)]
    pub source_mismatch: Option<String>,
    /// When it ended (empty while running, or when it was killed).
    #[serde(default)]
    pub finished: String,
    /// The signal that stopped it early ("SIGINT"), if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<String>,
}

impl Invocation {
    /// The invocation running now, on `machine` with `executor`; warns on stderr when the binary
    /// was not built from the checkout it came from.
    pub fn now(machine: &Machine, executor: &str) -> Invocation {
        let (git_revision, git_dirty) = build_state();
        let checkout = checkout_state(Path::new(env!("CARGO_MANIFEST_DIR")));
        let source_mismatch = checkout
            .as_ref()
            .and_then(|c| mismatch(&git_revision, git_dirty, c));
        if let Some(m) = &source_mismatch {
            crate::errln!("warning: {m}");
        }
        Invocation {
            started: now_rfc3339(),
            command_line: std::env::args().collect(),
            host: machine.host.clone(),
            executor: executor.into(),
            scalelab_version: env!("CARGO_PKG_VERSION").into(),
            git_revision,
            git_dirty,
            checkout,
            source_mismatch,
            finished: String::new(),
            interrupted: None,
        }
    }
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
        let first = Invocation::now(&machine, executor);
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
            git_revision: first.git_revision.clone(),
            git_dirty: first.git_dirty,
            checkout: first.checkout.clone(),
            source_mismatch: first.source_mismatch.clone(),
            machine,
            experiment: experiment.into(),
            manifest_path: manifest_path.into(),
            manifest_sha256: manifest_sha256.into(),
            executor: executor.into(),
            command_line: first.command_line.clone(),
            started: first.started.clone(),
            finished: String::new(),
            points,
            points_ok: 0,
            points_failed: 0,
            slurm,
            environment,
            invocations: vec![first],
            recovered: None,
        }
    }

    /// The provenance of `run` with this invocation (a resume) appended, written back.
    ///
    /// A provenance.json that cannot be read (damaged, or not there) must not block resuming
    /// intact records: it is moved aside to `provenance.json.damaged` (when it exists), a warning
    /// says so, and a fresh provenance for this machine starts, with `recovered` saying what was
    /// lost.
    pub fn resume(run: &RunDir, plan: &Plan, executor: &str) -> Result<Provenance> {
        let mut prov = match Provenance::load(run) {
            Ok(p) => p,
            Err(e) => {
                let path = run.provenance();
                let note = if path.exists() {
                    let aside = path.with_file_name("provenance.json.damaged");
                    std::fs::rename(&path, &aside).with_context(|| {
                        format!("moving the unreadable {} aside", path.display())
                    })?;
                    format!(
                        "the earlier provenance.json could not be read ({e:#}); it was moved to {} and this one started afresh, so the first run's machine, times and build are not known",
                        aside.display()
                    )
                } else {
                    format!(
                        "{} was missing; this one started afresh, so the first run's machine, times and build are not known",
                        path.display()
                    )
                };
                crate::errln!("warning: {note}");
                let mut fresh = Provenance::start(
                    Machine::detect_if_cached(),
                    &plan.experiment,
                    &run.manifest().display().to_string(),
                    &plan.manifest_sha256,
                    executor,
                    plan.points.len(),
                );
                fresh.recovered = Some(note);
                fresh.write(run)?;
                return Ok(fresh);
            }
        };
        if prov.invocations.is_empty() {
            // A file from before the list existed: its top-level fields describe the first run.
            prov.invocations.push(Invocation {
                started: prov.started.clone(),
                command_line: prov.command_line.clone(),
                host: prov.machine.host.clone(),
                executor: prov.executor.clone(),
                scalelab_version: prov.scalelab_version.clone(),
                git_revision: prov.git_revision.clone(),
                git_dirty: prov.git_dirty,
                checkout: prov.checkout.clone(),
                source_mismatch: prov.source_mismatch.clone(),
                finished: prov.finished.clone(),
                interrupted: None,
            });
        }
        let machine = Machine::detect_quick();
        prov.invocations.push(Invocation::now(&machine, executor));
        prov.finished = String::new();
        prov.write(run)?;
        Ok(prov)
    }

    /// Mark the latest invocation (and the run) finished now, or stopped by `signal`.
    pub fn finish(&mut self, interrupted: Option<i32>) {
        let now = now_rfc3339();
        if let Some(last) = self.invocations.last_mut() {
            last.finished = now.clone();
            last.interrupted = interrupted.map(crate::executor::signal_name);
        }
        if interrupted.is_none() {
            self.finished = now;
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

/// The revision and dirty flag this binary was built from, as `build.rs` embedded them.
pub fn build_state() -> (String, Option<bool>) {
    let dirty = match env!("SCALELAB_BUILD_DIRTY") {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    (env!("SCALELAB_BUILD_REV").to_string(), dirty)
}

/// The revision and dirty flag of the git checkout at `dir` now; None when it is gone or no
/// checkout.
pub fn checkout_state(dir: &Path) -> Option<Checkout> {
    if !dir.is_dir() {
        return None;
    }
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
    let revision = git(&["rev-parse", "HEAD"])?;
    // `--no-optional-locks`: only look; a refreshed index would make the next build rerun build.rs.
    let dirty = git(&[
        "--no-optional-locks",
        "status",
        "--porcelain",
        "--untracked-files=no",
    ])
    .map(|s| !s.is_empty());
    Some(Checkout {
        path: dir.display().to_string(),
        revision,
        dirty,
    })
}

/// Why the checkout is not what the binary was built from, or None when they agree (or cannot be
/// compared). Two dirty trees at the same revision cannot be told apart and count as agreeing.
pub fn mismatch(build_rev: &str, build_dirty: Option<bool>, checkout: &Checkout) -> Option<String> {
    let short = |r: &str| r.chars().take(12).collect::<String>();
    let state = |rev: &str, dirty: Option<bool>| match dirty {
        Some(true) => format!("{} with uncommitted changes", short(rev)),
        _ => short(rev),
    };
    if build_rev == "unknown" {
        return None;
    }
    let differs = build_rev != checkout.revision
        || matches!((build_dirty, checkout.dirty), (Some(a), Some(b)) if a != b);
    differs.then(|| {
        format!(
            "this binary was built from {} but the checkout {} is at {}: rebuild (cargo build --release) so that what is measured is what the checkout holds",
            state(build_rev, build_dirty),
            checkout.path,
            state(&checkout.revision, checkout.dirty)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn a_checkout_that_moved_on_since_the_build_is_flagged() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        git(d, &["init", "-q"]);
        std::fs::write(d.join("a.rs"), "1").unwrap();
        git(d, &["add", "a.rs"]);
        git(d, &["commit", "-qm", "one"]);
        let built = checkout_state(d).expect("a checkout");
        assert_eq!(built.dirty, Some(false));
        assert_eq!(mismatch(&built.revision, Some(false), &built), None);

        // Edited after the build: same revision, now dirty.
        std::fs::write(d.join("a.rs"), "2").unwrap();
        let edited = checkout_state(d).unwrap();
        assert_eq!(edited.revision, built.revision);
        let m = mismatch(&built.revision, Some(false), &edited).expect("flagged");
        assert_eq!(
            m,
            format!(
                "this binary was built from {} but the checkout {} is at {} with uncommitted changes: rebuild (cargo build --release) so that what is measured is what the checkout holds",
                &built.revision[..12],
                d.display(),
                &built.revision[..12]
            )
        );

        // Committed after the build: another revision.
        git(d, &["commit", "-qam", "two"]);
        let committed = checkout_state(d).unwrap();
        assert_ne!(committed.revision, built.revision);
        assert!(mismatch(&built.revision, Some(false), &committed).is_some());

        // No checkout at all: nothing to compare.
        assert_eq!(checkout_state(&d.join("gone")), None);
    }

    #[test]
    fn the_build_state_is_embedded() {
        let (rev, _) = build_state();
        assert!(
            rev == "unknown" || (rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit())),
            "{rev}"
        );
    }

    /// A new run's files come in the one safe order (the step between sees `manifest.toml` but
    /// no provenance yet, and `plan.json` comes last), and a second start in the same folder is
    /// refused with the caller's hint, leaving the first run's files as they were.
    #[test]
    fn start_run_writes_plan_json_last_and_refuses_a_taken_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.toml");
        std::fs::write(
            &path,
            "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\n",
        )
        .unwrap();
        let m = crate::manifest::load(&path).unwrap();
        let plan = crate::plan::expand(&m).unwrap();
        let run = RunDir::new(dir.path().join("run"));
        std::fs::create_dir(&run.root).unwrap();
        let new = NewRun {
            manifest: &m,
            manifest_path: &path,
            plan: &plan,
            executor: "mock",
            finish_hint: "finish it elsewhere",
        };
        let (lock, prov, seen) = start_run(&run, &new, Machine::detect_quick(), |_| {
            Ok((
                run.manifest().exists(),
                run.provenance().exists(),
                run.plan().exists(),
            ))
        })
        .unwrap();
        assert_eq!(seen, (true, false, false));
        assert_eq!(std::fs::read_to_string(run.manifest()).unwrap(), m.source);
        assert_eq!(Provenance::load(&run).unwrap(), prov);
        assert_eq!(prov.executor, "mock");
        assert_eq!(prov.points, plan.points.len());
        assert_eq!(prov.manifest_path, path.display().to_string());
        assert_eq!(run.load_plan().unwrap().points, plan.points);
        drop(lock);

        let plan_before = std::fs::read(run.plan()).unwrap();
        let mut called = false;
        let err = start_run(&run, &new, Machine::detect_quick(), |_| {
            called = true;
            Ok(())
        })
        .unwrap_err();
        assert!(
            format!("{err:#}")
                .contains("already holds this run (experiment `x`); finish it elsewhere"),
            "{err:#}"
        );
        assert!(!called);
        assert_eq!(std::fs::read(run.plan()).unwrap(), plan_before);
    }

    /// New runs are named by the stamp, then the stamp with -1, -2, … under the experiment.
    #[test]
    fn run_dirs_are_named_by_the_stamp_then_numbered() {
        let names: Vec<PathBuf> = run_dir_candidates(Path::new("res"), "exp")
            .take(3)
            .collect();
        let stamp = names[0].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            jiff::civil::DateTime::strptime(crate::units::STAMP_FORMAT, &stamp).is_ok(),
            "{stamp}"
        );
        // The stamp may have ticked between two calls, so names[0] fixes it for the others.
        assert_eq!(names[0], Path::new("res/exp").join(&stamp));
        assert_eq!(names[1], Path::new("res/exp").join(format!("{stamp}-1")));
        assert_eq!(names[2], Path::new("res/exp").join(format!("{stamp}-2")));
    }
}

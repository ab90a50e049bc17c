//! The SLURM subcommands: `sbatch` (new run or `--resume`), `status` and `collect`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::sacct;
use super::script::{self, ScriptContext};
use super::shape::{self, Override, Shape};
use super::status::{self, Decision, PointState};
use super::submit::{self, Jobs, Partition, RoundPlan, Slurm};
use super::Settings;
use crate::exit::BadInput;
use crate::files::write_atomic;
use crate::machine::Machine;
use crate::manifest::Manifest;
use crate::plan::{self, Plan, Point};
use crate::provenance::{start_run, NewRun, Provenance};
use crate::results::RunDir;
use crate::units::plural;
use crate::workload::Node;

/// What `scalelab sbatch` was asked to do with the scripts.
#[derive(Clone, Debug)]
pub struct SbatchOptions {
    /// Print the scripts and the cost, write nothing.
    pub dry_run: bool,
    /// Submit the scripts and record the job ids.
    pub submit: bool,
    /// One job per shape running its points in turn, instead of arrays.
    pub pack: bool,
    /// The scalelab binary the scripts run (default: this one).
    pub program: Option<PathBuf>,
    /// Add a calibration job (`scalelab calibrate` on a whole compute node) to the first round.
    pub calibrate: bool,
}

/// The cost line `scalelab plan` adds for a manifest with a `[slurm]` table.
pub fn plan_cost(m: &Manifest, plan: &Plan) -> Result<String> {
    let settings = m.slurm.clone().unwrap_or_default();
    let points: Vec<&Point> = plan.points.iter().collect();
    let groups = shape::group(&points, &settings, &BTreeMap::new());
    let max = settings.max_array.unwrap_or(submit::DEFAULT_MAX_ARRAY_SIZE);
    let jobs = shape::split_arrays(&groups, max, settings.throttle);
    let cost = shape::Cost::of(&jobs, super::script::COLLECT_TIME_S);
    Ok(format!(
        "on SLURM (`scalelab sbatch`): {} shape{}, {}\n",
        groups.len(),
        plural(groups.len()),
        cost.describe(false)
    ))
}

/// `scalelab sbatch <manifest>`: plan, render, and (with `--submit`) submit a new run.
pub fn sbatch_new(
    manifest: &Path,
    run_dir: Option<PathBuf>,
    results: &Path,
    opts: &SbatchOptions,
    slurm: &mut dyn Slurm,
) -> Result<ExitCode> {
    // Checked once without a node to learn the partition, then against the partition's nodes.
    let m = load_for_cluster(manifest, None, None)?;
    let settings = m.slurm.clone().unwrap_or_default();
    submit::require_partition(manifest, &settings).map_err(BadInput::wrap)?;
    if let Some(d) = &run_dir {
        // Refuse a folder holding something else before anything (even the lock) is written.
        let run = RunDir::new(d);
        run.check_fresh(&m, &resubmit_hint(&run))?;
    }
    if opts.submit {
        // Fail before anything is written.
        require_command("sbatch")?;
    }
    let partition = find_partition(slurm, manifest, &settings)?;
    let m = match &partition {
        Some(p) => load_for_cluster(manifest, Some(p), None)?,
        None => m,
    };
    if let Some(note) = unchecked_node(partition.as_ref()) {
        crate::errln!("note: {note}");
    }
    // Oversubscription is judged against the compute nodes, not this login node; without sinfo,
    // the partition's limits cannot be known and no point is marked.
    let cores = partition
        .as_ref()
        .map(|p| p.cpus_per_node as usize)
        .unwrap_or(CLUSTER_CORES);
    let plan = plan::expand_with_cores(&m, cores)?;
    let run = match run_dir {
        Some(d) => RunDir::new(d),
        None => RunDir::new(next_run_path(results, &m.name)),
    };
    let run = RunDir::new(absolute(&run.root)?);
    let points: Vec<&Point> = plan.points.iter().collect();
    let round = RoundRequest {
        manifest,
        experiment: &m.name,
        settings: &settings,
        number: 1,
        points: &points,
        overrides: &BTreeMap::new(),
        calibrate: opts.calibrate,
        partition: partition.as_ref(),
    }
    .render(&run, opts, slurm)?;
    let Some(round) = round else {
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(&run.root)
        .with_context(|| format!("creating {}", run.root.display()))?;
    // Held while the run's files are written and submitted.
    let new = NewRun {
        manifest: &m,
        manifest_path: manifest,
        plan: &plan,
        executor: "slurm",
        finish_hint: &resubmit_hint(&run),
    };
    let (_lock, _, ()) = start_run(&run, &new, Machine::detect_quick(), |_| Ok(()))?;
    round.write()?;
    finish(&run, &round, opts, slurm)
}

/// One round of scripts to render: which points, under which settings and overrides.
struct RoundRequest<'a> {
    /// The manifest the round's limits are reported against.
    manifest: &'a Path,
    experiment: &'a str,
    settings: &'a Settings,
    /// The round's number (1 for a new run).
    number: u32,
    points: &'a [&'a Point],
    overrides: &'a BTreeMap<String, Override>,
    /// Add the calibration job.
    calibrate: bool,
    /// The partition as `sinfo` reports it, when it answered.
    partition: Option<&'a Partition>,
}

impl RoundRequest<'_> {
    /// Render the round's scripts in memory and check them against the partition's limits. A dry
    /// run prints them and returns `None`: nothing is written, nothing submitted.
    fn render(
        &self,
        run: &RunDir,
        opts: &SbatchOptions,
        slurm: &mut dyn Slurm,
    ) -> Result<Option<RoundPlan>> {
        let program = program(opts)?;
        let max_array = self
            .settings
            .max_array
            .or_else(|| slurm.max_array_size())
            .unwrap_or(submit::DEFAULT_MAX_ARRAY_SIZE);
        let ctx = ScriptContext {
            experiment: self.experiment,
            run_dir: &run.root,
            program: &program,
            settings: self.settings,
            round: self.number,
        };
        let mut round =
            submit::prepare_round(&ctx, self.points, self.overrides, max_array, opts.pack)?;
        if self.calibrate {
            round.calibrate = Some((
                ctx.round_dir().join("calibrate.sbatch"),
                script::render_calibrate(&ctx, calibrate_nodes(self.partition)),
            ));
        }
        if let Some(p) = self.partition {
            check_round(self.manifest, p, &round)?;
        }
        if opts.dry_run {
            print_dry_run(&round)?;
            return Ok(None);
        }
        Ok(Some(round))
    }
}

/// What `sbatch --resume` does with each point of a run, decided under the retry policy.
#[derive(Default)]
struct Resubmission<'a> {
    /// The points submitted again, with the new per-point overrides (more time, more memory).
    points: Vec<&'a Point>,
    /// One line per resubmitted point: its state and what changes.
    lines: Vec<String>,
    /// Points still pending or running.
    waiting: usize,
    /// One line per failed point the policy leaves alone, with the reason.
    left: Vec<String>,
}

impl<'a> Resubmission<'a> {
    /// Decide for every status; `overrides` gains the changed shapes of the resubmitted points.
    fn decide(
        statuses: &[status::PointStatus<'a>],
        settings: &Settings,
        overrides: &mut BTreeMap<String, Override>,
    ) -> Resubmission<'a> {
        let mut r = Resubmission::default();
        for st in statuses {
            let current = overrides.get(&st.point.id).copied();
            let shape = Shape::of(st.point, settings, current.as_ref());
            match status::decide(st, &shape, current.as_ref(), &settings.retry) {
                None => {}
                Some(Decision::Wait) => r.waiting += 1,
                Some(Decision::Leave(why)) => {
                    r.left
                        .push(format!("  {}  {}: {why}", st.point.id, st.state.label()))
                }
                Some(Decision::Resubmit(new)) => {
                    r.lines.push(format!(
                        "  {}  {}: {}",
                        st.point.id,
                        st.state.label(),
                        status::describe_change(&shape, &new)
                    ));
                    if new != Override::default() {
                        overrides.insert(st.point.id.clone(), new);
                    }
                    r.points.push(st.point);
                }
            }
        }
        r
    }

    /// Say what is left alone (waiting, not resubmitted).
    fn print_left_alone(&self) -> Result<()> {
        if self.waiting > 0 {
            crate::outln!(
                "{} point{} still pending or running: left alone",
                self.waiting,
                plural(self.waiting)
            )?;
        }
        if !self.left.is_empty() {
            crate::outln!("not resubmitted ({}):", self.left.len())?;
            for l in &self.left {
                crate::outln!("{l}")?;
            }
        }
        Ok(())
    }

    /// Say what is resubmitted.
    fn print_resubmitted(&self) -> Result<()> {
        if !self.points.is_empty() {
            crate::outln!(
                "resubmitting {} point{}:",
                self.points.len(),
                plural(self.points.len())
            )?;
        }
        for l in &self.lines {
            crate::outln!("{l}")?;
        }
        Ok(())
    }
}

/// `scalelab sbatch --resume <run-dir>`: resubmit the missing and failed points under the retry
/// policy, in a new round.
pub fn sbatch_resume(dir: &Path, opts: &SbatchOptions, slurm: &mut dyn Slurm) -> Result<ExitCode> {
    let run = RunDir::new(absolute(dir)?);
    let plan = run.load_plan()?;
    // A dry run writes nothing and needs no lock.
    let _lock = if opts.dry_run {
        None
    } else {
        Some(run.lock()?)
    };
    // The run's copy of the manifest lives in the run directory: its relative data files are
    // resolved against the folder the plan resolved them against.
    let data_dir = plan.data_dir();
    let m = load_for_cluster(&run.manifest(), None, data_dir.as_deref())?;
    let settings = m.slurm.clone().unwrap_or_default();
    submit::require_partition(&run.manifest(), &settings).map_err(BadInput::wrap)?;
    if opts.submit {
        require_command("sbatch")?;
    }
    let jobs = Jobs::load(&run)?;
    let rows = if jobs.rounds.is_empty() {
        Vec::new()
    } else {
        sacct::parse(&slurm.sacct(&jobs.job_ids())?)
    };
    let statuses = status::compute(&run, &plan, &jobs, &rows);
    let mut overrides = submit::load_overrides(&run)?;
    let resubmit = Resubmission::decide(&statuses, &settings, &mut overrides);
    resubmit.print_left_alone()?;
    let calibrate = say_calibration(&calibration_state(&run, &jobs, &rows))?;
    if resubmit.points.is_empty() && !calibrate {
        crate::outln!("nothing to resubmit in {}", run.root.display())?;
        return Ok(if resubmit.left.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    resubmit.print_resubmitted()?;
    let number = jobs.next_round();
    let partition = find_partition(slurm, &run.manifest(), &settings)?;
    let round = RoundRequest {
        manifest: &run.manifest(),
        experiment: &m.name,
        settings: &settings,
        number,
        points: &resubmit.points,
        overrides: &overrides,
        calibrate,
        partition: partition.as_ref(),
    }
    .render(&run, opts, slurm)?;
    let Some(round) = round else {
        return Ok(ExitCode::SUCCESS);
    };
    // This round is one more invocation on the run: provenance.json lists it.
    Provenance::resume(&run, &plan, "slurm")?;
    keep_failed_records(&run, &resubmit.points, number - 1)?;
    write_atomic(
        &submit::overrides_path(&run),
        &serde_json::to_vec_pretty(&overrides)?,
    )?;
    round.write()?;
    finish(&run, &round, opts, slurm)
}

/// Say what a resume does about the calibration job; whether it submits it again.
fn say_calibration(calibration: &Calibration) -> Result<bool> {
    match calibration {
        Calibration::Running(id) => crate::outln!(
            "the calibration job {id} has not ended (or sacct does not know it yet): left alone"
        )?,
        Calibration::Missing => crate::outln!(
            "resubmitting the calibration job: the run was made with --calibrate and has no {}",
            crate::calibrate::profile::RUN_FILE
        )?,
        Calibration::NotAsked | Calibration::Done => {}
    }
    Ok(*calibration == Calibration::Missing)
}

/// Move the records of the resubmitted `points` out of the way of the new ones, kept as evidence
/// under `points/failed/<id>.round-<round>.json`.
fn keep_failed_records(run: &RunDir, points: &[&Point], round: u32) -> Result<()> {
    for p in points {
        let rec = run.record(&p.id);
        if rec.exists() {
            let kept = run
                .points_dir()
                .join("failed")
                .join(format!("{}.round-{round}.json", p.id));
            std::fs::create_dir_all(kept.parent().expect("has a parent"))?;
            std::fs::rename(&rec, &kept)
                .with_context(|| format!("moving {} to {}", rec.display(), kept.display()))?;
        }
    }
    Ok(())
}

/// Where a run's calibration job stands, for `sbatch --resume`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Calibration {
    /// The run was made without `--calibrate`.
    NotAsked,
    /// Its profile (`machine-profile.json`) is in the run.
    Done,
    /// A calibration job (this id) has not ended, as far as `sacct` says.
    Running(String),
    /// Asked for, no profile, none in flight: the resume submits it again.
    Missing,
}

/// Whether `run` was made with `--calibrate` (a round folder holds `calibrate.sbatch`, written
/// whether or not it was submitted) and, if so, whether its profile arrived, a calibration job is
/// still in flight (by `sacct`'s `rows`), or it must be submitted again.
fn calibration_state(run: &RunDir, jobs: &Jobs, rows: &[sacct::SacctRow]) -> Calibration {
    let scripts = std::fs::read_dir(run.root.join("slurm"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| e.path().join("calibrate.sbatch").exists());
    let calibration_jobs: Vec<&str> = jobs
        .rounds
        .iter()
        .flat_map(|r| &r.jobs)
        .filter(|j| j.points.is_empty() && j.script.ends_with("calibrate.sbatch"))
        .map(|j| j.job_id.as_str())
        .collect();
    if !scripts && calibration_jobs.is_empty() {
        return Calibration::NotAsked;
    }
    if run.root.join(crate::calibrate::profile::RUN_FILE).exists() {
        return Calibration::Done;
    }
    // A job sacct does not (yet) report as ended counts as in flight: a second calibration job
    // is never submitted beside one that may still run.
    let in_flight = calibration_jobs.iter().find(|id| {
        !rows
            .iter()
            .any(|r| r.job == **id && r.step.is_none() && r.state.ended())
    });
    match in_flight {
        Some(id) => Calibration::Running(id.to_string()),
        None => Calibration::Missing,
    }
}

/// Print where the scripts went, submit them when asked, and say what comes next.
fn finish(
    run: &RunDir,
    round: &RoundPlan,
    opts: &SbatchOptions,
    slurm: &mut dyn Slurm,
) -> Result<ExitCode> {
    let dir = round
        .collect_path
        .parent()
        .expect("scripts live in a folder");
    let scripts = round.scripts.len() + 1 + usize::from(round.calibrate.is_some());
    crate::outln!(
        "round {}: {} script{} in {}",
        round.round,
        scripts,
        plural(scripts),
        dir.display()
    )?;
    crate::outln!("{}", round.cost.describe(round.packed))?;
    if round.calibrate.is_some() {
        crate::outln!(
            "plus the calibration job (calibrate.sbatch): one whole node for at most {} min, not counted above",
            script::CALIBRATE_TIME_S / 60
        )?;
    }
    if opts.submit {
        let submitted = round.submit(run, slurm)?;
        crate::outln!(
            "submitted: job{} {} and the collect job {}",
            plural(submitted.jobs.len()),
            submitted
                .jobs
                .iter()
                .map(|j| if j.points.is_empty() {
                    format!("{} (calibration)", j.job_id)
                } else {
                    j.job_id.clone()
                })
                .collect::<Vec<_>>()
                .join(", "),
            submitted.collect.as_deref().unwrap_or("?")
        )?;
        crate::outln!(
            "follow it with `scalelab status {}`; resubmit what fails with `scalelab sbatch --resume {} --submit`",
            run.root.display(),
            run.root.display()
        )?;
    } else {
        crate::outln!(
            "not submitted; submit with `scalelab sbatch --resume {} --submit`{}",
            run.root.display(),
            if round.calibrate.is_some() {
                " (it submits the calibration job too while the run has no machine profile)"
            } else {
                ""
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The manifest's partition as `sinfo` reports it; `None` when `sinfo` cannot be asked, an error
/// listing the cluster's partitions when it has no such one.
fn find_partition(
    slurm: &mut dyn Slurm,
    manifest: &Path,
    settings: &Settings,
) -> Result<Option<submit::Partition>> {
    let Some(parts) = slurm.partitions() else {
        return Ok(None);
    };
    let name = settings.partition.as_deref().unwrap_or_default();
    match parts.iter().find(|p| p.name == name) {
        Some(p) => Ok(Some(p.clone())),
        None => crate::bad_input!(
            "{}: [slurm] partition {name:?} does not exist on this cluster; sinfo lists: {}",
            manifest.display(),
            parts
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Nodes of the calibration job: two where the partition has them, for the MPI ping-pong between
/// nodes; one otherwise.
fn calibrate_nodes(partition: Option<&Partition>) -> u32 {
    if partition.is_some_and(|p| p.nodes >= 2) {
        2
    } else {
        1
    }
}

fn check_round(manifest: &Path, p: &submit::Partition, round: &RoundPlan) -> Result<()> {
    let shapes: Vec<Shape> = round.jobs.iter().map(|j| j.shape).collect();
    let times: Vec<u64> = round
        .jobs
        .iter()
        .map(|j| {
            if round.packed {
                j.shape.time_s.saturating_mul(j.points.len() as u64)
            } else {
                j.shape.time_s
            }
        })
        .collect();
    let problems = submit::check_limits(manifest, p, &shapes, &times);
    if !problems.is_empty() {
        crate::bad_input!("{}", problems.join("\nerror: "));
    }
    Ok(())
}

fn print_dry_run(round: &RoundPlan) -> Result<()> {
    if let Some((path, text)) = &round.calibrate {
        crate::outln!("==> {} <==\n{}", path.display(), text)?;
    }
    for s in &round.scripts {
        crate::outln!("==> {} <==\n{}", s.path.display(), s.text)?;
    }
    crate::outln!(
        "==> {} <==\n{}",
        round.collect_path.display(),
        round.collect
    )?;
    crate::outln!(
        "==> the sbatch commands `--submit` runs (the collect job waits for every other job) <==\n{}\n",
        round.sbatch_commands().join("\n")
    )?;
    crate::outln!("{}", round.cost.describe(round.packed))?;
    crate::outln!("dry run: nothing written, nothing submitted")?;
    Ok(())
}

/// `scalelab status <run-dir>`: each point's state, from its record, `jobs.json` and `sacct`.
/// Exits with 1 when any point failed.
pub fn status(dir: &Path, slurm: &mut dyn Slurm) -> Result<ExitCode> {
    let run = RunDir::new(dir);
    let plan = run.load_plan()?;
    let jobs = Jobs::load(&run)?;
    let collect = jobs
        .rounds
        .last()
        .and_then(|r| r.collect.clone().map(|id| (r.round, id)));
    let rows = if jobs.rounds.is_empty() {
        Vec::new()
    } else {
        let mut ids = jobs.job_ids();
        ids.extend(collect.iter().map(|(_, id)| id.clone()));
        match slurm.sacct(&ids) {
            Ok(text) => sacct::parse(&text),
            Err(e) => {
                crate::errln!("warning: {e:#}; showing the point records only");
                Vec::new()
            }
        }
    };
    let statuses = status::compute(&run, &plan, &jobs, &rows);
    crate::out!("{}", status::render(&run, &statuses))?;
    if let Some((round, id)) = collect {
        let state = rows
            .iter()
            .find(|r| r.job == id && r.step.is_none())
            .map_or_else(|| "not in sacct yet".to_string(), |r| r.state.label());
        crate::outln!(
            "\ncollect and report job {id} (round {round}): {state}; report: {}",
            run.report().display()
        )?;
    }
    let failed = statuses
        .iter()
        .any(|s| matches!(s.state, PointState::Failed(_)));
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `scalelab collect <run-dir>`: merge the records present now into `measurements.csv` and
/// `summary.csv`. Exits with 1 when a record could not be read. Holds the run's lock while it
/// writes (array tasks writing records meanwhile take none).
pub fn collect(dir: &Path) -> Result<ExitCode> {
    let run = RunDir::new(dir);
    let plan = run.load_plan()?;
    let _lock = run.lock()?;
    let (records, unreadable) = run.load_records(&plan);
    for problem in &unreadable {
        crate::errln!("warning: {problem}; left out");
    }
    let (measurements, summary) = crate::report::write_tables(&run, &plan, &records)?;
    let missing = plan.points.len() - records.len() - unreadable.len();
    crate::outln!(
        "collected {} of {} points into {} and {}{}",
        records.len(),
        plan.points.len(),
        measurements.display(),
        summary.display(),
        if missing > 0 {
            format!(" ({missing} not finished yet)")
        } else {
            String::new()
        }
    )?;
    Ok(if unreadable.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Cores per node assumed while checking a manifest for a cluster whose partition `sinfo` has not
/// told: none of the login node's limits apply (the absolute limits of the manifest still do).
const CLUSTER_CORES: usize = 1 << 20;

/// The node of `partition` as the manifest's checks see it: its memory (`sinfo`'s `%m`, MB), or
/// unknown, never the login node's. Its cores stay [`CLUSTER_CORES`]: the partition's CPUs per node
/// are checked per job shape once the scripts are rendered (`submit::check_limits`), with the
/// message that names the partition.
fn cluster_node(partition: Option<&submit::Partition>) -> Node {
    Node {
        cores: CLUSTER_CORES,
        memory_bytes: partition
            .filter(|p| p.mem_per_node_mb > 0)
            .map(|p| p.mem_per_node_mb.saturating_mul(1 << 20)),
    }
}

/// What the checks could not judge for lack of `sinfo`'s answer, if anything.
fn unchecked_node(partition: Option<&submit::Partition>) -> Option<String> {
    match partition {
        None => Some(
            "sinfo did not answer: points were not checked against the partition's CPUs and memory per node (this login node's say nothing about them)".into(),
        ),
        Some(p) if p.mem_per_node_mb == 0 => Some(format!(
            "sinfo reports no memory for partition {:?}: the points' memory estimates were not checked",
            p.name
        )),
        Some(_) => None,
    }
}

/// Load a manifest to run on the cluster: the checks of this build against a node of
/// `partition` (see [`cluster_node`]), not the machine `scalelab sbatch` runs on (a login node is
/// no compute node). `data_dir` overrides where relative data files are found.
fn load_for_cluster(
    path: &Path,
    partition: Option<&submit::Partition>,
    data_dir: Option<&Path>,
) -> Result<Manifest> {
    let ctx = crate::manifest::Context {
        node: cluster_node(partition),
        data_dir,
        ..crate::manifest::Context::this_build()
    };
    Ok(crate::manifest::load_with(path, &ctx)?)
}

/// How to go on with the run already in `run` (for a refused `--run-dir`).
fn resubmit_hint(run: &RunDir) -> String {
    format!(
        "resubmit its missing or failed points with `scalelab sbatch --resume {} --submit`",
        run.root.display()
    )
}

/// `results/<experiment>/<yyyymmdd-hhmmss>[-N]`, not yet existing (not created: a dry run
/// writes nothing).
fn next_run_path(results: &Path, experiment: &str) -> PathBuf {
    crate::provenance::run_dir_candidates(results, experiment)
        .find(|p| !p.exists())
        .expect("an unused name exists")
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))
}

fn program(opts: &SbatchOptions) -> Result<PathBuf> {
    match &opts.program {
        Some(p) => absolute(p),
        None => std::env::current_exe().context("finding the scalelab binary"),
    }
}

fn require_command(name: &str) -> Result<()> {
    if !submit::on_path(name) {
        // Asking to submit where there is no SLURM is a wrong argument here, not a fault.
        crate::bad_input!("{}", submit::missing_command(name));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(mem_per_node_mb: u64) -> submit::Partition {
        submit::Partition {
            name: "batch".into(),
            default: true,
            max_time_s: None,
            cpus_per_node: 128,
            mem_per_node_mb,
            nodes: 4,
        }
    }

    /// Records every submission; job ids count up from 100. `sacct` answers `accounting`.
    #[derive(Default)]
    struct FakeSlurm {
        submitted: Vec<(PathBuf, Option<String>)>,
        accounting: String,
    }

    impl Slurm for FakeSlurm {
        fn sbatch(&mut self, script: &Path, dependency: Option<&str>) -> Result<String> {
            self.submitted
                .push((script.to_path_buf(), dependency.map(str::to_string)));
            Ok((99 + self.submitted.len()).to_string())
        }
        fn sacct(&mut self, _: &[String]) -> Result<String> {
            Ok(self.accounting.clone())
        }
        fn partitions(&mut self) -> Option<Vec<submit::Partition>> {
            None
        }
        fn max_array_size(&mut self) -> Option<u64> {
            None
        }
    }

    #[test]
    fn sbatch_calibrate_adds_a_calibration_job_the_collect_job_waits_for() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.toml");
        std::fs::write(
            &manifest,
            "name = \"x\"\n\n[[study]]\nworkload = \"gemm\"\nsize = [64]\nthreads = [1, 2]\n\n[slurm]\npartition = \"batch\"\n",
        )
        .unwrap();
        let run_dir = dir.path().join("run");
        let opts = SbatchOptions {
            dry_run: false,
            submit: false,
            pack: false,
            program: Some(PathBuf::from("/opt/bin/scalelab")),
            calibrate: true,
        };
        let mut slurm = FakeSlurm::default();
        sbatch_new(
            &manifest,
            Some(run_dir.clone()),
            dir.path(),
            &opts,
            &mut slurm,
        )
        .unwrap();
        let round_dir = run_dir.join("slurm/round-1");
        let script = std::fs::read_to_string(round_dir.join("calibrate.sbatch")).unwrap();
        assert!(script.contains("#SBATCH --partition=batch\n"), "{script}");
        assert!(script.ends_with(&format!(
            "exec /opt/bin/scalelab calibrate --out {}\n",
            run_dir.join("machine-profile.json").display()
        )));

        // Submitted first, recorded without points; the collect job depends on it too.
        let settings = Settings::default();
        let ctx = ScriptContext {
            experiment: "x",
            run_dir: &run_dir,
            program: Path::new("/opt/bin/scalelab"),
            settings: &settings,
            round: 1,
        };
        let plan = RunDir::new(&run_dir).load_plan().unwrap();
        let points: Vec<&Point> = plan.points.iter().collect();
        let mut round =
            submit::prepare_round(&ctx, &points, &BTreeMap::new(), 1000, false).unwrap();
        round.calibrate = Some((round_dir.join("calibrate.sbatch"), script));
        // What `--dry-run` prints: the same commands, in the order `submit` runs them.
        let d = round_dir.display();
        assert_eq!(
            round.sbatch_commands(),
            vec![
                format!("calibrate=$(sbatch --parsable {d}/calibrate.sbatch)"),
                format!("array1=$(sbatch --parsable {d}/array-1.sbatch)"),
                format!("array2=$(sbatch --parsable {d}/array-2.sbatch)"),
                format!(
                    "sbatch --parsable --dependency=afterany:$calibrate:$array1:$array2 {d}/collect.sbatch"
                ),
            ]
        );
        let rec = round.submit(&RunDir::new(&run_dir), &mut slurm).unwrap();
        assert_eq!(
            slurm.submitted[0],
            (round_dir.join("calibrate.sbatch"), None)
        );
        assert_eq!(rec.jobs[0].job_id, "100");
        assert!(rec.jobs[0].points.is_empty());
        assert_eq!(rec.jobs[0].script, "slurm/round-1/calibrate.sbatch");
        let (collect, dep) = slurm.submitted.last().unwrap();
        assert_eq!(collect, &round_dir.join("collect.sbatch"));
        // Two shapes (1 and 2 CPUs per task): two arrays after the calibration job.
        assert_eq!(dep.as_deref(), Some("afterany:100:101:102"));
        let order: Vec<String> = slurm
            .submitted
            .iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            order,
            [
                "calibrate.sbatch",
                "array-1.sbatch",
                "array-2.sbatch",
                "collect.sbatch"
            ]
        );
    }

    /// `sbatch --resume` of a run made with `--calibrate`: while the calibration job has not
    /// ended it is left alone; once sacct says it ended without leaving `machine-profile.json`,
    /// the new round has a calibration job again (its script for the run's profile), submitted
    /// first and waited for by the collect job; once the profile is there, no more.
    #[test]
    fn resume_resubmits_a_calibration_whose_profile_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let manifest = dir.path().join("m.toml");
        std::fs::write(
            &manifest,
            "name = \"x\"\n\n[[study]]\nworkload = \"gemm\"\nsize = [64]\nthreads = [1]\n\n[slurm]\npartition = \"batch\"\n",
        )
        .unwrap();
        let run_dir = dir.path().join("run");
        let run = RunDir::new(&run_dir);
        let opts = SbatchOptions {
            dry_run: false,
            submit: false,
            pack: false,
            program: Some(PathBuf::from("/opt/bin/scalelab")),
            calibrate: true,
        };
        let mut slurm = FakeSlurm::default();
        sbatch_new(
            &manifest,
            Some(run_dir.clone()),
            dir.path(),
            &opts,
            &mut slurm,
        )
        .unwrap();
        // Written but not submitted: asked for, nothing in flight.
        assert_eq!(
            calibration_state(&run, &Jobs::default(), &[]),
            Calibration::Missing
        );
        // Submit round 1 as `--submit` would: calibration job 100, array 101, collect 102.
        let settings = Settings::default();
        let ctx = ScriptContext {
            experiment: "x",
            run_dir: &run_dir,
            program: Path::new("/opt/bin/scalelab"),
            settings: &settings,
            round: 1,
        };
        let plan = run.load_plan().unwrap();
        let points: Vec<&Point> = plan.points.iter().collect();
        let mut round =
            submit::prepare_round(&ctx, &points, &BTreeMap::new(), 1000, false).unwrap();
        round.calibrate = Some((
            ctx.round_dir().join("calibrate.sbatch"),
            script::render_calibrate(&ctx, 1),
        ));
        round.submit(&run, &mut slurm).unwrap();
        let jobs = Jobs::load(&run).unwrap();
        let row = |state: &str| sacct::parse(&format!("100|{state}|0:0|00:00:30|||00:05:00|n1\n"));
        assert_eq!(
            calibration_state(&run, &jobs, &[]),
            Calibration::Running("100".into()),
            "not in sacct yet: in flight"
        );
        assert_eq!(
            calibration_state(&run, &jobs, &row("RUNNING")),
            Calibration::Running("100".into())
        );
        assert_eq!(
            calibration_state(&run, &jobs, &row("FAILED")),
            Calibration::Missing
        );

        // The resume while it runs writes no calibration script in round 2.
        slurm.accounting =
            "100|RUNNING|0:0|00:00:30|||00:05:00|n1\n101_0|FAILED|1:0|00:00:01|||00:05:00|n1\n"
                .into();
        sbatch_resume(&run_dir, &opts, &mut slurm).unwrap();
        assert!(!run_dir.join("slurm/round-2/calibrate.sbatch").exists());
        // Ended without a profile: round 2 calibrates again, for the run's profile.
        slurm.accounting =
            "100|TIMEOUT|0:0|00:05:00|||00:05:00|n1\n101_0|FAILED|1:0|00:00:01|||00:05:00|n1\n"
                .into();
        sbatch_resume(&run_dir, &opts, &mut slurm).unwrap();
        let again =
            std::fs::read_to_string(run_dir.join("slurm/round-2/calibrate.sbatch")).unwrap();
        assert!(
            again.ends_with(&format!(
                "exec /opt/bin/scalelab calibrate --out {}\n",
                run_dir.join("machine-profile.json").display()
            )),
            "{again}"
        );
        // With the profile in the run, nothing more to calibrate.
        std::fs::write(run_dir.join("machine-profile.json"), b"{}").unwrap();
        assert_eq!(
            calibration_state(&run, &jobs, &row("TIMEOUT")),
            Calibration::Done
        );
        // A run made without --calibrate never gets one.
        let plain = tempfile::tempdir().unwrap();
        assert_eq!(
            calibration_state(&RunDir::new(plain.path()), &Jobs::default(), &[]),
            Calibration::NotAsked
        );
    }

    #[test]
    fn the_partitions_memory_judges_the_points_not_the_login_nodes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        // 3 arrays of 64 GiB: more than any machine these tests run on, less than the partition's.
        std::fs::write(
            &path,
            "name = \"x\"\n\n[[study]]\nworkload = \"stream.triad\"\nsize = \"64GiB\"\n\n[slurm]\npartition = \"batch\"\n",
        )
        .unwrap();
        load_for_cluster(&path, Some(&partition(512_000)), None).unwrap();
        // Unknown memory is not checked (and said so), rather than judged by this machine's.
        load_for_cluster(&path, None, None).unwrap();
        assert_eq!(
            unchecked_node(None).unwrap(),
            "sinfo did not answer: points were not checked against the partition's CPUs and memory per node (this login node's say nothing about them)"
        );
        load_for_cluster(&path, Some(&partition(0)), None).unwrap();
        assert_eq!(
            unchecked_node(Some(&partition(0))).unwrap(),
            "sinfo reports no memory for partition \"batch\": the points' memory estimates were not checked"
        );
        assert_eq!(unchecked_node(Some(&partition(1000))), None);
        // A partition with smaller nodes refuses the point at sbatch time.
        let err = load_for_cluster(&path, Some(&partition(16_000)), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "stream.triad needs 192.00 GiB of memory but a node has 15.62 GiB (at most 90% of it may be planned)"
            ),
            "{err}"
        );
    }
}

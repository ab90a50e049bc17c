//! The SLURM subcommands: `sbatch` (new run or `--resume`), `status` and `collect`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};

use super::sacct;
use super::script::ScriptContext;
use super::shape::{self, Override, Shape};
use super::status::{self, Decision, PointState};
use super::submit::{self, Jobs, RoundPlan, Slurm};
use super::Settings;
use crate::exit::BadInput;
use crate::machine::Machine;
use crate::manifest::Manifest;
use crate::plan::{self, Plan, Point};
use crate::provenance::Provenance;
use crate::results::{write_atomic, RunDir};

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
}

/// The cost line `scalelab plan` adds for a manifest with a `[slurm]` table.
pub fn plan_cost(m: &Manifest, plan: &Plan) -> Result<String> {
    let settings = Settings::from_table(m.slurm.as_ref())?;
    let points: Vec<&Point> = plan.points.iter().collect();
    let groups = shape::group(&points, &settings, &BTreeMap::new());
    let max = settings.max_array.unwrap_or(submit::DEFAULT_MAX_ARRAY_SIZE);
    let jobs = shape::split_arrays(&groups, max, settings.throttle);
    let cost = shape::Cost::of(&jobs, super::script::COLLECT_TIME_S);
    Ok(format!(
        "on SLURM (`scalelab sbatch`): {} shape{}, {}\n",
        groups.len(),
        if groups.len() == 1 { "" } else { "s" },
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
    let m = load_for_cluster(manifest)?;
    let settings = Settings::from_table(m.slurm.as_ref())?;
    submit::require_partition(manifest, &settings).map_err(BadInput::wrap)?;
    if opts.submit {
        // Fail before anything is written.
        require_command("sbatch")?;
    }
    let partition = find_partition(slurm, manifest, &settings)?;
    // Oversubscription is judged against the compute nodes, not this login node; without sinfo,
    // the partition's limits cannot be known and no point is marked.
    let cores = partition
        .as_ref()
        .map(|p| p.cpus_per_node as usize)
        .unwrap_or(CLUSTER_CORES);
    let plan = plan::expand_with_cores(&m, cores)?;
    let run = match run_dir {
        Some(d) => {
            let run = RunDir::new(d);
            refuse_existing(&run, &m)?;
            run
        }
        None => RunDir::new(next_run_path(results, &m.name)),
    };
    let root = absolute(&run.root)?;
    let run = RunDir::new(root);
    let program = program(opts)?;
    let max_array = settings
        .max_array
        .or_else(|| slurm.max_array_size())
        .unwrap_or(submit::DEFAULT_MAX_ARRAY_SIZE);
    let ctx = ScriptContext {
        experiment: &m.name,
        run_dir: &run.root,
        program: &program,
        settings: &settings,
        round: 1,
    };
    let points: Vec<&Point> = plan.points.iter().collect();
    let round = submit::prepare_round(&ctx, &points, &BTreeMap::new(), max_array, opts.pack)?;
    if let Some(p) = &partition {
        check_round(manifest, p, &round)?;
    }
    if opts.dry_run {
        print_dry_run(&round)?;
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&run.root)
        .with_context(|| format!("creating {}", run.root.display()))?;
    write_atomic(&run.manifest(), m.source.as_bytes())?;
    Provenance::start(
        Machine::detect_quick(),
        &m.name,
        &manifest.display().to_string(),
        &m.sha256,
        "slurm",
        plan.points.len(),
    )
    .write(&run)?;
    write_atomic(&run.plan(), &serde_json::to_vec_pretty(&plan)?)?;
    round.write()?;
    finish(&run, &round, opts, slurm)
}

/// `scalelab sbatch --resume <run-dir>`: resubmit the missing and failed points under the retry
/// policy, in a new round.
pub fn sbatch_resume(dir: &Path, opts: &SbatchOptions, slurm: &mut dyn Slurm) -> Result<ExitCode> {
    let run = RunDir::new(absolute(dir)?);
    let plan = run.load_plan()?;
    let m = load_for_cluster(&run.manifest())?;
    let settings = Settings::from_table(m.slurm.as_ref())?;
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
    let mut resubmit: Vec<&Point> = Vec::new();
    let (mut waiting, mut left) = (0, Vec::new());
    let mut lines = Vec::new();
    for st in &statuses {
        let current = overrides.get(&st.point.id).copied();
        let shape = Shape::of(st.point, &settings, current.as_ref());
        match status::decide(st, &shape, current.as_ref(), &settings.retry) {
            None => {}
            Some(Decision::Wait) => waiting += 1,
            Some(Decision::Leave(why)) => {
                left.push(format!("  {}  {}: {why}", st.point.id, st.state.label()))
            }
            Some(Decision::Resubmit(new)) => {
                lines.push(format!(
                    "  {}  {}: {}",
                    st.point.id,
                    st.state.label(),
                    status::describe_change(&shape, &new)
                ));
                if new != Override::default() {
                    overrides.insert(st.point.id.clone(), new);
                }
                resubmit.push(st.point);
            }
        }
    }
    if waiting > 0 {
        crate::outln!(
            "{waiting} point{} still pending or running: left alone",
            plural(waiting)
        )?;
    }
    if !left.is_empty() {
        crate::outln!("not resubmitted ({}):", left.len())?;
        for l in &left {
            crate::outln!("{l}")?;
        }
    }
    if resubmit.is_empty() {
        crate::outln!("nothing to resubmit in {}", run.root.display())?;
        return Ok(if left.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    crate::outln!(
        "resubmitting {} point{}:",
        resubmit.len(),
        plural(resubmit.len())
    )?;
    for l in &lines {
        crate::outln!("{l}")?;
    }
    let program = program(opts)?;
    let max_array = settings
        .max_array
        .or_else(|| slurm.max_array_size())
        .unwrap_or(submit::DEFAULT_MAX_ARRAY_SIZE);
    let ctx = ScriptContext {
        experiment: &m.name,
        run_dir: &run.root,
        program: &program,
        settings: &settings,
        round: jobs.next_round(),
    };
    let round = submit::prepare_round(&ctx, &resubmit, &overrides, max_array, opts.pack)?;
    if let Some(p) = find_partition(slurm, &run.manifest(), &settings)? {
        check_round(&run.manifest(), &p, &round)?;
    }
    if opts.dry_run {
        print_dry_run(&round)?;
        return Ok(ExitCode::SUCCESS);
    }
    // This round is one more invocation on the run: provenance.json lists it.
    Provenance::resume(&run, &plan, "slurm")?;
    // Keep the failed records as evidence, out of the way of the new ones.
    for p in &resubmit {
        let rec = run.record(&p.id);
        if rec.exists() {
            let kept = run.points_dir().join("failed").join(format!(
                "{}.round-{}.json",
                p.id,
                ctx.round - 1
            ));
            std::fs::create_dir_all(kept.parent().expect("has a parent"))?;
            std::fs::rename(&rec, &kept)
                .with_context(|| format!("moving {} to {}", rec.display(), kept.display()))?;
        }
    }
    write_atomic(
        &submit::overrides_path(&run),
        &serde_json::to_vec_pretty(&overrides)?,
    )?;
    round.write()?;
    finish(&run, &round, opts, slurm)
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
    crate::outln!(
        "round {}: {} script{} in {}",
        round.round,
        round.scripts.len() + 1,
        plural(round.scripts.len() + 1),
        dir.display()
    )?;
    crate::outln!("{}", round.cost.describe(round.packed))?;
    if opts.submit {
        let submitted = round.submit(run, slurm)?;
        crate::outln!(
            "submitted: job{} {} and the collect job {}",
            plural(submitted.jobs.len()),
            submitted
                .jobs
                .iter()
                .map(|j| j.job_id.as_str())
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
            "not submitted; submit with `scalelab sbatch --resume {} --submit`",
            run.root.display()
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
    for s in &round.scripts {
        crate::outln!("==> {} <==\n{}", s.path.display(), s.text)?;
    }
    crate::outln!(
        "==> {} <==\n{}",
        round.collect_path.display(),
        round.collect
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
/// `summary.csv`. Exits with 1 when a record could not be read.
pub fn collect(dir: &Path) -> Result<ExitCode> {
    let run = RunDir::new(dir);
    let plan = run.load_plan()?;
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

/// Cores per node assumed while checking a manifest for a cluster: none of the login node's limits
/// apply; the partition's are checked against each shape once `sinfo` has told them.
const CLUSTER_CORES: usize = 1 << 20;

/// Load a manifest to run on the cluster: the checks of this build, but not the core count of the
/// machine `scalelab sbatch` runs on (a login node is no compute node).
fn load_for_cluster(path: &Path) -> Result<Manifest> {
    let ctx = crate::manifest::Context {
        cores: CLUSTER_CORES,
        ..crate::manifest::Context::this_build()
    };
    Ok(crate::manifest::load_with(path, &ctx)?)
}

fn refuse_existing(run: &RunDir, m: &Manifest) -> Result<()> {
    if !run.plan().exists() {
        return Ok(());
    }
    let plan = run.load_plan()?;
    if plan.manifest_sha256 != m.sha256 {
        crate::bad_input!(
            "{} belongs to another manifest (experiment `{}`, manifest sha256 {}…, not {}'s {}…): choose another --run-dir, or resubmit that run with `scalelab sbatch --resume {}`",
            run.root.display(),
            plan.experiment,
            &plan.manifest_sha256[..12.min(plan.manifest_sha256.len())],
            m.path.display(),
            &m.sha256[..12],
            run.root.display()
        );
    }
    crate::bad_input!(
        "{} already holds this run; resubmit its missing or failed points with `scalelab sbatch --resume {} --submit`",
        run.root.display(),
        run.root.display()
    )
}

/// `results/<experiment>/<yyyymmdd-hhmmss>[-N]`, not yet existing (not created).
fn next_run_path(results: &Path, experiment: &str) -> PathBuf {
    let stamp = jiff::Zoned::now().strftime("%Y%m%d-%H%M%S").to_string();
    let base = results.join(experiment);
    (0..)
        .map(|n| {
            if n == 0 {
                base.join(&stamp)
            } else {
                base.join(format!("{stamp}-{n}"))
            }
        })
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

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

//! The command line: one subcommand per step of a point's life (see `docs/ARCHITECTURE.md`).
//!
//! Every subcommand returns an exit code through [`main`]: 0 when all went well, 1 when a run
//! finished but some point failed, 2 for bad input (a manifest error, a missing or unknown run
//! directory, a bad argument: errors wrapped in [`BadInput`](crate::exit::BadInput)), 3 for I/O
//! and internal failures (an unwritable folder, a full disk, a bug), 128 + n when `run` was
//! stopped by signal n (see [`crate::exit`]). Errors are printed once, without a backtrace, by
//! `main.rs`. Output goes through [`crate::output`]: a closed or full terminal ends `plan` or
//! `list` with one line, and never stops `run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::executor::{self, Executor, Interrupt, LocalExecutor, MockExecutor};
use crate::exit;
use crate::files::write_atomic;
use crate::machine::Machine;
use crate::plan::{self, Plan, Rates};
use crate::provenance::{self, Provenance};
use crate::results::{RunDir, RunLock};
use crate::slurm;
use crate::units::plural;
use crate::workload::{self, ParamKind};

/// The exit codes, shown by `--help` (the table is in `crate::exit` and docs/results.md).
const EXIT_CODES: &str = "Exit codes: 0 all good; 1 some point failed; 2 bad input (a manifest error, a missing or \
unknown run directory, a bad argument); 3 an I/O or internal failure (an unwritable folder, a full disk, a bug); \
128+n stopped by signal n (`run`: 130 Ctrl-C, 143 SIGTERM, 129 SIGHUP; resume with `scalelab run --resume <run-dir>`).";

/// Measure how parallel code scales: expand an experiment manifest into points, run them, and
/// report speedup, efficiency, Karp–Flatt, Amdahl fits, GFLOP/s and GB/s with plots.
#[derive(Parser, Debug)]
#[command(name = "scalelab", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// The doc comments below are clap's `--help` text, where `<run-dir>` names an argument the usual
// way; as rustdoc HTML those read as unclosed tags, which they are not meant to be.
#[allow(rustdoc::invalid_html_tags)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// List the workloads, their parameters (the axes a manifest can sweep) and the resource axes.
    List,
    /// Describe this machine: cores, caches, SIMD width, measured clock and theoretical peak FLOP/s.
    ///
    /// The clock and FMA throughput are measured once per machine and cached (in
    /// $SCALELAB_MACHINE_CACHE, else $XDG_CACHE_HOME/scalelab, else ~/.cache/scalelab); the last
    /// line says when and where.
    Info {
        /// Measure the clock and FMA throughput again and replace the cached figure.
        #[arg(long)]
        remeasure: bool,
    },
    /// Measure this machine's attainable peaks and write its profile (JSON).
    ///
    /// STREAM triad and DGEMM (tuned and faer) at 1, 2, 4, … N cores, a cache sweep giving L1,
    /// L2, L3 and DRAM bandwidth, and, in an MPI build, 2-rank ping-pong. About 10 s on 2 cores.
    /// `run` copies the profile into each new run, and reports show "% measured" beside "% peak".
    /// The schema is in docs/benchmarking.md.
    Calibrate {
        /// Write the profile here instead of the default
        /// ($SCALELAB_PROFILE, else $XDG_CACHE_HOME/scalelab/profile-<host-cpu-cores>.json, else
        /// ~/.cache/scalelab/…).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Small sizes, few repetitions: a few seconds, rough figures (the profile says so).
        #[arg(long)]
        quick: bool,
        /// Measure only the STREAM triad at each core count (calibrate's sizes and passes) and
        /// write it to --out (required): not a machine profile; for comparing the `stream.triad`
        /// workload with calibrate's triad (scripts/compare-calibrate.sh --triad).
        #[arg(long, requires = "out")]
        triad_only: bool,
        /// Internal: run as one of the two ping-pong ranks under mpirun and write the result here.
        #[arg(long, value_name = "FILE", hide = true)]
        mpi_pingpong: Option<PathBuf>,
    },
    /// Check a manifest and show its points, grouped by study, with a count and a run-time estimate.
    ///
    /// Nothing is run. Every mistake in the manifest is reported with its file, line, key and fix.
    Plan {
        /// The experiment manifest, e.g. experiments/quickstart.toml.
        manifest: PathBuf,
    },
    /// Run an experiment here, one point at a time, and write its results and report.
    ///
    /// Each point runs as its own process (`scalelab point`) with the study's time limit; a point
    /// that fails is recorded with its reason and the sweep goes on. Results land in
    /// results/<experiment>/<run-id>/ as they arrive; an interrupted run is finished with
    /// `scalelab run --resume <run-dir>`, which skips every point already recorded.
    /// Ctrl-C, SIGTERM or SIGHUP stop it cleanly: the point in flight is not recorded (a resume
    /// measures it), and it exits with 130, 143 or 129. Exits with 1 if any point failed.
    Run {
        /// The experiment manifest (not needed with --resume).
        #[arg(required_unless_present = "resume")]
        manifest: Option<PathBuf>,
        /// Finish an interrupted run: run only the points of <RUN_DIR> that have no record yet.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["manifest", "run_dir"])]
        resume: Option<PathBuf>,
        /// Folder under which results/<experiment>/<run-id>/ is made.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Put the run exactly in this folder instead: a new or empty one (any other is refused).
        #[arg(long, value_name = "PATH")]
        run_dir: Option<PathBuf>,
        /// Do not run kernels: time points with the model t(p) = A + B/p (seconds), for trying
        /// manifests and reports. The run goes to results/mock/<experiment>/<run-id>/ and its
        /// report and plots are marked "MOCK DATA". Example: --mock 0.1,0.9
        #[arg(long, value_name = "A,B")]
        mock: Option<String>,
        /// Print only the final summary, no progress bar or per-point lines.
        #[arg(long, short)]
        quiet: bool,
        /// Before each point, wait until other work leaves the cores the point needs free (the
        /// rule of docs/benchmarking.md), at most SECONDS (default 120); then run it anyway, and
        /// the report marks it if it was disturbed. For shared laptops and nodes.
        #[arg(
            long,
            value_name = "SECONDS",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = "120",
            conflicts_with = "mock"
        )]
        wait_idle: Option<u64>,
    },
    /// Re-render the report of a run (measurements.csv, summary.csv, report.md, plots).
    Report {
        /// A run directory, e.g. results/quickstart/20261128-210000.
        run_dir: PathBuf,
        /// What the whiskers of the plots span: the interquartile range of the repetitions
        /// (iqr, the default) or the fastest to the slowest repetition (minmax).
        #[arg(long, value_name = "SPREAD", default_value = "iqr", value_parser = ["iqr", "minmax"])]
        spread: String,
    },
    /// Compare runs made on different machines: the same studies overlaid on one set of plots,
    /// each run labelled by its machine, and a table of ratios against the first run.
    ///
    /// Points are matched by study name, workload, parameters and resources; a study or point
    /// that cannot be matched is listed with the reason under "Not compared". Writes
    /// compare.md and plots/ into --out. Exits with 1 when no study could be compared or a point
    /// record could not be read.
    Compare {
        /// Two or more run directories; the first is the reference of every ratio.
        #[arg(required = true, num_args = 2.., value_name = "RUN_DIR")]
        runs: Vec<PathBuf>,
        /// Write compare.md and plots/ here (default: results/compare-<yyyymmdd-hhmmss>).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// What the whiskers of the plots span: iqr (the default) or minmax.
        #[arg(long, value_name = "SPREAD", default_value = "iqr", value_parser = ["iqr", "minmax"])]
        spread: String,
    },
    /// Run one point of a run and write its record (what executors launch; rarely typed by hand).
    Point {
        /// The run directory holding plan.json.
        run_dir: PathBuf,
        /// The point's id, as `scalelab plan` shows it (read from plan.json, which is parsed whole).
        #[arg(required_unless_present_any = ["task_file", "spec"])]
        point_id: Option<String>,
        /// Read the point from this one-point spec file (JSON) instead of plan.json, so that
        /// starting a point costs the same however large the plan; `scalelab run` writes it to
        /// <run-dir>/specs/<id>.json just before it launches the point.
        #[arg(long, value_name = "FILE", conflicts_with_all = ["point_id", "task_file"])]
        spec: Option<PathBuf>,
        /// Read the point from line --task-index of this task file (written by `scalelab sbatch`)
        /// instead of plan.json.
        #[arg(
            long,
            value_name = "FILE",
            requires = "task_index",
            conflicts_with = "point_id"
        )]
        task_file: Option<PathBuf>,
        /// 0-based line of --task-file (a SLURM array task passes $SLURM_ARRAY_TASK_ID).
        #[arg(long, value_name = "N", requires = "task_file")]
        task_index: Option<usize>,
    },
    /// Run an experiment on a SLURM cluster as job arrays, one array per resource shape.
    ///
    /// Plans the sweep, groups points by shape (nodes, tasks, CPUs per task, GPUs, memory, time
    /// limit), and writes one sbatch script per shape into <run-dir>/slurm/round-1/ (arrays split at
    /// the cluster's MaxArraySize, throttled by [slurm] throttle), plus a collect job that depends
    /// on them all and writes the report. Shows the jobs and core-hours requested. With --submit
    /// it submits them and records the job ids; with --resume it resubmits only the missing and
    /// failed points of a run, under the manifest's [slurm.retry] policy.
    Sbatch {
        /// The experiment manifest (not needed with --resume).
        #[arg(required_unless_present = "resume")]
        manifest: Option<PathBuf>,
        /// Resubmit the missing and failed points of <RUN_DIR> in a new round.
        #[arg(long, value_name = "RUN_DIR", conflicts_with_all = ["manifest", "run_dir"])]
        resume: Option<PathBuf>,
        /// Print the scripts, the job count and the core-hours; write and submit nothing.
        #[arg(long, conflicts_with = "submit")]
        dry_run: bool,
        /// Submit the scripts with sbatch and record the job ids in <run-dir>/slurm/jobs.json.
        #[arg(long)]
        submit: bool,
        /// One job per shape that runs its points one after another in a single allocation,
        /// instead of an array (for many small points).
        #[arg(long)]
        pack: bool,
        /// Folder under which results/<experiment>/<run-id>/ is made.
        #[arg(long, default_value = "results")]
        results: PathBuf,
        /// Put the run exactly in this folder instead: a new or empty one (any other is refused).
        #[arg(long, value_name = "PATH")]
        run_dir: Option<PathBuf>,
        /// The scalelab binary the jobs run (default: this one; it must be reachable from the
        /// compute nodes).
        #[arg(long, value_name = "PATH")]
        bin: Option<PathBuf>,
        /// Add a calibration job: `scalelab calibrate` on one whole (exclusive) node of the
        /// sweep's partition, writing <run-dir>/machine-profile.json for the report's
        /// "% measured" column (the collect job waits for it).
        #[arg(long, conflicts_with = "resume")]
        calibrate: bool,
    },
    /// Show where each point of a run stands: finished, pending, running or failed, with SLURM's
    /// failure class (OUT_OF_MEMORY, TIMEOUT, NODE_FAIL, FAILED, CANCELLED) and the evidence.
    ///
    /// Reads the point records, slurm/jobs.json and one batched sacct query. Exits with 1 when any
    /// point failed.
    Status {
        /// A run directory made by `scalelab sbatch` (or `scalelab run`).
        run_dir: PathBuf,
    },
    /// Merge the point records present now into measurements.csv and summary.csv.
    ///
    /// Idempotent, and safe while tasks are still writing (each record is written atomically).
    Collect {
        /// A run directory.
        run_dir: PathBuf,
    },
}

/// Parse the command line and run it: one function per subcommand.
pub fn main() -> Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::List => {
            crate::out!("{}", list_text())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Info { remeasure } => {
            crate::out!("{}", Machine::detect_cached(remeasure).describe())?;
            crate::out!("{}", workload::gpu_description())?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Calibrate {
            out,
            quick,
            triad_only,
            mpi_pingpong,
        } => {
            if let Some(file) = mpi_pingpong {
                crate::calibrate::mpi::ranks(&file, quick)?;
                return Ok(ExitCode::SUCCESS);
            }
            calibrate(out, quick, triad_only)
        }
        Command::Plan { manifest } => plan_command(&manifest),
        Command::Sbatch {
            manifest,
            resume,
            dry_run,
            submit,
            pack,
            results,
            run_dir,
            bin,
            calibrate,
        } => {
            let opts = slurm::commands::SbatchOptions {
                dry_run,
                submit,
                pack,
                program: bin,
                calibrate,
            };
            let mut cluster = slurm::CommandSlurm;
            match (resume, manifest) {
                (Some(dir), _) => slurm::commands::sbatch_resume(&dir, &opts, &mut cluster),
                (None, Some(m)) => {
                    slurm::commands::sbatch_new(&m, run_dir, &results, &opts, &mut cluster)
                }
                (None, None) => crate::bad_input!("give a manifest, or --resume <run-dir>"),
            }
        }
        Command::Status { run_dir } => slurm::commands::status(&run_dir, &mut slurm::CommandSlurm),
        Command::Collect { run_dir } => slurm::commands::collect(&run_dir),
        Command::Run {
            manifest,
            resume,
            results,
            run_dir,
            mock,
            quiet,
            wait_idle,
        } => {
            let opts = RunOptions {
                results,
                run_dir,
                quiet,
                wait_idle_given: wait_idle.is_some(),
            };
            run_command(
                manifest.as_deref(),
                resume.as_deref(),
                &opts,
                mock,
                wait_idle,
            )
        }
        Command::Report { run_dir, spread } => report_command(run_dir, &spread),
        Command::Compare { runs, out, spread } => compare(&runs, out, &spread),
        Command::Point {
            run_dir,
            point_id,
            spec,
            task_file,
            task_index,
        } => point_command(
            run_dir,
            spec.as_deref(),
            task_file.as_deref().zip(task_index),
            point_id.as_deref(),
        ),
    }
}

/// `scalelab plan`: the points with their estimate, and the SLURM cost when the manifest has a
/// `[slurm]` table.
fn plan_command(manifest: &Path) -> Result<ExitCode> {
    let m = crate::manifest::load(manifest)?;
    let plan = plan::expand(&m)?;
    crate::out!("{}", plan.describe(&rates(&Machine::detect_if_cached())))?;
    if m.slurm.is_some() {
        crate::out!("{}", slurm::commands::plan_cost(&m, &plan)?)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `scalelab run`: the executor (mock or local, stopped cleanly by a signal), then [`run`].
fn run_command(
    manifest: Option<&Path>,
    resume: Option<&Path>,
    opts: &RunOptions,
    mock: Option<String>,
    wait_idle: Option<u64>,
) -> Result<ExitCode> {
    // From here on SIGINT, SIGTERM and SIGHUP stop the sweep cleanly instead of killing it.
    let interrupt = Interrupt::install()?;
    let executor: Box<dyn Executor> = match mock {
        Some(spec) => Box::new(parse_mock(&spec)?),
        None => Box::new(
            LocalExecutor::current()?
                .interruptible(interrupt.clone())
                .waiting_for_idle(wait_idle.map(wait_idle_for)),
        ),
    };
    run(manifest, resume, opts, executor, &interrupt)
}

/// The `--spread` of `report` and `compare`.
fn spread_of(spread: &str) -> crate::report::Spread {
    if spread == "minmax" {
        crate::report::Spread::MinMax
    } else {
        crate::report::Spread::Iqr
    }
}

/// `scalelab report`: write the report again and list its files; 1 when a record was unreadable.
fn report_command(run_dir: PathBuf, spread: &str) -> Result<ExitCode> {
    let run = RunDir::new(run_dir);
    let plan = run.load_plan()?;
    // Refused at once while a run (or another report) writes this folder: a run writes its own
    // report when it ends.
    let _lock = run.lock()?;
    let (files, unreadable) = write_report(&run, &plan, spread_of(spread))?;
    for f in files {
        crate::outln!("{}", f.display())?;
    }
    // The report was written without the unreadable records: say so in the exit code.
    Ok(if unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `scalelab point`: run one point from a spec, a task line or plan.json; 1 when it failed.
fn point_command(
    run_dir: PathBuf,
    spec: Option<&Path>,
    task: Option<(&Path, usize)>,
    point_id: Option<&str>,
) -> Result<ExitCode> {
    use crate::point_runner::Source;
    let run = RunDir::new(run_dir);
    let source = match (spec, task, point_id) {
        (Some(spec), _, _) => Source::Spec(spec),
        (_, Some((file, index)), _) => Source::Task(file, index),
        (_, _, Some(id)) => Source::Plan(id),
        _ => crate::bad_input!("give a point id, --spec, or --task-file with --task-index"),
    };
    let rec = crate::point_runner::run(&run, source)?;
    if rec.status == crate::results::Status::Ok {
        return Ok(ExitCode::SUCCESS);
    }
    // Under mpirun every rank returns the same record; one line in the log is enough.
    let rank = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID"]
        .iter()
        .find_map(|v| std::env::var(v).ok());
    if rank.is_none_or(|r| r == "0") {
        crate::errln!(
            "point {}: {}: {}",
            rec.point.id,
            rec.status.as_str(),
            rec.reason
        );
    }
    Ok(ExitCode::from(1))
}

/// `scalelab compare`: read every run (all are checked before anything is written), write the
/// comparison, list its files and what was not compared.
fn compare(dirs: &[PathBuf], out: Option<PathBuf>, spread: &str) -> Result<ExitCode> {
    use crate::report::compare;
    let mut runs = dirs
        .iter()
        .map(|d| compare::load(d))
        .collect::<Result<Vec<_>>>()?;
    compare::label_runs(&mut runs);
    let out = out.unwrap_or_else(|| {
        PathBuf::from("results").join(format!("compare-{}", crate::units::stamp_now()))
    });
    let spread = spread_of(spread);
    let unreadable: usize = runs.iter().map(|r| r.unreadable.len()).sum();
    for (i, r) in runs.iter().enumerate() {
        for u in &r.unreadable {
            crate::errln!(
                "warning: run {}: {u}; the comparison leaves that point out",
                i + 1
            );
        }
    }
    let outcome = compare::write(&runs, &out, spread)?;
    for f in &outcome.files {
        crate::outln!("{}", f.display())?;
    }
    for line in &outcome.not_compared {
        crate::errln!("not compared: {line}");
    }
    if outcome.compared == 0 {
        crate::errln!(
            "error: no study could be compared: the runs share no study with a point measured on both sides (see {})",
            out.join("compare.md").display()
        );
    }
    Ok(if outcome.compared == 0 || unreadable > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `scalelab calibrate`: measure, write the profile, say where and how long it took.
fn calibrate(out: Option<PathBuf>, quick: bool, triad_only: bool) -> Result<ExitCode> {
    use crate::calibrate::{self, Settings};
    let settings = if quick {
        Settings::quick()
    } else {
        Settings::full(&Machine::detect_quick())
    };
    let load = calibrate::load_average();
    crate::errln!(
        "calibrating{} (load average {:.2}; other programs running now lower the figures)",
        if quick { " --quick" } else { "" },
        load[0]
    );
    if let (true, Some(path)) = (triad_only, &out) {
        let t = calibrate::calibrate_triad(&settings, |line| crate::errln!("  {line}"))?;
        write_atomic(path, &serde_json::to_vec_pretty(&t)?)?;
        crate::outln!(
            "{} (STREAM triad only; not a machine profile)",
            path.display()
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    // Progress lines are a courtesy: a closed terminal must not stop the measurement.
    let profile = calibrate::calibrate(&settings, |line| {
        crate::errln!("  {line}");
    })?;
    let path = out.unwrap_or_else(|| calibrate::profile::default_path(&profile.machine));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_atomic(&path, &serde_json::to_vec_pretty(&profile)?)?;
    crate::outln!(
        "{} ({:.1} s; load average {:.2} before, {:.2} after)",
        path.display(),
        profile.wall_s,
        profile.load_before[0],
        profile.load_after[0]
    )?;
    Ok(ExitCode::SUCCESS)
}

struct RunOptions {
    results: PathBuf,
    run_dir: Option<PathBuf>,
    quiet: bool,
    /// `--wait-idle` was given: it wins over the manifest's `wait_idle`.
    wait_idle_given: bool,
}

/// The wait before each point for a bound of `seconds` (`--wait-idle` or `wait_idle`).
fn wait_idle_for(seconds: u64) -> crate::load::WaitIdle {
    crate::load::WaitIdle {
        bound: std::time::Duration::from_secs(seconds),
        window: std::time::Duration::from_secs(1),
    }
}

/// The `wait_idle` of a run's own manifest copy (checked when the run began), for `--resume`.
fn run_wait_idle(run: &RunDir) -> Result<Option<u64>> {
    let path = run.manifest();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let doc: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("parsing {}", path.display()))?;
    match doc.get("wait_idle") {
        None => Ok(None),
        Some(item) => crate::manifest::wait_idle_seconds(item)
            .map_err(|m| anyhow::anyhow!("{}: {m}", path.display())),
    }
}

/// A run ready to sweep: its folder (locked until the run and its report are written), plan and
/// provenance.
struct OpenRun {
    run: RunDir,
    plan: Plan,
    prov: Provenance,
    _lock: RunLock,
    /// What a new run did with this machine's profile, shown after the opening line.
    profile_note: Option<String>,
}

/// `scalelab run` (new or `--resume`): open the run, sweep its missing points with a progress
/// bar, record the outcome in provenance.json, and write the report unless a signal stopped it.
fn run(
    manifest: Option<&Path>,
    resume: Option<&Path>,
    opts: &RunOptions,
    mut executor: Box<dyn Executor>,
    interrupt: &Interrupt,
) -> Result<ExitCode> {
    let OpenRun {
        run,
        plan,
        mut prov,
        _lock,
        profile_note,
    } = match resume {
        Some(dir) => resume_run(dir, opts, executor.as_mut())?,
        None => {
            let path = manifest.context("a manifest is needed unless --resume is given")?;
            new_run(path, opts, executor.as_mut())?
        }
    };
    let pending = announce(&run, &plan);
    if let Some(note) = profile_note {
        crate::errln!("{note}");
    }
    let outcome = sweep_with_progress(&run, &plan, executor.as_mut(), interrupt, pending, opts)?;
    let (records, _) = run.load_records(&plan);
    prov.points_ok = records
        .iter()
        .filter(|r| r.status == crate::results::Status::Ok)
        .count();
    prov.points_failed = records.len() - prov.points_ok;
    prov.finish(outcome.interrupted.as_ref().map(|i| i.signal));
    prov.write(&run)?;
    if let Some(stop) = &outcome.interrupted {
        say_interrupted(&run, &plan, &prov, records.len(), stop);
        return Ok(crate::exit::for_signal(stop.signal));
    }
    let report = write_report(&run, &plan, crate::report::Spread::default());
    say_summary(&plan, &prov, &records, outcome.skipped);
    report?;
    crate::live!(
        "report: {} (and {}, one page with the plots inside)",
        run.report().display(),
        run.root.join(crate::report::html::FILE).display()
    );
    Ok(if outcome.any_failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `run --resume <dir>`: the run's own plan, its manifest's `wait_idle` unless `--wait-idle` was
/// given, and one more invocation in its provenance.
fn resume_run(dir: &Path, opts: &RunOptions, executor: &mut dyn Executor) -> Result<OpenRun> {
    let run = RunDir::new(dir);
    let plan = run.load_plan()?;
    let lock = run.lock()?;
    if !opts.wait_idle_given {
        if let Some(s) = run_wait_idle(&run)? {
            executor.set_wait_idle(wait_idle_for(s));
        }
    }
    let prov = Provenance::resume(&run, &plan, executor.name())?;
    Ok(OpenRun {
        run,
        plan,
        prov,
        _lock: lock,
        profile_note: None,
    })
}

/// A new run of the manifest at `path`: checked and planned, its folder made (`--run-dir`, or a
/// fresh `results/[mock/]<experiment>/<run-id>`), its first files written by
/// [`provenance::start_run`] with this machine's profile copied in.
fn new_run(path: &Path, opts: &RunOptions, executor: &mut dyn Executor) -> Result<OpenRun> {
    let m = crate::manifest::load(path)?;
    let plan = plan::expand(&m)?;
    if let (false, Some(s)) = (opts.wait_idle_given, m.wait_idle_s) {
        executor.set_wait_idle(wait_idle_for(s));
    }
    let run = match &opts.run_dir {
        Some(d) => {
            let run = RunDir::new(d);
            // Refuse before anything (even the lock file) is written into a user's folder.
            run.check_fresh(&m, &finish_hint(&run))?;
            std::fs::create_dir_all(&run.root)
                .with_context(|| format!("creating {}", run.root.display()))?;
            run
        }
        // Mock runs go to their own folder, results/mock/<experiment>/, so that their model times
        // never sit beside measurements.
        None if executor.name() == "mock" => new_run_dir(&opts.results.join("mock"), &m.name)?,
        None => new_run_dir(&opts.results, &m.name)?,
    };
    let new = provenance::NewRun {
        manifest: &m,
        manifest_path: path,
        plan: &plan,
        executor: executor.name(),
        finish_hint: &finish_hint(&run),
    };
    let (lock, prov, note) = provenance::start_run(&run, &new, Machine::detect(), |machine| {
        crate::calibrate::adopt(&run, machine)
    })?;
    Ok(OpenRun {
        run,
        plan,
        prov,
        _lock: lock,
        profile_note: Some(note),
    })
}

/// Sweep the points of `run` still to measure (`pending` of them) behind a progress bar, with a
/// live line per point unless `--quiet`.
fn sweep_with_progress(
    run: &RunDir,
    plan: &Plan,
    executor: &mut dyn Executor,
    interrupt: &Interrupt,
    pending: usize,
    opts: &RunOptions,
) -> Result<executor::SweepOutcome> {
    let bar = if opts.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(pending as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} points  {elapsed_precise}  {msg}")
            .expect("valid template"),
    );
    let quiet = opts.quiet;
    // Live lines may be lost (`| head -1`, a closed terminal): the results are in the run
    // directory, so a failed write is dropped and the sweep goes on.
    let outcome = executor::sweep(
        run,
        plan,
        executor,
        interrupt,
        |point, _| bar.set_message(format!("{} {}", point.study_name, point.id)),
        |rec| {
            bar.inc(1);
            if !quiet {
                bar.suspend(|| crate::live!("{}", crate::report::live_line(rec)));
            }
        },
    )?;
    bar.finish_and_clear();
    Ok(outcome)
}

/// The line of a sweep stopped by a signal: what is recorded, what was lost, how to go on.
fn say_interrupted(
    run: &RunDir,
    plan: &Plan,
    prov: &Provenance,
    recorded: usize,
    stop: &executor::Interruption,
) {
    let total = plan.points.len();
    // Stop now, as asked: no report (drawing plots takes a while); the records are safe.
    crate::errln!(
        "interrupted by {}: {recorded} of {total} point{} recorded ({} ok, {} failed); {}resume with `scalelab run --resume {}` (the report is written when the run finishes, or now with `scalelab report {}`)",
        executor::signal_name(stop.signal),
        plural(total),
        prov.points_ok,
        prov.points_failed,
        match &stop.in_flight {
            Some(id) => format!("the point in flight ({id}) was not recorded; "),
            None => String::new(),
        },
        run.root.display(),
        run.root.display()
    );
}

/// The closing count of a finished sweep, with the points recorded before it and the ok points
/// that other work disturbed.
fn say_summary(
    plan: &Plan,
    prov: &Provenance,
    records: &[crate::results::PointRecord],
    skipped: usize,
) {
    let total = plan.points.len();
    let disturbed = records.iter().filter(|r| r.is_disturbed()).count();
    crate::live!(
        "{} point{}: {} ok, {} failed{}{}",
        total,
        plural(total),
        prov.points_ok,
        prov.points_failed,
        if skipped > 0 {
            format!(" ({skipped} recorded before this run)")
        } else {
            String::new()
        },
        if disturbed > 0 {
            format!("; {disturbed} ok point(s) disturbed by other work on the machine (see the report's first warning)")
        } else {
            String::new()
        }
    );
}

/// How to go on with the run already in `run` (for a refused `--run-dir`).
fn finish_hint(run: &RunDir) -> String {
    format!(
        "finish it with `scalelab run --resume {}`",
        run.root.display()
    )
}

/// Print the opening line of a sweep: how many points the run has and how many are measured now,
/// naming every record that exists but cannot be used (it is measured again, never counted as
/// recorded). Returns the number of points to measure.
fn announce(run: &RunDir, plan: &Plan) -> usize {
    let survey = run.survey(plan);
    let total = plan.points.len();
    let pending = survey.to_measure();
    let root = run.root.display();
    if pending > 0 {
        crate::errln!(
            "run {root}: {total} point{}, {pending} to measure (if interrupted, resume with `scalelab run --resume {root}`)",
            plural(total),
        );
    } else {
        crate::errln!("run {root}: all {total} points are recorded already");
    }
    if !survey.unreadable.is_empty() {
        let n = survey.unreadable.len();
        crate::errln!(
            "warning: {n} record{} unusable and will be measured again: {}",
            if n == 1 { " is" } else { "s are" },
            survey
                .unreadable
                .iter()
                .map(|(p, _)| format!("points/{}.json", p.id))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (_, problem) in &survey.unreadable {
            crate::errln!("warning: {problem}; measuring that point again");
        }
    }
    pending
}

/// Write the report of `run` from its readable records, with the machine from its provenance, or
/// the compute nodes' where SLURM tasks recorded them (see [`crate::machine::for_report`]).
/// Returns the files written and how many records could not be read (each named on stderr).
/// An error (a full disk while drawing plots, an unwritable folder) names the file and says that
/// the records are intact and how to write the report again.
fn write_report(
    run: &RunDir,
    plan: &Plan,
    spread: crate::report::Spread,
) -> Result<(Vec<PathBuf>, usize)> {
    let (records, unreadable) = run.load_records(plan);
    for problem in &unreadable {
        crate::errln!("warning: {problem}; the report leaves that point out");
    }
    let (machine, nodes_differ) =
        crate::machine::for_report(&run.root, Provenance::load(run).map(|p| p.machine).ok());
    if let Some(w) = nodes_differ {
        crate::errln!("warning: {w}");
    }
    let n = records.len();
    let files = crate::report::write_with(run, plan, &records, &machine, spread).map_err(|e| {
        anyhow::anyhow!(
            "{e:#}\nthe report of {} is incomplete; the {n} point record{} in {} {} kept: free some space or fix the folder's permissions, then write the report again with `scalelab report {}`",
            run.root.display(),
            plural(n),
            run.points_dir().display(),
            if n == 1 { "is" } else { "are" },
            run.root.display()
        )
    })?;
    Ok((files, unreadable.len()))
}

/// `results/<experiment>/<yyyymmdd-hhmmss>[-N]`, created (the first free of
/// [`provenance::run_dir_candidates`]).
fn new_run_dir(results: &Path, experiment: &str) -> Result<RunDir> {
    let base = results.join(experiment);
    for dir in provenance::run_dir_candidates(results, experiment).take(1000) {
        match std::fs::create_dir_all(&base).and_then(|_| std::fs::create_dir(&dir)) {
            Ok(()) => return Ok(RunDir::new(dir)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    bail!(
        "could not find a free run directory name under {}",
        base.display()
    )
}

fn parse_mock(spec: &str) -> Result<MockExecutor> {
    let parts: Vec<f64> = spec
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .filter(|x: &f64| x.is_finite())
        .collect();
    match parts.as_slice() {
        [a, b] if *a >= 0.0 && *b >= 0.0 && a + b > 0.0 => Ok(MockExecutor {
            serial_s: *a,
            parallel_s: *b,
            jitter: 0.01,
        }),
        _ => crate::bad_input!(
            "--mock takes two non-negative seconds A,B for t(p) = A + B/p, e.g. --mock 0.1,0.9"
        ),
    }
}

/// Rough rates for `scalelab plan`'s estimate: the theoretical peak per thread and a memory
/// bandwidth typical of one server core (about 20 GB/s) capped at 4 cores' worth.
fn rates(m: &Machine) -> Rates {
    Rates {
        gflops_per_thread: if m.peak_gflops_per_core > 0.0 {
            m.peak_gflops_per_core.round()
        } else {
            10.0
        },
        gbps_per_thread: 20.0,
        gbps_total: 80.0,
        launch_s: 0.05,
    }
}

/// The exit code for an error that ended a command ([`crate::exit`]): bad input (a
/// [`exit::BadInput`] or a [`crate::manifest::ManifestError`] anywhere in the chain) or an I/O or
/// internal failure, and 141 when the reader of stdout went away.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(lost) = err.downcast_ref::<crate::output::OutputLost>() {
        if lost.is_broken_pipe() {
            return exit::BROKEN_PIPE;
        }
    }
    let bad = err
        .chain()
        .any(|e| e.is::<exit::BadInput>() || e.is::<crate::manifest::ManifestError>());
    if bad {
        exit::BAD_INPUT
    } else {
        exit::INTERNAL
    }
}

/// The text of `scalelab list`.
pub fn list_text() -> String {
    let mut s = String::from("Workloads (use as `workload = \"NAME\"` in a [[study]]):\n");
    for w in workload::REGISTRY {
        s.push_str(&format!(
            "\n{}  [{}]\n    {}\n",
            w.name(),
            w.backend().as_str(),
            w.summary()
        ));
        for p in w.params() {
            let kind = match p.kind {
                ParamKind::Size => "size".to_string(),
                ParamKind::Int => "integer".to_string(),
                ParamKind::Float => "number".to_string(),
                ParamKind::Text => "text".to_string(),
                ParamKind::Choice(c) => c.join("|"),
            };
            s.push_str(&format!(
                "    {:<12} {:<34} default {:<8} {}\n",
                p.name, kind, p.default, p.doc
            ));
        }
        if w.params().iter().any(|p| p.name == "size") {
            s.push_str(&format!(
                "    size unit: {}; weak scaling grows {} as {}\n",
                w.size_unit(),
                w.weak_param(),
                w.weak_rule().as_str()
            ));
        }
    }
    s.push_str(
        "\nResource axes (any study):\n    threads      rayon worker threads per rank (default 1)\n    \
         ranks        MPI ranks in total (default 1; needs the `mpi` feature)\n    \
         nodes        nodes (default 1)\n    \
         ranks_per_node  MPI ranks per node; sets nodes = ceil(ranks / ranks_per_node)\n    \
         gpus         GPUs per rank (default 0; needs the `cuda` feature)\n",
    );
    s.push_str(
        "\nEstimators of the ML workloads (`estimator = \"NAME\"`; hyperparameters go in \
         [study.hyper], one value each, and [study.grid], a list each):\n",
    );
    for name in scalelab_ml::estimators::NAMES {
        if let Some(text) = scalelab_ml::estimators::describe(name) {
            s.push('\n');
            for line in text.lines() {
                s.push_str(&format!("    {line}\n"));
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_is_found_under_context_and_io_is_not() {
        let bad: anyhow::Result<()> = Err(exit::BadInput::wrap(anyhow::anyhow!("no plan.json")));
        let bad = bad.context("resuming").unwrap_err();
        assert_eq!(exit_code(&bad), exit::BAD_INPUT);
        assert_eq!(format!("{bad:#}"), "resuming: no plan.json");

        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let io = anyhow::Error::new(io).context("writing points/a.json");
        assert_eq!(exit_code(&io), exit::INTERNAL);

        let pipe = anyhow::Error::new(crate::output::OutputLost(
            std::io::ErrorKind::BrokenPipe.into(),
        ));
        assert_eq!(exit_code(&pipe), exit::BROKEN_PIPE);
        let full = anyhow::Error::new(crate::output::OutputLost(
            std::io::Error::from_raw_os_error(28),
        ));
        assert_eq!(exit_code(&full), exit::INTERNAL);
    }

    /// `run --resume` takes `wait_idle` from the run's own copy of the manifest; a run without
    /// it waits for nothing, and a copy that no longer parses is named.
    #[test]
    fn a_resume_reads_wait_idle_from_the_runs_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        std::fs::write(
            run.manifest(),
            "name = \"x\"\nwait_idle = \"1m\"\n[[study]]\nworkload = \"debug.sleep\"\n",
        )
        .unwrap();
        assert_eq!(run_wait_idle(&run).unwrap(), Some(60));
        std::fs::write(run.manifest(), "name = \"x\"\n").unwrap();
        assert_eq!(run_wait_idle(&run).unwrap(), None);
        std::fs::write(run.manifest(), "name = \"x\"\nwait_idle = \"soon\"\n").unwrap();
        assert_eq!(
            run_wait_idle(&run).unwrap_err().to_string(),
            format!(
                "{}: `wait_idle`: \"soon\" is not a duration",
                run.manifest().display()
            )
        );
    }
}

//! The report of a run: what `scalelab report <run-dir>` writes from the point records.
//!
//! [`write()`] turns the records into, inside the run directory:
//!
//! * `measurements.csv` (one row per repetition) and `summary.csv` (one row per point), see
//!   [`csv`] and `docs/results.md` for the columns;
//! * `plots/*.svg` and `plots/*.png`: speedup, efficiency and throughput per study, see [`plots`],
//!   and the run's roofline (`plots/roofline.*`, one per worker count), see [`roofline`]; with HPL
//!   points, the run against the TOP500 lists (`plots/top500.*`), see [`top500`];
//! * `report.md`: per study a table of points (median time ± 95 % CI, GFLOP/s, GB/s, % of peak,
//!   speedup, efficiency, Karp–Flatt), the Amdahl or Gustafson fit, the plots, and the failed
//!   points with their reasons; at the top, warnings that say what to do about noisy, oversubscribed,
//!   failed or missing points;
//! * `report.html`: report.md as one self-contained page, the plots inline as SVG and a machine
//!   card at the top, see [`html`].
//!
//! MPI studies get more (see [`messages`]): tables with `ranks` and `threads/rank` columns and an
//! "oversubscribed: more ranks × threads than cores" note; for message-size studies
//! (`mpi.pingpong`, the collectives) a latency/bandwidth table by message size and log–log plots
//! instead of speedups; for studies recording `comm_s` a "comm share" column and a compute vs
//! communication plot. Workload metrics become `metric_<name>` columns of both CSV files. ML
//! studies (points recording `fits`) get a table of fits per second and model quality ([`ml`]).
//!
//! The scaling math lives in [`scaling`], the statistics in [`crate::stats`]. [`live_line`] is the
//! one-line summary the CLI prints as each point finishes.
//!
//! Failed points never stop a report: they are rows with a status and a reason, listed under their
//! study, and left out of the scaling numbers.

pub mod compare;
pub mod csv;
pub mod html;
pub mod messages;
pub mod ml;
pub mod plots;
pub mod roofline;
pub mod scaling;
pub mod top500;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::calibrate::{Profile, RunProfile};
use crate::machine::Machine;
use crate::plan::{Plan, Scaling};
use crate::results::{write_atomic, PointRecord, RunDir, Status};
use crate::stats::{Outliers, Summary, HIGH_VARIANCE};
use crate::workload::{Backend, Work};

pub use self::plots::Spread;
use self::plots::{secs, secs_pm, Plot, PlotOptions};

/// The first line of the report of a mock run.
pub const MOCK_NOTE: &str = "> **MOCK DATA — not measured.** Every time in this report comes from the mock executor's model t(p) = A + B/p (`scalelab run --mock A,B`); no figure here describes this machine, and every plot carries a \"MOCK DATA\" badge.";
use self::scaling::{fixed_params, resources_label, size_label, Series};

/// Which rate describes a workload: GFLOP/s for compute-bound work, GB/s for memory-bound work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throughput {
    /// Billions of floating point operations per second.
    Gflops,
    /// Billions of bytes (decimal GB) moved per second.
    Gbps,
}

impl Throughput {
    /// GB/s when the workload moves bytes and does less than one FLOP per byte (STREAM, dot,
    /// stencils with low arithmetic intensity), GFLOP/s when it counts FLOPs otherwise, `None` when
    /// it counts neither (diagnostic workloads).
    pub fn for_work(work: &Work) -> Option<Throughput> {
        if work.bytes > 0.0 && (work.flops <= 0.0 || work.flops / work.bytes < 1.0) {
            Some(Throughput::Gbps)
        } else if work.flops > 0.0 {
            Some(Throughput::Gflops)
        } else {
            None
        }
    }

    /// "GFLOP/s" or "GB/s".
    pub fn unit(self) -> &'static str {
        match self {
            Throughput::Gflops => "GFLOP/s",
            Throughput::Gbps => "GB/s",
        }
    }

    /// The work count this rate divides: flops or bytes.
    pub fn work(self, work: &Work) -> f64 {
        match self {
            Throughput::Gflops => work.flops,
            Throughput::Gbps => work.bytes,
        }
    }

    /// The rate for one repetition of `seconds`, in [`Throughput::unit`].
    pub fn rate(self, work: &Work, seconds: f64) -> Option<f64> {
        csv::rate(self.work(work), seconds)
    }
}

/// The files one [`write()`] produced, in this order: `measurements.csv`, `summary.csv`,
/// `report.md`, `report.html`, then the SVG and PNG of every plot.
pub type ReportFiles = Vec<PathBuf>;

/// Write the whole report of a run (see the module documentation) and return the files written.
/// `records` are the run's point records (ok and failed), normally
/// [`RunDir::load_records`]; `machine` gives the peaks for "% of peak".
///
/// Every file is written atomically; a report can be re-created at any time from the records
/// with `scalelab report <run-dir>`. A plot that cannot be drawn costs only its study's pictures
/// (report.md says so) but is still an error, returned after report.md is written; the first
/// file that cannot be written otherwise ends it with an error naming that file.
pub fn write(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
    machine: &Machine,
) -> Result<ReportFiles> {
    write_with(run, plan, records, machine, Spread::default())
}

/// Whether the run's times came from the mock executor (`scalelab run --mock`), as its
/// provenance records; a run without a readable provenance is taken as measured.
pub fn is_mock(run: &RunDir) -> bool {
    crate::provenance::Provenance::load(run).is_ok_and(|p| p.executor == "mock")
}

/// [`write()`] with the plots' whiskers over `spread` (the interquartile range by default; the
/// fastest to the slowest repetition with `scalelab report --spread minmax`).
pub fn write_with(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
    machine: &Machine,
    spread: Spread,
) -> Result<ReportFiles> {
    let mock = is_mock(run);
    let opts = PlotOptions { spread, mock };
    let (measurements, summary) = write_tables(run, plan, records)?;
    let all_series = scaling::series(records);

    let mut plot_files = Vec::new();
    let mut study_plots: Vec<(usize, Vec<Plot>)> = Vec::new();
    let mut plot_errors = Vec::new();
    let mut plot_failures = Vec::new();
    for study in studies(plan, records) {
        let series: Vec<&Series<'_>> = all_series
            .iter()
            .filter(|s| s.study == study.index)
            .collect();
        // A plot that cannot be drawn costs its study the pictures, not the report.
        match plots::study_plots_with(
            &run.plots_dir(),
            study.index,
            &study.name,
            &series,
            machine,
            opts,
        ) {
            Ok(plots) => {
                plot_files.extend(plots.iter().flat_map(|p| p.files.iter().cloned()));
                study_plots.push((study.index, plots));
            }
            Err(e) => {
                plot_failures.push(format!(
                    "drawing the plots of study {} ({}): {e:#}",
                    study.index + 1,
                    study.name
                ));
                plot_errors.push(format!(
                "**Plots missing** for study {} ({}): {e:#}; the tables and CSV files are complete. Check free disk space and permissions of `{}`, then run `scalelab report {}`.",
                study.index + 1,
                study.name,
                run.plots_dir().display(),
                run.root.display()
            ))
            }
        }
    }

    // The roofline of the run: one plot per worker count, across studies.
    // With a calibrated profile in the run, its measured ceilings (caches, DRAM, DGEMM) join the
    // theoretical ones; without, the run's own best STREAM point is the one measured ceiling.
    // Not for a mock run: its GFLOP/s are model times, and a roofline would place them against
    // this machine's real ceilings.
    let run_profile = RunProfile::load(&run.root);
    let ceilings = |p: u64, pts: &[&roofline::RooflinePoint]| match run_profile.profile() {
        Some(profile) => roofline::profile_ceilings(profile, machine, p, pts),
        None => roofline::run_ceilings(machine, p, pts),
    };
    let drawn = if mock {
        Ok(roofline::Roofline::default())
    } else {
        roofline::write_with(&run.plots_dir(), records, machine, ceilings)
    };
    // A study's own roofline (DGEMM variants, several sizes) goes into its section, after its
    // scaling plots.
    let mut study_roofs: Vec<String> = Vec::new();
    let per_study = if mock {
        Ok(Vec::new())
    } else {
        roofline::write_studies(&run.plots_dir(), records, machine, ceilings)
    };
    match per_study {
        Ok(per_study) => {
            for (index, plots) in per_study {
                if let Some(p) = plots.first() {
                    let name = records
                        .iter()
                        .find(|r| r.point.study == index)
                        .map_or("", |r| r.point.study_name.as_str());
                    study_roofs.push(format!(
                        "[study {} ({name})](plots/{}.png)",
                        index + 1,
                        p.stem
                    ));
                }
                plot_files.extend(plots.iter().flat_map(|p| p.files.iter().cloned()));
                match study_plots.iter_mut().find(|(i, _)| *i == index) {
                    Some((_, list)) => list.extend(plots),
                    None => study_plots.push((index, plots)),
                }
            }
        }
        Err(e) => plot_failures.push(format!("drawing the studies' rooflines: {e:#}")),
    }
    let roofline_md = match drawn {
        Ok(_) if mock => "\n## Roofline\n\nNot drawn for a mock run: its GFLOP/s are model times, not measurements of this machine.\n".to_string(),
        Ok(roof) => {
            plot_files.extend(roof.plots.iter().flat_map(|p| p.files.iter().cloned()));
            roofline::markdown(&roof)
        }
        Err(e) => {
            plot_failures.push(format!("drawing the roofline: {e:#}"));
            plot_errors.push(format!(
                "**Roofline missing**: {e:#}; the tables and CSV files are complete. Check free disk space and permissions of `{}`, then run `scalelab report {}`.",
                run.plots_dir().display(),
                run.root.display()
            ));
            String::new()
        }
    };

    // The compute nodes SLURM tasks recorded: each point's "% peak" is of its own node.
    let nodes = crate::machine::run_nodes(&run.root);
    // HPL points: the run's best result against the TOP500 lists.
    // Not for a mock run: its GFLOP/s are model times, not this machine's.
    let top500 = if mock {
        Ok(None)
    } else {
        top500::write(&run.plots_dir(), records)
    };
    let top500_md = match top500 {
        Ok(Some((plot, md))) => {
            plot_files.extend(plot.files);
            md
        }
        Ok(None) => String::new(),
        Err(e) => {
            plot_failures.push(format!("drawing the TOP500 plot: {e:#}"));
            plot_errors.push(format!(
                "**TOP500 plot missing**: {e:#}; the tables and CSV files are complete. Check free disk space and permissions of `{}`, then run `scalelab report {}`.",
                run.plots_dir().display(),
                run.root.display()
            ));
            String::new()
        }
    };

    let mut text = markdown(
        run,
        plan,
        records,
        &all_series,
        &study_plots,
        &plot_errors,
        Machines {
            report: machine,
            nodes: &nodes,
        },
    );
    if mock {
        text = format!("{MOCK_NOTE}\n\n{text}");
    }
    text.push_str(&roofline_md);
    if !study_roofs.is_empty() {
        let _ = writeln!(
            text,
            "Studies with a roofline of their own, in their sections above: {}.\n",
            study_roofs.join(", ")
        );
    }
    text.push_str(&top500_md);
    let report = run.report();
    write_atomic(&report, text.as_bytes())?;
    // The same text as a page with the plots inside; a plot it cannot inline is marked there and
    // named here.
    let page = html::write(run, &text, machine);
    if let Err(e) = &page {
        plot_failures.push(format!("{e:#}"));
    }
    // The report says which plots are missing; the command must say it too (and fail), or a full
    // disk goes unnoticed.
    if !plot_failures.is_empty() {
        bail!("{}", plot_failures.join("\n"));
    }
    let mut files = vec![measurements, summary, report];
    files.extend(page.ok());
    files.extend(plot_files);
    Ok(files)
}

/// Write only `measurements.csv` and `summary.csv` from `records` (what `scalelab collect` does):
/// cheap, idempotent, and safe while points are still being written, since every record is
/// replaced atomically and the tables are rewritten whole. Returns the two paths.
pub fn write_tables(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
) -> Result<(PathBuf, PathBuf)> {
    let experiment = plan.experiment.as_str();
    let measurements = run.measurements();
    csv::write_measurements(&measurements, &csv::measurement_rows(experiment, records))?;
    let summary = run.summary();
    csv::write_summary(
        &summary,
        &csv::summary_rows(experiment, records, &scaling::series(records)),
    )?;
    Ok((measurements, summary))
}

/// A study as the report lists it.
struct Study {
    index: usize,
    name: String,
    workload: String,
    scaling: Scaling,
}

/// The studies of the plan and the records, in manifest order.
fn studies(plan: &Plan, records: &[PointRecord]) -> Vec<Study> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Study> = plan
        .points
        .iter()
        .chain(records.iter().map(|r| &r.point))
        .filter(|p| seen.insert(p.study))
        .map(|p| Study {
            index: p.study,
            name: p.study_name.clone(),
            workload: p.workload.clone(),
            scaling: p.scaling,
        })
        .collect();
    out.sort_by_key(|s| s.index);
    out
}

/// Escape text for a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A number with 3 significant digits (at least 1 decimal below 100).
fn sig(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn opt_sig(v: Option<f64>) -> String {
    v.map(sig).unwrap_or_else(|| "–".into())
}

fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The parameters of a point for tables and live lines: variant, other parameters, size.
fn params_text(rec: &PointRecord) -> String {
    let mut parts = fixed_params(rec);
    parts.extend(size_label(rec));
    parts.join(" ")
}

fn times(rec: &PointRecord) -> Vec<f64> {
    rec.repetitions.iter().map(|r| r.seconds).collect()
}

/// Theoretical peak of a point in GFLOP/s: peak per core × workers (CPU backends only).
fn peak_gflops(rec: &PointRecord, machine: &Machine) -> Option<f64> {
    (machine.peak_gflops_per_core > 0.0 && rec.counts_against_cpu_peaks())
        .then(|| machine.peak_gflops_per_core * rec.point.resources.workers() as f64)
}

/// A point's rate as a share of the measured peak at its core count: GFLOP/s of compute-bound
/// work against DGEMM, GB/s of bandwidth-bound work against STREAM triad ("–" without a
/// profile, for GPU points, for file I/O (its bytes go to a disk, not to memory), or at a core
/// count the profile has no figure for). Both sides are medians (the point's over its
/// repetitions, calibrate's over its passes): the best of 20 calibrate passes against a median of
/// 5 repetitions read 63% for the very same triad kernel.
fn measured_pct(
    rec: &PointRecord,
    gflops: Option<f64>,
    gbps: Option<f64>,
    profile: Option<&Profile>,
) -> String {
    let cores = rec.point.resources.workers() as usize;
    let share = match (profile, Throughput::for_work(&rec.work)) {
        (Some(p), Some(Throughput::Gflops)) if rec.counts_against_cpu_peaks() => gflops
            .zip(p.dgemm_gflops_median(cores))
            .map(|(g, pk)| g / pk),
        (Some(p), Some(Throughput::Gbps)) if rec.bytes_count_against_memory() => {
            gbps.zip(p.triad_gbps_median(cores)).map(|(g, pk)| g / pk)
        }
        _ => None,
    };
    match share {
        // The profile is a measurement too, taken at another size and moment: a point beyond it
        // says the profile is low (recalibrate on a quiet machine), not that the point beat a peak.
        Some(s) if s > 1.0 => format!("{} (above the profile)", pct(s)),
        Some(s) => pct(s),
        None => "–".into(),
    }
}

fn warnings(
    plan: &Plan,
    records: &[PointRecord],
    series: &[Series<'_>],
    machine: &Machine,
    run: &RunDir,
) -> Vec<String> {
    let mut w = Vec::new();
    let dir = run.root.display();
    if let Some(busy) = disturbed_warning(records, run) {
        w.push(busy);
    }
    let mut noisy = Vec::new();
    let mut outliers = 0;
    let mut few = 0;
    for rec in records.iter().filter(|r| r.status == Status::Ok) {
        let t = times(rec);
        if let Some(s) = Summary::of(&t) {
            if s.relative_stddev() > HIGH_VARIANCE {
                noisy.push(format!("`{}`", rec.point.id));
            }
            if s.n < 3 {
                few += 1;
            }
        }
        if Outliers::tukey(&t).total() > 0 {
            outliers += 1;
        }
    }
    if !noisy.is_empty() {
        let shown: Vec<_> = noisy.iter().take(8).cloned().collect();
        w.push(format!(
            "**High variance**: stddev > {:.0}% of the median on {} point(s) ({}{}); close other programs, pin threads, or raise `repetitions`.",
            HIGH_VARIANCE * 100.0,
            noisy.len(),
            shown.join(", "),
            if noisy.len() > shown.len() { ", …" } else { "" }
        ));
    }
    if outliers > 0 {
        w.push(format!(
            "**Outliers**: {outliers} point(s) have repetitions outside Tukey's 1.5 IQR fences; medians are robust to them, but check `measurements.csv` and raise `repetitions` if they recur."
        ));
    }
    if few > 0 {
        w.push(format!(
            "**Few repetitions**: {few} point(s) have fewer than 3 repetitions, so their confidence intervals are wide or undefined; set `repetitions = 5` or more."
        ));
    }
    let over = records.iter().filter(|r| r.point.oversubscribed).count();
    if over > 0 {
        let cores = if machine.cores > 0 {
            format!(" than the {} cores", machine.cores)
        } else {
            String::new()
        };
        let what = if records
            .iter()
            .any(|r| r.point.oversubscribed && r.point.resources.ranks > 1)
        {
            "workers (ranks × threads)"
        } else {
            "workers"
        };
        w.push(format!(
            "**Oversubscribed**: {over} point(s) ran more {what}{cores} (marked ⚠); their times measure time-sharing, not scaling. Leave them out of conclusions or run them on a bigger machine."
        ));
    }
    let failed = records.iter().filter(|r| r.status != Status::Ok).count();
    if failed > 0 {
        w.push(format!(
            "**Failed points**: {failed} point(s) did not succeed (see \"Failed points\" under each study; logs in `logs/<point-id>.txt`). Fix the cause, delete their records in `points/` and resume with `scalelab run --resume {dir}`."
        ));
    }
    let recorded: BTreeSet<&str> = records.iter().map(|r| r.point.id.as_str()).collect();
    let missing = plan
        .points
        .iter()
        .filter(|p| !recorded.contains(p.id.as_str()))
        .count();
    if missing > 0 {
        w.push(format!(
            "**Incomplete run**: {missing} planned point(s) have no record yet; finish them with `scalelab run --resume {dir}` and report again."
        ));
    }
    let superlinear: usize = series
        .iter()
        .filter(|s| s.scaling == Scaling::Strong)
        .map(|s| s.points.iter().filter(|p| p.efficiency > 1.1).count())
        .sum();
    if superlinear > 0 {
        w.push(format!(
            "**Superlinear speedup** on {superlinear} point(s) (efficiency above 110%): usually each worker's share of the data now fits in cache, or the base point was slowed down; check the base time and compare with a larger size."
        ));
    }
    w
}

/// The warning about points measured beside other work ([`crate::load`]): which, why, what the
/// report did with them, and how to measure them again on a quiet machine.
fn disturbed_warning(records: &[PointRecord], run: &RunDir) -> Option<String> {
    let busy: Vec<(&PointRecord, String)> = records
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| {
            crate::load::verdict(r)
                .filter(|v| v.disturbed)
                .map(|v| (r, v.why))
        })
        .collect();
    if busy.is_empty() {
        return None;
    }
    const SHOWN: usize = 8;
    let named: Vec<String> = busy
        .iter()
        .take(SHOWN)
        .map(|(r, why)| format!("`{}` ({why})", r.point.id))
        .collect();
    let more = if busy.len() > SHOWN {
        format!(
            ", and {} more (the `disturbed` column of summary.csv lists them all)",
            busy.len() - SHOWN
        )
    } else {
        String::new()
    };
    let dir = run.root.display();
    let rm: Vec<String> = busy
        .iter()
        .take(SHOWN)
        .map(|(r, _)| format!("{dir}/points/{}.json", r.point.id))
        .collect();
    Some(format!(
        "**Busy machine: {} point(s) were disturbed.** Other programs used the cores these points needed while they ran, so their times measure that other work as much as the code: {}{more}. They are marked ⚠ in the tables and hollow in the plots, left out of the Amdahl and Gustafson fits, and no speedup is based on them where an undisturbed point exists. To measure them again on a quiet machine, close other programs (`top` shows what runs), delete their records and resume, waiting for quiet before each point: `rm {}` then `scalelab run --resume {dir} --wait-idle`.",
        busy.len(),
        named.join(", "),
        rm.join(" ")
    ))
}

/// The machine a report quotes, and the compute nodes of the run (`<run>/machines/`).
#[derive(Clone, Copy)]
struct Machines<'a> {
    /// The report's machine (see [`crate::machine::for_report`]).
    report: &'a Machine,
    /// Every node SLURM tasks recorded, with its measured peak.
    nodes: &'a [Machine],
}

impl<'a> Machines<'a> {
    /// The machine `rec` ran on: its node's record where the run has one for its host, else
    /// the report's machine. A run over node types with different peaks thus gives each point
    /// the share of its own node's peak.
    fn of(&self, rec: &PointRecord) -> &'a Machine {
        self.nodes
            .iter()
            .find(|m| m.host == rec.host)
            .unwrap_or(self.report)
    }
}

fn markdown(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
    series: &[Series<'_>],
    plots: &[(usize, Vec<Plot>)],
    plot_errors: &[String],
    machines: Machines<'_>,
) -> String {
    let machine = machines.report;
    let mut md = String::new();
    let ok = records.iter().filter(|r| r.status == Status::Ok).count();
    let _ = writeln!(md, "# {}: scaling report\n", plan.experiment);
    let _ = writeln!(
        md,
        "Run `{}`: {} planned point(s), {} recorded ({} ok, {} failed).",
        run.root.display(),
        plan.points.len(),
        records.len(),
        ok,
        records.len() - ok
    );
    if !machine.host.is_empty() || !machine.cpu_model.is_empty() {
        let peak = if machine.peak_gflops_per_core > 0.0 {
            format!(
                ", theoretical peak {} GFLOP/s per core ({}, {} f64 lanes × {} FMA × 2 × {:.2} GHz; {})",
                sig(machine.peak_gflops_per_core),
                machine.simd,
                machine.simd_f64_lanes,
                machine.fma_units,
                machine.clock(),
                machine.peak_basis()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "Machine: {} ({}, {} logical CPUs{peak}).",
            machine.host, machine.cpu_model, machine.cores
        );
    }
    if let Some(load) = crate::load::describe_run(records) {
        let _ = writeln!(md, "{load}");
    }
    // Measured peaks come from the run's own copy of the machine profile (see crate::calibrate).
    let measured = RunProfile::load(&run.root);
    let _ = writeln!(md, "\n{}", measured.describe(&run.root));
    let _ = writeln!(
        md,
        "\nData: [measurements.csv](measurements.csv) (one row per repetition), [summary.csv](summary.csv) (one row per point); columns in `docs/results.md`. Times are medians over the repetitions; ± is the half-width of the 95% confidence interval of the mean (Student's t).\n"
    );

    let mut warns = warnings(plan, records, series, machine, run);
    warns.extend(plot_errors.iter().cloned());
    if !warns.is_empty() {
        let _ = writeln!(md, "## Warnings\n");
        for w in &warns {
            let _ = writeln!(md, "- {w}");
        }
        md.push('\n');
    }

    for study in studies(plan, records) {
        let _ = writeln!(
            md,
            "## Study {}: {} ({} scaling, `{}`)\n",
            study.index + 1,
            study.name,
            study.scaling.as_str(),
            study.workload
        );
        let st_series: Vec<&Series<'_>> =
            series.iter().filter(|s| s.study == study.index).collect();
        let st_records: Vec<&PointRecord> = records
            .iter()
            .filter(|r| r.point.study == study.index)
            .collect();
        let planned = plan
            .points
            .iter()
            .filter(|p| p.study == study.index)
            .count();

        if st_series.is_empty() {
            let _ = writeln!(md, "No successful points yet ({} planned).\n", planned);
        } else {
            study_table(&mut md, &st_series, machines, measured.profile());
            if ml::is_ml_study(&st_series) {
                ml::table(&mut md, &st_series);
            }
            if messages::is_message_study(&st_series) {
                message_table(&mut md, &st_series);
            } else {
                fits(&mut md, &st_series);
            }
        }
        if let Some((_, pl)) = plots.iter().find(|(i, _)| *i == study.index) {
            for p in pl {
                let _ = writeln!(md, "![{}](plots/{}.png)\n", p.title, p.stem);
                let _ = writeln!(md, "[{} (SVG)](plots/{}.svg)\n", p.title, p.stem);
            }
        }
        let failed: Vec<&&PointRecord> = st_records
            .iter()
            .filter(|r| r.status != Status::Ok)
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(md, "### Failed points\n");
            let _ = writeln!(
                md,
                "| point | resources | parameters | status | reason | log |"
            );
            let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- |");
            for r in failed {
                let _ = writeln!(
                    md,
                    "| `{}` | {} | {} | {} | {} | `logs/{}.txt` |",
                    r.point.id,
                    resources_label(&r.point.resources),
                    cell(&params_text(r)),
                    r.status.as_str(),
                    cell(if r.reason.is_empty() {
                        "(no reason recorded)"
                    } else {
                        &r.reason
                    }),
                    r.point.id
                );
            }
            md.push('\n');
        }
    }
    md
}

fn study_table(
    md: &mut String,
    series: &[&Series<'_>],
    machines: Machines<'_>,
    measured: Option<&Profile>,
) {
    let strong = series[0].scaling == Scaling::Strong;
    let points = || series.iter().flat_map(|s| s.points.iter());
    // MPI studies show ranks and threads per rank beside p, so hybrid splits with equal p
    // (2 ranks × 1 thread, 1 rank × 2 threads) read apart.
    let mpi = points()
        .any(|p| p.record.point.resources.ranks > 1 || p.record.backend == Some(Backend::Mpi));
    let comm = messages::has_comm(series);
    let mut head = vec!["point", "p"];
    let mut align = vec!["---", "---:"];
    if mpi {
        head.extend(["ranks", "threads/rank"]);
        align.extend(["---:", "---:"]);
    }
    head.extend([
        "resources",
        "parameters",
        "median ± 95% CI",
        "GFLOP/s",
        "GB/s",
        "% peak",
        "% measured",
    ]);
    align.extend(["---", "---", "---:", "---:", "---:", "---:", "---:"]);
    // Message-size studies: every size is its own series, usually at one rank count, so
    // speedups say nothing there; latency and bandwidth follow in their own table.
    let message = messages::is_message_study(series);
    if !message && strong {
        head.extend(["speedup", "efficiency", "Karp–Flatt"]);
        align.extend(["---:", "---:", "---:"]);
    } else if !message {
        head.extend(["scaled speedup", "efficiency"]);
        align.extend(["---:", "---:"]);
    }
    if comm {
        head.push("comm share");
        align.push("---:");
    }
    let loaded = points().any(|p| p.record.load.is_some());
    if loaded {
        head.push("machine");
        align.push("---");
    }
    let _ = writeln!(md, "| {} |", head.join(" | "));
    let _ = writeln!(md, "| {} |", align.join(" | "));
    for s in series {
        for (i, p) in s.points.iter().enumerate() {
            let r = p.record;
            let ci = if p.summary.n > 1 {
                secs_pm(p.summary.median, p.summary.ci95_half_width())
            } else {
                format!("{} (1 rep)", secs(p.summary.median))
            };
            let gflops = csv::rate(r.work.flops, p.summary.median);
            let gbps = csv::rate(r.work.bytes, p.summary.median);
            // % of the FLOP peak only means something for compute-bound work.
            let compute_bound = Throughput::for_work(&r.work) == Some(Throughput::Gflops);
            let peak = match (gflops, peak_gflops(r, machines.of(r))) {
                (Some(g), Some(pk)) if compute_bound => pct(g / pk),
                _ => "–".into(),
            };
            let of_measured = measured_pct(r, gflops, gbps, measured);
            let base = if i == s.base { " (base)" } else { "" };
            let warn = if r.point.oversubscribed { " ⚠" } else { "" };
            let mut cells = vec![format!("`{}`{warn}", r.point.id), p.workers.to_string()];
            if mpi {
                cells.push(r.point.resources.ranks.to_string());
                cells.push(r.point.resources.threads.to_string());
            }
            cells.extend([
                resources_label(&r.point.resources),
                cell(&params_text(r)),
                ci,
                opt_sig(gflops),
                opt_sig(gbps),
                peak,
                of_measured,
            ]);
            if !message {
                // Values outside their range are worded, not printed as 240% (see scaling).
                cells.push(format!(
                    "{}{base}",
                    scaling::speedup_text(p.speedup, p.workers)
                ));
                cells.push(scaling::efficiency_text(p.efficiency));
            }
            if strong && !message {
                let kf = p.karp_flatt.map(scaling::karp_flatt_text);
                cells.push(kf.unwrap_or_else(|| "–".into()));
            }
            if comm {
                cells.push(
                    messages::comm_share(r, p.summary.median)
                        .map(pct)
                        .unwrap_or_else(|| "–".into()),
                );
            }
            if loaded {
                cells.push(match crate::load::verdict(r) {
                    Some(v) if v.disturbed => "⚠ disturbed".into(),
                    Some(_) => "quiet".into(),
                    None => "–".into(),
                });
            }
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
    }
    md.push('\n');
    let mut notes = Vec::new();
    if mpi {
        notes.push(
            "p = ranks × threads per rank × max(GPUs, 1); `ranks` is the total over all nodes."
                .to_string(),
        );
    }
    if comm {
        notes.push("comm share = median `comm_s` / median time: the fraction of a repetition spent in MPI communication (halo exchange, panel broadcasts), maximum over the ranks.".to_string());
    }
    if points().any(|p| p.record.point.oversubscribed) {
        let what = if mpi { "ranks × threads" } else { "workers" };
        notes.push(format!(
            "⚠ oversubscribed: more {what} than cores; times not comparable (they measure time-sharing, and the fits leave these points out)."
        ));
    }
    if points().any(|p| crate::load::is_disturbed(p.record)) {
        notes.push("⚠ disturbed: other work used the cores this point needed while it ran (see the warning at the top); its time is not comparable, it is hollow in the plots and the fits leave it out.".to_string());
    }
    for n in &notes {
        let _ = writeln!(md, "*{n}*\n");
    }
}

/// The latency/bandwidth table of a message-size study.
fn message_table(md: &mut String, series: &[&Series<'_>]) {
    let points = messages::message_points(series);
    if points.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Latency and bandwidth by message size\n");
    // The machine's state beside each point, as in the study table: a latency measured while
    // other work held the cores is not the network's.
    let loaded = points.iter().any(|p| p.record.load.is_some());
    if loaded {
        md.push_str(
            "| message size | series | latency (µs) | bandwidth (GB/s) | point | machine |\n",
        );
        md.push_str("| ---: | --- | ---: | ---: | --- | --- |\n");
    } else {
        md.push_str("| message size | series | latency (µs) | bandwidth (GB/s) | point |\n");
        md.push_str("| ---: | --- | ---: | ---: | --- |\n");
    }
    for p in &points {
        let warn = if p.record.point.oversubscribed || crate::load::is_disturbed(p.record) {
            " ⚠"
        } else {
            ""
        };
        let machine = match (loaded, crate::load::verdict(p.record)) {
            (false, _) => String::new(),
            (true, Some(v)) if v.disturbed => " ⚠ disturbed |".into(),
            (true, Some(_)) => " quiet |".into(),
            (true, None) => " – |".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | `{}`{warn} |{machine}",
            messages::bytes_label(p.size as f64),
            cell(&p.line),
            sig(p.latency_us),
            opt_sig(p.bandwidth_gbps),
            p.record.point.id
        );
    }
    let lat = if points.iter().all(|p| p.from_metric) {
        "latency: median of the workload's `metric_latency_us` (ping-pong: one-way, half a round trip; collectives: time per call)"
    } else if points.iter().any(|p| p.from_metric) {
        "latency: median `metric_latency_us` where recorded, else median time / `iterations`"
    } else {
        "latency: median time / `iterations` (the time of one operation)"
    };
    let _ = writeln!(
        md,
        "\n*{lat}; bandwidth: bytes / median time (GB/s = 1e9 B/s; the ping-pong counts 2 · size · iterations bytes, i.e. size / one-way time).*\n"
    );
    if points.iter().any(|p| crate::load::is_disturbed(p.record)) {
        let _ = writeln!(
            md,
            "*⚠ disturbed: other work used the cores these ranks needed while they ran (see the warning at the top); their latency and bandwidth measure that contention as much as the interconnect.*\n"
        );
    }
}

fn fits(md: &mut String, series: &[&Series<'_>]) {
    for s in series {
        let name = if s.label.is_empty() {
            String::new()
        } else {
            format!(" for `{}`", s.label)
        };
        let base = s.base_point();
        let base_text = format!("base p0 = {}, {}", base.workers, secs(base.summary.median));
        let exact = if s.distinct_workers() == 2 {
            " Two worker counts determine the fit exactly; measure more to test the model."
        } else {
            ""
        };
        if let Some(f) = s.amdahl {
            let _ = writeln!(
                md,
                "**Amdahl fit**{name}: {}. Least squares of 1/S on 1/p over {} points, rms residual {:.2e} ({base_text}).{exact}\n",
                scaling::amdahl_text(&f),
                f.points,
                f.rms_residual
            );
        } else if let Some(g) = s.gustafson {
            let _ = writeln!(
                md,
                "**Gustafson fit**{name}: {}; least squares over {} points, rms residual {:.2e} ({base_text}).{exact}\n",
                scaling::gustafson_text(&g),
                g.points,
                g.rms_residual
            );
        } else if s.distinct_workers() >= 2
            && s.points.iter().any(|p| crate::load::is_disturbed(p.record))
        {
            let _ = writeln!(
                md,
                "No fit{name}: too few of its points were measured on a quiet machine (⚠ disturbed points are left out; see the warning at the top) ({base_text}).\n"
            );
        } else {
            let _ = writeln!(
                md,
                "No fit{name}: it needs at least two worker counts; add values to `threads` (or `ranks`) in the study ({base_text}).\n"
            );
        }
    }
}

/// One line for the CLI as a point finishes, e.g.
/// `ok  gemm variant=tuned n=1024 threads=2  0.0213 s  100.8 GFLOP/s` or
/// `FAILED (timeout) gemm variant=tuned n=1024 threads=8  timed out after 60 s`.
pub fn live_line(rec: &PointRecord) -> String {
    let mut desc = vec![rec.point.workload.clone()];
    let params = params_text(rec);
    if !params.is_empty() {
        desc.push(params);
    }
    desc.push(resources_label(&rec.point.resources));
    let desc = desc.join(" ");
    let over = if rec.point.oversubscribed {
        "  [oversubscribed]"
    } else {
        ""
    };
    if rec.status != Status::Ok {
        let reason = rec.reason.lines().next().unwrap_or("").trim();
        let reason: String = if reason.chars().count() > 160 {
            reason.chars().take(160).chain("…".chars()).collect()
        } else {
            reason.to_string()
        };
        return format!("FAILED ({}) {desc}{over}  {reason}", rec.status.as_str())
            .trim_end()
            .to_string();
    }
    let Some(s) = Summary::of(&times(rec)) else {
        return format!("ok  {desc}{over}  (no repetitions)");
    };
    let mut line = format!("ok  {desc}  {}", secs(s.median));
    if let Some(metric) = Throughput::for_work(&rec.work) {
        if let Some(v) = metric.rate(&rec.work, s.median) {
            let v = if v >= 10.0 { format!("{v:.1}") } else { sig(v) };
            let _ = write!(line, "  {v} {}", metric.unit());
        }
    }
    if let Some((v, unit)) = ml::rate(rec, s.median) {
        let _ = write!(line, "  {} {unit}", sig(v));
    }
    if let Some(lat) = csv::metric_median(rec, messages::LATENCY_METRIC) {
        let _ = write!(line, "  latency {} µs", sig(lat));
    }
    if let Some(share) = messages::comm_share(rec, s.median) {
        let _ = write!(line, "  comm {}", pct(share));
    }
    if s.n > 1 && s.relative_stddev() > HIGH_VARIANCE {
        let _ = write!(line, "  (noisy: ±{:.0}%)", s.relative_stddev() * 100.0);
    }
    line.push_str(over);
    if let Some(v) = crate::load::verdict(rec).filter(|v| v.disturbed) {
        let _ = write!(line, "  [disturbed: {}]", v.why);
    }
    line
}

/// Synthetic records for the tests of this module and its children.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::plan::{Point, Resources, Scaling};
    use crate::results::{PointRecord, Repetition, Status};
    use crate::value::{Size, Value};
    use crate::workload::{Backend, Params, Work};

    /// An ok record of `workload` at `threads` threads and size `n` with the given repetition
    /// times. `stream.*` workloads count 2n FLOP and 24n bytes (memory-bound, size in elements);
    /// others 2n³ FLOP and 24n² bytes (a GEMM, size in `n`).
    pub fn record(
        study: usize,
        workload: &str,
        scaling: Scaling,
        threads: u32,
        n: u64,
        times: &[f64],
    ) -> PointRecord {
        let mut params = Params::default();
        params
            .0
            .insert("variant".into(), Value::Text("tuned".into()));
        params.0.insert("size".into(), Value::Size(Size::Count(n)));
        let stream = workload.starts_with("stream");
        let nf = n as f64;
        let (work, unit) = if stream {
            (
                Work {
                    flops: 2.0 * nf,
                    bytes: 24.0 * nf,
                },
                "elements",
            )
        } else {
            (
                Work {
                    flops: 2.0 * nf.powi(3),
                    bytes: 24.0 * nf * nf,
                },
                "n",
            )
        };
        PointRecord {
            point: Point {
                id: format!("{study}{}t{threads}n{n}", &workload[..2]),
                study,
                study_name: format!("{workload} {}", scaling.as_str()),
                workload: workload.into(),
                scaling,
                resources: Resources {
                    threads,
                    ..Resources::default()
                },
                params,
                repetitions: times.len() as u32,
                warmup: 1,
                timeout_s: 60.0,
                oversubscribed: false,
                data: None,
            },
            status: Status::Ok,
            reason: String::new(),
            repetitions: times
                .iter()
                .map(|&seconds| Repetition {
                    seconds,
                    verified: true,
                    metrics: Default::default(),
                    details: Default::default(),
                })
                .collect(),
            work,
            size: n,
            size_unit: unit.into(),
            backend: Some(Backend::Rayon),
            host: "testhost".into(),
            started: "2025-01-01T00:00:00Z".into(),
            finished: "2025-01-01T00:00:01Z".into(),
            slurm: Default::default(),
            rank_hosts: Vec::new(),
            load: None,
            devices: Vec::new(),
        }
    }

    /// A point that timed out before any repetition.
    pub fn failed(
        study: usize,
        workload: &str,
        scaling: Scaling,
        threads: u32,
        n: u64,
        reason: &str,
    ) -> PointRecord {
        let mut r = record(study, workload, scaling, threads, n, &[]);
        r.status = Status::Timeout;
        r.reason = reason.into();
        r
    }

    /// `rec` with metric `name` set on its repetitions, `values[i]` on repetition i (repetitions
    /// beyond `values` keep no value for it).
    pub fn with_metric(mut rec: PointRecord, name: &str, values: &[f64]) -> PointRecord {
        for (r, v) in rec.repetitions.iter_mut().zip(values) {
            r.metrics.insert(name.into(), *v);
        }
        rec
    }

    /// An ok record of an MPI workload (`mpi.pingpong`, `mpi.allreduce`, `mpi.stencil`, ...) at
    /// `ranks` × `threads` with the given repetition times. Communication workloads
    /// (`mpi.pingpong` and the collectives) take `size` as message bytes and count
    /// 2 · size · iterations bytes; `mpi.stencil` counts a grid of side `size` (8 bytes and
    /// 5 FLOP per cell and iteration); the rest 2n³ FLOP.
    pub fn mpi_record(
        study: usize,
        workload: &str,
        ranks: u32,
        threads: u32,
        size: u64,
        iterations: u64,
        times: &[f64],
    ) -> PointRecord {
        let mut r = record(study, workload, Scaling::Strong, threads, size, times);
        r.point.resources.ranks = ranks;
        r.point.id = format!("{study}r{ranks}t{threads}s{size}");
        r.point.study_name = workload.trim_start_matches("mpi.").to_string();
        r.point.params.0.remove("variant");
        r.point
            .params
            .0
            .insert("iterations".into(), Value::Int(iterations));
        r.backend = Some(Backend::Mpi);
        let (s, it) = (size as f64, iterations as f64);
        let comm = !matches!(workload, "mpi.stencil" | "mpi.gemm" | "mpi.pi");
        if comm {
            r.point
                .params
                .0
                .insert("size".into(), Value::Size(Size::Bytes(size)));
            r.work = Work {
                flops: 0.0,
                bytes: 2.0 * s * it,
            };
            r.size_unit = "bytes".into();
        } else if workload == "mpi.stencil" {
            r.work = Work {
                flops: 5.0 * s * s * it,
                bytes: 8.0 * s * s * it,
            };
            r.size_unit = "grid side".into();
        }
        r
    }

    /// `rec` with the machine load of a 10 s run on 2 cores beside other work that kept `other`
    /// cores busy (disturbed above 0.2 cores for a 2-thread point, above 1.1 for a 1-thread one).
    pub fn with_load(mut rec: PointRecord, other: f64) -> PointRecord {
        let needed = rec.point.resources.threads.min(2);
        rec.load = Some(crate::load::MachineLoad {
            sampled_by: "parent".into(),
            seconds: 10.0,
            cores: 2,
            cores_needed: needed,
            other_cores: other,
            point_cores: needed as f64,
            steal_share: 0.0,
            runnable_mean: needed as f64 + other,
            runnable_max: needed + other.ceil() as u32,
            loadavg_1m: other,
            clock_mhz: Some(2600.0),
        });
        rec
    }

    /// `rec` with one more text parameter.
    pub fn with_param(mut rec: PointRecord, name: &str, text: &str) -> PointRecord {
        rec.point
            .params
            .0
            .insert(name.into(), Value::Text(text.into()));
        rec
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{failed, record};
    use super::*;
    use crate::plan::Point;

    #[test]
    fn a_point_beyond_the_measured_peak_says_the_profile_is_low() {
        // The fixture profile measured DGEMM 25 GFLOP/s on 1 core at best, 24.25 as its median:
        // a point's median is compared with the median.
        let profile = crate::calibrate::profile::tests::fixture();
        let rec = record(0, "gemm", Scaling::Strong, 1, 1000, &[0.1]);
        assert_eq!(measured_pct(&rec, Some(19.4), None, Some(&profile)), "80%");
        assert_eq!(
            measured_pct(&rec, Some(30.0), None, Some(&profile)),
            "124% (above the profile)"
        );
        assert_eq!(measured_pct(&rec, Some(30.0), None, None), "–");
    }

    fn plan_of(records: &[PointRecord], extra: &[Point]) -> Plan {
        Plan {
            experiment: "lecture".into(),
            manifest_sha256: "0".repeat(64),
            points: records
                .iter()
                .map(|r| r.point.clone())
                .chain(extra.iter().cloned())
                .collect(),
        }
    }

    fn machine() -> Machine {
        Machine {
            host: "node01".into(),
            cpu_model: "Test CPU".into(),
            cores: 8,
            simd: "avx2".into(),
            simd_f64_lanes: 4,
            fma_units: 2,
            clock_ghz: 2.0,
            peak_gflops_per_core: 32.0,
            ..Machine::default()
        }
    }

    #[test]
    fn disturbed_points_are_warned_about_marked_hollow_and_left_out_of_the_fit() {
        use super::test_support::with_load;
        let (a, b) = (0.1, 0.9);
        // p = 2 ran beside other work; the others ran on a quiet machine.
        let recs: Vec<PointRecord> = [1u32, 2, 4]
            .iter()
            .map(|&p| {
                let t = a + b / p as f64;
                let r = record(0, "gemm", Scaling::Strong, p, 1024, &[t, t * 1.01, t]);
                with_load(r, if p == 2 { 1.5 } else { 0.02 })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let plan = plan_of(&recs, &[]);
        write(&run, &plan, &recs, &machine()).unwrap();
        let md = std::fs::read_to_string(run.report()).unwrap();
        let root = dir.path().display();
        // The first warning: what happened, to which point, what the report did, what to do.
        let first = md
            .split("## Warnings\n\n- ")
            .nth(1)
            .and_then(|w| w.lines().next())
            .unwrap();
        assert_eq!(
            first,
            format!("**Busy machine: 1 point(s) were disturbed.** Other programs used the cores these points needed while they ran, so their times measure that other work as much as the code: `0get2n1024` (other work kept 1.50 of 2 cores busy while the point needed 2 (at most 0.20 allowed)). They are marked ⚠ in the tables and hollow in the plots, left out of the Amdahl and Gustafson fits, and no speedup is based on them where an undisturbed point exists. To measure them again on a quiet machine, close other programs (`top` shows what runs), delete their records and resume, waiting for quiet before each point: `rm {root}/points/0get2n1024.json` then `scalelab run --resume {root} --wait-idle`.")
        );
        assert!(md.contains("| 100% | – | quiet |"), "{md}");
        assert!(md.contains("| ⚠ disturbed |"), "{md}");
        assert!(
            md.contains("*⚠ disturbed: other work used the cores"),
            "{md}"
        );
        // The fit holds the two quiet points only.
        assert!(md.contains(" over 2 points, rms residual "), "{md}");
        // The speedup and throughput plots draw one ring (a white disc and a coloured circle),
        // and say why; the other two points and the legend's swatch are discs.
        for kind in ["speedup", "throughput"] {
            let svg = std::fs::read_to_string(
                run.plots_dir()
                    .join(format!("study1-gemm-strong-{kind}.svg")),
            )
            .unwrap();
            let ring = r##"r="8" opacity="1" fill="none" stroke="#0072B2" stroke-width="3""##;
            let disc = r##"r="7" opacity="1" fill="#0072B2" stroke="none""##;
            assert_eq!(svg.matches(ring).count(), 1, "{kind}: {svg}");
            assert_eq!(svg.matches(disc).count(), 3, "{kind}: {svg}");
            assert!(svg.contains("Hollow"), "{svg}");
            assert!(svg.contains("hollow: disturbed"), "a legend entry: {svg}");
        }
    }

    #[test]
    fn full_report_in_a_tempdir() {
        let (a, b) = (0.1, 0.9);
        let mut recs: Vec<PointRecord> = [1u32, 2, 4, 8]
            .iter()
            .map(|&p| {
                let t = a + b / p as f64;
                record(
                    0,
                    "gemm",
                    Scaling::Strong,
                    p,
                    1024,
                    &[t, t * 1.02, t * 0.99, t * 1.01, t],
                )
            })
            .collect();
        recs.extend(
            [(1u32, 1.0), (2, 1.1), (4, 1.3), (8, 1.6)]
                .iter()
                .map(|&(p, t)| {
                    record(
                        1,
                        "stream.triad",
                        Scaling::Weak,
                        p,
                        1_000_000 * p as u64,
                        &[t, t * 1.01, t * 0.98],
                    )
                }),
        );
        recs.push(failed(
            0,
            "gemm",
            Scaling::Strong,
            16,
            1024,
            "timed out after 60 s (limit `timeout`)",
        ));
        let mut over = record(0, "gemm", Scaling::Strong, 16, 1024, &[0.2]);
        over.point.id = "over16".into();
        over.point.oversubscribed = true;
        let mut pending = over.point.clone();
        pending.id = "pending".into();
        recs.push(over);

        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let plan = plan_of(&recs, &[pending]);
        let files = write(&run, &plan, &recs, &machine()).unwrap();

        for f in &files {
            assert!(f.exists(), "{} missing", f.display());
        }
        assert_eq!(
            files[..3],
            [run.measurements(), run.summary(), run.report()]
        );
        let pngs: Vec<_> = files
            .iter()
            .filter(|p| p.extension().unwrap() == "png")
            .collect();
        let svgs: Vec<_> = files
            .iter()
            .filter(|p| p.extension().unwrap() == "svg")
            .collect();
        // Strong: speedup, efficiency, throughput; weak: efficiency, throughput; the roofline
        // at the largest and the smallest p.
        assert_eq!(pngs.len(), 7, "{pngs:?}");
        assert_eq!(svgs.len(), 7);
        for png in pngs {
            let bytes = std::fs::read(png).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
        }
        for svg in svgs {
            let text = std::fs::read_to_string(svg).unwrap();
            assert!(
                text.starts_with("<svg") && text.contains("<text"),
                "{}",
                svg.display()
            );
        }
        let speedup_svg =
            std::fs::read_to_string(run.plots_dir().join("study1-gemm-strong-speedup.svg"))
                .unwrap();
        assert!(speedup_svg.contains("ideal"), "legend names the ideal line");
        assert!(
            speedup_svg.contains("Base case: p0 = 1"),
            "caption names the base case"
        );

        let md = std::fs::read_to_string(run.report()).unwrap();
        assert!(md.contains("serial fraction f = 0.1000"), "{md}");
        assert!(md.contains("Gustafson fit"), "{md}");
        assert!(
            md.contains("timed out after 60 s (limit `timeout`)"),
            "{md}"
        );
        assert!(md.contains("### Failed points"));
        assert!(md.contains("`over16` ⚠"), "oversubscribed point marked");
        assert!(md.contains("**Oversubscribed**"));
        assert!(md.contains("**Incomplete run**: 1 planned point"));
        assert!(md.contains("plots/study1-gemm-strong-speedup.png"));
        assert!(md.contains("% peak"));
        assert!(md.contains("## Roofline"), "{md}");
        assert!(md.contains("![Roofline, p = 16 workers (Test CPU)](plots/roofline.png)"));
        assert!(md.contains("(plots/roofline-p1.png)"));
        assert!(
            md.contains("the points at p = 2, 4, 8 are in the tables above"),
            "{md}"
        );

        let rows = csv::read_summary(&run.summary()).unwrap();
        assert_eq!(rows.len(), recs.len());
        for row in rows
            .iter()
            .filter(|r| r.study == "gemm strong" && r.status == Status::Ok)
        {
            let p = row.workers as f64;
            let expect = if row.point_id == "over16" {
                (a + b) / 0.2
            } else {
                (a + b) / (a + b / p)
            };
            assert!((row.speedup.unwrap() - expect).abs() < 1e-9, "{row:?}");
            assert!((row.efficiency.unwrap() - expect / p).abs() < 1e-9);
        }
        let weak: Vec<_> = rows.iter().filter(|r| r.scaling == Scaling::Weak).collect();
        assert!((weak[3].efficiency.unwrap() - 1.0 / 1.6).abs() < 1e-9);
        let fail = rows.iter().find(|r| r.status == Status::Timeout).unwrap();
        assert_eq!(fail.speedup, None);
        assert_eq!(fail.reason, "timed out after 60 s (limit `timeout`)");

        let meas = csv::read_measurements(&run.measurements()).unwrap();
        assert_eq!(meas.len(), 4 * 5 + 4 * 3 + 1 + 1);

        // To look at the result: SCALELAB_KEEP_REPORT=/tmp/demo cargo test --lib full_report
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_REPORT") {
            let keep = std::path::Path::new(&keep);
            for f in &files {
                let to = keep.join(f.strip_prefix(&run.root).unwrap());
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(f, to).unwrap();
            }
        }
    }

    #[test]
    fn out_of_range_scaling_values_are_named_in_the_report() {
        // A slowdown (faer on a busy machine: S = 0.53 at p = 2) and a superlinear series
        // (S = 2.4 at p = 2), each with three repetitions.
        let recs = vec![
            record(0, "gemm", Scaling::Strong, 1, 512, &[1.0, 1.0, 1.0]),
            record(0, "gemm", Scaling::Strong, 2, 512, &[1.0 / 0.53; 3]),
            record(0, "gemm", Scaling::Strong, 1, 1024, &[2.4, 2.4, 2.4]),
            record(0, "gemm", Scaling::Strong, 2, 1024, &[1.0, 1.0, 1.0]),
        ];
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
        let md = std::fs::read_to_string(run.report()).unwrap();
        assert!(
            md.contains("**Amdahl fit** for `variant=tuned n=512`: not meaningful (f = 2.77 outside [0, 1]: the times do not follow Amdahl's law;"),
            "{md}"
        );
        assert!(
            md.contains("**Amdahl fit** for `variant=tuned n=1024`: not meaningful (f = −0.167 outside [0, 1]: the speedup is superlinear"),
            "{md}"
        );
        assert!(
            md.contains("| superlinear (speedup 2.40 > p = 2: cache effects or a noisy base) | superlinear (E = 120% > 100%) | not meaningful (e = −0.167 < 0: superlinear speedup) |"),
            "{md}"
        );
        assert!(
            md.contains("| 0.530 | 26% | not meaningful (e = 2.77 > 1: slower than the base) |"),
            "{md}"
        );
        for wrong in ["277", "-16.67%", "−16.67%", "120.00%"] {
            assert!(!md.contains(wrong), "{wrong} in {md}");
        }
    }

    /// A SLURM run over two node types (n1: 100 GFLOP/s per core, n2: 50): each point's "% peak"
    /// is of the node it ran on, from `<run>/machines/`, not of the report's (first) node.
    #[test]
    fn each_point_gets_its_own_nodes_peak() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let nodes = dir.path().join(crate::machine::RUN_MACHINES_DIR);
        std::fs::create_dir_all(&nodes).unwrap();
        for (host, peak) in [("n1", 100.0), ("n2", 50.0)] {
            let m = Machine {
                host: host.into(),
                fma_measured: true,
                peak_gflops_per_core: peak,
                ..Machine::default()
            };
            std::fs::write(
                nodes.join(format!("{host}-key.json")),
                serde_json::to_vec(&m).unwrap(),
            )
            .unwrap();
        }
        // n = 1000: 2·10⁹ flops in 0.1 s = 20 GFLOP/s on 1 core, on each node.
        let mut a = record(0, "gemm", Scaling::Strong, 1, 1000, &[0.1, 0.1]);
        a.host = "n1".into();
        let mut b = record(1, "gemm", Scaling::Strong, 1, 1000, &[0.1, 0.1]);
        b.host = "n2".into();
        let recs = vec![a, b];
        let (machine, warning) = crate::machine::for_report(dir.path(), None);
        assert_eq!(machine.host, "n1");
        assert!(warning.is_some());
        write(&run, &plan_of(&recs, &[]), &recs, &machine).unwrap();
        let md = std::fs::read_to_string(run.report()).unwrap();
        let row = |study: usize| -> Vec<String> {
            md.lines()
                .find(|l| l.starts_with(&format!("| `{study}get1n1000`")))
                .unwrap_or_else(|| panic!("{md}"))
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        };
        // Columns: point, p, resources, parameters, median, GFLOP/s, GB/s, % peak.
        assert_eq!(row(0)[8], "20%", "{:?}", row(0));
        assert_eq!(row(1)[8], "40%", "{:?}", row(1));
    }

    /// A ping-pong point measured while other work held the cores is marked ⚠ in the message
    /// table too, with the machine column the study table has and a note under the table.
    #[test]
    fn message_table_marks_disturbed_points() {
        use super::test_support::{mpi_record, with_load, with_metric};
        let recs: Vec<PointRecord> = [(8u64, 0.0), (4096, 1.5), (1 << 20, 0.0)]
            .iter()
            .map(|&(size, other)| {
                let one_way = 0.2e-6 + size as f64 / 10e9;
                let t = 2.0 * one_way * 1000.0;
                let lat = one_way * 1e6;
                let r = mpi_record(0, "mpi.pingpong", 2, 1, size, 1000, &[t, t, t]);
                with_load(with_metric(r, "latency_us", &[lat; 3]), other)
            })
            .collect();
        assert!(crate::load::is_disturbed(&recs[1]) && !crate::load::is_disturbed(&recs[0]));
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
        let md = std::fs::read_to_string(run.report()).unwrap();
        let table = &md[md
            .find("### Latency and bandwidth by message size")
            .unwrap()..];
        assert!(table.contains(
            "| message size | series | latency (µs) | bandwidth (GB/s) | point | machine |\n| ---: | --- | ---: | ---: | --- | --- |\n"
        ), "{table}");
        let row = |id: &str| {
            table
                .lines()
                .find(|l| l.contains(&format!("`{id}`")))
                .unwrap_or_else(|| panic!("no row for {id}: {table}"))
                .to_string()
        };
        assert!(
            row("0r2t1s4096").ends_with("| `0r2t1s4096` ⚠ | ⚠ disturbed |"),
            "{}",
            row("0r2t1s4096")
        );
        assert!(
            row("0r2t1s8").ends_with("| `0r2t1s8` | quiet |"),
            "{}",
            row("0r2t1s8")
        );
        assert!(table
            .contains("*⚠ disturbed: other work used the cores these ranks needed while they ran"));
    }

    #[test]
    fn mpi_report_with_messages_comm_share_and_hybrid_points() {
        use super::test_support::{mpi_record, with_metric};
        let mut recs = Vec::new();
        // Study 0: ping-pong over message sizes, 2 ranks: latency 0.2 µs + size / 10 GB/s.
        for size in [1u64, 8, 64, 4096, 1 << 20, 4 << 20] {
            let one_way = 0.2e-6 + size as f64 / 10e9;
            let t = 2.0 * one_way * 1000.0;
            let lat = one_way * 1e6;
            recs.push(with_metric(
                mpi_record(
                    0,
                    "mpi.pingpong",
                    2,
                    1,
                    size,
                    1000,
                    &[t, t * 1.05, t * 0.98],
                ),
                "latency_us",
                &[lat, lat * 1.05, lat * 0.98],
            ));
        }
        // Study 1: allreduce at 2 and 4 ranks (4 oversubscribed), no latency metric.
        for ranks in [2u32, 4] {
            for size in [8u64, 65536] {
                let t = 1e-3 * ranks as f64 * (1.0 + size as f64 / 65536.0);
                let mut r = mpi_record(1, "mpi.allreduce", ranks, 1, size, 100, &[t, t * 1.02]);
                r.point.oversubscribed = ranks > 2;
                recs.push(r);
            }
        }
        // Study 2: stencil with communication and compute times.
        for ranks in [1u32, 2, 4] {
            let compute = 1.0 / ranks as f64;
            let comm = 0.05 * (ranks - 1) as f64;
            let t = compute + comm;
            let r = mpi_record(
                2,
                "mpi.stencil",
                ranks,
                1,
                1024,
                50,
                &[t, t * 1.01, t * 0.99],
            );
            let r = with_metric(r, "comm_s", &[comm, comm, comm]);
            recs.push(with_metric(r, "compute_s", &[compute, compute, compute]));
        }
        // Study 3: hybrid DGEMM, ranks × threads [1,1], [1,2], [2,1], [2,2] (4 workers on a
        // 2-core machine: oversubscribed).
        for (ranks, threads) in [(1u32, 1u32), (1, 2), (2, 1), (2, 2)] {
            let t = 1.0 / (ranks * threads) as f64 * if ranks > 1 { 1.1 } else { 1.0 };
            let mut r = mpi_record(3, "mpi.gemm", ranks, threads, 512, 1, &[t, t]);
            r.point.oversubscribed = ranks * threads > 2;
            recs.push(r);
        }
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let plan = plan_of(&recs, &[]);
        let files = write(&run, &plan, &recs, &machine()).unwrap();
        let stems: Vec<String> = files
            .iter()
            .filter(|f| f.extension().unwrap() == "svg")
            .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
            .collect();
        for want in [
            "study1-pingpong-latency",
            "study1-pingpong-bandwidth",
            "study2-allreduce-latency",
            "study2-allreduce-bandwidth",
            "study3-stencil-comm",
            "study3-stencil-speedup",
            "study4-gemm-speedup",
        ] {
            assert!(stems.iter().any(|s| s == want), "{want} missing: {stems:?}");
        }
        assert!(
            !stems
                .iter()
                .any(|s| s.starts_with("study1-pingpong-throughput")),
            "message studies get latency/bandwidth instead of throughput: {stems:?}"
        );
        for f in &files {
            match f.extension().unwrap().to_str().unwrap() {
                "png" => {
                    let bytes = std::fs::read(f).unwrap();
                    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
                }
                "svg" => {
                    let text = std::fs::read_to_string(f).unwrap();
                    assert!(text.starts_with("<svg") && text.ends_with("</svg>\n"));
                }
                _ => {}
            }
        }
        let lat_svg =
            std::fs::read_to_string(run.plots_dir().join("study1-pingpong-latency.svg")).unwrap();
        assert!(lat_svg.contains("latency (µs)"), "y axis");
        assert!(lat_svg.contains("message size"), "x axis");
        assert!(
            lat_svg.contains("4 KiB") && lat_svg.contains("1 MiB"),
            "byte ticks"
        );
        assert!(
            lat_svg.contains("mpi.pingpong · ranks=2 · threads=1"),
            "what the one line has is the subtitle"
        );
        let hybrid =
            std::fs::read_to_string(run.plots_dir().join("study4-gemm-speedup.svg")).unwrap();
        assert!(
            hybrid.contains(">\nranks × threads\n<"),
            "the swept resources"
        );
        assert!(
            hybrid.contains("2 threads/rank"),
            "hybrid split per threads"
        );

        let md = std::fs::read_to_string(run.report()).unwrap();
        assert!(
            md.contains("### Latency and bandwidth by message size"),
            "{md}"
        );
        assert!(
            md.contains("| 8 B | ranks=2 threads=1 | 0.201 | "),
            "latency from the metric: {md}"
        );
        assert!(md.contains("| 4 MiB | ranks=2 threads=1 |"), "{md}");
        // Allreduce without the metric: median time / iterations = 2 ms · 1.01 / 100 = 20.2 µs.
        assert!(md.contains("| 8 B | ranks=2 threads=1 | 20.2 | "), "{md}");
        assert!(md.contains("| comm share |"), "{md}");
        // Stencil at 2 ranks: comm 0.05 of 0.55 s.
        assert!(md.contains("| 9% |"), "{md}");
        assert!(md.contains("| ranks | threads/rank |"), "{md}");
        assert!(
            md.contains("oversubscribed: more ranks × threads than cores; times not comparable"),
            "{md}"
        );
        assert!(md.contains("plots/study3-stencil-comm.png"), "{md}");
        let rows = csv::read_summary(&run.summary()).unwrap();
        let st: Vec<_> = rows
            .iter()
            .filter(|r| r.workload == "mpi.stencil")
            .collect();
        assert_eq!(st[1].metrics["comm_s"], 0.05);
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_MPI_REPORT") {
            let keep = std::path::Path::new(&keep);
            for f in &files {
                let to = keep.join(f.strip_prefix(&run.root).unwrap());
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(f, to).unwrap();
            }
        }
    }

    #[test]
    fn live_lines() {
        let r = record(
            0,
            "gemm",
            Scaling::Strong,
            2,
            1024,
            &[0.0213, 0.0213, 0.0214],
        );
        let line = live_line(&r);
        assert!(
            line.starts_with("ok  gemm variant=tuned n=1024 threads=2  0.0213 s  100.8 GFLOP/s"),
            "{line}"
        );
        let s = record(0, "stream.triad", Scaling::Strong, 1, 1_000_000, &[0.01]);
        assert!(live_line(&s).ends_with("2.40 GB/s"), "{}", live_line(&s));
        let f = failed(
            0,
            "gemm",
            Scaling::Strong,
            8,
            1024,
            "timed out after 60 s\nmore",
        );
        assert_eq!(
            live_line(&f),
            "FAILED (timeout) gemm variant=tuned n=1024 threads=8  timed out after 60 s"
        );
        let pp = super::test_support::with_metric(
            super::test_support::mpi_record(0, "mpi.pingpong", 2, 1, 8, 1000, &[3e-4, 3e-4]),
            "latency_us",
            &[0.15, 0.13],
        );
        assert!(
            live_line(&pp).contains("latency 0.140 µs"),
            "{}",
            live_line(&pp)
        );
        let st = super::test_support::with_metric(
            super::test_support::mpi_record(0, "mpi.stencil", 2, 1, 64, 10, &[1.0]),
            "comm_s",
            &[0.25],
        );
        assert!(live_line(&st).contains("comm 25%"), "{}", live_line(&st));
    }

    #[test]
    fn throughput_choice() {
        assert_eq!(
            Throughput::for_work(&Work {
                flops: 2e9,
                bytes: 24e6
            }),
            Some(Throughput::Gflops)
        );
        assert_eq!(
            Throughput::for_work(&Work {
                flops: 2e6,
                bytes: 24e6
            }),
            Some(Throughput::Gbps)
        );
        assert_eq!(
            Throughput::for_work(&Work {
                flops: 0.0,
                bytes: 8.0
            }),
            Some(Throughput::Gbps)
        );
        assert_eq!(
            Throughput::for_work(&Work {
                flops: 5.0,
                bytes: 0.0
            }),
            Some(Throughput::Gflops)
        );
        assert_eq!(Throughput::for_work(&Work::default()), None);
        assert_eq!(
            Throughput::Gbps.rate(
                &Work {
                    flops: 0.0,
                    bytes: 2e9
                },
                2.0
            ),
            Some(1.0)
        );
    }
}

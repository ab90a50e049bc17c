//! `scalelab compare RUN…`: the same studies measured on several machines, side by side.
//!
//! [`load`] reads a run folder (local or SLURM, finished or not): its plan, its point records and
//! the machine from `provenance.json`. [`write()`] matches the runs against the first one and
//! writes, into one output folder:
//!
//! * `compare.md`: the runs with their machines and conditions; per study and per other run, a
//!   table of the points measured on both sides, matched point by point (same study name,
//!   workload, parameters and resources), with each side's median time and rate and the ratios
//!   against the first run; then every study or point that could not be compared, with the
//!   reason;
//! * `plots/compare-study<N>-<name>-{speedup,efficiency,rate}.{svg,png}`: each study's series
//!   from every run on one set of axes, each run labelled by its machine
//!   ([`super::plots::compare_plots`]).
//!
//! Nothing is dropped silently: a study present in one run only, measured with another workload,
//! or with no point in common is listed under "Not compared" with its reason, and so is a point
//! of a compared study that has no partner or failed on one side. A folder that is not a readable
//! run is bad input (exit code 2) with the folder and the fix; an unreadable point record costs
//! only that point, and is named.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::csv::{summary_rows, SummaryRow};
use super::format::opt_sig;
use super::plots::{compare_plots, PlotOptions, RunSeries, Spread};
use super::scaling::{fixed_params, resources_label, series, size_label, Series};
use super::{cell, Throughput};
use crate::exit::BadInput;
use crate::files::write_atomic;
use crate::machine::Machine;
use crate::plan::Plan;
use crate::results::{PointRecord, RunDir, Status};

/// One run folder, read for comparison.
pub struct Run {
    pub dir: PathBuf,
    /// The run's machine as legends and tables name it: `host: CPU model (N cores)`, GPUs added;
    /// made unique among the compared runs by [`label_runs`].
    pub label: String,
    /// The machine from `provenance.json`; `None` when that file is missing or unreadable.
    pub machine: Option<Machine>,
    /// Why the machine is unknown, when it is.
    pub machine_note: Option<String>,
    /// The run's times came from the mock executor.
    pub mock: bool,
    pub plan: Plan,
    /// Every readable record (ok and failed), in plan order.
    pub records: Vec<PointRecord>,
    /// One message per record that could not be read.
    pub unreadable: Vec<String>,
}

/// Read the run folder `dir` (see the module documentation). A missing folder, a folder that is
/// not a run, a corrupt plan and a run without any finished point are bad input, with the fix.
pub fn load(dir: &Path) -> Result<Run> {
    if !dir.is_dir() {
        crate::bad_input!(
            "{}: no such folder; give run folders made by `scalelab run` or `scalelab sbatch`, e.g. results/<experiment>/<run-id>",
            dir.display()
        );
    }
    let run = RunDir::new(dir);
    let plan = run.load_plan().map_err(|e| {
        if e.is::<BadInput>() {
            e
        } else {
            BadInput::wrap(anyhow::anyhow!(
                "{e:#}; leave {} out of the comparison, or compare another run of the same experiment",
                dir.display()
            ))
        }
    })?;
    let (records, unreadable) = run.load_records(&plan);
    if !records.iter().any(|r| r.status == Status::Ok) {
        crate::bad_input!(
            "{} has no finished point to compare ({} of {} points recorded, none ok); {}, or leave it out",
            dir.display(),
            records.len(),
            plan.points.len(),
            run.remeasure_fix().replace("measures that point again", "measures its points")
        );
    }
    let (machine, machine_note, mock) = match crate::provenance::Provenance::load(&run) {
        Ok(p) => (Some(p.machine), None, p.executor == "mock"),
        Err(e) => (None, Some(format!("machine unknown: {e:#}")), false),
    };
    let label = machine_label(dir, machine.as_ref(), &records);
    Ok(Run {
        dir: dir.to_path_buf(),
        label,
        machine,
        machine_note,
        mock,
        plan,
        records,
        unreadable,
    })
}

/// `host: CPU model (N cores)`, then the GPUs the run's points used.
///
/// The hosts are where the points ran (their records' `host`); the CPU is that of the compute
/// nodes a SLURM run recorded (`machines/`, see [`crate::machine::run_nodes`]), else the
/// provenance's machine when the points ran on it. A SLURM run whose nodes recorded no machine is
/// named by its nodes, with the CPU "not recorded" rather than the login node's.
fn machine_label(dir: &Path, provenance: Option<&Machine>, records: &[PointRecord]) -> String {
    let mut hosts: Vec<&str> = Vec::new();
    for r in records.iter().filter(|r| r.status == Status::Ok) {
        if !hosts.contains(&r.host.as_str()) {
            hosts.push(&r.host);
        }
    }
    hosts.sort_unstable();
    let host_text = match hosts.as_slice() {
        [] => provenance.map_or("unknown host".to_string(), |m| m.host.clone()),
        [one] => one.to_string(),
        [a, b] => format!("{a}, {b}"),
        [a, .., z] => format!("{a}…{z} ({} nodes)", hosts.len()),
    };
    let nodes = crate::machine::run_nodes(dir);
    let cpu = |m: &Machine| format!("{} ({} cores)", m.cpu_model.trim(), m.cores);
    let mut models: Vec<String> = Vec::new();
    for m in nodes.iter().map(cpu) {
        if !models.contains(&m) {
            models.push(m);
        }
    }
    let mut text = match (nodes.first(), provenance) {
        (Some(_), _) if models.len() > 1 => {
            format!("{host_text}: mixed nodes ({})", models.join("; "))
        }
        (Some(node), _) => format!("{host_text}: {}", cpu(node)),
        (None, Some(m)) if hosts.iter().all(|h| *h == m.host) => {
            format!("{host_text}: {}", cpu(m))
        }
        (None, Some(m)) => format!("{host_text}: CPU not recorded (run made on {})", m.host),
        (None, None) => format!("{host_text}: machine unknown"),
    };
    let mut gpus: Vec<&str> = Vec::new();
    for d in records.iter().flat_map(|r| &r.devices) {
        if !gpus.contains(&d.name.as_str()) {
            gpus.push(&d.name);
        }
    }
    if !gpus.is_empty() {
        text.push_str(&format!(" + {}", gpus.join(", ")));
    }
    text
}

/// Make the labels of `runs` unique: runs on the same machine get their folder name added
/// (`host: CPU (2 cores) [20261206-131500]`), and, if that is not enough, their position.
pub fn label_runs(runs: &mut [Run]) {
    let count = |runs: &[Run], l: &str| runs.iter().filter(|r| r.label == l).count();
    let dup: Vec<bool> = runs.iter().map(|r| count(runs, &r.label) > 1).collect();
    for (r, d) in runs.iter_mut().zip(dup) {
        if d {
            let name = r.dir.file_name().map_or_else(
                || r.dir.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            r.label = format!("{} [{name}]", r.label);
        }
    }
    let dup: Vec<bool> = runs.iter().map(|r| count(runs, &r.label) > 1).collect();
    for (i, (r, d)) in runs.iter_mut().zip(dup).enumerate() {
        if d {
            r.label = format!("{} (run {})", r.label, i + 1);
        }
    }
}

/// What [`write()`] produced.
pub struct Outcome {
    /// `compare.md`, then every plot file.
    pub files: Vec<PathBuf>,
    /// Studies compared (with at least one matched point against some run).
    pub compared: usize,
    /// One line per study or point not compared, with the reason.
    pub not_compared: Vec<String>,
}

/// The key that matches a point across runs: study name, workload, scaling, parameters (size
/// included) and resources. Point ids are not used: they hash the study's position in its
/// manifest, which two manifests may order differently.
fn point_key(rec: &PointRecord) -> String {
    let p = &rec.point;
    let r = &p.resources;
    format!(
        "{}\u{1f}{}\u{1f}{}\u{1f}{}\u{1f}{}/{}/{}/{}",
        p.study_name,
        p.workload,
        p.scaling.as_str(),
        serde_json::to_string(&p.params).unwrap_or_default(),
        r.nodes,
        r.ranks,
        r.threads,
        r.gpus
    )
}

/// A point's parameters as tables show them: variant, other parameters, size.
fn params_text(rec: &PointRecord) -> String {
    let mut parts = fixed_params(rec);
    parts.extend(size_label(rec));
    if parts.is_empty() {
        "–".into()
    } else {
        parts.join(" ")
    }
}

/// The rate column of a study: its unit and how a summary row gives it.
#[derive(Clone, Copy, PartialEq)]
enum Rate {
    Gflops,
    Gbps,
    /// ML points: fits (or rows) per second, with the unit text.
    Ml(&'static str),
    None,
}

impl Rate {
    fn of_study(records: &[&PointRecord]) -> Rate {
        let Some(rec) = records.iter().find(|r| r.status == Status::Ok) else {
            return Rate::None;
        };
        match Throughput::for_work(&rec.work) {
            Some(Throughput::Gflops) => Rate::Gflops,
            Some(Throughput::Gbps) => Rate::Gbps,
            None => {
                let median = crate::stats::Summary::of(
                    &rec.repetitions
                        .iter()
                        .map(|r| r.seconds)
                        .collect::<Vec<_>>(),
                )
                .map_or(0.0, |s| s.median);
                match super::ml::rate(rec, median).map(|r| r.1) {
                    Some(u) if u == "rows/s" => Rate::Ml("rows/s"),
                    Some(_) => Rate::Ml("fits/s"),
                    None => Rate::None,
                }
            }
        }
    }

    fn unit(self) -> &'static str {
        match self {
            Rate::Gflops => "GFLOP/s",
            Rate::Gbps => "GB/s",
            Rate::Ml(u) => u,
            Rate::None => "rate",
        }
    }

    fn value(self, row: &SummaryRow, rec: &PointRecord) -> Option<f64> {
        match self {
            Rate::Gflops => row.gflops,
            Rate::Gbps => row.gbps,
            Rate::Ml(_) => row
                .median_s
                .and_then(|m| super::ml::rate(rec, m))
                .map(|r| r.0),
            Rate::None => None,
        }
    }
}

/// One side of a matched point.
struct Side<'a> {
    rec: &'a PointRecord,
    row: &'a SummaryRow,
}

/// The conditions of one side: measured quietly, disturbed (with why), load not sampled; mock.
fn conditions(run: &Run, row: &SummaryRow) -> String {
    let load = match row.disturbed {
        Some(true) => format!("disturbed ({})", row.disturbed_why),
        Some(false) => "quiet".to_string(),
        None => "load not sampled".to_string(),
    };
    if run.mock {
        format!("mock, {load}")
    } else {
        load
    }
}

/// A ratio with three significant digits and a `×`.
fn ratio(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map_or_else(|| "–".into(), |v| format!("{}×", crate::units::sig3(v)))
}

/// Compare `runs` against the first one and write `compare.md` and the plots into `out` (see
/// the module documentation). `runs` must hold at least two runs with unique labels
/// ([`label_runs`]).
pub fn write(runs: &[Run], out: &Path, spread: Spread) -> Result<Outcome> {
    if out.join("plan.json").exists() {
        crate::bad_input!(
            "{} is a run folder; give --out a new or comparison folder, e.g. results/compare-<date>",
            out.display()
        );
    }
    std::fs::create_dir_all(out).map_err(|e| {
        anyhow::anyhow!(
            "creating {}: {e}; choose another --out folder",
            out.display()
        )
    })?;
    let experiment = |r: &Run| r.plan.experiment.clone();
    let rows: Vec<Vec<SummaryRow>> = runs
        .iter()
        .map(|r| summary_rows(&experiment(r), &r.records, &series(&r.records)))
        .collect();
    let all_series: Vec<Vec<Series<'_>>> = runs.iter().map(|r| series(&r.records)).collect();
    let mock = runs.iter().any(|r| r.mock);
    let mut c = Comparison {
        runs,
        rows: &rows,
        all_series: &all_series,
        plots_dir: out.join("plots"),
        opts: PlotOptions { spread, mock },
        md: runs_section(runs, mock),
        not_compared: Vec::new(),
        files: Vec::new(),
        compared: 0,
        plot_failures: Vec::new(),
    };
    for (s_idx, name) in study_names(runs).iter().enumerate() {
        c.study(s_idx, name);
    }
    c.finish(out)
}

/// Studies by name, in order of first appearance (the first run's order first).
fn study_names(runs: &[Run]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for r in runs {
        for p in r
            .plan
            .points
            .iter()
            .chain(r.records.iter().map(|rec| &rec.point))
        {
            if !names.contains(&p.study_name) {
                names.push(p.study_name.clone());
            }
        }
    }
    names
}

/// The top of compare.md: the mock warning, how to read the ratios, the runs with their
/// machines and conditions, and the records that could not be read.
fn runs_section(runs: &[Run], mock: bool) -> String {
    let mut md = String::new();
    if mock {
        md.push_str("> **MOCK DATA in this comparison.** At least one run below was timed by the mock executor's model (`scalelab run --mock`), not measured; its ratios describe no machine.\n\n");
    }
    let _ = writeln!(md, "# Comparison of {} runs\n", runs.len());
    let _ = writeln!(
        md,
        "Ratios are against run 1. **speedup** = median time of run 1 / median time of the other run (above 1: the other run is faster); the rate ratio is the other run's rate / run 1's (GFLOP/s, GB/s or fits/s, whichever the study records). Points are matched by study name, workload, parameters (size included) and resources. S(p) is each run's own strong-scaling speedup against its own base point.\n"
    );
    md.push_str("| run | folder | machine | executor | points ok / planned | load | started |\n| --- | --- | --- | --- | --- | --- | --- |\n");
    for (i, r) in runs.iter().enumerate() {
        let ok = r.records.iter().filter(|x| x.status == Status::Ok).count();
        let started = crate::provenance::Provenance::load(&RunDir::new(&r.dir))
            .map(|p| p.started)
            .unwrap_or_else(|_| "–".into());
        let mut machine = cell(&r.label);
        if let Some(note) = &r.machine_note {
            machine.push_str(&format!(" ({})", cell(note)));
        }
        let _ = writeln!(
            md,
            "| {} | `{}` | {machine} | {} | {ok} / {} | {} | {} |",
            i + 1,
            cell(&r.dir.display().to_string()),
            if r.mock {
                "mock (not measured)"
            } else {
                "measured"
            },
            r.plan.points.len(),
            cell(
                &super::warnings::describe_load(&r.records).unwrap_or_else(|| "not sampled".into())
            ),
            cell(&started)
        );
    }
    md.push('\n');
    for (i, r) in runs.iter().enumerate() {
        for u in &r.unreadable {
            let _ = writeln!(md, "- **Unreadable record in run {}**: {}", i + 1, cell(u));
        }
    }

    md
}

/// One run's records of a study, each with its summary row.
type StudyRecords<'r> = Vec<(&'r PointRecord, &'r SummaryRow)>;

/// A comparison as it is written: the runs and their summaries, and what has been written.
struct Comparison<'r, 'a> {
    runs: &'r [Run],
    rows: &'r [Vec<SummaryRow>],
    all_series: &'r [Vec<Series<'a>>],
    plots_dir: PathBuf,
    opts: PlotOptions,
    md: String,
    not_compared: Vec<String>,
    files: Vec<PathBuf>,
    compared: usize,
    plot_failures: Vec<String>,
}

impl<'r> Comparison<'r, '_> {
    /// The section of study `name` (the `s_idx`-th): against its first run that has points, a
    /// table per other run, then the overlay plots of the runs compared.
    fn study(&mut self, s_idx: usize, name: &str) {
        let runs = self.runs;
        // Each run's records of this study.
        let recs: Vec<StudyRecords<'r>> = runs
            .iter()
            .zip(self.rows)
            .map(|(r, rows)| {
                r.records
                    .iter()
                    .zip(rows)
                    .filter(|(rec, _)| rec.point.study_name == name)
                    .collect()
            })
            .collect();
        let present: Vec<usize> = (0..runs.len()).filter(|&i| !recs[i].is_empty()).collect();
        let _ = writeln!(self.md, "## Study \"{}\"\n", cell(name));
        if present.len() < 2 {
            self.absent(name, &recs, &present);
            return;
        }
        let base = present[0];
        let mut plotted: Vec<usize> = vec![base];
        for &other in present.iter().skip(1) {
            if self.pair(name, &recs, base, other) {
                plotted.push(other);
            }
        }
        if plotted.len() < 2 {
            return;
        }
        self.compared += 1;
        self.plots(s_idx, name, &plotted);
    }

    /// The workload of study `name` in run `i`: its records', else its plan's.
    fn workload_of(&self, name: &str, recs: &[StudyRecords<'_>], i: usize) -> Option<String> {
        recs[i]
            .first()
            .map(|(r, _)| r.point.workload.clone())
            .or_else(|| {
                self.runs[i]
                    .plan
                    .points
                    .iter()
                    .find(|p| p.study_name == name)
                    .map(|p| p.workload.clone())
            })
    }

    /// A study with finished points in fewer than two runs: why it is not compared.
    fn absent(&mut self, name: &str, recs: &[StudyRecords<'_>], present: &[usize]) {
        let runs = self.runs;
        let planned = |i: usize| runs[i].plan.points.iter().any(|p| p.study_name == name);
        let where_: Vec<String> = (0..runs.len())
            .filter(|&i| planned(i) || !recs[i].is_empty())
            .map(|i| format!("run {}", i + 1))
            .collect();
        let why = match (where_.as_slice(), present.first()) {
            ([only], _) => format!("only in {only}"),
            (_, Some(&i)) => format!(
                "finished points only in run {}; {} planned it but recorded none",
                i + 1,
                where_
                    .iter()
                    .filter(|w| **w != format!("run {}", i + 1))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("no finished point in {}", where_.join(", ")),
        };
        let line = format!("study \"{name}\": {why}");
        let _ = writeln!(self.md, "Not compared: {why}.\n");
        self.not_compared.push(line);
    }

    /// Run `other` against run `base` in study `name`: the table of their common points and
    /// the points without a partner; whether any row was written.
    fn pair(&mut self, name: &str, recs: &[StudyRecords<'_>], base: usize, other: usize) -> bool {
        let runs = self.runs;
        let base_workload = self.workload_of(name, recs, base).unwrap_or_default();
        let w = self.workload_of(name, recs, other).unwrap_or_default();
        let heading = format!("Run {} against run {}", other + 1, base + 1);
        if w != base_workload {
            let why = format!(
                "workload {base_workload} in run {}, {w} in run {}",
                base + 1,
                other + 1
            );
            let _ = writeln!(self.md, "### {heading}\n\nNot compared: {why}.\n");
            self.not_compared.push(format!("study \"{name}\": {why}"));
            return false;
        }
        let by_key = |i: usize| -> BTreeMap<String, Side<'_>> {
            recs[i]
                .iter()
                .map(|(rec, row)| (point_key(rec), Side { rec, row }))
                .collect()
        };
        let (base_by_key, other_by_key) = (by_key(base), by_key(other));
        // In run 1's order (its plan's).
        let common: Vec<String> = recs[base]
            .iter()
            .map(|(rec, _)| point_key(rec))
            .filter(|k| other_by_key.contains_key(k))
            .collect();
        if common.is_empty() {
            let why = format!(
                "no point in common (run {}: {}; run {}: {})",
                base + 1,
                describe_points(&base_by_key),
                other + 1,
                describe_points(&other_by_key)
            );
            let _ = writeln!(self.md, "### {heading}\n\nNot compared: {}.\n", cell(&why));
            self.not_compared.push(format!("study \"{name}\": {why}"));
            return false;
        }
        let _ = writeln!(
            self.md,
            "### {heading}\n\nRun {}: {}. Run {}: {}.\n",
            base + 1,
            cell(&runs[base].label),
            other + 1,
            cell(&runs[other].label)
        );
        let rate = Rate::of_study(&recs[base].iter().map(|x| x.0).collect::<Vec<_>>());
        let rows_written = self.pair_rows(
            name,
            rate,
            (base, &base_by_key),
            (other, &other_by_key),
            &common,
        );
        let (b, o) = (base + 1, other + 1);
        for (side, mine, theirs) in [
            (b, &base_by_key, &other_by_key),
            (o, &other_by_key, &base_by_key),
        ] {
            let alone: Vec<String> = mine
                .iter()
                .filter(|(k, _)| !theirs.contains_key(*k))
                .map(|(_, s)| {
                    format!(
                        "{} {}",
                        params_text(s.rec),
                        resources_label(&s.rec.point.resources)
                    )
                })
                .collect();
            if !alone.is_empty() {
                let why = format!(
                    "{} point{} only in run {side}, no partner in run {}: {}",
                    alone.len(),
                    crate::units::plural(alone.len()),
                    if side == b { o } else { b },
                    alone.join("; ")
                );
                let _ = writeln!(self.md, "Not compared: {}.\n", cell(&why));
                self.not_compared.push(format!("study \"{name}\": {why}"));
            }
        }
        rows_written > 0
    }

    /// The table rows of the points both runs measured (keys `common`), with a point that
    /// failed on either side named instead; how many rows were written.
    fn pair_rows(
        &mut self,
        name: &str,
        rate: Rate,
        (base, base_by_key): (usize, &BTreeMap<String, Side<'_>>),
        (other, other_by_key): (usize, &BTreeMap<String, Side<'_>>),
        common: &[String],
    ) -> usize {
        let runs = self.runs;
        let unit = rate.unit();
        let (b, o) = (base + 1, other + 1);
        let md = &mut self.md;
        let not_compared = &mut self.not_compared;
        let _ = writeln!(
            md,
            "| parameters | resources | p | median run {b} | median run {o} | speedup | {unit} run {b} | {unit} run {o} | {unit} ratio | S(p) run {b} | S(p) run {o} | conditions run {b} | conditions run {o} |"
        );
        md.push_str(&format!("|{}\n", " --- |".repeat(13)));
        let mut rows_written = 0;
        for key in common {
            let (x, y) = (&base_by_key[key], &other_by_key[key]);
            let failed: Vec<String> = [(x, b), (y, o)]
                .iter()
                .filter(|(s, _)| s.rec.status != Status::Ok)
                .map(|(s, n)| {
                    format!(
                        "{} in run {n} ({})",
                        s.rec.status.as_str(),
                        s.rec.reason.lines().next().unwrap_or("")
                    )
                })
                .collect();
            if !failed.is_empty() {
                not_compared.push(format!(
                    "study \"{name}\", point {} {}: {}",
                    params_text(x.rec),
                    resources_label(&x.rec.point.resources),
                    failed.join("; ")
                ));
                continue;
            }
            let (tx, ty) = (x.row.median_s, y.row.median_s);
            let speedup = tx.zip(ty).map(|(a, c)| a / c);
            let (rx, ry) = (rate.value(x.row, x.rec), rate.value(y.row, y.rec));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&params_text(x.rec)),
                resources_label(&x.rec.point.resources),
                x.row.workers,
                tx.map_or_else(|| "–".into(), super::secs),
                ty.map_or_else(|| "–".into(), super::secs),
                ratio(speedup),
                opt_sig(rx),
                opt_sig(ry),
                ratio(rx.zip(ry).map(|(a, c)| c / a)),
                opt_sig(x.row.speedup),
                opt_sig(y.row.speedup),
                cell(&conditions(&runs[base], x.row)),
                cell(&conditions(&runs[other], y.row)),
            );
            rows_written += 1;
        }
        md.push('\n');
        rows_written
    }

    /// The overlay plots of study `name` over the runs `plotted`, linked from compare.md; a
    /// plot that cannot be drawn is said there and returned as an error by [`write`].
    fn plots(&mut self, s_idx: usize, name: &str, plotted: &[usize]) {
        let run_series: Vec<RunSeries<'_, '_>> = plotted
            .iter()
            .map(|&i| RunSeries {
                label: &self.runs[i].label,
                series: self.all_series[i]
                    .iter()
                    .filter(|s| s.study_name == name)
                    .collect(),
            })
            .collect();
        let (plots_dir, opts) = (&self.plots_dir, self.opts);
        let (md, files, plot_failures) = (&mut self.md, &mut self.files, &mut self.plot_failures);
        match compare_plots(plots_dir, s_idx, name, &run_series, opts) {
            Ok(overlay) => {
                for p in &overlay.plots {
                    let _ = writeln!(md, "![{}](plots/{}.png)\n", cell(&p.title), p.stem);
                }
                for why in &overlay.left_out {
                    let _ = writeln!(md, "{why}\n");
                }
                files.extend(overlay.plots.into_iter().flat_map(|p| p.files));
            }
            Err(e) => {
                let _ = writeln!(
                    md,
                    "**Plots missing**: {}; the tables are complete. Check free space and permissions of `{}`, then compare again.\n",
                    cell(&format!("{e:#}")),
                    plots_dir.display()
                );
                plot_failures.push(format!("drawing the plots of study \"{name}\": {e:#}"));
            }
        }
    }

    /// The "Not compared" list, then compare.md written; an error if a plot could not be drawn.
    fn finish(self, out: &Path) -> Result<Outcome> {
        let Comparison {
            mut md,
            not_compared,
            mut files,
            compared,
            plot_failures,
            ..
        } = self;
        md.push_str("## Not compared\n\n");
        if not_compared.is_empty() {
            md.push_str("Every study and point was compared.\n");
        } else {
            for line in &not_compared {
                let _ = writeln!(md, "- {}", cell(line));
            }
        }
        let path = out.join("compare.md");
        write_atomic(&path, md.as_bytes())?;
        files.insert(0, path);
        // compare.md says which plots are missing; the command must say it too, and fail.
        if !plot_failures.is_empty() {
            anyhow::bail!("{}", plot_failures.join("\n"));
        }
        Ok(Outcome {
            files,
            compared,
            not_compared,
        })
    }
}

/// Up to three points of a run as `parameters resources`, then how many more.
fn describe_points(m: &BTreeMap<String, Side<'_>>) -> String {
    let mut v: Vec<String> = m
        .values()
        .map(|s| {
            format!(
                "{} {}",
                params_text(s.rec),
                resources_label(&s.rec.point.resources)
            )
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if v.len() > 3 {
        let more = v.len() - 3;
        v.truncate(3);
        v.push(format!("{more} more"));
    }
    v.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_and_ratios_have_three_significant_digits() {
        assert_eq!(opt_sig(Some(0.003_141_5)), "0.00314");
        assert_eq!(opt_sig(None), "–");
        assert_eq!(ratio(Some(0.5)), "0.500×");
        assert_eq!(ratio(None), "–");
    }

    #[test]
    fn the_rate_is_the_one_the_study_records() {
        use crate::plan::Scaling;
        use crate::report::test_support::{record, with_metric};
        let gemm = record(0, "gemm", Scaling::Strong, 1, 100, &[0.5, 0.5, 0.5]);
        let triad = record(
            0,
            "stream.triad",
            Scaling::Strong,
            1,
            1000,
            &[0.5, 0.5, 0.5],
        );
        let mut fit = record(0, "forest.fit", Scaling::Strong, 1, 100, &[2.0, 2.0, 2.0]);
        fit.work = crate::workload::Work::default();
        let fit = with_metric(fit, "fits", &[10.0, 10.0, 10.0]);
        let recs = [gemm, triad, fit];
        let rows = summary_rows("x", &recs, &series(&recs));
        let unit_and_value = |i: usize| {
            let r = Rate::of_study(&[&recs[i]]);
            (r.unit(), r.value(&rows[i], &recs[i]))
        };
        assert_eq!(unit_and_value(0), ("GFLOP/s", Some(2e6 / 0.5 / 1e9)));
        assert_eq!(unit_and_value(1), ("GB/s", Some(24_000.0 / 0.5 / 1e9)));
        // Ten fits per repetition of two seconds.
        assert_eq!(unit_and_value(2), ("fits/s", Some(5.0)));
    }

    #[test]
    fn machines_are_named_where_the_points_ran() {
        use crate::plan::Scaling;
        use crate::report::test_support::record;
        let dir = tempfile::tempdir().unwrap();
        let on = |host: &str| {
            let mut r = record(0, "gemm", Scaling::Strong, 1, 64, &[1.0]);
            r.host = host.into();
            r
        };
        let m = Machine {
            host: "laptop".into(),
            cpu_model: "AMD Ryzen 7 7840U ".into(),
            cores: 16,
            ..Machine::default()
        };
        let local = [on("laptop"), on("laptop")];
        assert_eq!(
            machine_label(dir.path(), Some(&m), &local),
            "laptop: AMD Ryzen 7 7840U (16 cores)"
        );
        // Submitted from a login node, run on compute nodes that recorded no machine.
        let login = Machine {
            host: "login1".into(),
            ..m.clone()
        };
        let slurm = [on("n03"), on("n01"), on("n02")];
        assert_eq!(
            machine_label(dir.path(), Some(&login), &slurm),
            "n01…n03 (3 nodes): CPU not recorded (run made on login1)"
        );
        assert_eq!(
            machine_label(dir.path(), None, &local[..1]),
            "laptop: machine unknown"
        );
        // The compute nodes recorded their machine: that CPU, not the login node's.
        let nodes = dir.path().join(crate::machine::RUN_MACHINES_DIR);
        std::fs::create_dir_all(&nodes).unwrap();
        let node = Machine {
            host: "n01".into(),
            cpu_model: "Intel Xeon Gold 6248".into(),
            cores: 40,
            fma_measured: true,
            ..Machine::default()
        };
        std::fs::write(nodes.join("n01.json"), serde_json::to_vec(&node).unwrap()).unwrap();
        assert_eq!(
            machine_label(dir.path(), Some(&login), &slurm),
            "n01…n03 (3 nodes): Intel Xeon Gold 6248 (40 cores)"
        );
        let other = Machine {
            host: "n02".into(),
            cpu_model: "AMD EPYC 7742".into(),
            cores: 128,
            ..node
        };
        std::fs::write(nodes.join("n02.json"), serde_json::to_vec(&other).unwrap()).unwrap();
        assert_eq!(
            machine_label(dir.path(), Some(&login), &slurm),
            "n01…n03 (3 nodes): mixed nodes (Intel Xeon Gold 6248 (40 cores); AMD EPYC 7742 (128 cores))"
        );
        std::fs::remove_dir_all(&nodes).unwrap();
        let mut gpu = on("gpu7");
        gpu.devices.push(crate::device::DevicePeaks {
            name: "NVIDIA H100 80GB HBM3".into(),
            ..Default::default()
        });
        let gm = Machine {
            host: "gpu7".into(),
            ..m
        };
        assert_eq!(
            machine_label(dir.path(), Some(&gm), &[gpu]),
            "gpu7: AMD Ryzen 7 7840U (16 cores) + NVIDIA H100 80GB HBM3"
        );
    }
}

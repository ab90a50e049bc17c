//! Run-time estimates and the text of `scalelab plan`.
//!
//! The estimate of one point is roofline-like: each repetition (warm-ups included) takes the longer
//! of its compute time and its memory time,
//!
//! ```text
//! t = launch_s + (warmup + repetitions) × max(flops / (gflops_per_thread·1e9 × p × eff),
//!                                             bytes / (min(gbps_per_thread × p, gbps_total)·1e9 × eff))
//! ```
//!
//! with p = [`Resources::workers`](super::Resources::workers) and eff the workload's
//! `expected_efficiency`. A workload parameter called `seconds` (`debug.sleep`) adds that many
//! seconds per repetition. It is meant to tell minutes from hours, nothing finer.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::{Plan, Point, StudyPoints, DESCRIBE_ROWS};
use crate::value::Value;
use crate::workload::{self, Workload};

/// Machine rates the estimate assumes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Sustained f64 GFLOP/s of one thread.
    pub gflops_per_thread: f64,
    /// Memory bandwidth one thread can draw, GB/s.
    pub gbps_per_thread: f64,
    /// Memory bandwidth of the whole machine, GB/s (threads share it).
    pub gbps_total: f64,
    /// Seconds to start a point's process and prepare its problem.
    pub launch_s: f64,
}

/// A modest current x86 server core: 10 GFLOP/s and 10 GB/s per thread, 50 GB/s in all, 0.2 s per
/// launch. `scalelab calibrate` can replace these with measured rates.
impl Default for Rates {
    fn default() -> Self {
        Rates {
            gflops_per_thread: 10.0,
            gbps_per_thread: 10.0,
            gbps_total: 50.0,
            launch_s: 0.2,
        }
    }
}

/// Estimated wall-clock seconds of one point (see the module documentation). A point whose
/// workload is not in the registry counts only its launch.
pub fn estimate_seconds(point: &Point, rates: &Rates) -> f64 {
    match point.workload() {
        Some(w) => estimate_with(w, point, rates),
        None => rates.launch_s.max(0.0),
    }
}

/// [`estimate_seconds`] for a point of workload `w`.
pub fn estimate_with(w: &dyn Workload, point: &Point, rates: &Rates) -> f64 {
    let work = w.work_for(&point.params_with_data_path(), &point.resources);
    let p = point.resources.workers().max(1) as f64;
    let eff = w.expected_efficiency(&point.params);
    let eff = if eff.is_finite() && eff > 0.0 {
        eff.min(1.0)
    } else {
        0.5
    };
    let compute = rate_time(work.flops, rates.gflops_per_thread * p * eff);
    let memory = rate_time(
        work.bytes,
        (rates.gbps_per_thread * p).min(rates.gbps_total) * eff,
    );
    let sleep = match point.params.get("seconds") {
        Some(Value::Float(s)) if s.is_finite() && *s > 0.0 => *s,
        _ => 0.0,
    };
    let runs = f64::from(point.warmup) + f64::from(point.repetitions);
    rates.launch_s.max(0.0) + runs * (compute.max(memory) + sleep)
}

/// Seconds to do `amount` (flops or bytes) at `giga_per_s` × 10^9 per second; 0 without a rate.
fn rate_time(amount: f64, giga_per_s: f64) -> f64 {
    if amount > 0.0 && giga_per_s > 0.0 && giga_per_s.is_finite() {
        amount / (giga_per_s * 1e9)
    } else {
        0.0
    }
}

/// One column of a study's table in `scalelab plan`: its header and the cells of the rows shown.
struct Column {
    header: String,
    cells: Vec<String>,
    right: bool,
}

/// What `scalelab plan` says about one study, computed before it is laid out.
struct StudySummary<'a> {
    points: StudyPoints<'a>,
    /// Estimated seconds of the whole study.
    seconds: f64,
    /// `key=value` of the parameters that do not vary.
    fixed: Vec<String>,
    /// `id`, the resources and parameters that vary, and `estimate`.
    columns: Vec<Column>,
    /// The workload's plan notes, each once.
    notes: Vec<String>,
    /// Points that run more workers than this machine has cores.
    oversubscribed: usize,
}

/// The text of [`Plan::describe`]: computed per study ([`summarize`]), then laid out.
pub(super) fn describe(plan: &Plan, rates: &Rates) -> String {
    let studies = plan.studies();
    let summaries: Vec<StudySummary> = studies.iter().map(|s| summarize(*s, rates)).collect();
    let mut out = String::new();
    for (n, summary) in summaries.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        write_study(&mut out, n, summaries.len(), summary);
    }
    if !summaries.is_empty() {
        out.push('\n');
    }
    let total_s: f64 = summaries.iter().map(|s| s.seconds).sum();
    let _ = writeln!(
        out,
        "{} point{} in {} stud{}; estimated run time ≈ {} (rough: {} GFLOP/s and {} GB/s per thread, at most {} GB/s in all, {} s per launch, warm-ups included)",
        plan.points.len(),
        crate::units::plural(plan.points.len()),
        summaries.len(),
        if summaries.len() == 1 { "y" } else { "ies" },
        crate::units::duration(total_s),
        crate::units::sig3_trimmed(rates.gflops_per_thread),
        crate::units::sig3_trimmed(rates.gbps_per_thread),
        crate::units::sig3_trimmed(rates.gbps_total),
        crate::units::sig3_trimmed(rates.launch_s)
    );
    out
}

/// Estimate every point of a study and choose its columns: resources that vary or differ from
/// their default (threads always), then the parameters that vary; parameters that do not vary
/// go in the header, those that apply ([`workload::param_applies`]).
fn summarize<'a>(s: StudyPoints<'a>, rates: &Rates) -> StudySummary<'a> {
    let w = workload::find(s.workload);
    let estimate = |p: &Point| match w {
        Some(w) => estimate_with(w, p, rates),
        None => rates.launch_s.max(0.0),
    };
    let times: Vec<f64> = s.points.iter().map(estimate).collect();
    let seconds: f64 = times.iter().sum();
    let shown = || s.points.iter().take(DESCRIBE_ROWS);
    let mut columns = vec![Column {
        header: "id".into(),
        cells: shown().map(|p| p.id.clone()).collect(),
        right: false,
    }];
    columns.extend(resource_columns(&s));
    let first = &s.points[0];
    let mut fixed = Vec::new();
    for (key, value) in &first.params.0 {
        if s.points.iter().any(|p| p.params.get(key) != Some(value)) {
            columns.push(Column {
                header: key.clone(),
                cells: shown()
                    .map(|p| p.params.get(key).map(|v| v.to_string()).unwrap_or_default())
                    .collect(),
                right: false,
            });
        } else if s
            .points
            .iter()
            .any(|p| workload::param_applies(s.workload, &p.params, key))
        {
            // Like the report's tables: a parameter that means nothing here (a synthetic-data
            // setting beside a CSV dataset, an empty optional text) is left out.
            fixed.push(format!("{key}={value}"));
        }
    }
    let mut estimates: Vec<String> = times
        .iter()
        .take(DESCRIBE_ROWS)
        .map(|&t| crate::units::duration(t))
        .collect();
    let oversubscribed = s.points.iter().filter(|p| p.oversubscribed).count();
    if oversubscribed > 0 {
        for (cell, p) in estimates.iter_mut().zip(s.points) {
            if p.oversubscribed {
                cell.push_str("  (oversubscribed)");
            }
        }
    }
    columns.push(Column {
        header: "estimate".into(),
        cells: estimates,
        right: false,
    });
    let mut notes: Vec<String> = Vec::new();
    for p in s.points {
        for note in w.map(|w| w.plan_notes(&p.params)).unwrap_or_default() {
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    StudySummary {
        points: s,
        seconds,
        fixed,
        columns,
        notes,
        oversubscribed,
    }
}

/// The resource columns of a study: `threads` always, the others when they vary or differ from
/// their default.
fn resource_columns(s: &StudyPoints<'_>) -> Vec<Column> {
    type Get = fn(&Point) -> u32;
    let resources: [(&str, Get, u32); 4] = [
        ("nodes", |p| p.resources.nodes, 1),
        ("ranks", |p| p.resources.ranks, 1),
        ("threads", |p| p.resources.threads, 1),
        ("gpus", |p| p.resources.gpus, 0),
    ];
    let first = &s.points[0];
    resources
        .into_iter()
        .filter(|(name, get, default)| {
            *name == "threads"
                || s.points
                    .iter()
                    .any(|p| get(p) != get(first) || get(p) != *default)
        })
        .map(|(name, get, _)| Column {
            header: name.into(),
            cells: s
                .points
                .iter()
                .take(DESCRIBE_ROWS)
                .map(|p| get(p).to_string())
                .collect(),
            right: true,
        })
        .collect()
}

/// Lay out one study: its header line, the fixed parameters, the table of its first
/// [`DESCRIBE_ROWS`] points, and its notes.
fn write_study(out: &mut String, n: usize, count: usize, summary: &StudySummary<'_>) {
    let s = &summary.points;
    let _ = writeln!(
        out,
        "study {} of {}: {} ({}), {} scaling, {} point{}, ≈ {}",
        n + 1,
        count,
        s.name,
        s.workload,
        s.scaling.as_str(),
        s.points.len(),
        crate::units::plural(s.points.len()),
        crate::units::duration(summary.seconds)
    );
    if !summary.fixed.is_empty() {
        let _ = writeln!(out, "  fixed: {}", summary.fixed.join(", "));
    }
    write_table(out, &summary.columns, s.points.len().min(DESCRIBE_ROWS));
    if s.points.len() > DESCRIBE_ROWS {
        let _ = writeln!(out, "  ... {} more points", s.points.len() - DESCRIBE_ROWS);
    }
    for note in &summary.notes {
        let _ = writeln!(out, "  {note}");
    }
    let oversubscribed = summary.oversubscribed;
    if oversubscribed > 0 {
        let _ = writeln!(
            out,
            "  {oversubscribed} point{} use more threads than this machine has cores (oversubscribe = true); their times are not comparable",
            crate::units::plural(oversubscribed)
        );
    }
}

/// A header row and `rows` rows, each column as wide as its widest cell, numbers right-aligned,
/// indented by two spaces, trailing spaces trimmed.
fn write_table(out: &mut String, columns: &[Column], rows: usize) {
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            c.cells
                .iter()
                .map(|cell| cell.chars().count())
                .chain([c.header.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let row = |cells: Vec<&str>| {
        let mut line = String::from(" ");
        for ((cell, width), c) in cells.iter().zip(&widths).zip(columns) {
            if c.right {
                let _ = write!(line, " {cell:>width$}");
            } else {
                let _ = write!(line, " {cell:<width$}");
            }
        }
        line.trim_end().to_string()
    };
    out.push_str(&row(columns.iter().map(|c| c.header.as_str()).collect()));
    out.push('\n');
    for i in 0..rows {
        out.push_str(&row(columns.iter().map(|c| c.cells[i].as_str()).collect()));
        out.push('\n');
    }
}

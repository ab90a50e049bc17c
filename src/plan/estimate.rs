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

use super::{Plan, Point, DESCRIBE_ROWS};
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
    let work = w.work_for(&point.params, &point.resources);
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

/// A duration for people: `0.25 s`, `3 min 05 s` ([`crate::units::duration`]).
pub fn format_duration(seconds: f64) -> String {
    crate::units::duration(seconds)
}

/// A rate with about three significant digits: `83.1`, `20`, `0.05`.
fn short(x: f64) -> String {
    let text = if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// The text of [`Plan::describe`].
pub(super) fn describe(plan: &Plan, rates: &Rates) -> String {
    let mut out = String::new();
    let studies = plan.studies();
    let mut total_s = 0.0;
    for (n, s) in studies.iter().enumerate() {
        let w = workload::find(s.workload);
        let estimate = |p: &Point| match w {
            Some(w) => estimate_with(w, p, rates),
            None => rates.launch_s.max(0.0),
        };
        let times: Vec<f64> = s.points.iter().map(estimate).collect();
        let study_s: f64 = times.iter().sum();
        total_s += study_s;
        let first = &s.points[0];

        // Columns: resources that vary or differ from their default (threads always), then the
        // parameters that vary; parameters that do not vary go in the header.
        type Get = fn(&Point) -> u32;
        let resources: [(&str, Get, u32); 4] = [
            ("nodes", |p| p.resources.nodes, 1),
            ("ranks", |p| p.resources.ranks, 1),
            ("threads", |p| p.resources.threads, 1),
            ("gpus", |p| p.resources.gpus, 0),
        ];
        // (header, cells, right-aligned)
        let mut columns: Vec<(String, Vec<String>, bool)> = vec![("id".into(), Vec::new(), false)];
        for (name, get, default) in resources {
            let shown = name == "threads"
                || s.points
                    .iter()
                    .any(|p| get(p) != get(first) || get(p) != default);
            if shown {
                let cells = s
                    .points
                    .iter()
                    .take(DESCRIBE_ROWS)
                    .map(|p| get(p).to_string())
                    .collect();
                columns.push((name.into(), cells, true));
            }
        }
        let mut fixed = Vec::new();
        for (key, value) in &first.params.0 {
            if s.points.iter().any(|p| p.params.get(key) != Some(value)) {
                let cells = s
                    .points
                    .iter()
                    .take(DESCRIBE_ROWS)
                    .map(|p| p.params.get(key).map(|v| v.to_string()).unwrap_or_default());
                columns.push((key.clone(), cells.collect(), false));
            } else {
                fixed.push(format!("{key}={value}"));
            }
        }
        columns[0].1 = s
            .points
            .iter()
            .take(DESCRIBE_ROWS)
            .map(|p| p.id.clone())
            .collect();
        let mut estimates: Vec<String> = times
            .iter()
            .take(DESCRIBE_ROWS)
            .map(|&t| format_duration(t))
            .collect();
        let oversubscribed = s.points.iter().filter(|p| p.oversubscribed).count();
        if oversubscribed > 0 {
            for (cell, p) in estimates.iter_mut().zip(s.points) {
                if p.oversubscribed {
                    cell.push_str("  (oversubscribed)");
                }
            }
        }
        columns.push(("estimate".into(), estimates, false));

        if n > 0 {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "study {} of {}: {} ({}), {} scaling, {} point{}, ≈ {}",
            n + 1,
            studies.len(),
            s.name,
            s.workload,
            s.scaling.as_str(),
            s.points.len(),
            if s.points.len() == 1 { "" } else { "s" },
            format_duration(study_s)
        );
        if !fixed.is_empty() {
            let _ = writeln!(out, "  fixed: {}", fixed.join(", "));
        }
        let widths: Vec<usize> = columns
            .iter()
            .map(|(h, cells, _)| {
                cells
                    .iter()
                    .map(|c| c.chars().count())
                    .chain([h.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let row = |cells: Vec<&str>| {
            let mut line = String::from(" ");
            for ((cell, width), (_, _, right)) in cells.iter().zip(&widths).zip(&columns) {
                if *right {
                    let _ = write!(line, " {cell:>width$}");
                } else {
                    let _ = write!(line, " {cell:<width$}");
                }
            }
            line.trim_end().to_string()
        };
        out.push_str(&row(columns.iter().map(|(h, _, _)| h.as_str()).collect()));
        out.push('\n');
        for i in 0..s.points.len().min(DESCRIBE_ROWS) {
            out.push_str(&row(columns
                .iter()
                .map(|(_, cells, _)| cells[i].as_str())
                .collect()));
            out.push('\n');
        }
        if s.points.len() > DESCRIBE_ROWS {
            let _ = writeln!(out, "  ... {} more points", s.points.len() - DESCRIBE_ROWS);
        }
        let mut notes: Vec<String> = Vec::new();
        for p in s.points {
            for note in w.map(|w| w.plan_notes(&p.params)).unwrap_or_default() {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
        }
        for note in notes {
            let _ = writeln!(out, "  {note}");
        }
        if oversubscribed > 0 {
            let _ = writeln!(
                out,
                "  {oversubscribed} point{} use more threads than this machine has cores (oversubscribe = true); their times are not comparable",
                if oversubscribed == 1 { "" } else { "s" }
            );
        }
    }
    if !studies.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} point{} in {} stud{}; estimated run time ≈ {} (rough: {} GFLOP/s and {} GB/s per thread, at most {} GB/s in all, {} s per launch, warm-ups included)",
        plan.points.len(),
        if plan.points.len() == 1 { "" } else { "s" },
        studies.len(),
        if studies.len() == 1 { "y" } else { "ies" },
        format_duration(total_s),
        short(rates.gflops_per_thread),
        short(rates.gbps_per_thread),
        short(rates.gbps_total),
        short(rates.launch_s)
    );
    out
}

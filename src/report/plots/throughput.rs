//! The throughput chart: GFLOP/s or GB/s against the problem size (a strong study over several
//! sizes, one line per parameters and resources) or against p (otherwise, one line per series).
//!
//! A dashed line marks the theoretical peak (peak FLOP/s per core × p) only where it bounds the
//! workload: dense linear algebra on the CPU (`gemm`, `hpl`), whose flops are fused multiply-adds.
//! Monte Carlo π, a stencil or a reduction never approach the FMA peak, and a line there would only
//! squash the data. When the peak is far above the data (over 8×), the y axis turns logarithmic
//! so both stay readable.

use std::collections::BTreeMap;

use plotters::style::RGBColor;

use super::axis::{sig3, Axis, Scale};
use super::labels;
use super::render::{Chart, Line, Reference, REF_GREY};
use super::Study;
use crate::machine::Machine;
use crate::plan::Scaling;
use crate::report::scaling::resources_label;
use crate::report::Throughput;

/// Whether the FMA peak bounds `workload`, as the workload declares (see the module
/// documentation).
pub(super) fn fma_bound(workload: &str) -> bool {
    crate::workload::reporting(workload).fma_bound
}

/// One line's points: (x, median rate, whisker low, whisker high, hollow).
type Points = Vec<(f64, f64, f64, f64, bool)>;

/// The throughput chart of a study (see the module documentation), in steps: the measured rates
/// grouped into lines ([`Rates::of`]), the x axis, the peak lines, the y axis, the lines with
/// their labels, then the words.
pub(super) fn chart(st: &mut Study<'_, '_>, machine: &Machine) -> Option<Chart> {
    let first = st.series.first()?;
    let rec0 = first.base_point().record;
    let metric = Throughput::for_work(&rec0.work)?;
    let with_peak = metric == Throughput::Gflops
        && machine.peak_gflops_per_core > 0.0
        && rec0.counts_against_cpu_peaks()
        && fma_bound(st.workload);
    let peak = machine.peak_gflops_per_core;

    let rates = Rates::of(st, metric);
    if rates.groups.is_empty() {
        return None;
    }
    let by_size = rates.by_size;
    let x = x_axis(&rates);
    let mut refs = if with_peak {
        peak_lines(peak, &rates, &x)
    } else {
        Vec::new()
    };
    let y = y_axis(&rates, &mut refs);
    let (subtitle, lines) = lines(st, &rates);
    let peak_note = if with_peak {
        format!(
            " Dashed: theoretical peak {} GFLOP/s per core ({} × {} FMA × 2 × {:.2} GHz) × p.",
            sig3(peak),
            machine.simd_f64_lanes,
            machine.fma_units,
            machine.clock()
        )
    } else if metric == Throughput::Gflops
        && fma_bound(st.workload)
        && rec0.counts_against_cpu_peaks()
    {
        " Peak unknown for this machine.".into()
    } else {
        String::new()
    };
    let unit = metric.unit();
    let (title, x_desc) = if by_size {
        let unit_name = rec0.size_unit.trim();
        (
            format!("{}: {unit} vs problem size", st.name),
            if !unit_name.is_empty() && unit_name.len() <= 2 {
                format!("problem size {unit_name}")
            } else {
                "problem size".to_string()
            },
        )
    } else {
        (
            format!("{}: {unit} vs {}", st.name, st.resource_axis()),
            st.resource_axis(),
        )
    };
    let mut t = st.chart(
        title,
        format!(
            "{unit} = work / time. {}{peak_note}{}",
            st.opts.spread.caption(),
            st.hollow_note()
        ),
    );
    if let Some(s) = subtitle {
        t.subtitle = s;
    }
    Some(t.chart((x_desc, x), (unit.to_string(), y), lines, refs))
}

/// The measured rates of a study, grouped into the chart's lines.
struct Rates {
    /// Against the problem size (a strong study over several sizes), else against p.
    by_size: bool,
    /// Line key -> points.
    groups: BTreeMap<String, Points>,
    /// The line keys in order of first appearance, with each key's label parts (by size).
    order: Vec<(String, Vec<String>)>,
    /// The worker counts of the points, sorted, once each.
    workers: Vec<u64>,
    /// Sizes as the manifest wrote them, for the x axis's tick labels (by size).
    names: Vec<(f64, String)>,
}

impl Rates {
    /// Every point's rate of `metric` (work / median time, GFLOP/s or GB/s) with its whiskers:
    /// by size, one line per parameters and resources; otherwise one line per series.
    fn of(st: &Study<'_, '_>, metric: Throughput) -> Rates {
        let mut sizes: Vec<u64> = st
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.record.size))
            .collect();
        sizes.sort_unstable();
        sizes.dedup();
        let by_size = st.series[0].scaling == Scaling::Strong && sizes.len() >= 2;

        let mut groups: BTreeMap<String, Points> = BTreeMap::new();
        let mut order: Vec<(String, Vec<String>)> = Vec::new();
        let mut workers: Vec<u64> = Vec::new();
        let mut names: Vec<(f64, String)> = Vec::new();
        for (i, s) in st.series.iter().enumerate() {
            for p in &s.points {
                let w = metric.work(&p.record.work);
                if w <= 0.0 {
                    continue;
                }
                let (key, parts, x) = if by_size {
                    let mut parts = labels::params(p.record);
                    parts.push(resources_label(&p.record.point.resources));
                    if let Some(v) = labels::size_value(p.record) {
                        names.push((p.record.size as f64, v));
                    }
                    (parts.join(" "), parts, p.record.size as f64)
                } else {
                    (st.labels[i].clone(), Vec::new(), p.workers as f64)
                };
                if !groups.contains_key(&key) {
                    order.push((key.clone(), parts));
                }
                let rate = w / p.summary.median / 1e9;
                let (lo, hi) = st.opts.spread.of_rate(p, rate);
                groups
                    .entry(key)
                    .or_default()
                    .push((x, rate, lo, hi, Study::hollow(p)));
                workers.push(p.workers);
            }
        }
        workers.sort_unstable();
        workers.dedup();
        Rates {
            by_size,
            groups,
            order,
            workers,
            names,
        }
    }
}

/// The x axis: the problem size (log₂, or log₁₀ over three decades or more, ticks named as the
/// manifest wrote the sizes) or p (log₂).
fn x_axis(rates: &Rates) -> Axis {
    let xs: Vec<f64> = rates.groups.values().flatten().map(|g| g.0).collect();
    let x_scale = if rates.by_size {
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        if hi / lo >= 1000.0 {
            Scale::Log10
        } else {
            Scale::Log2
        }
    } else {
        Scale::Log2
    };
    Axis::measured(xs.iter().copied(), x_scale).named(rates.names.clone())
}

/// The dashed theoretical peak lines of `peak` GFLOP/s per core: by size, one per worker count
/// (the four largest, listed from the smallest); against p, one sloped line, peak × p.
fn peak_lines(peak: f64, rates: &Rates, x: &Axis) -> Vec<Reference> {
    let mut refs = Vec::new();
    if rates.by_size {
        // The four largest worker counts, listed from the smallest.
        let mut shown: Vec<u64> = rates.workers.iter().rev().take(4).copied().collect();
        shown.reverse();
        for (i, p) in shown.iter().enumerate() {
            let v = peak * *p as f64;
            refs.push(Reference {
                label: format!("theoretical peak, p={p}: {} GFLOP/s", sig3(v)),
                points: vec![(x.lo, v), (x.hi, v)],
                color: [
                    RGBColor(150, 150, 150),
                    REF_GREY,
                    RGBColor(170, 170, 170),
                    RGBColor(120, 120, 120),
                ][i],
            });
        }
    } else {
        refs.push(Reference {
            label: format!("theoretical peak: {} GFLOP/s per core × p", sig3(peak)),
            points: vec![(x.lo, peak * x.lo), (x.hi, peak * x.hi)],
            color: REF_GREY,
        });
    }
    refs
}

/// The y axis: linear from 0, or log₁₀ when the peak lines `refs` are far above the data (over
/// 8×), then with the sloped peak line clamped inside the plot.
fn y_axis(rates: &Rates, refs: &mut [Reference]) -> Axis {
    let groups = &rates.groups;
    let measured_max = groups
        .values()
        .flatten()
        .map(|g| g.3.max(g.1))
        .fold(0.0f64, f64::max);
    let ref_max = refs
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y = if ref_max > 8.0 * measured_max && measured_max > 0.0 {
        let vals = groups
            .values()
            .flatten()
            .flat_map(|g| [g.1, g.2, g.3])
            .chain([ref_max]);
        Axis::fit(vals, Scale::Log10, false)
    } else {
        Axis::fit(
            groups
                .values()
                .flatten()
                .flat_map(|g| [g.1, g.3])
                .chain([ref_max, 0.0]),
            Scale::Linear,
            true,
        )
    };
    if y.scale == Scale::Log10 {
        // Keep the sloped peak line inside the plot.
        for r in refs.iter_mut() {
            for pt in &mut r.points {
                pt.1 = pt.1.clamp(y.lo, y.hi);
            }
        }
    }
    y
}

/// The chart's lines, each sorted by x, and the subtitle: by size, the lines are labelled by
/// what varies between them, the rest is the subtitle, and they get colours of their own (they
/// are not the study's series); otherwise each line is a series, in its series' colour.
fn lines(st: &mut Study<'_, '_>, rates: &Rates) -> (Option<String>, Vec<Line>) {
    let (order, by_size) = (&rates.order, rates.by_size);
    let (subtitle, line_labels): (Option<String>, Vec<String>) = if by_size {
        let parts: Vec<Vec<String>> = order.iter().map(|(_, p)| p.clone()).collect();
        let (shared, own) = labels::split_shared(&parts);
        (
            Some(labels::subtitle(st.workload, &shared)),
            own.iter().map(|o| o.join(", ")).collect(),
        )
    } else {
        (None, order.iter().map(|(k, _)| k.clone()).collect())
    };
    // By size the lines are not the study's series: they get their own colours, from the first.
    let mut own_colors = super::render::Colors::default();
    let lines = order
        .iter()
        .zip(&line_labels)
        .map(|((key, _), label)| {
            let mut pts = rates.groups[key].clone();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Line {
                label: if label.is_empty() {
                    "measured".into()
                } else {
                    label.clone()
                },
                style: if by_size {
                    own_colors.of(key)
                } else {
                    st.colors.of(key)
                },
                markers_only: false,
                points: pts.iter().map(|g| (g.0, g.1)).collect(),
                band: pts.iter().map(|g| (g.0, g.2, g.3)).collect(),
                hollow: pts.iter().map(|g| g.4).collect(),
            }
        })
        .collect();
    (subtitle, lines)
}

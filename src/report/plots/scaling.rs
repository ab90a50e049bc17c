//! Speedup and parallel-efficiency charts against the workers p.
//!
//! Strong studies get both; weak studies get the efficiency (their Gustafson speedup is a
//! reading of it). A series that sweeps both ranks and threads (hybrid MPI × threads) is drawn as
//! one line per threads-per-rank value, so that points with equal p but different splits
//! (2 ranks × 1 thread, 1 rank × 2 threads) are not joined into a zig-zag. The y axis covers the
//! medians, the whiskers and the ideal line within the measured p, nothing more.

use super::axis::{Axis, Scale};
use super::render::{Chart, Line, Reference};
use super::{secs, Study};
use crate::plan::Scaling;
use crate::report::scaling::ScalingPoint;
use plotters::style::BLACK;

/// The caption's first sentence: the base case.
fn base_caption(st: &Study<'_, '_>, what: &str) -> String {
    let text = match st.series {
        [s] => {
            let b = s.base_point();
            format!(
                "Base case: p0 = {}, median {} ({} reps). {what}",
                b.workers,
                secs(b.summary.median),
                b.summary.n
            )
        }
        _ => format!(
            "Base case: the smallest p of each series (p0 and median time in the legend). {what}"
        ),
    };
    format!("{text} {}{}", st.opts.spread.caption(), st.hollow_note())
}

/// The lines of a speedup or efficiency chart (see the module documentation). `value` gives the
/// y of a point; its whisker follows from the point's spread of times.
fn lines(st: &mut Study<'_, '_>, value: impl Fn(&ScalingPoint<'_>) -> f64) -> Vec<Line> {
    let several = st.series.len() > 1;
    let mut out = Vec::new();
    for (i, s) in st.series.iter().enumerate() {
        let base = s.base_point();
        let own = st.labels[i].clone();
        let base_note = if several {
            format!(" (p0={}: {})", base.workers, secs(base.summary.median))
        } else {
            String::new()
        };
        let label = format!("{}{base_note}", st.label(i, "measured"));
        let mut ranks: Vec<u32> = s
            .points
            .iter()
            .map(|p| p.record.point.resources.ranks)
            .collect();
        let mut threads: Vec<u32> = s
            .points
            .iter()
            .map(|p| p.record.point.resources.threads)
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        threads.sort_unstable();
        threads.dedup();
        let groups: Vec<(String, String, Vec<&ScalingPoint<'_>>)> =
            if ranks.len() > 1 && threads.len() > 1 {
                threads
                    .iter()
                    .enumerate()
                    .map(|(k, &t)| {
                        let per = format!("{t} thread{}/rank", crate::units::plural(t));
                        (
                            if own.is_empty() {
                                format!("{per}{base_note}")
                            } else {
                                format!("{own}, {per}{base_note}")
                            },
                            // The first split keeps the series' colour.
                            if k == 0 {
                                own.clone()
                            } else {
                                format!("{own}\u{1f}{t}")
                            },
                            s.points
                                .iter()
                                .filter(|p| p.record.point.resources.threads == t)
                                .collect(),
                        )
                    })
                    .collect()
            } else {
                vec![(label, own.clone(), s.points.iter().collect())]
            };
        for (label, key, pts) in groups {
            let style = st.colors.of(&key);
            out.push(Line {
                label,
                style,
                markers_only: false,
                points: pts.iter().map(|p| (p.workers as f64, value(p))).collect(),
                band: pts
                    .iter()
                    .map(|p| {
                        let (lo, hi) = st.opts.spread.of_rate(p, value(p));
                        (p.workers as f64, lo, hi)
                    })
                    .collect(),
                hollow: pts.iter().map(|p| Study::hollow(p)).collect(),
            });
        }
    }
    out
}

/// The speedup (strong studies) and efficiency charts of a study that spans at least two p.
pub(super) fn charts(st: &mut Study<'_, '_>) -> Vec<(&'static str, Chart)> {
    let mut out = Vec::new();
    if !st.series.iter().any(|s| s.distinct_workers() >= 2) {
        return out;
    }
    let scaling = st.series[0].scaling;
    let all_p: Vec<f64> = st
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.workers as f64))
        .collect();
    let x_desc = st.resource_axis();
    let name = st.name;
    if scaling == Scaling::Strong {
        let lines = lines(st, |p| p.speedup);
        let x = Axis::measured(all_p.iter().copied(), Scale::Log2);
        let y_vals = lines
            .iter()
            .flat_map(|l| l.band.iter().flat_map(|b| [b.1, b.2]))
            .chain(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)))
            .chain(all_p.iter().copied());
        let y = Axis::tight(y_vals, Scale::Log2);
        // S = p, inside both axes.
        let (from, to) = (x.lo.max(y.lo), x.hi.min(y.hi));
        let t = st.chart(
            format!("{name}: strong-scaling speedup"),
            base_caption(st, "S(p) = T(p0)·p0 / T(p)."),
        );
        out.push((
            "speedup",
            t.chart(
                (x_desc.clone(), x),
                ("speedup S(p)".into(), y),
                lines,
                vec![Reference {
                    label: "ideal: S = p".into(),
                    points: vec![(from, from), (to, to)],
                    color: BLACK,
                }],
            ),
        ));
    }
    let lines = lines(st, |p| p.efficiency);
    let x = Axis::measured(all_p.iter().copied(), Scale::Log2);
    let y_max = lines
        .iter()
        .flat_map(|l| l.band.iter().map(|b| b.2))
        .chain(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1)))
        .fold(1.0f64, f64::max);
    let y = Axis::fit([0.0, y_max, 1.05], Scale::Linear, true).percent();
    let (what, title) = match scaling {
        Scaling::Strong => (
            "E(p) = S(p) / p.",
            format!("{name}: strong-scaling parallel efficiency"),
        ),
        Scaling::Weak => (
            "E(p) = T(p0) / T(p), work per worker fixed.",
            format!("{name}: weak-scaling efficiency"),
        ),
    };
    let t = st.chart(title, base_caption(st, what));
    let ideal = vec![Reference {
        label: "ideal: 100%".into(),
        points: vec![(x.lo, 1.0), (x.hi, 1.0)],
        color: BLACK,
    }];
    out.push((
        "efficiency",
        t.chart((x_desc, x), ("efficiency E(p)".into(), y), lines, ideal),
    ));
    out
}

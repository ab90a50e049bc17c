//! MPI charts: latency and bandwidth against the message size (log–log, one line per resources
//! and parameters), and compute vs communication time against p for studies recording `comm_s`.

use super::axis::{Axis, Scale};
use super::labels;
use super::render::{Chart, Colors, Line, MARKER_SHAPES};
use super::{Spread, Study};
use crate::report::csv::metric_median;
use crate::report::messages::{self, has_metric, MessagePoint, LATENCY_METRIC};

/// The (low, high) of `values` under `spread`.
fn spread_of(spread: Spread, values: &[f64]) -> (f64, f64) {
    match spread {
        Spread::Iqr => (
            crate::stats::quantile(values, 0.25),
            crate::stats::quantile(values, 0.75),
        ),
        Spread::MinMax => (
            values.iter().copied().fold(f64::INFINITY, f64::min),
            values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        ),
    }
}

/// The latency whisker of a point (µs): over its recorded `latency_us`, else over its times per
/// iteration.
fn latency_range(spread: Spread, p: &MessagePoint<'_>) -> (f64, f64) {
    let rec = p.record;
    if p.from_metric {
        let lat: Vec<f64> = rec
            .repetitions
            .iter()
            .filter_map(|r| r.metrics.get(LATENCY_METRIC).copied())
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        if !lat.is_empty() {
            return spread_of(spread, &lat);
        }
        return p.latency_range;
    }
    let times: Vec<f64> = rec.repetitions.iter().map(|r| r.seconds).collect();
    if times.is_empty() {
        return p.latency_range;
    }
    let (lo, hi) = spread_of(spread, &times);
    let per = p.latency_us / metric_or(p);
    (lo * per, hi * per)
}

/// The median time of a point's repetitions (seconds), so that latency = time × (latency/time).
fn metric_or(p: &MessagePoint<'_>) -> f64 {
    let mut t: Vec<f64> = p.record.repetitions.iter().map(|r| r.seconds).collect();
    t.sort_by(f64::total_cmp);
    crate::stats::quantile_sorted(&t, 0.5)
}

/// Latency and bandwidth against message size, in steps: the lines and their labels
/// ([`MessageLines::of`]), the latency lines, then the bandwidth lines where points record a
/// bandwidth; each chart log–log.
pub(super) fn message_charts(st: &mut Study<'_, '_>) -> Vec<(&'static str, Chart)> {
    let points = messages::message_points(st.series);
    message_charts_of(st, points, Colors::default())
}

/// [`message_charts`] of given points: one line per distinct `line` (first appearance first),
/// its style from `colors` keyed by that `line` (the overlays of `scalelab compare` prefix each
/// line with its run and choose the run's colour).
pub(super) fn message_charts_of(
    st: &mut Study<'_, '_>,
    points: Vec<MessagePoint<'_>>,
    mut colors: Colors,
) -> Vec<(&'static str, Chart)> {
    if points.is_empty() {
        return Vec::new();
    }
    let spread = st.opts.spread;
    let keys = MessageLines::of(&points, st.workload);
    let x = Axis::measured(points.iter().map(|p| p.size as f64), Scale::Log2).bytes();
    let from_metric = points.iter().all(|p| p.from_metric);
    let lat_note = if from_metric {
        "Latency: median of the recorded latency_us (ping-pong: one-way, half a round trip; collectives: time per call)."
    } else if points.iter().any(|p| p.from_metric) {
        "Latency: the recorded one-way latency (latency_us) where present, else median time / iterations."
    } else {
        "Latency: median time / iterations (the time of one operation)."
    };
    let lat_lines = latency_lines(&points, &keys, &mut colors, spread);
    let y = Axis::tight(
        lat_lines
            .iter()
            .flat_map(|l| l.band.iter().flat_map(|b| [b.1, b.2]))
            .chain(points.iter().map(|p| p.latency_us)),
        Scale::Log10,
    );
    let mut t = st.chart(
        format!("{}: latency vs message size", st.name),
        format!(
            "{lat_note} {} Log–log axes.{}",
            spread.caption(),
            st.hollow_note()
        ),
    );
    t.subtitle = keys.subtitle.clone();
    let mut charts = vec![(
        "latency",
        t.chart(
            ("message size".into(), x.clone()),
            ("latency (µs)".into(), y),
            lat_lines,
            Vec::new(),
        ),
    )];
    if let Some(lines) = bandwidth_lines(&points, &keys, &mut colors, spread) {
        let y = Axis::tight(
            lines
                .iter()
                .flat_map(|l| l.band.iter().flat_map(|b| [b.1, b.2]))
                .chain(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1))),
            Scale::Log10,
        );
        let mut t = st.chart(
            format!("{}: bandwidth vs message size", st.name),
            format!("Bandwidth = the workload's bytes / median time (GB/s = 1e9 B/s; the ping-pong counts 2 · size · iterations, i.e. size / one-way time). {} Log–log axes.{}", spread.caption(), st.hollow_note()),
        );
        t.subtitle = keys.subtitle;
        charts.push((
            "bandwidth",
            t.chart(
                ("message size".into(), x),
                ("bandwidth (GB/s)".into(), y),
                lines,
                Vec::new(),
            ),
        ));
    }
    charts
}

/// The lines of the message charts: one per resources and parameters (a point's `line`), in
/// order of first appearance, each labelled by what sets it apart; what every line shares goes
/// to the subtitle.
struct MessageLines<'p> {
    order: Vec<&'p str>,
    /// Each line's own label parts, by position in `order`.
    own: Vec<Vec<String>>,
    subtitle: String,
}

impl<'p> MessageLines<'p> {
    fn of(points: &'p [MessagePoint<'_>], workload: &str) -> Self {
        let mut order: Vec<&str> = Vec::new();
        for p in points {
            if !order.contains(&p.line.as_str()) {
                order.push(&p.line);
            }
        }
        // What every line shares goes to the subtitle.
        let parts: Vec<Vec<String>> = order
            .iter()
            .map(|l| l.split(' ').map(str::to_string).collect())
            .collect();
        let (shared, own) = labels::split_shared(&parts);
        let subtitle = labels::subtitle(workload, &shared);
        MessageLines {
            order,
            own,
            subtitle,
        }
    }

    /// The legend label of line `l` ("measured" when nothing sets it apart).
    fn label(&self, l: &str) -> String {
        let i = self.order.iter().position(|o| *o == l).unwrap_or(0);
        let t = self.own[i].join(" ");
        if t.is_empty() {
            "measured".into()
        } else {
            t
        }
    }
}

/// Whether a point is drawn hollow: measured while the machine was disturbed.
fn hollow(p: &MessagePoint<'_>) -> bool {
    p.record.is_disturbed()
}

/// The latency lines (µs), with whiskers from [`latency_range`].
fn latency_lines(
    points: &[MessagePoint<'_>],
    keys: &MessageLines<'_>,
    colors: &mut Colors,
    spread: Spread,
) -> Vec<Line> {
    keys.order
        .iter()
        .map(|&l| {
            let pts: Vec<&MessagePoint<'_>> = points.iter().filter(|p| p.line == l).collect();
            Line {
                label: keys.label(l),
                style: colors.of(l),
                markers_only: false,
                points: pts.iter().map(|p| (p.size as f64, p.latency_us)).collect(),
                band: pts
                    .iter()
                    .map(|p| {
                        let (lo, hi) = latency_range(spread, p);
                        (p.size as f64, lo, hi)
                    })
                    .collect(),
                hollow: pts.iter().map(|p| hollow(p)).collect(),
            }
        })
        .collect()
}

/// The bandwidth lines (GB/s) of the points that record a bandwidth, with whiskers from the
/// spread of their times; `None` when no point does.
fn bandwidth_lines(
    points: &[MessagePoint<'_>],
    keys: &MessageLines<'_>,
    colors: &mut Colors,
    spread: Spread,
) -> Option<Vec<Line>> {
    let bw: Vec<&MessagePoint<'_>> = points
        .iter()
        .filter(|p| p.bandwidth_gbps.is_some())
        .collect();
    if bw.is_empty() {
        return None;
    }
    let lines = keys
        .order
        .iter()
        .map(|&l| {
            let pts: Vec<&&MessagePoint<'_>> = bw.iter().filter(|p| p.line == l).collect();
            let rate = |p: &MessagePoint<'_>| -> Option<(f64, f64, f64)> {
                let v = p.bandwidth_gbps?;
                let times: Vec<f64> = p.record.repetitions.iter().map(|r| r.seconds).collect();
                let (fast, slow) = spread_of(spread, &times);
                let m = metric_or(p);
                Some((v, v * m / slow, v * m / fast))
            };
            Line {
                label: keys.label(l),
                style: colors.of(l),
                markers_only: false,
                points: pts
                    .iter()
                    .filter_map(|p| Some((p.size as f64, rate(p)?.0)))
                    .collect(),
                band: pts
                    .iter()
                    .filter_map(|p| {
                        let (_, lo, hi) = rate(p)?;
                        Some((p.size as f64, lo, hi))
                    })
                    .collect(),
                hollow: pts.iter().map(|p| hollow(p)).collect(),
            }
        })
        .filter(|l| !l.points.is_empty())
        .collect();
    Some(lines)
}

/// Median compute and communication time against p, for studies whose points record `comm_s`.
pub(super) fn comm_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    if !messages::has_comm(st.series) {
        return None;
    }
    // A series measured at one p is a lone marker per quantity, not a line against p (a
    // federated study sweeping twelve settings at 4 clients drew 48 of them in one column, and
    // one zipping sync at 4 ranks with async at 5 drew a column of each): without a series at
    // two p or more, the table's comm share column says it better.
    if st.series.iter().all(|s| s.distinct_workers() < 2) {
        return None;
    }
    let several = st.series.len() > 1;
    // Compute, communication, waiting and total are not the study's series. Up to three series
    // (the marker shapes), each quantity keeps one colour and each series its shape (style
    // `q + colours · i`), so that "communication" reads as one colour whatever the series. With
    // more, shapes would repeat and two series look alike: each series is then a colour and the
    // shape tells the quantity (style `i + colours · q`; the totals, a fourth quantity without a
    // shape, are left to the table); with more series than colours no style tells them apart.
    let colours = super::PALETTE.len();
    let by_series = st.series.len() > MARKER_SHAPES;
    if st.series.len() > colours {
        return None;
    }
    let style = |quantity: usize, series: usize| {
        if by_series {
            series + colours * quantity
        } else {
            quantity + colours * series
        }
    };
    let mut lines = Vec::new();
    let mut all_y = vec![0.0];
    let mut all_p = Vec::new();
    for (i, s) in st.series.iter().enumerate() {
        let label = if several {
            format!(" ({})", st.label(i, &s.workload))
        } else {
            String::new()
        };
        for (q, (what, metric)) in [
            ("communication", messages::COMM_METRIC),
            ("waiting", messages::WAIT_METRIC),
            ("compute", messages::COMPUTE_METRIC),
        ]
        .into_iter()
        .enumerate()
        {
            let pts: Vec<(f64, f64, bool)> = s
                .points
                .iter()
                .filter_map(|p| {
                    Some((
                        p.workers as f64,
                        metric_median(p.record, metric)?,
                        Study::hollow(p),
                    ))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            all_y.extend(pts.iter().map(|p| p.1));
            all_p.extend(pts.iter().map(|p| p.0));
            lines.push(Line {
                style: style(q, i),
                label: format!("{what}{label}"),
                markers_only: false,
                points: pts.iter().map(|p| (p.0, p.1)).collect(),
                band: Vec::new(),
                hollow: pts.iter().map(|p| p.2).collect(),
            });
        }
        if by_series {
            continue;
        }
        let total: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.workers as f64, p.summary.median))
            .collect();
        all_y.extend(total.iter().map(|p| p.1));
        lines.push(Line {
            style: style(3, i),
            label: format!("total (median time){label}"),
            markers_only: false,
            points: total,
            band: Vec::new(),
            hollow: s.points.iter().map(Study::hollow).collect(),
        });
    }
    let x = Axis::measured(all_p, Scale::Log2);
    let y = Axis::fit(all_y, Scale::Linear, true);
    let mut over: Vec<u64> = st
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.record.point.oversubscribed)
        .map(|p| p.workers)
        .collect();
    over.sort_unstable();
    over.dedup();
    let over_note = if over.is_empty() {
        String::new()
    } else {
        let ps: Vec<String> = over.iter().map(|p| p.to_string()).collect();
        format!(
            " Oversubscribed (more ranks × threads than cores, times not comparable): p = {}.",
            ps.join(", ")
        )
    };
    let waiting = if st.series.iter().any(|s| {
        s.points
            .iter()
            .any(|p| has_metric(p.record, messages::WAIT_METRIC))
    }) {
        ", waiting for a slower rank or a neighbour (wait_s, kept out of comm_s)"
    } else {
        ""
    };
    let t = st.chart(
        format!("{}: compute vs communication", st.name),
        format!("Median over the repetitions of the time spent communicating (comm_s){waiting} and computing (compute_s), {}; under MPI each is the maximum over the ranks, so their sum can exceed the total.{over_note}{}", if !by_series { "beside the median total time" } else if waiting.is_empty() { "a colour per line of the study and a shape per quantity (circles communication, triangles compute; the median total time is in the table)" } else { "a colour per line of the study and a shape per quantity (circles communication, squares waiting, triangles compute; the median total time is in the table)" }, st.hollow_note()),
    );
    Some(t.chart(
        (st.resource_axis(), x),
        ("seconds".into(), y),
        lines,
        Vec::new(),
    ))
}

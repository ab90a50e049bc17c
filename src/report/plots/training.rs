//! The loss-against-wall-time chart of training studies: for points that record a `loss_curve`
//! (`mpi.train`: the global batch's training loss after each optimizer step, with the wall time
//! of the repetition at that step), one line per point, so that each strategy and rank count is
//! its own line. The weights after every step are bitwise the serial reference's (the check of
//! every repetition), so every line passes through the same losses step for step: a line that
//! reaches a loss sooner shows the speedup in the terms a training run cares about.
//!
//! Federated runs (`strategy = "fedavg"`) record a `round_curve` instead (`round:loss:accuracy`
//! after each round's average, on the held-out rows): the rounds chart draws the accuracy against
//! the round, one line per point (local epochs, label skew, dropped clients, clients).

use super::axis::{Axis, Scale};
use super::oob::parse_curve;
use super::render::{Chart, Line};
use super::Study;
use crate::resources::Resources;

/// How a recorded curve is read back: its (x, y) points, `None` when any does not read.
type ParseCurve = fn(&str) -> Option<Vec<(f64, f64)>>;

/// One line per point of the study whose last repetition records the curve `detail` (read by
/// `parse`), labelled by its series and `who` (what of the point's resources the lines compare);
/// and whether any of those points was disturbed.
fn point_lines(
    st: &mut Study<'_, '_>,
    detail: &str,
    parse: ParseCurve,
    who: fn(&Resources) -> String,
) -> (Vec<Line>, bool) {
    let mut lines = Vec::new();
    let mut disturbed = false;
    for i in 0..st.series.len() {
        for p in &st.series[i].points {
            let Some(points) = p
                .record
                .repetitions
                .last()
                .and_then(|r| r.details.get(detail))
                .and_then(|text| parse(text))
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let hollow = p.record.is_disturbed();
            disturbed |= hollow;
            let who = who(&p.record.point.resources);
            let key = format!("{}\u{1f}{who}", st.labels[i]);
            let label = if st.labels[i].is_empty() {
                who
            } else {
                format!("{}, {who}", st.labels[i])
            };
            lines.push(Line {
                label,
                style: st.colors.of(&key),
                markers_only: false,
                hollow: vec![hollow; points.len()],
                points,
                band: Vec::new(),
            });
        }
    }
    (lines, disturbed)
}

/// The x and y values of `lines`, for the axes (non-finite y left out).
pub(super) fn extent(lines: &[Line]) -> (Vec<f64>, Vec<f64>) {
    let points = || lines.iter().flat_map(|l| l.points.iter());
    let xs = points().map(|p| p.0).collect();
    let ys = points().map(|p| p.1).filter(|y| y.is_finite()).collect();
    (xs, ys)
}

/// The rank count always (it is what the lines compare), threads and nodes where they are more
/// than one.
fn ranks_label(r: &Resources) -> String {
    let mut label = format!("ranks={}", r.ranks);
    if r.threads > 1 {
        label.push_str(&format!(" threads={}", r.threads));
    }
    if r.nodes > 1 {
        label.push_str(&format!(" nodes={}", r.nodes));
    }
    label
}

pub(super) fn loss_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let (lines, disturbed) = point_lines(st, "loss_curve", parse_curve, ranks_label);
    if lines.is_empty() {
        return None;
    }
    let (mut xs, ys) = extent(&lines);
    xs.push(0.0);
    // Mixed precision: each format and loss scale has its own reference (the same weights at
    // every rank count of that setting), and emulated formats run slower here than on a GPU.
    let formats: std::collections::BTreeSet<String> = st
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter_map(|p| {
            let params = &p.record.point.params;
            let format = params.get("precision")?;
            Some(format!("{format:?} {:?}", params.get("loss_scale")))
        })
        .collect();
    let same = if formats.len() > 1 {
        "The weights after every step are bitwise the serial reference's at the same precision \
         and loss scale: lines of one setting pass through the same losses, and the settings \
         differ by what their rounding did to the training. Reduced precision is emulated on the CPU, so its \
         wall time measures the emulation, not the format's speed."
    } else {
        "The weights after every step are the serial reference's bit for bit, so every line \
         passes through the same losses: the line that gets there sooner trains faster."
    };
    // A loss that falls by more than two decades is drawn on a log scale, where its tail shows.
    let positive = ys.iter().all(|y| *y > 0.0);
    let (lo, hi) = ys.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), y| {
        (lo.min(*y), hi.max(*y))
    });
    let scale = if positive && hi > 100.0 * lo {
        Scale::Log10
    } else {
        Scale::Linear
    };
    let t = st.chart(
        format!("{}: training loss against wall time", st.name),
        format!(
            "The training loss of each step's global batch (before its update), against the wall \
             time at which the step ended (the last repetition of each point). {same}{}",
            if disturbed {
                " Hollow markers: disturbed points (other work used their cores)."
            } else {
                ""
            }
        ),
    );
    Some(t.chart(
        ("wall time (s)".into(), Axis::fit(xs, Scale::Linear, true)),
        ("training loss".into(), Axis::fit(ys, scale, false)),
        lines,
        Vec::new(),
    ))
}

/// A recorded `round_curve`: `round:loss:accuracy` triples joined by `; `, as (round, accuracy);
/// `None` when any triple does not read.
fn parse_rounds(text: &str) -> Option<Vec<(f64, f64)>> {
    text.split("; ")
        .map(|t| {
            let mut it = t.split(':');
            let round: f64 = it.next()?.trim().parse().ok()?;
            let _loss: f64 = it.next()?.trim().parse().ok()?;
            let accuracy: f64 = it.next()?.trim().parse().ok()?;
            it.next().is_none().then_some((round, accuracy))
        })
        .collect()
}

pub(super) fn rounds_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let (lines, _) = point_lines(st, "round_curve", parse_rounds, |r| {
        format!("clients={}", r.ranks)
    });
    if lines.is_empty() {
        return None;
    }
    let (xs, ys) = extent(&lines);
    let t = st.chart(
        format!("{}: held-out accuracy after each federated round", st.name),
        "FedAvg: after each round the server averages the reporting clients' weights (weighted \
         by their rows); the accuracy of that average on the held-out rows, per round. The \
         curve is the serial simulation's bit for bit (the check of every repetition), so it \
         does not depend on the load."
            .into(),
    );
    Some(t.chart(
        ("round".into(), Axis::fit(xs, Scale::Linear, true)),
        (
            "held-out accuracy".into(),
            Axis::fit(ys, Scale::Linear, false),
        ),
        lines,
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_rounds;

    #[test]
    fn a_recorded_round_curve_reads_back() {
        assert_eq!(
            parse_rounds("1:2.0:0.25; 2:1.5:0.5"),
            Some(vec![(1.0, 0.25), (2.0, 0.5)])
        );
        assert_eq!(parse_rounds("1:2.0"), None);
        assert_eq!(parse_rounds("1:2.0:0.5:9"), None);
    }
}

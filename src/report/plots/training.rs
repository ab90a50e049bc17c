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

pub(super) fn loss_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let mut lines = Vec::new();
    let mut disturbed = false;
    for i in 0..st.series.len() {
        for p in &st.series[i].points {
            let Some(points) = p
                .record
                .repetitions
                .last()
                .and_then(|r| r.details.get("loss_curve"))
                .and_then(|text| parse_curve(text))
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let hollow = p.record.is_disturbed();
            disturbed |= hollow;
            let r = &p.record.point.resources;
            // The rank count always (it is what the lines compare), threads and nodes where
            // they are more than one.
            let mut resources = format!("ranks={}", r.ranks);
            if r.threads > 1 {
                resources.push_str(&format!(" threads={}", r.threads));
            }
            if r.nodes > 1 {
                resources.push_str(&format!(" nodes={}", r.nodes));
            }
            let key = format!("{}\u{1f}{resources}", st.labels[i]);
            let label = if st.labels[i].is_empty() {
                resources
            } else {
                format!("{}, {resources}", st.labels[i])
            };
            let n = points.len();
            lines.push(Line {
                label,
                style: st.colors.of(&key),
                markers_only: false,
                hollow: vec![hollow; n],
                points,
                band: Vec::new(),
            });
        }
    }
    if lines.is_empty() {
        return None;
    }
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .chain([0.0])
        .collect();
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .collect();
    let t = st.chart(
        format!("{}: training loss against wall time", st.name),
        format!(
            "The training loss of the global batch after each optimizer step, against the wall \
             time since the repetition began (the last repetition of each point). The weights \
             after every step are the serial reference's bit for bit, so every line passes \
             through the same losses: the line that gets there sooner trains faster.{}",
            if disturbed {
                " Hollow markers: disturbed points (other work used their cores)."
            } else {
                ""
            }
        ),
    );
    Some(t.chart(
        ("wall time (s)".into(), Axis::fit(xs, Scale::Linear, true)),
        ("training loss".into(), Axis::fit(ys, Scale::Linear, false)),
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
    let mut lines = Vec::new();
    for i in 0..st.series.len() {
        for p in &st.series[i].points {
            let Some(points) = p
                .record
                .repetitions
                .last()
                .and_then(|r| r.details.get("round_curve"))
                .and_then(|text| parse_rounds(text))
                .filter(|c| !c.is_empty())
            else {
                continue;
            };
            let clients = format!("clients={}", p.record.point.resources.ranks);
            let key = format!("{}\u{1f}{clients}", st.labels[i]);
            let label = if st.labels[i].is_empty() {
                clients
            } else {
                format!("{}, {clients}", st.labels[i])
            };
            let n = points.len();
            lines.push(Line {
                label,
                style: st.colors.of(&key),
                markers_only: false,
                hollow: vec![false; n],
                points,
                band: Vec::new(),
            });
        }
    }
    if lines.is_empty() {
        return None;
    }
    let xs: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .collect();
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

//! The out-of-bag growth chart: for studies whose points record an `oob_curve` (forests fitted
//! with `n_estimators = "auto"`, see `docs/ml.md`), the out-of-bag score against the number of
//! trees after each batch, one line per series (parameter set). The curve does not depend on the
//! threads or ranks (each repetition is checked bit for bit against a serial fit), so each series
//! draws the curve of its first point; the last marker of a line is the forest that was kept.

use scalelab_ml::estimators::{AUTO_BATCH, AUTO_MAX_TREES, AUTO_PATIENCE, AUTO_TOL};

use super::axis::{Axis, Scale};
use super::render::{Chart, Line};
use super::Study;

/// A recorded curve, `x:y` pairs joined by `; ` (as the ML and training workloads write their
/// `oob_curve` and `loss_curve`); `None` when any pair does not read.
pub(super) fn parse_curve(text: &str) -> Option<Vec<(f64, f64)>> {
    text.split("; ")
        .map(|pair| {
            let (n, s) = pair.split_once(':')?;
            Some((n.trim().parse().ok()?, s.trim().parse().ok()?))
        })
        .collect()
}

pub(super) fn oob_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    let mut lines = Vec::new();
    for i in 0..st.series.len() {
        let curve = st.series[i].points.iter().find_map(|p| {
            let text = p.record.repetitions.last()?.details.get("oob_curve")?;
            parse_curve(text).filter(|c| !c.is_empty())
        });
        let Some(points) = curve else {
            continue;
        };
        let &(trees, score) = points.last()?;
        lines.push(Line {
            label: format!(
                "{}: {trees} trees, out-of-bag score {score:.3}",
                st.label(i, "forest")
            ),
            style: st.style(i),
            markers_only: false,
            points,
            band: Vec::new(),
            hollow: Vec::new(),
        });
    }
    if lines.is_empty() {
        return None;
    }
    let (xs, ys) = super::training::extent(&lines);
    let t = st.chart(
        format!("{}: out-of-bag score as trees are added", st.name),
        format!(
            "n_estimators = \"auto\": trees are added {AUTO_BATCH} at a time and the out-of-bag \
             score (accuracy for classes, R² for values, over the training rows each tree did not \
             draw) is taken after each batch; growth stops once {AUTO_PATIENCE} batches in a row \
             raise the best score by no more than {AUTO_TOL}, or at {AUTO_MAX_TREES} trees. The \
             last marker of each line is the forest kept. The curve is the same at every thread \
             and rank count."
        ),
    );
    Some(t.chart(
        ("trees".into(), Axis::fit(xs, Scale::Linear, true)),
        (
            "out-of-bag score".into(),
            Axis::fit(ys, Scale::Linear, false),
        ),
        lines,
        Vec::new(),
    ))
}

#[cfg(test)]
mod tests {
    use super::parse_curve;

    #[test]
    fn a_recorded_curve_reads_back() {
        assert_eq!(
            parse_curve("10:0.9; 20:0.9125"),
            Some(vec![(10.0, 0.9), (20.0, 0.9125)])
        );
        assert_eq!(parse_curve("10:0.9; 20"), None);
        assert_eq!(parse_curve("ten:0.9"), None);
    }
}

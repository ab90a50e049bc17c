//! The nested cross-validation chart: for studies whose points record `nested_score` and
//! `non_nested_score`, one marker per series (parameter set: dataset, estimator, grid, seed), the
//! nested score against the non-nested one, with the diagonal where they agree, coloured by the
//! parameters that vary (seeds pooled). The scores are the same at every p (each repetition is
//! checked bit for bit), so each series is one marker; above the diagonal is the selection bias
//! the model-selection lecture is about.

use plotters::style::BLACK;

use super::axis::{Axis, Scale};
use super::labels;
use super::render::{Chart, Line, Reference};
use super::Study;
use crate::report::csv::metric_median;

pub(super) fn nested_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    // (parameters, nested, non-nested, disturbed) per series.
    let scored: Vec<(Vec<String>, (f64, f64), bool)> = st
        .series
        .iter()
        .filter_map(|s| {
            let p = s.points.first()?;
            let xy = metric_median(p.record, "nested_score")
                .zip(metric_median(p.record, "non_nested_score"))
                .filter(|(x, y)| x.is_finite() && y.is_finite())?;
            // Scores do not depend on the load beside a run (each repetition is checked bit for
            // bit): a disturbed point's scores are drawn like any other.
            Some((labels::params(p.record), xy, false))
        })
        .collect();
    // One colour per combination of the parameters that vary (datasets, grids), seeds pooled:
    // a seed only changes the fold split, so its markers are repeats of one experiment.
    let all: Vec<Vec<String>> = scored.iter().map(|s| s.0.clone()).collect();
    let (shared, _) = labels::split_shared(&all);
    let varies = |kv: &String| !kv.starts_with("seed=") && !shared.contains(kv);
    // (key, scores, disturbed) per marker colour.
    type Group = (String, Vec<(f64, f64)>, Vec<bool>);
    let mut groups: Vec<Group> = Vec::new();
    for (ps, xy, hollow) in &scored {
        let key = ps
            .iter()
            .filter(|kv| varies(kv))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, pts, h)) => {
                pts.push(*xy);
                h.push(*hollow);
            }
            None => groups.push((key, vec![*xy], vec![*hollow])),
        }
    }
    // Markers are parameter groups, not the study's series: their own colours, from the first.
    let mut colors = super::render::Colors::default();
    let lines: Vec<Line> = groups
        .into_iter()
        .map(|(key, points, hollow)| {
            let optimism = points.iter().map(|(x, y)| y - x).sum::<f64>() / points.len() as f64;
            let what = if key.is_empty() {
                "scores".to_string()
            } else {
                key.clone()
            };
            Line {
                label: format!("{what} (mean optimism {optimism:+.3})"),
                style: colors.of(&key),
                markers_only: true,
                points,
                band: Vec::new(),
                hollow,
            }
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    // One range for both axes, so the diagonal is the diagonal.
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().flat_map(|&(x, y)| [x, y]))
        .collect();
    let axis = Axis::fit(values, Scale::Linear, false);
    let diagonal = vec![(axis.lo, axis.lo), (axis.hi, axis.hi)];
    let shared_shown: Vec<String> = shared
        .iter()
        .filter(|kv| !kv.starts_with("seed="))
        .cloned()
        .collect();
    let mut t = st.chart(
        format!("{}: non-nested vs nested score", st.name),
        "Each marker is one point (parameter set and seed): x its nested cross-validation score (the outer test folds never take part in choosing the hyperparameters), y the non-nested score (the best candidate's score on the inner folds that chose it). Above the dashed line: optimism = non-nested − nested, the bias of scoring a choice on the data that made it.".into(),
    );
    t.subtitle = labels::subtitle(st.workload, &shared_shown);
    Some(t.chart(
        ("nested score".into(), axis.clone()),
        ("non-nested score".into(), axis),
        lines,
        vec![Reference {
            label: "no optimism: non-nested = nested".into(),
            points: diagonal,
            color: BLACK,
        }],
    ))
}

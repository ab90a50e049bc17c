//! The nested cross-validation chart: for studies whose points record `nested_score` and
//! `non_nested_score`, one marker per series (parameter set: dataset, estimator, grid, seed), the
//! nested score against the non-nested one, with the diagonal where they agree, coloured by the
//! parameters that vary (seeds pooled). The scores are the same at every p (each repetition is
//! checked bit for bit), so each series is one marker; above the diagonal is the selection bias
//! the model-selection lecture is about.
//!
//! `scalelab compare` draws the same chart over several runs ([`nested_chart_by_run`]): the
//! markers of a run take its colour and each legend entry starts with the run's machine, so a
//! reader sees whether two machines chose the same hyperparameters (they should: the scores do
//! not depend on the machine).

use plotters::style::BLACK;

use super::axis::{Axis, Scale};
use super::labels;
use super::render::{Chart, Line, Reference};
use super::Study;
use crate::report::csv::metric_median;

/// The chart of one run's study (see the module documentation); `None` when no point records
/// both scores.
pub(super) fn nested_chart(st: &mut Study<'_, '_>) -> Option<Chart> {
    nested_chart_by_run(st, &[])
}

/// [`nested_chart`] over several runs: `runs[i]` is the run of series `i` of `st`, as (its
/// position among the runs, its label). Empty for one run. Markers are grouped by run, then by
/// the parameters that vary; with at most as many runs as the palette has colours, group `k` of
/// run `r` gets style `r + colours · k` (the run's colour, its k-th marker shape).
pub(super) fn nested_chart_by_run(st: &mut Study<'_, '_>, runs: &[(usize, &str)]) -> Option<Chart> {
    let n_runs = runs.iter().map(|r| r.0 + 1).max().unwrap_or(0);
    let (groups, shared) = marker_groups(st, runs);
    // Markers are parameter groups, not the study's series: their own colours, from the first
    // (over runs: the run's colour, see [`nested_chart_by_run`]).
    let mut colors = super::render::Colors::default();
    let mut per_run = vec![0usize; n_runs];
    let colours = super::PALETTE.len();
    let lines: Vec<Line> = groups
        .into_iter()
        .map(|(run, key, points, hollow)| {
            let optimism = points.iter().map(|(x, y)| y - x).sum::<f64>() / points.len() as f64;
            let what = match (run, key.is_empty()) {
                (None, true) => "scores".to_string(),
                (None, false) => key.clone(),
                (Some((_, label)), true) => label.to_string(),
                (Some((_, label)), false) => format!("{label}, {key}"),
            };
            let style = match run {
                Some((r, _)) if n_runs <= colours => {
                    per_run[r] += 1;
                    r + colours * (per_run[r] - 1)
                }
                _ => colors.of(&what),
            };
            Line {
                label: format!("{what} (mean optimism {optimism:+.3})"),
                style,
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

/// A study's scores grouped into markers of one colour: (run, varying parameters, scores,
/// disturbed) per group, in order of first appearance; and the parameters every series shares.
#[allow(clippy::type_complexity)]
fn marker_groups<'r>(
    st: &Study<'_, '_>,
    runs: &[(usize, &'r str)],
) -> (
    Vec<(Option<(usize, &'r str)>, String, Vec<(f64, f64)>, Vec<bool>)>,
    Vec<String>,
) {
    let run_of = |i: usize| runs.get(i).copied();
    // (run, parameters, nested, non-nested, disturbed) per series.
    type Scored<'r> = (Option<(usize, &'r str)>, Vec<String>, (f64, f64), bool);
    let scored: Vec<Scored<'_>> = st
        .series
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let p = s.points.first()?;
            let xy = metric_median(p.record, "nested_score")
                .zip(metric_median(p.record, "non_nested_score"))
                .filter(|(x, y)| x.is_finite() && y.is_finite())?;
            // Scores do not depend on the load beside a run (each repetition is checked bit for
            // bit): a disturbed point's scores are drawn like any other.
            Some((run_of(i), labels::params(p.record), xy, false))
        })
        .collect();
    // One colour per combination of the parameters that vary (datasets, grids), seeds pooled:
    // a seed only changes the fold split, so its markers are repeats of one experiment.
    let all: Vec<Vec<String>> = scored.iter().map(|s| s.1.clone()).collect();
    let (shared, _) = labels::split_shared(&all);
    let varies = |kv: &String| !kv.starts_with("seed=") && !shared.contains(kv);
    // (run, key, scores, disturbed) per marker colour.
    type Group<'r> = (Option<(usize, &'r str)>, String, Vec<(f64, f64)>, Vec<bool>);
    let mut groups: Vec<Group<'_>> = Vec::new();
    for (run, ps, xy, hollow) in &scored {
        let key = ps
            .iter()
            .filter(|kv| varies(kv))
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        match groups
            .iter_mut()
            .find(|(r, k, _, _)| *r == *run && *k == key)
        {
            Some((_, _, pts, h)) => {
                pts.push(*xy);
                h.push(*hollow);
            }
            None => groups.push((*run, key, vec![*xy], vec![*hollow])),
        }
    }
    (groups, shared)
}

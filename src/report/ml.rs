//! Model fits and model quality in `report.md`, for the studies of the ML workloads (`forest.fit`,
//! `cv.nested`, ...): the points whose repetitions record the `fits` metric.
//!
//! Their work unit is the model fit, not the FLOP: the table shows fits per repetition and fits per
//! second (fits / median time) beside the quality the workload recorded (held-out accuracy or the
//! scoring's value, the cross-validation score, nested and non-nested scores). For nested
//! cross-validation, `optimism` = non-nested − nested: how much choosing the hyperparameters on the
//! very folds that score them flatters the estimate.

use std::fmt::Write as _;

use super::cell;
use super::csv::metric_median;
use super::scaling::{fixed_params, size_label, Series};
use crate::results::PointRecord;
use crate::units::sig3;

/// The metric every fitting ML workload records: model fits per repetition.
pub const FITS_METRIC: &str = "fits";
/// The metric `ml.predict` records instead: rows predicted per repetition.
pub const ROWS_METRIC: &str = "rows";

/// The work unit of an ML point: its metric and what one of it is called.
fn unit(rec: &PointRecord) -> Option<(&'static str, &'static str)> {
    [(FITS_METRIC, "fits"), (ROWS_METRIC, "rows")]
        .into_iter()
        .find(|(m, _)| metric_median(rec, m).is_some())
}

/// Quality metrics shown, in this order, when any point of the study records them.
const QUALITY: &[&str] = &[
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "roc_auc",
    "neg_log_loss",
    "r2",
    "neg_root_mean_squared_error",
    "cv_score",
    "nested_score",
    "non_nested_score",
];

/// Whether the study's points record model fits.
pub fn is_ml_study(series: &[&Series<'_>]) -> bool {
    series
        .iter()
        .flat_map(|s| s.points.iter())
        .any(|p| unit(p.record).is_some())
}

/// Fits (or predicted rows) per second of a point whose median repetition takes `median` seconds,
/// with its unit: `fits/s` or `rows/s`.
pub fn rate(rec: &PointRecord, median: f64) -> Option<(f64, String)> {
    let (metric, name) = unit(rec)?;
    let n = metric_median(rec, metric)?;
    (median > 0.0).then(|| (n / median, format!("{name}/s")))
}

/// The fits and quality table of an ML study.
pub fn table(md: &mut String, series: &[&Series<'_>]) {
    let points: Vec<_> = series.iter().flat_map(|s| s.points.iter()).collect();
    let shown: Vec<&str> = QUALITY
        .iter()
        .copied()
        .filter(|m| points.iter().any(|p| metric_median(p.record, m).is_some()))
        .collect();
    let nested = shown.contains(&"nested_score") && shown.contains(&"non_nested_score");
    // Parameters shared by every point are said once, under the table; the rows show the rest.
    let parts = |r: &PointRecord| -> Vec<String> {
        let mut p = fixed_params(r);
        p.extend(size_label(r));
        p
    };
    let all: Vec<Vec<String>> = points.iter().map(|p| parts(p.record)).collect();
    let common: Vec<String> = all[0]
        .iter()
        .filter(|x| all.iter().all(|ps| ps.contains(x)))
        .cloned()
        .collect();
    let (metric, name) = points
        .iter()
        .find_map(|p| unit(p.record))
        .unwrap_or((FITS_METRIC, "fits"));
    let per_s = format!("{name}/s");
    let title = if metric == ROWS_METRIC {
        "Predictions"
    } else {
        "Model fits and quality"
    };
    let _ = writeln!(md, "### {title}\n");
    let mut head = vec!["point", "p", "parameters", name, per_s.as_str()];
    head.extend(shown.iter().copied());
    if nested {
        head.push("optimism");
    }
    let _ = writeln!(md, "| {} |", head.join(" | "));
    let align: Vec<&str> = head
        .iter()
        .enumerate()
        .map(|(i, _)| if i == 0 || i == 2 { "---" } else { "---:" })
        .collect();
    let _ = writeln!(md, "| {} |", align.join(" | "));
    for (p, ps) in points.iter().zip(&all) {
        let r = p.record;
        let own: Vec<&str> = ps
            .iter()
            .filter(|x| !common.contains(x))
            .map(String::as_str)
            .collect();
        let fits = metric_median(r, metric);
        let mut cells = vec![
            format!("`{}`", r.point.id),
            p.workers.to_string(),
            if own.is_empty() {
                "–".into()
            } else {
                cell(&own.join(" "))
            },
            fits.map_or_else(|| "–".into(), |f| format!("{f:.0}")),
            rate(r, p.summary.median).map_or_else(|| "–".into(), |(v, _)| sig3(v)),
        ];
        for m in &shown {
            cells.push(metric_median(r, m).map_or_else(|| "–".into(), |v| format!("{v:.4}")));
        }
        if nested {
            let gap = metric_median(r, "non_nested_score")
                .zip(metric_median(r, "nested_score"))
                .map(|(a, b)| a - b);
            cells.push(gap.map_or_else(|| "–".into(), |v| format!("{v:+.4}")));
        }
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    if !common.is_empty() {
        let _ = writeln!(md, "\nEvery point: `{}`.", cell(&common.join(" ")));
    }
    let mut note = String::from(if metric == ROWS_METRIC {
        "*rows/s = rows predicted per repetition (every row of the dataset, in batches) / median time; the model is fitted once, untimed, and each repetition's predictions are checked bit for bit against one call on every row."
    } else {
        "*fits/s = model fits per repetition / median time. Scores are the same at every thread and rank count (each repetition is checked bit for bit against a serial reference)."
    });
    if nested {
        note.push_str(" optimism = non-nested − nested score: the bias of scoring the selected hyperparameters on the folds that selected them.");
    }
    let _ = writeln!(md, "\n{note}*\n");
    if nested {
        chosen_table(md, &points, &all, &common);
    }
}

/// The candidate each outer fold of a nested cross-validation chose (the `chosen` detail of the
/// last repetition), once per parameter set: it does not depend on threads or ranks.
fn chosen_table(
    md: &mut String,
    points: &[&super::scaling::ScalingPoint<'_>],
    all: &[Vec<String>],
    common: &[String],
) {
    let mut rows: Vec<(String, String)> = Vec::new();
    for (p, ps) in points.iter().zip(all) {
        let Some(chosen) = p
            .record
            .repetitions
            .last()
            .and_then(|r| r.details.get("chosen"))
        else {
            continue;
        };
        let own: Vec<&str> = ps
            .iter()
            .filter(|x| !common.contains(x))
            .map(String::as_str)
            .collect();
        let row = (own.join(" "), chosen.clone());
        if !rows.contains(&row) {
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "#### Hyperparameters chosen in each outer fold
"
    );
    let _ = writeln!(md, "| parameters | chosen |");
    let _ = writeln!(md, "| --- | --- |");
    for (params, chosen) in rows {
        let params = if params.is_empty() {
            "–".into()
        } else {
            cell(&params)
        };
        let _ = writeln!(md, "| {params} | {} |", cell(&chosen));
    }
    let _ = writeln!(
        md,
        "\n*Each outer fold selects on its own inner folds, so the choices may differ between \
         folds: the nested score rates this selection procedure, not one fixed setting.*\n"
    );
}

//! Metrics: accuracy, balanced accuracy, macro F1, ROC AUC, log loss, R², RMSE, and [`Scoring`], the
//! named metric a search maximises.
//!
//! Each function follows scikit-learn's definition (named in its doc) including the corner cases:
//! classes absent from a fold, tied scores in ROC AUC, probabilities of 0 or 1 in log loss, a
//! constant target in R². Inputs of different lengths or empty inputs are an error, not a panic.
//! Sums run in row order, so a metric of the same predictions is bit-identical however they were
//! computed.

use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Model, Prediction};

fn same_len(a: usize, b: usize, what: &str) -> Result<(), String> {
    if a != b {
        return Err(format!("{what}: {a} true values but {b} predictions"));
    }
    if a == 0 {
        return Err(format!("{what}: no samples"));
    }
    Ok(())
}

/// Fraction of exact matches (`sklearn.metrics.accuracy_score`).
pub fn accuracy(y_true: &[u32], y_pred: &[u32]) -> Result<f64, String> {
    same_len(y_true.len(), y_pred.len(), "accuracy")?;
    let hits = y_true.iter().zip(y_pred).filter(|(t, p)| t == p).count();
    Ok(hits as f64 / y_true.len() as f64)
}

/// Per-class (true, predicted, both) counts over the classes `0..n` where `n` covers every label.
fn confusion_counts(y_true: &[u32], y_pred: &[u32]) -> (Vec<u64>, Vec<u64>, Vec<u64>) {
    let n = y_true
        .iter()
        .chain(y_pred)
        .map(|&c| c as usize + 1)
        .max()
        .unwrap_or(0);
    let (mut t, mut p, mut tp) = (vec![0u64; n], vec![0u64; n], vec![0u64; n]);
    for (&a, &b) in y_true.iter().zip(y_pred) {
        t[a as usize] += 1;
        p[b as usize] += 1;
        if a == b {
            tp[a as usize] += 1;
        }
    }
    (t, p, tp)
}

/// Mean recall over the classes present in `y_true` (`sklearn.metrics.balanced_accuracy_score`).
pub fn balanced_accuracy(y_true: &[u32], y_pred: &[u32]) -> Result<f64, String> {
    same_len(y_true.len(), y_pred.len(), "balanced accuracy")?;
    let (t, _, tp) = confusion_counts(y_true, y_pred);
    let (mut sum, mut classes) = (0.0, 0usize);
    for c in 0..t.len() {
        if t[c] > 0 {
            sum += tp[c] as f64 / t[c] as f64;
            classes += 1;
        }
    }
    Ok(sum / classes as f64)
}

/// Unweighted mean of the per-class F1 over the classes present in `y_true` or `y_pred`
/// (`sklearn.metrics.f1_score(average="macro")`); a class never predicted and never true is left
/// out, and a class with no true positives scores 0 (scikit-learn's `zero_division` default).
pub fn f1_macro(y_true: &[u32], y_pred: &[u32]) -> Result<f64, String> {
    same_len(y_true.len(), y_pred.len(), "macro F1")?;
    let (t, p, tp) = confusion_counts(y_true, y_pred);
    let (mut sum, mut classes) = (0.0, 0usize);
    for c in 0..t.len() {
        if t[c] + p[c] > 0 {
            // F1 = 2·tp / (2·tp + fp + fn) = 2·tp / (true + predicted).
            sum += 2.0 * tp[c] as f64 / (t[c] + p[c]) as f64;
            classes += 1;
        }
    }
    Ok(sum / classes as f64)
}

/// Area under the ROC curve of a binary problem (`sklearn.metrics.roc_auc_score`): the probability
/// that a random positive scores above a random negative, ties counting one half (the trapezoidal
/// area scikit-learn computes equals this Mann–Whitney statistic). Computed from mid-ranks in
/// O(n log n). `positive[i]` says whether sample `i` is of the positive class.
pub fn roc_auc(positive: &[bool], scores: &[f64]) -> Result<f64, String> {
    same_len(positive.len(), scores.len(), "ROC AUC")?;
    if let Some(i) = scores.iter().position(|s| s.is_nan()) {
        return Err(format!("ROC AUC: score {i} is NaN"));
    }
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return Err(
            "ROC AUC is undefined when only one class is present; use more samples per fold or \
             another scoring"
                .into(),
        );
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, mid-rank for ties) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        let pos_in_tie = order[i..=j].iter().filter(|&&k| positive[k]).count();
        rank_sum += mid * pos_in_tie as f64;
        i = j + 1;
    }
    let (p, q) = (n_pos as f64, n_neg as f64);
    Ok((rank_sum - p * (p + 1.0) / 2.0) / (p * q))
}

/// One-vs-rest macro ROC AUC of a multi-class problem from a `samples × classes` probability
/// matrix (`roc_auc_score(multi_class="ovr", average="macro")`); with two classes, the binary AUC
/// of column 1. Every class must occur in `y_true`.
pub fn roc_auc_ovr(y_true: &[u32], proba: &Matrix) -> Result<f64, String> {
    same_len(y_true.len(), proba.rows(), "ROC AUC")?;
    let k = proba.cols();
    let column = |c: usize| {
        (0..proba.rows())
            .map(|i| proba.get(i, c))
            .collect::<Vec<_>>()
    };
    if k == 2 {
        let pos: Vec<bool> = y_true.iter().map(|&y| y == 1).collect();
        return roc_auc(&pos, &column(1));
    }
    // Name the classes really missing: the binary AUC's own error would blame class 0 when class 0
    // is the only one present.
    let mut count = vec![0usize; k];
    for &y in y_true {
        if let Some(n) = count.get_mut(y as usize) {
            *n += 1;
        }
    }
    let absent: Vec<String> = (0..k)
        .filter(|&c| count[c] == 0)
        .map(|c| c.to_string())
        .collect();
    if !absent.is_empty() {
        let (noun, verb) = if absent.len() == 1 {
            ("class", "is")
        } else {
            ("classes", "are")
        };
        return Err(format!(
            "ROC AUC: {noun} {} {verb} absent from these {} samples (one-vs-rest needs every \
             class); use fewer folds, stratified folds, or another scoring",
            absent.join(", "),
            y_true.len()
        ));
    }
    let mut sum = 0.0;
    for c in 0..k {
        let pos: Vec<bool> = y_true.iter().map(|&y| y as usize == c).collect();
        sum += roc_auc(&pos, &column(c))?;
    }
    Ok(sum / k as f64)
}

/// Mean negative log-likelihood of the true class (`sklearn.metrics.log_loss`), probabilities
/// clipped to `[ε, 1 − ε]` with ε the f64 machine epsilon (scikit-learn's `eps="auto"`), so a
/// confident wrong prediction costs about 36 rather than infinity.
pub fn log_loss(y_true: &[u32], proba: &Matrix) -> Result<f64, String> {
    same_len(y_true.len(), proba.rows(), "log loss")?;
    let eps = f64::EPSILON;
    let mut sum = 0.0;
    for (i, &y) in y_true.iter().enumerate() {
        if y as usize >= proba.cols() {
            return Err(format!(
                "log loss: class {y} of sample {i} has no probability column ({} columns)",
                proba.cols()
            ));
        }
        sum -= proba.get(i, y as usize).clamp(eps, 1.0 - eps).ln();
    }
    Ok(sum / y_true.len() as f64)
}

/// Coefficient of determination (`sklearn.metrics.r2_score`): 1 − SS_res / SS_tot; for a constant
/// target, 1 if the predictions are exact and 0 otherwise (scikit-learn's `force_finite`).
pub fn r2(y_true: &[f64], y_pred: &[f64]) -> Result<f64, String> {
    same_len(y_true.len(), y_pred.len(), "R²")?;
    let mean = y_true.iter().sum::<f64>() / y_true.len() as f64;
    let ss_tot: f64 = y_true.iter().map(|y| (y - mean) * (y - mean)).sum();
    let ss_res: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(y, p)| (y - p) * (y - p))
        .sum();
    Ok(if ss_tot == 0.0 {
        if ss_res == 0.0 {
            1.0
        } else {
            0.0
        }
    } else {
        1.0 - ss_res / ss_tot
    })
}

/// Root mean squared error (`sklearn.metrics.root_mean_squared_error`).
pub fn rmse(y_true: &[f64], y_pred: &[f64]) -> Result<f64, String> {
    same_len(y_true.len(), y_pred.len(), "RMSE")?;
    let sum: f64 = y_true
        .iter()
        .zip(y_pred)
        .map(|(y, p)| (y - p) * (y - p))
        .sum();
    Ok((sum / y_true.len() as f64).sqrt())
}

/// The metric a search maximises, by scikit-learn's `scoring` name. Losses are negated (as
/// scikit-learn's `neg_log_loss`, `neg_root_mean_squared_error`) so that greater is always better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scoring {
    Accuracy,
    BalancedAccuracy,
    F1Macro,
    RocAuc,
    NegLogLoss,
    R2,
    NegRmse,
}

impl Scoring {
    /// Every scoring name [`Scoring::parse`] accepts.
    pub const NAMES: &'static [&'static str] = &[
        "accuracy",
        "balanced_accuracy",
        "f1_macro",
        "roc_auc",
        "neg_log_loss",
        "r2",
        "neg_root_mean_squared_error",
    ];

    pub fn parse(name: &str) -> Result<Scoring, String> {
        Ok(match name {
            "accuracy" => Scoring::Accuracy,
            "balanced_accuracy" => Scoring::BalancedAccuracy,
            "f1_macro" => Scoring::F1Macro,
            "roc_auc" => Scoring::RocAuc,
            "neg_log_loss" => Scoring::NegLogLoss,
            "r2" => Scoring::R2,
            "neg_root_mean_squared_error" => Scoring::NegRmse,
            other => {
                return Err(format!(
                    "unknown scoring `{other}`; known: {}",
                    Scoring::NAMES.join(", ")
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Scoring::Accuracy => "accuracy",
            Scoring::BalancedAccuracy => "balanced_accuracy",
            Scoring::F1Macro => "f1_macro",
            Scoring::RocAuc => "roc_auc",
            Scoring::NegLogLoss => "neg_log_loss",
            Scoring::R2 => "r2",
            Scoring::NegRmse => "neg_root_mean_squared_error",
        }
    }

    /// The default for a target: accuracy for classes, R² for values (as scikit-learn's `score`).
    pub fn default_for(y: &Target) -> Scoring {
        match y {
            Target::Classes { .. } => Scoring::Accuracy,
            Target::Values(_) => Scoring::R2,
        }
    }

    /// Whether this scoring applies to classification targets.
    pub fn for_classes(self) -> bool {
        !matches!(self, Scoring::R2 | Scoring::NegRmse)
    }

    /// Score `model` on `rows` of `data`.
    pub fn score(self, model: &dyn Model, data: &Dataset, rows: &[usize]) -> Result<f64, String> {
        let name = self.name();
        match (&data.y, self.for_classes()) {
            (Target::Classes { labels, .. }, true) => {
                let truth: Vec<u32> = rows.iter().map(|&r| labels[r]).collect();
                let proba = || {
                    model.predict_proba(&data.x, rows).ok_or_else(|| {
                        format!("scoring `{name}` needs class probabilities, which this model does not give")
                    })
                };
                match self {
                    Scoring::RocAuc => roc_auc_ovr(&truth, &proba()?),
                    Scoring::NegLogLoss => log_loss(&truth, &proba()?).map(|l| -l),
                    _ => {
                        let Prediction::Classes(pred) = model.predict(&data.x, rows) else {
                            return Err(format!("scoring `{name}` needs class predictions"));
                        };
                        match self {
                            Scoring::Accuracy => accuracy(&truth, &pred),
                            Scoring::BalancedAccuracy => balanced_accuracy(&truth, &pred),
                            _ => f1_macro(&truth, &pred),
                        }
                    }
                }
            }
            (Target::Values(values), false) => {
                let truth: Vec<f64> = rows.iter().map(|&r| values[r]).collect();
                let Prediction::Values(pred) = model.predict(&data.x, rows) else {
                    return Err(format!("scoring `{name}` needs real-valued predictions"));
                };
                match self {
                    Scoring::R2 => r2(&truth, &pred),
                    _ => rmse(&truth, &pred).map(|e| -e),
                }
            }
            (Target::Classes { .. }, false) => Err(format!(
                "scoring `{name}` is for regression but the target is classes; use accuracy"
            )),
            (Target::Values(_), true) => Err(format!(
                "scoring `{name}` is for classification but the target is real values; use r2"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    // Expected values are scikit-learn 1.9.1's on the same inputs (most from its documentation).

    #[test]
    fn accuracy_and_balanced_accuracy() {
        close(accuracy(&[0, 1, 2, 3], &[0, 2, 1, 3]).unwrap(), 0.5);
        // balanced_accuracy_score docs: recalls 3/4 and 1/2.
        close(
            balanced_accuracy(&[0, 1, 0, 0, 1, 0], &[0, 1, 0, 0, 0, 1]).unwrap(),
            0.625,
        );
        // A class predicted but never true does not count.
        close(balanced_accuracy(&[0, 0, 1], &[0, 2, 1]).unwrap(), 0.75);
        assert_eq!(
            accuracy(&[0, 1], &[0]).unwrap_err(),
            "accuracy: 2 true values but 1 predictions"
        );
        assert_eq!(accuracy(&[], &[]).unwrap_err(), "accuracy: no samples");
    }

    #[test]
    fn macro_f1_matches_scikit_learn() {
        // f1_score docs: per-class 0.8, 0, 0.
        close(
            f1_macro(&[0, 1, 2, 0, 1, 2], &[0, 2, 1, 0, 0, 1]).unwrap(),
            0.8 / 3.0,
        );
        // A class only predicted counts with F1 = 0; one neither true nor predicted is left out.
        close(f1_macro(&[0, 0], &[0, 3]).unwrap(), (2.0 / 3.0) / 2.0);
    }

    #[test]
    fn roc_auc_counts_ties_as_halves() {
        // roc_auc_score docs example.
        close(
            roc_auc(&[false, false, true, true], &[0.1, 0.4, 0.35, 0.8]).unwrap(),
            0.75,
        );
        close(
            roc_auc(&[false, true, false, true], &[0.1, 0.5, 0.5, 0.9]).unwrap(),
            0.875,
        );
        close(
            roc_auc(&[false, true, true, false], &[0.3; 4]).unwrap(),
            0.5,
        );
        assert!(roc_auc(&[true, true], &[0.1, 0.2])
            .unwrap_err()
            .contains("only one class"));
    }

    #[test]
    fn roc_auc_one_vs_rest_is_the_macro_mean() {
        let proba = Matrix::new(
            4,
            3,
            vec![0.7, 0.2, 0.1, 0.2, 0.5, 0.3, 0.3, 0.3, 0.4, 0.1, 0.6, 0.3],
        )
        .unwrap();
        let y = [0, 1, 2, 2];
        // class 0: pos {0.7} vs {0.2,0.3,0.1} = 1; class 1: pos {0.5} vs {0.2,0.3,0.6} = 2/3;
        // class 2: pos {0.4,0.3} vs {0.1,0.3}: (1 + 1 + 1 + 0.5)/4 = 0.875.
        close(
            roc_auc_ovr(&y, &proba).unwrap(),
            (1.0 + 2.0 / 3.0 + 0.875) / 3.0,
        );
        let binary = Matrix::new(3, 2, vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4]).unwrap();
        close(roc_auc_ovr(&[0, 1, 1], &binary).unwrap(), 1.0);
    }

    #[test]
    fn roc_auc_one_vs_rest_names_the_classes_that_are_absent() {
        // Three classes, and the fold holds only class 0: classes 1 and 2 are missing, not 0.
        let proba = Matrix::new(2, 3, vec![0.8, 0.1, 0.1, 0.6, 0.3, 0.1]).unwrap();
        assert_eq!(
            roc_auc_ovr(&[0, 0], &proba).unwrap_err(),
            "ROC AUC: classes 1, 2 are absent from these 2 samples (one-vs-rest needs every \
             class); use fewer folds, stratified folds, or another scoring"
        );
        assert_eq!(
            roc_auc_ovr(&[0, 2], &proba).unwrap_err(),
            "ROC AUC: class 1 is absent from these 2 samples (one-vs-rest needs every class); \
             use fewer folds, stratified folds, or another scoring"
        );
    }

    #[test]
    fn log_loss_matches_scikit_learn_and_clips() {
        // log_loss docs: ["spam","ham","ham","spam"] with ham = 0, spam = 1.
        let p = Matrix::new(4, 2, vec![0.1, 0.9, 0.9, 0.1, 0.8, 0.2, 0.35, 0.65]).unwrap();
        assert!((log_loss(&[1, 0, 0, 1], &p).unwrap() - 0.21616187468057912).abs() < 1e-12);
        let certain_wrong = Matrix::new(1, 2, vec![1.0, 0.0]).unwrap();
        close(log_loss(&[1], &certain_wrong).unwrap(), -f64::EPSILON.ln());
    }

    #[test]
    fn regression_metrics() {
        // r2_score docs.
        let (t, p) = ([3.0, -0.5, 2.0, 7.0], [2.5, 0.0, 2.0, 8.0]);
        close(r2(&t, &p).unwrap(), 0.9486081370449679);
        close(rmse(&t, &p).unwrap(), 0.375f64.sqrt());
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 1.0]).unwrap(), 1.0);
        assert_eq!(r2(&[1.0, 1.0], &[1.0, 2.0]).unwrap(), 0.0);
    }

    #[test]
    fn scoring_names_round_trip() {
        for name in Scoring::NAMES {
            assert_eq!(Scoring::parse(name).unwrap().name(), *name);
        }
        assert_eq!(
            Scoring::parse("acc").unwrap_err(),
            "unknown scoring `acc`; known: accuracy, balanced_accuracy, f1_macro, roc_auc, \
             neg_log_loss, r2, neg_root_mean_squared_error"
        );
    }
}

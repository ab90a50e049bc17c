//! The traits every learner implements.
//!
//! An [`Estimator`] is an unfitted learner with its hyperparameters; `fit` returns a [`Model`]. Fitting
//! takes row indices into a shared [`Dataset`] rather than a copy, so folds, bootstraps and grid
//! candidates share one matrix (rows may repeat: a bootstrap sample is just an index list). The
//! trait's provided `fit` checks those inputs once for every learner, which implements
//! `fit_checked`.

use std::collections::BTreeMap;

use crate::data::{Dataset, Matrix};

/// One hyperparameter value, as a manifest or a search grid writes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Hp {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

/// Hyperparameters by name.
pub type HyperParams = BTreeMap<String, Hp>;

/// How a fit may use the current rayon pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FitOptions {
    /// Fit independent parts (the trees of a forest, the base models of a stack) in parallel. When an
    /// outer level (folds, grid candidates) already runs in parallel this is false and the fit runs
    /// serially. The fitted model is the same either way.
    pub parallel: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions { parallel: true }
    }
}

/// What a model predicts for a set of rows.
#[derive(Clone, Debug, PartialEq)]
pub enum Prediction {
    Classes(Vec<u32>),
    Values(Vec<f64>),
}

/// An unfitted learner with its hyperparameters.
pub trait Estimator: Send + Sync + std::fmt::Debug {
    /// The factory name, e.g. "random_forest".
    fn name(&self) -> &'static str;

    /// Fit on `rows` of `data` (indices may repeat). `weights`, when given, holds one sample weight per
    /// entry of `rows`. All randomness derives from `seed`. Checks the inputs once (rows present
    /// and in range, one finite non-negative weight per row, not all zero) and calls
    /// [`Estimator::fit_checked`]; an error names the estimator and the fix.
    fn fit(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        check_fit(self.name(), data, rows, weights)?;
        self.fit_checked(data, rows, weights, seed, options)
    }

    /// The estimator's own fit, on inputs [`Estimator::fit`] has checked. Call `fit`, not this.
    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String>;
}

/// A fitted model.
pub trait Model: Send + Sync {
    /// Predict `rows` of `x`.
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction;

    /// Class probabilities of `rows` of `x`: a `rows.len() × n_classes` matrix. `None` for
    /// regressors and for classifiers without probabilities.
    fn predict_proba(&self, _x: &Matrix, _rows: &[usize]) -> Option<Matrix> {
        None
    }

    /// The out-of-bag score of a bagged ensemble fitted with `oob_score = true`: accuracy for
    /// classifiers, R² for regressors, over the training rows left out of at least one bootstrap
    /// sample. `None` for other models.
    fn oob_score(&self) -> Option<f64> {
        None
    }

    /// The growth curve of a forest fitted with `n_estimators = "auto"`: (trees so far, out-of-bag
    /// score) after each batch, the last entry being the forest returned. `None` for other models.
    fn oob_curve(&self) -> Option<&[(usize, f64)]> {
        None
    }

    /// The members of an ensemble of trees (the trees of a forest). `None` for other models.
    fn n_members(&self) -> Option<usize> {
        None
    }

    /// Mean decrease in impurity per feature (Breiman's importances, as scikit-learn's
    /// `feature_importances_`): each tree's split gains summed by feature and normalised to sum to 1,
    /// averaged over the trees. `None` for models that are not trees.
    fn feature_importances(&self) -> Option<Vec<f64>> {
        None
    }
}

/// Check `rows` and `weights` before a fit.
pub(crate) fn check_fit(
    name: &str,
    data: &Dataset,
    rows: &[usize],
    weights: Option<&[f64]>,
) -> Result<(), String> {
    if rows.is_empty() {
        return Err(format!("{name}: cannot fit on zero rows"));
    }
    if let Some(&r) = rows.iter().find(|&&r| r >= data.rows()) {
        return Err(format!(
            "{name}: row {r} is out of range; dataset {} has {} rows",
            data.name,
            data.rows()
        ));
    }
    if let Some(w) = weights {
        if w.len() != rows.len() {
            return Err(format!(
                "{name}: {} sample weights for {} rows; give one weight per row",
                w.len(),
                rows.len()
            ));
        }
        if let Some(k) = w.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(format!(
                "{name}: sample weight {} (entry {k}) must be finite and non-negative",
                w[k]
            ));
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(format!("{name}: the sample weights sum to zero"));
        }
    }
    Ok(())
}

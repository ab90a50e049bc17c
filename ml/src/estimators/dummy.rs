//! The baseline every learner must beat: predict the most frequent class of the training rows.

use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Estimator, FitOptions, Model, Prediction};

/// scikit-learn's `DummyClassifier(strategy="most_frequent")`; for regression, the mean.
#[derive(Clone, Copy, Debug)]
pub struct MostFrequent;

impl Estimator for MostFrequent {
    fn name(&self) -> &'static str {
        "dummy.most_frequent"
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        _seed: u64,
        _options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        if rows.is_empty() {
            return Err("cannot fit on zero rows".into());
        }
        let weight = |k: usize| weights.map_or(1.0, |w| w[k]);
        match &data.y {
            Target::Classes { labels, names } => {
                let mut mass = vec![0.0; names.len()];
                for (k, &r) in rows.iter().enumerate() {
                    mass[labels[r] as usize] += weight(k);
                }
                let total: f64 = mass.iter().sum();
                // Ties go to the lowest class index, as in scikit-learn.
                let best = (0..mass.len()).fold(0, |b, c| if mass[c] > mass[b] { c } else { b });
                Ok(Box::new(Fitted::Class {
                    class: best as u32,
                    proba: mass.iter().map(|m| m / total).collect(),
                }))
            }
            Target::Values(values) => {
                let (mut sum, mut total) = (0.0, 0.0);
                for (k, &r) in rows.iter().enumerate() {
                    sum += weight(k) * values[r];
                    total += weight(k);
                }
                Ok(Box::new(Fitted::Value(sum / total)))
            }
        }
    }
}

enum Fitted {
    Class { class: u32, proba: Vec<f64> },
    Value(f64),
}

impl Model for Fitted {
    fn predict(&self, _x: &Matrix, rows: &[usize]) -> Prediction {
        match self {
            Fitted::Class { class, .. } => Prediction::Classes(vec![*class; rows.len()]),
            Fitted::Value(v) => Prediction::Values(vec![*v; rows.len()]),
        }
    }

    fn predict_proba(&self, _x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        match self {
            Fitted::Class { proba, .. } => {
                let data = proba.iter().copied().cycle().take(rows.len() * proba.len());
                Matrix::new(rows.len(), proba.len(), data.collect()).ok()
            }
            Fitted::Value(_) => None,
        }
    }
}

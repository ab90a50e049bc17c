//! Pieces the learners share: turning rows into tree entries with sample
//! and class weights, and the tree-ensemble model that a tree, a forest and bagged trees all are.

use rayon::prelude::*;

use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Model, Prediction};

use super::tree::{Entry, Tree};

/// scikit-learn's `class_weight="balanced"`: `n / (classes × count_k)` over `rows` (absent classes 0).
pub(crate) fn balanced_weights(labels: &[u32], rows: &[usize], n_classes: usize) -> Vec<f64> {
    let mut counts = vec![0usize; n_classes];
    for &r in rows {
        counts[labels[r] as usize] += 1;
    }
    let present = counts.iter().filter(|&&c| c > 0).count().max(1);
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                rows.len() as f64 / (present as f64 * c as f64)
            }
        })
        .collect()
}

/// One entry per position of `rows`: class or target, and weight = sample weight × class weight.
pub(crate) fn entries(
    data: &Dataset,
    rows: &[usize],
    weights: Option<&[f64]>,
    balanced: bool,
) -> Vec<Entry> {
    let class_w = match (&data.y, balanced) {
        (Target::Classes { labels, names }, true) => {
            Some(balanced_weights(labels, rows, names.len()))
        }
        _ => None,
    };
    rows.iter()
        .enumerate()
        .map(|(k, &r)| {
            let (class, y) = match &data.y {
                Target::Classes { labels, .. } => (labels[r], 0.0),
                Target::Values(v) => (0, v[r]),
            };
            let mut w = weights.map_or(1.0, |w| w[k]);
            if let Some(cw) = &class_w {
                w *= cw[class as usize];
            }
            Entry {
                row: r as u32,
                class,
                w,
                y,
                h: 0.0,
            }
        })
        .collect()
}

/// The index of the largest value; ties go to the lowest index (as numpy's argmax).
pub(crate) fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |b, k| if v[k] > v[b] { k } else { b })
}

/// Trees whose leaf values are averaged: class probabilities (`n_classes > 0`) or means.
pub(crate) struct TreeEnsemble {
    pub trees: Vec<Tree>,
    /// 0 for regression.
    pub n_classes: usize,
    pub oob_score: Option<f64>,
    /// (trees, out-of-bag score) after each batch of a forest grown with `n_estimators = "auto"`.
    pub oob_curve: Option<Vec<(usize, f64)>>,
}

impl TreeEnsemble {
    fn average(&self, x: &[f64], out: &mut [f64]) {
        out.fill(0.0);
        for t in &self.trees {
            for (o, v) in out.iter_mut().zip(t.value(x)) {
                *o += v;
            }
        }
        let inv = 1.0 / self.trees.len() as f64;
        out.iter_mut().for_each(|o| *o *= inv);
    }
}

impl TreeEnsemble {
    /// Averaged leaf values of `rows`, row-major (`rows.len() × max(n_classes, 1)`). Large requests
    /// are split over the rayon pool by rows; each row's sum runs over the trees in order, so the
    /// result is the same at any thread count.
    fn averages(&self, x: &Matrix, rows: &[usize]) -> Vec<f64> {
        const CHUNK: usize = 256;
        let width = self.n_classes.max(1);
        let mut out = vec![0.0; rows.len() * width];
        let work = |(chunk, part): (&[usize], &mut [f64])| {
            for (&r, o) in chunk.iter().zip(part.chunks_mut(width)) {
                self.average(x.row(r), o);
            }
        };
        if rows.len() * self.trees.len() >= 1 << 14 {
            rows.par_chunks(CHUNK)
                .zip(out.par_chunks_mut(CHUNK * width))
                .for_each(work);
        } else {
            rows.chunks(CHUNK)
                .zip(out.chunks_mut(CHUNK * width))
                .for_each(work);
        }
        out
    }
}

impl Model for TreeEnsemble {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        let avg = self.averages(x, rows);
        if self.n_classes == 0 {
            Prediction::Values(avg)
        } else {
            Prediction::Classes(
                avg.chunks(self.n_classes)
                    .map(|p| argmax(p) as u32)
                    .collect(),
            )
        }
    }

    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        if self.n_classes == 0 {
            return None;
        }
        Matrix::new(rows.len(), self.n_classes, self.averages(x, rows)).ok()
    }

    fn oob_score(&self) -> Option<f64> {
        self.oob_score
    }

    fn oob_curve(&self) -> Option<&[(usize, f64)]> {
        self.oob_curve.as_deref()
    }

    fn n_members(&self) -> Option<usize> {
        Some(self.trees.len())
    }

    fn feature_importances(&self) -> Option<Vec<f64>> {
        let mut sum = Vec::new();
        for t in &self.trees {
            let imp = t.importances();
            sum.resize(imp.len(), 0.0);
            sum.iter_mut().zip(&imp).for_each(|(s, v)| *s += v);
        }
        let n = self.trees.len().max(1) as f64;
        Some(sum.into_iter().map(|s| s / n).collect())
    }
}

//! Multinomial logistic regression with an L2 penalty on standardised features (`logistic_regression`),
//! the linear baseline and the usual stacking meta-learner.
//!
//! It minimises `C · Σ_i w_i · CE_i + ½ ‖W‖²` (the intercepts are not penalised), as scikit-learn's
//! `LogisticRegression(C=…)` does, with L-BFGS (Nocedal & Wright, Algorithm 7.4, memory 10) and a
//! backtracking Armijo line search. Features are standardised with the training rows' mean and
//! standard deviation and the model keeps that scaling. The loop is short and deterministic (no
//! threads), so it is written here rather than pulling in an optimisation crate.

use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Estimator, FitOptions, HyperParams, Model, Prediction};

use super::common::argmax;
use super::params::{Default as D, Kind, ParamSpec, Params};

/// `logistic_regression` parameters.
pub const SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "C",
        kind: Kind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: true,
        },
        default: D::Float(1.0),
        doc: "inverse of the L2 penalty strength (smaller = stronger penalty)",
    },
    ParamSpec {
        name: "max_iter",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
        },
        default: D::Int(200),
        doc: "most L-BFGS iterations",
    },
];

#[derive(Clone, Debug, PartialEq)]
pub struct Logistic {
    c: f64,
    max_iter: usize,
}

impl Logistic {
    pub fn from_params(params: &HyperParams) -> Result<Logistic, String> {
        let p = Params::new("logistic_regression", params, SPECS)?;
        Ok(Logistic {
            c: p.float("C")?,
            max_iter: p.usize("max_iter")?,
        })
    }
}

/// A fitted model: standardisation, then `k × (p + 1)` weights (intercept last).
struct Fitted {
    standard: Standardise,
    w: Vec<f64>,
    k: usize,
}

/// Per-feature standardisation `z = (x − mean) / sd`, computed on `x / mag` with `mag` a power of
/// two at least the feature's largest magnitude. Dividing by a power of two is exact, so `z` is the
/// same as the plain formula wherever that one does not overflow; without it, a feature near
/// 1e154 in magnitude squared to infinity and was silently zeroed.
struct Standardise {
    mag: Vec<f64>,
    /// The mean, divided by `mag`.
    mean: Vec<f64>,
    /// `mag / sd` (1 for a constant feature).
    scale: Vec<f64>,
}

impl Standardise {
    /// Weighted mean and standard deviation of each feature over `rows`.
    fn fit(x: &Matrix, rows: &[usize], wt: impl Fn(usize) -> f64) -> Standardise {
        let p = x.cols();
        let mut mag = vec![0.0f64; p];
        for &r in rows {
            for (j, m) in mag.iter_mut().enumerate() {
                *m = m.max(x.get(r, j).abs());
            }
        }
        for m in mag.iter_mut() {
            *m = if m.is_normal() {
                2f64.powi(m.log2().ceil() as i32)
            } else {
                1.0
            };
        }
        let total: f64 = (0..rows.len()).map(&wt).sum();
        let mut mean = vec![0.0; p];
        for (i, &r) in rows.iter().enumerate() {
            for (j, mj) in mean.iter_mut().enumerate() {
                *mj += wt(i) * (x.get(r, j) / mag[j]);
            }
        }
        mean.iter_mut().for_each(|v| *v /= total);
        let mut scale = vec![0.0; p];
        for (i, &r) in rows.iter().enumerate() {
            for j in 0..p {
                scale[j] += wt(i) * (x.get(r, j) / mag[j] - mean[j]).powi(2);
            }
        }
        for s in scale.iter_mut() {
            let sd = (*s / total).sqrt();
            *s = if sd > 1e-12 { 1.0 / sd } else { 1.0 };
        }
        Standardise { mag, mean, scale }
    }

    fn z(&self, j: usize, v: f64) -> f64 {
        (v / self.mag[j] - self.mean[j]) * self.scale[j]
    }
}

impl Fitted {
    fn proba_row(&self, x: &[f64], z: &mut [f64], out: &mut [f64]) {
        for (j, zj) in z.iter_mut().enumerate() {
            *zj = self.standard.z(j, x[j]);
        }
        let p = z.len();
        for (c, o) in out.iter_mut().enumerate() {
            let wc = &self.w[c * (p + 1)..(c + 1) * (p + 1)];
            *o = wc[p]
                + wc[..p]
                    .iter()
                    .zip(z.iter())
                    .map(|(a, b)| a * b)
                    .sum::<f64>();
        }
        softmax(out);
    }
}

fn softmax(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum);
}

impl Model for Fitted {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        let proba = self
            .predict_proba(x, rows)
            .unwrap_or_else(|| Matrix::zeros(0, 0));
        Prediction::Classes(
            (0..rows.len())
                .map(|i| argmax(proba.row(i)) as u32)
                .collect(),
        )
    }

    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        let mut out = Matrix::zeros(rows.len(), self.k);
        let mut z = vec![0.0; self.standard.mean.len()];
        for (i, &r) in rows.iter().enumerate() {
            self.proba_row(x.row(r), &mut z, out.row_mut(i));
        }
        Some(out)
    }
}

impl Estimator for Logistic {
    fn name(&self) -> &'static str {
        "logistic_regression"
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        _seed: u64,
        _options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        let Target::Classes { labels, names } = &data.y else {
            return Err(format!(
                "logistic_regression: needs classes but dataset {} has a numeric target",
                data.name
            ));
        };
        let (p, k, m) = (data.features(), names.len(), rows.len());
        let wt = |i: usize| weights.map_or(1.0, |w| w[i]);
        // Standardise with the weighted mean and standard deviation of the training rows.
        let standard = Standardise::fit(&data.x, rows, wt);
        let st = &standard;
        let z: Vec<f64> = rows
            .iter()
            .flat_map(|&r| (0..p).map(move |j| st.z(j, data.x.get(r, j))))
            .collect();
        let y: Vec<usize> = rows.iter().map(|&r| labels[r] as usize).collect();
        let sw: Vec<f64> = (0..m).map(wt).collect();
        let c = self.c;
        let objective = |w: &[f64], grad: &mut [f64]| -> f64 {
            grad.fill(0.0);
            let mut loss = 0.0;
            let mut s = vec![0.0; k];
            for i in 0..m {
                let zi = &z[i * p..(i + 1) * p];
                for (cl, sc) in s.iter_mut().enumerate() {
                    let wc = &w[cl * (p + 1)..(cl + 1) * (p + 1)];
                    *sc = wc[p] + wc[..p].iter().zip(zi).map(|(a, b)| a * b).sum::<f64>();
                }
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + s.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                loss += c * sw[i] * (lse - s[y[i]]);
                for cl in 0..k {
                    let d = c * sw[i] * ((s[cl] - lse).exp() - if cl == y[i] { 1.0 } else { 0.0 });
                    let g = &mut grad[cl * (p + 1)..(cl + 1) * (p + 1)];
                    for (gj, zj) in g[..p].iter_mut().zip(zi) {
                        *gj += d * zj;
                    }
                    g[p] += d;
                }
            }
            for cl in 0..k {
                for j in 0..p {
                    let v = w[cl * (p + 1) + j];
                    loss += 0.5 * v * v;
                    grad[cl * (p + 1) + j] += v;
                }
            }
            loss
        };
        let w = lbfgs(vec![0.0; k * (p + 1)], objective, self.max_iter);
        Ok(Box::new(Fitted { standard, w, k }))
    }
}

/// Minimise `f` from `x` with L-BFGS (memory 10); stops when the gradient's largest component falls
/// under 1e-6 × max(1, |f|), or after `max_iter` iterations.
fn lbfgs(mut x: Vec<f64>, f: impl Fn(&[f64], &mut [f64]) -> f64, max_iter: usize) -> Vec<f64> {
    const MEMORY: usize = 10;
    let n = x.len();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f64>> = Vec::new();
    let mut y_hist: Vec<Vec<f64>> = Vec::new();
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    for _ in 0..max_iter {
        if g.iter().fold(0.0f64, |a, v| a.max(v.abs())) <= 1e-6 * fx.abs().max(1.0) {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alpha = vec![0.0; s_hist.len()];
        for i in (0..s_hist.len()).rev() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            alpha[i] = rho * dot(&s_hist[i], &q);
            q.iter_mut()
                .zip(&y_hist[i])
                .for_each(|(qv, yv)| *qv -= alpha[i] * yv);
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        } else {
            let norm = dot(&g, &g).sqrt().max(1e-12);
            q.iter_mut().for_each(|v| *v /= norm);
        }
        for i in 0..s_hist.len() {
            let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
            let beta = rho * dot(&y_hist[i], &q);
            q.iter_mut()
                .zip(&s_hist[i])
                .for_each(|(qv, sv)| *qv += (alpha[i] - beta) * sv);
        }
        let d: Vec<f64> = q.iter().map(|v| -v).collect();
        let slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            continue;
        }
        let mut step = 1.0;
        let mut f_new;
        loop {
            for i in 0..n {
                x_new[i] = x[i] + step * d[i];
            }
            f_new = f(&x_new, &mut g_new);
            if f_new <= fx + 1e-4 * step * slope || step < 1e-12 {
                break;
            }
            step *= 0.5;
        }
        let s: Vec<f64> = x_new.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_new.iter().zip(&g).map(|(a, b)| a - b).collect();
        let improvement = fx - f_new;
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut g, &mut g_new);
        fx = f_new;
        if dot(&s, &y) > 1e-12 {
            if s_hist.len() == MEMORY {
                s_hist.remove(0);
                y_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
        }
        if improvement.abs() <= 1e-12 * fx.abs().max(1.0) {
            break;
        }
    }
    x
}

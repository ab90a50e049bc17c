//! Preprocessing pipelines, fitted inside each training fold (scikit-learn's `Pipeline`).
//!
//! A pipeline is written as steps joined by `>`, e.g. `"standard_scaler > select_k_best:10"`:
//!
//! | step | what it learns from the training rows | output |
//! | --- | --- | --- |
//! | `standard_scaler` | each feature's mean and standard deviation (ddof 0) | `(x − mean) / sd`; a constant feature is only centred |
//! | `minmax_scaler` | each feature's minimum and maximum | `(x − min) / (max − min)` in [0, 1] on the training rows; a constant feature becomes 0 |
//! | `one_hot:COLS` | the distinct values of the named columns (names or 0-based indices, `,`-separated) | the other columns in order, then one 0/1 column per (column, value); a value unseen in training gives all zeros (`handle_unknown="ignore"`) |
//! | `polynomial:D` | nothing | every monomial of degree 1 to D (no bias column), in scikit-learn's order |
//! | `pca:K` | the mean and the K leading eigenvectors of the covariance | the K principal components; each component's sign makes its largest-magnitude loading positive |
//! | `select_k_best:K` | the univariate F statistic of each feature (ANOVA F for classes, `f_regression` for values) | the K best features, in their original order (ties: the lower index) |
//!
//! [`Pipeline`] wraps any estimator: its `fit` fits the steps on the training rows only, then fits
//! the estimator on the transformed data; the model transforms the rows it predicts with the same
//! fitted steps. Fitting the steps once on every row before cross-validation ([`fit_steps`] on all
//! rows, then [`transform`]) is the classic leakage: the ML workloads offer it as
//! `pipeline_fit = "all_rows"` to show its optimism beside the honest estimate.
//!
//! Written here rather than taken from linfa: the scalers and the selection are a few lines each,
//! the course teaches exactly this fit-inside-the-fold discipline, and PCA needs its
//! eigendecomposition to be independent of the thread count (below).

use std::collections::BTreeSet;

use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Estimator, FitOptions, Model, Prediction};

/// Most features a step may produce (polynomial features grow as p^D / D!).
pub const MAX_FEATURES: usize = 100_000;

/// One step, as written.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    Standard,
    MinMax,
    OneHot(Vec<String>),
    Polynomial(usize),
    Pca(usize),
    SelectKBest(usize),
}

/// The step names, for messages.
pub const STEPS: &[&str] = &[
    "standard_scaler",
    "minmax_scaler",
    "one_hot:COLS",
    "polynomial:D",
    "pca:K",
    "select_k_best:K",
];

/// Parse `"standard_scaler > select_k_best:10"`; `""` and `"none"` are the empty pipeline.
pub fn parse(text: &str) -> Result<Vec<Step>, String> {
    let t = text.trim();
    if t.is_empty() || t == "none" {
        return Ok(Vec::new());
    }
    t.split('>').map(|s| parse_step(s.trim())).collect()
}

fn parse_step(s: &str) -> Result<Step, String> {
    let (name, arg) = match s.split_once(':') {
        Some((n, a)) => (n.trim(), Some(a.trim())),
        None => (s, None),
    };
    let count = |what: &str| -> Result<usize, String> {
        match arg.map(str::parse::<usize>) {
            Some(Ok(k)) if k >= 1 => Ok(k),
            _ => Err(format!(
                "pipeline step `{s}`: give {what} as a whole number ≥ 1, e.g. `{name}:2`"
            )),
        }
    };
    let no_arg = |step: Step| match arg {
        None => Ok(step),
        Some(_) => Err(format!(
            "pipeline step `{s}`: `{name}` takes no `:` argument"
        )),
    };
    match name {
        "standard_scaler" => no_arg(Step::Standard),
        "minmax_scaler" => no_arg(Step::MinMax),
        "one_hot" => {
            let cols: Vec<String> = arg
                .unwrap_or("")
                .split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect();
            if cols.is_empty() {
                return Err(format!(
                    "pipeline step `{s}`: name the columns to encode, e.g. `one_hot:color,size` or `one_hot:0,3`"
                ));
            }
            Ok(Step::OneHot(cols))
        }
        "polynomial" => match count("the degree")? {
            d if d <= 4 => Ok(Step::Polynomial(d)),
            d => Err(format!(
                "pipeline step `{s}`: degree {d} is more than 4; use polynomial:2 or polynomial:3"
            )),
        },
        "pca" => Ok(Step::Pca(count("the number of components")?)),
        "select_k_best" => Ok(Step::SelectKBest(count("the number of features to keep")?)),
        other => Err(format!(
            "unknown pipeline step `{other}`; known: {} (steps are joined by `>`)",
            STEPS.join(", ")
        )),
    }
}

/// A step fitted on training rows.
#[derive(Clone, Debug)]
enum Fitted {
    /// `(x − shift) · scale` per feature.
    Affine {
        shift: Vec<f64>,
        scale: Vec<f64>,
    },
    /// The kept columns, then per encoded column its sorted training values.
    OneHot {
        keep: Vec<usize>,
        encode: Vec<(usize, Vec<f64>)>,
    },
    /// Monomials as lists of feature indices (with repeats).
    Polynomial(Vec<Vec<usize>>),
    /// `(x − mean) · components`, components row-major `k × p`.
    Project {
        mean: Vec<f64>,
        components: Vec<Vec<f64>>,
    },
    Select(Vec<usize>),
}

impl Fitted {
    fn transform_row(&self, x: &[f64], out: &mut Vec<f64>) {
        match self {
            Fitted::Affine { shift, scale } => out.extend(
                x.iter()
                    .zip(shift)
                    .zip(scale)
                    .map(|((v, s), c)| (v - s) * c),
            ),
            Fitted::OneHot { keep, encode } => {
                out.extend(keep.iter().map(|&j| x[j]));
                for (j, values) in encode {
                    let at = values.iter().position(|v| *v == x[*j]);
                    out.extend((0..values.len()).map(|i| if Some(i) == at { 1.0 } else { 0.0 }));
                }
            }
            Fitted::Polynomial(terms) => out.extend(
                terms
                    .iter()
                    .map(|t| t.iter().map(|&j| x[j]).product::<f64>()),
            ),
            Fitted::Project { mean, components } => out.extend(components.iter().map(|c| {
                c.iter()
                    .zip(x.iter().zip(mean))
                    .map(|(w, (v, m))| w * (v - m))
                    .sum::<f64>()
            })),
            Fitted::Select(keep) => out.extend(keep.iter().map(|&j| x[j])),
        }
    }

    fn names(&self, input: &[String]) -> Vec<String> {
        match self {
            Fitted::Affine { .. } => input.to_vec(),
            Fitted::OneHot { keep, encode } => keep
                .iter()
                .map(|&j| input[j].clone())
                .chain(encode.iter().flat_map(|(j, values)| {
                    values.iter().map(move |v| format!("{}={v}", input[*j]))
                }))
                .collect(),
            Fitted::Polynomial(terms) => terms
                .iter()
                .map(|t| {
                    t.iter()
                        .map(|&j| input[j].as_str())
                        .collect::<Vec<_>>()
                        .join("*")
                })
                .collect(),
            Fitted::Project { components, .. } => {
                (1..=components.len()).map(|i| format!("pc{i}")).collect()
            }
            Fitted::Select(keep) => keep.iter().map(|&j| input[j].clone()).collect(),
        }
    }
}

/// Steps fitted on `rows` of `data`, each on the output of the one before.
#[derive(Clone, Debug)]
pub struct FittedSteps(Vec<Fitted>);

/// Fit `steps` on `rows` of `data`.
pub fn fit_steps(steps: &[Step], data: &Dataset, rows: &[usize]) -> Result<FittedSteps, String> {
    let mut fitted = Vec::with_capacity(steps.len());
    // The training rows as the next step sees them, and the target of those rows.
    let mut x = data.x.select_rows(rows);
    let mut names = data.feature_names.clone();
    for step in steps {
        let f = fit_one(step, &x, &names, &data.y, rows)?;
        x = apply(&f, &x, &(0..x.rows()).collect::<Vec<_>>());
        names = f.names(&names);
        fitted.push(f);
    }
    Ok(FittedSteps(fitted))
}

/// `rows` of `x` through the fitted steps: a `rows.len()`-row matrix.
pub fn transform(steps: &FittedSteps, x: &Matrix, rows: &[usize]) -> Matrix {
    let mut m = x.select_rows(rows);
    for f in &steps.0 {
        m = apply(f, &m, &(0..m.rows()).collect::<Vec<_>>());
    }
    m
}

/// The whole of `data` through fitted steps, as a dataset with the same target.
pub fn transform_dataset(steps: &FittedSteps, data: &Dataset) -> Result<Dataset, String> {
    let all: Vec<usize> = (0..data.rows()).collect();
    let x = transform(steps, &data.x, &all);
    let mut names = data.feature_names.clone();
    for f in &steps.0 {
        names = f.names(&names);
    }
    Dataset::new(data.name.clone(), x, data.y.clone(), names)
}

fn apply(f: &Fitted, x: &Matrix, rows: &[usize]) -> Matrix {
    let mut data = Vec::new();
    let mut row = Vec::new();
    for &r in rows {
        row.clear();
        f.transform_row(x.row(r), &mut row);
        data.extend_from_slice(&row);
    }
    let cols = if rows.is_empty() {
        0
    } else {
        data.len() / rows.len()
    };
    Matrix::new(rows.len(), cols, data).expect("every row has the same width")
}

/// Fit one step on the training matrix `x` (its rows are `rows` of the dataset whose target is `y`).
fn fit_one(
    step: &Step,
    x: &Matrix,
    names: &[String],
    y: &Target,
    rows: &[usize],
) -> Result<Fitted, String> {
    Ok(match step {
        Step::Standard => fit_standard(x),
        Step::MinMax => fit_min_max(x),
        Step::OneHot(cols) => fit_one_hot(x, names, cols)?,
        Step::Polynomial(d) => fit_polynomial(x.cols(), *d)?,
        Step::Pca(k) => fit_pca(x, *k)?,
        Step::SelectKBest(k) => fit_select_k_best(x, y, rows, *k)?,
    })
}

/// Column `j` of `x`, top to bottom.
fn column(x: &Matrix, j: usize) -> impl Iterator<Item = f64> + '_ {
    (0..x.rows()).map(move |i| x.get(i, j))
}

/// The mean of every column of `x`.
fn column_means(x: &Matrix) -> Vec<f64> {
    let n = x.rows() as f64;
    (0..x.cols())
        .map(|j| column(x, j).sum::<f64>() / n)
        .collect()
}

/// `standard_scaler`: shift by the mean, scale by 1 / standard deviation (ddof 0); a constant
/// column is only centred.
fn fit_standard(x: &Matrix) -> Fitted {
    let n = x.rows();
    let mean = column_means(x);
    let scale = (0..x.cols())
        .map(|j| {
            let var = column(x, j).map(|v| (v - mean[j]).powi(2)).sum::<f64>() / n as f64;
            let sd = var.sqrt();
            if sd > 0.0 && sd.is_finite() {
                1.0 / sd
            } else {
                1.0
            }
        })
        .collect();
    Fitted::Affine { shift: mean, scale }
}

/// `minmax_scaler`: shift by the minimum, scale by 1 / range (1 for a constant column).
fn fit_min_max(x: &Matrix) -> Fitted {
    let min: Vec<f64> = (0..x.cols())
        .map(|j| column(x, j).fold(f64::INFINITY, f64::min))
        .collect();
    let scale = (0..x.cols())
        .map(|j| {
            let range = column(x, j).fold(f64::NEG_INFINITY, f64::max) - min[j];
            if range > 0.0 && range.is_finite() {
                1.0 / range
            } else {
                1.0
            }
        })
        .collect();
    Fitted::Affine { shift: min, scale }
}

/// `one_hot:COLS`: the distinct values of each named column (a name, or a 0-based index).
fn fit_one_hot(x: &Matrix, names: &[String], cols: &[String]) -> Result<Fitted, String> {
    let p = x.cols();
    let mut encode = Vec::new();
    for c in cols {
        let j = names
            .iter()
            .position(|n| n == c)
            .or_else(|| c.parse::<usize>().ok().filter(|&j| j < p))
            .ok_or_else(|| {
                format!(
                    "pipeline step one_hot: no column `{c}`; the columns here are {} (or give a 0-based index below {p})",
                    names.join(", ")
                )
            })?;
        if encode.iter().any(|(k, _)| *k == j) {
            return Err(format!(
                "pipeline step one_hot: column `{c}` is named twice"
            ));
        }
        let values: BTreeSet<u64> = column(x, j).map(f64::to_bits).collect();
        let mut values: Vec<f64> = values.into_iter().map(f64::from_bits).collect();
        values.sort_by(f64::total_cmp);
        encode.push((j, values));
    }
    let keep = (0..p)
        .filter(|j| !encode.iter().any(|(k, _)| k == j))
        .collect();
    Ok(Fitted::OneHot { keep, encode })
}

/// `polynomial:D` on `p` features: every monomial of degree 1..=D, in scikit-learn's order.
fn fit_polynomial(p: usize, d: usize) -> Result<Fitted, String> {
    let mut terms: Vec<Vec<usize>> = Vec::new();
    let mut last: Vec<Vec<usize>> = vec![Vec::new()];
    for _ in 0..d {
        let mut next = Vec::new();
        for t in &last {
            let from = t.last().copied().unwrap_or(0);
            for j in from..p {
                let mut u = t.clone();
                u.push(j);
                next.push(u);
            }
            if terms.len() + next.len() > MAX_FEATURES {
                return Err(format!(
                    "pipeline step polynomial:{d} on {p} features gives more than {MAX_FEATURES} features; use a lower degree or select features first"
                ));
            }
        }
        terms.extend(next.iter().cloned());
        last = next;
    }
    Ok(Fitted::Polynomial(terms))
}

/// `pca:K`: the K leading eigenvectors of the covariance (ddof 1), each signed so that its largest
/// loading is positive.
fn fit_pca(x: &Matrix, k: usize) -> Result<Fitted, String> {
    let (n, p) = (x.rows(), x.cols());
    if k > p.min(n) {
        return Err(format!(
            "pipeline step pca:{k}: at most min(rows, features) = {} components here",
            p.min(n)
        ));
    }
    let mean = column_means(x);
    let mut cov = vec![0.0; p * p];
    for i in 0..n {
        let r = x.row(i);
        for a in 0..p {
            let da = r[a] - mean[a];
            for b in a..p {
                cov[a * p + b] += da * (r[b] - mean[b]);
            }
        }
    }
    for a in 0..p {
        for b in a..p {
            cov[a * p + b] /= (n.max(2) - 1) as f64;
            cov[b * p + a] = cov[a * p + b];
        }
    }
    let (values, vectors) = jacobi_eigen(cov, p);
    let mut order: Vec<usize> = (0..p).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let components = order[..k]
        .iter()
        .map(|&c| {
            let mut v: Vec<f64> = (0..p).map(|r| vectors[r * p + c]).collect();
            let big = v
                .iter()
                .copied()
                .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
            if big < 0.0 {
                v.iter_mut().for_each(|x| *x = -*x);
            }
            v
        })
        .collect();
    Ok(Fitted::Project { mean, components })
}

/// `select_k_best:K`: the K features of highest F statistic (NaN last, ties to the lower index),
/// kept in their original order.
fn fit_select_k_best(x: &Matrix, y: &Target, rows: &[usize], k: usize) -> Result<Fitted, String> {
    let p = x.cols();
    if k > p {
        return Err(format!(
            "pipeline step select_k_best:{k}: only {p} features here; keep at most {p}"
        ));
    }
    let scores = f_scores(x, y, rows);
    let mut order: Vec<usize> = (0..p).collect();
    let key = |j: usize| {
        if scores[j].is_nan() {
            f64::NEG_INFINITY
        } else {
            scores[j]
        }
    };
    order.sort_by(|&a, &b| key(b).total_cmp(&key(a)).then(a.cmp(&b)));
    let mut keep = order[..k].to_vec();
    keep.sort_unstable();
    Ok(Fitted::Select(keep))
}

/// The univariate F statistic of each column of `x` against the target of `rows`: one-way ANOVA
/// (scikit-learn's `f_classif`) for classes, `f_regression` (from Pearson's r) for values. NaN for
/// a constant feature.
pub fn f_scores(x: &Matrix, y: &Target, rows: &[usize]) -> Vec<f64> {
    let (n, p) = (x.rows(), x.cols());
    match y {
        Target::Classes { labels, names } => {
            let k = names.len();
            let label: Vec<usize> = rows.iter().map(|&r| labels[r] as usize).collect();
            let mut count = vec![0usize; k];
            label.iter().for_each(|&c| count[c] += 1);
            let groups = count.iter().filter(|&&c| c > 0).count();
            (0..p)
                .map(|j| {
                    let mut sum = vec![0.0; k];
                    let mut total = 0.0;
                    for i in 0..n {
                        sum[label[i]] += x.get(i, j);
                        total += x.get(i, j);
                    }
                    let grand = total / n as f64;
                    let between: f64 = (0..k)
                        .filter(|&c| count[c] > 0)
                        .map(|c| count[c] as f64 * (sum[c] / count[c] as f64 - grand).powi(2))
                        .sum();
                    let within: f64 = (0..n)
                        .map(|i| (x.get(i, j) - sum[label[i]] / count[label[i]] as f64).powi(2))
                        .sum();
                    let (dfb, dfw) = (groups as f64 - 1.0, n as f64 - groups as f64);
                    (between / dfb) / (within / dfw)
                })
                .collect()
        }
        Target::Values(v) => {
            let t: Vec<f64> = rows.iter().map(|&r| v[r]).collect();
            let ty = t.iter().sum::<f64>() / n as f64;
            (0..p)
                .map(|j| {
                    let mx = (0..n).map(|i| x.get(i, j)).sum::<f64>() / n as f64;
                    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
                    for (i, ti) in t.iter().enumerate() {
                        let (dx, dy) = (x.get(i, j) - mx, ti - ty);
                        sxy += dx * dy;
                        sxx += dx * dx;
                        syy += dy * dy;
                    }
                    let r = sxy / (sxx * syy).sqrt();
                    r * r / (1.0 - r * r) * (n as f64 - 2.0)
                })
                .collect()
        }
    }
}

/// Eigenvalues and eigenvectors (columns of the row-major `p × p` result) of the symmetric `a`, by
/// cyclic Jacobi rotations until the off-diagonal mass is below 1e-22 of the total.
///
/// Written by hand rather than taken from faer, whose decomposition picks its parallelism from a
/// process-wide setting: a model must be the same at every thread count, and a fixed sweep order
/// guarantees that. p is the feature count of a course dataset (tens), where O(p³) per sweep is
/// nothing.
fn jacobi_eigen(mut a: Vec<f64>, p: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0; p * p];
    (0..p).for_each(|i| v[i * p + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..100 {
        let off: f64 = (0..p)
            .flat_map(|i| (0..p).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * p + j].powi(2))
            .sum();
        if off <= 1e-22 * total || off == 0.0 {
            break;
        }
        for i in 0..p {
            for j in i + 1..p {
                let aij = a[i * p + j];
                if aij == 0.0 {
                    continue;
                }
                let theta = (a[j * p + j] - a[i * p + i]) / (2.0 * aij);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..p {
                    let (aki, akj) = (a[k * p + i], a[k * p + j]);
                    a[k * p + i] = c * aki - s * akj;
                    a[k * p + j] = s * aki + c * akj;
                }
                for k in 0..p {
                    let (aik, ajk) = (a[i * p + k], a[j * p + k]);
                    a[i * p + k] = c * aik - s * ajk;
                    a[j * p + k] = s * aik + c * ajk;
                }
                for k in 0..p {
                    let (vki, vkj) = (v[k * p + i], v[k * p + j]);
                    v[k * p + i] = c * vki - s * vkj;
                    v[k * p + j] = s * vki + c * vkj;
                }
            }
        }
    }
    ((0..p).map(|i| a[i * p + i]).collect(), v)
}

/// An estimator whose preprocessing steps are fitted on each training set it is given.
#[derive(Debug)]
pub struct Pipeline {
    steps: Vec<Step>,
    inner: Box<dyn Estimator>,
}

impl Pipeline {
    pub fn new(steps: Vec<Step>, inner: Box<dyn Estimator>) -> Pipeline {
        Pipeline { steps, inner }
    }
}

impl Estimator for Pipeline {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        let steps = fit_steps(&self.steps, data, rows)?;
        let transformed = transform_dataset(&steps, data)?;
        let model = self.inner.fit(&transformed, rows, weights, seed, options)?;
        Ok(Box::new(PipelineModel { steps, model }))
    }
}

struct PipelineModel {
    steps: FittedSteps,
    model: Box<dyn Model>,
}

impl Model for PipelineModel {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        let t = transform(&self.steps, x, rows);
        self.model.predict(&t, &(0..rows.len()).collect::<Vec<_>>())
    }

    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        let t = transform(&self.steps, x, rows);
        self.model
            .predict_proba(&t, &(0..rows.len()).collect::<Vec<_>>())
    }

    fn oob_score(&self) -> Option<f64> {
        self.model.oob_score()
    }

    fn oob_curve(&self) -> Option<&[(usize, f64)]> {
        self.model.oob_curve()
    }

    fn n_members(&self) -> Option<usize> {
        self.model.n_members()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(rows: &[[f64; 3]], labels: &[u32]) -> Dataset {
        let x = Matrix::new(rows.len(), 3, rows.iter().flatten().copied().collect()).unwrap();
        Dataset::new(
            "t",
            x,
            Target::Classes {
                labels: labels.to_vec(),
                names: vec!["a".into(), "b".into()],
            },
            vec!["u".into(), "v".into(), "w".into()],
        )
        .unwrap()
    }

    fn run(text: &str, d: &Dataset, fit_rows: &[usize]) -> Matrix {
        let steps = fit_steps(&parse(text).unwrap(), d, fit_rows).unwrap();
        transform(&steps, &d.x, &(0..d.rows()).collect::<Vec<_>>())
    }

    #[test]
    fn parse_names_what_is_wrong() {
        assert_eq!(parse("none").unwrap(), vec![]);
        assert_eq!(
            parse(" standard_scaler > select_k_best:10 ").unwrap(),
            vec![Step::Standard, Step::SelectKBest(10)]
        );
        assert_eq!(
            parse("standard_scalar").unwrap_err(),
            "unknown pipeline step `standard_scalar`; known: standard_scaler, minmax_scaler, \
             one_hot:COLS, polynomial:D, pca:K, select_k_best:K (steps are joined by `>`)"
        );
        assert_eq!(
            parse("pca:0").unwrap_err(),
            "pipeline step `pca:0`: give the number of components as a whole number ≥ 1, e.g. `pca:2`"
        );
        assert!(parse("one_hot").unwrap_err().contains("name the columns"));
    }

    #[test]
    fn scalers_learn_from_the_training_rows_only() {
        let d = data(
            &[[1.0, 5.0, 0.0], [3.0, 5.0, 1.0], [100.0, 5.0, 2.0]],
            &[0, 1, 0],
        );
        // Fitted on rows 0 and 1: mean 2, sd 1 for `u`; `v` is constant (centred only).
        let m = run("standard_scaler", &d, &[0, 1]);
        assert_eq!(m.row(0), &[-1.0, 0.0, -1.0]);
        assert_eq!(m.row(2), &[98.0, 0.0, 3.0]);
        let m = run("minmax_scaler", &d, &[0, 1]);
        assert_eq!(m.row(1), &[1.0, 0.0, 1.0]);
        assert_eq!(m.row(2), &[49.5, 0.0, 2.0]);
    }

    #[test]
    fn one_hot_and_polynomial_follow_scikit_learn() {
        let d = data(
            &[[1.0, 2.0, 7.0], [3.0, 4.0, 8.0], [5.0, 6.0, 9.0]],
            &[0, 1, 0],
        );
        // Column w encoded from the first two rows: 9.0 was never seen, so all zeros.
        let m = run("one_hot:w", &d, &[0, 1]);
        assert_eq!(m.cols(), 4);
        assert_eq!(m.row(0), &[1.0, 2.0, 1.0, 0.0]);
        assert_eq!(m.row(2), &[5.0, 6.0, 0.0, 0.0]);
        // PolynomialFeatures(2, include_bias=False) on (u, v, w) = (1, 2, 7):
        // u, v, w, u², uv, uw, v², vw, w².
        let m = run("polynomial:2", &d, &[0, 1, 2]);
        assert_eq!(m.row(0), &[1.0, 2.0, 7.0, 1.0, 2.0, 7.0, 4.0, 14.0, 49.0]);
    }

    #[test]
    fn select_k_best_keeps_the_features_that_separate_the_classes() {
        // u separates the classes, v is noise, w is constant (F = NaN, never chosen first).
        let d = data(
            &[
                [0.0, 1.0, 3.0],
                [0.1, 5.0, 3.0],
                [1.0, 2.0, 3.0],
                [1.1, 4.0, 3.0],
            ],
            &[0, 0, 1, 1],
        );
        let scores = f_scores(&d.x, &d.y, &[0, 1, 2, 3]);
        // ANOVA F of u: between = 4 · 0.25 = 1 on 1 df, within = 4 · 0.0025 = 0.01 on 2 df.
        assert!((scores[0] - 200.0).abs() < 1e-9, "{scores:?}");
        assert!(scores[2].is_nan());
        let m = run("select_k_best:1", &d, &[0, 1, 2, 3]);
        assert_eq!(m.cols(), 1);
        assert_eq!(m.row(3), &[1.1]);
    }

    #[test]
    fn pca_finds_the_direction_of_largest_variance() {
        // Points along (1, 1, 0) with a little spread along (1, −1, 0).
        let rows: Vec<[f64; 3]> = (0..20)
            .map(|i| {
                let t = (i / 2) as f64 - 4.5;
                let e = if i % 2 == 0 { 0.1 } else { -0.1 };
                [t + e, t - e, 0.0]
            })
            .collect();
        let d = data(
            &rows,
            &vec![0; 10]
                .into_iter()
                .chain(vec![1; 10])
                .collect::<Vec<_>>(),
        );
        let steps = fit_steps(&parse("pca:2").unwrap(), &d, &(0..20).collect::<Vec<_>>()).unwrap();
        let Fitted::Project { components, .. } = &steps.0[0] else {
            panic!("pca fits a projection")
        };
        let h = std::f64::consts::FRAC_1_SQRT_2;
        for (got, want) in components[0].iter().zip([h, h, 0.0]) {
            assert!((got - want).abs() < 1e-12, "{components:?}");
        }
        // The second component is ±(1, −1, 0)/√2, its largest loading made positive.
        assert!((components[1][0].abs() - h).abs() < 1e-12, "{components:?}");
        assert!(components[1][0] * components[1][1] < 0.0);
        assert!(parse("pca:4")
            .map(|s| fit_steps(&s, &d, &[0, 1, 2]).unwrap_err())
            .unwrap()
            .contains("at most min(rows, features) = 3"));
    }
}

//! Boosting: `adaboost` (SAMME, Zhu, Zou, Rosset & Hastie 2009), `gradient_boosting` (Friedman 2001:
//! regression trees on the loss gradient with Newton leaf values) and `hist_gradient_boosting`
//! (LightGBM-style: second-order gains on binned features, best-first trees with a leaf budget).
//!
//! Boosting is sequential across stages; the trees inside reuse one [`Binned`] view per fit. Losses:
//! log loss (binary: one tree per stage on the log-odds; multi-class: one tree per class on softmax
//! scores) and squared error for a numeric target. Stage trees are seeded `child_seed(seed, stage)`.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::child_seed;
use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Estimator, FitOptions, Hp, HyperParams, Model, Prediction};

use super::common::{argmax, check_fit};
use super::params::{Default as D, Kind, ParamSpec, Params};
use super::tree::{grow_with_ranges, Binned, Criterion, Entry, Tree, TreeConfig, MAX_BINS};

const fn n_estimators(name: &'static str, default: i64) -> ParamSpec {
    ParamSpec {
        name,
        kind: Kind::Int {
            min: 1,
            max: 100_000,
        },
        default: D::Int(default),
        doc: "number of boosting stages",
    }
}

const fn learning_rate(default: f64) -> ParamSpec {
    ParamSpec {
        name: "learning_rate",
        kind: Kind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: true,
        },
        default: D::Float(default),
        doc: "shrinkage applied to each stage",
    }
}

/// `adaboost` parameters.
pub const ADA_SPECS: &[ParamSpec] = &[
    n_estimators("n_estimators", 50),
    learning_rate(1.0),
    ParamSpec {
        name: "base",
        kind: Kind::Estimator,
        default: D::Text("decision_tree"),
        doc: "the weak learner (a decision_tree base is a stump, max_depth = base_max_depth)",
    },
    ParamSpec {
        name: "base_max_depth",
        kind: Kind::Int { min: 1, max: 1000 },
        default: D::Int(1),
        doc: "depth of a decision_tree base",
    },
];

/// `gradient_boosting` parameters.
pub const GB_SPECS: &[ParamSpec] = &[
    n_estimators("n_estimators", 100),
    learning_rate(0.1),
    ParamSpec {
        name: "max_depth",
        kind: Kind::Int { min: 1, max: 1000 },
        default: D::Int(3),
        doc: "depth of each stage's tree",
    },
    ParamSpec {
        name: "min_samples_leaf",
        kind: Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        default: D::Int(1),
        doc: "fewest training rows per leaf",
    },
];

/// `hist_gradient_boosting` parameters.
pub const HGB_SPECS: &[ParamSpec] = &[
    n_estimators("max_iter", 100),
    learning_rate(0.1),
    ParamSpec {
        name: "max_leaf_nodes",
        kind: Kind::Int {
            min: 2,
            max: 100_000,
        },
        default: D::Int(31),
        doc: "leaves per tree (grown best-first)",
    },
    ParamSpec {
        name: "max_depth",
        kind: Kind::Int { min: 0, max: 1000 },
        default: D::Int(0),
        doc: "deepest level; 0 = no limit",
    },
    ParamSpec {
        name: "min_samples_leaf",
        kind: Kind::Int {
            min: 1,
            max: i64::MAX,
        },
        default: D::Int(20),
        doc: "fewest training rows per leaf",
    },
    ParamSpec {
        name: "l2_regularization",
        kind: Kind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: false,
        },
        default: D::Float(0.0),
        doc: "λ in the leaf value -G / (H + λ)",
    },
    ParamSpec {
        name: "max_bins",
        kind: Kind::Int { min: 2, max: 256 },
        default: D::Int(255),
        doc: "quantile bins per feature",
    },
];

// ---------------------------------------------------------------------------------------------
// AdaBoost (SAMME)

#[derive(Debug)]
pub struct AdaBoost {
    base: Box<dyn Estimator>,
    n: usize,
    lr: f64,
}

impl AdaBoost {
    pub fn from_params(params: &HyperParams) -> Result<AdaBoost, String> {
        let p = Params::new("adaboost", params, ADA_SPECS)?;
        let base_name = p.text("base")?;
        let mut base_params = HyperParams::new();
        if base_name == "decision_tree" {
            base_params.insert("max_depth".into(), Hp::Int(p.int("base_max_depth")?));
        }
        Ok(AdaBoost {
            base: super::build(&base_name, &base_params)?,
            n: p.usize("n_estimators")?,
            lr: p.float("learning_rate")?,
        })
    }
}

struct AdaModel {
    models: Vec<(f64, Box<dyn Model>)>,
    k: usize,
}

impl AdaModel {
    /// SAMME decision: Σ α_m [h_m(x) = c] / Σ α_m.
    fn decision(&self, x: &Matrix, rows: &[usize]) -> Matrix {
        let mut out = Matrix::zeros(rows.len(), self.k);
        let total: f64 = self.models.iter().map(|(a, _)| a).sum();
        for (alpha, m) in &self.models {
            if let Prediction::Classes(c) = m.predict(x, rows) {
                for (i, &c) in c.iter().enumerate() {
                    out.row_mut(i)[c as usize] += alpha / total;
                }
            }
        }
        out
    }
}

impl Model for AdaModel {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        let d = self.decision(x, rows);
        Prediction::Classes((0..rows.len()).map(|i| argmax(d.row(i)) as u32).collect())
    }

    /// scikit-learn's SAMME probabilities: softmax of the decision divided by `k - 1`.
    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        let mut d = self.decision(x, rows);
        let scale = 1.0 / (self.k.max(2) - 1) as f64;
        for i in 0..rows.len() {
            let r = d.row_mut(i);
            r.iter_mut().for_each(|v| *v *= scale);
            softmax(r);
        }
        Some(d)
    }
}

impl Estimator for AdaBoost {
    fn name(&self) -> &'static str {
        "adaboost"
    }

    fn fit(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        check_fit(self.name(), data, rows, weights)?;
        let Target::Classes { labels, names } = &data.y else {
            return Err(format!(
                "adaboost: needs classes but dataset {} has a numeric target",
                data.name
            ));
        };
        let k = names.len();
        let mut w: Vec<f64> = (0..rows.len())
            .map(|i| weights.map_or(1.0, |w| w[i]))
            .collect();
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|v| *v /= total);
        let mut models = Vec::new();
        for stage in 0..self.n {
            let model = self.base.fit(
                data,
                rows,
                Some(&w),
                child_seed(seed, stage as u64),
                options,
            )?;
            let Prediction::Classes(pred) = model.predict(&data.x, rows) else {
                return Err("adaboost: the base estimator must predict classes".into());
            };
            let wrong: Vec<bool> = pred
                .iter()
                .zip(rows)
                .map(|(p, &r)| *p != labels[r])
                .collect();
            let err: f64 = w
                .iter()
                .zip(&wrong)
                .filter(|(_, &x)| x)
                .map(|(v, _)| v)
                .sum::<f64>()
                / w.iter().sum::<f64>();
            if err <= 1e-12 {
                models.push((1.0, model));
                break;
            }
            if err >= 1.0 - 1.0 / k as f64 {
                if models.is_empty() {
                    models.push((1.0, model));
                }
                break;
            }
            let alpha = self.lr * (((1.0 - err) / err).ln() + ((k - 1) as f64).ln());
            for (v, &x) in w.iter_mut().zip(&wrong) {
                if x {
                    *v *= alpha.exp();
                }
            }
            let total: f64 = w.iter().sum();
            w.iter_mut().for_each(|v| *v /= total);
            models.push((alpha, model));
        }
        Ok(Box::new(AdaModel { models, k }))
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

// ---------------------------------------------------------------------------------------------
// Gradient boosting (both flavours)

/// Which gradient booster.
#[derive(Clone, Debug, PartialEq)]
enum Flavour {
    /// Friedman's: squared-error trees on the gradient, Newton leaf values.
    Classic { max_depth: usize },
    /// Histogram: second-order gain, best-first with a leaf budget.
    Hist {
        max_leaf_nodes: usize,
        max_depth: usize,
        lambda: f64,
        max_bins: usize,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub struct GradientBoosting {
    name: &'static str,
    flavour: Flavour,
    n: usize,
    lr: f64,
    min_samples_leaf: usize,
}

impl GradientBoosting {
    pub fn classic(params: &HyperParams) -> Result<GradientBoosting, String> {
        let p = Params::new("gradient_boosting", params, GB_SPECS)?;
        Ok(GradientBoosting {
            name: "gradient_boosting",
            flavour: Flavour::Classic {
                max_depth: p.usize("max_depth")?,
            },
            n: p.usize("n_estimators")?,
            lr: p.float("learning_rate")?,
            min_samples_leaf: p.usize("min_samples_leaf")?,
        })
    }

    pub fn hist(params: &HyperParams) -> Result<GradientBoosting, String> {
        let p = Params::new("hist_gradient_boosting", params, HGB_SPECS)?;
        Ok(GradientBoosting {
            name: "hist_gradient_boosting",
            flavour: Flavour::Hist {
                max_leaf_nodes: p.usize("max_leaf_nodes")?,
                max_depth: p.usize("max_depth")?,
                lambda: p.float("l2_regularization")?,
                max_bins: p.usize("max_bins")?,
            },
            n: p.usize("max_iter")?,
            lr: p.float("learning_rate")?,
            min_samples_leaf: p.usize("min_samples_leaf")?,
        })
    }
}

/// A boosted additive model: `score_c(x) = init_c + Σ_stages tree_{stage,c}(x)` (learning rate
/// folded into the trees).
struct BoostModel {
    init: Vec<f64>,
    /// `stages × width` trees, stage-major.
    trees: Vec<Tree>,
    width: usize,
    /// 0 for regression.
    k: usize,
}

impl BoostModel {
    fn scores(&self, x: &[f64], out: &mut [f64]) {
        out.copy_from_slice(&self.init);
        for stage in self.trees.chunks(self.width) {
            for (o, t) in out.iter_mut().zip(stage) {
                *o += t.value(x)[0];
            }
        }
    }

    fn proba(&self, x: &[f64], out: &mut [f64]) {
        let mut s = vec![0.0; self.width];
        self.scores(x, &mut s);
        if self.k == 2 {
            let p1 = 1.0 / (1.0 + (-s[0]).exp());
            out[0] = 1.0 - p1;
            out[1] = p1;
        } else {
            out.copy_from_slice(&s);
            softmax(out);
        }
    }
}

impl Model for BoostModel {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        if self.k == 0 {
            let mut s = [0.0];
            return Prediction::Values(
                rows.iter()
                    .map(|&r| {
                        self.scores(x.row(r), &mut s);
                        s[0]
                    })
                    .collect(),
            );
        }
        let mut p = vec![0.0; self.k];
        Prediction::Classes(
            rows.iter()
                .map(|&r| {
                    self.proba(x.row(r), &mut p);
                    argmax(&p) as u32
                })
                .collect(),
        )
    }

    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        if self.k == 0 {
            return None;
        }
        let mut out = Matrix::zeros(rows.len(), self.k);
        for (i, &r) in rows.iter().enumerate() {
            self.proba(x.row(r), out.row_mut(i));
        }
        Some(out)
    }
}

impl Estimator for GradientBoosting {
    fn name(&self) -> &'static str {
        self.name
    }

    fn fit(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        check_fit(self.name, data, rows, weights)?;
        let m = rows.len();
        let sw: Vec<f64> = (0..m).map(|i| weights.map_or(1.0, |w| w[i])).collect();
        let total_w: f64 = sw.iter().sum();
        let k = data.y.n_classes();
        let width = if k == 2 || k == 0 { 1 } else { k };
        // Targets as one-hot (classes) or values.
        let target = |i: usize, c: usize| -> f64 {
            match &data.y {
                Target::Classes { labels, .. } => {
                    let l = labels[rows[i]] as usize;
                    if k == 2 {
                        (l == 1) as u8 as f64
                    } else {
                        (l == c) as u8 as f64
                    }
                }
                Target::Values(v) => v[rows[i]],
            }
        };
        // Initial scores: the weighted mean, log-odds or log prior.
        let init: Vec<f64> = (0..width)
            .map(|c| {
                let mean = (0..m).map(|i| sw[i] * target(i, c)).sum::<f64>() / total_w;
                match k {
                    0 => mean,
                    2 => {
                        let p = mean.clamp(1e-12, 1.0 - 1e-12);
                        (p / (1.0 - p)).ln()
                    }
                    _ => mean.max(1e-12).ln(),
                }
            })
            .collect();
        let max_bins = match self.flavour {
            Flavour::Hist { max_bins, .. } => max_bins,
            Flavour::Classic { .. } => MAX_BINS,
        };
        let binned = Binned::new(data, rows, max_bins)?;
        let cfg = match self.flavour {
            Flavour::Classic { max_depth } => TreeConfig {
                criterion: Criterion::Mse,
                n_classes: 0,
                max_depth,
                min_samples_split: 2,
                min_samples_leaf: self.min_samples_leaf,
                max_features: data.features(),
                max_leaf_nodes: 0,
                random_split: false,
                subtraction: true,
                parallel: options.parallel,
            },
            Flavour::Hist {
                max_leaf_nodes,
                max_depth,
                lambda,
                ..
            } => TreeConfig {
                criterion: Criterion::Newton { lambda },
                n_classes: 0,
                max_depth,
                min_samples_split: 2,
                min_samples_leaf: self.min_samples_leaf,
                max_features: data.features(),
                max_leaf_nodes,
                random_split: false,
                subtraction: true,
                parallel: options.parallel,
            },
        };
        let mut scores: Vec<f64> = (0..m).flat_map(|_| init.iter().copied()).collect();
        let mut grad = vec![0.0; m * width];
        let mut hess = vec![0.0; m * width];
        let mut entries: Vec<Entry> = Vec::with_capacity(m);
        let mut leaf_of = vec![0usize; m];
        let mut trees = Vec::with_capacity(self.n * width);
        let mut p = vec![0.0; width];
        for stage in 0..self.n {
            // Gradients and hessians of the loss at the current scores.
            for i in 0..m {
                let s = &scores[i * width..(i + 1) * width];
                match k {
                    0 => {
                        grad[i] = s[0] - target(i, 0);
                        hess[i] = 1.0;
                    }
                    2 => {
                        let q = 1.0 / (1.0 + (-s[0]).exp());
                        grad[i] = q - target(i, 0);
                        hess[i] = (q * (1.0 - q)).max(1e-16);
                    }
                    _ => {
                        p.copy_from_slice(s);
                        softmax(&mut p);
                        for c in 0..width {
                            grad[i * width + c] = p[c] - target(i, c);
                            hess[i * width + c] = (p[c] * (1.0 - p[c])).max(1e-16);
                        }
                    }
                }
            }
            for c in 0..width {
                entries.clear();
                entries.extend(rows.iter().enumerate().map(|(i, &r)| Entry {
                    row: r as u32,
                    class: i as u32,
                    w: sw[i],
                    // The squared-error tree fits the negative gradient; the Newton tree sums
                    // weighted gradients and hessians.
                    y: match self.flavour {
                        Flavour::Classic { .. } => -grad[i * width + c],
                        Flavour::Hist { .. } => sw[i] * grad[i * width + c],
                    },
                    h: sw[i] * hess[i * width + c],
                }));
                entries.retain(|e| e.w > 0.0);
                let mut rng =
                    Xoshiro256PlusPlus::seed_from_u64(child_seed(seed, (stage * width + c) as u64));
                let (mut tree, ranges) = grow_with_ranges(&binned, &mut entries, &cfg, &mut rng);
                // Rows of weight 0 are not in the tree's entries: walk them down.
                if entries.len() < m {
                    for (i, &r) in rows.iter().enumerate() {
                        leaf_of[i] = tree.leaf(data.x.row(r));
                    }
                }
                for (node, &(start, end)) in ranges.iter().enumerate() {
                    if tree.is_leaf(node) {
                        for e in &entries[start as usize..end as usize] {
                            leaf_of[e.class as usize] = node;
                        }
                    }
                }
                if let Flavour::Classic { .. } = self.flavour {
                    if k > 0 {
                        // Friedman's Newton step per leaf: Σ w (−g) / Σ w h, × (K−1)/K for softmax.
                        let factor = if k == 2 {
                            1.0
                        } else {
                            (k - 1) as f64 / k as f64
                        };
                        let mut num = vec![0.0; tree.node_count()];
                        let mut den = vec![0.0; tree.node_count()];
                        for i in 0..m {
                            num[leaf_of[i]] -= sw[i] * grad[i * width + c];
                            den[leaf_of[i]] += sw[i] * hess[i * width + c];
                        }
                        for leaf in 0..num.len() {
                            if den[leaf] > 0.0 {
                                tree.set_value(leaf, factor * num[leaf] / den[leaf].max(1e-150));
                            }
                        }
                    }
                }
                tree.scale(self.lr);
                for i in 0..m {
                    scores[i * width + c] += tree.node_value(leaf_of[i]);
                }
                trees.push(tree);
            }
        }
        Ok(Box::new(BoostModel {
            init,
            trees,
            width,
            k,
        }))
    }
}

//! Boosting: `adaboost` (SAMME, Zhu, Zou, Rosset & Hastie 2009), `gradient_boosting` (Friedman 2001:
//! regression trees on the loss gradient with Newton leaf values) and `hist_gradient_boosting`
//! (LightGBM-style: second-order gains on binned features, best-first trees with a leaf budget).
//!
//! Boosting is sequential across stages; the trees inside reuse one [`Binned`] view per fit. Losses:
//! log loss (binary: one tree per stage on the log-odds; multi-class: one tree per class on softmax
//! scores) and squared error for a numeric target. Stage trees are seeded `child_seed(seed, stage)`.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::child_seed;
use crate::data::{Dataset, Matrix, Target};
use crate::dataparallel::{quantum, HistogramReducer, LocalReducer, Shard};
use crate::estimator::{check_fit, Estimator, FitOptions, Hp, HyperParams, Model, Prediction};

use super::common::argmax;
use super::decision_tree::{read_splitter, splitter};
use super::params::{Default as D, Kind, ParamSpec, Params};
use super::tree::{
    grow_reduced, grow_with_ranges, Binned, Criterion, Cut, Entry, Splitter, Tree, TreeConfig,
    MAX_BINS,
};

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
    splitter("exact"),
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
    splitter("exact"),
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
        doc: "quantile bins per feature (splitter = hist)",
    },
    splitter("hist"),
    ParamSpec {
        name: "early_stopping",
        kind: Kind::Choice(&["auto", "true", "false"]),
        default: D::Text("auto"),
        doc: "hold out validation_fraction of the rows and stop when the validation loss stops \
              improving; auto = on above 10 000 rows (scikit-learn's rule)",
    },
    ParamSpec {
        name: "validation_fraction",
        kind: Kind::Float {
            min: 0.0,
            max: 1.0,
            open_min: true,
        },
        default: D::Float(0.1),
        doc: "share of the training rows held out for early stopping (stratified for classes)",
    },
    ParamSpec {
        name: "n_iter_no_change",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
        },
        default: D::Int(10),
        doc:
            "stop when none of the last n_iter_no_change iterations beat the one before them by tol",
    },
    ParamSpec {
        name: "tol",
        kind: Kind::Float {
            min: 0.0,
            max: f64::INFINITY,
            open_min: false,
        },
        default: D::Float(1e-7),
        doc: "the least improvement of the validation loss that counts",
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
        if params.contains_key("splitter") && base_name != "decision_tree" {
            return Err(format!(
                "adaboost: `splitter` applies to a decision_tree base, not to `{base_name}`; \
                 drop it or use base = \"decision_tree\""
            ));
        }
        let mut base_params = HyperParams::new();
        if base_name == "decision_tree" {
            base_params.insert("max_depth".into(), Hp::Int(p.int("base_max_depth")?));
            base_params.insert("splitter".into(), Hp::Text(p.text("splitter")?));
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

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
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

/// scikit-learn's early stopping of histogram gradient boosting.
#[derive(Clone, Debug, PartialEq)]
struct EarlyStopping {
    validation_fraction: f64,
    n_iter_no_change: usize,
    tol: f64,
}

/// Rows above which `early_stopping = "auto"` turns early stopping on (scikit-learn's rule).
const AUTO_EARLY_STOPPING_ROWS: usize = 10_000;

#[derive(Clone, Debug, PartialEq)]
pub struct GradientBoosting {
    name: &'static str,
    flavour: Flavour,
    n: usize,
    lr: f64,
    min_samples_leaf: usize,
    splitter: Splitter,
    /// `None`: never; `Some((settings, auto))`: always, or (auto) above
    /// [`AUTO_EARLY_STOPPING_ROWS`] training rows.
    early: Option<(EarlyStopping, bool)>,
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
            splitter: read_splitter(&p)?,
            early: None,
        })
    }

    pub fn hist(params: &HyperParams) -> Result<GradientBoosting, String> {
        // scikit-learn writes early_stopping = True / False / "auto": take a boolean as its text.
        let mut params = params.clone();
        if let Some(Hp::Bool(b)) = params.get("early_stopping") {
            let text = b.to_string();
            params.insert("early_stopping".into(), Hp::Text(text));
        }
        let p = Params::new("hist_gradient_boosting", &params, HGB_SPECS)?;
        let settings = EarlyStopping {
            validation_fraction: p.float("validation_fraction")?,
            n_iter_no_change: p.usize("n_iter_no_change")?,
            tol: p.float("tol")?,
        };
        if settings.validation_fraction >= 1.0 {
            return Err(
                "hist_gradient_boosting: `validation_fraction` = 1 leaves no training rows; use a \
                 fraction below 1 (scikit-learn's default is 0.1)"
                    .into(),
            );
        }
        let early = match p.text("early_stopping")?.as_str() {
            "false" => None,
            "true" => Some((settings, false)),
            _ => Some((settings, true)),
        };
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
            splitter: read_splitter(&p)?,
            early,
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

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        self.fit_shard(
            data,
            rows,
            weights,
            seed,
            options,
            Shard::WHOLE,
            &LocalReducer,
        )
    }
}

impl GradientBoosting {
    /// [`Estimator::fit`] as shard `shard` of a data-parallel fit (see [`crate::dataparallel`]):
    /// every shard passes the same dataset, rows, weights and seed, and `reducer` sums the
    /// histograms over the shards; every shard returns the model one process fits
    /// ([`Shard::WHOLE`] with [`LocalReducer`], which is what `fit` does). Histogram gradient
    /// boosting only.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_sharded(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        check_fit(self.name, data, rows, weights)?;
        self.fit_shard(data, rows, weights, seed, options, shard, reducer)
    }

    /// [`GradientBoosting::fit_sharded`] on checked inputs. Each shard owns the training
    /// positions `shard.range(m)`: their gradients, histograms (summed by `reducer`) and score
    /// updates; likewise `shard.range` of early stopping's validation rows, whose losses
    /// `reducer` gathers.
    #[allow(clippy::too_many_arguments)]
    fn fit_shard(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let hist = self.is_hist();
        self.check_shard(shard, hist)?;
        let k = data.y.n_classes();
        let width = if k == 2 || k == 0 { 1 } else { k };
        let stop = self.stopping(rows.len());
        let split = self.split(data, rows, weights, stop, seed)?;
        let (train, sw, val, val_w) = (&split.train, &split.sw, &split.val, &split.val_w);
        let m = train.len();
        self.check_rows(shard, m)?;
        // This process's training positions (all of them in one process).
        let own = shard.range(m);
        let own_train = &train[own.clone()];
        let ys = targets(&data.y, train, k, width);
        let init = initial_scores(k, width, m, |i, c| ys[i * width + c], |i| sw[i]);
        // Early stopping's validation rows are scored by shard as well: each shard keeps the
        // scores of its share (`shard.range` of them) and the losses are summed over all of them.
        let own_val = shard.range(val.len());
        let binned = self.codes(data, train, own_train, shard, reducer)?;
        let rows = Held {
            data,
            k,
            m,
            init,
            own_train,
            own_ys: &ys[own.start * width..own.end * width],
            own_sw: &sw[own],
            val: &val[own_val.clone()],
            val_w: &val_w[own_val],
            val_w_all: val_w,
        };
        self.boost(rows, &binned, stop, seed, options, shard, reducer)
    }

    /// The training and early-stopping validation rows (dataset rows, each in the order the fit
    /// takes them) of a fit on `rows` with `seed`, as [`Estimator::fit`] draws them; without
    /// early stopping every row trains and none validates. Reads only `data`'s targets, so a
    /// process that holds no features yet can tell which rows to read for
    /// [`GradientBoosting::fit_local`].
    pub fn split_rows(
        &self,
        data: &Dataset,
        rows: &[usize],
        seed: u64,
    ) -> Result<(Vec<usize>, Vec<usize>), String> {
        let split = self.split(data, rows, None, self.stopping(rows.len()), seed)?;
        Ok((split.train, split.val))
    }

    /// [`GradientBoosting::fit_sharded`] for a process that holds only its own rows, without
    /// sample weights. `rows` are this shard's rows of `data`: its training rows — the training
    /// positions `shard.range(m)` of the `m = train_targets.len()` over all shards, in position order
    /// — then its share `shard.range(validation)` of early stopping's `validation` rows, in
    /// order ([`GradientBoosting::split_rows`] says which dataset rows those are; `data` may
    /// hold other rows, which the fit does not read). `train_targets` is every training row's target
    /// in position order: the initial scores are means over all of them, summed in that order
    /// (a label or a value a row, far less than the features). The bin edges come from every
    /// shard's training rows (`Binned::for_shard`: column shards sent to each feature's owner),
    /// so the model is the one [`Estimator::fit`] returns on the whole dataset, bit for bit, on
    /// every shard.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_local(
        &self,
        data: &Dataset,
        rows: &[usize],
        train_targets: &Target,
        validation: usize,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let hist = self.is_hist();
        self.check_shard(shard, hist)?;
        let m = train_targets.len();
        self.check_rows(shard, m)?;
        let n = m + validation;
        let stop = self.stopping(n);
        let want = stop.map_or(0, |s| (s.validation_fraction * n as f64).ceil() as usize);
        if validation != want {
            return Err(format!(
                "{}: {validation} early-stopping validation rows for a fit on {n} rows, which \
                 holds out {want}; take the training and validation rows from `split_rows`",
                self.name
            ));
        }
        let (own, own_val) = (shard.range(m), shard.range(validation));
        if rows.len() != own.len() + own_val.len() {
            return Err(format!(
                "{}: this process was given {} rows, but its shard is {} training and {} \
                 validation rows",
                self.name,
                rows.len(),
                own.len(),
                own_val.len()
            ));
        }
        check_fit(self.name, data, rows, None)?;
        let k = train_targets.n_classes();
        if data.y.n_classes() != k {
            return Err(format!(
                "{}: this process's rows have {} classes, the training targets {k}",
                self.name,
                data.y.n_classes()
            ));
        }
        let width = if k == 2 || k == 0 { 1 } else { k };
        let init = initial_scores(
            k,
            width,
            m,
            |i, c| target_at(train_targets, i, k, c),
            |_| 1.0,
        );
        let (own_train, val) = rows.split_at(own.len());
        let own_ys = targets(&data.y, own_train, k, width);
        let (own_sw, val_w_all) = (vec![1.0; own.len()], vec![1.0; validation]);
        // One process holds every training row: the edges are computed in place (exact codes
        // too); several compute them from the column shards they exchange.
        let binned = if shard.size == 1 {
            self.codes(data, own_train, own_train, shard, reducer)?
        } else {
            let max_bins = match self.flavour {
                Flavour::Hist { max_bins, .. } => max_bins,
                Flavour::Classic { .. } => MAX_BINS,
            };
            Binned::for_shard(data, own_train, max_bins, shard, reducer)?
        };
        let rows = Held {
            data,
            k,
            m,
            init,
            own_train,
            own_ys: &own_ys,
            own_sw: &own_sw,
            val,
            val_w: &val_w_all[own_val],
            val_w_all: &val_w_all,
        };
        self.boost(rows, &binned, stop, seed, options, shard, reducer)
    }

    /// The stage loop over the rows one shard holds (`rows`), its training rows coded in
    /// `binned` by position: the same for a shard of the whole dataset and a shard holding only
    /// its own rows.
    #[allow(clippy::too_many_arguments)]
    fn boost(
        &self,
        rows: Held,
        binned: &Binned,
        stop: Option<&EarlyStopping>,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let hist = self.is_hist();
        let Held {
            data,
            k,
            m,
            init,
            own_train,
            own_ys,
            own_sw,
            val,
            val_w,
            val_w_all,
        } = rows;
        let width = if k == 2 || k == 0 { 1 } else { k };
        let ml = own_train.len();
        let val_ys = targets(&data.y, val, k, width);
        let mut losses = Vec::with_capacity(val.len());
        let cfg = self.tree_config(data, options);
        // Per-row work (gradients, score updates) runs over fixed chunks of rows, in parallel when
        // allowed: each row's numbers are its own, so the thread count cannot change them.
        let parallel = options.parallel && rayon::current_num_threads() > 1;
        let mut scores: Vec<f64> = (0..ml).flat_map(|_| init.iter().copied()).collect();
        let mut val_scores: Vec<f64> = (0..val.len()).flat_map(|_| init.iter().copied()).collect();
        let mut grad = vec![0.0; ml * width];
        let mut hess = vec![0.0; ml * width];
        let mut entries: Vec<Entry> = Vec::with_capacity(ml);
        let mut leaf_of = vec![0usize; ml];
        let mut trees = Vec::with_capacity(self.n * width);
        let mut history = Vec::new();
        if stop.is_some() {
            weighted_losses(k, width, &val_scores, &val_ys, val_w, &mut losses);
            history.push(-mean_loss(&losses, val_w_all, reducer));
        }
        for stage in 0..self.n {
            all_gradients(parallel, k, width, &scores, own_ys, &mut grad, &mut hess);
            for c in 0..width {
                self.column_entries(&mut entries, Column { width, c }, own_sw, &grad, &hess);
                let mut rng =
                    Xoshiro256PlusPlus::seed_from_u64(child_seed(seed, (stage * width + c) as u64));
                let (mut tree, ranges) = self.grow(
                    hist,
                    binned,
                    &mut entries,
                    &cfg,
                    &mut rng,
                    m,
                    shard,
                    reducer,
                )?;
                leaves_of_rows(data, own_train, &tree, &entries, &ranges, &mut leaf_of);
                if let (Flavour::Classic { .. }, true) = (&self.flavour, k > 0) {
                    let column = Column { width, c };
                    newton_leaves(&mut tree, k, column, &leaf_of, own_sw, &grad, &hess);
                }
                tree.scale(self.lr);
                for i in 0..ml {
                    scores[i * width + c] += tree.node_value(leaf_of[i]);
                }
                add_tree(
                    parallel,
                    data,
                    val,
                    &tree,
                    Column { width, c },
                    &mut val_scores,
                );
                trees.push(tree);
            }
            if let Some(s) = stop {
                weighted_losses(k, width, &val_scores, &val_ys, val_w, &mut losses);
                history.push(-mean_loss(&losses, val_w_all, reducer));
                if should_stop(&history, s.n_iter_no_change, s.tol) {
                    break;
                }
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

/// The rows of one fit as one shard holds them ([`GradientBoosting::boost`]).
struct Held<'a> {
    /// The dataset holding this shard's rows: the whole dataset, or this shard's rows alone.
    data: &'a Dataset,
    /// Classes (0: regression).
    k: usize,
    /// Training rows over all shards.
    m: usize,
    /// The initial scores, from every training row.
    init: Vec<f64>,
    /// This shard's training rows of `data` (a contiguous share of the training positions),
    /// their targets (row-major, `width` a row: one-hot for several classes) and weights.
    own_train: &'a [usize],
    own_ys: &'a [f64],
    own_sw: &'a [f64],
    /// This shard's early-stopping validation rows of `data` and their weights.
    val: &'a [usize],
    val_w: &'a [f64],
    /// Every shard's validation rows' weights.
    val_w_all: &'a [f64],
}

impl GradientBoosting {
    /// Whether this is the histogram booster on bins, the one that trains data-parallel.
    fn is_hist(&self) -> bool {
        matches!(self.flavour, Flavour::Hist { .. }) && self.splitter == Splitter::Hist
    }

    /// Refuse more shards than the `m` training rows: each shard must own one.
    fn check_rows(&self, shard: Shard, m: usize) -> Result<(), String> {
        if shard.size > m {
            return Err(format!(
                "{}: {} processes for {m} training rows: every process needs at least one row; \
                 use at most {m} processes or more rows",
                self.name, shard.size
            ));
        }
        Ok(())
    }

    /// Refuse a shard this booster cannot be split into, before any work: only the histogram
    /// booster on bins trains data-parallel.
    fn check_shard(&self, shard: Shard, hist: bool) -> Result<(), String> {
        if shard.size > 1 && !hist {
            return Err(format!(
                "{}: data-parallel training over {} processes needs hist_gradient_boosting with \
                 splitter = \"hist\"",
                self.name, shard.size
            ));
        }
        if shard.rank >= shard.size {
            return Err(format!(
                "{}: shard {} of {} does not exist",
                self.name, shard.rank, shard.size
            ));
        }
        Ok(())
    }

    /// The codes of this shard's training rows: bin edges from every training row, the same bits
    /// on every shard; only `own_train` is coded, so an entry's `row` is its position there.
    fn codes(
        &self,
        data: &Dataset,
        train: &[usize],
        own_train: &[usize],
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Binned, String> {
        let max_bins = match self.flavour {
            Flavour::Hist { max_bins, .. } => max_bins,
            Flavour::Classic { .. } => MAX_BINS,
        };
        Binned::for_rows(
            data,
            train,
            own_train,
            self.splitter,
            max_bins,
            shard,
            reducer,
        )
    }

    /// The entries of score column `c` for this shard's rows (rows of weight 0 left out): the
    /// squared-error tree fits the negative gradient; the Newton tree sums weighted gradients
    /// and hessians.
    fn column_entries(
        &self,
        entries: &mut Vec<Entry>,
        Column { width, c }: Column,
        own_sw: &[f64],
        grad: &[f64],
        hess: &[f64],
    ) {
        entries.clear();
        entries.extend((0..own_sw.len()).map(|i| Entry {
            row: i as u32,
            class: i as u32,
            w: own_sw[i],
            y: match self.flavour {
                Flavour::Classic { .. } => -grad[i * width + c],
                Flavour::Hist { .. } => own_sw[i] * grad[i * width + c],
            },
            h: own_sw[i] * hess[i * width + c],
        }));
        entries.retain(|e| e.w > 0.0);
    }

    /// Grow one stage's tree on `entries`: the hist booster on bins through the reducer (one
    /// process: a no-op; several shards: the split search parallel over features), after
    /// rounding its gradients so the sums are exact ([`quantise`]); with exact splits it is never
    /// sharded.
    #[allow(clippy::too_many_arguments)]
    fn grow(
        &self,
        hist: bool,
        binned: &Binned,
        entries: &mut [Entry],
        cfg: &TreeConfig,
        rng: &mut Xoshiro256PlusPlus,
        m: usize,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<(Tree, Vec<(u32, u32)>), String> {
        if hist {
            quantise(entries, m, reducer);
            grow_reduced(binned, entries, cfg, rng, reducer, shard)
                .map_err(|e| format!("{}: {e}", self.name))
        } else {
            Ok(grow_with_ranges(binned, entries, cfg, rng))
        }
    }
}

/// The rows a booster trains on and validates on (positions of early stopping's held-out share
/// resolved to row indices), with their sample weights.
struct Split {
    train: Vec<usize>,
    sw: Vec<f64>,
    val: Vec<usize>,
    val_w: Vec<f64>,
}

impl GradientBoosting {
    /// Early stopping's settings when it applies to a fit on `rows` training rows.
    fn stopping(&self, rows: usize) -> Option<&EarlyStopping> {
        match &self.early {
            Some((s, auto)) if !auto || rows > AUTO_EARLY_STOPPING_ROWS => Some(s),
            _ => None,
        }
    }

    /// Hold out early stopping's validation share (seeded, stratified for classes), if any.
    fn split(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        stop: Option<&EarlyStopping>,
        seed: u64,
    ) -> Result<Split, String> {
        let all_w: Vec<f64> = (0..rows.len())
            .map(|i| weights.map_or(1.0, |w| w[i]))
            .collect();
        let (train_pos, val_pos) = match stop {
            Some(s) => validation_split(
                self.name,
                data,
                rows,
                s.validation_fraction,
                child_seed(seed, u64::MAX),
            )?,
            None => ((0..rows.len()).collect(), Vec::new()),
        };
        let split = Split {
            train: train_pos.iter().map(|&i| rows[i]).collect(),
            sw: train_pos.iter().map(|&i| all_w[i]).collect(),
            val: val_pos.iter().map(|&i| rows[i]).collect(),
            val_w: val_pos.iter().map(|&i| all_w[i]).collect(),
        };
        if split.sw.iter().sum::<f64>() <= 0.0 {
            return Err(format!(
                "{}: the training rows left after the validation share have zero total weight; \
                 lower `validation_fraction` or set `early_stopping` = false",
                self.name
            ));
        }
        Ok(split)
    }

    /// The trees each stage grows: squared-error CART (classic) or second-order best-first
    /// (histogram), on every feature.
    fn tree_config(&self, data: &Dataset, options: FitOptions) -> TreeConfig {
        let (criterion, max_depth, max_leaf_nodes) = match self.flavour {
            Flavour::Classic { max_depth } => (Criterion::Mse, max_depth, 0),
            Flavour::Hist {
                max_leaf_nodes,
                max_depth,
                lambda,
                ..
            } => (Criterion::Newton { lambda }, max_depth, max_leaf_nodes),
        };
        TreeConfig {
            criterion,
            n_classes: 0,
            max_depth,
            min_samples_split: 2,
            min_samples_leaf: self.min_samples_leaf,
            max_features: data.features(),
            max_leaf_nodes,
            cut: Cut::Best,
            subtraction: true,
            parallel: options.parallel,
        }
    }
}

/// Round every entry's weighted gradient to a multiple of one power of two and its hessian up to
/// one, from the largest magnitudes over all shards and the `m` training rows, so that every sum
/// of them is exact and the histograms do not depend on the summation order (see
/// [`crate::dataparallel`]).
fn quantise(entries: &mut [Entry], m: usize, reducer: &dyn HistogramReducer) {
    let mut max = [0.0f64; 2];
    for e in entries.iter() {
        max[0] = max[0].max(e.y.abs());
        max[1] = max[1].max(e.h.abs());
    }
    reducer.max(&mut max);
    let (ug, uh) = (quantum(max[0], m), quantum(max[1], m));
    for e in entries.iter_mut() {
        e.y = (e.y / ug).round() * ug;
        e.h = (e.h / uh).ceil() * uh;
    }
}

/// Targets of `rows`, row-major `width` per row: one-hot classes (binary: the class-1 indicator)
/// or values.
fn targets(y: &Target, rows: &[usize], k: usize, width: usize) -> Vec<f64> {
    let mut out = vec![0.0; rows.len() * width];
    for (i, &r) in rows.iter().enumerate() {
        for c in 0..width {
            out[i * width + c] = target_at(y, r, k, c);
        }
    }
    out
}

/// Score column `c`'s target of row `r`: the class-1 indicator (two classes), the class-`c`
/// indicator (more) or the value.
fn target_at(y: &Target, r: usize, k: usize, c: usize) -> f64 {
    match y {
        Target::Classes { labels, .. } => {
            let l = labels[r] as usize;
            if k == 2 {
                (l == 1) as u8 as f64
            } else {
                (l == c) as u8 as f64
            }
        }
        Target::Values(v) => v[r],
    }
}

/// Initial scores: the weighted mean (values), log-odds (two classes) or log prior (more) of
/// `m` training rows, position `i`'s weight `w(i)` and score column `c`'s target `y(i, c)`
/// (accessors, so a process holding only its own rows need not expand every target).
fn initial_scores(
    k: usize,
    width: usize,
    m: usize,
    y: impl Fn(usize, usize) -> f64,
    w: impl Fn(usize) -> f64,
) -> Vec<f64> {
    let total_w: f64 = (0..m).map(&w).sum();
    (0..width)
        .map(|c| {
            let mean = (0..m).map(|i| w(i) * y(i, c)).sum::<f64>() / total_w;
            match k {
                0 => mean,
                2 => {
                    let p = mean.clamp(1e-12, 1.0 - 1e-12);
                    (p / (1.0 - p)).ln()
                }
                _ => mean.max(1e-12).ln(),
            }
        })
        .collect()
}

/// Gradients and hessians of the loss at the current scores, over fixed chunks of rows.
fn all_gradients(
    parallel: bool,
    k: usize,
    width: usize,
    scores: &[f64],
    ys: &[f64],
    grad: &mut [f64],
    hess: &mut [f64],
) {
    let chunk = ROW_CHUNK * width;
    let work = |((g, h), (s, y)): GradChunk| gradients(k, width, s, y, g, h);
    if parallel {
        grad.par_chunks_mut(chunk)
            .zip(hess.par_chunks_mut(chunk))
            .zip(scores.par_chunks(chunk).zip(ys.par_chunks(chunk)))
            .for_each(work);
    } else {
        grad.chunks_mut(chunk)
            .zip(hess.chunks_mut(chunk))
            .zip(scores.chunks(chunk).zip(ys.chunks(chunk)))
            .for_each(work);
    }
}

/// The leaf of every training position (`entries[..].class` holds the position): from the
/// ranges the tree grew with, and by walking the tree for rows of weight 0, which it never saw.
fn leaves_of_rows(
    data: &Dataset,
    train: &[usize],
    tree: &Tree,
    entries: &[Entry],
    ranges: &[(u32, u32)],
    leaf_of: &mut [usize],
) {
    if entries.len() < train.len() {
        for (i, &r) in train.iter().enumerate() {
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
}

/// Score column `c` of rows `width` wide.
#[derive(Clone, Copy)]
struct Column {
    width: usize,
    c: usize,
}

/// Friedman's Newton step per leaf of a classic booster's tree for classes:
/// Σ w (−g) / Σ w h, × (K−1)/K for softmax.
fn newton_leaves(
    tree: &mut Tree,
    k: usize,
    Column { width, c }: Column,
    leaf_of: &[usize],
    sw: &[f64],
    grad: &[f64],
    hess: &[f64],
) {
    let factor = if k == 2 {
        1.0
    } else {
        (k - 1) as f64 / k as f64
    };
    let mut num = vec![0.0; tree.node_count()];
    let mut den = vec![0.0; tree.node_count()];
    for i in 0..sw.len() {
        num[leaf_of[i]] -= sw[i] * grad[i * width + c];
        den[leaf_of[i]] += sw[i] * hess[i * width + c];
    }
    for leaf in 0..num.len() {
        if den[leaf] > 0.0 {
            tree.set_value(leaf, factor * num[leaf] / den[leaf].max(1e-150));
        }
    }
}

/// Add `tree`'s value to score column `c` of the validation rows `val`.
fn add_tree(
    parallel: bool,
    data: &Dataset,
    val: &[usize],
    tree: &Tree,
    Column { width, c }: Column,
    val_scores: &mut [f64],
) {
    let update = |(part, vrows): (&mut [f64], &[usize])| {
        for (s, &r) in part.chunks_mut(width).zip(vrows) {
            s[c] += tree.value(data.x.row(r))[0];
        }
    };
    if parallel {
        val_scores
            .par_chunks_mut(ROW_CHUNK * width)
            .zip(val.par_chunks(ROW_CHUNK))
            .for_each(update);
    } else {
        val_scores
            .chunks_mut(ROW_CHUNK * width)
            .zip(val.chunks(ROW_CHUNK))
            .for_each(update);
    }
}

/// One chunk of rows' gradients and hessians (written) and scores and targets (read).
type GradChunk<'a> = ((&'a mut [f64], &'a mut [f64]), (&'a [f64], &'a [f64]));

/// Rows per chunk of the boosters' per-row work.
const ROW_CHUNK: usize = 1024;

/// Gradients and hessians of the loss for a chunk of rows (`width` scores and targets per row).
fn gradients(k: usize, width: usize, s: &[f64], y: &[f64], g: &mut [f64], h: &mut [f64]) {
    match k {
        0 => {
            for (((g, h), s), y) in g.iter_mut().zip(h.iter_mut()).zip(s).zip(y) {
                *g = s - y;
                *h = 1.0;
            }
        }
        2 => {
            for (((g, h), s), y) in g.iter_mut().zip(h.iter_mut()).zip(s).zip(y) {
                let q = 1.0 / (1.0 + (-s).exp());
                *g = q - y;
                *h = (q * (1.0 - q)).max(1e-16);
            }
        }
        _ => {
            let mut p = vec![0.0; width];
            for (i, row) in s.chunks(width).enumerate() {
                p.copy_from_slice(row);
                softmax(&mut p);
                for (c, &pc) in p.iter().enumerate() {
                    let at = i * width + c;
                    g[at] = pc - y[at];
                    h[at] = (pc * (1.0 - pc)).max(1e-16);
                }
            }
        }
    }
}

/// The weighted mean loss over every shard's validation rows, as scikit-learn's early stopping
/// scores them: each shard's weighted row losses ([`weighted_losses`] of its share of the rows)
/// are gathered in row order and summed in that order, so the mean has the one-process bits at
/// any shard count. `w`: every validation row's weight.
fn mean_loss(part: &[f64], w: &[f64], reducer: &dyn HistogramReducer) -> f64 {
    let losses = reducer.gather(part);
    let (mut sum, mut total) = (0.0, 0.0);
    for (l, w) in losses.iter().zip(w) {
        sum += l;
        total += w;
    }
    if total > 0.0 {
        sum / total
    } else {
        0.0
    }
}

/// Each row's weight × loss of `scores` against `targets` (half squared error, binary or
/// multinomial log loss), into `out`.
fn weighted_losses(
    k: usize,
    width: usize,
    scores: &[f64],
    targets: &[f64],
    w: &[f64],
    out: &mut Vec<f64>,
) {
    out.clear();
    for ((s, y), &w) in scores.chunks(width).zip(targets.chunks(width)).zip(w) {
        let loss = match k {
            0 => 0.5 * (s[0] - y[0]) * (s[0] - y[0]),
            // log(1 + e^s) − y s, without overflow.
            2 => s[0].max(0.0) + (-s[0].abs()).exp().ln_1p() - y[0] * s[0],
            _ => {
                let max = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + s.iter().map(|v| (v - max).exp()).sum::<f64>().ln();
                lse - s.iter().zip(y).map(|(s, y)| s * y).sum::<f64>()
            }
        };
        out.push(w * loss);
    }
}

/// scikit-learn's rule (`_should_stop`): with `scores` the validation scores (higher is better,
/// the first before any iteration), stop when none of the last `n` beats the score `n + 1` back by
/// more than `tol`.
pub(crate) fn should_stop(scores: &[f64], n: usize, tol: f64) -> bool {
    if scores.len() < n + 1 {
        return false;
    }
    let reference = scores[scores.len() - n - 1] + tol;
    !scores[scores.len() - n..].iter().any(|&s| s > reference)
}

/// Positions of `rows` to train on and to validate on: `ceil(fraction × rows)` held out, drawn
/// per class in proportion to its count (largest remainders first) for classes, else uniformly.
fn validation_split(
    name: &str,
    data: &Dataset,
    rows: &[usize],
    fraction: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), String> {
    let n = rows.len();
    let n_val = (fraction * n as f64).ceil() as usize;
    if n_val == 0 || n_val >= n {
        return Err(format!(
            "{name}: early stopping would hold out {n_val} of {n} training rows; set \
             `early_stopping` = false or a `validation_fraction` that leaves rows on both sides"
        ));
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let groups: Vec<Vec<usize>> = match &data.y {
        Target::Classes { labels, names } => {
            let mut g = vec![Vec::new(); names.len()];
            for (i, &r) in rows.iter().enumerate() {
                g[labels[r] as usize].push(i);
            }
            g
        }
        Target::Values(_) => vec![(0..n).collect()],
    };
    // Each group's share: floor of its quota, then the largest remainders.
    let quota: Vec<f64> = groups
        .iter()
        .map(|g| n_val as f64 * g.len() as f64 / n as f64)
        .collect();
    let mut take: Vec<usize> = quota.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| (quota[b] - quota[b].floor()).total_cmp(&(quota[a] - quota[a].floor())));
    let mut left = n_val - take.iter().sum::<usize>();
    for &g in &order {
        if left == 0 {
            break;
        }
        if take[g] < groups[g].len() {
            take[g] += 1;
            left -= 1;
        }
    }
    let mut is_val = vec![false; n];
    for (mut g, t) in groups.into_iter().zip(take) {
        g.shuffle(&mut rng);
        for &i in &g[..t] {
            is_val[i] = true;
        }
    }
    Ok((0..n).partition(|&i| !is_val[i]))
}

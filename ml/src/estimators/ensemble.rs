//! Ensembles of any estimators by name: `bagging` (bootstrap aggregation, Breiman 1996) and `voting`
//! (soft or hard).
//!
//! Members are fitted in parallel when the ensemble may run in parallel (and each member may use the
//! pool too; rayon nests); member `i` is seeded with `child_seed(seed, i)`, so the result does not
//! depend on the thread count.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::child_seed;
use crate::data::{Dataset, Matrix};
use crate::estimator::{Estimator, FitOptions, HyperParams, Model, Prediction};

use super::common::argmax;
use super::params::{Default as D, Kind, ParamSpec, Params};

/// `bagging` parameters.
pub const BAGGING_SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "base",
        kind: Kind::Estimator,
        default: D::Text("decision_tree"),
        doc: "the estimator bagged (with its default parameters)",
    },
    ParamSpec {
        name: "n_estimators",
        kind: Kind::Int {
            min: 1,
            max: 100_000,
        },
        default: D::Int(10),
        doc: "number of bagged models",
    },
    ParamSpec {
        name: "max_samples",
        kind: Kind::Float {
            min: 0.0,
            max: 1.0,
            open_min: true,
        },
        default: D::Float(1.0),
        doc: "rows drawn for each model, as a fraction of the training rows",
    },
    ParamSpec {
        name: "bootstrap",
        kind: Kind::Bool,
        default: D::Bool(true),
        doc: "draw rows with replacement (else without)",
    },
];

/// `voting` parameters.
pub const VOTING_SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "estimators",
        kind: Kind::EstimatorList,
        default: D::Text("random_forest,extra_trees,logistic_regression"),
        doc: "the members, comma-separated (each with its default parameters)",
    },
    ParamSpec {
        name: "voting",
        kind: Kind::Choice(&["soft", "hard"]),
        default: D::Text("soft"),
        doc: "soft = average probabilities; hard = majority of predicted classes",
    },
];

/// Members built from a comma-separated list of names.
pub(crate) fn members(list: &str) -> Result<Vec<Box<dyn Estimator>>, String> {
    list.split(',')
        .map(|n| super::build(n.trim(), &HyperParams::new()))
        .collect()
}

/// Models whose outputs are combined: averaged probabilities (soft), majority vote (hard), or the
/// mean value for regression.
pub(crate) struct Combined {
    pub models: Vec<Box<dyn Model>>,
    /// 0 for regression.
    pub n_classes: usize,
    pub soft: bool,
}

impl Combined {
    fn votes(&self, x: &Matrix, rows: &[usize]) -> Matrix {
        let k = self.n_classes;
        let mut out = Matrix::zeros(rows.len(), k);
        for m in &self.models {
            let proba = if self.soft {
                m.predict_proba(x, rows)
            } else {
                None
            };
            match proba {
                Some(p) => {
                    for i in 0..rows.len() {
                        for (o, v) in out.row_mut(i).iter_mut().zip(p.row(i)) {
                            *o += v;
                        }
                    }
                }
                None => {
                    if let Prediction::Classes(c) = m.predict(x, rows) {
                        for (i, &c) in c.iter().enumerate() {
                            out.row_mut(i)[c as usize] += 1.0;
                        }
                    }
                }
            }
        }
        let inv = 1.0 / self.models.len() as f64;
        for i in 0..rows.len() {
            out.row_mut(i).iter_mut().for_each(|v| *v *= inv);
        }
        out
    }
}

impl Model for Combined {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        if self.n_classes == 0 {
            let mut sum = vec![0.0; rows.len()];
            for m in &self.models {
                if let Prediction::Values(v) = m.predict(x, rows) {
                    sum.iter_mut().zip(v).for_each(|(s, v)| *s += v);
                }
            }
            let inv = 1.0 / self.models.len() as f64;
            return Prediction::Values(sum.into_iter().map(|s| s * inv).collect());
        }
        let v = self.votes(x, rows);
        Prediction::Classes((0..rows.len()).map(|i| argmax(v.row(i)) as u32).collect())
    }

    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        (self.n_classes > 0).then(|| self.votes(x, rows))
    }
}

/// Run `f(i)` for `i < n`, in parallel when allowed; results in index order.
pub(crate) fn for_each_member<T: Send>(
    n: usize,
    parallel: bool,
    f: impl Fn(usize) -> Result<T, String> + Sync + Send,
) -> Result<Vec<T>, String> {
    if parallel {
        (0..n).into_par_iter().map(f).collect()
    } else {
        (0..n).map(f).collect()
    }
}

/// Bootstrap aggregation of any estimator.
#[derive(Debug)]
pub struct Bagging {
    base: Box<dyn Estimator>,
    n: usize,
    max_samples: f64,
    bootstrap: bool,
}

impl Bagging {
    pub fn from_params(params: &HyperParams) -> Result<Bagging, String> {
        let p = Params::new("bagging", params, BAGGING_SPECS)?;
        Ok(Bagging {
            base: super::build(&p.text("base")?, &HyperParams::new())?,
            n: p.usize("n_estimators")?,
            max_samples: p.float("max_samples")?,
            bootstrap: p.bool("bootstrap")?,
        })
    }
}

impl Estimator for Bagging {
    fn name(&self) -> &'static str {
        "bagging"
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        let m = rows.len();
        let draw = ((self.max_samples * m as f64).round() as usize).clamp(1, m);
        let models = for_each_member(self.n, options.parallel, |i| {
            let s = child_seed(seed, i as u64);
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(s);
            let picks: Vec<usize> = if self.bootstrap {
                (0..draw).map(|_| rng.random_range(0..m)).collect()
            } else {
                rand::seq::index::sample(&mut rng, m, draw).into_vec()
            };
            let sub: Vec<usize> = picks.iter().map(|&k| rows[k]).collect();
            let w: Option<Vec<f64>> = weights.map(|w| picks.iter().map(|&k| w[k]).collect());
            self.base
                .fit(data, &sub, w.as_deref(), child_seed(s, 1), options)
        })?;
        Ok(Box::new(Combined {
            models,
            n_classes: data.y.n_classes(),
            soft: true,
        }))
    }
}

/// Soft or hard voting over named estimators fitted on the same rows.
#[derive(Debug)]
pub struct Voting {
    members: Vec<Box<dyn Estimator>>,
    soft: bool,
}

impl Voting {
    pub fn from_params(params: &HyperParams) -> Result<Voting, String> {
        let p = Params::new("voting", params, VOTING_SPECS)?;
        Ok(Voting {
            members: members(&p.text("estimators")?)?,
            soft: p.text("voting")? == "soft",
        })
    }
}

impl Estimator for Voting {
    fn name(&self) -> &'static str {
        "voting"
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        let models = for_each_member(self.members.len(), options.parallel, |i| {
            self.members[i].fit(data, rows, weights, child_seed(seed, i as u64), options)
        })?;
        Ok(Box::new(Combined {
            models,
            n_classes: data.y.n_classes(),
            soft: self.soft,
        }))
    }
}

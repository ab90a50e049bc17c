//! Random forests (`random_forest`, Breiman 2001) and extremely randomised trees (`extra_trees`,
//! Geurts, Ernst & Wehenkel 2006).
//!
//! One [`Binned`] view is computed per fit and shared by all trees. Tree `t` draws its bootstrap
//! sample and every split from its own generator seeded with `child_seed(seed, t)`, so trees can be
//! grown in any order on any number of threads (rayon, when `FitOptions::parallel`) and the forest is
//! bit-identical. A bootstrap sample is kept as per-row counts used as weights (as scikit-learn
//! does), so a tree touches each distinct row once. Both forests take `splitter = "exact"` (every
//! boundary between distinct values, the default, as scikit-learn) or `"hist"` (256 quantile bins).
//! Extra trees cut each examined feature once at a threshold drawn uniform in value between the
//! node's smallest and largest value (`cut = "value"`, Geurts et al. and scikit-learn), or uniform
//! over the node's distinct values or bins (`cut = "rank"`: robust to heavy tails).
//!
//! `n_estimators = "auto"` grows the forest in batches of [`AUTO_BATCH`] trees and scores the
//! out-of-bag rows after each batch; it stops when [`AUTO_PATIENCE`] batches in a row have not
//! raised the best score so far by more than [`AUTO_TOL`], or at [`AUTO_MAX_TREES`] trees. Tree `t`
//! is the same tree whatever the batching, and the out-of-bag votes are added in tree order, so the
//! forest, its curve and the number of trees are the same at any thread count, and the same as a
//! forest with that fixed `n_estimators`.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::child_seed;
use crate::data::{Dataset, Target};
use crate::estimator::{Estimator, FitOptions, HyperParams, Model};

use super::common::{argmax, entries, TreeEnsemble};
use super::decision_tree::{
    cut, max_features, splitter, TreeHp, CLASS_WEIGHT, CRITERION, MAX_DEPTH, MIN_SAMPLES_LEAF,
    MIN_SAMPLES_SPLIT,
};
use super::params::{Default as D, Kind, ParamSpec, Params};
use super::tree::{grow, Binned, Entry, Tree, MAX_BINS};

const N_ESTIMATORS: ParamSpec = ParamSpec {
    name: "n_estimators",
    kind: Kind::IntOrAuto {
        min: 1,
        max: 100_000,
    },
    default: D::Int(100),
    doc: "number of trees; \"auto\": add trees in batches until the out-of-bag score plateaus (needs bootstrap)",
};

/// Trees added per batch under `n_estimators = "auto"`.
pub const AUTO_BATCH: usize = 10;
/// The smallest rise of the best out-of-bag score that counts as an improvement.
pub const AUTO_TOL: f64 = 1e-3;
/// Batches in a row without an improvement after which `"auto"` stops.
pub const AUTO_PATIENCE: usize = 3;
/// The most trees `"auto"` grows.
pub const AUTO_MAX_TREES: usize = 1000;
const OOB_SCORE: ParamSpec = ParamSpec {
    name: "oob_score",
    kind: Kind::Bool,
    default: D::Bool(false),
    doc: "score each training row with the trees that did not see it (needs bootstrap)",
};
const fn bootstrap(default: bool) -> ParamSpec {
    ParamSpec {
        name: "bootstrap",
        kind: Kind::Bool,
        default: D::Bool(default),
        doc: "grow each tree on a bootstrap sample (else on all rows)",
    }
}

/// `random_forest` parameters.
pub const RF_SPECS: &[ParamSpec] = &[
    N_ESTIMATORS,
    CRITERION,
    MAX_DEPTH,
    MIN_SAMPLES_SPLIT,
    MIN_SAMPLES_LEAF,
    max_features("sqrt"),
    CLASS_WEIGHT,
    bootstrap(true),
    OOB_SCORE,
    splitter("exact"),
];

/// `extra_trees` parameters.
pub const ET_SPECS: &[ParamSpec] = &[
    N_ESTIMATORS,
    CRITERION,
    MAX_DEPTH,
    MIN_SAMPLES_SPLIT,
    MIN_SAMPLES_LEAF,
    max_features("sqrt"),
    CLASS_WEIGHT,
    bootstrap(false),
    OOB_SCORE,
    splitter("exact"),
    cut(&["value", "rank"], "value"),
];

/// A forest of CART trees (random cuts for extra trees), probabilities averaged over trees.
#[derive(Clone, Debug, PartialEq)]
pub struct Forest {
    name: &'static str,
    /// `None`: `n_estimators = "auto"`.
    pub(crate) n_trees: Option<usize>,
    pub(crate) hp: TreeHp,
    bootstrap: bool,
    oob: bool,
}

impl Forest {
    pub fn random_forest(params: &HyperParams) -> Result<Forest, String> {
        Forest::read("random_forest", params, RF_SPECS)
    }

    pub fn extra_trees(params: &HyperParams) -> Result<Forest, String> {
        Forest::read("extra_trees", params, ET_SPECS)
    }

    fn read(
        name: &'static str,
        params: &HyperParams,
        specs: &'static [ParamSpec],
    ) -> Result<Forest, String> {
        let p = Params::new(name, params, specs)?;
        let forest = Forest {
            name,
            n_trees: p.int_or_auto("n_estimators")?.map(|n| n as usize),
            hp: TreeHp::read(&p)?,
            bootstrap: p.bool("bootstrap")?,
            oob: p.bool("oob_score")?,
        };
        if forest.oob && !forest.bootstrap {
            return Err(format!(
                "{name}: `oob_score` = true needs `bootstrap` = true (without bootstrap no row is \
                 out of bag)"
            ));
        }
        if forest.n_trees.is_none() && !forest.bootstrap {
            return Err(format!(
                "{name}: `n_estimators` = \"auto\" stops adding trees when the out-of-bag score \
                 plateaus, which needs `bootstrap` = true (without bootstrap no row is out of \
                 bag); set bootstrap = true, or give a number of trees"
            ));
        }
        Ok(forest)
    }
}

impl Estimator for Forest {
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
        let cfg = self.hp.config(self.name, data)?;
        let binned = Binned::new(data, rows, self.hp.splitter, MAX_BINS)?;
        let base = entries(data, rows, weights, self.hp.balanced);
        let m = base.len();
        let grow_one = |t: usize| -> (Tree, Vec<u32>) {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(child_seed(seed, t as u64));
            let mut counts = vec![0u32; if self.bootstrap { m } else { 0 }];
            let mut e: Vec<Entry> = if self.bootstrap {
                for _ in 0..m {
                    counts[rng.random_range(0..m)] += 1;
                }
                base.iter()
                    .zip(&counts)
                    .filter(|&(e, &c)| c > 0 && e.w > 0.0)
                    .map(|(e, &c)| Entry {
                        w: e.w * c as f64,
                        ..*e
                    })
                    .collect()
            } else {
                base.iter().filter(|e| e.w > 0.0).copied().collect()
            };
            let tree = grow(&binned, &mut e, &cfg, &mut rng);
            if !self.oob && self.n_trees.is_some() {
                counts = Vec::new();
            }
            (tree, counts)
        };
        let grow_range = |range: std::ops::Range<usize>| -> Vec<(Tree, Vec<u32>)> {
            if options.parallel {
                range.into_par_iter().map(grow_one).collect()
            } else {
                range.map(grow_one).collect()
            }
        };
        let Some(n_trees) = self.n_trees else {
            let (trees, curve) = grow_auto(data, rows, cfg.n_classes, grow_range);
            return Ok(Box::new(TreeEnsemble {
                trees,
                n_classes: cfg.n_classes,
                oob_score: curve.last().map(|&(_, s)| s),
                oob_curve: Some(curve),
            }));
        };
        let grown = grow_range(0..n_trees);
        let oob_score = self.oob.then(|| {
            let mut votes = OobVotes::new(rows.len(), cfg.n_classes);
            for (tree, counts) in &grown {
                votes.add(data, rows, tree, counts);
            }
            votes.score(data, rows)
        });
        Ok(Box::new(TreeEnsemble {
            trees: grown.into_iter().map(|(t, _)| t).collect(),
            n_classes: cfg.n_classes,
            oob_score,
            oob_curve: None,
        }))
    }
}

/// `n_estimators = "auto"`: grow batches of [`AUTO_BATCH`] trees (`grow` gives trees `range` with
/// their bootstrap counts) until [`AUTO_PATIENCE`] batches in a row fail to raise the best
/// out-of-bag score by more than [`AUTO_TOL`], or [`AUTO_MAX_TREES`] are grown. Returns the trees
/// and the curve: (trees so far, out-of-bag score) after each batch.
fn grow_auto(
    data: &Dataset,
    rows: &[usize],
    n_classes: usize,
    grow: impl Fn(std::ops::Range<usize>) -> Vec<(Tree, Vec<u32>)>,
) -> (Vec<Tree>, Vec<(usize, f64)>) {
    let mut votes = OobVotes::new(rows.len(), n_classes);
    let mut trees = Vec::new();
    let mut curve = Vec::new();
    let (mut best, mut stale) = (f64::NEG_INFINITY, 0);
    while trees.len() < AUTO_MAX_TREES && stale < AUTO_PATIENCE {
        let start = trees.len();
        for (tree, counts) in grow(start..(start + AUTO_BATCH).min(AUTO_MAX_TREES)) {
            votes.add(data, rows, &tree, &counts);
            trees.push(tree);
        }
        let score = votes.score(data, rows);
        curve.push((trees.len(), score));
        if score > best + AUTO_TOL {
            (best, stale) = (score, 0);
        } else {
            stale += 1;
        }
    }
    (trees, curve)
}

/// The out-of-bag votes of a growing forest: per training position, the summed leaf values of the
/// trees whose bootstrap sample left it out, and how many such trees there are. Trees are added
/// in index order, so the sums (and the score) do not depend on how the trees were grown.
struct OobVotes {
    width: usize,
    sums: Vec<f64>,
    votes: Vec<u32>,
}

impl OobVotes {
    fn new(rows: usize, n_classes: usize) -> OobVotes {
        let width = n_classes.max(1);
        OobVotes {
            width,
            sums: vec![0.0; rows * width],
            votes: vec![0; rows],
        }
    }

    /// Add `tree`, whose bootstrap drew position `k` of `rows` `counts[k]` times.
    fn add(&mut self, data: &Dataset, rows: &[usize], tree: &Tree, counts: &[u32]) {
        let width = self.width;
        for (k, &r) in rows.iter().enumerate() {
            if counts[k] == 0 {
                self.votes[k] += 1;
                for (s, v) in self.sums[k * width..(k + 1) * width]
                    .iter_mut()
                    .zip(tree.value(data.x.row(r)))
                {
                    *s += v;
                }
            }
        }
    }

    /// Out-of-bag accuracy (classes) or R² (values) over the rows some tree left out (NaN when
    /// none is).
    fn score(&self, data: &Dataset, rows: &[usize]) -> f64 {
        let (width, sums, votes) = (self.width, &self.sums, &self.votes);
        let scored: Vec<usize> = (0..rows.len()).filter(|&k| votes[k] > 0).collect();
        if scored.is_empty() {
            return f64::NAN;
        }
        match &data.y {
            Target::Classes { labels, .. } => {
                let right = scored
                    .iter()
                    .filter(|&&k| {
                        argmax(&sums[k * width..(k + 1) * width]) as u32 == labels[rows[k]]
                    })
                    .count();
                right as f64 / scored.len() as f64
            }
            Target::Values(v) => {
                let mean = scored.iter().map(|&k| v[rows[k]]).sum::<f64>() / scored.len() as f64;
                let (mut ss_res, mut ss_tot) = (0.0, 0.0);
                for &k in &scored {
                    let pred = sums[k] / votes[k] as f64;
                    ss_res += (v[rows[k]] - pred).powi(2);
                    ss_tot += (v[rows[k]] - mean).powi(2);
                }
                1.0 - ss_res / ss_tot
            }
        }
    }
}

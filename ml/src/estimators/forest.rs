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
//!
//! With the hist splitter a regression forest rounds its targets to a multiple of one power of
//! two, chosen from the largest magnitude and the training row count so that every weighted sum
//! and sum of squares a node or bin holds is exact in `f64` ([`target_quantum`]). Sums are then
//! the same in any order, which lets [`Forest::fit_sharded`] grow the forest on rows split
//! between processes, histograms summed over them, and get the one-process forest bit for bit
//! (class weights are bootstrap counts, integers: exact already). The rounding is part of the
//! model, single process included: a target moves by at most `max|y| · 2^-26 · √m` (about
//! `5e-6 · max|y|` at 100 000 rows), far below what changes a split.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::child_seed;
use crate::data::{Dataset, Target};
use crate::dataparallel::{HistogramReducer, LocalReducer, Shard};
use crate::estimator::{check_fit, Estimator, FitOptions, HyperParams, Model};

use super::common::{argmax, entries, TreeEnsemble};
use super::decision_tree::{
    cut, max_features, splitter, TreeHp, CLASS_WEIGHT, CRITERION, MAX_DEPTH, MIN_SAMPLES_LEAF,
    MIN_SAMPLES_SPLIT,
};
use super::params::{Default as D, Kind, ParamSpec, Params};
use super::tree::{
    grow, grow_sampled_reduced, Binned, Criterion, Entry, Splitter, Tree, TreeConfig, MAX_BINS,
};

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
        let mut base = entries(data, rows, weights, self.hp.balanced);
        if self.hp.splitter == Splitter::Hist && cfg.criterion == Criterion::Mse {
            round_targets(&mut base, rows.len(), &LocalReducer);
        }
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

impl Forest {
    /// Fit on rows split between processes (data-parallel training, [`crate::dataparallel`]):
    /// this process owns the training positions `shard.range(rows.len())`, codes only those rows
    /// (bin edges from every row of `rows`, as `Binned::for_rows` shares them) and sums each
    /// node's histograms over the shards with `reducer`. Every shard passes the same `data`,
    /// `rows` and `seed` and makes the same reducer calls in the same order (trees one after
    /// another; `options.parallel` builds a large node's histogram over threads instead). Tree
    /// `t` draws its bootstrap over all `rows.len()` positions from the same generator as the
    /// one-process fit, keeping the counts of its own positions, so the forest is the one
    /// [`Estimator::fit`] returns with `splitter = "hist"`, bit for bit, on every shard.
    ///
    /// Refused, with the fix: the exact splitter, sample weights and `class_weight = "balanced"`
    /// (non-integer weights would not sum exactly), `oob_score` and `n_estimators = "auto"`
    /// (the out-of-bag rows are spread over the shards), and more shards than training rows.
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
        let m = rows.len();
        let n_trees = self.check_shard(m, weights.is_some(), shard)?;
        let own = shard.range(m);
        let own_rows = &rows[own.clone()];
        let binned = Binned::for_rows(
            data,
            rows,
            own_rows,
            Splitter::Hist,
            MAX_BINS,
            shard,
            reducer,
        )?;
        self.grow_shard(
            data, own_rows, own.start, m, &binned, n_trees, seed, options, reducer,
        )
    }

    /// [`Forest::fit_sharded`] for a process that holds only its own rows: `data` is this
    /// shard's part of the dataset and `rows` its training rows there, which are the training
    /// positions `offset .. offset + rows.len()` of `m` over all shards (the shards' positions
    /// partition `0..m`, each shard holding at least one). The bin edges come from every shard's
    /// training rows (`Binned::for_shard`: column shards sent to the feature's owner); the
    /// forest is then the one [`Estimator::fit`] returns on all `m` rows in position order, bit
    /// for bit.
    #[allow(clippy::too_many_arguments)]
    pub fn fit_local(
        &self,
        data: &Dataset,
        rows: &[usize],
        offset: usize,
        m: usize,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let n_trees = self.check_shard(m, false, shard)?;
        check_fit(self.name, data, rows, None)?;
        if offset + rows.len() > m {
            return Err(format!(
                "{}: training positions {offset}..{} of this process lie beyond the {m} \
                 training rows",
                self.name,
                offset + rows.len()
            ));
        }
        let binned = Binned::for_shard(data, rows, MAX_BINS, shard, reducer)?;
        self.grow_shard(
            data, rows, offset, m, &binned, n_trees, seed, options, reducer,
        )
    }

    /// The trees of a sharded fit: this shard's `rows` of `data` (coded in `binned` by
    /// position) are the training positions `offset..` of `m`.
    #[allow(clippy::too_many_arguments)]
    fn grow_shard(
        &self,
        data: &Dataset,
        rows: &[usize],
        offset: usize,
        m: usize,
        binned: &Binned,
        n_trees: usize,
        seed: u64,
        options: FitOptions,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let cfg = TreeConfig {
            parallel: options.parallel,
            ..self.hp.config(self.name, data)?
        };
        let own = offset..offset + rows.len();
        // An entry's `row` is its position among the coded (own) rows.
        let mut base = entries(data, rows, None, false);
        for (i, e) in base.iter_mut().enumerate() {
            e.row = i as u32;
        }
        if cfg.criterion == Criterion::Mse {
            round_targets(&mut base, m, reducer);
        }
        let mut trees = Vec::with_capacity(n_trees);
        let mut counts = vec![0u32; own.len()];
        for t in 0..n_trees {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(child_seed(seed, t as u64));
            let mut e: Vec<Entry> = if self.bootstrap {
                // Every draw of the one-process bootstrap, in order; only own positions counted.
                counts.fill(0);
                for _ in 0..m {
                    let k = rng.random_range(0..m);
                    if own.contains(&k) {
                        counts[k - own.start] += 1;
                    }
                }
                base.iter()
                    .zip(&counts)
                    .filter(|&(_, &c)| c > 0)
                    .map(|(e, &c)| Entry {
                        w: e.w * c as f64,
                        ..*e
                    })
                    .collect()
            } else {
                base.clone()
            };
            trees.push(grow_sampled_reduced(
                binned, &mut e, &cfg, &mut rng, reducer,
            )?);
        }
        Ok(Box::new(TreeEnsemble {
            trees,
            n_classes: cfg.n_classes,
            oob_score: None,
            oob_curve: None,
        }))
    }

    /// What [`Forest::fit_sharded`] refuses (its documentation); the number of trees otherwise.
    pub fn check_shard(&self, m: usize, weighted: bool, shard: Shard) -> Result<usize, String> {
        let name = self.name;
        let refuse = |what: &str, fix: &str| {
            Err(format!(
                "{name}: data-parallel training (rows split over processes) {what}; {fix}"
            ))
        };
        if self.hp.splitter != Splitter::Hist {
            return refuse(
                "needs the hist splitter (exact codes are every distinct value of a feature, \
                 which no process holds alone)",
                "set splitter = \"hist\"",
            );
        }
        if weighted || self.hp.balanced {
            return refuse(
                "cannot use sample weights or class_weight = \"balanced\" (non-integer weights \
                 do not sum exactly, so the forest would depend on the process count)",
                "leave class_weight at its default",
            );
        }
        if self.oob {
            return refuse(
                "cannot score out-of-bag rows (they are spread over the processes)",
                "set oob_score = false and score the held-out rows",
            );
        }
        let Some(n_trees) = self.n_trees else {
            return refuse(
                "cannot grow n_estimators = \"auto\" (it scores out-of-bag rows, which are \
                 spread over the processes)",
                "give a number of trees",
            );
        };
        if shard.rank >= shard.size {
            return Err(format!(
                "{name}: shard {} of {} does not exist",
                shard.rank, shard.size
            ));
        }
        if shard.size > m {
            return Err(format!(
                "{name}: {} processes for {m} training rows: every process needs at least one \
                 row; use at most {m} processes or more rows",
                shard.size
            ));
        }
        Ok(n_trees)
    }
}

/// The power of two a hist regression forest rounds its targets to, for the largest magnitude
/// `max` among `m` training rows: with `|y| / u ≤ 2^26 / √m`, a node's weighted sum of squares
/// (bootstrap weights sum to `m`) stays below 2^52 `u²`, and every partial sum of targets or
/// squares is an exact multiple of `u` or `u²` (module documentation).
pub(crate) fn target_quantum(max: f64, m: usize) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let e = ((max.log2() + 0.5 * (m.max(1) as f64).log2()).ceil() as i64 - 26).clamp(-500, 1000);
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// Round every entry's target to [`target_quantum`] of the largest magnitude over all shards
/// (`reducer`'s maximum) and the training row count `m`.
fn round_targets(entries: &mut [Entry], m: usize, reducer: &dyn HistogramReducer) {
    let mut max = [entries.iter().fold(0.0f64, |a, e| a.max(e.y.abs()))];
    reducer.max(&mut max);
    let u = target_quantum(max[0], m);
    for e in entries {
        e.y = (e.y / u).round() * u;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{self, Synthetic};
    use crate::dataparallel::tests::{ThreadReducer, ThreadShard};
    use crate::estimator::{Hp, Prediction};

    /// Every prediction and probability of `model` on every row of `data`, as bits.
    fn fingerprint(model: &dyn Model, data: &Dataset) -> Vec<u64> {
        let rows: Vec<usize> = (0..data.rows()).collect();
        let mut out: Vec<u64> = match model.predict(&data.x, &rows) {
            Prediction::Classes(c) => c.iter().map(|&c| u64::from(c)).collect(),
            Prediction::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
        };
        if let Some(p) = model.predict_proba(&data.x, &rows) {
            out.extend(p.as_slice().iter().map(|v| v.to_bits()));
        }
        out
    }

    /// The forest fitted on 2, 3 and 4 shards (threads, reductions in a random order, odd shards
    /// on 2 threads) must be the one-process `fit`, on every shard: each shard with the whole
    /// dataset (`fit_sharded`) and holding only its own rows (`fit_local`, bin edges from the
    /// column shards sent to each feature's owner).
    fn agrees_over_shards(forest: &Forest, data: &Dataset, rows: &[usize]) {
        let serial = FitOptions { parallel: false };
        let one = forest.fit(data, rows, None, 11, serial).unwrap();
        let want = fingerprint(one.as_ref(), data);
        for size in [2, 3, 4] {
            let reducer = ThreadReducer::new(size);
            let got: Vec<Vec<u64>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..size)
                    .map(|rank| {
                        let shared = &reducer;
                        s.spawn(move || {
                            let shard = Shard { rank, size };
                            let reducer = ThreadShard { shared, rank };
                            // Odd shards histogram their large nodes over 2 threads.
                            let options = FitOptions {
                                parallel: rank % 2 == 1,
                            };
                            let pool = rayon::ThreadPoolBuilder::new()
                                .num_threads(2)
                                .build()
                                .unwrap();
                            let m = pool.install(|| {
                                forest
                                    .fit_sharded(data, rows, None, 11, options, shard, &reducer)
                                    .unwrap()
                            });
                            // The same shard holding only its own rows.
                            let own = shard.range(rows.len());
                            let local = Dataset::new(
                                "local",
                                data.x.select_rows(&rows[own.clone()]),
                                match &data.y {
                                    Target::Classes { labels, names } => Target::Classes {
                                        labels: rows[own.clone()]
                                            .iter()
                                            .map(|&r| labels[r])
                                            .collect(),
                                        names: names.clone(),
                                    },
                                    Target::Values(v) => Target::Values(
                                        rows[own.clone()].iter().map(|&r| v[r]).collect(),
                                    ),
                                },
                                data.feature_names.clone(),
                            )
                            .unwrap();
                            let local_rows: Vec<usize> = (0..own.len()).collect();
                            let l = pool.install(|| {
                                forest
                                    .fit_local(
                                        &local,
                                        &local_rows,
                                        own.start,
                                        rows.len(),
                                        11,
                                        options,
                                        shard,
                                        &reducer,
                                    )
                                    .unwrap()
                            });
                            assert!(
                                fingerprint(l.as_ref(), data) == fingerprint(m.as_ref(), data),
                                "{}: shard {rank} of {size} holding only its rows differs",
                                forest.name
                            );
                            fingerprint(m.as_ref(), data)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (rank, g) in got.iter().enumerate() {
                assert!(
                    *g == want,
                    "{}: shard {rank} of {size} differs from one process",
                    forest.name
                );
            }
        }
    }

    fn hist(extra: &[(&str, Hp)]) -> HyperParams {
        let mut params = HyperParams::new();
        params.insert("n_estimators".into(), Hp::Int(6));
        params.insert("splitter".into(), Hp::Text("hist".into()));
        for (k, v) in extra {
            params.insert((*k).into(), v.clone());
        }
        params
    }

    /// Classes (Gini and entropy, bootstrap counts as weights) and values (squared error on
    /// rounded targets), random forest and extra trees: sharded = one process, bit for bit.
    /// Without the target rounding the regression forests differ (the sums of unrounded targets
    /// depend on the order the shards add them in).
    #[test]
    fn sharded_forests_equal_one_process_for_classes_and_values() {
        let three = data::make_classification(&Synthetic {
            samples: 1500,
            features: 9,
            informative: 4,
            classes: 3,
            seed: 5,
            ..Synthetic::default()
        })
        .unwrap();
        let rows: Vec<usize> = (0..three.rows()).filter(|r| r % 7 != 0).collect();
        let depth = ("max_depth", Hp::Int(9));
        let rf = Forest::random_forest(&hist(std::slice::from_ref(&depth))).unwrap();
        agrees_over_shards(&rf, &three, &rows);
        let entropy = ("criterion", Hp::Text("entropy".into()));
        let rf = Forest::random_forest(&hist(&[entropy])).unwrap();
        agrees_over_shards(&rf, &three, &rows);
        let et = Forest::extra_trees(&hist(&[depth])).unwrap();
        agrees_over_shards(&et, &three, &rows);

        // A real-valued target (diabetes' is integers, whose sums are exact unrounded).
        let y: Vec<f64> = (0..three.rows())
            .map(|r| {
                let x = three.x.row(r);
                x[0] * 1.37 + (x[1] * 2.1).sin() * 0.3 + x[2] * x[3] / 7.0
            })
            .collect();
        let values = Dataset::new(
            "values",
            three.x.clone(),
            Target::Values(y),
            three.feature_names.clone(),
        )
        .unwrap();
        let rf = Forest::random_forest(&hist(&[])).unwrap();
        agrees_over_shards(&rf, &values, &rows);
        let et = Forest::extra_trees(&hist(&[("bootstrap", Hp::Bool(true))])).unwrap();
        agrees_over_shards(&et, &values, &rows);
        let diabetes = data::load("diabetes").unwrap();
        let all: Vec<usize> = (0..diabetes.rows()).collect();
        agrees_over_shards(&rf, &diabetes, &all);
    }

    #[test]
    fn regression_targets_round_to_a_power_of_two_that_keeps_squares_exact() {
        let m = 100_000;
        let u = target_quantum(346.0, m);
        assert_eq!(u.to_bits() & ((1u64 << 52) - 1), 0, "a power of two");
        let k = 346.0 / u;
        assert!(m as f64 * k * k <= 2f64.powi(52), "squares exact");
        assert!(
            m as f64 * (2.0 * k) * (2.0 * k) > 2f64.powi(52),
            "not coarser than needed"
        );
        assert_eq!(target_quantum(0.0, 10), 1.0);
    }

    #[test]
    fn sharded_fits_refuse_what_cannot_be_exact_with_the_fix() {
        let data = data::load("iris").unwrap();
        let rows: Vec<usize> = (0..150).collect();
        let shard = Shard { rank: 0, size: 2 };
        let fit = |params: &HyperParams, rows: &[usize]| {
            Forest::random_forest(params)
                .unwrap()
                .fit_sharded(
                    &data,
                    rows,
                    None,
                    1,
                    FitOptions::default(),
                    shard,
                    &LocalReducer,
                )
                .err()
                .unwrap()
        };
        assert_eq!(
            fit(&HyperParams::new(), &rows),
            "random_forest: data-parallel training (rows split over processes) needs the hist \
             splitter (exact codes are every distinct value of a feature, which no process holds \
             alone); set splitter = \"hist\""
        );
        let balanced = hist(&[("class_weight", Hp::Text("balanced".into()))]);
        assert!(fit(&balanced, &rows).ends_with("leave class_weight at its default"));
        let oob = hist(&[("oob_score", Hp::Bool(true))]);
        assert!(fit(&oob, &rows).contains("set oob_score = false"));
        let auto = hist(&[("n_estimators", Hp::Text("auto".into()))]);
        assert!(fit(&auto, &rows).ends_with("give a number of trees"));
        assert_eq!(
            fit(&hist(&[]), &[3]),
            "random_forest: 2 processes for 1 training rows: every process needs at least one \
             row; use at most 1 processes or more rows"
        );
    }
}

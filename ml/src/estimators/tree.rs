//! CART trees on rank-coded features: the engine under the decision tree, the forests, AdaBoost's
//! stumps and both gradient boosters.
//!
//! Written here rather than taken from a crate because growing trees fast is the subject of the
//! course: linfa's and smartcore's trees sort or rescan every row at every node, these do not.
//!
//! - [`Binned`] codes every feature once as small integers, shared by all trees of an ensemble, in
//!   one of two ways ([`Splitter`]):
//!   - **exact** (scikit-learn's `DecisionTreeClassifier`): every distinct training value is its own
//!     code (`u32`), so every boundary between two distinct values is a candidate, and a best split
//!     stores the midpoint of the two values the node has on either side of it, as scikit-learn does.
//!   - **hist** (LightGBM, scikit-learn's `HistGradientBoosting*`): at most [`MAX_BINS`] quantile bins
//!     (`u8`); a split "bin ≤ b" is stored as the bin's upper edge.
//!
//!   Either way prediction compares raw values with the stored threshold and needs no coding.
//! - Exact splits are found the way hist splits are, on the codes: a node's split search counts its
//!   rows per code (class weights, target sums or gradients) and scans the boundaries, O(rows +
//!   occupied range) per feature. A node whose rows occupy few codes of a wide range (deep nodes)
//!   sorts just its occupied codes instead. This is the presorting approach (one sort per feature per
//!   fit, as the codes) rather than a sort per node and feature (O(n log n) each, scikit-learn's
//!   choice). Measured by `scripts/compare-sklearn.sh` (100 trees, 20 000 × 40 rows, 5 classes, 1
//!   thread, docs/ml.md): the exact forest takes about 2.5× as long as the 256-bin one and 0.43× as
//!   long as scikit-learn's per-node-sorting forest, at the same accuracy. Only the node's occupied
//!   range is cleared and scanned, and empty codes are skipped.
//! - The scans for the common criteria (Newton, squared error, Gini and entropy up to
//!   [`MAX_FAST_CLASSES`] classes) work on fixed-size arrays with the gain written out; more classes
//!   take the general loop. The arithmetic is the same either way, so the splits are too.
//! - With `subtraction` (the hist boosters: all features, shallow trees or a leaf budget) every node
//!   keeps all features' histograms; only the smaller child is histogrammed and the larger one is
//!   parent − smaller. A large node is histogrammed in fixed blocks of [`BLOCK`] rows (in parallel
//!   over blocks when the pool has threads) and the block histograms are added in block order, so
//!   the sums, and the tree, are the same at any thread count.
//! - Data-parallel (rows split over shards, [`crate::dataparallel`]): each node's histogram is
//!   summed over the shards, and with several shards the split search is divided by feature
//!   blocks ([`grow_reduced`]).
//! - The rows of a node are a contiguous range of one entry array, partitioned in place; the
//!   histogram, feature order and node arrays are reused, so growing allocates nothing per node.
//! - Growth is depth-first (CART) or best-first by gain with a leaf budget (histogram gradient
//!   boosting), from one frontier of nodes whose best split is known.
//!
//! Feature sampling follows scikit-learn: features are drawn without replacement until `max_features`
//! non-constant ones have been examined. Random cuts ([`Cut`]) are drawn uniform in value between
//! the node's smallest and largest value of the feature (scikit-learn's extra trees), or uniform
//! over the codes in that range. Every random draw comes from the tree's own seeded generator.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

use crate::data::Dataset;
use crate::dataparallel::{HistogramReducer, LocalReducer, Shard};

/// The most bins per feature with the hist splitter (bin indices are `u8`).
pub const MAX_BINS: usize = 256;

/// The most classes whose Gini or entropy scan runs on fixed-size arrays.
pub const MAX_FAST_CLASSES: usize = 10;

/// Rows per block when a node's all-feature histogram is built in blocks (the blocks, not the
/// threads, fix the order of the sums).
pub const BLOCK: usize = 2048;

/// How split candidates are enumerated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Splitter {
    /// Every boundary between distinct training values, the threshold at the midpoint.
    Exact,
    /// At most [`MAX_BINS`] (or fewer) quantile bins per feature.
    Hist,
}

impl Splitter {
    /// `exact` or `hist` (the manifest's spelling).
    pub fn parse(text: &str) -> Option<Splitter> {
        match text {
            "exact" => Some(Splitter::Exact),
            "hist" => Some(Splitter::Hist),
            _ => None,
        }
    }
}

/// Where a split cuts an examined feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// The best boundary (CART).
    Best,
    /// One threshold drawn uniform in value between the node's min and max (scikit-learn's extra
    /// trees, Geurts et al. 2006).
    Value,
    /// One boundary drawn uniform over the codes (distinct values or bins) in the node's range.
    Rank,
}

/// A feature code: `u8` for hist bins, `u32` for exact distinct values.
pub(crate) trait Code: Copy + Ord + Send + Sync + std::fmt::Debug + 'static {
    fn idx(self) -> usize;
    fn of(i: usize) -> Self;
}

impl Code for u8 {
    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn of(i: usize) -> u8 {
        i as u8
    }
}

impl Code for u32 {
    #[inline(always)]
    fn idx(self) -> usize {
        self as usize
    }
    #[inline(always)]
    fn of(i: usize) -> u32 {
        i as u32
    }
}

/// Every feature of a dataset coded for one splitter, from a set of training rows.
#[derive(Debug)]
pub(crate) enum Binned {
    Exact(Codes<u32>),
    Hist(Codes<u8>),
}

impl Binned {
    /// Code `data`'s features with values (exact) or quantile edges (hist, at most `max_bins`
    /// bins) from `rows`. Every dataset row is coded: an entry's `row` is its dataset row.
    pub fn new(
        data: &Dataset,
        rows: &[usize],
        splitter: Splitter,
        max_bins: usize,
    ) -> Result<Binned, String> {
        Binned::coding(
            data,
            rows,
            None,
            splitter,
            max_bins,
            Shard::WHOLE,
            &LocalReducer,
        )
    }

    /// [`Binned::new`] with the codes (values or edges) from `rows` but only the rows `coded`
    /// coded: an entry's `row` is then its position in `coded`. The boosters code just the
    /// training rows they own (a data-parallel shard codes its own share, not the dataset).
    /// With the hist splitter and more than one shard, shard `r` of `s` computes the edges of
    /// features `r, r + s, …` from every row of `rows` and `reducer` gathers them, so every shard
    /// holds the edges one process computes (each shard passes the same `rows`).
    pub fn for_rows(
        data: &Dataset,
        rows: &[usize],
        coded: &[usize],
        splitter: Splitter,
        max_bins: usize,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Binned, String> {
        Binned::coding(data, rows, Some(coded), splitter, max_bins, shard, reducer)
    }

    /// Hist codes for a shard that holds only its own rows: `data` is this shard's part of the
    /// dataset, `rows` its training rows (an entry's `row` is then its position in `rows`). The
    /// bin edges are those one process computes from every shard's training rows together:
    /// each feature's column shards are sent to the shard that owns the feature (`f mod size`,
    /// [`HistogramReducer::exchange`]), which sorts the whole column and computes the edges,
    /// and the edges are gathered. A missing value in any shard fails every shard.
    pub fn for_shard(
        data: &Dataset,
        rows: &[usize],
        max_bins: usize,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Binned, String> {
        Ok(Binned::Hist(Codes::from_shards(
            data, rows, max_bins, shard, reducer,
        )?))
    }

    fn coding(
        data: &Dataset,
        rows: &[usize],
        coded: Option<&[usize]>,
        splitter: Splitter,
        max_bins: usize,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Binned, String> {
        Ok(match splitter {
            Splitter::Exact => {
                Binned::Exact(Codes::new(data, rows, coded, None, Shard::WHOLE, reducer)?)
            }
            Splitter::Hist => Binned::Hist(Codes::new(
                data,
                rows,
                coded,
                Some(max_bins),
                shard,
                reducer,
            )?),
        })
    }
}

/// Every feature of a dataset mapped to codes.
#[derive(Debug)]
pub(crate) struct Codes<B: Code> {
    /// Rows coded (every dataset row, indexed by dataset row, or the listed rows, indexed by
    /// position in the list).
    n: usize,
    /// Column-major codes: `bins[f * n + row]`.
    bins: Vec<B>,
    /// Per feature and code, the smallest training value it holds (exact: the code's value).
    low: Vec<Vec<f64>>,
    /// Hist only: per feature and code, the largest training value it holds.
    high: Vec<Vec<f64>>,
    /// Hist only: per feature, the upper edges of all bins but the last: bin `b` holds
    /// `(t[b-1], t[b]]`. (Exact derives an edge from two values instead of storing it: the
    /// coding then costs 12 bytes a value, the code and at most one distinct value.)
    thresholds: Vec<Vec<f64>>,
    /// Each code is one distinct value.
    exact: bool,
    /// Row-major copy of `bins` (`[row * p + f]`) for one pass over a node's rows that fills every
    /// feature's histogram; hist only (the subtraction trick).
    row_major: Vec<B>,
    /// Where feature `f`'s codes start in an all-feature histogram; the last entry is the total.
    offsets: Vec<usize>,
    /// The most codes of any feature.
    widest: usize,
}

/// The training values of `rows` of the features `features`, column-major
/// (`[j * rows.len() + i]` for `features[j]`), read in one pass over the (row-major) dataset. A
/// missing value in any feature is refused, naming the first feature and row with one.
fn training_columns(
    data: &Dataset,
    rows: &[usize],
    features: &[usize],
) -> Result<Vec<f64>, String> {
    let m = rows.len();
    let mut columns = vec![0.0; m * features.len()];
    let mut missing = false;
    for (i, &r) in rows.iter().enumerate() {
        let x = data.x.row(r);
        missing |= x.iter().any(|v| v.is_nan());
        for (j, &f) in features.iter().enumerate() {
            columns[j * m + i] = x[f];
        }
    }
    if missing {
        for f in 0..data.features() {
            if let Some(&r) = rows.iter().find(|&&r| data.x.get(r, f).is_nan()) {
                return Err(format!(
                    "{}: feature `{}` is missing (NaN) in row {r}; fill or drop missing values first",
                    data.name, data.feature_names[f]
                ));
            }
        }
    }
    Ok(columns)
}

/// Each hist bin's smallest and largest value among the `sorted` training values, for edges `t`.
fn bin_bounds(sorted: &[f64], t: &[f64]) -> (Vec<f64>, Vec<f64>) {
    let (mut lo, mut hi) = (vec![f64::NAN; t.len() + 1], vec![f64::NAN; t.len() + 1]);
    let mut b = 0;
    for &v in sorted {
        while b < t.len() && v > t[b] {
            b += 1;
        }
        if lo[b].is_nan() {
            lo[b] = v;
        }
        hi[b] = v;
    }
    (lo, hi)
}

/// One feature's codes: the sorted distinct training values (exact: `low`, no edges), or the bin
/// edges with each bin's smallest and largest training value (hist).
struct FeatureCodes {
    thresholds: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
}

impl FeatureCodes {
    /// From one feature's training values (sorted here, in place).
    fn of(values: &mut [f64], max_bins: Option<usize>) -> FeatureCodes {
        values.sort_unstable_by(f64::total_cmp);
        let Some(max_bins) = max_bins else {
            let mut low = values.to_vec();
            low.dedup();
            return FeatureCodes {
                thresholds: Vec::new(),
                low,
                high: Vec::new(),
            };
        };
        let thresholds = edges(values, max_bins.clamp(2, MAX_BINS));
        let (low, high) = bin_bounds(values, &thresholds);
        FeatureCodes {
            thresholds,
            low,
            high,
        }
    }

    /// Appended to `out` as `[feature, edges, edges…, lows…, highs…]` (hist codes only).
    fn write(&self, f: usize, out: &mut Vec<f64>) {
        out.push(f as f64);
        out.push(self.thresholds.len() as f64);
        out.extend_from_slice(&self.thresholds);
        out.extend_from_slice(&self.low);
        out.extend_from_slice(&self.high);
    }

    /// Every record [`FeatureCodes::write`] wrote into `all`, by feature.
    fn read_all(all: &[f64], p: usize) -> Vec<FeatureCodes> {
        let mut out: Vec<Option<FeatureCodes>> = (0..p).map(|_| None).collect();
        let mut at = 0;
        while at + 2 <= all.len() {
            let (f, t) = (all[at] as usize, all[at + 1] as usize);
            let take = |from: usize, len: usize| all[from..from + len].to_vec();
            let start = at + 2;
            out[f] = Some(FeatureCodes {
                thresholds: take(start, t),
                low: take(start + t, t + 1),
                high: take(start + 2 * t + 1, t + 1),
            });
            at = start + 3 * t + 2;
        }
        out.into_iter()
            .map(|c| c.expect("every feature's edges were gathered"))
            .collect()
    }
}

impl<B: Code> Codes<B> {
    /// `max_bins = None`: one code per distinct value. The codes come from the training `rows`;
    /// `coded` lists the rows to code (`None`: every dataset row). With more than one `shard`
    /// (hist only), this shard computes features `rank, rank + size, …` and `reducer` gathers
    /// the rest from the other shards.
    fn new(
        data: &Dataset,
        rows: &[usize],
        coded: Option<&[usize]>,
        max_bins: Option<usize>,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Codes<B>, String> {
        let p = data.features();
        let exact = max_bins.is_none();
        let split = !exact && shard.size > 1;
        let mine: Vec<usize> = if split {
            (shard.rank..p).step_by(shard.size).collect()
        } else {
            (0..p).collect()
        };
        // Every shard checks every value (so all refuse a missing one alike, before any message).
        let mut columns = training_columns(data, rows, &mine)?;
        let m = rows.len();
        let computed = mine
            .iter()
            .enumerate()
            .map(|(j, _)| FeatureCodes::of(&mut columns[j * m..(j + 1) * m], max_bins));
        let features: Vec<FeatureCodes> = if split {
            let mut part = Vec::new();
            for (c, &f) in computed.zip(&mine) {
                c.write(f, &mut part);
            }
            drop(columns);
            FeatureCodes::read_all(&reducer.gather(&part), p)
        } else {
            computed.collect()
        };
        Ok(Codes::assemble(data, coded, features, exact))
    }

    /// [`Binned::for_shard`]'s codes: `data` holds this shard's rows only, `rows` its training
    /// rows (coded, by position).
    fn from_shards(
        data: &Dataset,
        rows: &[usize],
        max_bins: usize,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Codes<B>, String> {
        let p = data.features();
        let size = shard.size.max(1);
        let all: Vec<usize> = (0..p).collect();
        let columns = training_columns(data, rows, &all);
        // Every shard learns whether any shard has a missing value, so all refuse together.
        let mut bad = [if columns.is_err() { 1.0 } else { 0.0 }];
        reducer.max(&mut bad);
        let columns = match columns {
            Err(e) => return Err(e),
            Ok(_) if bad[0] > 0.0 => {
                return Err(format!(
                    "{}: a feature is missing (NaN) in another process's rows; fill or drop \
                     missing values first",
                    data.name
                ))
            }
            Ok(c) => c,
        };
        // Feature f's column shard goes to shard f mod size, features in increasing order.
        let m = rows.len();
        let mut parts = vec![Vec::new(); size];
        for f in 0..p {
            parts[f % size].extend_from_slice(&columns[f * m..(f + 1) * m]);
        }
        drop(columns);
        let received = reducer.exchange(shard.rank, &parts);
        drop(parts);
        let mine: Vec<usize> = (shard.rank..p).step_by(size).collect();
        let mut part = Vec::new();
        for (j, &f) in mine.iter().enumerate() {
            let mut values: Vec<f64> = Vec::new();
            for r in &received {
                let len = r.len() / mine.len();
                values.extend_from_slice(&r[j * len..(j + 1) * len]);
            }
            FeatureCodes::of(&mut values, Some(max_bins)).write(f, &mut part);
        }
        drop(received);
        let features = FeatureCodes::read_all(&reducer.gather(&part), p);
        Ok(Codes::assemble(data, Some(rows), features, false))
    }

    /// The codes of the rows `coded` (`None`: every dataset row) from each feature's values
    /// (exact) or edges (hist).
    fn assemble(
        data: &Dataset,
        coded: Option<&[usize]>,
        features: Vec<FeatureCodes>,
        exact: bool,
    ) -> Codes<B> {
        let p = data.features();
        let mut thresholds = Vec::with_capacity(p);
        let (mut low, mut high) = (Vec::with_capacity(p), Vec::with_capacity(p));
        for c in features {
            if !exact {
                thresholds.push(c.thresholds);
                high.push(c.high);
            }
            low.push(c.low);
        }
        // A value's code: its rank among the distinct training values (exact), or the first bin
        // whose upper edge it does not exceed (hist). Coded row by row (the dataset is row-major).
        let cuts = if exact { &low } else { &thresholds };
        let n = coded.map_or(data.rows(), <[usize]>::len);
        let mut row_major = vec![B::of(0); n * p];
        for (i, out) in row_major.chunks_exact_mut(p.max(1)).enumerate() {
            let r = coded.map_or(i, |c| c[i]);
            for ((b, &v), cut) in out.iter_mut().zip(data.x.row(r)).zip(cuts) {
                *b = B::of(cut.partition_point(|&e| e < v));
            }
        }
        let mut bins = vec![B::of(0); n * p];
        for (r, codes) in row_major.chunks_exact(p.max(1)).enumerate() {
            for (f, &b) in codes.iter().enumerate() {
                bins[f * n + r] = b;
            }
        }
        if exact {
            row_major = Vec::new();
        }
        let mut offsets = vec![0];
        for l in &low {
            offsets.push(offsets.last().copied().unwrap_or(0) + l.len().max(1));
        }
        let widest = low.iter().map(|l| l.len()).max().unwrap_or(1).max(1);
        Codes {
            n,
            bins,
            low,
            high,
            thresholds,
            exact,
            row_major,
            offsets,
            widest,
        }
    }

    pub fn features(&self) -> usize {
        self.low.len()
    }

    fn column(&self, f: usize) -> &[B] {
        &self.bins[f * self.n..(f + 1) * self.n]
    }

    /// Per code of feature `f`, the largest training value it holds.
    fn highs(&self, f: usize) -> &[f64] {
        if self.exact {
            &self.low[f]
        } else {
            &self.high[f]
        }
    }

    /// The upper edge of code `b` of feature `f`: the midpoint to the next distinct value (exact)
    /// or the bin edge.
    fn edge(&self, f: usize, b: usize) -> f64 {
        if self.exact {
            midpoint(self.low[f][b], self.low[f][b + 1])
        } else {
            self.thresholds[f][b]
        }
    }

    /// The threshold of the best split after code `b` of feature `f`, whose next occupied code in
    /// the node is `next`: the midpoint of the two values (exact, as scikit-learn), else the edge.
    fn best_threshold(&self, f: usize, b: usize, next: usize) -> f64 {
        if self.exact {
            midpoint(self.low[f][b], self.low[f][next])
        } else {
            self.thresholds[f][b]
        }
    }
}

/// scikit-learn's threshold between two values `a < c`: `a/2 + c/2`, or `a` when rounding reaches
/// `c`.
fn midpoint(a: f64, c: f64) -> f64 {
    let m = a / 2.0 + c / 2.0;
    if m >= c || !m.is_finite() {
        a
    } else {
        m
    }
}

/// Bin edges for sorted `values`: midpoints between consecutive distinct values when there are at
/// most `max_bins` of them, otherwise between the values at evenly spaced quantiles.
fn edges(sorted: &[f64], max_bins: usize) -> Vec<f64> {
    let mut distinct: Vec<(f64, usize)> = Vec::new();
    for &v in sorted {
        match distinct.last_mut() {
            Some((last, count)) if *last == v => *count += 1,
            _ => distinct.push((v, 1)),
        }
    }
    let mid = |a: f64, b: f64| {
        let m = a + (b - a) / 2.0;
        if m >= b {
            a
        } else {
            m
        }
    };
    if distinct.len() <= max_bins {
        return distinct.windows(2).map(|w| mid(w[0].0, w[1].0)).collect();
    }
    let total = sorted.len() as f64;
    let mut out = Vec::with_capacity(max_bins - 1);
    let mut cumulative = 0usize;
    let mut j = 1;
    for i in 0..distinct.len() - 1 {
        cumulative += distinct[i].1;
        // Close a bin once it reaches the next quantile.
        if cumulative as f64 >= j as f64 * total / max_bins as f64 {
            out.push(mid(distinct[i].0, distinct[i + 1].0));
            while j < max_bins && cumulative as f64 >= j as f64 * total / max_bins as f64 {
                j += 1;
            }
            if out.len() == max_bins - 1 {
                break;
            }
        }
    }
    out
}

/// What a split optimises.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Criterion {
    Gini,
    Entropy,
    /// Squared error (variance reduction) on `y`.
    Mse,
    /// Second-order boosting gain `G² / (H + λ)` on gradients `y` and hessians `h`.
    Newton {
        lambda: f64,
    },
}

/// How to grow one tree.
#[derive(Clone, Debug)]
pub(crate) struct TreeConfig {
    pub criterion: Criterion,
    /// Classes for Gini / entropy (leaf values are class probabilities); ignored otherwise.
    pub n_classes: usize,
    /// 0 for no limit.
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    /// Features examined per split (the non-constant ones count), 1..=p.
    pub max_features: usize,
    /// 0 for no limit; with a limit, growth is best-first.
    pub max_leaf_nodes: usize,
    /// Best cut, or one random cut per examined feature (extremely randomised trees).
    pub cut: Cut,
    /// Keep every feature's histogram per node and derive the larger child's as parent − smaller
    /// child (the subtraction trick). Pays off for shallow trees or leaf budgets on all features
    /// (boosting); deep trees with many tiny nodes do better without it. Needs
    /// `max_features` = all features, the best cut and the hist splitter (an all-feature histogram
    /// over every distinct value would not pay).
    pub subtraction: bool,
    /// Build a large node's all-feature histogram in parallel over row blocks (rayon).
    pub parallel: bool,
}

/// One training row as a tree sees it: its dataset row, class, weight, target (or gradient) and
/// hessian. The boosters' regression trees have no use for `class` and keep the entry's position
/// among the training rows there.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub row: u32,
    pub class: u32,
    pub w: f64,
    pub y: f64,
    pub h: f64,
}

const LEAF: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Node {
    feature: u32,
    threshold: f64,
    left: u32,
    right: u32,
}

/// A fitted tree: every node has a value (class probabilities, a mean, or a boosting step).
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    nodes: Vec<Node>,
    values: Vec<f64>,
    width: usize,
    /// Split gains (weighted impurity decrease) summed by feature.
    gains: Vec<f64>,
}

impl Tree {
    /// The index of the leaf `x` falls in.
    pub fn leaf(&self, x: &[f64]) -> usize {
        let mut i = 0;
        loop {
            let n = &self.nodes[i];
            if n.feature == LEAF {
                return i;
            }
            i = if x[n.feature as usize] <= n.threshold {
                n.left as usize
            } else {
                n.right as usize
            };
        }
    }

    /// The value of the leaf `x` falls in.
    pub fn value(&self, x: &[f64]) -> &[f64] {
        let i = self.leaf(x);
        &self.values[i * self.width..(i + 1) * self.width]
    }

    /// The (first) value of node `i`.
    pub fn node_value(&self, i: usize) -> f64 {
        self.values[i * self.width]
    }

    /// Replace the (single) value of node `i` (boosting's leaf updates).
    pub fn set_value(&mut self, i: usize, v: f64) {
        self.values[i * self.width] = v;
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The split gains summed by feature, normalised to sum to 1 (all zero for a single leaf).
    pub fn importances(&self) -> Vec<f64> {
        let total: f64 = self.gains.iter().sum();
        let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
        self.gains.iter().map(|g| g * scale).collect()
    }

    pub fn is_leaf(&self, i: usize) -> bool {
        self.nodes[i].feature == LEAF
    }

    /// Scale every value (a boosting learning rate).
    pub fn scale(&mut self, s: f64) {
        for v in &mut self.values {
            *v *= s;
        }
    }
}

/// Grow a tree on `entries` (reordered in place).
pub(crate) fn grow(
    binned: &Binned,
    entries: &mut [Entry],
    cfg: &TreeConfig,
    rng: &mut Xoshiro256PlusPlus,
) -> Tree {
    grow_with_ranges(binned, entries, cfg, rng).0
}

/// [`grow`], also returning each node's range in the reordered `entries`: a leaf's range holds
/// exactly the entries that reached it (the boosters update their scores from it without walking
/// the tree again).
pub(crate) fn grow_with_ranges(
    binned: &Binned,
    entries: &mut [Entry],
    cfg: &TreeConfig,
    rng: &mut Xoshiro256PlusPlus,
) -> (Tree, Vec<(u32, u32)>) {
    match binned {
        Binned::Exact(c) => grow_codes(c, entries, cfg, rng, None, false, Shard::WHOLE),
        Binned::Hist(c) => grow_codes(c, entries, cfg, rng, None, false, Shard::WHOLE),
    }
}

/// [`grow_with_ranges`] on one shard of the training rows (data-parallel training,
/// [`crate::dataparallel`]): every node's all-feature histogram is summed over the shards by
/// `reducer`, and a node's row count and statistics are read from that sum rather than from the
/// shard's rows, so every shard grows the same tree. The returned ranges index the shard's
/// `entries`. Needs the all-feature mode (hist splitter, subtraction, every feature, best cut);
/// the statistics must sum exactly (the booster rounds them, see [`crate::dataparallel`]) for the
/// tree not to depend on how the rows are split.
///
/// With more than one `shard` the split search is parallel over features: each node's histogram
/// is reduce-scattered ([`HistogramReducer::sum_block`]) so that shard `r` holds the summed
/// histograms of features `p·r/size .. p·(r+1)/size` only, searches those, and the shards
/// exchange their best split ([`HistogramReducer::gather_equal`], both children of a split in
/// one exchange); the winner is the best gain,
/// ties to the lowest feature, as one process scanning every feature in order picks it. The
/// subtraction trick then runs on the shard's own features only, so the split search, the
/// subtraction and the bytes each shard receives shrink with the shards as the row work does.
/// With fewer features than shards every shard sums and searches every feature.
pub(crate) fn grow_reduced(
    binned: &Binned,
    entries: &mut [Entry],
    cfg: &TreeConfig,
    rng: &mut Xoshiro256PlusPlus,
    reducer: &dyn HistogramReducer,
    shard: Shard,
) -> Result<(Tree, Vec<(u32, u32)>), String> {
    match binned {
        Binned::Hist(c)
            if cfg.subtraction && cfg.max_features >= c.features() && cfg.cut == Cut::Best =>
        {
            Ok(grow_codes(
                c,
                entries,
                cfg,
                rng,
                Some(reducer),
                false,
                shard,
            ))
        }
        _ => Err(
            "data-parallel training needs the hist splitter with every feature examined \
                  (splitter = \"hist\")"
                .into(),
        ),
    }
}

/// [`grow`] on one shard of the training rows for the forests (data-parallel training,
/// [`crate::dataparallel`]): every node's all-feature histogram of the shard's rows is summed over
/// the shards by `reducer`, and the split is then searched as [`grow`] searches it (features in
/// the same random order until `max_features` non-constant ones have been examined, the same
/// draws from `rng`), reading each examined feature's histogram from that sum. The tree is the one
/// [`grow`] builds on all the rows provided the statistics sum exactly (integer weights for
/// classes, rounded targets for values; [`super::forest`]). Hist splitter only.
pub(crate) fn grow_sampled_reduced(
    binned: &Binned,
    entries: &mut [Entry],
    cfg: &TreeConfig,
    rng: &mut Xoshiro256PlusPlus,
    reducer: &dyn HistogramReducer,
) -> Result<Tree, String> {
    match binned {
        Binned::Hist(c) => {
            Ok(grow_codes(c, entries, cfg, rng, Some(reducer), true, Shard::WHOLE).0)
        }
        Binned::Exact(_) => Err(
            "data-parallel training needs the hist splitter (splitter = \"hist\"): exact codes \
             are every distinct value, which no shard holds alone"
                .into(),
        ),
    }
}

/// Grow one tree on the codes: the root, then split frontier nodes (depth-first, or best gain
/// first under a leaf budget) until none can split. `sampled`: all-feature histograms summed by
/// `reducer`, searched one sampled feature at a time ([`grow_sampled_reduced`]).
fn grow_codes<B: Code>(
    binned: &Codes<B>,
    entries: &mut [Entry],
    cfg: &TreeConfig,
    rng: &mut Xoshiro256PlusPlus,
    reducer: Option<&dyn HistogramReducer>,
    sampled: bool,
    shard: Shard,
) -> (Tree, Vec<(u32, u32)>) {
    let mut b = Builder::new(binned, cfg, reducer, sampled, shard);
    let mut frontier: Vec<Pending> = Vec::new();
    let root_slot = if b.full {
        let slot = b.alloc();
        b.fill_slot(slot, entries);
        b.reduce(slot);
        slot
    } else {
        NO_SLOT
    };
    if let Some(p) = b.make_node(entries, 0, entries.len(), 0, root_slot, rng) {
        frontier.push(p);
    }
    let mut leaves = 1;
    let best_first = cfg.max_leaf_nodes > 0;
    while !(best_first && leaves >= cfg.max_leaf_nodes) {
        let Some(p) = next_to_split(&mut frontier, best_first) else {
            break;
        };
        let s = p.split;
        let mid = p.start
            + partition(
                binned.column(s.feature),
                &mut entries[p.start..p.end],
                s.bin,
            );
        let (left_slot, right_slot) = b.child_slots(entries, &p, mid);
        b.search_children([left_slot, right_slot], p.depth + 1);
        let left_id = b.tree.nodes.len() as u32;
        let lp = b.make_node(entries, p.start, mid, p.depth + 1, left_slot, rng);
        let right_id = b.tree.nodes.len() as u32;
        let rp = b.make_node(entries, mid, p.end, p.depth + 1, right_slot, rng);
        b.tree.nodes[p.node] = Node {
            feature: s.feature as u32,
            threshold: s.threshold,
            left: left_id,
            right: right_id,
        };
        b.tree.gains[s.feature] += s.gain.max(0.0);
        leaves += 1;
        // Depth-first takes the left child next, as a recursive CART would.
        frontier.extend(rp);
        frontier.extend(lp);
    }
    b.recycle();
    (b.tree, b.ranges)
}

/// The frontier node to split next: the best gain (the first of equals) with a leaf budget, else
/// the last pushed (depth-first).
fn next_to_split(frontier: &mut Vec<Pending>, best_first: bool) -> Option<Pending> {
    if !best_first {
        return frontier.pop();
    }
    // The frontier stays small (at most the leaf budget): a scan beats a heap.
    let best = (0..frontier.len()).fold(None, |acc: Option<usize>, i| match acc {
        Some(a) if frontier[a].split.gain >= frontier[i].split.gain => Some(a),
        _ => Some(i),
    });
    best.map(|i| frontier.swap_remove(i))
}

/// Partition `slice` in place, codes ≤ `bin` (of `column`) to the front; returns how many.
fn partition<B: Code>(column: &[B], slice: &mut [Entry], bin: usize) -> usize {
    let mut i = 0;
    let mut j = slice.len();
    while i < j {
        if column[slice[i].row as usize].idx() <= bin {
            i += 1;
        } else {
            j -= 1;
            slice.swap(i, j);
        }
    }
    i
}

/// The most all-feature histograms a thread keeps between trees.
const KEPT_SLOTS: usize = 64;

thread_local! {
    /// All-feature histograms left by the trees this thread grew: a booster grows hundreds of
    /// trees of the same shape, and fresh buffers for each cost page faults and zeroing. Every
    /// buffer is cleared before use, so reuse cannot change a tree.
    static SLOTS: std::cell::RefCell<Vec<Slot>> = const { std::cell::RefCell::new(Vec::new()) };
}

const NO_SLOT: usize = usize::MAX;

#[derive(Clone, Copy, Debug)]
struct Split {
    feature: usize,
    /// Rows with codes ≤ `bin` go left.
    bin: usize,
    gain: f64,
    /// The raw-value threshold stored in the tree (`x ≤ threshold` goes left).
    threshold: f64,
    /// Rows going left and right (over every shard), all-feature mode only: which child is the
    /// smaller one to histogram, known on every shard though only one holds the feature's counts.
    left_rows: u64,
    right_rows: u64,
}

impl Split {
    /// Values per split in [`Split::write`].
    const WORDS: usize = 6;

    /// `split` as [`Split::WORDS`] doubles (all exact: indices and counts below 2^53), feature
    /// −1 for none, for the shards' exchange of their best splits.
    fn write(split: Option<Split>) -> [f64; Split::WORDS] {
        match split {
            None => [f64::NAN, -1.0, 0.0, 0.0, 0.0, 0.0],
            Some(c) => [
                c.gain,
                c.feature as f64,
                c.bin as f64,
                c.threshold,
                c.left_rows as f64,
                c.right_rows as f64,
            ],
        }
    }

    fn read(w: &[f64]) -> Option<Split> {
        (w[1] >= 0.0).then(|| Split {
            gain: w[0],
            feature: w[1] as usize,
            bin: w[2] as usize,
            threshold: w[3],
            left_rows: w[4] as u64,
            right_rows: w[5] as u64,
        })
    }
}

/// Keep the first of the best gains: `best` is replaced only by a strictly greater gain, as a
/// serial scan over the features in order. Folding the shards' bests (each over a contiguous
/// block of features, in shard order) gives the one-process winner: the gains are finite (the
/// Newton gain divides by hessian sums that the booster keeps positive).
fn keep_best(best: &mut Option<Split>, c: Split) {
    if best.is_none_or(|b| c.gain > b.gain) {
        *best = Some(c);
    }
}

/// Feature-parallel split search over shards ([`grow_reduced`]).
struct FeatureBlocks {
    /// The first code of each shard's block of features, and the total (`size + 1` entries).
    bounds: Vec<usize>,
    /// This shard's features.
    mine: std::ops::Range<usize>,
}

impl FeatureBlocks {
    /// Contiguous blocks of `p / size` features (sizes differ by at most one); `None` with one
    /// shard or fewer features than shards.
    fn new(offsets: &[usize], p: usize, shard: Shard) -> Option<FeatureBlocks> {
        if shard.size <= 1 || p < shard.size {
            return None;
        }
        let first = |r: usize| p * r / shard.size;
        Some(FeatureBlocks {
            bounds: (0..=shard.size).map(|r| offsets[first(r)]).collect(),
            mine: first(shard.rank)..first(shard.rank + 1),
        })
    }
}

struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    split: Split,
    /// The node's all-feature histogram in `pool`, or `NO_SLOT`.
    slot: usize,
}

/// An all-feature histogram: statistics and row counts per code.
type Slot = (Vec<f64>, Vec<u32>);

struct Builder<'a, B: Code> {
    binned: &'a Codes<B>,
    cfg: &'a TreeConfig,
    /// Statistics per code: class weights, (w, wy, wy²) or (g, h).
    s: usize,
    /// All-feature histograms with the subtraction trick.
    full: bool,
    /// Data-parallel: sums each node's histogram over the shards (all-feature mode only).
    reducer: Option<&'a dyn HistogramReducer>,
    /// All-feature histograms (summed over the shards), but the split searched as the
    /// per-feature mode searches it: sampled features, random cuts (data-parallel forests).
    sampled: bool,
    /// Sampled mode: the statistics and row counts of the next children to be made without a
    /// histogram (both leaves whatever their rows; read from the parent's), right then left.
    leaf_stats: Vec<(Vec<f64>, usize)>,
    /// Data-parallel over several shards: the features whose summed histograms this shard holds
    /// and searches.
    features: Option<FeatureBlocks>,
    /// Feature-parallel: the children's splits already exchanged ([`Builder::search_children`]),
    /// by slot.
    settled: Vec<(usize, Option<Split>)>,
    /// One feature's histogram (per-feature mode).
    hist: Vec<f64>,
    counts: Vec<u32>,
    occupied: Vec<u32>,
    /// All-feature histograms (statistics, row counts), reused through `free`.
    pool: Vec<Slot>,
    free: Vec<usize>,
    /// Per-block all-feature histograms of a large node, reused.
    blocks: Vec<Slot>,
    order: Vec<usize>,
    left: Vec<f64>,
    right: Vec<f64>,
    node_stats: Vec<f64>,
    tree: Tree,
    /// Each node's `start..end` in the entries.
    ranges: Vec<(u32, u32)>,
}

/// An all-feature histogram of `total` codes and `s` statistics each: one this thread kept from an
/// earlier tree if it has one of that size (its contents are cleared before use), else a new one.
fn new_slot(total: usize, s: usize) -> Slot {
    let kept = SLOTS.with(|kept| {
        let mut kept = kept.borrow_mut();
        let at = kept
            .iter()
            .position(|(h, c)| h.len() == total * s && c.len() == total)?;
        Some(kept.swap_remove(at))
    });
    kept.unwrap_or_else(|| (vec![0.0; total * s], vec![0; total]))
}

/// Add every feature's codes of `rows` into one all-feature histogram (`hist`, `counts` zeroed
/// by the caller), rows in order: each feature's sums are those of a serial pass over the rows.
fn fill_rows<B: Code>(
    binned: &Codes<B>,
    criterion: Criterion,
    s: usize,
    rows: &[Entry],
    hist: &mut [f64],
    counts: &mut [u32],
) {
    let p = binned.features();
    let (rm, offsets) = (&binned.row_major, &binned.offsets);
    for e in rows {
        let codes = &rm[e.row as usize * p..(e.row as usize + 1) * p];
        for (f, &b) in codes.iter().enumerate() {
            let at = offsets[f] + b.idx();
            counts[at] += 1;
            add(&mut hist[at * s..(at + 1) * s], criterion, e);
        }
    }
}

impl<'a, B: Code> Builder<'a, B> {
    /// A builder for one tree; all-feature mode (`full`) when the configuration allows it.
    fn new(
        binned: &'a Codes<B>,
        cfg: &'a TreeConfig,
        reducer: Option<&'a dyn HistogramReducer>,
        sampled: bool,
        shard: Shard,
    ) -> Builder<'a, B> {
        let width = match cfg.criterion {
            Criterion::Gini | Criterion::Entropy => cfg.n_classes,
            _ => 1,
        };
        let stat_width = match cfg.criterion {
            Criterion::Gini | Criterion::Entropy => cfg.n_classes,
            Criterion::Mse => 3,
            Criterion::Newton { .. } => 2,
        };
        let full = cfg.subtraction
            && !binned.exact
            && cfg.max_features >= binned.features()
            && cfg.cut == Cut::Best;
        let sampled = sampled && !binned.exact;
        let full = full || sampled;
        Builder {
            binned,
            cfg,
            s: stat_width,
            full,
            reducer: reducer.filter(|_| full),
            sampled,
            leaf_stats: Vec::new(),
            // The sampled (forest) mode sums every feature's histogram on every shard: its
            // features are drawn at random per node.
            features: FeatureBlocks::new(&binned.offsets, binned.features(), shard)
                .filter(|_| full && reducer.is_some() && !sampled),
            settled: Vec::new(),
            hist: vec![0.0; binned.widest * stat_width],
            counts: vec![0; binned.widest],
            occupied: Vec::new(),
            pool: Vec::new(),
            free: Vec::new(),
            blocks: Vec::new(),
            order: (0..binned.features()).collect(),
            left: vec![0.0; stat_width],
            right: vec![0.0; stat_width],
            node_stats: vec![0.0; stat_width],
            tree: Tree {
                nodes: Vec::new(),
                values: Vec::new(),
                width,
                gains: vec![0.0; binned.features()],
            },
            ranges: Vec::new(),
        }
    }

    /// The children's all-feature histograms of node `p`, split at `mid` (subtraction trick:
    /// histogram the smaller child, the larger one is parent − smaller); none outside all-feature
    /// mode. Data-parallel, "smaller" is over all shards, read from the parent's summed counts.
    fn child_slots(&mut self, entries: &[Entry], p: &Pending, mid: usize) -> (usize, usize) {
        if !self.full {
            return (NO_SLOT, NO_SLOT);
        }
        let s = p.split;
        if self.sampled && self.reducer.is_some() && self.leaf_children(p) {
            self.release(p.slot);
            return (NO_SLOT, NO_SLOT);
        }
        let small_is_left = match (self.reducer, &self.features) {
            // Only the feature's shard holds its counts: the exchange of best splits carried them.
            (Some(_), Some(_)) => s.left_rows <= s.right_rows,
            (Some(_), None) => {
                let counts = &self.pool[p.slot].1;
                let offsets = &self.binned.offsets;
                let (a, z) = (offsets[s.feature], offsets[s.feature + 1]);
                let left: u64 = counts[a..=a + s.bin].iter().map(|&c| u64::from(c)).sum();
                let right: u64 = counts[a + s.bin + 1..z].iter().map(|&c| u64::from(c)).sum();
                left <= right
            }
            (None, _) => mid - p.start <= p.end - mid,
        };
        let small = self.alloc();
        let range = if small_is_left {
            p.start..mid
        } else {
            mid..p.end
        };
        self.fill_slot(small, &entries[range]);
        self.reduce(small);
        self.subtract(p.slot, small);
        if small_is_left {
            (small, p.slot)
        } else {
            (p.slot, small)
        }
    }

    /// Sampled mode over shards: when both children of `p` will be leaves whatever their rows
    /// (at the depth limit, or too few rows to split), their statistics and row counts are read
    /// from the parent's summed histogram of the split feature into `leaf_stats` and no child
    /// is histogrammed or reduced (half the reductions of a depth-limited tree). The sums are
    /// exact, so they equal those of the children's rows.
    fn leaf_children(&mut self, p: &Pending) -> bool {
        let (cfg, s, f) = (self.cfg, self.s, p.split.feature);
        let (a, z) = (self.binned.offsets[f], self.binned.offsets[f + 1]);
        let (hist, counts) = &self.pool[p.slot];
        let side = |codes: std::ops::Range<usize>| {
            let mut st = vec![0.0; s];
            for code in hist[codes.start * s..codes.end * s].chunks_exact(s) {
                for (t, v) in st.iter_mut().zip(code) {
                    *t += v;
                }
            }
            let n: usize = counts[codes].iter().map(|&c| c as usize).sum();
            (st, n)
        };
        let (left, right) = (side(a..a + p.split.bin + 1), side(a + p.split.bin + 1..z));
        let leaf = |n: usize| {
            (cfg.max_depth > 0 && p.depth + 1 >= cfg.max_depth)
                || n < cfg.min_samples_split
                || n < 2 * cfg.min_samples_leaf
        };
        if !(leaf(left.1) && leaf(right.1)) {
            return false;
        }
        self.leaf_stats = vec![right, left];
        true
    }

    fn alloc(&mut self) -> usize {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        let total = self.binned.offsets[self.binned.features()];
        self.pool.push(new_slot(total, self.s));
        self.pool.len() - 1
    }

    /// Hand the all-feature histograms back to this thread's store for the next tree.
    fn recycle(&mut self) {
        let pool = std::mem::take(&mut self.pool);
        let blocks = std::mem::take(&mut self.blocks);
        SLOTS.with(|kept| {
            let mut kept = kept.borrow_mut();
            for slot in pool.into_iter().chain(blocks) {
                if kept.len() < KEPT_SLOTS {
                    kept.push(slot);
                }
            }
        });
    }

    fn release(&mut self, slot: usize) {
        if slot != NO_SLOT {
            self.free.push(slot);
        }
    }

    /// Every feature's histogram of `rows` into `slot`. Up to [`BLOCK`] rows are added in order;
    /// more are cut into blocks of [`BLOCK`] rows, each histogrammed on its own (in parallel when
    /// allowed) and the block histograms added in block order. The blocks depend only on the row
    /// count, so the sums are the same on any number of threads.
    fn fill_slot(&mut self, slot: usize, rows: &[Entry]) {
        let (s, criterion, binned) = (self.s, self.cfg.criterion, self.binned);
        let total = binned.offsets[binned.features()];
        let (hist, counts) = &mut self.pool[slot];
        hist.fill(0.0);
        counts.fill(0);
        let parallel = self.cfg.parallel && rayon::current_num_threads() > 1;
        let p = binned.features();
        if rows.len() <= BLOCK {
            if parallel && p > 1 && rows.len() * p >= 1 << 14 {
                // One task per feature, each reading the node's rows in order: the same sums as
                // the row-major pass (which adds each row to every feature in turn).
                let mut parts: Vec<(usize, &mut [f64], &mut [u32])> = Vec::with_capacity(p);
                let (mut h_rest, mut c_rest) = (&mut hist[..], &mut counts[..]);
                for f in 0..p {
                    let len = binned.offsets[f + 1] - binned.offsets[f];
                    let (h, hr) = std::mem::take(&mut h_rest).split_at_mut(len * s);
                    let (c, cr) = std::mem::take(&mut c_rest).split_at_mut(len);
                    parts.push((f, h, c));
                    h_rest = hr;
                    c_rest = cr;
                }
                parts.into_par_iter().for_each(|(f, h, c)| {
                    let column = binned.column(f);
                    for e in rows {
                        let b = column[e.row as usize].idx();
                        c[b] += 1;
                        add(&mut h[b * s..(b + 1) * s], criterion, e);
                    }
                });
            } else {
                fill_rows(binned, criterion, s, rows, hist, counts);
            }
            return;
        }
        let nb = rows.len().div_ceil(BLOCK);
        while self.blocks.len() < nb {
            self.blocks.push(new_slot(total, s));
        }
        let blocks = &mut self.blocks[..nb];
        let fill = |((h, c), chunk): (&mut Slot, &[Entry])| {
            h.fill(0.0);
            c.fill(0);
            fill_rows(binned, criterion, s, chunk, h, c);
        };
        if parallel {
            blocks
                .par_iter_mut()
                .zip(rows.par_chunks(BLOCK))
                .for_each(fill);
        } else {
            blocks.iter_mut().zip(rows.chunks(BLOCK)).for_each(fill);
        }
        // Sum the blocks in order, code range by code range.
        const SPAN: usize = 1024;
        let blocks = &*blocks;
        let sum_h = |(k, out): (usize, &mut [f64])| {
            for (h, _) in blocks {
                for (o, v) in out.iter_mut().zip(&h[k * SPAN * s..]) {
                    *o += v;
                }
            }
        };
        let sum_c = |(k, out): (usize, &mut [u32])| {
            for (_, c) in blocks {
                for (o, v) in out.iter_mut().zip(&c[k * SPAN..]) {
                    *o += v;
                }
            }
        };
        if parallel {
            hist.par_chunks_mut(SPAN * s).enumerate().for_each(sum_h);
            counts.par_chunks_mut(SPAN).enumerate().for_each(sum_c);
        } else {
            hist.chunks_mut(SPAN * s).enumerate().for_each(sum_h);
            counts.chunks_mut(SPAN).enumerate().for_each(sum_c);
        }
    }

    /// Sum `slot`'s histogram over the shards (data-parallel training; nothing otherwise): all of
    /// it, or this shard's features only (feature-parallel search).
    fn reduce(&mut self, slot: usize) {
        if let Some(r) = self.reducer {
            let (hist, counts) = &mut self.pool[slot];
            match &self.features {
                Some(fb) => r.sum_block(hist, counts, self.s, &fb.bounds),
                None => r.sum(hist, counts),
            }
        }
    }

    /// The features whose histograms this builder holds summed and searches: all of them, or
    /// this shard's block.
    fn searched(&self) -> std::ops::Range<usize> {
        match &self.features {
            Some(fb) => fb.mine.clone(),
            None => 0..self.binned.features(),
        }
    }

    /// `parent -= child`, code by code over the searched features: `parent` then holds the
    /// sibling's histogram.
    fn subtract(&mut self, parent: usize, child: usize) {
        let f = self.searched();
        let (lo, hi) = (self.binned.offsets[f.start], self.binned.offsets[f.end]);
        let s = self.s;
        let (a, b) = if parent < child {
            let (x, y) = self.pool.split_at_mut(child);
            (&mut x[parent], &y[0])
        } else {
            let (x, y) = self.pool.split_at_mut(parent);
            (&mut y[0], &x[child])
        };
        a.0[lo * s..hi * s]
            .iter_mut()
            .zip(&b.0[lo * s..hi * s])
            .for_each(|(p, c)| *p -= c);
        a.1[lo..hi]
            .iter_mut()
            .zip(&b.1[lo..hi])
            .for_each(|(p, c)| *p -= c);
    }

    /// Add a node for `entries[start..end]` with its value; return its best split if it should
    /// split. `slot` holds its histogram in all-feature mode (released here if it becomes a leaf).
    fn make_node(
        &mut self,
        entries: &[Entry],
        start: usize,
        end: usize,
        depth: usize,
        slot: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Pending> {
        let id = self.tree.nodes.len();
        self.ranges.push((start as u32, end as u32));
        self.tree.nodes.push(Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
        });
        let rows = &entries[start..end];
        self.node_stats.iter_mut().for_each(|v| *v = 0.0);
        let n = match self.reducer {
            // A leaf made from its parent's histogram ([`Builder::leaf_children`]).
            Some(_) if slot == NO_SLOT => {
                let (st, n) = self.leaf_stats.pop().expect("a leaf child's statistics");
                self.node_stats.copy_from_slice(&st);
                n
            }
            Some(_) => self.summed_totals(slot),
            None => {
                for e in rows {
                    add(&mut self.node_stats, self.cfg.criterion, e);
                }
                end - start
            }
        };
        let st = &self.node_stats;
        match self.cfg.criterion {
            Criterion::Gini | Criterion::Entropy => {
                let total: f64 = st.iter().sum();
                let inv = if total > 0.0 { 1.0 / total } else { 0.0 };
                self.tree.values.extend(st.iter().map(|c| c * inv));
            }
            Criterion::Mse => {
                let v = if st[0] > 0.0 { st[1] / st[0] } else { 0.0 };
                self.tree.values.push(v);
            }
            Criterion::Newton { lambda } => self.tree.values.push(-st[0] / (st[1] + lambda)),
        }
        let split = if !self.searchable(n, depth) {
            None
        } else if self.sampled {
            self.find_split_sampled(slot, n, rng)
        } else if self.full {
            self.find_split_full(slot, n)
        } else {
            self.find_split(rows, rng)
        };
        match split {
            Some(split) => Some(Pending {
                node: id,
                start,
                end,
                depth,
                split,
                slot,
            }),
            None => {
                self.release(slot);
                None
            }
        }
    }

    /// The node of `slot` over all shards into `node_stats`, and its row count: every feature of
    /// its summed histogram holds every row; read the first one this shard holds (the sums are
    /// exact, so any feature gives the bits of feature 0's).
    fn summed_totals(&mut self, slot: usize) -> usize {
        self.node_stats.iter_mut().for_each(|v| *v = 0.0);
        let (hist, counts) = &self.pool[slot];
        let f = self.searched().start;
        let (s, offsets) = (self.s, &self.binned.offsets);
        let (a, z) = (offsets[f], offsets[f + 1]);
        for code in hist[a * s..z * s].chunks_exact(s) {
            for (t, v) in self.node_stats.iter_mut().zip(code) {
                *t += v;
            }
        }
        counts[a..z].iter().map(|&c| c as usize).sum()
    }

    /// Whether a node of `n` rows at `depth` (its statistics in `node_stats`) may split.
    fn searchable(&self, n: usize, depth: usize) -> bool {
        let cfg = self.cfg;
        !((cfg.max_depth > 0 && depth >= cfg.max_depth)
            || n < cfg.min_samples_split
            || n < 2 * cfg.min_samples_leaf
            || self.pure())
    }

    /// Feature-parallel over shards: both children's splits searched on this shard's features,
    /// then one exchange of both bests (one synchronisation per split rather than one per
    /// child); [`Builder::find_split_full`] takes them from `settled`. Nothing otherwise.
    fn search_children(&mut self, slots: [usize; 2], depth: usize) {
        let Some(r) = self.reducer.filter(|_| self.features.is_some()) else {
            return;
        };
        self.settled.clear();
        let mut words = Vec::with_capacity(2 * Split::WORDS);
        let mut searchable = [false; 2];
        for (i, &slot) in slots.iter().enumerate() {
            let n = self.summed_totals(slot);
            searchable[i] = self.searchable(n, depth);
            let local = if searchable[i] {
                self.local_best(slot, n)
            } else {
                None
            };
            words.extend(Split::write(local));
        }
        let all = r.gather_equal(&words);
        for (i, &slot) in slots.iter().enumerate() {
            if searchable[i] {
                let mut best = None;
                for shard in all.chunks_exact(2 * Split::WORDS) {
                    let at = i * Split::WORDS;
                    if let Some(c) = Split::read(&shard[at..at + Split::WORDS]) {
                        keep_best(&mut best, c);
                    }
                }
                self.settled.push((slot, best));
            }
        }
    }

    fn pure(&self) -> bool {
        let st = &self.node_stats;
        match self.cfg.criterion {
            Criterion::Gini | Criterion::Entropy => st.iter().filter(|&&c| c > 0.0).count() <= 1,
            Criterion::Mse => {
                let mean = st[1] / st[0];
                st[2] / st[0] - mean * mean <= 1e-12 * (1.0 + mean * mean)
            }
            Criterion::Newton { .. } => false,
        }
    }

    fn accept(&self, best: Option<Split>) -> Option<Split> {
        match (best, self.cfg.criterion) {
            (Some(b), Criterion::Newton { .. }) if b.gain <= 1e-12 => None,
            (b, _) => b,
        }
    }

    /// The best split over every feature's histogram in `slot`: each feature's best, in parallel
    /// over features when allowed, then the best of those in feature order (ties to the lower
    /// feature, as a serial scan), so the thread count cannot change the choice. Feature-parallel
    /// over shards, this shard's features only, then the best of the shards' bests.
    fn find_split_full(&mut self, slot: usize, n: usize) -> Option<Split> {
        if let Some(i) = self.settled.iter().position(|&(s, _)| s == slot) {
            let best = self.settled.swap_remove(i).1;
            return self.accept(best);
        }
        let mut best = self.local_best(slot, n);
        if let (Some(_), Some(r)) = (&self.features, self.reducer) {
            let all = r.gather_equal(&Split::write(best));
            best = None;
            for c in all.chunks_exact(Split::WORDS).filter_map(Split::read) {
                keep_best(&mut best, c);
            }
        }
        self.accept(best)
    }

    /// The best split over the searched features' histograms in `slot` (`node_stats` holding the
    /// node's statistics), before any exchange between shards and [`Builder::accept`].
    fn local_best(&mut self, slot: usize, n: usize) -> Option<Split> {
        let node_proxy = proxy(self.cfg.criterion, &self.node_stats);
        let (s, cfg, binned) = (self.s, self.cfg, self.binned);
        let (hist, counts) = &self.pool[slot];
        let node_stats = &self.node_stats[..];
        let feature_best = |f: usize, left: &mut [f64], right: &mut [f64]| -> Option<Split> {
            let (a, z) = (binned.offsets[f], binned.offsets[f + 1]);
            let c = &counts[a..z];
            let lo = c.iter().position(|&v| v > 0)?;
            let hi = c.iter().rposition(|&v| v > 0).unwrap_or(lo);
            if lo == hi {
                return None;
            }
            let sc = Scan {
                cfg,
                s,
                node_stats,
                hist: &hist[a * s..z * s],
                counts: c,
                n,
                node_proxy,
            };
            let (bin, gain) = scan(sc, left, right, lo..hi, None)?;
            let next = bin + 1 + c[bin + 1..].iter().position(|&v| v > 0).unwrap_or(0);
            Some(Split {
                feature: f,
                bin,
                gain,
                threshold: binned.best_threshold(f, bin, next),
                left_rows: 0,
                right_rows: 0,
            })
        };
        let features = self.searched();
        let found: Vec<Option<Split>> =
            if cfg.parallel && features.len() >= 4 && rayon::current_num_threads() > 1 {
                features
                    .into_par_iter()
                    .map_init(
                        || (vec![0.0; s], vec![0.0; s]),
                        |(l, r), f| feature_best(f, l, r),
                    )
                    .collect()
            } else {
                let (l, r) = (&mut self.left, &mut self.right);
                features.map(|f| feature_best(f, l, r)).collect()
            };
        let mut best: Option<Split> = None;
        for c in found.into_iter().flatten() {
            keep_best(&mut best, c);
        }
        if let (Some(_), Some(b)) = (&self.features, &mut best) {
            // The rows on either side, from the feature's counts (summed over the shards).
            let (a, z) = (binned.offsets[b.feature], binned.offsets[b.feature + 1]);
            let rows = |c: &[u32]| c.iter().map(|&c| u64::from(c)).sum::<u64>();
            b.left_rows = rows(&counts[a..=a + b.bin]);
            b.right_rows = rows(&counts[a + b.bin + 1..z]);
        }
        best
    }

    /// One random cut of feature `f` in a node whose codes span `lo..=hi` (`lo < hi`): the code the
    /// left side ends with and the threshold.
    fn draw_cut(
        &self,
        f: usize,
        lo: usize,
        hi: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> (usize, f64) {
        let bn = self.binned;
        match self.cfg.cut {
            Cut::Value => {
                // scikit-learn's rule: uniform in [min, max), a draw of max taken as min.
                let (min, max) = (bn.low[f][lo], bn.highs(f)[hi]);
                let mut t = min + (max - min) * rng.random::<f64>();
                if t >= max {
                    t = min;
                }
                // The last code whose values all lie at or below t (at least lo, at most hi - 1).
                let below = bn.highs(f)[lo..=hi].partition_point(|&v| v <= t);
                let b = (lo + below.saturating_sub(1)).min(hi - 1);
                let threshold = if bn.exact && bn.low[f][b] <= t && t < bn.low[f][b + 1] {
                    t
                } else {
                    bn.edge(f, b)
                };
                (b, threshold)
            }
            _ => {
                let b = rng.random_range(lo..hi);
                (b, bn.edge(f, b))
            }
        }
    }

    /// The best split of a node's `rows` one feature at a time (per-feature mode): features in a
    /// random order until `max_features` non-constant ones have been examined.
    fn find_split(&mut self, rows: &[Entry], rng: &mut Xoshiro256PlusPlus) -> Option<Split> {
        let p = self.order.len();
        let want = self.cfg.max_features.min(p);
        let mut best: Option<Split> = None;
        let mut examined = 0;
        for i in 0..p {
            if want < p {
                let j = rng.random_range(i..p);
                self.order.swap(i, j);
            }
            let f = self.order[i];
            let (lo, hi, sparse) = self.feature_histogram(rows, f);
            if lo < hi {
                examined += 1;
                if let Some(c) = self.feature_split(f, rows.len(), lo, hi, sparse, rng) {
                    if best.is_none_or(|b| c.gain > b.gain) {
                        best = Some(c);
                    }
                }
            }
            self.clear_histogram(lo, hi, sparse);
            if examined >= want {
                break;
            }
        }
        self.accept(best)
    }

    /// [`Builder::find_split`] reading each examined feature's histogram from the node's
    /// all-feature histogram in `slot` (summed over the shards) rather than from its rows: the same
    /// draws from `rng`, the same features examined, the same scans.
    fn find_split_sampled(
        &mut self,
        slot: usize,
        n: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Split> {
        let p = self.order.len();
        let want = self.cfg.max_features.min(p);
        let mut best: Option<Split> = None;
        let mut examined = 0;
        for i in 0..p {
            if want < p {
                let j = rng.random_range(i..p);
                self.order.swap(i, j);
            }
            let f = self.order[i];
            let (lo, hi, sparse) = self.load_feature(slot, f);
            if lo < hi {
                examined += 1;
                if let Some(c) = self.feature_split(f, n, lo, hi, sparse, rng) {
                    if best.is_none_or(|b| c.gain > b.gain) {
                        best = Some(c);
                    }
                }
            }
            self.clear_histogram(lo, hi, sparse);
            if examined >= want {
                break;
            }
        }
        self.accept(best)
    }

    /// Feature `f`'s part of the all-feature histogram in `slot`, copied into `hist` / `counts`
    /// as [`Builder::feature_histogram`] leaves them (occupied codes only, `occupied` sorted).
    fn load_feature(&mut self, slot: usize, f: usize) -> (usize, usize, bool) {
        let s = self.s;
        let (a, z) = (self.binned.offsets[f], self.binned.offsets[f + 1]);
        let (hist, counts) = &self.pool[slot];
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        self.occupied.clear();
        for (b, &c) in counts[a..z].iter().enumerate() {
            if c > 0 {
                lo = lo.min(b);
                hi = b;
                self.occupied.push(b as u32);
                self.counts[b] = c;
                self.hist[b * s..(b + 1) * s].copy_from_slice(&hist[(a + b) * s..(a + b + 1) * s]);
            }
        }
        let sparse = self.occupied.len() * 8 < (hi + 1).saturating_sub(lo);
        (lo, hi, sparse)
    }

    /// Histogram of feature `f` over the node's `rows` into `hist` / `counts`: the occupied code
    /// range `lo..=hi` and whether it is sparse, in which case `occupied` lists the occupied codes
    /// sorted (so deep nodes scan a handful of codes, not the range).
    fn feature_histogram(&mut self, rows: &[Entry], f: usize) -> (usize, usize, bool) {
        let (s, criterion) = (self.s, self.cfg.criterion);
        let column = self.binned.column(f);
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        self.occupied.clear();
        for e in rows {
            let b = column[e.row as usize].idx();
            lo = lo.min(b);
            hi = hi.max(b);
            if self.counts[b] == 0 {
                self.occupied.push(b as u32);
            }
            self.counts[b] += 1;
            add(&mut self.hist[b * s..(b + 1) * s], criterion, e);
        }
        let sparse = self.occupied.len() * 8 < hi - lo + 1;
        if sparse {
            self.occupied.sort_unstable();
        }
        (lo, hi, sparse)
    }

    /// The best (or the drawn) cut of feature `f` from its histogram over the node's `n` rows,
    /// occupying codes `lo..=hi` (`lo < hi`).
    fn feature_split(
        &mut self,
        f: usize,
        n: usize,
        lo: usize,
        hi: usize,
        sparse: bool,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Split> {
        let cut = match self.cfg.cut {
            Cut::Best => None,
            _ => Some(self.draw_cut(f, lo, hi, rng)),
        };
        let sc = Scan {
            cfg: self.cfg,
            s: self.s,
            node_stats: &self.node_stats,
            hist: &self.hist,
            counts: &self.counts,
            n,
            node_proxy: proxy(self.cfg.criterion, &self.node_stats),
        };
        let (left, right) = (&mut self.left, &mut self.right);
        let at = cut.map(|c| c.0);
        let (bin, gain) = if sparse {
            let k = self.occupied.len();
            let codes = self.occupied[..k - 1].iter().map(|&b| b as usize);
            scan(sc, left, right, codes, at)
        } else {
            scan(sc, left, right, lo..hi, at)
        }?;
        let threshold = match cut {
            Some((_, t)) => t,
            None => {
                // The next occupied code after `bin`: the split's threshold lies between them.
                let next = if sparse {
                    let k = self.occupied.partition_point(|&o| o as usize <= bin);
                    self.occupied[k] as usize
                } else {
                    let after = &self.counts[bin + 1..=hi];
                    bin + 1 + after.iter().position(|&v| v > 0).unwrap_or(0)
                };
                self.binned.best_threshold(f, bin, next)
            }
        };
        Some(Split {
            feature: f,
            bin,
            gain,
            threshold,
            left_rows: 0,
            right_rows: 0,
        })
    }

    /// Zero what [`Builder::feature_histogram`] filled (only the occupied codes or range).
    fn clear_histogram(&mut self, lo: usize, hi: usize, sparse: bool) {
        let s = self.s;
        if sparse {
            for &b in &self.occupied {
                let b = b as usize;
                self.hist[b * s..(b + 1) * s].fill(0.0);
                self.counts[b] = 0;
            }
        } else if lo <= hi {
            self.hist[lo * s..(hi + 1) * s].fill(0.0);
            self.counts[lo..=hi].fill(0);
        }
    }
}

/// What a scan of one feature's histogram reads.
struct Scan<'a> {
    cfg: &'a TreeConfig,
    s: usize,
    node_stats: &'a [f64],
    /// The feature's histogram: code `b`'s statistics at `b * s`.
    hist: &'a [f64],
    counts: &'a [u32],
    n: usize,
    node_proxy: f64,
}

/// Gini's proxy on fixed-size class weights.
#[inline(always)]
fn gini_fixed<const K: usize>(st: &[f64; K]) -> f64 {
    let mut total = 0.0;
    let mut sq = 0.0;
    for &c in st {
        total += c;
        sq += c * c;
    }
    if total <= 0.0 {
        0.0
    } else {
        sq / total
    }
}

/// Entropy's proxy on fixed-size class weights.
#[inline(always)]
fn entropy_fixed<const K: usize>(st: &[f64; K]) -> f64 {
    let mut total = 0.0;
    let mut sum = 0.0;
    for &c in st {
        total += c;
        if c > 0.0 {
            sum += c * c.ln();
        }
    }
    if total <= 0.0 {
        0.0
    } else {
        sum - total * total.ln()
    }
}

/// [`scan`] for `K` classes.
fn scan_classes<const K: usize>(
    sc: &Scan,
    bins: impl Iterator<Item = usize>,
    cut: Option<usize>,
) -> Option<(usize, f64)> {
    if sc.cfg.criterion == Criterion::Entropy {
        scan_fixed::<K>(sc, bins, cut, entropy_fixed::<K>)
    } else {
        scan_fixed::<K>(sc, bins, cut, gini_fixed::<K>)
    }
}

/// The best boundary among `bins` (ascending occupied or candidate codes, the last occupied one
/// left out), or only the boundary after `cut`, of one feature's histogram: the code the left side
/// ends with and the gain.
fn scan(
    sc: Scan,
    left: &mut [f64],
    right: &mut [f64],
    bins: impl Iterator<Item = usize>,
    cut: Option<usize>,
) -> Option<(usize, f64)> {
    // The common cases get a loop over fixed-size arrays with the gain written out; the arithmetic
    // is the same as `proxy`'s, so the splits are too.
    match (sc.cfg.criterion, sc.s) {
        (Criterion::Newton { lambda }, _) => {
            return scan_fixed::<2>(&sc, bins, cut, |st: &[f64; 2]| {
                st[0] * st[0] / (st[1] + lambda)
            })
        }
        (Criterion::Mse, _) => {
            return scan_fixed::<3>(&sc, bins, cut, |st: &[f64; 3]| {
                if st[0] <= 0.0 {
                    0.0
                } else {
                    st[1] * st[1] / st[0]
                }
            })
        }
        (Criterion::Gini | Criterion::Entropy, k) if (1..=MAX_FAST_CLASSES).contains(&k) => {
            return match k {
                1 => scan_classes::<1>(&sc, bins, cut),
                2 => scan_classes::<2>(&sc, bins, cut),
                3 => scan_classes::<3>(&sc, bins, cut),
                4 => scan_classes::<4>(&sc, bins, cut),
                5 => scan_classes::<5>(&sc, bins, cut),
                6 => scan_classes::<6>(&sc, bins, cut),
                7 => scan_classes::<7>(&sc, bins, cut),
                8 => scan_classes::<8>(&sc, bins, cut),
                9 => scan_classes::<9>(&sc, bins, cut),
                _ => scan_classes::<10>(&sc, bins, cut),
            }
        }
        _ => {}
    }
    let s = sc.s;
    let msl = sc.cfg.min_samples_leaf.max(1);
    left.fill(0.0);
    let mut n_left = 0usize;
    let mut best: Option<(usize, f64)> = None;
    let mut evaluate = |b: usize, left: &[f64], n_left: usize, best: &mut Option<(usize, f64)>| {
        if n_left < msl {
            return true;
        }
        if sc.n - n_left < msl {
            return false;
        }
        for k in 0..s {
            right[k] = sc.node_stats[k] - left[k];
        }
        let gain = proxy(sc.cfg.criterion, left) + proxy(sc.cfg.criterion, right) - sc.node_proxy;
        if best.is_none_or(|x| gain > x.1) {
            *best = Some((b, gain));
        }
        true
    };
    for b in bins {
        if cut.is_some_and(|c| b > c) {
            break;
        }
        let count = sc.counts[b];
        if count == 0 {
            continue;
        }
        let h = &sc.hist[b * s..(b + 1) * s];
        for k in 0..s {
            left[k] += h[k];
        }
        n_left += count as usize;
        if cut.is_none() && !evaluate(b, left, n_left, &mut best) {
            break;
        }
    }
    if let Some(c) = cut {
        evaluate(c, left, n_left, &mut best);
    }
    best
}

/// [`scan`] for `S` statistics per code and the proxy `proxy_of`. Empty codes are skipped: a
/// boundary after one has the gain of the boundary before it.
#[inline(always)]
fn scan_fixed<const S: usize>(
    sc: &Scan,
    bins: impl Iterator<Item = usize>,
    cut: Option<usize>,
    proxy_of: impl Fn(&[f64; S]) -> f64,
) -> Option<(usize, f64)> {
    let msl = sc.cfg.min_samples_leaf.max(1);
    let mut node = [0.0; S];
    node.copy_from_slice(&sc.node_stats[..S]);
    let mut left = [0.0; S];
    let mut n_left = 0usize;
    let mut best: Option<(usize, f64)> = None;
    let mut best_gain = f64::NEG_INFINITY;
    let mut evaluate = |b: usize, left: &[f64; S], n_left: usize| -> bool {
        if n_left < msl {
            return true;
        }
        if sc.n - n_left < msl {
            return false;
        }
        let mut right = [0.0; S];
        for k in 0..S {
            right[k] = node[k] - left[k];
        }
        let gain = proxy_of(left) + proxy_of(&right) - sc.node_proxy;
        if best.is_none() || gain > best_gain {
            best_gain = gain;
            best = Some((b, gain));
        }
        true
    };
    for b in bins {
        if cut.is_some_and(|c| b > c) {
            break;
        }
        let count = sc.counts[b];
        if count == 0 {
            continue;
        }
        let at = b * S;
        let h = &sc.hist[at..at + S];
        for k in 0..S {
            left[k] += h[k];
        }
        n_left += count as usize;
        if cut.is_none() && !evaluate(b, &left, n_left) {
            break;
        }
    }
    if let Some(c) = cut {
        evaluate(c, &left, n_left);
    }
    best
}

#[inline(always)]
fn add(stats: &mut [f64], criterion: Criterion, e: &Entry) {
    match criterion {
        Criterion::Gini | Criterion::Entropy => stats[e.class as usize] += e.w,
        Criterion::Mse => {
            stats[0] += e.w;
            stats[1] += e.w * e.y;
            stats[2] += e.w * e.y * e.y;
        }
        // The booster stores weighted gradients and hessians.
        Criterion::Newton { .. } => {
            stats[0] += e.y;
            stats[1] += e.h;
        }
    }
}

/// `-(weight × impurity)` up to terms that cancel between a node and its children; a split's gain is
/// `proxy(left) + proxy(right) - proxy(node)`.
#[inline]
fn proxy(criterion: Criterion, st: &[f64]) -> f64 {
    match criterion {
        Criterion::Gini => {
            let total: f64 = st.iter().sum();
            if total <= 0.0 {
                return 0.0;
            }
            st.iter().map(|c| c * c).sum::<f64>() / total
        }
        Criterion::Entropy => {
            let total: f64 = st.iter().sum();
            if total <= 0.0 {
                return 0.0;
            }
            st.iter()
                .filter(|&&c| c > 0.0)
                .map(|&c| c * c.ln())
                .sum::<f64>()
                - total * total.ln()
        }
        Criterion::Mse => {
            if st[0] <= 0.0 {
                0.0
            } else {
                st[1] * st[1] / st[0]
            }
        }
        Criterion::Newton { lambda } => st[0] * st[0] / (st[1] + lambda),
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::data::{Matrix, Target};

    fn dataset(x: Vec<Vec<f64>>, labels: Vec<u32>, classes: usize) -> Dataset {
        let p = x[0].len();
        let flat: Vec<f64> = x.iter().flatten().copied().collect();
        Dataset::new(
            "t",
            Matrix::new(x.len(), p, flat).unwrap(),
            Target::Classes {
                labels,
                names: (0..classes).map(|c| c.to_string()).collect(),
            },
            (0..p).map(|f| format!("f{f}")).collect(),
        )
        .unwrap()
    }

    /// A shard codes only its own rows, with the bin edges one process computes from every
    /// training row, though each shard sorts only its share of the features (the rest gathered).
    #[test]
    fn shards_code_their_own_rows_with_the_one_process_edges() {
        use crate::dataparallel::tests::{ThreadReducer, ThreadShard};
        let data = crate::data::make_classification(&crate::data::Synthetic {
            samples: 3000,
            features: 7,
            informative: 4,
            seed: 11,
            ..crate::data::Synthetic::default()
        })
        .unwrap();
        let train: Vec<usize> = (0..data.rows()).filter(|r| r % 5 != 2).collect();
        let Binned::Hist(whole) = Binned::new(&data, &train, Splitter::Hist, 64).unwrap() else {
            unreachable!()
        };
        let bits = |v: &[Vec<f64>]| -> Vec<Vec<u64>> {
            v.iter()
                .map(|f| f.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        for size in [1, 2, 3, 4] {
            let shared = ThreadReducer::new(size);
            let shards: Vec<(Vec<usize>, Codes<u8>)> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..size)
                    .map(|rank| {
                        let (data, train, shared) = (&data, &train, &shared);
                        s.spawn(move || {
                            let shard = Shard { rank, size };
                            let own = train[shard.range(train.len())].to_vec();
                            let reducer = ThreadShard { shared, rank };
                            let binned = Binned::for_rows(
                                data,
                                train,
                                &own,
                                Splitter::Hist,
                                64,
                                shard,
                                &reducer,
                            );
                            let Ok(Binned::Hist(codes)) = binned else {
                                panic!("hist codes expected")
                            };
                            (own, codes)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (rank, (own, codes)) in shards.iter().enumerate() {
                let at = format!("shard {rank} of {size}");
                assert_eq!(codes.n, own.len(), "{at} codes only its rows");
                assert_eq!(bits(&codes.thresholds), bits(&whole.thresholds), "{at}");
                assert_eq!(bits(&codes.low), bits(&whole.low), "{at}");
                assert_eq!(bits(&codes.high), bits(&whole.high), "{at}");
                assert_eq!(codes.offsets, whole.offsets, "{at}");
                let p = data.features();
                for (i, &r) in own.iter().enumerate() {
                    for f in 0..p {
                        assert_eq!(codes.column(f)[i], whole.column(f)[r], "{at}");
                        assert_eq!(codes.row_major[i * p + f], whole.row_major[r * p + f]);
                    }
                }
            }
        }
    }

    fn config(n_classes: usize, cut: Cut, max_features: usize) -> TreeConfig {
        TreeConfig {
            criterion: Criterion::Gini,
            n_classes,
            max_depth: 0,
            min_samples_split: 2,
            min_samples_leaf: 1,
            max_features,
            max_leaf_nodes: 0,
            cut,
            subtraction: false,
            parallel: false,
        }
    }

    fn entries_of(data: &Dataset) -> Vec<Entry> {
        let labels = data.y.labels().unwrap();
        (0..data.rows())
            .map(|r| Entry {
                row: r as u32,
                class: labels[r],
                w: 1.0,
                y: 0.0,
                h: 0.0,
            })
            .collect()
    }

    fn fit(data: &Dataset, splitter: Splitter, cfg: &TreeConfig, seed: u64) -> (Tree, Vec<Entry>) {
        let rows: Vec<usize> = (0..data.rows()).collect();
        let binned = Binned::new(data, &rows, splitter, MAX_BINS).unwrap();
        let mut e = entries_of(data);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let (tree, _) = grow_with_ranges(&binned, &mut e, cfg, &mut rng);
        (tree, e)
    }

    /// Root: feature 0 separates class 2. Its left child holds feature-1 values {1, 5} while the
    /// right child holds 3: scikit-learn cuts the left child at 3 (the midpoint of the node's own
    /// values), the global edge between distinct values 1 and 3 would be 2.
    #[test]
    fn exact_thresholds_are_midpoints_of_the_node_values() {
        let x = vec![
            vec![0.0, 1.0],
            vec![0.0, 1.0],
            vec![0.0, 5.0],
            vec![0.0, 5.0],
            vec![1.0, 3.0],
            vec![1.0, 3.0],
            vec![1.0, 3.0],
            vec![1.0, 3.0],
        ];
        let data = dataset(x, vec![0, 0, 1, 1, 2, 2, 2, 2], 3);
        let cfg = config(3, Cut::Best, 2);
        let (exact, _) = fit(&data, Splitter::Exact, &cfg, 0);
        assert_eq!((exact.nodes[0].feature, exact.nodes[0].threshold), (0, 0.5));
        assert_eq!((exact.nodes[1].feature, exact.nodes[1].threshold), (1, 3.0));
        let (hist, _) = fit(&data, Splitter::Hist, &cfg, 0);
        assert_eq!((hist.nodes[1].feature, hist.nodes[1].threshold), (1, 2.0));
    }

    /// 300 alternating intervals on one feature, 20 rows each: exact codes see every boundary and
    /// the tree separates the training rows; 256 bins merge intervals and cannot.
    #[test]
    fn exact_splits_separate_fine_intervals_that_bins_merge() {
        let n = 6000;
        let x: Vec<Vec<f64>> = (0..n).map(|i| vec![(i as f64 + 0.5) / n as f64]).collect();
        let labels: Vec<u32> = (0..n).map(|i| ((i * 300 / n) % 2) as u32).collect();
        let data = dataset(x, labels.clone(), 2);
        let cfg = config(2, Cut::Best, 1);
        let train_accuracy = |splitter| {
            let (tree, _) = fit(&data, splitter, &cfg, 0);
            (0..n)
                .filter(|&r| {
                    let v = tree.value(data.x.row(r));
                    (v[1] > v[0]) as u32 == labels[r]
                })
                .count() as f64
                / n as f64
        };
        assert_eq!(train_accuracy(Splitter::Exact), 1.0);
        assert!(train_accuracy(Splitter::Hist) < 0.9);
    }

    /// Every random and best cut stores a threshold that sends each training row to the leaf
    /// whose range holds it (the boosters and out-of-bag scores rely on it).
    #[test]
    fn thresholds_agree_with_the_partition_for_every_cut_and_splitter() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
        let n = 400;
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| {
                vec![
                    rng.random::<f64>(),
                    (rng.random::<f64>() * 7.0).floor(),
                    rng.random::<f64>().powi(9) * 1e6,
                ]
            })
            .collect();
        let labels: Vec<u32> = x
            .iter()
            .map(|r| ((r[0] * 3.0) as u32 + (r[1] as u32 % 2)) % 3)
            .collect();
        let data = dataset(x, labels, 3);
        for splitter in [Splitter::Exact, Splitter::Hist] {
            for cut in [Cut::Best, Cut::Value, Cut::Rank] {
                let rows: Vec<usize> = (0..n).collect();
                let binned = Binned::new(&data, &rows, splitter, 16).unwrap();
                let mut e = entries_of(&data);
                let mut g = Xoshiro256PlusPlus::seed_from_u64(3);
                let (tree, ranges) = grow_with_ranges(&binned, &mut e, &config(3, cut, 2), &mut g);
                assert!(tree.node_count() > 9, "{splitter:?} {cut:?}");
                for (node, &(a, z)) in ranges.iter().enumerate() {
                    if tree.is_leaf(node) {
                        for entry in &e[a as usize..z as usize] {
                            let leaf = tree.leaf(data.x.row(entry.row as usize));
                            assert_eq!(leaf, node, "{splitter:?} {cut:?} row {}", entry.row);
                        }
                    }
                }
            }
        }
    }

    /// A value cut is uniform in value: on a heavy-tailed feature almost every root cut falls in
    /// the top decile of the rows' ranks, a rank cut spreads evenly.
    #[test]
    fn value_cuts_are_uniform_in_value_and_rank_cuts_in_rank() {
        let n = 200;
        let x: Vec<Vec<f64>> = (0..n).map(|i| vec![(i as f64 / 20.0).exp()]).collect();
        let labels: Vec<u32> = (0..n).map(|i| (i % 2) as u32).collect();
        let data = dataset(x, labels, 2);
        let mut cfg = config(2, Cut::Value, 1);
        cfg.max_depth = 1;
        let mut share_high = |cut| {
            cfg.cut = cut;
            let high = (0..200u64)
                .filter(|&seed| {
                    let (tree, _) = fit(&data, Splitter::Exact, &cfg, seed);
                    tree.nodes[0].threshold > (180.0f64 / 20.0).exp()
                })
                .count();
            high as f64 / 200.0
        };
        // Values e^(i/20), i < 200: above e^9 lie the top 19 of 199 boundaries (P ≈ 0.10 for a
        // rank cut) but 61 % of the value range (P ≈ 0.61 for a value cut).
        assert!(share_high(Cut::Value) > 0.5);
        assert!(share_high(Cut::Rank) < 0.2);
    }

    /// The fixed-size class scans pick the split the general loop picks, for 3 to 12 classes.
    #[test]
    fn class_fast_path_matches_the_general_scan() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for k in [3usize, 5, 10, 12] {
            for criterion in [Criterion::Gini, Criterion::Entropy] {
                let bins = 40;
                let mut hist = vec![0.0; bins * k];
                let mut counts = vec![0u32; bins];
                for b in 0..bins {
                    if rng.random::<f64>() < 0.2 {
                        continue;
                    }
                    for c in 0..k {
                        let v = (rng.random::<f64>() * 4.0).floor();
                        hist[b * k + c] = v;
                        counts[b] += v as u32;
                    }
                }
                let mut node = vec![0.0; k];
                for b in 0..bins {
                    for c in 0..k {
                        node[c] += hist[b * k + c];
                    }
                }
                let n = counts.iter().sum::<u32>() as usize;
                let mut cfg = config(k, Cut::Best, 1);
                cfg.criterion = criterion;
                let sc = || Scan {
                    cfg: &cfg,
                    s: k,
                    node_stats: &node,
                    hist: &hist,
                    counts: &counts,
                    n,
                    node_proxy: proxy(criterion, &node),
                };
                let (mut l, mut r) = (vec![0.0; k], vec![0.0; k]);
                let fast = scan(sc(), &mut l, &mut r, 0..bins - 1, None);
                // The general loop, by hand.
                let mut best: Option<(usize, f64)> = None;
                let mut left = vec![0.0; k];
                for b in 0..bins - 1 {
                    if counts[b] == 0 {
                        continue;
                    }
                    for c in 0..k {
                        left[c] += hist[b * k + c];
                    }
                    let right: Vec<f64> = (0..k).map(|c| node[c] - left[c]).collect();
                    let gain = proxy(criterion, &left) + proxy(criterion, &right)
                        - proxy(criterion, &node);
                    if best.is_none_or(|x| gain > x.1) {
                        best = Some((b, gain));
                    }
                }
                assert_eq!(fast, best, "{k} classes, {criterion:?}");
            }
        }
    }

    /// Block histograms are summed in block order, so a node above [`BLOCK`] rows gets the same
    /// sums in a pool of 1 and of 2 threads.
    #[test]
    fn block_histograms_are_the_same_at_1_and_2_threads() {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(2);
        let n = 3 * BLOCK + 17;
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..4).map(|_| rng.random::<f64>()).collect())
            .collect();
        let data = dataset(x, vec![0; n], 1);
        let rows: Vec<usize> = (0..n).collect();
        let Binned::Hist(codes) = Binned::new(&data, &rows, Splitter::Hist, 64).unwrap() else {
            unreachable!()
        };
        let e: Vec<Entry> = (0..n)
            .map(|r| Entry {
                row: r as u32,
                class: 0,
                w: 1.0,
                y: rng.random::<f64>() - 0.5,
                h: rng.random::<f64>(),
            })
            .collect();
        let mut cfg = config(0, Cut::Best, 4);
        cfg.criterion = Criterion::Newton { lambda: 0.0 };
        cfg.subtraction = true;
        cfg.parallel = true;
        let hist_at = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut b = Builder {
                    binned: &codes,
                    cfg: &cfg,
                    s: 2,
                    full: true,
                    reducer: None,
                    sampled: false,
                    leaf_stats: Vec::new(),
                    features: None,
                    settled: Vec::new(),
                    hist: Vec::new(),
                    counts: Vec::new(),
                    occupied: Vec::new(),
                    pool: Vec::new(),
                    free: Vec::new(),
                    blocks: Vec::new(),
                    order: Vec::new(),
                    left: vec![0.0; 2],
                    right: vec![0.0; 2],
                    node_stats: vec![0.0; 2],
                    tree: Tree {
                        nodes: Vec::new(),
                        values: Vec::new(),
                        width: 1,
                        gains: Vec::new(),
                    },
                    ranges: Vec::new(),
                };
                let slot = b.alloc();
                b.fill_slot(slot, &e);
                let (h, c) = &b.pool[slot];
                (h.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), c.clone())
            })
        };
        let one = hist_at(1);
        assert_eq!(one.1.iter().sum::<u32>() as usize, 4 * n);
        assert_eq!(one, hist_at(2));
    }
}

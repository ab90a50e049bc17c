//! CART trees on pre-binned features: the engine under the decision tree, the forests, AdaBoost's
//! stumps and both gradient boosters.
//!
//! Written here rather than taken from a crate because growing trees fast is the subject of the
//! course: linfa's and smartcore's trees sort or rescan every row at every node, these do not.
//!
//! - [`Binned`] maps every feature once to at most 256 quantile bins (every distinct value gets its own
//!   bin when there are few enough, which makes the split search exact); all trees of an ensemble share
//!   it. A split "bin ≤ b" is stored as the raw threshold "x ≤ t", so prediction needs no binning.
//! - A node's split search builds, per candidate feature, a histogram of the node's class weights (or
//!   target sums, or gradients) over the bins, then scans the bin boundaries: O(rows + bins) per
//!   feature instead of a sort. Only the node's occupied bin range is cleared and scanned.
//! - The rows of a node are a contiguous range of one entry array, partitioned in place; the
//!   histogram, feature order and node arrays are reused, so growing allocates nothing per node.
//! - Growth is depth-first (CART) or best-first by gain with a leaf budget (histogram gradient
//!   boosting), from one frontier of nodes whose best split is known.
//!
//! Feature sampling follows scikit-learn: features are drawn without replacement until `max_features`
//! non-constant ones have been examined. Every random draw comes from the tree's own seeded generator.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::data::Dataset;

/// The most bins per feature (bin indices are `u8`).
pub const MAX_BINS: usize = 256;

/// Every feature of a dataset mapped to quantile bins computed from a set of training rows.
#[derive(Debug)]
pub(crate) struct Binned {
    /// Rows of the whole dataset (bins are stored for every row, indexed by dataset row).
    n: usize,
    /// Column-major bin indices: `bins[f * n + row]`.
    bins: Vec<u8>,
    /// Per feature, the upper edges of all bins but the last: bin `b` holds `(t[b-1], t[b]]`.
    thresholds: Vec<Vec<f64>>,
}

impl Binned {
    /// Bin `data`'s features with edges from `rows` (at most `max_bins` bins per feature).
    pub fn new(data: &Dataset, rows: &[usize], max_bins: usize) -> Result<Binned, String> {
        let (n, p) = (data.rows(), data.features());
        let max_bins = max_bins.clamp(2, MAX_BINS);
        let mut thresholds = Vec::with_capacity(p);
        let mut bins = vec![0u8; n * p];
        let mut values = Vec::with_capacity(rows.len());
        for f in 0..p {
            values.clear();
            for &r in rows {
                let v = data.x.get(r, f);
                if v.is_nan() {
                    return Err(format!(
                        "{}: feature `{}` is missing (NaN) in row {r}; fill or drop missing values first",
                        data.name, data.feature_names[f]
                    ));
                }
                values.push(v);
            }
            values.sort_unstable_by(f64::total_cmp);
            let t = edges(&values, max_bins);
            let column = &mut bins[f * n..(f + 1) * n];
            for (r, b) in column.iter_mut().enumerate() {
                let v = data.x.get(r, f);
                *b = t.partition_point(|&e| e < v) as u8;
            }
            thresholds.push(t);
        }
        Ok(Binned {
            n,
            bins,
            thresholds,
        })
    }

    pub fn features(&self) -> usize {
        self.thresholds.len()
    }

    fn column(&self, f: usize) -> &[u8] {
        &self.bins[f * self.n..(f + 1) * self.n]
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
#[allow(dead_code)] // Newton: the gradient boosters (next)
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
    /// Extremely randomised trees: one random cut per examined feature instead of the best.
    pub random_split: bool,
}

/// One training row as a tree sees it: its dataset row, class, weight, target (or gradient) and
/// hessian.
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
}

#[allow(dead_code)] // set_value, scale: the boosters (next)
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

    /// Replace the (single) value of node `i` (boosting's leaf updates).
    pub fn set_value(&mut self, i: usize, v: f64) {
        self.values[i * self.width] = v;
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
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
    let width = match cfg.criterion {
        Criterion::Gini | Criterion::Entropy => cfg.n_classes,
        _ => 1,
    };
    let stat_width = match cfg.criterion {
        Criterion::Gini | Criterion::Entropy => cfg.n_classes,
        Criterion::Mse => 3,
        Criterion::Newton { .. } => 2,
    };
    let mut b = Builder {
        binned,
        cfg,
        s: stat_width,
        hist: vec![0.0; MAX_BINS * stat_width],
        counts: vec![0; MAX_BINS],
        order: (0..binned.features()).collect(),
        left: vec![0.0; stat_width],
        right: vec![0.0; stat_width],
        node_stats: vec![0.0; stat_width],
        tree: Tree {
            nodes: Vec::new(),
            values: Vec::new(),
            width,
        },
    };
    let mut frontier: Vec<Pending> = Vec::new();
    if let Some(p) = b.make_node(entries, 0, entries.len(), 0, rng) {
        frontier.push(p);
    }
    let mut leaves = 1;
    let best_first = cfg.max_leaf_nodes > 0;
    loop {
        if best_first && leaves >= cfg.max_leaf_nodes {
            break;
        }
        let next = if best_first {
            // The frontier stays small (at most the leaf budget): a scan beats a heap.
            let best = (0..frontier.len()).fold(None, |acc: Option<usize>, i| match acc {
                Some(a) if frontier[a].split.gain >= frontier[i].split.gain => Some(a),
                _ => Some(i),
            });
            best.map(|i| frontier.swap_remove(i))
        } else {
            frontier.pop()
        };
        let Some(p) = next else { break };
        let s = p.split;
        let column = binned.column(s.feature);
        let slice = &mut entries[p.start..p.end];
        // In-place partition: bins ≤ s.bin to the front.
        let mut i = 0;
        let mut j = slice.len();
        while i < j {
            if column[slice[i].row as usize] <= s.bin {
                i += 1;
            } else {
                j -= 1;
                slice.swap(i, j);
            }
        }
        let mid = p.start + i;
        let left_id = b.tree.nodes.len() as u32;
        let lp = b.make_node(entries, p.start, mid, p.depth + 1, rng);
        let right_id = b.tree.nodes.len() as u32;
        let rp = b.make_node(entries, mid, p.end, p.depth + 1, rng);
        b.tree.nodes[p.node] = Node {
            feature: s.feature as u32,
            threshold: binned.thresholds[s.feature][s.bin as usize],
            left: left_id,
            right: right_id,
        };
        leaves += 1;
        // Depth-first takes the left child next, as a recursive CART would.
        frontier.extend(rp);
        frontier.extend(lp);
    }
    b.tree
}

#[derive(Clone, Copy, Debug)]
struct Split {
    feature: usize,
    bin: u8,
    gain: f64,
}

struct Pending {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    split: Split,
}

struct Builder<'a> {
    binned: &'a Binned,
    cfg: &'a TreeConfig,
    /// Statistics per bin: class weights, (w, wy, wy²) or (g, h).
    s: usize,
    hist: Vec<f64>,
    counts: Vec<u32>,
    order: Vec<usize>,
    left: Vec<f64>,
    right: Vec<f64>,
    node_stats: Vec<f64>,
    tree: Tree,
}

impl Builder<'_> {
    /// Add a node for `entries[start..end]` with its value; return its best split if it should split.
    fn make_node(
        &mut self,
        entries: &[Entry],
        start: usize,
        end: usize,
        depth: usize,
        rng: &mut Xoshiro256PlusPlus,
    ) -> Option<Pending> {
        let id = self.tree.nodes.len();
        self.tree.nodes.push(Node {
            feature: LEAF,
            threshold: 0.0,
            left: 0,
            right: 0,
        });
        let rows = &entries[start..end];
        self.node_stats.iter_mut().for_each(|v| *v = 0.0);
        for e in rows {
            add(&mut self.node_stats, self.cfg.criterion, e);
        }
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
        let n = end - start;
        let cfg = self.cfg;
        if (cfg.max_depth > 0 && depth >= cfg.max_depth)
            || n < cfg.min_samples_split
            || n < 2 * cfg.min_samples_leaf
            || self.pure()
        {
            return None;
        }
        let split = self.find_split(rows, rng)?;
        Some(Pending {
            node: id,
            start,
            end,
            depth,
            split,
        })
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

    fn find_split(&mut self, rows: &[Entry], rng: &mut Xoshiro256PlusPlus) -> Option<Split> {
        let p = self.order.len();
        let want = self.cfg.max_features.min(p);
        let node_proxy = proxy(self.cfg.criterion, &self.node_stats);
        let mut best: Option<Split> = None;
        let mut examined = 0;
        for i in 0..p {
            if want < p {
                let j = rng.random_range(i..p);
                self.order.swap(i, j);
            }
            let f = self.order[i];
            let column = self.binned.column(f);
            let s = self.s;
            // Histogram of this feature over the node, and the occupied bin range.
            let (mut lo, mut hi) = (u8::MAX, 0u8);
            for e in rows {
                let b = column[e.row as usize];
                lo = lo.min(b);
                hi = hi.max(b);
                self.counts[b as usize] += 1;
                let h = &mut self.hist[b as usize * s..(b as usize + 1) * s];
                add(h, self.cfg.criterion, e);
            }
            if lo < hi {
                examined += 1;
                let found = if self.cfg.random_split {
                    let cut = rng.random_range(lo..hi);
                    self.scan(f, lo, hi, Some(cut), rows.len(), node_proxy)
                } else {
                    self.scan(f, lo, hi, None, rows.len(), node_proxy)
                };
                if let Some(c) = found {
                    if best.is_none_or(|b| c.gain > b.gain) {
                        best = Some(c);
                    }
                }
            }
            self.hist[lo as usize * s..(hi as usize + 1) * s].fill(0.0);
            self.counts[lo as usize..=hi as usize].fill(0);
            if examined >= want {
                break;
            }
        }
        match (best, self.cfg.criterion) {
            (Some(b), Criterion::Newton { .. }) if b.gain <= 1e-12 => None,
            (b, _) => b,
        }
    }

    /// The best boundary in `lo..hi` (or only `cut`) of the histogram just built.
    fn scan(
        &mut self,
        feature: usize,
        lo: u8,
        hi: u8,
        cut: Option<u8>,
        n: usize,
        node_proxy: f64,
    ) -> Option<Split> {
        let Builder {
            cfg,
            s,
            hist,
            counts,
            left,
            right,
            node_stats,
            ..
        } = self;
        let s = *s;
        let msl = cfg.min_samples_leaf.max(1);
        left.fill(0.0);
        let mut n_left = 0usize;
        let mut best: Option<Split> = None;
        for b in lo..hi {
            let h = &hist[b as usize * s..(b as usize + 1) * s];
            for k in 0..s {
                left[k] += h[k];
            }
            n_left += counts[b as usize] as usize;
            if cut.is_some_and(|c| b != c) || n_left < msl {
                continue;
            }
            if n - n_left < msl {
                break;
            }
            for k in 0..s {
                right[k] = node_stats[k] - left[k];
            }
            let gain = proxy(cfg.criterion, left) + proxy(cfg.criterion, right) - node_proxy;
            if best.is_none_or(|x| gain > x.gain) {
                best = Some(Split {
                    feature,
                    bin: b,
                    gain,
                });
            }
        }
        best
    }
}

#[inline]
fn add(stats: &mut [f64], criterion: Criterion, e: &Entry) {
    match criterion {
        Criterion::Gini | Criterion::Entropy => stats[e.class as usize] += e.w,
        Criterion::Mse => {
            stats[0] += e.w;
            stats[1] += e.w * e.y;
            stats[2] += e.w * e.y * e.y;
        }
        Criterion::Newton { .. } => {
            stats[0] += e.w * e.y;
            stats[1] += e.w * e.h;
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

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
//!   feature instead of a sort. Only the node's occupied bin range is cleared and scanned, and a
//!   small node scans just its occupied bins. The common criteria (Newton, squared error, two-class
//!   Gini) scan fixed-size arrays with the gain written out.
//! - With `subtraction` (the boosters: all features, shallow trees or a leaf budget) every node keeps
//!   all features' histograms; only the smaller child is histogrammed and the larger one is parent −
//!   smaller. Large nodes are histogrammed in parallel over features when the pool has threads.
//! - The rows of a node are a contiguous range of one entry array, partitioned in place; the
//!   histogram, feature order and node arrays are reused, so growing allocates nothing per node.
//! - Growth is depth-first (CART) or best-first by gain with a leaf budget (histogram gradient
//!   boosting), from one frontier of nodes whose best split is known.
//!
//! Feature sampling follows scikit-learn: features are drawn without replacement until `max_features`
//! non-constant ones have been examined. Every random draw comes from the tree's own seeded generator.

use rand::Rng;
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

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
    /// Row-major copy of `bins` (`[row * p + f]`), for one pass over a node's rows that fills every
    /// feature's histogram.
    row_major: Vec<u8>,
    /// Where feature `f`'s bins start in an all-feature histogram; the last entry is the total.
    offsets: Vec<usize>,
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
        let mut row_major = vec![0u8; n * p];
        for f in 0..p {
            for r in 0..n {
                row_major[r * p + f] = bins[f * n + r];
            }
        }
        let mut offsets = vec![0];
        for t in &thresholds {
            offsets.push(offsets.last().copied().unwrap_or(0) + t.len() + 1);
        }
        Ok(Binned {
            n,
            bins,
            thresholds,
            row_major,
            offsets,
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
    /// Keep every feature's histogram per node and derive the larger child's as parent − smaller
    /// child (the subtraction trick). Pays off for shallow trees or leaf budgets on all features
    /// (boosting); deep trees with many tiny nodes do better without it. Needs
    /// `max_features` = all features and no random split.
    pub subtraction: bool,
    /// Build a node's histograms in parallel over features (rayon) when the node is large.
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
    let width = match cfg.criterion {
        Criterion::Gini | Criterion::Entropy => cfg.n_classes,
        _ => 1,
    };
    let stat_width = match cfg.criterion {
        Criterion::Gini | Criterion::Entropy => cfg.n_classes,
        Criterion::Mse => 3,
        Criterion::Newton { .. } => 2,
    };
    let full = cfg.subtraction && cfg.max_features >= binned.features() && !cfg.random_split;
    let mut b = Builder {
        binned,
        cfg,
        s: stat_width,
        full,
        hist: vec![0.0; MAX_BINS * stat_width],
        counts: vec![0; MAX_BINS],
        occupied: Vec::with_capacity(MAX_BINS),
        pool: Vec::new(),
        free: Vec::new(),
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
    };
    let mut frontier: Vec<Pending> = Vec::new();
    let root_slot = if full {
        let slot = b.alloc();
        b.fill_slot(slot, entries);
        slot
    } else {
        NO_SLOT
    };
    if let Some(p) = b.make_node(entries, 0, entries.len(), 0, root_slot, rng) {
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
        // Subtraction trick: histogram the smaller child, the larger one is parent − smaller.
        let (left_slot, right_slot) = if full {
            let small_is_left = mid - p.start <= p.end - mid;
            let small = b.alloc();
            let range = if small_is_left {
                p.start..mid
            } else {
                mid..p.end
            };
            b.fill_slot(small, &entries[range]);
            b.subtract(p.slot, small);
            if small_is_left {
                (small, p.slot)
            } else {
                (p.slot, small)
            }
        } else {
            (NO_SLOT, NO_SLOT)
        };
        let left_id = b.tree.nodes.len() as u32;
        let lp = b.make_node(entries, p.start, mid, p.depth + 1, left_slot, rng);
        let right_id = b.tree.nodes.len() as u32;
        let rp = b.make_node(entries, mid, p.end, p.depth + 1, right_slot, rng);
        b.tree.nodes[p.node] = Node {
            feature: s.feature as u32,
            threshold: binned.thresholds[s.feature][s.bin as usize],
            left: left_id,
            right: right_id,
        };
        b.tree.gains[s.feature] += s.gain.max(0.0);
        leaves += 1;
        // Depth-first takes the left child next, as a recursive CART would.
        frontier.extend(rp);
        frontier.extend(lp);
    }
    (b.tree, b.ranges)
}

const NO_SLOT: usize = usize::MAX;

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
    /// The node's all-feature histogram in `pool`, or `NO_SLOT`.
    slot: usize,
}

struct Builder<'a> {
    binned: &'a Binned,
    cfg: &'a TreeConfig,
    /// Statistics per bin: class weights, (w, wy, wy²) or (g, h).
    s: usize,
    /// All-feature histograms with the subtraction trick.
    full: bool,
    /// One feature's histogram (per-feature mode).
    hist: Vec<f64>,
    counts: Vec<u32>,
    occupied: Vec<u8>,
    /// All-feature histograms (statistics, row counts), reused through `free`.
    pool: Vec<(Vec<f64>, Vec<u32>)>,
    free: Vec<usize>,
    order: Vec<usize>,
    left: Vec<f64>,
    right: Vec<f64>,
    node_stats: Vec<f64>,
    tree: Tree,
    /// Each node's `start..end` in the entries.
    ranges: Vec<(u32, u32)>,
}

impl Builder<'_> {
    fn alloc(&mut self) -> usize {
        if let Some(slot) = self.free.pop() {
            return slot;
        }
        let total = self.binned.offsets[self.binned.features()];
        self.pool.push((vec![0.0; total * self.s], vec![0; total]));
        self.pool.len() - 1
    }

    fn release(&mut self, slot: usize) {
        if slot != NO_SLOT {
            self.free.push(slot);
        }
    }

    /// Every feature's histogram of `rows` into `slot`.
    fn fill_slot(&mut self, slot: usize, rows: &[Entry]) {
        let (s, criterion, binned) = (self.s, self.cfg.criterion, self.binned);
        let p = binned.features();
        let (hist, counts) = &mut self.pool[slot];
        hist.fill(0.0);
        counts.fill(0);
        let offsets = &binned.offsets;
        if self.cfg.parallel
            && rows.len() * p >= 1 << 16
            && p > 1
            && rayon::current_num_threads() > 1
        {
            // One task per feature, each reading the node's rows in order: the same sums as the
            // serial pass below (which adds each row to every feature in turn), so the choice of
            // path cannot change the tree.
            let mut hs: Vec<(usize, &mut [f64], &mut [u32])> = Vec::with_capacity(p);
            let (mut h_rest, mut c_rest) = (&mut hist[..], &mut counts[..]);
            for f in 0..p {
                let len = offsets[f + 1] - offsets[f];
                let (h, hr) = std::mem::take(&mut h_rest).split_at_mut(len * s);
                let (c, cr) = std::mem::take(&mut c_rest).split_at_mut(len);
                hs.push((f, h, c));
                h_rest = hr;
                c_rest = cr;
            }
            hs.into_par_iter().for_each(|(f, h, c)| {
                let column = binned.column(f);
                for e in rows {
                    let b = column[e.row as usize] as usize;
                    c[b] += 1;
                    add(&mut h[b * s..(b + 1) * s], criterion, e);
                }
            });
        } else {
            let rm = &binned.row_major;
            for e in rows {
                let bins = &rm[e.row as usize * p..(e.row as usize + 1) * p];
                for (f, &b) in bins.iter().enumerate() {
                    let at = offsets[f] + b as usize;
                    counts[at] += 1;
                    add(&mut hist[at * s..(at + 1) * s], criterion, e);
                }
            }
        }
    }

    /// `parent -= child`, bin by bin: `parent` then holds the sibling's histogram.
    fn subtract(&mut self, parent: usize, child: usize) {
        let (a, b) = if parent < child {
            let (x, y) = self.pool.split_at_mut(child);
            (&mut x[parent], &y[0])
        } else {
            let (x, y) = self.pool.split_at_mut(parent);
            (&mut y[0], &x[child])
        };
        a.0.iter_mut().zip(&b.0).for_each(|(p, c)| *p -= c);
        a.1.iter_mut().zip(&b.1).for_each(|(p, c)| *p -= c);
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
        let split = if (cfg.max_depth > 0 && depth >= cfg.max_depth)
            || n < cfg.min_samples_split
            || n < 2 * cfg.min_samples_leaf
            || self.pure()
        {
            None
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

    /// The best split over every feature's histogram in `slot`.
    fn find_split_full(&mut self, slot: usize, n: usize) -> Option<Split> {
        let node_proxy = proxy(self.cfg.criterion, &self.node_stats);
        let s = self.s;
        let (hist, counts) = &self.pool[slot];
        let mut best: Option<Split> = None;
        for f in 0..self.binned.features() {
            let (a, z) = (self.binned.offsets[f], self.binned.offsets[f + 1]);
            let c = &counts[a..z];
            let Some(lo) = c.iter().position(|&v| v > 0) else {
                continue;
            };
            let hi = c.iter().rposition(|&v| v > 0).unwrap_or(lo);
            if lo == hi {
                continue;
            }
            let found = scan(
                Scan {
                    cfg: self.cfg,
                    s,
                    node_stats: &self.node_stats,
                    hist: &hist[a * s..z * s],
                    counts: c,
                    n,
                    node_proxy,
                },
                &mut self.left,
                &mut self.right,
                f,
                lo as u8..hi as u8,
                None,
            );
            if let Some(c) = found {
                if best.is_none_or(|b| c.gain > b.gain) {
                    best = Some(c);
                }
            }
        }
        self.accept(best)
    }

    fn find_split(&mut self, rows: &[Entry], rng: &mut Xoshiro256PlusPlus) -> Option<Split> {
        let p = self.order.len();
        let want = self.cfg.max_features.min(p);
        let node_proxy = proxy(self.cfg.criterion, &self.node_stats);
        let mut best: Option<Split> = None;
        let mut examined = 0;
        let s = self.s;
        for i in 0..p {
            if want < p {
                let j = rng.random_range(i..p);
                self.order.swap(i, j);
            }
            let f = self.order[i];
            let column = self.binned.column(f);
            // Histogram of this feature over the node, the occupied bin range and, for small nodes,
            // the occupied bins themselves (so deep nodes scan a handful of bins, not the range).
            let (mut lo, mut hi) = (u8::MAX, 0u8);
            self.occupied.clear();
            for e in rows {
                let b = column[e.row as usize];
                lo = lo.min(b);
                hi = hi.max(b);
                if self.counts[b as usize] == 0 {
                    self.occupied.push(b);
                }
                self.counts[b as usize] += 1;
                add(
                    &mut self.hist[b as usize * s..(b as usize + 1) * s],
                    self.cfg.criterion,
                    e,
                );
            }
            let sparse = self.occupied.len() * 8 < (hi - lo) as usize + 1;
            if sparse {
                self.occupied.sort_unstable();
            }
            if lo < hi {
                examined += 1;
                let cut = if self.cfg.random_split {
                    Some(rng.random_range(lo..hi))
                } else {
                    None
                };
                let sc = Scan {
                    cfg: self.cfg,
                    s,
                    node_stats: &self.node_stats,
                    hist: &self.hist,
                    counts: &self.counts,
                    n: rows.len(),
                    node_proxy,
                };
                let (left, right) = (&mut self.left, &mut self.right);
                let found = if sparse {
                    let k = self.occupied.len();
                    scan(
                        sc,
                        left,
                        right,
                        f,
                        self.occupied[..k - 1].iter().copied(),
                        cut,
                    )
                } else {
                    scan(sc, left, right, f, lo..hi, cut)
                };
                if let Some(c) = found {
                    if best.is_none_or(|b| c.gain > b.gain) {
                        best = Some(c);
                    }
                }
            }
            if sparse {
                for &b in &self.occupied {
                    self.hist[b as usize * s..(b as usize + 1) * s].fill(0.0);
                    self.counts[b as usize] = 0;
                }
            } else {
                self.hist[lo as usize * s..(hi as usize + 1) * s].fill(0.0);
                self.counts[lo as usize..=hi as usize].fill(0);
            }
            if examined >= want {
                break;
            }
        }
        self.accept(best)
    }
}

/// What a scan of one feature's histogram reads.
struct Scan<'a> {
    cfg: &'a TreeConfig,
    s: usize,
    node_stats: &'a [f64],
    /// The feature's histogram: bin `b`'s statistics at `b * s`.
    hist: &'a [f64],
    counts: &'a [u32],
    n: usize,
    node_proxy: f64,
}

/// The best boundary among `bins` (ascending occupied or candidate bins, the last occupied one
/// left out), or only the boundary after `cut`, of one feature's histogram.
fn scan(
    sc: Scan,
    left: &mut [f64],
    right: &mut [f64],
    feature: usize,
    bins: impl Iterator<Item = u8>,
    cut: Option<u8>,
) -> Option<Split> {
    // The common cases get a loop over fixed-size arrays with the gain written out; the arithmetic
    // is the same as `proxy`'s, so the splits are too.
    match (sc.cfg.criterion, sc.s) {
        (Criterion::Newton { lambda }, _) => {
            return scan_fixed::<2>(&sc, feature, bins, cut, |st: &[f64; 2]| {
                st[0] * st[0] / (st[1] + lambda)
            })
        }
        (Criterion::Mse, _) => {
            return scan_fixed::<3>(&sc, feature, bins, cut, |st: &[f64; 3]| {
                if st[0] <= 0.0 {
                    0.0
                } else {
                    st[1] * st[1] / st[0]
                }
            })
        }
        (Criterion::Gini, 2) => {
            return scan_fixed::<2>(&sc, feature, bins, cut, |st: &[f64; 2]| {
                let total = st[0] + st[1];
                if total <= 0.0 {
                    0.0
                } else {
                    (st[0] * st[0] + st[1] * st[1]) / total
                }
            })
        }
        _ => {}
    }
    let s = sc.s;
    let msl = sc.cfg.min_samples_leaf.max(1);
    left.fill(0.0);
    let mut n_left = 0usize;
    let mut best: Option<Split> = None;
    let mut evaluate = |b: u8, left: &[f64], n_left: usize, best: &mut Option<Split>| -> bool {
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
        if best.is_none_or(|x| gain > x.gain) {
            *best = Some(Split {
                feature,
                bin: b,
                gain,
            });
        }
        true
    };
    for b in bins {
        if cut.is_some_and(|c| b > c) {
            break;
        }
        let h = &sc.hist[b as usize * s..(b as usize + 1) * s];
        for k in 0..s {
            left[k] += h[k];
        }
        n_left += sc.counts[b as usize] as usize;
        if cut.is_none() && !evaluate(b, left, n_left, &mut best) {
            break;
        }
    }
    if let Some(c) = cut {
        evaluate(c, left, n_left, &mut best);
    }
    best
}

/// [`scan`] for `S` statistics per bin and the proxy `proxy_of`.
#[inline(always)]
fn scan_fixed<const S: usize>(
    sc: &Scan,
    feature: usize,
    bins: impl Iterator<Item = u8>,
    cut: Option<u8>,
    proxy_of: impl Fn(&[f64; S]) -> f64,
) -> Option<Split> {
    let msl = sc.cfg.min_samples_leaf.max(1);
    let mut node = [0.0; S];
    node.copy_from_slice(&sc.node_stats[..S]);
    let mut left = [0.0; S];
    let mut n_left = 0usize;
    let mut best: Option<Split> = None;
    let mut best_gain = f64::NEG_INFINITY;
    let mut evaluate = |b: u8, left: &[f64; S], n_left: usize| -> bool {
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
            best = Some(Split {
                feature,
                bin: b,
                gain,
            });
        }
        true
    };
    for b in bins {
        if cut.is_some_and(|c| b > c) {
            break;
        }
        let at = b as usize * S;
        let h = &sc.hist[at..at + S];
        for k in 0..S {
            left[k] += h[k];
        }
        n_left += sc.counts[b as usize] as usize;
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

//! Data-parallel training: the histogram gradient booster fitted on rows split between processes
//! (MPI ranks), giving exactly the model one process builds.
//!
//! Each process computes the same training / validation split from the targets. With
//! `GradientBoosting::fit_sharded` every process holds the whole dataset, and the bin edges come
//! from every training row, as in one process: shard `r` of `s` sorts features `r, r + s, r + 2s,
//! …` and the edges are exchanged ([`HistogramReducer::gather`]), so each feature's edges are
//! computed once, by the code one process runs, and every shard holds the same bits. With
//! `GradientBoosting::fit_local` a process holds only its own training and validation rows plus
//! every training target (the split comes from `GradientBoosting::split_rows`, which reads only
//! the targets), and each feature's column shards are sent to the shard that owns the feature
//! ([`HistogramReducer::exchange`]), which computes the one-process edges, as the forests do.
//! Each process keeps one contiguous [`Shard`] of the training rows, codes only those rows into
//! bins, and computes gradients, histograms and score updates for them only. Everything that decides the tree
//! — the per-node histograms of gradient sums, hessian sums and row counts — is summed over the
//! shards by a [`HistogramReducer`], so every process grows the same tree from the same global
//! sums. Early stopping's validation rows are split the same way: each process scores its share,
//! and the weighted row losses are gathered in row order ([`HistogramReducer::gather`]) and summed
//! in that order on every process, so the loss has the one-process bits and every process stops at
//! the same stage.
//!
//! Why the sums are bit-identical whatever the shard count and the reduction order: before each
//! tree the booster rounds every weighted gradient and hessian to a multiple of one power of two
//! `u`, chosen from the global largest magnitude `M` (a max-reduction, exact in any order) and the
//! training row count `m` so that `m · M / u < 2^51`. Every partial sum of such values is then an
//! integer multiple of `u` below 2^53 `u` in magnitude, which `f64` holds exactly: addition is
//! exact, hence associative, and any summation order (blocks, threads, an `MPI_Allreduce` tree of
//! any shape, the parent − child subtraction trick) gives the same bits. The rounding is part of
//! the model, single process included: the relative change to a gradient is below `m · 2^-51`
//! (2^-31 at a million rows), far below what moves a split in practice. Hessians round up, so a
//! positive hessian never becomes zero.
//!
//! The hist forests go over the same trait (`Forest::fit_sharded`, and `Forest::fit_local` for a
//! process that holds only its own rows: each feature's column shards are sent to the shard that
//! owns the feature with [`HistogramReducer::exchange`], which computes the one-process edges).
//! Their class histograms hold bootstrap counts, integers; a regression forest rounds its targets
//! so that sums and sums of squares are exact (`estimators::forest`).
//!
//! The ml crate stays free of MPI: the reduction is this trait, [`LocalReducer`] (one process)
//! here and the MPI implementation in the binary's `mpi.ml.hgb` workload.

use std::ops::Range;

/// Sums the per-node histograms over every shard of the training rows. Every shard calls the
/// methods in the same sequence with buffers of the same lengths (the trees are the same
/// everywhere), so a collective implementation cannot deadlock.
pub trait HistogramReducer {
    /// Element-wise sum over every shard, in place: gradient / hessian sums (`stats`) and row
    /// counts (`counts`) of one node's all-feature histogram.
    fn sum(&self, stats: &mut [f64], counts: &mut [u32]);
    /// Element-wise maximum over every shard, in place.
    fn max(&self, values: &mut [f64]);
    /// Every shard's `part` (lengths may differ), concatenated in shard order, on every shard:
    /// the bin edges each shard computed for its share of the features.
    fn gather(&self, part: &[f64]) -> Vec<f64>;
    /// Personalised all-to-all (`MPI_Alltoallv`) among the shards, this one being `rank`:
    /// `parts[d]` goes to shard `d` (one part per shard); returns the part every shard sent to
    /// this one, in shard order. Used to send each feature's column shards to the shard that
    /// computes its bin edges when every shard holds only its own rows. The default goes
    /// through [`HistogramReducer::gather`] (every shard receives every part: correct for any
    /// reducer, but an MPI reducer sends each part only where it goes).
    fn exchange(&self, rank: usize, parts: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut mine = Vec::new();
        for (d, part) in parts.iter().enumerate() {
            mine.push(d as f64);
            mine.push(part.len() as f64);
            mine.extend_from_slice(part);
        }
        let all = self.gather(&mine);
        let (mut out, mut at) = (Vec::new(), 0);
        while at + 2 <= all.len() {
            let (d, len) = (all[at] as usize, all[at + 1] as usize);
            if d == rank {
                out.push(all[at + 2..at + 2 + len].to_vec());
            }
            at += 2 + len;
        }
        out
    }
    /// [`HistogramReducer::sum`] where each shard needs only its own block of the result (a
    /// reduce-scatter): `stats` holds `s` statistics per code, and on return codes
    /// `blocks[rank]..blocks[rank + 1]` (this shard's features) hold the sum over every shard;
    /// the other codes may hold anything. The default sums everything.
    fn sum_block(&self, stats: &mut [f64], counts: &mut [u32], s: usize, blocks: &[usize]) {
        let _ = (s, blocks);
        self.sum(stats, counts);
    }
    /// [`HistogramReducer::gather`] of parts of the same length on every shard (one collective
    /// fewer): each shard's best split over its own features.
    fn gather_equal(&self, part: &[f64]) -> Vec<f64> {
        self.gather(part)
    }
}

/// The reducer of a single process: its histograms already hold every row.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalReducer;

impl HistogramReducer for LocalReducer {
    fn sum(&self, _stats: &mut [f64], _counts: &mut [u32]) {}
    fn max(&self, _values: &mut [f64]) {}
    fn gather(&self, part: &[f64]) -> Vec<f64> {
        part.to_vec()
    }
}

/// Which contiguous part of the training rows a process owns: shard `rank` of `size`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub rank: usize,
    pub size: usize,
}

impl Shard {
    /// All rows in one process.
    pub const WHOLE: Shard = Shard { rank: 0, size: 1 };

    /// The positions of `n` rows this shard owns: `n · rank / size .. n · (rank + 1) / size`
    /// (sizes differ by at most one row).
    pub fn range(&self, n: usize) -> Range<usize> {
        let at = |r: usize| (n as u128 * r as u128 / self.size.max(1) as u128) as usize;
        at(self.rank)..at(self.rank + 1)
    }
}

/// The power of two every value of one tree's gradients (or hessians) is rounded to: `m · max /
/// unit < 2^51`, so every partial sum of `m` rounded values is exact in `f64` (module docs).
pub(crate) fn quantum(max: f64, m: usize) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let e = ((max * m.max(1) as f64).log2().ceil() as i64 - 51).clamp(-1022, 1023);
    f64::from_bits(((e + 1023) as u64) << 52)
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::{Barrier, Mutex};

    use super::*;
    use crate::data::{self, Dataset, Synthetic, Target};
    use crate::estimator::{Estimator, FitOptions, Hp, HyperParams, Model};
    use crate::estimators::GradientBoosting;

    /// Shards as threads: each call adds every shard's buffer into one accumulator in whatever
    /// order the threads take the lock (deliberately unordered), then hands the total back.
    /// Gathers place each shard's part by its rank.
    pub(crate) struct ThreadReducer {
        barrier: Barrier,
        acc: Mutex<(Vec<f64>, Vec<u32>, bool)>,
        parts: Mutex<Vec<Vec<f64>>>,
    }

    /// One thread's view of a [`ThreadReducer`]: its shard's rank.
    pub(crate) struct ThreadShard<'a> {
        pub shared: &'a ThreadReducer,
        pub rank: usize,
    }

    impl ThreadReducer {
        pub(crate) fn new(size: usize) -> ThreadReducer {
            ThreadReducer {
                barrier: Barrier::new(size),
                acc: Mutex::new((Vec::new(), Vec::new(), false)),
                parts: Mutex::new(vec![Vec::new(); size]),
            }
        }
        fn combine(&self, stats: &mut [f64], counts: &mut [u32], max: bool) {
            if self.barrier.wait().is_leader() {
                *self.acc.lock().unwrap() = (Vec::new(), Vec::new(), false);
            }
            self.barrier.wait();
            {
                let mut acc = self.acc.lock().unwrap();
                if !acc.2 {
                    *acc = (stats.to_vec(), counts.to_vec(), true);
                } else {
                    for (a, v) in acc.0.iter_mut().zip(stats.iter()) {
                        *a = if max { a.max(*v) } else { *a + v };
                    }
                    for (a, v) in acc.1.iter_mut().zip(counts.iter()) {
                        *a += v;
                    }
                }
            }
            self.barrier.wait();
            let acc = self.acc.lock().unwrap();
            stats.copy_from_slice(&acc.0);
            counts.copy_from_slice(&acc.1);
        }
    }

    impl HistogramReducer for ThreadShard<'_> {
        fn sum(&self, stats: &mut [f64], counts: &mut [u32]) {
            self.shared.combine(stats, counts, false);
        }
        fn max(&self, values: &mut [f64]) {
            self.shared.combine(values, &mut [], true);
        }
        /// The sum, then every code outside this shard's block spoiled (NaN, `u32::MAX`): a
        /// fit that read another shard's features would show it.
        fn sum_block(&self, stats: &mut [f64], counts: &mut [u32], s: usize, blocks: &[usize]) {
            self.shared.combine(stats, counts, false);
            let (a, z) = (blocks[self.rank], blocks[self.rank + 1]);
            stats[..a * s].fill(f64::NAN);
            stats[z * s..].fill(f64::NAN);
            counts[..a].fill(u32::MAX);
            counts[z..].fill(u32::MAX);
        }
        fn gather(&self, part: &[f64]) -> Vec<f64> {
            let shared = self.shared;
            shared.barrier.wait();
            shared.parts.lock().unwrap()[self.rank] = part.to_vec();
            shared.barrier.wait();
            let all = shared.parts.lock().unwrap().concat();
            shared.barrier.wait();
            all
        }
    }

    /// Every prediction and probability of `model` on every row, as bits.
    fn fingerprint(model: &dyn Model, data: &Dataset) -> Vec<u64> {
        let rows: Vec<usize> = (0..data.rows()).collect();
        let mut out: Vec<u64> = match model.predict(&data.x, &rows) {
            crate::estimator::Prediction::Classes(c) => c.iter().map(|&c| c as u64).collect(),
            crate::estimator::Prediction::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
        };
        if let Some(p) = model.predict_proba(&data.x, &rows) {
            out.extend(p.as_slice().iter().map(|v| v.to_bits()));
        }
        out
    }

    /// The model fitted on `size` shards (threads) must be the one-process model, on every shard.
    fn agrees_over_shards(data: &Dataset, params: &HyperParams) {
        let hgb = GradientBoosting::hist(params).unwrap();
        let rows: Vec<usize> = (0..data.rows()).collect();
        let serial = FitOptions { parallel: false };
        let one = hgb.fit(data, &rows, None, 7, serial).unwrap();
        let want = fingerprint(one.as_ref(), data);
        for size in [2, 3, 4] {
            let reducer = ThreadReducer::new(size);
            let got: Vec<Vec<u64>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..size)
                    .map(|rank| {
                        let (hgb, rows, shared) = (&hgb, &rows, &reducer);
                        s.spawn(move || {
                            let shard = Shard { rank, size };
                            let reducer = ThreadShard { shared, rank };
                            let m = hgb
                                .fit_sharded(data, rows, None, 7, serial, shard, &reducer)
                                .unwrap();
                            fingerprint(m.as_ref(), data)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (rank, g) in got.iter().enumerate() {
                assert!(
                    *g == want,
                    "shard {rank} of {size} differs from one process"
                );
            }
        }
    }

    /// `rows` of `data` as a dataset of their own (features and targets, class names kept).
    fn only(data: &Dataset, rows: &[usize]) -> Dataset {
        let y = match &data.y {
            Target::Classes { labels, names } => Target::Classes {
                labels: rows.iter().map(|&r| labels[r]).collect(),
                names: names.clone(),
            },
            Target::Values(v) => Target::Values(rows.iter().map(|&r| v[r]).collect()),
        };
        Dataset::new(
            "shard",
            data.x.select_rows(rows),
            y,
            data.feature_names.clone(),
        )
        .unwrap()
    }

    /// `fit_local` on 1 to 4 shards (threads), each given a dataset of only its own training
    /// and validation rows (from `split_rows`) and every training target, must be the
    /// one-process model on every shard.
    fn agrees_holding_only_own_rows(data: &Dataset, params: &HyperParams) {
        let hgb = GradientBoosting::hist(params).unwrap();
        let rows: Vec<usize> = (0..data.rows()).collect();
        let serial = FitOptions { parallel: false };
        let one = hgb.fit(data, &rows, None, 7, serial).unwrap();
        let want = fingerprint(one.as_ref(), data);
        let (train, val) = hgb.split_rows(data, &rows, 7).unwrap();
        let targets = only(data, &train).y;
        for size in [1, 2, 3, 4] {
            let reducer = ThreadReducer::new(size);
            let got: Vec<Vec<u64>> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..size)
                    .map(|rank| {
                        let (hgb, shared) = (&hgb, &reducer);
                        let (train, val, targets) = (&train, &val, &targets);
                        s.spawn(move || {
                            let shard = Shard { rank, size };
                            let mine: Vec<usize> = train[shard.range(train.len())]
                                .iter()
                                .chain(&val[shard.range(val.len())])
                                .copied()
                                .collect();
                            let local = only(data, &mine);
                            let own: Vec<usize> = (0..local.rows()).collect();
                            let reducer = ThreadShard { shared, rank };
                            let m = hgb
                                .fit_local(
                                    &local,
                                    &own,
                                    targets,
                                    val.len(),
                                    7,
                                    serial,
                                    shard,
                                    &reducer,
                                )
                                .unwrap();
                            fingerprint(m.as_ref(), data)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for (rank, g) in got.iter().enumerate() {
                assert!(
                    *g == want,
                    "shard {rank} of {size} holding its rows differs from one process"
                );
            }
        }
    }

    #[test]
    fn boosting_on_shards_holding_only_their_rows_equals_one_process() {
        let mut params = HyperParams::new();
        params.insert("max_iter".into(), Hp::Int(15));
        params.insert("early_stopping".into(), Hp::Bool(true));
        params.insert("n_iter_no_change".into(), Hp::Int(3));
        let three = data::make_classification(&Synthetic {
            samples: 2000,
            features: 6,
            informative: 4,
            classes: 3,
            seed: 5,
            ..Synthetic::default()
        })
        .unwrap();
        agrees_holding_only_own_rows(&three, &params);
        let diabetes = data::load("diabetes").unwrap();
        agrees_holding_only_own_rows(&diabetes, &params);
        // Without early stopping: every row trains.
        params.insert("early_stopping".into(), Hp::Bool(false));
        agrees_holding_only_own_rows(&diabetes, &params);
        let cancer = data::load("breast_cancer").unwrap();
        agrees_holding_only_own_rows(&cancer, &params);
    }

    /// `fit_local` refuses rows that are not the split it makes, naming where to take them.
    #[test]
    fn a_local_fit_refuses_a_validation_count_that_is_not_its_split() {
        let data = data::load("iris").unwrap();
        let mut params = HyperParams::new();
        params.insert("early_stopping".into(), Hp::Bool(true));
        let hgb = GradientBoosting::hist(&params).unwrap();
        let rows: Vec<usize> = (0..150).collect();
        let options = FitOptions { parallel: false };
        let err = hgb
            .fit_local(
                &data,
                &rows,
                &data.y,
                0,
                1,
                options,
                Shard::WHOLE,
                &LocalReducer,
            )
            .err()
            .unwrap();
        assert_eq!(
            err,
            "hist_gradient_boosting: 0 early-stopping validation rows for a fit on 150 rows, \
             which holds out 15; take the training and validation rows from `split_rows`"
        );
        let (train, val) = hgb.split_rows(&data, &rows, 1).unwrap();
        assert_eq!((train.len(), val.len()), (135, 15));
        // The training rows alone, without the validation rows.
        let targets = only(&data, &train).y;
        let err = hgb
            .fit_local(
                &data,
                &train,
                &targets,
                15,
                1,
                options,
                Shard::WHOLE,
                &LocalReducer,
            )
            .err()
            .unwrap();
        assert_eq!(
            err,
            "hist_gradient_boosting: this process was given 135 rows, but its shard is 135 \
             training and 15 validation rows"
        );
    }

    #[test]
    fn sharded_boosting_equals_one_process_for_classes_and_values() {
        let mut params = HyperParams::new();
        params.insert("max_iter".into(), Hp::Int(15));
        // Early stopping on (validation split and stopping rule on every shard alike).
        params.insert("early_stopping".into(), Hp::Bool(true));
        params.insert("n_iter_no_change".into(), Hp::Int(3));
        let three = data::make_classification(&Synthetic {
            samples: 3000,
            features: 8,
            informative: 4,
            classes: 3,
            seed: 3,
            ..Synthetic::default()
        })
        .unwrap();
        agrees_over_shards(&three, &params);
        let diabetes = data::load("diabetes").unwrap();
        agrees_over_shards(&diabetes, &params);
    }

    /// Early stopping that does stop (a larger `max_iter` gives the same model): each shard scores
    /// its share of the validation rows, and the gathered losses stop every shard at the
    /// one-process stage.
    #[test]
    fn sharded_early_stopping_stops_at_the_one_process_stage() {
        let data = data::load("breast_cancer").unwrap();
        let with = |iters: i64| {
            let mut params = HyperParams::new();
            params.insert("max_iter".into(), Hp::Int(iters));
            params.insert("early_stopping".into(), Hp::Bool(true));
            params.insert("n_iter_no_change".into(), Hp::Int(3));
            params.insert("learning_rate".into(), Hp::Float(0.5));
            params
        };
        let rows: Vec<usize> = (0..data.rows()).collect();
        let serial = FitOptions { parallel: false };
        let fit = |iters: i64| {
            let hgb = GradientBoosting::hist(&with(iters)).unwrap();
            let m = hgb.fit(&data, &rows, None, 7, serial).unwrap();
            fingerprint(m.as_ref(), &data)
        };
        assert!(
            fit(300) == fit(900),
            "early stopping did not stop before 300 iterations"
        );
        agrees_over_shards(&data, &with(300));
    }

    #[test]
    fn more_shards_than_training_rows_are_refused() {
        let data = data::load("iris").unwrap();
        let hgb = GradientBoosting::hist(&HyperParams::new()).unwrap();
        let rows: Vec<usize> = (0..3).map(|i| i * 50).collect();
        let shard = Shard { rank: 0, size: 4 };
        let options = FitOptions { parallel: false };
        let err = hgb
            .fit_sharded(&data, &rows, None, 1, options, shard, &LocalReducer)
            .err()
            .unwrap();
        assert_eq!(
            err,
            "hist_gradient_boosting: 4 processes for 3 training rows: every process needs at \
             least one row; use at most 3 processes or more rows"
        );
        let exact = GradientBoosting::classic(&HyperParams::new()).unwrap();
        let all: Vec<usize> = (0..150).collect();
        let err = exact
            .fit_sharded(&data, &all, None, 1, options, shard, &LocalReducer)
            .err()
            .unwrap();
        assert!(err.contains("needs hist_gradient_boosting"), "{err}");
    }

    #[test]
    fn shards_cover_the_rows_once_in_order() {
        for n in [0, 1, 7, 10, 4096] {
            for size in 1..=5 {
                let mut next = 0;
                for rank in 0..size {
                    let r = Shard { rank, size }.range(n);
                    assert_eq!(r.start, next);
                    assert!(r.len() + 1 >= n / size && r.len() <= n.div_ceil(size));
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(Shard::WHOLE.range(9), 0..9);
    }

    #[test]
    fn rounded_values_sum_exactly_in_any_order() {
        let m = 10_000;
        let values: Vec<f64> = (0..m)
            .map(|i| ((i as f64 * 0.7548776662).fract() - 0.5) * 1.3e-3)
            .collect();
        let max = values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let u = quantum(max, m);
        assert_eq!(u.to_bits() & ((1u64 << 52) - 1), 0, "a power of two");
        let q: Vec<f64> = values.iter().map(|v| (v / u).round() * u).collect();
        let forward: f64 = q.iter().sum();
        let backward: f64 = q.iter().rev().sum();
        let halves: f64 = q[..m / 3].iter().sum::<f64>() + q[m / 3..].iter().sum::<f64>();
        assert_eq!(forward.to_bits(), backward.to_bits());
        assert_eq!(forward.to_bits(), halves.to_bits());
        // Unrounded, the orders differ (the test data are chosen so; otherwise this would not
        // show the rounding is what makes them agree).
        let raw_f: f64 = values.iter().sum();
        let raw_b: f64 = values.iter().rev().sum();
        assert_ne!(raw_f.to_bits(), raw_b.to_bits());
        assert_eq!(quantum(0.0, 5), 1.0);
    }
}

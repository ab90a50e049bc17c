//! `mpi.ml.hgb`: histogram gradient boosting trained data-parallel over the point's MPI ranks
//! (feature `mpi`), the booster twin of `mpi.ml.forest` (src/workload/ml/dataforest.rs), and the
//! MPI implementation of `scalelab_ml`'s [`HistogramReducer`]. Reading only a rank's rows, the
//! reference, the probe, sharded scoring and the metrics are shared with the forest
//! (src/workload/ml/shardrows.rs).
//!
//! Every rank holds the same targets and takes the same stratified 3/4 training split as
//! `gboost.fit`, and from the targets alone the booster's early-stopping validation split
//! (`GradientBoosting::split_rows`). Its fit reads one contiguous shard of the training rows
//! ([`Shard`]) and its share of the validation rows, and keeps every training row's target (8
//! bytes a row at most, as the held-out targets are kept: the initial scores are means over all
//! of them): the timed fit (`GradientBoosting::fit_local`) sees nothing else. The bin edges are
//! those one process computes from every training row: each feature's column shards go to the
//! rank that owns the feature (`MPI_Alltoallv`, [`HistogramReducer::exchange`], as the forest
//! does), which sorts the column and computes the edges, and an allgather shares them. Each
//! tree node's histogram is summed over the ranks with a reduce-scatter (pairwise
//! `MPI_Sendrecv`, [`MpiReducer`]): each rank receives the sums of its own block of features,
//! searches those for the best split, and one small allgather of the ranks' best splits decides
//! the node (the split search is parallel over features, as the histograms are over rows). Each
//! rank scores its share of the validation rows and an allgather of the row losses gives every
//! rank the one-process loss, so all stop at the same stage. The sums are exact whatever the
//! reduction order (the booster rounds gradients so that they are; see
//! `scalelab_ml::dataparallel`), so the plain, unordered MPI SUM is safe and the model is the one
//! a single process fits.
//!
//! Metrics: those of src/workload/ml/shardrows.rs; `rows_per_rank` is the fit rows (training
//! and validation) of the largest shard of the 3/4 training split, `allreduce_*` count the
//! fit's collectives (histogram reduce-scatters, gradient maxima, the column exchange, the
//! best-split and bin-edge allgathers, the validation losses) and `data_bytes` includes the
//! training targets. Weak scaling grows `size` (synthetic samples) with the ranks, so rows per
//! rank stay constant. The plan's memory check counts, for a CSV file, a rank's shard and the
//! training targets, plus the whole dataset on rank 0 with `reference = "full"`; for the other
//! datasets a full copy per rank.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use ::mpi::collective::SystemOperation;
use ::mpi::datatype::{Partition, PartitionMut};
use ::mpi::point_to_point::send_receive_into;
use ::mpi::topology::{Communicator, Rank};
use ::mpi::traits::CommunicatorCollectives;
use ::mpi::Count;
use scalelab_ml::data::Target as DataTarget;
use scalelab_ml::dataparallel::{HistogramReducer, Shard};
use scalelab_ml::estimator::{Estimator, FitOptions, Model};
use scalelab_ml::estimators::GradientBoosting;

use super::shardrows::{self, train_rows, Held, Layout, LocalFit};
use super::{csv_dataset, Kind, Ml, Setup};
use crate::value::Value;
use crate::workload::{Comm, Description, Instance, Params, Target, Work, Workload};

/// The estimator this workload trains.
const ESTIMATOR: &str = "hist_gradient_boosting";

/// `mpi.ml.hgb`; see the module documentation.
pub struct MpiHgb;

/// `params` as `gboost.fit` reads them: the estimator fixed, no pipeline.
fn as_gboost(params: &Params) -> Params {
    let mut p = params.clone();
    p.0.insert("estimator".into(), Value::Text(ESTIMATOR.into()));
    p.0.insert("pipeline".into(), Value::Text("none".into()));
    p.0.insert("pipeline_fit".into(), Value::Text("folds".into()));
    p
}

/// Refuse more ranks than training rows: each rank must own at least one row. The training rows
/// are 3/4 of the dataset, less early stopping's validation share (at most half of them is a safe
/// bound for the check; the fit itself names the exact count if it is still short).
fn check_ranks(name: &str, rows: usize, ranks: usize) -> Result<(), String> {
    let train = train_rows(rows);
    if ranks > train / 2 {
        return Err(format!(
            "{name}: {ranks} ranks for a dataset of {rows} rows ({train} training rows, fewer with \
             early stopping's validation share): every rank must hold training rows; use at most \
             {} ranks or a larger dataset (`size`)",
            (train / 2).max(1)
        ));
    }
    Ok(())
}

/// The booster of `setup`.
fn booster(name: &str, setup: &Setup) -> Result<GradientBoosting, String> {
    GradientBoosting::hist(&setup.base).map_err(|e| format!("{name}: {e}"))
}

impl Workload for MpiHgb {
    fn description(&self) -> &'static Description {
        &super::MPI_HGB
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Ml(Kind::GBoost).problem_size(params)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let name = self.name();
        let params = as_gboost(params);
        let full = shardrows::reference(name, &params)? == shardrows::Reference::Full;
        let setup = shardrows::check_setup(name, "model", Kind::GBoost, &params, full)?;
        check_ranks(name, setup.rows, target.resources.ranks as usize)?;
        booster(name, &setup)?;
        // Besides its shard, a rank keeps every training row's target.
        let targets = 8.0 * train_rows(setup.rows) as f64;
        shardrows::check_memory(name, &params, &setup, target, full, targets)
    }
    fn data_file<'p>(&self, params: &'p Params) -> Option<(&'static str, &'p str)> {
        csv_dataset(params)
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(crate::workload::not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let name = self.name();
        let params = as_gboost(params);
        let layout = |setup: &Setup, rows: &[usize], shard: Shard| {
            let hgb = booster(name, setup)?;
            // The fit's own split of its rows, from the targets alone.
            let (train, val) = hgb
                .split_rows(&setup.data, rows, setup.seed)
                .map_err(|e| format!("{name}: {e}"))?;
            let (own, own_val) = (shard.range(train.len()), shard.range(val.len()));
            let targets = shardrows::select_targets(&setup.data.y, &train);
            Ok(Layout {
                fit_rows: train[own.clone()]
                    .iter()
                    .chain(&val[own_val])
                    .copied()
                    .collect(),
                coded: own.len(),
                rows_per_rank: shardrows::largest(rows.len(), shard.size),
                extra_bytes: 8 * train.len(),
                fit: Box::new(HgbFit {
                    hgb,
                    targets,
                    validation: val.len(),
                }),
            })
        };
        shardrows::prepare(
            name,
            "model",
            Kind::GBoost,
            &params,
            comm,
            check_ranks,
            layout,
        )
    }
}

/// The boosting fit of one rank: every training row's target, and how many validation rows
/// there are over all ranks.
struct HgbFit {
    hgb: GradientBoosting,
    targets: DataTarget,
    validation: usize,
}

impl LocalFit for HgbFit {
    fn fit(
        &self,
        held: &Held,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let rows: Vec<usize> = (0..held.train).collect();
        self.hgb.fit_local(
            &held.data,
            &rows,
            &self.targets,
            self.validation,
            seed,
            options,
            shard,
            reducer,
        )
    }
    fn one_process(&self) -> &dyn Estimator {
        &self.hgb
    }
}

/// Reduction traffic of one fit on this rank.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Traffic {
    pub(super) bytes: u64,
    pub(super) calls: u64,
    pub(super) seconds: f64,
}

/// [`HistogramReducer`] over an MPI communicator: one `MPI_Allreduce` SUM of the statistics and
/// the counts (as doubles) or, feature-parallel, a reduce-scatter of them by pairwise
/// `MPI_Sendrecv`, MAX of the
/// largest gradients, and allgathers of the bin edges and of the best splits. Order-free
/// reductions are correct here because the booster's sums are exact (module documentation).
/// Counts the bytes, calls and time.
pub(crate) struct MpiReducer<'c, C: Communicator> {
    comm: &'c C,
    traffic: Cell<Traffic>,
    /// Send and receive buffers (MPI needs the input apart from the output).
    send: RefCell<Vec<f64>>,
    recv: RefCell<Vec<f64>>,
}

impl<'c, C: Communicator> MpiReducer<'c, C> {
    pub(crate) fn new(comm: &'c C) -> MpiReducer<'c, C> {
        MpiReducer {
            comm,
            traffic: Cell::new(Traffic::default()),
            send: RefCell::new(Vec::new()),
            recv: RefCell::new(Vec::new()),
        }
    }

    /// The bytes, calls and seconds of every reduction so far.
    pub(super) fn traffic(&self) -> Traffic {
        self.traffic.get()
    }

    fn record(&self, start: Instant, bytes: usize) {
        let mut t = self.traffic.get();
        t.bytes += bytes as u64;
        t.calls += 1;
        t.seconds += start.elapsed().as_secs_f64();
        self.traffic.set(t);
    }
}

impl<C: Communicator> HistogramReducer for MpiReducer<'_, C> {
    fn sum(&self, stats: &mut [f64], counts: &mut [u32]) {
        // One allreduce, not two: the counts travel as doubles (exact below 2^53), which halves
        // the synchronisation points per node.
        let start = Instant::now();
        let mut send = self.send.borrow_mut();
        send.clear();
        send.extend_from_slice(stats);
        send.extend(counts.iter().map(|&c| f64::from(c)));
        let mut recv = self.recv.borrow_mut();
        recv.resize(send.len(), 0.0);
        self.comm
            .all_reduce_into(&send[..], &mut recv[..], SystemOperation::sum());
        let (s, c) = recv.split_at(stats.len());
        stats.copy_from_slice(s);
        for (out, v) in counts.iter_mut().zip(c) {
            *out = *v as u32;
        }
        self.record(start, send.len() * 8);
    }

    fn max(&self, values: &mut [f64]) {
        let start = Instant::now();
        let send = values.to_vec();
        self.comm
            .all_reduce_into(&send[..], values, SystemOperation::max());
        self.record(start, values.len() * 8);
    }

    fn sum_block(&self, stats: &mut [f64], counts: &mut [u32], s: usize, blocks: &[usize]) {
        // A reduce-scatter by pairwise exchange: at step k this rank sends its partial sums of
        // rank (r + k)'s block of codes (statistics, then the counts as doubles) to that rank and
        // adds in the partial sums of its own block from rank (r - k). Not
        // `MPI_Reduce_scatter_block` or `MPI_Allreduce`: on one node (OpenMPI 4.1, shared
        // memory) those took 100-700 µs for a 20-feature histogram's 120 KB, where `MPI_Sendrecv`
        // moved the same half block in about 10 µs (docs/ml.md), and a tree reduces one such
        // histogram per split.
        let start = Instant::now();
        let size = blocks.len() - 1;
        let rank = self.comm.rank() as usize;
        let seg = |r: usize| blocks[r]..blocks[r + 1];
        let mine = seg(rank);
        let mut send = self.send.borrow_mut();
        let mut recv = self.recv.borrow_mut();
        let mut bytes = 0;
        for k in 1..size {
            let (to, from) = ((rank + k) % size, (rank + size - k) % size);
            let codes = seg(to);
            send.clear();
            send.extend_from_slice(&stats[codes.start * s..codes.end * s]);
            send.extend(counts[codes].iter().map(|&c| f64::from(c)));
            recv.resize(mine.len() * (s + 1), 0.0);
            send_receive_into(
                &send[..],
                &self.comm.process_at_rank(to as Rank),
                &mut recv[..],
                &self.comm.process_at_rank(from as Rank),
            );
            let (st, c) = recv.split_at(mine.len() * s);
            for (out, v) in stats[mine.start * s..mine.end * s].iter_mut().zip(st) {
                *out += v;
            }
            for (out, v) in counts[mine.clone()].iter_mut().zip(c) {
                *out += *v as u32;
            }
            bytes += send.len() * 8;
        }
        self.record(start, bytes);
    }

    fn gather_equal(&self, part: &[f64]) -> Vec<f64> {
        let start = Instant::now();
        let mut all = vec![0.0; part.len() * self.comm.size() as usize];
        self.comm.all_gather_into(part, &mut all[..]);
        self.record(start, part.len() * 8);
        all
    }

    fn gather(&self, part: &[f64]) -> Vec<f64> {
        // The lengths first (one count per rank), then the parts in rank order.
        let start = Instant::now();
        let size = self.comm.size() as usize;
        let mut counts = vec![0 as Count; size];
        self.comm
            .all_gather_into(&(part.len() as Count), &mut counts[..]);
        let displs: Vec<Count> = counts
            .iter()
            .scan(0, |at, &c| {
                let d = *at;
                *at += c;
                Some(d)
            })
            .collect();
        let mut all = vec![0.0; counts.iter().map(|&c| c as usize).sum()];
        {
            let mut partition = PartitionMut::new(&mut all[..], &counts[..], &displs[..]);
            self.comm.all_gather_varcount_into(part, &mut partition);
        }
        self.record(start, part.len() * 8);
        all
    }

    fn exchange(&self, _rank: usize, parts: &[Vec<f64>]) -> Vec<Vec<f64>> {
        // The lengths first (one count to each rank), then one `MPI_Alltoallv`: each part goes
        // only to the rank it is for.
        let start = Instant::now();
        let size = self.comm.size() as usize;
        let send_counts: Vec<Count> = (0..size)
            .map(|d| parts.get(d).map_or(0, Vec::len) as Count)
            .collect();
        let mut recv_counts = vec![0 as Count; size];
        self.comm
            .all_to_all_into(&send_counts[..], &mut recv_counts[..]);
        let displs = |counts: &[Count]| -> Vec<Count> {
            counts
                .iter()
                .scan(0, |at, &c| {
                    let d = *at;
                    *at += c;
                    Some(d)
                })
                .collect()
        };
        let send: Vec<f64> = parts.concat();
        let (send_displs, recv_displs) = (displs(&send_counts), displs(&recv_counts));
        let mut all = vec![0.0; recv_counts.iter().map(|&c| c as usize).sum()];
        {
            let partition = Partition::new(&send[..], &send_counts[..], &send_displs[..]);
            let mut into = PartitionMut::new(&mut all[..], &recv_counts[..], &recv_displs[..]);
            self.comm.all_to_all_varcount_into(&partition, &mut into);
        }
        self.record(start, send.len() * 8);
        recv_displs
            .iter()
            .zip(&recv_counts)
            .map(|(&d, &c)| all[d as usize..(d + c) as usize].to_vec())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardrows::testing;

    /// The plan's memory check counts a rank's shard of a CSV file and every training target,
    /// not a full copy per rank, and the whole file on rank 0 alone with `reference = "full"`:
    /// a node that cannot hold a copy per rank runs the point with `reference = "none"`, and
    /// with `"full"` is refused naming rank 0's extra and the fix.
    #[test]
    fn the_memory_check_counts_a_ranks_shard_of_a_csv_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = testing::wide_csv(dir.path());
        let shard = shardrows::shard_bytes(testing::ROWS, testing::COLS, 4)
            + 8.0 * train_rows(testing::ROWS) as f64;
        let mut target =
            testing::assert_only_rank_zero_holds_the_file(&MpiHgb, "mpi.ml.hgb", &path, shard);
        // The shards without the training targets are too little: they are counted.
        let bare = shardrows::shard_bytes(testing::ROWS, testing::COLS, 4);
        target.node.memory_bytes = Some((4.0 * (bare + 0.5 * (shard - bare)) / 0.9) as u64);
        let err = MpiHgb
            .check(&testing::point(&MpiHgb, &path, "none"), &target)
            .unwrap_err();
        assert!(err.starts_with("mpi.ml.hgb needs "), "{err}");
    }

    #[test]
    fn more_ranks_than_training_rows_are_refused_with_the_fix() {
        assert_eq!(
            check_ranks("mpi.ml.hgb", 8, 4).unwrap_err(),
            "mpi.ml.hgb: 4 ranks for a dataset of 8 rows (6 training rows, fewer with early \
             stopping's validation share): every rank must hold training rows; use at most 3 \
             ranks or a larger dataset (`size`)"
        );
        assert!(check_ranks("mpi.ml.hgb", 2000, 4).is_ok());
    }
}

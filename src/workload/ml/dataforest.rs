//! `mpi.ml.forest`: a histogram random forest trained and scored data-parallel over the point's
//! MPI ranks (feature `mpi`), the forest twin of `mpi.ml.hgb` (src/workload/ml/dataparallel.rs,
//! whose `MpiReducer` it shares). Reading only a rank's rows, the reference, the probe, sharded
//! scoring and the metrics are shared with it (src/workload/ml/shardrows.rs).
//!
//! Every rank holds the same targets and takes the same stratified 3/4 training split as
//! `forest.fit`. Its fit reads the contiguous shard of the training positions ([`Shard`]): the
//! timed fit (`Forest::fit_local`) sees nothing else. The bin edges are those one process
//! computes from every training row: each feature's column shards go to the rank that owns the
//! feature (`MPI_Alltoallv`), which sorts the column and computes the edges, and an allgather
//! shares them. Each tree node's all-feature histogram is summed over the ranks with
//! `MPI_Allreduce`. Each rank draws every tree's
//! bootstrap over all the training positions from the tree's own generator, as one process does,
//! and keeps the counts of its own; the features a node examines are drawn from the same
//! generator in the same order. Class histograms hold bootstrap counts (integers) and a
//! regression forest rounds its targets to a power of two chosen so that sums and sums of
//! squares are exact (`scalelab_ml::estimators::Forest::fit_sharded`), so the unordered
//! allreduce gives the same bits as one process and the forest is `random_forest` with
//! `splitter = "hist"` bit for bit. The splitter defaults to `hist` here; `exact`, class
//! weights, `oob_score` and `n_estimators = "auto"` are refused at check time with the fix.
//!
//! Metrics: those of src/workload/ml/shardrows.rs; `rows_per_rank` is the training rows of
//! the largest shard, `allreduce_*` count the fit's histogram sums, the target maximum, the
//! column exchange and the edges' allgather. The plan's memory check counts, for a CSV file, a
//! rank's shard (`shard_bytes`) plus the whole dataset on rank 0 with `reference = "full"`;
//! for the other datasets a full copy per rank.

use scalelab_ml::dataparallel::{HistogramReducer, Shard};
use scalelab_ml::estimator::{Estimator, FitOptions, Model};
use scalelab_ml::estimators::Forest;

use super::shardrows::{self, train_rows, Held, Layout, LocalFit};
use super::{csv_dataset, Kind, Ml, Setup};
use crate::value::Value;
use crate::workload::{Comm, Description, Instance, Params, Target, Work, Workload};

/// The estimator this workload trains.
const ESTIMATOR: &str = "random_forest";

/// `mpi.ml.forest`; see the module documentation.
pub struct MpiForest;

/// `params` as `forest.fit` reads them: the estimator fixed, no pipeline, and the hist splitter
/// unless `hyper` names one (so the plan's memory check counts the hist codes, too).
fn as_forest(params: &Params) -> Params {
    let mut p = params.clone();
    p.0.insert("estimator".into(), Value::Text(ESTIMATOR.into()));
    p.0.insert("pipeline".into(), Value::Text("none".into()));
    p.0.insert("pipeline_fit".into(), Value::Text("folds".into()));
    let hyper = match p.get("hyper") {
        Some(Value::Text(h)) => h.clone(),
        _ => String::new(),
    };
    if !hyper.contains("splitter") {
        let with = if hyper.trim().is_empty() {
            "splitter=hist".to_string()
        } else {
            format!("{hyper}; splitter=hist")
        };
        p.0.insert("hyper".into(), Value::Text(with));
    }
    p
}

/// The forest of `setup` (its `hyper` completed by [`as_forest`]).
fn forest(name: &str, setup: &Setup) -> Result<Forest, String> {
    Forest::random_forest(&setup.base).map_err(|e| format!("{name}: {e}"))
}

/// Refuse more ranks than training rows: each rank must own at least one.
fn check_ranks(name: &str, rows: usize, ranks: usize) -> Result<(), String> {
    let train = train_rows(rows);
    if ranks > train {
        return Err(format!(
            "{name}: {ranks} ranks for a dataset of {rows} rows ({train} training rows): every \
             rank must hold training rows; use at most {} ranks or a larger dataset (`size`)",
            train.max(1)
        ));
    }
    Ok(())
}

impl Workload for MpiForest {
    fn description(&self) -> &'static Description {
        &super::MPI_FOREST
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Ml(Kind::Forest).problem_size(params)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let name = self.name();
        let params = as_forest(params);
        let full = shardrows::reference(name, &params)? == shardrows::Reference::Full;
        let setup = shardrows::check_setup(name, "forest", Kind::Forest, &params, full)?;
        let ranks = target.resources.ranks as usize;
        check_ranks(name, setup.rows, ranks)?;
        let shard = Shard {
            rank: 0,
            size: ranks,
        };
        forest(name, &setup)?
            .check_shard(train_rows(setup.rows), false, shard)
            .map_err(|e| format!("{name}: {e}"))?;
        shardrows::check_memory(name, &params, &setup, target, full, 0.0)
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
        let params = as_forest(params);
        let layout = |setup: &Setup, train: &[usize], shard: Shard| {
            let forest = forest(name, setup)?;
            let (m, own) = (train.len(), shard.range(train.len()));
            Ok(Layout {
                fit_rows: train[own.clone()].to_vec(),
                coded: own.len(),
                rows_per_rank: shardrows::largest(m, shard.size),
                extra_bytes: 0,
                fit: Box::new(ForestFit {
                    forest,
                    offset: own.start,
                    m,
                }),
            })
        };
        shardrows::prepare(
            name,
            "forest",
            Kind::Forest,
            &params,
            comm,
            check_ranks,
            layout,
        )
    }
}

/// The forest fit of one rank: its training rows are the positions `offset..` of the `m`
/// training rows.
struct ForestFit {
    forest: Forest,
    offset: usize,
    m: usize,
}

impl LocalFit for ForestFit {
    fn fit(
        &self,
        held: &Held,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String> {
        let train: Vec<usize> = (0..held.train).collect();
        self.forest.fit_local(
            &held.data,
            &train,
            self.offset,
            self.m,
            seed,
            options,
            shard,
            reducer,
        )
    }
    fn one_process(&self) -> &dyn Estimator {
        &self.forest
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardrows::testing;

    /// The plan's memory check counts a rank's shard when the ranks read only their rows, and
    /// the whole file on rank 0 alone with `reference = "full"`: a node that cannot hold a full
    /// copy per rank runs the point with `reference = "none"`, and with `"full"` is refused
    /// naming rank 0's extra and the fix.
    #[test]
    fn the_memory_check_counts_a_ranks_shard_of_a_csv_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = testing::wide_csv(dir.path());
        let shard = shardrows::shard_bytes(testing::ROWS, testing::COLS, 4);
        testing::assert_only_rank_zero_holds_the_file(&MpiForest, "mpi.ml.forest", &path, shard);
    }
}

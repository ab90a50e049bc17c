//! `mpi.ml.forest`: a histogram random forest trained and scored data-parallel over the point's
//! MPI ranks (feature `mpi`), the forest twin of `mpi.ml.hgb` (src/workload/ml/dataparallel.rs,
//! whose [`MpiReducer`] it shares).
//!
//! Every rank loads the same dataset and takes the same stratified 3/4 training split as
//! `forest.fit`, and fits the single-process reference forest from it (untimed). It then keeps
//! only its own rows — the contiguous shard of the training positions ([`Shard`]) and of the
//! held-out rows, copied out — plus the held-out targets, and releases the loaded dataset: the
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
//! Scoring is sharded too: each rank predicts its contiguous share of the held-out rows and an
//! allgather gives every rank all predictions (and probabilities), in row order.
//!
//! Verification: `prepare` fits the single-process forest (untimed); every repetition's gathered
//! held-out predictions and probabilities must equal its predictions bit for bit, on every rank.
//!
//! Metrics (maximum over ranks): the score, `fits`, `rows_per_rank` (training rows of the largest
//! shard), `test_rows_per_rank`, `allreduce_bytes` / `allreduce_calls` / `allreduce_s` (the
//! fit's histogram sums, the target maximum, the column exchange and the edges' allgather),
//! `fit_s` and `predict_s` (the two timed phases), and `data_bytes`: the bytes of data this rank
//! holds for them (its training and held-out rows' values and targets, 8 bytes each, its
//! training rows' codes, one byte a value column-major and one row-major, and the held-out
//! targets), which stays flat in weak scaling. Loading is still whole: every rank reads (or
//! generates) the full dataset in `prepare` and fits the reference from it, so the peak memory of
//! a rank is a full copy, and the plan's memory check counts one.

use std::time::Instant;

use anyhow::anyhow;
use scalelab_ml::data::{Dataset, Matrix, Target as DataTarget};
use scalelab_ml::dataparallel::{HistogramReducer, Shard};
use scalelab_ml::estimator::{Estimator, FitOptions, Model, Prediction};
use scalelab_ml::estimators::Forest;

use super::dataparallel::{MpiReducer, Traffic};
use super::{csv_dataset, predictions, search, Kind, Ml, Setup};
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

/// The training rows (positions) of `n` dataset rows: 3/4 of them (the plain fit's split).
fn train_rows(n: usize) -> usize {
    n - n.div_ceil(4)
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
        let setup = Ml(Kind::Forest).check_as(name, &as_forest(params), target)?;
        let ranks = target.resources.ranks as usize;
        check_ranks(name, setup.rows, ranks)?;
        let shard = Shard {
            rank: 0,
            size: ranks,
        };
        forest(name, &setup)?
            .check_shard(train_rows(setup.rows), false, shard)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(())
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
        use ::mpi::topology::Communicator;
        let name = self.name();
        let mut setup = Ml(Kind::Forest)
            .setup_as(name, &as_forest(params), false)
            .map_err(|e| anyhow!(e))?;
        check_ranks(name, setup.rows, comm.size() as usize).map_err(|e| anyhow!(e))?;
        let forest = forest(name, &setup).map_err(|e| anyhow!(e))?;
        let all: Vec<usize> = (0..setup.data.rows()).collect();
        let fold = search::split(&setup.data, &all, 4, scalelab_ml::child_seed(setup.seed, 1))
            .map_err(|e| anyhow!("{name}: {e}"))?
            .swap_remove(0);
        let serial = FitOptions { parallel: false };
        let one = forest
            .fit(&setup.data, &fold.train, None, setup.seed, serial)
            .map_err(|e| anyhow!("{name}: single-process reference fit: {e}"))?;
        let reference = predictions(one.as_ref(), &setup.data, &fold.test);
        let shard = Shard {
            rank: comm.rank() as usize,
            size: comm.size() as usize,
        };
        let largest = |n: usize| {
            (0..shard.size)
                .map(|rank| Shard { rank, ..shard }.range(n).len())
                .max()
                .unwrap_or(0)
        };
        let m = fold.train.len();
        let own_train = shard.range(m);
        let own_test = &fold.test[shard.range(fold.test.len())];
        let held = Held::new(
            &setup.data,
            &fold.train[own_train.clone()],
            own_test,
            &fold.test,
        )
        .map_err(|e| anyhow!("{name}: {e}"))?;
        // From here on this rank holds only its rows: the loaded dataset is released.
        setup.data = Dataset::new(
            name,
            Matrix::zeros(0, 0),
            DataTarget::Values(Vec::new()),
            Vec::new(),
        )
        .map_err(|e| anyhow!("{name}: {e}"))?;
        let p = held.data.features();
        let data_bytes = 8 * held.data.rows() * (p + 1) + 2 * held.train * p + 8 * fold.test.len();
        Ok(Box::new(ForestInstance {
            rows_per_rank: largest(m),
            test_rows_per_rank: largest(fold.test.len()),
            data_bytes,
            offset: own_train.start,
            m,
            held,
            setup,
            forest,
            reference,
            comm: comm.duplicate(),
            shard,
            outcome: None,
            score: f64::NAN,
            traffic: Default::default(),
            fit_s: 0.0,
            predict_s: 0.0,
        }))
    }
}

/// The held-out predictions (and probabilities) gathered from every rank, as a [`Model`] for
/// [`scalelab_ml::metrics::Scoring::score`]: it answers for exactly the rows it was gathered for.
struct Gathered {
    prediction: Prediction,
    proba: Option<Matrix>,
}

impl Model for Gathered {
    fn predict(&self, _x: &Matrix, _rows: &[usize]) -> Prediction {
        self.prediction.clone()
    }
    fn predict_proba(&self, _x: &Matrix, _rows: &[usize]) -> Option<Matrix> {
        self.proba.clone()
    }
}

/// The rows one rank holds for the timed fit and scoring: its training rows then its held-out
/// rows, copied out of the loaded dataset, and every held-out row's target (a dataset without
/// features) to score the gathered predictions against.
struct Held {
    data: Dataset,
    /// `data`'s first `train` rows are the training rows, the rest held out.
    train: usize,
    truth: Dataset,
}

impl Held {
    fn new(
        data: &Dataset,
        train: &[usize],
        test: &[usize],
        all_test: &[usize],
    ) -> Result<Held, String> {
        let targets = |rows: &[usize]| match &data.y {
            DataTarget::Classes { labels, names } => DataTarget::Classes {
                labels: rows.iter().map(|&r| labels[r]).collect(),
                names: names.clone(),
            },
            DataTarget::Values(v) => DataTarget::Values(rows.iter().map(|&r| v[r]).collect()),
        };
        let rows: Vec<usize> = train.iter().chain(test).copied().collect();
        Ok(Held {
            data: Dataset::new(
                data.name.clone(),
                data.x.select_rows(&rows),
                targets(&rows),
                data.feature_names.clone(),
            )?,
            train: train.len(),
            truth: Dataset::new(
                data.name.clone(),
                Matrix::new(all_test.len(), 0, Vec::new())?,
                targets(all_test),
                Vec::new(),
            )?,
        })
    }
}

/// This rank's held-out rows `own` of `data` predicted by `model`, then every rank's share
/// gathered in rank (so row) order by `reducer`: predictions for all `n_test` held-out rows.
fn predict_sharded(
    model: &dyn Model,
    data: &Dataset,
    own: &[usize],
    n_test: usize,
    reducer: &dyn HistogramReducer,
) -> Result<Gathered, String> {
    let (prediction, proba) = predictions(model, data, own);
    let prediction = match prediction {
        Prediction::Classes(c) => {
            let part: Vec<f64> = c.iter().map(|&c| f64::from(c)).collect();
            Prediction::Classes(reducer.gather(&part).iter().map(|&v| v as u32).collect())
        }
        Prediction::Values(v) => Prediction::Values(reducer.gather(&v)),
    };
    let proba = match proba {
        Some(p) => {
            let all = reducer.gather(&p);
            let k = all.len() / n_test.max(1);
            Some(Matrix::new(n_test, k, all)?)
        }
        None => None,
    };
    Ok(Gathered { prediction, proba })
}

/// One rank of a data-parallel forest.
struct ForestInstance {
    /// After `prepare`, `setup.data` holds only the held-out targets (`held.truth`).
    setup: Setup,
    /// This rank's rows; its training rows are the positions `offset..` of the `m` training
    /// rows.
    held: Held,
    offset: usize,
    m: usize,
    forest: Forest,
    reference: (Prediction, Option<Vec<f64>>),
    comm: Comm,
    shard: Shard,
    outcome: Option<Result<Gathered, String>>,
    score: f64,
    rows_per_rank: usize,
    test_rows_per_rank: usize,
    data_bytes: usize,
    traffic: Traffic,
    fit_s: f64,
    predict_s: f64,
}

impl Instance for ForestInstance {
    fn run(&mut self) {
        let reducer = MpiReducer::new(&self.comm);
        let options = FitOptions { parallel: true };
        let start = Instant::now();
        let held = &self.held;
        let train: Vec<usize> = (0..held.train).collect();
        let model = self.forest.fit_local(
            &held.data,
            &train,
            self.offset,
            self.m,
            self.setup.seed,
            options,
            self.shard,
            &reducer,
        );
        self.fit_s = start.elapsed().as_secs_f64();
        self.traffic = reducer.traffic();
        let start = Instant::now();
        // The gathers of the predictions have their own reducer: the fit's traffic stays apart.
        let gather = MpiReducer::new(&self.comm);
        let own_test: Vec<usize> = (held.train..held.data.rows()).collect();
        let n_test = held.truth.rows();
        self.outcome = Some(
            model.and_then(|m| predict_sharded(m.as_ref(), &held.data, &own_test, n_test, &gather)),
        );
        self.predict_s = start.elapsed().as_secs_f64();
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.ml.forest";
        let got = match self.outcome.take() {
            None => return Err(format!("{name}: no fit to check: run did not finish")),
            Some(Err(e)) => return Err(format!("{name}: the data-parallel fit failed: {e}")),
            Some(Ok(g)) => g,
        };
        let same = match (&got.prediction, &self.reference.0) {
            (Prediction::Classes(a), Prediction::Classes(b)) => a == b,
            (Prediction::Values(a), Prediction::Values(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => false,
        };
        let bits = |v: Option<&[f64]>| v.map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        let proba = got.proba.as_ref().map(Matrix::as_slice);
        if !same || bits(proba) != bits(self.reference.1.as_deref()) {
            return Err(format!(
                "{name}: rank {} of {}: the data-parallel forest's held-out predictions or \
                 probabilities differ from the single-process forest's",
                self.shard.rank, self.shard.size
            ));
        }
        let truth = &self.held.truth;
        let all: Vec<usize> = (0..truth.rows()).collect();
        self.score = self.setup.scoring.score(&got, truth, &all)?;
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![
            (self.setup.scoring.name(), self.score),
            ("fits", 1.0),
            ("rows_per_rank", self.rows_per_rank as f64),
            ("test_rows_per_rank", self.test_rows_per_rank as f64),
            ("allreduce_bytes", self.traffic.bytes as f64),
            ("allreduce_calls", self.traffic.calls as f64),
            ("allreduce_s", self.traffic.seconds),
            ("fit_s", self.fit_s),
            ("predict_s", self.predict_s),
            ("data_bytes", self.data_bytes as f64),
        ]
    }
}

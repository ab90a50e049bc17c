//! `mpi.ml.forest`: a histogram random forest trained and scored data-parallel over the point's
//! MPI ranks (feature `mpi`), the forest twin of `mpi.ml.hgb` (src/workload/ml/dataparallel.rs,
//! whose [`MpiReducer`] it shares).
//!
//! Every rank holds the same targets and takes the same stratified 3/4 training split as
//! `forest.fit`. It then keeps
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
//! Reading: from a CSV file a rank never holds the whole data. It streams the file for the target
//! column ([`data::scan_csv`]: classes, the split, the shard boundaries) and then parses only its
//! own rows' features ([`data::read_csv_rows`]); the plan-time check likewise scans the targets
//! and reads a sample of rows. Synthetic and built-in datasets are still built whole on every
//! rank (the generator draws one sequential stream), then released after the copy-out.
//!
//! Verification (parameter `reference`): with `"full"` rank 0 alone loads the whole dataset and
//! fits the single-process forest (untimed) and broadcasts its held-out predictions and
//! probabilities; every repetition's gathered ones must equal them bit for bit, on every rank.
//! With `"none"` no reference is fitted: every rank predicts rank 0's first held-out rows (a
//! probe broadcast in `prepare`) and all must give the same bits, so the ranks grew the same
//! forest; equality with one process rests on `"full"`, which the tests run.
//!
//! Metrics (maximum over ranks): the score, `fits`, `rows_per_rank` (training rows of the largest
//! shard), `test_rows_per_rank`, `allreduce_bytes` / `allreduce_calls` / `allreduce_s` (the
//! fit's histogram sums, the target maximum, the column exchange and the edges' allgather),
//! `fit_s` and `predict_s` (the two timed phases), and `data_bytes`: the bytes of data this rank
//! holds for them (its training and held-out rows' values and targets, 8 bytes each, its
//! training rows' codes, one byte a value column-major and one row-major, and the held-out
//! targets), which stays flat in weak scaling, and `peak_rss_bytes`, the rank's measured peak
//! resident memory. The plan's memory check counts, for a CSV file, a rank's shard
//! ([`shard_bytes`]) plus the whole dataset on rank 0 with `reference = "full"`; for the other
//! datasets a full copy per rank.

use std::time::Instant;

use anyhow::anyhow;
use scalelab_ml::data::{self, Dataset, Matrix, Target as DataTarget};
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
        let params = as_forest(params);
        let full = reference(&params)? == Reference::Full;
        let setup = match csv_dataset(&params) {
            // Checked without holding the file: its target column and a sample of its rows.
            Some((_, path)) => {
                if full {
                    refuse_whole_too_big(name, path)?;
                }
                let preview = csv_preview(name, &params, path)?;
                Ml(Kind::Forest).setup_from(name, &params, preview, true)?
            }
            None => Ml(Kind::Forest).setup_as(name, &params, true)?,
        };
        let ranks = target.resources.ranks as usize;
        check_ranks(name, setup.rows, ranks)?;
        let shard = Shard {
            rank: 0,
            size: ranks,
        };
        forest(name, &setup)?
            .check_shard(train_rows(setup.rows), false, shard)
            .map_err(|e| format!("{name}: {e}"))?;
        let whole = setup.memory_bytes(target.resources.threads);
        let (per_rank, root_extra) = if csv_dataset(&params).is_some() {
            // A CSV file's ranks read only their rows; rank 0 loads it whole for the reference.
            (
                shard_bytes(setup.rows, setup.cols, ranks),
                if full { whole } else { 0.0 },
            )
        } else {
            (whole, 0.0)
        };
        target.fits_memory_with_root(name, per_rank, root_extra, super::memory_fix(&params))?;
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
        let params = as_forest(params);
        let mode = reference(&params).map_err(|e| anyhow!(e))?;
        let csv = csv_dataset(&params).map(|(_, path)| path.to_string());
        // A CSV file: its target column only (every rank needs all targets for the classes, the
        // split and the shard boundaries); the features of this rank's rows are read below.
        let (loaded, names) = match &csv {
            Some(path) => scan_targets(name, &params, path),
            None => super::load_dataset(name, &params, false).map(|l| {
                let names = l.data.feature_names.clone();
                (l, names)
            }),
        }
        .map_err(|e| anyhow!(e))?;
        let mut setup = Ml(Kind::Forest)
            .setup_from(name, &params, loaded, false)
            .map_err(|e| anyhow!(e))?;
        check_ranks(name, setup.rows, comm.size() as usize).map_err(|e| anyhow!(e))?;
        let forest = forest(name, &setup).map_err(|e| anyhow!(e))?;
        let all: Vec<usize> = (0..setup.data.rows()).collect();
        let fold = search::split(&setup.data, &all, 4, scalelab_ml::child_seed(setup.seed, 1))
            .map_err(|e| anyhow!("{name}: {e}"))?
            .swap_remove(0);
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
        let own: Vec<usize> = fold.train[own_train.clone()]
            .iter()
            .chain(own_test)
            .copied()
            .collect();
        // This rank's rows: read from the file alone (a CSV), or copied out of the loaded data.
        let x = match &csv {
            Some(path) => {
                let target = super::text(&params, "target").map_err(|e| anyhow!(e))?;
                data::read_csv_rows(std::path::Path::new(path), target, &own)
                    .map_err(|e| anyhow!("{name}: {e}"))?
            }
            None => setup.data.x.select_rows(&own),
        };
        let held = Held::new(&setup.data, x, names, &own, own_train.len(), &fold.test)
            .map_err(|e| anyhow!("{name}: {e}"))?;
        // The single-process reference, fitted by rank 0 alone and sent to every rank.
        let reference = match mode {
            Reference::Full => {
                let mine = (shard.rank == 0).then(|| {
                    let whole = match &csv {
                        Some(path) => {
                            let task = super::text(&params, "task")?;
                            super::read_csv_dataset(name, &params, path, task)?
                        }
                        None => std::mem::replace(&mut setup.data, empty(name)?),
                    };
                    let serial = FitOptions { parallel: false };
                    let one = forest
                        .fit(&whole, &fold.train, None, setup.seed, serial)
                        .map_err(|e| format!("{name}: single-process reference fit: {e}"))?;
                    Ok(predictions(one.as_ref(), &whole, &fold.test))
                });
                Some(
                    share_reference(comm, mine, held.truth.y.labels().is_some())
                        .map_err(|e| anyhow!(e))?,
                )
            }
            Reference::None => None,
        };
        // From here on this rank holds only its rows: the loaded dataset is released.
        setup.data = empty(name).map_err(|e| anyhow!(e))?;
        // A probe for the ranks' agreement without a reference: rank 0's first held-out rows.
        let probe = share_probe(comm, &held);
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
            probe,
            agreed: false,
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

/// Where the single-process reference is fitted (parameter `reference`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reference {
    /// Rank 0 loads the whole dataset and fits it; every rank's result must equal it.
    Full,
    /// No reference: the ranks check that they grew the same forest.
    None,
}

fn reference(params: &Params) -> Result<Reference, String> {
    match params.get("reference") {
        None => Ok(Reference::Full),
        Some(Value::Text(t)) if t == "full" => Ok(Reference::Full),
        Some(Value::Text(t)) if t == "none" => Ok(Reference::None),
        Some(other) => Err(format!(
            "mpi.ml.forest: reference = {other:?}; use \"full\" or \"none\""
        )),
    }
}

/// A dataset of no rows, standing for data released.
fn empty(name: &str) -> Result<Dataset, String> {
    Dataset::new(
        name,
        Matrix::zeros(0, 0),
        DataTarget::Values(Vec::new()),
        Vec::new(),
    )
}

/// A CSV file's target column as the dataset of a setup (rows and no feature values; its columns
/// counted for the memory), streamed without holding the file or its features.
/// Returns it with the feature columns' names.
fn scan_targets(
    name: &str,
    params: &Params,
    path: &str,
) -> Result<(super::Loaded, Vec<String>), String> {
    let target = super::text(params, "target")?;
    let rule = match super::text(params, "task")? {
        "classification" => data::Task::Classification,
        "regression" => data::Task::Regression,
        _ => data::Task::Auto,
    };
    let scan = data::scan_csv(std::path::Path::new(path), target, rule).map_err(|e| {
        if e.contains(&format!("no column `{target}`")) {
            format!("{name}: {e} (the study's `target` key names the target column)")
        } else {
            format!("{name}: {e}")
        }
    })?;
    super::check_two_classes(name, path, &scan.targets)?;
    let loaded = super::Loaded {
        rows: scan.targets.rows(),
        cols: scan.feature_names.len(),
        data: scan.targets,
        generator_bytes: 0.0,
    };
    Ok((loaded, scan.feature_names))
}

/// How many rows of a CSV file [`csv_preview`] reads for the plan-time trial fit.
const PREVIEW_ROWS: usize = 1000;

/// A CSV file as the plan-time check sees it, without holding it: every target (streamed) and
/// the features of at most [`PREVIEW_ROWS`] rows spread over the file, for the trial fit; the
/// real shape for the memory.
fn csv_preview(name: &str, params: &Params, path: &str) -> Result<super::Loaded, String> {
    let (mut loaded, names) = scan_targets(name, params, path)?;
    let n = loaded.rows;
    let take = n.min(PREVIEW_ROWS);
    let rows: Vec<usize> = (0..take).map(|i| i * n / take).collect();
    let target = super::text(params, "target")?;
    let x = data::read_csv_rows(std::path::Path::new(path), target, &rows)
        .map_err(|e| format!("{name}: {e}"))?;
    let held = Held::new(&loaded.data, x, names, &rows, take, &[])?;
    loaded.data = held.data;
    Ok(loaded)
}

/// With `reference = "full"` rank 0 loads the file whole, which [`data::load_csv`] refuses past
/// [`data::MAX_CSV_BYTES`]: refuse such a file at plan time, naming the mode that reads it in
/// shards.
fn refuse_whole_too_big(name: &str, path: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > data::MAX_CSV_BYTES => Err(format!(
            "{name}: {path} is larger than {} GiB, the most one process loads whole, and \
             reference = \"full\" has rank 0 load it to fit the single-process forest; set \
             reference = \"none\" (every rank reads only its rows; the ranks check that they \
             grew the same forest)",
            data::MAX_CSV_BYTES >> 30
        )),
        _ => Ok(()),
    }
}

/// Estimated bytes one rank of `ranks` holds when it reads only its rows of a CSV file of `rows`
/// rows × `cols` features: 16 bytes a row of the file for the target column (while scanning,
/// the index of the row's target text and its number, then its target:
/// `scalelab_ml::data::scan_csv`); the row positions wanted (48 bytes a held row, a hash map);
/// and the
/// data of `data_bytes` (its training and held-out rows' values and targets, the training
/// rows' codes, the held-out targets).
fn shard_bytes(rows: usize, cols: usize, ranks: usize) -> f64 {
    let test = rows.div_ceil(4);
    let (mt, ms) = (train_rows(rows).div_ceil(ranks), test.div_ceil(ranks));
    let (n, p) = (rows as f64, cols as f64);
    let (mt, ms, test) = (mt as f64, ms as f64, test as f64);
    16.0 * n + 48.0 * (mt + ms) + 8.0 * (mt + ms) * (p + 1.0) + 2.0 * mt * p + 8.0 * test
}

/// Rank 0's reference predictions (`mine`: rank 0 only) broadcast to every rank, or its error
/// on every rank (none waits for a message that will not come). `classes`: the predictions are
/// class indices.
fn share_reference(
    comm: &Comm,
    mine: Option<Result<Predicted, String>>,
    classes: bool,
) -> Result<Predicted, String> {
    use ::mpi::topology::Communicator;
    use ::mpi::traits::Root;
    let root = comm.process_at_rank(0);
    // Header: ok flag, prediction length, probability length (u64::MAX: none).
    let mut header = [0u64; 3];
    let mut body: Vec<f64> = Vec::new();
    let mut failure = String::new();
    if let Some(r) = &mine {
        match r {
            Ok((pred, proba)) => {
                body = match pred {
                    Prediction::Classes(c) => c.iter().map(|&c| f64::from(c)).collect(),
                    Prediction::Values(v) => v.clone(),
                };
                header = [
                    1,
                    body.len() as u64,
                    proba.as_ref().map_or(u64::MAX, |p| p.len() as u64),
                ];
                body.extend(proba.iter().flatten());
            }
            Err(e) => failure = e.clone(),
        }
    }
    root.broadcast_into(&mut header[..]);
    if header[0] == 0 {
        return Err(match mine {
            Some(_) => failure,
            None => "mpi.ml.forest: rank 0 could not fit the single-process reference (its \
                     error is in the point's record)"
                .to_string(),
        });
    }
    let n = header[1] as usize;
    let k = if header[2] == u64::MAX {
        0
    } else {
        header[2] as usize
    };
    body.resize(n + k, 0.0);
    root.broadcast_into(&mut body[..]);
    let pred = if classes {
        Prediction::Classes(body[..n].iter().map(|&v| v as u32).collect())
    } else {
        Prediction::Values(body[..n].to_vec())
    };
    let proba = (header[2] != u64::MAX).then(|| body[n..].to_vec());
    Ok((pred, proba))
}

/// Held-out predictions and probabilities (row-major), as [`predictions`] gives them.
type Predicted = (Prediction, Option<Vec<f64>>);

/// How many held-out rows of rank 0 every rank predicts to check that all grew the same forest.
const PROBE_ROWS: usize = 16;

/// Rank 0's first [`PROBE_ROWS`] held-out rows, broadcast to every rank (a dataset with their
/// features; its targets are not used).
fn share_probe(comm: &Comm, held: &Held) -> Dataset {
    use ::mpi::topology::Communicator;
    use ::mpi::traits::Root;
    let root = comm.process_at_rank(0);
    let p = held.data.features();
    let mut count = (held.data.rows() - held.train).min(PROBE_ROWS) as u64;
    root.broadcast_into(&mut count);
    let n = count as usize;
    let mut values = vec![0.0; n * p];
    if comm.rank() == 0 {
        let rows: Vec<usize> = (held.train..held.train + n).collect();
        values = held.data.x.select_rows(&rows).as_slice().to_vec();
    }
    root.broadcast_into(&mut values[..]);
    Dataset::new(
        "probe",
        Matrix::new(n, p, values).expect("n × p values"),
        DataTarget::Values(vec![0.0; n]),
        held.data.feature_names.clone(),
    )
    .expect("a probe dataset")
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
    /// The held rows from `x`, the feature values (columns `names`) of dataset rows `rows` (the training rows,
    /// `train` of them, then the held-out ones), and their targets from `data`'s target (its
    /// features are not read), with every held-out row's target (`all_test`).
    fn new(
        data: &Dataset,
        x: Matrix,
        names: Vec<String>,
        rows: &[usize],
        train: usize,
        all_test: &[usize],
    ) -> Result<Held, String> {
        let targets = |rows: &[usize]| match &data.y {
            DataTarget::Classes { labels, names } => DataTarget::Classes {
                labels: rows.iter().map(|&r| labels[r]).collect(),
                names: names.clone(),
            },
            DataTarget::Values(v) => DataTarget::Values(rows.iter().map(|&r| v[r]).collect()),
        };
        Ok(Held {
            data: Dataset::new(data.name.clone(), x, targets(rows), names)?,
            train,
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
    /// The single-process forest's held-out predictions and probabilities (`reference = "full"`).
    reference: Option<Predicted>,
    /// Rank 0's first held-out rows, which every rank predicts to check that all grew the same
    /// forest; `agreed` says whether the last run's predictions of them agreed on every rank.
    probe: Dataset,
    agreed: bool,
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
        let probe = &self.probe;
        let probe_rows: Vec<usize> = (0..probe.rows()).collect();
        let mut agreed = false;
        self.outcome = Some(model.and_then(|m| {
            // Every rank's predictions of the probe rows, gathered: they must be the same bits.
            let (pred, proba) = predictions(m.as_ref(), probe, &probe_rows);
            let mut bits: Vec<f64> = match pred {
                Prediction::Classes(c) => c.iter().map(|&c| f64::from(c)).collect(),
                Prediction::Values(v) => v,
            };
            bits.extend(proba.iter().flatten());
            let all = gather.gather(&bits);
            agreed = all
                .chunks(bits.len().max(1))
                .all(|c| c.iter().zip(&bits).all(|(a, b)| a.to_bits() == b.to_bits()));
            predict_sharded(m.as_ref(), &held.data, &own_test, n_test, &gather)
        }));
        self.agreed = agreed;
        self.predict_s = start.elapsed().as_secs_f64();
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = "mpi.ml.forest";
        let got = match self.outcome.take() {
            None => return Err(format!("{name}: no fit to check: run did not finish")),
            Some(Err(e)) => return Err(format!("{name}: the data-parallel fit failed: {e}")),
            Some(Ok(g)) => g,
        };
        if !self.agreed {
            return Err(format!(
                "{name}: rank {} of {}: the ranks' forests predict rank 0's first held-out rows \
                 differently: they did not grow the same forest",
                self.shard.rank, self.shard.size
            ));
        }
        if let Some(reference) = &self.reference {
            let same = match (&got.prediction, &reference.0) {
                (Prediction::Classes(a), Prediction::Classes(b)) => a == b,
                (Prediction::Values(a), Prediction::Values(b)) => {
                    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
                }
                _ => false,
            };
            let bits =
                |v: Option<&[f64]>| v.map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
            let proba = got.proba.as_ref().map(Matrix::as_slice);
            if !same || bits(proba) != bits(reference.1.as_deref()) {
                return Err(format!(
                    "{name}: rank {} of {}: the data-parallel forest's held-out predictions or \
                     probabilities differ from the single-process forest's",
                    self.shard.rank, self.shard.size
                ));
            }
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
            ("peak_rss_bytes", peak_rss_bytes()),
        ]
    }
}

/// This process's peak resident memory (`VmHWM` of /proc/self/status, Linux), in bytes; NaN
/// where it cannot be read. Measured, not estimated: it includes everything the rank allocated,
/// MPI's buffers and the single-process reference on rank 0 included.
fn peak_rss_bytes() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb * 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::test_params;

    /// A CSV file of `rows` × `cols` features and a class column `kind` in `dir`.
    fn csv(dir: &std::path::Path, rows: usize, cols: usize) -> String {
        let path = dir.join("wide.csv");
        let mut text: String = (0..cols).map(|c| format!("f{c},")).collect();
        text.push_str("kind\n");
        for r in 0..rows {
            for c in 0..cols {
                text.push_str(&format!("{},", (r * 31 + c * 7) % 101));
            }
            text.push_str(["a\n", "b\n"][r % 2]);
        }
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The plan's memory check counts a rank's shard when the ranks read only their rows, and
    /// the whole file on rank 0 alone with `reference = "full"`: a node that cannot hold a full
    /// copy per rank runs the point with `reference = "none"`, and with `"full"` is refused
    /// naming rank 0's extra and the fix.
    #[test]
    fn the_memory_check_counts_a_ranks_shard_of_a_csv_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = csv(dir.path(), 4000, 100);
        let (n, p) = (4000.0, 100.0);
        let whole = 8.0 * n * p + 4.0 * n + 2.0 * (2.0 * n * p);
        let shard = shard_bytes(4000, 100, 4);
        // 4 ranks on one node: a full copy each would not fit, their shards do.
        assert!(4.0 * shard < 0.3 * 4.0 * whole, "{shard} {whole}");
        let mut target = Target::test(1);
        target.resources.ranks = 4;
        target.node.memory_bytes = Some(((4.0 * shard + 0.5 * whole) / 0.9) as u64);
        let w = MpiForest;
        let point = |reference: &str| {
            test_params(
                MpiForest.description().params,
                &[
                    ("dataset", path.as_str()),
                    ("target", "kind"),
                    ("trees", "2"),
                    ("reference", reference),
                ],
            )
        };
        w.check(&point("none"), &target).unwrap();
        let err = w.check(&point("full"), &target).unwrap_err();
        assert!(
            err.starts_with("mpi.ml.forest needs ") && err.contains(" on rank 0 = "),
            "{err}"
        );
        assert!(
            err.ends_with("use a smaller dataset, or fewer threads fitting at once (parallelism)"),
            "{err}"
        );
        // Enough memory for rank 0's full copy besides the shards: "full" runs too.
        target.node.memory_bytes = Some(((4.0 * shard + 1.1 * whole) / 0.9) as u64);
        w.check(&point("full"), &target).unwrap();
    }

    #[test]
    fn an_unknown_reference_mode_is_refused_with_the_choices() {
        let mut p = test_params(MpiForest.description().params, &[]);
        p.0.insert("reference".into(), Value::Text("half".into()));
        assert_eq!(
            reference(&p).unwrap_err(),
            "mpi.ml.forest: reference = Text(\"half\"); use \"full\" or \"none\""
        );
    }
}

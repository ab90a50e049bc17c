//! What the data-parallel ML workloads (`mpi.ml.forest`, src/workload/ml/dataforest.rs, and
//! `mpi.ml.hgb`, src/workload/ml/dataparallel.rs) share: reading only a rank's rows, the
//! single-process reference, the ranks' agreement probe, sharded scoring, and the instance
//! that times the fit. Each workload says only which rows its fit reads and how it fits them
//! ([`Layout`], [`LocalFit`]).
//!
//! Every rank holds the same targets and takes the same stratified 3/4 training split as the
//! one-process fit workloads. It then keeps only its own rows — the rows its fit reads (its
//! contiguous shard of the training positions, and for boosting of early stopping's validation
//! rows) and its contiguous share of the held-out rows, copied out — plus the targets its fit
//! needs and the held-out targets, and releases the loaded dataset: the timed fit sees nothing
//! else.
//!
//! Reading: from a CSV file a rank never holds the whole data. It streams the file for the
//! target column ([`data::scan_csv`]: classes, the splits, the shard boundaries) and then parses
//! only its own rows' features ([`data::read_csv_rows`]); the plan-time check likewise scans the
//! targets and reads a sample of rows ([`csv_preview`]). Synthetic and built-in datasets are
//! still built whole on every rank (the generator draws one sequential stream, so a rank cannot
//! draw only its rows), then released after the copy-out.
//!
//! Scoring is sharded too: each rank predicts its contiguous share of the held-out rows and an
//! allgather gives every rank all predictions (and probabilities), in row order.
//!
//! Verification (parameter `reference`): with `"full"` rank 0 alone loads the whole dataset and
//! fits the single-process model (untimed) and broadcasts its held-out predictions and
//! probabilities; every repetition's gathered ones must equal them bit for bit, on every rank.
//! With `"none"` no reference is fitted: every rank predicts rank 0's first held-out rows (a
//! probe broadcast in `prepare`) and all must give the same bits, so the ranks grew the same
//! model; equality with one process rests on `"full"`, which the tests run.
//!
//! Metrics (maximum over ranks): the score, `fits`, `rows_per_rank`, `test_rows_per_rank`,
//! `allreduce_bytes` / `allreduce_calls` / `allreduce_s` (the fit's collectives), `fit_s` and
//! `predict_s` (the two timed phases), `data_bytes` (the bytes of data this rank holds: its
//! rows' values and targets, 8 bytes each, its training rows' codes, one byte a value
//! column-major and one row-major, the held-out targets and what [`Layout::extra_bytes`]
//! adds), which stays flat in weak scaling, and `peak_rss_bytes`, the rank's measured peak
//! resident memory.

use std::time::Instant;

use anyhow::anyhow;
use scalelab_ml::data::{self, Dataset, Matrix, Target as DataTarget};
use scalelab_ml::dataparallel::{HistogramReducer, Shard};
use scalelab_ml::estimator::{Estimator, FitOptions, Model, Prediction};

use super::dataparallel::{MpiReducer, Traffic};
use super::{csv_dataset, predictions, search, Kind, Ml, Setup};
use crate::value::Value;
use crate::workload::{Comm, Instance, Params, Target};

/// How a data-parallel workload fits the rows one rank holds.
pub(super) trait LocalFit {
    /// The timed fit: `held.data`'s first `held.train` rows are the rows it reads (the
    /// workload's [`Layout::fit_rows`], in that order); `reducer` sums over the ranks.
    fn fit(
        &self,
        held: &Held,
        seed: u64,
        options: FitOptions,
        shard: Shard,
        reducer: &dyn HistogramReducer,
    ) -> Result<Box<dyn Model>, String>;
    /// The estimator one process fits on the whole training rows (`reference = "full"`).
    fn one_process(&self) -> &dyn Estimator;
}

/// What a workload's fit reads on one rank, decided from the targets alone.
pub(super) struct Layout {
    /// This rank's dataset rows its fit reads, in the order the fit takes them.
    pub(super) fit_rows: Vec<usize>,
    /// How many of `fit_rows` (the first) are coded into bins.
    pub(super) coded: usize,
    /// The `rows_per_rank` metric.
    pub(super) rows_per_rank: usize,
    /// Bytes of data the fit holds besides the rows (counted in `data_bytes`).
    pub(super) extra_bytes: usize,
    pub(super) fit: Box<dyn LocalFit>,
}

/// The targets of `rows` of `y`, in that order (class names kept).
pub(super) fn select_targets(y: &DataTarget, rows: &[usize]) -> DataTarget {
    match y {
        DataTarget::Classes { labels, names } => DataTarget::Classes {
            labels: rows.iter().map(|&r| labels[r]).collect(),
            names: names.clone(),
        },
        DataTarget::Values(v) => DataTarget::Values(rows.iter().map(|&r| v[r]).collect()),
    }
}

/// The training rows (positions) of `n` dataset rows: 3/4 of them (the plain fit's split).
pub(super) fn train_rows(n: usize) -> usize {
    n - n.div_ceil(4)
}

/// The largest of `size` contiguous shards of `n` rows.
pub(super) fn largest(n: usize, size: usize) -> usize {
    (0..size)
        .map(|rank| Shard { rank, size }.range(n).len())
        .max()
        .unwrap_or(0)
}

/// The plan-time setup of workload `name` (`params` completed by the workload): for a CSV file
/// checked without holding it (its target column and a sample of its rows, [`csv_preview`]),
/// refusing with `full` a file too large for rank 0 to load whole; otherwise as the one-process
/// workloads check it. `model`: what the workload fits, for messages.
pub(super) fn check_setup(
    name: &str,
    model: &str,
    kind: Kind,
    params: &Params,
    full: bool,
) -> Result<Setup, String> {
    match csv_dataset(params) {
        Some((_, path)) => {
            if full {
                refuse_whole_too_big(name, path, model)?;
            }
            let preview = csv_preview(name, params, path)?;
            Ml(kind).setup_from(name, params, preview, true)
        }
        None => Ml(kind).setup_as(name, params, true),
    }
}

/// The plan's memory check of a data-parallel point: for a CSV file a rank's shard
/// ([`shard_bytes`]) plus `extra` (what the workload's fit keeps besides), and the whole
/// dataset on rank 0 alone with `reference = "full"`; for the other datasets a full copy per
/// rank (each builds the data whole before copying its rows out).
pub(super) fn check_memory(
    name: &str,
    params: &Params,
    setup: &Setup,
    target: &Target,
    full: bool,
    extra: f64,
) -> Result<(), String> {
    let ranks = target.resources.ranks as usize;
    let whole = setup.memory_bytes(target.resources.threads);
    let (per_rank, root_extra) = if csv_dataset(params).is_some() {
        (
            shard_bytes(setup.rows, setup.cols, ranks) + extra,
            if full { whole } else { 0.0 },
        )
    } else {
        (whole, 0.0)
    };
    target.fits_memory_with_root(name, per_rank, root_extra, super::memory_fix(params))
}

/// One rank of data-parallel workload `name` (`params` completed by the workload; `model`: what
/// it fits, for messages): the targets loaded (a CSV file's column streamed, or the dataset
/// built whole), the 3/4 training split, the rows `layout` says this rank's fit reads and its
/// share of the held-out rows copied out (a CSV file: read from the file alone), the reference
/// fitted on rank 0 with `reference = "full"`, the probe shared, and everything else released.
/// `check_ranks` refuses a rank count the dataset's rows cannot feed.
pub(super) fn prepare(
    name: &'static str,
    model: &'static str,
    kind: Kind,
    params: &Params,
    comm: &Comm,
    check_ranks: fn(&str, usize, usize) -> Result<(), String>,
    layout: impl FnOnce(&Setup, &[usize], Shard) -> Result<Layout, String>,
) -> anyhow::Result<Box<dyn Instance>> {
    use ::mpi::topology::Communicator;
    let mode = reference(name, params).map_err(|e| anyhow!(e))?;
    let csv = csv_dataset(params).map(|(_, path)| path.to_string());
    // A CSV file: its target column only (every rank needs all targets for the classes, the
    // splits and the shard boundaries); the features of this rank's rows are read below.
    let (loaded, names) = match &csv {
        Some(path) => scan_targets(name, params, path),
        None => super::load_dataset(name, params, false).map(|l| {
            let names = l.data.feature_names.clone();
            (l, names)
        }),
    }
    .map_err(|e| anyhow!(e))?;
    let mut setup = Ml(kind)
        .setup_from(name, params, loaded, false)
        .map_err(|e| anyhow!(e))?;
    check_ranks(name, setup.rows, comm.size() as usize).map_err(|e| anyhow!(e))?;
    let all: Vec<usize> = (0..setup.data.rows()).collect();
    let fold = search::split(&setup.data, &all, 4, scalelab_ml::child_seed(setup.seed, 1))
        .map_err(|e| anyhow!("{name}: {e}"))?
        .swap_remove(0);
    let shard = Shard {
        rank: comm.rank() as usize,
        size: comm.size() as usize,
    };
    let layout = layout(&setup, &fold.train, shard).map_err(|e| anyhow!(e))?;
    let own_test = &fold.test[shard.range(fold.test.len())];
    let own: Vec<usize> = layout.fit_rows.iter().chain(own_test).copied().collect();
    // This rank's rows: read from the file alone (a CSV), or copied out of the loaded data.
    let x = match &csv {
        Some(path) => {
            let target = super::text(params, "target").map_err(|e| anyhow!(e))?;
            data::read_csv_rows(std::path::Path::new(path), target, &own)
                .map_err(|e| anyhow!("{name}: {e}"))?
        }
        None => setup.data.x.select_rows(&own),
    };
    let held = Held::new(
        &setup.data,
        x,
        names,
        &own,
        layout.fit_rows.len(),
        &fold.test,
    )
    .map_err(|e| anyhow!("{name}: {e}"))?;
    // The single-process reference, fitted by rank 0 alone and sent to every rank.
    let reference = match mode {
        Reference::Full => {
            let mine = (shard.rank == 0).then(|| {
                let whole = match &csv {
                    Some(path) => {
                        let task = super::text(params, "task")?;
                        super::read_csv_dataset(name, params, path, task)?
                    }
                    None => std::mem::replace(&mut setup.data, empty(name)?),
                };
                let serial = FitOptions { parallel: false };
                let one = layout
                    .fit
                    .one_process()
                    .fit(&whole, &fold.train, None, setup.seed, serial)
                    .map_err(|e| format!("{name}: single-process reference fit: {e}"))?;
                Ok(predictions(one.as_ref(), &whole, &fold.test))
            });
            Some(
                share_reference(name, comm, mine, held.truth.y.labels().is_some())
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
    let data_bytes = 8 * held.data.rows() * (p + 1)
        + 2 * layout.coded * p
        + 8 * fold.test.len()
        + layout.extra_bytes;
    Ok(Box::new(ShardInstance {
        name,
        model,
        fit: layout.fit,
        rows_per_rank: layout.rows_per_rank,
        test_rows_per_rank: largest(fold.test.len(), shard.size),
        data_bytes,
        held,
        setup,
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

/// Where the single-process reference is fitted (parameter `reference`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reference {
    /// Rank 0 loads the whole dataset and fits it; every rank's result must equal it.
    Full,
    /// No reference: the ranks check that they grew the same model.
    None,
}

/// The point's `reference`; errors name workload `name`.
pub(super) fn reference(name: &str, params: &Params) -> Result<Reference, String> {
    match params.get("reference") {
        None => Ok(Reference::Full),
        Some(Value::Text(t)) if t == "full" => Ok(Reference::Full),
        Some(Value::Text(t)) if t == "none" => Ok(Reference::None),
        Some(other) => Err(format!(
            "{name}: reference = {other:?}; use \"full\" or \"none\""
        )),
    }
}

/// A dataset of no rows, standing for data released.
pub(super) fn empty(name: &str) -> Result<Dataset, String> {
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
pub(super) fn scan_targets(
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
pub(super) fn csv_preview(
    name: &str,
    params: &Params,
    path: &str,
) -> Result<super::Loaded, String> {
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
/// shards. `model`: what the workload fits ("forest", "model").
pub(super) fn refuse_whole_too_big(name: &str, path: &str, model: &str) -> Result<(), String> {
    match std::fs::metadata(path) {
        Ok(m) if m.len() > data::MAX_CSV_BYTES => Err(format!(
            "{name}: {path} is larger than {} GiB, the most one process loads whole, and \
             reference = \"full\" has rank 0 load it to fit the single-process {model}; set \
             reference = \"none\" (every rank reads only its rows; the ranks check that they \
             grew the same {model})",
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
/// rows' codes, the held-out targets). The fit rows are the 3/4 of the rows a point trains on
/// (`mpi.ml.hgb` adds the training targets it keeps).
pub(super) fn shard_bytes(rows: usize, cols: usize, ranks: usize) -> f64 {
    let test = rows.div_ceil(4);
    let (mt, ms) = (train_rows(rows).div_ceil(ranks), test.div_ceil(ranks));
    let (n, p) = (rows as f64, cols as f64);
    let (mt, ms, test) = (mt as f64, ms as f64, test as f64);
    16.0 * n + 48.0 * (mt + ms) + 8.0 * (mt + ms) * (p + 1.0) + 2.0 * mt * p + 8.0 * test
}

/// Rank 0's reference predictions (`mine`: rank 0 only) broadcast to every rank, or its error
/// on every rank (none waits for a message that will not come). `classes`: the predictions are
/// class indices; errors name workload `name`.
fn share_reference(
    name: &str,
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
            None => format!(
                "{name}: rank 0 could not fit the single-process reference (its error is in \
                 the point's record)"
            ),
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
pub(super) type Predicted = (Prediction, Option<Vec<f64>>);

/// How many held-out rows of rank 0 every rank predicts to check that all grew the same model.
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

/// The rows one rank holds for the timed fit and scoring: the rows its fit reads (training,
/// and for boosting early stopping's validation rows) then its held-out rows, copied out of the loaded dataset, and every held-out row's target (a dataset without
/// features) to score the gathered predictions against.
pub(super) struct Held {
    pub(super) data: Dataset,
    /// `data`'s first `train` rows are the rows the fit reads, the rest held out.
    pub(super) train: usize,
    pub(super) truth: Dataset,
}

impl Held {
    /// The held rows from `x`, the feature values (columns `names`) of dataset rows `rows` (the training rows,
    /// `train` of them, then the held-out ones), and their targets from `data`'s target (its
    /// features are not read), with every held-out row's target (`all_test`).
    pub(super) fn new(
        data: &Dataset,
        x: Matrix,
        names: Vec<String>,
        rows: &[usize],
        train: usize,
        all_test: &[usize],
    ) -> Result<Held, String> {
        let targets = |rows: &[usize]| select_targets(&data.y, rows);
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

/// One rank of a data-parallel fit.
struct ShardInstance {
    name: &'static str,
    /// What the workload fits, for messages ("forest", "model").
    model: &'static str,
    /// The fit of this rank's held rows.
    fit: Box<dyn LocalFit>,
    /// After `prepare`, `setup.data` holds only the held-out targets (`held.truth`).
    setup: Setup,
    /// This rank's rows.
    held: Held,
    /// The single-process model's held-out predictions and probabilities (`reference = "full"`).
    reference: Option<Predicted>,
    /// Rank 0's first held-out rows, which every rank predicts to check that all grew the same
    /// model; `agreed` says whether the last run's predictions of them agreed on every rank.
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

impl Instance for ShardInstance {
    fn run(&mut self) {
        let reducer = MpiReducer::new(&self.comm);
        let options = FitOptions { parallel: true };
        let start = Instant::now();
        let held = &self.held;
        let model = self
            .fit
            .fit(held, self.setup.seed, options, self.shard, &reducer);
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
        let (name, model) = (self.name, self.model);
        let got = match self.outcome.take() {
            None => return Err(format!("{name}: no fit to check: run did not finish")),
            Some(Err(e)) => return Err(format!("{name}: the data-parallel fit failed: {e}")),
            Some(Ok(g)) => g,
        };
        if !self.agreed {
            return Err(format!(
                "{name}: rank {} of {}: the ranks' {model}s predict rank 0's first held-out rows \
                 differently: they did not grow the same {model}",
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
                    "{name}: rank {} of {}: the data-parallel {model}'s held-out predictions or \
                     probabilities differ from the single-process {model}'s",
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
pub(super) fn peak_rss_bytes() -> f64 {
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

/// Test support shared by the forest's and the booster's memory-check tests: a wide CSV file and
/// the check of a point on it at 4 ranks on one node.
#[cfg(test)]
pub(crate) mod testing {
    use crate::workload::{test_params, Target, Workload};

    /// Rows and feature columns of [`wide_csv`].
    pub(crate) const ROWS: usize = 4000;
    pub(crate) const COLS: usize = 100;

    /// A CSV file of [`ROWS`] × [`COLS`] features and a class column `kind` in `dir`.
    pub(crate) fn wide_csv(dir: &std::path::Path) -> String {
        let path = dir.join("wide.csv");
        let mut text: String = (0..COLS).map(|c| format!("f{c},")).collect();
        text.push_str("kind\n");
        for r in 0..ROWS {
            for c in 0..COLS {
                text.push_str(&format!("{},", (r * 31 + c * 7) % 101));
            }
            text.push_str(["a\n", "b\n"][r % 2]);
        }
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// One process's estimate for [`wide_csv`]: the data and the hist codes of the reference and
    /// the fit.
    pub(crate) fn whole_bytes() -> f64 {
        let (n, p) = (ROWS as f64, COLS as f64);
        8.0 * n * p + 4.0 * n + 2.0 * (2.0 * n * p)
    }

    /// `w`'s point on the file at `path` with `reference`.
    pub(crate) fn point(w: &dyn Workload, path: &str, reference: &str) -> crate::workload::Params {
        test_params(
            w.description().params,
            &[
                ("dataset", path),
                ("target", "kind"),
                ("trees", "2"),
                ("reference", reference),
            ],
        )
    }

    /// With 4 ranks of `shard` bytes each on a node that cannot hold a full copy per rank, `w`
    /// (named `name`) runs `reference = "none"`, refuses `"full"` naming rank 0's extra and the
    /// fix, and runs `"full"` once the node holds rank 0's copy too. Returns the 4-rank target.
    pub(crate) fn assert_only_rank_zero_holds_the_file(
        w: &dyn Workload,
        name: &str,
        path: &str,
        shard: f64,
    ) -> Target {
        let whole = whole_bytes();
        assert!(4.0 * shard < 0.3 * 4.0 * whole, "{shard} {whole}");
        let mut target = Target::test(1);
        target.resources.ranks = 4;
        target.node.memory_bytes = Some(((4.0 * shard + 0.5 * whole) / 0.9) as u64);
        w.check(&point(w, path, "none"), &target).unwrap();
        let err = w.check(&point(w, path, "full"), &target).unwrap_err();
        assert!(
            err.starts_with(&format!("{name} needs ")) && err.contains(" on rank 0 = "),
            "{err}"
        );
        assert!(
            err.ends_with("use a smaller dataset, or fewer threads fitting at once (parallelism)"),
            "{err}"
        );
        target.node.memory_bytes = Some(((4.0 * shard + 1.1 * whole) / 0.9) as u64);
        w.check(&point(w, path, "full"), &target).unwrap();
        target
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::test_params;

    #[test]
    fn an_unknown_reference_mode_is_refused_with_the_choices() {
        let mut p = test_params(super::super::MPI_FOREST.params, &[]);
        p.0.insert("reference".into(), Value::Text("half".into()));
        assert_eq!(
            reference("mpi.ml.forest", &p).unwrap_err(),
            "mpi.ml.forest: reference = Text(\"half\"); use \"full\" or \"none\""
        );
    }
}

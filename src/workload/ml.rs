//! Adapters from `scalelab-ml` to [`Workload`]: ensemble fits (`forest.fit`, `adaboost.fit`,
//! `gboost.fit`, `stacking.fit`) and model selection (`cv.kfold`, `cv.nested`).
//!
//! The work unit is the model fit: every instance reports `fits` per repetition as a metric (one for
//! the fit workloads; candidates × folds for `cv.kfold`; outer × candidates × (inner + 1) for
//! `cv.nested`), and the report divides it by the time (`fits/s`, see `docs/ml.md`). [`Work`] stays
//! zero: a fit has no meaningful FLOP or byte count.
//!
//! Verification ("a fast wrong answer fails"): `prepare` computes a serial reference (fits with
//! [`FitOptions::parallel`] off, the search with [`Parallelism::Serial`]) outside the timed region.
//! Every repetition must then agree with it bit for bit: the fit workloads compare the fitted
//! model's predictions (and probabilities) on the held-out rows, the cv workloads every task's score
//! and prediction fingerprint and the selection. Seeds derive from the `seed` parameter and unit
//! indices only, so any thread or rank count gives the same models. After checking, `verify` drops
//! the result, so each repetition is checked on what it computed itself.
//!
//! Quality is recorded beside the time: `accuracy` (or the scoring's value) of the fit workloads on
//! a stratified held-out quarter of the rows; `cv_score` for `cv.kfold`; `nested_score` and
//! `non_nested_score` for `cv.nested`, plus `nested_accuracy` / `non_nested_accuracy` when the
//! scoring is accuracy.
//!
//! Datasets: a built-in name (`iris`, `breast_cancer`, ...), `synthetic` (scikit-learn's
//! `make_classification` with `size` samples and `features` features), or a path to a CSV file
//! (ending in `.csv` or holding a `/`; a relative path is resolved against the manifest's folder when
//! the plan is made, and the plan records the file's sha256, which the point checks) whose target column is `target`.
//!
//! Under MPI (`prepare_mpi`, feature `mpi`) the cv workloads distribute their task list over the
//! ranks (`distribution = "static"`: task i on rank i mod size; `"dynamic"`: rank 0 hands tasks
//! out one at a time) and gather the results on rank 0, which broadcasts them; every rank then
//! checks the same full result against its reference.

use std::path::Path;

use anyhow::anyhow;
use scalelab_ml::data::{self, Dataset, Synthetic};
use scalelab_ml::estimator::{Estimator, FitOptions, HyperParams, Model, Prediction};
use scalelab_ml::estimators;
use scalelab_ml::metrics::Scoring;
use scalelab_ml::pipeline::{self, Pipeline, Step};
use scalelab_ml::search::{self, Parallelism, ParamGrid, Search};

use super::{
    int_param, sample_count, to_usize, Backend, Description, Instance, ParamKind, ParamSpec,
    Params, Target, Work, Workload,
};
use crate::value::Value;

#[cfg(feature = "mpi")]
mod dataparallel;
#[cfg(feature = "mpi")]
pub use dataparallel::MpiHgb;
#[cfg(feature = "mpi")]
mod dataforest;
#[cfg(feature = "mpi")]
pub use dataforest::MpiForest;
#[cfg(feature = "mpi")]
mod shardrows;

/// The ML workloads: which one, and so its defaults and its computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Forest,
    AdaBoost,
    GBoost,
    Stacking,
    KFold,
    Nested,
}

/// One ML workload of the registry.
pub struct Ml(pub Kind);

const SCORINGS: &[&str] = &[
    "auto",
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "roc_auc",
    "neg_log_loss",
    "r2",
    "neg_root_mean_squared_error",
];
const SEARCHES: &[&str] = &["grid", "random"];
const DISTRIBUTIONS: &[&str] = &["static", "dynamic"];

macro_rules! spec {
    ($name:expr, $kind:expr, $default:expr, $doc:expr) => {
        ParamSpec {
            name: $name,
            kind: $kind,
            default: $default,
            doc: $doc,
        }
    };
}

const DATASET: ParamSpec = spec!(
    "dataset",
    ParamKind::Text,
    "synthetic",
    "a built-in dataset (iris, breast_cancer, digits, wine_quality, diabetes), `synthetic`, `noise` (no signal: chance accuracy), or a CSV path"
);
const SIZE: ParamSpec = spec!(
    "size",
    ParamKind::Size,
    "2000",
    "samples of the synthetic dataset (ignored for the others; weak scaling grows it)"
);
const FEATURES: ParamSpec = spec!(
    "features",
    ParamKind::Int,
    "20",
    "features of the synthetic dataset (half of them informative)"
);
const CLASSES: ParamSpec = spec!(
    "classes",
    ParamKind::Int,
    "2",
    "classes of the synthetic dataset"
);
const TARGET: ParamSpec = spec!(
    "target",
    ParamKind::Text,
    "target",
    "the target column of a CSV dataset"
);
const TREES: ParamSpec = spec!(
    "trees",
    ParamKind::Int,
    "100",
    "n_estimators of the estimator (max_iter of hist_gradient_boosting), when it has one"
);
const PIPELINE_FITS: &[&str] = &["folds", "all_rows"];
const PIPELINE: ParamSpec = spec!(
    "pipeline",
    ParamKind::Text,
    "none",
    "preprocessing fitted inside each training fold, steps joined by `>`: \"standard_scaler > select_k_best:10\" (standard_scaler, minmax_scaler, one_hot:COLS, polynomial:D, pca:K, select_k_best:K)"
);
const PIPELINE_FIT: ParamSpec = spec!(
    "pipeline_fit",
    ParamKind::Choice(PIPELINE_FITS),
    "folds",
    "folds: fit the pipeline on each training set (honest); all_rows: once on every row before splitting (the leakage lesson: optimistic)"
);
const TASKS: &[&str] = &["auto", "classification", "regression"];
const TASK: ParamSpec = spec!(
    "task",
    ParamKind::Choice(TASKS),
    "auto",
    "what the target is: auto (classes when any value is not a number, or when all are integers with at most 20 distinct values; real values otherwise), classification or regression"
);
const HYPER: ParamSpec = spec!(
    "hyper",
    ParamKind::Text,
    "",
    "more hyperparameters, one value each: a [study.hyper] table (max_depth = 8), or the older string \"max_depth=8; max_features=sqrt\""
);
const SCORING: ParamSpec = spec!(
    "scoring",
    ParamKind::Choice(SCORINGS),
    "auto",
    "what to score: auto (accuracy for classes, r2 for values) or a scikit-learn scoring name"
);
const SEED: ParamSpec = spec!(
    "seed",
    ParamKind::Int,
    "42",
    "seed of the data, folds and fits"
);
const PARALLELISM: ParamSpec = spec!(
    "parallelism",
    ParamKind::Choice(Parallelism::NAMES),
    "all",
    "the level run in parallel: trees | folds | grid | all | serial"
);
const SEARCH: ParamSpec = spec!(
    "search",
    ParamKind::Choice(SEARCHES),
    "grid",
    "every candidate of the grid, or `n_iter` drawn at random"
);
const N_ITER: ParamSpec = spec!(
    "n_iter",
    ParamKind::Int,
    "10",
    "candidates of a random search"
);
const DISTRIBUTION: ParamSpec = spec!(
    "distribution",
    ParamKind::Choice(DISTRIBUTIONS),
    "static",
    "under MPI: static (task i on rank i mod size) or dynamic (rank 0 hands tasks out)"
);

macro_rules! estimator_spec {
    ($default:expr) => {
        spec!(
            "estimator",
            ParamKind::Text,
            $default,
            "the estimator (scalelab-ml's name, e.g. random_forest)"
        )
    };
}

const FOREST_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("random_forest"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    SCORING,
    SEED,
];
const ADABOOST_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("adaboost"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    SCORING,
    SEED,
];
const GBOOST_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("gradient_boosting"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    SCORING,
    SEED,
];
const STACKING_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("stacking"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    SCORING,
    SEED,
];
const KFOLD_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("random_forest"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    spec!(
        "grid",
        ParamKind::Text,
        "",
        "candidates to compare: a [study.grid] table (max_depth = [4, 8]), or the older string \"max_depth=4,8; max_features=sqrt,0.5\"; empty: the estimator alone"
    ),
    SEARCH,
    N_ITER,
    spec!("folds", ParamKind::Int, "5", "folds (stratified for classes)"),
    SCORING,
    PARALLELISM,
    SEED,
];
const NESTED_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("random_forest"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    spec!(
        "grid",
        ParamKind::Text,
        "max_depth=4,8; max_features=sqrt,0.5",
        "candidates to select from: a [study.grid] table (max_depth = [4, 8]), or the older string \"max_depth=4,8; max_features=sqrt,0.5\""
    ),
    SEARCH,
    N_ITER,
    spec!("outer", ParamKind::Int, "5", "outer folds (evaluation)"),
    spec!("inner", ParamKind::Int, "3", "inner folds (selection)"),
    SCORING,
    PARALLELISM,
    SEED,
];

/// The parameters of `mpi.cv.kfold` and `mpi.cv.nested`: those of the rayon workload and
/// `distribution`, before the last (`seed`). `N` is the rayon workload's count plus one.
const fn with_distribution<const N: usize>(base: &[ParamSpec]) -> [ParamSpec; N] {
    assert!(base.len() + 1 == N);
    let mut out = [DISTRIBUTION; N];
    let mut i = 0;
    while i < base.len() {
        // Before the last: the first N - 2 keep their place, the last moves one on.
        out[if i + 1 == base.len() { i + 1 } else { i }] = base[i];
        i += 1;
    }
    out
}

const MPI_KFOLD_PARAMS: [ParamSpec; KFOLD_PARAMS.len() + 1] = with_distribution(KFOLD_PARAMS);
const MPI_NESTED_PARAMS: [ParamSpec; NESTED_PARAMS.len() + 1] = with_distribution(NESTED_PARAMS);

// ---------------------------------------------------------------------------------------------
// What each workload is

/// The ML workloads, as `scalelab list` shows them.
pub const FOREST: Description = Description::new(
    "forest.fit",
    "fit a random forest (or any estimator) on 3/4 of a dataset; work: fits",
    Backend::Rayon,
    FOREST_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
pub const ADABOOST: Description = Description::new(
    "adaboost.fit",
    "fit AdaBoost on 3/4 of a dataset; work: fits",
    Backend::Rayon,
    ADABOOST_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
pub const GBOOST: Description = Description::new(
    "gboost.fit",
    "fit gradient boosting on 3/4 of a dataset; work: fits",
    Backend::Rayon,
    GBOOST_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
pub const STACKING: Description = Description::new(
    "stacking.fit",
    "fit a stacking ensemble on 3/4 of a dataset; work: fits",
    Backend::Rayon,
    STACKING_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
pub const KFOLD: Description = Description::new(
    "cv.kfold",
    "k-fold cross-validation of a grid of candidates; work: fits",
    Backend::Rayon,
    KFOLD_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
pub const NESTED: Description = Description::new(
    "cv.nested",
    "nested cross-validation (outer evaluation, inner grid selection); work: fits",
    Backend::Rayon,
    NESTED_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
/// `mpi.cv.kfold` and `mpi.cv.nested` (the workloads need the `mpi` feature; their descriptions
/// do not).
pub const MPI_KFOLD: Description = Description::new(
    "mpi.cv.kfold",
    "cv.kfold with its fits distributed over MPI ranks (static or dynamic); work: fits",
    Backend::Mpi,
    &MPI_KFOLD_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
pub const MPI_NESTED: Description = Description::new(
    "mpi.cv.nested",
    "cv.nested with its fits distributed over MPI ranks (static or dynamic); work: fits",
    Backend::Mpi,
    &MPI_NESTED_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
/// `mpi.ml.hgb` (src/workload/ml/dataparallel.rs, feature `mpi`), described in every build.
pub const MPI_HGB: Description = Description::new(
    "mpi.ml.hgb",
    "hist gradient boosting with the training rows split over MPI ranks, histograms summed by \
     allreduce, held-out rows scored sharded (the one-process model bit for bit); work: fits",
    Backend::Mpi,
    MPI_HGB_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);
/// The parameters of `mpi.ml.hgb`: `gboost.fit`'s, less the estimator and the pipeline (fixed),
/// and where the single-process reference is fitted.
const MPI_HGB_PARAMS: &[ParamSpec] = &[
    DATASET, SIZE, FEATURES, CLASSES, TARGET, TASK, TREES, HYPER, SCORING, SEED, REFERENCE,
];
/// `mpi.ml.forest` (src/workload/ml/dataforest.rs, feature `mpi`), described in every build.
pub const MPI_FOREST: Description = Description::new(
    "mpi.ml.forest",
    "hist random forest with the training rows split over MPI ranks, histograms summed by \
     allreduce, held-out rows scored sharded (the one-process forest bit for bit); work: fits",
    Backend::Mpi,
    MPI_FOREST_PARAMS,
)
.size_unit("samples");
/// The parameters of `mpi.ml.forest`: those of `mpi.ml.hgb`.
const MPI_FOREST_PARAMS: &[ParamSpec] = &[
    DATASET, SIZE, FEATURES, CLASSES, TARGET, TASK, TREES, HYPER, SCORING, SEED, REFERENCE,
];
const REFERENCES: &[&str] = &["full", "none"];
const REFERENCE: ParamSpec = spec!(
    "reference",
    ParamKind::Choice(REFERENCES),
    "full",
    "full: rank 0 alone loads the whole dataset and fits the single-process model, which every rank's result must equal bit for bit; none: no rank holds the whole dataset (a CSV file's ranks read only their rows) and the ranks check only that they grew the same model"
);
/// `ml.predict`, as `scalelab list` shows it.
pub const PREDICT: Description = Description::new(
    "ml.predict",
    "predict every row of a dataset with a model fitted once, in parallel batches; work: rows",
    Backend::Rayon,
    PREDICT_PARAMS,
)
.size_unit("samples")
.applies(ml_param_applies);

/// Whether parameter `key` means anything for an ML point ([`Description::applies`]): the
/// synthetic-data settings (`size`, `features`, `classes`) do not when it reads a built-in
/// dataset or a CSV file, `target` only names a CSV file's column, `n_iter` counts a random
/// search's candidates, `pipeline_fit` places a pipeline only where there is one, and `trees`
/// sizes only estimators that are ensembles.
pub(crate) fn ml_param_applies(params: &Params, key: &str) -> bool {
    if let Some(applies) = dataset_param_applies(params, key) {
        return applies;
    }
    let text = |k: &str| match params.get(k) {
        Some(Value::Text(t)) => Some(t.as_str()),
        _ => None,
    };
    match key {
        // Candidates drawn by a random search only.
        "n_iter" => text("search").is_none_or(|s| s == "random"),
        // Where the preprocessing is fitted, when there is one.
        "pipeline_fit" => text("pipeline").is_none_or(|p| p != "none"),
        // The ensemble size of estimators that have one (n_estimators, max_iter).
        "trees" => text("estimator").is_none_or(|e| {
            scalelab_ml::estimators::specs(e).is_none_or(|specs| {
                specs
                    .iter()
                    .any(|s| s.name == "n_estimators" || s.name == "max_iter")
            })
        }),
        _ => true,
    }
}

/// The dataset's part of [`ml_param_applies`], shared with `mpi.train`: `Some` for the
/// synthetic-data settings and `target`, `None` for every other parameter.
pub(crate) fn dataset_param_applies(params: &Params, key: &str) -> Option<bool> {
    let Some(Value::Text(dataset)) = params.get("dataset") else {
        return None;
    };
    match key {
        "size" | "features" | "classes" => Some(dataset == "synthetic"),
        // The target column names a column of a CSV file only.
        "target" => Some(dataset.ends_with(".csv") || dataset.contains('/')),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Reading the parameters

use super::training::{count, text};

/// The `dataset` parameter when it names a CSV file (ends in `.csv` or holds a `/`); shared with
/// `mpi.train`.
pub(crate) fn csv_dataset(params: &Params) -> Option<(&'static str, &str)> {
    match params.get("dataset") {
        Some(Value::Text(d)) if d.ends_with(".csv") || d.contains('/') => Some(("dataset", d)),
        _ => None,
    }
}

/// Most classes a synthetic dataset may have: the generator picks one distinct hypercube vertex
/// per cluster by rejection (quadratic in the clusters), and a benchmark with more classes than
/// this measures label bookkeeping rather than fitting.
pub(crate) const MAX_CLASSES: usize = 1000;

/// Largest stand-in a check generates for a synthetic dataset: the full spec is validated, but the
/// data checked against (scoring, estimator, folds) has at most this many samples and features.
/// Generating the real data at check time would cost O(samples · (features/2)²) time and
/// 8·(features/2)² bytes per cluster (the informative features are mixed by a square matrix).
const PREVIEW_SAMPLES: usize = 1000;
const PREVIEW_FEATURES: usize = 64;

/// The synthetic dataset a point describes (`size` samples, `features`, `classes`, `seed`).
fn synthetic_spec(name: &str, params: &Params) -> Result<Synthetic, String> {
    let samples = to_usize(sample_count(name, params)?, "size")?;
    let features = count(params, "features")?;
    let classes = count(params, "classes")?;
    if classes > MAX_CLASSES {
        return Err(format!(
            "{name}: classes = {classes} is more than the limit of {MAX_CLASSES} for the synthetic dataset; use fewer classes"
        ));
    }
    Ok(Synthetic {
        samples,
        features,
        informative: features.div_ceil(2),
        redundant: 0,
        classes,
        seed: int_param(params, "seed")?,
        ..Synthetic::default()
    })
}

/// A dataset as far as a point needs it: the data itself (a small stand-in for a synthetic one
/// while checking), and the shape and generator memory of the real one.
struct Loaded {
    data: Dataset,
    rows: usize,
    cols: usize,
    /// Bytes the synthetic generator holds besides the data (one cluster's mixing matrix).
    generator_bytes: f64,
}

/// The dataset a point names. With `preview` (checking a manifest), a synthetic dataset is
/// validated in full but generated only as a stand-in of at most [`PREVIEW_SAMPLES`] ×
/// [`PREVIEW_FEATURES`]: with the same classes, hypercube and seed, that is enough to check the
/// scoring, the estimator and the folds.
fn load_dataset(name: &str, params: &Params, preview: bool) -> Result<Loaded, String> {
    let dataset = text(params, "dataset")?;
    let task = text(params, "task")?;
    match dataset {
        "noise" => noise_dataset(name, params, task, preview),
        "synthetic" => synthetic_dataset(name, params, task, preview),
        _ => {
            let data = if dataset.ends_with(".csv") || dataset.contains('/') {
                read_csv_dataset(name, params, dataset, task)?
            } else {
                builtin_dataset(name, dataset, task)?
            };
            check_two_classes(name, dataset, &data)?;
            let (rows, cols) = (data.rows(), data.x.cols());
            Ok(Loaded {
                data,
                rows,
                cols,
                generator_bytes: 0.0,
            })
        }
    }
}

/// The `noise` dataset (features independent of the classes), a stand-in of at most
/// [`PREVIEW_SAMPLES`] rows with `preview`.
fn noise_dataset(name: &str, params: &Params, task: &str, preview: bool) -> Result<Loaded, String> {
    if task == "regression" {
        return Err(format!(
            "{name}: task = \"regression\" does not fit the noise dataset, whose target is \
             classes; use task = \"auto\""
        ));
    }
    let spec = synthetic_spec(name, params)?;
    let (rows, cols) = (spec.samples, spec.features);
    let shown = if preview {
        rows.min(PREVIEW_SAMPLES)
    } else {
        rows
    };
    let data = data::make_noise(shown, cols, spec.classes, spec.seed)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(Loaded {
        data,
        rows,
        cols,
        generator_bytes: 0.0,
    })
}

/// The `synthetic` dataset (`make_classification`), a stand-in of at most [`PREVIEW_SAMPLES`] ×
/// [`PREVIEW_FEATURES`] with `preview`; the generator's mixing matrix counted in its memory.
fn synthetic_dataset(
    name: &str,
    params: &Params,
    task: &str,
    preview: bool,
) -> Result<Loaded, String> {
    if task == "regression" {
        return Err(format!(
            "{name}: task = \"regression\" does not fit the synthetic dataset, whose target \
             is classes; use task = \"auto\", or a CSV dataset with a numeric target"
        ));
    }
    let spec = synthetic_spec(name, params)?;
    let (rows, cols) = (spec.samples, spec.features);
    let k = spec.informative as f64;
    let generated = if preview {
        let features = cols.min(PREVIEW_FEATURES);
        Synthetic {
            samples: rows.min(PREVIEW_SAMPLES),
            features,
            informative: features.div_ceil(2),
            ..spec
        }
    } else {
        spec
    };
    let data = data::make_classification(&generated).map_err(|e| format!("{name}: {e}"))?;
    Ok(Loaded {
        data,
        rows,
        cols,
        generator_bytes: 8.0 * k * k,
    })
}

/// A CSV file with the study's `target` column, read for `task`.
fn read_csv_dataset(
    name: &str,
    params: &Params,
    path: &str,
    task: &str,
) -> Result<Dataset, String> {
    let target = text(params, "target")?;
    let rule = match task {
        "classification" => data::Task::Classification,
        "regression" => data::Task::Regression,
        _ => data::Task::Auto,
    };
    data::load_csv(Path::new(path), target, rule).map_err(|e| {
        if e.contains(&format!("no column `{target}`")) {
            format!("{name}: {e} (the study's `target` key names the target column)")
        } else {
            format!("{name}: {e}")
        }
    })
}

/// A built-in dataset, refused when its target does not fit `task`.
fn builtin_dataset(name: &str, dataset: &str, task: &str) -> Result<Dataset, String> {
    let data = data::load(dataset).map_err(|e| format!("{name}: {e}"))?;
    let classes = data.y.labels().is_some();
    if (task == "regression" && classes) || (task == "classification" && !classes) {
        return Err(format!(
            "{name}: task = \"{task}\" does not fit dataset `{dataset}`, whose target is {}; \
             use task = \"auto\"",
            if classes { "classes" } else { "real values" }
        ));
    }
    Ok(data)
}

/// A classification dataset needs two classes present.
fn check_two_classes(name: &str, dataset: &str, data: &Dataset) -> Result<(), String> {
    let Some(labels) = data.y.labels() else {
        return Ok(());
    };
    let present = labels.iter().collect::<std::collections::BTreeSet<_>>();
    if present.len() < 2 {
        let data::Target::Classes { names, .. } = &data.y else {
            unreachable!("labels() is Some only for classes")
        };
        let only = labels.first().map_or("", |&l| names[l as usize].as_str());
        return Err(format!(
            "{name}: dataset `{dataset}` has one class (`{only}`) in all {} rows; \
             classification needs at least two (check the target column, or set \
             task = \"regression\" for a numeric target)",
            data.rows()
        ));
    }
    Ok(())
}

/// `data` with the pipeline's steps fitted on every row and applied: the leak
/// `pipeline_fit = "all_rows"` asks for, on purpose (the steps see the test folds too).
fn fit_on_all_rows(name: &str, steps: &[Step], data: &Dataset) -> Result<Dataset, String> {
    let all: Vec<usize> = (0..data.rows()).collect();
    pipeline::fit_steps(steps, data, &all)
        .and_then(|f| pipeline::transform_dataset(&f, data))
        .map_err(|e| format!("{name}: `pipeline`: {e}"))
}

/// An estimator's refusal of one grid candidate, naming the candidate unless it is the base.
fn candidate_error(name: &str, g: &HyperParams, e: String) -> String {
    if g.is_empty() {
        format!("{name}: {e}")
    } else {
        format!(
            "{name}: grid candidate {}: {e}",
            search::format_candidate(g)
        )
    }
}

/// The estimator's hyperparameters: `trees` as `n_estimators` (or `max_iter`) when the estimator
/// has that parameter, then `hyper`'s single values.
fn base_params(name: &str, params: &Params) -> Result<(String, HyperParams), String> {
    let estimator = text(params, "estimator")?.to_string();
    if estimators::specs(&estimator).is_none() {
        let hint =
            match crate::value::nearest(&estimator, estimators::NAMES.iter().copied()).first() {
                Some(n) => format!("did you mean `{n}`? "),
                None => String::new(),
            };
        return Err(format!(
            "{name}: unknown estimator `{estimator}`; {hint}known: {}",
            estimators::NAMES.join(", ")
        ));
    }
    let mut base = HyperParams::new();
    if let Some(key) = estimators::ensemble_size(&estimator) {
        let trees = int_param(params, "trees")?;
        base.insert(key.into(), scalelab_ml::estimator::Hp::Int(trees as i64));
    }
    let hyper = text(params, "hyper")?;
    if !hyper.trim().is_empty() {
        let grid = ParamGrid::parse(hyper).map_err(|e| format!("{name}: `hyper`: {e}"))?;
        if let Some((k, v)) = grid.axes.iter().find(|(_, v)| v.len() != 1) {
            return Err(format!(
                "{name}: `hyper` gives `{k}` {} values; give one value each (a list belongs in `grid`)",
                v.len()
            ));
        }
        base = search::merge(&base, &grid.candidate(0));
    }
    Ok((estimator, base))
}

fn scoring(name: &str, params: &Params, data: &Dataset) -> Result<Scoring, String> {
    // `ml.predict` scores nothing and has no `scoring` key.
    let s = match text(params, "scoring").unwrap_or("auto") {
        "auto" => Scoring::default_for(&data.y),
        other => Scoring::parse(other)?,
    };
    if s.for_classes() != data.y.labels().is_some() {
        let kind = if data.y.labels().is_some() {
            "classes"
        } else {
            "real values"
        };
        return Err(format!(
            "{name}: scoring `{}` does not fit dataset `{}`, whose target is {kind}; use scoring = \"auto\"",
            s.name(),
            data.name
        ));
    }
    Ok(s)
}

/// The candidates of a cv workload: the grid's values (all, or `n_iter` at random; one empty
/// candidate when `grid` is empty, allowed for `cv.kfold` only), to merge over the base.
fn candidates(name: &str, kind: Kind, params: &Params) -> Result<Vec<HyperParams>, String> {
    let grid_text = text(params, "grid")?;
    if grid_text.trim().is_empty() && kind == Kind::KFold {
        return Ok(vec![HyperParams::new()]);
    }
    let grid = ParamGrid::parse(grid_text).map_err(|e| format!("{name}: `grid`: {e}"))?;
    let picked = match text(params, "search")? {
        "random" => grid.sample(count(params, "n_iter")?, int_param(params, "seed")?),
        _ => grid.candidates(),
    };
    Ok(picked)
}

/// The estimator `name` with hyperparameters `p`, inside a [`Pipeline`] when `steps` is not empty
/// (the steps are then fitted on each training set the estimator is given).
fn build<'a>(
    name: &'a str,
    steps: &'a [Step],
) -> impl Fn(&HyperParams) -> Result<Box<dyn Estimator>, String> + Send + Sync + 'a {
    move |p: &HyperParams| {
        let e = estimators::build(name, p)?;
        Ok(if steps.is_empty() {
            e
        } else {
            Box::new(Pipeline::new(steps.to_vec(), e))
        })
    }
}

/// What `scalelab plan` says under an ML study: how a CSV target was read (the `task` rule), and
/// scikit-learn's warning when a class has fewer rows than the folds that should each hold it.
fn plan_notes(name: &str, kind: Kind, params: &Params) -> Vec<String> {
    let Ok(Loaded { data, .. }) = load_dataset(name, params, true) else {
        return Vec::new(); // the check reports the error
    };
    let mut notes: Vec<String> = trees_overridden(params).into_iter().collect();
    let task = text(params, "task").unwrap_or("auto");
    if let Some((_, path)) = csv_dataset(params) {
        let target = text(params, "target").unwrap_or("target");
        let read = match &data.y {
            data::Target::Classes { names, .. } => {
                let why = if names.iter().all(|n| n.parse::<f64>().is_ok()) {
                    format!(
                        "integers with at most {} distinct values",
                        data::AUTO_MAX_CLASSES
                    )
                } else {
                    "values that are not numbers".to_string()
                };
                let rule = if task == "auto" {
                    format!(", task = \"auto\": {why}")
                } else {
                    String::new()
                };
                format!("classification, {} classes{rule}", names.len())
            }
            data::Target::Values(_) => {
                let rule = if task == "auto" {
                    format!(
                        ", task = \"auto\": numbers that are not all integers, or more than {} \
                         distinct integers",
                        data::AUTO_MAX_CLASSES
                    )
                } else {
                    String::new()
                };
                format!("regression{rule}")
            }
        };
        notes.push(format!("dataset {path}: target `{target}` read as {read}"));
    }
    let folds = match kind {
        Kind::KFold => count(params, "folds"),
        Kind::Nested => count(params, "outer"),
        _ => return notes,
    };
    if let (Ok(folds), data::Target::Classes { labels, names }) = (folds, &data.y) {
        let mut rows = vec![0usize; names.len()];
        labels.iter().for_each(|&l| rows[l as usize] += 1);
        if let Some((c, &n)) = rows
            .iter()
            .enumerate()
            .filter(|(_, &n)| n > 0)
            .min_by_key(|(_, &n)| n)
            .filter(|(_, &n)| n < folds)
        {
            notes.push(format!(
                "warning: class `{}` has only {n} row{} in dataset `{}`, fewer than the {folds} \
                 folds: some test folds hold none of it",
                names[c],
                if n == 1 { "" } else { "s" },
                text(params, "dataset").unwrap_or("")
            ));
        }
    }
    notes
}

/// The note that `hyper` sets the ensemble size itself (`n_estimators = "auto"`, or a number), so
/// the `trees` key, which the plan still shows with its default, is not used.
fn trees_overridden(params: &Params) -> Option<String> {
    let estimator = text(params, "estimator").ok()?;
    let key = estimators::ensemble_size(estimator)?;
    let grid = ParamGrid::parse(text(params, "hyper").ok()?).ok()?;
    let (_, values) = grid.axes.iter().find(|(k, _)| k == key)?;
    let trees = int_param(params, "trees").ok()?;
    Some(format!(
        "{estimator}: `hyper` sets {key} = {}, so `trees` = {trees} is not used",
        search::grid::format_value(values.first()?)
    ))
}

/// Rows a check-time trial fit uses at most.
const TRIAL_ROWS: usize = 256;

/// Fit `estimator` once, as a check, on at most [`TRIAL_ROWS`] rows spread evenly over `data` and
/// with an ensemble of one, so a setting that cannot fit this data (`max_features = 50` on two
/// features, a regression criterion on classes) is refused by `scalelab plan` with the message the
/// real fit would give, instead of failing every point at run time. One generic trial rather than
/// a rule per estimator: the estimators' own checks stay the only source of truth.
fn trial_fit(
    estimator: &str,
    steps: &[Step],
    params: &HyperParams,
    data: &Dataset,
    seed: u64,
) -> Result<(), String> {
    let mut params = params.clone();
    if let Some(key) = estimators::ensemble_size(estimator) {
        params.insert(key.into(), scalelab_ml::estimator::Hp::Int(1));
    }
    let n = data.rows();
    let take = n.min(TRIAL_ROWS);
    let rows: Vec<usize> = (0..take).map(|i| i * n / take).collect();
    let options = FitOptions { parallel: false };
    build(estimator, steps)(&params)?
        .fit(data, &rows, None, seed, options)
        .map(drop)
}

/// The fix a refusal for memory names.
fn memory_fix(params: &Params) -> &'static str {
    if matches!(text(params, "dataset"), Ok("synthetic" | "noise")) {
        "use a smaller `size` (samples) or fewer `features`"
    } else {
        "use a smaller dataset, or fewer threads fitting at once (parallelism)"
    }
}

/// Everything a point needs, read and checked.
struct Setup {
    data: Dataset,
    /// Rows, columns and generator bytes of the real dataset (`data` is a stand-in while checking).
    rows: usize,
    cols: usize,
    generator_bytes: f64,
    estimator: String,
    /// Preprocessing fitted inside each training set (empty with `pipeline_fit = "all_rows"`,
    /// where `data` is already transformed).
    steps: Vec<Step>,
    base: HyperParams,
    candidates: Vec<HyperParams>,
    scoring: Scoring,
    seed: u64,
    parallelism: Parallelism,
    folds: (usize, usize),
    /// Dynamic hand-out of tasks under MPI.
    #[cfg_attr(not(feature = "mpi"), allow(dead_code))]
    dynamic: bool,
}

impl Setup {
    /// Estimated bytes one rank allocates: the data (8 bytes a value, 4 a label), the synthetic
    /// generator's mixing matrix, and per fit running at once a view of the data: for the tree
    /// learners 12 bytes a value with the exact splitter (a 4-byte code and at most one distinct
    /// value), 2 with the hist splitter (a 1-byte bin, column- and row-major), 8 for the others (a
    /// row-selected copy). Fits at once: the
    /// serial reference plus, when tasks run in parallel (`parallelism` folds, grid or all), one
    /// per thread.
    fn memory_bytes(&self, threads: u32) -> f64 {
        let (n, p) = (self.rows as f64, self.cols as f64);
        let data = 8.0 * n * p + 4.0 * n;
        let tree = !matches!(
            self.estimator.as_str(),
            "logistic_regression" | "stacking" | "voting"
        ) && !self.estimator.starts_with("smartcore.");
        // Exact unless every candidate says hist (the default of hist_gradient_boosting only).
        let exact = |hp: &HyperParams| match hp.get("splitter") {
            Some(scalelab_ml::estimator::Hp::Text(s)) => s == "exact",
            _ => self.estimator != "hist_gradient_boosting",
        };
        let per_value = match (tree, self.candidates.iter().chain([&self.base]).any(exact)) {
            (false, _) => 8.0,
            (true, true) => 12.0,
            (true, false) => 2.0,
        };
        let per_fit = per_value * n * p;
        let at_once = match self.parallelism {
            Parallelism::Serial | Parallelism::Trees => 1.0,
            _ => f64::from(threads.max(1)),
        };
        data + self.generator_bytes + per_fit * (1.0 + at_once)
    }
}

impl Ml {
    fn setup(&self, params: &Params, preview: bool) -> Result<Setup, String> {
        self.setup_as(self.name(), params, preview)
    }

    /// [`Ml::setup`] with errors naming workload `name`.
    fn setup_as(&self, name: &str, params: &Params, preview: bool) -> Result<Setup, String> {
        self.setup_from(name, params, load_dataset(name, params, preview)?, preview)
    }

    /// [`Ml::setup_as`] over a dataset already loaded (`mpi.ml.forest` passes a CSV file's
    /// target column alone, its rows' features read later).
    fn setup_from(
        &self,
        name: &str,
        params: &Params,
        loaded: Loaded,
        preview: bool,
    ) -> Result<Setup, String> {
        let Loaded {
            mut data,
            rows,
            cols,
            generator_bytes,
        } = loaded;
        let mut steps = pipeline::parse(text(params, "pipeline")?)
            .map_err(|e| format!("{name}: `pipeline`: {e}"))?;
        if text(params, "pipeline_fit")? == "all_rows" && !steps.is_empty() {
            data = fit_on_all_rows(name, &steps, &data)?;
            steps.clear();
        }
        let (estimator, base) = base_params(name, params)?;
        let scoring = scoring(name, params, &data)?;
        let seed = int_param(params, "seed")?;
        let cv = matches!(self.0, Kind::KFold | Kind::Nested);
        let grid = if cv {
            candidates(name, self.0, params)?
        } else {
            vec![HyperParams::new()]
        };
        let mut candidates = Vec::with_capacity(grid.len());
        for g in &grid {
            let c = search::merge(&base, g);
            build(&estimator, &steps)(&c).map_err(|e| candidate_error(name, g, e))?;
            if preview {
                trial_fit(&estimator, &steps, &c, &data, seed)
                    .map_err(|e| candidate_error(name, g, e))?;
            }
            candidates.push(c);
        }
        let folds = self.folds(name, params, rows)?;
        let (parallelism, dynamic) = if cv {
            (
                Parallelism::parse(text(params, "parallelism")?)?,
                text(params, "distribution").is_ok_and(|d| d == "dynamic"),
            )
        } else {
            (Parallelism::Trees, false)
        };
        Ok(Setup {
            data,
            rows,
            cols,
            generator_bytes,
            estimator,
            steps,
            base,
            candidates,
            scoring,
            seed,
            parallelism,
            folds,
            dynamic,
        })
    }

    /// The (outer, inner) folds of a cross-validation (4 for a plain fit's held-out quarter), each
    /// checked against the rows there are.
    fn folds(&self, name: &str, params: &Params, rows: usize) -> Result<(usize, usize), String> {
        let folds = match self.0 {
            Kind::KFold => (count(params, "folds")?, 0),
            Kind::Nested => (count(params, "outer")?, count(params, "inner")?),
            _ => (4, 0),
        };
        if folds.0 < 2 || folds.0 > rows {
            return Err(format!(
                "{name}: {} folds for {rows} rows; use from 2 to {rows}",
                folds.0
            ));
        }
        if self.0 == Kind::Nested && (folds.1 < 2 || folds.1 > rows - rows.div_ceil(folds.0)) {
            return Err(format!(
                "{name}: {} inner folds; use at least 2 and at most the rows of an outer training set",
                folds.1
            ));
        }
        Ok(folds)
    }

    /// Check a point as workload `name` (its own or its MPI twin's): everything `prepare` reads,
    /// and the memory of one rank against the target node, without building the data.
    /// Returns the checked setup (of the stand-in data while checking), for a caller's own checks.
    fn check_as(&self, name: &str, params: &Params, target: &Target) -> Result<Setup, String> {
        let setup = self.setup_as(name, params, true)?;
        let need = setup.memory_bytes(target.resources.threads);
        target.fits_memory(name, need, memory_fix(params))?;
        Ok(setup)
    }

    /// Fits of one repetition.
    fn fits(&self, params: &Params) -> Result<usize, String> {
        let c = || candidates(self.name(), self.0, params).map(|c| c.len());
        Ok(match self.0 {
            Kind::KFold => c()? * count(params, "folds")?,
            Kind::Nested => count(params, "outer")? * c()? * (count(params, "inner")? + 1),
            _ => 1,
        })
    }
}

impl Workload for Ml {
    fn description(&self) -> &'static Description {
        match self.0 {
            Kind::Forest => &FOREST,
            Kind::AdaBoost => &ADABOOST,
            Kind::GBoost => &GBOOST,
            Kind::Stacking => &STACKING,
            Kind::KFold => &KFOLD,
            Kind::Nested => &NESTED,
        }
    }
    fn problem_size(&self, params: &Params) -> u64 {
        match text(params, "dataset") {
            Ok("synthetic" | "noise") => sample_count(self.name(), params).unwrap_or(0),
            _ => 0,
        }
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        self.check_as(self.name(), params, target).map(drop)
    }
    fn plan_notes(&self, params: &Params) -> Vec<String> {
        plan_notes(self.name(), self.0, params)
    }
    fn data_file<'p>(&self, params: &'p Params) -> Option<(&'static str, &'p str)> {
        csv_dataset(params)
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        let setup = self.setup(params, false).map_err(|e| anyhow!(e))?;
        let fits = self.fits(params).map_err(|e| anyhow!(e))?;
        match self.0 {
            Kind::KFold | Kind::Nested => Ok(Box::new(CvInstance::new(self.0, setup, fits, None)?)),
            _ => Ok(Box::new(FitInstance::new(self.name(), setup)?)),
        }
    }
}

/// `mpi.cv.kfold` and `mpi.cv.nested`: the cv workloads with their task list distributed over the
/// point's MPI ranks (feature `mpi`); every rank prepares the same data and serial reference.
#[cfg(feature = "mpi")]
pub struct MpiCv(pub Kind);

#[cfg(feature = "mpi")]
impl Workload for MpiCv {
    fn description(&self) -> &'static Description {
        if self.0 == Kind::KFold {
            &MPI_KFOLD
        } else {
            &MPI_NESTED
        }
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Ml(self.0).problem_size(params)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        Ml(self.0).check_as(self.name(), params, target).map(drop)
    }
    fn plan_notes(&self, params: &Params) -> Vec<String> {
        plan_notes(self.name(), self.0, params)
    }
    fn data_file<'p>(&self, params: &'p Params) -> Option<(&'static str, &'p str)> {
        csv_dataset(params)
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(super::not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &super::Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        use ::mpi::topology::Communicator;
        let ml = Ml(self.0);
        let setup = ml
            .setup_as(self.name(), params, false)
            .map_err(|e| anyhow!(e))?;
        let fits = ml.fits(params).map_err(|e| anyhow!(e))?;
        Ok(Box::new(CvInstance::new(
            self.0,
            setup,
            fits,
            Some(comm.duplicate()),
        )?))
    }
}

// ---------------------------------------------------------------------------------------------
// One fit

/// A fit on 3/4 of the rows (the training part of a stratified 4-fold split), checked on the rest.
struct FitInstance {
    name: &'static str,
    setup: Setup,
    train: Vec<usize>,
    test: Vec<usize>,
    estimator: Box<dyn Estimator>,
    reference: (Prediction, Option<Vec<f64>>),
    model: Option<Result<Box<dyn Model>, String>>,
    score: f64,
    /// A forest grown with `n_estimators = "auto"`, once a run verified.
    grown: Option<Grown>,
}

fn predictions(
    model: &dyn Model,
    data: &Dataset,
    rows: &[usize],
) -> (Prediction, Option<Vec<f64>>) {
    (
        model.predict(&data.x, rows),
        model
            .predict_proba(&data.x, rows)
            .map(|m| m.as_slice().to_vec()),
    )
}

impl FitInstance {
    fn new(name: &'static str, setup: Setup) -> anyhow::Result<FitInstance> {
        let rows: Vec<usize> = (0..setup.data.rows()).collect();
        let fold = search::split(
            &setup.data,
            &rows,
            4,
            scalelab_ml::child_seed(setup.seed, 1),
        )
        .map_err(|e| anyhow!("{name}: {e}"))?
        .swap_remove(0);
        let estimator = build(&setup.estimator, &setup.steps)(&setup.base)
            .map_err(|e| anyhow!("{name}: {e}"))?;
        let serial = FitOptions { parallel: false };
        let model = estimator
            .fit(&setup.data, &fold.train, None, setup.seed, serial)
            .map_err(|e| anyhow!("{name}: serial reference fit: {e}"))?;
        let reference = predictions(model.as_ref(), &setup.data, &fold.test);
        Ok(FitInstance {
            name,
            setup,
            train: fold.train,
            test: fold.test,
            estimator,
            reference,
            model: None,
            score: f64::NAN,
            grown: None,
        })
    }
}

impl Instance for FitInstance {
    fn run(&mut self) {
        let options = FitOptions { parallel: true };
        self.model = Some(self.estimator.fit(
            &self.setup.data,
            &self.train,
            None,
            self.setup.seed,
            options,
        ));
    }
    fn verify(&mut self) -> Result<(), String> {
        let model = match self.model.take() {
            None => {
                return Err(format!(
                    "{}: no fit to check: run did not finish",
                    self.name
                ))
            }
            Some(Err(e)) => {
                return Err(format!(
                    "{}: the parallel fit failed ({e}) where the serial reference fit succeeded",
                    self.name
                ))
            }
            Some(Ok(m)) => m,
        };
        let (pred, proba) = predictions(model.as_ref(), &self.setup.data, &self.test);
        let differ = match (&pred, &self.reference.0) {
            (Prediction::Classes(a), Prediction::Classes(b)) => {
                a.iter().zip(b).filter(|(x, y)| x != y).count()
            }
            (Prediction::Values(a), Prediction::Values(b)) => a
                .iter()
                .zip(b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count(),
            _ => self.test.len(),
        };
        if differ > 0 {
            return Err(format!(
                "{}: {differ} of {} held-out predictions differ from the serial reference fit",
                self.name,
                self.test.len()
            ));
        }
        let bits = |v: &Option<Vec<f64>>| {
            v.as_ref()
                .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        if bits(&proba) != bits(&self.reference.1) {
            return Err(format!(
                "{}: the class probabilities differ from the serial reference fit's (same classes)",
                self.name
            ));
        }
        self.score = self
            .setup
            .scoring
            .score(model.as_ref(), &self.setup.data, &self.test)?;
        self.grown = model.oob_curve().map(|curve| Grown {
            trees: model.n_members().unwrap_or(0),
            oob_score: model.oob_score().unwrap_or(f64::NAN),
            curve: curve.to_vec(),
        });
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut m = vec![(self.setup.scoring.name(), self.score), ("fits", 1.0)];
        if let Some(g) = &self.grown {
            m.push(("n_estimators", g.trees as f64));
            m.push(("oob_score", g.oob_score));
        }
        m
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        self.grown
            .iter()
            .map(|g| ("oob_curve", oob_curve_text(&g.curve)))
            .collect()
    }
}

/// What an auto-sized forest records: its trees, its out-of-bag score and the growth curve
/// (trees, out-of-bag score after each batch).
struct Grown {
    trees: usize,
    oob_score: f64,
    curve: Vec<(usize, f64)>,
}

/// The growth curve of an auto-sized forest as recorded: `trees:score` after each batch, e.g.
/// `10:0.93; 20:0.945` (scores at full precision; the report's OOB plot reads it back).
fn oob_curve_text(curve: &[(usize, f64)]) -> String {
    curve
        .iter()
        .map(|(n, s)| format!("{n}:{s}"))
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Cross-validation

/// The result of a cv workload's search.
#[derive(Clone, Debug, PartialEq)]
enum CvResult {
    KFold(search::CvResult),
    Nested(search::NestedResult),
}

struct CvInstance {
    kind: Kind,
    setup: Setup,
    fits: usize,
    reference: CvResult,
    last: Option<Result<CvResult, String>>,
    scores: Vec<(&'static str, f64)>,
    /// The candidate each outer fold chose (nested CV), once a run verified.
    chosen: Option<String>,
    #[cfg(feature = "mpi")]
    comm: Option<super::Comm>,
}

#[cfg(feature = "mpi")]
type MaybeComm = Option<super::Comm>;
#[cfg(not(feature = "mpi"))]
type MaybeComm = Option<()>;

impl CvInstance {
    fn new(kind: Kind, setup: Setup, fits: usize, comm: MaybeComm) -> anyhow::Result<CvInstance> {
        #[cfg(not(feature = "mpi"))]
        let _ = comm;
        let reference = compute(kind, &setup, &Parallelism::Serial)
            .map_err(|e| anyhow!("serial reference: {e}"))?;
        Ok(CvInstance {
            kind,
            setup,
            fits,
            reference,
            last: None,
            scores: Vec::new(),
            chosen: None,
            #[cfg(feature = "mpi")]
            comm,
        })
    }
}

fn compute(kind: Kind, s: &Setup, runner: &dyn search::Runner) -> Result<CvResult, String> {
    let b = build(&s.estimator, &s.steps);
    let search = Search {
        build: &b,
        candidates: s.candidates.clone(),
        scoring: s.scoring,
        seed: s.seed,
    };
    if kind == Kind::KFold {
        search
            .cross_validate(&s.data, s.folds.0, runner)
            .map(CvResult::KFold)
    } else {
        search
            .nested(&s.data, s.folds.0, s.folds.1, runner)
            .map(CvResult::Nested)
    }
}

/// What differs between two results, in words.
fn difference(got: &CvResult, want: &CvResult) -> String {
    let (gf, wf) = match (got, want) {
        (CvResult::KFold(g), CvResult::KFold(w)) => (&g.fingerprints, &w.fingerprints),
        (CvResult::Nested(g), CvResult::Nested(w)) => (&g.fingerprints, &w.fingerprints),
        _ => return "a different kind of result".into(),
    };
    let bad = gf.iter().zip(wf).filter(|(a, b)| a != b).count();
    if bad > 0 {
        let first = gf.iter().zip(wf).position(|(a, b)| a != b).unwrap_or(0);
        format!(
            "{bad} of {} fits predict differently from the serial reference (first: task {first})",
            wf.len()
        )
    } else {
        "the scores or the selection differ from the serial reference".into()
    }
}

impl Instance for CvInstance {
    fn run(&mut self) {
        #[cfg(feature = "mpi")]
        if let Some(comm) = &self.comm {
            let runner = scalelab_ml::search::mpi::MpiRunner {
                comm,
                local: self.setup.parallelism,
                dynamic: self.setup.dynamic,
            };
            self.last = Some(compute(self.kind, &self.setup, &runner));
            return;
        }
        self.last = Some(compute(self.kind, &self.setup, &self.setup.parallelism));
    }
    fn verify(&mut self) -> Result<(), String> {
        let got = match self.last.take() {
            None => return Err("no result: run did not finish".into()),
            Some(Err(e)) => return Err(e),
            Some(Ok(r)) => r,
        };
        if got != self.reference {
            return Err(format!(
                "{}: {}",
                self.kind_name(),
                difference(&got, &self.reference)
            ));
        }
        let accuracy = self.setup.scoring == Scoring::Accuracy;
        self.scores = match &got {
            CvResult::KFold(r) => {
                let mut v = vec![("cv_score", r.best_score)];
                if accuracy {
                    v.push(("cv_accuracy", r.best_score));
                }
                v
            }
            CvResult::Nested(r) => {
                self.chosen = Some(chosen_text(&self.setup.candidates, &r.chosen));
                let mut v = vec![
                    ("nested_score", r.nested_score),
                    ("non_nested_score", r.non_nested_score),
                ];
                if accuracy {
                    v.push(("nested_accuracy", r.nested_score));
                    v.push(("non_nested_accuracy", r.non_nested_score));
                }
                v
            }
        };
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut m = self.scores.clone();
        m.push(("fits", self.fits as f64));
        m
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        self.chosen.iter().map(|c| ("chosen", c.clone())).collect()
    }
}

/// The candidate each outer fold chose, e.g. `outer 1: max_depth=4; outer 2: max_depth=8`, naming
/// only the hyperparameters that differ between candidates (the rest are the same in all).
fn chosen_text(candidates: &[HyperParams], chosen: &[usize]) -> String {
    let varies = |key: &String| {
        candidates
            .iter()
            .any(|c| c.get(key) != candidates[0].get(key))
    };
    chosen
        .iter()
        .enumerate()
        .map(|(o, &c)| {
            let shown: HyperParams = candidates[c]
                .iter()
                .filter(|(k, _)| varies(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            format!("outer {}: {}", o + 1, search::format_candidate(&shown))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

impl CvInstance {
    fn kind_name(&self) -> &'static str {
        Ml(self.kind).name()
    }
}

/// `ml.predict`: parallel inference. The estimator is fitted once on every row (untimed, in
/// `prepare`); a repetition predicts every row again in batches of `batch` rows, the batches spread
/// over the point's threads. The work unit is the predicted row (`rows` per repetition, rows/s in
/// the report). Each repetition must give exactly the predictions of one serial call on all rows.
pub struct Predict;

const BATCH: ParamSpec = spec!(
    "batch",
    ParamKind::Int,
    "256",
    "rows per prediction batch; the batches run in parallel over the point's threads"
);
const PREDICT_PARAMS: &[ParamSpec] = &[
    DATASET,
    SIZE,
    FEATURES,
    CLASSES,
    TARGET,
    TASK,
    estimator_spec!("random_forest"),
    TREES,
    HYPER,
    PIPELINE,
    PIPELINE_FIT,
    BATCH,
    SEED,
];

impl Workload for Predict {
    fn description(&self) -> &'static Description {
        &PREDICT
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Ml(Kind::Forest).problem_size(params)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        // One setup (data, trial fit, memory) serves both checks.
        let setup = Ml(Kind::Forest).check_as(self.name(), params, target)?;
        batch_size(self.name(), params, setup.rows).map(drop)
    }
    fn data_file<'p>(&self, params: &'p Params) -> Option<(&'static str, &'p str)> {
        csv_dataset(params)
    }
    fn plan_notes(&self, params: &Params) -> Vec<String> {
        plan_notes(self.name(), Kind::Forest, params)
    }
    fn work(&self, _params: &Params) -> Work {
        Work::default()
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        let name = self.name();
        let setup = Ml(Kind::Forest)
            .setup_as(name, params, false)
            .map_err(|e| anyhow!(e))?;
        let batch = batch_size(name, params, setup.rows).map_err(|e| anyhow!(e))?;
        let all: Vec<usize> = (0..setup.data.rows()).collect();
        let model = build(&setup.estimator, &setup.steps)(&setup.base)
            .and_then(|e| e.fit(&setup.data, &all, None, setup.seed, FitOptions::default()))
            .map_err(|e| anyhow!("{name}: fitting the model to predict with: {e}"))?;
        let reference = model.predict(&setup.data.x, &all);
        Ok(Box::new(PredictInstance {
            data: setup.data,
            model,
            batch,
            reference,
            last: None,
        }))
    }
}

/// `batch`, between 1 and the dataset's rows.
fn batch_size(name: &str, params: &Params, rows: usize) -> Result<usize, String> {
    let batch = count(params, "batch")?;
    if batch == 0 || batch > rows {
        return Err(format!(
            "{name}: batch = {batch} rows, but the dataset has {rows}; use from 1 to {rows}"
        ));
    }
    Ok(batch)
}

struct PredictInstance {
    data: Dataset,
    model: Box<dyn Model>,
    batch: usize,
    reference: Prediction,
    last: Option<Prediction>,
}

impl Instance for PredictInstance {
    fn run(&mut self) {
        use rayon::prelude::*;
        let rows: Vec<usize> = (0..self.data.rows()).collect();
        let parts: Vec<Prediction> = rows
            .par_chunks(self.batch)
            .map(|chunk| self.model.predict(&self.data.x, chunk))
            .collect();
        let joined = match self.reference {
            Prediction::Classes(_) => Prediction::Classes(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Prediction::Classes(c) => c,
                        Prediction::Values(_) => Vec::new(),
                    })
                    .collect(),
            ),
            Prediction::Values(_) => Prediction::Values(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Prediction::Values(v) => v,
                        Prediction::Classes(_) => Vec::new(),
                    })
                    .collect(),
            ),
        };
        self.last = Some(joined);
    }
    fn verify(&mut self) -> Result<(), String> {
        let got = self
            .last
            .take()
            .ok_or("no predictions: run did not finish")?;
        if got == self.reference {
            return Ok(());
        }
        let differ = match (&got, &self.reference) {
            (Prediction::Classes(a), Prediction::Classes(b)) if a.len() == b.len() => {
                a.iter().zip(b).filter(|(x, y)| x != y).count()
            }
            (Prediction::Values(a), Prediction::Values(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count(),
            _ => self.data.rows(),
        };
        Err(format!(
            "ml.predict: {differ} of {} batched predictions differ from one call on every row",
            self.data.rows()
        ))
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("rows", self.data.rows() as f64)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Size;

    fn params(w: &Ml, set: &[(&str, Value)]) -> Params {
        let mut p = Params::default();
        for spec in w.params() {
            p.0.insert(spec.name.into(), spec.default_value().unwrap());
        }
        for (k, v) in set {
            p.0.insert((*k).into(), v.clone());
        }
        p
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn check_errors_say_what_to_fix() {
        let nested = Ml(Kind::Nested);
        let small = [("size", Value::Size(Size::Count(200)))];
        let check = |w: &Ml, set: &[(&str, Value)]| {
            let mut all = small.to_vec();
            all.extend_from_slice(set);
            w.check(&params(w, &all), &Target::test(1))
        };
        assert_eq!(
            check(&nested, &[("estimator", t("dummy.most_frequent")), ("grid", t("max_depth=2"))]).unwrap_err(),
            "cv.nested: grid candidate max_depth=2: estimator `dummy.most_frequent` takes no parameter `max_depth`"
        );
        assert!(check(&nested, &[("grid", t("max_depth=2,-1"))])
            .unwrap_err()
            .starts_with("cv.nested: grid candidate max_depth=-1: random_forest: `max_depth` = -1 is not allowed; allowed: "));
        assert_eq!(
            check(&nested, &[("estimator", t("random_forrest"))]).unwrap_err(),
            format!(
                "cv.nested: unknown estimator `random_forrest`; did you mean `random_forest`? known: {}",
                estimators::NAMES.join(", ")
            )
        );
        assert!(check(&nested, &[("grid", t(" "))])
            .unwrap_err()
            .starts_with("cv.nested: `grid`: grid \" \": the grid is empty;"));
        assert_eq!(
            check(
                &nested,
                &[
                    ("estimator", t("dummy.most_frequent")),
                    ("grid", t("")),
                    ("search", t("grid"))
                ]
            )
            .unwrap_err()
            .split(';')
            .next()
            .unwrap(),
            "cv.nested: `grid`: grid \"\": the grid is empty"
        );
        assert_eq!(
            check(&nested, &[("dataset", t("diabetes")), ("scoring", t("accuracy"))]).unwrap_err(),
            "cv.nested: scoring `accuracy` does not fit dataset `diabetes`, whose target is real values; use scoring = \"auto\""
        );
        assert_eq!(
            check(&nested, &[("outer", Value::Int(300))]).unwrap_err(),
            "cv.nested: 300 folds for 200 rows; use from 2 to 200"
        );
        let kfold = Ml(Kind::KFold);
        assert!(check(&kfold, &[("estimator", t("dummy.most_frequent"))]).is_ok());
        assert_eq!(
            check(
                &kfold,
                &[
                    ("estimator", t("dummy.most_frequent")),
                    ("hyper", t("a=1,2"))
                ]
            )
            .unwrap_err(),
            "cv.kfold: `hyper` gives `a` 2 values; give one value each (a list belongs in `grid`)"
        );
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("d.csv");
        std::fs::write(&csv, "a,b,label\n1,2,0\n3,4,1\n").unwrap();
        let err = check(&kfold, &[("dataset", t(csv.to_str().unwrap()))]).unwrap_err();
        assert!(
            err.starts_with("cv.kfold: ") && err.contains("target"),
            "{err}"
        );
    }

    #[test]
    fn targets_and_settings_that_cannot_fit_are_refused_at_check_time() {
        let w = Ml(Kind::KFold);
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            t(path.to_str().unwrap())
        };
        let check = |set: &[(&str, Value)]| w.check(&params(&w, set), &Target::test(1));
        let notes = |set: &[(&str, Value)]| w.plan_notes(&params(&w, set));

        // One class in every row: refused, not scored 1.000.
        let one = write("one.csv", &format!("a,target\n{}", "1,yes\n".repeat(30)));
        assert_eq!(
            check(&[("dataset", one)]).unwrap_err(),
            "cv.kfold: dataset `PATH` has one class (`yes`) in all 30 rows; classification needs \
             at least two (check the target column, or set task = \"regression\" for a numeric \
             target)"
                .replace("PATH", dir.path().join("one.csv").to_str().unwrap())
        );

        // 25 distinct integers: regression under `auto`, classes when asked for.
        let many: String = (0..50).map(|i| format!("{i},{}\n", i % 25)).collect();
        let many = write("many.csv", &format!("a,target\n{many}"));
        let auto = [("dataset", many.clone()), ("estimator", t("decision_tree"))];
        assert!(check(&auto).is_ok());
        assert_eq!(
            notes(&auto)[0].split_once(": target").unwrap().1,
            " `target` read as regression, task = \"auto\": numbers that are not all integers, \
             or more than 20 distinct integers"
        );
        let classes = [
            ("dataset", many),
            ("estimator", t("decision_tree")),
            ("task", t("classification")),
        ];
        assert!(check(&classes).is_ok());
        assert!(notes(&classes)[0].ends_with("read as classification, 25 classes"));
        assert_eq!(
            notes(&classes)[1],
            format!(
                "warning: class `0` has only 2 rows in dataset `{}`, fewer than the 5 folds: \
                 some test folds hold none of it",
                dir.path().join("many.csv").display()
            )
        );

        // A task that does not fit a built-in or synthetic dataset.
        assert_eq!(
            check(&[("dataset", t("iris")), ("task", t("regression"))]).unwrap_err(),
            "cv.kfold: task = \"regression\" does not fit dataset `iris`, whose target is classes; \
             use task = \"auto\""
        );
        assert!(check(&[("task", t("regression"))])
            .unwrap_err()
            .starts_with("cv.kfold: task = \"regression\" does not fit the synthetic dataset"));

        // Settings the data cannot take are refused by `plan`, not at run time.
        let two = [("dataset", t("iris")), ("estimator", t("decision_tree"))];
        let with = |hyper: &str| {
            let mut set = two.to_vec();
            set.push(("hyper", t(hyper)));
            check(&set).unwrap_err()
        };
        assert_eq!(
            with("max_features=50"),
            "cv.kfold: decision_tree: `max_features` = 50 but dataset iris has 4 features"
        );
        assert_eq!(
            with("criterion=squared_error"),
            "cv.kfold: decision_tree: criterion `squared_error` needs a numeric target but dataset \
             iris has classes; use gini or entropy"
        );

        // A bad cell is not blamed on the `target` key; a missing target column is.
        let nan = write("nan.csv", "a,target\n1,0\nnan,1\n");
        let err = check(&[("dataset", nan)]).unwrap_err();
        assert!(err.contains("`nan` is not a finite number"), "{err}");
        assert!(!err.contains("`target` key"), "{err}");
        let other = write("other.csv", "a,label\n1,0\n2,1\n");
        assert!(check(&[("dataset", other)])
            .unwrap_err()
            .ends_with("(the study's `target` key names the target column)"));
    }

    #[test]
    fn trees_sets_the_ensemble_size_only() {
        // `trees` is an ensemble's size; logistic regression's `max_iter` counts solver
        // iterations and must keep its own default whatever `trees` says.
        use scalelab_ml::estimator::Hp;
        let w = Ml(Kind::KFold);
        let base = |est: &str| {
            base_params(
                "cv.kfold",
                &params(&w, &[("estimator", t(est)), ("trees", Value::Int(1))]),
            )
            .unwrap()
            .1
        };
        assert_eq!(base("logistic_regression"), HyperParams::new());
        assert_eq!(base("random_forest").get("n_estimators"), Some(&Hp::Int(1)));
        assert_eq!(
            base("hist_gradient_boosting").get("max_iter"),
            Some(&Hp::Int(1))
        );
    }

    #[test]
    fn synthetic_checks_estimate_memory_without_building_the_data() {
        let w = Ml(Kind::Forest);
        let synth = |size: u64, features: u64| {
            params(
                &w,
                &[
                    ("size", Value::Size(Size::Count(size))),
                    ("features", Value::Int(features)),
                ],
            )
        };
        // A million features: 8·(features/2)² = 2 TB for the generator's mixing matrix alone.
        // Refused by the estimate, with nothing allocated (this test would abort otherwise).
        let err = w
            .check(&synth(2000, 1_000_000), &Target::test(1))
            .unwrap_err();
        assert!(
            err.starts_with("forest.fit needs ")
                && err.contains("of memory but a node has 16.00 GiB"),
            "{err}"
        );
        assert!(
            err.ends_with("use a smaller `size` (samples) or fewer `features`"),
            "{err}"
        );
        // Ten thousand features fit in memory; checking generates only a small stand-in
        // (O(samples·features²) for the real data: minutes).
        w.check(&synth(2000, 10_000), &Target::test(1)).unwrap();
        // 10^12 samples: 160 TB of data.
        let err = w
            .check(&synth(1_000_000_000_000, 20), &Target::test(1))
            .unwrap_err();
        assert!(err.contains("of memory but a node has 16.00 GiB"), "{err}");
        // The same point fits a node with more memory: the target decides, not this machine.
        let mut big = Target::test(1);
        big.node.memory_bytes = Some(1 << 50);
        w.check(&synth(2000, 1_000_000), &big).unwrap();
        // Folds are judged against the real samples, not the stand-in's.
        let kfold = Ml(Kind::KFold);
        let p = params(
            &kfold,
            &[
                ("size", Value::Size(Size::Count(5000))),
                ("folds", Value::Int(2000)),
                ("estimator", t("dummy.most_frequent")),
            ],
        );
        kfold.check(&p, &Target::test(1)).unwrap();
        let err = w
            .check(
                &params(&w, &[("classes", Value::Int(1001))]),
                &Target::test(1),
            )
            .unwrap_err();
        assert_eq!(
            err,
            "forest.fit: classes = 1001 is more than the limit of 1000 for the synthetic dataset; use fewer classes"
        );
    }

    #[test]
    fn parallel_fits_count_once_per_thread() {
        let w = Ml(Kind::KFold);
        let p = |parallelism: &str| {
            params(
                &w,
                &[
                    ("size", Value::Size(Size::Count(1_000_000))),
                    ("features", Value::Int(200)),
                    ("parallelism", t(parallelism)),
                ],
            )
        };
        // 1.6 GB of data, 2.4 GB per exact view: fine one fit at a time, too much 64 at once.
        w.check(&p("trees"), &Target::test(64)).unwrap();
        let err = w.check(&p("folds"), &Target::test(64)).unwrap_err();
        assert!(err.contains("of memory but a node has 16.00 GiB"), "{err}");
    }

    #[test]
    fn exact_trees_count_twelve_bytes_a_value_and_hist_two() {
        let w = Ml(Kind::KFold);
        let p = |hyper: &str| {
            params(
                &w,
                &[
                    ("size", Value::Size(Size::Count(1_000_000))),
                    ("features", Value::Int(200)),
                    ("parallelism", t("folds")),
                    ("hyper", t(hyper)),
                ],
            )
        };
        // 1.6 GB of data and 7 fits at once on 6 threads: 2.4 GB per exact view is too much for
        // 16 GiB, 0.4 GB per hist view is not.
        let err = w.check(&p(""), &Target::test(6)).unwrap_err();
        assert!(err.contains("of memory but a node has 16.00 GiB"), "{err}");
        w.check(&p("splitter=hist"), &Target::test(6)).unwrap();
    }

    #[test]
    fn cv_instances_verify_and_count_fits() {
        for w in [Ml(Kind::KFold), Ml(Kind::Nested)] {
            let p = params(
                &w,
                &[
                    ("dataset", t("iris")),
                    ("estimator", t("dummy.most_frequent")),
                    ("grid", t("")),
                    ("outer", Value::Int(3)),
                    ("inner", Value::Int(2)),
                ],
            );
            let p = if w.0 == Kind::Nested {
                // A grid of one candidate for the dummy (it has no parameters).
                let mut p = p;
                p.0.insert("estimator".into(), t("decision_tree"));
                p.0.insert("grid".into(), t("max_depth=1,2"));
                p
            } else {
                p
            };
            w.check(&p, &Target::test(1)).unwrap();
            let mut inst = w.prepare(&p, &Target::test(1)).unwrap();
            for _ in 0..2 {
                inst.run();
                inst.verify().unwrap();
            }
            let m: std::collections::BTreeMap<_, _> = inst.metrics().into_iter().collect();
            let want = if w.0 == Kind::Nested {
                3.0 * 2.0 * 3.0
            } else {
                5.0
            };
            assert_eq!(m["fits"], want);
            assert!(m.contains_key("cv_accuracy") || m.contains_key("nested_accuracy"));
            // Without a run, verify fails rather than passing on the last result.
            assert!(inst.verify().is_err());
        }
    }

    #[test]
    fn a_result_unlike_the_serial_reference_fails_verification() {
        let w = Ml(Kind::Nested);
        let p = params(
            &w,
            &[
                ("dataset", t("iris")),
                ("estimator", t("decision_tree")),
                ("grid", t("max_depth=1,3")),
                ("outer", Value::Int(3)),
                ("inner", Value::Int(2)),
            ],
        );
        let setup = w.setup(&p, false).unwrap();
        let mut inst = CvInstance::new(Kind::Nested, setup, 18, None).unwrap();
        inst.run();
        inst.verify().unwrap();
        // A different seed stands for a computation that went wrong: other folds, other fits.
        inst.setup.seed += 1;
        inst.run();
        let err = inst.verify().unwrap_err();
        assert!(
            err.starts_with("cv.nested: ")
                && err.contains("fits predict differently from the serial reference"),
            "{err}"
        );
    }

    #[test]
    fn a_fit_instance_agrees_with_its_serial_reference() {
        let w = Ml(Kind::Forest);
        let p = params(&w, &[("dataset", t("iris")), ("trees", Value::Int(8))]);
        let mut inst = w.prepare(&p, &Target::test(1)).unwrap();
        inst.run();
        inst.verify().unwrap();
        let m: std::collections::BTreeMap<_, _> = inst.metrics().into_iter().collect();
        assert!(m["accuracy"] > 0.8, "{m:?}");
        assert!(inst.verify().is_err());
    }

    #[test]
    fn a_fit_unlike_the_serial_reference_fails_verification() {
        let w = Ml(Kind::Forest);
        let p = params(
            &w,
            &[("dataset", t("breast_cancer")), ("trees", Value::Int(5))],
        );
        let mut inst = FitInstance::new("forest.fit", w.setup(&p, false).unwrap()).unwrap();
        // Another seed stands for a parallel fit that drew the wrong random streams.
        inst.setup.seed += 1;
        inst.run();
        let err = inst.verify().unwrap_err();
        assert!(
            err.starts_with("forest.fit: ") && err.contains("the serial reference fit"),
            "{err}"
        );
    }

    #[test]
    fn an_auto_sized_forest_records_its_size_score_and_curve() {
        let w = Ml(Kind::Forest);
        let p = params(
            &w,
            &[
                ("dataset", t("breast_cancer")),
                ("hyper", t("n_estimators=auto")),
            ],
        );
        w.check(&p, &Target::test(2)).unwrap();
        let mut inst = w.prepare(&p, &Target::test(2)).unwrap();
        inst.run();
        inst.verify().unwrap();
        let m: std::collections::BTreeMap<_, _> = inst.metrics().into_iter().collect();
        let details = inst.details();
        assert_eq!(details.len(), 1, "{details:?}");
        let (key, curve) = &details[0];
        assert_eq!(*key, "oob_curve");
        // `trees:score` per batch of 10, the last entry being the forest's size and score.
        let pairs: Vec<(f64, f64)> = curve
            .split("; ")
            .map(|pair| {
                let (n, s) = pair.split_once(':').unwrap();
                (n.parse().unwrap(), s.parse().unwrap())
            })
            .collect();
        for (i, (n, _)) in pairs.iter().enumerate() {
            assert_eq!(*n, 10.0 * (i + 1) as f64, "{curve}");
        }
        assert_eq!(*pairs.last().unwrap(), (m["n_estimators"], m["oob_score"]));
        assert_eq!(
            w.plan_notes(&p),
            ["random_forest: `hyper` sets n_estimators = auto, so `trees` = 100 is not used"]
        );
        // A fixed-size forest records neither.
        let fixed = params(
            &w,
            &[("dataset", t("breast_cancer")), ("trees", Value::Int(5))],
        );
        let mut inst = w.prepare(&fixed, &Target::test(2)).unwrap();
        inst.run();
        inst.verify().unwrap();
        assert!(inst.details().is_empty());
        assert!(!inst.metrics().iter().any(|(k, _)| *k == "oob_score"));
    }

    #[test]
    fn auto_on_an_estimator_without_out_of_bag_rows_is_refused_at_check_time() {
        let w = Ml(Kind::AdaBoost);
        let p = params(
            &w,
            &[("dataset", t("iris")), ("hyper", t("n_estimators=auto"))],
        );
        assert_eq!(
            w.check(&p, &Target::test(1)).unwrap_err(),
            "adaboost.fit: adaboost: `n_estimators` = \"auto\" is only for random_forest and \
             extra_trees, which add trees until their out-of-bag score stops improving, and \
             adaboost has no out-of-bag score; give an integer from 1 to 100000"
        );
    }
}

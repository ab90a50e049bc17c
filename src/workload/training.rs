//! Training a multilayer perceptron in one process: the `mlp.train` workload, and what every
//! training workload shares (the dataset a point names, its standardisation and split, the
//! serial reference, the loss curve it records, the parameters `mpi.train` declares too).
//!
//! `mlp.train` is the threads-only member of the training family (docs/training.md): one process
//! trains `steps` optimizer steps of minibatch SGD with momentum on each global batch of `batch`
//! rows, in `micro` micro-batches whose gradients are accumulated (1: none), and the rayon pool of
//! the point (the `threads` axis) computes each micro-batch's grains in parallel
//! (`scalelab_ml::mlp`). The grains are summed along the fixed tree whatever the thread count, so
//! the weights after every repetition must equal, bit for bit, those of a serial reference trained
//! in `prepare` on a pool of one thread: a thread count that changed a bit fails its point. This
//! is what `torch.set_num_threads` scales in PyTorch (intra-op parallelism inside one process), the
//! shared-memory counterpart of `mpi.train`'s ranks; it needs no MPI.
//!
//! Metrics: `samples_per_s` (samples of the repetition's steps per second), `compute_s` and
//! `step_s`, `busy_threads` (the pool's threads that get grains: at most the grains of a
//! micro-batch), `param_bytes` and `mem_peak_bytes` (parameter, gradient and momentum bytes,
//! analytic), `loss` and `accuracy` on the held-out fifth after the last step, `steps`; and of
//! mixed precision (`precision`, `loss_scale`; the GEMM operands rounded to an emulated format)
//! `skipped_steps`, the final `loss_scale`, `fp64_loss_gap` and `zero_grad_share`, as `mpi.train`
//! records them. The detail `loss_curve` is drawn by the report against wall time.

use std::time::Instant;

use anyhow::anyhow;
use scalelab_ml::data::{self, Dataset, Matrix, Synthetic};
use scalelab_ml::mlp::sharded::peak_state_bytes;
use scalelab_ml::mlp::{self, LocalReducer, MixedPrecision, Mlp, Schedule, Sgd, Trainer};

use super::{
    int_param, sample_count, to_usize, Backend, Description, Instance, ParamKind, ParamSpec,
    Params, Target, Work, Workload,
};
use crate::value::Value;

/// `mlp.train`: an MLP trained in one process over the point's rayon threads.
pub const MLP_TRAIN: Description = Description::new(
    "mlp.train",
    "MLP trained in one process, each micro-batch's gradient grains computed over the rayon \
     threads, bitwise the serial reference; work: training FLOPs, metric samples_per_s",
    Backend::Rayon,
    MLP_TRAIN_PARAMS,
)
.size_unit("samples")
.weak_param("batch")
.applies(mlp_train_param_applies);

const MLP_TRAIN_PARAMS: &[ParamSpec] = &[
    DATASET,
    TARGET,
    SIZE,
    FEATURES,
    CLASSES,
    HIDDEN,
    ParamSpec {
        name: "batch",
        kind: ParamKind::Int,
        default: "256",
        doc: "global batch: samples per optimizer step (a multiple of micro × grain)",
    },
    GRAIN,
    ParamSpec {
        name: "micro",
        kind: ParamKind::Int,
        default: "1",
        doc: "micro-batches per step whose gradients are accumulated before the update (a \
              power of two; 1: none)",
    },
    STEPS,
    LR,
    MOMENTUM,
    SEED,
    PRECISION,
    LOSS_SCALE,
    GROWTH_INTERVAL,
];

/// Whether parameter `key` means anything for an `mlp.train` point: the synthetic-data settings
/// only with the synthetic dataset, `target` only with a CSV file, the loss scale only in a
/// reduced precision.
fn mlp_train_param_applies(params: &Params, key: &str) -> bool {
    super::ml::dataset_param_applies(params, key)
        .or_else(|| precision_param_applies(params, key, true))
        .unwrap_or(true)
}

/// The mixed-precision part of a training workload's `applies` rule: `Some` for `precision`,
/// `loss_scale` and `growth_interval`, `None` for every other parameter. `emulated` says whether
/// the point's strategy trains in a reduced precision at all; a loss scale means something only
/// in a reduced format, and its growth interval only when it is dynamic (`"auto"` is dynamic for
/// fp16).
pub(crate) fn precision_param_applies(params: &Params, key: &str, emulated: bool) -> Option<bool> {
    let text = |k: &str| match params.get(k) {
        Some(Value::Text(t)) => t.as_str(),
        _ => "",
    };
    let scaled = emulated && !matches!(text("precision"), "" | "fp64");
    match key {
        "precision" => Some(emulated),
        "loss_scale" => Some(scaled),
        "growth_interval" => Some(
            scaled
                && (text("loss_scale") == "dynamic"
                    || (text("loss_scale") == "auto" && text("precision") == "fp16")),
        ),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// The parameters every training workload declares (`mpi.train` lists them too).

pub(crate) const DATASET: ParamSpec = ParamSpec {
    name: "dataset",
    kind: ParamKind::Text,
    default: "synthetic",
    doc: "\"synthetic\" (size samples × features, classes), a built-in classification \
          dataset (iris, breast_cancer, digits, wine_quality) or a CSV file (\"data.csv\": \
          numeric features, class labels in the `target` column; the plan pins its sha256)",
};

pub(crate) const TARGET: ParamSpec = ParamSpec {
    name: "target",
    kind: ParamKind::Text,
    default: "target",
    doc: "the class-label column of a CSV dataset",
};

pub(crate) const SIZE: ParamSpec = ParamSpec {
    name: "size",
    kind: ParamKind::Size,
    default: "4096",
    doc: "samples of the synthetic dataset (a count; ignored for a built-in one)",
};

pub(crate) const FEATURES: ParamSpec = ParamSpec {
    name: "features",
    kind: ParamKind::Int,
    default: "32",
    doc: "features of the synthetic dataset",
};

pub(crate) const CLASSES: ParamSpec = ParamSpec {
    name: "classes",
    kind: ParamKind::Int,
    default: "4",
    doc: "classes of the synthetic dataset",
};

pub(crate) const HIDDEN: ParamSpec = ParamSpec {
    name: "hidden",
    kind: ParamKind::Text,
    default: "64,64",
    doc: "widths of the hidden ReLU layers, comma-separated (\"\" for none: softmax regression)",
};

pub(crate) const GRAIN: ParamSpec = ParamSpec {
    name: "grain",
    kind: ParamKind::Int,
    default: "8",
    doc: "samples per reduction grain: the fixed blocks whose gradients are summed along one \
          fixed tree, whatever the rank or thread count (docs/training.md)",
};

pub(crate) const STEPS: ParamSpec = ParamSpec {
    name: "steps",
    kind: ParamKind::Int,
    default: "20",
    doc: "optimizer steps per repetition, each from the same initial weights",
};

pub(crate) const LR: ParamSpec = ParamSpec {
    name: "lr",
    kind: ParamKind::Float,
    default: "0.05",
    doc: "SGD learning rate",
};

pub(crate) const MOMENTUM: ParamSpec = ParamSpec {
    name: "momentum",
    kind: ParamKind::Float,
    default: "0.9",
    doc: "SGD momentum μ (v ← μ·v + g, w ← w − lr·v)",
};

pub(crate) const SEED: ParamSpec = ParamSpec {
    name: "seed",
    kind: ParamKind::Int,
    default: "42",
    doc: "seed of the synthetic data, the shuffle and the initial weights",
};

pub(crate) const PRECISION: ParamSpec = ParamSpec {
    name: "precision",
    kind: ParamKind::Choice(scalelab_ml::mlp::Precision::NAMES),
    default: "fp64",
    doc: "number format of every GEMM operand (weights, activations, activation gradients), \
          emulated exactly on the CPU (mlp.train, and mpi.train's ddp and accumulate): fp64 \
          (exact), fp32, tf32, bf16 or fp16; master weights and momentum stay fp64 \
          (docs/training.md, Mixed precision)",
};

pub(crate) const LOSS_SCALE: ParamSpec = ParamSpec {
    name: "loss_scale",
    kind: ParamKind::Text,
    default: "auto",
    doc: "the loss scale: \"none\", \"dynamic\" (GradScaler: 2^16, halved and the step \
          skipped on overflow, doubled after growth_interval clean steps), a positive \
          number, or \"auto\" (dynamic for fp16, none otherwise)",
};

pub(crate) const GROWTH_INTERVAL: ParamSpec = ParamSpec {
    name: "growth_interval",
    kind: ParamKind::Int,
    default: "25",
    doc: "clean steps after which a dynamic loss scale doubles (PyTorch: 2000, longer than \
          these runs)",
};

// ---------------------------------------------------------------------------------------------
// Reading a training point

pub(crate) fn text<'p>(params: &'p Params, name: &str) -> Result<&'p str, String> {
    match params.get(name) {
        Some(Value::Text(s)) => Ok(s),
        other => Err(format!("parameter `{name}` must be text (found {other:?})")),
    }
}

pub(crate) fn count(params: &Params, name: &str) -> Result<usize, String> {
    to_usize(int_param(params, name)?, name)
}

/// The hidden widths from `hidden` ("64,64"; "" for none).
pub(crate) fn hidden(name: &str, params: &Params) -> Result<Vec<usize>, String> {
    let raw = text(params, "hidden")?;
    raw.split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| match w.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(format!(
                "{name}: hidden = \"{raw}\": `{w}` is not a positive width; write the hidden \
                 layer widths as comma-separated counts, e.g. \"64,64\" (\"\" for none)"
            )),
        })
        .collect()
}

/// The synthetic spec of a point, or `None` for a built-in dataset.
pub(crate) fn synthetic(name: &str, params: &Params) -> Result<Option<Synthetic>, String> {
    if text(params, "dataset")? != "synthetic" {
        return Ok(None);
    }
    let features = count(params, "features")?;
    let classes = count(params, "classes")?;
    if !(2..=crate::workload::ml::MAX_CLASSES).contains(&classes) || features == 0 {
        return Err(format!(
            "{name}: a synthetic dataset needs at least one feature and 2 to {} classes (got \
             features = {features}, classes = {classes})",
            crate::workload::ml::MAX_CLASSES
        ));
    }
    Ok(Some(Synthetic {
        samples: to_usize(sample_count(name, params)?, "size")?,
        features,
        informative: features.div_ceil(2),
        redundant: 0,
        classes,
        seed: int_param(params, "seed")?,
        ..Synthetic::default()
    }))
}

/// The dataset a point names other than `synthetic`: a CSV file (`dataset` ending in `.csv` or
/// holding a `/`, its `target` column; the plan pins the file's sha256) or a built-in one. Only
/// class labels are trained on: a regression target is refused with the fix, as is a target
/// with one class.
pub(crate) fn named_dataset(name: &str, params: &Params) -> Result<Dataset, String> {
    let dataset = text(params, "dataset")?;
    let data = match crate::workload::ml::csv_dataset(params) {
        Some((_, path)) => {
            let target = text(params, "target")?;
            data::load_csv(std::path::Path::new(path), target, data::Task::Auto).map_err(|e| {
                if e.contains(&format!("no column `{target}`")) {
                    format!("{name}: {e} (the study's `target` key names the target column)")
                } else {
                    format!("{name}: {e}")
                }
            })?
        }
        None => data::load(dataset).map_err(|e| format!("{name}: {e}"))?,
    };
    let Some(labels) = data.y.labels() else {
        return Err(match crate::workload::ml::csv_dataset(params) {
            Some((_, path)) => format!(
                "{name}: dataset {path}: target column `{}` holds real values (a regression \
                 target); {name} trains a classifier with softmax cross-entropy: use a \
                 target column of class labels (text, or integers with at most {} distinct \
                 values)",
                text(params, "target")?,
                data::AUTO_MAX_CLASSES
            ),
            None => format!(
                "{name}: dataset `{dataset}` is a regression task; training needs class labels: \
                 use iris, breast_cancer, digits, wine_quality, synthetic or a CSV file with \
                 class labels"
            ),
        });
    };
    let present = labels
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    if present < 2 {
        return Err(format!(
            "{name}: dataset {dataset} has {present} class in its {} rows; training a classifier \
             needs at least two (check the `target` column)",
            data.rows()
        ));
    }
    Ok(data)
}

/// The dataset of a point with standardised features, its labels, and the training and held-out
/// rows (a seeded shuffle; the first fifth held out).
pub(crate) struct Data {
    pub(crate) x: Matrix,
    pub(crate) labels: Vec<u32>,
    pub(crate) train: Vec<usize>,
    pub(crate) test: Vec<usize>,
    pub(crate) classes: usize,
}

pub(crate) fn load(name: &str, params: &Params, seed: u64) -> Result<Data, String> {
    let dataset: Dataset = match synthetic(name, params)? {
        Some(spec) => data::make_classification(&spec)?,
        None => named_dataset(name, params)?,
    };
    let Some(labels) = dataset.y.labels().map(<[u32]>::to_vec) else {
        return Err(format!(
            "{name}: dataset `{}` is a regression task; training needs class labels",
            dataset.name
        ));
    };
    let (rows, cols) = (dataset.x.rows(), dataset.x.cols());
    if rows < 5 {
        return Err(format!("{name}: {rows} samples; use at least 5"));
    }
    let mut z = dataset.x.as_slice().to_vec();
    for c in 0..cols {
        let mean = (0..rows).map(|r| z[r * cols + c]).sum::<f64>() / rows as f64;
        let var = (0..rows)
            .map(|r| (z[r * cols + c] - mean).powi(2))
            .sum::<f64>()
            / rows as f64;
        let sd = if var > 0.0 { var.sqrt() } else { 1.0 };
        for r in 0..rows {
            z[r * cols + c] = (z[r * cols + c] - mean) / sd;
        }
    }
    let order = mlp::shuffled(rows, seed ^ 0x7261_696e);
    let test = order[..rows / 5].to_vec();
    let train = order[rows / 5..].to_vec();
    Ok(Data {
        x: Matrix::new(rows, cols, z)?,
        classes: dataset.y.n_classes(),
        labels,
        train,
        test,
    })
}

/// How far the loss curve `got` is from `exact` (both per step): the largest relative difference
/// of their means over consecutive runs of `epoch` steps (one pass over the training rows; the
/// last run may be shorter). Per-step losses are those of one global batch each, noisy enough that
/// two runs whose training is equally good differ by several percent at single steps; an epoch's
/// mean is what a training log shows. A NaN (a diverged curve) is infinitely far.
pub(crate) fn loss_gap(got: &[f64], exact: &[f64], epoch: usize) -> f64 {
    let epoch = epoch.max(1);
    got.chunks(epoch)
        .zip(exact.chunks(epoch))
        .map(|(g, e)| {
            let (g, e) = (g.iter().sum::<f64>(), e.iter().sum::<f64>());
            let gap = (g - e).abs() / e.abs().max(f64::MIN_POSITIVE);
            if gap.is_nan() {
                f64::INFINITY
            } else {
                gap
            }
        })
        .fold(0.0, f64::max)
}

/// The loss curve a training point records (detail `loss_curve`, drawn by the report against
/// wall time): the serial reference's loss of each step's global batch before its update, which
/// is every strategy's at every rank count (the weights are the reference's bit for bit; with
/// `allreduce = "ring"` or `"mpi"` to rounding), beside the wall time at which this rank finished
/// that step in the last repetition.
pub(crate) struct LossCurve {
    pub(crate) losses: Vec<f64>,
    ends: Vec<f64>,
}

impl LossCurve {
    pub(crate) fn new(losses: Vec<f64>) -> LossCurve {
        let ends = Vec::with_capacity(losses.len());
        LossCurve { losses, ends }
    }

    /// A repetition begins: forget the last one's times.
    pub(crate) fn restart(&mut self) {
        self.ends.clear();
    }

    /// A step of the repetition that began at `start` is done.
    pub(crate) fn step_done(&mut self, start: Instant) {
        self.ends.push(start.elapsed().as_secs_f64());
    }

    /// `seconds:loss` per step joined by `; `; `None` unless every step was timed.
    pub(crate) fn detail(&self) -> Option<(&'static str, String)> {
        if self.ends.len() != self.losses.len() || self.losses.is_empty() {
            return None;
        }
        let pairs: Vec<String> = self
            .ends
            .iter()
            .zip(&self.losses)
            .map(|(t, l)| format!("{t}:{l}"))
            .collect();
        Some(("loss_curve", pairs.join("; ")))
    }
}

/// The SGD settings of a point, refused with the fix unless the learning rate is positive and
/// the momentum in [0, 1).
pub(crate) fn sgd(name: &str, params: &Params) -> Result<Sgd, String> {
    let sgd = Sgd {
        lr: params.float("lr"),
        momentum: params.float("momentum"),
    };
    if !(sgd.lr.is_finite() && sgd.lr > 0.0 && (0.0..1.0).contains(&sgd.momentum)) {
        return Err(format!(
            "{name}: lr = {} and momentum = {}: the learning rate must be positive and the \
             momentum in [0, 1)",
            sgd.lr, sgd.momentum
        ));
    }
    Ok(sgd)
}

/// The number format and loss scale a point asks for (`precision`, `loss_scale`,
/// `growth_interval`).
pub(crate) fn precision(name: &str, params: &Params) -> Result<MixedPrecision, String> {
    let growth = int_param(params, "growth_interval")?;
    let growth = u32::try_from(growth).unwrap_or(0);
    MixedPrecision::parse(
        text(params, "precision")?,
        text(params, "loss_scale")?,
        growth,
    )
    .map_err(|e| format!("{name}: {e}"))
}

/// Rows, features and classes of the dataset a point names, without generating a synthetic one.
pub(crate) fn shape(name: &str, params: &Params) -> Result<(usize, usize, usize), String> {
    Ok(match synthetic(name, params)? {
        Some(spec) => (spec.samples, spec.features, spec.classes),
        None => {
            let d = named_dataset(name, params)?;
            (d.rows(), d.features(), d.y.n_classes())
        }
    })
}

/// The layer widths of a point's model: its dataset's features, the hidden widths, its classes.
pub(crate) fn widths(features: usize, hidden: &[usize], classes: usize) -> Vec<usize> {
    let mut widths = vec![features];
    widths.extend(hidden);
    widths.push(classes);
    widths
}

/// The bytes one process of a data-parallel point holds: the data twice (raw and standardised),
/// the activations of one micro-batch per layer (three buffers), a gradient per grain plus the
/// accumulation stack, the weights, momentum and the reference's.
pub(crate) fn process_bytes(
    rows: usize,
    widths: &[usize],
    schedule: &Schedule,
    params: usize,
) -> f64 {
    let features = widths[0];
    let widest = *widths.iter().max().unwrap_or(&1) as f64;
    let rows_micro = (schedule.batch / schedule.ranks / schedule.micro) as f64;
    let grains = rows_micro / schedule.grain as f64;
    let p = params as f64;
    8.0 * (2.0 * (rows * features) as f64
        + 3.0 * rows_micro * widest * widths.len() as f64
        + (grains + 2.0 + (schedule.micro as f64).log2() + 4.0) * p)
}

/// The serial reference of a training point and the loss curve it records.
pub(crate) struct Reference {
    /// The weights and momentum after the last step.
    pub(crate) mlp: Mlp,
    /// The loss of each step's global batch before its update.
    pub(crate) losses: Vec<f64>,
    /// Under a reduced precision, [`loss_gap`] of `losses` from an fp64 run of the same steps
    /// (0 at fp64).
    pub(crate) fp64_loss_gap: f64,
}

/// Train the serial reference: one process on a pool of one thread, one micro-batch per step,
/// the point's global batches (`batch` rows in grains of `grain`) from `initial`, in `mp`'s
/// format, recording each step's loss (its global batch before the update). Under a reduced
/// precision an fp64 run of the same steps gives `fp64_loss_gap`. The pool of one makes the
/// reference independent of the point's threads, so that a thread count that changed a bit
/// cannot pass its check.
pub(crate) fn serial_reference(
    data: &Data,
    initial: &Mlp,
    (batch, grain): (usize, usize),
    steps: usize,
    sgd: Sgd,
    mp: MixedPrecision,
) -> anyhow::Result<Reference> {
    let serial = Schedule {
        batch,
        grain,
        ranks: 1,
        micro: 1,
    };
    let train = |mut t: Trainer| {
        let mut losses = Vec::with_capacity(steps);
        for step in 0..steps {
            let rows = mlp::global_batch(&data.train, batch, step);
            losses.push(t.evaluate(&data.x, &data.labels, &rows).0);
            t.step(&data.x, &data.labels, &rows, &serial, 0, sgd, &LocalReducer);
        }
        (t.mlp, losses)
    };
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    one.install(|| {
        let (mlp, losses) = train(Trainer::new(initial.clone()).with_precision(mp));
        let mut fp64_loss_gap = 0.0f64;
        if mp.precision.is_reduced() {
            let (_, exact) = train(Trainer::new(initial.clone()));
            fp64_loss_gap = loss_gap(&losses, &exact, data.train.len().div_ceil(batch));
        }
        Ok(Reference {
            mlp,
            losses,
            fp64_loss_gap,
        })
    })
}

/// The bits of `got`'s weights and momentum against `reference`'s: `None` when both are equal,
/// else how many weights differ.
pub(crate) fn differing_weights(got: &Mlp, reference: &Mlp) -> Option<usize> {
    let differ = |a: &[f64], b: &[f64]| {
        a.len().abs_diff(b.len())
            + a.iter()
                .zip(b)
                .filter(|(x, y)| x.to_bits() != y.to_bits())
                .count()
    };
    let weights = differ(&got.params, &reference.params);
    (weights + differ(&got.velocity, &reference.velocity) > 0).then_some(weights)
}

/// After a repetition's check: the trained model's loss and accuracy on the held-out rows, then
/// its weights poisoned (NaN), so that the next repetition is checked on weights it produced.
pub(crate) fn score_and_poison(trainer: &mut Trainer, data: &Data) -> (f64, f64) {
    let scored = trainer.evaluate(&data.x, &data.labels, &data.test);
    trainer.mlp.params.fill(f64::NAN);
    scored
}

// ---------------------------------------------------------------------------------------------
// `mlp.train`

/// `mlp.train`; see the module documentation.
pub struct MlpTrain;

/// An `mlp.train` point's setup, read and checked from its parameters.
struct Setup {
    hidden: Vec<usize>,
    schedule: Schedule,
    steps: usize,
    sgd: Sgd,
    seed: u64,
    mp: MixedPrecision,
}

fn setup(name: &str, params: &Params) -> Result<Setup, String> {
    let schedule = Schedule {
        batch: count(params, "batch")?,
        grain: count(params, "grain")?,
        ranks: 1,
        micro: count(params, "micro")?,
    };
    schedule.check(name)?;
    Ok(Setup {
        hidden: hidden(name, params)?,
        schedule,
        steps: count(params, "steps")?,
        sgd: sgd(name, params)?,
        seed: int_param(params, "seed")?,
        mp: precision(name, params)?,
    })
}

impl Setup {
    /// Grains of one micro-batch: the most threads that get work.
    fn grains(&self) -> usize {
        self.schedule.batch / self.schedule.micro / self.schedule.grain
    }
}

impl Workload for MlpTrain {
    fn description(&self) -> &'static Description {
        &MLP_TRAIN
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let name = self.name();
        let s = setup(name, params)?;
        let threads = target.resources.threads.max(1) as usize;
        if threads > s.grains() {
            use crate::units::count as n;
            let Schedule { micro, grain, .. } = s.schedule;
            let grains = s.grains() as u64;
            return Err(format!(
                "{name}: threads = {threads} but a micro-batch of {} samples is {} of {grain}, \
                 and each thread computes whole grains: {} would get none; use a batch of at \
                 least {} (threads × micro × grain), a smaller grain, or threads = {grains}",
                s.schedule.batch / micro,
                n(grains, "grain"),
                n(threads as u64 - grains, "thread"),
                threads * micro * grain,
            ));
        }
        let (rows, features, classes) = shape(name, params)?;
        let widths = widths(features, &s.hidden, classes);
        let layout = mlp::Layout::new(&widths).map_err(|e| format!("{name}: {e}"))?;
        target.fits_memory(
            name,
            process_bytes(rows, &widths, &s.schedule, layout.len()),
            "use a smaller dataset (`size`), batch or hidden widths",
        )
    }
    fn data_file<'p>(&self, params: &'p Params) -> Option<(&'static str, &'p str)> {
        super::ml::csv_dataset(params)
    }
    fn work(&self, params: &Params) -> Work {
        training_work(self.name(), params, |p| {
            setup(self.name(), p).map(|s| (s.hidden, s.schedule.batch * s.steps))
        })
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        EXPECTED_EFFICIENCY
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Ok(Box::new(MlpTrainInstance::new(params)?))
    }
}

impl MlpTrainInstance {
    /// The data, the initial weights and the serial reference of the point `params`, in the
    /// current rayon pool.
    fn new(params: &Params) -> anyhow::Result<MlpTrainInstance> {
        let name = MLP_TRAIN.name;
        let s = setup(name, params).map_err(|e| anyhow!(e))?;
        let data = load(name, params, s.seed).map_err(|e| anyhow!("{name}: {e}"))?;
        let widths = widths(data.x.cols(), &s.hidden, data.classes);
        let initial = Mlp::new(&widths, s.seed).map_err(|e| anyhow!("{name}: {e}"))?;
        let reference = serial_reference(
            &data,
            &initial,
            (s.schedule.batch, s.schedule.grain),
            s.steps,
            s.sgd,
            s.mp,
        )?;
        Ok(MlpTrainInstance {
            threads: rayon::current_num_threads(),
            curve: LossCurve::new(reference.losses),
            fp64_loss_gap: reference.fp64_loss_gap,
            reference: reference.mlp,
            setup: s,
            data,
            initial,
            trainer: None,
            wall_s: 0.0,
            timing: mlp::StepTiming::default(),
            scaler: None,
            loss: f64::NAN,
            accuracy: f64::NAN,
        })
    }
}

/// The share of the theoretical peak a training step reaches, for `scalelab plan`'s estimate:
/// its GEMMs are small (a grain of 8 rows for the weight gradients) and the softmax, ReLU and
/// update run beside them. The 64-256-256-8 model of experiments/train-threads.toml reached
/// 16–24% on one core of an AVX-512 EPYC.
pub(crate) const EXPECTED_EFFICIENCY: f64 = 0.15;

/// The analytic work of a training point: the forward and backward FLOPs of the samples its
/// repetition trains (`samples` from `hidden_and_samples`, with the hidden widths); nothing when
/// the point does not read (the check says why).
pub(crate) fn training_work(
    name: &str,
    params: &Params,
    hidden_and_samples: impl FnOnce(&Params) -> Result<(Vec<usize>, usize), String>,
) -> Work {
    let (Ok((hidden, samples)), Ok((_, features, classes))) =
        (hidden_and_samples(params), shape(name, params))
    else {
        return Work::default();
    };
    let Ok(layout) = mlp::Layout::new(&widths(features, &hidden, classes)) else {
        return Work::default();
    };
    Work {
        flops: layout.flops_per_sample() * samples as f64,
        bytes: 0.0,
    }
}

/// The metrics of a trainer's steps that every data-parallel training point records: `steps`,
/// and of mixed precision `skipped_steps` and the final `loss_scale` (from the loss scaler after
/// the last repetition, `None` before one), `fp64_loss_gap` and the mean `zero_grad_share`.
pub(crate) fn step_metrics(
    timing: &mlp::StepTiming,
    scaler: Option<mlp::LossScaler>,
    fp64_loss_gap: f64,
) -> [(&'static str, f64); 5] {
    let steps = timing.steps.max(1) as f64;
    [
        ("steps", timing.steps as f64),
        ("skipped_steps", scaler.map_or(0.0, |s| s.skipped() as f64)),
        ("loss_scale", scaler.map_or(1.0, |s| s.scale())),
        ("fp64_loss_gap", fp64_loss_gap),
        ("zero_grad_share", timing.zero_grad_share / steps),
    ]
}

/// One `mlp.train` point: the data, the initial weights and the serial reference, and what the
/// last repetition measured.
struct MlpTrainInstance {
    threads: usize,
    setup: Setup,
    data: Data,
    initial: Mlp,
    reference: Mlp,
    curve: LossCurve,
    trainer: Option<Trainer>,
    wall_s: f64,
    timing: mlp::StepTiming,
    scaler: Option<mlp::LossScaler>,
    loss: f64,
    accuracy: f64,
    fp64_loss_gap: f64,
}

impl Instance for MlpTrainInstance {
    fn reset(&mut self) {
        self.trainer = Some(Trainer::new(self.initial.clone()).with_precision(self.setup.mp));
    }
    fn run(&mut self) {
        let (initial, mp) = (&self.initial, self.setup.mp);
        let trainer = self
            .trainer
            .get_or_insert_with(|| Trainer::new(initial.clone()).with_precision(mp));
        let Setup {
            schedule,
            steps,
            sgd,
            ..
        } = self.setup;
        let data = &self.data;
        let start = Instant::now();
        self.curve.restart();
        for step in 0..steps {
            let batch = mlp::global_batch(&data.train, schedule.batch, step);
            trainer.step(
                &data.x,
                &data.labels,
                &batch,
                &schedule,
                0,
                sgd,
                &LocalReducer,
            );
            self.curve.step_done(start);
        }
        self.wall_s = start.elapsed().as_secs_f64();
        self.timing = trainer.take_timing();
        self.scaler = Some(*trainer.scaler());
    }
    fn verify(&mut self) -> Result<(), String> {
        let name = MLP_TRAIN.name;
        let Some(mut trainer) = self.trainer.take() else {
            return Err(format!("{name}: no training to check: run did not finish"));
        };
        if let Some(differ) = differing_weights(&trainer.mlp, &self.reference) {
            return Err(format!(
                "{name}: {} threads, micro = {}: after {} steps {differ} of {} weights (or the \
                 momentum) differ from the bits of the serial reference (one thread, one \
                 micro-batch)",
                self.threads,
                self.setup.schedule.micro,
                self.setup.steps,
                trainer.mlp.params.len()
            ));
        }
        (self.loss, self.accuracy) = score_and_poison(&mut trainer, &self.data);
        self.trainer = Some(trainer);
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let steps = self.timing.steps.max(1) as f64;
        let samples = (self.setup.schedule.batch * self.setup.steps) as f64;
        let p = self.reference.params.len();
        vec![
            (
                "samples_per_s",
                samples / self.wall_s.max(f64::MIN_POSITIVE),
            ),
            ("compute_s", self.timing.compute_s),
            ("step_s", self.wall_s / steps),
            ("busy_threads", self.threads.min(self.setup.grains()) as f64),
            ("param_bytes", 8.0 * p as f64),
            ("mem_peak_bytes", peak_state_bytes(p, 1, false) as f64),
            ("loss", self.loss),
            ("accuracy", self.accuracy),
        ]
        .into_iter()
        .chain(step_metrics(&self.timing, self.scaler, self.fp64_loss_gap))
        .collect()
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        self.curve.detail().into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::test_params;

    /// An `mlp.train` point on iris (120 training rows): 16 hidden units, batches of 32 in grains
    /// of 4, 6 steps, with `overrides`.
    fn iris(overrides: &[(&str, &str)]) -> Params {
        // `test_params` takes a key's first value: the overrides first.
        let mut all = overrides.to_vec();
        all.extend_from_slice(&[
            ("dataset", "iris"),
            ("hidden", "16"),
            ("batch", "32"),
            ("grain", "4"),
            ("steps", "6"),
        ]);
        test_params(MLP_TRAIN_PARAMS, &all)
    }

    /// Prepare and run `params` (two repetitions) in a pool of `threads`, flipping the last bit
    /// of one weight before the check when `tamper`: the check's verdict, then the metrics and
    /// the loss curve's step count.
    fn train_in_pool(
        params: &Params,
        threads: usize,
        tamper: bool,
    ) -> Result<Vec<(&'static str, f64)>, String> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut instance = MlpTrainInstance::new(params).unwrap();
            for _ in 0..2 {
                instance.reset();
                instance.run();
                if tamper {
                    let t = instance.trainer.as_mut().unwrap();
                    t.mlp.params[3] = f64::from_bits(t.mlp.params[3].to_bits() ^ 1);
                }
                instance.verify()?;
            }
            let mut metrics = instance.metrics();
            let curve = instance.details()[0].1.split("; ").count();
            metrics.push(("curve_steps", curve as f64));
            Ok(metrics)
        })
    }

    fn metric(metrics: &[(&'static str, f64)], name: &str) -> f64 {
        metrics.iter().find(|(n, _)| *n == name).unwrap().1
    }

    #[test]
    fn every_thread_count_trains_the_serial_weights_and_one_flipped_bit_fails() {
        for overrides in [
            vec![],
            vec![("micro", "2")],
            vec![("precision", "bf16"), ("loss_scale", "dynamic")],
        ] {
            let p = iris(&overrides);
            let mut losses = Vec::new();
            for threads in [1, 2, 3, 4] {
                let m = train_in_pool(&p, threads, false)
                    .unwrap_or_else(|e| panic!("{overrides:?}, {threads} threads: {e}"));
                assert_eq!(metric(&m, "steps"), 6.0);
                assert_eq!(metric(&m, "curve_steps"), 6.0);
                assert_eq!(metric(&m, "busy_threads"), threads as f64);
                assert!(metric(&m, "samples_per_s") > 0.0);
                losses.push(metric(&m, "loss").to_bits());
            }
            // The same weights, so the same held-out loss to the last bit.
            assert!(losses.iter().all(|l| *l == losses[0]), "{overrides:?}");
        }
        // bf16 strays from fp64; fp64 is its own reference.
        let bf16 = train_in_pool(&iris(&[("precision", "bf16")]), 1, false).unwrap();
        assert!(metric(&bf16, "fp64_loss_gap") > 0.0);
        let fp64 = train_in_pool(&iris(&[]), 1, false).unwrap();
        assert_eq!(metric(&fp64, "fp64_loss_gap"), 0.0);
        assert_eq!(
            train_in_pool(&iris(&[("micro", "2")]), 2, true).unwrap_err(),
            "mlp.train: 2 threads, micro = 2: after 6 steps 1 of 131 weights (or the momentum) \
             differ from the bits of the serial reference (one thread, one micro-batch)"
        );
    }

    #[test]
    fn more_threads_than_grains_and_a_batch_that_does_not_split_are_refused_at_check_time() {
        let p = iris(&[("micro", "2")]);
        assert_eq!(
            MlpTrain.check(&p, &Target::test(8)).unwrap_err(),
            "mlp.train: threads = 8 but a micro-batch of 16 samples is 4 grains of 4, and each \
             thread computes whole grains: 4 threads would get none; use a batch of at least 64 \
             (threads × micro × grain), a smaller grain, or threads = 4"
        );
        assert!(MlpTrain.check(&p, &Target::test(4)).is_ok());
        assert_eq!(
            MlpTrain
                .check(&iris(&[("batch", "30")]), &Target::test(1))
                .unwrap_err(),
            "mlp.train: the global batch of 30 samples is not divisible by micro-batches × grain \
             = 1 × 4 = 4: every micro-batch must hold whole grains; use a batch that is a \
             multiple of 4 (e.g. 32)"
        );
        assert_eq!(
            MlpTrain
                .check(&iris(&[("dataset", "diabetes")]), &Target::test(1))
                .unwrap_err(),
            "mlp.train: dataset `diabetes` is a regression task; training needs class labels: \
             use iris, breast_cancer, digits, wine_quality, synthetic or a CSV file with class \
             labels"
        );
    }

    #[test]
    fn the_work_is_the_training_flops_of_every_step() {
        // 4 → 16 → 3: 4·4·16 + 6·16·3 FLOPs a sample, 32 samples a step, 6 steps.
        let work = MlpTrain.work(&iris(&[]));
        assert_eq!(work.flops, (4.0 * 64.0 + 6.0 * 48.0) * 32.0 * 6.0);
    }

    #[test]
    fn the_loss_gap_compares_epoch_means_and_a_diverged_curve_is_infinitely_far() {
        let exact = [2.0, 1.0, 1.0, 0.5, 0.5];
        // Epochs of 2 steps: means 1.5 | 0.75 | 0.5 against 1.5 | 0.75 | 0.55.
        let got = [1.0, 2.0, 0.5, 1.0, 0.55];
        assert!((loss_gap(&got, &exact, 2) - 0.1).abs() < 1e-12);
        // Step by step the same curve is 50% off.
        assert_eq!(loss_gap(&got, &exact, 1), 1.0);
        assert_eq!(loss_gap(&exact, &exact, 2), 0.0);
        let diverged = [1.5, 1.5, f64::NAN, 0.5, 0.5];
        assert_eq!(loss_gap(&diverged, &exact, 2), f64::INFINITY);
    }
}

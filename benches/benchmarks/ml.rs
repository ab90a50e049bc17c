//! The ML workloads' building blocks, each reporting fits per second (`Throughput::Elements` = fits):
//!
//! * `ml/fit/<estimator>/<threads>t`: one fit of a decision tree, a 100-tree random forest and a
//!   100-iteration histogram gradient boosting on 20 000 × 20 synthetic classification (the size
//!   `scripts/compare-sklearn.sh` compares with scikit-learn), on pools of 1 and 2 threads;
//! * `ml/nested/<level>/<threads>t`: nested cross-validation's task list (`scalelab_ml::search`):
//!   breast cancer, a 2 × 2 random forest grid (20 trees), 5 outer × 3 inner folds = 80 fits, at
//!   every level of parallelism on pools of 1 and 2 threads;
//! * `ml/train/<threads>t`: one optimizer step of the MLP 64-512-512-8 of
//!   `scripts/compare-train.sh` (global batch 2048 in grains of 32, SGD with momentum) in one
//!   process on pools of 1 and 2 threads (`Throughput::Elements` = samples): data parallelism
//!   over threads, which needs no MPI. On 2 threads each thread takes a contiguous run of the
//!   samples through every layer's forward GEMM (with its bias, ReLU and rounding) and input
//!   gradient GEMM (with its ReLU mask), and a contiguous run of grains through the weight
//!   gradients; the grains are then summed along the fixed tree in blocks of columns shared by
//!   the threads, and the SGD update runs on one thread.
//!
//! Run with `cargo bench --bench bench_main -- ml/`.

use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use scalelab_ml::estimator::HyperParams;
use scalelab_ml::estimators;
use scalelab_ml::metrics::Scoring;
use scalelab_ml::search::{self, Parallelism, ParamGrid, Search};

fn nested(c: &mut Criterion) {
    let data = scalelab_ml::data::load("breast_cancer").expect("built-in dataset");
    let build = |p: &HyperParams| estimators::build("random_forest", p);
    let mut base = HyperParams::new();
    base.insert("n_estimators".into(), scalelab_ml::estimator::Hp::Int(20));
    let grid = ParamGrid::parse("max_depth=4,8; max_features=sqrt,0.5").expect("grid");
    let s = Search {
        build: &build,
        candidates: grid
            .candidates()
            .iter()
            .map(|g| search::merge(&base, g))
            .collect(),
        scoring: Scoring::Accuracy,
        seed: 42,
    };
    let (_, tasks) = s.nested_tasks(&data, 5, 3).expect("tasks");
    let reference = s
        .nested(&data, 5, 3, &Parallelism::Serial)
        .expect("serial run");

    let mut group = c.benchmark_group("ml/nested");
    group.throughput(Throughput::Elements(tasks.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        for name in ["trees", "folds", "grid", "all"] {
            let p = Parallelism::parse(name).expect("parallelism");
            // A benchmark of a wrong answer is worthless: check once before timing.
            assert_eq!(
                pool.install(|| s.nested(&data, 5, 3, &p)).as_ref(),
                Ok(&reference)
            );
            group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
                b.iter(|| pool.install(|| s.nested(&data, 5, 3, &p).expect("nested CV")))
            });
        }
    }
    group.finish();
}

fn fits(c: &mut Criterion) {
    use scalelab_ml::data::{make_classification, Synthetic};
    use scalelab_ml::estimator::{FitOptions, Hp};
    let data = make_classification(&Synthetic {
        samples: 20_000,
        features: 20,
        informative: 10,
        redundant: 5,
        seed: 0,
        ..Synthetic::default()
    })
    .expect("synthetic data");
    let rows: Vec<usize> = (0..data.rows()).collect();
    let mut group = c.benchmark_group("ml/fit");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    for (name, params) in [
        ("decision_tree", vec![]),
        ("random_forest", vec![("n_estimators", 100)]),
        ("hist_gradient_boosting", vec![("max_iter", 100)]),
    ] {
        let params: HyperParams = params
            .into_iter()
            .map(|(k, v)| (k.to_string(), Hp::Int(v)))
            .collect();
        let est = estimators::build(name, &params).expect("estimator");
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool");
            group.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
                b.iter(|| {
                    pool.install(|| {
                        est.fit(&data, &rows, None, 42, FitOptions::default())
                            .expect("fit")
                    })
                })
            });
        }
    }
    group.finish();
}

/// One training step, data parallel over a pool's threads (`scalelab_ml::mlp::Trainer`: runs of
/// rows for the forward pass and the input gradient, runs of grains for the weight gradient).
fn train(c: &mut Criterion) {
    use scalelab_ml::data::{make_classification, Synthetic};
    use scalelab_ml::mlp::{global_batch, LocalReducer, Mlp, Schedule, Sgd, Trainer};
    let data = make_classification(&Synthetic {
        samples: 8192,
        features: 64,
        informative: 16,
        classes: 8,
        seed: 0,
        ..Synthetic::default()
    })
    .expect("synthetic data");
    let labels = data.y.labels().expect("classes").to_vec();
    let order: Vec<usize> = (0..data.rows()).collect();
    let schedule = Schedule {
        batch: 2048,
        grain: 32,
        ranks: 1,
        micro: 1,
    };
    schedule.check("ml/train").expect("schedule");
    let sgd = Sgd {
        lr: 0.01,
        momentum: 0.9,
    };
    let initial = Mlp::new(&[64, 512, 512, 8], 7).expect("model");
    let batch = global_batch(&order, schedule.batch, 0);
    let step = |t: &mut Trainer| {
        t.step(&data.x, &labels, &batch, &schedule, 0, sgd, &LocalReducer);
    };
    let mut group = c.benchmark_group("ml/train");
    group.throughput(Throughput::Elements(schedule.batch as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    let mut first: Option<Vec<u64>> = None;
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool");
        // A benchmark of a wrong answer is worthless: every thread count takes the same step,
        // bit for bit.
        let mut t = Trainer::new(initial.clone());
        pool.install(|| step(&mut t));
        let bits: Vec<u64> = t.mlp.params.iter().map(|v| v.to_bits()).collect();
        assert_eq!(first.get_or_insert_with(|| bits.clone()), &bits);
        group.bench_function(BenchmarkId::from_parameter(format!("{threads}t")), |b| {
            b.iter(|| pool.install(|| step(&mut t)))
        });
    }
    group.finish();
}

criterion_group!(benches, fits, nested, train);

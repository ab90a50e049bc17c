//! The cross-validation workloads distributed over MPI ranks: the real `scalelab` binary runs
//! `mpi.cv.nested` and `mpi.cv.kfold` at 1, 2 and 4 ranks (`mpirun`) and 2 ranks × 2 threads, with
//! the static scatter and the dynamic hand-out, and every point must verify (each rank checks the gathered results against its serial
//! reference) and report the same scores to the last bit as the single-process run. Needs the `mpi`
//! feature and OpenMPI's `mpirun` on `PATH`.

use serde_json::Value;

mod common;
use common::{describe, metric, records, run_manifest};

/// The metric `name` of every repetition of `rec`, as bits.
fn metric_bits(rec: &Value, name: &str) -> Vec<u64> {
    metric(rec, name).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn cross_validation_over_ranks_matches_the_single_process_run() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "ml-mpi"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "nested"
workload = "mpi.cv.nested"
oversubscribe = true
ranks = [1, 2, 4]
distribution = ["static", "dynamic"]
dataset = "breast_cancer"
estimator = "random_forest"
trees = 4
grid = "max_depth=2,4; max_features=sqrt,0.5"
outer = 3
inner = 2

# Hybrid: 2 ranks × 2 threads, every fold's fits in parallel inside each rank.
[[study]]
name = "hybrid"
workload = "mpi.cv.nested"
oversubscribe = true
ranks = 2
threads = 2
parallelism = "all"
distribution = ["static", "dynamic"]
dataset = "breast_cancer"
estimator = "random_forest"
trees = 4
grid = "max_depth=2,4; max_features=sqrt,0.5"
outer = 3
inner = 2

[[study]]
name = "kfold"
workload = "mpi.cv.kfold"
oversubscribe = true
ranks = [1, 2, 4]
distribution = ["static", "dynamic"]
dataset = "iris"
estimator = "decision_tree"
grid = "max_depth=1,2,3"
folds = 5
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 14);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    for (studies, count, fits, metrics) in [
        (
            &["nested", "hybrid"][..],
            8,
            36.0,
            &["nested_score", "non_nested_score"][..],
        ),
        (&["kfold"][..], 6, 15.0, &["cv_score"][..]),
    ] {
        let points: Vec<&Value> = recs
            .iter()
            .filter(|r| studies.iter().any(|s| r["point"]["study_name"] == *s))
            .collect();
        assert_eq!(points.len(), count);
        for p in &points {
            assert_eq!(p["repetitions"][0]["metrics"]["fits"].as_f64(), Some(fits));
            for m in metrics {
                assert_eq!(
                    metric_bits(p, m),
                    metric_bits(points[0], m),
                    "{m}: {} vs {}",
                    describe(p),
                    describe(points[0])
                );
            }
        }
    }
}

/// `mpi.ml.hgb`: histogram gradient boosting with the training rows split over 1, 2 and 4 ranks
/// (and 2 ranks × 2 threads) must verify against the single-process model on every rank (held-out
/// predictions and probabilities bit for bit, early stopping on) and so score the same to the last
/// bit at every rank count; the records carry the rows per rank and the reduction traffic.
#[test]
fn data_parallel_boosting_over_ranks_is_the_single_process_model() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "ml-dataparallel"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "classes"
workload = "mpi.ml.hgb"
oversubscribe = true
ranks = [1, 2, 4]
dataset = "synthetic"
size = 3000
features = 8
classes = 3
trees = 12
hyper = "early_stopping=true; n_iter_no_change=3"

[[study]]
name = "hybrid"
workload = "mpi.ml.hgb"
oversubscribe = true
ranks = 2
threads = 2
dataset = "synthetic"
size = 3000
features = 8
classes = 3
trees = 12
hyper = "early_stopping=true; n_iter_no_change=3"

[[study]]
name = "values"
workload = "mpi.ml.hgb"
oversubscribe = true
ranks = [1, 2, 4]
dataset = "diabetes"
trees = 20
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 7);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    for (studies, metric, train) in [
        (&["classes", "hybrid"][..], "accuracy", 2250.0),
        (&["values"][..], "r2", 331.0),
    ] {
        let points: Vec<&Value> = recs
            .iter()
            .filter(|r| studies.iter().any(|s| r["point"]["study_name"] == *s))
            .collect();
        for p in &points {
            assert_eq!(metric_bits(p, metric), metric_bits(points[0], metric));
            let ranks = p["point"]["resources"]["ranks"].as_f64().unwrap();
            let m = &p["repetitions"][0]["metrics"];
            assert_eq!(
                m["rows_per_rank"].as_f64(),
                Some((train / ranks).ceil()),
                "{}",
                describe(p)
            );
            assert!(m["allreduce_bytes"].as_f64().unwrap() > 0.0);
            assert!(m["allreduce_calls"].as_f64().unwrap() >= 12.0);
        }
    }
}

#[test]
fn data_parallel_boosting_refuses_more_ranks_than_training_rows() {
    let dir = tempfile::tempdir().unwrap();
    let csv: String = std::iter::once("x,target\n".to_string())
        .chain((0..8).map(|i| format!("{i},{}\n", i % 2)))
        .collect();
    std::fs::write(dir.path().join("tiny.csv"), csv).unwrap();
    let (_, code, out) = run_manifest(
        dir.path(),
        r#"
name = "too-many-ranks"
[[study]]
name = "tiny"
workload = "mpi.ml.hgb"
oversubscribe = true
ranks = 4
dataset = "tiny.csv"
"#,
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "mpi.ml.hgb: 4 ranks for a dataset of 8 rows (6 training rows, fewer with early \
             stopping's validation share): every rank must hold training rows; use at most 3 \
             ranks or a larger dataset (`size`)"
        ),
        "{out}"
    );
}

/// `mpi.ml.forest`: the hist random forest with the training rows split over 1, 2 and 4 ranks
/// (and 2 ranks × 2 threads), held-out rows predicted sharded and gathered, must verify against
/// the single-process forest on every rank (held-out predictions and probabilities bit for bit)
/// and so score the same to the last bit at every rank count, for classes and for values; the
/// records carry the rows per rank, the reduction traffic and the data each rank holds for the
/// timed fit (its own rows only: it shrinks with the ranks).
#[test]
fn data_parallel_forest_over_ranks_is_the_single_process_forest() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "ml-dataparallel-forest"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "classes"
workload = "mpi.ml.forest"
oversubscribe = true
ranks = [1, 2, 4]
dataset = "synthetic"
size = 2000
features = 8
classes = 3
trees = 6
hyper = "max_depth=8"

[[study]]
name = "hybrid"
workload = "mpi.ml.forest"
oversubscribe = true
ranks = 2
threads = 2
dataset = "synthetic"
size = 2000
features = 8
classes = 3
trees = 6
hyper = "max_depth=8"

[[study]]
name = "values"
workload = "mpi.ml.forest"
oversubscribe = true
ranks = [1, 2, 4]
dataset = "diabetes"
trees = 5
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 7);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    for (studies, metric, train, test, cols) in [
        (&["classes", "hybrid"][..], "accuracy", 1500.0, 500.0, 8.0),
        (&["values"][..], "r2", 331.0, 111.0, 10.0),
    ] {
        let points: Vec<&Value> = recs
            .iter()
            .filter(|r| studies.iter().any(|s| r["point"]["study_name"] == *s))
            .collect();
        for p in &points {
            assert_eq!(metric_bits(p, metric), metric_bits(points[0], metric));
            let ranks = p["point"]["resources"]["ranks"].as_f64().unwrap();
            let m = &p["repetitions"][0]["metrics"];
            for (name, rows) in [("rows_per_rank", train), ("test_rows_per_rank", test)] {
                assert_eq!(
                    m[name].as_f64(),
                    Some((rows / ranks).ceil()),
                    "{name}: {}",
                    describe(p)
                );
            }
            assert!(m["allreduce_calls"].as_f64().unwrap() >= 6.0);
            // A rank holds only its training and held-out rows (8 bytes a value and target),
            // its training rows' codes (2 bytes a value) and the held-out targets.
            let (own_train, own_test) = ((train / ranks).ceil(), (test / ranks).ceil());
            assert_eq!(
                m["data_bytes"].as_f64(),
                Some(
                    8.0 * (own_train + own_test) * (cols + 1.0)
                        + 2.0 * own_train * cols
                        + 8.0 * test
                ),
                "{}",
                describe(p)
            );
        }
    }
}

#[test]
fn data_parallel_forest_refuses_the_exact_splitter_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (_, code, out) = run_manifest(
        dir.path(),
        r#"
name = "exact-forest"
[[study]]
name = "exact"
workload = "mpi.ml.forest"
oversubscribe = true
ranks = 2
dataset = "iris"
hyper = "splitter=exact"
"#,
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(
            "mpi.ml.forest: random_forest: data-parallel training (rows split over processes) \
             needs the hist splitter"
        ) && out.contains("set splitter = \"hist\""),
        "{out}"
    );
}

/// `mpi.ml.forest` on a CSV file: each rank streams the file for the target column and keeps
/// only its own rows' features. With `reference = "full"` (1, 2, 4 ranks) rank 0 alone loads
/// the file whole and fits the single-process forest, which every rank's gathered predictions
/// must equal bit for bit; with `reference = "none"` (2, 4 ranks) no rank holds the whole file
/// and the ranks check that they grew the same forest. Every point scores the same to the last
/// bit as `forest.fit` (one process, hist splitter) on the same file, for string classes and for
/// a numeric target; the records carry the data a rank holds and its measured peak memory.
#[test]
fn data_parallel_forest_reads_only_its_rows_of_a_csv_file() {
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes.csv");
    let values = dir.path().join("values.csv");
    let mut c = String::from("a,b,kind,c,d,e\n");
    let mut v = String::from("x1,x2,x3,y\n");
    for r in 0..1200u64 {
        // Deterministic, irregular values; blank lines and padding are part of the format.
        let h = |k: u64| ((r * 2654435761 + k * 40503) % 10007) as f64 / 97.0;
        let kind = ["north", "south", "east"][(h(9) as usize + r as usize) % 3];
        c.push_str(&format!(
            "{}, {},{kind},{},{},{}\n",
            h(1),
            h(2) - 50.0,
            h(3) * 1e-3,
            (r % 17) as f64,
            h(5)
        ));
        if r % 101 == 7 {
            c.push('\n');
        }
        if r < 600 {
            v.push_str(&format!(
                "{},{},{},{}\n",
                h(1),
                h(2),
                h(3),
                h(1) * 0.3 - h(2) / 7.0
            ));
        }
    }
    std::fs::write(&classes, c).unwrap();
    std::fs::write(&values, v).unwrap();
    let study = |name: &str, workload: &str, file: &std::path::Path, target: &str, more: &str| {
        format!(
            "[[study]]\nname = \"{name}\"\nworkload = \"{workload}\"\ndataset = \"{}\"\n\
             target = \"{target}\"\ntrees = 5\n{more}\n",
            file.display()
        )
    };
    let mut manifest =
        String::from("name = \"csv-forest\"\nrepetitions = 2\nwarmup = 0\ntimeout = \"2m\"\n");
    for (tag, file, target, hyper) in [
        ("classes", &classes, "kind", "max_depth=8"),
        ("values", &values, "y", "max_depth=6"),
    ] {
        let mpi = |reference: &str, ranks: &str| {
            format!(
                "oversubscribe = true\nranks = {ranks}\nreference = \"{reference}\"\n\
                 hyper = \"{hyper}\""
            )
        };
        manifest += &study(
            &format!("{tag}-one"),
            "forest.fit",
            file,
            target,
            &format!("estimator = \"random_forest\"\nhyper = \"{hyper}; splitter=hist\""),
        );
        manifest += &study(
            &format!("{tag}-full"),
            "mpi.ml.forest",
            file,
            target,
            &mpi("full", "[1, 2, 4]"),
        );
        manifest += &study(
            &format!("{tag}-none"),
            "mpi.ml.forest",
            file,
            target,
            &mpi("none", "[2, 4]"),
        );
    }
    let (run_dir, code, out) = run_manifest(dir.path(), &manifest);
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 12);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    for (tag, metric, rows, cols) in [
        ("classes", "accuracy", 1200.0, 5.0),
        ("values", "r2", 600.0, 3.0),
    ] {
        let points: Vec<&Value> = recs
            .iter()
            .filter(|r| {
                r["point"]["study_name"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(tag))
            })
            .collect();
        assert_eq!(points.len(), 6);
        let one = points
            .iter()
            .find(|p| p["point"]["workload"] == "forest.fit")
            .unwrap();
        for p in &points {
            assert_eq!(
                metric_bits(p, metric),
                metric_bits(one, metric),
                "{}",
                describe(p)
            );
            if p["point"]["workload"] == "forest.fit" {
                continue;
            }
            let ranks = p["point"]["resources"]["ranks"].as_f64().unwrap();
            let m = &p["repetitions"][0]["metrics"];
            let test = (rows / 4.0f64).ceil();
            let (own_train, own_test) = (((rows - test) / ranks).ceil(), (test / ranks).ceil());
            assert_eq!(
                m["data_bytes"].as_f64(),
                Some(
                    8.0 * (own_train + own_test) * (cols + 1.0)
                        + 2.0 * own_train * cols
                        + 8.0 * test
                ),
                "{}",
                describe(p)
            );
            assert!(
                m["peak_rss_bytes"].as_f64().unwrap() > 0.0,
                "{}",
                describe(p)
            );
        }
    }
}

/// `mpi.ml.hgb` on a CSV file, the booster twin of the forest case above: each rank streams the
/// file for the target column, takes the booster's early-stopping validation split from the
/// targets alone, and keeps only its own training, validation and held-out rows' features (plus
/// every training target). With `reference = "full"` (1, 2, 4 ranks) rank 0 alone loads the file
/// and fits the single-process model, which every rank's gathered predictions must equal bit for
/// bit; with `reference = "none"` (2, 4 ranks) no rank holds the whole file. Every point scores
/// the same to the last bit as `gboost.fit` (one process) on the same file: string classes with
/// early stopping, a numeric target without; `data_bytes` counts exactly the rank's rows.
#[test]
fn data_parallel_boosting_reads_only_its_rows_of_a_csv_file() {
    let dir = tempfile::tempdir().unwrap();
    let classes = dir.path().join("classes.csv");
    let values = dir.path().join("values.csv");
    let mut c = String::from("a,b,kind,c,d,e\n");
    let mut v = String::from("x1,x2,x3,y\n");
    for r in 0..1200u64 {
        let h = |k: u64| ((r * 2654435761 + k * 40503) % 10007) as f64 / 97.0;
        let kind = ["north", "south", "east"][(h(9) as usize + r as usize) % 3];
        c.push_str(&format!(
            "{},{},{kind},{},{},{}\n",
            h(1),
            h(2) - 50.0,
            h(3) * 1e-3,
            (r % 17) as f64,
            h(5)
        ));
        if r < 600 {
            v.push_str(&format!(
                "{},{},{},{}\n",
                h(1),
                h(2),
                h(3),
                h(1) * 0.3 - h(2) / 7.0
            ));
        }
    }
    std::fs::write(&classes, c).unwrap();
    std::fs::write(&values, v).unwrap();
    let study = |name: &str, workload: &str, file: &std::path::Path, target: &str, more: &str| {
        format!(
            "[[study]]\nname = \"{name}\"\nworkload = \"{workload}\"\ndataset = \"{}\"\n\
             target = \"{target}\"\ntrees = 12\n{more}\n",
            file.display()
        )
    };
    let mut manifest =
        String::from("name = \"csv-hgb\"\nrepetitions = 2\nwarmup = 0\ntimeout = \"2m\"\n");
    for (tag, file, target, hyper) in [
        (
            "classes",
            &classes,
            "kind",
            "early_stopping=true; n_iter_no_change=3",
        ),
        ("values", &values, "y", "early_stopping=false; max_depth=4"),
    ] {
        let mpi = |reference: &str, ranks: &str| {
            format!(
                "oversubscribe = true\nranks = {ranks}\nreference = \"{reference}\"\n\
                 hyper = \"{hyper}\""
            )
        };
        manifest += &study(
            &format!("{tag}-one"),
            "gboost.fit",
            file,
            target,
            &format!("estimator = \"hist_gradient_boosting\"\nhyper = \"{hyper}\""),
        );
        manifest += &study(
            &format!("{tag}-full"),
            "mpi.ml.hgb",
            file,
            target,
            &mpi("full", "[1, 2, 4]"),
        );
        manifest += &study(
            &format!("{tag}-none"),
            "mpi.ml.hgb",
            file,
            target,
            &mpi("none", "[2, 4]"),
        );
    }
    let (run_dir, code, out) = run_manifest(dir.path(), &manifest);
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 12);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    // (tag, metric, rows, feature columns, early-stopping validation rows of the 3/4 split)
    for (tag, metric, rows, cols, val) in [
        ("classes", "accuracy", 1200usize, 5usize, 90usize),
        ("values", "r2", 600, 3, 0),
    ] {
        let points: Vec<&Value> = recs
            .iter()
            .filter(|r| {
                r["point"]["study_name"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(tag))
            })
            .collect();
        assert_eq!(points.len(), 6);
        let one = points
            .iter()
            .find(|p| p["point"]["workload"] == "gboost.fit")
            .unwrap();
        for p in &points {
            assert_eq!(
                metric_bits(p, metric),
                metric_bits(one, metric),
                "{}",
                describe(p)
            );
            if p["point"]["workload"] == "gboost.fit" {
                continue;
            }
            let ranks = p["point"]["resources"]["ranks"].as_u64().unwrap() as usize;
            let m = &p["repetitions"][0]["metrics"];
            // A contiguous shard of n rows (as `Shard::range` cuts them).
            let part = |n: usize, r: usize| n * (r + 1) / ranks - n * r / ranks;
            let test = rows.div_ceil(4);
            let train = rows - test - val;
            // The largest over ranks: its rows' values and targets, its training rows' codes,
            // every held-out and every training target.
            let bytes = (0..ranks)
                .map(|r| {
                    let (t, v, s) = (part(train, r), part(val, r), part(test, r));
                    8 * (t + v + s) * (cols + 1) + 2 * t * cols + 8 * test + 8 * train
                })
                .max()
                .unwrap();
            assert_eq!(
                m["data_bytes"].as_f64(),
                Some(bytes as f64),
                "{}",
                describe(p)
            );
            assert_eq!(
                m["rows_per_rank"].as_f64(),
                Some((rows - test).div_ceil(ranks) as f64),
                "{}",
                describe(p)
            );
            assert!(
                m["peak_rss_bytes"].as_f64().unwrap() > 0.0,
                "{}",
                describe(p)
            );
        }
    }
}

//! The ML workloads through the real binary: a small experiment run end to end (every point in its
//! own process, verified against its serial reference), its CSV files and report parsed back, and
//! bad ML manifests refused with their exact errors before anything runs.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{column, read_csv, scalelab, write};

/// A CSV dataset of two separable classes (x > 10), `n` rows, target column `label`.
fn csv_dataset(dir: &Path, n: usize) -> PathBuf {
    let mut text = String::from("x,noise,label\n");
    for i in 0..n {
        let x = (i * 7) % 21;
        text.push_str(&format!("{x},{},{}\n", (i * 13) % 5, u8::from(x > 10)));
    }
    write(dir, "two.csv", &text)
}

#[test]
fn an_ml_experiment_runs_verified_and_reports_fits_and_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let data = csv_dataset(dir.path(), 60);
    let manifest = write(
        dir.path(),
        "ml.toml",
        &format!(
            r#"name = "ml"
repetitions = 2
warmup = 0
timeout = "1m"

[[study]]
workload = "forest.fit"
threads = [1, 2]
dataset = "breast_cancer"
trees = 12

[[study]]
workload = "cv.nested"
threads = [1, 2]
dataset = "iris"
estimator = "decision_tree"
grid = "max_depth=1,3; criterion=gini,entropy"
outer = 3
inner = 2
parallelism = ["serial", "trees", "folds", "grid", "all"]

[[study]]
workload = "cv.kfold"
threads = [2]
dataset = "{}"
target = "label"
estimator = "random_forest"
trees = 5
grid = "max_depth=1,2,3"
search = "random"
n_iter = 2
folds = 4
"#,
            data.display()
        ),
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("fits/s"), "live lines show fits/s: {text}");

    let (h, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 2 + 10 + 1);
    for r in &rows {
        assert_eq!(column(&h, r, "status"), "ok", "{r:?}");
    }
    let hr = &h;
    let of = |w: &'static str| -> Vec<&Vec<String>> {
        rows.iter()
            .filter(|r| column(hr, r, "workload") == w)
            .collect()
    };
    for r in of("forest.fit") {
        assert_eq!(column(&h, r, "metric_fits"), "1");
        let acc: f64 = column(&h, r, "metric_accuracy").parse().unwrap();
        assert!(acc > 0.85 && acc <= 1.0, "held-out accuracy {acc}");
    }
    // Both thread counts fit the same forest: the same held-out accuracy to the last bit.
    let accs: Vec<&str> = of("forest.fit")
        .into_iter()
        .map(|r| column(&h, r, "metric_accuracy"))
        .collect();
    assert_eq!(accs[0], accs[1]);
    // Nested CV: 3 outer × 4 candidates × (2 inner + 1 refit) fits, identical scores at every
    // parallelism and thread count.
    let nested = of("cv.nested");
    assert_eq!(nested.len(), 10);
    let nested_id = column(&h, nested[0], "point_id").to_string();
    for r in &nested {
        assert_eq!(column(&h, r, "metric_fits"), "36");
        for m in [
            "metric_nested_score",
            "metric_non_nested_score",
            "metric_nested_accuracy",
        ] {
            assert_eq!(column(&h, r, m), column(&h, nested[0], m), "{m}");
        }
    }
    let nested_acc: f64 = column(&h, nested[0], "metric_nested_accuracy")
        .parse()
        .unwrap();
    let non_nested: f64 = column(&h, nested[0], "metric_non_nested_accuracy")
        .parse()
        .unwrap();
    assert!(nested_acc > 0.85, "{nested_acc}");
    assert!(
        non_nested >= nested_acc - 1e-12,
        "non-nested is never below nested here"
    );
    // k-fold on the CSV file: 2 random candidates × 4 folds; the classes are separable.
    let kfold = of("cv.kfold")[0];
    assert_eq!(column(&h, kfold, "metric_fits"), "8");
    assert_eq!(column(&h, kfold, "metric_cv_accuracy"), "1");

    let (h, reps) = read_csv(&run_dir.join("measurements.csv"));
    assert_eq!(reps.len(), 26);
    assert!(reps.iter().all(|r| column(&h, r, "verified") == "true"));

    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert_eq!(report.matches("### Model fits and quality").count(), 3);
    assert!(
        report.contains("| nested_score | non_nested_score | optimism |"),
        "{report}"
    );
    // Each nested record names the candidate each outer fold chose, and the report lists them.
    let id = &nested_id;
    let record: serde_json::Value = serde_json::from_str(
        &fs::read_to_string(run_dir.join("points").join(format!("{id}.json"))).unwrap(),
    )
    .unwrap();
    let chosen = record["repetitions"][1]["details"]["chosen"]
        .as_str()
        .unwrap();
    let folds: Vec<&str> = chosen.split("; ").collect();
    assert_eq!(folds.len(), 3, "{chosen}");
    for (o, f) in folds.iter().enumerate() {
        let (head, candidate) = f.split_once(": ").unwrap();
        assert_eq!(head, format!("outer {}", o + 1));
        assert!(
            candidate.contains("criterion=") && candidate.contains("max_depth="),
            "{chosen}"
        );
    }
    assert!(
        report.contains("#### Hyperparameters chosen in each outer fold")
            && report.contains(&format!("| {chosen} |")),
        "{report}"
    );
    // The nested study plots non-nested against nested scores, one marker per parameter set.
    let plot = fs::read_dir(run_dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with("-nested.svg"))
        .expect("a nested vs non-nested plot");
    let svg = fs::read_to_string(&plot).unwrap();
    assert!(svg.contains(": non-nested vs nested score"), "{svg}");
    assert!(
        svg.contains(">\ncv.nested · "),
        "the workload opens the subtitle: {svg}"
    );
    assert!(svg.contains("no optimism: non-nested = nested"), "{svg}");
    assert!(report.contains(&format!(
        "plots/{}",
        plot.file_name().unwrap().to_string_lossy()
    )));
}

/// `scalelab plan` on a manifest with one study: exit code 2 and the error lines.
fn plan_error(study: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "bad.toml",
        &format!("name = \"bad\"\n\n[[study]]\n{study}"),
    );
    let out = scalelab()
        .env("RUST_BACKTRACE", "1")
        .arg("plan")
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr.replace(&manifest.display().to_string(), "bad.toml")
}

#[test]
fn bad_ml_manifests_are_refused_with_the_fix() {
    let fix = "  fix: change or remove these values";
    assert_eq!(
        plan_error("workload = \"cv.nested\"\ndataset = \"iris\"\nestimator = \"random_forrest\"\n")
            .lines()
            .next()
            .unwrap(),
        "error: bad.toml:3: study 1 (cv.nested): point dataset=iris, estimator=random_forrest: cv.nested: \
         unknown estimator `random_forrest`; did you mean `random_forest`? known: decision_tree, \
         random_forest, extra_trees, dummy.most_frequent"
            .replace("decision_tree, random_forest, extra_trees, dummy.most_frequent", &known())
    );
    let empty = plan_error("workload = \"cv.nested\"\ndataset = \"iris\"\ngrid = \"\"\n");
    assert!(
        empty.starts_with(
            "error: bad.toml:3: study 1 (cv.nested): point dataset=iris, grid=: cv.nested: `grid`: \
             grid \"\": the grid is empty; write it as \"NAME=V1,V2; NAME=V1,V2\""
        ),
        "{empty}"
    );
    assert!(empty.contains(fix), "{empty}");
    let unknown =
        plan_error("workload = \"cv.nested\"\ndataset = \"iris\"\ngrid = \"max_dept=2,4\"\n");
    assert!(
        unknown.contains(
            "cv.nested: grid candidate max_dept=2: estimator `random_forest` has no parameter \
             `max_dept`; its parameters: n_estimators,"
        ),
        "{unknown}"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = csv_dataset(dir.path(), 10);
    let missing = plan_error(&format!(
        "workload = \"cv.kfold\"\ndataset = \"{}\"\n",
        data.display()
    ));
    assert!(
        missing.contains(&format!(
            "cv.kfold: {}: no column `target` to use as the target; the columns are: x, noise, label \
             (the study's `target` key names the target column)",
            data.display()
        )),
        "{missing}"
    );
    let splitter =
        plan_error("workload = \"forest.fit\"\ndataset = \"iris\"\nhyper = \"splitter=approx\"\n");
    assert!(
        splitter.contains(
            "forest.fit: random_forest: `splitter` = \"approx\" is not allowed; allowed: one of \
             exact, hist"
        ),
        "{splitter}"
    );
    let cut = plan_error(
        "workload = \"forest.fit\"\ndataset = \"iris\"\nestimator = \"decision_tree\"\n\
         hyper = \"splitter=random\"\n",
    );
    assert!(
        cut.contains("(scikit-learn's splitter = \"random\" is `cut = \"value\"` here)"),
        "{cut}"
    );
    let scoring =
        plan_error("workload = \"forest.fit\"\ndataset = \"diabetes\"\nscoring = \"roc_auc\"\n");
    assert!(
        scoring.contains(
            "forest.fit: scoring `roc_auc` does not fit dataset `diabetes`, whose target is real \
             values; use scoring = \"auto\""
        ),
        "{scoring}"
    );
}

#[test]
fn selecting_features_before_cross_validation_finds_signal_in_noise() {
    // The leakage lesson at a small size: 100 rows × 1000 noise features, the 10 "best" chosen on
    // every row (all_rows) or inside each training fold (folds).
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "leak.toml",
        "name = \"leak\"\nrepetitions = 1\nwarmup = 0\n\n[[study]]\nworkload = \"cv.kfold\"\n\
         dataset = \"noise\"\nsize = 100\nfeatures = 1000\nestimator = \"logistic_regression\"\n\
         pipeline = \"standard_scaler > select_k_best:10\"\npipeline_fit = [\"all_rows\", \"folds\"]\n",
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (h, rows) = read_csv(&run_dir.join("summary.csv"));
    let accuracy = |fit: &str| -> f64 {
        let r = rows
            .iter()
            .find(|r| column(&h, r, "param_pipeline_fit") == fit)
            .unwrap();
        assert_eq!(column(&h, r, "status"), "ok");
        column(&h, r, "metric_cv_accuracy").parse().unwrap()
    };
    let (leaky, honest) = (accuracy("all_rows"), accuracy("folds"));
    assert!(
        leaky > 0.7 && honest < 0.65 && leaky - honest > 0.15,
        "all_rows {leaky}, folds {honest}"
    );
    // A bad step is refused by `plan`, naming the key and the steps it knows.
    assert!(plan_error(
        "workload = \"cv.kfold\"\ndataset = \"iris\"\npipeline = \"standard_scalar\"\n"
    )
    .contains(
        "cv.kfold: `pipeline`: unknown pipeline step `standard_scalar`; known: standard_scaler,"
    ));
    // So is a step the data cannot take, by the check's trial fit.
    assert!(
        plan_error("workload = \"cv.kfold\"\ndataset = \"iris\"\npipeline = \"pca:9\"\n")
            .contains("pipeline step pca:9: at most min(rows, features) = 4 components here")
    );
}

#[test]
fn prediction_in_parallel_batches_is_measured_in_rows_per_second() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "predict.toml",
        "name = \"predict\"\nrepetitions = 2\nwarmup = 0\n\n[[study]]\nworkload = \"ml.predict\"\n\
         threads = [1, 2]\ndataset = \"synthetic\"\nsize = 300\nfeatures = 6\ntrees = 5\n\
         batch = [7, 300]\n",
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (h, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 4);
    for r in &rows {
        assert_eq!(column(&h, r, "status"), "ok");
        assert_eq!(column(&h, r, "metric_rows"), "300");
    }
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("### Predictions\n\n| point | p | parameters | rows | rows/s |"),
        "{report}"
    );
    assert!(
        plan_error("workload = \"ml.predict\"\ndataset = \"iris\"\nbatch = 151\n")
            .contains("ml.predict: batch = 151 rows, but the dataset has 150; use from 1 to 150")
    );
}

/// The estimator names the build knows, as the error lists them.
fn known() -> String {
    scalelab_ml::estimators::NAMES.join(", ")
}

/// `scalelab plan` leaves out, like the report's tables, the parameters that mean nothing for a
/// study: the synthetic-data settings beside a built-in or CSV dataset, `target` beside a built-in
/// one, and empty optional texts.
#[test]
fn the_plan_shows_only_the_parameters_that_apply() {
    let dir = tempfile::tempdir().unwrap();
    let csv = csv_dataset(dir.path(), 40);
    let manifest = write(
        dir.path(),
        "apply.toml",
        &format!(
            "name = \"apply\"\n\n[[study]]\nworkload = \"forest.fit\"\ndataset = \"iris\"\ntrees = 5\n\n\
             [[study]]\nworkload = \"cv.kfold\"\ndataset = \"{}\"\ntarget = \"label\"\ntrees = 5\n\n\
             [[study]]\nname = \"made\"\nworkload = \"forest.fit\"\ndataset = \"synthetic\"\nsize = 300\ntrees = 5\n",
            csv.display()
        ),
    );
    let out = scalelab().arg("plan").arg(&manifest).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fixed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("fixed: "))
        .collect();
    assert_eq!(fixed.len(), 3, "{stdout}");
    let keys = |line: &str| -> Vec<String> {
        line.split(", ")
            .map(|kv| kv.split('=').next().unwrap().to_string())
            .collect()
    };
    let (builtin, csv, synthetic) = (keys(fixed[0]), keys(fixed[1]), keys(fixed[2]));
    for gone in [
        "size",
        "features",
        "classes",
        "target",
        "hyper",
        "pipeline_fit",
    ] {
        assert!(!builtin.contains(&gone.to_string()), "{gone}: {}", fixed[0]);
    }
    for gone in ["size", "features", "classes", "grid", "n_iter"] {
        assert!(!csv.contains(&gone.to_string()), "{gone}: {}", fixed[1]);
    }
    assert!(csv.contains(&"target".to_string()), "{}", fixed[1]);
    for kept in ["size", "features", "classes", "estimator", "trees", "seed"] {
        assert!(
            synthetic.contains(&kept.to_string()),
            "{kept}: {}",
            fixed[2]
        );
    }
    assert!(!synthetic.contains(&"target".to_string()), "{}", fixed[2]);
}

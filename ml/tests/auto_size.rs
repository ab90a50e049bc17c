//! `n_estimators = "auto"`: forests that grow in batches until the out-of-bag score plateaus. The
//! rule as documented (batches, tolerance, patience, cap), the same forest at 1 and 2 threads and
//! as a forest of that fixed size, and the refusals where no out-of-bag score exists.

use scalelab_ml::data::{load, Dataset};
use scalelab_ml::estimator::{FitOptions, Hp, HyperParams, Model};
use scalelab_ml::estimators::{build, AUTO_BATCH, AUTO_MAX_TREES, AUTO_PATIENCE, AUTO_TOL};

fn params(pairs: &[(&str, Hp)]) -> HyperParams {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn auto() -> (String, Hp) {
    ("n_estimators".into(), Hp::Text("auto".into()))
}

/// Fit `name` with `p` on 3/4 of `data` in a rayon pool of `threads`.
fn fit(name: &str, p: &HyperParams, data: &Dataset, threads: usize) -> Box<dyn Model> {
    let rows: Vec<usize> = (0..data.rows()).filter(|r| r % 4 != 0).collect();
    let est = build(name, p).unwrap();
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
        .install(|| est.fit(data, &rows, None, 7, FitOptions::default()))
        .unwrap()
}

/// What identifies a fitted forest: its probabilities (or values) on the held-out quarter, bit
/// for bit, its out-of-bag score and curve, and its number of trees.
fn fingerprint(model: &dyn Model, data: &Dataset) -> String {
    let test: Vec<usize> = (0..data.rows()).filter(|r| r % 4 == 0).collect();
    let out: Vec<u64> = match model.predict_proba(&data.x, &test) {
        Some(m) => m.as_slice().iter().map(|v| v.to_bits()).collect(),
        None => match model.predict(&data.x, &test) {
            scalelab_ml::estimator::Prediction::Values(v) => {
                v.iter().map(|x| x.to_bits()).collect()
            }
            scalelab_ml::estimator::Prediction::Classes(c) => c.iter().map(|&x| x as u64).collect(),
        },
    };
    let curve: Option<Vec<(usize, u64)>> = model
        .oob_curve()
        .map(|c| c.iter().map(|&(n, s)| (n, s.to_bits())).collect());
    format!(
        "{:?} {:?} {:?} {out:?}",
        model.n_members(),
        model.oob_score().map(f64::to_bits),
        curve
    )
}

/// Replay the documented rule on a curve: batches of `AUTO_BATCH` trees, stop after
/// `AUTO_PATIENCE` batches in a row that do not beat the best score so far by more than
/// `AUTO_TOL`, or at `AUTO_MAX_TREES`. The curve must stop exactly where the rule says.
fn follows_the_rule(curve: &[(usize, f64)]) {
    let (mut best, mut stale) = (f64::NEG_INFINITY, 0);
    for (i, &(trees, score)) in curve.iter().enumerate() {
        assert_eq!(trees, (i + 1) * AUTO_BATCH, "batch {i} of {curve:?}");
        assert!(stale < AUTO_PATIENCE, "grew past the plateau: {curve:?}");
        if score > best + AUTO_TOL {
            (best, stale) = (score, 0);
        } else {
            stale += 1;
        }
    }
    let last = curve.last().unwrap().0;
    assert!(
        stale == AUTO_PATIENCE || last == AUTO_MAX_TREES,
        "stopped before the plateau: {curve:?}"
    );
}

#[test]
fn auto_forests_grow_until_the_out_of_bag_score_plateaus() {
    let cancer = load("breast_cancer").unwrap();
    let diabetes = load("diabetes").unwrap();
    let bootstrap = ("bootstrap".to_string(), Hp::Bool(true));
    for (name, p, data) in [
        ("random_forest", HyperParams::from([auto()]), &cancer),
        ("random_forest", HyperParams::from([auto()]), &diabetes),
        (
            "extra_trees",
            HyperParams::from([auto(), bootstrap.clone()]),
            &cancer,
        ),
    ] {
        let model = fit(name, &p, data, 1);
        let curve = model.oob_curve().expect("an auto forest records its curve");
        follows_the_rule(curve);
        assert!(curve.len() > AUTO_PATIENCE, "{name}: {curve:?}");
        let &(trees, score) = curve.last().unwrap();
        assert_eq!(model.n_members(), Some(trees));
        assert_eq!(model.oob_score(), Some(score));
        // Accuracy on breast cancer, R² on diabetes: both well above chance.
        assert!(score > 0.3 && score <= 1.0, "{name}: {score}");
    }
}

#[test]
fn an_auto_forest_is_the_same_at_1_and_2_threads() {
    let cancer = load("breast_cancer").unwrap();
    let bootstrap = ("bootstrap".to_string(), Hp::Bool(true));
    for (name, p) in [
        ("random_forest", HyperParams::from([auto()])),
        ("extra_trees", HyperParams::from([auto(), bootstrap])),
    ] {
        let one = fingerprint(fit(name, &p, &cancer, 1).as_ref(), &cancer);
        let two = fingerprint(fit(name, &p, &cancer, 2).as_ref(), &cancer);
        assert_eq!(one, two, "{name}: 1 vs 2 threads");
        // Serial fits (an outer level owns the pool) grow the same forest.
        let rows: Vec<usize> = (0..cancer.rows()).filter(|r| r % 4 != 0).collect();
        let serial = build(name, &p)
            .unwrap()
            .fit(&cancer, &rows, None, 7, FitOptions { parallel: false })
            .unwrap();
        assert_eq!(one, fingerprint(serial.as_ref(), &cancer), "{name}: serial");
    }
}

#[test]
fn an_auto_forest_is_the_fixed_forest_of_its_size() {
    let cancer = load("breast_cancer").unwrap();
    let auto_model = fit("random_forest", &HyperParams::from([auto()]), &cancer, 2);
    let n = auto_model.n_members().unwrap();
    let fixed = fit(
        "random_forest",
        &params(&[
            ("n_estimators", Hp::Int(n as i64)),
            ("oob_score", Hp::Bool(true)),
        ]),
        &cancer,
        2,
    );
    assert_eq!(fixed.oob_curve(), None);
    assert_eq!(
        fixed.oob_score().map(f64::to_bits),
        auto_model.oob_score().map(f64::to_bits)
    );
    let test: Vec<usize> = (0..cancer.rows()).filter(|r| r % 4 == 0).collect();
    let bits = |m: &dyn Model| -> Vec<u64> {
        let p = m.predict_proba(&cancer.x, &test).unwrap();
        p.as_slice().iter().map(|v| v.to_bits()).collect()
    };
    assert_eq!(bits(auto_model.as_ref()), bits(fixed.as_ref()));
}

#[test]
fn auto_is_refused_where_there_is_no_out_of_bag_score() {
    let err = |name: &str, p: HyperParams| build(name, &p).err().unwrap();
    let auto_text = Hp::Text("auto".into());
    for (name, key, allowed) in [
        ("adaboost", "n_estimators", "an integer from 1 to 100000"),
        (
            "gradient_boosting",
            "n_estimators",
            "an integer from 1 to 100000",
        ),
        ("bagging", "n_estimators", "an integer from 1 to 100000"),
        (
            "hist_gradient_boosting",
            "max_iter",
            "an integer from 1 to 100000",
        ),
    ] {
        assert_eq!(
            err(name, params(&[(key, auto_text.clone())])),
            format!(
                "{name}: `{key}` = \"auto\" is only for random_forest and extra_trees, which \
                 add trees until their out-of-bag score stops improving, and {name} has no \
                 out-of-bag score; give {allowed}"
            )
        );
    }
    let no_bootstrap = |name: &str| {
        format!(
            "{name}: `n_estimators` = \"auto\" stops adding trees when the out-of-bag score \
             plateaus, which needs `bootstrap` = true (without bootstrap no row is out of bag); \
             set bootstrap = true, or give a number of trees"
        )
    };
    // Extra trees do not bootstrap by default.
    assert_eq!(
        err("extra_trees", HyperParams::from([auto()])),
        no_bootstrap("extra_trees")
    );
    assert_eq!(
        err(
            "random_forest",
            HyperParams::from([auto(), ("bootstrap".into(), Hp::Bool(false))])
        ),
        no_bootstrap("random_forest")
    );
    // "auto" is an ensemble size only: elsewhere it is an ordinary bad value.
    assert_eq!(
        err("random_forest", params(&[("max_depth", auto_text.clone())])),
        "random_forest: `max_depth` = \"auto\" is not allowed; allowed: an integer from 0 to 1000"
    );
    assert_eq!(
        err("logistic_regression", params(&[("max_iter", auto_text)])),
        "logistic_regression: `max_iter` = \"auto\" is not allowed; allowed: an integer from 1 \
         to 100000"
    );
}

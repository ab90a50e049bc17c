//! Tests of plan expansion, point ids and estimates. Manifests are checked against the test
//! workloads of `manifest::test_support` (a 4-core machine).

use super::*;
use crate::manifest::test_support::{parse_full, parse_test};
use crate::manifest::Manifest;
use crate::value::{Size, Value};

fn plan_of(source: &str) -> Plan {
    expand_with_cores(&parse_test(source).unwrap(), 4).unwrap()
}

/// `key=value` of the given params of each point, for compact order assertions.
fn table(plan: &Plan, keys: &[&str]) -> Vec<String> {
    plan.points
        .iter()
        .map(|p| {
            keys.iter()
                .map(|k| match *k {
                    "threads" => p.resources.threads.to_string(),
                    "ranks" => p.resources.ranks.to_string(),
                    "nodes" => p.resources.nodes.to_string(),
                    "gpus" => p.resources.gpus.to_string(),
                    k => p.params.get(k).map(|v| v.to_string()).unwrap_or_default(),
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

#[test]
fn axes_are_crossed_in_manifest_order_last_fastest() {
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nvariant = [\"naive\", \"tuned\"]\nthreads = [1, 2]\nsize = [64, 128]\n",
    );
    assert_eq!(plan.points.len(), 8);
    assert_eq!(
        table(&plan, &["variant", "threads", "size"]),
        [
            "naive 1 64",
            "naive 1 128",
            "naive 2 64",
            "naive 2 128",
            "tuned 1 64",
            "tuned 1 128",
            "tuned 2 64",
            "tuned 2 128"
        ]
    );
    assert_eq!(plan.experiment, "x");
    let ids: std::collections::HashSet<&str> = plan.points.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), 8, "distinct ids");
    assert!(plan
        .points
        .iter()
        .all(|p| p.id.len() == 12 && p.id.chars().all(|c| c.is_ascii_hexdigit())));
}

#[test]
fn zipped_axes_move_together() {
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nthreads = [1, 2, 4]\nvariant = [\"naive\", \"tuned\"]\nsize = [100, 200, 400]\nzip = [\"threads\", \"size\"]\n",
    );
    // The zip group sits at the place of `threads`; `variant` varies fastest.
    assert_eq!(
        table(&plan, &["threads", "size", "variant"]),
        [
            "1 100 naive",
            "1 100 tuned",
            "2 200 naive",
            "2 200 tuned",
            "4 400 naive",
            "4 400 tuned"
        ]
    );
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nthreads = [1, 2]\nvariant = [\"naive\", \"tuned\"]\nsize = [100, 200]\nblock = [4, 10]\nzip = [[\"threads\", \"block\"], [\"variant\", \"size\"]]\n",
    );
    assert_eq!(
        table(&plan, &["threads", "block", "variant", "size"]),
        [
            "1 4 naive 100",
            "1 4 tuned 200",
            "2 10 naive 100",
            "2 10 tuned 200"
        ]
    );
}

#[test]
fn weak_scaling_grows_the_size_per_worker() {
    // linear (the workload's rule), bytes stay bytes
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.stream\"\nscaling = \"weak\"\nthreads = [1, 2, 4]\nsize = \"64MiB\"\noversubscribe = true\n",
    );
    let sizes: Vec<Value> = plan
        .points
        .iter()
        .map(|p| p.params.0["size"].clone())
        .collect();
    assert_eq!(
        sizes,
        [
            Value::Size(Size::Bytes(64 << 20)),
            Value::Size(Size::Bytes(128 << 20)),
            Value::Size(Size::Bytes(256 << 20))
        ]
    );
    // cbrt (t.gemm's own rule), counts stay counts, p = ranks × threads
    let m = parse_full(
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nscaling = \"weak\"\nthreads = [1, 8]\nsize = 1000\noversubscribe = true\n",
    );
    let m = m.unwrap_or_else(|e| panic!("{e}"));
    let plan = expand_with_cores(&m, 64).unwrap();
    assert_eq!(table(&plan, &["threads", "size"]), ["1 1000", "8 2000"]);
    // sqrt, as an override
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nscaling = \"weak\"\nweak = \"sqrt\"\nthreads = [1, 4]\nsize = [100, 300]\n",
    );
    assert_eq!(
        table(&plan, &["threads", "size"]),
        ["1 100", "1 300", "4 200", "4 600"]
    );
    assert!(plan.points.iter().all(|p| p.scaling == Scaling::Weak));
    // Strong scaling leaves sizes alone.
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.stream\"\nthreads = [1, 4]\nsize = 1000\n",
    );
    assert_eq!(table(&plan, &["threads", "size"]), ["1 1000", "4 1000"]);
}

#[test]
fn unset_parameters_and_resources_take_their_defaults() {
    let plan = plan_of("name = \"x\"\nrepetitions = 3\nwarmup = 2\ntimeout = \"1m\"\n[[study]]\nworkload = \"t.gemm\"\n");
    assert_eq!(plan.points.len(), 1, "no axes: one point");
    let p = &plan.points[0];
    assert_eq!(
        p.resources,
        Resources {
            nodes: 1,
            ranks: 1,
            threads: 1,
            gpus: 0
        }
    );
    assert_eq!(p.params.0.len(), 3);
    assert_eq!(p.params.size(), Size::Count(256));
    assert_eq!(p.params.variant(), "naive");
    assert_eq!(p.params.int("block"), 64);
    assert_eq!((p.repetitions, p.warmup, p.timeout_s), (3, 2, 60.0));
    assert_eq!(
        (p.study, p.study_name.as_str(), p.workload.as_str()),
        (0, "t.gemm", "t.gemm")
    );
    assert!(!p.oversubscribed);
}

#[test]
fn scalars_are_one_value_axes() {
    let a = plan_of("name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nthreads = 2\nsize = \"1KiB\"\nvariant = \"tuned\"\n");
    let b = plan_of("name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nthreads = [2]\nsize = [\"1KiB\"]\nvariant = [\"tuned\"]\n");
    assert_eq!(a.points.len(), 1);
    assert_eq!(a.points, b.points);
}

#[test]
fn point_ids_are_stable() {
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nthreads = [1, 2]\nseconds = 0.5\n",
    );
    let p = &plan.points[1];
    assert_eq!(
        canonical(&p.study_name, &p.workload, p.scaling, &p.resources, &p.params),
        "study=debug.sleep\nworkload=debug.sleep\nscaling=strong\nnodes=1\nranks=1\nthreads=2\ngpus=0\nseconds=0.5"
    );
    assert_eq!(p.id, "4b542d2045e4");
    assert_eq!(
        point_id(
            &p.study_name,
            &p.workload,
            p.scaling,
            &p.resources,
            &p.params
        ),
        p.id
    );

    let plan = plan_of(
        "name = \"x\"\n[[study]]\nname = \"triad\"\nworkload = \"t.stream\"\nscaling = \"weak\"\nthreads = [1, 4]\nsize = \"64MiB\"\n",
    );
    assert_eq!(
        plan.points[1].id, "122dd277fcbf",
        "weak ids hash the grown size"
    );
}

#[test]
fn ids_ignore_repetitions_timeouts_and_study_order() {
    let a = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2]\n[[study]]\nworkload = \"t.stream\"\nthreads = [1, 2]\n",
    );
    let b = plan_of(
        "name = \"y\"\nrepetitions = 9\nwarmup = 0\ntimeout = 5\n[[study]]\nworkload = \"t.stream\"\nthreads = [1, 2]\nrepetitions = 2\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2]\n",
    );
    let ids = |p: &Plan| {
        let mut v: Vec<String> = p.points.iter().map(|p| p.id.clone()).collect();
        v.sort();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    // Renaming a study changes its ids.
    let c = plan_of("name = \"x\"\n[[study]]\nname = \"other\"\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2]\n");
    assert_ne!(c.points[0].id, a.points[0].id);
}

#[test]
fn ranks_per_node_sets_nodes() {
    let m = parse_full(
        "name = \"x\"\n[[study]]\nworkload = \"t.mpi\"\nranks = [1, 4, 6]\nranks_per_node = 4\n",
    )
    .unwrap();
    let plan = expand_with_cores(&m, 4).unwrap();
    assert_eq!(table(&plan, &["ranks", "nodes"]), ["1 1", "4 1", "6 2"]);
}

#[test]
fn duplicate_points_in_a_hand_built_manifest_are_an_error() {
    let m: Manifest =
        parse_test("name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2]\n")
            .unwrap();
    let mut studies = m.studies().to_vec();
    studies[0].axes[0].values[1] = Value::Float(0.1);
    let e = m.with_studies(studies).unwrap_err().to_string();
    assert!(
        e.starts_with("error: experiments/x.toml: study 1 (debug.sleep): point "),
        "{e}"
    );
    assert!(e.contains("is produced more than once"), "{e}");
    let two = parse_test("name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\n").unwrap();
    let mut studies = two.studies().to_vec();
    studies.push(studies[0].clone());
    studies[1].index = 1;
    let e = two.with_studies(studies).unwrap_err().to_string();
    assert!(e.contains("study 2 (debug.sleep): point "), "{e}");
    assert!(
        e.contains(" is produced by both study 1 (debug.sleep) and this study"),
        "{e}"
    );
}

#[test]
fn a_hand_built_manifest_plans_its_new_studies() {
    // The plan comes from the studies given, not from the points the check expanded.
    let m =
        parse_test("name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2]\n")
            .unwrap();
    let before = expand_with_cores(&m, 4).unwrap();
    let mut studies = m.studies().to_vec();
    studies[0].axes[0].values.push(Value::Float(0.3));
    studies[0].oversubscribe = true;
    studies[0].axes.push(crate::manifest::Axis {
        name: "threads".into(),
        values: vec![Value::Int(8)],
    });
    let m = m.with_studies(studies).unwrap();
    let after = expand_with_cores(&m, 4).unwrap();
    assert_eq!(before.points.len(), 2);
    let seconds: Vec<String> = after
        .points
        .iter()
        .map(|p| p.params.get("seconds").unwrap().to_string())
        .collect();
    assert_eq!(seconds, ["0.1", "0.2", "0.3"]);
    assert!(after
        .points
        .iter()
        .all(|p| p.resources.threads == 8 && p.oversubscribed));
    assert_eq!(
        after.points[0].id,
        crate::manifest::point_id(
            "debug.sleep",
            "debug.sleep",
            Scaling::Strong,
            &after.points[0].resources,
            &after.points[0].params
        )
    );
}

#[test]
fn oversubscribed_points_are_marked() {
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"t.gemm\"\nthreads = [2, 8]\noversubscribe = true\n",
    );
    let marks: Vec<bool> = plan.points.iter().map(|p| p.oversubscribed).collect();
    assert_eq!(marks, [false, true]);
}

#[test]
fn points_are_grouped_by_study() {
    let plan = plan_of(
        "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.1, 0.2]\n[[study]]\nname = \"s\"\nworkload = \"t.stream\"\nscaling = \"weak\"\nthreads = [1, 2, 4]\n",
    );
    let studies = plan.studies();
    assert_eq!(studies.len(), 2);
    assert_eq!(
        (studies[0].index, studies[0].name, studies[0].points.len()),
        (0, "debug.sleep", 2)
    );
    assert_eq!(
        (studies[1].index, studies[1].name, studies[1].workload),
        (1, "s", "t.stream")
    );
    assert_eq!(
        (studies[1].scaling, studies[1].points.len()),
        (Scaling::Weak, 3)
    );
    assert_eq!(plan.find(&plan.points[3].id), Some(&plan.points[3]));
    assert_eq!(plan.find("nope"), None);
}

#[test]
fn estimates_follow_the_roofline() {
    let rates = Rates {
        gflops_per_thread: 10.0,
        gbps_per_thread: 10.0,
        gbps_total: 20.0,
        launch_s: 0.5,
    };
    let plan = plan_of(
        "name = \"x\"\nrepetitions = 3\nwarmup = 1\n[[study]]\nworkload = \"t.stream\"\nthreads = [1, 4]\nsize = \"10M\"\n",
    );
    let w = &crate::manifest::test_support::TestStream;
    // 10M elements: 240 MB per repetition, memory bound; eff = 0.5 (the default).
    let one = estimate_with(w, &plan.points[0], &rates);
    assert!(
        (one - (0.5 + 4.0 * 240e6 / (10e9 * 0.5))).abs() < 1e-9,
        "{one}"
    );
    // 4 threads want 40 GB/s but the machine gives 20.
    let four = estimate_with(w, &plan.points[1], &rates);
    assert!(
        (four - (0.5 + 4.0 * 240e6 / (20e9 * 0.5))).abs() < 1e-9,
        "{four}"
    );
    // A workload outside the registry counts only its launch.
    assert_eq!(estimate_seconds(&plan.points[0], &rates), 0.5);
    // debug.sleep's `seconds` counts.
    let plan = plan_of("name = \"x\"\nrepetitions = 2\nwarmup = 0\n[[study]]\nworkload = \"debug.sleep\"\nseconds = 1.5\n");
    assert!((estimate_seconds(&plan.points[0], &rates) - 3.5).abs() < 1e-9);
}

#[test]
fn describe_shows_studies_points_and_a_total() {
    let plan = plan_of(
        "name = \"x\"\nrepetitions = 2\nwarmup = 0\n[[study]]\nname = \"nap\"\nworkload = \"debug.sleep\"\nthreads = [1, 2]\nseconds = [0.5, 1.5]\n[[study]]\nworkload = \"debug.fail\"\nmode = \"ok\"\n",
    );
    let rates = Rates {
        gflops_per_thread: 10.0,
        gbps_per_thread: 10.0,
        gbps_total: 20.0,
        launch_s: 0.5,
    };
    let text = plan.describe(&rates);
    let ids: Vec<&str> = plan.points.iter().map(|p| p.id.as_str()).collect();
    let expected = format!(
        "study 1 of 2: nap (debug.sleep), strong scaling, 4 points, ≈ 10 s
  id           threads seconds estimate
  {}       1 0.5     1.5 s
  {}       1 1.5     3.5 s
  {}       2 0.5     1.5 s
  {}       2 1.5     3.5 s

study 2 of 2: debug.fail (debug.fail), strong scaling, 1 point, ≈ 0.50 s
  fixed: mode=ok
  id           threads estimate
  {}       1 0.50 s

5 points in 2 studies; estimated run time ≈ 11 s (rough: 10 GFLOP/s and 10 GB/s per thread, at most 20 GB/s in all, 0.5 s per launch, warm-ups included)
",
        ids[0], ids[1], ids[2], ids[3], ids[4]
    );
    assert_eq!(text, expected);
}

#[test]
fn describe_truncates_long_studies() {
    let values: Vec<String> = (1..=45).map(|i| format!("{i}.0")).collect();
    let plan = plan_of(&format!(
        "name = \"x\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [{}]\n",
        values.join(", ")
    ));
    let text = plan.describe(&Rates::default());
    let is_row = |l: &&str| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.len() == 12 && w.chars().all(|c| c.is_ascii_hexdigit()))
    };
    assert_eq!(text.lines().filter(is_row).count(), DESCRIBE_ROWS);
    assert!(text.contains("\n  ... 25 more points\n"), "{text}");
    assert!(
        text.contains("45 points in 1 study; estimated run time ≈ "),
        "{text}"
    );
}

#[test]
fn data_files_are_pinned_and_ids_do_not_depend_on_where_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,noise,label\n");
    for i in 0..40 {
        let x = (i * 7) % 21;
        csv.push_str(&format!("{x},{},{}\n", (i * 13) % 5, u8::from(x > 10)));
    }
    let mut plans = Vec::new();
    for sub in ["a", "b"] {
        let folder = dir.path().join(sub);
        std::fs::create_dir_all(folder.join("data")).unwrap();
        std::fs::write(folder.join("data/d.csv"), &csv).unwrap();
        let manifest = folder.join("m.toml");
        std::fs::write(
            &manifest,
            "name = \"x\"\n[[study]]\nworkload = \"forest.fit\"\ndataset = \"./data/d.csv\"\ntarget = \"label\"\ntrees = 2\n",
        )
        .unwrap();
        let plan = expand(&crate::manifest::load(&manifest).unwrap()).unwrap();
        let abs = std::path::absolute(&folder).unwrap();
        assert_eq!(plan.data_dir(), Some(abs.clone()));
        let data = plan.points[0].data.clone().unwrap();
        assert_eq!(data.param, "dataset");
        assert_eq!(data.path, abs.join("./data/d.csv"));
        assert_eq!(data.sha256, crate::manifest::sha256_hex(&csv));
        plans.push(plan);
    }
    // The same point in two folders: one id, two pinned paths.
    assert_eq!(plans[0].points[0].id, plans[1].points[0].id);
    assert_ne!(plans[0].points[0].data, plans[1].points[0].data);
    // The point reads the pinned absolute path while the file is unchanged ...
    let p = &plans[0].points[0];
    let data = p.data.as_ref().unwrap();
    assert_eq!(
        p.params_for_run().unwrap().get("dataset"),
        Some(&Value::Text(data.path.display().to_string()))
    );
    // ... and refuses it once it changed.
    std::fs::write(&data.path, format!("{csv}1,1,1\n")).unwrap();
    let err = p.params_for_run().unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{} changed since the plan was made (sha256 {}…, now ",
            data.path.display(),
            &data.sha256[..12]
        )) && err.ends_with("…): restore it or start a new run"),
        "{err}"
    );
}

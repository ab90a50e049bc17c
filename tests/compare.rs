//! `scalelab compare`: two runs made with the real binary (mock executor, two different models,
//! so every ratio is known), compared, and the comparison parsed back against each run's
//! summary.csv; studies that cannot be matched are named; folders that are not runs are refused
//! with exit code 2.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::{column, read_csv, run, scalelab};

/// One study compared point by point, one whose points differ (dgemm sizes), one measured with
/// another workload under the same name, one per run only.
const MANIFEST_A: &str = r#"name = "cmp"
repetitions = 3
warmup = 0

[[study]]
name = "triad"
workload = "stream.triad"
threads = [1, 2]
size = "1MiB"

[[study]]
name = "dgemm"
workload = "gemm"
variant = "tuned"
threads = [1, 2]
size = 64

[[study]]
name = "mixed"
workload = "stream.triad"
threads = [1]
size = "1MiB"

[[study]]
name = "only-a"
workload = "stream.triad"
threads = [1]
size = "1MiB"
"#;

const MANIFEST_B: &str = r#"name = "cmp"
repetitions = 3
warmup = 0

[[study]]
name = "triad"
workload = "stream.triad"
threads = [1, 2]
size = "1MiB"

[[study]]
name = "dgemm"
workload = "gemm"
variant = "tuned"
threads = [1, 2]
size = 96

[[study]]
name = "mixed"
workload = "reduce.dot"
threads = [1]
size = "1MiB"

[[study]]
name = "only-b"
workload = "stream.triad"
threads = [1]
size = "1MiB"
"#;

/// A mock run of `manifest` with model `model` in `<dir>/<name>`.
fn mock_run(dir: &Path, name: &str, manifest: &str, model: &str) -> PathBuf {
    let m = dir.join(format!("{name}.toml"));
    fs::write(&m, manifest).unwrap();
    let run_dir = dir.join(name);
    let out = run(scalelab()
        .arg("run")
        .arg(&m)
        .arg("--run-dir")
        .arg(&run_dir)
        .args(["--mock", model, "-q"]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    run_dir
}

/// Give the run's provenance and records another machine, as if it had been made on a cluster
/// node.
fn set_machine(run_dir: &Path, host: &str, cpu: &str) {
    let edit = |path: &Path, f: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(path).unwrap()).unwrap();
        f(&mut v);
        fs::write(path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    };
    edit(&run_dir.join("provenance.json"), &|p| {
        p["machine"]["host"] = host.into();
        p["machine"]["cpu_model"] = cpu.into();
    });
    for e in fs::read_dir(run_dir.join("points")).unwrap() {
        edit(&e.unwrap().path(), &|r| r["host"] = host.into());
    }
}

/// The rows of the markdown table that follows `heading` (a line of compare.md), by column name.
fn table_after(md: &str, heading: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = md
        .lines()
        .skip_while(|l| *l != heading)
        .skip(1)
        .skip_while(|l| !l.starts_with('|'));
    let cells = |l: &str| -> Vec<String> {
        l.trim()
            .trim_matches('|')
            .split(" | ")
            .map(|c| c.trim().to_string())
            .collect()
    };
    let header = cells(
        lines
            .next()
            .unwrap_or_else(|| panic!("no table after {heading}")),
    );
    lines.next(); // the --- row
    lines
        .take_while(|l| l.starts_with('|'))
        .map(|l| header.iter().cloned().zip(cells(l)).collect())
        .collect()
}

/// The number in a cell such as `2.00×` or `0.0123`.
fn number(cell: &str) -> f64 {
    cell.trim_end_matches('×')
        .parse()
        .unwrap_or_else(|e| panic!("{cell:?}: {e}"))
}

/// Within the three significant digits the table writes.
fn close(table: f64, exact: f64) -> bool {
    (table - exact).abs() <= 0.006 * exact.abs()
}

#[test]
fn compare_matches_points_computes_ratios_and_names_what_it_cannot_match() {
    let dir = tempfile::tempdir().unwrap();
    let a = mock_run(dir.path(), "laptop", MANIFEST_A, "0.1,0.9");
    // Half the times at every p: run 2 is twice as fast, and scales the same way.
    let b = mock_run(dir.path(), "node", MANIFEST_B, "0.05,0.45");
    set_machine(&b, "node17", "Test Xeon 9999");
    let out_dir = dir.path().join("cmp-out");
    let out = run(scalelab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let md = fs::read_to_string(out_dir.join("compare.md")).unwrap();
    assert!(
        md.starts_with("> **MOCK DATA in this comparison.**"),
        "{md}"
    );
    assert!(
        md.contains("node17: Test Xeon 9999"),
        "run 2 named by its machine: {md}"
    );

    // Every ratio of the triad table, recomputed from the two summary.csv files.
    let rows = table_after(&md, "### Run 2 against run 1");
    assert_eq!(rows.len(), 2, "two matched points (1 and 2 threads): {md}");
    let summary = |run_dir: &Path| {
        let (h, rs) = read_csv(&run_dir.join("summary.csv"));
        rs.into_iter()
            .filter(|r| column(&h, r, "study") == "triad")
            .map(|r| {
                (
                    column(&h, &r, "threads").to_string(),
                    (
                        column(&h, &r, "median_s").parse::<f64>().unwrap(),
                        column(&h, &r, "gbps").parse::<f64>().unwrap(),
                    ),
                )
            })
            .collect::<BTreeMap<_, _>>()
    };
    let (sa, sb) = (summary(&a), summary(&b));
    for row in &rows {
        let threads = row["resources"].trim_start_matches("threads=").to_string();
        let (ta, ga) = sa[&threads];
        let (tb, gb) = sb[&threads];
        assert!(close(number(&row["speedup"]), ta / tb), "{row:?}");
        assert!(close(number(&row["speedup"]), 2.0), "{row:?}");
        assert!(close(number(&row["GB/s run 1"]), ga), "{row:?}");
        assert!(close(number(&row["GB/s run 2"]), gb), "{row:?}");
        assert!(close(number(&row["GB/s ratio"]), gb / ga), "{row:?}");
        assert_eq!(row["conditions run 1"], "mock, load not sampled", "{row:?}");
    }

    // What could not be matched is named, with the reason, in the file and on stderr.
    for line in [
        "study \"only-a\": only in run 1",
        "study \"only-b\": only in run 2",
        "study \"dgemm\": no point in common (run 1: variant=tuned n=64 threads=1;",
        "study \"mixed\": workload stream.triad in run 1, reduce.dot in run 2",
    ] {
        assert!(md.contains(line), "{line} missing from: {md}");
        assert!(
            out.stderr.contains(line),
            "{line} missing from: {}",
            out.stderr
        );
    }

    // The overlay plots of the one compared study, naming both machines.
    for kind in ["speedup", "efficiency", "rate"] {
        for ext in ["svg", "png"] {
            let f = out_dir.join(format!("plots/compare-study1-triad-{kind}.{ext}"));
            assert!(f.is_file(), "{} missing", f.display());
            assert!(
                out.stdout.contains(&f.display().to_string()),
                "{}",
                out.stdout
            );
        }
        let svg =
            fs::read_to_string(out_dir.join(format!("plots/compare-study1-triad-{kind}.svg")))
                .unwrap();
        assert!(svg.contains("node17: Test Xeon 9999"), "{kind}: {svg}");
        assert!(svg.contains("MOCK DATA"), "{kind}: mock badge");
        assert!(md.contains(&format!("(plots/compare-study1-triad-{kind}.png)")));
    }
    assert!(!out_dir.join("plots/compare-study2-dgemm-rate.svg").exists());
}

#[test]
fn runs_on_the_same_machine_are_told_apart_by_folder() {
    let dir = tempfile::tempdir().unwrap();
    let a = mock_run(dir.path(), "first", MANIFEST_A, "0.1,0.9");
    let b = mock_run(dir.path(), "second", MANIFEST_A, "0.1,0.9");
    let out_dir = dir.path().join("o");
    let out = run(scalelab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let md = fs::read_to_string(out_dir.join("compare.md")).unwrap();
    assert!(md.contains(" [first] |"), "{md}");
    assert!(md.contains(" [second] |"), "{md}");
    assert!(md.contains("Every study and point was compared."), "{md}");
}

#[test]
fn folders_that_are_not_runs_are_bad_input_naming_the_folder_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let good = mock_run(dir.path(), "good", MANIFEST_A, "0.1,0.9");
    let compare = |other: &Path| {
        run(scalelab()
            .arg("compare")
            .arg(&good)
            .arg(other)
            .arg("--out")
            .arg(dir.path().join("out")))
    };

    let missing = dir.path().join("no-such-run");
    let out = compare(&missing);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        out.stderr.trim(),
        format!(
            "error: {}: no such folder; give run folders made by `scalelab run` or `scalelab sbatch`, e.g. results/<experiment>/<run-id>",
            missing.display()
        )
    );

    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = compare(&empty);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{} is not a run directory (no plan.json)",
            empty.display()
        )),
        "{}",
        out.stderr
    );

    let corrupt = dir.path().join("corrupt");
    fs::create_dir(&corrupt).unwrap();
    fs::write(corrupt.join("plan.json"), "{ not json").unwrap();
    let out = compare(&corrupt);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{} is corrupt",
            corrupt.join("plan.json").display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "leave {} out of the comparison",
            corrupt.display()
        )),
        "{}",
        out.stderr
    );

    // A run with no record: nothing to compare, and how to finish it.
    let unfinished = dir.path().join("unfinished");
    fs::create_dir(&unfinished).unwrap();
    fs::copy(good.join("plan.json"), unfinished.join("plan.json")).unwrap();
    let out = compare(&unfinished);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("has no finished point to compare (0 of 6 points recorded, none ok)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains(&format!("`scalelab run --resume {}`", unfinished.display())),
        "{}",
        out.stderr
    );
    assert!(
        !dir.path().join("out").exists(),
        "nothing written before every run is read"
    );

    // One run alone is refused by the argument parser (exit code 2).
    let out = run(scalelab().arg("compare").arg(&good));
    assert_eq!(out.code, 2, "{}", out.stderr);
}

#[test]
fn points_without_a_partner_or_failed_on_one_side_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = mock_run(dir.path(), "a", MANIFEST_A, "0.1,0.9");
    let b = mock_run(dir.path(), "b", MANIFEST_A, "0.05,0.45");
    // In run 2: the dgemm point at 2 threads never finished, the triad point at 2 threads failed.
    for e in fs::read_dir(b.join("points")).unwrap() {
        let path = e.unwrap().path();
        let mut r: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let (study, threads) = (
            r["point"]["study_name"].as_str().unwrap().to_string(),
            r["point"]["resources"]["threads"].as_u64().unwrap(),
        );
        match (study.as_str(), threads) {
            ("dgemm", 2) => fs::remove_file(&path).unwrap(),
            ("triad", 2) => {
                r["status"] = "timeout".into();
                r["reason"] = "ran past its time limit of 60 s".into();
                r["repetitions"] = serde_json::json!([]);
                fs::write(&path, serde_json::to_string(&r).unwrap()).unwrap();
            }
            _ => {}
        }
    }
    let out_dir = dir.path().join("o");
    let out = run(scalelab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let md = fs::read_to_string(out_dir.join("compare.md")).unwrap();
    for line in [
        "study \"triad\", point stores=streaming size=1MiB threads=2: timeout in run 2 (ran past its time limit of 60 s)",
        "study \"dgemm\": 1 point only in run 1, no partner in run 2: variant=tuned n=64 threads=2",
    ] {
        assert!(md.contains(line), "{line} missing from: {md}");
        assert!(out.stderr.contains(line), "{line} missing from: {}", out.stderr);
    }
    // The 1-thread points are still compared, one row each.
    let triad = md.split("## Study \"triad\"").nth(1).unwrap();
    assert_eq!(
        table_after(triad, "### Run 2 against run 1").len(),
        1,
        "{triad}"
    );
}

/// The legend texts of an SVG written by the plots (plotters puts each text on its own line).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..t.find("</text>")?];
            Some(body.trim().to_string())
        })
        .collect()
}

/// The fill colours of the markers (circles) of an SVG.
fn marker_fills(svg: &str) -> std::collections::BTreeSet<String> {
    svg.split("<circle")
        .skip(1)
        .filter_map(|t| {
            let at = t.find("fill=\"")? + 6;
            Some(t[at..at + t[at..].find('"')?].to_string())
        })
        .filter(|f| f != "none" && f != "#FFFFFF")
        .collect()
}

/// A ping-pong measured on two machines: `compare` draws the latency and bandwidth charts a
/// run's report draws, with each run's lines labelled by its machine and in its own colour,
/// instead of a rate chart.
#[cfg(feature = "mpi")]
#[test]
fn message_studies_are_overlaid_as_latency_and_bandwidth_by_machine() {
    const PINGPONG: &str = r#"name = "pp"
repetitions = 3
warmup = 0

[[study]]
name = "pingpong"
workload = "mpi.pingpong"
ranks = 2
threads = 1
size = ["8B", "1KiB", "64KiB"]
iterations = 100
"#;
    let dir = tempfile::tempdir().unwrap();
    let a = mock_run(dir.path(), "laptop", PINGPONG, "0.1,0.9");
    let b = mock_run(dir.path(), "node", PINGPONG, "0.05,0.5");
    set_machine(&a, "laptop", "AMD Ryzen 7 7840U");
    set_machine(&b, "node17", "Intel Xeon Platinum 8480+");
    let out_dir = dir.path().join("o");
    let out = run(scalelab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let md = fs::read_to_string(out_dir.join("compare.md")).unwrap();
    let plots = out_dir.join("plots");
    for kind in ["latency", "bandwidth"] {
        let stem = format!("compare-study1-pingpong-{kind}");
        assert!(
            md.contains(&format!("(plots/{stem}.png)")),
            "{kind} linked: {md}"
        );
        assert!(plots.join(format!("{stem}.png")).exists());
        let svg = fs::read_to_string(plots.join(format!("{stem}.svg"))).unwrap();
        let texts = svg_texts(&svg);
        assert!(
            texts.contains(&format!("pingpong: {kind} vs message size, by machine")),
            "{texts:?}"
        );
        // One legend entry per run, named by its machine (ranks=2 threads=1 is shared).
        for machine in [
            "laptop: AMD Ryzen 7 7840U",
            "node17: Intel Xeon Platinum 8480+",
        ] {
            assert_eq!(
                texts.iter().filter(|t| t.starts_with(machine)).count(),
                1,
                "{machine} in {texts:?}"
            );
        }
        // The first run blue, the second vermillion.
        let fills = marker_fills(&svg);
        assert!(
            fills.contains("#0072B2") && fills.contains("#D55E00"),
            "{fills:?}"
        );
    }
    // The message charts replace the rate chart, as in a run's report.
    assert!(!plots.join("compare-study1-pingpong-rate.svg").exists());
}

/// Nested cross-validation on two machines: `compare` adds the non-nested vs nested score
/// chart, one marker group per run and parameter set, each legend entry naming its machine.
#[test]
fn nested_cv_studies_get_the_score_chart_by_machine() {
    const NESTED: &str = r#"name = "ncv"
repetitions = 2
warmup = 0

[[study]]
name = "nested"
workload = "cv.nested"
threads = [1, 2]
parallelism = ["trees", "folds"]
dataset = "breast_cancer"
estimator = "random_forest"
trees = 10
outer = 3
inner = 2

[study.grid]
max_depth = [4, 8]
"#;
    let dir = tempfile::tempdir().unwrap();
    let a = mock_run(dir.path(), "laptop", NESTED, "0.1,0.9");
    let b = mock_run(dir.path(), "node", NESTED, "0.05,0.5");
    set_machine(&a, "laptop", "AMD Ryzen 7 7840U");
    set_machine(&b, "node17", "Intel Xeon Platinum 8480+");
    // The mock executor records no scores: give every repetition the scores a real run records.
    for (run_dir, nested) in [(&a, 0.93), (&b, 0.94)] {
        for e in fs::read_dir(run_dir.join("points")).unwrap() {
            let path = e.unwrap().path();
            let mut r: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            for rep in r["repetitions"].as_array_mut().unwrap() {
                rep["metrics"] = serde_json::json!({
                    "nested_score": nested,
                    "non_nested_score": nested + 0.02,
                    "fits": 24.0,
                });
            }
            fs::write(&path, serde_json::to_string_pretty(&r).unwrap()).unwrap();
        }
    }
    let out_dir = dir.path().join("o");
    let out = run(scalelab()
        .arg("compare")
        .arg(&a)
        .arg(&b)
        .arg("--out")
        .arg(&out_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let md = fs::read_to_string(out_dir.join("compare.md")).unwrap();
    let stem = "compare-study1-nested-nested";
    assert!(md.contains(&format!("(plots/{stem}.png)")), "{md}");
    let svg = fs::read_to_string(out_dir.join(format!("plots/{stem}.svg"))).unwrap();
    let texts = svg_texts(&svg);
    assert!(
        texts.contains(&"nested: non-nested vs nested score, by machine".to_string()),
        "{texts:?}"
    );
    for (machine, optimism) in [
        ("laptop: AMD Ryzen 7 7840U", "+0.020"),
        ("node17: Intel Xeon Platinum 8480+", "+0.020"),
    ] {
        for parallelism in ["trees", "folds"] {
            let entry = format!("parallelism={parallelism} (mean optimism {optimism})");
            assert!(
                texts
                    .iter()
                    .any(|t| t.starts_with(machine) && t.ends_with(&entry)),
                "no entry for {machine}, {entry} in {texts:?}"
            );
        }
    }
    // Run 1's markers blue, run 2's vermillion.
    let fills = marker_fills(&svg);
    assert!(
        fills.contains("#0072B2") && fills.contains("#D55E00"),
        "{fills:?}"
    );
    // The scaling overlays are still drawn.
    for kind in ["speedup", "efficiency", "rate"] {
        assert!(out_dir
            .join(format!("plots/compare-study1-nested-{kind}.svg"))
            .exists());
    }
}

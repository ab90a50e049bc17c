//! Integration tests: the real `scalelab` binary on small manifests in temporary folders, with its
//! outputs parsed back.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{column, read_csv, run, scalelab, write};

fn records_in(run_dir: &Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(run_dir.join("points")) {
        for e in entries {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "json") {
                out.push(serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap());
            }
        }
    }
    out
}

#[test]
fn failed_points_are_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "failures.toml",
        r#"
name = "failures"
repetitions = 2
warmup = 0

[[study]]
name = "fail"
workload = "debug.fail"
mode = ["panic", "abort", "wrong", "error", "ok"]

[[study]]
name = "slow"
workload = "debug.sleep"
seconds = [30.0]
timeout = "1s"
"#,
    );
    let run_dir = dir.path().join("run");
    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir));
    assert_eq!(
        out.code, 1,
        "a failed point makes the exit code 1\n{}{}",
        out.stdout, out.stderr
    );
    let recs = records_in(&run_dir);
    assert_eq!(recs.len(), 6, "every point has a record");
    let by_mode = |mode: &str| {
        recs.iter()
            .find(|r| r["point"]["params"]["mode"] == mode)
            .unwrap_or_else(|| panic!("no record for mode {mode}"))
    };
    assert_eq!(by_mode("panic")["status"], "crashed");
    assert!(by_mode("panic")["reason"]
        .as_str()
        .unwrap()
        .contains("panicked on purpose"));
    assert_eq!(by_mode("abort")["status"], "crashed");
    assert!(
        by_mode("abort")["reason"]
            .as_str()
            .unwrap()
            .contains("SIGABRT"),
        "{}",
        by_mode("abort")["reason"]
    );
    assert_eq!(by_mode("wrong")["status"], "verify_failed");
    assert_eq!(by_mode("error")["status"], "failed");
    assert_eq!(by_mode("ok")["status"], "ok");
    let slow = recs
        .iter()
        .find(|r| r["point"]["workload"] == "debug.sleep")
        .unwrap();
    assert_eq!(slow["status"], "timeout");
    assert!(
        slow["reason"]
            .as_str()
            .unwrap()
            .contains("time limit of 1.0 s"),
        "{}",
        slow["reason"]
    );

    // The report lists the failures and summary.csv has a row for every point.
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("panicked on purpose"));
    let (header, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 6);
    let statuses: Vec<&str> = rows.iter().map(|r| column(&header, r, "status")).collect();
    for s in ["crashed", "verify_failed", "failed", "ok", "timeout"] {
        assert!(statuses.contains(&s), "{s} missing from {statuses:?}");
    }
}

#[test]
fn a_killed_run_resumes_without_repeating_finished_points() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "sleepy.toml",
        r#"
name = "sleepy"
repetitions = 1
warmup = 0

[[study]]
workload = "debug.sleep"
seconds = [0.3, 0.31, 0.32, 0.33, 0.34, 0.35]
"#,
    );
    let run_dir = dir.path().join("run");
    let mut child = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--quiet")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while records_in(&run_dir).len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(60), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL: no clean-up runs
    child.wait().unwrap();
    std::thread::sleep(Duration::from_millis(500)); // an orphaned point process would finish by now
    let before = records_in(&run_dir);
    assert!(
        (2..6).contains(&before.len()),
        "{} records after the kill",
        before.len()
    );
    let started_before: Vec<(String, String)> = before
        .iter()
        .map(|r| {
            (
                r["point"]["id"].as_str().unwrap().to_string(),
                r["started"].as_str().unwrap().to_string(),
            )
        })
        .collect();

    let out = run(scalelab().arg("run").arg("--resume").arg(&run_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains(&format!("({} recorded before this run)", before.len())),
        "{}",
        out.stdout
    );
    let after = records_in(&run_dir);
    assert_eq!(after.len(), 6);
    for (id, started) in started_before {
        let rec = after
            .iter()
            .find(|r| r["point"]["id"] == id.as_str())
            .unwrap();
        assert_eq!(
            rec["started"].as_str().unwrap(),
            started,
            "point {id} was measured again"
        );
    }
    let (_, rows) = read_csv(&run_dir.join("measurements.csv"));
    assert_eq!(rows.len(), 6);
}

#[test]
fn scaling_math_follows_the_mock_model() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "model.toml",
        r#"
name = "model"
repetitions = 3
warmup = 0

[[study]]
workload = "debug.sleep"
threads = [1, 2, 4, 8]
oversubscribe = true
"#,
    );
    let run_dir = dir.path().join("run");
    // t(p) = 0.1 + 0.9/p: Amdahl serial fraction 0.1.
    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--mock")
        .arg("0.1,0.9"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (header, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let p: f64 = column(&header, row, "threads").parse().unwrap();
        let speedup: f64 = column(&header, row, "speedup").parse().unwrap();
        let efficiency: f64 = column(&header, row, "efficiency").parse().unwrap();
        let expect = 1.0 / (0.1 + 0.9 / p);
        assert!(
            (speedup - expect).abs() < 1e-6,
            "p={p}: speedup {speedup} != {expect}"
        );
        assert!((efficiency - expect / p).abs() < 1e-6);
        if p > 1.0 {
            let kf: f64 = column(&header, row, "karp_flatt").parse().unwrap();
            assert!((kf - 0.1).abs() < 1e-6, "p={p}: Karp-Flatt {kf}");
        }
    }
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("0.100"),
        "the Amdahl fraction 0.100 is in the report:\n{report}"
    );
}

#[test]
fn csv_files_have_the_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "cols.toml",
        r#"
name = "cols"
repetitions = 2
warmup = 0

[[study]]
workload = "debug.sleep"
seconds = 0.001
threads = [1, 2]
"#,
    );
    let run_dir = dir.path().join("run");
    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--quiet"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (header, rows) = read_csv(&run_dir.join("measurements.csv"));
    for col in [
        "experiment",
        "study",
        "point_id",
        "workload",
        "variant",
        "backend",
        "nodes",
        "ranks",
        "threads",
        "gpus",
        "size",
        "param_seconds",
        "repetition",
        "seconds",
        "flops",
        "bytes",
        "gflops",
        "gbps",
        "verified",
        "status",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "measurements.csv lacks {col}: {header:?}"
        );
    }
    assert_eq!(rows.len(), 4, "one row per repetition");
    let (header, rows) = read_csv(&run_dir.join("summary.csv"));
    for col in [
        "point_id",
        "min_s",
        "median_s",
        "mean_s",
        "stddev_s",
        "ci95_low_s",
        "ci95_high_s",
        "speedup",
        "efficiency",
        "karp_flatt",
    ] {
        assert!(
            header.iter().any(|h| h == col),
            "summary.csv lacks {col}: {header:?}"
        );
    }
    assert_eq!(rows.len(), 2, "one row per point");
    let prov: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("provenance.json")).unwrap())
            .unwrap();
    for key in [
        "git_revision",
        "machine",
        "manifest_sha256",
        "rustc",
        "features",
        "started",
        "finished",
        "environment",
    ] {
        assert!(prov.get(key).is_some(), "provenance.json lacks {key}");
    }
    assert_eq!(
        fs::read_to_string(run_dir.join("manifest.toml")).unwrap(),
        fs::read_to_string(&manifest).unwrap()
    );
    let plots: Vec<PathBuf> = run_dir
        .join("plots")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(plots
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "png")));
    assert!(plots
        .iter()
        .any(|p| p.extension().is_some_and(|x| x == "svg")));
    // Results are shared with others (a teaching assistant on a cluster): readable by group and world.
    #[cfg(unix)]
    for path in plots
        .iter()
        .chain([&run_dir.join("summary.csv"), &run_dir.join("report.md")])
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o044, 0o044, "{} has mode {mode:o}", path.display());
    }

    // A corrupt record fails only its point: the report leaves it out and names the file, exit 1;
    // a resumed run measures that point again.
    let corrupt = run_dir
        .join("points")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::write(&corrupt, "{ not json").unwrap();
    let out = run(scalelab().arg("report").arg(&run_dir));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("is corrupt"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the report leaves that point out"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("backtrace"),
        "{}",
        out.stderr
    );
    let (_, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 1, "the readable point is still reported");
    let out = run(scalelab().arg("run").arg("--resume").arg(&run_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("measuring that point again"),
        "{}",
        out.stderr
    );
    let rec: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&corrupt).unwrap()).unwrap();
    assert_eq!(rec["status"], "ok");
}

#[test]
fn a_bad_manifest_is_a_clear_error_without_a_backtrace() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "typo.toml",
        "name = \"typo\"\n\n[[study]]\nworkload = \"debug.sleep\"\nthreds = [1, 2]\n",
    );
    let mut cmd = scalelab();
    cmd.env("RUST_BACKTRACE", "1").arg("plan").arg(&manifest);
    let out = run(&mut cmd);
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("typo.toml:5"),
        "names file and line: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains("threds") && out.stderr.contains("did you mean `threads`"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("backtrace") && !out.stderr.contains("panicked"),
        "{}",
        out.stderr
    );

    let out = run(scalelab().arg("plan").arg(dir.path().join("missing.toml")));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("missing.toml"), "{}", out.stderr);

    let out = run(scalelab().arg("report").arg(dir.path()));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("is not a run directory"),
        "{}",
        out.stderr
    );
}

#[test]
fn list_info_and_plan_describe_what_they_show() {
    let out = run(scalelab().arg("list"));
    assert_eq!(out.code, 0);
    for w in [
        "stream.triad",
        "gemm",
        "stencil.jacobi2d",
        "pi.montecarlo",
        "reduce.dot",
        "debug.sleep",
    ] {
        assert!(out.stdout.contains(w), "list shows {w}");
    }
    // Every estimator, with each hyperparameter's default and range.
    assert!(
        out.stdout.contains("\n    decision_tree: CART tree")
            && out
                .stdout
                .contains("\n      min_samples_split = 2  (an integer ≥ 2): "),
        "{}",
        out.stdout
    );
    let out = run(scalelab().arg("info"));
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("peak f64 per core"), "{}", out.stdout);
    let out = run(scalelab()
        .arg("plan")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/quickstart.toml")));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("points"), "{}", out.stdout);
}

#[test]
fn every_kernel_runs_verified_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/smoke.toml");
    let run_dir = dir.path().join("run");
    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let (header, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 50);
    for row in &rows {
        assert_eq!(column(&header, row, "status"), "ok", "{row:?}");
    }
    // Weak scaling grew the matrix order with the cube root of the workers: 64 at p=1, 81 at p=2.
    let weak: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| column(&header, r, "study") == "gemm-weak")
        .map(|r| (column(&header, r, "threads"), column(&header, r, "size")))
        .collect();
    assert_eq!(weak, [("1", "64"), ("2", "81")]);
    let (header, rows) = read_csv(&run_dir.join("measurements.csv"));
    assert_eq!(rows.len(), 100, "two repetitions per point");
    for row in &rows {
        assert_eq!(column(&header, row, "verified"), "true", "{row:?}");
        let seconds: f64 = column(&header, row, "seconds").parse().unwrap();
        assert!(seconds > 0.0);
    }
    let gemm = rows
        .iter()
        .find(|r| column(&header, r, "workload") == "gemm" && column(&header, r, "size") == "96")
        .unwrap();
    let flops: f64 = column(&header, gemm, "flops").parse().unwrap();
    assert_eq!(flops, 2.0 * 96f64.powi(3), "DGEMM counts 2n^3 flops");
    let triad = rows
        .iter()
        .find(|r| column(&header, r, "workload") == "stream.triad")
        .unwrap();
    let bytes: f64 = column(&header, triad, "bytes").parse().unwrap();
    assert_eq!(
        bytes,
        24.0 * 10001.0,
        "STREAM counts 24 bytes per triad element"
    );
}

#[test]
fn an_edited_plan_is_refused_and_a_mock_needs_finite_times() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "edit.toml",
        "name = \"edit\"\nrepetitions = 1\nwarmup = 0\n\n[[study]]\nworkload = \"debug.sleep\"\nseconds = 0.001\n",
    );
    let run_dir = dir.path().join("run");
    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--quiet"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let plan_path = run_dir.join("plan.json");
    let mut plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&plan_path).unwrap()).unwrap();
    let id = plan["points"][0]["id"].as_str().unwrap().to_string();
    plan["points"][0]["resources"]["threads"] = serde_json::json!(0);
    fs::write(&plan_path, serde_json::to_string(&plan).unwrap()).unwrap();
    let out = run(scalelab().arg("point").arg(&run_dir).arg(&id));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("does not match its id (the file was edited)"),
        "{}",
        out.stderr
    );

    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--mock")
        .arg("inf,1")
        .arg("--run-dir")
        .arg(dir.path().join("m")));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("--mock takes two non-negative seconds"),
        "{}",
        out.stderr
    );

    // A sleep longer than a day is caught when the manifest is checked, before anything runs.
    let bad = write(
        dir.path(),
        "long.toml",
        "name = \"long\"\n\n[[study]]\nworkload = \"debug.sleep\"\nseconds = -1.0\n",
    );
    let out = run(scalelab().arg("plan").arg(&bad));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains("seconds = -1 is outside 0..=86400"),
        "{}",
        out.stderr
    );
}

/// `scalelab info` measures the peak once per machine, then quotes the cached figure with its date
/// and file; `--remeasure` measures again; a corrupt cache file is measured over with a warning.
#[test]
fn info_quotes_the_cached_peak_and_remeasures_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let info = |args: &[&str]| {
        run(scalelab()
            .env("SCALELAB_MACHINE_CACHE", dir.path())
            .arg("info")
            .args(args))
    };
    let peak_line = |stdout: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with("peak f64 per core"))
            .unwrap()
            .to_string()
    };
    let first = info(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let files: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    if !first.stdout.contains("FMA/cycle (measured") {
        // No FMA probe on this CPU: nothing measured, nothing cached.
        assert!(files.is_empty(), "{files:?}");
        return;
    }
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].display().to_string();
    assert!(
        first.stdout.contains(&format!("; cached in {file}\n")),
        "{}",
        first.stdout
    );
    let second = info(&[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(peak_line(&second.stdout), peak_line(&first.stdout));
    assert!(
        second.stdout.contains(&format!(
            " in {file}; re-measure with `scalelab info --remeasure`\n"
        )),
        "{}",
        second.stdout
    );
    assert!(
        second
            .stdout
            .contains("peak measured         cached from 20"),
        "{}",
        second.stdout
    );
    let again = info(&["--remeasure"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again.stdout.contains("peak measured         now, at "),
        "{}",
        again.stdout
    );

    fs::write(&files[0], "not json").unwrap();
    let repaired = info(&[]);
    assert_eq!(repaired.code, 0, "{}", repaired.stderr);
    assert!(
        repaired
            .stderr
            .starts_with(&format!("warning: {file} is corrupt (")),
        "{}",
        repaired.stderr
    );
    assert!(
        repaired.stdout.contains("peak measured         now, at "),
        "{}",
        repaired.stdout
    );
    assert!(info(&[])
        .stdout
        .contains("peak measured         cached from "));
}

#[test]
fn mock_runs_are_marked_and_go_to_their_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "m.toml",
        "name = \"mocked\"\nrepetitions = 3\nwarmup = 0\n\n[[study]]\nname = \"triad\"\nworkload = \"stream.triad\"\nthreads = [1, 2]\nsize = \"1MiB\"\n",
    );
    let results = dir.path().join("results");
    let out = run(scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--results")
        .arg(&results)
        .args(["--mock", "0.1,0.9", "-q"]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        !results.join("mocked").exists(),
        "a mock run never lands beside measured runs"
    );
    let runs: Vec<PathBuf> = fs::read_dir(results.join("mock").join("mocked"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
    let run_dir = &runs[0];
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.starts_with("> **MOCK DATA — not measured.**"),
        "{report}"
    );
    let plots: Vec<PathBuf> = fs::read_dir(run_dir.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "svg"))
        .collect();
    // Speedup, efficiency and throughput; no roofline, which would set model times against this
    // machine's real ceilings.
    assert_eq!(plots.len(), 3, "{plots:?}");
    assert!(
        report.contains("Not drawn for a mock run"),
        "the roofline section says why it is missing: {report}"
    );
    for p in &plots {
        let svg = fs::read_to_string(p).unwrap();
        assert!(
            svg.contains("MOCK DATA (model times, not measured)"),
            "{} has no mock badge",
            p.display()
        );
        assert!(
            svg_text(&svg).contains("whiskers: interquartile range"),
            "{}",
            p.display()
        );
    }

    // The whiskers span the fastest to the slowest repetition on request.
    let out = run(scalelab()
        .arg("report")
        .arg(run_dir)
        .args(["--spread", "minmax"]));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let speedup = plots
        .iter()
        .find(|p| p.to_string_lossy().ends_with("-speedup.svg"))
        .unwrap();
    let svg = fs::read_to_string(speedup).unwrap();
    assert!(
        svg_text(&svg).contains("whiskers: fastest to slowest repetition"),
        "{svg}"
    );
    assert!(svg.contains("MOCK DATA"), "still marked after a re-render");
}

/// The text of an SVG's `<text>` elements, joined by spaces (a caption wraps over several).
fn svg_text(svg: &str) -> String {
    svg.split('>')
        .filter_map(|part| part.split('<').next())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

//! `scalelab calibrate` end to end: the profile it writes parses back complete, `run` copies the
//! profile into the run directory, and the report shows measured peaks or says how to get them.
//! No timings are asserted: only that every figure is there and positive.

mod common;

use std::fs;
use std::path::Path;

use common::{scalelab, write};
use serde_json::Value;

const MANIFEST: &str = r#"
name = "calib"
repetitions = 2
warmup = 0

[[study]]
workload = "gemm"
size = [64]
threads = [1]
"#;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// 1, 2, 4, … and the machine's core count.
fn core_counts() -> Vec<u64> {
    let n = cores() as u64;
    let mut c: Vec<u64> = std::iter::successors(Some(1u64), |k| Some(k * 2))
        .take_while(|&k| k < n)
        .collect();
    c.push(n);
    c
}

fn positive(v: &Value, what: &str) -> f64 {
    let x = v
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is not a number: {v}"));
    assert!(x.is_finite() && x > 0.0, "{what} = {x}");
    x
}

fn calibrate_quick(out: &Path) -> Value {
    let o = scalelab()
        .args(["calibrate", "--quick", "--out"])
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.starts_with(&format!("{} (", out.display())),
        "{stdout}"
    );
    assert!(
        stderr.starts_with("calibrating --quick (load average "),
        "{stderr}"
    );
    serde_json::from_slice(&fs::read(out).unwrap()).unwrap()
}

#[test]
fn quick_calibration_writes_a_profile_with_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let p = calibrate_quick(&dir.path().join("sub/profile.json"));
    assert_eq!(p["schema"], 1);
    assert_eq!(p["quick"], true);
    assert_eq!(p["machine"]["cores"].as_u64().unwrap() as usize, cores());
    assert!(p["key"]
        .as_str()
        .unwrap()
        .ends_with(&format!("-{}c", cores())));
    positive(&p["wall_s"], "wall_s");
    assert_eq!(p["load_before"].as_array().unwrap().len(), 3);
    assert!(!p["created"].as_str().unwrap().is_empty());
    let counts = core_counts();
    let cores_of = |list: &str| -> Vec<u64> {
        p[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["cores"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(cores_of("triad"), counts);
    for t in p["triad"].as_array().unwrap() {
        let best = positive(&t["gbps"], "triad gbps");
        let median = positive(&t["gbps_median"], "triad median");
        assert!(best >= median, "best {best} < median {median}");
        positive(&t["working_set_bytes"], "triad working set");
    }
    // Every sweep size from 16 KiB up, at every core count; sizes grow within a core count.
    let sweep = p["sweep"].as_array().unwrap();
    assert!(!sweep.is_empty());
    for c in &counts {
        let sizes: Vec<u64> = sweep
            .iter()
            .filter(|b| b["cores"].as_u64() == Some(*c))
            .map(|b| b["working_set_bytes"].as_u64().unwrap())
            .collect();
        assert!(sizes.len() >= 2, "{sizes:?}");
        assert!(sizes.windows(2).all(|w| w[0] < w[1]), "{sizes:?}");
        assert!(sizes[0] <= 16 * 1024 * c + 24 * 64 * c, "{sizes:?}");
    }
    for b in sweep {
        positive(&b["gbps"], "sweep gbps");
    }
    let levels = p["levels"].as_array().unwrap();
    for c in &counts {
        let names: Vec<&str> = levels
            .iter()
            .filter(|l| l["cores"].as_u64() == Some(*c))
            .map(|l| l["level"].as_str().unwrap())
            .collect();
        assert_eq!(names.last(), Some(&"DRAM"), "{names:?}");
    }
    for l in levels {
        positive(&l["gbps"], "level gbps");
        positive(&l["working_set_per_core_bytes"], "level working set");
    }
    let dgemm = p["dgemm"].as_array().unwrap();
    assert_eq!(dgemm.len(), 2 * counts.len());
    for g in dgemm {
        assert!(["tuned", "faer"].contains(&g["variant"].as_str().unwrap()));
        positive(&g["gflops"], "dgemm gflops");
        positive(&g["n"], "dgemm n");
    }
    match p["mpi"]["status"].as_str().unwrap() {
        "measured" => {
            positive(&p["mpi"]["latency_us"], "latency");
            positive(&p["mpi"]["bandwidth_gbps"], "mpi bandwidth");
            assert_eq!(p["mpi"]["ranks"], 2);
        }
        "skipped" => assert!(!p["mpi"]["reason"].as_str().unwrap().is_empty()),
        other => panic!("mpi status {other}"),
    }
    if !cfg!(feature = "mpi") {
        assert_eq!(
            p["mpi"]["reason"],
            "this scalelab was built without MPI; rebuild with `--features mpi` (and OpenMPI installed) to measure ping-pong"
        );
    }
}

#[test]
fn run_copies_the_profile_and_the_report_uses_it() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    let written = calibrate_quick(&profile);
    let manifest = write(dir.path(), "calib.toml", MANIFEST);
    let run_dir = dir.path().join("run");
    let o = scalelab()
        .env("SCALELAB_PROFILE", &profile)
        .args(["run", "--quiet", "--mock", "0.01,0.02", "--run-dir"])
        .arg(&run_dir)
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let copy = run_dir.join("machine-profile.json");
    // The run's opening line stays first; the profile line follows it.
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with(&format!("run {}: 1 point", run_dir.display())),
        "{stderr}"
    );
    assert!(lines[1].starts_with("machine profile: "), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "machine profile: {} (calibrated {}, --quick), copied to {}",
            profile.display(),
            written["created"].as_str().unwrap(),
            copy.display()
        )),
        "{stderr}"
    );
    let copied: Value = serde_json::from_slice(&fs::read(&copy).unwrap()).unwrap();
    assert_eq!(copied, written);
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("Measured peaks ([machine-profile.json](machine-profile.json), `scalelab calibrate` --quick: rough"),
        "{report}"
    );
    assert!(report.contains("| % peak | % measured |"), "{report}");
}

#[test]
fn run_without_a_profile_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("none.json");
    let manifest = write(dir.path(), "calib.toml", MANIFEST);
    let run_dir = dir.path().join("run");
    let o = scalelab()
        .env("SCALELAB_PROFILE", &profile)
        .args(["run", "--quiet", "--mock", "0.01,0.02", "--run-dir"])
        .arg(&run_dir)
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "note: no machine profile at {}: the report gives % of theoretical peak only; run `scalelab calibrate` once on this machine to add % of measured peak",
            profile.display()
        )),
        "{stderr}"
    );
    assert!(!run_dir.join("machine-profile.json").exists());
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("No measured peaks: this run has no machine-profile.json"),
        "{report}"
    );

    // A profile measured elsewhere is not used.
    let mut other = calibrate_quick(&dir.path().join("measured.json"));
    other["key"] = "elsewhere-other-cpu-64c".into();
    fs::write(&profile, serde_json::to_vec(&other).unwrap()).unwrap();
    let run2 = dir.path().join("run2");
    let o = scalelab()
        .env("SCALELAB_PROFILE", &profile)
        .args(["run", "--quiet", "--mock", "0.01,0.02", "--run-dir"])
        .arg(&run2)
        .arg(&manifest)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: the machine profile {} was measured on elsewhere-other-cpu-64c and this is ",
            profile.display()
        )),
        "{stderr}"
    );
    assert!(!run2.join("machine-profile.json").exists());
}

//! Helpers shared by the integration tests: run the real `scalelab` binary on a manifest in a
//! temporary folder and read its records back.

// Each test binary that includes this module uses only some of its helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub mod slurm;

/// The `scalelab` binary of this build, without backtraces (so a printed one is a real panic),
/// with its cache of measured peaks in the build's temporary folder rather than the user's, and
/// no machine profile.
pub fn scalelab() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_scalelab"));
    cmd.env_remove("RUST_BACKTRACE");
    cmd.env(
        "SCALELAB_MACHINE_CACHE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("machine-cache"),
    );
    // No calibrated profile unless a test gives one: the user's (`scalelab calibrate` on this
    // machine) would otherwise be copied into every run, changing what a test's run holds.
    cmd.env(
        "SCALELAB_PROFILE",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-machine-profile/profile.json"),
    );
    cmd
}

/// What a finished command printed, and its exit code (-1 when a signal ended it).
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Run `cmd` to its end and keep what it printed.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("scalelab runs");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// Write `text` to `<dir>/<name>` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, text).unwrap();
    p
}

/// A CSV file's header and rows, as text.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// The cell of column `name` in `row`.
pub fn column<'a>(header: &[String], row: &'a [String], name: &str) -> &'a str {
    let i = header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"));
    &row[i]
}

/// Run `scalelab run <manifest text> --run-dir <dir>/run -q`; returns the run folder, the exit
/// code and stdout + stderr.
pub fn run_manifest(dir: &Path, text: &str) -> (PathBuf, i32, String) {
    let manifest = dir.join("m.toml");
    fs::write(&manifest, text).unwrap();
    let run_dir = dir.join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("-q")
        .output()
        .expect("scalelab runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (run_dir, out.status.code().unwrap_or(-1), text)
}

/// The records of a run, in plan order; every point must have one.
pub fn records(run_dir: &Path) -> Vec<Value> {
    let plan: Value = serde_json::from_str(&fs::read_to_string(run_dir.join("plan.json")).unwrap())
        .expect("plan.json parses");
    plan["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let path = run_dir
                .join("points")
                .join(format!("{}.json", p["id"].as_str().unwrap()));
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("no record {}: {e}", path.display()));
            serde_json::from_str(&text).unwrap()
        })
        .collect()
}

/// A record in one line for assertion messages: workload, resources, parameters, status, reason.
pub fn describe(rec: &Value) -> String {
    format!(
        "{} ranks={} threads={} params={}: {} {}",
        rec["point"]["workload"],
        rec["point"]["resources"]["ranks"],
        rec["point"]["resources"]["threads"],
        rec["point"]["params"],
        rec["status"],
        rec["reason"]
    )
}

/// The parameter `name` of a record's point, as text (a string without its quotes).
pub fn param(rec: &Value, name: &str) -> String {
    match &rec["point"]["params"][name] {
        Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// The metric `name` of every repetition of `rec`.
pub fn metric(rec: &Value, name: &str) -> Vec<f64> {
    rec["repetitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["metrics"][name]
                .as_f64()
                .unwrap_or_else(|| panic!("no metric {name} in {}", describe(rec)))
        })
        .collect()
}

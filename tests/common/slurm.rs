//! Helpers of the tests that submit to the live SLURM (tests/slurm.rs, tests/slurm_nodes.rs): run
//! `scalelab` in a folder, submit a manifest, wait for jobs in accounting, read records back.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::scalelab;

/// A command's exit code and its stdout and stderr together.
pub struct Out {
    pub code: i32,
    pub text: String,
}

pub fn run(args: &[&str], dir: &Path) -> Out {
    let out = scalelab()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("scalelab runs");
    Out {
        code: out.status.code().unwrap_or(-1),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

pub fn manifest(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    fs::write(&p, text).unwrap();
    p
}

/// `scalelab sbatch <manifest> [extra] --submit --run-dir <dir>/run`, which must succeed; returns
/// the run folder and the output.
pub fn submit(dir: &Path, manifest: &Path, extra: &[&str]) -> (PathBuf, Out) {
    let run_dir = dir.join("run");
    let mut args = vec!["sbatch", manifest.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(["--submit", "--run-dir", run_dir.to_str().unwrap()]);
    let out = run(&args, dir);
    assert_eq!(out.code, 0, "{}", out.text);
    (run_dir, out)
}

pub fn jobs(run_dir: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(run_dir.join("slurm/jobs.json")).unwrap()).unwrap()
}

/// Wait until job `id` has ended in accounting (at most `limit`), and return its state.
pub fn wait_for(id: &str, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let out = Command::new("sacct")
            .args(["-n", "-X", "-P", "--format=State", "-j", id])
            .output()
            .expect("sacct runs");
        let state = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let word = state.split_whitespace().next().unwrap_or("");
        if !word.is_empty()
            && ![
                "PENDING",
                "RUNNING",
                "COMPLETING",
                "CONFIGURING",
                "REQUEUED",
            ]
            .contains(&word)
        {
            return state;
        }
        if start.elapsed() > limit {
            let q = Command::new("squeue").output().unwrap();
            panic!(
                "job {id} still `{state}` after {limit:?}; squeue:\n{}",
                String::from_utf8_lossy(&q.stdout)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Wait for the collect job of the last round of `run_dir`.
pub fn wait_for_round(run_dir: &Path, limit: Duration) {
    let j = jobs(run_dir);
    let last = j["rounds"].as_array().unwrap().last().unwrap().clone();
    let collect = last["collect"].as_str().unwrap();
    let state = wait_for(collect, limit);
    assert_eq!(state, "COMPLETED", "collect job {collect}");
}

pub fn record(run_dir: &Path, id: &str) -> Option<Value> {
    let text = fs::read_to_string(run_dir.join("points").join(format!("{id}.json"))).ok()?;
    Some(serde_json::from_str(&text).unwrap())
}

pub fn point_ids(run_dir: &Path) -> Vec<(String, String)> {
    let plan: Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    plan["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["study_name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

//! Integration tests of MPI points: the real `scalelab` binary launching `mpirun` for points with
//! several ranks or an MPI workload, in temporary folders, with the records and the report parsed
//! back. Needs the `mpi` feature and OpenMPI's `mpirun` on `PATH` (scripts/install-deps.sh --mpi).
//!
//! The workload is mostly `mpi.debug`, whose every rank sleeps `seconds / ranks` per repetition and
//! whose rank 1 misbehaves as `mode` says, so the times and failures are known in advance.

use std::fs;

use serde_json::Value;

mod common;
use common::{records, run_manifest, scalelab};

fn reason(rec: &Value) -> &str {
    rec["reason"].as_str().unwrap()
}

/// Processes (other than this test) whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmd.contains(needle) {
                out.push(format!("{}: {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    out
}

#[test]
fn mpi_debug_over_1_2_4_ranks_records_each_rank_count_and_its_speedup() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "ranks"
repetitions = 3
warmup = 1

[[study]]
workload = "mpi.debug"
ranks = [1, 2, 4]
seconds = 0.2
oversubscribe = true
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 3);
    for (rec, ranks) in recs.iter().zip([1, 2, 4]) {
        assert_eq!(rec["status"], "ok", "{}", reason(rec));
        assert_eq!(rec["point"]["resources"]["ranks"], ranks);
        assert_eq!(rec["backend"], "mpi");
        let reps = rec["repetitions"].as_array().unwrap();
        assert_eq!(reps.len(), 3);
        for r in reps {
            // The maximum over ranks of each rank's rank + 1: the number of ranks that ran.
            assert_eq!(r["metrics"]["rank_plus_one"], ranks as f64);
            let s = r["seconds"].as_f64().unwrap();
            let share = 0.2 / ranks as f64;
            assert!(s >= share && s < share + 0.1, "{ranks} ranks took {s} s");
        }
    }

    // One report, whose summary has the speedup and efficiency of 2 and 4 ranks relative to 1.
    let mut reader = csv::Reader::from_path(run_dir.join("summary.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        let ranks: f64 = row[col("ranks")].parse().unwrap();
        let speedup: f64 = row[col("speedup")].parse().unwrap();
        let efficiency: f64 = row[col("efficiency")].parse().unwrap();
        assert!(
            (speedup - ranks).abs() < 0.3 * ranks,
            "speedup {speedup} at {ranks} ranks"
        );
        assert!(
            (efficiency - speedup / ranks).abs() < 1e-9 && efficiency > 0.7,
            "efficiency {efficiency} at {ranks} ranks"
        );
    }
}

#[test]
fn failures_on_rank_1_are_recorded_and_the_sweep_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "rank-failures"
repetitions = 2
warmup = 0

[[study]]
workload = "mpi.debug"
ranks = 2
mode = ["panic", "wrong", "error", "exit", "ok"]
"#,
    );
    assert_eq!(code, 1, "a failed point makes the exit code 1\n{out}");
    let recs = records(&run_dir);
    let by_mode = |mode: &str| {
        recs.iter()
            .find(|r| r["point"]["params"]["mode"] == mode)
            .unwrap()
    };

    let panic = by_mode("panic");
    assert_eq!(panic["status"], "crashed");
    assert!(
        reason(panic).starts_with(
            "rank 1 panicked: mpi.debug: rank 1 panicked on purpose (mode = \"panic\") at "
        ),
        "{}",
        reason(panic)
    );

    let wrong = by_mode("wrong");
    assert_eq!(wrong["status"], "verify_failed");
    assert_eq!(
        reason(wrong),
        "repetition 1: rank 1: mpi.debug: rank 1's result 41 differs from the reference 42 (mode = \"wrong\")"
    );
    assert_eq!(wrong["repetitions"][0]["verified"], false);

    let error = by_mode("error");
    assert_eq!(error["status"], "failed");
    assert_eq!(
        reason(error),
        "rank 1: preparing mpi.debug: mpi.debug: rank 1 failed to prepare on purpose (mode = \"error\")"
    );

    let exit = by_mode("exit");
    assert_eq!(exit["status"], "crashed");
    assert!(
        reason(exit).starts_with("rank 1 exited with status 3; "),
        "{}",
        reason(exit)
    );

    assert_eq!(by_mode("ok")["status"], "ok", "{}", reason(by_mode("ok")));
}

#[test]
fn a_replicated_workload_runs_once_per_rank() {
    // `debug.sleep` has no `prepare_mpi`: the default runs `prepare` on every rank. The hybrid
    // point (2 ranks × 2 threads, unbound) makes MPI calls from a pool of several workers.
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "replicated"
repetitions = 2
warmup = 1

[[study]]
workload = "debug.sleep"
ranks = [1, 2]
seconds = 0.02

[[study]]
name = "hybrid"
workload = "debug.sleep"
ranks = 2
threads = 2
seconds = 0.02
oversubscribe = true
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 3);
    for (rec, (ranks, threads)) in recs.iter().zip([(1, 1), (2, 1), (2, 2)]) {
        assert_eq!(rec["status"], "ok", "{}", reason(rec));
        assert_eq!(rec["point"]["resources"]["ranks"], ranks);
        assert_eq!(rec["point"]["resources"]["threads"], threads);
        for r in rec["repetitions"].as_array().unwrap() {
            assert!(r["seconds"].as_f64().unwrap() >= 0.02);
        }
    }
}

#[test]
fn an_mpi_point_past_its_time_limit_is_stopped_with_all_its_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "slow"
repetitions = 1
warmup = 0

[[study]]
workload = "mpi.debug"
ranks = 2
seconds = 60.0
timeout = "2s"
"#,
    );
    assert_eq!(code, 1, "{out}");
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "timeout");
    assert!(
        reason(rec).contains("time limit of 2.0 s"),
        "{}",
        reason(rec)
    );
    let left = processes_mentioning(&run_dir.to_string_lossy());
    assert!(left.is_empty(), "ranks left running: {left:?}");
}

#[test]
fn a_point_launched_with_the_wrong_number_of_ranks_says_how_to_launch_it() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        "name = \"direct\"\nrepetitions = 1\nwarmup = 0\n\n[[study]]\nworkload = \"mpi.debug\"\nranks = 2\n",
    );
    assert_eq!(code, 0, "{out}");
    let id = records(&run_dir)[0]["point"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fs::remove_file(run_dir.join("points").join(format!("{id}.json"))).unwrap();
    // Without mpirun, MPI starts as a singleton: one rank.
    let out = scalelab()
        .arg("point")
        .arg(&run_dir)
        .arg(&id)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "failed");
    assert!(
        reason(rec).starts_with(
            "launched with 1 ranks, point wants 2: run it through `scalelab run`, or `mpirun -n 2"
        ),
        "{}",
        reason(rec)
    );
}

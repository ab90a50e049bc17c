//! `scalelab sbatch`, `status` and `collect` against a real SLURM with accounting: the two-node
//! cluster `scripts/local-slurm.sh up --nodes 2` starts (two nodes of one CPU each;
//! `scripts/test.sh` starts it; build with `--features slurm-tests`). Each test submits for real,
//! waits for its jobs and reads back what they wrote: every record, the collect job's report, and
//! `sacct`'s failure classes. tests/slurm_nodes.rs covers what needs several nodes. The two files
//! share one cluster of two CPUs, so .config/nextest.toml runs their tests one at a time.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::scalelab;
use common::slurm::{jobs, manifest, point_ids, record, run, submit, wait_for_round};

/// Panic with the fix when no SLURM answers: these tests must not pass without one.
fn require_slurm() -> String {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%P"])
        .output()
        .unwrap_or_else(|e| {
            panic!("sinfo: {e}; start the test cluster with `bash scripts/local-slurm.sh up --nodes 2`")
        });
    assert!(
        out.status.success(),
        "SLURM does not answer ({}); start it with `bash scripts/local-slurm.sh up --nodes 2`",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let first = text.lines().next().expect("sinfo lists a partition");
    first.trim_end_matches('*').to_string()
}

/// Every partition `sinfo` lists, in its order (the default one marked `*` there, not here).
fn partitions() -> Vec<String> {
    let out = Command::new("sinfo")
        .args(["-h", "-o", "%P"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('*').to_string())
        .collect()
}

#[test]
fn an_array_sweep_runs_every_point_and_the_dependent_job_reports() {
    let partition = require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "sweep",
        &format!(
            "name = \"sweep\"\nrepetitions = 2\nwarmup = 1\ntimeout = \"2m\"\n\n\
             [[study]]\nname = \"triad\"\nworkload = \"stream.triad\"\nsize = [\"1MiB\", \"2MiB\"]\n\n\
             [[study]]\nname = \"sleep\"\nworkload = \"debug.sleep\"\ntimeout = \"1m\"\nseconds = [0.01, 0.02, 0.03]\n\n\
             [slurm]\npartition = \"{partition}\"\nmem = \"500M\"\nthrottle = 2\n"
        ),
    );
    let (run_dir, out) = submit(dir.path(), &m, &[]);
    // Two shapes (time limits of 3 and 2 minutes: the studies' timeouts + 1 minute): two arrays and
    // the collect job.
    assert!(
        out.text
            .contains("3 jobs (2 arrays of 5 points + 1 collect job)"),
        "{}",
        out.text
    );
    let j = jobs(&run_dir);
    let round = &j["rounds"][0];
    assert_eq!(round["jobs"].as_array().unwrap().len(), 2);
    // The 2-minute shape holds the three sleeps.
    let script =
        fs::read_to_string(run_dir.join(round["jobs"][1]["script"].as_str().unwrap())).unwrap();
    assert!(script.contains("\n#SBATCH --array=0-2%2\n"), "{script}");
    assert!(script.contains("\n#SBATCH --time=00:02:00\n"), "{script}");
    wait_for_round(&run_dir, Duration::from_secs(300));

    for (id, study) in point_ids(&run_dir) {
        let rec = record(&run_dir, &id).unwrap_or_else(|| panic!("no record for {id} ({study})"));
        assert_eq!(rec["status"], "ok", "{rec}");
        assert!(rec["slurm"]["SLURM_ARRAY_JOB_ID"].is_string(), "{rec}");
        // No scalelab parent under srun: the task sampled the machine itself.
        assert_eq!(rec["load"]["sampled_by"], "task", "{rec}");
        assert!(rec["load"]["cores"].as_u64().unwrap() >= 1, "{rec}");
    }
    // The collect job wrote the tables and the report.
    let csv = fs::read_to_string(run_dir.join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 5, "{csv}");
    assert!(run_dir.join("report.md").exists());
    // The tasks recorded the compute node's measured peak; the report quotes it, not the nominal
    // figure `scalelab sbatch` saw on the submitting host.
    let prov = fs::read_to_string(run_dir.join("provenance.json")).unwrap();
    assert!(prov.contains("\"peak_source\": \"nominal\""), "{prov}");
    let nodes: Vec<_> = fs::read_dir(run_dir.join("machines")).unwrap().collect();
    assert_eq!(nodes.len(), 1, "one node type");
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    let probed = cfg!(target_arch = "x86_64") && {
        #[cfg(target_arch = "x86_64")]
        let fma = std::arch::is_x86_feature_detected!("fma");
        #[cfg(not(target_arch = "x86_64"))]
        let fma = false;
        fma
    };
    if probed {
        assert!(
            report.contains("; clock and FMA pipes measured 20"),
            "{report}"
        );
    }
    let status = run(&["status", run_dir.to_str().unwrap()], dir.path());
    assert_eq!(status.code, 0, "{}", status.text);
    assert!(
        status
            .text
            .contains(": 5 points: 5 finished, 0 pending, 0 running, 0 failed, 0 not submitted"),
        "{}",
        status.text
    );
    // collect is idempotent.
    let again = run(&["collect", run_dir.to_str().unwrap()], dir.path());
    assert_eq!(again.code, 0, "{}", again.text);
    assert_eq!(
        fs::read_to_string(run_dir.join("summary.csv"))
            .unwrap()
            .lines()
            .count(),
        6
    );
}

#[test]
fn packed_points_run_one_after_another_in_one_allocation() {
    let partition = require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "packed",
        &format!(
            "name = \"packed\"\nrepetitions = 1\ntimeout = \"1m\"\n\n\
             [[study]]\nworkload = \"debug.sleep\"\nseconds = [0.01, 0.02, 0.03, 0.04]\n\n\
             [slurm]\npartition = \"{partition}\"\ntime = \"2\"\nmem = \"200M\"\n"
        ),
    );
    let (run_dir, out) = submit(dir.path(), &m, &["--pack"]);
    assert!(
        out.text
            .contains("2 jobs (1 packed job of 4 points + 1 collect job)"),
        "{}",
        out.text
    );
    let script = fs::read_to_string(run_dir.join("slurm/round-1/pack-1.sbatch")).unwrap();
    assert!(script.contains("\n#SBATCH --time=00:08:00\n"), "{script}");
    wait_for_round(&run_dir, Duration::from_secs(300));
    let job = jobs(&run_dir)["rounds"][0]["jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (id, _) in point_ids(&run_dir) {
        let rec = record(&run_dir, &id).unwrap();
        assert_eq!(rec["status"], "ok");
        // All four ran inside the same allocation.
        assert_eq!(rec["slurm"]["SLURM_JOB_ID"], job.as_str(), "{rec}");
    }
}

#[test]
fn failures_are_classified_from_sacct_and_resume_reruns_only_them() {
    let partition = require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/failures.toml"))
            .unwrap()
            .replace(
                "partition = \"debug\"",
                &format!("partition = \"{partition}\""),
            );
    let m = manifest(dir.path(), "failures", &text);
    let (run_dir, _) = submit(dir.path(), &m, &[]);
    wait_for_round(&run_dir, Duration::from_secs(400));

    let ids = point_ids(&run_dir);
    let id_of = |study: &str| ids.iter().find(|(_, s)| s == study).unwrap().0.clone();
    let status = run(&["status", run_dir.to_str().unwrap()], dir.path());
    assert_eq!(status.code, 1, "{}", status.text);
    assert!(
        status
            .text
            .contains(": 4 points: 1 finished, 0 pending, 0 running, 3 failed, 0 not submitted"),
        "{}",
        status.text
    );
    assert!(
        status
            .text
            .contains(&format!("{}  OUT_OF_MEMORY  memory", id_of("memory"))),
        "{}",
        status.text
    );
    assert!(
        status
            .text
            .contains(&format!("{}  TIMEOUT  time", id_of("time"))),
        "{}",
        status.text
    );
    assert!(
        status
            .text
            .contains(&format!("{}  verify_failed  wrong", id_of("wrong"))),
        "{}",
        status.text
    );
    // The evidence: sacct's lines and the end of the task's output.
    assert!(status.text.contains("|OUT_OF_MEMORY|"), "{}", status.text);
    assert!(status.text.contains("|TIMEOUT|"), "{}", status.text);
    assert!(
        status.text.contains("output (slurm/round-1/logs/"),
        "{}",
        status.text
    );
    let fine_before = record(&run_dir, &id_of("fine")).unwrap();

    let resume = run(
        &["sbatch", "--resume", run_dir.to_str().unwrap(), "--submit"],
        dir.path(),
    );
    assert_eq!(resume.code, 0, "{}", resume.text);
    assert!(
        resume.text.contains("resubmitting 2 points:"),
        "{}",
        resume.text
    );
    assert!(
        resume.text.contains(&format!(
            "{}  OUT_OF_MEMORY: with --mem=2G (was 1G)",
            id_of("memory")
        )),
        "{}",
        resume.text
    );
    assert!(
        resume.text.contains(&format!(
            "{}  TIMEOUT: with --time=00:03:00 (was 00:01:00)",
            id_of("time")
        )),
        "{}",
        resume.text
    );
    assert!(
        resume.text.contains(&format!(
            "{}  verify_failed: its result was wrong",
            id_of("wrong")
        )),
        "{}",
        resume.text
    );
    let round2 = &jobs(&run_dir)["rounds"][1];
    let mut resubmitted: Vec<String> = round2["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| {
            j["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_str().unwrap().to_string())
        })
        .collect();
    resubmitted.sort();
    let mut want = vec![id_of("memory"), id_of("time")];
    want.sort();
    assert_eq!(resubmitted, want);
    wait_for_round(&run_dir, Duration::from_secs(400));

    // More memory and more time were enough; the finished point was not run again.
    assert_eq!(record(&run_dir, &id_of("memory")).unwrap()["status"], "ok");
    assert_eq!(record(&run_dir, &id_of("time")).unwrap()["status"], "ok");
    assert_eq!(record(&run_dir, &id_of("fine")).unwrap(), fine_before);
    assert_eq!(
        record(&run_dir, &id_of("wrong")).unwrap()["status"],
        "verify_failed"
    );
    let status = run(&["status", run_dir.to_str().unwrap()], dir.path());
    assert!(
        status
            .text
            .contains(": 4 points: 3 finished, 0 pending, 0 running, 1 failed, 0 not submitted"),
        "{}",
        status.text
    );
}

#[test]
fn bad_submissions_are_clear_errors() {
    let partition = require_slurm();
    let dir = tempfile::tempdir().unwrap();
    let body = "name = \"e\"\n[[study]]\nworkload = \"debug.sleep\"\n";
    // No partition.
    let m = manifest(
        dir.path(),
        "nopart",
        &format!("{body}\n[slurm]\ntime = \"1\"\n"),
    );
    let out = run(&["sbatch", m.to_str().unwrap(), "--dry-run"], dir.path());
    assert_eq!(out.code, 2, "{}", out.text);
    assert!(
        out.text
            .contains("nopart.toml: [slurm]: no `partition`: SLURM sweeps need one; add e.g."),
        "{}",
        out.text
    );
    // A partition the cluster does not have.
    let m = manifest(
        dir.path(),
        "badpart",
        &format!("{body}\n[slurm]\npartition = \"gpu-huge\"\n"),
    );
    let out = run(&["sbatch", m.to_str().unwrap(), "--dry-run"], dir.path());
    assert_eq!(out.code, 2, "{}", out.text);
    assert!(out.text.contains(&format!("badpart.toml: [slurm] partition \"gpu-huge\" does not exist on this cluster; sinfo lists: {}", partitions().join(", "))), "{}", out.text);
    // A shape larger than the partition's nodes (judged by the cluster's nodes, not this machine's
    // cores: no `oversubscribe` needed).
    let m = manifest(
        dir.path(),
        "big",
        &format!("{body}threads = [512]\n\n[slurm]\npartition = \"{partition}\"\n"),
    );
    let out = run(&["sbatch", m.to_str().unwrap(), "--dry-run"], dir.path());
    assert_eq!(out.code, 2, "{}", out.text);
    assert!(
        out.text
            .contains("CPUs per node, but points of shape 1 node × 1 task × 512 CPUs"),
        "{}",
        out.text
    );
    // sbatch not on PATH.
    let ok = manifest(
        dir.path(),
        "ok",
        &format!("{body}\n[slurm]\npartition = \"{partition}\"\n"),
    );
    let out = scalelab()
        .args(["sbatch", ok.to_str().unwrap(), "--submit"])
        .env("PATH", "/nonexistent")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "`sbatch` was not found on PATH: run scalelab on the cluster's login node (after `module load slurm` if your site needs it), or start a one-node SLURM here with `bash scripts/local-slurm.sh up`"
    ));
    // A run directory of another manifest.
    let run_dir = dir.path().join("run");
    let out = run(
        &[
            "sbatch",
            ok.to_str().unwrap(),
            "--run-dir",
            run_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.code, 0, "{}", out.text);
    assert!(
        out.text
            .contains("not submitted; submit with `scalelab sbatch --resume"),
        "{}",
        out.text
    );
    let other = manifest(
        dir.path(),
        "other",
        &format!("{body}seconds = [0.5]\n\n[slurm]\npartition = \"{partition}\"\n"),
    );
    let out = run(
        &[
            "sbatch",
            other.to_str().unwrap(),
            "--run-dir",
            run_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.code, 2, "{}", out.text);
    assert!(
        out.text
            .contains("belongs to another manifest (experiment `e`"),
        "{}",
        out.text
    );
    // No stray output of SLURM or a backtrace.
    assert!(!out.text.contains("stack backtrace"), "{}", out.text);
}

/// MPI points inside the allocation: ranks started by `srun` (PMIx) or by `mpirun`, each measuring
/// the same point with every rank (one rank on each of the two one-CPU nodes).
#[cfg(feature = "mpi")]
#[test]
fn mpi_points_start_their_ranks_inside_the_allocation() {
    let partition = require_slurm();
    for launcher in ["srun", "mpirun"] {
        let dir = tempfile::tempdir().unwrap();
        let m = manifest(
            dir.path(),
            "mpi",
            &format!(
                "name = \"mpi-{launcher}\"\nrepetitions = 2\ntimeout = \"2m\"\n\n\
                 [[study]]\nworkload = \"mpi.pi\"\nranks = [2]\nranks_per_node = 1\nsize = [\"1M\"]\n\n\
                 [slurm]\npartition = \"{partition}\"\ntime = \"3\"\nmem = \"1G\"\nlauncher = \"{launcher}\"\n"
            ),
        );
        let (run_dir, _) = submit(dir.path(), &m, &[]);
        let script = fs::read_to_string(run_dir.join("slurm/round-1/array-1.sbatch")).unwrap();
        assert!(script.contains("\n#SBATCH --ntasks=2\n"), "{script}");
        assert!(script.contains(&format!("\nexec {launcher} ")), "{script}");
        wait_for_round(&run_dir, Duration::from_secs(300));
        for (id, _) in point_ids(&run_dir) {
            let rec =
                record(&run_dir, &id).unwrap_or_else(|| panic!("{launcher}: no record for {id}"));
            assert_eq!(rec["status"], "ok", "{launcher}: {rec}");
            assert_eq!(rec["point"]["resources"]["ranks"], 2);
            // Rank 0 sampled the machine, counting both ranks' CPU time as the point's.
            assert_eq!(rec["load"]["sampled_by"], "task", "{launcher}: {rec}");
            assert!(
                rec["load"]["point_cores"].as_f64().unwrap() > 0.0,
                "{launcher}: {rec}"
            );
        }
    }
}

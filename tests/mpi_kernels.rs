//! End-to-end tests of the MPI kernels (`mpi.*` workloads): the real `scalelab` binary runs a small
//! manifest of every MPI workload at 2 and 4 ranks (the ping-pong at 2) through `mpirun`, and every
//! record must be ok: each repetition verified on every rank. Needs the `mpi` feature and OpenMPI's
//! `mpirun` on `PATH`.

mod common;
use common::{describe, metric, records, run_manifest};

#[test]
fn every_mpi_kernel_verifies_at_2_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "mpi-kernels"
repetitions = 2
warmup = 1
timeout = "2m"

[[study]]
name = "pingpong"
workload = "mpi.pingpong"
ranks = 2
size = ["1B", "70000B"]
iterations = 20

[[study]]
name = "allreduce"
workload = "mpi.allreduce"
oversubscribe = true
ranks = [2, 4]
size = ["8B", "40KiB"]
iterations = 5

[[study]]
name = "bcast"
workload = "mpi.bcast"
oversubscribe = true
ranks = [2, 4]
size = ["3B", "40KiB"]
iterations = 5

[[study]]
name = "allgather"
workload = "mpi.allgather"
oversubscribe = true
ranks = [2, 4]
size = ["8B", "40KiB"]
iterations = 5

[[study]]
name = "stencil"
workload = "mpi.stencil"
oversubscribe = true
ranks = [2, 4]
threads = [1, 2]
size = 37
iterations = 5

[[study]]
name = "gemm"
workload = "mpi.gemm"
oversubscribe = true
ranks = [2, 4]
threads = [1, 2]
size = 45

[[study]]
name = "pi"
workload = "mpi.pi"
oversubscribe = true
ranks = [2, 4]
size = 300000
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 2 + 3 * 2 * 2 + 4 + 4 + 2, "{out}");
    for rec in &recs {
        assert_eq!(rec["status"], "ok", "{}", describe(rec));
        assert_eq!(rec["backend"], "mpi");
        let reps = rec["repetitions"].as_array().unwrap();
        assert_eq!(reps.len(), 2, "{}", describe(rec));
        assert!(
            reps.iter().all(|r| r["verified"] == true),
            "{}",
            describe(rec)
        );
        match rec["point"]["workload"].as_str().unwrap() {
            "mpi.pingpong" | "mpi.allreduce" | "mpi.bcast" | "mpi.allgather" => {
                assert!(metric(rec, "latency_us").iter().all(|&v| v > 0.0));
            }
            "mpi.stencil" | "mpi.gemm" => {
                assert!(metric(rec, "compute_s").iter().all(|&v| v > 0.0));
                assert!(metric(rec, "comm_s").iter().all(|&v| v > 0.0));
            }
            _ => {}
        }
    }
}

#[test]
fn pingpong_on_one_rank_fails_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "pingpong-alone"
repetitions = 1
warmup = 0

[[study]]
workload = "mpi.pingpong"
ranks = 1
iterations = 2
"#,
    );
    assert_eq!(code, 1, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0]["status"], "failed", "{}", describe(&recs[0]));
    let reason = recs[0]["reason"].as_str().unwrap();
    assert!(reason.contains("at least 2 ranks"), "{reason}");
}

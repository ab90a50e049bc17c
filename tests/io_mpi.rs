//! `io.seq` at 2 ranks through `mpirun` (feature `mpi`): file per process and one shared file,
//! writes and reads of the other rank's data, every byte verified on every rank, the aggregate
//! bytes recorded, and nothing left in the target directory.

use std::fs;

mod common;
use common::{records, run_manifest};

#[test]
fn io_two_ranks_write_and_read_each_others_data_in_both_layouts() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let (run_dir, code, out) = run_manifest(
        tmp.path(),
        &format!(
            r#"
name = "io-mpi"
repetitions = 2
warmup = 1
timeout = "2m"

[[study]]
name = "layouts"
workload = "io.seq"
ranks = 2
oversubscribe = true
mode = ["write", "read"]
layout = ["file-per-process", "shared"]
read_from = "other"
dir = "{}"
block = "1MiB"
transfer = "64KiB"
"#,
            target.display()
        ),
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 4);
    for rec in &recs {
        assert_eq!(rec["status"], "ok", "{rec}");
        // Both ranks' blocks.
        assert_eq!(rec["work"]["bytes"].as_f64(), Some(2.0 * 1048576.0));
        for r in rec["repetitions"].as_array().unwrap() {
            assert_eq!(r["verified"], true);
            assert!(r["metrics"]["iops"].as_f64().unwrap() > 0.0);
        }
    }
    let left: Vec<_> = fs::read_dir(&target)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn io_a_bad_directory_at_two_ranks_fails_the_point_without_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        tmp.path(),
        r#"
name = "io-mpi-bad"
repetitions = 1
timeout = "1m"

[[study]]
workload = "io.seq"
ranks = 2
oversubscribe = true
dir = "$SCALELAB_IO_TEST_UNSET"
block = "1MiB"
"#,
    );
    assert_eq!(code, 1, "{out}");
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "failed", "{rec}");
    let reason = rec["reason"].as_str().unwrap();
    assert!(reason.contains("rank 0"), "{reason}");
    assert!(
        reason.contains("needs the environment variable SCALELAB_IO_TEST_UNSET"),
        "{reason}"
    );
}

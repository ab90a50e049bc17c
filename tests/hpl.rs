//! The HPL workloads through the real `scalelab` binary: `hpl.lu` at 1 and 2 threads (every
//! repetition verified with HPL's residual, recorded as a metric; HPL's flop count in the
//! record; the TOP500 section and plot in the report), bad `nb`/`size` refused at plan time with
//! the key named, and (feature `mpi`) `mpi.hpl.lu` under mpirun at 2 and 4 ranks.

use std::fs;

use serde_json::Value;

mod common;
use common::{describe, records, run, run_manifest, scalelab, write};

/// Every repetition of every record verified, with a residual below 16; HPL's flop count.
fn assert_verified_hpl(recs: &[Value], reps: usize) {
    for rec in recs {
        assert_eq!(rec["status"], "ok", "{}", describe(rec));
        let n = rec["size"].as_f64().unwrap();
        let flops = rec["work"]["flops"].as_f64().unwrap();
        assert_eq!(
            flops,
            2.0 / 3.0 * n * n * n + 1.5 * n * n,
            "{}",
            describe(rec)
        );
        let r = rec["repetitions"].as_array().unwrap();
        assert_eq!(r.len(), reps, "{}", describe(rec));
        for rep in r {
            assert_eq!(rep["verified"], true, "{}", describe(rec));
            let res = rep["metrics"]["residual"].as_f64().unwrap();
            assert!(
                (0.0..16.0).contains(&res),
                "residual {res}: {}",
                describe(rec)
            );
        }
    }
}

#[test]
fn hpl_lu_verifies_every_repetition_and_the_report_places_it_in_the_top500() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "hpl"
repetitions = 2
warmup = 1

[[study]]
workload = "hpl.lu"
threads = [1, 2]
size = [97, 160]
nb = 32
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 4);
    assert_verified_hpl(&recs, 2);
    // The report has the TOP500 section and its plot, parsed back.
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("## Where this machine would have stood in the TOP500"),
        "{report}"
    );
    assert!(report.contains("`hpl.lu` n = "), "{report}");
    assert!(report
        .contains("![This machine's HPL result against the TOP500 #1 and #500](plots/top500.png)"));
    let svg = fs::read_to_string(run_dir.join("plots/top500.svg")).unwrap();
    assert!(svg.contains("#1 of the list") && svg.contains("#500 of the list"));
    assert!(svg.contains("this machine: "));
    let png = fs::read(run_dir.join("plots/top500.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}

#[test]
fn a_run_without_hpl_has_no_top500_section() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "nohpl"
repetitions = 1
warmup = 0

[[study]]
workload = "gemm"
size = 16
"#,
    );
    assert_eq!(code, 0, "{out}");
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(!report.contains("TOP500"), "{report}");
    assert!(!run_dir.join("plots/top500.svg").exists());
}

#[test]
fn bad_nb_and_size_are_refused_at_plan_time_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "bad.toml",
        r#"
name = "bad"

[[study]]
workload = "hpl.lu"
size = 100
nb = 200

[[study]]
name = "zero"
workload = "hpl.lu"
size = 100
nb = 0
"#,
    );
    let out = run(scalelab().arg("plan").arg(&manifest));
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("hpl.lu: `nb` = 200 is larger than the matrix order n = 100 (from `size`)"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("bad.toml:13: study 2 (zero): `nb` must be a positive whole number, found 0"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("2 problems in"), "{}", out.stderr);
}

#[cfg(feature = "mpi")]
#[test]
fn mpi_hpl_lu_verifies_at_2_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "mpi-hpl"
repetitions = 2
warmup = 1
timeout = "2m"

[[study]]
workload = "mpi.hpl.lu"
oversubscribe = true
ranks = [2, 4]
threads = [1, 2]
size = 150
nb = 16
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 4);
    assert_verified_hpl(&recs, 2);
    for rec in &recs {
        let ranks = rec["point"]["resources"]["ranks"].as_u64().unwrap();
        let rep = &rec["repetitions"][0]["metrics"];
        let (p, q) = (
            rep["grid_p"].as_f64().unwrap(),
            rep["grid_q"].as_f64().unwrap(),
        );
        // P ≤ Q, P·Q = ranks: 1 × 2 and 2 × 2.
        assert_eq!((p, q), if ranks == 2 { (1.0, 2.0) } else { (2.0, 2.0) });
        assert!(rep["comm_s"].as_f64().unwrap() > 0.0, "{}", describe(rec));
    }
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("`mpi.hpl.lu` n = 150, nb = 16"), "{report}");
}

//! The report's side of calibration: "% measured" from the run's own machine profile, and what
//! the report says without one.

use crate::calibrate::profile::{tests::fixture, RUN_FILE};
use crate::machine::Machine;
use crate::plan::{Plan, Scaling};
use crate::report::test_support::record;
use crate::results::{PointRecord, RunDir};

/// DGEMM n = 1000 (2·10⁹ flops) at 1, 2 and 4 threads and triad of 10⁸ elements (2.4·10⁹ bytes)
/// at 1 and 2: rates 20, 40, 80 GFLOP/s and 24, 40 GB/s.
fn records() -> Vec<PointRecord> {
    let mut recs = vec![
        record(0, "gemm", Scaling::Strong, 1, 1000, &[0.1, 0.1]),
        record(0, "gemm", Scaling::Strong, 2, 1000, &[0.05, 0.05]),
        record(0, "gemm", Scaling::Strong, 4, 1000, &[0.025, 0.025]),
    ];
    recs.push(record(
        1,
        "stream.triad",
        Scaling::Strong,
        1,
        100_000_000,
        &[0.1],
    ));
    recs.push(record(
        1,
        "stream.triad",
        Scaling::Strong,
        2,
        100_000_000,
        &[0.06],
    ));
    recs
}

fn report_with(profile: Option<&[u8]>) -> (String, RunDir, tempfile::TempDir) {
    let recs = records();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    if let Some(bytes) = profile {
        std::fs::write(dir.path().join(RUN_FILE), bytes).unwrap();
    }
    let plan = Plan {
        experiment: "calib".into(),
        manifest_sha256: "0".repeat(64),
        points: recs.iter().map(|r| r.point.clone()).collect(),
    };
    let machine = Machine {
        host: "testhost".into(),
        cpu_model: "Test CPU".into(),
        cores: 2,
        peak_gflops_per_core: 50.0,
        ..Machine::default()
    };
    crate::report::write(&run, &plan, &recs, &machine).unwrap();
    (std::fs::read_to_string(run.report()).unwrap(), run, dir)
}

/// The table row of point `id`, split into trimmed cells.
fn row(md: &str, id: &str) -> Vec<String> {
    let line = md
        .lines()
        .find(|l| l.starts_with(&format!("| `{id}`")))
        .unwrap_or_else(|| panic!("no row for {id} in\n{md}"));
    line.trim_matches('|')
        .split('|')
        .map(|c| c.trim().to_string())
        .collect()
}

/// The cell under `head` in point `id`'s row of the table that has that column.
fn cell(md: &str, id: &str, head: &str) -> String {
    let r = row(md, id);
    let header = md
        .lines()
        .filter(|l| l.starts_with("| point |"))
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect::<Vec<_>>()
        })
        .find(|h| h.len() == r.len())
        .expect("a header as wide as the row");
    let k = header.iter().position(|h| h == head).expect(head);
    r[k].clone()
}

#[test]
fn report_shows_theoretical_and_measured_peak_side_by_side() {
    let profile = serde_json::to_vec_pretty(&fixture()).unwrap();
    let (md, _run, _dir) = report_with(Some(&profile));
    // Theoretical: 50 GFLOP/s per core; measured: the median of the DGEMM with the highest
    // median, 24.25 (1 core: faer 25 best, 0.97 × 25 median), 43.65 (2 cores: tuned) — the
    // point's median against calibrate's median, not against its best (25, 45: 80%, 89%).
    assert_eq!(cell(&md, "0get1n1000", "% peak"), "40%");
    assert_eq!(cell(&md, "0get1n1000", "% measured"), "82%");
    assert_eq!(cell(&md, "0get2n1000", "% peak"), "40%");
    assert_eq!(cell(&md, "0get2n1000", "% measured"), "92%");
    // No figure at 4 cores in the profile: no share rather than a wrong one.
    assert_eq!(cell(&md, "0get4n1000", "% measured"), "–");
    // Bandwidth-bound: GB/s against the triad's median at the same core count (38, 47.5 GB/s;
    // best 40, 50).
    assert_eq!(cell(&md, "1stt1n100000000", "% peak"), "–");
    assert_eq!(cell(&md, "1stt1n100000000", "% measured"), "63%");
    assert_eq!(cell(&md, "1stt2n100000000", "% measured"), "84%");
    assert!(
        md.contains("Measured peaks ([machine-profile.json](machine-profile.json), `scalelab calibrate`, 2026-12-06T10:00:00Z): STREAM triad 40.0 GB/s on 1 core (median 38.0), 50.0 GB/s on 2 (median 47.5); DGEMM 25.0 GFLOP/s on 1 core (median 24.2), 45.0 on 2 (median 43.6). \"% peak\" is of the theoretical peak; \"% measured\" is the point's median rate over calibrate's median"),
        "{md}"
    );
}

#[test]
fn report_without_a_profile_says_how_to_make_one() {
    let (md, run, _dir) = report_with(None);
    let want = format!(
        "No measured peaks: this run has no machine-profile.json, so \"% measured\" is empty; make one with `scalelab calibrate --out {}` on the machine that ran it, then `scalelab report {}`.",
        run.root.join(RUN_FILE).display(),
        run.root.display()
    );
    assert!(md.contains(&want), "{md}");
    assert_eq!(cell(&md, "0get1n1000", "% measured"), "–");
    assert_eq!(cell(&md, "0get1n1000", "% peak"), "40%");
}

#[test]
fn report_with_a_corrupt_profile_names_it_and_the_fix() {
    let (md, run, _dir) = report_with(Some(b"{ not json"));
    let path = run.root.join(RUN_FILE);
    assert!(
        md.contains(&format!(
            "**Measured peaks unusable**: {} is not a machine profile this scalelab can read; make a new one with `scalelab calibrate --out {}`: no \"schema\" field",
            path.display(),
            path.display()
        )),
        "{md}"
    );
    assert_eq!(cell(&md, "1stt1n100000000", "% measured"), "–");
}

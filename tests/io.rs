//! The I/O workload `io.seq` through the real `scalelab` binary: write and read points recorded
//! with their bytes and IOPS, and every refusal of a bad target directory (missing, not writable,
//! too small, a variable unset where the point runs), and the clean-up of folders left by a
//! crashed point. The byte-level checks (a corrupted or truncated file fails the point) are unit
//! tests in src/workload/io.rs, where the file can be damaged between two repetitions.

use std::fs;
use std::path::Path;

mod common;
use common::{records, run, run_manifest, scalelab, write};

/// A one-rank manifest writing into `dir`, with `extra` study lines.
fn manifest(dir: &Path, extra: &str) -> String {
    format!(
        r#"
name = "io-test"
repetitions = 2
warmup = 1
timeout = "2m"

[[study]]
name = "seq"
workload = "io.seq"
dir = "{}"
block = "2MiB"
transfer = "256KiB"
{extra}
"#,
        dir.display()
    )
}

/// `scalelab plan` on `text`: exit code and stderr.
fn plan(dir: &Path, text: &str) -> (i32, String) {
    let m = write(dir, "m.toml", text);
    let out = run(scalelab().arg("plan").arg(&m));
    (out.code, out.stderr)
}

/// Entries of `dir` whose name starts with `scalelab-io-` (folders and lock files of points).
fn point_files(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("scalelab-io-"))
        .collect()
}

#[test]
fn io_write_and_read_points_record_bytes_and_iops_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let (run_dir, code, out) = run_manifest(
        tmp.path(),
        &manifest(
            &target,
            "mode = [\"write\", \"read\"]\nread_from = [\"other\", \"own\"]\nfsync = \"yes\"",
        ),
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 4);
    for rec in &recs {
        assert_eq!(rec["status"], "ok", "{rec}");
        assert_eq!(rec["backend"], "io");
        assert_eq!(rec["work"]["bytes"].as_f64(), Some(2.0 * 1048576.0));
        assert_eq!(rec["size"].as_u64(), Some(2 << 20));
        let reps = rec["repetitions"].as_array().unwrap();
        assert_eq!(reps.len(), 2);
        for r in reps {
            assert_eq!(r["verified"], true);
            assert!(r["metrics"]["iops"].as_f64().unwrap() > 0.0, "{r}");
            if rec["point"]["params"]["mode"] == "read" {
                let c = r["metrics"]["cached_share"].as_f64().unwrap();
                assert!((0.0..=1.0).contains(&c), "{r}");
            } else {
                assert!(r["metrics"].get("cached_share").is_none(), "{r}");
            }
        }
    }
    // The summary has the bandwidth and the IOPS columns.
    let (header, rows) = common::read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let gbps: f64 = common::column(&header, row, "gbps").parse().unwrap();
        assert!(gbps > 0.0);
        let iops: f64 = common::column(&header, row, "metric_iops").parse().unwrap();
        assert!(iops > 0.0);
    }
    // Every point removed its folder and its lock.
    assert_eq!(point_files(&target), Vec::<String>::new());
}

#[test]
fn io_a_missing_directory_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no-such-dir");
    let (code, err) = plan(tmp.path(), &manifest(&missing, ""));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "io.seq: `dir` = \"{0}\": {0} does not exist on ",
            missing.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "create it (mkdir -p {}) or set `dir` to an existing directory",
            missing.display()
        )),
        "{err}"
    );
    assert!(err.contains("m.toml:"), "the manifest is named: {err}");
}

#[test]
fn io_a_file_instead_of_a_directory_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(tmp.path(), "plain-file", "x");
    let (code, err) = plan(tmp.path(), &manifest(&file, ""));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("is not a directory; set `dir` to the directory the files should go into"),
        "{err}"
    );
}

#[test]
fn io_a_directory_that_cannot_be_written_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    // Root may write anywhere permissions say no, but not into sysfs.
    let dir = if unsafe { libc::geteuid() } == 0 {
        Path::new("/sys/kernel").to_path_buf()
    } else {
        use std::os::unix::fs::PermissionsExt;
        let d = tmp.path().join("read-only");
        fs::create_dir(&d).unwrap();
        fs::set_permissions(&d, fs::Permissions::from_mode(0o555)).unwrap();
        d
    };
    let (code, err) = plan(tmp.path(), &manifest(&dir, ""));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "io.seq: `dir` = \"{0}\": cannot create a file in {0} (",
            dir.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("choose a directory you may write to, or fix its permissions"),
        "{err}"
    );
}

#[test]
fn io_a_plan_larger_than_the_free_space_is_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let text = manifest(&target, "").replace("block = \"2MiB\"", "block = \"1000TiB\"");
    let (code, err) = plan(tmp.path(), &text);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("free (statvfs), but this point writes one block of 1024000.00 GiB = 1024000.00 GiB there; use a smaller `block` or fewer ranks, or free space"), "{err}");
    assert_eq!(point_files(&target), Vec::<String>::new());
}

#[test]
fn io_a_variable_unset_where_the_point_runs_fails_that_point() {
    let tmp = tempfile::tempdir().unwrap();
    let text = manifest(Path::new("$SCALELAB_IO_TEST_UNSET/x"), "");
    let (run_dir, code, out) = run_manifest(tmp.path(), &text);
    assert_eq!(code, 1, "{out}");
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "failed");
    let reason = rec["reason"].as_str().unwrap();
    assert!(
        reason.contains("io.seq: `dir` = \"$SCALELAB_IO_TEST_UNSET/x\" needs the environment variable SCALELAB_IO_TEST_UNSET, which is not set on "),
        "{reason}"
    );
    assert!(
        reason.ends_with("; set it, or write an absolute path"),
        "{reason}"
    );
}

#[test]
fn io_a_variable_path_is_expanded_where_the_point_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let m = write(
        tmp.path(),
        "m.toml",
        &manifest(Path::new("${SCALELAB_IO_TEST_DIR}"), ""),
    );
    let out = run(scalelab()
        .env("SCALELAB_IO_TEST_DIR", &target)
        .arg("run")
        .arg(&m)
        .arg("--run-dir")
        .arg(tmp.path().join("run"))
        .arg("-q"));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(records(&tmp.path().join("run"))[0]["status"], "ok");
}

/// A folder and lock file as a point killed mid-run leaves them.
fn crashed_point(dir: &Path, name: &str, files: &[(&str, usize)]) -> std::path::PathBuf {
    let folder = dir.join(name);
    fs::create_dir(&folder).unwrap();
    for (f, n) in files {
        fs::write(folder.join(f), vec![7u8; *n]).unwrap();
    }
    fs::write(dir.join(format!("{name}.lock")), b"").unwrap();
    folder
}

#[test]
fn io_folders_left_by_a_crashed_point_are_removed_and_the_log_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let dead = crashed_point(
        &target,
        "scalelab-io-node7-4242-1",
        &[("rank-0.dat", 3 << 20), ("rank-1.dat", 1 << 20)],
    );
    fs::write(target.join("keep-me.txt"), b"not ours").unwrap();
    let (run_dir, code, out) = run_manifest(tmp.path(), &manifest(&target, ""));
    assert_eq!(code, 0, "{out}");
    assert!(!dead.exists());
    assert_eq!(point_files(&target), Vec::<String>::new());
    assert!(target.join("keep-me.txt").exists());
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "ok");
    let id = rec["point"]["id"].as_str().unwrap();
    let log = fs::read_to_string(run_dir.join("logs").join(format!("{id}.txt"))).unwrap();
    assert!(
        log.contains(&format!(
            "scalelab: io.seq: removed {} (0.00 GiB in 2 files), left by an earlier io.seq point that ended without cleaning up (no process holds {}.lock)",
            dead.display(),
            dead.display()
        )),
        "{log}"
    );
}

#[test]
fn io_a_leftover_folder_holding_other_files_fails_the_point_and_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let odd = crashed_point(
        &target,
        "scalelab-io-node7-4242-1",
        &[("rank-0.dat", 10), ("results.csv", 10)],
    );
    let (run_dir, code, out) = run_manifest(tmp.path(), &manifest(&target, ""));
    assert_eq!(code, 1, "{out}");
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "failed");
    assert_eq!(
        rec["reason"].as_str().unwrap(),
        format!(
            "preparing io.seq: io.seq: {} looks like the folder of an earlier io.seq point, but holds {}, which io.seq does not write; move what you need out of it and remove the folder",
            odd.display(),
            odd.join("results.csv").display()
        )
    );
    assert!(odd.join("results.csv").exists() && odd.join("rank-0.dat").exists());
}

#[test]
fn io_points_get_no_share_of_the_memory_bandwidth_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let profile = tmp.path().join("profile.json");
    let cal = run(scalelab()
        .args(["calibrate", "--quick", "--out"])
        .arg(&profile));
    assert_eq!(cal.code, 0, "{}", cal.stderr);
    let m = write(tmp.path(), "m.toml", &manifest(&target, ""));
    let run_dir = tmp.path().join("run");
    let out = run(scalelab()
        .env("SCALELAB_PROFILE", &profile)
        .arg("run")
        .arg(&m)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("-q"));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("Measured peaks ("), "{report}");
    let lines: Vec<&str> = report.lines().collect();
    let header = lines
        .iter()
        .find(|l| l.contains("| % measured |"))
        .expect("a points table");
    let col = header
        .split('|')
        .position(|c| c.trim() == "% measured")
        .unwrap();
    // The study's one point: its parameters are said above the table.
    assert!(report.contains("Every point: `"), "{report}");
    let row = lines
        .iter()
        .find(|l| l.starts_with("| `"))
        .expect("the io point's row");
    // GB/s to a disk is no share of STREAM's memory bandwidth.
    assert_eq!(row.split('|').nth(col).unwrap().trim(), "–", "{row}");
}

//! The run directory under misuse: two processes on one run (the lock), `--run-dir` on a folder
//! that holds something else, records that are not what their file name says, and a disk that
//! fills up while the report is drawn. Every case runs the real `scalelab` binary.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{column, read_csv, run, scalelab, write, Output};

/// Four quick points (threads 1, 2, 4, 8 of `debug.sleep`), run with the mock executor.
const FOUR_POINTS: &str = "name = \"four\"\nrepetitions = 2\nwarmup = 0\n\n[[study]]\nworkload = \"debug.sleep\"\nthreads = [1, 2, 4, 8]\noversubscribe = true\n";

/// `scalelab run <manifest> --run-dir <run_dir> --mock 0.1,0.9 -q`.
fn mock_run(manifest: &Path, run_dir: &Path) -> Output {
    run(scalelab()
        .arg("run")
        .arg(manifest)
        .arg("--run-dir")
        .arg(run_dir)
        .args(["--mock", "0.1,0.9", "-q"]))
}

/// The point ids of a run, in plan order.
fn point_ids(run_dir: &Path) -> Vec<String> {
    let plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    plan["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect()
}

fn record_path(run_dir: &Path, id: &str) -> PathBuf {
    run_dir.join("points").join(format!("{id}.json"))
}

fn record(run_dir: &Path, id: &str) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(record_path(run_dir, id)).unwrap()).unwrap()
}

/// A `scalelab run` busy sleeping in its first point; killed (and reaped) when dropped.
struct Busy(Child);

impl Drop for Busy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Start `scalelab run` on a 60-second `debug.sleep` point (and a quick one after it) and return once it holds the lock
/// (the lock file names it) and its plan is written.
fn start_busy_run(dir: &Path, run_dir: &Path) -> Busy {
    let manifest = write(
        dir,
        "sleep.toml",
        "name = \"sleepy\"\nrepetitions = 1\nwarmup = 0\ntimeout = \"5m\"\n\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [60.0, 0.01]\n",
    );
    let child = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(run_dir)
        .arg("-q")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let busy = Busy(child);
    let lock = run_dir.join(".lock");
    // Wait (for a minute at most) until the run holds its lock and has written its plan.
    for _ in 0..600 {
        let held = fs::read_to_string(&lock).is_ok_and(|t| t.contains("\"pid\""));
        if held && run_dir.join("plan.json").exists() {
            return busy;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the first scalelab run never took its lock");
}

#[test]
fn a_second_process_on_a_locked_run_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut busy = start_busy_run(dir.path(), &run_dir);
    let pid = busy.0.id();
    let holder = format!("is in use by another scalelab process: pid {pid} on ");

    // A second sweep of the same run, a report, a collect: each refused at once, naming the
    // process, its command and what to do; nothing of the run is touched.
    for args in [
        vec!["run", "--resume"],
        vec!["report"],
        vec!["collect"],
        vec!["sbatch", "--resume"],
    ] {
        let out = run(scalelab().args(&args).arg(&run_dir));
        assert_ne!(out.code, 0, "{args:?}: {}{}", out.stdout, out.stderr);
        assert!(out.stderr.contains(&holder), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("sleep.toml") && out.stderr.contains(&format!("`kill {pid}` on")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(out.stderr.contains("wait until it ends"), "{}", out.stderr);
    }
    assert!(!run_dir.join("report.md").exists());
    assert!(!run_dir.join("summary.csv").exists());

    // Points take no lock: an array task (or any `scalelab point`) runs beside the holder.
    let plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    let quick = plan["points"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["params"]["seconds"] == 0.01)
        .expect("the quick point")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = run(scalelab().arg("point").arg(&run_dir).arg(&quick));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(record(&run_dir, &quick)["status"], "ok");

    // The kernel releases the lock with its process: after a kill -9, nothing is stale.
    busy.0.kill().unwrap();
    busy.0.wait().unwrap();
    let out = run(scalelab().arg("collect").arg(&run_dir));
    assert!(!out.stderr.contains("in use by"), "{}", out.stderr);
    assert!(run_dir.join("summary.csv").exists(), "{}", out.stderr);
}

#[test]
fn run_dir_must_be_new_empty_or_this_run() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "four.toml", FOUR_POINTS);
    let other = write(
        dir.path(),
        "other.toml",
        &FOUR_POINTS.replace("name = \"four\"", "name = \"other\""),
    );

    // A folder with a user's own file is refused, naming the file and the fix; nothing is written
    // into it (not even the lock file).
    let mine = dir.path().join("mine");
    fs::create_dir(&mine).unwrap();
    fs::write(mine.join("report.md"), "my notes").unwrap();
    let on_slurm = write(
        dir.path(),
        "four-slurm.toml",
        &format!("{FOUR_POINTS}\n[slurm]\npartition = \"debug\"\n"),
    );
    for cmd in ["run", "sbatch"] {
        let manifest = if cmd == "run" { &manifest } else { &on_slurm };
        let out = run(scalelab()
            .arg(cmd)
            .arg(manifest)
            .arg("--run-dir")
            .arg(&mine)
            .args(if cmd == "run" {
                &["--mock", "0.1,0.9"][..]
            } else {
                &["--dry-run"][..]
            }));
        assert_eq!(out.code, 2, "{cmd}: {}{}", out.stdout, out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "{} is not empty (it holds `report.md`) and holds no run of {}; give --run-dir a new or empty folder",
                mine.display(),
                manifest.display()
            )),
            "{cmd}: {}",
            out.stderr
        );
        assert_eq!(
            fs::read_to_string(mine.join("report.md")).unwrap(),
            "my notes"
        );
        assert_eq!(
            fs::read_dir(&mine).unwrap().count(),
            1,
            "{cmd} wrote into the folder"
        );
    }

    // A start of `four` killed before its plan was written (manifest.toml only): another manifest
    // may not take the folder over, the same one may.
    let started = dir.path().join("started");
    fs::create_dir(&started).unwrap();
    fs::write(started.join("manifest.toml"), FOUR_POINTS).unwrap();
    let out = mock_run(&other, &started);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("is not empty (it holds `manifest.toml`)"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fs::read_to_string(started.join("manifest.toml")).unwrap(),
        FOUR_POINTS
    );
    let out = mock_run(&manifest, &started);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(point_ids(&started).len(), 4);

    // A finished run: the other manifest is refused with what the folder holds, the same
    // manifest is told to resume.
    let out = mock_run(&other, &started);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("belongs to another manifest (experiment `four`"),
        "{}",
        out.stderr
    );
    let out = mock_run(&manifest, &started);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "already holds this run (experiment `four`); finish it with `scalelab run --resume {}`",
            started.display()
        )),
        "{}",
        out.stderr
    );
    let plan: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(started.join("plan.json")).unwrap()).unwrap();
    assert_eq!(plan["experiment"], "four");

    // An empty folder is fine.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).unwrap();
    let out = mock_run(&manifest, &empty);
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_record_under_another_points_name_is_no_result() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "four.toml", FOUR_POINTS);
    let run_dir = dir.path().join("run");
    assert_eq!(mock_run(&manifest, &run_dir).code, 0);
    let ids = point_ids(&run_dir);
    let (a, b) = (&ids[0], &ids[1]);
    // `cp points/A.json points/B.json`
    fs::copy(record_path(&run_dir, a), record_path(&run_dir, b)).unwrap();

    let out = run(scalelab().arg("report").arg(&run_dir));
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "warning: {} holds the record of point `{a}`, not of point `{b}` (was it copied or renamed?); `scalelab run --resume {}` measures that point again; the report leaves that point out",
            record_path(&run_dir, b).display(),
            run_dir.display()
        )),
        "{}",
        out.stderr
    );
    let (header, rows) = read_csv(&run_dir.join("summary.csv"));
    let listed: Vec<&str> = rows
        .iter()
        .map(|r| column(&header, r, "point_id"))
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert_eq!(listed.iter().filter(|id| **id == a.as_str()).count(), 1);
    assert!(!listed.contains(&b.as_str()));
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("4 planned point(s), 3 recorded (3 ok, 0 failed)"),
        "{report}"
    );

    // Resume counts B as to measure, says why, and measures it.
    let out = run(scalelab()
        .args(["run", "--mock", "0.1,0.9", "--resume"])
        .arg(&run_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "run {}: 4 points, 1 to measure",
            run_dir.display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: 1 record is unusable and will be measured again: points/{b}.json\n"
        )),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("recorded already"), "{}", out.stderr);
    assert_eq!(record(&run_dir, b)["point"]["id"], b.as_str());
    let (_, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 4);
}

#[test]
fn impossible_times_and_foreign_points_are_refused_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "four.toml", FOUR_POINTS);
    let run_dir = dir.path().join("run");
    assert_eq!(mock_run(&manifest, &run_dir).code, 0);
    let ids = point_ids(&run_dir);

    // Negative seconds.
    let mut rec = record(&run_dir, &ids[0]);
    rec["repetitions"][1]["seconds"] = serde_json::json!(-1.5);
    fs::write(record_path(&run_dir, &ids[0]), rec.to_string()).unwrap();
    // The right id, but a point another plan made (other repetitions).
    let mut rec = record(&run_dir, &ids[1]);
    rec["point"]["repetitions"] = serde_json::json!(7);
    fs::write(record_path(&run_dir, &ids[1]), rec.to_string()).unwrap();

    let out = run(scalelab().arg("report").arg(&run_dir));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{} is corrupt (repetition 2 lasted -1.5 s, which is no duration)",
            record_path(&run_dir, &ids[0]).display()
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "{} holds point `{}` with other settings than plan.json (`repetitions` differ)",
            record_path(&run_dir, &ids[1]).display(),
            ids[1]
        )),
        "{}",
        out.stderr
    );
    let (_, rows) = read_csv(&run_dir.join("measurements.csv"));
    assert_eq!(rows.len(), 2 * 2, "only the two valid points' repetitions");
}

#[test]
fn resume_counts_unreadable_records_as_to_measure() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "four.toml", FOUR_POINTS);
    let run_dir = dir.path().join("run");
    assert_eq!(mock_run(&manifest, &run_dir).code, 0);
    let ids = point_ids(&run_dir);
    // One truncated record, one that is not UTF-8.
    let text = fs::read_to_string(record_path(&run_dir, &ids[0])).unwrap();
    fs::write(record_path(&run_dir, &ids[0]), &text[..text.len() / 2]).unwrap();
    fs::write(record_path(&run_dir, &ids[3]), b"{\"point\": \"\xff\xfe\"}").unwrap();

    // Both warnings carry the same fix.
    let out = run(scalelab().arg("report").arg(&run_dir));
    assert_eq!(out.code, 1, "{}", out.stderr);
    for id in [&ids[0], &ids[3]] {
        assert!(
            out.stderr.contains(&format!(
                "warning: {} is corrupt (not a point record: ",
                record_path(&run_dir, id).display()
            )),
            "{}",
            out.stderr
        );
    }
    let fix = format!(
        "; `scalelab run --resume {}` measures that point again; the report leaves that point out",
        run_dir.display()
    );
    assert_eq!(out.stderr.matches(&fix).count(), 2, "{}", out.stderr);

    let out = run(scalelab()
        .args(["run", "--mock", "0.1,0.9", "--resume"])
        .arg(&run_dir));
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let opening = out.stderr.lines().next().unwrap();
    assert_eq!(
        opening,
        format!(
            "run {}: 4 points, 2 to measure (if interrupted, resume with `scalelab run --resume {}`)",
            run_dir.display(),
            run_dir.display()
        )
    );
    assert!(
        out.stderr.contains(&format!(
            "warning: 2 records are unusable and will be measured again: points/{}.json, points/{}.json\n",
            ids[0], ids[3]
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.contains("(2 recorded before this run)"),
        "{}",
        out.stdout
    );
    for id in &ids {
        assert_eq!(record(&run_dir, id)["status"], "ok");
    }
}

/// A tmpfs of `kib` KiB mounted on `at` (unmounted when dropped), or `None` with the reason when
/// this machine cannot mount one (not root, no mount permission in a container).
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: u64) -> Result<Tmpfs, String> {
        fs::create_dir_all(at).unwrap();
        match Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(at)
            .output()
        {
            Ok(out) if out.status.success() => Ok(Tmpfs(at.to_path_buf())),
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            Err(e) => Err(format!("mount: {e}")),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Bytes a file takes on a tmpfs: whole 4 KiB pages.
fn pages(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len().div_ceil(4096) * 4096)
}

/// Fill the file system holding `dir` with one file until it is full; returns its path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    path
}

#[test]
fn a_full_disk_while_writing_the_report_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "four.toml", FOUR_POINTS);
    // The same run on an ordinary disk first, to size the tmpfs: room for the run's records, the
    // tables and report.md, not for the plots.
    let reference = dir.path().join("reference");
    assert_eq!(mock_run(&manifest, &reference).code, 0);
    let ids = point_ids(&reference);
    let mut need = 0;
    for name in [
        "manifest.toml",
        "plan.json",
        "provenance.json",
        ".lock",
        "measurements.csv",
        "summary.csv",
        "report.md",
    ] {
        need += pages(&reference.join(name));
    }
    for id in &ids {
        need += pages(&record_path(&reference, id));
    }
    let plots: u64 = fs::read_dir(reference.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap();
    // Slack for a file being replaced (old and new side by side) and the folders; much less than
    // the largest plot (a PNG).
    let slack = 16 * 1024;
    assert!(
        plots > 4 * slack,
        "the largest plot ({plots} B) must not fit"
    );
    let mount = dir.path().join("tmpfs");
    let _tmpfs = match Tmpfs::mount(&mount, (need + slack) / 1024) {
        Ok(t) => t,
        Err(why) => {
            eprintln!(
                "SKIPPED a_full_disk_while_writing_the_report_is_an_error_naming_the_file: cannot mount a tmpfs here ({why}); run the tests as root on Linux to check a full disk"
            );
            return;
        }
    };
    let run_dir = mount.join("run");
    let out = mock_run(&manifest, &run_dir);
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_ne!(out.code, 1, "not a failed point: {}", out.stderr);
    assert!(
        out.stderr.contains("No space left on device"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "drawing the plots of study 1 (debug.sleep): drawing {}",
            run_dir.join("plots").display()
        )),
        "names the plot file: {}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "the report of {} is incomplete; the 4 point records in {} are kept: free some space or fix the folder's permissions, then write the report again with `scalelab report {}`",
            run_dir.display(),
            run_dir.join("points").display(),
            run_dir.display()
        )),
        "{}",
        out.stderr
    );
    let shown = out.stderr.replace(&dir.path().display().to_string(), "DIR");
    assert!(
        !shown.contains("/.tmp") && !shown.contains("/.plot"),
        "{shown}"
    );
    // The records are intact, the summary line was printed.
    for id in &ids {
        assert_eq!(record(&run_dir, id)["status"], "ok");
    }
    assert!(
        out.stdout.contains("4 points: 4 ok, 0 failed"),
        "{}",
        out.stdout
    );
    // `scalelab report` on the same full disk fails the same way.
    let out = run(scalelab().arg("report").arg(&run_dir));
    assert_eq!(out.code, 3, "an I/O failure: {}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("No space left on device")
            && out.stderr.contains(&format!(
                "the report of {} is incomplete",
                run_dir.display()
            )),
        "{}",
        out.stderr
    );

    // A record that cannot be written names the record, not the temporary file beside it.
    fs::remove_file(record_path(&run_dir, &ids[2])).unwrap();
    let _filler = fill(&mount);
    let out = run(scalelab()
        .args(["run", "--mock", "0.1,0.9", "-q", "--resume"])
        .arg(&run_dir));
    assert_ne!(out.code, 0, "{}{}", out.stdout, out.stderr);
    // A resume first adds its entry to provenance.json, so that may be the file that does not fit;
    // either way the error names the file being written.
    assert!(
        out.stderr.contains(&format!(
            "writing {}: No space left on device",
            record_path(&run_dir, &ids[2]).display()
        )) || out.stderr.contains(&format!(
            "writing {}: No space left on device",
            run_dir.join("provenance.json").display()
        )),
        "{}",
        out.stderr
    );
    let shown = out.stderr.replace(&dir.path().display().to_string(), "DIR");
    assert!(!shown.contains("/.tmp"), "{shown}");
}

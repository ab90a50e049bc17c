//! Output, signals, exit codes and provenance of the real `scalelab` binary: a closed or full
//! terminal never stops a sweep, a signal stops a run cleanly and resumably, exit codes separate
//! bad input (2) from I/O failures (3), and provenance.json tells which build measured what.

#![cfg(target_os = "linux")]

mod common;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{records, scalelab, write};
use serde_json::Value;

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

const QUICK: &str = r#"
name = "quick"
repetitions = 1
warmup = 0

[[study]]
workload = "debug.sleep"
seconds = [0.01, 0.02, 0.03]
"#;

/// A pipe whose reading end is already closed: every write to it fails with EPIPE.
fn closed_pipe() -> std::io::PipeWriter {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    writer
}

#[test]
fn a_run_into_closed_pipes_finishes_every_point_and_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "m.toml", QUICK);
    let run_dir = dir.path().join("run");
    // Live lines and the summary go to a stdout nobody reads (`… | head -1` after its line), and
    // warnings to a stderr nobody reads either.
    let status = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .stdout(closed_pipe())
        .stderr(closed_pipe())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 3);
    assert!(recs.iter().all(|r| r["status"] == "ok"), "{recs:?}");
    assert!(run_dir.join("report.md").is_file());
    assert!(run_dir.join("summary.csv").is_file());
    let prov = json(&run_dir.join("provenance.json"));
    assert_eq!(prov["points_ok"], 3);
    assert_ne!(prov["finished"], "");
}

#[test]
fn a_run_piped_into_head_gives_its_first_line_and_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "m.toml", QUICK);
    let run_dir = dir.path().join("run");
    let script = format!(
        "{} run {} --run-dir {} | head -1; echo \"status ${{PIPESTATUS[0]}}\"",
        env!("CARGO_BIN_EXE_scalelab"),
        manifest.display(),
        run_dir.display()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[1], "status 0", "{stdout}{stderr}");
    assert_eq!(records(&run_dir).len(), 3);
    assert!(run_dir.join("report.md").is_file());
}

#[test]
fn a_full_stdout_ends_plan_and_list_with_one_line_and_code_3() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "m.toml", QUICK);
    for args in [vec!["plan", manifest.to_str().unwrap()], vec!["list"]] {
        let full = File::options().write(true).open("/dev/full").unwrap();
        let out = scalelab().args(&args).stdout(full).output().unwrap();
        let (_, stderr) = text(&out);
        assert_eq!(
            stderr, "error: writing to standard output: No space left on device (os error 28)\n",
            "{args:?}"
        );
        assert_eq!(out.status.code(), Some(3), "{args:?}");
    }
}

#[test]
fn bad_input_exits_2_and_io_failures_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(dir.path(), "m.toml", QUICK);

    // A run directory that does not exist: the user's path is wrong.
    let missing = dir.path().join("no-such-run");
    let out = scalelab()
        .args(["run", "--resume"])
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    assert!(text(&out)
        .1
        .contains("is not a run directory (no plan.json)"));
    let out = scalelab().arg("report").arg(&missing).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));

    // A bad argument, and a manifest error.
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .args(["--mock", "fast"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));
    let bad = write(
        dir.path(),
        "bad.toml",
        "name = \"x\"\n[[study]]\nworkload = \"nope\"\n",
    );
    let out = scalelab().arg("plan").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{:?}", text(&out));

    // A run directory that cannot be made (a file stands where its parent folder should be): the
    // machine's problem, not the manifest's.
    let file = write(dir.path(), "a-file", "");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(file.join("run"))
        .args(["--mock", "0.1,0.9"])
        .output()
        .unwrap();
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("Not a directory"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

/// Two quick points, one that sleeps a minute (the one in flight when the signal comes), and one
/// after it.
const INTERRUPTIBLE: &str = r#"
name = "interruptible"
repetitions = 1
warmup = 0

[[study]]
name = "quick"
workload = "debug.sleep"
seconds = [0.01, 0.02]

[[study]]
name = "long"
workload = "debug.sleep"
seconds = [60.0]
timeout = "5m"

[[study]]
name = "after"
workload = "debug.sleep"
seconds = [0.01]
"#;

/// Start a run of [`INTERRUPTIBLE`] in its own process group (as a shell starts a job), wait until
/// its long point is running, send `signal` (to the whole group when `group`, as Ctrl-C does), and
/// return the run folder, the long point's id and the output.
fn interrupt_run(dir: &Path, signal: i32, group: bool) -> (PathBuf, String, Output) {
    use std::os::unix::process::CommandExt;
    let manifest = write(dir, "m.toml", INTERRUPTIBLE);
    let run_dir = dir.join("run");
    let child = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("-q")
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let t = Instant::now();
    let long = loop {
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the long point never started"
        );
        std::thread::sleep(Duration::from_millis(20));
        let Ok(text) = fs::read_to_string(run_dir.join("plan.json")) else {
            continue;
        };
        let plan: Value = serde_json::from_str(&text).unwrap();
        let points = plan["points"].as_array().unwrap();
        let long = points.iter().find(|p| p["study_name"] == "long").unwrap();
        let id = long["id"].as_str().unwrap().to_string();
        // The log is created when the point is launched, after the quick points' records.
        if run_dir.join("logs").join(format!("{id}.txt")).exists() {
            break id;
        }
    };
    // SAFETY: kill has no memory preconditions; the pid (or group) is our child's.
    let rc = unsafe { libc::kill(if group { -pid } else { pid }, signal) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    (run_dir, long, out)
}

fn check_interrupted(signal: i32, name: &str, group: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, long, out) = interrupt_run(dir.path(), signal, group);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(128 + signal), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        format!(
            "interrupted by {name}: 2 of 4 points recorded (2 ok, 0 failed); the point in flight ({long}) was not recorded; resume with `scalelab run --resume {0}` (the report is written when the run finishes, or now with `scalelab report {0}`)",
            run_dir.display()
        )
    );
    // The point in flight died of the signal too, but it did not crash: no record, so a resume
    // measures it again.
    assert!(!run_dir.join("points").join(format!("{long}.json")).exists());
    let prov = json(&run_dir.join("provenance.json"));
    assert_eq!(prov["invocations"][0]["interrupted"], name);
    assert_eq!(prov["finished"], "");
    assert_eq!(prov["points_ok"], 2);

    // The resume measures the two points left (the model executor keeps it quick).
    let out = scalelab()
        .args(["run", "--resume"])
        .arg(&run_dir)
        .args(["--mock", "0.1,0.9", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 4);
    assert!(recs.iter().all(|r| r["status"] == "ok"), "{recs:?}");
    let prov = json(&run_dir.join("provenance.json"));
    assert_eq!(prov["invocations"].as_array().unwrap().len(), 2);
    assert!(prov["invocations"][1]["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--resume"));
    assert_ne!(prov["finished"], "");
}

#[test]
fn ctrl_c_on_the_process_group_stops_the_run_without_recording_the_point_in_flight() {
    check_interrupted(libc::SIGINT, "SIGINT", true);
}

#[test]
fn sigterm_to_the_run_alone_stops_its_point_and_exits_143() {
    check_interrupted(libc::SIGTERM, "SIGTERM", false);
}

#[test]
fn sighup_stops_the_run_cleanly() {
    check_interrupted(libc::SIGHUP, "SIGHUP", true);
}

fn git_head() -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn mock_run(dir: &Path) -> PathBuf {
    let manifest = write(dir, "m.toml", QUICK);
    let run_dir = dir.join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .args(["--mock", "0.1,0.9", "-q"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    run_dir
}

fn resume(run_dir: &Path) -> Output {
    scalelab()
        .args(["run", "--resume"])
        .arg(run_dir)
        .args(["--mock", "0.1,0.9", "-q"])
        .output()
        .unwrap()
}

#[test]
fn provenance_records_the_build_and_the_checkout_and_each_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = mock_run(dir.path());
    let prov = json(&run_dir.join("provenance.json"));
    // The build's revision is embedded (build.rs reruns on a commit), and the checkout's state is
    // recorded beside it.
    let head = git_head();
    assert_eq!(prov["git_revision"], head.as_str());
    assert!(prov["git_dirty"].is_boolean(), "{}", prov["git_dirty"]);
    assert_eq!(prov["checkout"]["revision"], head.as_str());
    assert_eq!(prov["checkout"]["path"], env!("CARGO_MANIFEST_DIR"));
    assert_eq!(prov["invocations"].as_array().unwrap().len(), 1);

    fs::remove_file(
        run_dir
            .join("points")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    let out = resume(&run_dir);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let again = json(&run_dir.join("provenance.json"));
    let inv = again["invocations"].as_array().unwrap();
    assert_eq!(inv.len(), 2);
    // The first invocation is kept as it was written when that run ended.
    assert_eq!(inv[0], prov["invocations"][0]);
    assert_eq!(inv[1]["git_revision"], head.as_str());
    assert_ne!(inv[1]["started"], "");
    assert_ne!(inv[1]["finished"], "");
    assert!(inv[1]["host"].is_string());
    // The first run's top-level fields stay.
    assert_eq!(again["started"], prov["started"]);
}

#[test]
fn an_old_provenance_without_the_new_fields_is_read_and_extended() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = mock_run(dir.path());
    let path = run_dir.join("provenance.json");
    let mut old = json(&path);
    let obj = old.as_object_mut().unwrap();
    for key in ["checkout", "source_mismatch", "invocations"] {
        obj.remove(key);
    }
    fs::write(&path, serde_json::to_vec_pretty(&old).unwrap()).unwrap();
    let out = resume(&run_dir);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let new = json(&path);
    let inv = new["invocations"].as_array().unwrap();
    assert_eq!(inv.len(), 2, "{new:#}");
    assert_eq!(inv[0]["started"], old["started"]);
    assert_eq!(inv[0]["command_line"], old["command_line"]);
}

#[test]
fn a_damaged_provenance_is_moved_aside_and_the_resume_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = mock_run(dir.path());
    let path = run_dir.join("provenance.json");
    fs::write(&path, "{\"scalelab_version\": \"0.1.0\", trunc").unwrap();
    let first = run_dir
        .join("points")
        .read_dir()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    fs::remove_file(&first).unwrap();

    let out = resume(&run_dir);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let aside = run_dir.join("provenance.json.damaged");
    assert_eq!(
        fs::read_to_string(&aside).unwrap(),
        "{\"scalelab_version\": \"0.1.0\", trunc"
    );
    assert!(
        stderr.contains(&format!(
            "warning: the earlier provenance.json could not be read ({} is corrupt: ",
            path.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "it was moved to {} and this one started afresh",
            aside.display()
        )),
        "{stderr}"
    );
    assert!(first.is_file(), "the missing point was measured");
    assert_eq!(records(&run_dir).len(), 3);
    let prov = json(&path);
    assert!(
        prov["recovered"]
            .as_str()
            .unwrap()
            .contains("provenance.json.damaged"),
        "{prov:#}"
    );
    assert_eq!(prov["points_ok"], 3);
}

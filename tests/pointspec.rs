//! Integration tests of how a point gets its point: the local executor writes a one-point spec
//! (`<run-dir>/specs/<id>.json`) and launches `scalelab point <run-dir> --spec <spec>`, which never
//! reads `plan.json`; `scalelab point <run-dir> <id>` by hand still reads the plan. The points are
//! `debug.sleep` and `debug.fail` (and `mpi.debug` in a build with MPI), whose outcomes are known.

use std::fs;
use std::path::{Path, PathBuf};

use scalelab::executor::{Executor, Interrupt, LocalExecutor};
use scalelab::plan::{Plan, Point};
use scalelab::results::{RunDir, Status};

mod common;
use common::scalelab;

/// The plan of `text`, a manifest, made in memory: no `plan.json` is written anywhere.
fn plan_of(text: &str) -> Plan {
    let m = scalelab::manifest::parse(Path::new("m.toml"), text).unwrap_or_else(|e| panic!("{e}"));
    scalelab::plan::expand(&m).unwrap_or_else(|e| panic!("{e}"))
}

fn sleep_plan() -> Plan {
    plan_of(
        r#"
name = "spec"
repetitions = 2

[[study]]
workload = "debug.sleep"
seconds = [0.001, 0.002]
"#,
    )
}

/// The executor that launches this build's `scalelab`.
fn local() -> LocalExecutor {
    LocalExecutor {
        program: PathBuf::from(env!("CARGO_BIN_EXE_scalelab")),
        interrupt: Interrupt::never(),
        wait_idle: None,
    }
}

/// A run folder with no `plan.json` at all (as if it were removed or unreadable after the run
/// started): the executor's points still run, because each reads its own spec. On a runner that
/// parses `plan.json` for every point, each point crashed with "not a run directory".
#[test]
fn a_local_point_runs_from_its_spec_without_plan_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let plan = sleep_plan();
    let mut exec = local();
    for point in &plan.points {
        let rec = exec.execute(&run, point).unwrap();
        assert_eq!(rec.status, Status::Ok, "{}", rec.reason);
        assert_eq!(rec.point, *point);
        assert_eq!(rec.repetitions.len(), 2);
        // The record on disk is the one returned.
        assert_eq!(run.load_record(point).unwrap().unwrap().point, *point);
    }
    assert!(!run.plan().exists());
    // Each spec is removed once its point has ended, and the emptied folder with it.
    assert!(!run.root.join("specs").exists());
}

/// Write an executable shell script `name` in `dir` and return its path.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
    path
}

/// The launched command line is `point <run-dir> --spec <run-dir>/specs/<id>.json`, and the spec
/// holds exactly the point, as one line of JSON. A stand-in program prints its arguments and the
/// spec and writes no record, so the executor records a crash with that output.
#[test]
fn the_launched_command_names_the_spec_which_holds_the_point() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let program = script(
        dir.path(),
        "fake-scalelab",
        "echo \"args: $*\"\ncat \"$4\"\necho\n",
    );
    let point = &sleep_plan().points[0];
    let rec = LocalExecutor {
        program,
        interrupt: Interrupt::never(),
        wait_idle: None,
    }
    .execute(&run, point)
    .unwrap();
    assert_eq!(rec.status, Status::Crashed);
    let log = fs::read_to_string(run.log(&point.id)).unwrap();
    let spec = run.root.join("specs").join(format!("{}.json", point.id));
    let mut lines = log.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "args: point {} --spec {}",
            run.root.display(),
            spec.display()
        )
    );
    let from_spec: Point = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(from_spec, *point);
    assert!(!spec.exists(), "the spec is removed after the point ended");
}

/// A run folder with one point's spec written as the executor writes it.
fn run_with_spec(dir: &Path) -> (RunDir, Point, PathBuf) {
    let run = RunDir::new(dir.join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let point = sleep_plan().points[0].clone();
    let spec = scalelab::executor::write_spec(&run, &point).unwrap();
    assert_eq!(spec, scalelab::point_runner::spec_path(&run, &point.id));
    (run, point, spec)
}

fn point_cmd(run: &RunDir, args: &[&str]) -> (bool, String) {
    let out = scalelab()
        .arg("point")
        .arg(&run.root)
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn scalelab_point_with_a_spec_records_that_point() {
    let dir = tempfile::tempdir().unwrap();
    let (run, point, spec) = run_with_spec(dir.path());
    let (ok, out) = point_cmd(&run, &["--spec", spec.to_str().unwrap()]);
    assert!(ok, "{out}");
    let rec = run.load_record(&point).unwrap().expect("a record");
    assert_eq!(rec.status, Status::Ok, "{}", rec.reason);
    assert_eq!(rec.point, point);
}

/// An edited spec is refused like an edited plan: its values were never checked.
#[test]
fn an_edited_spec_is_refused_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (run, point, spec) = run_with_spec(dir.path());
    let text = fs::read_to_string(&spec).unwrap();
    fs::write(&spec, text.replace("\"threads\":1", "\"threads\":64")).unwrap();
    assert_ne!(fs::read_to_string(&spec).unwrap(), text, "the edit took");
    let (ok, out) = point_cmd(&run, &["--spec", spec.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "point `{}` in {} does not match its id (the file was edited)",
            point.id,
            spec.display()
        )),
        "{out}"
    );
    assert!(run.load_record(&point).unwrap().is_none());
}

/// A missing or damaged spec says how to go on: resume (which writes it anew) or run by hand.
#[test]
fn a_missing_or_damaged_spec_says_how_to_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let (run, _, spec) = run_with_spec(dir.path());
    let root = run.root.display().to_string();

    let gone = run.root.join("specs").join("nope.json");
    let (ok, out) = point_cmd(&run, &["--spec", gone.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "reading the point spec {}; `scalelab run` writes it just before it launches the \
             point: resume with `scalelab run --resume {root}`, or run one point of the plan by \
             hand with `scalelab point {root} <point-id>`",
            gone.display()
        )),
        "{out}"
    );

    fs::write(&spec, "{\"id\": ").unwrap();
    let (ok, out) = point_cmd(&run, &["--spec", spec.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "{} is not a point spec; resume with `scalelab run --resume {root}`, which writes it anew",
            spec.display()
        )),
        "{out}"
    );

    // A file of more than 4 MiB is no spec, and is not read whole.
    let big = dir.path().join("big.json");
    fs::write(&big, vec![b' '; (4 << 20) + 1]).unwrap();
    let (ok, out) = point_cmd(&run, &["--spec", big.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("larger than 4 MiB, which no point is"),
        "{out}"
    );
}

/// `--spec` names the point alone: with an id as well, clap refuses the command line.
#[test]
fn a_spec_and_a_point_id_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (run, point, spec) = run_with_spec(dir.path());
    let (ok, out) = point_cmd(&run, &[&point.id, "--spec", spec.to_str().unwrap()]);
    assert!(!ok, "{out}");
    assert!(out.contains("cannot be used with"), "{out}");
}

/// By hand, `scalelab point <run-dir> <id>` still reads the point from `plan.json`.
#[test]
fn a_point_by_hand_still_reads_plan_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let plan = sleep_plan();
    fs::write(run.plan(), serde_json::to_vec(&plan).unwrap()).unwrap();
    let point = &plan.points[1];
    let (ok, out) = point_cmd(&run, &[&point.id]);
    assert!(ok, "{out}");
    assert_eq!(run.load_record(point).unwrap().unwrap().point, *point);
    let (ok, out) = point_cmd(&run, &["0123456789abcdef"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "no point `0123456789abcdef` in {}",
            run.plan().display()
        )),
        "{out}"
    );
}

/// A panic in a point launched from a spec is recorded by the point itself, with its message.
#[test]
fn a_panicking_point_from_a_spec_records_its_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let plan = plan_of(
        r#"
name = "spec"
repetitions = 1

[[study]]
workload = "debug.fail"
mode = "panic"
"#,
    );
    let rec = local().execute(&run, &plan.points[0]).unwrap();
    assert_eq!(rec.status, Status::Crashed);
    assert!(
        rec.reason
            .starts_with("panicked: debug.fail: panicked on purpose (mode = \"panic\") at src/"),
        "{}",
        rec.reason
    );
}

/// Under mpirun every rank reads the same spec: a 2-rank point runs with no `plan.json`.
#[cfg(feature = "mpi")]
#[test]
fn every_rank_of_an_mpi_point_reads_the_same_spec() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let plan = plan_of(
        r#"
name = "spec-mpi"
repetitions = 2

[[study]]
workload = "mpi.debug"
ranks = 2
seconds = 0.01
oversubscribe = true
"#,
    );
    let point = &plan.points[0];
    let rec = local().execute(&run, point).unwrap();
    assert_eq!(rec.status, Status::Ok, "{}", rec.reason);
    assert_eq!(rec.point, *point);
    assert_eq!(rec.backend_name(), "mpi");
    assert!(!run.plan().exists());
    assert!(!run.root.join("specs").exists());
}

/// A SLURM array task reads its own line of the task file, and a task past the end, or a line that
/// is no point, says to resubmit.
#[test]
fn a_task_reads_its_own_line_of_the_task_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let plan = sleep_plan();
    let tasks = dir.path().join("array-1.tasks");
    let mut text = String::new();
    for p in &plan.points {
        text.push_str(&serde_json::to_string(p).unwrap());
        text.push('\n');
    }
    text.push_str("not json\n");
    fs::write(&tasks, text).unwrap();
    let task = |i: &str| {
        point_cmd(
            &run,
            &["--task-file", tasks.to_str().unwrap(), "--task-index", i],
        )
    };

    let (ok, out) = task("1");
    assert!(ok, "{out}");
    let rec = run.load_record(&plan.points[1]).unwrap().unwrap();
    assert_eq!(rec.point, plan.points[1]);
    assert!(run.load_record(&plan.points[0]).unwrap().is_none());

    let resubmit = format!(
        "resubmit with `scalelab sbatch --resume {}`",
        run.root.display()
    );
    let (ok, out) = task("2");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "{}: task 2 is not a point; {resubmit}",
            tasks.display()
        )),
        "{out}"
    );
    let (ok, out) = task("3");
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "{} has no task 3: the array is larger than its task file; {resubmit}",
            tasks.display()
        )),
        "{out}"
    );
}

/// A SLURM task records its compute node's measured peak in the run (for the report), measuring
/// it when the node's key is not cached and quoting the cache after that; the report reads it in
/// place of the login node's nominal figure.
#[test]
fn a_task_records_its_nodes_measured_peak_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = RunDir::new(dir.path().join("run"));
    fs::create_dir_all(&run.root).unwrap();
    let plan = sleep_plan();
    let tasks = dir.path().join("array-1.tasks");
    let text: String = plan
        .points
        .iter()
        .map(|p| serde_json::to_string(p).unwrap() + "\n")
        .collect();
    fs::write(&tasks, text).unwrap();
    let task = |i: &str| {
        let out = scalelab()
            .env("SCALELAB_MACHINE_CACHE", &cache)
            .env_remove("SLURM_LOCALID")
            .arg("point")
            .arg(&run.root)
            .args(["--task-file", tasks.to_str().unwrap(), "--task-index", i])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(
            out.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let recorded: Vec<PathBuf> = fs::read_dir(run.root.join("machines"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        serde_json::from_slice::<scalelab::machine::Machine>(&fs::read(&recorded[0]).unwrap())
            .unwrap()
    };
    let first = task("0");
    let second = task("1");
    if !first.fma_measured {
        // No FMA probe on this CPU: the nominal figure, said so.
        assert_eq!(first.peak_source, "nominal");
        return;
    }
    let cached: Vec<PathBuf> = fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(cached.len(), 1, "one cache file for this node");
    assert_eq!(first.peak_source, "measured");
    assert_eq!(second.peak_source, "cached");
    assert_eq!(second.peak_measured_at, first.peak_measured_at);
    assert_eq!(second.peak_gflops_per_core, first.peak_gflops_per_core);
    let login = scalelab::machine::Machine {
        host: "login".into(),
        ..Default::default()
    };
    let (m, warning) = scalelab::machine::for_report(&run.root, Some(login));
    assert_eq!(warning, None);
    assert_eq!(m.peak_gflops_per_core, first.peak_gflops_per_core);
    assert_eq!(m.host, first.host);
}

//! Integration tests of the machine's state beside each point: a point run beside a deliberate CPU
//! hog is recorded, judged disturbed, left out of the fit and named in the report; `--wait-idle`
//! gives up at its bound with its message; a point with no parent sampler samples itself.
//!
//! Only the hog case is asserted here: whether a point on a shared machine is quiet depends on
//! what else runs, so the quiet case is judged on synthetic samples in `src/load.rs`.
#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use common::{column, read_csv, records, scalelab, write};

/// Busy threads in this process, `per_core` per core, spinning until dropped: other work, as the
/// points of the run see it.
struct Hog {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Hog {
    fn start(per_core: usize) -> Hog {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..per_core * cores())
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                    }
                })
            })
            .collect();
        Hog { stop, threads }
    }
}

impl Drop for Hog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[test]
fn a_point_beside_a_cpu_hog_is_flagged_left_out_of_the_fit_and_named_in_the_report() {
    let c = cores();
    // Half the cores and all of them: with three busy threads per core beside it, other work
    // takes far more than the cores either point leaves free. Points of a second or so, so that
    // the rule's allowance for the counters' 10 ms ticks is small beside the hog (a point of a
    // few milliseconds is allowed most of a core more, and went unflagged now and then).
    let threads = if c >= 2 {
        format!("[{}, {c}]", c.div_ceil(2))
    } else {
        "[1]".to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "m.toml",
        &format!(
            "name = \"busy\"\nrepetitions = 2\nwarmup = 0\n[[study]]\nworkload = \"pi.montecarlo\"\nthreads = {threads}\nsize = [\"100M\"]\n"
        ),
    );
    let run_dir = dir.path().join("run");
    let out = {
        let _hog = Hog::start(3);
        scalelab()
            .arg("run")
            .arg(&manifest)
            .arg("--run-dir")
            .arg(&run_dir)
            .output()
            .unwrap()
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The records hold the sampled state.
    let recs = records(&run_dir);
    for rec in &recs {
        let load = &rec["load"];
        assert_eq!(load["sampled_by"], "parent", "{rec}");
        assert_eq!(load["cores"], c, "{rec}");
        let other = load["other_cores"].as_f64().unwrap();
        let needed = load["cores_needed"].as_f64().unwrap();
        assert!(
            other > c as f64 - needed,
            "other work {other} cores beside a hog on {c} cores: {load}"
        );
        assert!(load["loadavg_1m"].as_f64().is_some());
        assert!(load["runnable_max"].as_u64().unwrap() >= 1);
    }
    // The live lines and the closing line say so.
    assert!(stdout.contains("[disturbed: other work kept "), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "; {} ok point(s) disturbed by other work on the machine (see the report's first warning)\n",
            recs.len()
        )),
        "{stdout}"
    );

    // Both CSVs carry the judgement and the figures.
    for file in ["summary.csv", "measurements.csv"] {
        let (header, rows) = read_csv(&run_dir.join(file));
        assert!(!rows.is_empty());
        for row in &rows {
            assert_eq!(column(&header, row, "status"), "ok");
            assert_eq!(column(&header, row, "disturbed"), "true", "{file}: {row:?}");
            assert!(
                column(&header, row, "disturbed_why").starts_with("other work kept "),
                "{file}: {row:?}"
            );
            assert_eq!(column(&header, row, "cores"), c.to_string());
            let other: f64 = column(&header, row, "other_cores").parse().unwrap();
            assert!(other > 0.0);
        }
    }

    // The report: the warning at the top names every point and says what to do; the table marks
    // them; the fit leaves them out.
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    let warnings = report.split("## Study").next().unwrap();
    assert!(
        warnings.contains(&format!(
            "**Busy machine: {} point(s) were disturbed.**",
            recs.len()
        )),
        "{report}"
    );
    for rec in &recs {
        let id = rec["point"]["id"].as_str().unwrap();
        assert!(
            warnings.contains(&format!("`{id}` (other work kept ")),
            "{report}"
        );
        assert!(warnings.contains(&format!("points/{id}.json")), "{report}");
    }
    assert!(
        warnings.contains(&format!(
            "then `scalelab run --resume {} --wait-idle`",
            run_dir.display()
        )),
        "{report}"
    );
    assert!(report.contains("| ⚠ disturbed |"), "{report}");
    assert!(!report.contains("**Amdahl fit**"), "{report}");
    if c >= 2 {
        assert!(
            report.contains("too few of its points were measured on a quiet machine"),
            "{report}"
        );
    }
}

#[test]
fn wait_idle_gives_up_at_its_bound_and_says_so() {
    let c = cores();
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "m.toml",
        &format!(
            "name = \"wait\"\nrepetitions = 1\nwarmup = 0\n[[study]]\nworkload = \"debug.sleep\"\nthreads = [{c}]\nseconds = [0.01]\n"
        ),
    );
    let run_dir = dir.path().join("run");
    let out = {
        let _hog = Hog::start(2);
        scalelab()
            .arg("run")
            .arg(&manifest)
            .arg("--run-dir")
            .arg(&run_dir)
            .arg("--wait-idle=1")
            .arg("-q")
            .output()
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let id = records(&run_dir)[0]["point"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        stderr.contains(&format!(
            "point {id}: waiting for the machine to quiet down: other work keeps "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "(waiting up to 1 s)\npoint {id}: the machine is still busy after 1 s (other work keeps "
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("running the point anyway: the report marks it if it was disturbed"),
        "{stderr}"
    );
    // It ran all the same.
    assert_eq!(records(&run_dir)[0]["status"], "ok");
}

#[test]
fn a_point_with_no_parent_sampler_samples_itself() {
    // `scalelab point` by hand, as under srun: the point's own thread samples the machine.
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "m.toml",
        "name = \"task\"\nrepetitions = 1\nwarmup = 0\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.3]\n",
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("-q")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let id = records(&run_dir)[0]["point"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(records(&run_dir)[0]["load"]["sampled_by"], "parent");
    fs::remove_file(run_dir.join("points").join(format!("{id}.json"))).unwrap();
    let out = scalelab()
        .arg("point")
        .arg(&run_dir)
        .arg(&id)
        .env_remove("SCALELAB_LOAD_SAMPLED_BY_PARENT")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let load = &records(&run_dir)[0]["load"];
    assert_eq!(load["sampled_by"], "task", "{load}");
    assert!(load["seconds"].as_f64().unwrap() >= 0.3, "{load}");
    // A sleeping point uses almost no CPU: its own time is not counted as other work's.
    assert!(load["point_cores"].as_f64().unwrap() < 0.5, "{load}");
}

//! Bounded inputs through the real binary: manifests that ask for more memory, threads or bytes
//! than any node could give are refused by `scalelab plan` with the fix, before anything runs, and
//! a CSV dataset is pinned by the plan (absolute path and sha256) so that a resume from another
//! folder measures the same file, or fails saying the file changed.

mod common;

use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{records, scalelab, write};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `scalelab plan <manifest>`: exit code and stdout + stderr.
fn plan(manifest: &Path) -> (i32, String) {
    output(scalelab().arg("plan").arg(manifest))
}

fn output(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("scalelab runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn plan_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    plan(&write(dir.path(), "m.toml", text))
}

#[test]
fn synthetic_datasets_are_judged_by_their_memory_at_plan_time() {
    // A million features: the generator alone would allocate 2 TB (it used to abort `plan`).
    let (code, text) =
        plan_text("name = \"x\"\n\n[[study]]\nworkload = \"forest.fit\"\nfeatures = 1000000\n");
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("forest.fit needs ") && text.contains("of memory but a node has "),
        "{text}"
    );
    assert!(
        text.contains("use a smaller `size` (samples) or fewer `features`"),
        "{text}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("memory allocation"),
        "{text}"
    );
    // 10^12 samples: passed `plan` and crashed at run time.
    let (code, text) =
        plan_text("name = \"x\"\n\n[[study]]\nworkload = \"cv.kfold\"\nsize = \"1T\"\n");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("cv.kfold needs "), "{text}");
    // Ten thousand features fit; the check generates only a small stand-in (the real data takes
    // O(samples · features²) to generate: minutes).
    let (code, text) =
        plan_text("name = \"x\"\n\n[[study]]\nworkload = \"forest.fit\"\nfeatures = 10000\n");
    assert_eq!(code, 0, "{text}");
}

#[test]
fn threads_are_bounded_even_with_oversubscribe() {
    let (code, text) = plan_text(
        "name = \"x\"\n\n[[study]]\nworkload = \"debug.sleep\"\nthreads = [1000000]\noversubscribe = true\n",
    );
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains(
            "point threads=1000000: 1000000 threads per rank are more than the limit of 4096"
        ),
        "{text}"
    );
    assert!(text.contains("docs/manifest.md"), "{text}");
    // Within the absolute limit but far beyond 8 workers per core of this machine.
    let cores = std::thread::available_parallelism().unwrap().get();
    if 8 * cores < 4000 {
        let (code, text) = plan_text(
            "name = \"x\"\n\n[[study]]\nworkload = \"debug.sleep\"\nthreads = [4000]\noversubscribe = true\n",
        );
        assert_eq!(code, 2, "{text}");
        assert!(
            text.contains(&format!(
                "4000 threads × 1 rank per node = 4000 workers exceed 8 per core of the node's {cores} cores ({}), the most oversubscribe allows",
                8 * cores
            )),
            "{text}"
        );
    }
}

#[test]
fn the_manifest_size_limit_holds_for_devices_and_pipes() {
    let (code, text) = plan(Path::new("/dev/zero"));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("is more than 4194304 bytes; a manifest is a small TOML text file"),
        "{text}"
    );
    // An endless pipe: the writer stops when scalelab closes its end.
    let mut child = scalelab()
        .args(["plan", "/dev/stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let line = [b'y'; 4096];
        while stdin.write_all(&line).is_ok() {}
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("is more than 4194304 bytes"), "{text}");
}

#[test]
fn equal_values_are_one_duplicate_and_long_names_hear_the_limit() {
    let (code, text) =
        plan_text("name = \"x\"\n\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.0, -0.0]\n");
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("`seconds` lists -0 more than once"), "{text}");
    assert!(text.contains("1 problem in"), "{text}");
    let long = "a".repeat(201);
    let (code, text) = plan_text(&format!(
        "name = \"{long}\"\n\n[[study]]\nworkload = \"debug.sleep\"\n"
    ));
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("`name` has 201 characters, more than the limit of 200"),
        "{text}"
    );
    assert!(!text.contains("may only contain letters"), "{text}");
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Two separable classes (x > 10), `n` rows, target column `label`.
fn csv_text(n: usize) -> String {
    let mut text = String::from("x,noise,label\n");
    for i in 0..n {
        let x = (i * 7) % 21;
        text.push_str(&format!("{x},{},{}\n", (i * 13) % 5, u8::from(x > 10)));
    }
    text
}

#[test]
fn a_relative_csv_dataset_is_pinned_by_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let exp = root.join("exp");
    fs::create_dir_all(exp.join("data")).unwrap();
    let csv = csv_text(40);
    fs::write(exp.join("data/two.csv"), &csv).unwrap();
    // A decoy with the same name where the command runs: the manifest's folder decides.
    fs::create_dir_all(root.join("data")).unwrap();
    fs::write(root.join("data/two.csv"), "x,label\n1,0\n").unwrap();
    write(
        &exp,
        "ml.toml",
        "name = \"ml\"\nrepetitions = 1\nwarmup = 0\n\n[[study]]\nworkload = \"forest.fit\"\ndataset = \"data/two.csv\"\ntarget = \"label\"\ntrees = 3\n",
    );
    let run_dir = root.join("run");
    let (code, text) = output(
        scalelab()
            .current_dir(&root)
            .args(["run", "exp/ml.toml", "--run-dir"])
            .arg(&run_dir)
            .arg("-q"),
    );
    assert_eq!(code, 0, "{text}");
    let plan: Value =
        serde_json::from_str(&fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    let point = &plan["points"][0];
    // The point keeps the dataset as written (its id does not depend on where the file is) and
    // pins the file.
    assert_eq!(point["params"]["dataset"], "data/two.csv");
    let pinned = Path::new(point["data"]["path"].as_str().unwrap());
    assert_eq!(pinned.canonicalize().unwrap(), exp.join("data/two.csv"));
    assert_eq!(point["data"]["sha256"], sha256_hex(csv.as_bytes()));
    let id = point["id"].as_str().unwrap().to_string();
    assert_eq!(records(&run_dir)[0]["status"], "ok");

    // Resumed from another folder, the point measures the same file.
    let record = run_dir.join("points").join(format!("{id}.json"));
    fs::remove_file(&record).unwrap();
    let (code, text) = output(
        scalelab()
            .current_dir("/")
            .arg("run")
            .arg("--resume")
            .arg(&run_dir)
            .arg("-q"),
    );
    assert_eq!(code, 0, "{text}");
    assert_eq!(records(&run_dir)[0]["status"], "ok");

    // A changed file fails the point, naming the file and the fix.
    fs::write(exp.join("data/two.csv"), csv_text(41)).unwrap();
    fs::remove_file(&record).unwrap();
    let (code, text) = output(
        scalelab()
            .arg("run")
            .arg("--resume")
            .arg(&run_dir)
            .arg("-q"),
    );
    assert_ne!(code, 0, "{text}");
    let rec = &records(&run_dir)[0];
    assert_eq!(rec["status"], "failed", "{rec}");
    let reason = rec["reason"].as_str().unwrap();
    let expected = format!(
        "{} changed since the plan was made (sha256 {}…, now {}…): restore it or start a new run",
        pinned.display(),
        &sha256_hex(csv.as_bytes())[..12],
        &sha256_hex(csv_text(41).as_bytes())[..12]
    );
    assert_eq!(reason, expected);

    // So does a missing one.
    fs::remove_file(exp.join("data/two.csv")).unwrap();
    fs::remove_file(&record).unwrap();
    let (_, text) = output(
        scalelab()
            .arg("run")
            .arg("--resume")
            .arg(&run_dir)
            .arg("-q"),
    );
    let reason = records(&run_dir)[0]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.starts_with(&format!(
            "{} changed since the plan was made (sha256 {}…, now unreadable): restore it or start a new run",
            pinned.display(),
            &sha256_hex(csv.as_bytes())[..12]
        )),
        "{reason}\n{text}"
    );
}

/// `scalelab sbatch` judges a point's memory by the partition's nodes as `sinfo` reports them.
#[cfg(feature = "slurm-tests")]
#[test]
fn sbatch_checks_memory_against_the_partitions_nodes() {
    let sinfo = Command::new("sinfo")
        .args(["-h", "-o", "%P|%m"])
        .output()
        .expect("sinfo runs (scripts/local-slurm.sh up)");
    let text = String::from_utf8_lossy(&sinfo.stdout).to_string();
    let line = text.lines().next().expect("a partition");
    let (name, mem_mb) = line.split_once('|').unwrap();
    let name = name.trim_end_matches('*');
    let mem_mb: u64 = mem_mb.trim_end_matches('+').parse().unwrap();
    // Three arrays, each as large as the node's whole memory.
    let dir = tempfile::tempdir().unwrap();
    let m = write(
        dir.path(),
        "m.toml",
        &format!(
            "name = \"x\"\n\n[[study]]\nworkload = \"stream.triad\"\nsize = \"{mem_mb}MiB\"\n\n[slurm]\npartition = \"{name}\"\n"
        ),
    );
    let (code, text) = output(scalelab().current_dir(dir.path()).args([
        "sbatch",
        m.to_str().unwrap(),
        "--dry-run",
    ]));
    assert_eq!(code, 2, "{text}");
    let node_gib = (mem_mb << 20) as f64 / f64::from(1u32 << 30);
    assert!(
        text.contains(&format!(
            "of memory but a node has {node_gib:.2} GiB (at most 90% of it may be planned)"
        )),
        "{text}"
    );
}

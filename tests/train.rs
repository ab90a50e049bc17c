//! `mlp.train` through the real binary, in the default build (no MPI): a small sweep over rayon
//! threads, micro-batches and a reduced precision run end to end, every repetition checked
//! bitwise against the serial reference; the records, the loss curves, the report and its plots
//! parsed back; a thread count the batch cannot feed refused before anything runs.

mod common;

use std::fs;

use common::{column, describe, read_csv, records, run_manifest, scalelab, write};

const STUDY: &str = r#"name = "threads"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "threads"
workload = "mlp.train"
threads = [1, 2]
micro = [1, 2]
dataset = "iris"
hidden = "16"
batch = 32
grain = 4
steps = 8

[[study]]
name = "bf16"
workload = "mlp.train"
threads = 2
precision = "bf16"
dataset = "iris"
hidden = "16"
batch = 32
grain = 4
steps = 8
"#;

#[test]
fn threads_and_micro_batches_train_the_serial_weights_and_the_report_draws_the_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, text) = run_manifest(dir.path(), STUDY);
    assert_eq!(code, 0, "{text}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 5);
    let metric = |r: &serde_json::Value, rep: usize, m: &str| {
        r["repetitions"][rep]["metrics"][m]
            .as_f64()
            .unwrap_or_else(|| panic!("no {m}: {}", describe(r)))
    };
    let fp64 = &recs[..4];
    for r in fp64 {
        assert_eq!(r["status"], "ok", "{}", describe(r));
        let threads = r["point"]["resources"]["threads"].as_f64().unwrap();
        for rep in 0..2 {
            assert_eq!(r["repetitions"][rep]["verified"], true, "{}", describe(r));
            assert!(metric(r, rep, "samples_per_s") > 0.0);
            assert_eq!(metric(r, rep, "busy_threads"), threads);
            assert_eq!(metric(r, rep, "steps"), 8.0);
        }
        // Every thread count and micro-batch count trains the same weights: the same held-out
        // loss and accuracy, and the same loss curve, to the last bit.
        for m in ["loss", "accuracy"] {
            assert_eq!(
                metric(r, 1, m).to_bits(),
                metric(&fp64[0], 1, m).to_bits(),
                "{m}: {}",
                describe(r)
            );
        }
        let losses = |r: &serde_json::Value| -> Vec<String> {
            r["repetitions"][1]["details"]["loss_curve"]
                .as_str()
                .unwrap()
                .split("; ")
                .map(|p| p.split_once(':').unwrap().1.to_string())
                .collect()
        };
        assert_eq!(losses(r).len(), 8);
        assert_eq!(losses(r), losses(&fp64[0]), "{}", describe(r));
        assert_eq!(metric(r, 1, "fp64_loss_gap"), 0.0);
    }
    // bf16 trains its own weights (checked against a bf16 reference) and says how far its loss
    // curve strayed from fp64's.
    let bf16 = &recs[4];
    assert_eq!(bf16["status"], "ok", "{}", describe(bf16));
    assert!(metric(bf16, 1, "fp64_loss_gap") > 0.0);

    let (h, rows) = read_csv(&run_dir.join("summary.csv"));
    assert_eq!(rows.len(), 5);
    assert!(rows
        .iter()
        .all(|r| column(&h, r, "workload") == "mlp.train"));
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("**Emulated precision**: 1 training point(s)"),
        "{report}"
    );
    let loss = run_dir.join("plots").join("study1-threads-loss.svg");
    let svg = fs::read_to_string(&loss)
        .unwrap_or_else(|e| panic!("{}: {e}; report: {report}", loss.display()));
    assert!(
        svg.contains("threads: training loss against wall time"),
        "{svg}"
    );
    assert!(report.contains("plots/study1-threads-loss.svg"), "{report}");
}

#[test]
fn a_thread_count_the_batch_cannot_feed_is_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "bad.toml",
        "name = \"bad\"\n\n[[study]]\nworkload = \"mlp.train\"\ndataset = \"iris\"\nthreads = 2\n\
         batch = 8\ngrain = 8\n",
    );
    let out = scalelab().arg("plan").arg(&manifest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "mlp.train: threads = 2 but a micro-batch of 8 samples is 1 grain of 8, and each \
             thread computes whole grains: 1 thread would get none; use a batch of at least 16 \
             (threads × micro × grain), a smaller grain, or threads = 1"
        ),
        "{stderr}"
    );
}

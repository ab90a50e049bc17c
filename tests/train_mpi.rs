//! `mpi.train` end to end through the real binary and `mpirun`: an MLP trained data-parallel at
//! 1, 2 and 4 ranks (oversubscribed), with the `ddp` and `accumulate` strategies, must verify on
//! every repetition (each rank's weights and momentum bitwise the serial reference's) and so end
//! with the same held-out loss and accuracy to the last bit; the records carry the gradient bytes
//! each rank sends per step (log₂ R exchanges of the whole gradient) and the compute /
//! communication split. A global batch that does not split, an unknown strategy and a rank count
//! the fixed reduction tree cannot follow are refused at check time with the fix. Needs the `mpi`
//! feature and OpenMPI's `mpirun` on `PATH`.

use serde_json::Value;

mod common;
use common::{records, run, run_manifest, scalelab, write};

fn describe(rec: &Value) -> String {
    format!(
        "ranks={} params={}: {} {}",
        rec["point"]["resources"]["ranks"], rec["point"]["params"], rec["status"], rec["reason"]
    )
}

/// The metric `name` of every repetition of `rec`.
fn metric(rec: &Value, name: &str) -> Vec<f64> {
    rec["repetitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r["metrics"][name]
                .as_f64()
                .unwrap_or_else(|| panic!("no metric {name} in {}", describe(rec)))
        })
        .collect()
}

#[test]
fn ddp_and_accumulate_give_the_serial_weights_at_1_2_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "train"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "ddp"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2, 4]
strategy = ["ddp", "accumulate"]
size = 2048
features = 16
classes = 4
hidden = "32,16"
batch = 128
micro = 2
steps = 12

[[study]]
name = "iris"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2, 4]
strategy = "accumulate"
dataset = "iris"
hidden = "8"
batch = 48
grain = 3
micro = 4
steps = 30
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 9);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    // Widths 16-32-16-4: 16·32 + 32 + 32·16 + 16 + 16·4 + 4 parameters.
    let params = (16 * 32 + 32 + 32 * 16 + 16 + 16 * 4 + 4) as f64;
    for (study, count, p) in [
        ("ddp", 6, params),
        ("iris", 3, (4 * 8 + 8 + 8 * 3 + 3) as f64),
    ] {
        let points: Vec<&Value> = recs
            .iter()
            .filter(|r| r["point"]["study_name"] == study)
            .collect();
        assert_eq!(points.len(), count);
        for pt in &points {
            for m in ["loss", "accuracy"] {
                let bits = |r: &Value| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(pt), bits(points[0]), "{m}: {}", describe(pt));
            }
            let ranks = pt["point"]["resources"]["ranks"].as_f64().unwrap();
            for (name, want) in [
                ("param_bytes", 8.0 * p),
                ("bytes_per_step", 8.0 * p * ranks.log2()),
            ] {
                assert!(
                    metric(pt, name).iter().all(|&v| v == want),
                    "{name} = {:?}, expected {want}: {}",
                    metric(pt, name),
                    describe(pt)
                );
            }
            let m = &pt["repetitions"][0]["metrics"];
            assert!(m["samples_per_s"].as_f64().unwrap() > 0.0);
            assert!(m["compute_s"].as_f64().unwrap() > 0.0);
            assert!(m["comm_s"].as_f64().unwrap() >= 0.0);
        }
    }
    // Training learns: iris after 30 steps is far above chance (1/3).
    let iris = recs
        .iter()
        .find(|r| r["point"]["study_name"] == "iris")
        .unwrap();
    assert!(metric(iris, "accuracy")[0] > 0.7, "{}", describe(iris));
}

/// `scalelab plan` on `text`: exit code and stderr.
fn plan(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "m.toml", text);
    let out = run(scalelab().arg("plan").arg(&m));
    (out.code, out.stderr.replace(&m.display().to_string(), "M"))
}

#[test]
fn bad_splits_and_unknown_strategies_are_refused_at_check_time() {
    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
oversubscribe = true
ranks = 2
strategy = "accumulate"
batch = 100
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "M:3: study 1 (s): point ranks=2, strategy=accumulate, batch=100: mpi.train: the \
             global batch of 100 samples is not divisible by ranks × micro-batches × grain = 2 × \
             4 × 8 = 64: every micro-batch must hold whole grains; use a batch that is a \
             multiple of 64 (e.g. 128)\n  fix: change or remove these values (mpi.train checks \
             every point before anything runs)"
        ),
        "{err}"
    );

    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
strategy = ["ddp", "fsdp"]
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "M:6: study 1 (s): `strategy` = \"fsdp\" is not a strategy of mpi.train\n  fix: \
             choose from: ddp, accumulate, sharded, fedavg"
        ),
        "{err}"
    );

    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
oversubscribe = true
ranks = 3
batch = 96
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "mpi.train: 3 ranks: the fixed reduction tree halves the global batch, so the rank \
             count must be a power of two; use 2 or 4 ranks"
        ),
        "{err}"
    );
}

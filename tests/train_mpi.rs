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
use common::{
    column, describe, metric, param, read_csv, records, run, run_manifest, scalelab, write,
};

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
            // Waiting for the slowest rank is split off the reduction's time; one rank never
            // waits.
            let wait = m["wait_s"].as_f64().unwrap();
            assert!(
                wait >= 0.0 && (ranks > 1.0 || wait == 0.0),
                "{}",
                describe(pt)
            );
            // The loss curve: one `seconds:loss` pair per step, the times rising, the losses
            // the same bits at every rank count and strategy.
            let curve = |r: &Value| -> Vec<(f64, String)> {
                r["repetitions"][1]["details"]["loss_curve"]
                    .as_str()
                    .unwrap_or_else(|| panic!("no loss_curve: {}", describe(r)))
                    .split("; ")
                    .map(|pair| {
                        let (t, l) = pair.split_once(':').unwrap();
                        (t.parse().unwrap(), l.to_string())
                    })
                    .collect()
            };
            let (mine, first) = (curve(pt), curve(points[0]));
            let steps = if study == "ddp" { 12 } else { 30 };
            assert_eq!(mine.len(), steps, "{}", describe(pt));
            assert!(mine.windows(2).all(|w| w[0].0 <= w[1].0), "{mine:?}");
            let losses = |c: &[(f64, String)]| c.iter().map(|p| p.1.clone()).collect::<Vec<_>>();
            assert_eq!(losses(&mine), losses(&first), "{}", describe(pt));
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
             choose from: ddp, accumulate, pipeline, sharded, fedavg"
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
             count must be a power of two; use 2 or 4 ranks, or allreduce = \"ring\" (any rank \
             count)"
        ),
        "{err}"
    );
}

#[test]
fn the_pipeline_gives_the_serial_weights_at_2_3_and_4_stages_and_records_its_bubble() {
    // Widths 16-32-24-16-4: 4 layers of 2048, 4608, 2304 and 384 training FLOPs per sample, so
    // 2 stages cut after layer 2 and 4 stages take a layer each. 3 stages (not a power of two)
    // work too: the stages share every micro-batch. GPipe and 1F1B alike; the `ddp` point at 1
    // rank is the reference.
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "pipe"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "pipe"
workload = "mpi.train"
oversubscribe = true
ranks = [2, 3, 4]
strategy = "pipeline"
size = 1024
features = 16
classes = 4
hidden = "32,24,16"
batch = 128
micro = [1, 4]
schedule = ["gpipe", "1f1b"]
steps = 8

[[study]]
name = "ref"
workload = "mpi.train"
ranks = 1
strategy = "ddp"
size = 1024
features = 16
classes = 4
hidden = "32,24,16"
batch = 128
steps = 8
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 13);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let reference = recs
        .iter()
        .find(|r| r["point"]["study_name"] == "ref")
        .unwrap();
    let bits = |r: &Value, m: &str| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for pt in recs.iter().filter(|r| r["point"]["study_name"] == "pipe") {
        for m in ["loss", "accuracy"] {
            assert_eq!(bits(pt, m), bits(reference, m), "{m}: {}", describe(pt));
        }
        let stages = pt["point"]["resources"]["ranks"].as_f64().unwrap();
        let micro = pt["point"]["params"]["micro"].as_f64().unwrap();
        let predicted = (stages - 1.0) / (micro + stages - 1.0);
        assert!(metric(pt, "bubble_predicted")
            .iter()
            .all(|&b| b == predicted));
        assert!(metric(pt, "stages").iter().all(|&s| s == stages));
        assert!(metric(pt, "bubble")
            .iter()
            .all(|&b| (0.0..=1.0).contains(&b)));
        for m in ["wait_s", "comm_s"] {
            assert!(
                metric(pt, m).iter().all(|&v| v >= 0.0),
                "{m}: {}",
                describe(pt)
            );
        }
        assert!(metric(pt, "compute_s").iter().all(|&v| v > 0.0));
        assert!(metric(pt, "samples_per_s").iter().all(|&v| v > 0.0));
        if stages == 2.0 {
            // Each stage sends 128 rows of the cut's width (24) per step, one way each.
            assert!(metric(pt, "bytes_per_step")
                .iter()
                .all(|&v| v == 8.0 * 128.0 * 24.0));
            assert_eq!(
                pt["repetitions"][0]["details"]["stages"],
                "layers 0..2 (6656 FLOP/sample) | layers 2..4 (2688 FLOP/sample)",
                "{}",
                describe(pt)
            );
        }
    }
    // 1F1B holds at most S − s micro-batches' activations per stage, GPipe all `micro` of them.
    let pipe: Vec<&Value> = recs
        .iter()
        .filter(|r| r["point"]["study_name"] == "pipe")
        .collect();
    for ofob in pipe.iter().filter(|r| {
        r["point"]["params"]["schedule"] == "1f1b" && r["point"]["params"]["micro"] == 4
    }) {
        let twin = pipe
            .iter()
            .find(|r| {
                r["point"]["params"]["schedule"] == "gpipe"
                    && r["point"]["params"]["micro"] == 4
                    && r["point"]["resources"]["ranks"] == ofob["point"]["resources"]["ranks"]
            })
            .unwrap();
        let (o, g) = (
            metric(ofob, "activation_bytes")[0],
            metric(twin, "activation_bytes")[0],
        );
        assert!(o < g, "1F1B {o} bytes, GPipe {g}: {}", describe(ofob));
    }
    // The summary table carries the same fields, parsed back from its CSV.
    let (h, rows) = read_csv(&run_dir.join("summary.csv"));
    let pipe: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| column(&h, r, "param_strategy") == "pipeline")
        .collect();
    assert_eq!(pipe.len(), 12, "{h:?}");
    for r in pipe {
        let num = |c: &str| -> f64 { column(&h, r, c).parse().unwrap() };
        let (stages, micro) = (num("ranks"), num("param_micro"));
        let predicted = (stages - 1.0) / (micro + stages - 1.0);
        assert!(
            (num("metric_bubble_predicted") - predicted).abs() < 1e-12,
            "{r:?}"
        );
        assert!((0.0..=1.0).contains(&num("metric_bubble")));
        assert!(num("metric_wait_s") >= 0.0);
    }
}

#[test]
fn the_interleaved_pipeline_gives_the_serial_weights_at_2_and_4_stages() {
    // Widths 16-32-24-16-16-16-16-16-4: 8 layers of 2048, 4608, 2304, 4 × 1536 and 384 training
    // FLOPs per sample. With virtual = 2, 2 stages cut the model into 4 chunks (layers 0..1,
    // 1..2, 2..4, 4..8), rank 0 holding chunks 0 and 2, rank 1 chunks 1 and 3; 4 stages into 8
    // chunks of one layer. GPipe and Megatron-LM's interleaved 1F1B alike; `micro` a multiple of
    // the stage count. The `ddp` point at 1 rank is the reference, and a 2-stage point with
    // virtual = 1 shows the messages interleaving adds.
    let dir = tempfile::tempdir().unwrap();
    let model = r#"
size = 1024
features = 16
classes = 4
hidden = "32,24,16,16,16,16,16"
batch = 128
steps = 8
"#;
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        &format!(
            r#"
name = "interleaved"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "interleaved"
workload = "mpi.train"
oversubscribe = true
ranks = [2, 4]
strategy = "pipeline"
virtual = 2
micro = [4, 8]
schedule = ["gpipe", "1f1b"]
{model}
[[study]]
name = "contiguous"
workload = "mpi.train"
ranks = 2
oversubscribe = true
strategy = "pipeline"
micro = 4
recompute = ["off", "on"]
{model}
[[study]]
name = "ref"
workload = "mpi.train"
ranks = 1
strategy = "ddp"
{model}"#
        ),
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 11);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let study = |name: &str| -> Vec<&Value> {
        recs.iter()
            .filter(|r| r["point"]["study_name"] == name)
            .collect()
    };
    let reference = study("ref")[0];
    let bits = |r: &Value, m: &str| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let recompute = |on: &str| {
        *study("contiguous")
            .iter()
            .find(|r| param(r, "recompute") == on)
            .unwrap()
    };
    let (contiguous, recomputed) = (recompute("off"), recompute("on"));
    // The contiguous split cuts once, after layer 2 (width 24).
    assert!(metric(contiguous, "bytes_per_step")
        .iter()
        .all(|&v| v == 8.0 * 128.0 * 24.0));
    // Activations, the larger stage's (stage 1: layers 2..8, inputs 24, 16, 16, 16, 16, 16 wide
    // and 4 logits, 108 values a row). GPipe with 4 micro-batches of 32 rows holds all 128 rows;
    // re-materialised, the 128 rows' inputs (24) and one micro-batch's layer outputs (84). The
    // weights are the same bits (checked below).
    assert_eq!(
        metric(contiguous, "activation_bytes"),
        [8.0 * 128.0 * 108.0; 2]
    );
    assert_eq!(
        metric(recomputed, "activation_bytes"),
        [8.0 * (128.0 * 24.0 + 32.0 * 84.0); 2],
        "{}",
        describe(recomputed)
    );
    let interleaved = study("interleaved");
    assert_eq!(interleaved.len(), 8);
    for pt in interleaved.iter().copied().chain([contiguous, recomputed]) {
        for m in ["loss", "accuracy"] {
            assert_eq!(bits(pt, m), bits(reference, m), "{m}: {}", describe(pt));
        }
    }
    for pt in interleaved {
        let stages = pt["point"]["resources"]["ranks"].as_f64().unwrap();
        let micro = pt["point"]["params"]["micro"].as_f64().unwrap();
        assert_eq!(param(pt, "virtual"), "2", "{}", describe(pt));
        // (S − 1) / (v·m + S − 1).
        let predicted = (stages - 1.0) / (2.0 * micro + stages - 1.0);
        assert!(
            metric(pt, "bubble_predicted")
                .iter()
                .all(|&b| b == predicted),
            "{}",
            describe(pt)
        );
        assert!(metric(pt, "virtual").iter().all(|&v| v == 2.0));
        // The schedule on a clock of the real chunk costs: rank 1 does 9600 of the 15488 FLOPs,
        // so rank 0 idles at least 1 − 5888/9600 of its step whatever the micro-batches.
        assert!(
            metric(pt, "bubble_simulated")
                .iter()
                .all(|&b| b < 1.0 && (stages != 2.0 || b >= 1.0 - 5888.0 / 9600.0)),
            "{}",
            describe(pt)
        );
        assert!(metric(pt, "bubble")
            .iter()
            .all(|&b| (0.0..=1.0).contains(&b)));
        if stages == 2.0 {
            // Three boundaries instead of one: rank 0 sends after layers 1 (32 wide) and 4 (16)
            // and back before layer 2 (24); rank 1 the mirror. 72 values a row, 3 × the
            // contiguous split's 24.
            assert!(
                metric(pt, "bytes_per_step")
                    .iter()
                    .all(|&v| v == 8.0 * 128.0 * 72.0),
                "{}",
                describe(pt)
            );
            assert_eq!(
                pt["repetitions"][0]["details"]["stages"],
                "layers 0..1 + 2..4 (5888 FLOP/sample) | layers 1..2 + 4..8 (9600 FLOP/sample)",
                "{}",
                describe(pt)
            );
        }
    }
    // The summary carries `virtual` as a parameter and the prediction, parsed back from its CSV.
    let (h, rows) = read_csv(&run_dir.join("summary.csv"));
    let rows: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| column(&h, r, "param_virtual") == "2")
        .collect();
    assert_eq!(rows.len(), 8, "{h:?}");
    for r in rows {
        let num = |c: &str| -> f64 { column(&h, r, c).parse().unwrap() };
        let (stages, micro) = (num("ranks"), num("param_micro"));
        let predicted = (stages - 1.0) / (2.0 * micro + stages - 1.0);
        assert!(
            (num("metric_bubble_predicted") - predicted).abs() < 1e-12,
            "{r:?}"
        );
    }
}

#[test]
fn interleaved_points_that_cannot_run_are_refused_at_check_time() {
    for (ranks, extra, want) in [
        (
            4,
            "hidden = \"16,16,16\"\nvirtual = 2",
            "mpi.train: 4 pipeline stages (one per rank) × virtual = 2 = 8 model chunks but the \
             model 32-16-16-16-4 has 4 layers: every chunk needs at least one layer; use \
             virtual = 1 or less, fewer ranks, or more hidden layers (`hidden`)",
        ),
        (
            4,
            "hidden = \"16,16,16,16,16,16,16\"\nvirtual = 2\nmicro = 2",
            "mpi.train: virtual = 2 with 4 stages and micro = 2: the interleaved schedule \
             (Megatron-LM's) runs the micro-batches through each chunk in groups of one per \
             stage, so micro must be a multiple of the stage (rank) count; use micro = 4 (or \
             more)",
        ),
        (
            3,
            "hidden = \"16,16,16,16,16,16,16\"\nvirtual = 2",
            "mpi.train: virtual = 2 with 3 stages and micro = 4: the interleaved schedule \
             (Megatron-LM's) runs the micro-batches through each chunk in groups of one per \
             stage, so micro must be a multiple of the stage (rank) count; micro is a power of \
             two, so use a power-of-two rank count (e.g. 2 or 4), or virtual = 1",
        ),
        (
            2,
            "virtual = 0",
            "M:8: study 1 (s): `virtual` must be a positive whole number, found 0",
        ),
    ] {
        let (code, err) = plan(&format!(
            "name = \"bad\"\n[[study]]\nname = \"s\"\nworkload = \"mpi.train\"\noversubscribe = \
             true\nranks = {ranks}\nstrategy = \"pipeline\"\n{extra}\n"
        ));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn pipeline_points_that_cannot_be_split_are_refused_at_check_time() {
    for (ranks, extra, want) in [
        (
            4,
            "hidden = \"16,16\"",
            "mpi.train: 4 pipeline stages (one per rank) but the model 32-16-16-4 has 3 layers: \
             every stage needs at least one layer; use 1 to 3 ranks, or more hidden layers \
             (`hidden`)",
        ),
        (
            2,
            "micro = 0",
            "M:8: study 1 (s): `micro` must be a positive whole number, found 0\n  fix: write \
             e.g. micro = [1, 10]",
        ),
        (
            2,
            "micro = 3",
            "mpi.train: micro = 3: the fixed reduction tree halves the global batch, so the \
             pipeline's micro-batch count must be a power of two; use micro = 2 or 4",
        ),
        (
            2,
            "batch = 200",
            "mpi.train: the global batch of 200 samples is not divisible by micro-batches × \
             grain = 4 × 8 = 32: every pipeline micro-batch must hold whole grains; use a batch \
             that is a multiple of 32 (e.g. 224)",
        ),
    ] {
        let (code, err) = plan(&format!(
            "name = \"bad\"\n[[study]]\nname = \"s\"\nworkload = \"mpi.train\"\noversubscribe = \
             true\nranks = {ranks}\nstrategy = \"pipeline\"\n{extra}\n"
        ));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(want), "{err}");
    }
}

#[test]
fn ddp_variants_give_their_reference_weights_at_1_2_and_4_ranks() {
    // Every allreduce (tree, ring, mpi) blocking and overlapped with backward in buckets of 2 KiB
    // (256 gradients: the 1140 parameters of 16-32-16-4 in five buckets, some across layers);
    // the ring and MPI_Allreduce at 3 ranks too (any rank count; the tree needs a power of two).
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "variants"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "ddp"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2, 4]
strategy = "ddp"
allreduce = ["tree", "ring", "mpi"]
overlap = ["off", "on"]
bucket = "2KiB"
size = 2048
features = 16
classes = 4
hidden = "32,16"
batch = 128
steps = 12

[[study]]
name = "acc"
workload = "mpi.train"
oversubscribe = true
ranks = [2, 4]
strategy = "accumulate"
allreduce = "ring"
overlap = "on"
bucket = 100
size = 2048
features = 16
classes = 4
hidden = "32,16"
batch = 128
micro = 2
steps = 12

[[study]]
name = "three"
workload = "mpi.train"
oversubscribe = true
ranks = 3
strategy = "ddp"
allreduce = ["ring", "mpi"]
overlap = ["off", "on"]
bucket = "2KiB"
size = 2048
features = 16
classes = 4
hidden = "32,16"
batch = 96
steps = 12
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 24);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let p = (16 * 32 + 32 + 32 * 16 + 16 + 16 * 4 + 4) as f64;
    let ranks = |r: &Value| r["point"]["resources"]["ranks"].as_f64().unwrap();
    let bits = |r: &Value| {
        metric(r, "loss")
            .iter()
            .chain(&metric(r, "accuracy"))
            .map(|v| v.to_bits())
            .collect::<Vec<_>>()
    };
    let plain = recs
        .iter()
        .find(|r| {
            ranks(r) == 1.0 && param(r, "allreduce") == "tree" && param(r, "overlap") == "off"
        })
        .unwrap();
    for r in &recs {
        let (allreduce, overlap, n) = (param(r, "allreduce"), param(r, "overlap"), ranks(r));
        // The tree (blocking or overlapped) is the serial reference; a ring is too when two
        // partial sums have only one order (1 or 2 ranks). At 4 ranks the ring verified against
        // its own reference (status ok above).
        if allreduce == "tree" || n <= 2.0 {
            assert_eq!(bits(r), bits(plain), "{}", describe(r));
        }
        let bitwise = metric(r, "bitwise");
        let distance = metric(r, "weight_distance");
        if allreduce == "mpi" {
            // Checked within the tolerance; where the library's order happens to be the tree's
            // the record says so.
            for (b, d) in bitwise.iter().zip(&distance) {
                assert!(*d <= 1e-10, "{}", describe(r));
                assert_eq!(*b == 1.0, *d == 0.0, "{}", describe(r));
            }
        } else {
            assert!(bitwise.iter().all(|&b| b == 1.0), "{}", describe(r));
            assert!(distance.iter().all(|&d| d == 0.0), "{}", describe(r));
        }
        let want = match allreduce.as_str() {
            "tree" => 8.0 * p * n.log2(),
            // Each rank sends all chunks but one in each half of the ring: 2(R−1)/R of the
            // gradient (p = 1140 splits evenly into 2, 3 and 4 chunks when blocking).
            _ => 8.0 * p * 2.0 * (n - 1.0) / n,
        };
        if overlap == "off" || allreduce == "tree" {
            assert_eq!(
                metric(r, "bytes_per_step"),
                vec![want; 2],
                "{}",
                describe(r)
            );
        }
        for (c, (e, t)) in metric(r, "comm_hidden_s")
            .iter()
            .zip(metric(r, "comm_s").iter().zip(&metric(r, "comm_total_s")))
        {
            // Each is the maximum over ranks, so the total lies between the larger part and
            // the sum of the parts.
            assert!(
                *c >= 0.0 && *t >= e.max(*c) && *t <= e + c + 1e-12,
                "{}",
                describe(r)
            );
            if overlap == "off" {
                assert_eq!(*c, 0.0, "{}", describe(r));
            }
        }
    }
}

#[test]
fn unknown_allreduce_and_empty_buckets_are_refused_at_check_time() {
    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
allreduce = ["ring", "butterfly"]
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "M:6: study 1 (s): `allreduce` = \"butterfly\" is not a allreduce of mpi.train\n  \
             fix: choose from: tree, ring, mpi"
        ),
        "{err}"
    );

    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
overlap = "on"
bucket = "4B"
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "mpi.train: bucket = 4B: a bucket must hold at least one gradient (8 bytes); give its \
             capacity as a count of gradients or in bytes, e.g. bucket = \"64KiB\" (what PyTorch \
             calls bucket_cap_mb)"
        ),
        "{err}"
    );

    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
overlap = "on"
bucket = -64
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "M:7: study 1 (s): `bucket`: `-64` is not a size; write a count like 4096 or \"10M\", \
             or bytes like \"64MiB\"\n  fix:"
        ),
        "{err}"
    );
    let (code, err) = plan(
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
overlap = "on"
bucket = 0
"#,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "M:7: study 1 (s): `bucket`: size `0` must be a positive whole number of items or \
             bytes\n  fix: write a count like 4096 or \"10M\", or bytes like \"64MiB\""
        ),
        "{err}"
    );
}

#[test]
fn weak_scaling_grows_the_global_batch_and_keeps_the_per_rank_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "weak"
repetitions = 1
warmup = 0
timeout = "2m"

[[study]]
name = "weak"
workload = "mpi.train"
scaling = "weak"
oversubscribe = true
ranks = [1, 2, 4]
size = 1024
features = 8
classes = 3
hidden = "16"
batch = 32
steps = 6
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 3);
    for (rec, ranks) in recs.iter().zip([1u64, 2, 4]) {
        assert_eq!(rec["status"], "ok", "{}", describe(rec));
        // The global batch grows with the ranks (32 samples per rank); the dataset does not.
        assert_eq!(
            param(rec, "batch"),
            (32 * ranks).to_string(),
            "{}",
            describe(rec)
        );
        assert_eq!(param(rec, "size"), r#"{"count":1024}"#, "{}", describe(rec));
        assert_eq!(metric(rec, "bitwise"), [1.0], "{}", describe(rec));
    }
    // One weak series: efficiency T(1)/T(p), the share of one rank's samples/s per rank kept.
    let mut reader = csv::Reader::from_path(run_dir.join("summary.csv")).unwrap();
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    let seconds = |rec: &Value| rec["repetitions"][0]["seconds"].as_f64().unwrap();
    let base = seconds(&recs[0]);
    for (row, rec) in rows.iter().zip(&recs) {
        let efficiency: f64 = row[col("efficiency")].parse().unwrap_or_else(|e| {
            panic!(
                "efficiency `{}` ({e}): {}",
                &row[col("efficiency")],
                describe(rec)
            )
        });
        let want = base / seconds(rec);
        assert!(
            (efficiency - want).abs() < 1e-3 * want,
            "efficiency {efficiency}, expected T(1)/T(p) = {want}: {}",
            describe(rec)
        );
    }
}

/// A small classification CSV: 160 rows, features `a`..`d`, class labels `low`, `mid`, `high`
/// in column `kind` (a deterministic function of the features, so there is something to learn).
fn classes_csv() -> String {
    let mut s = String::from("a,b,kind,c,d\n");
    for i in 0..160u32 {
        let a = f64::from((i * 37) % 101) / 10.0;
        let b = f64::from((i * 53) % 89) / 10.0;
        let c = f64::from((i * 11) % 23);
        let d = f64::from(i % 7) - 3.0;
        let kind = match a + 0.5 * b {
            v if v < 6.0 => "low",
            v if v < 10.0 => "mid",
            _ => "high",
        };
        s.push_str(&format!("{a},{b},{kind},{c},{d}\n"));
    }
    s
}

#[test]
fn a_csv_dataset_trains_bitwise_the_serial_weights_at_1_2_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "classes.csv", &classes_csv());
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "csv"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "csv"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2, 4]
strategy = ["ddp", "accumulate"]
dataset = "classes.csv"
target = "kind"
hidden = "16"
batch = 64
grain = 4
micro = 2
steps = 25
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 6);
    // Widths 4-16-3: the four feature columns and the three classes of `kind`.
    let params = (4 * 16 + 16 + 16 * 3 + 3) as f64;
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
        assert_eq!(metric(r, "bitwise"), [1.0, 1.0], "{}", describe(r));
        assert_eq!(
            metric(r, "param_bytes"),
            [8.0 * params; 2],
            "{}",
            describe(r)
        );
        for m in ["loss", "accuracy"] {
            let bits = |r: &Value| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(r), bits(&recs[0]), "{m}: {}", describe(r));
        }
    }
    assert!(
        metric(&recs[0], "accuracy")[0] > 0.6,
        "{}",
        describe(&recs[0])
    );
    // The work is the training FLOPs of the file's shape, read from the pinned path (the test
    // runs from another folder than the manifest's): 25 steps × 64 samples × (4·4·16 + 6·16·3),
    // the first layer's input gradient skipped.
    let per_sample = (4 * 4 * 16 + 6 * 16 * 3) as f64;
    for r in &recs {
        assert_eq!(
            r["work"]["flops"].as_f64(),
            Some(25.0 * 64.0 * per_sample),
            "{}",
            describe(r)
        );
    }
    // The plan pins the file: its absolute path and sha256.
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("plan.json")).unwrap()).unwrap();
    let data = &plan["points"][0]["data"];
    assert_eq!(data["param"], "dataset");
    assert_eq!(
        data["path"].as_str().unwrap(),
        dir.path().join("classes.csv").to_str().unwrap()
    );
    assert_eq!(data["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn a_csv_with_a_regression_target_is_refused_at_check_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("x,y,price\n");
    for i in 0..50 {
        csv.push_str(&format!("{i},{},{}.25\n", i % 3, i * 7));
    }
    write(dir.path(), "prices.csv", &csv);
    let m = write(
        dir.path(),
        "m.toml",
        r#"
name = "bad"
[[study]]
name = "s"
workload = "mpi.train"
dataset = "prices.csv"
target = "price"
batch = 32
"#,
    );
    let out = run(scalelab().arg("plan").arg(&m));
    let path = dir.path().join("prices.csv");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "mpi.train: dataset {}: target column `price` holds real values (a regression \
             target); mpi.train trains a classifier with softmax cross-entropy: use a target \
             column of class labels (text, or integers with at most 20 distinct values)",
            path.display()
        )),
        "{}",
        out.stderr
    );
    // A missing target column names the key to fix.
    let m = write(
        dir.path(),
        "m.toml",
        "name = \"bad\"\n[[study]]\nworkload = \"mpi.train\"\ndataset = \"prices.csv\"\nbatch = 32\n",
    );
    let out = run(scalelab().arg("plan").arg(&m));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("(the study's `target` key names the target column)"),
        "{}",
        out.stderr
    );
}

#[test]
fn rayon_threads_inside_each_rank_give_the_serial_weights_at_any_threads_times_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "threads"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "threads"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2]
threads = [1, 2]
strategy = ["ddp", "accumulate"]
size = 1024
features = 12
classes = 3
hidden = "24"
batch = 128
grain = 4
micro = 2
steps = 10
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 8);
    let mut seen = Vec::new();
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
        assert_eq!(metric(r, "bitwise"), [1.0, 1.0], "{}", describe(r));
        for m in ["loss", "accuracy"] {
            let bits = |r: &Value| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(r), bits(&recs[0]), "{m}: {}", describe(r));
        }
        let res = &r["point"]["resources"];
        seen.push((
            res["threads"].as_u64().unwrap(),
            res["ranks"].as_u64().unwrap(),
        ));
    }
    for want in [(1, 1), (2, 1), (1, 2), (2, 2)] {
        assert!(
            seen.contains(&want),
            "threads × ranks {want:?} missing: {seen:?}"
        );
    }
}

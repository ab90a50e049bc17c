//! `mpi.train`'s `sharded` and `fedavg` strategies end to end through the real binary and
//! `mpirun`. Sharded (ZeRO-3 / FSDP) at 1, 2 and 4 ranks (oversubscribed) must verify on every
//! repetition (the gathered weights and each rank's momentum chunk bitwise the serial
//! reference's), end with the ddp run's loss and accuracy to the last bit, and record a quarter of
//! ddp's model-state bytes per rank at 4 ranks. With one FSDP unit per layer (`units = "layer"`)
//! it verifies the same way, sends what the per-layer allgathers and reduce-scatters send, and its
//! counted peak lies where the analysis puts it, below the whole model's; `units = "layer"` for
//! `ddp` is refused at check time with the fix. With gradient accumulation (`micro = 4`, 2 and 4
//! ranks) it verifies both ways, reduce-scattering every micro-batch and inside `no_sync`, for
//! both units, sends and holds what the analysis says (no_sync more), and a micro-batch count
//! that is not a power of two or `no_sync` for another strategy is refused. FedAvg at 1 and 3 clients verifies every round
//! against its serial simulation, records its per-round curve and shard sizes, drops clients, and
//! waits for stragglers or discards their late models; with quantity skew the shards differ in
//! size and still verify. Asynchronous FedAvg (FedAsync) at 2 and 4 ranks (oversubscribed; rank 0
//! the server, 1 and 3 clients) logs the order in which the server applied the updates, and the
//! serial replay of that log gives the server's weights bit for bit (the check of every
//! repetition); at one client with `mixing = 1` it ends where synchronous FedAvg, i.e. local
//! training, does. Buffered asynchronous FedAvg (FedBuff) at 3 and 4 ranks with buffers of 1
//! and 2 updates logs its arrivals, a server step per `buffer` of them, and replays bit for bit;
//! at one client with `buffer = 1`, `server_lr = 1` and no staleness weighting it ends on local
//! training's loss up to the rounding of the client's delta.
//! Bad federated options are refused at check time with the fix. Needs the `mpi` feature and
//! OpenMPI's `mpirun` on `PATH`.

use serde_json::Value;

mod common;
use common::{describe, metric, param, records, run, run_manifest, scalelab, write};

fn ranks(rec: &Value) -> usize {
    rec["point"]["resources"]["ranks"].as_u64().unwrap() as usize
}

#[test]
fn sharded_gives_the_serial_weights_at_1_2_and_4_ranks_with_a_quarter_of_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "sharded"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "s"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2, 4]
strategy = ["ddp", "sharded"]
micro = 1
size = 1024
features = 10
classes = 3
hidden = "16"
batch = 64
steps = 10
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 6);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    // Widths 10-16-3: 10·16 + 16 + 16·3 + 3 = 227 parameters, a multiple of neither 2 nor 4.
    let p = 227.0;
    let bits = |r: &Value, m: &str| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for r in &recs {
        for m in ["loss", "accuracy"] {
            assert_eq!(bits(r, m), bits(&recs[0], m), "{m}: {}", describe(r));
        }
        let n = ranks(r) as f64;
        let chunk = (p / n).ceil();
        let sharded = r["point"]["params"]["strategy"] == "sharded";
        // Waiting for the slowest rank is split off the collectives' time; one rank never waits.
        let wait = metric(r, "wait_s");
        assert!(
            !wait.is_empty() && wait.iter().all(|&w| w >= 0.0 && (n > 1.0 || w == 0.0)),
            "{}",
            describe(r)
        );
        let want = if sharded {
            [
                ("mem_per_rank_bytes", 3.0 * 8.0 * chunk),
                ("mem_peak_bytes", 8.0 * (2.0 * chunk * n + chunk)),
                // Allgather and reduce-scatter: (R − 1) chunks each.
                ("bytes_per_step", 2.0 * 8.0 * chunk * (n - 1.0)),
            ]
        } else {
            [
                ("mem_per_rank_bytes", 3.0 * 8.0 * p),
                ("mem_peak_bytes", 3.0 * 8.0 * p),
                ("bytes_per_step", 8.0 * p * n.log2()),
            ]
        };
        for (name, want) in want {
            assert!(
                metric(r, name).iter().all(|&v| v == want),
                "{name} = {:?}, expected {want}: {}",
                metric(r, name),
                describe(r)
            );
        }
    }
}

/// (chunk, padded) of each layer of an MLP with `widths` sharded over `ranks`.
fn layer_shards(widths: &[usize], ranks: usize) -> Vec<(f64, f64)> {
    widths
        .windows(2)
        .map(|w| {
            let len = (w[0] * w[1] + w[1]) as f64;
            let chunk = (len / ranks as f64).ceil();
            (chunk, chunk * ranks as f64)
        })
        .collect()
}

#[test]
fn per_layer_units_give_the_serial_weights_at_1_2_and_4_ranks_and_a_lower_peak() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "fsdp-units"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "s"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2, 4]
strategy = "sharded"
units = ["model", "layer"]
micro = 1
size = 1024
features = 10
classes = 3
hidden = "16,16,16"
batch = 64
steps = 10
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 6);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let bits = |r: &Value, m: &str| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    // Layers of 176, 272, 272 and 51 parameters (771): the padding differs per layer.
    let widths = [10, 16, 16, 16, 3];
    let p = 771.0;
    let mut peaks = std::collections::BTreeMap::new();
    for r in &recs {
        for m in ["loss", "accuracy"] {
            assert_eq!(bits(r, m), bits(&recs[0], m), "{m}: {}", describe(r));
        }
        let n = ranks(r);
        let units = param(r, "units");
        let layers = layer_shards(&widths, n);
        let (chunks, state, bytes, low, high) = if units == "model" {
            let c = (p / n as f64).ceil();
            let peak = 8.0 * (2.0 * c * n as f64 + c);
            (
                c,
                3.0 * 8.0 * c,
                2.0 * 8.0 * c * (n as f64 - 1.0),
                peak,
                peak,
            )
        } else {
            let chunks: f64 = layers.iter().map(|l| l.0).sum();
            // Forward gathers every layer, backward all but the last again; one
            // reduce-scatter per layer: R − 1 chunks each.
            let last = layers.last().unwrap().0;
            let bytes = 8.0 * (3.0 * chunks - last) * (n as f64 - 1.0);
            // The peak when each reduce-scatter completes at once: the chunks of parameters and
            // momentum, a layer gathered with its whole gradient, the one prefetched beside it
            // and the later layers' gradient chunks; over MPI a layer's gradient stays whole
            // until its reduce-scatter completes, at most Σ (padded − chunk) more.
            let base = 2.0 * chunks;
            let mut eager = base + chunks;
            for (k, &(c, pad)) in layers.iter().enumerate() {
                let next = layers.get(k + 1).map_or(0.0, |l| l.1 - l.0);
                eager = eager.max(base - c + pad + next);
                let later: f64 = layers[k + 1..].iter().map(|l| l.0).sum();
                let prev = if k > 0 {
                    layers[k - 1].1 - layers[k - 1].0
                } else {
                    0.0
                };
                eager = eager.max(base + later - c + 2.0 * pad + prev);
            }
            let slack: f64 = layers.iter().map(|l| l.1 - l.0).sum();
            (
                chunks,
                3.0 * 8.0 * chunks,
                bytes,
                8.0 * eager,
                8.0 * (eager + slack),
            )
        };
        assert!(chunks > 0.0);
        for (name, want) in [("mem_per_rank_bytes", state), ("bytes_per_step", bytes)] {
            assert!(
                metric(r, name).iter().all(|&v| v == want),
                "{name} = {:?}, expected {want}: {}",
                metric(r, name),
                describe(r)
            );
        }
        let peak = metric(r, "mem_peak_bytes");
        assert!(
            peak.iter().all(|&v| (low..=high).contains(&v)),
            "mem_peak_bytes = {peak:?}, expected {low} to {high}: {}",
            describe(r)
        );
        if n == 1 {
            // One rank: ddp's three vectors whatever the units.
            assert!(peak.iter().all(|&v| v == 3.0 * 8.0 * p), "{peak:?}");
        }
        peaks.insert((n, units), peak[0]);
    }
    for n in [2, 4] {
        let (model, layer) = (
            peaks[&(n, "model".to_string())],
            peaks[&(n, "layer".to_string())],
        );
        assert!(
            layer < model,
            "{n} ranks: per-layer peak {layer} ≥ whole-model {model}"
        );
    }
}

/// Peak values (f64 words) of per-layer units over `micro` micro-batches when every collective
/// completes as it starts, `layers` as (chunk, padded): per micro-batch `j`, the chunks of
/// parameters and momentum, the earlier micro-batches' partial sums (one per set bit of `j`, per
/// layer: a chunk, or inside no_sync a whole layer gradient), and in forward a layer gathered
/// with the next prefetched, in backward a layer gathered with its gradient, the earlier one
/// prefetched and the later layers' gradients (reduce-scattered chunks, or inside no_sync before
/// the last micro-batch pushed whole on their sums).
fn accumulated_layer_peak(layers: &[(f64, f64)], micro: u32, no_sync: bool) -> f64 {
    let chunks: f64 = layers.iter().map(|l| l.0).sum();
    let base = 2.0 * chunks;
    let mut peak = base;
    for j in 0..micro {
        let held = j.count_ones() as f64;
        let last = j + 1 == micro;
        let sum = |ls: &[(f64, f64)], whole: bool| -> f64 {
            ls.iter().map(|l| if whole { l.1 } else { l.0 }).sum()
        };
        let stacks = held * sum(layers, no_sync);
        for (k, &(c, pad)) in layers.iter().enumerate() {
            let next = layers.get(k + 1).map_or(0.0, |l| l.1 - l.0);
            peak = peak.max(base + stacks - c + pad + next);
            let prev = if k > 0 {
                layers[k - 1].1 - layers[k - 1].0
            } else {
                0.0
            };
            let later = &layers[k + 1..];
            let (later, earlier) = if !no_sync {
                (sum(later, false), stacks)
            } else if last {
                (sum(later, false), held * sum(&layers[..=k], true))
            } else {
                (
                    (j + 1).count_ones() as f64 * sum(later, true),
                    held * sum(&layers[..=k], true),
                )
            };
            peak = peak.max(base + earlier + later - c + 2.0 * pad + prev);
        }
        if !no_sync {
            peak = peak.max(base + stacks + chunks);
        } else if last {
            peak = peak.max(base + chunks);
        }
    }
    peak
}

#[test]
fn sharded_accumulation_gives_the_serial_weights_both_ways_at_2_and_4_ranks() {
    // Four micro-batches per step, reduce-scattered each (no_sync = "off") or once after the
    // last (no_sync = "on"), whole-model and per-layer units: every point verifies bitwise on
    // every repetition and ends with the same loss and accuracy bits; each sends and holds what
    // the analysis says.
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "fsdp-accumulation"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "s"
workload = "mpi.train"
oversubscribe = true
ranks = [2, 4]
strategy = "sharded"
micro = 4
no_sync = ["off", "on"]
units = ["model", "layer"]
size = 1024
features = 10
classes = 3
hidden = "16,16"
batch = 128
steps = 6
"#,
    );
    assert_eq!(code, 0, "{out}");
    let recs = records(&run_dir);
    assert_eq!(recs.len(), 8);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let bits = |r: &Value, m: &str| metric(r, m).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    // Layers of 176, 272 and 51 parameters (499).
    let widths = [10, 16, 16, 3];
    let (p, k) = (499.0, 4.0);
    let mut peaks = std::collections::BTreeMap::new();
    for r in &recs {
        for m in ["loss", "accuracy"] {
            assert_eq!(bits(r, m), bits(&recs[0], m), "{m}: {}", describe(r));
        }
        let n = ranks(r) as f64;
        let no_sync = param(r, "no_sync") == "on";
        // Reduce-scatters per step: one per micro-batch, or one inside no_sync.
        let scatters = if no_sync { 1.0 } else { k };
        let (state, bytes) = if param(r, "units") == "model" {
            let c = (p / n).ceil();
            let pad = c * n;
            // The last micro-batch's backward: the momentum chunk, the gathered model and its
            // gradient, and log₂ 4 = 2 earlier partial sums (chunks, or whole inside no_sync).
            let peak = 8.0 * (c + 2.0 * pad + 2.0 * if no_sync { pad } else { c });
            assert!(
                metric(r, "mem_peak_bytes").iter().all(|&v| v == peak),
                "mem_peak_bytes = {:?}, expected {peak}: {}",
                metric(r, "mem_peak_bytes"),
                describe(r)
            );
            // Every micro-batch gathers the model once.
            (3.0 * 8.0 * c, 8.0 * c * (k + scatters) * (n - 1.0))
        } else {
            let layers = layer_shards(&widths, n as usize);
            let chunks: f64 = layers.iter().map(|l| l.0).sum();
            let last = layers.last().unwrap().0;
            // Between the peak with every collective complete at once and that plus every
            // layer's gradient still whole in a reduce-scatter in flight.
            let eager = accumulated_layer_peak(&layers, 4, no_sync);
            let slack: f64 = layers.iter().map(|l| l.1 - l.0).sum();
            let (low, high) = (8.0 * eager, 8.0 * (eager + slack));
            let peak = metric(r, "mem_peak_bytes");
            assert!(
                peak.iter().all(|&v| (low..=high).contains(&v)),
                "mem_peak_bytes = {peak:?}, expected {low} to {high}: {}",
                describe(r)
            );
            // Every micro-batch gathers every layer in forward and all but the last again in
            // backward.
            let sent = k * (2.0 * chunks - last) + scatters * chunks;
            (3.0 * 8.0 * chunks, 8.0 * sent * (n - 1.0))
        };
        for (name, want) in [("mem_per_rank_bytes", state), ("bytes_per_step", bytes)] {
            assert!(
                metric(r, name).iter().all(|&v| v == want),
                "{name} = {:?}, expected {want}: {}",
                metric(r, name),
                describe(r)
            );
        }
        peaks.insert(
            (ranks(r), param(r, "units"), no_sync),
            metric(r, "mem_peak_bytes")[0],
        );
    }
    for n in [2, 4] {
        for units in ["model", "layer"] {
            let (off, on) = (
                peaks[&(n, units.to_string(), false)],
                peaks[&(n, units.to_string(), true)],
            );
            assert!(off < on, "{n} ranks, {units}: no_sync's peak {on} ≤ {off}");
        }
    }
}

#[test]
fn sharded_accumulation_refuses_bad_micro_batches_and_no_sync_elsewhere_at_check_time() {
    let study = |extra: &str| {
        format!(
            "name = \"bad\"\n[[study]]\nname = \"s\"\nworkload = \"mpi.train\"\noversubscribe = \
             true\nranks = 4\nbatch = 256\n{extra}\n"
        )
    };
    let (code, err) = plan(&study(
        "strategy = \"sharded\"\nmicro = 4\nno_sync = [\"off\", \"on\"]",
    ));
    assert_eq!(code, 0, "{err}");
    for (extra, want) in [
        (
            "strategy = \"sharded\"\nmicro = 3",
            "mpi.train: micro = 3: the fixed reduction tree halves each rank's share, so the \
             micro-batch count must be a power of two; use micro = 2 or 4",
        ),
        (
            "strategy = \"sharded\"\nmicro = 16\nno_sync = \"on\"",
            "mpi.train: the global batch of 256 samples is not divisible by ranks × \
             micro-batches × grain = 4 × 16 × 8 = 512: every micro-batch must hold whole grains; \
             use a batch that is a multiple of 512 (e.g. 512)",
        ),
        (
            "strategy = [\"ddp\", \"sharded\"]\nno_sync = \"on\"",
            "mpi.train: no_sync = \"on\" with strategy = \"ddp\": no_sync is how sharded \
             accumulates its micro-batches (one reduce-scatter after the last instead of one per \
             micro-batch); ddp does not reduce-scatter micro-batches; use strategy = \"sharded\" \
             with micro > 1, or leave no_sync at \"off\"",
        ),
        (
            "strategy = \"accumulate\"\nno_sync = \"on\"",
            "mpi.train: no_sync = \"on\" with strategy = \"accumulate\": no_sync is how sharded \
             accumulates its micro-batches (one reduce-scatter after the last instead of one per \
             micro-batch); accumulate already reduces once per step, after its micro-batches, \
             which is what DDP's no_sync() does; use strategy = \"sharded\" with micro > 1, or \
             leave no_sync at \"off\"",
        ),
    ] {
        let (code, err) = plan(&study(extra));
        assert_eq!(code, 2, "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err}");
    }
}

/// The `round_curve` detail of repetition `rep` as (round, loss, accuracy).
fn curve(rec: &Value, rep: usize) -> Vec<(usize, f64, f64)> {
    let text = rec["repetitions"][rep]["details"]["round_curve"]
        .as_str()
        .unwrap_or_else(|| panic!("no round_curve in {}", describe(rec)));
    text.split("; ")
        .map(|e| {
            let f: Vec<&str> = e.split(':').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn fedavg_verifies_every_round_records_its_curve_drops_clients_and_skips_late_ones() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "fed"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "f"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 3]
strategy = "fedavg"
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 5
epochs = 2
skew = [0.0, 1.0]
drop = [0.0, 0.34]
stragglers = 0.5
straggler_ms = 1

[[study]]
name = "late"
workload = "mpi.train"
oversubscribe = true
ranks = 3
strategy = "fedavg"
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 5
epochs = 2
stragglers = 0.34
straggler_ms = 1
straggler_policy = ["wait", "skip"]
"#,
    );
    assert_eq!(code, 0, "{out}");
    let all = records(&run_dir);
    assert_eq!(all.len(), 10);
    for r in &all {
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    // A server that skips stragglers averages ⌊0.34 × 3⌋ = 1 client fewer each round, and so
    // reaches other weights than one that waits for them.
    let late = |policy: &str| {
        all.iter()
            .find(|r| {
                r["point"]["study_name"] == "late"
                    && r["point"]["params"]["straggler_policy"] == policy
            })
            .unwrap()
    };
    assert_eq!(metric(late("wait"), "clients_reporting")[0], 3.0);
    assert_eq!(metric(late("skip"), "clients_reporting")[0], 2.0);
    assert_ne!(metric(late("wait"), "loss"), metric(late("skip"), "loss"));
    let recs: Vec<Value> = all
        .into_iter()
        .filter(|r| r["point"]["study_name"] == "f")
        .collect();
    assert_eq!(recs.len(), 8);
    for r in &recs {
        assert_eq!(r["status"], "ok", "{}", describe(r));
        let c = curve(r, 1);
        assert_eq!(
            c.iter().map(|e| e.0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5]
        );
        // The last round of the curve is the recorded final loss and accuracy.
        let last = c.last().unwrap();
        assert_eq!(
            (last.1, last.2),
            (metric(r, "loss")[1], metric(r, "accuracy")[1])
        );
        // Every repetition trains from the same initial weights: the same curve.
        assert_eq!(curve(r, 0), c);
        // 150 iris rows, 120 for training, split over the clients.
        let rows: usize = r["repetitions"][1]["details"]["client_rows"]
            .as_str()
            .unwrap()
            .split(", ")
            .map(|n| n.parse::<usize>().unwrap())
            .sum();
        assert_eq!(rows, 120, "{}", describe(r));
        let k = ranks(r) as f64;
        let drop = r["point"]["params"]["drop"].as_f64().unwrap();
        assert_eq!(
            metric(r, "clients_reporting")[0],
            k - (drop * k).floor(),
            "{}",
            describe(r)
        );
        assert_eq!(metric(r, "rounds")[0], 5.0);
    }
    // Training learns on one client (after 5 rounds × 2 epochs iris is far above chance).
    let one = recs.iter().find(|r| ranks(r) == 1).unwrap();
    assert!(metric(one, "accuracy")[0] > 0.6, "{}", describe(one));
    // At one client skew and drop change nothing (⌊0.34 × 1⌋ = 0 dropped, one shard).
    let ones: Vec<&Value> = recs.iter().filter(|r| ranks(r) == 1).collect();
    for r in &ones {
        assert_eq!(metric(r, "loss"), metric(ones[0], "loss"));
    }
    // Three clients: dropping one of them per round changes the model.
    let three = |skew: f64, drop: f64| {
        recs.iter()
            .find(|r| {
                ranks(r) == 3
                    && r["point"]["params"]["skew"].as_f64() == Some(skew)
                    && r["point"]["params"]["drop"].as_f64() == Some(drop)
            })
            .unwrap()
    };
    assert_ne!(
        metric(three(0.0, 0.0), "loss"),
        metric(three(0.0, 0.34), "loss")
    );
    assert_ne!(
        metric(three(0.0, 0.0), "loss"),
        metric(three(1.0, 0.0), "loss")
    );
}

/// A `; `-joined detail of `seconds|round:loss:accuracy` triples, as (x, loss, accuracy).
fn triples(rec: &Value, rep: usize, detail: &str) -> Vec<(f64, f64, f64)> {
    let text = rec["repetitions"][rep]["details"][detail]
        .as_str()
        .unwrap_or_else(|| panic!("no {detail} in {}", describe(rec)));
    text.split("; ")
        .map(|e| {
            let f: Vec<f64> = e.split(':').map(|v| v.parse().unwrap()).collect();
            assert_eq!(f.len(), 3, "{e}");
            (f[0], f[1], f[2])
        })
        .collect()
}

/// The shard sizes a fedavg record lists (`client_rows`).
fn client_rows(rec: &Value) -> Vec<usize> {
    rec["repetitions"][0]["details"]["client_rows"]
        .as_str()
        .unwrap()
        .split(", ")
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn async_fedavg_replays_the_servers_log_bit_for_bit_at_2_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "fedasync"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "async"
workload = "mpi.train"
oversubscribe = true
ranks = [2, 4]
strategy = "fedavg"
aggregation = "async"
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 4
epochs = 1
quantity_skew = [0.0, 1.5]
stragglers = 0.5
straggler_ms = 2

[[study]]
name = "one"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2]
zip = ["ranks", "aggregation"]
strategy = "fedavg"
aggregation = ["sync", "async"]
mixing = 1.0
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 4
quantity_skew = 2.0

[[study]]
name = "sized"
workload = "mpi.train"
oversubscribe = true
ranks = 3
strategy = "fedavg"
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 3
quantity_skew = [0.0, 2.0]
"#,
    );
    assert_eq!(code, 0, "{out}");
    let all = records(&run_dir);
    assert_eq!(all.len(), 8);
    for r in &all {
        // "ok" means every repetition verified: on the server, every version equals the
        // replay of its log; on every client, each model it was sent and its momentum.
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let study = |name: &str| {
        all.iter()
            .filter(move |r| r["point"]["study_name"] == name)
            .collect::<Vec<_>>()
    };
    for r in study("async") {
        // Rank 0 serves; ranks 1 … K are the clients.
        let k = ranks(r) - 1;
        for rep in 0..2 {
            // The log: every client's 4 updates, each trained from the version the server sent
            // it after its previous one (0 for its first).
            let log: Vec<(usize, usize)> = r["repetitions"][rep]["details"]["apply_log"]
                .as_str()
                .unwrap()
                .split(' ')
                .map(|e| {
                    let (c, b) = e.split_once('@').unwrap();
                    (c.parse().unwrap(), b.parse().unwrap())
                })
                .collect();
            assert_eq!(log.len(), 4 * k, "{}", describe(r));
            assert_eq!(metric(r, "updates_applied")[rep], (4 * k) as f64);
            let mut next = vec![0; k];
            for (v, &(c, b)) in log.iter().enumerate() {
                assert_eq!(b, next[c], "update {} of {log:?}", v + 1);
                next[c] = v + 1;
            }
            for c in 0..k {
                assert_eq!(log.iter().filter(|e| e.0 == c).count(), 4);
            }
            let stale: Vec<usize> = log.iter().enumerate().map(|(v, e)| v - e.1).collect();
            let mean = stale.iter().sum::<usize>() as f64 / stale.len() as f64;
            assert_eq!(metric(r, "staleness_mean")[rep], mean);
            let max = *stale.iter().max().unwrap();
            assert_eq!(metric(r, "staleness_max")[rep], max as f64);
            // Every client's first update starts from version 0, so with 3 clients the last of
            // them to arrive is at least 2 versions stale.
            if k == 3 {
                assert!(max >= 2, "{log:?}");
            }
            // One point per round's worth of updates (k per round), at rising wall times; the
            // last is the recorded final model.
            let rounds = triples(r, rep, "round_curve");
            assert_eq!(
                rounds.iter().map(|e| e.0).collect::<Vec<_>>(),
                vec![1.0, 2.0, 3.0, 4.0]
            );
            let times = triples(r, rep, "time_curve");
            assert!(times.windows(2).all(|w| w[0].0 <= w[1].0), "{times:?}");
            assert_eq!(
                times.iter().map(|e| (e.1, e.2)).collect::<Vec<_>>(),
                rounds.iter().map(|e| (e.1, e.2)).collect::<Vec<_>>()
            );
            assert_eq!(
                (rounds[3].1, rounds[3].2),
                (metric(r, "loss")[rep], metric(r, "accuracy")[rep])
            );
        }
        let rows = client_rows(r);
        assert_eq!(rows.iter().sum::<usize>(), 120);
        if r["point"]["params"]["quantity_skew"].as_f64() == Some(1.5) && k == 3 {
            let (min, max) = (rows.iter().min().unwrap(), rows.iter().max().unwrap());
            assert!(*max > 3 * *min, "{rows:?}");
        }
    }
    // One client (sync on 1 rank, async on 2: server and client), mixing = 1: each update
    // replaces the model, so async is local training, as synchronous FedAvg with one client is:
    // the same final model to the last bit.
    let one = study("one");
    assert_eq!(metric(one[0], "loss"), metric(one[1], "loss"));
    assert_eq!(metric(one[0], "accuracy"), metric(one[1], "accuracy"));
    assert_eq!(
        one.iter().map(|r| ranks(r)).collect::<Vec<_>>(),
        vec![1, 2],
        "sync on 1 rank, async on 2"
    );
    for r in &one {
        assert_eq!(client_rows(r), vec![120]);
    }
    // Quantity skew: unequal shards of the same 120 rows, verified against the simulation whose
    // average weighs each client by its rows; another model than equal shards give.
    let sized = study("sized");
    let skewed = sized
        .iter()
        .find(|r| r["point"]["params"]["quantity_skew"].as_f64() == Some(2.0))
        .unwrap();
    let rows = client_rows(skewed);
    assert_eq!(rows.iter().sum::<usize>(), 120);
    assert!(
        rows.iter().max().unwrap() > &(3 * rows.iter().min().unwrap()),
        "{rows:?}"
    );
    assert_ne!(metric(sized[0], "loss"), metric(sized[1], "loss"));
    assert_eq!(metric(skewed, "staleness_max"), vec![0.0, 0.0]);
}

/// The `apply_log` of a buffered point's repetition `rep`: one `; `-separated group per server
/// step, each a list of (client, base version).
fn apply_log(rec: &Value, rep: usize) -> Vec<Vec<(usize, usize)>> {
    let text = rec["repetitions"][rep]["details"]["apply_log"]
        .as_str()
        .unwrap_or_else(|| panic!("no apply_log in {}", describe(rec)));
    text.split("; ")
        .map(|step| {
            step.split(' ')
                .map(|e| {
                    let (c, b) = e.split_once('@').unwrap();
                    (c.parse().unwrap(), b.parse().unwrap())
                })
                .collect()
        })
        .collect()
}

#[test]
fn buffered_fedavg_replays_the_servers_log_bit_for_bit_at_3_and_4_ranks() {
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, code, out) = run_manifest(
        dir.path(),
        r#"
name = "fedbuff"
repetitions = 2
warmup = 0
timeout = "2m"

[[study]]
name = "buffered"
workload = "mpi.train"
oversubscribe = true
ranks = [3, 4]
strategy = "fedavg"
aggregation = "buffered"
buffer = [1, 2]
server_lr = 1.5
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 3
epochs = 1
quantity_skew = 1.0
stragglers = 0.5
straggler_ms = 2

[[study]]
name = "one"
workload = "mpi.train"
oversubscribe = true
ranks = [1, 2]
zip = ["ranks", "aggregation"]
strategy = "fedavg"
aggregation = ["sync", "buffered"]
buffer = 1
server_lr = 1.0
staleness_exponent = 0.0
dataset = "iris"
hidden = "8"
batch = 8
grain = 4
rounds = 4
"#,
    );
    assert_eq!(code, 0, "{out}");
    let all = records(&run_dir);
    assert_eq!(all.len(), 6);
    for r in &all {
        // "ok": on the server every version equals the replay of its arrival log; on every
        // client each model it was sent and its momentum.
        assert_eq!(r["status"], "ok", "{}", describe(r));
    }
    let study = |name: &str| {
        all.iter()
            .filter(move |r| r["point"]["study_name"] == name)
            .collect::<Vec<_>>()
    };
    let buffered = study("buffered");
    assert_eq!(buffered.len(), 4);
    for r in &buffered {
        let k = ranks(r) - 1;
        let m = r["point"]["params"]["buffer"].as_u64().unwrap() as usize;
        for rep in 0..2 {
            // Every client's 3 updates, M to a server step, the last step the rest.
            let steps = apply_log(r, rep);
            let u = 3 * k;
            assert_eq!(steps.len(), u.div_ceil(m), "{steps:?}");
            assert!(steps.iter().all(|s| !s.is_empty() && s.len() <= m));
            assert!(steps[..steps.len() - 1].iter().all(|s| s.len() == m));
            let log: Vec<(usize, usize)> = steps.concat();
            assert_eq!(log.len(), u);
            assert_eq!(metric(r, "updates_applied")[rep], u as f64);
            // Arrival i meets version ⌊i / M⌋; a client's base is the version the server held
            // when it took the client's previous update (0 for its first).
            let mut next = vec![0; k];
            let mut stale = Vec::new();
            for (i, &(c, b)) in log.iter().enumerate() {
                assert_eq!(b, next[c], "arrival {} of {steps:?}", i + 1);
                stale.push(i / m - b);
                next[c] = if i + 1 == u {
                    u.div_ceil(m)
                } else {
                    (i + 1) / m
                };
            }
            for c in 0..k {
                assert_eq!(log.iter().filter(|e| e.0 == c).count(), 3);
            }
            let mean = stale.iter().sum::<usize>() as f64 / u as f64;
            assert_eq!(metric(r, "staleness_mean")[rep], mean);
            assert_eq!(
                metric(r, "staleness_max")[rep],
                *stale.iter().max().unwrap() as f64
            );
            // A point per round's worth of updates at rising wall times; the last is the
            // recorded final model.
            let rounds = triples(r, rep, "round_curve");
            assert_eq!(
                rounds.iter().map(|e| e.0).collect::<Vec<_>>(),
                vec![1.0, 2.0, 3.0]
            );
            let times = triples(r, rep, "time_curve");
            assert!(times.windows(2).all(|w| w[0].0 <= w[1].0), "{times:?}");
            assert_eq!(
                (rounds[2].1, rounds[2].2),
                (metric(r, "loss")[rep], metric(r, "accuracy")[rep])
            );
        }
        assert_eq!(client_rows(r).iter().sum::<usize>(), 120);
    }
    // One client, M = 1, η = 1, a = 0: every update is fresh and the step w_b + (w_k − w_b) is
    // FedAsync's w_k with α = 1, i.e. local training, up to the rounding of the delta: the
    // final loss within 1e-9 of synchronous FedAvg on one client (itself local training).
    let one = study("one");
    assert_eq!(one.iter().map(|r| ranks(r)).collect::<Vec<_>>(), vec![1, 2]);
    for rep in 0..2 {
        let (sync, buffered) = (metric(one[0], "loss")[rep], metric(one[1], "loss")[rep]);
        assert!(
            (sync - buffered).abs() < 1e-9 * sync.abs(),
            "{sync} against {buffered}"
        );
        assert_eq!(
            metric(one[0], "accuracy")[rep],
            metric(one[1], "accuracy")[rep]
        );
    }
    assert_eq!(metric(one[1], "staleness_max"), vec![0.0, 0.0]);
}

/// `scalelab plan` on `text`: exit code and stderr.
fn plan(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "m.toml", text);
    let out = run(scalelab().arg("plan").arg(&m));
    (out.code, out.stderr.replace(&m.display().to_string(), "M"))
}

#[test]
fn bad_federated_options_are_refused_at_check_time_with_the_fix() {
    let study = |extra: &str| {
        format!(
            "name = \"bad\"\n[[study]]\nname = \"s\"\nworkload = \"mpi.train\"\noversubscribe = \
             true\nranks = 4\nstrategy = \"fedavg\"\n{extra}\n"
        )
    };
    for (extra, want) in [
        (
            "skew = 1.5",
            "mpi.train: skew = 1.5: the label skew is the share of each client's rows drawn \
             from its own classes; use a value in [0, 1] (0 = IID, 1 = each client sees only its \
             own classes)",
        ),
        (
            "drop = 1.0",
            "mpi.train: drop = 1 with 4 clients drops ⌊1 × 4⌋ = 4 clients every round, so no \
             client reports and the server has nothing to average; use drop < 1 (e.g. drop = \
             0.75 drops 3 of 4)",
        ),
        (
            "stragglers = -0.5",
            "mpi.train: stragglers = -0.5: the share of clients slowed in a round must be in [0, \
             1]; use e.g. stragglers = 0.25",
        ),
        (
            "quantity_skew = -1.0",
            "mpi.train: quantity_skew = -1: the quantity skew is the exponent a of the clients' \
             power-law shares of the rows",
        ),
        (
            "aggregation = \"async\"\nmixing = 1.5",
            "mpi.train: mixing = 1.5: the asynchronous server mixes an arriving model in as \
             w ← (1 − α·s(τ))·w + α·s(τ)·w_k, so α must be in (0, 1]; use e.g. mixing = 0.6",
        ),
        (
            "aggregation = \"async\"\nstragglers = 0.25\nstraggler_policy = \"skip\"",
            "mpi.train: straggler_policy = \"skip\" with aggregation = \"async\": the \
             asynchronous server never closes a round",
        ),
        (
            "aggregation = \"buffered\"\nbuffer = 4",
            "mpi.train: buffer = 4 with 3 clients: the buffered server steps once it holds M \
             client updates, and M must be from 1 to the client count",
        ),
        (
            "aggregation = \"buffered\"\nbuffer = 0",
            "study 1 (s): `buffer` must be a positive whole number, found 0",
        ),
        (
            "aggregation = \"buffered\"\nserver_lr = -1.0",
            "mpi.train: server_lr = -1: the buffered server steps",
        ),
        (
            "aggregation = \"buffered\"\nstragglers = 0.25\nstraggler_policy = \"skip\"",
            "mpi.train: straggler_policy = \"skip\" with aggregation = \"buffered\": the \
             buffered server never closes a round",
        ),
        (
            "batch = 20",
            "mpi.train: the global batch of 20 samples is not divisible by micro-batches × \
             grain = 1 × 8 = 8",
        ),
    ] {
        let (code, err) = plan(&study(extra));
        assert_eq!(code, 2, "{extra}: {err}");
        assert!(err.contains(want), "{extra}: {err}");
    }
    // Three clients are fine for FedAvg (no reduction tree), not for sharded.
    let (code, err) = plan(&study("ranks = 3").replace("ranks = 4\n", ""));
    assert_eq!(code, 0, "{err}");
    let (code, err) = plan(
        &study("ranks = 3")
            .replace("ranks = 4\n", "")
            .replace("fedavg", "sharded"),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("mpi.train: 3 ranks: the fixed reduction tree halves the global batch"));
}

#[test]
fn per_layer_units_for_a_strategy_without_units_are_refused_at_check_time_with_the_fix() {
    let study = |strategy: &str, units: &str| {
        format!(
            "name = \"bad\"\n[[study]]\nname = \"s\"\nworkload = \"mpi.train\"\nranks = \
             2\nstrategy = {strategy}\nunits = \"{units}\"\n"
        )
    };
    let (code, err) = plan(&study("\"sharded\"", "layer"));
    assert_eq!(code, 0, "{err}");
    let (code, err) = plan(&study("[\"ddp\", \"sharded\"]", "layer"));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "mpi.train: units = \"layer\" with strategy = \"ddp\": FSDP units are how sharded \
             gathers and frees the parameters; ddp keeps them whole and has no units; use \
             strategy = \"sharded\", or leave units at \"model\""
        ),
        "{err}"
    );
    let (code, err) = plan(&study("\"sharded\"", "layers"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("model") && err.contains("layer"), "{err}");
}

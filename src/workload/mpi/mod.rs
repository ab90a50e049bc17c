//! Adapters from the MPI kernels of `scalelab_kernels::mpi` to [`Workload`]: `mpi.pingpong`,
//! `mpi.allreduce`, `mpi.bcast`, `mpi.allgather`, `mpi.stencil`, `mpi.gemm` and `mpi.pi`.
//!
//! These workloads exist only in builds with the `mpi` feature; their descriptions (this file) are
//! in every build, so that any build lists them as gated and reports their records alike. The
//! code is in `adapters.rs`. The point runner calls
//! [`Workload::prepare_mpi`] on every rank (inside the rank's rayon pool), times `run` between
//! barriers, and combines the ranks: the time and every metric are the maximum over ranks, and a
//! repetition verifies only if `verify` passes on every rank. So each instance verifies its own
//! part, exactly or within a stated rounding bound, and poisons it afterwards (like the rayon
//! adapters) so that the next repetition is checked on values it produced itself:
//!
//! * ping-pong: the last message each of ranks 0 and 1 received holds the peer's byte pattern of the
//!   last iteration's parity;
//! * collectives: every received value exactly (integer-valued doubles, so sums are exact);
//! * stencil: the rank's block bitwise against the serial reference, computed on rank 0 in
//!   `prepare_mpi` and sent to each rank;
//! * DGEMM: Freivalds' check of the rank's block of C against `A·(B·x)` computed in `prepare_mpi`;
//! * π: rank 0's total hit count against the serial count computed in `prepare_mpi`.
//!
//! Metrics: `latency_us` (ping-pong: one-way time per message; collectives: time per call),
//! `busbw_gbs` (collectives: nccl-tests' bus bandwidth, which needs the rank count that `work` does
//! not see), `comm_s` and `compute_s` (stencil and DGEMM: time in communication and in computation).
//!
//! Plain [`Workload::prepare`] (a point not launched under MPI) is an error that says so.

use super::{training, Backend, Description, ParamKind, ParamSpec, Params, Reporting, WeakRule};
use crate::value::Value;

#[cfg(feature = "mpi")]
mod adapters;
#[cfg(feature = "mpi")]
pub use adapters::{Collective, Gemm, Pi, PingPong, Stencil};
#[cfg(feature = "mpi")]
mod train;
#[cfg(feature = "mpi")]
pub use train::Train;

const PINGPONG_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "8B",
        doc: "message bytes (\"8B\", \"4MiB\"; a plain count means bytes too)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "1000",
        doc: "round trips per repetition (OSU: 10000 up to 8 KiB, 1000 above)",
    },
];

const COLLECTIVE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "8KiB",
        doc: "message bytes per rank (\"8B\", \"1MiB\"; a plain count means bytes too), sent as \
              size/8 doubles (at least one)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "100",
        doc: "calls of the collective per repetition",
    },
];

const STENCIL_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "1024",
        doc: "global grid side n (a count), or bytes of one n × n f64 grid (\"8MiB\" = 1024)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "100",
        doc: "sweeps per repetition (a halo exchange before each)",
    },
];

const GEMM_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "size",
    kind: ParamKind::Size,
    default: "1024",
    doc: "matrix order n, or bytes of one n × n f64 matrix (\"8MiB\" = 1024)",
}];

const PI_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "10M",
        doc: "number of samples (a count, e.g. \"100M\")",
    },
    ParamSpec {
        name: "seed",
        kind: ParamKind::Int,
        default: "42",
        doc: "random seed, as for pi.montecarlo (same estimate at any ranks × threads)",
    },
];

/// `mpi.pingpong`: ranks 0 and 1 exchange `size`-byte messages `iterations` times.
pub const PINGPONG: Description = Description::new(
    "mpi.pingpong",
    "MPI ping-pong between ranks 0 and 1 (OSU latency / IMB PingPong; 2·size bytes per round trip)",
    Backend::Mpi,
    PINGPONG_PARAMS,
)
.size_unit("bytes")
.reporting(Reporting::MESSAGES);

/// `mpi.allreduce`, `mpi.bcast`, `mpi.allgather`: one collective `iterations` times on `size`
/// bytes per rank.
pub const ALLREDUCE: Description = Description::new(
    "mpi.allreduce",
    "MPI_Allreduce (sum of doubles), exact check; bytes = message per call (algbw)",
    Backend::Mpi,
    COLLECTIVE_PARAMS,
)
.size_unit("bytes")
.reporting(Reporting::MESSAGES);
pub const BCAST: Description = Description::new(
    "mpi.bcast",
    "MPI_Bcast from rank 0, exact check; bytes = message per call (algbw)",
    Backend::Mpi,
    COLLECTIVE_PARAMS,
)
.size_unit("bytes")
.reporting(Reporting::MESSAGES);
pub const ALLGATHER: Description = Description::new(
    "mpi.allgather",
    "MPI_Allgather, exact check; bytes = each rank's contribution per call (algbw)",
    Backend::Mpi,
    COLLECTIVE_PARAMS,
)
.size_unit("bytes")
.reporting(Reporting::MESSAGES);

/// `mpi.stencil`: Jacobi sweeps on a grid split in 2-D blocks over the ranks.
pub const STENCIL: Description = Description::new(
    "mpi.stencil",
    "2-D Jacobi, 2-D Cartesian blocks, halo exchange overlapped with the interior (MPI × rayon)",
    Backend::Mpi,
    STENCIL_PARAMS,
)
.size_unit("grid side")
.weak_rule(WeakRule::Sqrt);

/// `mpi.gemm`: SUMMA on a 2-D process grid.
pub const GEMM: Description = Description::new(
    "mpi.gemm",
    "distributed DGEMM C = A·B, SUMMA on a 2-D process grid, tuned local kernel (2n³ flops)",
    Backend::Mpi,
    GEMM_PARAMS,
)
.size_unit("n")
.weak_rule(WeakRule::Cbrt);

/// `mpi.pi`: Monte Carlo π over ranks and threads.
pub const PI: Description = Description::new(
    "mpi.pi",
    "Monte Carlo π, chunks split over ranks and threads, MPI_Reduce of the hits (3 flops/sample)",
    Backend::Mpi,
    PI_PARAMS,
)
.size_unit("samples");

/// The strategies of `mpi.train` (docs/training.md).
pub const TRAIN_STRATEGIES: &[&str] = &["ddp", "accumulate", "pipeline", "sharded", "fedavg"];

/// The `schedule` axis of `mpi.train`'s pipeline (`scalelab_ml::mlp::pipeline::PipeSchedule`).
pub const TRAIN_PIPE_SCHEDULES: &[&str] = &["gpipe", "1f1b"];

const TRAIN_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "strategy",
        kind: ParamKind::Choice(TRAIN_STRATEGIES),
        default: "ddp",
        doc: "ddp: each rank a replica and a shard of every global batch, gradients summed over \
              the ranks once per step; accumulate: the same, each rank's shard in `micro` \
              micro-batches whose gradients are accumulated before the one reduction; \
              pipeline: the layers split over the ranks (stages), `micro` micro-batches per \
              global batch flowing through them GPipe style; sharded: ZeRO-3 / FSDP, the \
              parameters and momentum of each FSDP unit (`units`) in one chunk per rank, \
              allgather before compute and reduce-scatter after; fedavg: one client per rank \
              training locally for `epochs` on a non-IID shard, the server averaging after each \
              of `rounds`",
    },
    ParamSpec {
        name: "allreduce",
        kind: ParamKind::Choice(scalelab_ml::mlp::ddp::Allreduce::NAMES),
        default: "tree",
        doc: "how the ranks' gradients are summed: tree (recursive doubling in the fixed tree's \
              order), ring (reduce-scatter + allgather, the reference follows its order) or mpi \
              (MPI_Allreduce: the library's order, checked within a tolerance)",
    },
    ParamSpec {
        name: "overlap",
        kind: ParamKind::Choice(&["off", "on"]),
        default: "off",
        doc: "off: one allreduce after backward; on: DDP's bucketed allreduce, each bucket \
              started (non-blocking) as soon as backward has produced its gradients",
    },
    ParamSpec {
        name: "bucket",
        kind: ParamKind::Size,
        default: "64KiB",
        doc: "bucket capacity with overlap = \"on\" (PyTorch's bucket_cap_mb): bytes (\"64KiB\") \
              or a count of gradients",
    },
    ParamSpec {
        name: "units",
        kind: ParamKind::Choice(scalelab_ml::mlp::sharded::Units::NAMES),
        default: "model",
        doc: "sharded: the FSDP units the parameters are gathered and freed in: model (the \
              whole model gathered once per step) or layer (one unit per layer: gathered just \
              before it runs, the next layer prefetched, freed after, each layer's gradient \
              reduce-scattered as soon as backward has made it; docs/training.md)",
    },
    ParamSpec {
        name: "no_sync",
        kind: ParamKind::Choice(&["off", "on"]),
        default: "off",
        doc: "sharded with micro > 1: off reduce-scatters every micro-batch's gradient and \
              accumulates the rank's chunk (what FSDP does when backward runs micro times \
              before the optimizer step: less memory, micro reduce-scatters); on keeps the \
              whole gradient locally over the micro-batches, FSDP's no_sync(), and \
              reduce-scatters once after the last (one reduce-scatter, a whole gradient held; \
              docs/training.md)",
    },
    training::DATASET,
    training::TARGET,
    training::SIZE,
    training::FEATURES,
    training::CLASSES,
    training::HIDDEN,
    ParamSpec {
        name: "batch",
        kind: ParamKind::Int,
        default: "256",
        doc: "global batch: samples per optimizer step over all ranks (a multiple of ranks × \
              micro × grain)",
    },
    training::GRAIN,
    ParamSpec {
        name: "micro",
        kind: ParamKind::Int,
        default: "4",
        doc: "micro-batches per rank and step for `accumulate` and `sharded` (gradient \
              accumulation; for sharded see `no_sync`), per global batch for `pipeline` (a \
              power of two; ddp uses one)",
    },
    ParamSpec {
        name: "schedule",
        kind: ParamKind::Choice(TRAIN_PIPE_SCHEDULES),
        default: "gpipe",
        doc: "order of a pipeline stage's passes: gpipe (all forwards, then all backwards) or \
              1f1b (one forward, one backward: fewer activations held); other strategies \
              ignore it",
    },
    ParamSpec {
        name: "virtual",
        kind: ParamKind::Int,
        default: "1",
        doc: "model chunks per pipeline stage (Megatron-LM's virtual pipeline stages): 1 gives \
              each rank one contiguous block of layers; v > 1 cuts the model into ranks × v \
              chunks, rank r holding chunks r, r + ranks, … (interleaved: a bubble v times \
              smaller, v times the messages; micro a multiple of ranks)",
    },
    ParamSpec {
        name: "recompute",
        kind: ParamKind::Choice(&["off", "on"]),
        default: "off",
        doc: "pipeline activation re-materialisation: on keeps only each stage chunk's input per \
              micro-batch in flight and runs the chunk's forward again in the backward pass \
              (fewer activation bytes, one more forward; the same weights)",
    },
    training::STEPS,
    training::LR,
    training::MOMENTUM,
    training::SEED,
    ParamSpec {
        name: "rounds",
        kind: ParamKind::Int,
        default: "10",
        doc: "fedavg: communication rounds per repetition (local training, then the server's \
              average)",
    },
    ParamSpec {
        name: "epochs",
        kind: ParamKind::Int,
        default: "1",
        doc: "fedavg: local epochs E per round over the client's shard, minibatches of `batch`",
    },
    ParamSpec {
        name: "skew",
        kind: ParamKind::Float,
        default: "0",
        doc: "fedavg: label skew in [0, 1], the share of each client's rows drawn from its own \
              classes (0 = IID, 1 = only its own classes; docs/training.md)",
    },
    ParamSpec {
        name: "quantity_skew",
        kind: ParamKind::Float,
        default: "0",
        doc: "fedavg: quantity skew a ≥ 0, the exponent of the clients' power-law shares of the \
              rows (∝ 1, 2^−a, 3^−a, … over a seeded ranking; 0 = equal shares; \
              docs/training.md)",
    },
    ParamSpec {
        name: "drop",
        kind: ParamKind::Float,
        default: "0",
        doc: "fedavg: share of clients that do not report in a round (⌊drop · clients⌋, a \
              seeded draw per round), left out of the average",
    },
    ParamSpec {
        name: "stragglers",
        kind: ParamKind::Float,
        default: "0",
        doc: "fedavg: share of the reporting clients slowed by `straggler_ms` in a round (a \
              seeded draw per round); the server waits for them",
    },
    ParamSpec {
        name: "straggler_ms",
        kind: ParamKind::Float,
        default: "0",
        doc: "fedavg: a straggler's simulated delay per round, in milliseconds",
    },
    ParamSpec {
        name: "straggler_policy",
        kind: ParamKind::Choice(&["wait", "skip"]),
        default: "wait",
        doc: "fedavg: wait (the synchronous server waits for stragglers) or skip (the server \
              closes the round at a deadline; stragglers train but their late models are \
              discarded)",
    },
    ParamSpec {
        name: "aggregation",
        kind: ParamKind::Choice(&["sync", "async", "buffered"]),
        default: "sync",
        doc: "fedavg: sync (FedAvg: each round waits for the clients, then averages them), \
              async (FedAsync: rank 0 is the server, ranks 1 … K the clients, and it mixes each \
              client's model in as it arrives, weighted by \
              mixing · (1 + staleness)^−staleness_exponent) or buffered (FedBuff: the same \
              placement; the server buffers each client's delta, weighted by \
              (1 + staleness)^−staleness_exponent, and steps by server_lr times their mean once \
              `buffer` have arrived)",
    },
    ParamSpec {
        name: "mixing",
        kind: ParamKind::Float,
        default: "0.6",
        doc: "fedavg, async: α in (0, 1], the weight of a fresh client model in \
              w ← (1 − α·s(τ))·w + α·s(τ)·w_k",
    },
    ParamSpec {
        name: "staleness_exponent",
        kind: ParamKind::Float,
        default: "0.5",
        doc: "fedavg, async and buffered: a ≥ 0 in the staleness weight s(τ) = (1 + τ)^−a, τ \
              the versions the server moved on while the client trained (0 ignores staleness)",
    },
    ParamSpec {
        name: "buffer",
        kind: ParamKind::Int,
        default: "2",
        doc: "fedavg, buffered: M, the client updates the server buffers per step, 1 to the \
              client count (1 steps on every arrival; the run's last update closes a partial \
              buffer)",
    },
    ParamSpec {
        name: "server_lr",
        kind: ParamKind::Float,
        default: "1",
        doc: "fedavg, buffered: η > 0, the server learning rate of the step \
              w ← w + η · Σ s(τ_i)·Δ_i / M over the buffered deltas Δ_i = w_i − w_base (1 adds \
              their weighted mean)",
    },
    training::PRECISION,
    training::LOSS_SCALE,
    training::GROWTH_INTERVAL,
];

/// `mpi.train`: data-parallel MLP training over MPI ranks (src/workload/mpi/train.rs), described
/// in every build.
pub const TRAIN: Description = Description::new(
    "mpi.train",
    "MLP trained over MPI ranks (ddp, accumulate, pipeline, sharded ZeRO-3, fedavg), bitwise \
     the serial reference; work: training FLOPs, metric samples_per_s",
    Backend::Mpi,
    TRAIN_PARAMS,
)
.size_unit("samples")
.weak_param("batch")
.applies(train_param_applies)
.uses_gpus();

/// Whether parameter `key` means anything for an `mpi.train` point: the synthetic-data settings
/// only with the synthetic dataset, `target` only with a CSV file, and each strategy's own
/// settings only with that strategy (`micro` where micro-batches are accumulated or pipelined,
/// `no_sync` for sharded's accumulation, the allreduce variants for the
/// data-parallel strategies that reduce gradients, `bucket` only when buckets overlap backward,
/// `schedule` for the pipeline, the federated settings for `fedavg`, which counts rounds and
/// epochs instead of `steps`, and each federated server's own settings with that server).
fn train_param_applies(params: &Params, key: &str) -> bool {
    if let Some(applies) = super::ml::dataset_param_applies(params, key) {
        return applies;
    }
    let text = |k: &str| match params.get(k) {
        Some(Value::Text(t)) => t.as_str(),
        _ => "",
    };
    let number = |k: &str| match params.get(k) {
        Some(Value::Int(i)) => *i as f64,
        Some(Value::Float(f)) => *f,
        _ => f64::NAN,
    };
    let strategy = text("strategy");
    // Reduced precision is emulated for ddp and accumulate only (the others refuse it).
    let emulated = matches!(strategy, "ddp" | "accumulate");
    if let Some(applies) = training::precision_param_applies(params, key, emulated) {
        return applies;
    }
    match key {
        "micro" => matches!(strategy, "accumulate" | "pipeline" | "sharded"),
        // One micro-batch is the same step either way.
        "no_sync" => strategy == "sharded" && number("micro") > 1.0,
        "allreduce" | "overlap" => matches!(strategy, "ddp" | "accumulate"),
        "bucket" => matches!(strategy, "ddp" | "accumulate") && text("overlap") == "on",
        "schedule" | "virtual" | "recompute" => strategy == "pipeline",
        "units" => strategy == "sharded",
        "steps" => strategy != "fedavg",
        "rounds" | "epochs" | "skew" | "quantity_skew" | "drop" | "stragglers" | "aggregation" => {
            strategy == "fedavg"
        }
        // How late a straggler is and what the server does about it mean nothing without one;
        // the asynchronous servers (async, buffered) never wait, so they have no policy.
        "straggler_ms" => strategy == "fedavg" && number("stragglers") != 0.0,
        "straggler_policy" => {
            strategy == "fedavg"
                && number("stragglers") != 0.0
                && !matches!(text("aggregation"), "async" | "buffered")
        }
        "mixing" => strategy == "fedavg" && text("aggregation") == "async",
        "staleness_exponent" => {
            strategy == "fedavg" && matches!(text("aggregation"), "async" | "buffered")
        }
        "buffer" | "server_lr" => strategy == "fedavg" && text("aggregation") == "buffered",
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micro_batches_apply_where_they_are_accumulated_and_data_settings_to_synthetic_data() {
        let params = |strategy: &str, dataset: &str| {
            Params(
                [
                    ("strategy", Value::Text(strategy.into())),
                    ("dataset", Value::Text(dataset.into())),
                    ("micro", Value::Int(4)),
                    ("features", Value::Int(32)),
                ]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            )
        };
        let applies = |p: &Params, key| crate::workload::param_applies("mpi.train", p, key);
        assert!(!applies(&params("ddp", "synthetic"), "micro"));
        assert!(applies(&params("accumulate", "synthetic"), "micro"));
        assert!(applies(&params("pipeline", "synthetic"), "micro"));
        assert!(applies(&params("sharded", "synthetic"), "micro"));
        assert!(applies(&params("sharded", "synthetic"), "no_sync"));
        assert!(!applies(&params("accumulate", "synthetic"), "no_sync"));
        let mut one = params("sharded", "synthetic");
        one.0.insert("micro".into(), Value::Int(1));
        assert!(
            !applies(&one, "no_sync"),
            "one micro-batch: the same step either way"
        );
        assert!(applies(&params("fedavg", "synthetic"), "skew"));
        assert!(!applies(&params("ddp", "synthetic"), "skew"));
        assert!(!applies(&params("fedavg", "synthetic"), "steps"));
        assert!(!applies(&params("sharded", "synthetic"), "allreduce"));
        assert!(applies(&params("sharded", "synthetic"), "units"));
        assert!(!applies(&params("ddp", "synthetic"), "units"));
        assert!(!applies(&params("ddp", "synthetic"), "bucket"));
        assert!(applies(&params("ddp", "synthetic"), "features"));
        assert!(!applies(&params("ddp", "digits"), "features"));
        assert!(applies(&params("ddp", "digits"), "batch"));
        // The label column names a column of a CSV dataset only, whose shape replaces the
        // synthetic settings.
        assert!(applies(&params("ddp", "data/classes.csv"), "target"));
        assert!(!applies(&params("ddp", "data/classes.csv"), "features"));
        assert!(!applies(&params("ddp", "synthetic"), "target"));
        assert!(!applies(&params("ddp", "iris"), "target"));
        // A straggler's delay and policy apply once there are stragglers.
        let mut fed = params("fedavg", "synthetic");
        for (stragglers, shown) in [(0.0, false), (0.25, true)] {
            fed.0.insert("stragglers".into(), Value::Float(stragglers));
            assert_eq!(applies(&fed, "straggler_ms"), shown);
            assert_eq!(applies(&fed, "straggler_policy"), shown);
            assert!(applies(&fed, "stragglers"));
        }
        // Precision where it is emulated; the loss scale in a reduced format; its growth
        // interval where the scale is dynamic.
        let with = |strategy: &str, precision: &str, loss_scale: &str| {
            let mut p = params(strategy, "synthetic");
            p.0.insert("precision".into(), Value::Text(precision.into()));
            p.0.insert("loss_scale".into(), Value::Text(loss_scale.into()));
            p
        };
        let shown =
            |p: &Params| ["precision", "loss_scale", "growth_interval"].map(|k| applies(p, k));
        assert_eq!(shown(&with("fedavg", "fp64", "auto")), [false; 3]);
        assert_eq!(shown(&with("ddp", "fp64", "auto")), [true, false, false]);
        assert_eq!(shown(&with("ddp", "bf16", "auto")), [true, true, false]);
        assert_eq!(shown(&with("accumulate", "fp16", "auto")), [true; 3]);
        assert_eq!(shown(&with("ddp", "bf16", "dynamic")), [true; 3]);
        assert_eq!(shown(&with("ddp", "fp16", "1024")), [true, true, false]);
    }
}

//! Synthetic records for the tests of the report and its children: ok, failed, MPI and
//! metric-carrying points built in code, so that every table and plot can be checked against
//! known numbers.

use crate::plan::{Point, Resources, Scaling};
use crate::results::{PointRecord, Repetition, Status};
use crate::value::{Size, Value};
use crate::workload::{Backend, Params, Work};

/// An ok record of `workload` at `threads` threads and size `n` with the given repetition
/// times. `stream.*` workloads count 2n FLOP and 24n bytes (memory-bound, size in elements);
/// others 2n³ FLOP and 24n² bytes (a GEMM, size in `n`).
pub fn record(
    study: usize,
    workload: &str,
    scaling: Scaling,
    threads: u32,
    n: u64,
    times: &[f64],
) -> PointRecord {
    let mut params = Params::default();
    params
        .0
        .insert("variant".into(), Value::Text("tuned".into()));
    params.0.insert("size".into(), Value::Size(Size::Count(n)));
    let stream = workload.starts_with("stream");
    let nf = n as f64;
    let (work, unit) = if stream {
        (
            Work {
                flops: 2.0 * nf,
                bytes: 24.0 * nf,
            },
            "elements",
        )
    } else {
        (
            Work {
                flops: 2.0 * nf.powi(3),
                bytes: 24.0 * nf * nf,
            },
            "n",
        )
    };
    PointRecord {
        point: Point {
            id: format!("{study}{}t{threads}n{n}", &workload[..2]),
            study,
            study_name: format!("{workload} {}", scaling.as_str()),
            workload: workload.into(),
            scaling,
            resources: Resources {
                threads,
                ..Resources::default()
            },
            params,
            repetitions: times.len() as u32,
            warmup: 1,
            timeout_s: 60.0,
            oversubscribed: false,
            data: None,
        },
        status: Status::Ok,
        reason: String::new(),
        repetitions: times
            .iter()
            .map(|&seconds| Repetition {
                seconds,
                verified: true,
                metrics: Default::default(),
                details: Default::default(),
            })
            .collect(),
        work,
        size: n,
        size_unit: unit.into(),
        backend: Some(Backend::Rayon),
        host: "testhost".into(),
        started: "2025-01-01T00:00:00Z".into(),
        finished: "2025-01-01T00:00:01Z".into(),
        slurm: Default::default(),
        rank_hosts: Vec::new(),
        load: None,
        devices: Vec::new(),
    }
}

/// A point that timed out before any repetition.
pub fn failed(
    study: usize,
    workload: &str,
    scaling: Scaling,
    threads: u32,
    n: u64,
    reason: &str,
) -> PointRecord {
    let mut r = record(study, workload, scaling, threads, n, &[]);
    r.status = Status::Timeout;
    r.reason = reason.into();
    r
}

/// `rec` with metric `name` set on its repetitions, `values[i]` on repetition i (repetitions
/// beyond `values` keep no value for it).
pub fn with_metric(mut rec: PointRecord, name: &str, values: &[f64]) -> PointRecord {
    for (r, v) in rec.repetitions.iter_mut().zip(values) {
        r.metrics.insert(name.into(), *v);
    }
    rec
}

/// An ok record of an MPI workload (`mpi.pingpong`, `mpi.allreduce`, `mpi.stencil`, ...) at
/// `ranks` × `threads` with the given repetition times. Communication workloads
/// (`mpi.pingpong` and the collectives) take `size` as message bytes and count
/// 2 · size · iterations bytes; `mpi.stencil` counts a grid of side `size` (8 bytes and
/// 5 FLOP per cell and iteration); the rest 2n³ FLOP.
pub fn mpi_record(
    study: usize,
    workload: &str,
    ranks: u32,
    threads: u32,
    size: u64,
    iterations: u64,
    times: &[f64],
) -> PointRecord {
    let mut r = record(study, workload, Scaling::Strong, threads, size, times);
    r.point.resources.ranks = ranks;
    r.point.id = format!("{study}r{ranks}t{threads}s{size}");
    r.point.study_name = workload.trim_start_matches("mpi.").to_string();
    r.point.params.0.remove("variant");
    r.point
        .params
        .0
        .insert("iterations".into(), Value::Int(iterations));
    r.backend = Some(Backend::Mpi);
    let (s, it) = (size as f64, iterations as f64);
    let comm = !matches!(workload, "mpi.stencil" | "mpi.gemm" | "mpi.pi");
    if comm {
        r.point
            .params
            .0
            .insert("size".into(), Value::Size(Size::Bytes(size)));
        r.work = Work {
            flops: 0.0,
            bytes: 2.0 * s * it,
        };
        r.size_unit = "bytes".into();
    } else if workload == "mpi.stencil" {
        r.work = Work {
            flops: 5.0 * s * s * it,
            bytes: 8.0 * s * s * it,
        };
        r.size_unit = "grid side".into();
    }
    r
}

/// `rec` with the machine load of a 10 s run on 2 cores beside other work that kept `other`
/// cores busy (disturbed above 0.2 cores for a 2-thread point, above 1.1 for a 1-thread one).
pub fn with_load(mut rec: PointRecord, other: f64) -> PointRecord {
    let needed = rec.point.resources.threads.min(2);
    rec.load = Some(crate::load::MachineLoad {
        sampled_by: "parent".into(),
        seconds: 10.0,
        cores: 2,
        cores_needed: needed,
        other_cores: other,
        point_cores: needed as f64,
        steal_share: 0.0,
        runnable_mean: needed as f64 + other,
        runnable_max: needed + other.ceil() as u32,
        loadavg_1m: other,
        clock_mhz: Some(2600.0),
    });
    rec
}

/// `rec` with one more text parameter.
pub fn with_param(mut rec: PointRecord, name: &str, text: &str) -> PointRecord {
    rec.point
        .params
        .0
        .insert(name.into(), Value::Text(text.into()));
    rec
}

//! What the report adds for MPI studies: message-size curves (latency and bandwidth against the
//! message size) for communication workloads, and the communication share of workloads that time
//! their halo exchange.
//!
//! **Message-size studies.** A study is one when its workload's `size` is a message size: the
//! workload declares it (`Reporting::message_sizes`: `mpi.pingpong` and the collectives
//! `mpi.allreduce`, `mpi.bcast`, `mpi.allgather`), or it is any other MPI workload whose
//! repetitions record a `latency_us` metric. For each ok point:
//!
//! * latency, µs: the median of its `latency_us` metric when recorded (the ping-pong's one-way
//!   latency), else median seconds / `iterations` (the time of one operation);
//! * bandwidth, GB/s: the workload's bytes / median seconds (decimal GB). The ping-pong counts
//!   2 · size · iterations bytes, so this is size / one-way time, hpcc's and the OSU benchmarks'
//!   convention.
//!
//! Points are grouped into lines by their resources and every parameter but `size` and
//! `iterations` (one line per rank count, say).
//!
//! **Communication share.** A point whose repetitions record `comm_s` has a communication share
//! of median `comm_s` / median seconds; with `compute_s` the report also plots both against p,
//! and `wait_s` (blocked on a slower rank or a pipeline neighbour, which workloads that record it
//! keep out of `comm_s`) beside them.

use std::collections::BTreeMap;

use super::csv::{metric_median, rate};
use super::scaling::{resources_label, Series};
use crate::results::PointRecord;
use crate::value::Value;
use crate::workload::Backend;

/// Metric holding the one-way latency in microseconds.
pub const LATENCY_METRIC: &str = "latency_us";
/// Metric holding the communication seconds of a repetition.
pub const COMM_METRIC: &str = "comm_s";
/// Metric holding the computation seconds of a repetition.
pub const COMPUTE_METRIC: &str = "compute_s";
/// Metric holding the seconds a rank waited for another (kept out of `comm_s` where recorded).
pub const WAIT_METRIC: &str = "wait_s";

/// Whether `rec` records metric `name` in any repetition.
pub fn has_metric(rec: &PointRecord, name: &str) -> bool {
    rec.repetitions.iter().any(|r| r.metrics.contains_key(name))
}

/// Whether the study of these series measures messages (see the module documentation).
pub fn is_message_study(series: &[&Series<'_>]) -> bool {
    series.iter().any(|s| {
        crate::workload::reporting(&s.workload).message_sizes
            || s.points.iter().any(|p| {
                p.record.backend == Some(Backend::Mpi) && has_metric(p.record, LATENCY_METRIC)
            })
    })
}

/// One point of a message-size curve.
#[derive(Clone, Debug)]
pub struct MessagePoint<'a> {
    pub record: &'a PointRecord,
    /// The line it belongs to: resources and fixed parameters, e.g. `ranks=2 threads=1`.
    pub line: String,
    /// Message size, bytes.
    pub size: u64,
    /// Median latency, µs, and its range over the repetitions (low, high).
    pub latency_us: f64,
    pub latency_range: (f64, f64),
    /// Whether the latency is the recorded `latency_us` metric (else time per iteration).
    pub from_metric: bool,
    /// Bandwidth from the median time, GB/s, and its range (from the slowest and the fastest
    /// repetition); `None` when the workload counts no bytes.
    pub bandwidth_gbps: Option<f64>,
    pub bandwidth_range: Option<(f64, f64)>,
}

fn iterations(rec: &PointRecord) -> Option<f64> {
    match rec.point.params.get("iterations") {
        Some(Value::Int(n)) if *n > 0 => Some(*n as f64),
        Some(Value::Float(x)) if *x > 0.0 => Some(*x),
        Some(Value::Size(s)) if s.value() > 0 => Some(s.value() as f64),
        _ => None,
    }
}

fn line_label(rec: &PointRecord) -> String {
    let mut parts = vec![resources_label(&rec.point.resources)];
    let variant = rec.point.params.variant();
    if !variant.is_empty() {
        parts.push(format!("variant={variant}"));
    }
    parts.extend(
        rec.point
            .params
            .0
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "size" | "variant" | "iterations"))
            .map(|(k, v)| format!("{k}={v}")),
    );
    if rec.point.oversubscribed {
        parts.push("⚠ oversubscribed".into());
    }
    parts.join(" ")
}

/// The message-size points of a study's series, sorted by line (first appearance) and size.
pub fn message_points<'a>(series: &[&Series<'a>]) -> Vec<MessagePoint<'a>> {
    let mut out: Vec<MessagePoint<'a>> = Vec::new();
    let mut order: BTreeMap<String, usize> = BTreeMap::new();
    for s in series {
        for p in &s.points {
            let rec = p.record;
            let line = line_label(rec);
            let n = order.len();
            order.entry(line.clone()).or_insert(n);
            let lat: Vec<f64> = rec
                .repetitions
                .iter()
                .filter_map(|r| r.metrics.get(LATENCY_METRIC).copied())
                .filter(|v| v.is_finite() && *v > 0.0)
                .collect();
            let (latency_us, latency_range, from_metric) = match metric_median(rec, LATENCY_METRIC)
            {
                Some(m) if !lat.is_empty() => {
                    let lo = lat.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = lat.iter().copied().fold(0.0, f64::max);
                    (m, (lo, hi), true)
                }
                _ => {
                    let per = iterations(rec).unwrap_or(1.0);
                    let us = |t: f64| t / per * 1e6;
                    (
                        us(p.summary.median),
                        (us(p.summary.min), us(p.summary.max)),
                        false,
                    )
                }
            };
            let bytes = rec.work.bytes;
            out.push(MessagePoint {
                record: rec,
                line,
                size: rec.size,
                latency_us,
                latency_range,
                from_metric,
                bandwidth_gbps: rate(bytes, p.summary.median),
                bandwidth_range: rate(bytes, p.summary.max).zip(rate(bytes, p.summary.min)),
            });
        }
    }
    out.sort_by(|a, b| {
        order[&a.line]
            .cmp(&order[&b.line])
            .then(a.size.cmp(&b.size))
            .then(a.record.point.id.cmp(&b.record.point.id))
    });
    out
}

/// Communication share of a point: median `comm_s` / median seconds.
pub fn comm_share(rec: &PointRecord, median_s: f64) -> Option<f64> {
    let c = metric_median(rec, COMM_METRIC)?;
    (median_s > 0.0 && median_s.is_finite()).then(|| c / median_s)
}

/// Whether any point of the series records `comm_s`.
pub fn has_comm(series: &[&Series<'_>]) -> bool {
    series
        .iter()
        .any(|s| s.points.iter().any(|p| has_metric(p.record, COMM_METRIC)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scaling;
    use crate::report::scaling;
    use crate::report::test_support::{mpi_record, record, with_metric};

    #[test]
    fn message_study_detection_and_points() {
        let mut recs = Vec::new();
        for (size, t) in [(8u64, 2e-4), (1 << 20, 1e-1)] {
            recs.push(with_metric(
                mpi_record(0, "mpi.pingpong", 2, 1, size, 1000, &[t, t * 1.1, t * 0.9]),
                LATENCY_METRIC,
                &[0.2, 0.3, 0.1],
            ));
        }
        recs.push(mpi_record(1, "mpi.allreduce", 4, 1, 64, 100, &[1e-3]));
        recs.push(record(2, "gemm", Scaling::Strong, 1, 64, &[0.1]));
        let all = scaling::series(&recs);
        let of = |i: usize| all.iter().filter(|s| s.study == i).collect::<Vec<_>>();
        assert!(is_message_study(&of(0)));
        assert!(is_message_study(&of(1)));
        assert!(!is_message_study(&of(2)));

        let pts = message_points(&of(0));
        assert_eq!(pts.len(), 2);
        assert_eq!(pts[0].size, 8);
        assert_eq!(pts[0].line, "ranks=2 threads=1");
        assert!(pts[0].from_metric);
        assert_eq!(pts[0].latency_us, 0.2);
        assert_eq!(pts[0].latency_range, (0.1, 0.3));
        // 2 · size · iterations bytes over the median time.
        let bw = 2.0 * (1u64 << 20) as f64 * 1000.0 / 1e-1 / 1e9;
        assert!((pts[1].bandwidth_gbps.unwrap() - bw).abs() < 1e-9);

        // Without the metric: seconds / iterations.
        let pts = message_points(&of(1));
        assert!(!pts[0].from_metric);
        assert!((pts[0].latency_us - 10.0).abs() < 1e-9);
        assert_eq!(pts[0].line, "ranks=4 threads=1");
        let mut over = mpi_record(1, "mpi.allreduce", 4, 1, 64, 100, &[1e-3]);
        over.point.oversubscribed = true;
        assert_eq!(line_label(&over), "ranks=4 threads=1 ⚠ oversubscribed");
    }

    #[test]
    fn comm_share_is_median_comm_over_median_time() {
        let rec = with_metric(
            mpi_record(0, "mpi.stencil", 2, 1, 512, 10, &[1.0, 2.0, 1.5]),
            COMM_METRIC,
            &[0.2, 0.9, 0.3],
        );
        assert_eq!(comm_share(&rec, 1.5), Some(0.3 / 1.5));
        let plain = mpi_record(0, "mpi.stencil", 2, 1, 512, 10, &[1.0]);
        assert_eq!(comm_share(&plain, 1.0), None);
    }
}

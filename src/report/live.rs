//! The one-line summary the CLI prints as each point finishes.

use std::fmt::Write as _;

use super::format::{params_text, pct, times};
use super::plots::secs;
use super::scaling::resources_label;
use super::{csv, messages, ml, Throughput};
use crate::results::{PointRecord, Status};
use crate::stats::{Summary, HIGH_VARIANCE};
use crate::units::sig3;

/// One line for the CLI as a point finishes, e.g.
/// `ok  gemm variant=tuned n=1024 threads=2  0.0213 s  100.8 GFLOP/s` or
/// `FAILED (timeout) gemm variant=tuned n=1024 threads=8  timed out after 60 s`.
pub fn live_line(rec: &PointRecord) -> String {
    let mut desc = vec![rec.point.workload.clone()];
    let params = params_text(rec);
    if !params.is_empty() {
        desc.push(params);
    }
    desc.push(resources_label(&rec.point.resources));
    let desc = desc.join(" ");
    let over = if rec.point.oversubscribed {
        "  [oversubscribed]"
    } else {
        ""
    };
    if rec.status != Status::Ok {
        let reason = rec.reason.lines().next().unwrap_or("").trim();
        let reason: String = if reason.chars().count() > 160 {
            reason.chars().take(160).chain("…".chars()).collect()
        } else {
            reason.to_string()
        };
        return format!("FAILED ({}) {desc}{over}  {reason}", rec.status.as_str())
            .trim_end()
            .to_string();
    }
    let Some(s) = Summary::of(&times(rec)) else {
        return format!("ok  {desc}{over}  (no repetitions)");
    };
    let mut line = format!("ok  {desc}  {}", secs(s.median));
    if let Some(metric) = Throughput::for_work(&rec.work) {
        if let Some(v) = metric.rate(&rec.work, s.median) {
            let v = if v >= 10.0 {
                format!("{v:.1}")
            } else {
                sig3(v)
            };
            let _ = write!(line, "  {v} {}", metric.unit());
        }
    }
    if let Some((v, unit)) = ml::rate(rec, s.median) {
        let _ = write!(line, "  {} {unit}", sig3(v));
    }
    if let Some(lat) = csv::metric_median(rec, messages::LATENCY_METRIC) {
        let _ = write!(line, "  latency {} µs", sig3(lat));
    }
    if let Some(share) = messages::comm_share(rec, s.median) {
        let _ = write!(line, "  comm {}", pct(share));
    }
    if s.n > 1 && s.relative_stddev() > HIGH_VARIANCE {
        let _ = write!(line, "  (noisy: ±{:.0}%)", s.relative_stddev() * 100.0);
    }
    line.push_str(over);
    if let Some(v) = rec.load_verdict().filter(|v| v.disturbed) {
        let _ = write!(line, "  [disturbed: {}]", v.why);
    }
    line
}

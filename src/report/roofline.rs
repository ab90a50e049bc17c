//! The roofline plot of a run (Williams, Waterman & Patterson 2009, "Roofline: an insightful visual
//! performance model for multicore architectures", CACM 52(4)).
//!
//! Every ok CPU point is placed at its **arithmetic intensity** I = flops / bytes, both from the
//! workload's analytic work count (`work.flops`, `work.bytes` of the record), against its achieved
//! rate, flops / median repetition time in GFLOP/s. Both axes are log₁₀, so a bandwidth ceiling
//! B (GB/s) is the diagonal y = B · I and a compute ceiling C (GFLOP/s) is horizontal; a point can
//! never rise above min(C, B · I) of the ceilings that really bind it. The ceilings ([`Ceilings`])
//! are drawn as the classic roof: each bandwidth diagonal up to the highest compute ceiling, each
//! compute ceiling from the highest bandwidth diagonal on, every line labelled with its value and
//! whether it is theoretical or measured.
//!
//! **One plot per worker count.** Ceilings scale with the cores a point uses, so a run whose
//! points use several worker counts p gets `plots/roofline.svg|png` for the largest p (the most
//! of the machine the run used) and `plots/roofline-p<p>.svg|png` for the smallest (one core's
//! view, where the steps of a kernel's variants show); points at the counts between are left to
//! the tables, and [`markdown`] says so. In a run of several studies, a study with two or more
//! points at one worker count gets the same pair of plots of its own ([`write_studies`]).
//!
//! **GPU points** (backend `cuda`) are drawn apart, one plot per GPU model and GPU count, against
//! that device's ceilings ([`gpu_ceilings`]): the FP32 and FP64 peaks of its CUDA cores and its
//! memory bandwidth, all theoretical, from the peaks the point's record holds
//! ([`crate::device::DevicePeaks`]). A device whose peaks are unknown gets only the ceilings it
//! has, and [`markdown`] says why in plain words.
//!
//! **Which points cannot be placed.** A point that counts no FLOPs (STREAM copy, communication) or
//! no bytes (Monte Carlo π) has no finite intensity or no rate; a GPU point whose record holds no
//! device peaks (an older scalelab) has no roofline to be drawn on. They are listed by
//! [`markdown`] under the plot, with the reason, rather than dropped silently.
//!
//! **Labels.** Each point is labelled with its kernel and variant ("gemm blocked",
//! "stream.triad"), plus the size when the plot holds the same kernel at several sizes. Labels are
//! placed greedily, point by point, at the nearest of rings of candidate positions whose box
//! (the text's extent from the embedded font's metrics, plus a margin) overlaps no other label, no
//! marker and no ceiling label, stays inside the plotting area and crosses no ceiling line; a
//! label set further away gets a thin leader line to its point, which runs through no label. A
//! point label with no such place is never drawn across a line: its marker stays unlabelled and
//! the caption names it with its rate and intensity. There is no legend box to
//! cover data: lines and points are labelled where they are. Ceiling labels are placed first, in
//! reserved room, so that close lines never share a spot: the compute ceilings' labels in a column
//! in the right margin, each at its line's height (nudged apart where lines are close) with a tick
//! from the line's end; the bandwidth diagonals, each in its own colour and dash pattern, labelled
//! in that colour above the roof (the y axis gets headroom for them), on a stem from where the
//! diagonal meets the roof. No placement accepts an overlap: a ceiling label with no free place is
//! named in the caption instead.
//!
//! **Files.** This file holds the roofline's data (ceilings, points, what a plot could not place)
//! and [`points`], which turns records into them. Beside it, in `roofline/`: `ceilings.rs` says
//! where ceilings come from; `write.rs` which plots a run gets, and writes their files;
//! `draw.rs` draws one plot step by step (caption, axes, ceiling lines, label layout, markers and
//! text); `labels.rs` decides where every label goes, on the pixel `geometry.rs` of the plot;
//! `caption.rs` words the caption; `markdown.rs` writes the report.md section; `tests.rs` checks
//! the SVGs' layout.

mod caption;
mod ceilings;
mod draw;
mod geometry;
mod labels;
mod markdown;
mod write;

pub use self::ceilings::{gpu_ceilings, profile_ceilings, run_ceilings};
pub use self::markdown::markdown;
pub use self::write::{write, write_studies, write_with};

use std::collections::BTreeMap;

use super::plots::Plot;
use super::scaling::size_label;
use crate::results::{PointRecord, Status};
use crate::stats::Summary;
use crate::value::{Size, Value};

/// Where a ceiling's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Computed from the machine's description (SIMD lanes, FMA pipes, clock): an upper bound
    /// no code reaches.
    Theoretical,
    /// Measured; the text says how (e.g. "best stream.* point of this run").
    Measured(String),
}

/// One ceiling: a compute rate (GFLOP/s) or a bandwidth (GB/s).
#[derive(Clone, Debug, PartialEq)]
pub struct Ceiling {
    /// What it is, e.g. "avx2 + FMA peak" or "DRAM (STREAM triad)".
    pub label: String,
    /// GFLOP/s for a compute ceiling, GB/s for a bandwidth ceiling.
    pub value: f64,
    pub source: Source,
}

/// The ceilings of one roofline plot, for a given number of workers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ceilings {
    /// Horizontal lines, GFLOP/s, highest first.
    pub compute: Vec<Ceiling>,
    /// Diagonals, GB/s, highest first.
    pub memory: Vec<Ceiling>,
}

/// A point as the roofline shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct RooflinePoint {
    pub point_id: String,
    /// Kernel and variant, e.g. "gemm blocked" (with the size where needed, see the module docs).
    pub label: String,
    pub workload: String,
    /// Workers p of the point.
    pub workers: u64,
    /// Arithmetic intensity, flops / bytes.
    pub intensity: f64,
    /// flops / median time, GFLOP/s.
    pub gflops: f64,
    /// bytes / median time, GB/s.
    pub gbps: f64,
    /// For a GPU point, the devices it ran on: the model and how many (its roofline is that
    /// device's, see [`gpu_ceilings`]); `None` for CPU points.
    pub gpu: Option<(crate::device::DevicePeaks, u64)>,
    /// The point's study (index) and study name.
    pub study: (usize, String),
}

/// A point the roofline cannot show, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeftOut {
    pub point_id: String,
    /// Kernel and variant as a label would show them.
    pub what: String,
    pub reason: String,
}

/// What [`write()`] drew and what it could not place.
#[derive(Clone, Debug, Default)]
pub struct Roofline {
    /// The plots written: the CPU points' (largest worker count first), then one per GPU model
    /// and GPU count.
    pub plots: Vec<Plot>,
    /// Plain-words notes on the GPU rooflines (a device whose peaks are unknown).
    pub notes: Vec<String>,
    pub left_out: Vec<LeftOut>,
    /// Worker counts between the smallest and the largest, whose points no plot shows.
    pub skipped_workers: Vec<u64>,
}

/// "gemm blocked", "stream.triad": the workload and its variant.
fn kernel_label(rec: &PointRecord) -> String {
    let v = rec.point.params.variant();
    if v.is_empty() {
        rec.point.workload.clone()
    } else {
        format!("{} {v}", rec.point.workload)
    }
}

/// The size as the manifest wrote it ("64MiB"), or `n=1024` for counts.
fn size_text(rec: &PointRecord) -> Option<String> {
    match rec.point.params.get("size") {
        Some(Value::Size(s @ Size::Bytes(_))) => Some(s.to_string()),
        _ => size_label(rec),
    }
}

/// Split the ok records into placeable points and the rest (failed points are neither: the report
/// lists them elsewhere).
pub fn points(records: &[PointRecord]) -> (Vec<RooflinePoint>, Vec<LeftOut>) {
    let mut placed = Vec::new();
    let mut left = Vec::new();
    for rec in records.iter().filter(|r| r.status == Status::Ok) {
        let what = kernel_label(rec);
        let out = |reason: &str| LeftOut {
            point_id: rec.point.id.clone(),
            what: what.clone(),
            reason: reason.into(),
        };
        let times: Vec<f64> = rec.repetitions.iter().map(|r| r.seconds).collect();
        let median = Summary::of(&times).map(|s| s.median).unwrap_or(0.0);
        let (flops, bytes) = (rec.work.flops, rec.work.bytes);
        // NaN counts as "none" too.
        let (has_flops, has_bytes) = (flops > 0.0, bytes > 0.0);
        if rec.on_device() && rec.devices.is_empty() {
            left.push(out("GPU point whose record holds no device peaks (recorded by an older scalelab); measure it again to place it on its GPU's roofline"));
        } else if !has_flops && !has_bytes {
            left.push(out("counts neither FLOPs nor bytes"));
        } else if !has_flops {
            left.push(out(
                "counts no FLOPs, so its arithmetic intensity is 0, which a log axis cannot show (its rate is in GB/s)",
            ));
        } else if !has_bytes {
            left.push(out(
                "counts no bytes (no memory traffic), so its arithmetic intensity is infinite",
            ));
        } else if median.is_nan() || median <= 0.0 || median.is_infinite() {
            left.push(out("has no positive median time"));
        } else {
            placed.push(RooflinePoint {
                point_id: rec.point.id.clone(),
                label: what,
                workload: rec.point.workload.clone(),
                workers: rec.point.resources.workers(),
                intensity: flops / bytes,
                gflops: flops / median / 1e9,
                gbps: bytes / median / 1e9,
                gpu: rec.on_device().then(|| {
                    let r = rec.point.resources;
                    (
                        rec.devices[0].clone(),
                        u64::from(r.gpus.max(1)) * u64::from(r.ranks.max(1)),
                    )
                }),
                study: (rec.point.study, rec.point.study_name.clone()),
            });
        }
    }
    // The size goes into a label only where one plot holds the same kernel at several sizes.
    let mut sizes: BTreeMap<(u64, String), Vec<String>> = BTreeMap::new();
    let by_id: BTreeMap<&str, &PointRecord> =
        records.iter().map(|r| (r.point.id.as_str(), r)).collect();
    for p in &placed {
        let size = size_text(by_id[p.point_id.as_str()]).unwrap_or_default();
        let list = sizes.entry((p.workers, p.label.clone())).or_default();
        if !list.contains(&size) {
            list.push(size);
        }
    }
    for p in &mut placed {
        if sizes[&(p.workers, p.label.clone())].len() > 1 {
            if let Some(size) = size_text(by_id[p.point_id.as_str()]) {
                p.label = format!("{} {size}", p.label);
            }
        }
    }
    (placed, left)
}

#[cfg(test)]
mod tests;

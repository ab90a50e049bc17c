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

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plots::{register_font, wrap, Axis, Plot, Scale, FAMILY, HEIGHT, PALETTE, WIDTH};
use super::scaling::size_label;
use crate::calibrate::Profile;
use crate::machine::Machine;
use crate::results::{write_atomic, PointRecord, Status};
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

impl Ceilings {
    /// The theoretical compute ceilings of `workers` cores of `machine`: the peak with SIMD and
    /// FMA (lanes × FMA pipes × 2 × clock, per core, as `scalelab info` reports it), the same
    /// without FMA (half: a separate multiply and add per pipe), and scalar code with FMA (one
    /// lane). No bandwidth ceiling: the OS reports no memory bandwidth; see
    /// [`Ceilings::with_bandwidth`]. Empty when the machine's peak is unknown.
    pub fn theoretical(machine: &Machine, workers: u64) -> Ceilings {
        let mut c = Ceilings::default();
        let peak = machine.peak_gflops_per_core * workers.max(1) as f64;
        if !(peak > 0.0 && peak.is_finite()) {
            return c;
        }
        let simd = if machine.simd.is_empty() {
            "SIMD".to_string()
        } else {
            machine.simd.clone()
        };
        c.compute.push(Ceiling {
            label: format!("peak ({simd} + FMA)"),
            value: peak,
            source: Source::Theoretical,
        });
        c.compute.push(Ceiling {
            label: format!("{simd}, no FMA"),
            value: peak / 2.0,
            source: Source::Theoretical,
        });
        let lanes = machine.simd_f64_lanes.max(1) as f64;
        if lanes > 1.0 {
            c.compute.push(Ceiling {
                label: "scalar + FMA".into(),
                value: peak / lanes,
                source: Source::Theoretical,
            });
        }
        c
    }

    /// These ceilings with one more bandwidth ceiling, kept sorted highest first.
    pub fn with_bandwidth(mut self, label: &str, gbps: f64, source: Source) -> Ceilings {
        if gbps > 0.0 && gbps.is_finite() {
            self.memory.push(Ceiling {
                label: label.into(),
                value: gbps,
                source,
            });
            self.memory.sort_by(|a, b| b.value.total_cmp(&a.value));
        }
        self
    }

    /// The subtitle sentence that says which ceilings are theoretical and which measured.
    fn provenance(&self) -> String {
        let says = |list: &[Ceiling], kind: &str| -> String {
            if list.is_empty() {
                return format!("no {kind} ceiling");
            }
            let theo = list
                .iter()
                .filter(|c| c.source == Source::Theoretical)
                .count();
            let measured: Vec<&str> = list
                .iter()
                .filter_map(|c| match &c.source {
                    Source::Measured(how) => Some(how.as_str()),
                    Source::Theoretical => None,
                })
                .collect();
            let mut measured = measured;
            measured.dedup();
            let mut parts = Vec::new();
            if theo > 0 {
                parts.push(format!("{kind} ceilings theoretical"));
            }
            if !measured.is_empty() {
                parts.push(format!("{kind} measured ({})", measured.join("; ")));
            }
            parts.join(", ")
        };
        format!(
            "{}; {}.",
            says(&self.compute, "compute"),
            says(&self.memory, "bandwidth")
        )
    }
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
        if rec.backend == "cuda" && rec.devices.is_empty() {
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
                gpu: (rec.backend == "cuda").then(|| {
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

/// The ceilings of a plot of `points` at `workers`: [`Ceilings::theoretical`] plus, where the run
/// has STREAM points at this worker count, the best bandwidth they reached as a measured
/// bandwidth ceiling (an attainable bandwidth, not a theoretical one).
pub fn run_ceilings(machine: &Machine, workers: u64, points: &[&RooflinePoint]) -> Ceilings {
    let c = Ceilings::theoretical(machine, workers);
    let best = points
        .iter()
        .filter(|p| p.workload.starts_with("stream."))
        .max_by(|a, b| a.gbps.total_cmp(&b.gbps));
    match best {
        Some(b) => c.with_bandwidth(
            &format!("bandwidth, measured ({})", b.workload),
            b.gbps,
            Source::Measured(format!(
                "the best stream.* point of this run, {}",
                b.workload
            )),
        ),
        None => c,
    }
}

/// The ceilings of a plot at `workers` from a calibrated machine profile (`scalelab calibrate`):
/// the theoretical compute ceilings, the best DGEMM the profile measured at that core count as a
/// measured compute ceiling, and the bandwidth of each cache level and of DRAM (STREAM triad) at
/// that core count as measured diagonals. Where the profile has no figure for `workers` (e.g. MPI
/// ranks across nodes, or more workers than cores) it falls back to [`run_ceilings`].
pub fn profile_ceilings(
    profile: &Profile,
    machine: &Machine,
    workers: u64,
    points: &[&RooflinePoint],
) -> Ceilings {
    let Ok(cores) = usize::try_from(workers) else {
        return run_ceilings(machine, workers, points);
    };
    if !profile.core_counts().contains(&cores) {
        return run_ceilings(machine, workers, points);
    }
    let how = |what: &str| {
        Source::Measured(format!(
            "{what} by `scalelab calibrate` at {cores} core{}",
            if cores == 1 { "" } else { "s" }
        ))
    };
    let mut c = Ceilings::theoretical(machine, workers);
    if let Some(g) = profile
        .dgemm_gflops(cores)
        .filter(|g| *g > 0.0 && g.is_finite())
    {
        c.compute.push(Ceiling {
            label: "DGEMM, measured".into(),
            value: g,
            source: how("DGEMM"),
        });
        c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
    }
    for level in ["L1", "L2", "L3"] {
        if let Some(gbps) = profile.level_gbps(level, cores) {
            c = c.with_bandwidth(&format!("{level}, measured"), gbps, how("cache bandwidth"));
        }
    }
    match profile.triad_gbps(cores) {
        Some(gbps) => c.with_bandwidth("DRAM (triad), measured", gbps, how("bandwidth")),
        None => c,
    }
}

/// Draw the roofline plots of `records` into `dir` (see the module documentation).
pub fn write(dir: &Path, records: &[PointRecord], machine: &Machine) -> Result<Roofline> {
    write_with(dir, records, machine, |p, pts| {
        run_ceilings(machine, p, pts)
    })
}

/// [`write()`] with the ceilings of each plot from `ceilings(p, points at p)`: the place for
/// measured ceilings (a calibrated machine profile) instead of [`run_ceilings`].
pub fn write_with(
    dir: &Path,
    records: &[PointRecord],
    machine: &Machine,
    ceilings: impl Fn(u64, &[&RooflinePoint]) -> Ceilings,
) -> Result<Roofline> {
    let (placed, left_out) = points(records);
    let cpu: Vec<&RooflinePoint> = placed.iter().filter(|p| p.gpu.is_none()).collect();
    let mut roof = write_points(dir, "roofline", "Roofline", &cpu, machine, &ceilings)?;
    roof.left_out = left_out;
    let (plots, notes) = write_gpu(dir, &placed)?;
    roof.plots.extend(plots);
    roof.notes = notes;
    Ok(roof)
}

/// The ceilings of a GPU roofline: `gpus` devices of the model `d`, from the peaks its record
/// holds (all theoretical: CUDA-core FP64 and FP32, and the memory bandwidth). A peak the record
/// lacks (an architecture outside the table of [`crate::device`]) is not drawn.
pub fn gpu_ceilings(d: &crate::device::DevicePeaks, gpus: u64) -> Ceilings {
    let g = gpus.max(1) as f64;
    let mut c = Ceilings::default();
    for (label, v) in [
        ("FP32 peak (CUDA cores)", d.fp32_gflops),
        ("FP64 peak (CUDA cores)", d.fp64_gflops),
    ] {
        if let Some(v) = v.filter(|v| *v > 0.0 && v.is_finite()) {
            c.compute.push(Ceiling {
                label: label.into(),
                value: v * g,
                source: Source::Theoretical,
            });
        }
    }
    c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
    match d.bandwidth_gbps.filter(|v| *v > 0.0 && v.is_finite()) {
        Some(b) => c.with_bandwidth("device memory peak", b * g, Source::Theoretical),
        None => c,
    }
}

/// One roofline per GPU model and GPU count of the run's GPU points, against that device's
/// ceilings ([`gpu_ceilings`]); notes for devices whose peaks are unknown.
fn write_gpu(dir: &Path, placed: &[RooflinePoint]) -> Result<(Vec<Plot>, Vec<String>)> {
    let mut by_device: BTreeMap<(String, u64), Vec<&RooflinePoint>> = BTreeMap::new();
    for p in placed {
        if let Some((d, g)) = &p.gpu {
            by_device.entry((d.name.clone(), *g)).or_default().push(p);
        }
    }
    let mut plots = Vec::new();
    let mut notes = Vec::new();
    for ((name, gpus), pts) in by_device {
        let d = &pts[0].gpu.as_ref().expect("GPU points only").0;
        let stem = format!("roofline-gpu-{}-{gpus}", super::plots::slug(&name));
        // The compute capability is in report.md's note where it matters: a longer title would
        // not fit above the plot.
        let title = format!("Roofline, {gpus} × {name}");
        if !d.note.is_empty() {
            notes.push(format!(
                "The GPU roofline of {} ([{stem}.png](plots/{stem}.png)) has only the ceilings the device's figures give: {}.",
                d.describe(),
                d.note
            ));
        }
        let files = write_chart(dir, &stem, &title, &pts, &gpu_ceilings(d, gpus))?;
        plots.push(Plot { stem, title, files });
    }
    Ok((plots, notes))
}

/// The CPU rooflines of `points`: one for the largest and one for the smallest worker count,
/// named `<stem>` and `<stem>-p<p>`, titled `<title>, p = …`.
fn write_points(
    dir: &Path,
    stem_base: &str,
    title_base: &str,
    points: &[&RooflinePoint],
    machine: &Machine,
    ceilings: &impl Fn(u64, &[&RooflinePoint]) -> Ceilings,
) -> Result<Roofline> {
    let mut by_p: BTreeMap<u64, Vec<&RooflinePoint>> = BTreeMap::new();
    for p in points {
        by_p.entry(p.workers).or_default().push(p);
    }
    let largest = by_p.keys().next_back().copied();
    let smallest = by_p.keys().next().copied();
    // Only the smallest and the largest worker count get a plot: one core's view, where the
    // kernels' own steps show, and the most of the machine the run used.
    let skipped: Vec<u64> = by_p
        .keys()
        .copied()
        .filter(|&p| Some(p) != largest && Some(p) != smallest)
        .collect();
    let mut plots = Vec::new();
    for (&p, pts) in by_p.iter().rev() {
        if skipped.contains(&p) {
            continue;
        }
        let stem = if Some(p) == largest {
            stem_base.to_string()
        } else {
            format!("{stem_base}-p{p}")
        };
        let ceilings = ceilings(p, pts);
        let title = format!(
            "{title_base}, p = {p} worker{}{}",
            if p == 1 { "" } else { "s" },
            if machine.cpu_model.is_empty() {
                String::new()
            } else {
                format!(" ({})", machine.cpu_model)
            }
        );
        let files = write_chart(dir, &stem, &title, pts, &ceilings)?;
        plots.push(Plot { stem, title, files });
    }
    Ok(Roofline {
        plots,
        skipped_workers: skipped,
        ..Roofline::default()
    })
}

/// The rooflines of single studies, where one is useful besides the run's: in a run with more
/// than one study on the roofline, each CPU study with at least two points at one worker count
/// (DGEMM variants climbing, several sizes) gets `plots/study<N>-<name>-roofline[-p<p>]`, with
/// the same ceilings as the run's. Returns them by study index, for the study's section.
pub fn write_studies(
    dir: &Path,
    records: &[PointRecord],
    machine: &Machine,
    ceilings: impl Fn(u64, &[&RooflinePoint]) -> Ceilings,
) -> Result<Vec<(usize, Vec<Plot>)>> {
    let (placed, _) = points(records);
    let mut by_study: BTreeMap<usize, Vec<&RooflinePoint>> = BTreeMap::new();
    for p in placed.iter().filter(|p| p.gpu.is_none()) {
        by_study.entry(p.study.0).or_default().push(p);
    }
    if by_study.len() < 2 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (index, pts) in by_study {
        let name = pts[0].study.1.clone();
        let mut per_p: BTreeMap<u64, usize> = BTreeMap::new();
        for p in &pts {
            *per_p.entry(p.workers).or_default() += 1;
        }
        if per_p.values().all(|&n| n < 2) {
            continue;
        }
        let stem = format!("study{}-{}-roofline", index + 1, super::plots::slug(&name));
        let title = format!("Roofline of {name}");
        let roof = write_points(dir, &stem, &title, &pts, machine, &ceilings)?;
        out.push((index, roof.plots));
    }
    Ok(out)
}

/// The "Roofline" section of report.md: the plots and the points left out, with reasons.
pub fn markdown(roofline: &Roofline) -> String {
    let mut md = String::new();
    if roofline.plots.is_empty() && roofline.left_out.is_empty() && roofline.notes.is_empty() {
        return md;
    }
    md.push_str("## Roofline\n\n");
    md.push_str("Each point at its arithmetic intensity (analytic flops / bytes of one repetition) and its median GFLOP/s; diagonals are bandwidth ceilings, horizontal lines compute ceilings. One plot per worker count p.\n\n");
    for p in &roofline.plots {
        md.push_str(&format!("![{}](plots/{}.png)\n\n", p.title, p.stem));
        md.push_str(&format!("[{} (SVG)](plots/{}.svg)\n\n", p.title, p.stem));
    }
    if roofline.plots.is_empty() {
        md.push_str("No point can be placed on a roofline.\n\n");
    }
    for note in &roofline.notes {
        md.push_str(note);
        md.push_str("\n\n");
    }
    if !roofline.skipped_workers.is_empty() {
        let ps: Vec<String> = roofline
            .skipped_workers
            .iter()
            .map(|p| p.to_string())
            .collect();
        md.push_str(&format!(
            "The plots show the smallest and the largest worker count; the points at p = {} are in the tables above.\n\n",
            ps.join(", ")
        ));
    }
    if !roofline.left_out.is_empty() {
        // One line per kernel and reason, naming the points.
        let mut groups: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for l in &roofline.left_out {
            groups
                .entry((l.what.as_str(), l.reason.as_str()))
                .or_default()
                .push(l.point_id.as_str());
        }
        md.push_str("Not on the roofline:\n\n");
        for ((what, reason), ids) in groups {
            let shown: Vec<String> = ids.iter().take(6).map(|i| format!("`{i}`")).collect();
            let more = if ids.len() > shown.len() { ", …" } else { "" };
            md.push_str(&format!(
                "- {what} ({} point{}: {}{more}): {reason}.\n",
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                shown.join(", ")
            ));
        }
        md.push('\n');
    }
    md
}

/// "104 GFLOP/s", "41.2 GB/s".
fn rate_text(v: f64, unit: &str) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{s} {unit}")
}

/// A line segment in pixels.
type Segment = ((f64, f64), (f64, f64));

/// A rectangle in pixels: left, top, right, bottom.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rect {
    l: f64,
    t: f64,
    r: f64,
    b: f64,
}

impl Rect {
    fn intersects(&self, o: &Rect) -> bool {
        self.l < o.r && o.l < self.r && self.t < o.b && o.t < self.b
    }
    fn inside(&self, o: &Rect) -> bool {
        self.l >= o.l && self.r <= o.r && self.t >= o.t && self.b <= o.b
    }
    fn grow(&self, m: f64) -> Rect {
        Rect {
            l: self.l - m,
            t: self.t - m,
            r: self.r + m,
            b: self.b + m,
        }
    }
    /// Whether the segment a–b passes through the rectangle (Liang–Barsky clipping).
    fn crosses(&self, a: (f64, f64), b: (f64, f64)) -> bool {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let (mut t0, mut t1) = (0.0f64, 1.0f64);
        for (p, q) in [
            (-dx, a.0 - self.l),
            (dx, self.r - a.0),
            (-dy, a.1 - self.t),
            (dy, self.b - a.1),
        ] {
            if p == 0.0 {
                if q < 0.0 {
                    return false;
                }
            } else {
                let t = q / p;
                if p < 0.0 {
                    t0 = t0.max(t);
                } else {
                    t1 = t1.min(t);
                }
                if t0 > t1 {
                    return false;
                }
            }
        }
        true
    }
    /// The point of the rectangle nearest to `p`.
    fn nearest(&self, p: (f64, f64)) -> (f64, f64) {
        (p.0.clamp(self.l, self.r), p.1.clamp(self.t, self.b))
    }
}

/// Font size of point and ceiling labels, pixels.
const LABEL_SIZE: f64 = 22.0;
/// Marker radius, pixels.
const RADIUS: i32 = 8;
/// Space kept free around every label box, pixels.
const MARGIN: f64 = 3.0;
/// Space kept between a label box and a ceiling line, pixels: lines are 2–3 px wide and glyphs
/// reach a little beyond the font's layout box.
const LINE_CLEARANCE: f64 = 7.0;

/// Width and height of `text` at `size` pixels in the embedded font.
fn text_size(text: &str, size: f64) -> (f64, f64) {
    let font = FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal);
    match font.box_size(text) {
        Ok((w, h)) => (w as f64, (h as f64).max(size * 0.8)),
        // Should not happen with the embedded font; a generous estimate keeps labels apart.
        Err(_) => (0.62 * size * text.chars().count() as f64, size),
    }
}

/// Labels set further than this from their marker (pixels) get a leader line.
const LEADER_FROM: f64 = 20.0;

/// The marker box of a point at `at`.
fn own(at: (f64, f64)) -> Rect {
    let r = RADIUS as f64;
    Rect {
        l: at.0 - r,
        t: at.1 - r,
        r: at.0 + r,
        b: at.1 + r,
    }
}

/// The point `dist` pixels from `from` towards `to`.
fn toward(from: (f64, f64), to: (f64, f64), dist: f64) -> (f64, f64) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= dist {
        return to;
    }
    (from.0 + dx / len * dist, from.1 + dy / len * dist)
}

/// Whether segments p–q and r–s cross (proper intersection).
fn segments_cross((p, q): Segment, (r, s): Segment) -> bool {
    let orient = |a: (f64, f64), b: (f64, f64), c: (f64, f64)| {
        (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
    };
    let (d1, d2) = (orient(r, s, p), orient(r, s, q));
    let (d3, d4) = (orient(p, q, r), orient(p, q, s));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Choose a box for a `w` × `h` label of the marker at `at`: the cheapest of a ring of candidates
/// (see the module documentation). Returns the box and whether it needs a leader line, or `None`
/// when no candidate is legal: inside the plotting area, overlapping no label, marker or stem,
/// and crossing no ceiling line (nor an earlier label's leader). Such a label goes to the
/// caption, as a ceiling label with no room does.
fn place(
    at: (f64, f64),
    (w, h): (f64, f64),
    area: &Rect,
    taken: &[Rect],
    lines: &[Segment],
    markers: &[(f64, f64)],
) -> Option<(Rect, bool)> {
    let mut best: Option<(f64, Rect, f64)> = None;
    let r = RADIUS as f64;
    // Far rings too: in a tight cluster under close compute ceilings (DGEMM variants between
    // the peak and the measured DGEMM) the only legal room may be well above the roof.
    for d in [
        4.0, 14.0, 28.0, 46.0, 70.0, 100.0, 140.0, 190.0, 250.0, 320.0, 400.0,
    ] {
        // Directions, right first: a label to the right of its point reads most naturally.
        for k in 0..24 {
            let angle = std::f64::consts::PI * 2.0 * k as f64 / 24.0;
            let (c, s) = (angle.cos(), -angle.sin());
            // The box's anchor: the side or corner facing the point, at distance r + d.
            let (ax, ay) = (at.0 + c * (r + d), at.1 + s * (r + d));
            let l = if c > 0.3 {
                ax
            } else if c < -0.3 {
                ax - w
            } else {
                ax - w / 2.0
            };
            let t = if s > 0.3 {
                ay
            } else if s < -0.3 {
                ay - h
            } else {
                ay - h / 2.0
            };
            let rect = Rect {
                l,
                t,
                r: l + w,
                b: t + h,
            };
            let padded = rect.grow(MARGIN);
            if !padded.inside(area) {
                continue;
            }
            if taken.iter().any(|o| o.intersects(&padded)) {
                continue;
            }
            let clear = rect.grow(LINE_CLEARANCE);
            if lines.iter().any(|(a, b)| clear.crosses(*a, *b)) {
                continue;
            }
            // A leader line must not run through another label or marker, and had better not
            // cross a ceiling.
            let leader_hits = if d > LEADER_FROM {
                let end = rect.nearest(at);
                let start = toward(at, end, r + 2.0);
                let hits = |o: &&Rect| o.crosses(start, end) && !o.grow(-MARGIN).inside(&own(at));
                let is_marker = |o: &&Rect| markers.iter().any(|m| own(*m) == **o);
                // Through a label: never; through another marker of a tight cluster: only
                // when nothing else is free.
                if taken.iter().filter(hits).any(|o| !is_marker(&o)) {
                    continue;
                }
                taken.iter().filter(hits).count() as f64 * 1e4
                    + lines
                        .iter()
                        .filter(|(a, b)| segments_cross((start, end), (*a, *b)))
                        .count() as f64
                        * 20.0
            } else {
                0.0
            };
            // A label without a leader names the marker nearest to it: one nearer to another
            // marker reads as that marker's (DGEMM variants stacked at one intensity).
            let ambiguous = if d > LEADER_FROM {
                0.0
            } else {
                let own_d = distance(rect.nearest(at), at);
                let nearer = markers
                    .iter()
                    .filter(|m| **m != at)
                    .any(|m| distance(rect.nearest(*m), *m) < own_d);
                if nearer {
                    3000.0
                } else {
                    0.0
                }
            };
            let side = if c > 0.3 { 0.0 } else { 6.0 };
            let cost = ambiguous + leader_hits + d + side;
            if best.as_ref().is_none_or(|(bc, _, _)| cost < *bc) {
                best = Some((cost, rect, d));
            }
        }
    }
    best.map(|(_, rect, d)| (rect, d > LEADER_FROM))
}

/// Euclidean distance in pixels.
fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

fn write_chart(
    dir: &Path,
    stem: &str,
    title: &str,
    points: &[&RooflinePoint],
    ceilings: &Ceilings,
) -> Result<Vec<std::path::PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, points, ceilings)
            .map_err(|e| anyhow!("drawing {}: {e}", svg_path.display()))?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = tempfile::Builder::new()
        .prefix(".plot")
        .suffix(".png")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let root = BitMapBackend::new(tmp.path(), (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, points, ceilings)
            .map_err(|e| anyhow!("drawing {}: {e}", png_path.display()))?;
    }
    // Readable by others, like every file `write_atomic` writes (temporary files start as 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("writing {}", png_path.display()))?;
    }
    tmp.persist(&png_path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", png_path.display()))?;
    Ok(vec![svg_path, png_path])
}

/// Ink of the compute ceilings and their labels.
const INK: RGBColor = RGBColor(40, 40, 40);
/// Colours of the bandwidth diagonals, highest first, and of their labels: Okabe & Ito's
/// colour-blind-safe set ("Color universal design", 2008), darkest first so that the usual four
/// (L1, L2, L3, DRAM) read well as text on white.
pub(super) const DIAGONAL_COLOURS: [RGBColor; 6] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
];
/// Dash and gap lengths (pixels) of the diagonals after the first, which is solid: the
/// diagonals differ in pattern as well as colour, so they stay apart in grey print too.
const DIAGONAL_DASHES: [(u32, u32); 5] = [(14, 9), (5, 6), (24, 6), (2, 5), (10, 4)];
/// Space between stacked ceiling labels, pixels: more than the free margin kept around both.
const STACK_GAP: f64 = 2.0 * MARGIN + 1.0;
/// Length of the tick from a compute ceiling's end to its label in the right margin, pixels.
const TICK: f64 = 16.0;

/// Draw the plot, with the ceiling labels that find no room listed in the caption instead: a
/// first pass on a scratch SVG finds them (the layout depends only on the geometry and the
/// font, not on the backend), and the caption grows until every label left in the plot has a
/// free place.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[&RooflinePoint],
    ceilings: &Ceilings,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let size = root.dim_in_pixel();
    let mut captioned: Vec<String> = Vec::new();
    let mut captioned_points: Vec<usize> = Vec::new();
    for _ in 0..=ceilings.compute.len() + ceilings.memory.len() + points.len() {
        let mut scratch = String::new();
        let (unplaced, unplaced_points) = {
            let area = SVGBackend::with_string(&mut scratch, size).into_drawing_area();
            match draw_once(
                &area,
                title,
                points,
                ceilings,
                &captioned,
                &captioned_points,
            ) {
                Ok(u) => u,
                // The real pass below reports the same error.
                Err(_) => break,
            }
        };
        if unplaced.is_empty() && unplaced_points.is_empty() {
            break;
        }
        captioned.extend(unplaced);
        captioned_points.extend(unplaced_points);
    }
    draw_once(root, title, points, ceilings, &captioned, &captioned_points).map(|_| ())
}

/// How the caption names a point whose label found no legal place: its label, rate and
/// intensity, so the reader can find its (unlabelled) marker.
fn point_caption(p: &RooflinePoint) -> String {
    format!(
        "{} ({}, {} FLOP/B)",
        p.label,
        rate_text(p.gflops, "GFLOP/s"),
        intensity_text(p.intensity)
    )
}

/// An intensity with three significant digits: "0.0833", "2.67", "85.3".
fn intensity_text(v: f64) -> String {
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// The thin box of a vertical stem, which later labels keep off.
fn stem_box((from, to): Segment) -> Rect {
    Rect {
        l: from.0 - 1.0,
        t: from.1.min(to.1),
        r: from.0 + 1.0,
        b: from.1.max(to.1),
    }
}

/// The 1-D layout of labels of height `h` wanted with their tops at `want` (sorted top to
/// bottom): each as near its wish as it can be, none closer than [`STACK_GAP`] to the next, all
/// between `lo` and `hi`. `None` when they do not fit.
fn stack(want: &[f64], h: f64, lo: f64, hi: f64) -> Option<Vec<f64>> {
    let mut tops: Vec<f64> = Vec::with_capacity(want.len());
    for &w in want {
        let t = match tops.last() {
            Some(&prev) => w.max(prev + h + STACK_GAP),
            None => w,
        };
        tops.push(t.max(lo));
    }
    // Push back up from the bottom where the last ones ran past it.
    let mut limit = hi;
    for t in tops.iter_mut().rev() {
        if *t + h > limit {
            *t = limit - h;
        }
        limit = *t - STACK_GAP;
    }
    (tops.first().is_none_or(|&t| t >= lo)).then_some(tops)
}

/// The ceiling labels and the points (indices) that found no free place in one drawing.
type Unplaced = (Vec<String>, Vec<usize>);

/// [`draw`] once, with the ceiling labels in `captioned` and the labels of the points (indices)
/// in `captioned_points` named in the caption rather than in the plot. Returns the ceiling labels
/// and points not yet captioned that found no free place.
fn draw_once<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    title: &str,
    points: &[&RooflinePoint],
    ceilings: &Ceilings,
    captioned: &[String],
    captioned_points: &[usize],
) -> Result<Unplaced, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let (_, height) = root.dim_in_pixel();
    let mut caption = format!(
        "Points: median GFLOP/s over the repetitions at the analytic intensity flops / bytes. Ceilings: {} Labels: kernel and variant.",
        ceilings.provenance()
    );
    if !captioned.is_empty() {
        caption.push_str(&format!(
            " Ceilings with no room for their label in the plot: {}.",
            captioned.join("; ")
        ));
    }
    if !captioned_points.is_empty() {
        let named: Vec<String> = captioned_points
            .iter()
            .map(|&i| point_caption(points[i]))
            .collect();
        caption.push_str(&format!(
            " Points whose label has no room beside its marker without crossing a line: {}.",
            named.join("; ")
        ));
    }
    // Proportional text: 104 characters keep a line of wide glyphs (digits, capitals) inside.
    let caption = wrap(&caption, 104);
    let foot_height = 24 + 30 * caption.len() as i32;
    let (main, foot) = root.split_vertically(height as i32 - foot_height);
    for (i, line) in caption.iter().enumerate() {
        foot.draw(&Text::new(
            line.clone(),
            (40, 8 + 30 * i as i32),
            (FAMILY, 24).into_font().color(&RGBColor(60, 60, 60)),
        ))?;
    }

    let compute_text = |c: &Ceiling| format!("{}: {}", c.label, rate_text(c.value, "GFLOP/s"));
    let memory_text = |m: &Ceiling| format!("{}: {}", m.label, rate_text(m.value, "GB/s"));
    let top_c = ceilings.compute.first().map(|c| c.value);
    let top_m = ceilings.memory.first().map(|c| c.value);
    // Ridge points: where each compute ceiling meets the highest bandwidth diagonal.
    let ridges: Vec<f64> = match top_m {
        Some(b) => ceilings.compute.iter().map(|c| c.value / b).collect(),
        None => Vec::new(),
    };
    let xs: Vec<f64> = points
        .iter()
        .map(|p| p.intensity)
        .chain(ridges.iter().copied())
        .collect();
    let (xmin, xmax) = xs
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    // Room on the left for the diagonals, on the right for the points' labels.
    let x = Axis::fit([xmin / 6.0, xmax * 6.0], Scale::Log10, false);
    let ys: Vec<f64> = points.iter().map(|p| p.gflops).collect();
    let (ymin, ymax) = ys
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let roof_top = top_c.unwrap_or(ymax).max(ymax);
    // Stacked labels are a full em apart (glyphs reach beyond the font's layout box).
    let label_h = LABEL_SIZE.max(text_size("Lg", LABEL_SIZE).1);
    // Headroom above the roof for the diagonals' labels, stacked there (see below): the plotting
    // area's height is estimated from the fixed margins, decades are added until they fit.
    let diagonals = ceilings
        .memory
        .iter()
        .filter(|m| !captioned.contains(&memory_text(m)))
        .count();
    let want_px = diagonals as f64 * (label_h + STACK_GAP) + 2.0 * LINE_CLEARANCE + 8.0;
    let plot_px = (height as f64 - foot_height as f64 - 20.0 - 60.0 - 85.0 - 20.0).max(100.0);
    let mut headroom = 3.0f64;
    let mut y = Axis::fit([ymin / 3.0, roof_top * headroom], Scale::Log10, false);
    for _ in 0..4 {
        let per_decade = plot_px / (y.hi / y.lo).log10();
        if diagonals == 0 || (y.hi / roof_top).log10() * per_decade >= want_px {
            break;
        }
        headroom *= 10.0;
        y = Axis::fit([ymin / 3.0, roof_top * headroom], Scale::Log10, false);
    }

    // The compute ceilings' labels stand in a column in the right margin, each at its line's
    // height (nudged apart where lines are close) with a tick from the line's end.
    let compute_w = ceilings
        .compute
        .iter()
        .map(compute_text)
        .filter(|t| !captioned.contains(t))
        .map(|t| text_size(&t, LABEL_SIZE).0)
        .fold(0.0f64, f64::max);
    let margin_right = if compute_w > 0.0 {
        (compute_w + TICK + 6.0 + 16.0).ceil() as i32
    } else {
        50
    };
    let mut chart = ChartBuilder::on(&main)
        .caption(title, (FAMILY, 36).into_font())
        .margin(20)
        .margin_right(margin_right)
        .x_label_area_size(85)
        .y_label_area_size(120)
        .build_cartesian_2d(x.clone(), y.clone())?;
    let xfmt = |v: &f64| x.label(*v);
    let yfmt = |v: &f64| y.label(*v);
    chart
        .configure_mesh()
        .x_desc("arithmetic intensity (FLOP/byte)")
        .y_desc("GFLOP/s")
        .axis_desc_style((FAMILY, 30))
        .label_style((FAMILY, 26))
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .x_labels(12)
        .y_labels(10)
        .set_all_tick_mark_size(8)
        .bold_line_style(BLACK.mix(0.12).stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.stroke_width(2))
        .draw()?;

    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let area = Rect {
        l: xr.start as f64,
        t: yr.start as f64,
        r: xr.end as f64,
        b: yr.end as f64,
    };
    let coord = chart.as_coord_spec().clone();
    let px = |v: (f64, f64)| -> (f64, f64) {
        let (a, b) = coord.translate(&v);
        (a as f64, b as f64)
    };
    let label_font = (FAMILY, LABEL_SIZE as u32).into_font();
    let mut taken: Vec<Rect> = Vec::new();
    let mut lines: Vec<Segment> = Vec::new();
    let mut texts: Vec<(String, Rect, RGBColor)> = Vec::new();
    // Ticks and leaders of ceiling labels, in their line's colour.
    let mut ticks: Vec<(Vec<(f64, f64)>, RGBColor)> = Vec::new();
    let mut unplaced: Vec<String> = Vec::new();

    // Ceilings: compute lines from the ridge with the highest diagonal to the right edge,
    // diagonals from the left edge to the highest compute ceiling. The first of each kind is the
    // roof (solid), the others dashed.
    let mut compute_segs = Vec::new();
    for (i, c) in ceilings.compute.iter().enumerate() {
        if c.value < y.lo || c.value > y.hi {
            continue;
        }
        let from = top_m.map(|b| (c.value / b).max(x.lo)).unwrap_or(x.lo);
        let seg = [(from, c.value), (x.hi, c.value)];
        let style = INK.stroke_width(if i == 0 { 3 } else { 2 });
        if i == 0 {
            chart.draw_series(LineSeries::new(seg, style))?;
        } else {
            chart.draw_series(DashedLineSeries::new(seg, 14, 9, style))?;
        }
        let (a, b) = (px(seg[0]), px(seg[1]));
        lines.push((a, b));
        compute_segs.push((compute_text(c), b));
    }
    let mut memory_segs = Vec::new();
    for (i, m) in ceilings.memory.iter().enumerate() {
        let cap = top_c.unwrap_or(y.hi).min(y.hi);
        // y = m · x, clipped to the axes and ended at the highest compute ceiling.
        let x0 = x.lo.max(y.lo / m.value);
        let x1 = x.hi.min(cap / m.value);
        if x1 <= x0 {
            continue;
        }
        let colour = DIAGONAL_COLOURS[i % DIAGONAL_COLOURS.len()];
        let seg = [(x0, m.value * x0), (x1, m.value * x1)];
        let style = colour.stroke_width(if i == 0 { 3 } else { 2 });
        if i == 0 {
            chart.draw_series(LineSeries::new(seg, style))?;
        } else {
            let (dash, gap) = DIAGONAL_DASHES[(i - 1) % DIAGONAL_DASHES.len()];
            chart.draw_series(DashedLineSeries::new(seg, dash, gap, style))?;
        }
        let (a, b) = (px(seg[0]), px(seg[1]));
        lines.push((a, b));
        memory_segs.push((memory_text(m), a, b, colour));
    }

    // Points, coloured by workload (the same workload keeps its colour in the plot).
    let mut colours: BTreeMap<&str, RGBColor> = BTreeMap::new();
    for p in points {
        let n = colours.len();
        colours
            .entry(p.workload.as_str())
            .or_insert(PALETTE[n % PALETTE.len()]);
    }
    let markers: Vec<(f64, f64)> = points.iter().map(|p| px((p.intensity, p.gflops))).collect();
    let r = RADIUS as f64;
    for m in &markers {
        taken.push(own(*m));
    }

    // Compute labels: the right margin's column, top to bottom in the lines' order.
    let mut column: Vec<(String, (f64, f64))> = compute_segs
        .into_iter()
        .filter(|(t, _)| !captioned.contains(t))
        .collect();
    column.sort_by(|a, b| a.1 .1.total_cmp(&b.1 .1));
    let want: Vec<f64> = column
        .iter()
        .map(|(_, end)| end.1 - label_h / 2.0)
        .collect();
    let lo = area.t - label_h / 2.0;
    let hi = area.b;
    match stack(&want, label_h, lo, hi) {
        Some(tops) => {
            let left = area.r + TICK + 6.0;
            for ((text, end), top) in column.into_iter().zip(tops) {
                let (w, _) = text_size(&text, LABEL_SIZE);
                let rect = Rect {
                    l: left,
                    t: top,
                    r: left + w,
                    b: top + label_h,
                };
                ticks.push((
                    vec![
                        (end.0 + 2.0, end.1),
                        (end.0 + TICK / 2.0, end.1),
                        (left - 4.0, top + label_h / 2.0),
                    ],
                    INK,
                ));
                taken.push(rect.grow(MARGIN));
                texts.push((text, rect, INK));
            }
        }
        None => unplaced.extend(column.into_iter().map(|(t, _)| t)),
    }

    let free = |rect: &Rect, taken: &[Rect], lines: &[Segment]| {
        let padded = rect.grow(MARGIN);
        let clear = rect.grow(LINE_CLEARANCE);
        padded.inside(&area)
            && !taken.iter().any(|o| o.intersects(&padded))
            && !lines.iter().any(|(a, b)| clear.crosses(*a, *b))
    };
    // A bandwidth ceiling's label, in its line's colour: above the roof (where no line runs), on
    // a stem that rises from where its diagonal meets the roof.
    let todo: Vec<_> = memory_segs
        .into_iter()
        .filter(|s| !captioned.contains(&s.0))
        .collect();
    // Two layouts above the roof: every label right of its stem, the diagonal that ends furthest
    // right lowest; or every label left of its stem, the one that ends furthest left lowest.
    // Either way no stem passes another diagonal's label. The one that places more wins.
    let above = |right: bool| -> Vec<Option<(Rect, Segment)>> {
        let mut taken = taken.clone();
        let mut lines = lines.clone();
        let mut order: Vec<usize> = (0..todo.len()).collect();
        order.sort_by(|&i, &j| {
            let (p, q) = (todo[i].2 .0, todo[j].2 .0);
            if right {
                q.total_cmp(&p)
            } else {
                p.total_cmp(&q)
            }
        });
        let mut got = vec![None; todo.len()];
        for i in order {
            let b = todo[i].2;
            if b.1 <= area.t + 1.0 || b.0 >= area.r - 1.0 {
                continue;
            }
            let w = text_size(&todo[i].0, LABEL_SIZE).0;
            let left = if right { b.0 + 5.0 } else { b.0 - 5.0 - w };
            for row in 0..12 {
                let bottom = b.1 - LINE_CLEARANCE - 2.0 - row as f64 * (label_h + STACK_GAP);
                if bottom - label_h < area.t {
                    break;
                }
                let rect = Rect {
                    l: left,
                    t: bottom - label_h,
                    r: left + w,
                    b: bottom,
                };
                let stem = ((b.0, b.1 - 2.0), (b.0, rect.t + label_h / 2.0));
                if free(&rect, &taken, &lines) && !taken.iter().any(|o| o.crosses(stem.0, stem.1)) {
                    taken.push(rect.grow(MARGIN));
                    taken.push(stem_box(stem));
                    lines.push(stem);
                    got[i] = Some((rect, stem));
                    break;
                }
            }
        }
        got
    };
    let (right, left) = (above(true), above(false));
    let placed_n = |g: &[Option<(Rect, Segment)>]| g.iter().filter(|x| x.is_some()).count();
    let layout = if placed_n(&left) > placed_n(&right) {
        left
    } else {
        right
    };
    let mut rest = Vec::new();
    for ((text, a, b, colour), got) in todo.into_iter().zip(layout) {
        match got {
            Some((rect, stem)) => {
                taken.push(rect.grow(MARGIN));
                taken.push(stem_box(stem));
                lines.push(stem);
                let reach = if rect.l > stem.0 .0 {
                    rect.l - 1.0
                } else {
                    rect.r + 1.0
                };
                ticks.push((vec![stem.0, stem.1, (reach, stem.1 .1)], colour));
                texts.push((text, rect, colour));
            }
            None => rest.push((text, a, b, colour)),
        }
    }
    // The others beside their own line, touching it at a corner, at the first free spot along
    // it; else in the caption.
    for (text, a, b, colour) in rest {
        let (w, h) = (text_size(&text, LABEL_SIZE).0, label_h);
        let mut chosen = None;
        let gap = LINE_CLEARANCE + 2.0;
        'along: for frac in [0.35, 0.25, 0.45, 0.15, 0.55, 0.65, 0.05, 0.75, 0.85] {
            let at = (a.0 + (b.0 - a.0) * frac, a.1 + (b.1 - a.1) * frac);
            for up_left in [true, false] {
                let rect = if up_left {
                    Rect {
                        l: at.0 - gap - w,
                        t: at.1 - gap - h,
                        r: at.0 - gap,
                        b: at.1 - gap,
                    }
                } else {
                    Rect {
                        l: at.0 + gap,
                        t: at.1 + gap,
                        r: at.0 + gap + w,
                        b: at.1 + gap + h,
                    }
                };
                if free(&rect, &taken, &lines) {
                    chosen = Some(rect);
                    break 'along;
                }
            }
        }
        match chosen {
            Some(rect) => {
                taken.push(rect.grow(MARGIN));
                texts.push((text, rect, colour));
            }
            None => unplaced.push(text),
        }
    }

    // Labels: the most crowded first (points with neighbours close by), so they get the nearest
    // free spots.
    let mut order: Vec<usize> = (0..points.len()).collect();
    let crowd = |i: usize| {
        markers
            .iter()
            .filter(|m| (m.0 - markers[i].0).abs() < 120.0 && (m.1 - markers[i].1).abs() < 60.0)
            .count()
    };
    order.sort_by_key(|&i| (std::cmp::Reverse(crowd(i)), i));
    let mut leaders = Vec::new();
    let mut unplaced_points = Vec::new();
    for i in order {
        if captioned_points.contains(&i) {
            continue;
        }
        let p = points[i];
        // 6% wider than the font's layout box: renderers differ a little in glyph advances, and
        // a label set to the left of its marker must not reach it in any of them.
        let size = text_size(&p.label, LABEL_SIZE);
        let size = (size.0 * 1.06, size.1);
        let Some((rect, leader)) = place(markers[i], size, &area, &taken, &lines, &markers) else {
            unplaced_points.push(i);
            continue;
        };
        taken.push(rect.grow(MARGIN));
        if leader {
            let end = rect.nearest(markers[i]);
            leaders.push((toward(markers[i], end, r + 2.0), end));
            // Later labels keep off this leader as off a ceiling.
            lines.push((toward(markers[i], end, r + 2.0), end));
        }
        texts.push((p.label.clone(), rect, colours[p.workload.as_str()]));
    }
    for (path, colour) in ticks {
        root.draw(&PathElement::new(
            path.iter()
                .map(|p| (p.0.round() as i32, p.1.round() as i32))
                .collect::<Vec<_>>(),
            colour.stroke_width(1),
        ))?;
    }
    for (from, to) in leaders {
        root.draw(&PathElement::new(
            vec![(from.0 as i32, from.1 as i32), (to.0 as i32, to.1 as i32)],
            RGBColor(150, 150, 150).stroke_width(1),
        ))?;
    }
    for (p, m) in points.iter().zip(&markers) {
        root.draw(&Circle::new(
            (m.0 as i32, m.1 as i32),
            RADIUS,
            colours[p.workload.as_str()].filled(),
        ))?;
    }
    for (text, rect, colour) in texts {
        root.draw(&Text::new(
            text,
            (rect.l.round() as i32, rect.t.round() as i32),
            label_font
                .clone()
                .color(&colour)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        ))?;
    }
    root.present()?;
    Ok((unplaced, unplaced_points))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Scaling;
    use crate::report::test_support::{record, with_param};
    use crate::workload::Work;

    fn machine() -> Machine {
        Machine {
            host: "node01".into(),
            cpu_model: "Test CPU".into(),
            cores: 2,
            simd: "avx2".into(),
            simd_f64_lanes: 4,
            fma_units: 2,
            clock_ghz: 3.2,
            peak_gflops_per_core: 51.2,
            ..Machine::default()
        }
    }

    /// A DGEMM variant at n = 1024 reaching `gflops` on one thread.
    fn gemm(variant: &str, n: u64, gflops: f64) -> PointRecord {
        let t = 2.0 * (n as f64).powi(3) / gflops / 1e9;
        let mut r = with_param(
            record(0, "gemm", Scaling::Strong, 1, n, &[t, t * 1.01, t * 0.99]),
            "variant",
            variant,
        );
        r.point.id = format!("gemm-{variant}-{n}");
        r
    }

    /// A memory-bound point of `workload` with `flops` and `bytes` per repetition at `gbps`.
    fn memory(workload: &str, flops: f64, bytes: f64, gbps: f64) -> PointRecord {
        let t = bytes / gbps / 1e9;
        let mut r = record(1, workload, Scaling::Strong, 1, 1 << 20, &[t, t, t]);
        r.point.params.0.remove("variant");
        r.work = Work { flops, bytes };
        r.point.id = workload.replace('.', "-");
        r
    }

    fn fixture() -> Vec<PointRecord> {
        let mut recs = vec![
            gemm("naive", 1024, 1.1),
            gemm("ikj", 1024, 4.5),
            gemm("blocked", 1024, 9.0),
            gemm("tuned", 1024, 24.0),
            gemm("faer", 1024, 23.5),
            gemm("tuned", 512, 35.0),
            memory("stream.triad", 2e6, 24e6, 40.0),
            memory("reduce.dot", 2e6, 16e6, 38.0),
            memory("stencil.jacobi2d", 4e6, 16e6, 45.0),
            memory("stream.copy", 0.0, 16e6, 42.0),
        ];
        let mut pi = memory("pi.montecarlo", 3e6, 0.0, 1.0);
        pi.repetitions.iter_mut().for_each(|r| r.seconds = 0.01);
        recs.push(pi);
        let mut gpu = gemm("tuned", 2048, 9000.0);
        gpu.backend = "cuda".into();
        gpu.point.id = "gpu-gemm".into();
        recs.push(gpu);
        recs
    }

    /// Every `<text>` element of an SVG written by plotters: (x, top, pixel size, anchor,
    /// content), rotated ones left out. plotters writes font-size as the pixel size / 1.24.
    fn svg_texts(svg: &str) -> Vec<(f64, f64, f64, String, String)> {
        let mut out = Vec::new();
        for part in svg.split("<text ").skip(1) {
            let (attrs, rest) = part.split_once('>').unwrap();
            if attrs.contains("transform=") {
                continue;
            }
            let content = rest.split("</text>").next().unwrap();
            let attr = |name: &str| -> String {
                let key = format!(" {name}=\"");
                let from = format!(" {attrs}").find(&key).unwrap() + key.len() - 1;
                let s = &attrs[from..];
                s[..s.find('"').unwrap()].to_string()
            };
            // The top of the text from its vertical anchor: top (dy 0.76em), centre (0.5ex),
            // bottom (−0.5ex).
            let size: f64 = attr("font-size").parse::<f64>().unwrap() * 1.24;
            let y: f64 = attr("y").parse().unwrap();
            let top = match attr("dy").as_str() {
                "0.5ex" => y - size / 2.0,
                "-0.5ex" => y - size,
                _ => y,
            };
            out.push((
                attr("x").parse().unwrap(),
                top,
                size,
                attr("text-anchor"),
                content
                    .trim()
                    .replace("&amp;", "&")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">"),
            ));
        }
        out
    }

    /// Approximate advance width of a character in DejaVu Sans, in em (rounded up from the
    /// font's tables by character class).
    fn em(c: char) -> f64 {
        match c {
            ' ' => 0.33,
            '.' | ',' | ':' | ';' | '\'' | '|' | 'i' | 'j' | 'l' => 0.29,
            '(' | ')' | '[' | ']' | 'f' | 't' | 'r' | 'I' => 0.41,
            '/' | '-' => 0.37,
            'm' | 'w' | 'M' | 'W' => 0.98,
            '0'..='9' => 0.64,
            c if c.is_ascii_uppercase() => 0.74,
            '+' | '=' | '*' | '<' | '>' => 0.84,
            _ => 0.62,
        }
    }

    /// The box of a text of `size` pixels with its top at `y` and the given anchor, its width
    /// from [`em`]; the em is the SVG font-size, `size` / 1.24.
    fn text_box(x: f64, y: f64, size: f64, anchor: &str, text: &str) -> Rect {
        let w = size / 1.24 * text.chars().map(em).sum::<f64>();
        let l = match anchor {
            "end" => x - w,
            "middle" => x - w / 2.0,
            _ => x,
        };
        Rect {
            l,
            t: y,
            r: l + w,
            b: y + size,
        }
    }

    /// The stroke colours of ceiling lines in an SVG: the compute ceilings' ink and the
    /// diagonals' colours.
    fn ceiling_inks() -> Vec<String> {
        std::iter::once(INK)
            .chain(DIAGONAL_COLOURS)
            .map(|c| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2))
            .collect()
    }

    /// No two texts overlap (labels, ceiling labels, ticks, title, caption lines), no label
    /// covers a marker, no leader runs through a text and no point label crosses a ceiling.
    fn assert_clean_layout(
        svg: &str,
        texts: &[(f64, f64, f64, String, String)],
        placed: &[RooflinePoint],
    ) {
        let ceiling_inks = ceiling_inks();
        // No two texts overlap (labels, ceiling labels, ticks, title, caption lines).
        let boxes: Vec<(Rect, &str)> = texts
            .iter()
            .map(|t| (text_box(t.0, t.1, t.2, &t.3, &t.4), t.4.as_str()))
            .collect();
        for (i, (a, ta)) in boxes.iter().enumerate() {
            for (b, tb) in &boxes[i + 1..] {
                assert!(!a.intersects(b), "`{ta}` {a:?} overlaps `{tb}` {b:?}");
            }
        }
        // No point label covers a marker.
        let circles: Vec<(f64, f64)> = svg
            .split("<circle ")
            .skip(1)
            .map(|c| {
                let num = |k: &str| -> f64 {
                    let s = &c[c.find(k).unwrap() + k.len()..];
                    s[..s.find('"').unwrap()].parse().unwrap()
                };
                (num("cx=\""), num("cy=\""))
            })
            .collect();
        assert_eq!(circles.len(), placed.len());
        for (b, t) in &boxes {
            for c in &circles {
                let marker = Rect {
                    l: c.0 - 8.0,
                    t: c.1 - 8.0,
                    r: c.0 + 8.0,
                    b: c.1 + 8.0,
                };
                assert!(!b.intersects(&marker), "`{t}` covers the marker at {c:?}");
            }
        }
        // A label beside its marker (no leader) is nearer to it than to any other marker.
        for (i, p) in placed.iter().enumerate() {
            let Some((b, _)) = boxes.iter().find(|(_, t)| *t == p.label) else {
                continue;
            };
            let own = circles[i];
            let own_d = distance(b.nearest(own), own);
            if own_d > 20.0 {
                continue;
            }
            for (j, c) in circles.iter().enumerate() {
                if j != i {
                    assert!(
                        distance(b.nearest(*c), *c) >= own_d,
                        "`{}` sits nearer to `{}`'s marker than to its own",
                        p.label,
                        placed[j].label
                    );
                }
            }
        }
        // No point label crosses a ceiling line (drawn in the ceilings' ink, dashed lines as
        // many short polylines).
        let segments: Vec<Segment> = svg
            .split("<polyline ")
            .skip(1)
            .filter(|l| {
                ceiling_inks
                    .iter()
                    .any(|c| l.contains(&format!("stroke=\"{c}\"")))
            })
            .flat_map(|l| {
                let from = l.find("points=\"").unwrap() + 8;
                let pts: Vec<(f64, f64)> = l[from..l[from..].find('"').unwrap() + from]
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                pts.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
            })
            .collect();
        assert!(segments.len() > 10, "ceilings drawn: {}", segments.len());
        // Leader lines (grey) run through no text.
        let leaders: Vec<Segment> = svg
            .split("<polyline ")
            .skip(1)
            .filter(|l| l.contains("stroke=\"#969696\""))
            .map(|l| {
                let from = l.find("points=\"").unwrap() + 8;
                let pts: Vec<(f64, f64)> = l[from..l[from..].find('"').unwrap() + from]
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                (pts[0], pts[1])
            })
            .collect();
        for (b, t) in &boxes {
            // A leader ends on its own label's edge (within the estimate of text extents).
            for (a, z) in leaders
                .iter()
                .filter(|(_, z)| distance(b.nearest(*z), *z) > 6.0)
            {
                assert!(
                    !b.grow(-2.0).crosses(*a, *z),
                    "a leader {a:?}–{z:?} runs through `{t}` {b:?}"
                );
            }
        }
        for (b, t) in boxes
            .iter()
            .filter(|(_, t)| placed.iter().any(|p| p.label == *t))
        {
            for (a, z) in &segments {
                assert!(
                    !b.grow(2.0).crosses(*a, *z),
                    "`{t}` {b:?} crosses the line {a:?}–{z:?}"
                );
            }
        }
    }

    #[test]
    fn ceilings_from_the_machine() {
        let c = Ceilings::theoretical(&machine(), 2);
        let v: Vec<f64> = c.compute.iter().map(|c| c.value).collect();
        assert_eq!(v, vec![102.4, 51.2, 25.6]);
        assert_eq!(c.compute[0].label, "peak (avx2 + FMA)");
        assert!(c.memory.is_empty());
        assert!(Ceilings::theoretical(&Machine::default(), 4)
            .compute
            .is_empty());
        let c = c.with_bandwidth("DRAM", 40.0, Source::Measured("calibrate".into()));
        assert_eq!(
            c.provenance(),
            "compute ceilings theoretical; bandwidth measured (calibrate)."
        );
    }

    #[test]
    fn a_calibrated_profile_gives_measured_cache_dram_and_dgemm_ceilings() {
        let profile = crate::calibrate::profile::tests::fixture();
        let m = machine();
        let c = profile_ceilings(&profile, &m, 1, &[]);
        let memory: Vec<(&str, f64)> = c
            .memory
            .iter()
            .map(|c| (c.label.as_str(), c.value))
            .collect();
        let want_memory: Vec<(String, f64)> = ["L1", "L2", "L3"]
            .iter()
            .filter_map(|l| {
                profile
                    .level_gbps(l, 1)
                    .map(|g| (format!("{l}, measured"), g))
            })
            .chain([("DRAM (triad), measured".to_string(), 40.0)])
            .collect();
        assert_eq!(memory.len(), want_memory.len(), "{memory:?}");
        for (label, gbps) in &want_memory {
            assert!(
                memory.contains(&(label.as_str(), *gbps)),
                "{label}: {memory:?}"
            );
        }
        assert!(
            memory.windows(2).all(|w| w[0].1 >= w[1].1),
            "highest first: {memory:?}"
        );
        let dgemm = c
            .compute
            .iter()
            .find(|c| c.label == "DGEMM, measured")
            .expect("a measured DGEMM ceiling");
        assert_eq!(Some(dgemm.value), profile.dgemm_gflops(1));
        assert!(c.compute.iter().any(|c| c.source == Source::Theoretical));
        assert!(
            c.provenance().contains("by `scalelab calibrate` at 1 core"),
            "{}",
            c.provenance()
        );
        // No figure for 8 workers in the profile: the run's own ceilings instead.
        assert_eq!(
            profile_ceilings(&profile, &m, 8, &[]),
            run_ceilings(&m, 8, &[])
        );
    }

    #[test]
    fn points_and_the_ones_left_out() {
        let recs = fixture();
        let (placed, left) = points(&recs);
        let labels: Vec<&str> = placed.iter().map(|p| p.label.as_str()).collect();
        assert!(labels.contains(&"gemm naive"), "{labels:?}");
        assert!(labels.contains(&"gemm tuned n=1024") && labels.contains(&"gemm tuned n=512"));
        assert!(labels.contains(&"stream.triad"));
        let triad = placed.iter().find(|p| p.label == "stream.triad").unwrap();
        assert!((triad.intensity - 1.0 / 12.0).abs() < 1e-12);
        assert!((triad.gbps - 40.0).abs() < 1e-9);
        let naive = placed.iter().find(|p| p.label == "gemm naive").unwrap();
        assert!((naive.gflops - 1.1).abs() < 1e-9, "median GFLOP/s");
        assert!((naive.intensity - 1024.0 / 12.0).abs() < 1e-9);
        let reasons: BTreeMap<&str, &str> = left
            .iter()
            .map(|l| (l.point_id.as_str(), l.reason.as_str()))
            .collect();
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(reasons["pi-montecarlo"].starts_with("counts no bytes"));
        assert!(reasons["stream-copy"].starts_with("counts no FLOPs"));
        assert!(reasons["gpu-gemm"].starts_with("GPU point"));
    }

    #[test]
    fn roofline_svg_holds_every_label_and_none_overlap() {
        let recs = fixture();
        let dir = tempfile::tempdir().unwrap();
        let roof = write(dir.path(), &recs, &machine()).unwrap();
        // To look at it: SCALELAB_KEEP_ROOFLINE=/tmp/roof cargo test --lib roofline_svg
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
            std::fs::create_dir_all(&keep).unwrap();
            for f in &roof.plots[0].files {
                std::fs::copy(f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
            }
        }
        assert_eq!(roof.plots.len(), 1);
        assert_eq!(roof.plots[0].stem, "roofline");
        for f in &roof.plots[0].files {
            assert!(f.exists(), "{}", f.display());
        }
        let png = std::fs::read(dir.path().join("roofline.png")).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
        let texts = svg_texts(&svg);
        let (placed, _) = points(&recs);
        for p in &placed {
            assert!(
                texts.iter().any(|t| t.4 == p.label),
                "label {} missing from the SVG",
                p.label
            );
        }
        for want in [
            "peak (avx2 + FMA): 51.2 GFLOP/s",
            "avx2, no FMA: 25.6 GFLOP/s",
            "scalar + FMA: 12.8 GFLOP/s",
            "bandwidth, measured (stream.triad): 40.0 GB/s",
        ] {
            assert!(texts.iter().any(|t| t.4 == want), "{want} missing");
        }
        let all: Vec<&str> = texts.iter().map(|t| t.4.as_str()).collect();
        let all = all.join(" ");
        assert!(
            all.contains("compute ceilings theoretical"),
            "subtitle: {all}"
        );
        assert!(all.contains("bandwidth measured (the best stream.* point of this run"));
        assert_clean_layout(&svg, &texts, &placed);
        let md = markdown(&roof);
        assert!(md.contains("![Roofline, p = 1 worker (Test CPU)](plots/roofline.png)"));
        assert!(
            md.contains("- pi.montecarlo (1 point: `pi-montecarlo`): counts no bytes (no memory traffic), so its arithmetic intensity is infinite."),
            "{md}"
        );
        assert!(
            md.contains("- gemm tuned (1 point: `gpu-gemm`): GPU point"),
            "{md}"
        );
    }

    /// A calibrated profile's ceilings: a measured DGEMM within 25% of the peak (two compute
    /// lines close together) and four diagonals (L1, L2, L3, DRAM). Every ceiling label is in the
    /// plot, none overlaps another text, each compute label is at its line's height (within a
    /// label's height: nudged apart, not moved away) and each diagonal's label is in its colour.
    #[test]
    fn roofline_with_calibrated_ceilings_labels_every_ceiling_apart() {
        let recs = fixture();
        let m = machine();
        let calibrated = |p: u64| {
            let mut c = Ceilings::theoretical(&m, p);
            c.compute.push(Ceiling {
                label: "DGEMM, measured".into(),
                value: 44.0,
                source: Source::Measured("DGEMM by calibrate".into()),
            });
            c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
            let how = || Source::Measured("cache bandwidth by calibrate".into());
            c.with_bandwidth("L1, measured", 150.0, how())
                .with_bandwidth("L2, measured", 95.0, how())
                .with_bandwidth("L3, measured", 60.0, how())
                .with_bandwidth("DRAM (triad), measured", 40.0, how())
        };
        let dir = tempfile::tempdir().unwrap();
        let roof = write_with(dir.path(), &recs, &m, |p, _| calibrated(p)).unwrap();
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
            std::fs::create_dir_all(&keep).unwrap();
            let to = Path::new(&keep).join("calibrated.png");
            std::fs::copy(dir.path().join("roofline.png"), to).unwrap();
        }
        assert_eq!(roof.plots.len(), 1);
        let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
        let texts = svg_texts(&svg);
        let (placed, _) = points(&recs);
        let want_compute = [
            "peak (avx2 + FMA): 51.2 GFLOP/s",
            "DGEMM, measured: 44.0 GFLOP/s",
            "avx2, no FMA: 25.6 GFLOP/s",
            "scalar + FMA: 12.8 GFLOP/s",
        ];
        let want_memory = [
            "L1, measured: 150 GB/s",
            "L2, measured: 95.0 GB/s",
            "L3, measured: 60.0 GB/s",
            "DRAM (triad), measured: 40.0 GB/s",
        ];
        let all: Vec<&str> = texts.iter().map(|t| t.4.as_str()).collect();
        for want in want_compute.iter().chain(&want_memory) {
            assert!(all.contains(want), "{want} missing from {all:?}");
        }
        assert!(
            !all.join(" ").contains("no room for their label"),
            "every ceiling labelled in the plot: {all:?}"
        );
        assert_clean_layout(&svg, &texts, &placed);
        // Compute labels: one column right of the plot, top to bottom in the lines' order,
        // each within a label's height of its line.
        let compute: Vec<&(f64, f64, f64, String, String)> = want_compute
            .iter()
            .map(|w| texts.iter().find(|t| t.4 == *w).unwrap())
            .collect();
        assert!(compute.windows(2).all(|w| w[0].0 == w[1].0), "{compute:?}");
        assert!(compute.windows(2).all(|w| w[0].1 < w[1].1), "{compute:?}");
        let horizontal: Vec<f64> = svg
            .split("<polyline ")
            .skip(1)
            .filter(|l| l.contains("stroke=\"#282828\""))
            .filter_map(|l| {
                let from = l.find("points=\"").unwrap() + 8;
                let pts: Vec<(f64, f64)> = l[from..l[from..].find('"').unwrap() + from]
                    .split_whitespace()
                    .map(|xy| {
                        let (x, y) = xy.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect();
                // The ceiling's last dash ends at the right edge, left of its label.
                let last = pts.last()?;
                (pts.len() == 2 && pts[0].1 == last.1 && last.0 < compute[0].0).then_some(last.1)
            })
            .collect();
        for t in &compute {
            let centre = t.1 + t.2 / 2.0;
            assert!(
                horizontal.iter().any(|y| (y - centre).abs() < t.2),
                "`{}` at {centre} is by no line of {horizontal:?}",
                t.4
            );
        }
        // Each diagonal's label in the diagonal's own colour, all four colours different.
        for (i, want) in want_memory.iter().enumerate() {
            let c = DIAGONAL_COLOURS[i];
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
            let at = svg
                .find(&format!(">\n{want}\n</text>"))
                .or_else(|| svg.find(&format!(">{want}</text>")));
            let at = at.unwrap_or_else(|| panic!("{want} not in the SVG"));
            let open = svg[..at].rfind("<text ").unwrap();
            assert!(svg[open..at].contains(&fill), "{want}: {}", &svg[open..at]);
        }
    }

    /// The DGEMM study of the quick start on a 2-core Zen 5 (naive → faer at n = 512 and 1024,
    /// p = 2) under a calibrated profile's ceilings: the measured DGEMM line runs between the
    /// tuned and faer markers and the peak, the cache diagonals through the slow variants. No
    /// point label's box may touch a ceiling line (read back from the SVG's geometry); a label
    /// with no legal spot is named in the caption, with its rate, instead.
    #[test]
    fn quick_start_gemm_labels_never_cross_a_ceiling() {
        let m = Machine {
            cpu_model: "AMD EPYC".into(),
            cores: 2,
            simd: "avx512".into(),
            simd_f64_lanes: 8,
            fma_units: 2,
            clock_ghz: 4.236,
            peak_gflops_per_core: 135.6,
            ..Machine::default()
        };
        let mut recs = Vec::new();
        for (variant, at512, at1024) in [
            ("naive", 2.39, 0.9),
            ("ikj", 32.6, 30.1),
            ("blocked", 45.9, 44.0),
            ("tuned", 144.0, 170.0),
            ("faer", 188.0, 201.0),
        ] {
            for (n, gflops) in [(512, at512), (1024, at1024)] {
                let mut r = gemm(variant, n, gflops);
                r.point.resources.threads = 2;
                recs.push(r);
            }
        }
        let ceilings = |p: u64| {
            let mut c = Ceilings::theoretical(&m, p);
            c.compute.push(Ceiling {
                label: "DGEMM, measured".into(),
                value: 206.7,
                source: Source::Measured("DGEMM by `scalelab calibrate` at 2 cores".into()),
            });
            c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
            let how = || Source::Measured("cache bandwidth by `scalelab calibrate`".into());
            c.with_bandwidth("L1, measured", 763.2, how())
                .with_bandwidth("L2, measured", 477.5, how())
                .with_bandwidth("L3, measured", 218.6, how())
                .with_bandwidth("DRAM (triad), measured", 99.9, how())
        };
        let dir = tempfile::tempdir().unwrap();
        let roof = write_with(dir.path(), &recs, &m, |p, _| ceilings(p)).unwrap();
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
            std::fs::create_dir_all(&keep).unwrap();
            let to = Path::new(&keep).join("quick-start-gemm.png");
            std::fs::copy(dir.path().join("roofline.png"), to).unwrap();
        }
        assert_eq!(roof.plots.len(), 1);
        let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
        let texts = svg_texts(&svg);
        let (placed, _) = points(&recs);
        assert_eq!(placed.len(), 10);
        assert!(texts.iter().any(|t| t.4 == "DGEMM, measured: 207 GFLOP/s"));
        // Every label in the plot, or named in the caption with its rate.
        let all = texts
            .iter()
            .map(|t| t.4.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        for p in &placed {
            let in_plot = texts.iter().any(|t| t.4 == p.label);
            let in_caption =
                all.contains(&format!("{} ({}", p.label, rate_text(p.gflops, "GFLOP/s")));
            assert!(
                in_plot != in_caption,
                "`{}`: in the plot {in_plot}, in the caption {in_caption}",
                p.label
            );
        }
        // The geometry: no label box within 2 px of a ceiling line (and the rest of a clean
        // layout).
        assert_clean_layout(&svg, &texts, &placed);
    }

    /// A CUDA point with its device's peaks recorded, as the point process writes it.
    fn gpu_point(id: &str, device: crate::device::DevicePeaks, gflops: f64) -> PointRecord {
        let mut r = gemm("tiled", 4096, gflops);
        r.backend = "cuda".into();
        r.point.workload = "cuda.gemm".into();
        r.point.resources.gpus = 1;
        r.point.id = id.into();
        r.devices = vec![device];
        r
    }

    /// GPU points get a roofline of their own device, from the peaks in their records (an H100:
    /// FP64 and FP32 of the CUDA cores and HBM bandwidth, all theoretical), apart from the CPU
    /// points' roofline. A device outside the table of FLOPs per SM per cycle gets its bandwidth
    /// ceiling only, and report.md says in plain words why there is no compute ceiling. A GPU
    /// record without peaks (an older scalelab) is listed as left out. The records go through
    /// JSON first, as `scalelab report` reads them.
    #[test]
    fn gpu_points_are_drawn_against_their_devices_ceilings() {
        use crate::device::DevicePeaks;
        let h100 = DevicePeaks::from_attributes(
            0,
            "NVIDIA H100 80GB HBM3",
            (9, 0),
            132,
            1980.0,
            2619.0,
            5120,
        );
        let b200 =
            DevicePeaks::from_attributes(0, "NVIDIA B200", (10, 0), 148, 1965.0, 4000.0, 8192);
        let mut recs = vec![
            gemm("tuned", 1024, 24.0),
            gpu_point("h100-gemm", h100.clone(), 21_000.0),
            gpu_point("b200-gemm", b200, 40_000.0),
        ];
        let mut old = gpu_point("old-gpu", h100, 20_000.0);
        old.devices.clear();
        recs.push(old);
        let recs: Vec<PointRecord> = recs
            .iter()
            .map(|r| serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap())
            .collect();
        assert_eq!(recs[1].devices[0].name, "NVIDIA H100 80GB HBM3");
        let dir = tempfile::tempdir().unwrap();
        let roof = write(dir.path(), &recs, &machine()).unwrap();
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
            std::fs::create_dir_all(&keep).unwrap();
            for p in &roof.plots {
                let f = dir.path().join(format!("{}.png", p.stem));
                std::fs::copy(&f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
            }
        }
        let stems: Vec<&str> = roof.plots.iter().map(|p| p.stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "roofline",
                "roofline-gpu-nvidia-b200-1",
                "roofline-gpu-nvidia-h100-80gb-hbm3-1"
            ]
        );
        let texts = |stem: &str| -> Vec<String> {
            let svg = std::fs::read_to_string(dir.path().join(format!("{stem}.svg"))).unwrap();
            svg_texts(&svg).into_iter().map(|t| t.4).collect()
        };
        let h = texts("roofline-gpu-nvidia-h100-80gb-hbm3-1");
        for want in [
            "FP32 peak (CUDA cores): 66908 GFLOP/s",
            "FP64 peak (CUDA cores): 33454 GFLOP/s",
            "device memory peak: 3352 GB/s",
            "cuda.gemm tiled",
        ] {
            assert!(h.iter().any(|t| t == want), "{want} missing from {h:?}");
        }
        assert!(
            h.iter().any(|t| t == "Roofline, 1 × NVIDIA H100 80GB HBM3"),
            "{h:?}"
        );
        // The CPU plot holds the CPU point only, under the CPU's ceilings.
        let cpu = texts("roofline");
        assert!(cpu.iter().any(|t| t == "gemm tuned"));
        assert!(!cpu.iter().any(|t| t.starts_with("cuda.gemm")));
        assert!(!cpu.iter().any(|t| t.contains("CUDA cores")));
        // The unknown architecture: a bandwidth ceiling, no compute ceiling, and a note.
        let b = texts("roofline-gpu-nvidia-b200-1");
        assert!(
            b.iter().any(|t| t == "device memory peak: 8192 GB/s"),
            "{b:?}"
        );
        assert!(
            !b.iter()
                .any(|t| t.contains("GFLOP/s:") || t.contains("CUDA cores)")),
            "{b:?}"
        );
        let md = markdown(&roof);
        assert!(
            md.contains("The GPU roofline of NVIDIA B200 (compute capability 10.0) ([roofline-gpu-nvidia-b200-1.png](plots/roofline-gpu-nvidia-b200-1.png)) has only the ceilings the device's figures give: its compute capability is not in scalelab's table of FLOPs per SM per cycle (src/device.rs), so no compute peak is drawn rather than a guessed one."),
            "{md}"
        );
        assert!(
            md.contains("(plots/roofline-gpu-nvidia-h100-80gb-hbm3-1.png)"),
            "{md}"
        );
        assert!(
            md.contains("- cuda.gemm tiled (1 point: `old-gpu`): GPU point whose record holds no device peaks"),
            "{md}"
        );
    }

    /// In a run of several studies, a study with two or more points at one worker count (the
    /// DGEMM variants) gets its own roofline besides the run's; a study of one kernel per worker
    /// count (the triad) does not, nor does a run of a single study. report.md shows it in the
    /// study's section.
    #[test]
    fn a_study_of_several_kernels_gets_its_own_roofline() {
        let mut recs = fixture();
        recs.retain(|r| r.backend != "cuda");
        // The memory-bound kernels each in a study of their own.
        for (k, r) in recs.iter_mut().filter(|r| r.point.study == 1).enumerate() {
            r.point.study = 1 + k;
            r.point.study_name = r.point.workload.clone();
        }
        let dir = tempfile::tempdir().unwrap();
        let per = write_studies(dir.path(), &recs, &machine(), |p, pts| {
            run_ceilings(&machine(), p, pts)
        })
        .unwrap();
        let got: Vec<(usize, Vec<&str>)> = per
            .iter()
            .map(|(i, plots)| (*i, plots.iter().map(|p| p.stem.as_str()).collect()))
            .collect();
        assert_eq!(got, [(0, vec!["study1-gemm-strong-roofline"])]);
        assert!(dir.path().join("study1-gemm-strong-roofline.svg").exists());
        assert!(dir.path().join("study1-gemm-strong-roofline.png").exists());
        let svg =
            std::fs::read_to_string(dir.path().join("study1-gemm-strong-roofline.svg")).unwrap();
        let texts: Vec<String> = svg_texts(&svg).into_iter().map(|t| t.4).collect();
        assert!(texts.iter().any(|t| t == "gemm blocked"), "{texts:?}");
        assert!(!texts.iter().any(|t| t == "stream.triad"), "{texts:?}");
        assert!(texts
            .join(" ")
            .contains("Roofline of gemm strong, p = 1 worker"));
        // One study alone: the run's roofline is the study's.
        let only: Vec<PointRecord> = recs
            .iter()
            .filter(|r| r.point.study == 0)
            .cloned()
            .collect();
        assert!(
            write_studies(dir.path(), &only, &machine(), |p, pts| run_ceilings(
                &machine(),
                p,
                pts
            ))
            .unwrap()
            .is_empty()
        );
        // In report.md, in the study's section.
        let run_dir = tempfile::tempdir().unwrap();
        let run = crate::results::RunDir::new(run_dir.path());
        let plan = crate::plan::Plan {
            experiment: "roof".into(),
            manifest_sha256: "0".repeat(64),
            points: recs.iter().map(|r| r.point.clone()).collect(),
        };
        crate::report::write(&run, &plan, &recs, &machine()).unwrap();
        let md = std::fs::read_to_string(run.report()).unwrap();
        let at = md
            .find("![Roofline of gemm strong, p = 1 worker (Test CPU)](plots/study1-gemm-strong-roofline.png)")
            .unwrap_or_else(|| panic!("{md}"));
        let study2 = md.find("## Study 2").unwrap();
        assert!(at < study2, "in study 1's section");
        assert!(
            md.contains("Studies with a roofline of their own, in their sections above: [study 1 (gemm strong)](plots/study1-gemm-strong-roofline.png)."),
            "{md}"
        );
    }

    #[test]
    fn measured_ceilings_from_outside() {
        let recs = fixture();
        let dir = tempfile::tempdir().unwrap();
        let m = machine();
        write_with(dir.path(), &recs, &m, |p, _| {
            Ceilings::theoretical(&m, p)
                .with_bandwidth("DRAM", 38.0, Source::Measured("calibrate".into()))
                .with_bandwidth("L2", 180.0, Source::Measured("calibrate".into()))
        })
        .unwrap();
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
            std::fs::create_dir_all(&keep).unwrap();
            let to = Path::new(&keep).join("measured.png");
            std::fs::copy(dir.path().join("roofline.png"), to).unwrap();
        }
        let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
        let texts: Vec<String> = svg_texts(&svg).into_iter().map(|t| t.4).collect();
        assert!(texts.iter().any(|t| t == "L2: 180 GB/s"), "{texts:?}");
        assert!(texts.iter().any(|t| t == "DRAM: 38.0 GB/s"), "{texts:?}");
        assert!(texts.join(" ").contains("bandwidth measured (calibrate)"));
    }

    #[test]
    fn one_plot_per_worker_count() {
        let mut recs = fixture();
        let mut two = gemm("tuned", 1024, 70.0);
        two.point.resources.threads = 2;
        two.point.id = "gemm-tuned-2t".into();
        recs.push(two);
        let dir = tempfile::tempdir().unwrap();
        let roof = write(dir.path(), &recs, &machine()).unwrap();
        let stems: Vec<&str> = roof.plots.iter().map(|p| p.stem.as_str()).collect();
        assert_eq!(stems, ["roofline", "roofline-p1"]);
        let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
        let texts: Vec<String> = svg_texts(&svg).into_iter().map(|t| t.4).collect();
        assert!(
            texts.iter().any(|t| t == "peak (avx2 + FMA): 102 GFLOP/s"),
            "ceilings × p"
        );
        assert!(texts.iter().any(|t| t == "gemm tuned"), "{texts:?}");
        assert!(
            !texts.iter().any(|t| t.starts_with("bandwidth, measured")),
            "no stream point at p = 2: no bandwidth ceiling"
        );
        assert!(texts.join(" ").contains("no bandwidth ceiling"));
    }
}

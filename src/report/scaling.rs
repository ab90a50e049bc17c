//! Scaling math: speedup, parallel efficiency, the Karp–Flatt metric, and Amdahl's and Gustafson's
//! serial fractions, computed from the records of a run.
//!
//! **Series.** The ok records of a run are grouped into series: points of the same study whose
//! workload parameters are equal, everything but the resource axes (nodes, ranks, threads, gpus)
//! being held fixed. In a weak-scaling study the size grows with the workers, so a weak series
//! holds the points that share every parameter but `size` (or the parameter the workload's weak
//! scaling grows instead: `batch` for `mpi.train`, so that its weak efficiency T(p₀)/T(p) is the
//! share of the base's samples/s per rank each rank keeps); when a study sweeps several base
//! sizes, they are told apart by the size per worker, `size / rule(p)` with the workload's
//! [`WeakRule`]. The parallelism of a point is
//! p = [`Resources::workers`] = ranks × threads × max(gpus, 1), and its time T(p) is the **median**
//! of its repetitions (robust against the odd slow repetition). The base of a series is its point
//! with the smallest p, p₀ (the fastest of them if several points share it); a point whose median
//! is not a positive number is left out, as its ratios would be infinite.
//!
//! **Disturbed points** ([`PointRecord::is_disturbed`](crate::results::PointRecord::is_disturbed): other work used the cores a point needed)
//! keep their speedup and efficiency, but the base is the smallest-p point among the undisturbed
//! ones (all points when every one is disturbed), and they stay out of the Amdahl and Gustafson
//! fits, like oversubscribed points.
//!
//! **Strong scaling** (fixed problem):
//! * speedup S(p) = T(p₀) · p₀ / T(p) (the base is assumed to run at speedup p₀, so S(1) = 1 when
//!   the series starts at one worker);
//! * parallel efficiency E(p) = S(p) / p;
//! * Karp–Flatt experimentally determined serial fraction e(p) = (1/S − 1/p) / (1 − 1/p), undefined
//!   at p = 1 (Karp & Flatt 1990, "Measuring parallel processor performance", CACM 33(5)). An e that
//!   grows with p points at parallel overhead rather than a serial part;
//! * Amdahl serial fraction f: Amdahl's law 1/S = f + (1 − f)/p is linear in 1/p; subtracting 1/p
//!   from both sides gives y = f · x with y = 1/S − 1/p and x = 1 − 1/p, so f is fitted by least
//!   squares through the origin, f = Σxy / Σx², over the points of the series that are not
//!   oversubscribed (at least two distinct p). The base point at p = 1 has x = y = 0 and does not
//!   pull on the fit. When times follow t(p) = a + b/p exactly, f = a / (a + b) and e(p) = f for
//!   every p.
//!
//! **Weak scaling** (work per worker fixed):
//! * efficiency E(p) = T(p₀) / T(p);
//! * Gustafson scaled speedup S(p) = p · E(p) (Gustafson 1988, "Reevaluating Amdahl's law",
//!   CACM 31(5)): the speedup over one worker doing the whole scaled problem, if one worker runs the
//!   base problem in T(p₀);
//! * Gustafson serial fraction α: Gustafson's law S = p − α (p − 1), fitted by least squares through
//!   the origin of y = p − S on x = p − 1: α = Σxy / Σx² (oversubscribed points left out, as for
//!   Amdahl).
//!
//! The band plotted around each curve comes from the fastest and slowest repetition of each point
//! against the base median: S from T_max and T_min.
//!
//! **When a value is outside its range.** Each quantity has a range its definition gives it:
//! S(p) ≤ p and E(p) ≤ 1 unless the speedup is superlinear, and e, f, α lie in [0, 1] only when
//! the times follow the model. Measured times do not have to: a base slowed by another program, a
//! share of the data that now fits in cache, or parallel runs that are slower than the base all
//! push values outside. [`speedup_text`], [`efficiency_text`], [`karp_flatt_text`],
//! [`amdahl_text`] and [`gustafson_text`] are the only places that word these values: inside the
//! range as a number, outside as what it is ("superlinear (speedup 2.40 > p = 2: cache effects or
//! a noisy base)", "not meaningful (f = 2.78 outside [0, 1]: ...)"), never as a percentage beyond
//! 100 %. The CSV files keep the raw numbers.

use std::collections::BTreeMap;

use crate::plan::{Resources, Scaling};
use crate::results::{PointRecord, Status};
use crate::stats::Summary;
use crate::value::{Size, Value};
use crate::workload::{self, WeakRule};

/// One point of a series with its scaling numbers.
#[derive(Clone, Debug)]
pub struct ScalingPoint<'a> {
    pub record: &'a PointRecord,
    /// Parallelism p = [`Resources::workers`].
    pub workers: u64,
    /// Statistics of the point's repetition times, seconds.
    pub summary: Summary,
    /// Strong: S(p) = T(p₀)·p₀/T(p). Weak: Gustafson scaled speedup p·E(p).
    pub speedup: f64,
    /// The speedup from the slowest and from the fastest repetition: (from T_max, from T_min).
    pub speedup_range: (f64, f64),
    /// Strong: S/p. Weak: T(p₀)/T(p).
    pub efficiency: f64,
    /// The efficiency from the slowest and from the fastest repetition.
    pub efficiency_range: (f64, f64),
    /// Karp–Flatt metric (strong scaling, p > 1 only).
    pub karp_flatt: Option<f64>,
}

/// A least-squares serial fraction (Amdahl's f or Gustafson's α).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SerialFit {
    /// The fitted serial fraction.
    pub serial_fraction: f64,
    /// Points the fit used.
    pub points: usize,
    /// Root mean square of the residuals of the linearised model (y − f·x), a rough quality
    /// measure: 0 when the data follow the law exactly.
    pub rms_residual: f64,
}

impl SerialFit {
    /// Amdahl's upper bound on the speedup, 1/f (None when f ≤ 0: no serial part was measured).
    pub fn max_speedup(&self) -> Option<f64> {
        (self.serial_fraction > 0.0).then(|| 1.0 / self.serial_fraction)
    }
}

/// Points of one study that differ only in their resources (see the module documentation).
#[derive(Clone, Debug)]
pub struct Series<'a> {
    /// Index of the study in the manifest.
    pub study: usize,
    pub study_name: String,
    pub workload: String,
    pub scaling: Scaling,
    /// The parameters held fixed, e.g. `variant=blocked n=1024` (weak: the base point's size,
    /// `base n=1024`); empty when the workload has no parameters.
    pub label: String,
    /// Points in ascending p (ties: ascending size, then point id).
    pub points: Vec<ScalingPoint<'a>>,
    /// Index of the base point in `points`.
    pub base: usize,
    /// Amdahl serial fraction (strong series with at least two distinct p).
    pub amdahl: Option<SerialFit>,
    /// Gustafson serial fraction (weak series with at least two distinct p).
    pub gustafson: Option<SerialFit>,
}

impl Series<'_> {
    /// The base point (smallest p).
    pub fn base_point(&self) -> &ScalingPoint<'_> {
        &self.points[self.base]
    }

    /// How many different worker counts the series spans.
    pub fn distinct_workers(&self) -> usize {
        let mut ps: Vec<u64> = self.points.iter().map(|p| p.workers).collect();
        ps.dedup();
        ps.len()
    }

    /// The label, or the workload name when the label is empty (for legends).
    pub fn display_label(&self) -> &str {
        if self.label.is_empty() {
            &self.workload
        } else {
            &self.label
        }
    }
}

/// Strong-scaling speedup S(p) = T(p₀)·p₀ / T(p).
pub fn strong_speedup(t0: f64, p0: u64, t: f64) -> f64 {
    t0 * p0 as f64 / t
}

/// Karp–Flatt metric e = (1/S − 1/p) / (1 − 1/p); `None` for p ≤ 1, where it is undefined.
pub fn karp_flatt(speedup: f64, p: u64) -> Option<f64> {
    if p <= 1 {
        return None;
    }
    let inv_p = 1.0 / p as f64;
    Some((1.0 / speedup - inv_p) / (1.0 - inv_p))
}

/// Where a fitted or derived serial fraction (Amdahl's f, Gustafson's α, Karp–Flatt's e) lies
/// against [0, 1], the range in which it means "the serial share of the work".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FractionRange {
    /// In [0, 1] (within rounding): a serial fraction.
    Inside,
    /// Below 0: the runs scaled better than linearly (superlinear).
    Below,
    /// Above 1: the parallel runs were slower than the base.
    Above,
}

/// Rounding slack for the range checks: a value computed from exact model times can land a few
/// ulps outside its bound.
const SLACK: f64 = 1e-9;

/// Classify a serial fraction against [0, 1].
pub fn fraction_range(v: f64) -> FractionRange {
    if v < -SLACK {
        FractionRange::Below
    } else if v > 1.0 + SLACK {
        FractionRange::Above
    } else {
        FractionRange::Inside
    }
}

/// Whether a speedup exceeds its worker count p (superlinear).
pub fn is_superlinear(speedup: f64, p: u64) -> bool {
    speedup > p as f64 * (1.0 + SLACK)
}

/// `v` with three significant digits, but with as many more decimals (up to 6) as it takes to
/// print it apart from `bound` (so that "2.004 > 2" never reads "2.00 > 2").
fn num_apart(v: f64, bound: f64) -> String {
    let mut d = decimals3(v);
    let mut s = format!("{v:.d$}");
    while d < 6 && s.parse::<f64>().is_ok_and(|r| r == bound) {
        d += 1;
        s = format!("{v:.d$}");
    }
    s.replace('-', "−")
}

/// Decimals that give `v` three significant digits (at least one below 100, none above), judged
/// after rounding (9.9996 prints as "10.0").
fn decimals3(v: f64) -> usize {
    let mut a = v.abs();
    if a > 0.0 && a.is_finite() {
        let m = 10f64.powi(2 - a.log10().floor() as i32);
        a = (a * m).round() / m;
    }
    if !a.is_finite() || a >= 100.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    }
}

/// A speedup for a table cell: the number, or "superlinear (speedup 2.40 > p = 2: cache effects
/// or a noisy base)" when it exceeds p.
pub fn speedup_text(speedup: f64, p: u64) -> String {
    if is_superlinear(speedup, p) {
        format!(
            "superlinear (speedup {} > p = {p}: cache effects or a noisy base)",
            num_apart(speedup, p as f64)
        )
    } else {
        num_apart(speedup, f64::NAN)
    }
}

/// An efficiency for a table cell: a percentage up to 100 %, "superlinear (E = 120% > 100%)"
/// above.
pub fn efficiency_text(efficiency: f64) -> String {
    let pct = format!("{:.0}%", efficiency * 100.0);
    if efficiency > 1.0 + SLACK {
        let pct = if pct == "100%" {
            format!("{:.1}%", efficiency * 100.0)
        } else {
            pct
        };
        format!("superlinear (E = {pct} > 100%)")
    } else {
        pct
    }
}

/// A Karp–Flatt value for a table cell: the number in [0, 1], else why it is not a serial
/// fraction.
pub fn karp_flatt_text(e: f64) -> String {
    match fraction_range(e) {
        FractionRange::Inside => format!("{:.3}", e.clamp(0.0, 1.0) + 0.0),
        FractionRange::Below => format!(
            "not meaningful (e = {} < 0: superlinear speedup)",
            num_apart(e, 0.0)
        ),
        FractionRange::Above => format!(
            "not meaningful (e = {} > 1: slower than the base)",
            num_apart(e, 1.0)
        ),
    }
}

/// What an Amdahl fit says, after "Amdahl fit for `…`: ": the serial fraction and the speedup
/// bound it implies, or, outside [0, 1], that the fit is not meaningful and why.
pub fn amdahl_text(fit: &SerialFit) -> String {
    let f = fit.serial_fraction;
    match fraction_range(f) {
        FractionRange::Inside => {
            let f = f.clamp(0.0, 1.0) + 0.0;
            let bound = match fit.max_speedup() {
                Some(m) if f < 1.0 - SLACK => {
                    format!("so the speedup cannot exceed 1/f = {}", num_apart(m, f64::NAN))
                }
                Some(_) => "the parallel runs are no faster than the base, so there is no speedup to explain; look for contention (memory bandwidth, locks) or a problem too small to share".to_string(),
                None => "no serial part measured".to_string(),
            };
            format!("serial fraction f = {f:.4} ({:.2}%); {bound}", f * 100.0)
        }
        FractionRange::Above => format!(
            "not meaningful (f = {} outside [0, 1]: the times do not follow Amdahl's law; the parallel runs were slower than the base, likely noise, disturbed points or contention for memory bandwidth)",
            num_apart(f, 1.0)
        ),
        FractionRange::Below => format!(
            "not meaningful (f = {} outside [0, 1]: the speedup is superlinear, which Amdahl's law does not describe; cache effects or a noisy base)",
            num_apart(f, 0.0)
        ),
    }
}

/// What a Gustafson fit says, after "Gustafson fit for `…`: ": the serial fraction α of
/// S = p − α(p − 1), or, outside [0, 1], that the fit is not meaningful and why.
pub fn gustafson_text(fit: &SerialFit) -> String {
    let a = fit.serial_fraction;
    match fraction_range(a) {
        FractionRange::Inside => {
            let a = a.clamp(0.0, 1.0) + 0.0;
            format!(
                "serial fraction α = {a:.4} ({:.2}%) in S = p − α(p − 1)",
                a * 100.0
            )
        }
        FractionRange::Above => format!(
            "not meaningful (α = {} outside [0, 1]: the larger runs took more than p times as long per unit of work as the base, which Gustafson's law does not describe; likely noise, disturbed points or contention for memory bandwidth)",
            num_apart(a, 1.0)
        ),
        FractionRange::Below => format!(
            "not meaningful (α = {} outside [0, 1]: the larger runs were more efficient than the base (scaled speedup above p), which Gustafson's law does not describe; cache effects or a noisy base)",
            num_apart(a, 0.0)
        ),
    }
}

/// Least squares through the origin of y on x: (slope, points, rms residual).
fn fit_origin(xy: impl Iterator<Item = (f64, f64)>) -> Option<SerialFit> {
    let pts: Vec<(f64, f64)> = xy.collect();
    let sxx: f64 = pts.iter().map(|(x, _)| x * x).sum();
    let sxy: f64 = pts.iter().map(|(x, y)| x * y).sum();
    if pts.is_empty() || sxx <= 0.0 || !sxy.is_finite() {
        return None;
    }
    let f = sxy / sxx;
    let rss: f64 = pts.iter().map(|(x, y)| (y - f * x).powi(2)).sum();
    Some(SerialFit {
        serial_fraction: f,
        points: pts.len(),
        rms_residual: (rss / pts.len() as f64).sqrt(),
    })
}

fn distinct(ps: impl Iterator<Item = u64>) -> usize {
    let mut v: Vec<u64> = ps.collect();
    v.sort_unstable();
    v.dedup();
    v.len()
}

/// Amdahl serial fraction from (p, S(p)) samples: least squares of y = 1/S − 1/p on x = 1 − 1/p
/// through the origin. `None` with fewer than two distinct p.
pub fn amdahl_fit(samples: &[(u64, f64)]) -> Option<SerialFit> {
    if distinct(samples.iter().map(|s| s.0)) < 2 {
        return None;
    }
    fit_origin(samples.iter().map(|&(p, s)| {
        let inv_p = 1.0 / p as f64;
        (1.0 - inv_p, 1.0 / s - inv_p)
    }))
}

/// Gustafson serial fraction from (p, scaled speedup S(p)) samples: least squares of y = p − S on
/// x = p − 1 through the origin. `None` with fewer than two distinct p.
pub fn gustafson_fit(samples: &[(u64, f64)]) -> Option<SerialFit> {
    if distinct(samples.iter().map(|s| s.0)) < 2 {
        return None;
    }
    fit_origin(samples.iter().map(|&(p, s)| (p as f64 - 1.0, p as f64 - s)))
}

/// `v` with an exact decimal suffix when it has one (20000000 → "20M"), else the digits: how a
/// manifest writes a count.
fn count_text(v: u64) -> String {
    for (suffix, scale) in [("G", 1_000_000_000u64), ("M", 1_000_000), ("k", 1_000)] {
        if v >= scale.max(10_000) && v.is_multiple_of(scale) {
            return format!("{}{suffix}", v / scale);
        }
    }
    v.to_string()
}

/// A record's size as the manifest wrote it: `64MiB` for a byte size, `20M` or `1024` for a
/// count; `None` when the workload has no size.
pub fn size_value(rec: &PointRecord) -> Option<String> {
    match rec.point.params.get("size") {
        Some(Value::Size(Size::Bytes(b))) => Some(Size::Bytes(*b).to_string()),
        Some(Value::Size(Size::Count(n))) => Some(count_text(*n)),
        Some(other) => Some(other.to_string()),
        None if rec.size > 0 => Some(count_text(rec.size)),
        None => None,
    }
}

/// `name=value` for the size of a record, as the manifest wrote it: `n=1024` for workloads whose
/// size unit is a short name, else `size=64MiB` or `size=20M`; `None` when the workload has no
/// size.
pub fn size_label(rec: &PointRecord) -> Option<String> {
    if rec.size == 0 || !param_applies(rec, "size") {
        return None;
    }
    let v = size_value(rec)?;
    let unit = rec.size_unit.trim();
    Some(if !unit.is_empty() && unit.len() <= 2 {
        format!("{unit}={v}")
    } else {
        format!("size={v}")
    })
}

/// Whether parameter `key` means anything for `rec` ([`crate::workload::param_applies`]: the
/// workload's own rule, e.g. no synthetic-data settings on a point that reads a CSV file).
pub fn param_applies(rec: &PointRecord, key: &str) -> bool {
    crate::workload::param_applies(&rec.point.workload, &rec.point.params, key)
}

/// The workload parameters of a record other than `size` and `variant` that apply to it (see
/// [`param_applies`]), as `name=value`.
pub fn other_params(rec: &PointRecord) -> Vec<String> {
    rec.point
        .params
        .0
        .iter()
        .filter(|(k, _)| k.as_str() != "size" && k.as_str() != "variant" && param_applies(rec, k))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

/// `variant=…` and the other parameters as `name=value`, without size and resources: what a
/// point's label shows besides its size.
pub fn fixed_params(rec: &PointRecord) -> Vec<String> {
    let mut parts = Vec::new();
    let variant = rec.point.params.variant();
    if !variant.is_empty() {
        parts.push(format!("variant={variant}"));
    }
    parts.extend(other_params(rec));
    parts
}

/// The parameter a weak study of the record's workload grows: `size`, or the workload's own
/// ([`workload::Description::weak_param`], `batch` for `mpi.train`).
fn weak_param(rec: &PointRecord) -> &'static str {
    workload::describe(&rec.point.workload).map_or("size", |d| d.weak_param)
}

/// Canonical text of every parameter but `size` (in a weak series: but the parameter weak
/// scaling grows).
fn key_without_size(rec: &PointRecord) -> String {
    let skip = match rec.point.scaling {
        Scaling::Weak => weak_param(rec),
        Scaling::Strong => "size",
    };
    let mut key = format!("{}\u{1f}{}", rec.point.study, rec.point.workload);
    for (k, v) in &rec.point.params.0 {
        if k != skip {
            key.push_str(&format!("\u{1f}{k}={}", value_key(v)));
        }
    }
    key
}

fn value_key(v: &Value) -> String {
    match v {
        Value::Size(s) => format!("{s:?}"),
        other => format!("{other:?}"),
    }
}

/// The size per worker of a weak-scaling point, to 4 significant digits (see the module docs).
fn size_per_worker(rec: &PointRecord) -> String {
    let raw = match rec.point.params.get(weak_param(rec)) {
        Some(Value::Size(s)) => s.value() as f64,
        Some(Value::Int(n)) => *n as f64,
        _ => rec.size as f64,
    };
    let rule = workload::find(&rec.point.workload)
        .map(|w| w.weak_rule())
        .unwrap_or(WeakRule::Linear);
    let p = rec.point.resources.workers() as f64;
    let factor = match rule {
        WeakRule::Linear => p,
        WeakRule::Sqrt => p.sqrt(),
        WeakRule::Cbrt => p.cbrt(),
    };
    format!("{:.3e}", raw / factor)
}

fn strong_key(rec: &PointRecord) -> String {
    let size = rec
        .point
        .params
        .get("size")
        .map(value_key)
        .unwrap_or_default();
    format!("{}\u{1f}size={size}", key_without_size(rec))
}

/// The records of one series with their summaries, before the scaling numbers.
type Members<'a> = Vec<(&'a PointRecord, Summary)>;

/// Group the ok records of a run into series and compute their scaling numbers. Series come in
/// study order, then in order of first appearance.
pub fn series(records: &[PointRecord]) -> Vec<Series<'_>> {
    // (study, key) -> records, keeping first-appearance order.
    let mut groups: Vec<(usize, String, Members<'_>)> = Vec::new();
    let mut index: BTreeMap<(usize, String), usize> = BTreeMap::new();
    for rec in records.iter().filter(|r| r.status == Status::Ok) {
        let times: Vec<f64> = rec.repetitions.iter().map(|r| r.seconds).collect();
        let Some(summary) = Summary::of(&times) else {
            continue;
        };
        if !(summary.median > 0.0 && summary.median.is_finite()) {
            continue;
        }
        let key = match rec.point.scaling {
            Scaling::Strong => strong_key(rec),
            Scaling::Weak => key_without_size(rec),
        };
        let study = rec.point.study;
        let slot = *index.entry((study, key.clone())).or_insert_with(|| {
            groups.push((study, key, Vec::new()));
            groups.len() - 1
        });
        groups[slot].2.push((rec, summary));
    }

    let mut out = Vec::new();
    let mut ordered: Vec<(usize, Members<'_>)> = Vec::new();
    for (study, _, items) in groups {
        let weak = items[0].0.point.scaling == Scaling::Weak;
        // A weak group with several points at one p sweeps several base sizes: split it by the
        // size per worker.
        let repeated_p =
            distinct(items.iter().map(|(r, _)| r.point.resources.workers())) < items.len();
        if weak && repeated_p {
            let mut sub: BTreeMap<String, Members<'_>> = BTreeMap::new();
            let mut order = Vec::new();
            for item in items {
                let k = size_per_worker(item.0);
                if !sub.contains_key(&k) {
                    order.push(k.clone());
                }
                sub.entry(k).or_default().push(item);
            }
            for k in order {
                ordered.push((study, sub.remove(&k).unwrap_or_default()));
            }
        } else {
            ordered.push((study, items));
        }
    }
    ordered.sort_by_key(|(study, _)| *study);
    for (_, items) in ordered {
        out.push(build_series(items));
    }
    out
}

/// One series from its members: sorted, a base point chosen, every point's speedup and
/// efficiency against it, the fits, and the label.
fn build_series(mut items: Members<'_>) -> Series<'_> {
    sort_members(&mut items);
    let (base, p0) = pick_base(&items);
    let first = items[base].0;
    let t0 = items[base].1.median;
    let scaling = first.point.scaling;
    let points: Vec<ScalingPoint<'_>> = items
        .iter()
        .map(|&(rec, summary)| scaling_point(rec, summary, scaling, t0, p0))
        .collect();
    let (amdahl, gustafson) = fits(&points, scaling);
    Series {
        study: first.point.study,
        study_name: first.point.study_name.clone(),
        workload: first.point.workload.clone(),
        scaling,
        label: series_label(first, scaling),
        points,
        base,
        amdahl,
        gustafson,
    }
}

/// Members in order of workers, then size, then point id (the order of a series' rows).
fn sort_members(items: &mut Members<'_>) {
    items.sort_by(|a, b| {
        let (ra, rb) = (a.0, b.0);
        ra.point
            .resources
            .workers()
            .cmp(&rb.point.resources.workers())
            .then(ra.size.cmp(&rb.size))
            .then(ra.point.id.cmp(&rb.point.id))
    });
}

/// The base point (its index) and its workers p0: the fastest point with the fewest workers.
/// The base is chosen among the points measured on an undisturbed machine, if there are any
/// (see `crate::load`).
fn pick_base(items: &Members<'_>) -> (usize, u64) {
    let quiet = |r: &PointRecord| !r.is_disturbed();
    let any_quiet = items.iter().any(|(r, _)| quiet(r));
    let eligible = |r: &PointRecord| !any_quiet || quiet(r);
    let p0 = items
        .iter()
        .filter(|(r, _)| eligible(r))
        .map(|(r, _)| r.point.resources.workers())
        .min()
        .unwrap_or(1);
    let base = items
        .iter()
        .enumerate()
        .filter(|(_, (r, _))| eligible(r) && r.point.resources.workers() == p0)
        .min_by(|a, b| a.1 .1.median.total_cmp(&b.1 .1.median))
        .map(|(i, _)| i)
        .unwrap_or(0);
    (base, p0)
}

/// One point's speedup and efficiency (with their ranges over the repetitions' min and max)
/// against the base's median time `t0` at `p0` workers.
fn scaling_point<'a>(
    rec: &'a PointRecord,
    summary: Summary,
    scaling: Scaling,
    t0: f64,
    p0: u64,
) -> ScalingPoint<'a> {
    let p = rec.point.resources.workers();
    let pf = p as f64;
    match scaling {
        Scaling::Strong => {
            let s = strong_speedup(t0, p0, summary.median);
            let range = (
                strong_speedup(t0, p0, summary.max),
                strong_speedup(t0, p0, summary.min),
            );
            ScalingPoint {
                record: rec,
                workers: p,
                summary,
                speedup: s,
                speedup_range: range,
                efficiency: s / pf,
                efficiency_range: (range.0 / pf, range.1 / pf),
                karp_flatt: karp_flatt(s, p),
            }
        }
        Scaling::Weak => {
            let e = t0 / summary.median;
            let range = (t0 / summary.max, t0 / summary.min);
            ScalingPoint {
                record: rec,
                workers: p,
                summary,
                speedup: pf * e,
                speedup_range: (pf * range.0, pf * range.1),
                efficiency: e,
                efficiency_range: range,
                karp_flatt: None,
            }
        }
    }
}

/// Amdahl's fit of a strong series, Gustafson's of a weak one. Oversubscribed points measure
/// time-sharing, not scaling, and disturbed points measure the other work beside them: they
/// stay out of the fits.
fn fits(points: &[ScalingPoint<'_>], scaling: Scaling) -> (Option<SerialFit>, Option<SerialFit>) {
    let samples: Vec<(u64, f64)> = points
        .iter()
        .filter(|p| !p.record.point.oversubscribed && !p.record.is_disturbed())
        .map(|p| (p.workers, p.speedup))
        .collect();
    match scaling {
        Scaling::Strong => (amdahl_fit(&samples), None),
        Scaling::Weak => (None, gustafson_fit(&samples)),
    }
}

/// The series' label: the parameters its points share, then the size (a weak series' "base").
fn series_label(first: &PointRecord, scaling: Scaling) -> String {
    let mut label = fixed_params(first);
    // A workload whose weak scaling grows another parameter (`mpi.train`: `batch`) names that
    // one as the base, last; its size stays a fixed parameter.
    let grown = weak_param(first);
    let base = match scaling {
        Scaling::Weak if grown != "size" => label
            .iter()
            .position(|p| p.strip_prefix(grown).is_some_and(|v| v.starts_with('=')))
            .map(|i| label.remove(i)),
        _ => None,
    };
    if let Some(size) = size_label(first) {
        label.push(match scaling {
            Scaling::Weak if base.is_none() => format!("base {size}"),
            _ => size,
        });
    }
    if let Some(base) = base {
        label.push(format!("base {base}"));
    }
    label.join(" ")
}

/// The resources of a point as `threads=2` plus `ranks=…`, `nodes=…`, `gpus=…` where they differ
/// from a plain one-process run.
pub fn resources_label(r: &Resources) -> String {
    let mut parts = Vec::new();
    if r.nodes > 1 {
        parts.push(format!("nodes={}", r.nodes));
    }
    if r.ranks > 1 {
        parts.push(format!("ranks={}", r.ranks));
    }
    parts.push(format!("threads={}", r.threads));
    if r.gpus > 0 {
        parts.push(format!("gpus={}", r.gpus));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{failed, record};

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// t(p) = a + b/p with jitter-free repetitions.
    fn amdahl_records(a: f64, b: f64, ps: &[u32]) -> Vec<PointRecord> {
        ps.iter()
            .map(|&p| {
                let t = a + b / p as f64;
                record(
                    0,
                    "gemm",
                    Scaling::Strong,
                    p,
                    1024,
                    &[t, t * 1.01, t * 0.99],
                )
            })
            .collect()
    }

    #[test]
    fn disturbed_points_are_no_base_and_stay_out_of_the_fit() {
        use crate::report::test_support::with_load;
        let (a, b) = (0.1, 0.9);
        // p = 1 and p = 4 ran beside other work (1.5 cores of 2 busy); p = 2 ran quiet, p = 8
        // has no load figures (a record from before they existed).
        let recs: Vec<PointRecord> = amdahl_records(a, b, &[1, 2, 4, 8])
            .into_iter()
            .map(|r| match r.point.resources.threads {
                1 | 4 => with_load(r, 1.5),
                2 => with_load(r, 0.02),
                _ => r,
            })
            .collect();
        let s = &series(&recs)[0];
        assert_eq!(s.points.len(), 4, "disturbed points keep their place");
        assert_eq!(s.base_point().workers, 2, "the smallest undisturbed p");
        let fit = s.amdahl.unwrap();
        assert_eq!(fit.points, 2, "p = 2 and p = 8 only");
        let t = |p: f64| a + b / p;
        let quiet = [(2, t(2.0) * 2.0 / t(2.0)), (8, t(2.0) * 2.0 / t(8.0))];
        let expect = amdahl_fit(&quiet).unwrap();
        assert!(
            close(fit.serial_fraction, expect.serial_fraction),
            "{fit:?}"
        );
        // A disturbed point still has its speedup against the quiet base.
        assert!(close(s.points[0].speedup, t(2.0) * 2.0 / t(1.0)));

        // Every point disturbed: the base is the smallest p again, and there is no fit.
        let all: Vec<PointRecord> = amdahl_records(a, b, &[1, 2, 4])
            .into_iter()
            .map(|r| with_load(r, 1.9))
            .collect();
        let s = &series(&all)[0];
        assert_eq!(s.base_point().workers, 1);
        assert!(s.amdahl.is_none());
    }

    #[test]
    fn amdahl_fraction_of_the_a_plus_b_over_p_model() {
        let (a, b) = (0.1, 0.9);
        let recs = amdahl_records(a, b, &[1, 2, 4, 8, 16]);
        let s = series(&recs);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(s.scaling, Scaling::Strong);
        assert_eq!(s.base_point().workers, 1);
        assert_eq!(s.distinct_workers(), 5);
        let fit = s.amdahl.unwrap();
        assert!(close(fit.serial_fraction, a / (a + b)), "{fit:?}");
        assert!(fit.rms_residual < 1e-12);
        assert_eq!(fit.points, 5);
        assert!(close(fit.max_speedup().unwrap(), (a + b) / a));
        for pt in &s.points {
            let p = pt.workers as f64;
            let expect = (a + b) / (a + b / p);
            assert!(close(pt.speedup, expect));
            assert!(close(pt.efficiency, expect / p));
            match pt.karp_flatt {
                None => assert_eq!(pt.workers, 1),
                Some(e) => assert!(close(e, a / (a + b)), "Karp–Flatt must be constant: {e}"),
            }
            // Slow repetition → lower speedup.
            assert!(pt.speedup_range.0 < pt.speedup && pt.speedup < pt.speedup_range.1);
        }
        assert_eq!(s.label, "variant=tuned n=1024");
        assert!(s.gustafson.is_none());
    }

    #[test]
    fn series_split_by_params_and_exclude_failed_points() {
        let mut recs = amdahl_records(0.2, 0.8, &[1, 2, 4]);
        recs.extend(
            [1, 2, 4].map(|p| record(0, "gemm", Scaling::Strong, p, 2048, &[8.0 / p as f64])),
        );
        recs.push(failed(
            0,
            "gemm",
            Scaling::Strong,
            8,
            1024,
            "timed out after 60 s",
        ));
        let all = series(&recs);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|s| s.points.len() == 3));
        let big = all.iter().find(|s| s.label.contains("2048")).unwrap();
        assert!(close(big.amdahl.unwrap().serial_fraction, 0.0));
        assert!(big.points.iter().all(|p| close(p.efficiency, 1.0)));
    }

    #[test]
    fn base_is_the_smallest_p_even_above_one() {
        let recs: Vec<_> = [2, 4, 8]
            .map(|p| record(0, "gemm", Scaling::Strong, p, 1024, &[4.0 / p as f64]))
            .into();
        let s = &series(&recs)[0];
        assert_eq!(s.base_point().workers, 2);
        // S(p0) = p0, linear from there.
        assert!(close(s.points[0].speedup, 2.0));
        assert!(close(s.points[2].speedup, 8.0));
        assert!(close(s.points[0].karp_flatt.unwrap(), 0.0));
    }

    #[test]
    fn one_point_has_no_fit() {
        let recs = amdahl_records(0.1, 0.9, &[4]);
        let s = &series(&recs)[0];
        assert!(s.amdahl.is_none());
        assert!(close(s.points[0].speedup, 4.0));
        assert!(amdahl_fit(&[(1, 1.0), (1, 1.0)]).is_none());
    }

    #[test]
    fn weak_efficiency_and_gustafson_on_known_numbers() {
        // Sizes grow with p (linear rule); times 1.0, 1.25, 2.0 s at p = 1, 2, 4.
        let recs = vec![
            record(1, "stream.triad", Scaling::Weak, 1, 1000, &[1.0]),
            record(1, "stream.triad", Scaling::Weak, 2, 2000, &[1.25]),
            record(1, "stream.triad", Scaling::Weak, 4, 4000, &[2.0]),
        ];
        let all = series(&recs);
        assert_eq!(
            all.len(),
            1,
            "weak points with growing size form one series"
        );
        let s = &all[0];
        let e: Vec<f64> = s.points.iter().map(|p| p.efficiency).collect();
        assert!(
            close(e[0], 1.0) && close(e[1], 0.8) && close(e[2], 0.5),
            "{e:?}"
        );
        let scaled: Vec<f64> = s.points.iter().map(|p| p.speedup).collect();
        assert!(close(scaled[1], 1.6) && close(scaled[2], 2.0), "{scaled:?}");
        assert!(s.points.iter().all(|p| p.karp_flatt.is_none()));
        // α = Σ(p−1)(p−S) / Σ(p−1)² = (1·0.4 + 3·2) / (1 + 9)
        assert!(close(s.gustafson.unwrap().serial_fraction, 0.64));
        assert!(s.amdahl.is_none());
        assert_eq!(s.label, "variant=tuned base size=1000");
    }

    #[test]
    fn weak_training_series_grow_the_batch_and_keep_the_per_rank_share() {
        // mpi.train's weak scaling grows `batch` (32 per worker), not `size`: one series per
        // base batch, labelled by it, with efficiency T(p0)/T(p).
        let point = |p: u32, per_worker: u64, t: f64| {
            let mut r = record(1, "mpi.train", Scaling::Weak, p, 4096, &[t]);
            r.point
                .params
                .0
                .insert("batch".into(), Value::Int(per_worker * u64::from(p)));
            r
        };
        let recs = vec![
            point(1, 32, 1.0),
            point(2, 32, 1.25),
            point(4, 32, 2.0),
            point(1, 64, 2.0),
            point(2, 64, 2.5),
        ];
        let all = series(&recs);
        assert_eq!(all.len(), 2, "one series per base batch");
        let e: Vec<f64> = all[0].points.iter().map(|p| p.efficiency).collect();
        assert!(
            close(e[0], 1.0) && close(e[1], 0.8) && close(e[2], 0.5),
            "{e:?}"
        );
        assert_eq!(all[0].label, "variant=tuned n=4096 base batch=32");
        assert_eq!(all[1].points.len(), 2);
        assert_eq!(all[1].label, "variant=tuned n=4096 base batch=64");
    }

    #[test]
    fn gustafson_fraction_of_an_exact_law() {
        let alpha = 0.1;
        let samples: Vec<(u64, f64)> = [1u64, 2, 4, 8]
            .iter()
            .map(|&p| (p, p as f64 - alpha * (p as f64 - 1.0)))
            .collect();
        let fit = gustafson_fit(&samples).unwrap();
        assert!(close(fit.serial_fraction, alpha));
        assert!(fit.rms_residual < 1e-12);
    }

    #[test]
    fn weak_studies_with_two_base_sizes_split_by_size_per_worker() {
        let recs: Vec<_> = [(1, 1000), (2, 2000), (1, 5000), (2, 10000)]
            .map(|(p, n)| record(0, "stream.triad", Scaling::Weak, p, n, &[1.0]))
            .into();
        let all = series(&recs);
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|s| s.points.len() == 2));
    }

    #[test]
    fn karp_flatt_definition() {
        assert_eq!(karp_flatt(1.0, 1), None);
        // Perfect speedup: no serial fraction.
        assert!(close(karp_flatt(4.0, 4).unwrap(), 0.0));
        // S = 2 on 4 workers: (1/2 − 1/4) / (3/4) = 1/3.
        assert!(close(karp_flatt(2.0, 4).unwrap(), 1.0 / 3.0));
    }

    #[test]
    fn out_of_range_values_are_worded_as_what_they_are() {
        // The faer slowdown seen on a busy 2-core machine: S = 0.53 at p = 2.
        let fit = amdahl_fit(&[(1, 1.0), (2, 0.53)]).unwrap();
        assert_eq!(fraction_range(fit.serial_fraction), FractionRange::Above);
        let text = amdahl_text(&fit);
        assert!(
            text.starts_with(
                "not meaningful (f = 2.77 outside [0, 1]: the times do not follow Amdahl's law;"
            ),
            "{text}"
        );
        assert!(
            !text.contains('%'),
            "no percentage for an out-of-range f: {text}"
        );
        // Superlinear: S = 2.4 at p = 2.
        let fit = amdahl_fit(&[(1, 1.0), (2, 2.4)]).unwrap();
        assert_eq!(fraction_range(fit.serial_fraction), FractionRange::Below);
        assert_eq!(
            amdahl_text(&fit),
            "not meaningful (f = −0.167 outside [0, 1]: the speedup is superlinear, which Amdahl's law does not describe; cache effects or a noisy base)"
        );
        assert_eq!(
            speedup_text(2.4, 2),
            "superlinear (speedup 2.40 > p = 2: cache effects or a noisy base)"
        );
        assert_eq!(
            speedup_text(2.004, 2),
            "superlinear (speedup 2.004 > p = 2: cache effects or a noisy base)"
        );
        assert_eq!(speedup_text(1.8, 2), "1.80");
        assert_eq!(
            speedup_text(2.0, 2),
            "2.00",
            "S = p is linear, not superlinear"
        );
        assert_eq!(efficiency_text(0.9), "90%");
        assert_eq!(efficiency_text(1.0), "100%");
        assert_eq!(efficiency_text(1.2), "superlinear (E = 120% > 100%)");
        assert_eq!(efficiency_text(1.002), "superlinear (E = 100.2% > 100%)");
        assert_eq!(karp_flatt_text(1.0 / 3.0), "0.333");
        assert_eq!(
            karp_flatt_text(karp_flatt(0.53, 2).unwrap()),
            "not meaningful (e = 2.77 > 1: slower than the base)"
        );
        assert_eq!(
            karp_flatt_text(karp_flatt(2.4, 2).unwrap()),
            "not meaningful (e = −0.167 < 0: superlinear speedup)"
        );
    }

    #[test]
    fn in_range_fits_keep_their_numbers() {
        let fit = amdahl_fit(&[(1, 1.0), (2, 2.0 / 1.1), (4, 4.0 / 1.3)]).unwrap();
        assert_eq!(
            amdahl_text(&fit),
            "serial fraction f = 0.1000 (10.00%); so the speedup cannot exceed 1/f = 10.0"
        );
        let none = amdahl_fit(&[(1, 1.0), (2, 2.0)]).unwrap();
        assert_eq!(
            amdahl_text(&none),
            "serial fraction f = 0.0000 (0.00%); no serial part measured"
        );
        // f = 1 exactly: no speedup at all, still inside the range.
        let flat = amdahl_fit(&[(1, 1.0), (2, 1.0)]).unwrap();
        assert!(
            amdahl_text(&flat).contains("no faster than the base"),
            "{}",
            amdahl_text(&flat)
        );
        let g = gustafson_fit(&[(1, 1.0), (2, 1.9)]).unwrap();
        assert_eq!(
            gustafson_text(&g),
            "serial fraction α = 0.1000 (10.00%) in S = p − α(p − 1)"
        );
        let over = gustafson_fit(&[(1, 1.0), (2, 0.5)]).unwrap();
        assert!(gustafson_text(&over).starts_with("not meaningful (α = 1.50 outside [0, 1]:"));
        let under = gustafson_fit(&[(1, 1.0), (2, 2.5)]).unwrap();
        assert!(gustafson_text(&under).starts_with("not meaningful (α = −0.500 outside [0, 1]:"));
    }

    #[test]
    fn labels() {
        let r = record(0, "gemm", Scaling::Strong, 2, 1024, &[1.0]);
        assert_eq!(size_label(&r).unwrap(), "n=1024");
        let mut b = record(0, "stream.triad", Scaling::Strong, 1, 8 << 20, &[1.0]);
        b.point
            .params
            .0
            .insert("size".into(), Value::Size(Size::Bytes(64 << 20)));
        assert_eq!(
            size_label(&b).unwrap(),
            "size=64MiB",
            "as the manifest wrote it"
        );
        b.point
            .params
            .0
            .insert("size".into(), Value::Size(Size::Count(20_000_000)));
        assert_eq!(size_label(&b).unwrap(), "size=20M");
        assert_eq!(resources_label(&r.point.resources), "threads=2");
        let res = Resources {
            nodes: 2,
            ranks: 4,
            threads: 8,
            gpus: 1,
        };
        assert_eq!(resources_label(&res), "nodes=2 ranks=4 threads=8 gpus=1");
    }
}

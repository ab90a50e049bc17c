//! Axes: how values map to pixels (linear, log₂, log₁₀), where ticks go and how they are labelled.
//!
//! [`Axis`] implements plotters' [`Ranged`] so that log axes get ticks exactly at powers of their
//! base, axes over measured values (worker counts, sizes) tick at those values, and a tick can
//! carry the text the manifest wrote for it ("64MiB" rather than 8388608 elements).

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// How an axis maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    Linear,
    /// Ticks at powers of two.
    Log2,
    /// Ticks at powers of ten.
    Log10,
}

/// One axis: its range, scale and tick labels. Implements plotters' [`Ranged`] so that log axes
/// get ticks exactly at powers of their base.
#[derive(Clone, Debug)]
pub(in crate::report) struct Axis {
    pub(in crate::report) lo: f64,
    pub(in crate::report) hi: f64,
    pub(super) scale: Scale,
    /// Label ticks as percentages (value 1.0 → "100%").
    percent: bool,
    /// Label ticks as byte counts in binary units ("4 KiB").
    bytes: bool,
    /// Ticks at these values instead of the automatic ones (the measured p or sizes).
    marks: Vec<f64>,
    /// The text of some ticks, as the manifest wrote them (`64MiB`); others get the number.
    names: Vec<(f64, String)>,
}

impl Axis {
    /// An axis covering `values` (which must hold at least one positive value for log scales).
    /// Log axes snap outwards to powers of their base with a little padding; linear axes start at
    /// zero when `zero` is set.
    pub(in crate::report) fn fit(
        values: impl IntoIterator<Item = f64>,
        scale: Scale,
        zero: bool,
    ) -> Axis {
        let vals: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && (scale == Scale::Linear || *v > 0.0))
            .collect();
        let (mut min, mut max) = vals
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        if !min.is_finite() {
            (min, max) = (1.0, 1.0);
        }
        match scale {
            Scale::Linear => {
                let lo = if zero { min.min(0.0) } else { min };
                let span = (max - lo).max(max.abs() * 0.1).max(1e-12);
                let lo = if zero { lo } else { lo - 0.05 * span };
                Axis {
                    lo,
                    hi: max + 0.08 * span,
                    scale,
                    percent: false,
                    bytes: false,
                    marks: Vec::new(),
                    names: Vec::new(),
                }
            }
            Scale::Log2 | Scale::Log10 => {
                let base: f64 = if scale == Scale::Log2 { 2.0 } else { 10.0 };
                let logb = |v: f64| {
                    if scale == Scale::Log2 {
                        v.log2()
                    } else {
                        v.log10()
                    }
                };
                let (mut a, mut b) = (logb(min).floor(), logb(max).ceil());
                if a == b {
                    a -= 1.0;
                    b += 1.0;
                }
                let pad = if scale == Scale::Log2 { 0.15 } else { 0.05 };
                let (lo_exp, hi_exp) = (a.min(logb(min) - pad), b.max(logb(max) + pad));
                Axis {
                    lo: base.powf(lo_exp),
                    hi: base.powf(hi_exp),
                    scale,
                    percent: false,
                    bytes: false,
                    marks: Vec::new(),
                    names: Vec::new(),
                }
            }
        }
    }

    /// A log axis just around `values` (a little padding, no snapping to powers of the base), so
    /// that the data fill the plot; it falls back to [`Axis::fit`] when fewer than two powers of
    /// the base would fall inside, as an axis needs two ticks to be read.
    pub(super) fn tight(values: impl IntoIterator<Item = f64>, scale: Scale) -> Axis {
        let vals: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        let snapped = Axis::fit(vals.iter().copied(), scale, false);
        if scale == Scale::Linear || vals.is_empty() {
            return snapped;
        }
        let (min, max) = vals
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        let base: f64 = if scale == Scale::Log2 { 2.0 } else { 10.0 };
        let span = (max / min).log(base);
        let pad = base.powf((span * 0.06).max(if scale == Scale::Log2 { 0.15 } else { 0.05 }));
        let tight = Axis {
            lo: min / pad,
            hi: max * pad,
            ..snapped.clone()
        };
        if tight.ticks(12).len() >= 2 {
            tight
        } else {
            snapped
        }
    }

    /// A log axis over measured values (worker counts, sizes) with a tick at each distinct value
    /// when there are at most 12 of them, else automatic ticks at powers of the base.
    pub(super) fn measured(values: impl IntoIterator<Item = f64>, scale: Scale) -> Axis {
        let mut vals: Vec<f64> = values
            .into_iter()
            .filter(|v| v.is_finite() && *v > 0.0)
            .collect();
        vals.sort_by(f64::total_cmp);
        vals.dedup();
        if vals.is_empty() || vals.len() > 12 || scale == Scale::Linear {
            return Axis::fit(vals, scale, false);
        }
        let (min, max) = (vals[0], vals[vals.len() - 1]);
        // Pad by 6 % of the span in log space, at least a quarter of an octave.
        let span = (max / min).log2();
        let pad = 2f64.powf((span * 0.06).max(0.25));
        Axis {
            lo: min / pad,
            hi: max * pad,
            scale,
            percent: false,
            bytes: false,
            marks: vals,
            names: Vec::new(),
        }
    }

    pub(super) fn percent(mut self) -> Axis {
        self.percent = true;
        self
    }

    pub(super) fn bytes(mut self) -> Axis {
        self.bytes = true;
        self
    }

    pub(super) fn t(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log2 => v.max(1e-300).log2(),
            Scale::Log10 => v.max(1e-300).log10(),
        }
    }

    pub(super) fn ticks(&self, max_points: usize) -> Vec<f64> {
        let max_points = max_points.max(2);
        if !self.marks.is_empty() {
            let every = self.marks.len().div_ceil(max_points).max(1);
            return self.marks.iter().step_by(every).copied().collect();
        }
        match self.scale {
            Scale::Linear => {
                let span = self.hi - self.lo;
                let raw = span / max_points as f64;
                let mag = 10f64.powf(raw.log10().floor());
                let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                    .iter()
                    .map(|m| m * mag)
                    .find(|s| span / s <= max_points as f64)
                    .unwrap_or(10.0 * mag);
                let mut v = (self.lo / step).ceil() * step;
                let mut out = Vec::new();
                while v <= self.hi + step * 1e-9 {
                    out.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
                    v += step;
                }
                out
            }
            Scale::Log2 | Scale::Log10 => {
                let base: f64 = if self.scale == Scale::Log2 { 2.0 } else { 10.0 };
                let logb = |v: f64| self.t(v);
                let (a, b) = (
                    (logb(self.lo) - 1e-9).ceil() as i32,
                    (logb(self.hi) + 1e-9).floor() as i32,
                );
                let count = (b - a + 1).max(0) as usize;
                let every = count.div_ceil(max_points).max(1);
                (a..=b).step_by(every).map(|k| base.powi(k)).collect()
            }
        }
    }

    /// Name the ticks at these values (a value's text as the manifest wrote it).
    pub(super) fn named(mut self, names: Vec<(f64, String)>) -> Axis {
        self.names = names;
        self
    }

    /// The text of the tick at `v`.
    pub(in crate::report) fn label(&self, v: f64) -> String {
        if let Some((_, name)) = self.names.iter().find(|(x, _)| *x == v) {
            return name.clone();
        }
        if self.percent {
            return format!("{:.0}%", v * 100.0);
        }
        if self.bytes {
            return crate::units::bytes_exact(v);
        }
        match self.scale {
            Scale::Log2 | Scale::Log10 if v >= 100_000.0 && v % 1024.0 == 0.0 => binary_compact(v),
            Scale::Log10 | Scale::Log2 => decimal_compact(v),
            Scale::Linear => {
                let s = format!("{v:.3}");
                let s = s.trim_end_matches('0').trim_end_matches('.');
                if s == "-0" {
                    "0".into()
                } else {
                    s.to_string()
                }
            }
        }
    }
}

/// 1048576 → "1Mi", 3·2³⁰ → "3Gi".
fn binary_compact(v: f64) -> String {
    for (suffix, scale) in [
        ("Ti", 2f64.powi(40)),
        ("Gi", 2f64.powi(30)),
        ("Mi", 2f64.powi(20)),
        ("Ki", 1024.0),
    ] {
        if v >= scale {
            return format!("{}{suffix}", trim_num(v / scale));
        }
    }
    trim_num(v)
}

/// 1000 → "1k", 2.5e6 → "2.5M", 0.01 → "0.01".
fn decimal_compact(v: f64) -> String {
    for (suffix, scale) in [("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)] {
        if v >= scale && v >= 10_000.0 {
            return format!("{}{suffix}", trim_num(v / scale));
        }
    }
    trim_num(v)
}

/// `v` to three significant digits, trailing zeros trimmed: 59.112 → "59.1", 118.2 → "118".
pub(super) fn sig3(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) || v >= 100.0 {
        return trim_num(v.round());
    }
    crate::units::sig3_trimmed(v)
}

pub(super) fn trim_num(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v == 0.0 || v.abs() >= 0.001 {
        format!("{v:.3}")
    } else {
        // Small values (log axes down to 1e-4 GB/s): enough decimals for two significant digits.
        let d = (1.0 - v.abs().log10().floor()).clamp(3.0, 15.0) as usize;
        format!("{v:.d$}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (a, b) = (self.t(self.lo), self.t(self.hi));
        let frac = if b > a {
            (self.t(*value) - a) / (b - a)
        } else {
            0.5
        };
        let px = limit.0 as f64 + frac * (limit.1 - limit.0) as f64;
        px.clamp(-1e6, 1e6).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        self.ticks(hint.max_num_points())
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_tick_at_powers() {
        let a = Axis::fit([1.0, 2.0, 4.0, 8.0], Scale::Log2, false);
        assert!(a.lo < 1.0 && a.hi > 8.0);
        assert_eq!(a.ticks(10), vec![1.0, 2.0, 4.0, 8.0]);
        assert_eq!(a.ticks(2), vec![1.0, 4.0]);
        let single = Axis::fit([4.0], Scale::Log2, false);
        assert_eq!(single.ticks(10), vec![2.0, 4.0, 8.0]);
        let sizes = Axis::fit([1e3, 1e6], Scale::Log10, false);
        assert_eq!(sizes.ticks(10), vec![1e3, 1e4, 1e5, 1e6]);
        assert_eq!(sizes.label(1e6), "1M");
        assert_eq!(sizes.label(1e3), "1000");
        assert_eq!(a.label(1024.0 * 1024.0), "1Mi");
        assert_eq!(a.label(1e6), "1M");
        let p = Axis::measured([1.0, 2.0, 3.0, 6.0, 2.0], Scale::Log2);
        assert_eq!(p.ticks(12), vec![1.0, 2.0, 3.0, 6.0]);
        assert_eq!(p.ticks(2), vec![1.0, 3.0]);
        assert!(p.lo < 1.0 && p.hi > 6.0);
        assert_eq!(a.label(0.5), "0.5");
        assert_eq!(sig3(59.112), "59.1");
        // Tight: 0.9 to 2.2 holds the ticks 1 and 2, not 0.5 and 4.
        let t = Axis::tight([0.97, 1.0, 1.9, 2.05], Scale::Log2);
        assert!(
            t.lo > 0.5 && t.lo < 0.97 && t.hi > 2.05 && t.hi < 4.0,
            "{t:?}"
        );
        assert_eq!(t.ticks(10), vec![1.0, 2.0]);
        // Between two powers of ten there is no second tick: snapped instead.
        let l = Axis::tight([0.45, 1.5], Scale::Log10);
        assert_eq!(l.ticks(10), vec![0.1, 1.0, 10.0]);
        assert_eq!(sig3(118.224), "118");
        assert_eq!(sig3(0.012345), "0.0123");
        assert_eq!(a.label(1024.0), "1024");
        assert_eq!(sizes.label(1e-4), "0.0001");
        assert_eq!(sizes.label(0.001), "0.001");
        // Monotone mapping into the pixel range.
        assert!(a.map(&1.0, (0, 1000)) < a.map(&2.0, (0, 1000)));
    }

    #[test]
    fn linear_axes_tick_at_round_numbers() {
        let e = Axis::fit([0.0, 1.05], Scale::Linear, true).percent();
        let t = e.ticks(10);
        assert_eq!(t[0], 0.0);
        assert!(
            t.windows(2).all(|w| (w[1] - w[0] - 0.2).abs() < 1e-9),
            "{t:?}"
        );
        assert!(t.iter().any(|v| (v - 1.0).abs() < 1e-9), "{t:?}");
        assert_eq!(e.label(0.5), "50%");
        let g = Axis::fit([0.0, 37.0], Scale::Linear, true);
        assert_eq!(g.label(2.5), "2.5");
        assert_eq!(g.label(10.0), "10");
    }
}

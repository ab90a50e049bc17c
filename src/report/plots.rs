//! Slide-ready scaling plots, drawn with plotters into SVG and PNG files of 1280 × 800 pixels.
//!
//! For every study the report draws:
//!
//! * strong scaling: **speedup** S(p) against the workers p, both on log₂ axes, with the ideal line
//!   S = p, one line per series and a band from the slowest to the fastest repetition;
//! * **parallel efficiency** against p (strong: S/p; weak: T(p₀)/T(p)) with the ideal 100 % line;
//! * **throughput**: GFLOP/s, or GB/s for memory-bound workloads (see [`super::Throughput`]),
//!   against the problem size when a strong study sweeps several sizes, else against p; a dashed
//!   line marks the machine's theoretical peak (peak per core × p) when it is known.
//!
//! * MPI message-size studies (see [`super::messages`]) get, instead of the three above,
//!   **latency** (µs) and **bandwidth** (GB/s) against the message size, log–log, one line per
//!   resources/parameters; studies whose points record `comm_s` also get **compute vs
//!   communication** time against p. In speedup and efficiency plots, a series that sweeps both
//!   ranks and threads is drawn as one line per threads-per-rank value.
//!
//! Captions name the base case (p₀ and its median time; per series in the legend when there are
//! several). Fonts are large, lines thick and colours from the Tableau 10 palette, which stays
//! distinguishable in print and for most colour-blind readers.
//!
//! The text is drawn with DejaVu Sans, embedded in the binary (`assets/fonts/DejaVuSans.ttf`,
//! Bitstream Vera licence, see `assets/fonts/DejaVuSans-LICENSE.txt`) and registered with plotters'
//! `ab_glyph` renderer, so plots need no system fonts, fontconfig or graphics libraries. SVG files
//! keep text as `<text>` elements (font-family `sans-serif`), PNG files have it rasterised.
//! Both are written atomically (temporary file + rename).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, ensure, Context, Result};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::csv::metric_median;
use super::messages::{self, MessagePoint};
use super::scaling::{fixed_params, resources_label, size_label, ScalingPoint, Series};
use super::Throughput;
use crate::machine::Machine;
use crate::plan::Scaling;
use crate::results::write_atomic;

/// Width of every plot, pixels.
pub const WIDTH: u32 = 1280;
/// Height of every plot, pixels.
pub const HEIGHT: u32 = 800;

/// The embedded font (DejaVu Sans 2.37).
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name the font is registered under; plotters' default family.
pub(super) const FAMILY: &str = "sans-serif";

/// Tableau 10.
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Register the embedded font with plotters (once per process).
pub(super) fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        [
            FontStyle::Normal,
            FontStyle::Bold,
            FontStyle::Italic,
            FontStyle::Oblique,
        ]
        .into_iter()
        .all(|style| plotters::style::register_font(FAMILY, style, FONT).is_ok())
    });
    ensure!(
        ok,
        "the embedded plot font (DejaVuSans.ttf) could not be loaded; this build is broken"
    );
    Ok(())
}

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
pub(super) struct Axis {
    pub(super) lo: f64,
    pub(super) hi: f64,
    scale: Scale,
    /// Label ticks as percentages (value 1.0 → "100%").
    percent: bool,
    /// Label ticks as byte counts in binary units ("4 KiB").
    bytes: bool,
    /// Ticks at these values instead of the automatic ones (the measured p or sizes).
    marks: Vec<f64>,
}

impl Axis {
    /// An axis covering `values` (which must hold at least one positive value for log scales).
    /// Log axes snap outwards to powers of their base with a little padding; linear axes start at
    /// zero when `zero` is set.
    pub(super) fn fit(values: impl IntoIterator<Item = f64>, scale: Scale, zero: bool) -> Axis {
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
                }
            }
        }
    }

    /// A log axis over measured values (worker counts, sizes) with a tick at each distinct value
    /// when there are at most 12 of them, else automatic ticks at powers of the base.
    fn measured(values: impl IntoIterator<Item = f64>, scale: Scale) -> Axis {
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
        }
    }

    fn percent(mut self) -> Axis {
        self.percent = true;
        self
    }

    fn bytes(mut self) -> Axis {
        self.bytes = true;
        self
    }

    fn t(&self, v: f64) -> f64 {
        match self.scale {
            Scale::Linear => v,
            Scale::Log2 => v.max(1e-300).log2(),
            Scale::Log10 => v.max(1e-300).log10(),
        }
    }

    fn ticks(&self, max_points: usize) -> Vec<f64> {
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

    pub(super) fn label(&self, v: f64) -> String {
        if self.percent {
            return format!("{:.0}%", v * 100.0);
        }
        if self.bytes {
            return super::messages::bytes_label(v);
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

fn trim_num(v: f64) -> String {
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

/// One measured curve.
struct Line {
    label: String,
    /// Draw only the markers, not a line through them (a scatter of unordered points).
    markers_only: bool,
    points: Vec<(f64, f64)>,
    /// (x, low, high) of the band around the curve.
    band: Vec<(f64, f64, f64)>,
    /// Which points get a hollow marker (disturbed: measured beside other work, see
    /// [`crate::load`]); missing entries are filled.
    hollow: Vec<bool>,
}

/// A dashed reference line (ideal scaling, a peak).
struct Reference {
    label: String,
    points: Vec<(f64, f64)>,
    color: RGBColor,
}

/// Everything one chart shows.
struct Chart {
    title: String,
    caption: String,
    x_desc: String,
    y_desc: String,
    x: Axis,
    y: Axis,
    lines: Vec<Line>,
    refs: Vec<Reference>,
    legend: SeriesLabelPosition,
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let caption = wrap(&c.caption, 112);
    let foot_height = 24 + 30 * caption.len() as i32;
    let (main, foot) = root.split_vertically(HEIGHT as i32 - foot_height);
    for (i, line) in caption.iter().enumerate() {
        foot.draw(&Text::new(
            line.clone(),
            (40, 8 + 30 * i as i32),
            (FAMILY, 24).into_font().color(&RGBColor(60, 60, 60)),
        ))?;
    }
    let mut chart = ChartBuilder::on(&main)
        .caption(&c.title, (FAMILY, 36).into_font())
        .margin(20)
        .margin_right(50)
        .x_label_area_size(85)
        .y_label_area_size(120)
        .build_cartesian_2d(c.x.clone(), c.y.clone())?;
    let xfmt = |v: &f64| c.x.label(*v);
    let yfmt = |v: &f64| c.y.label(*v);
    chart
        .configure_mesh()
        .x_desc(c.x_desc.as_str())
        .y_desc(c.y_desc.as_str())
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

    for r in &c.refs {
        let style = r.color.stroke_width(3);
        chart
            .draw_series(DashedLineSeries::new(r.points.clone(), 16, 10, style))?
            .label(r.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 36, y)], style));
    }
    for (i, l) in c.lines.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        if l.band.len() >= 2 {
            let mut poly: Vec<(f64, f64)> = l.band.iter().map(|&(x, _, hi)| (x, hi)).collect();
            poly.extend(l.band.iter().rev().map(|&(x, lo, _)| (x, lo)));
            chart.draw_series(std::iter::once(Polygon::new(
                poly,
                color.mix(0.18).filled(),
            )))?;
        }
        chart.draw_series(l.band.iter().map(|&(x, lo, hi)| {
            PathElement::new(vec![(x, lo), (x, hi)], color.mix(0.7).stroke_width(3))
        }))?;
        let style = color.stroke_width(4);
        let hollow = |j: usize| l.hollow.get(j).copied().unwrap_or(false);
        let markers = chart.draw_series(
            l.points
                .iter()
                .enumerate()
                .filter(|&(j, _)| !hollow(j))
                .map(|(_, &p)| Circle::new(p, 7, color.filled())),
        )?;
        if l.markers_only {
            markers
                .label(l.label.clone())
                .legend(move |(x, y)| Circle::new((x + 18, y), 7, color.filled()));
        } else {
            chart
                .draw_series(LineSeries::new(l.points.clone(), style))?
                .label(l.label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 36, y)], style));
        }
        // Over the line, so that it shows as a ring.
        let rings = l.points.iter().enumerate().filter(|&(j, _)| hollow(j));
        chart.draw_series(
            rings
                .clone()
                .map(|(_, &p)| Circle::new(p, 8, WHITE.filled())),
        )?;
        chart.draw_series(rings.map(|(_, &p)| Circle::new(p, 8, color.stroke_width(3))))?;
    }
    chart
        .configure_series_labels()
        .position(c.legend.clone())
        .label_font((FAMILY, 24))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .margin(18)
        .legend_area_size(48)
        .draw()?;
    root.present()
}

/// Break `text` into lines of at most `width` characters at spaces.
pub(super) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Write `chart` as `<dir>/<stem>.svg` and `<dir>/<stem>.png`; returns both paths.
fn write_chart(dir: &Path, stem: &str, chart: &Chart) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| anyhow!("drawing {}: {e}", svg_path.display()))?;
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
        draw(&root, chart).map_err(|e| anyhow!("drawing {}: {e}", png_path.display()))?;
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

/// One plot of the report: `plots/<stem>.svg` and `plots/<stem>.png`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plot {
    /// File name without extension, e.g. `study1-gemm-speedup`.
    pub stem: String,
    /// What it shows, for the report's link text.
    pub title: String,
    /// The files written (SVG and PNG).
    pub files: Vec<PathBuf>,
}

/// A file-name-safe version of `name`: lower-case letters, digits and `-`.
pub fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.is_empty() {
        "study".into()
    } else {
        out
    }
}

/// The unit a duration is shown in: seconds from 1 ms up, else µs or ns. Returns (scale, unit).
fn time_unit(t: f64) -> (f64, &'static str) {
    if !(t.is_finite() && t > 0.0) || t >= 1e-3 {
        (1.0, "s")
    } else if t >= 1e-6 {
        (1e6, "µs")
    } else {
        (1e9, "ns")
    }
}

/// Decimals that give `v` three significant digits.
fn decimals3(v: f64) -> usize {
    if v > 0.0 && v.is_finite() {
        (2 - v.log10().floor() as i32).clamp(0, 9) as usize
    } else {
        0
    }
}

/// A duration with three significant digits: `0.0213 s`, `1.23 s`, `123 s`; below a millisecond
/// in µs or ns (`48.5 µs`).
pub fn secs(t: f64) -> String {
    let (scale, unit) = time_unit(t);
    let v = t * scale;
    format!("{v:.d$} {unit}", d = decimals3(v))
}

/// A duration and its uncertainty in one unit, with the duration's decimals:
/// `0.550 ± 0.008 s`.
pub fn secs_pm(t: f64, half: f64) -> String {
    let (scale, unit) = time_unit(t);
    let v = t * scale;
    format!("{v:.d$} ± {:.d$} {unit}", half * scale, d = decimals3(v))
}

fn legend_label(s: &Series<'_>, with_base: bool) -> String {
    let base = s.base_point();
    if with_base {
        format!(
            "{} (p0={}: {})",
            s.display_label(),
            base.workers,
            secs(base.summary.median)
        )
    } else {
        s.display_label().to_string()
    }
}

fn base_caption(series: &[&Series<'_>], what: &str) -> String {
    let hollow = if series
        .iter()
        .flat_map(|s| s.points.iter())
        .any(|p| crate::load::is_disturbed(p.record))
    {
        " Hollow markers: disturbed points (other work used their cores; not in the fits)."
    } else {
        ""
    };
    let text = match series {
        [s] => {
            let b = s.base_point();
            format!(
                "Base case: p0 = {}, median {} ({} reps). {what} Band: slowest to fastest repetition.",
                b.workers,
                secs(b.summary.median),
                b.summary.n
            )
        }
        _ => format!("Base case: the smallest p of each series (p0 and median time in the legend). {what} Band: slowest to fastest repetition."),
    };
    text + hollow
}

/// The x axis of the plots against workers. In a node-count sweep with one rank per node and one
/// thread per rank (p = nodes for every point), it says so: the axis is then the node count.
fn workers_axis(series: &[&Series<'_>]) -> String {
    let per_node = series
        .iter()
        .flat_map(|s| s.points.iter())
        .all(|p| p.workers == u64::from(p.record.point.resources.nodes));
    let several_nodes = series
        .iter()
        .flat_map(|s| s.points.iter())
        .any(|p| p.record.point.resources.nodes > 1);
    if per_node && several_nodes {
        "nodes (one rank per node: p = nodes)".into()
    } else {
        "workers p (ranks × threads × GPUs)".into()
    }
}

/// Draw the plots of one study into `dir` and return them. `series` are the study's series (see
/// [`super::scaling::series`]); studies without any scaling data get no plots.
pub fn study_plots(
    dir: &Path,
    study: usize,
    name: &str,
    series: &[&Series<'_>],
    machine: &Machine,
) -> Result<Vec<Plot>> {
    let Some(first) = series.first() else {
        return Ok(Vec::new());
    };
    let scaling = first.scaling;
    let workload = first.workload.as_str();
    let prefix = format!("study{}-{}", study + 1, slug(name));
    let several = series.len() > 1;
    let mut plots = Vec::new();
    let mut emit = |kind: &str, chart: Chart| -> Result<()> {
        let stem = format!("{prefix}-{kind}");
        let files = write_chart(dir, &stem, &chart)?;
        plots.push(Plot {
            stem,
            title: chart.title,
            files,
        });
        Ok(())
    };

    if messages::is_message_study(series) {
        let points = messages::message_points(series);
        for (kind, chart) in message_charts(name, workload, &points) {
            emit(kind, chart)?;
        }
        return Ok(plots);
    }
    if let Some(chart) = comm_chart(name, workload, series) {
        emit("comm", chart)?;
    }
    if let Some(chart) = nested_chart(name, workload, series) {
        emit("nested", chart)?;
    }

    let scales = series.iter().any(|s| s.distinct_workers() >= 2);
    let all_p = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.workers as f64))
    };
    if scales && scaling == Scaling::Strong {
        let x = Axis::measured(all_p(), Scale::Log2);
        let y_vals = series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .flat_map(|p| [p.speedup_range.0, p.speedup_range.1])
            })
            .chain(all_p());
        let y = Axis::fit(y_vals, Scale::Log2, false);
        // S = p, inside both axes.
        let (from, to) = (x.lo.max(y.lo), x.hi.min(y.hi));
        let ideal = vec![(from, from), (to, to)];
        emit(
            "speedup",
            Chart {
                title: format!("{name}: strong scaling speedup ({workload})"),
                caption: base_caption(series, "S(p) = T(p0)·p0 / T(p)."),
                x_desc: workers_axis(series),
                y_desc: "speedup S(p)".into(),
                lines: series_lines(series, several, |p| {
                    (p.speedup, p.speedup_range.0, p.speedup_range.1)
                }),
                refs: vec![Reference {
                    label: "ideal: S = p".into(),
                    points: ideal,
                    color: BLACK,
                }],
                x,
                y,
                legend: SeriesLabelPosition::UpperLeft,
            },
        )?;
    }
    if scales {
        let x = Axis::measured(all_p(), Scale::Log2);
        let y_max = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.efficiency_range.1))
            .fold(1.0f64, f64::max);
        let y = Axis::fit([0.0, y_max.min(4.0), 1.05], Scale::Linear, true).percent();
        let (what, title) = match scaling {
            Scaling::Strong => (
                "E(p) = S(p) / p.",
                format!("{name}: strong scaling parallel efficiency ({workload})"),
            ),
            Scaling::Weak => (
                "E(p) = T(p0) / T(p), work per worker fixed.",
                format!("{name}: weak scaling efficiency ({workload})"),
            ),
        };
        emit(
            "efficiency",
            Chart {
                title,
                caption: base_caption(series, what),
                x_desc: workers_axis(series),
                y_desc: "efficiency E(p)".into(),
                lines: series_lines(series, several, |p| {
                    (p.efficiency, p.efficiency_range.0, p.efficiency_range.1)
                }),
                refs: vec![Reference {
                    label: "ideal: 100%".into(),
                    points: vec![(x.lo, 1.0), (x.hi, 1.0)],
                    color: BLACK,
                }],
                x,
                y,
                legend: SeriesLabelPosition::LowerLeft,
            },
        )?;
    }
    if let Some(chart) = throughput_chart(name, series, machine) {
        emit("throughput", chart)?;
    }
    Ok(plots)
}

/// The lines of a speedup or efficiency chart: one per series, or, for a series that sweeps both
/// ranks and threads (hybrid MPI × threads), one per threads-per-rank value, so that points with
/// equal p but different splits (2 ranks × 1 thread, 1 rank × 2 threads) are not joined into a
/// zig-zag. `value` gives (y, band low, band high) of a point.
fn series_lines(
    series: &[&Series<'_>],
    several: bool,
    value: impl Fn(&ScalingPoint<'_>) -> (f64, f64, f64),
) -> Vec<Line> {
    let mut lines = Vec::new();
    for s in series {
        let label = legend_label(s, several);
        let mut ranks: Vec<u32> = s
            .points
            .iter()
            .map(|p| p.record.point.resources.ranks)
            .collect();
        let mut threads: Vec<u32> = s
            .points
            .iter()
            .map(|p| p.record.point.resources.threads)
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        threads.sort_unstable();
        threads.dedup();
        let groups: Vec<(String, Vec<&ScalingPoint<'_>>)> = if ranks.len() > 1 && threads.len() > 1
        {
            threads
                .iter()
                .map(|&t| {
                    (
                        format!("{label}, {t} thread(s)/rank"),
                        s.points
                            .iter()
                            .filter(|p| p.record.point.resources.threads == t)
                            .collect(),
                    )
                })
                .collect()
        } else {
            vec![(label, s.points.iter().collect())]
        };
        for (label, pts) in groups {
            lines.push(Line {
                markers_only: false,
                label,
                points: pts.iter().map(|p| (p.workers as f64, value(p).0)).collect(),
                band: pts
                    .iter()
                    .map(|p| {
                        let (_, lo, hi) = value(p);
                        (p.workers as f64, lo, hi)
                    })
                    .collect(),
                hollow: pts
                    .iter()
                    .map(|p| crate::load::is_disturbed(p.record))
                    .collect(),
            });
        }
    }
    lines
}

/// Latency and bandwidth against message size, log–log, one line per resources/parameters.
fn message_charts(
    name: &str,
    workload: &str,
    points: &[MessagePoint<'_>],
) -> Vec<(&'static str, Chart)> {
    if points.is_empty() {
        return Vec::new();
    }
    let mut order: Vec<&str> = Vec::new();
    for p in points {
        if !order.contains(&p.line.as_str()) {
            order.push(&p.line);
        }
    }
    let x = Axis::measured(points.iter().map(|p| p.size as f64), Scale::Log2).bytes();
    let from_metric = points.iter().all(|p| p.from_metric);
    let lat_note = if from_metric {
        "Latency: median of the recorded latency_us (ping-pong: one-way, half a round trip; collectives: time per call)."
    } else if points.iter().any(|p| p.from_metric) {
        "Latency: the recorded one-way latency (latency_us) where present, else median time / iterations."
    } else {
        "Latency: median time / iterations (the time of one operation)."
    };
    let lat_lines: Vec<Line> = order
        .iter()
        .map(|&l| {
            let pts: Vec<&MessagePoint<'_>> = points.iter().filter(|p| p.line == l).collect();
            Line {
                hollow: Vec::new(),
                markers_only: false,
                label: l.to_string(),
                points: pts.iter().map(|p| (p.size as f64, p.latency_us)).collect(),
                band: pts
                    .iter()
                    .map(|p| (p.size as f64, p.latency_range.0, p.latency_range.1))
                    .collect(),
            }
        })
        .collect();
    let y = Axis::fit(
        points
            .iter()
            .flat_map(|p| [p.latency_range.0, p.latency_range.1, p.latency_us]),
        Scale::Log10,
        false,
    );
    let mut charts = vec![(
        "latency",
        Chart {
            title: format!("{name}: latency vs message size ({workload})"),
            caption: format!("{lat_note} Band: fastest to slowest repetition. Log–log axes."),
            x_desc: "message size (bytes)".into(),
            y_desc: "latency (µs)".into(),
            x: x.clone(),
            y,
            lines: lat_lines,
            refs: Vec::new(),
            legend: SeriesLabelPosition::UpperLeft,
        },
    )];
    let bw: Vec<&MessagePoint<'_>> = points
        .iter()
        .filter(|p| p.bandwidth_gbps.is_some())
        .collect();
    if !bw.is_empty() {
        let lines: Vec<Line> = order
            .iter()
            .map(|&l| {
                let pts: Vec<&&MessagePoint<'_>> = bw.iter().filter(|p| p.line == l).collect();
                Line {
                    hollow: Vec::new(),
                    markers_only: false,
                    label: l.to_string(),
                    points: pts
                        .iter()
                        .filter_map(|p| Some((p.size as f64, p.bandwidth_gbps?)))
                        .collect(),
                    band: pts
                        .iter()
                        .filter_map(|p| {
                            let (lo, hi) = p.bandwidth_range?;
                            Some((p.size as f64, lo, hi))
                        })
                        .collect(),
                }
            })
            .filter(|l| !l.points.is_empty())
            .collect();
        let y = Axis::fit(
            bw.iter().flat_map(|p| {
                let (lo, hi) = p.bandwidth_range.unwrap_or((f64::NAN, f64::NAN));
                [p.bandwidth_gbps.unwrap_or(f64::NAN), lo, hi]
            }),
            Scale::Log10,
            false,
        );
        charts.push((
            "bandwidth",
            Chart {
                title: format!("{name}: bandwidth vs message size ({workload})"),
                caption: "Bandwidth = the workload's bytes / median time (GB/s = 1e9 B/s; the ping-pong counts 2 · size · iterations, i.e. size / one-way time). Band: slowest to fastest repetition. Log–log axes.".into(),
                x_desc: "message size (bytes)".into(),
                y_desc: "bandwidth (GB/s)".into(),
                x,
                y,
                lines,
                refs: Vec::new(),
                legend: SeriesLabelPosition::UpperLeft,
            },
        ));
    }
    charts
}

/// Median compute and communication time against p, for studies whose points record `comm_s`.
/// For nested cross-validation studies (points recording `nested_score` and `non_nested_score`):
/// one marker per series (parameter set: dataset, estimator, grid, seed), the nested score against
/// the non-nested one, with the diagonal where they agree, coloured by the parameters that vary
/// (seeds pooled). The scores are the same at every p (each repetition is checked bit for bit),
/// so each series is one marker; above the diagonal is the selection bias the model-selection
/// lecture is about.
fn nested_chart(name: &str, workload: &str, series: &[&Series<'_>]) -> Option<Chart> {
    // (parameters, nested, non-nested) per series.
    let scored: Vec<(Vec<String>, (f64, f64))> = series
        .iter()
        .filter_map(|s| {
            let p = s.points.first()?;
            let xy = metric_median(p.record, "nested_score")
                .zip(metric_median(p.record, "non_nested_score"))
                .filter(|(x, y)| x.is_finite() && y.is_finite())?;
            Some((fixed_params(p.record), xy))
        })
        .collect();
    // One colour per combination of the parameters that vary (datasets, grids), seeds pooled:
    // a seed only changes the fold split, so its markers are repeats of one experiment.
    let varies =
        |kv: &String| !kv.starts_with("seed=") && !scored.iter().all(|(ps, _)| ps.contains(kv));
    let mut groups: Vec<(String, Vec<(f64, f64)>)> = Vec::new();
    for (ps, xy) in &scored {
        let key = ps
            .iter()
            .filter(|kv| varies(kv))
            .cloned()
            .collect::<Vec<_>>()
            .join(" ");
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, pts)) => pts.push(*xy),
            None => groups.push((key, vec![*xy])),
        }
    }
    let lines: Vec<Line> = groups
        .into_iter()
        .map(|(key, points)| {
            let optimism = points.iter().map(|(x, y)| y - x).sum::<f64>() / points.len() as f64;
            let what = if key.is_empty() {
                "scores".to_string()
            } else {
                key
            };
            Line {
                hollow: Vec::new(),
                label: format!("{what} (mean optimism {optimism:+.3})"),
                markers_only: true,
                points,
                band: Vec::new(),
            }
        })
        .collect();
    if lines.is_empty() {
        return None;
    }
    // One range for both axes, so the diagonal is the diagonal.
    let values: Vec<f64> = lines
        .iter()
        .flat_map(|l| l.points.iter().flat_map(|&(x, y)| [x, y]))
        .collect();
    let axis = Axis::fit(values, Scale::Linear, false);
    let diagonal = vec![(axis.lo, axis.lo), (axis.hi, axis.hi)];
    Some(Chart {
        title: format!("{name}: non-nested vs nested score ({workload})"),
        caption: "Each marker is one point (parameter set and seed): x its nested cross-validation score (the outer test folds never take part in choosing the hyperparameters), y the non-nested score (the best candidate's score on the inner folds that chose it). Above the dashed line: optimism = non-nested − nested, the bias of scoring a choice on the data that made it.".into(),
        x_desc: "nested score".into(),
        y_desc: "non-nested score".into(),
        x: axis.clone(),
        y: axis,
        lines,
        refs: vec![Reference {
            label: "no optimism: non-nested = nested".into(),
            points: diagonal,
            color: BLACK,
        }],
        legend: SeriesLabelPosition::LowerRight,
    })
}

fn comm_chart(name: &str, workload: &str, series: &[&Series<'_>]) -> Option<Chart> {
    if !messages::has_comm(series) {
        return None;
    }
    let several = series.len() > 1;
    let mut lines = Vec::new();
    let mut all_y = vec![0.0];
    let mut all_p = Vec::new();
    for s in series {
        let label = if several {
            format!(" ({})", s.display_label())
        } else {
            String::new()
        };
        for (what, metric) in [
            ("communication", messages::COMM_METRIC),
            ("compute", messages::COMPUTE_METRIC),
        ] {
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| {
                    Some((
                        p.workers as f64,
                        super::csv::metric_median(p.record, metric)?,
                    ))
                })
                .collect();
            if pts.is_empty() {
                continue;
            }
            all_y.extend(pts.iter().map(|p| p.1));
            all_p.extend(pts.iter().map(|p| p.0));
            lines.push(Line {
                hollow: Vec::new(),
                markers_only: false,
                label: format!("{what}{label}"),
                points: pts,
                band: Vec::new(),
            });
        }
        let total: Vec<(f64, f64)> = s
            .points
            .iter()
            .map(|p| (p.workers as f64, p.summary.median))
            .collect();
        all_y.extend(total.iter().map(|p| p.1));
        lines.push(Line {
            hollow: Vec::new(),
            markers_only: false,
            label: format!("total (median time){label}"),
            points: total,
            band: Vec::new(),
        });
    }
    let x = Axis::measured(all_p, Scale::Log2);
    let y = Axis::fit(all_y, Scale::Linear, true);
    let mut over: Vec<u64> = series
        .iter()
        .flat_map(|s| s.points.iter())
        .filter(|p| p.record.point.oversubscribed)
        .map(|p| p.workers)
        .collect();
    over.sort_unstable();
    over.dedup();
    let over_note = if over.is_empty() {
        String::new()
    } else {
        let ps: Vec<String> = over.iter().map(|p| p.to_string()).collect();
        format!(
            " Oversubscribed (more ranks × threads than cores, times not comparable): p = {}.",
            ps.join(", ")
        )
    };
    Some(Chart {
        title: format!("{name}: compute vs communication ({workload})"),
        caption: format!("Median over the repetitions of the time spent communicating (comm_s) and computing (compute_s), beside the median total time; under MPI each is the maximum over the ranks, so comm + compute can exceed the total.{over_note}"),
        x_desc: workers_axis(series),
        y_desc: "seconds".into(),
        x,
        y,
        lines,
        refs: Vec::new(),
        legend: SeriesLabelPosition::UpperRight,
    })
}

/// Throughput against size (strong studies over several sizes) or against p (otherwise).
fn throughput_chart(name: &str, series: &[&Series<'_>], machine: &Machine) -> Option<Chart> {
    let first = series.first()?;
    let rec0 = first.base_point().record;
    let metric = Throughput::for_work(&rec0.work)?;
    let workload = first.workload.as_str();
    let work = |w: &crate::workload::Work| metric.work(w);
    let with_peak = metric == Throughput::Gflops
        && machine.peak_gflops_per_core > 0.0
        && rec0.backend != "cuda";
    let peak = machine.peak_gflops_per_core;

    let mut sizes: Vec<u64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.record.size))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let by_size = first.scaling == Scaling::Strong && sizes.len() >= 2;

    // label -> points (x, median rate, low, high)
    let mut groups: BTreeMap<String, Vec<(f64, f64, f64, f64)>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut workers: Vec<u64> = Vec::new();
    for s in series {
        for p in &s.points {
            let w = work(&p.record.work);
            if w <= 0.0 {
                continue;
            }
            let (label, x) = if by_size {
                let mut parts = fixed_params(p.record);
                parts.push(resources_label(&p.record.point.resources));
                (parts.join(" "), p.record.size as f64)
            } else {
                (s.display_label().to_string(), p.workers as f64)
            };
            if !groups.contains_key(&label) {
                order.push(label.clone());
            }
            let r = |t: f64| w / t / 1e9;
            groups.entry(label).or_default().push((
                x,
                r(p.summary.median),
                r(p.summary.max),
                r(p.summary.min),
            ));
            workers.push(p.workers);
        }
    }
    if groups.is_empty() {
        return None;
    }
    workers.sort_unstable();
    workers.dedup();
    let xs: Vec<f64> = groups.values().flatten().map(|g| g.0).collect();
    let x_scale = if by_size {
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
        if hi / lo >= 1000.0 {
            Scale::Log10
        } else {
            Scale::Log2
        }
    } else {
        Scale::Log2
    };
    let x = Axis::measured(xs.iter().copied(), x_scale);

    let mut refs = Vec::new();
    if with_peak {
        if by_size {
            let shown: Vec<u64> = workers.iter().rev().take(4).copied().collect();
            for (i, p) in shown.iter().enumerate() {
                let v = peak * *p as f64;
                refs.push(Reference {
                    label: format!("theoretical peak, p={p}: {} GFLOP/s", trim_num(v)),
                    points: vec![(x.lo, v), (x.hi, v)],
                    color: [
                        RGBColor(90, 90, 90),
                        RGBColor(150, 150, 150),
                        RGBColor(190, 120, 120),
                        RGBColor(120, 120, 190),
                    ][i],
                });
            }
        } else {
            refs.push(Reference {
                label: format!("theoretical peak: {} GFLOP/s per core × p", trim_num(peak)),
                points: vec![(x.lo, peak * x.lo), (x.hi, peak * x.hi)],
                color: RGBColor(90, 90, 90),
            });
        }
    }
    let measured_max = groups
        .values()
        .flatten()
        .map(|g| g.3)
        .fold(0.0f64, f64::max);
    let ref_max = refs
        .iter()
        .flat_map(|r| r.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max);
    let y = if ref_max > 8.0 * measured_max && measured_max > 0.0 {
        let vals = groups
            .values()
            .flatten()
            .flat_map(|g| [g.2, g.3])
            .chain([ref_max]);
        Axis::fit(vals, Scale::Log10, false)
    } else {
        Axis::fit(
            groups.values().flatten().map(|g| g.3).chain([ref_max, 0.0]),
            Scale::Linear,
            true,
        )
    };
    if y.scale == Scale::Log10 {
        // Keep the sloped peak line inside the plot.
        for r in &mut refs {
            for pt in &mut r.points {
                pt.1 = pt.1.clamp(y.lo, y.hi);
            }
        }
    }

    let lines = order
        .iter()
        .map(|label| {
            let mut pts = groups[label].clone();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Line {
                hollow: Vec::new(),
                markers_only: false,
                label: label.clone(),
                points: pts.iter().map(|g| (g.0, g.1)).collect(),
                band: pts.iter().map(|g| (g.0, g.2, g.3)).collect(),
            }
        })
        .collect();
    let peak_note = if with_peak {
        format!(
            "Dashed: theoretical peak {} GFLOP/s per core ({} × {} FMA × 2 × {:.2} GHz) × p.",
            trim_num(peak),
            machine.simd_f64_lanes,
            machine.fma_units,
            machine.clock()
        )
    } else if metric == Throughput::Gflops {
        "Peak unknown for this machine.".into()
    } else {
        String::new()
    };
    let unit = metric.unit();
    let (title, x_desc) = if by_size {
        let unit_name = if rec0.size_unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", rec0.size_unit)
        };
        (
            format!("{name}: {unit} vs problem size ({workload})"),
            format!("problem size{unit_name}"),
        )
    } else {
        let at = size_label(rec0)
            .filter(|_| first.scaling == Scaling::Strong)
            .map(|s| format!(", {s}"))
            .unwrap_or_default();
        (
            format!("{name}: {unit} vs workers ({workload}{at})"),
            workers_axis(series),
        )
    };
    Some(Chart {
        title,
        caption: format!(
            "Median time over the repetitions; band: slowest to fastest repetition. {peak_note}"
        ),
        x_desc,
        y_desc: unit.to_string(),
        x,
        y,
        lines,
        refs,
        legend: SeriesLabelPosition::UpperLeft,
    })
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

    #[test]
    fn names_and_times() {
        assert_eq!(slug("Strong GEMM (tuned)"), "strong-gemm-tuned");
        assert_eq!(slug("…"), "study");
        assert_eq!(secs(0.021_34), "0.0213 s");
        assert_eq!(secs(1.234_5), "1.23 s");
        assert_eq!(secs(123.4), "123 s");
        assert_eq!(secs(0.007_3), "0.00730 s");
        assert_eq!(secs(48.51e-6), "48.5 µs");
        assert_eq!(secs(25e-9), "25.0 ns");
        assert_eq!(secs_pm(0.55, 0.0078), "0.550 ± 0.008 s");
        assert_eq!(secs_pm(1.0, 0.0142), "1.00 ± 0.01 s");
    }

    #[test]
    fn a_sweep_with_one_rank_per_node_is_plotted_against_nodes() {
        use crate::report::scaling;
        use crate::report::test_support::mpi_record;
        let sweep = |per_node: bool| {
            let recs: Vec<_> = [1u32, 2]
                .into_iter()
                .map(|ranks| {
                    let mut r =
                        mpi_record(0, "mpi.stencil", ranks, 1, 512, 10, &[0.2 / ranks as f64]);
                    r.point.resources.nodes = if per_node { ranks } else { 1 };
                    r
                })
                .collect();
            let series = scaling::series(&recs);
            let refs: Vec<&Series<'_>> = series.iter().collect();
            workers_axis(&refs)
        };
        assert_eq!(sweep(true), "nodes (one rank per node: p = nodes)");
        // Two ranks on one node: the workers, not the nodes.
        assert_eq!(sweep(false), "workers p (ranks × threads × GPUs)");
    }

    #[test]
    fn captions_wrap_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("", 5), Vec::<String>::new());
        assert_eq!(wrap("toolongword x", 4), vec!["toolongword", "x"]);
    }

    #[test]
    fn several_series_and_sizes_give_throughput_against_size() {
        use crate::report::scaling;
        use crate::report::test_support::record;
        let mut recs = Vec::new();
        for (n, serial) in [(256u64, 0.3), (512, 0.1), (1024, 0.04)] {
            for p in [1u32, 2, 4, 8] {
                let t = (2.0 * (n as f64).powi(3) / 4e9) * (serial + (1.0 - serial) / p as f64);
                recs.push(record(
                    0,
                    "gemm",
                    Scaling::Strong,
                    p,
                    n,
                    &[t, t * 1.05, t * 0.97],
                ));
            }
        }
        let series = scaling::series(&recs);
        assert_eq!(series.len(), 3);
        let refs: Vec<&Series<'_>> = series.iter().collect();
        let machine = Machine {
            peak_gflops_per_core: 8.0,
            simd_f64_lanes: 4,
            fma_units: 1,
            clock_ghz: 1.0,
            ..Machine::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let plots = study_plots(dir.path(), 0, "GEMM sizes", &refs, &machine).unwrap();
        let stems: Vec<&str> = plots.iter().map(|p| p.stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "study1-gemm-sizes-speedup",
                "study1-gemm-sizes-efficiency",
                "study1-gemm-sizes-throughput"
            ]
        );
        let svg =
            std::fs::read_to_string(dir.path().join("study1-gemm-sizes-throughput.svg")).unwrap();
        assert!(svg.contains("vs problem size"), "throughput against size");
        assert!(
            svg.contains("theoretical peak, p=8: 64 GFLOP/s"),
            "peak line per worker count"
        );
        let speedup =
            std::fs::read_to_string(dir.path().join("study1-gemm-sizes-speedup.svg")).unwrap();
        assert!(speedup.contains("p0=1: "), "legend names each base");
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_REPORT") {
            let keep = std::path::Path::new(&keep).join("plots");
            std::fs::create_dir_all(&keep).unwrap();
            for f in plots.iter().flat_map(|p| &p.files) {
                std::fs::copy(f, keep.join(f.file_name().unwrap())).unwrap();
            }
        }
    }

    #[test]
    fn embedded_font_loads() {
        register_font().unwrap();
    }
}

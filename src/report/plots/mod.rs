//! Slide-ready scaling plots, drawn with plotters into SVG and PNG files of 1280 × 800 pixels.
//!
//! For every study the report draws (one file per chart family):
//!
//! * `scaling`: strong scaling **speedup** S(p) against the workers p, both on log₂ axes, with
//!   the ideal line S = p; **parallel efficiency** against p (strong: S/p; weak: T(p₀)/T(p)) with
//!   the ideal 100 % line;
//! * `throughput`: GFLOP/s, or GB/s for memory-bound workloads (see [`super::Throughput`]),
//!   against the problem size when a strong study sweeps several sizes, else against p; a dashed
//!   line marks the machine's theoretical FMA peak (peak per core × p) where that peak bounds the
//!   workload (dense linear algebra: `gemm`, `hpl`), never under Monte Carlo π or a stencil;
//! * `messages`: for MPI message-size studies (see [`super::messages`]), instead of the above,
//!   **latency** (µs) and **bandwidth** (GB/s) against the message size, log–log; for studies
//!   whose points record `comm_s` where a series has two or more p, **compute vs communication**
//!   (and waiting) time against p;
//! * `ml`: for nested cross-validation studies, **non-nested vs nested score**;
//! * `oob`: for forests grown with `n_estimators = "auto"`, **out-of-bag score against trees**;
//! * `training`: for `mpi.train`, the **loss against wall time**, federated **accuracy per round**
//!   and against wall time, and the pipeline's **bubble against micro-batches**.
//!
//! Every point is drawn at its **median** with a whisker over the spread of its repetitions: the
//! interquartile range by default, the fastest to the slowest repetition with
//! [`Spread::MinMax`] (`scalelab report --spread minmax`). Axes are scaled to what is drawn (log axes hug the data, with at least two ticks).
//! Disturbed points (see [`crate::load`]) are drawn hollow in every chart. Legend entries show
//! only what varies between the lines; what they share is the subtitle (`labels`). The page
//! layout (header, plot area, legend below it, caption), the colours and the files are
//! `render`'s; `axis` maps values and labels ticks. Plots of a mock run carry a "MOCK DATA"
//! badge.

mod axis;
mod compare;
mod labels;
#[cfg(test)]
mod layout;
mod messages;
mod ml;
mod oob;
mod render;
mod scaling;
mod throughput;
mod training;

use std::path::{Path, PathBuf};

use anyhow::Result;

use self::render::{write_chart, Chart, Colors};
use super::scaling::{ScalingPoint, Series};
use crate::machine::Machine;
use crate::plan::Scaling;
use crate::results::PointRecord;

pub(in crate::report) use self::axis::Axis;
pub use self::axis::Scale;
pub use self::compare::{compare_plots, Overlay, RunSeries};
pub(in crate::report) use self::render::{register_font, wrap, FAMILY, PALETTE};
pub use self::render::{HEIGHT, WIDTH};

/// Which spread of the repetitions the whiskers show.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Spread {
    /// First to third quartile of the repetition times: robust against one odd repetition.
    #[default]
    Iqr,
    /// Fastest to slowest repetition.
    MinMax,
}

impl Spread {
    /// How the caption says it.
    fn caption(self) -> &'static str {
        match self {
            Spread::Iqr => "Markers: median over the repetitions; whiskers: interquartile range (first to third quartile of the times).",
            Spread::MinMax => "Markers: median over the repetitions; whiskers: fastest to slowest repetition.",
        }
    }

    /// The (low, high) repetition times of a point under this spread.
    fn times(self, p: &ScalingPoint<'_>) -> (f64, f64) {
        match self {
            Spread::MinMax => (p.summary.min, p.summary.max),
            Spread::Iqr => {
                let t: Vec<f64> = p.record.repetitions.iter().map(|r| r.seconds).collect();
                if t.is_empty() {
                    return (p.summary.median, p.summary.median);
                }
                (
                    crate::stats::quantile(&t, 0.25),
                    crate::stats::quantile(&t, 0.75),
                )
            }
        }
    }

    /// A rate-like value `v` (inversely proportional to time: speedup, efficiency, GFLOP/s) of a
    /// point with median time `median`, over this spread: (low, high).
    fn of_rate(self, p: &ScalingPoint<'_>, v: f64) -> (f64, f64) {
        let (fast, slow) = self.times(p);
        let m = p.summary.median;
        (v * m / slow, v * m / fast)
    }
}

/// How a study's plots are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlotOptions {
    /// The whiskers' spread.
    pub spread: Spread,
    /// The run's times came from the mock executor: every plot says so.
    pub mock: bool,
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

/// What the charts of one study share: names, the labels of its series, its colours.
struct Study<'s, 'a> {
    pub name: &'s str,
    pub workload: &'s str,
    pub series: &'s [&'s Series<'a>],
    pub opts: PlotOptions,
    /// What varies between the series, per series (empty when nothing does).
    pub labels: Vec<String>,
    /// What every series shares (workload and parameters), for the subtitle.
    pub subtitle: String,
    pub colors: Colors,
}

impl Study<'_, '_> {
    /// The legend label of series `i`: what varies, or `fallback` when nothing does.
    fn label(&self, i: usize, fallback: &str) -> String {
        if self.labels[i].is_empty() {
            fallback.to_string()
        } else {
            self.labels[i].clone()
        }
    }

    /// The colour of series `i` (its varying label is the key).
    fn style(&mut self, i: usize) -> usize {
        let key = self.labels[i].clone();
        self.colors.of(&key)
    }

    fn hollow(p: &ScalingPoint<'_>) -> bool {
        p.record.is_disturbed()
    }

    /// A note for captions when any point is disturbed.
    fn hollow_note(&self) -> &'static str {
        if self
            .series
            .iter()
            .flat_map(|s| s.points.iter())
            .any(Self::hollow)
        {
            " Hollow markers: disturbed points (other work used their cores; not in the fits)."
        } else {
            ""
        }
    }

    /// The x-axis title for the resources of the study's points.
    fn resource_axis(&self) -> String {
        labels::resource_axis(
            self.series
                .iter()
                .flat_map(|s| s.points.iter().map(|p| &p.record.point.resources)),
        )
    }

    fn chart(&self, title: String, caption: String) -> ChartText {
        ChartText {
            title,
            subtitle: self.subtitle.clone(),
            caption,
            mock: self.opts.mock,
        }
    }
}

/// The words of a chart, before its data.
struct ChartText {
    title: String,
    subtitle: String,
    caption: String,
    mock: bool,
}

impl ChartText {
    /// The chart: these words, the axes (title and range) and what is drawn.
    fn chart(
        self,
        x: (String, Axis),
        y: (String, Axis),
        lines: Vec<render::Line>,
        refs: Vec<render::Reference>,
    ) -> Chart {
        Chart {
            title: self.title,
            subtitle: self.subtitle,
            caption: self.caption,
            mock: self.mock,
            x_desc: x.0,
            y_desc: y.0,
            x: x.1,
            y: y.1,
            lines,
            refs,
        }
    }
}

/// The label parts of a series: its parameters that apply, then its size (weak: the base size).
fn series_parts(s: &Series<'_>) -> Vec<String> {
    let base = s.base_point().record;
    let mut parts = labels::params(base);
    if let Some(size) = labels::size_text(base) {
        parts.push(match s.scaling {
            Scaling::Strong => size,
            Scaling::Weak => format!("base {size}"),
        });
    }
    parts
}

/// What every series of a study shares (the plots' subtitle) and each series' own parts joined
/// by `, ` (its legend label; `""` when the study has one series): the words the report's text
/// names a series by too, so that a sentence and a legend agree.
pub(crate) fn series_labels(series: &[&Series<'_>]) -> (Vec<String>, Vec<String>) {
    let parts: Vec<Vec<String>> = series.iter().map(|s| series_parts(s)).collect();
    let (shared, own) = labels::split_shared(&parts);
    (shared, own.iter().map(|o| o.join(", ")).collect())
}

/// The parameters and size of each record split into those every record shares and each one's
/// own (in the records' order), as a legend splits its lines.
pub(crate) fn shared_params(records: &[&PointRecord]) -> (Vec<String>, Vec<Vec<String>>) {
    let parts: Vec<Vec<String>> = records
        .iter()
        .map(|r| {
            let mut parts = labels::params(r);
            parts.extend(labels::size_text(r));
            parts
        })
        .collect();
    labels::split_shared(&parts)
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
    study_plots_with(dir, study, name, series, machine, PlotOptions::default())
}

/// [`study_plots`] with [`PlotOptions`].
pub fn study_plots_with(
    dir: &Path,
    study: usize,
    name: &str,
    series: &[&Series<'_>],
    machine: &Machine,
    opts: PlotOptions,
) -> Result<Vec<Plot>> {
    let Some(first) = series.first() else {
        return Ok(Vec::new());
    };
    let (shared, own) = series_labels(series);
    let mut st = Study {
        name,
        workload: first.workload.as_str(),
        series,
        opts,
        labels: own,
        subtitle: labels::subtitle(&first.workload, &shared),
        colors: Colors::default(),
    };
    // Colours in series order, whatever chart asks first.
    for i in 0..series.len() {
        st.style(i);
    }
    let prefix = format!("study{}-{}", study + 1, slug(name));
    let mut plots = Vec::new();
    for (kind, chart) in charts(&mut st, machine) {
        let stem = format!("{prefix}-{kind}");
        let files = write_chart(dir, &stem, &chart)?;
        plots.push(Plot {
            stem,
            title: chart.title,
            files,
        });
    }
    Ok(plots)
}

/// Every chart of a study, with its kind (the file-name suffix).
fn charts(st: &mut Study<'_, '_>, machine: &Machine) -> Vec<(&'static str, Chart)> {
    let mut out = Vec::new();
    if super::messages::is_message_study(st.series) {
        return messages::message_charts(st);
    }
    if let Some(c) = messages::comm_chart(st) {
        out.push(("comm", c));
    }
    if let Some(c) = ml::nested_chart(st) {
        out.push(("nested", c));
    }
    out.extend(oob::oob_chart(st).map(|c| ("oob", c)));
    out.extend(training::loss_chart(st).map(|c| ("loss", c)));
    out.extend(training::rounds_chart(st).map(|c| ("rounds", c)));
    out.extend(training::rounds_time_chart(st).map(|c| ("rounds-time", c)));
    out.extend(training::bubble_chart(st).map(|c| ("bubble", c)));
    out.extend(scaling::charts(st));
    if let Some(c) = throughput::chart(st, machine) {
        out.push(("throughput", c));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Overlay plots for `scalelab compare`: the same study from several runs (a laptop, a cluster
//! node, a GPU node) on one set of axes, each run named by its machine.
//!
//! The lines are (run, series) pairs. A run keeps one colour in every plot (the first run the
//! first colour of the palette, the second the second, ...), and the series of one run differ by
//! their marker (circle, square, triangle, then again), so a reader finds "the laptop" by colour and "the
//! faer variant" by shape. Legends carry the run label first, then what varies between the
//! series; what every line shares is the subtitle, as in a run's own report.
//!
//! Speedup and efficiency are each run's own (against its own base point): they compare how well
//! each machine scales. The rate chart (GFLOP/s, GB/s, or fits/s for ML studies) compares what
//! each machine reaches, against p; a study measured at a single p on every run is drawn against
//! the problem size instead. No peak line is drawn: each machine has its own.
//!
//! Message-size studies (ping-pong, collectives) get the latency and bandwidth charts of a run's
//! report instead, and nested cross-validation studies their score chart as well, both drawn by
//! the same code with one line (or marker group) per run and series.

use std::collections::BTreeMap;

use anyhow::Result;

use super::axis::{Axis, Scale};
use super::render::{write_chart, Chart, Colors, Line, MARKER_SHAPES};
use super::{labels, series_parts, slug, Plot, PlotOptions, Study};
use crate::report::scaling::{resources_label, ScalingPoint, Series};
use crate::report::Throughput;

/// One run's series of a study, with the label its lines carry.
pub struct RunSeries<'s, 'a> {
    /// The run's label (its machine), first in every legend entry.
    pub label: &'s str,
    /// The run's series of the study (see [`crate::report::scaling::series`]).
    pub series: Vec<&'s Series<'a>>,
}

/// The palette has seven colours; a run's series take its colour with one of the marker shapes.
const COLOURS: usize = super::PALETTE.len();

/// Lines the overlay can tell apart: every colour with every marker shape.
const STYLES: usize = COLOURS * MARKER_SHAPES;

/// Whether every run's lines can share the run's colour, each with its own marker: no more runs
/// than colours and no run with more lines than marker shapes. Beyond that a run's first and
/// fourth lines would be drawn alike, so the lines take distinct styles in order instead (each
/// legend entry names its run).
fn runs_keep_colours(lines_per_run: &[usize]) -> bool {
    lines_per_run.len() <= COLOURS && lines_per_run.iter().all(|&n| n <= MARKER_SHAPES)
}

/// The overlay plots of one study, and the charts left out with why.
pub struct Overlay {
    pub plots: Vec<Plot>,
    /// One sentence per chart not drawn: more lines than the 21 styles (seven colours × three
    /// markers), so two would share colour and marker and a reader could take one for the other.
    pub left_out: Vec<String>,
}

/// Draw the overlay plots of one study into `dir`: `compare-study<N>-<name>-<kind>.{svg,png}`
/// with `N` = `study + 1`. Runs without series are left out; nothing is drawn when no run has
/// any, and a chart of more lines than the 21 colour-and-marker styles is left out and said.
pub fn compare_plots(
    dir: &std::path::Path,
    study: usize,
    name: &str,
    runs: &[RunSeries<'_, '_>],
    opts: PlotOptions,
) -> Result<Overlay> {
    let mut all: Vec<&Series<'_>> = Vec::new();
    // (run, series within the run) of each line of `all`.
    let mut owner: Vec<(usize, usize)> = Vec::new();
    let mut parts: Vec<Vec<String>> = Vec::new();
    for (r, run) in runs.iter().enumerate() {
        for (k, s) in run.series.iter().enumerate() {
            all.push(s);
            owner.push((r, k));
            let mut p = vec![run.label.to_string()];
            p.extend(series_parts(s));
            parts.push(p);
        }
    }
    let Some(first) = all.first() else {
        return Ok(Overlay {
            plots: Vec::new(),
            left_out: Vec::new(),
        });
    };
    let (shared, own) = labels::split_shared(&parts);
    let labels: Vec<String> = own.iter().map(|o| o.join(", ")).collect();
    let colors = run_colors(&labels, &owner, runs.len());
    let mut st = Study {
        name,
        workload: first.workload.as_str(),
        series: &all,
        opts,
        labels,
        subtitle: labels::subtitle(&first.workload, &shared),
        colors,
    };
    let charts = if crate::report::messages::is_message_study(&all) {
        message_charts(&mut st, runs)
    } else {
        let mut charts = super::scaling::charts(&mut st);
        if let Some(c) = rate_chart(&mut st, &owner, runs) {
            charts.push(("rate", c));
        }
        let run_of: Vec<(usize, &str)> = owner.iter().map(|&(r, _)| (r, runs[r].label)).collect();
        if let Some(mut c) = super::ml::nested_chart_by_run(&mut st, &run_of) {
            c.title.push_str(", by machine");
            charts.push(("nested", c));
        }
        charts
    };
    let prefix = format!("compare-study{}-{}", study + 1, slug(name));
    let mut plots = Vec::new();
    let mut left_out = Vec::new();
    for (kind, chart) in charts {
        if chart.lines.len() > STYLES {
            left_out.push(format!(
                "Not drawn: {}, {} lines (each run's) are more than the {STYLES} \
                 colour-and-marker styles that tell lines apart; compare fewer runs, or split \
                 the study's sweep over more studies. The table above is complete.",
                chart.title,
                chart.lines.len()
            ));
            continue;
        }
        let stem = format!("{prefix}-{kind}");
        let files = write_chart(dir, &stem, &chart)?;
        plots.push(Plot {
            stem,
            title: chart.title,
            files,
        });
    }
    Ok(Overlay { plots, left_out })
}

/// The latency and bandwidth charts of a message-size study (ping-pong, collectives) over the
/// runs: a run's own lines ([`crate::report::messages::message_points`], one per resources and
/// parameters) with the run's label in front, in the run's colour, drawn by the same code as a
/// run's report ([`super::messages::message_charts_of`]).
fn message_charts(
    st: &mut Study<'_, '_>,
    runs: &[RunSeries<'_, '_>],
) -> Vec<(&'static str, Chart)> {
    // The charts split a line's name at spaces to find what all lines share: the run label
    // stays one word (no-break spaces), turned back into spaces in the legend below.
    const NBSP: char = '\u{a0}';
    let mut points = Vec::new();
    let (mut keys, mut owner): (Vec<String>, Vec<(usize, usize)>) = (Vec::new(), Vec::new());
    for (r, run) in runs.iter().enumerate() {
        let label = run.label.replace(' ', &NBSP.to_string());
        let mut k = 0;
        for mut p in crate::report::messages::message_points(&run.series) {
            p.line = format!("{label} {}", p.line);
            if !keys.contains(&p.line) {
                keys.push(p.line.clone());
                owner.push((r, k));
                k += 1;
            }
            points.push(p);
        }
    }
    let colors = run_colors(&keys, &owner, runs.len());
    let mut charts = super::messages::message_charts_of(st, points, colors);
    for (_, c) in &mut charts {
        c.title.push_str(", by machine");
        for l in &mut c.lines {
            l.label = l.label.replace(NBSP, " ");
        }
    }
    charts
}

/// Colours keyed by legend label so that series `k` of run `r` gets style `r + 7·k`: the run's
/// colour with the k-th marker shape. [`Colors`] hands out styles in the order keys are first
/// asked for, so the free styles in between are taken by keys no line uses. With more runs than
/// colours, or a run with more series than marker shapes ([`runs_keep_colours`]), styles are
/// handed out in line order: distinct up to [`STYLES`] lines.
fn run_colors(labels: &[String], owner: &[(usize, usize)], runs: usize) -> Colors {
    let mut colors = Colors::default();
    let mut per_run = vec![0usize; runs];
    for &(r, k) in owner {
        per_run[r] = per_run[r].max(k + 1);
    }
    if !runs_keep_colours(&per_run) {
        for l in labels {
            colors.of(l);
        }
        return colors;
    }
    let mut slots: BTreeMap<usize, &str> = BTreeMap::new();
    for (l, &(r, k)) in labels.iter().zip(owner) {
        slots.entry(r + COLOURS * k).or_insert(l);
    }
    let last = slots.keys().next_back().copied().unwrap_or(0);
    for i in 0..=last {
        match slots.get(&i) {
            Some(l) => colors.of(l),
            None => colors.of(&format!("\u{0}unused style {i}")),
        };
    }
    colors
}

/// The rate of a point and its unit: GFLOP/s or GB/s from its analytic work, else fits/s or
/// rows/s for ML points; `None` when the point counts no work.
fn rate(p: &ScalingPoint<'_>) -> Option<(f64, String)> {
    let rec = p.record;
    let median = p.summary.median;
    match Throughput::for_work(&rec.work) {
        Some(t) => {
            let w = t.work(&rec.work);
            (w > 0.0 && median > 0.0).then(|| (w / median / 1e9, t.unit().to_string()))
        }
        None => crate::report::ml::rate(rec, median),
    }
}

/// The rate chart (see the module documentation), or `None` when no point counts work.
fn rate_chart(
    st: &mut Study<'_, '_>,
    owner: &[(usize, usize)],
    runs: &[RunSeries<'_, '_>],
) -> Option<Chart> {
    let unit = st
        .series
        .iter()
        .flat_map(|s| s.points.iter())
        .find_map(|p| rate(p).map(|r| r.1))?;
    let mut ps: Vec<u64> = st
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.workers))
        .collect();
    ps.sort_unstable();
    ps.dedup();
    let by_size = ps.len() < 2;

    let (order, lines, names) = rate_lines(st, owner, runs, &unit, by_size);
    if lines.is_empty() {
        return None;
    }
    let (subtitle, texts) = rate_labels(st, &order, &lines, by_size);
    let xs: Vec<f64> = lines
        .values()
        .flat_map(|l| l.2.iter().map(|g| g.0))
        .collect();
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
    let x = Axis::measured(xs.iter().copied(), x_scale).named(names);
    let y = Axis::fit(
        lines
            .values()
            .flat_map(|l| l.2.iter().flat_map(|g| [g.1, g.3]))
            .chain([0.0]),
        Scale::Linear,
        true,
    );
    let drawn: Vec<Line> = order
        .iter()
        .zip(&texts)
        .map(|(key, text)| {
            let (_, style, pts) = &lines[key];
            let mut pts = pts.clone();
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            Line {
                label: if text.is_empty() {
                    "measured".into()
                } else {
                    text.clone()
                },
                style: *style,
                markers_only: false,
                points: pts.iter().map(|g| (g.0, g.1)).collect(),
                band: pts.iter().map(|g| (g.0, g.2, g.3)).collect(),
                hollow: pts.iter().map(|g| g.4).collect(),
            }
        })
        .collect();
    let (title, x_desc) = if by_size {
        (
            format!("{}: {unit} vs problem size, by machine", st.name),
            match st.series[0].base_point().record.size_unit.trim() {
                u if !u.is_empty() && u.len() <= 2 => format!("problem size {u}"),
                _ => "problem size".to_string(),
            },
        )
    } else {
        let axis = st.resource_axis();
        (format!("{}: {unit} vs {axis}, by machine", st.name), axis)
    };
    let mut t = st.chart(
        title,
        format!(
            "{unit} = work / median time, each run on its own machine (legend). {}{}",
            st.opts.spread.caption(),
            st.hollow_note()
        ),
    );
    t.subtitle = subtitle;
    Some(t.chart((x_desc, x), (unit, y), drawn, Vec::new()))
}

/// The subtitle and the legend texts of the rate chart's lines. By size the lines are (run,
/// parameters, resources): they are labelled by what varies; against p a line is a series, with
/// its label.
fn rate_labels(
    st: &Study<'_, '_>,
    order: &[String],
    lines: &BTreeMap<String, (Vec<String>, usize, Pts)>,
    by_size: bool,
) -> (String, Vec<String>) {
    if by_size {
        let parts: Vec<Vec<String>> = order.iter().map(|k| lines[k].0.clone()).collect();
        let (shared, own) = labels::split_shared(&parts);
        (
            labels::subtitle(st.workload, &shared),
            own.iter().map(|o| o.join(", ")).collect(),
        )
    } else {
        (
            st.subtitle.clone(),
            order
                .iter()
                .map(|k| {
                    let i: usize = k.parse().unwrap_or(0);
                    st.labels[i].clone()
                })
                .collect(),
        )
    }
}

/// Points of a rate line: (x, rate, low, high, hollow).
type Pts = Vec<(f64, f64, f64, f64, bool)>;

/// The lines of the rate chart: their keys in order of first appearance; per key (label parts,
/// style, points); and the size names for the x axis. Against p a line is a series; by size
/// (`by_size`) a line is a run with its parameters and resources, over the sizes.
#[allow(clippy::type_complexity)]
fn rate_lines(
    st: &mut Study<'_, '_>,
    owner: &[(usize, usize)],
    runs: &[RunSeries<'_, '_>],
    unit: &str,
    by_size: bool,
) -> (
    Vec<String>,
    BTreeMap<String, (Vec<String>, usize, Pts)>,
    Vec<(f64, String)>,
) {
    let mut order: Vec<String> = Vec::new();
    let mut lines: BTreeMap<String, (Vec<String>, usize, Pts)> = BTreeMap::new();
    // By size: the run of each line, in order, and how many lines each run has so far.
    let mut line_runs: Vec<(usize, usize)> = Vec::new();
    let mut per_run = vec![0usize; runs.len()];
    let mut names = Vec::new();
    for (i, s) in st.series.iter().enumerate() {
        let (r, _) = owner[i];
        for p in &s.points {
            let Some((v, u)) = rate(p) else { continue };
            if u != unit {
                continue;
            }
            let (key, parts, x) = if by_size {
                let mut parts = vec![runs[r].label.to_string()];
                parts.extend(labels::params(p.record));
                parts.push(resources_label(&p.record.point.resources));
                if let Some(n) = labels::size_value(p.record) {
                    names.push((p.record.size as f64, n));
                }
                (parts.join("\u{1f}"), parts, p.record.size as f64)
            } else {
                (format!("{i}"), Vec::new(), p.workers as f64)
            };
            let (lo, hi) = st.opts.spread.of_rate(p, v);
            if !lines.contains_key(&key) {
                order.push(key.clone());
                // By size a line gathers several series (one per size): it takes its run's
                // colour and the next marker of that run, styled once every line is known.
                // Against p a line is a series, styled as in the speedup charts.
                let style = if by_size {
                    line_runs.push((r, per_run[r]));
                    per_run[r] += 1;
                    0
                } else {
                    st.colors.of(&st.labels[i])
                };
                lines.insert(key.clone(), (parts, style, Vec::new()));
            }
            if let Some(l) = lines.get_mut(&key) {
                l.2.push((x, v, lo, hi, Study::hollow(p)));
            }
        }
    }
    if by_size {
        let keep = runs_keep_colours(&per_run);
        for (n, (key, &(r, k))) in order.iter().zip(&line_runs).enumerate() {
            if let Some(l) = lines.get_mut(key) {
                l.1 = if keep { r + COLOURS * k } else { n };
            }
        }
    }
    (order, lines, names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_keeps_its_colour_and_its_series_change_marker() {
        let labels: Vec<String> = ["a1", "a2", "b1", "b2"].map(String::from).to_vec();
        let owner = [(0, 0), (0, 1), (1, 0), (1, 1)];
        let mut c = run_colors(&labels, &owner, 2);
        assert_eq!(c.of("a1"), 0);
        assert_eq!(c.of("b1"), 1);
        assert_eq!(c.of("a2"), COLOURS);
        assert_eq!(c.of("b2"), COLOURS + 1);
    }

    #[test]
    fn a_run_with_more_series_than_markers_gives_every_line_its_own_style() {
        // Two runs of four series: series 0 and 3 of a run would share colour and marker.
        let labels: Vec<String> = (0..8).map(|i| format!("l{i}")).collect();
        let owner: Vec<(usize, usize)> = (0..8).map(|i| (i / 4, i % 4)).collect();
        let mut c = run_colors(&labels, &owner, 2);
        let styles: Vec<usize> = labels.iter().map(|l| c.of(l)).collect();
        assert_eq!(styles, (0..8).collect::<Vec<_>>());
        // Three series a run keep the run's colour.
        let owner: Vec<(usize, usize)> = (0..6).map(|i| (i / 3, i % 3)).collect();
        let mut c = run_colors(&labels[..6], &owner, 2);
        let styles: Vec<usize> = labels[..6].iter().map(|l| c.of(l)).collect();
        assert_eq!(
            styles,
            [0, COLOURS, 2 * COLOURS, 1, COLOURS + 1, 2 * COLOURS + 1]
        );
    }

    /// A chart of more lines than colour-and-marker styles is left out, said with the fix.
    #[test]
    fn an_overlay_chart_of_more_lines_than_styles_is_left_out_with_the_fix() {
        use crate::plan::Scaling;
        use crate::report::test_support::{record, with_param};
        // Eleven variants at 1 and 2 threads: 22 speedup lines over two runs.
        let recs: Vec<_> = (0..11)
            .flat_map(|k| {
                [1u32, 2].map(|p| {
                    let r = record(0, "gemm", Scaling::Strong, p, 256, &[0.1 / p as f64]);
                    with_param(r, "variant", &format!("v{k}"))
                })
            })
            .collect();
        let series = crate::report::scaling::series(&recs);
        assert_eq!(series.len(), 11);
        let run = |label| RunSeries {
            label,
            series: series.iter().collect(),
        };
        let dir = tempfile::tempdir().unwrap();
        let overlay = compare_plots(
            dir.path(),
            0,
            "big",
            &[run("a"), run("b")],
            PlotOptions::default(),
        )
        .unwrap();
        assert!(overlay.plots.is_empty(), "{:?}", overlay.left_out);
        assert_eq!(
            overlay.left_out[0],
            "Not drawn: big: strong-scaling speedup, 22 lines (each run's) are more than the 21 \
             colour-and-marker styles that tell lines apart; compare fewer runs, or split the \
             study's sweep over more studies. The table above is complete."
        );
        // One run's eleven lines fit.
        let one = compare_plots(dir.path(), 0, "big", &[run("a")], PlotOptions::default()).unwrap();
        assert!(one.left_out.is_empty() && !one.plots.is_empty());
    }

    /// Two machines, two variants each, a long machine label: every overlay plot passes the
    /// layout check, the legend names each run, and a run's lines share its colour.
    #[test]
    fn overlay_plots_pass_the_layout_check() {
        use crate::plan::Scaling;
        use crate::report::test_support::{record, with_param};
        let make = |scale: f64| {
            let mut recs = Vec::new();
            for variant in ["tuned", "faer"] {
                for p in [1u32, 2, 4] {
                    let t = scale * (0.1 + 0.9 / p as f64);
                    let r = record(0, "gemm", Scaling::Strong, p, 512, &[t, t * 1.02, t * 0.99]);
                    recs.push(with_param(r, "variant", variant));
                }
            }
            recs
        };
        let (a, b) = (make(1.0), make(0.5));
        let (sa, sb) = (
            crate::report::scaling::series(&a),
            crate::report::scaling::series(&b),
        );
        let runs = [
            RunSeries {
                label: "laptop: AMD EPYC 7B13 64-Core Processor (2 cores)",
                series: sa.iter().collect(),
            },
            RunSeries {
                label: "node17: Intel Xeon Platinum 8480+ (112 cores)",
                series: sb.iter().collect(),
            },
        ];
        let dir = tempfile::tempdir().unwrap();
        let plots = compare_plots(dir.path(), 0, "DGEMM", &runs, PlotOptions::default())
            .unwrap()
            .plots;
        let stems: Vec<&str> = plots.iter().map(|p| p.stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "compare-study1-dgemm-speedup",
                "compare-study1-dgemm-efficiency",
                "compare-study1-dgemm-rate"
            ]
        );
        for p in &plots {
            let svg = std::fs::read_to_string(dir.path().join(format!("{}.svg", p.stem))).unwrap();
            let bad = super::super::layout::problems(&svg);
            assert!(bad.is_empty(), "{}: {bad:#?}", p.stem);
            assert!(svg.contains("laptop: AMD EPYC"), "{}: run named", p.stem);
            assert!(svg.contains("node17: Intel Xeon"), "{}: run named", p.stem);
        }
        let rate =
            std::fs::read_to_string(dir.path().join("compare-study1-dgemm-rate.svg")).unwrap();
        assert!(rate.contains("GFLOP/s vs threads, by machine"));
        // Run 1 is blue (0, 114, 178) for both its variants; run 2 vermillion.
        assert!(rate.contains("#0072B2"), "first run blue");
        assert!(rate.contains("#D55E00"), "second run vermillion");
        assert!(!rate.contains("#009E73"), "no third colour for two runs");

        // One thread, several sizes on both machines: the rate against the problem size, one
        // line per run and variant, no speedup.
        let sized = |scale: f64, variants: &[&str]| {
            let mut recs = Vec::new();
            for &variant in variants {
                for n in [128u64, 256, 512] {
                    let t = scale * (n as f64 / 128.0).powi(3) * 0.01;
                    let r = record(0, "gemm", Scaling::Strong, 1, n, &[t, t * 1.01]);
                    recs.push(with_param(r, "variant", variant));
                }
            }
            recs
        };
        let (c, d) = (
            sized(1.0, &["tuned", "faer"]),
            sized(0.4, &["tuned", "faer"]),
        );
        let (sc, sd) = (
            crate::report::scaling::series(&c),
            crate::report::scaling::series(&d),
        );
        let runs = [
            RunSeries {
                label: runs[0].label,
                series: sc.iter().collect(),
            },
            RunSeries {
                label: runs[1].label,
                series: sd.iter().collect(),
            },
        ];
        let sized_plots = compare_plots(dir.path(), 1, "sizes", &runs, PlotOptions::default())
            .unwrap()
            .plots;
        assert_eq!(sized_plots.len(), 1);
        let svg = std::fs::read_to_string(&sized_plots[0].files[0]).unwrap();
        let bad = super::super::layout::problems(&svg);
        assert!(bad.is_empty(), "{bad:#?}");
        assert!(svg.contains("GFLOP/s vs problem size, by machine"));
        assert!(svg.contains("problem size n"));
        // Two lines per run (its variants), in the run's colour.
        assert!(
            svg.contains("#0072B2") && svg.contains("#D55E00"),
            "both runs' colours"
        );
        assert!(!svg.contains("#009E73"), "no third colour for two runs");
        // Four variants a run: a run's first and fourth lines would share colour and marker, so
        // the eight lines take eight styles (seven colours, the eighth the first colour with
        // the second marker).
        let four = ["tuned", "faer", "blocked", "ikj"];
        let (e, f) = (sized(1.0, &four), sized(0.4, &four));
        let (se, sf) = (
            crate::report::scaling::series(&e),
            crate::report::scaling::series(&f),
        );
        let many = [
            RunSeries {
                label: runs[0].label,
                series: se.iter().collect(),
            },
            RunSeries {
                label: runs[1].label,
                series: sf.iter().collect(),
            },
        ];
        let four_plots = compare_plots(dir.path(), 2, "four", &many, PlotOptions::default())
            .unwrap()
            .plots;
        let svg = std::fs::read_to_string(&four_plots[0].files[0]).unwrap();
        assert!(super::super::layout::problems(&svg).is_empty());
        for colour in [
            "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
        ] {
            assert!(svg.contains(colour), "{colour}: every line its own style");
        }
        let plots: Vec<Plot> = plots.into_iter().chain(sized_plots).collect();
        if let Some(keep) = std::env::var_os("SCALELAB_KEEP_REPORT") {
            let keep = std::path::Path::new(&keep).join("compare");
            std::fs::create_dir_all(&keep).unwrap();
            for f in plots.iter().flat_map(|p| &p.files) {
                std::fs::copy(f, keep.join(f.file_name().unwrap())).unwrap();
            }
        }
    }
}

//! The layout test: every kind of plot is rendered from fixture records (long labels, many
//! series, ML studies, MPI studies, disturbed points, a mock run) and its SVG is read back as
//! geometry: text boxes (measured with the embedded font), marks and lines ("ink"), and boxes
//! (framed rectangles: the legend, the mock badge). A plot passes when no text leaves the page,
//! no two texts overlap, no text touches ink, and nothing crosses a box that is not drawn inside
//! it after it (its own swatches and text).
//!
//! The overlays of `scalelab compare` (two runs with long machine labels: scaling, rate, MPI
//! message-size and nested-CV studies) and the TOP500 plot (its machine line at several heights,
//! near the #500 line included) are checked the same way.

use std::path::Path;

use super::render::text_width;
use super::{study_plots_with, PlotOptions, Spread, HEIGHT, WIDTH};
use crate::machine::Machine;
use crate::plan::Scaling;
use crate::report::scaling::{self, Series};
use crate::report::test_support::{mpi_record, record, with_load, with_metric};
use crate::results::PointRecord;
use crate::value::{Size, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
}

impl Rect {
    fn inset(self, d: f64) -> Rect {
        Rect {
            x0: self.x0 + d,
            y0: self.y0 + d,
            x1: self.x1 - d,
            y1: self.y1 - d,
        }
    }
    fn overlaps(&self, o: &Rect) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }
    fn contains(&self, o: &Rect) -> bool {
        o.x0 >= self.x0 - 0.5
            && o.x1 <= self.x1 + 0.5
            && o.y0 >= self.y0 - 0.5
            && o.y1 <= self.y1 + 0.5
    }
    fn has(&self, (x, y): (f64, f64)) -> bool {
        x > self.x0 && x < self.x1 && y > self.y0 && y < self.y1
    }
}

/// What is drawn, in document order.
#[derive(Clone, Debug)]
enum Shape {
    Text(String, Rect),
    /// A line or the outline of a polygon, with its stroke width.
    Path(Vec<(f64, f64)>, f64, bool),
    Circle((f64, f64), f64),
    Frame(Rect),
}

impl Shape {
    fn bounds(&self) -> Rect {
        match self {
            Shape::Text(_, r) | Shape::Frame(r) => *r,
            Shape::Circle((x, y), r) => Rect {
                x0: x - r,
                y0: y - r,
                x1: x + r,
                y1: y + r,
            },
            Shape::Path(pts, w, _) => {
                let (mut r, h) = (
                    Rect {
                        x0: f64::INFINITY,
                        y0: f64::INFINITY,
                        x1: f64::NEG_INFINITY,
                        y1: f64::NEG_INFINITY,
                    },
                    w / 2.0,
                );
                for &(x, y) in pts {
                    r.x0 = r.x0.min(x - h);
                    r.y0 = r.y0.min(y - h);
                    r.x1 = r.x1.max(x + h);
                    r.y1 = r.y1.max(y + h);
                }
                r
            }
        }
    }

    /// Whether this ink touches `r`.
    fn touches(&self, r: &Rect) -> bool {
        match self {
            Shape::Circle((x, y), rad) => {
                let cx = x.clamp(r.x0, r.x1);
                let cy = y.clamp(r.y0, r.y1);
                (cx - x).hypot(cy - y) < *rad
            }
            Shape::Path(pts, w, closed) => {
                let grown = r.inset(-w / 2.0);
                let mut edges: Vec<((f64, f64), (f64, f64))> =
                    pts.windows(2).map(|w| (w[0], w[1])).collect();
                if *closed && pts.len() > 2 {
                    edges.push((pts[pts.len() - 1], pts[0]));
                    let c = ((r.x0 + r.x1) / 2.0, (r.y0 + r.y1) / 2.0);
                    if inside_polygon(pts, c) {
                        return true;
                    }
                }
                if pts.len() == 1 {
                    return grown.has(pts[0]);
                }
                edges.iter().any(|&(a, b)| segment_hits(a, b, &grown))
            }
            Shape::Text(_, b) | Shape::Frame(b) => b.overlaps(r),
        }
    }
}

fn inside_polygon(pts: &[(f64, f64)], (x, y): (f64, f64)) -> bool {
    let mut inside = false;
    let mut j = pts.len() - 1;
    for i in 0..pts.len() {
        let ((xi, yi), (xj, yj)) = (pts[i], pts[j]);
        if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Liang–Barsky: does the segment a–b pass through the inside of `r`?
fn segment_hits(a: (f64, f64), b: (f64, f64), r: &Rect) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r.x0),
        (dx, r.x1 - a.0),
        (-dy, a.1 - r.y0),
        (dy, r.y1 - a.1),
    ] {
        if p == 0.0 {
            if q <= 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t0 < t1
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let i = tag.find(&key)? + key.len();
    let j = tag[i..].find('"')? + i;
    Some(tag[i..j].to_string())
}

fn num(tag: &str, name: &str) -> f64 {
    attr(tag, name)
        .and_then(|v| v.trim_end_matches("px").parse().ok())
        .unwrap_or(0.0)
}

fn points(tag: &str) -> Vec<(f64, f64)> {
    attr(tag, "points")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| {
            let (x, y) = p.split_once(',')?;
            Some((x.parse().ok()?, y.parse().ok()?))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// The box of a `<text>` element: its width from the embedded font at the size plotters drew it
/// (SVG font-size × 1.24), its height from the em and the baseline `dy` puts it on.
fn text_box(tag: &str, content: &str) -> Rect {
    let em = num(tag, "font-size");
    let (x, y) = (num(tag, "x"), num(tag, "y"));
    let w = text_width(content, em * 1.24);
    let dy = attr(tag, "dy").unwrap_or_default();
    let baseline = match dy.as_str() {
        "0.76em" => 0.76 * em,
        "0.5ex" => 0.2725 * em,
        "-0.5ex" => -0.2725 * em,
        _ => 0.0,
    };
    let (a, b) = match attr(tag, "text-anchor").as_deref() {
        Some("end") => (-w, 0.0),
        Some("middle") => (-w / 2.0, w / 2.0),
        _ => (0.0, w),
    };
    let (top, bottom) = (baseline - 0.76 * em, baseline + 0.24 * em);
    match attr(tag, "transform") {
        Some(t) if t.starts_with("rotate(270") => Rect {
            x0: x + top,
            y0: y - b,
            x1: x + bottom,
            y1: y - a,
        },
        Some(t) if t.starts_with("rotate(90") => Rect {
            x0: x - bottom,
            y0: y + a,
            x1: x - top,
            y1: y + b,
        },
        _ => Rect {
            x0: x + a,
            y0: y + top,
            x1: x + b,
            y1: y + bottom,
        },
    }
}

/// The shapes of an SVG written by plotters, in document order.
fn shapes(svg: &str) -> Vec<Shape> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        let Some(end) = rest.find('>') else { break };
        let tag = &rest[..=end];
        let name: String = tag[1..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        let stroke = num(tag, "stroke-width").max(1.0);
        match name.as_str() {
            "text" => {
                let close = rest.find("</text>").unwrap_or(end);
                let content = unescape(rest[end + 1..close].trim());
                if !content.trim().is_empty() {
                    out.push(Shape::Text(content.clone(), text_box(tag, &content)));
                }
            }
            "circle" => out.push(Shape::Circle(
                (num(tag, "cx"), num(tag, "cy")),
                num(tag, "r")
                    + if attr(tag, "fill").as_deref() == Some("none") {
                        stroke / 2.0
                    } else {
                        0.0
                    },
            )),
            "polyline" => out.push(Shape::Path(points(tag), stroke, false)),
            "polygon" => out.push(Shape::Path(points(tag), 1.0, true)),
            "line" => out.push(Shape::Path(
                vec![
                    (num(tag, "x1"), num(tag, "y1")),
                    (num(tag, "x2"), num(tag, "y2")),
                ],
                stroke,
                false,
            )),
            "rect" => {
                let r = Rect {
                    x0: num(tag, "x"),
                    y0: num(tag, "y"),
                    x1: num(tag, "x") + num(tag, "width"),
                    y1: num(tag, "y") + num(tag, "height"),
                };
                let page = r.x1 - r.x0 >= WIDTH as f64 - 1.0 && r.y1 - r.y0 >= HEIGHT as f64 - 1.0;
                let same = matches!(out.last(), Some(Shape::Frame(p)) if *p == r);
                if !page && !same && r.x1 - r.x0 > 2.0 && r.y1 - r.y0 > 2.0 {
                    out.push(Shape::Frame(r));
                }
            }
            _ => {}
        }
        rest = &rest[end + 1..];
    }
    out
}

/// Everything wrong with the layout of one SVG, worded for a test failure.
pub(super) fn problems(svg: &str) -> Vec<String> {
    let shapes = shapes(svg);
    let page = Rect {
        x0: 0.0,
        y0: 0.0,
        x1: WIDTH as f64,
        y1: HEIGHT as f64,
    };
    let name = |s: &Shape| match s {
        Shape::Text(t, _) => format!("text {t:?}"),
        Shape::Path(p, _, _) => format!("line from {:?}", p.first().copied().unwrap_or_default()),
        Shape::Circle(c, _) => format!("marker at {c:?}"),
        Shape::Frame(r) => format!("box at ({:.0}, {:.0})", r.x0, r.y0),
    };
    let mut out = Vec::new();
    for (i, a) in shapes.iter().enumerate() {
        if let Shape::Text(t, r) = a {
            if !page.contains(r) {
                out.push(format!("text {t:?} runs off the page ({r:?})"));
            }
        }
        for (j, b) in shapes.iter().enumerate().skip(i + 1) {
            let bad = match (a, b) {
                (Shape::Text(_, r), Shape::Text(_, q)) => r.inset(1.0).overlaps(&q.inset(1.0)),
                (Shape::Text(_, r), ink @ (Shape::Path(..) | Shape::Circle(..)))
                | (ink @ (Shape::Path(..) | Shape::Circle(..)), Shape::Text(_, r)) => {
                    ink.touches(&r.inset(1.0))
                }
                (Shape::Frame(f), Shape::Frame(g)) => f.inset(1.0).overlaps(g),
                // A box covers what was drawn before it, and what is drawn after it must lie
                // inside it (its content) or outside it.
                (Shape::Frame(f), later) => {
                    let inner = f.inset(1.0);
                    later.touches(&inner) && !f.contains(&later.bounds())
                }
                (earlier, Shape::Frame(f)) => earlier.touches(&f.inset(1.0)),
                _ => false,
            };
            let _ = j;
            if bad {
                out.push(format!("{} overlaps {}", name(a), name(b)));
            }
        }
    }
    out
}

/// A study name that fills a title.
const LONG: &str = "strong scaling of the blocked, tuned and faer DGEMM kernels over rayon threads";

fn machine() -> Machine {
    Machine {
        peak_gflops_per_core: 50.0,
        simd_f64_lanes: 4,
        fma_units: 2,
        clock_ghz: 3.1,
        ..Machine::default()
    }
}

fn times(t: f64, k: usize) -> Vec<f64> {
    // A spread with one fast outlier, as a noisy base has.
    let mut v: Vec<f64> = (0..k).map(|i| t * (1.0 + 0.01 * i as f64)).collect();
    v[0] = t * 0.4;
    v
}

fn gemm_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for variant in ["blocked", "tuned", "faer"] {
        for n in [512u64, 1024] {
            for p in [1u32, 2, 4] {
                let t = 2.0 * (n as f64).powi(3) / 20e9 / p as f64 * (1.0 + 0.1 * p as f64);
                let mut r = record(0, "gemm", Scaling::Strong, p, n, &times(t, 10));
                r.point.study_name = LONG.into();
                r.point
                    .params
                    .0
                    .insert("variant".into(), Value::Text(variant.into()));
                r.point.id = format!("g{variant}{n}{p}");
                if p == 2 && variant == "faer" {
                    r = with_load(r, 1.5);
                }
                recs.push(r);
            }
        }
    }
    recs
}

fn one_size(workload: &str, study: usize, size: Size, unit: &str) -> Vec<PointRecord> {
    [1u32, 2]
        .iter()
        .map(|&p| {
            let mut r = record(
                study,
                workload,
                Scaling::Strong,
                p,
                size.value(),
                &times(0.5 / p as f64, 5),
            );
            r.point.params.0.insert("size".into(), Value::Size(size));
            r.point.params.0.remove("variant");
            r.size_unit = unit.into();
            if workload == "pi.montecarlo" {
                r.work.bytes = 0.0;
                r.work.flops = 4.0 * size.value() as f64;
            }
            r
        })
        .collect()
}

fn weak_study() -> Vec<PointRecord> {
    [1u32, 2, 4, 8]
        .iter()
        .map(|&p| {
            let n = 1000 * p as u64;
            let mut r = record(
                0,
                "stencil.jacobi2d",
                Scaling::Weak,
                p,
                n,
                &times(0.2 * (1.0 + 0.05 * p as f64), 5),
            );
            r.point.params.0.remove("variant");
            r
        })
        .collect()
}

fn pingpong_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for (ranks, threads) in [(2u32, 1u32), (2, 2)] {
        for k in 0..12u32 {
            let size = 8u64 << k;
            let t = 1e-6 + size as f64 / 1e10;
            let r = mpi_record(
                0,
                "mpi.pingpong",
                ranks,
                threads,
                size,
                1000,
                &times(t * 1000.0, 5),
            );
            let lat: Vec<f64> = times(t * 1e6 / 2.0, 5);
            recs.push(with_metric(r, "latency_us", &lat));
        }
    }
    recs
}

fn hybrid_stencil_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for (ranks, threads) in [(1u32, 1u32), (2, 1), (1, 2), (2, 2), (4, 1)] {
        let p = (ranks * threads) as f64;
        let t = 1.0 / p + 0.05 * ranks as f64;
        let r = mpi_record(0, "mpi.stencil", ranks, threads, 2048, 100, &times(t, 5));
        let r = with_metric(r, "comm_s", &[0.05 * ranks as f64; 5]);
        recs.push(with_metric(r, "compute_s", &[1.0 / p; 5]));
    }
    recs
}

/// An ML study: nested cross-validation on a built-in dataset, four kinds of parallelism and
/// three seeds (twelve series), with the synthetic-data defaults recorded as well.
fn nested_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for parallelism in ["trees", "folds", "grid", "all"] {
        for seed in 0..3u64 {
            for p in [1u32, 2] {
                let mut r = record(
                    0,
                    "cv.nested",
                    Scaling::Strong,
                    p,
                    2000,
                    &times(4.0 / p as f64, 3),
                );
                r.point.params.0.remove("variant");
                for (k, v) in [
                    ("dataset", "breast_cancer"),
                    ("estimator", "random_forest"),
                    ("parallelism", parallelism),
                    ("grid", "max_depth=4,8; max_features=sqrt,0.5"),
                ] {
                    r.point.params.0.insert(k.into(), Value::Text(v.into()));
                }
                for (k, v) in [
                    ("classes", 2),
                    ("features", 20),
                    ("seed", seed),
                    ("outer", 5),
                    ("inner", 3),
                ] {
                    r.point.params.0.insert(k.into(), Value::Int(v));
                }
                r.point.id = format!("cv{parallelism}{seed}{p}");
                r.work = Default::default();
                let r = with_metric(r, "fits", &[60.0; 3]);
                let r = with_metric(r, "nested_score", &[0.93 + 0.01 * seed as f64; 3]);
                recs.push(with_metric(
                    r,
                    "non_nested_score",
                    &[0.96 + 0.005 * seed as f64; 3],
                ));
            }
        }
    }
    recs
}

/// Forests grown with `n_estimators = "auto"` (random forest and extra trees, two seeds) on 1 and
/// 2 threads: the out-of-bag curve each point records.
fn oob_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for (estimator, seed) in [
        ("random_forest", 1u64),
        ("random_forest", 2),
        ("extra_trees", 1),
    ] {
        for p in [1u32, 2] {
            let mut r = record(
                0,
                "forest.fit",
                Scaling::Strong,
                p,
                5000,
                &times(1.0 / p as f64, 3),
            );
            r.point.params.0.remove("variant");
            r.point
                .params
                .0
                .insert("estimator".into(), Value::Text(estimator.into()));
            r.point.params.0.insert("seed".into(), Value::Int(seed));
            r.point.id = format!("oob{estimator}{seed}{p}");
            r.work = Default::default();
            let batches = 6 + 2 * seed as usize;
            let shift = if estimator == "extra_trees" {
                0.03
            } else {
                0.0
            };
            let curve: Vec<String> = (1..=batches)
                .map(|b| {
                    format!(
                        "{}:{}",
                        10 * b,
                        0.97 - 0.08 / b as f64 - 0.01 * seed as f64 - shift
                    )
                })
                .collect();
            for rep in &mut r.repetitions {
                rep.details.insert("oob_curve".into(), curve.join("; "));
            }
            recs.push(r);
        }
    }
    recs
}

/// `mpi.train` at 1, 2 and 4 ranks for two strategies, each repetition with its loss curve: the
/// loss-against-time chart draws six lines of 30 steps.
fn training_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for (strategy, speed) in [("ddp", 1.0), ("accumulate", 1.1)] {
        for ranks in [1u32, 2, 4] {
            let step = 0.03 / (ranks as f64).min(2.5) / speed;
            let mut r = mpi_record(0, "mpi.train", ranks, 1, 4096, 30, &times(30.0 * step, 5));
            r.point.params.0.remove("iterations");
            r.point
                .params
                .0
                .insert("strategy".into(), Value::Text(strategy.into()));
            r.point.id = format!("train{strategy}{ranks}");
            let curve: Vec<String> = (1..=30)
                .map(|k| {
                    format!(
                        "{}:{}",
                        k as f64 * step,
                        2.1 * (-0.06 * k as f64).exp() + 0.2
                    )
                })
                .collect();
            for rep in &mut r.repetitions {
                rep.details.insert("loss_curve".into(), curve.join("; "));
            }
            recs.push(r);
        }
    }
    recs
}

/// `mpi.train` FedAvg at 4 clients for three label skews, each with its 20-round curve and the
/// same curve against wall time.
fn fedavg_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for (k, skew) in [0.0, 0.5, 1.0].into_iter().enumerate() {
        let mut r = mpi_record(0, "mpi.train", 4, 1, 4096, 20, &times(0.2, 5));
        r.point.params.0.remove("iterations");
        r.point
            .params
            .0
            .insert("strategy".into(), Value::Text("fedavg".into()));
        r.point.params.0.insert("skew".into(), Value::Float(skew));
        r.point.id = format!("fed{k}");
        let curve: Vec<String> = (1..=20)
            .map(|round| {
                let wobble = if round % 2 == 0 { 0.04 } else { -0.04 } * skew;
                let acc = 0.65 - 0.2 * skew - 0.4 * (-0.25 * round as f64).exp() + wobble;
                format!("{round}:{}:{acc}", 1.0 + skew)
            })
            .collect();
        // The same models against wall time (`time_curve`): the rounds-time chart.
        let timed: Vec<String> = curve
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let rest = c.split_once(':').map_or("", |x| x.1);
                format!("{}:{rest}", 0.012 * (i + 1) as f64 * (1.0 + skew))
            })
            .collect();
        for rep in &mut r.repetitions {
            rep.details.insert("round_curve".into(), curve.join("; "));
            rep.details.insert("time_curve".into(), timed.join("; "));
        }
        recs.push(r);
    }
    recs
}

/// `mpi.train` pipelines at 2 stages, three schedules (GPipe, 1F1B, interleaved with long
/// labels) at 1 to 8 micro-batches with their measured, simulated and predicted bubbles: the
/// bubble chart.
fn pipeline_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for (schedule, v) in [("gpipe", 1u64), ("1f1b", 1), ("1f1b", 2)] {
        for m in [1u64, 2, 4, 8] {
            let predicted = 1.0 / (v * m + 1) as f64;
            let mut r = mpi_record(0, "mpi.train", 2, 1, 4096, 30, &times(0.3, 5));
            r.point.params.0.remove("iterations");
            for (k, t) in [("strategy", "pipeline"), ("schedule", schedule)] {
                r.point.params.0.insert(k.into(), Value::Text(t.into()));
            }
            r.point.params.0.insert("micro".into(), Value::Int(m));
            r.point.params.0.insert("virtual".into(), Value::Int(v));
            r.point.id = format!("pipe{schedule}{v}{m}");
            for (name, value) in [
                ("bubble", predicted + 0.3),
                ("bubble_predicted", predicted),
                ("bubble_simulated", predicted * 1.1),
            ] {
                for rep in &mut r.repetitions {
                    rep.metrics.insert(name.into(), value);
                }
            }
            recs.push(r);
        }
    }
    recs
}

/// Twenty-four series (a sweep over block sizes and variants): a legend of many rows.
fn many_series_study() -> Vec<PointRecord> {
    let mut recs = Vec::new();
    for variant in ["blocked", "tuned", "faer", "naive"] {
        for block in [16u64, 32, 64, 128, 256, 512] {
            for p in [1u32, 2] {
                let t = 0.2 / p as f64 * (1.0 + block as f64 / 1000.0);
                let mut r = record(0, "gemm", Scaling::Strong, p, 1024, &times(t, 5));
                r.point
                    .params
                    .0
                    .insert("variant".into(), Value::Text(variant.into()));
                r.point.params.0.insert("block".into(), Value::Int(block));
                r.point.id = format!("m{variant}{block}{p}");
                recs.push(r);
            }
        }
    }
    recs
}

/// Render every fixture study and return the SVGs as (file name, text).
fn render_all(dir: &Path, opts: PlotOptions) -> Vec<(String, String)> {
    let studies: Vec<(&str, Vec<PointRecord>)> = vec![
        (LONG, gemm_study()),
        (
            "triad",
            one_size("stream.triad", 0, Size::Bytes(64 << 20), "elements"),
        ),
        (
            "pi",
            one_size("pi.montecarlo", 0, Size::Count(20_000_000), "samples"),
        ),
        ("weak jacobi", weak_study()),
        ("pingpong", pingpong_study()),
        ("hybrid stencil", hybrid_stencil_study()),
        ("nested", nested_study()),
        ("oob", oob_study()),
        ("training", training_study()),
        ("fedavg", fedavg_study()),
        ("pipeline", pipeline_study()),
        ("many", many_series_study()),
    ];
    let mut out = Vec::new();
    for (i, (name, recs)) in studies.iter().enumerate() {
        let all = scaling::series(recs);
        let series: Vec<&Series<'_>> = all.iter().collect();
        let plots = study_plots_with(dir, i, name, &series, &machine(), opts).unwrap();
        assert!(!plots.is_empty(), "{name} has plots");
        for p in plots {
            let svg = p
                .files
                .iter()
                .find(|f| f.extension().is_some_and(|e| e == "svg"))
                .unwrap();
            out.push((
                svg.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read_to_string(svg).unwrap(),
            ));
        }
    }
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_PLOTS") {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            std::fs::copy(e.path(), Path::new(&keep).join(e.file_name())).unwrap();
        }
    }
    out
}

#[test]
fn no_legend_or_text_overlaps_marks_lines_or_text() {
    let dir = tempfile::tempdir().unwrap();
    let svgs = render_all(
        dir.path(),
        PlotOptions {
            spread: Spread::Iqr,
            mock: true,
        },
    );
    let kinds: Vec<&str> = svgs.iter().map(|(n, _)| n.as_str()).collect();
    for kind in [
        "speedup",
        "efficiency",
        "throughput",
        "latency",
        "bandwidth",
        "comm",
        "nested",
        "oob",
    ] {
        assert!(
            kinds.iter().any(|k| k.ends_with(&format!("-{kind}.svg"))),
            "no {kind} plot among {kinds:?}"
        );
    }
    let mut all = Vec::new();
    for (name, svg) in &svgs {
        all.extend(problems(svg).into_iter().map(|p| format!("{name}: {p}")));
    }
    assert!(
        all.is_empty(),
        "{} layout problems:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn the_checker_sees_an_overlap() {
    // A legend box drawn over a marker, and two texts on top of each other.
    let svg = r##"<svg><rect x="0" y="0" width="1280" height="800" fill="#FFFFFF"/>
<circle cx="100" cy="100" r="7" fill="#0072B2"/>
<rect x="90" y="90" width="200" height="40" fill="none" stroke="#000000"/>
<text x="400" y="400" dy="0.76em" text-anchor="start" font-size="20">speedup</text>
<text x="410" y="405" dy="0.76em" text-anchor="start" font-size="20">efficiency</text>
<polyline fill="none" stroke-width="3" points="380,420 600,420 "/>
</svg>"##;
    let p = problems(svg);
    assert!(
        p.iter()
            .any(|m| m.starts_with("marker at (100.0, 100.0) overlaps box")),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m == "text \"speedup\" overlaps text \"efficiency\""),
        "{p:?}"
    );
    assert!(
        p.iter()
            .any(|m| m.starts_with("text \"speedup\" overlaps line")),
        "{p:?}"
    );
    let off = r##"<svg><text x="1250" y="10" dy="0.76em" text-anchor="start" font-size="20">cut off</text></svg>"##;
    assert!(problems(off)[0].contains("runs off the page"));
}

/// The same check on the plots of real runs: `SCALELAB_LAYOUT_DIR=<folder> cargo nextest run
/// --all-features --run-ignored all -E 'test(plots_of_a_folder)'` checks every SVG under the
/// folder (a run's `plots/`, or a folder of runs), roofline plots excepted (drawn elsewhere).
#[test]
#[ignore = "checks the plots under $SCALELAB_LAYOUT_DIR, by hand"]
fn plots_of_a_folder() {
    let root = std::env::var_os("SCALELAB_LAYOUT_DIR")
        .expect("set SCALELAB_LAYOUT_DIR to a folder of plots");
    let mut stack = vec![std::path::PathBuf::from(root)];
    let (mut checked, mut all) = (0, Vec::new());
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if p.is_dir() {
                stack.push(p);
            } else if name.ends_with(".svg") && !name.starts_with("roofline") {
                checked += 1;
                let svg = std::fs::read_to_string(&p).unwrap();
                all.extend(
                    problems(&svg)
                        .into_iter()
                        .map(|m| format!("{}: {m}", p.display())),
                );
            }
        }
    }
    assert!(checked > 0, "no plots found");
    assert!(
        all.is_empty(),
        "{} layout problems in {checked} plots:\n{}",
        all.len(),
        all.join("\n")
    );
}

/// The colour of the legend swatch drawn just before the legend text that starts with `label`.
fn swatch_color(svg: &str, label: &str) -> Option<String> {
    let at = svg.find(&format!(">\n{label}"))?;
    let before = &svg[..at];
    let line = before.rfind("<polyline")?;
    attr(&before[line..], "stroke")
}

#[test]
fn a_series_keeps_its_colour_and_dashed_lines_get_dashed_swatches() {
    let mut recs = Vec::new();
    for variant in ["blocked", "tuned", "faer"] {
        for p in [1u32, 2, 4] {
            let mut r = record(
                0,
                "gemm",
                Scaling::Strong,
                p,
                512,
                &times(0.1 / p as f64, 5),
            );
            r.point
                .params
                .0
                .insert("variant".into(), Value::Text(variant.into()));
            r.point.id = format!("{variant}{p}");
            recs.push(r);
        }
    }
    let all = scaling::series(&recs);
    let series: Vec<&Series<'_>> = all.iter().collect();
    let dir = tempfile::tempdir().unwrap();
    let opts = PlotOptions::default();
    let plots = study_plots_with(dir.path(), 0, "dgemm", &series, &machine(), opts).unwrap();
    let svg = |kind: &str| {
        let p = plots.iter().find(|p| p.stem.ends_with(kind)).unwrap();
        std::fs::read_to_string(&p.files[0]).unwrap()
    };
    let (speedup, efficiency, throughput) = (svg("speedup"), svg("efficiency"), svg("throughput"));
    let mut seen = Vec::new();
    for variant in ["blocked", "tuned", "faer"] {
        let label = format!("variant={variant}");
        let c = swatch_color(&speedup, &label).unwrap();
        assert_eq!(
            swatch_color(&efficiency, &label),
            Some(c.clone()),
            "{label}"
        );
        assert_eq!(
            swatch_color(&throughput, &label),
            Some(c.clone()),
            "{label}"
        );
        assert!(!seen.contains(&c), "{label} has a colour of its own");
        seen.push(c);
    }
    // n=512 is shared by every line: the subtitle says it, no legend entry does.
    assert!(speedup.contains(">\ngemm · n=512\n<"), "{speedup}");
    assert!(!speedup.contains("variant=faer, n=512"), "{speedup}");
    // The ideal's swatch is dashed like the line: three short strokes on one row.
    let ideal = speedup.find(">\nideal: S = p").unwrap();
    let strokes: Vec<Vec<(f64, f64)>> = speedup[..ideal]
        .rsplit("<polyline")
        .take(3)
        .map(|tag| points(&format!(" {}", &tag[..tag.find("/>").unwrap()])))
        .collect();
    let lens: Vec<f64> = strokes.iter().map(|s| s[1].0 - s[0].0).collect();
    assert!(
        strokes.iter().all(|s| s.len() == 2 && s[0].1 == s[1].1)
            && lens.iter().all(|l| *l > 0.0 && *l <= 12.0),
        "three dashes: {strokes:?}"
    );
}

/// Two machines with long labels, as `scalelab compare` names them.
const MACHINES: [&str; 2] = [
    "laptop: AMD Ryzen 7 7840U w/ Radeon 780M Graphics (16 cores)",
    "node17.cluster.example.org: Intel Xeon Platinum 8480+ (112 cores)",
];

/// `recs` with every time scaled by `f`, as if measured on a faster or slower machine.
fn scaled(recs: &[PointRecord], f: f64) -> Vec<PointRecord> {
    recs.iter()
        .cloned()
        .map(|mut r| {
            for rep in &mut r.repetitions {
                rep.seconds *= f;
                for (k, v) in rep.metrics.iter_mut() {
                    if k == "latency_us" {
                        *v *= f;
                    }
                }
            }
            r
        })
        .collect()
}

#[test]
fn compare_overlays_pass_the_layout_check() {
    use super::{compare_plots, RunSeries};
    let dir = tempfile::tempdir().unwrap();
    let studies: Vec<(&str, Vec<PointRecord>)> = vec![
        (LONG, gemm_study()),
        ("pingpong", pingpong_study()),
        // One seed: four series per run (a legend of eight long rows; see below).
        (
            "nested",
            nested_study()
                .into_iter()
                .filter(|r| r.point.params.get("seed") == Some(&Value::Int(0)))
                .collect(),
        ),
    ];
    // Not checked: two runs of a study with twelve or more series each. Their legend (one row
    // per run and series, each with the machine's name) takes more rows than the page has.
    let opts = PlotOptions {
        spread: Spread::Iqr,
        mock: true,
    };
    let mut svgs = Vec::new();
    for (i, (name, recs)) in studies.iter().enumerate() {
        let other = scaled(recs, 0.6);
        let (a, b) = (scaling::series(recs), scaling::series(&other));
        let runs = [
            RunSeries {
                label: MACHINES[0],
                series: a.iter().collect(),
            },
            RunSeries {
                label: MACHINES[1],
                series: b.iter().collect(),
            },
        ];
        for p in compare_plots(dir.path(), i, name, &runs, opts)
            .unwrap()
            .plots
        {
            svgs.push((
                p.stem.clone(),
                std::fs::read_to_string(&p.files[0]).unwrap(),
            ));
        }
    }
    let kinds: Vec<&str> = svgs.iter().map(|(n, _)| n.as_str()).collect();
    for kind in [
        "speedup",
        "efficiency",
        "rate",
        "latency",
        "bandwidth",
        "nested",
    ] {
        assert!(
            kinds.iter().any(|k| k.ends_with(&format!("-{kind}"))),
            "no {kind} overlay among {kinds:?}"
        );
    }
    let mut all = Vec::new();
    for (name, svg) in &svgs {
        all.extend(problems(svg).into_iter().map(|p| format!("{name}: {p}")));
    }
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_PLOTS") {
        for e in std::fs::read_dir(dir.path()).unwrap().flatten() {
            std::fs::copy(e.path(), Path::new(&keep).join(e.file_name())).unwrap();
        }
    }
    assert!(
        all.is_empty(),
        "{} layout problems:\n{}",
        all.len(),
        all.join("\n")
    );
}

#[test]
fn the_top500_plot_passes_the_layout_check() {
    use crate::report::top500::{entries, svg_text, Best};
    super::register_font().unwrap();
    let entries = entries().unwrap();
    let at_500 = |edition: &str| {
        entries
            .iter()
            .find(|e| e.rank == 500 && e.edition == edition)
            .unwrap()
            .rmax_gflops
    };
    // Just above the first #500, the curated 2-core result, just above and just below the
    // #500 of 2014 and of the last list that has one, one near the top #1, one above every list.
    let last_500 = entries
        .iter()
        .filter(|e| e.rank == 500)
        .max_by(|a, b| a.edition.cmp(&b.edition))
        .unwrap()
        .rmax_gflops;
    let heights = [
        at_500("1993-06") * 1.05,
        106.0,
        at_500("2014-11") * 1.02,
        at_500("2014-11") * 0.98,
        last_500 * 1.05,
        last_500 * 0.95,
        3e7,
        5e9,
    ];
    let mut all = Vec::new();
    for g in heights {
        let best = Best {
            gflops: g,
            workload: "mpi.hpl.lu".into(),
            n: 40_000,
            nb: 256,
            ranks: 16,
            threads: 8,
            host: "node17.cluster.example.org".into(),
        };
        let svg = svg_text(&best, &entries).unwrap();
        assert!(svg.contains("this machine: "), "{g}: machine line labelled");
        all.extend(
            problems(&svg)
                .into_iter()
                .map(|p| format!("{g} GFLOP/s: {p}")),
        );
    }
    assert!(
        all.is_empty(),
        "{} layout problems:\n{}",
        all.len(),
        all.join("\n")
    );
}

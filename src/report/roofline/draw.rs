//! Drawing one roofline: the steps of [`draw_once`] in order (caption, axes, the ceilings' lines,
//! the label layout of [`super::labels`], then markers and text), and [`draw`], which repeats
//! the layout on a scratch SVG until every label left in the plot has a free place.

use std::collections::BTreeMap;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::super::plots::{Axis, Scale, FAMILY, PALETTE};
use super::caption::{caption_lines, compute_text, memory_text};
use super::geometry::{text_size, Rect, Segment, LABEL_SIZE, LINE_CLEARANCE, RADIUS};
use super::labels::{ComputeEnd, Diagonal, Labels, STACK_GAP, TICK};
use super::{Ceilings, RooflinePoint};

/// Ink of the compute ceilings and their labels.
pub(super) const INK: RGBColor = RGBColor(40, 40, 40);
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
pub(super) const DIAGONAL_DASHES: [(u32, u32); 5] = [(14, 9), (5, 6), (24, 6), (2, 5), (10, 4)];

/// Draw the plot, with the ceiling labels that find no room listed in the caption instead: a
/// first pass on a scratch SVG finds them (the layout depends only on the geometry and the
/// font, not on the backend), and the caption grows until every label left in the plot has a
/// free place.
pub(super) fn draw<DB: DrawingBackend>(
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
    let caption = caption_lines(points, ceilings, captioned, captioned_points);
    let foot_height = 24 + 30 * caption.len() as i32;
    let (main, foot) = root.split_vertically(height as i32 - foot_height);
    for (i, line) in caption.iter().enumerate() {
        foot.draw(&Text::new(
            line.clone(),
            (40, 8 + 30 * i as i32),
            (FAMILY, 24).into_font().color(&RGBColor(60, 60, 60)),
        ))?;
    }

    // Stacked labels are a full em apart (glyphs reach beyond the font's layout box).
    let label_h = LABEL_SIZE.max(text_size("Lg", LABEL_SIZE).1);
    let (x, y) = axes(points, ceilings, captioned, label_h, height, foot_height);
    let mut chart = ChartBuilder::on(&main)
        .caption(title, (FAMILY, 36).into_font())
        .margin(20)
        .margin_right(right_margin(ceilings, captioned))
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
    let (lines, compute_ends, diagonals) = draw_ceilings(&mut chart, ceilings, &x, &y, px)?;

    let colours = workload_colours(points);
    let markers: Vec<(f64, f64)> = points.iter().map(|p| px((p.intensity, p.gflops))).collect();
    let mut labels = Labels::new(area, label_h, lines, &markers);
    labels.compute_column(compute_ends, captioned);
    labels.diagonals(diagonals, captioned);
    let unplaced_points = labels.points(points, &markers, &colours, captioned_points);
    let unplaced = std::mem::take(&mut labels.unplaced);
    paint(root, labels, points, &markers, &colours)?;
    root.present()?;
    Ok((unplaced, unplaced_points))
}

/// The axes: on x the points' intensities and the ridge points (where each compute ceiling
/// meets the highest diagonal), with room on the left for the diagonals and on the right for the
/// points' labels; on y the points' rates up to the roof, with headroom above it for the
/// diagonals' labels, stacked there: the plotting area's height is estimated from the fixed
/// margins, and decades are added until they fit.
fn axes(
    points: &[&RooflinePoint],
    ceilings: &Ceilings,
    captioned: &[String],
    label_h: f64,
    height: u32,
    foot_height: i32,
) -> (Axis, Axis) {
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
    (x, y)
}

/// The right margin, pixels: room for the compute ceilings' labels, which stand in a column
/// there, each at its line's height with a tick from the line's end.
fn right_margin(ceilings: &Ceilings, captioned: &[String]) -> i32 {
    let compute_w = ceilings
        .compute
        .iter()
        .map(compute_text)
        .filter(|t| !captioned.contains(t))
        .map(|t| text_size(&t, LABEL_SIZE).0)
        .fold(0.0f64, f64::max);
    if compute_w > 0.0 {
        (compute_w + TICK + 6.0 + 16.0).ceil() as i32
    } else {
        50
    }
}

/// What [`draw_ceilings`] hands to the label layout: every ceiling line in pixels, the compute
/// lines' right ends and the diagonals, with their labels' text.
type CeilingLines = (Vec<Segment>, Vec<ComputeEnd>, Vec<Diagonal>);

/// Draw the ceilings' lines: compute lines from the ridge with the highest diagonal to the right
/// edge, diagonals from the left edge to the highest compute ceiling. The first of each kind is
/// the roof (solid), the others dashed.
fn draw_ceilings<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<Axis, Axis>>,
    ceilings: &Ceilings,
    x: &Axis,
    y: &Axis,
    px: impl Fn((f64, f64)) -> (f64, f64),
) -> Result<CeilingLines, DrawingAreaErrorKind<DB::ErrorType>> {
    let top_c = ceilings.compute.first().map(|c| c.value);
    let top_m = ceilings.memory.first().map(|c| c.value);
    let mut lines: Vec<Segment> = Vec::new();
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
    Ok((lines, compute_segs, memory_segs))
}

/// The points' colours, by workload (the same workload keeps its colour in the plot), in the
/// order the workloads first appear.
fn workload_colours<'a>(points: &[&'a RooflinePoint]) -> BTreeMap<&'a str, RGBColor> {
    let mut colours: BTreeMap<&str, RGBColor> = BTreeMap::new();
    for p in points {
        let n = colours.len();
        colours
            .entry(p.workload.as_str())
            .or_insert(PALETTE[n % PALETTE.len()]);
    }
    colours
}

/// Paint what the layout decided, in this order: ceiling labels' ticks and stems, leaders,
/// markers, then every label's text on top.
fn paint<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    labels: Labels,
    points: &[&RooflinePoint],
    markers: &[(f64, f64)],
    colours: &BTreeMap<&str, RGBColor>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (path, colour) in labels.ticks {
        root.draw(&PathElement::new(
            path.iter()
                .map(|p| (p.0.round() as i32, p.1.round() as i32))
                .collect::<Vec<_>>(),
            colour.stroke_width(1),
        ))?;
    }
    for (from, to) in labels.leaders {
        root.draw(&PathElement::new(
            vec![(from.0 as i32, from.1 as i32), (to.0 as i32, to.1 as i32)],
            RGBColor(150, 150, 150).stroke_width(1),
        ))?;
    }
    for (p, m) in points.iter().zip(markers) {
        root.draw(&Circle::new(
            (m.0 as i32, m.1 as i32),
            RADIUS,
            colours[p.workload.as_str()].filled(),
        ))?;
    }
    let label_font = (FAMILY, LABEL_SIZE as u32).into_font();
    for (text, rect, colour) in labels.texts {
        root.draw(&Text::new(
            text,
            (rect.l.round() as i32, rect.t.round() as i32),
            label_font
                .clone()
                .color(&colour)
                .pos(Pos::new(HPos::Left, VPos::Top)),
        ))?;
    }
    Ok(())
}

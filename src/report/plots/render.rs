//! Drawing one chart: the page layout, the marks, the legend, and the SVG and PNG files.
//!
//! A page of [`WIDTH`] × [`HEIGHT`] pixels is cut into four bands, top to bottom, so that nothing
//! is drawn over anything else:
//!
//! 1. the **header**: the title (its font shrinks until it fits beside the "MOCK DATA" badge of a
//!    mock run), and the subtitle with what every line of the chart shares (workload, fixed
//!    parameters, size);
//! 2. the **plot area** with its axes; the top tick label keeps a margin from the header;
//! 3. the **legend**, below the plot area, in columns as wide as the longest entry, never inside
//!    the data. Swatches repeat the line styles: solid with the series' marker for measured
//!    lines, dashed for reference lines (ideal, peak), a ring for disturbed points;
//! 4. the **caption**: how the centre and the spread were computed, the base case.
//!
//! Colours are Okabe and Ito's colour-blind-safe set ("Color Universal Design", 2008), and past
//! its seven colours the marker shape changes (circle, square, triangle), so twenty series stay
//! apart. A study hands every chart the same [`Colors`], so a series keeps its colour in all the
//! plots of the study. The centre of each point is the median; its spread is a whisker with caps
//! (the interquartile range by default, see [`super::Spread`]).
//!
//! Text is drawn with DejaVu Sans, embedded in the binary (`assets/fonts/DejaVuSans.ttf`,
//! Bitstream Vera licence, see `assets/fonts/DejaVuSans-LICENSE.txt`), so plots need no system
//! fonts, fontconfig or graphics libraries. SVG files keep text as `<text>` elements (font-family
//! `sans-serif`). PNG text is rasterised here with `ab_glyph` ([`PngText`]): plotters' own bitmap
//! text drops each glyph's left side bearing, which opened gaps such as "variant= blocked". Both
//! files are written atomically (temporary file + rename).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ab_glyph::{Font as _, FontRef, PxScale, ScaleFont as _};
use anyhow::{anyhow, ensure, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::Pos;
use plotters_backend::{
    text_anchor::{HPos, VPos},
    BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind,
};

use super::axis::Axis;
use crate::files::write_atomic;

/// Width of every plot, pixels.
pub const WIDTH: u32 = 1280;
/// Height of every plot, pixels.
pub const HEIGHT: u32 = 800;

/// The embedded font (DejaVu Sans 2.37).
static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The family name the font is registered under; plotters' default family.
pub(in crate::report) const FAMILY: &str = "sans-serif";

/// Okabe–Ito, without its yellow (too pale on white), ordered so that neighbours differ most.
pub(in crate::report) const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];

/// Grey of reference lines that are not the ideal (peaks).
pub(super) const REF_GREY: RGBColor = RGBColor(100, 100, 100);
/// Grey of captions and subtitles.
const TEXT_GREY: RGBColor = RGBColor(60, 60, 60);
/// Red of the "MOCK DATA" badge.
const MOCK_RED: RGBColor = RGBColor(200, 0, 0);

/// Register the embedded font with plotters (once per process).
pub(in crate::report) fn register_font() -> Result<()> {
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

/// The embedded font for [`PngText`] and text measurement.
fn font() -> &'static FontRef<'static> {
    static F: OnceLock<FontRef<'static>> = OnceLock::new();
    F.get_or_init(|| FontRef::try_from_slice(FONT).expect("the embedded DejaVuSans.ttf parses"))
}

/// Width in pixels of `text` at plotters font size `size` (the advance widths and kerning of
/// the embedded font: what the PNG draws, and a little more than browsers draw the SVG).
pub(in crate::report) fn text_width(text: &str, size: f64) -> f64 {
    let f = font().as_scaled(PxScale::from(size as f32));
    let mut w = 0.0f32;
    let mut prev = None;
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            w += f.kern(p, id);
        }
        w += f.h_advance(id);
        prev = Some(id);
    }
    w as f64
}

/// One measured curve.
pub(super) struct Line {
    pub label: String,
    /// Colour and marker, from the study's [`Colors`].
    pub style: usize,
    /// Draw only the markers, not a line through them (a scatter of unordered points).
    pub markers_only: bool,
    pub points: Vec<(f64, f64)>,
    /// (x, low, high) of the whisker at each point.
    pub band: Vec<(f64, f64, f64)>,
    /// Which points get a hollow marker (disturbed: measured beside other work, see
    /// [`crate::load`]); missing entries are filled.
    pub hollow: Vec<bool>,
}

/// A dashed reference line (ideal scaling, a peak).
pub(super) struct Reference {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub color: RGBColor,
}

/// Everything one chart shows.
pub(super) struct Chart {
    pub title: String,
    /// What every line shares (workload, fixed parameters), under the title; may be empty.
    pub subtitle: String,
    pub caption: String,
    pub x_desc: String,
    pub y_desc: String,
    pub x: Axis,
    pub y: Axis,
    pub lines: Vec<Line>,
    pub refs: Vec<Reference>,
    /// Timings came from the mock executor: the header carries a "MOCK DATA" badge.
    pub mock: bool,
}

/// Colour (and marker) per series key, shared by the charts of one study so that a series keeps
/// its colour in each of them.
#[derive(Debug, Default)]
pub(super) struct Colors {
    keys: Vec<String>,
}

impl Colors {
    /// The style index of `key`, assigning the next free one to a new key.
    pub fn of(&mut self, key: &str) -> usize {
        match self.keys.iter().position(|k| k == key) {
            Some(i) => i,
            None => {
                self.keys.push(key.to_string());
                self.keys.len() - 1
            }
        }
    }
}

/// The colour of style `i`.
fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// How many marker shapes styles cycle through (circle, square, triangle): style `i` has colour
/// `i % PALETTE.len()` and shape `(i / PALETTE.len()) % MARKER_SHAPES`.
pub(super) const MARKER_SHAPES: usize = 3;

/// The marker of style `i` at `c`, filled or as an outline.
fn marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    i: usize,
    c: (i32, i32),
    filled: bool,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let col = color(i);
    let (x, y) = c;
    let shape: Vec<(i32, i32)> = match (i / PALETTE.len()) % MARKER_SHAPES {
        0 => {
            if filled {
                return area.draw(&Circle::new(c, 7, col.filled()));
            }
            area.draw(&Circle::new(c, 8, WHITE.filled()))?;
            return area.draw(&Circle::new(c, 8, col.stroke_width(3)));
        }
        1 => vec![
            (x - 7, y - 7),
            (x + 7, y - 7),
            (x + 7, y + 7),
            (x - 7, y + 7),
        ],
        _ => vec![(x, y - 9), (x + 8, y + 6), (x - 8, y + 6)],
    };
    if filled {
        area.draw(&Polygon::new(shape, col.filled()))
    } else {
        area.draw(&Polygon::new(shape.clone(), WHITE.filled()))?;
        let mut ring = shape.clone();
        ring.push(shape[0]);
        area.draw(&PathElement::new(ring, col.stroke_width(3)))
    }
}

/// One entry of the legend.
enum Swatch {
    /// A measured line with its marker (or only the marker).
    Line { style: usize, markers_only: bool },
    /// A dashed reference line.
    Dashed(RGBColor),
    /// The hollow marker of disturbed points.
    Hollow,
}

const TITLE_SIZE: f64 = 34.0;
const SUBTITLE_SIZE: f64 = 23.0;
const LEGEND_SIZE: f64 = 23.0;
const CAPTION_SIZE: f64 = 22.0;
const LEFT: i32 = 30;
const SWATCH: i32 = 44;

/// Break `text` into lines no wider than `width` pixels at `size`, at spaces.
fn wrap_px(text: &str, size: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let candidate = if line.is_empty() {
            word.to_string()
        } else {
            format!("{line} {word}")
        };
        if !line.is_empty() && text_width(&candidate, size) > width {
            lines.push(std::mem::replace(&mut line, word.to_string()));
        } else {
            line = candidate;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Break `text` into lines of at most `width` characters at spaces.
pub(in crate::report) fn wrap(text: &str, width: usize) -> Vec<String> {
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

/// The legend laid out: entries with their wrapped text, in `cols` columns of `col_w` pixels.
struct LegendLayout {
    entries: Vec<(Swatch, Vec<String>)>,
    cols: usize,
    col_w: i32,
    /// Height of each row (the tallest entry in it).
    rows: Vec<i32>,
    /// Font size and line height of the entries.
    size: f64,
    line: i32,
}

/// The tallest a legend may be at the full font size; a taller one is set smaller.
const LEGEND_MAX_HEIGHT: i32 = 230;

const LEGEND_LINE: i32 = 28;
const LEGEND_PAD: i32 = 10;

/// The legend at the full size, or at a smaller one when it would crowd out the plot area.
fn legend_layout(c: &Chart) -> LegendLayout {
    let full = legend_layout_at(c, LEGEND_SIZE, LEGEND_LINE);
    if full.rows.iter().sum::<i32>() <= LEGEND_MAX_HEIGHT {
        return full;
    }
    legend_layout_at(c, 17.0, 21)
}

fn legend_layout_at(c: &Chart, size: f64, line: i32) -> LegendLayout {
    let mut raw: Vec<(Swatch, String)> = Vec::new();
    for l in &c.lines {
        raw.push((
            Swatch::Line {
                style: l.style,
                markers_only: l.markers_only,
            },
            l.label.clone(),
        ));
    }
    if c.lines.iter().any(|l| l.hollow.iter().any(|h| *h)) {
        raw.push((
            Swatch::Hollow,
            "hollow: disturbed (other work beside it)".into(),
        ));
    }
    for r in &c.refs {
        raw.push((Swatch::Dashed(r.color), r.label.clone()));
    }
    let avail = WIDTH as i32 - 2 * LEFT - 2 * LEGEND_PAD;
    let text_max = (avail - SWATCH - 12) as f64;
    let widest = raw
        .iter()
        .map(|(_, t)| text_width(t, size).min(text_max))
        .fold(0.0f64, f64::max);
    let col_w = (widest as i32 + SWATCH + 12 + 28).min(avail);
    let cols = ((avail / col_w.max(1)) as usize).clamp(1, raw.len().max(1));
    let entries: Vec<(Swatch, Vec<String>)> = raw
        .into_iter()
        .map(|(s, t)| {
            let lines = wrap_px(&t, size, text_max);
            (s, lines)
        })
        .collect();
    let rows = entries
        .chunks(cols)
        .map(|row| {
            row.iter()
                .map(|(_, t)| line * t.len().max(1) as i32)
                .max()
                .unwrap_or(line)
        })
        .collect();
    LegendLayout {
        entries,
        cols,
        col_w,
        rows,
        size,
        line,
    }
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    top: i32,
    l: &LegendLayout,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    if l.entries.is_empty() {
        return Ok(());
    }
    let height: i32 = l.rows.iter().sum::<i32>() + 2 * LEGEND_PAD;
    let width = l.col_w * l.cols as i32 + 2 * LEGEND_PAD;
    let frame = [(LEFT, top), (LEFT + width, top + height)];
    area.draw(&Rectangle::new(frame, WHITE.filled()))?;
    area.draw(&Rectangle::new(frame, BLACK.mix(0.4).stroke_width(1)))?;
    let font =
        TextStyle::from((FAMILY, l.size).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut y = top + LEGEND_PAD;
    for (r, row) in l.entries.chunks(l.cols).enumerate() {
        for (k, (swatch, text)) in row.iter().enumerate() {
            let x = LEFT + LEGEND_PAD + k as i32 * l.col_w;
            let mid = y + l.line / 2;
            match swatch {
                Swatch::Line {
                    style,
                    markers_only,
                } => {
                    if !markers_only {
                        area.draw(&PathElement::new(
                            vec![(x, mid), (x + SWATCH, mid)],
                            color(*style).stroke_width(4),
                        ))?;
                    }
                    marker(area, *style, (x + SWATCH / 2, mid), true)?;
                }
                Swatch::Dashed(col) => {
                    for (a, b) in [(0, 12), (18, 30), (36, SWATCH)] {
                        area.draw(&PathElement::new(
                            vec![(x + a, mid), (x + b, mid)],
                            col.stroke_width(3),
                        ))?;
                    }
                }
                Swatch::Hollow => {
                    area.draw(&Circle::new(
                        (x + SWATCH / 2, mid),
                        8,
                        REF_GREY.stroke_width(3),
                    ))?;
                }
            }
            for (j, t) in text.iter().enumerate() {
                area.draw(&Text::new(
                    t.clone(),
                    (x + SWATCH + 12, mid + l.line * j as i32),
                    font.clone(),
                ))?;
            }
        }
        y += l.rows[r];
    }
    Ok(())
}

/// The badge of mock runs, top right: its width.
const MOCK_TEXT: &str = "MOCK DATA (model times, not measured)";
const MOCK_SIZE: f64 = 22.0;

/// Draw chart `c` in steps: the header (mock badge, title, subtitle), the footer (legend, then
/// caption), the axes between them, then the reference lines and the data lines.
fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let w = WIDTH as i32;
    let top = draw_header(root, c)?;
    let bottom = draw_footer(root, c)?;

    // The plot area between them.
    let main = root
        .clone()
        .shrink((0, top), (w as u32, (bottom - top).max(100) as u32));
    let mut chart = ChartBuilder::on(&main)
        .margin_top(22)
        .margin_left(LEFT - 10)
        .margin_right(50)
        .margin_bottom(4)
        .x_label_area_size(78)
        .y_label_area_size(118)
        .build_cartesian_2d(c.x.clone(), c.y.clone())?;
    let xfmt = |v: &f64| c.x.label(*v);
    let yfmt = |v: &f64| c.y.label(*v);
    chart
        .configure_mesh()
        .x_desc(c.x_desc.as_str())
        .y_desc(c.y_desc.as_str())
        .axis_desc_style((FAMILY, 28))
        .label_style((FAMILY, 25))
        .x_label_formatter(&xfmt)
        .y_label_formatter(&yfmt)
        .x_labels(12)
        .y_labels(8)
        .set_all_tick_mark_size(8)
        .bold_line_style(BLACK.mix(0.12).stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK.stroke_width(2))
        .draw()?;

    for r in &c.refs {
        let style = r.color.stroke_width(3);
        chart.draw_series(DashedLineSeries::new(r.points.clone(), 16, 10, style))?;
    }
    draw_lines(chart.plotting_area(), c)?;
    root.present()
}

/// The header: the mock badge (top right, for a mock run), the title (shrunk, then wrapped, to
/// fit beside it) and the subtitle. Returns the y where the plot area may start.
fn draw_header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let w = WIDTH as i32;
    let text_w = (w - 2 * LEFT) as f64;
    let mut top = 14;
    let mut title_room = text_w;
    if c.mock {
        let bw = text_width(MOCK_TEXT, MOCK_SIZE) as i32 + 24;
        let frame = [(w - LEFT - bw, 10), (w - LEFT, 46)];
        root.draw(&Rectangle::new(frame, MOCK_RED.filled()))?;
        root.draw(&Rectangle::new(frame, MOCK_RED.stroke_width(2)))?;
        root.draw(&Text::new(
            MOCK_TEXT,
            (w - LEFT - bw / 2, 28),
            TextStyle::from((FAMILY, MOCK_SIZE).into_font().style(FontStyle::Bold))
                .color(&WHITE)
                .pos(Pos::new(HPos::Center, VPos::Center)),
        ))?;
        title_room -= (bw + 24) as f64;
    }
    let mut size = TITLE_SIZE;
    while size > 22.0 && text_width(&c.title, size) > title_room {
        size -= 1.0;
    }
    let title = wrap_px(&c.title, size, title_room);
    for line in &title {
        root.draw(&Text::new(
            line.clone(),
            (LEFT, top),
            (FAMILY, size).into_font(),
        ))?;
        top += size as i32 + 6;
    }
    let subtitle = wrap_px(&c.subtitle, SUBTITLE_SIZE, text_w);
    for line in &subtitle {
        root.draw(&Text::new(
            line.clone(),
            (LEFT, top + 2),
            (FAMILY, SUBTITLE_SIZE).into_font().color(&TEXT_GREY),
        ))?;
        top += SUBTITLE_SIZE as i32 + 6;
    }
    Ok(top + 8)
}

/// The footer: the legend, then the caption under it. Returns the y where the plot area ends.
fn draw_footer<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    c: &Chart,
) -> Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let text_w = (WIDTH as i32 - 2 * LEFT) as f64;
    let legend = legend_layout(c);
    let legend_h = if legend.entries.is_empty() {
        0
    } else {
        legend.rows.iter().sum::<i32>() + 2 * LEGEND_PAD + 10
    };
    let caption = wrap_px(&c.caption, CAPTION_SIZE, text_w);
    let caption_h = 12 + 28 * caption.len() as i32;
    let bottom = HEIGHT as i32 - caption_h - legend_h;
    for (i, line) in caption.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (LEFT, bottom + legend_h + 6 + 28 * i as i32),
            (FAMILY, CAPTION_SIZE).into_font().color(&TEXT_GREY),
        ))?;
    }
    draw_legend(root, bottom, &legend)?;
    Ok(bottom)
}

/// The data lines on the plotting area `plot`: for each line its whiskers with caps, its line
/// (unless markers only) and its markers, hollow where the point was disturbed.
fn draw_lines<DB: DrawingBackend>(
    plot: &DrawingArea<DB, Cartesian2d<Axis, Axis>>,
    c: &Chart,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // Whiskers of lines that share an x are set side by side, so none hides another.
    let with_band = c.lines.iter().filter(|l| !l.band.is_empty()).count() as i32;
    let mut k = 0;
    for l in &c.lines {
        let col = color(l.style);
        let dodge = if l.band.is_empty() {
            0
        } else {
            k += 1;
            // 6 px apart, closer when many lines share the x (at most 40 px in all).
            let step = if with_band > 1 {
                (40 / (with_band - 1)).clamp(1, 6)
            } else {
                0
            };
            step * (k - 1) - step * (with_band - 1) / 2
        };
        // Whiskers with caps: the spread of each point.
        for &(x, lo, hi) in &l.band {
            let (mut a, mut b) = (plot.map_coordinate(&(x, lo)), plot.map_coordinate(&(x, hi)));
            a.0 += dodge;
            b.0 += dodge;
            if (a.1 - b.1).abs() < 2 {
                continue;
            }
            let ws = col.mix(0.8).stroke_width(3);
            plot.use_screen_coord()
                .draw(&PathElement::new(vec![a, b], ws))?;
            for end in [a, b] {
                plot.use_screen_coord().draw(&PathElement::new(
                    vec![(end.0 - 7, end.1), (end.0 + 7, end.1)],
                    ws,
                ))?;
            }
        }
        if !l.markers_only {
            plot.draw(&PathElement::new(l.points.clone(), col.stroke_width(4)))?;
        }
        for (j, p) in l.points.iter().enumerate() {
            let hollow = l.hollow.get(j).copied().unwrap_or(false);
            let at = plot.map_coordinate(p);
            marker(&plot.use_screen_coord(), l.style, at, !hollow)?;
        }
    }
    Ok(())
}

/// A [`BitMapBackend`] whose text is rasterised with `ab_glyph` glyph by glyph at its own
/// bounds (side bearings kept), placed like the SVG places it: a baseline 0.76 em below the top
/// for top-anchored text, half an x-height below the centre for centred text.
struct PngText<'a>(BitMapBackend<'a>);

impl<'a> DrawingBackend for PngText<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.present()
    }
    fn draw_pixel(
        &mut self,
        point: BackendCoord,
        color: BackendColor,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_pixel(point, color)
    }
    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_line(from, to, style)
    }
    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_path(path, style)
    }
    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        self.0.fill_polygon(vert, style)
    }
    fn draw_text<TStyle: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &TStyle,
        pos: BackendCoord,
    ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let size = style.size();
        let em = size / 1.24;
        let width = text_width(text, size);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0.0,
            HPos::Right => -width,
            HPos::Center => -width / 2.0,
        };
        // DejaVu's x-height is 0.545 em.
        let baseline = match style.anchor().v_pos {
            VPos::Top => 0.76 * em,
            VPos::Center => 0.2725 * em,
            VPos::Bottom => -0.2725 * em,
        };
        let f = font();
        let scale = PxScale::from(size as f32);
        let scaled = f.as_scaled(scale);
        let trans = style.transform();
        let (w, h) = self.get_size();
        let mut cursor = dx as f32;
        let mut prev = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(p) = prev {
                cursor += scaled.kern(p, id);
            }
            prev = Some(id);
            let glyph = id.with_scale_and_position(scale, ab_glyph::point(cursor, baseline as f32));
            cursor += scaled.h_advance(id);
            let Some(outline) = f.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|gx, gy, cov| pixels.push((gx, gy, cov)));
            for (gx, gy, cov) in pixels {
                let (lx, ly) = (b.min.x as i32 + gx as i32, b.min.y as i32 + gy as i32);
                let (tx, ty) = trans.transform(lx, ly);
                let (x, y) = (pos.0 + tx, pos.1 + ty);
                if cov > 0.0 && x >= 0 && y >= 0 && (x as u32) < w && (y as u32) < h {
                    self.0.draw_pixel(
                        (x, y),
                        BackendColor {
                            alpha: color.alpha * cov.min(1.0) as f64,
                            rgb: color.rgb,
                        },
                    )?;
                }
            }
        }
        Ok(())
    }
}

/// Render `chart` as an SVG document.
pub(super) fn svg(chart: &Chart) -> Result<String> {
    register_font()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart).map_err(|e| anyhow!("{e}"))?;
    }
    Ok(svg)
}

/// Write `chart` as `<dir>/<stem>.svg` and `<dir>/<stem>.png`; returns both paths.
pub(super) fn write_chart(dir: &Path, stem: &str, chart: &Chart) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let text = svg(chart).with_context(|| format!("drawing {}", svg_path.display()))?;
    write_atomic(&svg_path, text.as_bytes())?;

    let png_path = dir.join(format!("{stem}.png"));
    let tmp = tempfile::Builder::new()
        .prefix(".plot")
        .suffix(".png")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let root = PngText(BitMapBackend::new(tmp.path(), (WIDTH, HEIGHT))).into_drawing_area();
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

//! Pixel geometry of the roofline's label layout: rectangles and segments, the label font's
//! measure, and the sizes every placement shares (marker radius, free margins, line clearance).
//! Nothing here draws; [`super::labels`] and [`super::draw`] use it to decide where text goes.

use plotters::prelude::*;

use super::super::plots::FAMILY;

/// A line segment in pixels.
pub(super) type Segment = ((f64, f64), (f64, f64));

/// A rectangle in pixels: left, top, right, bottom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Rect {
    pub(super) l: f64,
    pub(super) t: f64,
    pub(super) r: f64,
    pub(super) b: f64,
}

impl Rect {
    pub(super) fn intersects(&self, o: &Rect) -> bool {
        self.l < o.r && o.l < self.r && self.t < o.b && o.t < self.b
    }
    pub(super) fn inside(&self, o: &Rect) -> bool {
        self.l >= o.l && self.r <= o.r && self.t >= o.t && self.b <= o.b
    }
    pub(super) fn grow(&self, m: f64) -> Rect {
        Rect {
            l: self.l - m,
            t: self.t - m,
            r: self.r + m,
            b: self.b + m,
        }
    }
    /// Whether the segment a–b passes through the rectangle (Liang–Barsky clipping).
    pub(super) fn crosses(&self, a: (f64, f64), b: (f64, f64)) -> bool {
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
    pub(super) fn nearest(&self, p: (f64, f64)) -> (f64, f64) {
        (p.0.clamp(self.l, self.r), p.1.clamp(self.t, self.b))
    }
}

/// Font size of point and ceiling labels, pixels.
pub(super) const LABEL_SIZE: f64 = 22.0;
/// Marker radius, pixels.
pub(super) const RADIUS: i32 = 8;
/// Space kept free around every label box, pixels.
pub(super) const MARGIN: f64 = 3.0;
/// Space kept between a label box and a ceiling line, pixels: lines are 2–3 px wide and glyphs
/// reach a little beyond the font's layout box.
pub(super) const LINE_CLEARANCE: f64 = 7.0;

/// Width and height of `text` at `size` pixels in the embedded font.
pub(super) fn text_size(text: &str, size: f64) -> (f64, f64) {
    let font = FontDesc::new(FontFamily::Name(FAMILY), size, FontStyle::Normal);
    match font.box_size(text) {
        Ok((w, h)) => (w as f64, (h as f64).max(size * 0.8)),
        // Should not happen with the embedded font; a generous estimate keeps labels apart.
        Err(_) => (0.62 * size * text.chars().count() as f64, size),
    }
}

/// Labels set further than this from their marker (pixels) get a leader line.
pub(super) const LEADER_FROM: f64 = 20.0;

/// The marker box of a point at `at`.
pub(super) fn own(at: (f64, f64)) -> Rect {
    let r = RADIUS as f64;
    Rect {
        l: at.0 - r,
        t: at.1 - r,
        r: at.0 + r,
        b: at.1 + r,
    }
}

/// The point `dist` pixels from `from` towards `to`.
pub(super) fn toward(from: (f64, f64), to: (f64, f64), dist: f64) -> (f64, f64) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let len = (dx * dx + dy * dy).sqrt();
    if len <= dist {
        return to;
    }
    (from.0 + dx / len * dist, from.1 + dy / len * dist)
}

/// Whether segments p–q and r–s cross (proper intersection).
pub(super) fn segments_cross((p, q): Segment, (r, s): Segment) -> bool {
    let orient = |a: (f64, f64), b: (f64, f64), c: (f64, f64)| {
        (b.0 - a.0) * (c.1 - a.1) - (b.1 - a.1) * (c.0 - a.0)
    };
    let (d1, d2) = (orient(r, s, p), orient(r, s, q));
    let (d3, d4) = (orient(p, q, r), orient(p, q, s));
    d1 * d2 < 0.0 && d3 * d4 < 0.0
}

/// Euclidean distance in pixels.
pub(super) fn distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

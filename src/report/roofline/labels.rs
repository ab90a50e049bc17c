//! Where the roofline's labels go: the compute ceilings' column in the right margin, the
//! bandwidth diagonals' labels above the roof (or beside their line), and each point's label at
//! the nearest legal spot of rings around its marker ([`place`]). [`Labels`] holds what is taken
//! so far; each step adds to it, and what finds no legal place is handed back for the caption.
//! The rules are the roofline module's "Labels" paragraph.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::draw::INK;
use super::geometry::{
    distance, own, segments_cross, text_size, toward, Rect, Segment, LABEL_SIZE, LEADER_FROM,
    LINE_CLEARANCE, MARGIN, RADIUS,
};
use super::RooflinePoint;

/// A compute ceiling to label: its label text and the right end of its line, in pixels.
pub(super) type ComputeEnd = (String, (f64, f64));
/// A bandwidth diagonal to label: its label text, its two ends in pixels and its colour.
pub(super) type Diagonal = (String, (f64, f64), (f64, f64), RGBColor);

/// The label layout of one drawing, built step by step: ceilings first, in reserved room, then
/// the points. Nothing is drawn here; [`super::draw`] paints the result.
pub(super) struct Labels {
    /// The plotting area, which every label stays inside.
    area: Rect,
    /// The height of one label, pixels.
    label_h: f64,
    /// Boxes later labels keep off: markers, placed labels (with their margin), stems.
    taken: Vec<Rect>,
    /// Lines later labels must not cross: ceilings, stems, leaders.
    lines: Vec<Segment>,
    /// The placed labels: text, box and colour.
    pub(super) texts: Vec<(String, Rect, RGBColor)>,
    /// Ticks and stems of ceiling labels, in their line's colour.
    pub(super) ticks: Vec<(Vec<(f64, f64)>, RGBColor)>,
    /// Leader lines from a marker to its label set further off.
    pub(super) leaders: Vec<Segment>,
    /// Ceiling labels with no free place.
    pub(super) unplaced: Vec<String>,
}

impl Labels {
    /// An empty layout in `area`, with the ceiling `lines` already drawn and the markers of the
    /// points at `markers` taken.
    pub(super) fn new(
        area: Rect,
        label_h: f64,
        lines: Vec<Segment>,
        markers: &[(f64, f64)],
    ) -> Self {
        Labels {
            area,
            label_h,
            taken: markers.iter().map(|m| own(*m)).collect(),
            lines,
            texts: Vec::new(),
            ticks: Vec::new(),
            leaders: Vec::new(),
            unplaced: Vec::new(),
        }
    }

    /// Whether `rect` is free against `taken` and `lines`: inside the area with its margin,
    /// overlapping nothing taken and clear of every line.
    fn free(&self, rect: &Rect, taken: &[Rect], lines: &[Segment]) -> bool {
        let padded = rect.grow(MARGIN);
        let clear = rect.grow(LINE_CLEARANCE);
        padded.inside(&self.area)
            && !taken.iter().any(|o| o.intersects(&padded))
            && !lines.iter().any(|(a, b)| clear.crosses(*a, *b))
    }

    /// Compute labels: the right margin's column, top to bottom in the lines' order, each at its
    /// line's height (nudged apart where lines are close, see [`stack`]) with a tick from the
    /// line's end; all in the caption when the column does not fit.
    pub(super) fn compute_column(&mut self, ends: Vec<ComputeEnd>, captioned: &[String]) {
        let (area, label_h) = (self.area, self.label_h);
        let mut column: Vec<ComputeEnd> = ends
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
                    self.ticks.push((
                        vec![
                            (end.0 + 2.0, end.1),
                            (end.0 + TICK / 2.0, end.1),
                            (left - 4.0, top + label_h / 2.0),
                        ],
                        INK,
                    ));
                    self.taken.push(rect.grow(MARGIN));
                    self.texts.push((text, rect, INK));
                }
            }
            None => self.unplaced.extend(column.into_iter().map(|(t, _)| t)),
        }
    }

    /// A bandwidth ceiling's label, in its line's colour: above the roof (where no line runs), on
    /// a stem that rises from where its diagonal meets the roof ([`Labels::above_roof`]); the
    /// ones with no room there beside their own line ([`Labels::along`]); else in the caption.
    pub(super) fn diagonals(&mut self, diagonals: Vec<Diagonal>, captioned: &[String]) {
        let todo: Vec<Diagonal> = diagonals
            .into_iter()
            .filter(|s| !captioned.contains(&s.0))
            .collect();
        // Two layouts above the roof: every label right of its stem, the diagonal that ends
        // furthest right lowest; or every label left of its stem, the one that ends furthest left
        // lowest. Either way no stem passes another diagonal's label. The one that places more
        // wins.
        let (right, left) = (self.above_roof(&todo, true), self.above_roof(&todo, false));
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
                    self.taken.push(rect.grow(MARGIN));
                    self.taken.push(stem_box(stem));
                    self.lines.push(stem);
                    let reach = if rect.l > stem.0 .0 {
                        rect.l - 1.0
                    } else {
                        rect.r + 1.0
                    };
                    self.ticks
                        .push((vec![stem.0, stem.1, (reach, stem.1 .1)], colour));
                    self.texts.push((text, rect, colour));
                }
                None => rest.push((text, a, b, colour)),
            }
        }
        self.along(rest);
    }

    /// One layout of the diagonals' labels above the roof, every label right of its stem
    /// (`right`) or left of it, tried against a copy of what is taken: for each diagonal, its
    /// label box and stem, or `None` where no row is free.
    fn above_roof(&self, todo: &[Diagonal], right: bool) -> Vec<Option<(Rect, Segment)>> {
        let (area, label_h) = (self.area, self.label_h);
        let mut taken = self.taken.clone();
        let mut lines = self.lines.clone();
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
                if self.free(&rect, &taken, &lines)
                    && !taken.iter().any(|o| o.crosses(stem.0, stem.1))
                {
                    taken.push(rect.grow(MARGIN));
                    taken.push(stem_box(stem));
                    lines.push(stem);
                    got[i] = Some((rect, stem));
                    break;
                }
            }
        }
        got
    }

    /// The diagonals' labels with no room above the roof: beside their own line, touching it at
    /// a corner, at the first free spot along it; else in the caption.
    fn along(&mut self, rest: Vec<Diagonal>) {
        for (text, a, b, colour) in rest {
            let (w, h) = (text_size(&text, LABEL_SIZE).0, self.label_h);
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
                    if self.free(&rect, &self.taken, &self.lines) {
                        chosen = Some(rect);
                        break 'along;
                    }
                }
            }
            match chosen {
                Some(rect) => {
                    self.taken.push(rect.grow(MARGIN));
                    self.texts.push((text, rect, colour));
                }
                None => self.unplaced.push(text),
            }
        }
    }

    /// The points' labels, the most crowded first (points with neighbours close by), so they get
    /// the nearest free spots ([`place`]); a label set further off gets a leader, which later
    /// labels keep off as off a ceiling. Skips the points in `captioned_points`; returns the
    /// points (indices) whose label found no legal place.
    pub(super) fn points(
        &mut self,
        points: &[&RooflinePoint],
        markers: &[(f64, f64)],
        colours: &BTreeMap<&str, RGBColor>,
        captioned_points: &[usize],
    ) -> Vec<usize> {
        let r = RADIUS as f64;
        let mut order: Vec<usize> = (0..points.len()).collect();
        let crowd = |i: usize| {
            markers
                .iter()
                .filter(|m| (m.0 - markers[i].0).abs() < 120.0 && (m.1 - markers[i].1).abs() < 60.0)
                .count()
        };
        order.sort_by_key(|&i| (std::cmp::Reverse(crowd(i)), i));
        let mut unplaced_points = Vec::new();
        for i in order {
            if captioned_points.contains(&i) {
                continue;
            }
            let p = points[i];
            // 6% wider than the font's layout box: renderers differ a little in glyph advances,
            // and a label set to the left of its marker must not reach it in any of them.
            let size = text_size(&p.label, LABEL_SIZE);
            let size = (size.0 * 1.06, size.1);
            let Some((rect, leader)) = place(
                markers[i],
                size,
                &self.area,
                &self.taken,
                &self.lines,
                markers,
            ) else {
                unplaced_points.push(i);
                continue;
            };
            self.taken.push(rect.grow(MARGIN));
            if leader {
                let end = rect.nearest(markers[i]);
                self.leaders.push((toward(markers[i], end, r + 2.0), end));
                // Later labels keep off this leader as off a ceiling.
                self.lines.push((toward(markers[i], end, r + 2.0), end));
            }
            self.texts
                .push((p.label.clone(), rect, colours[p.workload.as_str()]));
        }
        unplaced_points
    }
}

/// Choose a box for a `w` × `h` label of the marker at `at`: the cheapest of a ring of candidates
/// (see the roofline module's documentation). Returns the box and whether it needs a leader line, or `None`
/// when no candidate is legal: inside the plotting area, overlapping no label, marker or stem,
/// and crossing no ceiling line (nor an earlier label's leader). Such a label goes to the
/// caption, as a ceiling label with no room does.
pub(super) fn place(
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

/// Space between stacked ceiling labels, pixels: more than the free margin kept around both.
pub(super) const STACK_GAP: f64 = 2.0 * MARGIN + 1.0;
/// Length of the tick from a compute ceiling's end to its label in the right margin, pixels.
pub(super) const TICK: f64 = 16.0;

/// The thin box of a vertical stem, which later labels keep off.
pub(super) fn stem_box((from, to): Segment) -> Rect {
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
pub(super) fn stack(want: &[f64], h: f64, lo: f64, hi: f64) -> Option<Vec<f64>> {
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

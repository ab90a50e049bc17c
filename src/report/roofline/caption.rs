//! The words of a roofline plot: the caption under it (what the points and ceilings are, where
//! each ceiling comes from, and the labels that found no room in the plot), the ceiling labels'
//! text, and the number formats they use.

use super::super::plots::wrap;
use super::{Ceiling, Ceilings, RooflinePoint};

/// "104 GFLOP/s", "41.2 GB/s".
pub(super) fn rate_text(v: f64, unit: &str) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    format!("{s} {unit}")
}

/// How the caption names a point whose label found no legal place: its label, rate and
/// intensity, so the reader can find its (unlabelled) marker.
pub(super) fn point_caption(p: &RooflinePoint) -> String {
    format!(
        "{} ({}, {} FLOP/B)",
        p.label,
        rate_text(p.gflops, "GFLOP/s"),
        intensity_text(p.intensity)
    )
}

/// An intensity with three significant digits: "0.0833", "2.67", "85.3".
pub(super) fn intensity_text(v: f64) -> String {
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// A compute ceiling's label: "peak (avx2 + FMA): 205 GFLOP/s".
pub(super) fn compute_text(c: &Ceiling) -> String {
    format!("{}: {}", c.label, rate_text(c.value, "GFLOP/s"))
}

/// A bandwidth ceiling's label: "DRAM (triad), measured: 41.2 GB/s".
pub(super) fn memory_text(m: &Ceiling) -> String {
    format!("{}: {}", m.label, rate_text(m.value, "GB/s"))
}

/// The caption under the plot, wrapped into lines: what the points and ceilings are, where the
/// ceilings come from ([`Ceilings::provenance`]), then the ceilings in `captioned` and the points
/// (indices into `points`) in `captioned_points`, whose labels found no room in the plot.
pub(super) fn caption_lines(
    points: &[&RooflinePoint],
    ceilings: &Ceilings,
    captioned: &[String],
    captioned_points: &[usize],
) -> Vec<String> {
    let mut caption = format!(
        "Points: median GFLOP/s over the repetitions at the analytic intensity flops / bytes. Ceilings: {} Labels: kernel and variant.",
        ceilings.provenance()
    );
    if !captioned.is_empty() {
        caption.push_str(&format!(
            " Ceilings with no room for their label in the plot: {}.",
            captioned.join("; ")
        ));
    }
    if !captioned_points.is_empty() {
        let named: Vec<String> = captioned_points
            .iter()
            .map(|&i| point_caption(points[i]))
            .collect();
        caption.push_str(&format!(
            " Points whose label has no room beside its marker without crossing a line: {}.",
            named.join("; ")
        ));
    }
    // Proportional text: 104 characters keep a line of wide glyphs (digits, capitals) inside.
    wrap(&caption, 104)
}

//! The "Roofline" section of report.md: the plots [`super::write_with`] drew, the notes on GPU
//! devices, the worker counts no plot shows, and every point left off, with its reason.

use std::collections::BTreeMap;

use super::Roofline;

/// The "Roofline" section of report.md: the plots and the points left out, with reasons.
pub fn markdown(roofline: &Roofline) -> String {
    let mut md = String::new();
    if roofline.plots.is_empty() && roofline.left_out.is_empty() && roofline.notes.is_empty() {
        return md;
    }
    md.push_str("## Roofline\n\n");
    md.push_str("Each point at its arithmetic intensity (analytic flops / bytes of one repetition) and its median GFLOP/s; diagonals are bandwidth ceilings, horizontal lines compute ceilings. One plot per worker count p.\n\n");
    for p in &roofline.plots {
        md.push_str(&format!("![{}](plots/{}.png)\n\n", p.title, p.stem));
        md.push_str(&format!("[{} (SVG)](plots/{}.svg)\n\n", p.title, p.stem));
    }
    if roofline.plots.is_empty() {
        md.push_str("No point can be placed on a roofline.\n\n");
    }
    for note in &roofline.notes {
        md.push_str(note);
        md.push_str("\n\n");
    }
    if !roofline.skipped_workers.is_empty() {
        let ps: Vec<String> = roofline
            .skipped_workers
            .iter()
            .map(|p| p.to_string())
            .collect();
        md.push_str(&format!(
            "The plots show the smallest and the largest worker count; the points at p = {} are in the tables above.\n\n",
            ps.join(", ")
        ));
    }
    if !roofline.left_out.is_empty() {
        // One line per kernel and reason, naming the points.
        let mut groups: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for l in &roofline.left_out {
            groups
                .entry((l.what.as_str(), l.reason.as_str()))
                .or_default()
                .push(l.point_id.as_str());
        }
        md.push_str("Not on the roofline:\n\n");
        for ((what, reason), ids) in groups {
            let shown: Vec<String> = ids.iter().take(6).map(|i| format!("`{i}`")).collect();
            let more = if ids.len() > shown.len() { ", …" } else { "" };
            md.push_str(&format!(
                "- {what} ({} point{}: {}{more}): {reason}.\n",
                ids.len(),
                crate::units::plural(ids.len()),
                shown.join(", ")
            ));
        }
        md.push('\n');
    }
    md
}

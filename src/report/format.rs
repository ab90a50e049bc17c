//! How the report's tables write numbers and text: Markdown-safe cells, three significant
//! digits, percentages, a point's parameters and its repetition times.

use crate::results::PointRecord;
use crate::units::sig3;

use super::scaling::{fixed_params, size_label};

/// Escape text for a Markdown table cell.
pub(super) fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A cell with three significant digits ([`sig3`]), or `–` for a missing value.
pub(super) fn opt_sig(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), sig3)
}

pub(super) fn pct(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

/// The parameters of a point for tables and live lines: variant, other parameters, size.
pub(super) fn params_text(rec: &PointRecord) -> String {
    let mut parts = fixed_params(rec);
    parts.extend(size_label(rec));
    parts.join(" ")
}

pub(super) fn times(rec: &PointRecord) -> Vec<f64> {
    rec.repetitions.iter().map(|r| r.seconds).collect()
}

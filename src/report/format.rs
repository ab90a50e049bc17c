//! How the report's tables write numbers and text: Markdown-safe cells, three significant
//! digits, percentages, a point's parameters and its repetition times.

use crate::results::PointRecord;

use super::scaling::{fixed_params, size_label};

/// Escape text for a Markdown table cell.
pub(super) fn cell(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

/// A number with 3 significant digits (at least 1 decimal below 100).
pub(super) fn sig(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub(super) fn opt_sig(v: Option<f64>) -> String {
    v.map(sig).unwrap_or_else(|| "–".into())
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

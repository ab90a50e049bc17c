//! Typed axis values and problem sizes with units.
//!
//! A manifest writes sizes as plain counts (`4096`), counts with decimal suffixes (`"10M"` =
//! 10 000 000; k, M, G, T) or byte sizes with binary or decimal byte units (`"64MiB"`, `"1GB"`).
//! A [`Size`] remembers which, because a workload turns a byte size into elements with its own
//! element width and shape (STREAM: bytes per array / 8; GEMM: the order of an n × n f64 matrix).

use std::fmt;

use serde::{Deserialize, Serialize};

/// A problem size as written in a manifest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// A number of items (elements, matrix order, samples...), as the workload defines.
    Count(u64),
    /// A number of bytes, converted to items by the workload.
    Bytes(u64),
}

impl Size {
    /// Items for a one-dimensional array of `elem_bytes`-byte elements.
    pub fn count(self, elem_bytes: u64) -> u64 {
        match self {
            Size::Count(n) => n,
            Size::Bytes(b) => (b / elem_bytes).max(1),
        }
    }

    /// Side of a square `side × side` array of `elem_bytes`-byte elements.
    pub fn side(self, elem_bytes: u64) -> u64 {
        match self {
            Size::Count(n) => n,
            Size::Bytes(b) => (((b / elem_bytes) as f64).sqrt().floor() as u64).max(1),
        }
    }

    /// The same kind of size with its number replaced.
    pub fn with_value(self, v: u64) -> Size {
        match self {
            Size::Count(_) => Size::Count(v),
            Size::Bytes(_) => Size::Bytes(v),
        }
    }

    pub fn value(self) -> u64 {
        match self {
            Size::Count(n) | Size::Bytes(n) => n,
        }
    }

    /// Parse `4096`, `"10M"`, `"64MiB"`, `"1.5GB"`. The error explains the accepted forms.
    pub fn parse(text: &str) -> Result<Size, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let num: String = num.chars().filter(|&c| c != '_').collect();
        let number: f64 = num
            .parse()
            .map_err(|_| format!("`{text}` is not a size; write a count like 4096 or \"10M\", or bytes like \"64MiB\""))?;
        let (mult, bytes) = match unit.trim() {
            "" => (1.0, false),
            "k" | "K" => (1e3, false),
            "M" => (1e6, false),
            "G" => (1e9, false),
            "T" => (1e12, false),
            "B" => (1.0, true),
            "kB" | "KB" => (1e3, true),
            "MB" => (1e6, true),
            "GB" => (1e9, true),
            "TB" => (1e12, true),
            "KiB" | "kiB" => (1024.0, true),
            "MiB" => (1024.0 * 1024.0, true),
            "GiB" => (1024.0 * 1024.0 * 1024.0, true),
            "TiB" => (1024.0f64.powi(4), true),
            other => {
                return Err(format!(
                    "unknown unit `{other}` in size `{text}`; use k, M, G, T for counts or B, KiB, MiB, GiB, kB, MB, GB for bytes"
                ))
            }
        };
        let v = number * mult;
        if v.is_nan() || v < 1.0 || v.fract() != 0.0 || v > 1e18 {
            return Err(format!(
                "size `{text}` must be a positive whole number of items or bytes"
            ));
        }
        let v = v as u64;
        Ok(if bytes {
            Size::Bytes(v)
        } else {
            Size::Count(v)
        })
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Size::Count(n) => write!(f, "{n}"),
            Size::Bytes(b) => {
                for (unit, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
                    if b >= scale && b % scale == 0 {
                        return write!(f, "{}{unit}", b / scale);
                    }
                }
                write!(f, "{b}B")
            }
        }
    }
}

/// The type of a workload parameter, which decides how manifest values are read. It lives here,
/// beside the values it types, so that workloads depend on values and not the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamKind {
    /// A problem size: a plain count (`4096`, `"10M"` = 10 000 000) or a byte size (`"64MiB"`).
    Size,
    /// A positive integer.
    Int,
    /// A floating point number.
    Float,
    /// One of a fixed set of names.
    Choice(&'static [&'static str]),
    /// Free text.
    Text,
}

/// One typed value of an axis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    Int(u64),
    Float(f64),
    Size(Size),
    Text(String),
}

impl Value {
    /// Read a value of `kind` from text (used for defaults and the `scalelab point` command line).
    pub fn from_text(kind: ParamKind, text: &str) -> Result<Value, String> {
        match kind {
            ParamKind::Size => Size::parse(text).map(Value::Size),
            ParamKind::Int => text
                .parse::<u64>()
                .ok()
                .filter(|&v| v > 0)
                .map(Value::Int)
                .ok_or_else(|| format!("`{text}` is not a positive integer")),
            ParamKind::Float => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Value::Float)
                .ok_or_else(|| format!("`{text}` is not a number")),
            ParamKind::Choice(choices) => {
                if choices.contains(&text) {
                    Ok(Value::Text(text.to_string()))
                } else {
                    Err(format!("`{text}` is not one of {}", choices.join(", ")))
                }
            }
            ParamKind::Text => Ok(Value::Text(text.to_string())),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Size(s) => write!(f, "{s}"),
            Value::Text(t) => write!(f, "{t}"),
        }
    }
}

/// Candidates close to `name` by edit distance (for "did you mean" hints), best first, at most 3.
pub fn nearest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(s, c)| *s >= 0.75 || c.contains(name) || (name.len() >= 3 && name.contains(*c)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        assert_eq!(Size::parse("4096"), Ok(Size::Count(4096)));
        assert_eq!(Size::parse("10M"), Ok(Size::Count(10_000_000)));
        assert_eq!(Size::parse("1.5k"), Ok(Size::Count(1500)));
        assert_eq!(Size::parse("64MiB"), Ok(Size::Bytes(64 << 20)));
        assert_eq!(Size::parse("2GB"), Ok(Size::Bytes(2_000_000_000)));
        assert_eq!(Size::parse("1_000"), Ok(Size::Count(1000)));
        assert!(Size::parse("0").is_err());
        assert!(Size::parse("-5").is_err());
        assert!(Size::parse("1.5").is_err());
        assert!(Size::parse("12 parsecs")
            .unwrap_err()
            .contains("unknown unit"));
        assert_eq!(Size::Bytes(64 << 20).count(8), 8 << 20);
        assert_eq!(Size::Bytes(8 * 1024 * 1024).side(8), 1024);
        assert_eq!(Size::Bytes(64 << 20).to_string(), "64MiB");
    }
}

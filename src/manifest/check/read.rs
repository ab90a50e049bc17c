//! Scalar readers: one TOML value checked as a string, a count, a boolean, a time limit or a
//! name, each failure pushed as a problem with an example of the right form; and the duration
//! grammar shared by `timeout` and `wait_idle`.

use toml_edit::{Item, TableLike, Value as Tv};

use super::text::{found, quote};
use super::{Checker, MAX_COUNT, MAX_TIMEOUT_S};

impl Checker<'_> {
    pub(in crate::manifest) fn read_str<'t>(
        &mut self,
        place: &str,
        key: &str,
        item: &'t Item,
        line: Option<usize>,
        example: &str,
    ) -> Option<&'t str> {
        match item.as_str() {
            Some(s) => Some(s),
            None => {
                self.push(
                    line,
                    place,
                    format!(
                        "`{key}` must be a string (in quotes), found {}",
                        found(item)
                    ),
                    format!("write e.g. {example}"),
                );
                None
            }
        }
    }

    /// A whole number in `min..=max`.
    #[allow(clippy::too_many_arguments)]
    pub(in crate::manifest) fn read_count(
        &mut self,
        place: &str,
        key: &str,
        item: &Item,
        line: Option<usize>,
        min: i64,
        max: i64,
        example: &str,
    ) -> Option<u32> {
        let Some(v) = item.as_integer() else {
            self.push(
                line,
                place,
                format!("`{key}` must be a whole number, found {}", found(item)),
                format!("write e.g. {example}"),
            );
            return None;
        };
        if v < min {
            self.push(
                line,
                place,
                format!("`{key}` must be at least {min}, found {v}"),
                format!("write e.g. {example}"),
            );
            return None;
        }
        if v > max {
            self.push(
                line,
                place,
                format!("`{key}` = {v} is more than the limit of {max}"),
                format!("use at most {max}, e.g. {example}"),
            );
            return None;
        }
        Some(v as u32)
    }

    pub(in crate::manifest) fn read_bool(
        &mut self,
        place: &str,
        key: &str,
        item: &Item,
        line: Option<usize>,
    ) -> Option<bool> {
        let b = item.as_bool();
        if b.is_none() {
            self.push(
                line,
                place,
                format!("`{key}` must be true or false, found {}", found(item)),
                format!("write {key} = true or {key} = false (no quotes)"),
            );
        }
        b
    }

    pub(in crate::manifest) fn read_timeout(
        &mut self,
        place: &str,
        item: &Item,
        line: Option<usize>,
    ) -> Option<f64> {
        let fix = "write seconds as a number or a duration like \"90s\", \"10m\", \"1h\", e.g. timeout = \"10m\"";
        let seconds = match item {
            Item::Value(Tv::Integer(i)) => *i.value() as f64,
            Item::Value(Tv::Float(f)) => *f.value(),
            Item::Value(Tv::String(s)) => match parse_duration(s.value()) {
                Ok(v) => v,
                Err(m) => {
                    self.push(line, place, format!("`timeout`: {m}"), fix.into());
                    return None;
                }
            },
            _ => {
                self.push(
                    line,
                    place,
                    format!(
                        "`timeout` must be seconds or a duration like \"10m\", found {}",
                        found(item)
                    ),
                    fix.into(),
                );
                return None;
            }
        };
        if !(seconds > 0.0 && seconds.is_finite()) {
            self.push(
                line,
                place,
                format!("`timeout` must be more than 0 seconds, found {seconds}"),
                fix.into(),
            );
            return None;
        }
        if seconds > MAX_TIMEOUT_S {
            self.push(
                line,
                place,
                format!("`timeout` of {seconds} s is more than the limit of one week ({MAX_TIMEOUT_S} s)"),
                "use at most \"168h\"; split longer experiments into several points".into(),
            );
            return None;
        }
        Some(seconds)
    }

    pub(in crate::manifest) fn read_name(
        &mut self,
        place: &str,
        key: &str,
        item: &Item,
        line: Option<usize>,
        example: &str,
    ) -> Option<String> {
        let s = self.read_str(place, key, item, line, example)?;
        if valid_name(s) {
            return Some(s.to_string());
        }
        let chars = s.chars().count();
        if chars > MAX_NAME_CHARS {
            self.push(
                line,
                place,
                format!("`{key}` has {chars} characters, more than the limit of {MAX_NAME_CHARS}"),
                format!("it names folders and columns of the results; use a shorter name, e.g. {example}"),
            );
            return None;
        }
        self.push(
            line,
            place,
            format!(
                "`{key}` = {} may only contain letters, digits, `_`, `.` and `-`",
                quote(s)
            ),
            format!("it names folders and columns of the results; write e.g. {example}"),
        );
        None
    }

    /// An optional whole number key with a default.
    pub(in crate::manifest) fn opt_count(
        &mut self,
        table: &dyn TableLike,
        place: &str,
        key: &str,
        min: i64,
        default: u32,
        example: &str,
    ) -> Option<u32> {
        match table.get(key) {
            Some(item) => {
                let line = self.key_line(table, key);
                self.read_count(place, key, item, line, min, MAX_COUNT, example)
            }
            None => Some(default),
        }
    }
}

/// How to write `wait_idle`.
pub(in crate::manifest) const WAIT_IDLE_FIX: &str = "write the longest wait before each point in seconds or as a duration, e.g. wait_idle = 60 or wait_idle = \"2m\" (true: 120 s, as --wait-idle; false: no waiting)";

/// The longest wait of a top-level `wait_idle` (seconds, a duration like "2m", `true` for the
/// 120 s of a bare `--wait-idle`, `false` for none), or what is wrong with it. Also read from a
/// run's own manifest by `scalelab run --resume`.
pub fn wait_idle_seconds(item: &Item) -> Result<Option<u64>, String> {
    let seconds = match item {
        Item::Value(Tv::Boolean(b)) => return Ok(b.value().then_some(120)),
        Item::Value(Tv::Integer(i)) => *i.value() as f64,
        Item::Value(Tv::Float(f)) => *f.value(),
        Item::Value(Tv::String(s)) => {
            parse_duration(s.value()).map_err(|m| format!("`wait_idle`: {m}"))?
        }
        _ => {
            return Err(format!(
                "`wait_idle` must be seconds, a duration like \"2m\", or true/false, found {}",
                found(item)
            ))
        }
    };
    if !(1.0..=86_400.0).contains(&seconds) {
        return Err(format!(
            "`wait_idle` must be between 1 second and one day (86400 s), found {seconds}"
        ));
    }
    Ok(Some(seconds.round() as u64))
}

/// Parse a time limit: seconds (`"90"`, `"1.5"`), or a number with a unit: `"90s"`, `"10m"`,
/// `"10 min"`, `"1h"`, `"1.5 hours"`, `"2d"` (s, m, h, d, or the words). The error says which
/// forms are accepted.
pub fn parse_duration(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86_400.0,
        _ => f64::NAN,
    };
    match num.parse::<f64>() {
        Ok(n) if scale.is_finite() => Ok(n * scale),
        _ => Err(format!("{} is not a duration", quote(text))),
    }
}

/// Longest study or experiment name (names become folder names, which file systems cap at 255
/// bytes, with room for a suffix).
pub(in crate::manifest) const MAX_NAME_CHARS: usize = 200;

/// `[A-Za-z0-9_.-]+`, and not `.` or `..` (names become folder names).
pub(in crate::manifest) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_CHARS
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

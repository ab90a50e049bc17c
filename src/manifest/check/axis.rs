//! One swept axis: a scalar or a list, each value read for its kind (a resource count, a size,
//! an integer, a float, a choice or a text) and repeated values refused.

use std::collections::HashSet;

use toml_edit::{Item, Value as Tv};

use super::text::{did_you_mean, found, found_value, quote, quote_if_text, suggest};
use super::{Checker, MAX_BAD_VALUES, MAX_RESOURCE};
use crate::value::{Size, Value};
use crate::workload::ParamKind;

impl Checker<'_> {
    /// The values of one axis: a scalar or a non-empty list, each value checked for its kind.
    pub(in crate::manifest) fn axis(
        &mut self,
        place: &str,
        key: &str,
        item: &Item,
        line: Option<usize>,
        kind: AxisKind,
    ) -> Option<Vec<Value>> {
        let elements: Vec<&Tv> = match item {
            Item::Value(Tv::Array(a)) => {
                if a.is_empty() {
                    self.push(
                        line,
                        place,
                        format!("`{key}` is an empty list"),
                        format!("give at least one value, e.g. {}, or remove the key to use the default", kind.example(key)),
                    );
                    return None;
                }
                a.iter().collect()
            }
            Item::Value(v) => vec![v],
            other => {
                self.push(
                    line,
                    place,
                    format!(
                        "`{key}` must be {} or a list of them, found {}",
                        kind.expected(),
                        found(other)
                    ),
                    format!("write e.g. {}", kind.example(key)),
                );
                return None;
            }
        };
        let mut values = Vec::with_capacity(elements.len());
        let mut bad = 0usize;
        let mut seen: HashSet<String> = HashSet::with_capacity(elements.len());
        let mut repeated: Vec<String> = Vec::new();
        for v in elements {
            match kind.convert(key, v) {
                Ok(value) => {
                    if !seen.insert(same_value_key(&value)) {
                        repeated.push(value.to_string());
                    }
                    values.push(value);
                }
                Err((message, fix)) => {
                    bad += 1;
                    if bad <= MAX_BAD_VALUES {
                        let vline = self.line(v.span()).or(line);
                        self.push(vline, place, message, fix);
                    }
                }
            }
        }
        if bad > MAX_BAD_VALUES {
            self.push(
                line,
                place,
                format!(
                    "{} more values of `{key}` have problems like the ones above",
                    bad - MAX_BAD_VALUES
                ),
                format!("write e.g. {}", kind.example(key)),
            );
        }
        if !repeated.is_empty() {
            repeated.dedup();
            self.push(
                line,
                place,
                format!("`{key}` lists {} more than once", repeated.iter().take(5).map(|r| quote_if_text(r)).collect::<Vec<_>>().join(", ")),
                "remove the repeated values (each point runs once; use repetitions = N to time it more often)".into(),
            );
            return None;
        }
        (bad == 0).then_some(values)
    }
}

/// How the values of an axis are read.
#[derive(Clone, Copy)]
pub(in crate::manifest) enum AxisKind {
    /// `threads`, `ranks`, `ranks_per_node`, `nodes`, `gpus`.
    Resource,
    /// A workload parameter: (workload name, kind).
    Param(&'static str, ParamKind),
}

impl AxisKind {
    pub(in crate::manifest) fn expected(self) -> &'static str {
        match self {
            AxisKind::Resource => "a whole number",
            AxisKind::Param(_, ParamKind::Size) => {
                "a size (a count like 4096 or \"10M\", or bytes like \"64MiB\")"
            }
            AxisKind::Param(_, ParamKind::Int) => "a positive whole number",
            AxisKind::Param(_, ParamKind::Float) => "a number",
            AxisKind::Param(_, ParamKind::Choice(_)) => "a choice (in quotes)",
            AxisKind::Param(_, ParamKind::Text) => "a string (in quotes)",
        }
    }

    pub(in crate::manifest) fn example(self, key: &str) -> String {
        match self {
            AxisKind::Resource => match key {
                "gpus" => "gpus = [1, 2]".into(),
                "nodes" => "nodes = [1, 2]".into(),
                "ranks_per_node" => "ranks_per_node = 4".into(),
                _ => format!("{key} = [1, 2, 4]"),
            },
            AxisKind::Param(_, ParamKind::Size) => format!("{key} = [\"64MiB\", 4096]"),
            AxisKind::Param(_, ParamKind::Int) => format!("{key} = [1, 10]"),
            AxisKind::Param(_, ParamKind::Float) => format!("{key} = [0.5, 1.0]"),
            AxisKind::Param(_, ParamKind::Choice(c)) => {
                format!(
                    "{key} = [{}]",
                    c.iter()
                        .take(2)
                        .map(|c| format!("\"{c}\""))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            AxisKind::Param(_, ParamKind::Text) => format!("{key} = [\"...\"]"),
        }
    }

    /// One TOML value as an axis value, or (message, fix).
    pub(in crate::manifest) fn convert(self, key: &str, v: &Tv) -> Result<Value, (String, String)> {
        match self {
            AxisKind::Resource => self.resource(key, v),
            AxisKind::Param(_, ParamKind::Size) => self.size(key, v),
            AxisKind::Param(_, ParamKind::Int) => self.int(key, v),
            AxisKind::Param(_, ParamKind::Float) => self.float(key, v),
            AxisKind::Param(workload, ParamKind::Choice(choices)) => {
                self.choice(key, v, workload, choices)
            }
            AxisKind::Param(_, ParamKind::Text) => match v.as_str() {
                Some(s) => Ok(Value::Text(s.to_string())),
                None => Err(self.type_error(key, v)),
            },
        }
    }

    /// "`key` must be <kind>, found <v>", with an example.
    fn type_error(self, key: &str, v: &Tv) -> (String, String) {
        (
            format!(
                "`{key}` must be {}, found {}",
                self.expected(),
                found_value(v)
            ),
            format!("write e.g. {}", self.example(key)),
        )
    }

    /// A resource count: at least 1 (0 for `gpus`), at most [`MAX_RESOURCE`].
    fn resource(self, key: &str, v: &Tv) -> Result<Value, (String, String)> {
        let Some(i) = v.as_integer() else {
            return Err(self.type_error(key, v));
        };
        let min = if key == "gpus" { 0 } else { 1 };
        if i < min {
            let fix = if key == "gpus" {
                "use 0 (no GPU) or more, e.g. gpus = [1, 2]".to_string()
            } else {
                format!("use 1 or more {key}, e.g. {}", self.example(key))
            };
            return Err((format!("`{key}` must be at least {min}, found {i}"), fix));
        }
        if i > MAX_RESOURCE {
            return Err((
                format!("`{key}` = {i} is more than the limit of {MAX_RESOURCE}"),
                format!("use at most {MAX_RESOURCE}"),
            ));
        }
        Ok(Value::Int(i as u64))
    }

    /// A size: a count like 4096 or "10M", or bytes like "64MiB".
    fn size(self, key: &str, v: &Tv) -> Result<Value, (String, String)> {
        let text = match v {
            Tv::Integer(i) => i.value().to_string(),
            Tv::String(s) => s.value().to_string(),
            Tv::Float(f) if f.value().is_finite() => format!("{}", f.value()),
            Tv::Float(f) => format!("{:?}", f.value()),
            _ => return Err(self.type_error(key, v)),
        };
        Size::parse(&text).map(Value::Size).map_err(|m| {
            (
                format!("`{key}`: {m}"),
                "write a count like 4096 or \"10M\", or bytes like \"64MiB\"".to_string(),
            )
        })
    }

    /// A positive whole number.
    fn int(self, key: &str, v: &Tv) -> Result<Value, (String, String)> {
        let Some(i) = v.as_integer() else {
            return Err(self.type_error(key, v));
        };
        if i < 1 {
            return Err((
                format!("`{key}` must be a positive whole number, found {i}"),
                format!("write e.g. {}", self.example(key)),
            ));
        }
        Ok(Value::Int(i as u64))
    }

    /// A finite number.
    fn float(self, key: &str, v: &Tv) -> Result<Value, (String, String)> {
        let x = match v {
            Tv::Integer(i) => *i.value() as f64,
            Tv::Float(f) => *f.value(),
            _ => return Err(self.type_error(key, v)),
        };
        if !x.is_finite() {
            return Err((
                format!("`{key}` must be a finite number, found {x}"),
                format!("write e.g. {}", self.example(key)),
            ));
        }
        Ok(Value::Float(x))
    }

    /// One of the parameter's choices, with the nearest ones suggested.
    fn choice(
        self,
        key: &str,
        v: &Tv,
        workload: &str,
        choices: &[&str],
    ) -> Result<Value, (String, String)> {
        let Some(s) = v.as_str() else {
            return Err((
                format!(
                    "`{key}` must be one of {} (in quotes), found {}",
                    choices.join(", "),
                    found_value(v)
                ),
                format!("write e.g. {}", self.example(key)),
            ));
        };
        if choices.contains(&s) {
            return Ok(Value::Text(s.to_string()));
        }
        let hint = did_you_mean(&suggest(s, choices.iter().copied()))
            .map(|d| format!("{d} "))
            .unwrap_or_default();
        Err((
            format!("`{key}` = {} is not a {key} of {workload}", quote(s)),
            format!("{hint}choose from: {}", choices.join(", ")),
        ))
    }
}

/// What makes two values of one axis the same point: their text, except that floats equal under
/// `==` are one value (`0.0` and `-0.0`, written "0" and "-0"). Sizes already print one way
/// (`"1KiB"` and `"1024B"` are both `1KiB`).
pub(in crate::manifest) fn same_value_key(v: &Value) -> String {
    match v {
        Value::Float(x) if *x == 0.0 => "0".into(),
        other => other.to_string(),
    }
}

//! How user text appears in messages: quoted and shortened, "found a …" descriptions of TOML
//! values, and "did you mean" suggestions.

use toml_edit::{Item, Value as Tv};

use crate::value::nearest;

/// The closest of `candidates` to `name` ([`nearest`]), keeping only those about as close as the best.
pub(in crate::manifest) fn suggest<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Vec<&'c str> {
    let near = nearest(name, candidates);
    let score = |c: &str| strsim::jaro_winkler(name, c);
    let best = near.first().map(|c| score(c)).unwrap_or(0.0);
    near.into_iter()
        .filter(|c| score(c) >= best - 0.03)
        .collect()
}

/// "did you mean `a`?", "did you mean `a` or `b`?", "did you mean `a`, `b` or `c`?".
pub(in crate::manifest) fn did_you_mean(candidates: &[&str]) -> Option<String> {
    let quoted: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    match quoted.as_slice() {
        [] => None,
        [a] => Some(format!("did you mean {a}?")),
        [init @ .., last] => Some(format!("did you mean {} or {last}?", init.join(", "))),
    }
}

/// What a TOML item is, for "found ..." in messages.
pub(in crate::manifest) fn found(item: &Item) -> String {
    match item {
        Item::None => "nothing".into(),
        Item::Value(v) => found_value(v),
        Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "a list of tables".into(),
    }
}

pub(in crate::manifest) fn found_value(v: &Tv) -> String {
    match v {
        Tv::String(s) => format!("a string ({})", quote(s.value())),
        Tv::Integer(i) => format!("an integer ({})", i.value()),
        Tv::Float(f) => format!("a float ({:?})", f.value()),
        Tv::Boolean(b) => format!("a boolean ({})", b.value()),
        Tv::Datetime(d) => format!("a date-time ({})", d.value()),
        Tv::Array(_) => "a list".into(),
        Tv::InlineTable(_) => "a table".into(),
    }
}

/// A user string in double quotes, escaped and shortened for a one-line message.
pub(in crate::manifest) fn quote(s: &str) -> String {
    format!("\"{}\"", shown(s))
}

/// A user string escaped and shortened for a one-line message.
pub(in crate::manifest) fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(60)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

/// Numbers as they are, other values quoted.
pub(in crate::manifest) fn quote_if_text(s: &str) -> String {
    if s.parse::<f64>().is_ok() {
        s.to_string()
    } else {
        quote(s)
    }
}

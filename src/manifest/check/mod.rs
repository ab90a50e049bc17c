//! The manifest checker: walks the `toml_edit` document of a manifest, checks every key and value
//! against the format (see `docs/manifest.md`) and the workload registry, and either builds the
//! typed [`Manifest`] or collects every problem it finds.
//!
//! The walk never stops at the first problem. To avoid cascades, a study whose workload is unknown
//! has its other keys checked only where that makes sense without the workload, and per-point
//! checks (see [`super::points`]) run only for studies whose keys are all valid.
//!
//! * [`document`]: the top level, the list of studies and the rules across studies;
//! * [`study`]: one `[[study]]` block; [`axis`] one swept axis; [`zip`] zip groups;
//! * [`read`]: scalar values (counts, names, time limits, durations);
//! * [`text`]: how user text is quoted and suggested in messages.

mod axis;
mod document;
mod read;
mod study;
pub(super) mod text;
mod zip;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, TableLike};

use super::{Context, Manifest, ManifestError, Problem, Study};

pub use read::{parse_duration, wait_idle_seconds};
pub(super) use text::{did_you_mean, found, quote, shown, suggest};

/// Longest accepted per-point time limit: one week.
pub const MAX_TIMEOUT_S: f64 = 7.0 * 86_400.0;
/// Default per-point time limit: ten minutes.
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;
/// Largest accepted `repetitions`, `warmup`, `max_array`, `throttle`.
pub(super) const MAX_COUNT: i64 = 1_000_000;
/// Largest accepted value of a resource axis (keeps ranks × threads × gpus far from overflow).
pub(in crate::manifest) const MAX_RESOURCE: i64 = 1_000_000;
/// Bad values reported one by one per axis; the rest are summed up in one more problem.
pub(in crate::manifest) const MAX_BAD_VALUES: usize = 5;

/// Problems collected so far, and what is needed to name their lines.
pub(super) struct Checker<'a> {
    pub(super) path: &'a Path,
    source: &'a str,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
    pub(super) ctx: &'a Context<'a>,
    pub(super) problems: Vec<Problem>,
}

/// What the checker learned about one study, valid or not.
pub(super) struct StudyInfo {
    /// `name`, else the workload as written.
    label: Option<String>,
    /// `study 2 (stream.triad)`.
    pub(super) place: String,
    /// Line of the `[[study]]` header.
    pub(super) header: Option<usize>,
    /// Line of each key of the study.
    pub(super) key_lines: HashMap<String, usize>,
    /// The checked study, when all its keys are valid.
    study: Option<Study>,
}

impl<'a> Checker<'a> {
    /// The absolute folder relative data files resolve against: the context's, else the
    /// manifest's own folder (the current folder for a bare file name).
    pub(super) fn data_dir(&self) -> PathBuf {
        if let Some(d) = self.ctx.data_dir {
            return std::path::absolute(d).unwrap_or_else(|_| d.to_path_buf());
        }
        let abs = std::path::absolute(self.path).unwrap_or_else(|_| self.path.to_path_buf());
        abs.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    fn new(path: &'a Path, source: &'a str, ctx: &'a Context<'a>) -> Checker<'a> {
        let mut line_starts = vec![0];
        line_starts.extend(source.match_indices('\n').map(|(i, _)| i + 1));
        Checker {
            path,
            source,
            line_starts,
            ctx,
            problems: Vec::new(),
        }
    }

    /// 1-based line of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= offset).max(1)
    }

    fn line(&self, span: Option<Range<usize>>) -> Option<usize> {
        span.map(|s| self.line_of(s.start))
    }

    /// Line of `key` in `table` (the key itself, else its value).
    pub(super) fn key_line(&self, table: &dyn TableLike, key: &str) -> Option<usize> {
        table
            .key(key)
            .and_then(|k| k.span())
            .or_else(|| table.get(key).and_then(|i| i.span()))
            .map(|s| self.line_of(s.start))
    }

    pub(super) fn push(&mut self, line: Option<usize>, place: &str, message: String, fix: String) {
        self.problems.push(Problem {
            line,
            place: place.to_string(),
            message,
            fix,
        });
    }

    fn into_error(mut self) -> ManifestError {
        // Stable: problems of one line keep the order they were found in.
        self.problems.sort_by_key(|p| p.line.unwrap_or(0));
        ManifestError {
            path: self.path.to_path_buf(),
            problems: self.problems,
        }
    }

    fn syntax(&mut self, e: toml_edit::TomlError) {
        let offset = e
            .span()
            .map(|s| s.start)
            .unwrap_or(0)
            .min(self.source.len());
        let line = self.line_of(offset);
        let start = self.line_starts[line - 1];
        let column = self
            .source
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0)
            + 1;
        let text: String = self.source[start..]
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .chars()
            .take(60)
            .map(|c| if c.is_control() { '\u{fffd}' } else { c })
            .collect();
        let mut message: Vec<&str> = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if message.is_empty() {
            message.push("invalid TOML syntax");
        }
        let fix = if e.message().contains("duplicate key") {
            "each key may appear only once in a table; remove or rename the repeated one"
                .to_string()
        } else if e.message().contains("too large") {
            format!("correct line {line} (`{text}`): TOML integers must fit in 64 bits; use a smaller number or a size like \"10G\"")
        } else {
            format!(
                "correct line {line} (`{text}`): strings need quotes, lists use [ ], one `key = value` per line (see https://toml.io)"
            )
        };
        self.push(
            Some(line),
            "",
            format!("invalid TOML at column {column}: {}", message.join("; ")),
            fix,
        );
    }
}

/// Check `source` (the manifest at `path`) against `ctx`.
pub(super) fn check(
    path: &Path,
    source: &str,
    ctx: &Context<'_>,
) -> Result<Manifest, ManifestError> {
    let mut c = Checker::new(path, source, ctx);
    let doc = match ImDocument::parse(source) {
        Ok(doc) => doc,
        Err(e) => {
            c.syntax(e);
            return Err(c.into_error());
        }
    };
    match c.document(&doc) {
        Some(m) if c.problems.is_empty() => Ok(m),
        _ => Err(c.into_error()),
    }
}

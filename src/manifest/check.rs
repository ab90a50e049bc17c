//! The manifest checker: walks the `toml_edit` document of a manifest, checks every key and value
//! against the format (see `docs/manifest.md`) and the workload registry, and either builds the
//! typed [`Manifest`] or collects every problem it finds.
//!
//! The walk never stops at the first problem. To avoid cascades, a study whose workload is unknown
//! has its other keys checked only where that makes sense without the workload, and per-point
//! checks (see [`super::points`]) run only for studies whose keys are all valid.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml_edit::{ImDocument, Item, TableLike, Value as Tv};

use super::{
    sha256_hex, Axis, Context, Manifest, ManifestError, Problem, Study, MAX_POINTS, RESOURCE_AXES,
    STUDY_KEYS, TOP_KEYS,
};
use crate::plan::Scaling;
use crate::value::{nearest, Size, Value};
use crate::workload::{Backend, ParamKind, WeakRule, Workload};

/// Longest accepted per-point time limit: one week.
pub const MAX_TIMEOUT_S: f64 = 7.0 * 86_400.0;
/// Default per-point time limit: ten minutes.
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;
/// Largest accepted `repetitions`, `warmup`, `max_array`, `throttle`.
pub(super) const MAX_COUNT: i64 = 1_000_000;
/// Largest accepted value of a resource axis (keeps ranks × threads × gpus far from overflow).
const MAX_RESOURCE: i64 = 1_000_000;
/// Bad values reported one by one per axis; the rest are summed up in one more problem.
const MAX_BAD_VALUES: usize = 5;

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

    // ---------------------------------------------------------------- scalar readers

    pub(super) fn read_str<'t>(
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
    pub(super) fn read_count(
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

    fn read_bool(
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

    fn read_timeout(&mut self, place: &str, item: &Item, line: Option<usize>) -> Option<f64> {
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

    fn read_name(
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

    // ---------------------------------------------------------------- the document

    fn document(&mut self, doc: &ImDocument<&str>) -> Option<Manifest> {
        let root = doc.as_table();
        for (key, _) in root.iter() {
            if !TOP_KEYS.contains(&key) {
                let line = self.key_line(root, key);
                let hint = match did_you_mean(&suggest(key, TOP_KEYS.iter().copied())) {
                    Some(d) => format!("{d} "),
                    None if RESOURCE_AXES.contains(&key) || STUDY_KEYS.contains(&key) => {
                        format!("`{key}` belongs inside a [[study]] block; ")
                    }
                    None => "remove it; ".into(),
                };
                self.push(
                    line,
                    "",
                    format!("unknown top-level key `{}`", shown(key)),
                    format!("{hint}the top level takes: name, description, repetitions, warmup, timeout, wait_idle, [[study]], [slurm]"),
                );
            }
        }

        let name = match root.get("name") {
            Some(item) => {
                let line = self.key_line(root, "name");
                self.read_name("", "name", item, line, "name = \"quickstart\"")
            }
            None => {
                self.push(
                    None,
                    "",
                    "missing `name`".into(),
                    "add name = \"...\" at the top; it names the results folder results/<name>/"
                        .into(),
                );
                None
            }
        };
        let description = match root.get("description") {
            Some(item) => {
                let line = self.key_line(root, "description");
                self.read_str(
                    "",
                    "description",
                    item,
                    line,
                    "description = \"strong scaling of triad\"",
                )
                .map(str::to_string)
            }
            None => Some(String::new()),
        };
        let repetitions = self.opt_count(root, "", "repetitions", 1, 5, "repetitions = 5");
        let warmup = self.opt_count(root, "", "warmup", 0, 1, "warmup = 1");
        let timeout_s = match root.get("timeout") {
            Some(item) => {
                let line = self.key_line(root, "timeout");
                self.read_timeout("", item, line)
            }
            None => Some(DEFAULT_TIMEOUT_S),
        };
        let wait_idle_s = match root.get("wait_idle") {
            Some(item) => match wait_idle_seconds(item) {
                Ok(v) => Some(v),
                Err(message) => {
                    let line = self.key_line(root, "wait_idle");
                    self.push(line, "", message, WAIT_IDLE_FIX.into());
                    None
                }
            },
            None => Some(None),
        };
        let slurm = root.get("slurm").and_then(|item| self.slurm(root, item));

        // Studies: `[[study]]` blocks, or a list of inline tables.
        let study_line = self.key_line(root, "study");
        let mut tables: Vec<(&dyn TableLike, Option<usize>)> = Vec::new();
        match root.get("study") {
            None => {}
            Some(Item::ArrayOfTables(a)) => {
                for t in a.iter() {
                    tables.push((t as &dyn TableLike, self.line(t.span())));
                }
            }
            Some(Item::Value(Tv::Array(a))) => {
                for (i, v) in a.iter().enumerate() {
                    match v {
                        Tv::InlineTable(t) => {
                            tables.push((t as &dyn TableLike, self.line(v.span())))
                        }
                        other => self.push(
                            self.line(other.span()).or(study_line),
                            &format!("study {}", i + 1),
                            format!("each study must be a table, found {}", found_value(other)),
                            "write each study as a [[study]] block".into(),
                        ),
                    }
                }
            }
            Some(Item::Table(_)) => self.push(
                study_line,
                "",
                "`study` must be a list of tables, found a single table [study]".into(),
                "write [[study]] with two brackets (one block per study)".into(),
            ),
            Some(other) => self.push(
                study_line,
                "",
                format!("`study` must be a list of tables, found {}", found(other)),
                "write each study as a [[study]] block".into(),
            ),
        }
        let no_studies = match root.get("study") {
            None => true,
            Some(Item::ArrayOfTables(a)) => a.is_empty(),
            Some(Item::Value(Tv::Array(a))) => a.is_empty(),
            Some(_) => false,
        };
        if no_studies {
            self.push(
                study_line,
                "",
                "the manifest has no studies".into(),
                "add at least one [[study]] block with a workload, e.g.\n        [[study]]\n        workload = \"debug.sleep\"\n        threads = [1, 2]"
                    .into(),
            );
        }

        let defaults = (
            repetitions.unwrap_or(5),
            warmup.unwrap_or(1),
            timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
        );
        let mut infos: Vec<StudyInfo> = tables
            .iter()
            .enumerate()
            .map(|(i, (t, header))| self.study(i, *t, *header, defaults))
            .collect();

        // Study names must be unique: they are part of point ids and of the results.
        let mut first: HashMap<&str, usize> = HashMap::new();
        let mut dups = Vec::new();
        for (i, info) in infos.iter().enumerate() {
            if let Some(label) = &info.label {
                if let Some(&j) = first.get(label.as_str()) {
                    dups.push((i, j, label.clone()));
                } else {
                    first.insert(label, i);
                }
            }
        }
        for (i, j, label) in dups {
            let info = &infos[i];
            let line = info.key_lines.get("name").copied().or(info.header);
            let place = info.place.clone();
            self.push(
                line,
                &place,
                format!(
                    "study name `{}` is already used by study {}",
                    shown(&label),
                    j + 1
                ),
                "give each study a unique name = \"...\" (studies of the same workload need one)"
                    .into(),
            );
            infos[i].study = None;
        }

        // The size of the plan.
        let total = infos
            .iter()
            .filter_map(|i| i.study.as_ref())
            .fold(0usize, |acc, s| acc.saturating_add(s.point_count()));
        if total > MAX_POINTS {
            self.push(
                None,
                "",
                format!(
                    "the manifest expands to {total} points, more than the limit of {MAX_POINTS}"
                ),
                "sweep fewer values, or split the experiment into several manifests".into(),
            );
        } else {
            let mut ids = HashMap::new();
            for info in &infos {
                if let Some(study) = &info.study {
                    super::points::check_points(self, study, info, &mut ids);
                }
            }
        }

        if !self.problems.is_empty() {
            return None;
        }
        Some(Manifest {
            path: self.path.to_path_buf(),
            source: self.source.to_string(),
            sha256: sha256_hex(self.source),
            name: name?,
            description: description?,
            repetitions: repetitions?,
            warmup: warmup?,
            timeout_s: timeout_s?,
            wait_idle_s: wait_idle_s?,
            studies: infos
                .into_iter()
                .map(|i| i.study)
                .collect::<Option<Vec<_>>>()?,
            slurm,
            data_dir: self.data_dir(),
        })
    }

    /// An optional whole number key with a default.
    fn opt_count(
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

    // ---------------------------------------------------------------- [[study]]

    fn study(
        &mut self,
        index: usize,
        t: &dyn TableLike,
        header: Option<usize>,
        defaults: (u32, u32, f64),
    ) -> StudyInfo {
        let before = self.problems.len();
        let key_lines: HashMap<String, usize> = t
            .iter()
            .filter_map(|(k, _)| self.key_line(t, k).map(|l| (k.to_string(), l)))
            .collect();
        let kl = |k: &str| key_lines.get(k).copied();
        let name_raw = t.get("name").and_then(|i| i.as_str());
        let workload_raw = t.get("workload").and_then(|i| i.as_str());
        let label = name_raw.or(workload_raw).map(str::to_string);
        let place = match &label {
            Some(l) => format!("study {} ({})", index + 1, shown(l)),
            None => format!("study {}", index + 1),
        };

        let name = match t.get("name") {
            Some(item) => {
                self.read_name(&place, "name", item, kl("name"), "name = \"triad-threads\"")
            }
            None => None,
        };

        // The workload.
        let workload: Option<&'static dyn Workload> = match t.get("workload") {
            None => {
                self.push(
                    header,
                    &place,
                    "missing `workload`".into(),
                    "add workload = \"...\" with a name from `scalelab list`".into(),
                );
                None
            }
            Some(item) => match self.read_str(
                &place,
                "workload",
                item,
                kl("workload"),
                "workload = \"stream.triad\"",
            ) {
                None => None,
                Some(w) => {
                    let found = self.ctx.registry.iter().copied().find(|x| x.name() == w);
                    let gated = crate::workload::FEATURE_GATED
                        .iter()
                        .find(|(name, _)| *name == w);
                    if let (None, Some((_, feature))) = (found, gated) {
                        let install = match *feature {
                            "mpi" => " (install OpenMPI: scripts/install-deps.sh --mpi)",
                            _ => "",
                        };
                        self.push(
                            kl("workload"),
                            &place,
                            format!("workload `{w}` is not in this build of scalelab"),
                            format!("build with `--features {feature}`{install}"),
                        );
                    } else if found.is_none() {
                        let names: Vec<&str> = self.ctx.registry.iter().map(|x| x.name()).collect();
                        let fix = match did_you_mean(&suggest(w, names.iter().copied())) {
                            Some(d) => format!("{d} (see `scalelab list` for every workload)"),
                            None => {
                                format!("choose one of: {} (see `scalelab list`)", names.join(", "))
                            }
                        };
                        self.push(
                            kl("workload"),
                            &place,
                            format!("unknown workload `{}`", shown(w)),
                            fix,
                        );
                    }
                    found
                }
            },
        };

        // Axes, in manifest order.
        let mut axes: Vec<Axis> = Vec::new();
        let mut present: Vec<&str> = Vec::new();
        for (key, item) in t.iter() {
            if STUDY_KEYS.contains(&key) {
                continue;
            }
            let line = kl(key);
            if RESOURCE_AXES.contains(&key) {
                present.push(key);
                if let Some(values) = self.axis(&place, key, item, line, AxisKind::Resource) {
                    axes.push(Axis {
                        name: key.to_string(),
                        values,
                    });
                }
                continue;
            }
            let Some(w) = workload else { continue };
            if let Some(spec) = w.params().iter().find(|p| p.name == key) {
                present.push(key);
                if let (Some(table), "hyper" | "grid") = (item.as_table_like(), key) {
                    if let Some(value) = self.hyper_table(&place, key, table, t, w) {
                        axes.push(Axis {
                            name: key.to_string(),
                            values: vec![value],
                        });
                    }
                    continue;
                }
                if let Some(values) = self.axis(
                    &place,
                    key,
                    item,
                    line,
                    AxisKind::Param(w.name(), spec.kind),
                ) {
                    axes.push(Axis {
                        name: key.to_string(),
                        values,
                    });
                }
                continue;
            }
            let takes: Vec<&str> = RESOURCE_AXES
                .iter()
                .copied()
                .chain(w.params().iter().map(|p| p.name))
                .collect();
            let candidates = takes.iter().copied().chain(STUDY_KEYS.iter().copied());
            let hint = match did_you_mean(&suggest(key, candidates)) {
                Some(d) => format!("{d} "),
                None => "remove it; ".into(),
            };
            self.push(
                line,
                &place,
                format!("unknown key `{}`", shown(key)),
                format!(
                    "{hint}{} takes: {} (see `scalelab list`)",
                    w.name(),
                    takes.join(", ")
                ),
            );
        }

        // Settings.
        let scaling = match t.get("scaling") {
            None => Some(Scaling::Strong),
            Some(item) => match self.read_str(
                &place,
                "scaling",
                item,
                kl("scaling"),
                "scaling = \"strong\"",
            ) {
                Some("strong") => Some(Scaling::Strong),
                Some("weak") => Some(Scaling::Weak),
                Some(other) => {
                    let hint = did_you_mean(&suggest(other, ["strong", "weak"]))
                        .map(|d| format!("{d} "))
                        .unwrap_or_default();
                    self.push(
                        kl("scaling"),
                        &place,
                        format!("`scaling` must be \"strong\" or \"weak\", found {}", quote(other)),
                        format!("{hint}strong keeps the problem size fixed, weak grows it with the workers"),
                    );
                    None
                }
                None => None,
            },
        };
        let weak_rule = match t.get("weak") {
            None => Some(workload.map(|w| w.weak_rule()).unwrap_or(WeakRule::Linear)),
            Some(item) => {
                match self.read_str(&place, "weak", item, kl("weak"), "weak = \"linear\"") {
                    Some(s) => {
                        let rule = WeakRule::parse(s);
                        if rule.is_none() {
                            let hint = did_you_mean(&suggest(s, ["linear", "sqrt", "cbrt"]))
                                .map(|d| format!("{d} "))
                                .unwrap_or_default();
                            self.push(
                                kl("weak"),
                                &place,
                                format!(
                                    "`weak` must be \"linear\", \"sqrt\" or \"cbrt\", found {}",
                                    quote(s)
                                ),
                                format!("{hint}the size grows as p, √p or ∛p with the workers p"),
                            );
                        }
                        rule
                    }
                    None => None,
                }
            }
        };
        let repetitions =
            self.opt_count(t, &place, "repetitions", 1, defaults.0, "repetitions = 5");
        let warmup = self.opt_count(t, &place, "warmup", 0, defaults.1, "warmup = 1");
        let timeout_s = match t.get("timeout") {
            Some(item) => self.read_timeout(&place, item, kl("timeout")),
            None => Some(defaults.2),
        };
        let oversubscribe = match t.get("oversubscribe") {
            Some(item) => self.read_bool(&place, "oversubscribe", item, kl("oversubscribe")),
            None => Some(false),
        };
        let zip = match t.get("zip") {
            Some(item) => self.zip(&place, item, kl("zip"), &axes, &present, workload),
            None => Some(Vec::new()),
        };

        // Rules across keys.
        let get = |name: &str| axes.iter().find(|a| a.name == name);
        let max_of = |name: &str| {
            get(name).map(|a| {
                a.values
                    .iter()
                    .filter_map(|v| {
                        if let Value::Int(i) = v {
                            Some(*i)
                        } else {
                            None
                        }
                    })
                    .max()
            })
        };
        if let (Some(Scaling::Weak), Some(w)) = (scaling, workload) {
            if !w.params().iter().any(|p| p.name == "size") {
                self.push(
                    kl("scaling"),
                    &place,
                    format!(
                        "scaling = \"weak\" needs a workload with a `size` parameter; {} has none",
                        w.name()
                    ),
                    "use scaling = \"strong\" (the default)".into(),
                );
            }
        }
        if scaling == Some(Scaling::Weak) {
            let swept = ["threads", "ranks", "gpus"]
                .iter()
                .any(|n| get(n).is_some_and(|a| a.values.len() > 1));
            let broken = ["threads", "ranks", "gpus"]
                .iter()
                .any(|n| present.contains(n) && get(n).is_none());
            if !swept && !broken {
                self.push(
                    kl("scaling"),
                    &place,
                    "scaling = \"weak\" but no parallel axis is swept (threads, ranks and gpus have one value each)".into(),
                    "sweep threads (e.g. threads = [1, 2]) or use scaling = \"strong\"".into(),
                );
            }
        }
        if let Some(w) = workload {
            let mpi_fix =
                "build with `--features mpi` (install OpenMPI: scripts/install-deps.sh --mpi)";
            let cuda_fix = "build with `--features cuda`";
            let backend = w.backend();
            if backend == Backend::Mpi && !self.ctx.mpi {
                self.push(
                    kl("workload"),
                    &place,
                    format!(
                        "workload `{}` runs on MPI, which this build does not include",
                        w.name()
                    ),
                    mpi_fix.into(),
                );
            }
            if backend == Backend::Cuda && !self.ctx.cuda {
                self.push(
                    kl("workload"),
                    &place,
                    format!(
                        "workload `{}` runs on CUDA, which this build does not include",
                        w.name()
                    ),
                    cuda_fix.into(),
                );
            }
            if let Some(Some(r)) = max_of("ranks").filter(|r| r.is_some_and(|r| r > 1)) {
                if !self.ctx.mpi && backend != Backend::Mpi {
                    self.push(
                        kl("ranks"),
                        &place,
                        format!("ranks = {r} needs MPI, which this build does not include"),
                        mpi_fix.into(),
                    );
                } else if backend == Backend::Rayon {
                    self.push(
                        kl("ranks"),
                        &place,
                        format!("ranks = {r} but {} is a {} workload that does not use MPI", w.name(), backend.as_str()),
                        "remove `ranks` (sweep `threads` for rayon workers), or choose an MPI workload (see `scalelab list`)".into(),
                    );
                }
            }
            if let Some(Some(g)) = max_of("gpus").filter(|g| g.is_some_and(|g| g > 0)) {
                if !self.ctx.cuda && backend != Backend::Cuda {
                    self.push(
                        kl("gpus"),
                        &place,
                        format!("gpus = {g} needs CUDA, which this build does not include"),
                        cuda_fix.into(),
                    );
                } else if matches!(backend, Backend::Rayon | Backend::Mpi | Backend::Io) {
                    self.push(
                        kl("gpus"),
                        &place,
                        format!(
                            "gpus = {g} but {} is a {} workload that does not use GPUs",
                            w.name(),
                            backend.as_str()
                        ),
                        "remove `gpus`, or choose a CUDA workload (see `scalelab list`)".into(),
                    );
                }
            }
            for spec in w.params() {
                if let Err(e) = spec.default_value() {
                    self.push(
                        header,
                        &place,
                        format!("the registry default of `{}` is invalid: {e}", spec.name),
                        format!(
                            "set {} in the study (and report this bug in {})",
                            spec.name,
                            w.name()
                        ),
                    );
                }
            }
        }
        if present.contains(&"nodes") && present.contains(&"ranks_per_node") {
            self.push(
                kl("ranks_per_node"),
                &place,
                "give either `nodes` or `ranks_per_node`, not both".into(),
                "ranks_per_node sets nodes = ceil(ranks / ranks_per_node); remove one of the two keys".into(),
            );
        }

        let study = match (
            workload,
            scaling,
            weak_rule,
            repetitions,
            warmup,
            timeout_s,
            oversubscribe,
            zip,
        ) {
            (
                Some(w),
                Some(scaling),
                Some(weak_rule),
                Some(repetitions),
                Some(warmup),
                Some(timeout_s),
                Some(o),
                Some(zip),
            ) if self.problems.len() == before && name.is_some() == t.contains_key("name") => {
                let study = Study {
                    index,
                    name: name.unwrap_or_else(|| w.name().to_string()),
                    workload: w,
                    scaling,
                    axes,
                    zip,
                    weak_rule,
                    repetitions,
                    warmup,
                    timeout_s,
                    oversubscribe: o,
                };
                if study.point_count() > MAX_POINTS {
                    self.push(
                        header,
                        &place,
                        format!(
                            "the study expands to {} points, more than the limit of {MAX_POINTS}",
                            study.point_count()
                        ),
                        "sweep fewer values, or zip axes that move together".into(),
                    );
                    None
                } else {
                    Some(study)
                }
            }
            _ => None,
        };
        StudyInfo {
            label,
            place,
            header,
            key_lines,
            study,
        }
    }

    /// The values of one axis: a scalar or a non-empty list, each value checked for its kind.
    fn axis(
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

    /// `zip = ["a", "b"]` or `zip = [["a", "b"], ["c", "d"]]`.
    fn zip(
        &mut self,
        place: &str,
        item: &Item,
        line: Option<usize>,
        axes: &[Axis],
        present: &[&str],
        workload: Option<&'static dyn Workload>,
    ) -> Option<Vec<Vec<String>>> {
        let fix_shape = "write e.g. zip = [\"threads\", \"size\"], or a list of such groups: zip = [[\"a\", \"b\"], [\"c\", \"d\"]]";
        let Some(arr) = item.as_array() else {
            self.push(
                line,
                place,
                format!("`zip` must be a list of axis names, found {}", found(item)),
                fix_shape.into(),
            );
            return None;
        };
        let groups: Vec<Vec<&str>> = if arr.iter().all(|v| v.as_str().is_some()) {
            if arr.is_empty() {
                Vec::new()
            } else {
                vec![arr.iter().filter_map(|v| v.as_str()).collect()]
            }
        } else if arr.iter().all(|v| {
            v.as_array()
                .is_some_and(|a| a.iter().all(|x| x.as_str().is_some()))
        }) {
            arr.iter()
                .map(|v| {
                    v.as_array()
                        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
                        .unwrap_or_default()
                })
                .collect()
        } else {
            self.push(
                line,
                place,
                "`zip` must be a list of axis names, or a list of such lists".into(),
                fix_shape.into(),
            );
            return None;
        };
        let before = self.problems.len();
        let mut used: HashSet<&str> = HashSet::new();
        for group in &groups {
            if group.len() < 2 {
                self.push(
                    line,
                    place,
                    format!("zip group [{}] names fewer than two axes", group.iter().map(|g| quote(g)).collect::<Vec<_>>().join(", ")),
                    "zip pairs two or more axes that move together, e.g. zip = [\"threads\", \"size\"]; or remove it".into(),
                );
                continue;
            }
            let mut lengths: Vec<(&str, usize)> = Vec::new();
            for &name in group {
                if !used.insert(name) {
                    self.push(
                        line,
                        place,
                        format!("`{}` appears more than once in zip", shown(name)),
                        "each axis may be in one zip group, once".into(),
                    );
                    continue;
                }
                if let Some(axis) = axes.iter().find(|a| a.name == name) {
                    lengths.push((name, axis.values.len()));
                } else if !present.contains(&name) {
                    let known = RESOURCE_AXES.contains(&name)
                        || workload.is_some_and(|w| w.params().iter().any(|p| p.name == name));
                    let fix = if known {
                        format!("set `{name}` in the study (e.g. {name} = [...]) to zip it")
                    } else {
                        let names: Vec<&str> = present.to_vec();
                        match did_you_mean(&suggest(name, names.iter().copied())) {
                            Some(d) => format!("{d} the study's axes are: {}", names.join(", ")),
                            None if names.is_empty() => {
                                "the study sets no axes to zip; remove `zip`".into()
                            }
                            None => format!("zip may name the study's axes: {}", names.join(", ")),
                        }
                    };
                    self.push(
                        line,
                        place,
                        format!(
                            "zip names `{}`, which is not an axis of this study",
                            shown(name)
                        ),
                        fix,
                    );
                }
            }
            if lengths.windows(2).any(|w| w[0].1 != w[1].1) {
                let list: Vec<String> = lengths
                    .iter()
                    .map(|(n, l)| format!("{n} has {l} value{}", if *l == 1 { "" } else { "s" }))
                    .collect();
                self.push(
                    line,
                    place,
                    format!("zipped axes have different lengths: {}", list.join(", ")),
                    "give zipped axes the same number of values, or remove them from `zip` to cross them".into(),
                );
            }
        }
        (self.problems.len() == before).then(|| {
            groups
                .into_iter()
                .map(|g| g.into_iter().map(str::to_string).collect())
                .collect()
        })
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

/// How the values of an axis are read.
#[derive(Clone, Copy)]
enum AxisKind {
    /// `threads`, `ranks`, `ranks_per_node`, `nodes`, `gpus`.
    Resource,
    /// A workload parameter: (workload name, kind).
    Param(&'static str, ParamKind),
}

impl AxisKind {
    fn expected(self) -> &'static str {
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

    fn example(self, key: &str) -> String {
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
    fn convert(self, key: &str, v: &Tv) -> Result<Value, (String, String)> {
        let type_error = || {
            (
                format!(
                    "`{key}` must be {}, found {}",
                    self.expected(),
                    found_value(v)
                ),
                format!("write e.g. {}", self.example(key)),
            )
        };
        match self {
            AxisKind::Resource => {
                let Some(i) = v.as_integer() else {
                    return Err(type_error());
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
            AxisKind::Param(_, ParamKind::Size) => {
                let text = match v {
                    Tv::Integer(i) => i.value().to_string(),
                    Tv::String(s) => s.value().to_string(),
                    Tv::Float(f) if f.value().is_finite() => format!("{}", f.value()),
                    Tv::Float(f) => format!("{:?}", f.value()),
                    _ => return Err(type_error()),
                };
                Size::parse(&text).map(Value::Size).map_err(|m| {
                    (
                        format!("`{key}`: {m}"),
                        "write a count like 4096 or \"10M\", or bytes like \"64MiB\"".to_string(),
                    )
                })
            }
            AxisKind::Param(_, ParamKind::Int) => {
                let Some(i) = v.as_integer() else {
                    return Err(type_error());
                };
                if i < 1 {
                    return Err((
                        format!("`{key}` must be a positive whole number, found {i}"),
                        format!("write e.g. {}", self.example(key)),
                    ));
                }
                Ok(Value::Int(i as u64))
            }
            AxisKind::Param(_, ParamKind::Float) => {
                let x = match v {
                    Tv::Integer(i) => *i.value() as f64,
                    Tv::Float(f) => *f.value(),
                    _ => return Err(type_error()),
                };
                if !x.is_finite() {
                    return Err((
                        format!("`{key}` must be a finite number, found {x}"),
                        format!("write e.g. {}", self.example(key)),
                    ));
                }
                Ok(Value::Float(x))
            }
            AxisKind::Param(workload, ParamKind::Choice(choices)) => {
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
            AxisKind::Param(_, ParamKind::Text) => match v.as_str() {
                Some(s) => Ok(Value::Text(s.to_string())),
                None => Err(type_error()),
            },
        }
    }
}

/// Parse a time limit: seconds (`"90"`, `"1.5"`), or a number with a unit: `"90s"`, `"10m"`,
/// `"10 min"`, `"1h"`, `"1.5 hours"`, `"2d"` (s, m, h, d, or the words). The error says which
/// forms are accepted.
/// How to write `wait_idle`.
const WAIT_IDLE_FIX: &str = "write the longest wait before each point in seconds or as a duration, e.g. wait_idle = 60 or wait_idle = \"2m\" (true: 120 s, as --wait-idle; false: no waiting)";

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

/// What makes two values of one axis the same point: their text, except that floats equal under
/// `==` are one value (`0.0` and `-0.0`, written "0" and "-0"). Sizes already print one way
/// (`"1KiB"` and `"1024B"` are both `1KiB`).
fn same_value_key(v: &Value) -> String {
    match v {
        Value::Float(x) if *x == 0.0 => "0".into(),
        other => other.to_string(),
    }
}

/// Longest study or experiment name (names become folder names, which file systems cap at 255
/// bytes, with room for a suffix).
const MAX_NAME_CHARS: usize = 200;

/// `[A-Za-z0-9_.-]+`, and not `.` or `..` (names become folder names).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_CHARS
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The closest of `candidates` to `name` ([`nearest`]), keeping only those about as close as the best.
pub(super) fn suggest<'c>(
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
pub(super) fn did_you_mean(candidates: &[&str]) -> Option<String> {
    let quoted: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
    match quoted.as_slice() {
        [] => None,
        [a] => Some(format!("did you mean {a}?")),
        [init @ .., last] => Some(format!("did you mean {} or {last}?", init.join(", "))),
    }
}

/// What a TOML item is, for "found ..." in messages.
pub(super) fn found(item: &Item) -> String {
    match item {
        Item::None => "nothing".into(),
        Item::Value(v) => found_value(v),
        Item::Table(_) => "a table".into(),
        Item::ArrayOfTables(_) => "a list of tables".into(),
    }
}

fn found_value(v: &Tv) -> String {
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
pub(super) fn quote(s: &str) -> String {
    format!("\"{}\"", shown(s))
}

/// A user string escaped and shortened for a one-line message.
pub(super) fn shown(s: &str) -> String {
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
fn quote_if_text(s: &str) -> String {
    if s.parse::<f64>().is_ok() {
        s.to_string()
    } else {
        quote(s)
    }
}

//! The top level of a manifest: its keys and settings, the list of studies, the rules across
//! studies (unique names, the size of the plan), and the assembled [`Manifest`].

use std::collections::HashMap;

use toml_edit::{ImDocument, Item, TableLike, Value as Tv};

use super::read::wait_idle_seconds;
use super::read::WAIT_IDLE_FIX;
use super::study::Defaults;
use super::text::{did_you_mean, found, found_value, shown, suggest};
use super::{Checker, StudyInfo, DEFAULT_TIMEOUT_S};
use crate::manifest::{
    expand_study, sha256_hex, Manifest, Point, RESOURCE_AXES, STUDY_KEYS, TOP_KEYS,
};

/// The top-level settings (each `None` when its key is invalid).
struct TopSettings {
    name: Option<String>,
    description: Option<String>,
    repetitions: Option<u32>,
    warmup: Option<u32>,
    timeout_s: Option<f64>,
    wait_idle_s: Option<Option<u64>>,
}

impl Checker<'_> {
    /// Check the whole document, in order: unknown top-level keys, the top-level settings,
    /// `[slurm]`, the studies, the rules across studies and the per-point checks. The
    /// [`Manifest`] when no problem was found.
    pub(in crate::manifest) fn document(&mut self, doc: &ImDocument<&str>) -> Option<Manifest> {
        let root = doc.as_table();
        self.unknown_top_keys(root);
        let top = self.top_settings(root);
        let slurm = root.get("slurm").and_then(|item| self.slurm(root, item));
        let tables = self.study_tables(root);
        let defaults = Defaults {
            repetitions: top.repetitions.unwrap_or(5),
            warmup: top.warmup.unwrap_or(1),
            timeout_s: top.timeout_s.unwrap_or(DEFAULT_TIMEOUT_S),
        };
        let mut infos: Vec<StudyInfo> = tables
            .iter()
            .enumerate()
            .map(|(i, (t, header))| self.study(i, *t, *header, defaults))
            .collect();
        self.unique_study_names(&mut infos);
        let points = self.plan_size_and_points(&infos);

        if !self.problems.is_empty() {
            return None;
        }
        Some(Manifest {
            path: self.path.to_path_buf(),
            source: self.source.to_string(),
            sha256: sha256_hex(self.source),
            name: top.name?,
            description: top.description?,
            repetitions: top.repetitions?,
            warmup: top.warmup?,
            timeout_s: top.timeout_s?,
            wait_idle_s: top.wait_idle_s?,
            studies: infos
                .into_iter()
                .map(|i| i.study)
                .collect::<Option<Vec<_>>>()?,
            points,
            slurm,
            data_dir: self.data_dir(),
        })
    }

    /// Keys the top level does not take, with the nearest known key or where they belong.
    fn unknown_top_keys(&mut self, root: &dyn TableLike) {
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
    }

    /// `name`, `description`, `repetitions`, `warmup`, `timeout` and `wait_idle`.
    fn top_settings(&mut self, root: &dyn TableLike) -> TopSettings {
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
        TopSettings {
            name,
            description,
            repetitions,
            warmup,
            timeout_s,
            wait_idle_s,
        }
    }

    /// The study tables with the line of each: `[[study]]` blocks, or a list of inline tables.
    /// Anything else, or no study at all, is a problem.
    fn study_tables<'d>(
        &mut self,
        root: &'d dyn TableLike,
    ) -> Vec<(&'d dyn TableLike, Option<usize>)> {
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

        tables
    }

    /// Study names must be unique: they are part of point ids and of the results. A study that
    /// repeats an earlier name is reported and dropped.
    fn unique_study_names(&mut self, infos: &mut [StudyInfo]) {
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
    }

    /// The plan must stay within [`crate::manifest::MAX_POINTS`]; below it, every valid study is
    /// expanded, once, and every point checked ([`crate::manifest::points`]). The points, which
    /// the [`Manifest`] keeps for [`crate::plan::expand`].
    fn plan_size_and_points(&mut self, infos: &[StudyInfo]) -> Vec<Point> {
        let total =
            match crate::manifest::points::plan_size(infos.iter().filter_map(|i| i.study.as_ref()))
            {
                Err(problem) => {
                    self.problems.push(problem);
                    return Vec::new();
                }
                Ok(total) => total,
            };
        let mut points = Vec::with_capacity(total);
        let mut ids = HashMap::new();
        for info in infos {
            if let Some(study) = &info.study {
                let start = points.len();
                expand_study(study, self.ctx.node.cores, &mut points);
                let mine = &points[start..];
                crate::manifest::points::check_points(self, study, info, mine, &mut ids);
            }
        }
        points
    }
}

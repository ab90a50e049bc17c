//! One `[[study]]` block: its workload, axes, settings and the rules across its keys.
//!
//! [`Checker::study`] reads the block in a fixed order (name, workload, axes, settings, zip, the
//! rules across keys) so that problems on one line keep a stable order, then assembles the
//! [`Study`] only when every part is valid.

use std::collections::HashMap;

use toml_edit::TableLike;

use super::axis::AxisKind;
use super::text::{did_you_mean, quote, shown, suggest};
use super::{Checker, StudyInfo};
use crate::manifest::{Axis, Scaling, Study, MAX_POINTS, RESOURCE_AXES, STUDY_KEYS};
use crate::value::Value;
use crate::workload::{Backend, WeakRule, Workload};

/// One study block being checked: its table and where its problems are reported.
struct Block<'t> {
    table: &'t dyn TableLike,
    /// `study 2 (stream.triad)`.
    place: String,
    /// Line of the `[[study]]` header.
    header: Option<usize>,
    /// Line of each key of the study.
    key_lines: HashMap<String, usize>,
}

impl Block<'_> {
    fn line(&self, key: &str) -> Option<usize> {
        self.key_lines.get(key).copied()
    }
}

/// The settings of a study (each `None` when its key is invalid).
struct Settings {
    scaling: Option<Scaling>,
    weak_rule: Option<WeakRule>,
    repetitions: Option<u32>,
    warmup: Option<u32>,
    timeout_s: Option<f64>,
    oversubscribe: Option<bool>,
}

/// The manifest-wide values a study inherits unless it sets its own.
#[derive(Clone, Copy)]
pub(in crate::manifest) struct Defaults {
    pub(in crate::manifest) repetitions: u32,
    pub(in crate::manifest) warmup: u32,
    pub(in crate::manifest) timeout_s: f64,
}

impl Checker<'_> {
    /// Check the study block `t` (the `index`-th, 0-based) and return what was learned about it,
    /// with the checked [`Study`] when all its keys are valid.
    pub(in crate::manifest) fn study(
        &mut self,
        index: usize,
        t: &dyn TableLike,
        header: Option<usize>,
        defaults: Defaults,
    ) -> StudyInfo {
        let before = self.problems.len();
        let key_lines: HashMap<String, usize> = t
            .iter()
            .filter_map(|(k, _)| self.key_line(t, k).map(|l| (k.to_string(), l)))
            .collect();
        let name_raw = t.get("name").and_then(|i| i.as_str());
        let workload_raw = t.get("workload").and_then(|i| i.as_str());
        let label = name_raw.or(workload_raw).map(str::to_string);
        let place = match &label {
            Some(l) => format!("study {} ({})", index + 1, shown(l)),
            None => format!("study {}", index + 1),
        };
        let b = Block {
            table: t,
            place,
            header,
            key_lines,
        };

        let name = match t.get("name") {
            Some(item) => self.read_name(
                &b.place,
                "name",
                item,
                b.line("name"),
                "name = \"triad-threads\"",
            ),
            None => None,
        };
        let workload = self.study_workload(&b);
        let (axes, present) = self.study_axes(&b, workload);
        let settings = self.study_settings(&b, workload, defaults);
        let zip = match t.get("zip") {
            Some(item) => self.zip(&b.place, item, b.line("zip"), &axes, &present, workload),
            None => Some(Vec::new()),
        };
        self.study_rules(&b, workload, settings.scaling, &axes, &present);

        let clean = self.problems.len() == before && name.is_some() == t.contains_key("name");
        let study = if clean {
            self.assemble(index, &b, name, workload, axes, settings, zip)
        } else {
            None
        };
        StudyInfo {
            label,
            place: b.place,
            header,
            key_lines: b.key_lines,
            study,
        }
    }

    /// The study as a [`Study`], once every part of it is valid, unless it expands to more than
    /// [`MAX_POINTS`] points.
    #[allow(clippy::too_many_arguments)]
    fn assemble(
        &mut self,
        index: usize,
        b: &Block<'_>,
        name: Option<String>,
        workload: Option<&'static dyn Workload>,
        axes: Vec<Axis>,
        s: Settings,
        zip: Option<Vec<Vec<String>>>,
    ) -> Option<Study> {
        let w = workload?;
        let study = Study {
            index,
            name: name.unwrap_or_else(|| w.name().to_string()),
            workload: w,
            scaling: s.scaling?,
            axes,
            zip: zip?,
            weak_rule: s.weak_rule?,
            repetitions: s.repetitions?,
            warmup: s.warmup?,
            timeout_s: s.timeout_s?,
            oversubscribe: s.oversubscribe?,
        };
        let count = study.point_count();
        if count > MAX_POINTS {
            self.push(
                b.header,
                &b.place,
                format!("the study expands to {count} points, more than the limit of {MAX_POINTS}"),
                "sweep fewer values, or zip axes that move together".into(),
            );
            return None;
        }
        Some(study)
    }

    /// The study's `workload`: registered, or a problem saying it is missing, unknown (with the
    /// nearest names) or left out of this build (with the feature to build with).
    fn study_workload(&mut self, b: &Block<'_>) -> Option<&'static dyn Workload> {
        let Some(item) = b.table.get("workload") else {
            self.push(
                b.header,
                &b.place,
                "missing `workload`".into(),
                "add workload = \"...\" with a name from `scalelab list`".into(),
            );
            return None;
        };
        let line = b.line("workload");
        let w = self.read_str(
            &b.place,
            "workload",
            item,
            line,
            "workload = \"stream.triad\"",
        )?;
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
                line,
                &b.place,
                format!("workload `{w}` is not in this build of scalelab"),
                format!("build with `--features {feature}`{install}"),
            );
        } else if found.is_none() {
            let names: Vec<&str> = self.ctx.registry.iter().map(|x| x.name()).collect();
            let fix = match did_you_mean(&suggest(w, names.iter().copied())) {
                Some(d) => format!("{d} (see `scalelab list` for every workload)"),
                None => format!("choose one of: {} (see `scalelab list`)", names.join(", ")),
            };
            self.push(
                line,
                &b.place,
                format!("unknown workload `{}`", shown(w)),
                fix,
            );
        }
        found
    }

    /// The valid axes of the study in manifest order, and the names of every axis key present
    /// (valid or not). Keys that are neither settings nor axes are reported as unknown; without a
    /// known workload only the resource axes are read.
    fn study_axes<'t>(
        &mut self,
        b: &Block<'t>,
        workload: Option<&'static dyn Workload>,
    ) -> (Vec<Axis>, Vec<&'t str>) {
        let t = b.table;
        let mut axes: Vec<Axis> = Vec::new();
        let mut present: Vec<&str> = Vec::new();
        for (key, item) in t.iter() {
            if STUDY_KEYS.contains(&key) {
                continue;
            }
            let line = b.line(key);
            if RESOURCE_AXES.contains(&key) {
                present.push(key);
                if let Some(values) = self.axis(&b.place, key, item, line, AxisKind::Resource) {
                    axes.push(Axis {
                        name: key.to_string(),
                        values,
                    });
                }
                continue;
            }
            let Some(w) = workload else { continue };
            let Some(spec) = w.params().iter().find(|p| p.name == key) else {
                self.unknown_study_key(b, key, w);
                continue;
            };
            present.push(key);
            let values = match (item.as_table_like(), key) {
                (Some(table), "hyper" | "grid") => self
                    .hyper_table(&b.place, key, table, t, w)
                    .map(|value| vec![value]),
                _ => self.axis(
                    &b.place,
                    key,
                    item,
                    line,
                    AxisKind::Param(w.name(), spec.kind),
                ),
            };
            if let Some(values) = values {
                axes.push(Axis {
                    name: key.to_string(),
                    values,
                });
            }
        }
        (axes, present)
    }

    /// `key` is neither a setting, a resource axis nor a parameter of `w`.
    fn unknown_study_key(&mut self, b: &Block<'_>, key: &str, w: &dyn Workload) {
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
            b.line(key),
            &b.place,
            format!("unknown key `{}`", shown(key)),
            format!(
                "{hint}{} takes: {} (see `scalelab list`)",
                w.name(),
                takes.join(", ")
            ),
        );
    }

    /// `scaling`, `weak`, `repetitions`, `warmup`, `timeout` and `oversubscribe`, in that order.
    fn study_settings(
        &mut self,
        b: &Block<'_>,
        workload: Option<&'static dyn Workload>,
        defaults: Defaults,
    ) -> Settings {
        let t = b.table;
        let place = b.place.as_str();
        let scaling = self.study_scaling(b);
        let weak_rule = match t.get("weak") {
            None => Some(workload.map(|w| w.weak_rule()).unwrap_or(WeakRule::Linear)),
            Some(item) => self.study_weak_rule(b, item),
        };
        let repetitions = self.opt_count(
            t,
            place,
            "repetitions",
            1,
            defaults.repetitions,
            "repetitions = 5",
        );
        let warmup = self.opt_count(t, place, "warmup", 0, defaults.warmup, "warmup = 1");
        let timeout_s = match t.get("timeout") {
            Some(item) => self.read_timeout(place, item, b.line("timeout")),
            None => Some(defaults.timeout_s),
        };
        let oversubscribe = match t.get("oversubscribe") {
            Some(item) => self.read_bool(place, "oversubscribe", item, b.line("oversubscribe")),
            None => Some(false),
        };
        Settings {
            scaling,
            weak_rule,
            repetitions,
            warmup,
            timeout_s,
            oversubscribe,
        }
    }

    /// `scaling = "strong" | "weak"` (strong when unset).
    fn study_scaling(&mut self, b: &Block<'_>) -> Option<Scaling> {
        let Some(item) = b.table.get("scaling") else {
            return Some(Scaling::Strong);
        };
        let line = b.line("scaling");
        match self.read_str(&b.place, "scaling", item, line, "scaling = \"strong\"")? {
            "strong" => Some(Scaling::Strong),
            "weak" => Some(Scaling::Weak),
            other => {
                let hint = did_you_mean(&suggest(other, ["strong", "weak"]))
                    .map(|d| format!("{d} "))
                    .unwrap_or_default();
                self.push(
                    line,
                    &b.place,
                    format!(
                        "`scaling` must be \"strong\" or \"weak\", found {}",
                        quote(other)
                    ),
                    format!(
                        "{hint}strong keeps the problem size fixed, weak grows it with the workers"
                    ),
                );
                None
            }
        }
    }

    /// `weak = "linear" | "sqrt" | "cbrt"`.
    fn study_weak_rule(&mut self, b: &Block<'_>, item: &toml_edit::Item) -> Option<WeakRule> {
        let line = b.line("weak");
        let s = self.read_str(&b.place, "weak", item, line, "weak = \"linear\"")?;
        let rule = WeakRule::parse(s);
        if rule.is_none() {
            let hint = did_you_mean(&suggest(s, ["linear", "sqrt", "cbrt"]))
                .map(|d| format!("{d} "))
                .unwrap_or_default();
            self.push(
                line,
                &b.place,
                format!(
                    "`weak` must be \"linear\", \"sqrt\" or \"cbrt\", found {}",
                    quote(s)
                ),
                format!("{hint}the size grows as p, √p or ∛p with the workers p"),
            );
        }
        rule
    }

    /// The rules across keys: weak scaling needs a `size` and a swept parallel axis, the
    /// workload's backend must be in this build and use the resources asked for, its registry
    /// defaults must parse, and `nodes` and `ranks_per_node` exclude each other.
    fn study_rules(
        &mut self,
        b: &Block<'_>,
        workload: Option<&'static dyn Workload>,
        scaling: Option<Scaling>,
        axes: &[Axis],
        present: &[&str],
    ) {
        if scaling == Some(Scaling::Weak) {
            self.weak_rules(b, workload, axes, present);
        }
        if let Some(w) = workload {
            self.backend_rules(b, w, axes);
            for spec in w.params() {
                if let Err(e) = spec.default_value() {
                    self.push(
                        b.header,
                        &b.place,
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
                b.line("ranks_per_node"),
                &b.place,
                "give either `nodes` or `ranks_per_node`, not both".into(),
                "ranks_per_node sets nodes = ceil(ranks / ranks_per_node); remove one of the two keys".into(),
            );
        }
    }

    /// Weak scaling needs a workload with the parameter it grows (`size`, or the workload's
    /// `weak_param`) and at least one parallel axis swept.
    fn weak_rules(
        &mut self,
        b: &Block<'_>,
        workload: Option<&'static dyn Workload>,
        axes: &[Axis],
        present: &[&str],
    ) {
        if let Some(w) = workload {
            let grown = w.weak_param();
            if !w.params().iter().any(|p| p.name == grown) {
                self.push(
                    b.line("scaling"),
                    &b.place,
                    format!(
                        "scaling = \"weak\" needs a workload with a `{grown}` parameter; {} has none",
                        w.name()
                    ),
                    "use scaling = \"strong\" (the default)".into(),
                );
            }
        }
        let get = |name: &str| axes.iter().find(|a| a.name == name);
        let swept = ["threads", "ranks", "gpus"]
            .iter()
            .any(|n| get(n).is_some_and(|a| a.values.len() > 1));
        let broken = ["threads", "ranks", "gpus"]
            .iter()
            .any(|n| present.contains(n) && get(n).is_none());
        if !swept && !broken {
            self.push(
                b.line("scaling"),
                &b.place,
                "scaling = \"weak\" but no parallel axis is swept (threads, ranks and gpus have one value each)".into(),
                "sweep threads (e.g. threads = [1, 2]) or use scaling = \"strong\"".into(),
            );
        }
    }

    /// MPI and CUDA workloads need their feature in this build; `ranks` above 1 need MPI and an
    /// MPI workload (or a CUDA one), `gpus` above 0 need CUDA and a workload that uses GPUs.
    fn backend_rules(&mut self, b: &Block<'_>, w: &'static dyn Workload, axes: &[Axis]) {
        let max_of = |name: &str| {
            axes.iter().find(|a| a.name == name).map(|a| {
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
        let mpi_fix =
            "build with `--features mpi` (install OpenMPI: scripts/install-deps.sh --mpi)";
        let cuda_fix = "build with `--features cuda`";
        let backend = w.backend();
        if backend == Backend::Mpi && !self.ctx.mpi {
            self.push(
                b.line("workload"),
                &b.place,
                format!(
                    "workload `{}` runs on MPI, which this build does not include",
                    w.name()
                ),
                mpi_fix.into(),
            );
        }
        if backend == Backend::Cuda && !self.ctx.cuda {
            self.push(
                b.line("workload"),
                &b.place,
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
                    b.line("ranks"),
                    &b.place,
                    format!("ranks = {r} needs MPI, which this build does not include"),
                    mpi_fix.into(),
                );
            } else if backend == Backend::Rayon {
                self.push(
                    b.line("ranks"),
                    &b.place,
                    format!("ranks = {r} but {} is a {} workload that does not use MPI", w.name(), backend.as_str()),
                    "remove `ranks` (sweep `threads` for rayon workers), or choose an MPI workload (see `scalelab list`)".into(),
                );
            }
        }
        if let Some(Some(g)) = max_of("gpus").filter(|g| g.is_some_and(|g| g > 0)) {
            if !self.ctx.cuda && backend != Backend::Cuda {
                self.push(
                    b.line("gpus"),
                    &b.place,
                    format!("gpus = {g} needs CUDA, which this build does not include"),
                    cuda_fix.into(),
                );
            } else if matches!(backend, Backend::Rayon | Backend::Mpi | Backend::Io)
                && !w.description().gpus
            {
                self.push(
                    b.line("gpus"),
                    &b.place,
                    format!(
                        "gpus = {g} but {} is a {} workload that does not use GPUs",
                        w.name(),
                        backend.as_str()
                    ),
                    "remove `gpus`, or choose a CUDA workload (see `scalelab list`)".into(),
                );
            }
        }
    }
}

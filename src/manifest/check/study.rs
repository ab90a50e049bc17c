//! One `[[study]]` block: its workload, axes, settings and the rules across its keys.

use std::collections::HashMap;

use toml_edit::TableLike;

use super::axis::AxisKind;
use super::text::{did_you_mean, quote, shown, suggest};
use super::{Checker, StudyInfo};
use crate::manifest::{Axis, Study, MAX_POINTS, RESOURCE_AXES, STUDY_KEYS};
use crate::plan::Scaling;
use crate::value::Value;
use crate::workload::{Backend, WeakRule, Workload};

impl Checker<'_> {
    pub(in crate::manifest) fn study(
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
                if let Err(e) = Value::parse_default(spec) {
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
}

//! `zip`: groups of axes that move together instead of being crossed.

use std::collections::HashSet;

use toml_edit::Item;

use super::text::{did_you_mean, found, quote, shown, suggest};
use super::Checker;
use crate::manifest::{Axis, RESOURCE_AXES};
use crate::workload::Workload;

impl Checker<'_> {
    /// `zip = ["a", "b"]` or `zip = [["a", "b"], ["c", "d"]]`.
    pub(in crate::manifest) fn zip(
        &mut self,
        place: &str,
        item: &Item,
        line: Option<usize>,
        axes: &[Axis],
        present: &[&str],
        workload: Option<&'static dyn Workload>,
    ) -> Option<Vec<Vec<String>>> {
        let groups = self.zip_shape(place, item, line)?;
        let before = self.problems.len();
        let mut used: HashSet<&str> = HashSet::new();
        for group in &groups {
            self.zip_group(place, line, group, &mut used, axes, present, workload);
        }
        (self.problems.len() == before).then(|| {
            groups
                .into_iter()
                .map(|g| g.into_iter().map(str::to_string).collect())
                .collect()
        })
    }

    /// The groups of `zip`: one list of names, or a list of such lists.
    fn zip_shape<'i>(
        &mut self,
        place: &str,
        item: &'i Item,
        line: Option<usize>,
    ) -> Option<Vec<Vec<&'i str>>> {
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
        let groups = if arr.iter().all(|v| v.as_str().is_some()) {
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
        Some(groups)
    }

    /// One zip group: at least two axes, each named once in all of `zip`, each an axis of the
    /// study, all with the same number of values.
    #[allow(clippy::too_many_arguments)]
    fn zip_group<'g>(
        &mut self,
        place: &str,
        line: Option<usize>,
        group: &[&'g str],
        used: &mut HashSet<&'g str>,
        axes: &[Axis],
        present: &[&str],
        workload: Option<&'static dyn Workload>,
    ) {
        if group.len() < 2 {
            self.push(
                line,
                place,
                format!("zip group [{}] names fewer than two axes", group.iter().map(|g| quote(g)).collect::<Vec<_>>().join(", ")),
                "zip pairs two or more axes that move together, e.g. zip = [\"threads\", \"size\"]; or remove it".into(),
            );
            return;
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
                .map(|(n, l)| format!("{n} has {l} value{}", crate::units::plural(*l)))
                .collect();
            self.push(
                line,
                place,
                format!("zipped axes have different lengths: {}", list.join(", ")),
                "give zipped axes the same number of values, or remove them from `zip` to cross them".into(),
            );
        }
    }
}

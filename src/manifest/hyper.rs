//! Hyperparameters and grids written as TOML tables:
//!
//! ```toml
//! [[study]]
//! workload = "cv.nested"
//! estimator = "random_forest"
//!
//! [study.hyper]          # one value each
//! max_features = "sqrt"
//!
//! [study.grid]           # the candidates: a list per hyperparameter
//! max_depth = [4, 8, 16]
//! min_samples_leaf = [1, 5]
//! ```
//!
//! Each hyperparameter is checked on its own line against the estimator's table (name, with "did
//! you mean"; type and range), and every mistake is reported at once, where the string forms
//! `hyper = "max_depth=8"` and `grid = "max_depth=4,8"` (still accepted) fail one at a time when
//! the plan checks its points. A valid table becomes the same canonical string the string form
//! would give, so the points, their ids and the records do not depend on which form was written.

use toml_edit::{Item, TableLike, Value as Tv};

use scalelab_ml::estimator::{Hp, HyperParams};
use scalelab_ml::estimators;
use scalelab_ml::search::grid::{format_value, parse_value};

use super::check::{did_you_mean, suggest, Checker};
use crate::value::Value;
use crate::workload::Workload;

/// Which table: `hyper` (one value per hyperparameter) or `grid` (a list of candidates).
#[derive(Clone, Copy, PartialEq)]
enum Form {
    Hyper,
    Grid,
}

impl Checker<'_> {
    /// The `hyper` or `grid` key of a study written as a table: its canonical string value, or
    /// `None` after pushing every problem found.
    pub(super) fn hyper_table(
        &mut self,
        place: &str,
        key: &str,
        table: &dyn TableLike,
        study: &dyn TableLike,
        workload: &dyn Workload,
    ) -> Option<Value> {
        let form = if key == "grid" {
            Form::Grid
        } else {
            Form::Hyper
        };
        let names = estimator_names(study, workload);
        let together = single_values(table, form);
        let before = self.problems.len();
        let mut parts = Vec::new();
        for (name, item) in table.iter() {
            let line = self.key_line(table, name);
            let here = format!("{key}.{name}");
            // The name, against every estimator the study names (an unknown estimator is
            // reported by its own key).
            for est in &names {
                let Some(specs) = estimators::specs(est) else {
                    continue;
                };
                if !specs.iter().any(|s| s.name == name) {
                    let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
                    let hint = did_you_mean(&suggest(name, known.iter().copied()))
                        .map(|d| format!("{d} "))
                        .unwrap_or_else(|| "remove it; ".into());
                    let takes = if known.is_empty() {
                        format!("{est} takes no hyperparameters")
                    } else {
                        format!("{est} takes: {}", known.join(", "))
                    };
                    self.push(
                        line,
                        place,
                        format!("`{here}`: estimator `{est}` has no hyperparameter `{name}`"),
                        format!("{hint}{takes} (see `scalelab list`)"),
                    );
                }
            }
            let Some(values) = self.hyper_values(place, &here, form, item, line) else {
                continue;
            };
            // Each value, against each estimator's range.
            for est in &names {
                let takes =
                    estimators::specs(est).is_some_and(|s| s.iter().any(|s| s.name == name));
                if !takes {
                    continue;
                }
                for v in &values {
                    let one: HyperParams = [(name.to_string(), v.clone())].into_iter().collect();
                    // A value that needs another (`n_estimators = "auto"` on extra trees needs
                    // `bootstrap = true`) is fine when the table gives that other value too.
                    let mut with_rest = together.clone();
                    with_rest.insert(name.to_string(), v.clone());
                    if let Err(e) = estimators::build(est, &one)
                        .map(drop)
                        .or_else(|e| estimators::build(est, &with_rest).map(drop).map_err(|_| e))
                    {
                        self.push(
                            line,
                            place,
                            format!("`{here}`: {e}"),
                            "see `scalelab list` for each hyperparameter's range".into(),
                        );
                    }
                }
            }
            let shown: Vec<String> = values.iter().map(format_value).collect();
            parts.push(format!("{name}={}", shown.join(",")));
        }
        if parts.is_empty() && self.problems.len() == before {
            let example = match form {
                Form::Hyper => "max_depth = 8",
                Form::Grid => "max_depth = [4, 8]",
            };
            self.push(
                self.key_line(study, key),
                place,
                format!("`[study.{key}]` is empty"),
                format!("give at least one hyperparameter, e.g. {example}, or remove the table"),
            );
        }
        (self.problems.len() == before).then(|| Value::Text(parts.join("; ")))
    }

    /// The values of one hyperparameter: a single value under `hyper`, a list (or a single value)
    /// under `grid`.
    fn hyper_values(
        &mut self,
        place: &str,
        here: &str,
        form: Form,
        item: &Item,
        line: Option<usize>,
    ) -> Option<Vec<Hp>> {
        let fix = match form {
            Form::Hyper => "write one value, e.g. max_depth = 8 or max_features = \"sqrt\" (a list of candidates belongs in [study.grid])",
            Form::Grid => "write a list, e.g. max_depth = [4, 8] or max_features = [\"sqrt\", 0.5]",
        };
        let elements: Vec<&Tv> = match (form, item) {
            (Form::Grid, Item::Value(Tv::Array(a))) if !a.is_empty() => a.iter().collect(),
            (_, Item::Value(Tv::Array(_)))
            | (_, Item::Value(Tv::InlineTable(_)))
            | (_, Item::Table(_))
            | (_, Item::ArrayOfTables(_))
            | (_, Item::None) => {
                let what = match item {
                    Item::Value(Tv::Array(a)) if a.is_empty() => "an empty list",
                    Item::Value(Tv::Array(_)) => "a list",
                    _ => "a table",
                };
                self.push(line, place, format!("`{here}` is {what}"), fix.into());
                return None;
            }
            (_, Item::Value(v)) => vec![v],
        };
        let mut values: Vec<Hp> = Vec::with_capacity(elements.len());
        for v in elements {
            let hp = match v {
                Tv::Integer(i) => Ok(Hp::Int(*i.value())),
                Tv::Float(f) if f.value().is_finite() => Ok(Hp::Float(*f.value())),
                Tv::Boolean(b) => Ok(Hp::Bool(*b.value())),
                Tv::String(s) => parse_value(s.value()),
                _ => Err("is not a number, a name or true/false".into()),
            };
            match hp {
                Ok(hp) if values.contains(&hp) => {
                    self.push(
                        line,
                        place,
                        format!("`{here}` lists {} twice", format_value(&hp)),
                        "remove the repeated value".into(),
                    );
                    return None;
                }
                Ok(hp) => values.push(hp),
                Err(e) => {
                    self.push(
                        line,
                        place,
                        format!("`{here}`: {v}: {e}", v = v.to_string().trim()),
                        fix.into(),
                    );
                    return None;
                }
            }
        }
        Some(values)
    }
}

/// The single values of a `hyper` table that read as hyperparameter values (empty for a grid):
/// the company each value is checked in, besides alone.
fn single_values(table: &dyn TableLike, form: Form) -> HyperParams {
    if form == Form::Grid {
        return HyperParams::new();
    }
    table
        .iter()
        .filter_map(|(name, item)| {
            let hp = match item.as_value()? {
                Tv::Integer(i) => Hp::Int(*i.value()),
                Tv::Float(f) if f.value().is_finite() => Hp::Float(*f.value()),
                Tv::Boolean(b) => Hp::Bool(*b.value()),
                Tv::String(s) => parse_value(s.value()).ok()?,
                _ => return None,
            };
            Some((name.to_string(), hp))
        })
        .collect()
}

/// The estimators a study names: its `estimator` value or list, else the workload's default.
fn estimator_names(study: &dyn TableLike, workload: &dyn Workload) -> Vec<String> {
    match study.get("estimator") {
        Some(Item::Value(Tv::String(s))) => vec![s.value().clone()],
        Some(Item::Value(Tv::Array(a))) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Some(_) => Vec::new(),
        None => workload
            .params()
            .iter()
            .find(|p| p.name == "estimator")
            .map(|p| vec![p.default.to_string()])
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::test_support::ctx;
    use super::super::{parse_with, Manifest, ManifestError};
    use crate::value::Value;
    use crate::workload::{find, Workload};

    fn parse(source: &str) -> Result<Manifest, ManifestError> {
        let registry: Vec<&'static dyn Workload> = vec![find("cv.nested").unwrap()];
        parse_with(Path::new("experiments/x.toml"), source, &ctx(&registry))
    }

    const HEAD: &str =
        "name = \"x\"\n\n[[study]]\nworkload = \"cv.nested\"\nestimator = \"decision_tree\"\n";

    fn axis(m: &Manifest, name: &str) -> Vec<Value> {
        let a = m.studies()[0].axes.iter().find(|a| a.name == name).unwrap();
        a.values.clone()
    }

    #[test]
    fn tables_give_the_same_values_as_the_strings() {
        let tables = parse(&format!(
            "{HEAD}\n[study.hyper]\nmax_features = \"sqrt\"\ncriterion = \"entropy\"\n\n\
             [study.grid]\nmax_depth = [4, 8]\nmin_samples_leaf = [1, 5]\n"
        ))
        .unwrap();
        let strings = parse(&format!(
            "{HEAD}hyper = \"max_features=sqrt; criterion=entropy\"\n\
             grid = \"max_depth=4,8; min_samples_leaf=1,5\"\n"
        ))
        .unwrap();
        assert_eq!(axis(&tables, "hyper"), axis(&strings, "hyper"));
        assert_eq!(axis(&tables, "grid"), axis(&strings, "grid"));
        // Inline tables too.
        let inline = parse(&format!(
            "{HEAD}grid = {{ max_depth = [4, 8], min_samples_leaf = [1, 5] }}\n"
        ))
        .unwrap();
        assert_eq!(axis(&inline, "grid"), axis(&strings, "grid"));
    }

    #[test]
    fn every_mistake_is_reported_at_once_on_its_own_line() {
        let err = parse(&format!(
            "{HEAD}\n[study.hyper]\nmax_dept = 8\ncriterion = [\"gini\", \"entropy\"]\n\n\
             [study.grid]\nmin_samples_split = [4, 1]\nmin_samples_leaf = [1, 1]\n"
        ))
        .unwrap_err()
        .to_string();
        let mut lines: Vec<&str> = err.lines().collect();
        // The estimator's list of hyperparameters is its own table's business.
        let takes = lines[1].find(" decision_tree takes: ").unwrap();
        lines[1] = &lines[1][..takes];
        assert_eq!(
            lines,
            [
                "error: experiments/x.toml:8: study 1 (cv.nested): `hyper.max_dept`: estimator \
                 `decision_tree` has no hyperparameter `max_dept`",
                "  fix: did you mean `max_depth`?",
                "error: experiments/x.toml:9: study 1 (cv.nested): `hyper.criterion` is a list",
                "  fix: write one value, e.g. max_depth = 8 or max_features = \"sqrt\" (a list of \
                 candidates belongs in [study.grid])",
                "error: experiments/x.toml:12: study 1 (cv.nested): `grid.min_samples_split`: \
                 decision_tree: `min_samples_split` = 1 is not allowed; allowed: an integer ≥ 2",
                "  fix: see `scalelab list` for each hyperparameter's range",
                "error: experiments/x.toml:13: study 1 (cv.nested): `grid.min_samples_leaf` lists \
                 1 twice",
                "  fix: remove the repeated value",
                "4 problems in experiments/x.toml",
            ]
        );
    }

    #[test]
    fn a_value_that_needs_another_is_checked_with_the_table_it_is_in() {
        let head =
            "name = \"x\"\n\n[[study]]\nworkload = \"cv.nested\"\nestimator = \"extra_trees\"\n";
        let ok = parse(&format!(
            "{head}\n[study.hyper]\nn_estimators = \"auto\"\nbootstrap = true\n"
        ));
        assert!(ok.is_ok(), "{:?}", ok.err().map(|e| e.to_string()));
        let err = parse(&format!("{head}\n[study.hyper]\nn_estimators = \"auto\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "`hyper.n_estimators`: extra_trees: `n_estimators` = \"auto\" stops adding trees \
                 when the out-of-bag score plateaus, which needs `bootstrap` = true"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_empty_table_is_refused() {
        let err = parse(&format!("{HEAD}\n[study.grid]\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(": `[study.grid]` is empty\n  fix: give at least one hyperparameter"),
            "{err}"
        );
    }
}

//! Parameter spaces in a compact text form that fits in one manifest string:
//! `"max_depth=4,8,16; max_features=sqrt,0.5"` — `;`-separated parameters, each `NAME=V1,V2,...`.
//!
//! Values are read as booleans (`true`, `false`), integers, floats, or else names (`sqrt`, `gini`),
//! the same [`Hp`] values a manifest gives an estimator. Whether a parameter exists and a value is in
//! range is the estimator's to say: [`ParamGrid::check`] builds every candidate through the
//! estimator factory, whose error names the parameter and the fix.

use std::collections::BTreeSet;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::estimator::{Hp, HyperParams};

/// A parsed parameter space: each parameter with its values, in the order written.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamGrid {
    pub axes: Vec<(String, Vec<Hp>)>,
}

/// Read one value: bool, integer, float, or a name.
pub fn parse_value(text: &str) -> Result<Hp, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty value".into());
    }
    if t == "true" || t == "false" {
        return Ok(Hp::Bool(t == "true"));
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(Hp::Int(i));
    }
    if let Ok(f) = t.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("`{t}` is not a finite number"));
        }
        return Ok(Hp::Float(f));
    }
    if t.chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Ok(Hp::Text(t.to_string()));
    }
    Err(format!(
        "`{t}` is neither a number nor a name (names use letters, digits, `_`, `-`, `.`)"
    ))
}

/// Write a value back in the grid syntax.
pub fn format_value(v: &Hp) -> String {
    match v {
        Hp::Int(i) => i.to_string(),
        Hp::Float(f) => format!("{f:?}"),
        Hp::Text(s) => s.clone(),
        Hp::Bool(b) => b.to_string(),
    }
}

/// A candidate as `name=value` pairs, e.g. `max_depth=8, max_features=sqrt` (`defaults` when it
/// sets nothing).
pub fn format_candidate(c: &HyperParams) -> String {
    if c.is_empty() {
        return "defaults".into();
    }
    c.iter()
        .map(|(k, v)| format!("{k}={}", format_value(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ParamGrid {
    /// Parse `text`. Errors quote the text and the offending part, and say how to write it.
    pub fn parse(text: &str) -> Result<ParamGrid, String> {
        const FORM: &str =
            "write it as \"NAME=V1,V2; NAME=V1,V2\", e.g. \"max_depth=4,8; max_features=sqrt,0.5\"";
        let bad = |what: String| format!("grid \"{text}\": {what}; {FORM}");
        if text.trim().is_empty() {
            return Err(bad("the grid is empty".into()));
        }
        let mut axes: Vec<(String, Vec<Hp>)> = Vec::new();
        for part in text.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((name, values)) = part.split_once('=') else {
                return Err(bad(format!("`{part}` has no `=`")));
            };
            let name = name.trim();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(bad(format!("`{part}` needs a parameter name before `=`")));
            }
            if axes.iter().any(|(n, _)| n == name) {
                return Err(bad(format!("parameter `{name}` appears twice")));
            }
            let mut parsed = Vec::new();
            for v in values.split(',') {
                let value = parse_value(v).map_err(|e| bad(format!("`{name}`: {e}")))?;
                if parsed.contains(&value) {
                    return Err(bad(format!("`{name}` lists `{}` twice", v.trim())));
                }
                parsed.push(value);
            }
            axes.push((name.to_string(), parsed));
        }
        if axes.is_empty() {
            return Err(bad("the grid is empty".into()));
        }
        Ok(ParamGrid { axes })
    }

    /// The number of candidates (the product of the value counts).
    pub fn len(&self) -> usize {
        self.axes.iter().map(|(_, v)| v.len()).product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Candidate `i` of the full grid: the last parameter varies fastest (scikit-learn's
    /// `ParameterGrid` order for keys in this order).
    pub fn candidate(&self, mut i: usize) -> HyperParams {
        let mut c = HyperParams::new();
        for (name, values) in self.axes.iter().rev() {
            c.insert(name.clone(), values[i % values.len()].clone());
            i /= values.len();
        }
        c
    }

    /// Every candidate, in grid order.
    pub fn candidates(&self) -> Vec<HyperParams> {
        (0..self.len()).map(|i| self.candidate(i)).collect()
    }

    /// Random search: `n` distinct candidates drawn without replacement (seeded), kept in grid
    /// order; all of them when `n` is at least the grid's size (scikit-learn's `ParameterSampler`
    /// over lists).
    pub fn sample(&self, n: usize, seed: u64) -> Vec<HyperParams> {
        if n >= self.len() {
            return self.candidates();
        }
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(crate::child_seed(seed, 0x5EA5C4));
        let picked: BTreeSet<usize> = sample(&mut rng, self.len(), n).into_iter().collect();
        picked.into_iter().map(|i| self.candidate(i)).collect()
    }

    /// Build every candidate merged over `base` with `build`; the first error names the candidate.
    pub fn check(&self, base: &HyperParams, build: &super::Builder) -> Result<(), String> {
        for c in self.candidates() {
            build(&merge(base, &c))
                .map_err(|e| format!("grid candidate {}: {e}", format_candidate(&c)))?;
        }
        Ok(())
    }
}

/// `base` with `over`'s entries replacing or adding to it.
pub fn merge(base: &HyperParams, over: &HyperParams) -> HyperParams {
    let mut m = base.clone();
    m.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_compact_form() {
        let g = ParamGrid::parse(" max_depth=4,8,16; max_features = sqrt, 0.5 ;bootstrap=true")
            .unwrap();
        assert_eq!(g.len(), 6);
        assert_eq!(
            g.axes[1],
            (
                "max_features".into(),
                vec![Hp::Text("sqrt".into()), Hp::Float(0.5)]
            )
        );
        let c = g.candidates();
        assert_eq!(
            format_candidate(&c[0]),
            "bootstrap=true, max_depth=4, max_features=sqrt"
        );
        assert_eq!(
            format_candidate(&c[1]),
            "bootstrap=true, max_depth=4, max_features=0.5"
        );
        assert_eq!(
            format_candidate(&c[5]),
            "bootstrap=true, max_depth=16, max_features=0.5"
        );
    }

    #[test]
    fn errors_name_the_part_and_the_form() {
        let form =
            "write it as \"NAME=V1,V2; NAME=V1,V2\", e.g. \"max_depth=4,8; max_features=sqrt,0.5\"";
        let err = |t: &str| ParamGrid::parse(t).unwrap_err();
        assert_eq!(err(" "), format!("grid \" \": the grid is empty; {form}"));
        assert_eq!(err(";"), format!("grid \";\": the grid is empty; {form}"));
        assert_eq!(
            err("max_depth"),
            format!("grid \"max_depth\": `max_depth` has no `=`; {form}")
        );
        assert_eq!(
            err("=4"),
            format!("grid \"=4\": `=4` needs a parameter name before `=`; {form}")
        );
        assert_eq!(
            err("max_depth=4,,8"),
            format!("grid \"max_depth=4,,8\": `max_depth`: empty value; {form}")
        );
        assert_eq!(
            err("a=1;a=2"),
            format!("grid \"a=1;a=2\": parameter `a` appears twice; {form}")
        );
        assert_eq!(
            err("a=1,1"),
            format!("grid \"a=1,1\": `a` lists `1` twice; {form}")
        );
        assert!(err("a=x y").contains("`x y` is neither a number nor a name"));
    }

    #[test]
    fn random_search_draws_distinct_candidates_reproducibly() {
        let g = ParamGrid::parse("a=1,2,3,4; b=x,y,z").unwrap();
        let s = g.sample(5, 42);
        assert_eq!(s.len(), 5);
        assert_eq!(s, g.sample(5, 42));
        let mut dedup = s.clone();
        dedup.dedup();
        assert_eq!(dedup.len(), 5);
        assert_eq!(g.sample(100, 1), g.candidates());
    }

    #[test]
    fn check_reports_the_factorys_error_with_the_candidate() {
        let g = ParamGrid::parse("max_depth=4").unwrap();
        let build = |p: &HyperParams| crate::estimators::build("dummy.most_frequent", p);
        assert_eq!(
            g.check(&HyperParams::new(), &build).unwrap_err(),
            "grid candidate max_depth=4: estimator `dummy.most_frequent` takes no parameter `max_depth`"
        );
    }
}

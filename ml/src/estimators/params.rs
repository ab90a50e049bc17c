//! Hyperparameter specifications: one table per estimator gives each parameter's name, type, allowed
//! range, default and a line of documentation. The same table checks a manifest (unknown names,
//! wrong types, out-of-range values are errors that name the parameter and what is allowed), fills in
//! defaults, and feeds `scalelab list`.

use crate::estimator::{Hp, HyperParams};

/// The type and allowed values of one hyperparameter.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// An integer in `min..=max`.
    Int {
        min: i64,
        max: i64,
    },
    /// An integer in `min..=max`, or `"auto"`: an ensemble size that the estimator may choose
    /// itself (random forest and extra trees grow until the out-of-bag score plateaus).
    IntOrAuto {
        min: i64,
        max: i64,
    },
    /// A number in `min..=max` (or `min < x` when `open_min`); integers are accepted too.
    Float {
        min: f64,
        max: f64,
        open_min: bool,
    },
    /// One of these texts.
    Choice(&'static [&'static str]),
    /// `sqrt`, `log2`, `all`, a fraction in (0, 1] or a count ≥ 1.
    MaxFeatures,
    /// An estimator name from `NAMES`.
    Estimator,
    /// A comma-separated list of estimator names.
    EstimatorList,
    Bool,
}

/// A default value, written as a manifest would.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Default {
    Int(i64),
    Float(f64),
    Text(&'static str),
    Bool(bool),
}

impl Default {
    fn to_hp(self) -> Hp {
        match self {
            Default::Int(v) => Hp::Int(v),
            Default::Float(v) => Hp::Float(v),
            Default::Text(v) => Hp::Text(v.to_string()),
            Default::Bool(v) => Hp::Bool(v),
        }
    }
}

impl std::fmt::Display for Default {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Default::Int(v) => write!(f, "{v}"),
            Default::Float(v) => write!(f, "{v}"),
            Default::Text(v) => write!(f, "\"{v}\""),
            Default::Bool(v) => write!(f, "{v}"),
        }
    }
}

/// One hyperparameter of one estimator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ParamSpec {
    pub name: &'static str,
    pub kind: Kind,
    pub default: Default,
    /// One line: what it does.
    pub doc: &'static str,
}

impl ParamSpec {
    /// The allowed values in words, as error messages and `scalelab list` show them.
    pub fn allowed(&self) -> String {
        match self.kind {
            Kind::Int { min, max } if max == i64::MAX => format!("an integer ≥ {min}"),
            Kind::Int { min, max } => format!("an integer from {min} to {max}"),
            Kind::IntOrAuto { min, max } => {
                format!("an integer from {min} to {max}, or \"auto\"")
            }
            Kind::Float { min, max, open_min } => {
                let lo = if open_min { "(" } else { "[" };
                if max == f64::INFINITY {
                    format!("a number in {lo}{min}, ∞)")
                } else {
                    format!("a number in {lo}{min}, {max}]")
                }
            }
            Kind::Choice(options) => format!("one of {}", options.join(", ")),
            Kind::MaxFeatures => "sqrt, log2, all, a fraction in (0, 1] or a count ≥ 1".to_string(),
            Kind::Estimator => format!("an estimator name ({})", super::NAMES.join(", ")),
            Kind::EstimatorList => format!(
                "a comma-separated list of estimator names ({})",
                super::NAMES.join(", ")
            ),
            Kind::Bool => "true or false".to_string(),
        }
    }
}

/// How many features each split considers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFeatures {
    Sqrt,
    Log2,
    All,
    Fraction(f64),
    Count(usize),
}

impl MaxFeatures {
    /// The count for `p` features (at least 1, at most `p`).
    pub fn resolve(self, p: usize) -> usize {
        let k = match self {
            MaxFeatures::Sqrt => (p as f64).sqrt().floor() as usize,
            MaxFeatures::Log2 => (p as f64).log2().floor() as usize,
            MaxFeatures::All => p,
            MaxFeatures::Fraction(f) => (f * p as f64).floor() as usize,
            MaxFeatures::Count(c) => c,
        };
        k.clamp(1, p.max(1))
    }
}

/// Checked access to one estimator's hyperparameters.
pub(crate) struct Params<'a> {
    estimator: &'static str,
    given: &'a HyperParams,
    specs: &'static [ParamSpec],
}

impl<'a> Params<'a> {
    /// Check that every given name is a parameter of `estimator`.
    pub fn new(
        estimator: &'static str,
        given: &'a HyperParams,
        specs: &'static [ParamSpec],
    ) -> Result<Params<'a>, String> {
        for key in given.keys() {
            if !specs.iter().any(|s| s.name == key) {
                let names: Vec<&str> = specs.iter().map(|s| s.name).collect();
                return Err(if names.is_empty() {
                    format!("estimator `{estimator}` takes no parameter `{key}`")
                } else {
                    format!(
                        "estimator `{estimator}` has no parameter `{key}`; its parameters: {}",
                        names.join(", ")
                    )
                });
            }
        }
        Ok(Params {
            estimator,
            given,
            specs,
        })
    }

    /// Whether the estimator's table has parameter `name`.
    pub fn has(&self, name: &str) -> bool {
        self.specs.iter().any(|s| s.name == name)
    }

    fn spec(&self, name: &str) -> &'static ParamSpec {
        self.specs
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| unreachable!("no spec for parameter {name}"))
    }

    fn value(&self, name: &str) -> (Hp, &'static ParamSpec) {
        let spec = self.spec(name);
        let v = self
            .given
            .get(name)
            .cloned()
            .unwrap_or_else(|| spec.default.to_hp());
        (v, spec)
    }

    fn bad(&self, spec: &ParamSpec, shown: String) -> String {
        format!(
            "{}: `{}` = {shown} is not allowed; allowed: {}",
            self.estimator,
            spec.name,
            spec.allowed()
        )
    }

    pub fn int(&self, name: &str) -> Result<i64, String> {
        let (v, spec) = self.value(name);
        let Kind::Int { min, max } = spec.kind else {
            unreachable!("{name} is not an integer parameter")
        };
        match v {
            Hp::Int(i) if (min..=max).contains(&i) => Ok(i),
            Hp::Text(t) if t == "auto" && super::ensemble_size(self.estimator) == Some(name) => {
                Err(self.no_auto(spec))
            }
            other => Err(self.bad(spec, show(&other))),
        }
    }

    /// The refusal of `"auto"` for an ensemble size that cannot be chosen automatically: only
    /// bagged trees have out-of-bag rows to score while they grow.
    fn no_auto(&self, spec: &ParamSpec) -> String {
        format!(
            "{}: `{}` = \"auto\" is only for random_forest and extra_trees, which add trees until \
             their out-of-bag score stops improving, and {} has no out-of-bag score; give {}",
            self.estimator,
            spec.name,
            self.estimator,
            spec.allowed()
        )
    }

    /// An [`Kind::IntOrAuto`] parameter: `None` for `"auto"`.
    pub fn int_or_auto(&self, name: &str) -> Result<Option<i64>, String> {
        let (v, spec) = self.value(name);
        let Kind::IntOrAuto { min, max } = spec.kind else {
            unreachable!("{name} is not an integer-or-auto parameter")
        };
        match v {
            Hp::Int(i) if (min..=max).contains(&i) => Ok(Some(i)),
            Hp::Text(t) if t == "auto" => Ok(None),
            other => Err(self.bad(spec, show(&other))),
        }
    }

    pub fn usize(&self, name: &str) -> Result<usize, String> {
        self.int(name).map(|v| v as usize)
    }

    pub fn float(&self, name: &str) -> Result<f64, String> {
        let (v, spec) = self.value(name);
        let Kind::Float { min, max, open_min } = spec.kind else {
            unreachable!("{name} is not a number parameter")
        };
        let x = match v {
            Hp::Float(f) => f,
            Hp::Int(i) => i as f64,
            other => return Err(self.bad(spec, show(&other))),
        };
        let above = if open_min { x > min } else { x >= min };
        if above && x <= max {
            Ok(x)
        } else {
            Err(self.bad(spec, show(&v)))
        }
    }

    pub fn bool(&self, name: &str) -> Result<bool, String> {
        let (v, spec) = self.value(name);
        match v {
            Hp::Bool(b) => Ok(b),
            other => Err(self.bad(spec, show(&other))),
        }
    }

    /// A choice, an estimator name or a list of names, checked against the spec.
    pub fn text(&self, name: &str) -> Result<String, String> {
        let (v, spec) = self.value(name);
        let Hp::Text(t) = &v else {
            return Err(self.bad(spec, show(&v)));
        };
        let ok = match spec.kind {
            Kind::Choice(options) => options.contains(&t.as_str()),
            Kind::Estimator => super::NAMES.contains(&t.as_str()),
            Kind::EstimatorList => {
                !t.trim().is_empty() && t.split(',').all(|n| super::NAMES.contains(&n.trim()))
            }
            _ => unreachable!("{name} is not a text parameter"),
        };
        if ok {
            Ok(t.clone())
        } else {
            Err(self.bad(spec, show(&v)))
        }
    }

    pub fn max_features(&self, name: &str) -> Result<MaxFeatures, String> {
        let (v, spec) = self.value(name);
        match &v {
            Hp::Text(t) if t == "sqrt" => Ok(MaxFeatures::Sqrt),
            Hp::Text(t) if t == "log2" => Ok(MaxFeatures::Log2),
            Hp::Text(t) if t == "all" => Ok(MaxFeatures::All),
            Hp::Float(f) if *f > 0.0 && *f <= 1.0 => Ok(MaxFeatures::Fraction(*f)),
            Hp::Int(i) if *i >= 1 => Ok(MaxFeatures::Count(*i as usize)),
            _ => Err(self.bad(spec, show(&v))),
        }
    }
}

fn show(v: &Hp) -> String {
    match v {
        Hp::Int(i) => i.to_string(),
        Hp::Float(f) => f.to_string(),
        Hp::Text(t) => format!("\"{t}\""),
        Hp::Bool(b) => b.to_string(),
    }
}

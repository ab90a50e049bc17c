//! The learners, and the factory that builds one from its name and hyperparameters: one
//! [`REGISTRY`] entry per estimator (name, one line, hyperparameter table, ensemble-size key,
//! constructor), from which every lookup derives.
//!
//! Each estimator has a table of [`ParamSpec`]s ([`specs`]): `build` checks a manifest's values against
//! it (unknown names, wrong types and out-of-range values are errors naming the parameter and what is
//! allowed) and `scalelab list` prints it.

mod boosting;
mod common;
mod decision_tree;
mod dummy;
mod ensemble;
mod forest;
mod logistic;
pub mod params;
mod reference;
mod stacking;
mod tree;

pub use boosting::{AdaBoost, GradientBoosting};
pub use decision_tree::DecisionTree;
pub use dummy::MostFrequent;
pub use ensemble::{Bagging, Voting};
pub use forest::{Forest, AUTO_BATCH, AUTO_MAX_TREES, AUTO_PATIENCE, AUTO_TOL};
pub use logistic::Logistic;
pub use params::{Kind, MaxFeatures, ParamSpec};
pub use reference::Smartcore;
pub use stacking::Stacking;

use crate::estimator::{Estimator, HyperParams};

/// One estimator: everything the factory, the checks and `scalelab list` know about it. The
/// [`REGISTRY`] is the one list of estimators; [`build`], [`NAMES`], [`specs`], [`about`] and
/// [`ensemble_size`] read it, so adding an estimator is adding one entry.
pub struct Entry {
    /// The factory name, e.g. "random_forest".
    pub name: &'static str,
    /// One line on what it is.
    pub about: &'static str,
    /// Its hyperparameters.
    pub specs: &'static [ParamSpec],
    /// The hyperparameter that sets its ensemble size (`n_estimators`, or `max_iter` for the
    /// histogram booster, whose boosting rounds scikit-learn calls so); `None` for a single model
    /// (logistic regression's `max_iter` counts solver iterations, not members).
    pub ensemble_size: Option<&'static str>,
    /// Build it from checked hyperparameters.
    build: fn(&HyperParams) -> Result<Box<dyn Estimator>, String>,
}

/// Every estimator, in the order `scalelab list` and error messages show them.
pub const REGISTRY: &[Entry] = &[
    Entry {
        name: "decision_tree",
        about: "CART tree: gini/entropy or squared error on binned features",
        specs: decision_tree::SPECS,
        ensemble_size: None,
        build: |p| Ok(Box::new(DecisionTree::from_params(p)?)),
    },
    Entry {
        name: "random_forest",
        about: "bootstrap trees with per-split feature sampling (Breiman 2001)",
        specs: forest::RF_SPECS,
        ensemble_size: Some("n_estimators"),
        build: |p| Ok(Box::new(Forest::random_forest(p)?)),
    },
    Entry {
        name: "extra_trees",
        about: "extremely randomised trees: random cuts, no bootstrap (Geurts 2006)",
        specs: forest::ET_SPECS,
        ensemble_size: Some("n_estimators"),
        build: |p| Ok(Box::new(Forest::extra_trees(p)?)),
    },
    Entry {
        name: "bagging",
        about: "bootstrap aggregation of any estimator",
        specs: ensemble::BAGGING_SPECS,
        ensemble_size: Some("n_estimators"),
        build: |p| Ok(Box::new(Bagging::from_params(p)?)),
    },
    Entry {
        name: "adaboost",
        about: "SAMME multi-class AdaBoost over a weak learner (stumps by default)",
        specs: boosting::ADA_SPECS,
        ensemble_size: Some("n_estimators"),
        build: |p| Ok(Box::new(AdaBoost::from_params(p)?)),
    },
    Entry {
        name: "gradient_boosting",
        about: "Friedman gradient boosting: depth-3 regression trees, Newton leaves",
        specs: boosting::GB_SPECS,
        ensemble_size: Some("n_estimators"),
        build: |p| Ok(Box::new(GradientBoosting::classic(p)?)),
    },
    Entry {
        name: "hist_gradient_boosting",
        about: "second-order boosting on binned features, best-first trees",
        specs: boosting::HGB_SPECS,
        ensemble_size: Some("max_iter"),
        build: |p| Ok(Box::new(GradientBoosting::hist(p)?)),
    },
    Entry {
        name: "logistic_regression",
        about: "multinomial L2 logistic regression on standardised features",
        specs: logistic::SPECS,
        ensemble_size: None,
        build: |p| Ok(Box::new(Logistic::from_params(p)?)),
    },
    Entry {
        name: "stacking",
        about: "out-of-fold predictions of base models feed a final estimator",
        specs: stacking::SPECS,
        ensemble_size: None,
        build: |p| Ok(Box::new(Stacking::from_params(p)?)),
    },
    Entry {
        name: "voting",
        about: "soft (mean probability) or hard (majority) vote of estimators",
        specs: ensemble::VOTING_SPECS,
        ensemble_size: None,
        build: |p| Ok(Box::new(Voting::from_params(p)?)),
    },
    Entry {
        name: "dummy.most_frequent",
        about: "the most frequent class (the mean for regression)",
        specs: &[],
        ensemble_size: None,
        build: |p| {
            params::Params::new("dummy.most_frequent", p, &[])?;
            Ok(Box::new(MostFrequent))
        },
    },
    Entry {
        name: "smartcore.random_forest",
        about: "smartcore's random forest classifier, for comparison",
        specs: reference::FOREST_SPECS,
        ensemble_size: Some("n_estimators"),
        build: |p| Ok(Box::new(Smartcore::random_forest(p)?)),
    },
    Entry {
        name: "smartcore.decision_tree",
        about: "smartcore's decision tree classifier, for comparison",
        specs: reference::TREE_SPECS,
        ensemble_size: None,
        build: |p| Ok(Box::new(Smartcore::decision_tree(p)?)),
    },
];

/// The registry entry of estimator `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    REGISTRY.iter().find(|e| e.name == name)
}

/// Build the estimator `name` with `params` (unset ones take their defaults). The error says what is
/// wrong and how to fix it (unknown name, unknown parameter, value out of range).
pub fn build(name: &str, params: &HyperParams) -> Result<Box<dyn Estimator>, String> {
    match entry(name) {
        Some(e) => (e.build)(params),
        None => Err(format!(
            "unknown estimator `{name}`; known: {}",
            NAMES.join(", ")
        )),
    }
}

/// Every estimator name `build` accepts, in registry order.
pub const NAMES: &[&str] = &{
    let mut names = [""; REGISTRY.len()];
    let mut i = 0;
    while i < names.len() {
        names[i] = REGISTRY[i].name;
        i += 1;
    }
    names
};

/// The hyperparameters of estimator `name` (`None` for an unknown name).
pub fn specs(name: &str) -> Option<&'static [ParamSpec]> {
    entry(name).map(|e| e.specs)
}

/// The hyperparameter that sets estimator `name`'s ensemble size (see [`Entry::ensemble_size`]).
pub fn ensemble_size(name: &str) -> Option<&'static str> {
    entry(name)?.ensemble_size
}

/// One line on what estimator `name` is (`None` for an unknown name).
pub fn about(name: &str) -> Option<&'static str> {
    entry(name).map(|e| e.about)
}

/// Estimator `name` and its parameters as `scalelab list` prints them: a line on the estimator, then
/// one line per parameter with its default, allowed values and what it does.
pub fn describe(name: &str) -> Option<String> {
    let table = specs(name)?;
    let mut out = format!("{name}: {}\n", about(name)?);
    for s in table {
        out.push_str(&format!(
            "  {} = {}  ({}): {}\n",
            s.name,
            s.default,
            s.allowed(),
            s.doc
        ));
    }
    Some(out)
}

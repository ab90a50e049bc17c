//! The learners, and the factory that builds one from its name and hyperparameters.
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

/// Build the estimator `name` with `params` (unset ones take their defaults). The error says what is
/// wrong and how to fix it (unknown name, unknown parameter, value out of range).
pub fn build(name: &str, params: &HyperParams) -> Result<Box<dyn Estimator>, String> {
    match name {
        "dummy.most_frequent" => {
            params::Params::new("dummy.most_frequent", params, &[])?;
            Ok(Box::new(MostFrequent))
        }
        "decision_tree" => Ok(Box::new(DecisionTree::from_params(params)?)),
        "random_forest" => Ok(Box::new(Forest::random_forest(params)?)),
        "extra_trees" => Ok(Box::new(Forest::extra_trees(params)?)),
        "bagging" => Ok(Box::new(Bagging::from_params(params)?)),
        "adaboost" => Ok(Box::new(AdaBoost::from_params(params)?)),
        "gradient_boosting" => Ok(Box::new(GradientBoosting::classic(params)?)),
        "hist_gradient_boosting" => Ok(Box::new(GradientBoosting::hist(params)?)),
        "logistic_regression" => Ok(Box::new(Logistic::from_params(params)?)),
        "stacking" => Ok(Box::new(Stacking::from_params(params)?)),
        "voting" => Ok(Box::new(Voting::from_params(params)?)),
        "smartcore.random_forest" => Ok(Box::new(Smartcore::random_forest(params)?)),
        "smartcore.decision_tree" => Ok(Box::new(Smartcore::decision_tree(params)?)),
        other => Err(format!(
            "unknown estimator `{other}`; known: {}",
            NAMES.join(", ")
        )),
    }
}

/// Every estimator name `build` accepts.
pub const NAMES: &[&str] = &[
    "decision_tree",
    "random_forest",
    "extra_trees",
    "bagging",
    "adaboost",
    "gradient_boosting",
    "hist_gradient_boosting",
    "logistic_regression",
    "stacking",
    "voting",
    "dummy.most_frequent",
    "smartcore.random_forest",
    "smartcore.decision_tree",
];

/// The hyperparameters of estimator `name` (`None` for an unknown name).
pub fn specs(name: &str) -> Option<&'static [ParamSpec]> {
    Some(match name {
        "dummy.most_frequent" => &[],
        "decision_tree" => decision_tree::SPECS,
        "random_forest" => forest::RF_SPECS,
        "extra_trees" => forest::ET_SPECS,
        "bagging" => ensemble::BAGGING_SPECS,
        "adaboost" => boosting::ADA_SPECS,
        "gradient_boosting" => boosting::GB_SPECS,
        "hist_gradient_boosting" => boosting::HGB_SPECS,
        "logistic_regression" => logistic::SPECS,
        "stacking" => stacking::SPECS,
        "voting" => ensemble::VOTING_SPECS,
        "smartcore.random_forest" => reference::FOREST_SPECS,
        "smartcore.decision_tree" => reference::TREE_SPECS,
        _ => return None,
    })
}

/// The hyperparameter that sets estimator `name`'s ensemble size: `n_estimators`, or `max_iter`
/// for the histogram booster, whose boosting rounds scikit-learn calls so. `None` for a single
/// model: logistic regression's `max_iter` counts solver iterations, not members.
pub fn ensemble_size(name: &str) -> Option<&'static str> {
    if specs(name)?.iter().any(|s| s.name == "n_estimators") {
        Some("n_estimators")
    } else if name == "hist_gradient_boosting" {
        Some("max_iter")
    } else {
        None
    }
}

/// One line on what estimator `name` is (`None` for an unknown name).
pub fn about(name: &str) -> Option<&'static str> {
    Some(match name {
        "decision_tree" => "CART tree: gini/entropy or squared error on binned features",
        "random_forest" => "bootstrap trees with per-split feature sampling (Breiman 2001)",
        "extra_trees" => "extremely randomised trees: random cuts, no bootstrap (Geurts 2006)",
        "bagging" => "bootstrap aggregation of any estimator",
        "adaboost" => "SAMME multi-class AdaBoost over a weak learner (stumps by default)",
        "gradient_boosting" => {
            "Friedman gradient boosting: depth-3 regression trees, Newton leaves"
        }
        "hist_gradient_boosting" => "second-order boosting on binned features, best-first trees",
        "logistic_regression" => "multinomial L2 logistic regression on standardised features",
        "stacking" => "out-of-fold predictions of base models feed a final estimator",
        "voting" => "soft (mean probability) or hard (majority) vote of estimators",
        "dummy.most_frequent" => "the most frequent class (the mean for regression)",
        "smartcore.random_forest" => "smartcore's random forest classifier, for comparison",
        "smartcore.decision_tree" => "smartcore's decision tree classifier, for comparison",
        _ => return None,
    })
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

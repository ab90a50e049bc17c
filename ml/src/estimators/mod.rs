//! The learners, and the factory that builds one from its name and hyperparameters.
//!
//! Each estimator has a table of [`ParamSpec`]s ([`specs`]): `build` checks a manifest's values against
//! it (unknown names, wrong types and out-of-range values are errors naming the parameter and what is
//! allowed) and `scalelab list` prints it.

mod common;
mod decision_tree;
mod dummy;
mod forest;
pub mod params;
mod tree;

pub use decision_tree::DecisionTree;
pub use dummy::MostFrequent;
pub use forest::Forest;
pub use params::{Kind, MaxFeatures, ParamSpec};

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
    "dummy.most_frequent",
];

/// The hyperparameters of estimator `name` (`None` for an unknown name).
pub fn specs(name: &str) -> Option<&'static [ParamSpec]> {
    Some(match name {
        "dummy.most_frequent" => &[],
        "decision_tree" => decision_tree::SPECS,
        "random_forest" => forest::RF_SPECS,
        "extra_trees" => forest::ET_SPECS,
        _ => return None,
    })
}

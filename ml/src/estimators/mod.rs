//! The learners, and the factory that builds one from its name and hyperparameters.

mod dummy;

pub use dummy::MostFrequent;

use crate::estimator::{Estimator, HyperParams};

/// Build the estimator `name` with `params` (unset ones take their defaults). The error says what is
/// wrong and how to fix it (unknown name with suggestions, parameter out of range).
pub fn build(name: &str, params: &HyperParams) -> Result<Box<dyn Estimator>, String> {
    match name {
        "dummy.most_frequent" => {
            no_params(name, params)?;
            Ok(Box::new(MostFrequent))
        }
        other => Err(format!(
            "unknown estimator `{other}`; known: {}",
            NAMES.join(", ")
        )),
    }
}

/// Every estimator name `build` accepts.
pub const NAMES: &[&str] = &["dummy.most_frequent"];

fn no_params(name: &str, params: &HyperParams) -> Result<(), String> {
    match params.keys().next() {
        Some(key) => Err(format!("estimator `{name}` takes no parameter `{key}`")),
        None => Ok(()),
    }
}

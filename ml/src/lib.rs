//! Ensemble learning and model selection, written as the subject of the course.
//!
//! The crates of the Rust ecosystem (linfa, smartcore) have single trees and forests but no stratified
//! folds, grid search, nested cross-validation, stacking, voting, gradient-boosting classifier or any
//! parallelism, and their trees rescan every row at every node. Those are exactly what the course
//! teaches and what scalelab measures, so they are written here; the crates remain as reference
//! variants to compare against.
//!
//! Layout: [`data`] (the dense matrix, datasets, generator, CSV), [`estimator`] (the `Estimator` /
//! `Model` traits every learner implements), [`pipeline`] (preprocessing fitted inside each fold), [`estimators`] (the learners and the name → estimator
//! factory), [`metrics`], [`folds`] (splitters), [`search`] (grid and random search, nested CV and the
//! task lists that run them in parallel).
//!
//! Determinism: every random choice derives from an explicit `u64` seed mixed with the index of the
//! unit it belongs to (tree, fold, candidate), never from a thread or from timing, so a model is the
//! same whatever the thread or rank count.
//!
//! Fitting a learner by name and scoring it on held-out rows:
//!
//! ```
//! use scalelab_ml::data::{self, Target};
//! use scalelab_ml::estimator::{FitOptions, HyperParams, Prediction};
//! use scalelab_ml::{estimators, metrics};
//!
//! let iris = data::load("iris")?;
//! let (train, test): (Vec<usize>, Vec<usize>) = (0..iris.x.rows()).partition(|i| i % 2 == 0);
//! let forest = estimators::build("random_forest", &HyperParams::new())?;
//! let model = forest.fit(&iris, &train, None, 42, FitOptions::default())?;
//! let Prediction::Classes(predicted) = model.predict(&iris.x, &test) else {
//!     panic!("a classifier predicts classes")
//! };
//! let Target::Classes { labels, .. } = &iris.y else { panic!("iris is a classification task") };
//! let truth: Vec<u32> = test.iter().map(|&i| labels[i]).collect();
//! assert!(metrics::accuracy(&truth, &predicted)? > 0.9);
//!
//! // The same seed gives the same model, whatever the pool.
//! let again = forest.fit(&iris, &train, None, 42, FitOptions { parallel: false })?;
//! assert_eq!(again.predict(&iris.x, &test), Prediction::Classes(predicted));
//! # Ok::<(), String>(())
//! ```
//!
//! No `unsafe` anywhere in the crate: the speed comes from layout (binned columns, row indices)
//! and rayon, not from unchecked access.

#![forbid(unsafe_code)]

pub mod data;
pub mod dataparallel;
pub mod estimator;
pub mod estimators;
pub mod folds;
pub mod metrics;
pub mod mlp;
pub mod pipeline;
pub mod search;

/// SplitMix64's finaliser, from which every seed of the crate is derived: the kernels crate's, so
/// the two crates hash indices one way.
pub use scalelab_kernels::mix64;

/// The seed of unit `index` (a tree, a fold, a candidate) of a computation seeded with `seed`.
pub fn child_seed(seed: u64, index: u64) -> u64 {
    mix64(seed ^ mix64(index.wrapping_add(0x9E37_79B9_7F4A_7C15)))
}

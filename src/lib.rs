//! scalelab: measure how parallel code and parallel machine learning scale.
//!
//! The pipeline, in module order: [`manifest`] (TOML → checked manifest) → [`plan`] (points) →
//! [`executor`] (launch `scalelab point` for each) → [`point_runner`] (prepare, warm up, time, verify, record)
//! → [`results`] (records in a run directory) → [`stats`] and [`report`] (CSV, scaling math, plots).
//! See `docs/ARCHITECTURE.md`.

// Every unsafe operation sits in its own `unsafe` block with its SAFETY comment, also inside
// `unsafe fn`s.
#![deny(unsafe_op_in_unsafe_fn)]

pub mod calibrate;
// The command-line help is these doc comments (clap), where `<run-dir>`-style placeholders are the
// convention; rustdoc would read them as unclosed HTML tags.
#[allow(rustdoc::invalid_html_tags)]
pub mod cli;
pub mod device;
pub mod executor;
pub mod exit;
pub mod files;
#[cfg(test)]
mod layers;
pub mod load;
pub mod machine;
pub mod manifest;
pub mod output;
pub mod plan;
pub mod point_runner;
pub mod provenance;
pub mod report;
pub mod resources;
pub mod results;
pub mod slurm;
pub mod stats;
pub mod units;
pub mod value;
pub mod workload;

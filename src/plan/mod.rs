//! Plans: a checked manifest expanded into the points that are run.
//!
//! This module owns the step `Manifest → Plan` and what a plan is: the points of every study in
//! manifest order, oversubscription marked for the cores at hand, data files pinned by their
//! sha256, and estimates of how long a plan will take (`scalelab plan`). It depends on
//! [`crate::manifest`], never the other way: the expansion of one study into [`Point`]s and
//! their ids live with the manifest (`manifest::expand`, `manifest::point`), because checking a
//! manifest means checking every point it denotes; they are re-exported here.
//!
//! * Expansion (done once, by the manifest's check; [`expand`] takes its points): the axes of a
//!   study are crossed in manifest order, the last axis
//!   varying fastest; a `zip` group is one composite axis at the place of its first member.
//!   Unset workload parameters take the registry default, unset resources nodes = 1, ranks = 1,
//!   threads = 1, gpus = 0. With `ranks_per_node`, nodes = ceil(ranks / ranks_per_node).
//! * Weak scaling: the manifest's `size` is the size at p = 1 worker; a point with p =
//!   [`Resources::workers`] gets `weak_rule.scale(size, p)` of the same kind (count or bytes).
//! * Point ids ([`point_id`]): the first 12 hex digits of the sha256 of a canonical text of the
//!   study name, workload, scaling, resources and parameters, so that ids survive edits to
//!   repetitions, warm-ups or time limits, reordered studies, and new processes.
//! * Data files ([`DataFile`]): a point that reads a file (a CSV `dataset`) gets its absolute
//!   path, resolved against the manifest's folder, and its sha256; the point checks the hash
//!   before it reads the file.
//! * Estimates ([`estimate_seconds`], [`Plan::describe`]): a roofline-like guess from [`Rates`].

mod estimate;
mod expand;

#[cfg(test)]
mod tests;

pub use estimate::{estimate_seconds, estimate_with, Rates};
pub use expand::{expand, expand_with_cores};
// The point types and ids belong to the manifest, whose check expands every study to check its
// points; they are re-exported here because a plan is made of them.
pub use crate::manifest::{canonical, point_id, sha256_file, DataFile, Point, Resources, Scaling};

use serde::{Deserialize, Serialize};

/// The expanded points of one manifest, in manifest order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub experiment: String,
    pub manifest_sha256: String,
    pub points: Vec<Point>,
}

/// The points of one study, as a slice of the plan.
#[derive(Clone, Copy, Debug)]
pub struct StudyPoints<'a> {
    /// Index of the study in the manifest (0-based).
    pub index: usize,
    pub name: &'a str,
    pub workload: &'a str,
    pub scaling: Scaling,
    pub points: &'a [Point],
}

impl Plan {
    /// The plan's points grouped by study, in plan order. Expansion keeps a study's points together;
    /// should a plan hold them apart, each run of consecutive points is its own group.
    pub fn studies(&self) -> Vec<StudyPoints<'_>> {
        let mut out = Vec::new();
        let mut start = 0;
        while start < self.points.len() {
            let first = &self.points[start];
            let len = self.points[start..]
                .iter()
                .take_while(|p| p.study == first.study)
                .count();
            out.push(StudyPoints {
                index: first.study,
                name: &first.study_name,
                workload: &first.workload,
                scaling: first.scaling,
                points: &self.points[start..start + len],
            });
            start += len;
        }
        out
    }

    /// The folder the plan's relative data files were resolved against, when a point reads one
    /// given relative to the manifest (recovered from its pinned absolute path).
    pub fn data_dir(&self) -> Option<std::path::PathBuf> {
        self.points.iter().find_map(|p| {
            let data = p.data.as_ref()?;
            let written = match p.params.get(&data.param)? {
                crate::value::Value::Text(t) => std::path::Path::new(t),
                _ => return None,
            };
            if written.is_absolute() {
                return None;
            }
            let mut dir = data.path.clone();
            let depth = written
                .components()
                .filter(|c| !matches!(c, std::path::Component::CurDir))
                .count();
            for _ in 0..depth {
                dir.pop();
            }
            Some(dir)
        })
    }

    /// The point with this id.
    pub fn find(&self, id: &str) -> Option<&Point> {
        self.points.iter().find(|p| p.id == id)
    }

    /// What `scalelab plan` prints: per study a header and a table of its points (the first
    /// [`DESCRIBE_ROWS`] of them), then the total with a rough run-time estimate.
    pub fn describe(&self, rates: &Rates) -> String {
        estimate::describe(self, rates)
    }
}

/// Rows of points [`Plan::describe`] shows per study before "... N more points".
pub const DESCRIBE_ROWS: usize = 20;

//! A checked manifest turned into its plan: every study's points in manifest order (expanded
//! once, by the check, and kept in the [`Manifest`]), oversubscription marked for the cores at
//! hand, and data files pinned by their sha256.

use std::collections::HashMap;

use super::Plan;
use crate::manifest::{
    resolve_data, sha256_file, DataFile, Manifest, ManifestError, Point, Problem,
};

/// Turn a checked manifest into its plan, marking oversubscribed points against this machine's
/// cores. The error is a data file that can no longer be read or hashed; a plan-size or
/// duplicate-id problem never reaches here, the check (or [`Manifest::with_studies`]) refused it.
pub fn expand(m: &Manifest) -> Result<Plan, ManifestError> {
    expand_with_cores(m, crate::machine::available_cores())
}

/// [`expand`] with an explicit number of cores (for `oversubscribed`).
pub fn expand_with_cores(m: &Manifest, cores: usize) -> Result<Plan, ManifestError> {
    let studies = m.studies();
    let mut points = m.points().to_vec();
    for p in &mut points {
        p.oversubscribed =
            studies[p.study].oversubscribe && p.resources.workers_per_node() > cores as u64;
    }
    pin_data(m, &mut points).map_err(|e| ManifestError {
        path: m.path.clone(),
        problems: vec![Problem {
            line: None,
            place: String::new(),
            message: format!("{e:#}"),
            fix: "a data file must stay readable from the plan until the run ends; check its path (relative paths start at the manifest's folder)".into(),
        }],
    })?;
    Ok(Plan {
        experiment: m.name.clone(),
        manifest_sha256: m.sha256.clone(),
        points,
    })
}

/// Resolve and hash the data file of every point that reads one (each file hashed once).
fn pin_data(m: &Manifest, points: &mut [Point]) -> anyhow::Result<()> {
    let mut hashes: HashMap<std::path::PathBuf, String> = HashMap::new();
    for p in points.iter_mut() {
        let Some(w) = p.workload() else { continue };
        let Some((param, path)) = resolve_data(w, &p.params, &m.data_dir) else {
            continue;
        };
        let sha256 = match hashes.get(&path) {
            Some(h) => h.clone(),
            None => {
                let h = sha256_file(&path)?;
                hashes.insert(path.clone(), h.clone());
                h
            }
        };
        p.data = Some(DataFile {
            param: param.to_string(),
            path,
            sha256,
        });
    }
    Ok(())
}

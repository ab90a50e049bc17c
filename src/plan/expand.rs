//! A checked manifest expanded into its plan: every study's points (the manifest's expansion,
//! [`crate::manifest::expand_study`]) in manifest order, oversubscription marked for the cores
//! at hand, data files pinned by their sha256, and the plan-wide guards (size, duplicate ids)
//! for manifests built by hand rather than checked.

use std::collections::HashMap;

use super::Plan;
use crate::manifest::points::{plan_size, repeated_ids};
use crate::manifest::{
    available_cores, expand_study, resolve_data, sha256_file, DataFile, Manifest, ManifestError,
    Point, Problem,
};

/// Expand a checked manifest into its plan, marking oversubscribed points against this machine's
/// cores. A manifest from [`crate::manifest::load`] always expands; the error (two points with the
/// same id, a plan above [`crate::manifest::MAX_POINTS`]) only guards hand-built manifests.
pub fn expand(m: &Manifest) -> Result<Plan, ManifestError> {
    expand_with_cores(m, available_cores())
}

/// [`expand`] with an explicit number of cores (for `oversubscribed`).
pub fn expand_with_cores(m: &Manifest, cores: usize) -> Result<Plan, ManifestError> {
    let error = |problems| ManifestError {
        path: m.path.clone(),
        problems,
    };
    let total = plan_size(&m.studies).map_err(|problem| error(vec![problem]))?;
    let mut points = Vec::with_capacity(total);
    for study in &m.studies {
        expand_study(study, cores, &mut points);
    }
    pin_data(m, &mut points).map_err(|e| {
        error(vec![Problem {
            line: None,
            place: String::new(),
            message: format!("{e:#}"),
            fix: "a data file must stay readable from the plan until the run ends; check its path (relative paths start at the manifest's folder)".into(),
        }])
    })?;
    let mut problems = Vec::new();
    let mut ids = HashMap::with_capacity(points.len());
    for (p, other) in repeated_ids(&points, &mut ids).into_iter().take(10) {
        let (message, fix) = if other == p.study {
            (
                format!("point {} is produced more than once", p.id),
                "make the swept values distinct (ranks_per_node values giving the same nodes repeat a point)",
            )
        } else {
            (
                format!(
                    "point {} is produced by both study {} ({}) and this study",
                    p.id,
                    other + 1,
                    m.studies.get(other).map_or("?", |s| s.name.as_str())
                ),
                "give the two studies different names",
            )
        };
        problems.push(Problem {
            line: None,
            place: format!("study {} ({})", p.study + 1, p.study_name),
            message,
            fix: fix.into(),
        });
    }
    if !problems.is_empty() {
        return Err(error(problems));
    }
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

//! Expansion of checked studies into points, and point ids.
//!
//! A study with composite axes A (a values), B (b values), C (c values) expands into a × b × c
//! points in odometer order: C varies fastest. The work per point is one clone of the defaults,
//! one override per axis and one sha256 of a short canonical text; 100 000 points take a few
//! tens of milliseconds (see `benches/benchmarks/plan.rs`).

use std::collections::HashMap;
use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::point::{resolve_data, sha256_file, DataFile};
use super::{Plan, Point, Resources, Scaling};
use crate::manifest::{available_cores, hex, Manifest, ManifestError, Problem, Study, MAX_POINTS};
use crate::value::Value;
use crate::workload::Params;

/// Expand a checked manifest into its plan, marking oversubscribed points against this machine's
/// cores. A manifest from [`crate::manifest::load`] always expands; the error (two points with the
/// same id, a plan above [`MAX_POINTS`]) only guards hand-built manifests.
pub fn expand(m: &Manifest) -> Result<Plan, ManifestError> {
    expand_with_cores(m, available_cores())
}

/// [`expand`] with an explicit number of cores (for `oversubscribed`).
pub fn expand_with_cores(m: &Manifest, cores: usize) -> Result<Plan, ManifestError> {
    let error = |problems| ManifestError {
        path: m.path.clone(),
        problems,
    };
    let total = m
        .studies
        .iter()
        .fold(0usize, |acc, s| acc.saturating_add(s.point_count()));
    if total > MAX_POINTS {
        return Err(error(vec![Problem {
            line: None,
            place: String::new(),
            message: format!(
                "the manifest expands to {total} points, more than the limit of {MAX_POINTS}"
            ),
            fix: "sweep fewer values, or split the experiment into several manifests".into(),
        }]));
    }
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
    let mut seen: HashMap<u64, usize> = HashMap::with_capacity(points.len());
    let mut problems = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let key = u64::from_str_radix(&p.id, 16).unwrap_or(u64::MAX);
        if let Some(j) = seen.insert(key, i) {
            let q = &points[j];
            let (message, fix) = if q.study == p.study {
                (
                    format!("point {} is produced more than once", p.id),
                    "make the swept values distinct (ranks_per_node values giving the same nodes repeat a point)",
                )
            } else {
                (
                    format!(
                        "point {} is produced by both study {} ({}) and this study",
                        p.id,
                        q.study + 1,
                        q.study_name
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
            if problems.len() >= 10 {
                break;
            }
        }
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

/// The composite axes of a study, as indices into `study.axes`: one group per zip group (at the
/// place of its first member, members in manifest order) and one single-axis group per other axis.
pub(crate) fn composite_axes(study: &Study) -> Vec<Vec<usize>> {
    let n = study.axes.len();
    let mut taken = vec![false; n];
    let mut out = Vec::new();
    for i in 0..n {
        if taken[i] {
            continue;
        }
        let name = &study.axes[i].name;
        let mut group = vec![i];
        if let Some(zip) = study.zip.iter().find(|g| g.iter().any(|m| m == name)) {
            for (j, axis) in study.axes.iter().enumerate().skip(i + 1) {
                if !taken[j] && zip.iter().any(|m| m == &axis.name) {
                    group.push(j);
                }
            }
        }
        for &j in &group {
            taken[j] = true;
        }
        out.push(group);
    }
    out
}

/// Where an axis value goes in a point.
enum Slot<'a> {
    Threads,
    Ranks,
    RanksPerNode,
    Nodes,
    Gpus,
    Param(&'a str),
}

/// Append the points of one study to `out`, in odometer order (last composite axis fastest).
pub(crate) fn expand_study(study: &Study, cores: usize, out: &mut Vec<Point>) {
    let w = study.workload;
    let mut base = Params::default();
    for spec in w.params() {
        if let Ok(v) = spec.default_value() {
            base.0.insert(spec.name.to_string(), v);
        }
    }
    let slots: Vec<Slot> = study
        .axes
        .iter()
        .map(|a| match a.name.as_str() {
            "threads" => Slot::Threads,
            "ranks" => Slot::Ranks,
            "ranks_per_node" => Slot::RanksPerNode,
            "nodes" => Slot::Nodes,
            "gpus" => Slot::Gpus,
            other => Slot::Param(other),
        })
        .collect();
    let groups = composite_axes(study);
    let lens: Vec<usize> = groups
        .iter()
        .map(|g| {
            g.iter()
                .map(|&a| study.axes[a].values.len())
                .min()
                .unwrap_or(0)
        })
        .collect();
    if lens.contains(&0) {
        return;
    }
    let weak = study.scaling == Scaling::Weak;
    let mut index = vec![0usize; groups.len()];
    let mut canon = String::with_capacity(256);
    loop {
        let mut res = Resources::default();
        let mut per_node: Option<u32> = None;
        let mut params = base.clone();
        for (g, &i) in groups.iter().zip(&index) {
            for &a in g {
                let v = &study.axes[a].values[i];
                let int = || match v {
                    Value::Int(n) => u32::try_from(*n).unwrap_or(u32::MAX),
                    _ => 1,
                };
                match slots[a] {
                    Slot::Threads => res.threads = int(),
                    Slot::Ranks => res.ranks = int(),
                    Slot::Nodes => res.nodes = int(),
                    Slot::Gpus => res.gpus = int(),
                    Slot::RanksPerNode => per_node = Some(int().max(1)),
                    Slot::Param(name) => match params.0.get_mut(name) {
                        Some(slot) => slot.clone_from(v),
                        None => {
                            params.0.insert(name.to_string(), v.clone());
                        }
                    },
                }
            }
        }
        if let Some(rpn) = per_node {
            res.nodes = res.ranks.div_ceil(rpn);
        }
        if weak {
            if let Some(Value::Size(s)) = params.0.get_mut("size") {
                *s = s.with_value(study.weak_rule.scale(s.value(), res.workers()));
            }
        }
        canonical_into(
            &mut canon,
            &study.name,
            w.name(),
            study.scaling,
            &res,
            &params,
        );
        let id = hex(&Sha256::digest(canon.as_bytes())[..6]);
        let workers_per_node =
            u64::from(res.ranks.div_ceil(res.nodes.max(1))) * u64::from(res.threads);
        out.push(Point {
            id,
            study: study.index,
            study_name: study.name.clone(),
            workload: w.name().to_string(),
            scaling: study.scaling,
            resources: res,
            params,
            repetitions: study.repetitions,
            warmup: study.warmup,
            timeout_s: study.timeout_s,
            oversubscribed: study.oversubscribe && workers_per_node > cores as u64,
            data: None,
        });
        // Odometer: the last composite axis varies fastest.
        let mut k = index.len();
        loop {
            if k == 0 {
                return;
            }
            k -= 1;
            index[k] += 1;
            if index[k] < lens[k] {
                break;
            }
            index[k] = 0;
        }
    }
}

/// The canonical text a point id hashes: one `key=value` per line, in this order: `study`,
/// `workload`, `scaling`, `nodes`, `ranks`, `threads`, `gpus`, then every parameter sorted by name.
/// Repetitions, warm-ups, time limits and the study's position are deliberately left out.
pub fn canonical(
    study: &str,
    workload: &str,
    scaling: Scaling,
    resources: &Resources,
    params: &Params,
) -> String {
    let mut s = String::new();
    canonical_into(&mut s, study, workload, scaling, resources, params);
    s
}

fn canonical_into(
    buf: &mut String,
    study: &str,
    workload: &str,
    scaling: Scaling,
    r: &Resources,
    params: &Params,
) {
    buf.clear();
    // Writing to a String cannot fail.
    let _ = write!(
        buf,
        "study={study}\nworkload={workload}\nscaling={}\nnodes={}\nranks={}\nthreads={}\ngpus={}",
        scaling.as_str(),
        r.nodes,
        r.ranks,
        r.threads,
        r.gpus
    );
    for (k, v) in &params.0 {
        let _ = write!(buf, "\n{k}={v}");
    }
}

/// The id of a point: the first 12 hex digits of the sha256 of [`canonical`].
pub fn point_id(
    study: &str,
    workload: &str,
    scaling: Scaling,
    resources: &Resources,
    params: &Params,
) -> String {
    let text = canonical(study, workload, scaling, resources, params);
    hex(&Sha256::digest(text.as_bytes())[..6])
}

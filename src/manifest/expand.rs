//! Expansion of a checked study into its points, and point ids.
//!
//! A study with composite axes A (a values), B (b values), C (c values) expands into a × b × c
//! points in odometer order: C varies fastest. The work per point is one clone of the defaults,
//! one override per axis and one sha256 of a short canonical text; 100 000 points take a few
//! tens of milliseconds (see `benches/benchmarks/plan.rs`). The checker expands every valid study
//! once, checks its points ([`super::points`]) and keeps them in the [`super::Manifest`];
//! [`crate::plan::expand`] reuses them (a hand-built manifest's studies are expanded again by
//! [`super::Manifest::with_studies`]).

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

use super::{hex, Resources, Scaling, Study};
use crate::manifest::Point;
use crate::value::Value;
use crate::workload::Params;

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
    let slots: Vec<Slot> = study.axes.iter().map(|a| Slot::of(&a.name)).collect();
    let groups = study.composite_axes();
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
    let mut index = vec![0usize; groups.len()];
    let mut canon = String::with_capacity(256);
    loop {
        let (res, params) = values_at(study, &slots, &groups, &index, &base);
        canonical_into(
            &mut canon,
            &study.name,
            w.name(),
            study.scaling,
            &res,
            &params,
        );
        let id = hex(&Sha256::digest(canon.as_bytes())[..6]);
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
            oversubscribed: study.oversubscribe && res.workers_per_node() > cores as u64,
            data: None,
        });
        if !advance(&mut index, &lens) {
            return;
        }
    }
}

impl Slot<'_> {
    fn of(name: &str) -> Slot<'_> {
        match name {
            "threads" => Slot::Threads,
            "ranks" => Slot::Ranks,
            "ranks_per_node" => Slot::RanksPerNode,
            "nodes" => Slot::Nodes,
            "gpus" => Slot::Gpus,
            other => Slot::Param(other),
        }
    }
}

/// The resources and parameters of the point at `index` (one position per composite axis):
/// `base` with each axis value put in its slot, nodes from `ranks_per_node`, and a weak study's
/// `size` (the workload's `weak_param`: `batch` for `mpi.train`) grown for the point's workers.
fn values_at(
    study: &Study,
    slots: &[Slot],
    groups: &[Vec<usize>],
    index: &[usize],
    base: &Params,
) -> (Resources, Params) {
    let mut res = Resources::default();
    let mut per_node: Option<u32> = None;
    let mut params = base.clone();
    for (g, &i) in groups.iter().zip(index) {
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
    if study.scaling == Scaling::Weak {
        let p = res.workers();
        match params.0.get_mut(study.workload.weak_param()) {
            Some(Value::Size(s)) => *s = s.with_value(study.weak_rule.scale(s.value(), p)),
            Some(Value::Int(n)) => *n = study.weak_rule.scale(*n, p),
            _ => {}
        }
    }
    (res, params)
}

/// Step the odometer: the last composite axis varies fastest. False after the last point.
fn advance(index: &mut [usize], lens: &[usize]) -> bool {
    let mut k = index.len();
    loop {
        if k == 0 {
            return false;
        }
        k -= 1;
        index[k] += 1;
        if index[k] < lens[k] {
            return true;
        }
        index[k] = 0;
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

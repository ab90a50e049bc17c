//! Per-point checks: rules that depend on a whole combination of axis values, checked on the
//! expanded points of each valid study (the same expansion the plan uses).
//!
//! * the workload's own [`Workload::check`](crate::workload::Workload::check) on each point, for
//!   the point's resources on the context's node (with a relative data file resolved against the
//!   manifest's folder);
//! * no more nodes than ranks;
//! * threads × ranks per node within the node's cores, unless the study sets `oversubscribe`, and
//!   within [`OVERSUBSCRIBE_LIMIT`] workers per core and [`MAX_THREADS_PER_RANK`] /
//!   [`MAX_RANKS_PER_NODE`] even then;
//! * weak-scaled sizes that still fit;
//! * no two points with the same id.
//!
//! Failures are grouped: one problem per distinct message, naming the first point that fails it
//! and how many more do, so a 100 000-point study with one bad value reads as one problem.

use std::collections::HashMap;

use super::check::{Checker, StudyInfo};
use super::Study;
use crate::plan::{expand_study, resolve_data, Point, Scaling};
use crate::value::Value;
use crate::workload::Target;

/// Most workers (threads × ranks) per core of a node that even `oversubscribe = true` allows.
/// A few workers per core measure time-sharing, which is what oversubscription is for; hundreds
/// measure the operating system's scheduler and its memory for thread stacks, not the code.
pub const OVERSUBSCRIBE_LIMIT: u64 = 8;
/// Most rayon threads one rank may start: above the hardware threads of any node built so far
/// (two 192-core sockets with SMT give 768), and far below the kernel's per-process thread limit.
pub const MAX_THREADS_PER_RANK: u64 = 4096;
/// Most ranks (processes) one node may run, for the same reasons.
pub const MAX_RANKS_PER_NODE: u64 = 4096;

/// Largest size a weak-scaled point may reach (as `Size::parse` accepts).
const MAX_SIZE: u64 = 1_000_000_000_000_000_000;
/// Distinct `check` messages reported per study.
const MAX_CHECK_PROBLEMS: usize = 5;

/// One kind of failure: its message, the first point with it, and how many points have it.
struct Failure {
    message: String,
    first: String,
    count: usize,
}

#[derive(Default)]
struct Failures {
    list: Vec<Failure>,
    index: HashMap<String, usize>,
}

impl Failures {
    fn add(&mut self, message: String, study: &Study, p: &Point) {
        match self.index.get(&message) {
            Some(&i) => self.list[i].count += 1,
            None => {
                self.index.insert(message.clone(), self.list.len());
                self.list.push(Failure {
                    message,
                    first: describe_point(study, p),
                    count: 1,
                });
            }
        }
    }
}

/// Check the points of `study`; `ids` collects point ids across studies (id → study index).
pub(super) fn check_points(
    c: &mut Checker<'_>,
    study: &Study,
    info: &StudyInfo,
    ids: &mut HashMap<u64, usize>,
) {
    let mut points = Vec::with_capacity(study.point_count());
    expand_study(study, c.ctx.node.cores, &mut points);
    let cores = c.ctx.node.cores.max(1) as u64;
    let w = study.workload;
    let line = |key: &str| info.key_lines.get(key).copied().or(info.header);
    let place = info.place.as_str();

    let mut checks = Failures::default();
    let mut nodes = Failures::default();
    let mut sizes = Failures::default();
    let mut over: Option<(u64, &Point)> = None;
    let mut over_count = 0usize;
    let mut bounds = Failures::default();
    let data_dir = c.data_dir();
    let mut duplicates: Vec<(&Point, usize)> = Vec::new();
    for p in &points {
        let r = p.resources;
        if r.nodes > r.ranks {
            nodes.add(
                format!("{} nodes but only {} ranks", r.nodes, r.ranks),
                study,
                p,
            );
        }
        let ranks_per_node = u64::from(r.ranks.div_ceil(r.nodes.max(1)));
        let per_node = ranks_per_node * u64::from(r.threads);
        if u64::from(r.threads) > MAX_THREADS_PER_RANK {
            bounds.add(
                format!(
                    "{} threads per rank are more than the limit of {MAX_THREADS_PER_RANK}",
                    r.threads
                ),
                study,
                p,
            );
        } else if ranks_per_node > MAX_RANKS_PER_NODE {
            bounds.add(
                format!(
                    "{ranks_per_node} ranks on one node are more than the limit of {MAX_RANKS_PER_NODE}"
                ),
                study,
                p,
            );
        } else if study.oversubscribe && per_node > OVERSUBSCRIBE_LIMIT.saturating_mul(cores) {
            bounds.add(
                format!(
                    "{} threads × {ranks_per_node} rank{} per node = {per_node} workers exceed {OVERSUBSCRIBE_LIMIT} per core of the node's {cores} cores ({}), the most oversubscribe allows",
                    r.threads,
                    if ranks_per_node == 1 { "" } else { "s" },
                    OVERSUBSCRIBE_LIMIT.saturating_mul(cores)
                ),
                study,
                p,
            );
        }
        if per_node > cores && !study.oversubscribe {
            over_count += 1;
            if over.is_none_or(|(worst, _)| per_node > worst) {
                over = Some((per_node, p));
            }
        }
        if p.scaling == Scaling::Weak {
            if let Some(Value::Size(s)) = p.params.get("size") {
                if s.value() > MAX_SIZE {
                    sizes.add(
                        format!("weak scaling grows `size` to {s}, beyond 10^18"),
                        study,
                        p,
                    );
                }
            }
        }
        let target = Target {
            resources: r,
            node: c.ctx.node,
        };
        let checked = match resolve_data(w, &p.params, &data_dir) {
            Some((key, path)) => {
                let mut params = p.params.clone();
                params
                    .0
                    .insert(key.into(), Value::Text(path.to_string_lossy().into_owned()));
                w.check(&params, &target)
            }
            None => w.check(&p.params, &target),
        };
        if let Err(m) = checked {
            checks.add(m, study, p);
        }
        let key = u64::from_str_radix(&p.id, 16).unwrap_or(u64::MAX);
        if let Some(other) = ids.insert(key, study.index) {
            duplicates.push((p, other));
        }
    }

    let more = |n: usize| match n {
        0 | 1 => String::new(),
        2 => " (and 1 more point)".to_string(),
        _ => format!(" (and {} more points)", n - 1),
    };
    for f in checks.list.iter().take(MAX_CHECK_PROBLEMS) {
        c.push(
            info.header,
            place,
            format!("point {}{}: {}", f.first, more(f.count), f.message),
            format!(
                "change or remove these values ({} checks every point before anything runs)",
                w.name()
            ),
        );
    }
    if checks.list.len() > MAX_CHECK_PROBLEMS {
        let rest: usize = checks.list[MAX_CHECK_PROBLEMS..]
            .iter()
            .map(|f| f.count)
            .sum();
        c.push(
            info.header,
            place,
            format!("{rest} more points fail {}'s check in other ways", w.name()),
            "fix the problems above first, then check again".into(),
        );
    }
    for f in &nodes.list {
        c.push(
            line("nodes"),
            place,
            format!("point {}{}: {}", f.first, more(f.count), f.message),
            "every node needs at least one rank: set ranks (the total over all nodes) to at least nodes".into(),
        );
    }
    for f in &bounds.list {
        c.push(
            line("threads"),
            place,
            format!("point {}{}: {}", f.first, more(f.count), f.message),
            "lower threads or ranks per node (docs/manifest.md, \"Limits\", gives each limit's reason)".into(),
        );
    }
    for f in &sizes.list {
        c.push(
            line("size"),
            place,
            format!("point {}{}: {}", f.first, more(f.count), f.message),
            "use a smaller size (it is the size for one worker) or fewer workers".into(),
        );
    }
    if let Some((per_node, p)) = over {
        let r = p.resources;
        let what = if r.ranks > 1 {
            format!(
                "{} threads × {} ranks per node = {per_node} workers",
                r.threads,
                r.ranks.div_ceil(r.nodes.max(1))
            )
        } else {
            format!("{} threads", r.threads)
        };
        let key = if r.ranks > 1 && !study.axes.iter().any(|a| a.name == "threads") {
            "ranks"
        } else {
            "threads"
        };
        c.push(
            line(key),
            place,
            format!(
                "point {}{}: {what} exceed the {cores} cores of a node",
                describe_point(study, p),
                more(over_count)
            ),
            "set oversubscribe = true in the study, or lower threads".into(),
        );
    }
    for (p, other) in duplicates.into_iter().take(5) {
        let message = if other == study.index {
            format!(
                "point {} ({}) is produced more than once",
                p.id,
                describe_point(study, p)
            )
        } else {
            format!(
                "point {} ({}) is also produced by study {}",
                p.id,
                describe_point(study, p),
                other + 1
            )
        };
        c.push(
            info.header,
            place,
            message,
            "make the swept values distinct (ranks_per_node values that give the same nodes repeat a point)".into(),
        );
    }
}

/// `threads=2, size=64MiB, variant=naive`: the values of the axes the study sets (with `nodes`
/// for `ranks_per_node`, and the grown `size` of a weak study).
pub(super) fn describe_point(study: &Study, p: &Point) -> String {
    let r = p.resources;
    let mut parts: Vec<String> = Vec::with_capacity(study.axes.len() + 1);
    for a in &study.axes {
        let part = match a.name.as_str() {
            "threads" => format!("threads={}", r.threads),
            "ranks" => format!("ranks={}", r.ranks),
            "nodes" | "ranks_per_node" => format!("nodes={}", r.nodes),
            "gpus" => format!("gpus={}", r.gpus),
            name => match p.params.get(name) {
                Some(v) => format!("{name}={v}"),
                None => continue,
            },
        };
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    if p.scaling == Scaling::Weak && !study.axes.iter().any(|a| a.name == "size") {
        if let Some(v) = p.params.get("size") {
            parts.push(format!("size={v}"));
        }
    }
    if parts.is_empty() {
        "(the study's only point)".into()
    } else {
        parts.join(", ")
    }
}

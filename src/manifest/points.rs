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
use super::{resolve_data, Point};
use super::{Problem, Scaling, Study, MAX_POINTS};
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

/// What the checks found on the points of one study, before it is reported.
#[derive(Default)]
struct Findings<'p> {
    /// The workload's own `check`.
    checks: Failures,
    /// More nodes than ranks.
    nodes: Failures,
    /// Weak-scaled sizes beyond [`MAX_SIZE`].
    sizes: Failures,
    /// Threads or ranks per node over the limits, oversubscribed or not.
    bounds: Failures,
    /// The point with the most workers per node above the cores (without `oversubscribe`), and
    /// how many points are above.
    over: Option<(u64, &'p Point)>,
    over_count: usize,
    /// Points whose id an earlier point has, with that point's study index.
    duplicates: Vec<(&'p Point, usize)>,
}

/// Check the points of `study` (its expansion, [`expand_study`](super::expand_study)); `ids`
/// collects point ids across studies (id → study index).
pub(super) fn check_points(
    c: &mut Checker<'_>,
    study: &Study,
    info: &StudyInfo,
    points: &[Point],
    ids: &mut HashMap<u64, usize>,
) {
    let findings = scan(c, study, points, ids);
    report(c, study, info, findings);
}

/// Run every per-point check on `points`, collecting the failures.
fn scan<'p>(
    c: &Checker<'_>,
    study: &Study,
    points: &'p [Point],
    ids: &mut HashMap<u64, usize>,
) -> Findings<'p> {
    let cores = c.ctx.node.cores.max(1) as u64;
    let w = study.workload;
    let data_dir = c.data_dir();
    let mut f = Findings::default();
    for p in points {
        let r = p.resources;
        if r.nodes > r.ranks {
            f.nodes.add(
                format!("{} nodes but only {} ranks", r.nodes, r.ranks),
                study,
                p,
            );
        }
        let ranks_per_node = u64::from(r.ranks.div_ceil(r.nodes.max(1)));
        let per_node = ranks_per_node * u64::from(r.threads);
        if let Some(message) = over_bounds(study, p, cores) {
            f.bounds.add(message, study, p);
        }
        if per_node > cores && !study.oversubscribe {
            f.over_count += 1;
            if f.over.is_none_or(|(worst, _)| per_node > worst) {
                f.over = Some((per_node, p));
            }
        }
        if p.scaling == Scaling::Weak {
            if let Some(Value::Size(s)) = p.params.get("size") {
                if s.value() > MAX_SIZE {
                    f.sizes.add(
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
            f.checks.add(m, study, p);
        }
    }
    f.duplicates = repeated_ids(points, ids);
    f
}

/// The points whose id an earlier point already has, each with the study index of that earlier
/// point. `ids` (id → study index) carries across studies. Both the checker and
/// [`Manifest::with_studies`](super::Manifest::with_studies) (for hand-built manifests) find
/// duplicates with this.
pub(crate) fn repeated_ids<'p>(
    points: &'p [Point],
    ids: &mut HashMap<u64, usize>,
) -> Vec<(&'p Point, usize)> {
    let mut repeated = Vec::new();
    for p in points {
        let key = u64::from_str_radix(&p.id, 16).unwrap_or(u64::MAX);
        if let Some(other) = ids.insert(key, p.study) {
            repeated.push((p, other));
        }
    }
    repeated
}

/// The number of points `studies` expand into, or the problem when it is above [`MAX_POINTS`].
pub(crate) fn plan_size<'s>(
    studies: impl IntoIterator<Item = &'s Study>,
) -> Result<usize, Problem> {
    let total = studies
        .into_iter()
        .fold(0usize, |acc, s| acc.saturating_add(s.point_count()));
    if total > MAX_POINTS {
        return Err(Problem {
            line: None,
            place: String::new(),
            message: format!(
                "the manifest expands to {total} points, more than the limit of {MAX_POINTS}"
            ),
            fix: "sweep fewer values, or split the experiment into several manifests".into(),
        });
    }
    Ok(total)
}

/// The points of hand-built `studies` (their expansion) whose id an earlier point has, as
/// problems (at most 10): the guard [`Manifest::with_studies`](super::Manifest::with_studies)
/// keeps in place of the checker's.
pub(crate) fn hand_built_duplicates(studies: &[Study], points: &[Point]) -> Vec<Problem> {
    let mut ids = HashMap::with_capacity(points.len());
    let mut problems = Vec::new();
    for (p, other) in repeated_ids(points, &mut ids).into_iter().take(10) {
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
                    studies.get(other).map_or("?", |s| s.name.as_str())
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
    problems
}

/// Threads per rank or ranks per node above their limits, or (with `oversubscribe`) workers
/// per node above [`OVERSUBSCRIBE_LIMIT`] per core: the first that applies.
fn over_bounds(study: &Study, p: &Point, cores: u64) -> Option<String> {
    let r = p.resources;
    let ranks_per_node = u64::from(r.ranks.div_ceil(r.nodes.max(1)));
    let per_node = ranks_per_node * u64::from(r.threads);
    if u64::from(r.threads) > MAX_THREADS_PER_RANK {
        Some(format!(
            "{} threads per rank are more than the limit of {MAX_THREADS_PER_RANK}",
            r.threads
        ))
    } else if ranks_per_node > MAX_RANKS_PER_NODE {
        Some(format!(
            "{ranks_per_node} ranks on one node are more than the limit of {MAX_RANKS_PER_NODE}"
        ))
    } else if study.oversubscribe && per_node > OVERSUBSCRIBE_LIMIT.saturating_mul(cores) {
        Some(format!(
            "{} threads × {ranks_per_node} rank{} per node = {per_node} workers exceed {OVERSUBSCRIBE_LIMIT} per core of the node's {cores} cores ({}), the most oversubscribe allows",
            r.threads,
            crate::units::plural(ranks_per_node),
            OVERSUBSCRIBE_LIMIT.saturating_mul(cores)
        ))
    } else {
        None
    }
}

/// " (and 3 more points)" after the first point of a failure that `n` points share.
fn more(n: usize) -> String {
    match n {
        0 | 1 => String::new(),
        2 => " (and 1 more point)".to_string(),
        _ => format!(" (and {} more points)", n - 1),
    }
}

/// Push the findings as problems, one per distinct failure, in a fixed order: the workload's
/// checks, nodes, bounds, sizes, cores, duplicate ids.
fn report(c: &mut Checker<'_>, study: &Study, info: &StudyInfo, f: Findings<'_>) {
    let w = study.workload;
    let line = |key: &str| info.key_lines.get(key).copied().or(info.header);
    let place = info.place.as_str();
    for fl in f.checks.list.iter().take(MAX_CHECK_PROBLEMS) {
        c.push(
            info.header,
            place,
            format!("point {}{}: {}", fl.first, more(fl.count), fl.message),
            format!(
                "change or remove these values ({} checks every point before anything runs)",
                w.name()
            ),
        );
    }
    if f.checks.list.len() > MAX_CHECK_PROBLEMS {
        let rest: usize = f.checks.list[MAX_CHECK_PROBLEMS..]
            .iter()
            .map(|fl| fl.count)
            .sum();
        c.push(
            info.header,
            place,
            format!("{rest} more points fail {}'s check in other ways", w.name()),
            "fix the problems above first, then check again".into(),
        );
    }
    let grouped = [
        (&f.nodes, "nodes", "every node needs at least one rank: set ranks (the total over all nodes) to at least nodes"),
        (&f.bounds, "threads", "lower threads or ranks per node (docs/manifest.md, \"Limits\", gives each limit's reason)"),
        (&f.sizes, "size", "use a smaller size (it is the size for one worker) or fewer workers"),
    ];
    for (failures, key, fix) in grouped {
        for fl in &failures.list {
            c.push(
                line(key),
                place,
                format!("point {}{}: {}", fl.first, more(fl.count), fl.message),
                fix.into(),
            );
        }
    }
    if let Some((per_node, p)) = f.over {
        report_over_cores(c, study, info, p, per_node, f.over_count);
    }
    for (p, other) in f.duplicates.into_iter().take(5) {
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

/// The point with the most workers per node above the node's cores (of `count` such points).
fn report_over_cores(
    c: &mut Checker<'_>,
    study: &Study,
    info: &StudyInfo,
    p: &Point,
    per_node: u64,
    count: usize,
) {
    let cores = c.ctx.node.cores.max(1) as u64;
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
        info.key_lines.get(key).copied().or(info.header),
        &info.place,
        format!(
            "point {}{}: {what} exceed the {cores} cores of a node",
            describe_point(study, p),
            more(count)
        ),
        "set oversubscribe = true in the study, or lower threads".into(),
    );
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

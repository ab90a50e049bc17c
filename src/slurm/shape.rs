//! Resource shapes: which points can share one job array, and what the arrays cost.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::units::{format_mem_mb, format_time};
use super::Settings;
use crate::plan::Point;

/// What one array task asks SLURM for. Points with equal shapes go into one job array.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shape {
    pub nodes: u32,
    /// `--ntasks`: the point's MPI ranks (1 without MPI).
    pub tasks: u32,
    /// `--cpus-per-task`: the point's rayon threads per rank.
    pub cpus_per_task: u32,
    /// `--gpus-per-task`: the point's GPUs per rank.
    pub gpus_per_task: u32,
    /// `--mem` per node in megabytes; `None` takes the partition's default.
    pub mem_mb: Option<u64>,
    /// `--time` in seconds.
    pub time_s: u64,
}

/// Per-point changes a resubmission makes to the manifest's settings (after OUT_OF_MEMORY or
/// TIMEOUT), kept in `slurm/overrides.json`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Override {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mem_mb: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_s: Option<u64>,
}

/// Slack added to a point's own time limit when the manifest sets no `[slurm] time`: starting the
/// step and writing the record.
pub const START_SLACK_S: u64 = 60;

impl Shape {
    /// The shape of `point` under `settings`, with its resubmission override if any.
    pub fn of(point: &Point, settings: &Settings, over: Option<&Override>) -> Shape {
        let r = &point.resources;
        let time_s = over.and_then(|o| o.time_s).unwrap_or_else(|| {
            settings
                .time_s
                .unwrap_or_else(|| point.timeout_s.ceil() as u64 + START_SLACK_S)
        });
        Shape {
            nodes: r.nodes.max(1),
            tasks: r.ranks.max(1),
            cpus_per_task: r.threads.max(1),
            gpus_per_task: r.gpus,
            mem_mb: over.and_then(|o| o.mem_mb).or(settings.mem_mb),
            time_s,
        }
    }

    /// Cores one task of this shape holds.
    pub fn cores(&self) -> u64 {
        self.tasks as u64 * self.cpus_per_task as u64
    }

    /// GPUs one task of this shape holds.
    pub fn gpus(&self) -> u64 {
        self.tasks as u64 * self.gpus_per_task as u64
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::units::count;
        write!(
            f,
            "{} × {} × {}",
            count(self.nodes as u64, "node"),
            count(self.tasks as u64, "task"),
            count(self.cpus_per_task as u64, "CPU")
        )?;
        if self.gpus_per_task > 0 {
            write!(f, " × {}", count(self.gpus_per_task as u64, "GPU"))?;
        }
        if let Some(mem) = self.mem_mb {
            write!(f, ", {} per node", format_mem_mb(mem))?;
        }
        write!(f, ", {}", format_time(self.time_s))
    }
}

/// Group the points by shape, in order of first appearance; each group lists indices into `points`
/// in plan order.
pub fn group(
    points: &[&Point],
    settings: &Settings,
    overrides: &BTreeMap<String, Override>,
) -> Vec<(Shape, Vec<usize>)> {
    let mut index: HashMap<Shape, usize> = HashMap::new();
    let mut groups: Vec<(Shape, Vec<usize>)> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let shape = Shape::of(p, settings, overrides.get(&p.id));
        let g = *index.entry(shape).or_insert_with(|| {
            groups.push((shape, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    groups
}

/// One job to submit: an array of `points.len()` tasks of one shape, or (packed) one allocation of
/// that shape that runs the points one after another.
#[derive(Clone, Debug, PartialEq)]
pub struct ArrayJob {
    pub shape: Shape,
    /// Indices into the submitted points, task `i` runs `points[i]`.
    pub points: Vec<usize>,
    /// `%K` of `--array=0-N%K`: tasks of this array running at once (None: no limit).
    pub throttle: Option<u64>,
}

impl ArrayJob {
    /// `--array` value: `0-N` or `0-N%K`.
    pub fn array_spec(&self) -> String {
        let last = self.points.len().saturating_sub(1);
        match self.throttle {
            Some(k) => format!("0-{last}%{k}"),
            None => format!("0-{last}"),
        }
    }
}

/// Split each shape's points into arrays whose indices stay below `max_array_size` (SLURM's
/// MaxArraySize: the highest index is MaxArraySize − 1), throttled to `throttle` tasks at once.
pub fn split_arrays(
    groups: &[(Shape, Vec<usize>)],
    max_array_size: u64,
    throttle: Option<u64>,
) -> Vec<ArrayJob> {
    let chunk = max_array_size.max(1) as usize;
    groups
        .iter()
        .flat_map(|(shape, points)| {
            points.chunks(chunk).map(move |c| ArrayJob {
                shape: *shape,
                points: c.to_vec(),
                // A throttle above the array's size changes nothing; leave it out of the script.
                throttle: throttle.filter(|&k| (k as usize) < c.len()),
            })
        })
        .collect()
}

/// What a submission requests, for the cost preview ("good citizenship"): resources times time
/// limits, the most the jobs can use.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cost {
    /// Jobs submitted, the final collect job included.
    pub jobs: usize,
    /// Array tasks (or packed points).
    pub tasks: usize,
    pub core_hours: f64,
    pub gpu_hours: f64,
}

impl Cost {
    /// The cost of `jobs` as arrays (each task its own allocation) or packed (one allocation per job
    /// lasting the sum of its points' limits), plus one collect job of one core.
    pub fn of(jobs: &[ArrayJob], collect_time_s: u64) -> Cost {
        let mut cost = Cost {
            jobs: jobs.len() + 1,
            tasks: 0,
            core_hours: collect_time_s as f64 / 3600.0,
            gpu_hours: 0.0,
        };
        for job in jobs {
            let n = job.points.len();
            let hours = n as f64 * job.shape.time_s as f64 / 3600.0;
            cost.tasks += n;
            cost.core_hours += hours * job.shape.cores() as f64;
            cost.gpu_hours += hours * job.shape.gpus() as f64;
        }
        cost
    }

    /// One line: "4 jobs (3 arrays, 120 tasks + collect), 12.5 core-hours, 0 GPU-hours requested".
    pub fn describe(&self, packed: bool) -> String {
        let n = self.jobs - 1;
        let kind = match (packed, n == 1) {
            (true, true) => "packed job",
            (true, false) => "packed jobs",
            (false, true) => "array",
            (false, false) => "arrays",
        };
        format!(
            "{} job{} ({n} {kind} of {} point{} + 1 collect job), {} core-hours and {} GPU-hours requested at most",
            self.jobs,
            crate::units::plural(self.jobs),
            self.tasks,
            crate::units::plural(self.tasks),
            hours(self.core_hours),
            hours(self.gpu_hours),
        )
    }
}

fn hours(h: f64) -> String {
    if h == 0.0 {
        "0".into()
    } else if h < 10.0 {
        format!("{h:.2}")
    } else {
        format!("{h:.0}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::plan::{Resources, Scaling};
    use crate::workload::Params;

    pub(crate) fn point(id: &str, ranks: u32, threads: u32, gpus: u32) -> Point {
        Point {
            id: id.into(),
            study: 0,
            study_name: "s".into(),
            workload: "debug.sleep".into(),
            scaling: Scaling::Strong,
            resources: Resources {
                nodes: 1,
                ranks,
                threads,
                gpus,
            },
            params: Params::default(),
            repetitions: 1,
            warmup: 0,
            timeout_s: 120.0,
            oversubscribed: false,
            data: None,
        }
    }

    fn settings() -> Settings {
        Settings::default()
    }

    #[test]
    fn points_group_by_shape_in_order_of_appearance() {
        let pts = [
            point("a", 1, 1, 0),
            point("b", 1, 2, 0),
            point("c", 1, 1, 0),
            point("d", 2, 1, 0),
            point("e", 1, 2, 0),
        ];
        let refs: Vec<&Point> = pts.iter().collect();
        let groups = group(&refs, &settings(), &BTreeMap::new());
        let ids: Vec<Vec<&str>> = groups
            .iter()
            .map(|(_, g)| g.iter().map(|&i| pts[i].id.as_str()).collect())
            .collect();
        assert_eq!(ids, [vec!["a", "c"], vec!["b", "e"], vec!["d"]]);
        assert_eq!(groups[2].0.tasks, 2);
        // No [slurm] time: the point's limit plus the start-up slack.
        assert_eq!(groups[0].0.time_s, 180);
    }

    #[test]
    fn overrides_split_a_point_into_its_own_shape() {
        let pts = [point("a", 1, 1, 0), point("b", 1, 1, 0)];
        let refs: Vec<&Point> = pts.iter().collect();
        let mut s = settings();
        s.mem_mb = Some(1000);
        s.time_s = Some(600);
        let over = BTreeMap::from([(
            "b".to_string(),
            Override {
                mem_mb: Some(2000),
                time_s: None,
            },
        )]);
        let groups = group(&refs, &s, &over);
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0.mem_mb, Some(1000));
        assert_eq!(groups[1].0.mem_mb, Some(2000));
        assert_eq!(groups[1].0.time_s, 600);
    }

    #[test]
    fn arrays_split_at_max_array_size_and_keep_the_throttle() {
        let shape = Shape::of(&point("a", 1, 1, 0), &settings(), None);
        let groups = vec![(shape, (0..2500).collect::<Vec<_>>())];
        let jobs = split_arrays(&groups, 1001, Some(8));
        let sizes: Vec<usize> = jobs.iter().map(|j| j.points.len()).collect();
        assert_eq!(sizes, [1001, 1001, 498]);
        assert_eq!(jobs[0].array_spec(), "0-1000%8");
        assert_eq!(jobs[2].array_spec(), "0-497%8");
        assert_eq!(jobs[1].points[0], 1001);
        // A throttle at least the array's size is left out.
        let small = split_arrays(&[(shape, vec![0, 1, 2])], 1001, Some(8));
        assert_eq!(small[0].array_spec(), "0-2");
    }

    #[test]
    fn cost_counts_cores_gpus_and_time_limits() {
        let mut s = settings();
        s.time_s = Some(1800);
        let cpu = Shape::of(&point("a", 2, 4, 0), &s, None);
        let gpu = Shape::of(&point("b", 1, 1, 2), &s, None);
        let jobs = [
            ArrayJob {
                shape: cpu,
                points: vec![0, 1, 2, 3],
                throttle: None,
            },
            ArrayJob {
                shape: gpu,
                points: vec![4],
                throttle: None,
            },
        ];
        let c = Cost::of(&jobs, 600);
        assert_eq!(c.jobs, 3);
        assert_eq!(c.tasks, 5);
        // 4 tasks × 8 cores × 0.5 h + 1 × 1 × 0.5 + collect 1/6 h.
        assert!((c.core_hours - (16.0 + 0.5 + 1.0 / 6.0)).abs() < 1e-9);
        assert!((c.gpu_hours - 1.0).abs() < 1e-9);
        assert_eq!(
            c.describe(false),
            "3 jobs (2 arrays of 5 points + 1 collect job), 17 core-hours and 1.00 GPU-hours requested at most"
        );
        assert_eq!(format!("{cpu}"), "1 node × 2 tasks × 4 CPUs, 00:30:00");
        assert_eq!(
            format!("{gpu}"),
            "1 node × 1 task × 1 CPU × 2 GPUs, 00:30:00"
        );
    }
}

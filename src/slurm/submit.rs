//! Talking to SLURM (`sbatch`, `sacct`, `sinfo`, `scontrol`), and preparing a submission round:
//! shapes → arrays → task files and scripts → job ids in `slurm/jobs.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::script::{self, ScriptContext};
use super::shape::{self, ArrayJob, Cost, Override, Shape};
use super::units::{format_mem_mb, format_time, parse_time_s};
use super::Settings;
use crate::files::write_atomic;
use crate::plan::Point;
use crate::results::RunDir;

/// MaxArraySize when the manifest does not set `max_array` and `scontrol` cannot tell: SLURM's
/// default.
pub const DEFAULT_MAX_ARRAY_SIZE: u64 = 1001;

/// What a submission needs from SLURM; [`CommandSlurm`] runs the real commands, tests use fakes.
pub trait Slurm {
    /// Submit `script` (with `--dependency=<dependency>` when given) and return the job id.
    fn sbatch(&mut self, script: &Path, dependency: Option<&str>) -> Result<String>;
    /// `sacct -P -n --format=sacct::FORMAT -j <ids>` output.
    fn sacct(&mut self, job_ids: &[String]) -> Result<String>;
    /// The partitions `sinfo` reports, or `None` when `sinfo` cannot be asked.
    fn partitions(&mut self) -> Option<Vec<Partition>>;
    /// The cluster's MaxArraySize, when `scontrol` can be asked.
    fn max_array_size(&mut self) -> Option<u64>;
}

/// The text shown when a SLURM command is missing.
pub fn missing_command(name: &str) -> String {
    format!(
        "`{name}` was not found on PATH: run scalelab on the cluster's login node (after `module load slurm` if your site needs it), or start a one-node SLURM here with `bash scripts/local-slurm.sh up`"
    )
}

/// Whether `name` is an executable file in one of PATH's folders.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
}

/// Runs the SLURM commands found on PATH.
#[derive(Debug, Default)]
pub struct CommandSlurm;

impl CommandSlurm {
    fn output(cmd: &mut Command, name: &str) -> Result<String> {
        if !on_path(name) {
            bail!("{}", missing_command(name));
        }
        let out = cmd.output().with_context(|| format!("running {name}"))?;
        if !out.status.success() {
            bail!(
                "{name} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Slurm for CommandSlurm {
    fn sbatch(&mut self, script: &Path, dependency: Option<&str>) -> Result<String> {
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable");
        if let Some(d) = dependency {
            cmd.arg(format!("--dependency={d}"));
        }
        cmd.arg(script);
        let out = Self::output(&mut cmd, "sbatch")
            .with_context(|| format!("submitting {}", script.display()))?;
        // `--parsable` prints `<id>` or `<id>;<cluster>`.
        let id = out.trim().split(';').next().unwrap_or("").to_string();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
            bail!(
                "sbatch printed {:?} instead of a job id for {}",
                out.trim(),
                script.display()
            );
        }
        Ok(id)
    }

    fn sacct(&mut self, job_ids: &[String]) -> Result<String> {
        let mut all = String::new();
        // Keep each command line short; clusters answer a few hundred ids at a time happily.
        for chunk in job_ids.chunks(200) {
            all.push_str(&Self::output(
                Command::new("sacct").args([
                    "-P",
                    "-n",
                    &format!("--format={}", super::sacct::FORMAT),
                    "-j",
                    &chunk.join(","),
                ]),
                "sacct",
            )?);
        }
        Ok(all)
    }

    fn partitions(&mut self) -> Option<Vec<Partition>> {
        let out = Self::output(
            Command::new("sinfo").args(["-h", "-o", "%P|%l|%c|%m|%D"]),
            "sinfo",
        )
        .ok()?;
        Some(parse_sinfo(&out))
    }

    fn max_array_size(&mut self) -> Option<u64> {
        let out = Self::output(
            Command::new("scontrol").args(["show", "config"]),
            "scontrol",
        )
        .ok()?;
        out.lines().find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok())?
        })
    }
}

/// A partition's limits, from `sinfo -h -o '%P|%l|%c|%m|%D'`.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub name: String,
    pub default: bool,
    /// MaxTime in seconds (`None`: infinite).
    pub max_time_s: Option<u64>,
    pub cpus_per_node: u64,
    pub mem_per_node_mb: u64,
    pub nodes: u64,
}

/// Parse sinfo's `%P|%l|%c|%m|%D` lines (one per partition and node kind; the largest node counts).
pub fn parse_sinfo(text: &str) -> Vec<Partition> {
    let mut out: Vec<Partition> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.trim().split('|').collect();
        if f.len() < 5 {
            continue;
        }
        let num = |s: &str| s.trim_end_matches('+').parse::<u64>().unwrap_or(0);
        let p = Partition {
            name: f[0].trim_end_matches('*').to_string(),
            default: f[0].ends_with('*'),
            max_time_s: parse_time_s(f[1]).ok(),
            cpus_per_node: num(f[2]),
            mem_per_node_mb: num(f[3]),
            nodes: num(f[4]),
        };
        match out.iter_mut().find(|q| q.name == p.name) {
            Some(q) => {
                q.cpus_per_node = q.cpus_per_node.max(p.cpus_per_node);
                q.mem_per_node_mb = q.mem_per_node_mb.max(p.mem_per_node_mb);
                q.nodes += p.nodes;
            }
            None => out.push(p),
        }
    }
    out
}

/// Check `shapes` against `partition`'s limits; one message per shape that cannot run there.
pub fn check_limits(
    manifest: &Path,
    partition: &Partition,
    shapes: &[Shape],
    packed_time_s: &[u64],
) -> Vec<String> {
    let mut problems = Vec::new();
    let place = format!(
        "{}: [slurm] partition {:?}",
        manifest.display(),
        partition.name
    );
    for (shape, time_s) in shapes.iter().zip(packed_time_s) {
        let per_node_cpus = shape.cores().div_ceil(shape.nodes.max(1) as u64);
        if shape.nodes as u64 > partition.nodes {
            problems.push(format!(
                "{place} has {} node{}, but points of shape {shape} ask for {}; lower `nodes` (or `ranks` / `ranks_per_node`) in the study",
                partition.nodes,
                crate::units::plural(partition.nodes as usize),
                shape.nodes
            ));
        }
        if per_node_cpus > partition.cpus_per_node {
            problems.push(format!(
                "{place} has {} CPUs per node, but points of shape {shape} ask for {per_node_cpus} on one node; lower `threads` or `ranks`, or raise `nodes`",
                partition.cpus_per_node
            ));
        }
        if let Some(mem) = shape.mem_mb {
            if mem > partition.mem_per_node_mb {
                problems.push(format!(
                    "{place} has {} of memory per node, but [slurm] mem asks for {}; lower `mem`",
                    format_mem_mb(partition.mem_per_node_mb),
                    format_mem_mb(mem)
                ));
            }
        }
        if let Some(max) = partition.max_time_s {
            if *time_s > max {
                problems.push(format!(
                    "{place} allows jobs of at most {}, but points of shape {shape} ask for {}; lower [slurm] time (or the study's `timeout`), or pack fewer points per job",
                    format_time(max),
                    format_time(*time_s)
                ));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// `slurm/jobs.json`: every submission round of a run and its job ids.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Jobs {
    pub rounds: Vec<Round>,
}

/// One submission (`scalelab sbatch`, then each `--resume`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Round {
    pub round: u32,
    pub submitted: String,
    pub packed: bool,
    pub jobs: Vec<JobRecord>,
    /// The dependent collect-and-report job.
    pub collect: Option<String>,
}

/// One submitted array (or packed job): task `i` ran `points[i]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    /// The script, relative to the run directory.
    pub script: String,
    pub points: Vec<String>,
}

impl Jobs {
    pub fn path(run: &RunDir) -> PathBuf {
        run.root.join("slurm").join("jobs.json")
    }

    /// The run's submissions (none yet: empty).
    pub fn load(run: &RunDir) -> Result<Jobs> {
        let path = Jobs::path(run);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is corrupt; it lists the submitted job ids: restore it or start a new run",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Jobs::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, run: &RunDir) -> Result<()> {
        write_atomic(&Jobs::path(run), &serde_json::to_vec_pretty(self)?)
    }

    /// Every job id (arrays and packed jobs; not the collect jobs).
    pub fn job_ids(&self) -> Vec<String> {
        self.rounds
            .iter()
            .flat_map(|r| r.jobs.iter().map(|j| j.job_id.clone()))
            .collect()
    }

    /// For each point, the last job and task it was submitted in, and whether that job was packed.
    pub fn latest(&self) -> BTreeMap<&str, (&str, u64, bool)> {
        let mut out = BTreeMap::new();
        for round in &self.rounds {
            for job in &round.jobs {
                for (i, id) in job.points.iter().enumerate() {
                    out.insert(id.as_str(), (job.job_id.as_str(), i as u64, round.packed));
                }
            }
        }
        out
    }

    /// The next round's number.
    pub fn next_round(&self) -> u32 {
        self.rounds.iter().map(|r| r.round).max().unwrap_or(0) + 1
    }
}

/// `slurm/overrides.json`: per-point memory and time set by resubmissions.
pub fn overrides_path(run: &RunDir) -> PathBuf {
    run.root.join("slurm").join("overrides.json")
}

pub fn load_overrides(run: &RunDir) -> Result<BTreeMap<String, Override>> {
    let path = overrides_path(run);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is corrupt; delete it to use the manifest's memory and time",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// One script of a round, rendered: where it goes, its text, its task file and points.
#[derive(Clone, Debug)]
pub struct Rendered {
    pub path: PathBuf,
    pub text: String,
    pub tasks_path: PathBuf,
    /// One point as JSON per line: line `i` is task `i`.
    pub tasks: String,
    pub points: Vec<String>,
}

/// A round ready to write and submit.
#[derive(Clone, Debug)]
pub struct RoundPlan {
    pub round: u32,
    pub packed: bool,
    pub jobs: Vec<ArrayJob>,
    pub scripts: Vec<Rendered>,
    pub collect_path: PathBuf,
    pub collect: String,
    /// `scalelab sbatch --calibrate`: the calibration job's script path and text (submitted
    /// first; the collect job waits for it like for the arrays).
    pub calibrate: Option<(PathBuf, String)>,
    pub cost: Cost,
}

/// Group `points` by shape, split into arrays below `max_array_size` (or one packed job per
/// shape), and render every script and task file of round `ctx.round`.
pub fn prepare_round(
    ctx: &ScriptContext<'_>,
    points: &[&Point],
    overrides: &BTreeMap<String, Override>,
    max_array_size: u64,
    packed: bool,
) -> Result<RoundPlan> {
    let groups = shape::group(points, ctx.settings, overrides);
    let jobs = if packed {
        groups
            .iter()
            .map(|(s, idx)| ArrayJob {
                shape: *s,
                points: idx.clone(),
                throttle: None,
            })
            .collect()
    } else {
        shape::split_arrays(&groups, max_array_size, ctx.settings.throttle)
    };
    let dir = ctx.round_dir();
    let count = jobs.len();
    let mut scripts = Vec::with_capacity(count);
    for (n, job) in jobs.iter().enumerate() {
        let stem = if packed { "pack" } else { "array" };
        let tasks_path = dir.join(format!("{stem}-{}.tasks", n + 1));
        let text = if packed {
            script::render_pack(ctx, job, n + 1, count, &tasks_path)
        } else {
            script::render_array(ctx, job, n + 1, count, &tasks_path)
        };
        let mut tasks = String::new();
        for &i in &job.points {
            tasks.push_str(&serde_json::to_string(points[i])?);
            tasks.push('\n');
        }
        scripts.push(Rendered {
            path: dir.join(format!("{stem}-{}.sbatch", n + 1)),
            text,
            tasks_path,
            tasks,
            points: job.points.iter().map(|&i| points[i].id.clone()).collect(),
        });
    }
    let mut cost = Cost::of(&jobs, script::COLLECT_TIME_S);
    if packed {
        // A packed job holds its allocation for the sum of its points' limits: same core-hours.
        cost.tasks = points.len();
    }
    Ok(RoundPlan {
        round: ctx.round,
        packed,
        jobs,
        scripts,
        collect_path: dir.join("collect.sbatch"),
        collect: script::render_collect(ctx),
        calibrate: None,
        cost,
    })
}

impl RoundPlan {
    /// Write every script and task file (and the logs folder the scripts write to).
    pub fn write(&self) -> Result<()> {
        for s in &self.scripts {
            write_atomic(&s.tasks_path, s.tasks.as_bytes())?;
            write_script(&s.path, &s.text)?;
        }
        write_script(&self.collect_path, &self.collect)?;
        if let Some((path, text)) = &self.calibrate {
            write_script(path, text)?;
        }
        let logs = self.collect_path.with_file_name("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))
    }

    /// The `sbatch` command lines [`RoundPlan::submit`] runs, in its order, as a shell script a
    /// student can read (or run by hand): each job's id is kept in a shell variable named after
    /// its script (`array1=$(sbatch --parsable .../array-1.sbatch)`), and the collect job waits
    /// for all of them with `--dependency=afterany:$array1:...`, so the report is written when
    /// every array has ended, however its tasks ended.
    pub fn sbatch_commands(&self) -> Vec<String> {
        let var = |path: &Path| -> String {
            path.file_stem()
                .map(|s| {
                    s.to_string_lossy()
                        .replace(|c: char| !c.is_ascii_alphanumeric(), "")
                })
                .unwrap_or_default()
        };
        let mut lines = Vec::new();
        let mut vars = Vec::new();
        let paths = self
            .calibrate
            .iter()
            .map(|(p, _)| p)
            .chain(self.scripts.iter().map(|s| &s.path));
        for path in paths {
            let v = var(path);
            lines.push(format!("{v}=$(sbatch --parsable {})", script::quote(path)));
            vars.push(format!("${v}"));
        }
        lines.push(format!(
            "sbatch --parsable --dependency=afterany:{} {}",
            vars.join(":"),
            script::quote(&self.collect_path)
        ));
        lines
    }

    /// Submit the scripts (written first), then the collect job depending on all of them; record
    /// every id in `jobs.json` as soon as it is known, so an interrupted submission is not lost.
    pub fn submit(&self, run: &RunDir, slurm: &mut dyn Slurm) -> Result<Round> {
        let mut jobs = Jobs::load(run)?;
        jobs.rounds.push(Round {
            round: self.round,
            submitted: crate::units::now_rfc3339(),
            packed: self.packed,
            jobs: Vec::new(),
            collect: None,
        });
        let last = jobs.rounds.len() - 1;
        // The calibration job runs no point: recorded with none, so `status` leaves it out, and
        // the collect job below depends on it like on every array.
        if let Some((path, _)) = &self.calibrate {
            let id = slurm.sbatch(path, None)?;
            jobs.rounds[last].jobs.push(JobRecord {
                job_id: id,
                script: relative(&run.root, path),
                points: Vec::new(),
            });
            jobs.save(run)?;
        }
        for s in &self.scripts {
            let id = slurm.sbatch(&s.path, None)?;
            jobs.rounds[last].jobs.push(JobRecord {
                job_id: id,
                script: relative(&run.root, &s.path),
                points: s.points.clone(),
            });
            jobs.save(run)?;
        }
        let ids: Vec<&str> = jobs.rounds[last]
            .jobs
            .iter()
            .map(|j| j.job_id.as_str())
            .collect();
        let dependency = format!("afterany:{}", ids.join(":"));
        let collect = slurm.sbatch(&self.collect_path, Some(&dependency))?;
        jobs.rounds[last].collect = Some(collect);
        jobs.save(run)?;
        Ok(jobs.rounds[last].clone())
    }
}

fn write_script(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, text.as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// The settings a submission needs: a partition (an error naming the fix otherwise).
pub fn require_partition(manifest: &Path, settings: &Settings) -> Result<()> {
    if settings.partition.is_none() {
        bail!(
            "{}: [slurm]: no `partition`: SLURM sweeps need one; add e.g.\n        [slurm]\n        partition = \"debug\"\n      (`sinfo -s` lists the cluster's partitions)",
            manifest.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinfo_lines_merge_by_partition() {
        let p = parse_sinfo("debug*|infinite|2|23000|1\nlong|2-00:00:00|64|256000+|10\nlong|2-00:00:00|128|512000|2\n");
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "debug");
        assert!(p[0].default);
        assert_eq!(p[0].max_time_s, None);
        assert_eq!(p[1].max_time_s, Some(2 * 86400));
        assert_eq!(p[1].cpus_per_node, 128);
        assert_eq!(p[1].mem_per_node_mb, 512000);
        assert_eq!(p[1].nodes, 12);
    }

    #[test]
    fn limits_name_the_partition_and_the_fix() {
        let part = parse_sinfo("debug*|01:00:00|2|23000|1\n").remove(0);
        let shape = Shape {
            nodes: 2,
            tasks: 4,
            cpus_per_task: 2,
            gpus_per_task: 0,
            mem_mb: Some(32 * 1024),
            time_s: 7200,
        };
        let problems = check_limits(Path::new("experiments/x.toml"), &part, &[shape], &[7200]);
        assert_eq!(problems, [
            "experiments/x.toml: [slurm] partition \"debug\" allows jobs of at most 01:00:00, but points of shape 2 nodes × 4 tasks × 2 CPUs, 32G per node, 02:00:00 ask for 02:00:00; lower [slurm] time (or the study's `timeout`), or pack fewer points per job",
            "experiments/x.toml: [slurm] partition \"debug\" has 1 node, but points of shape 2 nodes × 4 tasks × 2 CPUs, 32G per node, 02:00:00 ask for 2; lower `nodes` (or `ranks` / `ranks_per_node`) in the study",
            "experiments/x.toml: [slurm] partition \"debug\" has 2 CPUs per node, but points of shape 2 nodes × 4 tasks × 2 CPUs, 32G per node, 02:00:00 ask for 4 on one node; lower `threads` or `ranks`, or raise `nodes`",
            "experiments/x.toml: [slurm] partition \"debug\" has 23000M of memory per node, but [slurm] mem asks for 32G; lower `mem`",
        ]);
    }

    #[test]
    fn latest_submission_wins() {
        let job = |id: &str, pts: &[&str]| JobRecord {
            job_id: id.into(),
            script: String::new(),
            points: pts.iter().map(|s| s.to_string()).collect(),
        };
        let jobs = Jobs {
            rounds: vec![
                Round {
                    round: 1,
                    submitted: String::new(),
                    packed: false,
                    jobs: vec![job("10", &["a", "b"]), job("11", &["c"])],
                    collect: Some("12".into()),
                },
                Round {
                    round: 2,
                    submitted: String::new(),
                    packed: true,
                    jobs: vec![job("20", &["b"])],
                    collect: Some("21".into()),
                },
            ],
        };
        let latest = jobs.latest();
        assert_eq!(latest["a"], ("10", 0, false));
        assert_eq!(latest["b"], ("20", 0, true));
        assert_eq!(latest["c"], ("11", 0, false));
        assert_eq!(jobs.job_ids(), ["10", "11", "20"]);
        assert_eq!(jobs.next_round(), 3);
    }
}

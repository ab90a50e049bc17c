//! The sbatch scripts: job arrays, packed jobs and the final collect job.
//!
//! Scripts are plain bash with `#SBATCH` lines, readable on their own: a student can open one,
//! see what it asks for and submit it by hand. Every path in them is absolute (a job starts in
//! whatever folder `sbatch` ran in) and shell-quoted.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::shape::{ArrayJob, Shape};
use super::units::{format_mem_mb, format_time};
use super::{Launcher, Settings};

/// What every script of one submission shares.
#[derive(Clone, Debug)]
pub struct ScriptContext<'a> {
    pub experiment: &'a str,
    /// The run directory, absolute.
    pub run_dir: &'a Path,
    /// The scalelab binary the tasks run, absolute.
    pub program: &'a Path,
    pub settings: &'a Settings,
    /// Submission round (1 for the first submission, +1 for each `--resume`).
    pub round: u32,
}

impl ScriptContext<'_> {
    /// `<run-dir>/slurm/round-<N>`.
    pub fn round_dir(&self) -> PathBuf {
        self.run_dir
            .join("slurm")
            .join(format!("round-{}", self.round))
    }

    fn header(&self, s: &mut String, job_name: &str, comment: &str) {
        s.push_str("#!/bin/bash\n");
        let _ = writeln!(s, "# {comment}");
        let _ = writeln!(s, "#SBATCH --job-name={job_name}");
        let st = self.settings;
        for (key, value) in [
            ("partition", &st.partition),
            ("account", &st.account),
            ("qos", &st.qos),
            ("constraint", &st.constraint),
        ] {
            if let Some(v) = value {
                let _ = writeln!(s, "#SBATCH --{key}={v}");
            }
        }
    }

    fn resources(&self, s: &mut String, shape: &Shape, time_s: u64) {
        let _ = writeln!(s, "#SBATCH --nodes={}", shape.nodes);
        let _ = writeln!(s, "#SBATCH --ntasks={}", shape.tasks);
        let _ = writeln!(s, "#SBATCH --cpus-per-task={}", shape.cpus_per_task);
        if shape.gpus_per_task > 0 {
            let _ = writeln!(s, "#SBATCH --gpus-per-task={}", shape.gpus_per_task);
        }
        if let Some(mem) = shape.mem_mb {
            let _ = writeln!(s, "#SBATCH --mem={}", format_mem_mb(mem));
        }
        let _ = writeln!(s, "#SBATCH --time={}", format_time(time_s));
    }

    fn environment(&self, s: &mut String) {
        s.push_str("set -eu\n");
        for m in &self.settings.modules {
            let _ = writeln!(s, "module load {m}");
        }
        for line in &self.settings.setup {
            let _ = writeln!(s, "{line}");
        }
    }

    /// The command that runs task `index` (a shell expression) of `tasks_file` with `shape`.
    fn point_command(&self, shape: &Shape, tasks_file: &Path, index: &str) -> String {
        let program = quote(self.program);
        let point = format!(
            "{program} point {} --task-file {} --task-index {index}",
            quote(self.run_dir),
            quote(tasks_file)
        );
        let mpi = shape.tasks > 1;
        if mpi && self.settings.launcher == Launcher::Mpirun {
            // OpenMPI reads the allocation from SLURM's environment; rayon threads need unbound ranks.
            format!(
                "mpirun -n {} --bind-to none $( [ \"$(id -u)\" = 0 ] && echo --allow-run-as-root ) {point}",
                shape.tasks
            )
        } else {
            // srun no longer passes the job's --cpus-per-task on to its steps (SLURM ≥ 22.05): repeat it.
            let gpus = if shape.gpus_per_task > 0 {
                format!(" --gpus-per-task={}", shape.gpus_per_task)
            } else {
                String::new()
            };
            format!(
                "srun --nodes={} --ntasks={} --cpus-per-task={}{gpus} {point}",
                shape.nodes, shape.tasks, shape.cpus_per_task
            )
        }
    }
}

/// The job-array script of `job`, whose task `i` runs line `i` of `tasks_file`.
pub fn render_array(
    ctx: &ScriptContext<'_>,
    job: &ArrayJob,
    number: usize,
    count: usize,
    tasks_file: &Path,
) -> String {
    let mut s = String::new();
    let n = job.points.len();
    ctx.header(
        &mut s,
        &format!("{}-r{}-a{number}", ctx.experiment, ctx.round),
        &format!(
            "scalelab: {}, round {}, array {number} of {count}: {n} point{} of shape {}",
            ctx.experiment,
            ctx.round,
            crate::units::plural(n),
            job.shape
        ),
    );
    ctx.resources(&mut s, &job.shape, job.shape.time_s);
    let _ = writeln!(s, "#SBATCH --array={}", job.array_spec());
    let logs = ctx.round_dir().join("logs");
    let _ = writeln!(s, "#SBATCH --output={}/%A_%a.out", logs.display());
    ctx.environment(&mut s);
    let _ = writeln!(
        s,
        "exec {}",
        ctx.point_command(&job.shape, tasks_file, "\"$SLURM_ARRAY_TASK_ID\"")
    );
    s
}

/// The packed script of `job`: one allocation of its shape that runs every line of `tasks_file`
/// in turn (the launcher pattern), for many small points. A failed point does not stop the others;
/// the job fails if any point did.
pub fn render_pack(
    ctx: &ScriptContext<'_>,
    job: &ArrayJob,
    number: usize,
    count: usize,
    tasks_file: &Path,
) -> String {
    let mut s = String::new();
    let n = job.points.len();
    ctx.header(
        &mut s,
        &format!("{}-r{}-p{number}", ctx.experiment, ctx.round),
        &format!(
            "scalelab: {}, round {}, packed job {number} of {count}: {n} point{} of shape {}, one after another",
            ctx.experiment,
            ctx.round,
            crate::units::plural(n),
            job.shape
        ),
    );
    ctx.resources(
        &mut s,
        &job.shape,
        job.shape.time_s.saturating_mul(n as u64),
    );
    let logs = ctx.round_dir().join("logs");
    let _ = writeln!(s, "#SBATCH --output={}/%j.out", logs.display());
    ctx.environment(&mut s);
    let _ = writeln!(s, "failed=0");
    let _ = writeln!(s, "for ((i = 0; i < {n}; i++)); do");
    let _ = writeln!(s, "    echo \"scalelab: task $i\"");
    let _ = writeln!(
        s,
        "    {} || failed=$((failed + 1))",
        ctx.point_command(&job.shape, tasks_file, "\"$i\"")
    );
    let _ = writeln!(s, "done");
    let _ = writeln!(s, "echo \"scalelab: $failed of {n} points failed\"");
    let _ = writeln!(s, "[ \"$failed\" -eq 0 ]");
    s
}

/// Time limit of the collect job: merging records and drawing plots.
pub const COLLECT_TIME_S: u64 = 600;

/// The final job: merge the records into the CSV files and write the report. Submitted with
/// `--dependency=afterany:<every array>` so it runs when all tasks have ended, however they ended.
pub fn render_collect(ctx: &ScriptContext<'_>) -> String {
    let mut s = String::new();
    ctx.header(
        &mut s,
        &format!("{}-r{}-collect", ctx.experiment, ctx.round),
        &format!(
            "scalelab: {}, round {}: collect the results and write the report",
            ctx.experiment, ctx.round
        ),
    );
    let one = Shape {
        nodes: 1,
        tasks: 1,
        cpus_per_task: 1,
        gpus_per_task: 0,
        mem_mb: Some(1024),
        time_s: COLLECT_TIME_S,
    };
    ctx.resources(&mut s, &one, COLLECT_TIME_S);
    let logs = ctx.round_dir().join("logs");
    let _ = writeln!(s, "#SBATCH --output={}/collect-%j.out", logs.display());
    ctx.environment(&mut s);
    let program = quote(ctx.program);
    let run = quote(ctx.run_dir);
    let _ = writeln!(s, "{program} collect {run}");
    let _ = writeln!(s, "exec {program} report {run}");
    s
}

/// Time limit of the calibration job: `scalelab calibrate` takes about 30 s on 2 cores and grows
/// with the core count (1, 2, 4, … N).
pub const CALIBRATE_TIME_S: u64 = 900;

/// The calibration job of `scalelab sbatch --calibrate`: whole nodes of the sweep's partition
/// (and constraint), `--exclusive` so nothing else runs beside them, measuring the machine profile
/// into `<run>/machine-profile.json`, where the collect job's report finds it. With `nodes = 2`
/// (where the partition has two or more), the profile also holds the MPI ping-pong between two
/// nodes; the rest is measured on the first node.
pub fn render_calibrate(ctx: &ScriptContext<'_>, nodes: u32) -> String {
    let mut s = String::new();
    ctx.header(
        &mut s,
        &format!("{}-r{}-calibrate", ctx.experiment, ctx.round),
        &format!(
            "scalelab: {}, round {}: measure a compute node's attainable peaks (scalelab calibrate)",
            ctx.experiment, ctx.round
        ),
    );
    let _ = writeln!(s, "#SBATCH --nodes={nodes}");
    s.push_str("#SBATCH --exclusive\n#SBATCH --mem=0\n");
    let _ = writeln!(s, "#SBATCH --time={}", format_time(CALIBRATE_TIME_S));
    let logs = ctx.round_dir().join("logs");
    let _ = writeln!(s, "#SBATCH --output={}/calibrate-%j.out", logs.display());
    ctx.environment(&mut s);
    let out = ctx.run_dir.join(crate::calibrate::profile::RUN_FILE);
    let _ = writeln!(
        s,
        "exec {} calibrate --out {}",
        quote(ctx.program),
        quote(&out)
    );
    s
}

/// `path` as one shell word: unchanged when it is made of safe characters, else single-quoted.
pub fn quote(path: &Path) -> String {
    let text = path.display().to_string();
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+,:=@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slurm::shape::{split_arrays, Shape};

    fn settings() -> Settings {
        Settings {
            partition: Some("debug".into()),
            account: Some("course".into()),
            time_s: Some(600),
            mem_mb: Some(2048),
            modules: vec!["openmpi/4.1".into()],
            setup: vec!["source /opt/venv/bin/activate".into()],
            throttle: Some(4),
            ..Settings::default()
        }
    }

    fn shape(tasks: u32) -> Shape {
        Shape {
            nodes: 1,
            tasks,
            cpus_per_task: 2,
            gpus_per_task: 0,
            mem_mb: Some(2048),
            time_s: 600,
        }
    }

    fn ctx<'a>(settings: &'a Settings) -> ScriptContext<'a> {
        ScriptContext {
            experiment: "demo",
            run_dir: Path::new("/home/u/results/demo/1"),
            program: Path::new("/home/u/bin/scalelab"),
            settings,
            round: 1,
        }
    }

    #[test]
    fn array_script_snapshot() {
        let st = settings();
        let jobs = split_arrays(&[(shape(1), (0..10).collect())], 1001, st.throttle);
        let tasks = Path::new("/home/u/results/demo/1/slurm/round-1/array-1.tasks");
        let text = render_array(&ctx(&st), &jobs[0], 1, 2, tasks);
        assert_eq!(
            text,
            "#!/bin/bash
# scalelab: demo, round 1, array 1 of 2: 10 points of shape 1 node × 1 task × 2 CPUs, 2G per node, 00:10:00
#SBATCH --job-name=demo-r1-a1
#SBATCH --partition=debug
#SBATCH --account=course
#SBATCH --nodes=1
#SBATCH --ntasks=1
#SBATCH --cpus-per-task=2
#SBATCH --mem=2G
#SBATCH --time=00:10:00
#SBATCH --array=0-9%4
#SBATCH --output=/home/u/results/demo/1/slurm/round-1/logs/%A_%a.out
set -eu
module load openmpi/4.1
source /opt/venv/bin/activate
exec srun --nodes=1 --ntasks=1 --cpus-per-task=2 /home/u/bin/scalelab point /home/u/results/demo/1 --task-file /home/u/results/demo/1/slurm/round-1/array-1.tasks --task-index \"$SLURM_ARRAY_TASK_ID\"
"
        );
    }

    #[test]
    fn mpi_points_use_the_chosen_launcher() {
        let mut st = settings();
        let job = &split_arrays(&[(shape(4), vec![0, 1])], 1001, None)[0];
        let tasks = Path::new("/t/a.tasks");
        let srun = render_array(&ctx(&st), job, 1, 1, tasks);
        assert!(srun.contains("\n#SBATCH --ntasks=4\n"), "{srun}");
        assert!(
            srun.contains(
                "\nexec srun --nodes=1 --ntasks=4 --cpus-per-task=2 /home/u/bin/scalelab point"
            ),
            "{srun}"
        );
        st.launcher = Launcher::Mpirun;
        let mpirun = render_array(&ctx(&st), job, 1, 1, tasks);
        assert!(mpirun.contains("\nexec mpirun -n 4 --bind-to none $( [ \"$(id -u)\" = 0 ] && echo --allow-run-as-root ) /home/u/bin/scalelab point"), "{mpirun}");
    }

    #[test]
    fn packed_script_runs_points_in_turn_under_the_summed_limit() {
        let st = settings();
        let job = &split_arrays(&[(shape(1), vec![0, 1, 2])], 1001, None)[0];
        let text = render_pack(&ctx(&st), job, 1, 1, Path::new("/t/p.tasks"));
        assert!(text.contains("\n#SBATCH --time=00:30:00\n"), "{text}");
        assert!(!text.contains("--array"));
        assert!(text.contains("for ((i = 0; i < 3; i++)); do\n"));
        assert!(
            text.contains("--task-file /t/p.tasks --task-index \"$i\" || failed=$((failed + 1))\n")
        );
        assert!(text.ends_with("[ \"$failed\" -eq 0 ]\n"));
    }

    #[test]
    fn collect_script_collects_then_reports() {
        let st = settings();
        let text = render_collect(&ctx(&st));
        assert!(text.contains("#SBATCH --job-name=demo-r1-collect\n"));
        assert!(text.ends_with(
            "/home/u/bin/scalelab collect /home/u/results/demo/1\nexec /home/u/bin/scalelab report /home/u/results/demo/1\n"
        ));
    }

    #[test]
    fn calibrate_script_takes_a_whole_node_and_writes_the_run_profile() {
        let settings = settings();
        let text = render_calibrate(&ctx(&settings), 1);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines.contains(&"#SBATCH --exclusive"), "{text}");
        assert!(lines.contains(&"#SBATCH --nodes=1"), "{text}");
        assert!(lines.contains(&"#SBATCH --time=00:15:00"), "{text}");
        assert_eq!(
            lines.last(),
            Some(&"exec /home/u/bin/scalelab calibrate --out /home/u/results/demo/1/machine-profile.json"),
            "{text}"
        );
        // Two nodes where the partition has them: the ping-pong between nodes is measured too.
        let two = render_calibrate(&ctx(&settings), 2);
        assert!(two.lines().any(|l| l == "#SBATCH --nodes=2"), "{two}");
        assert!(two.lines().any(|l| l == "#SBATCH --exclusive"), "{two}");
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        assert_eq!(quote(Path::new("/a/b c")), "'/a/b c'");
        assert_eq!(quote(Path::new("/a/it's")), "'/a/it'\\''s'");
        assert_eq!(quote(Path::new("/a/b-1.x")), "/a/b-1.x");
    }
}

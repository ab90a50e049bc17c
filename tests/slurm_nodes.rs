//! Several nodes under SLURM: node-count sweeps of MPI points, the two partitions, and a node that
//! fails under a running task. Against the two-node cluster `scripts/local-slurm.sh up --nodes 2`
//! starts (`scripts/test.sh` does; build with `--features slurm-tests`, and `mpi` for the MPI
//! sweeps). Every test submits for real, waits for the jobs and reads back what they wrote. The
//! tests of this file and tests/slurm.rs share the cluster and run one at a time
//! (.config/nextest.toml): the node-failure test takes a node down.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::scalelab;
use common::slurm::{jobs, manifest, point_ids, record, run, submit, wait_for_round};
use serde_json::Value;

/// The cluster's nodes; panics with the fix unless there are at least two.
fn require_nodes() -> Vec<String> {
    let out = Command::new("sinfo")
        .args(["-h", "-N", "-o", "%N"])
        .output()
        .unwrap_or_else(|e| {
            panic!("sinfo: {e}; start the test cluster with `bash scripts/local-slurm.sh up --nodes 2`")
        });
    assert!(
        out.status.success(),
        "SLURM does not answer ({}); start it with `bash scripts/local-slurm.sh up --nodes 2`",
        String::from_utf8_lossy(&out.stderr)
    );
    let nodes: BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        nodes.len() >= 2,
        "these tests need two nodes, sinfo lists {nodes:?}: `bash scripts/local-slurm.sh down && bash scripts/local-slurm.sh up --nodes 2`"
    );
    nodes.into_iter().collect()
}

/// The nodes of a SLURM node list (`node[1-2]`), as `scontrol show hostnames` expands it.
fn expand(list: &str) -> BTreeSet<String> {
    let out = Command::new("scontrol")
        .args(["show", "hostnames", list])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The four MPI workloads of experiments/nodes-mpi.toml at small sizes, on 1 and 2 nodes (one
/// rank per node), through `launcher`; `--pack` when `pack`. Checks that every point finished,
/// that its record names the nodes, that the ranks of a 2-node point ran on two different nodes
/// of its allocation, and that the report and the CSV tables have both node counts.
#[cfg(feature = "mpi")]
fn node_sweep(launcher: &str, pack: bool) {
    require_nodes();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        "nodes",
        &format!(
            "name = \"nodes-{launcher}\"\nrepetitions = 2\nwarmup = 0\ntimeout = \"2m\"\n\n\
             [[study]]\nname = \"pingpong\"\nworkload = \"mpi.pingpong\"\nranks = 2\nranks_per_node = 1\nsize = \"8B\"\niterations = 200\n\n\
             [[study]]\nname = \"allreduce\"\nworkload = \"mpi.allreduce\"\nranks = [1, 2]\nranks_per_node = 1\nsize = \"8B\"\niterations = 200\n\n\
             [[study]]\nname = \"stencil\"\nworkload = \"mpi.stencil\"\nranks = [1, 2]\nranks_per_node = 1\nsize = 128\niterations = 10\n\n\
             [[study]]\nname = \"hybrid-gemm\"\nworkload = \"mpi.gemm\"\nranks = [1, 2]\nranks_per_node = 1\nthreads = 1\nsize = 64\n\n\
             [slurm]\npartition = \"debug\"\ntime = \"3\"\nmem = \"1G\"\nlauncher = \"{launcher}\"\n"
        ),
    );
    let extra: &[&str] = if pack { &["--pack"] } else { &[] };
    let (run_dir, out) = submit(dir.path(), &m, extra);
    let what = if pack {
        "3 jobs (2 packed jobs of 7 points + 1 collect job)"
    } else {
        "3 jobs (2 arrays of 7 points + 1 collect job)"
    };
    assert!(out.text.contains(what), "{}", out.text);
    let kind = if pack { "pack" } else { "array" };
    let two = fs::read_to_string(run_dir.join(format!("slurm/round-1/{kind}-1.sbatch"))).unwrap();
    assert!(
        two.contains("\n#SBATCH --nodes=2\n#SBATCH --ntasks=2\n"),
        "{two}"
    );
    let start = if launcher == "srun" {
        "srun --nodes=2 --ntasks=2 --cpus-per-task=1 "
    } else {
        "mpirun -n 2 "
    };
    assert!(two.contains(start), "{two}");
    wait_for_round(&run_dir, Duration::from_secs(400));

    let mut seen_nodes = BTreeSet::new();
    for (id, study) in point_ids(&run_dir) {
        let rec = record(&run_dir, &id).unwrap_or_else(|| panic!("no record for {id} ({study})"));
        assert_eq!(rec["status"], "ok", "{launcher}: {rec}");
        let nodes = rec["point"]["resources"]["nodes"].as_u64().unwrap();
        let ranks = rec["point"]["resources"]["ranks"].as_u64().unwrap();
        seen_nodes.insert(nodes);
        let list = rec["slurm"]["SLURM_JOB_NODELIST"]
            .as_str()
            .unwrap_or_else(|| panic!("no node list: {rec}"));
        let allocated = expand(list);
        assert_eq!(allocated.len() as u64, nodes, "{list}: {rec}");
        let hosts: Vec<String> = rec["rank_hosts"]
            .as_array()
            .unwrap_or_else(|| panic!("no rank_hosts: {rec}"))
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect();
        assert_eq!(hosts.len() as u64, ranks, "{rec}");
        // Each rank on a node of the allocation, and one rank per node: as many distinct nodes as
        // the point asked for.
        let distinct: BTreeSet<String> = hosts.iter().cloned().collect();
        assert!(distinct.is_subset(&allocated), "{hosts:?} not in {list}");
        assert_eq!(
            distinct.len() as u64,
            nodes,
            "{launcher}: ranks on {hosts:?}"
        );
        if pack {
            let job = rec["slurm"]["SLURM_JOB_ID"].as_str().unwrap();
            let packed: Vec<String> = jobs(&run_dir)["rounds"][0]["jobs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|j| j["job_id"].as_str().unwrap().to_string())
                .collect();
            assert!(packed.iter().any(|j| j == job), "{job} not in {packed:?}");
        }
    }
    assert_eq!(seen_nodes, BTreeSet::from([1, 2]));
    // The tables carry the node count of every point; the report was written.
    let csv = fs::read_to_string(run_dir.join("summary.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "nodes").unwrap();
    let counts: BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap())
        .collect();
    assert_eq!(counts, BTreeSet::from(["1", "2"]), "{csv}");
    let report = fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(report.contains("nodes=2"), "{report}");
}

#[cfg(feature = "mpi")]
#[test]
fn a_node_sweep_with_srun_puts_one_rank_on_each_node() {
    node_sweep("srun", false);
}

#[cfg(feature = "mpi")]
#[test]
fn a_node_sweep_with_mpirun_inside_the_allocation_puts_one_rank_on_each_node() {
    node_sweep("mpirun", false);
}

#[cfg(feature = "mpi")]
#[test]
fn a_packed_node_sweep_puts_one_rank_on_each_node() {
    node_sweep("srun", true);
}

/// experiments/nodes-mpi.toml as shipped: its shapes, and the sbatch lines `--dry-run` prints,
/// with the collect job waiting for both arrays.
#[cfg(feature = "mpi")]
#[test]
fn the_nodes_experiment_dry_run_shows_both_shapes_and_the_dependency() {
    require_nodes();
    let dir = tempfile::tempdir().unwrap();
    let m = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/nodes-mpi.toml");
    let run_dir = dir.path().join("run");
    let out = run(
        &[
            "sbatch",
            m.to_str().unwrap(),
            "--dry-run",
            "--run-dir",
            run_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(out.code, 0, "{}", out.text);
    assert!(
        out.text
            .contains("points of shape 2 nodes × 2 tasks × 1 CPU, 2G per node, 00:05:00"),
        "{}",
        out.text
    );
    assert!(
        out.text
            .contains("points of shape 1 node × 1 task × 1 CPU, 2G per node, 00:05:00"),
        "{}",
        out.text
    );
    let round = run_dir.join("slurm/round-1");
    let lines = [
        format!(
            "array1=$(sbatch --parsable {}/array-1.sbatch)",
            round.display()
        ),
        format!(
            "array2=$(sbatch --parsable {}/array-2.sbatch)",
            round.display()
        ),
        format!(
            "sbatch --parsable --dependency=afterany:$array1:$array2 {}/collect.sbatch",
            round.display()
        ),
    ];
    assert!(out.text.contains(&lines.join("\n")), "{}", out.text);
    assert!(!run_dir.exists(), "a dry run writes nothing");
}

/// The two partitions differ in shape: `short` has one node and a 10-minute limit, and is judged
/// by its own limits; a point sent there runs on its node.
#[test]
fn each_partition_is_judged_by_its_own_nodes_and_limits() {
    let nodes = require_nodes();
    let dir = tempfile::tempdir().unwrap();
    let body = "name = \"p\"\n[[study]]\nworkload = \"debug.sleep\"\nseconds = [0.01]\n";
    let long = manifest(
        dir.path(),
        "long",
        &format!("{body}\n[slurm]\npartition = \"short\"\ntime = \"00:20:00\"\n"),
    );
    let out = run(&["sbatch", long.to_str().unwrap(), "--dry-run"], dir.path());
    assert_eq!(out.code, 2, "{}", out.text);
    assert!(
        out.text.contains("long.toml: [slurm] partition \"short\" allows jobs of at most 00:10:00, but points of shape 1 node × 1 task × 1 CPU, 00:20:00 ask for 00:20:00"),
        "{}",
        out.text
    );
    // The same limit is fine on `debug` (no time limit).
    let fine = manifest(
        dir.path(),
        "fine",
        &format!("{body}\n[slurm]\npartition = \"debug\"\ntime = \"00:20:00\"\n"),
    );
    let out = run(&["sbatch", fine.to_str().unwrap(), "--dry-run"], dir.path());
    assert_eq!(out.code, 0, "{}", out.text);

    let short = manifest(
        dir.path(),
        "short",
        &format!("{body}\n[slurm]\npartition = \"short\"\ntime = \"2\"\nmem = \"200M\"\n"),
    );
    let (run_dir, _) = submit(dir.path(), &short, &[]);
    wait_for_round(&run_dir, Duration::from_secs(300));
    let (id, _) = point_ids(&run_dir).remove(0);
    let rec = record(&run_dir, &id).unwrap();
    assert_eq!(rec["status"], "ok");
    assert_eq!(rec["slurm"]["SLURM_JOB_PARTITION"], "short", "{rec}");
    // `short` holds the last node only.
    assert_eq!(
        rec["slurm"]["SLURMD_NODENAME"],
        nodes.last().unwrap().as_str(),
        "{rec}"
    );
}

/// `scalelab calibrate` inside a two-node allocation measures the MPI ping-pong between the nodes
/// too, with one rank on each, into the profile's `mpi_nodes`.
#[cfg(feature = "mpi")]
#[test]
fn calibrate_in_a_two_node_allocation_measures_pingpong_between_the_nodes() {
    require_nodes();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    let exe = Path::new(env!("CARGO_BIN_EXE_scalelab"));
    let script = dir.path().join("calibrate.sbatch");
    fs::write(
        &script,
        format!(
            "#!/bin/bash\n#SBATCH --nodes=2\n#SBATCH --exclusive\n#SBATCH --mem=0\n#SBATCH --time=10\n#SBATCH --output={}\nexec {} calibrate --quick --out {}\n",
            dir.path().join("calibrate.out").display(),
            exe.display(),
            profile.display()
        ),
    )
    .unwrap();
    // scalelab() sets the test environment (no user cache or profile); sbatch passes it on.
    let env = scalelab();
    let mut cmd = Command::new("sbatch");
    for (k, v) in env.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let out = cmd
        .args(["--parsable", "--wait"])
        .arg(&script)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let log = fs::read_to_string(dir.path().join("calibrate.out")).unwrap_or_default();
    assert!(
        out.status.success(),
        "{}{log}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: Value = serde_json::from_str(&fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(p["mpi"]["status"], "measured", "{log}");
    assert_eq!(p["mpi"]["nodes"], 1, "{}", p["mpi"]);
    let between = &p["mpi_nodes"];
    assert_eq!(between["status"], "measured", "{between} {log}");
    assert_eq!(between["nodes"], 2, "{between}");
    assert_eq!(between["ranks"], 2, "{between}");
    assert!(between["latency_us"].as_f64().unwrap() > 0.0, "{between}");
    assert!(log.contains("MPI ping-pong between 2 nodes: "), "{log}");
}

/// Puts a node back in service when the test ends, however it ends.
struct Resume(String);

/// Starts what `scripts/local-slurm.sh crash-node` killed (`up` starts only what is missing) when
/// the test ends, however it ends.
struct Restart(usize);

impl Drop for Restart {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-slurm.sh"))
            .args(["up", "--nodes", &self.0.to_string()])
            .output();
    }
}

/// Submit two 20-second points that run at once, one per node; return the run, the array's job
/// id and the node that task 1 runs on.
fn two_running_points(dir: &Path) -> (PathBuf, String, String) {
    let m = manifest(
        dir,
        "lost",
        "name = \"lost\"\nrepetitions = 1\nwarmup = 0\ntimeout = \"2m\"\n\n\
         [[study]]\nworkload = \"debug.sleep\"\nseconds = [20.0, 20.5]\n\n\
         [slurm]\npartition = \"debug\"\ntime = \"3\"\nmem = \"200M\"\n",
    );
    let (run_dir, _) = submit(dir, &m, &[]);
    let array = jobs(&run_dir)["rounds"][0]["jobs"][0]["job_id"]
        .as_str()
        .unwrap()
        .to_string();
    let start = Instant::now();
    let node = loop {
        let out = Command::new("squeue")
            .args(["-h", "-j", &array, "-t", "RUNNING", "-o", "%K %N"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let running: Vec<(String, String)> = text
            .lines()
            .filter_map(|l| {
                let (task, node) = l.split_once(' ')?;
                Some((task.to_string(), node.to_string()))
            })
            .collect();
        if running.len() == 2 {
            break running.into_iter().find(|(t, _)| t == "1").unwrap().1;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "array {array} did not start both tasks: {text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    (run_dir, array, node)
}

/// After a node failed under task 1 of `array`: `status` reports NODE_FAIL with the evidence,
/// `sbatch --resume --submit` resubmits exactly that point, which then finishes on another node,
/// and the other point's record is untouched.
fn node_fail_then_resume(dir: &Path, run_dir: &Path, array: &str, node: &str) {
    let ids = point_ids(run_dir);
    let lost = &ids[1].0;
    let kept = &ids[0].0;
    let status = run(&["status", run_dir.to_str().unwrap()], dir);
    assert_eq!(status.code, 1, "{}", status.text);
    assert!(
        status
            .text
            .contains(": 2 points: 1 finished, 0 pending, 0 running, 1 failed, 0 not submitted"),
        "{}",
        status.text
    );
    assert!(
        status.text.contains(&format!("{lost}  NODE_FAIL  ")),
        "{}",
        status.text
    );
    assert!(
        status.text.contains(&format!("job {array}_1")),
        "{}",
        status.text
    );
    // The evidence: sacct's line for the task, naming the lost node.
    let evidence = status
        .text
        .lines()
        .find(|l| l.contains(&format!("sacct: {array}_1|NODE_FAIL|")))
        .unwrap_or_else(|| panic!("no sacct line: {}", status.text));
    assert!(evidence.ends_with(&format!("|{node}")), "{evidence}");
    let kept_before = record(run_dir, kept).unwrap();
    assert_eq!(kept_before["status"], "ok");

    let resume = run(
        &["sbatch", "--resume", run_dir.to_str().unwrap(), "--submit"],
        dir,
    );
    assert_eq!(resume.code, 0, "{}", resume.text);
    assert!(
        resume.text.contains("resubmitting 1 point:"),
        "{}",
        resume.text
    );
    assert!(
        resume.text.contains(&format!("{lost}  NODE_FAIL")),
        "{}",
        resume.text
    );
    let round2 = &jobs(run_dir)["rounds"][1];
    let again: Vec<&str> = round2["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|j| j["points"].as_array().unwrap().iter())
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(again, [lost.as_str()]);
    wait_for_round(run_dir, Duration::from_secs(300));
    let rec = record(run_dir, lost).unwrap();
    assert_eq!(rec["status"], "ok", "{rec}");
    assert_ne!(rec["slurm"]["SLURMD_NODENAME"], node, "{rec}");
    assert_eq!(record(run_dir, kept).unwrap(), kept_before);
    let status = run(&["status", run_dir.to_str().unwrap()], dir);
    assert_eq!(status.code, 0, "{}", status.text);
}

/// A node whose slurmd and job processes die at once (`scripts/local-slurm.sh crash-node`, a power
/// cut): SLURM notices when it misses its pings, the task on it ends as NODE_FAIL, and resume
/// reruns the point on the node that is left.
#[test]
fn a_crashed_node_is_node_fail_in_status_and_resume_reruns_its_point_elsewhere() {
    let nodes = require_nodes();
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, array, node) = two_running_points(dir.path());
    let _restart = Restart(nodes.len());
    let crash = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/local-slurm.sh"))
        .args(["crash-node", &node])
        .output()
        .unwrap();
    assert!(
        crash.status.success(),
        "{}",
        String::from_utf8_lossy(&crash.stderr)
    );
    // SlurmdTimeout (30 s) and the ping interval: the node is DOWN within about a minute.
    wait_for_round(&run_dir, Duration::from_secs(300));
    node_fail_then_resume(dir.path(), &run_dir, &array, &node);
}

impl Drop for Resume {
    fn drop(&mut self) {
        let _ = Command::new("scontrol")
            .args(["update", &format!("nodename={}", self.0), "state=resume"])
            .status();
    }
}

/// A node taken down under a running array task (`scontrol update nodename=… state=down`): the
/// task ends as NODE_FAIL, `status` says so with sacct's evidence, and `sbatch --resume --submit`
/// runs exactly that point again, on the node that is left.
#[test]
fn a_failed_node_is_node_fail_in_status_and_resume_reruns_its_point_elsewhere() {
    require_nodes();
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, array, node) = two_running_points(dir.path());
    let _resume = Resume(node.clone());
    let down = Command::new("scontrol")
        .args([
            "update",
            &format!("nodename={node}"),
            "state=down",
            "reason=scalelab test: node lost",
        ])
        .status()
        .unwrap();
    assert!(down.success());
    wait_for_round(&run_dir, Duration::from_secs(300));
    // Its slurmd still answers, so the node returns by itself (ReturnToService=2); drained, it
    // takes no new job, and the resubmitted point must run on the other node.
    let drain = Command::new("scontrol")
        .args([
            "update",
            &format!("nodename={node}"),
            "state=drain",
            "reason=scalelab test: node lost",
        ])
        .status()
        .unwrap();
    assert!(drain.success());
    node_fail_then_resume(dir.path(), &run_dir, &array, &node);
}

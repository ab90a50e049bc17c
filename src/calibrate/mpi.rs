//! MPI ping-pong for the machine profile: 8-byte latency and 1 MiB bandwidth between two ranks.
//!
//! `scalelab calibrate` is an ordinary process, so it launches itself under `mpirun` the way the
//! executor launches MPI points: `mpirun -n 2 [--allow-run-as-root] --bind-to core <scalelab>
//! calibrate --mpi-pingpong <file>`. The two ranks run the project's ping-pong kernel
//! (`scalelab_kernels::mpi::pingpong`, checked after each run) and rank 0 writes the result to
//! `<file>`. Without MPI in the build, without `mpirun`, or when the launch fails or takes more
//! than a minute, the profile records [`Mpi::Skipped`] with the reason and the fix.
//!
//! Between nodes: when `calibrate` runs in a SLURM allocation of two or more nodes
//! (`SLURM_JOB_NUM_NODES`), it also launches `mpirun -n 2 --map-by node`, one rank on each of two
//! nodes, into the profile's `mpi_nodes`. The ranks report their nodes; a launch that put both on
//! one node is recorded as skipped, never as a figure between nodes.

use super::Mpi;

/// The result rank 0 writes for the launching process.
#[cfg(feature = "mpi")]
#[derive(serde::Serialize, serde::Deserialize)]
struct Measured {
    latency_us: f64,
    bandwidth_gbps: f64,
    ranks: usize,
    /// The distinct nodes the ranks ran on.
    #[serde(default = "one")]
    nodes: usize,
}

#[cfg(feature = "mpi")]
fn one() -> usize {
    1
}

/// Launch the ping-pong under `mpirun` and read its result, or say why it was not measured.
pub fn measure(quick: bool) -> Mpi {
    match launch(quick, false) {
        Ok(m) => m,
        Err(reason) => Mpi::Skipped { reason },
    }
}

/// The ping-pong between two nodes, one rank on each, when this process runs in a SLURM
/// allocation of two or more nodes; `None` elsewhere.
pub fn measure_between_nodes(quick: bool) -> Option<Mpi> {
    let nodes: usize = std::env::var("SLURM_JOB_NUM_NODES").ok()?.parse().ok()?;
    if nodes < 2 {
        return None;
    }
    Some(match launch(quick, true) {
        Ok(Mpi::Measured { nodes: 1, .. }) => Mpi::Skipped {
            reason: "mpirun --map-by node put both ranks on one node; check the allocation (`scontrol show job $SLURM_JOB_ID`)".into(),
        },
        Ok(m) => m,
        Err(reason) => Mpi::Skipped { reason },
    })
}

#[cfg(not(feature = "mpi"))]
fn launch(_quick: bool, _between_nodes: bool) -> Result<Mpi, String> {
    Err("this scalelab was built without MPI; rebuild with `--features mpi` (and OpenMPI installed) to measure ping-pong".into())
}

#[cfg(feature = "mpi")]
fn launch(quick: bool, between_nodes: bool) -> Result<Mpi, String> {
    use std::process::Command;

    let (mpirun, exe) = programs()?;
    let dir = tempfile::tempdir().map_err(|e| format!("no temporary folder: {e}"))?;
    let out = dir.path().join("pingpong.json");
    let mut cmd = Command::new(mpirun);
    cmd.args(["-n", "2"]);
    if as_root() {
        cmd.arg("--allow-run-as-root");
    }
    cmd.args(placement(between_nodes));
    cmd.arg(&exe)
        .arg("calibrate")
        .arg("--mpi-pingpong")
        .arg(&out);
    if quick {
        cmd.arg("--quick");
    }
    let log = dir.path().join("mpirun.log");
    run_bounded(&mut cmd, &log)?;
    let bytes = std::fs::read(&out)
        .map_err(|e| format!("mpirun wrote no result ({e}): {}", log_tail(&log)))?;
    let r: Measured =
        serde_json::from_slice(&bytes).map_err(|e| format!("unreadable result: {e}"))?;
    Ok(Mpi::Measured {
        latency_us: r.latency_us,
        bandwidth_gbps: r.bandwidth_gbps,
        ranks: r.ranks,
        nodes: r.nodes,
    })
}

/// `mpirun` on the PATH and this scalelab (which mpirun launches as the two ranks).
#[cfg(feature = "mpi")]
fn programs() -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let mpirun = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("mpirun"))
                .find(|p| p.is_file())
        })
        .ok_or("mpirun not found: install OpenMPI (scripts/install-deps.sh --mpi) or `module load openmpi`")?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this scalelab: {e}"))?;
    // Under `cargo test` the running program is a test harness, not scalelab.
    if exe.file_stem().is_none_or(|s| s != "scalelab") {
        return Err(format!(
            "{} is not the scalelab program, so it cannot launch itself under mpirun",
            exe.display()
        ));
    }
    Ok((mpirun, exe))
}

/// mpirun's mapping and binding of the two ranks: one per node of the allocation
/// (`between_nodes`), else both on the first node, bound to a core each where it has two.
#[cfg(feature = "mpi")]
fn placement(between_nodes: bool) -> Vec<&'static str> {
    // The cores this node gives the job: SLURM's count inside an allocation (a node of the local
    // multi-slurmd cluster sees every core of the machine, but owns one), else the machine's.
    let cores = std::env::var("SLURM_CPUS_ON_NODE")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let several_nodes = std::env::var("SLURM_JOB_NUM_NODES")
        .ok()
        .and_then(|n| n.parse::<usize>().ok())
        .is_some_and(|n| n >= 2);
    let bind = if cores < 2 {
        vec!["--oversubscribe", "--bind-to", "none"]
    } else {
        vec!["--bind-to", "core"]
    };
    if between_nodes {
        // One rank per node of the allocation (OpenMPI starts its daemons there through srun).
        vec!["--map-by", "node", "--bind-to", "none"]
    } else if several_nodes {
        // Both ranks on the first node, even where mpirun would fill one slot per node.
        [vec!["--map-by", "ppr:2:node"], bind].concat()
    } else {
        bind
    }
}

/// Run `cmd` with its output in `log`, stopped after 60 s; an error unless it succeeded.
#[cfg(feature = "mpi")]
fn run_bounded(cmd: &mut std::process::Command, log: &std::path::Path) -> Result<(), String> {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let logf =
        std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(logf.try_clone().map_err(|e| e.to_string())?)
        .stderr(logf)
        .spawn()
        .map_err(|e| format!("mpirun could not start: {e}"))?;
    let start = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if start.elapsed() > Duration::from_secs(60) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err("mpirun ran for more than 60 s and was stopped".into());
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for mpirun: {e}")),
        }
    };
    if !status.success() {
        return Err(format!("mpirun failed ({status}): {}", log_tail(log)));
    }
    Ok(())
}

/// The last three lines of mpirun's output, joined with ` / `.
#[cfg(feature = "mpi")]
fn log_tail(log: &std::path::Path) -> String {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .rev()
        .take(3)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" / ")
}

#[cfg(all(feature = "mpi", target_os = "linux"))]
fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(all(feature = "mpi", not(target_os = "linux")))]
fn as_root() -> bool {
    false
}

/// The ranks' side (`scalelab calibrate --mpi-pingpong FILE`): best of 5 runs of 8-byte and
/// 1 MiB ping-pongs, each checked; rank 0 writes the result to `out`.
#[cfg(feature = "mpi")]
pub fn ranks(out: &std::path::Path, quick: bool) -> anyhow::Result<()> {
    use anyhow::{anyhow, bail, Context};
    use mpi::traits::Communicator;
    use scalelab_kernels::mpi::pingpong::PingPong;

    let Some(universe) = mpi::initialize() else {
        bail!("MPI was already initialised in this process");
    };
    let world = universe.world();
    let best = |size: usize, iterations: usize| -> anyhow::Result<f64> {
        let mut pp = PingPong::new(&world, size, iterations).map_err(|e| anyhow!(e))?;
        pp.run();
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            pp.run();
            pp.check().map_err(|e| anyhow!(e))?;
            best = best.min(pp.latency_us());
        }
        Ok(best)
    };
    let scale = if quick { 10 } else { 1 };
    let latency_us = best(8, 10_000 / scale)?;
    let big = 1 << 20;
    let big_us = best(big, 200 / scale)?;
    let hosts = crate::point_runner::rank_hosts(&world);
    if world.rank() == 0 {
        let r = Measured {
            latency_us,
            bandwidth_gbps: big as f64 / (big_us * 1e-6) / 1e9,
            ranks: world.size() as usize,
            nodes: hosts
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        };
        crate::files::write_atomic(out, &serde_json::to_vec(&r)?)
            .with_context(|| format!("writing {}", out.display()))?;
    }
    Ok(())
}

/// Without MPI there are no ranks to run.
#[cfg(not(feature = "mpi"))]
pub fn ranks(_out: &std::path::Path, _quick: bool) -> anyhow::Result<()> {
    anyhow::bail!("this scalelab was built without MPI; rebuild with `--features mpi`")
}

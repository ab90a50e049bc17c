//! The CUDA workloads without a GPU (feature `cuda`): every kernel source compiles to PTX with
//! NVRTC, a point on a machine without a driver fails with a reason that names the fix (no
//! panic), and the GPU manifests check. On a machine with a GPU the same points run verified.
//!
//! NVRTC must be on `LD_LIBRARY_PATH` (`scripts/test.sh` installs the PyPI wheel with
//! `scripts/install-deps.sh --nvrtc` and exports its folder); without it the compile test fails
//! with that fix rather than skipping, so CI cannot pass it silently.

mod common;

use std::fs;
use std::path::Path;

use common::{scalelab, write};

use scalelab_kernels::cuda::{runtime, SOURCES};

#[test]
fn every_cuda_source_compiles_to_ptx_without_warnings() {
    if let Err(why) = runtime::nvrtc() {
        panic!(
            "{why}\nfix: bash scripts/install-deps.sh --nvrtc && export \
             LD_LIBRARY_PATH=$PWD/target/nvrtc/nvidia/cuda_nvrtc/lib:$LD_LIBRARY_PATH \
             (scripts/test.sh does both)"
        );
    }
    let mut compiled = 0;
    for arch in ["sm_80", "sm_90"] {
        for src in SOURCES {
            let out = runtime::compile(src.file, src.text, arch)
                .unwrap_or_else(|e| panic!("{} for {arch}: {e}", src.file));
            assert!(
                out.log.is_empty(),
                "{} for {arch}: NVRTC warned:\n{}",
                src.file,
                out.log
            );
            assert!(
                out.ptx.contains(&format!(".target {arch}")),
                "{} for {arch}: PTX for another target",
                src.file
            );
            for k in src.kernels {
                assert!(
                    out.ptx.contains(&format!(".entry {k}(")),
                    "{} for {arch}: no entry point {k} in the PTX",
                    src.file
                );
            }
            compiled += 1;
        }
    }
    assert_eq!(compiled, 2 * SOURCES.len());
}

#[test]
fn a_compile_error_comes_back_with_the_nvrtc_log() {
    if runtime::nvrtc().is_err() {
        panic!("NVRTC is missing: see every_cuda_source_compiles_to_ptx_without_warnings");
    }
    let err = runtime::compile(
        "broken.cu",
        "extern \"C\" __global__ void k(float* x) { x[0] = undefined_name; }",
        "sm_90",
    )
    .unwrap_err();
    assert!(
        err.starts_with("NVRTC failed to compile broken.cu for sm_90"),
        "{err}"
    );
    assert!(err.contains("undefined_name"), "{err}");
}

/// One point of each GPU workload on a machine without a CUDA driver: every point fails with
/// the driver's fix, nothing panics, and the run exits 1 as for any failed point. With a driver
/// (a GPU machine), the same points must pass verified instead.
#[test]
fn gpu_points_fail_cleanly_without_a_driver() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "gpu.toml",
        r#"
name = "gpu"
repetitions = 2
warmup = 1
timeout = "2m"

[[study]]
workload = "cuda.stream"
variant = ["triad", "memcpy"]
size = ["1MiB"]

[[study]]
workload = "cuda.reduce"
variant = ["atomic", "gridstride"]
size = [100003]
transfers = ["timed"]

[[study]]
workload = "cuda.transpose"
size = [100]

[[study]]
workload = "cuda.gemm"
variant = ["regblock", "cublas"]
size = [256]
"#,
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--quiet")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let records: Vec<serde_json::Value> = fs::read_dir(run_dir.join("points"))
        .unwrap()
        .map(|e| serde_json::from_str(&fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 7, "{stdout}{stderr}");
    let driver = runtime::driver();
    for r in &records {
        let reason = r["reason"].as_str().unwrap();
        assert!(!reason.contains("panicked"), "{reason}");
        match &driver {
            Err(_) => {
                assert_eq!(r["status"], "failed", "{r}");
                assert!(
                    reason.starts_with(&format!(
                        "preparing {}: no CUDA driver: libcuda.so.1 was not found. Install the \
                         NVIDIA driver",
                        r["point"]["workload"].as_str().unwrap()
                    )),
                    "{reason}"
                );
            }
            Ok(_) => assert_eq!(r["status"], "ok", "{r}"),
        }
    }
    for log in fs::read_dir(run_dir.join("logs")).unwrap() {
        let text = fs::read_to_string(log.unwrap().path()).unwrap();
        assert!(!text.contains("panicked"), "{text}");
        assert!(!text.contains("stack backtrace"), "{text}");
    }
    assert_eq!(
        out.status.code(),
        Some(if driver.is_ok() { 0 } else { 1 }),
        "{stdout}{stderr}"
    );
}

#[test]
fn gpu_manifests_check_and_bad_values_name_the_fix() {
    let mut names = vec!["gpu-stream", "gpu-reduction", "gpu-gemm", "gpu-scaling"];
    if cfg!(feature = "mpi") {
        names.push("gpu-mpi");
        names.push("ddp-gpu");
        names.push("gpu-train");
    }
    for name in names {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("experiments")
            .join(format!("{name}.toml"));
        let out = scalelab().arg("plan").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "bad.toml",
        "name = \"bad\"\n\n[[study]]\nworkload = \"cuda.gemm\"\nvariant = \"regblock\"\nsize = 1000\n",
    );
    let out = scalelab().arg("plan").arg(&manifest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "cuda.gemm: variant regblock needs matrix sides that are multiples of 128 (got m = \
             1000, n = 1000, k = 1000); use e.g. size = 1024"
        ),
        "{stderr}"
    );
}

#[test]
fn info_reports_gpus_or_why_there_are_none() {
    let out = scalelab().arg("info").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    match runtime::driver() {
        Err(why) => assert!(
            stdout.contains(&format!("gpus                  none: {why}")),
            "{stdout}"
        ),
        Ok(_) => assert!(stdout.contains("peak FP32"), "{stdout}"),
    }
}

/// Under MPI every rank finds no driver: the ranks agree on one failure, nothing panics.
#[cfg(feature = "mpi")]
#[test]
fn gpu_points_under_mpi_fail_cleanly_without_a_driver() {
    if runtime::driver().is_ok() {
        return; // A GPU machine: the single-process test above runs the points for real.
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "gpu-mpi.toml",
        "name = \"gpu-mpi\"\nrepetitions = 1\nwarmup = 0\ntimeout = \"2m\"\n\n[[study]]\n\
         workload = \"cuda.stream\"\nranks = 2\ngpus = 1\nsize = [1000]\n",
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let records: Vec<serde_json::Value> = fs::read_dir(run_dir.join("points"))
        .unwrap()
        .map(|e| serde_json::from_str(&fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["status"], "failed", "{}", records[0]);
    let reason = records[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("ranks 0, 1 failed; rank 0: preparing cuda.stream: no CUDA driver"),
        "{reason}"
    );
}

/// `mpi.train` with one GPU per rank on a machine without a driver: every point (1 and 2 ranks)
/// fails while preparing with the driver's fix, before the reference is trained, and nothing
/// panics. On a GPU machine scripts/gpu-check.sh runs the points for real.
#[cfg(feature = "mpi")]
#[test]
fn gpu_training_fails_cleanly_without_a_driver() {
    let Err(why) = runtime::driver() else {
        return; // A GPU machine: experiments/ddp-gpu.toml runs these points verified.
    };
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "gpu-train.toml",
        "name = \"gpu-train\"\nrepetitions = 1\nwarmup = 0\ntimeout = \"2m\"\n\n[[study]]\n\
         workload = \"mpi.train\"\nranks = [1, 2]\ngpus = 1\nstrategy = [\"ddp\", \
         \"accumulate\"]\nsize = 256\nhidden = \"8\"\nbatch = 64\nsteps = 2\n",
    );
    let run_dir = dir.path().join("run");
    let out = scalelab()
        .arg("run")
        .arg(&manifest)
        .arg("--run-dir")
        .arg(&run_dir)
        .arg("--quiet")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut reasons: Vec<String> = fs::read_dir(run_dir.join("points"))
        .unwrap()
        .map(|e| {
            let r: serde_json::Value =
                serde_json::from_str(&fs::read_to_string(e.unwrap().path()).unwrap()).unwrap();
            assert_eq!(r["status"], "failed", "{r}");
            r["reason"].as_str().unwrap().to_string()
        })
        .collect();
    reasons.sort();
    let one = format!("rank 0: preparing mpi.train: {why}");
    let two = format!("ranks 0, 1 failed; rank 0: preparing mpi.train: {why}");
    assert_eq!(reasons, [one.clone(), one, two.clone(), two]);
    assert!(
        why.starts_with("no CUDA driver: libcuda.so.1 was not found"),
        "{why}"
    );
    for log in fs::read_dir(run_dir.join("logs")).unwrap() {
        let text = fs::read_to_string(log.unwrap().path()).unwrap();
        assert!(!text.contains("panicked"), "{text}");
    }
}

/// What the GPU path of `mpi.train` does not run is refused by `scalelab plan` (exit 2) with
/// the fix, before anything runs: more than one GPU per rank, a strategy other than ddp and
/// accumulate, an overlapped or ring allreduce.
#[cfg(feature = "mpi")]
#[test]
fn gpu_training_points_it_cannot_run_are_refused_at_check_time() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = write(
        dir.path(),
        "bad.toml",
        "name = \"bad\"\n\n[[study]]\nname = \"two\"\nworkload = \"mpi.train\"\nranks = 2\n\
         gpus = 2\n\n[[study]]\nname = \"fed\"\nworkload = \"mpi.train\"\nranks = 2\ngpus = 1\n\
         strategy = \"fedavg\"\n\n[[study]]\nname = \"ring\"\nworkload = \"mpi.train\"\n\
         ranks = 2\ngpus = 1\nallreduce = \"ring\"\n",
    );
    let out = scalelab().arg("plan").arg(&manifest).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        "point ranks=2, gpus=2: mpi.train: gpus = 2: training runs one GPU per rank; use gpus = \
         1 with ranks = 4 (one rank per GPU)",
        "mpi.train: strategy = \"fedavg\" does not run on GPUs yet; with gpus = 1 use strategy = \
         \"ddp\" or \"accumulate\", or set gpus = 0 to run fedavg on the CPU",
        "mpi.train: gpus = 1 joins the ranks' gradients on the host after backward, along the \
         fixed tree; set allreduce = \"tree\" and overlap = \"off\" (or gpus = 0 for the other \
         ddp variants)",
    ] {
        assert!(stderr.contains(want), "missing {want:?} in:\n{stderr}");
    }
    assert!(stderr.contains("3 problems in"), "{stderr}");
}

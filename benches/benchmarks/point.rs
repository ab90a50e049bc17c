//! Starting a point: everything `scalelab point` does before it prepares the workload (read its
//! point, parse it, check its id), in a run whose plan has 10 and 100 000 points. The target: the
//! same cost at both sizes (within 2×), under 20 ms (and 20 MB, measured on the real process, see
//! docs/benchmarking.md).
//!
//! * `point_start/spec/<n>`: the local executor writes the point's spec and the point reads it
//!   back (`--spec`), i.e. the whole per-point cost of the launch path `scalelab run` uses;
//! * `point_start/task/<n>`: a SLURM array task reads the last line of an n-line task file
//!   (`--task-file`, `--task-index`);
//! * `point_start/plan_json/<n>`: the point is looked up in `plan.json`, parsed whole
//!   (`scalelab point <run-dir> <id>` by hand; every local point before specs existed).
//!
//! Run with `cargo bench --bench bench_main -- point_start/`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion};
use scalelab::point_runner::{self, Source};
use scalelab::results::RunDir;
use scalelab::{executor, manifest, plan};

/// The plan of a manifest of `threads` × `seconds` = 10 × (points / 10) `debug.sleep` points.
fn plan_of(points: usize) -> plan::Plan {
    let seconds: Vec<String> = (0..points / 10)
        .map(|i| format!("{}", 0.001 + i as f64 * 1e-6))
        .collect();
    let text = format!(
        "name = \"point-bench\"\nrepetitions = 1\n\n[[study]]\nworkload = \"debug.sleep\"\noversubscribe = true\nthreads = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nseconds = [{}]\n",
        seconds.join(", ")
    );
    let m = manifest::parse(Path::new("point-bench.toml"), &text).unwrap_or_else(|e| panic!("{e}"));
    let p = plan::expand(&m).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.points.len(), points);
    p
}

fn point_start(c: &mut Criterion) {
    let mut group = c.benchmark_group("point_start");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    for n in [10usize, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        let plan = plan_of(n);
        // As `scalelab run` and `scalelab sbatch` write them.
        fs::write(run.plan(), serde_json::to_vec_pretty(&plan).unwrap()).unwrap();
        let tasks = dir.path().join("array-1.tasks");
        let mut lines = String::new();
        for p in &plan.points {
            lines.push_str(&serde_json::to_string(p).unwrap());
            lines.push('\n');
        }
        fs::write(&tasks, lines).unwrap();
        let last = plan.points.last().unwrap().clone();

        group.bench_with_input(BenchmarkId::new("spec", n), &last, |b, p| {
            b.iter(|| {
                let spec = executor::write_spec(&run, p).unwrap();
                point_runner::load(&run, Source::Spec(&spec)).unwrap()
            })
        });
        group.bench_with_input(BenchmarkId::new("task", n), &(n - 1), |b, &i| {
            b.iter(|| point_runner::load(&run, Source::Task(&tasks, i)).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("plan_json", n), &last.id, |b, id| {
            b.iter(|| point_runner::load(&run, Source::Plan(id)).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, point_start);

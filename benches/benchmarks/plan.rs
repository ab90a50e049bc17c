//! The planner: what `scalelab plan` does with a 100 000-point manifest, which must take well under
//! a second. Each benchmark reports points per second (`Throughput::Elements`).
//!
//! * `plan/check`: TOML → checked manifest (this expands every study once, for per-point checks);
//! * `plan/expand`: checked manifest → plan (points with parameters and ids);
//! * `plan/describe`: the text of `scalelab plan` (estimates every point, prints the first rows);
//! * `plan/all`: the three together, i.e. the whole `scalelab plan` command minus its output;
//! * `plan/sbatch`: check, expand, group into shapes, split into arrays and render every sbatch
//!   script and task file of the 100 000 points, i.e. `scalelab sbatch --dry-run` minus its output
//!   (which must take under a second).
//!
//! Run with `cargo bench --bench bench_main -- plan/`.

use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use scalelab::{manifest, plan};

/// A manifest of `threads` × `seconds` = 10 × (points / 10) points of `debug.sleep`, a workload
/// every build has, plus a small weak-scaling study of a size workload when the registry has one.
fn manifest_text(points: usize) -> String {
    let seconds: Vec<String> = (0..points / 10)
        .map(|i| format!("{}", 0.001 + i as f64 * 1e-6))
        .collect();
    let mut text = format!(
        "name = \"planner-bench\"\nrepetitions = 3\n\n[[study]]\nworkload = \"debug.sleep\"\noversubscribe = true\nthreads = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\nseconds = [{}]\n",
        seconds.join(", ")
    );
    if scalelab::workload::find("stream.triad").is_some() {
        text.push_str(
            "\n[[study]]\nworkload = \"stream.triad\"\nscaling = \"weak\"\noversubscribe = true\nthreads = [1, 2, 4, 8]\nsize = [\"1MiB\", \"4MiB\", \"16MiB\"]\n",
        );
    }
    text
}

fn planner(c: &mut Criterion) {
    let text = manifest_text(100_000);
    let path = Path::new("experiments/planner-bench.toml");
    let m = manifest::parse(path, &text).unwrap_or_else(|e| panic!("{e}"));
    let p = plan::expand(&m).unwrap_or_else(|e| panic!("{e}"));
    let rates = plan::Rates::default();

    let mut group = c.benchmark_group("plan");
    group.throughput(Throughput::Elements(p.points.len() as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("check", |b| {
        b.iter(|| manifest::parse(path, &text).unwrap())
    });
    group.bench_function("expand", |b| b.iter(|| plan::expand(&m).unwrap()));
    group.bench_function("describe", |b| b.iter(|| p.describe(&rates)));
    group.bench_function("all", |b| {
        b.iter(|| {
            let m = manifest::parse(path, &text).unwrap();
            plan::expand(&m).unwrap().describe(&rates)
        })
    });
    let settings = scalelab::slurm::Settings {
        partition: Some("debug".into()),
        throttle: Some(16),
        mem_mb: Some(4096),
        ..Default::default()
    };
    group.bench_function("sbatch", |b| {
        b.iter(|| {
            let m = manifest::parse(path, &text).unwrap();
            let plan = plan::expand(&m).unwrap();
            let points: Vec<&plan::Point> = plan.points.iter().collect();
            let ctx = scalelab::slurm::ScriptContext {
                experiment: &m.name,
                run_dir: Path::new("/scratch/u/results/planner-bench/1"),
                program: Path::new("/home/u/bin/scalelab"),
                settings: &settings,
                round: 1,
            };
            scalelab::slurm::submit::prepare_round(&ctx, &points, &Default::default(), 1001, false)
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, planner);

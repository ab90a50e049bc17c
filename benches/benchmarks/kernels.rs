//! The compute kernels of `scalelab-kernels` over a few sizes and thread counts, each in a local
//! rayon pool of exactly that many workers (the global pool is never used).
//!
//! | group | sizes | throughput |
//! | --- | --- | --- |
//! | `stream` | copy, scale, add, triad; 1 MiB (in cache) and 64 MiB per array | bytes (STREAM's count) |
//! | `dot` | 1 MiB and 64 MiB per vector | bytes (16 per element) |
//! | `gemm` | naive at n = 256; ikj and blocked at 256 and 1024; tuned and faer at 256, 1024, 2048 | elements = **FLOPs** (2n³) |
//! | `stencil` | Jacobi 2-D, 10 sweeps of a 512² and a 2048² grid | bytes (16 per point per sweep) |
//! | `pi` | Monte Carlo π, 10⁷ samples | elements = **FLOPs** (3 per sample) |
//!
//! Each benchmark runs criterion's whole timing loop inside `pool.install`, so the time of entering
//! the pool is not part of the measured kernel (as in scalelab's point runner).
//!
//! For GEMM and π criterion's "elements per second" are floating point operations per second:
//! read `Gelem/s` as GFLOP/s. Every benchmark id ends in `t<threads>`, so
//! `cargo bench --bench bench_main -- 't1$'` runs the one-thread half. The whole group takes a few
//! minutes (10 samples each, short measurement windows); filter with e.g.
//! `cargo bench --bench bench_main -- gemm/tuned`.

use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use scalelab_kernels::{dot, gemm, pi, stencil, stream};

/// Thread counts every group is measured at.
const THREADS: [usize; 2] = [1, 2];

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a local rayon pool")
}

/// A group with the settings shared by all kernel groups: 10 samples, short windows.
fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
    measure_s: u64,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(measure_s));
    g
}

fn mib(elements: usize) -> String {
    format!("{}MiB", (elements * 8) >> 20)
}

fn stream_kernels(c: &mut Criterion) {
    let mut g = group(c, "stream", 1);
    for n in [1 << 17, 8 << 20] {
        for t in THREADS {
            let p = pool(t);
            let mut arrays = p.install(|| stream::Arrays::new(n));
            for op in stream::Op::ALL {
                g.throughput(Throughput::Bytes(op.bytes(n) as u64));
                let id = BenchmarkId::new(op.name(), format!("{}/t{t}", mib(n)));
                g.bench_function(id, |b| {
                    p.install(|| b.iter(|| arrays.run(op, stream::Stores::default())))
                });
                // Leave the inputs of the next kernel as they were (copy and add overwrite `c`).
                p.install(|| arrays.reset_output(op));
            }
        }
    }
    g.finish();
}

fn dot_kernel(c: &mut Criterion) {
    let mut g = group(c, "dot", 1);
    for n in [1 << 17, 8 << 20] {
        for t in THREADS {
            let p = pool(t);
            let (x, y) = p.install(|| {
                (
                    stream::init(n, |i| (i % 7) as f64),
                    stream::init(n, |i| (i % 5) as f64),
                )
            });
            g.throughput(Throughput::Bytes(dot::bytes(n) as u64));
            let id = BenchmarkId::new("dot", format!("{}/t{t}", mib(n)));
            g.bench_function(id, |b| p.install(|| b.iter(|| dot::dot(&x, &y))));
        }
    }
    g.finish();
}

fn gemm_kernels(c: &mut Criterion) {
    use gemm::Variant::*;
    let mut g = group(c, "gemm", 3);
    let cases: &[(gemm::Variant, &[usize])] = &[
        (Naive, &[256]),
        (Ikj, &[256, 1024]),
        (Blocked, &[256, 1024]),
        (Tuned, &[256, 1024, 2048]),
        (Faer, &[256, 1024, 2048]),
    ];
    for &(variant, sizes) in cases {
        for &n in sizes {
            let a: Vec<f64> = (0..n * n)
                .map(|i| ((i * 7) % 13) as f64 / 13.0 - 0.5)
                .collect();
            let b: Vec<f64> = (0..n * n)
                .map(|i| ((i * 5) % 11) as f64 / 11.0 - 0.5)
                .collect();
            let mut cm = vec![0.0; n * n];
            for t in THREADS {
                let p = pool(t);
                let mut ws = gemm::Workspace::new();
                p.install(|| ws.reserve(n));
                g.throughput(Throughput::Elements(gemm::flops(n) as u64));
                let id = BenchmarkId::new(variant.name(), format!("{n}/t{t}"));
                g.bench_function(id, |bch| {
                    p.install(|| bch.iter(|| gemm::run(variant, n, &a, &b, &mut cm, &mut ws)))
                });
            }
        }
    }
    g.finish();
}

fn stencil_kernel(c: &mut Criterion) {
    let mut g = group(c, "stencil", 1);
    let iterations = 10;
    for n in [512, 2048] {
        for t in THREADS {
            let p = pool(t);
            let mut grid = p.install(|| stencil::Jacobi::new(n));
            g.throughput(Throughput::Bytes(stencil::bytes(n, iterations) as u64));
            let id = BenchmarkId::new("jacobi2d", format!("{n}x{iterations}/t{t}"));
            g.bench_function(id, |b| p.install(|| b.iter(|| grid.run(iterations))));
        }
    }
    g.finish();
}

fn pi_kernel(c: &mut Criterion) {
    let mut g = group(c, "pi", 1);
    let samples = 10_000_000u64;
    for t in THREADS {
        let p = pool(t);
        g.throughput(Throughput::Elements(pi::flops(samples) as u64));
        let id = BenchmarkId::new("montecarlo", format!("10M/t{t}"));
        g.bench_function(id, |b| p.install(|| b.iter(|| pi::hits(samples, 42))));
    }
    g.finish();
}

criterion_group!(
    benches,
    stream_kernels,
    dot_kernel,
    gemm_kernels,
    stencil_kernel,
    pi_kernel
);

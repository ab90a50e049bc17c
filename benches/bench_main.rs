//! One entry for every criterion benchmark: `cargo bench` (all), `cargo bench -- gemm` (a filter).
//! Each group sets its `Throughput`, so criterion reports GB/s or elements (FLOPs, points) per second.

use criterion::criterion_main;

mod benchmarks;

criterion_main!(
    benchmarks::kernels::benches,
    benchmarks::plan::benches,
    benchmarks::point::benches,
    benchmarks::ml::benches
);

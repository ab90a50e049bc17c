//! HPL and the tuned DGEMM in GFLOP per CPU-second of the calling thread, three rounds: a figure
//! that other work on the machine does not change (it takes CPU time, not this thread's), to be
//! set beside OpenBLAS measured the same way (`scripts/lib/openblas_dgesv.c`, docs/hpl.md).
//!
//! ```text
//! cargo build --release -p scalelab-kernels --example hpl_cpu
//! target/release/examples/hpl_cpu 4000 128
//! ```
//!
//! Build it in release: a debug build keeps Rust's debug precondition checks in the DGEMM
//! micro-kernel's inner loop, which cost it about 2.7× on the machine this was written on.

fn cpu_seconds() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + 1e-9 * t.tv_nsec as f64
}

fn main() {
    let arg = |i: usize, default: usize| {
        std::env::args()
            .nth(i)
            .map_or(default, |s| s.parse().expect("a whole number"))
    };
    let (n, nb) = (arg(1, 4000), arg(2, 128));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("a one-thread pool");
    pool.install(|| {
        let mut lu = scalelab_kernels::hpl::Lu::new(n, nb, 1).expect("n and nb at least 1");
        let mut ws = scalelab_kernels::gemm::Workspace::new();
        let (a, b) = (vec![0.5; n * n], vec![0.25; n * n]);
        let mut c = vec![0.0; n * n];
        for _ in 0..3 {
            lu.reset();
            let t = cpu_seconds();
            lu.run();
            let t = cpu_seconds() - t;
            let res = lu.check().expect("HPL's residual check passes");
            let t2 = cpu_seconds();
            ws.gemm(n, &a, &b, &mut c);
            let t2 = cpu_seconds() - t2;
            println!(
                "n={n} nb={nb}: hpl {:.1} GFLOP per cpu-second (residual {:.2e}), tuned DGEMM {:.1}",
                scalelab_kernels::hpl::flops(n) / t / 1e9,
                res.scaled,
                scalelab_kernels::gemm::flops(n) / t2 / 1e9
            );
        }
    });
}

//! A small release-mode measurement program for the kernels, outside criterion and scalelab, for
//! quick tuning runs:
//!
//! ```text
//! cargo run --release -p scalelab-kernels --example measure -- gemm tuned 2048 1 5
//! cargo run --release -p scalelab-kernels --example measure -- stream triad 8388608 1 20
//! MEASURE_STORES=cached cargo run --release -p scalelab-kernels --example measure -- stream triad 8388608 1 20
//! cargo run --release -p scalelab-kernels --example measure -- dot 8388608 2 20
//! cargo run --release -p scalelab-kernels --example measure -- stencil 2048 50 2 5
//! cargo run --release -p scalelab-kernels --example measure -- pi 100000000 2 5
//! ```
//!
//! `MEASURE_BLOCKING=mc,kc,nc` tries another cache blocking for the tuned gemm, and
//! `MEASURE_ISA=avx2|portable` another micro-kernel.
//!
//! Arguments: kernel, its parameters, threads, repetitions. Prints the best and median time of the
//! repetitions (after one warm-up) with GFLOP/s and GB/s from the kernel's analytic counts.

use std::time::Instant;

use scalelab_kernels::{dot, gemm, pi, stencil, stream};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        panic!("argument {i} ({what}) missing or invalid; see the file's doc comment")
    })
}

/// CPU time of the whole process (all threads), seconds.
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Best and median wall time of `reps` runs after a warm-up, and the CPU time per thread of the
/// best-wall run (equal to its wall time when the process was never descheduled).
fn time(reps: usize, mut f: impl FnMut()) -> (f64, f64, f64) {
    f();
    let threads = rayon::current_num_threads() as f64;
    let mut t: Vec<(f64, f64)> = (0..reps)
        .map(|_| {
            let c = cpu_seconds();
            let s = Instant::now();
            f();
            (s.elapsed().as_secs_f64(), (cpu_seconds() - c) / threads)
        })
        .collect();
    t.sort_by(|a, b| a.0.total_cmp(&b.0));
    (t[0].0, t[t.len() / 2].0, t[0].1)
}

fn report(label: &str, (best, median, cpu): (f64, f64, f64), flops: f64, bytes: f64) {
    println!(
        "{label}: best {best:.6} s ({:.2} GFLOP/s, {:.2} GB/s)  median {median:.6} s ({:.2} GFLOP/s, {:.2} GB/s)  cpu/thread of best {cpu:.6} s ({:.2} GFLOP/s, {:.2} GB/s)",
        flops / best / 1e9,
        bytes / best / 1e9,
        flops / median / 1e9,
        bytes / median / 1e9,
        flops / cpu / 1e9,
        bytes / cpu / 1e9
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let kernel = args.first().map(String::as_str).unwrap_or("");
    match kernel {
        "gemm" => {
            let variant =
                gemm::Variant::parse(&args[1]).expect("variant: naive|ikj|blocked|tuned|faer");
            let n: usize = arg(&args, 2, "n");
            let threads: usize = arg(&args, 3, "threads");
            let reps: usize = arg(&args, 4, "repetitions");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let a: Vec<f64> = (0..n * n)
                    .map(|i| ((i * 7) % 13) as f64 / 13.0 - 0.5)
                    .collect();
                let b: Vec<f64> = (0..n * n)
                    .map(|i| ((i * 5) % 11) as f64 / 11.0 - 0.5)
                    .collect();
                let mut c = vec![0.0; n * n];
                let mut ws = match std::env::var("MEASURE_ISA").as_deref() {
                    Ok("avx2") => gemm::Workspace::for_isa(gemm::Isa::Avx2).expect("no AVX2 here"),
                    Ok("portable") => gemm::Workspace::for_isa(gemm::Isa::Portable).unwrap(),
                    _ => gemm::Workspace::new(),
                };
                // MEASURE_BLOCKING="mc,kc,nc" tries other cache blocking for the tuned variant.
                if let Ok(b) = std::env::var("MEASURE_BLOCKING") {
                    let v: Vec<usize> = b
                        .split(',')
                        .map(|x| x.trim().parse().expect("mc,kc,nc"))
                        .collect();
                    ws = ws.with_blocking(gemm::tuned::Blocking {
                        mc: v[0],
                        kc: v[1],
                        nc: v[2],
                    });
                }
                ws.reserve(n);
                let t = time(reps, || gemm::run(variant, n, &a, &b, &mut c, &mut ws));
                let label = format!(
                    "gemm {} ({} {:?}) n={n} threads={threads}",
                    variant.name(),
                    ws.isa().name(),
                    ws.blocking()
                );
                report(&label, t, gemm::flops(n), gemm::bytes(n));
            });
        }
        "stream" => {
            let op = stream::Op::ALL
                .into_iter()
                .find(|o| o.name() == args[1])
                .expect("op: copy|scale|add|triad");
            let n: usize = arg(&args, 2, "elements");
            let threads: usize = arg(&args, 3, "threads");
            let reps: usize = arg(&args, 4, "repetitions");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut s = stream::Arrays::new(n);
                let stores = match std::env::var("MEASURE_STORES") {
                    Ok(name) => {
                        stream::Stores::parse(&name).expect("MEASURE_STORES: streaming|cached")
                    }
                    Err(_) => stream::Stores::default(),
                };
                let t = time(reps, || s.run(op, stores));
                assert_eq!(s.check(op).0, 0);
                let label = format!(
                    "stream {} ({}) n={n} threads={threads}",
                    op.name(),
                    stores.name()
                );
                report(&label, t, op.flops(n), op.bytes(n));
            });
        }
        "dot" => {
            let n: usize = arg(&args, 1, "elements");
            let threads: usize = arg(&args, 2, "threads");
            let reps: usize = arg(&args, 3, "repetitions");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let x = stream::init(n, |i| (i % 7) as f64);
                let y = stream::init(n, |i| (i % 5) as f64);
                let mut s = 0.0;
                let t = time(reps, || s = dot::dot(&x, &y));
                report(
                    &format!("dot n={n} threads={threads} (sum {s})"),
                    t,
                    dot::flops(n),
                    dot::bytes(n),
                );
            });
        }
        "stencil" => {
            let n: usize = arg(&args, 1, "grid side");
            let iters: usize = arg(&args, 2, "iterations");
            let threads: usize = arg(&args, 3, "threads");
            let reps: usize = arg(&args, 4, "repetitions");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut j = stencil::Jacobi::new(n);
                let t = time(reps, || j.run(iters));
                report(
                    &format!("stencil n={n} iterations={iters} threads={threads}"),
                    t,
                    stencil::flops(n, iters),
                    stencil::bytes(n, iters),
                );
            });
        }
        "pi" => {
            let samples: u64 = arg(&args, 1, "samples");
            let threads: usize = arg(&args, 2, "threads");
            let reps: usize = arg(&args, 3, "repetitions");
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let mut h = 0;
                let t = time(reps, || h = pi::hits(samples, 42));
                let label = format!(
                    "pi samples={samples} threads={threads} (π ≈ {})",
                    pi::estimate(h, samples)
                );
                report(&label, t, pi::flops(samples), pi::bytes(samples));
            });
        }
        "peak" => peak(),
        _ => eprintln!("usage: measure gemm|stream|dot|stencil|pi ...; see examples/measure.rs"),
    }
}

/// FMA throughput of one core: 24 independent AVX-512 FMA chains (needs AVX-512F).
fn peak() {
    #[cfg(target_arch = "x86_64")]
    {
        if !is_x86_feature_detected!("avx512f") {
            return eprintln!("peak needs AVX-512F");
        }
        let iters = 200_000_000u64;
        for _ in 0..3 {
            let s = Instant::now();
            // SAFETY: AVX-512F checked above.
            let x = unsafe { fma_chains(iters) };
            let t = s.elapsed().as_secs_f64();
            let flops = iters as f64 * 24.0 * 16.0;
            println!("peak: {:.2} GFLOP/s ({x})", flops / t / 1e9);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn fma_chains(iters: u64) -> f64 {
    use std::arch::x86_64::*;
    let mut acc = [_mm512_set1_pd(1.0); 24];
    let m = _mm512_set1_pd(0.999_999_9);
    let a = _mm512_set1_pd(1e-9);
    for _ in 0..iters {
        for x in acc.iter_mut() {
            *x = _mm512_fmadd_pd(*x, m, a);
        }
    }
    let mut s = _mm512_setzero_pd();
    for x in acc {
        s = _mm512_add_pd(s, x);
    }
    _mm512_reduce_add_pd(s)
}

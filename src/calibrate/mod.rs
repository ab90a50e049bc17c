//! `scalelab calibrate`: the attainable peaks of this machine, measured, as a [`Profile`].
//!
//! The theoretical peak (lanes × FMA pipes × 2 × clock, [`Machine`]) is a ceiling no program
//! reaches; an instructor wants to say "this kernel reaches 80% of what this machine can do".
//! Calibration measures what it can do with the project's own kernels, at every core count
//! 1, 2, 4, … N (N the available cores, always included):
//!
//! * **STREAM triad** (`a = b + q·c`, streaming stores, each array ≥ 4 × L3 and ≥ 64 MiB) in
//!   a rayon pool of that size: the DRAM bandwidth ceiling;
//! * a **cache sweep**: every thread runs its own serial triad (ordinary stores, the widest SIMD
//!   the CPU has) over a private working set from 16 KiB to 4 × L3, so each size is served by
//!   one level; the level figures
//!   (L1, L2, L3, DRAM) are the sweep read at half of L1d, half of L2, half of each core's share of
//!   L3, and 4 × L3;
//! * **DGEMM** with the tuned (packed, SIMD micro-kernel) and the faer variants at n = 1536
//!   (2n³ flops), compute-bound on every current core;
//! * **MPI ping-pong** (8 B latency, 1 MiB bandwidth) between 2 ranks under `mpirun`, in an MPI
//!   build ([`mpi`]).
//!
//! Each measurement has a warm-up and several repetitions; the profile keeps the best (the
//! ceiling, as STREAM reports, drawn on the roofline) and the median (how steady it was, and what
//! a point's median is set against in the report's "% measured": like with like). The triad is
//! the `stream.triad` workload's own kernel; `--triad-only` ([`calibrate_triad`]) measures it
//! alone, for a side-by-side comparison with that workload. `--quick` shrinks sizes and
//! repetitions for tests and trials; its profile says so. Load averages before and after go into
//! the profile: a calibration on a busy machine is visible as such.

pub mod mpi;
pub mod profile;
#[cfg(test)]
mod report_tests;

use std::time::Instant;

use anyhow::{Context, Result};
use scalelab_kernels::{gemm, stream};

pub use profile::{Bandwidth, Gemm, Level, Mpi, Profile, RunProfile};

use crate::machine::Machine;

/// Sizes and repetitions of one calibration.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Elements of each STREAM array (three arrays).
    pub triad_elements: usize,
    /// Timed repetitions of the STREAM triad (after one warm-up; stream.c's NTIMES is 20).
    pub triad_reps: usize,
    /// Timed repetitions of each sweep point (after one warm-up).
    pub reps: usize,
    /// Bytes moved per sweep measurement at least (small working sets repeat the triad).
    pub sweep_bytes: f64,
    /// Largest sweep working set per core, bytes.
    pub sweep_max: u64,
    /// DGEMM order.
    pub gemm_n: usize,
    /// Timed DGEMM repetitions (after one warm-up).
    pub gemm_reps: usize,
    /// Whether these are the `--quick` settings.
    pub quick: bool,
}

impl Settings {
    /// The full calibration for `m`: STREAM arrays of at least 4 × L3 and 64 MiB each, a sweep
    /// up to 4 × L3, DGEMM n = 1536.
    pub fn full(m: &Machine) -> Settings {
        let l3 = cache(m, "L3").unwrap_or(32 << 20);
        // STREAM's rule: *each* array at least 4 × the last-level cache. With only the three
        // together at 4 × L3, a VM whose two vCPUs sit on two L3 slices (the OS reports one)
        // could serve part of the arrays from cache.
        let per_array = (4 * l3).max(64 << 20);
        Settings {
            triad_elements: (per_array / 8) as usize,
            triad_reps: 20,
            reps: 10,
            sweep_bytes: 5e8,
            sweep_max: 4 * l3,
            gemm_n: 1536,
            gemm_reps: 3,
            quick: false,
        }
    }

    /// Small sizes and few repetitions: seconds, even in a debug build; rough figures.
    pub fn quick() -> Settings {
        Settings {
            triad_elements: 1 << 18,
            triad_reps: 3,
            reps: 3,
            sweep_bytes: 2e7,
            sweep_max: 2 << 20,
            gemm_n: 192,
            gemm_reps: 2,
            quick: true,
        }
    }
}

/// The size in bytes of cache `level` ("L1d", "L2", "L3") as the OS reports it.
fn cache(m: &Machine, level: &str) -> Option<u64> {
    m.caches
        .iter()
        .find(|(l, _)| l == level)
        .map(|(_, b)| *b)
        .filter(|b| *b > 0)
}

/// Core counts calibrated on a machine with `n` cores: 1, 2, 4, … and `n` itself.
pub fn core_counts(n: usize) -> Vec<usize> {
    let mut c: Vec<usize> = std::iter::successors(Some(1usize), |k| k.checked_mul(2))
        .take_while(|&k| k < n)
        .collect();
    c.push(n.max(1));
    c
}

/// Measure everything and return the profile. `progress` gets one line per step.
pub fn calibrate(settings: &Settings, mut progress: impl FnMut(&str)) -> Result<Profile> {
    let start = Instant::now();
    let load_before = load_average();
    let machine = Machine::detect();
    let counts = core_counts(machine.cores);
    let mut triad = Vec::new();
    let mut sweep = Vec::new();
    let mut levels = Vec::new();
    let mut dgemm = Vec::new();
    for &cores in &counts {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .build()
            .context("starting the calibration's thread pool")?;
        let t = pool.install(|| measure_triad(settings.triad_elements, settings.triad_reps));
        progress(&format!(
            "{cores} core(s): STREAM triad {:.1} GB/s (median {:.1})",
            t.gbps, t.gbps_median
        ));
        triad.push(Bandwidth {
            cores,
            working_set_bytes: 24 * settings.triad_elements as u64,
            ..t
        });
        let sizes = sweep_sizes(settings.sweep_max);
        for &ws in &sizes {
            let b = measure_private_triad(cores, ws, settings);
            sweep.push(b);
        }
        for (level, ws) in level_sizes(&machine, cores, settings) {
            let b = measure_private_triad(cores, ws, settings);
            progress(&format!(
                "{cores} core(s): {level} ({} per core) {:.1} GB/s",
                crate::units::bytes(ws),
                b.gbps
            ));
            levels.push(Level {
                level: level.to_string(),
                cores,
                working_set_per_core_bytes: ws,
                gbps: b.gbps,
                gbps_median: b.gbps_median,
            });
        }
        for variant in [gemm::Variant::Tuned, gemm::Variant::Faer] {
            let g = pool.install(|| measure_gemm(variant, settings.gemm_n, settings.gemm_reps));
            progress(&format!(
                "{cores} core(s): DGEMM {} n={} {:.1} GFLOP/s (median {:.1})",
                variant.name(),
                settings.gemm_n,
                g.gflops,
                g.gflops_median
            ));
            dgemm.push(Gemm { cores, ..g });
        }
    }
    let mpi = mpi::measure(settings.quick);
    match &mpi {
        Mpi::Measured {
            latency_us,
            bandwidth_gbps,
            ..
        } => progress(&format!(
            "MPI ping-pong, 2 ranks: {latency_us:.2} µs (8 B), {bandwidth_gbps:.1} GB/s (1 MiB)"
        )),
        Mpi::Skipped { reason } => progress(&format!("MPI ping-pong skipped: {reason}")),
    }
    let mpi_nodes = mpi::measure_between_nodes(settings.quick);
    match &mpi_nodes {
        Some(Mpi::Measured {
            latency_us,
            bandwidth_gbps,
            ..
        }) => progress(&format!(
            "MPI ping-pong between 2 nodes: {latency_us:.2} µs (8 B), {bandwidth_gbps:.1} GB/s (1 MiB)"
        )),
        Some(Mpi::Skipped { reason }) => {
            progress(&format!("MPI ping-pong between nodes skipped: {reason}"))
        }
        None => {}
    }
    Ok(Profile {
        schema: profile::SCHEMA,
        created: crate::units::now_rfc3339(),
        scalelab_version: env!("CARGO_PKG_VERSION").to_string(),
        key: profile::machine_key(&machine),
        machine,
        quick: settings.quick,
        wall_s: start.elapsed().as_secs_f64(),
        load_before,
        load_after: load_average(),
        triad,
        sweep,
        levels,
        dgemm,
        mpi,
        mpi_nodes,
    })
}

/// The STREAM triad alone, at every calibrated core count, as `scalelab calibrate --triad-only`
/// writes it: the figure that `scripts/compare-calibrate.sh --triad` sets beside the
/// `stream.triad` workload, run interleaved with it, without the minute the whole calibration takes.
/// Not a machine profile (no DGEMM, no levels): `run` and `report` never read it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct TriadOnly {
    /// When it was measured (RFC 3339).
    pub created: String,
    /// The CPU model, as [`Machine`] reads it.
    pub cpu: String,
    /// Elements of each of the three arrays.
    pub elements: usize,
    /// Timed passes per core count (after one warm-up); `gbps` is their best, `gbps_median`
    /// their median.
    pub reps: usize,
    /// `/proc/loadavg` before and after.
    pub load_before: [f64; 3],
    pub load_after: [f64; 3],
    /// One entry per core count, as in [`Profile::triad`].
    pub triad: Vec<Bandwidth>,
}

/// Measure only the STREAM triad, exactly as [`calibrate`] does, at every core count.
pub fn calibrate_triad(settings: &Settings, mut progress: impl FnMut(&str)) -> Result<TriadOnly> {
    let load_before = load_average();
    let machine = Machine::detect_quick();
    let mut triad = Vec::new();
    for cores in core_counts(machine.cores) {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .build()
            .context("starting the calibration's thread pool")?;
        let t = pool.install(|| measure_triad(settings.triad_elements, settings.triad_reps));
        progress(&format!(
            "{cores} core(s): STREAM triad {:.1} GB/s (median {:.1})",
            t.gbps, t.gbps_median
        ));
        triad.push(t);
    }
    Ok(TriadOnly {
        created: crate::units::now_rfc3339(),
        cpu: machine.cpu_model.clone(),
        elements: settings.triad_elements,
        reps: settings.triad_reps,
        load_before,
        load_after: load_average(),
        triad,
    })
}

/// Copy this machine's profile ([`profile::default_path`]) into a new run as
/// `<run>/machine-profile.json`, so its report is reproducible. Returns the line to show the user
/// (what was used, or why nothing was and how to fix it): a missing profile, or one of another
/// machine, only costs the "% measured" column; a profile that cannot be copied is an error.
pub fn adopt(run: &crate::results::RunDir, machine: &Machine) -> Result<String> {
    let path = profile::default_path(machine);
    if !path.exists() {
        return Ok(format!(
            "note: no machine profile at {}: the report gives % of theoretical peak only; run `scalelab calibrate` once on this machine to add % of measured peak",
            path.display()
        ));
    }
    let p = match Profile::load(&path) {
        Ok(p) => p,
        Err(e) => {
            return Ok(format!(
                "warning: {e:#}; this run's report gives % of theoretical peak only"
            ))
        }
    };
    let key = profile::machine_key(machine);
    if p.key != key {
        return Ok(format!(
            "warning: the machine profile {} was measured on {} and this is {key}: not used; run `scalelab calibrate` here",
            path.display(),
            p.key
        ));
    }
    let dest = run.root.join(profile::RUN_FILE);
    crate::files::write_atomic(&dest, &serde_json::to_vec_pretty(&p)?)?;
    Ok(format!(
        "machine profile: {} (calibrated {}{}), copied to {}",
        path.display(),
        p.created,
        if p.quick { ", --quick" } else { "" },
        dest.display()
    ))
}

/// `/proc/loadavg`'s three averages (zeros where unreadable).
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = text.split_whitespace().map(|s| s.parse().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

/// Best and median of `rates` (any order; at least one).
fn best_median(mut rates: Vec<f64>) -> (f64, f64) {
    rates.sort_by(f64::total_cmp);
    let n = rates.len();
    let median = if n % 2 == 1 {
        rates[n / 2]
    } else {
        (rates[n / 2 - 1] + rates[n / 2]) / 2.0
    };
    (rates[n - 1], median)
}

/// STREAM triad with streaming stores in the current pool: first touch, one warm-up, `reps`
/// timed passes (GB/s with STREAM's 24 bytes per element).
fn measure_triad(n: usize, reps: usize) -> Bandwidth {
    let mut arrays = stream::Arrays::new(n);
    let bytes = stream::Op::Triad.bytes(n);
    arrays.run(stream::Op::Triad, stream::Stores::Streaming);
    let rates = (0..reps)
        .map(|_| {
            let t = Instant::now();
            arrays.run(stream::Op::Triad, stream::Stores::Streaming);
            bytes / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    let (gbps, gbps_median) = best_median(rates);
    Bandwidth {
        cores: rayon::current_num_threads(),
        working_set_bytes: 24 * n as u64,
        gbps,
        gbps_median,
    }
}

/// Working sets of the sweep, per core: 16 KiB, then doubling up to `max`.
fn sweep_sizes(max: u64) -> Vec<u64> {
    std::iter::successors(Some(16u64 << 10), |s| Some(s * 2))
        .take_while(|&s| s <= max.max(16 << 10))
        .collect()
}

/// The working set per core that stands for each level: half of L1d, half of L2, half of this
/// core's share of L3, and 4 × L3 (DRAM). Levels the OS does not report are left out; the quick
/// settings stop at their largest sweep size.
fn level_sizes(m: &Machine, cores: usize, s: &Settings) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    if let Some(l1) = cache(m, "L1d") {
        out.push(("L1", l1 / 2));
    }
    if let Some(l2) = cache(m, "L2") {
        out.push(("L2", l2 / 2));
    }
    let l3 = cache(m, "L3");
    if let Some(l3) = l3 {
        out.push(("L3", l3 / 2 / cores as u64));
    }
    out.push(("DRAM", l3.map_or(s.sweep_max, |l3| 4 * l3)));
    // Quick settings keep every working set within the sweep's range (seconds, not minutes).
    for (_, ws) in &mut out {
        *ws = (*ws).clamp(4 << 10, s.sweep_max.max(16 << 10));
    }
    out
}

/// `cores` threads, each running the serial triad (ordinary stores) over its own `ws_per_core`
/// bytes of arrays, started together at a barrier; GB/s of all threads together. Each
/// repetition moves at least `s.sweep_bytes` per thread, so the smallest sets are timed over
/// many passes.
fn measure_private_triad(cores: usize, ws_per_core: u64, s: &Settings) -> Bandwidth {
    let n = ((ws_per_core / 24) as usize).max(64);
    let bytes = 24.0 * n as f64;
    let passes = ((s.sweep_bytes / bytes).ceil() as usize).max(1);
    let barrier = std::sync::Barrier::new(cores);
    let mut per_rep = vec![0.0f64; s.reps];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..cores)
            .map(|_| {
                let barrier = &barrier;
                scope.spawn(move || {
                    let mut a = vec![1.0f64; n];
                    let b = vec![2.0f64; n];
                    let c = vec![0.5f64; n];
                    let mut times = Vec::with_capacity(s.reps);
                    for rep in 0..=s.reps {
                        barrier.wait();
                        let t = Instant::now();
                        for _ in 0..passes {
                            wide_triad(&mut a, &b, &c, stream::SCALAR);
                            std::hint::black_box(&mut a);
                        }
                        if rep > 0 {
                            times.push(t.elapsed().as_secs_f64());
                        }
                    }
                    times
                })
            })
            .collect();
        // A repetition takes as long as its slowest thread.
        for h in handles {
            let times = h.join().expect("calibration thread");
            for (slot, t) in per_rep.iter_mut().zip(times) {
                *slot = slot.max(t);
            }
        }
    });
    let total = bytes * passes as f64 * cores as f64;
    let (gbps, gbps_median) = best_median(per_rep.iter().map(|t| total / t / 1e9).collect());
    Bandwidth {
        cores,
        working_set_bytes: 24 * n as u64 * cores as u64,
        gbps,
        gbps_median,
    }
}

/// The serial triad `a = b + q·c` with ordinary stores, compiled for the widest vector unit this
/// CPU has (AVX-512, else AVX2, else the x86-64 baseline SSE2), chosen at run time. Cache
/// bandwidth is only reached with full-width loads and stores: the baseline build moves 16 bytes
/// per instruction and reads L1 no faster than L2.
fn wide_triad(a: &mut [f64], b: &[f64], c: &[f64], q: f64) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F (checked just above).
            return unsafe { triad_avx512(a, b, c, q) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { triad_avx2(a, b, c, q) };
        }
    }
    stream::triad_serial(a, b, c, q);
}

/// [`stream::triad_serial`]'s loop, vectorised by the compiler for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn triad_avx512(a: &mut [f64], b: &[f64], c: &[f64], q: f64) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + q * c;
    }
}

/// [`stream::triad_serial`]'s loop, vectorised by the compiler for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn triad_avx2(a: &mut [f64], b: &[f64], c: &[f64], q: f64) {
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + q * c;
    }
}

/// DGEMM `variant` at order `n` in the current pool: one warm-up, `reps` timed products.
fn measure_gemm(variant: gemm::Variant, n: usize, reps: usize) -> Gemm {
    let a: Vec<f64> = (0..n * n)
        .map(|i| (scalelab_kernels::mix64(i as u64) >> 11) as f64 / (1u64 << 53) as f64 - 0.5)
        .collect();
    let b: Vec<f64> = (0..n * n)
        .map(|i| (scalelab_kernels::mix64((i + n * n) as u64) >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    let mut c = vec![0.0f64; n * n];
    let mut ws = gemm::Workspace::new();
    ws.reserve(n);
    gemm::run(variant, n, &a, &b, &mut c, &mut ws);
    let rates = (0..reps.max(1))
        .map(|_| {
            let t = Instant::now();
            gemm::run(variant, n, &a, &b, &mut c, &mut ws);
            std::hint::black_box(&mut c);
            gemm::flops(n) / t.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    let (gflops, gflops_median) = best_median(rates);
    Gemm {
        variant: variant.name().to_string(),
        cores: rayon::current_num_threads(),
        n,
        gflops,
        gflops_median,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_counts_are_powers_of_two_and_n() {
        assert_eq!(core_counts(1), vec![1]);
        assert_eq!(core_counts(2), vec![1, 2]);
        assert_eq!(core_counts(6), vec![1, 2, 4, 6]);
        assert_eq!(core_counts(8), vec![1, 2, 4, 8]);
    }

    #[test]
    fn sweep_starts_at_16_kib_and_doubles() {
        assert_eq!(
            sweep_sizes(128 << 10),
            vec![16 << 10, 32 << 10, 64 << 10, 128 << 10]
        );
    }

    #[test]
    fn full_settings_reach_beyond_l3() {
        let m = Machine {
            caches: vec![
                ("L1d".into(), 48 << 10),
                ("L2".into(), 1 << 20),
                ("L3".into(), 32 << 20),
            ],
            cores: 2,
            ..Machine::default()
        };
        let s = Settings::full(&m);
        assert!(
            8 * s.triad_elements as u64 >= 4 * (32 << 20),
            "each array ≥ 4 × L3"
        );
        let levels = level_sizes(&m, 2, &s);
        let names: Vec<_> = levels.iter().map(|(l, _)| *l).collect();
        assert_eq!(names, ["L1", "L2", "L3", "DRAM"]);
        assert_eq!(levels[0].1, 24 << 10);
        assert_eq!(levels[2].1, 8 << 20);
        assert_eq!(levels[3].1, 128 << 20);
    }

    /// The quick calibration on this machine: every field present, every rate positive, every
    /// core count from 1 to N measured for each kind, and the JSON parses back to the same
    /// profile. (No timing is asserted.)
    #[test]
    fn quick_calibration_writes_a_complete_profile() {
        let mut lines = Vec::new();
        let p = calibrate(&Settings::quick(), |l| lines.push(l.to_string())).unwrap();
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(p.core_counts(), core_counts(n));
        assert!(p.quick);
        for c in core_counts(n) {
            assert!(p.triad_gbps(c).is_some_and(|g| g > 0.0));
            assert!(p.dgemm_gflops(c).is_some_and(|g| g > 0.0));
            assert_eq!(p.dgemm.iter().filter(|g| g.cores == c).count(), 2);
            assert!(p.level_gbps("DRAM", c).is_some());
        }
        for b in p.triad.iter().chain(&p.sweep) {
            assert!(b.gbps >= b.gbps_median && b.gbps_median > 0.0, "{b:?}");
        }
        let back = Profile::parse(&serde_json::to_vec(&p).unwrap()).unwrap();
        assert_eq!(back, p);
        assert!(lines.iter().any(|l| l.contains("STREAM triad")));
        assert!(lines.iter().any(|l| l.starts_with("MPI ping-pong")));
    }
}

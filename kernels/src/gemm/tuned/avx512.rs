//! AVX-512F + FMA micro-kernel: a 14 × 16 tile of C in 28 zmm registers.
//!
//! Each of the KC steps loads the two vectors of the packed B row and broadcasts the 14 values of
//! A (`vbroadcastsd`), issuing 28 independent FMAs, and leaves two registers for the B row and one
//! for the broadcast. A 4-cycle FMA latency needs at least 4 independent accumulators per FMA
//! issued each cycle: 8 on cores with two 512-bit FMA pipes (Zen 5, Intel server cores), 4 on Zen 4
//! (the course machine), which executes a 512-bit FMA on its two 256-bit pipes, one per cycle.
//! Measured in isolation (panels in cache) the kernel reaches 54 GFLOP/s at KC = 256 and 56–58 at
//! KC ≥ 512 on one Zen 4 core whose FMA peak is 58.
//!
//! C's tile is prefetched into L2 when the kernel starts and into L1 [`PREFETCH_TAIL`] steps before
//! the end, so that its misses overlap with the FMAs (worth 3–4% at n = 2048).

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{Blocking, MicroKernel};

/// Rows of the tile (broadcast values of A per step).
const MR: usize = 14;
/// 8-double vectors per tile row.
const NV: usize = 2;

/// KC steps before the end of the loop at which C's tile is prefetched into L1.
const PREFETCH_TAIL: usize = 24;

/// Blocking for this kernel, chosen by measurement on the course machine (AMD EPYC, AVX-512 on
/// 256-bit FMA pipes, 32 KiB L1d, 1 MiB L2, 32 MiB L3; n = 1024 and 2048, one thread):
///
/// | MC × KC | 336 × 256 | 336 × 512 | 168 × 512 | 336 × 768 | 336 × 1024 |
/// | --- | --- | --- | --- | --- | --- |
/// | GFLOP/s, n = 2048 | 50.5 | 52.0 | 51.2 | 52.9 | 49.7 |
/// | GFLOP/s, n = 1024 | 45.2 | 50.6 | 47.4 | 44.4 | 46.5 |
///
/// The textbook sizing (a 256 × 16 B̃ micro-panel of 32 KiB in L1, a 336 × 256 Ã block in L2) loses
/// to a deeper KC: each micro-tile's C update (28 loads, adds and stores, and C's cache misses)
/// is then amortised over twice as many FMAs, and the hardware prefetchers keep the longer
/// micro-panels streaming from L2 (B̃: 512 × 16 × 8 B = 64 KiB) and L2/L3 (Ã: 336 × 512 × 8 B =
/// 1.3 MiB). NC = 4096 keeps B̃ (KC × NC ≤ 16 MiB) in the shared L3.
pub const BLOCKING: Blocking = Blocking {
    mc: 14 * 24,
    kc: 512,
    nc: 4096,
};

/// Whether the CPU has AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
pub fn available() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("fma")
}

/// Whether the CPU has AVX-512F and FMA (never, off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub fn available() -> bool {
    false
}

/// The AVX-512 micro-kernel.
pub struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = 8 * NV;

    #[inline]
    unsafe fn tile(
        kc: usize,
        a: *const f64,
        b: *const f64,
        c: *mut f64,
        ldc: usize,
        accumulate: bool,
    ) {
        debug_assert_eq!(
            b.addr() % 64,
            0,
            "B̃ must be 64-byte aligned for _mm512_load_pd"
        );
        // SAFETY: the caller upholds `MicroKernel::tile`'s contract (sizes, B̃'s alignment, and a
        // CPU with AVX-512F and FMA, which the `target_feature` function needs).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            tile::<MR, NV>(kc, a, b, c, ldc, accumulate)
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("the AVX-512 kernel is only selected on x86-64 CPUs that have it");
    }
}

/// # Safety
/// As [`MicroKernel::tile`], with `b` 64-byte aligned, on a CPU with AVX-512F and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,fma")]
unsafe fn tile<const R: usize, const V: usize>(
    kc: usize,
    mut a: *const f64,
    mut b: *const f64,
    c: *mut f64,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller guarantees `MicroKernel::tile`'s contract: `a` holds kc·R values and
    // `b` kc·8·V, 64-byte aligned (so each `_mm512_load_pd` of a B̃ row is aligned and in bounds),
    // C rows 0..R at stride `ldc` hold 8·V values (unaligned loads and stores; the prefetches
    // only hint and cannot fault), and the CPU has AVX-512F and FMA.
    unsafe {
        // C's tile is touched only after the KC loop: ask for it in L2 now and in L1 shortly before the
        // end, so its (possibly DRAM-latency) misses overlap with the FMAs rather than follow them.
        let prefetch_c = |hint_l1: bool| {
            for i in 0..R {
                let row = c.add(i * ldc).cast::<i8>();
                for off in (0..8 * V * 8 + 63).step_by(64) {
                    let p = row.wrapping_add(off.min(8 * V * 8 - 1));
                    if hint_l1 {
                        _mm_prefetch::<_MM_HINT_T0>(p);
                    } else {
                        _mm_prefetch::<_MM_HINT_T1>(p);
                    }
                }
            }
        };
        prefetch_c(false);
        let mut acc = [[_mm512_setzero_pd(); V]; R];
        let tail = kc.min(PREFETCH_TAIL);
        for (steps, last) in [(kc - tail, false), (tail, true)] {
            if last {
                prefetch_c(true);
            }
            for _ in 0..steps {
                let mut bv = [_mm512_setzero_pd(); V];
                for (v, x) in bv.iter_mut().enumerate() {
                    *x = _mm512_load_pd(b.add(8 * v));
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let av = _mm512_set1_pd(*a.add(i));
                    for (x, bx) in row.iter_mut().zip(&bv) {
                        *x = _mm512_fmadd_pd(av, *bx, *x);
                    }
                }
                a = a.add(R);
                b = b.add(8 * V);
            }
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let p = c.add(i * ldc + 8 * v);
                let out = if accumulate {
                    _mm512_add_pd(_mm512_loadu_pd(p), *x)
                } else {
                    *x
                };
                _mm512_storeu_pd(p, out);
            }
        }
    }
}

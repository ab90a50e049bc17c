//! AVX2 + FMA micro-kernel: a 6 × 8 tile of C in 12 ymm registers (the classic Haswell shape),
//! leaving 2 registers for the B row and 1 for the broadcast A value of the 16 available.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{Blocking, MicroKernel};

/// Rows of the tile.
const MR: usize = 6;
/// 4-double vectors per tile row.
const NV: usize = 2;

/// Blocking for this kernel: KC × NR of B̃ (512 × 8 × 8 B = 32 KiB) in L1, MC × KC of Ã
/// (192 × 512 × 8 B = 768 KiB) in L2. On the course machine (AMD EPYC whose FMA pipes are 256 bits
/// wide, so AVX2 reaches the same peak as AVX-512 there), n = 1024, one thread: 49.5 GFLOP/s with
/// KC = 512 against 46.7 with KC = 256.
pub const BLOCKING: Blocking = Blocking {
    mc: 192,
    kc: 512,
    nc: 4096,
};

/// Whether the CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
pub fn available() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Whether the CPU has AVX2 and FMA (never, off x86-64).
#[cfg(not(target_arch = "x86_64"))]
pub fn available() -> bool {
    false
}

/// The AVX2 micro-kernel.
pub struct Kernel;

impl MicroKernel for Kernel {
    const MR: usize = MR;
    const NR: usize = 4 * NV;

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
            b.addr() % 32,
            0,
            "B̃ must be 32-byte aligned for _mm256_load_pd"
        );
        // SAFETY: the caller upholds `MicroKernel::tile`'s contract (sizes, B̃'s alignment, and a
        // CPU with AVX2 and FMA, which the `target_feature` function needs).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            tile(kc, a, b, c, ldc, accumulate)
        };
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("the AVX2 kernel is only selected on x86-64 CPUs that have it");
    }
}

/// # Safety
/// As [`MicroKernel::tile`], with `b` 32-byte aligned, on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile(
    kc: usize,
    mut a: *const f64,
    mut b: *const f64,
    c: *mut f64,
    ldc: usize,
    accumulate: bool,
) {
    // SAFETY: the caller guarantees `MicroKernel::tile`'s contract: `a` holds kc·MR values and
    // `b` kc·NR, 32-byte aligned (so each `_mm256_load_pd` of a B̃ row is aligned and in bounds),
    // C rows 0..MR at stride `ldc` hold NR values (unaligned loads and stores), and the CPU has
    // AVX2 and FMA.
    unsafe {
        let mut acc = [[_mm256_setzero_pd(); NV]; MR];
        for _ in 0..kc {
            let mut bv = [_mm256_setzero_pd(); NV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = _mm256_load_pd(b.add(4 * v));
            }
            for (i, row) in acc.iter_mut().enumerate() {
                let av = _mm256_broadcast_sd(&*a.add(i));
                for (x, bx) in row.iter_mut().zip(&bv) {
                    *x = _mm256_fmadd_pd(av, *bx, *x);
                }
            }
            a = a.add(MR);
            b = b.add(4 * NV);
        }
        for (i, row) in acc.iter().enumerate() {
            for (v, x) in row.iter().enumerate() {
                let p = c.add(i * ldc + 4 * v);
                let out = if accumulate {
                    _mm256_add_pd(_mm256_loadu_pd(p), *x)
                } else {
                    *x
                };
                _mm256_storeu_pd(p, out);
            }
        }
    }
}

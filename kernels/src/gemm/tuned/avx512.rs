//! AVX-512F + FMA micro-kernel: an `MR × NR` tile of C in `MR · NR/8` zmm registers.
//!
//! Each of the KC steps loads `NR/8` vectors of the packed B row and broadcasts `MR` values of A
//! straight from memory into the FMAs (`vfmadd231pd zmm, zmm, [mem]{1to8}`). With two 512-bit FMA
//! pipes of 4-cycle latency, at least 8 independent accumulators are needed to keep both busy; the
//! tile here has many more, and leaves registers for the B row.

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

use super::{Blocking, MicroKernel};

/// Rows of the tile (broadcast values of A per step).
const MR: usize = 14;
/// 8-double vectors per tile row.
const NV: usize = 2;

/// Blocking for this kernel: a KC × NR micro-panel of B̃ (256 × 16 × 8 B = 32 KiB) stays in L1, an
/// MC × KC block of Ã (336 × 256 × 8 B = 672 KiB) in a 1 MiB L2.
pub const BLOCKING: Blocking = Blocking { mc: 14 * 24, kc: 256, nc: 4096 };

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
    unsafe fn tile(kc: usize, a: *const f64, b: *const f64, c: *mut f64, ldc: usize, accumulate: bool) {
        #[cfg(target_arch = "x86_64")]
        tile::<MR, NV>(kc, a, b, c, ldc, accumulate);
        #[cfg(not(target_arch = "x86_64"))]
        unreachable!("the AVX-512 kernel is only selected on x86-64 CPUs that have it");
    }
}

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
    for i in 0..R {
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc).cast());
        _mm_prefetch::<_MM_HINT_T0>(c.add(i * ldc + 8 * V - 1).cast());
    }
    let mut acc = [[_mm512_setzero_pd(); V]; R];
    for _ in 0..kc {
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

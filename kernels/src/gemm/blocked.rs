//! Cache blocking: the `ikj` loops run on `BLOCK × BLOCK` tiles, so the tile of B a row block works
//! on is reused from cache by all `BLOCK` rows of the block instead of being streamed from memory
//! once per row.
//!
//! Loop nest: `for kk (tiles of k), for jj (tiles of j), for i in the row block, for k in kk:
//! C[i][jj] += A[i][k]·B[k][jj]`. A row block of C (`BLOCK` rows) is one parallel task. The inner
//! loop handles four values of `k` per pass over the C row segment (C is loaded and stored once
//! per four multiply-adds instead of once per multiply-add, in the same order of additions as
//! `ikj`, so the result is bitwise that of [`ikj`](super::ikj())). It is still bound by loads and
//! stores (five loads and a store per four FMAs), which the register blocking of the tuned variant
//! removes. 2n³ flops.

use rayon::prelude::*;

use super::check_dims;
use super::ikj::axpy;

/// `y += a₀·x₀ + a₁·x₁ + a₂·x₂ + a₃·x₃`, added left to right (as four AXPYs would), vectorised with
/// AVX2 or AVX-512 when the CPU has them.
#[inline]
fn axpy4(y: &mut [f64], a: [f64; 4], x: [&[f64]; 4]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { axpy4_avx512(y, a, x) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { axpy4_avx2(y, a, x) };
        }
    }
    axpy4_generic(y, a, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpy4_avx512(y: &mut [f64], a: [f64; 4], x: [&[f64]; 4]) {
    axpy4_generic(y, a, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy4_avx2(y: &mut [f64], a: [f64; 4], x: [&[f64]; 4]) {
    axpy4_generic(y, a, x)
}

#[inline(always)]
fn axpy4_generic(y: &mut [f64], a: [f64; 4], x: [&[f64]; 4]) {
    let n = y.len();
    let (x0, x1, x2, x3) = (&x[0][..n], &x[1][..n], &x[2][..n], &x[3][..n]);
    for j in 0..n {
        y[j] = y[j] + a[0] * x0[j] + a[1] * x1[j] + a[2] * x2[j] + a[3] * x3[j];
    }
}

/// Tile side: a 64 × 256 tile of B (128 KiB) stays in L2 while the row block's C tiles stay in L1.
pub const BLOCK: usize = 64;
/// Columns of the B tile (wider than tall: long stride-1 inner loops).
const BLOCK_J: usize = 256;

/// Serial blocked product. Panics if a slice is not `n²` long.
pub fn blocked_serial(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    if n == 0 {
        return;
    }
    for (ib, cb) in c.chunks_mut(BLOCK * n).enumerate() {
        row_block(n, ib * BLOCK, a, b, cb);
    }
}

/// Parallel blocked product: blocks of `BLOCK` rows of C split over the current pool. Bitwise equal
/// to [`blocked_serial`]. Panics if a slice is not `n²` long.
pub fn blocked(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    if n == 0 {
        return;
    }
    c.par_chunks_mut(BLOCK * n)
        .enumerate()
        .for_each(|(ib, cb)| row_block(n, ib * BLOCK, a, b, cb));
}

/// Rows `i0..i0 + cb.len()/n` of C.
fn row_block(n: usize, i0: usize, a: &[f64], b: &[f64], cb: &mut [f64]) {
    cb.fill(0.0);
    let rows = cb.len() / n;
    for kk in (0..n).step_by(BLOCK) {
        let k_end = (kk + BLOCK).min(n);
        for jj in (0..n).step_by(BLOCK_J) {
            let j_end = (jj + BLOCK_J).min(n);
            for r in 0..rows {
                let a_row = &a[(i0 + r) * n..(i0 + r + 1) * n];
                let c_row = &mut cb[r * n + jj..r * n + j_end];
                let b_seg = |k: usize| &b[k * n + jj..k * n + j_end];
                let mut k = kk;
                while k + 4 <= k_end {
                    let a4 = [a_row[k], a_row[k + 1], a_row[k + 2], a_row[k + 3]];
                    axpy4(
                        c_row,
                        a4,
                        [b_seg(k), b_seg(k + 1), b_seg(k + 2), b_seg(k + 3)],
                    );
                    k += 4;
                }
                for (k, &aik) in a_row.iter().enumerate().take(k_end).skip(k) {
                    axpy(c_row, aik, b_seg(k));
                }
            }
        }
    }
}

//! Loop interchange: `for i, for k: C[i][:] += A[i][k] · B[k][:]`.
//!
//! Moving `k` out of the inner loop makes the inner loop an AXPY over a row of B and a row of C, both
//! stride 1: it vectorises, and every cache line loaded is used whole. B is still streamed from
//! memory once per row of C when it does not fit in cache, which is what blocking fixes next.
//! 2n³ flops.

use rayon::prelude::*;

use super::check_dims;

/// Serial `ikj` product. Panics if a slice is not `n²` long.
pub fn ikj_serial(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    for (i, row) in c.chunks_exact_mut(n.max(1)).enumerate() {
        row_ikj(n, &a[i * n..(i + 1) * n], b, row);
    }
}

/// Parallel `ikj` product: rows of C split over the current pool. Bitwise equal to [`ikj_serial`].
/// Panics if a slice is not `n²` long.
pub fn ikj(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    if n == 0 {
        return;
    }
    c.par_chunks_mut(n)
        .enumerate()
        .for_each(|(i, row)| row_ikj(n, &a[i * n..(i + 1) * n], b, row));
}

fn row_ikj(n: usize, a_row: &[f64], b: &[f64], c_row: &mut [f64]) {
    c_row.fill(0.0);
    for (k, &aik) in a_row.iter().enumerate() {
        axpy(c_row, aik, &b[k * n..(k + 1) * n]);
    }
}

/// `y += α·x`, the inner loop of the `ikj` and blocked variants (vectorised by the compiler; AVX2 or
/// AVX-512 when the CPU has them).
#[inline]
pub(super) fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { axpy_avx512(y, alpha, x) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { axpy_avx2(y, alpha, x) };
        }
    }
    axpy_generic(y, alpha, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpy_avx512(y: &mut [f64], alpha: f64, x: &[f64]) {
    axpy_generic(y, alpha, x)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn axpy_avx2(y: &mut [f64], alpha: f64, x: &[f64]) {
    axpy_generic(y, alpha, x)
}

#[inline(always)]
fn axpy_generic(y: &mut [f64], alpha: f64, x: &[f64]) {
    for (y, x) in y.iter_mut().zip(x) {
        *y += alpha * x;
    }
}

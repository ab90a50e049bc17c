//! The textbook `ijk` triple loop: `C[i][j] = Σₖ A[i][k]·B[k][j]`.
//!
//! The inner loop walks down a column of the row-major B with stride n, touching a new cache line
//! per multiply-add once a column no longer fits in cache, and its running sum is one dependent chain
//! of additions, so the loop cannot be vectorised without reassociation. This is the baseline every
//! other variant is measured against (a few percent of peak at best). 2n³ flops.

use rayon::prelude::*;

use super::check_dims;

/// Serial `ijk` product, the reference of every gemm test. Panics if a slice is not `n²` long.
pub fn naive_serial(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    for (i, row) in c.chunks_exact_mut(n.max(1)).enumerate() {
        row_ijk(n, &a[i * n..(i + 1) * n], b, row);
    }
}

/// Parallel `ijk` product: rows of C split over the current pool. Bitwise equal to
/// [`naive_serial`]. Panics if a slice is not `n²` long.
pub fn naive(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    if n == 0 {
        return;
    }
    c.par_chunks_mut(n)
        .enumerate()
        .for_each(|(i, row)| row_ijk(n, &a[i * n..(i + 1) * n], b, row));
}

fn row_ijk(n: usize, a_row: &[f64], b: &[f64], c_row: &mut [f64]) {
    for (j, cij) in c_row.iter_mut().enumerate() {
        let mut s = 0.0;
        for (k, aik) in a_row.iter().enumerate() {
            s += aik * b[k * n + j];
        }
        *cij = s;
    }
}

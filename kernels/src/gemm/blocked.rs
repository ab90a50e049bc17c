//! Cache blocking: the `ikj` loops run on `BLOCK × BLOCK` tiles, so the tile of B a row block works
//! on is reused from cache by all `BLOCK` rows of the block instead of being streamed from memory
//! once per row.
//!
//! Loop nest: `for kk (tiles of k), for jj (tiles of j), for i in the row block, for k in kk:
//! C[i][jj] += A[i][k]·B[k][jj]`. A row block of C (`BLOCK` rows) is one parallel task. The
//! vectorised AXPY is still load/store bound (two loads and a store per FMA), which is what the
//! register blocking of the tuned variant removes. 2n³ flops.

use rayon::prelude::*;

use super::check_dims;
use super::ikj::axpy;

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
                for k in kk..k_end {
                    axpy(c_row, a_row[k], &b[k * n + jj..k * n + j_end]);
                }
            }
        }
    }
}

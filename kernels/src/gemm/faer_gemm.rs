//! The library yardstick: faer's matrix product (`faer::linalg::matmul::matmul`), a Goto/BLIS-style
//! implementation with AVX-512 kernels chosen at run time.
//!
//! The row-major slices are viewed as faer matrices without copying. Parallelism is
//! `Par::rayon(current_num_threads())` inside the current pool (faer's rayon code forks with
//! `rayon::join`, which stays in the pool it is called from), or `Par::Seq` for one thread. faer
//! manages its own packing buffers.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

use super::check_dims;

/// `C = A·B` by faer in the current rayon pool. Panics if a slice is not `n²` long.
pub fn faer(n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    check_dims(n, a, b, c);
    if n == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let par = if threads <= 1 {
        Par::Seq
    } else {
        Par::rayon(threads)
    };
    let a = MatRef::from_row_major_slice(a, n, n);
    let b = MatRef::from_row_major_slice(b, n, n);
    let c = MatMut::from_row_major_slice_mut(c, n, n);
    matmul(c, Accum::Replace, a, b, 1.0, par);
}

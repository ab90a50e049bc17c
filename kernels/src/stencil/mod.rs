//! 2-D Jacobi iteration for the heat (Laplace) equation with the 5-point stencil.
//!
//! On an `n × n` grid stored row-major, every interior point is replaced by the mean of its four
//! neighbours,
//!
//! ```text
//! u'[i][j] = 0.25 · ((u[i-1][j] + u[i+1][j]) + (u[i][j-1] + u[i][j+1]))
//! ```
//!
//! while the boundary rows and columns keep fixed values (Dirichlet conditions). Sweeps alternate
//! between two buffers (double buffering), so a sweep reads only old values and its result does not
//! depend on the order in which points — or rows, or threads — are processed: the parallel variant
//! is **bitwise identical** to the serial reference.
//!
//! Work per sweep, counted per interior point (`(n-2)²` of them): **4 flops** (three additions and
//! one multiplication; the five-operation count that also counts the centre point belongs to the
//! weighted form `u' = u + ω·(...)`, which this is not) and **16 bytes**: one 8-byte read stream and
//! one 8-byte write stream, counted as STREAM counts a copy (the neighbour rows are reused from
//! cache, and write-allocate traffic is not counted).
//!
//! Reference: W. H. Press et al., *Numerical Recipes*, 3rd ed., §20.5 (relaxation methods);
//! G. Hager and G. Wellein, *Introduction to High Performance Computing for Scientists and
//! Engineers*, CRC 2010, §3.3 (the Jacobi stencil as a memory-bound kernel).

use rayon::prelude::*;

use crate::static_chunk;

/// Floating point operations of `iterations` sweeps on an `n × n` grid: 4 per interior point per
/// sweep.
pub fn flops(n: usize, iterations: usize) -> f64 {
    4.0 * interior(n) * iterations as f64
}

/// Bytes of `iterations` sweeps on an `n × n` grid: 16 per interior point per sweep (one read and
/// one write stream).
pub fn bytes(n: usize, iterations: usize) -> f64 {
    16.0 * interior(n) * iterations as f64
}

fn interior(n: usize) -> f64 {
    let m = n.saturating_sub(2) as f64;
    m * m
}

/// Fixed boundary value at row `i`, column `j` of an `n × n` grid: the top edge is hot (1.0), the
/// other three edges carry a deterministic pattern in [0, 1] so that errors in any direction show.
pub fn boundary_value(n: usize, i: usize, j: usize) -> f64 {
    if i == 0 {
        1.0
    } else {
        ((i * 7 + j * 13 + n) % 17) as f64 / 16.0
    }
}

/// A Jacobi problem: the initial grid and the two sweep buffers, all `n × n`, row-major.
///
/// The first sweep of every [`Jacobi::run`] reads the untouched initial grid, so every run computes
/// the same result from the same start (repeated runs stay checkable) without copying the initial
/// grid in the timed region.
#[derive(Clone, Debug)]
pub struct Jacobi {
    n: usize,
    initial: Vec<f64>,
    buf: [Vec<f64>; 2],
    /// Sweeps done by the last run (decides which buffer holds its result).
    last: usize,
}

impl Jacobi {
    /// An `n × n` grid with [`boundary_value`] on its edges and zeros inside, and its two buffers,
    /// first-touched in parallel by rows in the current pool.
    ///
    /// ```
    /// use scalelab_kernels::stencil::Jacobi;
    ///
    /// let mut parallel = Jacobi::new(64);
    /// let mut serial = parallel.clone();
    /// let pool = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap();
    /// pool.install(|| parallel.run(10));
    /// serial.run_serial(10);
    /// // The same arithmetic in the same order per point: bitwise equal at any thread count.
    /// assert_eq!(parallel.result(), serial.result());
    /// ```
    pub fn new(n: usize) -> Jacobi {
        let make = || {
            let mut g = vec![0.0; n * n];
            let rows = static_chunk(n);
            g.par_chunks_mut((rows * n).max(1))
                .enumerate()
                .for_each(|(k, block)| {
                    for (r, row) in block.chunks_mut(n).enumerate() {
                        let i = k * rows + r;
                        for (j, v) in row.iter_mut().enumerate() {
                            let edge = i == 0 || j == 0 || i == n - 1 || j == n - 1;
                            *v = if edge { boundary_value(n, i, j) } else { 0.0 };
                        }
                    }
                });
            g
        };
        Jacobi {
            n,
            initial: make(),
            buf: [make(), make()],
            last: 0,
        }
    }

    /// Grid side.
    pub fn n(&self) -> usize {
        self.n
    }

    /// `iterations` parallel sweeps from the initial grid (rows split into one contiguous block per
    /// worker of the current pool).
    pub fn run(&mut self, iterations: usize) {
        self.sweeps(iterations, sweep);
    }

    /// `iterations` serial sweeps from the initial grid: the reference.
    pub fn run_serial(&mut self, iterations: usize) {
        self.sweeps(iterations, sweep_serial);
    }

    fn sweeps(&mut self, iterations: usize, f: fn(&mut [f64], &[f64], usize)) {
        let n = self.n;
        let [b0, b1] = &mut self.buf;
        for it in 0..iterations {
            match it {
                0 => f(b0, &self.initial, n),
                _ if it % 2 == 1 => f(b1, b0, n),
                _ => f(b0, b1, n),
            }
        }
        self.last = iterations;
    }

    /// The grid after the last run (the initial grid before any sweep).
    pub fn result(&self) -> &[f64] {
        match self.last {
            0 => &self.initial,
            k if k % 2 == 1 => &self.buf[0],
            _ => &self.buf[1],
        }
    }

    /// The grid after the last run, mutable (for tests that corrupt a result on purpose).
    pub fn result_mut(&mut self) -> &mut [f64] {
        match self.last {
            0 => &mut self.initial,
            k if k % 2 == 1 => &mut self.buf[0],
            _ => &mut self.buf[1],
        }
    }
}

/// One serial sweep: the interior of `next` from `cur` (both `n × n`; `next`'s boundary is left
/// alone). Panics if a slice is not `n × n`.
pub fn sweep_serial(next: &mut [f64], cur: &[f64], n: usize) {
    assert!(
        next.len() == n * n && cur.len() == n * n,
        "stencil grids must be n × n"
    );
    if n < 3 {
        return;
    }
    rows(&mut next[n..(n - 1) * n], cur, n, 1);
}

/// One parallel sweep: interior rows split into one contiguous block per worker of the current pool.
/// Bitwise identical to [`sweep_serial`]. Panics if a slice is not `n × n`.
pub fn sweep(next: &mut [f64], cur: &[f64], n: usize) {
    assert!(
        next.len() == n * n && cur.len() == n * n,
        "stencil grids must be n × n"
    );
    if n < 3 {
        return;
    }
    let per = static_chunk(n - 2);
    next[n..(n - 1) * n]
        .par_chunks_mut(per * n)
        .enumerate()
        .for_each(|(k, block)| rows(block, cur, n, 1 + k * per));
}

/// Update the rows of `out` (full rows, the first being grid row `first`) from `cur`.
fn rows(out: &mut [f64], cur: &[f64], n: usize, first: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { rows_avx512(out, cur, n, first) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { rows_avx2(out, cur, n, first) };
        }
    }
    rows_generic(out, cur, n, first)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rows_avx512(out: &mut [f64], cur: &[f64], n: usize, first: usize) {
    rows_generic(out, cur, n, first)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rows_avx2(out: &mut [f64], cur: &[f64], n: usize, first: usize) {
    rows_generic(out, cur, n, first)
}

/// The same arithmetic in every instruction set (no FMA contraction in Rust), so every path gives
/// the same bits.
#[inline(always)]
fn rows_generic(out: &mut [f64], cur: &[f64], n: usize, first: usize) {
    for (r, row) in out.chunks_exact_mut(n).enumerate() {
        let i = first + r;
        let up = &cur[(i - 1) * n + 1..i * n - 1];
        let down = &cur[(i + 1) * n + 1..(i + 2) * n - 1];
        let left = &cur[i * n..(i + 1) * n - 2];
        let right = &cur[i * n + 2..(i + 1) * n];
        let dst = &mut row[1..n - 1];
        for ((((d, u), w), l), r) in dst.iter_mut().zip(up).zip(down).zip(left).zip(right) {
            *d = 0.25 * ((u + w) + (l + r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, THREADS};

    #[test]
    fn parallel_is_bitwise_serial() {
        for n in [1usize, 2, 3, 4, 7, 33, 64] {
            let mut reference = Jacobi::new(n);
            reference.run_serial(5);
            for t in THREADS {
                let mut j = pool(t).install(|| Jacobi::new(n));
                pool(t).install(|| j.run(5));
                assert_eq!(j.result(), reference.result(), "n={n} t={t}");
                // A second run starts again from the initial grid.
                pool(t).install(|| j.run(5));
                assert_eq!(j.result(), reference.result(), "rerun n={n} t={t}");
            }
        }
    }

    #[test]
    fn sweeps_relax_towards_the_mean_and_keep_the_boundary() {
        let n = 9;
        let mut j = Jacobi::new(n);
        j.run_serial(1);
        let g = j.result();
        // A point next to the hot top edge gets a quarter of it plus its other neighbours' share.
        let want = 0.25 * (boundary_value(n, 0, 4) + 0.0 + 0.0 + 0.0);
        assert_eq!(g[n + 4], want);
        for jj in 0..n {
            assert_eq!(g[jj], boundary_value(n, 0, jj));
            assert_eq!(g[(n - 1) * n + jj], boundary_value(n, n - 1, jj));
        }
        j.run_serial(0);
        assert!(j.result()[n + 1..2 * n - 1].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn counts() {
        assert_eq!(flops(4, 10), 4.0 * 4.0 * 10.0);
        assert_eq!(bytes(4, 10), 16.0 * 4.0 * 10.0);
        assert_eq!(flops(2, 10), 0.0);
    }
}

//! HPL-style dense solve `A·x = b`: blocked right-looking LU factorisation with partial pivoting,
//! the trailing update through the tuned DGEMM, then back substitution; checked with HPL's scaled
//! residual. The distributed twin (2-D block-cyclic over MPI ranks) is `crate::mpi::hpl`.
//!
//! **Algorithm.** Like HPL, the right-hand side rides along as column `n` of an `n × (n + 1)`
//! row-major matrix `[A | b]`, so the factorisation applies `L⁻¹` and the row swaps to `b` as it
//! goes and the solve is one back substitution with `U`. For each block column of width `nb`:
//!
//! ```text
//! panel:    factor A[k.., k..k+nb] (recursive: left half, TRSM + GEMM on the right half, right half;
//!           at 16 columns or fewer, column by column: pivot search, row swap, scale, rank-1 update)
//!           every row swap exchanges whole rows, so it reaches L's columns on the left, the trailing
//!           matrix and b at once (LAPACK's dlaswp on both sides)
//! U row:    A[k..k+nb, k+nb..] = L₁₁⁻¹ · A[k..k+nb, k+nb..]   (unit lower TRSM, column chunks in parallel)
//! update:   A[k+nb.., k+nb..] −= L₂₁ · U₁₂                    (tuned DGEMM, `Workspace::update`)
//! ```
//!
//! **Work** as HPL counts it: **`2/3·n³ + 3/2·n²` flops** ([`flops`]), whatever the pivoting does.
//! **Bytes** ([`bytes`]) are an analytic model of the blocked algorithm's memory traffic, not a
//! measurement: each of the ⌈n / nb⌉ block steps reads and writes the remaining `m × (m + 1)`
//! trailing matrix once (16 bytes per element), `Σ 16·m·(m + 1)` over `m = n, n − nb, …` (about
//! `16n³ / (3·nb)`), which gives the arithmetic intensity `≈ nb / 8` flops per byte that a roofline
//! plot needs.
//!
//! **Check** (HPL's): with ε = 2⁻⁵³ (LAPACK's `dlamch('e')`, HPL's `HPL_dlamch(HPL_MACH_EPS)`),
//! `‖A·x − b‖∞ / (ε · (‖A‖∞ · ‖x‖∞ + ‖b‖∞) · n)` must be below 16 ([`THRESHOLD`]). A and b are
//! regenerated from their seed for the check, as HPL does, so it needs no copy of the matrix.
//!
//! **Matrix**: entries uniform in [−0.5, 0.5) from a counter-based hash of `(seed, i, j)` (HPL's
//! generator draws from the same interval), so any thread or rank makes any entry.
//!
//! References: J. J. Dongarra, P. Luszczek and A. Petitet, "The LINPACK Benchmark: past, present
//! and future", Concurrency and Computation 15(9), 2003; A. Petitet, R. C. Whaley, J. Dongarra and
//! A. Cleary, HPL 2.3 (netlib.org/benchmark/hpl, `HPL_pdtest.c` for the residual); F. G. Gustavson,
//! "Recursion leads to automatic variable blocking for dense linear-algebra algorithms", IBM J. Res.
//! Dev. 41(6), 1997 (the recursive panel); G. H. Golub and C. F. Van Loan, *Matrix Computations*,
//! 4th ed., §3.4.

use rayon::prelude::*;

use crate::gemm::Workspace;

/// HPL's pass mark for the scaled residual.
pub const THRESHOLD: f64 = 16.0;

/// HPL's ε: the unit roundoff 2⁻⁵³ (half of `f64::EPSILON`).
pub const EPS: f64 = f64::EPSILON / 2.0;

/// Panels this narrow or narrower are factored column by column.
const BASE: usize = 16;

/// Columns of the U row that one task of the parallel TRSM updates.
const TRSM_CHUNK: usize = 256;

/// Floating point operations of a solve of order `n`, as HPL counts them: `2/3·n³ + 3/2·n²`.
pub fn flops(n: usize) -> f64 {
    let n = n as f64;
    2.0 / 3.0 * n * n * n + 1.5 * n * n
}

/// Modelled memory traffic of the blocked factorisation (see the module documentation):
/// `Σ 16·m·(m + 1)` over the trailing orders `m = n, n − nb, n − 2·nb, …`.
pub fn bytes(n: usize, nb: usize) -> f64 {
    let nb = nb.max(1);
    (0..n)
        .step_by(nb)
        .map(|k| {
            let m = (n - k) as f64;
            16.0 * m * (m + 1.0)
        })
        .sum()
}

/// Entry `(i, j)` of the seeded `n × (n + 1)` matrix `[A | b]` (column `n` is b): uniform in
/// [−0.5, 0.5).
pub fn entry(seed: u64, n: usize, i: usize, j: usize) -> f64 {
    let index = (i as u64).wrapping_mul(n as u64 + 1).wrapping_add(j as u64);
    let z = crate::mix64(seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (z >> 11) as f64 * (1.0 / (1u64 << 53) as f64) - 0.5
}

/// HPL's check of a solution `x` of the seeded system of order `n`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Residual {
    /// `‖A·x − b‖∞ / (ε · (‖A‖∞ · ‖x‖∞ + ‖b‖∞) · n)`; NaN when x holds a NaN.
    pub scaled: f64,
    /// `‖A·x − b‖∞`.
    pub norm_r: f64,
    /// `‖A‖∞`, the largest row sum of |A|.
    pub norm_a: f64,
    /// `‖x‖∞`.
    pub norm_x: f64,
    /// `‖b‖∞`.
    pub norm_b: f64,
}

impl Residual {
    /// Combine the norms into HPL's scaled residual.
    pub fn new(n: usize, norm_r: f64, norm_a: f64, norm_x: f64, norm_b: f64) -> Residual {
        let scaled = norm_r / (EPS * (norm_a * norm_x + norm_b) * n as f64);
        Residual {
            scaled,
            norm_r,
            norm_a,
            norm_x,
            norm_b,
        }
    }

    /// `Ok` when the scaled residual is below [`THRESHOLD`] (a NaN is not), else a message that
    /// names the figures, as HPL prints them.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.scaled < THRESHOLD {
            Ok(())
        } else {
            Err(format!(
                "{what}: scaled residual ‖Ax−b‖∞/(ε(‖A‖∞‖x‖∞+‖b‖∞)n) = {:.4e} is not below {THRESHOLD} \
                 (‖Ax−b‖∞ = {:.3e}, ‖A‖∞ = {:.3e}, ‖x‖∞ = {:.3e}, ‖b‖∞ = {:.3e}): the solution is wrong",
                self.scaled, self.norm_r, self.norm_a, self.norm_x, self.norm_b
            ))
        }
    }
}

/// The residual norms of `x` against the seeded system, rows `rows` only (the caller combines
/// them: max of `‖r‖`, `‖A‖`, `‖b‖` over row blocks). Returns `(‖r‖∞, ‖A‖∞, ‖b‖∞)` over those rows.
pub fn residual_rows(
    seed: u64,
    n: usize,
    rows: std::ops::Range<usize>,
    x: &[f64],
) -> (f64, f64, f64) {
    rows.into_par_iter()
        .with_min_len(16)
        .map(|i| {
            let (mut r, mut s) = (0.0f64, 0.0f64);
            for (j, &xj) in x.iter().enumerate().take(n) {
                let a = entry(seed, n, i, j);
                r += a * xj;
                s += a.abs();
            }
            let b = entry(seed, n, i, n);
            ((r - b).abs(), s, b.abs())
        })
        // NaN-propagating maxima: a NaN row must not vanish in `f64::max`.
        .reduce(
            || (0.0, 0.0, 0.0),
            |p, q| (nan_max(p.0, q.0), p.1.max(q.1), p.2.max(q.2)),
        )
}

/// `max` that keeps a NaN.
pub(crate) fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// A raw pointer that rayon tasks may share, for in-place updates of disjoint column ranges of the
/// same rows (row-major storage cannot hand out disjoint column slices safely).
#[derive(Clone, Copy)]
struct SharedPtr(*mut f64);
// SAFETY: every use writes disjoint elements from different tasks (see `trsm_unit_lower`).
unsafe impl Send for SharedPtr {}
unsafe impl Sync for SharedPtr {}

/// `B = L⁻¹·B` for the unit lower triangular `L = p[r0..r0+w, lc..lc+w]` and
/// `B = p[r0..r0+w, cols]`, all in the row-major `p` with row stride `ld`; column chunks in
/// parallel. L's columns must lie outside `cols`.
pub(crate) fn trsm_unit_lower(
    p: &mut [f64],
    ld: usize,
    r0: usize,
    w: usize,
    lc: usize,
    cols: std::ops::Range<usize>,
) {
    if w < 2 || cols.is_empty() {
        return;
    }
    assert!(
        lc + w <= cols.start || cols.end <= lc,
        "L overlaps the columns it updates"
    );
    assert!((r0 + w - 1) * ld + cols.end.max(lc + w) <= p.len());
    let base = SharedPtr(p.as_mut_ptr());
    let chunks = cols.len().div_ceil(TRSM_CHUNK);
    (0..chunks).into_par_iter().for_each(|c| {
        let ptr = base;
        let cs = cols.start + c * TRSM_CHUNK;
        let len = TRSM_CHUNK.min(cols.end - cs);
        for i in 1..w {
            for q in 0..i {
                // SAFETY: rows r0+i and r0+q differ; each task owns columns cs..cs+len of every
                // row, which no other task touches; L's columns are outside every task's columns;
                // all indices are inside `p` (asserted above).
                unsafe {
                    let l = *ptr.0.add((r0 + i) * ld + lc + q);
                    if l == 0.0 {
                        continue;
                    }
                    let src = std::slice::from_raw_parts(ptr.0.add((r0 + q) * ld + cs), len);
                    let dst = std::slice::from_raw_parts_mut(ptr.0.add((r0 + i) * ld + cs), len);
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d -= l * s;
                    }
                }
            }
        }
    });
}

/// `B = L⁻¹·B` for the unit lower triangular `w × w` L (row stride `ldl`, its strictly lower part
/// read) and the separate `w`-row B (row stride and width `ldb`); column chunks in parallel.
pub fn trsm_unit_lower_separate(l: &[f64], ldl: usize, w: usize, b: &mut [f64], ldb: usize) {
    if w < 2 || ldb == 0 {
        return;
    }
    assert!(l.len() >= (w - 1) * ldl + w && b.len() >= w * ldb);
    let base = SharedPtr(b.as_mut_ptr());
    let chunks = ldb.div_ceil(TRSM_CHUNK);
    (0..chunks).into_par_iter().for_each(|c| {
        let ptr = base;
        let cs = c * TRSM_CHUNK;
        let len = TRSM_CHUNK.min(ldb - cs);
        for i in 1..w {
            for q in 0..i {
                let f = l[i * ldl + q];
                if f == 0.0 {
                    continue;
                }
                // SAFETY: rows i and q differ; each task owns columns cs..cs+len of every row of
                // B, which no other task touches; indices are inside `b` (asserted above).
                unsafe {
                    let src = std::slice::from_raw_parts(ptr.0.add(q * ldb + cs), len);
                    let dst = std::slice::from_raw_parts_mut(ptr.0.add(i * ldb + cs), len);
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d -= f * s;
                    }
                }
            }
        }
    });
}

/// `C −= L·U` with `L = p[r1..m, lc..lc+k]`, `U = p[r0..r0+k, cols]`, `C = p[r1..m, cols]`
/// (`r1 ≥ r0 + k`), through the tuned DGEMM: L is copied, negated, into `lbuf` (contiguous).
#[allow(clippy::too_many_arguments)]
pub(crate) fn update_below(
    p: &mut [f64],
    ld: usize,
    m: usize,
    r0: usize,
    r1: usize,
    k: usize,
    lc: usize,
    cols: std::ops::Range<usize>,
    ws: &mut Workspace,
    lbuf: &mut Vec<f64>,
) {
    let rows = m.saturating_sub(r1);
    if rows == 0 || k == 0 || cols.is_empty() {
        return;
    }
    if lbuf.len() < rows * k {
        lbuf.resize(rows * k, 0.0);
    }
    lbuf[..rows * k]
        .par_chunks_mut(k)
        .enumerate()
        .with_min_len(64)
        .for_each(|(i, dst)| {
            let src = &p[(r1 + i) * ld + lc..][..k];
            dst.iter_mut().zip(src).for_each(|(d, s)| *d = -s);
        });
    let (top, bottom) = p.split_at_mut(r1 * ld);
    ws.update(
        rows,
        cols.len(),
        k,
        &lbuf[..rows * k],
        k,
        &top[r0 * ld + cols.start..],
        ld,
        &mut bottom[cols.start..],
        ld,
    );
}

/// Factor the panel `p[d..m, c0+d .. c0+d+w]` of the row-major `m`-row block `p` (row stride `ld`)
/// in place, with partial pivoting: relative row `i` holds the diagonal entry of column `c0 + i`.
/// Row swaps exchange whole rows of `p` (all `ld` columns); `ipiv[i]` is the row swapped with row
/// `i`, for `i` in `d..d+w`. Recursive above `BASE` (16) columns (Gustavson), so most of the panel's
/// flops go through the tuned DGEMM.
#[allow(clippy::too_many_arguments)]
pub fn factor_panel(
    p: &mut [f64],
    ld: usize,
    m: usize,
    c0: usize,
    d: usize,
    w: usize,
    ipiv: &mut [usize],
    ws: &mut Workspace,
    lbuf: &mut Vec<f64>,
) {
    let w = w.min(m.saturating_sub(d));
    if w == 0 {
        return;
    }
    if w <= BASE {
        panel_base(p, ld, m, c0, d, w, ipiv);
        return;
    }
    let w1 = (w / 2).next_multiple_of(8).min(w - 1);
    factor_panel(p, ld, m, c0, d, w1, ipiv, ws, lbuf);
    let right = c0 + d + w1..c0 + d + w;
    trsm_unit_lower(p, ld, d, w1, c0 + d, right.clone());
    update_below(p, ld, m, d, d + w1, w1, c0 + d, right, ws, lbuf);
    factor_panel(p, ld, m, c0, d + w1, w - w1, ipiv, ws, lbuf);
}

/// Column-by-column factorisation of a narrow panel (see [`factor_panel`]).
fn panel_base(
    p: &mut [f64],
    ld: usize,
    m: usize,
    c0: usize,
    d: usize,
    w: usize,
    ipiv: &mut [usize],
) {
    let end = c0 + d + w;
    let mut urow = [0.0f64; BASE];
    for j in d..d + w {
        let col = c0 + j;
        let mut best = j;
        let mut big = p[j * ld + col].abs();
        for i in j + 1..m {
            let v = p[i * ld + col].abs();
            if v > big {
                big = v;
                best = i;
            }
        }
        ipiv[j] = best;
        if best != j {
            let (top, rest) = p.split_at_mut(best * ld);
            top[j * ld..(j + 1) * ld].swap_with_slice(&mut rest[..ld]);
        }
        let piv = p[j * ld + col];
        if piv == 0.0 {
            // A singular panel: leave it; the zero pivot turns the solution into inf/NaN and the
            // residual check fails the repetition.
            continue;
        }
        let inv = 1.0 / piv;
        let width = end - col - 1;
        urow[..width].copy_from_slice(&p[j * ld + col + 1..j * ld + end]);
        let u = &urow[..width];
        let below = m - j - 1;
        let rows = &mut p[(j + 1) * ld..];
        let work = |row: &mut [f64]| {
            let l = row[col] * inv;
            row[col] = l;
            for (x, &uv) in row[col + 1..end].iter_mut().zip(u) {
                *x -= l * uv;
            }
        };
        if below * (width + 1) < 1 << 14 {
            rows.chunks_mut(ld).take(below).for_each(work);
        } else {
            rows[..below * ld]
                .par_chunks_mut(ld)
                .with_min_len(256)
                .for_each(work);
        }
    }
}

/// Back substitution `x = U⁻¹·y` for the factored `n × (n + 1)` row-major `[U | y]` (row stride
/// `ld`).
pub fn back_substitute(a: &[f64], ld: usize, n: usize, x: &mut [f64]) {
    for i in (0..n).rev() {
        let row = &a[i * ld..];
        let s: f64 = row[i + 1..n]
            .iter()
            .zip(&x[i + 1..n])
            .map(|(u, x)| u * x)
            .sum();
        x[i] = (row[n] - s) / row[i];
    }
}

/// One HPL problem on the current rayon pool: the seeded `[A | b]`, its factorisation and the
/// solution. `new` allocates and fills (untimed); [`Lu::run`] is the timed solve; [`Lu::check`]
/// verifies it and refills the matrix for the next run.
pub struct Lu {
    n: usize,
    nb: usize,
    seed: u64,
    a: Vec<f64>,
    x: Vec<f64>,
    ipiv: Vec<usize>,
    ws: Workspace,
    lbuf: Vec<f64>,
    /// A run has overwritten the matrix since the last refill.
    dirty: bool,
}

impl Lu {
    /// Allocate `[A | b]` of order `n` (at least 1) with block size `nb` (at least 1) and fill it
    /// from `seed`, in the current pool (first touch by the threads that will update it).
    ///
    /// ```
    /// use scalelab_kernels::hpl::{self, Lu};
    ///
    /// let (n, seed) = (100, 7);
    /// let mut lu = Lu::new(n, 16, seed)?;
    /// lu.run(); // factor and solve: the timed region
    /// let x = lu.solution().to_vec();
    /// let residual = lu.check()?; // HPL's scaled residual, then the matrix is refilled
    /// assert!(residual.scaled < 16.0, "{residual:?}");
    /// assert!(lu.solution().iter().all(|v| v.is_nan()), "a check wipes x until the next run");
    /// // The blocked solve agrees with the unblocked textbook elimination.
    /// let reference = hpl::solve_serial(n, seed);
    /// assert!(x.iter().zip(&reference).all(|(x, r)| (x - r).abs() < 1e-9 * (1.0 + r.abs())));
    /// assert!(Lu::new(0, 16, seed).is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn new(n: usize, nb: usize, seed: u64) -> Result<Lu, String> {
        if n == 0 {
            return Err("the matrix order n must be at least 1".into());
        }
        if nb == 0 {
            return Err("the block size nb must be at least 1".into());
        }
        let ld = n + 1;
        let mut ws = Workspace::new();
        ws.reserve_mnk(n, ld, nb.min(n));
        let mut lu = Lu {
            n,
            nb,
            seed,
            a: vec![0.0; n * ld],
            x: vec![0.0; n],
            ipiv: vec![0; n],
            ws,
            lbuf: vec![0.0; n * nb.min(n)],
            dirty: true,
        };
        lu.refill();
        Ok(lu)
    }

    /// The matrix order.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Regenerate `[A | b]` from the seed (after a run overwrote it with its factors).
    pub fn refill(&mut self) {
        let (n, seed) = (self.n, self.seed);
        self.a
            .par_chunks_mut(n + 1)
            .enumerate()
            .for_each(|(i, row)| {
                row.iter_mut()
                    .enumerate()
                    .for_each(|(j, v)| *v = entry(seed, n, i, j))
            });
        self.x.fill(f64::NAN);
        self.dirty = false;
    }

    /// Refill the matrix if a run has overwritten it since the last refill (what the point
    /// runner calls, untimed, before every run: warm-ups are not checked, so they do not refill).
    pub fn reset(&mut self) {
        if self.dirty {
            self.refill();
        }
    }

    /// Factor and solve (the timed region: no allocation). Overwrites the matrix with its factors:
    /// [`Lu::reset`] (or [`Lu::check`]) restores it.
    pub fn run(&mut self) {
        self.dirty = true;
        let (n, nb, ld) = (self.n, self.nb, self.n + 1);
        for k in (0..n).step_by(nb) {
            let kb = nb.min(n - k);
            factor_panel(
                &mut self.a[k * ld..],
                ld,
                n - k,
                k,
                0,
                kb,
                &mut self.ipiv[k..k + kb],
                &mut self.ws,
                &mut self.lbuf,
            );
            trsm_unit_lower(&mut self.a, ld, k, kb, k, k + kb..ld);
            update_below(
                &mut self.a,
                ld,
                n,
                k,
                k + kb,
                kb,
                k,
                k + kb..ld,
                &mut self.ws,
                &mut self.lbuf,
            );
        }
        back_substitute(&self.a, ld, n, &mut self.x);
    }

    /// The solution of the last run (NaN before the first, and after [`Lu::check`]).
    pub fn solution(&self) -> &[f64] {
        &self.x
    }

    /// HPL's residual of the last run's solution.
    pub fn residual(&self) -> Residual {
        let (r, a, b) = residual_rows(self.seed, self.n, 0..self.n, &self.x);
        let norm_x = self.x.iter().fold(0.0, |m: f64, v| nan_max(m, v.abs()));
        Residual::new(self.n, r, a, norm_x, b)
    }

    /// Check the last run with HPL's scaled residual, then refill the matrix for the next run
    /// (so a run that skips its work fails: the solution is NaN until a run writes it).
    pub fn check(&mut self) -> Result<Residual, String> {
        let res = self.residual();
        self.refill();
        res.check(&format!("hpl n={} nb={}", self.n, self.nb))
            .map(|()| res)
    }

    /// Break the last run's factorisation on purpose (one entry of U in the middle of the matrix
    /// changed by 1%) and solve again with it: what a wrong factorisation looks like to
    /// [`Lu::check`]. For tests of the check only.
    #[doc(hidden)]
    pub fn break_factorization(&mut self) {
        let (n, ld) = (self.n, self.n + 1);
        let i = n / 2;
        let j = (i + 1).min(n - 1);
        self.a[i * ld + j] = self.a[i * ld + j] * 1.01 + 0.01;
        back_substitute(&self.a, ld, n, &mut self.x);
    }
}

/// The textbook serial reference: unblocked Gaussian elimination with partial pivoting on the
/// seeded `[A | b]`, then back substitution. Returns x.
pub fn solve_serial(n: usize, seed: u64) -> Vec<f64> {
    let ld = n + 1;
    let mut a: Vec<f64> = (0..n * ld)
        .map(|k| entry(seed, n, k / ld, k % ld))
        .collect();
    for j in 0..n {
        let p = (j..n)
            .max_by(|&x, &y| a[x * ld + j].abs().total_cmp(&a[y * ld + j].abs()))
            .unwrap_or(j);
        if p != j {
            for c in 0..ld {
                a.swap(j * ld + c, p * ld + c);
            }
        }
        for i in j + 1..n {
            let l = a[i * ld + j] / a[j * ld + j];
            a[i * ld + j] = l;
            for c in j + 1..ld {
                a[i * ld + c] -= l * a[j * ld + c];
            }
        }
    }
    let mut x = vec![0.0; n];
    back_substitute(&a, ld, n, &mut x);
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, THREADS};

    #[test]
    fn counts_follow_hpl() {
        assert_eq!(flops(3), 2.0 / 3.0 * 27.0 + 1.5 * 9.0);
        assert_eq!(flops(1000), 2.0 / 3.0 * 1e9 + 1.5e6);
        // Two block steps of orders 4 and 2.
        assert_eq!(bytes(4, 2), 16.0 * (4.0 * 5.0 + 2.0 * 3.0));
        assert_eq!(bytes(0, 8), 0.0);
    }

    #[test]
    fn entries_are_seeded_and_in_range() {
        assert_eq!(entry(1, 10, 3, 4), entry(1, 10, 3, 4));
        assert_ne!(entry(1, 10, 3, 4), entry(2, 10, 3, 4));
        for i in 0..50 {
            let v = entry(7, 50, i, i);
            assert!((-0.5..0.5).contains(&v), "{v}");
        }
    }

    #[test]
    fn blocked_lu_matches_the_serial_reference_and_passes_the_check() {
        // Sizes around and across the base panel, block and micro-tile edges.
        for (n, nb) in [
            (1usize, 1usize),
            (2, 1),
            (5, 2),
            (17, 4),
            (40, 16),
            (67, 32),
            (130, 48),
            (200, 64),
        ] {
            let want = solve_serial(n, 3);
            for t in THREADS {
                pool(t).install(|| {
                    let mut lu = Lu::new(n, nb, 3).unwrap();
                    for rep in 0..2 {
                        lu.run();
                        let x = lu.solution().to_vec();
                        let res = lu
                            .check()
                            .unwrap_or_else(|e| panic!("n={n} nb={nb} t={t}: {e}"));
                        assert!(res.scaled < THRESHOLD);
                        for (i, (g, w)) in x.iter().zip(&want).enumerate() {
                            assert!(
                                (g - w).abs() <= 1e-9 * (1.0 + w.abs()),
                                "n={n} nb={nb} t={t} rep={rep}: x[{i}] = {g}, serial {w}"
                            );
                        }
                    }
                });
            }
        }
    }

    #[test]
    fn a_broken_factorization_fails_the_check() {
        let mut lu = Lu::new(120, 32, 5).unwrap();
        lu.run();
        lu.break_factorization();
        let err = lu.check().unwrap_err();
        assert!(err.starts_with("hpl n=120 nb=32: scaled residual"), "{err}");
        assert!(err.contains("is not below 16"), "{err}");
        // Without a run the solution is NaN, which fails too.
        let err = lu.check().unwrap_err();
        assert!(err.contains("NaN"), "{err}");
    }

    #[test]
    fn elimination_without_pivoting_fails_the_check() {
        // The unpivoted elimination of a matrix with a tiny leading pivot: what forgetting the
        // pivot search does. The check must catch it.
        let n = 6;
        let ld = n + 1;
        let mut a: Vec<f64> = (0..n * ld).map(|k| entry(9, n, k / ld, k % ld)).collect();
        let orig = a.clone();
        a[0] = 1e-15;
        let mut a0 = orig.clone();
        a0[0] = 1e-15;
        for j in 0..n {
            for i in j + 1..n {
                let l = a[i * ld + j] / a[j * ld + j];
                for c in j..ld {
                    a[i * ld + c] -= l * a[j * ld + c];
                }
            }
        }
        let mut x = vec![0.0; n];
        back_substitute(&a, ld, n, &mut x);
        let (mut r, mut na, mut nb) = (0.0f64, 0.0f64, 0.0f64);
        for i in 0..n {
            let row = &a0[i * ld..(i + 1) * ld];
            let ax: f64 = row[..n].iter().zip(&x).map(|(a, x)| a * x).sum();
            r = r.max((ax - row[n]).abs());
            na = na.max(row[..n].iter().map(|v| v.abs()).sum());
            nb = nb.max(row[n].abs());
        }
        let nx = x.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let res = Residual::new(n, r, na, nx, nb);
        assert!(res.check("no pivoting").is_err(), "{res:?}");
    }

    #[test]
    fn a_singular_matrix_fails_the_check_instead_of_panicking() {
        let n = 20;
        let mut lu = Lu::new(n, 8, 1).unwrap();
        // Two equal rows make A singular.
        let ld = n + 1;
        let row: Vec<f64> = lu.a[..ld].to_vec();
        lu.a[3 * ld..4 * ld].copy_from_slice(&row);
        lu.run();
        let res = lu.residual();
        assert!(res.check("singular").is_err(), "{res:?}");
    }

    #[test]
    fn bad_shapes_are_refused() {
        assert_eq!(
            Lu::new(0, 4, 1).err().unwrap(),
            "the matrix order n must be at least 1"
        );
        assert_eq!(
            Lu::new(4, 0, 1).err().unwrap(),
            "the block size nb must be at least 1"
        );
    }
}

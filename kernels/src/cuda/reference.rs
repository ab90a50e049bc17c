//! Deterministic inputs of the GPU kernels and the serial CPU references their results are
//! checked against after every repetition.
//!
//! Inputs are chosen so that every correct kernel gives the **exact** answer, whatever its order
//! of operations, and so the checks compare bit for bit (no tolerance to hide a small mistake):
//!
//! * element-wise: integers below 2¹⁰ drawn from a hash of the index (`mix64`), so `q·c + b`
//!   is exact in f32 and f64 and a kernel that reads a neighbour's element is caught;
//! * reduction: integers 0..=15 summed into 64 bits: exact in any order;
//! * transpose: distinct-looking integers below 2²³, exact in f32;
//! * matrix products: multiples of 1/8 in [−1, 1], exact in bf16, TF32, f32 and f64, whose
//!   products are multiples of 1/64; every partial sum of a row of C stays below 2¹⁸ in
//!   magnitude for n < 2¹⁸, so it is exact in f32 accumulation (24-bit significand) in any
//!   order. C is checked with Freivalds' method: for random sign vectors x (entries ±1),
//!   `C·x` must equal `A·(B·x)`, both computed in f64, where every value is a multiple of 1/64
//!   below 2³⁶ and so exact. A wrong element of C changes `(C·x)_i` by at least 1/64; two
//!   vectors make a cancelling pair of errors vanishingly unlikely. The reference `A·(B·x)` is
//!   computed once (O(n²)), each check costs one pass over C per vector.

use rayon::prelude::*;

use crate::mix64;

/// The scalar of STREAM scale and triad.
pub const STREAM_Q: f64 = 3.0;
/// The scalar of SAXPY.
pub const SAXPY_A: f32 = 3.0;

/// A hash of `i` in a stream of its own (`salt`), reduced to `0..modulus`.
fn hashed(salt: u64, i: usize, modulus: u64) -> u64 {
    mix64(mix64(salt) ^ i as u64) % modulus
}

/// STREAM's input `a[i]` (1..=1024).
pub fn stream_a(i: usize) -> f64 {
    1.0 + hashed(1, i, 1024) as f64
}
/// STREAM's input `b[i]`.
pub fn stream_b(i: usize) -> f64 {
    1.0 + hashed(2, i, 1024) as f64
}
/// STREAM's input `c[i]`.
pub fn stream_c(i: usize) -> f64 {
    1.0 + hashed(3, i, 1024) as f64
}
/// SAXPY's input `x[i]`.
pub fn saxpy_x(i: usize) -> f32 {
    1.0 + hashed(4, i, 1024) as f32
}
/// SAXPY's input `y[i]`.
pub fn saxpy_y(i: usize) -> f32 {
    1.0 + hashed(5, i, 1024) as f32
}

/// The exact output element `i` of an element-wise operation on the inputs above (never 0, so
/// an output zeroed before a run and left untouched is caught).
pub fn elementwise_expected(op: super::Elementwise, i: usize) -> f64 {
    use super::Elementwise::*;
    match op {
        Saxpy => f64::from(SAXPY_A * saxpy_x(i) + saxpy_y(i)),
        Copy | Memcpy => stream_a(i),
        Scale => STREAM_Q * stream_c(i),
        Add => stream_a(i) + stream_b(i),
        Triad => stream_b(i) + STREAM_Q * stream_c(i),
    }
}

/// How many elements of `got` differ from `want(i)` (bit for bit, after conversion to f64), and
/// the first of them as `(index, got, want)`. In parallel over the current rayon pool.
pub fn mismatches<T: Copy + Into<f64> + Sync>(
    got: &[T],
    want: impl Fn(usize) -> f64 + Sync,
) -> (usize, Option<(usize, f64, f64)>) {
    let bad = |i: usize| {
        let g: f64 = got[i].into();
        let w = want(i);
        (g.to_bits() != w.to_bits()).then_some((i, g, w))
    };
    let count = (0..got.len())
        .into_par_iter()
        .filter(|&i| bad(i).is_some())
        .count();
    let first = if count > 0 {
        (0..got.len()).find_map(bad)
    } else {
        None
    };
    (count, first)
}

/// Element `i` of the reduction's input: 0..=15.
pub fn reduce_input(i: usize) -> u32 {
    hashed(6, i, 16) as u32
}

/// The serial reference: the sum of the first `n` inputs, one by one.
pub fn reduce_serial(n: usize) -> u64 {
    reduce_serial_range(0..n)
}

/// The serial sum of the inputs with indices in `range` (one rank's share).
pub fn reduce_serial_range(range: std::ops::Range<usize>) -> u64 {
    let mut sum = 0u64;
    for i in range {
        sum += u64::from(reduce_input(i));
    }
    sum
}

/// Element `i` (row-major) of the transpose's input: an integer in 1..=2²³, exact in f32.
pub fn transpose_input(i: usize) -> f32 {
    1.0 + hashed(7, i, 1 << 23) as f32
}

/// Check `out` (`cols × rows`) against the serial transpose of `input` (`rows × cols`): the
/// number of wrong elements and the first as `(row of out, column of out, got, want)`.
pub fn transpose_mismatches(
    input: &[f32],
    out: &[f32],
    rows: usize,
    cols: usize,
) -> (usize, Option<(usize, usize, f32, f32)>) {
    let (count, first) = mismatches(out, |j| f64::from(input[(j % rows) * cols + j / rows]));
    (
        count,
        first.map(|(j, g, w)| (j / rows, j % rows, g as f32, w as f32)),
    )
}

/// Element `i` (row-major) of matrix `which` (0 = A, 1 = B) of the products: a multiple of 1/8
/// in [−1, 1].
pub fn gemm_input(which: u64, i: usize) -> f32 {
    (hashed(8 + which, i, 17) as f32 - 8.0) / 8.0
}

/// An `n × n` input matrix, row-major.
pub fn gemm_matrix(which: u64, n: usize) -> Vec<f32> {
    gemm_rows(which, 0..n, n)
}

/// The rows `rows` of an `n × n` input matrix (one rank's band), row-major.
pub fn gemm_rows(which: u64, rows: std::ops::Range<usize>, n: usize) -> Vec<f32> {
    (rows.start * n..rows.end * n)
        .into_par_iter()
        .map(|i| gemm_input(which, i))
        .collect()
}

/// `M·x` in f64 for a row-major `rows × cols` matrix, one row per task, each row summed in order.
pub fn matvec<T: Copy + Into<f64> + Sync>(
    m: &[T],
    x: &[f64],
    rows: usize,
    cols: usize,
) -> Vec<f64> {
    (0..rows)
        .into_par_iter()
        .map(|r| {
            m[r * cols..(r + 1) * cols]
                .iter()
                .zip(x)
                .map(|(&a, &b)| a.into() * b)
                .sum()
        })
        .collect()
}

/// Freivalds' check of `C = A·B` for an `n × n` B and a band of `rows` rows of A and C (all of
/// them for a whole product; see the module documentation).
pub struct Freivalds {
    rows: usize,
    n: usize,
    /// The sign vectors x.
    xs: Vec<Vec<f64>>,
    /// `A·(B·x)` for each x.
    want: Vec<Vec<f64>>,
}

impl Freivalds {
    /// Prepare the check of products of `a` (`rows × n`) and `b` (`n × n`), row-major: two
    /// vectors of random signs (seeded) and `A·(B·x)` for each.
    pub fn new(a: &[f32], b: &[f32], rows: usize, n: usize) -> Freivalds {
        let xs: Vec<Vec<f64>> = (0..2u64)
            .map(|v| {
                (0..n)
                    .map(|i| if hashed(20 + v, i, 2) == 0 { -1.0 } else { 1.0 })
                    .collect()
            })
            .collect();
        let want = xs
            .iter()
            .map(|x| matvec(a, &matvec(b, x, n, n), rows, n))
            .collect();
        Freivalds { rows, n, xs, want }
    }

    /// `Ok` when `C·x = A·(B·x)` exactly for every vector; otherwise how many rows differ and the
    /// first of them.
    pub fn check<T: Copy + Into<f64> + Sync>(&self, c: &[T]) -> Result<(), String> {
        for (x, want) in self.xs.iter().zip(&self.want) {
            let got = matvec(c, x, self.rows, self.n);
            let (bad, first) = mismatches(&got, |i| want[i]);
            if let Some((row, g, w)) = first {
                return Err(format!(
                    "Freivalds' check: {bad} of {} rows of C·x differ from A·(B·x) (exact for \
                     these inputs); first row {row}: {g} instead of {w}",
                    self.rows
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Elementwise;
    use super::*;

    #[test]
    fn elementwise_inputs_are_exact_nonzero_integers() {
        for i in 0..10_000 {
            for op in Elementwise::ALL {
                let v = elementwise_expected(op, i);
                assert!(v >= 1.0 && v == v.trunc() && v < 5000.0, "{op:?} {i} {v}");
            }
        }
        assert_eq!(
            elementwise_expected(Elementwise::Triad, 5),
            stream_b(5) + 3.0 * stream_c(5)
        );
    }

    #[test]
    fn mismatches_count_and_locate_errors() {
        let want = |i: usize| i as f64;
        let mut got: Vec<f64> = (0..100).map(|i| i as f64).collect();
        assert_eq!(mismatches(&got, want), (0, None));
        got[7] = 0.5;
        got[70] = f64::NAN;
        assert_eq!(mismatches(&got, want), (2, Some((7, 0.5, 7.0))));
    }

    #[test]
    fn reduction_reference_is_the_plain_sum() {
        let n = 100_003;
        let direct: u64 = (0..n).map(|i| u64::from(reduce_input(i))).sum();
        assert_eq!(reduce_serial(n), direct);
        assert!((0..1000).all(|i| reduce_input(i) < 16));
        // Roughly 7.5 per element on average: a skipped block of 256 elements changes the sum.
        assert!(direct > 6 * n as u64 && direct < 9 * n as u64);
    }

    #[test]
    fn transpose_check_finds_a_misplaced_element() {
        let (rows, cols) = (3, 5);
        let input: Vec<f32> = (0..rows * cols).map(transpose_input).collect();
        let mut out = vec![0f32; rows * cols];
        for r in 0..rows {
            for c in 0..cols {
                out[c * rows + r] = input[r * cols + c];
            }
        }
        assert_eq!(transpose_mismatches(&input, &out, rows, cols), (0, None));
        out.swap(1, 2);
        let (bad, first) = transpose_mismatches(&input, &out, rows, cols);
        assert_eq!(bad, 2);
        assert_eq!(first.unwrap().0, 0);
        assert_eq!(first.unwrap().1, 1);
    }

    /// The serial triple loop in f32, the reference Freivalds' check stands in for.
    fn sgemm_serial(a: &[f32], b: &[f32], n: usize) -> Vec<f32> {
        let mut c = vec![0f32; n * n];
        for i in 0..n {
            for k in 0..n {
                for j in 0..n {
                    c[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        c
    }

    #[test]
    fn gemm_inputs_make_every_order_exact() {
        let n = 96;
        let (a, b) = (gemm_matrix(0, n), gemm_matrix(1, n));
        assert!(a.iter().all(|v| (v * 8.0).fract() == 0.0 && v.abs() <= 1.0));
        let c = sgemm_serial(&a, &b, n);
        // Reverse k order in f64: the same values, because every partial sum is exact.
        for i in 0..n {
            for j in 0..n {
                let rev: f64 = (0..n)
                    .rev()
                    .map(|k| f64::from(a[i * n + k]) * f64::from(b[k * n + j]))
                    .sum();
                assert_eq!(f64::from(c[i * n + j]), rev);
            }
        }
        let check = Freivalds::new(&a, &b, n, n);
        check.check(&c).unwrap();
        let c64: Vec<f64> = c.iter().map(|&v| f64::from(v)).collect();
        check.check(&c64).unwrap();
    }

    #[test]
    fn a_band_of_rows_is_checked_on_its_own() {
        let n = 48;
        let (a, b) = (gemm_matrix(0, n), gemm_matrix(1, n));
        let c = sgemm_serial(&a, &b, n);
        let band = 16..40;
        let a_band = gemm_rows(0, band.clone(), n);
        assert_eq!(a_band, a[band.start * n..band.end * n]);
        let check = Freivalds::new(&a_band, &b, band.len(), n);
        check.check(&c[band.start * n..band.end * n]).unwrap();
        assert!(check.check(&c[0..band.len() * n]).is_err());
        assert_eq!(
            reduce_serial_range(0..10) + reduce_serial_range(10..25),
            reduce_serial(25)
        );
    }

    #[test]
    fn freivalds_catches_one_wrong_element_and_a_missing_k_step() {
        let n = 64;
        let (a, b) = (gemm_matrix(0, n), gemm_matrix(1, n));
        let check = Freivalds::new(&a, &b, n, n);
        let mut c = sgemm_serial(&a, &b, n);
        c[5 * n + 9] += 1.0 / 64.0;
        let err = check.check(&c).unwrap_err();
        assert!(
            err.starts_with("Freivalds' check: 1 of 64 rows of C·x differ from A·(B·x)"),
            "{err}"
        );
        assert!(err.contains("first row 5:"), "{err}");
        // A kernel that skips the last k (a classic tile-edge bug).
        let mut short = vec![0f32; n * n];
        for i in 0..n {
            for k in 0..n - 1 {
                for j in 0..n {
                    short[i * n + j] += a[i * n + k] * b[k * n + j];
                }
            }
        }
        assert!(check.check(&short).is_err());
    }
}

//! DGEMM `C = A·B` for square row-major `f64` matrices, in the variants a lecture on single-node
//! performance walks through, from the textbook triple loop to a packed, register-blocked kernel and
//! a library yardstick.
//!
//! | variant | idea | parallelised over |
//! | --- | --- | --- |
//! | [`Variant::Naive`] | `ijk` triple loop: the inner loop walks a column of B (stride n) | rows of C |
//! | [`Variant::Ikj`] | loop interchange: the inner loop streams a row of B and of C (stride 1) | rows of C |
//! | [`Variant::Blocked`] | `ikj` on cache-sized tiles, so B's tile is reused from cache | blocks of rows of C |
//! | [`Variant::Tuned`] | Goto/BLIS: packed panels of A and B and a register-blocked SIMD micro-kernel (AVX-512, AVX2 or portable) | the rows of C (the `ic` loop), sharing each packed B panel |
//! | [`Variant::Faer`] | `faer::linalg::matmul::matmul`, the library yardstick | faer's own split, in the current pool |
//!
//! Work: **2n³ flops** (n³ multiply-adds, an FMA counting 2) and **24n² bytes**, the compulsory
//! traffic of reading A and B and writing C once (8 bytes each per element); real traffic is higher
//! for every variant, and how much higher is what the variants differ in.
//!
//! All matrices are `n × n`, row-major, in slices of length `n²`; every function overwrites C.
//! The parallel variants use the current rayon pool; [`run`] dispatches on a [`Variant`].
//!
//! References: K. Goto and R. A. van de Geijn, "Anatomy of High-Performance Matrix Multiplication",
//! ACM TOMS 34(3), 2008; F. G. Van Zee and R. A. van de Geijn, "BLIS: A Framework for Rapidly
//! Instantiating BLAS Functionality", ACM TOMS 41(3), 2015; M. S. Lam, E. E. Rothberg and M. E. Wolf,
//! "The Cache Performance and Optimizations of Blocked Algorithms", ASPLOS 1991.

mod blocked;
mod faer_gemm;
mod ikj;
mod naive;
pub mod tuned;

pub use blocked::{blocked, blocked_serial, BLOCK};
pub use faer_gemm::faer;
pub use ikj::{ikj, ikj_serial};
pub use naive::{naive, naive_serial};
pub use tuned::{tuned, Isa, Workspace};

/// The implementation variants of [`run`], in lecture order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Variant {
    /// `ijk` triple loop ([`naive`]).
    Naive,
    /// Loop interchange `ikj` ([`ikj`]).
    Ikj,
    /// Cache-blocked `ikj` ([`blocked`]).
    Blocked,
    /// Packed Goto/BLIS algorithm with a SIMD micro-kernel ([`tuned()`]).
    Tuned,
    /// faer's matrix product ([`faer()`]).
    Faer,
}

impl Variant {
    /// All variants, in lecture order.
    pub const ALL: [Variant; 5] = [
        Variant::Naive,
        Variant::Ikj,
        Variant::Blocked,
        Variant::Tuned,
        Variant::Faer,
    ];

    /// The names of [`Variant::ALL`], in that order: the choices of the `gemm` workload's `variant`.
    pub const NAMES: [&'static str; Variant::ALL.len()] = names_of_all!(Variant);

    /// Lower-case name: "naive", "ikj", "blocked", "tuned", "faer".
    pub const fn name(self) -> &'static str {
        match self {
            Variant::Naive => "naive",
            Variant::Ikj => "ikj",
            Variant::Blocked => "blocked",
            Variant::Tuned => "tuned",
            Variant::Faer => "faer",
        }
    }

    /// The variant called `name`, if any.
    pub fn parse(name: &str) -> Option<Variant> {
        Variant::ALL.into_iter().find(|v| v.name() == name)
    }
}

/// Floating point operations of an `n × n` product: 2n³.
pub fn flops(n: usize) -> f64 {
    2.0 * (n as f64).powi(3)
}

/// Compulsory bytes of an `n × n` product: read A and B, write C, 8 bytes each per element: 24n².
pub fn bytes(n: usize) -> f64 {
    24.0 * (n as f64).powi(2)
}

/// `C = A·B` with `variant` in the current rayon pool, here every variant against the textbook
/// loop:
///
/// ```
/// use scalelab_kernels::gemm::{self, Variant, Workspace};
///
/// let n = 37; // not a multiple of any tile or block size, so the edge paths run too
/// let a: Vec<f64> = (0..n * n).map(|i| (i % 7) as f64 - 3.0).collect();
/// let b: Vec<f64> = (0..n * n).map(|i| (i % 5) as f64 * 0.5).collect();
/// let mut want = vec![0.0; n * n];
/// gemm::naive_serial(n, &a, &b, &mut want);
/// let mut ws = Workspace::new();
/// for variant in Variant::ALL {
///     let mut c = vec![f64::NAN; n * n];
///     gemm::run(variant, n, &a, &b, &mut c, &mut ws);
///     // Small integers and halves: every summation order gives the exact product.
///     assert_eq!(c, want, "{}", variant.name());
/// }
/// assert_eq!(gemm::flops(n), 2.0 * 37f64.powi(3));
/// ```
///
/// `ws` holds the packing buffers of
/// [`Variant::Tuned`] (the other variants need none); pass a [`Workspace`] made beforehand so the
/// call does not allocate. Panics if a slice is not `n²` long.
pub fn run(variant: Variant, n: usize, a: &[f64], b: &[f64], c: &mut [f64], ws: &mut Workspace) {
    match variant {
        Variant::Naive => naive(n, a, b, c),
        Variant::Ikj => ikj(n, a, b, c),
        Variant::Blocked => blocked(n, a, b, c),
        Variant::Tuned => ws.gemm(n, a, b, c),
        Variant::Faer => faer(n, a, b, c),
    }
}

fn check_dims(n: usize, a: &[f64], b: &[f64], c: &[f64]) {
    let nn = n * n;
    assert!(
        a.len() == nn && b.len() == nn && c.len() == nn,
        "gemm: A, B and C must be n × n = {nn} elements (got {}, {}, {})",
        a.len(),
        b.len(),
        c.len()
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::testing::{pool, random_vec, THREADS};

    /// Largest |x − y| relative to the error bound n·ε·(|A||B|)ᵢⱼ of a product.
    pub fn assert_close(n: usize, a: &[f64], b: &[f64], got: &[f64], want: &[f64], what: &str) {
        for i in 0..n {
            for j in 0..n {
                let mag: f64 = (0..n).map(|k| (a[i * n + k] * b[k * n + j]).abs()).sum();
                let tol = 2.0 * n as f64 * f64::EPSILON * mag + f64::MIN_POSITIVE;
                let (g, w) = (got[i * n + j], want[i * n + j]);
                assert!(
                    (g - w).abs() <= tol,
                    "{what}: C[{i}][{j}] = {g}, want {w} (tolerance {tol:e})"
                );
            }
        }
    }

    pub fn inputs(n: usize) -> (Vec<f64>, Vec<f64>) {
        (
            random_vec(n * n, 100 + n as u64),
            random_vec(n * n, 200 + n as u64),
        )
    }

    #[test]
    fn every_variant_matches_the_reference() {
        for n in [1usize, 2, 3, 7, 16, 33, 65] {
            let (a, b) = inputs(n);
            let mut want = vec![0.0; n * n];
            naive_serial(n, &a, &b, &mut want);
            for t in [1, 3] {
                pool(t).install(|| {
                    let mut ws = Workspace::new();
                    for v in Variant::ALL {
                        let mut c = vec![f64::NAN; n * n];
                        run(v, n, &a, &b, &mut c, &mut ws);
                        assert_close(n, &a, &b, &c, &want, &format!("{} n={n} t={t}", v.name()));
                    }
                });
            }
        }
    }

    #[test]
    fn loop_orders_are_bitwise_stable_across_threads() {
        // Larger than one block, with a k tile that is not a multiple of 4.
        let n = super::BLOCK + 7;
        let (a, b) = inputs(n);
        let mut s = vec![0.0; n * n];
        ikj_serial(n, &a, &b, &mut s);
        for t in THREADS {
            let mut c = vec![0.0; n * n];
            pool(t).install(|| ikj(n, &a, &b, &mut c));
            assert_eq!(c, s, "ikj t={t}");
            pool(t).install(|| blocked(n, &a, &b, &mut c));
            assert_eq!(c, s, "blocked = ikj, t={t}");
            pool(t).install(|| naive(n, &a, &b, &mut c));
            let mut r = vec![0.0; n * n];
            naive_serial(n, &a, &b, &mut r);
            assert_eq!(c, r, "naive t={t}");
        }
    }

    #[test]
    fn names_round_trip_and_counts() {
        for v in Variant::ALL {
            assert_eq!(Variant::parse(v.name()), Some(v));
        }
        assert_eq!(Variant::parse("ijk"), None);
        assert_eq!(flops(10), 2000.0);
        assert_eq!(bytes(10), 2400.0);
    }
}

//! Compute kernels measured by scalelab: each one a serial reference, a rayon variant and its
//! analytic work.
//!
//! Every kernel lives in its own module and follows the same shape:
//!
//! * a **serial reference** (`*_serial`), the plain loop a textbook would write, used by the tests
//!   and by scalelab's verification;
//! * a **rayon variant** that uses whatever pool it is called in: scalelab's point runner calls it
//!   inside `pool.install` with exactly `threads` workers, and these functions never touch the
//!   global pool themselves (`rayon::current_num_threads()` is the size of the current pool);
//! * analytic **`flops(..)` and `bytes(..)`** functions, counted the way the kernel's reference
//!   benchmark counts them (STREAM: reads + writes, no write-allocate);
//! * **deterministic inputs**, so a result can be checked exactly.
//!
//! | module | algorithm | flops | bytes |
//! | --- | --- | --- | --- |
//! | [`stream`] | STREAM copy, scale, add, triad | 0, 1, 1, 2 per element | 16, 16, 24, 24 per element |
//! | [`dot`] | dot product, deterministic reduction | 2 per element | 16 per element |
//! | [`gemm`] | DGEMM `C = A·B`: naive, ikj, blocked, tuned (Goto/BLIS), faer | 2n³ | 24n² (compulsory) |
//! | [`hpl`] | HPL: blocked right-looking LU with partial pivoting + back substitution | 2/3·n³ + 3/2·n² | modelled: Σ 16·m·(m+1) over block steps |
//! | [`stencil`] | 2-D 5-point Jacobi sweeps | 4 per interior point per sweep | 16 per interior point per sweep |
//! | [`pi`] | Monte Carlo π with counter-seeded generators | 3 per sample | 0 |
//! | `mpi` (feature `mpi`) | ping-pong, allreduce/bcast/allgather, halo-exchange stencil, SUMMA DGEMM, π over ranks | as the serial kernels | messages: see each kernel |
//!
//! Parallel reductions here (dot, π) are written so the result is bitwise identical at any thread
//! count: work is cut into chunks of a fixed size that does not depend on the pool, and the
//! partial results are combined in a fixed order.

#![warn(missing_docs)]
// Every unsafe operation (SIMD intrinsics, raw pointers, FFI) sits in its own `unsafe` block with
// its SAFETY comment, also inside `unsafe fn`s.
#![deny(unsafe_op_in_unsafe_fn)]

/// `[&str; N]`: the names of `$ty::ALL` in that order, computed at compile time from the enum's
/// `const fn name`. A kernel enum's `NAMES` is made this way, and a workload's choice parameter
/// (`variant`, `stores`) offers exactly it, so the choices and the enum cannot drift apart.
macro_rules! names_of_all {
    ($ty:ty) => {{
        const N: usize = <$ty>::ALL.len();
        let mut out = [""; N];
        let mut i = 0;
        while i < N {
            out[i] = <$ty>::ALL[i].name();
            i += 1;
        }
        out
    }};
}

pub mod cuda;
pub mod dot;
pub mod gemm;
pub mod hpl;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod pi;
pub mod stencil;
pub mod stream;

/// Length of one chunk when `n` items are split into one contiguous chunk per worker of the current
/// rayon pool, like OpenMP's `schedule(static)`: `ceil(n / threads)`, at least 1.
///
/// With `par_chunks_mut(static_chunk(n))` each worker gets (about) one contiguous block; the same
/// partition used to initialise an array and to compute on it keeps the "first touch" placement of
/// its pages near the thread that uses them on NUMA machines.
pub fn static_chunk(n: usize) -> usize {
    n.div_ceil(rayon::current_num_threads()).max(1)
}

/// SplitMix64's finaliser: a bijective hash of a 64-bit value, with which every kernel derives
/// seeds and reproducible inputs from indices (any thread or rank can generate any element).
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Compare `got` with the values `want(i)` bit for bit, in parallel over the current pool (with the
/// same static split as the kernels). Returns how many elements differ and the first of them as
/// `(index, got, want)`: what a verification message needs to say.
///
/// ```
/// let got = [1.0, 2.0, 3.5, 4.0, -0.0];
/// let want = [1.0, 2.0, 3.0, 4.0, 0.0];
/// let (bad, first) = scalelab_kernels::bitwise_mismatches(&got, |i| want[i]);
/// // 3.5 ≠ 3.0, and −0.0 ≠ 0.0 bit for bit.
/// assert_eq!((bad, first), (2, Some((2, 3.5, 3.0))));
/// ```
pub fn bitwise_mismatches(
    got: &[f64],
    want: impl Fn(usize) -> f64 + Sync,
) -> (usize, Option<(usize, f64, f64)>) {
    use rayon::prelude::*;
    let chunk = static_chunk(got.len());
    got.par_chunks(chunk)
        .enumerate()
        .map(|(k, part)| {
            let start = k * chunk;
            let mut bad = 0usize;
            let mut first = None;
            for (j, &v) in part.iter().enumerate() {
                let w = want(start + j);
                if v.to_bits() != w.to_bits() {
                    bad += 1;
                    first.get_or_insert((start + j, v, w));
                }
            }
            (bad, first)
        })
        // Chunks combine in order, so the first mismatch of the left part wins.
        .reduce(|| (0, None), |x, y| (x.0 + y.0, x.1.or(y.1)))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Helpers shared by the kernel tests: local pools and seeded inputs.

    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A local pool of `threads` workers (the tests never use the global pool).
    pub fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("test pool")
    }

    /// `n` uniform values in [-1, 1) from `seed`.
    pub fn random_vec(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        (0..n).map(|_| rng.random_range(-1.0..1.0)).collect()
    }

    /// Thread counts the tests try: 1, 2, 3 (odd) and 4 (more workers than the CI machine's cores).
    pub const THREADS: [usize; 4] = [1, 2, 3, 4];
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `NAMES[i]` names `ALL[i]`, and parses back to it (so the names are distinct).
    fn names_parse_back<T: Copy + PartialEq + std::fmt::Debug>(
        all: &[T],
        names: &[&str],
        parse: fn(&str) -> Option<T>,
    ) {
        assert_eq!(all.len(), names.len());
        for (v, name) in all.iter().zip(names) {
            assert_eq!(parse(name), Some(*v), "{name}");
        }
    }

    #[test]
    fn names_of_all_follow_all_in_order() {
        names_parse_back(
            &gemm::Variant::ALL,
            &gemm::Variant::NAMES,
            gemm::Variant::parse,
        );
        names_parse_back(
            &stream::Stores::ALL,
            &stream::Stores::NAMES,
            stream::Stores::parse,
        );
        names_parse_back(
            &cuda::Elementwise::ALL,
            &cuda::Elementwise::NAMES,
            cuda::Elementwise::parse,
        );
        names_parse_back(
            &cuda::Reduce::ALL,
            &cuda::Reduce::NAMES,
            cuda::Reduce::parse,
        );
        names_parse_back(
            &cuda::Transpose::ALL,
            &cuda::Transpose::NAMES,
            cuda::Transpose::parse,
        );
        names_parse_back(&cuda::Gemm::ALL, &cuda::Gemm::NAMES, cuda::Gemm::parse);
        names_parse_back(
            &cuda::Transfers::ALL,
            &cuda::Transfers::NAMES,
            cuda::Transfers::parse,
        );
        assert_eq!(cuda::Transfers::NAMES, ["resident", "timed"]);
        // The order is the one `scalelab list` shows.
        assert_eq!(
            gemm::Variant::NAMES,
            ["naive", "ikj", "blocked", "tuned", "faer"]
        );
        assert_eq!(stream::Stores::NAMES, ["streaming", "cached"]);
    }

    #[test]
    fn static_chunk_covers_everything() {
        for t in testing::THREADS {
            testing::pool(t).install(|| {
                for n in [0usize, 1, 2, 7, 100, 1001] {
                    let c = static_chunk(n);
                    assert!(c >= 1);
                    assert!(c * t >= n, "n={n} t={t} chunk={c}");
                }
            });
        }
    }
}

//! Distributed-memory kernels over MPI (rsmpi), each the MPI twin of a shared-memory kernel of
//! this crate or a classic communication benchmark.
//!
//! Every kernel here is a struct made on every rank of a communicator (`new`, untimed: allocation,
//! first touch, the reference result), with a `run` that is exactly the timed region (no
//! allocation, no barrier: the caller synchronises the ranks before timing), and a `check` that
//! verifies this rank's part of the last run and says what differs. Inside `run` each rank computes
//! with the current rayon pool, so a point with `ranks × threads` workers is hybrid MPI × rayon.
//!
//! | module | algorithm | flops | bytes (as counted by scalelab) |
//! | --- | --- | --- | --- |
//! | [`pingpong`] | OSU/IMB ping-pong between ranks 0 and 1 | 0 | 2 · size per iteration |
//! | [`collective`] | `MPI_Allreduce` (sum), `MPI_Bcast`, `MPI_Allgather` | 0 (allreduce: (p−1)·n adds, reported separately) | message size per call (algorithmic bandwidth) |
//! | [`stencil`] | 2-D Jacobi, 2-D Cartesian decomposition, halo exchange overlapped with the interior | 4 per interior point per sweep | 16 per interior point per sweep |
//! | [`summa`] | SUMMA DGEMM on a 2-D process grid, local products with the tuned kernel | 2n³ | 24n² (compulsory) |
//! | [`hpl`] | HPL: LU with partial pivoting on a P × Q block-cyclic grid, back substitution | 2/3·n³ + 3/2·n² | modelled as the shared-memory LU |
//! | [`pi`] | Monte Carlo π, chunks split statically over ranks, `MPI_Reduce` of the hit counts | 3 per sample | 0 |
//!
//! The process grid of the 2-D kernels is [`grid_dims`] (what `MPI_Dims_create(p, 2)` returns),
//! and a dimension of `n` items is cut into near-equal contiguous blocks by [`block_range`].
//!
//! References: MPI Forum, *MPI: A Message-Passing Interface Standard*, version 4.0 (2021), §7.5
//! (Cartesian topologies), chapter 6 (collectives); W. Gropp, E. Lusk and A. Skjellum, *Using
//! MPI*, 3rd ed., MIT Press 2014, chapter 4 (halo exchange).

use std::ops::Range;

pub mod collective;
pub mod hpl;
pub mod pi;
pub mod pingpong;
pub mod stencil;
pub mod summa;

/// The communicator the kernels run on (MPI's world of a point, or a duplicate of it).
pub type Comm = mpi::topology::SimpleCommunicator;

/// A 2-D process grid `(rows, cols)` for `p` processes, as `MPI_Dims_create(p, 2, {0, 0})` makes
/// it: the two factors of `p` closest to each other, the larger first (`rows ≥ cols`). `p = 0` is
/// treated as 1.
///
/// Examples: 1 → (1, 1), 2 → (2, 1), 4 → (2, 2), 6 → (3, 2), 8 → (4, 2), 7 → (7, 1).
pub fn grid_dims(p: usize) -> (usize, usize) {
    let p = p.max(1);
    let mut cols = (p as f64).sqrt() as usize;
    // Guard the float square root against rounding on either side.
    while cols * cols > p {
        cols -= 1;
    }
    while (cols + 1) * (cols + 1) <= p {
        cols += 1;
    }
    while !p.is_multiple_of(cols) {
        cols -= 1;
    }
    (p / cols, cols)
}

/// Block `k` of `n` items cut into `parts` contiguous blocks whose lengths differ by at most one
/// (the first `n mod parts` blocks are one longer), like the block distribution of ScaLAPACK or
/// PETSc's default layout. Panics if `k ≥ parts`.
pub fn block_range(n: usize, parts: usize, k: usize) -> Range<usize> {
    assert!(k < parts, "block {k} of {parts}");
    let (base, extra) = (n / parts, n % parts);
    let start = k * base + k.min(extra);
    start..start + base + usize::from(k < extra)
}

/// Greatest common divisor.
pub fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Least common multiple (0 if either is 0).
pub fn lcm(a: usize, b: usize) -> usize {
    if a == 0 || b == 0 {
        0
    } else {
        a / gcd(a, b) * b
    }
}

/// One SplitMix64 step from state `z` (add the golden-ratio increment, then [`crate::mix64`]): a
/// bijective hash that makes reproducible matrix entries from their indices (so every rank can
/// generate any part of a global matrix without communication).
pub(crate) fn splitmix64(z: u64) -> u64 {
    crate::mix64(z.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// A uniform value in [-1, 1) from a hash.
pub(crate) fn signed_unit(bits: u64) -> f64 {
    (f64::from_bits(0x3FF0_0000_0000_0000 | (bits >> 12)) - 1.0) * 2.0 - 1.0
}

/// Seconds since `t`, for the per-phase timers of the kernels.
pub(crate) fn since(t: std::time::Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_dims_match_mpi_dims_create() {
        let want = [
            (1, (1, 1)),
            (2, (2, 1)),
            (3, (3, 1)),
            (4, (2, 2)),
            (6, (3, 2)),
            (8, (4, 2)),
            (9, (3, 3)),
            (12, (4, 3)),
            (16, (4, 4)),
            (7, (7, 1)),
            (0, (1, 1)),
        ];
        for (p, dims) in want {
            assert_eq!(grid_dims(p), dims, "p={p}");
        }
        for p in 1..200 {
            let (r, c) = grid_dims(p);
            assert_eq!(r * c, p);
            assert!(r >= c);
        }
    }

    #[test]
    fn blocks_tile_the_range() {
        for n in [0usize, 1, 5, 10, 17, 100] {
            for parts in 1..9 {
                let mut next = 0;
                for k in 0..parts {
                    let r = block_range(n, parts, k);
                    assert_eq!(r.start, next, "n={n} parts={parts} k={k}");
                    assert!(r.len() == n / parts || r.len() == n / parts + 1);
                    next = r.end;
                }
                assert_eq!(next, n);
            }
        }
        assert_eq!(block_range(10, 3, 0), 0..4);
        assert_eq!(block_range(10, 3, 2), 7..10);
    }

    #[test]
    fn lcm_and_gcd() {
        assert_eq!(lcm(4, 6), 12);
        assert_eq!(lcm(2, 1), 2);
        assert_eq!(gcd(12, 18), 6);
        assert_eq!(lcm(0, 3), 0);
    }

    #[test]
    fn signed_unit_range() {
        assert_eq!(signed_unit(0), -1.0);
        assert!(signed_unit(u64::MAX) < 1.0);
    }
}

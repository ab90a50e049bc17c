//! Dot product `s = Σ x[i]·y[i]` as a deterministic parallel reduction.
//!
//! Work: 2 flops (a multiply and an add) and 16 bytes (two 8-byte reads) per element.
//!
//! Floating point addition is not associative, so a parallel sum whose combining order follows the
//! scheduler (rayon's `sum()` follows its work stealing) changes in the last bits from run to run
//! and from one thread count to another. [`dot`] avoids that: the vectors are cut into leaves of
//! [`LEAF`] elements (a constant, independent of the pool), each leaf is summed in a fixed order
//! (16 interleaved partial sums, combined pairwise), and the leaf sums are combined along a fixed
//! balanced binary tree over the leaf indices. Threads only decide *who* computes a subtree, never
//! *how* it is summed, so the result is **bitwise identical at any thread count**, and equal to
//! [`dot_tree_serial`]. The pairwise tree also keeps the rounding error at O(log n) ε rather than
//! the O(n) ε of the left-to-right loop in [`dot_serial`].
//!
//! Reference: N. J. Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., SIAM 2002,
//! §4.2 (pairwise summation); J. Demmel and H. D. Nguyen, "Fast Reproducible Floating-Point
//! Summation", ARITH 2013 (why reproducibility needs a fixed reduction order).

/// Elements per leaf of the reduction tree (fixed, so the summation order never depends on the pool).
pub const LEAF: usize = 4096;

/// Interleaved partial sums inside a leaf (two AVX-512 registers' worth).
const LANES: usize = 16;

/// Floating point operations of a dot product of length `n`: 2n.
pub fn flops(n: usize) -> f64 {
    2.0 * n as f64
}

/// Bytes read by a dot product of length `n`: 16n (no writes).
pub fn bytes(n: usize) -> f64 {
    16.0 * n as f64
}

/// Serial reference: the textbook left-to-right loop. Panics if the lengths differ.
pub fn dot_serial(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot: vectors of different lengths");
    let mut s = 0.0;
    for (a, b) in x.iter().zip(y) {
        s += a * b;
    }
    s
}

/// The fixed summation order of [`dot`], computed on one thread: bitwise equal to [`dot`] in any
/// pool. Panics if the lengths differ.
pub fn dot_tree_serial(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot: vectors of different lengths");
    tree(x, y, 0, leaves(x.len()), usize::MAX)
}

/// Parallel dot product in the current rayon pool, bitwise identical at any thread count (see the
/// module documentation). Panics if the lengths differ.
pub fn dot(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len(), "dot: vectors of different lengths");
    let n_leaves = leaves(x.len());
    // Fork only while a subtree holds more than 1/(4·threads) of the leaves: enough tasks to balance,
    // few enough that fork overhead stays small. Does not change the result.
    let grain = (n_leaves / (4 * rayon::current_num_threads())).max(1);
    tree(x, y, 0, n_leaves, grain)
}

fn leaves(n: usize) -> usize {
    n.div_ceil(LEAF).max(1)
}

/// Sum of leaves `lo..hi` along the fixed balanced tree; subtrees larger than `grain` leaves are
/// computed in parallel.
fn tree(x: &[f64], y: &[f64], lo: usize, hi: usize, grain: usize) -> f64 {
    if hi - lo == 1 {
        let start = lo * LEAF;
        let end = (start + LEAF).min(x.len());
        return leaf(&x[start..end], &y[start..end]);
    }
    let mid = lo + (hi - lo) / 2;
    let (l, r) = if hi - lo > grain {
        rayon::join(|| tree(x, y, lo, mid, grain), || tree(x, y, mid, hi, grain))
    } else {
        (tree(x, y, lo, mid, grain), tree(x, y, mid, hi, grain))
    };
    l + r
}

/// One leaf: 16 interleaved partial sums (vectorisable without reassociation), then a fixed pairwise
/// combine. Every instruction set computes the same roundings (no FMA contraction in Rust).
fn leaf(x: &[f64], y: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { leaf_avx512(x, y) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { leaf_avx2(x, y) };
        }
    }
    leaf_generic(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn leaf_avx512(x: &[f64], y: &[f64]) -> f64 {
    leaf_generic(x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn leaf_avx2(x: &[f64], y: &[f64]) -> f64 {
    leaf_generic(x, y)
}

#[inline(always)]
fn leaf_generic(x: &[f64], y: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let xs = x.chunks_exact(LANES);
    let ys = y.chunks_exact(LANES);
    let (xr, yr) = (xs.remainder(), ys.remainder());
    for (xc, yc) in xs.zip(ys) {
        for l in 0..LANES {
            acc[l] += xc[l] * yc[l];
        }
    }
    for (l, (a, b)) in xr.iter().zip(yr).enumerate() {
        acc[l] += a * b;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, random_vec, THREADS};

    #[test]
    fn bitwise_identical_at_every_thread_count() {
        for n in [
            1usize,
            2,
            15,
            17,
            LEAF - 1,
            LEAF,
            LEAF + 1,
            5 * LEAF + 3,
            37 * LEAF + 999,
        ] {
            let x = random_vec(n, 10);
            let y = random_vec(n, 11);
            let reference = dot_tree_serial(&x, &y);
            for t in THREADS {
                let s = pool(t).install(|| dot(&x, &y));
                assert_eq!(s.to_bits(), reference.to_bits(), "n={n} t={t}");
            }
            // Close to the textbook loop (error bound n·ε·Σ|x·y|).
            let naive = dot_serial(&x, &y);
            let mag: f64 = x.iter().zip(&y).map(|(a, b)| (a * b).abs()).sum();
            let tol = 2.0 * n as f64 * f64::EPSILON * mag;
            assert!((s_of(&x, &y) - naive).abs() <= tol, "n={n}");
        }
    }

    fn s_of(x: &[f64], y: &[f64]) -> f64 {
        pool(2).install(|| dot(x, y))
    }

    #[test]
    fn exact_on_integers() {
        let n = 3 * LEAF + 5;
        let x: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
        let y: Vec<f64> = (0..n).map(|i| (i % 5) as f64 - 2.0).collect();
        let exact: i64 = (0..n).map(|i| (i % 7) as i64 * ((i % 5) as i64 - 2)).sum();
        assert_eq!(pool(3).install(|| dot(&x, &y)), exact as f64);
        assert_eq!(dot_serial(&x, &y), exact as f64);
    }

    #[test]
    fn counts() {
        assert_eq!(flops(10), 20.0);
        assert_eq!(bytes(10), 160.0);
    }
}

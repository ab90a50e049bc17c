//! Monte Carlo estimate of π: the fraction of uniform points of the unit square that fall inside
//! the quarter circle `x² + y² < 1` tends to π/4.
//!
//! Reproducibility at any thread count comes from the way random numbers are made, not from the
//! schedule: the samples are cut into chunks of [`CHUNK`] (2¹⁶) samples, and chunk `c` draws its
//! points from its own Xoshiro256++ generator seeded with a SplitMix64 hash of `(seed, c)`. Whichever
//! worker runs a chunk draws the same points, and the integer hit counts add up exactly in any order,
//! so the hit count — and the estimate — is **identical at any thread count** and equal to
//! [`hits_serial`].
//!
//! Work per sample, as documented for scalelab: **3 flops** (`x·x`, `y·y` and their sum; the
//! comparison with 1 and the integer-to-float conversions of the random bits are not counted) and
//! **0 bytes** of memory traffic (everything stays in registers).
//!
//! References: N. Metropolis and S. Ulam, "The Monte Carlo Method", JASA 44 (1949); D. Blackman and
//! S. Vigna, "Scrambled Linear Pseudorandom Number Generators", ACM TOMS 47 (2021) (xoshiro256++);
//! G. L. Steele, D. Lea and C. H. Flood, "Fast Splittable Pseudorandom Number Generators", OOPSLA
//! 2014 (SplitMix64).

use rand::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use rayon::prelude::*;

/// Samples per chunk; each chunk has its own generator.
pub const CHUNK: u64 = 1 << 16;

/// Floating point operations for `samples` samples: 3 per sample.
pub fn flops(samples: u64) -> f64 {
    3.0 * samples as f64
}

/// Bytes of memory traffic: none.
pub fn bytes(_samples: u64) -> f64 {
    0.0
}

/// The π estimate from a hit count: 4 · hits / samples.
pub fn estimate(hits: u64, samples: u64) -> f64 {
    4.0 * hits as f64 / samples.max(1) as f64
}

/// SplitMix64's finaliser: a bijective hash of a 64-bit value.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The generator of chunk `chunk` for `seed`: Xoshiro256++ seeded (through its SplitMix64 seeding)
/// with `mix64(mix64(seed) + (chunk + 1)·φ64)`, φ64 = 0x9E37_79B9_7F4A_7C15 (SplitMix64's stream
/// increment), so neighbouring chunks and neighbouring seeds get unrelated streams.
pub fn chunk_rng(seed: u64, chunk: u64) -> Xoshiro256PlusPlus {
    let key = mix64(seed).wrapping_add(chunk.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    Xoshiro256PlusPlus::seed_from_u64(mix64(key))
}

/// A uniform `f64` in [0, 1) from the top 53 bits of a random word.
#[inline(always)]
fn unit(bits: u64) -> f64 {
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Hits among the `len` samples of chunk `chunk`.
pub fn chunk_hits(seed: u64, chunk: u64, len: u64) -> u64 {
    let mut rng = chunk_rng(seed, chunk);
    let mut hits = 0u64;
    for _ in 0..len {
        let x = unit(rng.next_u64());
        let y = unit(rng.next_u64());
        hits += u64::from(x * x + y * y < 1.0);
    }
    hits
}

fn chunk_len(samples: u64, chunk: u64) -> u64 {
    (samples - chunk * CHUNK).min(CHUNK)
}

/// Serial reference: hits among `samples` samples, chunk after chunk.
pub fn hits_serial(samples: u64, seed: u64) -> u64 {
    (0..samples.div_ceil(CHUNK))
        .map(|c| chunk_hits(seed, c, chunk_len(samples, c)))
        .sum()
}

/// Parallel hit count over the chunks in the current rayon pool; equal to [`hits_serial`] at any
/// thread count.
pub fn hits(samples: u64, seed: u64) -> u64 {
    (0..samples.div_ceil(CHUNK))
        .into_par_iter()
        .map(|c| chunk_hits(seed, c, chunk_len(samples, c)))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, THREADS};

    #[test]
    fn identical_at_every_thread_count() {
        for samples in [1u64, 2, 1001, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 17] {
            let reference = hits_serial(samples, 42);
            for t in THREADS {
                assert_eq!(pool(t).install(|| hits(samples, 42)), reference, "samples={samples} t={t}");
            }
        }
    }

    #[test]
    fn estimate_is_close_to_pi_and_seeds_differ() {
        let samples = 8 * CHUNK;
        let h = pool(2).install(|| hits(samples, 7));
        let pi = estimate(h, samples);
        // Standard deviation of the estimate is 4·sqrt(p(1-p)/N) ≈ 0.0023 here; allow 5σ.
        assert!((pi - std::f64::consts::PI).abs() < 0.012, "pi = {pi}");
        assert_ne!(hits_serial(samples, 8), h);
        assert_ne!(chunk_rng(1, 0).next_u64(), chunk_rng(1, 1).next_u64());
    }

    #[test]
    fn counts() {
        assert_eq!(flops(10), 30.0);
        assert_eq!(bytes(10), 0.0);
    }
}

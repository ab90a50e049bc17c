//! Monte Carlo estimate of π: the fraction of uniform points of the unit square that fall inside
//! the quarter circle `x² + y² < 1` tends to π/4.
//!
//! Reproducibility at any thread count comes from the way random numbers are made, not from the
//! schedule: the samples are cut into chunks of [`CHUNK`] (2¹⁶) samples, and chunk `c` draws its
//! points from its own [`LANES`] xoshiro256++ generators, each seeded (like
//! `Xoshiro256PlusPlus::seed_from_u64`) from a SplitMix64 hash of `(seed, c, lane)`, and used
//! round-robin: sample `s` of a chunk takes its `x` and then its `y` from generator `s mod LANES`.
//! Whichever worker runs a chunk draws the same points, and the integer hit counts add up exactly
//! in any order, so the hit count — and the estimate — is **identical at any thread count** and
//! equal to [`hits_serial`].
//!
//! The eight generators of a chunk advance in lock step, so their state update vectorises (one
//! AVX-512 register holds one state word of all eight): on the course machine about 1 ns per sample
//! on one core, 3× faster than one `Xoshiro256PlusPlus` per chunk, whose speed is bound by the
//! generator's integer arithmetic. A random word becomes a
//! uniform double in [0, 1) through its top 52 bits as a mantissa (`from_bits(1.0 | bits >> 12) −
//! 1`), which every instruction set computes identically.
//!
//! Work per sample, as documented for scalelab: **3 flops** (`x·x`, `y·y` and their sum; the
//! comparison with 1, the subtractions that make the uniforms and the integer work of the generator
//! are not counted) and **0 bytes** of memory traffic (everything stays in registers).
//!
//! References: N. Metropolis and S. Ulam, "The Monte Carlo Method", JASA 44 (1949); D. Blackman and
//! S. Vigna, "Scrambled Linear Pseudorandom Number Generators", ACM TOMS 47 (2021) (xoshiro256++);
//! G. L. Steele, D. Lea and C. H. Flood, "Fast Splittable Pseudorandom Number Generators", OOPSLA
//! 2014 (SplitMix64).

use rand::{RngCore, SeedableRng};
use rand_xoshiro::SplitMix64;
use rayon::prelude::*;

/// Samples per chunk; each chunk has its own generators.
pub const CHUNK: u64 = 1 << 16;

/// Generators per chunk, advanced in lock step (one AVX-512 register of 64-bit words).
pub const LANES: usize = 8;

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

use crate::mix64;

/// The 64-bit seed of generator `lane` of chunk `chunk`:
/// `mix64(mix64(seed) + (LANES·chunk + lane + 1)·φ64)`, φ64 = 0x9E37_79B9_7F4A_7C15 (SplitMix64's
/// stream increment), so neighbouring chunks, lanes and seeds get unrelated streams. The
/// generator's state is then what `Xoshiro256PlusPlus::seed_from_u64` makes of it: four successive
/// SplitMix64 outputs.
pub fn lane_seed(seed: u64, chunk: u64, lane: usize) -> u64 {
    let stream = chunk
        .wrapping_mul(LANES as u64)
        .wrapping_add(lane as u64 + 1);
    mix64(mix64(seed).wrapping_add(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
}

/// Eight xoshiro256++ generators, structure of arrays: `s[w][l]` is state word `w` of lane `l`.
struct Lanes {
    s: [[u64; LANES]; 4],
}

impl Lanes {
    fn new(seed: u64, chunk: u64) -> Lanes {
        let mut s = [[0u64; LANES]; 4];
        for l in 0..LANES {
            let mut sm = SplitMix64::seed_from_u64(lane_seed(seed, chunk, l));
            for word in s.iter_mut() {
                word[l] = sm.next_u64();
            }
        }
        Lanes { s }
    }

    /// The next output of every lane (xoshiro256++, Blackman and Vigna's reference algorithm).
    #[inline(always)]
    fn next(&mut self) -> [u64; LANES] {
        let [s0, s1, s2, s3] = &mut self.s;
        let mut out = [0u64; LANES];
        for l in 0..LANES {
            out[l] = s0[l]
                .wrapping_add(s3[l])
                .rotate_left(23)
                .wrapping_add(s0[l]);
            let t = s1[l] << 17;
            s2[l] ^= s0[l];
            s3[l] ^= s1[l];
            s1[l] ^= s2[l];
            s0[l] ^= s3[l];
            s2[l] ^= t;
            s3[l] = s3[l].rotate_left(45);
        }
        out
    }
}

/// A uniform `f64` in [0, 1) from the top 52 bits of a random word.
#[inline(always)]
fn unit(bits: u64) -> f64 {
    f64::from_bits(0x3FF0_0000_0000_0000 | (bits >> 12)) - 1.0
}

/// Hits among the `len` samples of chunk `chunk`.
pub fn chunk_hits(seed: u64, chunk: u64, len: u64) -> u64 {
    let mut g = Lanes::new(seed, chunk);
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { rounds_avx512(&mut g, len) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { rounds_avx2(&mut g, len) };
        }
    }
    rounds(&mut g, len)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn rounds_avx512(g: &mut Lanes, len: u64) -> u64 {
    rounds(g, len)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn rounds_avx2(g: &mut Lanes, len: u64) -> u64 {
    rounds(g, len)
}

/// `len` samples, `LANES` at a time; the last `len mod LANES` from the first lanes.
#[inline(always)]
fn rounds(g: &mut Lanes, len: u64) -> u64 {
    let mut hits = [0u64; LANES];
    let full = len / LANES as u64;
    let rest = (len % LANES as u64) as usize;
    for round in 0..=full {
        let xs = g.next();
        let ys = g.next();
        let lanes = if round < full { LANES } else { rest };
        for l in 0..LANES {
            let (x, y) = (unit(xs[l]), unit(ys[l]));
            hits[l] += u64::from((x * x + y * y < 1.0) & (l < lanes));
        }
    }
    hits.iter().sum()
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
                assert_eq!(
                    pool(t).install(|| hits(samples, 42)),
                    reference,
                    "samples={samples} t={t}"
                );
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
        assert_ne!(lane_seed(1, 0, 0), lane_seed(1, 1, 0));
        assert_ne!(lane_seed(1, 0, 1), lane_seed(1, 0, 0));
    }

    #[test]
    fn lanes_are_rand_xoshiro_generators() {
        use rand_xoshiro::Xoshiro256PlusPlus;
        let mut g = Lanes::new(42, 3);
        let mut reference: Vec<Xoshiro256PlusPlus> = (0..LANES)
            .map(|l| Xoshiro256PlusPlus::seed_from_u64(lane_seed(42, 3, l)))
            .collect();
        for _ in 0..5 {
            let out = g.next();
            for (l, r) in reference.iter_mut().enumerate() {
                assert_eq!(out[l], r.next_u64(), "lane {l}");
            }
        }
    }

    #[test]
    fn chunk_hits_follow_the_documented_sample_order() {
        // Sample s of a chunk takes x then y from lane s mod LANES.
        let len = 3 * LANES as u64 + 5;
        let mut g = Lanes::new(9, 2);
        let mut hits = 0;
        let mut left = len;
        while left > 0 {
            let (xs, ys) = (g.next(), g.next());
            for l in 0..(left as usize).min(LANES) {
                let (x, y) = (unit(xs[l]), unit(ys[l]));
                hits += u64::from(x * x + y * y < 1.0);
            }
            left = left.saturating_sub(LANES as u64);
        }
        assert_eq!(chunk_hits(9, 2, len), hits);
    }

    #[test]
    fn counts() {
        assert_eq!(flops(10), 30.0);
        assert_eq!(bytes(10), 0.0);
    }
}

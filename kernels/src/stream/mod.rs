//! STREAM: the four vector kernels of John McCalpin's memory bandwidth benchmark, on `f64` arrays.
//!
//! | kernel | operation | flops / element | bytes / element |
//! | --- | --- | --- | --- |
//! | copy  | `c[i] = a[i]`            | 0 | 16 |
//! | scale | `b[i] = q·c[i]`          | 1 | 16 |
//! | add   | `c[i] = a[i] + b[i]`     | 1 | 24 |
//! | triad | `a[i] = b[i] + q·c[i]`   | 2 | 24 |
//!
//! Bytes are counted the STREAM way: every array read once and every array written once, 8 bytes per
//! element each, with no write-allocate traffic (a cache that reads a line before overwriting it
//! moves 8 more bytes per element than is counted, so STREAM's figure is a lower bound of the real
//! traffic). The parallel variants split the arrays into one contiguous chunk per worker of the
//! current rayon pool, like OpenMP's `schedule(static)` in `stream.c`, and [`init`] first-touches the
//! arrays with the same partition.
//!
//! The parallel kernels write their output either through the caches ([`Stores::Cached`], what
//! `stream.c` compiled by gcc does) or with non-temporal stores ([`Stores::Streaming`], x86-64 SSE2
//! `movntpd`), which skip the read-for-ownership of each output line. Streaming stores make the
//! real traffic equal to STREAM's count; on the course machine (AMD EPYC, 64 MiB arrays, one
//! thread) they raise triad from about 24 to about 35 GB/s, and they were never slower at any array
//! size tried (1–64 MiB), so they are the default. Both give bitwise the same results.
//!
//! Reference: J. D. McCalpin, "Memory Bandwidth and Machine Balance in Current High Performance
//! Computers", IEEE TCCA Newsletter, 1995; <https://www.cs.virginia.edu/stream/>.

use rayon::prelude::*;

use crate::static_chunk;

/// The scalar `q` of scale and triad, as in `stream.c`.
pub const SCALAR: f64 = 3.0;

/// One of the four STREAM kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `c = a`
    Copy,
    /// `b = q·c`
    Scale,
    /// `c = a + b`
    Add,
    /// `a = b + q·c`
    Triad,
}

impl Op {
    /// All four, in STREAM's order.
    pub const ALL: [Op; 4] = [Op::Copy, Op::Scale, Op::Add, Op::Triad];

    /// Lower-case name: "copy", "scale", "add", "triad".
    pub fn name(self) -> &'static str {
        match self {
            Op::Copy => "copy",
            Op::Scale => "scale",
            Op::Add => "add",
            Op::Triad => "triad",
        }
    }

    /// Floating point operations per element: copy 0, scale 1, add 1, triad 2.
    pub fn flops_per_element(self) -> f64 {
        match self {
            Op::Copy => 0.0,
            Op::Scale | Op::Add => 1.0,
            Op::Triad => 2.0,
        }
    }

    /// Bytes per element, counted as STREAM does (no write-allocate): copy and scale 16, add and
    /// triad 24.
    pub fn bytes_per_element(self) -> f64 {
        match self {
            Op::Copy | Op::Scale => 16.0,
            Op::Add | Op::Triad => 24.0,
        }
    }

    /// Floating point operations of one pass over arrays of `n` elements.
    pub fn flops(self, n: usize) -> f64 {
        self.flops_per_element() * n as f64
    }

    /// Bytes of one pass over arrays of `n` elements (STREAM's count).
    pub fn bytes(self, n: usize) -> f64 {
        self.bytes_per_element() * n as f64
    }

    /// Number of arrays the kernel touches (2 or 3).
    pub fn arrays(self) -> usize {
        match self {
            Op::Copy | Op::Scale => 2,
            Op::Add | Op::Triad => 3,
        }
    }
}

fn same_len(out: &[f64], ins: &[&[f64]]) {
    for x in ins {
        assert_eq!(out.len(), x.len(), "STREAM arrays must have equal lengths");
    }
}

/// An array of `n` elements with `x[i] = f(i)`, first-touched in parallel with the static partition
/// the kernels use (so on a NUMA machine each worker's chunk lands in its own memory).
///
/// The allocation is zeroed memory straight from the OS (pages not yet touched); the parallel fill is
/// the first write to each page.
pub fn init(n: usize, f: impl Fn(usize) -> f64 + Sync) -> Vec<f64> {
    let mut x = vec![0.0; n];
    fill(&mut x, f);
    x
}

/// Set `x[i] = f(i)` in parallel with the static partition of the current pool.
pub fn fill(x: &mut [f64], f: impl Fn(usize) -> f64 + Sync) {
    let chunk = static_chunk(x.len());
    x.par_chunks_mut(chunk).enumerate().for_each(|(k, part)| {
        let start = k * chunk;
        for (i, v) in part.iter_mut().enumerate() {
            *v = f(start + i);
        }
    });
}

/// Set every element of `x` to `v` in parallel (static partition of the current pool), with
/// `stores`. A harness that overwrites a kernel's output between timed passes (to catch a kernel
/// that stops writing) must do it with the kernel's own kind of stores: ordinary stores would
/// leave up to a last-level cache of dirty output lines behind, whose write-back then lands in the
/// next timed pass as traffic STREAM does not count (up to L3 / (24 B × n) slower; about 15% with
/// 64 MiB arrays and a 32 MiB L3). Streaming stores leave nothing dirty, as a back-to-back pass
/// of the kernel itself does.
pub fn poison(x: &mut [f64], v: f64, stores: Stores) {
    let chunk = static_chunk(x.len());
    x.par_chunks_mut(chunk).for_each(|part| match stores {
        Stores::Cached => part.fill(v),
        Stores::Streaming => nt::fill(part, v),
    });
}

/// Serial copy `c[i] = a[i]`. Panics if the lengths differ.
pub fn copy_serial(c: &mut [f64], a: &[f64]) {
    same_len(c, &[a]);
    for (c, a) in c.iter_mut().zip(a) {
        *c = *a;
    }
}

/// Serial scale `b[i] = q·c[i]`. Panics if the lengths differ.
pub fn scale_serial(b: &mut [f64], c: &[f64], q: f64) {
    same_len(b, &[c]);
    for (b, c) in b.iter_mut().zip(c) {
        *b = q * c;
    }
}

/// Serial add `c[i] = a[i] + b[i]`. Panics if the lengths differ.
pub fn add_serial(c: &mut [f64], a: &[f64], b: &[f64]) {
    same_len(c, &[a, b]);
    for ((c, a), b) in c.iter_mut().zip(a).zip(b) {
        *c = a + b;
    }
}

/// Serial triad `a[i] = b[i] + q·c[i]`. Panics if the lengths differ.
pub fn triad_serial(a: &mut [f64], b: &[f64], c: &[f64], q: f64) {
    same_len(a, &[b, c]);
    for ((a, b), c) in a.iter_mut().zip(b).zip(c) {
        *a = b + q * c;
    }
}

/// How the parallel kernels write their output array.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Stores {
    /// Ordinary stores through the cache hierarchy: each output line is first read from memory
    /// (write-allocate), so the real traffic is 8 bytes per element more than STREAM counts.
    Cached,
    /// Non-temporal (streaming) stores that bypass the caches and skip the write-allocate read
    /// (x86-64 only; elsewhere the same as `Cached`).
    #[default]
    Streaming,
}

impl Stores {
    /// Both modes, default first.
    pub const ALL: [Stores; 2] = [Stores::Streaming, Stores::Cached];

    /// The names of [`Stores::ALL`], in that order: the choices of the STREAM workloads' `stores`.
    pub const NAMES: [&'static str; Stores::ALL.len()] = names_of_all!(Stores);

    /// Lower-case name: "streaming" or "cached".
    pub const fn name(self) -> &'static str {
        match self {
            Stores::Cached => "cached",
            Stores::Streaming => "streaming",
        }
    }

    /// The mode called `name`, if any.
    pub fn parse(name: &str) -> Option<Stores> {
        Stores::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// Parallel copy `c[i] = a[i]`: one contiguous chunk per worker of the current pool.
pub fn copy(c: &mut [f64], a: &[f64], stores: Stores) {
    same_len(c, &[a]);
    let chunk = static_chunk(c.len());
    c.par_chunks_mut(chunk)
        .zip(a.par_chunks(chunk))
        .for_each(|(c, a)| match stores {
            Stores::Cached => copy_serial(c, a),
            Stores::Streaming => nt::copy(c, a),
        });
}

/// Parallel scale `b[i] = q·c[i]`: one contiguous chunk per worker of the current pool.
pub fn scale(b: &mut [f64], c: &[f64], q: f64, stores: Stores) {
    same_len(b, &[c]);
    let chunk = static_chunk(b.len());
    b.par_chunks_mut(chunk)
        .zip(c.par_chunks(chunk))
        .for_each(|(b, c)| match stores {
            Stores::Cached => scale_serial(b, c, q),
            Stores::Streaming => nt::scale(b, c, q),
        });
}

/// Parallel add `c[i] = a[i] + b[i]`: one contiguous chunk per worker of the current pool.
pub fn add(c: &mut [f64], a: &[f64], b: &[f64], stores: Stores) {
    same_len(c, &[a, b]);
    let chunk = static_chunk(c.len());
    c.par_chunks_mut(chunk)
        .zip(a.par_chunks(chunk))
        .zip(b.par_chunks(chunk))
        .for_each(|((c, a), b)| match stores {
            Stores::Cached => add_serial(c, a, b),
            Stores::Streaming => nt::add(c, a, b),
        });
}

/// Parallel triad `a[i] = b[i] + q·c[i]`: one contiguous chunk per worker of the current pool.
///
/// ```
/// use scalelab_kernels::stream::{self, Op, Stores};
///
/// let n = 10_000;
/// let (b, c) = (stream::init(n, |i| i as f64), stream::init(n, |_| 2.0));
/// let mut want = vec![0.0; n];
/// stream::triad_serial(&mut want, &b, &c, 3.0);
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
/// for stores in [Stores::Cached, Stores::Streaming] {
///     let mut a = vec![f64::NAN; n];
///     pool.install(|| stream::triad(&mut a, &b, &c, 3.0, stores));
///     assert_eq!(a, want, "{}", stores.name());
/// }
/// assert_eq!(want[5], 5.0 + 3.0 * 2.0);
/// // STREAM's counts: 2 flops and 24 bytes (two reads, one write) per element.
/// assert_eq!((Op::Triad.flops(n), Op::Triad.bytes(n)), (2.0 * n as f64, 24.0 * n as f64));
/// ```
pub fn triad(a: &mut [f64], b: &[f64], c: &[f64], q: f64, stores: Stores) {
    same_len(a, &[b, c]);
    let chunk = static_chunk(a.len());
    a.par_chunks_mut(chunk)
        .zip(b.par_chunks(chunk))
        .zip(c.par_chunks(chunk))
        .for_each(|((a, b), c)| match stores {
            Stores::Cached => triad_serial(a, b, c, q),
            Stores::Streaming => nt::triad(a, b, c, q),
        });
}

/// Streaming-store versions of the serial kernels (SSE2 `movntpd`, part of every x86-64 CPU).
///
/// SAFETY (every `unsafe` block below that calls an intrinsic): SSE and SSE2 are part of the
/// x86-64 baseline, so these instructions exist on every CPU this module is compiled for.
#[cfg(target_arch = "x86_64")]
mod nt {
    use std::arch::x86_64::*;

    /// Elements before `out` reaches the 16-byte alignment `movntpd` needs (0 or 1).
    fn head(out: &[f64]) -> usize {
        out.as_ptr().align_offset(16).min(out.len())
    }

    /// Write `out[i..i+2] = f(i)` for the aligned pairs, around the scalar head and tail that
    /// `serial(range)` handles, then fence so other threads see the weakly ordered stores.
    #[inline(always)]
    fn pairs(
        out: &mut [f64],
        mut serial: impl FnMut(&mut [f64], std::ops::Range<usize>),
        f: impl Fn(usize) -> __m128d,
    ) {
        let n = out.len();
        let h = head(out);
        serial(&mut out[..h], 0..h);
        let end = h + (n - h) / 2 * 2;
        let p = out.as_mut_ptr();
        for i in (h..end).step_by(2) {
            // SAFETY: i + 1 < end <= n, p + i is 16-byte aligned (after the head); SSE2 baseline.
            unsafe { _mm_stream_pd(p.add(i), f(i)) };
        }
        // SAFETY: SSE baseline.
        unsafe { _mm_sfence() };
        serial(&mut out[end..], end..n);
    }

    #[inline(always)]
    fn load(x: &[f64], i: usize) -> __m128d {
        assert!(i + 2 <= x.len());
        // SAFETY: bounds checked just above; SSE2 baseline.
        unsafe { _mm_loadu_pd(x.as_ptr().add(i)) }
    }

    pub fn fill(x: &mut [f64], v: f64) {
        // SAFETY: SSE2 baseline.
        let vv = unsafe { _mm_set1_pd(v) };
        pairs(x, |o, _| o.fill(v), |_| vv);
    }

    pub fn copy(c: &mut [f64], a: &[f64]) {
        pairs(c, |o, r| super::copy_serial(o, &a[r]), |i| load(a, i));
    }

    pub fn scale(b: &mut [f64], c: &[f64], q: f64) {
        // SAFETY: SSE2 baseline (all intrinsics in this function).
        let qv = unsafe { _mm_set1_pd(q) };
        pairs(
            b,
            |o, r| super::scale_serial(o, &c[r], q),
            |i| unsafe { _mm_mul_pd(qv, load(c, i)) },
        );
    }

    pub fn add(c: &mut [f64], a: &[f64], b: &[f64]) {
        pairs(
            c,
            |o, r| super::add_serial(o, &a[r.clone()], &b[r]),
            // SAFETY: SSE2 baseline.
            |i| unsafe { _mm_add_pd(load(a, i), load(b, i)) },
        );
    }

    pub fn triad(a: &mut [f64], b: &[f64], c: &[f64], q: f64) {
        // SAFETY: SSE2 baseline (all intrinsics in this function).
        let qv = unsafe { _mm_set1_pd(q) };
        pairs(
            a,
            |o, r| super::triad_serial(o, &b[r.clone()], &c[r], q),
            |i| unsafe { _mm_add_pd(load(b, i), _mm_mul_pd(qv, load(c, i))) },
        );
    }
}

/// Without x86-64 streaming stores, "streaming" falls back to ordinary stores.
#[cfg(not(target_arch = "x86_64"))]
mod nt {
    pub use super::{
        add_serial as add, copy_serial as copy, scale_serial as scale, triad_serial as triad,
    };

    pub fn fill(x: &mut [f64], v: f64) {
        x.fill(v);
    }
}

/// The three STREAM arrays `a`, `b`, `c` of one size, first-touched in parallel.
///
/// Initial values are position-dependent and exact in binary (`a[i] = 1 + (i mod 1021)`,
/// `b[i] = 2 + (i mod 1019)/2`, `c[i] = (i mod 1013)/4`), so every kernel's result is exact and can
/// be checked element by element with [`Arrays::expected`]. The periods are primes, so no chunk
/// boundary a parallel split can produce repeats another chunk's inputs: a kernel that computes a
/// chunk from the wrong offset fails the check.
#[derive(Clone, Debug)]
pub struct Arrays {
    /// STREAM's `a`.
    pub a: Vec<f64>,
    /// STREAM's `b`.
    pub b: Vec<f64>,
    /// STREAM's `c`.
    pub c: Vec<f64>,
}

impl Arrays {
    /// Initial value of `a[i]`.
    pub fn a0(i: usize) -> f64 {
        1.0 + (i % 1021) as f64
    }
    /// Initial value of `b[i]`.
    pub fn b0(i: usize) -> f64 {
        2.0 + (i % 1019) as f64 * 0.5
    }
    /// Initial value of `c[i]`.
    pub fn c0(i: usize) -> f64 {
        (i % 1013) as f64 * 0.25
    }

    /// Allocate and first-touch the three arrays of `n` elements in the current pool.
    pub fn new(n: usize) -> Arrays {
        Arrays {
            a: init(n, Self::a0),
            b: init(n, Self::b0),
            c: init(n, Self::c0),
        }
    }

    /// Run `op` once with the parallel kernel. The kernel's output is the one array it does not read,
    /// so running it again leaves the same values: results stay checkable after any number of runs.
    pub fn run(&mut self, op: Op, stores: Stores) {
        match op {
            Op::Copy => copy(&mut self.c, &self.a, stores),
            Op::Scale => scale(&mut self.b, &self.c, SCALAR, stores),
            Op::Add => add(&mut self.c, &self.a, &self.b, stores),
            Op::Triad => triad(&mut self.a, &self.b, &self.c, SCALAR, stores),
        }
    }

    /// Expected value of element `i` of `op`'s output, when its inputs hold their initial values.
    pub fn expected(op: Op, i: usize) -> f64 {
        match op {
            Op::Copy => Self::a0(i),
            Op::Scale => SCALAR * Self::c0(i),
            Op::Add => Self::a0(i) + Self::b0(i),
            Op::Triad => Self::b0(i) + SCALAR * Self::c0(i),
        }
    }

    /// The output array of `op`.
    pub fn output(&self, op: Op) -> &[f64] {
        match op {
            Op::Copy | Op::Add => &self.c,
            Op::Scale => &self.b,
            Op::Triad => &self.a,
        }
    }

    /// The output array of `op`, mutable.
    pub fn output_mut(&mut self, op: Op) -> &mut [f64] {
        match op {
            Op::Copy | Op::Add => &mut self.c,
            Op::Scale => &mut self.b,
            Op::Triad => &mut self.a,
        }
    }

    /// Overwrite the output array of `op` with NaN using `stores` (see [`poison`]): the next run
    /// must write every element again for [`Arrays::check`] to pass.
    pub fn poison_output(&mut self, op: Op, stores: Stores) {
        poison(self.output_mut(op), f64::NAN, stores);
    }

    /// Restore the output array of `op` to its initial value (the inputs are never written).
    pub fn reset_output(&mut self, op: Op) {
        match op {
            Op::Copy | Op::Add => fill(&mut self.c, Self::c0),
            Op::Scale => fill(&mut self.b, Self::b0),
            Op::Triad => fill(&mut self.a, Self::a0),
        }
    }

    /// Check every element of `op`'s output (STREAM's own validation, element-wise and exact), in
    /// parallel. Returns the number of wrong elements and the first one as `(index, found,
    /// expected)`.
    pub fn check(&self, op: Op) -> (usize, Option<(usize, f64, f64)>) {
        crate::bitwise_mismatches(self.output(op), |i| Self::expected(op, i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{pool, random_vec, THREADS};

    #[test]
    fn parallel_matches_serial() {
        for t in THREADS {
            pool(t).install(|| {
                for n in [1usize, 2, 3, 17, 1000, 4099] {
                    // Offsets 0 and 1 start the output on and off the 16-byte alignment.
                    for off in [0usize, 1] {
                        let a = random_vec(n, 1);
                        let b = random_vec(n, 2);
                        let c = random_vec(n, 3);
                        for stores in Stores::ALL {
                            let mut xs = vec![0.0; n + 1];
                            let x = &mut xs[off..off + n];
                            let mut y = vec![0.0; n];
                            let what = format!("n={n} t={t} off={off} {stores:?}");
                            copy(x, &a, stores);
                            copy_serial(&mut y, &a);
                            assert_eq!(x, &y[..], "copy {what}");
                            scale(x, &c, SCALAR, stores);
                            scale_serial(&mut y, &c, SCALAR);
                            assert_eq!(x, &y[..], "scale {what}");
                            add(x, &a, &b, stores);
                            add_serial(&mut y, &a, &b);
                            assert_eq!(x, &y[..], "add {what}");
                            triad(x, &b, &c, SCALAR, stores);
                            triad_serial(&mut y, &b, &c, SCALAR);
                            assert_eq!(x, &y[..], "triad {what}");
                        }
                    }
                }
            });
        }
    }

    /// Both kinds of poison write every element, on and off the 16-byte alignment, at every pool
    /// size (a streaming fill that skipped its scalar head or tail would leave old values).
    #[test]
    fn poison_writes_every_element() {
        for t in THREADS {
            pool(t).install(|| {
                for n in [1usize, 2, 3, 17, 4099] {
                    for off in [0usize, 1] {
                        for stores in Stores::ALL {
                            let mut xs = vec![1.0; n + 1];
                            poison(&mut xs[off..off + n], f64::NAN, stores);
                            let what = format!("n={n} t={t} off={off} {stores:?}");
                            assert!(xs[off..off + n].iter().all(|x| x.is_nan()), "{what}");
                            assert!(
                                xs[..off].iter().chain(&xs[off + n..]).all(|&x| x == 1.0),
                                "{what}"
                            );
                        }
                    }
                }
            });
        }
    }

    #[test]
    fn stores_names_round_trip() {
        for s in Stores::ALL {
            assert_eq!(Stores::parse(s.name()), Some(s));
        }
        assert_eq!(Stores::default(), Stores::Streaming);
        assert_eq!(Stores::parse("nt"), None);
    }

    #[test]
    fn arrays_verify_exactly_and_detect_errors() {
        for t in [1, 3] {
            pool(t).install(|| {
                for n in [1usize, 5, 1023] {
                    let mut s = Arrays::new(n);
                    for (op, stores) in Op::ALL
                        .into_iter()
                        .zip([Stores::Cached, Stores::Streaming].into_iter().cycle())
                    {
                        s.run(op, stores);
                        s.run(op, stores);
                        assert_eq!(s.check(op), (0, None), "{op:?} n={n}");
                        s.output_mut(op)[n / 2] += 1.0;
                        let (bad, first) = s.check(op);
                        assert_eq!(bad, 1);
                        assert_eq!(first.map(|f| f.0), Some(n / 2));
                        s.reset_output(op);
                    }
                }
            });
        }
    }

    #[test]
    fn counts() {
        assert_eq!(Op::Triad.bytes(10), 240.0);
        assert_eq!(Op::Triad.flops(10), 20.0);
        assert_eq!(Op::Copy.bytes(10), 160.0);
        assert_eq!(Op::Copy.flops(10), 0.0);
        assert_eq!(Op::Scale.flops(10), 10.0);
        assert_eq!(Op::Add.bytes(1), 24.0);
    }
}

//! Adapters from the rayon kernels of `scalelab-kernels` to [`Workload`]: STREAM (`stream.copy`,
//! `stream.scale`, `stream.add`, `stream.triad`), `reduce.dot`, `gemm`, `stencil.jacobi2d` and
//! `pi.montecarlo`.
//!
//! Each adapter reads its parameters (returning an error, never panicking, on a bad value), counts
//! the work analytically with the kernel's own `flops`/`bytes` functions, and prepares an instance
//! whose `run` is exactly the timed kernel call (everything is allocated and first-touched in
//! `prepare`, inside the point's pool) and whose `verify` checks the last run for real:
//!
//! * STREAM: every element of the output equals its known value (STREAM's own check, exact);
//! * dot: the exact value, known in closed form (inputs are small integers, so every partial sum is
//!   exact in any order);
//! * gemm: Freivalds' check, `C·x` against `A·(B·x)` for two seeded random vectors, with the
//!   componentwise rounding bound `4(n+2)ε·|A|(|B||x|)`. It costs five matrix-vector products
//!   (10n² flops) instead of the 2n³ of a reference product, which would take longer than the
//!   measurement itself for the slow variants;
//! * stencil: bitwise equality with the serial reference computed once in `prepare`;
//! * π: the hit count equals the serial reference count computed once in `prepare`.
//!
//! After checking, `verify` poisons the output (NaN, or an impossible count), so the next repetition
//! is checked on values it wrote itself: a kernel that skips its work fails instead of passing on
//! an earlier repetition's result.

use anyhow::{anyhow, bail};
use rayon::prelude::*;
use scalelab_kernels::{dot, gemm, pi, stencil, stream};

use super::{
    gib, int_param, sample_count, size_param, square_side, to_usize, Backend, Description,
    Instance, ParamKind, ParamSpec, Params, Reporting, Target, WeakRule, Work, Workload,
};
use crate::value::Value;

// ---------------------------------------------------------------------------------------------
// STREAM

/// `stream.copy|scale|add|triad`: one STREAM kernel over arrays of `size` elements each.
pub struct Stream(pub stream::Op);

/// The `stores` modes: the names of [`stream::Stores`], one list.
const STORES: &[&str] = &stream::Stores::NAMES;

const STREAM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "64MiB",
        doc: "length of each array: elements (\"8M\") or bytes per array (\"64MiB\" = 8Mi f64)",
    },
    ParamSpec {
        name: "stores",
        kind: ParamKind::Choice(STORES),
        default: "streaming",
        doc: "streaming (non-temporal stores, no write-allocate) | cached (ordinary stores, like gcc's \
              stream.c)",
    },
];

impl Stream {
    fn elements(params: &Params) -> Result<usize, String> {
        to_usize(size_param(params)?.count(8), "size")
    }

    fn stores(params: &Params) -> Result<stream::Stores, String> {
        match params.get("stores") {
            None => Ok(stream::Stores::default()),
            Some(Value::Text(name)) => stream::Stores::parse(name).ok_or_else(|| {
                format!(
                    "`stores` must be one of {}, not `{name}`",
                    STORES.join(", ")
                )
            }),
            Some(other) => Err(format!(
                "`stores` must be one of {}, not {other}",
                STORES.join(", ")
            )),
        }
    }
}

/// The STREAM workloads, as `scalelab list` shows them.
pub const STREAM_COPY: Description = Description::new(
    "stream.copy",
    "STREAM copy c = a (16 B/element, memory bandwidth)",
    Backend::Rayon,
    STREAM_PARAMS,
)
.reporting(Reporting::BANDWIDTH_CEILING);
pub const STREAM_SCALE: Description = Description::new(
    "stream.scale",
    "STREAM scale b = q·c (16 B/element, memory bandwidth)",
    Backend::Rayon,
    STREAM_PARAMS,
)
.reporting(Reporting::BANDWIDTH_CEILING);
pub const STREAM_ADD: Description = Description::new(
    "stream.add",
    "STREAM add c = a + b (24 B/element, memory bandwidth)",
    Backend::Rayon,
    STREAM_PARAMS,
)
.reporting(Reporting::BANDWIDTH_CEILING);
pub const STREAM_TRIAD: Description = Description::new(
    "stream.triad",
    "STREAM triad a = b + q·c (24 B/element, memory bandwidth)",
    Backend::Rayon,
    STREAM_PARAMS,
)
.reporting(Reporting::BANDWIDTH_CEILING);

impl Workload for Stream {
    fn description(&self) -> &'static Description {
        match self.0 {
            stream::Op::Copy => &STREAM_COPY,
            stream::Op::Scale => &STREAM_SCALE,
            stream::Op::Add => &STREAM_ADD,
            stream::Op::Triad => &STREAM_TRIAD,
        }
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map(|s| s.count(8)).unwrap_or(0)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::elements(params)?;
        Self::stores(params)?;
        let need = 8.0 * n as f64 * self.0.arrays() as f64;
        target.fits_memory(self.name(), need, "use a smaller `size` (it is per array)")
    }
    fn work(&self, params: &Params) -> Work {
        let n = Self::elements(params).unwrap_or(0);
        Work {
            flops: self.0.flops(n),
            bytes: self.0.bytes(n),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.8
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Ok(Box::new(StreamInstance::new(self.0, params)?))
    }
}

struct StreamInstance {
    op: stream::Op,
    stores: stream::Stores,
    arrays: stream::Arrays,
}

impl StreamInstance {
    fn new(op: stream::Op, params: &Params) -> anyhow::Result<StreamInstance> {
        let n = Stream::elements(params).map_err(|e| anyhow!(e))?;
        let stores = Stream::stores(params).map_err(|e| anyhow!(e))?;
        Ok(StreamInstance {
            op,
            stores,
            arrays: stream::Arrays::new(n),
        })
    }
}

impl Instance for StreamInstance {
    fn run(&mut self) {
        self.arrays.run(self.op, self.stores);
    }
    fn verify(&mut self) -> Result<(), String> {
        let (bad, first) = self.arrays.check(self.op);
        // Poisoned with the kernel's own stores, so the next timed pass starts with no dirty
        // output lines in the cache, as calibrate's back-to-back passes do (see `stream::poison`).
        self.arrays.poison_output(self.op, self.stores);
        match first {
            None => Ok(()),
            Some((i, found, want)) => Err(format!(
                "stream.{}: {bad} of {} elements differ from STREAM's expected values; first at index \
                 {i}: {found} instead of {want}",
                self.op.name(),
                self.arrays.a.len()
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dot product

/// `reduce.dot`: deterministic parallel dot product of two vectors of `size` elements.
pub struct Dot;

const DOT_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "size",
    kind: ParamKind::Size,
    default: "64MiB",
    doc: "length of each vector: elements (\"8M\") or bytes per vector (\"64MiB\" = 8Mi f64)",
}];

/// Input values of the dot workload: small positive integers, so every partial sum is exact (below
/// 2^53 for any vector that fits in memory) and no block of terms cancels out: dropping or
/// repeating any part of the sum changes the result.
fn dot_x(i: usize) -> f64 {
    1.0 + (i % 16) as f64
}
fn dot_y(i: usize) -> f64 {
    1.0 + (i % 13) as f64
}

/// The exact value of `Σ dot_x(i)·dot_y(i)` for `i < n`, in integer arithmetic (period 208).
fn dot_exact(n: usize) -> i128 {
    let term = |i: usize| (1 + (i % 16) as i128) * (1 + (i % 13) as i128);
    let period: i128 = (0..208).map(term).sum();
    let full = (n / 208) as i128;
    full * period + (0..n % 208).map(term).sum::<i128>()
}

impl Dot {
    fn elements(params: &Params) -> Result<usize, String> {
        to_usize(size_param(params)?.count(8), "size")
    }
}

/// `reduce.dot`, as `scalelab list` shows it.
pub const DOT: Description = Description::new(
    "reduce.dot",
    "dot product x·y, bitwise reproducible at any thread count (16 B/element, memory bandwidth)",
    Backend::Rayon,
    DOT_PARAMS,
);

impl Workload for Dot {
    fn description(&self) -> &'static Description {
        &DOT
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map(|s| s.count(8)).unwrap_or(0)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::elements(params)?;
        if n as f64 * 90.0 >= 2f64.powi(53) {
            return Err(format!(
                "reduce.dot: size {n} is too large for an exactly checkable sum; use at most 10^14 elements"
            ));
        }
        target.fits_memory(
            self.name(),
            16.0 * n as f64,
            "use a smaller `size` (it is per vector)",
        )
    }
    fn work(&self, params: &Params) -> Work {
        let n = Self::elements(params).unwrap_or(0);
        Work {
            flops: dot::flops(n),
            bytes: dot::bytes(n),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.8
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Ok(Box::new(DotInstance::new(params)?))
    }
}

struct DotInstance {
    x: Vec<f64>,
    y: Vec<f64>,
    result: f64,
    expected: f64,
}

impl DotInstance {
    fn new(params: &Params) -> anyhow::Result<DotInstance> {
        let n = Dot::elements(params).map_err(|e| anyhow!(e))?;
        Ok(DotInstance {
            x: stream::init(n, dot_x),
            y: stream::init(n, dot_y),
            result: f64::NAN,
            expected: dot_exact(n) as f64,
        })
    }
}

impl Instance for DotInstance {
    fn run(&mut self) {
        self.result = dot::dot(&self.x, &self.y);
    }
    fn verify(&mut self) -> Result<(), String> {
        let got = std::mem::replace(&mut self.result, f64::NAN);
        if got.to_bits() == self.expected.to_bits() {
            Ok(())
        } else {
            Err(format!(
                "reduce.dot: result {got} differs from the exact value {} (difference {})",
                self.expected,
                got - self.expected
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GEMM

/// `gemm`: `C = A·B` for `n × n` f64 matrices, in one of the lecture's variants.
pub struct Gemm;

/// The `variant` choices: the names of [`gemm::Variant`], one list.
const GEMM_VARIANTS: &[&str] = &gemm::Variant::NAMES;

const GEMM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "1024",
        doc: "matrix order n, or bytes of one n × n f64 matrix (\"8MiB\" = 1024)",
    },
    ParamSpec {
        name: "variant",
        kind: ParamKind::Choice(GEMM_VARIANTS),
        default: "tuned",
        doc: "naive (ijk) | ikj (loop interchange) | blocked (cache tiles) | tuned (packed, SIMD \
              micro-kernel) | faer (library)",
    },
];

impl Gemm {
    fn order(params: &Params) -> Result<usize, String> {
        square_side("gemm", params, 1)
    }

    fn variant(params: &Params) -> Result<gemm::Variant, String> {
        let name = match params.get("variant") {
            Some(Value::Text(s)) => s.as_str(),
            None => "tuned",
            Some(other) => return Err(format!("gemm: `variant` must be a name, found {other}")),
        };
        gemm::Variant::parse(name).ok_or_else(|| {
            format!(
                "gemm: unknown variant `{name}`; use one of {}",
                GEMM_VARIANTS.join(", ")
            )
        })
    }
}

/// `gemm`, as `scalelab list` shows it: the FMA peak bounds it.
pub const GEMM: Description = Description::new(
    "gemm",
    "DGEMM C = A·B, n × n: naive, ikj, blocked, tuned (Goto/BLIS, AVX-512) or faer (2n³ flops)",
    Backend::Rayon,
    GEMM_PARAMS,
)
.size_unit("n")
.weak_rule(WeakRule::Cbrt)
.reporting(Reporting::FMA_BOUND);

impl Workload for Gemm {
    fn description(&self) -> &'static Description {
        &GEMM
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map(|s| s.side(8)).unwrap_or(0)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::order(params)?;
        Self::variant(params)?;
        let need = 3.0 * 8.0 * (n as f64).powi(2);
        target.fits_memory(
            "gemm",
            need,
            &format!(
                "A, B and C take 3·8·n² = {} at n = {n}; use a smaller `size`",
                gib(need)
            ),
        )
    }
    fn work(&self, params: &Params) -> Work {
        let n = Self::order(params).unwrap_or(0);
        Work {
            flops: gemm::flops(n),
            bytes: gemm::bytes(n),
        }
    }
    fn expected_efficiency(&self, params: &Params) -> f64 {
        match Self::variant(params) {
            Ok(gemm::Variant::Naive) => 0.02,
            Ok(gemm::Variant::Ikj) => 0.1,
            Ok(gemm::Variant::Blocked) => 0.2,
            Ok(gemm::Variant::Tuned) => 0.6,
            Ok(gemm::Variant::Faer) => 0.75,
            Err(_) => 0.5,
        }
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Ok(Box::new(GemmInstance::new(params)?))
    }
}

/// A uniform value in [-1, 1) from a hash of `(seed, i)`: random-looking inputs that any thread can
/// generate for any index (parallel first touch, deterministic).
fn hashed_uniform(seed: u64, i: usize) -> f64 {
    let z = scalelab_kernels::mix64(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (z >> 11) as f64 * (2.0 / (1u64 << 53) as f64) - 1.0
}

struct GemmInstance {
    variant: gemm::Variant,
    n: usize,
    a: Vec<f64>,
    b: Vec<f64>,
    c: Vec<f64>,
    ws: gemm::Workspace,
    /// Scratch vectors of Freivalds' check (allocated once): x, B·x, |B||x|.
    x: Vec<f64>,
    bx: Vec<f64>,
    bx_abs: Vec<f64>,
    checks: u64,
}

impl GemmInstance {
    fn new(params: &Params) -> anyhow::Result<GemmInstance> {
        let n = Gemm::order(params).map_err(|e| anyhow!(e))?;
        let variant = Gemm::variant(params).map_err(|e| anyhow!(e))?;
        if n == 0 {
            bail!("gemm: n must be at least 1");
        }
        let mut ws = gemm::Workspace::new();
        if variant == gemm::Variant::Tuned {
            ws.reserve(n);
        }
        Ok(GemmInstance {
            variant,
            n,
            a: stream::init(n * n, |i| hashed_uniform(1, i)),
            b: stream::init(n * n, |i| hashed_uniform(2, i)),
            c: stream::init(n * n, |_| f64::NAN),
            ws,
            x: vec![0.0; n],
            bx: vec![0.0; n],
            bx_abs: vec![0.0; n],
            checks: 0,
        })
    }

    /// Freivalds' check of C = A·B with one random vector (seeded by `seed`); returns the worst row
    /// as `(row, |C·x − A·(B·x)|, tolerance)` if some row is outside its tolerance.
    ///
    /// For any summation order, a computed product satisfies |C − AB| ≤ γₙ|A||B| (γₙ ≈ nε), and each
    /// of the matrix-vector products adds at most γₙ|A||B||x| more, so the difference is bounded by
    /// 4(n+2)ε·(|A|(|B||x|))ᵢ row by row. Entries of x are ±[0.5, 1.5) with random signs, so a single
    /// wrong entry of C moves its row's difference by at least half its error.
    fn freivalds(&mut self, seed: u64) -> Option<(usize, f64, f64)> {
        let n = self.n;
        for (j, x) in self.x.iter_mut().enumerate() {
            let u = hashed_uniform(seed, j);
            *x = u.signum() * (0.5 + u.abs());
        }
        let (a, b, c, x) = (&self.a, &self.b, &self.c, &self.x);
        self.bx
            .par_iter_mut()
            .zip(self.bx_abs.par_iter_mut())
            .enumerate()
            .for_each(|(i, (s, s_abs))| {
                let row = &b[i * n..(i + 1) * n];
                *s = row.iter().zip(x).map(|(r, x)| r * x).sum();
                *s_abs = row.iter().zip(x).map(|(r, x)| (r * x).abs()).sum();
            });
        let (bx, bx_abs) = (&self.bx, &self.bx_abs);
        let gamma = 4.0 * (n as f64 + 2.0) * f64::EPSILON;
        (0..n)
            .into_par_iter()
            .filter_map(|i| {
                let arow = &a[i * n..(i + 1) * n];
                let crow = &c[i * n..(i + 1) * n];
                let cx: f64 = crow.iter().zip(x).map(|(c, x)| c * x).sum();
                let abx: f64 = arow.iter().zip(bx).map(|(a, v)| a * v).sum();
                let bound: f64 = arow.iter().zip(bx_abs).map(|(a, v)| a.abs() * v).sum();
                let tol = gamma * bound + f64::MIN_POSITIVE;
                let diff = (cx - abx).abs();
                // A NaN difference (an element the kernel did not write) fails too.
                let within = diff.partial_cmp(&tol).is_some_and(|o| o.is_le());
                (!within).then_some((i, diff, tol))
            })
            .reduce_with(|p, q| if q.1 > p.1 || p.1.is_nan() { q } else { p })
    }
}

impl Instance for GemmInstance {
    fn run(&mut self) {
        gemm::run(
            self.variant,
            self.n,
            &self.a,
            &self.b,
            &mut self.c,
            &mut self.ws,
        );
    }
    fn verify(&mut self) -> Result<(), String> {
        self.checks += 1;
        let mut result = Ok(());
        for k in 0..2 {
            if let Some((row, diff, tol)) = self.freivalds(1000 + 2 * self.checks + k) {
                result = Err(format!(
                    "gemm {} n = {}: Freivalds' check failed: row {row} of C·x differs from A·(B·x) by \
                     {diff:e}, beyond the rounding bound {tol:e}",
                    self.variant.name(),
                    self.n
                ));
                break;
            }
        }
        stream::fill(&mut self.c, |_| f64::NAN);
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Stencil

/// `stencil.jacobi2d`: `iterations` Jacobi sweeps of the 5-point stencil on an `n × n` grid.
pub struct Jacobi2d;

const JACOBI_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "1024",
        doc: "grid side n (the grid is n × n), or bytes of one f64 grid (\"8MiB\" = 1024)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "100",
        doc: "Jacobi sweeps per repetition",
    },
];

impl Jacobi2d {
    fn side(params: &Params) -> Result<usize, String> {
        // A grid smaller than 3 × 3 has no interior points to update.
        square_side("stencil.jacobi2d", params, 3)
    }

    fn iterations(params: &Params) -> Result<usize, String> {
        to_usize(int_param(params, "iterations")?, "iterations")
    }
}

/// `stencil.jacobi2d`, as `scalelab list` shows it.
pub const JACOBI2D: Description = Description::new(
    "stencil.jacobi2d",
    "2-D 5-point Jacobi sweeps (heat equation), n × n grid (16 B and 4 flops per point per sweep)",
    Backend::Rayon,
    JACOBI_PARAMS,
)
.size_unit("grid side")
.weak_rule(WeakRule::Sqrt);

impl Workload for Jacobi2d {
    fn description(&self) -> &'static Description {
        &JACOBI2D
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map(|s| s.side(8)).unwrap_or(0)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::side(params)?;
        Self::iterations(params)?;
        // Initial grid, two sweep buffers and the reference result; the reference's own three grids
        // live only during `prepare`.
        let need = 6.0 * 8.0 * (n as f64).powi(2);
        target.fits_memory(self.name(), need, "use a smaller `size` (the grid side)")
    }
    fn work(&self, params: &Params) -> Work {
        let (n, it) = (
            Self::side(params).unwrap_or(0),
            Self::iterations(params).unwrap_or(0),
        );
        Work {
            flops: stencil::flops(n, it),
            bytes: stencil::bytes(n, it),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.6
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Ok(Box::new(JacobiInstance::new(params)?))
    }
}

struct JacobiInstance {
    iterations: usize,
    grid: stencil::Jacobi,
    reference: Vec<f64>,
}

impl JacobiInstance {
    fn new(params: &Params) -> anyhow::Result<JacobiInstance> {
        let n = Jacobi2d::side(params).map_err(|e| anyhow!(e))?;
        let iterations = Jacobi2d::iterations(params).map_err(|e| anyhow!(e))?;
        let reference = {
            let mut r = stencil::Jacobi::new(n);
            r.run_serial(iterations);
            r.result().to_vec()
        };
        Ok(JacobiInstance {
            iterations,
            grid: stencil::Jacobi::new(n),
            reference,
        })
    }
}

impl Instance for JacobiInstance {
    fn run(&mut self) {
        self.grid.run(self.iterations);
    }
    fn verify(&mut self) -> Result<(), String> {
        let n = self.grid.n();
        let got = self.grid.result();
        let reference = &self.reference;
        let (bad, first) = scalelab_kernels::bitwise_mismatches(got, |i| reference[i]);
        // Poison the interior of the result (the boundary is never rewritten by a sweep).
        if self.iterations > 0 {
            self.grid.result_mut()[n..(n - 1) * n]
                .par_chunks_mut(n)
                .for_each(|row| row[1..n - 1].fill(f64::NAN));
        }
        match first {
            None => Ok(()),
            Some((i, g, r)) => Err(format!(
                "stencil.jacobi2d: {bad} of {} grid points differ from the serial reference after {} \
                 sweeps; first at row {}, column {}: {g} instead of {r}",
                n * n,
                self.iterations,
                i / n,
                i % n
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Monte Carlo π

/// `pi.montecarlo`: π from `size` uniform samples of the unit square.
pub struct MonteCarloPi;

const PI_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "10M",
        doc: "number of samples (a count, e.g. \"100M\")",
    },
    ParamSpec {
        name: "seed",
        kind: ParamKind::Int,
        default: "42",
        doc: "random seed; chunk c of 65536 samples draws from a generator seeded by (seed, c)",
    },
];

impl MonteCarloPi {
    fn samples(params: &Params) -> Result<u64, String> {
        sample_count("pi.montecarlo", params)
    }
}

/// `pi.montecarlo`, as `scalelab list` shows it.
pub const MONTE_CARLO_PI: Description = Description::new(
    "pi.montecarlo",
    "Monte Carlo π, reproducible at any thread count (3 flops per sample, no memory traffic)",
    Backend::Rayon,
    PI_PARAMS,
)
.size_unit("samples");

impl Workload for MonteCarloPi {
    fn description(&self) -> &'static Description {
        &MONTE_CARLO_PI
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Self::samples(params).unwrap_or(0)
    }
    fn check(&self, params: &Params, _target: &Target) -> Result<(), String> {
        // Constant memory: chunked generators, no arrays.
        Self::samples(params)?;
        int_param(params, "seed")?;
        Ok(())
    }
    fn work(&self, params: &Params) -> Work {
        let n = Self::samples(params).unwrap_or(0);
        Work {
            flops: pi::flops(n),
            bytes: pi::bytes(n),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        // Bound by random number generation, not by floating point: about 3 GFLOP/s per core where
        // the FMA peak is about 58.
        0.05
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Ok(Box::new(PiInstance::new(params)?))
    }
}

struct PiInstance {
    samples: u64,
    seed: u64,
    hits: u64,
    reference: u64,
}

impl PiInstance {
    fn new(params: &Params) -> anyhow::Result<PiInstance> {
        let samples = MonteCarloPi::samples(params).map_err(|e| anyhow!(e))?;
        let seed = int_param(params, "seed").map_err(|e| anyhow!(e))?;
        Ok(PiInstance {
            samples,
            seed,
            hits: u64::MAX,
            reference: pi::hits_serial(samples, seed),
        })
    }
}

impl Instance for PiInstance {
    fn run(&mut self) {
        self.hits = pi::hits(self.samples, self.seed);
    }
    fn verify(&mut self) -> Result<(), String> {
        let hits = std::mem::replace(&mut self.hits, u64::MAX);
        if hits == self.reference {
            Ok(())
        } else {
            Err(format!(
                "pi.montecarlo: {hits} hits in {} samples (π ≈ {}) differ from the serial reference's \
                 {} hits (π ≈ {})",
                self.samples,
                pi::estimate(hits, self.samples),
                self.reference,
                pi::estimate(self.reference, self.samples)
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{find, REGISTRY};

    fn pool(threads: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
    }

    fn params(w: &dyn Workload, overrides: &[(&str, &str)]) -> Params {
        crate::workload::test_params(w.params(), overrides)
    }

    const NAMES: [&str; 8] = [
        "stream.copy",
        "stream.scale",
        "stream.add",
        "stream.triad",
        "reduce.dot",
        "gemm",
        "stencil.jacobi2d",
        "pi.montecarlo",
    ];

    /// Small sizes for the debug-mode tests.
    fn small(name: &str) -> Vec<(&'static str, &'static str)> {
        match name {
            "gemm" => vec![("size", "37")],
            "stencil.jacobi2d" => vec![("size", "29"), ("iterations", "3")],
            "pi.montecarlo" => vec![("size", "70000")],
            _ => vec![("size", "1001")],
        }
    }

    #[test]
    fn every_kernel_workload_is_registered_runs_and_verifies() {
        for name in NAMES {
            let w = find(name).unwrap_or_else(|| panic!("{name} is not registered"));
            assert!(REGISTRY.iter().any(|r| r.name() == name));
            let p = params(w, &small(name));
            w.check(&p, &Target::test(1)).unwrap();
            for t in [1, 3] {
                pool(t).install(|| {
                    let mut inst = w.prepare(&p, &Target::test(1)).unwrap();
                    inst.run();
                    for rep in 0..2 {
                        inst.run();
                        inst.verify()
                            .unwrap_or_else(|e| panic!("{name} t={t} rep={rep}: {e}"));
                    }
                    // A repetition that did not run is caught (the output was poisoned).
                    assert!(
                        inst.verify().is_err(),
                        "{name}: verify passed without a run"
                    );
                });
            }
        }
    }

    #[test]
    fn both_store_modes_verify() {
        for stores in STORES {
            let w = Stream(stream::Op::Add);
            let p = params(&w, &[("size", "999"), ("stores", stores)]);
            pool(2).install(|| {
                let mut inst = w.prepare(&p, &Target::test(1)).unwrap();
                inst.run();
                inst.verify().unwrap_or_else(|e| panic!("{stores}: {e}"));
            });
        }
    }

    #[test]
    fn every_gemm_variant_verifies() {
        for v in GEMM_VARIANTS {
            let p = params(&Gemm, &[("size", "45"), ("variant", v)]);
            pool(2).install(|| {
                let mut inst = Gemm.prepare(&p, &Target::test(1)).unwrap();
                inst.run();
                inst.verify().unwrap_or_else(|e| panic!("{v}: {e}"));
            });
        }
    }

    #[test]
    fn work_sizes_and_units() {
        let p = params(&Stream(stream::Op::Triad), &[]);
        assert_eq!(Stream(stream::Op::Triad).problem_size(&p), 8 << 20);
        assert_eq!(
            Stream(stream::Op::Triad).work(&p).bytes,
            24.0 * (8 << 20) as f64
        );
        let p = params(&Gemm, &[("size", "8MiB")]);
        assert_eq!(Gemm.problem_size(&p), 1024);
        assert_eq!(Gemm.work(&p).flops, 2.0 * 1024f64.powi(3));
        assert_eq!(Gemm.size_unit(), "n");
        assert_eq!(Gemm.weak_rule(), WeakRule::Cbrt);
        let p = params(&Jacobi2d, &[("size", "10"), ("iterations", "7")]);
        assert_eq!(Jacobi2d.work(&p).flops, 4.0 * 64.0 * 7.0);
        assert_eq!(Jacobi2d.weak_rule(), WeakRule::Sqrt);
        let p = params(&MonteCarloPi, &[("size", "1M")]);
        assert_eq!(
            MonteCarloPi.work(&p),
            Work {
                flops: 3e6,
                bytes: 0.0
            }
        );
        assert_eq!(MonteCarloPi.size_unit(), "samples");
        let p = params(&Gemm, &[("variant", "naive")]);
        assert!(Gemm.expected_efficiency(&p) < params_eff("faer"));
    }

    fn params_eff(v: &str) -> f64 {
        Gemm.expected_efficiency(&params(&Gemm, &[("variant", v)]))
    }

    #[test]
    fn bad_parameters_are_errors_not_panics() {
        let huge = params(&Gemm, &[("size", "10000000")]);
        let msg = Gemm.check(&huge, &Target::test(1)).unwrap_err();
        assert!(msg.contains("smaller `size`"), "{msg}");
        let tiny = params(&Jacobi2d, &[("size", "2")]);
        assert!(Jacobi2d
            .check(&tiny, &Target::test(1))
            .unwrap_err()
            .contains("at least 3"));
        assert!(Jacobi2d.prepare(&tiny, &Target::test(1)).is_err());
        let bytes = params(&MonteCarloPi, &[("size", "1MiB")]);
        assert!(MonteCarloPi
            .check(&bytes, &Target::test(1))
            .unwrap_err()
            .contains("not bytes"));
        let empty = Params::default();
        assert!(Gemm.check(&empty, &Target::test(1)).is_err());
        assert!(Stream(stream::Op::Copy)
            .prepare(&empty, &Target::test(1))
            .is_err());
        assert_eq!(Dot.work(&empty), Work::default());
        let huge_stream = params(&Stream(stream::Op::Triad), &[("size", "1TiB")]);
        assert!(Stream(stream::Op::Triad)
            .check(&huge_stream, &Target::test(1))
            .is_err());
    }

    #[test]
    fn dot_exact_value_matches_a_direct_sum() {
        for n in [0usize, 1, 207, 208, 209, 1000] {
            let direct: i128 = (0..n).map(|i| (dot_x(i) * dot_y(i)) as i128).sum();
            assert_eq!(dot_exact(n), direct, "n={n}");
        }
    }

    // A fast wrong answer must fail verification: corrupt one output value of each instance.

    #[test]
    fn corrupted_stream_fails() {
        let p = params(&Stream(stream::Op::Triad), &[("size", "1000")]);
        let mut inst = StreamInstance::new(stream::Op::Triad, &p).unwrap();
        inst.run();
        inst.arrays.output_mut(stream::Op::Triad)[123] += 0.5;
        let msg = inst.verify().unwrap_err();
        assert!(
            msg.contains("1 of 1000") && msg.contains("index 123"),
            "{msg}"
        );
    }

    #[test]
    fn corrupted_dot_fails() {
        let p = params(&Dot, &[("size", "5000")]);
        let mut inst = DotInstance::new(&p).unwrap();
        inst.run();
        inst.result += 1.0;
        let msg = inst.verify().unwrap_err();
        assert!(msg.contains("differs from the exact value"), "{msg}");
    }

    #[test]
    fn corrupted_gemm_fails() {
        for v in ["tuned", "naive"] {
            let p = params(&Gemm, &[("size", "64"), ("variant", v)]);
            let mut inst = GemmInstance::new(&p).unwrap();
            inst.run();
            inst.c[17 * 64 + 5] += 1e-9;
            let msg = inst.verify().unwrap_err();
            assert!(msg.contains("row 17") && msg.contains("Freivalds"), "{msg}");
        }
    }

    #[test]
    fn corrupted_stencil_fails() {
        let p = params(&Jacobi2d, &[("size", "20"), ("iterations", "4")]);
        let mut inst = JacobiInstance::new(&p).unwrap();
        inst.run();
        inst.grid.result_mut()[5 * 20 + 7] += 1e-12;
        let msg = inst.verify().unwrap_err();
        assert!(msg.contains("row 5, column 7"), "{msg}");
    }

    #[test]
    fn corrupted_pi_fails() {
        let p = params(&MonteCarloPi, &[("size", "100000")]);
        let mut inst = PiInstance::new(&p).unwrap();
        inst.run();
        inst.hits -= 1;
        let msg = inst.verify().unwrap_err();
        assert!(msg.contains("serial reference"), "{msg}");
    }
}

//! The HPL workloads: `hpl.lu` (shared memory, rayon threads) and `mpi.hpl.lu` (feature `mpi`,
//! 2-D block-cyclic over ranks), adapters of `scalelab_kernels::hpl` and
//! `scalelab_kernels::mpi::hpl`.
//!
//! One repetition is what HPL times: the LU factorisation with partial pivoting of a seeded
//! `n × n` system and its solve. Work is HPL's count, `2/3·n³ + 3/2·n²` flops, so GFLOP/s read
//! off `summary.csv` compare directly with HPL's and with the TOP500's Rmax; bytes are the
//! blocked algorithm's modelled traffic (the kernel's module documentation gives the model).
//!
//! `verify` is HPL's own acceptance test: the scaled residual
//! `‖Ax−b‖∞ / (ε (‖A‖∞ ‖x‖∞ + ‖b‖∞) n)` below 16, with A and b regenerated from the seed, so a
//! wrong answer is a `verify_failed` point, never a fast one. It then refills the matrix (the run
//! overwrote it with its factors) and poisons the solution, so a repetition that skipped its work
//! fails.
//!
//! Parameters: `size` (the order n), `nb` (the block size: panel width and the DGEMM's inner
//! dimension), `seed`. `nb` above n is refused: the whole matrix would be one panel and the tuned
//! DGEMM would never run, which is not what a sweep over nb means to measure.

use anyhow::anyhow;
use scalelab_kernels::hpl;

use super::{
    gib, int_param, size_param, square_side, to_usize, Backend, Description, Instance, ParamKind,
    ParamSpec, Params, Reporting, Target, WeakRule, Work, Workload,
};

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "2048",
        doc: "matrix order n (HPL's N), or bytes of one n × n f64 matrix (\"32MiB\" = 2048)",
    },
    ParamSpec {
        name: "nb",
        kind: ParamKind::Int,
        default: "128",
        doc: "block size (HPL's NB): panel width and inner dimension of the trailing DGEMM, 1..=n",
    },
    ParamSpec {
        name: "seed",
        kind: ParamKind::Int,
        default: "42",
        doc: "seed of the random matrix and right-hand side (entries uniform in [-0.5, 0.5))",
    },
];

/// `(n, nb, seed)` of a point, each problem worded with the key to change.
fn shape(name: &str, params: &Params) -> Result<(usize, usize, u64), String> {
    let n = square_side(name, params, 1)?;
    let nb = to_usize(int_param(params, "nb")?, "nb")?;
    if nb > n {
        return Err(format!(
            "{name}: `nb` = {nb} is larger than the matrix order n = {n} (from `size`): the whole \
             matrix would be one panel and the tuned DGEMM would not run; use an `nb` of at most \
             {n} (HPL's usual range is 32 to 256), or a larger `size`"
        ));
    }
    let seed = int_param(params, "seed")?;
    Ok((n, nb, seed))
}

fn work(name: &str, params: &Params) -> Work {
    match shape(name, params) {
        Ok((n, nb, _)) => Work {
            flops: hpl::flops(n),
            bytes: hpl::bytes(n, nb),
        },
        Err(_) => Work::default(),
    }
}

fn problem_size(params: &Params) -> u64 {
    size_param(params).map_or(0, |s| s.side(8))
}

// ---------------------------------------------------------------------------------------------
// Shared memory

/// `hpl.lu`: HPL on one process, the rayon threads of the point.
pub struct Lu;

/// `hpl.lu`, as `scalelab list` shows it: HPL's GFLOP/s, bounded by the FMA peak.
pub const LU: Description = Description::new(
    "hpl.lu",
    "HPL: blocked LU with partial pivoting + solve, tuned-DGEMM update, HPL's residual check \
     (2/3·n³ + 3/2·n² flops)",
    Backend::Rayon,
    PARAMS,
)
.size_unit("n")
.weak_rule(WeakRule::Cbrt)
.reporting(Reporting {
    hpl: true,
    ..Reporting::FMA_BOUND
});

impl Workload for Lu {
    fn description(&self) -> &'static Description {
        &LU
    }
    fn problem_size(&self, params: &Params) -> u64 {
        problem_size(params)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let (n, nb, _) = shape(self.name(), params)?;
        // [A | b] and the negated L panel the DGEMM reads.
        let (n, nb) = (n as f64, nb as f64);
        let need = 8.0 * n * (n + 1.0) + 8.0 * n * nb;
        target.fits_memory(
            self.name(),
            need,
            &format!(
                "[A | b] takes 8·n·(n+1) = {} at n = {n}; use a smaller `size`",
                gib(8.0 * n * (n + 1.0))
            ),
        )
    }
    fn work(&self, params: &Params) -> Work {
        work(self.name(), params)
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.5
    }
    fn prepare(&self, params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        let (n, nb, seed) = shape(self.name(), params).map_err(|e| anyhow!(e))?;
        let lu = hpl::Lu::new(n, nb, seed).map_err(|e| anyhow!("hpl.lu: {e}"))?;
        Ok(Box::new(LuInstance {
            lu,
            scaled: f64::NAN,
        }))
    }
}

struct LuInstance {
    lu: hpl::Lu,
    /// The last checked repetition's scaled residual (recorded as a metric).
    scaled: f64,
}

impl Instance for LuInstance {
    fn reset(&mut self) {
        self.lu.reset();
    }
    fn run(&mut self) {
        self.lu.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.scaled = f64::NAN;
        let res = self.lu.check()?;
        self.scaled = res.scaled;
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        if self.scaled.is_finite() {
            vec![("residual", self.scaled)]
        } else {
            Vec::new()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// MPI

/// `mpi.hpl.lu`: HPL on a `P × Q` grid of ranks (`P ≤ Q`), each rank on its rayon threads.
#[cfg(feature = "mpi")]
pub struct MpiLu;

/// `mpi.hpl.lu`, as `scalelab list` shows it (the workload needs the `mpi` feature; its
/// description does not). Its GFLOP/s are HPL's.
pub const MPI_LU: Description = Description::new(
    "mpi.hpl.lu",
    "HPL over MPI: 2-D block-cyclic LU on a P × Q grid (P ≤ Q), HPL's residual check \
     (2/3·n³ + 3/2·n² flops)",
    Backend::Mpi,
    PARAMS,
)
.size_unit("n")
.weak_rule(WeakRule::Cbrt)
.reporting(Reporting {
    hpl: true,
    ..Reporting::PLAIN
});

#[cfg(feature = "mpi")]
impl Workload for MpiLu {
    fn description(&self) -> &'static Description {
        &MPI_LU
    }
    fn problem_size(&self, params: &Params) -> u64 {
        problem_size(params)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let (n, nb, _) = shape(self.name(), params)?;
        // Per rank: its share of [A | b], the gathered panel and three panel-sized buffers
        // (send, receive, negated L), and the rows of U.
        let ranks = f64::from(target.resources.ranks.max(1));
        let (n, nb) = (n as f64, nb as f64);
        let need = 8.0 * n * (n + 1.0) / ranks + 4.0 * 8.0 * n * nb + 8.0 * nb * (n + 1.0);
        target.fits_memory(
            self.name(),
            need,
            "use a smaller `size` (the matrix order) or `nb`",
        )
    }
    fn work(&self, params: &Params) -> Work {
        work(self.name(), params)
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.4
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(super::not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &super::Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let (n, nb, seed) = shape(self.name(), params).map_err(|e| anyhow!(e))?;
        let h = scalelab_kernels::mpi::hpl::Hpl::new(comm, n, nb, seed)
            .map_err(|e| anyhow!("mpi.hpl.lu: {e}"))?;
        Ok(Box::new(MpiLuInstance {
            h,
            scaled: f64::NAN,
        }))
    }
}

#[cfg(feature = "mpi")]
struct MpiLuInstance {
    h: scalelab_kernels::mpi::hpl::Hpl,
    scaled: f64,
}

#[cfg(feature = "mpi")]
impl Instance for MpiLuInstance {
    fn reset(&mut self) {
        self.h.reset();
    }
    fn run(&mut self) {
        self.h.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.scaled = f64::NAN;
        let res = self.h.check()?;
        self.scaled = res.scaled;
        Ok(())
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let (p, q) = self.h.grid();
        let mut m = vec![
            ("comm_s", self.h.comm_s()),
            ("grid_p", p as f64),
            ("grid_q", q as f64),
        ];
        if self.scaled.is_finite() {
            m.push(("residual", self.scaled));
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::find;

    fn params(overrides: &[(&str, &str)]) -> Params {
        crate::workload::test_params(PARAMS, overrides)
    }

    #[test]
    fn registered_with_hpl_counts() {
        let w = find("hpl.lu").expect("hpl.lu is registered");
        let p = params(&[("size", "1000"), ("nb", "100")]);
        w.check(&p, &Target::test(1)).unwrap();
        let work = w.work(&p);
        assert_eq!(work.flops, 2.0 / 3.0 * 1e9 + 1.5e6);
        assert_eq!(work.bytes, hpl::bytes(1000, 100));
        assert_eq!(w.problem_size(&p), 1000);
        assert_eq!(w.size_unit(), "n");
        // A byte size means one n × n f64 matrix.
        let p = params(&[("size", "32MiB")]);
        assert_eq!(w.problem_size(&p), 2048);
    }

    #[test]
    fn bad_nb_and_n_name_the_key() {
        let p = params(&[("size", "100"), ("nb", "101")]);
        assert_eq!(
            Lu.check(&p, &Target::test(1)).unwrap_err(),
            "hpl.lu: `nb` = 101 is larger than the matrix order n = 100 (from `size`): the whole \
             matrix would be one panel and the tuned DGEMM would not run; use an `nb` of at most \
             100 (HPL's usual range is 32 to 256), or a larger `size`"
        );
        let mut p = params(&[]);
        p.0.remove("nb");
        assert!(Lu.check(&p, &Target::test(1)).unwrap_err().contains("`nb`"));
        let p = params(&[("size", "8B")]);
        let err = Lu.check(&p, &Target::test(1)).unwrap_err();
        assert!(
            err.contains("`nb` = 128 is larger than the matrix order n = 1"),
            "{err}"
        );
        // 16 GiB test node: n = 50000 needs 18.6 GiB.
        let p = params(&[("size", "50000")]);
        let err = Lu.check(&p, &Target::test(1)).unwrap_err();
        assert!(err.contains("use a smaller `size`"), "{err}");
    }

    #[test]
    fn every_repetition_is_checked_and_a_wrong_answer_fails() {
        let p = params(&[("size", "150"), ("nb", "32")]);
        let mut inst = Lu.prepare(&p, &Target::test(1)).unwrap();
        // A warm-up (run, no check) leaves the factors in place; `reset` restores the matrix, as
        // the point runner calls it before every run.
        inst.reset();
        inst.run();
        for _ in 0..2 {
            inst.reset();
            inst.run();
            inst.verify().unwrap();
            let m = inst.metrics();
            assert_eq!(m[0].0, "residual");
            assert!(m[0].1 < hpl::THRESHOLD);
        }
        // No run since the last check: the poisoned solution fails.
        let err = inst.verify().unwrap_err();
        assert!(err.contains("hpl n=150 nb=32: scaled residual"), "{err}");
    }
}

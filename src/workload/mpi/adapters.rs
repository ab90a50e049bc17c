//! The MPI workloads' code (feature `mpi`); see the parent module.

use anyhow::{anyhow, bail};
use scalelab_kernels::mpi::{collective, pi as mpi_pi, pingpong, stencil as mpi_stencil, summa};
use scalelab_kernels::{gemm, pi, stencil};

use super::{ALLGATHER, ALLREDUCE, BCAST, GEMM, PI, PINGPONG, STENCIL};
use crate::workload::{
    int_param, not_under_mpi, sample_count, size_param, square_side, to_usize, Comm, Description,
    Instance, Params, Target, Work, Workload,
};

fn iterations(params: &Params) -> Result<usize, String> {
    to_usize(int_param(params, "iterations")?, "iterations")
}

/// A message size in bytes: `"4KiB"` or a plain count, which means bytes too.
fn message_bytes(params: &Params) -> Result<usize, String> {
    to_usize(size_param(params)?.value(), "size")
}

/// Largest message accepted (the MPI count of a message is a C int).
const MAX_MESSAGE: usize = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Ping-pong

/// `mpi.pingpong`: ranks 0 and 1 exchange `size`-byte messages `iterations` times.
pub struct PingPong;

impl Workload for PingPong {
    fn description(&self) -> &'static Description {
        &PINGPONG
    }
    fn problem_size(&self, params: &Params) -> u64 {
        message_bytes(params).map_or(0, |b| b as u64)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let b = message_bytes(params)?;
        iterations(params)?;
        if b > MAX_MESSAGE {
            return Err(format!(
                "mpi.pingpong: messages above 1 GiB are not supported (size = {b} bytes)"
            ));
        }
        // The rank count is not a parameter: prepare_mpi refuses fewer than 2 ranks.
        // A send and a receive buffer on every rank.
        target.fits_memory(self.name(), 2.0 * b as f64, "use a smaller `size`")
    }
    fn work(&self, params: &Params) -> Work {
        let (b, it) = (
            message_bytes(params).unwrap_or(0),
            iterations(params).unwrap_or(0),
        );
        Work {
            flops: 0.0,
            bytes: pingpong::bytes(b, it),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.2
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let b = message_bytes(params).map_err(|e| anyhow!(e))?;
        let it = iterations(params).map_err(|e| anyhow!(e))?;
        let pp = pingpong::PingPong::new(comm, b, it).map_err(|e| anyhow!("mpi.pingpong: {e}"))?;
        Ok(Box::new(PingPongInstance(pp)))
    }
}

struct PingPongInstance(pingpong::PingPong);

impl Instance for PingPongInstance {
    fn run(&mut self) {
        self.0.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.0.check()
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![("latency_us", self.0.latency_us())]
    }
}

// ---------------------------------------------------------------------------------------------
// Collectives

/// `mpi.allreduce`, `mpi.bcast`, `mpi.allgather`: one collective `iterations` times on `size`
/// bytes (`size / 8` doubles, at least one) per rank.
pub struct Collective(pub collective::Op);

impl Collective {
    fn elements(params: &Params) -> Result<usize, String> {
        let b = message_bytes(params)?;
        if b > MAX_MESSAGE {
            return Err(format!(
                "messages above 1 GiB per rank are not supported (size = {b} bytes)"
            ));
        }
        Ok((b / 8).max(1))
    }
}

impl Workload for Collective {
    fn description(&self) -> &'static Description {
        match self.0 {
            collective::Op::Allreduce => &ALLREDUCE,
            collective::Op::Bcast => &BCAST,
            collective::Op::Allgather => &ALLGATHER,
        }
    }
    fn problem_size(&self, params: &Params) -> u64 {
        message_bytes(params).map_or(0, |b| b as u64)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::elements(params).map_err(|e| format!("{}: {e}", self.name()))?;
        iterations(params)?;
        // A send buffer, a receive buffer (all ranks' contributions for allgather) and the
        // expected values, per rank.
        let ranks = f64::from(target.resources.ranks.max(1));
        let doubles = match self.0 {
            collective::Op::Allgather => n as f64 * (1.0 + 2.0 * ranks),
            _ => 3.0 * n as f64,
        };
        target.fits_memory(self.name(), 8.0 * doubles, "use a smaller `size`")
    }
    fn work(&self, params: &Params) -> Work {
        let (n, it) = (
            Self::elements(params).unwrap_or(0),
            iterations(params).unwrap_or(0),
        );
        Work {
            flops: 0.0,
            bytes: collective::bytes(n, it),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.2
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let n = Self::elements(params).map_err(|e| anyhow!("{}: {e}", self.name()))?;
        let it = iterations(params).map_err(|e| anyhow!(e))?;
        Ok(Box::new(CollectiveInstance(collective::Collective::new(
            self.0, comm, n, it,
        ))))
    }
}

struct CollectiveInstance(collective::Collective);

impl Instance for CollectiveInstance {
    fn run(&mut self) {
        self.0.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.0.check()
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let t = self.0.elapsed();
        let busbw = if t > 0.0 {
            self.0.bus_bytes() / t / 1e9
        } else {
            0.0
        };
        vec![("latency_us", self.0.latency_us()), ("busbw_gbs", busbw)]
    }
}

// ---------------------------------------------------------------------------------------------
// Stencil

/// `mpi.stencil`: 2-D Jacobi on a global `size × size` grid, 2-D decomposition, overlapped halo
/// exchange, each block swept by the rank's rayon threads.
pub struct Stencil;

impl Stencil {
    fn side(params: &Params) -> Result<usize, String> {
        square_side("mpi.stencil", params, 3)
    }
}

impl Workload for Stencil {
    fn description(&self) -> &'static Description {
        &STENCIL
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map_or(0, |s| s.side(8))
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::side(params)? as f64;
        iterations(params)?;
        // Every rank: three padded grids and its block of the reference (4·8·n²/ranks); rank 0
        // also runs the serial reference on the whole grid (three n × n grids).
        let ranks = f64::from(target.resources.ranks.max(1));
        target.fits_memory_with_root(
            self.name(),
            4.0 * 8.0 * n * n / ranks,
            3.0 * 8.0 * n * n,
            "use a smaller `size` (the global grid side)",
        )
    }
    fn work(&self, params: &Params) -> Work {
        let (n, it) = (
            Self::side(params).unwrap_or(0),
            iterations(params).unwrap_or(0),
        );
        Work {
            flops: stencil::flops(n, it),
            bytes: stencil::bytes(n, it),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.5
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let n = Self::side(params).map_err(|e| anyhow!(e))?;
        let it = iterations(params).map_err(|e| anyhow!(e))?;
        let s =
            mpi_stencil::HaloJacobi::new(comm, n, it).map_err(|e| anyhow!("mpi.stencil: {e}"))?;
        Ok(Box::new(StencilInstance(s)))
    }
}

struct StencilInstance(mpi_stencil::HaloJacobi);

impl Instance for StencilInstance {
    fn run(&mut self) {
        self.0.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.0.check()
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("comm_s", self.0.comm_s()),
            ("compute_s", self.0.compute_s()),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// DGEMM

/// `mpi.gemm`: SUMMA DGEMM on a 2-D process grid, local products with the tuned kernel.
pub struct Gemm;

impl Gemm {
    fn order(params: &Params) -> Result<usize, String> {
        square_side("mpi.gemm", params, 1)
    }
}

impl Workload for Gemm {
    fn description(&self) -> &'static Description {
        &GEMM
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map_or(0, |s| s.side(8))
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let n = Self::order(params)? as f64;
        // Every rank: its blocks of A, B and C, and row and column panels (about 4·8·n²/ranks).
        let ranks = f64::from(target.resources.ranks.max(1));
        target.fits_memory(
            self.name(),
            4.0 * 8.0 * n * n / ranks,
            "use a smaller `size` (the matrix order)",
        )
    }
    fn work(&self, params: &Params) -> Work {
        let n = Self::order(params).unwrap_or(0);
        Work {
            flops: gemm::flops(n),
            bytes: gemm::bytes(n),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.6
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let n = Self::order(params).map_err(|e| anyhow!(e))?;
        let g = summa::Summa::new(comm, n).map_err(|e| anyhow!("mpi.gemm: {e}"))?;
        Ok(Box::new(GemmInstance(g)))
    }
}

struct GemmInstance(summa::Summa);

impl Instance for GemmInstance {
    fn run(&mut self) {
        self.0.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.0.check()
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("comm_s", self.0.comm_s()),
            ("compute_s", self.0.compute_s()),
        ]
    }
}

// ---------------------------------------------------------------------------------------------
// Monte Carlo π

/// `mpi.pi`: Monte Carlo π with the chunks split statically over ranks and threads.
pub struct Pi;

impl Pi {
    fn samples(params: &Params) -> Result<u64, String> {
        sample_count("mpi.pi", params)
    }
}

impl Workload for Pi {
    fn description(&self) -> &'static Description {
        &PI
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
        0.05
    }
    fn prepare(&self, _params: &Params, _target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        Err(not_under_mpi(self.name()))
    }
    fn prepare_mpi(
        &self,
        params: &Params,
        _target: &Target,
        comm: &Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        use mpi::traits::Communicator;
        let samples = Self::samples(params).map_err(|e| anyhow!(e))?;
        let seed = int_param(params, "seed").map_err(|e| anyhow!(e))?;
        if samples == 0 {
            bail!("mpi.pi: `size` must be at least 1 sample");
        }
        let root = comm.rank() == 0;
        Ok(Box::new(PiInstance {
            comm: comm.duplicate(),
            samples,
            seed,
            hits: None,
            reference: root.then(|| pi::hits_serial(samples, seed)),
        }))
    }
}

struct PiInstance {
    comm: Comm,
    samples: u64,
    seed: u64,
    /// Rank 0's total of the last run (`None` elsewhere, and after a check).
    hits: Option<u64>,
    /// The serial count, on rank 0.
    reference: Option<u64>,
}

impl Instance for PiInstance {
    fn run(&mut self) {
        self.hits = mpi_pi::hits(&self.comm, self.samples, self.seed);
    }
    fn verify(&mut self) -> Result<(), String> {
        let Some(want) = self.reference else {
            return Ok(());
        };
        match self.hits.take() {
            Some(h) if h == want => Ok(()),
            Some(h) => Err(format!(
                "mpi.pi: {h} hits in {} samples (π ≈ {}) differ from the serial reference's {want} \
                 hits (π ≈ {})",
                self.samples,
                pi::estimate(h, self.samples),
                pi::estimate(want, self.samples)
            )),
            None => Err("mpi.pi: rank 0 has no hit count (checked without a run)".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{find, Backend, WeakRule, REGISTRY};

    fn params(w: &dyn Workload, overrides: &[(&str, &str)]) -> Params {
        crate::workload::test_params(w.params(), overrides)
    }

    const NAMES: [&str; 7] = [
        "mpi.pingpong",
        "mpi.allreduce",
        "mpi.bcast",
        "mpi.allgather",
        "mpi.stencil",
        "mpi.gemm",
        "mpi.pi",
    ];

    #[test]
    fn every_mpi_workload_is_registered_with_valid_defaults() {
        for name in NAMES {
            let w = find(name).unwrap_or_else(|| panic!("{name} is not registered"));
            assert!(REGISTRY.iter().any(|r| r.name() == name));
            assert_eq!(w.backend(), Backend::Mpi);
            let p = params(w, &[]);
            w.check(&p, &Target::test(1))
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            // Without MPI, prepare says where these run.
            let err = w
                .prepare(&p, &Target::test(1))
                .err()
                .expect("prepare fails")
                .to_string();
            assert!(err.contains("mpirun"), "{name}: {err}");
        }
    }

    #[test]
    fn work_counts() {
        let p = params(&PingPong, &[("size", "4MiB"), ("iterations", "10")]);
        assert_eq!(PingPong.work(&p).bytes, 2.0 * 4.0 * 1048576.0 * 10.0);
        assert_eq!(PingPong.work(&p).flops, 0.0);
        assert_eq!(PingPong.problem_size(&p), 4 << 20);
        // A count means bytes too.
        let p = params(&PingPong, &[("size", "1"), ("iterations", "3")]);
        assert_eq!(PingPong.work(&p).bytes, 6.0);
        let all = Collective(collective::Op::Allreduce);
        let p = params(&all, &[("size", "1KiB"), ("iterations", "4")]);
        assert_eq!(all.work(&p).bytes, 4096.0);
        assert_eq!(all.work(&p).flops, 0.0);
        // Smaller than a double: one double.
        let p = params(&all, &[("size", "3B"), ("iterations", "1")]);
        assert_eq!(all.work(&p).bytes, 8.0);
        let p = params(&Stencil, &[("size", "10"), ("iterations", "7")]);
        assert_eq!(Stencil.work(&p).flops, 4.0 * 64.0 * 7.0);
        assert_eq!(Stencil.work(&p).bytes, 16.0 * 64.0 * 7.0);
        assert_eq!(Stencil.weak_rule(), WeakRule::Sqrt);
        let p = params(&Gemm, &[("size", "100")]);
        assert_eq!(Gemm.work(&p).flops, 2e6);
        assert_eq!(Gemm.weak_rule(), WeakRule::Cbrt);
        let p = params(&Pi, &[("size", "1M")]);
        assert_eq!(Pi.work(&p).flops, 3e6);
    }

    #[test]
    fn bad_parameters_are_errors() {
        let p = params(&Stencil, &[("size", "2")]);
        assert!(Stencil
            .check(&p, &Target::test(1))
            .unwrap_err()
            .contains("at least 3"));
        let p = params(&Pi, &[("size", "1MiB")]);
        assert!(Pi
            .check(&p, &Target::test(1))
            .unwrap_err()
            .contains("not bytes"));
        let p = params(&PingPong, &[("size", "2GiB")]);
        assert!(PingPong.check(&p, &Target::test(1)).is_err());
        assert!(Gemm.check(&Params::default(), &Target::test(1)).is_err());
        assert_eq!(Stencil.work(&Params::default()), Work::default());
    }
}

//! Adapters from the MPI kernels of `scalelab_kernels::mpi` to [`Workload`]: `mpi.pingpong`,
//! `mpi.allreduce`, `mpi.bcast`, `mpi.allgather`, `mpi.stencil`, `mpi.gemm` and `mpi.pi`.
//!
//! These workloads exist only in builds with the `mpi` feature. The point runner calls
//! [`Workload::prepare_mpi`] on every rank (inside the rank's rayon pool), times `run` between
//! barriers, and combines the ranks: the time and every metric are the maximum over ranks, and a
//! repetition verifies only if `verify` passes on every rank. So each instance verifies its own
//! part, exactly or within a stated rounding bound, and poisons it afterwards (like the rayon
//! adapters) so that the next repetition is checked on values it produced itself:
//!
//! * ping-pong: the last message each of ranks 0 and 1 received holds the peer's byte pattern of the
//!   last iteration's parity;
//! * collectives: every received value exactly (integer-valued doubles, so sums are exact);
//! * stencil: the rank's block bitwise against the serial reference, computed on rank 0 in
//!   `prepare_mpi` and sent to each rank;
//! * DGEMM: Freivalds' check of the rank's block of C against `A·(B·x)` computed in `prepare_mpi`;
//! * π: rank 0's total hit count against the serial count computed in `prepare_mpi`.
//!
//! Metrics: `latency_us` (ping-pong: one-way time per message; collectives: time per call),
//! `busbw_gbs` (collectives: nccl-tests' bus bandwidth, which needs the rank count that `work` does
//! not see), `comm_s` and `compute_s` (stencil and DGEMM: time in communication and in computation).
//!
//! Plain [`Workload::prepare`] (a point not launched under MPI) is an error that says so.

use anyhow::{anyhow, bail};
use scalelab_kernels::mpi::{collective, pi as mpi_pi, pingpong, stencil as mpi_stencil, summa};
use scalelab_kernels::{gemm, pi, stencil};

use super::{
    int_param, sample_count, size_param, square_side, to_usize, Backend, Comm, Instance, ParamKind,
    ParamSpec, Params, Target, WeakRule, Work, Workload,
};

fn iterations(params: &Params) -> Result<usize, String> {
    to_usize(int_param(params, "iterations")?, "iterations")
}

/// A message size in bytes: `"4KiB"` or a plain count, which means bytes too.
fn message_bytes(params: &Params) -> Result<usize, String> {
    to_usize(size_param(params)?.value(), "size")
}

fn not_under_mpi(name: &str) -> anyhow::Error {
    anyhow!(
        "{name} is an MPI workload: its points run under mpirun (`scalelab run` launches them), \
         and this process was asked to prepare it without MPI"
    )
}

/// Largest message accepted (the MPI count of a message is a C int).
const MAX_MESSAGE: usize = 1 << 30;

// ---------------------------------------------------------------------------------------------
// Ping-pong

/// `mpi.pingpong`: ranks 0 and 1 exchange `size`-byte messages `iterations` times.
pub struct PingPong;

const PINGPONG_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "8B",
        doc: "message bytes (\"8B\", \"4MiB\"; a plain count means bytes too)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "1000",
        doc: "round trips per repetition (OSU: 10000 up to 8 KiB, 1000 above)",
    },
];

impl Workload for PingPong {
    fn name(&self) -> &'static str {
        "mpi.pingpong"
    }
    fn summary(&self) -> &'static str {
        "MPI ping-pong between ranks 0 and 1 (OSU latency / IMB PingPong; 2·size bytes per round trip)"
    }
    fn backend(&self) -> Backend {
        Backend::Mpi
    }
    fn params(&self) -> &'static [ParamSpec] {
        PINGPONG_PARAMS
    }
    fn problem_size(&self, params: &Params) -> u64 {
        message_bytes(params).map_or(0, |b| b as u64)
    }
    fn size_unit(&self) -> &'static str {
        "bytes"
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

const COLLECTIVE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "8KiB",
        doc: "message bytes per rank (\"8B\", \"1MiB\"; a plain count means bytes too), sent as \
              size/8 doubles (at least one)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "100",
        doc: "calls of the collective per repetition",
    },
];

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
    fn name(&self) -> &'static str {
        match self.0 {
            collective::Op::Allreduce => "mpi.allreduce",
            collective::Op::Bcast => "mpi.bcast",
            collective::Op::Allgather => "mpi.allgather",
        }
    }
    fn summary(&self) -> &'static str {
        match self.0 {
            collective::Op::Allreduce => {
                "MPI_Allreduce (sum of doubles), exact check; bytes = message per call (algbw)"
            }
            collective::Op::Bcast => {
                "MPI_Bcast from rank 0, exact check; bytes = message per call (algbw)"
            }
            collective::Op::Allgather => {
                "MPI_Allgather, exact check; bytes = each rank's contribution per call (algbw)"
            }
        }
    }
    fn backend(&self) -> Backend {
        Backend::Mpi
    }
    fn params(&self) -> &'static [ParamSpec] {
        COLLECTIVE_PARAMS
    }
    fn problem_size(&self, params: &Params) -> u64 {
        message_bytes(params).map_or(0, |b| b as u64)
    }
    fn size_unit(&self) -> &'static str {
        "bytes"
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

const STENCIL_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "1024",
        doc: "global grid side n (a count), or bytes of one n × n f64 grid (\"8MiB\" = 1024)",
    },
    ParamSpec {
        name: "iterations",
        kind: ParamKind::Int,
        default: "100",
        doc: "sweeps per repetition (a halo exchange before each)",
    },
];

impl Stencil {
    fn side(params: &Params) -> Result<usize, String> {
        square_side("mpi.stencil", params, 3)
    }
}

impl Workload for Stencil {
    fn name(&self) -> &'static str {
        "mpi.stencil"
    }
    fn summary(&self) -> &'static str {
        "2-D Jacobi, 2-D Cartesian blocks, halo exchange overlapped with the interior (MPI × rayon)"
    }
    fn backend(&self) -> Backend {
        Backend::Mpi
    }
    fn params(&self) -> &'static [ParamSpec] {
        STENCIL_PARAMS
    }
    fn weak_rule(&self) -> WeakRule {
        WeakRule::Sqrt
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map_or(0, |s| s.side(8))
    }
    fn size_unit(&self) -> &'static str {
        "grid side"
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

const GEMM_PARAMS: &[ParamSpec] = &[ParamSpec {
    name: "size",
    kind: ParamKind::Size,
    default: "1024",
    doc: "matrix order n, or bytes of one n × n f64 matrix (\"8MiB\" = 1024)",
}];

impl Gemm {
    fn order(params: &Params) -> Result<usize, String> {
        square_side("mpi.gemm", params, 1)
    }
}

impl Workload for Gemm {
    fn name(&self) -> &'static str {
        "mpi.gemm"
    }
    fn summary(&self) -> &'static str {
        "distributed DGEMM C = A·B, SUMMA on a 2-D process grid, tuned local kernel (2n³ flops)"
    }
    fn backend(&self) -> Backend {
        Backend::Mpi
    }
    fn params(&self) -> &'static [ParamSpec] {
        GEMM_PARAMS
    }
    fn weak_rule(&self) -> WeakRule {
        WeakRule::Cbrt
    }
    fn problem_size(&self, params: &Params) -> u64 {
        size_param(params).map_or(0, |s| s.side(8))
    }
    fn size_unit(&self) -> &'static str {
        "n"
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
        doc: "random seed, as for pi.montecarlo (same estimate at any ranks × threads)",
    },
];

impl Pi {
    fn samples(params: &Params) -> Result<u64, String> {
        sample_count("mpi.pi", params)
    }
}

impl Workload for Pi {
    fn name(&self) -> &'static str {
        "mpi.pi"
    }
    fn summary(&self) -> &'static str {
        "Monte Carlo π, chunks split over ranks and threads, MPI_Reduce of the hits (3 flops/sample)"
    }
    fn backend(&self) -> Backend {
        Backend::Mpi
    }
    fn params(&self) -> &'static [ParamSpec] {
        PI_PARAMS
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Self::samples(params).unwrap_or(0)
    }
    fn size_unit(&self) -> &'static str {
        "samples"
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
    use crate::value::Value;
    use crate::workload::{find, REGISTRY};

    /// The workload's defaults, with `overrides` (name, TOML text) applied.
    fn params(w: &dyn Workload, overrides: &[(&str, &str)]) -> Params {
        let mut p = Params::default();
        for spec in w.params() {
            let text = overrides
                .iter()
                .find(|(k, _)| *k == spec.name)
                .map_or(spec.default, |(_, v)| *v);
            p.0.insert(
                spec.name.to_string(),
                Value::from_text(spec.kind, text).unwrap(),
            );
        }
        p
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

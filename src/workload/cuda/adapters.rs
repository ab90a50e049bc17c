//! The GPU workloads' code (feature `cuda`); see the parent module.

use anyhow::anyhow;
use scalelab_kernels::cuda::{self, bench, launch, work, Elementwise, Gemm, Reduce, Transpose};

use super::{
    GEMM, GEMM_VARIANTS, REDUCE, REDUCE_VARIANTS, STREAM, STREAM_VARIANTS, TRANSPOSE,
    TRANSPOSE_VARIANTS,
};
use crate::value::Value;
use crate::workload::{
    size_param, to_usize, Description, Instance, Params, Target, Work, Workload,
};

/// A choice parameter's value, or its default when unset.
fn choice<'a>(params: &'a Params, name: &str, default: &'a str) -> Result<&'a str, String> {
    match params.get(name) {
        None => Ok(default),
        Some(Value::Text(s)) => Ok(s),
        Some(other) => Err(format!("`{name}` must be a name, found {other}")),
    }
}

/// The `variant` parameter of `workload` read by `parse`, `default` when unset; an unknown name is
/// an error listing `variants`.
fn variant<V>(
    params: &Params,
    workload: &str,
    variants: &[&str],
    default: &str,
    parse: fn(&str) -> Option<V>,
) -> Result<V, String> {
    let name = choice(params, "variant", default)?;
    parse(name).ok_or_else(|| {
        format!(
            "{workload}: unknown variant `{name}`; use one of {}",
            variants.join(", ")
        )
    })
}

fn transfers(params: &Params) -> Result<bench::Transfers, String> {
    let name = choice(params, "transfers", "resident")?;
    bench::Transfers::parse(name).ok_or_else(|| {
        format!(
            "`transfers` must be one of {}, not `{name}`",
            bench::Transfers::NAMES.join(", ")
        )
    })
}

/// Wraps a GPU benchmark as an [`Instance`].
struct GpuInstance(Box<dyn bench::Bench>);

impl Instance for GpuInstance {
    fn run(&mut self) {
        self.0.run();
    }
    fn verify(&mut self) -> Result<(), String> {
        self.0.verify()
    }
    fn metrics(&self) -> Vec<(&'static str, f64)> {
        self.0.metrics()
    }
    fn devices(&self) -> Vec<crate::device::DevicePeaks> {
        self.0.devices().iter().map(peaks).collect()
    }
}

/// A device's facts from the driver and the peaks computed from them ([`crate::device`]).
pub(crate) fn peaks(d: &cuda::runtime::DeviceInfo) -> crate::device::DevicePeaks {
    crate::device::DevicePeaks::from_attributes(
        d.ordinal,
        &d.name,
        d.capability,
        d.sms,
        d.clock_mhz,
        d.memory_clock_mhz,
        d.bus_bits,
    )
}

/// The devices of the point being prepared: its `gpus`, at least 1.
fn gpus(target: &Target) -> usize {
    target.resources.gpus.max(1) as usize
}

/// Host memory a GPU point needs, checked against the node. The device's own memory is not known
/// where a plan is made (a login node or a machine without the GPU): a share too large for a
/// device fails when the point prepares, with the driver's out-of-memory error as its reason.
/// `whole` is the host bytes of the whole problem that the ranks split (inputs, output and the
/// CPU reference); `replicated` the bytes every rank holds in full.
fn host_memory(
    target: &Target,
    workload: &str,
    whole: f64,
    replicated: f64,
    fix: &str,
) -> Result<(), String> {
    let ranks = f64::from(target.resources.ranks.max(1));
    target.fits_memory(workload, whole / ranks + replicated, fix)
}

fn instance(b: Result<Box<dyn bench::Bench>, String>) -> anyhow::Result<Box<dyn Instance>> {
    Ok(Box::new(GpuInstance(b.map_err(|e| anyhow!(e))?)))
}

/// This rank's node-local rank, from the launcher's environment (OpenMPI, MPICH/Hydra, SLURM);
/// 0 when none says.
#[cfg(feature = "mpi")]
pub(crate) fn local_rank() -> usize {
    [
        "OMPI_COMM_WORLD_LOCAL_RANK",
        "MPI_LOCALRANKID",
        "PMI_LOCAL_RANK",
        "SLURM_LOCALID",
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok()?.parse().ok())
    .unwrap_or(0)
}

/// This rank's share of an MPI point: part `rank` of `size`, on its own `gpus` devices. Ranks on
/// one node take consecutive devices (local rank × gpus onwards), unless the launcher already
/// shows each rank only its own GPUs (as SLURM does with `--gpus-per-task`), then from 0.
#[cfg(feature = "mpi")]
fn rank_share(comm: &crate::workload::Comm, target: &Target) -> anyhow::Result<bench::Share> {
    use ::mpi::traits::Communicator;
    let visible = cuda::runtime::driver().map_err(|e| anyhow!(e))?;
    let first_device = if visible == gpus(target) {
        0
    } else {
        local_rank() * gpus(target)
    };
    Ok(bench::Share {
        index: comm.rank() as usize,
        count: comm.size() as usize,
        first_device,
    })
}

/// `prepare` and `prepare_mpi` of a GPU workload: the whole problem, or this rank's share.
macro_rules! prepare_shares {
    () => {
        fn prepare(&self, params: &Params, target: &Target) -> anyhow::Result<Box<dyn Instance>> {
            self.prepare_share(params, target, &bench::Share::WHOLE)
        }
        #[cfg(feature = "mpi")]
        fn prepare_mpi(
            &self,
            params: &Params,
            target: &Target,
            comm: &crate::workload::Comm,
        ) -> anyhow::Result<Box<dyn Instance>> {
            self.prepare_share(params, target, &rank_share(comm, target)?)
        }
    };
}

// ---------------------------------------------------------------------------------------------

/// `cuda.stream`: SAXPY, the STREAM kernels and the driver's device copy.
pub struct Stream;

impl Stream {
    fn op(params: &Params) -> Result<Elementwise, String> {
        variant(
            params,
            "cuda.stream",
            STREAM_VARIANTS,
            "triad",
            Elementwise::parse,
        )
    }

    fn elements(params: &Params) -> Result<(Elementwise, usize), String> {
        let op = Self::op(params)?;
        let n = to_usize(size_param(params)?.count(op.element_bytes() as u64), "size")?;
        Ok((op, n))
    }
}

impl Workload for Stream {
    fn description(&self) -> &'static Description {
        &STREAM
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Self::elements(params).map_or(0, |(_, n)| n as u64)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let (op, n) = Self::elements(params)?;
        transfers(params)?;
        launch::elementwise(n as u64)?.check()?;
        // Up to two inputs, the output and the reference, on the host.
        let bytes = 4.0 * op.element_bytes() as f64 * n as f64;
        host_memory(
            target,
            self.name(),
            bytes,
            0.0,
            "use a smaller `size` (it is per array)",
        )
    }
    fn work(&self, params: &Params) -> Work {
        Self::elements(params).map_or(Work::default(), |(op, n)| Work {
            flops: work::elementwise_flops(op, n as u64),
            bytes: work::elementwise_bytes(op, n as u64),
        })
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        0.9
    }
    prepare_shares!();
}

impl Stream {
    fn prepare_share(
        &self,
        params: &Params,
        target: &Target,
        share: &bench::Share,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let (op, n) = Self::elements(params).map_err(|e| anyhow!(e))?;
        let t = transfers(params).map_err(|e| anyhow!(e))?;
        instance(bench::elementwise(op, n, gpus(target), share, t))
    }
}

// ---------------------------------------------------------------------------------------------

/// `cuda.reduce`: the sum of `size` 32-bit integers, in the reduction lecture's steps.
pub struct ReduceSum;

impl ReduceSum {
    fn parse(params: &Params) -> Result<(Reduce, usize), String> {
        let v = variant(
            params,
            "cuda.reduce",
            REDUCE_VARIANTS,
            "gridstride",
            Reduce::parse,
        )?;
        Ok((v, to_usize(size_param(params)?.count(4), "size")?))
    }
}

impl Workload for ReduceSum {
    fn description(&self) -> &'static Description {
        &REDUCE
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Self::parse(params).map_or(0, |(_, n)| n as u64)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let (v, n) = Self::parse(params)?;
        transfers(params)?;
        launch::reduce(v, n as u64, 1)?.check()?;
        // The 32-bit input on the host.
        host_memory(
            target,
            self.name(),
            4.0 * n as f64,
            0.0,
            "use a smaller `size`",
        )
    }
    fn work(&self, params: &Params) -> Work {
        Self::parse(params).map_or(Work::default(), |(_, n)| Work {
            flops: work::reduce_ops(n as u64),
            bytes: work::reduce_bytes(n as u64),
        })
    }
    fn expected_efficiency(&self, params: &Params) -> f64 {
        match Self::parse(params) {
            Ok((Reduce::Atomic, _)) => 0.05,
            _ => 0.7,
        }
    }
    prepare_shares!();
}

impl ReduceSum {
    fn prepare_share(
        &self,
        params: &Params,
        target: &Target,
        share: &bench::Share,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let (v, n) = Self::parse(params).map_err(|e| anyhow!(e))?;
        let t = transfers(params).map_err(|e| anyhow!(e))?;
        instance(bench::reduce(v, n, gpus(target), share, t))
    }
}

// ---------------------------------------------------------------------------------------------

/// `cuda.transpose`: an `n × n` f32 transpose, naive or through shared-memory tiles.
pub struct TransposeMatrix;

impl TransposeMatrix {
    fn parse(params: &Params) -> Result<(Transpose, usize), String> {
        let v = variant(
            params,
            "cuda.transpose",
            TRANSPOSE_VARIANTS,
            "tiled",
            Transpose::parse,
        )?;
        Ok((v, to_usize(size_param(params)?.side(4), "size")?))
    }
}

impl Workload for TransposeMatrix {
    fn description(&self) -> &'static Description {
        &TRANSPOSE
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Self::parse(params).map_or(0, |(_, n)| n as u64)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let (v, n) = Self::parse(params)?;
        transfers(params)?;
        if n > i32::MAX as usize / 2 {
            return Err(format!("cuda.transpose: n = {n} is too large"));
        }
        launch::transpose(v, n as u64, n as u64)?.check()?;
        // f32 input, output and reference on the host.
        let nn = (n as f64).powi(2);
        host_memory(
            target,
            self.name(),
            3.0 * 4.0 * nn,
            0.0,
            "use a smaller `size`",
        )
    }
    fn work(&self, params: &Params) -> Work {
        Self::parse(params).map_or(Work::default(), |(_, n)| Work {
            flops: 0.0,
            bytes: work::transpose_bytes(n as u64),
        })
    }
    prepare_shares!();
}

impl TransposeMatrix {
    fn prepare_share(
        &self,
        params: &Params,
        target: &Target,
        share: &bench::Share,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let (v, n) = Self::parse(params).map_err(|e| anyhow!(e))?;
        let t = transfers(params).map_err(|e| anyhow!(e))?;
        instance(bench::transpose(v, n, gpus(target), share, t))
    }
}

// ---------------------------------------------------------------------------------------------

/// `cuda.gemm`: `C = A·B` for `n × n` matrices, hand-written SGEMM steps and cuBLAS yardsticks.
pub struct MatMul;

impl MatMul {
    fn parse(params: &Params) -> Result<(Gemm, usize), String> {
        let v = variant(params, "cuda.gemm", GEMM_VARIANTS, "regblock", Gemm::parse)?;
        Ok((v, to_usize(size_param(params)?.side(4), "size")?))
    }
}

impl Workload for MatMul {
    fn description(&self) -> &'static Description {
        &GEMM
    }
    fn problem_size(&self, params: &Params) -> u64 {
        Self::parse(params).map_or(0, |(_, n)| n as u64)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let (v, n) = Self::parse(params)?;
        transfers(params)?;
        // Every rank holds A and B (f32, and an f64 or bf16 copy for cuBLAS) and its rows of C.
        let nn = (n as f64).powi(2);
        host_memory(
            target,
            self.name(),
            8.0 * nn,
            2.0 * (4.0 + 8.0) * nn,
            "use a smaller `size` (the matrix order)",
        )?;
        if n >= 1 << 18 {
            return Err(format!(
                "cuda.gemm: n = {n} is too large for an exactly checkable product; use n < 262144"
            ));
        }
        launch::gemm_shape_ok(v, n as u64, n as u64, n as u64)
            .map_err(|e| format!("cuda.gemm: {e}"))?;
        if let Some(l) = launch::gemm(v, n as u64, n as u64, n as u64)? {
            l.check()?;
        }
        Ok(())
    }
    fn work(&self, params: &Params) -> Work {
        Self::parse(params).map_or(Work::default(), |(v, n)| Work {
            flops: work::gemm_flops(n as u64),
            bytes: work::gemm_bytes(v, n as u64),
        })
    }
    fn expected_efficiency(&self, params: &Params) -> f64 {
        match Self::parse(params) {
            Ok((Gemm::Naive, _)) => 0.05,
            Ok((Gemm::Tiled, _)) => 0.15,
            _ => 0.5,
        }
    }
    prepare_shares!();
}

impl MatMul {
    fn prepare_share(
        &self,
        params: &Params,
        target: &Target,
        share: &bench::Share,
    ) -> anyhow::Result<Box<dyn Instance>> {
        let (v, n) = Self::parse(params).map_err(|e| anyhow!(e))?;
        let t = transfers(params).map_err(|e| anyhow!(e))?;
        instance(bench::gemm(v, n, gpus(target), share, t))
    }
}

/// The GPU lines of `scalelab info`.
pub fn describe() -> String {
    cuda::runtime::describe()
}

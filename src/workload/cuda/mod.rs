//! Adapters from the GPU benchmarks of `scalelab_kernels::cuda` to [`Workload`] (feature
//! `cuda`): `cuda.stream` (SAXPY, STREAM and the device copy), `cuda.reduce`, `cuda.transpose`
//! and `cuda.gemm`, each with its lecture steps as the `variant` axis.
//!
//! These workloads exist only in builds with the `cuda` feature; their descriptions (this file) are
//! in every build. The code is in `adapters.rs`.
//!
//! A point's `gpus` (at least 1) is how many devices the data is split across, one context and
//! stream each; the throughput is the aggregate. Under MPI (`ranks > 1`, feature `mpi`) each
//! rank takes a contiguous share of the problem on its own `gpus` devices (one rank per GPU with
//! `gpus = 1`). The CUDA kernels are compiled by NVRTC when the
//! point prepares (untimed) and checked against the CPU reference after every repetition (see
//! `scalelab_kernels::cuda::reference`). A machine without a driver, a GPU, NVRTC or cuBLAS
//! gives a failed point whose reason names the fix. Besides the wall time of a repetition, each
//! records `kernel_s` (CUDA events), and with `transfers = "timed"` also `h2d_s` and `d2h_s`.

use scalelab_kernels::cuda;

use super::{Backend, Description, ParamKind, ParamSpec, WeakRule};

#[cfg(feature = "cuda")]
mod adapters;
#[cfg(feature = "cuda")]
pub use adapters::{describe, MatMul, ReduceSum, Stream, TransposeMatrix};
/// The node-local rank that picks a rank's GPU, and a device's facts as a record keeps them
/// (also `mpi.train` with `gpus = 1`).
#[cfg(all(feature = "cuda", feature = "mpi"))]
pub(crate) use adapters::{local_rank, peaks};

/// The modes of `transfers`: the names of `scalelab_kernels::cuda::Transfers` (present in every
/// build), one list.
const TRANSFER_MODES: &[&str] = &cuda::Transfers::NAMES;

const TRANSFERS: ParamSpec = ParamSpec {
    name: "transfers",
    kind: ParamKind::Choice(TRANSFER_MODES),
    default: "resident",
    doc: "resident (inputs stay on the GPU; a repetition is the kernel) | timed (each repetition \
          also copies inputs in and the result out: metrics h2d_s, d2h_s)",
};

/// The `variant` choices of each CUDA workload: the names of its kernel enum in
/// `scalelab_kernels::cuda` (present in every build), one list each.
pub(crate) const STREAM_VARIANTS: &[&str] = &cuda::Elementwise::NAMES;

const STREAM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "256MiB",
        doc: "length of each array: elements (\"32M\") or bytes per array (f64; f32 for saxpy)",
    },
    ParamSpec {
        name: "variant",
        kind: ParamKind::Choice(STREAM_VARIANTS),
        default: "triad",
        doc: "saxpy (f32 z = a·x + y) | copy | scale | add | triad (f64 STREAM) | memcpy \
              (cuMemcpyDtoD, the copy yardstick)",
    },
    TRANSFERS,
];

pub(crate) const REDUCE_VARIANTS: &[&str] = &cuda::Reduce::NAMES;

const REDUCE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "256MiB",
        doc: "values to sum: a count (\"64M\") or bytes of 32-bit values (\"256MiB\" = 64Mi)",
    },
    ParamSpec {
        name: "variant",
        kind: ParamKind::Choice(REDUCE_VARIANTS),
        default: "gridstride",
        doc: "atomic (one atomicAdd per element) | shared (shared-memory tree) | shuffle (warp \
              shuffles) | gridstride (few blocks, register sums, one atomic per block)",
    },
    TRANSFERS,
];

pub(crate) const TRANSPOSE_VARIANTS: &[&str] = &cuda::Transpose::NAMES;

const TRANSPOSE_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "8192",
        doc: "matrix side n, or bytes of the n × n f32 matrix (\"256MiB\" = 8192)",
    },
    ParamSpec {
        name: "variant",
        kind: ParamKind::Choice(TRANSPOSE_VARIANTS),
        default: "tiled",
        doc: "naive (strided writes) | tiled (shared-memory tile, both sides coalesced)",
    },
    TRANSFERS,
];

pub(crate) const GEMM_VARIANTS: &[&str] = &cuda::Gemm::NAMES;

const GEMM_PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "size",
        kind: ParamKind::Size,
        default: "4096",
        doc: "matrix order n (a multiple of 128 for regblock)",
    },
    ParamSpec {
        name: "variant",
        kind: ParamKind::Choice(GEMM_VARIANTS),
        default: "regblock",
        doc: "naive | tiled (shared memory) | regblock (2-D register tiles) | cublas (SGEMM) | \
              cublas-dgemm | tensor-tf32 | tensor-bf16 (cuBLAS tensor cores, f32 accumulation)",
    },
    TRANSFERS,
];

/// `cuda.stream`: SAXPY, the STREAM kernels and the driver's device copy.
pub const STREAM: Description = Description::new(
    "cuda.stream",
    "GPU SAXPY, STREAM copy/scale/add/triad and a device-to-device copy (memory bandwidth)",
    Backend::Cuda,
    STREAM_PARAMS,
);

/// `cuda.reduce`: the sum of 32-bit integers in four lecture steps.
pub const REDUCE: Description = Description::new(
    "cuda.reduce",
    "GPU sum of 32-bit integers: atomics, shared-memory tree, warp shuffles, grid-stride (4 B/value)",
    Backend::Cuda,
    REDUCE_PARAMS,
);

/// `cuda.transpose`: naive against tiled.
pub const TRANSPOSE: Description = Description::new(
    "cuda.transpose",
    "GPU n × n f32 transpose: naive vs shared-memory tiled (coalescing; 8n² bytes)",
    Backend::Cuda,
    TRANSPOSE_PARAMS,
)
.size_unit("n")
.weak_rule(WeakRule::Sqrt);

/// `cuda.gemm`: hand-written kernels and cuBLAS.
pub const GEMM: Description = Description::new(
    "cuda.gemm",
    "GPU C = A·B, n × n: naive, tiled, register-blocked SGEMM; cuBLAS SGEMM, DGEMM, TF32 and bf16 tensor cores (2n³ flops)",
    Backend::Cuda,
    GEMM_PARAMS,
)
.size_unit("n")
.weak_rule(WeakRule::Cbrt);

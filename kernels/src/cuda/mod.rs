//! GPU kernels: CUDA C sources compiled at run time by NVRTC and launched through cudarc
//! (feature `cuda`), with everything about them that needs no GPU.
//!
//! The kernels are CUDA C in `kernels/cuda/*.cu`, embedded in the binary ([`SOURCES`]), so a
//! build needs no CUDA toolkit: the `cuda` feature loads the driver, NVRTC and cuBLAS
//! dynamically when a point runs. What can be known without a GPU lives in modules that every
//! build compiles and tests:
//!
//! | module | what |
//! | --- | --- |
//! | [`work`] | analytic FLOPs and bytes of every kernel |
//! | [`launch`] | grid and block sizes, shared memory per block, their limits |
//! | [`split`] | how a point's data is divided across its GPUs |
//! | [`mod@reference`] | deterministic inputs and the serial CPU references the results are checked against |
//! | [`mlp`] | the training engine of `mpi.train` on a GPU: layout and launch sizes (every build), the device part (feature) |
//!
//! With the feature, `runtime` finds the driver, the devices and NVRTC (each absence is an
//! error naming the fix, never a panic: cudarc panics when it calls into a library that is not
//! there, so every entry point checks for the library first) and `bench` holds the timed
//! instances: one context and stream per device, CUDA events around the kernels, the result
//! copied back and checked against the CPU reference after every repetition.

pub mod launch;
pub mod mlp;
pub mod reference;
pub mod split;
pub mod work;

#[cfg(feature = "cuda")]
pub mod bench;
#[cfg(feature = "cuda")]
pub mod runtime;

/// One CUDA C source file and the kernels (`extern "C" __global__` functions) it defines.
#[derive(Clone, Copy, Debug)]
pub struct Source {
    /// File name under `kernels/cuda/`.
    pub file: &'static str,
    /// The source text.
    pub text: &'static str,
    /// The kernels it defines, by name.
    pub kernels: &'static [&'static str],
}

/// Every CUDA source of the suite.
pub const SOURCES: &[Source] = &[
    Source {
        file: "stream.cu",
        text: include_str!("../../cuda/stream.cu"),
        kernels: &[
            "saxpy",
            "stream_copy",
            "stream_scale",
            "stream_add",
            "stream_triad",
        ],
    },
    Source {
        file: "reduce.cu",
        text: include_str!("../../cuda/reduce.cu"),
        kernels: &[
            "reduce_atomic",
            "reduce_shared",
            "reduce_shuffle",
            "reduce_gridstride",
        ],
    },
    Source {
        file: "transpose.cu",
        text: include_str!("../../cuda/transpose.cu"),
        kernels: &["transpose_naive", "transpose_tiled"],
    },
    Source {
        file: "sgemm.cu",
        text: include_str!("../../cuda/sgemm.cu"),
        kernels: &["sgemm_naive", "sgemm_tiled", "sgemm_regblock"],
    },
    Source {
        file: "mlp.cu",
        text: include_str!("../../cuda/mlp.cu"),
        kernels: &mlp::ALL_KERNELS,
    },
];

/// The source that defines `kernel`.
pub fn source_of(kernel: &str) -> Option<&'static Source> {
    SOURCES.iter().find(|s| s.kernels.contains(&kernel))
}

/// The value of `#define NAME value` in a source, as an integer: lets the tests check that the
/// launch configurations in [`launch`] match the constants the kernels were written for.
pub fn define(source: &str, name: &str) -> Option<i64> {
    source.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kernel_named_is_defined_in_its_source() {
        for s in SOURCES {
            for k in s.kernels {
                assert!(
                    s.text.contains(&format!(" {k}(")),
                    "{} does not define {k}",
                    s.file
                );
            }
        }
        assert_eq!(source_of("sgemm_regblock").unwrap().file, "sgemm.cu");
        assert!(source_of("nope").is_none());
    }

    #[test]
    fn launch_constants_match_the_sources() {
        let text = |f: &str| SOURCES.iter().find(|s| s.file == f).unwrap().text;
        assert_eq!(
            define(text("reduce.cu"), "REDUCE_BLOCK"),
            Some(launch::REDUCE_BLOCK as i64)
        );
        assert_eq!(
            define(text("transpose.cu"), "TILE"),
            Some(launch::TRANSPOSE_TILE as i64)
        );
        assert_eq!(
            define(text("transpose.cu"), "ROWS"),
            Some(launch::TRANSPOSE_ROWS as i64)
        );
        let g = text("sgemm.cu");
        assert_eq!(define(g, "NAIVE_X"), Some(launch::NAIVE_X as i64));
        assert_eq!(define(g, "NAIVE_Y"), Some(launch::NAIVE_Y as i64));
        assert_eq!(define(g, "TILE"), Some(launch::GEMM_TILE as i64));
        assert_eq!(define(g, "BM"), Some(launch::REG_BM as i64));
        assert_eq!(define(g, "BN"), Some(launch::REG_BN as i64));
        assert_eq!(define(g, "BK"), Some(launch::REG_BK as i64));
        assert_eq!(define(g, "TM"), Some(launch::REG_TM as i64));
        assert_eq!(define(g, "TN"), Some(launch::REG_TN as i64));
    }
}

/// Whether host↔device copies are part of each repetition (the `transfers` parameter of every
/// CUDA workload). Here, not in `bench`, so that builds without CUDA name its modes too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfers {
    /// Inputs stay on the devices; a repetition is the kernel alone.
    Resident,
    /// Each repetition copies the inputs in and the output out, timed separately.
    Timed,
}

impl Transfers {
    /// Both modes, default first.
    pub const ALL: [Transfers; 2] = [Transfers::Resident, Transfers::Timed];

    /// The names of [`Transfers::ALL`], in that order: the choices of `transfers`.
    pub const NAMES: [&'static str; Transfers::ALL.len()] = names_of_all!(Transfers);

    /// The name used in manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Transfers::Resident => "resident",
            Transfers::Timed => "timed",
        }
    }

    /// The mode called `name`.
    pub fn parse(name: &str) -> Option<Transfers> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// The element-wise kernels: SAXPY (f32), the four STREAM kernels (f64) and a device-to-device
/// copy by the driver (`cuMemcpyDtoD`), the yardstick STREAM copy and triad are compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elementwise {
    /// `z = a·x + y` on f32 (out of place).
    Saxpy,
    /// `c = a` on f64.
    Copy,
    /// `b = q·c` on f64.
    Scale,
    /// `c = a + b` on f64.
    Add,
    /// `a = b + q·c` on f64.
    Triad,
    /// `c = a` on f64 by the driver's device-to-device copy.
    Memcpy,
}

impl Elementwise {
    /// Every element-wise operation, in lecture order.
    pub const ALL: [Elementwise; 6] = [
        Elementwise::Saxpy,
        Elementwise::Copy,
        Elementwise::Scale,
        Elementwise::Add,
        Elementwise::Triad,
        Elementwise::Memcpy,
    ];

    /// The names of [`Elementwise::ALL`], in that order: the choices of `cuda.stream`'s `variant`.
    pub const NAMES: [&'static str; Elementwise::ALL.len()] = names_of_all!(Elementwise);

    /// The name used as a variant in manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Elementwise::Saxpy => "saxpy",
            Elementwise::Copy => "copy",
            Elementwise::Scale => "scale",
            Elementwise::Add => "add",
            Elementwise::Triad => "triad",
            Elementwise::Memcpy => "memcpy",
        }
    }

    /// The operation called `name`.
    pub fn parse(name: &str) -> Option<Elementwise> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The CUDA kernel, or `None` for the driver's copy.
    pub fn kernel(self) -> Option<&'static str> {
        match self {
            Elementwise::Saxpy => Some("saxpy"),
            Elementwise::Copy => Some("stream_copy"),
            Elementwise::Scale => Some("stream_scale"),
            Elementwise::Add => Some("stream_add"),
            Elementwise::Triad => Some("stream_triad"),
            Elementwise::Memcpy => None,
        }
    }

    /// Bytes of one element (4 for SAXPY's f32, 8 for STREAM's f64).
    pub fn element_bytes(self) -> usize {
        match self {
            Elementwise::Saxpy => 4,
            _ => 8,
        }
    }

    /// Arrays the operation reads, then the one it writes: a count (2 or 3).
    pub fn arrays(self) -> usize {
        match self {
            Elementwise::Saxpy | Elementwise::Add | Elementwise::Triad => 3,
            _ => 2,
        }
    }
}

/// The steps of the parallel reduction lecture (see `kernels/cuda/reduce.cu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reduce {
    /// One `atomicAdd` per element.
    Atomic,
    /// Shared-memory tree per block, one atomic per block.
    Shared,
    /// Warp shuffles per block, one atomic per block.
    Shuffle,
    /// A fixed grid, register sums over a grid-stride loop, shuffles, one atomic per block.
    GridStride,
}

impl Reduce {
    /// Every variant, in lecture order.
    pub const ALL: [Reduce; 4] = [
        Reduce::Atomic,
        Reduce::Shared,
        Reduce::Shuffle,
        Reduce::GridStride,
    ];

    /// The names of [`Reduce::ALL`], in that order: the choices of `cuda.reduce`'s `variant`.
    pub const NAMES: [&'static str; Reduce::ALL.len()] = names_of_all!(Reduce);

    /// The name used as a variant in manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Reduce::Atomic => "atomic",
            Reduce::Shared => "shared",
            Reduce::Shuffle => "shuffle",
            Reduce::GridStride => "gridstride",
        }
    }

    /// The variant called `name`.
    pub fn parse(name: &str) -> Option<Reduce> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The CUDA kernel.
    pub fn kernel(self) -> &'static str {
        match self {
            Reduce::Atomic => "reduce_atomic",
            Reduce::Shared => "reduce_shared",
            Reduce::Shuffle => "reduce_shuffle",
            Reduce::GridStride => "reduce_gridstride",
        }
    }
}

/// Naive or shared-memory tiled transpose (see `kernels/cuda/transpose.cu`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transpose {
    /// Coalesced reads, strided writes.
    Naive,
    /// Both coalesced through a shared-memory tile.
    Tiled,
}

impl Transpose {
    /// Both variants.
    pub const ALL: [Transpose; 2] = [Transpose::Naive, Transpose::Tiled];

    /// The names of [`Transpose::ALL`], in that order: the choices of `cuda.transpose`'s `variant`.
    pub const NAMES: [&'static str; Transpose::ALL.len()] = names_of_all!(Transpose);

    /// The name used as a variant in manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Transpose::Naive => "naive",
            Transpose::Tiled => "tiled",
        }
    }

    /// The variant called `name`.
    pub fn parse(name: &str) -> Option<Transpose> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The CUDA kernel.
    pub fn kernel(self) -> &'static str {
        match self {
            Transpose::Naive => "transpose_naive",
            Transpose::Tiled => "transpose_tiled",
        }
    }
}

/// Matrix product variants: the three hand-written SGEMM steps and the cuBLAS yardsticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gemm {
    /// `sgemm_naive`: one thread per element of C.
    Naive,
    /// `sgemm_tiled`: shared-memory tiles.
    Tiled,
    /// `sgemm_regblock`: shared-memory tiles and 2-D register blocking.
    RegBlock,
    /// cuBLAS `cublasSgemm` (f32, CUDA cores).
    Cublas,
    /// cuBLAS `cublasDgemm` (f64).
    CublasDgemm,
    /// cuBLAS `cublasGemmEx`: TF32 tensor cores on f32 inputs, f32 accumulation and output.
    TensorTf32,
    /// cuBLAS `cublasGemmEx`: bf16 inputs on tensor cores, f32 accumulation and output.
    TensorBf16,
}

impl Gemm {
    /// Every variant, slowest first.
    pub const ALL: [Gemm; 7] = [
        Gemm::Naive,
        Gemm::Tiled,
        Gemm::RegBlock,
        Gemm::Cublas,
        Gemm::CublasDgemm,
        Gemm::TensorTf32,
        Gemm::TensorBf16,
    ];

    /// The names of [`Gemm::ALL`], in that order: the choices of `cuda.gemm`'s `variant`.
    pub const NAMES: [&'static str; Gemm::ALL.len()] = names_of_all!(Gemm);

    /// The name used as a variant in manifests.
    pub const fn name(self) -> &'static str {
        match self {
            Gemm::Naive => "naive",
            Gemm::Tiled => "tiled",
            Gemm::RegBlock => "regblock",
            Gemm::Cublas => "cublas",
            Gemm::CublasDgemm => "cublas-dgemm",
            Gemm::TensorTf32 => "tensor-tf32",
            Gemm::TensorBf16 => "tensor-bf16",
        }
    }

    /// The variant called `name`.
    pub fn parse(name: &str) -> Option<Gemm> {
        Self::ALL.into_iter().find(|o| o.name() == name)
    }

    /// The hand-written kernel, or `None` for a cuBLAS variant.
    pub fn kernel(self) -> Option<&'static str> {
        match self {
            Gemm::Naive => Some("sgemm_naive"),
            Gemm::Tiled => Some("sgemm_tiled"),
            Gemm::RegBlock => Some("sgemm_regblock"),
            _ => None,
        }
    }

    /// Bytes of one input element (A and B).
    pub fn input_bytes(self) -> usize {
        match self {
            Gemm::CublasDgemm => 8,
            Gemm::TensorBf16 => 2,
            _ => 4,
        }
    }

    /// Bytes of one output element (C).
    pub fn output_bytes(self) -> usize {
        match self {
            Gemm::CublasDgemm => 8,
            _ => 4,
        }
    }
}

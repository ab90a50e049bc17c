//! The GPU engine of `mpi.train`: a multilayer perceptron's forward and backward passes on one
//! device (fp64 as `mpi.train` uses it; fp32 and TF32 available), one **grain** at a time, giving
//! each grain's gradient back to the host.
//!
//! The host side (scalelab_ml's `mlp::engine`) keeps the parameters, the optimizer and the fixed
//! reduction tree; this engine only turns parameters and a micro-batch of samples into one
//! gradient vector per grain (and each sample's loss). The layout of a gradient vector is the CPU
//! trainer's: layer by layer, the `inputs × outputs` weights (row-major) then the `outputs`
//! biases ([`Offsets`]).
//!
//! **Why one cuBLAS call per grain.** The CPU check of `mpi.train` is that any number of ranks
//! gives the bits of one rank. That holds on the GPU only if a grain's gradient is the same bits
//! wherever it is computed. cuBLAS is deterministic for a fixed problem shape on one GPU model and
//! library version, but picks its algorithm (tile sizes, split-K) by shape: a forward GEMM over a
//! whole micro-batch would change shape with the rank count (the rows a rank holds) and could
//! change the order of the sums over the shared dimension. So every GEMM here is over one grain's
//! rows, a shape fixed by the model and `grain` alone: `Z_g = A_g·W` (forward, bias first),
//! `dW_g = A_gᵀ·Δ_g` and `Δ_{l−1,g} = Δ_g·W_lᵀ` (backward). The elementwise parts (bias, ReLU,
//! softmax cross-entropy, bias gradients as sequential sums over a grain's rows) are NVRTC kernels
//! in `kernels/cuda/mlp.cu`, one thread per element or row.
//!
//! Against the CPU reference the bits differ (cuBLAS sums a dot product in another order than the
//! CPU GEMM's FMA chain, and the GPU's `exp` is not libm's), so that check is a tolerance (the
//! binary's `mpi.train`, docs/training.md "On GPUs").
//!
//! Precision: the engine is generic over its device number type ([`Real`]): `f64`
//! (`cublasDgemm`, what `mpi.train` uses) or `f32` (`cublasSgemm`, optionally on TF32 tensor cores:
//! `MlpDevice::set_tf32`); parameters, samples and gradients are converted at the staging copies,
//! so the host side stays in f64. A `dlogits` scale factor (a loss scale: the softmax
//! cross-entropy gradient is multiplied by it before backward; 1 by default) and the host's
//! refusal of a non-finite gradient are what a loss scaler needs. No bf16 path yet.
//!
//! This engine has not yet run on a GPU: only its CUDA source is compiled (by NVRTC) in the tests.

/// Threads per block of every kernel in `mlp.cu` (its `MLP_BLOCK`).
pub const MLP_BLOCK: u32 = 256;

/// The kernels of `mlp.cu`, in the order the engine loads them.
pub const KERNELS: [&str; 5] = [
    "mlp_bias_rows",
    "mlp_relu",
    "mlp_softmax_xent",
    "mlp_relu_mask",
    "mlp_bias_grad",
];

/// Every kernel `mlp.cu` defines: [`KERNELS`] in fp64, then the same with the suffix `_f32`.
pub const ALL_KERNELS: [&str; 10] = [
    "mlp_bias_rows",
    "mlp_relu",
    "mlp_softmax_xent",
    "mlp_relu_mask",
    "mlp_bias_grad",
    "mlp_bias_rows_f32",
    "mlp_relu_f32",
    "mlp_softmax_xent_f32",
    "mlp_relu_mask_f32",
    "mlp_bias_grad_f32",
];

/// Where each layer's weights and biases sit in a flat parameter (or gradient) vector: the CPU
/// trainer's layout (`scalelab_ml::mlp::Layout`), layer by layer, weights `inputs × outputs`
/// row-major, then the biases.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offsets {
    /// Widths from the inputs to the classes.
    pub widths: Vec<usize>,
    /// Start of layer `l`'s weights.
    pub weights: Vec<usize>,
    /// Total parameters.
    pub len: usize,
}

impl Offsets {
    /// The layout of `widths` (at least two, none zero; the caller has checked them).
    pub fn new(widths: &[usize]) -> Offsets {
        let mut weights = Vec::with_capacity(widths.len().saturating_sub(1));
        let mut len = 0;
        for w in widths.windows(2) {
            weights.push(len);
            len += w[0] * w[1] + w[1];
        }
        Offsets {
            widths: widths.to_vec(),
            weights,
            len,
        }
    }

    /// Number of layers (weight matrices).
    pub fn layers(&self) -> usize {
        self.weights.len()
    }

    /// Start of layer `l`'s biases.
    pub fn bias(&self, l: usize) -> usize {
        self.weights[l] + self.widths[l] * self.widths[l + 1]
    }

    /// Device bytes the engine allocates for micro-batches of up to `rows` samples in grains of
    /// `grain`: parameters, activations of every layer, two delta buffers, labels, losses and one
    /// gradient per grain.
    /// `bytes` is the size of the engine's number type (8 for f64, 4 for f32).
    pub fn device_bytes(&self, rows: usize, grain: usize, bytes: usize) -> f64 {
        let widest = self.widths.iter().copied().max().unwrap_or(1);
        let acts: usize = self.widths.iter().map(|w| rows * w).sum();
        let grains = rows / grain.max(1);
        (bytes * (self.len + acts + 2 * rows * widest + rows + grains * self.len)) as f64
            + 4.0 * rows as f64
    }
}

/// One row-major product `C (m × n) (+)= op(A) (m × k) · op(B) (k × n)` of the engine, `op` a
/// transpose where `a_t` / `b_t` is set, each operand given by its storage's row stride (`lda`,
/// `ldb`, `ldc`). The engine's three products per grain are [`RowMajor::forward`],
/// [`RowMajor::weight_grad`] and [`RowMajor::delta`]; [`RowMajor::column_major`] is the cuBLAS
/// call that computes it (tested here against a CPU emulation of that call, no GPU needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowMajor {
    /// Rows of `C` and of `op(A)`.
    pub m: usize,
    /// Columns of `C` and of `op(B)`.
    pub n: usize,
    /// The shared dimension: columns of `op(A)`, rows of `op(B)`.
    pub k: usize,
    /// Whether `op(A)` is the transpose of `A`'s storage.
    pub a_t: bool,
    /// Row stride of `A`'s storage.
    pub lda: usize,
    /// Whether `op(B)` is the transpose of `B`'s storage.
    pub b_t: bool,
    /// Row stride of `B`'s storage.
    pub ldb: usize,
    /// Row stride of `C`.
    pub ldc: usize,
}

/// A cuBLAS (column-major) GEMM call `C (m × n) = op(first) (m × k) · op(second) (k × n)`, with
/// the leading dimensions of the two operands and of `C`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnMajor {
    /// `transa`: whether the first operand is transposed.
    pub trans_first: bool,
    /// `transb`: whether the second operand is transposed.
    pub trans_second: bool,
    /// Rows of `C`.
    pub m: usize,
    /// Columns of `C`.
    pub n: usize,
    /// The shared dimension.
    pub k: usize,
    /// `lda`: leading dimension of the first operand's storage.
    pub ld_first: usize,
    /// `ldb`: leading dimension of the second operand's storage.
    pub ld_second: usize,
    /// `ldc`: leading dimension of `C`.
    pub ldc: usize,
}

impl RowMajor {
    /// Forward: `Z_g (grain × o) += A_g (grain × i) · W (i × o)`.
    pub fn forward(grain: usize, i: usize, o: usize) -> RowMajor {
        RowMajor {
            m: grain,
            n: o,
            k: i,
            a_t: false,
            lda: i,
            b_t: false,
            ldb: o,
            ldc: o,
        }
    }

    /// Weight gradient: `dW_g (i × o) = A_gᵀ · Δ_g`, `A_g` stored `grain × i`, `Δ_g` `grain × o`.
    pub fn weight_grad(grain: usize, i: usize, o: usize) -> RowMajor {
        RowMajor {
            m: i,
            n: o,
            k: grain,
            a_t: true,
            lda: i,
            b_t: false,
            ldb: o,
            ldc: o,
        }
    }

    /// Input gradient: `Δ_{l−1,g} (grain × i) = Δ_g (grain × o) · Wᵀ`, `W` stored `i × o`.
    pub fn delta(grain: usize, i: usize, o: usize) -> RowMajor {
        RowMajor {
            m: grain,
            n: i,
            k: o,
            a_t: false,
            lda: o,
            b_t: true,
            ldb: o,
            ldc: i,
        }
    }

    /// The cuBLAS call: a row-major matrix is its transpose in column-major terms, so
    /// `C = op(A)·op(B)` is computed as `Cᵀ (n × m) = op(B)ᵀ · op(A)ᵀ`, with `B`'s storage first
    /// (transposed in the call when `b_t`), then `A`'s.
    pub fn column_major(self) -> ColumnMajor {
        ColumnMajor {
            trans_first: self.b_t,
            trans_second: self.a_t,
            m: self.n,
            n: self.m,
            k: self.k,
            ld_first: self.ldb,
            ld_second: self.lda,
            ldc: self.ldc,
        }
    }
}

/// A number type the device engine computes in: `f64` or `f32`.
pub trait Real: Copy + Default + std::fmt::Debug + Send + Sync + 'static {
    /// The suffix of its kernels' names in `mlp.cu` (`""` for fp64, `"_f32"`).
    const SUFFIX: &'static str;
    /// Its name in messages.
    const NAME: &'static str;
    /// From the host's f64 (rounded to nearest for f32).
    fn from_f64(v: f64) -> Self;
    /// To the host's f64 (exact).
    fn to_f64(self) -> f64;
}

impl Real for f64 {
    const SUFFIX: &'static str = "";
    const NAME: &'static str = "fp64";
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn to_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const SUFFIX: &'static str = "_f32";
    const NAME: &'static str = "fp32";
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

/// Blocks of [`MLP_BLOCK`] threads covering `n` elements.
pub fn blocks(n: usize) -> Result<u32, String> {
    u32::try_from(n.div_ceil(MLP_BLOCK as usize).max(1))
        .map_err(|_| format!("{n} elements need more blocks than a 1-D grid holds"))
}

#[cfg(feature = "cuda")]
pub use device::{DeviceReal, DeviceTimes, MlpDevice};

#[cfg(feature = "cuda")]
mod device {
    use std::sync::Arc;
    use std::time::Instant;

    use cudarc::cublas::sys::{cublasMath_t, cublasOperation_t as Op, cublasStatus_t};
    use cudarc::cublas::{CudaBlas, Gemm, GemmConfig};
    use cudarc::driver::{
        CudaContext, CudaFunction, CudaSlice, CudaStream, CudaView, CudaViewMut, DeviceRepr,
        LaunchConfig, PushKernelArg, ValidAsZeroBits,
    };
    use cudarc::nvrtc::Ptx;

    use super::{blocks, Offsets, Real, RowMajor, KERNELS, MLP_BLOCK};

    /// What the device part needs of a [`Real`]: a device type cuBLAS multiplies.
    pub trait DeviceReal: Real + DeviceRepr + ValidAsZeroBits + Unpin
    where
        CudaBlas: Gemm<Self>,
    {
    }
    impl DeviceReal for f64 {}
    impl DeviceReal for f32 {}
    use crate::cuda::runtime::{self, DeviceInfo};

    fn drv<T, E: std::fmt::Debug>(what: &str, r: Result<T, E>) -> Result<T, String> {
        r.map_err(|e| format!("{what}: {e:?}"))
    }

    fn cfg(n: usize) -> Result<LaunchConfig, String> {
        Ok(LaunchConfig {
            grid_dim: (blocks(n)?, 1, 1),
            block_dim: (MLP_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        })
    }

    fn int(v: usize) -> Result<i32, String> {
        i32::try_from(v).map_err(|_| format!("a GEMM dimension of {v} exceeds cuBLAS's int"))
    }

    /// Seconds spent in the staging copies since the last [`MlpDevice::take_times`].
    #[derive(Clone, Copy, Debug, Default, PartialEq)]
    pub struct DeviceTimes {
        /// Host to device: parameters after each update, each micro-batch's samples and labels.
        pub h2d_s: f64,
        /// Device to host: the grains' gradients and the samples' losses.
        pub d2h_s: f64,
    }

    /// One GPU holding a model's parameters and the buffers of one micro-batch (module docs), in
    /// `T` (f64 by default).
    pub struct MlpDevice<T: DeviceReal = f64>
    where
        CudaBlas: Gemm<T>,
    {
        layout: Offsets,
        info: DeviceInfo,
        _ctx: Arc<CudaContext>,
        stream: Arc<CudaStream>,
        blas: CudaBlas,
        funcs: Vec<CudaFunction>,
        params: CudaSlice<T>,
        /// Activations per layer, inputs first: `rows × width` each.
        acts: Vec<CudaSlice<T>>,
        delta: CudaSlice<T>,
        next_delta: CudaSlice<T>,
        labels: CudaSlice<u32>,
        losses: CudaSlice<T>,
        leaves: CudaSlice<T>,
        /// Host copies in `T` (the staging copies convert from and to the host's f64).
        host: Vec<T>,
        host_losses: Vec<T>,
        rows: usize,
        grain: usize,
        scale: T,
        times: DeviceTimes,
    }

    impl<T: DeviceReal> MlpDevice<T>
    where
        CudaBlas: Gemm<T>,
    {
        /// Open GPU `ordinal` for the model of `widths`, micro-batches of up to `rows` samples in
        /// grains of `grain`: checks the driver, NVRTC and cuBLAS first (an absence is an error
        /// naming the fix), compiles `mlp.cu` for the device, and refuses a model that does not
        /// fit its free memory.
        pub fn open(
            ordinal: usize,
            widths: &[usize],
            rows: usize,
            grain: usize,
        ) -> Result<MlpDevice<T>, String> {
            let count = runtime::driver()?;
            if ordinal >= count {
                return Err(format!(
                    "this rank's GPU would be {ordinal}, but this machine has {count}; use at \
                     most {count} ranks per node with gpus = 1"
                ));
            }
            runtime::nvrtc()?;
            runtime::cublas()?;
            if grain == 0 || rows == 0 || !rows.is_multiple_of(grain) {
                return Err(format!(
                    "internal: {rows} rows are not whole grains of {grain}"
                ));
            }
            let layout = Offsets::new(widths);
            let ctx = runtime::context(ordinal)?;
            let info = runtime::device_info(&ctx)?;
            let (free, _) = drv("asking for free memory", ctx.mem_get_info())?;
            let need = layout.device_bytes(rows, grain, std::mem::size_of::<T>());
            if need > 0.9 * free as f64 {
                return Err(format!(
                    "the model and a micro-batch of {rows} samples need {:.2} GiB on GPU \
                     {ordinal} ({}), which has {:.2} GiB free; use a smaller batch, more ranks \
                     or micro-batches, or narrower hidden layers",
                    need / f64::from(1u32 << 30),
                    info.name,
                    free as f64 / f64::from(1u32 << 30)
                ));
            }
            let stream = drv("creating a stream", ctx.new_stream())?;
            let blas = CudaBlas::new(stream.clone())
                .map_err(|e| format!("creating a cuBLAS handle: {e:?}"))?;
            let src = crate::cuda::source_of(KERNELS[0]).ok_or("no source defines the MLP")?;
            let ptx = runtime::ptx_for(src.file, src.text, &info.arch())?;
            let module = drv(
                &format!("loading {} on GPU {ordinal}", src.file),
                ctx.load_module(Ptx::from_src(ptx)),
            )?;
            let funcs = KERNELS
                .iter()
                .map(|k| {
                    let name = format!("{k}{}", T::SUFFIX);
                    drv(&format!("finding {name}"), module.load_function(&name))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let alloc = |n: usize| {
                drv(
                    &format!("allocating on GPU {ordinal}"),
                    stream.alloc_zeros::<T>(n.max(1)),
                )
            };
            let widest = widths.iter().copied().max().unwrap_or(1);
            let acts = widths
                .iter()
                .map(|w| alloc(rows * w))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(MlpDevice {
                params: alloc(layout.len)?,
                delta: alloc(rows * widest)?,
                next_delta: alloc(rows * widest)?,
                labels: drv("allocating labels", stream.alloc_zeros::<u32>(rows))?,
                losses: alloc(rows)?,
                leaves: alloc(rows / grain * layout.len)?,
                acts,
                layout,
                info,
                _ctx: ctx,
                stream,
                blas,
                funcs,
                host: Vec::new(),
                host_losses: Vec::new(),
                rows,
                grain,
                scale: T::from_f64(1.0),
                times: DeviceTimes::default(),
            })
        }

        /// The device, as the driver describes it.
        pub fn info(&self) -> &DeviceInfo {
            &self.info
        }

        /// Multiply the logits' gradient by `scale` (a loss scale) from the next micro-batch on.
        pub fn set_dlogits_scale(&mut self, scale: f64) {
            self.scale = T::from_f64(scale);
        }

        /// For an f32 engine: let cuBLAS round the GEMMs' inputs to TF32 on tensor cores
        /// (`CUBLAS_TF32_TENSOR_OP_MATH`), or not (`CUBLAS_DEFAULT_MATH`). An f64 engine refuses.
        pub fn set_tf32(&mut self, on: bool) -> Result<(), String> {
            if T::NAME != "fp32" {
                return Err(format!(
                    "TF32 applies to fp32 GEMMs; this engine computes in {}",
                    T::NAME
                ));
            }
            let mode = if on {
                cublasMath_t::CUBLAS_TF32_TENSOR_OP_MATH
            } else {
                cublasMath_t::CUBLAS_DEFAULT_MATH
            };
            // SAFETY: the handle is alive for `self`'s lifetime; setting the math mode only
            // changes how later calls on it compute.
            let status =
                unsafe { cudarc::cublas::sys::cublasSetMathMode(*self.blas.handle(), mode) };
            if status == cublasStatus_t::CUBLAS_STATUS_SUCCESS {
                Ok(())
            } else {
                Err(format!("cuBLAS refused the math mode {mode:?}: {status:?}"))
            }
        }

        /// The staging copies' seconds so far, and zero them.
        pub fn take_times(&mut self) -> DeviceTimes {
            std::mem::take(&mut self.times)
        }

        /// Copy the parameters (the host's, after an update) to the device.
        pub fn load(&mut self, params: &[f64]) -> Result<(), String> {
            if params.len() != self.layout.len {
                return Err(format!(
                    "internal: {} parameters for a model of {}",
                    params.len(),
                    self.layout.len
                ));
            }
            self.host.clear();
            self.host.extend(params.iter().map(|&v| T::from_f64(v)));
            let t = Instant::now();
            drv(
                "copying the parameters to the GPU",
                self.stream.memcpy_htod(&self.host, &mut self.params),
            )?;
            drv("GPU", self.stream.synchronize())?;
            self.times.h2d_s += t.elapsed().as_secs_f64();
            Ok(())
        }

        /// Each grain's summed (not averaged) loss gradient of the micro-batch whose samples are
        /// the rows of `x` (`labels.len()` rows, row-major, `widths[0]` features each), in grains
        /// of the engine's `grain` consecutive rows: grain `g`'s gradient into
        /// `leaves[g·len..(g+1)·len]`, each sample's loss into `losses`.
        pub fn grain_gradients(
            &mut self,
            x: &[f64],
            labels: &[u32],
            leaves: &mut [f64],
            losses: &mut [f64],
        ) -> Result<(), String> {
            let n = labels.len();
            let (p, grain) = (self.layout.len, self.grain);
            let classes = *self.layout.widths.last().unwrap_or(&1);
            if n > self.rows
                || !n.is_multiple_of(grain)
                || x.len() != n * self.layout.widths[0]
                || leaves.len() != n / grain * p
                || losses.len() != n
                || labels.iter().any(|&y| y as usize >= classes)
            {
                return Err(format!(
                    "internal: a micro-batch of {n} rows does not fit the engine (up to {} rows \
                     in grains of {grain}, {classes} classes)",
                    self.rows
                ));
            }
            self.host.clear();
            self.host.extend(x.iter().map(|&v| T::from_f64(v)));
            let t = Instant::now();
            drv(
                "copying samples to the GPU",
                self.stream.memcpy_htod(&self.host, &mut self.acts[0]),
            )?;
            drv(
                "copying labels to the GPU",
                self.stream.memcpy_htod(labels, &mut self.labels),
            )?;
            drv("GPU", self.stream.synchronize())?;
            self.times.h2d_s += t.elapsed().as_secs_f64();
            self.forward(n)?;
            self.backward(n, labels.len() as u64)?;
            self.host.resize(leaves.len(), T::default());
            self.host_losses.resize(n, T::default());
            let t = Instant::now();
            drv(
                "copying gradients from the GPU",
                self.stream
                    .memcpy_dtoh(&self.leaves.slice(0..leaves.len()), &mut self.host),
            )?;
            drv(
                "copying losses from the GPU",
                self.stream
                    .memcpy_dtoh(&self.losses.slice(0..n), &mut self.host_losses),
            )?;
            drv("GPU", self.stream.synchronize())?;
            self.times.d2h_s += t.elapsed().as_secs_f64();
            for (out, v) in leaves.iter_mut().zip(&self.host) {
                *out = v.to_f64();
            }
            for (out, v) in losses.iter_mut().zip(&self.host_losses) {
                *out = v.to_f64();
            }
            Ok(())
        }

        /// The row-major product `p` (module docs) by cuBLAS (DGEMM or SGEMM): `a` and `b` its
        /// operands' storage, `c` the output, `beta` 1 to add to `c`, 0 to overwrite it.
        fn gemm(
            blas: &CudaBlas,
            p: RowMajor,
            a: &CudaView<T>,
            b: &CudaView<T>,
            c: &mut CudaViewMut<T>,
            beta: f64,
        ) -> Result<(), String> {
            let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
            let cm = p.column_major();
            let cfg = GemmConfig {
                transa: op(cm.trans_first),
                transb: op(cm.trans_second),
                m: int(cm.m)?,
                n: int(cm.n)?,
                k: int(cm.k)?,
                alpha: T::from_f64(1.0),
                lda: int(cm.ld_first)?,
                ldb: int(cm.ld_second)?,
                beta: T::from_f64(beta),
                ldc: int(cm.ldc)?,
            };
            // SAFETY: the callers pass views holding the rows and leading dimensions `p` names;
            // every view lies on this handle's stream's device.
            unsafe { blas.gemm(cfg, b, a, c) }
                .map_err(|e| format!("cuBLAS {} GEMM: {e:?}", T::NAME))
        }

        /// Forward pass of the first `n` rows of `acts[0]`, one grain at a time.
        fn forward(&mut self, n: usize) -> Result<(), String> {
            let grain = self.grain;
            for l in 0..self.layout.layers() {
                let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
                let (w, b) = (self.layout.weights[l], self.layout.bias(l));
                let (before, after) = self.acts.split_at_mut(l + 1);
                let (a, z) = (&before[l], &mut after[0]);
                {
                    let (rows, cols) = ((n as u64), (o as u64));
                    let bias = self.params.slice(b..b + o);
                    let mut kb = self.stream.launch_builder(&self.funcs[0]);
                    kb.arg(&mut *z).arg(&bias).arg(&rows).arg(&cols);
                    // SAFETY: (z, b, rows, cols) as in mlp.cu; z holds rows × cols values.
                    drv("launching mlp_bias_rows", unsafe { kb.launch(cfg(n * o)?) })?;
                }
                let weights = self.params.slice(w..w + i * o);
                for g in 0..n / grain {
                    let ag = a.slice(g * grain * i..(g + 1) * grain * i);
                    let mut zg = z.slice_mut(g * grain * o..(g + 1) * grain * o);
                    let p = RowMajor::forward(grain, i, o);
                    Self::gemm(&self.blas, p, &ag, &weights, &mut zg, 1.0)?;
                }
                if l + 1 < self.layout.layers() {
                    let len = (n * o) as u64;
                    let mut kb = self.stream.launch_builder(&self.funcs[1]);
                    kb.arg(&mut *z).arg(&len);
                    // SAFETY: (z, n) as in mlp.cu.
                    drv("launching mlp_relu", unsafe { kb.launch(cfg(n * o)?) })?;
                }
            }
            Ok(())
        }

        /// Backward pass of the `n` rows the forward pass left in `acts`: every grain's gradient
        /// into `leaves`, every sample's loss into `losses`.
        fn backward(&mut self, n: usize, rows: u64) -> Result<(), String> {
            let grain = self.grain;
            let grains = n / grain;
            let p = self.layout.len;
            let layers = self.layout.layers();
            let classes = self.layout.widths[layers];
            {
                let c = classes as u64;
                let mut kb = self.stream.launch_builder(&self.funcs[2]);
                kb.arg(&mut self.delta)
                    .arg(&mut self.losses)
                    .arg(&self.acts[layers])
                    .arg(&self.labels)
                    .arg(&rows)
                    .arg(&c)
                    .arg(&self.scale);
                // SAFETY: (delta, loss, logits, labels, rows, classes, scale) as in mlp.cu.
                drv("launching mlp_softmax_xent", unsafe { kb.launch(cfg(n)?) })?;
            }
            for l in (0..layers).rev() {
                let (i, o) = (self.layout.widths[l], self.layout.widths[l + 1]);
                let (w, b) = (self.layout.weights[l], self.layout.bias(l));
                let a = &self.acts[l];
                // dW_g = A_gᵀ · Δ_g into grain g's gradient vector (beta = 0: every element of
                // the vector is written, weights here, biases below).
                for g in 0..grains {
                    let ag = a.slice(g * grain * i..(g + 1) * grain * i);
                    let dg = self.delta.slice(g * grain * o..(g + 1) * grain * o);
                    let mut leaf = self.leaves.slice_mut(g * p + w..g * p + w + i * o);
                    let p = RowMajor::weight_grad(grain, i, o);
                    Self::gemm(&self.blas, p, &ag, &dg, &mut leaf, 0.0)?;
                }
                {
                    let args = [grains as u64, grain as u64, o as u64, p as u64, b as u64];
                    let mut kb = self.stream.launch_builder(&self.funcs[4]);
                    kb.arg(&mut self.leaves).arg(&self.delta);
                    for v in &args {
                        kb.arg(v);
                    }
                    // SAFETY: (leaves, delta, grains, grain, cols, leaf_len, offset) as in
                    // mlp.cu; leaves holds grains × p values, delta n × o.
                    drv("launching mlp_bias_grad", unsafe {
                        kb.launch(cfg(grains * o)?)
                    })?;
                }
                if l > 0 {
                    // Δ_{l−1,g} = Δ_g · W_lᵀ, then ReLU' of the layer below's output.
                    let weights = self.params.slice(w..w + i * o);
                    for g in 0..grains {
                        let dg = self.delta.slice(g * grain * o..(g + 1) * grain * o);
                        let mut next = self
                            .next_delta
                            .slice_mut(g * grain * i..(g + 1) * grain * i);
                        let p = RowMajor::delta(grain, i, o);
                        Self::gemm(&self.blas, p, &dg, &weights, &mut next, 0.0)?;
                    }
                    let len = (n * i) as u64;
                    let mut kb = self.stream.launch_builder(&self.funcs[3]);
                    kb.arg(&mut self.next_delta).arg(a).arg(&len);
                    // SAFETY: (delta, act, n) as in mlp.cu.
                    drv("launching mlp_relu_mask", unsafe { kb.launch(cfg(n * i)?) })?;
                    std::mem::swap(&mut self.delta, &mut self.next_delta);
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_the_cpu_layout() {
        let o = Offsets::new(&[4, 16, 3]);
        // Layer 0: 4 × 16 weights then 16 biases; layer 1: 16 × 3 weights at 80, biases at 128.
        assert_eq!(o.weights, vec![0, 80]);
        assert_eq!((o.bias(0), o.bias(1)), (64, 128));
        assert_eq!(o.len, 131);
        assert_eq!(o.layers(), 2);
        assert_eq!(blocks(0).unwrap(), 1);
        assert_eq!(blocks(257).unwrap(), 2);
        // An fp32 engine needs half the device bytes of an fp64 one, but the labels (u32).
        let (d64, d32) = (o.device_bytes(12, 3, 8), o.device_bytes(12, 3, 4));
        assert_eq!(d64 - 48.0, 2.0 * (d32 - 48.0));
    }

    #[test]
    fn the_number_types_convert_at_the_staging_copies() {
        assert_eq!(<f64 as Real>::from_f64(0.1).to_f64(), 0.1);
        let r = <f32 as Real>::from_f64(0.1);
        assert_eq!(r, 0.1f32);
        assert_ne!(r.to_f64(), 0.1);
        assert_eq!((<f64 as Real>::NAME, <f32 as Real>::NAME), ("fp64", "fp32"));
    }

    /// cuBLAS's column-major GEMM on host buffers: `C = op(first)·op(second) + beta·C`, element
    /// `(r, c)` of a column-major matrix at `r + c·ld`.
    fn cublas_emulated(cm: ColumnMajor, first: &[f64], second: &[f64], c: &mut [f64], beta: f64) {
        let at = |buf: &[f64], t: bool, ld: usize, r: usize, col: usize| {
            if t {
                buf[col + r * ld]
            } else {
                buf[r + col * ld]
            }
        };
        for col in 0..cm.n {
            for r in 0..cm.m {
                let mut acc = 0.0;
                for q in 0..cm.k {
                    acc += at(first, cm.trans_first, cm.ld_first, r, q)
                        * at(second, cm.trans_second, cm.ld_second, q, col);
                }
                let out = &mut c[r + col * cm.ldc];
                *out = acc + beta * *out;
            }
        }
    }

    /// Small integers: every product and sum is exact, so any order gives the same bits.
    fn ints(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|x| ((x * 7 + seed * 13) % 11) as f64 - 5.0)
            .collect()
    }

    #[test]
    fn the_cublas_calls_compute_the_engines_row_major_products() {
        let (grain, i, o) = (3, 5, 4);
        let a = ints(grain * i, 1); // A_g, grain × i
        let w = ints(i * o, 2); // W, i × o
        let d = ints(grain * o, 3); // Δ_g, grain × o
        let bias = ints(grain * o, 4);
        let row = |m: &[f64], cols: usize, r: usize, c: usize| m[r * cols + c];
        // Forward: Z = bias + A·W.
        let mut z = bias.clone();
        cublas_emulated(
            RowMajor::forward(grain, i, o).column_major(),
            &w,
            &a,
            &mut z,
            1.0,
        );
        for s in 0..grain {
            for j in 0..o {
                let want: f64 = row(&bias, o, s, j)
                    + (0..i)
                        .map(|f| row(&a, i, s, f) * row(&w, o, f, j))
                        .sum::<f64>();
                assert_eq!(z[s * o + j], want, "forward ({s}, {j})");
            }
        }
        // Weight gradient: dW = Aᵀ·Δ, overwriting whatever was there.
        let mut dw = vec![99.0; i * o];
        cublas_emulated(
            RowMajor::weight_grad(grain, i, o).column_major(),
            &d,
            &a,
            &mut dw,
            0.0,
        );
        for f in 0..i {
            for j in 0..o {
                let want: f64 = (0..grain)
                    .map(|s| row(&a, i, s, f) * row(&d, o, s, j))
                    .sum();
                assert_eq!(dw[f * o + j], want, "dW ({f}, {j})");
            }
        }
        // Input gradient: Δ_{l−1} = Δ·Wᵀ.
        let mut next = vec![99.0; grain * i];
        cublas_emulated(
            RowMajor::delta(grain, i, o).column_major(),
            &w,
            &d,
            &mut next,
            0.0,
        );
        for s in 0..grain {
            for f in 0..i {
                let want: f64 = (0..o).map(|j| row(&d, o, s, j) * row(&w, o, f, j)).sum();
                assert_eq!(next[s * i + f], want, "delta ({s}, {f})");
            }
        }
        // The emulation can fail: passing the row-major buffers as if they were column-major
        // (A first, leading dimensions the row counts) computes another product.
        let mut naive = bias.clone();
        let bad = ColumnMajor {
            trans_first: false,
            trans_second: false,
            m: grain,
            n: o,
            k: i,
            ld_first: grain,
            ld_second: i,
            ldc: grain,
        };
        cublas_emulated(bad, &a, &w, &mut naive, 1.0);
        assert_ne!(naive, z);
    }

    #[test]
    fn the_block_size_and_kernels_match_the_source() {
        let src = crate::cuda::source_of("mlp_bias_grad").unwrap();
        assert_eq!(src.file, "mlp.cu");
        assert_eq!(
            crate::cuda::define(src.text, "MLP_BLOCK"),
            Some(i64::from(MLP_BLOCK))
        );
        assert_eq!(src.kernels, &ALL_KERNELS);
        for (k, k32) in KERNELS.iter().zip(&ALL_KERNELS[5..]) {
            assert_eq!(format!("{k}{}", <f32 as Real>::SUFFIX), *k32);
            assert_eq!(ALL_KERNELS[..5].iter().filter(|a| *a == k).count(), 1);
        }
    }

    /// NVRTC compiles the training kernels (a machine without NVRTC fails this test with the
    /// fix: CI must not pass it silently).
    #[cfg(feature = "cuda")]
    #[test]
    fn nvrtc_compiles_the_training_kernels() {
        if let Err(why) = crate::cuda::runtime::nvrtc() {
            panic!(
                "{why}\nfix: bash scripts/install-deps.sh --nvrtc && export \
                 LD_LIBRARY_PATH=$PWD/target/nvrtc/nvidia/cuda_nvrtc/lib:$LD_LIBRARY_PATH"
            );
        }
        let src = crate::cuda::source_of("mlp_relu").unwrap();
        for arch in ["sm_80", "sm_90"] {
            let out = crate::cuda::runtime::compile(src.file, src.text, arch)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(out.log.is_empty(), "NVRTC warned for {arch}:\n{}", out.log);
            for k in ALL_KERNELS {
                assert!(
                    out.ptx.contains(&format!(".entry {k}(")),
                    "{arch}: no entry point {k}"
                );
            }
        }
    }
}

//! The timed GPU instances: a point's data split over its devices (one context and one stream
//! each), the kernel launched on every device, CUDA events around each phase, and the result
//! copied back and checked against the CPU reference.
//!
//! One repetition ([`Bench::run`]) is, on every device at once:
//!
//! ```text
//! event 0 → [host→device copy of the inputs] → event 1 → kernel → event 2 → [device→host copy of
//! the output] → event 3, then every stream is synchronised
//! ```
//!
//! The bracketed copies happen only with [`Transfers::Timed`]; otherwise the inputs stay resident
//! on the devices (copied once, untimed) and the run is the kernel alone. The metrics are the
//! slowest device's event times: `kernel_s`, and with timed transfers `h2d_s` and `d2h_s`, so a
//! report can show the share of time spent moving data. Host buffers are ordinary (pageable)
//! memory, what a first GPU program uses.
//!
//! [`Bench::verify`] copies the output back (untimed, unless the run already did), compares it
//! with the reference (see [`super::reference`]), and zeroes the device output so that the next
//! repetition is checked on values it wrote itself. A CUDA error during `run` is kept and
//! returned by the next `verify`, so it fails the point with the driver's message.

use std::ops::Range;
use std::sync::Arc;

use cudarc::cublas::sys::{cublasComputeType_t, cublasGemmAlgo_t, cublasOperation_t, cudaDataType};
use cudarc::cublas::{CudaBlas, Gemm as _, GemmConfig};
use cudarc::driver::sys::CUevent_flags;
use cudarc::driver::{
    CudaContext, CudaEvent, CudaFunction, CudaSlice, CudaStream, DevicePtr, DevicePtrMut,
    DeviceRepr, LaunchConfig, PushKernelArg, ValidAsZeroBits,
};
use cudarc::nvrtc::Ptx;
use half::bf16;

use super::launch::{self, Launch};
use super::reference::{self, Freivalds};
use super::runtime::{self, DeviceInfo};
use super::split::split;
pub use super::Transfers;
use super::{Elementwise, Gemm, Reduce, Transpose};

/// One timed, verified GPU computation (what scalelab's point runner drives).
pub trait Bench {
    /// One repetition on every device; waits for all of them.
    fn run(&mut self);
    /// Check the last repetition's result against the CPU reference.
    fn verify(&mut self) -> Result<(), String>;
    /// The last repetition's phase times in seconds (slowest device).
    fn metrics(&self) -> Vec<(&'static str, f64)>;
    /// The devices this benchmark runs on, as the driver describes them (for the record's peaks).
    fn devices(&self) -> Vec<DeviceInfo>;
}

/// This process's share of a point's problem. A point on one process takes it whole
/// ([`Share::WHOLE`]); under MPI, rank `index` of `count` takes the `index`-th of `count`
/// contiguous parts (elements, or rows of the matrices) and runs it on its own GPUs, ordinals
/// `first_device` onwards, splitting it again across them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    /// This process's part (the MPI rank).
    pub index: usize,
    /// Parts in all (the MPI world's size).
    pub count: usize,
    /// The first device ordinal this process uses.
    pub first_device: usize,
}

impl Share {
    /// The whole problem, on devices 0 onwards.
    pub const WHOLE: Share = Share {
        index: 0,
        count: 1,
        first_device: 0,
    };

    /// This share of `n` items, cut in multiples of `granule`.
    pub fn range(&self, n: usize, granule: usize) -> Result<Range<usize>, String> {
        Ok(split(n, self.count, granule)?[self.index.min(self.count - 1)].clone())
    }
}

fn drv<T>(what: &str, r: Result<T, cudarc::driver::DriverError>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e}"))
}

/// One device of a point: its context, stream, facts and four timing events.
struct Lane {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    info: DeviceInfo,
    events: [CudaEvent; 4],
}

impl Lane {
    fn open(ordinal: usize) -> Result<Lane, String> {
        let ctx = runtime::context(ordinal)?;
        let info = runtime::device_info(&ctx)?;
        let stream = drv("creating a stream", ctx.new_stream())?;
        let event = || {
            drv(
                "creating an event",
                ctx.new_event(Some(CUevent_flags::CU_EVENT_DEFAULT)),
            )
        };
        let events = [event()?, event()?, event()?, event()?];
        Ok(Lane {
            ctx,
            stream,
            info,
            events,
        })
    }

    /// `kernel`, compiled for this device by NVRTC (once per process and architecture).
    fn function(&self, kernel: &str) -> Result<CudaFunction, String> {
        let src = super::source_of(kernel).ok_or_else(|| format!("no source defines {kernel}"))?;
        let ptx = runtime::ptx_for(src.file, src.text, &self.info.arch())?;
        let module = drv(
            &format!("loading {} on GPU {}", src.file, self.info.ordinal),
            self.ctx.load_module(Ptx::from_src(ptx)),
        )?;
        drv(&format!("finding {kernel}"), module.load_function(kernel))
    }

    /// Refuse a problem that does not fit this device's free memory.
    fn fits(&self, bytes: f64) -> Result<(), String> {
        let (free, _) = drv("asking for free memory", self.ctx.mem_get_info())?;
        if bytes > 0.95 * free as f64 {
            return Err(format!(
                "needs {:.2} GiB on GPU {} ({}), which has {:.2} GiB free; use a smaller size or more GPUs",
                bytes / f64::from(1u32 << 30),
                self.info.ordinal,
                self.info.name,
                free as f64 / f64::from(1u32 << 30)
            ));
        }
        Ok(())
    }

    fn mark(&self, i: usize) -> Result<(), String> {
        drv("recording an event", self.events[i].record(&self.stream))
    }

    fn seconds(&self, from: usize, to: usize) -> Result<f64, String> {
        let ms = drv(
            "reading an event",
            self.events[from].elapsed_ms(&self.events[to]),
        )?;
        Ok(f64::from(ms) * 1e-3)
    }

    fn alloc<T: DeviceRepr + ValidAsZeroBits>(&self, len: usize) -> Result<CudaSlice<T>, String> {
        drv(
            &format!("allocating on GPU {}", self.info.ordinal),
            self.stream.alloc_zeros::<T>(len.max(1)),
        )
    }

    fn upload<T: DeviceRepr>(&self, host: &[T], dev: &mut CudaSlice<T>) -> Result<(), String> {
        drv("copying to the GPU", self.stream.memcpy_htod(host, dev))
    }

    fn download<T: DeviceRepr>(&self, dev: &CudaSlice<T>, host: &mut [T]) -> Result<(), String> {
        let view = dev.slice(0..host.len());
        drv("copying from the GPU", self.stream.memcpy_dtoh(&view, host))
    }

    fn sync(&self) -> Result<(), String> {
        drv(
            &format!("GPU {}", self.info.ordinal),
            self.stream.synchronize(),
        )
    }
}

/// Open devices `first..first + gpus` (at least one), after checking the driver, the device
/// count and NVRTC.
fn lanes(gpus: usize, first: usize) -> Result<Vec<Lane>, String> {
    let gpus = gpus.max(1);
    let count = runtime::driver()?;
    if first + gpus > count {
        return Err(if first == 0 {
            format!("the point wants {gpus} GPUs but this machine has {count}; use gpus <= {count}")
        } else {
            format!(
                "this rank's GPUs would be {first}..={} ({gpus} per rank after those of the ranks \
                 before it on this node), but this machine has {count}; use fewer ranks per node \
                 or fewer gpus",
                first + gpus - 1
            )
        });
    }
    runtime::nvrtc()?;
    (first..first + gpus).map(Lane::open).collect()
}

fn config(l: Launch) -> LaunchConfig {
    LaunchConfig {
        grid_dim: l.grid,
        block_dim: l.block,
        shared_mem_bytes: 0,
    }
}

/// The per-benchmark parts the timing loop drives.
trait Parts {
    fn lanes(&self) -> &[Lane];
    /// Queue the host→device copies of device `d`'s inputs.
    fn upload(&mut self, d: usize) -> Result<(), String>;
    /// Queue device `d`'s kernel.
    fn launch(&mut self, d: usize) -> Result<(), String>;
    /// Queue the device→host copy of device `d`'s output.
    fn download(&mut self, d: usize) -> Result<(), String>;
    /// Compare the downloaded output with the reference, then queue the zeroing of the outputs.
    fn check(&mut self) -> Result<(), String>;
}

#[derive(Clone, Copy, Default)]
struct Timing {
    h2d: f64,
    kernel: f64,
    d2h: f64,
}

/// Drives any [`Parts`] through the repetition described in the module documentation.
struct Timed<P: Parts> {
    parts: P,
    transfers: Transfers,
    last: Timing,
    error: Option<String>,
    downloaded: bool,
}

impl<P: Parts> Timed<P> {
    fn boxed(parts: P, transfers: Transfers) -> Result<Box<dyn Bench>, String>
    where
        P: 'static,
    {
        let mut t = Timed {
            parts,
            transfers,
            last: Timing::default(),
            error: None,
            downloaded: false,
        };
        // Resident inputs are copied once, untimed.
        for d in 0..t.parts.lanes().len() {
            t.parts.upload(d)?;
        }
        for lane in t.parts.lanes() {
            lane.sync()?;
        }
        Ok(Box::new(t))
    }

    fn repetition(&mut self) -> Result<Timing, String> {
        let timed = self.transfers == Transfers::Timed;
        for d in 0..self.parts.lanes().len() {
            self.parts.lanes()[d].mark(0)?;
            if timed {
                self.parts.upload(d)?;
            }
            self.parts.lanes()[d].mark(1)?;
            self.parts.launch(d)?;
            self.parts.lanes()[d].mark(2)?;
            if timed {
                self.parts.download(d)?;
            }
            self.parts.lanes()[d].mark(3)?;
        }
        let mut t = Timing::default();
        for lane in self.parts.lanes() {
            lane.sync()?;
            t.h2d = t.h2d.max(lane.seconds(0, 1)?);
            t.kernel = t.kernel.max(lane.seconds(1, 2)?);
            t.d2h = t.d2h.max(lane.seconds(2, 3)?);
        }
        Ok(t)
    }
}

impl<P: Parts> Bench for Timed<P> {
    fn run(&mut self) {
        match self.repetition() {
            Ok(t) => {
                self.last = t;
                self.downloaded = self.transfers == Transfers::Timed;
            }
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }

    fn verify(&mut self) -> Result<(), String> {
        if let Some(e) = self.error.take() {
            return Err(format!("CUDA error during the run: {e}"));
        }
        if !self.downloaded {
            for d in 0..self.parts.lanes().len() {
                self.parts.download(d)?;
            }
        }
        for lane in self.parts.lanes() {
            lane.sync()?;
        }
        self.downloaded = false;
        let result = self.parts.check();
        for lane in self.parts.lanes() {
            lane.sync()?;
        }
        result
    }

    fn devices(&self) -> Vec<DeviceInfo> {
        self.parts.lanes().iter().map(|l| l.info.clone()).collect()
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let mut m = vec![("kernel_s", self.last.kernel)];
        if self.transfers == Transfers::Timed {
            m.push(("h2d_s", self.last.h2d));
            m.push(("d2h_s", self.last.d2h));
        }
        m
    }
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels

/// A value type of the element-wise kernels (f32 for SAXPY, f64 for STREAM).
trait Element: DeviceRepr + ValidAsZeroBits + Copy + Into<f64> + Send + Sync + Unpin + 'static {
    fn from_f64(v: f64) -> Self;
}
impl Element for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}
impl Element for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
}

struct ElementwiseParts<T: Element> {
    op: Elementwise,
    /// Global index of this share's first element.
    offset: usize,
    lanes: Vec<Lane>,
    ranges: Vec<Range<usize>>,
    funcs: Vec<Option<CudaFunction>>,
    host_in: Vec<Vec<T>>,
    host_out: Vec<T>,
    dev_in: Vec<Vec<CudaSlice<T>>>,
    dev_out: Vec<CudaSlice<T>>,
    scalar: Option<T>,
}

/// SAXPY, a STREAM kernel or the device copy over this share of `n` elements, split across
/// `gpus` devices.
pub fn elementwise(
    op: Elementwise,
    n: usize,
    gpus: usize,
    share: &Share,
    transfers: Transfers,
) -> Result<Box<dyn Bench>, String> {
    use reference::*;
    let w = (share, transfers);
    match op {
        Elementwise::Saxpy => {
            elementwise_typed::<f32>(op, n, gpus, w, &[saxpy_x, saxpy_y], Some(SAXPY_A))
        }
        Elementwise::Copy | Elementwise::Memcpy => {
            elementwise_typed::<f64>(op, n, gpus, w, &[stream_a], None)
        }
        Elementwise::Scale => elementwise_typed::<f64>(op, n, gpus, w, &[stream_c], Some(STREAM_Q)),
        Elementwise::Add => elementwise_typed::<f64>(op, n, gpus, w, &[stream_a, stream_b], None),
        Elementwise::Triad => {
            elementwise_typed::<f64>(op, n, gpus, w, &[stream_b, stream_c], Some(STREAM_Q))
        }
    }
}

fn elementwise_typed<T: Element>(
    op: Elementwise,
    n: usize,
    gpus: usize,
    (share, transfers): (&Share, Transfers),
    inputs: &[fn(usize) -> T],
    scalar: Option<T>,
) -> Result<Box<dyn Bench>, String> {
    let mine = share.range(n, 1)?;
    let lanes = lanes(gpus, share.first_device)?;
    let ranges = split(mine.len(), lanes.len(), 1)?;
    let host_in: Vec<Vec<T>> = inputs
        .iter()
        .map(|f| mine.clone().map(f).collect())
        .collect();
    let mut funcs = Vec::new();
    let mut dev_in = Vec::new();
    let mut dev_out = Vec::new();
    for (lane, r) in lanes.iter().zip(&ranges) {
        lane.fits((op.arrays() * op.element_bytes() * r.len()) as f64)?;
        funcs.push(op.kernel().map(|k| lane.function(k)).transpose()?);
        dev_in.push(
            inputs
                .iter()
                .map(|_| lane.alloc::<T>(r.len()))
                .collect::<Result<Vec<_>, _>>()?,
        );
        dev_out.push(lane.alloc::<T>(r.len())?);
        launch::elementwise(r.len() as u64)?.check()?;
    }
    let parts = ElementwiseParts {
        op,
        offset: mine.start,
        lanes,
        ranges,
        funcs,
        host_in,
        host_out: vec![T::from_f64(0.0); mine.len()],
        dev_in,
        dev_out,
        scalar,
    };
    Timed::boxed(parts, transfers)
}

impl<T: Element> Parts for ElementwiseParts<T> {
    fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    fn upload(&mut self, d: usize) -> Result<(), String> {
        let r = self.ranges[d].clone();
        for (host, dev) in self.host_in.iter().zip(&mut self.dev_in[d]) {
            self.lanes[d].upload(&host[r.clone()], dev)?;
        }
        Ok(())
    }

    fn launch(&mut self, d: usize) -> Result<(), String> {
        let lane = &self.lanes[d];
        let len = self.ranges[d].len() as u64;
        let out = &mut self.dev_out[d];
        let ins = &self.dev_in[d];
        match &self.funcs[d] {
            None => drv("device copy", lane.stream.memcpy_dtod(&ins[0], out)),
            Some(f) => {
                let cfg = config(launch::elementwise(len)?);
                let mut b = lane.stream.launch_builder(f);
                b.arg(out);
                for x in ins {
                    b.arg(x);
                }
                if let Some(q) = &self.scalar {
                    b.arg(q);
                }
                b.arg(&len);
                // SAFETY: the arguments match the kernel's signature in stream.cu (output,
                // inputs, optional scalar, length), and every buffer holds `len` elements.
                drv("launching", unsafe { b.launch(cfg) }).map(|_| ())
            }
        }
    }

    fn download(&mut self, d: usize) -> Result<(), String> {
        let r = self.ranges[d].clone();
        self.lanes[d].download(&self.dev_out[d], &mut self.host_out[r])
    }

    fn check(&mut self) -> Result<(), String> {
        let (op, offset) = (self.op, self.offset);
        let (bad, first) = reference::mismatches(&self.host_out, |i| {
            reference::elementwise_expected(op, offset + i)
        });
        for (lane, out) in self.lanes.iter().zip(&mut self.dev_out) {
            drv("zeroing the output", lane.stream.memset_zeros(out))?;
        }
        match first {
            None => Ok(()),
            Some((i, got, want)) => Err(format!(
                "{}: {bad} of {} elements are wrong; first at index {}: {got} instead of {want}",
                op.name(),
                self.host_out.len(),
                offset + i
            )),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reduction

struct ReduceParts {
    variant: Reduce,
    lanes: Vec<Lane>,
    ranges: Vec<Range<usize>>,
    funcs: Vec<CudaFunction>,
    host_in: Vec<u32>,
    host_totals: Vec<u64>,
    dev_in: Vec<CudaSlice<u32>>,
    dev_total: Vec<CudaSlice<u64>>,
    expected: u64,
}

/// A reduction step over this share of `n` values, split across `gpus` devices; the host adds
/// the devices' sums and checks them against the serial sum of the share.
pub fn reduce(
    variant: Reduce,
    n: usize,
    gpus: usize,
    share: &Share,
    transfers: Transfers,
) -> Result<Box<dyn Bench>, String> {
    let mine = share.range(n, 1)?;
    let lanes = lanes(gpus, share.first_device)?;
    let ranges = split(mine.len(), lanes.len(), 1)?;
    let host_in: Vec<u32> = mine.clone().map(reference::reduce_input).collect();
    let expected = reference::reduce_serial_range(mine);
    let mut funcs = Vec::new();
    let mut dev_in = Vec::new();
    let mut dev_total = Vec::new();
    for (lane, r) in lanes.iter().zip(&ranges) {
        lane.fits(4.0 * r.len() as f64)?;
        launch::reduce(variant, r.len() as u64, lane.info.sms)?.check()?;
        funcs.push(lane.function(variant.kernel())?);
        dev_in.push(lane.alloc::<u32>(r.len())?);
        dev_total.push(lane.alloc::<u64>(1)?);
    }
    let parts = ReduceParts {
        variant,
        host_totals: vec![0; lanes.len()],
        lanes,
        ranges,
        funcs,
        host_in,
        dev_in,
        dev_total,
        expected,
    };
    Timed::boxed(parts, transfers)
}

impl Parts for ReduceParts {
    fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    fn upload(&mut self, d: usize) -> Result<(), String> {
        let r = self.ranges[d].clone();
        self.lanes[d].upload(&self.host_in[r], &mut self.dev_in[d])
    }

    fn launch(&mut self, d: usize) -> Result<(), String> {
        let lane = &self.lanes[d];
        let len = self.ranges[d].len() as u64;
        let total = &mut self.dev_total[d];
        drv("zeroing the sum", lane.stream.memset_zeros(total))?;
        let cfg = config(launch::reduce(self.variant, len, lane.info.sms)?);
        let mut b = lane.stream.launch_builder(&self.funcs[d]);
        b.arg(total).arg(&self.dev_in[d]).arg(&len);
        // SAFETY: (total, x, n) as in reduce.cu; x holds `len` values.
        drv("launching", unsafe { b.launch(cfg) }).map(|_| ())
    }

    fn download(&mut self, d: usize) -> Result<(), String> {
        self.lanes[d].download(&self.dev_total[d], &mut self.host_totals[d..d + 1])
    }

    fn check(&mut self) -> Result<(), String> {
        let got: u64 = self.host_totals.iter().sum();
        self.host_totals.fill(0);
        if got == self.expected {
            Ok(())
        } else {
            Err(format!(
                "reduce {}: sum {got} instead of {} (difference {})",
                self.variant.name(),
                self.expected,
                got as i128 - self.expected as i128
            ))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Transpose

struct TransposeParts {
    variant: Transpose,
    n: usize,
    /// Global index of this share's first row.
    offset: usize,
    lanes: Vec<Lane>,
    ranges: Vec<Range<usize>>,
    funcs: Vec<CudaFunction>,
    host_in: Vec<f32>,
    host_out: Vec<Vec<f32>>,
    dev_in: Vec<CudaSlice<f32>>,
    dev_out: Vec<CudaSlice<f32>>,
}

/// A transpose of this share's band of rows of an `n × n` f32 matrix; with several GPUs each
/// transposes a band of the band.
pub fn transpose(
    variant: Transpose,
    n: usize,
    gpus: usize,
    share: &Share,
    transfers: Transfers,
) -> Result<Box<dyn Bench>, String> {
    let mine = share.range(n, 1)?;
    let lanes = lanes(gpus, share.first_device)?;
    let ranges = split(mine.len(), lanes.len(), 1)?;
    let host_in: Vec<f32> = (mine.start * n..mine.end * n)
        .map(reference::transpose_input)
        .collect();
    let mut funcs = Vec::new();
    let mut dev_in = Vec::new();
    let mut dev_out = Vec::new();
    let mut host_out = Vec::new();
    for (lane, r) in lanes.iter().zip(&ranges) {
        lane.fits(8.0 * (r.len() * n) as f64)?;
        launch::transpose(variant, r.len() as u64, n as u64)?.check()?;
        funcs.push(lane.function(variant.kernel())?);
        dev_in.push(lane.alloc::<f32>(r.len() * n)?);
        dev_out.push(lane.alloc::<f32>(r.len() * n)?);
        host_out.push(vec![0f32; r.len() * n]);
    }
    let parts = TransposeParts {
        variant,
        n,
        offset: mine.start,
        lanes,
        ranges,
        funcs,
        host_in,
        host_out,
        dev_in,
        dev_out,
    };
    Timed::boxed(parts, transfers)
}

impl Parts for TransposeParts {
    fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    fn upload(&mut self, d: usize) -> Result<(), String> {
        let r = &self.ranges[d];
        self.lanes[d].upload(
            &self.host_in[r.start * self.n..r.end * self.n],
            &mut self.dev_in[d],
        )
    }

    fn launch(&mut self, d: usize) -> Result<(), String> {
        let lane = &self.lanes[d];
        let rows = self.ranges[d].len() as i32;
        let cols = self.n as i32;
        let cfg = config(launch::transpose(self.variant, rows as u64, cols as u64)?);
        let mut b = lane.stream.launch_builder(&self.funcs[d]);
        b.arg(&mut self.dev_out[d])
            .arg(&self.dev_in[d])
            .arg(&rows)
            .arg(&cols);
        // SAFETY: (out, in, rows, cols) as in transpose.cu; both buffers hold rows × cols.
        drv("launching", unsafe { b.launch(cfg) }).map(|_| ())
    }

    fn download(&mut self, d: usize) -> Result<(), String> {
        self.lanes[d].download(&self.dev_out[d], &mut self.host_out[d])
    }

    fn check(&mut self) -> Result<(), String> {
        let n = self.n;
        let mut result = Ok(());
        for (d, r) in self.ranges.iter().enumerate() {
            let input = &self.host_in[r.start * n..r.end * n];
            let (bad, first) =
                reference::transpose_mismatches(input, &self.host_out[d], r.len(), n);
            if let (Some((row, col, got, want)), Ok(())) = (first, &result) {
                result = Err(format!(
                    "transpose {}: {bad} elements wrong on GPU {d}; first out[{row}][{}] = {got} instead of {want}",
                    self.variant.name(),
                    col + r.start + self.offset
                ));
            }
            drv(
                "zeroing the output",
                self.lanes[d].stream.memset_zeros(&mut self.dev_out[d]),
            )?;
        }
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Matrix products

/// Device matrices of one GPU: its band of A's rows, all of B, its band of C.
enum DevMats {
    F32(CudaSlice<f32>, CudaSlice<f32>, CudaSlice<f32>),
    F64(CudaSlice<f64>, CudaSlice<f64>, CudaSlice<f64>),
    Bf16(CudaSlice<bf16>, CudaSlice<bf16>, CudaSlice<f32>),
}

/// Host copies of A and B in the variant's input type.
enum HostInputs {
    F32(Vec<f32>, Vec<f32>),
    F64(Vec<f64>, Vec<f64>),
    Bf16(Vec<bf16>, Vec<bf16>),
}

/// Host C in the variant's output type.
enum HostOutput {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

struct GemmParts {
    variant: Gemm,
    n: usize,
    lanes: Vec<Lane>,
    ranges: Vec<Range<usize>>,
    funcs: Vec<Option<CudaFunction>>,
    blas: Vec<Option<CudaBlas>>,
    host_in: HostInputs,
    host_c: HostOutput,
    dev: Vec<DevMats>,
    freivalds: Freivalds,
}

/// `C = A·B` for `n × n` matrices in one variant, for this share's band of C's rows; with
/// several GPUs each computes a band of the band from its rows of A and a full copy of B.
pub fn gemm(
    variant: Gemm,
    n: usize,
    gpus: usize,
    share: &Share,
    transfers: Transfers,
) -> Result<Box<dyn Bench>, String> {
    let lanes = lanes(gpus, share.first_device)?;
    if variant.kernel().is_none() {
        runtime::cublas()?;
    }
    let granule = if variant == Gemm::RegBlock {
        launch::REG_BM as usize
    } else {
        1
    };
    let mine = share.range(n, granule)?;
    let ranges = split(mine.len(), lanes.len(), granule)?;
    for r in &ranges {
        launch::gemm_shape_ok(variant, r.len() as u64, n as u64, n as u64)?;
        if let Some(l) = launch::gemm(variant, r.len() as u64, n as u64, n as u64)? {
            l.check()?;
        }
    }
    let a = reference::gemm_rows(0, mine.clone(), n);
    let b = reference::gemm_matrix(1, n);
    let freivalds = Freivalds::new(&a, &b, mine.len(), n);
    let host_in = match variant {
        Gemm::CublasDgemm => HostInputs::F64(
            a.iter().map(|&v| f64::from(v)).collect(),
            b.iter().map(|&v| f64::from(v)).collect(),
        ),
        Gemm::TensorBf16 => HostInputs::Bf16(
            a.iter().map(|&v| bf16::from_f32(v)).collect(),
            b.iter().map(|&v| bf16::from_f32(v)).collect(),
        ),
        _ => HostInputs::F32(a, b),
    };
    let host_c = match variant {
        Gemm::CublasDgemm => HostOutput::F64(vec![0.0; mine.len() * n]),
        _ => HostOutput::F32(vec![0.0; mine.len() * n]),
    };
    let (ib, ob) = (variant.input_bytes(), variant.output_bytes());
    let mut funcs = Vec::new();
    let mut blas = Vec::new();
    let mut dev = Vec::new();
    for (lane, r) in lanes.iter().zip(&ranges) {
        let rows = r.len();
        lane.fits((ib * (rows * n + n * n) + ob * rows * n) as f64)?;
        funcs.push(variant.kernel().map(|k| lane.function(k)).transpose()?);
        blas.push(match variant.kernel() {
            Some(_) => None,
            None => Some(
                CudaBlas::new(lane.stream.clone())
                    .map_err(|e| format!("creating a cuBLAS handle: {e:?}"))?,
            ),
        });
        dev.push(match host_in {
            HostInputs::F32(..) => DevMats::F32(
                lane.alloc(rows * n)?,
                lane.alloc(n * n)?,
                lane.alloc(rows * n)?,
            ),
            HostInputs::F64(..) => DevMats::F64(
                lane.alloc(rows * n)?,
                lane.alloc(n * n)?,
                lane.alloc(rows * n)?,
            ),
            HostInputs::Bf16(..) => DevMats::Bf16(
                lane.alloc(rows * n)?,
                lane.alloc(n * n)?,
                lane.alloc(rows * n)?,
            ),
        });
    }
    let parts = GemmParts {
        variant,
        n,
        lanes,
        ranges,
        funcs,
        blas,
        host_in,
        host_c,
        dev,
        freivalds,
    };
    Timed::boxed(parts, transfers)
}

impl Parts for GemmParts {
    fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    fn upload(&mut self, d: usize) -> Result<(), String> {
        let (n, r) = (self.n, self.ranges[d].clone());
        let band = r.start * n..r.end * n;
        let lane = &self.lanes[d];
        match (&self.host_in, &mut self.dev[d]) {
            (HostInputs::F32(a, b), DevMats::F32(da, db, _)) => {
                lane.upload(&a[band], da)?;
                lane.upload(b, db)
            }
            (HostInputs::F64(a, b), DevMats::F64(da, db, _)) => {
                lane.upload(&a[band], da)?;
                lane.upload(b, db)
            }
            (HostInputs::Bf16(a, b), DevMats::Bf16(da, db, _)) => {
                lane.upload(&a[band], da)?;
                lane.upload(b, db)
            }
            _ => Err("internal: host and device matrix types differ".into()),
        }
    }

    fn launch(&mut self, d: usize) -> Result<(), String> {
        let lane = &self.lanes[d];
        let n = self.n as i32;
        let m = self.ranges[d].len() as i32;
        let variant = self.variant;
        if let (Some(f), DevMats::F32(a, b, c)) = (&self.funcs[d], &mut self.dev[d]) {
            let cfg = config(
                launch::gemm(variant, m as u64, n as u64, n as u64)?
                    .ok_or("internal: no launch for a kernel variant")?,
            );
            let mut builder = lane.stream.launch_builder(f);
            builder.arg(&m).arg(&n).arg(&n).arg(&*a).arg(&*b).arg(c);
            // SAFETY: (m, n, k, A, B, C) as in sgemm.cu; A is m × n, B n × n, C m × n.
            return drv("launching", unsafe { builder.launch(cfg) }).map(|_| ());
        }
        let blas = self.blas[d]
            .as_ref()
            .ok_or("internal: no cuBLAS handle for a library variant")?;
        // Row-major C (m × n) = A (m × n) · B (n × n) is, in cuBLAS's column-major terms,
        // Cᵀ = Bᵀ · Aᵀ: an n × m result from B as the left operand.
        let blas_err = |e| format!("cuBLAS: {e:?}");
        match &mut self.dev[d] {
            DevMats::F32(a, b, c) if variant == Gemm::Cublas => {
                let cfg = row_major_product::<f32>(m, n);
                // SAFETY: the sizes describe the buffers allocated for this band.
                unsafe { blas.gemm(cfg, &*b, &*a, c) }.map_err(blas_err)
            }
            DevMats::F64(a, b, c) => {
                let cfg = row_major_product::<f64>(m, n);
                // SAFETY: as above.
                unsafe { blas.gemm(cfg, &*b, &*a, c) }.map_err(blas_err)
            }
            DevMats::F32(a, b, c) => {
                let stream = &lane.stream;
                let (pa, _ga) = a.device_ptr(stream);
                let (pb, _gb) = b.device_ptr(stream);
                let (pc, _gc) = c.device_ptr_mut(stream);
                // SAFETY: as above; f32 in and out, TF32 tensor-core arithmetic.
                unsafe {
                    gemm_ex(
                        blas,
                        (m, n),
                        (pb, pa, pc),
                        cudaDataType::CUDA_R_32F,
                        cublasComputeType_t::CUBLAS_COMPUTE_32F_FAST_TF32,
                    )
                }
                .map_err(blas_err)
            }
            DevMats::Bf16(a, b, c) => {
                let stream = &lane.stream;
                let (pa, _ga) = a.device_ptr(stream);
                let (pb, _gb) = b.device_ptr(stream);
                let (pc, _gc) = c.device_ptr_mut(stream);
                // SAFETY: as above; bf16 in, f32 accumulation and output.
                unsafe {
                    gemm_ex(
                        blas,
                        (m, n),
                        (pb, pa, pc),
                        cudaDataType::CUDA_R_16BF,
                        cublasComputeType_t::CUBLAS_COMPUTE_32F,
                    )
                }
                .map_err(blas_err)
            }
        }
    }

    fn download(&mut self, d: usize) -> Result<(), String> {
        let (n, r) = (self.n, self.ranges[d].clone());
        let band = r.start * n..r.end * n;
        let lane = &self.lanes[d];
        match (&mut self.host_c, &self.dev[d]) {
            (HostOutput::F32(c), DevMats::F32(_, _, dc) | DevMats::Bf16(_, _, dc)) => {
                lane.download(dc, &mut c[band])
            }
            (HostOutput::F64(c), DevMats::F64(_, _, dc)) => lane.download(dc, &mut c[band]),
            _ => Err("internal: host and device matrix types differ".into()),
        }
    }

    fn check(&mut self) -> Result<(), String> {
        let result = match &mut self.host_c {
            HostOutput::F32(c) => {
                let r = self.freivalds.check(c);
                c.fill(0.0);
                r
            }
            HostOutput::F64(c) => {
                let r = self.freivalds.check(c);
                c.fill(0.0);
                r
            }
        };
        for (lane, dev) in self.lanes.iter().zip(&mut self.dev) {
            let zeroed = match dev {
                DevMats::F32(_, _, c) | DevMats::Bf16(_, _, c) => lane.stream.memset_zeros(c),
                DevMats::F64(_, _, c) => lane.stream.memset_zeros(c),
            };
            drv("zeroing C", zeroed)?;
        }
        result.map_err(|e| format!("gemm {}: {e}", self.variant.name()))
    }
}

/// The cuBLAS configuration of the row-major band product `C (m × n) = A (m × n) · B (n × n)`,
/// which is `Cᵀ = Bᵀ · Aᵀ` in cuBLAS's column-major terms: an `n × m` result with B as the left
/// operand, `alpha = 1`, `beta = 0`.
fn row_major_product<T: From<u8>>(m: i32, n: i32) -> GemmConfig<T> {
    GemmConfig {
        transa: cublasOperation_t::CUBLAS_OP_N,
        transb: cublasOperation_t::CUBLAS_OP_N,
        m: n,
        n: m,
        k: n,
        alpha: T::from(1),
        lda: n,
        ldb: n,
        beta: T::from(0),
        ldc: n,
    }
}

/// `cublasGemmEx` for the row-major band product (see [`GemmParts::launch`]): inputs of
/// `input_type`, f32 output, `compute` arithmetic, `alpha = 1`, `beta = 0`.
///
/// # Safety
/// The pointers must address an `n × n` B, an `m × n` A (both of `input_type`) and an `m × n`
/// f32 C on the handle's device.
unsafe fn gemm_ex(
    blas: &CudaBlas,
    (m, n): (i32, i32),
    (b, a, c): (u64, u64, u64),
    input_type: cudaDataType,
    compute: cublasComputeType_t,
) -> Result<(), cudarc::cublas::result::CublasError> {
    let (alpha, beta) = (1.0f32, 0.0f32);
    // SAFETY: the caller guarantees the three device buffers and their sizes; alpha and beta are
    // host f32s alive for the call (the handle's default host pointer mode).
    unsafe {
        cudarc::cublas::result::gemm_ex(
            *blas.handle(),
            cublasOperation_t::CUBLAS_OP_N,
            cublasOperation_t::CUBLAS_OP_N,
            n,
            m,
            n,
            (&alpha) as *const f32 as *const _,
            b as *const _,
            input_type,
            n,
            a as *const _,
            input_type,
            n,
            (&beta) as *const f32 as *const _,
            c as *mut _,
            cudaDataType::CUDA_R_32F,
            n,
            compute,
            cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ranks_shares_cover_the_problem_in_whole_tiles() {
        let share = |index| Share {
            index,
            count: 3,
            first_device: 0,
        };
        let parts: Vec<_> = (0..3).map(|i| share(i).range(8192, 128).unwrap()).collect();
        assert_eq!(parts, vec![0..2816, 2816..5504, 5504..8192]);
        assert_eq!(Share::WHOLE.range(1000, 1).unwrap(), 0..1000);
        assert!(share(2).range(200, 128).is_err());
    }

    #[test]
    fn without_a_driver_every_benchmark_fails_with_the_fix() {
        if runtime::driver().is_ok() {
            return; // A GPU machine: the integration tests run these for real.
        }
        let t = Transfers::Resident;
        let w = &Share::WHOLE;
        let errors = [
            elementwise(Elementwise::Triad, 1000, 1, w, t).err(),
            reduce(Reduce::Atomic, 1000, 1, w, t).err(),
            transpose(Transpose::Tiled, 64, 2, w, t).err(),
            gemm(Gemm::TensorBf16, 256, 1, w, t).err(),
        ];
        for e in errors {
            assert!(e
                .unwrap()
                .starts_with("no CUDA driver: libcuda.so.1 was not found"));
        }
    }
}

//! The CUDA run time as the benchmarks see it: is there a driver, which devices, compile a
//! source with NVRTC.
//!
//! cudarc loads `libcuda`, `libnvrtc` and `libcublas` lazily and **panics** on the first call
//! into a library it cannot find, so every entry point here first asks cudarc's loader whether
//! the library is present and turns an absence into an error that names the fix. Functions
//! return `Result<_, String>`: the message becomes a failed point's reason or a line of
//! `scalelab info`.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::CudaContext;

/// The fix for a missing driver.
const DRIVER_FIX: &str = "no CUDA driver: libcuda.so.1 was not found. Install the NVIDIA driver \
     (nvidia-smi must work), or add the folder holding libcuda.so.1 to LD_LIBRARY_PATH";

/// Check that the CUDA driver library can be loaded and initialised, and return the number of
/// devices it sees (at least 1).
pub fn driver() -> Result<usize, String> {
    // SAFETY: only tries to open the library by its candidate names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(DRIVER_FIX.into());
    }
    let count = CudaContext::device_count().map_err(|e| {
        format!(
            "the CUDA driver is installed but failed to initialise ({e}); check `nvidia-smi` \
             and that the driver matches the kernel module"
        )
    })?;
    if count <= 0 {
        return Err(
            "no CUDA device: the driver sees no GPU (check `nvidia-smi`, and \
                    CUDA_VISIBLE_DEVICES if it is set)"
                .into(),
        );
    }
    Ok(count as usize)
}

/// Check that NVRTC (CUDA's run-time compiler) can be loaded.
pub fn nvrtc() -> Result<(), String> {
    // SAFETY: only tries to open the library by its candidate names.
    if unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(
            "NVRTC not found (libnvrtc.so.13 or libnvrtc.so.12): install the CUDA toolkit's \
             NVRTC, or the PyPI wheel (scripts/install-deps.sh --nvrtc), and add its lib \
             folder to LD_LIBRARY_PATH"
                .into(),
        )
    }
}

/// Check that cuBLAS can be loaded.
pub fn cublas() -> Result<(), String> {
    // SAFETY: only tries to open the library by its candidate names.
    if unsafe { cudarc::cublas::sys::is_culib_present() } {
        Ok(())
    } else {
        Err(
            "cuBLAS not found (libcublas.so.13 or libcublas.so.12, with libcublasLt beside \
             it): install the CUDA toolkit's cuBLAS, or the PyPI wheel nvidia-cublas-cu12, and \
             add its lib folder to LD_LIBRARY_PATH"
                .into(),
        )
    }
}

/// PTX compiled from one source, with NVRTC's log (warnings; empty when there were none).
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The PTX text.
    pub ptx: String,
    /// NVRTC's log.
    pub log: String,
}

/// Options every source is compiled with, besides the architecture.
pub const NVRTC_OPTIONS: &[&str] = &["--std=c++17", "-lineinfo"];

/// Compile `source` (named `file` in messages) to PTX for `arch` (e.g. "sm_90"). A compile error
/// returns NVRTC's log.
pub fn compile(file: &str, source: &str, arch: &str) -> Result<Compiled, String> {
    nvrtc()?;
    let src = CString::new(source).map_err(|_| format!("{file} contains a NUL byte"))?;
    let name = CString::new(file).map_err(|_| format!("{file}: bad name"))?;
    let prog = cudarc::nvrtc::result::create_program(&src, Some(&name))
        .map_err(|e| format!("NVRTC could not create a program for {file}: {e:?}"))?;
    let mut options: Vec<String> = NVRTC_OPTIONS.iter().map(|s| s.to_string()).collect();
    options.push(format!("--gpu-architecture={arch}"));
    // SAFETY: `prog` was just created and is destroyed exactly once below.
    let compiled = unsafe { cudarc::nvrtc::result::compile_program(prog, &options) };
    // SAFETY: as above.
    let log = unsafe { cudarc::nvrtc::result::get_program_log(prog) }
        .map(|chars| c_text(&chars))
        .unwrap_or_default();
    let result = match compiled {
        Ok(()) => {
            // SAFETY: as above; the program compiled.
            unsafe { cudarc::nvrtc::result::get_ptx(prog) }
                .map(|chars| Compiled {
                    ptx: c_text(&chars),
                    log: log.trim().to_string(),
                })
                .map_err(|e| format!("NVRTC compiled {file} but returned no PTX: {e:?}"))
        }
        Err(e) => Err(format!(
            "NVRTC failed to compile {file} for {arch} ({e:?}):\n{}",
            log.trim()
        )),
    };
    // SAFETY: as above.
    let _ = unsafe { cudarc::nvrtc::result::destroy_program(prog) };
    result
}

/// A NUL-terminated C string from NVRTC as text.
fn c_text(chars: &[std::ffi::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// PTX of `file` for `arch`, compiled once per process.
pub fn ptx_for(file: &'static str, source: &'static str, arch: &str) -> Result<String, String> {
    static CACHE: OnceLock<Mutex<HashMap<(String, String), String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = (file.to_string(), arch.to_string());
    if let Some(ptx) = cache.lock().map_err(|e| e.to_string())?.get(&key) {
        return Ok(ptx.clone());
    }
    let ptx = compile(file, source, arch)?.ptx;
    cache
        .lock()
        .map_err(|e| e.to_string())?
        .insert(key, ptx.clone());
    Ok(ptx)
}

/// What `scalelab info` shows about one GPU, and what the benchmarks size their grids with.
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceInfo {
    /// Driver ordinal.
    pub ordinal: usize,
    /// Marketing name, e.g. "NVIDIA H200".
    pub name: String,
    /// Compute capability (major, minor).
    pub capability: (i32, i32),
    /// Streaming multiprocessors.
    pub sms: u32,
    /// Device memory in bytes.
    pub memory_bytes: u64,
    /// SM clock in MHz (0 if the driver does not say).
    pub clock_mhz: f64,
    /// Memory clock in MHz (0 if the driver does not say).
    pub memory_clock_mhz: f64,
    /// Memory bus width in bits.
    pub bus_bits: u32,
}

impl DeviceInfo {
    /// The NVRTC architecture flag, e.g. "sm_90".
    pub fn arch(&self) -> String {
        format!("sm_{}{}", self.capability.0, self.capability.1)
    }

    /// FP32 lanes per SM for this compute capability (CUDA C++ Programming Guide, "Arithmetic
    /// Instructions": 32-bit floating-point multiply-add results per clock per multiprocessor),
    /// for the capabilities 5.0–9.0 that table lists; `None` for any other, rather than a guess
    /// (the same table as the records' peaks, `src/device.rs` of scalelab).
    pub fn fp32_lanes_per_sm(&self) -> Option<u32> {
        match self.capability {
            (5, 0) | (5, 2) | (5, 3) | (6, 1) | (6, 2) | (8, 6) | (8, 7) | (8, 9) | (9, 0) => {
                Some(128)
            }
            (6, 0) | (7, 0) | (7, 2) | (7, 5) | (8, 0) => Some(64),
            _ => None,
        }
    }

    /// Theoretical FP32 peak in TFLOP/s: SMs × lanes × 2 (FMA) × clock; `None` for a compute
    /// capability outside the table of [`DeviceInfo::fp32_lanes_per_sm`].
    pub fn peak_fp32_tflops(&self) -> Option<f64> {
        self.fp32_lanes_per_sm()
            .map(|l| f64::from(self.sms) * f64::from(l) * 2.0 * self.clock_mhz * 1e-6)
    }

    /// Theoretical memory bandwidth in GB/s: 2 transfers per clock (DDR/HBM) × bus bytes.
    pub fn peak_bandwidth_gbs(&self) -> f64 {
        2.0 * self.memory_clock_mhz * 1e6 * f64::from(self.bus_bits) / 8.0 / 1e9
    }

    /// One block of `scalelab info` lines for this device.
    pub fn describe(&self) -> String {
        let gib = self.memory_bytes as f64 / f64::from(1u32 << 30);
        let fp32 = match (self.peak_fp32_tflops(), self.fp32_lanes_per_sm()) {
            (Some(t), Some(l)) => format!("peak FP32 {t:.1} TFLOP/s ({l} lanes/SM x 2 x clock)"),
            _ => format!(
                "peak FP32 unknown: compute capability {}.{} is not in scalelab's table of lanes per SM",
                self.capability.0, self.capability.1
            ),
        };
        format!(
            "gpu {}                 {} (compute capability {}.{}, {})\n  \
             SMs                 {}\n  \
             memory              {gib:.1} GiB, {}-bit bus at {:.0} MHz: peak {:.0} GB/s\n  \
             clock               {:.0} MHz: {fp32}\n",
            self.ordinal,
            self.name,
            self.capability.0,
            self.capability.1,
            self.arch(),
            self.sms,
            self.bus_bits,
            self.memory_clock_mhz,
            self.peak_bandwidth_gbs(),
            self.clock_mhz,
        )
    }
}

/// Open device `ordinal`'s primary context, with cudarc's per-slice event tracking off (each
/// benchmark uses one stream per device and synchronises it itself).
pub fn context(ordinal: usize) -> Result<Arc<CudaContext>, String> {
    driver()?;
    let ctx =
        CudaContext::new(ordinal).map_err(|e| format!("could not open GPU {ordinal}: {e}"))?;
    // SAFETY: called before any allocation or stream exists in this context.
    unsafe { ctx.disable_event_tracking() };
    Ok(ctx)
}

/// The facts about `ctx`'s device.
pub fn device_info(ctx: &Arc<CudaContext>) -> Result<DeviceInfo, String> {
    let attr = |a: Attr| ctx.attribute(a).map_err(|e| format!("{a:?}: {e}"));
    Ok(DeviceInfo {
        ordinal: ctx.ordinal(),
        name: ctx.name().map_err(|e| e.to_string())?,
        capability: (
            attr(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?,
            attr(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?,
        ),
        sms: attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?.max(0) as u32,
        memory_bytes: ctx.total_mem().map_err(|e| e.to_string())? as u64,
        clock_mhz: f64::from(attr(Attr::CU_DEVICE_ATTRIBUTE_CLOCK_RATE).unwrap_or(0)) / 1e3,
        memory_clock_mhz: f64::from(attr(Attr::CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE).unwrap_or(0))
            / 1e3,
        bus_bits: attr(Attr::CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH)
            .unwrap_or(0)
            .max(0) as u32,
    })
}

/// Every device the driver sees.
pub fn devices() -> Result<Vec<DeviceInfo>, String> {
    let count = driver()?;
    (0..count)
        .map(|i| context(i).and_then(|ctx| device_info(&ctx)))
        .collect()
}

/// The lines `scalelab info` prints about GPUs: each device, or why there are none.
pub fn describe() -> String {
    match devices() {
        Ok(list) => list.iter().map(DeviceInfo::describe).collect(),
        Err(why) => format!("gpus                  none: {why}\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An H100 SXM as its driver describes it.
    fn h100() -> DeviceInfo {
        DeviceInfo {
            ordinal: 0,
            name: "NVIDIA H100 80GB HBM3".into(),
            capability: (9, 0),
            sms: 132,
            memory_bytes: 80 << 30,
            clock_mhz: 1980.0,
            memory_clock_mhz: 2619.0,
            bus_bits: 5120,
        }
    }

    #[test]
    fn peaks_follow_the_published_figures() {
        let d = h100();
        assert_eq!(d.arch(), "sm_90");
        // 132 SMs x 128 lanes x 2 x 1.98 GHz = 66.9 TFLOP/s; 2 x 2619 MHz x 640 B = 3352 GB/s.
        assert!(
            (d.peak_fp32_tflops().unwrap() - 66.9).abs() < 0.05,
            "{}",
            d.peak_fp32_tflops().unwrap()
        );
        assert!(
            (d.peak_bandwidth_gbs() - 3352.3).abs() < 0.1,
            "{}",
            d.peak_bandwidth_gbs()
        );
        let a100 = DeviceInfo {
            capability: (8, 0),
            sms: 108,
            clock_mhz: 1410.0,
            ..d.clone()
        };
        assert_eq!(a100.fp32_lanes_per_sm(), Some(64));
        assert!((a100.peak_fp32_tflops().unwrap() - 19.5).abs() < 0.05);
        // An architecture the table does not list: no figure, said in words.
        let b200 = DeviceInfo {
            capability: (10, 0),
            ..d.clone()
        };
        assert_eq!(b200.peak_fp32_tflops(), None);
        assert!(b200.describe().contains(
            "peak FP32 unknown: compute capability 10.0 is not in scalelab's table of lanes per SM"
        ));
        let text = d.describe();
        assert!(
            text.starts_with(
                "gpu 0                 NVIDIA H100 80GB HBM3 (compute capability 9.0, sm_90)\n"
            ),
            "{text}"
        );
        assert!(text.contains("peak FP32 66.9 TFLOP/s"), "{text}");
        assert!(text.contains("peak 3352 GB/s"), "{text}");
    }

    #[test]
    fn without_a_driver_the_answer_names_the_fix() {
        if unsafe { cudarc::driver::sys::is_culib_present() } {
            return; // A machine with a driver: nothing to check here.
        }
        assert_eq!(driver().unwrap_err(), DRIVER_FIX);
        assert!(describe().starts_with("gpus                  none: no CUDA driver"));
    }
}

//! The machine a run happens on: CPU, caches, SIMD width, clock and theoretical peak FLOP/s.
//!
//! Everything is read from the OS (`/proc`, `/sys`) and the CPU's feature flags, except the clock:
//! virtual machines and turbo make `/proc/cpuinfo`'s MHz a nominal figure, so [`Machine::detect`]
//! measures it by timing a chain of dependent integer additions (one cycle each on every current
//! x86 core). The theoretical peak is `f64 lanes × FMA pipes × 2 flops × clock` per core. No OS
//! interface reports how many full-width FMAs a core retires per cycle, and it differs between
//! cores with the same instruction set (AMD Zen 4 splits a 512-bit FMA over two 256-bit pipes and
//! retires one per cycle; Zen 5 and Intel server cores retire two), so [`Machine::detect`] measures
//! it too: twelve independent FMA chains on full-width registers, FLOPs per cycle rounded to a
//! whole number of FMA pipes.

use std::fs;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// What `scalelab info` prints and `provenance.json` records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub host: String,
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Cache sizes in bytes, per level ("L1d", "L2", "L3"), as the OS reports them for CPU 0.
    pub caches: Vec<(String, u64)>,
    /// Widest SIMD instruction set usable here: "avx512", "avx2", "sse2", "neon", "scalar".
    pub simd: String,
    /// f64 lanes of one SIMD register.
    pub simd_f64_lanes: u32,
    /// Full-width FMAs retired per cycle per core: measured by [`Machine::detect`], else assumed
    /// (2 on x86 cores with FMA).
    pub fma_units: u32,
    /// Whether `fma_units` was measured rather than assumed.
    #[serde(default)]
    pub fma_measured: bool,
    /// Clock in GHz measured with a dependent add chain (0 if not measured).
    pub clock_ghz: f64,
    /// Nominal clock from the OS, GHz (0 if unknown).
    pub nominal_ghz: f64,
    /// Theoretical f64 peak per core: lanes × FMA units × 2 × clock, GFLOP/s.
    pub peak_gflops_per_core: f64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

impl Machine {
    /// Everything, including a measured clock and FMA throughput (about 0.1 s).
    pub fn detect() -> Machine {
        let mut m = Machine::detect_quick();
        if let Some(ghz) = measure_clock_ghz() {
            m.clock_ghz = ghz;
            if let Some(flops) = measure_fma_flops_per_second(m.simd_f64_lanes) {
                let per_cycle = flops / (ghz * 1e9);
                let units = (per_cycle / (2.0 * m.simd_f64_lanes as f64)).round();
                if units >= 1.0 {
                    m.fma_units = units as u32;
                    m.fma_measured = true;
                }
            }
        }
        m.peak_gflops_per_core = m.peak_per_core(m.clock());
        m
    }

    /// Everything but the clock measurement: the peak uses the nominal clock. Instant.
    pub fn detect_quick() -> Machine {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let field = |name: &str| {
            cpuinfo
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        };
        let (simd, lanes, fma) = simd_features();
        let nominal_ghz =
            fs::read_to_string("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .map(|khz| khz / 1e6)
                .or_else(|| {
                    field("cpu MHz")
                        .and_then(|s| s.parse::<f64>().ok())
                        .map(|mhz| mhz / 1e3)
                })
                .unwrap_or(0.0);
        let mut m = Machine {
            host: hostname(),
            cpu_model: field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string()),
            cores: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            caches: caches(),
            simd: simd.to_string(),
            simd_f64_lanes: lanes,
            fma_units: fma,
            fma_measured: false,
            clock_ghz: 0.0,
            nominal_ghz,
            peak_gflops_per_core: 0.0,
            memory_bytes: memory_total().unwrap_or(0),
        };
        m.peak_gflops_per_core = m.peak_per_core(m.clock());
        m
    }

    /// The clock used for peaks: measured if available, else nominal.
    pub fn clock(&self) -> f64 {
        if self.clock_ghz > 0.0 {
            self.clock_ghz
        } else {
            self.nominal_ghz
        }
    }

    /// lanes × FMA units × 2 × clock, to 0.1 GFLOP/s (the clock is not known more precisely).
    fn peak_per_core(&self, ghz: f64) -> f64 {
        let peak = self.simd_f64_lanes as f64 * self.fma_units as f64 * 2.0 * ghz;
        (peak * 10.0).round() / 10.0
    }

    /// The text `scalelab info` prints.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, k: &str, v: String| s.push_str(&format!("{k:<22}{v}\n"));
        line(&mut s, "host", self.host.clone());
        line(&mut s, "cpu", self.cpu_model.clone());
        line(&mut s, "cores (available)", self.cores.to_string());
        for (level, bytes) in &self.caches {
            line(&mut s, &format!("cache {level}"), human_bytes(*bytes));
        }
        line(&mut s, "memory", human_bytes(self.memory_bytes));
        line(
            &mut s,
            "simd",
            format!("{} ({} f64 lanes)", self.simd, self.simd_f64_lanes),
        );
        line(
            &mut s,
            "clock",
            format!(
                "{:.2} GHz measured (dependent add chain); nominal {:.2} GHz",
                self.clock_ghz, self.nominal_ghz
            ),
        );
        line(
            &mut s,
            "peak f64 per core",
            format!(
                "{:.1} GFLOP/s = {} lanes x {} FMA/cycle ({}) x 2 x {:.2} GHz",
                self.peak_gflops_per_core,
                self.simd_f64_lanes,
                self.fma_units,
                if self.fma_measured {
                    "measured"
                } else {
                    "assumed"
                },
                self.clock()
            ),
        );
        line(
            &mut s,
            "peak f64 all cores",
            format!(
                "{:.1} GFLOP/s",
                self.peak_gflops_per_core * self.cores as f64
            ),
        );
        s.push_str(&crate::workload::gpu_description());
        s
    }
}

/// Bytes as KiB/MiB/GiB text.
pub fn human_bytes(b: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, scale) in units {
        if b >= scale {
            return format!("{:.1} {u}", b as f64 / scale as f64).replace(".0 ", " ");
        }
    }
    format!("{b} B")
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else "unknown").
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// Memory of this machine in bytes (`MemTotal` of `/proc/meminfo`), read once; `None` when it
/// cannot be read. Checks of points judge their memory against it (see
/// [`crate::workload::Node::this_machine`]).
pub fn memory_total() -> Option<u64> {
    static MEM: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    *MEM.get_or_init(|| {
        fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| {
                        l.split_whitespace()
                            .nth(1)
                            .and_then(|kb| kb.parse::<u64>().ok())
                    })
            })
            .map(|kb| kb * 1024)
            .filter(|&b| b > 0)
    })
}

fn caches() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for i in 0..8 {
        let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
        let read = |f: &str| fs::read_to_string(format!("{dir}/{f}")).map(|s| s.trim().to_string());
        let (Ok(level), Ok(kind), Ok(size)) = (read("level"), read("type"), read("size")) else {
            break;
        };
        if kind == "Instruction" {
            continue;
        }
        let bytes = parse_cache_size(&size);
        let name = if kind == "Data" {
            format!("L{level}d")
        } else {
            format!("L{level}")
        };
        out.push((name, bytes));
    }
    out
}

fn parse_cache_size(s: &str) -> u64 {
    let (num, mult) = match s.chars().last() {
        Some('K') => (&s[..s.len() - 1], 1024),
        Some('M') => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    num.parse::<u64>().unwrap_or(0) * mult
}

/// (name, f64 lanes, FMA pipes assumed).
fn simd_features() -> (&'static str, u32, u32) {
    #[cfg(target_arch = "x86_64")]
    {
        let fma = if std::arch::is_x86_feature_detected!("fma") {
            2
        } else {
            1
        };
        if std::arch::is_x86_feature_detected!("avx512f") {
            return ("avx512", 8, fma);
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return ("avx2", 4, fma);
        }
        ("sse2", 2, 1)
    }
    #[cfg(target_arch = "aarch64")]
    {
        ("neon", 2, 2)
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        ("scalar", 1, 1)
    }
}

/// Time a chain of dependent additions (each needs the previous result, so one per cycle) and
/// return the clock in GHz. Each try is short (a million cycles, a quarter of a millisecond) and
/// the fastest of many counts, so a try that the scheduler interrupted on a busy machine is simply
/// not the best one. x86-64 only.
#[cfg(target_arch = "x86_64")]
pub fn measure_clock_ghz() -> Option<f64> {
    const ADDS_PER_LOOP: u64 = 100;
    let loops: u64 = 10_000;
    let mut best = f64::INFINITY;
    for _ in 0..300 {
        let t = Instant::now();
        let mut x: u64 = 0;
        let mut n = loops;
        // SAFETY: pure register arithmetic; no memory is touched.
        unsafe {
            std::arch::asm!(
                "2:",
                ".rept 100",
                "add {x}, 1",
                ".endr",
                "dec {n}",
                "jnz 2b",
                x = inout(reg) x,
                n = inout(reg) n,
                options(nomem, nostack),
            );
        }
        std::hint::black_box((x, n));
        best = best.min(t.elapsed().as_secs_f64());
    }
    let cycles = (loops * ADDS_PER_LOOP) as f64;
    (best > 0.0).then(|| cycles / best / 1e9)
}

/// Twelve independent chains `a = a·x + y` on full-width f64 registers (`lanes` = 8: AVX-512,
/// 4: AVX2), enough to hide the FMA latency on every current core, so the rate is the core's FMA
/// throughput. Returns f64 FLOP/s, the best of many short tries. x86-64 only.
#[cfg(target_arch = "x86_64")]
pub fn measure_fma_flops_per_second(lanes: u32) -> Option<f64> {
    const ITERS: u64 = 4_000;
    let mut best = f64::INFINITY;
    for _ in 0..100 {
        let t = Instant::now();
        // SAFETY: each function is called only when the CPU has its instruction set.
        let sink = unsafe {
            match lanes {
                8 if std::arch::is_x86_feature_detected!("avx512f") => fma_chains_avx512(ITERS),
                4 if std::arch::is_x86_feature_detected!("fma") => fma_chains_avx2(ITERS),
                _ => return None,
            }
        };
        std::hint::black_box(sink);
        best = best.min(t.elapsed().as_secs_f64());
    }
    let flops = (ITERS * 12 * lanes as u64 * 2) as f64;
    (best > 0.0).then(|| flops / best)
}

/// The chains for one register type: `$set1` broadcasts, `$fma` is the fused multiply-add.
#[cfg(target_arch = "x86_64")]
macro_rules! fma_chains {
    ($name:ident, $feature:literal, $set1:ident, $fma:ident, $add:ident, $first:ident) => {
        #[target_feature(enable = $feature)]
        unsafe fn $name(iters: u64) -> f64 {
            use std::arch::x86_64::*;
            let x = $set1(0.999_999_9);
            let y = $set1(1e-9);
            let mut acc = [$set1(1.0); 12];
            for (k, a) in acc.iter_mut().enumerate() {
                *a = $set1(1.0 + k as f64 * 1e-3);
            }
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = $fma(*a, x, y);
                }
            }
            let mut sum = $set1(0.0);
            for a in acc {
                sum = $add(sum, a);
            }
            $first(sum)
        }
    };
}

#[cfg(target_arch = "x86_64")]
fma_chains!(
    fma_chains_avx512,
    "avx512f",
    _mm512_set1_pd,
    _mm512_fmadd_pd,
    _mm512_add_pd,
    first_512
);
#[cfg(target_arch = "x86_64")]
fma_chains!(
    fma_chains_avx2,
    "avx2,fma",
    _mm256_set1_pd,
    _mm256_fmadd_pd,
    _mm256_add_pd,
    first_256
);

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn first_512(v: std::arch::x86_64::__m512d) -> f64 {
    std::arch::x86_64::_mm512_reduce_add_pd(v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
fn first_256(v: std::arch::x86_64::__m256d) -> f64 {
    std::arch::x86_64::_mm256_cvtsd_f64(v)
}

#[cfg(not(target_arch = "x86_64"))]
pub fn measure_fma_flops_per_second(_lanes: u32) -> Option<f64> {
    None
}

#[cfg(not(target_arch = "x86_64"))]
pub fn measure_clock_ghz() -> Option<f64> {
    let _ = Instant::now();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_something_plausible() {
        let m = Machine::detect();
        assert!(m.cores >= 1);
        assert!(m.simd_f64_lanes >= 1);
        if cfg!(target_arch = "x86_64") {
            assert!(
                m.clock_ghz > 0.3 && m.clock_ghz < 10.0,
                "clock {}",
                m.clock_ghz
            );
            let expect = m.simd_f64_lanes as f64 * m.fma_units as f64 * 2.0 * m.clock_ghz;
            assert!((m.peak_gflops_per_core - expect).abs() <= 0.05 + 1e-9);
        }
        assert!(m.describe().contains("peak f64 per core"));
    }

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("48K"), 48 * 1024);
        assert_eq!(parse_cache_size("32M"), 32 << 20);
        assert_eq!(human_bytes(32 << 20), "32 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}

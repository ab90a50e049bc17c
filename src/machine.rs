//! The machine a run happens on: CPU, caches, SIMD width, clock and theoretical peaks. (Being written.)

use serde::{Deserialize, Serialize};

/// What `scalelab info` prints and `provenance.json` records.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub host: String,
    pub cpu_model: String,
    /// Logical CPUs available to this process.
    pub cores: usize,
    /// Cache sizes in bytes, per level ("L1d", "L2", "L3"), as the OS reports them.
    pub caches: Vec<(String, u64)>,
    /// Widest SIMD instruction set usable here: "avx512", "avx2", "sse2", "neon", "scalar".
    pub simd: String,
    /// f64 lanes of one SIMD register.
    pub simd_f64_lanes: u32,
    /// FMA pipes per core assumed for the peak (2 on current x86 server cores).
    pub fma_units: u32,
    /// Clock in GHz measured with a dependent add chain (0 if not measured).
    pub clock_ghz: f64,
    /// Nominal clock from the OS, GHz (0 if unknown).
    pub nominal_ghz: f64,
    /// Theoretical f64 peak per core: lanes × FMA units × 2 × clock, GFLOP/s.
    pub peak_gflops_per_core: f64,
    /// Memory in bytes.
    pub memory_bytes: u64,
}

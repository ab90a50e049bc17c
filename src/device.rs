//! The peaks of a GPU as a point's record keeps them: what the GPU roofline draws its ceilings
//! from.
//!
//! A CUDA point records, for each device it ran on, the facts the driver reports (name, compute
//! capability, SM count, SM clock, memory clock, bus width) and the theoretical peaks computed
//! from them here:
//!
//! * **FP32 and FP64 GFLOP/s** = SMs × FLOPs per SM per cycle × SM clock, where FLOPs per SM per
//!   cycle is 2 (a fused multiply-add) × the results per clock per multiprocessor of the CUDA C++
//!   Programming Guide's throughput table ("Arithmetic Instructions", 32-bit and 64-bit
//!   floating-point add, multiply, multiply-add), for the compute capabilities in
//!   [`FLOPS_PER_SM_PER_CYCLE`]. A capability missing from the table gets **no** compute peak and
//!   a note saying so in plain words: a guessed FLOP rate would draw a wrong roof.
//! * **Memory bandwidth, GB/s** = 2 transfers per memory clock (DDR and HBM) × bus width in bytes
//!   × memory clock, as `scalelab info` prints it.
//!
//! These are the CUDA-core (non-tensor-core) peaks, the ones a plain FMA kernel can reach. The
//! SM clock the driver reports is the maximum boost clock, so the figures are upper bounds.
//! Kept out of the `cuda` feature on purpose: a report of a GPU run is made on any machine.

use serde::{Deserialize, Serialize};

/// FLOPs per SM per clock cycle (FP32, FP64) by compute capability: 2 × the results per clock
/// per multiprocessor of the CUDA C++ Programming Guide, section "Arithmetic Instructions"
/// (throughput of native arithmetic instructions), for 32-bit and 64-bit floating-point
/// multiply-add. Extend it only from that table, with a test: a missing entry gives no compute
/// ceiling rather than a guess.
pub const FLOPS_PER_SM_PER_CYCLE: &[((i32, i32), u32, u32)] = &[
    // Maxwell
    ((5, 0), 256, 8),
    ((5, 2), 256, 8),
    ((5, 3), 256, 8),
    // Pascal: P100 (6.0) has half-rate FP64; the consumer parts 1/32.
    ((6, 0), 128, 64),
    ((6, 1), 256, 8),
    ((6, 2), 256, 8),
    // Volta: V100 (7.0); Xavier (7.2).
    ((7, 0), 128, 64),
    ((7, 2), 128, 4),
    // Turing
    ((7, 5), 128, 4),
    // Ampere: A100 (8.0); GA10x (8.6), Orin (8.7).
    ((8, 0), 128, 64),
    ((8, 6), 256, 4),
    ((8, 7), 256, 4),
    // Ada
    ((8, 9), 256, 4),
    // Hopper: H100, H200
    ((9, 0), 256, 128),
];

/// One GPU as a CUDA point's record keeps it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DevicePeaks {
    /// Driver ordinal on its node.
    pub ordinal: usize,
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Compute capability (major, minor).
    pub capability: (i32, i32),
    /// Streaming multiprocessors.
    pub sms: u32,
    /// SM clock the driver reports (its maximum), MHz; 0 when it does not say.
    pub clock_mhz: f64,
    /// Memory clock, MHz; 0 when the driver does not say.
    pub memory_clock_mhz: f64,
    /// Memory bus width, bits.
    pub bus_bits: u32,
    /// Theoretical FP64 peak (CUDA cores), GFLOP/s; absent for a capability missing from
    /// [`FLOPS_PER_SM_PER_CYCLE`] or an unknown clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp64_gflops: Option<f64>,
    /// Theoretical FP32 peak (CUDA cores), GFLOP/s; absent as for `fp64_gflops`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fp32_gflops: Option<f64>,
    /// Theoretical memory bandwidth, GB/s; absent when the driver gives no memory clock or bus.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_gbps: Option<f64>,
    /// Why a peak is missing, in plain words (empty when all three are known).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
}

impl DevicePeaks {
    /// The peaks of a device from the facts its driver reports (see the module documentation).
    pub fn from_attributes(
        ordinal: usize,
        name: &str,
        capability: (i32, i32),
        sms: u32,
        clock_mhz: f64,
        memory_clock_mhz: f64,
        bus_bits: u32,
    ) -> DevicePeaks {
        let mut notes = Vec::new();
        let per_cycle = FLOPS_PER_SM_PER_CYCLE
            .iter()
            .find(|(cc, _, _)| *cc == capability)
            .map(|&(_, fp32, fp64)| (fp32, fp64));
        let flops = |per_sm: u32| f64::from(sms) * f64::from(per_sm) * clock_mhz * 1e-3;
        let (fp32_gflops, fp64_gflops) = match per_cycle {
            Some(_) if !(clock_mhz > 0.0 && sms > 0) => {
                notes.push("the driver reports no SM clock or SM count, so no compute peak");
                (None, None)
            }
            Some((fp32, fp64)) => (Some(flops(fp32)), Some(flops(fp64))),
            None => {
                notes.push(
                    "its compute capability is not in scalelab's table of FLOPs per SM per cycle (src/device.rs), so no compute peak is drawn rather than a guessed one",
                );
                (None, None)
            }
        };
        let bandwidth_gbps = (memory_clock_mhz > 0.0 && bus_bits > 0)
            .then(|| 2.0 * memory_clock_mhz * 1e6 * f64::from(bus_bits) / 8.0 / 1e9);
        if bandwidth_gbps.is_none() {
            notes.push("the driver reports no memory clock or bus width, so no bandwidth peak");
        }
        DevicePeaks {
            ordinal,
            name: name.to_string(),
            capability,
            sms,
            clock_mhz,
            memory_clock_mhz,
            bus_bits,
            fp64_gflops,
            fp32_gflops,
            bandwidth_gbps,
            note: notes.join("; "),
        }
    }

    /// "NVIDIA H100 80GB HBM3 (compute capability 9.0)".
    pub fn describe(&self) -> String {
        format!(
            "{} (compute capability {}.{})",
            self.name, self.capability.0, self.capability.1
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An H100 SXM as its driver describes it: 132 SMs at 1980 MHz, HBM3 at 2619 MHz on a
    /// 5120-bit bus. NVIDIA's datasheet: FP64 34 TFLOP/s, FP32 67 TFLOP/s, 3.35 TB/s.
    #[test]
    fn h100_peaks_match_the_datasheet() {
        let d = DevicePeaks::from_attributes(
            0,
            "NVIDIA H100 80GB HBM3",
            (9, 0),
            132,
            1980.0,
            2619.0,
            5120,
        );
        let fp64 = d.fp64_gflops.unwrap();
        let fp32 = d.fp32_gflops.unwrap();
        assert!((fp64 - 33_454.1).abs() < 1.0, "{fp64}");
        assert!((fp32 - 66_908.2).abs() < 1.0, "{fp32}");
        assert!((d.bandwidth_gbps.unwrap() - 3352.3).abs() < 0.1);
        assert_eq!(d.note, "");
        // A100 SXM: 108 SMs at 1410 MHz: FP64 9.7, FP32 19.5 TFLOP/s.
        let a = DevicePeaks::from_attributes(0, "A100", (8, 0), 108, 1410.0, 1215.0, 5120);
        assert!((a.fp64_gflops.unwrap() - 9_745.9).abs() < 1.0);
        assert!((a.fp32_gflops.unwrap() - 19_491.8).abs() < 1.0);
        // RTX 4090 (8.9): 128 SMs at 2520 MHz: FP32 82.6 TFLOP/s, FP64 1/64 of it.
        let r = DevicePeaks::from_attributes(0, "RTX 4090", (8, 9), 128, 2520.0, 10501.0, 384);
        assert!((r.fp32_gflops.unwrap() - 82_575.4).abs() < 1.0);
        assert!((r.fp32_gflops.unwrap() / r.fp64_gflops.unwrap() - 64.0).abs() < 1e-9);
    }

    #[test]
    fn an_unknown_architecture_gets_no_compute_peak_and_says_why() {
        let d = DevicePeaks::from_attributes(1, "NVIDIA B200", (10, 0), 148, 1965.0, 4000.0, 8192);
        assert_eq!(d.fp64_gflops, None);
        assert_eq!(d.fp32_gflops, None);
        assert!(d.bandwidth_gbps.is_some());
        assert_eq!(
            d.note,
            "its compute capability is not in scalelab's table of FLOPs per SM per cycle (src/device.rs), so no compute peak is drawn rather than a guessed one"
        );
        let back: DevicePeaks = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back, d);
        let quiet = DevicePeaks::from_attributes(0, "x", (9, 0), 132, 0.0, 0.0, 0);
        assert_eq!(quiet.fp64_gflops, None);
        assert_eq!(quiet.bandwidth_gbps, None);
        assert!(quiet.note.contains("no SM clock") && quiet.note.contains("no memory clock"));
    }
}

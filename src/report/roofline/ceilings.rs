//! Where a roofline's ceilings come from: the machine's theoretical peaks
//! ([`Ceilings::theoretical`]), the run's own best STREAM point ([`run_ceilings`]), a calibrated
//! machine profile ([`profile_ceilings`]) or a GPU's datasheet peaks ([`gpu_ceilings`]); and the
//! sentence that says which is which ([`Ceilings::provenance`], for the caption).

use super::{Ceiling, Ceilings, RooflinePoint, Source};
use crate::calibrate::Profile;
use crate::machine::Machine;

impl Ceilings {
    /// The theoretical compute ceilings of `workers` cores of `machine`: the peak with SIMD and
    /// FMA (lanes × FMA pipes × 2 × clock, per core, as `scalelab info` reports it), the same
    /// without FMA (half: a separate multiply and add per pipe), and scalar code with FMA (one
    /// lane). No bandwidth ceiling: the OS reports no memory bandwidth; see
    /// [`Ceilings::with_bandwidth`]. Empty when the machine's peak is unknown.
    pub fn theoretical(machine: &Machine, workers: u64) -> Ceilings {
        let mut c = Ceilings::default();
        let peak = machine.peak_gflops_per_core * workers.max(1) as f64;
        if !(peak > 0.0 && peak.is_finite()) {
            return c;
        }
        let simd = if machine.simd.is_empty() {
            "SIMD".to_string()
        } else {
            machine.simd.clone()
        };
        c.compute.push(Ceiling {
            label: format!("peak ({simd} + FMA)"),
            value: peak,
            source: Source::Theoretical,
        });
        c.compute.push(Ceiling {
            label: format!("{simd}, no FMA"),
            value: peak / 2.0,
            source: Source::Theoretical,
        });
        let lanes = machine.simd_f64_lanes.max(1) as f64;
        if lanes > 1.0 {
            c.compute.push(Ceiling {
                label: "scalar + FMA".into(),
                value: peak / lanes,
                source: Source::Theoretical,
            });
        }
        c
    }

    /// These ceilings with one more bandwidth ceiling, kept sorted highest first.
    pub fn with_bandwidth(mut self, label: &str, gbps: f64, source: Source) -> Ceilings {
        if gbps > 0.0 && gbps.is_finite() {
            self.memory.push(Ceiling {
                label: label.into(),
                value: gbps,
                source,
            });
            self.memory.sort_by(|a, b| b.value.total_cmp(&a.value));
        }
        self
    }

    /// The subtitle sentence that says which ceilings are theoretical and which measured.
    pub(super) fn provenance(&self) -> String {
        let says = |list: &[Ceiling], kind: &str| -> String {
            if list.is_empty() {
                return format!("no {kind} ceiling");
            }
            let theo = list
                .iter()
                .filter(|c| c.source == Source::Theoretical)
                .count();
            let measured: Vec<&str> = list
                .iter()
                .filter_map(|c| match &c.source {
                    Source::Measured(how) => Some(how.as_str()),
                    Source::Theoretical => None,
                })
                .collect();
            let mut measured = measured;
            measured.dedup();
            let mut parts = Vec::new();
            if theo > 0 {
                parts.push(format!("{kind} ceilings theoretical"));
            }
            if !measured.is_empty() {
                parts.push(format!("{kind} measured ({})", measured.join("; ")));
            }
            parts.join(", ")
        };
        format!(
            "{}; {}.",
            says(&self.compute, "compute"),
            says(&self.memory, "bandwidth")
        )
    }
}

/// The ceilings of a plot of `points` at `workers`: [`Ceilings::theoretical`] plus, where the run
/// has STREAM points at this worker count, the best bandwidth they reached as a measured
/// bandwidth ceiling (an attainable bandwidth, not a theoretical one).
pub fn run_ceilings(machine: &Machine, workers: u64, points: &[&RooflinePoint]) -> Ceilings {
    let c = Ceilings::theoretical(machine, workers);
    let best = points
        .iter()
        .filter(|p| crate::workload::reporting(&p.workload).bandwidth_ceiling)
        .max_by(|a, b| a.gbps.total_cmp(&b.gbps));
    match best {
        Some(b) => c.with_bandwidth(
            &format!("bandwidth, measured ({})", b.workload),
            b.gbps,
            Source::Measured(format!(
                "the best stream.* point of this run, {}",
                b.workload
            )),
        ),
        None => c,
    }
}

/// The ceilings of a plot at `workers` from a calibrated machine profile (`scalelab calibrate`):
/// the theoretical compute ceilings, the best DGEMM the profile measured at that core count as a
/// measured compute ceiling, and the bandwidth of each cache level and of DRAM (STREAM triad) at
/// that core count as measured diagonals. Where the profile has no figure for `workers` (e.g. MPI
/// ranks across nodes, or more workers than cores) it falls back to [`run_ceilings`].
pub fn profile_ceilings(
    profile: &Profile,
    machine: &Machine,
    workers: u64,
    points: &[&RooflinePoint],
) -> Ceilings {
    let Ok(cores) = usize::try_from(workers) else {
        return run_ceilings(machine, workers, points);
    };
    if !profile.core_counts().contains(&cores) {
        return run_ceilings(machine, workers, points);
    }
    let how = |what: &str| {
        Source::Measured(format!(
            "{what} by `scalelab calibrate` at {cores} core{}",
            crate::units::plural(cores)
        ))
    };
    let mut c = Ceilings::theoretical(machine, workers);
    if let Some(g) = profile
        .dgemm_gflops(cores)
        .filter(|g| *g > 0.0 && g.is_finite())
    {
        c.compute.push(Ceiling {
            label: "DGEMM, measured".into(),
            value: g,
            source: how("DGEMM"),
        });
        c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
    }
    for level in ["L1", "L2", "L3"] {
        if let Some(gbps) = profile.level_gbps(level, cores) {
            c = c.with_bandwidth(&format!("{level}, measured"), gbps, how("cache bandwidth"));
        }
    }
    match profile.triad_gbps(cores) {
        Some(gbps) => c.with_bandwidth("DRAM (triad), measured", gbps, how("bandwidth")),
        None => c,
    }
}

/// The ceilings of a GPU roofline: `gpus` devices of the model `d`, from the peaks its record
/// holds (all theoretical: CUDA-core FP64 and FP32, and the memory bandwidth). A peak the record
/// lacks (an architecture outside the table of [`crate::device`]) is not drawn.
pub fn gpu_ceilings(d: &crate::device::DevicePeaks, gpus: u64) -> Ceilings {
    let g = gpus.max(1) as f64;
    let mut c = Ceilings::default();
    for (label, v) in [
        ("FP32 peak (CUDA cores)", d.fp32_gflops),
        ("FP64 peak (CUDA cores)", d.fp64_gflops),
    ] {
        if let Some(v) = v.filter(|v| *v > 0.0 && v.is_finite()) {
            c.compute.push(Ceiling {
                label: label.into(),
                value: v * g,
                source: Source::Theoretical,
            });
        }
    }
    c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
    match d.bandwidth_gbps.filter(|v| *v > 0.0 && v.is_finite()) {
        Some(b) => c.with_bandwidth("device memory peak", b * g, Source::Theoretical),
        None => c,
    }
}

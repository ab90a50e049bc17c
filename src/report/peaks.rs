//! What a point's rate is measured against: the theoretical FLOP peak of the machine it ran on
//! (each SLURM node its own, [`Machines`]) and the measured peaks of the run's calibration
//! profile (DGEMM for compute-bound work, STREAM triad for bandwidth-bound work).

use crate::calibrate::Profile;
use crate::machine::Machine;
use crate::results::PointRecord;

use super::format::pct;
use super::Throughput;

/// Theoretical peak of a point in GFLOP/s: peak per core × workers (CPU backends only).
pub(super) fn peak_gflops(rec: &PointRecord, machine: &Machine) -> Option<f64> {
    (machine.peak_gflops_per_core > 0.0 && rec.counts_against_cpu_peaks())
        .then(|| machine.peak_gflops_per_core * rec.point.resources.workers() as f64)
}

/// A point's rate as a share of the measured peak at its core count: GFLOP/s of compute-bound
/// work against DGEMM, GB/s of bandwidth-bound work against STREAM triad ("–" without a
/// profile, for GPU points, for file I/O (its bytes go to a disk, not to memory), or at a core
/// count the profile has no figure for). Both sides are medians (the point's over its
/// repetitions, calibrate's over its passes): the best of 20 calibrate passes against a median of
/// 5 repetitions read 63% for the very same triad kernel.
pub(super) fn measured_pct(
    rec: &PointRecord,
    gflops: Option<f64>,
    gbps: Option<f64>,
    profile: Option<&Profile>,
) -> String {
    let cores = rec.point.resources.workers() as usize;
    let share = match (profile, Throughput::for_work(&rec.work)) {
        (Some(p), Some(Throughput::Gflops)) if rec.counts_against_cpu_peaks() => gflops
            .zip(p.dgemm_gflops_median(cores))
            .map(|(g, pk)| g / pk),
        (Some(p), Some(Throughput::Gbps)) if rec.bytes_count_against_memory() => {
            gbps.zip(p.triad_gbps_median(cores)).map(|(g, pk)| g / pk)
        }
        _ => None,
    };
    match share {
        // The profile is a measurement too, taken at another size and moment: a point beyond it
        // says the profile is low (recalibrate on a quiet machine), not that the point beat a peak.
        Some(s) if s > 1.0 => format!("{} (above the profile)", pct(s)),
        Some(s) => pct(s),
        None => "–".into(),
    }
}

/// The machine a report quotes, and the compute nodes of the run (`<run>/machines/`).
#[derive(Clone, Copy)]
pub(super) struct Machines<'a> {
    /// The report's machine (see [`crate::machine::for_report`]).
    pub report: &'a Machine,
    /// Every node SLURM tasks recorded, with its measured peak.
    pub nodes: &'a [Machine],
}

impl<'a> Machines<'a> {
    /// The machine `rec` ran on: its node's record where the run has one for its host, else
    /// the report's machine. A run over node types with different peaks thus gives each point
    /// the share of its own node's peak.
    pub fn of(&self, rec: &PointRecord) -> &'a Machine {
        self.nodes
            .iter()
            .find(|m| m.host == rec.host)
            .unwrap_or(self.report)
    }
}

//! The report of a run: what `scalelab report <run-dir>` writes from the point records.
//!
//! [`write()`] turns the records into, inside the run directory:
//!
//! * `measurements.csv` (one row per repetition) and `summary.csv` (one row per point), see
//!   [`csv`] and `docs/results.md` for the columns;
//! * `plots/*.svg` and `plots/*.png`: speedup, efficiency and throughput per study, see [`plots`],
//!   and the run's roofline (`plots/roofline.*`, one per worker count), see [`roofline`]; with HPL
//!   points, the run against the TOP500 lists (`plots/top500.*`), see [`top500`];
//! * `report.md`: per study a table of points (median time ± 95 % CI, GFLOP/s, GB/s, % of peak,
//!   speedup, efficiency, Karp–Flatt), the Amdahl or Gustafson fit, the plots, and the failed
//!   points with their reasons; at the top, warnings that say what to do about noisy, oversubscribed,
//!   failed or missing points;
//! * `report.html`: report.md as one self-contained page, the plots inline as SVG and a machine
//!   card at the top, see [`html`].
//!
//! MPI studies get more (see [`messages`]): tables with `ranks` and `threads/rank` columns and an
//! "oversubscribed: more ranks × threads than cores" note; for message-size studies
//! (`mpi.pingpong`, the collectives) a latency/bandwidth table by message size and log–log plots
//! instead of speedups; for studies recording `comm_s` a "comm share" column and a compute vs
//! communication plot. Workload metrics become `metric_<name>` columns of both CSV files. ML
//! studies (points recording `fits`) get a table of fits per second and model quality ([`ml`]).
//!
//! The scaling math lives in [`scaling`], the statistics in [`crate::stats`]. [`live_line`] is the
//! one-line summary the CLI prints as each point finishes.
//!
//! The files of this module, in the order a report is made: `pipeline.rs` (the steps of
//! [`write()`]), `markdown.rs` (report.md's text), `tables.rs` (a study's tables and fits),
//! `peaks.rs` (what "% peak" and "% measured" divide by), `warnings.rs`, `format.rs` (cells and
//! numbers), `live.rs` ([`live_line`]); `test_support.rs` builds the synthetic records of the
//! tests.
//!
//! Failed points never stop a report: they are rows with a status and a reason, listed under their
//! study, and left out of the scaling numbers.

pub mod compare;
pub mod csv;
pub mod html;
pub mod messages;
pub mod ml;
pub mod plots;
pub mod roofline;
pub mod scaling;
pub mod top500;

mod format;
mod live;
mod markdown;
mod peaks;
mod pipeline;
mod tables;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
mod warnings;

use std::path::PathBuf;

use anyhow::Result;

use crate::machine::Machine;
use crate::plan::Plan;
use crate::results::{PointRecord, RunDir};
use crate::workload::Work;

pub use self::live::live_line;
pub use self::pipeline::{write_tables, write_with};
pub use self::plots::Spread;

// For the submodules that use them under these paths (compare.rs, ml.rs).
use self::format::cell;
use self::plots::secs;

/// The first line of the report of a mock run.
pub const MOCK_NOTE: &str = "> **MOCK DATA — not measured.** Every time in this report comes from the mock executor's model t(p) = A + B/p (`scalelab run --mock A,B`); no figure here describes this machine, and every plot carries a \"MOCK DATA\" badge.";

/// Which rate describes a workload: GFLOP/s for compute-bound work, GB/s for memory-bound work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Throughput {
    /// Billions of floating point operations per second.
    Gflops,
    /// Billions of bytes (decimal GB) moved per second.
    Gbps,
}

impl Throughput {
    /// GB/s when the workload moves bytes and does less than one FLOP per byte (STREAM, dot,
    /// stencils with low arithmetic intensity), GFLOP/s when it counts FLOPs otherwise, `None` when
    /// it counts neither (diagnostic workloads).
    pub fn for_work(work: &Work) -> Option<Throughput> {
        if work.bytes > 0.0 && (work.flops <= 0.0 || work.flops / work.bytes < 1.0) {
            Some(Throughput::Gbps)
        } else if work.flops > 0.0 {
            Some(Throughput::Gflops)
        } else {
            None
        }
    }

    /// "GFLOP/s" or "GB/s".
    pub fn unit(self) -> &'static str {
        match self {
            Throughput::Gflops => "GFLOP/s",
            Throughput::Gbps => "GB/s",
        }
    }

    /// The work count this rate divides: flops or bytes.
    pub fn work(self, work: &Work) -> f64 {
        match self {
            Throughput::Gflops => work.flops,
            Throughput::Gbps => work.bytes,
        }
    }

    /// The rate for one repetition of `seconds`, in [`Throughput::unit`].
    pub fn rate(self, work: &Work, seconds: f64) -> Option<f64> {
        csv::rate(self.work(work), seconds)
    }
}

/// The files one [`write()`] produced, in this order: `measurements.csv`, `summary.csv`,
/// `report.md`, `report.html`, then the SVG and PNG of every plot.
pub type ReportFiles = Vec<PathBuf>;

/// Write the whole report of a run (see the module documentation) and return the files written.
/// `records` are the run's point records (ok and failed), normally
/// [`RunDir::load_records`]; `machine` gives the peaks for "% of peak".
///
/// Every file is written atomically; a report can be re-created at any time from the records
/// with `scalelab report <run-dir>`. A plot that cannot be drawn costs only its study's pictures
/// (report.md says so) but is still an error, returned after report.md is written; the first
/// file that cannot be written otherwise ends it with an error naming that file.
pub fn write(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
    machine: &Machine,
) -> Result<ReportFiles> {
    write_with(run, plan, records, machine, Spread::default())
}

/// Whether the run's times came from the mock executor (`scalelab run --mock`), as its
/// provenance records; a run without a readable provenance is taken as measured.
pub fn is_mock(run: &RunDir) -> bool {
    crate::provenance::Provenance::load(run).is_ok_and(|p| p.executor == "mock")
}

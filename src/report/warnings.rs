//! The "Warnings" section at the top of report.md: noisy, disturbed, oversubscribed, failed and
//! missing points, each with what to do about it (which file, which command).

use std::collections::BTreeSet;

use super::format::times;
use super::scaling::Series;
use crate::machine::Machine;
use crate::plan::{Plan, Scaling};
use crate::results::{PointRecord, RunDir, Status};
use crate::stats::{Outliers, Summary, HIGH_VARIANCE};

pub(super) fn warnings(
    plan: &Plan,
    records: &[PointRecord],
    series: &[Series<'_>],
    machine: &Machine,
    run: &RunDir,
) -> Vec<String> {
    let mut w = Vec::new();
    let dir = run.root.display();
    if let Some(busy) = disturbed_warning(records, run) {
        w.push(busy);
    }
    let mut noisy = Vec::new();
    let mut outliers = 0;
    let mut few = 0;
    for rec in records.iter().filter(|r| r.status == Status::Ok) {
        let t = times(rec);
        if let Some(s) = Summary::of(&t) {
            if s.relative_stddev() > HIGH_VARIANCE {
                noisy.push(format!("`{}`", rec.point.id));
            }
            if s.n < 3 {
                few += 1;
            }
        }
        if Outliers::tukey(&t).total() > 0 {
            outliers += 1;
        }
    }
    if !noisy.is_empty() {
        let shown: Vec<_> = noisy.iter().take(8).cloned().collect();
        w.push(format!(
            "**High variance**: stddev > {:.0}% of the median on {} point(s) ({}{}); close other programs, pin threads, or raise `repetitions`.",
            HIGH_VARIANCE * 100.0,
            noisy.len(),
            shown.join(", "),
            if noisy.len() > shown.len() { ", …" } else { "" }
        ));
    }
    if outliers > 0 {
        w.push(format!(
            "**Outliers**: {outliers} point(s) have repetitions outside Tukey's 1.5 IQR fences; medians are robust to them, but check `measurements.csv` and raise `repetitions` if they recur."
        ));
    }
    if few > 0 {
        w.push(format!(
            "**Few repetitions**: {few} point(s) have fewer than 3 repetitions, so their confidence intervals are wide or undefined; set `repetitions = 5` or more."
        ));
    }
    let over = records.iter().filter(|r| r.point.oversubscribed).count();
    if over > 0 {
        let cores = if machine.cores > 0 {
            format!(" than the {} cores", machine.cores)
        } else {
            String::new()
        };
        let what = if records
            .iter()
            .any(|r| r.point.oversubscribed && r.point.resources.ranks > 1)
        {
            "workers (ranks × threads)"
        } else {
            "workers"
        };
        w.push(format!(
            "**Oversubscribed**: {over} point(s) ran more {what}{cores} (marked ⚠); their times measure time-sharing, not scaling. Leave them out of conclusions or run them on a bigger machine."
        ));
    }
    let failed = records.iter().filter(|r| r.status != Status::Ok).count();
    if failed > 0 {
        w.push(format!(
            "**Failed points**: {failed} point(s) did not succeed (see \"Failed points\" under each study; logs in `logs/<point-id>.txt`). Fix the cause, delete their records in `points/` and resume with `scalelab run --resume {dir}`."
        ));
    }
    let recorded: BTreeSet<&str> = records.iter().map(|r| r.point.id.as_str()).collect();
    let missing = plan
        .points
        .iter()
        .filter(|p| !recorded.contains(p.id.as_str()))
        .count();
    if missing > 0 {
        w.push(format!(
            "**Incomplete run**: {missing} planned point(s) have no record yet; finish them with `scalelab run --resume {dir}` and report again."
        ));
    }
    if let Some(gap) = loss_gap_warning(records) {
        w.push(gap);
    }
    if let Some(emulated) = emulated_precision_warning(records) {
        w.push(emulated);
    }
    let superlinear: usize = series
        .iter()
        .filter(|s| s.scaling == Scaling::Strong)
        .map(|s| s.points.iter().filter(|p| p.efficiency > 1.1).count())
        .sum();
    if superlinear > 0 {
        w.push(format!(
            "**Superlinear speedup** on {superlinear} point(s) (efficiency above 110%): usually each worker's share of the data now fits in cache, or the base point was slowed down; check the base time and compare with a larger size."
        ));
    }
    w
}

/// The warning about training points in a reduced precision whose loss curve strayed from the
/// fp64 reference's by more than [`FP64_LOSS_GAP_TOLERANCE`] (metric `fp64_loss_gap`, the largest
/// relative difference of the curves' per-epoch means; a diverged curve is infinitely far): not a
/// failure (the
/// weights were checked bitwise against the reference at the same precision), but what a reader
/// must not miss.
///
/// [`FP64_LOSS_GAP_TOLERANCE`]: scalelab_ml::mlp::precision::FP64_LOSS_GAP_TOLERANCE
fn loss_gap_warning(records: &[PointRecord]) -> Option<String> {
    use scalelab_ml::mlp::precision::FP64_LOSS_GAP_TOLERANCE;
    let far: Vec<String> = records
        .iter()
        .filter_map(|r| {
            let gap = r
                .repetitions
                .iter()
                .filter_map(|rep| rep.metrics.get("fp64_loss_gap").copied())
                .map(|g| if g.is_nan() { f64::INFINITY } else { g })
                .fold(None, |m: Option<f64>, g| Some(m.map_or(g, |m| m.max(g))))?;
            (gap > FP64_LOSS_GAP_TOLERANCE).then(|| {
                if gap.is_finite() {
                    format!("`{}` ({:.1}%)", r.point.id, 100.0 * gap)
                } else {
                    format!("`{}` (diverged)", r.point.id)
                }
            })
        })
        .collect();
    if far.is_empty() {
        return None;
    }
    let shown: Vec<_> = far.iter().take(8).cloned().collect();
    Some(format!(
        "**Loss curve off fp64**: on {} point(s) ({}{}) the training loss strayed from the fp64 reference's by more than {:.0}% in some epoch's mean loss. The run is still correct for its format (its weights equal the serial reference's at the same precision), but the format changed what was learnt: fp16 without a loss scale loses gradients that underflow below 6e-8; set `loss_scale = \"dynamic\"` or use bf16 (docs/training.md, Mixed precision).",
        far.len(),
        shown.join(", "),
        if far.len() > shown.len() { ", …" } else { "" },
        100.0 * FP64_LOSS_GAP_TOLERANCE
    ))
}

/// The warning that the times, GFLOP/s and speedups of training points in a reduced precision
/// measure the CPU's emulation of the format (`scalelab_ml::mlp::precision`: every GEMM operand
/// rounded in software), not the format's speed on hardware that has it: a reader comparing the
/// rows of fp64 and bf16 must not take the slower one for the format's cost.
fn emulated_precision_warning(records: &[PointRecord]) -> Option<String> {
    let emulated = records
        .iter()
        .filter(|r| {
            // The training workloads record the curve's distance from fp64 in every precision.
            r.repetitions
                .iter()
                .any(|rep| rep.metrics.contains_key("fp64_loss_gap"))
                && r.point.resources.gpus == 0
                && matches!(
                    r.point.params.get("precision"),
                    Some(crate::value::Value::Text(p)) if p != "fp64"
                )
        })
        .count();
    (emulated > 0).then(|| {
        format!(
            "**Emulated precision**: {emulated} training point(s) ran in a reduced precision on \
             the CPU, which rounds every GEMM operand in software: their times, GFLOP/s and \
             speedups measure that emulation, not the format's speed on a GPU or CPU that has \
             it. Compare their loss curves and `fp64_loss_gap` with fp64's, not their speed \
             (docs/training.md, Mixed precision)."
        )
    })
}

/// The warning about points measured beside other work ([`crate::load`]): which, why, what the
/// report did with them, and how to measure them again on a quiet machine.
pub(super) fn disturbed_warning(records: &[PointRecord], run: &RunDir) -> Option<String> {
    let busy: Vec<(&PointRecord, String)> = records
        .iter()
        .filter(|r| r.status == Status::Ok)
        .filter_map(|r| r.load_verdict().filter(|v| v.disturbed).map(|v| (r, v.why)))
        .collect();
    if busy.is_empty() {
        return None;
    }
    const SHOWN: usize = 8;
    let named: Vec<String> = busy
        .iter()
        .take(SHOWN)
        .map(|(r, why)| format!("`{}` ({why})", r.point.id))
        .collect();
    let more = if busy.len() > SHOWN {
        format!(
            ", and {} more (the `disturbed` column of summary.csv lists them all)",
            busy.len() - SHOWN
        )
    } else {
        String::new()
    };
    let dir = run.root.display();
    let rm: Vec<String> = busy
        .iter()
        .take(SHOWN)
        .map(|(r, _)| format!("{dir}/points/{}.json", r.point.id))
        .collect();
    Some(format!(
        "**Busy machine: {} point(s) were disturbed.** Other programs used the cores these points needed while they ran, so their times measure that other work as much as the code: {}{more}. They are marked ⚠ in the tables and hollow in the plots, left out of the Amdahl and Gustafson fits, and no speedup is based on them where an undisturbed point exists. To measure them again on a quiet machine, close other programs (`top` shows what runs), delete their records and resume, waiting for quiet before each point: `rm {}` then `scalelab run --resume {dir} --wait-idle`.",
        busy.len(),
        named.join(", "),
        rm.join(" ")
    ))
}

/// One line for the head of a report: how busy the machine was while `records` were measured,
/// so that a reader sees the conditions beside the machine before any number. `None` when no
/// record holds a load (runs made before loads were sampled, or mock runs).
pub fn describe_load(records: &[PointRecord]) -> Option<String> {
    let loads: Vec<&crate::load::MachineLoad> =
        records.iter().filter_map(|r| r.load.as_ref()).collect();
    if loads.is_empty() {
        return None;
    }
    let range = |f: &dyn Fn(&crate::load::MachineLoad) -> f64| {
        let (lo, hi) = loads
            .iter()
            .map(|l| f(l))
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if (hi - lo).abs() < 0.005 {
            format!("{lo:.2}")
        } else {
            format!("{lo:.2}–{hi:.2}")
        }
    };
    let disturbed = records.iter().filter(|r| r.is_disturbed()).count();
    let unsampled = records.len() - loads.len();
    Some(format!(
        "Load while measured: other work kept {} cores busy beside the points (1-minute load average {}); {disturbed} of {} sampled point{} disturbed{}.",
        range(&|l| l.other_cores),
        range(&|l| l.loadavg_1m),
        loads.len(),
        crate::units::plural(loads.len()),
        if unsampled > 0 {
            format!(", {unsampled} not sampled")
        } else {
            String::new()
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_support::{mpi_record, with_metric};

    #[test]
    fn emulated_precision_is_said_to_measure_the_emulation_not_the_format() {
        use crate::report::test_support::with_param;
        // A training point records its curve's distance from fp64, whichever workload it is.
        let rec = |workload: &str, precision: &str| {
            let r = mpi_record(0, workload, 1, 1, 64, 1, &[1.0]);
            with_param(
                with_metric(r, "fp64_loss_gap", &[0.0]),
                "precision",
                precision,
            )
        };
        assert_eq!(
            emulated_precision_warning(&[rec("mpi.train", "fp64")]),
            None
        );
        let other = mpi_record(0, "mpi.allreduce", 1, 1, 64, 1, &[1.0]);
        assert_eq!(emulated_precision_warning(&[other]), None);
        // A `precision` parameter alone does not make a point a training one.
        let untrained = with_param(
            mpi_record(0, "mpi.allreduce", 1, 1, 64, 1, &[1.0]),
            "precision",
            "fp32",
        );
        assert_eq!(emulated_precision_warning(&[untrained]), None);
        let w = emulated_precision_warning(&[
            rec("mpi.train", "fp64"),
            rec("mpi.train", "bf16"),
            rec("mlp.train", "fp16"),
        ])
        .unwrap();
        assert!(
            w.starts_with("**Emulated precision**: 2 training point(s) ran in a reduced precision"),
            "{w}"
        );
    }

    #[test]
    fn a_loss_curve_off_fp64_beyond_the_tolerance_is_named_and_a_diverged_one_too() {
        // Points told apart by their size (their ids).
        let rec = |size: u64, gap: &[f64]| {
            with_metric(
                mpi_record(0, "mpi.train", 1, 1, size, 1, &[1.0, 1.0]),
                "fp64_loss_gap",
                gap,
            )
        };
        let close = rec(64, &[0.01, 0.049]);
        assert_eq!(loss_gap_warning(std::slice::from_ref(&close)), None);
        // A point without the metric (another workload) is never named.
        let other = mpi_record(0, "mpi.allreduce", 1, 1, 65, 1, &[1.0]);
        assert_eq!(loss_gap_warning(&[other]), None);
        let far = rec(66, &[0.02, 0.125]);
        let diverged = rec(67, &[f64::INFINITY, f64::NAN]);
        let w = loss_gap_warning(&[close, far.clone(), diverged.clone()]).unwrap();
        assert_eq!(
            w,
            format!(
                "**Loss curve off fp64**: on 2 point(s) (`{}` (12.5%), `{}` (diverged)) the \
                 training loss strayed from the fp64 reference's by more than 5% in some \
                 epoch's mean loss. \
                 The run is still correct for its format (its weights equal the serial \
                 reference's at the same precision), but the format changed what was learnt: \
                 fp16 without a loss scale loses gradients that underflow below 6e-8; set \
                 `loss_scale = \"dynamic\"` or use bf16 (docs/training.md, Mixed precision).",
                far.point.id, diverged.point.id
            )
        );
    }
}

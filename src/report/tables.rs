//! The tables of a study in report.md: one row per point (times, rates, shares of peak,
//! speedup, efficiency, Karp–Flatt), latency and bandwidth by message size for message-size
//! studies, and the Amdahl or Gustafson fit of each series.

use super::scaling::ScalingPoint;
use std::fmt::Write as _;

use super::format::{cell, opt_sig, pct};
use super::peaks::{measured_pct, peak_gflops, Machines};
use super::plots::{secs, secs_pm};
use super::scaling::{resources_label, Series};
use super::{csv, messages, scaling, Throughput};
use crate::calibrate::Profile;
use crate::plan::Scaling;
use crate::units::sig3;
use crate::workload::Backend;

/// The table of a study's points: one row per point, in series order (see the module
/// documentation), then notes on what its marks (⚠) mean.
pub(super) fn study_table(
    md: &mut String,
    series: &[&Series<'_>],
    machines: Machines<'_>,
    measured: Option<&Profile>,
) {
    // What every point shares is said once above the table; a row shows only its own
    // parameters, and the column goes when no point has any.
    let records: Vec<_> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.record))
        .collect();
    let (shared, own) = super::plots::shared_params(&records);
    if !shared.is_empty() {
        let _ = writeln!(md, "Every point: `{}`.\n", shared.join(" "));
    }
    let cols = Columns::of(series, own.iter().any(|o| !o.is_empty()));
    let _ = writeln!(md, "| {} |", cols.head.join(" | "));
    let _ = writeln!(md, "| {} |", cols.align.join(" | "));
    let mut own = own.into_iter();
    for s in series {
        for (i, p) in s.points.iter().enumerate() {
            let params = own.next().unwrap_or_default().join(" ");
            let cells = row(&cols, s, i, p, &params, machines, measured);
            let _ = writeln!(md, "| {} |", cells.join(" | "));
        }
    }
    md.push('\n');
    for n in &notes(series, &cols) {
        let _ = writeln!(md, "*{n}*\n");
    }
}

/// Which columns a study's table has, with their titles and alignments.
struct Columns {
    strong: bool,
    /// MPI studies show ranks and threads per rank beside p, so hybrid splits with equal p
    /// (2 ranks × 1 thread, 1 rank × 2 threads) read apart.
    mpi: bool,
    comm: bool,
    /// Message-size studies: every size is its own series, usually at one rank count, so
    /// speedups say nothing there; latency and bandwidth follow in their own table.
    message: bool,
    loaded: bool,
    /// Some point has parameters of its own (not shared by every point of the study).
    params: bool,
    head: Vec<&'static str>,
    align: Vec<&'static str>,
}

impl Columns {
    fn of(series: &[&Series<'_>], params: bool) -> Columns {
        let strong = series[0].scaling == Scaling::Strong;
        let points = || series.iter().flat_map(|s| s.points.iter());
        let mpi = points()
            .any(|p| p.record.point.resources.ranks > 1 || p.record.backend == Some(Backend::Mpi));
        let comm = messages::has_comm(series);
        let message = messages::is_message_study(series);
        let loaded = points().any(|p| p.record.load.is_some());
        let mut head = vec!["point", "p"];
        let mut align = vec!["---", "---:"];
        if mpi {
            head.extend(["ranks", "threads/rank"]);
            align.extend(["---:", "---:"]);
        }
        head.push("resources");
        align.push("---");
        if params {
            head.push("parameters");
            align.push("---");
        }
        head.extend(["median ± 95% CI", "GFLOP/s", "GB/s", "% peak", "% measured"]);
        align.extend(["---:", "---:", "---:", "---:", "---:"]);
        if !message && strong {
            head.extend(["speedup", "efficiency", "Karp–Flatt"]);
            align.extend(["---:", "---:", "---:"]);
        } else if !message {
            head.extend(["scaled speedup", "efficiency"]);
            align.extend(["---:", "---:"]);
        }
        if comm {
            head.push("comm share");
            align.push("---:");
        }
        if loaded {
            head.push("machine");
            align.push("---");
        }
        Columns {
            strong,
            mpi,
            comm,
            message,
            loaded,
            params,
            head,
            align,
        }
    }
}

/// The cells of point `i` of series `s`, whose own parameters are `params`.
fn row(
    cols: &Columns,
    s: &Series<'_>,
    i: usize,
    p: &ScalingPoint<'_>,
    params: &str,
    machines: Machines<'_>,
    measured: Option<&Profile>,
) -> Vec<String> {
    let Columns {
        strong,
        mpi,
        comm,
        message,
        loaded,
        ..
    } = *cols;
    let r = p.record;
    let ci = if p.summary.n > 1 {
        secs_pm(p.summary.median, p.summary.ci95_half_width())
    } else {
        format!("{} (1 rep)", secs(p.summary.median))
    };
    let gflops = csv::rate(r.work.flops, p.summary.median);
    let gbps = csv::rate(r.work.bytes, p.summary.median);
    // % of the FLOP peak only means something for compute-bound work.
    let compute_bound = Throughput::for_work(&r.work) == Some(Throughput::Gflops);
    let peak = match (gflops, peak_gflops(r, machines.of(r))) {
        (Some(g), Some(pk)) if compute_bound => pct(g / pk),
        _ => "–".into(),
    };
    let of_measured = measured_pct(r, gflops, gbps, measured);
    let base = if i == s.base { " (base)" } else { "" };
    let warn = if r.point.oversubscribed { " ⚠" } else { "" };
    let mut cells = vec![format!("`{}`{warn}", r.point.id), p.workers.to_string()];
    if mpi {
        cells.push(r.point.resources.ranks.to_string());
        cells.push(r.point.resources.threads.to_string());
    }
    cells.push(resources_label(&r.point.resources));
    if cols.params {
        cells.push(if params.is_empty() {
            "–".into()
        } else {
            cell(params)
        });
    }
    cells.extend([ci, opt_sig(gflops), opt_sig(gbps), peak, of_measured]);
    if !message {
        // Values outside their range are worded, not printed as 240% (see scaling).
        cells.push(format!(
            "{}{base}",
            scaling::speedup_text(p.speedup, p.workers)
        ));
        cells.push(scaling::efficiency_text(p.efficiency));
    }
    if strong && !message {
        let kf = p.karp_flatt.map(scaling::karp_flatt_text);
        cells.push(kf.unwrap_or_else(|| "–".into()));
    }
    if comm {
        cells.push(
            messages::comm_share(r, p.summary.median)
                .map(pct)
                .unwrap_or_else(|| "–".into()),
        );
    }
    if loaded {
        cells.push(match r.load_verdict() {
            Some(v) if v.disturbed => "⚠ disturbed".into(),
            Some(_) => "quiet".into(),
            None => "–".into(),
        });
    }
    cells
}

/// The notes under a study's table.
fn notes(series: &[&Series<'_>], cols: &Columns) -> Vec<String> {
    let points = || series.iter().flat_map(|s| s.points.iter());
    let (mpi, comm) = (cols.mpi, cols.comm);
    let mut notes = Vec::new();
    if mpi {
        notes.push(
            "p = ranks × threads per rank × max(GPUs, 1); `ranks` is the total over all nodes."
                .to_string(),
        );
    }
    if comm {
        let waiting = if points().any(|p| messages::has_metric(p.record, messages::WAIT_METRIC)) {
            " Where a point records `wait_s` (waiting for a slower rank or a pipeline neighbour), that time is not in `comm_s`."
        } else {
            ""
        };
        notes.push(format!("comm share = median `comm_s` / median time: the fraction of a repetition spent in MPI communication as the workload times it (halo exchanges, panel broadcasts, gradient reductions), maximum over the ranks.{waiting}"));
    }
    if points().any(|p| p.record.point.oversubscribed) {
        let what = if mpi { "ranks × threads" } else { "workers" };
        notes.push(format!(
            "⚠ oversubscribed: more {what} than cores; times not comparable (they measure time-sharing, and the fits leave these points out)."
        ));
    }
    if points().any(|p| p.record.is_disturbed()) {
        notes.push("⚠ disturbed: other work used the cores this point needed while it ran (see the warning at the top); its time is not comparable, it is hollow in the plots and the fits leave it out.".to_string());
    }
    notes
}

/// The latency/bandwidth table of a message-size study.
pub(super) fn message_table(md: &mut String, series: &[&Series<'_>]) {
    let points = messages::message_points(series);
    if points.is_empty() {
        return;
    }
    let _ = writeln!(md, "### Latency and bandwidth by message size\n");
    // The machine's state beside each point, as in the study table: a latency measured while
    // other work held the cores is not the network's.
    let loaded = points.iter().any(|p| p.record.load.is_some());
    if loaded {
        md.push_str(
            "| message size | series | latency (µs) | bandwidth (GB/s) | point | machine |\n",
        );
        md.push_str("| ---: | --- | ---: | ---: | --- | --- |\n");
    } else {
        md.push_str("| message size | series | latency (µs) | bandwidth (GB/s) | point |\n");
        md.push_str("| ---: | --- | ---: | ---: | --- |\n");
    }
    for p in &points {
        let warn = if p.record.point.oversubscribed || p.record.is_disturbed() {
            " ⚠"
        } else {
            ""
        };
        let machine = match (loaded, p.record.load_verdict()) {
            (false, _) => String::new(),
            (true, Some(v)) if v.disturbed => " ⚠ disturbed |".into(),
            (true, Some(_)) => " quiet |".into(),
            (true, None) => " – |".into(),
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | `{}`{warn} |{machine}",
            crate::units::bytes_exact(p.size as f64),
            cell(&p.line),
            sig3(p.latency_us),
            opt_sig(p.bandwidth_gbps),
            p.record.point.id
        );
    }
    let lat = if points.iter().all(|p| p.from_metric) {
        "latency: median of the workload's `metric_latency_us` (ping-pong: one-way, half a round trip; collectives: time per call)"
    } else if points.iter().any(|p| p.from_metric) {
        "latency: median `metric_latency_us` where recorded, else median time / `iterations`"
    } else {
        "latency: median time / `iterations` (the time of one operation)"
    };
    let _ = writeln!(
        md,
        "\n*{lat}; bandwidth: bytes / median time (GB/s = 1e9 B/s; the ping-pong counts 2 · size · iterations bytes, i.e. size / one-way time).*\n"
    );
    if points.iter().any(|p| p.record.is_disturbed()) {
        let _ = writeln!(
            md,
            "*⚠ disturbed: other work used the cores these ranks needed while they ran (see the warning at the top); their latency and bandwidth measure that contention as much as the interconnect.*\n"
        );
    }
}

pub(super) fn fits(md: &mut String, series: &[&Series<'_>]) {
    // A line is named as its legend names it: by what sets it apart from the study's other lines
    // (nothing when it is the only one).
    let (_, labels) = super::plots::series_labels(series);
    // Lines measured at one worker count, and lines whose points were too disturbed to fit:
    // each said once for them all, not a paragraph each.
    let mut single = Vec::new();
    let mut disturbed = Vec::new();
    for (s, label) in series.iter().zip(&labels) {
        let name = if label.is_empty() {
            String::new()
        } else {
            format!(" for `{label}`")
        };
        let base = s.base_point();
        let base_text = format!("base p0 = {}, {}", base.workers, secs(base.summary.median));
        let exact = if s.distinct_workers() == 2 {
            " Two worker counts determine the fit exactly; measure more to test the model."
        } else {
            ""
        };
        if let Some(f) = s.amdahl {
            let _ = writeln!(
                md,
                "**Amdahl fit**{name}: {}. Least squares of 1/S on 1/p over {} points, rms residual {:.2e} ({base_text}).{exact}\n",
                scaling::amdahl_text(&f),
                f.points,
                f.rms_residual
            );
        } else if let Some(g) = s.gustafson {
            let _ = writeln!(
                md,
                "**Gustafson fit**{name}: {}; least squares over {} points, rms residual {:.2e} ({base_text}).{exact}\n",
                scaling::gustafson_text(&g),
                g.points,
                g.rms_residual
            );
        } else if s.distinct_workers() >= 2 && s.points.iter().any(|p| p.record.is_disturbed()) {
            disturbed.push((label, base_text));
        } else {
            single.push((s, label));
        }
    }
    let quiet =
        "measured on a quiet machine (⚠ disturbed points are left out; see the warning at the top)";
    match disturbed.as_slice() {
        [] => {}
        [(label, base_text)] => {
            let name = if label.is_empty() {
                String::new()
            } else {
                format!(" for `{label}`")
            };
            let _ = writeln!(
                md,
                "No fit{name}: too few of its points were {quiet} ({base_text}).\n"
            );
        }
        _ if disturbed.len() == series.len() => {
            let _ = writeln!(md, "No fit: too few points of any line were {quiet}.\n");
        }
        _ => {
            let names: Vec<String> = disturbed.iter().map(|(l, _)| format!("`{l}`")).collect();
            let _ = writeln!(
                md,
                "No fit for {}: too few of their points were {quiet}.\n",
                names.join(", ")
            );
        }
    }
    let fix =
        "a fit needs at least two worker counts; add values to `threads` (or `ranks`) in the study";
    match single.as_slice() {
        [] => {}
        [(s, _)] if series.len() == 1 => {
            let _ = writeln!(md, "No fit: {fix} (p = {}).\n", s.base_point().workers);
        }
        _ if single.len() == series.len() => {
            let _ = writeln!(
                md,
                "No fit: every line was measured at one worker count; {fix}.\n"
            );
        }
        _ => {
            let names: Vec<String> = single.iter().map(|(_, l)| format!("`{l}`")).collect();
            let _ = writeln!(
                md,
                "No fit for {}: each was measured at one worker count; {fix}.\n",
                names.join(", ")
            );
        }
    }
}

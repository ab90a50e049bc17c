//! report.md's text: the run and its machine, the warnings, and per study its table, fits,
//! plots and failed points (the tables themselves are in `tables.rs`).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::format::{cell, params_text};
use super::peaks::Machines;
use super::plots::Plot;
use super::scaling::{resources_label, Series};
use super::tables::{fits, message_table, study_table};
use super::warnings::warnings;
use super::{messages, ml};
use crate::calibrate::{Profile, RunProfile};
use crate::machine::Machine;
use crate::plan::{Plan, Scaling};
use crate::results::{PointRecord, RunDir, Status};
use crate::units::sig3;

/// A study as the report lists it.
pub(super) struct Study {
    pub index: usize,
    pub name: String,
    pub workload: String,
    pub scaling: Scaling,
}

/// The studies of the plan and the records, in manifest order.
pub(super) fn studies(plan: &Plan, records: &[PointRecord]) -> Vec<Study> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<Study> = plan
        .points
        .iter()
        .chain(records.iter().map(|r| &r.point))
        .filter(|p| seen.insert(p.study))
        .map(|p| Study {
            index: p.study,
            name: p.study_name.clone(),
            workload: p.workload.clone(),
            scaling: p.scaling,
        })
        .collect();
    out.sort_by_key(|s| s.index);
    out
}

pub(super) fn markdown(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
    series: &[Series<'_>],
    plots: &[(usize, Vec<Plot>)],
    plot_errors: &[String],
    machines: Machines<'_>,
) -> String {
    let machine = machines.report;
    let mut md = header(run, plan, records, machine);
    // Measured peaks come from the run's own copy of the machine profile (see crate::calibrate).
    let measured = RunProfile::load(&run.root);
    let _ = writeln!(md, "\n{}", measured.describe(&run.root));
    let _ = writeln!(
        md,
        "\nData: [measurements.csv](measurements.csv) (one row per repetition), [summary.csv](summary.csv) (one row per point); columns in `docs/results.md`. Times are medians over the repetitions; ± is the half-width of the 95% confidence interval of the mean (Student's t).\n"
    );

    let mut warns = warnings(plan, records, series, machine, run);
    warns.extend(plot_errors.iter().cloned());
    if !warns.is_empty() {
        let _ = writeln!(md, "## Warnings\n");
        for w in &warns {
            let _ = writeln!(md, "- {w}");
        }
        md.push('\n');
    }

    for study in studies(plan, records) {
        study_section(
            &mut md,
            &study,
            plan,
            records,
            series,
            plots,
            machines,
            measured.profile(),
        );
    }
    md
}

/// The first lines of report.md: the experiment, the run and its points, the machine with its
/// theoretical peak, the load beside the run.
fn header(run: &RunDir, plan: &Plan, records: &[PointRecord], machine: &Machine) -> String {
    let mut md = String::new();
    let ok = records.iter().filter(|r| r.status == Status::Ok).count();
    let _ = writeln!(md, "# {}: scaling report\n", plan.experiment);
    let _ = writeln!(
        md,
        "Run `{}`: {} planned point(s), {} recorded ({} ok, {} failed).",
        run.root.display(),
        plan.points.len(),
        records.len(),
        ok,
        records.len() - ok
    );
    if !machine.host.is_empty() || !machine.cpu_model.is_empty() {
        let peak = if machine.peak_gflops_per_core > 0.0 {
            format!(
                ", theoretical peak {} GFLOP/s per core ({}, {} f64 lanes × {} FMA × 2 × {:.2} GHz; {})",
                sig3(machine.peak_gflops_per_core),
                machine.simd,
                machine.simd_f64_lanes,
                machine.fma_units,
                machine.clock(),
                machine.peak_basis()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "Machine: {} ({}, {} logical CPUs{peak}).",
            machine.host, machine.cpu_model, machine.cores
        );
    }
    if let Some(load) = super::warnings::describe_load(records) {
        let _ = writeln!(md, "{load}");
    }
    md
}

/// The section of one study: its table, fits, plots and failed points.
#[allow(clippy::too_many_arguments)]
fn study_section(
    md: &mut String,
    study: &Study,
    plan: &Plan,
    records: &[PointRecord],
    series: &[Series<'_>],
    plots: &[(usize, Vec<Plot>)],
    machines: Machines<'_>,
    measured: Option<&Profile>,
) {
    let _ = writeln!(
        md,
        "## Study {}: {} ({} scaling, `{}`)\n",
        study.index + 1,
        study.name,
        study.scaling.as_str(),
        study.workload
    );
    let st_series: Vec<&Series<'_>> = series.iter().filter(|s| s.study == study.index).collect();
    let st_records: Vec<&PointRecord> = records
        .iter()
        .filter(|r| r.point.study == study.index)
        .collect();
    let planned = plan
        .points
        .iter()
        .filter(|p| p.study == study.index)
        .count();

    if st_series.is_empty() {
        let _ = writeln!(md, "No successful points yet ({} planned).\n", planned);
    } else {
        study_table(md, &st_series, machines, measured);
        if ml::is_ml_study(&st_series) {
            ml::table(md, &st_series);
        }
        if messages::is_message_study(&st_series) {
            message_table(md, &st_series);
        } else {
            fits(md, &st_series);
        }
    }
    if let Some((_, pl)) = plots.iter().find(|(i, _)| *i == study.index) {
        for p in pl {
            let _ = writeln!(md, "![{}](plots/{}.png)\n", p.title, p.stem);
            let _ = writeln!(md, "[{} (SVG)](plots/{}.svg)\n", p.title, p.stem);
        }
    }
    let failed: Vec<&&PointRecord> = st_records
        .iter()
        .filter(|r| r.status != Status::Ok)
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(md, "### Failed points\n");
        let _ = writeln!(
            md,
            "| point | resources | parameters | status | reason | log |"
        );
        let _ = writeln!(md, "| --- | --- | --- | --- | --- | --- |");
        for r in failed {
            let _ = writeln!(
                md,
                "| `{}` | {} | {} | {} | {} | `logs/{}.txt` |",
                r.point.id,
                resources_label(&r.point.resources),
                cell(&params_text(r)),
                r.status.as_str(),
                cell(if r.reason.is_empty() {
                    "(no reason recorded)"
                } else {
                    &r.reason
                }),
                r.point.id
            );
        }
        md.push('\n');
    }
}

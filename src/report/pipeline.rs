//! The order in which a report is made: the CSV tables, the plots of every study, the rooflines,
//! the TOP500 plot, then report.md and report.html. A plot that cannot be drawn costs only its
//! pictures; the error is returned after the text is written.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use super::markdown::{markdown, studies};
use super::peaks::Machines;
use super::plots::{Plot, PlotOptions};
use super::scaling::Series;
use super::{csv, html, is_mock, plots, roofline, scaling, top500};
use super::{ReportFiles, Spread, MOCK_NOTE};
use crate::calibrate::RunProfile;
use crate::files::write_atomic;
use crate::machine::Machine;
use crate::plan::Plan;
use crate::results::{PointRecord, RunDir};

/// [`write`](super::write) with the plots' whiskers over `spread` (the interquartile range by default; the
/// fastest to the slowest repetition with `scalelab report --spread minmax`).
pub fn write_with(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
    machine: &Machine,
    spread: Spread,
) -> Result<ReportFiles> {
    let mock = is_mock(run);
    let opts = PlotOptions { spread, mock };
    let (measurements, summary) = write_tables(run, plan, records)?;
    let all_series = scaling::series(records);

    let mut drawn = Drawn::default();
    drawn.study_plots(run, plan, records, &all_series, machine, opts);
    let (roofline_md, study_roofs) = drawn.rooflines(run, records, machine, mock);
    // The compute nodes SLURM tasks recorded: each point's "% peak" is of its own node.
    let nodes = crate::machine::run_nodes(&run.root);
    let top500_md = drawn.top500(run, records, mock);

    let mut text = markdown(
        run,
        plan,
        records,
        &all_series,
        &drawn.by_study,
        &drawn.errors,
        Machines {
            report: machine,
            nodes: &nodes,
        },
    );
    if mock {
        text = format!("{MOCK_NOTE}\n\n{text}");
    }
    text.push_str(&roofline_md);
    if !study_roofs.is_empty() {
        let _ = writeln!(
            text,
            "Studies with a roofline of their own, in their sections above: {}.\n",
            study_roofs.join(", ")
        );
    }
    text.push_str(&top500_md);
    let report = run.report();
    write_atomic(&report, text.as_bytes())?;
    // The same text as a page with the plots inside; a plot it cannot inline is marked there and
    // named here.
    let page = html::write(run, &text, machine);
    if let Err(e) = &page {
        drawn.failures.push(format!("{e:#}"));
    }
    // The report says which plots are missing; the command must say it too (and fail), or a full
    // disk goes unnoticed.
    if !drawn.failures.is_empty() {
        bail!("{}", drawn.failures.join("\n"));
    }
    remove_stale_study_plots(&run.plots_dir(), &drawn.files)?;
    let mut files = vec![measurements, summary, report];
    files.extend(page.ok());
    files.extend(drawn.files);
    Ok(files)
}

/// Remove the study plots (`study<N>-….svg|png`) in `dir` that this report did not draw: left by
/// an earlier `scalelab report` of the same run whose studies or rules drew more (a chart that no
/// longer applies, a study renamed), they would sit beside the new ones as if current. Only
/// names the report writes are touched.
fn remove_stale_study_plots(dir: &std::path::Path, drawn: &[PathBuf]) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let plot = name.starts_with("study")
            && name[5..].starts_with(|c: char| c.is_ascii_digit())
            && (name.ends_with(".svg") || name.ends_with(".png"));
        if plot && !drawn.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the stale plot {}", path.display()))?;
        }
    }
    Ok(())
}

/// The plots of a report as they are drawn, and what could not be drawn.
#[derive(Default)]
struct Drawn {
    /// Every plot file, in the order drawn.
    files: Vec<PathBuf>,
    /// Each study's plots (scaling charts, then its own roofline), by study index.
    by_study: Vec<(usize, Vec<Plot>)>,
    /// The paragraphs report.md shows for missing plots, with the fix.
    errors: Vec<String>,
    /// One line per plot that failed, for the command's error.
    failures: Vec<String>,
}

impl Drawn {
    /// The scaling plots of every study. A plot that cannot be drawn costs its study the
    /// pictures, not the report.
    fn study_plots(
        &mut self,
        run: &RunDir,
        plan: &Plan,
        records: &[PointRecord],
        all_series: &[Series<'_>],
        machine: &Machine,
        opts: PlotOptions,
    ) {
        for study in studies(plan, records) {
            let series: Vec<&Series<'_>> = all_series
                .iter()
                .filter(|s| s.study == study.index)
                .collect();
            match plots::study_plots_with(
                &run.plots_dir(),
                study.index,
                &study.name,
                &series,
                machine,
                opts,
            ) {
                Ok(plots) => {
                    self.files
                        .extend(plots.iter().flat_map(|p| p.files.iter().cloned()));
                    self.by_study.push((study.index, plots));
                }
                Err(e) => {
                    self.failures.push(format!(
                        "drawing the plots of study {} ({}): {e:#}",
                        study.index + 1,
                        study.name
                    ));
                    self.errors.push(format!(
                    "**Plots missing** for study {} ({}): {e:#}; the tables and CSV files are complete. Check free disk space and permissions of `{}`, then run `scalelab report {}`.",
                    study.index + 1,
                    study.name,
                    run.plots_dir().display(),
                    run.root.display()
                ))
                }
            }
        }
    }

    /// The rooflines: the run's (one plot per worker count, across studies) and each study's
    /// own (DGEMM variants, several sizes), which goes into its section after its scaling plots.
    /// Returns the run's roofline section and the links to the studies' rooflines.
    ///
    /// With a calibrated profile in the run, its measured ceilings (caches, DRAM, DGEMM) join the
    /// theoretical ones; without, the run's own best STREAM point is the one measured ceiling.
    /// Not for a mock run: its GFLOP/s are model times, and a roofline would place them against
    /// this machine's real ceilings.
    fn rooflines(
        &mut self,
        run: &RunDir,
        records: &[PointRecord],
        machine: &Machine,
        mock: bool,
    ) -> (String, Vec<String>) {
        let run_profile = RunProfile::load(&run.root);
        let ceilings = |p: u64, pts: &[&roofline::RooflinePoint]| match run_profile.profile() {
            Some(profile) => roofline::profile_ceilings(profile, machine, p, pts),
            None => roofline::run_ceilings(machine, p, pts),
        };
        let drawn = if mock {
            Ok(roofline::Roofline::default())
        } else {
            roofline::write_with(&run.plots_dir(), records, machine, ceilings)
        };
        let mut study_roofs: Vec<String> = Vec::new();
        let per_study = if mock {
            Ok(Vec::new())
        } else {
            roofline::write_studies(&run.plots_dir(), records, machine, ceilings)
        };
        match per_study {
            Ok(per_study) => {
                for (index, plots) in per_study {
                    if let Some(p) = plots.first() {
                        let name = records
                            .iter()
                            .find(|r| r.point.study == index)
                            .map_or("", |r| r.point.study_name.as_str());
                        study_roofs.push(format!(
                            "[study {} ({name})](plots/{}.png)",
                            index + 1,
                            p.stem
                        ));
                    }
                    self.files
                        .extend(plots.iter().flat_map(|p| p.files.iter().cloned()));
                    match self.by_study.iter_mut().find(|(i, _)| *i == index) {
                        Some((_, list)) => list.extend(plots),
                        None => self.by_study.push((index, plots)),
                    }
                }
            }
            Err(e) => self
                .failures
                .push(format!("drawing the studies' rooflines: {e:#}")),
        }
        let md = match drawn {
            Ok(_) if mock => "\n## Roofline\n\nNot drawn for a mock run: its GFLOP/s are model times, not measurements of this machine.\n".to_string(),
            Ok(roof) => {
                self.files
                    .extend(roof.plots.iter().flat_map(|p| p.files.iter().cloned()));
                roofline::markdown(&roof)
            }
            Err(e) => {
                self.failures.push(format!("drawing the roofline: {e:#}"));
                self.errors.push(format!(
                    "**Roofline missing**: {e:#}; the tables and CSV files are complete. Check free disk space and permissions of `{}`, then run `scalelab report {}`.",
                    run.plots_dir().display(),
                    run.root.display()
                ));
                String::new()
            }
        };
        (md, study_roofs)
    }

    /// HPL points: the run's best result against the TOP500 lists, as a report section. Not for
    /// a mock run: its GFLOP/s are model times, not this machine's.
    fn top500(&mut self, run: &RunDir, records: &[PointRecord], mock: bool) -> String {
        let top500 = if mock {
            Ok(None)
        } else {
            top500::write(&run.plots_dir(), records)
        };
        match top500 {
            Ok(Some((plot, md))) => {
                self.files.extend(plot.files);
                md
            }
            Ok(None) => String::new(),
            Err(e) => {
                self.failures
                    .push(format!("drawing the TOP500 plot: {e:#}"));
                self.errors.push(format!(
                    "**TOP500 plot missing**: {e:#}; the tables and CSV files are complete. Check free disk space and permissions of `{}`, then run `scalelab report {}`.",
                    run.plots_dir().display(),
                    run.root.display()
                ));
                String::new()
            }
        }
    }
}

/// Write only `measurements.csv` and `summary.csv` from `records` (what `scalelab collect` does):
/// cheap, idempotent, and safe while points are still being written, since every record is
/// replaced atomically and the tables are rewritten whole. Returns the two paths.
pub fn write_tables(
    run: &RunDir,
    plan: &Plan,
    records: &[PointRecord],
) -> Result<(PathBuf, PathBuf)> {
    let experiment = plan.experiment.as_str();
    let measurements = run.measurements();
    csv::write_measurements(&measurements, &csv::measurement_rows(experiment, records))?;
    let summary = run.summary();
    csv::write_summary(
        &summary,
        &csv::summary_rows(experiment, records, &scaling::series(records)),
    )?;
    Ok((measurements, summary))
}

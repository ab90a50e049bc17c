//! Writing the roofline plots: which plots a run gets (the CPU points at the smallest and the
//! largest worker count, each study of several kernels, one per GPU model and count), their
//! file names and titles, and each plot's SVG and PNG file ([`write_chart`]).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;

use super::super::plots::{register_font, Plot, HEIGHT, WIDTH};
use super::ceilings::{gpu_ceilings, run_ceilings};
use super::draw::draw;
use super::{points, Ceilings, Roofline, RooflinePoint};
use crate::files::write_atomic;
use crate::machine::Machine;
use crate::results::PointRecord;

/// Draw the roofline plots of `records` into `dir` (see the module documentation).
pub fn write(dir: &Path, records: &[PointRecord], machine: &Machine) -> Result<Roofline> {
    write_with(dir, records, machine, |p, pts| {
        run_ceilings(machine, p, pts)
    })
}

/// [`write()`] with the ceilings of each plot from `ceilings(p, points at p)`: the place for
/// measured ceilings (a calibrated machine profile) instead of [`run_ceilings`].
pub fn write_with(
    dir: &Path,
    records: &[PointRecord],
    machine: &Machine,
    ceilings: impl Fn(u64, &[&RooflinePoint]) -> Ceilings,
) -> Result<Roofline> {
    let (placed, left_out) = points(records);
    let cpu: Vec<&RooflinePoint> = placed.iter().filter(|p| p.gpu.is_none()).collect();
    let mut roof = write_points(dir, "roofline", "Roofline", &cpu, machine, &ceilings)?;
    roof.left_out = left_out;
    let (plots, notes) = write_gpu(dir, &placed)?;
    roof.plots.extend(plots);
    roof.notes = notes;
    Ok(roof)
}

/// One roofline per GPU model and GPU count of the run's GPU points, against that device's
/// ceilings ([`gpu_ceilings`]); notes for devices whose peaks are unknown.
fn write_gpu(dir: &Path, placed: &[RooflinePoint]) -> Result<(Vec<Plot>, Vec<String>)> {
    let mut by_device: BTreeMap<(String, u64), Vec<&RooflinePoint>> = BTreeMap::new();
    for p in placed {
        if let Some((d, g)) = &p.gpu {
            by_device.entry((d.name.clone(), *g)).or_default().push(p);
        }
    }
    let mut plots = Vec::new();
    let mut notes = Vec::new();
    for ((name, gpus), pts) in by_device {
        let d = &pts[0].gpu.as_ref().expect("GPU points only").0;
        let stem = format!("roofline-gpu-{}-{gpus}", super::super::plots::slug(&name));
        // The compute capability is in report.md's note where it matters: a longer title would
        // not fit above the plot.
        let title = format!("Roofline, {gpus} × {name}");
        if !d.note.is_empty() {
            notes.push(format!(
                "The GPU roofline of {} ([{stem}.png](plots/{stem}.png)) has only the ceilings the device's figures give: {}.",
                d.describe(),
                d.note
            ));
        }
        let files = write_chart(dir, &stem, &title, &pts, &gpu_ceilings(d, gpus))?;
        plots.push(Plot { stem, title, files });
    }
    Ok((plots, notes))
}

/// The CPU rooflines of `points`: one for the largest and one for the smallest worker count,
/// named `<stem>` and `<stem>-p<p>`, titled `<title>, p = …`.
fn write_points(
    dir: &Path,
    stem_base: &str,
    title_base: &str,
    points: &[&RooflinePoint],
    machine: &Machine,
    ceilings: &impl Fn(u64, &[&RooflinePoint]) -> Ceilings,
) -> Result<Roofline> {
    let mut by_p: BTreeMap<u64, Vec<&RooflinePoint>> = BTreeMap::new();
    for p in points {
        by_p.entry(p.workers).or_default().push(p);
    }
    let largest = by_p.keys().next_back().copied();
    let smallest = by_p.keys().next().copied();
    // Only the smallest and the largest worker count get a plot: one core's view, where the
    // kernels' own steps show, and the most of the machine the run used.
    let skipped: Vec<u64> = by_p
        .keys()
        .copied()
        .filter(|&p| Some(p) != largest && Some(p) != smallest)
        .collect();
    let mut plots = Vec::new();
    for (&p, pts) in by_p.iter().rev() {
        if skipped.contains(&p) {
            continue;
        }
        let stem = if Some(p) == largest {
            stem_base.to_string()
        } else {
            format!("{stem_base}-p{p}")
        };
        let ceilings = ceilings(p, pts);
        let title = format!(
            "{title_base}, p = {p} worker{}{}",
            crate::units::plural(p),
            if machine.cpu_model.is_empty() {
                String::new()
            } else {
                format!(" ({})", machine.cpu_model)
            }
        );
        let files = write_chart(dir, &stem, &title, pts, &ceilings)?;
        plots.push(Plot { stem, title, files });
    }
    Ok(Roofline {
        plots,
        skipped_workers: skipped,
        ..Roofline::default()
    })
}

/// The rooflines of single studies, where one is useful besides the run's: in a run with more
/// than one study on the roofline, each CPU study with at least two points at one worker count
/// (DGEMM variants climbing, several sizes) gets `plots/study<N>-<name>-roofline[-p<p>]`, with
/// the same ceilings as the run's. Returns them by study index, for the study's section.
pub fn write_studies(
    dir: &Path,
    records: &[PointRecord],
    machine: &Machine,
    ceilings: impl Fn(u64, &[&RooflinePoint]) -> Ceilings,
) -> Result<Vec<(usize, Vec<Plot>)>> {
    let (placed, _) = points(records);
    let mut by_study: BTreeMap<usize, Vec<&RooflinePoint>> = BTreeMap::new();
    for p in placed.iter().filter(|p| p.gpu.is_none()) {
        by_study.entry(p.study.0).or_default().push(p);
    }
    if by_study.len() < 2 {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (index, pts) in by_study {
        let name = pts[0].study.1.clone();
        let mut per_p: BTreeMap<u64, usize> = BTreeMap::new();
        for p in &pts {
            *per_p.entry(p.workers).or_default() += 1;
        }
        if per_p.values().all(|&n| n < 2) {
            continue;
        }
        let stem = format!(
            "study{}-{}-roofline",
            index + 1,
            super::super::plots::slug(&name)
        );
        let title = format!("Roofline of {name}");
        let roof = write_points(dir, &stem, &title, &pts, machine, &ceilings)?;
        out.push((index, roof.plots));
    }
    Ok(out)
}

/// Draw one roofline into `<dir>/<stem>.svg` and `<stem>.png`; returns both paths.
fn write_chart(
    dir: &Path,
    stem: &str,
    title: &str,
    points: &[&RooflinePoint],
    ceilings: &Ceilings,
) -> Result<Vec<std::path::PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, points, ceilings)
            .map_err(|e| anyhow!("drawing {}: {e}", svg_path.display()))?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = tempfile::Builder::new()
        .prefix(".plot")
        .suffix(".png")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let root = BitMapBackend::new(tmp.path(), (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, title, points, ceilings)
            .map_err(|e| anyhow!("drawing {}: {e}", png_path.display()))?;
    }
    // Readable by others, like every file `write_atomic` writes (temporary files start as 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("writing {}", png_path.display()))?;
    }
    tmp.persist(&png_path)
        .map_err(|e| e.error)
        .with_context(|| format!("writing {}", png_path.display()))?;
    Ok(vec![svg_path, png_path])
}

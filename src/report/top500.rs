//! "Where this machine would have stood": the run's best HPL result against the TOP500 lists.
//!
//! When a run holds verified `hpl.lu` or `mpi.hpl.lu` points, the report adds a section and a plot
//! (`plots/top500.svg|png`): the Rmax of each list's #1 and #500 system from June 1993 on, on a log
//! axis against the list's date, and a horizontal line at this machine's best measured HPL
//! GFLOP/s. The section says which was the last list whose #1 the machine reaches and the last
//! list it would have entered at all.
//!
//! The figures come from `data/top500.csv`, compiled into the binary: one row per (list edition,
//! rank) with the Rmax in GFlop/s and the URL of the source it was checked against. Editions for
//! which no checkable source was found are absent (the CSV's header comment names them), never
//! filled in; the plot connects the editions it has.
//!
//! "Best" is the fastest verified repetition over the run's HPL points, as HPL reports each run
//! and a list's Rmax is the best run submitted; its point (n, nb, ranks × threads) is named beside
//! it. Only HPL's own flop count (`2/3·n³ + 3/2·n²`) makes the comparison fair, which is why other
//! workloads (DGEMM reaches more GFLOP/s than LU on the same machine) are not drawn against it.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::plots::{register_font, Plot, FAMILY, HEIGHT, WIDTH};
use crate::files::write_atomic;
use crate::results::{PointRecord, Status};

/// The bundled list figures (see the module documentation).
static TOP500_CSV: &str = include_str!("../../data/top500.csv");

/// Path of the bundled figures in the source tree, for messages and docs.
pub const TOP500_CSV_PATH: &str = "data/top500.csv";

/// One figure of one list: the Rmax of the system at `rank` (1 or 500).
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The list edition, `YYYY-MM` (June or November).
    pub edition: String,
    /// 1 or 500.
    pub rank: u32,
    /// Rmax (HPL), GFlop/s.
    pub rmax_gflops: f64,
    /// The system's name as the source gives it (may be empty).
    pub system: String,
    /// Where the figure was checked.
    pub source: String,
}

impl Entry {
    /// The list's date as a fractional year (June 1993 → 1993.42).
    pub fn year(&self) -> f64 {
        let (y, m) = self.edition.split_once('-').unwrap_or(("0", "1"));
        y.parse::<f64>().unwrap_or(0.0) + (m.parse::<f64>().unwrap_or(1.0) - 1.0) / 12.0
    }
}

/// Parse the list figures: comment lines (`#`) and the header are skipped; every row must have
/// an edition `YYYY-MM` with month 06 or 11, rank 1 or 500, a positive finite Rmax and a source
/// URL, and no (edition, rank) may repeat. Errors name the line.
pub fn parse_entries(text: &str) -> Result<Vec<Entry>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut reader = ::csv::ReaderBuilder::new().from_reader(body.as_bytes());
    let headers = reader.headers().context("reading the header")?.clone();
    let want = ["edition", "rank", "rmax_gflops", "system", "source"];
    if headers.iter().ne(want.iter().copied()) {
        bail!("the header must be `{}`", want.join(","));
    }
    let mut out: Vec<Entry> = Vec::new();
    for (i, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("reading data row {}", i + 1))?;
        let what = format!(
            "data row {} ({})",
            i + 1,
            row.iter().collect::<Vec<_>>().join(",")
        );
        let edition = row[0].to_string();
        let month_ok = matches!(edition.split_once('-'), Some((y, m))
            if y.len() == 4 && y.parse::<u32>().is_ok_and(|y| y >= 1993) && (m == "06" || m == "11"));
        if !month_ok {
            bail!("{what}: the edition must be YYYY-06 or YYYY-11 from 1993 on");
        }
        let rank: u32 = row[1]
            .parse()
            .ok()
            .filter(|r| *r == 1 || *r == 500)
            .ok_or_else(|| anyhow!("{what}: the rank must be 1 or 500"))?;
        let rmax_gflops: f64 = row[2]
            .parse()
            .ok()
            .filter(|v: &f64| v.is_finite() && *v > 0.0)
            .ok_or_else(|| anyhow!("{what}: rmax_gflops must be a positive number"))?;
        let source = row[4].to_string();
        if !source.starts_with("http") {
            bail!("{what}: every figure needs its source URL");
        }
        if out.iter().any(|e| e.edition == edition && e.rank == rank) {
            bail!("{what}: edition {edition} rank {rank} appears twice");
        }
        out.push(Entry {
            edition,
            rank,
            rmax_gflops,
            system: row[3].to_string(),
            source,
        });
    }
    out.sort_by(|a, b| a.edition.cmp(&b.edition).then(a.rank.cmp(&b.rank)));
    Ok(out)
}

/// The bundled figures, parsed.
pub fn entries() -> Result<Vec<Entry>> {
    parse_entries(TOP500_CSV).with_context(|| format!("the bundled {TOP500_CSV_PATH}"))
}

/// The run's best HPL result.
#[derive(Clone, Debug, PartialEq)]
pub struct Best {
    pub gflops: f64,
    pub workload: String,
    /// Matrix order and block size.
    pub n: u64,
    pub nb: u64,
    pub ranks: u32,
    pub threads: u32,
    pub host: String,
}

/// The fastest verified repetition of the ok HPL points of `records`, if any.
pub fn best(records: &[PointRecord]) -> Option<Best> {
    records
        .iter()
        .filter(|r| r.status == Status::Ok && crate::workload::reporting(&r.point.workload).hpl)
        .flat_map(|r| {
            r.repetitions
                .iter()
                .filter(|rep| rep.verified && rep.seconds > 0.0)
                .map(move |rep| (r, r.work.flops / rep.seconds / 1e9))
        })
        .filter(|(_, g)| g.is_finite() && *g > 0.0)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(r, gflops)| Best {
            gflops,
            workload: r.point.workload.clone(),
            n: r.size,
            nb: match r.point.params.get("nb") {
                Some(crate::value::Value::Int(nb)) => *nb,
                _ => 0,
            },
            ranks: r.point.resources.ranks,
            threads: r.point.resources.threads,
            host: r.host.clone(),
        })
}

/// Where `gflops` stands: the last list whose #1 it reaches, and the last list whose #500 it
/// reaches (with that list's figure).
pub fn standing(gflops: f64, entries: &[Entry]) -> (Option<&Entry>, Option<&Entry>) {
    let last = |rank: u32| {
        entries
            .iter()
            .filter(|e| e.rank == rank && e.rmax_gflops <= gflops)
            .max_by(|a, b| a.edition.cmp(&b.edition))
    };
    (last(1), last(500))
}

/// `59.7 GFLOP/s`, `1.74 EFLOP/s`: three significant digits in the largest unit at least 1.
pub fn human_flops(gflops: f64) -> String {
    let units = [
        (1e9, "EFLOP/s"),
        (1e6, "PFLOP/s"),
        (1e3, "TFLOP/s"),
        (1.0, "GFLOP/s"),
        (1e-3, "MFLOP/s"),
    ];
    let (scale, unit) = units
        .iter()
        .copied()
        .find(|(s, _)| gflops >= *s)
        .unwrap_or((1e-3, "MFLOP/s"));
    let v = gflops / scale;
    let d = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.d$} {unit}")
}

/// The report's TOP500 section (markdown), for `best` and the plot `plot` (if drawn).
pub fn markdown(best: &Best, entries: &[Entry], plot: Option<&Plot>) -> String {
    let mut s = String::from("\n## Where this machine would have stood in the TOP500\n\n");
    let first = entries.first().map_or("?", |e| e.edition.as_str());
    let last = entries.last().map_or("?", |e| e.edition.as_str());
    // The rate in GFLOP/s as well, when the readable unit is another one.
    let human = human_flops(best.gflops);
    let gflops = format!("{} GFLOP/s", fmt_gflops(best.gflops));
    let also = if human == gflops {
        String::new()
    } else {
        format!("{gflops}; ")
    };
    s.push_str(&format!(
        "Best HPL result of this run: **{human}** ({also}`{}` n = {}, nb = {}, {} rank(s) × {} thread(s), on {}), \
         the fastest verified repetition, counted as HPL counts (2/3·n³ + 3/2·n² flops).\n\n",
        best.workload,
        best.n,
        best.nb,
        best.ranks,
        best.threads,
        best.host
    ));
    let (top, listed) = standing(best.gflops, entries);
    match top {
        Some(e) => s.push_str(&format!(
            "- It would have been **No. 1** on the {} list{} (#1 then: {}, {}).\n",
            month_name(&e.edition),
            if entries.first().is_some_and(|f| f.edition == e.edition) {
                ", the first in the table"
            } else {
                " and every earlier one in the table"
            },
            if e.system.is_empty() {
                "unnamed"
            } else {
                &e.system
            },
            human_flops(e.rmax_gflops)
        )),
        None => s.push_str("- It reaches the #1 of no list in the table.\n"),
    }
    match listed {
        Some(e) => s.push_str(&format!(
            "- It would have entered the TOP500 up to the {} list (#500 then: {}).\n",
            month_name(&e.edition),
            human_flops(e.rmax_gflops)
        )),
        None => s.push_str("- It reaches the #500 of no list in the table.\n"),
    }
    s.push_str(&format!(
        "\nList figures: {} editions from {first} to {last}, #1 and #500 Rmax, each checked against \
         the source named in `{TOP500_CSV_PATH}` (the TOP500 project's list files up to 2014, \
         top500.org pages and press coverage of the releases after); editions without a checkable \
         source are left out and named there, so the lines join the editions that are present.\n",
        entries
            .iter()
            .map(|e| e.edition.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    ));
    if let Some(p) = plot {
        s.push_str(&format!("\n![{}](plots/{}.png)\n", p.title, p.stem));
    }
    s
}

fn fmt_gflops(g: f64) -> String {
    if g >= 100.0 {
        format!("{g:.0}")
    } else {
        format!("{g:.1}")
    }
}

fn month_name(edition: &str) -> String {
    match edition.split_once('-') {
        Some((y, "06")) => format!("June {y}"),
        Some((y, "11")) => format!("November {y}"),
        _ => edition.to_string(),
    }
}

/// Okabe–Ito colours (distinguishable with every common colour-vision deficiency).
const BLUE: RGBColor = RGBColor(0, 114, 178);
const VERMILLION: RGBColor = RGBColor(213, 94, 0);
const BLACK: RGBColor = RGBColor(0, 0, 0);

/// Draw the plot into `dir` (`top500.svg`, `top500.png`) and return the section text; `None` when
/// the run has no verified HPL repetition.
pub fn write(dir: &Path, records: &[PointRecord]) -> Result<Option<(Plot, String)>> {
    let Some(best) = best(records) else {
        return Ok(None);
    };
    let entries = entries()?;
    let stem = "top500";
    let title = "This machine's HPL result against the TOP500 #1 and #500";
    let files = write_chart(dir, stem, &best, &entries)?;
    let plot = Plot {
        stem: stem.into(),
        title: title.into(),
        files,
    };
    let text = markdown(&best, &entries, Some(&plot));
    Ok(Some((plot, text)))
}

fn write_chart(dir: &Path, stem: &str, best: &Best, entries: &[Entry]) -> Result<Vec<PathBuf>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let svg_path = dir.join(format!("{stem}.svg"));
    let svg =
        svg_text(best, entries).map_err(|e| anyhow!("drawing {}: {e}", svg_path.display()))?;
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = tempfile::Builder::new()
        .prefix(".plot")
        .suffix(".png")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    {
        let root = BitMapBackend::new(tmp.path(), (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, best, entries).map_err(|e| anyhow!("drawing {}: {e}", png_path.display()))?;
    }
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

/// Height of the legend row under the plot, pixels.
const LEGEND_HEIGHT: u32 = 56;

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The plot as SVG text (the layout test reads it back as geometry).
pub(super) fn svg_text(
    best: &Best,
    entries: &[Entry],
) -> std::result::Result<String, Box<dyn std::error::Error>> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, best, entries)?;
    }
    Ok(svg)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    best: &Best,
    entries: &[Entry],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let series = |rank: u32| -> Vec<(f64, f64)> {
        entries
            .iter()
            .filter(|e| e.rank == rank)
            .map(|e| (e.year(), e.rmax_gflops))
            .collect()
    };
    let (top, bottom) = (series(1), series(500));
    let all = || top.iter().chain(&bottom).map(|p| p.1).chain([best.gflops]);
    let lo = all().fold(f64::INFINITY, f64::min);
    let hi = all().fold(0.0f64, f64::max);
    let (ylo, yhi) = (
        10f64.powf((lo.log10() - 0.5).floor()),
        10f64.powf((hi.log10() + 0.5).ceil()),
    );
    let x_last = top
        .iter()
        .chain(&bottom)
        .map(|p| p.0)
        .fold(1994.0f64, f64::max);
    let (xlo, xhi) = (1993.0, x_last.ceil() + 1.0);
    let caption = format!(
        "Best HPL of this run: {}, {} n={}, {} rank{} × {} thread{}",
        human_flops(best.gflops),
        best.workload,
        best.n,
        best.ranks,
        crate::units::plural(best.ranks),
        best.threads,
        crate::units::plural(best.threads),
    );
    // The legend is one row under the plot, outside the data: nothing it says can cover a line
    // or a grid line, wherever the machine's line falls.
    let (plot_area, legend_area) = root.split_vertically(HEIGHT - LEGEND_HEIGHT);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption(caption, (FAMILY, 30))
        .margin(24)
        .margin_bottom(0)
        .x_label_area_size(70)
        .y_label_area_size(120)
        .build_cartesian_2d(xlo..xhi, (ylo..yhi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("TOP500 list edition, June and November")
        .y_desc("HPL Rmax, GFLOP/s (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:e}"))
        .label_style((FAMILY, 22))
        .axis_desc_style((FAMILY, 24))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let line = |c: RGBColor| ShapeStyle::from(c).stroke_width(3);
    chart.draw_series(LineSeries::new(top.clone(), line(BLUE)))?;
    chart.draw_series(top.iter().map(|&p| Circle::new(p, 5, BLUE.filled())))?;
    chart.draw_series(LineSeries::new(bottom.clone(), line(VERMILLION)))?;
    chart.draw_series(
        bottom
            .iter()
            .map(|&p| TriangleMarker::new(p, 6, VERMILLION.filled())),
    )?;
    let me = vec![(xlo, best.gflops), (xhi, best.gflops)];
    chart.draw_series(DashedLineSeries::new(me, 14, 9, line(BLACK)))?;
    draw_legend(&legend_area, best)?;
    root.present()?;
    Ok(())
}

/// The legend row under the plot: a swatch drawn like each line, then its name.
fn draw_legend<DB: DrawingBackend>(
    legend_area: &DrawingArea<DB, plotters::coord::Shift>,
    best: &Best,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let line = |c: RGBColor| ShapeStyle::from(c).stroke_width(3);
    let legend = [
        (BLUE, false, "#1 of the list".to_string()),
        (VERMILLION, false, "#500 of the list".to_string()),
        (
            BLACK,
            true,
            format!("this machine: {}", human_flops(best.gflops)),
        ),
    ];
    // Left edge of the plot area: the chart's margin and its y label area.
    let mut x = 24 + 120;
    let y = LEGEND_HEIGHT as i32 / 2;
    let font = (FAMILY, 22)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (color, dashed, text) in legend {
        let swatch = vec![(x, y), (x + 36, y)];
        if dashed {
            legend_area.draw(&plotters::element::DashedPathElement::new(
                swatch,
                8,
                5,
                line(color),
            ))?;
        } else {
            legend_area.draw(&PathElement::new(swatch, line(color)))?;
        }
        legend_area.draw(&Text::new(text.clone(), (x + 48, y), font.clone()))?;
        let (w, _) = legend_area.estimate_text_size(&text, &font)?;
        x += 48 + w as i32 + 40;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_figures_parse_and_every_row_has_a_source() {
        let e = entries().unwrap();
        // June 1993 is there, both ranks, with the figures of the first list.
        let first: Vec<_> = e.iter().filter(|x| x.edition == "1993-06").collect();
        assert_eq!(first.len(), 2);
        assert_eq!(first[0].rmax_gflops, 59.7);
        assert_eq!(first[1].rmax_gflops, 0.422);
        assert!(e.iter().all(|x| x.source.starts_with("http")));
        // Each rank's figures never fall from one edition to the next.
        for rank in [1, 500] {
            let v: Vec<f64> = e
                .iter()
                .filter(|x| x.rank == rank)
                .map(|x| x.rmax_gflops)
                .collect();
            assert!(v.windows(2).all(|w| w[1] >= w[0]), "rank {rank}: {v:?}");
        }
    }

    #[test]
    fn bad_rows_are_refused_with_their_line() {
        let head = "# c\nedition,rank,rmax_gflops,system,source\n";
        let err = parse_entries(&format!("{head}1993-07,1,5,x,http://a\n")).unwrap_err();
        assert!(format!("{err:#}").contains("YYYY-06 or YYYY-11"), "{err:#}");
        let err = parse_entries(&format!("{head}1993-06,2,5,x,http://a\n")).unwrap_err();
        assert!(
            format!("{err:#}").contains("rank must be 1 or 500"),
            "{err:#}"
        );
        let err = parse_entries(&format!("{head}1993-06,1,5,x,\n")).unwrap_err();
        assert!(format!("{err:#}").contains("source URL"), "{err:#}");
        let err = parse_entries(&format!("{head}1993-06,1,-5,x,http://a\n")).unwrap_err();
        assert!(format!("{err:#}").contains("positive"), "{err:#}");
        let err = parse_entries(&format!(
            "{head}1993-06,1,5,x,http://a\n1993-06,1,6,y,http://b\n"
        ))
        .unwrap_err();
        assert!(format!("{err:#}").contains("appears twice"), "{err:#}");
    }

    #[test]
    fn standing_finds_the_last_lists_reached() {
        let e = entries().unwrap();
        // 100 GFLOP/s: above June 1993's #1 (59.7) but not November 1993's (124); above #500
        // until some list in the late 1990s.
        let (top, listed) = standing(100.0, &e);
        assert_eq!(top.unwrap().edition, "1993-06");
        let listed = listed.unwrap();
        assert!(listed.rmax_gflops <= 100.0);
        let next_500 = e
            .iter()
            .find(|x| x.rank == 500 && x.edition > listed.edition)
            .unwrap();
        assert!(next_500.rmax_gflops > 100.0);
        // Too slow for any list.
        assert_eq!(standing(0.1, &e), (None, None));
        assert_eq!(human_flops(59.7), "59.7 GFLOP/s");
        assert_eq!(human_flops(1.742e9), "1.74 EFLOP/s");
        assert_eq!(human_flops(715600.0), "716 TFLOP/s");
    }

    #[test]
    fn the_section_says_each_figure_once() {
        let e = entries().unwrap();
        let best = |gflops: f64| Best {
            gflops,
            workload: "hpl.lu".into(),
            n: 2048,
            nb: 128,
            ranks: 1,
            threads: 2,
            host: "vm".into(),
        };
        let md = markdown(&best(100.0), &e, None);
        assert!(
            md.contains("**100 GFLOP/s** (`hpl.lu` n = 2048")
                && md.contains("**No. 1** on the June 1993 list, the first in the table (#1 then:"),
            "{md}"
        );
        // A rate in another unit keeps its GFLOP/s beside it.
        let md = markdown(&best(1500.0), &e, None);
        assert!(
            md.contains("**1.50 TFLOP/s** (1500 GFLOP/s; `hpl.lu`"),
            "{md}"
        );
    }
}

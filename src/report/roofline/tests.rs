//! The roofline's tests: ceilings from a machine and a profile, which points are placed, and
//! the written SVGs parsed back to check the layout (no overlapping text, no label across a
//! ceiling, every ceiling labelled or named in the caption).

use super::caption::rate_text;
use super::draw::{DIAGONAL_COLOURS, INK};
use super::geometry::{distance, Rect, Segment};
use super::*;
use crate::machine::Machine;
use crate::plan::Scaling;
use crate::report::test_support::{record, with_param};
use crate::workload::Backend;
use crate::workload::Work;
use std::path::Path;

fn machine() -> Machine {
    Machine {
        host: "node01".into(),
        cpu_model: "Test CPU".into(),
        cores: 2,
        simd: "avx2".into(),
        simd_f64_lanes: 4,
        fma_units: 2,
        clock_ghz: 3.2,
        peak_gflops_per_core: 51.2,
        ..Machine::default()
    }
}

/// A DGEMM variant at n = 1024 reaching `gflops` on one thread.
fn gemm(variant: &str, n: u64, gflops: f64) -> PointRecord {
    let t = 2.0 * (n as f64).powi(3) / gflops / 1e9;
    let mut r = with_param(
        record(0, "gemm", Scaling::Strong, 1, n, &[t, t * 1.01, t * 0.99]),
        "variant",
        variant,
    );
    r.point.id = format!("gemm-{variant}-{n}");
    r
}

/// A memory-bound point of `workload` with `flops` and `bytes` per repetition at `gbps`.
fn memory(workload: &str, flops: f64, bytes: f64, gbps: f64) -> PointRecord {
    let t = bytes / gbps / 1e9;
    let mut r = record(1, workload, Scaling::Strong, 1, 1 << 20, &[t, t, t]);
    r.point.params.0.remove("variant");
    r.work = Work { flops, bytes };
    r.point.id = workload.replace('.', "-");
    r
}

fn fixture() -> Vec<PointRecord> {
    let mut recs = vec![
        gemm("naive", 1024, 1.1),
        gemm("ikj", 1024, 4.5),
        gemm("blocked", 1024, 9.0),
        gemm("tuned", 1024, 24.0),
        gemm("faer", 1024, 23.5),
        gemm("tuned", 512, 35.0),
        memory("stream.triad", 2e6, 24e6, 40.0),
        memory("reduce.dot", 2e6, 16e6, 38.0),
        memory("stencil.jacobi2d", 4e6, 16e6, 45.0),
        memory("stream.copy", 0.0, 16e6, 42.0),
    ];
    let mut pi = memory("pi.montecarlo", 3e6, 0.0, 1.0);
    pi.repetitions.iter_mut().for_each(|r| r.seconds = 0.01);
    recs.push(pi);
    let mut gpu = gemm("tuned", 2048, 9000.0);
    gpu.backend = Some(Backend::Cuda);
    gpu.point.id = "gpu-gemm".into();
    recs.push(gpu);
    recs
}

/// Every `<text>` element of an SVG written by plotters: (x, top, pixel size, anchor,
/// content), rotated ones left out. plotters writes font-size as the pixel size / 1.24.
fn svg_texts(svg: &str) -> Vec<(f64, f64, f64, String, String)> {
    let mut out = Vec::new();
    for part in svg.split("<text ").skip(1) {
        let (attrs, rest) = part.split_once('>').unwrap();
        if attrs.contains("transform=") {
            continue;
        }
        let content = rest.split("</text>").next().unwrap();
        let attr = |name: &str| -> String {
            let key = format!(" {name}=\"");
            let from = format!(" {attrs}").find(&key).unwrap() + key.len() - 1;
            let s = &attrs[from..];
            s[..s.find('"').unwrap()].to_string()
        };
        // The top of the text from its vertical anchor: top (dy 0.76em), centre (0.5ex),
        // bottom (−0.5ex).
        let size: f64 = attr("font-size").parse::<f64>().unwrap() * 1.24;
        let y: f64 = attr("y").parse().unwrap();
        let top = match attr("dy").as_str() {
            "0.5ex" => y - size / 2.0,
            "-0.5ex" => y - size,
            _ => y,
        };
        out.push((
            attr("x").parse().unwrap(),
            top,
            size,
            attr("text-anchor"),
            content
                .trim()
                .replace("&amp;", "&")
                .replace("&lt;", "<")
                .replace("&gt;", ">"),
        ));
    }
    out
}

/// Approximate advance width of a character in DejaVu Sans, in em (rounded up from the
/// font's tables by character class).
fn em(c: char) -> f64 {
    match c {
        ' ' => 0.33,
        '.' | ',' | ':' | ';' | '\'' | '|' | 'i' | 'j' | 'l' => 0.29,
        '(' | ')' | '[' | ']' | 'f' | 't' | 'r' | 'I' => 0.41,
        '/' | '-' => 0.37,
        'm' | 'w' | 'M' | 'W' => 0.98,
        '0'..='9' => 0.64,
        c if c.is_ascii_uppercase() => 0.74,
        '+' | '=' | '*' | '<' | '>' => 0.84,
        _ => 0.62,
    }
}

/// The box of a text of `size` pixels with its top at `y` and the given anchor, its width
/// from [`em`]; the em is the SVG font-size, `size` / 1.24.
fn text_box(x: f64, y: f64, size: f64, anchor: &str, text: &str) -> Rect {
    let w = size / 1.24 * text.chars().map(em).sum::<f64>();
    let l = match anchor {
        "end" => x - w,
        "middle" => x - w / 2.0,
        _ => x,
    };
    Rect {
        l,
        t: y,
        r: l + w,
        b: y + size,
    }
}

/// The stroke colours of ceiling lines in an SVG: the compute ceilings' ink and the
/// diagonals' colours.
fn ceiling_inks() -> Vec<String> {
    std::iter::once(INK)
        .chain(DIAGONAL_COLOURS)
        .map(|c| format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2))
        .collect()
}

/// No two texts overlap (labels, ceiling labels, ticks, title, caption lines), no label
/// covers a marker, no leader runs through a text and no point label crosses a ceiling.
fn assert_clean_layout(
    svg: &str,
    texts: &[(f64, f64, f64, String, String)],
    placed: &[RooflinePoint],
) {
    let ceiling_inks = ceiling_inks();
    // No two texts overlap (labels, ceiling labels, ticks, title, caption lines).
    let boxes: Vec<(Rect, &str)> = texts
        .iter()
        .map(|t| (text_box(t.0, t.1, t.2, &t.3, &t.4), t.4.as_str()))
        .collect();
    for (i, (a, ta)) in boxes.iter().enumerate() {
        for (b, tb) in &boxes[i + 1..] {
            assert!(!a.intersects(b), "`{ta}` {a:?} overlaps `{tb}` {b:?}");
        }
    }
    // No point label covers a marker.
    let circles: Vec<(f64, f64)> = svg
        .split("<circle ")
        .skip(1)
        .map(|c| {
            let num = |k: &str| -> f64 {
                let s = &c[c.find(k).unwrap() + k.len()..];
                s[..s.find('"').unwrap()].parse().unwrap()
            };
            (num("cx=\""), num("cy=\""))
        })
        .collect();
    assert_eq!(circles.len(), placed.len());
    for (b, t) in &boxes {
        for c in &circles {
            let marker = Rect {
                l: c.0 - 8.0,
                t: c.1 - 8.0,
                r: c.0 + 8.0,
                b: c.1 + 8.0,
            };
            assert!(!b.intersects(&marker), "`{t}` covers the marker at {c:?}");
        }
    }
    // A label beside its marker (no leader) is nearer to it than to any other marker.
    for (i, p) in placed.iter().enumerate() {
        let Some((b, _)) = boxes.iter().find(|(_, t)| *t == p.label) else {
            continue;
        };
        let own = circles[i];
        let own_d = distance(b.nearest(own), own);
        if own_d > 20.0 {
            continue;
        }
        for (j, c) in circles.iter().enumerate() {
            if j != i {
                assert!(
                    distance(b.nearest(*c), *c) >= own_d,
                    "`{}` sits nearer to `{}`'s marker than to its own",
                    p.label,
                    placed[j].label
                );
            }
        }
    }
    // No point label crosses a ceiling line (drawn in the ceilings' ink, dashed lines as
    // many short polylines).
    let segments: Vec<Segment> = svg
        .split("<polyline ")
        .skip(1)
        .filter(|l| {
            ceiling_inks
                .iter()
                .any(|c| l.contains(&format!("stroke=\"{c}\"")))
        })
        .flat_map(|l| {
            let from = l.find("points=\"").unwrap() + 8;
            let pts: Vec<(f64, f64)> = l[from..l[from..].find('"').unwrap() + from]
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            pts.windows(2).map(|w| (w[0], w[1])).collect::<Vec<_>>()
        })
        .collect();
    assert!(segments.len() > 10, "ceilings drawn: {}", segments.len());
    // Leader lines (grey) run through no text.
    let leaders: Vec<Segment> = svg
        .split("<polyline ")
        .skip(1)
        .filter(|l| l.contains("stroke=\"#969696\""))
        .map(|l| {
            let from = l.find("points=\"").unwrap() + 8;
            let pts: Vec<(f64, f64)> = l[from..l[from..].find('"').unwrap() + from]
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            (pts[0], pts[1])
        })
        .collect();
    for (b, t) in &boxes {
        // A leader ends on its own label's edge (within the estimate of text extents).
        for (a, z) in leaders
            .iter()
            .filter(|(_, z)| distance(b.nearest(*z), *z) > 6.0)
        {
            assert!(
                !b.grow(-2.0).crosses(*a, *z),
                "a leader {a:?}–{z:?} runs through `{t}` {b:?}"
            );
        }
    }
    for (b, t) in boxes
        .iter()
        .filter(|(_, t)| placed.iter().any(|p| p.label == *t))
    {
        for (a, z) in &segments {
            assert!(
                !b.grow(2.0).crosses(*a, *z),
                "`{t}` {b:?} crosses the line {a:?}–{z:?}"
            );
        }
    }
}

#[test]
fn ceilings_from_the_machine() {
    let c = Ceilings::theoretical(&machine(), 2);
    let v: Vec<f64> = c.compute.iter().map(|c| c.value).collect();
    assert_eq!(v, vec![102.4, 51.2, 25.6]);
    assert_eq!(c.compute[0].label, "peak (avx2 + FMA)");
    assert!(c.memory.is_empty());
    assert!(Ceilings::theoretical(&Machine::default(), 4)
        .compute
        .is_empty());
    let c = c.with_bandwidth("DRAM", 40.0, Source::Measured("calibrate".into()));
    assert_eq!(
        c.provenance(),
        "compute ceilings theoretical; bandwidth measured (calibrate)."
    );
}

#[test]
fn a_calibrated_profile_gives_measured_cache_dram_and_dgemm_ceilings() {
    let profile = crate::calibrate::profile::tests::fixture();
    let m = machine();
    let c = profile_ceilings(&profile, &m, 1, &[]);
    let memory: Vec<(&str, f64)> = c
        .memory
        .iter()
        .map(|c| (c.label.as_str(), c.value))
        .collect();
    let want_memory: Vec<(String, f64)> = ["L1", "L2", "L3"]
        .iter()
        .filter_map(|l| {
            profile
                .level_gbps(l, 1)
                .map(|g| (format!("{l}, measured"), g))
        })
        .chain([("DRAM (triad), measured".to_string(), 40.0)])
        .collect();
    assert_eq!(memory.len(), want_memory.len(), "{memory:?}");
    for (label, gbps) in &want_memory {
        assert!(
            memory.contains(&(label.as_str(), *gbps)),
            "{label}: {memory:?}"
        );
    }
    assert!(
        memory.windows(2).all(|w| w[0].1 >= w[1].1),
        "highest first: {memory:?}"
    );
    let dgemm = c
        .compute
        .iter()
        .find(|c| c.label == "DGEMM, measured")
        .expect("a measured DGEMM ceiling");
    assert_eq!(Some(dgemm.value), profile.dgemm_gflops(1));
    assert!(c.compute.iter().any(|c| c.source == Source::Theoretical));
    assert!(
        c.provenance().contains("by `scalelab calibrate` at 1 core"),
        "{}",
        c.provenance()
    );
    // No figure for 8 workers in the profile: the run's own ceilings instead.
    assert_eq!(
        profile_ceilings(&profile, &m, 8, &[]),
        run_ceilings(&m, 8, &[])
    );
}

#[test]
fn points_and_the_ones_left_out() {
    let recs = fixture();
    let (placed, left) = points(&recs);
    let labels: Vec<&str> = placed.iter().map(|p| p.label.as_str()).collect();
    assert!(labels.contains(&"gemm naive"), "{labels:?}");
    assert!(labels.contains(&"gemm tuned n=1024") && labels.contains(&"gemm tuned n=512"));
    assert!(labels.contains(&"stream.triad"));
    let triad = placed.iter().find(|p| p.label == "stream.triad").unwrap();
    assert!((triad.intensity - 1.0 / 12.0).abs() < 1e-12);
    assert!((triad.gbps - 40.0).abs() < 1e-9);
    let naive = placed.iter().find(|p| p.label == "gemm naive").unwrap();
    assert!((naive.gflops - 1.1).abs() < 1e-9, "median GFLOP/s");
    assert!((naive.intensity - 1024.0 / 12.0).abs() < 1e-9);
    let reasons: BTreeMap<&str, &str> = left
        .iter()
        .map(|l| (l.point_id.as_str(), l.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons["pi-montecarlo"].starts_with("counts no bytes"));
    assert!(reasons["stream-copy"].starts_with("counts no FLOPs"));
    assert!(reasons["gpu-gemm"].starts_with("GPU point"));
}

#[test]
fn roofline_svg_holds_every_label_and_none_overlap() {
    let recs = fixture();
    let dir = tempfile::tempdir().unwrap();
    let roof = write(dir.path(), &recs, &machine()).unwrap();
    // To look at it: SCALELAB_KEEP_ROOFLINE=/tmp/roof cargo test --lib roofline_svg
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
        std::fs::create_dir_all(&keep).unwrap();
        for f in &roof.plots[0].files {
            std::fs::copy(f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
        }
    }
    assert_eq!(roof.plots.len(), 1);
    assert_eq!(roof.plots[0].stem, "roofline");
    for f in &roof.plots[0].files {
        assert!(f.exists(), "{}", f.display());
    }
    let png = std::fs::read(dir.path().join("roofline.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    let texts = svg_texts(&svg);
    let (placed, _) = points(&recs);
    for p in &placed {
        assert!(
            texts.iter().any(|t| t.4 == p.label),
            "label {} missing from the SVG",
            p.label
        );
    }
    for want in [
        "peak (avx2 + FMA): 51.2 GFLOP/s",
        "avx2, no FMA: 25.6 GFLOP/s",
        "scalar + FMA: 12.8 GFLOP/s",
        "bandwidth, measured (stream.triad): 40.0 GB/s",
    ] {
        assert!(texts.iter().any(|t| t.4 == want), "{want} missing");
    }
    let all: Vec<&str> = texts.iter().map(|t| t.4.as_str()).collect();
    let all = all.join(" ");
    assert!(
        all.contains("compute ceilings theoretical"),
        "subtitle: {all}"
    );
    assert!(all.contains("bandwidth measured (the best stream.* point of this run"));
    assert_clean_layout(&svg, &texts, &placed);
    let md = markdown(&roof);
    assert!(md.contains("![Roofline, p = 1 worker (Test CPU)](plots/roofline.png)"));
    assert!(
        md.contains("- pi.montecarlo (1 point: `pi-montecarlo`): counts no bytes (no memory traffic), so its arithmetic intensity is infinite."),
        "{md}"
    );
    assert!(
        md.contains("- gemm tuned (1 point: `gpu-gemm`): GPU point"),
        "{md}"
    );
}

/// A calibrated profile's ceilings: a measured DGEMM within 25% of the peak (two compute
/// lines close together) and four diagonals (L1, L2, L3, DRAM). Every ceiling label is in the
/// plot, none overlaps another text, each compute label is at its line's height (within a
/// label's height: nudged apart, not moved away) and each diagonal's label is in its colour.
#[test]
fn roofline_with_calibrated_ceilings_labels_every_ceiling_apart() {
    let recs = fixture();
    let m = machine();
    let calibrated = |p: u64| {
        let mut c = Ceilings::theoretical(&m, p);
        c.compute.push(Ceiling {
            label: "DGEMM, measured".into(),
            value: 44.0,
            source: Source::Measured("DGEMM by calibrate".into()),
        });
        c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
        let how = || Source::Measured("cache bandwidth by calibrate".into());
        c.with_bandwidth("L1, measured", 150.0, how())
            .with_bandwidth("L2, measured", 95.0, how())
            .with_bandwidth("L3, measured", 60.0, how())
            .with_bandwidth("DRAM (triad), measured", 40.0, how())
    };
    let dir = tempfile::tempdir().unwrap();
    let roof = write_with(dir.path(), &recs, &m, |p, _| calibrated(p)).unwrap();
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
        std::fs::create_dir_all(&keep).unwrap();
        let to = Path::new(&keep).join("calibrated.png");
        std::fs::copy(dir.path().join("roofline.png"), to).unwrap();
    }
    assert_eq!(roof.plots.len(), 1);
    let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    let texts = svg_texts(&svg);
    let (placed, _) = points(&recs);
    let want_compute = [
        "peak (avx2 + FMA): 51.2 GFLOP/s",
        "DGEMM, measured: 44.0 GFLOP/s",
        "avx2, no FMA: 25.6 GFLOP/s",
        "scalar + FMA: 12.8 GFLOP/s",
    ];
    let want_memory = [
        "L1, measured: 150 GB/s",
        "L2, measured: 95.0 GB/s",
        "L3, measured: 60.0 GB/s",
        "DRAM (triad), measured: 40.0 GB/s",
    ];
    let all: Vec<&str> = texts.iter().map(|t| t.4.as_str()).collect();
    for want in want_compute.iter().chain(&want_memory) {
        assert!(all.contains(want), "{want} missing from {all:?}");
    }
    assert!(
        !all.join(" ").contains("no room for their label"),
        "every ceiling labelled in the plot: {all:?}"
    );
    assert_clean_layout(&svg, &texts, &placed);
    // Compute labels: one column right of the plot, top to bottom in the lines' order,
    // each within a label's height of its line.
    let compute: Vec<&(f64, f64, f64, String, String)> = want_compute
        .iter()
        .map(|w| texts.iter().find(|t| t.4 == *w).unwrap())
        .collect();
    assert!(compute.windows(2).all(|w| w[0].0 == w[1].0), "{compute:?}");
    assert!(compute.windows(2).all(|w| w[0].1 < w[1].1), "{compute:?}");
    let horizontal: Vec<f64> = svg
        .split("<polyline ")
        .skip(1)
        .filter(|l| l.contains("stroke=\"#282828\""))
        .filter_map(|l| {
            let from = l.find("points=\"").unwrap() + 8;
            let pts: Vec<(f64, f64)> = l[from..l[from..].find('"').unwrap() + from]
                .split_whitespace()
                .map(|xy| {
                    let (x, y) = xy.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            // The ceiling's last dash ends at the right edge, left of its label.
            let last = pts.last()?;
            (pts.len() == 2 && pts[0].1 == last.1 && last.0 < compute[0].0).then_some(last.1)
        })
        .collect();
    for t in &compute {
        let centre = t.1 + t.2 / 2.0;
        assert!(
            horizontal.iter().any(|y| (y - centre).abs() < t.2),
            "`{}` at {centre} is by no line of {horizontal:?}",
            t.4
        );
    }
    // Each diagonal's label in the diagonal's own colour, all four colours different.
    for (i, want) in want_memory.iter().enumerate() {
        let c = DIAGONAL_COLOURS[i];
        let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
        let at = svg
            .find(&format!(">\n{want}\n</text>"))
            .or_else(|| svg.find(&format!(">{want}</text>")));
        let at = at.unwrap_or_else(|| panic!("{want} not in the SVG"));
        let open = svg[..at].rfind("<text ").unwrap();
        assert!(svg[open..at].contains(&fill), "{want}: {}", &svg[open..at]);
    }
}

/// The DGEMM study of the quick start on a 2-core Zen 5 (naive → faer at n = 512 and 1024,
/// p = 2) under a calibrated profile's ceilings: the measured DGEMM line runs between the
/// tuned and faer markers and the peak, the cache diagonals through the slow variants. No
/// point label's box may touch a ceiling line (read back from the SVG's geometry); a label
/// with no legal spot is named in the caption, with its rate, instead.
#[test]
fn quick_start_gemm_labels_never_cross_a_ceiling() {
    let m = Machine {
        cpu_model: "AMD EPYC".into(),
        cores: 2,
        simd: "avx512".into(),
        simd_f64_lanes: 8,
        fma_units: 2,
        clock_ghz: 4.236,
        peak_gflops_per_core: 135.6,
        ..Machine::default()
    };
    let mut recs = Vec::new();
    for (variant, at512, at1024) in [
        ("naive", 2.39, 0.9),
        ("ikj", 32.6, 30.1),
        ("blocked", 45.9, 44.0),
        ("tuned", 144.0, 170.0),
        ("faer", 188.0, 201.0),
    ] {
        for (n, gflops) in [(512, at512), (1024, at1024)] {
            let mut r = gemm(variant, n, gflops);
            r.point.resources.threads = 2;
            recs.push(r);
        }
    }
    let ceilings = |p: u64| {
        let mut c = Ceilings::theoretical(&m, p);
        c.compute.push(Ceiling {
            label: "DGEMM, measured".into(),
            value: 206.7,
            source: Source::Measured("DGEMM by `scalelab calibrate` at 2 cores".into()),
        });
        c.compute.sort_by(|a, b| b.value.total_cmp(&a.value));
        let how = || Source::Measured("cache bandwidth by `scalelab calibrate`".into());
        c.with_bandwidth("L1, measured", 763.2, how())
            .with_bandwidth("L2, measured", 477.5, how())
            .with_bandwidth("L3, measured", 218.6, how())
            .with_bandwidth("DRAM (triad), measured", 99.9, how())
    };
    let dir = tempfile::tempdir().unwrap();
    let roof = write_with(dir.path(), &recs, &m, |p, _| ceilings(p)).unwrap();
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
        std::fs::create_dir_all(&keep).unwrap();
        let to = Path::new(&keep).join("quick-start-gemm.png");
        std::fs::copy(dir.path().join("roofline.png"), to).unwrap();
    }
    assert_eq!(roof.plots.len(), 1);
    let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    let texts = svg_texts(&svg);
    let (placed, _) = points(&recs);
    assert_eq!(placed.len(), 10);
    assert!(texts.iter().any(|t| t.4 == "DGEMM, measured: 207 GFLOP/s"));
    // Every label in the plot, or named in the caption with its rate.
    let all = texts
        .iter()
        .map(|t| t.4.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    for p in &placed {
        let in_plot = texts.iter().any(|t| t.4 == p.label);
        let in_caption = all.contains(&format!("{} ({}", p.label, rate_text(p.gflops, "GFLOP/s")));
        assert!(
            in_plot != in_caption,
            "`{}`: in the plot {in_plot}, in the caption {in_caption}",
            p.label
        );
    }
    // The geometry: no label box within 2 px of a ceiling line (and the rest of a clean
    // layout).
    assert_clean_layout(&svg, &texts, &placed);
}

/// A CUDA point with its device's peaks recorded, as the point process writes it.
fn gpu_point(id: &str, device: crate::device::DevicePeaks, gflops: f64) -> PointRecord {
    let mut r = gemm("tiled", 4096, gflops);
    r.backend = Some(Backend::Cuda);
    r.point.workload = "cuda.gemm".into();
    r.point.resources.gpus = 1;
    r.point.id = id.into();
    r.devices = vec![device];
    r
}

/// GPU points get a roofline of their own device, from the peaks in their records (an H100:
/// FP64 and FP32 of the CUDA cores and HBM bandwidth, all theoretical), apart from the CPU
/// points' roofline. A device outside the table of FLOPs per SM per cycle gets its bandwidth
/// ceiling only, and report.md says in plain words why there is no compute ceiling. A GPU
/// record without peaks (an older scalelab) is listed as left out. The records go through
/// JSON first, as `scalelab report` reads them.
#[test]
fn gpu_points_are_drawn_against_their_devices_ceilings() {
    use crate::device::DevicePeaks;
    let h100 = DevicePeaks::from_attributes(
        0,
        "NVIDIA H100 80GB HBM3",
        (9, 0),
        132,
        1980.0,
        2619.0,
        5120,
    );
    let b200 = DevicePeaks::from_attributes(0, "NVIDIA B200", (10, 0), 148, 1965.0, 4000.0, 8192);
    let mut recs = vec![
        gemm("tuned", 1024, 24.0),
        gpu_point("h100-gemm", h100.clone(), 21_000.0),
        gpu_point("b200-gemm", b200, 40_000.0),
    ];
    let mut old = gpu_point("old-gpu", h100, 20_000.0);
    old.devices.clear();
    recs.push(old);
    let recs: Vec<PointRecord> = recs
        .iter()
        .map(|r| serde_json::from_str(&serde_json::to_string(r).unwrap()).unwrap())
        .collect();
    assert_eq!(recs[1].devices[0].name, "NVIDIA H100 80GB HBM3");
    let dir = tempfile::tempdir().unwrap();
    let roof = write(dir.path(), &recs, &machine()).unwrap();
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
        std::fs::create_dir_all(&keep).unwrap();
        for p in &roof.plots {
            let f = dir.path().join(format!("{}.png", p.stem));
            std::fs::copy(&f, Path::new(&keep).join(f.file_name().unwrap())).unwrap();
        }
    }
    let stems: Vec<&str> = roof.plots.iter().map(|p| p.stem.as_str()).collect();
    assert_eq!(
        stems,
        [
            "roofline",
            "roofline-gpu-nvidia-b200-1",
            "roofline-gpu-nvidia-h100-80gb-hbm3-1"
        ]
    );
    let texts = |stem: &str| -> Vec<String> {
        let svg = std::fs::read_to_string(dir.path().join(format!("{stem}.svg"))).unwrap();
        svg_texts(&svg).into_iter().map(|t| t.4).collect()
    };
    let h = texts("roofline-gpu-nvidia-h100-80gb-hbm3-1");
    for want in [
        "FP32 peak (CUDA cores): 66908 GFLOP/s",
        "FP64 peak (CUDA cores): 33454 GFLOP/s",
        "device memory peak: 3352 GB/s",
        "cuda.gemm tiled",
    ] {
        assert!(h.iter().any(|t| t == want), "{want} missing from {h:?}");
    }
    assert!(
        h.iter().any(|t| t == "Roofline, 1 × NVIDIA H100 80GB HBM3"),
        "{h:?}"
    );
    // The CPU plot holds the CPU point only, under the CPU's ceilings.
    let cpu = texts("roofline");
    assert!(cpu.iter().any(|t| t == "gemm tuned"));
    assert!(!cpu.iter().any(|t| t.starts_with("cuda.gemm")));
    assert!(!cpu.iter().any(|t| t.contains("CUDA cores")));
    // The unknown architecture: a bandwidth ceiling, no compute ceiling, and a note.
    let b = texts("roofline-gpu-nvidia-b200-1");
    assert!(
        b.iter().any(|t| t == "device memory peak: 8192 GB/s"),
        "{b:?}"
    );
    assert!(
        !b.iter()
            .any(|t| t.contains("GFLOP/s:") || t.contains("CUDA cores)")),
        "{b:?}"
    );
    let md = markdown(&roof);
    assert!(
        md.contains("The GPU roofline of NVIDIA B200 (compute capability 10.0) ([roofline-gpu-nvidia-b200-1.png](plots/roofline-gpu-nvidia-b200-1.png)) has only the ceilings the device's figures give: its compute capability is not in scalelab's table of FLOPs per SM per cycle (src/device.rs), so no compute peak is drawn rather than a guessed one."),
        "{md}"
    );
    assert!(
        md.contains("(plots/roofline-gpu-nvidia-h100-80gb-hbm3-1.png)"),
        "{md}"
    );
    assert!(
        md.contains(
            "- cuda.gemm tiled (1 point: `old-gpu`): GPU point whose record holds no device peaks"
        ),
        "{md}"
    );
}

/// In a run of several studies, a study with two or more points at one worker count (the
/// DGEMM variants) gets its own roofline besides the run's; a study of one kernel per worker
/// count (the triad) does not, nor does a run of a single study. report.md shows it in the
/// study's section.
#[test]
fn a_study_of_several_kernels_gets_its_own_roofline() {
    let mut recs = fixture();
    recs.retain(|r| !r.on_device());
    // The memory-bound kernels each in a study of their own.
    for (k, r) in recs.iter_mut().filter(|r| r.point.study == 1).enumerate() {
        r.point.study = 1 + k;
        r.point.study_name = r.point.workload.clone();
    }
    let dir = tempfile::tempdir().unwrap();
    let per = write_studies(dir.path(), &recs, &machine(), |p, pts| {
        run_ceilings(&machine(), p, pts)
    })
    .unwrap();
    let got: Vec<(usize, Vec<&str>)> = per
        .iter()
        .map(|(i, plots)| (*i, plots.iter().map(|p| p.stem.as_str()).collect()))
        .collect();
    assert_eq!(got, [(0, vec!["study1-gemm-strong-roofline"])]);
    assert!(dir.path().join("study1-gemm-strong-roofline.svg").exists());
    assert!(dir.path().join("study1-gemm-strong-roofline.png").exists());
    let svg = std::fs::read_to_string(dir.path().join("study1-gemm-strong-roofline.svg")).unwrap();
    let texts: Vec<String> = svg_texts(&svg).into_iter().map(|t| t.4).collect();
    assert!(texts.iter().any(|t| t == "gemm blocked"), "{texts:?}");
    assert!(!texts.iter().any(|t| t == "stream.triad"), "{texts:?}");
    assert!(texts
        .join(" ")
        .contains("Roofline of gemm strong, p = 1 worker"));
    // One study alone: the run's roofline is the study's.
    let only: Vec<PointRecord> = recs
        .iter()
        .filter(|r| r.point.study == 0)
        .cloned()
        .collect();
    assert!(
        write_studies(dir.path(), &only, &machine(), |p, pts| run_ceilings(
            &machine(),
            p,
            pts
        ))
        .unwrap()
        .is_empty()
    );
    // In report.md, in the study's section.
    let run_dir = tempfile::tempdir().unwrap();
    let run = crate::results::RunDir::new(run_dir.path());
    let plan = crate::plan::Plan {
        experiment: "roof".into(),
        manifest_sha256: "0".repeat(64),
        points: recs.iter().map(|r| r.point.clone()).collect(),
    };
    crate::report::write(&run, &plan, &recs, &machine()).unwrap();
    let md = std::fs::read_to_string(run.report()).unwrap();
    let at = md
        .find("![Roofline of gemm strong, p = 1 worker (Test CPU)](plots/study1-gemm-strong-roofline.png)")
        .unwrap_or_else(|| panic!("{md}"));
    let study2 = md.find("## Study 2").unwrap();
    assert!(at < study2, "in study 1's section");
    assert!(
        md.contains("Studies with a roofline of their own, in their sections above: [study 1 (gemm strong)](plots/study1-gemm-strong-roofline.png)."),
        "{md}"
    );
}

#[test]
fn measured_ceilings_from_outside() {
    let recs = fixture();
    let dir = tempfile::tempdir().unwrap();
    let m = machine();
    write_with(dir.path(), &recs, &m, |p, _| {
        Ceilings::theoretical(&m, p)
            .with_bandwidth("DRAM", 38.0, Source::Measured("calibrate".into()))
            .with_bandwidth("L2", 180.0, Source::Measured("calibrate".into()))
    })
    .unwrap();
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_ROOFLINE") {
        std::fs::create_dir_all(&keep).unwrap();
        let to = Path::new(&keep).join("measured.png");
        std::fs::copy(dir.path().join("roofline.png"), to).unwrap();
    }
    let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    let texts: Vec<String> = svg_texts(&svg).into_iter().map(|t| t.4).collect();
    assert!(texts.iter().any(|t| t == "L2: 180 GB/s"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "DRAM: 38.0 GB/s"), "{texts:?}");
    assert!(texts.join(" ").contains("bandwidth measured (calibrate)"));
}

#[test]
fn one_plot_per_worker_count() {
    let mut recs = fixture();
    let mut two = gemm("tuned", 1024, 70.0);
    two.point.resources.threads = 2;
    two.point.id = "gemm-tuned-2t".into();
    recs.push(two);
    let dir = tempfile::tempdir().unwrap();
    let roof = write(dir.path(), &recs, &machine()).unwrap();
    let stems: Vec<&str> = roof.plots.iter().map(|p| p.stem.as_str()).collect();
    assert_eq!(stems, ["roofline", "roofline-p1"]);
    let svg = std::fs::read_to_string(dir.path().join("roofline.svg")).unwrap();
    let texts: Vec<String> = svg_texts(&svg).into_iter().map(|t| t.4).collect();
    assert!(
        texts.iter().any(|t| t == "peak (avx2 + FMA): 102 GFLOP/s"),
        "ceilings × p"
    );
    assert!(texts.iter().any(|t| t == "gemm tuned"), "{texts:?}");
    assert!(
        !texts.iter().any(|t| t.starts_with("bandwidth, measured")),
        "no stream point at p = 2: no bandwidth ceiling"
    );
    assert!(texts.join(" ").contains("no bandwidth ceiling"));
}

//! Tests of the report as a whole: report.md, the warnings, the tables and the live line, from
//! synthetic records ([`super::test_support`]).

use super::test_support::{failed, record};
use super::*;

use super::peaks::measured_pct;
use crate::plan::Scaling;
use crate::results::Status;

use crate::plan::Point;

#[test]
fn a_point_beyond_the_measured_peak_says_the_profile_is_low() {
    // The fixture profile measured DGEMM 25 GFLOP/s on 1 core at best, 24.25 as its median:
    // a point's median is compared with the median.
    let profile = crate::calibrate::profile::tests::fixture();
    let rec = record(0, "gemm", Scaling::Strong, 1, 1000, &[0.1]);
    assert_eq!(measured_pct(&rec, Some(19.4), None, Some(&profile)), "80%");
    assert_eq!(
        measured_pct(&rec, Some(30.0), None, Some(&profile)),
        "124% (above the profile)"
    );
    assert_eq!(measured_pct(&rec, Some(30.0), None, None), "–");
}

fn plan_of(records: &[PointRecord], extra: &[Point]) -> Plan {
    Plan {
        experiment: "lecture".into(),
        manifest_sha256: "0".repeat(64),
        points: records
            .iter()
            .map(|r| r.point.clone())
            .chain(extra.iter().cloned())
            .collect(),
    }
}

/// The report.md of `recs` (one study, no extra points) written in a temporary run folder.
fn report_md(recs: &[PointRecord]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    write(&run, &plan_of(recs, &[]), recs, &machine()).unwrap();
    std::fs::read_to_string(run.report()).unwrap()
}

/// The stroke colours of an SVG's lines, the axes' black left out.
fn stroke_colours(svg: &str) -> std::collections::BTreeSet<&str> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|l| l.split("stroke=\"").nth(1)?.split('"').next())
        .filter(|c| *c != "#000000")
        .collect()
}

fn machine() -> Machine {
    Machine {
        host: "node01".into(),
        cpu_model: "Test CPU".into(),
        cores: 8,
        simd: "avx2".into(),
        simd_f64_lanes: 4,
        fma_units: 2,
        clock_ghz: 2.0,
        peak_gflops_per_core: 32.0,
        ..Machine::default()
    }
}

#[test]
fn disturbed_points_are_warned_about_marked_hollow_and_left_out_of_the_fit() {
    use super::test_support::with_load;
    let (a, b) = (0.1, 0.9);
    // p = 2 ran beside other work; the others ran on a quiet machine.
    let recs: Vec<PointRecord> = [1u32, 2, 4]
        .iter()
        .map(|&p| {
            let t = a + b / p as f64;
            let r = record(0, "gemm", Scaling::Strong, p, 1024, &[t, t * 1.01, t]);
            with_load(r, if p == 2 { 1.5 } else { 0.02 })
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let plan = plan_of(&recs, &[]);
    write(&run, &plan, &recs, &machine()).unwrap();
    let md = std::fs::read_to_string(run.report()).unwrap();
    let root = dir.path().display();
    // The first warning: what happened, to which point, what the report did, what to do.
    let first = md
        .split("## Warnings\n\n- ")
        .nth(1)
        .and_then(|w| w.lines().next())
        .unwrap();
    assert_eq!(
        first,
        format!("**Busy machine: 1 point(s) were disturbed.** Other programs used the cores these points needed while they ran, so their times measure that other work as much as the code: `0get2n1024` (other work kept 1.50 of 2 cores busy while the point needed 2 (at most 0.20 allowed)). They are marked ⚠ in the tables and hollow in the plots, left out of the Amdahl and Gustafson fits, and no speedup is based on them where an undisturbed point exists. To measure them again on a quiet machine, close other programs (`top` shows what runs), delete their records and resume, waiting for quiet before each point: `rm {root}/points/0get2n1024.json` then `scalelab run --resume {root} --wait-idle`.")
    );
    assert!(md.contains("| 100% | – | quiet |"), "{md}");
    assert!(md.contains("| ⚠ disturbed |"), "{md}");
    assert!(
        md.contains("*⚠ disturbed: other work used the cores"),
        "{md}"
    );
    // The fit holds the two quiet points only.
    assert!(md.contains(" over 2 points, rms residual "), "{md}");
    // The speedup and throughput plots draw one ring (a white disc and a coloured circle),
    // and say why; the other two points and the legend's swatch are discs.
    for kind in ["speedup", "throughput"] {
        let svg = std::fs::read_to_string(
            run.plots_dir()
                .join(format!("study1-gemm-strong-{kind}.svg")),
        )
        .unwrap();
        let ring = r##"r="8" opacity="1" fill="none" stroke="#0072B2" stroke-width="3""##;
        let disc = r##"r="7" opacity="1" fill="#0072B2" stroke="none""##;
        assert_eq!(svg.matches(ring).count(), 1, "{kind}: {svg}");
        assert_eq!(svg.matches(disc).count(), 3, "{kind}: {svg}");
        assert!(svg.contains("Hollow"), "{svg}");
        assert!(svg.contains("hollow: disturbed"), "a legend entry: {svg}");
    }
}

#[test]
fn full_report_in_a_tempdir() {
    let (a, b) = (0.1, 0.9);
    let mut recs: Vec<PointRecord> = [1u32, 2, 4, 8]
        .iter()
        .map(|&p| {
            let t = a + b / p as f64;
            record(
                0,
                "gemm",
                Scaling::Strong,
                p,
                1024,
                &[t, t * 1.02, t * 0.99, t * 1.01, t],
            )
        })
        .collect();
    recs.extend(
        [(1u32, 1.0), (2, 1.1), (4, 1.3), (8, 1.6)]
            .iter()
            .map(|&(p, t)| {
                record(
                    1,
                    "stream.triad",
                    Scaling::Weak,
                    p,
                    1_000_000 * p as u64,
                    &[t, t * 1.01, t * 0.98],
                )
            }),
    );
    recs.push(failed(
        0,
        "gemm",
        Scaling::Strong,
        16,
        1024,
        "timed out after 60 s (limit `timeout`)",
    ));
    let mut over = record(0, "gemm", Scaling::Strong, 16, 1024, &[0.2]);
    over.point.id = "over16".into();
    over.point.oversubscribed = true;
    let mut pending = over.point.clone();
    pending.id = "pending".into();
    recs.push(over);

    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let plan = plan_of(&recs, &[pending]);
    let files = write(&run, &plan, &recs, &machine()).unwrap();

    for f in &files {
        assert!(f.exists(), "{} missing", f.display());
    }
    assert_eq!(
        files[..3],
        [run.measurements(), run.summary(), run.report()]
    );
    let pngs: Vec<_> = files
        .iter()
        .filter(|p| p.extension().unwrap() == "png")
        .collect();
    let svgs: Vec<_> = files
        .iter()
        .filter(|p| p.extension().unwrap() == "svg")
        .collect();
    // Strong: speedup, efficiency, throughput; weak: efficiency, throughput; the roofline
    // at the largest and the smallest p.
    assert_eq!(pngs.len(), 7, "{pngs:?}");
    assert_eq!(svgs.len(), 7);
    for png in pngs {
        let bytes = std::fs::read(png).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", png.display());
    }
    for svg in svgs {
        let text = std::fs::read_to_string(svg).unwrap();
        assert!(
            text.starts_with("<svg") && text.contains("<text"),
            "{}",
            svg.display()
        );
    }
    let speedup_svg =
        std::fs::read_to_string(run.plots_dir().join("study1-gemm-strong-speedup.svg")).unwrap();
    assert!(speedup_svg.contains("ideal"), "legend names the ideal line");
    assert!(
        speedup_svg.contains("Base case: p0 = 1"),
        "caption names the base case"
    );

    let md = std::fs::read_to_string(run.report()).unwrap();
    assert!(md.contains("serial fraction f = 0.1000"), "{md}");
    assert!(md.contains("Gustafson fit"), "{md}");
    assert!(
        md.contains("timed out after 60 s (limit `timeout`)"),
        "{md}"
    );
    assert!(md.contains("### Failed points"));
    assert!(md.contains("`over16` ⚠"), "oversubscribed point marked");
    assert!(md.contains("**Oversubscribed**"));
    assert!(md.contains("**Incomplete run**: 1 planned point"));
    assert!(md.contains("plots/study1-gemm-strong-speedup.png"));
    assert!(md.contains("% peak"));
    assert!(md.contains("## Roofline"), "{md}");
    assert!(md.contains("![Roofline, p = 16 workers (Test CPU)](plots/roofline.png)"));
    assert!(md.contains("(plots/roofline-p1.png)"));
    assert!(
        md.contains("the points at p = 2, 4, 8 are in the tables above"),
        "{md}"
    );

    let rows = csv::read_summary(&run.summary()).unwrap();
    assert_eq!(rows.len(), recs.len());
    for row in rows
        .iter()
        .filter(|r| r.study == "gemm strong" && r.status == Status::Ok)
    {
        let p = row.workers as f64;
        let expect = if row.point_id == "over16" {
            (a + b) / 0.2
        } else {
            (a + b) / (a + b / p)
        };
        assert!((row.speedup.unwrap() - expect).abs() < 1e-9, "{row:?}");
        assert!((row.efficiency.unwrap() - expect / p).abs() < 1e-9);
    }
    let weak: Vec<_> = rows.iter().filter(|r| r.scaling == Scaling::Weak).collect();
    assert!((weak[3].efficiency.unwrap() - 1.0 / 1.6).abs() < 1e-9);
    let fail = rows.iter().find(|r| r.status == Status::Timeout).unwrap();
    assert_eq!(fail.speedup, None);
    assert_eq!(fail.reason, "timed out after 60 s (limit `timeout`)");

    let meas = csv::read_measurements(&run.measurements()).unwrap();
    assert_eq!(meas.len(), 4 * 5 + 4 * 3 + 1 + 1);

    // To look at the result: SCALELAB_KEEP_REPORT=/tmp/demo cargo test --lib full_report
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_REPORT") {
        let keep = std::path::Path::new(&keep);
        for f in &files {
            let to = keep.join(f.strip_prefix(&run.root).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(f, to).unwrap();
        }
    }
}

#[test]
fn out_of_range_scaling_values_are_named_in_the_report() {
    // A slowdown (faer on a busy machine: S = 0.53 at p = 2) and a superlinear series
    // (S = 2.4 at p = 2), each with three repetitions.
    let recs = vec![
        record(0, "gemm", Scaling::Strong, 1, 512, &[1.0, 1.0, 1.0]),
        record(0, "gemm", Scaling::Strong, 2, 512, &[1.0 / 0.53; 3]),
        record(0, "gemm", Scaling::Strong, 1, 1024, &[2.4, 2.4, 2.4]),
        record(0, "gemm", Scaling::Strong, 2, 1024, &[1.0, 1.0, 1.0]),
    ];
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
    let md = std::fs::read_to_string(run.report()).unwrap();
    // Each line is named by what sets it apart, as its legend names it; what both share is said
    // once above the table.
    assert!(
        md.contains("**Amdahl fit** for `n=512`: not meaningful (f = 2.77 outside [0, 1]: the times do not follow Amdahl's law;"),
        "{md}"
    );
    assert!(
        md.contains("**Amdahl fit** for `n=1024`: not meaningful (f = −0.167 outside [0, 1]: the speedup is superlinear"),
        "{md}"
    );
    assert!(md.contains("Every point: `variant=tuned`."), "{md}");
    assert!(md.contains("| threads=2 | n=1024 | "), "{md}");
    assert!(!md.contains("variant=tuned n=1024"), "{md}");
    assert!(
        md.contains("| superlinear (speedup 2.40 > p = 2: cache effects or a noisy base) | superlinear (E = 120% > 100%) | not meaningful (e = −0.167 < 0: superlinear speedup) |"),
        "{md}"
    );
    assert!(
        md.contains("| 0.530 | 26% | not meaningful (e = 2.77 > 1: slower than the base) |"),
        "{md}"
    );
    for wrong in ["277", "-16.67%", "−16.67%", "120.00%"] {
        assert!(!md.contains(wrong), "{wrong} in {md}");
    }
}

/// A SLURM run over two node types (n1: 100 GFLOP/s per core, n2: 50): each point's "% peak"
/// is of the node it ran on, from `<run>/machines/`, not of the report's (first) node.
#[test]
fn each_point_gets_its_own_nodes_peak() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let nodes = dir.path().join(crate::machine::RUN_MACHINES_DIR);
    std::fs::create_dir_all(&nodes).unwrap();
    for (host, peak) in [("n1", 100.0), ("n2", 50.0)] {
        let m = Machine {
            host: host.into(),
            fma_measured: true,
            peak_gflops_per_core: peak,
            ..Machine::default()
        };
        std::fs::write(
            nodes.join(format!("{host}-key.json")),
            serde_json::to_vec(&m).unwrap(),
        )
        .unwrap();
    }
    // n = 1000: 2·10⁹ flops in 0.1 s = 20 GFLOP/s on 1 core, on each node.
    let mut a = record(0, "gemm", Scaling::Strong, 1, 1000, &[0.1, 0.1]);
    a.host = "n1".into();
    let mut b = record(1, "gemm", Scaling::Strong, 1, 1000, &[0.1, 0.1]);
    b.host = "n2".into();
    let recs = vec![a, b];
    let (machine, warning) = crate::machine::for_report(dir.path(), None);
    assert_eq!(machine.host, "n1");
    assert!(warning.is_some());
    write(&run, &plan_of(&recs, &[]), &recs, &machine).unwrap();
    let md = std::fs::read_to_string(run.report()).unwrap();
    let row = |study: usize| -> Vec<String> {
        md.lines()
            .find(|l| l.starts_with(&format!("| `{study}get1n1000`")))
            .unwrap_or_else(|| panic!("{md}"))
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    // Columns: point, p, resources, median, GFLOP/s, GB/s, % peak (one point a study: its
    // parameters are said above the table, not in a column).
    assert_eq!(row(0)[7], "20%", "{:?}", row(0));
    assert_eq!(row(1)[7], "40%", "{:?}", row(1));
    assert!(md.contains("Every point: `variant=tuned n=1000`."), "{md}");
}

/// A ping-pong point measured while other work held the cores is marked ⚠ in the message
/// table too, with the machine column the study table has and a note under the table.
#[test]
fn message_table_marks_disturbed_points() {
    use super::test_support::{mpi_record, with_load, with_metric};
    let recs: Vec<PointRecord> = [(8u64, 0.0), (4096, 1.5), (1 << 20, 0.0)]
        .iter()
        .map(|&(size, other)| {
            let one_way = 0.2e-6 + size as f64 / 10e9;
            let t = 2.0 * one_way * 1000.0;
            let lat = one_way * 1e6;
            let r = mpi_record(0, "mpi.pingpong", 2, 1, size, 1000, &[t, t, t]);
            with_load(with_metric(r, "latency_us", &[lat; 3]), other)
        })
        .collect();
    assert!(recs[1].is_disturbed() && !recs[0].is_disturbed());
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
    let md = std::fs::read_to_string(run.report()).unwrap();
    let table = &md[md
        .find("### Latency and bandwidth by message size")
        .unwrap()..];
    assert!(table.contains(
        "| message size | series | latency (µs) | bandwidth (GB/s) | point | machine |\n| ---: | --- | ---: | ---: | --- | --- |\n"
    ), "{table}");
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.contains(&format!("`{id}`")))
            .unwrap_or_else(|| panic!("no row for {id}: {table}"))
            .to_string()
    };
    assert!(
        row("0r2t1s4096").ends_with("| `0r2t1s4096` ⚠ | ⚠ disturbed |"),
        "{}",
        row("0r2t1s4096")
    );
    assert!(
        row("0r2t1s8").ends_with("| `0r2t1s8` | quiet |"),
        "{}",
        row("0r2t1s8")
    );
    assert!(
        table.contains("*⚠ disturbed: other work used the cores these ranks needed while they ran")
    );
}

#[test]
fn mpi_report_with_messages_comm_share_and_hybrid_points() {
    use super::test_support::{mpi_record, with_metric};
    let mut recs = Vec::new();
    // Study 0: ping-pong over message sizes, 2 ranks: latency 0.2 µs + size / 10 GB/s.
    for size in [1u64, 8, 64, 4096, 1 << 20, 4 << 20] {
        let one_way = 0.2e-6 + size as f64 / 10e9;
        let t = 2.0 * one_way * 1000.0;
        let lat = one_way * 1e6;
        recs.push(with_metric(
            mpi_record(
                0,
                "mpi.pingpong",
                2,
                1,
                size,
                1000,
                &[t, t * 1.05, t * 0.98],
            ),
            "latency_us",
            &[lat, lat * 1.05, lat * 0.98],
        ));
    }
    // Study 1: allreduce at 2 and 4 ranks (4 oversubscribed), no latency metric.
    for ranks in [2u32, 4] {
        for size in [8u64, 65536] {
            let t = 1e-3 * ranks as f64 * (1.0 + size as f64 / 65536.0);
            let mut r = mpi_record(1, "mpi.allreduce", ranks, 1, size, 100, &[t, t * 1.02]);
            r.point.oversubscribed = ranks > 2;
            recs.push(r);
        }
    }
    // Study 2: stencil with communication and compute times.
    for ranks in [1u32, 2, 4] {
        let compute = 1.0 / ranks as f64;
        let comm = 0.05 * (ranks - 1) as f64;
        let t = compute + comm;
        let r = mpi_record(
            2,
            "mpi.stencil",
            ranks,
            1,
            1024,
            50,
            &[t, t * 1.01, t * 0.99],
        );
        let r = with_metric(r, "comm_s", &[comm, comm, comm]);
        recs.push(with_metric(r, "compute_s", &[compute, compute, compute]));
    }
    // Study 3: hybrid DGEMM, ranks × threads [1,1], [1,2], [2,1], [2,2] (4 workers on a
    // 2-core machine: oversubscribed).
    for (ranks, threads) in [(1u32, 1u32), (1, 2), (2, 1), (2, 2)] {
        let t = 1.0 / (ranks * threads) as f64 * if ranks > 1 { 1.1 } else { 1.0 };
        let mut r = mpi_record(3, "mpi.gemm", ranks, threads, 512, 1, &[t, t]);
        r.point.oversubscribed = ranks * threads > 2;
        recs.push(r);
    }
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let plan = plan_of(&recs, &[]);
    let files = write(&run, &plan, &recs, &machine()).unwrap();
    let stems: Vec<String> = files
        .iter()
        .filter(|f| f.extension().unwrap() == "svg")
        .map(|f| f.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "study1-pingpong-latency",
        "study1-pingpong-bandwidth",
        "study2-allreduce-latency",
        "study2-allreduce-bandwidth",
        "study3-stencil-comm",
        "study3-stencil-speedup",
        "study4-gemm-speedup",
    ] {
        assert!(stems.iter().any(|s| s == want), "{want} missing: {stems:?}");
    }
    assert!(
        !stems
            .iter()
            .any(|s| s.starts_with("study1-pingpong-throughput")),
        "message studies get latency/bandwidth instead of throughput: {stems:?}"
    );
    for f in &files {
        match f.extension().unwrap().to_str().unwrap() {
            "png" => {
                let bytes = std::fs::read(f).unwrap();
                assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", f.display());
            }
            "svg" => {
                let text = std::fs::read_to_string(f).unwrap();
                assert!(text.starts_with("<svg") && text.ends_with("</svg>\n"));
            }
            _ => {}
        }
    }
    let lat_svg =
        std::fs::read_to_string(run.plots_dir().join("study1-pingpong-latency.svg")).unwrap();
    assert!(lat_svg.contains("latency (µs)"), "y axis");
    assert!(lat_svg.contains("message size"), "x axis");
    assert!(
        lat_svg.contains("4 KiB") && lat_svg.contains("1 MiB"),
        "byte ticks"
    );
    assert!(
        lat_svg.contains("mpi.pingpong · ranks=2 · threads=1"),
        "what the one line has is the subtitle"
    );
    let hybrid = std::fs::read_to_string(run.plots_dir().join("study4-gemm-speedup.svg")).unwrap();
    assert!(
        hybrid.contains(">\nranks × threads\n<"),
        "the swept resources"
    );
    assert!(
        hybrid.contains("2 threads/rank"),
        "hybrid split per threads"
    );

    let md = std::fs::read_to_string(run.report()).unwrap();
    assert!(
        md.contains("### Latency and bandwidth by message size"),
        "{md}"
    );
    assert!(
        md.contains("| 8 B | ranks=2 threads=1 | 0.201 | "),
        "latency from the metric: {md}"
    );
    assert!(md.contains("| 4 MiB | ranks=2 threads=1 |"), "{md}");
    // Allreduce without the metric: median time / iterations = 2 ms · 1.01 / 100 = 20.2 µs.
    assert!(md.contains("| 8 B | ranks=2 threads=1 | 20.2 | "), "{md}");
    assert!(md.contains("| comm share |"), "{md}");
    // Stencil at 2 ranks: comm 0.05 of 0.55 s.
    assert!(md.contains("| 9% |"), "{md}");
    assert!(md.contains("| ranks | threads/rank |"), "{md}");
    assert!(
        md.contains("oversubscribed: more ranks × threads than cores; times not comparable"),
        "{md}"
    );
    assert!(md.contains("plots/study3-stencil-comm.png"), "{md}");
    // No point records waiting: neither the chart nor the notes speak of it.
    let comm_svg =
        std::fs::read_to_string(run.plots_dir().join("study3-stencil-comm.svg")).unwrap();
    assert!(!comm_svg.contains("waiting"), "{comm_svg}");
    assert!(!md.contains("wait_s"), "{md}");
    let rows = csv::read_summary(&run.summary()).unwrap();
    let st: Vec<_> = rows
        .iter()
        .filter(|r| r.workload == "mpi.stencil")
        .collect();
    assert_eq!(st[1].metrics["comm_s"], 0.05);
    if let Some(keep) = std::env::var_os("SCALELAB_KEEP_MPI_REPORT") {
        let keep = std::path::Path::new(&keep);
        for f in &files {
            let to = keep.join(f.strip_prefix(&run.root).unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(f, to).unwrap();
        }
    }
}

#[test]
fn waiting_is_drawn_beside_compute_and_communication_where_recorded() {
    use super::test_support::{mpi_record, with_metric, with_param};
    // Two series (strategies), each with its four quantities.
    let recs: Vec<_> = ["ddp", "accumulate"]
        .into_iter()
        .flat_map(|strategy| [1u32, 2, 4].map(move |ranks| (strategy, ranks)))
        .map(|(strategy, ranks)| {
            let (compute, comm, wait) = (1.0 / ranks as f64, 0.01, 0.02 * (ranks - 1) as f64);
            let t = compute + comm + wait;
            let r = mpi_record(0, "mpi.train", ranks, 1, 1024, 1, &[t, t]);
            let r = with_param(r, "strategy", strategy);
            let r = with_metric(r, "comm_s", &[comm, comm]);
            let r = with_metric(r, "wait_s", &[wait, wait]);
            with_metric(r, "compute_s", &[compute, compute])
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
    let svg = std::fs::read_to_string(run.plots_dir().join("study1-train-comm.svg")).unwrap();
    for want in [
        ">\nwaiting (strategy=ddp)\n<",
        ">\ncommunication (strategy=accumulate)\n<",
        ">\ncompute (strategy=ddp)\n<",
        "(comm_s), waiting for a slower rank or a neighbour (wait_s",
    ] {
        assert!(svg.contains(want), "{want}: {svg}");
    }
    // A colour per quantity, shared by the series (which differ in marker shape): eight lines,
    // four colours (black is the axes').
    let colours = stroke_colours(&svg);
    assert_eq!(colours.len(), 4, "{colours:?}");
    let md = std::fs::read_to_string(run.report()).unwrap();
    assert!(
        md.contains("Where a point records `wait_s` (waiting for a slower rank or a pipeline neighbour), that time is not in `comm_s`."),
        "{md}"
    );
}

#[test]
fn more_series_than_marker_shapes_get_a_colour_each_and_more_than_colours_no_chart() {
    use super::test_support::{mpi_record, with_metric, with_param};
    let study = |series: usize| -> Vec<PointRecord> {
        (0..series)
            .flat_map(|k| [1u32, 2].map(move |ranks| (k, ranks)))
            .map(|(k, ranks)| {
                let r = mpi_record(0, "mpi.train", ranks, 1, 1024, 1, &[1.0, 1.0]);
                let r = with_param(r, "micro", &format!("m{k}"));
                let r = with_metric(r, "comm_s", &[0.125, 0.125]);
                let r = with_metric(r, "wait_s", &[0.0625, 0.0625]);
                with_metric(r, "compute_s", &[0.5, 0.5])
            })
            .collect()
    };
    let comm_svg = |recs: Vec<PointRecord>| {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
        std::fs::read_to_string(run.plots_dir().join("study1-train-comm.svg")).ok()
    };
    // Five series: some would share a shape, so each is a colour (the totals left to the table);
    // a colour per quantity would be four.
    let svg = comm_svg(study(5)).expect("a chart for five series");
    let colours = stroke_colours(&svg);
    assert_eq!(colours.len(), 5, "{colours:?}");
    assert!(!svg.contains("total (median time)"), "{svg}");
    assert!(svg.contains("a shape per quantity"), "{svg}");
    // More series than colours: no style tells them apart.
    let colours = super::plots::PALETTE.len();
    assert!(comm_svg(study(colours + 1)).is_none());
}

#[test]
fn a_study_whose_series_each_have_one_worker_count_gets_no_compute_vs_communication_chart() {
    use super::test_support::{mpi_record, with_metric, with_param};
    // Three settings at 4 ranks, and one at 5 (as a zipped sync/async sweep has): no series has
    // two worker counts.
    let recs: Vec<_> = [("0.0", 4), ("0.5", 4), ("1.0", 4), ("async", 5)]
        .into_iter()
        .map(|(skew, ranks)| {
            let r = mpi_record(0, "mpi.train", ranks, 1, 1024, 1, &[1.0, 1.0]);
            let r = with_param(r, "skew", skew);
            let r = with_metric(r, "comm_s", &[0.25, 0.25]);
            with_metric(r, "compute_s", &[0.5, 0.5])
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let files = write(&run, &plan_of(&recs, &[]), &recs, &machine()).unwrap();
    assert!(
        !files.iter().any(|f| f.to_string_lossy().contains("-comm.")),
        "{files:?}"
    );
    // The table still gives each point's communication share.
    let md = std::fs::read_to_string(run.report()).unwrap();
    assert!(
        md.contains("| comm share |") && md.contains("| 25% |"),
        "{md}"
    );
}

#[test]
fn a_report_removes_the_study_plots_an_earlier_report_drew_and_it_does_not() {
    let recs: Vec<_> = [1u32, 2]
        .map(|t| record(0, "gemm", Scaling::Strong, t, 256, &[1.0 / t as f64]))
        .into();
    let dir = tempfile::tempdir().unwrap();
    let run = RunDir::new(dir.path());
    let plan = plan_of(&recs, &[]);
    write(&run, &plan, &recs, &machine()).unwrap();
    let plots = run.plots_dir();
    let speedup = plots.join("study1-gemm-strong-speedup.svg");
    assert!(speedup.exists());
    // What an earlier report drew and this one does not, and files that are not study plots.
    let stale = [
        plots.join("study1-gemm-strong-comm.svg"),
        plots.join("study7-old-speedup.png"),
    ];
    let kept = [plots.join("notes.txt"), plots.join("study-notes.png")];
    for f in stale.iter().chain(&kept) {
        std::fs::write(f, "x").unwrap();
    }
    let files = write(&run, &plan, &recs, &machine()).unwrap();
    for f in &stale {
        assert!(!f.exists(), "{} is left", f.display());
    }
    for f in kept.iter().chain([&speedup]) {
        assert!(f.exists(), "{} was removed", f.display());
    }
    assert!(files.iter().all(|f| f.exists()), "{files:?}");
}

#[test]
fn lines_at_one_worker_count_are_told_once_that_they_have_no_fit() {
    use super::test_support::with_param;
    let at = |threads: u32, variant: &str| {
        with_param(
            record(0, "gemm", Scaling::Strong, threads, 256, &[0.5, 0.5]),
            "variant",
            variant,
        )
    };
    let report = |recs: Vec<PointRecord>| report_md(&recs);
    let fix =
        "a fit needs at least two worker counts; add values to `threads` (or `ranks`) in the study";
    let md = report(["naive", "blocked", "tuned"].map(|v| at(2, v)).into());
    assert_eq!(md.matches("No fit").count(), 1, "{md}");
    assert!(
        md.contains(&format!(
            "No fit: every line was measured at one worker count; {fix}."
        )),
        "{md}"
    );
    let md = report(vec![at(2, "naive")]);
    assert!(md.contains(&format!("No fit: {fix} (p = 2).")), "{md}");
    // One line with a fit, two without: those two are named together.
    let mut recs = vec![
        at(1, "tuned"),
        at(2, "tuned"),
        at(2, "naive"),
        at(2, "blocked"),
    ];
    recs[1] = with_param(
        record(0, "gemm", Scaling::Strong, 2, 256, &[0.26, 0.26]),
        "variant",
        "tuned",
    );
    let md = report(recs);
    assert_eq!(md.matches("No fit").count(), 1, "{md}");
    assert!(md.contains("**Amdahl fit**"), "{md}");
    assert!(md.contains("each was measured at one worker count"), "{md}");
}

#[test]
fn lines_too_disturbed_to_fit_are_told_once() {
    use super::test_support::{with_load, with_param};
    let at = |threads: u32, variant: &str, seconds: f64| {
        let r = record(
            0,
            "gemm",
            Scaling::Strong,
            threads,
            256,
            &[seconds, seconds],
        );
        // Two cores busy beside a 2-thread point: disturbed.
        let r = if threads == 2 { with_load(r, 2.0) } else { r };
        with_param(r, "variant", variant)
    };
    let report = |recs: Vec<PointRecord>| report_md(&recs);
    let quiet = "measured on a quiet machine (⚠ disturbed points are left out; see the warning \
                 at the top)";
    let recs = ["naive", "blocked", "tuned"]
        .into_iter()
        .flat_map(|v| [at(1, v, 1.0), at(2, v, 0.6)])
        .collect();
    let md = report(recs);
    assert_eq!(md.matches("No fit").count(), 1, "{md}");
    assert!(
        md.contains(&format!("No fit: too few points of any line were {quiet}.")),
        "{md}"
    );
    // One line quiet at both counts: the other two are named together.
    let mut recs: Vec<_> = ["naive", "blocked"]
        .into_iter()
        .flat_map(|v| [at(1, v, 1.0), at(2, v, 0.6)])
        .collect();
    recs.push(at(1, "tuned", 1.0));
    recs.push(with_param(
        record(0, "gemm", Scaling::Strong, 2, 256, &[0.55, 0.55]),
        "variant",
        "tuned",
    ));
    let md = report(recs);
    assert_eq!(md.matches("No fit").count(), 1, "{md}");
    assert!(
        md.contains(&format!(
            "No fit for `variant=naive`, `variant=blocked`: too few of their points were {quiet}."
        )),
        "{md}"
    );
    assert!(md.contains("**Amdahl fit** for `variant=tuned`"), "{md}");
}

#[test]
fn live_lines() {
    let r = record(
        0,
        "gemm",
        Scaling::Strong,
        2,
        1024,
        &[0.0213, 0.0213, 0.0214],
    );
    let line = live_line(&r);
    assert!(
        line.starts_with("ok  gemm variant=tuned n=1024 threads=2  0.0213 s  100.8 GFLOP/s"),
        "{line}"
    );
    let s = record(0, "stream.triad", Scaling::Strong, 1, 1_000_000, &[0.01]);
    assert!(live_line(&s).ends_with("2.40 GB/s"), "{}", live_line(&s));
    let f = failed(
        0,
        "gemm",
        Scaling::Strong,
        8,
        1024,
        "timed out after 60 s\nmore",
    );
    assert_eq!(
        live_line(&f),
        "FAILED (timeout) gemm variant=tuned n=1024 threads=8  timed out after 60 s"
    );
    let pp = super::test_support::with_metric(
        super::test_support::mpi_record(0, "mpi.pingpong", 2, 1, 8, 1000, &[3e-4, 3e-4]),
        "latency_us",
        &[0.15, 0.13],
    );
    assert!(
        live_line(&pp).contains("latency 0.140 µs"),
        "{}",
        live_line(&pp)
    );
    let st = super::test_support::with_metric(
        super::test_support::mpi_record(0, "mpi.stencil", 2, 1, 64, 10, &[1.0]),
        "comm_s",
        &[0.25],
    );
    assert!(live_line(&st).contains("comm 25%"), "{}", live_line(&st));
}

#[test]
fn throughput_choice() {
    assert_eq!(
        Throughput::for_work(&Work {
            flops: 2e9,
            bytes: 24e6
        }),
        Some(Throughput::Gflops)
    );
    assert_eq!(
        Throughput::for_work(&Work {
            flops: 2e6,
            bytes: 24e6
        }),
        Some(Throughput::Gbps)
    );
    assert_eq!(
        Throughput::for_work(&Work {
            flops: 0.0,
            bytes: 8.0
        }),
        Some(Throughput::Gbps)
    );
    assert_eq!(
        Throughput::for_work(&Work {
            flops: 5.0,
            bytes: 0.0
        }),
        Some(Throughput::Gflops)
    );
    assert_eq!(Throughput::for_work(&Work::default()), None);
    assert_eq!(
        Throughput::Gbps.rate(
            &Work {
                flops: 0.0,
                bytes: 2e9
            },
            2.0
        ),
        Some(1.0)
    );
}

#[test]
fn a_report_head_says_how_busy_the_machine_was() {
    use crate::plan::Scaling;
    use crate::report::test_support::{record, with_load};
    use crate::report::warnings::describe_load;
    let rec = |threads, other| {
        with_load(
            record(0, "gemm", Scaling::Strong, threads, 64, &[1.0]),
            other,
        )
    };
    let unsampled = record(0, "gemm", Scaling::Strong, 1, 64, &[1.0]);
    assert_eq!(describe_load(std::slice::from_ref(&unsampled)), None);
    assert_eq!(
            describe_load(&[rec(1, 0.05), rec(2, 0.5), unsampled]).as_deref(),
            Some(
                "Load while measured: other work kept 0.05–0.50 cores busy beside the points \
                 (1-minute load average 0.05–0.50); 1 of 2 sampled points disturbed, 1 not sampled."
            )
        );
    assert_eq!(
        describe_load(&[rec(2, 0.0)]).as_deref(),
        Some(
            "Load while measured: other work kept 0.00 cores busy beside the points \
                 (1-minute load average 0.00); 0 of 1 sampled point disturbed."
        )
    );
}

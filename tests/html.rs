//! `report.html` in a real browser: a small run's page is opened by headless Chromium, which must
//! load it without a console message or an element that loads something, lay out every plot as an `<svg>` of
//! non-zero size, and show tables whose cells agree with `summary.csv`.
//!
//! Chromium opens a harness page beside the run that holds the report in an `<iframe>` and writes
//! what the browser laid out (each `<svg>`'s box, every table cell as rendered text, every link,
//! every element that would load something) into its own DOM as JSON; `--dump-dom` hands that
//! back.
//! A deliberately broken page goes through the same checks first, so a check that stopped
//! seeing problems (a changed Chromium log format, say) fails the test instead of passing it.
//!
//! Needs Chromium (`scripts/install-deps.sh --browser`, Debian's `chromium` package). Without it
//! the test fails naming that command; set `SCALELAB_SKIP_BROWSER_TESTS=1` to skip it on a
//! machine without a browser (CI never sets it).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use wait_timeout::ChildExt;

use common::{column, read_csv, scalelab};

/// The environment variable that lets a local run skip the browser tests.
const SKIP: &str = "SCALELAB_SKIP_BROWSER_TESTS";

/// The Chromium binary: `$SCALELAB_CHROMIUM`, else the first of the usual names on PATH. `None`
/// when the test is to be skipped; a panic naming the fix when no browser is found.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("SCALELAB_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    if std::env::var_os(SKIP).is_some_and(|v| v == "1") {
        eprintln!("skipped: no Chromium on PATH and {SKIP}=1");
        return None;
    }
    panic!(
        "tests/html.rs needs a headless Chromium to open report.html, and none is on PATH \
         (chromium, chromium-browser, google-chrome). Install it with `scripts/install-deps.sh --browser` \
         (Debian: `apt-get install chromium`), or point SCALELAB_CHROMIUM at the binary; \
         to skip this test on a machine without a browser, set {SKIP}=1."
    );
}

/// The harness: the page under test in an iframe, and a script that writes what the browser made
/// of it into `<pre id="result">` as JSON. File pages may read each other only with
/// `--allow-file-access-from-files`, which [`inspect`] passes.
const HARNESS: &str = r#"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>harness</title></head><body>
<iframe id="page" src="PAGE" style="width:1200px;height:900px"></iframe>
<script>
document.getElementById('page').addEventListener('load', () => {
  const frame = document.getElementById('page');
  const d = frame.contentDocument;
  const out = { title: d.title, svgs: [], tables: [], links: [], loaders: [] };
  for (const s of d.querySelectorAll('svg')) {
    const r = s.getBoundingClientRect();
    const plot = s.closest('.plot');
    out.svgs.push({ src: plot ? plot.dataset.src : '', label: plot ? plot.getAttribute('aria-label') : '',
                    width: r.width, height: r.height, texts: s.querySelectorAll('text').length });
  }
  for (const t of d.querySelectorAll('main > table')) {
    out.tables.push([...t.rows].map(row => [...row.cells].map(c => c.textContent.trim())));
  }
  for (const a of d.querySelectorAll('a[href]')) out.links.push(a.getAttribute('href'));
  for (const e of d.querySelectorAll('[src],[srcset],link,script,iframe,object,embed,image,use,[style*="url("]')) {
    out.loaders.push(e.outerHTML.slice(0, 120));
  }
  for (const s of d.querySelectorAll('style')) if (/url\(|@import/.test(s.textContent)) out.loaders.push('style: url() or @import');
  const pre = document.createElement('pre');
  pre.id = 'result';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script></body></html>
"#;

/// What Chromium made of one page.
struct Inspection {
    /// The harness's JSON (see [`HARNESS`]).
    seen: Value,
    /// Console messages Chromium logged while loading (any message at all: the report has no
    /// script, so a message means a script ran or the browser complained).
    console: Vec<String>,
}

/// Open `page` (a file in `dir`) in headless Chromium through the harness.
fn inspect(browser: &Path, dir: &Path, page: &str) -> Inspection {
    let harness = dir.join(format!("harness-{page}.html").replace('/', "-"));
    fs::write(&harness, HARNESS.replace("PAGE", page)).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let stdout = dir.join("chromium-dom.html");
    let stderr = dir.join("chromium-log.txt");
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            // Containers often give /dev/shm only 64 MiB, which Chromium can run out of.
            "--disable-dev-shm-usage",
            "--allow-file-access-from-files",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", harness.display()))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&stdout).unwrap())
        .stderr(fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", browser.display()));
    let status = match child.wait_timeout(Duration::from_secs(120)).unwrap() {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish loading {} within 120 s; its log: {}",
                browser.display(),
                harness.display(),
                stderr.display()
            );
        }
    };
    let dom = fs::read_to_string(&stdout).unwrap();
    let log = fs::read_to_string(&stderr).unwrap();
    assert!(
        status.success(),
        "{} exited with {status} on {}; log:\n{log}",
        browser.display(),
        harness.display()
    );
    let json = dom
        .split_once("<pre id=\"result\">")
        .and_then(|(_, rest)| rest.split_once("</pre>"))
        .map(|(json, _)| unescape(json))
        .unwrap_or_else(|| {
            panic!("the harness wrote no result: the page did not load\nDOM:\n{dom}\nlog:\n{log}")
        });
    let seen: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    let console = log
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(String::from)
        .collect();
    Inspection { seen, console }
}

/// The text of a `<pre>` as Chromium serialises it: only `&`, `<`, `>` (and a no-break space)
/// are escaped.
fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

/// Everything wrong with a page as loaded: console messages, elements that load something (a
/// self-contained page has none; Chromium keeps no resource timing for `file://` loads, so the
/// elements are what is checked), plots without a box, links to files that are not there
/// (relative to `dir`).
fn problems(page: &Inspection, dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = page
        .console
        .iter()
        .map(|l| format!("console: {l}"))
        .collect();
    let list = |key: &str| page.seen[key].as_array().cloned().unwrap_or_default();
    for l in list("loaders") {
        out.push(format!(
            "an element that loads something: {}",
            l.as_str().unwrap()
        ));
    }
    for s in list("svgs") {
        let (w, h) = (s["width"].as_f64().unwrap(), s["height"].as_f64().unwrap());
        if !(w > 0.0 && h > 0.0) {
            out.push(format!("figure {} laid out {w} × {h}", s["src"]));
        }
        if s["texts"].as_u64() == Some(0) {
            out.push(format!("figure {} has no text (title, axes)", s["src"]));
        }
    }
    for l in list("links") {
        let href = l.as_str().unwrap();
        if href.starts_with('#') || href.starts_with("http://") || href.starts_with("https://") {
            continue;
        }
        if href.contains(':') || !dir.join(href).exists() {
            out.push(format!("broken link: {href}"));
        }
    }
    out
}

/// The first decimal number in a table cell ("1.00 (base)", "superlinear (E = 120% > 100%)").
fn first_number(cell: &str) -> Option<(f64, usize)> {
    let start = cell.find(|c: char| c.is_ascii_digit())?;
    let text: String = cell[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let decimals = text.split_once('.').map_or(0, |(_, d)| d.len());
    Some((text.parse().ok()?, decimals))
}

/// Whether `cell`'s first number is `value` (times `scale`) rounded to the decimals the cell shows.
fn shows(cell: &str, value: f64, scale: f64) -> bool {
    let Some((shown, decimals)) = first_number(cell) else {
        return false;
    };
    let half_unit = 0.5 * 10f64.powi(-(decimals as i32));
    ((value * scale).abs() - shown).abs() <= half_unit * (1.0 + 1e-9) + 1e-12
}

/// The seconds a duration cell ("5.00 ± 12.25 µs") shows per unit.
fn time_scale(cell: &str) -> f64 {
    let unit = cell.rsplit(' ').next().unwrap();
    match unit {
        "ns" => 1e9,
        "µs" => 1e6,
        "ms" => 1e3,
        "s" => 1.0,
        other => panic!("unknown time unit {other:?} in {cell:?}"),
    }
}

#[test]
fn report_html_loads_in_chromium_with_every_figure_and_the_summary_tables() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();

    // The checks see problems: a page with a script, a stylesheet it fetches, a missing image and
    // a broken link.
    fs::write(dir.path().join("style.css"), "body { color: black }").unwrap();
    fs::write(
        dir.path().join("broken.html"),
        "<!DOCTYPE html><html><head><title>broken</title><link rel=\"stylesheet\" href=\"style.css\"></head><body><main>\
         <script>console.error('on purpose')</script><img src=\"nothere.png\">\
         <a href=\"nothere.csv\">x</a><svg width=\"0\" height=\"0\"><text>t</text></svg></main></body></html>",
    )
    .unwrap();
    let broken = inspect(&browser, dir.path(), "broken.html");
    let found = problems(&broken, dir.path()).join("\n");
    for expected in [
        "console: ",
        "\"on purpose\"",
        "an element that loads something: <link rel=\"stylesheet\" href=\"style.css\">",
        "an element that loads something: <script>",
        "an element that loads something: <img src=\"nothere.png\">",
        "laid out 0 × 0",
        "broken link: nothere.csv",
    ] {
        assert!(
            found.contains(expected),
            "the checks missed {expected:?} in a broken page; they found:\n{found}"
        );
    }

    // A small real run: two studies with plots (GB/s and GFLOP/s), and a point that fails.
    let (run, code, out) = common::run_manifest(
        dir.path(),
        "name = \"html\"\nrepetitions = 3\nwarmup = 0\n\n\
         [[study]]\nname = \"triad\"\nworkload = \"stream.triad\"\nthreads = [1, 2]\nsize = \"64KiB\"\n\n\
         [[study]]\nname = \"gemm\"\nworkload = \"gemm\"\nvariant = \"tuned\"\nthreads = [1, 2]\nsize = [64]\n\n\
         [[study]]\nname = \"fails\"\nworkload = \"debug.fail\"\nthreads = [1]\n",
    );
    // 1: a point failed (on purpose); the report is complete.
    assert_eq!(code, 1, "{out}");
    let html_path = run.join("report.html");
    assert!(
        html_path.is_file(),
        "no report.html beside report.md: {out}"
    );

    let page = inspect(&browser, dir.path(), "run/report.html");
    let seen = &page.seen;
    assert_eq!(seen["title"], "html: scaling report", "{seen}");
    let trouble = problems(&page, &run);
    assert!(trouble.is_empty(), "report.html:\n{}", trouble.join("\n"));

    // Every figure report.md shows is an inline <svg> with a box, in the same order.
    let md = fs::read_to_string(run.join("report.md")).unwrap();
    let figures: Vec<String> = md
        .lines()
        .filter_map(|l| l.strip_prefix("!["))
        .map(|l| {
            let png = l.rsplit_once("](").unwrap().1.trim_end_matches(')');
            png.replace(".png", ".svg")
        })
        .collect();
    let svgs: Vec<String> = seen["svgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["src"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(svgs, figures, "{seen}");
    // Speedup, efficiency and throughput for both studies, and at least one roofline.
    assert!(figures.len() >= 7, "{figures:?}");
    for f in &figures {
        assert!(run.join(f).is_file(), "{f}");
    }

    // The tables: every summary.csv row is one table row, with the same numbers.
    let (header, rows) = read_csv(&run.join("summary.csv"));
    let mut by_id: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for table in seen["tables"].as_array().unwrap() {
        let table: Vec<Vec<String>> = serde_json::from_value(table.clone()).unwrap();
        let head = table[0].clone();
        if head.first().map(String::as_str) != Some("point") {
            continue;
        }
        for row in &table[1..] {
            let id = row[0].trim_end_matches(" ⚠").to_string();
            assert!(
                by_id
                    .insert(id.clone(), (head.clone(), row.clone()))
                    .is_none(),
                "point {id} in two tables"
            );
        }
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(by_id.len(), rows.len(), "{by_id:?}");
    let mut checked = 0;
    for row in &rows {
        let id = column(&header, row, "point_id");
        let (head, cells) = by_id
            .get(id)
            .unwrap_or_else(|| panic!("summary.csv point {id} is in no table of report.html"));
        let cell = |name: &str| -> &str {
            let i = head
                .iter()
                .position(|h| h == name)
                .unwrap_or_else(|| panic!("no column {name} in {head:?}"));
            &cells[i]
        };
        let num = |name: &str| -> f64 { column(&header, row, name).parse().unwrap() };
        if column(&header, row, "status") != "ok" {
            assert_eq!(cell("status"), column(&header, row, "status"), "{id}");
            assert_eq!(
                cell("reason"),
                column(&header, row, "reason").replace(['\n', '\r'], " "),
                "{id}"
            );
            continue;
        }
        assert_eq!(cell("p"), column(&header, row, "workers"), "{id}");
        let median = cell("median ± 95% CI");
        assert!(
            shows(median, num("median_s"), time_scale(median)),
            "{id}: {median} vs median_s {}",
            num("median_s")
        );
        for (html_col, csv_col, scale) in [
            ("GFLOP/s", "gflops", 1.0),
            ("GB/s", "gbps", 1.0),
            ("speedup", "speedup", 1.0),
            ("efficiency", "efficiency", 100.0),
        ] {
            let shown = cell(html_col);
            let value = num(csv_col);
            assert!(
                shows(shown, value, scale),
                "{id}: {html_col} shows {shown:?}, summary.csv {csv_col} = {value}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 4, "four ok points compared");

    // The warnings and the machine card are on the page (the failed point is warned about).
    let html = fs::read_to_string(&html_path).unwrap();
    assert!(html.contains("<h2>Warnings</h2>"), "{html}");
    assert!(html.contains("<section class=\"machine\""), "{html}");

    // `scalelab report` renders it again from the records.
    fs::remove_file(&html_path).unwrap();
    let again = common::run(scalelab().arg("report").arg(&run));
    assert!(html_path.is_file(), "{}{}", again.stdout, again.stderr);
    assert_eq!(fs::read_to_string(&html_path).unwrap(), html);
}

#[test]
fn a_mock_report_html_carries_the_mock_mark() {
    let Some(browser) = chromium() else { return };
    let dir = tempfile::tempdir().unwrap();
    let manifest = common::write(
        dir.path(),
        "m.toml",
        "name = \"mockhtml\"\nrepetitions = 3\nwarmup = 0\n\n[[study]]\nname = \"triad\"\nworkload = \"stream.triad\"\nthreads = [1, 2]\nsize = \"1MiB\"\n",
    );
    let run = dir.path().join("run");
    let out = common::run(
        scalelab()
            .arg("run")
            .arg(&manifest)
            .arg("--run-dir")
            .arg(&run)
            .args(["--mock", "0.1,0.9", "-q"]),
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let page = inspect(&browser, dir.path(), "run/report.html");
    let trouble = problems(&page, &run);
    assert!(trouble.is_empty(), "{}", trouble.join("\n"));
    let html = fs::read_to_string(run.join("report.html")).unwrap();
    // The note leads the page, before the machine card's title, and every plot has its badge.
    let note = html.find("<blockquote>").expect("mock note");
    assert!(note < html.find("<h1>").unwrap(), "{html}");
    assert!(
        html[note..].starts_with("<blockquote>\n<p><strong>MOCK DATA — not measured.</strong>"),
        "{html}"
    );
    let svgs = page.seen["svgs"].as_array().unwrap();
    assert_eq!(svgs.len(), 3, "{svgs:?}");
    for s in svgs {
        let src = s["src"].as_str().unwrap();
        let svg = fs::read_to_string(run.join(src)).unwrap();
        assert!(svg.contains("MOCK DATA"), "{src} has no badge");
    }
}

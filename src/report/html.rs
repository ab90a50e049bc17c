//! `report.html`: the run's report as one self-contained page, for reading in a browser straight
//! from a cluster file system (no server, no network, nothing beside it needed).
//!
//! The page is `report.md` converted, not a second renderer: [`render`] runs the markdown through
//! pulldown-cmark (CommonMark with tables), so the tables, warnings, mock-data note and failed
//! points say exactly what report.md says. Two things change on the way:
//!
//! * every image `![title](plots/<stem>.png)` becomes the plot's SVG (`plots/<stem>.svg`) inline,
//!   so the figures travel inside the file;
//! * raw HTML in the markdown (which could only come from a study name, a parameter or a failure
//!   reason) is shown as text, never interpreted.
//!
//! A machine card (host, CPU, cores, SIMD, clock, peak, memory, caches) follows the title. The page
//! has no script, no stylesheet link and no `src` attribute: what it shows is what the file holds.
//! Links to the run's other files (`summary.csv`, a plot's SVG) stay relative and work when the
//! page is opened in its run directory.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use pulldown_cmark::{html, CowStr, Event, HeadingLevel, Options, Parser, Tag, TagEnd};

use crate::files::write_atomic;
use crate::machine::Machine;
use crate::results::RunDir;

/// The file name beside `report.md`.
pub const FILE: &str = "report.html";

/// The page's own style: readable tables, plots that shrink to the window, warnings that stand out.
const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.45;margin:0;color:#1b1b1b;background:#fff}
main{max-width:1200px;margin:0 auto;padding:1rem 1.5rem 3rem}
h1{font-size:1.6rem}h2{margin-top:2.2rem;border-bottom:1px solid #ccc;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.8rem 0;font-size:.9rem;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:.25rem .5rem;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
code{font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:.9em}
blockquote{margin:1rem 0;padding:.6rem 1rem;border-left:6px solid #d55e00;background:#fff3e8}
.plot{display:block;margin:1rem 0}.plot svg{max-width:100%;height:auto;border:1px solid #ddd}
.machine{margin:.8rem 0 1.2rem;padding:.6rem 1rem;border:1px solid #ccc;border-radius:6px;background:#f7f9fc}
.machine table{display:table;margin:0;font-size:.9rem}.machine th{text-align:left;background:none;border:none;padding:.1rem 1rem .1rem 0}
.machine td{border:none;padding:.1rem 0;background:none!important}
.missing{color:#a00;font-weight:bold}
";

/// Write `report.html` into the run directory from `markdown` (the text just written to
/// `report.md`), inlining the SVGs of `run`'s plots; returns its path. Written atomically, like
/// every report file. A plot that report.md shows but whose SVG cannot be read is marked in the
/// page, and the call then fails naming the file (after the page is written).
pub fn write(run: &RunDir, markdown: &str, machine: &Machine) -> Result<PathBuf> {
    let path = run.root.join(FILE);
    let page = render(markdown, &run.root, machine);
    write_atomic(&path, page.html.as_bytes())?;
    if !page.missing.is_empty() {
        bail!(
            "{} shows {} plot(s) as missing: {}; run `scalelab report {}` to draw them again",
            path.display(),
            page.missing.len(),
            page.missing.join("; "),
            run.root.display()
        );
    }
    Ok(path)
}

/// A rendered page and the plots it could not inline.
pub struct Page {
    /// The whole HTML document.
    pub html: String,
    /// One "path: reason" per plot whose SVG could not be inlined.
    pub missing: Vec<String>,
}

/// Render the page: `markdown` converted, images under `plots/` replaced by the SVG files found
/// relative to `root`, the machine card after the first heading.
pub fn render(markdown: &str, root: &Path, machine: &Machine) -> Page {
    let mut missing = Vec::new();
    let title = markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap_or("scalelab report")
        .trim()
        .to_string();
    let card = machine_card(machine);
    let events = Parser::new_ext(
        markdown,
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH,
    );
    let mut out: Vec<Event<'_>> = Vec::new();
    let mut image: Option<(String, String)> = None; // (destination, alt text so far)
    let mut card_done = false;
    for ev in events {
        if let Some((_, alt)) = image.as_mut() {
            match ev {
                Event::End(TagEnd::Image) => {
                    let (dest, alt) = image.take().unwrap_or_default();
                    out.push(Event::Html(figure(&dest, &alt, root, &mut missing).into()));
                }
                Event::Text(t) | Event::Code(t) => alt.push_str(&t),
                _ => {}
            }
            continue;
        }
        match ev {
            Event::Start(Tag::Image { dest_url, .. }) => {
                image = Some((dest_url.to_string(), String::new()));
            }
            // Raw HTML can only come from text the run recorded: show it, never interpret it.
            Event::Html(t) | Event::InlineHtml(t) => out.push(Event::Text(t)),
            Event::End(TagEnd::Heading(HeadingLevel::H1)) if !card_done => {
                out.push(ev);
                out.push(Event::Html(CowStr::from(card.clone())));
                card_done = true;
            }
            Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }) => out.push(Event::Start(Tag::Link {
                link_type,
                dest_url: safe_href(&dest_url).into(),
                title,
                id,
            })),
            other => out.push(other),
        }
    }
    let mut body = String::new();
    if !card_done {
        body.push_str(&card);
    }
    html::push_html(&mut body, out.into_iter());
    let mut page = String::with_capacity(body.len() + STYLE.len() + 512);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"scalelab {}\">\n<title>{}</title>\n\
         <style>\n{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&title)
    );
    Page {
        html: page,
        missing,
    }
}

/// A link target kept only when it is a plain relative path or a web address: a `javascript:`
/// (or any other scheme) link in a recorded text becomes inert.
fn safe_href(dest: &str) -> String {
    let scheme = dest
        .split_once(':')
        .map(|(s, _)| s)
        .filter(|s| !s.contains('/'));
    match scheme {
        None => dest.to_string(),
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => {
            dest.to_string()
        }
        Some(_) => "#".to_string(),
    }
}

/// The inline figure for an image of report.md: the SVG beside the PNG it names, with the title
/// as its accessible name. A plot that cannot be inlined is shown as a visible note (and recorded
/// in `missing`), never as a broken image.
fn figure(dest: &str, alt: &str, root: &Path, missing: &mut Vec<String>) -> String {
    let svg_rel = match dest.strip_suffix(".png") {
        Some(stem) => format!("{stem}.svg"),
        None => dest.to_string(),
    };
    let inside_run = svg_rel.starts_with("plots/")
        && !svg_rel.contains("..")
        && svg_rel.ends_with(".svg")
        && !svg_rel.contains(':');
    let svg = if inside_run {
        read_svg(&root.join(&svg_rel))
    } else {
        Err(anyhow::anyhow!(
            "not a plot of this run (only plots/*.svg are inlined)"
        ))
    };
    match svg {
        Ok(svg) => format!(
            "<span class=\"plot\" role=\"img\" aria-label=\"{}\" data-src=\"{}\">{svg}</span>",
            escape(alt),
            escape(&svg_rel)
        ),
        Err(e) => {
            let why = format!("{svg_rel}: {e:#}");
            let note = format!(
                "<span class=\"missing\">Plot missing: {} ({})</span>",
                escape(alt),
                escape(&why)
            );
            missing.push(why);
            note
        }
    }
}

/// One plot's SVG as an element to place in HTML: the XML prolog dropped, and refused if a tag
/// holds anything that could run or load (scripts, foreign objects, event handlers, links), which a
/// plot of ours never does.
fn read_svg(path: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut svg = text.trim_start();
    while svg.starts_with("<?") || svg.starts_with("<!") {
        svg = match svg.find('>') {
            Some(end) => svg[end + 1..].trim_start(),
            None => "",
        };
    }
    let svg = svg.trim_end();
    if !svg.starts_with("<svg") || !svg.ends_with("</svg>") {
        bail!("{} is not an SVG document", path.display());
    }
    if let Some(bad) = unsafe_markup(svg) {
        bail!(
            "{} holds `{bad}`, which a scalelab plot never does; not inlined",
            path.display()
        );
    }
    Ok(svg.to_string())
}

/// The first thing in `svg`'s tags that could run code or load something: a `script` or
/// `foreignObject` element, an `on…=` event handler, an `href`, a `url(` or `javascript:`. Only
/// tags are searched: text between them has its `<` escaped, so words such as "on 2 threads" or a
/// parameter `onehot=1` in a legend are never mistaken for markup.
fn unsafe_markup(svg: &str) -> Option<String> {
    for piece in svg.split('<').skip(1) {
        let tag = piece
            .split('>')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let name = tag
            .trim_start_matches('/')
            .split(|c: char| c.is_whitespace() || c == '/')
            .next()
            .unwrap_or_default();
        if name == "script" || name == "foreignobject" {
            return Some(format!("<{name}>"));
        }
        let mut words = tag.split(|c: char| c.is_whitespace());
        words.next(); // the element name
        for attr in words {
            let key = attr.split('=').next().unwrap_or_default();
            if (key.starts_with("on") && attr.contains('=')) || key.ends_with("href") {
                return Some(format!("{key}="));
            }
        }
        if tag.contains("javascript:") || tag.contains("url(") {
            return Some(if tag.contains("url(") {
                "url(".into()
            } else {
                "javascript:".into()
            });
        }
    }
    None
}

/// The machine card: what ran the report's points, in a small table after the title.
fn machine_card(m: &Machine) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    let or_unknown = |s: &str| {
        if s.is_empty() {
            "unknown".to_string()
        } else {
            s.to_string()
        }
    };
    rows.push(("host", or_unknown(&m.host)));
    rows.push(("CPU", or_unknown(&m.cpu_model)));
    rows.push(("logical CPUs", m.cores.to_string()));
    if !m.simd.is_empty() {
        rows.push((
            "SIMD",
            format!(
                "{} ({} f64 lanes, {} FMA unit(s){})",
                m.simd,
                m.simd_f64_lanes,
                m.fma_units,
                if m.fma_measured {
                    ", measured"
                } else {
                    ", assumed"
                }
            ),
        ));
    }
    if m.clock_ghz > 0.0 || m.nominal_ghz > 0.0 {
        rows.push((
            "clock",
            if m.clock_ghz > 0.0 {
                format!("{:.2} GHz measured", m.clock_ghz)
            } else {
                format!("{:.2} GHz nominal", m.nominal_ghz)
            },
        ));
    }
    if m.peak_gflops_per_core > 0.0 {
        rows.push((
            "peak per core",
            format!(
                "{:.1} GFLOP/s f64 ({})",
                m.peak_gflops_per_core,
                if m.peak_source.is_empty() {
                    "source not recorded"
                } else {
                    m.peak_source.as_str()
                }
            ),
        ));
    }
    if m.memory_bytes > 0 {
        rows.push((
            "memory",
            format!("{:.1} GiB", m.memory_bytes as f64 / (1u64 << 30) as f64),
        ));
    }
    if !m.caches.is_empty() {
        let caches: Vec<String> = m
            .caches
            .iter()
            .map(|(level, bytes)| format!("{level} {}", crate::units::bytes_exact(*bytes as f64)))
            .collect();
        rows.push(("caches", caches.join(", ")));
    }
    let mut card = String::from("<section class=\"machine\" aria-label=\"machine\">\n<table>\n");
    for (k, v) in rows {
        let _ = writeln!(
            card,
            "<tr><th scope=\"row\">{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    card.push_str("</table>\n</section>\n");
    card
}

/// Text and attribute values for HTML: the five characters that could end an element or an
/// attribute.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machine() -> Machine {
        Machine {
            host: "node<1>".into(),
            cpu_model: "Test CPU & Co".into(),
            cores: 4,
            simd: "avx2".into(),
            simd_f64_lanes: 4,
            fma_units: 2,
            clock_ghz: 3.0,
            peak_gflops_per_core: 48.0,
            ..Machine::default()
        }
    }

    const SVG: &str = "<?xml version=\"1.0\"?>\n<svg width=\"640\" height=\"400\" viewBox=\"0 0 640 400\" xmlns=\"http://www.w3.org/2000/svg\">\n<text x=\"1\" y=\"2\">speedup on 2 threads</text>\n</svg>\n";

    #[test]
    fn plots_are_inlined_and_recorded_text_is_escaped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plots")).unwrap();
        std::fs::write(dir.path().join("plots/s1-speedup.svg"), SVG).unwrap();
        let md = "# exp: scaling report\n\n\
                  ## Warnings\n\n- point failed: <script>alert(1)</script> & [x](javascript:alert(2))\n\n\
                  | point | GFLOP/s |\n| --- | ---: |\n| `abc` <b>x</b> | 1.25 |\n\n\
                  ![Speedup <1>](plots/s1-speedup.png)\n\n[Speedup (SVG)](plots/s1-speedup.svg)\n";
        let page = render(md, dir.path(), &machine());
        let h = &page.html;
        assert!(page.missing.is_empty(), "{:?}", page.missing);
        assert!(h.starts_with("<!DOCTYPE html>"), "{h}");
        assert!(h.contains("<title>exp: scaling report</title>"), "{h}");
        // The machine card follows the title, with its text escaped.
        let card = h.find("<section class=\"machine\"").unwrap();
        assert!(h.find("</h1>").unwrap() < card, "{h}");
        assert!(h.contains("<td>node&lt;1&gt;</td>"), "{h}");
        assert!(h.contains("<td>Test CPU &amp; Co</td>"), "{h}");
        // Recorded text never becomes markup or a script link.
        assert!(!h.contains("<script"), "{h}");
        assert!(h.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{h}");
        assert!(h.contains("&lt;b&gt;x&lt;/b&gt;"), "{h}");
        assert!(!h.contains("javascript:"), "{h}");
        // The table survives as a table, the plot is inline without its XML prolog.
        assert!(
            h.contains("<td style=\"text-align: right\">1.25</td>"),
            "{h}"
        );
        assert!(h.contains(
            "<span class=\"plot\" role=\"img\" aria-label=\"Speedup &lt;1&gt;\" data-src=\"plots/s1-speedup.svg\"><svg width=\"640\""
        ), "{h}");
        assert!(!h.contains("<?xml"), "{h}");
        assert!(!h.contains(" src="), "{h}");
        assert!(
            h.contains("<a href=\"plots/s1-speedup.svg\">Speedup (SVG)</a>"),
            "{h}"
        );
    }

    #[test]
    fn a_missing_or_unsafe_svg_is_named_not_inlined() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plots")).unwrap();
        std::fs::write(
            dir.path().join("plots/bad.svg"),
            "<svg onload=\"alert(1)\" width=\"1\" height=\"1\"></svg>",
        )
        .unwrap();
        let md =
            "# e\n\n![Gone](plots/gone.png)\n\n![Bad](plots/bad.png)\n\n![Far](../other/x.png)\n";
        let page = render(md, dir.path(), &machine());
        assert_eq!(page.missing.len(), 3, "{:?}", page.missing);
        assert!(
            page.missing[0].starts_with("plots/gone.svg: reading "),
            "{:?}",
            page.missing
        );
        assert!(
            page.missing[1].contains("holds `onload=`"),
            "{:?}",
            page.missing
        );
        assert!(
            page.missing[2].contains("not a plot of this run"),
            "{:?}",
            page.missing
        );
        // Named as text, never placed as an element.
        assert!(!page.html.contains("<svg onload"), "{}", page.html);
        assert!(page
            .html
            .contains("<span class=\"missing\">Plot missing: Gone (plots/gone.svg: reading "));

        // write() still leaves the page, then fails naming it and the fix.
        let run = RunDir {
            root: dir.path().to_path_buf(),
        };
        let e = write(&run, md, &machine()).unwrap_err().to_string();
        let path = dir.path().join(FILE);
        assert!(path.exists());
        assert!(
            e.starts_with(&format!(
                "{} shows 3 plot(s) as missing: plots/gone.svg",
                path.display()
            )),
            "{e}"
        );
        assert!(
            e.ends_with(&format!(
                "run `scalelab report {}` to draw them again",
                dir.path().display()
            )),
            "{e}"
        );
    }

    #[test]
    fn only_markup_that_runs_or_loads_is_refused_in_an_svg() {
        let ok = "<svg width=\"1\"><text x=\"1\" opacity=\"1\">on 2 threads, onehot=1 href=x</text></svg>";
        assert_eq!(unsafe_markup(ok), None);
        for (svg, bad) in [
            ("<svg onload=\"x()\"></svg>", "onload="),
            ("<svg><script>x()</script></svg>", "<script>"),
            (
                "<svg><foreignObject></foreignObject></svg>",
                "<foreignobject>",
            ),
            ("<svg><image href=\"a.png\"/></svg>", "href="),
            ("<svg><use xlink:href=\"#a\"/></svg>", "xlink:href="),
            ("<svg><rect style=\"fill:url(#g)\"/></svg>", "url("),
        ] {
            assert_eq!(unsafe_markup(svg).as_deref(), Some(bad), "{svg}");
        }
    }
}

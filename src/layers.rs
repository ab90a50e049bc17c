//! The layering of the top-level modules, checked: each module may use only modules of lower
//! layers, so there is no import cycle among them and a newcomer can read the tree bottom-up
//! (docs/ARCHITECTURE.md, "Layers"). Test code is exempt (a module's tests may build fixtures
//! with the report's test support, say); production code is read up to each file's first
//! `#[cfg(test)]`, and test files (`tests.rs`, `*_tests.rs`, `test_support.rs`) are skipped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The top-level modules from the bottom up. A module uses only modules of earlier rows.
const LAYERS: &[&[&str]] = &[
    // Leaves: terminal output, values, statistics, exit codes, number formatting, atomic file
    // writes, resource axes, /proc load sampling, GPU facts.
    &[
        "output",
        "value",
        "stats",
        "exit",
        "units",
        "files",
        "resources",
        "load",
        "device",
    ],
    &["machine"],
    &["workload"],
    &["manifest"],
    &["plan"],
    &["results"],
    &["point_runner"],
    &["executor", "calibrate"],
    &["provenance"],
    &["report"],
    &["slurm"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|row| row.contains(&module))
}

/// Every `.rs` file of a top-level module: `src/<m>.rs` and everything under `src/<m>/`.
fn files_of(src: &Path, module: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level modules named in `text` as `crate::<name>` (or `$crate::<name>`), with the line,
/// outside comments and before the first `#[cfg(test)]`.
fn uses(text: &str) -> Vec<(usize, String)> {
    let production = text.split("#[cfg(test)]").next().unwrap_or_default();
    let mut found = Vec::new();
    for (i, line) in production.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((i + 1, name));
        }
    }
    found
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let rust = path.is_dir() || path.extension().is_some_and(|e| e == "rs");
        if rust && !["main", "lib", "layers"].contains(&name.as_str()) {
            modules.push(name);
        }
    }
    let unplaced: Vec<&String> = modules.iter().filter(|m| layer_of(m).is_none()).collect();
    assert!(
        unplaced.is_empty(),
        "src/layers.rs: {unplaced:?} have no layer; add each to LAYERS above every module it uses"
    );

    let mut wrong: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for module in &modules {
        let own = layer_of(module).unwrap();
        for file in files_of(&src, module) {
            let name = file.file_name().unwrap().to_string_lossy();
            if name.ends_with("tests.rs") || name == "test_support.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for (line, used) in uses(&text) {
                let Some(theirs) = layer_of(&used) else {
                    continue;
                };
                if used != *module && theirs >= own {
                    wrong
                        .entry(format!("{module} -> {used}"))
                        .or_default()
                        .push(format!(
                            "{}:{line}",
                            file.strip_prefix(src.parent().unwrap()).unwrap().display()
                        ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "modules that use a module of their own layer or above (move the item down, or change \
         LAYERS and docs/ARCHITECTURE.md if the layering itself should change): {wrong:#?}"
    );
}

#[test]
fn the_scan_finds_uses_outside_comments_and_tests_only() {
    let text =
        "use crate::plan::Point;\n// crate::report in a comment\nlet x = $crate::exit::BAD;\n\
                #[cfg(test)]\nmod tests { use crate::cli; }\n";
    assert_eq!(
        uses(text),
        vec![(1, "plan".to_string()), (3, "exit".to_string())]
    );
}

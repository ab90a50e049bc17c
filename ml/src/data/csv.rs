//! Reading a user's CSV file into a [`Dataset`]: a header row, numeric feature columns and one target
//! column chosen by name.
//!
//! Every problem is an error that names the file, the line (1-based, the header is line 1) and the
//! column, so a bad cell can be found and fixed without guessing. Parsing uses the `csv` crate (quoted
//! fields, `\r\n` endings); the checks on top are ours.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Dataset, Matrix, Target};

/// What kind of target a CSV file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Classification when any target value is not a number, or when all are integers with at most
    /// [`AUTO_MAX_CLASSES`] distinct values; regression otherwise.
    Auto,
    /// Each distinct target text is a class (numbers ordered numerically, other texts alphabetically).
    Classification,
    /// The target must be numeric.
    Regression,
}

/// The most distinct integer targets [`Task::Auto`] still reads as classes.
pub const AUTO_MAX_CLASSES: usize = 20;

/// The largest CSV file [`load_csv`] reads: the whole text is held in memory while it is parsed,
/// beside the matrix it becomes, and the datasets of the course are megabytes. A bound also keeps a
/// mistaken path (`/dev/zero`, a log that keeps growing) from reading until memory runs out.
pub const MAX_CSV_BYTES: u64 = 1 << 30;

/// Load `path` with the target column `target`. The dataset is named after the file's stem.
///
/// Only a regular file of at most `MAX_CSV_BYTES` (1 GiB) is read: a device or a pipe (which could block
/// or never end) is refused by name.
pub fn load_csv(path: &Path, target: &str, task: Task) -> Result<Dataset, String> {
    use std::io::Read;
    let cannot = |e: std::io::Error| format!("cannot read CSV file {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (a folder, device or pipe); give the path of a CSV file",
            path.display()
        ));
    }
    let too_big = || {
        format!(
            "{} is larger than {} GiB, the most a CSV dataset may hold; sample it down, or use \
             dataset = \"synthetic\" with a `size`",
            path.display(),
            MAX_CSV_BYTES >> 30
        )
    };
    if meta.len() > MAX_CSV_BYTES {
        return Err(too_big());
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_CSV_BYTES + 1).read_to_string(&mut text))
        .map_err(cannot)?;
    if text.len() as u64 > MAX_CSV_BYTES {
        return Err(too_big());
    }
    let name = path
        .file_stem()
        .map_or_else(|| "csv".to_string(), |s| s.to_string_lossy().into_owned());
    parse_csv(&name, &path.display().to_string(), &text, target, task)
}

/// Parse CSV `text` into a dataset named `name`; `origin` (a path) starts every error message.
pub fn parse_csv(
    name: &str,
    origin: &str,
    text: &str,
    target: &str,
    task: Task,
) -> Result<Dataset, String> {
    // A byte-order mark (spreadsheet exports) is not part of the first column's name.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = read_header(&mut reader, origin)?;
    let Some(target_col) = header.iter().position(|h| h == target) else {
        return Err(format!(
            "{origin}: no column `{target}` to use as the target; the columns are: {}",
            header.join(", ")
        ));
    };
    let feature_names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(c, _)| c != target_col)
        .map(|(_, h)| h.clone())
        .collect();
    let cells = read_rows(&mut reader, origin, &header, target_col)?;
    if cells.targets.is_empty() {
        return Err(format!("{origin}: the file has a header but no data rows"));
    }
    let column = (target_col, target);
    let y = read_target(origin, &cells.targets, &cells.target_lines, column, task)?;
    let rows = cells.targets.len();
    let x = Matrix::new(rows, feature_names.len(), cells.values)?;
    Dataset::new(name, x, y, feature_names)
}

/// The header row: the column names (refused when the file is empty).
fn read_header(reader: &mut ::csv::Reader<&[u8]>, origin: &str) -> Result<Vec<String>, String> {
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{origin}: cannot read the header row: {e}"))?
        .iter()
        .map(str::to_string)
        .collect();
    if header.is_empty() || header.iter().all(String::is_empty) {
        return Err(format!(
            "{origin}: the file is empty; the first line must name the columns"
        ));
    }
    Ok(header)
}

/// The data rows as read: feature values row-major, and each row's target text and line.
struct Cells {
    values: Vec<f64>,
    targets: Vec<String>,
    target_lines: Vec<u64>,
}

/// Read every data row (blank lines skipped): each feature cell must be a finite number and the
/// target cell (column `target_col`) must not be empty; errors name the line and column.
fn read_rows(
    reader: &mut ::csv::Reader<&[u8]>,
    origin: &str,
    header: &[String],
    target_col: usize,
) -> Result<Cells, String> {
    let mut values = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut target_lines: Vec<u64> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("{origin}: {e}"))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0) == Some("") {
            continue; // a blank line
        }
        if record.len() != header.len() {
            return Err(format!(
                "{origin}: line {line} has {} fields but the header names {} columns",
                record.len(),
                header.len()
            ));
        }
        for (c, field) in record.iter().enumerate() {
            if c == target_col {
                if field.is_empty() {
                    return Err(format!(
                        "{origin}: line {line}, column {} (`{}`): the target is empty",
                        c + 1,
                        header[c]
                    ));
                }
                targets.push(field.to_string());
                target_lines.push(line);
                continue;
            }
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => values.push(v),
                _ => {
                    return Err(format!(
                    "{origin}: line {line}, column {} (`{}`): `{field}` is not a finite number; \
                         feature columns must be numeric (drop or encode this column)",
                    c + 1,
                    header[c]
                ))
                }
            }
        }
    }
    Ok(Cells {
        values,
        targets,
        target_lines,
    })
}

/// The target from its texts under `task`'s rule (`Auto`: classes when any text is not a number,
/// or when all are integers with at most [`AUTO_MAX_CLASSES`] distinct values). `column` is the
/// target's index and name, for the error on a non-numeric regression target.
fn read_target(
    origin: &str,
    targets: &[String],
    target_lines: &[u64],
    (target_col, target): (usize, &str),
    task: Task,
) -> Result<Target, String> {
    let numeric: Option<Vec<f64>> = targets
        .iter()
        .map(|t| t.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    let classify = match task {
        Task::Classification => true,
        Task::Regression => false,
        Task::Auto => match &numeric {
            None => true,
            Some(v) => {
                v.iter().all(|x| x.fract() == 0.0)
                    && v.iter().map(|x| x.to_bits()).collect::<BTreeSet<_>>().len()
                        <= AUTO_MAX_CLASSES
            }
        },
    };
    if classify {
        return Ok(class_target(targets, numeric.as_deref()));
    }
    match numeric {
        Some(v) => Ok(Target::Values(v)),
        None => {
            let k = targets
                .iter()
                .position(|t| t.parse::<f64>().map_or(true, |v| !v.is_finite()))
                .unwrap_or(0);
            Err(format!(
                "{origin}: line {}, column {} (`{target}`): `{}` is not a number, but a \
                 regression target must be numeric (or load the file as classification)",
                target_lines[k],
                target_col + 1,
                targets[k]
            ))
        }
    }
}

/// Classes from target texts: numbers in numeric order, otherwise alphabetical.
fn class_target(texts: &[String], numeric: Option<&[f64]>) -> Target {
    let mut names: Vec<String> = texts
        .iter()
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if let Some(v) = numeric {
        let mut pairs: Vec<(f64, String)> =
            v.iter().zip(texts).map(|(&x, t)| (x, t.clone())).collect();
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        pairs.dedup_by(|a, b| a.1 == b.1);
        names = pairs.into_iter().map(|p| p.1).collect();
    }
    let labels = texts
        .iter()
        .map(|t| names.iter().position(|n| n == t).unwrap_or(0) as u32)
        .collect();
    Target::Classes { labels, names }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_and_folders_are_refused_by_name_without_reading_them() {
        for path in ["/dev/zero", "/tmp"] {
            let err = load_csv(Path::new(path), "y", Task::Auto).unwrap_err();
            assert_eq!(
                err,
                format!(
                    "{path} is not a regular file (a folder, device or pipe); give the path of a CSV file"
                )
            );
        }
    }

    #[test]
    fn reads_features_and_string_classes() {
        let d = parse_csv(
            "t",
            "t.csv",
            "a,label,b\n1,yes,2\n3,no,4\n",
            "label",
            Task::Auto,
        )
        .unwrap();
        assert_eq!(d.feature_names, ["a", "b"]);
        assert_eq!(d.x.as_slice(), &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(
            d.y,
            Target::Classes {
                labels: vec![1, 0],
                names: vec!["no".into(), "yes".into()]
            }
        );
    }

    #[test]
    fn numeric_classes_sort_numerically_and_many_values_are_regression() {
        let d = parse_csv("t", "t.csv", "x,y\n1,10\n2,9\n3,10\n", "y", Task::Auto).unwrap();
        assert_eq!(d.y.n_classes(), 2);
        assert_eq!(d.y.labels().unwrap(), &[1, 0, 1]);
        let text: String = std::iter::once("x,y\n".to_string())
            .chain((0..30).map(|i| format!("{i},{}\n", i * 7)))
            .collect();
        let d = parse_csv("t", "t.csv", &text, "y", Task::Auto).unwrap();
        assert!(matches!(d.y, Target::Values(_)));
    }

    #[test]
    fn loads_a_file_named_after_its_stem() {
        let dir = std::env::temp_dir().join(format!("scalelab-ml-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("plants.csv");
        std::fs::write(&path, "height,kind\n1.5,tree\n0.2,herb\n").unwrap();
        let d = load_csv(&path, "kind", Task::Auto).unwrap();
        assert_eq!(
            (d.name.as_str(), d.rows(), d.y.n_classes()),
            ("plants", 2, 2)
        );
        let err = load_csv(&path, "Kind", Task::Auto).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: no column `Kind` to use as the target; the columns are: height, kind",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
        let missing = dir.join("gone.csv");
        assert!(load_csv(&missing, "y", Task::Auto)
            .unwrap_err()
            .starts_with(&format!("cannot read CSV file {}: ", missing.display())));
    }

    #[test]
    fn a_byte_order_mark_and_blank_lines_are_ignored() {
        let d = parse_csv("t", "t.csv", "\u{feff}y,a\n1,2\n\n0,3\n", "y", Task::Auto).unwrap();
        assert_eq!(d.rows(), 2);
        assert_eq!(d.feature_names, ["a"]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse_csv("t", "t.csv", "a,b,y\n1,2,0\n1,x,1\n", "y", Task::Auto).unwrap_err();
        assert_eq!(
            err,
            "t.csv: line 3, column 2 (`b`): `x` is not a finite number; feature columns must be \
             numeric (drop or encode this column)"
        );
        let err = parse_csv("t", "t.csv", "a,b,y\n1,2,0\n1,2\n", "y", Task::Auto).unwrap_err();
        assert_eq!(
            err,
            "t.csv: line 3 has 2 fields but the header names 3 columns"
        );
        let err = parse_csv("t", "t.csv", "a,b,y\n1,2,0\n", "label", Task::Auto).unwrap_err();
        assert_eq!(
            err,
            "t.csv: no column `label` to use as the target; the columns are: a, b, y"
        );
        let err = parse_csv("t", "t.csv", "a,y\n1,0\n2,high\n", "y", Task::Regression).unwrap_err();
        assert_eq!(
            err,
            "t.csv: line 3, column 2 (`y`): `high` is not a number, but a regression target must \
             be numeric (or load the file as classification)"
        );
        let err = parse_csv("t", "t.csv", "a,y\n", "y", Task::Auto).unwrap_err();
        assert_eq!(err, "t.csv: the file has a header but no data rows");
    }
}

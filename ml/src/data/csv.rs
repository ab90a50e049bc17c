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
fn read_header<R: std::io::Read>(
    reader: &mut ::csv::Reader<R>,
    origin: &str,
) -> Result<Vec<String>, String> {
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
fn read_rows<R: std::io::Read>(
    reader: &mut ::csv::Reader<R>,
    origin: &str,
    header: &[String],
    target_col: usize,
) -> Result<Cells, String> {
    let mut values = Vec::new();
    let mut targets: Vec<String> = Vec::new();
    let mut target_lines: Vec<u64> = Vec::new();
    visit_rows(
        reader,
        origin,
        header,
        target_col,
        |_, line, target, features| {
            targets.push(target.to_string());
            target_lines.push(line);
            values.extend(features);
        },
    )?;
    Ok(Cells {
        values,
        targets,
        target_lines,
    })
}

/// Check every data row (blank lines skipped) as [`read_rows`] does, and hand each to `row`: its
/// index among the data rows, its line, its target text and its feature values (column order,
/// target left out). Streaming: nothing is kept here.
fn visit_rows<R: std::io::Read>(
    reader: &mut ::csv::Reader<R>,
    origin: &str,
    header: &[String],
    target_col: usize,
    mut row: impl FnMut(usize, u64, &str, &[f64]),
) -> Result<(), String> {
    let mut index = 0;
    let mut features = Vec::with_capacity(header.len());
    let mut record = ::csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(format!("{origin}: {e}")),
        }
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
        features.clear();
        for (c, field) in record.iter().enumerate() {
            if c == target_col {
                if field.is_empty() {
                    return Err(format!(
                        "{origin}: line {line}, column {} (`{}`): the target is empty",
                        c + 1,
                        header[c]
                    ));
                }
                continue;
            }
            match field.parse::<f64>() {
                Ok(v) if v.is_finite() => features.push(v),
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
        row(index, line, &record[target_col], &features);
        index += 1;
    }
    Ok(())
}

/// A CSV file's target column read whole and its shape, without its feature values: what a
/// process that holds only some rows needs to agree with the others on the classes (or values),
/// the train/test split and the shard boundaries ([`scan_csv`]).
#[derive(Clone, Debug)]
pub struct CsvScan {
    /// Every row's target, as [`load_csv`] reads it, over a matrix of no columns.
    pub targets: Dataset,
    /// The feature columns' names (the header less the target).
    pub feature_names: Vec<String>,
}

/// Stream `path` once and keep only its target column: every cell is checked as [`load_csv`]
/// checks it (the same errors, so every process refuses the same file the same way), the target
/// read under `task` exactly as [`load_csv`] reads it, and no feature value is kept. The file
/// is never held whole, so [`MAX_CSV_BYTES`] does not apply; it must be a regular file.
pub fn scan_csv(path: &Path, target: &str, task: Task) -> Result<CsvScan, String> {
    scan_csv_with(path, target, task, SCAN_MAX_DISTINCT)
}

/// The most distinct target texts [`scan_csv`] keeps: it stores each row's target as an index
/// into them (4 bytes a row) and its number (8), not as text. A column with more is read only as
/// numbers (regression), which is what [`Task::Auto`] makes of it unless its numbers are at most
/// [`AUTO_MAX_CLASSES`] integers written in more than this many ways.
pub const SCAN_MAX_DISTINCT: usize = 1 << 16;

/// [`scan_csv`] keeping at most `cap` distinct target texts.
fn scan_csv_with(path: &Path, target: &str, task: Task, cap: usize) -> Result<CsvScan, String> {
    let (mut reader, origin) = open_stream(path)?;
    let header = read_header(&mut reader, &origin)?;
    let Some(target_col) = header.iter().position(|h| h == target) else {
        return Err(format!(
            "{origin}: no column `{target}` to use as the target; the columns are: {}",
            header.join(", ")
        ));
    };
    let mut column = TargetColumn::new(cap);
    visit_rows(
        &mut reader,
        &origin,
        &header,
        target_col,
        |_, line, t, _| column.push(t, line),
    )?;
    let rows = column.rows;
    if rows == 0 {
        return Err(format!("{origin}: the file has a header but no data rows"));
    }
    let y = column.finish(&origin, (target_col, target), task)?;
    let feature_names: Vec<String> = header
        .iter()
        .enumerate()
        .filter(|&(c, _)| c != target_col)
        .map(|(_, h)| h.clone())
        .collect();
    Ok(CsvScan {
        targets: Dataset::new(stem(path), Matrix::new(rows, 0, Vec::new())?, y, Vec::new())?,
        feature_names,
    })
}

/// A target column as [`scan_csv`] keeps it: each row's index into the distinct texts (while
/// there are at most `cap`) and its number (while every text is one), never the row's text.
/// [`read_target`] applied to the distinct texts in first-seen order decides exactly as it does
/// on every row's text: the same numbers, integers and distinct values, the same class names,
/// and the first text that is not a number is the first row's that is not.
struct TargetColumn {
    cap: usize,
    rows: usize,
    ids: Vec<u32>,
    distinct: Vec<String>,
    first_line: Vec<u64>,
    index: std::collections::HashMap<String, u32>,
    /// False once more than `cap` distinct texts were seen (`ids` and `distinct` dropped).
    interned: bool,
    values: Vec<f64>,
    /// Every text so far a finite number (else `values` dropped, `first_bad` its row).
    numeric: bool,
    first_bad: Option<(u64, String)>,
    /// Every number an integer, and the distinct numbers (up to one past AUTO_MAX_CLASSES).
    integers: bool,
    few: BTreeSet<u64>,
}

impl TargetColumn {
    fn new(cap: usize) -> TargetColumn {
        TargetColumn {
            cap,
            rows: 0,
            ids: Vec::new(),
            distinct: Vec::new(),
            first_line: Vec::new(),
            index: std::collections::HashMap::new(),
            interned: true,
            values: Vec::new(),
            numeric: true,
            first_bad: None,
            integers: true,
            few: BTreeSet::new(),
        }
    }

    fn push(&mut self, text: &str, line: u64) {
        self.rows += 1;
        if self.numeric {
            match text.parse::<f64>().ok().filter(|v| v.is_finite()) {
                Some(v) => {
                    self.values.push(v);
                    self.integers &= v.fract() == 0.0;
                    if self.few.len() <= AUTO_MAX_CLASSES {
                        self.few.insert(v.to_bits());
                    }
                }
                None => {
                    self.numeric = false;
                    self.values = Vec::new();
                    self.first_bad = Some((line, text.to_string()));
                }
            }
        }
        if self.interned {
            let id = match self.index.get(text) {
                Some(&id) => id,
                None if self.distinct.len() == self.cap => {
                    self.interned = false;
                    self.ids = Vec::new();
                    self.distinct = Vec::new();
                    self.first_line = Vec::new();
                    self.index = std::collections::HashMap::new();
                    return;
                }
                None => {
                    let id = self.distinct.len() as u32;
                    self.index.insert(text.to_string(), id);
                    self.distinct.push(text.to_string());
                    self.first_line.push(line);
                    id
                }
            };
            self.ids.push(id);
        }
    }

    /// The target every row's text gives under `task`, as [`read_target`] reads it.
    fn finish(self, origin: &str, column: (usize, &str), task: Task) -> Result<Target, String> {
        if self.interned {
            return match read_target(origin, &self.distinct, &self.first_line, column, task)? {
                Target::Classes { labels, names } => Ok(Target::Classes {
                    labels: self.ids.iter().map(|&i| labels[i as usize]).collect(),
                    names,
                }),
                Target::Values(_) => Ok(Target::Values(self.values)),
            };
        }
        let classify = match task {
            Task::Classification => true,
            Task::Regression => false,
            Task::Auto => !self.numeric || (self.integers && self.few.len() <= AUTO_MAX_CLASSES),
        };
        let (target_col, target) = column;
        if classify {
            return Err(format!(
                "{origin}: column `{target}` has more than {} distinct texts to read as classes, \
                 the most a process reading only its rows keeps; read it as numbers (task = \
                 \"regression\") or use fewer classes",
                self.cap
            ));
        }
        match self.first_bad {
            None => Ok(Target::Values(self.values)),
            Some((line, text)) => Err(format!(
                "{origin}: line {line}, column {} (`{target}`): `{text}` is not a number, but a \
                 regression target must be numeric (or load the file as classification)",
                target_col + 1
            )),
        }
    }
}

/// The feature values of data rows `rows` (indices among the data rows, as [`load_csv`] numbers
/// them, in any order, each at most once) of `path` with target column `target`, streamed in one
/// pass: row `i` of the result is data row `rows[i]`, bit for bit the value [`load_csv`] reads.
/// Only these rows' values are kept.
pub fn read_csv_rows(path: &Path, target: &str, rows: &[usize]) -> Result<Matrix, String> {
    let (mut reader, origin) = open_stream(path)?;
    let header = read_header(&mut reader, &origin)?;
    let Some(target_col) = header.iter().position(|h| h == target) else {
        return Err(format!(
            "{origin}: no column `{target}` to use as the target; the columns are: {}",
            header.join(", ")
        ));
    };
    let p = header.len() - 1;
    // Where each wanted data row goes in the result.
    let mut slot: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (i, &r) in rows.iter().enumerate() {
        if slot.insert(r, i).is_some() {
            return Err(format!("{origin}: data row {r} asked for twice"));
        }
    }
    let mut values = vec![0.0; rows.len() * p];
    let mut found = 0;
    visit_rows(
        &mut reader,
        &origin,
        &header,
        target_col,
        |index, _, _, features| {
            if let Some(&i) = slot.get(&index) {
                values[i * p..(i + 1) * p].copy_from_slice(features);
                found += 1;
            }
        },
    )?;
    if found != rows.len() {
        return Err(format!(
            "{origin}: {} of the {} data rows asked for are past the end of the file (did it \
             change while it was read?)",
            rows.len() - found,
            rows.len()
        ));
    }
    Matrix::new(rows.len(), p, values)
}

/// A streaming CSV reader over regular file `path` (a device or a pipe is refused by name), with
/// the settings of [`parse_csv`], and the origin its errors start with.
fn open_stream(
    path: &Path,
) -> Result<(::csv::Reader<std::io::BufReader<std::fs::File>>, String), String> {
    let cannot = |e: std::io::Error| format!("cannot read CSV file {}: {e}", path.display());
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file (a folder, device or pipe); give the path of a CSV file",
            path.display()
        ));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let reader = ::csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(std::io::BufReader::new(file));
    Ok((reader, path.display().to_string()))
}

/// The dataset name of `path`: its stem.
fn stem(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| "csv".to_string(), |s| s.to_string_lossy().into_owned())
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

    #[test]
    fn a_streamed_scan_and_selected_rows_are_the_loaded_file_bit_for_bit() {
        let dir = tempfile_dir("stream");
        let path = dir.join("mix.csv");
        let body: String = (0..40)
            .map(|i| {
                let blank = if i % 7 == 3 { "\n" } else { "" };
                format!(
                    "{}, {:e},\"{}\",{}\n{blank}",
                    i as f64 / 3.0,
                    1e-7 * i as f64,
                    ["2", "10", "3"][i % 3],
                    -(i as f64).sqrt()
                )
            })
            .collect();
        std::fs::write(&path, format!("\u{feff}x,y,kind,z\n{body}")).unwrap();
        for (target, task) in [("kind", Task::Auto), ("z", Task::Regression)] {
            let whole = load_csv(&path, target, task).unwrap();
            let scan = scan_csv(&path, target, task).unwrap();
            assert_eq!(scan.targets.y, whole.y);
            assert_eq!(scan.targets.rows(), 40);
            assert_eq!(scan.targets.name, "mix");
            assert_eq!(scan.feature_names, whole.feature_names);
            let rows = [17, 0, 39, 5];
            let got = read_csv_rows(&path, target, &rows).unwrap();
            let want = whole.x.select_rows(&rows);
            let bits = |m: &Matrix| m.as_slice().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!((got.rows(), got.cols()), (4, 3));
            assert_eq!(bits(&got), bits(&want));
        }
        let err = read_csv_rows(&path, "kind", &[3, 40]).unwrap_err();
        assert_eq!(
            err,
            format!(
                "{}: 1 of the 2 data rows asked for are past the end of the file (did it change \
                 while it was read?)",
                path.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_streamed_scan_refuses_a_bad_cell_as_loading_does() {
        let dir = tempfile_dir("bad");
        let path = dir.join("bad.csv");
        std::fs::write(&path, "a,b,y\n1,2,0\n1,x,1\n").unwrap();
        let whole = load_csv(&path, "y", Task::Auto).unwrap_err();
        assert_eq!(scan_csv(&path, "y", Task::Auto).unwrap_err(), whole);
        assert!(whole.ends_with(
            "line 3, column 2 (`b`): `x` is not a finite number; feature \
             columns must be numeric (drop or encode this column)"
        ));
        assert_eq!(
            scan_csv(&path, "label", Task::Auto).unwrap_err(),
            load_csv(&path, "label", Task::Auto).unwrap_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            scan_csv(Path::new("/dev/zero"), "y", Task::Auto).unwrap_err(),
            "/dev/zero is not a regular file (a folder, device or pipe); give the path of a CSV file"
        );
    }

    #[test]
    fn a_scan_past_its_distinct_cap_reads_numbers_and_refuses_classes_by_name() {
        let dir = tempfile_dir("cap");
        let path = dir.join("many.csv");
        let body: String = (0..50).map(|i| format!("{i},{}.25\n", i * 3)).collect();
        std::fs::write(&path, format!("x,y\n{body}")).unwrap();
        for task in [Task::Auto, Task::Regression] {
            let whole = load_csv(&path, "y", task).unwrap();
            assert_eq!(
                scan_csv_with(&path, "y", task, 8).unwrap().targets.y,
                whole.y
            );
        }
        assert_eq!(
            scan_csv_with(&path, "y", Task::Classification, 8).unwrap_err(),
            format!(
                "{}: column `y` has more than 8 distinct texts to read as classes, the most a \
                 process reading only its rows keeps; read it as numbers (task = \
                 \"regression\") or use fewer classes",
                path.display()
            )
        );
        // Under the cap, classes are read as loading the whole file reads them.
        let whole = load_csv(&path, "y", Task::Classification).unwrap();
        assert_eq!(
            scan_csv_with(&path, "y", Task::Classification, 64)
                .unwrap()
                .targets
                .y,
            whole.y
        );
        // A text that is not a number past the cap: the same error as loading it whole.
        std::fs::write(&path, format!("x,y\n{body}9,high\n")).unwrap();
        assert_eq!(
            scan_csv_with(&path, "y", Task::Regression, 8).unwrap_err(),
            load_csv(&path, "y", Task::Regression).unwrap_err()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scalelab-ml-csv-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}

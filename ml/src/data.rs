//! The dense feature matrix and labelled datasets, and where datasets come from: the real datasets
//! compiled into the crate ([`load`], [`BUILTINS`]), a user's CSV file ([`load_csv`]) and a seeded
//! `make_classification`-style generator ([`make_classification`]).

/// A dense, row-major `rows × cols` matrix of `f64` features.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Matrix {
    /// A matrix from row-major `data`; `data.len()` must be `rows * cols`.
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Matrix, String> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(format!(
                "a {rows} × {cols} matrix needs {} values, got {}",
                rows.saturating_mul(cols),
                data.len()
            ));
        }
        Ok(Matrix { rows, cols, data })
    }

    pub fn zeros(rows: usize, cols: usize) -> Matrix {
        Matrix {
            rows,
            cols,
            data: vec![0.0; rows * cols],
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` as a slice.
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn row_mut(&mut self, i: usize) -> &mut [f64] {
        &mut self.data[i * self.cols..(i + 1) * self.cols]
    }

    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    /// All values, row-major.
    pub fn as_slice(&self) -> &[f64] {
        &self.data
    }

    /// A new matrix of the given rows, in that order (rows may repeat).
    pub fn select_rows(&self, rows: &[usize]) -> Matrix {
        let mut data = Vec::with_capacity(rows.len() * self.cols);
        for &r in rows {
            data.extend_from_slice(self.row(r));
        }
        Matrix {
            rows: rows.len(),
            cols: self.cols,
            data,
        }
    }
}

/// What a dataset's target is.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// Class indices `0..names.len()`, one per row.
    Classes {
        labels: Vec<u32>,
        names: Vec<String>,
    },
    /// Real values, one per row.
    Values(Vec<f64>),
}

impl Target {
    pub fn len(&self) -> usize {
        match self {
            Target::Classes { labels, .. } => labels.len(),
            Target::Values(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of classes (0 for regression).
    pub fn n_classes(&self) -> usize {
        match self {
            Target::Classes { names, .. } => names.len(),
            Target::Values(_) => 0,
        }
    }

    /// Class labels, or `None` for regression.
    pub fn labels(&self) -> Option<&[u32]> {
        match self {
            Target::Classes { labels, .. } => Some(labels),
            Target::Values(_) => None,
        }
    }
}

/// A labelled dataset: features, target and names.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Short name used in results ("breast_cancer", "synthetic", a file name).
    pub name: String,
    pub x: Matrix,
    pub y: Target,
    pub feature_names: Vec<String>,
}

impl Dataset {
    /// A dataset, checking that the target has one entry per row and names one per column.
    pub fn new(
        name: impl Into<String>,
        x: Matrix,
        y: Target,
        feature_names: Vec<String>,
    ) -> Result<Dataset, String> {
        let name = name.into();
        if y.len() != x.rows() {
            return Err(format!(
                "{name}: {} rows of features but {} targets",
                x.rows(),
                y.len()
            ));
        }
        if feature_names.len() != x.cols() {
            return Err(format!(
                "{name}: {} feature columns but {} feature names",
                x.cols(),
                feature_names.len()
            ));
        }
        if let Target::Classes { labels, names } = &y {
            if let Some(&bad) = labels.iter().find(|&&l| l as usize >= names.len()) {
                return Err(format!(
                    "{name}: class index {bad} but only {} class names",
                    names.len()
                ));
            }
        }
        Ok(Dataset {
            name,
            x,
            y,
            feature_names,
        })
    }

    pub fn rows(&self) -> usize {
        self.x.rows()
    }

    pub fn features(&self) -> usize {
        self.x.cols()
    }
}

mod builtin;
mod csv;
mod synthetic;

pub use builtin::{load, names as builtin_names, Builtin, BUILTINS};
pub use csv::{
    load_csv, parse_csv, read_csv_rows, scan_csv, CsvScan, Task, AUTO_MAX_CLASSES, MAX_CSV_BYTES,
};
pub use synthetic::{make_classification, make_noise, portable_ln, Synthetic};

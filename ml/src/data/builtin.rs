//! The real datasets compiled into the crate (see `ml/data/README.md` for where each comes from and
//! its licence), looked up by name.

use super::csv::{parse_csv, Task};
use super::{Dataset, Target};

/// One built-in dataset.
pub struct Builtin {
    /// The name `load` accepts.
    pub name: &'static str,
    /// One line: what it is.
    pub about: &'static str,
    csv: &'static str,
    target: &'static str,
    task: Task,
    class_names: &'static [&'static str],
}

/// Every built-in dataset, in the order `scalelab list` shows them.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "iris",
        about: "150 × 4, 3 iris species (Fisher 1936)",
        csv: include_str!("../../data/iris.csv"),
        target: "species",
        task: Task::Classification,
        class_names: &["setosa", "versicolor", "virginica"],
    },
    Builtin {
        name: "breast_cancer",
        about: "569 × 30, malignant or benign tumour (Wisconsin diagnostic)",
        csv: include_str!("../../data/breast_cancer.csv"),
        target: "diagnosis",
        task: Task::Classification,
        class_names: &["malignant", "benign"],
    },
    Builtin {
        name: "digits",
        about: "1797 × 64, handwritten digits 0-9 as 8×8 grey levels",
        csv: include_str!("../../data/digits.csv"),
        target: "digit",
        task: Task::Classification,
        class_names: &[],
    },
    Builtin {
        name: "wine_quality",
        about: "1599 × 11, red wine quality score 3-8 (6 imbalanced classes)",
        csv: include_str!("../../data/wine_quality_red.csv"),
        target: "quality",
        task: Task::Classification,
        class_names: &[],
    },
    Builtin {
        name: "diabetes",
        about: "442 × 10, disease progression after one year (regression)",
        csv: include_str!("../../data/diabetes.csv"),
        target: "target",
        task: Task::Regression,
        class_names: &[],
    },
];

/// The names of the built-in datasets.
pub fn names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.name).collect()
}

/// Load the built-in dataset `name`.
pub fn load(name: &str) -> Result<Dataset, String> {
    let Some(b) = BUILTINS.iter().find(|b| b.name == name) else {
        return Err(format!(
            "unknown dataset `{name}`; built-in datasets: {} (or generate one with \
             `synthetic`, or load a CSV file)",
            names().join(", ")
        ));
    };
    let origin = format!("built-in dataset {name}");
    let mut d = parse_csv(name, &origin, b.csv, b.target, b.task)?;
    if !b.class_names.is_empty() {
        if let Target::Classes { names, .. } = &mut d.y {
            *names = b.class_names.iter().map(|s| s.to_string()).collect();
        }
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_loads_with_its_published_shape() {
        let shapes = [
            ("iris", 150, 4, 3),
            ("breast_cancer", 569, 30, 2),
            ("digits", 1797, 64, 10),
            ("wine_quality", 1599, 11, 6),
            ("diabetes", 442, 10, 0),
        ];
        for (name, rows, cols, classes) in shapes {
            let d = load(name).unwrap();
            assert_eq!(
                (d.rows(), d.features(), d.y.n_classes()),
                (rows, cols, classes),
                "{name}"
            );
        }
        let bc = load("breast_cancer").unwrap();
        let benign = bc.y.labels().unwrap().iter().filter(|&&l| l == 1).count();
        assert_eq!(benign, 357);
        assert_eq!(bc.x.get(0, 0), 17.99);
        let wine = load("wine_quality").unwrap();
        assert_eq!(wine.y.n_classes(), 6);
        if let Target::Classes { names, .. } = &wine.y {
            assert_eq!(names, &["3", "4", "5", "6", "7", "8"]);
        }
    }

    #[test]
    fn unknown_name_lists_the_known_ones() {
        assert_eq!(
            load("irs").err().unwrap(),
            "unknown dataset `irs`; built-in datasets: iris, breast_cancer, digits, wine_quality, \
             diabetes (or generate one with `synthetic`, or load a CSV file)"
        );
    }
}

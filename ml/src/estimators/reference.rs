//! Reference variants through smartcore (`smartcore.random_forest`, `smartcore.decision_tree`), so a
//! lecture can put the crate's exact-split, single-threaded learners beside the ones written here on
//! the same folds. Classification only; no sample weights (smartcore takes none).

use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::tree::decision_tree_classifier::{
    DecisionTreeClassifier, DecisionTreeClassifierParameters, SplitCriterion,
};

use crate::data::{Dataset, Matrix, Target};
use crate::estimator::{Estimator, FitOptions, HyperParams, Model, Prediction};

use super::params::{Default as D, Kind, ParamSpec, Params};

const CRITERION: ParamSpec = ParamSpec {
    name: "criterion",
    kind: Kind::Choice(&["gini", "entropy"]),
    default: D::Text("gini"),
    doc: "split quality",
};
const MAX_DEPTH: ParamSpec = ParamSpec {
    name: "max_depth",
    kind: Kind::Int { min: 0, max: 1000 },
    default: D::Int(0),
    doc: "deepest level; 0 = no limit",
};
const MIN_SAMPLES_SPLIT: ParamSpec = ParamSpec {
    name: "min_samples_split",
    kind: Kind::Int {
        min: 2,
        max: i64::MAX,
    },
    default: D::Int(2),
    doc: "fewest training rows a node needs to be split",
};
const MIN_SAMPLES_LEAF: ParamSpec = ParamSpec {
    name: "min_samples_leaf",
    kind: Kind::Int {
        min: 1,
        max: i64::MAX,
    },
    default: D::Int(1),
    doc: "fewest training rows per leaf",
};

/// `smartcore.decision_tree` parameters.
pub const TREE_SPECS: &[ParamSpec] = &[CRITERION, MAX_DEPTH, MIN_SAMPLES_SPLIT, MIN_SAMPLES_LEAF];

/// `smartcore.random_forest` parameters.
pub const FOREST_SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "n_estimators",
        kind: Kind::Int {
            min: 1,
            max: 65_535,
        },
        default: D::Int(100),
        doc: "number of trees",
    },
    CRITERION,
    MAX_DEPTH,
    MIN_SAMPLES_SPLIT,
    MIN_SAMPLES_LEAF,
];

#[derive(Clone, Debug, PartialEq)]
pub struct Smartcore {
    name: &'static str,
    /// `None` for a single tree.
    n_trees: Option<u16>,
    entropy: bool,
    max_depth: Option<u16>,
    min_samples_split: usize,
    min_samples_leaf: usize,
}

impl Smartcore {
    pub fn random_forest(params: &HyperParams) -> Result<Smartcore, String> {
        Smartcore::read("smartcore.random_forest", params, FOREST_SPECS, true)
    }

    pub fn decision_tree(params: &HyperParams) -> Result<Smartcore, String> {
        Smartcore::read("smartcore.decision_tree", params, TREE_SPECS, false)
    }

    fn read(
        name: &'static str,
        params: &HyperParams,
        specs: &'static [ParamSpec],
        forest: bool,
    ) -> Result<Smartcore, String> {
        let p = Params::new(name, params, specs)?;
        let depth = p.int("max_depth")?;
        Ok(Smartcore {
            name,
            n_trees: if forest {
                Some(p.int("n_estimators")? as u16)
            } else {
                None
            },
            entropy: p.text("criterion")? == "entropy",
            max_depth: (depth > 0).then_some(depth as u16),
            min_samples_split: p.usize("min_samples_split")?,
            min_samples_leaf: p.usize("min_samples_leaf")?,
        })
    }
}

enum Fitted {
    Forest(RandomForestClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>),
    Tree(DecisionTreeClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>>),
}

struct SmartcoreModel {
    fitted: Fitted,
    name: &'static str,
}

fn dense(x: &Matrix, rows: &[usize]) -> Result<DenseMatrix<f64>, String> {
    let m = x.select_rows(rows);
    DenseMatrix::new(m.rows(), m.cols(), m.as_slice().to_vec(), false).map_err(|e| e.to_string())
}

impl Model for SmartcoreModel {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        let pred = dense(x, rows).and_then(|d| {
            match &self.fitted {
                Fitted::Forest(f) => f.predict(&d),
                Fitted::Tree(t) => t.predict(&d),
            }
            .map_err(|e| e.to_string())
        });
        // The matrix is well formed and the model fitted, so smartcore has nothing to refuse here;
        // should it ever, every row gets class 0 and the failure is reported once.
        Prediction::Classes(pred.unwrap_or_else(|e| {
            eprintln!("{}: prediction failed: {e}", self.name);
            vec![0; rows.len()]
        }))
    }
}

impl Estimator for Smartcore {
    fn name(&self) -> &'static str {
        self.name
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        _options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        if weights.is_some() {
            return Err(format!(
                "{}: smartcore takes no sample weights; use the estimator without the \
                 `smartcore.` prefix",
                self.name
            ));
        }
        let Target::Classes { labels, .. } = &data.y else {
            return Err(format!(
                "{}: needs classes but dataset {} has a numeric target",
                self.name, data.name
            ));
        };
        let x = dense(&data.x, rows)?;
        let y: Vec<u32> = rows.iter().map(|&r| labels[r]).collect();
        let criterion = if self.entropy {
            SplitCriterion::Entropy
        } else {
            SplitCriterion::Gini
        };
        let failed = |e: smartcore::error::Failed| format!("{}: {e}", self.name);
        let fitted = match self.n_trees {
            Some(n_trees) => {
                let mut p = RandomForestClassifierParameters::default()
                    .with_n_trees(n_trees)
                    .with_criterion(criterion)
                    .with_min_samples_split(self.min_samples_split)
                    .with_min_samples_leaf(self.min_samples_leaf)
                    .with_seed(seed);
                if let Some(d) = self.max_depth {
                    p = p.with_max_depth(d);
                }
                Fitted::Forest(RandomForestClassifier::fit(&x, &y, p).map_err(failed)?)
            }
            None => {
                let mut p = DecisionTreeClassifierParameters::default()
                    .with_criterion(criterion)
                    .with_min_samples_split(self.min_samples_split)
                    .with_min_samples_leaf(self.min_samples_leaf);
                p.seed = Some(seed);
                if let Some(d) = self.max_depth {
                    p = p.with_max_depth(d);
                }
                Fitted::Tree(DecisionTreeClassifier::fit(&x, &y, p).map_err(failed)?)
            }
        };
        Ok(Box::new(SmartcoreModel {
            fitted,
            name: self.name,
        }))
    }
}

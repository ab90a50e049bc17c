//! The CART decision tree (`decision_tree`), and the tree hyperparameters the forests share.

use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::data::{Dataset, Target};
use crate::estimator::{Estimator, FitOptions, Model};

use super::common::{entries, TreeEnsemble};
use super::params::{Default as D, Kind, MaxFeatures, ParamSpec, Params};
use super::tree::{grow, Binned, Criterion, Cut, Splitter, TreeConfig, MAX_BINS};

pub(crate) const CRITERION: ParamSpec = ParamSpec {
    name: "criterion",
    kind: Kind::Choice(&["auto", "gini", "entropy", "squared_error"]),
    default: D::Text("auto"),
    doc: "split quality; auto = gini for classes, squared_error for a numeric target",
};
pub(crate) const MAX_DEPTH: ParamSpec = ParamSpec {
    name: "max_depth",
    kind: Kind::Int { min: 0, max: 1000 },
    default: D::Int(0),
    doc: "deepest level a tree may grow to; 0 = no limit",
};
pub(crate) const MIN_SAMPLES_SPLIT: ParamSpec = ParamSpec {
    name: "min_samples_split",
    kind: Kind::Int {
        min: 2,
        max: i64::MAX,
    },
    default: D::Int(2),
    doc: "fewest training rows a node needs to be split",
};
pub(crate) const MIN_SAMPLES_LEAF: ParamSpec = ParamSpec {
    name: "min_samples_leaf",
    kind: Kind::Int {
        min: 1,
        max: i64::MAX,
    },
    default: D::Int(1),
    doc: "fewest training rows each child of a split must keep",
};
pub(crate) const CLASS_WEIGHT: ParamSpec = ParamSpec {
    name: "class_weight",
    kind: Kind::Choice(&["none", "balanced"]),
    default: D::Text("none"),
    doc: "balanced = weight each class by n / (classes × its count), for imbalanced data",
};

/// The `splitter` parameter of every tree learner.
pub(crate) const fn splitter(default: &'static str) -> ParamSpec {
    ParamSpec {
        name: "splitter",
        kind: Kind::Choice(&["exact", "hist"]),
        default: D::Text(default),
        doc: "exact = every boundary between distinct values, threshold at the midpoint \
              (scikit-learn's trees); hist = 256 quantile bins per feature (LightGBM)",
    }
}

/// The `cut` parameter of `extra_trees` (and `decision_tree`, whose default is `best`).
pub(crate) const fn cut(options: &'static [&'static str], default: &'static str) -> ParamSpec {
    ParamSpec {
        name: "cut",
        kind: Kind::Choice(options),
        default: D::Text(default),
        doc: "best = the best boundary; value = one random threshold per examined feature, \
              uniform in value over the node's range (scikit-learn's extra trees); rank = \
              uniform over the node's distinct values (or bins)",
    }
}

/// The splitter a learner was given.
pub(crate) fn read_splitter(p: &Params) -> Result<Splitter, String> {
    let text = p.text("splitter")?;
    Ok(Splitter::parse(&text).unwrap_or_else(|| unreachable!("checked choice {text}")))
}

pub(crate) const fn max_features(default: &'static str) -> ParamSpec {
    ParamSpec {
        name: "max_features",
        kind: Kind::MaxFeatures,
        default: D::Text(default),
        doc: "features examined per split: sqrt, log2, all, a fraction or a count",
    }
}

/// `decision_tree` parameters.
pub const SPECS: &[ParamSpec] = &[
    CRITERION,
    MAX_DEPTH,
    MIN_SAMPLES_SPLIT,
    MIN_SAMPLES_LEAF,
    max_features("all"),
    CLASS_WEIGHT,
    splitter("exact"),
    cut(&["best", "value", "rank"], "best"),
];

/// The tree hyperparameters shared by a tree and the forests.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TreeHp {
    pub criterion: String,
    pub max_depth: usize,
    pub min_samples_split: usize,
    pub min_samples_leaf: usize,
    pub max_features: MaxFeatures,
    pub balanced: bool,
    pub cut: Cut,
    pub splitter: Splitter,
}

impl TreeHp {
    /// The shared parameters; `cut` and `splitter` from the table when it has them.
    pub fn read(p: &Params) -> Result<TreeHp, String> {
        let cut = if !p.has("cut") {
            Cut::Best
        } else {
            match p.text("cut")?.as_str() {
                "value" => Cut::Value,
                "rank" => Cut::Rank,
                _ => Cut::Best,
            }
        };
        Ok(TreeHp {
            criterion: p.text("criterion")?,
            max_depth: p.usize("max_depth")?,
            min_samples_split: p.usize("min_samples_split")?,
            min_samples_leaf: p.usize("min_samples_leaf")?,
            max_features: p.max_features("max_features")?,
            balanced: p.text("class_weight")? == "balanced",
            cut,
            splitter: read_splitter(p)?,
        })
    }

    /// The growth settings for `data`; an error when the criterion does not suit its target.
    pub fn config(&self, name: &str, data: &Dataset) -> Result<TreeConfig, String> {
        let classes = data.y.n_classes();
        let criterion = match (self.criterion.as_str(), &data.y) {
            ("auto" | "gini", Target::Classes { .. }) => Criterion::Gini,
            ("entropy", Target::Classes { .. }) => Criterion::Entropy,
            ("auto" | "squared_error", Target::Values(_)) => Criterion::Mse,
            ("squared_error", Target::Classes { .. }) => {
                return Err(format!(
                    "{name}: criterion `squared_error` needs a numeric target but dataset {} has \
                     classes; use gini or entropy",
                    data.name
                ))
            }
            (other, _) => {
                return Err(format!(
                    "{name}: criterion `{other}` needs classes but dataset {} has a numeric \
                     target; use squared_error",
                    data.name
                ))
            }
        };
        if let MaxFeatures::Count(c) = self.max_features {
            if c > data.features() {
                return Err(format!(
                    "{name}: `max_features` = {c} but dataset {} has {} features",
                    data.name,
                    data.features()
                ));
            }
        }
        if self.balanced && classes == 0 {
            return Err(format!(
                "{name}: class_weight = \"balanced\" needs classes but dataset {} has a numeric \
                 target",
                data.name
            ));
        }
        Ok(TreeConfig {
            criterion,
            n_classes: classes,
            max_depth: self.max_depth,
            min_samples_split: self.min_samples_split,
            min_samples_leaf: self.min_samples_leaf,
            max_features: self.max_features.resolve(data.features()),
            max_leaf_nodes: 0,
            cut: self.cut,
            subtraction: false,
            parallel: false,
        })
    }
}

/// A CART tree: Gini or entropy for classes, squared error for values; class probabilities are the
/// (weighted) class frequencies of the leaf.
#[derive(Clone, Debug, PartialEq)]
pub struct DecisionTree {
    pub(crate) hp: TreeHp,
}

impl DecisionTree {
    pub fn from_params(params: &crate::estimator::HyperParams) -> Result<DecisionTree, String> {
        // scikit-learn spells the random cut `splitter = "random"`; here `splitter` picks exact or
        // binned candidates, so point the old spelling at its new key.
        if let Some(crate::estimator::Hp::Text(t)) = params.get("splitter") {
            if t == "best" || t == "random" {
                let to = if t == "best" { "best" } else { "value" };
                return Err(format!(
                    "decision_tree: `splitter` = \"{t}\" is not allowed; allowed: one of exact, hist \
                     (scikit-learn's splitter = \"{t}\" is `cut = \"{to}\"` here)"
                ));
            }
        }
        let p = Params::new("decision_tree", params, SPECS)?;
        Ok(DecisionTree {
            hp: TreeHp::read(&p)?,
        })
    }
}

impl Estimator for DecisionTree {
    fn name(&self) -> &'static str {
        "decision_tree"
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        _options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        let cfg = self.hp.config(self.name(), data)?;
        let binned = Binned::new(data, rows, self.hp.splitter, MAX_BINS)?;
        let mut e = entries(data, rows, weights, self.hp.balanced);
        e.retain(|e| e.w > 0.0);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let tree = grow(&binned, &mut e, &cfg, &mut rng);
        Ok(Box::new(TreeEnsemble {
            trees: vec![tree],
            n_classes: cfg.n_classes,
            oob_score: None,
            oob_curve: None,
        }))
    }
}

//! Stacked generalisation (`stacking`, Wolpert 1992): the base models' out-of-fold predictions
//! become the features of a meta-learner.
//!
//! The training rows are split into `cv` folds by a seeded shuffle (a plain k-fold written here so
//! the estimator does not depend on the model-selection module). Each base estimator is fitted on
//! every k − 1 folds and predicts the remaining one, giving an out-of-fold prediction for every row:
//! class probabilities (or a one-hot of the predicted class for a model without them), or the value
//! for a numeric target. The final estimator is fitted on those predictions; the base models are
//! then refitted on all rows, and at prediction time their outputs feed the final model. The
//! `bases × folds` fits are independent and run in parallel when allowed, each seeded by its index.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::child_seed;
use crate::data::{Dataset, Matrix};
use crate::estimator::{Estimator, FitOptions, HyperParams, Model, Prediction};

use super::ensemble::{for_each_member, members};
use super::params::{Default as D, Kind, ParamSpec, Params};

/// `stacking` parameters.
pub const SPECS: &[ParamSpec] = &[
    ParamSpec {
        name: "estimators",
        kind: Kind::EstimatorList,
        default: D::Text("random_forest,extra_trees,logistic_regression"),
        doc: "the base models, comma-separated (each with its default parameters)",
    },
    ParamSpec {
        name: "final",
        kind: Kind::Estimator,
        default: D::Text("logistic_regression"),
        doc: "the meta-learner fitted on the base models' out-of-fold predictions",
    },
    ParamSpec {
        name: "cv",
        kind: Kind::Int { min: 2, max: 100 },
        default: D::Int(5),
        doc: "folds for the out-of-fold predictions",
    },
];

#[derive(Debug)]
pub struct Stacking {
    bases: Vec<Box<dyn Estimator>>,
    meta: Box<dyn Estimator>,
    cv: usize,
}

impl Stacking {
    pub fn from_params(params: &HyperParams) -> Result<Stacking, String> {
        let p = Params::new("stacking", params, SPECS)?;
        Ok(Stacking {
            bases: members(&p.text("estimators")?)?,
            meta: super::build(&p.text("final")?, &HyperParams::new())?,
            cv: p.usize("cv")?,
        })
    }
}

/// The columns one base model contributes for `rows`.
fn features(model: &dyn Model, x: &Matrix, rows: &[usize], k: usize) -> Matrix {
    if k == 0 {
        let Prediction::Values(v) = model.predict(x, rows) else {
            return Matrix::zeros(rows.len(), 1);
        };
        return Matrix::new(rows.len(), 1, v).unwrap_or_else(|_| Matrix::zeros(rows.len(), 1));
    }
    if let Some(p) = model.predict_proba(x, rows) {
        return p;
    }
    let mut out = Matrix::zeros(rows.len(), k);
    if let Prediction::Classes(c) = model.predict(x, rows) {
        for (i, &c) in c.iter().enumerate() {
            out.row_mut(i)[c as usize] = 1.0;
        }
    }
    out
}

struct StackModel {
    bases: Vec<Box<dyn Model>>,
    meta: Box<dyn Model>,
    k: usize,
    width: usize,
}

impl StackModel {
    fn meta_x(&self, x: &Matrix, rows: &[usize]) -> Matrix {
        let mut z = Matrix::zeros(rows.len(), self.bases.len() * self.width);
        for (b, m) in self.bases.iter().enumerate() {
            let f = features(m.as_ref(), x, rows, self.k);
            for i in 0..rows.len() {
                z.row_mut(i)[b * self.width..(b + 1) * self.width].copy_from_slice(f.row(i));
            }
        }
        z
    }
}

impl Model for StackModel {
    fn predict(&self, x: &Matrix, rows: &[usize]) -> Prediction {
        let z = self.meta_x(x, rows);
        let all: Vec<usize> = (0..rows.len()).collect();
        self.meta.predict(&z, &all)
    }

    fn predict_proba(&self, x: &Matrix, rows: &[usize]) -> Option<Matrix> {
        let z = self.meta_x(x, rows);
        let all: Vec<usize> = (0..rows.len()).collect();
        self.meta.predict_proba(&z, &all)
    }
}

impl Estimator for Stacking {
    fn name(&self) -> &'static str {
        "stacking"
    }

    fn fit_checked(
        &self,
        data: &Dataset,
        rows: &[usize],
        weights: Option<&[f64]>,
        seed: u64,
        options: FitOptions,
    ) -> Result<Box<dyn Model>, String> {
        let m = rows.len();
        if m < self.cv {
            return Err(format!(
                "stacking: {m} training rows cannot make {} folds; lower `cv`",
                self.cv
            ));
        }
        let k = data.y.n_classes();
        let width = k.max(1);
        // Seeded shuffled k-fold over positions.
        let mut order: Vec<usize> = (0..m).collect();
        order.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(child_seed(
            seed,
            u64::MAX,
        )));
        let fold_of: Vec<usize> = {
            let mut f = vec![0; m];
            for (i, &pos) in order.iter().enumerate() {
                f[pos] = i % self.cv;
            }
            f
        };
        let nb = self.bases.len();
        let oof = for_each_member(nb * self.cv, options.parallel, |t| {
            let (b, fold) = (t / self.cv, t % self.cv);
            let train: Vec<usize> = (0..m).filter(|&i| fold_of[i] != fold).collect();
            let test: Vec<usize> = (0..m).filter(|&i| fold_of[i] == fold).collect();
            let train_rows: Vec<usize> = train.iter().map(|&i| rows[i]).collect();
            let w: Option<Vec<f64>> = weights.map(|w| train.iter().map(|&i| w[i]).collect());
            let model = self.bases[b].fit(
                data,
                &train_rows,
                w.as_deref(),
                child_seed(seed, t as u64),
                options,
            )?;
            let test_rows: Vec<usize> = test.iter().map(|&i| rows[i]).collect();
            Ok((test, features(model.as_ref(), &data.x, &test_rows, k)))
        })?;
        let mut z = Matrix::zeros(m, nb * width);
        for (t, (test, f)) in oof.iter().enumerate() {
            let b = t / self.cv;
            for (j, &i) in test.iter().enumerate() {
                z.row_mut(i)[b * width..(b + 1) * width].copy_from_slice(f.row(j));
            }
        }
        let y = match &data.y {
            crate::data::Target::Classes { labels, names } => crate::data::Target::Classes {
                labels: rows.iter().map(|&r| labels[r]).collect(),
                names: names.clone(),
            },
            crate::data::Target::Values(v) => {
                crate::data::Target::Values(rows.iter().map(|&r| v[r]).collect())
            }
        };
        let names = (0..nb * width)
            .map(|j| format!("base{}_{}", j / width, j % width))
            .collect();
        let meta_data = Dataset::new(format!("{} (stacked)", data.name), z, y, names)?;
        let all: Vec<usize> = (0..m).collect();
        let meta = self.meta.fit(
            &meta_data,
            &all,
            weights,
            child_seed(seed, u64::MAX - 1),
            options,
        )?;
        let bases = for_each_member(nb, options.parallel, |b| {
            self.bases[b].fit(
                data,
                rows,
                weights,
                child_seed(seed, (nb * self.cv + b) as u64),
                options,
            )
        })?;
        Ok(Box::new(StackModel {
            bases,
            meta,
            k,
            width,
        }))
    }
}

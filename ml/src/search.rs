//! Model selection: grid and random search, cross-validation scores, nested cross-validation, and
//! the task lists that run them in parallel over threads ([`Parallelism`]) and MPI ranks
//! ([`mpi`], feature `mpi`).
//!
//! Written here rather than taken from a crate because it is the subject of the course: linfa and
//! smartcore have neither nested cross-validation nor any parallel search.
//!
//! # One flat task list
//! Every fit of a search is a [`Task`]: (outer fold, candidate, inner fold or none, train rows, test
//! rows). A task fits the candidate on its train rows with the search's seed and scores its test
//! rows. Tasks are independent, so any level of the list can run in parallel, and results land at
//! their task's index: the scores, the selection and every mean are computed in task order and are
//! bit-identical whatever ran where.
//!
//! # Nested cross-validation
//! Outer folds split all rows. For outer fold `o`, the inner folds are computed from the outer
//! training index list alone (the splitters of [`crate::folds`] only see the rows they are given),
//! so no outer test row can reach an inner fit or an inner score. Tasks:
//!
//! * inner `(o, c, i)`: candidate `c` fitted on inner fold `i`'s training rows, scored on its test
//!   rows — `O × C × I` fits;
//! * outer `(o, c)`: candidate `c` fitted on all of outer fold `o`'s training rows (the refit) and
//!   scored on its test rows — `O × C` fits.
//!
//! The candidate chosen for fold `o` is the best mean inner score (ties: the first candidate, as
//! scikit-learn's `best_index_`); the **nested** score is the mean over `o` of the outer score of
//! that candidate's refit. The **non-nested** score is what a plain grid search over the outer folds
//! reports (`GridSearchCV(cv=outer).best_score_`): the best mean outer score over candidates, which
//! chose on the very rows it scores and is therefore optimistic. Computing the outer task of every
//! candidate, not only of the chosen one, gives both from one task list; a refit of the chosen
//! candidate would be the same computation as its outer task.
//!
//! # Parallelism
//! [`Parallelism`] picks the level that runs on the rayon pool: `trees` (tasks one after another,
//! each fit parallel inside, e.g. over a forest's trees), `folds` (outer folds in parallel, each
//! fold's tasks serial, fits serial), `grid` (candidates in parallel), `all` (every task in
//! parallel, fits parallel too: rayon's work stealing balances both levels), `serial` (nothing).
//! [`FitOptions::parallel`] tells the estimator whether to parallelise inside a fit. The work unit is
//! the model fit: [`NestedResult::fits`] counts them.

pub mod grid;
#[cfg(feature = "mpi")]
pub mod mpi;

use std::collections::BTreeMap;

use rayon::prelude::*;

pub use grid::{format_candidate, merge, ParamGrid};

use crate::data::{Dataset, Target};
use crate::estimator::{Estimator, FitOptions, HyperParams, Model, Prediction};
use crate::folds::{kfold, stratified_kfold, Fold};
use crate::metrics::Scoring;

/// Builds an estimator from its complete hyperparameters (base merged with a candidate).
pub type Builder<'a> =
    dyn Fn(&HyperParams) -> Result<Box<dyn Estimator>, String> + Send + Sync + 'a;

/// Which level of (outer fold × candidate × inner fold × tree) runs in parallel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parallelism {
    /// Everything in order on the calling thread; the reference.
    Serial,
    /// Tasks in order; each fit parallel inside.
    Trees,
    /// Outer folds (or the folds of a plain cross-validation) in parallel.
    Folds,
    /// Candidates in parallel.
    Grid,
    /// Every task, and every fit inside, in parallel.
    All,
}

impl Parallelism {
    pub const NAMES: &'static [&'static str] = &["serial", "trees", "folds", "grid", "all"];

    pub fn parse(name: &str) -> Result<Parallelism, String> {
        Ok(match name {
            "serial" => Parallelism::Serial,
            "trees" => Parallelism::Trees,
            "folds" => Parallelism::Folds,
            "grid" => Parallelism::Grid,
            "all" => Parallelism::All,
            other => {
                return Err(format!(
                    "unknown parallelism `{other}`; use one of {}",
                    Parallelism::NAMES.join(", ")
                ))
            }
        })
    }

    pub fn name(self) -> &'static str {
        Parallelism::NAMES[self as usize]
    }

    /// Whether each fit may run parallel inside.
    pub fn fit_options(self) -> FitOptions {
        FitOptions {
            parallel: matches!(self, Parallelism::Trees | Parallelism::All),
        }
    }

    /// Run `fit` on every task at this level of parallelism, in the current rayon pool. The results
    /// are in task order; the first failing task (in task order) is the error.
    pub fn run(&self, tasks: &[Task], fit: &TaskFn<'_>) -> Result<Vec<TaskResult>, String> {
        let opts = self.fit_options();
        let results: Vec<Result<TaskResult, String>> = match self {
            Parallelism::Serial | Parallelism::Trees => {
                tasks.iter().map(|t| fit(t, opts)).collect()
            }
            Parallelism::All => tasks.par_iter().map(|t| fit(t, opts)).collect(),
            Parallelism::Folds | Parallelism::Grid => {
                let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
                for (i, t) in tasks.iter().enumerate() {
                    let key = if *self == Parallelism::Folds {
                        t.outer
                    } else {
                        t.candidate
                    };
                    groups.entry(key).or_default().push(i);
                }
                let groups: Vec<Vec<usize>> = groups.into_values().collect();
                let done: Vec<Vec<(usize, Result<TaskResult, String>)>> = groups
                    .par_iter()
                    .map(|g| g.iter().map(|&i| (i, fit(&tasks[i], opts))).collect())
                    .collect();
                let mut slots: Vec<Option<Result<TaskResult, String>>> = vec![None; tasks.len()];
                for (i, r) in done.into_iter().flatten() {
                    slots[i] = Some(r);
                }
                slots
                    .into_iter()
                    .map(|s| s.expect("every task ran"))
                    .collect()
            }
        };
        results.into_iter().collect()
    }
}

/// One model fit and its scoring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Task {
    /// Outer fold (the fold of a plain cross-validation).
    pub outer: usize,
    /// Index into the search's candidates.
    pub candidate: usize,
    /// Inner fold, for the selection tasks of nested cross-validation.
    pub inner: Option<usize>,
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

/// What one task produced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskResult {
    /// The scoring's value on the test rows (greater is better).
    pub score: f64,
    /// FNV-1a hash of the bits of the model's predictions (probabilities when it has them) on the
    /// test rows: two fits agree on it only if they predict bit-identically.
    pub fingerprint: u64,
}

/// Fit and score one task with the given options.
pub type TaskFn<'a> = dyn Fn(&Task, FitOptions) -> Result<TaskResult, String> + Sync + 'a;

/// Something that runs a task list: [`Parallelism`] in this process, or an MPI distribution of it.
pub trait Runner {
    fn run(&self, tasks: &[Task], fit: &TaskFn<'_>) -> Result<Vec<TaskResult>, String>;
}

impl Runner for Parallelism {
    fn run(&self, tasks: &[Task], fit: &TaskFn<'_>) -> Result<Vec<TaskResult>, String> {
        Parallelism::run(self, tasks, fit)
    }
}

/// FNV-1a over the bits of what `model` predicts for `rows`.
pub fn fingerprint(model: &dyn Model, data: &Dataset, rows: &[usize]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |v: u64| {
        for b in v.to_le_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    if let Some(p) = model.predict_proba(&data.x, rows) {
        p.as_slice().iter().for_each(|v| eat(v.to_bits()));
    }
    match model.predict(&data.x, rows) {
        Prediction::Classes(c) => c.iter().for_each(|&v| eat(u64::from(v))),
        Prediction::Values(v) => v.iter().for_each(|v| eat(v.to_bits())),
    }
    h
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    sum / n as f64
}

/// Index of the greatest value; ties go to the first (NaN never wins).
fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] || values[best].is_nan() && !v.is_nan() {
            best = i;
        }
    }
    best
}

/// Stratified folds (shuffled with `seed`) for a class target, plain shuffled k-fold for values.
pub fn split(data: &Dataset, rows: &[usize], k: usize, seed: u64) -> Result<Vec<Fold>, String> {
    match &data.y {
        Target::Classes { labels, .. } => stratified_kfold(rows, labels, k, Some(seed)),
        Target::Values(_) => kfold(rows, k, Some(seed)),
    }
}

/// A search: an estimator factory, the candidates to compare, the scoring and the seed of every fold
/// split and fit.
pub struct Search<'a> {
    pub build: &'a Builder<'a>,
    /// Complete hyperparameters of each candidate (base merged with the grid's values).
    pub candidates: Vec<HyperParams>,
    pub scoring: Scoring,
    pub seed: u64,
}

/// Plain k-fold cross-validation of every candidate (a grid search without nesting).
#[derive(Clone, Debug, PartialEq)]
pub struct CvResult {
    /// `scores[c][f]`: candidate `c` on fold `f`.
    pub scores: Vec<Vec<f64>>,
    /// Mean over folds per candidate.
    pub means: Vec<f64>,
    /// The best candidate (first of equals) and its mean.
    pub best: usize,
    pub best_score: f64,
    /// One per task, in task order.
    pub fingerprints: Vec<u64>,
    pub fits: usize,
}

/// Nested cross-validation, with the non-nested score from the same fits.
#[derive(Clone, Debug, PartialEq)]
pub struct NestedResult {
    /// `inner_means[o][c]`: candidate `c`'s mean inner score within outer fold `o`.
    pub inner_means: Vec<Vec<f64>>,
    /// The candidate selected in each outer fold (from `inner_means[o]` only).
    pub chosen: Vec<usize>,
    /// The chosen candidate's refit, scored on each outer test fold.
    pub outer_scores: Vec<f64>,
    /// Mean of `outer_scores`: the unbiased estimate.
    pub nested_score: f64,
    /// `outer_means[c]`: candidate `c`'s mean over the outer test folds.
    pub outer_means: Vec<f64>,
    /// The best of `outer_means` (first of equals) and its value: the optimistic estimate.
    pub non_nested_best: usize,
    pub non_nested_score: f64,
    /// One per task, in task order.
    pub fingerprints: Vec<u64>,
    pub fits: usize,
}

impl Search<'_> {
    /// Fit candidate `task.candidate` on the task's train rows and score its test rows.
    pub fn fit_task(
        &self,
        data: &Dataset,
        task: &Task,
        options: FitOptions,
    ) -> Result<TaskResult, String> {
        let candidate = &self.candidates[task.candidate];
        let what = || match task.inner {
            Some(i) => format!(
                "outer fold {}, inner fold {i}, {}",
                task.outer,
                format_candidate(candidate)
            ),
            None => format!("fold {}, {}", task.outer, format_candidate(candidate)),
        };
        let estimator = (self.build)(candidate).map_err(|e| format!("{}: {e}", what()))?;
        let model = estimator
            .fit(data, &task.train, None, self.seed, options)
            .map_err(|e| format!("{}: fit: {e}", what()))?;
        let score = self
            .scoring
            .score(model.as_ref(), data, &task.test)
            .map_err(|e| format!("{}: {e}", what()))?;
        Ok(TaskResult {
            score,
            fingerprint: fingerprint(model.as_ref(), data, &task.test),
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.candidates.is_empty() {
            return Err("the search has no candidates".into());
        }
        Ok(())
    }

    /// The outer folds of all rows of `data`.
    pub fn outer_folds(&self, data: &Dataset, k: usize) -> Result<Vec<Fold>, String> {
        let rows: Vec<usize> = (0..data.rows()).collect();
        split(data, &rows, k, crate::child_seed(self.seed, 1))
            .map_err(|e| format!("outer folds: {e}"))
    }

    /// The tasks of plain k-fold cross-validation: candidate-major, then fold.
    pub fn cv_tasks(&self, data: &Dataset, k: usize) -> Result<Vec<Task>, String> {
        self.check()?;
        let folds = self.outer_folds(data, k)?;
        let mut tasks = Vec::with_capacity(self.candidates.len() * k);
        for c in 0..self.candidates.len() {
            for (f, fold) in folds.iter().enumerate() {
                tasks.push(Task {
                    outer: f,
                    candidate: c,
                    inner: None,
                    train: fold.train.clone(),
                    test: fold.test.clone(),
                });
            }
        }
        Ok(tasks)
    }

    /// Cross-validate every candidate over `k` folds and pick the best mean.
    pub fn cross_validate(
        &self,
        data: &Dataset,
        k: usize,
        runner: &dyn Runner,
    ) -> Result<CvResult, String> {
        let tasks = self.cv_tasks(data, k)?;
        let results = runner.run(&tasks, &|t, o| self.fit_task(data, t, o))?;
        let scores: Vec<Vec<f64>> = results
            .chunks(k)
            .map(|c| c.iter().map(|r| r.score).collect())
            .collect();
        let means: Vec<f64> = scores.iter().map(|s| mean(s.iter().copied())).collect();
        let best = argmax(&means);
        Ok(CvResult {
            best,
            best_score: means[best],
            scores,
            means,
            fingerprints: results.iter().map(|r| r.fingerprint).collect(),
            fits: tasks.len(),
        })
    }

    /// The tasks of nested cross-validation: for each outer fold, its inner tasks (candidate-major,
    /// then inner fold) and then its outer tasks (one per candidate). The inner folds of outer fold
    /// `o` are split from `outer[o].train` alone.
    pub fn nested_tasks(
        &self,
        data: &Dataset,
        outer_k: usize,
        inner_k: usize,
    ) -> Result<(Vec<Fold>, Vec<Task>), String> {
        self.check()?;
        let outer = self.outer_folds(data, outer_k)?;
        let c_n = self.candidates.len();
        let mut tasks = Vec::with_capacity(outer_k * c_n * (inner_k + 1));
        for (o, fold) in outer.iter().enumerate() {
            let inner = split(
                data,
                &fold.train,
                inner_k,
                crate::child_seed(self.seed, 2 + o as u64),
            )
            .map_err(|e| format!("inner folds of outer fold {o}: {e}"))?;
            for c in 0..c_n {
                for (i, f) in inner.iter().enumerate() {
                    tasks.push(Task {
                        outer: o,
                        candidate: c,
                        inner: Some(i),
                        train: f.train.clone(),
                        test: f.test.clone(),
                    });
                }
            }
            for c in 0..c_n {
                tasks.push(Task {
                    outer: o,
                    candidate: c,
                    inner: None,
                    train: fold.train.clone(),
                    test: fold.test.clone(),
                });
            }
        }
        Ok((outer, tasks))
    }

    /// Nested cross-validation with `outer_k` outer and `inner_k` inner folds (see the module
    /// documentation), reporting nested and non-nested scores side by side.
    pub fn nested(
        &self,
        data: &Dataset,
        outer_k: usize,
        inner_k: usize,
        runner: &dyn Runner,
    ) -> Result<NestedResult, String> {
        let (_, tasks) = self.nested_tasks(data, outer_k, inner_k)?;
        let results = runner.run(&tasks, &|t, o| self.fit_task(data, t, o))?;
        Ok(self.summarise_nested(&tasks, &results, outer_k))
    }

    /// Selection and scores from the results of [`Search::nested_tasks`]'s tasks.
    pub fn summarise_nested(
        &self,
        tasks: &[Task],
        results: &[TaskResult],
        outer_k: usize,
    ) -> NestedResult {
        let c_n = self.candidates.len();
        let mut inner_sum = vec![vec![(0.0, 0usize); c_n]; outer_k];
        let mut outer_score = vec![vec![f64::NAN; c_n]; outer_k];
        for (t, r) in tasks.iter().zip(results) {
            match t.inner {
                Some(_) => {
                    let s = &mut inner_sum[t.outer][t.candidate];
                    s.0 += r.score;
                    s.1 += 1;
                }
                None => outer_score[t.outer][t.candidate] = r.score,
            }
        }
        let inner_means: Vec<Vec<f64>> = inner_sum
            .iter()
            .map(|row| row.iter().map(|&(s, n)| s / n as f64).collect())
            .collect();
        let chosen: Vec<usize> = inner_means.iter().map(|m| argmax(m)).collect();
        let outer_scores: Vec<f64> = chosen
            .iter()
            .enumerate()
            .map(|(o, &c)| outer_score[o][c])
            .collect();
        let outer_means: Vec<f64> = (0..c_n)
            .map(|c| mean(outer_score.iter().map(|row| row[c])))
            .collect();
        let non_nested_best = argmax(&outer_means);
        NestedResult {
            nested_score: mean(outer_scores.iter().copied()),
            non_nested_score: outer_means[non_nested_best],
            non_nested_best,
            inner_means,
            chosen,
            outer_scores,
            outer_means,
            fingerprints: results.iter().map(|r| r.fingerprint).collect(),
            fits: tasks.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::data::Matrix;
    use crate::estimator::Hp;

    /// A small class dataset: 3 classes of 40, 25 and 15 rows, one feature (the row index).
    fn data() -> Dataset {
        let labels: Vec<u32> = (0..80)
            .map(|i| [0, 1, 0, 2, 0, 1, 1, 0, 2, 0, 1, 2, 0, 1, 0, 0][i % 16])
            .collect();
        let x = Matrix::new(80, 1, (0..80).map(f64::from).collect()).unwrap();
        let names = vec!["a".into(), "b".into(), "c".into()];
        Dataset::new(
            "toy",
            x,
            Target::Classes { labels, names },
            vec!["i".into()],
        )
        .unwrap()
    }

    /// Predicts the constant class `class`; records the rows of every fit and every prediction.
    #[derive(Debug)]
    struct Recording {
        class: u32,
        fits: Arc<Mutex<Vec<Vec<usize>>>>,
        scored: Arc<Mutex<Vec<Vec<usize>>>>,
    }

    struct Constant(u32, Arc<Mutex<Vec<Vec<usize>>>>);

    impl Model for Constant {
        fn predict(&self, _x: &Matrix, rows: &[usize]) -> Prediction {
            self.1.lock().unwrap().push(rows.to_vec());
            Prediction::Classes(vec![self.0; rows.len()])
        }
    }

    impl Estimator for Recording {
        fn name(&self) -> &'static str {
            "recording"
        }
        fn fit_checked(
            &self,
            _data: &Dataset,
            rows: &[usize],
            _weights: Option<&[f64]>,
            _seed: u64,
            _options: FitOptions,
        ) -> Result<Box<dyn Model>, String> {
            self.fits.lock().unwrap().push(rows.to_vec());
            Ok(Box::new(Constant(self.class, self.scored.clone())))
        }
    }

    fn class_candidates() -> Vec<HyperParams> {
        ParamGrid::parse("class=0,1,2").unwrap().candidates()
    }

    #[test]
    fn nested_selection_never_sees_outer_test_rows() {
        let d = data();
        let fits = Arc::new(Mutex::new(Vec::new()));
        let scored = Arc::new(Mutex::new(Vec::new()));
        let (f2, s2) = (fits.clone(), scored.clone());
        let build = move |p: &HyperParams| -> Result<Box<dyn Estimator>, String> {
            let Some(Hp::Int(c)) = p.get("class") else {
                return Err("no class".into());
            };
            Ok(Box::new(Recording {
                class: *c as u32,
                fits: f2.clone(),
                scored: s2.clone(),
            }))
        };
        let search = Search {
            build: &build,
            candidates: class_candidates(),
            scoring: Scoring::Accuracy,
            seed: 5,
        };
        let (outer, tasks) = search.nested_tasks(&d, 4, 3).unwrap();
        let result = search.nested(&d, 4, 3, &Parallelism::Serial).unwrap();
        assert_eq!(result.fits, 4 * 3 * 3 + 4 * 3);
        let fits = fits.lock().unwrap();
        let scored = scored.lock().unwrap();
        assert_eq!(fits.len(), result.fits);
        assert_eq!(scored.len(), 2 * result.fits);
        // The serial run fits and scores in task order: check each against its outer fold.
        for ((t, fit_rows), score_rows) in tasks.iter().zip(fits.iter()).zip(scored.chunks(2)) {
            let o = &outer[t.outer];
            assert_eq!(fit_rows, &t.train);
            assert_eq!(
                score_rows,
                [t.test.clone(), t.test.clone()],
                "scored, then fingerprinted"
            );
            let score_rows = &score_rows[0];
            match t.inner {
                Some(_) => {
                    // Selection: fits and scores only ever touch outer training rows.
                    assert!(fit_rows
                        .iter()
                        .chain(score_rows)
                        .all(|r| o.train.contains(r)));
                    assert!(fit_rows
                        .iter()
                        .chain(score_rows)
                        .all(|r| !o.test.contains(r)));
                }
                None => {
                    assert_eq!(fit_rows, &o.train);
                    assert_eq!(score_rows, &o.test);
                }
            }
        }
        // The inner folds of each outer fold are exactly the splitter's folds of its training rows.
        for (o, fold) in outer.iter().enumerate() {
            let labels = d.y.labels().unwrap();
            let inner = stratified_kfold(
                &fold.train,
                labels,
                3,
                Some(crate::child_seed(5, 2 + o as u64)),
            )
            .unwrap();
            let got: Vec<&Vec<usize>> = tasks
                .iter()
                .filter(|t| t.outer == o && t.inner.is_some() && t.candidate == 0)
                .map(|t| &t.test)
                .collect();
            assert_eq!(got, inner.iter().map(|f| &f.test).collect::<Vec<_>>());
        }
        // Class 0 is the majority everywhere: chosen in every fold; nested = non-nested here.
        assert_eq!(result.chosen, vec![0; 4]);
        assert_eq!(result.nested_score, result.non_nested_score);
        assert!((result.nested_score - 40.0 / 80.0).abs() < 0.05);
    }

    #[test]
    fn selection_uses_inner_scores_only() {
        let d = data();
        let build = |p: &HyperParams| crate::estimators::build("dummy.most_frequent", p);
        let search = Search {
            build: &build,
            candidates: vec![HyperParams::new(); 2],
            scoring: Scoring::Accuracy,
            seed: 1,
        };
        let (_, tasks) = search.nested_tasks(&d, 3, 2).unwrap();
        // Invent results: candidate 1 wins inside, candidate 0 wins outside.
        let results: Vec<TaskResult> = tasks
            .iter()
            .map(|t| TaskResult {
                score: match (t.inner, t.candidate) {
                    (Some(_), 1) | (None, 0) => 0.9,
                    _ => 0.5,
                },
                fingerprint: 0,
            })
            .collect();
        let r = search.summarise_nested(&tasks, &results, 3);
        assert_eq!(r.chosen, vec![1, 1, 1]);
        assert_eq!(r.nested_score, 0.5);
        assert_eq!(r.non_nested_best, 0);
        assert_eq!(r.non_nested_score, 0.9);
    }

    #[test]
    fn every_parallelism_and_thread_count_gives_the_serial_result() {
        let d = data();
        let build = |p: &HyperParams| crate::estimators::build("dummy.most_frequent", p);
        let search = Search {
            build: &build,
            candidates: vec![HyperParams::new(); 3],
            scoring: Scoring::NegLogLoss,
            seed: 9,
        };
        let nested = search.nested(&d, 4, 3, &Parallelism::Serial).unwrap();
        let cv = search.cross_validate(&d, 5, &Parallelism::Serial).unwrap();
        assert_eq!(cv.fits, 15);
        for threads in [1, 2, 4] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for name in Parallelism::NAMES {
                let p = Parallelism::parse(name).unwrap();
                let (n, c) = pool.install(|| {
                    (
                        search.nested(&d, 4, 3, &p).unwrap(),
                        search.cross_validate(&d, 5, &p).unwrap(),
                    )
                });
                assert_eq!(n, nested, "{name} at {threads} threads");
                assert_eq!(c, cv, "{name} at {threads} threads");
                assert_eq!(n.nested_score.to_bits(), nested.nested_score.to_bits());
            }
        }
        // Fingerprints tell fits apart (the most-frequent probabilities depend on the rows).
        let mut distinct = nested.fingerprints.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert!(distinct.len() > 1);
    }

    #[test]
    fn errors_name_the_fold_and_candidate() {
        let d = data();
        let build = |p: &HyperParams| crate::estimators::build("dummy.most_frequent", p);
        let search = Search {
            build: &build,
            candidates: class_candidates(),
            scoring: Scoring::Accuracy,
            seed: 1,
        };
        assert_eq!(
            search.cross_validate(&d, 2, &Parallelism::All).unwrap_err(),
            "fold 0, class=0: estimator `dummy.most_frequent` takes no parameter `class`"
        );
        let empty = Search {
            build: &build,
            candidates: vec![],
            scoring: Scoring::Accuracy,
            seed: 1,
        };
        assert_eq!(
            empty.nested(&d, 2, 2, &Parallelism::All).unwrap_err(),
            "the search has no candidates"
        );
        let ok = Search {
            build: &build,
            candidates: vec![HyperParams::new()],
            scoring: Scoring::R2,
            seed: 1,
        };
        assert_eq!(
            ok.cross_validate(&d, 2, &Parallelism::Serial).unwrap_err(),
            "fold 0, defaults: scoring `r2` is for regression but the target is classes; use accuracy"
        );
        assert_eq!(
            ok.nested(&d, 100, 2, &Parallelism::Serial).unwrap_err(),
            "outer folds: StratifiedKFold: 100 folds but only 80 rows; use at most 80 folds"
        );
        assert_eq!(
            Parallelism::parse("tree").unwrap_err(),
            "unknown parallelism `tree`; use one of serial, trees, folds, grid, all"
        );
    }
}

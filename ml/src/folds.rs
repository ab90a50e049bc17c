//! Splitters: KFold, StratifiedKFold, RepeatedStratifiedKFold, GroupKFold.
//!
//! Written here rather than taken from linfa or smartcore: splitting is part of what the course
//! teaches, nested cross-validation needs splitters over an arbitrary row list, and linfa's KFold
//! leaves the last n mod k rows out of every validation fold.
//!
//! Every splitter works on a list of row indices, not on a whole dataset: nested cross-validation
//! splits the outer training rows, and only those, into inner folds, so rows outside the list can
//! never reach an inner fit. Each returns [`Fold`]s whose test sets partition the given rows (every
//! row in exactly one test fold per repetition); train and test lists are sorted ascending so a fold
//! is one canonical set whatever the order of the input.
//!
//! Shuffling is seeded (Xoshiro256++ seeded from [`crate::child_seed`]); unshuffled splitters cut the
//! rows in the order given, like scikit-learn's. StratifiedKFold deals each class's rows round robin
//! over the folds, continuing from fold to fold across classes, so every fold holds either
//! ⌊n_c/k⌋ or ⌈n_c/k⌉ rows of each class c and fold sizes differ by at most one. (scikit-learn's
//! allocation reaches the same bounds by a different route, so its folds are not the same rows.)

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_xoshiro::Xoshiro256PlusPlus;

/// One split: the rows to fit on and the rows to score.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fold {
    pub train: Vec<usize>,
    pub test: Vec<usize>,
}

fn check_k(k: usize, n: usize, what: &str) -> Result<(), String> {
    if k < 2 {
        return Err(format!("{what}: {k} folds; use at least 2"));
    }
    if k > n {
        return Err(format!(
            "{what}: {k} folds but only {n} rows; use at most {n} folds"
        ));
    }
    Ok(())
}

fn shuffled(rows: &[usize], seed: Option<u64>) -> Vec<usize> {
    let mut rows = rows.to_vec();
    if let Some(seed) = seed {
        rows.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(crate::child_seed(
            seed, 0,
        )));
    }
    rows
}

/// Folds from an assignment `fold_of[i]` of `rows[i]` to a test fold.
fn from_assignment(rows: &[usize], fold_of: &[usize], k: usize) -> Vec<Fold> {
    (0..k)
        .map(|f| {
            let (mut test, mut train) = (Vec::new(), Vec::new());
            for (&r, &g) in rows.iter().zip(fold_of) {
                if g == f {
                    test.push(r);
                } else {
                    train.push(r);
                }
            }
            test.sort_unstable();
            train.sort_unstable();
            Fold { train, test }
        })
        .collect()
}

/// scikit-learn's `KFold(k, shuffle=seed.is_some(), random_state=seed)`: `k` consecutive blocks
/// of the (optionally shuffled) rows, the first `n mod k` one row larger.
pub fn kfold(rows: &[usize], k: usize, seed: Option<u64>) -> Result<Vec<Fold>, String> {
    check_k(k, rows.len(), "KFold")?;
    let order = shuffled(rows, seed);
    let (n, mut fold_of) = (order.len(), Vec::with_capacity(order.len()));
    for f in 0..k {
        let size = n / k + usize::from(f < n % k);
        fold_of.extend(std::iter::repeat_n(f, size));
    }
    Ok(from_assignment(&order, &fold_of, k))
}

/// Stratified k-fold over `rows`, whose classes are `labels[row]`: each class's rows (shuffled when
/// seeded) are dealt round robin over the folds. Needs at least `k` rows; a class with fewer than
/// `k` rows is allowed (some folds then lack it), as in scikit-learn, which only warns.
pub fn stratified_kfold(
    rows: &[usize],
    labels: &[u32],
    k: usize,
    seed: Option<u64>,
) -> Result<Vec<Fold>, String> {
    check_k(k, rows.len(), "StratifiedKFold")?;
    let order = shuffled(rows, seed);
    let classes = order
        .iter()
        .map(|&r| labels[r] as usize + 1)
        .max()
        .unwrap_or(0);
    let mut next = 0;
    let mut fold_of = vec![0; order.len()];
    for c in 0..classes {
        for (i, &r) in order.iter().enumerate() {
            if labels[r] as usize == c {
                fold_of[i] = next;
                next = (next + 1) % k;
            }
        }
    }
    Ok(from_assignment(&order, &fold_of, k))
}

/// `repeats` stratified k-fold splits, repetition `r` shuffled with `child_seed(seed, r)`
/// (scikit-learn's `RepeatedStratifiedKFold`): `repeats × k` folds, repetition-major.
pub fn repeated_stratified_kfold(
    rows: &[usize],
    labels: &[u32],
    k: usize,
    repeats: usize,
    seed: u64,
) -> Result<Vec<Fold>, String> {
    if repeats == 0 {
        return Err("RepeatedStratifiedKFold: 0 repeats; use at least 1".into());
    }
    let mut folds = Vec::with_capacity(k * repeats);
    for r in 0..repeats {
        folds.extend(stratified_kfold(
            rows,
            labels,
            k,
            Some(crate::child_seed(seed, r as u64)),
        )?);
    }
    Ok(folds)
}

/// scikit-learn's `GroupKFold`: rows of one group (`groups[row]`) stay in one fold; groups, largest
/// first (ties by group id), go to the fold with the fewest rows so far (ties to the lowest fold).
pub fn group_kfold(rows: &[usize], groups: &[u64], k: usize) -> Result<Vec<Fold>, String> {
    let mut sizes = std::collections::BTreeMap::<u64, usize>::new();
    for &r in rows {
        *sizes.entry(groups[r]).or_default() += 1;
    }
    if k < 2 {
        return Err(format!("GroupKFold: {k} folds; use at least 2"));
    }
    if k > sizes.len() {
        return Err(format!(
            "GroupKFold: {k} folds but only {} groups; use at most {} folds",
            sizes.len(),
            sizes.len()
        ));
    }
    let mut by_size: Vec<(u64, usize)> = sizes.into_iter().collect();
    by_size.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut load = vec![0usize; k];
    let mut fold_of_group = std::collections::BTreeMap::new();
    for (g, size) in by_size {
        let f = (0..k).min_by_key(|&f| (load[f], f)).unwrap_or(0);
        load[f] += size;
        fold_of_group.insert(g, f);
    }
    let fold_of: Vec<usize> = rows.iter().map(|&r| fold_of_group[&groups[r]]).collect();
    Ok(from_assignment(rows, &fold_of, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of `rows` in exactly one test fold per repetition, train = rows − test.
    fn assert_partition(rows: &[usize], folds: &[Fold], k: usize) {
        for rep in folds.chunks(k) {
            let mut all: Vec<usize> = rep.iter().flat_map(|f| f.test.clone()).collect();
            all.sort_unstable();
            let mut want = rows.to_vec();
            want.sort_unstable();
            assert_eq!(all, want);
            for f in rep {
                let mut both: Vec<usize> = f.train.iter().chain(&f.test).copied().collect();
                both.sort_unstable();
                assert_eq!(both, want);
            }
        }
    }

    #[test]
    fn kfold_cuts_like_scikit_learn() {
        let rows: Vec<usize> = (0..10).collect();
        let folds = kfold(&rows, 3, None).unwrap();
        assert_eq!(folds[0].test, vec![0, 1, 2, 3]);
        assert_eq!(folds[1].test, vec![4, 5, 6]);
        assert_eq!(folds[2].test, vec![7, 8, 9]);
        assert_eq!(folds[2].train, vec![0, 1, 2, 3, 4, 5, 6]);
        let shuffled = kfold(&rows, 3, Some(7)).unwrap();
        assert_partition(&rows, &shuffled, 3);
        assert_ne!(shuffled, folds);
        assert_eq!(shuffled, kfold(&rows, 3, Some(7)).unwrap());
        assert_eq!(
            kfold(&rows, 11, None).unwrap_err(),
            "KFold: 11 folds but only 10 rows; use at most 10 folds"
        );
        assert_eq!(
            kfold(&rows, 1, None).unwrap_err(),
            "KFold: 1 folds; use at least 2"
        );
    }

    #[test]
    fn stratified_folds_keep_class_proportions_within_one() {
        // 3 classes of 17, 9 and 4 rows, interleaved; only a subset of rows is split.
        let labels: Vec<u32> = (0..40).map(|i| [0, 0, 1, 0, 2, 1, 0, 0][i % 8]).collect();
        let rows: Vec<usize> = (0..40).filter(|r| r % 5 != 0).collect();
        for seed in [None, Some(1), Some(2)] {
            for k in [2, 3, 5] {
                let folds = stratified_kfold(&rows, &labels, k, seed).unwrap();
                assert_partition(&rows, &folds, k);
                for c in 0..3u32 {
                    let n_c = rows.iter().filter(|&&r| labels[r] == c).count();
                    for f in &folds {
                        let in_fold = f.test.iter().filter(|&&r| labels[r] == c).count();
                        assert!(
                            in_fold == n_c / k || in_fold == n_c.div_ceil(k),
                            "class {c}: {in_fold} of {n_c} in a fold of k = {k}"
                        );
                    }
                }
                let sizes: Vec<usize> = folds.iter().map(|f| f.test.len()).collect();
                assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
                // Only rows of the list appear.
                assert!(folds.iter().all(|f| f.train.iter().all(|r| r % 5 != 0)));
            }
        }
    }

    #[test]
    fn repeated_stratified_reshuffles_each_repetition() {
        let labels: Vec<u32> = (0..30).map(|i| (i % 3 == 0) as u32).collect();
        let rows: Vec<usize> = (0..30).collect();
        let folds = repeated_stratified_kfold(&rows, &labels, 3, 4, 11).unwrap();
        assert_eq!(folds.len(), 12);
        assert_partition(&rows, &folds, 3);
        assert_ne!(folds[0..3], folds[3..6]);
        assert_eq!(
            repeated_stratified_kfold(&rows, &labels, 3, 0, 11).unwrap_err(),
            "RepeatedStratifiedKFold: 0 repeats; use at least 1"
        );
    }

    #[test]
    fn group_kfold_keeps_groups_together_and_balances() {
        // Groups of sizes 5, 4, 3, 2, 1 (group g has 5 - g rows).
        let groups: Vec<u64> = (0..5u64)
            .flat_map(|g| std::iter::repeat_n(g, 5 - g as usize))
            .collect();
        let rows: Vec<usize> = (0..groups.len()).collect();
        let folds = group_kfold(&rows, &groups, 2).unwrap();
        assert_partition(&rows, &folds, 2);
        // 5 -> fold 0; 4 -> fold 1; 3 -> fold 1 (4 < 5); 2 -> fold 0 (5 < 7); 1 -> fold 0 (7 = 7).
        let test_groups = |f: &Fold| {
            let mut g: Vec<u64> = f.test.iter().map(|&r| groups[r]).collect();
            g.dedup();
            g
        };
        assert_eq!(test_groups(&folds[0]), vec![0, 3, 4]);
        assert_eq!(test_groups(&folds[1]), vec![1, 2]);
        assert_eq!(
            group_kfold(&rows, &groups, 6).unwrap_err(),
            "GroupKFold: 6 folds but only 5 groups; use at most 5 folds"
        );
    }
}

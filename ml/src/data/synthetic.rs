//! A `make_classification`-style generator (Guyon's Madelon design, as scikit-learn's
//! `sklearn.datasets.make_classification`): Gaussian clusters at the vertices of a hypercube in the
//! informative features, redundant features as random linear combinations of them, the rest noise.
//!
//! The output depends on the seed alone, on every machine: the random stream is xoshiro256++ and the
//! Gaussian draws use the polar method with a logarithm written here from `+ - × /` and bit
//! operations ([`portable_ln`]), so no platform `libm` enters the values.

use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use super::{Dataset, Matrix, Target};

/// What to generate; [`Default`] matches scikit-learn's defaults where they apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Synthetic {
    pub samples: usize,
    pub features: usize,
    /// Features that carry the class signal (the hypercube's dimensions).
    pub informative: usize,
    /// Random linear combinations of the informative features.
    pub redundant: usize,
    pub classes: usize,
    pub clusters_per_class: usize,
    /// Relative class proportions (one per class, positive); `None` for balanced classes.
    pub class_weights: Option<Vec<f64>>,
    /// Half the side of the hypercube: larger is easier.
    pub class_sep: f64,
    /// Fraction of labels replaced by a random class (label noise).
    pub flip_y: f64,
    pub seed: u64,
}

impl Default for Synthetic {
    fn default() -> Self {
        Synthetic {
            samples: 100,
            features: 20,
            informative: 2,
            redundant: 2,
            classes: 2,
            clusters_per_class: 2,
            class_weights: None,
            class_sep: 1.0,
            flip_y: 0.01,
            seed: 0,
        }
    }
}

/// Generate the dataset `synthetic` described by `spec`. Features are ordered informative, redundant,
/// noise; rows are shuffled.
pub fn make_classification(spec: &Synthetic) -> Result<Dataset, String> {
    let s = spec;
    let weights = check(s)?;
    let clusters = s.classes * s.clusters_per_class.max(1);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(s.seed);
    let (n, p, k) = (s.samples, s.features, s.informative);
    let per_cluster = cluster_sizes(s, &weights, clusters);
    let vertices = vertices(&mut rng, clusters, k);
    let mut x = vec![0.0; n * p];
    let mut y = vec![0u32; n];
    let mut normal = Normal::default();
    informative(
        s,
        &per_cluster,
        &vertices,
        &mut rng,
        &mut normal,
        &mut x,
        &mut y,
    );
    redundant_and_noise(s, &mut rng, &mut normal, &mut x);
    flip_and_shuffle(s, &mut rng, &mut x, &mut y);
    let names = (0..p).map(|j| format!("x{j}")).collect();
    let class_names = (0..s.classes).map(|c| c.to_string()).collect();
    Dataset::new(
        "synthetic",
        Matrix::new(n, p, x)?,
        Target::Classes {
            labels: y,
            names: class_names,
        },
        names,
    )
}

/// Check a spec; returns the class weights (all 1 when not given).
fn check(s: &Synthetic) -> Result<Vec<f64>, String> {
    if s.samples == 0 || s.features == 0 {
        return Err("synthetic: `samples` and `features` must be at least 1".into());
    }
    if s.classes < 2 {
        return Err(format!(
            "synthetic: `classes` = {} but a classification needs at least 2",
            s.classes
        ));
    }
    if s.informative == 0 || s.informative + s.redundant > s.features {
        return Err(format!(
            "synthetic: `informative` ({}) + `redundant` ({}) must be between 1 and `features` ({})",
            s.informative, s.redundant, s.features
        ));
    }
    let clusters = s.classes * s.clusters_per_class.max(1);
    if s.informative < 63 && clusters as u64 > 1u64 << s.informative {
        return Err(format!(
            "synthetic: {} classes × {} clusters need more than 2^{} hypercube vertices; raise \
             `informative` or lower `classes` / `clusters_per_class`",
            s.classes, s.clusters_per_class, s.informative
        ));
    }
    if !(0.0..=1.0).contains(&s.flip_y) {
        return Err(format!(
            "synthetic: `flip_y` = {} is outside 0..=1",
            s.flip_y
        ));
    }
    match &s.class_weights {
        None => Ok(vec![1.0; s.classes]),
        Some(w) => {
            if w.len() != s.classes || w.iter().any(|&v| !(v.is_finite() && v > 0.0)) {
                return Err(format!(
                    "synthetic: `class_weights` needs {} positive numbers (one per class), got {:?}",
                    s.classes, w
                ));
            }
            Ok(w.clone())
        }
    }
}

/// Samples per cluster: cluster c belongs to class c % classes; leftovers go round-robin.
fn cluster_sizes(s: &Synthetic, weights: &[f64], clusters: usize) -> Vec<usize> {
    let n = s.samples;
    let total: f64 = weights.iter().sum();
    let mut per_cluster: Vec<usize> = (0..clusters)
        .map(|c| {
            let w = weights[c % s.classes] / total / s.clusters_per_class.max(1) as f64;
            (n as f64 * w).floor() as usize
        })
        .collect();
    let mut c = 0;
    while per_cluster.iter().sum::<usize>() < n {
        per_cluster[c % clusters] += 1;
        c += 1;
    }
    per_cluster
}

/// Distinct vertices of the `k`-dimensional hypercube (as bit sets), one per cluster.
fn vertices(rng: &mut Xoshiro256PlusPlus, clusters: usize, k: usize) -> Vec<u64> {
    let mut vertices: Vec<u64> = Vec::with_capacity(clusters);
    let span = if k >= 64 { u64::MAX } else { 1u64 << k };
    while vertices.len() < clusters {
        let v = if span == u64::MAX {
            rng.random::<u64>()
        } else {
            rng.random_range(0..span)
        };
        if !vertices.contains(&v) {
            vertices.push(v);
        }
    }
    vertices
}

/// The informative features and the labels, cluster after cluster: each cluster's rows are
/// `z · A + centroid` with `z` standard normal, `A` a random covariance (uniform in [-1, 1)) and the
/// centroid its hypercube vertex at ± `class_sep`.
fn informative(
    s: &Synthetic,
    per_cluster: &[usize],
    vertices: &[u64],
    rng: &mut Xoshiro256PlusPlus,
    normal: &mut Normal,
    x: &mut [f64],
    y: &mut [u32],
) {
    let (p, k) = (s.features, s.informative);
    let mut row = 0;
    for (cl, &count) in per_cluster.iter().enumerate() {
        let a: Vec<f64> = (0..k * k)
            .map(|_| 2.0 * rng.random::<f64>() - 1.0)
            .collect();
        let centroid: Vec<f64> = (0..k)
            .map(|j| {
                let bit = if j < 64 { (vertices[cl] >> j) & 1 } else { 0 };
                (2.0 * bit as f64 - 1.0) * s.class_sep
            })
            .collect();
        let mut z = vec![0.0; k];
        for _ in 0..count {
            for zj in z.iter_mut() {
                *zj = normal.sample(rng);
            }
            let out = &mut x[row * p..row * p + k];
            for (j, o) in out.iter_mut().enumerate() {
                *o = centroid[j] + (0..k).map(|i| z[i] * a[i * k + j]).sum::<f64>();
            }
            y[row] = (cl % s.classes) as u32;
            row += 1;
        }
    }
}

/// Redundant features (informative · B, B uniform in [-1, 1)), then standard normal noise in the
/// remaining columns.
fn redundant_and_noise(
    s: &Synthetic,
    rng: &mut Xoshiro256PlusPlus,
    normal: &mut Normal,
    x: &mut [f64],
) {
    let (n, p, k) = (s.samples, s.features, s.informative);
    let b: Vec<f64> = (0..k * s.redundant)
        .map(|_| 2.0 * rng.random::<f64>() - 1.0)
        .collect();
    for r in 0..n {
        for j in 0..s.redundant {
            let v = (0..k).map(|i| x[r * p + i] * b[i * s.redundant + j]).sum();
            x[r * p + k + j] = v;
        }
        for j in k + s.redundant..p {
            x[r * p + j] = normal.sample(rng);
        }
    }
}

/// Label noise (`flip_y`), then a row shuffle (Fisher–Yates).
fn flip_and_shuffle(s: &Synthetic, rng: &mut Xoshiro256PlusPlus, x: &mut [f64], y: &mut [u32]) {
    let (n, p) = (s.samples, s.features);
    for label in y.iter_mut() {
        if s.flip_y > 0.0 && rng.random::<f64>() < s.flip_y {
            *label = rng.random_range(0..s.classes as u32);
        }
    }
    for i in (1..n).rev() {
        let j = rng.random_range(0..=i);
        if i != j {
            y.swap(i, j);
            for c in 0..p {
                x.swap(i * p + c, j * p + c);
            }
        }
    }
}

/// Standard normal draws by Marsaglia's polar method (two per acceptance; the second is kept).
#[derive(Default)]
struct Normal {
    spare: Option<f64>,
}

impl Normal {
    fn sample(&mut self, rng: &mut impl Rng) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        loop {
            let u = 2.0 * rng.random::<f64>() - 1.0;
            let v = 2.0 * rng.random::<f64>() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                let f = (-2.0 * portable_ln(s) / s).sqrt();
                self.spare = Some(v * f);
                return u * f;
            }
        }
    }
}

/// Natural logarithm of a positive, finite, normal `x`, from IEEE-exact operations only (so it is the
/// same bit for bit on every platform, unlike `f64::ln`, which calls the system's libm): split
/// `x = m · 2^e` with `m` in [√½, √2), then `ln m = 2 atanh((m - 1)/(m + 1))` by its series. Accurate
/// to a few ulp.
pub fn portable_ln(x: f64) -> f64 {
    const LN2: f64 = std::f64::consts::LN_2;
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    // |t| < 0.1716, so t^2 < 0.0295: 14 terms leave an error below 1e-22.
    let mut sum = 0.0;
    let mut k = 27.0;
    while k >= 1.0 {
        sum = sum * t2 + 1.0 / k;
        k -= 2.0;
    }
    2.0 * t * sum + e as f64 * LN2
}

/// Pure noise: `samples × features` values uniform in [0, 1) and balanced labels (row `i` is class
/// `i mod classes`, rows then shuffled), all from `seed`. No feature carries any signal, so an
/// honest estimate of any learner's accuracy is chance, 1 / `classes`: the dataset `noise` of the
/// leakage lesson, where selecting features on every row before cross-validation finds "signal".
pub fn make_noise(
    samples: usize,
    features: usize,
    classes: usize,
    seed: u64,
) -> Result<Dataset, String> {
    use rand::seq::SliceRandom;
    if samples < 2 || features == 0 || classes < 2 {
        return Err("noise: needs at least 2 samples, 1 feature and 2 classes".into());
    }
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let x: Vec<f64> = (0..samples * features)
        .map(|_| rng.random::<f64>())
        .collect();
    let mut labels: Vec<u32> = (0..samples).map(|i| (i % classes) as u32).collect();
    labels.shuffle(&mut rng);
    Dataset::new(
        "noise",
        Matrix::new(samples, features, x)?,
        Target::Classes {
            labels,
            names: (0..classes).map(|c| c.to_string()).collect(),
        },
        (0..features).map(|j| format!("x{j}")).collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_ln_matches_libm() {
        for &x in &[1e-300, 1e-9, 0.01, 0.5, 0.7, 1.0, 1.5, 2.0, 10.0, 1e12] {
            let (a, b) = (portable_ln(x), x.ln());
            assert!(
                (a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0),
                "{x}: {a} {b}"
            );
        }
    }

    #[test]
    fn same_seed_same_data_and_class_weights_hold() {
        let spec = Synthetic {
            samples: 1000,
            features: 8,
            informative: 4,
            redundant: 2,
            classes: 3,
            class_weights: Some(vec![0.7, 0.2, 0.1]),
            flip_y: 0.0,
            seed: 7,
            ..Synthetic::default()
        };
        let a = make_classification(&spec).unwrap();
        assert_eq!(a, make_classification(&spec).unwrap());
        let other = make_classification(&Synthetic {
            seed: 8,
            ..spec.clone()
        })
        .unwrap();
        assert_ne!(a.x, other.x);
        let mut counts = [0; 3];
        for &l in a.y.labels().unwrap() {
            counts[l as usize] += 1;
        }
        assert_eq!(counts, [700, 200, 100]);
        // A fingerprint pinned once: any change to the stream or the arithmetic shows here.
        let sum: f64 = a.x.as_slice().iter().sum();
        assert_eq!(format!("{sum:.9}"), "-968.812927501");
    }

    #[test]
    fn bad_specs_are_explained() {
        let bad = Synthetic {
            informative: 1,
            classes: 3,
            ..Synthetic::default()
        };
        assert_eq!(
            make_classification(&bad).unwrap_err(),
            "synthetic: 3 classes × 2 clusters need more than 2^1 hypercube vertices; raise \
             `informative` or lower `classes` / `clusters_per_class`"
        );
        let bad = Synthetic {
            class_weights: Some(vec![1.0]),
            ..Synthetic::default()
        };
        assert_eq!(
            make_classification(&bad).unwrap_err(),
            "synthetic: `class_weights` needs 2 positive numbers (one per class), got [1.0]"
        );
    }
}

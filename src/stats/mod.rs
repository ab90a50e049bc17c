//! Statistics over the timed repetitions of one point: a [`Summary`] (min, median, mean, sample
//! standard deviation and the 95 % confidence interval of the mean), quantiles, and Tukey's outlier
//! fences as a warning helper.
//!
//! Each function is small and names its reference, so that a student can check the numbers by hand:
//!
//! * the confidence interval of the mean uses Student's t distribution with n − 1 degrees of freedom
//!   ([`t_975`]): exact values for df ≤ 30, the Cornish–Fisher expansion beyond (Abramowitz & Stegun
//!   26.7.5), accurate to better than 1e-7;
//! * quantiles interpolate linearly between order statistics (Hyndman & Fan 1996, definition 7, the
//!   default of R, NumPy and spreadsheets);
//! * outliers are counted outside Tukey's fences Q1 − 1.5 IQR and Q3 + 1.5 IQR (Tukey 1977,
//!   *Exploratory Data Analysis*), as hyperfine and criterion.rs do.
//!
//! Nothing here panics on odd input: empty slices give `None`, and NaN values are the caller's
//! business (the point runner never records them).

use serde::{Deserialize, Serialize};

/// Descriptive statistics of a sample of durations in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Median (the mean of the two middle values for an even n).
    pub median: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (divisor n − 1); 0 for n = 1.
    pub stddev: f64,
    /// Lower end of the 95 % confidence interval of the mean: mean − t · stddev / √n.
    pub ci95_low: f64,
    /// Upper end of the 95 % confidence interval of the mean: mean + t · stddev / √n.
    pub ci95_high: f64,
}

impl Summary {
    /// Summarise `values`; `None` for an empty slice.
    ///
    /// With n = 1 the interval is degenerate: `ci95_low = ci95_high = value` and `stddev = 0`
    /// (one measurement says nothing about its spread; the report warns about it).
    ///
    /// ```
    /// use scalelab::stats::{t_975, Summary};
    ///
    /// let s = Summary::of(&[4.0, 1.0, 3.0, 2.0]).unwrap();
    /// assert_eq!((s.n, s.min, s.max, s.median, s.mean), (4, 1.0, 4.0, 2.5, 2.5));
    /// // Sample standard deviation (n − 1), and the t-based interval with 3 degrees of freedom.
    /// assert!((s.stddev - (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
    /// assert!((s.ci95_half_width() - t_975(3) * s.stddev / 2.0).abs() < 1e-12);
    /// assert_eq!(Summary::of(&[]), None);
    /// ```
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let mean = sorted.iter().sum::<f64>() / n as f64;
        let stddev = if n > 1 {
            let ss: f64 = sorted.iter().map(|x| (x - mean) * (x - mean)).sum();
            (ss / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        let half = if n > 1 {
            t_975(n as u64 - 1) * stddev / (n as f64).sqrt()
        } else {
            0.0
        };
        Some(Summary {
            n,
            min: sorted[0],
            max: sorted[n - 1],
            median: quantile_sorted(&sorted, 0.5),
            mean,
            stddev,
            ci95_low: mean - half,
            ci95_high: mean + half,
        })
    }

    /// Half the width of the 95 % confidence interval (the "±" of `mean ± ci`).
    pub fn ci95_half_width(&self) -> f64 {
        (self.ci95_high - self.ci95_low) / 2.0
    }

    /// Coefficient of variation: stddev / median (0 when the median is 0). The report flags points
    /// above [`HIGH_VARIANCE`].
    pub fn relative_stddev(&self) -> f64 {
        if self.median > 0.0 {
            self.stddev / self.median
        } else {
            0.0
        }
    }
}

/// Relative standard deviation (stddev / median) above which a point's timing is called noisy.
pub const HIGH_VARIANCE: f64 = 0.10;

/// Two-sided 95 % critical value of Student's t distribution with `df` degrees of freedom, i.e. the
/// 0.975 quantile t₀.₉₇₅(df). `df = 0` is treated as 1.
///
/// Exact (to 1e-9) tabulated values for df ≤ 30; for larger df the Cornish–Fisher expansion of the
/// t quantile in powers of 1/df around the normal quantile z = 1.959964 (Abramowitz & Stegun 26.7.5,
/// four terms), whose error is below 1e-7 there. As df → ∞ the value tends to z.
///
/// ```
/// use scalelab::stats::{t_975, Z_975};
///
/// assert_eq!(t_975(1), 12.706204736);
/// assert_eq!(t_975(0), t_975(1));
/// // The expansion continues the table smoothly, and tends to the normal quantile.
/// assert!(t_975(31) < t_975(30) && t_975(31) > 2.03);
/// assert!((t_975(1_000_000) - Z_975).abs() < 1e-5);
/// ```
pub fn t_975(df: u64) -> f64 {
    const TABLE: [f64; 30] = [
        12.706204736,
        4.302652730,
        3.182446305,
        2.776445105,
        2.570581836,
        2.446911851,
        2.364624252,
        2.306004135,
        2.262157163,
        2.228138852,
        2.200985160,
        2.178812830,
        2.160368656,
        2.144786688,
        2.131449546,
        2.119905299,
        2.109815578,
        2.100922040,
        2.093024054,
        2.085963447,
        2.079613845,
        2.073873068,
        2.068657610,
        2.063898562,
        2.059538553,
        2.055529439,
        2.051830516,
        2.048407142,
        2.045229642,
        2.042272456,
    ];
    let df = df.max(1);
    if df <= 30 {
        return TABLE[df as usize - 1];
    }
    let z = Z_975;
    let n = df as f64;
    let g1 = (z.powi(3) + z) / 4.0;
    let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
    let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
    let g4 = (79.0 * z.powi(9) + 776.0 * z.powi(7) + 1482.0 * z.powi(5)
        - 1920.0 * z.powi(3)
        - 945.0 * z)
        / 92160.0;
    z + g1 / n + g2 / (n * n) + g3 / n.powi(3) + g4 / n.powi(4)
}

/// The 0.975 quantile of the standard normal distribution (the limit of [`t_975`]).
pub const Z_975: f64 = 1.959_963_984_540_054;

/// The `q`-quantile (0 ≤ q ≤ 1) of an ascending slice, interpolating linearly between order
/// statistics (Hyndman & Fan definition 7: position (n − 1)·q). `NaN` for an empty slice.
///
/// ```
/// use scalelab::stats::{quantile, quantile_sorted};
///
/// // Position (4 − 1) · 0.25 = 0.75: three quarters of the way from 1 to 2.
/// assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0, 4.0], 0.25), 1.75);
/// assert_eq!(quantile(&[4.0, 3.0, 2.0, 1.0], 0.25), 1.75);
/// assert_eq!(quantile(&[7.0], 0.9), 7.0);
/// assert!(quantile(&[], 0.5).is_nan());
/// ```
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let pos = (n - 1) as f64 * q.clamp(0.0, 1.0);
            let lo = pos.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            let frac = pos - lo as f64;
            sorted[lo] + (sorted[hi] - sorted[lo]) * frac
        }
    }
}

/// The `q`-quantile of `values` in any order (see [`quantile_sorted`]).
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    quantile_sorted(&sorted, q)
}

/// Values outside Tukey's fences: below Q1 − 1.5·IQR or above Q3 + 1.5·IQR.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Outliers {
    /// Values below the lower fence (unusually fast repetitions).
    pub low: usize,
    /// Values above the upper fence (unusually slow repetitions: interference, page faults, ...).
    pub high: usize,
}

impl Outliers {
    /// Count the values of `values` outside Tukey's 1.5 IQR fences. Fewer than 4 values have no
    /// meaningful quartiles and report no outliers.
    ///
    /// ```
    /// use scalelab::stats::Outliers;
    ///
    /// // Q1 = 1.0, Q3 = 1.1: the fences are 0.85 and 1.25, so only the 5.0 lies outside.
    /// let o = Outliers::tukey(&[1.0, 1.1, 0.9, 1.0, 5.0]);
    /// assert_eq!((o.low, o.high), (0, 1));
    /// assert_eq!(Outliers::tukey(&[1.0, 9.0, 1.0]).total(), 0, "too few values for quartiles");
    /// ```
    pub fn tukey(values: &[f64]) -> Outliers {
        if values.len() < 4 {
            return Outliers::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let q1 = quantile_sorted(&sorted, 0.25);
        let q3 = quantile_sorted(&sorted, 0.75);
        let iqr = q3 - q1;
        let (lo, hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        Outliers {
            low: sorted.iter().filter(|&&x| x < lo).count(),
            high: sorted.iter().filter(|&&x| x > hi).count(),
        }
    }

    /// All outliers, low and high.
    pub fn total(&self) -> usize {
        self.low + self.high
    }

    /// A warning that says what to do, or `None` when there are no outliers. `what` names the
    /// sample, e.g. the point.
    pub fn warning(&self, what: &str, n: usize) -> Option<String> {
        if self.total() == 0 {
            return None;
        }
        Some(format!(
            "{what}: {} of {n} repetitions are outliers (Tukey 1.5 IQR fences; {} slow, {} fast); \
             close other programs, pin threads (e.g. RAYON_NUM_THREADS, taskset) or raise `repetitions`",
            self.total(),
            self.high,
            self.low
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn t_quantiles_match_tables() {
        // Reference values: any t table (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
        assert!(close(t_975(1), 12.706, 1e-3));
        assert!(close(t_975(2), 4.303, 1e-3));
        assert!(close(t_975(4), 2.776, 1e-3));
        assert!(close(t_975(9), 2.262, 1e-3));
        assert!(close(t_975(10), 2.228, 1e-3));
        assert!(close(t_975(29), 2.045, 1e-3));
        assert!(close(t_975(30), 2.042, 1e-3));
        // Beyond the table: Cornish–Fisher, against exact values.
        assert!(close(t_975(40), 2.021_075_39, 1e-6));
        assert!(close(t_975(60), 2.000_297_82, 1e-6));
        assert!(close(t_975(120), 1.979_930_41, 1e-6));
        assert!(close(t_975(1000), 1.962_339_08, 1e-6));
        assert!(close(t_975(u64::MAX / 2), Z_975, 1e-9));
        assert_eq!(t_975(0), t_975(1));
        // Monotone decreasing across the table/expansion seam.
        for df in 1..200 {
            assert!(t_975(df + 1) < t_975(df), "df = {df}");
        }
    }

    #[test]
    fn summary_of_known_sample() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sample variance 32/7.
        let s = Summary::of(&[9.0, 2.0, 4.0, 4.0, 5.0, 4.0, 5.0, 7.0]).unwrap();
        assert_eq!(s.n, 8);
        assert_eq!(s.min, 2.0);
        assert_eq!(s.max, 9.0);
        assert_eq!(s.median, 4.5);
        assert!(close(s.mean, 5.0, 1e-12));
        assert!(close(s.stddev, (32.0f64 / 7.0).sqrt(), 1e-12));
        let half = 2.364_624_252 * (32.0f64 / 7.0).sqrt() / 8f64.sqrt();
        assert!(close(s.ci95_low, 5.0 - half, 1e-9));
        assert!(close(s.ci95_high, 5.0 + half, 1e-9));
        assert!(close(s.ci95_half_width(), half, 1e-9));
        assert!(close(s.relative_stddev(), s.stddev / 4.5, 1e-12));
    }

    #[test]
    fn summary_of_one_value_is_degenerate() {
        let s = Summary::of(&[0.25]).unwrap();
        assert_eq!(
            (s.n, s.min, s.max, s.median, s.mean),
            (1, 0.25, 0.25, 0.25, 0.25)
        );
        assert_eq!((s.stddev, s.ci95_low, s.ci95_high), (0.0, 0.25, 0.25));
        assert!(Summary::of(&[]).is_none());
    }

    #[test]
    fn summary_of_two_values_uses_t_with_one_df() {
        let s = Summary::of(&[1.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.0);
        assert!(close(s.stddev, 2f64.sqrt(), 1e-12));
        // mean ± 12.706 · √2 / √2
        assert!(close(s.ci95_low, 2.0 - 12.706_204_736, 1e-9));
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], [25, 50, 75]) = [1.75, 2.5, 3.25]
        let xs = [4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&xs, 0.25), 1.75);
        assert_eq!(quantile(&xs, 0.5), 2.5);
        assert_eq!(quantile(&xs, 0.75), 3.25);
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&xs, 1.0), 4.0);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn tukey_counts_outliers_outside_the_fences() {
        // Q1 = 1.0, Q3 = 1.02 (type 7), IQR = 0.02: fences 0.97 and 1.05.
        let xs = [1.0, 1.01, 1.02, 1.0, 1.03, 1.5, 0.5, 1.01, 1.02];
        let o = Outliers::tukey(&xs);
        assert_eq!(o, Outliers { low: 1, high: 1 });
        assert_eq!(o.total(), 2);
        let w = o.warning("gemm threads=2", xs.len()).unwrap();
        assert!(w.contains("2 of 9") && w.contains("repetitions"), "{w}");
        assert_eq!(Outliers::tukey(&[1.0, 1.0, 1.0, 1.0, 1.0]).total(), 0);
        assert_eq!(
            Outliers::tukey(&[1.0, 100.0, 1.0]).total(),
            0,
            "too few values for quartiles"
        );
        assert!(Outliers::default().warning("x", 5).is_none());
    }
}

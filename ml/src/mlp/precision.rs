//! Mixed precision for the MLP trainer: the number formats a GEMM's operands are rounded to
//! ([`Precision`]), the loss scale that keeps small fp16 gradients from underflowing
//! ([`LossScale`], [`LossScaler`]), and the two together as a trainer's setting
//! ([`MixedPrecision`]).
//!
//! The formats are emulated exactly on the CPU: [`Precision::round`] rounds an `f64` to the
//! nearest value of the format, ties to even, with the format's exponent range (subnormals
//! included; beyond the largest finite value it overflows to infinity, below half the smallest
//! subnormal it underflows to a signed zero). The product itself is summed by the wide GEMM
//! (f64 here; a GPU's tensor cores accumulate in fp32, which is narrower, so a GPU run rounds a
//! little more than this emulation does). Master weights and the optimizer's momentum stay in
//! f64, as PyTorch's AMP keeps them in fp32. Emulation measures the numerics of a format, not its
//! speed: every rounding is extra work here, so reduced precision runs slower on the CPU.
//!
//! | format | significand bits (stored) | exponent bits | largest finite | smallest normal |
//! |---|---|---|---|---|
//! | fp64 | 52 | 11 | 1.8e308 | 2.2e-308 |
//! | fp32 | 23 | 8 | 3.4e38 | 1.2e-38 |
//! | tf32 | 10 | 8 | 3.4e38 | 1.2e-38 |
//! | bf16 | 7 | 8 | 3.4e38 | 1.2e-38 |
//! | fp16 | 10 | 5 | 65504 | 6.1e-5 (subnormals to 6.0e-8) |
//!
//! bf16 keeps fp32's exponent range, so a gradient that fp32 can hold is not flushed to zero: it
//! needs no loss scale. fp16 has three more significand bits but a range that ends at 6e-8: the
//! small gradients of a well-trained model underflow to zero unless the loss (hence every
//! gradient) is multiplied by a scale `S` first and the gradient divided by `S` in f64 afterwards.
//! [`LossScaler`] picks `S` as PyTorch's `torch.cuda.amp.GradScaler` does (start high, halve and
//! skip the step when a gradient overflows, double after a run of clean steps).
//!
//! This module depends on no GEMM: the GPU path reuses [`Precision`] and [`LossScaler`] as they
//! are.

/// A number format the operands of the trainer's GEMMs are rounded to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// IEEE binary64: no rounding at all (the trainer's exact path).
    #[default]
    Fp64,
    /// IEEE binary32.
    Fp32,
    /// NVIDIA's TensorFloat-32: fp32's 8-bit exponent, fp16's 10-bit significand (what tensor
    /// cores read fp32 operands as when TF32 is allowed).
    Tf32,
    /// bfloat16: fp32's 8-bit exponent, a 7-bit significand.
    Bf16,
    /// IEEE binary16: a 5-bit exponent (largest finite 65504), a 10-bit significand.
    Fp16,
}

/// What a format is made of: stored significand bits, the exponent of its smallest normal value
/// and its largest finite value.
struct Format {
    mantissa: i32,
    min_exp: i32,
    max: f64,
}

impl Precision {
    /// The names of the `precision` parameter, in the order of [`Precision::ALL`].
    pub const NAMES: &'static [&'static str] = &["fp64", "fp32", "tf32", "bf16", "fp16"];

    /// Every format, widest first.
    pub const ALL: [Precision; 5] = [
        Precision::Fp64,
        Precision::Fp32,
        Precision::Tf32,
        Precision::Bf16,
        Precision::Fp16,
    ];

    /// The format named `name` (one of [`Precision::NAMES`]); an unknown name is refused with
    /// the choices.
    pub fn parse(name: &str) -> Result<Precision, String> {
        Precision::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| Precision::ALL[i])
            .ok_or_else(|| {
                format!(
                    "precision = \"{name}\" is not a number format this trainer emulates; use \
                     one of {}",
                    Precision::NAMES.join(", ")
                )
            })
    }

    /// The format's name, as [`Precision::parse`] reads it.
    pub fn name(self) -> &'static str {
        Precision::NAMES[self as usize]
    }

    /// Whether values are rounded at all (every format but fp64).
    pub fn is_reduced(self) -> bool {
        self != Precision::Fp64
    }

    fn format(self) -> Format {
        match self {
            Precision::Fp64 => Format {
                mantissa: 52,
                min_exp: -1022,
                max: f64::MAX,
            },
            Precision::Fp32 => Format {
                mantissa: 23,
                min_exp: -126,
                max: f32::MAX as f64,
            },
            Precision::Tf32 => Format {
                mantissa: 10,
                min_exp: -126,
                max: (2.0 - 2f64.powi(-10)) * 2f64.powi(127),
            },
            Precision::Bf16 => Format {
                mantissa: 7,
                min_exp: -126,
                max: (2.0 - 2f64.powi(-7)) * 2f64.powi(127),
            },
            Precision::Fp16 => Format {
                mantissa: 10,
                min_exp: -14,
                max: 65504.0,
            },
        }
    }

    /// The largest finite value of the format.
    pub fn max(self) -> f64 {
        self.format().max
    }

    /// The smallest positive normal value of the format (below it, values are subnormal: fewer
    /// significand bits, then zero).
    pub fn min_normal(self) -> f64 {
        2f64.powi(self.format().min_exp)
    }

    /// `x` rounded to the nearest value of the format, ties to even; beyond the largest finite
    /// value ±∞, below half the smallest subnormal a zero of `x`'s sign. NaN and ±∞ pass
    /// through. Directly from f64 (never through f32 first, which could round twice).
    pub fn round(self, x: f64) -> f64 {
        if self == Precision::Fp64 || !x.is_finite() || x == 0.0 {
            return x;
        }
        let Format {
            mantissa,
            min_exp,
            max,
        } = self.format();
        let biased = ((x.to_bits() >> 52) & 0x7ff) as i32;
        if biased == 0 {
            // An f64 subnormal: far below every format's smallest subnormal.
            return 0.0f64.copysign(x);
        }
        // The spacing of the format's values around x: 2^(e − mantissa) for a normal value of
        // exponent e, the subnormal spacing below the smallest normal. Scaling by a power of
        // two is exact, and so is rounding the scaled value to an integer.
        let exp = (biased - 1023).max(min_exp) - mantissa;
        let r = (x * pow2(-exp)).round_ties_even() * pow2(exp);
        if r.abs() > max {
            f64::INFINITY.copysign(x)
        } else {
            r
        }
    }

    /// [`Precision::round`] on every element of `v`.
    pub fn round_slice(self, v: &mut [f64]) {
        if self.is_reduced() {
            for x in v {
                *x = self.round(*x);
            }
        }
    }
}

/// 2^e for an exponent of a normal f64 (|e| ≤ 1022; the formats here need −149 ≤ e ≤ 149),
/// built from its bits: exact, and cheaper than `powi` in the rounding loop.
fn pow2(e: i32) -> f64 {
    f64::from_bits(((e + 1023) as u64) << 52)
}

/// How the loss is scaled before backward (the `loss_scale` parameter).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossScale {
    /// No scaling: gradients are what the format makes of them (a non-finite one is applied).
    None,
    /// A constant scale `S > 0`; a step whose gradient is not finite is skipped.
    Fixed(f64),
    /// PyTorch's `GradScaler`: start at [`INITIAL_SCALE`], halve and skip on a non-finite
    /// gradient, double after `growth_interval` clean steps.
    Dynamic,
}

/// The scale a dynamic loss scaler starts at: 2^16, PyTorch's `GradScaler(init_scale=65536)`.
pub const INITIAL_SCALE: f64 = 65536.0;

/// Clean steps after which a dynamic scaler doubles its scale. PyTorch's default is 2000, longer
/// than the runs here (tens to hundreds of steps): with 2000 a scale halved by an early overflow
/// would never grow back within a run. 25 lets a run of 100 steps show the scale probing upwards
/// (and overflowing again) a few times.
pub const DEFAULT_GROWTH_INTERVAL: u32 = 25;

impl LossScale {
    /// The `loss_scale` parameter: `"none"`, `"dynamic"`, a positive number, or `"auto"`
    /// (dynamic for fp16, none otherwise). fp64 takes no scale (its exponent reaches 2^-1074, and
    /// its path is the exact reference path): anything but none/auto is refused there with the
    /// fix, as are a scale that is not positive and finite and any other text.
    pub fn parse(text: &str, precision: Precision) -> Result<LossScale, String> {
        let scale = match text {
            "auto" if precision == Precision::Fp16 => LossScale::Dynamic,
            "auto" | "none" => LossScale::None,
            "dynamic" => LossScale::Dynamic,
            _ => match text.parse::<f64>() {
                Ok(s) if s.is_finite() && s > 0.0 => LossScale::Fixed(s),
                Ok(_) => {
                    return Err(format!(
                        "loss_scale = \"{text}\": a loss scale must be a positive finite number \
                         (e.g. \"1024\"), \"dynamic\" or \"none\""
                    ))
                }
                Err(_) => {
                    return Err(format!(
                        "loss_scale = \"{text}\" is not a loss scale; use \"none\", \"dynamic\", \
                         \"auto\" (dynamic for fp16, none otherwise) or a positive number such \
                         as \"1024\""
                    ))
                }
            },
        };
        if precision == Precision::Fp64 && scale != LossScale::None {
            return Err(format!(
                "loss_scale = \"{text}\" with precision = \"fp64\": fp64 gradients do not \
                 underflow, and fp64 is the exact reference path; use loss_scale = \"none\" (or \
                 \"auto\"), or a reduced precision such as \"fp16\""
            ));
        }
        Ok(scale)
    }
}

/// How far the loss curve of a reduced precision may stray from the fp64 reference's (the largest
/// relative difference over the steps, `fp64_loss_gap`) before the report says so: 5%, wider than
/// bf16's rounding moves a short run's curve and far narrower than an fp16 run whose gradients
/// underflow. Not a failure: the weights are still checked bitwise against the reference trained
/// at the same precision.
pub const FP64_LOSS_GAP_TOLERANCE: f64 = 0.05;

/// A trainer's precision setting: the format of the GEMM operands and the loss scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixedPrecision {
    pub precision: Precision,
    pub loss_scale: LossScale,
    /// Clean steps before a dynamic scale doubles ([`DEFAULT_GROWTH_INTERVAL`]).
    pub growth_interval: u32,
}

impl Default for MixedPrecision {
    /// fp64 without a loss scale: the trainer's exact path.
    fn default() -> Self {
        MixedPrecision {
            precision: Precision::Fp64,
            loss_scale: LossScale::None,
            growth_interval: DEFAULT_GROWTH_INTERVAL,
        }
    }
}

impl MixedPrecision {
    /// The setting from the `precision` and `loss_scale` parameters (see [`Precision::parse`],
    /// [`LossScale::parse`]); `growth_interval` must be at least 1.
    pub fn parse(
        precision: &str,
        loss_scale: &str,
        growth_interval: u32,
    ) -> Result<MixedPrecision, String> {
        let precision = Precision::parse(precision)?;
        let loss_scale = LossScale::parse(loss_scale, precision)?;
        if growth_interval == 0 {
            return Err(
                "growth_interval = 0: a dynamic loss scale doubles after that many clean steps; \
                 use at least 1"
                    .to_string(),
            );
        }
        Ok(MixedPrecision {
            precision,
            loss_scale,
            growth_interval,
        })
    }
}

/// The loss scale during a run, and the steps it skipped (PyTorch's `GradScaler`). One per
/// trainer; every rank's scaler sees the same reduced gradient, so all ranks (and the serial
/// reference) skip the same steps and hold the same scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossScaler {
    mode: LossScale,
    scale: f64,
    growth_interval: u32,
    clean: u32,
    skipped: u64,
}

impl LossScaler {
    pub fn new(mp: &MixedPrecision) -> LossScaler {
        let scale = match mp.loss_scale {
            LossScale::None => 1.0,
            LossScale::Fixed(s) => s,
            LossScale::Dynamic => INITIAL_SCALE,
        };
        LossScaler {
            mode: mp.loss_scale,
            scale,
            growth_interval: mp.growth_interval.max(1),
            clean: 0,
            skipped: 0,
        }
    }

    /// The scale `S` the loss of the coming step is multiplied by (1 without scaling).
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Steps skipped so far because their gradient was not finite.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// After a step's gradient has been reduced: whether to apply it. `finite` says whether every
    /// element of the (scaled) gradient is finite. Without scaling the step is always applied;
    /// with a scale a non-finite step is skipped, and a dynamic scale is halved then, or doubled
    /// after `growth_interval` clean steps in a row.
    pub fn update(&mut self, finite: bool) -> bool {
        match self.mode {
            LossScale::None => true,
            LossScale::Fixed(_) => {
                if !finite {
                    self.skipped += 1;
                }
                finite
            }
            LossScale::Dynamic => {
                if finite {
                    self.clean += 1;
                    if self.clean >= self.growth_interval {
                        self.scale *= 2.0;
                        self.clean = 0;
                    }
                } else {
                    self.scale /= 2.0;
                    self.clean = 0;
                    self.skipped += 1;
                }
                finite
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// The base of the powers of two the expected values are written in.
    const P: f64 = 2.0;

    #[test]
    fn bf16_rounds_to_nearest_even_with_seven_bits() {
        let b = Precision::Bf16;
        // 1 + 2^-8 is the tie between 1 and 1 + 2^-7: to even, 1.
        assert_eq!(b.round(1.0 + P.powi(-8)), 1.0);
        // 1 + 3·2^-8 is the tie between 1 + 2^-7 (odd) and 1 + 2^-6 (even).
        assert_eq!(b.round(1.0 + 3.0 * P.powi(-8)), 1.0 + P.powi(-6));
        // Just above the tie rounds up.
        assert_eq!(b.round(1.0 + P.powi(-8) + P.powi(-30)), 1.0 + P.powi(-7));
        assert_eq!(b.round(-1.0 - P.powi(-8)), -1.0);
        assert_eq!(b.round(std::f64::consts::PI), 3.140625);
        // fp32's range: 1e-30 survives (to 8 bits), where fp16 flushes it.
        assert!((b.round(1e-30) / 1e-30 - 1.0).abs() < P.powi(-8));
        assert_eq!(b.round(1e39), f64::INFINITY);
        assert_eq!(b.max(), 3.3895313892515355e38);
    }

    #[test]
    fn fp16_overflows_above_65504_and_underflows_through_subnormals() {
        let h = Precision::Fp16;
        assert_eq!(h.round(65504.0), 65504.0);
        // Halfway to the next binade step (65536) rounds to even: 65536, beyond the format.
        assert_eq!(h.round(65519.99), 65504.0);
        assert_eq!(h.round(65520.0), f64::INFINITY);
        assert_eq!(h.round(-1e6), f64::NEG_INFINITY);
        // The smallest normal and the subnormals below it, spaced 2^-24.
        assert_eq!(h.min_normal(), P.powi(-14));
        assert_eq!(h.round(P.powi(-14)), P.powi(-14));
        assert_eq!(h.round(P.powi(-24)), P.powi(-24));
        assert_eq!(h.round(3.0 * P.powi(-26)), P.powi(-24)); // 0.75 quanta up
        assert_eq!(h.round(P.powi(-25)), 0.0); // the tie between 0 and 2^-24: even is 0
        assert_eq!(h.round(P.powi(-25) + P.powi(-40)), P.powi(-24));
        assert_eq!(h.round(1e-8), 0.0);
        assert!(h.round(-1e-8).is_sign_negative());
        // A subnormal keeps fewer bits: 1.5·2^-22 holds, 1.25·2^-23 rounds to a multiple of 2^-24.
        assert_eq!(h.round(1.5 * P.powi(-22)), 1.5 * P.powi(-22));
        assert_eq!(h.round(1.25 * P.powi(-23)), P.powi(-23));
        assert_eq!(h.round(1.0 + P.powi(-11)), 1.0);
        assert_eq!(h.round(1.0 + 3.0 * P.powi(-11)), 1.0 + P.powi(-9));
        assert!(h.round(f64::NAN).is_nan());
    }

    #[test]
    fn tf32_has_fp16s_significand_and_fp32s_range() {
        let t = Precision::Tf32;
        assert_eq!(t.round(1.0 + P.powi(-11)), 1.0);
        assert_eq!(t.round(1.0 + P.powi(-10)), 1.0 + P.powi(-10));
        assert_eq!(
            t.round(1e-30),
            Precision::Fp16.round(1e-30 * P.powi(100)) * P.powi(-100)
        );
        assert_eq!(t.round(70000.0), 70016.0); // fp16 would overflow; spacing 64 at 2^16
        assert!(t.round(1e38).is_finite());
    }

    #[test]
    fn fp32_is_the_hardware_conversion_and_bf16_fp16_match_the_half_crate_from_f32() {
        // The `half` crate's conversions from f32 round to nearest even; its conversions from f64
        // first drop the low 32 bits (a value just above a tie then rounds as the tie), which
        // is why this module rounds f64 itself. Compared here on f32 inputs, ties included.
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(5);
        for _ in 0..200_000 {
            let e = rng.random_range(-160..128);
            let mut x = (rng.random_range(1.0..2.0) * P.powi(e)) as f32;
            if rng.random_range(0..4) == 0 {
                // Exactly halfway between two normal fp16 (k = 13) or bf16 (k = 16) values.
                let k = if rng.random_range(0..2) == 0 { 13 } else { 16 };
                x = f32::from_bits(x.to_bits() & !((1u32 << k) - 1) | (1u32 << (k - 1)));
            }
            let x = if rng.random_range(0..2) == 0 { x } else { -x };
            let wide = f64::from(x);
            assert_eq!(Precision::Fp32.round(wide), wide, "fp32 of {x:e}");
            assert_eq!(
                Precision::Bf16.round(wide).to_bits(),
                half::bf16::from_f32(x).to_f64().to_bits(),
                "bf16 of {x:e}"
            );
            assert_eq!(
                Precision::Fp16.round(wide).to_bits(),
                half::f16::from_f32(x).to_f64().to_bits(),
                "fp16 of {x:e}"
            );
        }
        // From f64, fp32 is Rust's `as f32` (round to nearest even).
        for _ in 0..200_000 {
            let x = rng.random_range(1.0..2.0) * P.powi(rng.random_range(-155..130));
            assert_eq!(
                Precision::Fp32.round(x).to_bits(),
                f64::from(x as f32).to_bits(),
                "fp32 of {x:e}"
            );
        }
        // Just above a bf16 tie, in the bits that `half`'s f64 path drops: rounds up.
        let above = 1.0 + P.powi(-8) + P.powi(-40);
        assert_eq!(Precision::Bf16.round(above), 1.0 + P.powi(-7));
    }

    #[test]
    fn names_parse_and_bad_input_is_refused_with_the_fix() {
        for p in Precision::ALL {
            assert_eq!(Precision::parse(p.name()), Ok(p));
        }
        assert_eq!(
            Precision::parse("fp8").unwrap_err(),
            "precision = \"fp8\" is not a number format this trainer emulates; use one of fp64, \
             fp32, tf32, bf16, fp16"
        );
        let parse = |p, s| MixedPrecision::parse(p, s, 25).map(|m| m.loss_scale);
        assert_eq!(parse("fp16", "auto"), Ok(LossScale::Dynamic));
        assert_eq!(parse("bf16", "auto"), Ok(LossScale::None));
        assert_eq!(parse("fp16", "1024"), Ok(LossScale::Fixed(1024.0)));
        assert_eq!(
            parse("fp16", "0").unwrap_err(),
            "loss_scale = \"0\": a loss scale must be a positive finite number (e.g. \"1024\"), \
             \"dynamic\" or \"none\""
        );
        assert_eq!(
            parse("fp16", "-8").unwrap_err(),
            "loss_scale = \"-8\": a loss scale must be a positive finite number (e.g. \"1024\"), \
             \"dynamic\" or \"none\""
        );
        assert_eq!(
            parse("fp16", "big").unwrap_err(),
            "loss_scale = \"big\" is not a loss scale; use \"none\", \"dynamic\", \"auto\" \
             (dynamic for fp16, none otherwise) or a positive number such as \"1024\""
        );
        assert_eq!(
            parse("fp64", "dynamic").unwrap_err(),
            "loss_scale = \"dynamic\" with precision = \"fp64\": fp64 gradients do not \
             underflow, and fp64 is the exact reference path; use loss_scale = \"none\" (or \
             \"auto\"), or a reduced precision such as \"fp16\""
        );
        assert!(MixedPrecision::parse("fp16", "none", 0).is_err());
    }

    #[test]
    fn the_dynamic_scaler_halves_and_skips_on_overflow_and_grows_after_clean_steps() {
        let mp = MixedPrecision {
            precision: Precision::Fp16,
            loss_scale: LossScale::Dynamic,
            growth_interval: 3,
        };
        let mut s = LossScaler::new(&mp);
        assert_eq!(s.scale(), 65536.0);
        assert!(!s.update(false));
        assert!(!s.update(false));
        assert_eq!((s.scale(), s.skipped()), (16384.0, 2));
        assert!(s.update(true) && s.update(true));
        assert_eq!(s.scale(), 16384.0);
        assert!(s.update(true));
        assert_eq!(s.scale(), 32768.0);
        // An overflow restarts the count of clean steps.
        assert!(s.update(true) && s.update(true) && !s.update(false));
        assert!(s.update(true) && s.update(true));
        assert_eq!((s.scale(), s.skipped()), (16384.0, 3));
        // A fixed scale skips without changing; none applies everything.
        let mut fixed = LossScaler::new(&MixedPrecision {
            loss_scale: LossScale::Fixed(8.0),
            ..mp
        });
        assert!(!fixed.update(false));
        assert_eq!((fixed.scale(), fixed.skipped()), (8.0, 1));
        let mut none = LossScaler::new(&MixedPrecision {
            loss_scale: LossScale::None,
            ..mp
        });
        assert!(none.update(false));
        assert_eq!((none.scale(), none.skipped()), (1.0, 0));
    }
}

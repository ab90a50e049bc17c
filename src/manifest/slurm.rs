//! The manifest's `[slurm]` section: its typed form ([`Settings`]), SLURM's time and memory
//! notations as a manifest may write them ([`parse_time_s`], [`parse_mem_mb`]), and the check that
//! turns the section into [`Settings`].
//!
//! This is the one home of the section: the checker reads every key once, with its line, into
//! [`Settings`] (collecting every problem, like the rest of the manifest), [`super::Manifest`]
//! carries the result, and `scalelab sbatch` ([`crate::slurm`], which re-exports these types) uses
//! it as it is. The time and memory grammars are the ones `--time` and `--mem` take; the manifest
//! check, `sinfo`'s MaxTime and `sacct`'s Timelimit and ReqMem are all read with them, so a limit
//! cannot differ between the check and the reading.

use anyhow::{anyhow, bail, Result};
use toml_edit::{Item, TableLike, Value as Tv};

use super::check::{did_you_mean, found, quote, shown, suggest, Checker, MAX_COUNT};
use super::{SLURM_KEYS, SLURM_RETRY_KEYS};

/// Most digits in one field of a SLURM time (`999999` minutes is about 694 days, far above any
/// cluster's MaxTime, and days × 86 400 stays far from overflow).
pub const MAX_TIME_DIGITS: usize = 6;

/// Most digits in a SLURM memory size (`999999999` megabytes is about 954 TiB per node; even with
/// `T` the megabytes stay far from overflow).
pub const MAX_MEM_DIGITS: usize = 9;

/// How an array task starts the ranks of an MPI point inside its allocation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Launcher {
    /// `srun scalelab point ...`: SLURM starts every rank (needs an MPI plugin, `srun --mpi=list`).
    #[default]
    Srun,
    /// `mpirun scalelab point ...` inside the allocation: OpenMPI reads the allocation from SLURM.
    Mpirun,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Srun => "srun",
            Launcher::Mpirun => "mpirun",
        }
    }
}

/// What to do with a failed point on `scalelab sbatch --resume`, per failure class
/// (the manifest's `[slurm.retry]` table).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// After OUT_OF_MEMORY, resubmit with `--mem` multiplied by this; 0 leaves such points failed.
    pub out_of_memory: f64,
    /// After TIMEOUT (SLURM's time limit), resubmit with `--time` multiplied by this; 0 leaves them.
    pub timeout: f64,
    /// Resubmit unchanged the points whose task FAILED, was CANCELLED, lost its node (NODE_FAIL), or
    /// whose point crashed or could not be prepared.
    pub failed: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            out_of_memory: 2.0,
            timeout: 2.0,
            failed: true,
        }
    }
}

/// The manifest's `[slurm]` section, checked and typed. [`Settings::default`] is what a manifest
/// without the section gets.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Settings {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    pub constraint: Option<String>,
    /// `--time` of every task, seconds; unset: from the study's point time limit.
    pub time_s: Option<u64>,
    /// `--mem` per node, megabytes; unset: the partition's default.
    pub mem_mb: Option<u64>,
    /// `module load` lines, in order.
    pub modules: Vec<String>,
    /// Shell lines run before the point (e.g. activating an environment).
    pub setup: Vec<String>,
    /// The cluster's MaxArraySize (highest array index + 1); unset: asked from `scontrol`.
    pub max_array: Option<u64>,
    /// At most this many tasks of one array run at once (`%K`).
    pub throttle: Option<u64>,
    pub launcher: Launcher,
    pub retry: RetryPolicy,
}

/// Seconds from a SLURM time: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` (as `--time` takes and
/// `sacct` prints, e.g. `00:01:00`, `1-00:00:00`), each field of 1 to [`MAX_TIME_DIGITS`] digits.
pub fn parse_time_s(s: &str) -> Result<u64> {
    let bad =
        || anyhow!("{s:?} is not a SLURM time; write minutes, \"HH:MM:SS\" or \"D-HH:MM:SS\"");
    let num = |p: &str| -> Result<u64> {
        if p.is_empty() || p.len() > MAX_TIME_DIGITS || !p.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, s),
    };
    let parts = rest.split(':').map(num).collect::<Result<Vec<u64>>>()?;
    let secs = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, sec]) => m * 60 + sec,
        (None, [h, m, sec]) => h * 3600 + m * 60 + sec,
        (Some(d), [h]) => d * 86400 + h * 3600,
        (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
        (Some(d), [h, m, sec]) => d * 86400 + h * 3600 + m * 60 + sec,
        _ => bail!(bad()),
    };
    Ok(secs)
}

/// Megabytes from a SLURM memory size as `--mem` takes it: 1 to [`MAX_MEM_DIGITS`] digits with an
/// optional unit K, M, G or T (either case; plain digits are megabytes). Kilobytes round up to
/// whole megabytes.
pub fn parse_mem_mb(s: &str) -> Result<u64> {
    let bad = || anyhow!("{s:?} is not a SLURM memory size; write megabytes or e.g. \"4G\"");
    let (digits, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], Some(c.to_ascii_uppercase())),
        _ => (s, None),
    };
    if digits.is_empty()
        || digits.len() > MAX_MEM_DIGITS
        || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err(bad());
    }
    let value: u64 = digits.parse().map_err(|_| bad())?;
    Ok(match unit {
        None | Some('M') => value,
        Some('K') => value.div_ceil(1024),
        Some('G') => value * 1024,
        Some('T') => value * 1024 * 1024,
        Some(_) => return Err(bad()),
    })
}

impl Checker<'_> {
    /// `[slurm]`: every key checked, with its line, into [`Settings`]; `None` after any problem.
    pub(super) fn slurm(&mut self, root: &dyn TableLike, item: &Item) -> Option<Settings> {
        let place = "[slurm]";
        let Some(table) = item.as_table_like() else {
            self.push(
                self.key_line(root, "slurm"),
                "",
                format!("`slurm` must be a table, found {}", found(item)),
                "write a [slurm] section, e.g.\n        [slurm]\n        partition = \"compute\""
                    .into(),
            );
            return None;
        };
        let before = self.problems.len();
        let mut settings = Settings::default();
        for (key, value) in table.iter() {
            let line = self.key_line(table, key);
            match key {
                "partition" | "account" | "qos" | "constraint" => {
                    let name = self.slurm_name(place, key, value, line);
                    match key {
                        "partition" => settings.partition = name,
                        "account" => settings.account = name,
                        "qos" => settings.qos = name,
                        _ => settings.constraint = name,
                    }
                }
                "time" => settings.time_s = self.slurm_time(place, value, line),
                "mem" => settings.mem_mb = self.slurm_mem(place, value, line),
                "modules" | "setup" => {
                    if let Some(l) = self.slurm_lines(place, key, value, line) {
                        if key == "modules" {
                            settings.modules = l;
                        } else {
                            settings.setup = l;
                        }
                    }
                }
                "max_array" | "throttle" => {
                    let example = format!("{key} = {}", if key == "max_array" { 1000 } else { 8 });
                    let n = self
                        .read_count(place, key, value, line, 1, MAX_COUNT * 10, &example)
                        .map(u64::from);
                    if key == "max_array" {
                        settings.max_array = n;
                    } else {
                        settings.throttle = n;
                    }
                }
                "launcher" => match value.as_str() {
                    Some("srun") => settings.launcher = Launcher::Srun,
                    Some("mpirun") => settings.launcher = Launcher::Mpirun,
                    _ => self.push(
                        line,
                        place,
                        format!("`launcher` must be \"srun\" or \"mpirun\", found {}", found(value)),
                        "write launcher = \"srun\" (SLURM starts the ranks) or launcher = \"mpirun\" (mpirun inside the allocation)".into(),
                    ),
                },
                "retry" => settings.retry = self.slurm_retry(value, line),
                _ => self.slurm_unknown(place, key, line),
            }
        }
        (self.problems.len() == before).then_some(settings)
    }

    /// `time`: a SLURM time limit above zero (`time = 10` means what `time = "10"` means).
    fn slurm_time(&mut self, place: &str, value: &Item, line: Option<usize>) -> Option<u64> {
        // `time = 10` means what `time = "10"` means: one grammar for both.
        let seconds: Option<u64> = match value {
            Item::Value(Tv::Integer(i)) => parse_time_s(&i.value().to_string()).ok(),
            Item::Value(Tv::String(s)) => parse_time_s(s.value()).ok(),
            _ => None,
        };
        let time_s = seconds.filter(|&s| s > 0);
        if time_s.is_none() {
            self.push(
                line,
                place,
                format!("`time` must be a SLURM time limit, found {}", found(value)),
                "write minutes, \"HH:MM:SS\" or \"D-HH:MM:SS\", e.g. time = \"00:10:00\"".into(),
            );
        }
        time_s
    }

    /// `mem`: a SLURM memory size above zero, in megabytes.
    fn slurm_mem(&mut self, place: &str, value: &Item, line: Option<usize>) -> Option<u64> {
        let mb: Option<u64> = match value {
            Item::Value(Tv::Integer(i)) => parse_mem_mb(&i.value().to_string()).ok(),
            Item::Value(Tv::String(s)) => parse_mem_mb(s.value()).ok(),
            _ => None,
        };
        let mem_mb = mb.filter(|&m| m > 0);
        if mem_mb.is_none() {
            self.push(
                line,
                place,
                format!("`mem` must be a SLURM memory size, found {}", found(value)),
                "write megabytes or a number with K, M, G or T, e.g. mem = \"4G\"".into(),
            );
        }
        mem_mb
    }

    /// `modules` or `setup`: a list of strings.
    fn slurm_lines(
        &mut self,
        place: &str,
        key: &str,
        value: &Item,
        line: Option<usize>,
    ) -> Option<Vec<String>> {
        let lines = value.as_array().and_then(|a| {
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
        });
        let example = if key == "modules" {
            "modules = [\"openmpi/4.1\", \"rust\"]"
        } else {
            "setup = [\"source ~/venv/bin/activate\"]"
        };
        if lines.is_none() {
            self.push(
                line,
                place,
                format!("`{key}` must be a list of strings, found {}", found(value)),
                format!("write e.g. {example}"),
            );
        }
        lines
    }

    /// A key `[slurm]` does not take, with the nearest known key.
    fn slurm_unknown(&mut self, place: &str, key: &str, line: Option<usize>) {
        let hint = did_you_mean(&suggest(key, SLURM_KEYS.iter().copied()))
            .map(|d| format!("{d} "))
            .unwrap_or_else(|| "remove it; ".into());
        self.push(
            line,
            place,
            format!("unknown key `{}`", shown(key)),
            format!("{hint}[slurm] takes: {}", SLURM_KEYS.join(", ")),
        );
    }

    /// `partition`, `account`, `qos`, `constraint`: a non-empty name on one line.
    fn slurm_name(
        &mut self,
        place: &str,
        key: &str,
        value: &Item,
        line: Option<usize>,
    ) -> Option<String> {
        let s = self.read_str(place, key, value, line, &format!("{key} = \"...\""))?;
        if s.trim().is_empty() || s.chars().any(char::is_control) {
            self.push(
                line,
                place,
                format!(
                    "`{key}` must be a non-empty name on one line, found {}",
                    quote(s)
                ),
                format!("write e.g. {key} = \"compute\", or remove the key"),
            );
            return None;
        }
        Some(s.to_string())
    }

    /// `[slurm.retry]`: `out_of_memory` and `timeout` are factors (0 or at least 1), `failed` a bool.
    /// Keys not written keep [`RetryPolicy::default`]; problems are pushed, so the policy returned
    /// after one is never used.
    fn slurm_retry(&mut self, item: &Item, line: Option<usize>) -> RetryPolicy {
        let place = "[slurm.retry]";
        let mut policy = RetryPolicy::default();
        let Some(table) = item.as_table_like() else {
            self.push(
                line,
                "[slurm]",
                format!("`retry` must be a table, found {}", found(item)),
                "write e.g.\n        [slurm.retry]\n        out_of_memory = 2.0\n        timeout = 2.0\n        failed = true".into(),
            );
            return policy;
        };
        for (key, value) in table.iter() {
            let line = self.key_line(table, key);
            match key {
                "out_of_memory" | "timeout" => {
                    let factor = match value {
                        Item::Value(Tv::Float(f)) => Some(*f.value()),
                        Item::Value(Tv::Integer(i)) => Some(*i.value() as f64),
                        _ => None,
                    }
                    .filter(|&f| f == 0.0 || (1.0..=100.0).contains(&f));
                    match (factor, key) {
                        (Some(f), "timeout") => policy.timeout = f,
                        (Some(f), _) => policy.out_of_memory = f,
                        (None, _) => {
                            let what = if key == "timeout" { "--time" } else { "--mem" };
                            self.push(
                                line,
                                place,
                                format!("`{key}` must be a factor between 1 and 100, or 0, found {}", found(value)),
                                format!("write e.g. {key} = 2.0 to resubmit with twice the {what}, or {key} = 0 to leave such points failed"),
                            );
                        }
                    }
                }
                "failed" => match value.as_bool() {
                    Some(b) => policy.failed = b,
                    None => self.push(
                        line,
                        place,
                        format!("`failed` must be true or false, found {}", found(value)),
                        "write failed = true to resubmit points whose task failed, crashed or was cancelled".into(),
                    ),
                },
                _ => {
                    let hint = did_you_mean(&suggest(key, SLURM_RETRY_KEYS.iter().copied()))
                        .map(|d| format!("{d} "))
                        .unwrap_or_else(|| "remove it; ".into());
                    self.push(
                        line,
                        place,
                        format!("unknown key `{}`", shown(key)),
                        format!("{hint}[slurm.retry] takes: {}", SLURM_RETRY_KEYS.join(", ")),
                    );
                }
            }
        }
        policy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The limits of the one grammar, at their edges; `sacct` and `sinfo` values are read with it too.
    #[test]
    fn grammar_limits_at_their_edges() {
        assert_eq!(parse_time_s("999999").unwrap(), 999_999 * 60);
        assert!(parse_time_s("1000000").is_err());
        assert_eq!(
            parse_time_s("999999-23:59:59").unwrap(),
            999_999 * 86_400 + 86_399
        );
        assert!(parse_time_s("1000000-00").is_err());
        assert!(parse_time_s("1:0000000").is_err());
        assert!(parse_time_s(" 10").is_err());
        assert!(parse_time_s("").is_err());
        assert_eq!(parse_time_s("0").unwrap(), 0);

        assert_eq!(parse_mem_mb("999999999").unwrap(), 999_999_999);
        assert_eq!(
            parse_mem_mb("999999999T").unwrap(),
            999_999_999 * 1024 * 1024
        );
        assert!(parse_mem_mb("1000000000").is_err());
        assert_eq!(parse_mem_mb("4g").unwrap(), 4096);
        assert_eq!(parse_mem_mb("1025K").unwrap(), 2);
        assert!(parse_mem_mb("1.5G").is_err());
        assert!(parse_mem_mb("4Gn").is_err());
        assert!(parse_mem_mb("4GB").is_err());
        assert!(parse_mem_mb("-4G").is_err());
    }
}

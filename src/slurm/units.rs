//! SLURM's time and memory notations, both ways.

use anyhow::{bail, Result};

/// Seconds from a SLURM time: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S` (as `--time` takes and
/// `sacct` prints, e.g. `00:01:00`, `1-00:00:00`).
pub fn parse_time_s(s: &str) -> Result<u64> {
    let bad = || {
        anyhow::anyhow!("{s:?} is not a SLURM time; write minutes, \"HH:MM:SS\" or \"D-HH:MM:SS\"")
    };
    let num = |p: &str| -> Result<u64> {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) || p.len() > 9 {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let s = s.trim();
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

/// `--time` text for `seconds`, rounded up to whole minutes: `D-HH:MM:00` or `HH:MM:00`.
pub fn format_time(seconds: u64) -> String {
    let minutes = seconds.div_ceil(60).max(1);
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if d > 0 {
        format!("{d}-{h:02}:{m:02}:00")
    } else {
        format!("{h:02}:{m:02}:00")
    }
}

/// Megabytes from a SLURM memory size: digits with an optional K, M, G or T (plain digits are
/// megabytes), as `--mem` takes. `sacct`'s ReqMem may end in `n` or `c` (per node / per CPU in
/// older versions); that suffix is ignored.
pub fn parse_mem_mb(s: &str) -> Result<u64> {
    let t = s.trim().trim_end_matches(['n', 'c']);
    let (digits, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], Some(c.to_ascii_uppercase())),
        _ => (t, None),
    };
    let value: f64 = digits
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| {
            anyhow::anyhow!("{s:?} is not a SLURM memory size; write megabytes or e.g. \"4G\"")
        })?;
    let mb = match unit {
        None | Some('M') => value,
        Some('K') => value / 1024.0,
        Some('G') => value * 1024.0,
        Some('T') => value * 1024.0 * 1024.0,
        Some(_) => bail!("{s:?} is not a SLURM memory size; write megabytes or e.g. \"4G\""),
    };
    Ok(mb.ceil() as u64)
}

/// `--mem` text for `mb` megabytes: whole gigabytes as `NG`, otherwise `NM`.
pub fn format_mem_mb(mb: u64) -> String {
    if mb >= 1024 && mb.is_multiple_of(1024) {
        format!("{}G", mb / 1024)
    } else {
        format!("{mb}M")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_format() {
        assert_eq!(parse_time_s("10").unwrap(), 600);
        assert_eq!(parse_time_s("1:30").unwrap(), 90);
        assert_eq!(parse_time_s("00:01:00").unwrap(), 60);
        assert_eq!(parse_time_s("1-00:00:00").unwrap(), 86400);
        assert_eq!(parse_time_s("2-3").unwrap(), 2 * 86400 + 3 * 3600);
        assert!(parse_time_s("UNLIMITED").is_err());
        assert!(parse_time_s("1:2:3:4").is_err());
        assert_eq!(format_time(1), "00:01:00");
        assert_eq!(format_time(60), "00:01:00");
        assert_eq!(format_time(61), "00:02:00");
        assert_eq!(format_time(3600 * 25), "1-01:00:00");
    }

    #[test]
    fn memory_parses_and_formats() {
        assert_eq!(parse_mem_mb("100").unwrap(), 100);
        assert_eq!(parse_mem_mb("100M").unwrap(), 100);
        assert_eq!(parse_mem_mb("4G").unwrap(), 4096);
        assert_eq!(parse_mem_mb("4Gn").unwrap(), 4096);
        assert_eq!(parse_mem_mb("512K").unwrap(), 1);
        assert_eq!(parse_mem_mb("1T").unwrap(), 1 << 20);
        assert!(parse_mem_mb("lots").is_err());
        assert_eq!(format_mem_mb(4096), "4G");
        assert_eq!(format_mem_mb(300), "300M");
    }
}

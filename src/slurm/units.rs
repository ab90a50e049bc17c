//! SLURM's time and memory notations, both ways: the grammar that reads them lives with the
//! manifest's `[slurm]` section ([`crate::manifest::parse_time_s`], [`crate::manifest::parse_mem_mb`])
//! and is re-exported here; this file writes them for `#SBATCH` lines and reads `sacct`'s ReqMem.

use anyhow::{anyhow, Result};

pub use crate::manifest::{parse_mem_mb, parse_time_s};

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

/// Megabytes from `sacct`'s ReqMem: a `--mem` size ([`parse_mem_mb`]), which older SLURM versions
/// end with `n` or `c` (per node / per CPU; the suffix is dropped) and may print with a fraction
/// (`1.50G`, rounded up to whole megabytes).
pub fn parse_reported_mem_mb(s: &str) -> Result<u64> {
    let t = s.trim().trim_end_matches(['n', 'c']);
    if let Ok(mb) = parse_mem_mb(t) {
        return Ok(mb);
    }
    let bad = || anyhow!("{s:?} is not a SLURM memory size");
    let (number, unit) = t.split_at(
        t.len()
            - t.chars()
                .last()
                .filter(char::is_ascii_alphabetic)
                .map_or(0, |_| 1),
    );
    let (whole, fraction) = number.split_once('.').ok_or_else(bad)?;
    if fraction.is_empty() || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    // The whole part and the unit go through the one grammar; the fraction adds at most one unit.
    let floor = parse_mem_mb(&format!("{whole}{unit}"))?;
    let one = parse_mem_mb(&format!("1{unit}"))?;
    let frac: f64 = format!("0.{fraction}").parse().map_err(|_| bad())?;
    Ok(floor + (frac * one as f64).ceil() as u64)
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
        assert_eq!(parse_reported_mem_mb("4Gn").unwrap(), 4096);
        assert_eq!(parse_reported_mem_mb("100Mc").unwrap(), 100);
        assert_eq!(parse_reported_mem_mb("1.5G").unwrap(), 1536);
        assert_eq!(parse_reported_mem_mb("0.1M").unwrap(), 1);
        assert!(parse_reported_mem_mb("1.G").is_err());
        assert!(parse_reported_mem_mb("x.5G").is_err());
        assert_eq!(parse_mem_mb("512K").unwrap(), 1);
        assert_eq!(parse_mem_mb("1T").unwrap(), 1 << 20);
        assert!(parse_mem_mb("lots").is_err());
        assert_eq!(format_mem_mb(4096), "4G");
        assert_eq!(format_mem_mb(300), "300M");
    }
}

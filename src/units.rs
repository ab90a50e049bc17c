//! Numbers for people: byte counts, durations, significant digits, plurals and the run-id stamp,
//! each written one way and tested here once.
//!
//! Every message, report line and folder name that shows one of these goes through this module,
//! so that `1.5 KiB`, `3 min 05 s` or `1 point` read the same wherever they appear. Bytes have
//! three forms, each for a reason given on it: [`bytes`] (descriptions), [`bytes_exact`] (message
//! and cache sizes, where the exact power of two matters) and [`gib`] (memory checks). The SLURM
//! notations (`--time`, `--mem`) are a grammar of their own and live in `slurm/units.rs`; sizes
//! as a manifest writes them (`"64MiB"`) live with their parser in `value.rs`.

/// `""` for one, `"s"` for any other count: `format!("{n} point{}", plural(n))`. Any integer
/// type (a count of points, ranks, threads or cores).
pub fn plural<N: PartialEq + From<u8>>(n: N) -> &'static str {
    if n == N::from(1) {
        ""
    } else {
        "s"
    }
}

/// A count with its noun, plural when it is not one: `1 node`, `3 tasks`, `0 GPUs`.
pub fn count(n: u64, noun: &str) -> String {
    format!("{n} {noun}{}", plural(n))
}

/// Bytes in binary units with one decimal, a `.0` dropped: `512 B`, `1.5 KiB`, `32 MiB`,
/// `1.9 GiB` (machine descriptions: caches, memory, working sets).
pub fn bytes(b: u64) -> String {
    let units = [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (u, scale) in units {
        if b >= scale {
            return format!("{:.1} {u}", b as f64 / scale as f64).replace(".0 ", " ");
        }
    }
    format!("{b} B")
}

/// Bytes in binary units up to TiB, whole numbers bare and others with two decimals: `8 B`,
/// `4 KiB`, `1.50 KiB` (message sizes, where the exact power of two matters).
pub fn bytes_exact(v: f64) -> String {
    for (suffix, scale) in [
        ("TiB", 2f64.powi(40)),
        ("GiB", 2f64.powi(30)),
        ("MiB", 2f64.powi(20)),
        ("KiB", 1024.0),
    ] {
        if v >= scale {
            let x = v / scale;
            return if (x - x.round()).abs() < 1e-9 {
                format!("{} {suffix}", x.round())
            } else {
                format!("{x:.2} {suffix}")
            };
        }
    }
    format!("{} B", v.round())
}

/// `v` to three significant digits at any magnitude, trailing zeros kept so a table's column
/// reads evenly (`0.00314`, `2.00`, `12.3`, `1234`); `–` for a missing (non-finite) value. Report
/// and compare tables use it.
pub fn sig3(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    format!("{v:.*}", sig3_decimals(v))
}

/// [`sig3`] with trailing zeros (and a bare `.`) dropped, for labels and running text: `0.05`,
/// `2`, `83.1`, `118`.
pub fn sig3_trimmed(v: f64) -> String {
    let s = sig3(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The decimals that leave three significant digits of `v` (none from 100 up).
fn sig3_decimals(v: f64) -> usize {
    let a = v.abs();
    if a > 0.0 {
        (2 - a.log10().floor() as i32).clamp(0, 12) as usize
    } else {
        2
    }
}

/// Bytes in GiB with two decimals, whatever the size: `12.50 GiB`, `0.25 GiB`. Memory checks
/// compare a need with a node's memory in one sentence, and one fixed unit on both sides keeps
/// the two figures comparable at a glance (where [`bytes`] would say `512 MiB` against `15.6 GiB`).
pub fn gib(bytes: f64) -> String {
    format!("{:.2} GiB", bytes / f64::from(1u32 << 30))
}

/// A duration for people: `0.25 s`, `4.2 s`, `42 s`, `3 min 05 s`, `2 h 05 min`, `3 d 4 h`;
/// `?` for a negative or non-finite one.
pub fn duration(seconds: f64) -> String {
    if !seconds.is_finite() || seconds < 0.0 {
        return "?".into();
    }
    if seconds < 1.0 {
        return format!("{seconds:.2} s");
    }
    if seconds < 10.0 {
        return format!("{seconds:.1} s");
    }
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        3600..=86_399 => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// The local time as a folder name, `yyyymmdd-hhmmss`: the run id of a new run and the name of a
/// comparison's folder.
pub fn stamp_now() -> String {
    jiff::Zoned::now().strftime(STAMP_FORMAT).to_string()
}

/// The `strftime` format of [`stamp_now`].
pub const STAMP_FORMAT: &str = "%Y%m%d-%H%M%S";

/// Now, as RFC 3339 text in UTC to the second: the time stamps inside records and provenance.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals() {
        assert_eq!(format!("{} point{}", 1, plural(1)), "1 point");
        assert_eq!(format!("{} point{}", 0, plural(0)), "0 points");
        assert_eq!(format!("{} point{}", 2, plural(2)), "2 points");
        assert_eq!(count(1, "node"), "1 node");
        assert_eq!(count(3, "task"), "3 tasks");
        assert_eq!(count(0, "GPU"), "0 GPUs");
    }

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(32 << 20), "32 MiB");
        assert_eq!(bytes(3 << 30), "3 GiB");
        assert_eq!(bytes((1 << 30) + (1 << 29)), "1.5 GiB");
        assert_eq!(bytes_exact(1.0), "1 B");
        assert_eq!(bytes_exact(512.0), "512 B");
        assert_eq!(bytes_exact(4096.0), "4 KiB");
        assert_eq!(bytes_exact(4.0 * 1048576.0), "4 MiB");
        assert_eq!(bytes_exact(1536.0), "1.50 KiB");
        assert_eq!(bytes_exact(2f64.powi(41)), "2 TiB");
        assert_eq!(gib(12.5 * 2f64.powi(30)), "12.50 GiB");
        assert_eq!(gib(2f64.powi(28)), "0.25 GiB");
    }

    #[test]
    fn three_significant_digits() {
        assert_eq!(sig3(0.003_141_5), "0.00314");
        assert_eq!(sig3(0.5), "0.500");
        assert_eq!(sig3(2.0), "2.00");
        assert_eq!(sig3(12.345), "12.3");
        assert_eq!(sig3(1234.5), "1234");
        assert_eq!(sig3(-12.345), "-12.3");
        assert_eq!(sig3(0.0), "0.00");
        assert_eq!(sig3(f64::NAN), "–");
        assert_eq!(sig3_trimmed(0.0512), "0.0512");
        assert_eq!(sig3_trimmed(2.0), "2");
        assert_eq!(sig3_trimmed(83.14), "83.1");
        assert_eq!(sig3_trimmed(118.2), "118");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(0.25), "0.25 s");
        assert_eq!(duration(4.21), "4.2 s");
        assert_eq!(duration(42.4), "42 s");
        assert_eq!(duration(185.0), "3 min 05 s");
        assert_eq!(duration(7500.0), "2 h 05 min");
        assert_eq!(duration(3.0 * 86_400.0 + 4.0 * 3600.0), "3 d 4 h");
        assert_eq!(duration(f64::NAN), "?");
        assert_eq!(duration(-1.0), "?");
    }

    #[test]
    fn the_stamp_is_a_sortable_folder_name() {
        let s = stamp_now();
        assert_eq!(s.len(), 15, "{s}");
        assert_eq!(&s[8..9], "-");
        assert!(s.chars().filter(|c| *c != '-').all(|c| c.is_ascii_digit()));
        let parsed = jiff::civil::DateTime::strptime(STAMP_FORMAT, &s).unwrap();
        assert_eq!(parsed.strftime(STAMP_FORMAT).to_string(), s);
    }
}

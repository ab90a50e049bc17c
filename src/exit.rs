//! Exit codes, and the typed errors that choose them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | everything asked for was done |
//! | 1 | the command finished, but some point failed (or a record could not be read) |
//! | 2 | bad input: a manifest error, a missing or unknown run directory, a bad argument, a run directory locked by another process or a `--run-dir` holding something else |
//! | 3 | an I/O or internal failure: an unwritable folder, a full disk, a bug |
//! | 128 + n | stopped by signal n: 130 SIGINT, 143 SIGTERM, 129 SIGHUP (`run` stops cleanly and can be resumed), 141 when the reader of stdout went away |
//!
//! Input is judged bad where it is read, by wrapping the error in [`BadInput`] (or returning a
//! [`crate::manifest::ManifestError`]); every other error is an I/O or internal
//! failure. `main.rs`, the one exit point, asks [`crate::cli::exit_code`] which code an error
//! gets, so a script can tell "fix your input" (2) from "fix the machine or report a bug" (3).
//! That judge lives with the command line, above every room whose typed errors it knows; this
//! module, which every room uses to mark bad input, depends on none of them.

use std::fmt;
use std::process::ExitCode;

/// Everything asked for was done.
pub const OK: u8 = 0;
/// The command finished, but some point failed.
pub const FAILED: u8 = 1;
/// A manifest error, a missing or unknown run directory, a bad argument.
pub const BAD_INPUT: u8 = 2;
/// An I/O or internal failure (unwritable folder, full disk, a bug).
pub const INTERNAL: u8 = 3;
/// 128 + SIGPIPE: the reader of stdout went away.
pub const BROKEN_PIPE: u8 = 141;

/// An error caused by what the user gave (a path, an argument, a run directory): exit code 2.
///
/// It shows the wrapped error's message, and its causes follow it in the chain.
pub struct BadInput(anyhow::Error);

impl BadInput {
    /// Mark `err` as bad input.
    pub fn wrap(err: impl Into<anyhow::Error>) -> anyhow::Error {
        anyhow::Error::new(BadInput(err.into()))
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&*self.0, f)
    }
}

impl fmt::Debug for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl std::error::Error for BadInput {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// `bail!` for bad input: return early with a [`BadInput`] error made from a format string.
#[macro_export]
macro_rules! bad_input {
    ($($arg:tt)*) => {
        return Err($crate::exit::BadInput::wrap(anyhow::anyhow!($($arg)*)))
    };
}

/// The exit code of a command stopped by signal `signal`: 128 + its number, as shells report it.
pub fn for_signal(signal: i32) -> ExitCode {
    ExitCode::from(128u8.saturating_add(u8::try_from(signal).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_input_keeps_the_cause_chain() {
        let inner = anyhow::anyhow!("not found").context("reading run/plan.json");
        let err = BadInput::wrap(inner);
        assert_eq!(format!("{err:#}"), "reading run/plan.json: not found");
    }
}

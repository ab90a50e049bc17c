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
//! [`ManifestError`]); every other error is an I/O or internal
//! failure. `main.rs`, the one exit point, asks [`code_for`] which code an error gets, so a
//! script can tell "fix your input" (2) from "fix the machine or report a bug" (3).

use std::fmt;
use std::process::ExitCode;

use crate::manifest::ManifestError;
use crate::output::OutputLost;

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

/// The exit code for an error that ended a command.
pub fn code_for(err: &anyhow::Error) -> u8 {
    if let Some(lost) = err.downcast_ref::<OutputLost>() {
        if lost.is_broken_pipe() {
            return BROKEN_PIPE;
        }
    }
    let bad = err
        .chain()
        .any(|e| e.is::<BadInput>() || e.is::<ManifestError>());
    if bad {
        BAD_INPUT
    } else {
        INTERNAL
    }
}

/// The exit code of a command stopped by signal `signal`: 128 + its number, as shells report it.
pub fn for_signal(signal: i32) -> ExitCode {
    ExitCode::from(128u8.saturating_add(u8::try_from(signal).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_is_found_under_context_and_io_is_not() {
        let bad: anyhow::Result<()> = Err(BadInput::wrap(anyhow::anyhow!("no plan.json")));
        let bad = bad.context("resuming").unwrap_err();
        assert_eq!(code_for(&bad), BAD_INPUT);
        assert_eq!(format!("{bad:#}"), "resuming: no plan.json");

        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "disk full");
        let io = anyhow::Error::new(io).context("writing points/a.json");
        assert_eq!(code_for(&io), INTERNAL);

        let pipe = anyhow::Error::new(OutputLost(std::io::ErrorKind::BrokenPipe.into()));
        assert_eq!(code_for(&pipe), BROKEN_PIPE);
        let full = anyhow::Error::new(OutputLost(std::io::Error::from_raw_os_error(28)));
        assert_eq!(code_for(&full), INTERNAL);
    }

    #[test]
    fn bad_input_keeps_the_cause_chain() {
        let inner = anyhow::anyhow!("not found").context("reading run/plan.json");
        let err = BadInput::wrap(inner);
        assert_eq!(format!("{err:#}"), "reading run/plan.json: not found");
    }
}

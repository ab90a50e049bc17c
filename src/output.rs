//! Terminal output that never panics, and what a lost write means.
//!
//! `print!` and `eprintln!` panic when the terminal is gone: a pipe whose reader has exited
//! (`scalelab run … | head -1`), a full disk behind a redirection (`> /dev/full`), a closed stderr.
//! A panic there would stop a sweep between a measurement and its record, so every write of the
//! command line goes through this module instead:
//!
//! - [`out!`](crate::out) and [`outln!`](crate::outln) write to stdout and return an error when
//!   the write fails. For commands whose product *is* their output (`plan`, `list`, `info`,
//!   `status`, …) that error ends the command: `main.rs` prints it on one line and exits with 3,
//!   or quietly with 141 (128 + SIGPIPE, what a shell shows for `cat big | head -1`) when the
//!   reader simply went away.
//! - `scalelab run` writes its live lines with [`live!`](crate::live): a lost line is dropped and
//!   the sweep goes on, because the results are in the run directory, not on the terminal.
//! - [`errln!`](crate::errln) writes warnings and errors to stderr and ignores failures: there is
//!   nowhere left to report them.

use std::fmt;
use std::io::{self, Write};

/// A write to stdout failed: the command's output was lost, so the command did not do its job.
#[derive(Debug, thiserror::Error)]
#[error("writing to standard output")]
pub struct OutputLost(#[source] pub io::Error);

impl OutputLost {
    /// Whether the reader of the pipe went away (`… | head`): not a failure worth a message.
    pub fn is_broken_pipe(&self) -> bool {
        self.0.kind() == io::ErrorKind::BrokenPipe
    }
}

/// Write `args` to stdout and flush, so that a full disk is noticed now and not at exit.
pub fn stdout(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.flush())
        .map_err(|e| OutputLost(e).into())
}

/// Write `args` to stderr; a failure is ignored (there is nowhere left to report it).
pub fn stderr(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = err.write_fmt(args).and_then(|()| err.flush());
}

/// `print!` that returns an error instead of panicking; see the module doc.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::stdout(format_args!($($arg)*)) };
}

/// `println!` that returns an error instead of panicking; see the module doc.
#[macro_export]
macro_rules! outln {
    () => { $crate::output::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `println!` for live progress that may be lost: a failed write is dropped and the caller goes on.
#[macro_export]
macro_rules! live {
    ($($arg:tt)*) => {{
        let _ = $crate::output::stdout(format_args!("{}\n", format_args!($($arg)*)));
    }};
}

/// `eprintln!` that never panics: a failed write to stderr is ignored.
#[macro_export]
macro_rules! errln {
    () => { $crate::output::stderr(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

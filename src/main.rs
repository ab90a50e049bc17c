//! The `scalelab` binary: parses the command line, runs it, and is the one place errors are printed
//! and exit codes chosen (see [`scalelab::exit`] for the codes).

use std::process::ExitCode;

use scalelab::{errln, exit};

fn main() -> ExitCode {
    // A panic is a bug: the default hook has already printed it; exit with the internal-failure
    // code rather than Rust's 101, which no documentation of this tool mentions.
    let result = match std::panic::catch_unwind(scalelab::cli::main) {
        Ok(result) => result,
        Err(_) => {
            errln!("error: internal failure (a bug in scalelab); please report it with the message above");
            return ExitCode::from(exit::INTERNAL);
        }
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            let code = scalelab::cli::exit_code(&err);
            if code == exit::BROKEN_PIPE {
                // The reader of stdout went away (`scalelab list | head -1`): it asked for no more.
                return ExitCode::from(code);
            }
            // A manifest error already lists every problem with its file, line and fix.
            if let Some(m) = err.downcast_ref::<scalelab::manifest::ManifestError>() {
                let text = m.to_string();
                if text.ends_with('\n') {
                    scalelab::output::stderr(format_args!("{text}"));
                } else {
                    errln!("{text}");
                }
            } else {
                // `{:#}` prints the cause chain on one line and never a backtrace.
                errln!("error: {err:#}");
            }
            ExitCode::from(code)
        }
    }
}

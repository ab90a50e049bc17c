//! The `scalelab` binary: parses the command line, runs it, and is the one place errors are printed.

use std::process::ExitCode;

fn main() -> ExitCode {
    match scalelab::cli::main() {
        Ok(code) => code,
        Err(err) => {
            // A manifest error already lists every problem with its file, line and fix.
            if let Some(m) = err.downcast_ref::<scalelab::manifest::ManifestError>() {
                eprint!("{m}");
                if !m.to_string().ends_with('\n') {
                    eprintln!();
                }
            } else {
                // `{:#}` prints the cause chain on one line and never a backtrace.
                eprintln!("error: {err:#}");
            }
            ExitCode::from(2)
        }
    }
}

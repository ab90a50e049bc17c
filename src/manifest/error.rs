//! Problems found in a manifest, and how they are shown to the user.
//!
//! One [`Problem`] is one mistake with its place and its fix; a [`ManifestError`] holds all the
//! problems of one file and renders them one after another, then a count line:
//!
//! ```text
//! error: experiments/x.toml:12: study 2 (stream.triad): unknown key `threds`
//!   fix: did you mean `threads`? ...
//! 1 problem in experiments/x.toml
//! ```

use std::fmt;
use std::path::PathBuf;

/// One mistake in a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the manifest the problem is on, when it has one.
    pub line: Option<usize>,
    /// Where in the manifest: `study 2 (stream.triad)`, `[slurm]`, or empty for the top level.
    pub place: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

/// Every problem of one manifest file. `Display` renders all of them and a count line.
#[derive(Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// The manifest's path, as given.
    pub path: PathBuf,
    /// Problems in order of their line (problems without a line first).
    pub problems: Vec<Problem>,
}

impl ManifestError {
    /// The two lines (`error: ...` and `  fix: ...`) of one problem.
    pub fn render(&self, p: &Problem) -> String {
        let mut out = format!("error: {}", self.path.display());
        if let Some(line) = p.line {
            out.push_str(&format!(":{line}"));
        }
        out.push_str(": ");
        if !p.place.is_empty() {
            out.push_str(&p.place);
            out.push_str(": ");
        }
        out.push_str(&p.message);
        out.push_str("\n  fix: ");
        out.push_str(&p.fix);
        out
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{}", self.render(p))?;
        }
        let n = self.problems.len();
        write!(
            f,
            "{n} problem{} in {}",
            crate::units::plural(n),
            self.path.display()
        )
    }
}

/// Shows the rendered problems (as `Display`), so a failed `unwrap` reads like the CLI's output.
impl fmt::Debug for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for ManifestError {}

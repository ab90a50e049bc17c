//! Embeds the compiler and the source state the binary is built from, for provenance.json:
//! `SCALELAB_RUSTC`, `SCALELAB_BUILD_REV` (the commit) and `SCALELAB_BUILD_DIRTY` ("true" when
//! tracked files differed from it, "false", or "unknown" outside a git checkout).
//!
//! The script reruns when any of that can change: the sources of the workspace's crates, the
//! manifests, and git's HEAD, index and current branch ref. In a `git worktree` `.git` is a file,
//! so the git directories are asked of git itself (`rev-parse --git-dir`, `--git-common-dir`).

use std::path::{Path, PathBuf};
use std::process::Command;

fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn git(args: &[&str]) -> Option<String> {
    output("git", args)
}

/// A path git printed, made absolute against this package's folder.
fn git_path(args: &[&str], root: &Path) -> Option<PathBuf> {
    let p = PathBuf::from(git(args)?);
    Some(if p.is_absolute() { p } else { root.join(p) })
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SCALELAB_RUSTC={version}");

    let rev = git(&["rev-parse", "HEAD"]);
    let dirty = match rev {
        // `--no-optional-locks`: a plain `git status` may rewrite the index it watches below,
        // which would make the next build rerun this script for nothing.
        Some(_) => git(&[
            "--no-optional-locks",
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .map_or("unknown", |s| if s.is_empty() { "false" } else { "true" }),
        None => "unknown",
    };
    println!(
        "cargo:rustc-env=SCALELAB_BUILD_REV={}",
        rev.as_deref().unwrap_or("unknown")
    );
    println!("cargo:rustc-env=SCALELAB_BUILD_DIRTY={dirty}");

    // The sources whose edits make the tree dirty (cargo scans these folders recursively).
    for path in [
        "build.rs",
        "Cargo.toml",
        "Cargo.lock",
        "src",
        "kernels/src",
        "kernels/Cargo.toml",
        "kernels/build.rs",
        "ml/src",
        "ml/Cargo.toml",
    ] {
        if root.join(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    // Commits, checkouts and `git add`: HEAD and the index live in the worktree's git dir, the
    // branch refs in the common one. A path that does not exist would rerun the script on every
    // build, so only existing ones are named.
    if let Some(git_dir) = git_path(&["rev-parse", "--git-dir"], &root) {
        let common = git_path(&["rev-parse", "--git-common-dir"], &root).unwrap_or(git_dir.clone());
        let mut watched = vec![
            git_dir.join("HEAD"),
            git_dir.join("index"),
            common.join("packed-refs"),
        ];
        if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(common.join(branch));
        }
        for p in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
}

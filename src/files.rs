//! Writing files so that no reader sees half of one: a killed run, a full disk or a second
//! process leaves the old content or the new, never a torn file. Records, provenance, plans,
//! reports and the machine's cached calibrations all go through [`write_atomic`].

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Write `bytes` to `path` through a temporary file in the same folder and a rename, so readers and
/// a later resume see the old content or the new one, never a torn file. Creates parent folders.
/// Every error names `path`, the file being written, not the temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let writing = || format!("writing {}", path.display());
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).with_context(writing)?;
    // Through the `File`: `NamedTempFile`'s own writes name the temporary file in their errors.
    tmp.as_file_mut().write_all(bytes).with_context(writing)?;
    // Temporary files are created private (0600); results are meant to be read by others (a
    // teaching assistant on a shared cluster), so give them the usual 0644 before they appear.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(fs::Permissions::from_mode(0o644))
            .with_context(writing)?;
    }
    tmp.as_file().sync_all().with_context(writing)?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(writing)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_names_the_file_it_writes() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a folder: the final rename fails.
        let target = dir.path().join("points").join("abc.json");
        fs::create_dir_all(target.join("inside")).unwrap();
        let e = write_atomic(&target, b"{}").unwrap_err();
        let text = format!("{e:#}");
        assert!(
            text.starts_with(&format!("writing {}: ", target.display())),
            "{text}"
        );
        let shown = text.replace(&dir.path().display().to_string(), "DIR");
        assert!(!shown.contains("/.tmp"), "{shown}");
    }
}

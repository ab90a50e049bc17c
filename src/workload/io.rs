//! `io.seq`: sequential file I/O in the style of IOR (the course's "benchmark I/O performance on
//! an HPC system"). This module owns the whole workload: its parameters, the checks of the target
//! directory (exists, writable, free space, leftovers of crashed runs), the files' layout and
//! content, the timed write and read loops, and the verification of every byte read back.
//!
//! One workload with a `mode` axis (`"write"` or `"read"`) rather than two workloads, so that one
//! study sweeps both over the very same files, sizes and layout, and the report shows the write
//! and the read series of one configuration side by side.
//!
//! * **Sizes.** `block` is what each rank writes or reads per repetition (IOR's `-b`), in calls of
//!   `transfer` bytes (IOR's `-t`); `block` must be a multiple of `transfer`. The work of a
//!   repetition is counted analytically: `ranks × block` bytes ([`Workload::work_for`]), so the
//!   report's GB/s is the aggregate bandwidth, `ranks × block / t` with `t` the slowest rank's time
//!   (10⁹ bytes per GB). IOPS (metric `iops`) counts one operation per `pwrite`/`pread` call of
//!   `transfer` bytes: `ranks × block / transfer / t`; open, `fsync` and close are in the time but
//!   not counted as operations.
//! * **Layout.** `"file-per-process"`: rank r writes `rank-r.dat`; `"shared"`: every rank writes
//!   its disjoint region `[r·block, (r+1)·block)` of one `shared.dat`. Both use `pwrite`/`pread` at
//!   explicit offsets (IOR's `-a POSIX`): rsmpi 0.8 offers no safe MPI-IO API (only the raw
//!   `mpi::ffi` declarations of `MPI_File_*`), so the shared file does not go through MPI-IO.
//! * **Write** (timed): open (create), `transfer`-sized `pwrite`s in order, `fsync` when
//!   `fsync = "yes"` (IOR's `-e`), `close` with its error checked. Untimed afterwards (`verify`):
//!   every byte is read back and compared, then the files are removed, so the next repetition
//!   writes new files, as IOR does unless told to keep them.
//! * **Read** (timed): `prepare` writes the files once, with `fsync`; each repetition opens, reads
//!   in `transfer`-sized `pread`s and compares every byte as it arrives (the comparison is inside
//!   the timed region: it is what a reader that checks its input pays).
//!   `read_from = "other"` makes rank r read the data rank `(r + s) mod ranks` wrote, with `s` the
//!   ranks per node when the point spans several nodes (so the data come from another node, whose
//!   page cache this node does not share, like IOR's `-C`) and 1 on one node. Because on one node
//!   every rank shares one page cache, each reader also asks the kernel to drop its range from the
//!   cache before every timed read (`posix_fadvise(POSIX_FADV_DONTNEED)`, untimed except after
//!   warm-ups). That is advice: Linux drops the clean pages of the range, which after the `fsync`
//!   are all of them, but not pages another process has locked or mapped, and a storage device's
//!   or server's own cache is untouched. The metric `cached_share` says how much of the range
//!   `mincore` found still resident just before the read (0 = the cache could not answer).
//!   `read_from = "own"` reads a rank's own fresh file: on most machines the page cache answers.
//! * **Content.** Each `transfer` is a fixed pseudo-random body whose first 8 bytes of every
//!   4 KiB are replaced by a stamp of (writer rank, file offset, repetition), so a byte that
//!   differs, data at the wrong offset, another rank's data and data left from an earlier
//!   repetition all fail the comparison; the point ends `verify_failed` naming the file and offset.
//! * **Directory.** `dir` is an absolute path or starts with an environment variable (`$TMPDIR`,
//!   expanded where the point runs). Every point works in its own folder
//!   `<dir>/scalelab-io-<host>-<pid>-<ns>/`, beside a lock file of the same name plus `.lock` that
//!   its rank 0 holds (`flock`) while it runs. Before writing, rank 0 removes the folders of earlier
//!   points whose lock nobody holds any more (a point killed at its time limit, a crash), saying
//!   so on stderr (the point's log), and refuses a folder holding files this workload does not
//!   write. Then it checks the free space (`statvfs`) against `ranks × block`.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::os::unix::io::{AsRawFd, IntoRawFd};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, Context};

use super::{
    gib, to_usize, Backend, Description, Instance, ParamKind, ParamSpec, Params, Target, Work,
    Workload,
};
use crate::resources::Resources;
use crate::value::{Size, Value};

/// `io.seq`. See the module documentation.
pub struct Seq;

const MODES: &[&str] = &["write", "read"];
const LAYOUTS: &[&str] = &["file-per-process", "shared"];
const YES_NO: &[&str] = &["yes", "no"];
const READ_FROM: &[&str] = &["other", "own"];

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "mode",
        kind: ParamKind::Choice(MODES),
        default: "write",
        doc: "write | read: which phase is timed (a read point writes its files untimed first)",
    },
    ParamSpec {
        name: "dir",
        kind: ParamKind::Text,
        default: "/tmp",
        doc: "target directory: an absolute path, or one starting with an environment variable \
              (\"$TMPDIR\"), expanded where the point runs",
    },
    ParamSpec {
        name: "block",
        kind: ParamKind::Size,
        default: "256MiB",
        doc: "bytes each rank writes or reads per repetition (IOR -b; a plain count means bytes)",
    },
    ParamSpec {
        name: "transfer",
        kind: ParamKind::Size,
        default: "1MiB",
        doc: "bytes per pwrite/pread call (IOR -t), a multiple of 8 that divides `block`",
    },
    ParamSpec {
        name: "layout",
        kind: ParamKind::Choice(LAYOUTS),
        default: "file-per-process",
        doc: "file-per-process | shared (ranks write disjoint regions of one file with pwrite)",
    },
    ParamSpec {
        name: "fsync",
        kind: ParamKind::Choice(YES_NO),
        default: "yes",
        doc: "yes | no: fsync before close, inside the timed write (IOR -e); reads ignore it",
    },
    ParamSpec {
        name: "read_from",
        kind: ParamKind::Choice(READ_FROM),
        default: "other",
        doc: "other | own: read another rank's data with the range dropped from the page cache \
              first (posix_fadvise), or a rank's own fresh file; writes ignore it",
    },
];

/// Bytes between two stamps in a transfer.
const STAMP_EVERY: usize = 4096;
/// Largest transfer: one buffer of it per rank, and Linux moves at most 2 GiB - 4 KiB per call.
const MAX_TRANSFER: u64 = 1 << 30;
/// Prefix of every folder and lock file this workload creates in `dir`.
const PREFIX: &str = "scalelab-io-";
/// The shared file's name in a point's folder.
const SHARED_FILE: &str = "shared.dat";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Write,
    Read,
}

/// The checked parameters of one point.
#[derive(Clone, Debug)]
struct Spec {
    mode: Mode,
    dir: String,
    block: u64,
    transfer: u64,
    shared: bool,
    fsync: bool,
    read_other: bool,
}

fn bytes_param(params: &Params, name: &str) -> Result<u64, String> {
    match params.get(name) {
        Some(Value::Size(s)) => Ok(s.value()),
        Some(Value::Int(i)) if *i > 0 => Ok(*i),
        other => Err(format!(
            "io.seq: `{name}` must be a byte size like \"1MiB\" (found {other:?})"
        )),
    }
}

fn choice<'p>(params: &'p Params, name: &str) -> Result<&'p str, String> {
    match params.get(name) {
        Some(Value::Text(t)) => Ok(t),
        other => Err(format!("io.seq: `{name}` is missing (found {other:?})")),
    }
}

impl Spec {
    fn parse(params: &Params) -> Result<Spec, String> {
        let block = bytes_param(params, "block")?;
        let transfer = bytes_param(params, "transfer")?;
        if transfer % 8 != 0 {
            return Err(format!(
                "io.seq: `transfer` = {transfer} bytes is not a multiple of 8; use e.g. \"4KiB\" or \"1MiB\""
            ));
        }
        if transfer > MAX_TRANSFER {
            return Err(format!(
                "io.seq: `transfer` = {} is above the largest supported 1 GiB; use a smaller `transfer`",
                Size::Bytes(transfer)
            ));
        }
        if block % transfer != 0 {
            return Err(format!(
                "io.seq: `block` = {} is not a multiple of `transfer` = {}; make `block` a whole number of transfers (IOR's rule)",
                Size::Bytes(block),
                Size::Bytes(transfer)
            ));
        }
        let dir = choice(params, "dir")?.to_string();
        check_dir_form(&dir)?;
        Ok(Spec {
            mode: match choice(params, "mode")? {
                "read" => Mode::Read,
                _ => Mode::Write,
            },
            dir,
            block,
            transfer,
            shared: choice(params, "layout")? == "shared",
            fsync: choice(params, "fsync")? == "yes",
            read_other: choice(params, "read_from")? == "other",
        })
    }

    /// Bytes the point writes into `dir` at once: every rank's block.
    fn planned_bytes(&self, ranks: u32) -> Result<u64, String> {
        self.block
            .checked_mul(u64::from(ranks.max(1)))
            .ok_or_else(|| {
                format!(
                    "io.seq: {ranks} ranks × `block` = {} overflows; use a smaller `block`",
                    Size::Bytes(self.block)
                )
            })
    }
}

/// `dir` must be absolute or start with `$NAME` / `${NAME}`: a relative path would depend on the
/// folder each launcher starts the point in.
fn check_dir_form(dir: &str) -> Result<(), String> {
    if dir.is_empty() {
        return Err(
            "io.seq: `dir` is empty; set it to the directory to benchmark, e.g. \"/tmp\" or \"$TMPDIR\""
                .into(),
        );
    }
    if dir.contains('\0') {
        return Err("io.seq: `dir` contains a NUL byte; write a plain path".into());
    }
    if !dir.starts_with('/') && !dir.starts_with('$') {
        return Err(format!(
            "io.seq: `dir` = {dir:?} is relative; write an absolute path (\"/tmp\", \"/scratch/me\") \
             or one starting with an environment variable (\"$TMPDIR\"), so that every point and \
             node resolves it alike"
        ));
    }
    Ok(())
}

/// `dir` with `$NAME` and `${NAME}` replaced from this process's environment, or the variable that
/// is not set.
fn expand(dir: &str) -> Result<PathBuf, String> {
    let mut out = String::new();
    let mut rest = dir;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, tail) = if let Some(inner) = after.strip_prefix('{') {
            let end = inner.find('}').ok_or_else(|| {
                format!("io.seq: `dir` = {dir:?} has an unclosed `${{`; write ${{NAME}} or $NAME")
            })?;
            (&inner[..end], &inner[end + 1..])
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        if name.is_empty() {
            return Err(format!(
                "io.seq: `dir` = {dir:?} has a `$` without a variable name; write $NAME or ${{NAME}}"
            ));
        }
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => {
                let host = crate::machine::hostname();
                return Err(format!(
                    "io.seq: `dir` = {dir:?} needs the environment variable {name}, which is not \
                     set on {host}; set it, or write an absolute path"
                ));
            }
        }
        rest = tail;
    }
    out.push_str(rest);
    let path = PathBuf::from(out);
    if !path.is_absolute() {
        return Err(format!(
            "io.seq: `dir` = {dir:?} expands to {}, which is relative; give an absolute path",
            path.display()
        ));
    }
    Ok(path)
}

/// Free bytes for an unprivileged writer in the file system holding `dir` (`statvfs`: `f_bavail`
/// blocks of `f_frsize` bytes).
fn free_bytes(dir: &Path) -> io::Result<u64> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    // SAFETY: statvfs writes into the zeroed struct we own; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// The checks that need the file system, made at plan time (for a path without variables) and
/// again on the node before anything is written: `dir` exists, is a directory, a file can be
/// created in it (`access(2)` says yes to root on a read-only directory, so this creates and
/// removes an empty probe file), and it has room for `need` bytes. `leftovers` is what earlier
/// points left there (their bytes count as used), named in the message when space is short.
fn check_dir(dir: &Path, key: &str, need: u64, what: &str) -> Result<(), String> {
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => format!(
            "io.seq: `dir` = {key:?}: {shown} does not exist on {}; create it (mkdir -p {shown}) or set `dir` to an existing directory",
            crate::machine::hostname()
        ),
        _ => format!("io.seq: `dir` = {key:?}: cannot read {shown}: {e}; set `dir` to a directory you can use"),
    })?;
    if !meta.is_dir() {
        return Err(format!(
            "io.seq: `dir` = {key:?}: {shown} is not a directory; set `dir` to the directory the files should go into"
        ));
    }
    match tempfile::Builder::new()
        .prefix(".scalelab-io-probe-")
        .tempfile_in(dir)
    {
        Ok(probe) => drop(probe),
        Err(e) => {
            return Err(format!(
                "io.seq: `dir` = {key:?}: cannot create a file in {shown} ({e}); choose a directory you may write to, or fix its permissions"
            ))
        }
    }
    let free = free_bytes(dir)
        .map_err(|e| format!("io.seq: `dir` = {key:?}: statvfs({shown}) failed: {e}"))?;
    if need > free {
        let left: u64 = leftovers(dir).iter().map(|l| l.bytes).sum();
        let hint = if left > 0 {
            format!(
                "; {} of it is held by folders {PREFIX}* of earlier points that ended without cleaning up, which the next point removes (or delete them)",
                gib(left as f64)
            )
        } else {
            String::new()
        };
        return Err(format!(
            "io.seq: `dir` = {key:?}: {shown} has {} free (statvfs), but this point writes {what} = {} there{hint}; use a smaller `block` or fewer ranks, or free space",
            gib(free as f64),
            gib(need as f64)
        ));
    }
    Ok(())
}

/// "2 ranks × 1.00 GiB".
fn need_words(ranks: u32, block: u64) -> String {
    if ranks > 1 {
        format!("{ranks} ranks × {}", gib(block as f64))
    } else {
        format!("one block of {}", gib(block as f64))
    }
}

// ---------------------------------------------------------------------------------------------
// Leftovers of earlier points

/// A folder of an earlier point found in `dir`.
#[derive(Debug)]
struct Leftover {
    folder: PathBuf,
    lock: PathBuf,
    bytes: u64,
}

/// Whether `name` is a file this workload writes into its folder.
fn is_our_file(name: &str) -> bool {
    name == SHARED_FILE
        || name
            .strip_prefix("rank-")
            .and_then(|r| r.strip_suffix(".dat"))
            .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
}

/// The point folders in `dir` (live or not), with their sizes. Unreadable entries are skipped.
fn leftovers(dir: &Path) -> Vec<Leftover> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with(PREFIX) || name.ends_with(".lock") {
            continue;
        }
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let folder = entry.path();
        let bytes = std::fs::read_dir(&folder)
            .map(|files| {
                files
                    .flatten()
                    .filter_map(|f| f.metadata().ok())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0);
        found.push(Leftover {
            lock: dir.join(format!("{name}.lock")),
            folder,
            bytes,
        });
    }
    found.sort_by(|a, b| a.folder.cmp(&b.folder));
    found
}

/// Remove lock files in `dir` that nobody holds and whose folder is gone: a point that died
/// between removing its folder and its lock, or between creating its lock and renaming it.
fn clean_orphan_locks(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let stem = if let Some(s) = name.strip_suffix(".lock") {
            s.strip_prefix(PREFIX).map(|_| s)
        } else {
            name.strip_prefix('.')
                .and_then(|s| s.strip_suffix(".lock.tmp"))
                .filter(|s| s.starts_with(PREFIX))
        };
        let Some(stem) = stem else { continue };
        if dir.join(stem).exists() {
            continue;
        }
        if let Ok(lock) = File::open(entry.path()) {
            if lock.try_lock().is_ok() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
}

/// Remove the folders (and lock files) in `dir` of earlier points that no process runs any more,
/// and return one line per removal. A folder's point is alive while its lock file is locked; a
/// folder without a lock file is never alive (a point takes its lock before making its folder and
/// removes the folder first). A folder holding anything this workload does not write is refused.
fn clean_leftovers(dir: &Path) -> Result<Vec<String>, String> {
    let mut removed = Vec::new();
    for left in leftovers(dir) {
        // Keep the lock (if we get it) until both are gone, so that no other cleaner races us.
        let _held = match File::open(&left.lock) {
            Ok(lock) => match lock.try_lock() {
                Ok(()) => Some(lock),
                Err(std::fs::TryLockError::WouldBlock) => continue,
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(format!(
                        "io.seq: cannot lock {} to learn whether its point still runs: {e}; the file system may not support flock (Lustre needs the `flock` mount option); remove {} yourself if no point runs there",
                        left.lock.display(),
                        left.folder.display()
                    ))
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(format!(
                    "io.seq: cannot open {}: {e}; remove {} yourself if no point runs there",
                    left.lock.display(),
                    left.folder.display()
                ))
            }
        };
        let files = match std::fs::read_dir(&left.folder) {
            Ok(files) => files,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(format!(
                    "io.seq: cannot list {}, left by an earlier point: {e}; remove it yourself",
                    left.folder.display()
                ))
            }
        };
        let mut count = 0usize;
        for f in files.flatten() {
            let name = f.file_name();
            let ours =
                name.to_str().is_some_and(is_our_file) && f.file_type().is_ok_and(|t| t.is_file());
            if !ours {
                return Err(format!(
                    "io.seq: {} looks like the folder of an earlier io.seq point, but holds {}, which io.seq does not write; move what you need out of it and remove the folder",
                    left.folder.display(),
                    f.path().display()
                ));
            }
            count += 1;
        }
        match std::fs::remove_dir_all(&left.folder) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "io.seq: cannot remove {}, left by an earlier point: {e}; remove it yourself",
                    left.folder.display()
                ))
            }
        }
        let _ = std::fs::remove_file(&left.lock);
        removed.push(format!(
            "removed {} ({} in {count} file{}), left by an earlier io.seq point that ended without cleaning up (no process holds {})",
            left.folder.display(),
            gib(left.bytes as f64),
            crate::units::plural(count),
            left.lock.display()
        ));
    }
    clean_orphan_locks(dir);
    Ok(removed)
}

/// This point's folder in `dir`, with the lock that says it is alive. Dropping it removes both.
struct WorkDir {
    folder: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl WorkDir {
    /// Take the lock (created under a temporary name, locked, then renamed into place, so that no
    /// cleaner ever sees it unlocked), then make the folder.
    fn create(dir: &Path) -> Result<WorkDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let host: String = crate::machine::hostname()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let name = format!("{PREFIX}{host}-{}-{nanos}", std::process::id());
        let tmp = dir.join(format!(".{name}.lock.tmp"));
        let lock_path = dir.join(format!("{name}.lock"));
        let folder = dir.join(&name);
        let lock = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| format!("io.seq: cannot create {}: {e}", tmp.display()))?;
        lock.lock()
            .map_err(|e| format!("io.seq: cannot lock {}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, &lock_path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!(
                "io.seq: cannot rename {} to {}: {e}",
                tmp.display(),
                lock_path.display()
            )
        })?;
        if let Err(e) = std::fs::create_dir(&folder) {
            let _ = std::fs::remove_file(&lock_path);
            return Err(format!("io.seq: cannot create {}: {e}", folder.display()));
        }
        Ok(WorkDir {
            folder,
            lock_path,
            _lock: lock,
        })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.folder) {
            if e.kind() != io::ErrorKind::NotFound {
                eprintln!(
                    "scalelab: io.seq: could not remove {}: {e}; the next io.seq point in that directory removes it",
                    self.folder.display()
                );
                return;
            }
        }
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Rank 0's set-up of `dir` where the point runs: expand it, check it, clear leftovers, check
/// the space, take a folder.
fn set_up(spec: &Spec, ranks: u32) -> Result<WorkDir, String> {
    let dir = expand(&spec.dir)?;
    let need = spec.planned_bytes(ranks)?;
    // Existence and writability first: cleaning a directory we cannot use makes no sense.
    check_dir(&dir, &spec.dir, 0, "")?;
    for line in clean_leftovers(&dir)? {
        eprintln!("scalelab: io.seq: {line}");
    }
    check_dir(&dir, &spec.dir, need, &need_words(ranks, spec.block))?;
    WorkDir::create(&dir)
}

// ---------------------------------------------------------------------------------------------
// Content

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The stamp at `offset` of the data `writer` wrote in repetition `generation`.
fn stamp(writer: u64, offset: u64, generation: u64) -> [u8; 8] {
    splitmix(splitmix(writer ^ (generation << 32)) ^ offset).to_le_bytes()
}

/// The body every transfer shares (its stamp positions are overwritten).
fn body(transfer: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(transfer);
    for i in 0..transfer / 8 {
        b.extend_from_slice(&splitmix(0x5CA1_E1AB ^ i as u64).to_le_bytes());
    }
    b
}

/// Put the stamps of the transfer at file offset `offset` into `buf`.
fn put_stamps(buf: &mut [u8], writer: u64, offset: u64, generation: u64) {
    for at in (0..buf.len()).step_by(STAMP_EVERY) {
        buf[at..at + 8].copy_from_slice(&stamp(writer, offset + at as u64, generation));
    }
}

/// The first byte of `buf` (read at file `offset`) that differs from what `writer` wrote there in
/// `generation`: (index in `buf`, expected, found).
fn first_difference(
    buf: &[u8],
    body: &[u8],
    writer: u64,
    offset: u64,
    generation: u64,
) -> Option<(usize, u8, u8)> {
    for at in (0..buf.len()).step_by(STAMP_EVERY) {
        let end = (at + STAMP_EVERY).min(buf.len());
        let s = stamp(writer, offset + at as u64, generation);
        if buf[at..at + 8] != s || buf[at + 8..end] != body[at + 8..end] {
            let expected = |i: usize| if i < at + 8 { s[i - at] } else { body[i] };
            let i = (at..end).find(|&i| buf[i] != expected(i)).unwrap_or(at);
            return Some((i, expected(i), buf[i]));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Files and the page cache

/// Close `file` and report close's error (NFS reports failed writes there), which dropping a
/// `File` would ignore.
fn close(file: File) -> io::Result<()> {
    let fd = file.into_raw_fd();
    // SAFETY: we own fd (taken from the File) and close it exactly once.
    if unsafe { libc::close(fd) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ask the kernel to drop `[offset, offset + len)` of `file` from the page cache.
fn drop_cache(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on an open descriptor.
    let rc = unsafe {
        libc::posix_fadvise(
            file.as_raw_fd(),
            offset as libc::off_t,
            len as libc::off_t,
            libc::POSIX_FADV_DONTNEED,
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Share of the pages of `[offset, offset + len)` of `file` resident in the page cache (`mincore`
/// over a read-only mapping, which touches no page).
fn resident_share(file: &File, offset: u64, len: u64) -> io::Result<f64> {
    if len == 0 {
        return Ok(0.0);
    }
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    let start = offset / page * page;
    let span = (offset + len - start) as usize;
    // SAFETY: a fresh read-only shared mapping of an open file, unmapped below; mincore only
    // writes `pages` entries into `vec`, which has that many.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            span,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            start as libc::off_t,
        );
        if addr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let pages = span.div_ceil(page as usize);
        let mut vec = vec![0u8; pages];
        let rc = libc::mincore(addr, span, vec.as_mut_ptr());
        let err = io::Error::last_os_error();
        libc::munmap(addr, span);
        if rc != 0 {
            return Err(err);
        }
        Ok(vec.iter().filter(|&&v| v & 1 == 1).count() as f64 / pages as f64)
    }
}

// ---------------------------------------------------------------------------------------------
// The instance

/// One rank's part of a point.
struct SeqInstance {
    spec: Spec,
    rank: u64,
    ranks: u64,
    /// The rank whose data this rank reads (itself unless `read_from = "other"`).
    source: u64,
    /// The point's folder (rank 0 owns the lock and removes it when dropped).
    folder: PathBuf,
    _workdir: Option<WorkDir>,
    body: Vec<u8>,
    buf: Vec<u8>,
    /// Repetition counter of the writes (stamps); reads check generation 0, written in prepare.
    generation: u64,
    /// This rank's time of the last run, then (after verify) the slowest rank's.
    elapsed: f64,
    /// The first error of the last run.
    error: Option<String>,
    /// Whether the reader's range was dropped from the cache since the last read.
    dropped: bool,
    cached_share: f64,
    #[cfg(feature = "mpi")]
    comm: Option<super::Comm>,
}

impl SeqInstance {
    /// The file rank `writer`'s data live in, and their offset in it.
    fn place(&self, writer: u64) -> (PathBuf, u64) {
        if self.spec.shared {
            (self.folder.join(SHARED_FILE), writer * self.spec.block)
        } else {
            (self.folder.join(format!("rank-{writer}.dat")), 0)
        }
    }

    /// Write this rank's block (the timed write, and a read point's untimed preparation).
    fn write_block(&mut self, generation: u64) -> Result<(), String> {
        let (path, base) = self.place(self.rank);
        let mut opts = OpenOptions::new();
        opts.write(true).create(true);
        if !self.spec.shared {
            opts.truncate(true);
        }
        let file = opts
            .open(&path)
            .map_err(|e| format!("opening {} to write: {e}", path.display()))?;
        let t = self.spec.transfer;
        let mut off = 0;
        while off < self.spec.block {
            put_stamps(&mut self.buf, self.rank, base + off, generation);
            file.write_all_at(&self.buf, base + off)
                .map_err(|e| format!("writing {} at byte {}: {e}", path.display(), base + off))?;
            off += t;
        }
        if self.spec.fsync || self.spec.mode == Mode::Read {
            file.sync_all()
                .map_err(|e| format!("fsync of {}: {e}", path.display()))?;
        }
        close(file).map_err(|e| format!("closing {}: {e}", path.display()))
    }

    /// Read the block `writer` wrote in `generation` and compare every byte.
    fn read_block(&mut self, writer: u64, generation: u64) -> Result<(), String> {
        let (path, base) = self.place(writer);
        let file =
            File::open(&path).map_err(|e| format!("opening {} to read: {e}", path.display()))?;
        let t = self.spec.transfer;
        let mut off = 0;
        while off < self.spec.block {
            let at = base + off;
            file.read_exact_at(&mut self.buf, at).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    format!(
                        "{} ends before byte {} that rank {writer} wrote (the file was truncated)",
                        path.display(),
                        at + t
                    )
                } else {
                    format!("reading {} at byte {at}: {e}", path.display())
                }
            })?;
            if let Some((i, want, got)) =
                first_difference(&self.buf, &self.body, writer, at, generation)
            {
                return Err(format!(
                    "{}: byte {} differs from what rank {writer} wrote there (expected 0x{want:02x}, found 0x{got:02x}){}",
                    path.display(),
                    at + i as u64,
                    if i % STAMP_EVERY < 8 {
                        "; its 4 KiB stamp is wrong: data of another offset, rank or repetition"
                    } else {
                        ""
                    }
                ));
            }
            off += t;
        }
        close(file).map_err(|e| format!("closing {}: {e}", path.display()))
    }

    /// Drop the range this rank reads next from the page cache (with `read_from = "other"`) and
    /// measure how much of it is still cached.
    fn prepare_read(&mut self) -> Result<(), String> {
        let (path, base) = self.place(self.source);
        let file =
            File::open(&path).map_err(|e| format!("opening {} to read: {e}", path.display()))?;
        if self.spec.read_other {
            drop_cache(&file, base, self.spec.block)
                .map_err(|e| format!("posix_fadvise(DONTNEED) on {}: {e}", path.display()))?;
        }
        self.cached_share = resident_share(&file, base, self.spec.block)
            .map_err(|e| format!("mincore on {}: {e}", path.display()))?;
        self.dropped = true;
        Ok(())
    }

    fn run_once(&mut self) -> Result<(), String> {
        match self.spec.mode {
            Mode::Write => {
                self.generation += 1;
                self.write_block(self.generation)
            }
            Mode::Read => {
                if !self.dropped && self.spec.read_other {
                    // After a warm-up (no verify in between): drop inside the timed region.
                    self.prepare_read()?;
                }
                self.dropped = false;
                self.read_block(self.source, 0)
            }
        }
    }

    /// The slowest rank's time (every rank calls this, in `verify`).
    fn slowest(&self) -> f64 {
        #[cfg(feature = "mpi")]
        if let Some(comm) = &self.comm {
            use mpi::collective::{CommunicatorCollectives, SystemOperation};
            let mut max = 0.0f64;
            comm.all_reduce_into(&self.elapsed, &mut max, SystemOperation::max());
            return max;
        }
        self.elapsed
    }
}

impl Instance for SeqInstance {
    fn run(&mut self) {
        let t = Instant::now();
        let r = self.run_once();
        self.elapsed = t.elapsed().as_secs_f64();
        self.error = r.err();
    }

    fn verify(&mut self) -> Result<(), String> {
        let mut result = match self.error.take() {
            Some(e) => Err(e),
            None if self.spec.mode == Mode::Write => self.read_block(self.rank, self.generation),
            None => Ok(()),
        };
        // Collective: after it every rank has finished its check, so files may go.
        self.elapsed = self.slowest();
        match self.spec.mode {
            Mode::Write => {
                let (path, _) = self.place(self.rank);
                if !self.spec.shared || self.rank == 0 {
                    if let Err(e) = std::fs::remove_file(&path) {
                        if e.kind() != io::ErrorKind::NotFound && result.is_ok() {
                            result = Err(format!("removing {}: {e}", path.display()));
                        }
                    }
                }
            }
            Mode::Read => {
                if result.is_ok() {
                    result = self.prepare_read();
                }
            }
        }
        result
    }

    fn metrics(&self) -> Vec<(&'static str, f64)> {
        let ops = (self.ranks * (self.spec.block / self.spec.transfer)) as f64;
        let iops = if self.elapsed > 0.0 {
            ops / self.elapsed
        } else {
            0.0
        };
        match self.spec.mode {
            Mode::Write => vec![("iops", iops)],
            Mode::Read => vec![("iops", iops), ("cached_share", self.cached_share)],
        }
    }
}

/// Build one rank's instance once rank 0 has set up `folder`; a read point writes its data.
fn instance(
    spec: Spec,
    rank: u64,
    ranks: u64,
    shift: u64,
    folder: PathBuf,
    workdir: Option<WorkDir>,
) -> Result<SeqInstance, String> {
    let transfer = to_usize(spec.transfer, "transfer")?;
    let body = body(transfer);
    let source = if spec.read_other && spec.mode == Mode::Read {
        (rank + shift) % ranks
    } else {
        rank
    };
    Ok(SeqInstance {
        buf: body.clone(),
        body,
        spec,
        rank,
        ranks,
        source,
        folder,
        _workdir: workdir,
        generation: 0,
        elapsed: 0.0,
        error: None,
        dropped: false,
        cached_share: 0.0,
        #[cfg(feature = "mpi")]
        comm: None,
    })
}

/// `io.seq`, as `scalelab list` shows it.
pub const SEQ: Description = Description::new(
    "io.seq",
    "sequential file write or read (IOR-style: block, transfer, file per process or shared), every byte verified",
    Backend::Io,
    PARAMS,
)
.size_unit("bytes per rank");

impl Workload for Seq {
    fn description(&self) -> &'static Description {
        &SEQ
    }
    fn problem_size(&self, params: &Params) -> u64 {
        bytes_param(params, "block").unwrap_or(0)
    }
    fn check(&self, params: &Params, target: &Target) -> Result<(), String> {
        let spec = Spec::parse(params)?;
        let r = target.resources;
        if r.threads > 1 {
            return Err(format!(
                "io.seq does its I/O on one thread per rank, so threads = {} would only idle; set threads = 1 and sweep `ranks` for more writers",
                r.threads
            ));
        }
        let need = spec.planned_bytes(r.ranks)?;
        // The body and the I/O buffer, one transfer each, per rank.
        target.fits_memory(
            self.name(),
            2.0 * spec.transfer as f64,
            "use a smaller `transfer`",
        )?;
        // A path with a variable is resolved where the point runs: checked there only.
        if !spec.dir.contains('$') {
            check_dir(
                Path::new(&spec.dir),
                &spec.dir,
                need,
                &need_words(r.ranks, spec.block),
            )?;
        }
        Ok(())
    }
    fn work(&self, params: &Params) -> Work {
        Work {
            flops: 0.0,
            bytes: bytes_param(params, "block").unwrap_or(0) as f64,
        }
    }
    fn work_for(&self, params: &Params, resources: &Resources) -> Work {
        let one = self.work(params);
        Work {
            flops: 0.0,
            bytes: one.bytes * f64::from(resources.ranks.max(1)),
        }
    }
    fn expected_efficiency(&self, _params: &Params) -> f64 {
        // The estimate divides bytes by memory bandwidth; disks are some 20-50× slower.
        0.03
    }
    fn prepare(&self, params: &Params, target: &Target) -> anyhow::Result<Box<dyn Instance>> {
        let spec = Spec::parse(params).map_err(|e| anyhow!(e))?;
        if target.resources.ranks > 1 {
            return Err(anyhow!(
                "io.seq with ranks = {} runs under mpirun (`scalelab run` launches it in a build with `--features mpi`)",
                target.resources.ranks
            ));
        }
        let workdir = set_up(&spec, 1).map_err(|e| anyhow!(e))?;
        let folder = workdir.folder.clone();
        let mut inst = instance(spec, 0, 1, 0, folder, Some(workdir)).map_err(|e| anyhow!(e))?;
        if inst.spec.mode == Mode::Read {
            inst.write_block(0)
                .and_then(|()| inst.prepare_read())
                .map_err(|e| anyhow!(e))
                .context("writing the files the read point reads")?;
        }
        Ok(Box::new(inst))
    }
    #[cfg(feature = "mpi")]
    fn prepare_mpi(
        &self,
        params: &Params,
        target: &Target,
        comm: &super::Comm,
    ) -> anyhow::Result<Box<dyn Instance>> {
        use mpi::collective::{CommunicatorCollectives, Root, SystemOperation};
        use mpi::topology::Communicator;

        let rank = comm.rank() as u64;
        let ranks = comm.size() as u64;
        // Every rank takes part in every collective below, failed or not, so none is left
        // waiting; the first failure is returned by the rank that had it.
        let all_ok = |ok: bool| {
            let mut min = 0u8;
            comm.all_reduce_into(&u8::from(ok), &mut min, SystemOperation::min());
            min == 1
        };
        let spec = Spec::parse(params);
        // Rank 0 sets up the folder and sends its path (or an error flag) to everyone.
        let mut workdir = None;
        let mut message: Vec<u8> = Vec::new();
        let mut flag = 0u8;
        if rank == 0 {
            match spec
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|s| set_up(s, ranks as u32))
            {
                Ok(w) => {
                    message = w.folder.as_os_str().as_bytes().to_vec();
                    workdir = Some(w);
                    flag = 1;
                }
                Err(e) => message = e.into_bytes(),
            }
        }
        let root = comm.process_at_rank(0);
        root.broadcast_into(&mut flag);
        let mut len = message.len() as u64;
        root.broadcast_into(&mut len);
        message.resize(len as usize, 0);
        root.broadcast_into(&mut message[..]);
        if flag == 0 {
            let text = String::from_utf8_lossy(&message).into_owned();
            return Err(if rank == 0 {
                anyhow!(text)
            } else {
                anyhow!("rank 0 could not set up the directory: {text}")
            });
        }
        let folder = PathBuf::from(std::ffi::OsStr::from_bytes(&message));
        let spec = spec.map_err(|e| anyhow!(e))?;
        // Another node's data where there is one: shift by the ranks per node.
        let shift = if target.resources.nodes > 1 {
            target.ranks_per_node()
        } else {
            1
        };
        let built = instance(spec, rank, ranks, shift, folder, workdir);
        let mut inst = match built {
            Ok(i) => Some(i),
            Err(e) => {
                all_ok(false);
                return Err(anyhow!(e));
            }
        };
        if !all_ok(true) {
            return Err(anyhow!("another rank failed to prepare"));
        }
        let mut i = inst.take().expect("built above");
        i.comm = Some(comm.duplicate());
        if i.spec.mode == Mode::Read {
            let written = i.write_block(0);
            // Every block is written and synced before any rank drops another's from its cache.
            if !all_ok(written.is_ok()) {
                return Err(anyhow!(written
                    .err()
                    .unwrap_or_else(|| "another rank failed writing its block".into())))
                .context("writing the files the read point reads");
            }
            i.prepare_read().map_err(|e| anyhow!(e))?;
        }
        Ok(Box::new(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{find, Node};

    fn params(overrides: &[(&str, &str)]) -> Params {
        crate::workload::test_params(PARAMS, overrides)
    }

    fn target() -> Target {
        Target {
            resources: Resources::default(),
            node: Node {
                cores: 2,
                memory_bytes: Some(16 << 30),
            },
        }
    }

    fn small(dir: &Path, more: &[(&str, &str)]) -> Params {
        let d = dir.to_str().unwrap();
        let mut all = vec![("dir", d), ("block", "64KiB"), ("transfer", "16KiB")];
        all.extend_from_slice(more);
        params(&all)
    }

    #[test]
    fn registered_with_valid_defaults() {
        let w = find("io.seq").expect("io.seq is registered");
        assert_eq!(w.backend(), Backend::Io);
        w.check(&params(&[]), &target()).unwrap();
    }

    #[test]
    fn work_is_every_ranks_block() {
        let p = params(&[("block", "1MiB")]);
        let r = Resources {
            ranks: 4,
            ..Resources::default()
        };
        assert_eq!(Seq.work_for(&p, &r).bytes, 4.0 * 1048576.0);
        assert_eq!(Seq.work(&p).bytes, 1048576.0);
        assert_eq!(Seq.work(&p).flops, 0.0);
        assert_eq!(Seq.problem_size(&p), 1 << 20);
    }

    #[test]
    fn bad_sizes_and_dirs_are_refused_with_the_fix() {
        let t = target();
        let e = Seq
            .check(&params(&[("block", "1000KiB"), ("transfer", "3KiB")]), &t)
            .unwrap_err();
        assert!(
            e.contains("`block` = 1000KiB is not a multiple of `transfer` = 3KiB"),
            "{e}"
        );
        let e = Seq
            .check(&params(&[("transfer", "12B"), ("block", "24B")]), &t)
            .unwrap_err();
        assert!(e.contains("not a multiple of 8"), "{e}");
        let e = Seq.check(&params(&[("dir", "scratch")]), &t).unwrap_err();
        assert!(
            e.contains("`dir` = \"scratch\" is relative; write an absolute path"),
            "{e}"
        );
        let mut two = t;
        two.resources.threads = 2;
        let e = Seq.check(&params(&[]), &two).unwrap_err();
        assert!(e.contains("set threads = 1"), "{e}");
        // A variable path is checked where the point runs, not here.
        Seq.check(&params(&[("dir", "$SCALELAB_NO_SUCH_VAR/x")]), &t)
            .unwrap();
        let e = expand("$SCALELAB_NO_SUCH_VAR/x").unwrap_err();
        assert!(
            e.contains("needs the environment variable SCALELAB_NO_SUCH_VAR"),
            "{e}"
        );
    }

    #[test]
    fn variables_expand_in_both_forms() {
        std::env::set_var("SCALELAB_IO_TEST_DIR", "/scratch/me");
        assert_eq!(
            expand("$SCALELAB_IO_TEST_DIR/io").unwrap(),
            PathBuf::from("/scratch/me/io")
        );
        assert_eq!(
            expand("${SCALELAB_IO_TEST_DIR}x").unwrap(),
            PathBuf::from("/scratch/mex")
        );
        assert!(expand("${SCALELAB_IO_TEST_DIR").is_err());
    }

    #[test]
    fn write_and_read_points_verify_and_clean_up() {
        for layout in LAYOUTS {
            for mode in MODES {
                for from in READ_FROM {
                    let tmp = tempfile::tempdir().unwrap();
                    let p = small(
                        tmp.path(),
                        &[("mode", mode), ("layout", layout), ("read_from", from)],
                    );
                    let mut inst = Seq.prepare(&p, &target()).unwrap();
                    for _ in 0..3 {
                        inst.run();
                        inst.verify()
                            .unwrap_or_else(|e| panic!("{mode} {layout} {from}: {e}"));
                        let m = inst.metrics();
                        assert_eq!(m[0].0, "iops");
                        assert!(m[0].1 > 0.0);
                    }
                    drop(inst);
                    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
                    assert!(left.is_empty(), "{left:?}");
                }
            }
        }
    }

    #[test]
    fn a_read_of_other_data_drops_the_cache_first() {
        let tmp = tempfile::tempdir().unwrap();
        let p = small(tmp.path(), &[("mode", "read"), ("read_from", "other")]);
        let mut inst = Seq.prepare(&p, &target()).unwrap();
        inst.run();
        inst.verify().unwrap();
        let m = inst.metrics();
        assert_eq!(m[1].0, "cached_share");
        // tmpfs keeps pages whatever the advice; a disk-backed file system drops them.
        assert!((0.0..=1.0).contains(&m[1].1));
    }

    /// Flip one byte of the only data file under `dir`.
    fn corrupt(dir: &Path, at: u64) -> PathBuf {
        let folder = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .find(|e| e.file_type().unwrap().is_dir())
            .unwrap()
            .path();
        let file = std::fs::read_dir(&folder)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at).unwrap();
        b[0] ^= 0x40;
        f.write_all_at(&b, at).unwrap();
        file
    }

    #[test]
    fn a_corrupted_byte_fails_the_read_naming_file_and_offset() {
        let tmp = tempfile::tempdir().unwrap();
        let p = small(tmp.path(), &[("mode", "read"), ("read_from", "own")]);
        let mut inst = Seq.prepare(&p, &target()).unwrap();
        inst.run();
        inst.verify().unwrap();
        let file = corrupt(tmp.path(), 40_000);
        inst.run();
        let e = inst.verify().unwrap_err();
        assert_eq!(
            e,
            format!(
                "{}: byte 40000 differs from what rank 0 wrote there (expected 0x{:02x}, found 0x{:02x})",
                file.display(),
                body(16384)[40_000 - 32768],
                body(16384)[40_000 - 32768] ^ 0x40
            )
        );
        // A stamp: the data of another offset.
        let tmp = tempfile::tempdir().unwrap();
        let mut inst = Seq.prepare(&p_with(&tmp), &target()).unwrap();
        corrupt(tmp.path(), 4096 + 3);
        inst.run();
        let e = inst.verify().unwrap_err();
        assert!(e.contains("byte 4099 differs"), "{e}");
        assert!(e.contains("its 4 KiB stamp is wrong"), "{e}");
    }

    fn p_with(tmp: &tempfile::TempDir) -> Params {
        small(tmp.path(), &[("mode", "read"), ("read_from", "own")])
    }

    #[test]
    fn a_truncated_file_fails_the_read() {
        let tmp = tempfile::tempdir().unwrap();
        let mut inst = Seq.prepare(&p_with(&tmp), &target()).unwrap();
        let folder = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .find(|e| e.file_type().unwrap().is_dir())
            .unwrap()
            .path();
        let file = folder.join("rank-0.dat");
        OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(20_000)
            .unwrap();
        inst.run();
        let e = inst.verify().unwrap_err();
        assert_eq!(
            e,
            format!(
                "{} ends before byte 32768 that rank 0 wrote (the file was truncated)",
                file.display()
            )
        );
    }

    #[test]
    fn readers_of_other_data_take_the_next_node_or_the_next_rank() {
        let spec = |mode: &str, from: &str| {
            Spec::parse(&params(&[("mode", mode), ("read_from", from)])).unwrap()
        };
        let src = |s: Spec, rank: u64, ranks: u64, shift: u64| {
            instance(s, rank, ranks, shift, PathBuf::from("/x"), None)
                .unwrap()
                .source
        };
        // One node, 2 ranks: the other rank.
        assert_eq!(src(spec("read", "other"), 0, 2, 1), 1);
        assert_eq!(src(spec("read", "other"), 1, 2, 1), 0);
        // 2 nodes × 2 ranks: the same local rank on the other node.
        assert_eq!(src(spec("read", "other"), 0, 4, 2), 2);
        assert_eq!(src(spec("read", "other"), 3, 4, 2), 1);
        // One rank reads its own data (dropped from the cache); `own` and writes keep their own.
        assert_eq!(src(spec("read", "other"), 0, 1, 1), 0);
        assert_eq!(src(spec("read", "own"), 1, 2, 1), 1);
        assert_eq!(src(spec("write", "other"), 1, 2, 1), 1);
    }

    #[test]
    fn stale_data_from_an_earlier_repetition_fails() {
        let b = body(8192);
        let mut buf = b.clone();
        put_stamps(&mut buf, 3, 8192, 1);
        assert_eq!(first_difference(&buf, &b, 3, 8192, 1), None);
        let d = first_difference(&buf, &b, 3, 8192, 2).expect("another generation differs");
        assert!(d.0 < 8);
        assert!(
            first_difference(&buf, &b, 2, 8192, 1).is_some(),
            "another writer"
        );
        assert!(
            first_difference(&buf, &b, 3, 0, 1).is_some(),
            "another offset"
        );
    }

    #[test]
    fn leftovers_without_a_live_lock_are_removed_and_live_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        // A crashed point: folder and lock file, nobody holding the lock.
        let dead = tmp.path().join(format!("{PREFIX}h-1-1"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join("rank-0.dat"), vec![0u8; 1000]).unwrap();
        std::fs::write(tmp.path().join(format!("{PREFIX}h-1-1.lock")), b"").unwrap();
        // A crashed point that never made its lock file... cannot exist, but a folder alone is dead.
        let bare = tmp.path().join(format!("{PREFIX}h-2-2"));
        std::fs::create_dir(&bare).unwrap();
        // A live point.
        let live = WorkDir::create(tmp.path()).unwrap();
        std::fs::write(live.folder.join("shared.dat"), b"x").unwrap();
        // Somebody else's file is never touched.
        std::fs::write(tmp.path().join("notes.txt"), b"mine").unwrap();

        let lines = clean_leftovers(tmp.path()).unwrap();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[0].starts_with(&format!("removed {} (0.00 GiB in 1 file)", dead.display())));
        assert!(!dead.exists() && !bare.exists());
        assert!(!tmp.path().join(format!("{PREFIX}h-1-1.lock")).exists());
        assert!(live.folder.join("shared.dat").exists());
        assert!(tmp.path().join("notes.txt").exists());
        drop(live);
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
    }

    #[test]
    fn a_leftover_holding_foreign_files_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let odd = tmp.path().join(format!("{PREFIX}h-1-1"));
        std::fs::create_dir(&odd).unwrap();
        std::fs::write(odd.join("thesis.tex"), b"precious").unwrap();
        let e = clean_leftovers(tmp.path()).unwrap_err();
        assert!(e.contains("which io.seq does not write"), "{e}");
        assert!(odd.join("thesis.tex").exists());
    }
}

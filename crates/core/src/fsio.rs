//! Files that are complete or absent: the one way every scorelab crate replaces a file.
//!
//! [`write_atomic`] writes the bytes to a temporary file in the destination's folder, fsyncs it,
//! renames it over the destination and fsyncs the folder, so that a reader (or a process killed
//! at any instant) sees the old file or the new one, never a part of either. Power loss is out of
//! scope beyond what those two fsyncs give. An existing destination that is not a regular file (a
//! device node, a FIFO, a socket, a folder or a symbolic link) is refused: renaming over it would
//! replace it ([`check_target`]).
//!
//! # Fault injection (test builds only)
//! In builds with debug assertions (`cargo test`, `cargo build`; never `--release`) the
//! environment variable `SCORELAB_FAULT=POINT[@N][:MODE]` makes the N-th (default first) pass
//! through the named [`fault`] point abort the process (`MODE` = `abort`, the default: what a
//! kill -9 leaves), fail with ENOSPC (`MODE` = `enospc`: what a full disk gives), or wait there
//! until the file named by `SCORELAB_FAULT_RESUME` exists (`MODE` = `pause`: so that a test can
//! change an input between two reads of it, or signal the process at a chosen point). The fault
//! suite of the runner (`crates/runner/tests/faults.rs`) goes through every point in turn. In
//! release builds [`fault`] is an empty function.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let p = dir.path().join("a.csv");
//! scorelab_core::fsio::write_atomic(&p, b"x0\n1\n")?;
//! assert_eq!(std::fs::read(&p)?, b"x0\n1\n");
//! // A folder (or a device, a FIFO) is never replaced by a file.
//! assert!(scorelab_core::fsio::write_atomic(dir.path(), b"").is_err());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The folder a file `path` lives in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What an existing `path` is, in words, if it is anything but a regular file (`None` for a
/// regular file or nothing at all). Symbolic links are not followed: a link is refused as one.
pub fn non_regular(path: &Path) -> Option<&'static str> {
    let m = std::fs::symlink_metadata(path).ok()?;
    let t = m.file_type();
    if t.is_file() {
        return None;
    }
    if t.is_dir() {
        return Some("a folder");
    }
    if t.is_symlink() {
        return Some("a symbolic link");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return Some("a FIFO (named pipe)");
        }
        if t.is_char_device() {
            return Some("a character device");
        }
        if t.is_block_device() {
            return Some("a block device");
        }
        if t.is_socket() {
            return Some("a socket");
        }
    }
    Some("not a regular file")
}

/// `Ok` if `path` is absent or a regular file, so that [`write_atomic`] may replace it; an error
/// of kind [`io::ErrorKind::InvalidInput`] saying what it is otherwise.
///
/// # Errors
/// As above.
pub fn check_target(path: &Path) -> io::Result<()> {
    match non_regular(path) {
        None => Ok(()),
        Some(what) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("is {what}; scorelab only replaces regular files, give another name"),
        )),
    }
}

/// Fsyncs a folder, so that a rename in it is durable.
///
/// # Errors
/// If the folder cannot be opened or synced.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A temporary file beside `path`, holding `bytes`, fsync'ed and readable by others (0644), to
/// be renamed onto `path` by [`persist`]. Dropping it (on any error path) removes it.
///
/// # Errors
/// If the folder cannot be created or the file written (ENOSPC among them).
pub fn stage(path: &Path, bytes: &[u8]) -> io::Result<tempfile::NamedTempFile> {
    check_target(path)?;
    let dir = parent_of(path);
    std::fs::create_dir_all(&dir)?;
    // tempfile's error names its random temporary path; the caller names the destination.
    let mut tmp = tempfile::Builder::new()
        .prefix(".scorelab-")
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(|e| io::Error::from(e.kind()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.write_all(bytes)?;
    fault("write")?;
    tmp.as_file().sync_all()?;
    Ok(tmp)
}

/// Renames a [`stage`]d file onto `path` and fsyncs the folder.
///
/// # Errors
/// If `path` has become something other than a regular file, or the rename or sync fails.
pub fn persist(tmp: tempfile::NamedTempFile, path: &Path) -> io::Result<()> {
    check_target(path)?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(&parent_of(path))
}

/// Replaces `path` by a file holding `bytes`, whole or not at all (module docs).
///
/// # Errors
/// If `path` exists and is not a regular file, or on any I/O error (the destination is then
/// untouched and no temporary file is left).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = stage(path, bytes)?;
    persist(tmp, path)
}

/// Removes the temporaries (`.scorelab-*.tmp`) a killed process left in `dir`; the caller must
/// hold the folder (no other scorelab may be writing there). Returns how many it removed.
///
/// # Errors
/// If the folder cannot be listed or a temporary removed.
pub fn remove_stale_temporaries(dir: &Path) -> io::Result<usize> {
    let mut n = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".scorelab-") && name.ends_with(".tmp") && entry.file_type()?.is_file()
        {
            std::fs::remove_file(entry.path())?;
            n += 1;
        }
    }
    Ok(n)
}

/// A named fault-injection point (module docs): in test builds, aborts the process or fails with
/// ENOSPC when `SCORELAB_FAULT` names it; otherwise does nothing.
///
/// # Errors
/// ENOSPC when `SCORELAB_FAULT` asks for it at this point.
#[inline]
pub fn fault(point: &str) -> io::Result<()> {
    #[cfg(debug_assertions)]
    {
        injected(point)
    }
    #[cfg(not(debug_assertions))]
    {
        let _ = point;
        Ok(())
    }
}

#[cfg(debug_assertions)]
fn injected(point: &str) -> io::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    static HITS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());
    static ANY: AtomicU64 = AtomicU64::new(0);
    let Ok(spec) = std::env::var("SCORELAB_FAULT") else {
        return Ok(());
    };
    ANY.fetch_add(1, Ordering::Relaxed);
    // Point names contain `:` themselves (`train:model-saved`): the mode is the last part, if it
    // is one.
    let (target, mode) = match spec.rsplit_once(':') {
        Some((t, m)) if m == "abort" || m == "enospc" || m == "pause" => {
            (t.to_string(), m.to_string())
        }
        _ => (spec.clone(), "abort".to_string()),
    };
    let (name, nth) = match target.split_once('@') {
        Some((n, k)) => (n.to_string(), k.parse::<u64>().unwrap_or(1)),
        None => (target, 1),
    };
    if name != point {
        return Ok(());
    }
    let hit = {
        let mut hits = HITS.lock().unwrap_or_else(|p| p.into_inner());
        match hits.iter_mut().find(|(n, _)| n == point) {
            Some((_, k)) => {
                *k += 1;
                *k
            }
            None => {
                hits.push((point.to_string(), 1));
                1
            }
        }
    };
    if hit != nth {
        return Ok(());
    }
    match mode.as_str() {
        "enospc" => Err(io::Error::from_raw_os_error(28)),
        "pause" => {
            eprintln!("scorelab: paused at {point} (pass {hit})");
            let resume = std::env::var_os("SCORELAB_FAULT_RESUME").unwrap_or_default();
            let started = std::time::Instant::now();
            while !Path::new(&resume).exists() && started.elapsed().as_secs() < 60 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Ok(())
        }
        _ => {
            eprintln!("scorelab: injected fault at {point} (pass {hit})");
            std::process::abort()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_replaces_a_regular_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn special_files_and_folders_are_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let e = write_atomic(&fifo, b"x").unwrap_err();
        assert!(e.to_string().contains("FIFO"), "{e}");
        assert!(non_regular(&fifo).is_some(), "still a FIFO");
        let e = write_atomic(dir.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
        assert!(write_atomic(&link, b"x").is_err());
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        // Only the FIFO and the link are there: no temporary was left by the refusals.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn stale_temporaries_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".scorelab-abc.tmp"), b"half").unwrap();
        std::fs::write(dir.path().join("keep.csv"), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(dir.path()).unwrap(), 1);
        assert!(dir.path().join("keep.csv").exists());
    }
}

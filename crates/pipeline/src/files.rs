//! Files written whole or not at all: into a temporary file in the destination's folder,
//! then renamed over the destination, so an interrupted or failed run never leaves a partial file
//! and an existing result stays intact until its replacement is complete.

use crate::error::{PipelineError, Result};
use ndarray::Array2;
use scorelab_core::fsio;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A set of files staged in temporary files and committed together by [`Staged::commit`].
/// Each is written by [`scorelab_core::fsio`]: fsync'ed, renamed into place, the folder fsync'ed;
/// an existing destination that is not a regular file is refused, and a temporary is removed on
/// every error path.
#[derive(Default)]
pub struct Staged {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Staged {
    /// Stages `contents` for `path`, creating the parent folder if needed.
    ///
    /// # Errors
    /// [`PipelineError::Input`] if `path` exists and is not a regular file; [`PipelineError::Io`]
    /// if the folder cannot be created or the temporary file written.
    pub fn stage(&mut self, path: &Path, contents: &[u8]) -> Result<()> {
        check_output(path, "output")?;
        let tmp = fsio::stage(path, contents).map_err(|e| PipelineError::io(path, e))?;
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file onto its destination, in staging order.
    ///
    /// # Errors
    /// If a rename fails (the files renamed before it stay renamed; the rest are removed).
    pub fn commit(self) -> Result<()> {
        for (i, (tmp, path)) in self.files.into_iter().enumerate() {
            if i > 0 {
                fsio::fault("commit").map_err(|e| PipelineError::io(&path, e))?;
            }
            fsio::persist(tmp, &path).map_err(|e| PipelineError::io(&path, e))?;
        }
        Ok(())
    }
}

/// A file written piece by piece into a temporary file beside its destination
/// ([`Staged::grow`]); nothing appears at the destination until [`Staged::stage_grown`] and
/// [`Staged::commit`], so a kill at any moment leaves the old file or none.
pub struct Growing {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

impl Growing {
    /// Appends `bytes`.
    ///
    /// # Errors
    /// [`PipelineError::Io`] if the write fails (ENOSPC among them).
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.tmp
            .write_all(bytes)
            .map_err(|e| PipelineError::io(&self.path, e))
    }

    /// The same file, to be staged for another destination in the same folder (a run that
    /// stopped early writes its rows beside its output, not over it).
    ///
    /// # Errors
    /// [`PipelineError::Input`] if `path` is in another folder, or exists and is not a regular
    /// file.
    pub fn redirect(mut self, path: &Path) -> Result<Self> {
        if fsio::parent_of(path) != fsio::parent_of(&self.path) {
            return Err(PipelineError::Input(format!(
                "{}: not in the folder of {}",
                path.display(),
                self.path.display()
            )));
        }
        check_output(path, "output")?;
        self.path = path.to_path_buf();
        Ok(self)
    }
}

impl Staged {
    /// Starts a file for `path` holding `first` (e.g. a CSV header), to be appended to and then
    /// staged with [`Staged::stage_grown`]: the destination is checked now, as by
    /// [`Staged::stage`].
    ///
    /// # Errors
    /// As [`Staged::stage`].
    pub fn grow(path: &Path, first: &[u8]) -> Result<Growing> {
        check_output(path, "output")?;
        let tmp = fsio::stage(path, first).map_err(|e| PipelineError::io(path, e))?;
        Ok(Growing {
            tmp,
            path: path.to_path_buf(),
        })
    }

    /// Stages a grown file (fsync'ed now) to be committed with the others.
    ///
    /// # Errors
    /// [`PipelineError::Io`] if the sync fails.
    pub fn stage_grown(&mut self, g: Growing) -> Result<()> {
        g.tmp
            .as_file()
            .sync_all()
            .map_err(|e| PipelineError::io(&g.path, e))?;
        self.files.push((g.tmp, g.path));
        Ok(())
    }
}

/// Writes `contents` to `path` whole or not at all ([`Staged`] with one file).
///
/// # Errors
/// As [`Staged::stage`] and [`Staged::commit`].
pub fn write_whole(path: &Path, contents: &[u8]) -> Result<()> {
    let mut staged = Staged::default();
    staged.stage(path, contents)?;
    staged.commit()
}

/// Refuses an output path `flag` that exists and is not a regular file (a device, FIFO, socket,
/// folder or link): writing there would replace it.
///
/// # Errors
/// [`PipelineError::Input`] naming the flag, the path and what it is.
pub fn check_output(path: &Path, flag: &str) -> Result<()> {
    match fsio::non_regular(path) {
        None => Ok(()),
        Some(what) => Err(PipelineError::Input(format!(
            "{flag} {}: is {what}; scorelab only writes regular files, give another file name",
            path.display()
        ))),
    }
}

/// Whether `a` and `b` name the same file: the same canonical folder and file name, or (where
/// both exist) the same device and inode, which also catches hard links.
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b)) {
            if x.dev() == y.dev() && x.ino() == y.ino() {
                return true;
            }
        }
    }
    let place = |p: &Path| {
        let dir = std::fs::canonicalize(fsio::parent_of(p)).ok()?;
        Some((dir, p.file_name()?.to_os_string()))
    };
    match (place(a), place(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// Refuses a command whose outputs and inputs overlap, before anything is written: each
/// `(flag, path)` output against each input and every other output.
///
/// # Errors
/// [`PipelineError::Input`] naming both flags and the path.
///
/// # Examples
/// ```
/// use std::path::Path;
/// use scorelab_pipeline::files::check_distinct;
/// let dir = tempfile::tempdir()?;
/// let c = dir.path().join("c.toml");
/// std::fs::write(&c, "seed = 1")?;
/// let e = check_distinct(&[("--out", c.as_path())], &[("--config", c.as_path())]).unwrap_err();
/// assert!(e.to_string().contains("--out"));
/// assert!(check_distinct(&[("--out", dir.path().join("s.csv").as_path())], &[("--config", c.as_path())]).is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn check_distinct(outputs: &[(&str, &Path)], inputs: &[(&str, &Path)]) -> Result<()> {
    for (i, (flag, out)) in outputs.iter().enumerate() {
        check_output(out, flag)?;
        let others = inputs.iter().chain(&outputs[..i]);
        for (other, p) in others {
            if same_file(out, p) {
                return Err(PipelineError::Input(format!(
                    "{flag} {}: is the same file as {other} {}; an output never replaces an input, give another name",
                    out.display(),
                    p.display()
                )));
            }
        }
    }
    Ok(())
}

/// The name of the lock file in a folder a command writes ([`FolderLock`]).
pub const LOCK_FILE: &str = ".scorelab.lock";

/// An exclusive advisory lock on a folder's [`LOCK_FILE`], held until dropped (the OS releases it
/// when the process dies, however it dies). The holder's pid is written in the file, so that a
/// second writer is told who holds it. The lock file itself stays in the folder: removing it
/// would let two processes hold locks on different files of the same name.
///
/// # Examples
/// ```
/// use scorelab_pipeline::files::FolderLock;
/// let dir = tempfile::tempdir()?;
/// let held = FolderLock::acquire(dir.path(), "--out")?;
/// let e = FolderLock::acquire(dir.path(), "--out").unwrap_err().to_string();
/// assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
/// drop(held);
/// assert!(FolderLock::acquire(dir.path(), "--out").is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FolderLock {
    dir: PathBuf,
    _file: std::fs::File,
}

impl FolderLock {
    /// Creates `dir` if needed and locks it, or refuses at once if another process holds it.
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming `flag`, the folder and the holder's pid;
    /// [`PipelineError::Io`] if the folder or lock file cannot be created.
    pub fn acquire(dir: &Path, flag: &str) -> Result<Self> {
        // A link to a folder is a folder here (results/ may live on another disk).
        if std::fs::metadata(dir).is_ok_and(|m| !m.is_dir()) {
            return Err(PipelineError::Input(format!(
                "{flag} {}: is not a folder; give a folder",
                dir.display()
            )));
        }
        std::fs::create_dir_all(dir).map_err(|e| PipelineError::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        check_output(&path, flag)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| PipelineError::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = std::io::Read::read_to_string(&mut file, &mut text);
                let holder = match text.trim().parse::<u32>() {
                    Ok(pid) => format!("pid {pid}"),
                    Err(_) => "a process that is starting".to_string(),
                };
                return Err(PipelineError::Input(format!(
                    "{flag} {}: another scorelab ({holder}) is writing to this folder; wait for it to finish or give another folder",
                    dir.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(PipelineError::io(&path, e)),
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|_| std::io::Seek::rewind(&mut file))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|_| file.sync_all())
            .map_err(|e| PipelineError::io(&path, e))?;
        Ok(FolderLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// [`FolderLock::acquire`], then removes everything in the folder but the lock file: a
    /// staging folder, where whatever an earlier interrupted run left is not a result.
    ///
    /// # Errors
    /// As [`FolderLock::acquire`]; [`PipelineError::Io`] if something cannot be removed.
    pub fn acquire_emptied(dir: &Path, flag: &str) -> Result<Self> {
        let lock = Self::acquire(dir, flag)?;
        for entry in std::fs::read_dir(dir).map_err(|e| PipelineError::io(dir, e))? {
            let entry = entry.map_err(|e| PipelineError::io(dir, e))?;
            if entry.file_name() == LOCK_FILE {
                continue;
            }
            let p = entry.path();
            let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(|e| PipelineError::io(&p, e))?;
        }
        Ok(lock)
    }

    /// The locked folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the folder holds anything besides the lock file.
    ///
    /// # Errors
    /// [`PipelineError::Io`] if the folder cannot be listed.
    pub fn has_other_files(&self) -> Result<bool> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| PipelineError::io(&self.dir, e))?;
        for e in entries {
            let e = e.map_err(|e| PipelineError::io(&self.dir, e))?;
            if e.file_name() != LOCK_FILE {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// At most ~80 characters of `s` (quoted), with how much was left out: what an error message
/// echoes of a value a user gave, however long it is.
///
/// # Examples
/// ```
/// let long = "9".repeat(50_000_000);
/// let q = scorelab_pipeline::files::quote(&long);
/// assert!(q.len() < 120 && q.contains("50000000 characters"));
/// assert_eq!(scorelab_pipeline::files::quote("abc"), "\"abc\"");
/// ```
pub fn quote(s: &str) -> String {
    let n = s.chars().count();
    if n <= CLIP {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(CLIP - 20).collect();
        format!("{head:?}… ({n} characters)")
    }
}

/// The longest value an error message echoes whole.
const CLIP: usize = 80;

/// [`quote`] without the quotes for a value that fits: `s` itself up to ~80 characters, else its
/// head and how long it was.
///
/// # Examples
/// ```
/// assert_eq!(scorelab_pipeline::files::clip("1e308"), "1e308");
/// assert!(scorelab_pipeline::files::clip(&"9".repeat(1000)).ends_with("… (1000 characters)"));
/// ```
pub fn clip(s: &str) -> String {
    let n = s.chars().count();
    if n <= CLIP {
        s.to_string()
    } else {
        let head: String = s.chars().take(CLIP - 20).collect();
        format!("{head}… ({n} characters)")
    }
}

/// Rust's shortest round-trip `{}` for f64 (so a CSV reads back to the same bits); empty for `None`.
pub fn cell(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

/// The rows of `x` as CSV with the header `{prefix}0,…,{prefix}{D−1}`, each value by [`cell`].
///
/// # Examples
/// ```
/// let csv = scorelab_pipeline::files::matrix_csv(&ndarray::array![[1.0, 0.5]], "x");
/// assert_eq!(csv, "x0,x1\n1,0.5\n");
/// ```
pub fn matrix_csv(x: &Array2<f64>, prefix: &str) -> String {
    let mut csv = (0..x.ncols())
        .map(|j| format!("{prefix}{j}"))
        .collect::<Vec<_>>()
        .join(",");
    csv.push('\n');
    for row in x.rows() {
        let line: Vec<String> = row.iter().map(|&v| cell(Some(v))).collect();
        csv.push_str(&line.join(","));
        csv.push('\n');
    }
    csv
}

/// `<stem><suffix>` beside `out` = `<stem>.csv` (or `<out><suffix>` without the `.csv`): where a
/// command writes the files that go with its CSV, e.g. `<stem>.config.toml`.
///
/// # Examples
/// ```
/// use std::path::Path;
/// let p = scorelab_pipeline::files::beside(Path::new("results/a.csv"), ".config.toml");
/// assert_eq!(p, Path::new("results/a.config.toml"));
/// ```
pub fn beside(out: &Path, suffix: &str) -> PathBuf {
    let s = out.to_string_lossy();
    let stem = s.strip_suffix(".csv").unwrap_or(&s);
    PathBuf::from(format!("{stem}{suffix}"))
}

/// Reads a TOML config file into `T`; the error is one line naming the file, the line and the
/// parser's message.
///
/// # Errors
/// [`PipelineError::Input`] if the file cannot be read or is not a valid `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    if let Some(what) = fsio::non_regular(path).filter(|w| *w != "a symbolic link") {
        return Err(PipelineError::Input(format!(
            "config {}: is {what}, not a TOML file",
            path.display()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| PipelineError::Input(format!("cannot read config {}: {e}", path.display())))?;
    parse_toml(&text).map_err(|e| PipelineError::Input(format!("config {}: {e}", path.display())))
}

/// Parses TOML text into `T`; the error is `line L: key.path: message`, the key path of the
/// value it is about joined to the message of the type that refused it.
///
/// # Errors
/// The message, for the caller to put the file's name before.
pub fn parse_toml<T: DeserializeOwned>(text: &str) -> std::result::Result<T, String> {
    serde_path_to_error::deserialize(toml::Deserializer::new(text)).map_err(|e| {
        let at = e.path().to_string();
        let e = e.into_inner();
        with_key(&toml_error(text, &e), &at)
    })
}

/// `line L: message` with the key path of the value it is about put before the message
/// (`line 4: model.activation: unknown …`), unless the message already starts with it. A message
/// that starts with its own key (`activation: …`, from a type that parses itself) is joined to
/// the path (`model.activation: …`).
fn with_key(line_msg: &str, at: &str) -> String {
    if at.is_empty() || at == "." {
        return line_msg.to_string();
    }
    let (line, msg) = match line_msg.split_once(": ") {
        Some((l, m)) if l.starts_with("line ") => (format!("{l}: "), m),
        _ => (String::new(), line_msg),
    };
    if msg.starts_with(at) {
        return line_msg.to_string();
    }
    let own_key = msg.split_once(": ").filter(|(k, _)| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    });
    match own_key {
        Some((k, rest)) if at.rsplit('.').next() == Some(k) => format!("{line}{at}: {rest}"),
        Some((k, rest)) => format!("{line}{at}.{k}: {rest}"),
        None => format!("{line}{at}: {msg}"),
    }
}

/// A TOML parse or type error in one line: `line L: message`.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().replace('\n', "; ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {msg}")
        }
        None => msg,
    }
}

/// The SHA-256 of `bytes`, as `sha256:` and 64 hex digits.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A folder built aside and swapped in whole: [`AsideFolder::begin`] locks and empties
/// `<dest>.partial` beside `dest`, the caller writes there, and [`AsideFolder::swap_in`] replaces
/// `dest` by it with two renames (`dest` → `.<name>.old`, `<dest>.partial` → `dest`), so `dest`
/// is always the last complete result: a run interrupted or failing before the swap leaves it as
/// it was. A kill between the two renames leaves `.<name>.old`, which the next
/// [`AsideFolder::begin`] renames back.
///
/// # Examples
/// ```
/// use scorelab_pipeline::files::AsideFolder;
/// let tmp = tempfile::tempdir()?;
/// let dest = tmp.path().join("models");
/// std::fs::create_dir(&dest)?;
/// std::fs::write(dest.join("old.txt"), "complete")?;
/// let aside = AsideFolder::begin(&dest, "model folder")?;
/// std::fs::write(aside.dir().join("new.txt"), "half")?;
/// drop(aside); // interrupted: the complete result stays
/// assert!(dest.join("old.txt").exists() && !dest.join("new.txt").exists());
/// let aside = AsideFolder::begin(&dest, "model folder")?;
/// assert!(!aside.dir().join("new.txt").exists(), "an interrupted attempt is cleared");
/// std::fs::write(aside.dir().join("new.txt"), "whole")?;
/// aside.swap_in()?;
/// assert!(dest.join("new.txt").exists() && !dest.join("old.txt").exists());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct AsideFolder {
    lock: FolderLock,
    dest: PathBuf,
}

fn sibling(dest: &Path, f: impl Fn(&str) -> String) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    fsio::parent_of(dest).join(f(&name))
}

impl AsideFolder {
    /// Locks `<dest>.partial` (created if needed; `flag` names it in a refusal) and removes
    /// whatever an earlier interrupted attempt left in it.
    ///
    /// # Errors
    /// [`PipelineError::Input`] if another process holds it or `dest` is not a folder;
    /// [`PipelineError::Io`] if it cannot be created or cleared.
    pub fn begin(dest: &Path, flag: &str) -> Result<Self> {
        if std::fs::metadata(dest).is_ok_and(|m| !m.is_dir()) {
            return Err(PipelineError::Input(format!(
                "{flag} {}: is not a folder; give a folder",
                dest.display()
            )));
        }
        let staging = sibling(dest, |n| format!("{n}.partial"));
        let lock = FolderLock::acquire_emptied(&staging, flag)?;
        let old = sibling(dest, |n| format!(".{n}.old"));
        if !dest.exists() && old.is_dir() {
            std::fs::rename(&old, dest).map_err(|e| PipelineError::io(dest, e))?;
        }
        Ok(AsideFolder {
            lock,
            dest: dest.to_path_buf(),
        })
    }

    /// The folder to write into.
    pub fn dir(&self) -> &Path {
        self.lock.dir()
    }

    /// Gives the folder up: removed if nothing was written into it (a run refused before any
    /// work leaves no trace), kept otherwise (an interrupted run's work stays there).
    pub fn abandon(self) {
        let dir = self.lock.dir().to_path_buf();
        let empty = self.lock.has_other_files().is_ok_and(|other| !other);
        if empty {
            let _ = std::fs::remove_file(dir.join(LOCK_FILE));
            let _ = std::fs::remove_dir(&dir);
        }
    }

    /// The lock held on it (for [`crate::train::train_in`]).
    pub fn lock(&self) -> &FolderLock {
        &self.lock
    }

    /// Replaces the destination by the folder written (type docs).
    ///
    /// # Errors
    /// [`PipelineError::Io`] if a rename fails.
    pub fn swap_in(self) -> Result<()> {
        let dest = &self.dest;
        let old = sibling(dest, |n| format!(".{n}.old"));
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| PipelineError::io(&old, e))?;
        }
        if dest.exists() {
            std::fs::rename(dest, &old).map_err(|e| PipelineError::io(dest, e))?;
        }
        fsio::fault("aside:old-moved").map_err(|e| PipelineError::io(dest, e))?;
        std::fs::rename(self.lock.dir(), dest).map_err(|e| PipelineError::io(dest, e))?;
        let parent = fsio::parent_of(dest);
        fsio::sync_dir(&parent).map_err(|e| PipelineError::io(&parent, e))?;
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(|e| PipelineError::io(&old, e))?;
        }
        Ok(())
    }
}

/// What identifies a file's contents between two reads of it without reading it again: its
/// device and inode, size and modification time. A command that reads an input twice (checks
/// every row, then works through them) takes it before the first pass and refuses, with
/// [`Fingerprint::unchanged`], an input that changed by the second.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    dev_ino: (u64, u64),
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Fingerprint {
    /// The fingerprint of the regular file `path`; `flag` names it in errors.
    ///
    /// # Errors
    /// [`PipelineError::Input`] if `path` is not a regular file (a FIFO, a device, a socket:
    /// they cannot be read twice) or cannot be read.
    pub fn of(path: &Path, flag: &str) -> Result<Self> {
        let m = std::fs::metadata(path).map_err(|e| {
            PipelineError::Input(format!("{flag} {}: cannot be read: {e}", path.display()))
        })?;
        if !m.is_file() {
            let what = fsio::non_regular(path).unwrap_or("not a regular file");
            return Err(PipelineError::Input(format!(
                "{flag} {}: is {what}; it is read twice (every row checked before any work), so give a regular file (e.g. save the stream to a file first)",
                path.display()
            )));
        }
        #[cfg(unix)]
        let dev_ino = {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        };
        #[cfg(not(unix))]
        let dev_ino = (0, 0);
        Ok(Fingerprint {
            dev_ino,
            len: m.len(),
            modified: m.modified().ok(),
        })
    }

    /// Refuses if `path` is no longer the file this fingerprint was taken of.
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming `flag` and what changed.
    ///
    /// # Examples
    /// ```
    /// use scorelab_pipeline::files::Fingerprint;
    /// let dir = tempfile::tempdir()?;
    /// let p = dir.path().join("points.csv");
    /// std::fs::write(&p, "x0\n1\n2\n")?;
    /// let f = Fingerprint::of(&p, "--points")?;
    /// assert!(f.unchanged(&p, "--points").is_ok());
    /// std::fs::write(&p, "x0\n1\n")?;
    /// assert!(f.unchanged(&p, "--points").unwrap_err().to_string().contains("changed"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn unchanged(&self, path: &Path, flag: &str) -> Result<()> {
        let now = Fingerprint::of(path, flag)?;
        if &now == self {
            return Ok(());
        }
        let what = if now.dev_ino != self.dev_ino {
            "was replaced by another file".to_string()
        } else if now.len != self.len {
            format!("changed size from {} to {} bytes", self.len, now.len)
        } else {
            "was modified".to_string()
        };
        Err(PipelineError::Input(format!(
            "{flag} {}: changed while it was being read ({what}); nothing was written: rerun once the file is complete",
            path.display()
        )))
    }
}

//! Files written whole or not at all: into a temporary file in the destination's folder,
//! then renamed over the destination, so an interrupted or failed run never leaves a partial file
//! and an existing result stays intact until its replacement is complete.

use crate::error::{PipelineError, Result};
use ndarray::Array2;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A set of files staged in temporary files and committed together by [`Staged::commit`].
#[derive(Default)]
pub struct Staged {
    files: Vec<(tempfile::NamedTempFile, PathBuf)>,
}

impl Staged {
    /// Stages `contents` for `path`, creating the parent folder if needed.
    ///
    /// # Errors
    /// If the folder cannot be created or the temporary file written.
    pub fn stage(&mut self, path: &Path, contents: &[u8]) -> Result<()> {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| PipelineError::io(&dir, e))?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".scorelab-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| PipelineError::io(&dir, e))?;
        // Temporary files are created private (0600); a result file is an ordinary one (0644).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(|e| PipelineError::io(&dir, e))?;
        }
        tmp.write_all(contents)
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(|e| PipelineError::io(path, e))?;
        self.files.push((tmp, path.to_path_buf()));
        Ok(())
    }

    /// Renames every staged file onto its destination, in staging order.
    ///
    /// # Errors
    /// If a rename fails (the files renamed before it stay renamed).
    pub fn commit(self) -> Result<()> {
        for (tmp, path) in self.files {
            tmp.persist(&path)
                .map_err(|e| PipelineError::io(&path, e.error))?;
        }
        Ok(())
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

/// Reads a TOML config file into `T`; errors name the file, and the key and line serde reports.
///
/// # Errors
/// [`PipelineError::Input`] if the file cannot be read or is not a valid `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| PipelineError::Input(format!("cannot read config {}: {e}", path.display())))?;
    toml::from_str(&text)
        .map_err(|e| PipelineError::Input(format!("config {}: {e}", path.display())))
}

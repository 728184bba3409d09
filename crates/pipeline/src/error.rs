//! [`PipelineError`]: the one error of this crate. Every variant that comes from user input says
//! which field or file to change; [`PipelineError::is_input`] tells a command line which ones
//! those are (exit code 2) and which are failures of the machine (I/O, a diverging run).

use scorelab_core::ParamError;
use scorelab_models::LoadError;
use std::path::PathBuf;
use thiserror::Error;

/// What went wrong in a pipeline call.
///
/// # Examples
/// ```
/// use scorelab_pipeline::PipelineError;
/// let e = PipelineError::invalid("batch", "must be at least 1").within("train");
/// assert_eq!(e.to_string(), "train.batch: must be at least 1");
/// assert!(e.is_input());
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A parameter that cannot be used: `field` is its path as configs spell it
    /// (`train.batch`, `data.density.cov`), `message` what is wrong and what would be valid.
    #[error("{}", if field.is_empty() { message.clone() } else { format!("{field}: {message}") })]
    Invalid {
        /// The field, dotted from the top of the config.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// An input file that cannot be used (a data CSV, a points file, a model folder); the message
    /// names the file, and the row and column where there is one.
    #[error("{0}")]
    Input(String),
    /// A saved network or training state that cannot be read.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A run whose estimated memory exceeds the limit, refused before it allocates
    /// ([`crate::memory`]).
    #[error("{what}: needs about {} of memory, over the limit of {} ({hint})", crate::memory::human(*.estimate), crate::memory::human(*.limit))]
    TooLarge {
        /// What was estimated, with its sizes.
        what: String,
        /// The estimate, bytes.
        estimate: u64,
        /// The limit, bytes.
        limit: u64,
        /// What to change.
        hint: String,
    },
    /// A file could not be read or written (a full disk says so, and what to do).
    #[error("{}", io_message(path, cause))]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause, in the message (not a `source`: a chain printed whole would repeat it).
        cause: std::io::Error,
    },
    /// Training produced a non-finite loss or gradient (the message says where and what to
    /// change); what was finished before it is kept.
    #[error("{0}")]
    Diverged(String),
}

impl PipelineError {
    /// A [`PipelineError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        PipelineError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with `prefix.` put before its field (nothing else changes).
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            PipelineError::Invalid { field, message } => PipelineError::Invalid {
                field: if field.is_empty() {
                    prefix.to_string()
                } else {
                    format!("{prefix}.{field}")
                },
                message,
            },
            other => other,
        }
    }

    /// Whether the error is the user's input (a config, a file, a size) rather than the machine's.
    pub fn is_input(&self) -> bool {
        match self {
            // A path the user gave that cannot be written or read is theirs to change.
            PipelineError::Io { cause, .. } => matches!(
                cause.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ),
            PipelineError::Diverged(_) => false,
            _ => true,
        }
    }

    /// An [`PipelineError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        PipelineError::Io {
            path: path.into(),
            cause: source,
        }
    }
}

impl From<ParamError> for PipelineError {
    fn from(e: ParamError) -> Self {
        match e {
            ParamError::Invalid { field, message } => PipelineError::Invalid { field, message },
            ParamError::Field { field, source } => PipelineError::Invalid {
                field,
                message: source.to_string(),
            },
            other => PipelineError::Invalid {
                field: String::new(),
                message: other.to_string(),
            },
        }
    }
}

/// Results of this crate.
pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

fn io_message(path: &std::path::Path, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::StorageFull {
        format!(
            "{}: the disk is full (no space left on device); nothing was left half-written. Free some space and rerun (a train run continues with --resume)",
            path.display()
        )
    } else if matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) {
        format!(
            "{}: {}: scorelab cannot write there; give a path in a folder you can write to (nothing was written)",
            path.display(),
            e.kind()
        )
    } else {
        format!("{}: {e}", path.display())
    }
}

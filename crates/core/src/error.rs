//! The errors of the core layer: shapes and matrices that cannot be used as given, and
//! [`ParamError`], the error of every constructor that validates named parameters.

use thiserror::Error;

/// What is wrong with an array handed to a constructor; each message says what would be valid.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum CoreError {
    /// An array has the wrong length or number of columns.
    #[error("{what} has dimension {found}, expected {expected}")]
    DimensionMismatch {
        /// What was checked.
        what: String,
        /// The dimension that would fit.
        expected: usize,
        /// The dimension found.
        found: usize,
    },
    /// A matrix is not square.
    #[error("{what} is {rows}×{cols}, expected a square matrix")]
    NotSquare {
        /// What was checked.
        what: String,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
    },
    /// An entry is NaN or infinite.
    #[error(
        "{what} has a non-finite entry ({value}) at {index}; every entry must be a finite number"
    )]
    NotFinite {
        /// What was checked.
        what: String,
        /// The position, as `[i]` or `[i, j]`.
        index: String,
        /// The offending value.
        value: f64,
    },
    /// A matrix differs from its transpose.
    #[error("{what} is not symmetric: entry [{row}, {col}] = {a} but [{col}, {row}] = {b}; make it symmetric")]
    NotSymmetric {
        /// What was checked.
        what: String,
        /// Row of the first mismatch.
        row: usize,
        /// Column of the first mismatch.
        col: usize,
        /// Entry [row, col].
        a: f64,
        /// Entry [col, row].
        b: f64,
    },
    /// A symmetric matrix is not positive definite.
    #[error("{what} is not positive definite (smallest eigenvalue {min_eigenvalue}); every eigenvalue must be > 0")]
    NotPositiveDefinite {
        /// What was checked.
        what: String,
        /// Its smallest eigenvalue.
        min_eigenvalue: f64,
    },
}

/// A named parameter that cannot be used: the error of every validating constructor (densities,
/// models). `field` is the name as configs spell it (`cov`, `covs[1]`, `nu`, `a`), so a runner can
/// prefix the case and report exactly what to change.
///
/// # Examples
/// ```
/// use scorelab_core::error::{positive, ParamError};
/// assert_eq!(positive(2.0, "scale"), Ok(2.0));
/// let e = positive(-1.0, "scale").unwrap_err();
/// assert_eq!(e.to_string(), "scale: must be a finite number > 0, got -1");
/// assert!(matches!(e, ParamError::Invalid { .. }));
/// ```
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum ParamError {
    /// A field failed a shape or matrix check.
    #[error("{field}: {source}")]
    Field {
        /// The parameter, e.g. `cov` or `covs[1]`.
        field: String,
        /// What is wrong with it.
        source: CoreError,
    },
    /// A field has a value outside its valid range.
    #[error("{field}: {message}")]
    Invalid {
        /// The parameter, e.g. `nu`.
        field: String,
        /// What is wrong and what would be valid.
        message: String,
    },
}

impl ParamError {
    /// A [`ParamError::Field`] for `field`.
    pub fn field(field: impl Into<String>, source: CoreError) -> Self {
        ParamError::Field {
            field: field.into(),
            source,
        }
    }

    /// A [`ParamError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error with `prefix.` put before its field, for a parameter of a nested table.
    ///
    /// # Examples
    /// ```
    /// use scorelab_core::ParamError;
    /// let e = ParamError::invalid("rho", "must be > 0").within("schedule");
    /// assert_eq!(e.to_string(), "schedule.rho: must be > 0");
    /// ```
    #[must_use]
    pub fn within(self, prefix: &str) -> Self {
        match self {
            ParamError::Field { field, source } => ParamError::Field {
                field: format!("{prefix}.{field}"),
                source,
            },
            ParamError::Invalid { field, message } => ParamError::Invalid {
                field: format!("{prefix}.{field}"),
                message,
            },
        }
    }
}

/// The range of a noise level σ (σ̃ of a schedule, σ of a denoising objective): σ² and the weight
/// 1/σ² of a denoising target must be finite numbers, with room for the data's scale, so
/// σ ∈ [1e-150, 1e150] (a σ of 1e300 used to end in a non-finite loss, or an infinite variance
/// deep inside a sampler, far from the setting that caused it).
pub const SIGMA_RANGE: (f64, f64) = (1e-150, 1e150);

/// Checks a noise level lies in [`SIGMA_RANGE`].
///
/// # Examples
/// ```
/// use scorelab_core::error::noise_level;
/// assert!(noise_level(80.0, "sigma_max").is_ok());
/// assert!(noise_level(1e308, "sigma_max").unwrap_err().to_string().contains("sigma_max"));
/// assert!(noise_level(1e-300, "sigma_min").is_err());
/// ```
///
/// # Errors
/// [`ParamError::Invalid`] naming `field`.
pub fn noise_level(sigma: f64, field: &str) -> Result<f64, ParamError> {
    positive(sigma, field)?;
    if !(SIGMA_RANGE.0..=SIGMA_RANGE.1).contains(&sigma) {
        return Err(ParamError::invalid(
            field,
            format!(
                "{sigma:e} is outside [{:e}, {:e}]: σ² would not be a finite number (σ is in model units, where the data have scale about 1)",
                SIGMA_RANGE.0, SIGMA_RANGE.1
            ),
        ));
    }
    Ok(sigma)
}

/// Checks a scalar is finite and strictly positive.
///
/// # Errors
/// [`ParamError::Invalid`] naming `field`.
pub fn positive(value: f64, field: &str) -> Result<f64, ParamError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ParamError::invalid(
            field,
            format!("must be a finite number > 0, got {value}"),
        ))
    }
}

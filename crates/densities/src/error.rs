//! Errors of the density constructors: each names the parameter and what would be valid.

use scorelab_core::CoreError;
use thiserror::Error;

/// A density parameter that cannot be used; the message names the field as the config spells it.
#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum DensityError {
    /// A field failed a shape or matrix check of the core layer.
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

impl DensityError {
    pub(crate) fn field(field: impl Into<String>, source: CoreError) -> Self {
        DensityError::Field {
            field: field.into(),
            source,
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DensityError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Checks a scalar is finite and strictly positive.
pub(crate) fn positive(value: f64, field: &str) -> Result<f64, DensityError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(DensityError::invalid(
            field,
            format!("must be a finite number > 0, got {value}"),
        ))
    }
}

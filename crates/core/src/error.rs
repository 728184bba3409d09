//! The errors of the core layer: shapes and matrices that cannot be used as given.

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

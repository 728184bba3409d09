//! Errors of the density constructors: [`ParamError`], naming the parameter and what would be valid.

pub use scorelab_core::error::positive;
use scorelab_core::ParamError;

/// A density parameter that cannot be used; the message names the field as the config spells it.
pub type DensityError = ParamError;

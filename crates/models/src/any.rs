//! [`AnyModel`]: one type for every score model, for code that picks one at run time.

use crate::Linear;
use ndarray::{Array1, Array2, ArrayView2};
use scorelab_core::{Dimension, ParameterGradient, Score, ScoreFunction};

/// Any score model of this crate, dispatching the score traits to the one it holds.
///
/// # Examples
/// ```
/// use scorelab_core::{Dimension, ScoreFunction};
/// use scorelab_models::{AnyModel, Linear};
/// let m = AnyModel::from(Linear::random(3, 0.5, 1)?);
/// assert_eq!((m.kind(), m.dim()), ("linear", 3));
/// assert!(m.as_parameter_gradient().is_some());
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AnyModel {
    /// [`Linear`].
    Linear(Linear),
}

impl From<Linear> for AnyModel {
    fn from(m: Linear) -> Self {
        AnyModel::Linear(m)
    }
}

impl AnyModel {
    /// The kind as configs spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyModel::Linear(_) => "linear",
        }
    }
}

impl Dimension for AnyModel {
    fn dim(&self) -> usize {
        match self {
            AnyModel::Linear(m) => m.dim(),
        }
    }
}

impl Score for AnyModel {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        match self {
            AnyModel::Linear(m) => m.score(x),
        }
    }
}

impl ScoreFunction for AnyModel {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        match self {
            AnyModel::Linear(m) => m.score_jvp(x, v),
        }
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        match self {
            AnyModel::Linear(m) => m.jacobian_trace(x),
        }
    }
    fn as_parameter_gradient(&self) -> Option<&dyn ParameterGradient> {
        match self {
            AnyModel::Linear(m) => Some(m),
        }
    }
}

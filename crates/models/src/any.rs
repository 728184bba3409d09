//! [`AnyModel`]: one type for every score model of the f64 door, for code that picks one at run
//! time.

use crate::{EnergyMlp, Linear, Mlp};
use ndarray::{Array1, Array2, ArrayView2};
use scorelab_core::{Dimension, ParameterGradient, Score, ScoreFunction};

/// Any σ-free score model of this crate, dispatching the score traits to the one it holds.
///
/// # Examples
/// ```
/// use scorelab_core::{Dimension, ScoreFunction};
/// use scorelab_models::{Activation, AnyModel, Linear, Mlp};
/// let m = AnyModel::from(Linear::random(3, 0.5, 1)?);
/// assert_eq!((m.kind(), m.dim()), ("linear", 3));
/// assert!(m.as_parameter_gradient().is_some());
/// let m = AnyModel::from(Mlp::new(2, &[8], Activation::Tanh, 1)?);
/// assert_eq!(m.kind(), "mlp");
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AnyModel {
    /// [`Linear`].
    Linear(Linear),
    /// [`Mlp`].
    Mlp(Mlp),
    /// [`EnergyMlp`].
    EnergyMlp(EnergyMlp),
}

impl From<Linear> for AnyModel {
    fn from(m: Linear) -> Self {
        AnyModel::Linear(m)
    }
}

impl From<Mlp> for AnyModel {
    fn from(m: Mlp) -> Self {
        AnyModel::Mlp(m)
    }
}

impl From<EnergyMlp> for AnyModel {
    fn from(m: EnergyMlp) -> Self {
        AnyModel::EnergyMlp(m)
    }
}

macro_rules! dispatch {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            AnyModel::Linear($m) => $e,
            AnyModel::Mlp($m) => $e,
            AnyModel::EnergyMlp($m) => $e,
        }
    };
}

impl AnyModel {
    /// The kind as configs spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyModel::Linear(_) => "linear",
            AnyModel::Mlp(_) => "mlp",
            AnyModel::EnergyMlp(_) => "energy_mlp",
        }
    }
}

impl Dimension for AnyModel {
    fn dim(&self) -> usize {
        dispatch!(self, m => m.dim())
    }
}

impl Score for AnyModel {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        dispatch!(self, m => m.score(x))
    }
}

impl ScoreFunction for AnyModel {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        dispatch!(self, m => m.score_jvp(x, v))
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        dispatch!(self, m => m.jacobian_trace(x))
    }
    fn as_parameter_gradient(&self) -> Option<&dyn ParameterGradient> {
        dispatch!(self, m => Some(m))
    }
}

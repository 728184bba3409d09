//! [`AnyModel`]: a σ-free score model of the f64 door chosen at run time — an exact linear score
//! or a network. Networks have one type, [`Network`] (the same for the audit's random networks and
//! for trained ones); the linear score of the audit is [`Linear`], in f64, so that its closed forms
//! hold to rounding (a network with no hidden layer is the trainable, f32 linear score).

use crate::{EnergyMlp, Linear, Mlp, ModelError, Network};
use ndarray::{Array1, Array2, ArrayView2};
use scorelab_core::{Dimension, ParameterGradient, Score, ScoreFunction};

/// A linear score or a σ-free network, dispatching the score traits to the one it holds.
///
/// # Examples
/// ```
/// use scorelab_core::{Dimension, ScoreFunction};
/// use scorelab_models::{Activation, AnyModel, Linear, Mlp, Network, NoiseConditionalMlp};
/// let m = AnyModel::from(Linear::random(3, 0.5, 1)?);
/// assert_eq!((m.kind(), m.dim()), ("linear", 3));
/// assert!(m.as_parameter_gradient().is_some());
/// let m = AnyModel::from(Mlp::new(2, &[8], Activation::Tanh, 1)?);
/// assert_eq!(m.kind(), "mlp");
/// // A noise-conditional network has no σ-free score: refused.
/// let nc = Network::NoiseConditional(NoiseConditionalMlp::new(2, &[8], Activation::Tanh, 1)?);
/// assert!(AnyModel::network(nc).is_err());
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AnyModel {
    /// [`Linear`], in f64.
    Linear(Linear),
    /// A σ-free [`Network`] (an MLP or an energy network; [`AnyModel::network`] checks).
    ///
    /// Evaluating a noise-conditional network through this variant panics: build it with
    /// [`AnyModel::network`].
    Network(Network),
}

impl AnyModel {
    /// A σ-free network as a model of the f64 door.
    ///
    /// # Errors
    /// [`ModelError`] naming `model` for a noise-conditional network, whose score needs σ.
    pub fn network(net: Network) -> Result<Self, ModelError> {
        if net.is_noise_conditional() {
            return Err(ModelError::invalid(
                "model",
                "a noise_conditional_mlp needs σ; evaluate it at a noise level (NoiseConditionalMlp::at)",
            ));
        }
        Ok(AnyModel::Network(net))
    }

    /// The kind as configs spell it: `linear`, or the network's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyModel::Linear(_) => "linear",
            AnyModel::Network(n) => n.spec().kind.name(),
        }
    }
}

impl From<Linear> for AnyModel {
    fn from(m: Linear) -> Self {
        AnyModel::Linear(m)
    }
}

impl From<Mlp> for AnyModel {
    fn from(m: Mlp) -> Self {
        AnyModel::Network(Network::Mlp(m))
    }
}

impl From<EnergyMlp> for AnyModel {
    fn from(m: EnergyMlp) -> Self {
        AnyModel::Network(Network::Energy(m))
    }
}

macro_rules! dispatch {
    ($self:ident, $m:ident => $e:expr) => {
        match $self {
            AnyModel::Linear($m) => $e,
            AnyModel::Network(Network::Mlp($m)) => $e,
            AnyModel::Network(Network::Energy($m)) => $e,
            AnyModel::Network(Network::NoiseConditional(_)) => {
                panic!(
                    "a noise-conditional network has no σ-free score; build with AnyModel::network"
                )
            }
        }
    };
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

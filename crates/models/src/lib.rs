//! # scorelab-models: score models s_θ(x)
//!
//! A score model maps points to vectors in ℝᴰ and exposes what score matching needs through the
//! f64 [`scorelab_core::ScoreFunction`] door (value, JVP, exact Jacobian trace) and, for training
//! and the gradient-equivalence audit, [`scorelab_core::ParameterGradient`].
//!
//! | model | s_θ(x) | tr ∇ₓs_θ | parameters θ |
//! | --- | --- | --- | --- |
//! | [`Linear`] | A x + b | tr A | A (row-major), then b |
//!
//! [`AnyModel`] holds any of them for code that picks one at run time.
//!
//! ```
//! use ndarray::array;
//! use scorelab_core::{Score, ScoreFunction};
//! use scorelab_models::Linear;
//! let m = Linear::new(array![[-1.0, 0.5], [0.0, -2.0]], array![0.1, 0.0])?;
//! assert_eq!(m.score(array![[1.0, 1.0]].view()), array![[-0.4, -2.0]]);
//! assert_eq!(m.jacobian_trace(array![[1.0, 1.0]].view())[0], -3.0);
//! # Ok::<(), scorelab_models::ModelError>(())
//! ```
#![warn(missing_docs)]

mod adam;
mod any;
mod energy;
mod fused;
mod linear;
mod mlp;
pub mod net;
mod network;
mod params;

pub use adam::{Adam, Ema};
pub use any::AnyModel;
pub use energy::EnergyMlp;
pub use linear::Linear;
pub use mlp::{AtSigma, Mlp, NoiseConditionalMlp};
pub use net::{Activation, Bound, Outputs, Real, Tangents, TraceMethod};
pub use network::{LoadError, Network, NetworkKind, NetworkSpec, TrainingState};
pub use params::Params;

/// A model parameter that cannot be used; the message names the field as the config spells it.
pub type ModelError = scorelab_core::ParamError;

//! # scorelab-models: score models s_θ(x)
//!
//! A score model maps points to vectors in ℝᴰ and exposes what score matching needs through the
//! f64 [`scorelab_core::ScoreFunction`] door (value, JVP, exact Jacobian trace) and, for training
//! and the gradient-equivalence audit, [`scorelab_core::ParameterGradient`].
//!
//! | model | s_θ(x) | tr ∇ₓs_θ | parameters θ |
//! | --- | --- | --- | --- |
//! | [`Linear`] (f64) | A x + b | tr A | A (row-major), then b |
//! | [`Mlp`] (dfdx, f32) | MLP(x) | naive (D tangents) or structured (cyclic trace, [`TraceMethod`]) | every layer's weight, then bias |
//! | [`NoiseConditionalMlp`] | MLP(x, log σ)/σ; [`NoiseConditionalMlp::at`] fixes σ | the same, at fixed σ | as [`Mlp`], with log σ as an extra input |
//! | [`EnergyMlp`] | −∇ₓ(MLP(x) + ‖x‖²/(2τ²)), a normalisable p_θ ∝ e^{−f_θ} | −Δf_θ, exact | as [`Mlp`] |
//!
//! The dfdx networks are trained in f32 on a tape: their forward pushes Jacobian–vector products
//! and exact traces alongside the values as ordinary taped ops, so one backward pass gives ∇_θ of
//! any score-matching loss (dfdx has no double backward; the module docs of `mlp` and `energy`
//! derive each construction). Trained networks are evaluated by the f32 inference path
//! ([`Inference`], behind the f64 traits as [`F32Score`] and [`F32Noised`]: prepared weights, kept
//! buffers, the vectorised activations of [`simd`]) in the samplers, `score` and the experiments,
//! and through the f64 door for the audits and quadratures that need f64.
//!
//! [`Network`] is the one network type — every dfdx network, random or trained — with its
//! architecture [`NetworkSpec`] (of a [`NetworkKind`]), safetensors save/load and the resumable
//! [`TrainingState`]. [`AnyModel`] is a σ-free model of the f64 door: a network, or the exact f64
//! [`Linear`] score whose closed forms the audit checks to rounding. [`Adam`] and [`Ema`] are the optimiser and weight average, validated at
//! construction. [`Classifier`] is not a score: an MLP classifier (softmax cross-entropy on the
//! same tape machinery) whose last hidden layer is the feature map of a Fréchet distance.
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
mod classifier;
mod energy;
mod fused;
mod infer;
mod linear;
mod mlp;
pub mod net;
mod network;
mod params;
pub mod simd;

pub use adam::{Adam, Ema};
pub use any::AnyModel;
pub use classifier::Classifier;
pub use energy::EnergyMlp;
pub use infer::{F32Noised, F32Score, Inference};
pub use linear::Linear;
pub use mlp::{AtSigma, Mlp, NoiseConditionalMlp};
pub use net::{Activation, Bound, Outputs, Real, Tangents, TraceMethod};
pub use network::{
    Checkpoint, EdmCoefficients, LoadError, Network, NetworkKind, NetworkSpec, Precondition,
    TrainingState,
};
pub use params::Params;

/// A model parameter that cannot be used; the message names the field as the config spells it.
pub type ModelError = scorelab_core::ParamError;

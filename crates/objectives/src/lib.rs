//! # scorelab-objectives: score-matching objectives
//!
//! For a data density p and a model score s_θ, with per-sample losses averaged over x ∼ p:
//!
//! | objective | per-sample loss ℓ(x) | needs |
//! | --- | --- | --- |
//! | ESM, explicit (Fisher divergence) | ½‖∇log p(x) − s_θ(x)‖² | the true score |
//! | ISM, implicit (Hyvärinen 2005) | ½‖s_θ(x)‖² + tr ∇ₓs_θ(x) | samples only |
//!
//! Integration by parts gives ESM(θ) = ISM(θ) + C with C = ½E_p‖∇log p‖² independent of θ,
//! provided the boundary term vanishes (see [`scorelab_core::LogDensity::boundary_term`]), so
//! ∇_θ ESM = ∇_θ ISM. Every estimate here comes with its Monte Carlo standard error; the
//! [`closed_form`] module has the exact values for a Gaussian (and a half-normal) with a linear model.
//!
//! ```
//! use ndarray::array;
//! use scorelab_densities::Gaussian;
//! use scorelab_models::Linear;
//! use scorelab_objectives::{esm_values, ism_values};
//! let p = Gaussian::standard(2);
//! let m = Linear::new(array![[-1.0, 0.0], [0.0, -1.0]], array![0.0, 0.0])?; // the true score
//! let x = array![[0.5, -1.0], [2.0, 0.0]];
//! assert_eq!(esm_values(&p, &m, x.view()).to_vec(), vec![0.0, 0.0]);
//! // ISM = ½‖x‖² − 2 here
//! assert_eq!(ism_values(&m, x.view()).to_vec(), vec![0.5 * 1.25 - 2.0, 0.5 * 4.0 - 2.0]);
//! # Ok::<(), scorelab_models::ModelError>(())
//! ```
#![warn(missing_docs)]

pub mod closed_form;
mod config;
pub mod continuous;
pub mod direct;
pub mod taped;
pub mod training;

use ndarray::{Array1, ArrayView1, ArrayView2};
use scorelab_core::linalg::row_sq_norms;
use scorelab_core::stats::MeanSe;
use scorelab_core::{ParameterGradient, Score, ScoreFunction};

/// ESM per sample from precomputed true scores `t` and model scores `s`: ½‖tᵢ − sᵢ‖².
pub fn esm_terms(t: ArrayView2<f64>, s: ArrayView2<f64>) -> Array1<f64> {
    row_sq_norms((&t - &s).view()) * 0.5
}

/// ISM per sample from model scores `s` and Jacobian traces `tr`: ½‖sᵢ‖² + trᵢ.
pub fn ism_terms(s: ArrayView2<f64>, tr: ArrayView1<f64>) -> Array1<f64> {
    row_sq_norms(s) * 0.5 + tr
}

/// ESM per sample, ½‖∇log p(xᵢ) − s_θ(xᵢ)‖², for a target score `target` (a density) and a model.
pub fn esm_values(target: &dyn Score, model: &dyn Score, x: ArrayView2<f64>) -> Array1<f64> {
    esm_terms(target.score(x).view(), model.score(x).view())
}

/// ISM per sample, ½‖s_θ(xᵢ)‖² + tr ∇ₓs_θ(xᵢ).
pub fn ism_values(model: &dyn ScoreFunction, x: ArrayView2<f64>) -> Array1<f64> {
    ism_terms(model.score(x).view(), model.jacobian_trace(x).view())
}

/// The Monte Carlo ESM on the samples `x` ∼ p, with its standard error.
pub fn esm(target: &dyn Score, model: &dyn Score, x: ArrayView2<f64>) -> MeanSe {
    MeanSe::of(esm_values(target, model, x).view())
}

/// The Monte Carlo ISM on the samples `x` ∼ p, with its standard error.
pub fn ism(model: &dyn ScoreFunction, x: ArrayView2<f64>) -> MeanSe {
    MeanSe::of(ism_values(model, x).view())
}

/// ∇_θ of the sample-mean ESM: (1/n) Σᵢ ∇_θ s_θ(xᵢ)ᵀ (s_θ(xᵢ) − ∇log p(xᵢ)).
pub fn esm_param_grad(
    target: &dyn Score,
    model: &dyn ParameterGradient,
    x: ArrayView2<f64>,
) -> Array1<f64> {
    esm_param_grad_terms(model, x, target.score(x).view(), model.score(x).view())
}

/// [`esm_param_grad`] from precomputed true scores `t` and model scores `s` at `x`.
pub fn esm_param_grad_terms(
    model: &dyn ParameterGradient,
    x: ArrayView2<f64>,
    t: ArrayView2<f64>,
    s: ArrayView2<f64>,
) -> Array1<f64> {
    model.score_vjp(x, (&s - &t).view()) / x.nrows() as f64
}

/// ∇_θ of the sample-mean ISM: (1/n) Σᵢ [∇_θ s_θ(xᵢ)ᵀ s_θ(xᵢ) + ∇_θ tr ∇ₓs_θ(xᵢ)].
pub fn ism_param_grad(model: &dyn ParameterGradient, x: ArrayView2<f64>) -> Array1<f64> {
    ism_param_grad_terms(model, x, model.score(x).view())
}

/// [`ism_param_grad`] from precomputed model scores `s` at `x`.
pub fn ism_param_grad_terms(
    model: &dyn ParameterGradient,
    x: ArrayView2<f64>,
    s: ArrayView2<f64>,
) -> Array1<f64> {
    (model.score_vjp(x, s) + model.trace_gradient(x)) / x.nrows() as f64
}

//! Exact ESM and ISM, and their θ-gradients, where they have a closed form.
//!
//! **Gaussian p = N(μ, Σ), linear s(x) = Ax + b**, with c = Aμ + b:
//! - ESM = ½[tr Σ⁻¹ + 2 tr A + tr(AΣAᵀ) + ‖c‖²]
//! - ISM = ½[tr(AΣAᵀ) + ‖c‖²] + tr A
//! - ESM − ISM = ½ tr Σ⁻¹ = C for every A, b;
//! - ∇_A ESM = ∇_A ISM = I + AΣ + c μᵀ, ∇_b ESM = ∇_b ISM = c.
//!
//! **Half-normal with scale s on [0, ∞), linear s(x) = ax + b**, with m₁ = E x = s√(2/π), m₂ = E x² = s²:
//! - ESM = ½[(1/s² + a)² m₂ + 2(1/s² + a) b m₁ + b²]
//! - ISM = ½[a² m₂ + 2ab m₁ + b²] + a
//! - ESM − ISM = 1/(2s²) + b·√(2/π)/s = C + p(0)·s_θ(0): the boundary term p(0)·b does not vanish,
//!   and ∇_b ESM − ∇_b ISM = p(0) ≠ 0.

use ndarray::{Array1, Array2, Axis};
use scorelab_core::Dimension;
use scorelab_densities::{Gaussian, HalfNormal};
use scorelab_models::Linear;

/// Exact objective values and θ-gradients of a linear model on an analytic density.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearClosedForm {
    /// ESM(θ).
    pub esm: f64,
    /// ISM(θ).
    pub ism: f64,
    /// ∇_A ESM.
    pub esm_grad_a: Array2<f64>,
    /// ∇_b ESM.
    pub esm_grad_b: Array1<f64>,
    /// ∇_A ISM.
    pub ism_grad_a: Array2<f64>,
    /// ∇_b ISM.
    pub ism_grad_b: Array1<f64>,
}

/// ESM, ISM and their gradients for p = N(μ, Σ) and s(x) = Ax + b (module docs).
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_densities::Gaussian;
/// use scorelab_models::Linear;
/// use scorelab_objectives::closed_form::gaussian_linear;
/// let p = Gaussian::new(array![1.0], array![[4.0]])?;
/// let m = Linear::new(array![[-0.5]], array![0.0])?;
/// let cf = gaussian_linear(&p, &m);
/// // ESM = ½[1/4 − 1 + 1 + 0.25] = 0.25; ISM = ½[1 + 0.25] − 0.5 = 0.125; C = 1/8
/// assert!((cf.esm - 0.25).abs() < 1e-15 && (cf.ism - 0.125).abs() < 1e-15);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// If the model's dimension differs from the density's.
pub fn gaussian_linear(p: &Gaussian, m: &Linear) -> LinearClosedForm {
    assert_eq!(p.dim(), m.dim(), "density and model dimensions differ");
    let (a, b, mu) = (m.a(), m.b(), p.mean_vector());
    let sigma = p.cov().matrix();
    let c = a.dot(mu) + b;
    let cc = c.dot(&c);
    let c_mu = c
        .view()
        .insert_axis(Axis(1))
        .dot(&mu.view().insert_axis(Axis(0)));
    // ISM = ½[tr(AΣAᵀ) + ‖c‖²] + tr A, ∇_A = AΣ + I + cμᵀ.
    let a_sigma = a.dot(sigma);
    let ism = 0.5 * ((&a_sigma * a).sum() + cc) + a.diag().sum();
    let ism_grad_a = &a_sigma + &Array2::<f64>::eye(p.dim()) + &c_mu;
    // ESM = ½E‖(Σ⁻¹ + A)(x − μ) + c‖² = ½[tr(BΣBᵀ) + ‖c‖²] with B = Σ⁻¹ + A, ∇_A = BΣ + cμᵀ:
    // computed along its own route, so that ESM − ISM = ½ tr Σ⁻¹ is a check, not a definition.
    let bm = p.cov().inverse() + a;
    let b_sigma = bm.dot(sigma);
    let esm = 0.5 * ((&b_sigma * &bm).sum() + cc);
    let esm_grad_a = b_sigma + &c_mu;
    LinearClosedForm {
        esm,
        ism,
        esm_grad_a,
        esm_grad_b: c.clone(),
        ism_grad_a,
        ism_grad_b: c,
    }
}

/// ESM, ISM and their gradients for the half-normal with scale s and s_θ(x) = ax + b (module docs).
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_densities::HalfNormal;
/// use scorelab_models::Linear;
/// use scorelab_objectives::closed_form::half_normal_linear;
/// let p = HalfNormal::new(1.0)?;
/// let m = Linear::new(array![[-1.0]], array![0.3])?;
/// let cf = half_normal_linear(&p, &m);
/// // ESM − ISM = C + p(0)·b = ½ + √(2/π)·0.3
/// let want = 0.5 + (2.0 / std::f64::consts::PI).sqrt() * 0.3;
/// assert!((cf.esm - cf.ism - want).abs() < 1e-15);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Panics
/// If the model is not 1-D.
pub fn half_normal_linear(p: &HalfNormal, m: &Linear) -> LinearClosedForm {
    assert_eq!(m.dim(), 1, "the half-normal is 1-D");
    let s = p.scale();
    let (a, b) = (m.a()[[0, 0]], m.b()[0]);
    let m1 = s * (2.0 / std::f64::consts::PI).sqrt();
    let m2 = s * s;
    let k = 1.0 / (s * s) + a;
    let esm = 0.5 * (k * k * m2 + 2.0 * k * b * m1 + b * b);
    let ism = 0.5 * (a * a * m2 + 2.0 * a * b * m1 + b * b) + a;
    let one = |v: f64| Array2::from_elem((1, 1), v);
    LinearClosedForm {
        esm,
        ism,
        esm_grad_a: one(k * m2 + b * m1),
        esm_grad_b: Array1::from_elem(1, k * m1 + b),
        ism_grad_a: one(a * m2 + b * m1 + 1.0),
        ism_grad_b: Array1::from_elem(1, a * m1 + b),
    }
}

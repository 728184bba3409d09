//! The linear score model s(x) = A x + b, the score of a Gaussian when A = −Σ⁻¹ and b = Σ⁻¹μ.

use crate::ModelError;
use ndarray::{Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use scorelab_core::linalg::{check_finite_matrix, check_finite_vector};
use scorelab_core::{Dimension, ParameterGradient, Score, ScoreFunction};

/// s_θ(x) = A x + b with θ = (A, b): Jacobian A, trace tr A, and parameter gradients
/// ∇_A Σᵢ gᵢ·s(xᵢ) = Σᵢ gᵢ xᵢᵀ, ∇_b = Σᵢ gᵢ, ∇_A Σᵢ tr A = n I, ∇_b = 0.
/// The flat parameter order is A row-major (A₀₀, A₀₁, …, A_{D−1,D−1}), then b₀ … b_{D−1}.
///
/// Any A, b is allowed: A need not be symmetric or negative definite (then s is not the score of
/// any density, and score matching still measures its distance to the true score).
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::{ParameterGradient, ScoreFunction};
/// use scorelab_models::Linear;
/// let m = Linear::new(array![[1.0, 2.0], [3.0, 4.0]], array![0.0, 1.0])?;
/// assert_eq!(m.num_params(), 6);
/// let g = m.score_vjp(array![[1.0, 2.0]].view(), array![[1.0, 0.0]].view());
/// assert_eq!(g.to_vec(), vec![1.0, 2.0, 0.0, 0.0, 1.0, 0.0]);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
///
/// # Errors
/// [`Linear::new`] fails unless A is D×D, b has D entries and all are finite.
#[derive(Debug, Clone, PartialEq)]
pub struct Linear {
    a: Array2<f64>,
    b: Array1<f64>,
}

impl Linear {
    /// Validates s(x) = `a` x + `b`.
    ///
    /// # Errors
    /// A [`ModelError`] naming `a` or `b`.
    pub fn new(a: Array2<f64>, b: Array1<f64>) -> Result<Self, ModelError> {
        check_finite_matrix(a.view(), "A").map_err(|e| ModelError::field("a", e))?;
        check_finite_vector(b.view(), "b").map_err(|e| ModelError::field("b", e))?;
        let (r, c) = a.dim();
        if r != c || r == 0 {
            return Err(ModelError::invalid(
                "a",
                format!("A is {r}×{c}; it must be a non-empty square D×D matrix"),
            ));
        }
        if b.len() != r {
            return Err(ModelError::invalid(
                "b",
                format!("b has {} entries but A is {r}×{r}; b needs {r}", b.len()),
            ));
        }
        Ok(Linear { a, b })
    }

    /// A random linear model: the entries of A (row-major), then of b, drawn i.i.d. N(0, scale²)
    /// from `ChaCha8Rng::seed_from_u64(seed)` in that order.
    ///
    /// # Errors
    /// [`ModelError::Invalid`] naming `scale` unless it is finite and ≥ 0, or `dim` if it is 0.
    pub fn random(dim: usize, scale: f64, seed: u64) -> Result<Self, ModelError> {
        if !(scale.is_finite() && scale >= 0.0) {
            return Err(ModelError::invalid(
                "scale",
                format!("must be a finite number ≥ 0, got {scale}"),
            ));
        }
        if dim == 0 {
            return Err(ModelError::invalid("dim", "must be at least 1"));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0, scale).expect("scale checked");
        let a = Array2::from_shape_simple_fn((dim, dim), || normal.sample(&mut rng));
        let b = Array1::from_shape_simple_fn(dim, || normal.sample(&mut rng));
        Linear::new(a, b)
    }

    /// The matrix A.
    pub fn a(&self) -> &Array2<f64> {
        &self.a
    }

    /// The offset b.
    pub fn b(&self) -> &Array1<f64> {
        &self.b
    }

    /// θ as a flat vector: A row-major, then b.
    pub fn params(&self) -> Array1<f64> {
        self.a.iter().chain(self.b.iter()).copied().collect()
    }

    /// The model with parameters θ = `theta` (same order as [`Linear::params`]).
    ///
    /// # Errors
    /// [`ModelError::Invalid`] if `theta` has the wrong length, or a field error if not finite.
    pub fn with_params(&self, theta: &Array1<f64>) -> Result<Self, ModelError> {
        let d = self.dim();
        if theta.len() != d * d + d {
            return Err(ModelError::invalid(
                "theta",
                format!(
                    "has {} entries, expected D² + D = {}",
                    theta.len(),
                    d * d + d
                ),
            ));
        }
        let a = Array2::from_shape_vec(
            (d, d),
            theta.as_slice().expect("contiguous")[..d * d].to_vec(),
        )
        .expect("shape");
        let b = theta.slice(ndarray::s![d * d..]).to_owned();
        Linear::new(a, b)
    }
}

impl Dimension for Linear {
    fn dim(&self) -> usize {
        self.b.len()
    }
}

impl Score for Linear {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        x.dot(&self.a.t()) + &self.b
    }
}

impl ScoreFunction for Linear {
    fn score_jvp(&self, _x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        v.dot(&self.a.t())
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        Array1::from_elem(x.nrows(), self.a.diag().sum())
    }
    fn as_parameter_gradient(&self) -> Option<&dyn ParameterGradient> {
        Some(self)
    }
}

impl ParameterGradient for Linear {
    fn num_params(&self) -> usize {
        let d = self.dim();
        d * d + d
    }
    fn score_vjp(&self, x: ArrayView2<f64>, g: ArrayView2<f64>) -> Array1<f64> {
        let grad_a = g.t().dot(&x);
        let grad_b = g.sum_axis(ndarray::Axis(0));
        grad_a.iter().chain(grad_b.iter()).copied().collect()
    }
    fn trace_gradient(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let d = self.dim();
        let n = x.nrows() as f64;
        let mut out = Array1::zeros(d * d + d);
        for i in 0..d {
            out[i * d + i] = n;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// Parameter gradients against central finite differences in θ of Σᵢ gᵢ·s(xᵢ) and Σᵢ tr J.
    #[test]
    fn parameter_gradients_match_finite_differences() {
        let m = Linear::random(3, 0.7, 11).unwrap();
        let x = array![[0.3, -1.0, 2.0], [1.5, 0.2, -0.4]];
        let g = array![[1.0, -2.0, 0.5], [0.1, 0.3, -0.7]];
        let vjp = m.score_vjp(x.view(), g.view());
        let trg = m.trace_gradient(x.view());
        let theta = m.params();
        let h = 1e-6;
        for k in 0..theta.len() {
            let (mut tp, mut tm) = (theta.clone(), theta.clone());
            tp[k] += h;
            tm[k] -= h;
            let (mp, mm) = (m.with_params(&tp).unwrap(), m.with_params(&tm).unwrap());
            let f = |m: &Linear| (&m.score(x.view()) * &g).sum();
            let t = |m: &Linear| m.jacobian_trace(x.view()).sum();
            let fd = (f(&mp) - f(&mm)) / (2.0 * h);
            let fdt = (t(&mp) - t(&mm)) / (2.0 * h);
            assert!((vjp[k] - fd).abs() < 1e-7, "vjp[{k}] {} vs {fd}", vjp[k]);
            assert!(
                (trg[k] - fdt).abs() < 1e-7,
                "trace grad[{k}] {} vs {fdt}",
                trg[k]
            );
        }
    }

    /// The random model draws A row-major then b from the documented stream.
    #[test]
    fn random_model_order_is_documented_order() {
        let m = Linear::random(2, 1.0, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let n = Normal::new(0.0, 1.0).unwrap();
        let draws: Vec<f64> = (0..6).map(|_| n.sample(&mut rng)).collect();
        assert_eq!(m.params().to_vec(), draws);
        assert!(Linear::random(2, f64::NAN, 0).is_err());
        assert!(Linear::new(array![[1.0, 0.0]], array![0.0]).is_err());
        assert!(Linear::new(array![[1.0]], array![0.0, 1.0]).is_err());
    }
}

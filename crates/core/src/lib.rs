//! # scorelab-core: the traits every scorelab crate meets on
//!
//! A density p(x) = e^{−f(x)}/Z has an intractable normaliser Z in general, but its **score**
//! s(x) = ∇ₓ log p(x) = −∇ₓ f(x) does not depend on Z. Score matching fits a model score s_θ to
//! samples of p, and samplers turn a score into samples. This crate fixes the vocabulary:
//!
//! | trait | capability | who implements it |
//! | --- | --- | --- |
//! | [`Dimension`] | the dimension D of the points | everything |
//! | [`LogDensity`] | log p(x) and the support of p | analytic densities |
//! | [`Score`] | s(x) for a batch of points | densities and models |
//! | [`ScoreFunction`] | s(x), the Jacobian–vector product J(x)v, the trace tr J(x) | densities (tr J = Δ log p) and models |
//! | [`Laplacian`] | Δ log p(x) = tr ∇ₓ∇ₓ log p(x) | every [`LogDensity`] that is a [`ScoreFunction`] |
//! | [`ParameterGradient`] | ∇_θ of score and trace terms | models with parameters θ |
//! | [`Sample`] | exact samples, with the RNG passed in | analytic densities |
//! | [`NoisedScore`] | the score of p_σ = p ∗ N(0, σ²I) | densities with a closed-form p_σ, noise-conditional models |
//! | [`NoisedScoreFunction`] | s(x, σ) with J v and tr J, J = ∇ₓs at fixed σ | the same |
//! | [`Moments`] | mean and covariance | analytic densities |
//! | [`ScoreMatchingConstant`] | C = ½ E_p‖∇log p‖² in closed form | analytic densities where known |
//! | [`ExpectationRule`] | a deterministic quadrature rule for E_p\[g\] | low-dimensional densities |
//!
//! Points are always batch-first `(n, d)` arrays of `f64`; a function of a batch returns one row (or
//! one value) per point. The f64 [`ScoreFunction`] is the door through which objectives and the
//! evaluation harness see any score: an analytic density and a trained network are interchangeable.
//!
//! ```
//! use ndarray::array;
//! use scorelab_core::{Dimension, Score, ScoreFunction};
//!
//! /// s(x) = −x, the score of N(0, I).
//! struct StdNormal(usize);
//! impl Dimension for StdNormal { fn dim(&self) -> usize { self.0 } }
//! impl Score for StdNormal {
//!     fn score(&self, x: ndarray::ArrayView2<f64>) -> ndarray::Array2<f64> { -&x }
//! }
//! impl ScoreFunction for StdNormal {
//!     fn score_jvp(&self, _x: ndarray::ArrayView2<f64>, v: ndarray::ArrayView2<f64>) -> ndarray::Array2<f64> { -&v }
//! }
//! // The provided trace pushes the D basis tangents through the JVP: tr(−I) = −D.
//! let tr = StdNormal(3).jacobian_trace(array![[1.0, 2.0, 3.0]].view());
//! assert_eq!(tr[0], -3.0);
//! ```
#![warn(missing_docs)]

pub mod error;
pub mod fsio;
pub mod linalg;
pub mod probe;
pub mod schedule;
pub mod stats;
pub mod streams;
pub mod tolerance;

pub use error::{CoreError, ParamError};
pub use ndarray;
pub use probe::Probe;
pub use schedule::SigmaRange;

use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;

/// The dimension D of the points a density or a score function acts on.
pub trait Dimension {
    /// D, the number of columns of every batch of points.
    fn dim(&self) -> usize;
}

/// Where a density is positive. Integration by parts (ESM = ISM + C) needs the boundary term
/// ∮ p s_θ · n dS of the support to vanish; it does on ℝᴰ but not on a half-line.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Support {
    /// All of ℝᴰ: no boundary, no boundary term.
    Whole,
    /// The 1-D half-line [lower, ∞): the boundary is the point `lower`, with outward normal −1.
    HalfLine {
        /// The left end of the support.
        lower: f64,
    },
}

/// A normalised log-density log p(x).
///
/// # Examples
/// See `scorelab_densities::Gaussian`, which implements it.
pub trait LogDensity: Dimension {
    /// log p(xᵢ) for each row xᵢ of the `(n, d)` batch `x`.
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64>;

    /// The support of p; [`Support::Whole`] unless overridden.
    fn support(&self) -> Support {
        Support::Whole
    }

    /// The boundary term B = −∮_{∂supp p} p(x) s_θ(x)·n(x) dS of the integration by parts that turns
    /// explicit into implicit score matching: ESM(θ) = ISM(θ) + C + B (Hyvärinen 2005 assumes B = 0).
    ///
    /// On ℝᴰ it is 0; on [a, ∞) the outward normal at a is −1, so B = p(a)·s_θ(a).
    ///
    /// # Examples
    /// ```
    /// use ndarray::{array, Array1, Array2, ArrayView2};
    /// use scorelab_core::{Dimension, LogDensity, Score, Support};
    /// /// Exp(1) on [0, ∞): p(0) = 1.
    /// struct Exp1;
    /// impl Dimension for Exp1 { fn dim(&self) -> usize { 1 } }
    /// impl LogDensity for Exp1 {
    ///     fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> { -&x.column(0) }
    ///     fn support(&self) -> Support { Support::HalfLine { lower: 0.0 } }
    /// }
    /// /// s_θ(x) = 2 − x
    /// struct Model;
    /// impl Dimension for Model { fn dim(&self) -> usize { 1 } }
    /// impl Score for Model {
    ///     fn score(&self, x: ArrayView2<f64>) -> Array2<f64> { x.mapv(|v| 2.0 - v) }
    /// }
    /// assert_eq!(Exp1.boundary_term(&Model), 2.0);
    /// ```
    fn boundary_term(&self, model: &dyn Score) -> f64 {
        match self.support() {
            Support::Whole => 0.0,
            Support::HalfLine { lower } => {
                let a = Array2::from_elem((1, 1), lower);
                let p = self.log_density(a.view())[0].exp();
                p * model.score(a.view())[[0, 0]]
            }
        }
    }
}

/// A score s(x) ∈ ℝᴰ evaluated on a batch of points.
pub trait Score: Dimension + Sync {
    /// s(xᵢ) for each row of the `(n, d)` batch `x`; returns an `(n, d)` array.
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64>;
}

/// The f64 door every objective and metric uses: a score with its Jacobian J(x) = ∇ₓ s(x).
///
/// For a density's own score, J is the Hessian of log p and tr J(x) = Δ log p(x), its Laplacian.
/// Implementors provide the Jacobian–vector product; the exact trace has a provided implementation
/// that pushes the D basis tangents through it (D JVPs, the naive cost), which models override with
/// a cheaper exact formula where one exists.
pub trait ScoreFunction: Score {
    /// J(xᵢ) vᵢ for each row: `x` and `v` are `(n, d)`, and so is the result.
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64>;

    /// tr J(xᵢ) = Σⱼ ∂sⱼ/∂xⱼ (xᵢ) for each row: `(n,)`.
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let (n, d) = x.dim();
        let mut trace = Array1::zeros(n);
        let mut v = Array2::zeros((n, d));
        for j in 0..d {
            v.fill(0.0);
            v.column_mut(j).fill(1.0);
            let jv = self.score_jvp(x, v.view());
            trace += &jv.column(j);
        }
        trace
    }

    /// The parameter-gradient view of this score, if it has parameters θ that expose gradients.
    fn as_parameter_gradient(&self) -> Option<&dyn ParameterGradient> {
        None
    }
}

/// The Laplacian Δ log p(x) = tr ∇ₓ s(x) of a log-density: for a density, the trace of its score's
/// Jacobian. Implemented for every type that is both a [`LogDensity`] and a [`ScoreFunction`].
///
/// # Examples
/// ```
/// use ndarray::{array, Array1, Array2, ArrayView2};
/// use scorelab_core::{Dimension, Laplacian, LogDensity, Score, ScoreFunction};
/// /// N(0, 1): log p = −x²/2 − ½ log 2π, s = −x, Δ log p = −1.
/// struct N01;
/// impl Dimension for N01 { fn dim(&self) -> usize { 1 } }
/// impl LogDensity for N01 {
///     fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
///         x.column(0).mapv(|v| -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln())
///     }
/// }
/// impl Score for N01 { fn score(&self, x: ArrayView2<f64>) -> Array2<f64> { -&x } }
/// impl ScoreFunction for N01 {
///     fn score_jvp(&self, _x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> { -&v }
/// }
/// assert_eq!(N01.laplacian(array![[0.3], [2.0]].view()).to_vec(), vec![-1.0, -1.0]);
/// ```
pub trait Laplacian {
    /// Δ log p(xᵢ) for each row of the `(n, d)` batch; `(n,)`.
    fn laplacian(&self, x: ArrayView2<f64>) -> Array1<f64>;
}

impl<T: LogDensity + ScoreFunction + ?Sized> Laplacian for T {
    fn laplacian(&self, x: ArrayView2<f64>) -> Array1<f64> {
        self.jacobian_trace(x)
    }
}

/// Gradients with respect to the parameters θ of a score model s_θ, as flat vectors in a fixed,
/// documented parameter order. With them, ∇_θ of every score-matching objective follows:
/// ∇_θ ESM = (1/n)·[`score_vjp`](Self::score_vjp)(x, s_θ − s_p) and
/// ∇_θ ISM = (1/n)·([`score_vjp`](Self::score_vjp)(x, s_θ) + [`trace_gradient`](Self::trace_gradient)(x)).
pub trait ParameterGradient: ScoreFunction {
    /// The number of parameters P.
    fn num_params(&self) -> usize;

    /// Σᵢ ∇_θ (gᵢ · s_θ(xᵢ)) for a cotangent batch `g` of shape `(n, d)`; returns `(P,)`.
    fn score_vjp(&self, x: ArrayView2<f64>, g: ArrayView2<f64>) -> Array1<f64>;

    /// Σᵢ ∇_θ tr J_θ(xᵢ); returns `(P,)`.
    fn trace_gradient(&self, x: ArrayView2<f64>) -> Array1<f64>;
}

/// Exact samples from a density, with the random number generator passed in (never a global one).
pub trait Sample: Dimension {
    /// `n` independent samples as an `(n, d)` array.
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64>;
}

/// A noise-conditional score s(x, σ) ≈ ∇ₓ log p_σ(x) of the noised density p_σ = p ∗ N(0, σ²I):
/// exact for densities where p_σ has a closed form (Gaussians, Gaussian mixtures), learned for
/// noise-conditional networks. The annealed samplers and the reverse-time SDE/ODE need it.
pub trait NoisedScore: Dimension + Sync {
    /// s(xᵢ, σ) for each row of the `(n, d)` batch; for exact scores σ = 0 gives the clean score.
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64>;
}

/// A noise-conditional score with its Jacobian J(x, σ) = ∇ₓ s(x, σ) **at fixed σ**: what the
/// divergence of the probability-flow ODE needs (the exact trace tr J, or Hutchinson's vᵀJv;
/// Song et al. 2021, App. D.2). For a noise-conditional network the σ input is a constant of the
/// derivative; for a density it is the Hessian of log p_σ.
///
/// # Examples
/// ```
/// use ndarray::{array, Array1, Array2, ArrayView2};
/// use scorelab_core::{Dimension, NoisedScore, NoisedScoreFunction};
/// /// p = N(0, I): s(x, σ) = −x/(1 + σ²), J = −I/(1 + σ²).
/// struct N01(usize);
/// impl Dimension for N01 { fn dim(&self) -> usize { self.0 } }
/// impl NoisedScore for N01 {
///     fn noised_score(&self, x: ArrayView2<f64>, s: f64) -> Array2<f64> { &x / -(1.0 + s * s) }
/// }
/// impl NoisedScoreFunction for N01 {
///     fn noised_score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>, s: f64) -> (Array2<f64>, Array2<f64>) {
///         (self.noised_score(x, s), &v / -(1.0 + s * s))
///     }
/// }
/// // The provided trace pushes the D basis tangents of every point through the JVP: −D/(1 + σ²).
/// let (_, tr) = N01(4).noised_score_trace(array![[1.0, 0.0, 2.0, 3.0]].view(), 1.0);
/// assert_eq!(tr[0], -2.0);
/// ```
pub trait NoisedScoreFunction: NoisedScore {
    /// s(xᵢ, σ) for each of the n rows of `x`, and J(xᵢ, σ) v for each row v of `v`, which holds
    /// k tangents per point (`v` is `(n·k, d)`; point i's tangents are rows i·k … i·k + k − 1).
    ///
    /// # Panics
    /// Implementations may panic unless `v.nrows()` is a multiple of `x.nrows()` and σ is valid.
    fn noised_score_jvp(
        &self,
        x: ArrayView2<f64>,
        v: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, Array2<f64>);

    /// s(xᵢ, σ) and the exact trace tr J(xᵢ, σ) for each row; the provided version pushes the D
    /// basis tangents of every point through [`NoisedScoreFunction::noised_score_jvp`] (D JVPs).
    fn noised_score_trace(&self, x: ArrayView2<f64>, sigma: f64) -> (Array2<f64>, Array1<f64>) {
        basis_trace(self, x, sigma)
    }
}

/// s(xᵢ, σ) and tr J(xᵢ, σ) by pushing the D basis tangents of every point through
/// [`NoisedScoreFunction::noised_score_jvp`] (D JVPs): the naive exact trace, and the provided
/// [`NoisedScoreFunction::noised_score_trace`].
pub fn basis_trace<S: NoisedScoreFunction + ?Sized>(
    source: &S,
    x: ArrayView2<f64>,
    sigma: f64,
) -> (Array2<f64>, Array1<f64>) {
    let (n, d) = x.dim();
    let mut basis = Array2::zeros((n * d, d));
    for i in 0..n {
        for j in 0..d {
            basis[[i * d + j, j]] = 1.0;
        }
    }
    let (s, jv) = source.noised_score_jvp(x, basis.view(), sigma);
    let tr = Array1::from_shape_fn(n, |i| (0..d).map(|j| jv[[i * d + j, j]]).sum());
    (s, tr)
}

/// The first two moments of a density.
pub trait Moments {
    /// E\[x\], shape `(d,)`.
    fn mean(&self) -> Array1<f64>;
    /// Cov\[x\], shape `(d, d)`.
    fn covariance(&self) -> Array2<f64>;
}

/// The constant C = ½ E_p‖∇ₓ log p(x)‖² that separates explicit from implicit score matching
/// (ESM = ISM + C on ℝᴰ); independent of the model.
pub trait ScoreMatchingConstant {
    /// C in closed form, or `None` where only Monte Carlo or quadrature can give it.
    fn score_matching_constant(&self) -> Option<f64>;
}

/// A deterministic rule Σₖ wₖ g(xₖ) ≈ E_p\[g(x)\] (Gaussian quadrature after a change of variables),
/// with Σₖ wₖ = 1. Exact for polynomials up to a high degree in the density's natural coordinates.
#[derive(Debug, Clone)]
pub struct Cubature {
    /// The nodes xₖ, `(m, d)`.
    pub nodes: Array2<f64>,
    /// The weights wₖ, `(m,)`.
    pub weights: Array1<f64>,
}

impl Cubature {
    /// Σₖ wₖ vₖ for per-node values `values` (the result of g at each node).
    ///
    /// # Examples
    /// ```
    /// use ndarray::array;
    /// let rule = scorelab_core::Cubature { nodes: array![[-1.0], [1.0]], weights: array![0.5, 0.5] };
    /// // E z² = 1 for the two-point rule of N(0, 1).
    /// assert_eq!(rule.expect(&rule.nodes.column(0).mapv(|z| z * z)), 1.0);
    /// ```
    pub fn expect(&self, values: &Array1<f64>) -> f64 {
        self.weights.dot(values)
    }
}

/// Densities that offer a deterministic quadrature rule for expectations (1-D and 2-D ones here).
pub trait ExpectationRule {
    /// The rule, or `None` if this density offers none (e.g. in high dimension).
    fn expectation_rule(&self) -> Option<Cubature>;
}

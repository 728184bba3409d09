//! [`AnyDensity`]: one type for every analytic density, for code that picks one at run time.

use crate::{Banana, Gaussian, GaussianMixture, HalfNormal, StudentT};
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use scorelab_core::{
    Cubature, Dimension, ExpectationRule, LogDensity, Moments, NoisedScore, Sample, Score,
    ScoreFunction, ScoreMatchingConstant, Support,
};

/// Any of the analytic densities of this crate, dispatching every trait to the one it holds.
///
/// # Examples
/// ```
/// use scorelab_core::{Dimension, ScoreMatchingConstant};
/// use scorelab_densities::{AnyDensity, HalfNormal};
/// let p = AnyDensity::from(HalfNormal::new(1.0)?);
/// assert_eq!((p.kind(), p.dim()), ("half_normal", 1));
/// assert_eq!(p.score_matching_constant(), Some(0.5));
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum AnyDensity {
    /// [`Gaussian`].
    Gaussian(Gaussian),
    /// [`GaussianMixture`].
    GaussianMixture(GaussianMixture),
    /// [`Banana`].
    Banana(Banana),
    /// [`StudentT`].
    StudentT(StudentT),
    /// [`HalfNormal`].
    HalfNormal(HalfNormal),
}

macro_rules! dispatch {
    ($self:ident, $d:ident => $e:expr) => {
        match $self {
            AnyDensity::Gaussian($d) => $e,
            AnyDensity::GaussianMixture($d) => $e,
            AnyDensity::Banana($d) => $e,
            AnyDensity::StudentT($d) => $e,
            AnyDensity::HalfNormal($d) => $e,
        }
    };
}

macro_rules! from_impl {
    ($($t:ident),*) => {$(
        impl From<$t> for AnyDensity {
            fn from(d: $t) -> Self {
                AnyDensity::$t(d)
            }
        }
    )*};
}
from_impl!(Gaussian, GaussianMixture, Banana, StudentT, HalfNormal);

impl AnyDensity {
    /// The kind as configs spell it: `gaussian`, `gaussian_mixture`, `banana`, `student_t`, `half_normal`.
    pub fn kind(&self) -> &'static str {
        match self {
            AnyDensity::Gaussian(_) => "gaussian",
            AnyDensity::GaussianMixture(_) => "gaussian_mixture",
            AnyDensity::Banana(_) => "banana",
            AnyDensity::StudentT(_) => "student_t",
            AnyDensity::HalfNormal(_) => "half_normal",
        }
    }

    /// The exact score of p_σ = p ∗ N(0, σ²I) where it is closed form (Gaussians and mixtures);
    /// `None` for the other kinds.
    ///
    /// # Examples
    /// ```
    /// use ndarray::array;
    /// use scorelab_densities::{AnyDensity, Banana, Gaussian};
    /// let p = AnyDensity::from(Gaussian::standard(1));
    /// // p_σ = N(0, 1 + σ²): s(x) = −x/(1 + σ²)
    /// assert!((p.noised_score(array![[2.0]].view(), 1.0).unwrap()[[0, 0]] + 1.0).abs() < 1e-15);
    /// assert!(AnyDensity::from(Banana::new(1.0, 1.0)?).noised_score(array![[0.0, 0.0]].view(), 1.0).is_none());
    /// # Ok::<(), scorelab_densities::DensityError>(())
    /// ```
    pub fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Option<Array2<f64>> {
        match self {
            AnyDensity::Gaussian(d) => Some(NoisedScore::noised_score(d, x, sigma)),
            AnyDensity::GaussianMixture(d) => Some(NoisedScore::noised_score(d, x, sigma)),
            _ => None,
        }
    }

    /// The noised density p_σ = p ∗ N(0, σ²I) where it is closed form (Gaussians and mixtures:
    /// every covariance gains σ²I); `None` for the other kinds.
    ///
    /// # Examples
    /// ```
    /// use scorelab_core::Moments;
    /// use scorelab_densities::{AnyDensity, Gaussian};
    /// let p = AnyDensity::from(Gaussian::standard(1)).noised(2.0).unwrap();
    /// assert_eq!(p.covariance()[[0, 0]], 5.0);
    /// ```
    ///
    /// # Panics
    /// If σ is negative or not finite.
    pub fn noised(&self, sigma: f64) -> Option<AnyDensity> {
        match self {
            AnyDensity::Gaussian(d) => Some(d.noised(sigma).into()),
            AnyDensity::GaussianMixture(d) => Some(d.noised(sigma).into()),
            _ => None,
        }
    }
}

impl AnyDensity {
    /// The marginal α(x₀ + σ̃z), x₀ ∼ p, of a diffusion schedule where it is closed form
    /// (Gaussians and mixtures: means α μₖ, covariances α²(Σₖ + σ̃²I)); `None` for the other kinds.
    ///
    /// # Examples
    /// ```
    /// use scorelab_core::Moments;
    /// use scorelab_densities::{AnyDensity, Gaussian};
    /// let p = AnyDensity::from(Gaussian::standard(1)).marginal(0.5, 1.0).unwrap();
    /// assert_eq!(p.covariance()[[0, 0]], 0.5);
    /// ```
    ///
    /// # Panics
    /// If σ̃ is negative or α ≤ 0 (or either is not finite).
    pub fn marginal(&self, alpha: f64, sigma: f64) -> Option<AnyDensity> {
        match self {
            AnyDensity::Gaussian(d) => Some(d.noised(sigma).scaled(alpha).into()),
            AnyDensity::GaussianMixture(d) => Some(d.noised(sigma).scaled(alpha).into()),
            _ => None,
        }
    }
}

impl Dimension for AnyDensity {
    fn dim(&self) -> usize {
        dispatch!(self, d => d.dim())
    }
}

impl LogDensity for AnyDensity {
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        dispatch!(self, d => d.log_density(x))
    }
    fn support(&self) -> Support {
        dispatch!(self, d => d.support())
    }
}

impl Score for AnyDensity {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        dispatch!(self, d => d.score(x))
    }
}

impl ScoreFunction for AnyDensity {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        dispatch!(self, d => d.score_jvp(x, v))
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        dispatch!(self, d => d.jacobian_trace(x))
    }
}

impl Sample for AnyDensity {
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        dispatch!(self, d => d.sample(n, rng))
    }
}

impl Moments for AnyDensity {
    fn mean(&self) -> Array1<f64> {
        dispatch!(self, d => d.mean())
    }
    fn covariance(&self) -> Array2<f64> {
        dispatch!(self, d => d.covariance())
    }
}

impl ScoreMatchingConstant for AnyDensity {
    fn score_matching_constant(&self) -> Option<f64> {
        dispatch!(self, d => d.score_matching_constant())
    }
}

impl ExpectationRule for AnyDensity {
    fn expectation_rule(&self) -> Option<Cubature> {
        dispatch!(self, d => d.expectation_rule())
    }
}

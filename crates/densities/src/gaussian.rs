//! The multivariate normal N(μ, Σ) with a full covariance.

use crate::error::DensityError;
use crate::quadrature;
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;
use scorelab_core::linalg::{check_finite_vector, row_sq_norms, Spd};
use scorelab_core::ParamError;
use scorelab_core::{
    Cubature, Dimension, ExpectationRule, LogDensity, Moments, NoisedScore, Sample, Score,
    ScoreFunction, ScoreMatchingConstant,
};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// N(μ, Σ): log p(x) = −½[D log 2π + log det Σ + (x−μ)ᵀΣ⁻¹(x−μ)], score s(x) = −Σ⁻¹(x − μ),
/// Jacobian −Σ⁻¹, Laplacian −tr Σ⁻¹, and C = ½ E‖s‖² = ½ tr Σ⁻¹.
///
/// The noised density is again Gaussian: p ∗ N(0, σ²I) = N(μ, Σ + σ²I) ([`Gaussian::noised`]).
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::{Score, ScoreMatchingConstant};
/// use scorelab_densities::Gaussian;
/// let g = Gaussian::new(array![1.0, 0.0], array![[2.0, 0.0], [0.0, 0.5]])?;
/// let s = g.score(array![[3.0, 1.0]].view());
/// approx::assert_abs_diff_eq!(s, array![[-1.0, -2.0]], epsilon = 1e-12);
/// let c = g.score_matching_constant().unwrap();
/// assert!((c - 0.5 * (0.5 + 2.0)).abs() < 1e-12); // ½ tr Σ⁻¹
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
///
/// # Errors
/// [`Gaussian::new`] fails when `mean` is not finite, `cov` is not d×d, symmetric and positive
/// definite, or the two disagree in dimension.
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    mean: Array1<f64>,
    cov: Spd,
}

impl Gaussian {
    /// Validates and factorises N(`mean`, `cov`).
    ///
    /// # Errors
    /// A [`DensityError`] naming `mean` or `cov`.
    pub fn new(mean: Array1<f64>, cov: Array2<f64>) -> Result<Self, DensityError> {
        Self::with_fields(mean, cov, "mean", "cov")
    }

    /// As [`Gaussian::new`], with the field names errors use (e.g. `means[1]`, `covs[1]`).
    pub(crate) fn with_fields(
        mean: Array1<f64>,
        cov: Array2<f64>,
        mean_field: &str,
        cov_field: &str,
    ) -> Result<Self, DensityError> {
        check_finite_vector(mean.view(), "mean").map_err(|e| ParamError::field(mean_field, e))?;
        if mean.is_empty() {
            return Err(ParamError::invalid(
                mean_field,
                "must have at least one entry",
            ));
        }
        let cov = Spd::new(cov, "covariance").map_err(|e| ParamError::field(cov_field, e))?;
        if cov.dim() != mean.len() {
            return Err(ParamError::invalid(
                cov_field,
                format!(
                    "covariance is {0}×{0} but the mean has {1} entries; they must agree",
                    cov.dim(),
                    mean.len()
                ),
            ));
        }
        Ok(Gaussian { mean, cov })
    }

    /// The standard normal N(0, I_d).
    ///
    /// # Panics
    /// If `d == 0`.
    pub fn standard(d: usize) -> Self {
        Self::new(Array1::zeros(d), Array2::eye(d)).expect("N(0, I) is valid for d > 0")
    }

    /// The mean μ.
    pub fn mean_vector(&self) -> &Array1<f64> {
        &self.mean
    }

    /// KL(N(μ, Σ) ‖ N(0, c²I)) = ½[tr Σ/c² + ‖μ‖²/c² − D + D ln c² − ln det Σ]: how far this
    /// Gaussian is from a diffusion's isotropic Gaussian prior (the prior's mismatch in a
    /// probability-flow likelihood).
    ///
    /// ```
    /// use ndarray::array;
    /// use scorelab_densities::Gaussian;
    /// // In 1-D: ½[s²/c² + μ²/c² − 1 + ln(c²/s²)].
    /// let q = Gaussian::new(array![1.0], array![[4.0]]).unwrap();
    /// let c: f64 = 3.0;
    /// let one_d = 0.5 * (4.0 / 9.0 + 1.0 / 9.0 - 1.0 + (9.0f64 / 4.0).ln());
    /// assert!((q.kl_to_isotropic(c) - one_d).abs() < 1e-14);
    /// assert!(Gaussian::standard(3).kl_to_isotropic(1.0).abs() < 1e-14);
    /// ```
    pub fn kl_to_isotropic(&self, c: f64) -> f64 {
        let s = self.cov().matrix();
        let m = self.mean_vector();
        let d = m.len() as f64;
        let tr: f64 = s.diag().sum();
        0.5 * (tr / (c * c) + m.dot(m) / (c * c) - d + d * (c * c).ln() - self.cov().log_det())
    }

    /// The factorised covariance Σ.
    pub fn cov(&self) -> &Spd {
        &self.cov
    }

    /// p_σ = p ∗ N(0, σ²I) = N(μ, Σ + σ²I) (σ = 0 returns a copy).
    ///
    /// # Panics
    /// If σ is negative or not finite.
    pub fn noised(&self, sigma: f64) -> Gaussian {
        assert!(
            sigma.is_finite() && sigma >= 0.0,
            "sigma must be ≥ 0, got {sigma}"
        );
        let cov = self.cov.matrix() + &(Array2::<f64>::eye(self.dim()) * (sigma * sigma));
        Gaussian::new(self.mean.clone(), cov).expect("Σ + σ²I stays positive definite")
    }

    /// The law of a x for x ∼ N(μ, Σ): N(a μ, a² Σ), for a scale a > 0 (with [`Gaussian::noised`],
    /// the marginal α(x₀ + σ̃z) of a diffusion schedule).
    ///
    /// # Examples
    /// ```
    /// use scorelab_core::Moments;
    /// let p = scorelab_densities::Gaussian::standard(1).noised(1.0).scaled(0.5);
    /// assert_eq!((p.covariance()[[0, 0]], p.mean()[0]), (0.5, 0.0));
    /// ```
    ///
    /// # Panics
    /// Unless a is finite and > 0.
    pub fn scaled(&self, a: f64) -> Gaussian {
        assert!(a.is_finite() && a > 0.0, "scale must be > 0, got {a}");
        Gaussian::new(&self.mean * a, self.cov.matrix() * (a * a))
            .expect("a²Σ stays positive definite")
    }

    /// Maps a standard-normal rule through x = μ + L z.
    pub(crate) fn mapped_rule(&self, z: Array2<f64>, weights: Array1<f64>) -> Cubature {
        let nodes = self.cov.color(z.view()) + &self.mean;
        Cubature { nodes, weights }
    }
}

impl Dimension for Gaussian {
    fn dim(&self) -> usize {
        self.mean.len()
    }
}

impl LogDensity for Gaussian {
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let y = self.cov.whiten((&x - &self.mean).view());
        let c = -0.5 * (self.dim() as f64 * LN_2PI + self.cov.log_det());
        row_sq_norms(y.view()).mapv(|q| c - 0.5 * q)
    }
}

impl Score for Gaussian {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        -self.cov.solve_rows((&x - &self.mean).view())
    }
}

impl ScoreFunction for Gaussian {
    fn score_jvp(&self, _x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        -self.cov.solve_rows(v)
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        Array1::from_elem(x.nrows(), -self.cov.trace_inverse())
    }
}

impl Sample for Gaussian {
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let z = Array2::from_shape_simple_fn((n, self.dim()), || rng.sample(StandardNormal));
        self.cov.color(z.view()) + &self.mean
    }
}

impl NoisedScore for Gaussian {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.noised(sigma).score(x)
    }
}

/// The Hessian of log p_σ: p_σ's own JVP and exact trace.
impl scorelab_core::NoisedScoreFunction for Gaussian {
    fn noised_score_jvp(
        &self,
        x: ArrayView2<f64>,
        v: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, Array2<f64>) {
        crate::tangents_of(&self.noised(sigma), x, v)
    }
    fn noised_score_trace(&self, x: ArrayView2<f64>, sigma: f64) -> (Array2<f64>, Array1<f64>) {
        let q = self.noised(sigma);
        (q.score(x), q.jacobian_trace(x))
    }
}

impl Moments for Gaussian {
    fn mean(&self) -> Array1<f64> {
        self.mean.clone()
    }
    fn covariance(&self) -> Array2<f64> {
        self.cov.matrix().clone()
    }
}

impl ScoreMatchingConstant for Gaussian {
    fn score_matching_constant(&self) -> Option<f64> {
        Some(0.5 * self.cov.trace_inverse())
    }
}

impl ExpectationRule for Gaussian {
    /// [`quadrature::smooth_rule`] mapped through x = μ + L z, for d ≤ 2.
    fn expectation_rule(&self) -> Option<Cubature> {
        let d = self.dim();
        (d <= 2).then(|| {
            let (z, weights) = quadrature::smooth_rule(d);
            self.mapped_rule(z, weights)
        })
    }
}

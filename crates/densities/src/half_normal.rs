//! The half-normal on [0, ∞): the boundary case of the integration-by-parts identity.

use crate::error::{positive, DensityError};
use crate::quadrature;
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;
use scorelab_core::{
    Cubature, Dimension, ExpectationRule, LogDensity, Moments, Sample, Score, ScoreFunction,
    ScoreMatchingConstant, Support,
};

/// The half-normal with scale s on [0, ∞): p(x) = √(2/π)/s · exp(−x²/(2s²)) for x ≥ 0.
///
/// Score −x/s², Laplacian −1/s², C = ½E\[x²\]/s⁴ = 1/(2s²), mean s√(2/π), variance s²(1 − 2/π).
///
/// **The boundary case.** p(0) = √(2/π)/s > 0, so integration by parts leaves the term
/// B = p(0)·s_θ(0) (see [`LogDensity::boundary_term`]): ESM(θ) = ISM(θ) + C + B, and the gap between
/// explicit and implicit score matching depends on the model through s_θ(0). Hyvärinen (2005)
/// assumes p → 0 at the boundary; Hyvärinen (2007) and Yu et al. (2019) treat bounded domains.
///
/// The formulas for log p, score and Laplacian are those of the Gaussian restriction and are
/// returned for x < 0 too, except that log p(x) = −∞ there.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::{LogDensity, ScoreMatchingConstant};
/// use scorelab_densities::HalfNormal;
/// let p = HalfNormal::new(2.0)?;
/// assert_eq!(p.score_matching_constant(), Some(0.125));
/// let p0 = p.log_density(array![[0.0]].view())[0].exp();
/// assert!((p0 - (2.0 / std::f64::consts::PI).sqrt() / 2.0).abs() < 1e-15);
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
///
/// # Errors
/// [`HalfNormal::new`] fails unless the scale is finite and > 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HalfNormal {
    scale: f64,
}

impl HalfNormal {
    /// The half-normal with scale s = `scale` > 0.
    ///
    /// # Errors
    /// A [`DensityError`] naming `scale`.
    pub fn new(scale: f64) -> Result<Self, DensityError> {
        Ok(HalfNormal {
            scale: positive(scale, "scale")?,
        })
    }

    /// The scale s.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

impl Dimension for HalfNormal {
    fn dim(&self) -> usize {
        1
    }
}

impl LogDensity for HalfNormal {
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let c = 0.5 * (2.0 / std::f64::consts::PI).ln() - self.scale.ln();
        x.column(0).mapv(|v| {
            if v < 0.0 {
                f64::NEG_INFINITY
            } else {
                c - 0.5 * v * v / (self.scale * self.scale)
            }
        })
    }
    fn support(&self) -> Support {
        Support::HalfLine { lower: 0.0 }
    }
}

impl Score for HalfNormal {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        x.mapv(|v| -v / (self.scale * self.scale))
    }
}

impl ScoreFunction for HalfNormal {
    fn score_jvp(&self, _x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        v.mapv(|v| -v / (self.scale * self.scale))
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        Array1::from_elem(x.nrows(), -1.0 / (self.scale * self.scale))
    }
}

impl Sample for HalfNormal {
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        Array2::from_shape_simple_fn((n, 1), || {
            self.scale * rng.sample::<f64, _>(StandardNormal).abs()
        })
    }
}

impl Moments for HalfNormal {
    fn mean(&self) -> Array1<f64> {
        Array1::from_elem(1, self.scale * (2.0 / std::f64::consts::PI).sqrt())
    }
    fn covariance(&self) -> Array2<f64> {
        Array2::from_elem(
            (1, 1),
            self.scale * self.scale * (1.0 - 2.0 / std::f64::consts::PI),
        )
    }
}

impl ScoreMatchingConstant for HalfNormal {
    fn score_matching_constant(&self) -> Option<f64> {
        Some(0.5 / (self.scale * self.scale))
    }
}

impl ExpectationRule for HalfNormal {
    /// Composite Gauss–Legendre in z = x/s on \[0, 12\] (24 panels × 16 nodes).
    fn expectation_rule(&self) -> Option<Cubature> {
        let (z, w) = quadrature::half_std_normal(24, 16);
        let nodes = Array2::from_shape_vec((z.len(), 1), z).expect("shape") * self.scale;
        Some(Cubature {
            nodes,
            weights: Array1::from(w),
        })
    }
}

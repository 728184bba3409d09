//! The banana (twisted Gaussian) of Haario, Saksman & Tamminen (1999).

use crate::error::{positive, DensityError};
use crate::quadrature;
use ndarray::{Array1, Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;
use scorelab_core::ParamError;
use scorelab_core::{
    Cubature, Dimension, ExpectationRule, LogDensity, Moments, Sample, Score, ScoreFunction,
    ScoreMatchingConstant,
};

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// The 2-D banana: y = (x₁/a, x₂ − b(x₁² − a²)) ∼ N(0, I), i.e.
/// log p(x) = log N(x₁; 0, a²) + log N(x₂; b(x₁² − a²), 1) (the map has unit Jacobian in x₂).
///
/// With u = x₂ − b(x₁² − a²):
/// - score s = (−x₁/a² + 2b x₁ u, −u);
/// - Hessian \[\[−1/a² + 2bu − 4b²x₁², 2bx₁\], \[2bx₁, −1\]\], Laplacian −1/a² + 2bu − 4b²x₁² − 1;
/// - C = ½E‖s‖² = ½(1/a² + 4a²b² + 1), since x₁ and u are independent N(0, a²) and N(0, 1);
/// - mean 0, covariance diag(a², 1 + 2a⁴b²).
///
/// Haario et al. (1999), "Adaptive proposal distribution for random walk Metropolis algorithm",
/// *Computational Statistics* 14:375–395, use a = 10, b ∈ {0.03, 0.1}.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::{LogDensity, ScoreMatchingConstant};
/// use scorelab_densities::Banana;
/// let p = Banana::new(1.0, 0.5)?;
/// assert_eq!(p.score_matching_constant(), Some(0.5 * (1.0 + 1.0 + 1.0)));
/// // On the ridge x₂ = b(x₁² − a²) the x₂ factor is at its mode.
/// let lp = p.log_density(array![[0.0, -0.5]].view())[0];
/// assert!((lp + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-12);
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
///
/// # Errors
/// [`Banana::new`] fails unless a > 0 and b are finite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Banana {
    a: f64,
    b: f64,
}

impl Banana {
    /// The banana with scale `a` > 0 and curvature `b`.
    ///
    /// # Errors
    /// A [`DensityError`] naming `a` or `b`.
    pub fn new(a: f64, b: f64) -> Result<Self, DensityError> {
        let a = positive(a, "a")?;
        if !b.is_finite() {
            return Err(ParamError::invalid(
                "b",
                format!("must be a finite number, got {b}"),
            ));
        }
        Ok(Banana { a, b })
    }

    /// The scale a.
    pub fn a(&self) -> f64 {
        self.a
    }

    /// The curvature b.
    pub fn b(&self) -> f64 {
        self.b
    }

    /// u = x₂ − b(x₁² − a²) for one point.
    fn u(&self, x1: f64, x2: f64) -> f64 {
        x2 - self.b * (x1 * x1 - self.a * self.a)
    }

    /// Maps standard-normal rows y to banana rows x.
    fn transform(&self, y: &mut Array2<f64>) {
        for mut row in y.rows_mut() {
            let x1 = self.a * row[0];
            row[0] = x1;
            row[1] += self.b * (x1 * x1 - self.a * self.a);
        }
    }
}

impl Dimension for Banana {
    fn dim(&self) -> usize {
        2
    }
}

impl LogDensity for Banana {
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let c = -LN_2PI - self.a.ln();
        x.rows()
            .into_iter()
            .map(|r| {
                let u = self.u(r[0], r[1]);
                c - 0.5 * (r[0] * r[0] / (self.a * self.a) + u * u)
            })
            .collect()
    }
}

impl Score for Banana {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut s = Array2::zeros((x.nrows(), 2));
        for (r, mut o) in x.rows().into_iter().zip(s.rows_mut()) {
            let u = self.u(r[0], r[1]);
            o[0] = -r[0] / (self.a * self.a) + 2.0 * self.b * r[0] * u;
            o[1] = -u;
        }
        s
    }
}

impl ScoreFunction for Banana {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros((x.nrows(), 2));
        for ((r, v), mut o) in x.rows().into_iter().zip(v.rows()).zip(out.rows_mut()) {
            let u = self.u(r[0], r[1]);
            let h11 =
                -1.0 / (self.a * self.a) + 2.0 * self.b * u - 4.0 * self.b * self.b * r[0] * r[0];
            let h12 = 2.0 * self.b * r[0];
            o[0] = h11 * v[0] + h12 * v[1];
            o[1] = h12 * v[0] - v[1];
        }
        out
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        x.rows()
            .into_iter()
            .map(|r| {
                let u = self.u(r[0], r[1]);
                -1.0 / (self.a * self.a) + 2.0 * self.b * u
                    - 4.0 * self.b * self.b * r[0] * r[0]
                    - 1.0
            })
            .collect()
    }
}

impl Sample for Banana {
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let mut y = Array2::from_shape_simple_fn((n, 2), || rng.sample(StandardNormal));
        self.transform(&mut y);
        y
    }
}

impl Moments for Banana {
    fn mean(&self) -> Array1<f64> {
        Array1::zeros(2)
    }
    fn covariance(&self) -> Array2<f64> {
        let a2 = self.a * self.a;
        Array2::from_diag(&ndarray::arr1(&[a2, 1.0 + 2.0 * a2 * a2 * self.b * self.b]))
    }
}

impl ScoreMatchingConstant for Banana {
    fn score_matching_constant(&self) -> Option<f64> {
        let a2 = self.a * self.a;
        Some(0.5 * (1.0 / a2 + 4.0 * a2 * self.b * self.b + 1.0))
    }
}

impl ExpectationRule for Banana {
    /// [`quadrature::smooth_rule`] in the standard-normal coordinates y, mapped to x.
    fn expectation_rule(&self) -> Option<Cubature> {
        let (mut nodes, weights) = quadrature::smooth_rule(2);
        self.transform(&mut nodes);
        Some(Cubature { nodes, weights })
    }
}

//! The multivariate Student-t with location μ, scale matrix S and ν degrees of freedom.

use crate::error::{positive, DensityError};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use rand_distr::{ChiSquared, Distribution, StandardNormal};
use scorelab_core::linalg::{check_finite_vector, row_dots, row_sq_norms, Spd};
use scorelab_core::ParamError;
use scorelab_core::{
    Dimension, LogDensity, Moments, Sample, Score, ScoreFunction, ScoreMatchingConstant,
};
use statrs::function::gamma::ln_gamma;

/// t_ν(μ, S): log p(x) = lnΓ((ν+D)/2) − lnΓ(ν/2) − (D/2) ln(νπ) − ½ ln det S − ((ν+D)/2) ln(1 + q/ν),
/// q = (x−μ)ᵀS⁻¹(x−μ).
///
/// With r = x − μ, w = S⁻¹r and k = (ν+D)/(ν+q):
/// - score s = −k w;
/// - Hessian −k S⁻¹ + 2(ν+D)/(ν+q)² w wᵀ, Laplacian −k tr S⁻¹ + 2(ν+D)‖w‖²/(ν+q)²;
/// - C = ½E‖s‖² = ½ (ν+D)/(ν+D+2) tr S⁻¹;
/// - mean μ, covariance ν/(ν−2) S.
///
/// ν > 4 is required so that every Monte Carlo term of ESM and ISM (fourth moments) has finite variance.
/// Samples: x = μ + L z √(ν/g) with z ∼ N(0, I), g ∼ χ²_ν.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::ScoreMatchingConstant;
/// use scorelab_densities::StudentT;
/// let t = StudentT::new(array![0.0], array![[1.0]], 5.0)?;
/// assert!((t.score_matching_constant().unwrap() - 0.5 * 6.0 / 8.0).abs() < 1e-15);
/// assert!(StudentT::new(array![0.0], array![[1.0]], 4.0).is_err());
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
///
/// # Errors
/// [`StudentT::new`] fails on a bad `mean` or `scale`, or unless ν > 4.
#[derive(Debug, Clone, PartialEq)]
pub struct StudentT {
    mean: Array1<f64>,
    scale: Spd,
    nu: f64,
    log_norm: f64,
}

impl StudentT {
    /// Validates t_ν(`mean`, `scale`).
    ///
    /// # Errors
    /// A [`DensityError`] naming `mean`, `scale` or `nu`.
    pub fn new(mean: Array1<f64>, scale: Array2<f64>, nu: f64) -> Result<Self, DensityError> {
        check_finite_vector(mean.view(), "mean").map_err(|e| ParamError::field("mean", e))?;
        if mean.is_empty() {
            return Err(ParamError::invalid("mean", "must have at least one entry"));
        }
        let scale = Spd::new(scale, "scale matrix").map_err(|e| ParamError::field("scale", e))?;
        if scale.dim() != mean.len() {
            return Err(ParamError::invalid(
                "scale",
                format!(
                    "scale matrix is {0}×{0} but the mean has {1} entries; they must agree",
                    scale.dim(),
                    mean.len()
                ),
            ));
        }
        let nu = positive(nu, "nu")?;
        if nu <= 4.0 {
            return Err(ParamError::invalid(
                "nu",
                format!(
                    "is {nu}; need nu > 4 so that the score-matching terms have finite variance"
                ),
            ));
        }
        let d = mean.len() as f64;
        let log_norm = ln_gamma(0.5 * (nu + d))
            - ln_gamma(0.5 * nu)
            - 0.5 * d * (nu * std::f64::consts::PI).ln()
            - 0.5 * scale.log_det();
        Ok(StudentT {
            mean,
            scale,
            nu,
            log_norm,
        })
    }

    /// ν, the degrees of freedom.
    pub fn nu(&self) -> f64 {
        self.nu
    }

    /// (w = S⁻¹r, q = rᵀS⁻¹r) per row.
    fn wq(&self, x: ArrayView2<f64>) -> (Array2<f64>, Array1<f64>) {
        let r = &x - &self.mean;
        let w = self.scale.solve_rows(r.view());
        let q = row_dots(r.view(), w.view());
        (w, q)
    }
}

impl Dimension for StudentT {
    fn dim(&self) -> usize {
        self.mean.len()
    }
}

impl LogDensity for StudentT {
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let y = self.scale.whiten((&x - &self.mean).view());
        let e = 0.5 * (self.nu + self.dim() as f64);
        row_sq_norms(y.view()).mapv(|q| self.log_norm - e * (q / self.nu).ln_1p())
    }
}

impl Score for StudentT {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let (w, q) = self.wq(x);
        let nd = self.nu + self.dim() as f64;
        let k = q.mapv(|q| -nd / (self.nu + q));
        w * &k.insert_axis(Axis(1))
    }
}

impl ScoreFunction for StudentT {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        let (w, q) = self.wq(x);
        let nd = self.nu + self.dim() as f64;
        let sv = self.scale.solve_rows(v);
        let wv = row_dots(w.view(), v);
        let k = q.mapv(|q| nd / (self.nu + q));
        let c = (&q.mapv(|q| 2.0 * nd / ((self.nu + q) * (self.nu + q)))) * &wv;
        -(sv * &k.insert_axis(Axis(1))) + w * &c.insert_axis(Axis(1))
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let (w, q) = self.wq(x);
        let nd = self.nu + self.dim() as f64;
        let tr = self.scale.trace_inverse();
        let ww = row_sq_norms(w.view());
        ndarray::Zip::from(&q).and(&ww).map_collect(|&q, &ww| {
            let den = self.nu + q;
            -nd / den * tr + 2.0 * nd * ww / (den * den)
        })
    }
}

impl Sample for StudentT {
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let chi = ChiSquared::new(self.nu).expect("nu > 4");
        let d = self.dim();
        let mut z = Array2::zeros((n, d));
        for mut row in z.rows_mut() {
            row.mapv_inplace(|_| rng.sample::<f64, _>(StandardNormal));
            let g: f64 = chi.sample(rng);
            row *= (self.nu / g).sqrt();
        }
        self.scale.color(z.view()) + &self.mean
    }
}

impl Moments for StudentT {
    fn mean(&self) -> Array1<f64> {
        self.mean.clone()
    }
    fn covariance(&self) -> Array2<f64> {
        self.scale.matrix() * (self.nu / (self.nu - 2.0))
    }
}

impl ScoreMatchingConstant for StudentT {
    fn score_matching_constant(&self) -> Option<f64> {
        let nd = self.nu + self.dim() as f64;
        Some(0.5 * nd / (nd + 2.0) * self.scale.trace_inverse())
    }
}

impl scorelab_core::ExpectationRule for StudentT {
    /// None: the harness uses Monte Carlo and the closed-form C for the Student-t.
    fn expectation_rule(&self) -> Option<scorelab_core::Cubature> {
        None
    }
}

//! Gaussian mixtures Σₖ wₖ N(μₖ, Σₖ) with full covariances.

use crate::error::DensityError;
use crate::gaussian::Gaussian;
use crate::quadrature;
use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal, WeightedIndex};
use scorelab_core::linalg::{check_finite_vector, row_dots, row_sq_norms};
use scorelab_core::ParamError;
use scorelab_core::{
    Cubature, Dimension, ExpectationRule, LogDensity, Moments, NoisedScore, Sample, Score,
    ScoreFunction, ScoreMatchingConstant,
};

/// Panels per axis of a 2-D mixture component's quadrature rule (twice as many in 1-D).
pub const MIXTURE_PANELS: usize = 48;
/// Gauss–Legendre nodes per panel of a mixture component's quadrature rule.
pub const MIXTURE_NODES: usize = 10;

/// Tolerance on |Σₖ wₖ − 1| in [`GaussianMixture::new`].
pub const WEIGHT_SUM_TOL: f64 = 1e-9;

/// p(x) = Σₖ wₖ N(x; μₖ, Σₖ), evaluated with log-sum-exp.
///
/// With responsibilities rₖ(x) = wₖ Nₖ(x)/p(x) and component scores sₖ = −Σₖ⁻¹(x − μₖ):
/// - score s = Σₖ rₖ sₖ;
/// - Hessian of log p: H = Σₖ rₖ (−Σₖ⁻¹ + sₖ sₖᵀ) − s sᵀ;
/// - Laplacian tr H = Σₖ rₖ (−tr Σₖ⁻¹ + ‖sₖ‖²) − ‖s‖².
///
/// C = ½E‖s‖² has no closed form; the evaluation harness takes it by Monte Carlo or quadrature.
/// Noising is exact: p ∗ N(0, σ²I) = Σₖ wₖ N(μₖ, Σₖ + σ²I).
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::Score;
/// use scorelab_densities::GaussianMixture;
/// let eye = array![[1.0, 0.0], [0.0, 1.0]];
/// let p = GaussianMixture::new(
///     array![0.8, 0.2],
///     vec![array![5.0, 5.0], array![-5.0, -5.0]],
///     vec![eye.clone(), eye],
/// )?;
/// // Near (5, 5) the first component owns the score: s ≈ −(x − μ₁).
/// let s = p.score(array![[5.5, 4.0]].view());
/// assert!((s[[0, 0]] + 0.5).abs() < 1e-12 && (s[[0, 1]] - 1.0).abs() < 1e-12);
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
///
/// # Errors
/// [`GaussianMixture::new`] fails on no components, mismatched counts or dimensions, a weight that
/// is negative or not finite, weights not summing to 1 (± [`WEIGHT_SUM_TOL`]), or a bad covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianMixture {
    weights: Array1<f64>,
    log_weights: Array1<f64>,
    components: Vec<Gaussian>,
}

impl GaussianMixture {
    /// Validates the mixture of `weights`, `means` and `covs` (K of each).
    ///
    /// # Errors
    /// A [`DensityError`] naming `weights`, `means`, `means[k]` or `covs[k]`.
    pub fn new(
        weights: Array1<f64>,
        means: Vec<Array1<f64>>,
        covs: Vec<Array2<f64>>,
    ) -> Result<Self, DensityError> {
        let k = weights.len();
        if k == 0 {
            return Err(ParamError::invalid(
                "weights",
                "a mixture needs at least one component",
            ));
        }
        if means.len() != k || covs.len() != k {
            return Err(ParamError::invalid(
                "means",
                format!(
                    "{} weights, {} means and {} covs given; give one mean and one cov per weight",
                    k,
                    means.len(),
                    covs.len()
                ),
            ));
        }
        check_finite_vector(weights.view(), "weights")
            .map_err(|e| ParamError::field("weights", e))?;
        if let Some(i) = weights.iter().position(|&w| w < 0.0) {
            return Err(ParamError::invalid(
                "weights",
                format!(
                    "weight [{i}] is {}; weights must be ≥ 0 and sum to 1",
                    weights[i]
                ),
            ));
        }
        let total = weights.sum();
        if (total - 1.0).abs() > WEIGHT_SUM_TOL {
            return Err(ParamError::invalid(
                "weights",
                format!("weights sum to {total}; they must sum to 1"),
            ));
        }
        let components = means
            .into_iter()
            .zip(covs)
            .enumerate()
            .map(|(i, (m, c))| {
                Gaussian::with_fields(m, c, &format!("means[{i}]"), &format!("covs[{i}]"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let d = components[0].dim();
        if let Some(i) = components.iter().position(|c| c.dim() != d) {
            return Err(ParamError::invalid(
                format!("means[{i}]"),
                format!(
                    "has {} entries but means[0] has {d}; every component needs the same dimension",
                    components[i].dim()
                ),
            ));
        }
        Ok(GaussianMixture {
            log_weights: weights.mapv(f64::ln),
            weights,
            components,
        })
    }

    /// The mixture of the components listed in `keep` (by index), their weights renormalised:
    /// p(x | c) = Σ_{k∈c} wₖ N(x; μₖ, Σₖ)/Σ_{k∈c} wₖ, the class-conditional law of a class c made of
    /// those components.
    ///
    /// # Examples
    /// ```
    /// use ndarray::{array, Array2};
    /// use scorelab_densities::GaussianMixture;
    /// let p = GaussianMixture::new(array![0.5, 0.3, 0.2], vec![array![0.0], array![3.0], array![-3.0]], vec![Array2::eye(1); 3])?;
    /// let c = p.restricted(&[1, 2])?;
    /// assert!((c.weights()[0] - 0.6).abs() < 1e-15 && (c.weights()[1] - 0.4).abs() < 1e-15);
    /// assert!(p.restricted(&[3]).is_err());
    /// # Ok::<(), scorelab_densities::DensityError>(())
    /// ```
    ///
    /// # Errors
    /// A [`DensityError`] naming `class` when `keep` is empty, repeats a component, names one
    /// that does not exist, or holds only components of weight 0.
    pub fn restricted(&self, keep: &[usize]) -> Result<GaussianMixture, DensityError> {
        let k = self.weights.len();
        if keep.is_empty() {
            return Err(ParamError::invalid(
                "class",
                "lists no component; give the indices of the components that make the class",
            ));
        }
        for (i, &c) in keep.iter().enumerate() {
            if c >= k {
                return Err(ParamError::invalid(
                    "class",
                    format!(
                        "component {c} does not exist: the mixture has {k} (0 … {})",
                        k - 1
                    ),
                ));
            }
            if keep[..i].contains(&c) {
                return Err(ParamError::invalid(
                    "class",
                    format!("lists component {c} twice"),
                ));
            }
        }
        let total: f64 = keep.iter().map(|&c| self.weights[c]).sum();
        if total <= 0.0 {
            return Err(ParamError::invalid(
                "class",
                "its components all have weight 0",
            ));
        }
        let mut w: Array1<f64> = keep.iter().map(|&c| self.weights[c] / total).collect();
        // Renormalised weights sum to 1 up to rounding; the last takes up the rest exactly.
        let n = w.len();
        let rest: f64 = w.iter().take(n - 1).sum();
        w[n - 1] = 1.0 - rest;
        Ok(GaussianMixture {
            log_weights: w.mapv(f64::ln),
            weights: w,
            components: keep.iter().map(|&c| self.components[c].clone()).collect(),
        })
    }

    /// The mixture weights wₖ.
    pub fn weights(&self) -> &Array1<f64> {
        &self.weights
    }

    /// The components N(μₖ, Σₖ).
    pub fn components(&self) -> &[Gaussian] {
        &self.components
    }

    /// p_σ = Σₖ wₖ N(μₖ, Σₖ + σ²I).
    ///
    /// # Panics
    /// If σ is negative or not finite.
    pub fn noised(&self, sigma: f64) -> GaussianMixture {
        GaussianMixture {
            weights: self.weights.clone(),
            log_weights: self.log_weights.clone(),
            components: self.components.iter().map(|c| c.noised(sigma)).collect(),
        }
    }

    /// The law of a x: Σₖ wₖ N(a μₖ, a² Σₖ), for a scale a > 0.
    ///
    /// # Panics
    /// Unless a is finite and > 0.
    pub fn scaled(&self, a: f64) -> GaussianMixture {
        GaussianMixture {
            weights: self.weights.clone(),
            log_weights: self.log_weights.clone(),
            components: self.components.iter().map(|c| c.scaled(a)).collect(),
        }
    }

    /// Responsibilities rₖ(xᵢ) as an `(n, K)` array, and log p(xᵢ).
    pub fn responsibilities(&self, x: ArrayView2<f64>) -> (Array2<f64>, Array1<f64>) {
        let n = x.nrows();
        let k = self.components.len();
        let mut logr = Array2::zeros((n, k));
        for (j, c) in self.components.iter().enumerate() {
            let lp = c.log_density(x) + self.log_weights[j];
            logr.column_mut(j).assign(&lp);
        }
        let mut logp = Array1::zeros(n);
        Zip::from(logr.axis_iter_mut(Axis(0)))
            .and(&mut logp)
            .for_each(|mut row, lp| {
                let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                let s: f64 = row.iter().map(|v| (v - m).exp()).sum();
                *lp = m + s.ln();
                row.mapv_inplace(|v| (v - *lp).exp());
            });
        (logr, logp)
    }

    /// Score, and per-component scores sₖ with responsibilities, shared by score, JVP and trace.
    fn parts(&self, x: ArrayView2<f64>) -> (Array2<f64>, Vec<Array2<f64>>, Array2<f64>) {
        let (r, _) = self.responsibilities(x);
        let comp: Vec<Array2<f64>> = self.components.iter().map(|c| c.score(x)).collect();
        let mut s = Array2::zeros(x.raw_dim());
        for (j, sk) in comp.iter().enumerate() {
            s += &(sk * &r.column(j).insert_axis(Axis(1)));
        }
        (s, comp, r)
    }
}

impl Dimension for GaussianMixture {
    fn dim(&self) -> usize {
        self.components[0].dim()
    }
}

impl LogDensity for GaussianMixture {
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        self.responsibilities(x).1
    }
}

impl Score for GaussianMixture {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.parts(x).0
    }
}

impl ScoreFunction for GaussianMixture {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        let (s, comp, r) = self.parts(x);
        // Hv = Σₖ rₖ(−Σₖ⁻¹v + sₖ(sₖ·v)) − s(s·v)
        let mut out = -(&s * &row_dots(s.view(), v).insert_axis(Axis(1)));
        for (j, (c, sk)) in self.components.iter().zip(&comp).enumerate() {
            let rk = r.column(j).insert_axis(Axis(1));
            let term = c.score_jvp(x, v) + sk * &row_dots(sk.view(), v).insert_axis(Axis(1));
            out += &(term * rk);
        }
        out
    }

    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let (s, comp, r) = self.parts(x);
        let mut tr = -row_sq_norms(s.view());
        for (j, (c, sk)) in self.components.iter().zip(&comp).enumerate() {
            let t = row_sq_norms(sk.view()) - c.cov().trace_inverse();
            tr += &(t * r.column(j));
        }
        tr
    }
}

impl Sample for GaussianMixture {
    /// Draws the component k ∼ Categorical(w) and z ∼ N(0, I) for each row, then x = μₖ + Lₖ z.
    fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Array2<f64> {
        let pick = WeightedIndex::new(self.weights.iter()).expect("validated weights");
        let d = self.dim();
        let mut x = Array2::zeros((n, d));
        let mut z = vec![0.0; d];
        for mut row in x.axis_iter_mut(Axis(0)) {
            let c = &self.components[pick.sample(rng)];
            row.assign(c.mean_vector());
            let l = c.cov().cholesky();
            z.iter_mut().for_each(|v| *v = rng.sample(StandardNormal));
            for i in 0..d {
                row[i] += (0..=i).map(|j| l[[i, j]] * z[j]).sum::<f64>();
            }
        }
        x
    }
}

impl NoisedScore for GaussianMixture {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.noised(sigma).score(x)
    }
}

/// The Hessian of log p_σ: p_σ's own JVP and exact trace.
impl scorelab_core::NoisedScoreFunction for GaussianMixture {
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

impl Moments for GaussianMixture {
    fn mean(&self) -> Array1<f64> {
        let mut m = Array1::zeros(self.dim());
        for (w, c) in self.weights.iter().zip(&self.components) {
            m.scaled_add(*w, c.mean_vector());
        }
        m
    }
    fn covariance(&self) -> Array2<f64> {
        let m = self.mean();
        let mut cov = Array2::zeros((self.dim(), self.dim()));
        for (w, c) in self.weights.iter().zip(&self.components) {
            let dm = (c.mean_vector() - &m).insert_axis(Axis(1));
            cov.scaled_add(*w, &(c.cov().matrix() + &dm.dot(&dm.t())));
        }
        cov
    }
}

impl ScoreMatchingConstant for GaussianMixture {
    fn score_matching_constant(&self) -> Option<f64> {
        None
    }
}

impl ExpectationRule for GaussianMixture {
    /// The union of the components' rules, weighted by wₖ. Each component's rule is composite
    /// Gauss–Legendre in its own whitened coordinates on \[−12, 12\]ᵈ ([`MIXTURE_PANELS`] panels of
    /// [`MIXTURE_NODES`] nodes per axis): the responsibilities are smooth but not polynomial, and
    /// where components overlap Gauss–Hermite converges too slowly for 1e-6.
    fn expectation_rule(&self) -> Option<Cubature> {
        let d = self.dim();
        if d > 2 {
            return None;
        }
        let (z, w) = quadrature::smooth_rule(d);
        let rules: Vec<Cubature> = self
            .components
            .iter()
            .map(|c| c.mapped_rule(z.clone(), w.clone()))
            .collect();
        let views: Vec<_> = rules.iter().map(|r| r.nodes.view()).collect();
        let nodes = ndarray::concatenate(Axis(0), &views).expect("same dimension");
        let weights: Vec<f64> = rules
            .iter()
            .zip(&self.weights)
            .flat_map(|(r, w)| r.weights.iter().map(move |v| v * w))
            .collect();
        Some(Cubature {
            nodes,
            weights: Array1::from(weights),
        })
    }
}

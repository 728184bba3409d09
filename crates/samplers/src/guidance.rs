//! Classifier-free guidance (Ho & Salimans 2022, "Classifier-free diffusion guidance"): a
//! conditional score s(y, σ̃ | c) and an unconditional one s(y, σ̃) combined as
//!
//! s̃(y, σ̃) = (1 + w) s(y, σ̃ | c) − w s(y, σ̃),
//!
//! with the guidance weight w ≥ 0 in Ho & Salimans's convention (w = 0: the conditional model
//! alone). diffusers and most image pipelines write the same combination with the "guidance
//! scale" γ = 1 + w: s̃ = s(y, σ̃) + γ (s(y, σ̃ | c) − s(y, σ̃)). Guidance in a limited interval
//! (Kynkäänniemi et al. 2024, "Applying guidance in a limited interval improves sample and
//! distribution quality") applies w only at noise levels σ̃ in [σ_lo, σ_hi], and the conditional
//! score alone elsewhere.
//!
//! At σ̃ = 0, s̃ is the score of the tilted law p_w(x | c) ∝ p(x | c)^{1+w} p(x)^{−w}, which
//! guided sampling is often said to sample; at σ̃ > 0 it is not the score of the noised tilted law
//! (a power of a convolution is not the convolution of the power), so what a guided sampler
//! produces has to be measured (Chidambaram et al. 2024; Bradley & Nakkiran 2024).

use ndarray::{Array2, ArrayView2};
use scorelab_core::{Dimension, NoisedScore, ParamError};

/// The guidance weight w (Ho & Salimans's convention) and an optional interval of σ̃ it acts in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guidance {
    weight: f64,
    interval: Option<(f64, f64)>,
}

impl Guidance {
    /// Weight w ≥ 0, applied at every σ̃, or only for σ̃ in `interval` = (σ_lo, σ_hi).
    ///
    /// # Examples
    /// ```
    /// use scorelab_samplers::guidance::Guidance;
    /// let g = Guidance::new(3.0, Some((0.5, 5.0)))?;
    /// assert_eq!((g.weight_at(1.0), g.weight_at(10.0), g.scale()), (3.0, 0.0, 4.0));
    /// assert!(Guidance::new(-0.5, None).is_err());
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    ///
    /// # Errors
    /// `weight` unless finite and ≥ 0; `interval` unless 0 ≤ σ_lo < σ_hi (σ_hi may be ∞).
    pub fn new(weight: f64, interval: Option<(f64, f64)>) -> Result<Self, ParamError> {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(ParamError::invalid("weight", format!("must be finite and ≥ 0 (0: the conditional model alone; diffusers' guidance scale is 1 + weight), got {weight}")));
        }
        if let Some((lo, hi)) = interval {
            if !(lo >= 0.0 && hi > lo && !hi.is_nan()) {
                return Err(ParamError::invalid(
                    "interval",
                    format!("must be [σ_lo, σ_hi] with 0 ≤ σ_lo < σ_hi, got [{lo}, {hi}]"),
                ));
            }
        }
        Ok(Guidance { weight, interval })
    }

    /// w.
    pub fn weight(&self) -> f64 {
        self.weight
    }

    /// The interval, if any.
    pub fn interval(&self) -> Option<(f64, f64)> {
        self.interval
    }

    /// diffusers' guidance scale γ = 1 + w.
    pub fn scale(&self) -> f64 {
        1.0 + self.weight
    }

    /// The weight at noise level σ̃: w inside the interval (or everywhere without one), 0 outside.
    pub fn weight_at(&self, sigma: f64) -> f64 {
        match self.interval {
            Some((lo, hi)) if sigma < lo || sigma > hi => 0.0,
            _ => self.weight,
        }
    }
}

/// The guided score (1 + w) s(y, σ̃ | c) − w s(y, σ̃) of a conditional and an unconditional score
/// (module docs); a [`NoisedScore`] any diffusion sampler runs on.
///
/// # Examples
/// ```
/// use ndarray::{array, Array2};
/// use scorelab_core::NoisedScore;
/// use scorelab_densities::GaussianMixture;
/// use scorelab_samplers::guidance::{Guidance, Guided};
/// let p = GaussianMixture::new(array![0.5, 0.5], vec![array![-2.0], array![2.0]], vec![Array2::eye(1); 2])?;
/// let c = p.restricted(&[1])?;
/// let g = Guided::new(&c, &p, Guidance::new(1.0, None)?);
/// let y = array![[0.0]];
/// let want = 2.0 * &c.noised_score(y.view(), 0.5) - p.noised_score(y.view(), 0.5);
/// assert_eq!(g.noised_score(y.view(), 0.5), want);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Guided<'a, C: ?Sized, U: ?Sized> {
    cond: &'a C,
    uncond: &'a U,
    guidance: Guidance,
}

impl<'a, C: NoisedScore + ?Sized, U: NoisedScore + ?Sized> Guided<'a, C, U> {
    /// The guided score of `cond` and `uncond` (of the same dimension).
    ///
    /// # Panics
    /// If their dimensions differ.
    pub fn new(cond: &'a C, uncond: &'a U, guidance: Guidance) -> Self {
        assert_eq!(
            cond.dim(),
            uncond.dim(),
            "conditional and unconditional scores of one dimension"
        );
        Guided {
            cond,
            uncond,
            guidance,
        }
    }
}

impl<C: NoisedScore + ?Sized, U: NoisedScore + ?Sized> Dimension for Guided<'_, C, U> {
    fn dim(&self) -> usize {
        self.cond.dim()
    }
}

impl<C: NoisedScore + ?Sized, U: NoisedScore + ?Sized> NoisedScore for Guided<'_, C, U> {
    fn noised_score(&self, y: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        let w = self.guidance.weight_at(sigma);
        let c = self.cond.noised_score(y, sigma);
        if w == 0.0 {
            return c;
        }
        let mut out = c * (1.0 + w);
        out.scaled_add(-w, &self.uncond.noised_score(y, sigma));
        out
    }
}

/// The guided score's Jacobian (1 + w) J(y, σ̃ | c) − w J(y, σ̃) at fixed σ̃, so that a guided
/// probability-flow ODE has an exact likelihood ([`crate::likelihood`]): the density of what the
/// guided ODE samples.
///
/// # Examples
/// ```
/// use ndarray::{array, Array2};
/// use scorelab_core::NoisedScoreFunction;
/// use scorelab_densities::GaussianMixture;
/// use scorelab_samplers::guidance::{Guidance, Guided};
/// let p = GaussianMixture::new(array![0.5, 0.5], vec![array![-2.0], array![2.0]], vec![Array2::eye(1); 2])?;
/// let c = p.restricted(&[1])?;
/// let g = Guided::new(&c, &p, Guidance::new(2.0, None)?);
/// let y = array![[0.3]];
/// let (_, tr) = g.noised_score_trace(y.view(), 0.5);
/// let (_, tc) = c.noised_score_trace(y.view(), 0.5);
/// let (_, tu) = p.noised_score_trace(y.view(), 0.5);
/// assert!((tr[0] - (3.0 * tc[0] - 2.0 * tu[0])).abs() < 1e-12);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
impl<
        C: scorelab_core::NoisedScoreFunction + ?Sized,
        U: scorelab_core::NoisedScoreFunction + ?Sized,
    > scorelab_core::NoisedScoreFunction for Guided<'_, C, U>
{
    fn noised_score_jvp(
        &self,
        y: ArrayView2<f64>,
        v: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, Array2<f64>) {
        let w = self.guidance.weight_at(sigma);
        let (s, j) = self.cond.noised_score_jvp(y, v, sigma);
        if w == 0.0 {
            return (s, j);
        }
        let (su, ju) = self.uncond.noised_score_jvp(y, v, sigma);
        (s * (1.0 + w) - su * w, j * (1.0 + w) - ju * w)
    }

    fn noised_score_trace(
        &self,
        y: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, ndarray::Array1<f64>) {
        let w = self.guidance.weight_at(sigma);
        let (s, t) = self.cond.noised_score_trace(y, sigma);
        if w == 0.0 {
            return (s, t);
        }
        let (su, tu) = self.uncond.noised_score_trace(y, sigma);
        (s * (1.0 + w) - su * w, t * (1.0 + w) - tu * w)
    }
}

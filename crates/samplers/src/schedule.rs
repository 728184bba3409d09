//! Diffusion schedules: every SDE with a linear drift, dx = f(t) x dt + g(t) dW, written through
//! the two functions of its Gaussian perturbation kernel (Karras et al. 2022, §2 and App. B).
//!
//! Such an SDE carries x₀ to x_t = α(t) (x₀ + σ̃(t) z), z ∼ N(0, I), so its marginal is
//! p_t(x) = α⁻ᴰ p_σ̃(x/α) with p_σ = p ∗ N(0, σ²I), and its score is
//! ∇log p_t(x) = s(x/α, σ̃)/α with s(y, σ̃) = ∇log p_σ̃(y). One noise-conditional score s(y, σ̃)
//! serves every schedule; they differ only in α(t) and σ̃(t). The SDE's coefficients follow from
//! the kernel: f = α̇/α, and since Var\[x_t | x₀\] = α²σ̃² obeys d(α²σ̃²)/dt = 2f α²σ̃² + g²,
//! g² = 2α²σ̃σ̃̇.
//!
//! | kind | α(t) | σ̃(t) | t runs over | prior |
//! | --- | --- | --- | --- | --- |
//! | `ve` (Song et al. 2021) | 1 | σ_min (σ_max/σ_min)ᵗ | \[0, 1\] | N(0, σ_max² I) |
//! | `vp` (DDPM's limit, Song et al. 2021) | exp(−½B(t)) | √(α⁻² − 1) | \[t_min, 1\] | N(0, I) |
//! | `subvp` (Song et al. 2021) | exp(−½B(t)) | (1 − α²)/α | \[t_min, 1\] | N(0, I) |
//! | `edm` (Karras et al. 2022) | 1 | t | \[σ_min, σ_max\], then 0 | N(0, σ_max² I) |
//!
//! with B(t) = ∫₀ᵗ β = β_min t + ½(β_max − β_min) t². Samplers walk a time grid t₀ = T > t₁ > … >
//! t_N of N steps ([`Schedule::time`]): uniform in t for `ve`, `vp` and `subvp` (ending at t = 0,
//! σ̃ = σ_min, for `ve` and at t_min for `vp`/`subvp`), and Karras et al.'s ρ-spaced grid (their
//! eq. 5) for `edm`, σᵢ = (σ_max^{1/ρ} + i/(N − 1) (σ_min^{1/ρ} − σ_max^{1/ρ}))^ρ for i < N, then
//! t_N = 0. On the `edm` grid the last step goes from σ_min to σ̃ = 0, so the output targets p
//! itself; the other grids end at σ̃_end > 0 and target p_t there.
//!
//! # Examples
//! ```
//! use scorelab_samplers::Schedule;
//! let vp = Schedule::vp(0.1, 20.0, 1e-3)?;
//! // At t = 1: B = 0.1 + 9.95, so α = e^{−5.025} and σ̃ = √(e^{10.05} − 1) ≈ 152.
//! assert!((vp.alpha(1.0) - (-5.025f64).exp()).abs() < 1e-15);
//! assert!((vp.sigma(1.0) - 152.0).abs() < 0.5);
//! // g² = β(t) for VP.
//! assert!((vp.g2(0.5) - (0.1 + 0.5 * 19.9)).abs() < 1e-12);
//! # Ok::<(), scorelab_core::ParamError>(())
//! ```

use crate::{positive, standard_normal};
use ndarray::{Array2, ArrayView2};
use rand::Rng;
use scorelab_core::{NoisedScore, ParamError, SigmaRange};

/// The variance-exploding (VE) schedule σ(t) = σ_min (σ_max/σ_min)ᵗ, t ∈ \[0, 1\] (NCSN's SDE,
/// Song et al. 2021), the `ve` kind of [`Schedule`].
///
/// The forward SDE dx = g(t) dW with g(t)² = dσ²/dt = 2σ(t)² ln(σ_max/σ_min) carries p_{σ_min} at
/// t = 0 to p_{σ_max} at t = 1, where p_σ = p ∗ N(0, σ²I); for σ_max much larger than the data's
/// spread, p_{σ_max} ≈ N(0, σ_max² I), the prior. Its reverse in time,
/// dx = −g(t)² ∇log p_{σ(t)}(x) dt + g(t) dW̄, and the probability-flow ODE
/// dx/dt = −½ g(t)² ∇log p_{σ(t)}(x) have the same marginals p_{σ(t)}.
///
/// It is built by [`Schedule::ve`] and used through [`Schedule`]; this type is the VE kind's
/// parameters inside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct VeSchedule {
    pub(crate) sigma_max: f64,
    pub(crate) sigma_min: f64,
}

impl VeSchedule {
    /// σ(t) from σ_min at t = 0 to σ_max at t = 1.
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max, both finite (naming `sigma_min` or `sigma_max`).
    pub fn new(range: SigmaRange) -> Result<Self, ParamError> {
        let SigmaRange {
            min: sigma_min,
            max: sigma_max,
        } = range;
        check_sigma_range(sigma_min, sigma_max)?;
        Ok(VeSchedule {
            sigma_max,
            sigma_min,
        })
    }

    /// σ(t) = σ_min (σ_max/σ_min)ᵗ.
    pub fn sigma(&self, t: f64) -> f64 {
        if t >= 1.0 {
            return self.sigma_max;
        }
        if t <= 0.0 {
            return self.sigma_min;
        }
        self.sigma_min * (self.sigma_max / self.sigma_min).powf(t)
    }

    /// g(t)² = dσ²/dt = 2σ(t)² ln(σ_max/σ_min).
    pub fn g2(&self, t: f64) -> f64 {
        2.0 * self.sigma(t).powi(2) * (self.sigma_max / self.sigma_min).ln()
    }
}

fn check_sigma_range(sigma_min: f64, sigma_max: f64) -> Result<(), ParamError> {
    scorelab_core::error::noise_level(sigma_min, "sigma_min")?;
    scorelab_core::error::noise_level(sigma_max, "sigma_max")?;
    if !(sigma_max.is_finite() && sigma_max > sigma_min) {
        return Err(ParamError::invalid(
            "sigma_max",
            format!("must be finite and greater than sigma_min = {sigma_min}, got {sigma_max}"),
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    Ve(VeSchedule),
    Vp {
        beta_min: f64,
        beta_max: f64,
        t_min: f64,
        sub: bool,
    },
    Edm {
        sigma_min: f64,
        sigma_max: f64,
        rho: f64,
    },
    Linear {
        t_min: f64,
        t_max: f64,
    },
}

/// A diffusion schedule: α(t), σ̃(t), their derivatives, the forward SDE's drift f(t) and squared
/// diffusion g(t)², the prior and the time grid of N steps (the [module docs](self) have the table).
/// Built validated by [`Schedule::ve`], [`Schedule::vp`], [`Schedule::subvp`] or [`Schedule::edm`].
///
/// # Examples
/// ```
/// use scorelab_samplers::Schedule;
/// let edm = Schedule::edm(scorelab_core::SigmaRange { min: 0.002, max: 80.0 }, 7.0)?;
/// // Karras et al.'s grid: σ_max first, σ_min at step N − 1, then 0.
/// assert_eq!((edm.time(18, 0), edm.time(18, 18)), (80.0, 0.0));
/// assert!((edm.time(18, 17) - 0.002).abs() < 1e-15);
/// assert!(Schedule::vp(20.0, 0.1, 1e-3).is_err());
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(
    try_from = "crate::config::ScheduleDef",
    into = "crate::config::ScheduleDef"
)]
pub struct Schedule(pub(crate) Kind);

impl From<VeSchedule> for Schedule {
    fn from(ve: VeSchedule) -> Self {
        Schedule(Kind::Ve(ve))
    }
}

fn check_vp(beta_min: f64, beta_max: f64, t_min: f64) -> Result<(), ParamError> {
    if !(beta_min.is_finite() && beta_min >= 0.0) {
        return Err(ParamError::invalid(
            "beta_min",
            format!("must be a finite number ≥ 0, got {beta_min}"),
        ));
    }
    if !(beta_max.is_finite() && beta_max > beta_min) {
        return Err(ParamError::invalid(
            "beta_max",
            format!("must be finite and greater than beta_min = {beta_min}, got {beta_max}"),
        ));
    }
    if !(t_min > 0.0 && t_min < 1.0) {
        return Err(ParamError::invalid(
            "t_min",
            format!("must lie strictly between 0 and 1 (Song et al. sample to 1e-3), got {t_min}"),
        ));
    }
    // σ̃(1) = √(e^{B(1)} − 1) (VP; sub-VP's is smaller) must be a noise level whose square is
    // finite: B(1) = β_min + (β_max − β_min)/2 ≤ 2 ln 1e150.
    let b1 = beta_min + 0.5 * (beta_max - beta_min);
    let most = 2.0 * scorelab_core::error::SIGMA_RANGE.1.ln();
    if b1 > most {
        return Err(ParamError::invalid(
            "beta_max",
            format!(
                "{beta_max:e} makes σ̃(1) = √(e^B − 1) with B = {b1:e} overflow; β_min + (β_max − β_min)/2 must be at most {most:.0} (Song et al. use β_max = 20)"
            ),
        ));
    }
    // And σ̃(t_min) must not vanish: B(t_min) ≥ 1e-300 (σ̃ ≈ √B ≥ 1e-150).
    let b0 = beta_min * t_min + 0.5 * (beta_max - beta_min) * t_min * t_min;
    if b0 < scorelab_core::error::SIGMA_RANGE.0.powi(2) {
        return Err(ParamError::invalid(
            "t_min",
            format!(
                "{t_min:e} gives σ̃(t_min) below {:e} with these β; raise t_min or beta_min",
                scorelab_core::error::SIGMA_RANGE.0
            ),
        ));
    }
    Ok(())
}

impl Schedule {
    /// VE (NCSN's SDE, Song et al. 2021): α = 1, σ̃(t) = σ_min (σ_max/σ_min)ᵗ on t ∈ \[0, 1\].
    /// The forward SDE dx = g(t) dW with g(t)² = dσ²/dt = 2σ(t)² ln(σ_max/σ_min) carries
    /// p_{σ_min} at t = 0 to p_{σ_max} ≈ N(0, σ_max² I) at t = 1, the prior.
    ///
    /// ```
    /// use scorelab_core::SigmaRange;
    /// let ve = scorelab_samplers::Schedule::ve(SigmaRange { min: 1.0, max: 20.0 })?;
    /// assert_eq!((ve.sigma(0.0), ve.sigma(1.0), ve.prior_std()), (1.0, 20.0, 20.0));
    /// assert!((ve.g2(1.0) - 2.0 * 400.0 * 20f64.ln()).abs() < 1e-9);
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max, both finite (naming `sigma_min` or `sigma_max`).
    pub fn ve(range: SigmaRange) -> Result<Self, ParamError> {
        Ok(VeSchedule::new(range)?.into())
    }

    /// VP (the continuous limit of DDPM, Song et al. 2021): β(t) = β_min + t(β_max − β_min),
    /// α = exp(−½∫₀ᵗβ), σ̃ = √(α⁻² − 1), on t ∈ \[t_min, 1\].
    ///
    /// # Errors
    /// Unless 0 ≤ β_min < β_max (finite; `beta_min`, `beta_max`) and 0 < t_min < 1 (`t_min`).
    pub fn vp(beta_min: f64, beta_max: f64, t_min: f64) -> Result<Self, ParamError> {
        Self::variance_preserving(beta_min, beta_max, t_min, false)
    }

    /// sub-VP (Song et al. 2021): the VP drift with g² = β(t)(1 − α⁴), so α as for VP and
    /// σ̃ = (1 − α²)/α, on t ∈ \[t_min, 1\].
    ///
    /// # Errors
    /// As [`Schedule::vp`].
    pub fn subvp(beta_min: f64, beta_max: f64, t_min: f64) -> Result<Self, ParamError> {
        Self::variance_preserving(beta_min, beta_max, t_min, true)
    }

    fn variance_preserving(
        beta_min: f64,
        beta_max: f64,
        t_min: f64,
        sub: bool,
    ) -> Result<Self, ParamError> {
        check_vp(beta_min, beta_max, t_min)?;
        Ok(Schedule(Kind::Vp {
            beta_min,
            beta_max,
            t_min,
            sub,
        }))
    }

    /// EDM (Karras et al. 2022): α = 1, σ̃ = t, on their ρ-spaced grid from σ_max to σ_min, then 0.
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max (finite; `sigma_min`, `sigma_max`) and ρ > 0 finite (`rho`).
    pub fn edm(range: SigmaRange, rho: f64) -> Result<Self, ParamError> {
        let SigmaRange {
            min: sigma_min,
            max: sigma_max,
        } = range;
        check_sigma_range(sigma_min, sigma_max)?;
        positive(rho, "rho")?;
        Ok(Schedule(Kind::Edm {
            sigma_min,
            sigma_max,
            rho,
        }))
    }

    /// The linear path of rectified flow and conditional flow matching (Liu et al. 2023, "Flow
    /// straight and fast"; Lipman et al. 2023): x_t = (1 − t)x₀ + t ε, which in the kernel's view is
    /// α = 1 − t, σ̃ = t/(1 − t), on t ∈ \[t_min, t_max\] (t_max < 1: at t = 1, α = 0 and σ̃ = ∞).
    /// Its prior is N(0, t_max² I), the noise part of x_T (its (1 − t_max)x₀ part is the prior's
    /// mismatch); the grid is uniform in t. The flow-matching velocity of this path is
    /// u = E[ε − x₀ | x_t] = (x − D)/t with D = E[x₀ | x_t], which is the probability-flow ODE's
    /// dx/dt = (α̇/α)x − ασ̃σ̃̇ ∇log p_σ̃(x/α).
    ///
    /// ```
    /// let rf = scorelab_samplers::Schedule::linear(1e-3, 0.999)?;
    /// assert_eq!((rf.alpha(0.25), rf.sigma(0.25)), (0.75, 0.25 / 0.75));
    /// assert_eq!((rf.drift(0.5), rf.g2(0.5)), (-2.0, 2.0));
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    ///
    /// # Errors
    /// Unless 0 < t_min < t_max < 1 (naming `t_min` or `t_max`).
    pub fn linear(t_min: f64, t_max: f64) -> Result<Self, ParamError> {
        if !(t_min.is_finite() && t_min > 0.0 && t_min < 1.0) {
            return Err(ParamError::invalid(
                "t_min",
                format!("must lie strictly between 0 and 1, got {t_min}"),
            ));
        }
        if !(t_max.is_finite() && t_max > t_min && t_max < 1.0) {
            return Err(ParamError::invalid("t_max", format!("must lie strictly between t_min = {t_min} and 1 (at t = 1 the path is pure noise and σ̃ is infinite), got {t_max}")));
        }
        Ok(Schedule(Kind::Linear { t_min, t_max }))
    }

    /// A short label naming the kind and the parameter tables compare it by:
    /// `ve(σ_min-σ_max)`, `vp(t_min=…)`, `subvp(t_min=…)`, `edm(sigma_min=…)`.
    ///
    /// # Examples
    /// ```
    /// use scorelab_samplers::Schedule;
    /// assert_eq!(Schedule::vp(0.1, 20.0, 1e-5)?.label(), "vp(t_min=0.00001)");
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    pub fn label(&self) -> String {
        match self.0 {
            Kind::Ve(ve) => format!("ve({}-{})", ve.sigma_min, ve.sigma_max),
            Kind::Vp { t_min, sub, .. } => {
                format!("{}(t_min={t_min})", if sub { "subvp" } else { "vp" })
            }
            Kind::Edm { sigma_min, .. } => format!("edm(sigma_min={sigma_min})"),
            Kind::Linear { t_min, t_max } => format!("linear({t_min}-{t_max})"),
        }
    }

    /// The kind as a config spells it: `ve`, `vp`, `subvp`, `edm` or `linear`.
    pub fn kind(&self) -> &'static str {
        match self.0 {
            Kind::Ve(_) => "ve",
            Kind::Vp { sub: false, .. } => "vp",
            Kind::Vp { sub: true, .. } => "subvp",
            Kind::Edm { .. } => "edm",
            Kind::Linear { .. } => "linear",
        }
    }

    /// (β_min, β_max) of `vp` and `subvp`.
    pub fn betas(&self) -> Option<(f64, f64)> {
        match self.0 {
            Kind::Vp {
                beta_min, beta_max, ..
            } => Some((beta_min, beta_max)),
            _ => None,
        }
    }

    /// B(t) = ∫₀ᵗ β(u) du = β_min t + ½(β_max − β_min)t² (VP and sub-VP).
    fn integrated_beta(beta_min: f64, beta_max: f64, t: f64) -> f64 {
        beta_min * t + 0.5 * (beta_max - beta_min) * t * t
    }

    /// T, where sampling starts: 1, or σ_max for `edm`.
    pub fn t_max(&self) -> f64 {
        match self.0 {
            Kind::Ve(_) | Kind::Vp { .. } => 1.0,
            Kind::Edm { sigma_max, .. } => sigma_max,
            Kind::Linear { t_max, .. } => t_max,
        }
    }

    /// The last time of the continuous range, where σ̃ is smallest and positive: 0 for `ve`
    /// (σ̃ = σ_min), t_min for `vp`/`subvp`, σ_min for `edm` (whose grid then steps to 0).
    pub fn t_end(&self) -> f64 {
        match self.0 {
            Kind::Ve(_) => 0.0,
            Kind::Vp { t_min, .. } => t_min,
            Kind::Edm { sigma_min, .. } => sigma_min,
            Kind::Linear { t_min, .. } => t_min,
        }
    }

    /// α(t), the kernel's scale.
    pub fn alpha(&self, t: f64) -> f64 {
        match self.0 {
            Kind::Ve(_) | Kind::Edm { .. } => 1.0,
            Kind::Linear { .. } => 1.0 - t,
            Kind::Vp {
                beta_min, beta_max, ..
            } => (-0.5 * Self::integrated_beta(beta_min, beta_max, t)).exp(),
        }
    }

    /// σ̃(t), the kernel's noise level in the units of x₀.
    pub fn sigma(&self, t: f64) -> f64 {
        match self.0 {
            Kind::Ve(ve) => ve.sigma(t),
            Kind::Edm { .. } => t,
            Kind::Linear { .. } => t / (1.0 - t),
            Kind::Vp {
                beta_min,
                beta_max,
                sub,
                ..
            } => {
                let b = Self::integrated_beta(beta_min, beta_max, t);
                if sub {
                    // (1 − α²)/α = (1 − e^{−B}) e^{B/2}.
                    -(-b).exp_m1() * (0.5 * b).exp()
                } else {
                    // √(α⁻² − 1) = √(e^B − 1).
                    b.exp_m1().sqrt()
                }
            }
        }
    }

    /// dα/dt.
    pub fn alpha_dot(&self, t: f64) -> f64 {
        self.drift(t) * self.alpha(t)
    }

    /// dσ̃/dt.
    pub fn sigma_dot(&self, t: f64) -> f64 {
        match self.0 {
            Kind::Ve(ve) => ve.sigma(t) * (ve.sigma_max / ve.sigma_min).ln(),
            Kind::Edm { .. } => 1.0,
            Kind::Linear { .. } => 1.0 / ((1.0 - t) * (1.0 - t)),
            Kind::Vp {
                beta_min,
                beta_max,
                sub,
                ..
            } => {
                let beta = beta_min + t * (beta_max - beta_min);
                let a = self.alpha(t);
                if sub {
                    // d(α⁻¹ − α)/dt with α̇ = −½βα.
                    0.5 * beta * (1.0 / a + a)
                } else {
                    // d√(e^B − 1)/dt = β e^B / (2σ̃).
                    0.5 * beta / (a * a * self.sigma(t))
                }
            }
        }
    }

    /// The drift coefficient f(t) = α̇/α of the forward SDE dx = f(t) x dt + g(t) dW.
    pub fn drift(&self, t: f64) -> f64 {
        match self.0 {
            Kind::Ve(_) | Kind::Edm { .. } => 0.0,
            Kind::Linear { .. } => -1.0 / (1.0 - t),
            Kind::Vp {
                beta_min, beta_max, ..
            } => -0.5 * (beta_min + t * (beta_max - beta_min)),
        }
    }

    /// The squared diffusion g(t)² = 2α²σ̃σ̃̇: 2σ̃² ln(σ_max/σ_min) (`ve`), β(t) (`vp`),
    /// β(t)(1 − α⁴) (`subvp`), 2t (`edm`).
    pub fn g2(&self, t: f64) -> f64 {
        match self.0 {
            Kind::Ve(ve) => ve.g2(t),
            Kind::Edm { .. } => 2.0 * t,
            // 2α²σ̃σ̃̇ = 2(1 − t)² · t/(1 − t) · 1/(1 − t)².
            Kind::Linear { .. } => 2.0 * t / (1.0 - t),
            Kind::Vp {
                beta_min,
                beta_max,
                sub,
                ..
            } => {
                let beta = beta_min + t * (beta_max - beta_min);
                if sub {
                    beta * -(-2.0 * Self::integrated_beta(beta_min, beta_max, t)).exp_m1()
                } else {
                    beta
                }
            }
        }
    }

    /// The standard deviation of the Gaussian prior N(0, c² I) that samplers start from at T:
    /// σ_max for `ve` and `edm`, 1 for `vp` and `subvp`.
    pub fn prior_std(&self) -> f64 {
        match self.0 {
            Kind::Ve(ve) => ve.sigma_max,
            Kind::Vp { .. } => 1.0,
            Kind::Edm { sigma_max, .. } => sigma_max,
            Kind::Linear { t_max, .. } => t_max,
        }
    }

    /// `n` draws from the prior N(0, c² I) ([`Schedule::prior_std`]), row by row.
    pub fn prior<R: Rng + ?Sized>(&self, n: usize, d: usize, rng: &mut R) -> Array2<f64> {
        standard_normal(n, d, rng) * self.prior_std()
    }

    /// t_k, k = 0 … N, of the grid of N = `steps` steps (module docs): T at k = 0; t_end at k = N,
    /// or 0 on the `edm` grid.
    ///
    /// # Panics
    /// If `steps` = 0 or k > N.
    pub fn time(&self, steps: usize, k: usize) -> f64 {
        assert!(steps >= 1 && k <= steps, "step {k} of {steps}");
        match self.0 {
            Kind::Ve(_) | Kind::Vp { .. } | Kind::Linear { .. } => {
                if k == steps {
                    return self.t_end();
                }
                let h = (self.t_max() - self.t_end()) / steps as f64;
                self.t_max() - k as f64 * h
            }
            Kind::Edm {
                sigma_min,
                sigma_max,
                rho,
            } => {
                if k == steps {
                    return 0.0;
                }
                if k == 0 {
                    return sigma_max;
                }
                if k + 1 == steps {
                    return sigma_min;
                }
                let (a, b) = (sigma_max.powf(1.0 / rho), sigma_min.powf(1.0 / rho));
                (a + k as f64 / (steps - 1) as f64 * (b - a)).powf(rho)
            }
        }
    }

    /// Whether the grid ends at σ̃ = 0 (`edm`), so that its output targets p itself and a final
    /// denoising step has nothing left to remove.
    pub fn ends_at_zero(&self) -> bool {
        matches!(self.0, Kind::Edm { .. })
    }

    /// The noise levels a run of N steps evaluates the score at: (smallest positive σ̃, largest σ̃),
    /// i.e. (σ̃(t_end), σ̃(T)).
    pub fn sigma_range(&self) -> (f64, f64) {
        (self.sigma(self.t_end()), self.sigma(self.t_max()))
    }

    /// α at the time where σ̃(t) = `sigma` (σ̃ is increasing in t for every kind): 1 for `ve` and
    /// `edm`; 1/√(1 + σ̃²) for `vp` (σ̃² = α⁻² − 1); (√(σ̃² + 4) − σ̃)/2 for `subvp` (the positive
    /// root of α² + σ̃α − 1 = 0); 1/(1 + σ̃) for `linear`. So a solver that walks a grid of noise levels (not of times)
    /// converts between x and y = x/α at every level.
    ///
    /// # Examples
    /// ```
    /// use scorelab_samplers::Schedule;
    /// for s in [Schedule::vp(0.1, 20.0, 1e-3)?, Schedule::subvp(0.1, 20.0, 1e-3)?] {
    ///     let t = 0.37;
    ///     assert!((s.alpha_at_sigma(s.sigma(t)) - s.alpha(t)).abs() < 1e-14);
    /// }
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    pub fn alpha_at_sigma(&self, sigma: f64) -> f64 {
        match self.0 {
            Kind::Ve(_) | Kind::Edm { .. } => 1.0,
            Kind::Vp { sub: false, .. } => 1.0 / (1.0 + sigma * sigma).sqrt(),
            // (√(σ² + 4) − σ)/2 = 2/(√(σ² + 4) + σ), without cancellation for large σ.
            Kind::Vp { sub: true, .. } => 2.0 / ((sigma * sigma + 4.0).sqrt() + sigma),
            // σ̃ = t/(1 − t), so 1 − t = 1/(1 + σ̃).
            Kind::Linear { .. } => 1.0 / (1.0 + sigma),
        }
    }

    /// The marginal score ∇log p_t(x) = s(x/α, σ̃)/α at time t, from the noise-conditional score
    /// s(y, σ̃) of p.
    pub fn marginal_score<S: NoisedScore + ?Sized>(
        &self,
        source: &S,
        x: ArrayView2<f64>,
        t: f64,
    ) -> Array2<f64> {
        let a = self.alpha(t);
        let y = &x / a;
        source.noised_score(y.view(), self.sigma(t)) / a
    }
}

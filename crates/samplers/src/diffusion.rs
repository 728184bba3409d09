//! The samplers of the diffusion-model literature, written in the kernel's variables y = x/α and
//! σ̃ so that each serves every [`Schedule`]: DDPM's ancestral sampler (VP only), DDIM and EDM's
//! stochastic Heun sampler.

use crate::sde::{check_denoise, denoised, grid_finish, grid_outline, score_in_y, Interval};
use crate::{at_least_one, standard_normal, ChainState, Chains, Info, Outline, Sampler, Schedule};
use ndarray::{Array2, Zip};
use rand::Rng;
use scorelab_core::{NoisedScore, ParamError};

/// DDPM's ancestral sampler (Ho et al. 2020, Algorithm 2) on the discrete VP chain of N steps,
/// with score_sde's discretisation of the `vp` schedule: βᵢ = (β_min + i(β_max − β_min)/(N − 1))/N,
/// i = 0 … N − 1, and ᾱᵢ = Πⱼ≤ᵢ (1 − βⱼ).
///
/// From x ∼ N(0, I), for i = N − 1 down to 0: x ← (x + βᵢ gᵢ(x))/√(1 − βᵢ) + √βᵢ z, with
/// gᵢ(x) = s(x/√ᾱᵢ, σ̃ᵢ)/√ᾱᵢ the score of the chain's own marginal, x ∼ √ᾱᵢ (x₀ + σ̃ᵢ z),
/// σ̃ᵢ = √(1/ᾱᵢ − 1); the last step adds no noise (Algorithm 2's z = 0 at t = 1), so the output
/// targets p. The discrete chain ends at its own smallest level σ̃₀ = √(β₀/(1 − β₀)) ≈
/// √(β_min/N); the schedule's `t_min` is not used.
///
/// # Examples
/// ```
/// use scorelab_samplers::{Ancestral, Outline, Schedule};
/// let ddpm = Ancestral::new(Schedule::vp(0.1, 20.0, 1e-3)?, 1000)?;
/// assert_eq!((ddpm.num_steps(), ddpm.target_sigma()), (1000, None));
/// assert!((ddpm.beta(0) - 1e-4).abs() < 1e-18 && (ddpm.beta(999) - 0.02).abs() < 1e-15);
/// assert!(Ancestral::new(Schedule::edm(scorelab_core::SigmaRange { min: 0.002, max: 80.0 }, 7.0)?, 100).is_err());
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Ancestral {
    pub(crate) schedule: Schedule,
    pub(crate) betas: Vec<f64>,
    pub(crate) alpha_bars: Vec<f64>,
}

impl Ancestral {
    /// N = `steps` ancestral steps of the `vp` schedule's discrete chain.
    ///
    /// # Errors
    /// `schedule` unless it is `vp` (DDPM's chain is the VP one); `steps` unless ≥ 2.
    pub fn new(schedule: Schedule, steps: usize) -> Result<Self, ParamError> {
        let (beta_min, beta_max) = match (schedule.kind(), schedule.betas()) {
            ("vp", Some(b)) => b,
            (kind, _) => {
                return Err(ParamError::invalid(
                    "schedule",
                    format!("ancestral sampling runs DDPM's discrete chain, which is the vp schedule's; got {kind:?}: use schedule.kind = \"vp\", or ddim/heun for this schedule"),
                ))
            }
        };
        if steps < 2 {
            return Err(ParamError::invalid(
                "steps",
                format!("must be at least 2 (βᵢ divides by N − 1), got {steps}"),
            ));
        }
        let n = steps as f64;
        let betas: Vec<f64> = (0..steps)
            .map(|i| (beta_min + i as f64 * (beta_max - beta_min) / (n - 1.0)) / n)
            .collect();
        if let Some(b) = betas.iter().find(|&&b| b >= 1.0) {
            return Err(ParamError::invalid(
                "steps",
                format!("too few for beta_max: the largest discrete βᵢ = β_max/N is {b} ≥ 1; use steps > beta_max"),
            ));
        }
        let mut alpha_bars = Vec::with_capacity(steps);
        let mut prod = 1.0;
        for b in &betas {
            prod *= 1.0 - b;
            alpha_bars.push(prod);
        }
        Ok(Ancestral {
            schedule,
            betas,
            alpha_bars,
        })
    }

    /// βᵢ, i = 0 … N − 1.
    pub fn beta(&self, i: usize) -> f64 {
        self.betas[i]
    }

    /// ᾱᵢ = Πⱼ≤ᵢ (1 − βⱼ).
    pub fn alpha_bar(&self, i: usize) -> f64 {
        self.alpha_bars[i]
    }

    /// σ̃ᵢ = √(1/ᾱᵢ − 1), the noise level of the chain's marginal at step i.
    pub fn sigma(&self, i: usize) -> f64 {
        (1.0 / self.alpha_bars[i] - 1.0).sqrt()
    }
}

impl Outline for Ancestral {
    fn num_steps(&self) -> usize {
        self.betas.len()
    }

    fn prior_std(&self) -> Option<f64> {
        Some(1.0)
    }

    fn start(&self) -> Option<(f64, f64)> {
        let i = self.betas.len() - 1;
        Some((self.alpha_bars[i].sqrt(), self.sigma(i)))
    }

    fn sigma_needed(&self) -> Option<(f64, f64)> {
        Some((self.sigma(0), self.sigma(self.betas.len() - 1)))
    }
}

impl<S: NoisedScore + ?Sized> Sampler<S> for Ancestral {
    type State = ChainState;

    fn init(&self, _source: &S, x0: Array2<f64>) -> ChainState {
        ChainState::new(x0)
    }

    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        mut state: ChainState,
        rng: &mut R,
    ) -> (ChainState, Info) {
        let (n, d) = state.x.dim();
        let i = self.betas.len() - 1 - state.step;
        let z = standard_normal(n, d, rng);
        let (beta, a) = (self.betas[i], self.alpha_bars[i].sqrt());
        let sigma = self.sigma(i);
        let s = score_in_y(source, state.x.view(), a, sigma);
        let (c, k) = (1.0 / (1.0 - beta).sqrt(), beta / a);
        let b = if i == 0 { 0.0 } else { beta.sqrt() };
        Zip::from(&mut state.x)
            .and(&s)
            .and(&z)
            .for_each(|x, &s, &z| *x = c * (*x + k * s) + b * z);
        let info = state.advance(beta, Some(sigma), 1);
        (state, info)
    }
}

/// DDIM (Song, Meng & Ermon 2021, eq. 12) on the schedule's grid, in y = x/α: with
/// ε̂ = −σ̃ s(y, σ̃) the predicted noise and ŷ₀ = y − σ̃ ε̂ = y + σ̃² s the predicted clean point,
/// y′ = ŷ₀ + √(σ̃′² − c²) ε̂ + c z, c = η σ̃′ √(σ̃² − σ̃′²)/σ̃,
/// from σ̃ = σ̃(tₖ) to σ̃′ = σ̃(tₖ₊₁), then x′ = α(tₖ₊₁) y′. This is their σ_t(η) divided by α(tₖ₊₁),
/// which no longer depends on the schedule; η = 1 is DDPM's posterior variance, η = 0 draws
/// nothing and is Euler's method on the probability-flow ODE in (y, σ̃) ([`crate::Ode`] with
/// `euler` on the same grid).
///
/// # Examples
/// ```
/// use scorelab_samplers::{Ddim, Schedule};
/// let ddim = Ddim::new(Schedule::vp(0.1, 20.0, 1e-3)?, 50, 0.0, false)?;
/// assert!(Ddim::new(Schedule::vp(0.1, 20.0, 1e-3)?, 50, 1.5, false).is_err());
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ddim {
    pub(crate) schedule: Schedule,
    pub(crate) steps: usize,
    pub(crate) eta: f64,
    pub(crate) denoise: bool,
}

impl Ddim {
    /// N = `steps` DDIM steps with noise η = `eta` ∈ \[0, 1\].
    ///
    /// # Errors
    /// `eta` outside \[0, 1\]; `steps` = 0; `denoise` on a grid that ends at σ̃ = 0.
    pub fn new(
        schedule: Schedule,
        steps: usize,
        eta: f64,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        if !(0.0..=1.0).contains(&eta) {
            return Err(ParamError::invalid(
                "eta",
                format!(
                    "must lie in [0, 1] (0: deterministic DDIM, 1: DDPM's variance), got {eta}"
                ),
            ));
        }
        Ok(Ddim {
            schedule,
            steps: at_least_one(steps, "steps")?,
            eta,
            denoise: check_denoise(&schedule, denoise)?,
        })
    }
}

impl Ddim {
    fn sigma_span(&self) -> (f64, f64) {
        self.schedule.sigma_range()
    }
}

impl Outline for Ddim {
    fn num_steps(&self) -> usize {
        self.steps
    }

    grid_outline!();
}

impl<S: NoisedScore + ?Sized> Sampler<S> for Ddim {
    type State = ChainState;

    fn init(&self, _source: &S, x0: Array2<f64>) -> ChainState {
        ChainState::new(x0)
    }

    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        mut state: ChainState,
        rng: &mut R,
    ) -> (ChainState, Info) {
        let (n, d) = state.x.dim();
        let step = Interval::of(&self.schedule, self.steps, state.step);
        let ((a0, a1), (s0, s1)) = (step.alpha, step.sigma);
        let z = (self.eta > 0.0).then(|| standard_normal(n, d, rng));
        let c = if s1 > 0.0 {
            self.eta * s1 * (s0 * s0 - s1 * s1).max(0.0).sqrt() / s0
        } else {
            0.0
        };
        let keep = (s1 * s1 - c * c).max(0.0).sqrt();
        let s = score_in_y(source, state.x.view(), a0, s0);
        Zip::from(&mut state.x).and(&s).for_each(|x, &s| {
            let y = *x / a0;
            let eps = -s0 * s;
            let y0 = y - s0 * eps;
            *x = y0 + keep * eps;
        });
        if let Some(z) = z {
            state.x.scaled_add(c, &z);
        }
        if a1 != 1.0 {
            state.x *= a1;
        }
        let info = state.advance(step.h, Some(s0), 1);
        (state, info)
    }

    grid_finish!();
}

/// Stochastic churn of [`Heun`] (Karras et al. 2022, Algorithm 2): at each grid level σᵢ in
/// \[`s_tmin`, `s_tmax`\], the noise is raised to σ̂ = σᵢ(1 + γ), γ = min(`s_churn`/N, √2 − 1), by
/// adding √(σ̂² − σᵢ²) `s_noise` z before the step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Churn {
    /// S_churn ≥ 0 (0: deterministic).
    pub s_churn: f64,
    /// S_tmin ≥ 0.
    pub s_tmin: f64,
    /// S_tmax ≥ S_tmin (may be ∞).
    pub s_tmax: f64,
    /// S_noise > 0.
    pub s_noise: f64,
}

impl Default for Churn {
    /// No churn, with Karras et al.'s defaults for the rest (S_tmin = 0, S_tmax = ∞, S_noise = 1).
    fn default() -> Self {
        Churn {
            s_churn: 0.0,
            s_tmin: 0.0,
            s_tmax: f64::INFINITY,
            s_noise: 1.0,
        }
    }
}

/// EDM's sampler (Karras et al. 2022, Algorithm 2): Heun's method on the probability-flow ODE
/// dy/dσ̃ = −σ̃ s(y, σ̃) down the schedule's grid of noise levels, in y = x/α, with optional
/// stochastic churn ([`Churn`]). With d = −σ̂ s(ŷ, σ̂), y′ = ŷ + (σᵢ₊₁ − σ̂) d, corrected to
/// ŷ + (σᵢ₊₁ − σ̂)(d + d′)/2 with d′ = −σᵢ₊₁ s(y′, σᵢ₊₁) unless σᵢ₊₁ = 0; then x′ = α(tᵢ₊₁) y′.
///
/// With S_churn = 0 it draws nothing and equals [`crate::Ode`] with `heun` on the same grid.
/// Churn moves ŷ to a higher noise level σ̂ ≤ √2 σᵢ than the grid's, so the score is also asked
/// for there.
///
/// # Examples
/// ```
/// use scorelab_samplers::{Churn, Heun, Outline, Schedule};
/// let edm = Heun::new(Schedule::edm(scorelab_core::SigmaRange { min: 0.002, max: 80.0 }, 7.0)?, 18, Churn::default(), false)?;
/// // 17 steps of 2 evaluations and a last Euler step to σ = 0.
/// assert_eq!((edm.num_steps(), edm.target_sigma()), (18, None));
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heun {
    pub(crate) schedule: Schedule,
    pub(crate) steps: usize,
    pub(crate) churn: Churn,
    pub(crate) denoise: bool,
}

impl Heun {
    /// N = `steps` steps with `churn`.
    ///
    /// # Errors
    /// `s_churn` < 0, `s_tmin` < 0, `s_tmax` < `s_tmin`, `s_noise` ≤ 0 (each by name); `steps` = 0;
    /// `denoise` on a grid that ends at σ̃ = 0.
    pub fn new(
        schedule: Schedule,
        steps: usize,
        churn: Churn,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        let bad = |field: &str, msg: String| Err(ParamError::invalid(field, msg));
        if !(churn.s_churn.is_finite() && churn.s_churn >= 0.0) {
            return bad(
                "s_churn",
                format!("must be a finite number ≥ 0, got {}", churn.s_churn),
            );
        }
        if !(churn.s_tmin.is_finite() && churn.s_tmin >= 0.0) {
            return bad(
                "s_tmin",
                format!("must be a finite number ≥ 0, got {}", churn.s_tmin),
            );
        }
        if churn.s_tmax.is_nan() || churn.s_tmax < churn.s_tmin {
            return bad(
                "s_tmax",
                format!("must be ≥ s_tmin = {}, got {}", churn.s_tmin, churn.s_tmax),
            );
        }
        crate::positive(churn.s_noise, "s_noise")?;
        Ok(Heun {
            schedule,
            steps: at_least_one(steps, "steps")?,
            churn,
            denoise: check_denoise(&schedule, denoise)?,
        })
    }

    /// γᵢ at grid level σ.
    fn gamma(&self, sigma: f64) -> f64 {
        let c = &self.churn;
        if c.s_churn > 0.0 && sigma >= c.s_tmin && sigma <= c.s_tmax {
            (c.s_churn / self.steps as f64).min(std::f64::consts::SQRT_2 - 1.0)
        } else {
            0.0
        }
    }

    /// The largest noise level the score is asked for: maxₖ σₖ(1 + γₖ) over the grid (churn can
    /// lift a level below `s_tmax` above σ̃(T)).
    pub fn max_sigma(&self) -> f64 {
        (0..self.steps)
            .map(|k| {
                let s = self.schedule.sigma(self.schedule.time(self.steps, k));
                s * (1.0 + self.gamma(s))
            })
            .fold(0.0, f64::max)
    }
}

impl Heun {
    fn sigma_span(&self) -> (f64, f64) {
        (self.schedule.sigma_range().0, self.max_sigma())
    }
}

impl Outline for Heun {
    fn num_steps(&self) -> usize {
        self.steps
    }

    grid_outline!();
}

impl<S: NoisedScore + ?Sized> Sampler<S> for Heun {
    type State = ChainState;

    fn init(&self, _source: &S, x0: Array2<f64>) -> ChainState {
        ChainState::new(x0)
    }

    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        mut state: ChainState,
        rng: &mut R,
    ) -> (ChainState, Info) {
        let (n, d) = state.x.dim();
        let step = Interval::of(&self.schedule, self.steps, state.step);
        let (s_i, s_next) = step.sigma;
        let mut y = step.to_y(&state.x);
        let mut s_hat = s_i;
        if self.churn.s_churn > 0.0 {
            let z = standard_normal(n, d, rng);
            let gamma = self.gamma(s_i);
            if gamma > 0.0 {
                s_hat = s_i * (1.0 + gamma);
                let scale = (s_hat * s_hat - s_i * s_i).sqrt() * self.churn.s_noise;
                y.scaled_add(scale, &z);
            }
        }
        let dir = -s_hat * &score_in_y(source, y.view(), 1.0, s_hat);
        let dt = s_next - s_hat;
        let mut next = y.clone();
        next.scaled_add(dt, &dir);
        let mut evals = 1;
        if s_next != 0.0 {
            let dir2 = -s_next * &score_in_y(source, next.view(), 1.0, s_next);
            next = y;
            Zip::from(&mut next)
                .and(&dir)
                .and(&dir2)
                .for_each(|y, &a, &b| *y += dt * (0.5 * a + 0.5 * b));
            evals = 2;
        }
        state.x = step.scale_back(next);
        // The σ̃ step actually integrated: from σ̂ (above σᵢ with churn) to σᵢ₊₁.
        let info = state.advance(s_hat - s_next, Some(s_hat), evals);
        (state, info)
    }

    grid_finish!();
}

impl crate::OnGrid for Ddim {
    fn grid(&self) -> (Schedule, usize) {
        (self.schedule, self.steps)
    }
}

impl crate::OnGrid for Heun {
    fn grid(&self) -> (Schedule, usize) {
        (self.schedule, self.steps)
    }
}

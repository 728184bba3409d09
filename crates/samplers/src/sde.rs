//! The variance-exploding SDE and its samplers (Song et al. 2021): the reverse SDE, the
//! predictor–corrector sampler and the probability-flow ODE.

use crate::langevin::ula_move;
use crate::{at_least_one, positive, standard_normal, ChainState, Chains, Info, Outline, Sampler};
use ndarray::{Array2, ArrayView2, Zip};
use rand::Rng;
use scorelab_core::{NoisedScore, ParamError};

/// The variance-exploding (VE) noise schedule σ(t) = σ_min (σ_max/σ_min)ᵗ, t ∈ \[0, 1\].
///
/// The forward SDE dx = g(t) dW with g(t)² = dσ²/dt = 2σ(t)² ln(σ_max/σ_min) carries p_{σ_min} at
/// t = 0 to p_{σ_max} at t = 1, where p_σ = p ∗ N(0, σ²I); for σ_max much larger than the data's
/// spread, p_{σ_max} ≈ N(0, σ_max² I), the prior. Its reverse in time,
/// dx = −g(t)² ∇log p_{σ(t)}(x) dt + g(t) dW̄, and the probability-flow ODE
/// dx/dt = −½ g(t)² ∇log p_{σ(t)}(x) have the same marginals p_{σ(t)}.
///
/// # Examples
/// ```
/// let ve = scorelab_samplers::VeSchedule::new(20.0, 1.0)?;
/// assert_eq!((ve.sigma(0.0), ve.sigma(1.0)), (1.0, 20.0));
/// assert!((ve.g2(1.0) - 2.0 * 400.0 * 20f64.ln()).abs() < 1e-9);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VeSchedule {
    sigma_max: f64,
    sigma_min: f64,
}

impl VeSchedule {
    /// σ(t) from σ_min at t = 0 to σ_max at t = 1.
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max, both finite (naming `sigma_min` or `sigma_max`).
    pub fn new(sigma_max: f64, sigma_min: f64) -> Result<Self, ParamError> {
        positive(sigma_min, "sigma_min")?;
        if !(sigma_max.is_finite() && sigma_max > sigma_min) {
            return Err(ParamError::invalid(
                "sigma_max",
                format!("must be finite and greater than sigma_min = {sigma_min}, got {sigma_max}"),
            ));
        }
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

    /// σ_max.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    /// σ_min.
    pub fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    /// `n` draws from the prior N(0, σ_max² I), row by row.
    pub fn prior<R: Rng + ?Sized>(&self, n: usize, d: usize, rng: &mut R) -> Array2<f64> {
        standard_normal(n, d, rng) * self.sigma_max
    }
}

/// Tweedie's formula: E\[x₀ | x\] = x + σ² ∇log p_σ(x) for x = x₀ + σz, applied with s(x, σ).
///
/// # Examples
/// ```
/// use scorelab_densities::Gaussian;
/// // p = N(0, 1), σ = 1: E[x₀ | x] = x/2.
/// let x = scorelab_samplers::tweedie(&Gaussian::standard(1), ndarray::array![[3.0]].view(), 1.0);
/// assert!((x[[0, 0]] - 1.5).abs() < 1e-15);
/// ```
pub fn tweedie<S: NoisedScore + ?Sized>(source: &S, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
    let s = source.noised_score(x, sigma);
    let mut out = x.to_owned();
    out.scaled_add(sigma * sigma, &s);
    out
}

/// The time step h = 1/N and the time t = 1 − k h of step `k` of N = `steps`.
fn grid(steps: usize, k: usize) -> (f64, f64) {
    let h = 1.0 / steps as f64;
    (h, 1.0 - k as f64 * h)
}

/// One Euler–Maruyama step of the reverse VE SDE from t to t − h:
/// x ← x + g(t)² s(x, σ(t)) h + g(t) √h z.
fn em_move<S: NoisedScore + ?Sized>(
    source: &S,
    schedule: &VeSchedule,
    x: &mut Array2<f64>,
    t: f64,
    h: f64,
    z: &Array2<f64>,
) -> f64 {
    let sigma = schedule.sigma(t);
    let g2 = schedule.g2(t);
    let s = source.noised_score(x.view(), sigma);
    let (a, b) = (g2 * h, (g2 * h).sqrt());
    Zip::from(x).and(&s).and(z).for_each(|x, &s, &z| {
        *x += a * s + b * z;
    });
    sigma
}

macro_rules! denoising_outline {
    () => {
        fn extra_score_evals(&self) -> usize {
            usize::from(self.denoise)
        }

        fn target_sigma(&self) -> Option<f64> {
            (!self.denoise).then(|| self.schedule.sigma_min())
        }
    };
}

macro_rules! denoising_finish {
    () => {
        fn finish(&self, source: &S, state: ChainState) -> Array2<f64> {
            if self.denoise {
                tweedie(source, state.positions(), self.schedule.sigma_min())
            } else {
                state.x
            }
        }
    };
}

/// Euler–Maruyama on the reverse VE SDE: N steps of size h = 1/N from t = 1 to t = 0,
/// x ← x + g(t)² s(x, σ(t)) h + g(t) √h z, started from the prior N(0, σ_max² I)
/// ([`VeSchedule::prior`]). The output targets p_{σ_min}, or p with `denoise`.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{sample, ReverseSde, VeSchedule};
/// let sde = ReverseSde::new(VeSchedule::new(10.0, 0.01)?, 500, false)?;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let x0 = VeSchedule::new(10.0, 0.01)?.prior(2000, 1, &mut rng);
/// let x = sample(&sde, &Gaussian::standard(1), x0, &mut rng);
/// let var = x.column(0).mapv(|v| v * v).mean().unwrap();
/// assert!((var - 1.0).abs() < 0.15);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReverseSde {
    schedule: VeSchedule,
    steps: usize,
    denoise: bool,
}

impl ReverseSde {
    /// N = `steps` Euler–Maruyama steps on `schedule`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1.
    pub fn new(schedule: VeSchedule, steps: usize, denoise: bool) -> Result<Self, ParamError> {
        Ok(ReverseSde {
            schedule,
            steps: at_least_one(steps, "steps")?,
            denoise,
        })
    }
}

impl Outline for ReverseSde {
    fn num_steps(&self) -> usize {
        self.steps
    }

    denoising_outline!();
}

impl<S: NoisedScore + ?Sized> Sampler<S> for ReverseSde {
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
        let z = standard_normal(n, d, rng);
        let (h, t) = grid(self.steps, state.step);
        let sigma = em_move(source, &self.schedule, &mut state.x, t, h, &z);
        let info = state.advance(h, Some(sigma), 1);
        (state, info)
    }

    denoising_finish!();
}

/// The predictor–corrector sampler (Song et al. 2021, Algorithm 2 for VE): at each of N time steps,
/// `corrector_steps` Langevin corrector steps at σ(t), then one Euler–Maruyama step of the reverse
/// SDE ([`ReverseSde`]).
///
/// The corrector follows the authors' code: x ← x + ε s + √(2ε) z with
/// ε = 2 (r ‖z‖ / ‖s‖)², r the target signal-to-noise ratio `snr` and the norms averaged over the
/// batch, so the chains share one step size per corrector step. Its output targets p_{σ_min}, or
/// p with `denoise`.
///
/// # Examples
/// ```
/// use scorelab_samplers::{Pc, Outline, VeSchedule};
/// let pc = Pc::new(VeSchedule::new(20.0, 1.0)?, 100, 1, 0.16, false)?;
/// assert_eq!(pc.num_steps(), 100);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pc {
    schedule: VeSchedule,
    steps: usize,
    corrector_steps: usize,
    snr: f64,
    denoise: bool,
}

impl Pc {
    /// N = `steps` predictor steps, each after `corrector_steps` corrector steps at ratio `snr`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1 and `snr` > 0 (`corrector_steps` = 0 is the reverse SDE alone).
    pub fn new(
        schedule: VeSchedule,
        steps: usize,
        corrector_steps: usize,
        snr: f64,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        Ok(Pc {
            schedule,
            steps: at_least_one(steps, "steps")?,
            corrector_steps,
            snr: positive(snr, "snr")?,
            denoise,
        })
    }
}

/// The mean of the rows' Euclidean norms.
fn mean_norm(a: &Array2<f64>) -> f64 {
    a.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum::<f64>() / a.nrows() as f64
}

impl Outline for Pc {
    fn num_steps(&self) -> usize {
        self.steps
    }

    denoising_outline!();
}

impl<S: NoisedScore + ?Sized> Sampler<S> for Pc {
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
        let (h, t) = grid(self.steps, state.step);
        let sigma = self.schedule.sigma(t);
        for _ in 0..self.corrector_steps {
            let z = standard_normal(n, d, rng);
            let s = source.noised_score(state.x.view(), sigma);
            let ratio = self.snr * mean_norm(&z) / mean_norm(&s);
            let eps = 2.0 * ratio * ratio;
            // x + ε s + √(2ε) z is the ULA move at step 2ε.
            if eps.is_finite() {
                ula_move(&mut state.x, &s, &z, 2.0 * eps);
            }
        }
        let z = standard_normal(n, d, rng);
        em_move(source, &self.schedule, &mut state.x, t, h, &z);
        let info = state.advance(h, Some(sigma), 1 + self.corrector_steps);
        (state, info)
    }

    denoising_finish!();
}

/// The probability-flow ODE dx/dt = −½ g(t)² s(x, σ(t)) integrated from t = 1 to t = 0 by Heun's
/// method with N fixed steps of size h = 1/N (two score evaluations per step):
/// with v(x, t) = ½ g(t)² s(x, σ(t)), x̃ = x + h v(x, t) and x ← x + (h/2)(v(x, t) + v(x̃, t − h)).
///
/// Deterministic after the prior draw; its local error is O(h³), so halving h divides the global
/// error by about 4. The output targets p_{σ_min}, or p with `denoise`.
///
/// # Examples
/// ```
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{sample, Ode, VeSchedule};
/// // On N(0, 1) the exact flow scales x by √((1 + σ_min²)/(1 + σ_max²)).
/// let ode = Ode::new(VeSchedule::new(10.0, 0.1)?, 200, false)?;
/// let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
/// let x = sample(&ode, &Gaussian::standard(1), ndarray::array![[10.0]], &mut rng);
/// assert!((x[[0, 0]] - 10.0 * (1.01f64 / 101.0).sqrt()).abs() < 1e-3);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ode {
    schedule: VeSchedule,
    steps: usize,
    denoise: bool,
}

impl Ode {
    /// N = `steps` Heun steps on `schedule`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1.
    pub fn new(schedule: VeSchedule, steps: usize, denoise: bool) -> Result<Self, ParamError> {
        Ok(Ode {
            schedule,
            steps: at_least_one(steps, "steps")?,
            denoise,
        })
    }

    fn velocity<S: NoisedScore + ?Sized>(
        &self,
        source: &S,
        x: ArrayView2<f64>,
        t: f64,
    ) -> Array2<f64> {
        let s = source.noised_score(x, self.schedule.sigma(t));
        s * (0.5 * self.schedule.g2(t))
    }
}

impl Outline for Ode {
    fn num_steps(&self) -> usize {
        self.steps
    }

    denoising_outline!();
}

impl<S: NoisedScore + ?Sized> Sampler<S> for Ode {
    type State = ChainState;

    fn init(&self, _source: &S, x0: Array2<f64>) -> ChainState {
        ChainState::new(x0)
    }

    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        mut state: ChainState,
        _rng: &mut R,
    ) -> (ChainState, Info) {
        let (h, t) = grid(self.steps, state.step);
        let t_next = (t - h).max(0.0);
        let v0 = self.velocity(source, state.x.view(), t);
        let mut predicted = state.x.clone();
        predicted.scaled_add(h, &v0);
        let v1 = self.velocity(source, predicted.view(), t_next);
        Zip::from(&mut state.x)
            .and(&v0)
            .and(&v1)
            .for_each(|x, &a, &b| *x += 0.5 * h * (a + b));
        let info = state.advance(h, Some(self.schedule.sigma(t)), 2);
        (state, info)
    }

    denoising_finish!();
}

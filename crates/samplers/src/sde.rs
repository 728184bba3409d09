//! The samplers of the reverse SDE and of the probability-flow ODE for any [`Schedule`]
//! (Song et al. 2021): Euler–Maruyama on the reverse SDE, the predictor–corrector sampler, and
//! the ODE with Euler, Heun or adaptive Dormand–Prince steps.
//!
//! In the variables y = x/α and σ̃ of the perturbation kernel, the probability-flow ODE of every
//! schedule is the same, dy/dσ̃ = −σ̃ s(y, σ̃) (Karras et al. 2022, eq. 4 with s = 1: from
//! dx/dt = f x − ½ g² ∇log p_t(x), f = α̇/α and g² = 2α²σ̃σ̃̇); the schedules differ only in
//! which σ̃'s the grid visits and in the scale α that maps y back to x.

use crate::langevin::ula_move;
use crate::solve::{euler_step, heun_step, integrate, Rk45};
use crate::Schedule;
use crate::{at_least_one, positive, standard_normal, ChainState, Chains, Info, Outline, Sampler};
use ndarray::{Array2, ArrayView2, Zip};
use rand::Rng;
use scorelab_core::{NoisedScore, ParamError};

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

/// Tweedie's formula for x_t = α(x₀ + σ̃z): E\[x₀ | x_t\] = y + σ̃² s(y, σ̃) with y = x_t/α.
pub(crate) fn denoised<S: NoisedScore + ?Sized>(
    source: &S,
    x: ArrayView2<f64>,
    alpha: f64,
    sigma: f64,
) -> Array2<f64> {
    if alpha == 1.0 {
        tweedie(source, x, sigma)
    } else {
        tweedie(source, (&x / alpha).view(), sigma)
    }
}

/// s(x/α, σ̃) (the score of p_σ̃ at y = x/α), skipping the division where α = 1.
pub(crate) fn score_in_y<S: NoisedScore + ?Sized>(
    source: &S,
    x: ArrayView2<f64>,
    alpha: f64,
    sigma: f64,
) -> Array2<f64> {
    if alpha == 1.0 {
        source.noised_score(x, sigma)
    } else {
        source.noised_score((&x / alpha).view(), sigma)
    }
}

/// `Err` naming `denoise` where the schedule's grid already ends at σ̃ = 0.
pub(crate) fn check_denoise(schedule: &Schedule, denoise: bool) -> Result<bool, ParamError> {
    if denoise && schedule.ends_at_zero() {
        return Err(ParamError::invalid(
            "denoise",
            format!(
                "the {} grid already ends at σ̃ = 0 (its last step is Tweedie's), so there is nothing left to denoise; remove denoise",
                schedule.kind()
            ),
        ));
    }
    Ok(denoise)
}

/// Step k of N on the schedule's grid: (t_k, the step h_k = t_k − t_{k+1} > 0).
///
/// On the uniform grids h is (T − t_end)/N for every step, so that t_k = T − k h exactly.
pub(crate) fn grid_step(schedule: &Schedule, steps: usize, k: usize) -> (f64, f64) {
    let t = schedule.time(steps, k);
    if schedule.ends_at_zero() {
        (t, t - schedule.time(steps, k + 1))
    } else {
        (t, (schedule.t_max() - schedule.t_end()) / steps as f64)
    }
}

/// Step k of N on the schedule's grid in the kernel's variables: the step h (as [`grid_step`]), and
/// α and σ̃ at its start tₖ and end tₖ₊₁.
pub(crate) struct Interval {
    pub h: f64,
    pub alpha: (f64, f64),
    pub sigma: (f64, f64),
}

impl Interval {
    pub fn of(schedule: &Schedule, steps: usize, k: usize) -> Self {
        let (t, h) = grid_step(schedule, steps, k);
        let t_next = schedule.time(steps, k + 1);
        Interval {
            h,
            alpha: (schedule.alpha(t), schedule.alpha(t_next)),
            sigma: (schedule.sigma(t), schedule.sigma(t_next)),
        }
    }

    /// y = x/α at the start (a copy; no division where α = 1).
    pub fn to_y(&self, x: &Array2<f64>) -> Array2<f64> {
        if self.alpha.0 == 1.0 {
            x.clone()
        } else {
            x / self.alpha.0
        }
    }

    /// x = α y at the end.
    pub fn scale_back(&self, y: Array2<f64>) -> Array2<f64> {
        if self.alpha.1 == 1.0 {
            y
        } else {
            y * self.alpha.1
        }
    }
}

/// One Euler–Maruyama step of the reverse SDE dx = \[f x − g² ∇log p_t(x)\] dt + g dW̄ from t to
/// t − h: x ← (1 − f h) x + g² h s(x/α, σ̃)/α + √(g² h) z. Returns σ̃(t).
fn em_move<S: NoisedScore + ?Sized>(
    source: &S,
    schedule: &Schedule,
    x: &mut Array2<f64>,
    t: f64,
    h: f64,
    z: &Array2<f64>,
) -> f64 {
    let (alpha, sigma) = (schedule.alpha(t), schedule.sigma(t));
    let g2 = schedule.g2(t);
    let s = score_in_y(source, x.view(), alpha, sigma);
    let (c, a, b) = (1.0 - schedule.drift(t) * h, g2 * h / alpha, (g2 * h).sqrt());
    Zip::from(x).and(&s).and(z).for_each(|x, &s, &z| {
        *x = c * *x + (a * s + b * z);
    });
    sigma
}

/// The outline of a sampler that ends on its schedule's grid, with an optional Tweedie step.
macro_rules! grid_outline {
    () => {
        fn extra_score_evals(&self) -> usize {
            usize::from(self.denoise)
        }

        fn target_sigma(&self) -> Option<f64> {
            let s = &self.schedule;
            (!self.denoise && !s.ends_at_zero()).then(|| s.sigma(s.t_end()))
        }

        fn target_scale(&self) -> f64 {
            if self.denoise {
                1.0
            } else {
                self.schedule.alpha(self.schedule.t_end())
            }
        }

        fn prior_std(&self) -> Option<f64> {
            Some(self.schedule.prior_std())
        }

        fn start(&self) -> Option<(f64, f64)> {
            let t = self.schedule.t_max();
            Some((self.schedule.alpha(t), self.schedule.sigma(t)))
        }

        fn sigma_needed(&self) -> Option<(f64, f64)> {
            Some(self.sigma_span())
        }
    };
}

macro_rules! grid_finish {
    () => {
        fn finish(&self, source: &S, state: ChainState) -> Array2<f64> {
            if self.denoise {
                let t = self.schedule.t_end();
                denoised(
                    source,
                    state.positions(),
                    self.schedule.alpha(t),
                    self.schedule.sigma(t),
                )
            } else {
                state.x
            }
        }
    };
}
pub(crate) use {grid_finish, grid_outline};

/// Euler–Maruyama on the reverse SDE of a [`Schedule`]: N steps down its time grid,
/// x ← (1 − f(t)h) x + g(t)² h ∇log p_t(x) + g(t) √h z with ∇log p_t(x) = s(x/α, σ̃)/α, started
/// from the schedule's prior. For `ve` this is NCSN's reverse VE SDE (f = 0, α = 1). The output
/// targets p_t at the grid's end (p_{σ_min} for `ve`, α p_σ̃ at t_min for `vp`/`subvp`, p for
/// `edm`), or p with `denoise`.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{sample, ReverseSde, Schedule};
/// let vp = Schedule::vp(0.1, 20.0, 1e-3)?;
/// let sde = ReverseSde::new(vp, 500, false)?;
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let x = sample(&sde, &Gaussian::standard(1), vp.prior(2000, 1, &mut rng), &mut rng);
/// let var = x.column(0).mapv(|v| v * v).mean().unwrap();
/// assert!((var - 1.0).abs() < 0.15);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReverseSde {
    pub(crate) schedule: Schedule,
    pub(crate) steps: usize,
    pub(crate) denoise: bool,
}

impl ReverseSde {
    /// N = `steps` Euler–Maruyama steps on `schedule`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1; `denoise` on a grid that ends at σ̃ = 0.
    pub fn new(
        schedule: impl Into<Schedule>,
        steps: usize,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        let schedule = schedule.into();
        Ok(ReverseSde {
            schedule,
            steps: at_least_one(steps, "steps")?,
            denoise: check_denoise(&schedule, denoise)?,
        })
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }
}

impl ReverseSde {
    fn sigma_span(&self) -> (f64, f64) {
        self.schedule.sigma_range()
    }
}

impl Outline for ReverseSde {
    fn num_steps(&self) -> usize {
        self.steps
    }

    grid_outline!();
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
        let (t, h) = grid_step(&self.schedule, self.steps, state.step);
        let sigma = em_move(source, &self.schedule, &mut state.x, t, h, &z);
        let info = state.advance(h, Some(sigma), 1);
        (state, info)
    }

    grid_finish!();
}

/// The predictor–corrector sampler (Song et al. 2021, Algorithm 2 for VE, 3 for VP): at each of
/// N time steps, `corrector_steps` Langevin corrector steps on p_t, then one Euler–Maruyama step
/// of the reverse SDE ([`ReverseSde`]).
///
/// The corrector follows the authors' code: x ← x + ε g + √(2ε) z with g = ∇log p_t(x) and
/// ε = 2 (r ‖z‖ / ‖g‖)², r the target signal-to-noise ratio `snr` and the norms averaged over the
/// batch, so the chains share one step size per corrector step. (For VP their code also
/// multiplies ε by the discrete 1 − βᵢ, which differs from 1 by at most β_max/N; this sampler does
/// not.) Its output targets what [`ReverseSde`]'s does.
///
/// # Examples
/// ```
/// use scorelab_samplers::{Pc, Outline, Schedule};
/// let pc = Pc::new(Schedule::ve(scorelab_core::SigmaRange { min: 1.0, max: 20.0 })?, 100, 1, 0.16, false)?;
/// assert_eq!(pc.num_steps(), 100);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pc {
    pub(crate) schedule: Schedule,
    pub(crate) steps: usize,
    pub(crate) corrector_steps: usize,
    pub(crate) snr: f64,
    pub(crate) denoise: bool,
}

impl Pc {
    /// N = `steps` predictor steps, each after `corrector_steps` corrector steps at ratio `snr`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1, `snr` > 0 and `corrector_steps` ≤ [`Pc::MAX_CORRECTOR_STEPS`]
    /// (`corrector_steps` = 0 is the reverse SDE alone); `denoise` on a grid that ends at σ̃ = 0.
    pub fn new(
        schedule: impl Into<Schedule>,
        steps: usize,
        corrector_steps: usize,
        snr: f64,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        let schedule = schedule.into();
        if corrector_steps > Self::MAX_CORRECTOR_STEPS {
            return Err(ParamError::invalid(
                "corrector_steps",
                format!(
                    "{corrector_steps} corrector steps per predictor step is more than {} (Song et al. use 1); a run stops only between predictor steps, so one step must stay short: lower it",
                    Self::MAX_CORRECTOR_STEPS
                ),
            ));
        }
        Ok(Pc {
            schedule,
            steps: at_least_one(steps, "steps")?,
            corrector_steps,
            snr: positive(snr, "snr")?,
            denoise: check_denoise(&schedule, denoise)?,
        })
    }
}

impl Pc {
    /// The most corrector steps per predictor step: a step is the unit a run can be stopped
    /// after, so its work is bounded.
    pub const MAX_CORRECTOR_STEPS: usize = 1000;
}

/// The mean of the rows' Euclidean norms.
fn mean_norm(a: &Array2<f64>) -> f64 {
    a.rows().into_iter().map(|r| r.dot(&r).sqrt()).sum::<f64>() / a.nrows() as f64
}

impl Pc {
    fn sigma_span(&self) -> (f64, f64) {
        self.schedule.sigma_range()
    }
}

impl Outline for Pc {
    fn num_steps(&self) -> usize {
        self.steps
    }

    grid_outline!();
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
        let (t, h) = grid_step(&self.schedule, self.steps, state.step);
        let (alpha, sigma) = (self.schedule.alpha(t), self.schedule.sigma(t));
        for _ in 0..self.corrector_steps {
            let z = standard_normal(n, d, rng);
            let mut g = score_in_y(source, state.x.view(), alpha, sigma);
            if alpha != 1.0 {
                g /= alpha;
            }
            let ratio = self.snr * mean_norm(&z) / mean_norm(&g);
            let eps = 2.0 * ratio * ratio;
            // x + ε g + √(2ε) z is the ULA move at step 2ε.
            if eps.is_finite() {
                ula_move(&mut state.x, &g, &z, 2.0 * eps);
            }
        }
        let z = standard_normal(n, d, rng);
        em_move(source, &self.schedule, &mut state.x, t, h, &z);
        let info = state.advance(h, Some(sigma), 1 + self.corrector_steps);
        (state, info)
    }

    grid_finish!();
}

/// The solver of the [`Ode`] sampler.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OdeSolver {
    /// Euler's method on the schedule's grid (one evaluation per step).
    Euler,
    /// Heun's method on the schedule's grid (two evaluations per step; one on a last step to
    /// σ̃ = 0, which is Euler's, as in Karras et al.'s Algorithm 1).
    Heun,
    /// Adaptive Dormand–Prince 5(4) ([`crate::solve::integrate`]); the grid is not used.
    Rk45(Rk45),
}

impl OdeSolver {
    /// The name as a config spells it.
    pub fn name(&self) -> &'static str {
        match self {
            OdeSolver::Euler => "euler",
            OdeSolver::Heun => "heun",
            OdeSolver::Rk45(_) => "rk45",
        }
    }
}

/// The probability-flow ODE dy/dσ̃ = −σ̃ s(y, σ̃) in y = x/α (module docs), integrated from the
/// schedule's start to its end: `euler` or `heun` (the default) on its grid of N steps, or
/// adaptive `rk45` (one [`Sampler::step`] that runs the whole integration; on the `edm` schedule
/// it integrates to σ_min and then takes the grid's last Euler step to 0).
///
/// Deterministic after the prior draw. With `euler` it is DDIM with η = 0 ([`crate::Ddim`]); with
/// `heun`, Karras et al.'s Algorithm 2 without churn ([`crate::Heun`]). For `ve` it is NCSN's
/// probability-flow ODE dx/dt = −½ g(t)² s(x, σ(t)), here integrated in σ rather than t. The
/// output targets what [`ReverseSde`]'s does.
///
/// # Examples
/// ```
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{sample, Ode, Schedule};
/// // On N(0, 1) the exact flow scales x by √((1 + σ_min²)/(1 + σ_max²)).
/// let ode = Ode::new(Schedule::ve(scorelab_core::SigmaRange { min: 0.1, max: 10.0 })?, 200, false)?;
/// let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
/// let x = sample(&ode, &Gaussian::standard(1), ndarray::array![[10.0]], &mut rng);
/// assert!((x[[0, 0]] - 10.0 * (1.01f64 / 101.0).sqrt()).abs() < 1e-3);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ode {
    pub(crate) schedule: Schedule,
    pub(crate) solver: OdeSolver,
    pub(crate) steps: usize,
    pub(crate) denoise: bool,
}

impl Ode {
    /// N = `steps` Heun steps on `schedule`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1; `denoise` on a grid that ends at σ̃ = 0.
    pub fn new(
        schedule: impl Into<Schedule>,
        steps: usize,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        Self::with_solver(schedule, OdeSolver::Heun, steps, denoise)
    }

    /// The ODE with `solver`; `steps` is the grid's N for `euler` and `heun` and unused by `rk45`.
    ///
    /// # Errors
    /// Unless `steps` ≥ 1; `denoise` on a grid that ends at σ̃ = 0.
    pub fn with_solver(
        schedule: impl Into<Schedule>,
        solver: OdeSolver,
        steps: usize,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        let schedule = schedule.into();
        Ok(Ode {
            schedule,
            solver,
            steps: at_least_one(steps, "steps")?,
            denoise: check_denoise(&schedule, denoise)?,
        })
    }

    /// The solver.
    pub fn solver(&self) -> OdeSolver {
        self.solver
    }

    fn rk45<S: NoisedScore + ?Sized>(
        &self,
        source: &S,
        x: ArrayView2<f64>,
        tol: &Rk45,
    ) -> (Array2<f64>, usize) {
        let s = &self.schedule;
        let (t0, t1) = (s.t_max(), s.t_end());
        let (a0, a1) = (s.alpha(t0), s.alpha(t1));
        let (s0, s1) = (s.sigma(t0), s.sigma(t1));
        let f = |y: ArrayView2<f64>, sigma: f64| source.noised_score(y, sigma) * -sigma;
        let y0 = if a0 == 1.0 { x.to_owned() } else { &x / a0 };
        match integrate(&f, y0, s0, s1, tol) {
            Ok((mut y, stats)) => {
                let mut evals = stats.evals;
                if s.ends_at_zero() {
                    y = euler_step(&f, y.view(), s1, -s1);
                    evals += 1;
                }
                (y * a1, evals)
            }
            // A score that is not finite along the path, or tolerances it cannot meet in
            // `max_steps`: the chains are marked as failed.
            Err(_) => (Array2::from_elem(x.raw_dim(), f64::NAN), 0),
        }
    }
}

impl Ode {
    fn sigma_span(&self) -> (f64, f64) {
        self.schedule.sigma_range()
    }
}

impl Outline for Ode {
    fn num_steps(&self) -> usize {
        match self.solver {
            OdeSolver::Rk45(_) => 1,
            _ => self.steps,
        }
    }

    grid_outline!();
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
        let s = &self.schedule;
        if let OdeSolver::Rk45(tol) = self.solver {
            let (x, evals) = self.rk45(source, state.x.view(), &tol);
            state.x = x;
            let info = state.advance(s.t_max() - s.t_end(), Some(s.sigma(s.t_max())), evals);
            return (state, info);
        }
        let step = Interval::of(s, self.steps, state.step);
        let (s0, s1) = step.sigma;
        let f = |y: ArrayView2<f64>, sigma: f64| source.noised_score(y, sigma) * -sigma;
        let y = step.to_y(&state.x);
        let (y, evals) = match self.solver {
            OdeSolver::Heun if s1 != 0.0 => (heun_step(&f, y.view(), s0, s1 - s0), 2),
            _ => (euler_step(&f, y.view(), s0, s1 - s0), 1),
        };
        state.x = step.scale_back(y);
        let info = state.advance(step.h, Some(s0), evals);
        (state, info)
    }

    grid_finish!();
}

impl crate::OnGrid for ReverseSde {
    fn grid(&self) -> (Schedule, usize) {
        (self.schedule, self.steps)
    }
}

impl crate::OnGrid for Pc {
    fn grid(&self) -> (Schedule, usize) {
        (self.schedule, self.steps)
    }
}

//! # scorelab-samplers: turning a score into samples
//!
//! Every sampler here moves a batch of n chains, stored as the rows of an `(n, d)` array, using only
//! a score. They share one shape (blackjax's `SamplingAlgorithm`): a validated parameter struct
//! with a pure pair [`Sampler::init`] / [`Sampler::step`] over an explicit state (and an [`Outline`] of the run), each step
//! reporting an [`Info`] (step size, σ, acceptance rate, score evaluations). The random number
//! generator is always an argument; with `ChaCha8Rng` and a fixed seed a run is reproducible bit for
//! bit. Each update draws its Gaussian noise z as one `(n, d)` block, row by row, before it
//! evaluates the score (MALA then draws one uniform per chain; pc draws one block per corrector step,
//! then one for the predictor; the ODE draws nothing).
//!
//! | sampler | needs | update (z ∼ N(0, I)) |
//! | --- | --- | --- |
//! | [`Langevin`] (unadjusted, ULA) | s(x) ([`Score`]) | x ← x + (ε/2) s(x) + √ε z |
//! | [`Mala`] | log p and s ([`LogDensity`] + [`Score`]) | the ULA proposal, accepted by Metropolis–Hastings |
//! | [`AnnealedLangevin`] (NCSN Algorithm 1) | s(x, σ) ([`NoisedScore`]) | ULA at σ₁ > … > σ_L, step αᵢ = ε σᵢ²/σ_L² |
//! | [`ReverseSde`] | s(x, σ), a [`Schedule`] | Euler–Maruyama on the reverse SDE |
//! | [`Pc`] | s(x, σ), a [`Schedule`] | Langevin corrector steps, then the reverse-SDE predictor |
//! | [`Ancestral`] (DDPM Algorithm 2) | s(x, σ), the `vp` schedule | the discrete VP chain's ancestral step |
//! | [`Ddim`] | s(x, σ), a [`Schedule`] | DDIM with noise η (η = 0: Euler on the ODE) |
//! | [`Heun`] (EDM Algorithm 2) | s(x, σ), a [`Schedule`] | Heun on the ODE with stochastic churn |
//! | [`Ode`] | s(x, σ), a [`Schedule`] | the probability-flow ODE by Euler, Heun or adaptive RK45 ([`solve`]) |
//! | [`solver::Solver`] | s(x, σ), a [`Schedule`] and a grid | DPM-Solver++ (2M, 3M, 2M SDE), UniPC, DPM-Solver-2, Euler ancestral ([`solver`]) |
//!
//! Every diffusion sampler uses one noise-conditional score s(y, σ̃) = ∇log p_σ̃(y) for every
//! schedule: the schedule's marginal is p_t(x) = α⁻ᴰ p_σ̃(x/α), so ∇log p_t(x) = s(x/α, σ̃)/α
//! ([`schedule`] module docs). The chains are always stored as x; the samplers that work in
//! y = x/α divide and multiply by α around each step.
//!
//! The diffusion samplers end where their schedule's grid ends, so their output targets
//! p_t there (p_{σ_min} for `ve`, α p_σ̃ at t_min for `vp`/`subvp`; [`Outline::target_sigma`] and
//! [`Outline::target_scale`] say which), or p itself on the `edm` grid, which ends at σ̃ = 0, and
//! for the ancestral sampler. With `denoise = true` they end with Tweedie's step
//! y + σ̃² s(y, σ̃) = E\[x₀ | x\], which targets p.
//!
//! ```
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use scorelab_densities::Gaussian;
//! use scorelab_samplers::{sample, Langevin};
//! let p = Gaussian::standard(2);
//! let x0 = ndarray::Array2::zeros((500, 2));
//! let x = sample(&Langevin::new(0.1, 300)?, &p, x0, &mut ChaCha8Rng::seed_from_u64(0));
//! assert_eq!(x.dim(), (500, 2));
//! // ULA's stationary variance on N(0, 1) is 1/(1 − ε/4) ≈ 1.026.
//! let var = x.column(0).mapv(|v| v * v).mean().unwrap();
//! assert!((var - 1.0 / (1.0 - 0.1 / 4.0)).abs() < 0.2);
//! # Ok::<(), scorelab_core::ParamError>(())
//! ```
#![warn(missing_docs)]

mod annealed;
mod config;
mod diffusion;
pub mod guidance;
mod inpaint;
mod langevin;
pub mod likelihood;
pub mod prediction;
pub mod schedule;
mod sde;
pub mod solve;
pub mod solver;

pub use annealed::AnnealedLangevin;
pub use config::{likelihood_schedule, AnySampler};
pub use diffusion::{Ancestral, Churn, Ddim, Heun};
pub use inpaint::{Inpaint, OnGrid};
pub use langevin::{Langevin, Mala, MalaState};
pub use schedule::Schedule;
pub use sde::{tweedie, Ode, OdeSolver, Pc, ReverseSde};

use ndarray::{Array2, ArrayView2};
use rand::Rng;
use rand_distr::StandardNormal;
#[allow(unused_imports)] // named in the docs
use scorelab_core::{LogDensity, NoisedScore, Score};

/// What one step did. Every sampler fills in every field it has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Info {
    /// The index of this step, from 0.
    pub step: usize,
    /// The step size of this step: ε (langevin, mala), αᵢ (annealed Langevin), βᵢ (ancestral),
    /// the time step tₖ − tₖ₊₁ (reverse SDE, pc, ddim, ODE; T − t_end for one rk45 run), the σ̃
    /// step actually integrated (heun: σ̂ − σₖ₊₁, above the grid's σₖ − σₖ₊₁ with churn; the
    /// solvers of [`solver`]: σₖ − σₖ₊₁).
    pub step_size: f64,
    /// The noise level σ̃ at which the step's first score was evaluated; `None` for clean-score
    /// samplers.
    pub sigma: Option<f64>,
    /// The fraction of chains whose proposal was accepted (MALA only).
    pub acceptance_rate: Option<f64>,
    /// Score evaluations per chain in this step.
    pub score_evals: usize,
}

/// A batch of chains: the state of every sampler exposes its current points.
pub trait Chains {
    /// The current points, `(n, d)`.
    fn positions(&self) -> ArrayView2<'_, f64>;
    /// The number of steps taken.
    fn steps_taken(&self) -> usize;
}

/// The state of the samplers that carry nothing but the points.
#[derive(Debug, Clone, PartialEq)]
pub struct ChainState {
    /// The current points, `(n, d)`.
    pub x: Array2<f64>,
    /// The number of steps taken.
    pub step: usize,
}

impl ChainState {
    /// The state at the starting points `x`, no step taken.
    pub fn new(x: Array2<f64>) -> Self {
        ChainState { x, step: 0 }
    }

    /// Counts the step just made and returns its [`Info`] (no acceptance rate).
    pub fn advance(&mut self, step_size: f64, sigma: Option<f64>, score_evals: usize) -> Info {
        let info = Info {
            step: self.step,
            step_size,
            sigma,
            acceptance_rate: None,
            score_evals,
        };
        self.step += 1;
        info
    }
}

impl Chains for ChainState {
    fn positions(&self) -> ArrayView2<'_, f64> {
        self.x.view()
    }
    fn steps_taken(&self) -> usize {
        self.step
    }
}

/// What a sampler will do, independent of the score source: its length, its cost beyond one
/// evaluation per step, and the distribution its output targets.
pub trait Outline {
    /// The number of steps of a full run.
    fn num_steps(&self) -> usize;

    /// Score evaluations per chain made by [`Sampler::init`] and [`Sampler::finish`] together.
    fn extra_score_evals(&self) -> usize {
        0
    }

    /// The noise level of the distribution the output targets: `Some(σ̃)` for α·(x₀ + σ̃z), x₀ ∼ p
    /// (α from [`Outline::target_scale`]), `None` for p itself.
    fn target_sigma(&self) -> Option<f64> {
        None
    }

    /// The scale α of the distribution the output targets (1 unless a `vp`/`subvp` run ends at
    /// t_min without denoising).
    fn target_scale(&self) -> f64 {
        1.0
    }

    /// The standard deviation c of the Gaussian prior N(0, c²I) the sampler starts from, `None`
    /// for the clean-score samplers, which have none.
    fn prior_std(&self) -> Option<f64> {
        None
    }

    /// (α, σ̃) of the marginal at the sampler's start, α(x₀ + σ̃z), which the prior stands in for;
    /// `None` for the clean-score samplers.
    fn start(&self) -> Option<(f64, f64)> {
        None
    }

    /// The range (smallest, largest) of the noise levels σ̃ > 0 at which a run asks for the score;
    /// `None` for the clean-score samplers. A network trained on a narrower range is refused by
    /// the pipeline.
    fn sigma_needed(&self) -> Option<(f64, f64)> {
        None
    }
}

/// A sampler driven by a score source `S`: validated parameters with an `init`/`step` pair.
///
/// Run it by calling [`Sampler::init`] once, [`Sampler::step`] [`Outline::num_steps`] times and
/// [`Sampler::finish`] once ([`sample`] does exactly this).
pub trait Sampler<S: ?Sized>: Outline {
    /// The state carried from step to step.
    type State: Chains;

    /// The state at the starting points `x0` (`(n, d)`); MALA evaluates log p and s there.
    fn init(&self, source: &S, x0: Array2<f64>) -> Self::State;

    /// One step of every chain.
    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        state: Self::State,
        rng: &mut R,
    ) -> (Self::State, Info);

    /// The output of a finished run: the points, after Tweedie's denoising step where asked for.
    fn finish(&self, _source: &S, state: Self::State) -> Array2<f64> {
        state.positions().to_owned()
    }
}

/// Runs `sampler` from `x0` to the end and returns its output.
///
/// # Examples
/// See the [crate docs](crate).
pub fn sample<S: ?Sized, M: Sampler<S>, R: Rng + ?Sized>(
    sampler: &M,
    source: &S,
    x0: Array2<f64>,
    rng: &mut R,
) -> Array2<f64> {
    let mut state = sampler.init(source, x0);
    for _ in 0..sampler.num_steps() {
        state = sampler.step(source, state, rng).0;
    }
    sampler.finish(source, state)
}

/// An `(n, d)` block of independent N(0, 1) draws, row by row.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// let z = scorelab_samplers::standard_normal(3, 2, &mut rand_chacha::ChaCha8Rng::seed_from_u64(1));
/// assert_eq!(z.dim(), (3, 2));
/// ```
pub fn standard_normal<R: Rng + ?Sized>(n: usize, d: usize, rng: &mut R) -> Array2<f64> {
    Array2::from_shape_simple_fn((n, d), || rng.sample::<f64, _>(StandardNormal))
}

/// Checks ε-like parameters: finite and > 0.
pub(crate) use scorelab_core::error::positive;

pub(crate) fn at_least_one(value: usize, field: &str) -> Result<usize, scorelab_core::ParamError> {
    if value == 0 {
        Err(scorelab_core::ParamError::invalid(
            field,
            "must be at least 1",
        ))
    } else {
        Ok(value)
    }
}

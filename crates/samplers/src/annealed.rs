//! Annealed Langevin dynamics (NCSN, Song & Ermon 2019, Algorithm 1).

use crate::langevin::ula_move;
use crate::sde::tweedie;
use crate::{at_least_one, positive, standard_normal, ChainState, Chains, Info, Outline, Sampler};
use ndarray::Array2;
use rand::Rng;
use scorelab_core::{schedule, NoisedScore, ParamError, SigmaRange};

/// Annealed Langevin dynamics: for each level i = 1 … L of a geometric schedule σ₁ > … > σ_L,
/// T Langevin steps on p_{σᵢ} with step αᵢ = ε σᵢ²/σ_L²:
/// x ← x + (αᵢ/2) s(x, σᵢ) + √αᵢ z.
///
/// Large σ fill the space between the modes, so chains started anywhere reach them in the right
/// proportions; the step grows with σ² so that the signal-to-noise ratio of each update is the same
/// at every level. This is the paper's Algorithm 1 and its convention for the step. The NCSN code's
/// image runner uses x ← x + αᵢ s + √(2αᵢ) z (a step twice as large for the same ε); with this
/// sampler that is ε → 2ε.
///
/// The output targets p_{σ_L}; with `denoise`, Tweedie's step x + σ_L² s(x, σ_L) ends the run and
/// the output targets p (an estimate of E\[x₀ | x\], as NCSNv2 does).
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{AnnealedLangevin, Outline, Sampler};
/// let ald = AnnealedLangevin::new(scorelab_core::SigmaRange { min: 1.0, max: 20.0 }, 10, 100, 0.1, false)?;
/// assert_eq!(ald.num_steps(), 1000);
/// let p = Gaussian::standard(2);
/// let state = ald.init(&p, ndarray::Array2::zeros((4, 2)));
/// let (_, info) = ald.step(&p, state, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// // α₁ = ε σ₁²/σ_L² = 0.1 · 400
/// assert_eq!((info.sigma, info.step_size), (Some(20.0), 40.0));
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AnnealedLangevin {
    pub(crate) sigmas: Vec<f64>,
    pub(crate) steps_per_level: usize,
    pub(crate) eps: f64,
    pub(crate) denoise: bool,
}

impl AnnealedLangevin {
    /// L geometric levels from σ_max to σ_min, T = `steps_per_level` steps each, base step ε.
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max, L ≥ 2, T ≥ 1 and ε > 0 (naming `sigma_min`, `sigma_max`, `levels`,
    /// `steps`, `eps`).
    pub fn new(
        range: SigmaRange,
        levels: usize,
        steps_per_level: usize,
        eps: f64,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        if levels < 2 {
            return Err(ParamError::invalid(
                "levels",
                format!("must be at least 2 (σ_max to σ_min), got {levels}"),
            ));
        }
        Ok(AnnealedLangevin {
            sigmas: schedule::geometric(range, levels)?,
            steps_per_level: at_least_one(steps_per_level, "steps")?,
            eps: positive(eps, "eps")?,
            denoise,
        })
    }

    /// The levels σ₁ > … > σ_L.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// The level index and step size αᵢ of step `k` (from 0).
    pub fn level(&self, k: usize) -> (usize, f64) {
        let i = (k / self.steps_per_level).min(self.sigmas.len() - 1);
        let last = self.sigmas[self.sigmas.len() - 1];
        (i, self.eps * (self.sigmas[i] / last).powi(2))
    }
}

impl Outline for AnnealedLangevin {
    fn num_steps(&self) -> usize {
        self.sigmas.len() * self.steps_per_level
    }

    fn extra_score_evals(&self) -> usize {
        usize::from(self.denoise)
    }

    fn target_sigma(&self) -> Option<f64> {
        (!self.denoise).then(|| self.sigmas[self.sigmas.len() - 1])
    }

    fn prior_std(&self) -> Option<f64> {
        Some(self.sigmas[0])
    }

    fn start(&self) -> Option<(f64, f64)> {
        Some((1.0, self.sigmas[0]))
    }

    fn sigma_needed(&self) -> Option<(f64, f64)> {
        Some((self.sigmas[self.sigmas.len() - 1], self.sigmas[0]))
    }
}

impl<S: NoisedScore + ?Sized> Sampler<S> for AnnealedLangevin {
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
        let (i, alpha) = self.level(state.step);
        let sigma = self.sigmas[i];
        let s = source.noised_score(state.x.view(), sigma);
        ula_move(&mut state.x, &s, &z, alpha);
        let info = state.advance(alpha, Some(sigma), 1);
        (state, info)
    }

    fn finish(&self, source: &S, state: ChainState) -> Array2<f64> {
        let last = self.sigmas[self.sigmas.len() - 1];
        if self.denoise {
            tweedie(source, state.positions(), last)
        } else {
            state.x
        }
    }
}

//! Langevin dynamics on a clean score: unadjusted ([`Langevin`]) and Metropolis-adjusted ([`Mala`]).

use crate::{at_least_one, positive, standard_normal, ChainState, Chains, Info, Outline, Sampler};
use ndarray::{Array1, Array2, ArrayView2, Zip};
use rand::Rng;
use scorelab_core::{LogDensity, ParamError, Score};

/// The unadjusted Langevin algorithm (ULA): x ← x + (ε/2) s(x) + √ε z, z ∼ N(0, I), for `steps`
/// steps.
///
/// It discretises the Langevin diffusion dx = ½∇log p dt + dW, whose stationary law is p; the
/// discretisation biases it by O(ε). On N(0, 1) the chain is x' = (1 − ε/2)x + √ε z, with stationary
/// law N(0, 1/(1 − ε/4)). From far away it finds the nearest mode but not the modes' weights: the
/// mixing time between separated modes is exponential in their separation (Song & Ermon 2019, §3).
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{Info, Langevin, Sampler};
/// let ula = Langevin::new(0.1, 1000)?;
/// let p = Gaussian::standard(1);
/// let state = ula.init(&p, ndarray::array![[3.0]]);
/// let (state, info) = ula.step(&p, state, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// assert_eq!((info.step_size, info.score_evals, state.step), (0.1, 1, 1));
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Langevin {
    pub(crate) eps: f64,
    pub(crate) steps: usize,
}

impl Langevin {
    /// ULA with step size ε for `steps` steps.
    ///
    /// # Errors
    /// Unless ε is finite and > 0 (`eps`) and `steps` ≥ 1.
    pub fn new(eps: f64, steps: usize) -> Result<Self, ParamError> {
        Ok(Langevin {
            eps: positive(eps, "eps")?,
            steps: at_least_one(steps, "steps")?,
        })
    }

    /// ε.
    pub fn eps(&self) -> f64 {
        self.eps
    }
}

/// One ULA move at step size `eps` with score `s` already evaluated at `x`: x + (ε/2)s + √ε z.
pub(crate) fn ula_move(x: &mut Array2<f64>, s: &Array2<f64>, z: &Array2<f64>, eps: f64) {
    let (h, r) = (0.5 * eps, eps.sqrt());
    Zip::from(x).and(s).and(z).for_each(|x, &s, &z| {
        *x += h * s + r * z;
    });
}

impl Outline for Langevin {
    fn num_steps(&self) -> usize {
        self.steps
    }
}

impl<S: Score + ?Sized> Sampler<S> for Langevin {
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
        let s = source.score(state.x.view());
        ula_move(&mut state.x, &s, &z, self.eps);
        let info = state.advance(self.eps, None, 1);
        (state, info)
    }
}

/// The Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996): propose the ULA move
/// y = x + (ε/2)s(x) + √ε z and accept it with probability
/// min{1, p(y) q(x | y) / (p(x) q(y | x))}, q(y | x) = N(y; x + (ε/2)s(x), εI).
///
/// The accept step makes p exactly stationary for every ε, at the price of rejections. Only ratios
/// of p enter, so an unnormalised log-density serves as well.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::{Mala, Sampler};
/// let mala = Mala::new(0.5, 10)?;
/// let p = Gaussian::standard(1);
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
/// let state = mala.init(&p, ndarray::Array2::zeros((100, 1)));
/// let (_, info) = mala.step(&p, state, &mut rng);
/// let rate = info.acceptance_rate.unwrap();
/// assert!(rate > 0.5 && rate <= 1.0);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mala {
    pub(crate) eps: f64,
    pub(crate) steps: usize,
}

impl Mala {
    /// MALA with step size ε for `steps` steps.
    ///
    /// # Errors
    /// Unless ε is finite and > 0 (`eps`) and `steps` ≥ 1.
    pub fn new(eps: f64, steps: usize) -> Result<Self, ParamError> {
        Ok(Mala {
            eps: positive(eps, "eps")?,
            steps: at_least_one(steps, "steps")?,
        })
    }
}

/// MALA's state: the points with log p and s there (so each step costs one evaluation), and how
/// many proposals each chain has accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct MalaState {
    /// The current points, `(n, d)`.
    pub x: Array2<f64>,
    /// log p at `x`, `(n,)`.
    pub log_density: Array1<f64>,
    /// s at `x`, `(n, d)`.
    pub score: Array2<f64>,
    /// Accepted proposals per chain.
    pub accepted: Vec<usize>,
    /// The number of steps taken.
    pub step: usize,
}

impl Chains for MalaState {
    fn positions(&self) -> ArrayView2<'_, f64> {
        self.x.view()
    }
    fn steps_taken(&self) -> usize {
        self.step
    }
}

/// log q(to | from) up to a constant: −‖to − from − (ε/2)s(from)‖²/(2ε), per row.
fn log_q(
    to: ArrayView2<f64>,
    from: ArrayView2<f64>,
    s_from: ArrayView2<f64>,
    eps: f64,
) -> Array1<f64> {
    let mut out = Array1::zeros(to.nrows());
    Zip::from(&mut out)
        .and(to.rows())
        .and(from.rows())
        .and(s_from.rows())
        .for_each(|o, t, f, s| {
            let mut ss = 0.0;
            for j in 0..t.len() {
                let r = t[j] - f[j] - 0.5 * eps * s[j];
                ss += r * r;
            }
            *o = -ss / (2.0 * eps);
        });
    out
}

impl Outline for Mala {
    fn num_steps(&self) -> usize {
        self.steps
    }

    fn extra_score_evals(&self) -> usize {
        1
    }
}

impl<S: LogDensity + Score + ?Sized> Sampler<S> for Mala {
    type State = MalaState;

    fn init(&self, source: &S, x0: Array2<f64>) -> MalaState {
        let log_density = source.log_density(x0.view());
        let score = source.score(x0.view());
        let n = x0.nrows();
        MalaState {
            x: x0,
            log_density,
            score,
            accepted: vec![0; n],
            step: 0,
        }
    }

    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        mut state: MalaState,
        rng: &mut R,
    ) -> (MalaState, Info) {
        let (n, d) = state.x.dim();
        let z = standard_normal(n, d, rng);
        let u: Vec<f64> = (0..n).map(|_| rng.gen::<f64>()).collect();
        let mut y = state.x.clone();
        ula_move(&mut y, &state.score, &z, self.eps);
        let ly = source.log_density(y.view());
        let sy = source.score(y.view());
        let forward = log_q(y.view(), state.x.view(), state.score.view(), self.eps);
        let backward = log_q(state.x.view(), y.view(), sy.view(), self.eps);
        let mut count = 0;
        for i in 0..n {
            let log_ratio = ly[i] - state.log_density[i] + backward[i] - forward[i];
            // A NaN ratio (a proposal outside the support) is a rejection.
            if u[i].ln() < log_ratio {
                state.x.row_mut(i).assign(&y.row(i));
                state.score.row_mut(i).assign(&sy.row(i));
                state.log_density[i] = ly[i];
                state.accepted[i] += 1;
                count += 1;
            }
        }
        let info = Info {
            step: state.step,
            step_size: self.eps,
            sigma: None,
            acceptance_rate: Some(count as f64 / n as f64),
            score_evals: 1,
        };
        state.step += 1;
        (state, info)
    }
}

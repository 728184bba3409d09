//! Likelihoods through the probability-flow ODE (Song et al. 2021, §4.3 and App. D.2; Chen et al.
//! 2018's instantaneous change of variables).
//!
//! A score defines a density through its probability-flow ODE dx/dt = F(x, t) with
//! F = f(t) x − ½ g(t)² ∇log p_t(x) ([`Schedule`]'s drift f and squared diffusion g²). Along a
//! solution, d log p_t(x_t)/dt = −∇·F, so
//!
//! log p_{t₀}(x₀) = log p_T(x_T) + ∫_{t₀}^T ∇·F(x_t, t) dt,
//!
//! integrated together with x from the start t₀ (t_min for `vp`/`subvp`, σ_min for `ve`/`edm`,
//! [`Schedule::t_end`]) to T. With one noise-conditional score s(y, σ̃) for every schedule,
//! ∇log p_t(x) = s(x/α, σ̃)/α, so
//!
//! ∇·F = D f(t) − ½ g(t)² tr ∇_y s(y, σ̃)/α², y = x/α,
//!
//! and the divergence needs the trace of the score's Jacobian **in y at fixed σ̃**
//! ([`NoisedScoreFunction`]). [`Divergence::Exact`] takes it exactly (an analytic density's
//! Hessian of log p_σ̃; a network's structured or naive trace); [`Divergence::Hutchinson`] takes
//! vᵀ∇s v for k probes v per point with E\[vvᵀ\] = I, drawn once and held for the whole solve, so
//! that each probe's integral is an unbiased estimate of the exact one (Grathwohl et al. 2019) and
//! their spread gives a standard error. The adaptive solver ([`crate::solve::integrate_controlled`])
//! controls the error of x only, so its steps, and with them each probe's estimate, do not depend
//! on the probes.
//!
//! The output is the log-density of the marginal at the start, p_{t₀}(x) = α⁻ᴰ p_σ̃(x/α) at
//! (α, σ̃) = (α(t₀), σ̃(t₀)) ([`Likelihood::start`]): for an analytic density, a closed form to
//! check against. The prior term log p_T(x_T) is the caller's: the schedule's Gaussian
//! ([`gaussian_log_prior`]) or, to isolate the solver's error, the exact p_T.
//!
//! One step size serves a whole batch (the adaptive solver's error is the largest over its rows),
//! so a point's value depends on its batch at the level of the tolerances.
//!
//! # Examples
//! ```
//! use ndarray::array;
//! use rand::SeedableRng;
//! use scorelab_core::LogDensity;
//! use scorelab_densities::Gaussian;
//! use scorelab_samplers::likelihood::{gaussian_log_prior, Divergence, FlowSolver, Likelihood};
//! use scorelab_samplers::{solve::Rk45, Schedule};
//! let p = Gaussian::standard(2);
//! let flow = Likelihood::new(Schedule::vp(0.1, 20.0, 1e-5)?, Divergence::Exact,
//!                            FlowSolver::Rk45(Rk45::new(1e-6, 1e-6)?))?;
//! let x = array![[0.3, -1.2], [2.0, 0.5]];
//! let out = flow.flow(&p, x.view(), &mut rand_chacha::ChaCha8Rng::seed_from_u64(0))?;
//! let (log_p, _) = out.log_p(gaussian_log_prior(out.x_end.view(), 1.0).view());
//! // p_{t₀} of N(0, I) under VP is N(0, α²(1 + σ̃²)) = N(0, I) exactly.
//! let truth = p.log_density(x.view());
//! assert!((log_p[0] - truth[0]).abs() < 1e-4 && (log_p[1] - truth[1]).abs() < 1e-4);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::schedule::Schedule;
use crate::solve::{heun_step, integrate_controlled, Rk45, SolveError, SolveStats};
use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::Rng;
use scorelab_core::{NoisedScoreFunction, ParamError};
use std::f64::consts::PI;

/// The distribution of Hutchinson's probes v (one type with sliced score matching's).
pub use scorelab_core::probe::Probe;

/// How the divergence's Jacobian trace is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Divergence {
    /// tr ∇_y s exactly, by the source's [`NoisedScoreFunction::noised_score_trace`].
    Exact,
    /// Hutchinson's vᵀ∇_y s v, `projections` probes per point, fixed along the solve.
    Hutchinson {
        /// k ≥ 1 probes per point.
        projections: usize,
        /// Their distribution.
        probe: Probe,
    },
}

impl Divergence {
    /// The number of estimates per point: k for Hutchinson, 1 for the exact trace.
    pub fn estimates(&self) -> usize {
        match self {
            Divergence::Exact => 1,
            Divergence::Hutchinson { projections, .. } => *projections,
        }
    }
}

/// The ODE solver of a likelihood.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FlowSolver {
    /// Adaptive Dormand–Prince 5(4) in t, its error controlled on x only.
    Rk45(Rk45),
    /// Heun's method on `steps` steps of the schedule's grid, run from t₀ up to T (uniform in t;
    /// Karras et al.'s ρ-spaced σ̃ for `edm`); 2 evaluations per step.
    Heun {
        /// N ≥ 1.
        steps: usize,
    },
}

/// A validated likelihood computation: a schedule, a divergence and a solver (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct Likelihood {
    schedule: Schedule,
    divergence: Divergence,
    solver: FlowSolver,
}

/// What one solve produced for a batch of n points.
#[derive(Debug, Clone, PartialEq)]
pub struct Flow {
    /// x_T, `(n, D)`, where the prior is evaluated.
    pub x_end: Array2<f64>,
    /// ∫ ∇·F dt, one column per estimate (1 for the exact divergence, k for Hutchinson), `(n, k)`.
    pub divergence: Array2<f64>,
    /// Score evaluations per point (each with its trace or tangents).
    pub score_evals: usize,
    /// The adaptive solver's steps (zero for Heun).
    pub stats: SolveStats,
}

impl Flow {
    /// log p_{t₀}(x₀) = log p_T(x_T) + ∫∇·F dt for each point, the mean over the estimates, and
    /// with k ≥ 2 Hutchinson probes its standard error over them (sd/√k); `None` otherwise.
    ///
    /// # Panics
    /// If `log_prior` does not have one entry per point.
    pub fn log_p(&self, log_prior: ArrayView1<f64>) -> (Array1<f64>, Option<Array1<f64>>) {
        assert_eq!(
            log_prior.len(),
            self.divergence.nrows(),
            "one prior per point"
        );
        let k = self.divergence.ncols();
        let mean = self.divergence.mean_axis(Axis(1)).expect("k ≥ 1") + log_prior;
        let se = (k >= 2).then(|| {
            self.divergence
                .std_axis(Axis(1), 1.0)
                .mapv(|s| s / (k as f64).sqrt())
        });
        (mean, se)
    }
}

/// log N(x; 0, c²I) for each row: the schedule's Gaussian prior ([`Schedule::prior_std`]).
pub fn gaussian_log_prior(x: ArrayView2<f64>, std: f64) -> Array1<f64> {
    let d = x.ncols() as f64;
    let c = -0.5 * d * (2.0 * PI * std * std).ln();
    x.rows()
        .into_iter()
        .map(|r| c - 0.5 * r.dot(&r) / (std * std))
        .collect()
}

impl Likelihood {
    /// The likelihood of `schedule`'s ODE with `divergence` and `solver`.
    ///
    /// # Errors
    /// Naming `projections` (Hutchinson with 0 probes) or `steps` (Heun with 0 steps).
    pub fn new(
        schedule: Schedule,
        divergence: Divergence,
        solver: FlowSolver,
    ) -> Result<Self, ParamError> {
        if let Divergence::Hutchinson { projections, .. } = divergence {
            crate::at_least_one(projections, "projections")?;
        }
        if let FlowSolver::Heun { steps } = solver {
            crate::at_least_one(steps, "steps")?;
        }
        Ok(Likelihood {
            schedule,
            divergence,
            solver,
        })
    }

    /// The schedule.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The divergence.
    pub fn divergence(&self) -> Divergence {
        self.divergence
    }

    /// (t₀, α(t₀), σ̃(t₀)): where the ODE starts, and the marginal α(x₀ + σ̃z) whose density it
    /// estimates.
    pub fn start(&self) -> (f64, f64, f64) {
        let t = self.schedule.t_end();
        (t, self.schedule.alpha(t), self.schedule.sigma(t))
    }

    /// (T, α(T), σ̃(T)): where it ends and the prior is evaluated.
    pub fn end(&self) -> (f64, f64, f64) {
        let t = self.schedule.t_max();
        (t, self.schedule.alpha(t), self.schedule.sigma(t))
    }

    /// The noise levels (smallest, largest) at which the score is evaluated.
    pub fn sigma_needed(&self) -> (f64, f64) {
        self.schedule.sigma_range()
    }

    /// Heun's times, increasing from t₀ to T (see [`FlowSolver::Heun`]).
    fn grid(&self, steps: usize) -> Vec<f64> {
        if self.schedule.ends_at_zero() {
            // The ρ-grid of steps + 1 levels from σ_max to σ_min (then 0, not used here).
            (0..=steps)
                .map(|i| self.schedule.time(steps + 1, steps - i))
                .collect()
        } else {
            (0..=steps)
                .map(|i| self.schedule.time(steps, steps - i))
                .collect()
        }
    }

    /// Solves the ODE from the points `x0` (`(n, D)`, at t₀) to T, with the divergence
    /// integrated beside them; Hutchinson's probes are drawn from `rng` first (point by point,
    /// k rows each), the exact divergence draws nothing.
    ///
    /// # Errors
    /// [`SolveError`] if the adaptive solver fails, or if x or the divergence is not finite at
    /// the end (a score that returned NaN).
    pub fn flow<S: NoisedScoreFunction + ?Sized, R: Rng + ?Sized>(
        &self,
        source: &S,
        x0: ArrayView2<f64>,
        rng: &mut R,
    ) -> Result<Flow, SolveError> {
        let (n, d) = x0.dim();
        let k = self.divergence.estimates();
        let probes = match self.divergence {
            Divergence::Exact => None,
            Divergence::Hutchinson { probe, .. } => Some(probe.draw(n * k, d, rng)),
        };
        let sch = &self.schedule;
        let field = |state: ArrayView2<f64>, t: f64| -> Array2<f64> {
            let x = state.slice(s![.., ..d]);
            let (a, sigma, f, g2) = (sch.alpha(t), sch.sigma(t), sch.drift(t), sch.g2(t));
            let y = &x / a;
            let mut out = Array2::zeros((x.nrows(), d + k));
            let score = match &probes {
                None => {
                    let (s, tr) = source.noised_score_trace(y.view(), sigma);
                    out.column_mut(d)
                        .assign(&tr.mapv(|tr| d as f64 * f - 0.5 * g2 * tr / (a * a)));
                    s
                }
                Some(v) => {
                    let (s, jv) = source.noised_score_jvp(y.view(), v.view(), sigma);
                    for i in 0..x.nrows() {
                        for j in 0..k {
                            let r = i * k + j;
                            let q = v.row(r).dot(&jv.row(r));
                            out[[i, d + j]] = d as f64 * f - 0.5 * g2 * q / (a * a);
                        }
                    }
                    s
                }
            };
            // dx/dt = f x − ½ g² s(x/α, σ̃)/α.
            let mut dx = out.slice_mut(s![.., ..d]);
            dx.assign(&(&x * f));
            dx.scaled_add(-0.5 * g2 / a, &score);
            out
        };
        let mut state = Array2::zeros((n, d + k));
        state.slice_mut(s![.., ..d]).assign(&x0);
        let (t0, _, _) = self.start();
        let (t1, _, _) = self.end();
        let (end, stats, evals) = match self.solver {
            FlowSolver::Rk45(tol) => {
                let (y, stats) = integrate_controlled(&field, state, t0, t1, &tol, d)?;
                (y, stats, stats.evals)
            }
            FlowSolver::Heun { steps } => {
                let ts = self.grid(steps);
                for w in ts.windows(2) {
                    state = heun_step(&field, state.view(), w[0], w[1] - w[0]);
                }
                (state, SolveStats::default(), 2 * steps)
            }
        };
        if end.iter().any(|v| !v.is_finite()) {
            return Err(SolveError::NotFinite(t1));
        }
        Ok(Flow {
            x_end: end.slice(s![.., ..d]).to_owned(),
            divergence: end.slice(s![.., d..]).to_owned(),
            score_evals: evals,
            stats,
        })
    }
}

//! The solvers of today's diffusion pipelines, on a grid of noise levels σ̃₀ > σ̃₁ > … > σ̃_N:
//! DPM-Solver++ (multistep of order 1, 2 and 3, and the 2M SDE variant; Lu et al. 2022,
//! "DPM-Solver++: fast solver for guided sampling of diffusion probabilistic models"), UniPC (the
//! bh2 predictor of order 2 with its corrector; Zhao et al. 2023, "UniPC: a unified
//! predictor-corrector framework"), DPM-Solver-2 (single step, its midpoint form in σ; Lu et al.
//! 2022, "DPM-Solver") and Euler ancestral, with the grids people use ([`Spacing`]).
//!
//! Every solver works in the kernel's variables y = x/α and σ̃ (the [`Schedule`] module docs),
//! where every schedule's probability-flow ODE is dy/dσ̃ = (y − D(y, σ̃))/σ̃ with the data
//! prediction D(y, σ̃) = y + σ̃² s(y, σ̃) = E[x₀ | y] (Tweedie). In the log-SNR time
//! λ = −log σ̃ (α = 1 in y, so ½ log SNR = λ), its exact solution from λ_s to λ_t = λ_s + h is
//! y_t = (σ̃_t/σ̃_s) y_s + σ̃_t ∫ e^λ D dλ, and the solvers differ in how they approximate D along
//! the step from the D's already evaluated:
//!
//! | kind | update from y at σ̃ to σ̃′ (h = log(σ̃/σ̃′), D = D(y, σ̃)) | evaluations per step |
//! | --- | --- | --- |
//! | `dpmpp_2m` (order 2), `dpmpp_3m` (3) | (σ̃′/σ̃) y − (e^{−h} − 1) D̂ with D̂ from the last 1 or 2 D's by divided differences in λ | 1 |
//! | `dpmpp_2m_sde` | (σ̃′/σ̃) e^{−ηh} y + (1 − e^{−(1+η)h}) D̂ + σ̃′ √(1 − e^{−2ηh}) z | 1 |
//! | `unipc` | the 2M predictor with B(h) = e^{−h} − 1, then UniC's correction of the new point from the D evaluated there | 1 |
//! | `dpm2` | midpoint in λ: Euler to σ̃ₘ = √(σ̃σ̃′), then y + (σ̃′ − σ̃)(yₘ − Dₘ)/σ̃ₘ | 2 |
//! | `euler_ancestral` | Euler to σ̃↓ = √(σ̃′² − σ̃↑²), then + σ̃↑ z, σ̃↑ = min(σ̃′, η σ̃′√(σ̃² − σ̃′²)/σ̃) | 1 |
//!
//! A multistep solver starts at order 1 and raises its order as D's accumulate; a step to σ̃′ = 0
//! (the last of a grid that ends there) lands on D itself (order 1). Order 1 of DPM-Solver++ is
//! DDIM with η = 0 ([`crate::Ddim`]); `dpmpp_2m_sde` with η = 0 is `dpmpp_2m`. The grid's levels
//! come with the schedule's α at each level ([`Schedule::alpha_at_sigma`]), so the chains are
//! stored as x between steps.

use crate::sde::{check_denoise, denoised};
use crate::{at_least_one, standard_normal, Chains, Info, Outline, Sampler, Schedule};
use ndarray::{Array2, ArrayView2};
use rand::Rng;
use scorelab_core::{NoisedScore, ParamError};
use serde::{Deserialize, Serialize};

/// Where a solver puts the N + 1 noise levels of its N steps, from the start σ̃(T) down to the
/// schedule's end σ̃(t_end) (or, on a grid that ends at σ̃ = 0 such as `edm`'s, to σ_min at step
/// N − 1 and then 0):
///
/// | spacing | levels |
/// | --- | --- |
/// | `schedule` (default) | the schedule's own grid ([`Schedule::time`]: uniform in t; `edm`: Karras's ρ-grid) |
/// | `karras` | σ̃ᵢ = (σ̃_max^{1/ρ} + i/M (σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ (Karras et al. 2022, eq. 5; ρ = `rho`, 7) |
/// | `log_snr` | uniform in log σ̃ (uniform log-SNR, DPM-Solver's default) |
/// | `uniform_t` | uniform in the schedule's time t (for `edm`, t = σ̃) |
/// | `trailing` | diffusers' "trailing" spacing of 1000 training steps: in continuous time, uniform in t from T, the same levels as `uniform_t` |
/// | `leading` | diffusers' "leading" spacing (with its offset of 1): steps j = (N − 1 − k)·⌊1000/N⌋ + 1 of 1000, so the first level is below σ̃(T) and the prior is started too low (Lin et al. 2024) |
///
/// (M = N − 1 where the grid ends at 0, else N; training step j is t = t_end + j (T − t_end)/999.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Spacing {
    /// The schedule's own grid.
    #[default]
    Schedule,
    /// Karras et al.'s ρ-spaced levels.
    Karras,
    /// Uniform in log σ̃.
    LogSnr,
    /// Uniform in t.
    UniformT,
    /// diffusers' "leading" timesteps.
    Leading,
    /// diffusers' "trailing" timesteps.
    Trailing,
}

/// A grid's name as configs spell it; an unknown one is an error naming the key `grid` (inside
/// a sampler table serde cannot say which key failed, so the message does).
impl TryFrom<String> for Spacing {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Ok(match s.as_str() {
            "schedule" => Spacing::Schedule,
            "karras" => Spacing::Karras,
            "log_snr" => Spacing::LogSnr,
            "uniform_t" => Spacing::UniformT,
            "leading" => Spacing::Leading,
            "trailing" => Spacing::Trailing,
            other => {
                return Err(format!(
                    "grid: unknown grid {other:?}; use schedule, karras, log_snr, uniform_t, leading or trailing"
                ))
            }
        })
    }
}

/// diffusers' number of training steps, which its "leading" and "trailing" spacings divide.
const TRAIN_STEPS: usize = 1000;

impl Spacing {
    /// The N + 1 noise levels of N = `steps` steps on `schedule` (type docs), decreasing.
    ///
    /// # Examples
    /// ```
    /// use scorelab_samplers::{solver::Spacing, Schedule};
    /// let edm = Schedule::edm(scorelab_core::SigmaRange { min: 0.002, max: 80.0 }, 7.0)?;
    /// let g = Spacing::Karras.levels(&edm, 18, 7.0);
    /// assert_eq!(g, Spacing::Schedule.levels(&edm, 18, 7.0)); // EDM's grid is Karras's
    /// let l = Spacing::LogSnr.levels(&edm, 3, 7.0);
    /// assert!((l[1] - (80.0f64 * 0.002).sqrt()).abs() < 1e-12 && l[3] == 0.0);
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    ///
    /// # Panics
    /// If `steps` is 0.
    pub fn levels(&self, schedule: &Schedule, steps: usize, rho: f64) -> Vec<f64> {
        assert!(steps >= 1, "a grid needs at least one step");
        let zero = schedule.ends_at_zero();
        let (t_hi, t_lo) = (schedule.t_max(), schedule.t_end());
        let (s_hi, s_lo) = (schedule.sigma(t_hi), schedule.sigma(t_lo));
        // The positive levels: N of them where the grid then steps to 0, else N + 1.
        let m = if zero { steps } else { steps + 1 };
        let frac = |i: usize| {
            if m == 1 {
                0.0
            } else {
                i as f64 / (m - 1) as f64
            }
        };
        let mut levels: Vec<f64> = match self {
            Spacing::Schedule => {
                return (0..=steps)
                    .map(|k| schedule.sigma(schedule.time(steps, k)))
                    .collect()
            }
            Spacing::Karras => {
                let (a, b) = (s_hi.powf(1.0 / rho), s_lo.powf(1.0 / rho));
                (0..m).map(|i| (a + frac(i) * (b - a)).powf(rho)).collect()
            }
            Spacing::LogSnr => {
                let (a, b) = (s_hi.ln(), s_lo.ln());
                (0..m).map(|i| (a + frac(i) * (b - a)).exp()).collect()
            }
            Spacing::UniformT | Spacing::Trailing => (0..m)
                .map(|i| schedule.sigma(t_hi + frac(i) * (t_lo - t_hi)))
                .collect(),
            Spacing::Leading => {
                let stride = (TRAIN_STEPS / steps).max(1);
                let dt = (t_hi - t_lo) / (TRAIN_STEPS - 1) as f64;
                let mut v: Vec<f64> = (0..steps)
                    .map(|k| {
                        let j = ((steps - 1 - k) * stride + 1).min(TRAIN_STEPS - 1);
                        schedule.sigma(t_lo + j as f64 * dt)
                    })
                    .collect();
                if !zero {
                    v.push(s_lo);
                }
                v
            }
        };
        // The ends exactly where the schedule's are (the formulas above round them).
        if !matches!(self, Spacing::Leading) {
            levels[0] = s_hi;
        }
        let last = levels.len() - 1;
        if m > 1 || !zero {
            levels[last] = s_lo;
        }
        if zero {
            levels.push(0.0);
        }
        levels
    }
}

/// The solver of a [`Solver`] (module docs for the updates).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// DPM-Solver++ multistep of order 1 (DDIM), 2 (`dpmpp_2m`) or 3 (`dpmpp_3m`).
    Dpmpp {
        /// 1, 2 or 3.
        order: usize,
    },
    /// DPM-Solver++(2M) SDE with noise η ∈ [0, 1] (1: the SDE's; 0: `dpmpp_2m`), midpoint form.
    DpmppSde {
        /// η.
        eta: f64,
    },
    /// UniPC, bh2, predictor of order 2 with the UniC corrector.
    Unipc,
    /// DPM-Solver-2, single step (two evaluations a step).
    Dpm2,
    /// Euler ancestral with noise η ∈ [0, 1].
    EulerAncestral {
        /// η (1: DDPM's ancestral noise; 0: Euler, DDIM with η = 0).
        eta: f64,
    },
}

impl Method {
    /// The kind as a config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            Method::Dpmpp { order: 1 } => "dpmpp_1s",
            Method::Dpmpp { order: 2 } => "dpmpp_2m",
            Method::Dpmpp { .. } => "dpmpp_3m",
            Method::DpmppSde { .. } => "dpmpp_2m_sde",
            Method::Unipc => "unipc",
            Method::Dpm2 => "dpm2",
            Method::EulerAncestral { .. } => "euler_ancestral",
        }
    }

    /// Whether it draws nothing after the start.
    pub fn deterministic(&self) -> bool {
        match self {
            Method::DpmppSde { eta } | Method::EulerAncestral { eta } => *eta == 0.0,
            _ => true,
        }
    }
}

/// A solver of [`Method`] on a [`Spacing`] of the schedule's noise levels (module docs).
///
/// # Examples
/// ```
/// use scorelab_densities::Gaussian;
/// use scorelab_samplers::solver::{Method, Solver, Spacing};
/// use scorelab_samplers::{sample, Schedule};
/// let edm = Schedule::edm(scorelab_core::SigmaRange { min: 0.002, max: 80.0 }, 7.0)?;
/// let s = Solver::new(edm, 200, Spacing::Karras, 7.0, Method::Dpmpp { order: 2 }, false)?;
/// // N(0, 1)'s exact flow maps 80 at σ = 80 to 80/√(1 + 80²); 2M's error is O(1/N²).
/// let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0);
/// let x = sample(&s, &Gaussian::standard(1), ndarray::array![[80.0]], &mut rng);
/// assert!((x[[0, 0]] - 80.0 / 6401f64.sqrt()).abs() < 1e-3);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Solver {
    pub(crate) schedule: Schedule,
    pub(crate) steps: usize,
    pub(crate) spacing: Spacing,
    pub(crate) rho: f64,
    pub(crate) method: Method,
    pub(crate) denoise: bool,
    levels: Vec<f64>,
}

impl Solver {
    /// N = `steps` steps of `method` on the `spacing` of `schedule`'s levels (`rho` for `karras`).
    ///
    /// # Errors
    /// `steps` unless ≥ 1; `rho` unless finite and > 0; `eta` outside [0, 1]; `order` outside
    /// 1 … 3; `denoise` on a grid that ends at σ̃ = 0; `grid` where its levels are not strictly
    /// decreasing (a `leading` grid of more steps than it has training steps).
    pub fn new(
        schedule: Schedule,
        steps: usize,
        spacing: Spacing,
        rho: f64,
        method: Method,
        denoise: bool,
    ) -> Result<Self, ParamError> {
        at_least_one(steps, "steps")?;
        crate::positive(rho, "rho")?;
        match method {
            Method::Dpmpp { order } if !(1..=3).contains(&order) => {
                return Err(ParamError::invalid(
                    "order",
                    format!("must be 1, 2 or 3, got {order}"),
                ))
            }
            Method::DpmppSde { eta } | Method::EulerAncestral { eta }
                if !(0.0..=1.0).contains(&eta) =>
            {
                return Err(ParamError::invalid(
                    "eta",
                    format!("must lie in [0, 1], got {eta}"),
                ))
            }
            _ => {}
        }
        let levels = spacing.levels(&schedule, steps, rho);
        if levels
            .windows(2)
            .any(|w| w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Less))
        {
            return Err(ParamError::invalid(
                "grid",
                format!("the {spacing:?} levels of {steps} steps are not strictly decreasing; use fewer steps or another grid"),
            ));
        }
        Ok(Solver {
            schedule,
            steps,
            spacing,
            rho,
            method,
            denoise: check_denoise(&schedule, denoise)?,
            levels,
        })
    }

    /// The N + 1 noise levels σ̃₀ > … > σ̃_N.
    pub fn levels(&self) -> &[f64] {
        &self.levels
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The spacing of the levels.
    pub fn spacing(&self) -> Spacing {
        self.spacing
    }
}

impl Outline for Solver {
    fn num_steps(&self) -> usize {
        self.steps
    }

    fn extra_score_evals(&self) -> usize {
        usize::from(self.denoise)
    }

    fn target_sigma(&self) -> Option<f64> {
        let last = *self.levels.last().expect("N + 1 levels");
        (!self.denoise && last > 0.0).then_some(last)
    }

    fn target_scale(&self) -> f64 {
        if self.denoise {
            1.0
        } else {
            self.schedule
                .alpha_at_sigma(*self.levels.last().expect("levels"))
        }
    }

    fn prior_std(&self) -> Option<f64> {
        Some(self.schedule.prior_std())
    }

    fn start(&self) -> Option<(f64, f64)> {
        let s = self.levels[0];
        Some((self.schedule.alpha_at_sigma(s), s))
    }

    fn sigma_needed(&self) -> Option<(f64, f64)> {
        let lo = self
            .levels
            .iter()
            .copied()
            .filter(|&s| s > 0.0)
            .fold(f64::INFINITY, f64::min);
        Some((lo, self.levels[0]))
    }
}

/// The state of a [`Solver`]: the chains (as x) and what the multistep methods carry.
#[derive(Debug, Clone, PartialEq)]
pub struct SolverState {
    /// The current points, `(n, d)`.
    pub x: Array2<f64>,
    /// Steps taken.
    pub step: usize,
    /// The last data predictions D, newest last (at most 2 kept).
    history: Vec<Array2<f64>>,
    /// UniPC: y before its last predictor step, and that step's order.
    before: Option<(Array2<f64>, usize)>,
}

impl Chains for SolverState {
    fn positions(&self) -> ArrayView2<'_, f64> {
        self.x.view()
    }
    fn steps_taken(&self) -> usize {
        self.step
    }
}

/// D(y, σ̃) = y + σ̃² s(y, σ̃).
fn data<S: NoisedScore + ?Sized>(source: &S, y: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
    let mut d = source.noised_score(y, sigma) * (sigma * sigma);
    d += &y;
    d
}

/// a·u + b·v.
fn lin(a: f64, u: &Array2<f64>, b: f64, v: &Array2<f64>) -> Array2<f64> {
    let mut out = u * a;
    out.scaled_add(b, v);
    out
}

impl Solver {
    /// λ_k = −log σ̃_k.
    fn lambda(&self, k: usize) -> f64 {
        -self.levels[k].ln()
    }

    /// UniC's correction of y_k (the predictor's output from y_{k−1}) from the D evaluated there.
    fn correct(
        &self,
        k: usize,
        state: &SolverState,
        d_new: &Array2<f64>,
        y_before: &Array2<f64>,
        order: usize,
    ) -> Array2<f64> {
        let (s0, st) = (self.levels[k - 1], self.levels[k]);
        let h = self.lambda(k) - self.lambda(k - 1);
        let phi1 = (-h).exp_m1();
        let b_h = phi1; // bh2: B(h) = e^{−h} − 1
        let m0 = state.history.last().expect("a D per step taken");
        let base = lin(st / s0, y_before, -phi1, m0);
        let d1_t = d_new - m0;
        let corr = if order < 2 || state.history.len() < 2 {
            d1_t * 0.5
        } else {
            let m1 = &state.history[state.history.len() - 2];
            let r1 = (self.lambda(k - 2) - self.lambda(k - 1)) / h;
            let d1 = (m1 - m0) / r1;
            // Solve [[1, 1], [r1, 1]] ρ = b, b the bh2 coefficients of orders 1 and 2.
            let hh = -h;
            let k1 = phi1 / hh - 1.0;
            let b1 = k1 / b_h;
            let k2 = k1 / hh - 0.5;
            let b2 = 2.0 * k2 / b_h;
            let rho0 = (b1 - b2) / (1.0 - r1);
            let rho1 = b1 - rho0;
            lin(rho0, &d1, rho1, &d1_t)
        };
        let mut y = base;
        y.scaled_add(-b_h, &corr);
        y
    }
}

impl<S: NoisedScore + ?Sized> Sampler<S> for Solver {
    type State = SolverState;

    fn init(&self, _source: &S, x0: Array2<f64>) -> SolverState {
        SolverState {
            x: x0,
            step: 0,
            history: vec![],
            before: None,
        }
    }

    fn step<R: Rng + ?Sized>(
        &self,
        source: &S,
        mut state: SolverState,
        rng: &mut R,
    ) -> (SolverState, Info) {
        let k = state.step;
        let (n, dim) = state.x.dim();
        let (s, sn) = (self.levels[k], self.levels[k + 1]);
        let (a, an) = (
            self.schedule.alpha_at_sigma(s),
            self.schedule.alpha_at_sigma(sn),
        );
        let z = match self.method {
            Method::DpmppSde { eta } | Method::EulerAncestral { eta } if eta > 0.0 && sn > 0.0 => {
                Some(standard_normal(n, dim, rng))
            }
            _ => None,
        };
        let mut y = if a == 1.0 {
            state.x.clone()
        } else {
            &state.x / a
        };
        let d = data(source, y.view(), s);
        let mut evals = 1;
        if let (Method::Unipc, Some((before, order))) = (self.method, &state.before) {
            y = self.correct(k, &state, &d, before, *order);
        }
        let h = if sn > 0.0 {
            (s / sn).ln()
        } else {
            f64::INFINITY
        };
        let y_next = match self.method {
            _ if sn == 0.0
                && !matches!(self.method, Method::EulerAncestral { .. } | Method::Dpm2) =>
            {
                d.clone()
            }
            Method::Dpmpp { order } => {
                let ord = order.min(1 + state.history.len());
                let phi1 = (-h).exp_m1();
                let dhat = match ord {
                    1 => d.clone(),
                    2 => {
                        let r = (self.lambda(k) - self.lambda(k - 1)) / h;
                        lin(
                            1.0 + 0.5 / r,
                            &d,
                            -0.5 / r,
                            state.history.last().expect("ord 2"),
                        )
                    }
                    _ => {
                        let (m1, m2) = (
                            &state.history[state.history.len() - 1],
                            &state.history[state.history.len() - 2],
                        );
                        let r0 = (self.lambda(k) - self.lambda(k - 1)) / h;
                        let r1 = (self.lambda(k - 1) - self.lambda(k - 2)) / h;
                        let d10 = (&d - m1) / r0;
                        let d11 = (m1 - m2) / r1;
                        let d1 = lin(1.0 + r0 / (r0 + r1), &d10, -r0 / (r0 + r1), &d11);
                        let d2 = (&d10 - &d11) / (r0 + r1);
                        let phi2 = phi1 / h + 1.0;
                        let phi3 = phi2 / h - 0.5;
                        // −φ₁ D̂ = −φ₁ D + φ₂ D1 − φ₃ D2.
                        let mut out = d.clone();
                        out.scaled_add(-phi2 / phi1, &d1);
                        out.scaled_add(phi3 / phi1, &d2);
                        out
                    }
                };
                lin(sn / s, &y, -phi1, &dhat)
            }
            Method::DpmppSde { eta } => {
                let eh = eta * h;
                let c = -(-h - eh).exp_m1();
                let mut out = lin(sn / s * (-eh).exp(), &y, c, &d);
                if let Some(prev) = state.history.last() {
                    let r = (self.lambda(k) - self.lambda(k - 1)) / h;
                    out.scaled_add(0.5 * c / r, &(&d - prev));
                }
                if let Some(z) = &z {
                    out.scaled_add(sn * (-(-2.0 * eh).exp_m1()).sqrt(), z);
                }
                out
            }
            Method::Unipc => {
                let phi1 = (-h).exp_m1();
                let mut out = lin(sn / s, &y, -phi1, &d);
                if let Some(prev) = state.history.last() {
                    let r1 = (self.lambda(k - 1) - self.lambda(k)) / h;
                    out.scaled_add(-phi1 * 0.5 / r1, &(prev - &d));
                }
                out
            }
            Method::Dpm2 => {
                let deriv = (&y - &d) / s;
                if sn == 0.0 {
                    d.clone()
                } else {
                    let sm = (s * sn).sqrt();
                    let ym = lin(1.0, &y, sm - s, &deriv);
                    let dm = data(source, ym.view(), sm);
                    evals += 1;
                    let deriv_m = (&ym - &dm) / sm;
                    lin(1.0, &y, sn - s, &deriv_m)
                }
            }
            Method::EulerAncestral { eta } => {
                let up = if sn > 0.0 {
                    (eta * sn * ((s * s - sn * sn).max(0.0)).sqrt() / s).min(sn)
                } else {
                    0.0
                };
                let down = (sn * sn - up * up).max(0.0).sqrt();
                let mut out = lin(1.0, &y, (down - s) / s, &(&y - &d));
                if let Some(z) = &z {
                    out.scaled_add(up, z);
                }
                out
            }
        };
        if matches!(self.method, Method::Unipc) {
            let order = if state.history.is_empty() || sn == 0.0 {
                1
            } else {
                2
            };
            state.before = Some((y, order));
        }
        state.history.push(d);
        if state.history.len() > 2 {
            state.history.remove(0);
        }
        state.x = if an == 1.0 { y_next } else { y_next * an };
        state.step += 1;
        let info = Info {
            step: k,
            step_size: s - sn,
            sigma: Some(s),
            acceptance_rate: None,
            score_evals: evals,
        };
        (state, info)
    }

    fn finish(&self, source: &S, state: SolverState) -> Array2<f64> {
        let last = *self.levels.last().expect("levels");
        if self.denoise {
            denoised(
                source,
                state.x.view(),
                self.schedule.alpha_at_sigma(last),
                last,
            )
        } else {
            state.x
        }
    }
}

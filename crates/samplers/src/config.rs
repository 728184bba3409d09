//! How configs spell a [`Schedule`] and an [`AnySampler`]: the serde forms through which a TOML
//! table, a Rust constructor and a Python dict reach the same validating constructors. Private:
//! the library types are their own config (`#[serde(try_from, into)]`).

use crate::diffusion::{Ancestral, Churn, Ddim, Heun};
use crate::schedule::{Kind, Schedule};
use crate::sde::{Ode, OdeSolver, Pc, ReverseSde};
use crate::solve::Rk45;
use crate::solver::{Method, Solver, Spacing};
use crate::{AnnealedLangevin, Langevin, Mala, Outline};
use scorelab_core::{ParamError, SigmaRange};
use serde::{Deserialize, Serialize};

/// `schedule = {…}` as written (see [`Schedule`] for the formulas).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ScheduleDef {
    Ve {
        sigma_min: f64,
        sigma_max: f64,
    },
    Vp {
        #[serde(default = "default_beta_min")]
        beta_min: f64,
        #[serde(default = "default_beta_max")]
        beta_max: f64,
        /// `None`: the reader's default (1e-3 sampling, 1e-5 a likelihood).
        #[serde(default)]
        t_min: Option<f64>,
    },
    Subvp {
        #[serde(default = "default_beta_min")]
        beta_min: f64,
        #[serde(default = "default_beta_max")]
        beta_max: f64,
        #[serde(default)]
        t_min: Option<f64>,
    },
    Edm {
        #[serde(default = "default_edm_sigma_min")]
        sigma_min: f64,
        #[serde(default = "default_edm_sigma_max")]
        sigma_max: f64,
        #[serde(default = "default_rho")]
        rho: f64,
    },
    Linear {
        #[serde(default)]
        t_min: Option<f64>,
        #[serde(default = "default_linear_t_max")]
        t_max: f64,
    },
    /// Any other kind: refused by [`ScheduleDef::build`] with a message naming the key (serde's
    /// own error inside a sampler table cannot say which key it was).
    #[serde(other)]
    Unknown,
}

/// Where the linear path's grid starts: σ̃ = 999, its noise part 0.999 of x_T.
fn default_linear_t_max() -> f64 {
    0.999
}

fn default_beta_min() -> f64 {
    0.1
}
fn default_beta_max() -> f64 {
    20.0
}
/// Where sampling on `vp`/`subvp` stops by default (Song et al. 2021).
const SAMPLING_T_MIN: f64 = 1e-3;
/// Where a likelihood's integration on `vp`/`subvp` stops by default: closer to the data than
/// sampling, since log p of the data is asked, not samples that look like it.
const LIKELIHOOD_T_MIN: f64 = 1e-5;
fn default_edm_sigma_min() -> f64 {
    0.002
}
fn default_edm_sigma_max() -> f64 {
    80.0
}
fn default_rho() -> f64 {
    7.0
}
fn default_s_noise() -> f64 {
    1.0
}
fn default_tolerance() -> f64 {
    1e-5
}
fn default_corrector_steps() -> usize {
    1
}
fn default_snr() -> f64 {
    0.16
}

impl TryFrom<ScheduleDef> for Schedule {
    type Error = ParamError;
    fn try_from(d: ScheduleDef) -> Result<Self, ParamError> {
        d.build(SAMPLING_T_MIN)
    }
}

/// Deserialises an optional `schedule = {…}` of a likelihood: as [`Schedule`]'s own, except that
/// `vp` and `subvp` stop at t_min = 1e-5 unless it is given (1e-3 when sampling). For
/// `#[serde(default, deserialize_with = "…")]` on an `Option<Schedule>`.
///
/// # Errors
/// The schedule's constructor's message, starting with the key it names.
pub fn likelihood_schedule<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Schedule>, D::Error> {
    let def = Option::<ScheduleDef>::deserialize(d)?;
    def.map(|def| def.build(LIKELIHOOD_T_MIN))
        .transpose()
        .map_err(serde::de::Error::custom)
}

impl Schedule {
    /// The schedule a likelihood integrates on when its config names none: `vp` with Song et
    /// al.'s β's, stopped at t_min = 1e-5 (closer to the data than sampling's 1e-3).
    ///
    /// # Examples
    /// ```
    /// use scorelab_samplers::Schedule;
    /// assert_eq!(Schedule::likelihood_default(), Schedule::vp(0.1, 20.0, 1e-5).unwrap());
    /// ```
    pub fn likelihood_default() -> Schedule {
        vp_default()
            .build(LIKELIHOOD_T_MIN)
            .expect("the default schedule is valid")
    }
}

impl ScheduleDef {
    /// The schedule, with `t_min` for `vp`/`subvp` where the table leaves it out.
    fn build(self, t_min_default: f64) -> Result<Schedule, ParamError> {
        match self {
            ScheduleDef::Ve {
                sigma_min,
                sigma_max,
            } => Schedule::ve(SigmaRange {
                min: sigma_min,
                max: sigma_max,
            }),
            ScheduleDef::Vp {
                beta_min,
                beta_max,
                t_min,
            } => Schedule::vp(beta_min, beta_max, t_min.unwrap_or(t_min_default)),
            ScheduleDef::Subvp {
                beta_min,
                beta_max,
                t_min,
            } => Schedule::subvp(beta_min, beta_max, t_min.unwrap_or(t_min_default)),
            ScheduleDef::Edm {
                sigma_min,
                sigma_max,
                rho,
            } => Schedule::edm(
                SigmaRange {
                    min: sigma_min,
                    max: sigma_max,
                },
                rho,
            ),
            ScheduleDef::Linear { t_min, t_max } => {
                Schedule::linear(t_min.unwrap_or(t_min_default), t_max)
            }
            ScheduleDef::Unknown => Err(ParamError::invalid(
                "kind",
                "unknown schedule; use ve, vp, subvp, edm or linear",
            )),
        }
    }
}

impl From<Schedule> for ScheduleDef {
    fn from(s: Schedule) -> Self {
        match s.0 {
            Kind::Ve(ve) => ScheduleDef::Ve {
                sigma_min: ve.sigma_min,
                sigma_max: ve.sigma_max,
            },
            Kind::Vp {
                beta_min,
                beta_max,
                t_min,
                sub: false,
            } => ScheduleDef::Vp {
                beta_min,
                beta_max,
                t_min: Some(t_min),
            },
            Kind::Vp {
                beta_min,
                beta_max,
                t_min,
                sub: true,
            } => ScheduleDef::Subvp {
                beta_min,
                beta_max,
                t_min: Some(t_min),
            },
            Kind::Linear { t_min, t_max } => ScheduleDef::Linear {
                t_min: Some(t_min),
                t_max,
            },
            Kind::Edm {
                sigma_min,
                sigma_max,
                rho,
            } => ScheduleDef::Edm {
                sigma_min,
                sigma_max,
                rho,
            },
        }
    }
}

/// `solver` of the `ode` sampler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub(crate) enum SolverName {
    Euler,
    #[default]
    Heun,
    Rk45,
}

/// Inside a sampler table serde cannot say which key failed: the message names it.
impl TryFrom<String> for SolverName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "euler" => Ok(SolverName::Euler),
            "heun" => Ok(SolverName::Heun),
            "rk45" => Ok(SolverName::Rk45),
            other => Err(format!(
                "solver: unknown ODE solver {other:?}; use euler, heun or rk45"
            )),
        }
    }
}

/// The keys of the solvers of [`crate::solver`] (one set for every such kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SolverKeys {
    steps: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    schedule: Option<ScheduleDef>,
    #[serde(default)]
    grid: Spacing,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rho: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    eta: Option<f64>,
    #[serde(default)]
    denoise: bool,
}

impl SolverKeys {
    /// The solver of `method` (its η, if it has one, from `eta`, default 1).
    fn build(
        self,
        kind: &str,
        method: impl Fn(f64) -> Method,
        noisy: bool,
    ) -> Result<Solver, ParamError> {
        if self.eta.is_some() && !noisy {
            return Err(ParamError::invalid(
                "eta",
                format!(
                    "{kind} draws no noise: remove eta (dpmpp_2m_sde and euler_ancestral take one)"
                ),
            ));
        }
        if self.rho.is_some() && self.grid != Spacing::Karras {
            return Err(ParamError::invalid(
                "rho",
                "applies to grid = \"karras\" only: remove it, or set grid = \"karras\"",
            ));
        }
        let schedule = schedule_of(self.schedule, None, None, Some(edm_default()))?;
        Solver::new(
            schedule,
            self.steps,
            self.grid,
            self.rho.unwrap_or_else(default_rho),
            method(self.eta.unwrap_or(1.0)),
            self.denoise,
        )
    }

    fn of(m: &Solver, schedule: Option<ScheduleDef>) -> Self {
        let eta = match m.method {
            Method::DpmppSde { eta } | Method::EulerAncestral { eta } => Some(eta),
            _ => None,
        };
        SolverKeys {
            steps: m.steps,
            schedule,
            grid: m.spacing,
            rho: (m.spacing == Spacing::Karras).then_some(m.rho),
            eta,
            denoise: m.denoise,
        }
    }
}

/// `[sampler]` as written: `kind` and that kind's keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum SamplerDef {
    Langevin {
        eps: f64,
        steps: usize,
    },
    Mala {
        eps: f64,
        steps: usize,
    },
    AnnealedLangevin {
        eps: f64,
        steps: usize,
        sigma_max: f64,
        sigma_min: f64,
        levels: usize,
        #[serde(default)]
        denoise: bool,
    },
    ReverseSde {
        steps: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<ScheduleDef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_min: Option<f64>,
        #[serde(default)]
        denoise: bool,
    },
    Pc {
        steps: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<ScheduleDef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_min: Option<f64>,
        #[serde(default = "default_corrector_steps")]
        corrector_steps: usize,
        #[serde(default = "default_snr")]
        snr: f64,
        #[serde(default)]
        denoise: bool,
    },
    Ancestral {
        steps: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<ScheduleDef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        denoise: Option<bool>,
    },
    Ddim {
        steps: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<ScheduleDef>,
        #[serde(default)]
        eta: f64,
        #[serde(default)]
        denoise: bool,
    },
    Heun {
        steps: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<ScheduleDef>,
        #[serde(default)]
        s_churn: f64,
        #[serde(default)]
        s_tmin: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        s_tmax: Option<f64>,
        #[serde(default = "default_s_noise")]
        s_noise: f64,
        #[serde(default)]
        denoise: bool,
    },
    #[serde(rename = "dpmpp_2m")]
    Dpmpp2m(SolverKeys),
    #[serde(rename = "dpmpp_3m")]
    Dpmpp3m(SolverKeys),
    #[serde(rename = "dpmpp_2m_sde")]
    Dpmpp2mSde(SolverKeys),
    Unipc(SolverKeys),
    #[serde(rename = "dpm2")]
    Dpm2(SolverKeys),
    EulerAncestral(SolverKeys),
    Ode {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        steps: Option<usize>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schedule: Option<ScheduleDef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_max: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_min: Option<f64>,
        #[serde(default)]
        solver: SolverName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtol: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        atol: Option<f64>,
        #[serde(default)]
        denoise: bool,
    },
}

/// A validated sampler, any kind: the `[sampler]` table of a config (docs/reference.md lists each
/// kind's keys and defaults), deserialised through the kind's own constructor.
///
/// # Examples
/// ```
/// use scorelab_samplers::{AnySampler, Outline};
/// let s: AnySampler = toml::from_str("kind = \"heun\"\nsteps = 18")?;
/// assert_eq!((s.kind(), s.outline().num_steps()), ("heun", 18));
/// assert_eq!(s, AnySampler::heun(18)?); // EDM's schedule is heun's default
/// let bad = toml::from_str::<AnySampler>("kind = \"langevin\"\neps = 0.0\nsteps = 10").unwrap_err();
/// assert_eq!(bad.message(), "eps: must be a finite number > 0, got 0");
/// let bad = toml::from_str::<AnySampler>("kind = \"ddim\"\nsteps = 10\nschedule = { kind = \"vp\", t_min = 2.0 }");
/// assert!(bad.unwrap_err().message().starts_with("schedule.t_min: must lie strictly between 0 and 1"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "SamplerDef", into = "SamplerDef")]
pub enum AnySampler {
    /// [`Langevin`].
    Langevin(Langevin),
    /// [`Mala`].
    Mala(Mala),
    /// [`AnnealedLangevin`].
    AnnealedLangevin(AnnealedLangevin),
    /// [`ReverseSde`].
    ReverseSde(ReverseSde),
    /// [`Pc`].
    Pc(Pc),
    /// [`Ode`].
    Ode(Ode),
    /// [`Ancestral`].
    Ancestral(Ancestral),
    /// [`Ddim`].
    Ddim(Ddim),
    /// [`Heun`].
    Heun(Heun),
    /// A [`Solver`] of [`crate::solver`]: `dpmpp_2m`, `dpmpp_3m`, `dpmpp_2m_sde`, `unipc`,
    /// `dpm2`, `euler_ancestral`.
    Solver(Solver),
}

impl AnySampler {
    /// EDM's deterministic sampler (Karras et al. 2022, Algorithm 1): Heun's second-order steps on
    /// EDM's σ̃ grid (ρ = 7, σ̃ from 80 to 0.002), `steps` steps (2·steps − 1 score evaluations).
    ///
    /// # Errors
    /// [`ParamError`] naming `steps` for 0 steps.
    pub fn heun(steps: usize) -> Result<Self, ParamError> {
        let edm = Schedule::edm(
            SigmaRange {
                min: default_edm_sigma_min(),
                max: default_edm_sigma_max(),
            },
            default_rho(),
        )?;
        Ok(AnySampler::Heun(Heun::new(
            edm,
            steps,
            Churn::default(),
            false,
        )?))
    }

    /// The same sampler with `steps` steps (for a sweep of accuracy against cost): every other
    /// parameter kept, validated by the kind's constructor.
    ///
    /// # Examples
    /// ```
    /// use scorelab_samplers::{AnySampler, Outline};
    /// assert_eq!(AnySampler::heun(18)?.with_steps(40)?, AnySampler::heun(40)?);
    /// let rk45: AnySampler = toml::from_str("kind = \"ode\"\nsolver = \"rk45\"\nschedule = { kind = \"vp\" }")?;
    /// assert!(rk45.with_steps(10).unwrap_err().to_string().starts_with("steps: rk45 chooses its own steps"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`ParamError`] naming `steps` where the kind refuses it (the adaptive ODE solver has none).
    pub fn with_steps(&self, steps: usize) -> Result<Self, ParamError> {
        let mut def = SamplerDef::from(self.clone());
        match &mut def {
            SamplerDef::Langevin { steps: s, .. }
            | SamplerDef::Mala { steps: s, .. }
            | SamplerDef::AnnealedLangevin { steps: s, .. }
            | SamplerDef::ReverseSde { steps: s, .. }
            | SamplerDef::Pc { steps: s, .. }
            | SamplerDef::Ancestral { steps: s, .. }
            | SamplerDef::Ddim { steps: s, .. }
            | SamplerDef::Heun { steps: s, .. } => *s = steps,
            SamplerDef::Dpmpp2m(k)
            | SamplerDef::Dpmpp3m(k)
            | SamplerDef::Dpmpp2mSde(k)
            | SamplerDef::Unipc(k)
            | SamplerDef::Dpm2(k)
            | SamplerDef::EulerAncestral(k) => k.steps = steps,
            SamplerDef::Ode { steps: s, .. } => *s = Some(steps),
        }
        AnySampler::try_from(def)
    }

    /// The sampler's [`Outline`].
    pub fn outline(&self) -> &dyn Outline {
        match self {
            AnySampler::Langevin(m) => m,
            AnySampler::Mala(m) => m,
            AnySampler::AnnealedLangevin(m) => m,
            AnySampler::ReverseSde(m) => m,
            AnySampler::Pc(m) => m,
            AnySampler::Ode(m) => m,
            AnySampler::Ancestral(m) => m,
            AnySampler::Ddim(m) => m,
            AnySampler::Heun(m) => m,
            AnySampler::Solver(m) => m,
        }
    }

    /// Runs a noise-conditional sampler from `x0` to the end on the score `source` ([`crate::sample`]
    /// for whichever kind it holds); `None` for the clean-score samplers (`langevin`, `mala`).
    ///
    /// # Examples
    /// ```
    /// use rand::SeedableRng;
    /// use scorelab_densities::Gaussian;
    /// use scorelab_samplers::AnySampler;
    /// let heun = AnySampler::heun(200)?;
    /// let x0 = ndarray::Array2::from_elem((4, 2), 80.0);
    /// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    /// let x = heun.sample_noised(&Gaussian::standard(2), x0, &mut rng).expect("noise-conditional");
    /// // N(0, I)'s exact flow maps 80 at σ = 80 to 80/√(1 + 80²) ≈ 1; Heun's error is O(1/N²).
    /// assert!((x[[0, 0]] - 80.0 / 6401f64.sqrt()).abs() < 1e-3);
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    pub fn sample_noised<R: rand::Rng + ?Sized>(
        &self,
        source: &dyn scorelab_core::NoisedScore,
        x0: ndarray::Array2<f64>,
        rng: &mut R,
    ) -> Option<ndarray::Array2<f64>> {
        Some(match self {
            AnySampler::Langevin(_) | AnySampler::Mala(_) => return None,
            AnySampler::AnnealedLangevin(m) => crate::sample(m, source, x0, rng),
            AnySampler::ReverseSde(m) => crate::sample(m, source, x0, rng),
            AnySampler::Pc(m) => crate::sample(m, source, x0, rng),
            AnySampler::Ode(m) => crate::sample(m, source, x0, rng),
            AnySampler::Ancestral(m) => crate::sample(m, source, x0, rng),
            AnySampler::Ddim(m) => crate::sample(m, source, x0, rng),
            AnySampler::Heun(m) => crate::sample(m, source, x0, rng),
            AnySampler::Solver(m) => crate::sample(m, source, x0, rng),
        })
    }

    /// Whether it needs the noise-conditional score s(x, σ).
    pub fn noise_conditional(&self) -> bool {
        !matches!(self, AnySampler::Langevin(_) | AnySampler::Mala(_))
    }

    /// Whether it draws nothing after the start (the probability-flow ODE, DDIM with η = 0,
    /// Heun without churn).
    pub fn deterministic(&self) -> bool {
        match self {
            AnySampler::Ode(_) => true,
            AnySampler::Ddim(d) => d.eta == 0.0,
            AnySampler::Heun(h) => h.churn.s_churn == 0.0,
            AnySampler::Solver(m) => m.method.deterministic(),
            _ => false,
        }
    }

    /// The kind as a config spells it (`langevin`, `mala`, `annealed_langevin`, `reverse_sde`,
    /// `pc`, `ode`, `ancestral`, `ddim`, `heun`).
    pub fn kind(&self) -> &'static str {
        match self {
            AnySampler::Langevin(_) => "langevin",
            AnySampler::Mala(_) => "mala",
            AnySampler::AnnealedLangevin(_) => "annealed_langevin",
            AnySampler::ReverseSde(_) => "reverse_sde",
            AnySampler::Pc(_) => "pc",
            AnySampler::Ode(_) => "ode",
            AnySampler::Ancestral(_) => "ancestral",
            AnySampler::Ddim(_) => "ddim",
            AnySampler::Heun(_) => "heun",
            AnySampler::Solver(m) => m.method.kind(),
        }
    }
}

/// The schedule of a diffusion sampler: `schedule = {…}`, or the VE schedule of the older
/// `sigma_max`/`sigma_min` keys, or the kind's default.
fn schedule_of(
    schedule: Option<ScheduleDef>,
    sigma_max: Option<f64>,
    sigma_min: Option<f64>,
    default: Option<ScheduleDef>,
) -> Result<Schedule, ParamError> {
    match (schedule, sigma_max, sigma_min) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ParamError::invalid(
            if sigma_max.is_some() { "sigma_max" } else { "sigma_min" },
            "give either schedule = {…} or sigma_max and sigma_min (the VE schedule), not both; for VE write schedule = { kind = \"ve\", sigma_min = …, sigma_max = … }",
        )),
        (Some(def), None, None) => Schedule::try_from(def).map_err(|e| e.within("schedule")),
        (None, Some(max), Some(min)) => Schedule::ve(SigmaRange { min, max }),
        (None, Some(_), None) => Err(ParamError::invalid(
            "sigma_min",
            "missing: the VE schedule needs sigma_max and sigma_min",
        )),
        (None, None, Some(_)) => Err(ParamError::invalid(
            "sigma_max",
            "missing: the VE schedule needs sigma_max and sigma_min",
        )),
        (None, None, None) => match default {
            Some(def) => Schedule::try_from(def).map_err(|e| e.within("schedule")),
            None => Err(ParamError::invalid(
                "schedule",
                "missing: give schedule = { kind = \"vp\" } (or \"subvp\", \"edm\", { kind = \"ve\", sigma_min = 0.01, sigma_max = 20.0 }), or sigma_max and sigma_min for VE",
            )),
        },
    }
}

fn vp_default() -> ScheduleDef {
    ScheduleDef::Vp {
        beta_min: default_beta_min(),
        beta_max: default_beta_max(),
        t_min: None,
    }
}

fn edm_default() -> ScheduleDef {
    ScheduleDef::Edm {
        sigma_min: default_edm_sigma_min(),
        sigma_max: default_edm_sigma_max(),
        rho: default_rho(),
    }
}

impl TryFrom<SamplerDef> for AnySampler {
    type Error = ParamError;
    fn try_from(def: SamplerDef) -> Result<Self, ParamError> {
        Ok(match def {
            SamplerDef::Langevin { eps, steps } => AnySampler::Langevin(Langevin::new(eps, steps)?),
            SamplerDef::Mala { eps, steps } => AnySampler::Mala(Mala::new(eps, steps)?),
            SamplerDef::AnnealedLangevin {
                eps,
                steps,
                sigma_max,
                sigma_min,
                levels,
                denoise,
            } => AnySampler::AnnealedLangevin(AnnealedLangevin::new(
                SigmaRange {
                    min: sigma_min,
                    max: sigma_max,
                },
                levels,
                steps,
                eps,
                denoise,
            )?),
            SamplerDef::ReverseSde {
                steps,
                schedule,
                sigma_max,
                sigma_min,
                denoise,
            } => AnySampler::ReverseSde(ReverseSde::new(
                schedule_of(schedule, sigma_max, sigma_min, None)?,
                steps,
                denoise,
            )?),
            SamplerDef::Pc {
                steps,
                schedule,
                sigma_max,
                sigma_min,
                corrector_steps,
                snr,
                denoise,
            } => AnySampler::Pc(Pc::new(
                schedule_of(schedule, sigma_max, sigma_min, None)?,
                steps,
                corrector_steps,
                snr,
                denoise,
            )?),
            SamplerDef::Ode {
                steps,
                schedule,
                sigma_max,
                sigma_min,
                solver,
                rtol,
                atol,
                denoise,
            } => {
                let sch = schedule_of(schedule, sigma_max, sigma_min, None)?;
                let solver = match (solver, steps) {
                    (SolverName::Rk45, Some(_)) => {
                        return Err(ParamError::invalid(
                            "steps",
                            "rk45 chooses its own steps (its cost is set by rtol and atol); remove steps",
                        ))
                    }
                    (SolverName::Rk45, None) => OdeSolver::Rk45(Rk45::new(
                        rtol.unwrap_or_else(default_tolerance),
                        atol.unwrap_or_else(default_tolerance),
                    )?),
                    (other, _) if rtol.is_some() || atol.is_some() => {
                        let key = if rtol.is_some() { "rtol" } else { "atol" };
                        let name = if other == SolverName::Euler { "euler" } else { "heun" };
                        return Err(ParamError::invalid(
                            key,
                            format!("only the adaptive solver uses it, not {name:?}; set solver = \"rk45\" or remove {key}"),
                        ));
                    }
                    (_, None) => {
                        return Err(ParamError::invalid(
                            "steps",
                            "the fixed-step solvers need steps (e.g. steps = 18), or use solver = \"rk45\"",
                        ))
                    }
                    (SolverName::Euler, Some(_)) => OdeSolver::Euler,
                    (SolverName::Heun, Some(_)) => OdeSolver::Heun,
                };
                AnySampler::Ode(Ode::with_solver(sch, solver, steps.unwrap_or(1), denoise)?)
            }
            SamplerDef::Ancestral {
                steps,
                schedule,
                denoise,
            } => {
                if denoise == Some(true) {
                    return Err(ParamError::invalid(
                        "denoise",
                        "the ancestral chain already ends at σ̃ = 0 (its last step adds no noise); remove denoise",
                    ));
                }
                AnySampler::Ancestral(Ancestral::new(
                    schedule_of(schedule, None, None, Some(vp_default()))?,
                    steps,
                )?)
            }
            SamplerDef::Ddim {
                steps,
                schedule,
                eta,
                denoise,
            } => AnySampler::Ddim(Ddim::new(
                schedule_of(schedule, None, None, Some(vp_default()))?,
                steps,
                eta,
                denoise,
            )?),
            SamplerDef::Dpmpp2m(k) => {
                AnySampler::Solver(k.build("dpmpp_2m", |_| Method::Dpmpp { order: 2 }, false)?)
            }
            SamplerDef::Dpmpp3m(k) => {
                AnySampler::Solver(k.build("dpmpp_3m", |_| Method::Dpmpp { order: 3 }, false)?)
            }
            SamplerDef::Dpmpp2mSde(k) => {
                AnySampler::Solver(k.build("dpmpp_2m_sde", |eta| Method::DpmppSde { eta }, true)?)
            }
            SamplerDef::Unipc(k) => {
                AnySampler::Solver(k.build("unipc", |_| Method::Unipc, false)?)
            }
            SamplerDef::Dpm2(k) => AnySampler::Solver(k.build("dpm2", |_| Method::Dpm2, false)?),
            SamplerDef::EulerAncestral(k) => AnySampler::Solver(k.build(
                "euler_ancestral",
                |eta| Method::EulerAncestral { eta },
                true,
            )?),
            SamplerDef::Heun {
                steps,
                schedule,
                s_churn,
                s_tmin,
                s_tmax,
                s_noise,
                denoise,
            } => AnySampler::Heun(Heun::new(
                schedule_of(schedule, None, None, Some(edm_default()))?,
                steps,
                Churn {
                    s_churn,
                    s_tmin,
                    s_tmax: s_tmax.unwrap_or(f64::INFINITY),
                    s_noise,
                },
                denoise,
            )?),
        })
    }
}

impl From<AnySampler> for SamplerDef {
    fn from(s: AnySampler) -> Self {
        let schedule = |s: Schedule| Some(ScheduleDef::from(s));
        match s {
            AnySampler::Langevin(m) => SamplerDef::Langevin {
                eps: m.eps,
                steps: m.steps,
            },
            AnySampler::Mala(m) => SamplerDef::Mala {
                eps: m.eps,
                steps: m.steps,
            },
            // The geometric levels start at σ_max and end at σ_min exactly.
            AnySampler::AnnealedLangevin(m) => SamplerDef::AnnealedLangevin {
                eps: m.eps,
                steps: m.steps_per_level,
                sigma_max: m.sigmas[0],
                sigma_min: m.sigmas[m.sigmas.len() - 1],
                levels: m.sigmas.len(),
                denoise: m.denoise,
            },
            AnySampler::ReverseSde(m) => SamplerDef::ReverseSde {
                steps: m.steps,
                schedule: schedule(m.schedule),
                sigma_max: None,
                sigma_min: None,
                denoise: m.denoise,
            },
            AnySampler::Pc(m) => SamplerDef::Pc {
                steps: m.steps,
                schedule: schedule(m.schedule),
                sigma_max: None,
                sigma_min: None,
                corrector_steps: m.corrector_steps,
                snr: m.snr,
                denoise: m.denoise,
            },
            AnySampler::Ode(m) => {
                let (solver, steps, rtol, atol) = match m.solver {
                    OdeSolver::Euler => (SolverName::Euler, Some(m.steps), None, None),
                    OdeSolver::Heun => (SolverName::Heun, Some(m.steps), None, None),
                    OdeSolver::Rk45(r) => (SolverName::Rk45, None, Some(r.rtol), Some(r.atol)),
                };
                SamplerDef::Ode {
                    steps,
                    schedule: schedule(m.schedule),
                    sigma_max: None,
                    sigma_min: None,
                    solver,
                    rtol,
                    atol,
                    denoise: m.denoise,
                }
            }
            AnySampler::Ancestral(m) => SamplerDef::Ancestral {
                steps: m.betas.len(),
                schedule: schedule(m.schedule),
                denoise: None,
            },
            AnySampler::Ddim(m) => SamplerDef::Ddim {
                steps: m.steps,
                schedule: schedule(m.schedule),
                eta: m.eta,
                denoise: m.denoise,
            },
            AnySampler::Solver(m) => {
                let keys = SolverKeys::of(&m, schedule(m.schedule));
                match m.method {
                    Method::Dpmpp { order: 3 } => SamplerDef::Dpmpp3m(keys),
                    Method::Dpmpp { .. } => SamplerDef::Dpmpp2m(keys),
                    Method::DpmppSde { .. } => SamplerDef::Dpmpp2mSde(keys),
                    Method::Unipc => SamplerDef::Unipc(keys),
                    Method::Dpm2 => SamplerDef::Dpm2(keys),
                    Method::EulerAncestral { .. } => SamplerDef::EulerAncestral(keys),
                }
            }
            AnySampler::Heun(m) => SamplerDef::Heun {
                steps: m.steps,
                schedule: schedule(m.schedule),
                s_churn: m.churn.s_churn,
                s_tmin: m.churn.s_tmin,
                s_tmax: m.churn.s_tmax.is_finite().then_some(m.churn.s_tmax),
                s_noise: m.churn.s_noise,
                denoise: m.denoise,
            },
        }
    }
}

//! Likelihoods of a score through its probability-flow ODE: a [`LikelihoodPlan`] (a TOML file is
//! one) validated into an [`Estimation`], whose [`Estimation::run`] gives log p, its standard
//! error, bits/dim and the cost of every point (the mathematics: [`scorelab_samplers::likelihood`]).
//!
//! The score comes from an analytic density with exact marginal scores (`gaussian`,
//! `gaussian_mixture`, `standard_normal`: p_t is again a mixture) or from a noise-conditional
//! network written by `scorelab train` (`model_dir`). What is estimated is the density of the
//! marginal at the ODE's start t₀, α(t₀)(x₀ + σ̃(t₀)z) (t_min = 1e-5 by default for `vp`/`subvp`,
//! σ_min for `ve`/`edm`), in the data's own units: a network's log-density in standardised units
//! gets the transform's log-Jacobian.
//!
//! **Dequantisation.** Integer data have no density; with `dequantize = q` (one width for every
//! column, or one per column with 0 for a continuous one) each point is moved by u ∼ U(−q/2, q/2)
//! per quantised column, `dequantize_draws` times, and `log_p` is the mean of log p(x + u). Since
//! P(x) = ∫_bin p = (Π q) E_u p(x + u) ≥ (Π q) exp E_u log p(x + u) (Jensen),
//! `bits_per_dim` = −(log_p + Σ log q)/(D ln 2) is an upper bound, in expectation over the
//! draws, on −log₂ P(x)/D: the discrete data's bits/dim with the bins as unit (Theis et al. 2016;
//! Ho et al. 2019).
//!
//! Randomness: Hutchinson's probes and the dequantisation noise come from
//! `ChaCha8Rng::seed_from_u64(seed)`, batch by batch (for each draw: the noise, then the probes),
//! so the same config, points and seed give the same CSV byte for byte.
//!
//! ```
//! use ndarray::array;
//! use scorelab_pipeline::likelihood::LikelihoodPlan;
//! let plan: LikelihoodPlan = toml::from_str(r#"
//!     density = { kind = "standard_normal", dim = 2 }
//!     schedule = { kind = "vp" }
//!     rtol = 1e-6
//!     atol = 1e-6
//! "#).unwrap();
//! let est = plan.prepare()?;
//! let x = array![[0.0, 0.0], [1.0, -2.0]];
//! let out = est.run(x.view(), &mut ())?;
//! // N(0, I) is invariant under VP, so p_{t₀} = N(0, I): log p(0) = −log 2π.
//! assert!((out.rows[0].log_p + (2.0 * std::f64::consts::PI).ln()).abs() < 1e-4);
//! # Ok::<(), scorelab_pipeline::PipelineError>(())
//! ```

pub use crate::data::Dequantize;
use crate::data::Transform;
use crate::error::{PipelineError, Result};
use crate::files::cell;
use crate::memory::{self, MemoryLimit};
use crate::observe::{Control, Observe};
use crate::sample::PriorKind;
use crate::spec::DensitySpec;
use crate::train::TrainedModel;
use ndarray::{Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, LogDensity, NoisedScore, NoisedScoreFunction};
use scorelab_densities::AnyDensity;
use scorelab_models::{F32Noised, Network, TraceMethod};
use scorelab_samplers::likelihood::{
    gaussian_log_prior, Divergence, FlowSolver, Likelihood, Probe,
};
use scorelab_samplers::solve::Rk45;
use scorelab_samplers::Schedule;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `divergence = …`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceKind {
    /// The exact trace of the score's Jacobian.
    #[default]
    Exact,
    /// Hutchinson's estimator.
    Hutchinson,
}

/// `solver = …`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlowSolverKind {
    /// Adaptive Dormand–Prince 5(4) (`rtol`, `atol`).
    #[default]
    Rk45,
    /// Heun on the schedule's grid (`steps`).
    Heun,
}

/// The `scorelab likelihood` config (docs/reference.md lists every key and its default). Every
/// key is optional, so a partial plan (the keys a study's estimators share, or one estimator's)
/// is a plan too ([`LikelihoodPlan::overlay`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodPlan {
    /// Seed of the probes and the dequantisation noise (default 0).
    #[serde(default)]
    pub seed: u64,
    /// An analytic density with exact marginal scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<DensitySpec>,
    /// Or: a noise-conditional network written by `scorelab train`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// The schedule (default `vp`; for `vp`/`subvp` t_min defaults to 1e-5 here).
    #[serde(
        default,
        deserialize_with = "scorelab_samplers::likelihood_schedule",
        skip_serializing_if = "Option::is_none"
    )]
    pub schedule: Option<Schedule>,
    /// `exact` (default) or `hutchinson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<DivergenceKind>,
    /// Exact only: `structured` (default) or `naive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceMethod>,
    /// Hutchinson only: probes per point (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub projections: Option<usize>,
    /// Hutchinson only: `rademacher` (default) or `gaussian`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<Probe>,
    /// `rk45` (default) or `heun`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solver: Option<FlowSolverKind>,
    /// rk45 only: relative tolerance (default 1e-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtol: Option<f64>,
    /// rk45 only: absolute tolerance (default 1e-5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub atol: Option<f64>,
    /// heun only: the number of steps (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// `gaussian` (default): the schedule's prior; `exact`: p_T of an analytic density.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorKind>,
    /// Integer data: the bin width q in data units (module docs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequantize: Option<Dequantize>,
    /// With `dequantize`: uniform draws per point (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequantize_draws: Option<usize>,
    /// Points per solve (default 256): the ODE's memory is that of one batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// What was estimated, and provenance, written by `scorelab likelihood`; ignored when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<toml::Table>,
}

/// Points per solve unless `batch` is given.
const DEFAULT_BATCH: usize = 256;

/// The score of a validated likelihood run.
enum LikSource {
    Density(Box<AnyDensity>),
    Network {
        net: Box<F32Noised>,
        transform: Option<Transform>,
    },
    External(ExternalFlow),
}

/// A noise-conditional score with its Jacobian supplied by the caller (a Python function through
/// the `scorelab` package, or any [`NoisedScoreFunction`]): the exact divergence takes its
/// [`NoisedScoreFunction::noised_score_trace`] (by default D Jacobian–vector products),
/// Hutchinson's its JVPs with the probes.
pub type ExternalFlow = std::sync::Arc<dyn NoisedScoreFunction + Send>;

impl std::fmt::Debug for LikSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LikSource::Density(p) => f.debug_tuple("Density").field(p).finish(),
            LikSource::Network { net, transform } => f
                .debug_struct("Network")
                .field("net", net)
                .field("transform", transform)
                .finish(),
            LikSource::External(s) => write!(f, "External(dim = {})", s.dim()),
        }
    }
}

/// An analytic density's exact noised score s(x, σ) = ∇log p_σ with its Hessian, for the
/// densities where p_σ is closed form (Gaussians and mixtures), as the likelihood's
/// [`NoisedScoreFunction`].
///
/// ```
/// use scorelab_densities::{AnyDensity, Banana, Gaussian};
/// use scorelab_pipeline::likelihood::DensityFlow;
/// assert!(DensityFlow::new(&AnyDensity::from(Gaussian::standard(2))).is_some());
/// assert!(DensityFlow::new(&AnyDensity::from(Banana::new(1.0, 0.5)?)).is_none());
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DensityFlow<'a> {
    p: &'a AnyDensity,
    naive: bool,
}

impl<'a> DensityFlow<'a> {
    /// p's exact noised score, or `None` where p_σ is not closed form.
    pub fn new(p: &'a AnyDensity) -> Option<Self> {
        p.noised(1.0)?;
        Some(DensityFlow { p, naive: false })
    }

    /// The same, its trace taken by D Jacobian–vector products instead of the closed form.
    pub fn naive(mut self) -> Self {
        self.naive = true;
        self
    }
}

impl Dimension for DensityFlow<'_> {
    fn dim(&self) -> usize {
        self.p.dim()
    }
}

impl NoisedScore for DensityFlow<'_> {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.p.noised_score(x, sigma).expect("validated")
    }
}

impl NoisedScoreFunction for DensityFlow<'_> {
    fn noised_score_jvp(
        &self,
        x: ArrayView2<f64>,
        v: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, Array2<f64>) {
        match self.p {
            AnyDensity::Gaussian(g) => g.noised_score_jvp(x, v, sigma),
            AnyDensity::GaussianMixture(m) => m.noised_score_jvp(x, v, sigma),
            _ => unreachable!("validated: gaussian or gaussian_mixture"),
        }
    }
    fn noised_score_trace(&self, x: ArrayView2<f64>, sigma: f64) -> (Array2<f64>, Array1<f64>) {
        if self.naive {
            return scorelab_core::basis_trace(self, x, sigma);
        }
        match self.p {
            AnyDensity::Gaussian(g) => g.noised_score_trace(x, sigma),
            AnyDensity::GaussianMixture(m) => m.noised_score_trace(x, sigma),
            _ => unreachable!("validated: gaussian or gaussian_mixture"),
        }
    }
}

/// A validated likelihood run: what [`LikelihoodPlan::prepare`] returns.
#[derive(Debug)]
pub struct Estimation {
    /// The resolved config (defaults filled in, no `[run]`).
    pub resolved: LikelihoodPlan,
    /// The likelihood computation.
    pub likelihood: Likelihood,
    /// D.
    pub dim: usize,
    source: LikSource,
    naive: bool,
    /// Bin width per column (0: continuous).
    bins: Vec<f64>,
    draws: usize,
}

/// One point's result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LikelihoodRow {
    /// log p(x) in nats, in the data's units (the mean over dequantisation draws).
    pub log_p: f64,
    /// Its standard error over Hutchinson's probes (k ≥ 2), else `None`.
    pub log_p_se: Option<f64>,
    /// −(log p + Σ log q)/(D ln 2).
    pub bits_per_dim: f64,
    /// Score evaluations spent on the point's batch, per point, over every draw.
    pub score_evals: usize,
}

/// What [`Estimation::run`] produced.
#[derive(Debug, Clone, PartialEq)]
pub struct LikelihoodOutput {
    /// One row per finished point, in order.
    pub rows: Vec<LikelihoodRow>,
    /// Whether the observer stopped the run (the rows are then those of the finished batches).
    pub interrupted: bool,
}

/// Progress of [`Estimation::run`]: after each batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Points finished.
    pub done: usize,
    /// Points in all.
    pub total: usize,
}

impl LikelihoodPlan {
    /// This plan with every optional key that `over` gives replaced by `over`'s (the seed stays
    /// this plan's): how a study lays one estimator's keys (`divergence = "hutchinson"`, …) over
    /// the ones its estimators share.
    ///
    /// # Examples
    /// ```
    /// use scorelab_pipeline::likelihood::{DivergenceKind, LikelihoodPlan};
    /// let shared: LikelihoodPlan = toml::from_str("rtol = 1e-4\ndivergence = \"exact\"")?;
    /// let one: LikelihoodPlan = toml::from_str("divergence = \"hutchinson\"")?;
    /// let p = shared.overlay(&one);
    /// assert_eq!((p.rtol, p.divergence), (Some(1e-4), Some(DivergenceKind::Hutchinson)));
    /// # Ok::<(), toml::de::Error>(())
    /// ```
    #[must_use]
    pub fn overlay(&self, over: &LikelihoodPlan) -> LikelihoodPlan {
        LikelihoodPlan {
            seed: self.seed,
            density: over.density.clone().or_else(|| self.density.clone()),
            model_dir: over.model_dir.clone().or_else(|| self.model_dir.clone()),
            schedule: over.schedule.or(self.schedule),
            divergence: over.divergence.or(self.divergence),
            trace: over.trace.or(self.trace),
            projections: over.projections.or(self.projections),
            probe: over.probe.or(self.probe),
            solver: over.solver.or(self.solver),
            rtol: over.rtol.or(self.rtol),
            atol: over.atol.or(self.atol),
            steps: over.steps.or(self.steps),
            prior: over.prior.or(self.prior),
            dequantize: over.dequantize.clone().or_else(|| self.dequantize.clone()),
            dequantize_draws: over.dequantize_draws.or(self.dequantize_draws),
            batch: over.batch.or(self.batch),
            run: None,
        }
    }

    /// Reads a plan file; errors name the file and the key.
    ///
    /// # Errors
    /// [`PipelineError::Input`] if the file cannot be read or is not a valid plan.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::files::read_toml(path)
    }

    /// The resolved config as TOML.
    pub fn to_toml(&self) -> String {
        format!(
            "# Written by scorelab likelihood: the resolved config (every default filled in) and, in [run],\n\
             # the density it estimates. `scorelab likelihood --config <this file> --points … --out …` reruns it.\n{}",
            toml::to_string(self).expect("a config serialises")
        )
    }

    /// Validates everything once, loading the network of `model_dir` if there is one.
    ///
    /// # Errors
    /// [`PipelineError`] naming the key and what would be valid.
    pub fn prepare(&self) -> Result<Estimation> {
        self.prepare_source(None, None)
    }

    /// Validates everything once, with `model` (trained in memory) as the score source.
    ///
    /// # Errors
    /// As [`LikelihoodPlan::prepare`].
    pub fn prepare_with(&self, model: TrainedModel) -> Result<Estimation> {
        self.prepare_source(Some(model), None)
    }

    /// Validates everything once, with a score and its Jacobian supplied by the caller as the
    /// source (the plan names neither `density` nor `model_dir`). `trace` does not apply: the
    /// exact divergence is the score's own [`NoisedScoreFunction::noised_score_trace`].
    ///
    /// # Errors
    /// As [`LikelihoodPlan::prepare`]; also `trace` if given, and `prior = "exact"`.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use scorelab_pipeline::likelihood::LikelihoodPlan;
    /// struct Std1;
    /// impl scorelab_core::Dimension for Std1 { fn dim(&self) -> usize { 1 } }
    /// impl scorelab_core::NoisedScore for Std1 {
    ///     fn noised_score(&self, y: ndarray::ArrayView2<f64>, s: f64) -> ndarray::Array2<f64> {
    ///         &y / -(1.0 + s * s)
    ///     }
    /// }
    /// impl scorelab_core::NoisedScoreFunction for Std1 {
    ///     fn noised_score_jvp(&self, y: ndarray::ArrayView2<f64>, v: ndarray::ArrayView2<f64>, s: f64)
    ///         -> (ndarray::Array2<f64>, ndarray::Array2<f64>) {
    ///         (&y / -(1.0 + s * s), &v / -(1.0 + s * s))
    ///     }
    /// }
    /// let plan: LikelihoodPlan = toml::from_str("rtol = 1e-7\natol = 1e-7")?;
    /// let out = plan.prepare_external(Arc::new(Std1))?.run(ndarray::array![[0.0]].view(), &mut ())?;
    /// // N(0, 1) is invariant under VP: log p(0) = −½ log 2π.
    /// assert!((out.rows[0].log_p + 0.5 * (2.0 * std::f64::consts::PI).ln()).abs() < 1e-4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare_external(&self, score: ExternalFlow) -> Result<Estimation> {
        self.prepare_source(None, Some(score))
    }

    fn prepare_source(
        &self,
        model: Option<TrainedModel>,
        external: Option<ExternalFlow>,
    ) -> Result<Estimation> {
        let schedule = self.schedule.unwrap_or_else(Schedule::likelihood_default);
        let batch = self.batch.unwrap_or(DEFAULT_BATCH);
        let prior = self.prior.unwrap_or_default();
        let hutch = self.divergence == Some(DivergenceKind::Hutchinson);
        if hutch && self.trace.is_some() {
            return Err(PipelineError::invalid(
                "trace",
                "applies to divergence = \"exact\" only; Hutchinson's estimator takes no trace: remove trace",
            ));
        }
        if !hutch && self.projections.is_some() {
            return Err(PipelineError::invalid(
                "projections",
                "applies to divergence = \"hutchinson\" only; the exact divergence has no probes: remove projections, or set divergence = \"hutchinson\"",
            ));
        }
        if !hutch && self.probe.is_some() {
            return Err(PipelineError::invalid(
                "probe",
                "applies to divergence = \"hutchinson\" only: remove probe",
            ));
        }
        let divergence = if hutch {
            let projections = self.projections.unwrap_or(1);
            if projections == 0 {
                return Err(PipelineError::invalid(
                    "projections",
                    "must be at least 1 probe per point",
                ));
            }
            Divergence::Hutchinson {
                projections,
                probe: self.probe.unwrap_or_default(),
            }
        } else {
            Divergence::Exact
        };
        let solver = match self.solver.unwrap_or_default() {
            FlowSolverKind::Rk45 => {
                if self.steps.is_some() {
                    return Err(PipelineError::invalid(
                        "steps",
                        "applies to solver = \"heun\" only; rk45 chooses its own steps from rtol and atol: remove steps",
                    ));
                }
                let mut tol = Rk45::new(self.rtol.unwrap_or(1e-5), self.atol.unwrap_or(1e-5))?;
                tol.max_steps = 100_000;
                FlowSolver::Rk45(tol)
            }
            FlowSolverKind::Heun => {
                for (key, given) in [("rtol", self.rtol.is_some()), ("atol", self.atol.is_some())] {
                    if given {
                        return Err(PipelineError::invalid(
                            key,
                            "applies to solver = \"rk45\" only; heun takes steps: remove it",
                        ));
                    }
                }
                let steps = self.steps.ok_or_else(|| {
                    PipelineError::invalid(
                        "steps",
                        "solver = \"heun\" needs steps, e.g. steps = 100",
                    )
                })?;
                FlowSolver::Heun { steps }
            }
        };
        let likelihood = Likelihood::new(schedule, divergence, solver)?;
        if batch == 0 {
            return Err(PipelineError::invalid("batch", "must be at least 1"));
        }
        let naive = self.trace == Some(TraceMethod::Naive);
        let source = match (&self.density, &self.model_dir, model) {
            _ if external.is_some() => {
                if self.density.is_some() || self.model_dir.is_some() {
                    return Err(PipelineError::invalid(
                        "density and model_dir",
                        "the score given with the plan is the source; give neither",
                    ));
                }
                if self.trace.is_some() {
                    return Err(PipelineError::invalid(
                        "trace",
                        "a given score's exact divergence is its own trace (D Jacobian-vector products unless it supplies one): remove trace",
                    ));
                }
                if prior == PriorKind::Exact {
                    return Err(PipelineError::invalid(
                        "prior",
                        "\"exact\" needs p_T of an analytic density; a given score's likelihood uses the schedule's Gaussian prior: remove prior",
                    ));
                }
                LikSource::External(external.expect("matched"))
            }
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(PipelineError::invalid(
                    "density and model_dir",
                    "a model trained in memory is the score source; give neither",
                ))
            }
            (Some(_), Some(_), None) => {
                return Err(PipelineError::invalid(
                    "density and model_dir",
                    "give one score source, not both",
                ))
            }
            (None, None, None) => {
                return Err(PipelineError::invalid(
                    "density or model_dir",
                    "give the score source: density = { kind = \"gaussian_mixture\", … } (exact marginal scores) or model_dir = \"DIR\" (a noise-conditional network)",
                ))
            }
            (Some(spec), None, None) => {
                let p = spec.build().map_err(|e| e.within("density"))?;
                if p.noised(1.0).is_none() {
                    return Err(PipelineError::invalid(
                        "density",
                        format!(
                            "a {} has no closed-form marginal score s(x, σ̃), so its ODE cannot be written down; only gaussian, standard_normal and gaussian_mixture have one. A noise-conditional network is needed: train one (model.kind = \"noise_conditional_mlp\", objective.kind = \"dsm_continuous\") on samples of it and give model_dir",
                            p.kind()
                        ),
                    ));
                }
                LikSource::Density(Box::new(p))
            }
            (None, dir, model) => {
                let m = match (model, dir) {
                    (Some(m), _) => m,
                    (None, Some(dir)) => TrainedModel::load(dir).map_err(|e| match e {
                        PipelineError::Input(m) => PipelineError::invalid("model_dir", m),
                        PipelineError::Load(e) => {
                            PipelineError::invalid("model_dir", e.to_string())
                        }
                        other => other,
                    })?,
                    (None, None) => unreachable!("matched above"),
                };
                if !matches!(m.network, Network::NoiseConditional(_)) {
                    return Err(PipelineError::invalid(
                        "model_dir",
                        format!(
                            "a {} is not noise-conditional: the probability-flow ODE needs s(x, σ̃) at every noise level; train model.kind = \"noise_conditional_mlp\" with objective.kind = \"dsm_continuous\"",
                            m.network.spec().kind.name()
                        ),
                    ));
                }
                if prior == PriorKind::Exact {
                    return Err(PipelineError::invalid(
                        "prior",
                        "\"exact\" needs p_T of an analytic density; a network's likelihood uses the schedule's Gaussian prior: remove prior",
                    ));
                }
                let (a, b) = likelihood.sigma_needed();
                if let Some((lo, hi)) = m.sigma_range {
                    let slack = 1e-9;
                    if a < lo * (1.0 - slack) || b > hi * (1.0 + slack) {
                        return Err(PipelineError::invalid(
                            "schedule",
                            format!("the ODE needs the score at σ̃ from {a:e} to {b:e}, but the network was trained on σ̃ from {lo:e} to {hi:e}; narrow the schedule (t_min, beta_max, sigma_min, sigma_max) into the trained range, or train with objective.sigma_min ≤ {a:e} and sigma_max ≥ {b:e}"),
                        ));
                    }
                }
                let method = if naive {
                    TraceMethod::Naive
                } else {
                    TraceMethod::Structured
                };
                LikSource::Network {
                    net: Box::new(F32Noised::new(&m.network)?.with_trace(method)),
                    transform: m.transform,
                }
            }
        };
        let dim = match &source {
            LikSource::Density(p) => p.dim(),
            LikSource::Network { net, .. } => net.dim(),
            LikSource::External(f) => f.dim(),
        };
        let bins = match &self.dequantize {
            None => {
                if self.dequantize_draws.is_some() {
                    return Err(PipelineError::invalid(
                        "dequantize_draws",
                        "applies with dequantize only: remove it",
                    ));
                }
                vec![0.0; dim]
            }
            Some(q) => q.widths(dim, "dequantize")?,
        };
        if self.dequantize.is_some() && bins.iter().all(|&q| q == 0.0) {
            return Err(PipelineError::invalid(
                "dequantize",
                "every width is 0: remove dequantize for continuous data",
            ));
        }
        let draws = self.dequantize_draws.unwrap_or(1);
        if draws == 0 {
            return Err(PipelineError::invalid(
                "dequantize_draws",
                "must be at least 1",
            ));
        }
        // Every draw of a batch is solved before the run can stop (a batch is the unit Ctrl-C
        // waits for), so the draws per batch are bounded; more draws average out in more rows.
        const MOST_DRAWS: usize = 1000;
        if draws > MOST_DRAWS {
            return Err(PipelineError::invalid(
                "dequantize_draws",
                format!("{draws} is more than {MOST_DRAWS} draws per point: each batch solves them all before it can be stopped; a few (1–16) give the bound's mean to its standard error"),
            ));
        }
        let k = likelihood.divergence().estimates();
        memory::check(
            memory::likelihood_bytes(batch, dim, k),
            MemoryLimit::default(),
            || format!("a likelihood batch ({batch} points in D = {dim})"),
            "lower batch or projections",
        )?;
        let mut resolved = self.clone();
        resolved.run = None;
        resolved.schedule = Some(schedule);
        resolved.divergence = Some(self.divergence.unwrap_or_default());
        resolved.solver = Some(self.solver.unwrap_or_default());
        resolved.prior = Some(prior);
        resolved.batch = Some(batch);
        match likelihood.divergence() {
            Divergence::Exact => resolved.trace = Some(self.trace.unwrap_or_default()),
            Divergence::Hutchinson { projections, .. } => {
                resolved.projections = Some(projections);
                resolved.probe = Some(self.probe.unwrap_or_default());
            }
        }
        if let FlowSolver::Rk45(tol) = &solver {
            resolved.rtol = Some(tol.rtol);
            resolved.atol = Some(tol.atol);
        }
        if self.dequantize.is_some() {
            resolved.dequantize_draws = Some(draws);
        }
        Ok(Estimation {
            resolved,
            likelihood,
            dim,
            source,
            naive,
            bins,
            draws,
        })
    }
}

impl Estimation {
    /// Points per solve (the resolved `batch`).
    pub fn batch(&self) -> usize {
        self.resolved.batch.unwrap_or(DEFAULT_BATCH)
    }

    /// What is estimated, as `[run]` records it: the marginal at the start, its α and σ̃, and the
    /// bound that dequantisation gives.
    pub fn describe(&self) -> toml::Table {
        let (t0, a, s) = self.likelihood.start();
        let (t1, a1, s1) = self.likelihood.end();
        let mut t = toml::Table::new();
        t.insert(
            "estimates".into(),
            format!(
                "log p_t0(x) of the marginal alpha*(x0 + sigma*z) at the ODE's start, in the data's units{}",
                if self.bins.iter().any(|&q| q > 0.0) {
                    "; with dequantize, the mean of log p(x + u) over the draws, and bits_per_dim an upper bound on the discrete data's bits/dim with the bins as unit"
                } else {
                    ""
                }
            )
            .into(),
        );
        t.insert("t0".into(), t0.into());
        t.insert("alpha_t0".into(), a.into());
        t.insert("sigma_t0".into(), s.into());
        t.insert("t_end".into(), t1.into());
        t.insert("alpha_end".into(), a1.into());
        t.insert("sigma_end".into(), s1.into());
        let prior = match (&self.source, self.resolved.prior.unwrap_or_default()) {
            (LikSource::Density(_), PriorKind::Exact) => "exact p_T".to_string(),
            _ => format!("N(0, {}^2 I)", self.likelihood.schedule().prior_std()),
        };
        t.insert("prior".into(), prior.into());
        t
    }

    /// Checks points in the data's units: D columns, finite, and on the dequantisation grid
    /// (integer multiples of q) in every quantised column.
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming `label` (e.g. `--points`), the row and the column.
    pub fn check_points(&self, x: ArrayView2<f64>, label: &str) -> Result<()> {
        self.check_points_from(x, label, 0)
    }

    /// [`Estimation::check_points`] for a batch whose first row is row `first_row + 1` of the
    /// file (errors count rows from the file's start).
    ///
    /// # Errors
    /// As [`Estimation::check_points`].
    pub fn check_points_from(
        &self,
        x: ArrayView2<f64>,
        label: &str,
        first_row: usize,
    ) -> Result<()> {
        if x.ncols() != self.dim {
            return Err(PipelineError::Input(format!(
                "{label}: the points have {} columns but the score is {}-dimensional",
                x.ncols(),
                self.dim
            )));
        }
        for (i, row) in x.rows().into_iter().enumerate() {
            for (j, (&v, &q)) in row.iter().zip(&self.bins).enumerate() {
                if !v.is_finite() {
                    return Err(PipelineError::Input(format!(
                        "{label}: row {}, column x{j}: {v} is not finite",
                        first_row + i + 1
                    )));
                }
                if q > 0.0 && ((v / q) - (v / q).round()).abs() > 1e-6 {
                    return Err(PipelineError::invalid(
                        "dequantize",
                        format!(
                            "is for integer data on a grid of width {q}, but {label} row {}, column x{j} is {v}; remove dequantize (or set its width to 0 for that column) for continuous data",
                            first_row + i + 1
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// log p of every row of `x` (data units), batch by batch; the observer sees each finished
    /// batch and may stop the run after it ([`LikelihoodOutput::interrupted`]).
    ///
    /// # Errors
    /// [`PipelineError::Input`] for bad points ([`Estimation::check_points`]) before any work;
    /// [`PipelineError::Invalid`] (`solver`) if the ODE solver fails on a batch.
    pub fn run(
        &self,
        x: ArrayView2<f64>,
        observer: &mut dyn Observe<Progress>,
    ) -> Result<LikelihoodOutput> {
        self.check_points(x, "points")?;
        let n = x.nrows();
        let mut run = self.batches();
        let mut rows = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let end = (start + self.batch()).min(n);
            rows.extend(run.run_batch(x.slice(ndarray::s![start..end, ..]))?);
            start = end;
            if observer.observe(&Progress {
                done: end,
                total: n,
            }) == Control::Stop
                && end < n
            {
                return Ok(LikelihoodOutput {
                    rows,
                    interrupted: true,
                });
            }
        }
        Ok(LikelihoodOutput {
            rows,
            interrupted: false,
        })
    }

    /// The run batch by batch, for points read a batch at a time: [`BatchRun::run_batch`] on
    /// consecutive batches of `batch` rows gives the rows [`Estimation::run`] gives on them all
    /// (the probes and dequantisation draws continue from batch to batch).
    pub fn batches(&self) -> BatchRun<'_> {
        let (_, a_end, s_end) = self.likelihood.end();
        let exact_prior = match (&self.source, self.resolved.prior.unwrap_or_default()) {
            (LikSource::Density(p), PriorKind::Exact) => {
                Some(p.marginal(a_end, s_end).expect("validated"))
            }
            _ => None,
        };
        BatchRun {
            est: self,
            rng: ChaCha8Rng::seed_from_u64(self.resolved.seed),
            exact_prior,
            prior_std: self.likelihood.schedule().prior_std(),
            log_q: self.bins.iter().filter(|&&q| q > 0.0).map(|q| q.ln()).sum(),
        }
    }

    /// log p (data units) of one batch, its SE over probes, and the evaluations.
    fn log_p_batch(
        &self,
        x: ArrayView2<f64>,
        rng: &mut ChaCha8Rng,
        exact_prior: Option<&AnyDensity>,
        prior_std: f64,
    ) -> Result<(Array1<f64>, Option<Array1<f64>>, usize)> {
        let failed = |e: scorelab_samplers::solve::SolveError| {
            PipelineError::invalid(
                "solver",
                format!("{e}; loosen rtol/atol, or use solver = \"heun\" with steps"),
            )
        };
        let (flow, log_jac) = match &self.source {
            LikSource::Density(p) => {
                let src = DensityFlow {
                    p,
                    naive: self.naive,
                };
                (self.likelihood.flow(&src, x, rng).map_err(failed)?, 0.0)
            }
            LikSource::Network { net, transform } => match transform {
                Some(t) => {
                    let z = t.forward(&x.to_owned());
                    (
                        self.likelihood
                            .flow(&**net, z.view(), rng)
                            .map_err(failed)?,
                        t.log_jacobian(),
                    )
                }
                None => (self.likelihood.flow(&**net, x, rng).map_err(failed)?, 0.0),
            },
            LikSource::External(f) => (self.likelihood.flow(&**f, x, rng).map_err(failed)?, 0.0),
        };
        let prior = match exact_prior {
            Some(q) => q.log_density(flow.x_end.view()),
            None => gaussian_log_prior(flow.x_end.view(), prior_std),
        };
        let (lp, se) = flow.log_p(prior.view());
        Ok((lp + log_jac, se, flow.score_evals))
    }
}

/// A likelihood run in progress ([`Estimation::batches`]): the probe and dequantisation
/// stream, carried from batch to batch.
pub struct BatchRun<'a> {
    est: &'a Estimation,
    rng: ChaCha8Rng,
    exact_prior: Option<AnyDensity>,
    prior_std: f64,
    log_q: f64,
}

impl BatchRun<'_> {
    /// log p of every row of `x` (data units), solved together: one step size serves them all.
    ///
    /// # Errors
    /// [`PipelineError::Input`] for bad points ([`Estimation::check_points`]);
    /// [`PipelineError::Invalid`] (`solver`) if the ODE solver fails.
    pub fn run_batch(&mut self, x: ArrayView2<f64>) -> Result<Vec<LikelihoodRow>> {
        let est = self.est;
        est.check_points(x, "points")?;
        let m = x.nrows();
        let d = est.dim as f64;
        let mut sum = Array1::<f64>::zeros(m);
        let mut var = Array1::<f64>::zeros(m);
        let mut any_se = false;
        let mut evals = 0;
        for _ in 0..est.draws {
            let mut xq = x.to_owned();
            for r in xq.rows_mut() {
                crate::data::add_uniform(r, &est.bins, &mut self.rng);
            }
            let (lp, se, e) = est.log_p_batch(
                xq.view(),
                &mut self.rng,
                self.exact_prior.as_ref(),
                self.prior_std,
            )?;
            sum += &lp;
            if let Some(se) = se {
                any_se = true;
                var += &se.mapv(|s| s * s);
            }
            evals += e;
        }
        let draws = est.draws as f64;
        Ok((0..m)
            .map(|i| {
                let log_p = sum[i] / draws;
                LikelihoodRow {
                    log_p,
                    log_p_se: any_se.then(|| var[i].sqrt() / draws),
                    bits_per_dim: -(log_p + self.log_q) / (d * std::f64::consts::LN_2),
                    score_evals: evals,
                }
            })
            .collect())
    }
}

/// The header of a likelihood CSV.
pub const CSV_HEADER: &str = "log_p,log_p_se,bits_per_dim,score_evals\n";

/// One row as a CSV line (`log_p_se` empty without one).
pub fn csv_line(r: &LikelihoodRow) -> String {
    format!(
        "{},{},{},{}\n",
        r.log_p,
        cell(r.log_p_se),
        r.bits_per_dim,
        r.score_evals
    )
}

/// The rows as CSV: `log_p,log_p_se,bits_per_dim,score_evals` (`log_p_se` empty without one).
pub fn to_csv(rows: &[LikelihoodRow]) -> String {
    let mut csv = String::from(CSV_HEADER);
    for r in rows {
        csv.push_str(&csv_line(r));
    }
    csv
}

//! Sampling: a [`SamplePlan`] (score source, chains, start, sampler; serde, so a TOML file is
//! one), the sampler registry [`AnySampler`] behind it, and one [`Sampling::run`] with an
//! observer.
//!
//! The score comes from an analytic density (`density = {…}`: its exact score, and for the
//! noise-conditional samplers its exact noised score s(x, σ) = ∇log p_σ, closed form for
//! `gaussian` and `gaussian_mixture`) or from a model written by `scorelab train`
//! (`model_dir = "DIR"`). Randomness: the initial points come from stream 0 and the sampler's
//! draws from stream 1 of `ChaCha8Rng::seed_from_u64(seed)`, so the same config and seed give the
//! same CSV byte for byte.
//!
//! A model trained on a CSV file works in standardised units z = (x − mean)/scale
//! (`transform.toml`): the chains run there (so `init`, `eps` and the σ's are in those units) and
//! the written samples are mapped back to the data's units, x = mean + scale·z.

use crate::data::Transform;
use crate::error::{PipelineError, Result};
use crate::files::cell;
use crate::memory::{self, MemoryLimit};
use crate::observe::{Control, Observe};
use crate::spec::DensitySpec;
use crate::train::TrainedModel;
use ndarray::{Array1, Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, LogDensity, NoisedScore, Sample, Score};
use scorelab_densities::{AnyDensity, Gaussian, GaussianMixture};
use scorelab_models::{F32Noised, F32Score, Network};
pub use scorelab_samplers::AnySampler;
use scorelab_samplers::{Chains, Info, Sampler};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The `scorelab sample` config (docs/reference.md lists every key and its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplePlan {
    /// Master seed (default 0): the initial points from stream 0, the sampler from stream 1.
    #[serde(default)]
    pub seed: u64,
    /// The number of chains n ≥ 1 (default 1280), one output row each.
    #[serde(default = "default_chains")]
    pub chains: usize,
    /// An analytic density whose (noised) score drives the sampler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<DensitySpec>,
    /// Or: a folder written by `scorelab train`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// With a density: `exact` (default), s(x, σ) = ∇log(p ∗ N(0, σ²I)), every covariance Σ
    /// becoming Σ + σ²I; or `ncsn_toy`, the NCSN code's toy, where every covariance is replaced
    /// by σ²I (component std σ instead of √(Σ + σ²)).
    #[serde(default, skip_serializing_if = "NoisedScoreKind::is_exact")]
    pub noised_score: NoisedScoreKind,
    /// The initial points (default: the prior of the noise-conditional samplers, N(0, σ_max² I)
    /// or N(0, I) by schedule; required for langevin and mala).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
    /// Where a noise-conditional sampler's prior start comes from: `gaussian` (default), the
    /// schedule's Gaussian prior, or `exact`, p_T itself (an analytic density's marginal at the
    /// start), which separates the prior's mismatch from the discretisation error.
    #[serde(default, skip_serializing_if = "PriorKind::is_gaussian")]
    pub prior: PriorKind,
    /// Also write the chains after these step counts (each in 0 … the run's steps; 0 is the
    /// starting points).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<usize>,
    /// Classifier-free guidance on an analytic mixture (see [`GuidanceSpec`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<GuidanceSpec>,
    /// The sampler.
    pub sampler: AnySampler,
    /// Provenance written by `scorelab sample`; ignored when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<toml::Table>,
}

fn default_chains() -> usize {
    1280
}

/// Which noised score an analytic density gives (see [`SamplePlan::noised_score`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoisedScoreKind {
    /// ∇log(p ∗ N(0, σ²I)).
    #[default]
    Exact,
    /// The NCSN code's toy: every covariance replaced by σ²I.
    NcsnToy,
}

impl NoisedScoreKind {
    fn is_exact(&self) -> bool {
        *self == NoisedScoreKind::Exact
    }
}

/// `prior = …` (see [`SamplePlan::prior`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PriorKind {
    /// The schedule's Gaussian prior.
    #[default]
    Gaussian,
    /// p_T of an analytic density.
    Exact,
}

impl PriorKind {
    fn is_gaussian(&self) -> bool {
        *self == PriorKind::Gaussian
    }
}

/// `guidance = { weight = 2.0, class = [1], interval = [0.3, 5.0] }`: classifier-free guidance
/// (`scorelab_samplers::guidance`) of a `gaussian_mixture` density, whose class c is the set of
/// its components listed in `class` (p(x | c): those components, weights renormalised); the
/// sampler runs on (1 + w) s(y, σ̃ | c) − w s(y, σ̃) with w = `weight` (diffusers' guidance scale
/// is 1 + w), only at σ̃ in `interval` when given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceSpec {
    /// w ≥ 0.
    pub weight: f64,
    /// The components that make the class.
    pub class: Vec<usize>,
    /// [σ_lo, σ_hi], the noise levels guidance acts at (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<[f64; 2]>,
}

/// `init = {…}`: where the chains start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "InitDef", into = "InitDef")]
pub enum InitSpec {
    /// Independent U(low, high) coordinates.
    Uniform {
        /// Lower end.
        low: f64,
        /// Upper end (> low).
        high: f64,
    },
    /// N(mean, std² I) (mean 0 unless given).
    Gaussian {
        /// Standard deviation > 0.
        std: f64,
        /// The mean, one entry per dimension (default 0).
        mean: Option<Vec<f64>>,
    },
    /// The sampler's prior: its schedule's Gaussian (N(0, σ_max² I) for `ve`, `edm` and annealed
    /// Langevin, N(0, I) for `vp`, `subvp`), or p_T with `prior = "exact"`.
    Prior {},
    /// Given starting points: `init = { csv = "start.csv" }`, a file with header `x0,…,x{D−1}`
    /// and one row per chain (so that a run can start from given latents), in the units the
    /// chains run in (a CSV-trained model's standardised units).
    Csv {
        /// The file.
        csv: PathBuf,
    },
}

/// `init = {…}` as written: `kind` with its keys, or `csv` alone.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InitDef {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<InitKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    low: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    high: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    std: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mean: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    csv: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum InitKind {
    Uniform,
    Gaussian,
    Prior,
}

impl TryFrom<InitDef> for InitSpec {
    type Error = String;
    fn try_from(d: InitDef) -> std::result::Result<Self, String> {
        let given = |k: &str, v: bool| if v { vec![k.to_string()] } else { vec![] };
        let extra = |allowed: &[&str]| -> std::result::Result<(), String> {
            let keys: Vec<String> = [
                given("low", d.low.is_some()),
                given("high", d.high.is_some()),
                given("std", d.std.is_some()),
                given("mean", d.mean.is_some()),
            ]
            .concat();
            match keys.iter().find(|k| !allowed.contains(&k.as_str())) {
                Some(k) => Err(format!("{k}: not a key of this init; remove it")),
                None => Ok(()),
            }
        };
        let need = |v: Option<f64>, k: &str| v.ok_or_else(|| format!("{k}: missing"));
        match (d.kind, &d.csv) {
            (Some(_), Some(_)) => Err("csv: give either kind = … or csv = \"FILE\", not both".into()),
            (None, Some(csv)) => {
                extra(&[])?;
                Ok(InitSpec::Csv { csv: csv.clone() })
            }
            (None, None) => Err("kind: missing; give kind = \"uniform\", \"gaussian\" or \"prior\", or csv = \"FILE\"".into()),
            (Some(InitKind::Uniform), None) => {
                extra(&["low", "high"])?;
                Ok(InitSpec::Uniform { low: need(d.low, "low")?, high: need(d.high, "high")? })
            }
            (Some(InitKind::Gaussian), None) => {
                extra(&["std", "mean"])?;
                Ok(InitSpec::Gaussian { std: need(d.std, "std")?, mean: d.mean.clone() })
            }
            (Some(InitKind::Prior), None) => {
                extra(&[])?;
                Ok(InitSpec::Prior {})
            }
        }
    }
}

impl From<InitSpec> for InitDef {
    fn from(i: InitSpec) -> Self {
        match i {
            InitSpec::Uniform { low, high } => InitDef {
                kind: Some(InitKind::Uniform),
                low: Some(low),
                high: Some(high),
                ..Default::default()
            },
            InitSpec::Gaussian { std, mean } => InitDef {
                kind: Some(InitKind::Gaussian),
                std: Some(std),
                mean,
                ..Default::default()
            },
            InitSpec::Prior {} => InitDef {
                kind: Some(InitKind::Prior),
                ..Default::default()
            },
            InitSpec::Csv { csv } => InitDef {
                csv: Some(csv),
                ..Default::default()
            },
        }
    }
}

/// Where the score comes from.
#[derive(Debug, Clone)]
pub enum Source {
    /// An analytic density.
    Density {
        /// p.
        p: AnyDensity,
        /// Which noised score.
        noised: NoisedScoreKind,
    },
    /// A trained network, in its own (standardised) units.
    Model {
        /// The network.
        net: Network,
        /// The data transform, for CSV-trained models.
        transform: Option<Transform>,
        /// The σ̃ range it was trained on, where recorded.
        sigma_range: Option<(f64, f64)>,
    },
    /// A score supplied by the caller (a Python function through the `scorelab` package, or any
    /// [`NoisedScore`] or [`Score`]), in the units of the chains.
    External(External),
}

/// A score supplied by the caller ([`SamplePlan::prepare_external`]).
#[derive(Clone)]
pub enum External {
    /// s(y, σ̃) = ∇log p_σ̃(y), for the noise-conditional samplers.
    Noised(std::sync::Arc<dyn NoisedScore + Send>),
    /// s(x) = ∇log p(x), for `langevin`.
    Clean(std::sync::Arc<dyn Score + Send>),
}

impl External {
    fn dim(&self) -> usize {
        match self {
            External::Noised(s) => s.dim(),
            External::Clean(s) => s.dim(),
        }
    }
}

impl std::fmt::Debug for External {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            External::Noised(s) => write!(f, "External::Noised(dim = {})", s.dim()),
            External::Clean(s) => write!(f, "External::Clean(dim = {})", s.dim()),
        }
    }
}

/// A score source handed to the plan rather than named in it.
enum Given {
    Model(Box<TrainedModel>),
    External(External),
}

/// A log-density with a score: what MALA needs.
pub trait Target: LogDensity + Score {}
impl<T: LogDensity + Score + ?Sized> Target for T {}

/// s(x, σ) of an analytic density (validated to be closed form).
struct DensityNoised<'a> {
    p: &'a AnyDensity,
    kind: NoisedScoreKind,
}

impl Dimension for DensityNoised<'_> {
    fn dim(&self) -> usize {
        self.p.dim()
    }
}

/// The density with every covariance replaced by σ²I.
fn replaced(p: &AnyDensity, sigma: f64) -> AnyDensity {
    let iso = |d: usize| Array2::<f64>::eye(d) * (sigma * sigma);
    match p {
        AnyDensity::Gaussian(g) => Gaussian::new(g.mean_vector().clone(), iso(g.dim()))
            .expect("σ²I is positive definite")
            .into(),
        AnyDensity::GaussianMixture(m) => GaussianMixture::new(
            m.weights().clone(),
            m.components()
                .iter()
                .map(|c| c.mean_vector().clone())
                .collect(),
            m.components().iter().map(|c| iso(c.dim())).collect(),
        )
        .expect("validated weights and means")
        .into(),
        _ => unreachable!("validated: gaussian or gaussian_mixture"),
    }
}

impl NoisedScore for DensityNoised<'_> {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        match self.kind {
            NoisedScoreKind::Exact => self
                .p
                .noised_score(x, sigma)
                .expect("validated: gaussian or gaussian_mixture"),
            NoisedScoreKind::NcsnToy => replaced(self.p, sigma).score(x),
        }
    }
}

/// A validated sampling run: what [`SamplePlan::prepare`] returns.
#[derive(Debug, Clone)]
pub struct Sampling {
    /// The resolved config (defaults filled in, no `[run]`).
    pub resolved: SamplePlan,
    /// The score source.
    pub source: Source,
    /// The sampler.
    pub sampler: AnySampler,
    /// D.
    pub dim: usize,
    /// The starting points read from `init = { csv = … }` or given by
    /// [`Sampling::with_start`], `(chains, D)`.
    pub start: Option<Array2<f64>>,
    /// The class-conditional density and the guidance of a guided run.
    pub guided: Option<(AnyDensity, scorelab_samplers::guidance::Guidance)>,
}

impl SamplePlan {
    /// `chains` chains of `sampler` from the seed, every other key at its default (the score
    /// given to [`SamplePlan::prepare_with`], the sampler's own prior start).
    pub fn new(seed: u64, chains: usize, sampler: AnySampler) -> Self {
        SamplePlan {
            seed,
            chains,
            density: None,
            model_dir: None,
            noised_score: NoisedScoreKind::default(),
            init: None,
            prior: PriorKind::default(),
            snapshots: vec![],
            guidance: None,
            sampler,
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
            "# Written by scorelab sample: the resolved config (every default filled in).\n\
             # `scorelab sample --config <this file> --out FILE.csv` reruns it; [run] is ignored when read.\n{}",
            toml::to_string(self).expect("a config serialises")
        )
    }

    /// Validates everything once, loading the model of `model_dir` if there is one.
    ///
    /// # Errors
    /// [`PipelineError`] naming the key and what would be valid.
    pub fn prepare(&self) -> Result<Sampling> {
        self.prepare_source(None)
    }

    /// Validates everything once, with a score supplied by the caller as the source (the plan
    /// names neither `density` nor `model_dir`): a noise-conditional s(y, σ̃) for the diffusion
    /// samplers, a clean s(x) for `langevin`. The run draws its starting points and noise exactly
    /// as for a density or a model, so the same seed with the same score gives the same chains.
    ///
    /// # Errors
    /// As [`SamplePlan::prepare`]; also `sampler.kind` when the sampler needs the other kind of
    /// score, or a log-density (`mala`), and `prior` for `prior = "exact"` (p_T is unknown).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use scorelab_densities::Gaussian;
    /// use scorelab_pipeline::sample::{External, SamplePlan};
    /// let plan: SamplePlan = toml::from_str("chains = 8\nsampler = { kind = \"heun\", steps = 4 }")?;
    /// let p = scorelab_densities::AnyDensity::from(Gaussian::standard(2));
    /// // A density is a NoisedScore only through its closed form; any NoisedScore serves.
    /// struct Std2;
    /// impl scorelab_core::Dimension for Std2 { fn dim(&self) -> usize { 2 } }
    /// impl scorelab_core::NoisedScore for Std2 {
    ///     fn noised_score(&self, y: ndarray::ArrayView2<f64>, s: f64) -> ndarray::Array2<f64> {
    ///         &y / -(1.0 + s * s)
    ///     }
    /// }
    /// let out = plan.prepare_external(External::Noised(Arc::new(Std2)))?.run(&mut ());
    /// assert_eq!(out.x.dim(), (8, 2));
    /// # let _ = p;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prepare_external(&self, score: External) -> Result<Sampling> {
        self.prepare_source(Some(Given::External(score)))
    }

    /// Validates everything once, with the score of `model` (trained in memory) instead of
    /// `density` or `model_dir`.
    ///
    /// # Errors
    /// [`PipelineError`] naming the key and what would be valid.
    pub fn prepare_with(&self, model: TrainedModel) -> Result<Sampling> {
        self.prepare_source(Some(Given::Model(Box::new(model))))
    }

    fn prepare_source(&self, given: Option<Given>) -> Result<Sampling> {
        if self.chains == 0 {
            return Err(PipelineError::invalid("chains", "must be at least 1"));
        }
        let sampler = self.sampler.clone();
        let (model, external) = match given {
            Some(Given::Model(m)) => (Some(*m), None),
            Some(Given::External(e)) => (None, Some(e)),
            None => (None, None),
        };
        if let Some(e) = external {
            if self.density.is_some() || self.model_dir.is_some() {
                return Err(PipelineError::invalid(
                    "density and model_dir",
                    "the score given with the plan is the source; give neither",
                ));
            }
            if !self.noised_score.is_exact() {
                return Err(PipelineError::invalid(
                    "noised_score",
                    "only applies to an analytic density; remove it",
                ));
            }
            return self.validated(Source::External(e), sampler);
        }
        let source = match (&self.density, &self.model_dir, model) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(PipelineError::invalid("density and model_dir", "a model trained in memory is the score source; give neither",
                ))
            }
            (Some(_), Some(_), None) => {
                return Err(PipelineError::invalid("density and model_dir", "give one score source, not both"))
            }
            (None, None, None) => {
                return Err(PipelineError::invalid("density or model_dir", "give the score source, e.g. density = { kind = \"standard_normal\", dim = 2 } or model_dir = \"runs/mixture\"",
                ))
            }
            (Some(spec), None, None) => Source::Density {
                p: spec.build().map_err(|e| e.within("density"))?,
                noised: self.noised_score,
            },
            (None, dir, model) => {
                if !self.noised_score.is_exact() {
                    return Err(PipelineError::invalid("noised_score", "only applies to an analytic density; remove it"));
                }
                let m = match (model, dir) {
                    (Some(m), _) => m,
                    (None, Some(dir)) => TrainedModel::load(dir).map_err(|e| match e {
                        PipelineError::Input(m) => PipelineError::invalid("model_dir", m),
                        PipelineError::Load(e) => PipelineError::invalid("model_dir", e.to_string()),
                        other => other,
                    })?,
                    (None, None) => unreachable!("matched above"),
                };
                Source::Model {
                    net: m.network,
                    transform: m.transform,
                    sigma_range: m.sigma_range,
                }
            }
        };
        self.validated(source, sampler)
    }

    /// Checks the sampler, start and snapshots against the source, and resolves the plan.
    fn validated(&self, source: Source, sampler: AnySampler) -> Result<Sampling> {
        let kind = self.sampler.kind();
        match (&source, &sampler) {
            (Source::Density { p, .. }, s) if s.noise_conditional() && p.noised(1.0).is_none() => {
                return Err(PipelineError::invalid("sampler.kind", format!("{kind:?} needs the noised score s(x, σ), which is closed form only for gaussian and gaussian_mixture, not {}; train a noise-conditional model (model.kind = \"noise_conditional_mlp\", objective.kind = \"dsm_multi\") and sample with model_dir, or use langevin or mala",
                    p.kind()
                )))
            }
            (Source::Density { noised, .. }, s)
                if !s.noise_conditional() && !noised.is_exact() =>
            {
                return Err(PipelineError::invalid("noised_score", format!("{kind} uses the clean score; remove noised_score"
                )))
            }
            (Source::Model { .. }, AnySampler::Mala(_)) => {
                return Err(PipelineError::invalid("sampler.kind", "\"mala\" needs a log-density, which a trained score model does not have; use langevin, or an analytic density",
                ));
            }
            (Source::Model { net, .. }, s) => {
                let nc = matches!(net, Network::NoiseConditional(_));
                if s.noise_conditional() && !nc {
                    return Err(PipelineError::invalid("sampler.kind", format!("{kind:?} needs a noise-conditional model s(x, σ); this one is {}: train model.kind = \"noise_conditional_mlp\" with objective.kind = \"dsm_multi\", or use langevin",
                        net.spec().kind.name()
                    )));
                }
                if !s.noise_conditional() && nc {
                    return Err(PipelineError::invalid("sampler.kind", format!("{kind:?} uses a clean score s(x), but this model is noise-conditional; use annealed_langevin, reverse_sde, pc, ancestral, ddim, heun or ode"
                    )));
                }
            }
            (Source::External(_), AnySampler::Mala(_)) => {
                return Err(PipelineError::invalid("sampler.kind", "\"mala\" needs a log-density, which a given score does not have; use langevin"));
            }
            (Source::External(e), s) => {
                let nc = matches!(e, External::Noised(_));
                if s.noise_conditional() != nc {
                    return Err(PipelineError::invalid("sampler.kind", if nc {
                        format!("{kind:?} uses a clean score s(x), but the given score is noise-conditional; use a diffusion sampler (annealed_langevin, reverse_sde, pc, ancestral, ddim, heun or ode)")
                    } else {
                        format!("{kind:?} needs a noise-conditional score s(x, σ); give one, or use langevin")
                    }));
                }
            }
            _ => {}
        }
        if let (
            Source::Model {
                sigma_range: Some((lo, hi)),
                ..
            },
            Some((a, b)),
        ) = (&source, sampler.outline().sigma_needed())
        {
            let slack = 1e-9;
            if a < lo * (1.0 - slack) || b > hi * (1.0 + slack) {
                return Err(PipelineError::invalid(
                    "sampler",
                    format!("{kind} needs the score at σ̃ from {a} to {b}, but the network was trained on σ̃ from {lo} to {hi}; narrow the sampler's schedule (sigma_min, sigma_max, t_min, beta_max, s_churn) into the trained range, or train with objective.sigma_min ≤ {a} and sigma_max ≥ {b}"),
                ));
            }
        }
        let dim = match &source {
            Source::Density { p, .. } => p.dim(),
            Source::Model { net, .. } => net.spec().dim,
            Source::External(e) => e.dim(),
        };
        match &self.init {
            None if !sampler.noise_conditional() => {
                return Err(PipelineError::invalid("init", format!("{kind} needs starting points, e.g. init = {{ kind = \"uniform\", low = -8.0, high = 8.0 }} or {{ kind = \"gaussian\", std = 1.0 }}"
                )))
            }
            Some(InitSpec::Prior {}) if !sampler.noise_conditional() => {
                return Err(PipelineError::invalid("init", format!("{kind} has no prior; use uniform or gaussian"
                )))
            }
            Some(InitSpec::Uniform { low, high }) if !(low.is_finite() && high.is_finite() && low < high) => {
                return Err(PipelineError::invalid("init", format!("need finite low < high, got low = {low}, high = {high}"
                )))
            }
            Some(InitSpec::Gaussian { std, mean }) => {
                scorelab_core::error::positive(*std, "init.std")?;
                if let Some(m) = mean {
                    if m.len() != dim {
                        return Err(PipelineError::invalid("init.mean", format!("has {} entries but the points are {dim}-dimensional",
                            m.len()
                        )));
                    }
                    if m.iter().any(|v| !v.is_finite()) {
                        return Err(PipelineError::invalid("init.mean", "every entry must be finite"));
                    }
                }
            }
            _ => {}
        }
        if self.prior == PriorKind::Exact {
            let why = match (&source, &self.init) {
                (_, Some(i)) if !matches!(i, InitSpec::Prior {}) => Some("starts the chains at p_T; remove init or set init = { kind = \"prior\" }".to_string()),
                _ if !sampler.noise_conditional() => Some(format!("{kind} has no prior; remove prior")),
                (Source::Model { .. }, _) => Some("p_T is known only for an analytic density (gaussian or gaussian_mixture); a trained model starts from the schedule's Gaussian prior: remove prior".to_string()),
                (Source::External(_), _) => Some("p_T is known only for an analytic density (gaussian or gaussian_mixture); a given score starts from the schedule's Gaussian prior: remove prior".to_string()),
                (Source::Density { noised, .. }, _) if !noised.is_exact() => Some("needs noised_score = \"exact\" (p_T of the NCSN toy's replaced covariances is not this density's)".to_string()),
                _ => None,
            };
            if let Some(why) = why {
                return Err(PipelineError::invalid("prior", format!("\"exact\" {why}")));
            }
        }
        let steps = sampler.outline().num_steps();
        if !self.snapshots.is_empty()
            && matches!(&sampler, AnySampler::Ode(o) if matches!(o.solver(), scorelab_samplers::OdeSolver::Rk45(_)))
        {
            return Err(PipelineError::invalid(
                "snapshots",
                "the adaptive ODE solver (rk45) chooses its own steps, so a step number names no fixed time; remove snapshots, or use solver = \"heun\" with steps",
            ));
        }
        for &k in &self.snapshots {
            if k > steps {
                return Err(PipelineError::invalid(
                    "snapshots",
                    format!("{k} is outside 0 … {steps}, the run's number of steps (0: the starting points)"),
                ));
            }
        }
        let mut resolved = self.clone();
        resolved.run = None;
        resolved.snapshots.sort_unstable();
        resolved.snapshots.dedup();
        memory::check(
            memory::sample_bytes(resolved.chains, dim, resolved.snapshots.len()),
            MemoryLimit::default(),
            || format!("sampling ({} chains in D = {dim})", resolved.chains),
            "lower chains or snapshots",
        )?;
        let start = match &self.init {
            Some(InitSpec::Csv { csv }) => {
                let x = crate::data::read_points(csv, "init.csv", Some(dim))?;
                if x.nrows() != resolved.chains {
                    return Err(PipelineError::invalid(
                        "init.csv",
                        format!("{} has {} rows but chains = {}; give one row per chain, or set chains = {}", csv.display(), x.nrows(), resolved.chains, x.nrows()),
                    ));
                }
                Some(x)
            }
            _ => None,
        };
        let guided = match (&self.guidance, &source) {
            (None, _) => None,
            (
                Some(g),
                Source::Density {
                    p: AnyDensity::GaussianMixture(m),
                    ..
                },
            ) => {
                if !sampler.noise_conditional() {
                    return Err(PipelineError::invalid("guidance", format!("{kind} uses the clean score; guidance combines noised scores: use a diffusion sampler")));
                }
                if self.prior == PriorKind::Exact {
                    return Err(PipelineError::invalid("prior", "\"exact\" is p_T of the unguided density, which a guided run does not target: remove prior"));
                }
                let interval = g.interval.map(|[lo, hi]| (lo, hi));
                let guidance = scorelab_samplers::guidance::Guidance::new(g.weight, interval)
                    .map_err(|e| PipelineError::from(e.within("guidance")))?;
                let cond = m
                    .restricted(&g.class)
                    .map_err(|e| PipelineError::invalid("guidance.class", e.to_string()))?;
                Some((AnyDensity::from(cond), guidance))
            }
            (Some(_), _) => {
                return Err(PipelineError::invalid("guidance", "needs density = { kind = \"gaussian_mixture\", … }, whose class is a set of its components (class = [k, …]); class-conditional networks are not built yet"));
            }
        };
        Ok(Sampling {
            resolved,
            source,
            sampler,
            dim,
            start,
            guided,
        })
    }
}

/// What a run produced.
pub struct SampleOutput {
    /// The samples, in the data's units.
    pub x: Array2<f64>,
    /// Per-step information.
    pub trace: Vec<Info>,
    /// The snapshots (step count, chains in the data's units) reached.
    pub snapshots: Vec<(usize, Array2<f64>)>,
    /// Whether the observer stopped the run before the end (`x` is then the last state).
    pub interrupted: bool,
    /// Score evaluations per chain, in all.
    pub score_evals: usize,
}

impl Sampling {
    /// The same run from the given starting points `x0` `(chains, D)` instead of the plan's
    /// `init` (the library's and the Python package's form of `init = { csv = … }`).
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming `init` when `x0` is not `(chains, D)` or not finite.
    pub fn with_start(mut self, x0: Array2<f64>) -> Result<Self> {
        if x0.dim() != (self.resolved.chains, self.dim) {
            return Err(PipelineError::invalid(
                "init",
                format!(
                    "the starting points are {:?} but the run has {} chains in D = {}",
                    x0.dim(),
                    self.resolved.chains,
                    self.dim
                ),
            ));
        }
        if x0.iter().any(|v| !v.is_finite()) {
            return Err(PipelineError::invalid(
                "init",
                "every starting point must be finite",
            ));
        }
        self.start = Some(x0);
        Ok(self)
    }

    /// σ̃ of the distribution the output targets: `Some(σ̃)` for α(x₀ + σ̃z), x₀ ∼ p.
    pub fn target_sigma(&self) -> Option<f64> {
        self.sampler.outline().target_sigma()
    }

    /// α of the distribution the output targets (1 unless a `vp`/`subvp` run ends at t_min).
    pub fn target_scale(&self) -> f64 {
        self.sampler.outline().target_scale()
    }

    /// The label of the distribution the output targets ([`target_of`]; a model's noised score
    /// stands for the exact one).
    pub fn target_label(&self) -> String {
        if let Some((_, g)) = &self.guided {
            return format!("guided(weight={})", g.weight());
        }
        match (&self.source, self.target_sigma()) {
            (_, None) => "p".into(),
            (Source::Density { p, noised }, s) => target_of(p, *noised, s, self.target_scale())
                .map(|t| t.1)
                .unwrap_or_else(|_| "p_sigma".into()),
            (Source::Model { .. } | Source::External(_), Some(s)) if self.target_scale() != 1.0 => {
                format!("alpha={}*p_sigma={s}", self.target_scale())
            }
            (Source::Model { .. } | Source::External(_), Some(s)) => format!("p_sigma={s}"),
        }
    }

    fn to_data(&self, z: Array2<f64>) -> Array2<f64> {
        match &self.source {
            Source::Model {
                transform: Some(t), ..
            } => t.inverse(&z),
            _ => z,
        }
    }

    fn initial<R: Rng + ?Sized>(&self, rng: &mut R) -> Array2<f64> {
        let (n, d) = (self.resolved.chains, self.dim);
        match &self.resolved.init {
            Some(InitSpec::Uniform { low, high }) => {
                Array2::from_shape_simple_fn((n, d), || rng.gen_range(*low..*high))
            }
            Some(InitSpec::Gaussian { std, mean }) => {
                let mut x = scorelab_samplers::standard_normal(n, d, rng) * *std;
                if let Some(m) = mean {
                    x += &Array1::from(m.clone());
                }
                x
            }
            Some(InitSpec::Csv { .. }) => self.start.clone().expect("read when prepared"),
            Some(InitSpec::Prior {}) | None if self.start.is_some() => {
                self.start.clone().expect("checked")
            }
            Some(InitSpec::Prior {}) | None => match (&self.source, self.resolved.prior) {
                (Source::Density { p, .. }, PriorKind::Exact) => {
                    // p_T itself: x = α(x₀ + σ̃z), x₀ ∼ p, then z, row by row.
                    let (a, sigma) = self.sampler.outline().start().expect("validated");
                    let mut x = p.sample(n, rng);
                    x.scaled_add(sigma, &scorelab_samplers::standard_normal(n, d, rng));
                    x * a
                }
                _ => {
                    let c = self.sampler.outline().prior_std().expect("validated");
                    scorelab_samplers::standard_normal(n, d, rng) * c
                }
            },
        }
    }

    /// Runs the sampler with the randomness of the plan's seed (`resolved.seed`, the one a saved
    /// config records; set it to run another seed of the same plan; module docs for its
    /// streams); the observer sees each step's [`Info`] and may stop the run after it
    /// ([`SampleOutput::interrupted`]). The snapshots reached are returned in
    /// [`SampleOutput::snapshots`].
    pub fn run(&self, observer: &mut dyn Observe<Info>) -> SampleOutput {
        let mut kept = vec![];
        let mut out = self
            .run_with(observer, &mut |k, x| {
                kept.push((k, x.clone()));
                Ok(())
            })
            .expect("collecting snapshots cannot fail");
        out.snapshots = kept;
        out
    }

    /// [`Sampling::run`], handing each snapshot (step count, chains in the data's units) to
    /// `on_snapshot` as it is reached, so that a caller can save it before the run goes on (a
    /// kill then loses none of those reached); [`SampleOutput::snapshots`] is left empty.
    ///
    /// # Errors
    /// The first error of `on_snapshot`, which ends the run.
    pub fn run_with(
        &self,
        observer: &mut dyn Observe<Info>,
        on_snapshot: &mut dyn FnMut(usize, &Array2<f64>) -> Result<()>,
    ) -> Result<SampleOutput> {
        let mut snap = |k: usize, z: ArrayView2<f64>| on_snapshot(k, &self.to_data(z.to_owned()));
        let mut rng = ChaCha8Rng::seed_from_u64(self.resolved.seed);
        rng.set_stream(scorelab_core::streams::Stream::SampleStart.id());
        let x0 = self.initial(&mut rng);
        rng.set_stream(scorelab_core::streams::Stream::SampleSteps.id());
        rng.set_word_pos(0);
        let mut d = Driver {
            rng,
            snapshots: &self.resolved.snapshots,
            observer,
            snap: &mut snap,
            failed: None,
            trace: vec![],
        };
        let (z, interrupted) = match (&self.source, &self.sampler) {
            (Source::Density { p, .. }, AnySampler::Langevin(m)) => d.drive(m, p as &dyn Score, x0),
            (Source::Density { p, .. }, AnySampler::Mala(m)) => d.drive(m, p as &dyn Target, x0),
            (Source::Density { p, noised }, s) if self.guided.is_some() => {
                let (cond, g) = self.guided.as_ref().expect("matched");
                let c = DensityNoised {
                    p: cond,
                    kind: *noised,
                };
                let u = DensityNoised { p, kind: *noised };
                let src = scorelab_samplers::guidance::Guided::new(&c, &u, *g);
                d.drive_noised(s, &src as &dyn NoisedScore, x0)
            }
            (Source::Density { p, noised }, s) => {
                let src = DensityNoised { p, kind: *noised };
                d.drive_noised(s, &src as &dyn NoisedScore, x0)
            }
            // A trained network through the f32 inference path (weights prepared once per run).
            (Source::Model { net, .. }, AnySampler::Langevin(m)) => {
                let f = F32Score::new(net, None).expect("validated: a σ-free network");
                d.drive(m, &f as &dyn Score, x0)
            }
            (Source::Model { net, .. }, s) => {
                let f = F32Noised::new(net).expect("validated: a noise-conditional network");
                d.drive_noised(s, &f as &dyn NoisedScore, x0)
            }
            (Source::External(External::Clean(f)), AnySampler::Langevin(m)) => {
                d.drive(m, &**f as &dyn Score, x0)
            }
            (Source::External(External::Noised(f)), s) => {
                d.drive_noised(s, &**f as &dyn NoisedScore, x0)
            }
            (Source::External(External::Clean(_)), _) => {
                unreachable!("validated: a clean score drives langevin only")
            }
        };
        // Score evaluations per chain: every step's, plus init's (MALA) and finish's (denoise).
        let score_evals = d.trace.iter().map(|i| i.score_evals).sum::<usize>()
            + if interrupted {
                0
            } else {
                self.sampler.outline().extra_score_evals()
            };
        if let Some(e) = d.failed {
            return Err(e);
        }
        Ok(SampleOutput {
            x: self.to_data(z),
            trace: d.trace,
            snapshots: vec![],
            interrupted,
            score_evals,
        })
    }
}

struct Driver<'a> {
    rng: ChaCha8Rng,
    snapshots: &'a [usize],
    observer: &'a mut dyn Observe<Info>,
    snap: &'a mut dyn FnMut(usize, ArrayView2<f64>) -> Result<()>,
    failed: Option<PipelineError>,
    trace: Vec<Info>,
}

/// One sampling run as [`crate::observe::execute`] drives it: the sampler's steps, each shown to
/// the observer, the snapshots written after the steps they name.
struct Steps<'a, S: ?Sized, M: Sampler<S>> {
    m: &'a M,
    src: &'a S,
    state: Option<M::State>,
    taken: usize,
    rng: &'a mut ChaCha8Rng,
    snapshots: &'a [usize],
    snap: &'a mut dyn FnMut(usize, ArrayView2<f64>) -> Result<()>,
    trace: &'a mut Vec<Info>,
}

impl<S: ?Sized, M: Sampler<S>> crate::observe::Iterate for Steps<'_, S, M> {
    type Event = Info;
    fn done(&self) -> bool {
        self.taken == self.m.num_steps()
    }
    fn step(&mut self) -> Result<Info> {
        let state = self.state.take().expect("a state between steps");
        let (state, info) = self.m.step(self.src, state, self.rng);
        self.state = Some(state);
        self.taken += 1;
        self.trace.push(info);
        Ok(info)
    }
    fn after_step(&mut self, _: &mut dyn Observe<Info>) -> Result<Control> {
        let state = self.state.as_ref().expect("a state after a step");
        let k = state.steps_taken();
        if self.snapshots.contains(&k) {
            (self.snap)(k, state.positions())?;
        }
        Ok(Control::Continue)
    }
}

impl Driver<'_> {
    fn drive<S: ?Sized, M: Sampler<S>>(
        &mut self,
        m: &M,
        src: &S,
        x0: Array2<f64>,
    ) -> (Array2<f64>, bool) {
        if self.snapshots.first() == Some(&0) {
            if let Err(e) = (self.snap)(0, x0.view()) {
                self.failed = Some(e);
                return (x0, true);
            }
        }
        let mut steps = Steps {
            m,
            src,
            state: Some(m.init(src, x0)),
            taken: 0,
            rng: &mut self.rng,
            snapshots: self.snapshots,
            snap: &mut *self.snap,
            trace: &mut self.trace,
        };
        let ran = crate::observe::execute(&mut steps, &mut *self.observer);
        let state = steps.state.take().expect("a state after the run");
        match ran {
            Ok(crate::observe::Ran::Finished) => (m.finish(src, state), false),
            Ok(crate::observe::Ran::Stopped) => (state.positions().to_owned(), true),
            Err(e) => {
                self.failed = Some(e);
                (state.positions().to_owned(), true)
            }
        }
    }

    fn drive_noised(
        &mut self,
        s: &AnySampler,
        src: &dyn NoisedScore,
        x0: Array2<f64>,
    ) -> (Array2<f64>, bool) {
        match s {
            AnySampler::AnnealedLangevin(m) => self.drive(m, src, x0),
            AnySampler::ReverseSde(m) => self.drive(m, src, x0),
            AnySampler::Pc(m) => self.drive(m, src, x0),
            AnySampler::Ode(m) => self.drive(m, src, x0),
            AnySampler::Ancestral(m) => self.drive(m, src, x0),
            AnySampler::Ddim(m) => self.drive(m, src, x0),
            AnySampler::Heun(m) => self.drive(m, src, x0),
            AnySampler::Solver(m) => self.drive(m, src, x0),
            AnySampler::Langevin(_) | AnySampler::Mala(_) => unreachable!("clean-score samplers"),
        }
    }
}

/// The per-step trace as CSV: `step,sigma,step_size,acceptance_rate,score_evals` (cumulative
/// evaluations per chain, init included).
pub fn trace_csv(trace: &[Info], init_evals: usize) -> String {
    let mut csv = String::from("step,sigma,step_size,acceptance_rate,score_evals\n");
    let mut evals = init_evals;
    for i in trace {
        evals += i.score_evals;
        csv.push_str(&format!(
            "{},{},{},{},{}\n",
            i.step + 1,
            cell(i.sigma),
            i.step_size,
            cell(i.acceptance_rate),
            evals
        ));
    }
    csv
}

/// The distribution a sampler's output targets, with its label, given the density p whose
/// (noised) score drives it, the kind of noised score, and the sampler's target σ̃ and scale α
/// ([`scorelab_samplers::Outline::target_sigma`], [`scorelab_samplers::Outline::target_scale`]):
///
/// - no σ̃ (clean-score samplers, `denoise = true`, or a grid that ends at σ̃ = 0): p, `p`;
/// - `exact` noised scores: p_σ̃ = p ∗ N(0, σ̃²I), `p_sigma=σ̃`, or with α ≠ 1 (a `vp`/`subvp` run
///   ending at t_min) the law of α(x₀ + σ̃z), `alpha=α*p_sigma=σ̃`;
/// - `ncsn_toy`: p with every covariance replaced by σ̃²I, which is p itself when p's covariances
///   are already σ̃²I (`p`; the NCSN toy at σ_L = 1), else `p_ncsn_toy_sigma=σ̃` (scaled by α as
///   above).
///
/// # Errors
/// A message if the target is not closed form for p's kind.
pub fn target_of(
    p: &AnyDensity,
    kind: NoisedScoreKind,
    sigma: Option<f64>,
    scale: f64,
) -> Result<(AnyDensity, String), String> {
    let scaled = |q: AnyDensity, label: String| -> (AnyDensity, String) {
        if scale == 1.0 {
            return (q, label);
        }
        let q = match q {
            AnyDensity::Gaussian(g) => g.scaled(scale).into(),
            AnyDensity::GaussianMixture(m) => m.scaled(scale).into(),
            _ => unreachable!("a noised target is a Gaussian or a mixture"),
        };
        (q, format!("alpha={scale}*{label}"))
    };
    match (sigma, kind) {
        (None, _) => Ok((p.clone(), "p".into())),
        (Some(s), NoisedScoreKind::Exact) => p
            .noised(s)
            .map(|q| scaled(q, format!("p_sigma={s}")))
            .ok_or_else(|| {
                format!(
                    "the output targets p_σ (σ = {s}), which is closed form only for gaussian and gaussian_mixture, not {}; set denoise = true in [sampler], or compare with --reference",
                    p.kind()
                )
            }),
        (Some(s), NoisedScoreKind::NcsnToy) => {
            let q = replaced(p, s);
            let label = if &q == p {
                "p".to_string()
            } else {
                format!("p_ncsn_toy_sigma={s}")
            };
            Ok(scaled(q, label))
        }
    }
}

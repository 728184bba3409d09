//! [`Trainer`]: seeded f32 training of a [`Network`] by any [`Objective`], one step at a time, with
//! a fixed held-out batch, a fixed evaluation batch, and checkpointable state.
//!
//! # Randomness (reproducible and resumable)
//! From `seed`, three independent ChaCha8 streams (stream 0 is left to the network's initialisation,
//! which `scorelab train` draws from `ChaCha8Rng::seed_from_u64(seed)`):
//! * stream 1 drives training: each step draws its batch (fresh samples of the density, or B row
//!   indices of the training points uniformly with replacement), then the objective's noise
//!   ([`Noise::draw`]). A checkpoint stores this stream's position, so a resumed run continues the
//!   draws an uninterrupted run would have made.
//! * stream 2 draws the held-out batch (density data: `val_batch` fresh samples; point data: the
//!   held-out points) and its noise, once.
//! * stream 3 draws the evaluation batch (density data only), once.
//!
//! # Evaluation ([`Trainer::evaluate`])
//! The evaluated weights are those saved: the EMA weights if `ema > 0`, else the raw ones.
//! * `val_loss`: the objective on the held-out batch with its fixed noise.
//! * `ism`: ½‖s‖² + tr ∇s (exact, structured, in f64) averaged over the evaluation points (the
//!   held-out points for point data).
//! * `esm` and `relative_fisher` (analytic data only): ESM = ½ mean ‖s − ∇log p‖² on the evaluation batch,
//!   and `relative_fisher` = ESM / C with C = ½ mean ‖∇log p‖² on the same batch: the Fisher divergence
//!   relative to that of the zero score (0: exact; 1: no better than s = 0); `esm_ism_se` the
//!   standard error of ESM − ISM, from the per-point differences on the same batch (ESM − ISM − C
//!   is then a Monte Carlo residual with that standard error, C's own error included through the
//!   pairing).
//! * A noise-conditional network is evaluated at the smallest σ it was trained on, against p_σ
//!   (evaluation points x + σz, target ∇log p_σ) where p_σ is closed form; its `esm`/`relative_fisher` are
//!   empty otherwise. A plain network trained by `dsm` is evaluated against p itself (it fits p_σ,
//!   and the gap is the point).

use crate::taped::{loss_and_gradient, loss_values, Noise, Objective};
use ndarray::{Array2, Axis};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_core::linalg::row_sq_norms;
use scorelab_core::{Dimension, Sample, Score};
use scorelab_densities::AnyDensity;
use scorelab_models::{Adam, Checkpoint, Ema, Network, TrainingState};

/// One training step in f32: the loss of `objective` on the batch `x` (with `target` for ESM and
/// the drawn `noise`), its θ-gradient by one backward pass, and one Adam update of `net`. This is
/// exactly what `scorelab cost` and the `jacobian_cost` benchmark time.
///
/// # Errors
/// The offending value (NaN if only a gradient was not finite) when the loss or a gradient is not
/// finite; `net` and `adam` are then left unchanged.
///
/// # Examples
/// ```
/// use ndarray::Array2;
/// use scorelab_models::{Activation, Adam, Mlp, Network, TraceMethod};
/// use scorelab_objectives::taped::{Noise, Objective};
/// use scorelab_objectives::training::adam_step;
/// let mut net = Network::Mlp(Mlp::new(2, &[8], Activation::Softplus, 0)?);
/// let mut adam = Adam::new(net.params(), 1e-3)?;
/// let x = Array2::from_elem((4, 2), 0.5);
/// let o = Objective::Ism { trace: TraceMethod::Structured };
/// let loss = adam_step(&o, &mut net, &mut adam, x.view(), None, &Noise::default()).unwrap();
/// assert!(loss.is_finite() && adam.steps() == 1);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
pub fn adam_step(
    objective: &Objective,
    net: &mut Network,
    adam: &mut Adam,
    x: ndarray::ArrayView2<f64>,
    target: Option<ndarray::ArrayView2<f64>>,
    noise: &Noise,
) -> Result<f64, f64> {
    // The direct f32 step where it covers the pair, else the tape.
    if let Some((loss, grads)) = crate::direct::loss_and_gradient(objective, net, x, target, noise)
    {
        if !loss.is_finite() {
            return Err(loss);
        }
        if grads.iter().flatten().any(|g| !g.is_finite()) {
            return Err(f64::NAN);
        }
        adam.step_f32(net.params_mut(), &grads);
        return Ok(loss);
    }
    let (loss, grads) = match step_pool(objective, net, x.nrows(), x.ncols()) {
        Some(pool) => pool.install(|| loss_and_gradient::<f32>(objective, net, x, target, noise)),
        None => loss_and_gradient::<f32>(objective, net, x, target, noise),
    };
    if !loss.is_finite() {
        return Err(loss);
    }
    if grads.iter().flatten().any(|g| !g.is_finite()) {
        return Err(f64::NAN);
    }
    adam.step(net.params_mut(), &grads);
    Ok(loss)
}

/// Below this many multiply–adds per step (≈ points × parameters × passes) a step runs on one
/// thread: splitting small matrix products across threads costs more than it saves (measured
/// with `scorelab cost` on 2 cores: single-threaded steps were 20–30% faster up to D = 128 in
/// the benchmark setting, two threads faster at D = 512).
pub const SERIAL_WORK: usize = 10_000_000;

/// The passes through the network per point: the score, plus the tangents of the objective.
fn tangents_per_point(objective: &Objective, dim: usize) -> usize {
    match objective {
        Objective::Ism {
            trace: scorelab_models::TraceMethod::Naive,
        } => 1 + dim,
        Objective::Ism { .. } => 2,
        Objective::Ssm { projections, .. } | Objective::SsmVr { projections, .. } => {
            1 + projections
        }
        _ => 1,
    }
}

/// The pool a training step of `objective` on `net` with `batch` points in D = `dim` should run
/// in: the one-thread pool when the step is small ([`SERIAL_WORK`]) and the caller is not already
/// on one thread, else `None` (the current pool). [`adam_step`] applies it to each step; a loop
/// of many steps does better to run whole inside the pool (`pool.install(|| …)`), which spares
/// two thread switches per step.
pub fn step_pool(
    objective: &Objective,
    net: &Network,
    batch: usize,
    dim: usize,
) -> Option<&'static rayon::ThreadPool> {
    let work = batch * net.params().num_scalars() * tangents_per_point(objective, dim);
    (work < SERIAL_WORK && rayon::current_num_threads() > 1).then(serial_pool)
}

/// A one-thread pool for small steps (dfdx's matrix products use rayon's current pool).
fn serial_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("a one-thread pool")
    })
}

/// Training hyper-parameters: the `[train]` table of a config, which deserialises through
/// [`TrainSettings::validate`] (every key and default in docs/reference.md).
///
/// # Examples
/// ```
/// use scorelab_objectives::training::TrainSettings;
/// let s: TrainSettings = toml::from_str("steps = 500\nlr = 0.002")?;
/// assert_eq!(s, TrainSettings { steps: 500, lr: 0.002, ..TrainSettings::default() });
/// assert_eq!(TrainSettings::new(1000, 0, 1e-3).unwrap_err().to_string(), "batch: must be at least 1");
/// assert!(toml::from_str::<TrainSettings>("ema = 1.5").unwrap_err().message().starts_with("ema: must be in [0, 1)"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "TrainSettingsDef", into = "TrainSettingsDef")]
pub struct TrainSettings {
    /// Adam steps.
    pub steps: u64,
    /// Points per step (B).
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// With `Some(lr_final)`, the learning rate decays from `lr` to `lr_final` along a half
    /// cosine over the steps ([`TrainSettings::lr_at`], Loshchilov & Hutter 2017, without
    /// restarts); `None` keeps it at `lr`.
    pub lr_final: Option<f64>,
    /// EMA decay γ ∈ [0, 1); 0 turns the average off.
    pub ema: f64,
    /// Points in the held-out batch (density data).
    pub val_batch: usize,
    /// Points in the evaluation batch (density data).
    pub eval_batch: usize,
    /// Steps between evaluations (and saves) of a training run.
    pub eval_every: u64,
}

impl Default for TrainSettings {
    /// 3000 steps of 128 points at lr 1e-3 (constant), no EMA, held-out batch 1024, evaluation
    /// batch 4096, an evaluation every 100 steps.
    fn default() -> Self {
        TrainSettings {
            steps: 3000,
            batch: 128,
            lr: 1e-3,
            lr_final: None,
            ema: 0.0,
            val_batch: 1024,
            eval_batch: 4096,
            eval_every: 100,
        }
    }
}

/// Changes to [`TrainSettings`]: a `train = { steps = 500 }` table that a study or a `--quick`
/// run lays over a config's `[train]`, each key as `[train]` spells it, absent keys unchanged.
///
/// # Examples
/// ```
/// use scorelab_objectives::training::{TrainOverrides, TrainSettings};
/// let over: TrainOverrides = toml::from_str("steps = 300")?;
/// let base = TrainSettings::new(3000, 256, 1e-3)?;
/// assert_eq!(over.apply(&base)?, TrainSettings { steps: 300, ..base.clone() });
/// assert!(toml::from_str::<TrainOverrides>("step = 300").is_err()); // a typo is refused
/// let bad: TrainOverrides = toml::from_str("batch = 0")?;
/// assert_eq!(bad.apply(&base).unwrap_err().to_string(), "batch: must be at least 1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOverrides {
    /// Adam steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<u64>,
    /// Points per step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// Adam's learning rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    /// The final learning rate of the cosine decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lr_final: Option<f64>,
    /// Steps between evaluations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<u64>,
    /// EMA decay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ema: Option<f64>,
    /// Held-out batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_batch: Option<usize>,
    /// Evaluation batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_batch: Option<usize>,
}

impl TrainOverrides {
    /// `base` with the given keys replaced, validated ([`TrainSettings::validate`]).
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming the field.
    pub fn apply(&self, base: &TrainSettings) -> Result<TrainSettings, scorelab_core::ParamError> {
        let s = TrainSettings {
            steps: self.steps.unwrap_or(base.steps),
            batch: self.batch.unwrap_or(base.batch),
            lr: self.lr.unwrap_or(base.lr),
            lr_final: self.lr_final.or(base.lr_final),
            ema: self.ema.unwrap_or(base.ema),
            val_batch: self.val_batch.unwrap_or(base.val_batch),
            eval_batch: self.eval_batch.unwrap_or(base.eval_batch),
            eval_every: self.eval_every.unwrap_or(base.eval_every),
        };
        s.validate()?;
        Ok(s)
    }
}

/// The serde form of [`TrainSettings`]: absent keys take [`TrainSettings::default`]'s values.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct TrainSettingsDef {
    steps: u64,
    batch: usize,
    lr: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lr_final: Option<f64>,
    eval_every: u64,
    ema: f64,
    val_batch: usize,
    eval_batch: usize,
}

impl Default for TrainSettingsDef {
    fn default() -> Self {
        TrainSettings::default().into()
    }
}

impl From<TrainSettings> for TrainSettingsDef {
    fn from(s: TrainSettings) -> Self {
        TrainSettingsDef {
            steps: s.steps,
            batch: s.batch,
            lr: s.lr,
            lr_final: s.lr_final,
            eval_every: s.eval_every,
            ema: s.ema,
            val_batch: s.val_batch,
            eval_batch: s.eval_batch,
        }
    }
}

impl TryFrom<TrainSettingsDef> for TrainSettings {
    type Error = scorelab_core::ParamError;
    fn try_from(d: TrainSettingsDef) -> Result<Self, Self::Error> {
        let s = TrainSettings {
            steps: d.steps,
            batch: d.batch,
            lr: d.lr,
            lr_final: d.lr_final,
            ema: d.ema,
            val_batch: d.val_batch,
            eval_batch: d.eval_batch,
            eval_every: d.eval_every,
        };
        s.validate()?;
        Ok(s)
    }
}

impl TrainSettings {
    /// `steps` Adam steps of `batch` points at learning rate `lr`, every other setting at its
    /// default.
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming the field ([`TrainSettings::validate`]).
    pub fn new(steps: u64, batch: usize, lr: f64) -> Result<Self, scorelab_core::ParamError> {
        let s = TrainSettings {
            steps,
            batch,
            lr,
            ..TrainSettings::default()
        };
        s.validate()?;
        Ok(s)
    }

    /// The same settings with an EMA of the weights of decay `ema` ∈ [0, 1) (0: none).
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming `ema`.
    pub fn with_ema(self, ema: f64) -> Result<Self, scorelab_core::ParamError> {
        let s = TrainSettings { ema, ..self };
        s.validate()?;
        Ok(s)
    }

    /// The same settings evaluating (and saving) every `eval_every` steps.
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming `eval_every`.
    pub fn with_eval_every(self, eval_every: u64) -> Result<Self, scorelab_core::ParamError> {
        let s = TrainSettings { eval_every, ..self };
        s.validate()?;
        Ok(s)
    }

    /// The learning rate of step `k` (0-based) of `steps`: `lr`, or with `lr_final` the half
    /// cosine lr_final + (lr − lr_final)(1 + cos(π k/steps))/2, from `lr` at k = 0 down to
    /// `lr_final` at k = `steps`.
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::training::TrainSettings;
    /// let c = TrainSettings { steps: 100, batch: 8, lr: 1e-2, lr_final: Some(1e-4), ema: 0.0, val_batch: 2, eval_batch: 2, eval_every: 100 };
    /// assert_eq!(c.lr_at(0), 1e-2);
    /// assert!((c.lr_at(50) - (1e-4 + 0.5 * (1e-2 - 1e-4))).abs() < 1e-15);
    /// assert!((c.lr_at(100) - 1e-4).abs() < 1e-15);
    /// ```
    pub fn lr_at(&self, k: u64) -> f64 {
        match self.lr_final {
            None => self.lr,
            Some(f) => {
                let t = (k.min(self.steps) as f64) / self.steps as f64;
                f + (self.lr - f) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        }
    }

    /// Checks every field: at least one step and one point per step, a positive finite learning
    /// rate, an EMA decay in [0, 1), and at least two points in each evaluation batch.
    /// [`Trainer::new`] calls it.
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::training::TrainSettings;
    /// let mut c = TrainSettings { steps: 10, batch: 64, lr: 1e-3, lr_final: None, ema: 0.0, val_batch: 256, eval_batch: 256, eval_every: 100 };
    /// assert!(c.validate().is_ok());
    /// c.batch = 0;
    /// assert_eq!(c.validate().unwrap_err().to_string(), "batch: must be at least 1");
    /// ```
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming the field as the `[train]` table spells it.
    pub fn validate(&self) -> Result<(), scorelab_core::ParamError> {
        use scorelab_core::ParamError;
        if self.steps == 0 {
            return Err(ParamError::invalid("steps", "must be at least 1"));
        }
        if self.batch == 0 {
            return Err(ParamError::invalid("batch", "must be at least 1"));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(ParamError::invalid(
                "lr",
                format!("must be positive and finite, got {}", self.lr),
            ));
        }
        if let Some(f) = self.lr_final {
            if !(f > 0.0 && f <= self.lr) {
                return Err(ParamError::invalid(
                    "lr_final",
                    format!("must be positive and at most lr = {}, got {f}", self.lr),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.ema) {
            return Err(ParamError::invalid(
                "ema",
                format!("must be in [0, 1) (0 turns it off), got {}", self.ema),
            ));
        }
        if self.val_batch < 2 {
            return Err(ParamError::invalid("val_batch", "must be at least 2"));
        }
        if self.eval_batch < 2 {
            return Err(ParamError::invalid("eval_batch", "must be at least 2"));
        }
        if self.eval_every == 0 {
            return Err(ParamError::invalid("eval_every", "must be at least 1"));
        }
        Ok(())
    }
}

/// Where the training points come from.
#[derive(Debug, Clone)]
pub enum TrainData {
    /// Fresh exact samples every step.
    Density(Box<AnyDensity>),
    /// A 2-D toy data set: fresh draws every step; the held-out points are the first `val_batch`
    /// of its fixed held-out set of the seed ([`scorelab_densities::Toy::heldout`]). It has no
    /// score, so `esm` is refused.
    Toy(scorelab_densities::Toy),
    /// A fixed data set, split into training and held-out points.
    Points {
        /// Training points.
        train: Array2<f64>,
        /// Held-out points.
        val: Array2<f64>,
        /// σ₀ ≥ 0: N(0, σ₀² I) noise added afresh to every training batch (from the step stream)
        /// and once to the held-out and evaluation points (from their streams), so that the
        /// objectives fit the smooth p ∗ N(0, σ₀² I) of a data set with exact ties or a boundary.
        /// 0: none (and no draws).
        noise: f64,
        /// Bin widths qⱼ (one per column, 0 for a continuous one): uniform dequantisation noise
        /// U(−qⱼ/2, qⱼ/2) added afresh to every training batch (from the step stream, before the
        /// σ₀ noise) and once to the held-out and evaluation points; `None`: none (no draws).
        dequantize: Option<Vec<f64>>,
    },
}

impl TrainData {
    fn dim(&self) -> usize {
        match self {
            TrainData::Density(d) => d.dim(),
            TrainData::Toy(_) => 2,
            TrainData::Points { train, .. } => train.ncols(),
        }
    }
}

/// One evaluation (module docs); `None` where undefined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvalRow {
    /// Steps finished.
    pub step: u64,
    /// The training loss of the last step (NaN before the first).
    pub loss: f64,
    /// The loss on the held-out batch.
    pub val_loss: f64,
    /// ESM on the evaluation batch.
    pub esm: Option<f64>,
    /// ISM on the evaluation batch.
    pub ism: Option<f64>,
    /// ESM / C: the Fisher divergence relative to that of the zero score (`relative_fisher` in
    /// `loss.csv`). ESM itself is the Fisher divergence ½E‖s − ∇log p‖².
    pub relative_fisher: Option<f64>,
    /// The standard error of ESM − ISM over the evaluation batch: sd(ESMᵢ − ISMᵢ)/√n.
    pub esm_ism_se: Option<f64>,
}

/// Why training stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The loss or its gradient was not finite; the step was not applied.
    #[error("the loss or its gradient became {value} at step {step}; the weights of step {last_good} are kept. Lower lr (now {lr}) and rerun, or resume with a lower lr")]
    NonFinite {
        /// The step that failed (1-based).
        step: u64,
        /// The last step whose update was applied.
        last_good: u64,
        /// The offending loss value.
        value: f64,
        /// The learning rate.
        lr: f64,
    },
    /// The network and the objective or data do not fit together.
    #[error("{0}")]
    Setup(String),
}

struct Held {
    x: Array2<f64>,
    target: Option<Array2<f64>>,
    noise: Noise,
}

/// The evaluation points; their targets are recomputed chunk by chunk (memory stays small in
/// high dimensions).
struct EvalSet {
    x: Array2<f64>,
    has_target: bool,
    sigma: Option<f64>,
}

/// Rows per chunk of the evaluation.
const EVAL_CHUNK: usize = 512;

/// Step-by-step training (module docs).
///
/// # Examples
/// ```
/// use scorelab_densities::{AnyDensity, Gaussian};
/// use scorelab_models::{Activation, Mlp, Network, TraceMethod};
/// use scorelab_objectives::taped::Objective;
/// use scorelab_objectives::training::{TrainSettings, TrainData, Trainer};
/// let net = Network::Mlp(Mlp::new(2, &[16], Activation::Softplus, 0)?);
/// let data = TrainData::Density(Box::new(AnyDensity::from(Gaussian::standard(2))));
/// let cfg = TrainSettings { steps: 200, batch: 64, lr: 1e-2, lr_final: None, ema: 0.0, val_batch: 256, eval_batch: 1024, eval_every: 100 };
/// let mut t = Trainer::new(net, Objective::Ism { trace: TraceMethod::Structured }, data, cfg, 1)?;
/// let before = t.evaluate().relative_fisher.unwrap();
/// while t.step() < 200 { t.train_step()?; }
/// assert!(t.evaluate().relative_fisher.unwrap() < before);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Trainer {
    net: Network,
    objective: Objective,
    data: TrainData,
    cfg: TrainSettings,
    adam: Adam,
    ema: Option<Ema>,
    rng: ChaCha8Rng,
    step: u64,
    last_loss: f64,
    held: Held,
    eval: EvalSet,
}

impl Trainer {
    /// A trainer at step 0.
    ///
    /// # Errors
    /// [`TrainError::Setup`] if the network does not fit the objective
    /// ([`Objective::check_network`]), ESM lacks an analytic density, or dimensions differ.
    pub fn new(
        net: Network,
        objective: Objective,
        data: TrainData,
        cfg: TrainSettings,
        seed: u64,
    ) -> Result<Self, TrainError> {
        cfg.validate()
            .map_err(|e| TrainError::Setup(format!("train.{e}")))?;
        objective
            .validate()
            .map_err(|e| TrainError::Setup(format!("objective.{e}")))?;
        objective.check_network(&net).map_err(TrainError::Setup)?;
        if net.spec().dim != data.dim() {
            return Err(TrainError::Setup(format!(
                "the model has dim {} but the data have {} columns",
                net.spec().dim,
                data.dim()
            )));
        }
        if objective.needs_target() && !matches!(data, TrainData::Density(_)) {
            return Err(TrainError::Setup(
                "objective esm needs the true score: use an analytic density, or ism / ssm_vr / dsm for data files".into(),
            ));
        }
        let d = data.dim();
        use scorelab_core::streams::Stream;
        let stream = |s: Stream| s.rng(seed);
        let mut r1 = stream(Stream::Validation);
        let held_x = match &data {
            TrainData::Density(p) => p.sample(cfg.val_batch, &mut r1),
            TrainData::Toy(t) => {
                let h = t.heldout(seed);
                h.slice(ndarray::s![..cfg.val_batch.min(h.nrows()), ..])
                    .to_owned()
            }
            TrainData::Points {
                val,
                noise,
                dequantize,
                ..
            } => with_noise(&with_uniform(val, dequantize, &mut r1), *noise, &mut r1),
        };
        let held_target = match (&data, objective.needs_target()) {
            (TrainData::Density(p), true) => Some(p.score(held_x.view())),
            _ => None,
        };
        let held_noise = Noise::draw(&objective, held_x.nrows(), d, &mut r1);
        let eval_sigma = match &objective {
            Objective::DsmMulti { sigmas } if net.is_noise_conditional() => {
                Some(sigmas.iter().copied().fold(f64::INFINITY, f64::min))
            }
            Objective::DsmContinuous(c) if net.is_noise_conditional() => Some(c.sigma_min()),
            Objective::Dsm { sigma } if net.is_noise_conditional() => Some(*sigma),
            _ => None,
        };
        let eval = match &data {
            TrainData::Density(p) => {
                let mut r2 = stream(Stream::Evaluation);
                let mut x = p.sample(cfg.eval_batch, &mut r2);
                if let Some(s) = eval_sigma {
                    x.mapv_inplace(|v| {
                        let z: f64 = StandardNormal.sample(&mut r2);
                        v + s * z
                    });
                }
                let has_target = match eval_sigma {
                    None => true,
                    Some(s) => p.noised_score(x.slice(ndarray::s![..1, ..]), s).is_some(),
                };
                EvalSet {
                    x,
                    has_target,
                    sigma: eval_sigma,
                }
            }
            TrainData::Toy(t) => {
                let mut r2 = stream(Stream::Evaluation);
                let mut x = t.sample(cfg.eval_batch, &mut r2);
                if let Some(s) = eval_sigma {
                    x.mapv_inplace(|v| {
                        let z: f64 = StandardNormal.sample(&mut r2);
                        v + s * z
                    });
                }
                EvalSet {
                    x,
                    has_target: false,
                    sigma: eval_sigma,
                }
            }
            TrainData::Points {
                val,
                noise,
                dequantize,
                ..
            } => EvalSet {
                x: {
                    let mut r = stream(Stream::Evaluation);
                    with_noise(&with_uniform(val, dequantize, &mut r), *noise, &mut r)
                },
                has_target: false,
                sigma: eval_sigma,
            },
        };
        let adam =
            Adam::new(net.params(), cfg.lr).map_err(|e| TrainError::Setup(format!("train.{e}")))?;
        let ema = match cfg.ema > 0.0 {
            true => Some(
                Ema::new(net.params(), cfg.ema)
                    .map_err(|e| TrainError::Setup(format!("train.{e}")))?,
            ),
            false => None,
        };
        Ok(Trainer {
            net,
            objective,
            data,
            cfg,
            adam,
            ema,
            rng: stream(Stream::Steps),
            step: 0,
            last_loss: f64::NAN,
            held: Held {
                x: held_x,
                target: held_target,
                noise: held_noise,
            },
            eval,
        })
    }

    /// Steps finished.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// The pool its steps should run in ([`step_pool`]).
    pub fn step_pool(&self) -> Option<&'static rayon::ThreadPool> {
        step_pool(
            &self.objective,
            &self.net,
            self.cfg.batch,
            self.net.spec().dim,
        )
    }

    /// The configuration.
    pub fn config(&self) -> &TrainSettings {
        &self.cfg
    }

    /// The objective.
    pub fn objective(&self) -> &Objective {
        &self.objective
    }

    /// The network with the weights that are evaluated and saved (EMA if on).
    pub fn model(&self) -> Network {
        let mut net = self.net.clone();
        if let Some(e) = &self.ema {
            *net.params_mut() = e.params().clone();
        }
        net
    }

    /// The network with the raw (optimised) weights.
    pub fn raw_model(&self) -> &Network {
        &self.net
    }

    /// One Adam step (module docs for the draws). Returns the training loss.
    ///
    /// # Errors
    /// [`TrainError::NonFinite`] if the loss or a gradient is not finite; the step is not applied.
    pub fn train_step(&mut self) -> Result<f64, TrainError> {
        if self.cfg.lr_final.is_some() {
            self.adam
                .set_lr(self.cfg.lr_at(self.step))
                .map_err(|e| TrainError::Setup(format!("train.{e}")))?;
        }
        let (x, target) = self.draw_batch();
        let mut noise = Noise::draw(&self.objective, x.nrows(), x.ncols(), &mut self.rng);
        if let Objective::DsmContinuous(c) = &self.objective {
            if c.coupling() == crate::continuous::Coupling::Ot {
                noise.couple(x.view());
            }
        }
        let target = target.as_ref().map(|t| t.view());
        let loss = match adam_step(
            &self.objective,
            &mut self.net,
            &mut self.adam,
            x.view(),
            target,
            &noise,
        ) {
            Ok(loss) => loss,
            Err(value) => {
                return Err(TrainError::NonFinite {
                    step: self.step + 1,
                    last_good: self.step,
                    value,
                    lr: self.cfg.lr_at(self.step),
                })
            }
        };
        if let Some(e) = &mut self.ema {
            e.update(self.net.params());
        }
        self.step += 1;
        self.last_loss = loss;
        Ok(loss)
    }

    fn draw_batch(&mut self) -> (Array2<f64>, Option<Array2<f64>>) {
        let b = self.cfg.batch;
        match &self.data {
            TrainData::Density(p) => {
                let x = p.sample(b, &mut self.rng);
                let t = self.objective.needs_target().then(|| p.score(x.view()));
                (x, t)
            }
            TrainData::Toy(t) => (t.sample(b, &mut self.rng), None),
            TrainData::Points {
                train,
                noise,
                dequantize,
                ..
            } => {
                let n = train.nrows();
                let idx: Vec<usize> = (0..b).map(|_| self.rng.gen_range(0..n)).collect();
                let x = with_uniform(&train.select(Axis(0), &idx), dequantize, &mut self.rng);
                (with_noise(&x, *noise, &mut self.rng), None)
            }
        }
    }

    /// Evaluates the saved weights (module docs).
    pub fn evaluate(&self) -> EvalRow {
        let model = self.model();
        let val = loss_values::<f32>(
            &self.objective,
            &model,
            self.held.x.view(),
            self.held.target.as_ref().map(|t| t.view()),
            &self.held.noise,
        );
        let val_loss = val.iter().sum::<f64>() / val.len() as f64;
        let (esm, ism, relative_fisher, esm_ism_se) = match model.score_function(self.eval.sigma) {
            Ok(f) => {
                // Sums over chunks of the evaluation points, targets recomputed per chunk; the
                // gap's sum of squares about a shift (its first value) keeps the variance accurate.
                let (mut ism, mut esm, mut c) = (0.0, 0.0, 0.0);
                let (mut shift, mut g1, mut g2) = (None, 0.0, 0.0);
                for x in self.eval.x.axis_chunks_iter(Axis(0), EVAL_CHUNK) {
                    let s = f.score(x);
                    let ism_i = crate::ism_terms(s.view(), f.jacobian_trace(x).view());
                    ism += ism_i.sum();
                    if let (true, TrainData::Density(p)) = (self.eval.has_target, &self.data) {
                        let t = match self.eval.sigma {
                            None => p.score(x),
                            Some(sig) => p.noised_score(x, sig).expect("checked at construction"),
                        };
                        let esm_i = crate::esm_terms(t.view(), s.view());
                        esm += esm_i.sum();
                        c += (row_sq_norms(t.view()) * 0.5).sum();
                        for (e, i) in esm_i.iter().zip(&ism_i) {
                            let k = *shift.get_or_insert(e - i);
                            let d = e - i - k;
                            g1 += d;
                            g2 += d * d;
                        }
                    }
                }
                let n = self.eval.x.nrows() as f64;
                if self.eval.has_target {
                    let var = (g2 - g1 * g1 / n) / (n - 1.0);
                    let se = (var.max(0.0) / n).sqrt();
                    (Some(esm / n), Some(ism / n), Some(esm / c), Some(se))
                } else {
                    (None, Some(ism / n), None, None)
                }
            }
            Err(_) => (None, None, None, None),
        };
        EvalRow {
            step: self.step,
            loss: self.last_loss,
            val_loss,
            esm,
            ism,
            relative_fisher,
            esm_ism_se,
        }
    }

    /// The state a resumed run needs besides the raw weights.
    pub fn state(&self) -> TrainingState {
        TrainingState {
            adam: self.adam.clone(),
            ema: self.ema.clone(),
            step: self.step,
            rng_word_pos: self.rng.get_word_pos(),
        }
    }

    /// Everything [`Trainer::resume`] needs, as one [`Checkpoint`] carrying `notes`.
    pub fn checkpoint(&self, notes: String) -> Checkpoint {
        Checkpoint {
            raw: self.net.clone(),
            state: self.state(),
            notes,
        }
    }

    /// Continues from a checkpoint: raw weights `raw` (same architecture) and `state`. Adam's
    /// learning rate stays the one this trainer was configured with.
    ///
    /// # Errors
    /// [`TrainError::Setup`] if `raw` has another architecture, or the EMA setting differs.
    pub fn resume(&mut self, raw: Network, state: TrainingState) -> Result<(), TrainError> {
        if raw.spec() != self.net.spec() {
            return Err(TrainError::Setup(
                "the checkpoint's model has another architecture than the config".into(),
            ));
        }
        if state.ema.is_some() != self.ema.is_some() {
            return Err(TrainError::Setup(
                "the checkpoint and the config disagree on ema (on/off); keep the run's ema".into(),
            ));
        }
        self.net = raw;
        let lr = self.cfg.lr;
        self.adam = state.adam;
        self.adam
            .set_lr(lr)
            .map_err(|e| TrainError::Setup(format!("train.{e}")))?;
        self.ema = state.ema;
        self.step = state.step;
        self.rng.set_word_pos(state.rng_word_pos);
        Ok(())
    }
}

/// `x + u`, uⱼ ∼ U(−qⱼ/2, qⱼ/2) drawn row by row for the columns with qⱼ > 0; `x` itself (no
/// draws) without widths.
fn with_uniform<R: Rng + ?Sized>(
    x: &Array2<f64>,
    q: &Option<Vec<f64>>,
    rng: &mut R,
) -> Array2<f64> {
    let mut x = x.clone();
    if let Some(q) = q {
        for row in x.rows_mut() {
            add_uniform(row, q, rng);
        }
    }
    x
}

/// Adds u ∼ U(−qⱼ/2, qⱼ/2) to each entry j of `row` with qⱼ > 0: one draw per such entry, in
/// order (uniform dequantisation of integer data with bin widths q).
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// let mut x = ndarray::array![3.0, 0.25];
/// scorelab_objectives::training::add_uniform(x.view_mut(), &[1.0, 0.0], &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// assert!((x[0] - 3.0).abs() <= 0.5 && x[1] == 0.25);
/// ```
pub fn add_uniform<R: Rng + ?Sized>(mut row: ndarray::ArrayViewMut1<f64>, q: &[f64], rng: &mut R) {
    for (v, &w) in row.iter_mut().zip(q) {
        if w > 0.0 {
            *v += w * (rng.gen::<f64>() - 0.5);
        }
    }
}

/// `x + σ₀ z`, z ∼ N(0, I) drawn row by row from `rng`; `x` itself (no draws) when σ₀ = 0.
fn with_noise<R: Rng + ?Sized>(x: &Array2<f64>, sigma0: f64, rng: &mut R) -> Array2<f64> {
    if sigma0 > 0.0 {
        x.mapv(|v| {
            let z: f64 = StandardNormal.sample(rng);
            v + sigma0 * z
        })
    } else {
        x.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorelab_models::{Activation, Mlp};

    /// Fresh dequantisation: every batch moves each entry of a quantised column (q = 1) by its own
    /// u ∼ U(−½, ½), so u = x − round(x) for the integer data here; the batch mean of u is 0
    /// within 4 standard errors (sd 1/√12; failure rate 6e-5), the draws differ from batch to
    /// batch, and a column with q = 0 is untouched.
    #[test]
    fn fresh_dequantisation_draws_new_uniform_noise_for_every_batch() {
        let train = Array2::from_shape_fn((50, 2), |(i, j)| (i % 7) as f64 + j as f64 * 0.5);
        let data = TrainData::Points {
            train: train.clone(),
            val: train.slice(ndarray::s![..5, ..]).to_owned(),
            noise: 0.0,
            dequantize: Some(vec![1.0, 0.0]),
        };
        let net = Network::Mlp(Mlp::new(2, &[4], Activation::Tanh, 1).unwrap());
        let cfg = TrainSettings {
            steps: 1,
            batch: 400,
            lr: 1e-3,
            lr_final: None,
            ema: 0.0,
            val_batch: 8,
            eval_batch: 8,
            eval_every: 100,
        };
        let objective = Objective::Ism {
            trace: scorelab_models::TraceMethod::Structured,
        };
        let mut t = Trainer::new(net, objective, data, cfg, 3).unwrap();
        let (a, _) = t.draw_batch();
        let (b, _) = t.draw_batch();
        for x in [&a, &b] {
            let u: Vec<f64> = x.column(0).iter().map(|v| v - v.round()).collect();
            assert!(u.iter().all(|u| u.abs() <= 0.5 && *u != 0.0));
            let m = u.iter().sum::<f64>() / u.len() as f64;
            assert!(
                m.abs() < 4.0 / 12f64.sqrt() / (u.len() as f64).sqrt(),
                "{m}"
            );
            assert!(x.column(1).iter().all(|v| v.fract() == 0.5));
        }
        assert_ne!(a.column(0), b.column(0));
    }

    /// With `lr_final`, step k runs at the half-cosine rate lr_at(k) (checked on Adam after each
    /// step against the closed form) and reaches `lr_final` at k = steps; an `lr_final` above
    /// `lr` or not positive is refused by name.
    #[test]
    fn the_cosine_schedule_sets_every_steps_rate() {
        let train = Array2::from_shape_fn((40, 2), |(i, j)| (i as f64 * 0.3 + j as f64).sin());
        let data = || TrainData::Points {
            train: train.clone(),
            val: train.slice(ndarray::s![..5, ..]).to_owned(),
            noise: 0.0,
            dequantize: None,
        };
        let net = || Network::Mlp(Mlp::new(2, &[4], Activation::Tanh, 1).unwrap());
        let objective = || Objective::Ism {
            trace: scorelab_models::TraceMethod::Structured,
        };
        let cfg = TrainSettings {
            steps: 8,
            batch: 16,
            lr: 1e-2,
            lr_final: Some(1e-4),
            ema: 0.0,
            val_batch: 8,
            eval_batch: 8,
            eval_every: 100,
        };
        let mut t = Trainer::new(net(), objective(), data(), cfg.clone(), 3).unwrap();
        for k in 0..8u64 {
            t.train_step().unwrap();
            let want =
                1e-4 + (1e-2 - 1e-4) * 0.5 * (1.0 + (std::f64::consts::PI * k as f64 / 8.0).cos());
            assert!(
                (t.adam.lr() - want).abs() < 1e-15,
                "step {k}: {} vs {want}",
                t.adam.lr()
            );
        }
        assert!((cfg.lr_at(8) - 1e-4).abs() < 1e-18 && cfg.lr_at(99) == cfg.lr_at(8));
        for (f, want) in [(Some(2e-2), "lr_final"), (Some(0.0), "lr_final")] {
            let bad = TrainSettings {
                lr_final: f,
                ..cfg.clone()
            };
            let e = bad.validate().unwrap_err().to_string();
            assert!(e.contains(want), "{e}");
        }
        assert_eq!(
            TrainSettings {
                lr_final: None,
                ..cfg
            }
            .lr_at(5),
            1e-2
        );
    }
}

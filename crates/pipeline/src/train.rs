//! Training: a [`TrainPlan`] (data, network, objective, optimiser settings; serde, so a TOML
//! file is one), [`train`] in memory or [`train_in`] a run folder with checkpoints and resume,
//! and the [`TrainedModel`] they return, saved and loaded as a model folder.
//!
//! # Randomness
//! From the plan's `seed`: the weights from `ChaCha8Rng::seed_from_u64(seed)` (stream 0), the
//! training draws from streams 1–3 ([`scorelab_objectives::training`]), the data split from stream
//! 4 and dequantisation noise from stream 5 ([`crate::data`]). The same plan gives the same
//! weights bit for bit, interrupted and resumed or not.
//!
//! # A model folder
//! | file | contents |
//! | --- | --- |
//! | `config.toml` | the resolved plan (every default filled in), with any provenance the caller attached as `[run]` ([`train_in`] only) |
//! | `loss.csv` | `step,loss,val_loss,esm,ism,relative_fisher,esm_ism_se` at step 0, every `eval_every` steps and the last step ([`LOSS_COLUMNS`]) |
//! | `model.safetensors` | the weights (EMA weights if `ema > 0`), in `scorelab_models::Network`'s format |
//! | `transform.toml` | data files only: z = (x − mean)/scale per column ([`Transform`]); its SHA-256 is recorded in `model.safetensors` and checked on load |
//! | `checkpoint.safetensors` | one file: raw weights, Adam's moments, the EMA, the RNG position, the step, the `loss.csv` so far, and a checksum ([`scorelab_models::Checkpoint`]; [`train_in`] only) |
//! | `.scorelab.lock` | the folder's lock ([`crate::files::FolderLock`]; [`train_in`] only) |
//!
//! # What a kill can leave
//! Every file is written whole (temporary file, fsync, rename, fsync of the folder). At each
//! evaluation [`train_in`] writes the checkpoint first, then `model.safetensors`, then
//! `loss.csv`; a process killed at any instant leaves each file complete, the checkpoint at the
//! last evaluation and the other two at it or one evaluation behind. The checkpoint is the
//! source of truth: a resume rewrites `loss.csv` and the model from it, so that after any
//! interruption and a resume every file equals an uninterrupted run's byte for byte (a stop
//! between evaluations adds a row to `loss.csv` for the step it stopped at; the resume drops it).
//!
//! ```
//! use scorelab_pipeline::train::{train, TrainPlan};
//! let plan = TrainPlan::from_toml(r#"
//!     seed = 1
//!     [data]
//!     density = { kind = "standard_normal", dim = 2 }
//!     [model]
//!     kind = "mlp"
//!     hidden = [16]
//!     [objective]
//!     kind = "ism"
//!     [train]
//!     steps = 100
//!     lr = 0.01
//! "#)?;
//! let model = train(&plan, &mut ())?;
//! let (first, last) = (&model.history[0], model.history.last().unwrap());
//! assert_eq!(last.step, 100);
//! assert!(last.relative_fisher.unwrap() < first.relative_fisher.unwrap());
//! // Invalid settings are refused where they are defined:
//! let bad = TrainPlan::from_toml("[data]\ndensity = { kind = \"standard_normal\", dim = 2 }\n[model]\nkind = \"mlp\"\n[objective]\nkind = \"dsm\"\nsigma = 0.0");
//! assert!(bad.unwrap_err().to_string().contains("objective.sigma: must be a finite number > 0"));
//! # Ok::<(), scorelab_pipeline::PipelineError>(())
//! ```

use crate::data::{Dataset, Transform, TransformKind};
use crate::error::{PipelineError, Result};
use crate::files::{cell, sha256_hex, FolderLock};
use crate::memory::{self, MemoryLimit};
use crate::observe::{Control, Observe};
use crate::spec::DensitySpec;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::Sample;
use scorelab_models::{
    Activation, Checkpoint, EnergyMlp, LoadError, Network, NetworkKind, NetworkSpec,
    NoiseConditionalMlp, Precondition,
};

pub use scorelab_objectives::taped::Objective;
use scorelab_objectives::training::{EvalRow, TrainData, TrainError, Trainer};
pub use scorelab_objectives::training::{TrainOverrides, TrainSettings};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A training run, as a config file spells it (docs/reference.md lists every key and its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainPlan {
    /// Master seed (default 0; module docs for its streams).
    #[serde(default)]
    pub seed: u64,
    /// The data.
    pub data: DataSpec,
    /// The network.
    pub model: ModelSpec,
    /// The objective, validated as it is read.
    pub objective: Objective,
    /// Optimisation, validated as it is read.
    #[serde(default)]
    pub train: TrainSettings,
    /// Provenance a caller attached (the runner's commit, CPU, threads); ignored when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<toml::Table>,
}

/// `[data]`: an analytic density (fresh samples every step) or a CSV file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// An analytic density.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<DensitySpec>,
    /// A CSV file with a header row (relative paths are relative to the working folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
    /// A 2-D toy data set of FFJORD's by name ([`scorelab_densities::Toy`]): fresh draws every
    /// step, the held-out points its fixed 10 000 of the seed ([`scorelab_densities::Toy::heldout`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toy: Option<scorelab_densities::Toy>,
    /// The CSV columns to use, in order (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// `standardize` (default for CSV data), `scale` (divide every column by `scale`) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    /// The divisor of `transform = "scale"` (e.g. 16 for 4-bit pixels; required by it, refused
    /// otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    /// σ₀ ≥ 0 in model units: N(0, σ₀² I) noise added afresh to every training batch (and once
    /// to the held-out rows), so that score matching fits the smooth p ∗ N(0, σ₀² I) of data with
    /// ties or a boundary (default 0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise: Option<f64>,
    /// The held-out fraction of the rows (default 0.2), chosen by a seeded permutation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// The seed of the held-out permutation (default: the run's seed). Fixing it keeps one
    /// held-out set across runs of different seeds: the seeds then change the weights, the
    /// batches and the noise, not which rows are held out (the digit metric's split, for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_seed: Option<u64>,
    /// Width q of uniform dequantisation noise U(−q/2, q/2), in the data's units, before the
    /// transform: one number for every column or one per column (0 for a continuous one);
    /// default 0, none. Added once to every value at load, or with `dequantize_fresh` afresh to
    /// every training batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequantize: Option<crate::data::Dequantize>,
    /// Draw the dequantisation noise afresh for every training batch (from the step stream, before
    /// any `noise`), and once for the held-out rows, instead of once at load (default false):
    /// training then sees the dequantised density itself rather than one draw of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequantize_fresh: Option<bool>,
}

/// The CSV data of a plan, prepared: training and held-out rows in model units.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedData {
    /// Training rows, model units.
    pub train: ndarray::Array2<f64>,
    /// Held-out rows, model units (before any `noise`).
    pub test: ndarray::Array2<f64>,
    /// The transform to model units.
    pub transform: Transform,
    /// σ₀ of the training noise.
    pub noise: f64,
    /// With `dequantize_fresh`: the bin widths in model units, drawn afresh per batch.
    pub dequantize: Option<Vec<f64>>,
}

impl DataSpec {
    /// CSV data: the file, its columns (all if `None`) and the held-out fraction; every other key
    /// at its default (standardised, no noise, no dequantisation).
    pub fn csv(path: impl Into<PathBuf>, columns: Option<Vec<String>>, test_fraction: f64) -> Self {
        DataSpec {
            csv: Some(path.into()),
            columns,
            test_fraction: Some(test_fraction),
            ..DataSpec::default()
        }
    }

    /// Fresh draws of a 2-D toy data set every step; the held-out points are its fixed 10 000
    /// of the seed ([`scorelab_densities::Toy::heldout`]).
    pub fn toy(toy: scorelab_densities::Toy) -> Self {
        DataSpec {
            toy: Some(toy),
            ..DataSpec::default()
        }
    }

    /// Fresh samples of an analytic density every step.
    pub fn density(spec: DensitySpec) -> Self {
        DataSpec {
            density: Some(spec),
            ..DataSpec::default()
        }
    }

    /// Reads, dequantises, splits and transforms CSV data exactly as training sees them (module
    /// docs of [`crate::data`] for the streams of `seed`), and fills the defaults into `self`.
    ///
    /// # Errors
    /// [`PipelineError`] naming the `data.` key, or the file, row and column.
    pub fn prepare_csv(&mut self, seed: u64) -> Result<PreparedData> {
        let path = self
            .csv
            .clone()
            .ok_or_else(|| PipelineError::invalid("data.csv", "the data are not a CSV file"))?;
        let data = Dataset::from_csv(&path, self.columns.as_deref())?;
        let test_fraction = self.test_fraction.unwrap_or(0.2);
        let dim = data.dim();
        let q = match &self.dequantize {
            Some(q) => q.widths(dim, "data.dequantize")?,
            None => vec![0.0; dim],
        };
        crate::data::check_on_grid(
            data.rows().view(),
            &q,
            data.columns(),
            "data.dequantize",
            |i| i + 1,
        )?;
        let fresh = self.dequantize_fresh.unwrap_or(false);
        if fresh && q.iter().all(|&w| w == 0.0) {
            return Err(PipelineError::invalid(
                "data.dequantize_fresh",
                "needs data.dequantize, the bin widths to draw the noise with",
            ));
        }
        let kind_name = self
            .transform
            .clone()
            .unwrap_or_else(|| "standardize".into());
        let kind = match (kind_name.as_str(), self.scale) {
            ("scale", Some(v)) => TransformKind::Scale(v),
            ("scale", None) => {
                return Err(PipelineError::invalid(
                    "data.scale",
                    "transform = \"scale\" needs the divisor, e.g. scale = 16",
                ))
            }
            ("standardize" | "none", Some(_)) => {
                return Err(PipelineError::invalid(
                    "data.scale",
                    "only applies to transform = \"scale\"; remove it",
                ))
            }
            ("standardize", None) => TransformKind::Standardize,
            ("none", None) => TransformKind::None,
            (other, _) => {
                return Err(PipelineError::invalid(
                    "data.transform",
                    format!("unknown transform {other:?}; use standardize | scale | none"),
                ))
            }
        };
        let noise = self.noise.unwrap_or(0.0);
        if !(noise >= 0.0 && noise.is_finite()) {
            return Err(PipelineError::invalid(
                "data.noise",
                format!("must be ≥ 0 and finite, got {noise}"),
            ));
        }
        let once = if fresh { vec![0.0; dim] } else { q.clone() };
        let split = data
            .dequantized(&once, seed)?
            .split(test_fraction, self.split_seed.unwrap_or(seed))?;
        let transform = split.fit_transform(kind)?;
        self.columns = Some(split.columns.clone());
        self.transform = Some(kind_name);
        self.test_fraction = Some(test_fraction);
        if self.dequantize.is_none() {
            self.dequantize = Some(crate::data::Dequantize::All(0.0));
        }
        if self.dequantize_fresh.is_some() {
            self.dequantize_fresh = Some(fresh);
        }
        if self.noise.is_some() {
            self.noise = Some(noise);
        }
        // Fresh noise is drawn in model units: width qⱼ/scaleⱼ.
        let dequantize = fresh.then(|| {
            q.iter()
                .zip(&transform.scale)
                .map(|(q, s)| q / s)
                .collect::<Vec<f64>>()
        });
        Ok(PreparedData {
            train: transform.forward(&split.train),
            test: transform.forward(&split.test),
            transform,
            noise,
            dequantize,
        })
    }

    /// Refuses the keys that only apply to CSV data, for a `source` that is not a file.
    fn only_for_csv(&self, source: &str) -> Result<()> {
        for (key, set) in [
            ("columns", self.columns.is_some()),
            ("transform", self.transform.is_some()),
            ("scale", self.scale.is_some()),
            ("noise", self.noise.is_some()),
            ("test_fraction", self.test_fraction.is_some()),
            ("split_seed", self.split_seed.is_some()),
            ("dequantize", self.dequantize.is_some()),
            ("dequantize_fresh", self.dequantize_fresh.is_some()),
        ] {
            if set {
                return Err(PipelineError::invalid(
                    format!("data.{key}"),
                    format!(
                        "only applies to csv data; remove it, or use csv = … instead of {source}"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The trainer's data and, for a CSV file, the transform; fills the defaults into `self`.
    fn build(&mut self, seed: u64) -> Result<(TrainData, Option<Transform>, usize)> {
        let sources = [
            self.density.is_some(),
            self.csv.is_some(),
            self.toy.is_some(),
        ];
        if sources.iter().filter(|&&b| b).count() > 1 {
            return Err(PipelineError::invalid(
                "data",
                "give one of density = {…}, csv = \"FILE\" or toy = \"NAME\", not several",
            ));
        }
        if let Some(toy) = self.toy {
            self.only_for_csv("toy = …")?;
            return Ok((TrainData::Toy(toy), None, 2));
        }
        match (&self.density, &self.csv) {
            (Some(_), None) => {
                self.only_for_csv("density")?;
                let spec = self.density.as_ref().expect("checked");
                let p = spec.build().map_err(|e| e.within("data.density"))?;
                let dim = scorelab_core::Dimension::dim(&p);
                Ok((TrainData::Density(Box::new(p)), None, dim))
            }
            (None, Some(_)) => {
                let d = self.prepare_csv(seed)?;
                let dim = d.transform.columns.len();
                let data = TrainData::Points {
                    train: d.train,
                    val: d.test,
                    noise: d.noise,
                    dequantize: d.dequantize,
                };
                Ok((data, Some(d.transform), dim))
            }
            (Some(_), Some(_)) => unreachable!("one source, checked above"),
            (None, None) => Err(PipelineError::invalid(
                "data",
                "missing; give density = { kind = … } or toy = \"NAME\" (fresh samples every step) or csv = \"FILE\"",
            )),
        }
    }
}

/// `[model]`: the network, by kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
    /// s_θ(x) = MLP(x).
    Mlp {
        /// Hidden widths (default [64, 64]).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// tanh | softplus | silu (default softplus).
        #[serde(default = "default_activation")]
        activation: Activation,
    },
    /// s_θ(x, σ) = MLP(x, log σ)/σ, or EDM's preconditioned form of it.
    NoiseConditionalMlp {
        /// Hidden widths (default [64, 64]).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// tanh | softplus | silu (default softplus).
        #[serde(default = "default_activation")]
        activation: Activation,
        /// `"edm"`: Karras et al.'s c_skip, c_out, c_in around the network (default none).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        precondition: Option<PreconditionKind>,
        /// σ_d of the preconditioning, in model units (default: the data's standard deviation,
        /// written into the resolved config).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_data: Option<f64>,
    },
    /// s_θ = −∇(MLP(x) + ‖x‖²/(2τ²)).
    EnergyMlp {
        /// Hidden widths (default [64, 64]).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// tanh | softplus | silu (default softplus).
        #[serde(default = "default_activation")]
        activation: Activation,
        /// τ in model units (default 3).
        #[serde(default = "default_tau")]
        tau: f64,
    },
    /// s_θ(x) = Ax + b (an MLP with no hidden layer).
    Linear {},
}

/// `model.precondition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreconditionKind {
    /// EDM's (Karras et al. 2022, Table 1).
    Edm,
}

/// The data's standard deviation in model units, √(mean over coordinates of the variance): of the
/// training points, or of 10 000 draws of an analytic density (stream 7 of the seed). σ_d of EDM's
/// preconditioning and weighting when the config does not give it.
pub fn data_std(data: &TrainData, seed: u64) -> f64 {
    let x = match data {
        TrainData::Density(p) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(scorelab_core::streams::Stream::DataStd.id());
            p.sample(10_000, &mut rng)
        }
        TrainData::Toy(t) => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(scorelab_core::streams::Stream::DataStd.id());
            t.sample(10_000, &mut rng)
        }
        TrainData::Points { train, .. } => train.clone(),
    };
    let n = x.nrows() as f64;
    let var: f64 = x
        .columns()
        .into_iter()
        .map(|c| {
            let m = c.sum() / n;
            c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)
        })
        .sum::<f64>()
        / x.ncols() as f64;
    var.sqrt()
}

/// The default hidden widths of every network a config names (training and audit alike).
pub(crate) fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
/// The default activation of every network a config names.
pub(crate) fn default_activation() -> Activation {
    Activation::Softplus
}
/// The default τ of every energy network a config names.
pub(crate) fn default_tau() -> f64 {
    3.0
}

impl ModelSpec {
    /// A noise-conditional MLP s_θ(x, σ̃) with these hidden widths and activation, without
    /// preconditioning ([`ModelSpec::edm`] adds EDM's).
    pub fn noise_conditional(hidden: Vec<usize>, activation: Activation) -> Self {
        ModelSpec::NoiseConditionalMlp {
            hidden,
            activation,
            precondition: None,
            sigma_data: None,
        }
    }

    /// The same network with EDM's preconditioning (Karras et al. 2022, Table 1; σ_d the data's
    /// standard deviation unless given); other networks are returned unchanged.
    #[must_use]
    pub fn edm(self) -> Self {
        match self {
            ModelSpec::NoiseConditionalMlp {
                hidden,
                activation,
                sigma_data,
                ..
            } => ModelSpec::NoiseConditionalMlp {
                hidden,
                activation,
                precondition: Some(PreconditionKind::Edm),
                sigma_data,
            },
            other => other,
        }
    }

    /// The architecture for data in D = `dim`.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming `model.activation`.
    pub fn network_spec(&self, dim: usize) -> Result<NetworkSpec> {
        let act = |a: &Activation| -> Result<Activation> { Ok(*a) };
        let hidden_of = match self {
            ModelSpec::Mlp { hidden, .. }
            | ModelSpec::NoiseConditionalMlp { hidden, .. }
            | ModelSpec::EnergyMlp { hidden, .. } => Some(hidden),
            ModelSpec::Linear {} => None,
        };
        if hidden_of.is_some_and(|h| h.is_empty()) {
            let hint = match self {
                ModelSpec::Mlp { .. } => {
                    "; for the linear score s(x) = Ax + b use kind = \"linear\""
                }
                _ => "",
            };
            return Err(PipelineError::invalid(
                "model.hidden",
                format!("give at least one hidden width, e.g. [64, 64]{hint}"),
            ));
        }
        Ok(match self {
            ModelSpec::Mlp { hidden, activation } => NetworkSpec {
                kind: NetworkKind::Mlp,
                dim,
                hidden: hidden.clone(),
                activation: act(activation)?,
                tau: None,
                precondition: None,
            },
            ModelSpec::NoiseConditionalMlp {
                hidden,
                activation,
                precondition,
                sigma_data,
            } => {
                if precondition.is_none() && sigma_data.is_some() {
                    return Err(PipelineError::invalid(
                        "model.sigma_data",
                        "only the preconditioned network uses it; set precondition = \"edm\" or remove sigma_data",
                    ));
                }
                NetworkSpec {
                    kind: NetworkKind::NoiseConditionalMlp,
                    dim,
                    hidden: hidden.clone(),
                    activation: act(activation)?,
                    tau: None,
                    precondition: precondition.map(|PreconditionKind::Edm| Precondition::Edm {
                        // Resolved from the data in TrainPlan::prepare before this is built.
                        sigma_data: sigma_data.unwrap_or(1.0),
                    }),
                }
            }
            ModelSpec::EnergyMlp {
                hidden,
                activation,
                tau,
            } => NetworkSpec {
                kind: NetworkKind::EnergyMlp,
                dim,
                hidden: hidden.clone(),
                activation: act(activation)?,
                tau: Some(*tau),
                precondition: None,
            },
            ModelSpec::Linear {} => NetworkSpec {
                kind: NetworkKind::Mlp,
                dim,
                hidden: vec![],
                activation: Activation::Tanh,
                tau: None,
                precondition: None,
            },
        })
    }
}

/// A plan made ready to run: data loaded, network at its initial weights.
pub struct Prepared {
    /// The resolved plan (defaults filled in, no `run`).
    pub resolved: TrainPlan,
    /// The network at its initial weights.
    pub network: Network,
    /// The data.
    pub data: TrainData,
    /// The transform of CSV data.
    pub transform: Option<Transform>,
}

impl Prepared {
    /// The model as it stands before any training: its architecture, transform and σ̃ range are
    /// those the trained model will have, so a sampler or likelihood plan can be validated
    /// against it (`prepare_with`) before minutes of training, not after.
    ///
    /// # Examples
    /// ```
    /// use scorelab_pipeline::train::TrainPlan;
    /// let plan = TrainPlan::from_toml(
    ///     "[data]\ntoy = \"8gaussians\"\n[model]\nkind = \"noise_conditional_mlp\"\nhidden = [8]\n\
    ///      [objective]\nkind = \"dsm_continuous\"\nsigma_min = 0.01\nsigma_max = 10.0\n").unwrap();
    /// let m = plan.prepare()?.untrained();
    /// assert_eq!(m.sigma_range, Some((0.01, 10.0)));
    /// assert!(m.history.is_empty());
    /// # Ok::<(), scorelab_pipeline::PipelineError>(())
    /// ```
    pub fn untrained(&self) -> TrainedModel {
        TrainedModel {
            network: self.network.clone(),
            transform: self.transform.clone(),
            history: vec![],
            sigma_range: self.resolved.objective.sigma_range(),
        }
    }
}

impl TrainPlan {
    /// A plan from its parts, `run` empty.
    pub fn new(
        seed: u64,
        data: DataSpec,
        model: ModelSpec,
        objective: Objective,
        train: TrainSettings,
    ) -> Self {
        TrainPlan {
            seed,
            data,
            model,
            objective,
            train,
            run: None,
        }
    }

    /// Parses a plan from TOML text; the objective and `[train]` are validated as they are read.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] with the parser's message (it names the key and line).
    pub fn from_toml(text: &str) -> Result<Self> {
        crate::files::parse_toml(text).map_err(|e| PipelineError::invalid("", e))
    }

    /// Reads a plan file.
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming the file and the key.
    pub fn from_file(path: &Path) -> Result<Self> {
        crate::files::read_toml(path)
    }

    /// The plan as TOML, under a header that says how to rerun it.
    pub fn to_toml(&self) -> String {
        format!(
            "# Written by scorelab train: the resolved config (every default filled in).\n\
             # `scorelab train --config <this file> --out DIR` reruns it; [run] is ignored when read.\n{}",
            toml::to_string(self).expect("a plan serialises")
        )
    }

    /// Validates everything that needs the data (dimensions, the network for the objective, the
    /// memory a step needs) and builds the run. Like every plan's `prepare` ([`SamplePlan::prepare`](
    /// crate::sample::SamplePlan::prepare), [`LikelihoodPlan::prepare`](crate::likelihood::LikelihoodPlan::prepare)),
    /// it checks the memory against the limit of the environment ([`MemoryLimit::from_env`]).
    ///
    /// # Errors
    /// [`PipelineError`] naming the key and what would be valid; a `SCORELAB_MEMORY_LIMIT` that
    /// is not a size.
    pub fn prepare(&self) -> Result<Prepared> {
        self.prepare_within(MemoryLimit::from_env()?)
    }

    /// [`TrainPlan::prepare`] under an explicit memory `limit`.
    ///
    /// # Errors
    /// As [`TrainPlan::prepare`].
    pub fn prepare_within(&self, limit: MemoryLimit) -> Result<Prepared> {
        let mut resolved = self.clone();
        resolved.run = None;
        let (data, transform, dim) = resolved.data.build(self.seed)?;
        // σ_d defaults to the data's standard deviation, written into the resolved config.
        let needs_sd = matches!(
            resolved.model,
            ModelSpec::NoiseConditionalMlp {
                precondition: Some(_),
                sigma_data: None,
                ..
            }
        ) || resolved.objective.needs_data_sigma();
        if needs_sd {
            let sd = data_std(&data, self.seed);
            if !(sd.is_finite() && sd > 0.0) {
                return Err(PipelineError::invalid(
                    "model.sigma_data",
                    format!("the data's standard deviation is {sd}; give sigma_data"),
                ));
            }
            if let ModelSpec::NoiseConditionalMlp {
                precondition: Some(_),
                sigma_data: s @ None,
                ..
            } = &mut resolved.model
            {
                *s = Some(sd);
            }
            resolved.objective = resolved
                .objective
                .with_data_sigma(sd)
                .map_err(|e| PipelineError::from(e).within("objective"))?;
        }
        let spec = resolved.model.network_spec(dim)?;
        let objective = &resolved.objective;
        memory::check(
            memory::train_bytes(&spec, objective, &self.train, &data),
            limit,
            || {
                format!(
                    "training (batch {}, D = {dim}, hidden {:?}, objective {})",
                    self.train.batch,
                    spec.hidden,
                    objective.id()
                )
            },
            "lower train.batch, model.hidden or the projections",
        )?;
        let network = spec
            .build(self.seed)
            .map_err(|e| PipelineError::from(e).within("model"))?;
        let objective = &resolved.objective;
        objective
            .check_network(&network)
            .map_err(|e| PipelineError::invalid("objective", e))?;
        if objective.needs_target() && !matches!(data, TrainData::Density(_)) {
            return Err(PipelineError::invalid(
                "objective",
                "esm needs the true score of an analytic [data] density; for a data file use ism, ssm_vr or dsm",
            ));
        }
        Ok(Prepared {
            resolved,
            network,
            data,
            transform,
        })
    }
}

/// The header of `loss.csv`.
pub const LOSS_COLUMNS: &str = "step,loss,val_loss,esm,ism,relative_fisher,esm_ism_se";

/// One `loss.csv` row (empty cells for missing or non-finite values).
fn loss_row(r: &EvalRow) -> String {
    let c = |v: Option<f64>| cell(v.filter(|x| x.is_finite()));
    format!(
        "{},{},{},{},{},{},{}",
        r.step,
        c(Some(r.loss)),
        c(Some(r.val_loss)),
        c(r.esm),
        c(r.ism),
        c(r.relative_fisher),
        c(r.esm_ism_se)
    )
}

/// `loss.csv` text of `history`.
pub fn loss_csv(history: &[EvalRow]) -> String {
    let mut csv = format!("{LOSS_COLUMNS}\n");
    for r in history {
        csv.push_str(&loss_row(r));
        csv.push('\n');
    }
    csv
}

/// Parses `loss.csv` text (the inverse of [`loss_csv`]: the values round-trip exactly). A file of
/// the six columns before `esm_ism_se` (a folder trained by an older scorelab) reads with that
/// column empty.
fn parse_loss_csv(text: &str, path: &Path) -> Result<Vec<EvalRow>> {
    let bad = |i: usize| {
        PipelineError::Input(format!("{}: row {i} is not {LOSS_COLUMNS}", path.display()))
    };
    let mut rows = vec![];
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 6 && f.len() != 7 {
            return Err(bad(i));
        }
        let opt = |s: &str| -> Result<Option<f64>> {
            if s.is_empty() {
                Ok(None)
            } else {
                s.parse().map(Some).map_err(|_| bad(i))
            }
        };
        rows.push(EvalRow {
            step: f[0].parse().map_err(|_| bad(i))?,
            loss: opt(f[1])?.unwrap_or(f64::NAN),
            val_loss: opt(f[2])?.unwrap_or(f64::NAN),
            esm: opt(f[3])?,
            ism: opt(f[4])?,
            relative_fisher: opt(f[5])?,
            esm_ism_se: f.get(6).map_or(Ok(None), |s| opt(s))?,
        });
    }
    Ok(rows)
}

/// A trained network with what it needs to answer in the data's units, and its training history.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainedModel {
    /// The network (EMA weights where the plan asked for an average).
    pub network: Network,
    /// The transform to model units, for CSV data.
    pub transform: Option<Transform>,
    /// The evaluations, in order (step 0, every `eval_every` steps, the last step).
    pub history: Vec<EvalRow>,
    /// The noise levels σ̃ it was trained on, (smallest, largest), recorded in the weights'
    /// metadata as `sigma_range`; `None` for a network trained without noise, or saved before
    /// the range was recorded (then no sampler is refused for its range).
    pub sigma_range: Option<(f64, f64)>,
}

/// `sigma_range` as the weights' metadata spells it: `min,max` in Rust's shortest round-trip form.
fn range_field(r: (f64, f64)) -> String {
    format!("{:?},{:?}", r.0, r.1)
}

fn parse_range_field(s: &str) -> Option<(f64, f64)> {
    let (a, b) = s.split_once(',')?;
    let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
    (a.is_finite() && b.is_finite() && 0.0 < a && a <= b).then_some((a, b))
}

impl TrainedModel {
    /// The energy network f_θ (p_θ ∝ e^{−f_θ}) of a model trained as `energy_mlp`.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming `model.kind` when it is another architecture.
    pub fn as_energy(self) -> Result<EnergyMlp> {
        match self.network {
            Network::Energy(f) => Ok(f),
            other => Err(PipelineError::invalid(
                "model.kind",
                format!(
                    "an energy network (energy_mlp) is needed, not {}",
                    other.spec().kind.name()
                ),
            )),
        }
    }

    /// The noise-conditional score network s_θ(x, σ̃) of a model trained as
    /// `noise_conditional_mlp`.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming `model.kind` when it is another architecture.
    pub fn as_noised(self) -> Result<NoiseConditionalMlp> {
        match self.network {
            Network::NoiseConditional(s) => Ok(s),
            other => Err(PipelineError::invalid(
                "model.kind",
                format!(
                    "a noise-conditional network (noise_conditional_mlp) is needed, not {}",
                    other.spec().kind.name()
                ),
            )),
        }
    }

    /// Steps finished: that of the last evaluation (0 if none).
    pub fn steps(&self) -> u64 {
        self.history.last().map_or(0, |r| r.step)
    }

    /// Writes `model.safetensors`, `loss.csv` and (CSV data) `transform.toml` into `dir`, each
    /// whole: the transform first, then the weights (recording the transform's checksum), then
    /// `loss.csv`.
    ///
    /// # Errors
    /// [`PipelineError::Io`] if a file cannot be written.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let sum = match &self.transform {
            Some(t) => Some(save_transform(dir, t)?),
            None => None,
        };
        save_progress(
            dir,
            &self.network,
            &self.history,
            sum.as_deref(),
            self.sigma_range,
        )
    }

    /// Reads a model folder: `model.safetensors` (required), `transform.toml` (required and
    /// checked against the checksum the weights record when the model was trained on a data
    /// file) and `loss.csv` (where present).
    ///
    /// # Errors
    /// [`PipelineError::Input`] naming the folder or file, [`PipelineError::Load`] for weights
    /// that cannot be used.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(PipelineError::Input(format!(
                "{}: no such folder, so no model.safetensors; give a folder written by scorelab train",
                dir.display()
            )));
        }
        let file = dir.join("model.safetensors");
        if !file.exists() {
            return Err(PipelineError::Input(format!(
                "{}: no model.safetensors there; give a folder written by scorelab train",
                dir.display()
            )));
        }
        let (network, meta) = Network::load_with(&file)?;
        let transform = load_transform(dir, meta.get("transform"), network.spec().dim)?;
        let sigma_range = match meta.get("sigma_range") {
            None => None,
            Some(f) => Some(parse_range_field(f).ok_or_else(|| {
                PipelineError::Input(format!(
                    "{}: the recorded sigma_range {f:?} is not min,max with 0 < min ≤ max; the file is damaged",
                    file.display()
                ))
            })?),
        };
        let lf = dir.join("loss.csv");
        let history = match std::fs::read_to_string(&lf) {
            Ok(text) => parse_loss_csv(&text, &lf)?,
            Err(_) => vec![],
        };
        Ok(TrainedModel {
            network,
            transform,
            history,
            sigma_range,
        })
    }
}

/// `transform.toml` of a model folder, checked: present when the weights record a checksum (or,
/// in folders of older versions, when `config.toml` says the data were a file), absent when they
/// record none, matching that checksum, one finite shift and one finite positive scale per
/// dimension.
fn load_transform(dir: &Path, recorded: Option<&String>, dim: usize) -> Result<Option<Transform>> {
    let tf = dir.join("transform.toml");
    let bad = |m: String| PipelineError::Input(format!("{}: {m}", tf.display()));
    let trained_on_file = recorded.is_some()
        || std::fs::read_to_string(dir.join("config.toml"))
            .ok()
            .and_then(|t| toml::from_str::<toml::Table>(&t).ok())
            .and_then(|t| t.get("data").and_then(|d| d.get("csv")).cloned())
            .is_some();
    let bytes = match std::fs::read(&tf) {
        // A transform the weights do not record was not part of their training: applying it
        // would silently change every score and likelihood.
        Ok(_) if recorded.is_none() => {
            return Err(bad(
                "is here, but model.safetensors records no transform: these weights were not trained with it (a file copied in, or a folder of a scorelab too old to record it); remove transform.toml to use the weights in the units they were trained in, or retrain".into(),
            ))
        }
        Ok(b) => b,
        Err(_) if !trained_on_file => return Ok(None),
        Err(_) => {
            return Err(bad(
                "missing, but the model was trained on a data file and works in its standardised units; restore transform.toml from the training run (or retrain)".into(),
            ))
        }
    };
    if let Some(sum) = recorded {
        if *sum != sha256_hex(&bytes) {
            return Err(bad(
                "does not match the checksum recorded in model.safetensors: it was edited or damaged after training; restore it from the training run (or retrain)".into(),
            ));
        }
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    let t: Transform =
        toml::from_str(&text).map_err(|e| bad(crate::files::toml_error(&text, &e)))?;
    t.validate(dim).map_err(bad)?;
    Ok(Some(t))
}

/// `model.safetensors` (recording the transform's checksum `transform`, if any), then
/// `loss.csv`, each whole.
fn save_progress(
    dir: &Path,
    network: &Network,
    history: &[EvalRow],
    transform: Option<&str>,
    sigma_range: Option<(f64, f64)>,
) -> Result<()> {
    let extra: Vec<(&str, String)> = transform
        .map(|t| ("transform", t.to_string()))
        .into_iter()
        .chain(sigma_range.map(|r| ("sigma_range", range_field(r))))
        .collect();
    network
        .save_with(&dir.join("model.safetensors"), &extra)
        .map_err(written)?;
    scorelab_core::fsio::fault("train:model-saved").map_err(|e| PipelineError::io(dir, e))?;
    crate::files::write_whole(&dir.join("loss.csv"), loss_csv(history).as_bytes())
}

/// A write error of the models crate as the I/O error it is (a full disk is not the user's input).
fn written(e: LoadError) -> PipelineError {
    match e {
        LoadError::Io { path, source } => PipelineError::Io {
            path,
            cause: source,
        },
        other => other.into(),
    }
}

/// Writes `transform.toml`; returns its SHA-256.
fn save_transform(dir: &Path, t: &Transform) -> Result<String> {
    let text = format!(
        "# x_model = (x − mean) / scale, per column; scorelab score applies it.\n# Its SHA-256 is recorded in model.safetensors: an edited copy is refused.\n{}",
        toml::to_string(t).expect("serialises")
    );
    crate::files::write_whole(&dir.join("transform.toml"), text.as_bytes())?;
    Ok(sha256_hex(text.as_bytes()))
}

/// What training reports to its observer.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum TrainEvent {
    /// A step finished with this training loss.
    Step {
        /// Steps finished.
        step: u64,
        /// Of this many.
        of: u64,
        /// The step's loss.
        loss: f64,
    },
    /// An evaluation (step 0, every `eval_every` steps, the last step, and where it stopped).
    Evaluated(EvalRow),
    /// A run folder was resumed at this step.
    Resumed {
        /// Steps already finished.
        step: u64,
    },
}

/// Trains `plan` in memory (no files), under the default [`MemoryLimit`]. The observer sees
/// every step and evaluation, and stops the run by returning [`Control::Stop`]: the model of
/// the steps finished is returned, with an evaluation at the step it stopped.
///
/// # Errors
/// [`PipelineError`] for an invalid plan, or [`PipelineError::Diverged`] for a non-finite loss.
pub fn train(
    plan: &TrainPlan,
    observer: &mut (dyn Observe<TrainEvent> + Send),
) -> Result<TrainedModel> {
    run_loop(plan.prepare()?, None, None, observer)
}

/// Where [`train_in`] saves, and whether it continues a run found there.
#[derive(Debug, Clone, Default)]
pub struct RunFolder {
    /// Continue the folder's run from its checkpoint (only `[train]` of the plan may differ).
    pub resume: bool,
    /// Provenance to write as `[run]` in `config.toml`.
    pub run: Option<toml::Table>,
}

/// The checkpoint's file name in a run folder.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// The files of a run folder that a fresh run replaces (the lock file is never among them).
pub const RUN_FILES: [&str; 5] = [
    "config.toml",
    "loss.csv",
    "model.safetensors",
    "transform.toml",
    CHECKPOINT,
];

/// The paths of [`RUN_FILES`] in `dir`: what a command that reads a model folder must not write.
pub fn run_files(dir: &Path) -> Vec<PathBuf> {
    RUN_FILES.iter().map(|f| dir.join(f)).collect()
}

/// Removes a previous run's files from the locked folder ([`RUN_FILES`], the checkpoint folder
/// of older versions and stale temporaries); nothing else in it is touched.
///
/// # Errors
/// [`PipelineError::Io`] if a file cannot be removed.
pub fn clear_run(lock: &FolderLock) -> Result<()> {
    let dir = lock.dir();
    for p in run_files(dir) {
        if std::fs::symlink_metadata(&p).is_ok() {
            std::fs::remove_file(&p).map_err(|e| PipelineError::io(&p, e))?;
        }
    }
    let old = dir.join("checkpoint");
    if old.is_dir() {
        std::fs::remove_dir_all(&old).map_err(|e| PipelineError::io(&old, e))?;
    }
    scorelab_core::fsio::remove_stale_temporaries(dir).map_err(|e| PipelineError::io(dir, e))?;
    Ok(())
}

/// Trains a prepared plan ([`TrainPlan::prepare`], so that a caller can validate before it
/// touches the folder) into the folder held by `lock` (module docs for its files), saving the
/// model and a checkpoint at every evaluation, so that a stopped or killed run loses at most the
/// steps since the last one and `resume` continues it bit for bit. What else is in the folder is
/// the caller's business (the runner refuses a folder that is not empty).
///
/// A resume is refused, naming the reason, when the folder has no checkpoint, the checkpoint
/// does not verify, the plan differs in anything but `[train]`, or `train.steps` is below the
/// checkpoint's step. A fresh run that fails before its first checkpoint (a full disk) removes
/// the files it wrote.
///
/// # Errors
/// [`PipelineError`] as above; I/O errors; [`PipelineError::Diverged`] after saving the steps
/// finished.
pub fn train_in(
    lock: &FolderLock,
    prepared: Prepared,
    folder: RunFolder,
    observer: &mut (dyn Observe<TrainEvent> + Send),
) -> Result<TrainedModel> {
    let dir = lock.dir();
    let ckpt_path = dir.join(CHECKPOINT);
    let resume_from = if folder.resume {
        Some(resumable(dir, &prepared)?)
    } else {
        None
    };
    scorelab_core::fsio::remove_stale_temporaries(dir).map_err(|e| PipelineError::io(dir, e))?;
    let mut written = prepared.resolved.clone();
    written.run = folder.run.clone();
    let fresh = resume_from.is_none();
    let result = (|| {
        // The config and the transform do not change during the run: written once.
        crate::files::write_whole(&dir.join("config.toml"), written.to_toml().as_bytes())?;
        let transform = match &prepared.transform {
            Some(t) => Some(save_transform(dir, t)?),
            None => None,
        };
        let target = Folder {
            dir: dir.to_path_buf(),
            transform,
            sigma_range: prepared.resolved.objective.sigma_range(),
        };
        run_loop(prepared, Some(target), resume_from, observer)
    })();
    if fresh && result.is_err() && !ckpt_path.exists() {
        // Nothing was saved that a resume could use: leave the folder as it was found.
        let _ = clear_run(lock);
    }
    result
}

/// The folder's checkpoint, if the plan may continue it (see [`train_in`]).
fn resumable(dir: &Path, prepared: &Prepared) -> Result<Checkpoint> {
    let path = dir.join(CHECKPOINT);
    if !path.exists() {
        let why = if dir.join("checkpoint").join("state.safetensors").exists() {
            "was written by an older scorelab (checkpoint/ folder), which this one does not resume; rerun with --force"
        } else {
            "has no checkpoint to resume; run without --resume"
        };
        return Err(PipelineError::invalid(
            "--resume",
            format!("{} {why}", dir.display()),
        ));
    }
    let mut saved = TrainPlan::from_file(&dir.join("config.toml"))?;
    let mut now = prepared.resolved.clone();
    saved.run = None;
    saved.train = TrainSettings::default();
    now.train = TrainSettings::default();
    if saved != now {
        return Err(PipelineError::invalid(
            "--resume",
            format!(
                "the config differs from the run in {} in seed, data, model or objective; only [train] may change",
                dir.display()
            ),
        ));
    }
    let ckpt = Checkpoint::load(&path)?;
    // What the trainer would refuse is refused here, before anything in the folder is written.
    if ckpt.raw.spec() != prepared.network.spec() {
        return Err(PipelineError::invalid(
            "--resume",
            format!(
                "the checkpoint in {} holds another architecture ({:?}) than the config ({:?}); train afresh with --force",
                dir.display(),
                ckpt.raw.spec(),
                prepared.network.spec()
            ),
        ));
    }
    if ckpt.state.ema.is_some() != (prepared.resolved.train.ema > 0.0) {
        return Err(PipelineError::invalid(
            "train.ema",
            format!(
                "the run in {} was trained {} an EMA; keep the run's ema setting to resume it",
                dir.display(),
                if ckpt.state.ema.is_some() {
                    "with"
                } else {
                    "without"
                }
            ),
        ));
    }
    let steps = prepared.resolved.train.steps;
    if ckpt.state.step > steps {
        return Err(PipelineError::invalid(
            "train.steps",
            format!(
                "is {steps}, but the checkpoint in {} is at step {}; a resume cannot go back: give steps ≥ {} (or train afresh with --force)",
                dir.display(),
                ckpt.state.step,
                ckpt.state.step
            ),
        ));
    }
    Ok(ckpt)
}

struct Folder {
    dir: PathBuf,
    /// The checksum of `transform.toml`, recorded in the weights.
    transform: Option<String>,
    /// The objective's σ̃ range, recorded in the weights.
    sigma_range: Option<(f64, f64)>,
}

impl Folder {
    /// The checkpoint (with the history in it), then the model and `loss.csv`.
    fn save(&self, trainer: &Trainer, history: &[EvalRow]) -> Result<()> {
        let fault =
            |p: &str| scorelab_core::fsio::fault(p).map_err(|e| PipelineError::io(&self.dir, e));
        fault("train:before-checkpoint")?;
        trainer
            .checkpoint(loss_csv(history))
            .save(&self.dir.join(CHECKPOINT))
            .map_err(written)?;
        fault("train:checkpoint-saved")?;
        self.save_progress(&trainer.model(), history)
    }

    fn save_progress(&self, model: &Network, history: &[EvalRow]) -> Result<()> {
        save_progress(
            &self.dir,
            model,
            history,
            self.transform.as_deref(),
            self.sigma_range,
        )
    }
}

fn setup(e: TrainError) -> PipelineError {
    match e {
        TrainError::Setup(m) => PipelineError::invalid("", m),
        other => PipelineError::Diverged(other.to_string()),
    }
}

/// Training as [`crate::observe::execute`] drives it: Adam steps, each shown to the observer,
/// an evaluation (and a save into the folder) every `eval_every` steps and after the last.
struct Steps<'a> {
    trainer: &'a mut Trainer,
    steps: u64,
    eval_every: u64,
    history: &'a mut Vec<EvalRow>,
    folder: Option<&'a Folder>,
}

impl crate::observe::Iterate for Steps<'_> {
    type Event = TrainEvent;
    fn done(&self) -> bool {
        self.trainer.step() >= self.steps
    }
    fn step(&mut self) -> Result<TrainEvent> {
        match self.trainer.train_step() {
            Ok(loss) => Ok(TrainEvent::Step {
                step: self.trainer.step(),
                of: self.steps,
                loss,
            }),
            Err(e @ TrainError::NonFinite { .. }) => Err(PipelineError::Diverged(e.to_string())),
            Err(e) => Err(setup(e)),
        }
    }
    fn after_step(&mut self, observer: &mut dyn Observe<TrainEvent>) -> Result<Control> {
        let s = self.trainer.step();
        if !s.is_multiple_of(self.eval_every) && s != self.steps {
            return Ok(Control::Continue);
        }
        let row = self.trainer.evaluate();
        let control = observer.observe(&TrainEvent::Evaluated(row));
        self.history.push(row);
        if let Some(f) = self.folder {
            f.save(self.trainer, self.history)?;
        }
        Ok(control)
    }
}

fn run_loop(
    prepared: Prepared,
    folder: Option<Folder>,
    resume_from: Option<Checkpoint>,
    observer: &mut (dyn Observe<TrainEvent> + Send),
) -> Result<TrainedModel> {
    let Prepared {
        resolved,
        network,
        data,
        transform,
    } = prepared;
    let config = resolved.train.clone();
    let eval_every = resolved.train.eval_every;
    let steps = config.steps;
    let objective = resolved.objective.clone();
    let sigma_range = objective.sigma_range();
    let mut trainer =
        Trainer::new(network, objective, data, config, resolved.seed).map_err(setup)?;
    let mut history: Vec<EvalRow> = Vec::new();
    if let Some(ckpt) = resume_from {
        let at = ckpt.state.step;
        history = parse_loss_csv(&ckpt.notes, Path::new(CHECKPOINT))?
            .into_iter()
            .filter(|r| r.step <= at && (r.step % eval_every == 0 || r.step == steps))
            .collect();
        trainer
            .resume(ckpt.raw, ckpt.state)
            .map_err(|e| PipelineError::invalid("--resume", e.to_string()))?;
        // The folder's other files are brought level with the checkpoint at once.
        if let Some(f) = &folder {
            f.save_progress(&trainer.model(), &history)?;
        }
        let _ = observer.observe(&TrainEvent::Resumed { step: at });
    } else {
        let row = trainer.evaluate();
        let _ = observer.observe(&TrainEvent::Evaluated(row));
        history.push(row);
        if let Some(f) = &folder {
            f.save(&trainer, &history)?;
        }
    }
    // A run stopped between evaluations: evaluate where it stands, then save.
    let stopped = |trainer: &Trainer,
                   history: &mut Vec<EvalRow>,
                   observer: &mut (dyn Observe<TrainEvent> + Send)|
     -> Result<()> {
        if history.last().map(|r| r.step) != Some(trainer.step()) {
            let row = trainer.evaluate();
            let _ = observer.observe(&TrainEvent::Evaluated(row));
            history.push(row);
        }
        match &folder {
            Some(f) => f.save(trainer, history),
            None => Ok(()),
        }
    };
    // Small steps run on one thread, the whole loop inside that pool (`step_pool`).
    let pool = trainer.step_pool();
    let mut body = || -> Result<()> {
        let mut steps = Steps {
            trainer: &mut trainer,
            steps,
            eval_every,
            history: &mut history,
            folder: folder.as_ref(),
        };
        match crate::observe::execute(&mut steps, &mut *observer) {
            Ok(crate::observe::Ran::Finished) => Ok(()),
            Ok(crate::observe::Ran::Stopped) => stopped(&trainer, &mut history, observer),
            Err(PipelineError::Diverged(e)) => {
                stopped(&trainer, &mut history, observer)?;
                let saved = match &folder {
                    Some(f) => format!(
                        " Steps 1–{} are saved in {} (--resume continues from there).",
                        trainer.step(),
                        f.dir.display()
                    ),
                    None => String::new(),
                };
                Err(PipelineError::Diverged(format!("{e}.{saved}")))
            }
            Err(e) => Err(e),
        }
    };
    match pool {
        Some(p) => p.install(&mut body)?,
        None => body()?,
    }
    Ok(TrainedModel {
        network: trainer.model(),
        transform,
        history,
        sigma_range,
    })
}

/// The seconds one training step of each plan takes on this machine, measured robustly: the plans'
/// trainers are built and warmed up (`burst` steps each), then `bursts` rounds of `burst` steps
/// are timed, the plans interleaved round by round so that a change in the machine's load falls
/// on all of them alike; each plan's figure is the median over its rounds of the seconds per step.
/// The steps run as [`train`] runs them (its thread pool), on copies that are thrown away.
///
/// This is what an equal-time comparison is built from ([`equal_time_steps`]): a budget set by
/// construction from measured per-step costs, not a wall clock read after the fact.
///
/// # Examples
/// ```
/// use scorelab_pipeline::train::{seconds_per_step, TrainPlan};
/// let plan = |k: &str| TrainPlan::from_toml(&format!(
///     "[data]\ndensity = {{ kind = \"gaussian\", mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0, 1.0]] }}\n\
///      [model]\nkind = \"mlp\"\nhidden = [8]\n[objective]\nkind = \"{k}\"\n[train]\nsteps = 10\nbatch = 16\n"))
///     .unwrap();
/// let s = seconds_per_step(&[plan("ism"), plan("ssm")], 5, 3)?;
/// assert!(s.iter().all(|&t| t > 0.0 && t < 1.0));
/// # Ok::<(), scorelab_pipeline::PipelineError>(())
/// ```
///
/// # Errors
/// [`PipelineError`] for a plan that cannot be prepared or a step that fails.
pub fn seconds_per_step(plans: &[TrainPlan], burst: u64, bursts: usize) -> Result<Vec<f64>> {
    if burst == 0 || bursts == 0 {
        return Err(PipelineError::invalid(
            "equal_time",
            "needs at least one timed step",
        ));
    }
    let mut trainers = vec![];
    for plan in plans {
        let Prepared {
            resolved,
            network,
            data,
            ..
        } = plan.prepare()?;
        let mut config = resolved.train.clone();
        // Enough steps for the warm-up and every round, whatever the plan's own budget.
        config.steps = burst * (bursts as u64 + 1);
        let objective = resolved.objective.clone();
        trainers
            .push(Trainer::new(network, objective, data, config, resolved.seed).map_err(setup)?);
    }
    let mut rounds: Vec<Vec<f64>> = vec![vec![]; plans.len()];
    for round in 0..=bursts {
        for (t, times) in trainers.iter_mut().zip(rounds.iter_mut()) {
            let pool = t.step_pool();
            let mut run = || -> Result<f64> {
                let started = std::time::Instant::now();
                for _ in 0..burst {
                    t.train_step().map_err(setup)?;
                }
                Ok(started.elapsed().as_secs_f64() / burst as f64)
            };
            let secs = match pool {
                Some(p) => p.install(run)?,
                None => run()?,
            };
            // Round 0 is the warm-up.
            if round > 0 {
                times.push(secs);
            }
        }
    }
    Ok(rounds.iter().map(|v| crate::metrics::median(v)).collect())
}

/// The steps that take a reference run's time: `reference_steps · reference_cost / cost`, rounded
/// to the nearest multiple of a twentieth of `reference_steps` (at least 1), so that the budget
/// moves only when the measured cost ratio moves by about 5%; at least one such multiple.
///
/// # Examples
/// ```
/// use scorelab_pipeline::train::equal_time_steps;
/// // A step that costs half the reference's: twice its steps.
/// assert_eq!(equal_time_steps(2000, 2e-3, 1e-3), 4000);
/// // The quantum is 100 steps: 4040 rounds to 4000, 4120 to 4100.
/// assert_eq!(equal_time_steps(2000, 2.02e-3, 1e-3), 4000);
/// assert_eq!(equal_time_steps(2000, 2.06e-3, 1e-3), 4100);
/// ```
pub fn equal_time_steps(reference_steps: u64, reference_cost: f64, cost: f64) -> u64 {
    let quantum = (reference_steps / 20).max(1);
    let exact = reference_steps as f64 * reference_cost / cost;
    let k = (exact / quantum as f64).round().max(1.0);
    (k as u64).saturating_mul(quantum)
}

/// The budgets of the runs that name `equal_time = "REF"`: each trains for the steps that take
/// REF's training time on this machine ([`equal_time_steps`] from the per-step costs
/// [`seconds_per_step`] measures, interleaved, before any training). `runs` are (name, its `equal_time`, its plan); returns each equal-time run's
/// steps and the `NAME_budget.csv` that records the measurement (a timing file: the costs, and so
/// possibly the steps, are this machine's).
///
/// # Examples
/// ```
/// use scorelab_pipeline::train::{equal_time_budgets, TrainPlan};
/// let plan = |k: &str| TrainPlan::from_toml(&format!(
///     "[data]\ndensity = {{ kind = \"gaussian\", mean = [0.0, 0.0], cov = [[1.0, 0.0], [0.0, 1.0]] }}\n\
///      [model]\nkind = \"mlp\"\nhidden = [8]\n[objective]\nkind = \"{k}\"\n[train]\nsteps = 400\nbatch = 16\n"))
///     .unwrap();
/// let runs = vec![
///     ("ism".to_string(), None, plan("ism")),
///     ("ssm".to_string(), Some("ism".to_string()), plan("ssm")),
/// ];
/// let (steps, csv) = equal_time_budgets(&runs, "objective")?;
/// // A multiple of a twentieth of ISM's 400 steps, recorded with the costs it came from.
/// assert!(steps["ssm"] % 20 == 0 && steps["ssm"] >= 20);
/// assert!(csv.lines().nth(1).unwrap().starts_with("ssm,ism,400,"));
/// // A reference that is not a run is refused by name.
/// let bad = vec![("ssm".to_string(), Some("isn".to_string()), plan("ssm"))];
/// assert!(equal_time_budgets(&bad, "objective").unwrap_err().to_string().contains("objective ssm.equal_time"));
/// # Ok::<(), scorelab_pipeline::PipelineError>(())
/// ```
///
/// # Errors
/// [`PipelineError::Invalid`] naming `FIELD NAME.equal_time` for a reference that is not a run,
/// is itself equal-time, or is the run itself; the errors of [`seconds_per_step`].
pub fn equal_time_budgets(
    runs: &[(String, Option<String>, TrainPlan)],
    field: &str,
) -> Result<(std::collections::BTreeMap<String, u64>, String)> {
    let mut steps = std::collections::BTreeMap::new();
    let mut csv = String::from(
        "method,reference,reference_steps,reference_seconds_per_step,seconds_per_step,cost_ratio,steps\n",
    );
    for (name, reference, plan) in runs {
        let Some(r) = reference else { continue };
        let Some((_, ref_eq, ref_plan)) = runs.iter().find(|(n, _, _)| n == r) else {
            let names: Vec<&str> = runs.iter().map(|(n, _, _)| n.as_str()).collect();
            return Err(PipelineError::invalid(
                format!("{field} {name}.equal_time"),
                format!("{r:?} is not one of the runs ({})", names.join(", ")),
            ));
        };
        if r == name || ref_eq.is_some() {
            return Err(PipelineError::invalid(
                format!("{field} {name}.equal_time"),
                format!("{r:?} must name a run with a fixed number of steps"),
            ));
        }
        let costs = seconds_per_step(
            &[ref_plan.clone(), plan.clone()],
            EQUAL_TIME_BURST,
            EQUAL_TIME_ROUNDS,
        )?;
        let ref_steps = ref_plan.train.steps;
        let n = equal_time_steps(ref_steps, costs[0], costs[1]);
        csv.push_str(&format!(
            "{name},{r},{ref_steps},{:e},{:e},{:.4},{n}\n",
            costs[0],
            costs[1],
            costs[0] / costs[1]
        ));
        steps.insert(name.clone(), n);
    }
    Ok((steps, csv))
}

/// Steps per timed round of an equal-time measurement, and the rounds (after one warm-up).
const EQUAL_TIME_BURST: u64 = 25;
const EQUAL_TIME_ROUNDS: usize = 7;

//! `scorelab train`: its TOML config (serde structs, validated once), data loading and the
//! standardising transform, provenance, and the resumable training loop with its files.
//!
//! # Files in the output folder
//! | file | contents |
//! | --- | --- |
//! | `config.toml` | the resolved config (every default filled in) and a `[run]` table: commit, rustc, CPU, threads |
//! | `loss.csv` | `step,loss,val_loss,esm,ism,fisher` every `eval_every` steps (and at step 0 and the last step) |
//! | `model.safetensors` | the weights (EMA weights if `ema > 0`), in `scorelab_models::Network`'s format |
//! | `transform.toml` | data files only: x_model = (x − mean)/scale per column, so `scorelab score` answers in data units |
//! | `checkpoint/` | raw weights and optimiser state for `--resume` |
//!
//! Every file is written whole (temporary file, then rename) at each evaluation, so an interrupted
//! run leaves the last evaluation's files, consistent with each other.

use crate::config::DensitySpec;
use crate::output::Staged;
use crate::table::Table;
use crate::{bad, InputError};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2, Axis};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scorelab_models::{Activation, Network, NetworkKind, NetworkSpec, TraceMethod, TrainingState};
use scorelab_objectives::taped::{Objective, Probe};
use scorelab_objectives::training::{EvalRow, TrainConfig, TrainData, TrainError, Trainer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The `scorelab train` config (see the README for every key and its default).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainFile {
    /// Master seed (default 0): weights from stream 0, training draws from streams 1–3, the data
    /// split from stream 4 and dequantisation noise from stream 5 of `ChaCha8Rng::seed_from_u64(seed)`.
    #[serde(default)]
    pub seed: u64,
    /// The data.
    pub data: DataSpec,
    /// The network.
    pub model: ModelSpec,
    /// The objective.
    pub objective: ObjectiveSpec,
    /// Optimisation.
    #[serde(default)]
    pub train: TrainSpec,
    /// Provenance written by `scorelab train`; ignored when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<toml::Table>,
}

/// `[data]`: an analytic density (fresh samples every step) or a CSV file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// An analytic density, as in `scorelab equivalence`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub density: Option<DensitySpec>,
    /// A CSV file with a header row (relative paths are relative to the working folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
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
    /// Width q of uniform dequantisation noise U(−q/2, q/2) added once to every value, in the
    /// data's units, before the transform (default 0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dequantize: Option<f64>,
}

/// `[model]`.
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
        activation: String,
    },
    /// s_θ(x, σ) = MLP(x, log σ)/σ.
    NoiseConditionalMlp {
        /// Hidden widths (default [64, 64]).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// tanh | softplus | silu (default softplus).
        #[serde(default = "default_activation")]
        activation: String,
    },
    /// s_θ = −∇(MLP(x) + ‖x‖²/(2τ²)).
    EnergyMlp {
        /// Hidden widths (default [64, 64]).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// tanh | softplus | silu (default softplus).
        #[serde(default = "default_activation")]
        activation: String,
        /// τ in model units (default 3).
        #[serde(default = "default_tau")]
        tau: f64,
    },
    /// s_θ(x) = Ax + b (an MLP with no hidden layer).
    Linear {},
}

/// `[objective]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectiveSpec {
    /// Explicit score matching (analytic densities only).
    Esm {},
    /// Implicit score matching, exact trace.
    Ism {
        /// naive | structured (default structured).
        #[serde(default = "default_trace")]
        trace: String,
    },
    /// Sliced score matching.
    Ssm {
        /// Probes per point (default 1).
        #[serde(default = "one")]
        projections: usize,
        /// gaussian | rademacher (default rademacher).
        #[serde(default = "default_probe")]
        probe: String,
    },
    /// Sliced score matching, variance-reduced.
    SsmVr {
        /// Probes per point (default 1).
        #[serde(default = "one")]
        projections: usize,
        /// gaussian | rademacher (default rademacher).
        #[serde(default = "default_probe")]
        probe: String,
    },
    /// Denoising score matching.
    Dsm {
        /// σ in model units (default 0.1).
        #[serde(default = "default_sigma")]
        sigma: f64,
    },
    /// Multi-level denoising score matching, λ(σ) = σ².
    DsmMulti {
        /// Largest σ (default 10).
        #[serde(default = "default_sigma_max")]
        sigma_max: f64,
        /// Smallest σ (default 0.01).
        #[serde(default = "default_sigma_min")]
        sigma_min: f64,
        /// Number of levels (default 10).
        #[serde(default = "default_levels")]
        levels: usize,
    },
}

/// `[train]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Adam steps (default 3000).
    #[serde(default = "default_steps")]
    pub steps: u64,
    /// Points per step (default 128).
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Adam's learning rate (default 1e-3).
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Steps between evaluations (default 100).
    #[serde(default = "default_eval_every")]
    pub eval_every: u64,
    /// EMA decay of the weights in [0, 1) (default 0: off).
    #[serde(default)]
    pub ema: f64,
    /// Points of the held-out batch for analytic data (default 1024).
    #[serde(default = "default_val_batch")]
    pub val_batch: usize,
    /// Points of the evaluation batch for analytic data (default 4096).
    #[serde(default = "default_eval_batch")]
    pub eval_batch: usize,
}

impl Default for TrainSpec {
    fn default() -> Self {
        TrainSpec {
            steps: default_steps(),
            batch: default_batch(),
            lr: default_lr(),
            eval_every: default_eval_every(),
            ema: 0.0,
            val_batch: default_val_batch(),
            eval_batch: default_eval_batch(),
        }
    }
}

fn default_hidden() -> Vec<usize> {
    vec![64, 64]
}
fn default_activation() -> String {
    "softplus".into()
}
fn default_tau() -> f64 {
    3.0
}
fn default_trace() -> String {
    "structured".into()
}
fn one() -> usize {
    1
}
fn default_probe() -> String {
    "rademacher".into()
}
fn default_sigma() -> f64 {
    0.1
}
fn default_sigma_max() -> f64 {
    10.0
}
fn default_sigma_min() -> f64 {
    0.01
}
fn default_levels() -> usize {
    10
}
fn default_steps() -> u64 {
    3000
}
fn default_batch() -> usize {
    128
}
fn default_lr() -> f64 {
    1e-3
}
fn default_eval_every() -> u64 {
    100
}
fn default_val_batch() -> usize {
    1024
}
fn default_eval_batch() -> usize {
    4096
}

/// The standardising transform x_model = (x − mean)/scale, per column.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// The columns, in order.
    pub columns: Vec<String>,
    /// Per-column shift.
    pub mean: Vec<f64>,
    /// Per-column scale (> 0).
    pub scale: Vec<f64>,
}

impl Transform {
    /// x ↦ (x − mean)/scale, row by row.
    pub fn forward(&self, x: &Array2<f64>) -> Array2<f64> {
        let m = Array1::from(self.mean.clone());
        let s = Array1::from(self.scale.clone());
        (x - &m) / &s
    }

    /// A score in model units to data units: s_x(x) = s_model(z)/scale (chain rule).
    pub fn score_back(&self, s: &Array2<f64>) -> Array2<f64> {
        s / &Array1::from(self.scale.clone())
    }

    /// log |det ∂z/∂x| = −Σ log scaleⱼ: add to a log-density in model units to get one in data units.
    pub fn log_jacobian(&self) -> f64 {
        -self.scale.iter().map(|s| s.ln()).sum::<f64>()
    }
}

/// A validated training run: what [`TrainFile::build`] returns.
pub struct Plan {
    /// The resolved config (defaults filled in, no `[run]`).
    pub resolved: TrainFile,
    /// The network at its initial weights.
    pub net: Network,
    /// The objective.
    pub objective: Objective,
    /// The data.
    pub data: TrainData,
    /// The hyper-parameters.
    pub config: TrainConfig,
    /// The transform of data files.
    pub transform: Option<Transform>,
}

impl TrainFile {
    /// Parses a config file; errors name the file and the key.
    ///
    /// # Errors
    /// An [`InputError`] if the file cannot be read or is not a valid config.
    pub fn from_file(path: &Path) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| bad(format!("cannot read config {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| bad(format!("config {}: {e}", path.display())))
    }

    /// The resolved config as TOML (with the `[run]` table if set).
    pub fn to_toml(&self) -> String {
        format!(
            "# Written by scorelab train: the resolved config (every default filled in).\n\
             # `scorelab train --config <this file> --out DIR` reruns it; [run] is ignored when read.\n{}",
            toml::to_string(self).expect("a config serialises")
        )
    }

    /// Validates everything once and builds the run.
    ///
    /// # Errors
    /// An [`InputError`] naming the key and what would be valid.
    pub fn build(&self) -> Result<Plan, InputError> {
        let t = &self.train;
        if t.steps == 0 {
            return Err(bad("train.steps: must be at least 1"));
        }
        if t.batch == 0 {
            return Err(bad("train.batch: must be at least 1"));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(bad(format!(
                "train.lr: must be positive and finite, got {}",
                t.lr
            )));
        }
        if t.eval_every == 0 {
            return Err(bad("train.eval_every: must be at least 1"));
        }
        if !(0.0..1.0).contains(&t.ema) {
            return Err(bad(format!(
                "train.ema: must be in [0, 1) (0 turns it off), got {}",
                t.ema
            )));
        }
        if t.val_batch < 2 || t.eval_batch < 2 {
            return Err(bad(
                "train.val_batch and train.eval_batch: must be at least 2",
            ));
        }
        let mut resolved = self.clone();
        resolved.run = None;
        let (data, transform, dim) = self.build_data(&mut resolved.data)?;
        let net = self.build_model(dim)?;
        let objective = self.build_objective()?;
        objective
            .check_network(&net)
            .map_err(|e| bad(format!("objective: {e}")))?;
        if objective.needs_target() && !matches!(data, TrainData::Density(_)) {
            return Err(bad(
                "objective: esm needs the true score of an analytic [data] density; for a data file use ism, ssm_vr or dsm",
            ));
        }
        let config = TrainConfig {
            steps: t.steps,
            batch: t.batch,
            lr: t.lr,
            ema: t.ema,
            val_batch: t.val_batch,
            eval_batch: t.eval_batch,
        };
        Ok(Plan {
            resolved,
            net,
            objective,
            data,
            config,
            transform,
        })
    }

    fn build_data(
        &self,
        resolved: &mut DataSpec,
    ) -> Result<(TrainData, Option<Transform>, usize), InputError> {
        let d = &self.data;
        match (&d.density, &d.csv) {
            (Some(spec), None) => {
                for (key, set) in [
                    ("columns", d.columns.is_some()),
                    ("transform", d.transform.is_some()),
                    ("scale", d.scale.is_some()),
                    ("noise", d.noise.is_some()),
                    ("test_fraction", d.test_fraction.is_some()),
                    ("dequantize", d.dequantize.is_some()),
                ] {
                    if set {
                        return Err(bad(format!(
                            "data.{key}: only applies to csv data; remove it, or use csv = … instead of density"
                        )));
                    }
                }
                let p = spec.build().map_err(|e| bad(format!("data.density.{e}")))?;
                let dim = scorelab_core::Dimension::dim(&p);
                Ok((TrainData::Density(Box::new(p)), None, dim))
            }
            (None, Some(path)) => {
                let (names, rows) = read_csv(path, d.columns.as_deref())?;
                let test_fraction = d.test_fraction.unwrap_or(0.2);
                if !(test_fraction > 0.0 && test_fraction < 1.0) {
                    return Err(bad(format!("data.test_fraction: must be in (0, 1), got {test_fraction}")));
                }
                let q = d.dequantize.unwrap_or(0.0);
                if !(q >= 0.0 && q.is_finite()) {
                    return Err(bad(format!("data.dequantize: must be ≥ 0, got {q}")));
                }
                let transform_kind = d.transform.clone().unwrap_or_else(|| "standardize".into());
                if !["standardize", "scale", "none"].contains(&transform_kind.as_str()) {
                    return Err(bad(format!(
                        "data.transform: unknown transform {transform_kind:?}; use standardize | scale | none"
                    )));
                }
                let divisor = match (transform_kind.as_str(), d.scale) {
                    ("scale", Some(v)) if v > 0.0 && v.is_finite() => v,
                    ("scale", Some(v)) => {
                        return Err(bad(format!("data.scale: must be positive and finite, got {v}")))
                    }
                    ("scale", None) => {
                        return Err(bad("data.scale: transform = \"scale\" needs the divisor, e.g. scale = 16"))
                    }
                    (_, Some(_)) => {
                        return Err(bad("data.scale: only applies to transform = \"scale\"; remove it"))
                    }
                    (_, None) => 1.0,
                };
                let noise = d.noise.unwrap_or(0.0);
                if !(noise >= 0.0 && noise.is_finite()) {
                    return Err(bad(format!("data.noise: must be ≥ 0 and finite, got {noise}")));
                }
                let n = rows.nrows();
                let n_test = ((n as f64) * test_fraction).round() as usize;
                if n_test < 2 || n - n_test < 2 {
                    return Err(bad(format!(
                        "data.test_fraction: {test_fraction} of {n} rows leaves {n_test} held-out and {} training rows; each needs at least 2",
                        n - n_test
                    )));
                }
                let stream = |k: u64| {
                    let mut r = ChaCha8Rng::seed_from_u64(self.seed);
                    r.set_stream(k);
                    r
                };
                let mut rows = rows;
                if q > 0.0 {
                    let mut r5 = stream(5);
                    rows.mapv_inplace(|v| v + q * (r5.gen::<f64>() - 0.5));
                }
                let mut order: Vec<usize> = (0..n).collect();
                order.shuffle(&mut stream(4));
                let test = rows.select(Axis(0), &order[..n_test]);
                let train = rows.select(Axis(0), &order[n_test..]);
                let transform = if transform_kind == "standardize" {
                    let mean = train.mean_axis(Axis(0)).expect("rows");
                    let sd = train.std_axis(Axis(0), 1.0);
                    if let Some(j) = sd.iter().position(|s| s.is_nan() || *s <= 0.0) {
                        return Err(bad(format!(
                            "data.columns: column {:?} is constant in the training rows; drop it or use transform = \"none\"",
                            names[j]
                        )));
                    }
                    Transform {
                        columns: names.clone(),
                        mean: mean.to_vec(),
                        scale: sd.to_vec(),
                    }
                } else {
                    Transform {
                        columns: names.clone(),
                        mean: vec![0.0; names.len()],
                        scale: vec![divisor; names.len()],
                    }
                };
                resolved.columns = Some(names.clone());
                resolved.transform = Some(transform_kind);
                resolved.test_fraction = Some(test_fraction);
                resolved.dequantize = Some(q);
                if d.noise.is_some() {
                    resolved.noise = Some(noise);
                }
                let data = TrainData::Points {
                    train: transform.forward(&train),
                    val: transform.forward(&test),
                    noise,
                };
                Ok((data, Some(transform), names.len()))
            }
            (Some(_), Some(_)) => Err(bad("data: give either density = {…} or csv = \"FILE\", not both")),
            (None, None) => Err(bad(
                "data: missing; give density = { kind = … } (fresh samples every step) or csv = \"FILE\"",
            )),
        }
    }

    fn build_model(&self, dim: usize) -> Result<Network, InputError> {
        let act = |a: &str| -> Result<Activation, InputError> {
            a.parse().map_err(|e| bad(format!("model.activation: {e}")))
        };
        let spec = match &self.model {
            ModelSpec::Mlp { hidden, activation } => NetworkSpec {
                kind: NetworkKind::Mlp,
                dim,
                hidden: hidden.clone(),
                activation: act(activation)?,
                tau: None,
            },
            ModelSpec::NoiseConditionalMlp { hidden, activation } => NetworkSpec {
                kind: NetworkKind::NoiseConditionalMlp,
                dim,
                hidden: hidden.clone(),
                activation: act(activation)?,
                tau: None,
            },
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
            },
            ModelSpec::Linear {} => NetworkSpec {
                kind: NetworkKind::Mlp,
                dim,
                hidden: vec![],
                activation: Activation::Tanh,
                tau: None,
            },
        };
        spec.build(self.seed).map_err(|e| bad(format!("model.{e}")))
    }

    fn build_objective(&self) -> Result<Objective, InputError> {
        let probe = |p: &str| match p {
            "gaussian" => Ok(Probe::Gaussian),
            "rademacher" => Ok(Probe::Rademacher),
            other => Err(bad(format!(
                "objective.probe: unknown probe {other:?}; use gaussian | rademacher"
            ))),
        };
        let projections = |k: usize| {
            if k == 0 {
                Err(bad("objective.projections: must be at least 1"))
            } else {
                Ok(k)
            }
        };
        Ok(match &self.objective {
            ObjectiveSpec::Esm {} => Objective::Esm,
            ObjectiveSpec::Ism { trace } => Objective::Ism {
                trace: trace
                    .parse::<TraceMethod>()
                    .map_err(|e| bad(format!("objective.trace: {e}")))?,
            },
            ObjectiveSpec::Ssm {
                projections: k,
                probe: p,
            } => Objective::Ssm {
                projections: projections(*k)?,
                probe: probe(p)?,
            },
            ObjectiveSpec::SsmVr {
                projections: k,
                probe: p,
            } => Objective::SsmVr {
                projections: projections(*k)?,
                probe: probe(p)?,
            },
            ObjectiveSpec::Dsm { sigma } => {
                if !(*sigma > 0.0 && sigma.is_finite()) {
                    return Err(bad(format!(
                        "objective.sigma: must be positive and finite, got {sigma}"
                    )));
                }
                Objective::Dsm { sigma: *sigma }
            }
            ObjectiveSpec::DsmMulti {
                sigma_max,
                sigma_min,
                levels,
            } => Objective::dsm_multi(*sigma_max, *sigma_min, *levels)
                .map_err(|e| bad(format!("objective.{e}")))?,
        })
    }
}

/// The training and held-out rows (model units) and the transform that a `scorelab train` config
/// for CSV data makes: the split of its seed, exactly as training sees it (before any `noise`).
/// `what` names the config in errors.
///
/// # Errors
/// An [`InputError`] if the config is invalid or its data are not a CSV file.
pub fn split_of(
    config: toml::Table,
    what: &str,
) -> Result<(Array2<f64>, Array2<f64>, Transform), InputError> {
    let file: TrainFile = toml::Value::Table(config)
        .try_into()
        .map_err(|e| bad(format!("{what}: {e}")))?;
    let plan = file.build()?;
    match (plan.data, plan.transform) {
        (TrainData::Points { train, val, .. }, Some(t)) => Ok((train, val, t)),
        _ => Err(bad(format!("{what}: needs csv data"))),
    }
}

/// Reads a CSV with a header: the named columns (all if `None`), every value finite.
///
/// # Errors
/// An [`InputError`] naming the file and the row, column or problem.
pub fn read_csv(
    path: &Path,
    columns: Option<&[String]>,
) -> Result<(Vec<String>, Array2<f64>), InputError> {
    let table = Table::open(path, &format!("data.csv {}", path.display()))?;
    let header = table.header.clone();
    let names: Vec<String> = match columns {
        Some([]) => return Err(bad("data.columns: empty; name at least one column")),
        Some(c) => c.to_vec(),
        None => header.clone(),
    };
    let mut idx = Vec::with_capacity(names.len());
    for (k, name) in names.iter().enumerate() {
        if names[..k].contains(name) {
            return Err(bad(format!("data.columns: {name:?} is listed twice")));
        }
        let i = header.iter().position(|h| h == name).ok_or_else(|| {
            bad(format!(
                "data.columns: no column {name:?} in {}; its columns are {}",
                path.display(),
                header.join(", ")
            ))
        })?;
        idx.push(i);
    }
    let x = table.read(&idx, &names)?;
    if x.nrows() == 0 {
        return Err(bad(format!("data.csv {}: no data rows", path.display())));
    }
    Ok((names, x))
}

/// The commit, compiler, CPU and thread count of this run.
pub fn provenance(threads: usize) -> toml::Table {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(c) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut t = toml::Table::new();
    t.insert("commit".into(), commit.into());
    t.insert("rustc".into(), env!("SCORELAB_RUSTC_VERSION").into());
    t.insert("cpu".into(), cpu.into());
    t.insert("threads".into(), (threads as i64).into());
    t.insert("scorelab".into(), env!("CARGO_PKG_VERSION").into());
    t
}

/// The header of `loss.csv`.
pub const LOSS_COLUMNS: &str = "step,loss,val_loss,esm,ism,fisher";

/// A `loss.csv` cell: empty for a missing or non-finite value.
fn cell(v: Option<f64>) -> String {
    crate::output::cell(v.filter(|x| x.is_finite()))
}

/// The step of a `loss.csv` row.
fn row_step(row: &str) -> Option<u64> {
    row.split(',').next().and_then(|s| s.parse().ok())
}

/// One `loss.csv` row.
pub fn loss_row(r: &EvalRow) -> String {
    format!(
        "{},{},{},{},{},{}",
        r.step,
        cell(Some(r.loss)),
        cell(Some(r.val_loss)),
        cell(r.esm),
        cell(r.ism),
        cell(r.fisher)
    )
}

/// What the command line passes to [`run`].
pub struct TrainArgs {
    /// The config file.
    pub config: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// Overrides the config's seed.
    pub seed: Option<u64>,
    /// Overwrite an existing output folder.
    pub force: bool,
    /// Continue from the output folder's checkpoint.
    pub resume: bool,
    /// rayon threads in use.
    pub threads: usize,
}

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// All steps done.
    Finished,
    /// Ctrl-C: saved at this step.
    Interrupted(u64),
}

const OWNED: [&str; 4] = [
    "config.toml",
    "loss.csv",
    "model.safetensors",
    "transform.toml",
];

/// Runs `scorelab train` (module docs).
///
/// # Errors
/// [`InputError`] for bad input; other errors for I/O failures or a diverging run (after saving
/// what was finished).
pub fn run(args: &TrainArgs, stop: Arc<AtomicBool>) -> Result<Outcome> {
    let mut file = TrainFile::from_file(&args.config)?;
    if let Some(s) = args.seed {
        file.seed = s;
    }
    let plan = file
        .build()
        .map_err(|e| bad(format!("config {}: {}", args.config.display(), e.0)))?;
    let dir = &args.out;
    let ckpt = dir.join("checkpoint");
    if args.resume && args.force {
        return Err(bad("--resume and --force: choose one").into());
    }
    let exists = dir.exists();
    if exists && !dir.is_dir() {
        return Err(bad(format!("--out {}: is a file; give a folder", dir.display())).into());
    }
    if args.resume {
        if !ckpt.join("state.safetensors").exists() {
            return Err(bad(format!(
                "--resume: {} has no checkpoint to resume; run without --resume",
                dir.display()
            ))
            .into());
        }
        let saved = TrainFile::from_file(&dir.join("config.toml"))?;
        let mut a = saved.clone();
        let mut b = plan.resolved.clone();
        a.run = None;
        a.train = TrainSpec::default();
        b.train = TrainSpec::default();
        if a != b {
            return Err(bad(format!(
                "--resume: the config differs from the run in {} in seed, data, model or objective; only [train] may change",
                dir.display()
            ))
            .into());
        }
    } else if exists && std::fs::read_dir(dir)?.next().is_some() {
        if !args.force {
            return Err(bad(format!(
                "--out {}: exists and is not empty; use --force to overwrite it or --resume to continue it",
                dir.display()
            ))
            .into());
        }
        for f in OWNED {
            let p = dir.join(f);
            if p.exists() {
                std::fs::remove_file(&p)
                    .with_context(|| format!("cannot remove {}", p.display()))?;
            }
        }
        if ckpt.exists() {
            std::fs::remove_dir_all(&ckpt)
                .with_context(|| format!("cannot remove {}", ckpt.display()))?;
        }
    }
    std::fs::create_dir_all(&ckpt).with_context(|| format!("cannot create {}", ckpt.display()))?;

    let Plan {
        resolved,
        net,
        objective,
        data,
        config,
        transform,
    } = plan;
    let mut written = resolved.clone();
    written.run = Some(provenance(args.threads));
    let eval_every = resolved.train.eval_every;
    let steps = config.steps;
    let mut trainer = Trainer::new(net, objective, data, config, resolved.seed)
        .map_err(|e| bad(e.to_string()))?;
    let mut rows: Vec<String> = Vec::new();
    if args.resume {
        let raw = Network::load(&ckpt.join("raw.safetensors"))?;
        let state = TrainingState::load(&ckpt.join("state.safetensors"), &raw)?;
        let at = state.step;
        trainer
            .resume(raw, state)
            .map_err(|e| bad(format!("--resume: {e}")))?;
        let old = std::fs::read_to_string(dir.join("loss.csv")).unwrap_or_default();
        rows = old
            .lines()
            .skip(1)
            .filter(|l| row_step(l).is_some_and(|s| s <= at))
            .map(str::to_string)
            .collect();
        eprintln!(
            "scorelab train: resuming {} at step {at} of {steps}",
            dir.display()
        );
    }
    // The config and the transform do not change during the run: written once.
    let mut staged = Staged::default();
    staged.stage(&dir.join("config.toml"), written.to_toml().as_bytes())?;
    if let Some(t) = &transform {
        let text = format!(
            "# x_model = (x − mean) / scale, per column; scorelab score applies it.\n{}",
            toml::to_string(t).expect("serialises")
        );
        staged.stage(&dir.join("transform.toml"), text.as_bytes())?;
    }
    staged.commit()?;
    drop(written);
    let save = |trainer: &Trainer, rows: &[String]| -> Result<()> {
        let mut staged = Staged::default();
        let mut csv = String::from(LOSS_COLUMNS);
        csv.push('\n');
        for r in rows {
            csv.push_str(r);
            csv.push('\n');
        }
        staged.stage(&dir.join("loss.csv"), csv.as_bytes())?;
        staged.commit()?;
        trainer.model().save(&dir.join("model.safetensors"))?;
        trainer.raw_model().save(&ckpt.join("raw.safetensors"))?;
        trainer
            .state()
            .save(&ckpt.join("state.safetensors"), trainer.raw_model())?;
        Ok(())
    };
    if !args.resume {
        rows.push(loss_row(&trainer.evaluate()));
        save(&trainer, &rows)?;
    }
    // A run stopped between evaluations: evaluate where it stands, then save.
    let save_stopped = |trainer: &Trainer, rows: &mut Vec<String>| -> Result<()> {
        if rows.last().and_then(|r| row_step(r)) != Some(trainer.step()) {
            rows.push(loss_row(&trainer.evaluate()));
        }
        save(trainer, rows)
    };
    let bar = indicatif::ProgressBar::new(steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps · {per_sec} · ETA {eta} · loss {msg}",
        )
        .expect("template"),
    );
    bar.set_position(trainer.step().min(steps));
    // Small steps run on one thread, the whole loop inside that pool (`step_pool`).
    let pool = trainer.step_pool();
    let mut train_loop = move || -> Result<Outcome> {
        while trainer.step() < steps {
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                save_stopped(&trainer, &mut rows)?;
                return Ok(Outcome::Interrupted(trainer.step()));
            }
            match trainer.train_step() {
                Ok(loss) => {
                    bar.set_message(format!("{loss:.5}"));
                    bar.inc(1);
                }
                Err(e @ TrainError::NonFinite { .. }) => {
                    bar.abandon();
                    save_stopped(&trainer, &mut rows)?;
                    return Err(anyhow::anyhow!(
                        "{e}. Steps 1–{} are saved in {} (--resume continues from there).",
                        trainer.step(),
                        dir.display()
                    ));
                }
                Err(e) => return Err(e.into()),
            }
            let s = trainer.step();
            if s % eval_every == 0 || s == steps {
                rows.push(loss_row(&trainer.evaluate()));
                save(&trainer, &rows)?;
            }
        }
        bar.finish_and_clear();
        Ok(Outcome::Finished)
    };
    match pool {
        Some(p) => p.install(train_loop),
        None => train_loop(),
    }
}

//! The equivalence audit as a library: configs of cases (a density and a score model each), the
//! built-in suite ([`builtin`]), and [`run`], which audits ESM = ISM + C (+ B) on every case
//! ([`scorelab_eval::audit()`]) and gives one [`Row`] per case ([`to_csv`] writes them).
//!
//! ```toml
//! seed = 7              # default 0
//! samples = 200000      # default 200000
//! [[case]]
//! name = "g3"
//! density = { kind = "gaussian", mean = [0.5, -1.0, 2.0], cov = [[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]] }
//! model = { kind = "linear", a = [[-0.5, 0.1, 0.0], [0.0, -1.0, 0.2], [0.1, 0.0, -2.0]], b = [0.1, 0.2, -0.3] }
//! ```

use crate::error::{PipelineError, Result};
use crate::files::cell;
use crate::memory::{self, MemoryLimit};
use crate::spec::{matrix, DensitySpec};
use crate::train::{default_activation, default_hidden, default_tau};
use ndarray::Array1;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use scorelab_core::{Dimension, Sample};
use scorelab_densities::AnyDensity;
use scorelab_eval::{audit, closed_form, Audit};
use scorelab_models::{Activation, AnyModel, Linear, NetworkKind, NetworkSpec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The default number of Monte Carlo samples per case.
pub const DEFAULT_SAMPLES: usize = 200_000;

/// A resolved config: defaults filled in; what `equivalence` writes beside its CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquivalenceConfig {
    /// The master seed; each case samples from `ChaCha8Rng::seed_from_u64(seed)` on the stream
    /// [`case_stream`] of its name.
    pub seed: u64,
    /// Monte Carlo samples per case.
    pub samples: usize,
    /// The cases, in CSV order.
    #[serde(rename = "case")]
    pub cases: Vec<CaseSpec>,
}

/// One case: a density and a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseSpec {
    /// A unique name; the CSV's `case` column.
    pub name: String,
    /// The data density.
    pub density: DensitySpec,
    /// The score model.
    pub model: CaseModel,
}

/// A score model as the config spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CaseModel {
    /// s(x) = a x + b.
    Linear {
        /// A, rows.
        a: Vec<Vec<f64>>,
        /// b.
        b: Vec<f64>,
    },
    /// A and b i.i.d. N(0, scale²) from `ChaCha8Rng::seed_from_u64(seed)`: A row-major, then b.
    RandomLinear {
        /// The model's own seed.
        seed: u64,
        /// The standard deviation of every entry.
        scale: f64,
    },
    /// A randomly initialised MLP score s_θ(x) = MLP(x) (`scorelab_models::Mlp`).
    Mlp {
        /// Hidden widths (default `[64, 64]`, as in training).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// `tanh` | `softplus` | `silu` (default `softplus`, as in training).
        #[serde(default = "default_activation")]
        activation: Activation,
        /// The weights' seed (default 0).
        #[serde(default)]
        seed: u64,
    },
    /// A randomly initialised energy network, s_θ = −∇(MLP(x) + ‖x‖²/(2τ²))
    /// (`scorelab_models::EnergyMlp`).
    EnergyMlp {
        /// Hidden widths (default `[64, 64]`, as in training).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// `tanh` | `softplus` | `silu` (default `softplus`, as in training).
        #[serde(default = "default_activation")]
        activation: Activation,
        /// τ of the confining term (default 3).
        #[serde(default = "default_tau")]
        tau: f64,
        /// The weights' seed (default 0).
        #[serde(default)]
        seed: u64,
    },
}

impl CaseModel {
    /// The kind as the config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            CaseModel::Linear { .. } => "linear",
            CaseModel::RandomLinear { .. } => "random_linear",
            CaseModel::Mlp { .. } => "mlp",
            CaseModel::EnergyMlp { .. } => "energy_mlp",
        }
    }

    /// Validates the spec into a model of dimension `dim` (the density's).
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming the field and what would be valid.
    pub fn build(&self, dim: usize) -> Result<AnyModel> {
        let m: AnyModel = match self {
            CaseModel::Linear { a, b } => {
                let a = matrix(a, "a")?;
                if a.nrows() != dim {
                    return Err(PipelineError::invalid(
                        "a",
                        format!(
                            "A has {} rows but the density is {dim}-dimensional; A must be {dim}×{dim}",
                            a.nrows()
                        ),
                    ));
                }
                Linear::new(a, Array1::from(b.clone()))?.into()
            }
            CaseModel::RandomLinear { seed, scale } => Linear::random(dim, *scale, *seed)?.into(),
            // The audit's networks are built exactly as trained ones are: one network type.
            CaseModel::Mlp {
                hidden,
                activation,
                seed,
            } => network(NetworkKind::Mlp, dim, hidden, activation, None, *seed)?,
            CaseModel::EnergyMlp {
                hidden,
                activation,
                tau,
                seed,
            } => network(
                NetworkKind::EnergyMlp,
                dim,
                hidden,
                activation,
                Some(*tau),
                *seed,
            )?,
        };
        debug_assert_eq!(m.dim(), dim);
        Ok(m)
    }
}

/// A random network of the audit, through [`NetworkSpec::build`] like every network.
fn network(
    kind: NetworkKind,
    dim: usize,
    hidden: &[usize],
    activation: &Activation,
    tau: Option<f64>,
    seed: u64,
) -> Result<AnyModel> {
    let activation = *activation;
    let spec = NetworkSpec {
        kind,
        dim,
        hidden: hidden.to_vec(),
        activation,
        tau,
        precondition: None,
    };
    Ok(AnyModel::network(spec.build(seed)?)?)
}

/// A validated case: the spec and what it builds.
#[derive(Debug, Clone)]
pub struct Case {
    /// The spec as resolved.
    pub spec: CaseSpec,
    /// The density.
    pub density: AnyDensity,
    /// The model.
    pub model: AnyModel,
}

/// The top level before the cases are looked at, so errors can name the case.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    seed: Option<u64>,
    samples: Option<usize>,
    #[serde(rename = "case", default)]
    cases: Vec<toml::Table>,
}

impl EquivalenceConfig {
    /// Reads and resolves a config file; `seed` overrides the file's seed. Values are checked by
    /// [`EquivalenceConfig::build`].
    ///
    /// # Errors
    /// An [`PipelineError`] naming the file, the case and the field.
    pub fn from_file(path: &Path, seed: Option<u64>) -> Result<Self, PipelineError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PipelineError::Input(format!("cannot read config {}: {e}", path.display()))
        })?;
        Self::from_toml(&text, seed)
            .map_err(|e| PipelineError::Input(format!("config {}: {}", path.display(), e)))
    }

    /// Parses and resolves config text (defaults filled in; `seed` overrides the text's seed).
    /// Values are checked by [`EquivalenceConfig::build`].
    ///
    /// # Examples
    /// ```
    /// use scorelab_pipeline::equivalence::EquivalenceConfig;
    /// use scorelab_pipeline::memory::MemoryLimit;
    /// let text = r#"
    /// [[case]]
    /// name = "hn"
    /// density = { kind = "half_normal", scale = 1.0 }
    /// model = { kind = "random_linear", seed = 3, scale = 0.5 }
    /// "#;
    /// let cfg = EquivalenceConfig::from_toml(text, Some(9)).unwrap();
    /// assert_eq!((cfg.seed, cfg.samples, cfg.cases.len()), (9, 200_000, 1));
    /// assert!(cfg.build(MemoryLimit::default()).is_ok());
    /// let bad = EquivalenceConfig::from_toml(&text.replace("1.0", "-1.0"), None).unwrap();
    /// let err = bad.build(MemoryLimit::default()).unwrap_err();
    /// assert!(err.to_string().contains("case 'hn'") && err.to_string().contains("density.scale"));
    /// ```
    ///
    /// # Errors
    /// An [`PipelineError`] naming the case and the field.
    pub fn from_toml(text: &str, seed: Option<u64>) -> Result<Self, PipelineError> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| PipelineError::Input(crate::files::toml_error(text, &e)))?;
        let mut cases = Vec::with_capacity(raw.cases.len());
        for (i, table) in raw.cases.into_iter().enumerate() {
            let label = match table.get("name").and_then(|v| v.as_str()) {
                Some(n) => format!("case '{n}' ([[case]] #{})", i + 1),
                None => format!("[[case]] #{}", i + 1),
            };
            let field = |key: &str| -> Result<toml::Value, PipelineError> {
                table.get(key).cloned().ok_or_else(|| {
                    PipelineError::Input(format!(
                        "{label}: missing field `{key}`; every case needs name, density and model"
                    ))
                })
            };
            let name: String = field("name")?
                .try_into()
                .map_err(|e| PipelineError::Input(format!("{label}: name: {e}")))?;
            let density: DensitySpec = field("density")?.try_into().map_err(|e| {
                PipelineError::Input(format!(
                    "{label}: density: {}",
                    kind_hint(&e, crate::spec::DENSITY_KINDS)
                ))
            })?;
            let model: CaseModel = field("model")?.try_into().map_err(|e| {
                PipelineError::Input(format!(
                    "{label}: model: {}",
                    kind_hint(&e, CASE_MODEL_KINDS)
                ))
            })?;
            if let Some(extra) = table
                .keys()
                .find(|k| !["name", "density", "model"].contains(&k.as_str()))
            {
                return Err(PipelineError::Input(format!(
                    "{label}: unknown field `{extra}`; a case has name, density and model"
                )));
            }
            cases.push(CaseSpec {
                name,
                density,
                model,
            });
        }
        let config = EquivalenceConfig {
            seed: seed.or(raw.seed).unwrap_or(0),
            samples: raw.samples.unwrap_or(DEFAULT_SAMPLES),
            cases,
        };
        Ok(config)
    }

    /// Validates the config once and builds every case: the only door from a parsed config to
    /// densities and models.
    ///
    /// # Errors
    /// An [`PipelineError`] naming the case and the field.
    pub fn build(&self, limit: MemoryLimit) -> Result<Vec<Case>, PipelineError> {
        if self.samples < 2 {
            return Err(PipelineError::Input(format!(
                "samples: is {}; need at least 2 for a standard error (default {DEFAULT_SAMPLES})",
                self.samples
            )));
        }
        if self.cases.is_empty() {
            return Err(PipelineError::Input(
                "no cases: add at least one [[case]] with name, density and model".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut out = Vec::with_capacity(self.cases.len());
        for (i, spec) in self.cases.iter().enumerate() {
            let label = format!("case '{}' ([[case]] #{})", spec.name, i + 1);
            if spec.name.is_empty() {
                return Err(PipelineError::Input(format!(
                    "{label}: name is empty; give each case a unique name"
                )));
            }
            if !names.insert(spec.name.as_str()) {
                return Err(PipelineError::Input(format!(
                    "{label}: name is used twice; case names must be unique"
                )));
            }
            let density = spec
                .density
                .build()
                .map_err(|e| PipelineError::Input(format!("{label}: density.{e}")))?;
            let model = spec
                .model
                .build(density.dim())
                .map_err(|e| PipelineError::Input(format!("{label}: model.{e}")))?;
            // Cases run in parallel, one per core: each holds its own arrays.
            memory::check(
                memory::audit_bytes(self.samples, density.dim())
                    .saturating_mul(rayon::current_num_threads() as u64),
                limit,
                || format!("{label}: {} samples in D = {}", self.samples, density.dim()),
                "lower samples",
            )?;
            out.push(Case {
                spec: spec.clone(),
                density,
                model,
            });
        }
        Ok(out)
    }

    /// The resolved config as TOML (what is written beside the CSV), under a comment that says how
    /// to rerun it.
    pub fn to_toml(&self) -> String {
        format!(
            "# Resolved config written by scorelab equivalence {}: every default filled in.\n\
             # Rerun with: scorelab equivalence --config <this file> --out <file.csv>\n\n{}",
            env!("CARGO_PKG_VERSION"),
            toml::to_string(self).expect("a resolved config serialises")
        )
    }
}

/// The model kinds of a case, as configs spell them.
pub const CASE_MODEL_KINDS: &[&str] = &["linear", "random_linear", "mlp", "energy_mlp"];

/// serde's message, with the valid kinds added when the kind itself is missing.
fn kind_hint(e: &toml::de::Error, kinds: &[&str]) -> String {
    let msg = e.to_string().trim_end().to_string();
    if msg.contains("missing field `kind`") {
        format!("{msg}; kind is one of {}", kinds.join(", "))
    } else {
        msg
    }
}

/// The CSV header, in order.
pub const COLUMNS: [&str; 25] = [
    "case",
    "density",
    "model",
    "dim",
    "samples",
    "esm",
    "esm_se",
    "ism",
    "ism_se",
    "gap",
    "gap_se",
    "constant",
    "boundary_term",
    "z_score",
    "grad_rel_diff",
    "grad_boundary_rel",
    "grad_residual_rel",
    "grad_residual_se",
    "grad_residual_p",
    "grad_difference_p",
    "grad_batches",
    "esm_closed",
    "ism_closed",
    "esm_quad",
    "ism_quad",
];

/// One case's results.
#[derive(Debug, Clone)]
pub struct Row {
    /// The case's name.
    pub case: String,
    /// The density kind.
    pub density: &'static str,
    /// The model kind.
    pub model: &'static str,
    /// D.
    pub dim: usize,
    /// The audit.
    pub audit: Audit,
    /// Closed-form (ESM, ISM), where one exists.
    pub closed: Option<(f64, f64)>,
}

/// The ChaCha8 stream of a case: the 64-bit FNV-1a hash of its name. Keyed by name, a case's
/// samples do not change when other cases are added, removed or reordered.
///
/// # Examples
/// ```
/// // FNV-1a's published test vector: "a" ↦ 0xaf63dc4c8601ec8c.
/// assert_eq!(scorelab_pipeline::equivalence::case_stream("a"), 0xaf63dc4c8601ec8c);
/// ```
pub fn case_stream(name: &str) -> u64 {
    name.bytes().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

/// Runs every case; a case draws its samples from `ChaCha8Rng::seed_from_u64(seed)` on stream
/// [`case_stream`]`(name)`, so results depend neither on the order or parallelism of the cases nor
/// on the other cases. `on_case` is called (from the worker threads) as each case finishes.
pub fn run(
    config: &EquivalenceConfig,
    cases: &[Case],
    on_case: &(dyn Fn(&str) + Sync),
) -> Vec<Row> {
    let rows = cases
        .par_iter()
        .map(|case| {
            let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
            rng.set_stream(case_stream(&case.spec.name));
            let x = case.density.sample(config.samples, &mut rng);
            let audit = audit(&case.density, &case.model, x.view());
            on_case(&case.spec.name);
            Row {
                case: case.spec.name.clone(),
                density: case.spec.density.kind(),
                model: case.spec.model.kind(),
                dim: case.density.dim(),
                audit,
                closed: closed_form(&case.density, &case.model),
            }
        })
        .collect();
    rows
}

/// The CSV, header and one row per case.
///
/// # Panics
/// Never: the in-memory CSV writer does not fail.
pub fn to_csv(rows: &[Row]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS).expect("in memory");
    for r in rows {
        let a = &r.audit;
        let q = a.quadrature;
        w.write_record([
            r.case.clone(),
            r.density.to_string(),
            r.model.to_string(),
            r.dim.to_string(),
            a.samples.to_string(),
            cell(Some(a.esm.mean)),
            cell(Some(a.esm.se)),
            cell(Some(a.ism.mean)),
            cell(Some(a.ism.se)),
            cell(Some(a.gap.mean)),
            cell(Some(a.gap.se)),
            cell(Some(a.constant)),
            cell(Some(a.boundary_term)),
            cell(Some(a.z_score)),
            cell(a.gradient.map(|g| g.rel_diff)),
            cell(a.gradient.map(|g| g.boundary_rel)),
            cell(a.gradient.map(|g| g.residual_rel)),
            cell(a.gradient.map(|g| g.residual_rel_se)),
            cell(a.gradient.map(|g| g.residual_p)),
            cell(a.gradient.map(|g| g.difference_p)),
            a.gradient.map_or(String::new(), |_| {
                scorelab_eval::audit::GRADIENT_BATCHES
                    .min(a.samples)
                    .to_string()
            }),
            cell(r.closed.map(|c| c.0)),
            cell(r.closed.map(|c| c.1)),
            cell(q.map(|q| q.esm)),
            cell(q.map(|q| q.ism)),
        ])
        .expect("in memory");
    }
    w.into_inner().expect("in memory")
}

/// Rounds to 4 decimals so the written config is readable and exact.
fn r4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// A seeded Gaussian in `d` dimensions: mean N(0, I), covariance W Wᵀ/d + ½I (W i.i.d. N(0, 1)),
/// drawn from `ChaCha8Rng::seed_from_u64(seed)` (W row-major, then the mean) and rounded.
pub fn random_gaussian(d: usize, seed: u64) -> DensitySpec {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<Vec<f64>> = (0..d)
        .map(|_| (0..d).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    let mean = (0..d)
        .map(|_| r4(StandardNormal.sample(&mut rng)))
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..d).map(|k| w[i][k] * w[j][k]).sum();
            let v = r4(dot / d as f64 + if i == j { 0.5 } else { 0.0 });
            cov[i][j] = v;
            cov[j][i] = v;
        }
    }
    DensitySpec::Gaussian { mean, cov }
}

/// A random MLP score: hidden [32, 32], tanh, weights from seed 1.
fn mlp() -> CaseModel {
    CaseModel::Mlp {
        hidden: vec![32, 32],
        activation: Activation::Tanh,
        seed: 1,
    }
}

/// The built-in suite of `scorelab equivalence`, as an ordinary config (so it is written out in full
/// beside its CSV and can be edited and rerun with `--config`).
///
/// Densities: Gaussians in 1, 2, 10 and 50 dimensions (the 10- and 50-D ones with a seeded random
/// mean and covariance W Wᵀ/D + ½I, rounded to 4 decimals), the NCSN toy mixture
/// 0.8·N((5,5), I) + 0.2·N((−5,−5), I), two bananas (a = 1, b = ½, and Haario's a = 10, b = 0.03), a
/// 3-D Student-t with ν = 7, and the half-normal with scale 1. Models: per density on ℝᴰ, three
/// random linear models (scale ½, seeds 1–3), a random MLP score (`/mlp`: hidden [32, 32], tanh,
/// seed 1) and a random energy network (`/energy`: hidden [32, 32], softplus, τ = 3, seed 1); on the
/// half-normal, s_θ(x) = −2x + b for b ∈ {0, 1, −1} (boundary term p(0)·b), one random linear model
/// and the random MLP. The networks evaluate in f64 from f32 weights, so the quadrature identity
/// holds for them to rounding as well.
///
/// With the given master seed and samples per case.
///
/// # Examples
/// ```
/// use scorelab_pipeline::memory::MemoryLimit;
/// let suite = scorelab_pipeline::equivalence::builtin(0, 1000);
/// assert_eq!(suite.cases.len(), 45);
/// assert!(suite.build(MemoryLimit::default()).is_ok());
/// ```
pub fn builtin(seed: u64, samples: usize) -> EquivalenceConfig {
    let eye2 = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    let densities: Vec<(&str, DensitySpec)> = vec![
        (
            "gaussian_1d",
            DensitySpec::Gaussian {
                mean: vec![0.5],
                cov: vec![vec![2.0]],
            },
        ),
        (
            "gaussian_2d",
            DensitySpec::Gaussian {
                mean: vec![1.0, -0.5],
                cov: vec![vec![1.0, 0.6], vec![0.6, 2.0]],
            },
        ),
        ("gaussian_10d", random_gaussian(10, 10)),
        ("gaussian_50d", random_gaussian(50, 50)),
        (
            "ncsn_mixture",
            DensitySpec::GaussianMixture {
                weights: vec![0.8, 0.2],
                means: vec![vec![5.0, 5.0], vec![-5.0, -5.0]],
                covs: vec![eye2.clone(), eye2],
            },
        ),
        ("banana", DensitySpec::Banana { a: 1.0, b: 0.5 }),
        ("banana_haario", DensitySpec::Banana { a: 10.0, b: 0.03 }),
        (
            "student_t_3d",
            DensitySpec::StudentT {
                mean: vec![0.0, 1.0, -1.0],
                scale: vec![
                    vec![1.0, 0.2, 0.1],
                    vec![0.2, 2.0, -0.3],
                    vec![0.1, -0.3, 0.7],
                ],
                nu: 7.0,
            },
        ),
    ];
    let mut cases = Vec::new();
    for (name, density) in densities {
        for model_seed in 1..=3 {
            cases.push(CaseSpec {
                name: format!("{name}/m{model_seed}"),
                density: density.clone(),
                model: CaseModel::RandomLinear {
                    seed: model_seed,
                    scale: 0.5,
                },
            });
        }
        cases.push(CaseSpec {
            name: format!("{name}/mlp"),
            density: density.clone(),
            model: mlp(),
        });
        cases.push(CaseSpec {
            name: format!("{name}/energy"),
            density: density.clone(),
            model: CaseModel::EnergyMlp {
                hidden: vec![32, 32],
                activation: Activation::Softplus,
                tau: 3.0,
                seed: 1,
            },
        });
    }
    let half = DensitySpec::HalfNormal { scale: 1.0 };
    for (label, b) in [("b0", 0.0), ("b+1", 1.0), ("b-1", -1.0)] {
        cases.push(CaseSpec {
            name: format!("half_normal/{label}"),
            density: half.clone(),
            model: CaseModel::Linear {
                a: vec![vec![-2.0]],
                b: vec![b],
            },
        });
    }
    cases.push(CaseSpec {
        name: "half_normal/m1".into(),
        density: half.clone(),
        model: CaseModel::RandomLinear {
            seed: 1,
            scale: 0.5,
        },
    });
    cases.push(CaseSpec {
        name: "half_normal/mlp".into(),
        density: half,
        model: mlp(),
    });
    EquivalenceConfig {
        seed,
        samples,
        cases,
    }
}

//! The `scorelab equivalence` config: plain serde structs, parsed in two stages so that every error
//! names the case and the field, then validated once into densities and models.
//!
//! ```toml
//! seed = 7              # default 0
//! samples = 200000      # default 200000
//! [[case]]
//! name = "g3"
//! density = { kind = "gaussian", mean = [0.5, -1.0, 2.0], cov = [[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]] }
//! model = { kind = "linear", a = [[-0.5, 0.1, 0.0], [0.0, -1.0, 0.2], [0.1, 0.0, -2.0]], b = [0.1, 0.2, -0.3] }
//! ```

use crate::InputError;
use ndarray::{Array1, Array2};
use scorelab_core::Dimension;
use scorelab_densities::{AnyDensity, Banana, Gaussian, GaussianMixture, HalfNormal, StudentT};
use scorelab_models::{Activation, AnyModel, EnergyMlp, Linear, Mlp};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;

/// The default number of Monte Carlo samples per case.
pub const DEFAULT_SAMPLES: usize = 200_000;

/// The largest samples × dim one case may ask for: each (n, d) array of f64 is then 400 MB, and an
/// audit holds about six of them (two cases run at once on two cores).
pub const MAX_VALUES: usize = 50_000_000;

/// A resolved config: defaults filled in; what `equivalence` writes beside its CSV.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EquivalenceConfig {
    /// The master seed; each case samples from `ChaCha8Rng::seed_from_u64(seed)` on the stream
    /// [`crate::equivalence::case_stream`] of its name.
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
    pub model: ModelSpec,
}

/// A density as the config spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DensitySpec {
    /// N(mean, cov).
    Gaussian {
        /// μ.
        mean: Vec<f64>,
        /// Σ, rows.
        cov: Vec<Vec<f64>>,
    },
    /// Σₖ weights\[k\] N(means\[k\], covs\[k\]).
    GaussianMixture {
        /// wₖ, summing to 1.
        weights: Vec<f64>,
        /// μₖ.
        means: Vec<Vec<f64>>,
        /// Σₖ, rows.
        covs: Vec<Vec<Vec<f64>>>,
    },
    /// Haario's banana.
    Banana {
        /// Scale a > 0.
        a: f64,
        /// Curvature b.
        b: f64,
    },
    /// Multivariate Student-t.
    StudentT {
        /// Location.
        mean: Vec<f64>,
        /// Scale matrix S, rows.
        scale: Vec<Vec<f64>>,
        /// Degrees of freedom ν > 4.
        nu: f64,
    },
    /// Half-normal on [0, ∞).
    HalfNormal {
        /// Scale s > 0.
        scale: f64,
    },
    /// N(0, I) in `dim` dimensions (a Gaussian without writing out I).
    StandardNormal {
        /// D ≥ 1.
        dim: usize,
    },
}

/// A score model as the config spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ModelSpec {
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
        /// Hidden widths (default `[32, 32]`).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// `tanh` | `softplus` | `silu` (default `tanh`).
        #[serde(default = "default_activation")]
        activation: String,
        /// The weights' seed (default 0).
        #[serde(default)]
        seed: u64,
    },
    /// A randomly initialised energy network, s_θ = −∇(MLP(x) + ‖x‖²/(2τ²))
    /// (`scorelab_models::EnergyMlp`).
    EnergyMlp {
        /// Hidden widths (default `[32, 32]`).
        #[serde(default = "default_hidden")]
        hidden: Vec<usize>,
        /// `tanh` | `softplus` | `silu` (default `tanh`).
        #[serde(default = "default_activation")]
        activation: String,
        /// τ of the confining term (default 3).
        #[serde(default = "default_tau")]
        tau: f64,
        /// The weights' seed (default 0).
        #[serde(default)]
        seed: u64,
    },
}

fn default_hidden() -> Vec<usize> {
    vec![32, 32]
}

fn default_activation() -> String {
    "tanh".into()
}

fn default_tau() -> f64 {
    3.0
}

impl DensitySpec {
    /// The kind as the config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            DensitySpec::Gaussian { .. } => "gaussian",
            DensitySpec::GaussianMixture { .. } => "gaussian_mixture",
            DensitySpec::Banana { .. } => "banana",
            DensitySpec::StudentT { .. } => "student_t",
            DensitySpec::HalfNormal { .. } => "half_normal",
            DensitySpec::StandardNormal { .. } => "standard_normal",
        }
    }

    /// Validates the spec into a density; errors name the field (`cov`, `covs[1]`, …).
    ///
    /// # Errors
    /// A message naming the field and what would be valid.
    pub fn build(&self) -> Result<AnyDensity, String> {
        let d: AnyDensity = match self {
            DensitySpec::Gaussian { mean, cov } => {
                Gaussian::new(Array1::from(mean.clone()), matrix(cov, "cov")?)
                    .map_err(|e| e.to_string())?
                    .into()
            }
            DensitySpec::GaussianMixture {
                weights,
                means,
                covs,
            } => {
                let covs = covs
                    .iter()
                    .enumerate()
                    .map(|(k, c)| matrix(c, &format!("covs[{k}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let means = means.iter().map(|m| Array1::from(m.clone())).collect();
                GaussianMixture::new(Array1::from(weights.clone()), means, covs)
                    .map_err(|e| e.to_string())?
                    .into()
            }
            DensitySpec::Banana { a, b } => Banana::new(*a, *b).map_err(|e| e.to_string())?.into(),
            DensitySpec::StudentT { mean, scale, nu } => {
                StudentT::new(Array1::from(mean.clone()), matrix(scale, "scale")?, *nu)
                    .map_err(|e| e.to_string())?
                    .into()
            }
            DensitySpec::HalfNormal { scale } => {
                HalfNormal::new(*scale).map_err(|e| e.to_string())?.into()
            }
            DensitySpec::StandardNormal { dim } => {
                if *dim == 0 {
                    return Err("dim: must be at least 1".into());
                }
                Gaussian::standard(*dim).into()
            }
        };
        Ok(d)
    }
}

impl ModelSpec {
    /// The kind as the config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Linear { .. } => "linear",
            ModelSpec::RandomLinear { .. } => "random_linear",
            ModelSpec::Mlp { .. } => "mlp",
            ModelSpec::EnergyMlp { .. } => "energy_mlp",
        }
    }

    /// Validates the spec into a model of dimension `dim` (the density's).
    ///
    /// # Errors
    /// A message naming the field and what would be valid.
    pub fn build(&self, dim: usize) -> Result<AnyModel, String> {
        let m: AnyModel = match self {
            ModelSpec::Linear { a, b } => {
                let a = matrix(a, "a")?;
                if a.nrows() != dim {
                    return Err(format!(
                        "a: A has {} rows but the density is {dim}-dimensional; A must be {dim}×{dim}",
                        a.nrows()
                    ));
                }
                Linear::new(a, Array1::from(b.clone()))
                    .map_err(|e| e.to_string())?
                    .into()
            }
            ModelSpec::RandomLinear { seed, scale } => Linear::random(dim, *scale, *seed)
                .map_err(|e| e.to_string())?
                .into(),
            ModelSpec::Mlp {
                hidden,
                activation,
                seed,
            } => {
                let act: Activation = activation.parse().map_err(|e| format!("activation: {e}"))?;
                Mlp::new(dim, hidden, act, *seed)
                    .map_err(|e| e.to_string())?
                    .into()
            }
            ModelSpec::EnergyMlp {
                hidden,
                activation,
                tau,
                seed,
            } => {
                let act: Activation = activation.parse().map_err(|e| format!("activation: {e}"))?;
                EnergyMlp::new(dim, hidden, act, *tau, *seed)
                    .map_err(|e| e.to_string())?
                    .into()
            }
        };
        debug_assert_eq!(m.dim(), dim);
        Ok(m)
    }
}

/// Rows → a matrix; ragged rows are an error naming `field`.
fn matrix(rows: &[Vec<f64>], field: &str) -> Result<Array2<f64>, String> {
    let r = rows.len();
    let c = rows.first().map_or(0, Vec::len);
    if r == 0 || c == 0 {
        return Err(format!(
            "{field}: the matrix is empty; give its rows as [[…], […]]"
        ));
    }
    if let Some(i) = rows.iter().position(|row| row.len() != c) {
        return Err(format!(
            "{field}: row {i} has {} entries but row 0 has {c}; every row needs the same length",
            rows[i].len()
        ));
    }
    Ok(Array2::from_shape_vec((r, c), rows.concat()).expect("rectangular"))
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
    /// An [`InputError`] naming the file, the case and the field.
    pub fn from_file(path: &Path, seed: Option<u64>) -> Result<Self, InputError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| InputError(format!("cannot read config {}: {e}", path.display())))?;
        Self::from_toml(&text, seed)
            .map_err(|e| InputError(format!("config {}: {}", path.display(), e.0)))
    }

    /// Parses and resolves config text (defaults filled in; `seed` overrides the text's seed).
    /// Values are checked by [`EquivalenceConfig::build`].
    ///
    /// # Examples
    /// ```
    /// use scorelab::config::EquivalenceConfig;
    /// let text = r#"
    /// [[case]]
    /// name = "hn"
    /// density = { kind = "half_normal", scale = 1.0 }
    /// model = { kind = "random_linear", seed = 3, scale = 0.5 }
    /// "#;
    /// let cfg = EquivalenceConfig::from_toml(text, Some(9)).unwrap();
    /// assert_eq!((cfg.seed, cfg.samples, cfg.cases.len()), (9, 200_000, 1));
    /// assert!(cfg.build().is_ok());
    /// let bad = EquivalenceConfig::from_toml(&text.replace("1.0", "-1.0"), None).unwrap();
    /// let err = bad.build().unwrap_err();
    /// assert!(err.to_string().contains("case 'hn'") && err.to_string().contains("density.scale"));
    /// ```
    ///
    /// # Errors
    /// An [`InputError`] naming the case and the field.
    pub fn from_toml(text: &str, seed: Option<u64>) -> Result<Self, InputError> {
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| InputError(e.to_string().trim_end().to_string()))?;
        let mut cases = Vec::with_capacity(raw.cases.len());
        for (i, table) in raw.cases.into_iter().enumerate() {
            let label = match table.get("name").and_then(|v| v.as_str()) {
                Some(n) => format!("case '{n}' ([[case]] #{})", i + 1),
                None => format!("[[case]] #{}", i + 1),
            };
            let field = |key: &str| -> Result<toml::Value, InputError> {
                table.get(key).cloned().ok_or_else(|| {
                    InputError(format!(
                        "{label}: missing field `{key}`; every case needs name, density and model"
                    ))
                })
            };
            let name: String = field("name")?
                .try_into()
                .map_err(|e| InputError(format!("{label}: name: {e}")))?;
            let density: DensitySpec = field("density")?.try_into().map_err(|e| {
                InputError(format!(
                    "{label}: density: {}",
                    kind_hint(&e, DENSITY_KINDS)
                ))
            })?;
            let model: ModelSpec = field("model")?.try_into().map_err(|e| {
                InputError(format!("{label}: model: {}", kind_hint(&e, MODEL_KINDS)))
            })?;
            if let Some(extra) = table
                .keys()
                .find(|k| !["name", "density", "model"].contains(&k.as_str()))
            {
                return Err(InputError(format!(
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
    /// An [`InputError`] naming the case and the field.
    pub fn build(&self) -> Result<Vec<Case>, InputError> {
        if self.samples < 2 {
            return Err(InputError(format!(
                "samples: is {}; need at least 2 for a standard error (default {DEFAULT_SAMPLES})",
                self.samples
            )));
        }
        if self.cases.is_empty() {
            return Err(InputError(
                "no cases: add at least one [[case]] with name, density and model".into(),
            ));
        }
        let mut names = BTreeSet::new();
        let mut out = Vec::with_capacity(self.cases.len());
        for (i, spec) in self.cases.iter().enumerate() {
            let label = format!("case '{}' ([[case]] #{})", spec.name, i + 1);
            if spec.name.is_empty() {
                return Err(InputError(format!(
                    "{label}: name is empty; give each case a unique name"
                )));
            }
            if !names.insert(spec.name.as_str()) {
                return Err(InputError(format!(
                    "{label}: name is used twice; case names must be unique"
                )));
            }
            let density = spec
                .density
                .build()
                .map_err(|e| InputError(format!("{label}: density.{e}")))?;
            let model = spec
                .model
                .build(density.dim())
                .map_err(|e| InputError(format!("{label}: model.{e}")))?;
            if self.samples.saturating_mul(density.dim()) > MAX_VALUES {
                return Err(InputError(format!(
                    "{label}: samples × dim = {} × {} exceeds {MAX_VALUES} values per array; lower samples",
                    self.samples,
                    density.dim()
                )));
            }
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

const DENSITY_KINDS: &str = "gaussian, gaussian_mixture, banana, student_t, half_normal";
const MODEL_KINDS: &str = "linear, random_linear";

/// serde's message, with the valid kinds added when the kind itself is missing.
fn kind_hint(e: &toml::de::Error, kinds: &str) -> String {
    let msg = e.to_string().trim_end().to_string();
    if msg.contains("missing field `kind`") {
        format!("{msg}; kind is one of {kinds}")
    } else {
        msg
    }
}

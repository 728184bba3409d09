//! [`Network`]: any dfdx score network chosen at run time, its [`NetworkSpec`], and save/load in
//! the safetensors format.
//!
//! # File format
//! A `.safetensors` file (<https://github.com/huggingface/safetensors>): one little-endian F32
//! tensor per parameter block, named as [`Params::names`] gives (`layers.0.weight`, …; weights are
//! fan-in × fan-out, biases 1 × fan-out), plus one metadata entry `scorelab` holding the JSON of the
//! architecture, e.g. `{"format":1,"kind":"mlp","dim":2,"hidden":[64,64],"activation":"softplus"}`
//! (`tau` too for `energy_mlp`). Loading rebuilds the architecture from the metadata and rejects
//! any missing, extra or wrongly shaped tensor, naming it.

use crate::adam::Adam;
use crate::energy::EnergyMlp;
use crate::mlp::{Mlp, NoiseConditionalMlp};
use crate::net::{Activation, Bound, Dev, Outputs, Real, Tangents, T1, T2};
use crate::params::Params;
use crate::ModelError;
use dfdx::prelude::*;
use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use scorelab_core::{Dimension, ScoreFunction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The network kinds, as configs spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetworkKind {
    /// [`Mlp`] (with no hidden layers: the linear score).
    Mlp,
    /// [`NoiseConditionalMlp`].
    NoiseConditionalMlp,
    /// [`EnergyMlp`].
    EnergyMlp,
}

impl NetworkKind {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            NetworkKind::Mlp => "mlp",
            NetworkKind::NoiseConditionalMlp => "noise_conditional_mlp",
            NetworkKind::EnergyMlp => "energy_mlp",
        }
    }
}

/// A network's architecture: everything but its weights.
///
/// # Examples
/// ```
/// use scorelab_models::{Activation, NetworkKind, NetworkSpec};
/// let spec = NetworkSpec { kind: NetworkKind::EnergyMlp, dim: 2, hidden: vec![16],
///                          activation: Activation::Softplus, tau: Some(3.0), precondition: None };
/// let net = spec.build(1)?;
/// assert_eq!(net.spec(), spec);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkSpec {
    /// Which network.
    pub kind: NetworkKind,
    /// D.
    pub dim: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// The activation.
    pub activation: Activation,
    /// τ of the energy network's confining term (`energy_mlp` only).
    pub tau: Option<f64>,
    /// EDM's preconditioning (`noise_conditional_mlp` only; [`NoiseConditionalMlp`]).
    pub precondition: Option<Precondition>,
}

/// A network's preconditioning (Karras et al. 2022, Table 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Precondition {
    /// EDM's c_skip, c_out, c_in for data of standard deviation σ_d = `sigma_data`.
    Edm {
        /// σ_d > 0, in the network's units.
        sigma_data: f64,
    },
}

impl Precondition {
    /// The coefficients at noise level σ (see [`EdmCoefficients`]).
    pub fn at(&self, sigma: f64) -> EdmCoefficients {
        match *self {
            Precondition::Edm { sigma_data } => EdmCoefficients::new(sigma, sigma_data),
        }
    }
}

/// EDM's preconditioning at one σ, in score form. With D_θ(x; σ) = c_skip x + c_out F(c_in x),
/// c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/√(σ² + σ_d²), c_in = 1/√(σ² + σ_d²) (Karras et al. 2022,
/// Table 1) and s = (D − x)/σ² (Tweedie):
/// s(x, σ) = −x/(σ² + σ_d²) + σ_d c_in · F(c_in x)/σ,
/// where F/σ is what the plain noise-conditional network outputs. EDM's c_noise = ¼ ln σ is an
/// affine map of the network's own ln σ input, absorbed by its first layer.
///
/// # Examples
/// ```
/// let c = scorelab_models::EdmCoefficients::new(3.0, 4.0);
/// assert_eq!((c.c_in, c.skip), (0.2, 1.0 / 25.0));
/// // σ_d c_in σ = c_out: 4 · 0.2 · 3 = 12/5.
/// assert!((c.out * 3.0 - 2.4).abs() < 1e-15);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdmCoefficients {
    /// c_in = 1/√(σ² + σ_d²).
    pub c_in: f64,
    /// σ_d c_in: the factor on the plain network's output F/σ.
    pub out: f64,
    /// 1/(σ² + σ_d²): s has −x times this.
    pub skip: f64,
}

impl EdmCoefficients {
    /// The coefficients at σ for data of standard deviation σ_d.
    pub fn new(sigma: f64, sigma_data: f64) -> Self {
        let v = sigma * sigma + sigma_data * sigma_data;
        let c_in = 1.0 / v.sqrt();
        EdmCoefficients {
            c_in,
            out: sigma_data * c_in,
            skip: 1.0 / v,
        }
    }
}

impl NetworkSpec {
    /// A network of this architecture with weights drawn from `seed`.
    ///
    /// # Errors
    /// The constructor's [`ModelError`]; `tau` is required for `energy_mlp` and refused otherwise.
    pub fn build(&self, seed: u64) -> Result<Network, ModelError> {
        let (d, h, a) = (self.dim, &self.hidden[..], self.activation);
        if let Some(Precondition::Edm { sigma_data }) = self.precondition {
            if self.kind != NetworkKind::NoiseConditionalMlp {
                return Err(ModelError::invalid(
                    "precondition",
                    format!(
                        "only noise_conditional_mlp is preconditioned; remove it for {}",
                        self.kind.name()
                    ),
                ));
            }
            if !(sigma_data.is_finite() && sigma_data > 0.0) {
                return Err(ModelError::invalid(
                    "sigma_data",
                    format!("must be a finite number > 0, got {sigma_data}"),
                ));
            }
        }
        match (self.kind, self.tau) {
            (NetworkKind::Mlp, None) => Ok(Network::Mlp(Mlp::new(d, h, a, seed)?)),
            (NetworkKind::NoiseConditionalMlp, None) => Ok(Network::NoiseConditional(
                NoiseConditionalMlp::new(d, h, a, seed)?.with_precondition(self.precondition),
            )),
            (NetworkKind::EnergyMlp, Some(tau)) => {
                Ok(Network::Energy(EnergyMlp::new(d, h, a, tau, seed)?))
            }
            (NetworkKind::EnergyMlp, None) => Err(ModelError::invalid(
                "tau",
                "energy_mlp needs tau, the width of its confining term ‖x‖²/(2τ²)",
            )),
            (kind, Some(_)) => Err(ModelError::invalid(
                "tau",
                format!("only energy_mlp has tau; remove it for {}", kind.name()),
            )),
        }
    }

    /// A lower bound on the weights this architecture has (Σ of fan-in × fan-out over
    /// D → hidden… → 1), `None` if it overflows: what a file must at least hold before its
    /// metadata is believed and the network allocated.
    fn min_scalars(&self) -> Option<usize> {
        let widths: Vec<usize> = std::iter::once(self.dim)
            .chain(self.hidden.iter().copied())
            .chain(std::iter::once(1))
            .collect();
        widths
            .windows(2)
            .try_fold(0usize, |acc, w| acc.checked_add(w[0].checked_mul(w[1])?))
    }

    /// Refuses metadata that claims more weights than the file holds, before anything of that
    /// size is allocated (a header saying `dim = 1e12` must not abort the process).
    fn check_against(&self, path: &Path, blocks: &Blocks) -> Result<(), LoadError> {
        let held: usize = blocks.values().map(|(_, d)| d.len()).sum();
        match self.min_scalars() {
            Some(n) if n <= held => Ok(()),
            claimed => Err(LoadError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "the metadata claims an architecture (dim {}, hidden {:?}) of {} weights but the file holds {held}; the file is damaged or not a scorelab model",
                    self.dim,
                    self.hidden,
                    claimed.map_or("more than 2^64".to_string(), |n| format!("at least {n}"))
                ),
            }),
        }
    }

    fn to_json(&self) -> String {
        let mut v = serde_json::json!({
            "format": 1,
            "kind": self.kind.name(),
            "dim": self.dim,
            "hidden": self.hidden,
            "activation": self.activation.name(),
        });
        if let Some(t) = self.tau {
            v["tau"] = serde_json::json!(t);
        }
        if let Some(Precondition::Edm { sigma_data }) = self.precondition {
            v["precondition"] = serde_json::json!({"kind": "edm", "sigma_data": sigma_data});
        }
        v.to_string()
    }

    fn from_json(s: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(s).map_err(|e| e.to_string())?;
        let kind = match v["kind"].as_str() {
            Some("mlp") => NetworkKind::Mlp,
            Some("noise_conditional_mlp") => NetworkKind::NoiseConditionalMlp,
            Some("energy_mlp") => NetworkKind::EnergyMlp,
            other => return Err(format!("unknown kind {other:?}")),
        };
        let dim = v["dim"].as_u64().ok_or("missing dim")? as usize;
        let hidden = v["hidden"]
            .as_array()
            .ok_or("missing hidden")?
            .iter()
            .map(|h| {
                h.as_u64()
                    .map(|h| h as usize)
                    .ok_or("hidden widths must be integers")
            })
            .collect::<Result<Vec<_>, _>>()?;
        let activation = v["activation"]
            .as_str()
            .ok_or("missing activation")?
            .parse()?;
        let tau = v.get("tau").and_then(|t| t.as_f64());
        let precondition = match v.get("precondition") {
            None => None,
            Some(p) => match (p["kind"].as_str(), p["sigma_data"].as_f64()) {
                (Some("edm"), Some(sigma_data)) => Some(Precondition::Edm { sigma_data }),
                _ => return Err(format!("unknown precondition {p}")),
            },
        };
        Ok(NetworkSpec {
            kind,
            dim,
            hidden,
            activation,
            tau,
            precondition,
        })
    }
}

/// Any dfdx score network.
#[derive(Debug, Clone, PartialEq)]
pub enum Network {
    /// [`Mlp`].
    Mlp(Mlp),
    /// [`NoiseConditionalMlp`].
    NoiseConditional(NoiseConditionalMlp),
    /// [`EnergyMlp`].
    Energy(EnergyMlp),
}

impl Network {
    /// The architecture.
    pub fn spec(&self) -> NetworkSpec {
        match self {
            Network::Mlp(m) => NetworkSpec {
                kind: NetworkKind::Mlp,
                dim: m.dim(),
                hidden: m.hidden().to_vec(),
                activation: m.activation(),
                tau: None,
                precondition: None,
            },
            Network::NoiseConditional(m) => NetworkSpec {
                kind: NetworkKind::NoiseConditionalMlp,
                dim: m.dim(),
                hidden: m.hidden().to_vec(),
                activation: m.activation(),
                tau: None,
                precondition: m.precondition(),
            },
            Network::Energy(m) => NetworkSpec {
                kind: NetworkKind::EnergyMlp,
                dim: m.dim(),
                hidden: m.hidden().to_vec(),
                activation: m.activation(),
                tau: Some(m.tau()),
                precondition: None,
            },
        }
    }

    /// Whether the score takes σ as well as x.
    pub fn is_noise_conditional(&self) -> bool {
        matches!(self, Network::NoiseConditional(_))
    }

    /// θ.
    pub fn params(&self) -> &Params {
        match self {
            Network::Mlp(m) => m.params(),
            Network::NoiseConditional(m) => m.params(),
            Network::Energy(m) => m.params(),
        }
    }

    /// θ, mutable.
    pub fn params_mut(&mut self) -> &mut Params {
        match self {
            Network::Mlp(m) => m.params_mut(),
            Network::NoiseConditional(m) => m.params_mut(),
            Network::Energy(m) => m.params_mut(),
        }
    }

    /// The forward on bound parameters; `sigma` (`(B,)`) is required by, and only used by, the
    /// noise-conditional network.
    ///
    /// # Panics
    /// If the network is noise-conditional and `sigma` is `None` (a caller bug: configs are
    /// validated before training).
    pub fn forward<E: Real, T: Tape<E, Dev>>(
        &self,
        p: &Bound<E>,
        x: T2<E, T>,
        sigma: Option<&T1<E>>,
        tangents: &Tangents<E>,
    ) -> Outputs<E, T>
    where
        Dev: Device<E>,
    {
        match self {
            Network::Mlp(m) => m.forward(p, x, tangents),
            Network::Energy(m) => m.forward(p, x, tangents),
            Network::NoiseConditional(m) => m.forward(
                p,
                x,
                sigma.expect("a noise-conditional network needs σ"),
                tangents,
            ),
        }
    }

    /// The f64 door at noise level `sigma`: required for a noise-conditional network, refused
    /// otherwise.
    ///
    /// # Errors
    /// A [`ModelError`] naming `sigma`.
    pub fn score_function(
        &self,
        sigma: Option<f64>,
    ) -> Result<Box<dyn ScoreFunction + '_>, ModelError> {
        check_sigma(self.spec().kind, sigma)?;
        Ok(match (self, sigma) {
            (Network::Mlp(m), _) => Box::new(m.clone()),
            (Network::Energy(m), _) => Box::new(m.clone()),
            (Network::NoiseConditional(m), Some(s)) => Box::new(m.at(s)),
            (Network::NoiseConditional(_), None) => unreachable!("checked: σ is given"),
        })
    }

    /// Writes θ to `path` in the documented safetensors format (module docs), whole or not at all
    /// ([`scorelab_core::fsio::write_atomic`]).
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        self.save_with(path, &[])
    }

    /// [`Network::save`] with further string fields `(key, value)` in the `scorelab` metadata
    /// JSON beside the architecture (a model folder records the checksum of its data transform
    /// this way). The JSON's keys are sorted, so the same network writes the same bytes.
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save_with(&self, path: &Path, extra: &[(&str, String)]) -> Result<(), LoadError> {
        let mut meta: serde_json::Value =
            serde_json::from_str(&self.spec().to_json()).expect("the spec is JSON");
        for (k, v) in extra {
            meta[*k] = serde_json::Value::String(v.clone());
        }
        write_blocks(path, meta.to_string(), &[("", self.params())])
    }

    /// Reads a network written by [`Network::save`].
    ///
    /// # Errors
    /// A [`LoadError`] naming the file and, for a wrong shape, the tensor and both shapes.
    pub fn load(path: &Path) -> Result<Network, LoadError> {
        Self::load_with(path).map(|(net, _)| net)
    }

    /// [`Network::load`], with the string fields of the file's metadata JSON (those given to
    /// [`Network::save_with`], and the architecture's `kind` and `activation`).
    ///
    /// # Errors
    /// As [`Network::load`].
    pub fn load_with(path: &Path) -> Result<(Network, HashMap<String, String>), LoadError> {
        let (meta, mut blocks) = load_blocks(path)?;
        let fields: HashMap<String, String> = serde_json::from_str::<serde_json::Value>(&meta)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .map(|o| {
                o.into_iter()
                    .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        let spec = NetworkSpec::from_json(&meta).map_err(|message| LoadError::Format {
            path: path.to_path_buf(),
            message: format!("bad architecture metadata: {message}"),
        })?;
        spec.check_against(path, &blocks)?;
        let mut net = spec.build(0).map_err(|e| LoadError::Format {
            path: path.to_path_buf(),
            message: format!("bad architecture metadata: {e}"),
        })?;
        fill_params(path, &spec, "", net.params_mut(), &mut blocks)?;
        if let Some(extra) = blocks.keys().min() {
            return Err(LoadError::Format {
                path: path.to_path_buf(),
                message: format!("unexpected tensor {extra:?} for this architecture"),
            });
        }
        Ok((net, fields))
    }
}

/// Whether `sigma` fits a network of `kind`: required (positive and finite) for a
/// noise-conditional network, refused otherwise. The one check of the f64 door and the f32
/// inference path.
///
/// # Errors
/// A [`ModelError`] naming `sigma`.
pub(crate) fn check_sigma(kind: NetworkKind, sigma: Option<f64>) -> Result<(), ModelError> {
    match (kind, sigma) {
        (NetworkKind::NoiseConditionalMlp, Some(s)) if s > 0.0 && s.is_finite() => Ok(()),
        (NetworkKind::NoiseConditionalMlp, Some(s)) => Err(ModelError::invalid(
            "sigma",
            format!("must be positive and finite, got {s}"),
        )),
        (NetworkKind::NoiseConditionalMlp, None) => Err(ModelError::invalid(
            "sigma",
            "this model is noise-conditional: give the noise level σ (--sigma)",
        )),
        (_, Some(_)) => Err(ModelError::invalid(
            "sigma",
            "this model is not noise-conditional: drop σ (--sigma)",
        )),
        (_, None) => Ok(()),
    }
}

/// Why a saved network or training state could not be read (or written).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a scorelab safetensors file, or its metadata is unusable.
    #[error("{path}: {message}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor's shape does not match the architecture.
    #[error("{path}: tensor {tensor:?} has shape {found:?} but the architecture ({arch}) needs {expected:?}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// The tensor name.
        tensor: String,
        /// Its shape in the file.
        found: Vec<usize>,
        /// The shape the architecture needs.
        expected: Vec<usize>,
        /// The architecture, in words.
        arch: String,
    },
}

type Blocks = HashMap<String, (Vec<usize>, Vec<f32>)>;

/// The safetensors bytes of named f32 blocks (`prefix` + block name) with the one metadata entry
/// `scorelab` = `meta` (one entry only: safetensors writes its metadata map in hash order, so two
/// entries would make the bytes differ from run to run).
pub(crate) fn serialize_blocks(
    path: &Path,
    meta: String,
    groups: &[(&str, &Params)],
) -> Result<Vec<u8>, LoadError> {
    let bytes = block_bytes(groups);
    let views = bytes
        .iter()
        .map(|(n, s, d)| {
            TensorView::new(StDtype::F32, s.clone(), d)
                .map(|v| (n.clone(), v))
                .map_err(|e| LoadError::Format {
                    path: path.to_path_buf(),
                    message: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta = HashMap::from([("scorelab".to_string(), meta)]);
    safetensors::serialize(views, &Some(meta)).map_err(|e| LoadError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// [`serialize_blocks`] written to `path` whole or not at all
/// ([`scorelab_core::fsio::write_atomic`]).
pub(crate) fn write_blocks(
    path: &Path,
    meta: String,
    groups: &[(&str, &Params)],
) -> Result<(), LoadError> {
    let bytes = serialize_blocks(path, meta, groups)?;
    scorelab_core::fsio::write_atomic(path, &bytes).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Every block as (name, shape, little-endian bytes), in the order of `groups`.
fn block_bytes(groups: &[(&str, &Params)]) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let mut bytes = Vec::new();
    for (prefix, params) in groups {
        for ((name, &(r, c)), v) in params
            .names()
            .iter()
            .zip(params.shapes())
            .zip(params.values())
        {
            let data = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            bytes.push((format!("{prefix}{name}"), vec![r, c], data));
        }
    }
    bytes
}

/// Reads every F32 block and the `scorelab` metadata string.
pub(crate) fn load_blocks(path: &Path) -> Result<(String, Blocks), LoadError> {
    let format = |message: String| LoadError::Format {
        path: path.to_path_buf(),
        message,
    };
    if let Some(what) = scorelab_core::fsio::non_regular(path) {
        return Err(format(format!("is {what}, not a file written by scorelab")));
    }
    let buf = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let (_, metadata) = SafeTensors::read_metadata(&buf)
        .map_err(|e| format(format!("not a safetensors file ({e})")))?;
    let meta = metadata
        .metadata()
        .as_ref()
        .and_then(|m| m.get("scorelab"))
        .cloned()
        .ok_or_else(|| format("no `scorelab` metadata: not written by scorelab".into()))?;
    let st = SafeTensors::deserialize(&buf).map_err(|e| format(e.to_string()))?;
    let mut blocks = Blocks::new();
    for (name, view) in st.tensors() {
        if view.dtype() != StDtype::F32 {
            return Err(format(format!(
                "tensor {name:?} is {:?}, not F32",
                view.dtype()
            )));
        }
        let data = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        blocks.insert(name, (view.shape().to_vec(), data));
    }
    Ok((meta, blocks))
}

/// Moves the blocks `prefix` + name of `params` out of `blocks` into `params`, checking shapes.
pub(crate) fn fill_params(
    path: &Path,
    spec: &NetworkSpec,
    prefix: &str,
    params: &mut Params,
    blocks: &mut Blocks,
) -> Result<(), LoadError> {
    let names = params.names().to_vec();
    let shapes = params.shapes().to_vec();
    for (i, (name, (r, c))) in names.iter().zip(shapes).enumerate() {
        let key = format!("{prefix}{name}");
        let (shape, data) = blocks.remove(&key).ok_or_else(|| LoadError::Format {
            path: path.to_path_buf(),
            message: format!("missing tensor {key:?}"),
        })?;
        if shape != [r, c] {
            return Err(LoadError::Shape {
                path: path.to_path_buf(),
                tensor: key,
                found: shape,
                expected: vec![r, c],
                arch: describe(spec),
            });
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(LoadError::Format {
                path: path.to_path_buf(),
                message: format!("tensor {key:?} has a non-finite value"),
            });
        }
        params.values_mut()[i] = data;
    }
    Ok(())
}

fn describe(spec: &NetworkSpec) -> String {
    let mut s = format!(
        "{} with dim {}, hidden {:?}, activation {}",
        spec.kind.name(),
        spec.dim,
        spec.hidden,
        spec.activation
    );
    if let Some(t) = spec.tau {
        s.push_str(&format!(", tau {t}"));
    }
    s
}

/// What resuming a run needs besides the weights: Adam's moments and step count, the EMA, the
/// step and the training RNG's position. It is saved with the raw weights as one [`Checkpoint`].
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingState {
    /// The optimiser.
    pub adam: Adam,
    /// The weight average, if used.
    pub ema: Option<crate::adam::Ema>,
    /// Steps finished.
    pub step: u64,
    /// The training RNG's position (`ChaCha8Rng::get_word_pos`), so a resumed run draws what an
    /// uninterrupted run would have.
    pub rng_word_pos: u128,
}

/// Everything a training run needs to continue, in **one** safetensors file: the raw weights
/// (`raw.*`), Adam's moments (`adam.m.*`, `adam.v.*`), the EMA (`ema.*`, if used), and in the
/// metadata JSON the step, Adam's step count and learning rate, the EMA decay, the RNG position,
/// the caller's `notes` (a run folder keeps its `loss.csv` there), and a SHA-256 `checksum` over
/// the rest of the metadata and every tensor's name, shape and bytes.
///
/// One file written by [`scorelab_core::fsio::write_atomic`] (temporary file, fsync, rename,
/// fsync of the folder) cannot be torn: it is the old checkpoint or the new one. [`Checkpoint::load`]
/// refuses a file whose checksum does not verify, so a damaged checkpoint is never resumed.
///
/// # Examples
/// ```
/// use scorelab_models::{Activation, Adam, Checkpoint, Mlp, Network, TrainingState};
/// let net = Network::Mlp(Mlp::new(2, &[4], Activation::Tanh, 0)?);
/// let state = TrainingState { adam: Adam::new(net.params(), 1e-3)?, ema: None, step: 7, rng_word_pos: 42 };
/// let ckpt = Checkpoint { raw: net, state, notes: "step\n0\n".into() };
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("checkpoint.safetensors");
/// ckpt.save(&path)?;
/// assert_eq!(Checkpoint::load(&path)?, ckpt);
/// // One flipped byte and the file is refused.
/// let mut bytes = std::fs::read(&path)?;
/// let last = bytes.len() - 1;
/// bytes[last] ^= 1;
/// std::fs::write(&path, bytes)?;
/// assert!(Checkpoint::load(&path).unwrap_err().to_string().contains("checksum"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    /// The network with its raw (optimised, not averaged) weights.
    pub raw: Network,
    /// The optimiser, EMA, step and RNG position.
    pub state: TrainingState,
    /// Text the caller keeps with the checkpoint (covered by the checksum).
    pub notes: String,
}

/// The checksum of a checkpoint: SHA-256 over the metadata JSON, then every tensor in name order
/// as its name, a zero byte, its shape (u64 little-endian each) and its bytes.
fn checksum(meta: &str, tensors: &mut [(String, Vec<usize>, Vec<u8>)]) -> String {
    use sha2::{Digest, Sha256};
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut h = Sha256::new();
    h.update(meta.as_bytes());
    for (name, shape, data) in tensors.iter() {
        h.update(name.as_bytes());
        h.update([0u8]);
        for &d in shape {
            h.update((d as u64).to_le_bytes());
        }
        h.update(data);
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl Checkpoint {
    fn groups(&self) -> (Params, Params) {
        let as_params = |blocks: &[Vec<f32>]| {
            let mut p = self.raw.params().clone();
            for (dst, src) in p.values_mut().iter_mut().zip(blocks) {
                dst.clone_from(src);
            }
            p
        };
        let (m, v) = self.state.adam.moments();
        (as_params(m), as_params(v))
    }

    /// Writes the checkpoint to `path`, whole or not at all (type docs).
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        let (m, v) = self.groups();
        let mut groups = vec![
            ("raw.", self.raw.params()),
            ("adam.m.", &m),
            ("adam.v.", &v),
        ];
        if let Some(e) = &self.state.ema {
            groups.push(("ema.", e.params()));
        }
        let s = &self.state;
        let mut meta = serde_json::json!({
            "format": 2,
            "kind": "checkpoint",
            "architecture": self.raw.spec().to_json(),
            "step": s.step,
            "adam_steps": s.adam.steps(),
            "lr": s.adam.lr(),
            "ema_decay": s.ema.as_ref().map(|e| e.decay()),
            "rng_word_pos": s.rng_word_pos.to_string(),
            "notes": self.notes,
        });
        meta["checksum"] = checksum(&meta.to_string(), &mut block_bytes(&groups)).into();
        write_blocks(path, meta.to_string(), &groups)
    }

    /// Reads and verifies a checkpoint written by [`Checkpoint::save`].
    ///
    /// # Errors
    /// A [`LoadError`] naming the file: unreadable, not a checkpoint, or a checksum that does not
    /// verify (the file was damaged or changed after it was written).
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let format = |message: String| LoadError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (meta, mut blocks) = load_blocks(path)?;
        let mut v: serde_json::Value =
            serde_json::from_str(&meta).map_err(|e| format(format!("bad metadata: {e}")))?;
        let stated = match v.as_object_mut().and_then(|o| o.remove("checksum")) {
            Some(serde_json::Value::String(s)) => s,
            _ => return Err(format(
                "no checksum: not a checkpoint of this scorelab (an older one wrote checkpoint/state.safetensors); rerun with --force".into(),
            )),
        };
        let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = blocks
            .iter()
            .map(|(n, (s, d))| {
                (
                    n.clone(),
                    s.clone(),
                    d.iter().flat_map(|x| x.to_le_bytes()).collect(),
                )
            })
            .collect();
        if stated != checksum(&v.to_string(), &mut tensors) {
            return Err(format(
                "the checksum does not verify: the checkpoint was damaged or changed after it was written, so it is not resumed; rerun with --force to start over".into(),
            ));
        }
        if v["kind"].as_str() != Some("checkpoint") {
            return Err(format("not a checkpoint".into()));
        }
        let spec = NetworkSpec::from_json(v["architecture"].as_str().unwrap_or_default())
            .map_err(|m| format(format!("bad architecture metadata: {m}")))?;
        spec.check_against(path, &blocks)?;
        let mut raw = spec
            .build(0)
            .map_err(|e| format(format!("bad architecture metadata: {e}")))?;
        fill_params(path, &spec, "raw.", raw.params_mut(), &mut blocks)?;
        let num = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| format(format!("metadata lacks {k}")))
        };
        let step = num("step")?;
        let adam_steps = num("adam_steps")?;
        let lr = v["lr"]
            .as_f64()
            .ok_or_else(|| format("metadata lacks lr".into()))?;
        let rng_word_pos = v["rng_word_pos"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format("metadata lacks rng_word_pos".into()))?;
        let notes = v["notes"].as_str().unwrap_or_default().to_string();
        let mut m = raw.params().clone();
        let mut vv = raw.params().clone();
        fill_params(path, &spec, "adam.m.", &mut m, &mut blocks)?;
        fill_params(path, &spec, "adam.v.", &mut vv, &mut blocks)?;
        let mut adam =
            Adam::new(raw.params(), lr).map_err(|e| format(format!("bad metadata: {e}")))?;
        adam.restore(m.values().to_vec(), vv.values().to_vec(), adam_steps);
        let ema = match v["ema_decay"].as_f64() {
            Some(decay) => {
                let mut e = crate::adam::Ema::new(raw.params(), decay)
                    .map_err(|e| format(format!("bad metadata: {e}")))?;
                fill_params(path, &spec, "ema.", e.params_mut(), &mut blocks)?;
                Some(e)
            }
            None => None,
        };
        if let Some(extra) = blocks.keys().min() {
            return Err(format(format!("unexpected tensor {extra:?}")));
        }
        Ok(Checkpoint {
            raw,
            state: TrainingState {
                adam,
                ema,
                step,
                rng_word_pos,
            },
            notes,
        })
    }
}

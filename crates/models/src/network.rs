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
///                          activation: Activation::Softplus, tau: Some(3.0) };
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
}

impl NetworkSpec {
    /// A network of this architecture with weights drawn from `seed`.
    ///
    /// # Errors
    /// The constructor's [`ModelError`]; `tau` is required for `energy_mlp` and refused otherwise.
    pub fn build(&self, seed: u64) -> Result<Network, ModelError> {
        let (d, h, a) = (self.dim, &self.hidden[..], self.activation);
        match (self.kind, self.tau) {
            (NetworkKind::Mlp, None) => Ok(Network::Mlp(Mlp::new(d, h, a, seed)?)),
            (NetworkKind::NoiseConditionalMlp, None) => Ok(Network::NoiseConditional(
                NoiseConditionalMlp::new(d, h, a, seed)?,
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
        Ok(NetworkSpec {
            kind,
            dim,
            hidden,
            activation,
            tau,
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
            },
            Network::NoiseConditional(m) => NetworkSpec {
                kind: NetworkKind::NoiseConditionalMlp,
                dim: m.dim(),
                hidden: m.hidden().to_vec(),
                activation: m.activation(),
                tau: None,
            },
            Network::Energy(m) => NetworkSpec {
                kind: NetworkKind::EnergyMlp,
                dim: m.dim(),
                hidden: m.hidden().to_vec(),
                activation: m.activation(),
                tau: Some(m.tau()),
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
        match (self, sigma) {
            (Network::Mlp(m), None) => Ok(Box::new(m.clone())),
            (Network::Energy(m), None) => Ok(Box::new(m.clone())),
            (Network::NoiseConditional(m), Some(s)) if s > 0.0 && s.is_finite() => {
                Ok(Box::new(m.at(s)))
            }
            (Network::NoiseConditional(_), Some(s)) => Err(ModelError::invalid(
                "sigma",
                format!("must be positive and finite, got {s}"),
            )),
            (Network::NoiseConditional(_), None) => Err(ModelError::invalid(
                "sigma",
                "this model is noise-conditional: give the noise level σ (--sigma)",
            )),
            (_, Some(_)) => Err(ModelError::invalid(
                "sigma",
                "this model is not noise-conditional: drop σ (--sigma)",
            )),
        }
    }

    /// Writes θ to `path` in the documented safetensors format (module docs).
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path) -> Result<(), LoadError> {
        save_blocks(path, &self.spec().to_json(), &[("", self.params())])
    }

    /// Reads a network written by [`Network::save`].
    ///
    /// # Errors
    /// A [`LoadError`] naming the file and, for a wrong shape, the tensor and both shapes.
    pub fn load(path: &Path) -> Result<Network, LoadError> {
        let (meta, mut blocks) = load_blocks(path)?;
        let spec = NetworkSpec::from_json(&meta).map_err(|message| LoadError::Format {
            path: path.to_path_buf(),
            message: format!("bad architecture metadata: {message}"),
        })?;
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
        Ok(net)
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

/// Writes named f32 blocks (`prefix` + block name) and one JSON metadata string, through a
/// temporary file renamed into place.
pub(crate) fn save_blocks(
    path: &Path,
    meta: &str,
    groups: &[(&str, &Params)],
) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
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
    let info = Some(HashMap::from([("scorelab".to_string(), meta.to_string())]));
    let buf = safetensors::serialize(views, &info).map_err(|e| LoadError::Format {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let tmp = path.with_extension("safetensors.tmp");
    std::fs::write(&tmp, buf).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Reads every F32 block and the `scorelab` metadata string.
pub(crate) fn load_blocks(path: &Path) -> Result<(String, Blocks), LoadError> {
    let format = |message: String| LoadError::Format {
        path: path.to_path_buf(),
        message,
    };
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

/// What resuming a run needs besides the weights: Adam's moments and step count and the EMA.
///
/// # Examples
/// ```
/// use scorelab_models::{Activation, Adam, Ema, Mlp, Network, TrainingState};
/// let net = Network::Mlp(Mlp::new(2, &[4], Activation::Tanh, 0)?);
/// let state = TrainingState { adam: Adam::new(net.params(), 1e-3)?, ema: None, step: 0, rng_word_pos: 0 };
/// let dir = std::env::temp_dir().join(format!("scorelab-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// state.save(&dir.join("state.safetensors"), &net)?;
/// let back = TrainingState::load(&dir.join("state.safetensors"), &net)?;
/// assert_eq!(back.step, 0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
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

impl TrainingState {
    /// Writes the state (for `net`'s architecture) to `path`.
    ///
    /// # Errors
    /// A [`LoadError::Io`] if the file cannot be written.
    pub fn save(&self, path: &Path, net: &Network) -> Result<(), LoadError> {
        let as_params = |blocks: &[Vec<f32>]| {
            let mut p = net.params().clone();
            for (dst, src) in p.values_mut().iter_mut().zip(blocks) {
                dst.clone_from(src);
            }
            p
        };
        let (m, v) = self.adam.moments();
        let (m, v) = (as_params(m), as_params(v));
        let mut groups = vec![("adam.m.", &m), ("adam.v.", &v)];
        if let Some(e) = &self.ema {
            groups.push(("ema.", e.params()));
        }
        let meta = serde_json::json!({
            "format": 1,
            "architecture": net.spec().to_json(),
            "step": self.step,
            "adam_steps": self.adam.steps(),
            "lr": self.adam.lr(),
            "ema_decay": self.ema.as_ref().map(|e| e.decay()),
            "rng_word_pos": self.rng_word_pos.to_string(),
        });
        save_blocks(path, &meta.to_string(), &groups)
    }

    /// Reads a state written by [`TrainingState::save`] for `net`'s architecture.
    ///
    /// # Errors
    /// A [`LoadError`] if the file is unreadable or was written for another architecture.
    pub fn load(path: &Path, net: &Network) -> Result<Self, LoadError> {
        let format = |message: String| LoadError::Format {
            path: path.to_path_buf(),
            message,
        };
        let (meta, mut blocks) = load_blocks(path)?;
        let v: serde_json::Value =
            serde_json::from_str(&meta).map_err(|e| format(format!("bad metadata: {e}")))?;
        let spec = net.spec();
        if v["architecture"].as_str() != Some(spec.to_json().as_str()) {
            return Err(format(format!(
                "the training state is for another architecture ({}), not {}",
                v["architecture"],
                describe(&spec)
            )));
        }
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
        let mut m = net.params().clone();
        let mut vv = net.params().clone();
        fill_params(path, &spec, "adam.m.", &mut m, &mut blocks)?;
        fill_params(path, &spec, "adam.v.", &mut vv, &mut blocks)?;
        let mut adam =
            Adam::new(net.params(), lr).map_err(|e| format(format!("bad metadata: {e}")))?;
        adam.restore(m.values().to_vec(), vv.values().to_vec(), adam_steps);
        let ema = match v["ema_decay"].as_f64() {
            Some(decay) => {
                let mut e = crate::adam::Ema::new(net.params(), decay)
                    .map_err(|e| format(format!("bad metadata: {e}")))?;
                fill_params(path, &spec, "ema.", e.params_mut(), &mut blocks)?;
                Some(e)
            }
            None => None,
        };
        Ok(TrainingState {
            adam,
            ema,
            step,
            rng_word_pos,
        })
    }
}

//! # scorelab-studies: the paper's experiments as typed studies
//!
//! Each experiment of the paper is a TOML file whose `kind` names a [`Study`]: a typed config that
//! lists its units of work (a seed of a case, a data set, a fit), runs each into tables of typed
//! rows, and turns every unit's tables into its files: `NAME.csv` (every seed), `NAME_summary.csv`
//! (mean and sd over seeds) and `NAME_x.csv` for the extra tables. Because the units are listed,
//! every study runs whole or in shards on a cluster ([`study::run_shard`], [`study::gather`]), and
//! the gathered files are the whole run's, byte for byte. One kind per module:
//!
//! - `kind = "samplers"` ([`samplers`]): sampler runs on a shared `[base]`, on exact scores or on
//!   networks trained first, evaluated by the metric bundle;
//! - `kind = "noise"` ([`noise`]): single-σ DSM at each σ, errors to the clean and noised scores,
//!   binned by the distance from the data;
//! - `kind = "density_fit"` ([`density_fit`]): energy networks on 2-D data, held-out likelihood with
//!   Z_θ by quadrature, against a KDE and a Gaussian;
//! - `kind = "image_fit"` ([`image_fit`]): score networks on images, sampled and compared with
//!   held-out images;
//! - `kind = "image_likelihood"` ([`image_likelihood`]): held-out bits/dim of a noise-conditional
//!   network on integer images through its probability-flow ODE, exact and Hutchinson, against a
//!   Gaussian and independent pixels;
//! - `kind = "likelihood_accuracy"` ([`likelihood`]): the probability-flow ODE's log-likelihood
//!   against closed forms, Hutchinson against the exact divergence, the 2-D normalisation of an
//!   untrained network's density, and the cost of each divergence;
//! - `kind = "classifier"` ([`classifier`]): the digit metric's classifier, trained once on a
//!   fixed three-way split (training, reference and floor sets) and saved with the results;
//! - `kind = "inpaint"` ([`inpaint`]): held-out digits completed from part of their pixels by a
//!   trained network and a grid sampler that keeps the known pixels at their noise level, judged
//!   by the classifier's accuracy;
//! - `kind = "toy_zoo"` ([`toy_zoo`]): one noise-conditional network per 2-D toy data set of
//!   FFJORD's, sampled, with held-out NLL through the ODE, MMD² and (where p is closed form)
//!   KL(p ‖ p_θ) by quadrature;
//! - `kind = "solvers"` ([`solvers`]): every sampler × grid × schedule at a sweep of budgets on
//!   exact Gaussian-mixture scores, with the flow-map error, the distributional error and the
//!   prior mismatch kept apart;
//! - `kind = "guidance"` ([`guidance`]): classifier-free guidance on exact class-conditional
//!   mixtures against the tilted law p(x|c)^{1+w} p(x)^{−w} it is said to sample: KL of the exact
//!   guided ODE's law, mode weights and spreads of every sampler.
//!
//! Each kind calls the pipeline in-process: networks are trained by
//! [`scorelab_pipeline::train::train_in`] into the context's models folder (folders
//! `scorelab sample` can use) and used from memory. Ctrl-C stops after the current unit of work
//! (or sooner, keeping the rows finished). The `scorelab` command line reads and writes the files;
//! this crate reads nothing but the experiment's inputs and writes nothing but networks.
//!
//! From Rust, an experiment file is one call away (this runs the reduced-size noise study of the
//! paper: three σ, one seed):
//!
//! ```no_run
//! use scorelab_studies::{study, Context, Experiment};
//! use std::path::Path;
//! use std::sync::atomic::AtomicBool;
//! let e = Experiment::load(Path::new("paper/experiments/noise_tradeoff.toml"), true)?;
//! let stop = AtomicBool::new(false);
//! let tables = study::run_serial(e.file.study(), &mut Context::new(Path::new("/tmp/models"), &stop))?
//!     .expect("not stopped");
//! print!("{}", tables.get("summary").unwrap().to_csv());
//! # Ok::<(), anyhow::Error>(())
//! ```
#![warn(missing_docs)]

pub mod classifier;
pub mod density_fit;
pub mod guidance;
pub mod image_fit;
pub mod image_likelihood;
pub mod inpaint;
pub mod likelihood;
pub mod noise;
pub mod samplers;
pub mod shared;
pub mod solvers;
pub mod study;
pub mod toy_zoo;

pub use shared::{deep_merge, Overrides, TrainRef};
pub use study::{Context, Study, Table, Tables, Unit};

use anyhow::Result;
use scorelab_pipeline::PipelineError;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// An input error (exit code 2 on the command line) with this message.
pub(crate) fn bad(msg: impl Into<String>) -> PipelineError {
    PipelineError::Input(msg.into())
}

/// An experiment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExperimentFile {
    /// Sampler comparisons.
    Samplers(samplers::SamplersExperiment),
    /// The noise trade-off and low coverage.
    Noise(noise::NoiseExperiment),
    /// An energy network fitted to 2-D data, scored by held-out likelihood.
    DensityFit(density_fit::DensityFitExperiment),
    /// Score networks fitted to images, sampled and compared with held-out images.
    ImageFit(image_fit::ImageFitExperiment),
    /// Held-out bits/dim of a noise-conditional network on integer images through its ODE.
    ImageLikelihood(image_likelihood::ImageLikelihoodExperiment),
    /// The probability-flow ODE's likelihood against closed forms, Hutchinson, the 2-D
    /// normalisation and the cost.
    LikelihoodAccuracy(likelihood::LikelihoodAccuracyExperiment),
    /// One noise-conditional network per 2-D toy data set: NLL through the ODE, MMD², KL.
    ToyZoo(toy_zoo::ToyZooExperiment),
    /// The digit metric's classifier on a fixed three-way split.
    Classifier(classifier::ClassifierExperiment),
    /// Digits completed from part of their pixels.
    Inpaint(inpaint::InpaintExperiment),
    /// Every sampler × grid × schedule on exact mixtures: flow-map, distributional and prior error.
    Solvers(solvers::SolversExperiment),
    /// What classifier-free guidance samples, against the tilted law, on exact mixtures.
    Guidance(guidance::GuidanceExperiment),
}

/// An experiment read from its file: the typed study, the config as run (its `[quick]` table
/// merged when asked), and its name (the file's stem).
pub struct Experiment {
    /// The typed study.
    pub file: ExperimentFile,
    /// The config as run: the file's table with `[quick]` merged when asked and removed.
    pub written: toml::Table,
    /// The file's stem: the results are `NAME.csv`, `NAME_summary.csv`, ….
    pub name: String,
}

/// The experiment's name: the config's file stem.
fn name_of(path: &Path) -> Result<String, PipelineError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .ok_or_else(|| bad(format!("--config {}: needs a file name", path.display())))
}

impl Experiment {
    /// Reads an experiment file, its `[quick]` table merged over it when `quick` (the
    /// reduced-size run of `reproduce --quick`), and checks it ([`Study::check`]).
    ///
    /// # Errors
    /// An input error naming the file and the key.
    pub fn load(config: &Path, quick: bool) -> Result<Self> {
        let e = Self::read(config, quick)?;
        e.file
            .study()
            .check()
            .map_err(|err| bad(format!("experiment {}: {err:#}", config.display())))?;
        Ok(e)
    }

    fn read(config: &Path, quick: bool) -> Result<Self> {
        let mut written: toml::Table = scorelab_pipeline::files::read_toml(config)?;
        let quick_table = match written.remove("quick") {
            None => None,
            Some(toml::Value::Table(t)) => Some(t),
            Some(_) => {
                return Err(bad(format!(
                    "experiment {}: quick: must be a table of the keys a quick run changes",
                    config.display()
                ))
                .into())
            }
        };
        if quick {
            if let Some(q) = &quick_table {
                deep_merge(&mut written, q);
            }
        }
        // A repeated seed or data set would count one run twice (an sd of 0, twice the rows) or send
        // two runs into one model folder.
        for key in ["seeds", "toys", "sigmas"] {
            if let Some(toml::Value::Array(a)) = written.get(key) {
                for (i, v) in a.iter().enumerate() {
                    if a[..i].contains(v) {
                        return Err(bad(format!(
                            "experiment {}: {key}: {v} is given twice; each must appear once",
                            config.display()
                        ))
                        .into());
                    }
                }
            }
        }
        // The kind is read first and its table converted on its own: serde's internally tagged
        // enums buffer their content, which loses the key path of a type error.
        let typed_as = |kind: &str| -> Result<ExperimentFile> {
            let mut t = written.clone();
            t.remove("kind");
            let at = |e: serde_path_to_error::Error<toml::de::Error>| {
                let path = e.path().to_string();
                let key = if path == "." {
                    String::new()
                } else {
                    format!("{path}: ")
                };
                bad(format!(
                    "experiment {}: {key}{}{}",
                    config.display(),
                    e.inner().message().trim(),
                    if quick {
                        " (after merging [quick])"
                    } else {
                        ""
                    }
                ))
            };
            fn de<T: serde::de::DeserializeOwned>(
                t: toml::Table,
            ) -> Result<T, serde_path_to_error::Error<toml::de::Error>> {
                serde_path_to_error::deserialize(toml::Value::Table(t))
            }
            Ok(match kind {
            "samplers" => ExperimentFile::Samplers(de(t).map_err(at)?),
            "noise" => ExperimentFile::Noise(de(t).map_err(at)?),
            "density_fit" => ExperimentFile::DensityFit(de(t).map_err(at)?),
            "image_fit" => ExperimentFile::ImageFit(de(t).map_err(at)?),
            "image_likelihood" => ExperimentFile::ImageLikelihood(de(t).map_err(at)?),
            "likelihood_accuracy" => ExperimentFile::LikelihoodAccuracy(de(t).map_err(at)?),
            "toy_zoo" => ExperimentFile::ToyZoo(de(t).map_err(at)?),
            "classifier" => ExperimentFile::Classifier(de(t).map_err(at)?),
            "inpaint" => ExperimentFile::Inpaint(de(t).map_err(at)?),
            "solvers" => ExperimentFile::Solvers(de(t).map_err(at)?),
            "guidance" => ExperimentFile::Guidance(de(t).map_err(at)?),
            other => {
                return Err(bad(format!(
                    "experiment {}: kind: unknown kind {other:?}; use samplers, noise, density_fit, image_fit, image_likelihood, likelihood_accuracy, toy_zoo, classifier, inpaint, solvers or guidance",
                    config.display()
                ))
                .into())
            }
        })
        };
        let file = match written.get("kind") {
        Some(toml::Value::String(k)) => typed_as(k)?,
        _ => {
            return Err(bad(format!(
                "experiment {}: kind: missing or not a string; give kind = \"toy_zoo\" (or another experiment kind)",
                config.display()
            ))
            .into())
        }
    };
        let name = name_of(config)?;
        Ok(Experiment {
            file,
            written,
            name,
        })
    }

    /// The config as run, as text: what a shard's units are checked against.
    pub fn config_text(&self) -> String {
        toml::to_string(&self.written).expect("a TOML table serialises")
    }
}

impl ExperimentFile {
    /// The study this file configures: the one match from a kind to its study.
    pub fn study(&self) -> &dyn Study {
        match self {
            ExperimentFile::Samplers(e) => e,
            ExperimentFile::Noise(e) => e,
            ExperimentFile::DensityFit(e) => e,
            ExperimentFile::ImageFit(e) => e,
            ExperimentFile::ImageLikelihood(e) => e,
            ExperimentFile::LikelihoodAccuracy(e) => e,
            ExperimentFile::ToyZoo(e) => e,
            ExperimentFile::Classifier(e) => e,
            ExperimentFile::Inpaint(e) => e,
            ExperimentFile::Solvers(e) => e,
            ExperimentFile::Guidance(e) => e,
        }
    }
}

//! `scorelab experiment --config paper/experiments/NAME.toml [--results DIR]`: the experiments of
//! the paper, each a TOML file, each writing `DIR/NAME.csv` (every seed), `DIR/NAME_summary.csv`
//! (mean and sd over seeds) and `DIR/NAME.config.toml` (the config with provenance). One kind per
//! file of this folder:
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
//!   KL(p ‖ p_θ) by quadrature.
//!
//! Each kind calls the pipeline in-process: networks are trained by
//! [`scorelab_pipeline::train::train_in`] into `DIR/models/NAME/…` (folders `scorelab sample`
//! can use) and used from memory. Ctrl-C stops after the current unit of work and writes the rows
//! finished so far to `DIR/NAME.partial.csv`.

pub mod classifier;
pub mod density_fit;
pub mod image_fit;
pub mod image_likelihood;
pub mod inpaint;
pub mod likelihood;
pub mod noise;
pub mod samplers;
pub mod shared;
pub mod toy_zoo;

pub use shared::{deep_merge, Outputs, TrainRef};

use crate::bad;
use anyhow::Result;
use scorelab_pipeline::files::{AsideFolder, Staged};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

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
}

/// What the command line passes to [`run`].
pub struct ExperimentArgs {
    /// The experiment file.
    pub config: PathBuf,
    /// The results folder.
    pub results: PathBuf,
    /// Merge the file's `[quick]` table over it first: the reduced-size run of `reproduce --quick`.
    pub quick: bool,
}

/// The experiment's name: the config's file stem.
fn name_of(path: &Path) -> Result<String, crate::InputError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .ok_or_else(|| bad(format!("--config {}: needs a file name", path.display())))
}

/// An experiment file read, its `[quick]` table merged when asked: the typed experiment, the
/// table to write beside its results, and its name.
fn load(args: &ExperimentArgs) -> Result<(ExperimentFile, toml::Table, String)> {
    let mut written: toml::Table = scorelab_pipeline::files::read_toml(&args.config)?;
    let quick = match written.remove("quick") {
        None => None,
        Some(toml::Value::Table(t)) => Some(t),
        Some(_) => {
            return Err(bad(format!(
                "experiment {}: quick: must be a table of the keys a quick run changes",
                args.config.display()
            ))
            .into())
        }
    };
    if args.quick {
        if let Some(q) = &quick {
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
                        args.config.display()
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
                args.config.display(),
                e.inner().message().trim(),
                if args.quick {
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
            other => {
                return Err(bad(format!(
                    "experiment {}: kind: unknown kind {other:?}; use samplers, noise, density_fit, image_fit, image_likelihood, likelihood_accuracy, toy_zoo, classifier or inpaint",
                    args.config.display()
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
                args.config.display()
            ))
            .into())
        }
    };
    let name = name_of(&args.config)?;
    Ok((file, written, name))
}

/// Checks an experiment file without running it: its keys, its runs' names, and the train
/// configs it names (what `reproduce` does for every experiment before its first step).
///
/// # Errors
/// An input error naming the file and key.
pub fn check(args: &ExperimentArgs) -> Result<()> {
    let (file, _, _) = load(args)?;
    let at = |e: anyhow::Error| bad(format!("experiment {}: {e:#}", args.config.display()));
    match &file {
        ExperimentFile::Samplers(e) => samplers::check(e).map_err(at)?,
        ExperimentFile::Noise(_)
        | ExperimentFile::DensityFit(_)
        | ExperimentFile::ImageFit(_)
        | ExperimentFile::ImageLikelihood(_)
        | ExperimentFile::LikelihoodAccuracy(_)
        | ExperimentFile::ToyZoo(_)
        | ExperimentFile::Classifier(_)
        | ExperimentFile::Inpaint(_) => {}
    }
    Ok(())
}

/// Runs an experiment (module docs). Returns the summary table's text for the terminal.
///
/// # Errors
/// An input error for bad input; other errors for I/O failures.
pub fn run(args: &ExperimentArgs, stop: &AtomicBool) -> Result<String> {
    let (file, mut written, name) = load(args)?;
    if args.quick {
        written.insert("quick".into(), true.into());
    }
    written.insert(
        "run_info".into(),
        crate::provenance(rayon::current_num_threads()).into(),
    );
    let header = format!(
        "# Written by scorelab experiment: the experiment config as run, with provenance in [run_info].\n\
         # `scorelab experiment --config {}` reruns it.\n",
        args.config.display()
    );
    // The networks are trained aside and swapped in with the CSVs: an interrupted or failed rerun
    // leaves the last complete run's networks beside its CSVs.
    let models_dest = args.results.join("models").join(&name);
    let aside = AsideFolder::begin(&models_dest, "model folder")?;
    let models = aside.dir().to_path_buf();
    let out = match &file {
        ExperimentFile::Samplers(e) => samplers::run(e, &models, stop),
        ExperimentFile::Noise(e) => noise::run(e, &models, stop),
        ExperimentFile::DensityFit(e) => density_fit::run(e, &models, stop),
        ExperimentFile::ImageFit(e) => image_fit::run(e, &models, stop),
        ExperimentFile::ImageLikelihood(e) => image_likelihood::run(e, &models, stop),
        ExperimentFile::LikelihoodAccuracy(e) => likelihood::run(e, stop),
        ExperimentFile::ToyZoo(e) => toy_zoo::run(e, &models, stop),
        ExperimentFile::Classifier(e) => classifier::run(e, &models, stop),
        ExperimentFile::Inpaint(e) => inpaint::run(e, stop),
    };
    // A run refused before any work leaves no model folder; an interrupted one keeps its work.
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            aside.abandon();
            return Err(e);
        }
    };
    let Outputs {
        csv,
        summary,
        extra,
        interrupted,
    } = out;
    let mut staged = Staged::default();
    if interrupted {
        staged.stage(
            &args.results.join(format!("{name}.partial.csv")),
            csv.as_bytes(),
        )?;
        staged.commit()?;
        return Err(crate::Interrupted(format!(
            "the rows finished are in {} and the networks trained in {}; the last complete run's files are untouched",
            args.results.join(format!("{name}.partial.csv")).display(),
            models.display()
        ))
        .into());
    }
    staged.stage(
        &args.results.join(format!("{name}.config.toml")),
        format!("{header}{}", toml::to_string(&written).expect("serialises")).as_bytes(),
    )?;
    staged.stage(&args.results.join(format!("{name}.csv")), csv.as_bytes())?;
    staged.stage(
        &args.results.join(format!("{name}_summary.csv")),
        summary.as_bytes(),
    )?;
    for (suffix, text) in &extra {
        staged.stage(
            &args.results.join(format!("{name}_{suffix}.csv")),
            text.as_bytes(),
        )?;
    }
    staged.commit()?;
    aside.swap_in()?;
    let partial = args.results.join(format!("{name}.partial.csv"));
    if partial.is_file() {
        std::fs::remove_file(&partial)
            .map_err(|e| scorelab_pipeline::PipelineError::io(&partial, e))?;
    }
    Ok(summary)
}

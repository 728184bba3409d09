//! What the experiment kinds share: trained references ([`TrainRef`]), training
//! into a model folder ([`train_into`]), and the merging of config tables. The kinds import this module and nothing of each other.

use crate::bad;
use anyhow::Result;
use scorelab_pipeline::files::AsideFolder;
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::run_info::provenance;
use scorelab_pipeline::train::{
    train_in, Prepared, RunFolder, TrainOverrides, TrainPlan, TrainedModel,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

/// `[train.NAME]` of a samplers experiment, and `reproduce`'s training step: a `scorelab train`
/// config file with overrides.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRef {
    /// A `scorelab train` config (relative to the working folder).
    pub config: PathBuf,
    /// Changes to that config before training (e.g. `overrides = { train = { steps = 500 } }`;
    /// default none).
    #[serde(default)]
    pub overrides: Overrides,
}

/// `overrides = {…}` of a [`TrainRef`]: what a study changes in a train config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// Keys laid over the config's `[train]`.
    #[serde(default)]
    pub train: TrainOverrides,
}

impl TrainRef {
    /// The plan: the file with the overrides merged.
    ///
    /// # Errors
    /// An input error naming the file.
    pub fn plan(&self) -> Result<TrainPlan> {
        let mut plan = TrainPlan::from_file(&self.config)?;
        plan.train = self.overrides.train.apply(&plan.train).map_err(|e| {
            bad(format!(
                "{}: overrides.{}",
                self.config.display(),
                e.within("train")
            ))
        })?;
        Ok(plan)
    }

    /// Trains the plan into `dir`.
    ///
    /// # Errors
    /// An input error for a bad config; Ctrl-C or a diverging run.
    pub fn train(&self, dir: &Path, stop: &AtomicBool) -> Result<TrainedModel> {
        let prepared = self.plan()?.prepare().map_err(|e| {
            if e.is_input() {
                bad(format!("config {}: {e}", self.config.display()))
            } else {
                e
            }
        })?;
        fit_into(prepared, dir, stop)
    }
}

/// The pixel columns of an image file: every column of its header but `exclude`, each of which
/// must be there.
///
/// # Errors
/// An input error naming the file, or `exclude` and the missing column.
pub(crate) fn pixel_columns(csv: &Path, exclude: &[String]) -> Result<Vec<String>> {
    pixel_columns_as(csv, exclude, "exclude")
}

/// [`pixel_columns`], naming `field` (the key that gave the excluded columns, e.g. `label`) in
/// the error.
pub(crate) fn pixel_columns_as(csv: &Path, exclude: &[String], field: &str) -> Result<Vec<String>> {
    let header =
        scorelab_pipeline::data::Table::open(csv, &format!("csv {}", csv.display()))?.header;
    for x in exclude {
        if !header.contains(x) {
            return Err(bad(format!(
                "{field}: no column {x:?} in {} (its columns: {})",
                csv.display(),
                scorelab_pipeline::files::clip(&header.join(", "))
            ))
            .into());
        }
    }
    Ok(header
        .into_iter()
        .filter(|h| !exclude.contains(h))
        .collect())
}

/// Trains `plan` afresh into `dir` (replacing a previous run's files there), as the experiments
/// and `reproduce` do, stopping with an error on Ctrl-C. The plan is validated before the folder
/// is touched, and the folder is locked for the run.
pub fn train_into(plan: &TrainPlan, dir: &Path, stop: &AtomicBool) -> Result<TrainedModel> {
    fit_into(plan.prepare()?, dir, stop)
}

/// [`train_into`] for a plan already prepared.
pub fn fit_into(prepared: Prepared, dir: &Path, stop: &AtomicBool) -> Result<TrainedModel> {
    let steps = prepared.resolved.train.steps;
    // Trained aside and swapped in whole: an interrupted run leaves the last complete model.
    let aside = AsideFolder::begin(dir, "model folder")?;
    let folder = RunFolder {
        resume: false,
        run: Some(provenance(rayon::current_num_threads())),
    };
    let model = train_in(aside.lock(), prepared, folder, &mut stopper(stop))?;
    if model.steps() < steps {
        return Err(scorelab_pipeline::Interrupted(format!(
            "while training {} (the steps done are in {}; {} is untouched)",
            dir.display(),
            aside.dir().display(),
            dir.display()
        ))
        .into());
    }
    aside.swap_in()?;
    Ok(model)
}

/// Merges `over` into `base`: tables key by key, recursively; any other value replaces.
pub fn deep_merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

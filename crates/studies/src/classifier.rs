//! `kind = "classifier"`: the digit metric's feature map, an MLP classifier
//! ([`scorelab_models::Classifier`]) trained once (one unit), by a seeded run, on the fixed
//! three-way split of the labelled images that [`scorelab_pipeline::digits`] defines (training,
//! reference and floor sets), and saved with the results for [`DigitMetric`].
//!
//! Pixels are divided by `scale` (model units, pixels/16 for the digits), as `image_fit` sees them.
//! Writes:
//!
//! - `NAME.csv`: `part,rows,accuracy` for `train`, `reference` and `floor`;
//! - `NAME_summary.csv`: `class,train_rows,heldout_rows,heldout_accuracy`, per class on the
//!   reference and floor sets together;
//! - `models/NAME/classifier.safetensors`: the classifier, its metadata `data` naming the file
//!   (path and SHA-256), the pixel and label columns, `scale`, `split_seed` and `test_fraction`,
//!   which [`DigitMetric::load`] checks against the data it is given.

use super::shared::pixel_columns_as;
use crate::bad;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::ArrayView2;
use scorelab_models::{Activation, Classifier};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `kind = "classifier"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// The labelled image file: one column per pixel and a label column.
    pub csv: PathBuf,
    /// The label column (integer classes 0, 1, …).
    pub label: String,
    /// Pixel values are divided by this (16 for 4-bit digits).
    pub scale: f64,
    /// The seed of the held-out permutation.
    pub split_seed: u64,
    /// The held-out fraction: the reference and floor sets together.
    pub test_fraction: f64,
    /// Hidden widths; the last is the feature dimension (at most 64).
    pub hidden: Vec<usize>,
    /// `tanh`, `softplus` or `silu` (default `silu`).
    #[serde(default = "default_activation")]
    pub activation: Activation,
    /// Adam steps.
    pub steps: usize,
    /// Minibatch rows.
    pub batch: usize,
    /// Adam's learning rate.
    pub lr: f64,
    /// The seed of the weights and the minibatches.
    pub seed: u64,
}

fn default_activation() -> Activation {
    Activation::Silu
}

pub use scorelab_pipeline::digits::{DigitMetric, Parts, SplitSpec, FILE, MAX_FEATURES};

/// A row of `NAME.csv`: a part of the split and the classifier's accuracy on it.
#[derive(Debug, Serialize)]
struct PartRow<'a> {
    part: &'a str,
    rows: usize,
    accuracy: Num,
}

/// A row of `NAME_summary.csv`: one class.
#[derive(Debug, Serialize)]
struct ClassRow {
    class: usize,
    train_rows: usize,
    heldout_rows: usize,
    heldout_accuracy: Num,
}

impl ClassifierExperiment {
    fn split(&self) -> Result<SplitSpec> {
        let columns = pixel_columns_as(&self.csv, std::slice::from_ref(&self.label), "label")?;
        Ok(SplitSpec {
            csv: self.csv.clone(),
            columns,
            label: self.label.clone(),
            scale: self.scale,
            split_seed: self.split_seed,
            test_fraction: self.test_fraction,
        })
    }
}

impl Study for ClassifierExperiment {
    fn check(&self) -> Result<()> {
        match self.hidden.last() {
            Some(&h) if (1..=MAX_FEATURES).contains(&h) => {}
            _ => {
                return Err(bad(format!(
                    "hidden: give the widths, the last (the features) from 1 to {MAX_FEATURES}, e.g. [128, 64]"
                ))
                .into())
            }
        }
        if !(self.scale > 0.0 && self.scale.is_finite()) {
            return Err(bad("scale: must be positive and finite, e.g. 16").into());
        }
        self.split()?;
        Ok(())
    }

    /// One unit: the classifier.
    fn units(&self) -> Vec<Unit> {
        vec![Unit::new("classifier")]
    }

    fn run(&self, _unit: &Unit, cx: &Context) -> Result<Tables> {
        let split = self.split()?;
        let parts = split.parts()?;
        let all: Vec<usize> = [&parts.train.1, &parts.reference.1, &parts.floor.1]
            .into_iter()
            .flatten()
            .copied()
            .collect();
        let classes = all.iter().max().map_or(0, |m| m + 1);
        let mut c = Classifier::new(
            split.columns.len(),
            &self.hidden,
            classes,
            self.activation,
            self.seed,
        )
        .map_err(|m| bad(format!("{m}")))?;
        c.fit(
            parts.train.0.view(),
            &parts.train.1,
            self.steps,
            self.batch,
            self.lr,
            self.seed,
        )
        .map_err(|m| bad(format!("{m}")))?;
        let models = cx.models();
        std::fs::create_dir_all(models)
            .map_err(|e| scorelab_pipeline::PipelineError::io(models, e))?;
        c.save_with_data(&models.join(FILE), Some(&split.describe()?))?;
        let mut rows = Table::new("part,rows,accuracy");
        for (part, (x, y)) in [
            ("train", &parts.train),
            ("reference", &parts.reference),
            ("floor", &parts.floor),
        ] {
            rows.push(&PartRow {
                part,
                rows: y.len(),
                accuracy: Num(c.accuracy(x.view(), y)),
            })?;
        }
        let mut summary = Table::new("class,train_rows,heldout_rows,heldout_accuracy");
        let held: Vec<(ArrayView2<f64>, &Vec<usize>)> = vec![
            (parts.reference.0.view(), &parts.reference.1),
            (parts.floor.0.view(), &parts.floor.1),
        ];
        let predicted: Vec<(usize, usize)> = held
            .iter()
            .flat_map(|(x, y)| c.predict(*x).into_iter().zip(y.iter().copied()))
            .collect();
        for class in 0..classes {
            let train_rows = parts.train.1.iter().filter(|&&y| y == class).count();
            let of_k: Vec<&(usize, usize)> = predicted.iter().filter(|p| p.1 == class).collect();
            let right = of_k.iter().filter(|p| p.0 == class).count();
            summary.push(&ClassRow {
                class,
                train_rows,
                heldout_rows: of_k.len(),
                heldout_accuracy: Num(right as f64 / of_k.len().max(1) as f64),
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        Ok(done.into_iter().next().unwrap_or_default())
    }
}

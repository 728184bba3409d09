//! The digit metric: a classifier's features of images, compared by the Fréchet distance, with the
//! fixed three-way split of a labelled image file it is trained and judged on.
//!
//! The split never changes with a run's seed. The permutation of `split_seed` (the same as a train
//! plan's with `data.split_seed`, so score networks trained with `data.split_seed = split_seed` and
//! `data.test_fraction = test_fraction` see exactly the training rows) holds out
//! round(n · `test_fraction`) rows; the first ⌈m/2⌉ of them are the **reference** set and the rest
//! the **floor** set. A classifier fitted on the training rows has seen neither, and the floor (the
//! Fréchet distance of the floor set to the reference set) is the metric's value for real images
//! the models never saw. The classifier is saved with a record of its data (the file's SHA-256,
//! columns, label, scale and split), which [`DigitMetric::load`] checks against the data it is
//! given. `scorelab experiment` trains one with `kind = "classifier"`.

use crate::error::{PipelineError, Result};
use crate::files::sha256_hex;
use crate::train::DataSpec;
use ndarray::{s, Array2, ArrayView2};
use scorelab_models::Classifier;
use std::path::{Path, PathBuf};

fn bad(msg: String) -> PipelineError {
    PipelineError::Input(msg)
}

/// The classifier's file inside the experiment's models folder.
pub const FILE: &str = "classifier.safetensors";

/// The most features the metric uses.
pub const MAX_FEATURES: usize = 64;

/// The three parts of a labelled image file (module docs), in model units.
pub struct Parts {
    /// The training rows and their labels.
    pub train: (Array2<f64>, Vec<usize>),
    /// The reference set and its labels.
    pub reference: (Array2<f64>, Vec<usize>),
    /// The floor set and its labels.
    pub floor: (Array2<f64>, Vec<usize>),
}

/// What the split reads: the file, the columns and the split.
#[derive(Debug, Clone, PartialEq)]
pub struct SplitSpec {
    /// The file.
    pub csv: PathBuf,
    /// The pixel columns.
    pub columns: Vec<String>,
    /// The label column.
    pub label: String,
    /// The divisor to model units.
    pub scale: f64,
    /// The permutation's seed.
    pub split_seed: u64,
    /// The held-out fraction.
    pub test_fraction: f64,
}

impl SplitSpec {
    /// The `[data]` of a `scorelab train` config that trains on exactly the training part.
    pub fn data(&self) -> DataSpec {
        DataSpec {
            transform: Some("scale".into()),
            scale: Some(self.scale),
            split_seed: Some(self.split_seed),
            ..DataSpec::csv(&self.csv, Some(self.columns.clone()), self.test_fraction)
        }
    }

    /// Reads and splits the file (module docs).
    ///
    /// # Errors
    /// An input error naming the file, the label column or a label that is not a class index.
    pub fn parts(&self) -> Result<Parts> {
        let pixels = self.data().prepare_csv(self.split_seed)?;
        let mut labels = DataSpec {
            transform: Some("none".into()),
            split_seed: Some(self.split_seed),
            ..DataSpec::csv(
                &self.csv,
                Some(vec![self.label.clone()]),
                self.test_fraction,
            )
        };
        let labels = labels.prepare_csv(self.split_seed)?;
        let classes = |x: &Array2<f64>| -> Result<Vec<usize>> {
            x.column(0)
                .iter()
                .map(|&v| {
                    if v >= 0.0 && v.fract() == 0.0 && v < 1e6 {
                        Ok(v as usize)
                    } else {
                        Err(bad(format!(
                            "{}: column {:?} has {v}, not a class index 0, 1, …",
                            self.csv.display(),
                            self.label
                        )))
                    }
                })
                .collect()
        };
        let (ytrain, ytest) = (classes(&labels.train)?, classes(&labels.test)?);
        let m = pixels.test.nrows();
        let r = m.div_ceil(2);
        Ok(Parts {
            train: (pixels.train, ytrain),
            reference: (
                pixels.test.slice(s![..r, ..]).to_owned(),
                ytest[..r].to_vec(),
            ),
            floor: (
                pixels.test.slice(s![r.., ..]).to_owned(),
                ytest[r..].to_vec(),
            ),
        })
    }

    /// The metadata saved with the classifier: the file (path and SHA-256), columns, label, scale
    /// and split.
    pub fn describe(&self) -> Result<serde_json::Value> {
        let bytes = std::fs::read(&self.csv)
            .map_err(|e| bad(format!("{}: cannot read: {e}", self.csv.display())))?;
        Ok(serde_json::json!({
            "csv": self.csv.display().to_string(),
            "sha256": sha256_hex(&bytes),
            "columns": self.columns,
            "label": self.label,
            "scale": self.scale,
            "split_seed": self.split_seed,
            "test_fraction": self.test_fraction,
        }))
    }
}

/// The digit metric: a trained classifier and the split it was trained on, checked against the
/// data it is applied to.
pub struct DigitMetric {
    /// The classifier.
    pub classifier: Classifier,
    /// Its split.
    pub split: SplitSpec,
}

impl DigitMetric {
    /// Reads a classifier saved by this experiment and checks that it was trained on `csv` (the
    /// same bytes), with these pixel columns and this scale.
    ///
    /// # Errors
    /// An input error naming `field` (the key that gave the file) for a file that is not such a
    /// classifier or does not match the data, with the command that makes a matching one.
    pub fn load(
        path: &Path,
        field: &str,
        csv: &Path,
        columns: &[String],
        scale: f64,
    ) -> Result<Self> {
        let (classifier, data) =
            Classifier::load_with_data(path).map_err(|e| bad(format!("{field}: {e}")))?;
        let fix = "train one on this data with `scorelab experiment --config paper/experiments/digits_classifier.toml` (kind = \"classifier\")";
        let data = data.ok_or_else(|| {
            bad(format!(
                "{field}: {} has no record of the data it was trained on; {fix}",
                path.display()
            ))
        })?;
        let mismatch = |what: &str| {
            bad(format!(
                "{field}: the classifier {} does not match the data: {what}; {fix}",
                path.display()
            ))
        };
        let bytes =
            std::fs::read(csv).map_err(|e| bad(format!("{}: cannot read: {e}", csv.display())))?;
        if data.get("sha256").and_then(|v| v.as_str()) != Some(sha256_hex(&bytes).as_str()) {
            return Err(mismatch(&format!(
                "it was trained on {} and not on the bytes of {}",
                data.get("csv")
                    .and_then(|v| v.as_str())
                    .unwrap_or("another file"),
                csv.display()
            )));
        }
        let saved: Vec<String> = data
            .get("columns")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        if saved != columns || classifier.dim() != columns.len() {
            return Err(mismatch(&format!(
                "it reads {} pixel columns, the data have {}",
                classifier.dim(),
                columns.len()
            )));
        }
        if data.get("scale").and_then(|v| v.as_f64()) != Some(scale) {
            return Err(mismatch(&format!("its scale is not {scale}")));
        }
        let split = SplitSpec {
            csv: csv.to_path_buf(),
            columns: saved,
            label: data
                .get("label")
                .and_then(|v| v.as_str())
                .ok_or_else(|| mismatch("its metadata has no label column"))?
                .to_string(),
            scale,
            split_seed: data
                .get("split_seed")
                .and_then(|v| v.as_u64())
                .ok_or_else(|| mismatch("its metadata has no split_seed"))?,
            test_fraction: data
                .get("test_fraction")
                .and_then(|v| v.as_f64())
                .ok_or_else(|| mismatch("its metadata has no test_fraction"))?,
        };
        Ok(DigitMetric { classifier, split })
    }

    /// The classifier's features of `x` (model units).
    pub fn features(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.classifier.features(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use std::path::Path;

    /// The committed digit metric on the real digits: the floor set's Fréchet distance to the
    /// reference set (13.3) grows with every level of two known corruptions of the floor images:
    /// added N(0, s²) noise, s = 0.15, 0.2, 0.3, 0.4 in pixels/16 (measured 14.2, 17.7, 34.9,
    /// 69.3), and a 3 × 3 blur mixing each pixel with weight w with its neighbours' mean, w = 0.1,
    /// 0.25, 0.5, 0.75, 1 (15.9 to 341). Noise of s ≤ 0.1 (up to 1.6 of the 16 levels) is below
    /// the metric's resolution at this size: it gave 13.1, 12.9 and 12.9 at s = 0.02, 0.05, 0.1.
    #[test]
    fn the_distance_grows_under_noise_and_blur_of_real_digits() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let csv = root.join("datasets/digits_8x8.csv");
        let header = crate::data::Table::open(&csv, "digits").unwrap().header;
        let columns: Vec<String> = header.into_iter().filter(|h| h != "label").collect();
        let m = DigitMetric::load(
            &root.join("results/models/digits_classifier").join(FILE),
            "classifier",
            &csv,
            &columns,
            16.0,
        )
        .unwrap();
        let p = m.split.parts().unwrap();
        let reference = m.features(p.reference.0.view());
        let fd = |x: &Array2<f64>| {
            scorelab_eval::frechet::frechet_distance(m.features(x.view()).view(), reference.view())
                .unwrap()
        };
        let floor = &p.floor.0;
        let clean = fd(floor);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let z = Array2::from_shape_fn(floor.dim(), |_| {
            <rand_distr::StandardNormal as rand_distr::Distribution<f64>>::sample(
                &rand_distr::StandardNormal,
                &mut rng,
            )
        });
        let mut last = clean;
        for s in [0.15, 0.2, 0.3, 0.4] {
            let v = fd(&(floor + &(&z * s)));
            assert!(v > last, "noise {s}: {v} after {last}");
            last = v;
        }
        let blur = |w: f64| {
            let mut out = floor.clone();
            for (i, row) in floor.rows().into_iter().enumerate() {
                for r in 0..8usize {
                    for c in 0..8usize {
                        let mut sum = 0.0;
                        let mut k = 0.0;
                        for dr in -1i32..=1 {
                            for dc in -1i32..=1 {
                                let (rr, cc) = (r as i32 + dr, c as i32 + dc);
                                if (dr, dc) != (0, 0)
                                    && (0..8).contains(&rr)
                                    && (0..8).contains(&cc)
                                {
                                    sum += row[rr as usize * 8 + cc as usize];
                                    k += 1.0;
                                }
                            }
                        }
                        out[[i, r * 8 + c]] = (1.0 - w) * row[r * 8 + c] + w * sum / k;
                    }
                }
            }
            out
        };
        let mut last = clean;
        for w in [0.1, 0.25, 0.5, 0.75, 1.0] {
            let v = fd(&blur(w));
            assert!(v > last, "blur {w}: {v} after {last}");
            last = v;
        }
    }
}

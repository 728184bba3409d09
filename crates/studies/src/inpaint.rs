//! `kind = "inpaint"`: digits completed from part of their pixels by a trained noise-conditional
//! network and a diffusion sampler that keeps the known pixels at the right noise level
//! ([`scorelab_samplers::Inpaint`]; Song et al. 2021, App. I.2), judged by the digit metric's
//! classifier.
//!
//! One unit per seed and mask (seed outer). The images are the floor set of the metric's split
//! ([`scorelab_pipeline::digits`]): real digits that
//! neither the network (checked: it must have been trained on the split's training rows) nor the
//! classifier saw. Each `[[mask]]` gives every image a 0/1 mask (1 = known):
//!
//! - `pattern = "lower_half"`: the lower half of the rows of the square image hidden;
//! - `pattern = "random"` with `fraction` f and `seed`: round(f·D) pixels hidden, chosen afresh
//!   for every image by a permutation from `ChaCha8Rng::seed_from_u64(seed)` (the same masks for
//!   every run seed);
//! - `csv = "FILE"`: one row of D values 0/1 (an optional header row first), the same for every
//!   image.
//!
//! A mask must keep at least one pixel and hide at least one. For each mask and seed the sampler
//! (`heun`, `reverse_sde`, `pc` or `ddim`, as in a `scorelab sample` config) starts from its prior
//! and completes every image; the CSV gives the classifier's accuracy against the true labels on
//! the completions, on the originals, and on the masked inputs with the hidden pixels set to 0
//! (the background), and the mean squared error of the completed hidden pixels (model units).
//! Two baselines complete the same images ([`baseline_completions`]): the nearest training image
//! on the known pixels, and the Gaussian conditional mean of the hidden pixels given the known ones.
//!
//! Writes `NAME.csv` (`mask,seed,images,hidden,accuracy_completed,accuracy_masked,
//! accuracy_original,mse_hidden,accuracy_nearest,mse_nearest,accuracy_gaussian,mse_gaussian`, `hidden` the mean hidden fraction), `NAME_summary.csv` (mean and
//! sd over seeds) and `NAME_images.csv` (`mask,image,row,x0,…`: for the first seed, the first
//! `grid_images` images as `masked` (hidden pixels empty), `completed` and `original`, model
//! units to 4 decimals).

use super::image_fit::{load_pretrained, MetricSpec};
use super::shared::pixel_columns;
use crate::bad;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{Array1, Array2};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_pipeline::digits::DigitMetric;
use scorelab_pipeline::metrics::mean_sd_cell;
use scorelab_pipeline::sample::{AnySampler, SamplePlan};
use scorelab_samplers::{sample, Inpaint, OnGrid, Sampler};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `kind = "inpaint"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InpaintExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Seeds: each gives its own prior draws and sampler noise.
    pub seeds: Vec<u64>,
    /// The image file: one column per pixel.
    pub csv: PathBuf,
    /// Columns that are not pixels (e.g. `["label"]`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Pixel values are divided by this (16 for 4-bit digits).
    pub scale: f64,
    /// The digit metric's classifier: the split, the labels and the judge.
    pub metric: MetricSpec,
    /// A noise-conditional model folder written by `scorelab train` on the split's training rows.
    pub model: PathBuf,
    /// The sampler, as in a `scorelab sample` config: `heun`, `reverse_sde`, `pc` or `ddim`.
    pub sampler: AnySampler,
    /// Images of the first seed kept in `NAME_images.csv` (default 8).
    #[serde(default = "default_grid")]
    pub grid_images: usize,
    /// The masks.
    pub mask: Vec<MaskSpec>,
}

fn default_grid() -> usize {
    8
}

/// `[[mask]]`: a named pattern or a file (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSpec {
    /// Its name in the CSVs.
    pub name: String,
    /// `lower_half` or `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The hidden fraction of `random`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fraction: Option<f64>,
    /// The seed of `random`'s masks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// A file with one row of D values 0/1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csv: Option<PathBuf>,
}

impl MaskSpec {
    /// Every image's mask, `(n, d)`, checked (module docs).
    ///
    /// # Errors
    /// An input error naming `mask NAME` and the key.
    pub fn masks(&self, n: usize, d: usize) -> Result<Array2<f64>> {
        let at = |m: String| bad(format!("mask {}: {m}", self.name));
        let one = |m: Array1<f64>| -> Result<Array2<f64>> {
            let known = m.iter().filter(|&&v| v == 1.0).count();
            if m.len() != d {
                return Err(at(format!(
                    "has {} values; give one 0/1 per pixel, {d}",
                    m.len()
                ))
                .into());
            }
            if m.iter().any(|&v| v != 0.0 && v != 1.0) {
                return Err(at("values must be 0 (hidden) or 1 (known)".into()).into());
            }
            if known == 0 || known == d {
                return Err(at(format!(
                    "hides {} of {d} pixels; keep at least one and hide at least one",
                    d - known
                ))
                .into());
            }
            Ok(Array2::from_shape_fn((n, d), |(_, j)| m[j]))
        };
        match (self.pattern.as_deref(), &self.csv) {
            (Some("lower_half"), None) if self.fraction.is_none() && self.seed.is_none() => {
                let side = (d as f64).sqrt().round() as usize;
                if side * side != d {
                    return Err(at(format!("lower_half needs a square image; {d} pixels is not one")).into());
                }
                one(Array1::from_shape_fn(d, |j| {
                    if j / side < side / 2 {
                        1.0
                    } else {
                        0.0
                    }
                }))
            }
            (Some("random"), None) => {
                let (Some(f), Some(seed)) = (self.fraction, self.seed) else {
                    return Err(at("random needs fraction (hidden, e.g. 0.5) and seed".into()).into());
                };
                let hidden = (f * d as f64).round() as usize;
                if !(f > 0.0 && f < 1.0) || hidden == 0 || hidden == d {
                    return Err(at(format!(
                        "fraction: {f} of {d} pixels hides {hidden}; give a fraction that keeps at least one pixel and hides at least one"
                    ))
                    .into());
                }
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut m = Array2::ones((n, d));
                let mut order: Vec<usize> = (0..d).collect();
                for mut row in m.rows_mut() {
                    order.shuffle(&mut rng);
                    for &j in &order[..hidden] {
                        row[j] = 0.0;
                    }
                }
                Ok(m)
            }
            (None, Some(path)) if self.fraction.is_none() && self.seed.is_none() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| at(format!("csv: cannot read {}: {e}", path.display())))?;
                let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
                let parse = |l: &str| -> Option<Vec<f64>> {
                    l.split(',').map(|c| c.trim().parse::<f64>().ok()).collect()
                };
                let values: Vec<Vec<f64>> = rows.iter().filter_map(|l| parse(l)).collect();
                let header = rows.len() - values.len();
                if values.len() != 1 || header > 1 || (header == 1 && parse(rows[0]).is_some()) {
                    return Err(at(format!(
                        "csv: {} must hold one row of {d} values 0/1 (after an optional header); it has {} numeric rows",
                        path.display(),
                        values.len()
                    ))
                    .into());
                }
                one(Array1::from(values[0].clone()))
            }
            _ => Err(at(
                "give pattern = \"lower_half\", pattern = \"random\" with fraction and seed, or csv = \"FILE\" (one row of 0/1 per pixel)".into(),
            )
            .into()),
        }
    }
}

/// One completion run's image rows, 4 decimals, hidden cells empty where `mask` is given.
fn push_images(
    out: &mut Table,
    name: &str,
    x: &Array2<f64>,
    mask: Option<&Array2<f64>>,
    take: usize,
    kind: &str,
) -> Result<()> {
    for (i, r) in x.rows().into_iter().take(take).enumerate() {
        let pixels = r.iter().enumerate().map(|(j, v)| match mask {
            Some(m) if m[[i, j]] == 0.0 => String::new(),
            _ => format!("{v:.4}"),
        });
        let label = [name.to_string(), i.to_string(), kind.to_string()];
        out.push_cells(label.into_iter().chain(pixels))?;
    }
    Ok(())
}

/// A row of `NAME_summary.csv`: mean and sd over seeds.
#[derive(Serialize)]
struct SummaryRow {
    mask: String,
    seeds: usize,
    accuracy_completed_mean: String,
    accuracy_completed_sd: String,
    accuracy_masked: Num,
    accuracy_original: Num,
    mse_hidden_mean: String,
    mse_hidden_sd: String,
    accuracy_nearest: Num,
    mse_nearest: Num,
    accuracy_gaussian: Num,
    mse_gaussian: Num,
}

/// The baseline completions of `images` (model units, pixels of width 1/`scale`) under `mask`
/// (1 = known), from the training images `train`:
///
/// - `nearest`: each image's hidden pixels copied from the training image nearest to it on its
///   known pixels (Euclidean);
/// - `gaussian`: the conditional mean μ_H + Σ_HK Σ_KK⁻¹ (x_K − μ_K) of a Gaussian with the training
///   images' mean and covariance plus the variance of uniform dequantisation by one pixel level,
///   1/(12·scale²) per pixel (which makes Σ_KK regular where a pixel is always blank).
///
/// Known pixels are kept as they are.
///
/// # Errors
/// If the Gaussian cannot be fitted.
pub fn baseline_completions(
    train: &Array2<f64>,
    images: &Array2<f64>,
    mask: &Array2<f64>,
    scale: f64,
) -> Result<[(&'static str, Array2<f64>); 2]> {
    use scorelab_core::Moments;
    let (n, d) = images.dim();
    let mut nearest = images.clone();
    for i in 0..n {
        let dist = |t: usize| -> f64 {
            (0..d)
                .filter(|&j| mask[[i, j]] == 1.0)
                .map(|j| (train[[t, j]] - images[[i, j]]).powi(2))
                .sum()
        };
        let best = (0..train.nrows())
            .min_by(|&a, &b| dist(a).total_cmp(&dist(b)))
            .ok_or_else(|| bad("no training images"))?;
        for j in 0..d {
            if mask[[i, j]] == 0.0 {
                nearest[[i, j]] = train[[best, j]];
            }
        }
    }
    let g =
        scorelab_pipeline::baselines::fit_gaussian_dequantized(train.view(), &vec![1.0 / scale; d])
            .map_err(|err| bad(format!("baseline gaussian: {err}")))?;
    let (mu, sigma) = (g.mean(), g.covariance());
    let mut gaussian = images.clone();
    for i in 0..n {
        let known: Vec<usize> = (0..d).filter(|&j| mask[[i, j]] == 1.0).collect();
        let hidden: Vec<usize> = (0..d).filter(|&j| mask[[i, j]] == 0.0).collect();
        let skk = sigma
            .select(ndarray::Axis(0), &known)
            .select(ndarray::Axis(1), &known);
        let spd = scorelab_core::linalg::Spd::new(skk, "baseline covariance")
            .map_err(|err| bad(format!("baseline gaussian: {err}")))?;
        let r: Array1<f64> = known.iter().map(|&j| images[[i, j]] - mu[j]).collect();
        let w = spd.solve_rows(r.insert_axis(ndarray::Axis(0)).view());
        for &h in &hidden {
            let c: f64 = known
                .iter()
                .zip(w.row(0))
                .map(|(&k, wk)| sigma[[h, k]] * wk)
                .sum();
            gaussian[[i, h]] = mu[h] + c;
        }
    }
    Ok([("nearest", nearest), ("gaussian", gaussian)])
}

/// Completes `known` under `mask` with grid sampler `m` on `net`.
fn complete<M>(
    m: &M,
    net: &scorelab_models::F32Noised,
    known: &Array2<f64>,
    mask: &Array2<f64>,
    prior_std: f64,
    rng: &mut ChaCha8Rng,
) -> Result<Array2<f64>>
where
    M: Sampler<scorelab_models::F32Noised, State = scorelab_samplers::ChainState> + OnGrid + Clone,
{
    let (n, d) = known.dim();
    let inp = Inpaint::new(m.clone(), known.clone(), mask.clone())
        .map_err(|e| bad(format!("mask: {e}")))?;
    let x0 = prior_std * scorelab_samplers::standard_normal(n, d, rng);
    Ok(sample(&inp, net, x0, rng))
}

/// A row of `NAME.csv`: one mask and seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct InpaintRow {
    /// The mask's name.
    pub mask: String,
    /// The seed.
    pub seed: u64,
    /// Images completed.
    pub images: usize,
    /// The mean hidden fraction.
    pub hidden: Num,
    /// The classifier's accuracy on the completions.
    pub accuracy_completed: Num,
    /// On the masked inputs, hidden pixels 0.
    pub accuracy_masked: Num,
    /// On the originals.
    pub accuracy_original: Num,
    /// The mean squared error of the completed hidden pixels (model units).
    pub mse_hidden: Num,
    /// The classifier's accuracy on the nearest-training-image completions.
    pub accuracy_nearest: Num,
    /// Their mean squared error on the hidden pixels.
    pub mse_nearest: Num,
    /// The classifier's accuracy on the Gaussian conditional-mean completions.
    pub accuracy_gaussian: Num,
    /// Their mean squared error on the hidden pixels.
    pub mse_gaussian: Num,
}

/// What every unit uses: the metric, the images and labels, the network, the sampler.
struct Setting {
    metric: DigitMetric,
    images: Array2<f64>,
    labels: Vec<usize>,
    masks: Vec<Array2<f64>>,
    sampler: AnySampler,
    prior_std: f64,
    model: scorelab_pipeline::train::TrainedModel,
    train: Array2<f64>,
}

impl InpaintExperiment {
    fn setting(&self) -> Result<Setting> {
        let columns = pixel_columns(&self.csv, &self.exclude)?;
        let metric = DigitMetric::load(
            &self.metric.classifier,
            "metric.classifier",
            &self.csv,
            &columns,
            self.scale,
        )?;
        let model = load_pretrained(&self.model, "model", &metric.split.data())?;
        let parts = metric.split.parts()?;
        let train = parts.train.0;
        let (images, labels) = parts.floor;
        let (n, d) = images.dim();
        let masks: Vec<Array2<f64>> = self
            .mask
            .iter()
            .map(|m| m.masks(n, d))
            .collect::<Result<_>>()?;
        // The sampler's own draws come from the unit's inpainting stream; the plan only checks it
        // against the network.
        let plan = SamplePlan::new(0, n, self.sampler.clone())
            .prepare_with(model.clone())
            .map_err(|err| bad(format!("sampler: {err}")))?;
        if !matches!(
            plan.sampler,
            AnySampler::Heun(_)
                | AnySampler::ReverseSde(_)
                | AnySampler::Pc(_)
                | AnySampler::Ddim(_)
        ) {
            return Err(bad(format!(
                "sampler.kind: inpainting needs a sampler on a schedule's grid (heun, reverse_sde, pc or ddim), not {:?}",
                plan.resolved.sampler.kind()
            ))
            .into());
        }
        let prior_std = plan.sampler.outline().prior_std().unwrap_or(1.0);
        Ok(Setting {
            metric,
            images,
            labels,
            masks,
            sampler: plan.sampler,
            prior_std,
            model,
            train,
        })
    }

    /// The units' (seed index, seed, mask index), seed outer.
    fn jobs(&self) -> Vec<(usize, u64, usize)> {
        self.seeds
            .iter()
            .enumerate()
            .flat_map(|(si, &seed)| (0..self.mask.len()).map(move |k| (si, seed, k)))
            .collect()
    }

    fn unit_id(&self, seed: u64, k: usize) -> String {
        format!("{}_seed{seed}", self.mask[k].name)
    }
}

impl Study for InpaintExperiment {
    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() || self.mask.is_empty() {
            return Err(bad("seeds and mask: give at least one of each").into());
        }
        for (i, m) in self.mask.iter().enumerate() {
            if self.mask[..i].iter().any(|o| o.name == m.name) {
                return Err(bad(format!("mask: name {:?} is used twice", m.name)).into());
            }
        }
        Ok(())
    }

    /// One unit per seed and mask (seed outer); the classifier and the network are read from
    /// their folders (trained before: `digits_classifier`, the committed `digits_best`).
    fn units(&self) -> Vec<Unit> {
        self.jobs()
            .into_iter()
            .map(|(_, seed, k)| Unit::new(self.unit_id(seed, k)))
            .collect()
    }

    fn run(&self, unit: &Unit, _cx: &Context) -> Result<Tables> {
        let (si, seed, k) = self
            .jobs()
            .into_iter()
            .find(|&(_, seed, k)| self.unit_id(seed, k) == unit.id())
            .ok_or_else(|| bad(format!("no unit {:?} in this experiment", unit.id())))?;
        let Setting {
            metric,
            images,
            labels,
            masks,
            sampler,
            prior_std,
            model,
            train,
        } = self.setting()?;
        let (spec, mask) = (&self.mask[k], &masks[k]);
        let (n, d) = images.dim();
        let net = scorelab_models::F32Noised::new(&model.network)
            .map_err(|err| bad(format!("model: needs a noise-conditional network: {err}")))?;
        let original = metric.classifier.accuracy(images.view(), &labels);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::Inpaint.id());
        let x = match &sampler {
            AnySampler::Heun(m) => complete(m, &net, &images, mask, prior_std, &mut rng)?,
            AnySampler::ReverseSde(m) => complete(m, &net, &images, mask, prior_std, &mut rng)?,
            AnySampler::Pc(m) => complete(m, &net, &images, mask, prior_std, &mut rng)?,
            AnySampler::Ddim(m) => complete(m, &net, &images, mask, prior_std, &mut rng)?,
            _ => return Err(bad("sampler.kind: heun, reverse_sde, pc or ddim").into()),
        };
        let masked = &images * mask;
        let hidden = 1.0 - mask.mean().unwrap_or(0.0);
        let mse_of = |x: &Array2<f64>| {
            let sq: f64 = ndarray::Zip::from(x)
                .and(&images)
                .and(mask)
                .fold(0.0, |s, &a, &b, &m| s + (1.0 - m) * (a - b).powi(2));
            sq / (hidden * (n * d) as f64)
        };
        let mse = mse_of(&x);
        let [(_, nearest), (_, gaussian)] =
            baseline_completions(&train, &images, mask, self.scale)?;
        let completed = metric.classifier.accuracy(x.view(), &labels);
        let zeroed = metric.classifier.accuracy(masked.view(), &labels);
        let mut rows = Table::new(
            "mask,seed,images,hidden,accuracy_completed,accuracy_masked,accuracy_original,mse_hidden,accuracy_nearest,mse_nearest,accuracy_gaussian,mse_gaussian",
        );
        rows.push(&InpaintRow {
            mask: spec.name.clone(),
            seed,
            images: n,
            hidden: Num(hidden),
            accuracy_completed: Num(completed),
            accuracy_masked: Num(zeroed),
            accuracy_original: Num(original),
            mse_hidden: Num(mse),
            accuracy_nearest: Num(metric.classifier.accuracy(nearest.view(), &labels)),
            mse_nearest: Num(mse_of(&nearest)),
            accuracy_gaussian: Num(metric.classifier.accuracy(gaussian.view(), &labels)),
            mse_gaussian: Num(mse_of(&gaussian)),
        })?;
        let mut out = Tables::main(rows);
        if si == 0 {
            let header: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
            let mut grid = Table::new(&format!("mask,image,row,{}", header.join(",")));
            let kk = self.grid_images.min(n);
            push_images(&mut grid, &spec.name, &masked, Some(mask), kk, "masked")?;
            push_images(&mut grid, &spec.name, &x, None, kk, "completed")?;
            push_images(&mut grid, &spec.name, &images, None, kk, "original")?;
            out.insert("images", grid);
        }
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<InpaintRow> = rows.rows()?;
        let mut summary = Table::new(
            "mask,seeds,accuracy_completed_mean,accuracy_completed_sd,accuracy_masked,accuracy_original,mse_hidden_mean,mse_hidden_sd,accuracy_nearest,mse_nearest,accuracy_gaussian,mse_gaussian",
        );
        for m in &self.mask {
            let v: Vec<&InpaintRow> = parsed.iter().filter(|r| r.mask == m.name).collect();
            let (a, b) =
                mean_sd_cell(&v.iter().map(|r| r.accuracy_completed.0).collect::<Vec<_>>());
            let (c, dd) = mean_sd_cell(&v.iter().map(|r| r.mse_hidden.0).collect::<Vec<_>>());
            summary.push(&SummaryRow {
                mask: m.name.clone(),
                seeds: v.len(),
                accuracy_completed_mean: a,
                accuracy_completed_sd: b,
                accuracy_masked: v[0].accuracy_masked,
                accuracy_original: v[0].accuracy_original,
                mse_hidden_mean: c,
                mse_hidden_sd: dd,
                accuracy_nearest: v[0].accuracy_nearest,
                mse_nearest: v[0].mse_nearest,
                accuracy_gaussian: v[0].accuracy_gaussian,
                mse_gaussian: v[0].mse_gaussian,
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        out.insert("images", Tables::concat(&done, "images")?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(pattern: Option<&str>, fraction: Option<f64>, seed: Option<u64>) -> MaskSpec {
        MaskSpec {
            name: "m".into(),
            pattern: pattern.map(str::to_string),
            fraction,
            seed,
            csv: None,
        }
    }

    /// lower_half keeps the upper rows of an 8 × 8 image; random hides exactly round(f·D) pixels
    /// per image, differently per image and the same for the same seed.
    #[test]
    fn masks_follow_their_definitions() {
        let m = spec(Some("lower_half"), None, None).masks(2, 64).unwrap();
        assert_eq!(m.sum(), 2.0 * 32.0);
        assert!((0..32).all(|j| m[[1, j]] == 1.0) && (32..64).all(|j| m[[1, j]] == 0.0));
        let r = spec(Some("random"), Some(0.5), Some(4))
            .masks(3, 64)
            .unwrap();
        assert!(r.rows().into_iter().all(|row| row.sum() == 32.0));
        assert_ne!(r.row(0), r.row(1));
        assert_eq!(
            r,
            spec(Some("random"), Some(0.5), Some(4))
                .masks(3, 64)
                .unwrap()
        );
        for (s, want) in [
            (spec(Some("random"), Some(1.0), Some(1)), "fraction"),
            (spec(Some("random"), Some(0.001), Some(1)), "hides 0"),
            (spec(Some("random"), Some(0.5), None), "fraction (hidden"),
            (spec(Some("diagonal"), None, None), "lower_half"),
            (spec(None, None, None), "pattern"),
        ] {
            let e = s.masks(1, 64).unwrap_err().to_string();
            assert!(e.contains("mask m") && e.contains(want), "{want}: {e}");
        }
        let e = spec(Some("lower_half"), None, None)
            .masks(1, 8)
            .unwrap_err()
            .to_string();
        assert!(e.contains("square"), "{e}");
    }
}

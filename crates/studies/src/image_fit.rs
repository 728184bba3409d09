//! `kind = "image_fit"`: score networks fitted to an image data set (the digits), sampled, and
//! compared with held-out images.
//!
//! The pixels are divided by `scale` (model units: [0, 1]). Without a `metric` they are split by
//! the seed (the seed's `scorelab train` split); with one, by the classifier's fixed split
//! ([`super::classifier`]): every network trains on its training rows, the held-out images are
//! its reference set, and the floor set stands for real digits no network or classifier saw.
//! Pixels sit on a boundary (many are exactly 0), so the plain networks are trained on the
//! lightly noised data x + σ₀z, z ∼ N(0, I), fresh each batch (`noise` = σ₀), whose density p_σ₀
//! is smooth on ℝᴰ. Each `[[fit]]` trains one network (or loads a `pretrained` one, a folder of
//! `scorelab train`, checked to have been trained on the same rows); each of its
//! `[[fit.sample]]` runs a `scorelab sample` sampler on it. Plain (not noise-conditional) networks
//! learn ∇log p_σ₀, so their Langevin chains target p_σ₀; `tweedie = true` ends them with
//! Tweedie's step x + σ₀² s_θ(x), the posterior mean of the clean image (the noise-conditional
//! samplers' own `denoise`). For each sampler and seed, in model units:
//!
//! - **MMD²** (unbiased, RBF) between the samples and the held-out images, one bandwidth per seed:
//!   the median distance of the pooled training and held-out images;
//! - with a metric, the **Fréchet distance** d² between the classifier's features of the samples
//!   and of the reference set (FID's construction, [`scorelab_eval::frechet`]), as the mean and
//!   sd over ⌊chains/m⌋ disjoint chunks of m samples, m the floor set's size: every set is judged
//!   at the floor's size, since d² of finite sets is biased upwards (`NAME_frechet_bias.csv`
//!   gives the floor set's d² at smaller sizes); and the **coverage**, the entropy of the
//!   classifier's predicted classes over log K;
//! - **nearest-training-image distance** of every sample (median, mean, min): a memorisation
//!   check. The row `real_digits` gives real images' own distances (what a new real digit looks
//!   like): the floor set with a metric (its d² to the reference set is the floor of the scale,
//!   and `uniform_noise`, U(0, 1)ᴰ, the other end), otherwise the held-out images, with the MMD
//!   of as many training images as chains; with a metric, also the baselines of
//!   [`baseline_samples`]: `training_images`, `gaussian` and `mixture_em`;
//! - the fraction of diverged chains and the score evaluations per chain.
//!
//! Writes `NAME.csv`, `NAME_summary.csv`, `NAME_samples.csv` (the first seed's first
//! `grid_images` samples of every sampler and as many real images, model units to 4 decimals),
//! `NAME_timing.csv` (training seconds per fit and sampling seconds per sampler: the file that
//! differs between reruns), and with a metric `NAME_classes.csv` (`method,seed,class,count`) and
//! `NAME_frechet_bias.csv` (`n,chunks,frechet_mean,frechet_sd`).

use super::shared::pixel_columns;
use crate::bad;
use crate::shared::train_into;
use crate::study::{Context, Fixed, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_eval::frechet::frechet_distance;
use scorelab_eval::mmd2;
use scorelab_pipeline::metrics::{finite_rows, mean_sd_cell, median, nearest_distances};
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::sample::{AnySampler, InitSpec, SamplePlan};
use scorelab_pipeline::train::{
    DataSpec, ModelSpec, Objective, TrainOverrides, TrainPlan, TrainSettings, TrainedModel,
};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// `kind = "image_fit"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageFitExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Seeds: each gives its own split, weights and draws.
    pub seeds: Vec<u64>,
    /// The image file: one column per pixel.
    pub csv: PathBuf,
    /// Columns that are not pixels (e.g. `["label"]`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Pixel values are divided by this (16 for 4-bit digits).
    pub scale: f64,
    /// σ₀ of the training noise, model units.
    pub noise: f64,
    /// Held-out fraction (default 0.2; with `metric`, the classifier's split fixes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_fraction: Option<f64>,
    /// The digit metric ([`MetricSpec`]): with it every network trains on the classifier's
    /// training rows, the held-out images are its reference set, and each method is judged by
    /// the Fréchet distance of its samples' features to the reference set's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricSpec>,
    /// Chains per sampler.
    pub chains: usize,
    /// Permutations of the MMD test (default 100; 0: no p-values).
    #[serde(default = "default_tests")]
    pub tests: usize,
    /// Samples per sampler kept in `NAME_samples.csv`, first seed (default 36).
    #[serde(default = "default_grid")]
    pub grid_images: usize,
    /// `[train]` shared by every fit.
    pub train: TrainSettings,
    /// The networks.
    pub fit: Vec<FitSpec>,
}

/// `[metric]`: the digit metric's classifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricSpec {
    /// A classifier saved by a `kind = "classifier"` experiment on the same file
    /// ([`super::classifier`]); its split becomes the experiment's.
    pub classifier: PathBuf,
}

/// `[[fit]]`: one network and its samplers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    /// Its name.
    pub name: String,
    /// `[model]` of its train config (not with `pretrained`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelSpec>,
    /// `[objective]` of its train config (not with `pretrained`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective: Option<Objective>,
    /// A model folder written by `scorelab train` (a committed network) to sample instead of
    /// training one; it must have been trained on this experiment's training rows (with
    /// `metric`: `data.split_seed` and `data.test_fraction` of the classifier's split).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretrained: Option<PathBuf>,
    /// Keys laid over the shared `[train]`.
    #[serde(default)]
    pub train: TrainOverrides,
    /// Train for the time the fit of this name trains, instead of `train.steps`: the steps are
    /// set from the two fits' per-step costs, measured on this machine before any training and
    /// recorded in `NAME_budget.csv` (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equal_time: Option<String>,
    /// Its samplers.
    pub sample: Vec<SamplerRun>,
}

/// `[[fit.sample]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerRun {
    /// The method's name in the CSVs.
    pub name: String,
    /// As in a `scorelab sample` config.
    pub sampler: AnySampler,
    /// As in a `scorelab sample` config (model units; default: the sampler's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
    /// End a plain network's chains with Tweedie's step x + σ₀² s_θ(x) (default false).
    #[serde(default)]
    pub tweedie: bool,
}

fn default_tests() -> usize {
    100
}
fn default_grid() -> usize {
    36
}

/// The CSV header of an image-fit experiment.
pub const COLUMNS: &str = "method,fit,seed,score_evals,mmd2,mmd2_se,mmd2_p,frechet,frechet_sd,coverage,nn_median,nn_mean,nn_min,diverged";

/// The floor-set sizes of `NAME_frechet_bias.csv` besides the whole floor set.
const BIAS_SIZES: [usize; 3] = [45, 90, 180];

/// What the metric sees of one experiment: the training rows, the held-out rows and, with a
/// classifier, the reference and floor sets.
struct Judge<'a> {
    metric: Option<&'a scorelab_pipeline::digits::DigitMetric>,
    /// Features of the reference set.
    reference: Option<&'a Array2<f64>>,
    /// The held-out images every sample set is compared with by MMD² (the reference set with a
    /// metric).
    heldout: Array2<f64>,
    /// The floor set (with a metric).
    floor: Option<&'a Array2<f64>>,
}

/// One sample set's numbers.
struct Judged {
    frechet: Option<(f64, f64)>,
    classes: Option<Vec<usize>>,
}

impl Judge<'_> {
    /// The Fréchet distance of `x`'s features to the reference set's: the mean (and sd) over
    /// ⌊n/m⌋ disjoint chunks of m rows, m the floor set's size, so that every set is judged at
    /// the floor's size; and the classifier's class counts.
    fn judge(&self, x: &Array2<f64>) -> Result<Judged> {
        let (Some(metric), Some(reference), Some(floor)) =
            (&self.metric, &self.reference, &self.floor)
        else {
            return Ok(Judged {
                frechet: None,
                classes: None,
            });
        };
        let m = floor.nrows();
        let chunks = x.nrows() / m;
        let f = metric.features(x.view());
        let values: Vec<f64> = (0..chunks)
            .map(|c| {
                frechet_distance(
                    f.slice(ndarray::s![c * m..(c + 1) * m, ..]),
                    reference.view(),
                )
            })
            .collect::<Result<_, _>>()?;
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let sd = if values.len() > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
        } else {
            f64::NAN
        };
        let mut counts = vec![0; metric.classifier.classes()];
        for k in metric.classifier.predict(x.view()) {
            counts[k] += 1;
        }
        Ok(Judged {
            frechet: Some((mean, sd)),
            classes: Some(counts),
        })
    }
}

/// The entropy of the class counts over log K: 1 when every class is as frequent, 0 for one
/// class.
fn coverage(counts: &[usize]) -> f64 {
    let n: usize = counts.iter().sum();
    let h: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n as f64;
            -p * p.ln()
        })
        .sum();
    h / (counts.len() as f64).ln()
}

/// Loads a pretrained network from `dir` after checking that it was trained on `data`'s file,
/// columns, scale and fixed split; errors name `field` (the key that gave `dir`).
pub(super) fn load_pretrained(dir: &Path, field: &str, data: &DataSpec) -> Result<TrainedModel> {
    let plan = TrainPlan::from_file(&dir.join("config.toml"))
        .map_err(|err| bad(format!("{field}: {err}")))?;
    let d = &plan.data;
    let same_file = match (&d.csv, &data.csv) {
        (Some(a), Some(b)) => match (std::fs::read(a), std::fs::read(b)) {
            (Ok(x), Ok(y)) => x == y,
            _ => false,
        },
        _ => false,
    };
    let split = |x: &DataSpec| (x.split_seed, x.test_fraction.unwrap_or(0.2));
    if !same_file
        || d.columns != data.columns
        || d.scale != data.scale
        || data.split_seed.is_none()
        || split(d) != split(data)
    {
        return Err(bad(format!(
            "{field}: {} was not trained on this experiment's training rows (give a network trained by scorelab train with data.csv = {:?}, the same columns and scale, data.split_seed = {} and data.test_fraction = {}, and a metric)",
            dir.display(),
            data.csv.as_deref().unwrap_or(Path::new("")),
            data.split_seed.map_or("…".into(), |v| v.to_string()),
            data.test_fraction.unwrap_or(0.2),
        ))
        .into());
    }
    Ok(TrainedModel::load(dir).map_err(|err| bad(format!("{field}: {err}")))?)
}

/// A row of `NAME.csv`: one sampler (or the real images) and seed.
#[derive(Serialize)]
struct SampleRow {
    method: String,
    fit: String,
    seed: u64,
    score_evals: usize,
    mmd2: Num,
    mmd2_se: Num,
    mmd2_p: Option<Num>,
    frechet: Option<Num>,
    frechet_sd: Option<Num>,
    coverage: Option<Num>,
    nn_median: Num,
    nn_mean: Num,
    nn_min: Num,
    diverged: Num,
}

/// A row of `NAME_classes.csv`: how many of a method's samples the classifier puts in a class.
#[derive(Serialize)]
struct ClassRow {
    method: String,
    seed: u64,
    class: usize,
    count: usize,
}

/// A row of `NAME_timing.csv`.
#[derive(Serialize)]
struct TimingRow {
    what: String,
    name: String,
    seed: u64,
    seconds: Fixed<3>,
}

/// A row of `NAME_frechet_bias.csv`: the Fréchet distance of `chunks` disjoint sets of `n` real
/// images to the reference set.
#[derive(Serialize)]
struct BiasRow {
    n: usize,
    chunks: usize,
    frechet_mean: String,
    frechet_sd: String,
}

/// A row of `NAME_summary.csv`: mean and sd over seeds (empty where a method has no value).
#[derive(Serialize)]
struct SummaryRow {
    method: String,
    seeds: usize,
    score_evals: usize,
    mmd2_mean: String,
    mmd2_sd: String,
    nn_median_mean: String,
    nn_median_sd: String,
    frechet_mean: String,
    frechet_sd: String,
    coverage_mean: String,
    coverage_sd: String,
}

/// A row of `NAME.csv`, as the summary reads it back.
#[derive(Debug, Deserialize)]
struct FitRow {
    method: String,
    score_evals: usize,
    mmd2: Num,
    frechet: Option<Num>,
    coverage: Option<Num>,
    nn_median: Num,
}

/// What every unit uses: the pixel columns, the metric (if any), the fits' pretrained networks.
struct Shared {
    columns: Vec<String>,
    metric: Option<scorelab_pipeline::digits::DigitMetric>,
    pretrained: Vec<Option<TrainedModel>>,
}

impl ImageFitExperiment {
    fn shared(&self) -> Result<Shared> {
        let e = self;
        // The pixel columns: all but `exclude`.
        let columns = pixel_columns(&e.csv, &e.exclude)?;
        let metric = match &e.metric {
            None => None,
            Some(m) => {
                let metric = scorelab_pipeline::digits::DigitMetric::load(
                    &m.classifier,
                    "metric.classifier",
                    &e.csv,
                    &columns,
                    e.scale,
                )?;
                if e.test_fraction
                    .is_some_and(|t| t != metric.split.test_fraction)
                {
                    return Err(bad(format!(
                        "test_fraction: the metric's classifier fixes the split at {}; remove test_fraction",
                        metric.split.test_fraction
                    ))
                    .into());
                }
                Some(metric)
            }
        };
        let mut sh = Shared {
            columns,
            metric,
            pretrained: vec![],
        };
        for f in &e.fit {
            let p = match &f.pretrained {
                Some(dir) => Some(load_pretrained(
                    dir,
                    &format!("fit {} pretrained", f.name),
                    &self.data(&sh),
                )?),
                None => None,
            };
            sh.pretrained.push(p);
        }
        Ok(sh)
    }

    fn data(&self, sh: &Shared) -> DataSpec {
        match &sh.metric {
            Some(m) => DataSpec {
                noise: Some(self.noise),
                ..m.split.data()
            },
            None => DataSpec {
                transform: Some("scale".into()),
                scale: Some(self.scale),
                noise: Some(self.noise),
                ..DataSpec::csv(
                    &self.csv,
                    Some(sh.columns.clone()),
                    self.test_fraction.unwrap_or(0.2),
                )
            },
        }
    }

    fn plan_for(&self, sh: &Shared, seed: u64, f: &FitSpec) -> Result<Option<TrainPlan>> {
        let (Some(model), Some(objective)) = (&f.model, &f.objective) else {
            return Ok(None);
        };
        let train = f
            .train
            .apply(&self.train)
            .map_err(|e| bad(format!("fit {}: {}", f.name, e.within("train"))))?;
        Ok(Some(TrainPlan::new(
            seed,
            self.data(sh),
            model.clone(),
            objective.clone(),
            train,
        )))
    }
}

/// The number of components of the EM mixture baseline (one per digit class).
pub const MIXTURE_COMPONENTS: usize = 10;

/// The image fit's baseline samplers, `chains` images each, from the training images `train`
/// (model units, pixels of width 1/`scale`), all drawn from [`Stream::BaselineImages`] of `seed`:
///
/// - `training_images`: `chains` training images in a seeded order (all of them, repeated, when
///   there are fewer): what a sampler that memorised its data scores;
/// - `gaussian`: a Gaussian with the training images' mean and covariance plus the variance of
///   uniform dequantisation by one pixel level, 1/(12·scale²) per pixel
///   ([`scorelab_pipeline::baselines::fit_gaussian_dequantized`]);
/// - `mixture_em`: a [`MIXTURE_COMPONENTS`]-component full-covariance Gaussian mixture fitted by
///   EM (2 restarts, at most 200 iterations) to the training images dequantised by one draw of
///   uniform noise of one pixel level.
///
/// [`Stream::BaselineImages`]: scorelab_core::streams::Stream::BaselineImages
///
/// # Errors
/// If a fit fails (fewer training images than components, a singular covariance).
pub fn baseline_samples(
    train: &Array2<f64>,
    chains: usize,
    scale: f64,
    seed: u64,
) -> Result<Vec<(&'static str, Array2<f64>)>> {
    use rand::Rng;
    use scorelab_core::Sample;
    use scorelab_pipeline::baselines::{fit_gaussian_dequantized, fit_mixture_em};
    let mut r = scorelab_core::streams::Stream::BaselineImages.rng(seed);
    let (n, d) = train.dim();
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut r);
    let picks: Vec<usize> = (0..chains).map(|i| order[i % n]).collect();
    let own = train.select(Axis(0), &picks);
    let width = 1.0 / scale;
    let g = fit_gaussian_dequantized(train.view(), &vec![width; d])
        .map_err(|err| bad(format!("baseline gaussian: {err}")))?;
    let gaussian = g.sample(chains, &mut r);
    let dequantised = train.mapv(|v| v + width * (r.gen::<f64>() - 0.5));
    let (mix, _) = fit_mixture_em(dequantised.view(), MIXTURE_COMPONENTS.min(n), 2, 200, seed)
        .map_err(|err| bad(format!("baseline mixture_em: {err}")))?;
    let mixture = mix.sample(chains, &mut r);
    Ok(vec![
        ("training_images", own),
        ("gaussian", gaussian),
        ("mixture_em", mixture),
    ])
}

impl Study for ImageFitExperiment {
    fn check(&self) -> Result<()> {
        let e = self;
        if e.seeds.is_empty() || e.fit.is_empty() || e.fit.iter().any(|f| f.sample.is_empty()) {
            return Err(bad("seeds, fit and every fit.sample: give at least one of each").into());
        }
        if e.chains < 2 || e.grid_images == 0 {
            return Err(bad("chains: at least 2; grid_images: at least 1").into());
        }
        if !(e.scale > 0.0 && e.scale.is_finite() && e.noise > 0.0 && e.noise.is_finite()) {
            return Err(bad("scale and noise: must be positive and finite").into());
        }
        let mut methods: Vec<&str> = vec!["real_digits"];
        if e.metric.is_some() {
            methods.extend(["uniform_noise", "training_images", "gaussian", "mixture_em"]);
        }
        for f in &e.fit {
            for s in &f.sample {
                if methods.contains(&s.name.as_str()) {
                    return Err(bad(format!(
                        "fit.sample: name {:?} is used twice or reserved",
                        s.name
                    ))
                    .into());
                }
                methods.push(&s.name);
            }
            match (&f.pretrained, &f.model, &f.objective) {
            (Some(_), None, None) if f.train == TrainOverrides::default() => {}
            (None, Some(_), Some(_)) => {}
            _ => {
                return Err(bad(format!(
                    "fit {}: give model and objective (a network to train) or pretrained = \"DIR\" (a trained one) alone",
                    f.name
                ))
                .into())
            }
        }
        }
        for f in &e.fit {
            if f.equal_time.is_some() && f.pretrained.is_some() {
                return Err(bad(format!(
                    "fit {}: equal_time applies to a fit that trains, not to a pretrained network; remove it",
                    f.name
                ))
                .into());
            }
        }
        Ok(())
    }

    /// Once for every seed: the equal-time budgets (`NAME_budget.csv`) and the metric's bias
    /// (`NAME_frechet_bias.csv`: real images the classifier never saw against the reference set,
    /// in disjoint chunks of each size). Every fit's plan is valid and every pretrained network
    /// matches before any work.
    fn setup(&self, _cx: &Context) -> Result<Tables> {
        let e = self;
        let sh = self.shared()?;
        let mut runs = vec![];
        for f in &e.fit {
            if let Some(p) = self.plan_for(&sh, e.seeds[0], f)? {
                runs.push((f.name.clone(), f.equal_time.clone(), p));
            }
        }
        let mut out = Tables::default();
        if runs.iter().any(|r| r.1.is_some()) {
            let (_, csv) = scorelab_pipeline::train::equal_time_budgets(&runs, "fit")?;
            out.insert("budget", Table::from_csv(&csv));
        }
        if let Some(m) = &sh.metric {
            let p = m.split.parts()?;
            let reference = m.features(p.reference.0.view());
            if e.chains < p.floor.0.nrows() {
                return Err(bad(format!(
                    "chains: the Fréchet distance judges samples in chunks of the floor set's size, {}; give chains ≥ {} (a multiple of it, e.g. {})",
                    p.floor.0.nrows(),
                    p.floor.0.nrows(),
                    3 * p.floor.0.nrows()
                ))
                .into());
            }
            let floor = m.features(p.floor.0.view());
            let mut bias = Table::new("n,chunks,frechet_mean,frechet_sd");
            let nf = floor.nrows();
            for n in BIAS_SIZES.into_iter().filter(|&n| n < nf).chain([nf]) {
                let v: Vec<f64> = (0..nf / n)
                    .map(|c| {
                        frechet_distance(
                            floor.slice(ndarray::s![c * n..(c + 1) * n, ..]),
                            reference.view(),
                        )
                    })
                    .collect::<Result<_, _>>()?;
                let (frechet_mean, frechet_sd) = mean_sd_cell(&v);
                bias.push(&BiasRow {
                    n,
                    chunks: v.len(),
                    frechet_mean,
                    frechet_sd,
                })?;
            }
            out.insert("frechet_bias", bias);
        }
        Ok(out)
    }

    /// One unit per seed: the real and noise rows, every fit trained (or loaded) and sampled.
    fn units(&self) -> Vec<Unit> {
        crate::study::seed_units(&self.seeds)
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let e = self;
        let stop = cx.stop();
        let (si, seed) = crate::study::seed_of(&self.seeds, unit)?;
        let sh = self.shared()?;
        let metric = sh.metric.as_ref();
        let pretrained = &sh.pretrained;
        let data = || self.data(&sh);
        let plan_for = |seed: u64, f: &FitSpec| self.plan_for(&sh, seed, f);
        // The fits, with the setup's equal-time steps.
        let mut fits: Vec<FitSpec> = e.fit.clone();
        for (method, steps) in crate::study::budget_steps(cx.setup())? {
            if let Some(f) = fits.iter_mut().find(|f| f.name == method) {
                f.train.steps = Some(steps);
            }
        }
        let d = sh.columns.len();
        let mut csv = Table::new(COLUMNS);
        let mut timing = Table::new("what,name,seed,seconds");
        let mut classes_csv = Table::new("method,seed,class,count");
        let cols: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
        let mut grid = Table::new(&format!("method,{}", cols.join(",")));
        let push_rows = |x: &Array2<f64>, label: &str, out: &mut Table| -> Result<()> {
            for r in x.rows().into_iter().take(e.grid_images) {
                let pixels = r.iter().map(|v| format!("{v:.4}"));
                out.push_cells(std::iter::once(label.to_string()).chain(pixels))?;
            }
            Ok(())
        };
        let stopped = |csv: Table| {
            let mut t = Tables::main(csv);
            t.stopped = true;
            t
        };
        // The metric's split is the same for every seed.
        let parts = match metric {
            Some(m) => Some(m.split.parts()?),
            None => None,
        };
        let reference = match (metric, &parts) {
            (Some(m), Some(p)) => Some(m.features(p.reference.0.view())),
            _ => None,
        };
        let prepared = data().prepare_csv(seed)?;
        let (train, transform) = (prepared.train, prepared.transform);
        let judge = Judge {
            metric,
            reference: reference.as_ref(),
            heldout: parts
                .as_ref()
                .map_or(prepared.test, |p| p.reference.0.clone()),
            floor: parts.as_ref().map(|p| &p.floor.0),
        };
        let test = &judge.heldout;
        let bandwidth = scorelab_eval::median_bandwidth(train.view(), test.view());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::HeldoutDequantize.id());
        let record = |method: &str,
                      fit: &str,
                      evals: usize,
                      x: &Array2<f64>,
                      nn: Vec<f64>,
                      diverged: f64,
                      rng: &mut ChaCha8Rng,
                      csv: &mut Table,
                      classes_csv: &mut Table|
         -> Result<()> {
            let m = mmd2(x.view(), test.view(), Some(bandwidth), e.tests, rng);
            let nn_mean = nn.iter().sum::<f64>() / nn.len() as f64;
            let nn_min = nn.iter().copied().fold(f64::INFINITY, f64::min);
            let nn_med = median(&nn);
            let j = judge.judge(x)?;
            let cov = j.classes.as_deref().map(coverage);
            if let Some(counts) = &j.classes {
                for (k, c) in counts.iter().enumerate() {
                    classes_csv.push(&ClassRow {
                        method: method.into(),
                        seed,
                        class: k,
                        count: *c,
                    })?;
                }
            }
            csv.push(&SampleRow {
                method: method.into(),
                fit: fit.into(),
                seed,
                score_evals: evals,
                mmd2: Num(m.estimate.value),
                mmd2_se: Num(m.estimate.se),
                mmd2_p: m.estimate.p_value.map(Num),
                frechet: j.frechet.map(|f| Num(f.0)),
                frechet_sd: j.frechet.map(|f| f.1).filter(|v| v.is_finite()).map(Num),
                coverage: cov.map(Num),
                nn_median: Num(nn_med),
                nn_mean: Num(nn_mean),
                nn_min: Num(nn_min),
                diverged: Num(diverged),
            })?;
            Ok(())
        };
        // The real row: with a metric, the floor set (real images no model or classifier saw);
        // without, as many training images as chains against the held-out ones.
        let real = match judge.floor {
            Some(f) => f.clone(),
            None => {
                let mut order: Vec<usize> = (0..train.nrows()).collect();
                order.shuffle(&mut rng);
                train.select(Axis(0), &order[..e.chains.min(train.nrows())])
            }
        };
        let real_nn = match judge.floor {
            Some(f) => nearest_distances(f.view(), train.view()),
            None => nearest_distances(test.view(), train.view()),
        };
        record(
            "real_digits",
            "",
            0,
            &real,
            real_nn,
            0.0,
            &mut rng,
            &mut csv,
            &mut classes_csv,
        )?;
        if si == 0 {
            push_rows(judge.floor.unwrap_or(test), "real_digits", &mut grid)?;
        }
        if judge.metric.is_some() {
            // The far end of the scale: uniform noise on [0, 1]ᴰ.
            let mut r = ChaCha8Rng::seed_from_u64(seed);
            r.set_stream(scorelab_core::streams::Stream::UniformImages.id());
            let u = Array2::from_shape_fn((e.chains, d), |_| rand::Rng::gen::<f64>(&mut r));
            let nn = nearest_distances(u.view(), train.view());
            record(
                "uniform_noise",
                "",
                0,
                &u,
                nn,
                0.0,
                &mut rng,
                &mut csv,
                &mut classes_csv,
            )?;
            // The baselines a reader expects beside the networks, each judged on as many images
            // as chains: the training images themselves (what memorising them scores), and
            // samples of a Gaussian and of a Gaussian mixture fitted to the training images
            // (dequantised by one pixel level).
            for (method, x) in baseline_samples(&train, e.chains, e.scale, seed)? {
                let nn = nearest_distances(x.view(), train.view());
                record(
                    method,
                    "",
                    0,
                    &x,
                    nn,
                    0.0,
                    &mut rng,
                    &mut csv,
                    &mut classes_csv,
                )?;
            }
        }
        for (fi, f) in fits.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                return Ok(stopped(csv));
            }
            let model = match (plan_for(seed, f)?, &pretrained[fi]) {
                (Some(plan), _) => {
                    let dir = cx.models().join(format!("{}_seed{seed}", f.name));
                    let started = std::time::Instant::now();
                    let model = train_into(&plan, &dir, stop)?;
                    timing.push(&TimingRow {
                        what: "train".into(),
                        name: f.name.clone(),
                        seed,
                        seconds: Fixed(started.elapsed().as_secs_f64()),
                    })?;
                    model
                }
                (None, Some(m)) => m.clone(),
                (None, None) => {
                    return Err(bad(format!("fit {}: nothing to train or load", f.name)).into())
                }
            };
            for s in &f.sample {
                if stop.load(Ordering::SeqCst) {
                    return Ok(stopped(csv));
                }
                let file = SamplePlan {
                    init: s.init.clone(),
                    ..SamplePlan::new(seed, e.chains, s.sampler.clone())
                };
                let plan = file
                    .prepare_with(model.clone())
                    .map_err(|err| bad(format!("fit {} sample {}: {err}", f.name, s.name)))?;
                let started = std::time::Instant::now();
                let out = plan.run(&mut stopper(stop));
                if out.interrupted {
                    return Ok(stopped(csv));
                }
                let mut x = transform.forward(&out.x);
                let mut evals = out.score_evals;
                if s.tweedie {
                    let score =
                        scorelab_models::F32Score::new(&model.network, None).map_err(|err| {
                            bad(format!(
                                "fit {} sample {}: tweedie needs a plain network: {err}",
                                f.name, s.name
                            ))
                        })?;
                    x = &x + &(scorelab_core::Score::score(&score, x.view()) * (e.noise * e.noise));
                    evals += 1;
                }
                timing.push(&TimingRow {
                    what: "sample".into(),
                    name: s.name.clone(),
                    seed,
                    seconds: Fixed(started.elapsed().as_secs_f64()),
                })?;
                let n_all = x.nrows();
                let x = finite_rows(x.view());
                let diverged = 1.0 - x.nrows() as f64 / n_all as f64;
                if x.nrows() < 2 {
                    return Err(anyhow::anyhow!(
                        "fit {} sample {}: fewer than two chains stayed finite",
                        f.name,
                        s.name
                    ));
                }
                let nn = nearest_distances(x.view(), train.view());
                record(
                    &s.name,
                    &f.name,
                    evals,
                    &x,
                    nn,
                    diverged,
                    &mut rng,
                    &mut csv,
                    &mut classes_csv,
                )?;
                if si == 0 {
                    push_rows(&x, &s.name, &mut grid)?;
                }
            }
        }

        let mut out = Tables::main(csv);
        out.insert("timing", timing);
        if si == 0 {
            out.insert("samples", grid);
        }
        if metric.is_some() {
            out.insert("classes", classes_csv);
        }
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<FitRow> = rows.rows()?;
        let mut methods: Vec<&str> = vec![];
        for r in &parsed {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        let mut summary = Table::new(
            "method,seeds,score_evals,mmd2_mean,mmd2_sd,nn_median_mean,nn_median_sd,frechet_mean,frechet_sd,coverage_mean,coverage_sd",
        );
        for m in methods {
            let v: Vec<&FitRow> = parsed.iter().filter(|r| r.method == m).collect();
            let evals = v[0].score_evals;
            let col = |f: &dyn Fn(&FitRow) -> f64| {
                mean_sd_cell(&v.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            let opt = |f: &dyn Fn(&FitRow) -> f64| {
                if v.iter().all(|r| f(r).is_nan()) {
                    (String::new(), String::new())
                } else {
                    col(f)
                }
            };
            let (a, b) = col(&|r| r.mmd2.0);
            let (c, dd) = col(&|r| r.nn_median.0);
            let (f, fs) = opt(&|r| r.frechet.map_or(f64::NAN, |x| x.0));
            let (g, gs) = opt(&|r| r.coverage.map_or(f64::NAN, |x| x.0));
            summary.push(&SummaryRow {
                method: m.into(),
                seeds: v.len(),
                score_evals: evals,
                mmd2_mean: a,
                mmd2_sd: b,
                nn_median_mean: c,
                nn_median_sd: dd,
                frechet_mean: f,
                frechet_sd: fs,
                coverage_mean: g,
                coverage_sd: gs,
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        out.insert("samples", Tables::concat(&done, "samples")?);
        out.insert("timing", Tables::concat(&done, "timing")?);
        if self.metric.is_some() {
            out.insert("classes", Tables::concat(&done, "classes")?);
        }
        Ok(out)
    }
}

//! `kind = "image_fit"`: score networks fitted to an image data set (the digits), sampled, and
//! compared with held-out images.
//!
//! The pixels are divided by `scale` (model units: [0, 1]) and split by the seed (the seed's
//! `scorelab train` split). Pixels sit on a boundary (many are exactly 0), so every network is
//! trained on the lightly noised data x + σ₀z, z ∼ N(0, I), fresh each batch (`noise` = σ₀), whose
//! density p_σ₀ is smooth on ℝᴰ. Each `[[fit]]` trains one network; each of its `[[fit.sample]]`
//! runs a `scorelab sample` sampler on it. Plain (not noise-conditional) networks learn ∇log p_σ₀,
//! so their Langevin chains target p_σ₀; `tweedie = true` ends them with Tweedie's step
//! x + σ₀² s_θ(x), the posterior mean of the clean image (the noise-conditional samplers' own
//! `denoise`). For each sampler and seed, in model units:
//!
//! - **MMD²** (unbiased, RBF) between the samples and the held-out images, one bandwidth per seed:
//!   the median distance of the pooled training and held-out images;
//! - **nearest-training-image distance** of every sample (median, mean, min): a memorisation
//!   check. The row `real_digits` gives the held-out images' own distances (what a new real
//!   digit looks like) and the MMD of as many training images as chains (a perfect sampler's);
//! - the fraction of diverged chains and the score evaluations per chain.
//!
//! Writes `NAME.csv`, `NAME_summary.csv`, `NAME_samples.csv` (the first seed's first
//! `grid_images` samples of every sampler and as many held-out images, model units) and
//! `NAME_timing.csv` (training seconds per fit and sampling seconds per sampler: the file that
//! differs between reruns).

use super::shared::{deep_merge, pixel_columns, typed, Outputs};
use crate::bad;
use crate::train::train_into;
use anyhow::Result;
use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_eval::mmd2;
use scorelab_pipeline::files::cell;
use scorelab_pipeline::metrics::{finite_rows, mean_sd_cell, median, nearest_distances};
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::sample::SamplePlan;
use scorelab_pipeline::train::{DataSpec, TrainPlan};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// Held-out fraction (default 0.2).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// Chains per sampler.
    pub chains: usize,
    /// Permutations of the MMD test (default 100; 0: no p-values).
    #[serde(default = "default_tests")]
    pub tests: usize,
    /// Samples per sampler kept for the figure's grids (default 36).
    #[serde(default = "default_grid")]
    pub grid_images: usize,
    /// `[train]` shared by every fit.
    pub train: toml::Table,
    /// The networks.
    pub fit: Vec<FitSpec>,
}

/// `[[fit]]`: one network and its samplers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    /// Its name.
    pub name: String,
    /// `[model]` of its train config.
    pub model: toml::Table,
    /// `[objective]` of its train config.
    pub objective: toml::Table,
    /// Keys merged over the shared `[train]`.
    #[serde(default)]
    pub train: toml::Table,
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
    pub sampler: toml::Table,
    /// As in a `scorelab sample` config (model units; default: the sampler's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<toml::Table>,
    /// End a plain network's chains with Tweedie's step x + σ₀² s_θ(x) (default false).
    #[serde(default)]
    pub tweedie: bool,
}

fn default_test_fraction() -> f64 {
    0.2
}
fn default_tests() -> usize {
    100
}
fn default_grid() -> usize {
    36
}

/// The CSV header of an image-fit experiment.
pub const COLUMNS: &str =
    "method,fit,seed,score_evals,mmd2,mmd2_se,mmd2_p,nn_median,nn_mean,nn_min,diverged";

/// Runs an image-fit experiment, its networks trained into `models` (module docs).
///
/// # Errors
/// An input error for a bad experiment; Ctrl-C while training or a diverging run.
pub fn run(e: &ImageFitExperiment, models: &Path, stop: &AtomicBool) -> Result<Outputs> {
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
    }
    // The pixel columns: all but `exclude`.
    let columns = pixel_columns(&e.csv, &e.exclude)?;
    let data = || DataSpec {
        transform: Some("scale".into()),
        scale: Some(e.scale),
        noise: Some(e.noise),
        ..DataSpec::csv(&e.csv, Some(columns.clone()), e.test_fraction)
    };
    let plan_for = |seed: u64, f: &FitSpec| -> Result<TrainPlan> {
        let mut train = e.train.clone();
        deep_merge(&mut train, &f.train);
        Ok(TrainPlan::new(
            seed,
            data(),
            typed(f.model.clone().into(), &format!("fit {} model", f.name))?,
            typed(
                f.objective.clone().into(),
                &format!("fit {} objective", f.name),
            )?,
            typed(train.into(), &format!("fit {} train", f.name))?,
        ))
    };
    let d = columns.len();
    let mut csv = format!("{COLUMNS}\n");
    let mut timing = String::from("what,name,seed,seconds\n");
    let cols: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    let mut grid = format!("method,{}\n", cols.join(","));
    let mut per_method: Vec<(String, Vec<[f64; 2]>, usize)> = vec![];
    let total = (e.seeds.len() * methods.len()) as u64;
    let bar = crate::bar(total, "{bar:30} {pos}/{len} · {msg} · eta {eta}");
    let push_rows = |x: &Array2<f64>, label: &str, out: &mut String| {
        for r in x.rows().into_iter().take(e.grid_images) {
            let cells: Vec<String> = r.iter().map(|v| v.to_string()).collect();
            out.push_str(&format!("{label},{}\n", cells.join(",")));
        }
    };
    // Every fit's plan is valid before any work.
    for f in &e.fit {
        plan_for(e.seeds[0], f)?;
    }
    for (si, &seed) in e.seeds.iter().enumerate() {
        let prepared = data().prepare_csv(seed)?;
        let (train, test, transform) = (prepared.train, prepared.test, prepared.transform);
        let bandwidth = scorelab_eval::median_bandwidth(train.view(), test.view());
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(200);
        // The reference: as many training images as chains, against the held-out ones.
        let mut order: Vec<usize> = (0..train.nrows()).collect();
        order.shuffle(&mut rng);
        let subset = train.select(Axis(0), &order[..e.chains.min(train.nrows())]);
        let mut record = |method: &str,
                          fit: &str,
                          evals: usize,
                          x: &Array2<f64>,
                          nn: Vec<f64>,
                          diverged: f64,
                          rng: &mut ChaCha8Rng,
                          csv: &mut String| {
            let m = mmd2(x.view(), test.view(), Some(bandwidth), e.tests, rng);
            let nn_mean = nn.iter().sum::<f64>() / nn.len() as f64;
            let nn_min = nn.iter().copied().fold(f64::INFINITY, f64::min);
            let nn_med = median(&nn);
            csv.push_str(&format!(
                "{method},{fit},{seed},{evals},{},{},{},{nn_med},{nn_mean},{nn_min},{diverged}\n",
                m.estimate.value,
                m.estimate.se,
                cell(m.estimate.p_value),
            ));
            let entry = [m.estimate.value, nn_med];
            match per_method.iter_mut().find(|p| p.0 == method) {
                Some(p) => p.1.push(entry),
                None => per_method.push((method.to_string(), vec![entry], evals)),
            }
        };
        record(
            "real_digits",
            "",
            0,
            &subset,
            nearest_distances(test.view(), train.view()),
            0.0,
            &mut rng,
            &mut csv,
        );
        if si == 0 {
            push_rows(&test, "real_digits", &mut grid);
        }
        bar.inc(1);
        for f in &e.fit {
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                return Ok(Outputs::partial(csv));
            }
            bar.set_message(format!("training {} seed {seed}", f.name));
            let dir = models.join(format!("{}_seed{seed}", f.name));
            let plan = plan_for(seed, f)?;
            let started = std::time::Instant::now();
            let model = train_into(&plan, &dir, stop)?;
            timing.push_str(&format!(
                "train,{},{seed},{:.3}\n",
                f.name,
                started.elapsed().as_secs_f64()
            ));
            for s in &f.sample {
                if stop.load(Ordering::SeqCst) {
                    bar.abandon();
                    return Ok(Outputs::partial(csv));
                }
                bar.set_message(format!("{} seed {seed}", s.name));
                let mut t = toml::Table::new();
                t.insert("seed".into(), (seed as i64).into());
                t.insert("chains".into(), (e.chains as i64).into());
                if let Some(init) = &s.init {
                    t.insert("init".into(), init.clone().into());
                }
                t.insert("sampler".into(), s.sampler.clone().into());
                let file: SamplePlan = toml::Value::Table(t)
                    .try_into()
                    .map_err(|err| bad(format!("fit {} sample {}: {err}", f.name, s.name)))?;
                let plan = file
                    .prepare_with(model.clone())
                    .map_err(|err| bad(format!("fit {} sample {}: {err}", f.name, s.name)))?;
                let started = std::time::Instant::now();
                let out = plan.run(seed, &mut stopper(stop));
                if out.interrupted {
                    bar.abandon();
                    return Ok(Outputs::partial(csv));
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
                timing.push_str(&format!(
                    "sample,{},{seed},{:.3}\n",
                    s.name,
                    started.elapsed().as_secs_f64()
                ));
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
                    &s.name, &f.name, evals, &x, nn, diverged, &mut rng, &mut csv,
                );
                if si == 0 {
                    push_rows(&x, &s.name, &mut grid);
                }
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let mut summary =
        String::from("method,seeds,score_evals,mmd2_mean,mmd2_sd,nn_median_mean,nn_median_sd\n");
    for (m, v, evals) in &per_method {
        let (a, b) = mean_sd_cell(&v.iter().map(|r| r[0]).collect::<Vec<_>>());
        let (c, dd) = mean_sd_cell(&v.iter().map(|r| r[1]).collect::<Vec<_>>());
        summary.push_str(&format!("{m},{},{evals},{a},{b},{c},{dd}\n", v.len()));
    }
    Ok(Outputs {
        csv,
        summary,
        extra: vec![("samples".into(), grid), ("timing".into(), timing)],
        interrupted: false,
    })
}

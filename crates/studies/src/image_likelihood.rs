//! `kind = "image_likelihood"`: held-out bits/dim of a noise-conditional network on integer-valued
//! images, through its probability-flow ODE ([`scorelab_pipeline::likelihood`]), beside a Gaussian
//! and independent pixels on the same split and the same dequantisation draws.
//!
//! Per seed (the seed's `scorelab train` split of `csv`, the columns but `exclude`):
//!
//! - **the network**: `model`, `objective` and `train` of a `scorelab train` config on the pixels
//!   divided by `scale`, with uniform dequantisation noise of width `dequantize` (q, data units)
//!   drawn afresh for every batch (`data.dequantize_fresh`) and no other noise, so that it learns
//!   the scores of the dequantised density's noised marginals;
//! - **the draws**: `draws` dequantisations y = x + u, u ∼ U(−q/2, q/2)ᴰ, of every held-out image,
//!   shared by every method;
//! - **each `[[estimator]]`**: the `scorelab likelihood` keys of `ode` with the estimator's own
//!   `ode` merged over them (e.g. `divergence = "hutchinson"`), its probes seeded per seed and draw;
//! - **references**: `gaussian`, N(x̄, Σ̂ + q²/12 I) fitted on the training images (the moments of
//!   their dequantisation, [`scorelab_pipeline::baselines::fit_gaussian_dequantized`]);
//!   `independent_pixels`, one categorical distribution per pixel over the levels of `support`
//!   with add-one smoothing ([`scorelab_pipeline::baselines::IndependentLevels`]), whose bits/dim
//!   is exact for the discrete images; `uniform`, log₂ L for L levels.
//!
//! Bits/dim are in units of q, in the data's units: b = −(log p(y) + D ln q)/(D ln 2). By Jensen's
//! inequality, a continuous model's mean over draws is an upper bound on its discrete model's
//! bits/dim −log₂ P(x)/D with P(x) = ∫_bin p (Theis et al. 2016; Ho et al. 2019).
//!
//! Writes:
//!
//! - `NAME.csv`: `method,seed,n_test,draws,bits_per_dim,bits_per_dim_se,draw_sd,score_evals`: the
//!   mean over held-out images of each image's mean over draws, its standard error over images
//!   (which holds the draws' and the probes' noise too), the pooled standard deviation between
//!   two draws of one image (empty for one draw), and the score evaluations per image and draw;
//! - `NAME_paired.csv`: `method,reference,seed,n_test,mean_difference,se_difference`, per image in
//!   bits/dim: every method against the first estimator and against `gaussian` and
//!   `independent_pixels`. A Hutchinson estimator against an exact one sees the same draws and
//!   takes the same steps (the solver controls the state's error only), so their difference is
//!   the probes' noise alone and its standard error is Hutchinson's extra standard error;
//! - `NAME_summary.csv`: `method,seeds,bits_per_dim_mean,bits_per_dim_sd,bits_per_dim_se_mean`;
//! - `NAME_images.csv`: `method,seed,image,bits_per_dim`, every held-out image's mean over draws
//!   (the distribution behind each mean; `image` counts the held-out rows from 0);
//! - `NAME_timing.csv`: `what,name,seed,seconds,per_image`: training seconds, and each
//!   estimator's seconds over all its draws with the time per image and draw (the file that
//!   differs between reruns).

use super::shared::pixel_columns;
use crate::bad;
use crate::shared::train_into;
use crate::study::{Context, Fixed, Num, PairedRow, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::LogDensity;
use scorelab_pipeline::baselines::{fit_gaussian_dequantized, IndependentLevels};
use scorelab_pipeline::data::{add_uniform, Dequantize};
use scorelab_pipeline::likelihood::LikelihoodPlan;
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::train::{DataSpec, ModelSpec, Objective, TrainPlan, TrainSettings};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

/// `kind = "image_likelihood"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageLikelihoodExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Seeds: each gives its own split, weights, draws and probes.
    pub seeds: Vec<u64>,
    /// The image file: one column per pixel.
    pub csv: PathBuf,
    /// Columns that are not pixels (e.g. `["label"]`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Pixel values are divided by this for the network (16 for 4-bit digits).
    pub scale: f64,
    /// The bin width q of the integer pixels, data units (default 1: one pixel level).
    #[serde(default = "default_q")]
    pub dequantize: f64,
    /// The pixels' levels run from `support[0]` to `support[1]` in steps of q (0 to 16 for the
    /// digits).
    pub support: [f64; 2],
    /// Dequantisation draws per held-out image (default 2).
    #[serde(default = "default_draws")]
    pub draws: usize,
    /// Held-out fraction (default 0.2).
    #[serde(default = "default_test_fraction")]
    pub test_fraction: f64,
    /// `[model]` of the network's train config (noise-conditional).
    pub model: ModelSpec,
    /// `[objective]` of its train config.
    pub objective: Objective,
    /// `[train]` of its train config.
    pub train: TrainSettings,
    /// `scorelab likelihood` keys shared by every estimator (schedule, solver, rtol, atol, batch;
    /// not `model_dir`, `density`, `seed` or `dequantize`, which the experiment sets).
    #[serde(default)]
    pub ode: LikelihoodPlan,
    /// The estimators; the first is the one the others are paired with.
    pub estimator: Vec<EstimatorSpec>,
}

/// `[[estimator]]`: one way to compute the ODE's log-likelihood.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstimatorSpec {
    /// Its name in the CSVs.
    pub name: String,
    /// `scorelab likelihood` keys laid over the shared `ode` ([`LikelihoodPlan::overlay`]).
    #[serde(default)]
    pub ode: LikelihoodPlan,
}

fn default_q() -> f64 {
    1.0
}
fn default_draws() -> usize {
    2
}
fn default_test_fraction() -> f64 {
    0.2
}

/// The references' names, reserved.
const REFERENCES: [&str; 3] = ["gaussian", "independent_pixels", "uniform"];

/// The CSV header of an image-likelihood experiment.
pub const COLUMNS: &str =
    "method,seed,n_test,draws,bits_per_dim,bits_per_dim_se,draw_sd,score_evals";

/// Bits per dimension of every (draw, image), the draws as rows.
struct MethodBits {
    name: String,
    bits: Array2<f64>,
    score_evals: f64,
}

/// Mean and standard error (sd/√n) of `v`.
fn mean_se(v: &Array1<f64>) -> (f64, f64) {
    let m = scorelab_core::stats::MeanSe::of(v.view());
    (m.mean, m.se)
}

/// The estimators' likelihood plans, checked before any work.
fn plans(e: &ImageLikelihoodExperiment) -> Result<Vec<LikelihoodPlan>> {
    let set_here = |p: &LikelihoodPlan| {
        [
            ("model_dir", p.model_dir.is_some()),
            ("density", p.density.is_some()),
            ("seed", p.seed != 0),
            ("dequantize", p.dequantize.is_some()),
            ("dequantize_draws", p.dequantize_draws.is_some()),
        ]
        .into_iter()
        .find(|(_, given)| *given)
    };
    for p in std::iter::once(&e.ode).chain(e.estimator.iter().map(|s| &s.ode)) {
        if let Some((key, _)) = set_here(p) {
            return Err(bad(format!(
                "ode.{key}: set by the experiment (the trained network, the seed and `dequantize`); remove it"
            ))
            .into());
        }
    }
    Ok(e.estimator.iter().map(|s| e.ode.overlay(&s.ode)).collect())
}

/// A row of `NAME.csv`: one method and seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct BitsRow {
    /// The method.
    pub method: String,
    /// The seed.
    pub seed: u64,
    /// Held-out images.
    pub n_test: usize,
    /// Dequantisation draws per image.
    pub draws: usize,
    /// Mean bits/dim over images.
    pub bits_per_dim: Num,
    /// Its standard error over images.
    pub bits_per_dim_se: Num,
    /// The pooled sd between two draws of one image.
    pub draw_sd: Option<Num>,
    /// Score evaluations per image and draw.
    pub score_evals: Num,
}

/// A row of `NAME_images.csv`: one image's bits/dim (mean over the draws).
#[derive(Serialize)]
struct ImageRow {
    method: String,
    seed: u64,
    image: usize,
    bits_per_dim: Num,
}

/// A row of `NAME_timing.csv`.
#[derive(Serialize)]
struct TimingRow {
    what: String,
    name: String,
    seed: u64,
    seconds: Fixed<3>,
    per_image: Option<Fixed<6>>,
}

/// A row of `NAME_summary.csv`: mean and sd over seeds, and the mean of the seeds' standard
/// errors.
#[derive(Serialize)]
struct SummaryRow {
    method: String,
    seeds: usize,
    bits_per_dim_mean: String,
    bits_per_dim_sd: String,
    bits_per_dim_se_mean: Num,
}

/// What every unit shares: the pixel columns, the held-out split, the train plan of a seed.
impl ImageLikelihoodExperiment {
    fn columns(&self) -> Result<Vec<String>> {
        pixel_columns(&self.csv, &self.exclude)
    }

    fn split(&self, columns: &[String]) -> DataSpec {
        DataSpec {
            transform: Some("scale".into()),
            scale: Some(self.scale),
            ..DataSpec::csv(&self.csv, Some(columns.to_vec()), self.test_fraction)
        }
    }

    fn train_plan(&self, seed: u64, columns: &[String]) -> Result<TrainPlan> {
        let data = DataSpec {
            dequantize: Some(Dequantize::All(self.dequantize)),
            dequantize_fresh: Some(true),
            ..self.split(columns)
        };
        Ok(TrainPlan::new(
            seed,
            data,
            self.model.clone(),
            self.objective.clone(),
            self.train.clone(),
        ))
    }
}

impl Study for ImageLikelihoodExperiment {
    /// Everything is checked before the first network trains: every pixel of the file on the
    /// support's grid (its own row numbers), the sizes, and each estimator against the untrained
    /// network (its architecture and σ̃ range are the trained one's).
    fn check(&self) -> Result<()> {
        let e = self;
        if e.seeds.is_empty() || e.estimator.is_empty() {
            return Err(bad("seeds, estimator: give at least one of each").into());
        }
        if e.draws == 0 {
            return Err(bad("draws: at least 1 dequantisation draw per image").into());
        }
        if !(e.scale > 0.0 && e.scale.is_finite()) {
            return Err(bad("scale: must be positive and finite").into());
        }
        if !(e.dequantize > 0.0 && e.dequantize.is_finite()) {
            return Err(bad("dequantize: the bin width q must be positive and finite").into());
        }
        let mut names: Vec<&str> = REFERENCES.to_vec();
        for s in &e.estimator {
            if names.contains(&s.name.as_str()) {
                return Err(bad(format!(
                    "estimator: name {:?} is used twice or reserved ({})",
                    s.name,
                    REFERENCES.join(", ")
                ))
                .into());
            }
            names.push(&s.name);
        }
        if !matches!(e.model, ModelSpec::NoiseConditionalMlp { .. }) {
            return Err(bad(
            "model.kind: must be \"noise_conditional_mlp\" (the probability-flow ODE needs the score at every noise level)",
        )
        .into());
        }
        let plans = plans(e)?;
        let columns = pixel_columns(&e.csv, &e.exclude)?;
        let d = columns.len();
        let q = e.dequantize;
        // Everything is checked before the first network trains: every pixel of the file on the
        // support's grid (its own row numbers), the sizes, and each estimator against the untrained
        // network (its architecture and σ̃ range are the trained one's).
        let limit = scorelab_pipeline::memory::MemoryLimit::from_env()?;
        let (lo, hi) = (e.support[0], e.support[1]);
        let levels = (hi - lo) / q + 1.0;
        if !(lo.is_finite() && hi.is_finite() && hi > lo && levels.fract().abs() < 1e-9) {
            return Err(bad(format!(
            "support: [{lo}, {hi}] must be finite with {hi} − {lo} a whole number of bins of width dequantize = {q}"
        ))
        .into());
        }
        scorelab_pipeline::memory::check(
            (levels as u64).saturating_mul(d as u64).saturating_mul(8),
            limit,
            || format!("the independent-pixels model ({levels} levels × {d} pixels)"),
            "narrow support to the pixels' levels",
        )?;
        let all = scorelab_pipeline::data::Dataset::from_csv(&e.csv, Some(&columns))?;
        scorelab_pipeline::memory::check(
            (all.rows().nrows() as u64)
                .saturating_mul(d as u64)
                .saturating_mul(8)
                .saturating_mul(e.draws as u64 + 2),
            limit,
            || format!("{} dequantisation draws of the held-out images", e.draws),
            "lower draws",
        )?;
        let shifted = all.rows().mapv(|v| v - lo);
        scorelab_pipeline::data::check_on_grid(
            shifted.view(),
            &vec![q; d],
            &columns,
            "support",
            |i| i + 1,
        )?;
        if let Some((i, j)) = all
            .rows()
            .indexed_iter()
            .find(|(_, &v)| v < lo || v > hi)
            .map(|(ij, _)| ij)
        {
            return Err(bad(format!(
            "support: row {}, column {}: {} is outside [{lo}, {hi}]; widen support to the pixels' levels",
            i + 1,
            columns[j],
            all.rows()[[i, j]]
        ))
        .into());
        }
        let untrained = self
            .train_plan(e.seeds[0], &columns)?
            .prepare_within(limit)?
            .untrained();
        for (s, plan) in e.estimator.iter().zip(&plans) {
            plan.prepare_with(untrained.clone())
                .map_err(|err| bad(format!("estimator {}: {err}", s.name)))?;
        }
        Ok(())
    }

    /// One unit per seed: the references, the network, every estimator.
    fn units(&self) -> Vec<Unit> {
        crate::study::seed_units(&self.seeds)
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let e = self;
        let stop = cx.stop();
        let (_, seed) = crate::study::seed_of(&self.seeds, unit)?;
        let plans = plans(e)?;
        let columns = self.columns()?;
        let d = columns.len();
        let q = e.dequantize;
        let split = || self.split(&columns);
        let train_plan = |seed: u64| self.train_plan(seed, &columns);
        let to_bits =
            |log_p: f64| -(log_p + d as f64 * q.ln()) / (d as f64 * std::f64::consts::LN_2);
        let mut csv = Table::new(COLUMNS);
        let mut paired = Table::new("method,reference,seed,n_test,mean_difference,se_difference");
        let mut timing = Table::new("what,name,seed,seconds,per_image");
        let mut images = Table::new("method,seed,image,bits_per_dim");

        let prepared = split().prepare_csv(seed)?;
        let train_x = prepared.transform.inverse(&prepared.train);
        let test_x = prepared.transform.inverse(&prepared.test);
        let n = test_x.nrows();
        // The references first: they check the grid before any training.
        let levels = IndependentLevels::fit(train_x.view(), e.support[0], e.support[1], q, 1.0)
            .map_err(|err| bad(format!("support: training images: {err}")))?;
        let discrete = levels
            .log_prob(test_x.view())
            .map_err(|err| bad(format!("support: held-out images: {err}")))?;
        let widths = vec![q; d];
        let gauss = fit_gaussian_dequantized(train_x.view(), &widths)
            .map_err(|err| bad(err.to_string()))?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::HeldoutDequantize.id());
        let draws: Vec<Array2<f64>> = (0..e.draws)
            .map(|_| {
                let mut y = test_x.clone();
                for r in y.rows_mut() {
                    add_uniform(r, &widths, &mut rng);
                }
                y
            })
            .collect();
        let mut methods: Vec<MethodBits> = vec![];
        let mut gauss_bits = Array2::zeros((e.draws, n));
        for (k, y) in draws.iter().enumerate() {
            gauss_bits
                .row_mut(k)
                .assign(&gauss.log_density(y.view()).mapv(to_bits));
        }
        methods.push(MethodBits {
            name: "gaussian".into(),
            bits: gauss_bits,
            score_evals: 0.0,
        });
        // P(x)/q^D on each bin: the same for every draw.
        let indep = discrete.mapv(|lp| to_bits(lp - d as f64 * q.ln()));
        methods.push(MethodBits {
            name: "independent_pixels".into(),
            bits: Array2::from_shape_fn((e.draws, n), |(_, i)| indep[i]),
            score_evals: 0.0,
        });
        let uniform = (levels.levels() as f64).log2();
        methods.push(MethodBits {
            name: "uniform".into(),
            bits: Array2::from_elem((e.draws, n), uniform),
            score_evals: 0.0,
        });
        if stop.load(Ordering::SeqCst) {
            let mut t = Tables::main(csv);
            t.stopped = true;
            return Ok(t);
        }
        let started = std::time::Instant::now();
        let model = train_into(
            &train_plan(seed)?,
            &cx.models().join(format!("seed{seed}")),
            stop,
        )?;
        timing.push(&TimingRow {
            what: "train".into(),
            name: "network".into(),
            seed,
            seconds: Fixed(started.elapsed().as_secs_f64()),
            per_image: None,
        })?;
        for (s, plan) in e.estimator.iter().zip(&plans) {
            let mut est = plan
                .prepare_with(model.clone())
                .map_err(|err| bad(format!("estimator {}: {err}", s.name)))?;
            let mut bits = Array2::zeros((e.draws, n));
            let mut evals = 0.0;
            let started = std::time::Instant::now();
            for (k, y) in draws.iter().enumerate() {
                est.resolved.seed = seed * 1000 + k as u64;
                let out = est
                    .run(y.view(), &mut stopper(stop))
                    .map_err(|err| bad(format!("estimator {}: {err}", s.name)))?;
                if out.interrupted {
                    let mut t = Tables::main(csv);
                    t.stopped = true;
                    return Ok(t);
                }
                for (i, r) in out.rows.iter().enumerate() {
                    bits[[k, i]] = to_bits(r.log_p);
                    evals += r.score_evals as f64;
                }
            }
            let secs = started.elapsed().as_secs_f64();
            timing.push(&TimingRow {
                what: "likelihood".into(),
                name: s.name.clone(),
                seed,
                seconds: Fixed(secs),
                per_image: Some(Fixed(secs / (n * e.draws) as f64)),
            })?;
            methods.push(MethodBits {
                name: s.name.clone(),
                bits,
                score_evals: evals / (n * e.draws) as f64,
            });
        }
        for m in &methods {
            let image = m.bits.mean_axis(ndarray::Axis(0)).expect("draws");
            let (mean, se) = mean_se(&image);
            if m.name != "uniform" {
                for (i, b) in image.iter().enumerate() {
                    images.push(&ImageRow {
                        method: m.name.clone(),
                        seed,
                        image: i,
                        bits_per_dim: Num(*b),
                    })?;
                }
            }
            let draw_sd = (e.draws > 1).then(|| {
                let within = m.bits.var_axis(ndarray::Axis(0), 1.0);
                Num(within.mean().expect("images").sqrt())
            });
            csv.push(&BitsRow {
                method: m.name.clone(),
                seed,
                n_test: n,
                draws: e.draws,
                bits_per_dim: Num(mean),
                bits_per_dim_se: Num(se),
                draw_sd,
                score_evals: Num(m.score_evals),
            })?;
        }
        let refs = [
            e.estimator[0].name.as_str(),
            "gaussian",
            "independent_pixels",
        ];
        for r in refs {
            let reference = &methods.iter().find(|m| m.name == r).expect("computed").bits;
            for m in methods
                .iter()
                .filter(|m| m.name != r && m.name != "uniform")
            {
                let diff = (&m.bits - reference)
                    .mean_axis(ndarray::Axis(0))
                    .expect("draws");
                let (mean, se) = mean_se(&diff);
                paired.push(&PairedRow {
                    method: m.name.clone(),
                    reference: r.into(),
                    seed,
                    n_test: n,
                    mean_difference: Num(mean),
                    se_difference: Num(se),
                })?;
            }
        }

        let mut out = Tables::main(csv);
        out.insert("paired", paired);
        out.insert("images", images);
        out.insert("timing", timing);
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<BitsRow> = rows.rows()?;
        let mut methods: Vec<&str> = vec![];
        for r in &parsed {
            if !methods.contains(&r.method.as_str()) {
                methods.push(&r.method);
            }
        }
        let mut summary =
            Table::new("method,seeds,bits_per_dim_mean,bits_per_dim_sd,bits_per_dim_se_mean");
        for m in methods {
            let v: Vec<&BitsRow> = parsed.iter().filter(|r| r.method == m).collect();
            let (mean, sd) = scorelab_pipeline::metrics::mean_sd_cell(
                &v.iter().map(|r| r.bits_per_dim.0).collect::<Vec<_>>(),
            );
            let se = v.iter().map(|r| r.bits_per_dim_se.0).sum::<f64>() / v.len() as f64;
            summary.push(&SummaryRow {
                method: m.into(),
                seeds: v.len(),
                bits_per_dim_mean: mean,
                bits_per_dim_sd: sd,
                bits_per_dim_se_mean: Num(se),
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        for name in ["paired", "images", "timing"] {
            out.insert(name, Tables::concat(&done, name)?);
        }
        Ok(out)
    }
}

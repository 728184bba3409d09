//! `kind = "noise"`: single-σ denoising score matching at each σ of `sigmas`, then the error
//! ½‖s_θ(x) − ∇log p(x)‖² to the clean score, averaged over p and binned by the distance from the
//! data (uniform points in a box), and the error to the noised score ∇log p_σ that DSM fits.

use super::shared::Outputs;
use crate::bad;
use crate::train::train_into;
use anyhow::Result;
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, Sample, Score};
use scorelab_eval::fisher_divergence;
use scorelab_pipeline::metrics::mean_sd;
use scorelab_pipeline::spec::DensitySpec;
use scorelab_pipeline::train::{DataSpec, ModelSpec, ObjectiveRaw, TrainPlan, TrainSettings};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// `kind = "noise"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Training seeds.
    pub seeds: Vec<u64>,
    /// The DSM noise levels.
    pub sigmas: Vec<f64>,
    /// The data density.
    pub density: DensitySpec,
    /// The network, as `[model]` of a train config.
    pub model: ModelSpec,
    /// The optimiser settings, as `[train]` of a train config.
    pub train: TrainSettings,
    /// Evaluation points drawn from p (for the p-averaged errors).
    pub points: usize,
    /// The box [low, high]ᴰ of the uniform points of the coverage analysis.
    pub box_low: f64,
    /// See `box_low`.
    pub box_high: f64,
    /// Uniform points in the box.
    pub box_points: usize,
    /// Data points defining "distance from the data" (exact samples of p).
    pub data_points: usize,
    /// Bin edges of the distance from the data.
    pub bins: Vec<f64>,
    /// Also write `NAME_field.csv`: the true, noised (∇log p_σ) and learned scores of the first
    /// seed's models on a
    /// `field_grid`×`field_grid` grid of the box, for 2-D densities (default 0: none).
    #[serde(default)]
    pub field_grid: usize,
}

/// The CSV header of the noise experiment's binned errors.
pub const NOISE_COLUMNS: &str =
    "sigma,seed,region,bin_low,bin_high,points,error_clean,se_clean,error_noised,se_noised";

/// Runs a noise experiment, its networks trained into `models` (module docs).
///
/// # Errors
/// An input error for a bad experiment; Ctrl-C while training or a diverging run.
pub fn run(e: &NoiseExperiment, models: &Path, stop: &AtomicBool) -> Result<Outputs> {
    if e.seeds.is_empty() || e.sigmas.is_empty() {
        return Err(bad("seeds and sigmas: give at least one of each").into());
    }
    if let Some(s) = e.sigmas.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(bad(format!("sigmas: every σ must be finite and > 0, got {s}")).into());
    }
    if e.box_low >= e.box_high
        || e.box_low.is_nan()
        || e.box_high.is_nan()
        || e.bins.len() < 2
        || e.bins.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(bad(
            "box_low < box_high and increasing bins (at least two edges) are required",
        )
        .into());
    }
    if e.points < 2 || e.box_points < 2 || e.data_points < 1 {
        return Err(bad("points, box_points: at least 2; data_points: at least 1").into());
    }
    let p = e
        .density
        .build()
        .map_err(|err| bad(err.within("density").to_string()))?;
    if p.noised(1.0).is_none() {
        return Err(bad(format!(
            "density: the error to the noised score needs a closed-form p_σ (gaussian or gaussian_mixture), not {}",
            p.kind()
        ))
        .into());
    }
    let d = p.dim();
    // The evaluation points, shared by every model: stream 0 for p, 1 for the box, 2 for the data.
    let stream = |k: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(0);
        r.set_stream(k);
        r
    };
    let from_p = p.sample(e.points, &mut stream(0));
    let mut rb = stream(1);
    let in_box =
        Array2::from_shape_simple_fn((e.box_points, d), || rb.gen_range(e.box_low..e.box_high));
    let data = p.sample(e.data_points, &mut stream(2));
    let dist: Array1<f64> = in_box
        .axis_iter(Axis(0))
        .map(|x| {
            data.axis_iter(Axis(0))
                .map(|y| {
                    x.iter()
                        .zip(&y)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect();
    if e.field_grid > 0 && (d != 2 || e.field_grid < 2) {
        return Err(bad(format!(
            "field_grid: needs a 2-D density and at least 2 points per axis (got D = {d}, field_grid = {}); use 0 for none",
            e.field_grid
        ))
        .into());
    }
    let n = e.field_grid;
    let grid = Array2::from_shape_fn((n * n, d.min(2)), |(i, j)| {
        let k = if j == 0 { i % n } else { i / n };
        e.box_low + (e.box_high - e.box_low) * k as f64 / (n.max(2) - 1) as f64
    });
    let mut field =
        String::from("sigma,x0,x1,log_p,true0,true1,noised0,noised1,learned0,learned1\n");
    let mut csv = format!("{NOISE_COLUMNS}\n");
    let mut summary_rows: Vec<(f64, Vec<[f64; 2]>)> = vec![];
    for &sigma in &e.sigmas {
        let mut per_seed = vec![];
        for &seed in &e.seeds {
            if stop.load(Ordering::SeqCst) {
                return Ok(Outputs::partial(csv));
            }
            let dir = models.join(format!("sigma{sigma}_seed{seed}"));
            let objective = ObjectiveRaw::Dsm { sigma }
                .try_into()
                .map_err(|err: scorelab_pipeline::PipelineError| bad(err.to_string()))?;
            let plan = TrainPlan::new(
                seed,
                DataSpec::density(e.density.clone()),
                e.model.clone(),
                objective,
                e.train.clone(),
            );
            eprintln!("scorelab experiment: dsm at σ = {sigma}, seed {seed}");
            let net = train_into(&plan, &dir, stop)?.network;
            let f = scorelab_models::F32Score::new(&net, None)
                .map_err(|err| bad(format!("model: {err}")))?;
            let noised = p.noised(sigma).expect("checked");
            let region = |x: &Array2<f64>| {
                let (clean, ct) = fisher_divergence(&f as &dyn Score, &p, x.view());
                let (nz, nt) = fisher_divergence(&f as &dyn Score, &noised, x.view());
                (clean, ct, nz, nt)
            };
            if n > 0 && seed == e.seeds[0] {
                let truth = p.score(grid.view());
                let learned = f.score(grid.view());
                let noised = p.noised_score(grid.view(), sigma).expect("checked");
                let log_p = scorelab_core::LogDensity::log_density(&p, grid.view());
                for i in 0..grid.nrows() {
                    field.push_str(&format!(
                        "{sigma},{},{},{},{},{},{},{},{},{}\n",
                        grid[[i, 0]],
                        grid[[i, 1]],
                        log_p[i],
                        truth[[i, 0]],
                        truth[[i, 1]],
                        noised[[i, 0]],
                        noised[[i, 1]],
                        learned[[i, 0]],
                        learned[[i, 1]]
                    ));
                }
            }
            // Averaged over p.
            let (c, _, nz, _) = region(&from_p);
            csv.push_str(&format!(
                "{sigma},{seed},p,,,{},{},{},{},{}\n",
                e.points, c.value, c.se, nz.value, nz.se
            ));
            per_seed.push([c.value, nz.value]);
            // Binned by the distance from the data.
            let (_, ct, _, nt) = region(&in_box);
            for w in e.bins.windows(2) {
                let idx: Vec<usize> = (0..dist.len())
                    .filter(|&i| dist[i] >= w[0] && dist[i] < w[1])
                    .collect();
                let stats = |t: &Array1<f64>| {
                    let v: Array1<f64> = idx.iter().map(|&i| t[i]).collect();
                    if v.len() >= 2 {
                        let m = scorelab_core::stats::MeanSe::of(v.view());
                        (format!("{}", m.mean), format!("{}", m.se))
                    } else {
                        (String::new(), String::new())
                    }
                };
                let (cm, cs) = stats(&ct);
                let (nm, ns) = stats(&nt);
                csv.push_str(&format!(
                    "{sigma},{seed},box,{},{},{},{cm},{cs},{nm},{ns}\n",
                    w[0],
                    w[1],
                    idx.len()
                ));
            }
        }
        summary_rows.push((sigma, per_seed));
    }
    let mut summary = String::from(
        "sigma,seeds,error_clean_mean,error_clean_sd,error_noised_mean,error_noised_sd\n",
    );
    for (sigma, v) in &summary_rows {
        let ms = |j: usize| mean_sd(&v.iter().map(|a| a[j]).collect::<Vec<_>>());
        let (cm, cs) = ms(0);
        let (nm, ns) = ms(1);
        summary.push_str(&format!("{sigma},{},{cm},{cs},{nm},{ns}\n", v.len()));
    }
    let extra = if n > 0 {
        vec![("field".to_string(), field)]
    } else {
        vec![]
    };
    Ok(Outputs {
        csv,
        summary,
        extra,
        interrupted: false,
    })
}

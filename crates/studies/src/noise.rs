//! `kind = "noise"`: single-σ denoising score matching at each σ of `sigmas`, then the error
//! ½‖s_θ(x) − ∇log p(x)‖² to the clean score, averaged over p and binned by the distance from the
//! data (uniform points in a box), and the error to the noised score ∇log p_σ that DSM fits.
//! One unit per σ and seed (σ outer), each training one network into `sigmaS_seedK/`.

use crate::bad;
use crate::shared::train_into;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{Array1, Array2, Axis};
use rand::Rng;
use scorelab_core::{Dimension, Sample, Score};
use scorelab_eval::fisher_divergence;
use scorelab_pipeline::metrics::mean_sd;
use scorelab_pipeline::spec::DensitySpec;
use scorelab_pipeline::train::{DataSpec, ModelSpec, Objective, TrainPlan, TrainSettings};
use serde::{Deserialize, Serialize};

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
    "sigma,seed,region,bin_low,bin_high,points,error_clean,se_clean,error_noised,se_noised,target_noised";

/// A row of `NAME.csv`: the errors over p (`region = "p"`, no bin) or in a bin of the distance
/// from the data (`region = "box"`; no error where the bin holds fewer than two points).
#[derive(Debug, Serialize, Deserialize)]
pub struct NoiseRow {
    /// The DSM noise level.
    pub sigma: Num,
    /// The training seed.
    pub seed: u64,
    /// `p` or `box`.
    pub region: String,
    /// The bin's lower edge.
    pub bin_low: Option<Num>,
    /// The bin's upper edge.
    pub bin_high: Option<Num>,
    /// The points averaged.
    pub points: usize,
    /// ½‖s_θ − ∇log p‖², mean.
    pub error_clean: Option<Num>,
    /// Its standard error.
    pub se_clean: Option<Num>,
    /// ½‖s_θ − ∇log p_σ‖², mean.
    pub error_noised: Option<Num>,
    /// Its standard error.
    pub se_noised: Option<Num>,
    /// ½‖∇log p_σ‖², mean over the same points: the size of the target, which shrinks like
    /// 1/(1 + σ²) near the modes, so `error_noised / target_noised` compares σs fairly.
    pub target_noised: Option<Num>,
}

/// A row of `NAME_summary.csv`: the p-averaged errors over seeds.
#[derive(Debug, Serialize)]
pub struct NoiseSummaryRow {
    /// The DSM noise level.
    pub sigma: Num,
    /// The seeds.
    pub seeds: usize,
    /// The error to the clean score: mean over seeds.
    pub error_clean_mean: Num,
    /// Its sd over seeds (empty for one seed).
    pub error_clean_sd: String,
    /// The error to the noised score: mean over seeds.
    pub error_noised_mean: Num,
    /// Its sd over seeds (empty for one seed).
    pub error_noised_sd: String,
}

/// A row of `NAME_field.csv`: the true, noised and learned scores at a grid point (2-D only).
#[derive(Debug, Serialize)]
pub struct FieldRow {
    /// The noise level of the learned network.
    pub sigma: Num,
    /// The point.
    pub x0: Num,
    /// See `x0`.
    pub x1: Num,
    /// log p there.
    pub log_p: Num,
    /// ∇log p.
    pub true0: Num,
    /// See `true0`.
    pub true1: Num,
    /// ∇log p_σ.
    pub noised0: Num,
    /// See `noised0`.
    pub noised1: Num,
    /// s_θ.
    pub learned0: Num,
    /// See `learned0`.
    pub learned1: Num,
}

const SUMMARY_COLUMNS: &str =
    "sigma,seeds,error_clean_mean,error_clean_sd,error_noised_mean,error_noised_sd";
const FIELD_COLUMNS: &str = "sigma,x0,x1,log_p,true0,true1,noised0,noised1,learned0,learned1";

/// What every unit evaluates on: points from p, uniform points in the box and their distance
/// from the data.
struct Points {
    from_p: Array2<f64>,
    in_box: Array2<f64>,
    dist: Array1<f64>,
    grid: Array2<f64>,
}

impl NoiseExperiment {
    fn density(&self) -> Result<scorelab_densities::AnyDensity> {
        Ok(self
            .density
            .build()
            .map_err(|err| bad(err.within("density").to_string()))?)
    }

    /// The evaluation points, shared by every unit: stream 0 of seed 0 for p, 1 for the box, 2
    /// for the data.
    fn points(&self, p: &impl Sample) -> Points {
        let d = p.dim();
        let stream = |k: u64| scorelab_core::streams::Stream::NoisePoints(k).rng(0);
        let from_p = p.sample(self.points, &mut stream(0));
        let mut rb = stream(1);
        let in_box = Array2::from_shape_simple_fn((self.box_points, d), || {
            rb.gen_range(self.box_low..self.box_high)
        });
        let data = p.sample(self.data_points, &mut stream(2));
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
        let n = self.field_grid;
        let grid = Array2::from_shape_fn((n * n, d.min(2)), |(i, j)| {
            let k = if j == 0 { i % n } else { i / n };
            self.box_low + (self.box_high - self.box_low) * k as f64 / (n.max(2) - 1) as f64
        });
        Points {
            from_p,
            in_box,
            dist,
            grid,
        }
    }

    fn unit_of(sigma: f64, seed: u64) -> Unit {
        Unit::new(format!("sigma{sigma}_seed{seed}"))
    }
}

impl Study for NoiseExperiment {
    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() || self.sigmas.is_empty() {
            return Err(bad("seeds and sigmas: give at least one of each").into());
        }
        if let Some(s) = self.sigmas.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(bad(format!("sigmas: every σ must be finite and > 0, got {s}")).into());
        }
        if self.box_low >= self.box_high
            || self.box_low.is_nan()
            || self.box_high.is_nan()
            || self.bins.len() < 2
            || self.bins.windows(2).any(|w| w[0] >= w[1])
        {
            return Err(bad(
                "box_low < box_high and increasing bins (at least two edges) are required",
            )
            .into());
        }
        if self.points < 2 || self.box_points < 2 || self.data_points < 1 {
            return Err(bad("points, box_points: at least 2; data_points: at least 1").into());
        }
        let p = self.density()?;
        if p.noised(1.0).is_none() {
            return Err(bad(format!(
                "density: the error to the noised score needs a closed-form p_σ (gaussian or gaussian_mixture), not {}",
                p.kind()
            ))
            .into());
        }
        let d = p.dim();
        if self.field_grid > 0 && (d != 2 || self.field_grid < 2) {
            return Err(bad(format!(
                "field_grid: needs a 2-D density and at least 2 points per axis (got D = {d}, field_grid = {}); use 0 for none",
                self.field_grid
            ))
            .into());
        }
        Ok(())
    }

    fn units(&self) -> Vec<Unit> {
        self.sigmas
            .iter()
            .flat_map(|&sigma| {
                self.seeds
                    .iter()
                    .map(move |&seed| Self::unit_of(sigma, seed))
            })
            .collect()
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let (sigma, seed) = self
            .sigmas
            .iter()
            .flat_map(|&sigma| self.seeds.iter().map(move |&seed| (sigma, seed)))
            .find(|&(sigma, seed)| Self::unit_of(sigma, seed) == *unit)
            .ok_or_else(|| bad(format!("no unit {:?} in this experiment", unit.id())))?;
        let p = self.density()?;
        let Points {
            from_p,
            in_box,
            dist,
            grid,
        } = self.points(&p);
        let objective = Objective::dsm(sigma).map_err(|err| bad(format!("sigma: {err}")))?;
        let plan = TrainPlan::new(
            seed,
            DataSpec::density(self.density.clone()),
            self.model.clone(),
            objective,
            self.train.clone(),
        );
        eprintln!("scorelab experiment: dsm at σ = {sigma}, seed {seed}");
        let net = train_into(&plan, &cx.models().join(unit.id()), cx.stop())?.network;
        let f = scorelab_models::F32Score::new(&net, None)
            .map_err(|err| bad(format!("model: {err}")))?;
        let noised = p.noised(sigma).expect("checked");
        // ½‖∇log p_σ‖² at each point: the target's own size.
        let half_sq = |x: &Array2<f64>| -> Array1<f64> {
            let s = noised.score(x.view());
            s.map_axis(Axis(1), |r| 0.5 * r.dot(&r))
        };
        let region = |x: &Array2<f64>| {
            let (clean, ct) = fisher_divergence(&f as &dyn Score, &p, x.view());
            let (nz, nt) = fisher_divergence(&f as &dyn Score, &noised, x.view());
            (clean, ct, nz, nt)
        };
        let mut out = Tables::default();
        if self.field_grid > 0 && seed == self.seeds[0] {
            let mut field = Table::new(FIELD_COLUMNS);
            let truth = p.score(grid.view());
            let learned = f.score(grid.view());
            let noised = p.noised_score(grid.view(), sigma).expect("checked");
            let log_p = scorelab_core::LogDensity::log_density(&p, grid.view());
            for i in 0..grid.nrows() {
                field.push(&FieldRow {
                    sigma: Num(sigma),
                    x0: Num(grid[[i, 0]]),
                    x1: Num(grid[[i, 1]]),
                    log_p: Num(log_p[i]),
                    true0: Num(truth[[i, 0]]),
                    true1: Num(truth[[i, 1]]),
                    noised0: Num(noised[[i, 0]]),
                    noised1: Num(noised[[i, 1]]),
                    learned0: Num(learned[[i, 0]]),
                    learned1: Num(learned[[i, 1]]),
                })?;
            }
            out.insert("field", field);
        }
        let mut rows = Table::new(NOISE_COLUMNS);
        // Averaged over p.
        let (c, _, nz, _) = region(&from_p);
        rows.push(&NoiseRow {
            sigma: Num(sigma),
            seed,
            region: "p".into(),
            bin_low: None,
            bin_high: None,
            points: self.points,
            error_clean: Some(Num(c.value)),
            se_clean: Some(Num(c.se)),
            error_noised: Some(Num(nz.value)),
            se_noised: Some(Num(nz.se)),
            target_noised: Some(Num(half_sq(&from_p).mean().unwrap_or(f64::NAN))),
        })?;
        // Binned by the distance from the data.
        let (_, ct, _, nt) = region(&in_box);
        let tt = half_sq(&in_box);
        for w in self.bins.windows(2) {
            let idx: Vec<usize> = (0..dist.len())
                .filter(|&i| dist[i] >= w[0] && dist[i] < w[1])
                .collect();
            let stats = |t: &Array1<f64>| {
                let v: Array1<f64> = idx.iter().map(|&i| t[i]).collect();
                if v.len() >= 2 {
                    let m = scorelab_core::stats::MeanSe::of(v.view());
                    (Some(Num(m.mean)), Some(Num(m.se)))
                } else {
                    (None, None)
                }
            };
            let (cm, cs) = stats(&ct);
            let (nm, ns) = stats(&nt);
            let (tm, _) = stats(&tt);
            rows.push(&NoiseRow {
                sigma: Num(sigma),
                seed,
                region: "box".into(),
                bin_low: Some(Num(w[0])),
                bin_high: Some(Num(w[1])),
                points: idx.len(),
                error_clean: cm,
                se_clean: cs,
                error_noised: nm,
                se_noised: ns,
                target_noised: tm,
            })?;
        }
        out.insert("", rows);
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<NoiseRow> = rows.rows()?;
        let mut summary = Table::new(SUMMARY_COLUMNS);
        for &sigma in &self.sigmas {
            // The p-averaged errors of every seed at this σ.
            let per_seed: Vec<[f64; 2]> = parsed
                .iter()
                .filter(|r| r.region == "p" && r.sigma.0 == sigma)
                .map(|r| {
                    [
                        r.error_clean.map_or(f64::NAN, |n| n.0),
                        r.error_noised.map_or(f64::NAN, |n| n.0),
                    ]
                })
                .collect();
            let ms = |j: usize| mean_sd(&per_seed.iter().map(|a| a[j]).collect::<Vec<_>>());
            let (cm, cs) = ms(0);
            let (nm, ns) = ms(1);
            summary.push(&NoiseSummaryRow {
                sigma: Num(sigma),
                seeds: per_seed.len(),
                error_clean_mean: Num(cm),
                error_clean_sd: cs,
                error_noised_mean: Num(nm),
                error_noised_sd: ns,
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        if self.field_grid > 0 {
            out.insert("field", Tables::concat(&done, "field")?);
        }
        Ok(out)
    }
}

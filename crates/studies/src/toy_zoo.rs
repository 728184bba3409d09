//! `kind = "toy_zoo"`: one noise-conditional network per 2-D toy data set of FFJORD's
//! ([`scorelab_densities::Toy`]) and seed, sampled, and judged by its held-out likelihood through
//! the probability-flow ODE, by MMD² to held-out points, and where the toy's density is closed
//! form by KL(p ‖ p_θ) by quadrature.
//!
//! Per toy and seed:
//!
//! - **the network**: `model`, `objective`, `train` of a `scorelab train` config on `data.toy`
//!   (fresh draws every step);
//! - **samples**: `samples` chains of the `sampler` (a `scorelab sample` sampler table);
//! - **NLL**: −log p_θ in nats per point of the first `heldout` of the toy's fixed held-out points
//!   of the seed ([`scorelab_densities::Toy::heldout`]), through the ODE with the exact
//!   divergence (`ode`: `scorelab likelihood` keys; `divergence` is set to `exact`), with its
//!   standard error over points; for `8gaussians` and `checkerboard` also the true density's
//!   −log p on the same points (`nll_true`, the entropy's estimate, the floor of the NLL);
//! - **MMD²** between the samples and the same held-out points, with one bandwidth per toy (the
//!   median pairwise distance of seed 1's held-out points, fixed across seeds; `bandwidth`);
//! - **KL(p ‖ p_θ)** = ∫ p (log p − log p_θ) for `8gaussians` (Gauss–Legendre on
//!   [−`kl.box`, `kl.box`]² with `kl.panels` × `kl.nodes` per axis) and `checkerboard` (on
//!   [−4, 4]² with the panels aligned with its squares, so each node lies inside one), with
//!   `kl_change`, the change when the panels are halved (the rule's own error estimate). The
//!   reverse direction is infinite for the checkerboard, whose p is 0 off its squares.
//!
//! Writes `NAME.csv` (one row per toy and seed), `NAME_summary.csv` (mean and sd over seeds),
//! `NAME_samples.csv` (`toy,what,x0,x1`: the first seed's held-out points and samples,
//! `figure_points` of each), `NAME_density.csv` (`toy,x0,x1,log_p`: the first seed's learned
//! log-density on a `grid`² grid over [−`grid_box`, `grid_box`]²) and `NAME_timing.csv`.

use super::shared::{typed, Outputs};
use crate::bad;
use crate::shared::train_into;
use anyhow::Result;
use ndarray::{s, Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_densities::Toy;
use scorelab_eval::mmd2;
use scorelab_pipeline::likelihood::{Estimation, LikelihoodPlan};
use scorelab_pipeline::metrics::{finite_rows, mean_sd_cell};
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::sample::SamplePlan;
use scorelab_pipeline::train::{DataSpec, TrainPlan, TrainedModel};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

/// `kind = "toy_zoo"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToyZooExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Seeds: each gives its own weights, draws and held-out points.
    pub seeds: Vec<u64>,
    /// The toy data sets (default: all eight).
    #[serde(default = "all_toys")]
    pub toys: Vec<String>,
    /// Chains of the sampler per toy and seed.
    pub samples: usize,
    /// Held-out points used (the first of the toy's 10 000 of the seed; default all).
    #[serde(default = "default_heldout")]
    pub heldout: usize,
    /// `[model]` of the networks' train config (noise-conditional).
    pub model: toml::Table,
    /// `[objective]` of their train config.
    pub objective: toml::Table,
    /// `[train]` of their train config.
    pub train: toml::Table,
    /// The sampler: a `scorelab sample` `sampler` table.
    pub sampler: toml::Table,
    /// `scorelab likelihood` keys of the NLL's ODE (schedule, solver, rtol, atol, batch).
    #[serde(default)]
    pub ode: toml::Table,
    /// The KL quadrature.
    pub kl: KlRule,
    /// Grid points per axis of the learned density (first seed, for the figure; default 48).
    #[serde(default = "default_grid")]
    pub grid: usize,
    /// Half-width of the density grid's box (default 4.5).
    #[serde(default = "default_grid_box")]
    pub grid_box: f64,
    /// Held-out points and samples per toy kept for the figure (default 1000).
    #[serde(default = "default_figure_points")]
    pub figure_points: usize,
}

/// `kl`: the quadrature of KL(p ‖ p_θ).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlRule {
    /// Panels per axis (a multiple of 8, so that halving keeps the checkerboard's squares
    /// aligned).
    pub panels: usize,
    /// Gauss–Legendre nodes per panel.
    pub nodes: usize,
    /// Half-width of `8gaussians`' box.
    #[serde(rename = "box")]
    pub half_width: f64,
}

fn all_toys() -> Vec<String> {
    scorelab_densities::TOY_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_heldout() -> usize {
    scorelab_densities::TOY_HELDOUT
}
fn default_grid() -> usize {
    48
}
fn default_grid_box() -> f64 {
    4.5
}
fn default_figure_points() -> usize {
    1000
}

/// The CSV header of a toy-zoo experiment.
pub const COLUMNS: &str =
    "toy,seed,n_heldout,nll,nll_se,nll_true,mmd2,mmd2_se,bandwidth,kl,kl_change,score_evals";

/// log p_θ at the rows of `x` through the ODE, and the score evaluations per point.
fn log_p_evals(
    est: &Estimation,
    x: &Array2<f64>,
    stop: &AtomicBool,
) -> Result<Option<(Array1<f64>, f64)>> {
    let out = est
        .run(x.view(), &mut stopper(stop))
        .map_err(|e| bad(format!("ode: {e}")))?;
    if out.interrupted {
        return Ok(None);
    }
    let evals =
        out.rows.iter().map(|r| r.score_evals as f64).sum::<f64>() / out.rows.len().max(1) as f64;
    Ok(Some((out.rows.iter().map(|r| r.log_p).collect(), evals)))
}

/// log p_θ at the rows of `x` through the ODE.
fn log_p(est: &Estimation, x: &Array2<f64>, stop: &AtomicBool) -> Result<Option<Array1<f64>>> {
    Ok(log_p_evals(est, x, stop)?.map(|(lp, _)| lp))
}

/// The product rule's nodes and weights on [lo, hi]².
fn square_rule(lo: f64, hi: f64, panels: usize, nodes: usize) -> (Array2<f64>, Array1<f64>) {
    let (z, w) = scorelab_densities::quadrature::legendre(lo, hi, panels, nodes);
    let m = z.len();
    let x = Array2::from_shape_fn(
        (m * m, 2),
        |(i, j)| if j == 0 { z[i % m] } else { z[i / m] },
    );
    let wt = Array1::from_shape_fn(m * m, |i| w[i % m] * w[i / m]);
    (x, wt)
}

/// KL(p ‖ p_θ) by the rule with `panels` panels, or `None` where p has no closed form.
fn kl(
    toy: Toy,
    rule: &KlRule,
    panels: usize,
    est: &Estimation,
    stop: &AtomicBool,
) -> Result<Option<f64>> {
    let (lo, hi) = match toy {
        Toy::EightGaussians => (-rule.half_width, rule.half_width),
        Toy::Checkerboard => (-4.0, 4.0),
        _ => return Ok(None),
    };
    let (x, w) = square_rule(lo, hi, panels, rule.nodes);
    let lp = toy.log_density(x.view()).expect("closed form");
    // Only nodes where p > 0 carry mass (the checkerboard's squares).
    let keep: Vec<usize> = (0..x.nrows()).filter(|&i| lp[i].is_finite()).collect();
    let xs = x.select(ndarray::Axis(0), &keep);
    let Some(lq) = log_p(est, &xs, stop)? else {
        return Ok(None);
    };
    Ok(Some(
        keep.iter()
            .zip(lq.iter())
            .map(|(&i, q)| w[i] * lp[i].exp() * (lp[i] - q))
            .sum(),
    ))
}

/// Runs a toy-zoo experiment, its networks trained into `models` (module docs).
///
/// # Errors
/// An input error for a bad experiment; Ctrl-C while training; a diverging run.
pub fn run(e: &ToyZooExperiment, models: &Path, stop: &AtomicBool) -> Result<Outputs> {
    if e.seeds.is_empty() || e.toys.is_empty() {
        return Err(bad("seeds, toys: give at least one of each").into());
    }
    let toys: Vec<Toy> = e
        .toys
        .iter()
        .map(|t| t.parse().map_err(|err| bad(format!("toys: {err}"))))
        .collect::<Result<_, _>>()?;
    if e.samples < 2 || e.heldout < 2 || e.heldout > scorelab_densities::TOY_HELDOUT {
        return Err(bad(format!(
            "samples: at least 2; heldout: between 2 and {}",
            scorelab_densities::TOY_HELDOUT
        ))
        .into());
    }
    if e.kl.panels == 0
        || !e.kl.panels.is_multiple_of(8)
        || e.kl.nodes < 2
        || !e.kl.half_width.is_finite()
        || e.kl.half_width <= 0.0
    {
        return Err(bad(
            "kl: panels a positive multiple of 8 (halved, they stay aligned with the checkerboard's squares), nodes ≥ 2, box > 0",
        )
        .into());
    }
    if e.grid < 2 || !e.grid_box.is_finite() || e.grid_box <= 0.0 {
        return Err(bad("grid: at least 2; grid_box: positive").into());
    }
    if e.model.get("kind").and_then(|k| k.as_str()) != Some("noise_conditional_mlp") {
        return Err(bad(
            "model.kind: must be \"noise_conditional_mlp\" (its ODE gives the likelihood)",
        )
        .into());
    }
    let mut ode = e.ode.clone();
    if ode.contains_key("divergence") || ode.contains_key("model_dir") {
        return Err(bad("ode: divergence (always exact here) and model_dir are set by the experiment; remove them").into());
    }
    ode.insert("divergence".into(), "exact".into());
    let lplan: LikelihoodPlan = typed(ode.into(), "ode")?;
    let plan_for = |seed: u64, toy: Toy| -> Result<TrainPlan> {
        Ok(TrainPlan::new(
            seed,
            DataSpec {
                toy: Some(toy.name().into()),
                ..DataSpec::default()
            },
            typed(e.model.clone().into(), "model")?,
            typed(e.objective.clone().into(), "objective")?,
            typed(e.train.clone().into(), "train")?,
        ))
    };
    let sample_plan = |seed: u64| -> Result<SamplePlan> {
        let mut t = toml::Table::new();
        t.insert("seed".into(), (seed as i64).into());
        t.insert("chains".into(), (e.samples as i64).into());
        t.insert("sampler".into(), e.sampler.clone().into());
        typed(t.into(), "sampler")
    };
    // Everything is checked before the first network trains: the plans, the sampler and the ODE
    // against the untrained network (its architecture and σ̃ range are the trained one's), and
    // the sizes of the KL rule and the density grid.
    let limit = scorelab_pipeline::memory::MemoryLimit::from_env()?;
    let untrained = plan_for(e.seeds[0], toys[0])?.prepare(limit)?.untrained();
    sample_plan(e.seeds[0])?
        .prepare_with(untrained.clone())
        .map_err(|err| bad(format!("sampler: {err}")))?;
    let est = lplan
        .prepare_with(untrained)
        .map_err(|err| bad(format!("ode: {err}")))?;
    for toy in &toys {
        let held = toy.heldout(e.seeds[0]);
        est.check_points(
            held.slice(s![..e.heldout, ..]),
            &format!("{} held-out points", toy.name()),
        )
        .map_err(|err| bad(format!("ode: {err}")))?;
    }
    let nodes = (e.kl.panels as u64).saturating_mul(e.kl.nodes as u64);
    scorelab_pipeline::memory::check(
        nodes.saturating_mul(nodes).saturating_mul(4 * 8),
        limit,
        || {
            format!(
                "the KL rule ({} × {} nodes per axis)",
                e.kl.panels, e.kl.nodes
            )
        },
        "lower kl.panels or kl.nodes",
    )?;
    scorelab_pipeline::memory::check(
        (e.grid as u64)
            .saturating_mul(e.grid as u64)
            .saturating_mul(4 * 8),
        limit,
        || format!("the density grid ({0} × {0} points)", e.grid),
        "lower grid",
    )?;
    let mut csv = format!("{COLUMNS}\n");
    let mut timing = String::from("what,toy,seed,seconds\n");
    let mut figure = String::from("toy,what,x0,x1\n");
    let mut density = String::from("toy,x0,x1,log_p\n");
    let mut per_toy: Vec<(String, Vec<[f64; 3]>)> = vec![];
    let bar = crate::bar(
        (toys.len() * e.seeds.len()) as u64,
        "{bar:30} {pos}/{len} · {msg} · eta {eta}",
    );
    let bandwidths: Vec<f64> = toys
        .iter()
        .map(|t| {
            let h = t.heldout(e.seeds[0]);
            let h = h.slice(s![..e.heldout.min(2000), ..]);
            scorelab_eval::median_bandwidth(h, h)
        })
        .collect();
    // Every network first, as many at a time as the machine has cores, each on one thread (a 2-D
    // network's step is too small to keep two cores busy); each run is deterministic on its own,
    // so the results do not depend on the order.
    let jobs: Vec<(u64, Toy)> = e
        .seeds
        .iter()
        .flat_map(|&seed| toys.iter().map(move |&t| (seed, t)))
        .collect();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let train_bar = crate::bar(
        jobs.len() as u64,
        "training {bar:30} {pos}/{len} · eta {eta}",
    );
    let mut trained = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(workers.max(1)) {
        let results: Vec<Result<(TrainedModel, f64)>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(seed, toy)| {
                    let plan = plan_for(seed, toy);
                    let dir = models.join(format!("{}_seed{seed}", toy.name()));
                    scope.spawn(move || -> Result<(TrainedModel, f64)> {
                        // Its own one-thread pool: the steps are small enough to run on one
                        // thread (as they would alone), and the workers do not share one.
                        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
                        let started = std::time::Instant::now();
                        let m = pool.install(|| train_into(&plan?, &dir, stop))?;
                        Ok((m, started.elapsed().as_secs_f64()))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a training thread panicked"))
                .collect()
        });
        for r in results {
            trained.push(r?);
            train_bar.inc(1);
        }
    }
    train_bar.finish_and_clear();
    let mut trained = trained.into_iter();
    for (si, &seed) in e.seeds.iter().enumerate() {
        for (ti, &toy) in toys.iter().enumerate() {
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                return Ok(Outputs::partial(csv));
            }
            let name = toy.name();
            bar.set_message(format!("{name} seed {seed}"));
            let (model, seconds) = trained.next().expect("one network per toy and seed");
            timing.push_str(&format!("train,{name},{seed},{seconds:.3}\n"));
            let started = std::time::Instant::now();
            let sampling = sample_plan(seed)?
                .prepare_with(model.clone())
                .map_err(|err| bad(format!("sampler: {err}")))?;
            let out = sampling.run(seed, &mut stopper(stop));
            if out.interrupted {
                bar.abandon();
                return Ok(Outputs::partial(csv));
            }
            let x = finite_rows(out.x.view());
            if x.nrows() < 2 {
                return Err(anyhow::anyhow!(
                    "{name} seed {seed}: fewer than two chains stayed finite"
                ));
            }
            timing.push_str(&format!(
                "sample,{name},{seed},{:.3}\n",
                started.elapsed().as_secs_f64()
            ));
            let held = toy.heldout(seed).slice(s![..e.heldout, ..]).to_owned();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(300 + ti as u64);
            let m = mmd2(x.view(), held.view(), Some(bandwidths[ti]), 0, &mut rng);
            let started = std::time::Instant::now();
            let est = lplan
                .prepare_with(model)
                .map_err(|err| bad(format!("ode: {err}")))?;
            let Some((lp, evals)) = log_p_evals(&est, &held, stop)? else {
                bar.abandon();
                return Ok(Outputs::partial(csv));
            };
            let n = held.nrows() as f64;
            let nll = -lp.mean().expect("rows");
            let nll_se = lp.std(1.0) / n.sqrt();
            let nll_true = toy
                .log_density(held.view())
                .map(|t| (-t.mean().expect("rows")).to_string())
                .unwrap_or_default();
            let (kl_full, kl_half) = (
                kl(toy, &e.kl, e.kl.panels, &est, stop)?,
                kl(toy, &e.kl, e.kl.panels / 2, &est, stop)?,
            );
            let (kl_cell, change_cell) = match (kl_full, kl_half) {
                (Some(a), Some(b)) => (a.to_string(), (a - b).abs().to_string()),
                _ => (String::new(), String::new()),
            };
            timing.push_str(&format!(
                "likelihood,{name},{seed},{:.3}\n",
                started.elapsed().as_secs_f64()
            ));
            csv.push_str(&format!(
                "{name},{seed},{},{nll},{nll_se},{nll_true},{},{},{},{kl_cell},{change_cell},{}\n",
                held.nrows(),
                m.estimate.value,
                m.estimate.se,
                bandwidths[ti],
                evals,
            ));
            let kl_v = kl_full.unwrap_or(f64::NAN);
            match per_toy.iter_mut().find(|p| p.0 == name) {
                Some(p) => p.1.push([nll, m.estimate.value, kl_v]),
                None => per_toy.push((name.into(), vec![[nll, m.estimate.value, kl_v]])),
            }
            if si == 0 {
                let k = e.figure_points;
                for (what, pts) in [("data", &held), ("samples", &x)] {
                    for r in pts.rows().into_iter().take(k) {
                        figure.push_str(&format!("{name},{what},{},{}\n", r[0], r[1]));
                    }
                }
                let g = e.grid;
                let b = e.grid_box;
                let at = |k: usize| -b + 2.0 * b * k as f64 / (g - 1) as f64;
                let grid =
                    Array2::from_shape_fn(
                        (g * g, 2),
                        |(i, j)| {
                            if j == 0 {
                                at(i % g)
                            } else {
                                at(i / g)
                            }
                        },
                    );
                let Some(lg) = log_p(&est, &grid, stop)? else {
                    bar.abandon();
                    return Ok(Outputs::partial(csv));
                };
                for (r, v) in grid.rows().into_iter().zip(lg.iter()) {
                    density.push_str(&format!("{name},{},{},{v}\n", r[0], r[1]));
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut summary = String::from("toy,seeds,nll_mean,nll_sd,mmd2_mean,mmd2_sd,kl_mean,kl_sd\n");
    for (t, v) in &per_toy {
        let col = |k: usize| mean_sd_cell(&v.iter().map(|r| r[k]).collect::<Vec<_>>());
        let (a, b) = col(0);
        let (c, d) = col(1);
        let (k1, k2) = if v[0][2].is_nan() {
            (String::new(), String::new())
        } else {
            col(2)
        };
        summary.push_str(&format!("{t},{},{a},{b},{c},{d},{k1},{k2}\n", v.len()));
    }
    Ok(Outputs {
        csv,
        summary,
        extra: vec![
            ("samples".into(), figure),
            ("density".into(), density),
            ("timing".into(), timing),
        ],
        interrupted: false,
    })
}

crate::whole_study!(
    ToyZooExperiment,
    |e: &ToyZooExperiment, cx: &crate::study::Context| run(e, cx.models(), cx.stop())
);

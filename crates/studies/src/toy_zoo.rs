//! `kind = "toy_zoo"`: one noise-conditional network per 2-D toy data set of FFJORD's
//! ([`scorelab_densities::Toy`]) and seed, sampled, and judged by its held-out likelihood through
//! the probability-flow ODE, by MMD² to held-out points, and where the toy's density is closed
//! form by KL(p ‖ p_θ) by quadrature.
//!
//! One unit per seed and toy (seed outer), each training its network into `TOY_seedK/`; the
//! units are small enough to run one per core at once ([`Study::parallel`]). Per toy and seed:
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
//!   median pairwise distance of seed 1's held-out points, fixed across seeds; `bandwidth`), and
//!   `mmd2_fine` at a tenth of it: the median bandwidth blurs structure finer than itself (rings
//!   whose samples fill a disc score ~0), the fine one sees it;
//! - **baselines** on the same held-out points, fitted to [`BASELINE_POINTS`] fresh draws of the
//!   toy: a Gaussian KDE with a likelihood-cross-validated bandwidth (`nll_kde`,
//!   [`scorelab_pipeline::baselines::kde_cv`]) and a [`BASELINE_COMPONENTS`]-component Gaussian
//!   mixture by EM (`nll_mixture`);
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

use crate::bad;
use crate::shared::train_into;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{s, Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_densities::Toy;
use scorelab_eval::mmd2;
use scorelab_pipeline::likelihood::{DivergenceKind, Estimation, LikelihoodPlan};
use scorelab_pipeline::metrics::{finite_rows, mean_sd_cell};
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::sample::{AnySampler, SamplePlan};
use scorelab_pipeline::train::{DataSpec, ModelSpec, Objective, TrainPlan, TrainSettings};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicBool;

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
    pub model: ModelSpec,
    /// `[objective]` of their train config.
    pub objective: Objective,
    /// `[train]` of their train config.
    pub train: TrainSettings,
    /// The sampler: a `scorelab sample` `sampler` table.
    pub sampler: AnySampler,
    /// `scorelab likelihood` keys of the NLL's ODE (schedule, solver, rtol, atol, batch).
    #[serde(default)]
    pub ode: LikelihoodPlan,
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
    "toy,seed,n_heldout,nll,nll_se,nll_true,nll_kde,nll_mixture,mmd2,mmd2_se,bandwidth,mmd2_fine,mmd2_fine_se,kl,kl_change,score_evals";

/// Fresh draws of a toy the baselines are fitted to.
pub const BASELINE_POINTS: usize = 2000;

/// Components of the EM mixture baseline.
pub const BASELINE_COMPONENTS: usize = 20;

/// The KDE baseline's bandwidth factors (times the data's covariance), chosen among by
/// leave-one-out likelihood.
const KDE_FACTORS: [f64; 9] = [0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5];

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

/// KL(p ‖ p_θ) by the rule with `panels` panels (p's square, [`Toy::kl_square`]), or `None`
/// where p has no closed form (or Ctrl-C stopped the ODE).
fn kl(
    toy: Toy,
    rule: &KlRule,
    panels: usize,
    est: &Estimation,
    stop: &AtomicBool,
) -> Result<Option<f64>> {
    let Some((lo, hi)) = toy.kl_square(rule.half_width) else {
        return Ok(None);
    };
    let cubature =
        scorelab_densities::quadrature::legendre_box([lo, lo], [hi, hi], panels, rule.nodes);
    let lp = toy.log_density(cubature.nodes.view()).expect("closed form");
    let mut failed = None;
    let kl = scorelab_eval::kl_by_cubature(&cubature, lp.view(), |x| {
        match log_p(est, &x.to_owned(), stop) {
            Ok(lq) => lq,
            Err(e) => {
                failed = Some(e);
                None
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(kl),
    }
}

/// The baselines' −log p (nats per point, mean over `held`): a KDE with a cross-validated bandwidth
/// and a [`BASELINE_COMPONENTS`]-component EM mixture (2 restarts, at most 300 iterations), both
/// fitted to [`BASELINE_POINTS`] draws of `toy` from [`Stream::ToyBaseline`]`(index)` of `seed`.
///
/// [`Stream::ToyBaseline`]: scorelab_core::streams::Stream::ToyBaseline
///
/// # Errors
/// If a fit fails.
pub fn baseline_nll(toy: Toy, index: u64, seed: u64, held: &Array2<f64>) -> Result<(f64, f64)> {
    use scorelab_core::{LogDensity, Sample};
    use scorelab_pipeline::baselines::{fit_mixture_em, kde_cv};
    let mut rng = scorelab_core::streams::Stream::ToyBaseline(index).rng(seed);
    let train = toy.sample(BASELINE_POINTS, &mut rng);
    let nll = |lp: Array1<f64>| -lp.mean().unwrap_or(f64::NAN);
    let (kde, _, _) = kde_cv(train.view(), &KDE_FACTORS)
        .map_err(|err| bad(format!("{}: baseline kde: {err}", toy.name())))?;
    let (mix, _) = fit_mixture_em(train.view(), BASELINE_COMPONENTS, 2, 300, seed)
        .map_err(|err| bad(format!("{}: baseline mixture: {err}", toy.name())))?;
    Ok((
        nll(kde.log_density(held.view())),
        nll(mix.log_density(held.view())),
    ))
}

/// A row of `NAME.csv`: one toy and seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct ToyZooRow {
    /// The toy's name.
    pub toy: String,
    /// The seed.
    pub seed: u64,
    /// Held-out points.
    pub n_heldout: usize,
    /// −log p_θ per point, mean over the held-out points.
    pub nll: Num,
    /// Its standard error.
    pub nll_se: Num,
    /// The true density's −log p on the same points (closed-form toys only).
    pub nll_true: Option<Num>,
    /// The cross-validated KDE's −log p on the same points.
    pub nll_kde: Num,
    /// The EM mixture's −log p on the same points.
    pub nll_mixture: Num,
    /// MMD² between samples and held-out points.
    pub mmd2: Num,
    /// Its standard error.
    pub mmd2_se: Num,
    /// The RBF bandwidth of the MMD².
    pub bandwidth: Num,
    /// MMD² at a tenth of that bandwidth.
    pub mmd2_fine: Num,
    /// Its standard error.
    pub mmd2_fine_se: Num,
    /// KL(p ‖ p_θ) by quadrature (closed-form toys only).
    pub kl: Option<Num>,
    /// Its change when the panels are halved.
    pub kl_change: Option<Num>,
    /// Score evaluations per point of the ODE.
    pub score_evals: Num,
}

/// A row of `NAME_timing.csv` (a timing file).
#[derive(Debug, Serialize)]
struct TimingRow<'a> {
    what: &'a str,
    toy: &'a str,
    seed: u64,
    seconds: String,
}

/// A row of `NAME_samples.csv`: a held-out point or a sample of the first seed.
#[derive(Debug, Serialize)]
struct PointRow<'a> {
    toy: &'a str,
    what: &'a str,
    x0: Num,
    x1: Num,
}

/// A row of `NAME_density.csv`: the first seed's learned log-density at a grid point.
#[derive(Debug, Serialize)]
struct DensityRow<'a> {
    toy: &'a str,
    x0: Num,
    x1: Num,
    log_p: Num,
}

/// A row of `NAME_summary.csv`.
#[derive(Debug, Serialize)]
struct SummaryRow {
    toy: String,
    seeds: usize,
    nll_mean: String,
    nll_sd: String,
    nll_kde_mean: String,
    nll_kde_sd: String,
    nll_mixture_mean: String,
    nll_mixture_sd: String,
    mmd2_mean: String,
    mmd2_sd: String,
    mmd2_fine_mean: String,
    mmd2_fine_sd: String,
    kl_mean: String,
    kl_sd: String,
}

impl ToyZooExperiment {
    fn toys(&self) -> Result<Vec<Toy>> {
        Ok(self
            .toys
            .iter()
            .map(|t| t.parse().map_err(|err| bad(format!("toys: {err}"))))
            .collect::<Result<_, _>>()?)
    }

    fn likelihood_plan(&self) -> Result<LikelihoodPlan> {
        let mut ode = self.ode.clone();
        if ode.divergence.is_some() || ode.model_dir.is_some() {
            return Err(bad("ode: divergence (always exact here) and model_dir are set by the experiment; remove them").into());
        }
        ode.divergence = Some(DivergenceKind::Exact);
        Ok(ode)
    }

    fn train_plan(&self, seed: u64, toy: Toy) -> Result<TrainPlan> {
        Ok(TrainPlan::new(
            seed,
            DataSpec {
                toy: Some(toy),
                ..DataSpec::default()
            },
            self.model.clone(),
            self.objective.clone(),
            self.train.clone(),
        ))
    }

    fn sample_plan(&self, seed: u64) -> Result<SamplePlan> {
        Ok(SamplePlan::new(seed, self.samples, self.sampler.clone()))
    }

    /// The units' (seed, toy), seed outer (toys by their canonical names).
    fn jobs(&self) -> Vec<(u64, Toy)> {
        let toys = self.toys().unwrap_or_default();
        self.seeds
            .iter()
            .flat_map(|&seed| toys.iter().map(move |&t| (seed, t)))
            .collect()
    }
}

impl Study for ToyZooExperiment {
    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() || self.toys.is_empty() {
            return Err(bad("seeds, toys: give at least one of each").into());
        }
        let toys = self.toys()?;
        if self.samples < 2 || self.heldout < 2 || self.heldout > scorelab_densities::TOY_HELDOUT {
            return Err(bad(format!(
                "samples: at least 2; heldout: between 2 and {}",
                scorelab_densities::TOY_HELDOUT
            ))
            .into());
        }
        if self.kl.panels == 0
            || !self.kl.panels.is_multiple_of(8)
            || self.kl.nodes < 2
            || !self.kl.half_width.is_finite()
            || self.kl.half_width <= 0.0
        {
            return Err(bad(
                "kl: panels a positive multiple of 8 (halved, they stay aligned with the checkerboard's squares), nodes ≥ 2, box > 0",
            )
            .into());
        }
        if self.grid < 2 || !self.grid_box.is_finite() || self.grid_box <= 0.0 {
            return Err(bad("grid: at least 2; grid_box: positive").into());
        }
        if !matches!(self.model, ModelSpec::NoiseConditionalMlp { .. }) {
            return Err(bad(
                "model.kind: must be \"noise_conditional_mlp\" (its ODE gives the likelihood)",
            )
            .into());
        }
        let lplan = self.likelihood_plan()?;
        // Everything is checked before the first network trains: the plans, the sampler and the
        // ODE against the untrained network (its architecture and σ̃ range are the trained
        // one's), and the sizes of the KL rule and the density grid.
        let limit = scorelab_pipeline::memory::MemoryLimit::from_env()?;
        let untrained = self
            .train_plan(self.seeds[0], toys[0])?
            .prepare_within(limit)?
            .untrained();
        self.sample_plan(self.seeds[0])?
            .prepare_with(untrained.clone())
            .map_err(|err| bad(format!("sampler: {err}")))?;
        let est = lplan
            .prepare_with(untrained)
            .map_err(|err| bad(format!("ode: {err}")))?;
        for toy in &toys {
            let held = toy.heldout(self.seeds[0]);
            est.check_points(
                held.slice(s![..self.heldout, ..]),
                &format!("{} held-out points", toy.name()),
            )
            .map_err(|err| bad(format!("ode: {err}")))?;
        }
        let nodes = (self.kl.panels as u64).saturating_mul(self.kl.nodes as u64);
        scorelab_pipeline::memory::check(
            nodes.saturating_mul(nodes).saturating_mul(4 * 8),
            limit,
            || {
                format!(
                    "the KL rule ({} × {} nodes per axis)",
                    self.kl.panels, self.kl.nodes
                )
            },
            "lower kl.panels or kl.nodes",
        )?;
        scorelab_pipeline::memory::check(
            (self.grid as u64)
                .saturating_mul(self.grid as u64)
                .saturating_mul(4 * 8),
            limit,
            || format!("the density grid ({0} × {0} points)", self.grid),
            "lower grid",
        )?;
        Ok(())
    }

    fn units(&self) -> Vec<Unit> {
        self.jobs()
            .into_iter()
            .map(|(seed, toy)| Unit::new(format!("{}_seed{seed}", toy.name())))
            .collect()
    }

    /// A 2-D network's step is too small to keep two cores busy: the units run one per core.
    fn parallel(&self) -> bool {
        true
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let stop = cx.stop();
        let (seed, toy) = self
            .jobs()
            .into_iter()
            .find(|(seed, toy)| format!("{}_seed{seed}", toy.name()) == unit.id())
            .ok_or_else(|| bad(format!("no unit {:?} in this experiment", unit.id())))?;
        let name = toy.name();
        let mut rows = Table::new(COLUMNS);
        let mut timing = Table::new("what,toy,seed,seconds");
        let stopped = |rows: Table| {
            let mut t = Tables::main(rows);
            t.stopped = true;
            Ok(t)
        };
        let started = std::time::Instant::now();
        let model = train_into(
            &self.train_plan(seed, toy)?,
            &cx.models().join(unit.id()),
            stop,
        )?;
        let seconds = format!("{:.3}", started.elapsed().as_secs_f64());
        timing.push(&TimingRow {
            what: "train",
            toy: name,
            seed,
            seconds,
        })?;
        let started = std::time::Instant::now();
        let sampling = self
            .sample_plan(seed)?
            .prepare_with(model.clone())
            .map_err(|err| bad(format!("sampler: {err}")))?;
        let out = sampling.run(&mut stopper(stop));
        if out.interrupted {
            return stopped(rows);
        }
        let x = finite_rows(out.x.view());
        if x.nrows() < 2 {
            return Err(anyhow::anyhow!(
                "{name} seed {seed}: fewer than two chains stayed finite"
            ));
        }
        timing.push(&TimingRow {
            what: "sample",
            toy: name,
            seed,
            seconds: format!("{:.3}", started.elapsed().as_secs_f64()),
        })?;
        let held = toy.heldout(seed).slice(s![..self.heldout, ..]).to_owned();
        // One bandwidth per toy: the median pairwise distance of the first seed's held-out points.
        let bandwidth = {
            let h = toy.heldout(self.seeds[0]);
            let h = h.slice(s![..self.heldout.min(2000), ..]);
            scorelab_eval::median_bandwidth(h, h)
        };
        let ti = self.toys()?.iter().position(|&t| t == toy).unwrap_or(0);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::ToyMmd(ti as u64).id());
        let m = mmd2(x.view(), held.view(), Some(bandwidth), 0, &mut rng);
        let fine = mmd2(x.view(), held.view(), Some(bandwidth / 10.0), 0, &mut rng);
        let (nll_kde, nll_mixture) = baseline_nll(toy, ti as u64, seed, &held)?;
        // The baselines' fits do not look at the stop flag: a signal during them stops here.
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return stopped(rows);
        }
        let started = std::time::Instant::now();
        let est = self
            .likelihood_plan()?
            .prepare_with(model)
            .map_err(|err| bad(format!("ode: {err}")))?;
        let Some((lp, evals)) = log_p_evals(&est, &held, stop)? else {
            return stopped(rows);
        };
        let n = held.nrows() as f64;
        let nll = -lp.mean().expect("rows");
        let nll_se = lp.std(1.0) / n.sqrt();
        let nll_true = toy
            .log_density(held.view())
            .map(|t| Num(-t.mean().expect("rows")));
        let (kl_full, kl_half) = (
            kl(toy, &self.kl, self.kl.panels, &est, stop)?,
            kl(toy, &self.kl, self.kl.panels / 2, &est, stop)?,
        );
        let (kl_v, kl_change) = match (kl_full, kl_half) {
            (Some(a), Some(b)) => (Some(Num(a)), Some(Num((a - b).abs()))),
            _ => (None, None),
        };
        timing.push(&TimingRow {
            what: "likelihood",
            toy: name,
            seed,
            seconds: format!("{:.3}", started.elapsed().as_secs_f64()),
        })?;
        rows.push(&ToyZooRow {
            toy: name.into(),
            seed,
            n_heldout: held.nrows(),
            nll: Num(nll),
            nll_se: Num(nll_se),
            nll_true,
            nll_kde: Num(nll_kde),
            nll_mixture: Num(nll_mixture),
            mmd2: Num(m.estimate.value),
            mmd2_se: Num(m.estimate.se),
            bandwidth: Num(bandwidth),
            mmd2_fine: Num(fine.estimate.value),
            mmd2_fine_se: Num(fine.estimate.se),
            kl: kl_v,
            kl_change,
            score_evals: Num(evals),
        })?;
        let mut out = Tables::default();
        if seed == self.seeds[0] {
            let mut figure = Table::new("toy,what,x0,x1");
            for (what, pts) in [("data", &held), ("samples", &x)] {
                for r in pts.rows().into_iter().take(self.figure_points) {
                    figure.push(&PointRow {
                        toy: name,
                        what,
                        x0: Num(r[0]),
                        x1: Num(r[1]),
                    })?;
                }
            }
            let (g, b) = (self.grid, self.grid_box);
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
                return stopped(rows);
            };
            let mut density = Table::new("toy,x0,x1,log_p");
            for (r, v) in grid.rows().into_iter().zip(lg.iter()) {
                density.push(&DensityRow {
                    toy: name,
                    x0: Num(r[0]),
                    x1: Num(r[1]),
                    log_p: Num(*v),
                })?;
            }
            out.insert("samples", figure);
            out.insert("density", density);
        }
        out.insert("", rows);
        out.insert("timing", timing);
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<ToyZooRow> = rows.rows()?;
        let mut summary = Table::new("toy,seeds,nll_mean,nll_sd,nll_kde_mean,nll_kde_sd,nll_mixture_mean,nll_mixture_sd,mmd2_mean,mmd2_sd,mmd2_fine_mean,mmd2_fine_sd,kl_mean,kl_sd");
        for toy in self.toys()? {
            let v: Vec<&ToyZooRow> = parsed.iter().filter(|r| r.toy == toy.name()).collect();
            let col = |f: &dyn Fn(&ToyZooRow) -> f64| {
                mean_sd_cell(&v.iter().map(|r| f(r)).collect::<Vec<_>>())
            };
            let (nll_mean, nll_sd) = col(&|r| r.nll.0);
            let (mmd2_mean, mmd2_sd) = col(&|r| r.mmd2.0);
            let (mmd2_fine_mean, mmd2_fine_sd) = col(&|r| r.mmd2_fine.0);
            let (nll_kde_mean, nll_kde_sd) = col(&|r| r.nll_kde.0);
            let (nll_mixture_mean, nll_mixture_sd) = col(&|r| r.nll_mixture.0);
            let (kl_mean, kl_sd) = if v[0].kl.is_none() {
                (String::new(), String::new())
            } else {
                col(&|r| r.kl.map_or(f64::NAN, |k| k.0))
            };
            summary.push(&SummaryRow {
                toy: toy.name().into(),
                seeds: v.len(),
                nll_mean,
                nll_sd,
                nll_kde_mean,
                nll_kde_sd,
                nll_mixture_mean,
                nll_mixture_sd,
                mmd2_mean,
                mmd2_sd,
                mmd2_fine_mean,
                mmd2_fine_sd,
                kl_mean,
                kl_sd,
            })?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        for name in ["samples", "density", "timing"] {
            out.insert(name, Tables::concat(&done, name)?);
        }
        Ok(out)
    }
}

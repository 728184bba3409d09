//! `kind = "likelihood_accuracy"`: the probability-flow ODE's log-likelihood checked against the
//! truth ([`scorelab_samplers::likelihood`]).
//!
//! One unit per density kind, schedule and rtol of the accuracy table, then one each for the
//! three other parts.
//!
//! - **Accuracy** (`NAME.csv`): seeded Gaussians and 3-component mixtures
//!   ([`scorelab_densities::random`]) in every D of `dims`,
//!   under every schedule of `schedules`, at every rtol of `rtols` (atol = rtol): points drawn
//!   from the marginal p_{t₀} at the ODE's start, their log p by the exact divergence against the
//!   closed-form log p_{t₀}, with the exact prior p_T (the solver's error alone) and with the
//!   schedule's Gaussian prior (the same flow: the difference is log N(x_T) − log p_T(x_T), whose
//!   mean over x_T ∼ p_T is −KL(p_T ‖ N(0, c²I)), closed form for a Gaussian).
//! - **Hutchinson** (`NAME_hutchinson.csv`): on a fixed Heun grid, each point's mean over
//!   `projections` probes minus the exact divergence on the same grid; their mean over points
//!   with its standard error (z = mean/SE, which is N(0, 1) for an unbiased estimator up to the
//!   SE's own noise), the fraction of points within 2 SE, and the variance of a one-probe
//!   estimate, per D and probe kind.
//! - **Normalisation** (`NAME_normalization.csv`): untrained noise-conditional networks' 2-D
//!   densities exp(log p) integrated by composite Gauss–Legendre quadrature over boxes around the
//!   bounding box of samples drawn through the same ODE, scaled by growing factors.
//! - **Cost** (`NAME_cost.csv`): seconds per point of the exact divergence (structured and naive
//!   trace) and of Hutchinson with one probe, for a `[cost]` network in each D, on the same rk45
//!   solve (the steps do not depend on the divergence, so every method makes the same evaluations).

use crate::bad;
use crate::study::{Context, Fixed, Num, Sci, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::ArrayView2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::NoisedScore;
use scorelab_core::{LogDensity, Sample};
use scorelab_densities::random::{random_gaussian, random_mixture};
use scorelab_densities::AnyDensity;
use scorelab_models::{Activation, F32Noised, NetworkKind, NetworkSpec, Precondition, TraceMethod};
use scorelab_pipeline::likelihood::DensityFlow;
use scorelab_samplers::likelihood::{
    gaussian_log_prior, Divergence, FlowSolver, Likelihood, Probe,
};
use scorelab_samplers::solve::Rk45;
use scorelab_samplers::{sample, Ode, OdeSolver, Schedule};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// `kind = "likelihood_accuracy"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LikelihoodAccuracyExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// Seed of the densities, the points and the probes.
    pub seed: u64,
    /// The dimensions D of the accuracy sweep.
    pub dims: Vec<usize>,
    /// The schedules (each as a `schedule = {…}` table).
    pub schedules: Vec<Schedule>,
    /// The relative tolerances (atol = rtol).
    pub rtols: Vec<f64>,
    /// Points per case.
    pub points: usize,
    /// The Hutchinson comparison.
    pub hutchinson: HutchinsonPart,
    /// The 2-D normalisation check.
    pub normalization: NormalizationPart,
    /// The cost comparison.
    pub cost: CostPart,
}

/// `[hutchinson]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HutchinsonPart {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Probes per point.
    pub projections: usize,
    /// Points per D.
    pub points: usize,
    /// Heun steps of the fixed grid.
    pub steps: usize,
    /// The schedule.
    pub schedule: Schedule,
}

/// `[normalization]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NormalizationPart {
    /// The boxes: the bounding box of `locate` samples drawn through the network's own ODE (rk45
    /// from its prior), its half-widths scaled by each factor.
    pub box_factors: Vec<f64>,
    /// Samples that locate the mass.
    pub locate: usize,
    /// Composite Gauss–Legendre panels of 8 nodes per axis.
    pub panels: usize,
    /// The untrained network (2-D): hidden widths.
    pub hidden: Vec<usize>,
    /// Its seeds.
    pub seeds: Vec<u64>,
    /// With EDM's preconditioning (σ_data = 1) or without.
    pub preconditions: Vec<bool>,
    /// The schedule.
    pub schedule: Schedule,
    /// rtol = atol of the solves.
    pub rtol: f64,
}

/// `[cost]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostPart {
    /// Dimensions.
    pub dims: Vec<usize>,
    /// Hidden widths of the noise-conditional network.
    pub hidden: Vec<usize>,
    /// Points timed per D and method (one batch).
    pub points: usize,
    /// Repeats; the fastest is kept.
    pub repeats: usize,
    /// The schedule.
    pub schedule: Schedule,
    /// rtol = atol of the solve.
    pub rtol: f64,
}

/// The CSV header of the accuracy sweep.
pub const ACCURACY_COLUMNS: &str = "density,dim,schedule,rtol,points,score_evals,mean_abs_error,max_abs_error,mean_error_gaussian_prior,se_error_gaussian_prior,minus_kl_prior_closed_form";

/// A row of `NAME.csv` (the accuracy sweep): one density, D, schedule and rtol.
#[derive(Serialize)]
struct AccuracyRow {
    density: String,
    dim: usize,
    schedule: String,
    rtol: Num,
    points: usize,
    score_evals: usize,
    mean_abs_error: Sci,
    max_abs_error: Sci,
    mean_error_gaussian_prior: Sci,
    se_error_gaussian_prior: Sci,
    minus_kl_prior_closed_form: Option<Num>,
}

/// A row of `NAME_summary.csv`: the worst errors of an accuracy unit over every D.
#[derive(Serialize)]
struct AccuracySummaryRow {
    density: String,
    schedule: String,
    rtol: Num,
    worst_mean_abs_error: Sci,
    worst_max_abs_error: Sci,
}

/// A row of `NAME_hutchinson.csv`: Hutchinson's divergence against the exact one.
#[derive(Serialize)]
struct HutchinsonRow {
    density: String,
    dim: usize,
    probe: String,
    schedule: String,
    steps: usize,
    points: usize,
    projections: usize,
    mean_difference: Sci,
    se_difference: Sci,
    z: Num,
    fraction_within_2se: Num,
    one_probe_variance: Sci,
    one_probe_sd: Num,
    max_abs_divergence: Num,
}

/// A row of `NAME_normalization.csv`: ∫ p_θ over a box by the ODE's density.
#[derive(Serialize)]
struct NormalizationRow {
    network: String,
    seed: u64,
    precondition: String,
    schedule: String,
    center_x0: Num,
    center_x1: Num,
    half_width_x0: Num,
    half_width_x1: Num,
    box_factor: Num,
    nodes_per_axis: usize,
    integral: Num,
    integral_minus_one: Sci,
}

/// A row of `NAME_cost.csv`: seconds per point of each divergence.
#[derive(Serialize)]
struct CostRow {
    dim: usize,
    hidden: String,
    method: String,
    points: usize,
    score_evals: usize,
    seconds_per_point: Sci,
    ratio_to_hutchinson: Fixed<3>,
}

/// Hidden widths as a cell: `128 128`.
fn widths(hidden: &[usize]) -> String {
    hidden
        .iter()
        .map(|h| h.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The accuracy units' (density, schedule index, rtol), in the order of the rows.
fn accuracy_jobs(e: &LikelihoodAccuracyExperiment) -> Vec<(&'static str, usize, f64)> {
    let mut jobs = vec![];
    for density in ["gaussian", "mixture"] {
        for k in 0..e.schedules.len() {
            for &rtol in &e.rtols {
                jobs.push((density, k, rtol));
            }
        }
    }
    jobs
}

fn accuracy_id(density: &str, k: usize, rtol: f64) -> String {
    format!("accuracy_{density}_schedule{k}_rtol{rtol}")
}

/// One accuracy unit: a density kind, schedule and rtol over every D; its rows and its summary
/// row. `None` if stopped.
fn accuracy(
    e: &LikelihoodAccuracyExperiment,
    density: &str,
    spec: &Schedule,
    rtol: f64,
    stop: &AtomicBool,
) -> Result<Option<(Table, Table)>> {
    let fail = |e: scorelab_samplers::solve::SolveError| anyhow::Error::from(bad(e.to_string()));
    let mut csv = Table::new(ACCURACY_COLUMNS);
    let mut summary = Table::new("density,schedule,rtol,worst_mean_abs_error,worst_max_abs_error");
    let schedule = *spec;
    let mut worst = (0.0f64, 0.0f64);
    for &d in &e.dims {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(e.seed ^ (d as u64) << 8);
        let p: AnyDensity = match density {
            "gaussian" => random_gaussian(d, &mut rng).into(),
            _ => random_mixture(d, &mut rng).into(),
        };
        let lik = Likelihood::new(
            schedule,
            Divergence::Exact,
            FlowSolver::Rk45(Rk45::new(rtol, rtol)?),
        )?;
        let (_, a0, s0) = lik.start();
        let (_, a1, s1) = lik.end();
        let start = p.marginal(a0, s0).expect("closed form");
        let end = p.marginal(a1, s1).expect("closed form");
        let x = start.sample(e.points, &mut rng);
        let truth = start.log_density(x.view());
        let src = DensityFlow::new(&p).expect("closed form");
        let flow = lik.flow(&src, x.view(), &mut rng).map_err(fail)?;
        let c = schedule.prior_std();
        let (exact, _) = flow.log_p(end.log_density(flow.x_end.view()).view());
        let (gauss, _) = flow.log_p(gaussian_log_prior(flow.x_end.view(), c).view());
        let err: Vec<f64> = (&exact - &truth).to_vec();
        let gerr: Vec<f64> = (&gauss - &truth).to_vec();
        let mean_abs = err.iter().map(|v| v.abs()).sum::<f64>() / err.len() as f64;
        let max_abs = err.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        worst = (worst.0.max(mean_abs), worst.1.max(max_abs));
        let scorelab_core::stats::MeanSe {
            mean: gm, se: gse, ..
        } = scorelab_core::stats::MeanSe::of_slice(&gerr);
        let kl = match &end {
            AnyDensity::Gaussian(q) => Some(Num(-q.kl_to_isotropic(c))),
            _ => None,
        };
        csv.push(&AccuracyRow {
            density: density.into(),
            dim: d,
            schedule: spec.label(),
            rtol: Num(rtol),
            points: e.points,
            score_evals: flow.score_evals,
            mean_abs_error: Sci(mean_abs),
            max_abs_error: Sci(max_abs),
            mean_error_gaussian_prior: Sci(gm),
            se_error_gaussian_prior: Sci(gse),
            minus_kl_prior_closed_form: kl,
        })?;
    }
    summary.push(&AccuracySummaryRow {
        density: density.into(),
        schedule: spec.label(),
        rtol: Num(rtol),
        worst_mean_abs_error: Sci(worst.0),
        worst_max_abs_error: Sci(worst.1),
    })?;
    Ok(Some((csv, summary)))
}

impl Study for LikelihoodAccuracyExperiment {
    fn check(&self) -> Result<()> {
        if self.dims.is_empty()
            || self.schedules.is_empty()
            || self.rtols.is_empty()
            || self.points < 2
        {
            return Err(
                bad("dims, schedules and rtols: give at least one each, and points ≥ 2").into(),
            );
        }
        Ok(())
    }

    /// One unit per density kind, schedule and rtol of the accuracy table (every D in it), then
    /// one each for the Hutchinson comparison, the normalisation and the cost.
    fn units(&self) -> Vec<Unit> {
        let mut units: Vec<Unit> = accuracy_jobs(self)
            .into_iter()
            .map(|(d, k, r)| Unit::new(accuracy_id(d, k, r)))
            .collect();
        for part in ["hutchinson", "normalization", "cost"] {
            units.push(Unit::new(part));
        }
        units
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let stop = cx.stop();
        let stopped = || {
            let mut t = Tables::default();
            t.stopped = true;
            t
        };
        let part = |name: &str, t: Option<Table>| match t {
            Some(table) => {
                let mut out = Tables::default();
                out.insert(name, table);
                out
            }
            None => stopped(),
        };
        Ok(match unit.id() {
            "hutchinson" => part("hutchinson", hutchinson(self, stop)?),
            "normalization" => part("normalization", normalization(self, stop)?),
            "cost" => part("cost", cost(self, stop)?),
            id => {
                let (density, k, rtol) = accuracy_jobs(self)
                    .into_iter()
                    .find(|&(d, k, r)| accuracy_id(d, k, r) == id)
                    .ok_or_else(|| bad(format!("no unit {id:?} in this experiment")))?;
                match accuracy(self, density, &self.schedules[k], rtol, stop)? {
                    Some((rows, summary)) => {
                        let mut out = Tables::main(rows);
                        out.insert("summary", summary);
                        out
                    }
                    None => stopped(),
                }
            }
        })
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let mut out = Tables::main(Tables::concat(&done, "")?);
        for name in ["summary", "hutchinson", "normalization", "cost"] {
            out.insert(name, Tables::concat(&done, name)?);
        }
        Ok(out)
    }
}

/// The Hutchinson comparison (module docs); `None` if stopped.
fn hutchinson(e: &LikelihoodAccuracyExperiment, stop: &AtomicBool) -> Result<Option<Table>> {
    let h = &e.hutchinson;
    if h.projections < 2 || h.points < 2 {
        return Err(bad("hutchinson: projections and points must be at least 2").into());
    }
    let schedule = h.schedule;
    let fail = |e: scorelab_samplers::solve::SolveError| anyhow::Error::from(bad(e.to_string()));
    let mut csv = Table::new("density,dim,probe,schedule,steps,points,projections,mean_difference,se_difference,z,fraction_within_2se,one_probe_variance,one_probe_sd,max_abs_divergence");
    for &d in &h.dims {
        for probe in [Probe::Rademacher, Probe::Gaussian] {
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let mut rng = ChaCha8Rng::seed_from_u64(e.seed ^ (d as u64) << 8);
            let p: AnyDensity = random_mixture(d, &mut rng).into();
            let solver = FlowSolver::Heun { steps: h.steps };
            let exact = Likelihood::new(schedule, Divergence::Exact, solver)?;
            let hut = Likelihood::new(
                schedule,
                Divergence::Hutchinson {
                    projections: h.projections,
                    probe,
                },
                solver,
            )?;
            let (_, a0, s0) = exact.start();
            let x = p
                .marginal(a0, s0)
                .expect("closed form")
                .sample(h.points, &mut rng);
            let src = DensityFlow::new(&p).expect("closed form");
            let fe = exact.flow(&src, x.view(), &mut rng).map_err(fail)?;
            let fh = hut.flow(&src, x.view(), &mut rng).map_err(fail)?;
            // Same grid and the same x: the states agree, so the priors are equal and the
            // divergence integrals compare directly.
            // Per point: the mean over probes minus the exact value, and its standard error.
            let k = h.projections as f64;
            let mut diff = vec![];
            let mut var = vec![];
            for i in 0..h.points {
                let row = fh.divergence.row(i);
                diff.push(row.mean().expect("k ≥ 2") - fe.divergence[[i, 0]]);
                var.push(row.var(1.0));
            }
            let np = h.points as f64;
            let bias = diff.iter().sum::<f64>() / np;
            let bias_se = (var.iter().map(|v| v / k).sum::<f64>()).sqrt() / np;
            let within = diff
                .iter()
                .zip(&var)
                .filter(|(d, v)| d.abs() <= 2.0 * (*v / k).sqrt())
                .count() as f64
                / np;
            let mv = var.iter().sum::<f64>() / np;
            let max_abs_exact = fe.divergence.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            csv.push(&HutchinsonRow {
                density: "mixture".into(),
                dim: d,
                probe: probe.name().into(),
                schedule: h.schedule.label(),
                steps: h.steps,
                points: h.points,
                projections: h.projections,
                mean_difference: Sci(bias),
                se_difference: Sci(bias_se),
                z: Num(bias / bias_se),
                fraction_within_2se: Num(within),
                one_probe_variance: Sci(mv),
                one_probe_sd: Num(mv.sqrt()),
                max_abs_divergence: Num(max_abs_exact),
            })?;
        }
    }
    Ok(Some(csv))
}

fn noise_conditional(d: usize, hidden: &[usize], pre: bool, seed: u64) -> Result<F32Noised> {
    let net = NetworkSpec {
        kind: NetworkKind::NoiseConditionalMlp,
        dim: d,
        hidden: hidden.to_vec(),
        activation: Activation::Softplus,
        tau: None,
        precondition: pre.then_some(Precondition::Edm { sigma_data: 1.0 }),
    }
    .build(seed)?;
    Ok(F32Noised::new(&net)?)
}

/// The normalisation check (module docs); `None` if stopped.
fn normalization(e: &LikelihoodAccuracyExperiment, stop: &AtomicBool) -> Result<Option<Table>> {
    let n = &e.normalization;
    let schedule = n.schedule;
    let lik = Likelihood::new(
        schedule,
        Divergence::Exact,
        FlowSolver::Rk45(Rk45::new(n.rtol, n.rtol)?),
    )?;
    let fail = |e: scorelab_samplers::solve::SolveError| anyhow::Error::from(bad(e.to_string()));
    let c = lik.schedule().prior_std();
    let mut csv = Table::new("network,seed,precondition,schedule,center_x0,center_x1,half_width_x0,half_width_x1,box_factor,nodes_per_axis,integral,integral_minus_one");
    let sampler = Ode::with_solver(
        *lik.schedule(),
        OdeSolver::Rk45(Rk45::new(n.rtol, n.rtol)?),
        1,
        false,
    )?;
    for &pre in &n.preconditions {
        for &seed in &n.seeds {
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let f = noise_conditional(2, &n.hidden, pre, seed)?;
            let mut rng = ChaCha8Rng::seed_from_u64(e.seed);
            let prior = lik.schedule().prior(n.locate, 2, &mut rng);
            let xs = sample(&sampler, &f as &dyn NoisedScore, prior, &mut rng);
            let mut center = [0.0; 2];
            let mut half = [0.0; 2];
            for j in 0..2 {
                let col = xs.column(j);
                let lo = col.fold(f64::INFINITY, |a, &b| a.min(b));
                let hi = col.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                center[j] = 0.5 * (lo + hi);
                half[j] = 0.5 * (hi - lo);
            }
            for &factor in &n.box_factors {
                if stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                let (h0, h1) = (factor * half[0], factor * half[1]);
                let rule = scorelab_densities::quadrature::legendre_box(
                    [center[0] - h0, center[1] - h1],
                    [center[0] + h0, center[1] + h1],
                    n.panels,
                    8,
                );
                let (pts, weights) = (&rule.nodes, &rule.weights);
                let (mm, m) = (weights.len(), n.panels * 8);
                let mut total = 0.0;
                for start in (0..mm).step_by(1024) {
                    let end = (start + 1024).min(mm);
                    let x: ArrayView2<f64> = pts.slice(ndarray::s![start..end, ..]);
                    let flow = lik.flow(&f, x, &mut rng).map_err(fail)?;
                    let (lp, _) = flow.log_p(gaussian_log_prior(flow.x_end.view(), c).view());
                    total += (start..end)
                        .zip(lp.iter())
                        .map(|(i, l)| weights[i] * l.exp())
                        .sum::<f64>();
                }
                csv.push(&NormalizationRow {
                    network: format!("untrained [{}]", widths(&n.hidden)),
                    seed,
                    precondition: if pre { "edm" } else { "none" }.into(),
                    schedule: n.schedule.label(),
                    center_x0: Num(center[0]),
                    center_x1: Num(center[1]),
                    half_width_x0: Num(half[0]),
                    half_width_x1: Num(half[1]),
                    box_factor: Num(factor),
                    nodes_per_axis: m,
                    integral: Num(total),
                    integral_minus_one: Sci(total - 1.0),
                })?;
            }
        }
    }
    Ok(Some(csv))
}

/// The cost comparison (module docs); `None` if stopped.
fn cost(e: &LikelihoodAccuracyExperiment, stop: &AtomicBool) -> Result<Option<Table>> {
    let c = &e.cost;
    let schedule = c.schedule;
    let fail = |e: scorelab_samplers::solve::SolveError| anyhow::Error::from(bad(e.to_string()));
    let tol = FlowSolver::Rk45(Rk45::new(c.rtol, c.rtol)?);
    let mut csv =
        Table::new("dim,hidden,method,points,score_evals,seconds_per_point,ratio_to_hutchinson");
    for &d in &c.dims {
        let methods: [(&str, Divergence, TraceMethod); 3] = [
            (
                "hutchinson_1",
                Divergence::Hutchinson {
                    projections: 1,
                    probe: Probe::Rademacher,
                },
                TraceMethod::Structured,
            ),
            (
                "exact_structured",
                Divergence::Exact,
                TraceMethod::Structured,
            ),
            ("exact_naive", Divergence::Exact, TraceMethod::Naive),
        ];
        let mut rng = ChaCha8Rng::seed_from_u64(e.seed);
        let x = scorelab_samplers::standard_normal(c.points, d, &mut rng);
        let mut base = f64::NAN;
        for (name, div, method) in methods {
            if stop.load(Ordering::SeqCst) {
                return Ok(None);
            }
            let f = noise_conditional(d, &c.hidden, false, 1)?.with_trace(method);
            let lik = Likelihood::new(schedule, div, tol)?;
            let mut best = f64::INFINITY;
            let mut evals = 0;
            for _ in 0..c.repeats.max(1) {
                let t = std::time::Instant::now();
                let flow = lik.flow(&f, x.view(), &mut rng).map_err(fail)?;
                best = best.min(t.elapsed().as_secs_f64());
                evals = flow.score_evals;
            }
            let per = best / c.points as f64;
            if name == "hutchinson_1" {
                base = per;
            }
            csv.push(&CostRow {
                dim: d,
                hidden: widths(&c.hidden),
                method: name.into(),
                points: c.points,
                score_evals: evals,
                seconds_per_point: Sci(per),
                ratio_to_hutchinson: Fixed(per / base),
            })?;
        }
    }
    Ok(Some(csv))
}

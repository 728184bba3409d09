//! `kind = "guidance"`: what classifier-free guidance samples, measured exactly on
//! class-conditional Gaussian mixtures.
//!
//! A mixture p with a class c (a set of its components) gives the exact conditional
//! p(x | c) (the class's components, renormalised) and unconditional p(x), and so the exact
//! guided score (1 + w) ∇log p_σ̃(y | c) − w ∇log p_σ̃(y) at every σ̃
//! ([`scorelab_samplers::guidance`]). Guided sampling is often said to sample the tilted law
//! π_w(x) ∝ p(x | c)^{1+w} p(x)^{−w}. Per target, guidance weight w, interval and seed this study
//! measures what it samples instead:
//!
//! - **the tilted law** π_w: its normaliser Z_w = E_{p(·|c)}[(p(x|c)/p(x))^w] by tensor
//!   Gauss–Legendre quadrature in 2-D (`quadrature`) and by Monte Carlo over `reference_draws`
//!   draws of p(x | c) in any dimension (the ratio p(x|c)/p(x) ≤ 1/P(c) is bounded, so the
//!   estimate has finite variance), both written; its mode weights, per-mode spread (tr Cov) and
//!   E_π[log π] by self-normalised importance sampling from the same draws;
//! - **the exact guided ODE** (`sampler = exact_ode`): the guided probability-flow ODE from the
//!   schedule's Gaussian prior, solved by Dormand–Prince at `flow_tol` (no discretisation error),
//!   and the exact density q of its outputs through the same ODE with the exact divergence of the
//!   guided score (the instantaneous change of variables), so that KL(q ‖ π_w) = E_q[log q − log
//!   π_w] and KL(q ‖ p(·|c)) are Monte Carlo means over its outputs with their standard errors;
//! - **every `[[sampler]]`** (deterministic or stochastic) on the same guided score from the same
//!   starts: the mean log π_w of its outputs minus E_π[log π_w] (`log_pi_gap`: positive for
//!   samples concentrated where π is high), the worst mode-weight error against π's
//!   (`weight_error`, over the class's modes), the mass outside the class (`off_class`), and the
//!   spread of each mode against π's (`spread_ratio`: the π-weighted mean over the class's modes
//!   of tr Ĉₖ / tr Cov_π,ₖ).
//!
//! Outputs are assigned to components by largest responsibility under p. One unit per target and
//! seed ([`Study::parallel`]). Writes `NAME.csv` (`target,interval,weight,sampler,seed,metric,
//! value,se`), `NAME_summary.csv` (mean and sd over seeds), `NAME_modes.csv` (per mode of the
//! class: the weights and spreads of every sampler's output beside π's) and `NAME_tilted.csv`
//! (per target, weight and seed: log Z_w by each method, π's off-class mass and E_π[log π]).

use crate::bad;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use ndarray::{Array1, ArrayView2, Axis};
use scorelab_core::stats::{log_sum_exp, MeanSe};
use scorelab_core::streams::Stream;
use scorelab_core::{LogDensity, Sample};
use scorelab_densities::{AnyDensity, GaussianMixture};
use scorelab_pipeline::metrics::mean_sd;
use scorelab_pipeline::spec::DensitySpec;
use scorelab_pipeline::truth;
use scorelab_samplers::guidance::{Guidance, Guided};
use scorelab_samplers::likelihood::{gaussian_log_prior, Divergence, FlowSolver, Likelihood};
use scorelab_samplers::solve::Rk45;
use scorelab_samplers::{AnySampler, Schedule};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// `kind = "guidance"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// The seeds: each draws its own starts, reference draws and sampler noise.
    pub seeds: Vec<u64>,
    /// The guidance weights w (Ho & Salimans's convention; diffusers' scale is 1 + w).
    pub weights: Vec<f64>,
    /// Chains per run.
    pub chains: usize,
    /// Draws of p(x | c) for π's Monte Carlo normaliser and moments (default 100 000).
    #[serde(default = "default_reference_draws")]
    pub reference_draws: usize,
    /// The schedule every run is on (default `edm`).
    #[serde(default = "default_schedule")]
    pub schedule: Schedule,
    /// The tolerance of the exact guided ODE and of its likelihood (default 1e-8).
    #[serde(default = "default_flow_tol")]
    pub flow_tol: f64,
    /// The targets.
    pub target: Vec<GuidanceTarget>,
    /// Where guidance acts (default: one interval, `all`, every σ̃).
    #[serde(default = "default_intervals")]
    pub interval: Vec<IntervalSpec>,
    /// The samplers run beside the exact ODE: a sampler table without `schedule` (the study's).
    #[serde(default)]
    pub sampler: Vec<NamedSampler>,
}

fn default_reference_draws() -> usize {
    100_000
}
fn default_schedule() -> Schedule {
    Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .expect("EDM's defaults are valid")
}
fn default_flow_tol() -> f64 {
    1e-8
}
fn default_intervals() -> Vec<IntervalSpec> {
    vec![IntervalSpec {
        name: "all".into(),
        range: None,
    }]
}

/// `[[target]]`: a mixture, the class requested, and in 2-D the quadrature of Z_w.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceTarget {
    /// Its name in the tables.
    pub name: String,
    /// A `gaussian_mixture` or `separated_mixture`.
    pub density: DensitySpec,
    /// The class c: the indices of its components.
    pub class: Vec<usize>,
    /// Z_w by tensor Gauss–Legendre quadrature on a box (2-D targets only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quadrature: Option<QuadratureRule>,
}

/// `quadrature = { half_width, panels, nodes }`: composite Gauss–Legendre on
/// [−half_width, half_width]².
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuadratureRule {
    /// Half the box's side.
    pub half_width: f64,
    /// Panels per axis.
    pub panels: usize,
    /// Nodes per panel.
    pub nodes: usize,
}

/// `[[interval]]`: where guidance acts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntervalSpec {
    /// Its name in the tables.
    pub name: String,
    /// [σ_lo, σ_hi] (default: every σ̃).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// `[[sampler]]`: a named sampler table without `schedule`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSampler {
    /// Its name in the tables.
    pub name: String,
    /// The sampler's keys.
    pub sampler: toml::Table,
}

/// The columns of `NAME.csv`.
pub const GUIDANCE_COLUMNS: &str = "target,interval,weight,sampler,seed,metric,value,se";

/// A row of `NAME.csv`.
#[derive(Debug, Serialize, Deserialize)]
pub struct GuidanceRow {
    /// The target.
    pub target: String,
    /// The interval's name.
    pub interval: String,
    /// w.
    pub weight: Num,
    /// The sampler (`exact_ode` for the exact guided ODE).
    pub sampler: String,
    /// The seed.
    pub seed: u64,
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: Num,
    /// Its standard error over the chains, where it has one.
    pub se: Option<Num>,
}

/// The tilted law π_w of one target and weight, from self-normalised importance sampling.
struct TiltedLaw {
    log_z: f64,
    log_z_mc: f64,
    log_z_mc_se: f64,
    log_z_quad: Option<f64>,
    /// π's mass on each component of p.
    weights: Array1<f64>,
    /// π's tr Cov on each component of p (by responsibility assignment).
    spreads: Array1<f64>,
    /// E_π[log π].
    mean_log_pi: f64,
}

/// Each row's component of largest responsibility under p.
fn assign(p: &GaussianMixture, x: ArrayView2<f64>) -> Vec<usize> {
    let (resp, _) = p.responsibilities(x);
    resp.rows()
        .into_iter()
        .map(|r| {
            (0..r.len())
                .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                .expect("a component")
        })
        .collect()
}

/// Weighted mode masses and tr Cov per component (weights `r`, normalised here).
fn modes(p: &GaussianMixture, x: ArrayView2<f64>, r: &Array1<f64>) -> (Array1<f64>, Array1<f64>) {
    let k = p.weights().len();
    let a = assign(p, x);
    let total: f64 = r.sum();
    let mut weights = Array1::zeros(k);
    let mut spreads = Array1::from_elem(k, f64::NAN);
    for c in 0..k {
        let idx: Vec<usize> = (0..a.len()).filter(|&i| a[i] == c).collect();
        let wsum: f64 = idx.iter().map(|&i| r[i]).sum();
        weights[c] = wsum / total;
        if idx.len() < 2 || wsum <= 0.0 {
            continue;
        }
        let xc = x.select(Axis(0), &idx);
        let rc = Array1::from_iter(idx.iter().map(|&i| r[i] / wsum));
        let mean = xc.t().dot(&rc);
        let centred = &xc - &mean;
        let var: f64 = centred
            .rows()
            .into_iter()
            .zip(&rc)
            .map(|(row, w)| w * row.dot(&row))
            .sum();
        spreads[c] = var;
    }
    (weights, spreads)
}

impl GuidanceExperiment {
    fn mixture(t: &GuidanceTarget) -> Result<(GaussianMixture, GaussianMixture)> {
        let p = t.density.build().map_err(|e| {
            bad(e
                .within(&format!("target {:?}: density", t.name))
                .to_string())
        })?;
        let AnyDensity::GaussianMixture(p) = p else {
            return Err(bad(format!(
                "target {:?}: density: must be a gaussian_mixture or separated_mixture, got {}",
                t.name,
                p.kind()
            ))
            .into());
        };
        let k = p.weights().len();
        if t.class.is_empty() || t.class.iter().any(|&c| c >= k) {
            return Err(bad(format!(
                "target {:?}: class: give the indices of the class's components, each below {k}",
                t.name
            ))
            .into());
        }
        if t.class.len() == k {
            return Err(bad(format!(
                "target {:?}: class: every component is in the class, so guidance does nothing; leave some out",
                t.name
            ))
            .into());
        }
        let pc = p
            .restricted(&t.class)
            .map_err(|e| bad(format!("target {:?}: class: {e}", t.name)))?;
        Ok((p, pc))
    }

    fn build(&self, s: &NamedSampler) -> Result<AnySampler> {
        let mut t = s.sampler.clone();
        if t.contains_key("schedule") {
            return Err(bad(format!(
                "sampler {:?}: sampler.schedule: set by the study's `schedule`; remove it",
                s.name
            ))
            .into());
        }
        t.insert("schedule".into(), toml::Value::try_from(self.schedule)?);
        if !self.schedule.ends_at_zero() && !t.contains_key("denoise") {
            t.insert("denoise".into(), true.into());
        }
        let a: AnySampler =
            serde_path_to_error::deserialize(toml::Value::Table(t)).map_err(|e| {
                bad(format!(
                    "sampler {:?}: sampler.{}: {}",
                    s.name,
                    e.path(),
                    e.inner().message().trim()
                ))
            })?;
        if !a.noise_conditional() {
            return Err(bad(format!(
                "sampler {:?}: sampler.kind: {} uses the clean score; give a noise-conditional sampler",
                s.name,
                a.kind()
            ))
            .into());
        }
        Ok(a)
    }

    fn tilted(
        &self,
        t: &GuidanceTarget,
        p: &GaussianMixture,
        pc: &GaussianMixture,
        w: f64,
        draws: ArrayView2<f64>,
        log_ratio: &Array1<f64>,
    ) -> TiltedLaw {
        let n = draws.nrows() as f64;
        let logr = log_ratio * w;
        let log_z_mc = log_sum_exp(logr.iter().copied()) - n.ln();
        // The delta method: se(log Z) = sd(r)/mean(r)/√n with r = e^{logr − max}.
        let m = logr.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let r = logr.mapv(|v| (v - m).exp());
        let rs = MeanSe::of(r.view());
        let log_z_mc_se = rs.se / rs.mean;
        let log_z_quad = t.quadrature.map(|q| {
            let rule = scorelab_densities::quadrature::legendre_box(
                [-q.half_width; 2],
                [q.half_width; 2],
                q.panels,
                q.nodes,
            );
            let lp = log_tilted(p, pc, w, rule.nodes.view());
            log_sum_exp(lp.iter().zip(&rule.weights).map(|(l, wq)| l + wq.ln()))
        });
        let log_z = log_z_quad.unwrap_or(log_z_mc);
        let (weights, spreads) = modes(p, draws, &r);
        let lt = log_tilted(p, pc, w, draws);
        let mean_log_pi = lt
            .iter()
            .zip(&r)
            .map(|(l, ri)| ri * (l - log_z))
            .sum::<f64>()
            / r.sum();
        TiltedLaw {
            log_z,
            log_z_mc,
            log_z_mc_se,
            log_z_quad,
            weights,
            spreads,
            mean_log_pi,
        }
    }
}

/// log of π_w's unnormalised density: (1 + w) log p(x | c) − w log p(x).
fn log_tilted(
    p: &GaussianMixture,
    pc: &GaussianMixture,
    w: f64,
    x: ArrayView2<f64>,
) -> Array1<f64> {
    pc.log_density(x) * (1.0 + w) - p.log_density(x) * w
}

/// The rows of one unit.
struct Rows<'a> {
    main: Table,
    modes: Table,
    target: &'a str,
    seed: u64,
}

impl Rows<'_> {
    fn push(
        &mut self,
        who: (&str, f64, &str),
        metric: &str,
        value: f64,
        se: Option<f64>,
    ) -> Result<()> {
        self.main.push(&GuidanceRow {
            target: self.target.into(),
            interval: who.0.into(),
            weight: Num(who.1),
            sampler: who.2.into(),
            seed: self.seed,
            metric: metric.into(),
            value: Num(value),
            se: se.map(Num),
        })
    }

    /// The metrics every sampler's output gets against π.
    fn against_pi(
        &mut self,
        who: (&str, f64, &str),
        x: ArrayView2<f64>,
        p: &GaussianMixture,
        pc: &GaussianMixture,
        class: &[usize],
        pi: &TiltedLaw,
    ) -> Result<()> {
        let w = who.1;
        let lp = log_tilted(p, pc, w, x) - pi.log_z;
        let g = MeanSe::of(lp.view());
        self.push(who, "log_pi_gap", g.mean - pi.mean_log_pi, Some(g.se))?;
        let ones = Array1::ones(x.nrows());
        let (wq, sq) = modes(p, x, &ones);
        let mut worst: f64 = 0.0;
        let mut ratio = 0.0;
        let mut mass = 0.0;
        for &k in class {
            worst = worst.max((wq[k] - pi.weights[k]).abs());
            if sq[k].is_finite() {
                ratio += pi.weights[k] * sq[k] / pi.spreads[k];
                mass += pi.weights[k];
            }
            self.modes.push_cells([
                self.target.to_string(),
                who.0.to_string(),
                w.to_string(),
                who.2.to_string(),
                self.seed.to_string(),
                k.to_string(),
                wq[k].to_string(),
                pi.weights[k].to_string(),
                sq[k].to_string(),
                pi.spreads[k].to_string(),
            ])?;
        }
        self.push(who, "weight_error", worst, None)?;
        let in_class: f64 = class.iter().map(|&k| wq[k]).sum();
        let pi_in: f64 = class.iter().map(|&k| pi.weights[k]).sum();
        self.push(who, "off_class", 1.0 - in_class, None)?;
        self.push(who, "off_class_pi", 1.0 - pi_in, None)?;
        self.push(who, "spread_ratio", ratio / mass, None)
    }
}

impl Study for GuidanceExperiment {
    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() {
            return Err(bad("seeds: give at least one seed").into());
        }
        if self.weights.is_empty() || self.weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(bad("weights: give guidance weights w ≥ 0 (Ho & Salimans's convention; diffusers' guidance scale is 1 + w)").into());
        }
        if self.chains < 2 {
            return Err(bad("chains: at least 2").into());
        }
        if self.reference_draws < 100 {
            return Err(bad("reference_draws: at least 100").into());
        }
        if !(self.flow_tol > 0.0 && self.flow_tol < 1e-3) {
            return Err(bad(format!(
                "flow_tol: must be in (0, 1e-3), got {}",
                self.flow_tol
            ))
            .into());
        }
        if self.target.is_empty() {
            return Err(bad("target: give at least one [[target]]").into());
        }
        for (i, t) in self.target.iter().enumerate() {
            if self.target[..i].iter().any(|o| o.name == t.name) {
                return Err(bad(format!("target[{i}]: name {:?} is used twice", t.name)).into());
            }
            let (p, _) = Self::mixture(t).map_err(|e| bad(format!("target[{i}]: {e:#}")))?;
            if let Some(q) = t.quadrature {
                if scorelab_core::Dimension::dim(&p) != 2 {
                    return Err(bad(format!(
                        "target[{i}].quadrature: only for 2-D targets; remove it"
                    ))
                    .into());
                }
                if !(q.half_width > 0.0 && q.half_width.is_finite()) || q.panels == 0 || q.nodes < 2
                {
                    return Err(bad(format!(
                        "target[{i}].quadrature: half_width > 0, panels ≥ 1 and nodes ≥ 2"
                    ))
                    .into());
                }
            }
        }
        for (i, iv) in self.interval.iter().enumerate() {
            if let Some([lo, hi]) = iv.range {
                Guidance::new(1.0, Some((lo, hi)))
                    .map_err(|e| bad(format!("interval[{i}].range: {e}")))?;
            }
            if self.interval[..i].iter().any(|o| o.name == iv.name) {
                return Err(bad(format!("interval[{i}]: name {:?} is used twice", iv.name)).into());
            }
        }
        for (i, s) in self.sampler.iter().enumerate() {
            if s.name == "exact_ode" || self.sampler[..i].iter().any(|o| o.name == s.name) {
                return Err(bad(format!(
                    "sampler[{i}]: name {:?} is taken; give another",
                    s.name
                ))
                .into());
            }
            self.build(s)
                .map_err(|e| bad(format!("sampler[{i}]: {e:#}")))?;
        }
        Ok(())
    }

    fn units(&self) -> Vec<Unit> {
        self.target
            .iter()
            .flat_map(|t| {
                self.seeds
                    .iter()
                    .map(move |s| Unit::new(format!("{}.seed{s}", t.name)))
            })
            .collect()
    }

    fn parallel(&self) -> bool {
        true
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let (t, seed) = self
            .target
            .iter()
            .flat_map(|t| self.seeds.iter().map(move |&s| (t, s)))
            .find(|(t, s)| format!("{}.seed{s}", t.name) == unit.id())
            .ok_or_else(|| bad(format!("no unit {:?} in this experiment", unit.id())))?;
        let (p, pc) = Self::mixture(t)?;
        let mut rows = Rows {
            main: Table::new(GUIDANCE_COLUMNS),
            modes: Table::new(
                "target,interval,weight,sampler,seed,mode,weight_q,weight_pi,spread_q,spread_pi",
            ),
            target: &t.name,
            seed,
        };
        let mut tilted = Table::new("target,weight,seed,log_z,log_z_mc,log_z_mc_se,log_z_quadrature,off_class_pi,mean_log_pi");
        let draws = pc.sample(self.reference_draws, &mut Stream::AuditExact.rng(seed));
        let log_ratio = pc.log_density(draws.view()) - p.log_density(draws.view());
        let (lo, hi) = self.schedule.sigma_range();
        let y = truth::starts(
            &p,
            self.chains,
            hi,
            truth::Start::prior_of(&self.schedule),
            &mut Stream::AuditStart.rng(seed),
        );
        let samplers = self
            .sampler
            .iter()
            .map(|s| Ok((s.name.clone(), self.build(s)?)))
            .collect::<Result<Vec<_>>>()?;
        let tol = Rk45::new(self.flow_tol, self.flow_tol)?;
        let likelihood = Likelihood::new(self.schedule, Divergence::Exact, FlowSolver::Rk45(tol))?;
        let a0 = self.schedule.alpha(self.schedule.t_max());
        for &w in &self.weights {
            let pi = self.tilted(t, &p, &pc, w, draws.view(), &log_ratio);
            let off: f64 = 1.0 - t.class.iter().map(|&k| pi.weights[k]).sum::<f64>();
            tilted.push_cells([
                t.name.clone(),
                w.to_string(),
                seed.to_string(),
                pi.log_z.to_string(),
                pi.log_z_mc.to_string(),
                pi.log_z_mc_se.to_string(),
                pi.log_z_quad.map_or(String::new(), |v| v.to_string()),
                off.to_string(),
                pi.mean_log_pi.to_string(),
            ])?;
            for iv in &self.interval {
                if cx.stop().load(Ordering::Relaxed) {
                    let mut out = Tables::main(rows.main);
                    out.stopped = true;
                    return Ok(out);
                }
                let g = Guidance::new(w, iv.range.map(|[a, b]| (a, b)))?;
                let guided = Guided::new(&pc, &p, g);
                // The exact guided ODE to where its likelihood starts, and q there.
                let x = truth::flow_map(&guided, y.view(), hi, lo, self.flow_tol)?;
                let x = &x * self.schedule.alpha(self.schedule.t_end());
                let flow = likelihood
                    .flow(&guided, x.view(), &mut Stream::SampleSteps.rng(seed))
                    .map_err(|e| {
                        bad(format!(
                            "the exact guided ODE's likelihood failed: {e}; loosen flow_tol"
                        ))
                    })?;
                let prior = gaussian_log_prior(flow.x_end.view(), self.schedule.prior_std());
                let (log_q, _) = flow.log_p(prior.view());
                let who = (iv.name.as_str(), w, "exact_ode");
                let log_pi = log_tilted(&p, &pc, w, x.view()) - pi.log_z;
                let kl = &log_q - &log_pi;
                let k = MeanSe::of(kl.view());
                rows.push(who, "kl", k.mean, Some(k.se))?;
                let kc = MeanSe::of((&log_q - &pc.log_density(x.view())).view());
                rows.push(who, "kl_conditional", kc.mean, Some(kc.se))?;
                rows.against_pi(who, x.view(), &p, &pc, &t.class, &pi)?;
                for (name, s) in &samplers {
                    let out = s
                        .sample_noised(&guided, &y * a0, &mut Stream::SampleSteps.rng(seed))
                        .ok_or_else(|| bad("a noise-conditional sampler"))?;
                    rows.against_pi(
                        (iv.name.as_str(), w, name),
                        out.view(),
                        &p,
                        &pc,
                        &t.class,
                        &pi,
                    )?;
                }
            }
        }
        let mut out = Tables::main(rows.main);
        out.insert("modes", rows.modes);
        out.insert("tilted", tilted);
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<GuidanceRow> = rows.rows()?;
        type Key = (String, String, String, String, String);
        let mut groups: Vec<(Key, Vec<f64>)> = vec![];
        for r in &parsed {
            let key = (
                r.target.clone(),
                r.interval.clone(),
                r.weight.0.to_string(),
                r.sampler.clone(),
                r.metric.clone(),
            );
            match groups.iter_mut().find(|g| g.0 == key) {
                Some(g) => g.1.push(r.value.0),
                None => groups.push((key, vec![r.value.0])),
            }
        }
        let mut summary = Table::new("target,interval,weight,sampler,metric,mean,sd,seeds");
        for ((target, interval, weight, sampler, metric), v) in &groups {
            let (m, sd) = mean_sd(v);
            summary.push_cells([
                target.clone(),
                interval.clone(),
                weight.clone(),
                sampler.clone(),
                metric.clone(),
                Num(m).0.to_string(),
                sd,
                v.len().to_string(),
            ])?;
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        out.insert("modes", Tables::concat(&done, "modes")?);
        out.insert("tilted", Tables::concat(&done, "tilted")?);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, Array2};

    /// In 2-D the Monte Carlo normaliser agrees with quadrature within 4 of its standard errors,
    /// and at w = 0 π is p(· | c): Z = 1.
    #[test]
    fn the_normaliser_by_monte_carlo_matches_quadrature() {
        let p = GaussianMixture::new(
            array![0.3, 0.3, 0.4],
            vec![array![-1.5, 0.0], array![1.5, 0.5], array![0.0, 1.0]],
            vec![Array2::eye(2), Array2::eye(2) * 0.5, Array2::eye(2) * 0.8],
        )
        .unwrap();
        let pc = p.restricted(&[0, 1]).unwrap();
        let t = GuidanceTarget {
            name: "t".into(),
            density: DensitySpec::StandardNormal { dim: 2 },
            class: vec![0, 1],
            quadrature: Some(QuadratureRule {
                half_width: 9.0,
                panels: 30,
                nodes: 6,
            }),
        };
        let e: GuidanceExperiment = toml::from_str(
            "description = \"\"\nseeds = [1]\nweights = [1.0]\nchains = 10\ntarget = []",
        )
        .unwrap();
        let draws = pc.sample(40_000, &mut Stream::AuditExact.rng(1));
        let lr = pc.log_density(draws.view()) - p.log_density(draws.view());
        for w in [0.0, 1.0, 3.0] {
            let pi = e.tilted(&t, &p, &pc, w, draws.view(), &lr);
            let q = pi.log_z_quad.unwrap();
            assert!(
                (pi.log_z_mc - q).abs() < 4.0 * pi.log_z_mc_se + 1e-12,
                "w {w}: {} vs {q}",
                pi.log_z_mc
            );
            if w == 0.0 {
                assert!(q.abs() < 1e-9);
                assert!((pi.weights.sum() - 1.0).abs() < 1e-12);
            }
        }
    }
}

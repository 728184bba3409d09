//! `kind = "solvers"`: the study that answers the solver folklore. Every sampler × grid ×
//! schedule of the config runs on the exact noised score of Gaussian-mixture targets at a sweep of
//! evaluation budgets, and three kinds of error are kept apart ([`scorelab_pipeline::truth`]):
//!
//! - `flow_error` (deterministic samplers): the root-mean-square distance of each output from the
//!   exact flow map of its own starting point (Dormand–Prince at `flow_tol`, then Tweedie's step
//!   on a schedule that stops above σ̃ = 0, as the sampler does): the discretisation error alone;
//! - the distributional error against p: `log_p_gap` (the output's mean exact log p minus that of
//!   the exact flow map of the same starts, a paired difference: negative for over-dispersed
//!   samples, positive for collapsed ones), `weight_error` (maxₖ |ŵₖ − wₖ|), `mean_error` and
//!   `cov_error` (the worst mode's ‖m̂ₖ − μₖ‖ and ‖Ĉₖ − Σₖ‖_F/‖Σₖ‖_F);
//! - the prior mismatch: every run from the schedule's Gaussian prior (`start = prior`) and again
//!   from exact draws of p_T (`start = exact`). The row `sampler = exact_flow` (budget 0) is the
//!   exact flow map of the starts itself, measured against p (its `log_p_gap` against
//!   independent exact draws of p): from p_T these are exact draws of p, every metric's floor at
//!   this number of chains; from the prior, the error the prior's mismatch leaves with no
//!   discretisation at all.
//!
//! The budget is the score evaluations per chain: a sampler of e evaluations per step (2 for
//! `heun` and `dpm2`, else 1) runs ⌊budget/e⌋ steps, and the evaluations it made are counted and
//! written (`nfe`).
//!
//! One unit per target, schedule and seed ([`Study::parallel`]). Writes `NAME.csv` (every run,
//! start, seed and metric), `NAME_summary.csv` (mean and sd over seeds), `NAME_orders.csv` (per
//! target, schedule, sampler and grid: the slope of log mean `flow_error` against log NFE over the
//! largest `fit_budgets` budgets whose error is above 100× `flow_tol`, beside the sampler's
//! nominal order) and `NAME_budgets.csv` (the smallest budget from which on the mean flow error
//! stays at most each of `flow_errors`, and the mean |log_p_gap| from each start at most
//! `log_p_gap`; empty where the sweep does not get there).

use crate::bad;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use scorelab_core::streams::Stream;
use scorelab_core::Sample;
use scorelab_densities::{AnyDensity, GaussianMixture};
use scorelab_pipeline::metrics::mean_sd;
use scorelab_pipeline::spec::DensitySpec;
use scorelab_pipeline::truth::{self, SampleMetrics, Start};
use scorelab_samplers::solver::Spacing;
use scorelab_samplers::{AnySampler, Schedule};
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// `kind = "solvers"` (module docs).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolversExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// The seeds: each draws its own starts, exact draws and sampler noise.
    pub seeds: Vec<u64>,
    /// The evaluation budgets per chain, increasing.
    pub budgets: Vec<usize>,
    /// The exact flow map's tolerance (relative and absolute; default 1e-10).
    #[serde(default = "default_flow_tol")]
    pub flow_tol: f64,
    /// The stated flow-map errors of `NAME_budgets.csv` (default [0.1, 0.01]).
    #[serde(default = "default_flow_errors")]
    pub flow_errors: Vec<f64>,
    /// The stated |log_p_gap| of `NAME_budgets.csv`, in nats (default 0.05).
    #[serde(default = "default_log_p_gap")]
    pub log_p_gap: f64,
    /// How many of the largest budgets the order is fitted on (default 3).
    #[serde(default = "default_fit_budgets")]
    pub fit_budgets: usize,
    /// The targets.
    pub target: Vec<TargetSpec>,
    /// The schedules.
    pub schedule: Vec<ScheduleSpec>,
    /// The samplers.
    pub sampler: Vec<SamplerSpec>,
}

fn default_flow_tol() -> f64 {
    1e-10
}
fn default_flow_errors() -> Vec<f64> {
    vec![0.1, 0.01]
}
fn default_log_p_gap() -> f64 {
    0.05
}
fn default_fit_budgets() -> usize {
    3
}

/// `[[target]]`: a Gaussian mixture (or Gaussian) with a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Its name in the tables.
    pub name: String,
    /// The density: `gaussian`, `gaussian_mixture` or `separated_mixture`.
    pub density: DensitySpec,
    /// Chains per run.
    pub chains: usize,
    /// Only those budgets of the sweep that are in this list (default: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budgets: Option<Vec<usize>>,
}

/// `[[schedule]]`: a schedule with a name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSpec {
    /// Its name in the tables.
    pub name: String,
    /// The schedule, as a sampler's `schedule` table.
    pub schedule: Schedule,
}

/// `[[sampler]]`: a sampler table without `steps`, `schedule`, `grid` and `denoise` (the study
/// sets them) and the grids it runs on.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplerSpec {
    /// Its name in the tables (default: its kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The sampler's other keys: `kind`, and e.g. `eta`.
    pub sampler: toml::Table,
    /// The grids (default `["schedule"]`: the schedule's own; only the solvers of
    /// `scorelab_samplers::solver` take the others).
    #[serde(default = "default_grids")]
    pub grids: Vec<Spacing>,
}

fn default_grids() -> Vec<Spacing> {
    vec![Spacing::Schedule]
}

impl SamplerSpec {
    fn kind(&self) -> &str {
        self.sampler
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or("")
    }

    fn name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.kind().to_string())
    }

    /// Score evaluations per step.
    fn evals_per_step(&self) -> usize {
        match self.kind() {
            "heun" | "dpm2" => 2,
            _ => 1,
        }
    }

    /// The stated order of its deterministic form (NaN for stochastic samplers).
    fn nominal_order(&self) -> f64 {
        match self.kind() {
            "ddim" => 1.0,
            "heun" | "dpm2" | "dpmpp_2m" => 2.0,
            "dpmpp_3m" | "unipc" => 3.0,
            _ => f64::NAN,
        }
    }

    /// The sampler of `steps` steps on `schedule` and `grid`, denoising at the end where the
    /// schedule stops above 0.
    fn build(&self, schedule: &Schedule, grid: Spacing, steps: usize) -> Result<AnySampler> {
        let mut t = self.sampler.clone();
        t.insert("steps".into(), (steps as i64).into());
        t.insert("schedule".into(), toml::Value::try_from(schedule)?);
        if grid != Spacing::Schedule {
            t.insert("grid".into(), toml::Value::try_from(grid)?);
        }
        if !schedule.ends_at_zero() {
            t.insert("denoise".into(), true.into());
        }
        Ok(serde_path_to_error::deserialize(toml::Value::Table(t))
            .map_err(|e| bad(format!("{}: {}", e.path(), e.inner().message().trim())))?)
    }
}

/// The columns of `NAME.csv`.
pub const SOLVERS_COLUMNS: &str = "target,schedule,sampler,grid,steps,nfe,start,seed,metric,value";

/// A row of `NAME.csv`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SolversRow {
    /// The target's name.
    pub target: String,
    /// The schedule's name.
    pub schedule: String,
    /// The sampler's name (`exact_flow` for the exact flow map of the starts).
    pub sampler: String,
    /// The grid.
    pub grid: String,
    /// Steps.
    pub steps: usize,
    /// Score evaluations per chain, counted.
    pub nfe: Num,
    /// `prior` or `exact`.
    pub start: String,
    /// The seed.
    pub seed: u64,
    /// The metric.
    pub metric: String,
    /// Its value.
    pub value: Num,
}

impl SolversExperiment {
    fn mixture(t: &TargetSpec) -> Result<GaussianMixture> {
        let p = t.density.build().map_err(|e| {
            bad(e
                .within(&format!("target {:?}: density", t.name))
                .to_string())
        })?;
        Ok(match p {
            AnyDensity::GaussianMixture(m) => m,
            AnyDensity::Gaussian(g) => GaussianMixture::new(
                ndarray::Array1::ones(1),
                vec![scorelab_core::Moments::mean(&g)],
                vec![scorelab_core::Moments::covariance(&g)],
            )?,
            other => {
                return Err(bad(format!(
                    "target {:?}: density: must be a gaussian, gaussian_mixture or separated_mixture (its p_σ is closed form), got {}",
                    t.name,
                    other.kind()
                ))
                .into())
            }
        })
    }

    fn unit_id(t: &str, s: &str, seed: u64) -> String {
        format!("{t}.{s}.seed{seed}")
    }

    /// The budgets of the sweep that target `t` runs.
    fn budgets_of(&self, t: &TargetSpec) -> Vec<usize> {
        self.budgets
            .iter()
            .copied()
            .filter(|b| t.budgets.as_ref().is_none_or(|only| only.contains(b)))
            .collect()
    }
}

fn check_name(what: &str, i: usize, name: &str, earlier: &[String]) -> Result<()> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !ok {
        return Err(bad(format!(
            "{what}[{i}]: name {name:?} must be letters, digits, _ or - (it names files and units)"
        ))
        .into());
    }
    if earlier.iter().any(|e| e == name) {
        return Err(bad(format!(
            "{what}[{i}]: name {name:?} is used twice; give each its own"
        ))
        .into());
    }
    Ok(())
}

impl Study for SolversExperiment {
    fn check(&self) -> Result<()> {
        if self.seeds.is_empty() {
            return Err(bad("seeds: give at least one seed").into());
        }
        let increasing = |b: &[usize]| b.windows(2).all(|w| w[0] < w[1]);
        if self.budgets.is_empty() || self.budgets[0] == 0 || !increasing(&self.budgets) {
            return Err(
                bad("budgets: give positive evaluation budgets in increasing order").into(),
            );
        }
        if !(self.flow_tol > 0.0 && self.flow_tol < 1e-3) {
            return Err(bad(format!(
                "flow_tol: must be in (0, 1e-3): the reference must be far more accurate than any sampler, got {}",
                self.flow_tol
            ))
            .into());
        }
        if self
            .flow_errors
            .iter()
            .any(|e| !(*e > 0.0 && e.is_finite()))
        {
            return Err(bad("flow_errors: every stated error must be positive and finite").into());
        }
        if !(self.log_p_gap > 0.0 && self.log_p_gap.is_finite()) {
            return Err(bad("log_p_gap: must be positive and finite").into());
        }
        if self.fit_budgets < 2 {
            return Err(bad("fit_budgets: a slope needs at least 2 budgets").into());
        }
        for (what, n) in [
            ("target", self.target.len()),
            ("schedule", self.schedule.len()),
            ("sampler", self.sampler.len()),
        ] {
            if n == 0 {
                return Err(bad(format!("{what}: give at least one [[{what}]]")).into());
            }
        }
        let mut names = vec![];
        for (i, t) in self.target.iter().enumerate() {
            check_name("target", i, &t.name, &names)?;
            names.push(t.name.clone());
            Self::mixture(t)?;
            if t.chains < 2 {
                return Err(bad(format!("target[{i}].chains: at least 2")).into());
            }
            if self.budgets_of(t).is_empty() {
                return Err(bad(format!(
                    "target[{i}].budgets: none of them is in the sweep `budgets`; give some of {:?}",
                    self.budgets
                ))
                .into());
            }
        }
        let mut names = vec![];
        for (i, s) in self.schedule.iter().enumerate() {
            check_name("schedule", i, &s.name, &names)?;
            names.push(s.name.clone());
        }
        let mut names = vec![];
        for (i, m) in self.sampler.iter().enumerate() {
            check_name("sampler", i, &m.name(), &names)?;
            names.push(m.name());
            for key in ["steps", "schedule", "grid", "denoise"] {
                if m.sampler.contains_key(key) {
                    return Err(bad(format!(
                        "sampler[{i}].sampler.{key}: set by the study; remove it"
                    ))
                    .into());
                }
            }
            if m.grids.is_empty() {
                return Err(bad(format!("sampler[{i}].grids: give at least one grid")).into());
            }
            for s in &self.schedule {
                for g in &m.grids {
                    let built = m
                        .build(&s.schedule, *g, 1)
                        .map_err(|e| bad(format!("sampler[{i}] ({}): {e:#}", m.name())))?;
                    if !built.noise_conditional() {
                        return Err(bad(format!(
                            "sampler[{i}].sampler.kind: {} uses the clean score; give a noise-conditional sampler",
                            m.kind()
                        ))
                        .into());
                    }
                }
            }
        }
        Ok(())
    }

    fn units(&self) -> Vec<Unit> {
        let mut out = vec![];
        for t in &self.target {
            for s in &self.schedule {
                for &seed in &self.seeds {
                    out.push(Unit::new(Self::unit_id(&t.name, &s.name, seed)));
                }
            }
        }
        out
    }

    fn parallel(&self) -> bool {
        true
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        let (t, s, seed) = self
            .target
            .iter()
            .flat_map(|t| {
                self.schedule
                    .iter()
                    .flat_map(move |s| self.seeds.iter().map(move |&seed| (t, s, seed)))
            })
            .find(|(t, s, seed)| Self::unit_id(&t.name, &s.name, *seed) == unit.id())
            .ok_or_else(|| bad(format!("no unit {:?} in this experiment", unit.id())))?;
        let p = Self::mixture(t)?;
        let schedule = &s.schedule;
        let (_, hi) = schedule.sigma_range();
        let n = t.chains;
        let mut out = Rows {
            table: Table::new(SOLVERS_COLUMNS),
            target: &t.name,
            schedule: &s.name,
            seed,
            weights: p.weights(),
            ref_log_p: f64::NAN,
        };
        // Exact draws of p: the reference of the exact flow's own log p.
        let reference = p.sample(n, &mut Stream::AuditExact.rng(seed));
        let ref_log_p = truth::sample_metrics(reference.view(), &p, None).log_p;
        let prior = Start::prior_of(schedule);
        for start in [prior, Start::Exact] {
            let y = truth::starts(&p, n, hi, start, &mut Stream::AuditStart.rng(seed));
            let reference_map = truth::flow_reference(&p, schedule, y.view(), self.flow_tol)?;
            // The exact flow of these starts: from p_T, exact draws of p (the floor); from the
            // prior, p pushed through the prior's mismatch alone.
            let fm = truth::sample_metrics(reference_map.view(), &p, None);
            out.ref_log_p = ref_log_p;
            out.distribution(("exact_flow", "none", 0, 0.0, start.name()), &fm)?;
            out.ref_log_p = fm.log_p;
            for m in &self.sampler {
                for &grid in &m.grids {
                    let grid_name = toml::Value::try_from(grid)?
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    for b in self.budgets_of(t) {
                        if cx.stop().load(Ordering::Relaxed) {
                            let mut done = Tables::main(out.table);
                            done.stopped = true;
                            return Ok(done);
                        }
                        let steps = (b / m.evals_per_step()).max(1);
                        let sampler = m.build(schedule, grid, steps)?;
                        let (x, nfe) = truth::run_sampler(
                            &sampler,
                            schedule,
                            &p,
                            y.view(),
                            &mut Stream::SampleSteps.rng(seed),
                        )
                        .ok_or_else(|| bad("a noise-conditional sampler"))?;
                        let name = m.name();
                        let who = (name.as_str(), grid_name.as_str(), steps, nfe, start.name());
                        if sampler.deterministic() {
                            let e = truth::flow_error(x.view(), reference_map.view());
                            out.push(who, "flow_error", e)?;
                        }
                        let sm = truth::sample_metrics(x.view(), &p, None);
                        out.distribution(who, &sm)?;
                    }
                }
            }
        }
        Ok(Tables::main(out.table))
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let parsed: Vec<SolversRow> = rows.rows()?;
        // (target, schedule, sampler, grid, steps, start, metric) → (nfe's, values).
        type Key = (String, String, String, String, usize, String, String);
        // Groups in first-appearance order, found through an index (tens of thousands of rows).
        let mut groups: Vec<(Key, Vec<f64>, Vec<f64>)> = vec![];
        let mut index: std::collections::HashMap<Key, usize> = std::collections::HashMap::new();
        for r in &parsed {
            let key = (
                r.target.clone(),
                r.schedule.clone(),
                r.sampler.clone(),
                r.grid.clone(),
                r.steps,
                r.start.clone(),
                r.metric.clone(),
            );
            match index.get(&key) {
                Some(&g) => {
                    groups[g].1.push(r.nfe.0);
                    groups[g].2.push(r.value.0);
                }
                None => {
                    index.insert(key.clone(), groups.len());
                    groups.push((key, vec![r.nfe.0], vec![r.value.0]));
                }
            }
        }
        let mut summary =
            Table::new("target,schedule,sampler,grid,steps,nfe,start,metric,mean,sd,seeds");
        #[derive(Serialize)]
        struct SummaryRow<'a> {
            target: &'a str,
            schedule: &'a str,
            sampler: &'a str,
            grid: &'a str,
            steps: usize,
            nfe: Num,
            start: &'a str,
            metric: &'a str,
            mean: Num,
            sd: String,
            seeds: usize,
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        for ((target, schedule, sampler, grid, steps, start, metric), nfe, v) in &groups {
            let (m, sd) = mean_sd(v);
            summary.push(&SummaryRow {
                target,
                schedule,
                sampler,
                grid,
                steps: *steps,
                nfe: Num(mean(nfe)),
                start,
                metric,
                mean: Num(m),
                sd,
                seeds: v.len(),
            })?;
        }
        // The mean of a metric over seeds along the sweep of one run: (nfe, mean) by budget.
        let curve = |t: &str,
                     s: &str,
                     m: &str,
                     g: &str,
                     start: &str,
                     metric: &str|
         -> Vec<(f64, f64)> {
            groups
                .iter()
                .filter(|(k, _, _)| {
                    k.0 == t && k.1 == s && k.2 == m && k.3 == g && k.5 == start && k.6 == metric
                })
                .map(|(_, nfe, v)| (mean(nfe), mean(v)))
                .collect()
        };
        let mut orders =
            Table::new("target,schedule,sampler,grid,nominal_order,measured_order,from_nfe,to_nfe");
        let mut budgets_header = "target,schedule,sampler,grid".to_string();
        for e in &self.flow_errors {
            budgets_header.push_str(&format!(",nfe_flow_error_{e}"));
        }
        budgets_header.push_str(",nfe_log_p_prior,nfe_log_p_exact");
        let mut budgets = Table::new(&budgets_header);
        let cell = |v: Option<f64>| v.map_or(String::new(), |x| x.to_string());
        for t in &self.target {
            for s in &self.schedule {
                for m in &self.sampler {
                    for g in &m.grids {
                        let grid = toml::Value::try_from(*g)?
                            .as_str()
                            .unwrap_or("")
                            .to_string();
                        let name = m.name();
                        let flow = curve(&t.name, &s.name, &name, &grid, "prior", "flow_error");
                        // The order: a least-squares slope of log error on log nfe over the
                        // largest budgets still above the reference's own error.
                        let above: Vec<(f64, f64)> = flow
                            .iter()
                            .copied()
                            .filter(|&(_, e)| e > 100.0 * self.flow_tol && e.is_finite())
                            .collect();
                        let fit = &above[above.len().saturating_sub(self.fit_budgets)..];
                        let (slope, from, to) = if fit.len() >= 2 {
                            (
                                -slope_of(fit),
                                fit[0].0.to_string(),
                                fit[fit.len() - 1].0.to_string(),
                            )
                        } else {
                            (f64::NAN, String::new(), String::new())
                        };
                        if !flow.is_empty() {
                            orders.push_cells([
                                t.name.clone(),
                                s.name.clone(),
                                name.clone(),
                                grid.clone(),
                                m.nominal_order().to_string(),
                                slope.to_string(),
                                from,
                                to,
                            ])?;
                        }
                        // The first budget from which on every budget of the sweep meets `ok`.
                        let first = |c: &[(f64, f64)], ok: &dyn Fn(f64) -> bool| {
                            let k = c.iter().rposition(|q| !ok(q.1)).map_or(0, |i| i + 1);
                            c.get(k).map(|q| q.0)
                        };
                        let mut cells = vec![t.name.clone(), s.name.clone(), name.clone(), grid];
                        for e in &self.flow_errors {
                            cells.push(cell(first(&flow, &|v| v <= *e)));
                        }
                        for start in ["prior", "exact"] {
                            let gap = curve(&t.name, &s.name, &name, &cells[3], start, "log_p_gap");
                            cells.push(cell(first(&gap, &|v| v.abs() <= self.log_p_gap)));
                        }
                        budgets.push_cells(cells)?;
                    }
                }
            }
        }
        let mut out = Tables::main(rows);
        out.insert("summary", summary);
        out.insert("orders", orders);
        out.insert("budgets", budgets);
        Ok(out)
    }
}

/// Who a row belongs to: (sampler, grid, steps, nfe, start).
type Who<'a> = (&'a str, &'a str, usize, f64, &'a str);

/// The rows of one unit.
struct Rows<'a> {
    table: Table,
    target: &'a str,
    schedule: &'a str,
    seed: u64,
    weights: &'a ndarray::Array1<f64>,
    ref_log_p: f64,
}

impl Rows<'_> {
    fn push(&mut self, who: Who, metric: &str, value: f64) -> Result<()> {
        let (sampler, grid, steps, nfe, start) = who;
        self.table.push(&SolversRow {
            target: self.target.into(),
            schedule: self.schedule.into(),
            sampler: sampler.into(),
            grid: grid.into(),
            steps,
            nfe: Num(nfe),
            start: start.into(),
            seed: self.seed,
            metric: metric.into(),
            value: Num(value),
        })
    }

    /// The distributional metrics of a sample.
    fn distribution(&mut self, who: Who, m: &SampleMetrics) -> Result<()> {
        self.push(who, "log_p_gap", m.log_p - self.ref_log_p)?;
        self.push(who, "weight_error", m.weight_error(self.weights))?;
        self.push(who, "mean_error", SampleMetrics::worst(&m.mean_error))?;
        self.push(who, "cov_error", SampleMetrics::worst(&m.cov_error))?;
        self.push(who, "failed", m.failed)
    }
}

/// The least-squares slope of log y on log x.
fn slope_of(pts: &[(f64, f64)]) -> f64 {
    let (lx, ly): (Vec<f64>, Vec<f64>) = pts.iter().map(|(x, y)| (x.ln(), y.ln())).unzip();
    let n = lx.len() as f64;
    let (mx, my) = (lx.iter().sum::<f64>() / n, ly.iter().sum::<f64>() / n);
    let sxy: f64 = lx.iter().zip(&ly).map(|(a, b)| (a - mx) * (b - my)).sum();
    let sxx: f64 = lx.iter().map(|a| (a - mx) * (a - mx)).sum();
    sxy / sxx
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fitted slope of exact power laws is their exponent.
    #[test]
    fn the_slope_of_a_power_law_is_its_exponent() {
        let pts: Vec<(f64, f64)> = [8.0, 16.0, 32.0]
            .iter()
            .map(|&x: &f64| (x, 3.0 * x.powf(-2.5)))
            .collect();
        assert!((slope_of(&pts) + 2.5).abs() < 1e-12);
    }
}

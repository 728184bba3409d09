//! `kind = "samplers"`: runs of `scorelab sample` on a shared `[base]` (chains, density, init),
//! each `[[run]]` adding its own keys (`sampler`, `noised_score`, `init`, …) or `model = "NAME"`
//! to take the score from a network trained first by `[train.NAME]`; every run over every seed
//! (and over `steps_sweep`, for accuracy against cost), evaluated by the metric bundle
//! ([`scorelab_pipeline::metrics`]) against the base density (or, with `target = "own"`, its p_σ
//! when that is what the sampler targets).
//!
//! With `target = "p"`, one more unit, [`EXACT_SAMPLES`], draws the base's chains from p itself
//! (a perfect sampler, [`scorelab_core::streams::Stream::ExactSamples`]) and judges them by the
//! same metrics against the same reference draws: every metric's floor at this number of chains
//! (a finite sample's MMD², sliced W₂ and KSD are not 0), reported beside the runs.

use super::shared::TrainRef;
use crate::bad;
use crate::study::{Context, Num, Study, Table, Tables, Unit};
use anyhow::Result;
use scorelab_pipeline::metrics::{mean_sd, metrics_with, Against, Options};
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::sample::{
    target_of, AnySampler, InitSpec, NoisedScoreKind, PriorKind, SamplePlan, Source,
};
use scorelab_pipeline::spec::DensitySpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `kind = "samplers"`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplersExperiment {
    /// One line saying what the experiment shows.
    pub description: String,
    /// The seeds every run is repeated with.
    pub seeds: Vec<u64>,
    /// Permutations (MMD) and bootstrap replicates (KSD) per evaluation (default 200; 0: none).
    #[serde(default = "default_tests")]
    pub tests: usize,
    /// The keys every run shares: `density` (the target of the evaluation), `chains`, `init`, ….
    pub base: SampleBase,
    /// Networks trained before the runs: NAME → a `scorelab train` config file.
    #[serde(default)]
    pub train: BTreeMap<String, TrainRef>,
    /// The runs.
    pub run: Vec<RunSpec>,
    /// Also write `NAME_samples.csv`: the chains of the first seed of every run (of a sweep's
    /// last `steps`), columns `run,x0,…` (default false).
    #[serde(default)]
    pub save_samples: bool,
    /// What every run is compared with (default `own`): see [`Target`].
    #[serde(default)]
    pub target: Target,
    /// MMD²'s RBF bandwidth, fixed for every run (default: the median heuristic of each run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmd_bandwidth: Option<f64>,
    /// Whether to compute KSD (default true).
    #[serde(default = "yes")]
    pub ksd: bool,
    /// Also write `NAME_timing.csv`: `run,steps,score_evals,seed,seconds,ms_per_sample` of every
    /// sampling run (wall time on this machine; the one file of an experiment that is not
    /// reproduced byte for byte) (default false).
    #[serde(default)]
    pub timing: bool,
    /// Also write `NAME_prior.csv`: for every deterministic run on the exact score of a
    /// two-component mixture with equal isotropic covariances, the mode weights its prior
    /// predicts ([`scorelab_eval::predicted_mode_weight`]) (default false).
    #[serde(default)]
    pub prior_prediction: bool,
}

/// The distribution every run of a samplers experiment is compared with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The distribution each run's output targets: p, or p_σ = p ∗ N(0, σ²I) (scaled by α under
    /// `vp`/`subvp`) where a noise-conditional sampler stops at σ without denoising. Rows of one
    /// table may then answer different questions.
    #[default]
    Own,
    /// The base density p for every run, so that every row answers the same question: how far the
    /// output is from p (a run that stops at σ carries the distance between p_σ and p).
    P,
}

fn yes() -> bool {
    true
}

fn default_tests() -> usize {
    200
}

/// `[base]`: the `scorelab sample` keys every run shares (a run's own keys replace them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SampleBase {
    /// The target density: the exact score of the runs without `model`, and what every run is
    /// compared with.
    pub density: DensitySpec,
    /// Chains per run (default 1280).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<usize>,
    /// Where the chains start (default: the sampler's prior).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
    /// Which noised score the density gives (default `exact`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noised_score: Option<NoisedScoreKind>,
    /// Where a noise-conditional sampler's prior start comes from (default `gaussian`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorKind>,
}

/// `[[run]]`: a sampler and the `scorelab sample` keys that replace the base's for this run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The run's name in the CSVs.
    pub name: String,
    /// Take the score from the network `[train.NAME]` instead of the base density.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Repeat the run with each of these `sampler.steps` (accuracy against cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_sweep: Option<Vec<usize>>,
    /// The sampler.
    pub sampler: AnySampler,
    /// Chains (default: the base's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<usize>,
    /// Where the chains start (default: the base's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<InitSpec>,
    /// Which noised score the density gives (default: the base's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noised_score: Option<NoisedScoreKind>,
    /// Where the prior start comes from (default: the base's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior: Option<PriorKind>,
    /// Also write the chains after these step counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub snapshots: Vec<usize>,
}

/// The CSV header of a samplers experiment.
pub const SAMPLERS_COLUMNS: &str =
    "run,sampler,score,seed,steps,score_evals,metric,value,se,p_value,target";

/// The mean and sample sd over seeds of each (run, steps, metric): rows
/// `run,sampler,score,steps,score_evals,metric,mean,sd,seeds,target`. `score_evals` is the
/// evaluations per chain, the same for every seed of a fixed-step sampler and their mean (to one
/// decimal) for the adaptive rk45, whose cost varies with the seed.
fn summarise(rows: &[SamplerRow]) -> Result<Table> {
    // Groups in first-appearance order: (key, metric, target, evaluations, values).
    type Key = (String, String, String, usize);
    type Group = (Key, String, String, Vec<usize>, Vec<f64>);
    let mut groups: Vec<Group> = vec![];
    for r in rows {
        let key = (r.run.clone(), r.sampler.clone(), r.score.clone(), r.steps);
        match groups.iter_mut().find(|g| g.0 == key && g.1 == r.metric) {
            Some(g) => {
                g.3.push(r.score_evals);
                g.4.push(r.value.0);
            }
            None => groups.push((
                key,
                r.metric.clone(),
                r.target.clone(),
                vec![r.score_evals],
                vec![r.value.0],
            )),
        }
    }
    let mut out = Table::new("run,sampler,score,steps,score_evals,metric,mean,sd,seeds,target");
    for ((run, sampler, score, steps), metric, target, evals, v) in &groups {
        let (mean, sd) = mean_sd(v);
        let e = if evals.iter().all(|&e| e == evals[0]) {
            evals[0].to_string()
        } else {
            format!(
                "{:.1}",
                evals.iter().sum::<usize>() as f64 / evals.len() as f64
            )
        };
        out.push(&SummaryRow {
            run: run.clone(),
            sampler: sampler.clone(),
            score: score.clone(),
            steps: *steps,
            score_evals: e,
            metric: metric.clone(),
            mean: Num(mean),
            sd,
            seeds: v.len(),
            target: target.clone(),
        })?;
    }
    Ok(out)
}

/// A row of `NAME_summary.csv`.
#[derive(Serialize)]
struct SummaryRow {
    run: String,
    sampler: String,
    score: String,
    steps: usize,
    score_evals: String,
    metric: String,
    mean: Num,
    sd: String,
    seeds: usize,
    target: String,
}

/// Checks what can be checked before any work: seeds and runs given, each run's name used once
/// (rows and summaries are keyed by it), the train configs readable as plans.
///
/// # Errors
/// An input error naming the key.
pub fn check(e: &SamplersExperiment) -> Result<()> {
    if e.seeds.is_empty() {
        return Err(bad("seeds: give at least one seed").into());
    }
    if e.run.is_empty() {
        return Err(bad("run: give at least one [[run]]").into());
    }
    for (i, r) in e.run.iter().enumerate() {
        if let Some(j) = e.run[..i].iter().position(|o| o.name == r.name) {
            return Err(bad(format!(
                "run[{i}]: name {:?} is also run[{j}]'s; every [[run]] needs its own name (its rows are merged otherwise)",
                r.name
            ))
            .into());
        }
    }
    for (m, t) in &e.train {
        t.plan().map_err(|err| bad(format!("train.{m}: {err:#}")))?;
    }
    Ok(())
}

/// A row of `NAME.csv`: one metric of one run (of a sweep) and seed.
#[derive(Debug, Serialize, Deserialize)]
pub struct SamplerRow {
    /// The `[[run]]`'s name.
    pub run: String,
    /// The sampler's kind.
    pub sampler: String,
    /// `exact`, `exact:KIND` (a noised score) or `learned:NAME`.
    pub score: String,
    /// The seed.
    pub seed: u64,
    /// The sampler's steps.
    pub steps: usize,
    /// Score evaluations per chain.
    pub score_evals: usize,
    /// The metric's name.
    pub metric: String,
    /// Its value.
    pub value: Num,
    /// Its standard error, where it has one.
    pub se: Option<Num>,
    /// Its test's p-value, where it has one.
    pub p_value: Option<Num>,
    /// What it compares against.
    pub target: String,
}

/// Who a row of metrics belongs to: (run, sampler, score, seed, steps, score evaluations).
type RowOf<'a> = (&'a str, &'a str, &'a str, u64, usize, usize);

impl SamplerRow {
    /// The row of metric `m` of the run `who`.
    fn of(who: RowOf, m: scorelab_pipeline::metrics::MetricRow) -> Self {
        let (run, sampler, score, seed, steps, score_evals) = who;
        SamplerRow {
            run: run.to_string(),
            sampler: sampler.to_string(),
            score: score.to_string(),
            seed,
            steps,
            score_evals,
            metric: m.metric,
            value: Num(m.value),
            se: m.se.map(Num),
            p_value: m.p_value.map(Num),
            target: m.target,
        }
    }
}

/// A row of `NAME_timing.csv` (a timing file).
#[derive(Debug, Serialize)]
struct TimingRow<'a> {
    run: &'a str,
    steps: usize,
    score_evals: usize,
    seed: u64,
    seconds: Num,
    ms_per_sample: Num,
}

/// A row of `NAME_prior.csv`.
#[derive(Debug, Serialize)]
struct PriorRow<'a> {
    run: &'a str,
    steps: usize,
    prior: &'a str,
    alpha: Num,
    sigma: Num,
    prior_std: Num,
    predicted_mode_weight_1: Num,
}

/// A run (of a sweep): its spec, its score's label, its sample config.
type Planned = (RunSpec, String, SamplePlan);

impl SamplersExperiment {
    fn density(&self) -> Result<scorelab_densities::AnyDensity> {
        Ok(self
            .base
            .density
            .build()
            .map_err(|err| bad(err.within("base.density").to_string()))?)
    }

    /// Every run (and sweep step) as a sample config, checked.
    fn plans(&self) -> Result<Vec<Planned>> {
        let mut plans = vec![];
        for (i, r) in self.run.iter().enumerate() {
            let noised_score = r.noised_score.or(self.base.noised_score);
            let score = match &r.model {
                Some(m) => {
                    if !self.train.contains_key(m) {
                        return Err(bad(format!(
                            "run[{i}] ({}): model = {m:?} has no [train.{m}]",
                            r.name
                        ))
                        .into());
                    }
                    format!("learned:{m}")
                }
                None => match noised_score {
                    Some(NoisedScoreKind::Exact) => "exact:exact".into(),
                    Some(NoisedScoreKind::NcsnToy) => "exact:ncsn_toy".into(),
                    None => "exact".into(),
                },
            };
            let base = SamplePlan {
                seed: 0,
                chains: r.chains.or(self.base.chains).unwrap_or(1280),
                density: r.model.is_none().then(|| self.base.density.clone()),
                model_dir: None,
                noised_score: noised_score.unwrap_or_default(),
                init: r.init.clone().or_else(|| self.base.init.clone()),
                prior: r.prior.or(self.base.prior).unwrap_or_default(),
                snapshots: r.snapshots.clone(),
                guidance: None,
                sampler: r.sampler.clone(),
                run: None,
            };
            match &r.steps_sweep {
                Some(sweep) if !sweep.is_empty() => {
                    for &steps in sweep {
                        let sampler = r.sampler.with_steps(steps).map_err(|err| {
                            bad(format!("run[{i}] ({}): {}", r.name, err.within("sampler")))
                        })?;
                        plans.push((
                            r.clone(),
                            score.clone(),
                            SamplePlan {
                                sampler,
                                ..base.clone()
                            },
                        ));
                    }
                }
                _ => plans.push((r.clone(), score, base)),
            }
        }
        Ok(plans)
    }

    fn unit_ids(&self) -> Vec<String> {
        let mut ids = vec![];
        if matches!(self.target, Target::P) {
            ids.push(EXACT_SAMPLES.to_string());
        }
        for r in &self.run {
            match &r.steps_sweep {
                Some(sweep) if !sweep.is_empty() => {
                    ids.extend(sweep.iter().map(|s| format!("{}_steps{s}", r.name)));
                }
                _ => ids.push(r.name.clone()),
            }
        }
        ids
    }
}

/// The unit (and run name) of the exact samples of p: every metric's floor (module docs).
pub const EXACT_SAMPLES: &str = "exact_samples";

impl SamplersExperiment {
    /// The [`EXACT_SAMPLES`] unit: the base's chains drawn from p for every seed, judged by the
    /// metric bundle against the same reference draws as the runs.
    fn exact_samples(&self, cx: &Context) -> Result<Tables> {
        use scorelab_core::Sample;
        let p = self.density()?;
        let chains = self.base.chains.unwrap_or(1280);
        let target = Against::Density(Box::new(p.clone()), "p".to_string());
        let options = Options {
            bandwidth: self.mmd_bandwidth,
            ksd: self.ksd,
        };
        let mut rows = Table::new(SAMPLERS_COLUMNS);
        let mut out = Tables::default();
        for &seed in &self.seeds {
            if cx.stopped() {
                out.stopped = true;
                break;
            }
            let x = p.sample(
                chains,
                &mut scorelab_core::streams::Stream::ExactSamples.rng(seed),
            );
            for m in metrics_with(x.view(), &target, seed, self.tests, &options) {
                rows.push(&SamplerRow::of(
                    (EXACT_SAMPLES, "exact", "exact", seed, 0, 0),
                    m,
                ))?;
            }
        }
        out.insert("", rows);
        out.insert(
            "timing",
            Table::new("run,steps,score_evals,seed,seconds,ms_per_sample"),
        );
        Ok(out)
    }
}

impl Study for SamplersExperiment {
    fn check(&self) -> Result<()> {
        check(self)?;
        if self.run.iter().any(|r| r.name == EXACT_SAMPLES) {
            return Err(bad(format!(
                "run: the name {EXACT_SAMPLES:?} is reserved for the exact samples of p; rename the run"
            ))
            .into());
        }
        self.density()?;
        self.plans()?;
        for (m, t) in &self.train {
            if !t.config.exists() {
                return Err(bad(format!(
                    "train.{m}.config: {} does not exist",
                    t.config.display()
                ))
                .into());
            }
        }
        Ok(())
    }

    /// One unit per run (and sweep step), every seed in it; the networks are trained by the first
    /// unit that needs them.
    fn units(&self) -> Vec<Unit> {
        self.unit_ids().into_iter().map(Unit::new).collect()
    }

    fn run(&self, unit: &Unit, cx: &Context) -> Result<Tables> {
        if unit.id() == EXACT_SAMPLES {
            return self.exact_samples(cx);
        }
        let stop = cx.stop();
        let plans = self.plans()?;
        let ids: Vec<String> = self
            .unit_ids()
            .into_iter()
            .filter(|id| id != EXACT_SAMPLES)
            .collect();
        let k = ids
            .iter()
            .position(|id| id == unit.id())
            .ok_or_else(|| bad(format!("no unit {:?} in this experiment", unit.id())))?;
        let (r, score, file) = &plans[k];
        let p = self.density()?;
        let last_of_run = plans.get(k + 1).is_none_or(|next| next.0.name != r.name);
        let mut plan = match &r.model {
            Some(m) => {
                let trained = cx.model(m, |dir| {
                    eprintln!(
                        "scorelab experiment: training {m} ({})",
                        self.train[m].config.display()
                    );
                    self.train[m].train(dir, stop)
                })?;
                file.prepare_with(trained)
            }
            None => file.prepare(),
        }
        .map_err(|err| bad(format!("run {}: {err}", r.name)))?;
        let kind = match &plan.source {
            Source::Density { noised, .. } => *noised,
            Source::Model { .. } | Source::External(_) => NoisedScoreKind::Exact,
        };
        let (q, label) = match self.target {
            Target::Own => target_of(&p, kind, plan.target_sigma(), plan.target_scale()),
            Target::P => Ok((p.clone(), "p".to_string())),
        }
        .map_err(|err| bad(format!("run {}: {err}", r.name)))?;
        let target = Against::Density(Box::new(q), label);
        let steps = plan.sampler.outline().num_steps();
        let mut out = Tables::default();
        if self.prior_prediction && r.model.is_none() && file.sampler.deterministic() {
            if let Some((alpha, sigma)) = plan.sampler.outline().start() {
                let c = plan.sampler.outline().prior_std().unwrap_or(f64::NAN);
                let exact = plan.resolved.prior == scorelab_pipeline::sample::PriorKind::Exact;
                let w = if exact {
                    match &p {
                        scorelab_densities::AnyDensity::GaussianMixture(m)
                            if m.weights().len() == 2 =>
                        {
                            Some(m.weights()[1])
                        }
                        _ => None,
                    }
                } else {
                    scorelab_eval::predicted_mode_weight(&p, alpha, sigma, c)
                };
                if let Some(w) = w {
                    let mut prior =
                        Table::new("run,steps,prior,alpha,sigma,prior_std,predicted_mode_weight_1");
                    prior.push(&PriorRow {
                        run: &r.name,
                        steps,
                        prior: if exact { "exact" } else { "gaussian" },
                        alpha: Num(alpha),
                        sigma: Num(sigma),
                        prior_std: Num(c),
                        predicted_mode_weight_1: Num(w),
                    })?;
                    out.insert("prior", prior);
                }
            }
        }
        let mut rows = Table::new(SAMPLERS_COLUMNS);
        let mut timing = Table::new("run,steps,score_evals,seed,seconds,ms_per_sample");
        for &seed in &self.seeds {
            if cx.stopped() {
                out.stopped = true;
                break;
            }
            let t0 = std::time::Instant::now();
            plan.resolved.seed = seed;
            let run = plan.run(&mut stopper(stop));
            let secs = t0.elapsed().as_secs_f64();
            timing.push(&TimingRow {
                run: &r.name,
                steps,
                score_evals: run.score_evals,
                seed,
                seconds: Num(secs),
                ms_per_sample: Num(1e3 * secs / run.x.nrows() as f64),
            })?;
            if run.interrupted {
                out.stopped = true;
                break;
            }
            if self.save_samples && last_of_run && seed == self.seeds[0] {
                let cols: Vec<String> = (0..run.x.ncols()).map(|j| format!("x{j}")).collect();
                let mut samples = Table::new(&format!("run,{}", cols.join(",")));
                for row in run.x.rows() {
                    let cells = row.iter().map(|v| v.to_string());
                    samples.push_cells(std::iter::once(r.name.clone()).chain(cells))?;
                }
                out.insert("samples", samples);
            }
            let options = Options {
                bandwidth: self.mmd_bandwidth,
                ksd: self.ksd,
            };
            for m in metrics_with(run.x.view(), &target, seed, self.tests, &options) {
                rows.push(&SamplerRow::of(
                    (
                        &r.name,
                        file.sampler.kind(),
                        score,
                        seed,
                        steps,
                        run.score_evals,
                    ),
                    m,
                ))?;
            }
        }
        out.insert("", rows);
        out.insert("timing", timing);
        Ok(out)
    }

    fn finish(&self, done: Vec<Tables>) -> Result<Tables> {
        let rows = Tables::concat(&done, "")?;
        let mut out = Tables::default();
        out.insert("summary", summarise(&rows.rows()?)?);
        out.insert("", rows);
        if self.save_samples {
            out.insert(
                "samples",
                Tables::concat(&done, "samples").unwrap_or_default(),
            );
        }
        if self.timing {
            out.insert("timing", Tables::concat(&done, "timing")?);
        }
        if self.prior_prediction {
            out.insert(
                "prior",
                Tables::concat(&done, "prior").unwrap_or_else(|_| {
                    Table::new("run,steps,prior,alpha,sigma,prior_std,predicted_mode_weight_1")
                }),
            );
        }
        Ok(out)
    }
}

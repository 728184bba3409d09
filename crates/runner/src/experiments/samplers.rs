//! `kind = "samplers"`: runs of `scorelab sample` on a shared `[base]` (chains, density, init),
//! each `[[run]]` adding its own keys (`sampler`, `noised_score`, `init`, …) or `model = "NAME"`
//! to take the score from a network trained first by `[train.NAME]`; every run over every seed
//! (and over `steps_sweep`, for accuracy against cost), evaluated by the metric bundle
//! ([`scorelab_pipeline::metrics`]) against the base density (or its p_σ when that is what the
//! sampler targets).

use super::shared::{Outputs, TrainRef};
use crate::bad;
use anyhow::Result;
use scorelab_pipeline::files::cell;
use scorelab_pipeline::metrics::{mean_sd, metrics, Against, MetricRow};
use scorelab_pipeline::observe::stopper;
use scorelab_pipeline::sample::{target_of, NoisedScoreKind, SamplePlan, Source};
use scorelab_pipeline::spec::DensitySpec;
use scorelab_pipeline::train::TrainedModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

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
    /// The keys every run shares: `chains`, `density` (the target of the evaluation), `init`.
    pub base: toml::Table,
    /// Networks trained before the runs: NAME → a `scorelab train` config file.
    #[serde(default)]
    pub train: BTreeMap<String, TrainRef>,
    /// The runs.
    pub run: Vec<RunSpec>,
    /// Also write `NAME_samples.csv`: the chains of the first seed of every run (of a sweep's
    /// last `steps`), columns `run,x0,…` (default false).
    #[serde(default)]
    pub save_samples: bool,
}

fn default_tests() -> usize {
    200
}

/// `[[run]]`. Its other keys are checked where they land, as keys of a `scorelab sample` config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// The run's name in the CSVs.
    pub name: String,
    /// Take the score from the network `[train.NAME]` instead of the base density.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Repeat the run with each of these `sampler.steps` (accuracy against cost).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_sweep: Option<Vec<usize>>,
    /// Keys added to (or replacing) the base: `sampler`, `noised_score`, `init`, ….
    #[serde(flatten)]
    pub keys: toml::Table,
}

/// The CSV header of a samplers experiment.
pub const SAMPLERS_COLUMNS: &str =
    "run,sampler,score,seed,steps,score_evals,metric,value,se,p_value,target";

/// The mean and sample sd over seeds of each (run, steps, metric): rows
/// `run,sampler,score,steps,score_evals,metric,mean,sd,seeds,target`.
fn summarise(rows: &[Row]) -> String {
    // Groups in first-appearance order: (key, target, values).
    let mut groups: Vec<(String, String, Vec<f64>)> = vec![];
    for Row {
        run,
        sampler,
        score,
        steps,
        evals,
        m,
        ..
    } in rows
    {
        let key = format!("{run},{sampler},{score},{steps},{evals},{}", m.metric);
        match groups.iter_mut().find(|g| g.0 == key) {
            Some(g) => g.2.push(m.value),
            None => groups.push((key, m.target.clone(), vec![m.value])),
        }
    }
    let mut out = String::from("run,sampler,score,steps,score_evals,metric,mean,sd,seeds,target\n");
    for (key, target, v) in &groups {
        let (mean, sd) = mean_sd(v);
        out.push_str(&format!("{key},{mean},{sd},{},{target}\n", v.len()));
    }
    out
}

/// One metric of one run (of a sweep) and seed.
struct Row {
    run: String,
    sampler: String,
    score: String,
    seed: u64,
    steps: usize,
    evals: usize,
    m: MetricRow,
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

/// Runs a samplers experiment, its networks trained into `models` (module docs).
///
/// # Errors
/// An input error for a bad experiment; Ctrl-C while training or a diverging run.
pub fn run(e: &SamplersExperiment, models: &Path, stop: &AtomicBool) -> Result<Outputs> {
    check(e)?;
    let density_spec: DensitySpec = e
        .base
        .get("density")
        .ok_or_else(|| {
            bad("base.density: the target density is required (the evaluation compares with it)")
        })?
        .clone()
        .try_into()
        .map_err(|err| bad(format!("base.density: {err}")))?;
    let p = density_spec
        .build()
        .map_err(|err| bad(err.within("base.density").to_string()))?;
    // Validate every run (and sweep) before any work.
    let mut plans = vec![];
    for (i, r) in e.run.iter().enumerate() {
        let mut t = e.base.clone();
        for (k, v) in &r.keys {
            t.insert(k.clone(), v.clone());
        }
        let score = match &r.model {
            Some(m) => {
                if !e.train.contains_key(m) {
                    return Err(bad(format!(
                        "run[{i}] ({}): model = {m:?} has no [train.{m}]",
                        r.name
                    ))
                    .into());
                }
                t.remove("density");
                format!("learned:{m}")
            }
            None => match t.get("noised_score").and_then(|v| v.as_str()) {
                Some(s) => format!("exact:{s}"),
                None => "exact".into(),
            },
        };
        let sweep = r.steps_sweep.clone().unwrap_or_default();
        let variants: Vec<Option<usize>> = if sweep.is_empty() {
            vec![None]
        } else {
            sweep.into_iter().map(Some).collect()
        };
        for steps in variants {
            let mut t = t.clone();
            if let Some(s) = steps {
                let sampler = t
                    .get_mut("sampler")
                    .and_then(|v| v.as_table_mut())
                    .ok_or_else(|| bad(format!("run[{i}] ({}): no sampler table", r.name)))?;
                sampler.insert("steps".into(), (s as i64).into());
            }
            let file: SamplePlan = toml::Value::Table(t)
                .try_into()
                .map_err(|err| bad(format!("run[{i}] ({}): {err}", r.name)))?;
            plans.push((r.clone(), score.clone(), file));
        }
    }
    for (m, t) in &e.train {
        if !t.config.exists() {
            return Err(bad(format!(
                "train.{m}.config: {} does not exist",
                t.config.display()
            ))
            .into());
        }
    }
    // Train the networks, then run the samplers on them.
    let mut trained: BTreeMap<&str, TrainedModel> = BTreeMap::new();
    for (m, t) in &e.train {
        eprintln!("scorelab experiment: training {m} ({})", t.config.display());
        trained.insert(m, t.train(&models.join(m), stop)?);
    }
    let total = (plans.len() * e.seeds.len()) as u64;
    let bar = crate::bar(total, "{bar:30} {pos}/{len} runs · {msg} · eta {eta}");
    let mut rows: Vec<Row> = vec![];
    let mut samples_csv = String::new();
    for (k, (r, score, file)) in plans.iter().enumerate() {
        let last_of_run = plans.get(k + 1).is_none_or(|next| next.0.name != r.name);
        let plan = match &r.model {
            Some(m) => file.prepare_with(trained[m.as_str()].clone()),
            None => file.prepare(),
        }
        .map_err(|err| bad(format!("run {}: {err}", r.name)))?;
        let kind = match &plan.source {
            Source::Density { noised, .. } => *noised,
            Source::Model { .. } => NoisedScoreKind::Exact,
        };
        let (q, label) = target_of(&p, kind, plan.target_sigma(), plan.target_scale())
            .map_err(|err| bad(format!("run {}: {err}", r.name)))?;
        let target = Against::Density(Box::new(q), label);
        let steps = plan.sampler.outline().num_steps();
        for &seed in &e.seeds {
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                return Ok(Outputs::partial(rows_csv(&rows)));
            }
            bar.set_message(format!("{} seed {seed}", r.name));
            let out = plan.run(seed, &mut stopper(stop));
            if out.interrupted {
                bar.abandon();
                return Ok(Outputs::partial(rows_csv(&rows)));
            }
            if e.save_samples && last_of_run && seed == e.seeds[0] {
                if samples_csv.is_empty() {
                    let cols: Vec<String> = (0..out.x.ncols()).map(|j| format!("x{j}")).collect();
                    samples_csv = format!("run,{}\n", cols.join(","));
                }
                for row in out.x.rows() {
                    let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
                    samples_csv.push_str(&format!("{},{}\n", r.name, cells.join(",")));
                }
            }
            for m in metrics(out.x.view(), &target, seed, e.tests) {
                rows.push(Row {
                    run: r.name.clone(),
                    sampler: file.sampler.kind().to_string(),
                    score: score.clone(),
                    seed,
                    steps,
                    evals: out.score_evals,
                    m,
                });
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let extra = if e.save_samples {
        vec![("samples".to_string(), samples_csv)]
    } else {
        vec![]
    };
    Ok(Outputs {
        csv: rows_csv(&rows),
        summary: summarise(&rows),
        extra,
        interrupted: false,
    })
}

fn rows_csv(rows: &[Row]) -> String {
    let mut out = format!("{SAMPLERS_COLUMNS}\n");
    for Row {
        run,
        sampler,
        score,
        seed,
        steps,
        evals,
        m,
    } in rows
    {
        out.push_str(&format!(
            "{run},{sampler},{score},{seed},{steps},{evals},{},{},{},{},{}\n",
            m.metric,
            m.value,
            cell(m.se),
            cell(m.p_value),
            m.target
        ));
    }
    out
}

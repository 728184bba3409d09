//! `scorelab experiment --config paper/experiments/NAME.toml [--results DIR]`: the experiments of
//! the paper, each a TOML file, each writing `DIR/NAME.csv` (every seed), `DIR/NAME_summary.csv`
//! (mean and sd over seeds) and `DIR/NAME.config.toml` (the config with provenance).
//!
//! Two kinds:
//!
//! - `kind = "samplers"`: runs of `scorelab sample` on a shared `[base]` (chains, density, init),
//!   each `[[run]]` adding its own keys (`sampler`, `noised_score`, `init`, …) or `model = "NAME"`
//!   to take the score from a network trained first by `[train.NAME]`; every run over every seed
//!   (and over `steps_sweep`, for accuracy against cost), evaluated by `scorelab eval`'s metrics
//!   against the base density (or its p_σ when that is what the sampler targets).
//! - `kind = "noise"`: single-σ denoising score matching at each σ of `sigmas`, then the error
//!   ½‖s_θ(x) − ∇log p(x)‖² to the clean score, averaged over p and binned by the distance from the
//!   data (uniform points in a box), and the error to the noised score ∇log p_σ that DSM fits.
//!
//! Trained models go to `DIR/models/NAME/…` (folders `scorelab sample` can use). Ctrl-C stops
//! after the current unit of work and writes the rows finished so far to `DIR/NAME.partial.csv`.

use crate::config::DensitySpec;
use crate::evaluate::{metrics, Against, MetricRow};
use crate::output::{cell, Staged};
use crate::sample::{target_of, NoisedScoreKind, SampleFile, Source};
use crate::train::{provenance, Outcome, TrainArgs};
use crate::{bad, InputError};
use anyhow::{Context, Result};
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, Sample, Score};
use scorelab_eval::fisher_divergence;
use scorelab_models::Network;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// An experiment file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum ExperimentFile {
    /// Sampler comparisons.
    Samplers(SamplersExperiment),
    /// The noise trade-off and low coverage.
    Noise(NoiseExperiment),
    /// An energy network fitted to 2-D data, scored by held-out likelihood.
    DensityFit(crate::datafit::DensityFitExperiment),
    /// Score networks fitted to images, sampled and compared with held-out images.
    ImageFit(crate::imagefit::ImageFitExperiment),
}

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

/// `[train.NAME]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainRef {
    /// A `scorelab train` config (relative to the working folder).
    pub config: PathBuf,
    /// Keys merged into that config before training, table by table (e.g.
    /// `overrides = { train = { steps = 500 } }`; default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<toml::Table>,
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
    /// `[model]` of the train config.
    pub model: toml::Table,
    /// `[train]` of the train config.
    pub train: toml::Table,
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

/// What the command line passes to [`run`].
pub struct ExperimentArgs {
    /// The experiment file.
    pub config: PathBuf,
    /// The results folder.
    pub results: PathBuf,
    /// Merge the file's `[quick]` table over it first: the reduced-size run of `reproduce --quick`.
    pub quick: bool,
}

/// Merges `over` into `base`: tables key by key, recursively; any other value replaces.
pub fn deep_merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The experiment's name: the config's file stem.
fn name_of(path: &Path) -> Result<String, InputError> {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .ok_or_else(|| bad(format!("--config {}: needs a file name", path.display())))
}

/// Runs an experiment (module docs). Returns the summary table's text for the terminal.
///
/// # Errors
/// An [`InputError`] for bad input; other errors for I/O failures.
pub fn run(args: &ExperimentArgs, stop: Arc<AtomicBool>) -> Result<String> {
    let text = std::fs::read_to_string(&args.config).map_err(|e| {
        bad(format!(
            "cannot read experiment {}: {e}",
            args.config.display()
        ))
    })?;
    let mut written: toml::Table = toml::from_str(&text)
        .map_err(|e| bad(format!("experiment {}: {e}", args.config.display())))?;
    let quick = match written.remove("quick") {
        None => None,
        Some(toml::Value::Table(t)) => Some(t),
        Some(_) => {
            return Err(bad(format!(
                "experiment {}: quick: must be a table of the keys a quick run changes",
                args.config.display()
            ))
            .into())
        }
    };
    if args.quick {
        if let Some(q) = &quick {
            deep_merge(&mut written, q);
        }
    }
    let file: ExperimentFile = toml::Value::Table(written.clone())
        .try_into()
        .map_err(|e| bad(format!("experiment {}: {e}", args.config.display())))?;
    let name = name_of(&args.config)?;
    if args.quick {
        written.insert("quick".into(), true.into());
    }
    written.insert(
        "run_info".into(),
        provenance(rayon::current_num_threads()).into(),
    );
    let header = format!(
        "# Written by scorelab experiment: the experiment config as run, with provenance in [run_info].\n\
         # `scorelab experiment --config {}` reruns it.\n",
        args.config.display()
    );
    let (csv, summary, extra, partial) = match &file {
        ExperimentFile::Samplers(e) => samplers(e, &name, &args.results, &stop)?,
        ExperimentFile::Noise(e) => noise(e, &name, &args.results, &stop)?,
        ExperimentFile::DensityFit(e) => crate::datafit::run(e, &name, &args.results, &stop)?,
        ExperimentFile::ImageFit(e) => crate::imagefit::run(e, &name, &args.results, &stop)?,
    };
    let mut staged = Staged::default();
    if partial {
        staged.stage(
            &args.results.join(format!("{name}.partial.csv")),
            csv.as_bytes(),
        )?;
        staged.commit()?;
        anyhow::bail!(
            "interrupted: the rows finished are in {}",
            args.results.join(format!("{name}.partial.csv")).display()
        );
    }
    staged.stage(
        &args.results.join(format!("{name}.config.toml")),
        format!("{header}{}", toml::to_string(&written).expect("serialises")).as_bytes(),
    )?;
    staged.stage(&args.results.join(format!("{name}.csv")), csv.as_bytes())?;
    staged.stage(
        &args.results.join(format!("{name}_summary.csv")),
        summary.as_bytes(),
    )?;
    for (suffix, text) in &extra {
        staged.stage(
            &args.results.join(format!("{name}_{suffix}.csv")),
            text.as_bytes(),
        )?;
    }
    staged.commit()?;
    Ok(summary)
}

pub(crate) fn train_model(config: &Path, out: &Path, stop: &Arc<AtomicBool>) -> Result<()> {
    let args = TrainArgs {
        config: config.to_path_buf(),
        out: out.to_path_buf(),
        seed: None,
        force: true,
        resume: false,
        threads: rayon::current_num_threads(),
    };
    match crate::train::run(&args, stop.clone())? {
        Outcome::Finished => Ok(()),
        Outcome::Interrupted(_) => anyhow::bail!("interrupted while training {}", out.display()),
    }
}

/// Trains `[train.NAME]` into `out`: its config with the overrides merged, written beside `out`.
pub(crate) fn train_ref(t: &TrainRef, out: &Path, stop: &Arc<AtomicBool>) -> Result<()> {
    let Some(over) = &t.overrides else {
        return train_model(&t.config, out, stop);
    };
    let text = std::fs::read_to_string(&t.config)
        .map_err(|e| bad(format!("cannot read {}: {e}", t.config.display())))?;
    let mut cfg: toml::Table =
        toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", t.config.display())))?;
    deep_merge(&mut cfg, over);
    let path = crate::output::beside(out, ".train.toml");
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, toml::to_string(&cfg).expect("serialises"))
        .with_context(|| format!("cannot write {}", path.display()))?;
    train_model(&path, out, stop)
}

/// The CSV header of a samplers experiment.
pub const SAMPLERS_COLUMNS: &str =
    "run,sampler,score,seed,steps,score_evals,metric,value,se,p_value,target";

/// The mean and sample sd over seeds of each (run, steps, metric): rows
/// `run,sampler,score,steps,score_evals,metric,mean,sd,seeds,target`.
/// The mean and, for two or more values, the sample sd (divisor n − 1) as a CSV cell.
fn mean_sd(v: &[f64]) -> (f64, String) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let sd = (v.len() > 1)
        .then(|| (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt());
    (mean, cell(sd))
}

/// The mean and sd of [`mean_sd`] as two CSV cells.
pub(crate) fn mean_sd_cell(v: &[f64]) -> (String, String) {
    let (m, sd) = mean_sd(v);
    (m.to_string(), sd)
}

fn summarise(rows: &[Row]) -> String {
    // Groups in first-appearance order: (key, target, values).
    let mut groups: Vec<(String, String, Vec<f64>)> = vec![];
    for (run, sampler, score, _seed, steps, evals, m) in rows {
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

type Row = (String, String, String, u64, usize, usize, MetricRow);

/// What an experiment kind returns: the main CSV, the summary, extra files (`NAME_suffix.csv`,
/// text) and whether it was interrupted.
pub(crate) type Outputs = (String, String, Vec<(String, String)>, bool);

fn samplers(
    e: &SamplersExperiment,
    name: &str,
    results: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Outputs> {
    if e.seeds.is_empty() {
        return Err(bad("seeds: give at least one seed").into());
    }
    if e.run.is_empty() {
        return Err(bad("run: give at least one [[run]]").into());
    }
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
        .map_err(|err| bad(format!("base.density.{err}")))?;
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
                t.insert(
                    "model_dir".into(),
                    results
                        .join("models")
                        .join(name)
                        .join(m)
                        .to_string_lossy()
                        .to_string()
                        .into(),
                );
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
            let file: SampleFile = toml::Value::Table(t)
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
    // Train the networks, then build (which loads them) and run.
    for (m, t) in &e.train {
        eprintln!(
            "scorelab experiment {name}: training {m} ({})",
            t.config.display()
        );
        train_ref(t, &results.join("models").join(name).join(m), stop)?;
    }
    let total = (plans.len() * e.seeds.len()) as u64;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs · {msg} · eta {eta}")
            .expect("template"),
    );
    let mut rows: Vec<Row> = vec![];
    let mut samples_csv = String::new();
    for (k, (r, score, file)) in plans.iter().enumerate() {
        let last_of_run = plans.get(k + 1).is_none_or(|next| next.0.name != r.name);
        let plan = file
            .build()
            .map_err(|err| bad(format!("run {}: {}", r.name, err.0)))?;
        let kind = match &plan.source {
            Source::Density { noised, .. } => *noised,
            Source::Model { .. } => NoisedScoreKind::Exact,
        };
        let (q, label) = target_of(&p, kind, plan.target_sigma())
            .map_err(|err| bad(format!("run {}: {err}", r.name)))?;
        let target = Against::Density(Box::new(q), label);
        let steps = plan.sampler.plan().num_steps();
        for &seed in &e.seeds {
            if stop.load(Ordering::SeqCst) {
                bar.abandon();
                return Ok((rows_csv(&rows), String::new(), vec![], true));
            }
            bar.set_message(format!("{} seed {seed}", r.name));
            let out = plan.run(seed, stop, &mut |_| {});
            if out.interrupted {
                bar.abandon();
                return Ok((rows_csv(&rows), String::new(), vec![], true));
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
                rows.push((
                    r.name.clone(),
                    file.sampler.kind().to_string(),
                    score.clone(),
                    seed,
                    steps,
                    out.score_evals,
                    m,
                ));
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
    Ok((rows_csv(&rows), summarise(&rows), extra, false))
}

fn rows_csv(rows: &[Row]) -> String {
    let mut out = format!("{SAMPLERS_COLUMNS}\n");
    for (run, sampler, score, seed, steps, evals, m) in rows {
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

/// The CSV header of the noise experiment's binned errors.
pub const NOISE_COLUMNS: &str =
    "sigma,seed,region,bin_low,bin_high,points,error_clean,se_clean,error_noised,se_noised";

fn noise(
    e: &NoiseExperiment,
    name: &str,
    results: &Path,
    stop: &Arc<AtomicBool>,
) -> Result<Outputs> {
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
        .map_err(|err| bad(format!("density.{err}")))?;
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
    let models = results.join("models").join(name);
    let mut csv = format!("{NOISE_COLUMNS}\n");
    let mut summary_rows: Vec<(f64, Vec<[f64; 2]>)> = vec![];
    for &sigma in &e.sigmas {
        let mut per_seed = vec![];
        for &seed in &e.seeds {
            if stop.load(Ordering::SeqCst) {
                return Ok((csv, String::new(), vec![], true));
            }
            let dir = models.join(format!("sigma{sigma}_seed{seed}"));
            let mut cfg = toml::Table::new();
            cfg.insert("seed".into(), (seed as i64).into());
            let mut data_t = toml::Table::new();
            data_t.insert(
                "density".into(),
                toml::Value::try_from(&e.density).expect("serialises"),
            );
            cfg.insert("data".into(), data_t.into());
            cfg.insert("model".into(), e.model.clone().into());
            let mut obj = toml::Table::new();
            obj.insert("kind".into(), "dsm".into());
            obj.insert("sigma".into(), sigma.into());
            cfg.insert("objective".into(), obj.into());
            cfg.insert("train".into(), e.train.clone().into());
            std::fs::create_dir_all(&models)
                .with_context(|| format!("cannot create {}", models.display()))?;
            let cfg_path = models.join(format!("sigma{sigma}_seed{seed}.toml"));
            std::fs::write(&cfg_path, toml::to_string(&cfg).expect("serialises"))
                .with_context(|| format!("cannot write {}", cfg_path.display()))?;
            eprintln!("scorelab experiment {name}: dsm at σ = {sigma}, seed {seed}");
            train_model(&cfg_path, &dir, stop)?;
            let net = Network::load(&dir.join("model.safetensors"))?;
            let f = net
                .score_function(None)
                .map_err(|err| bad(format!("model: {err}")))?;
            let noised = p.noised(sigma).expect("checked");
            let region = |x: &Array2<f64>| {
                let (clean, ct) = fisher_divergence(f.as_ref() as &dyn Score, &p, x.view());
                let (nz, nt) = fisher_divergence(f.as_ref() as &dyn Score, &noised, x.view());
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
    Ok((csv, summary, extra, false))
}

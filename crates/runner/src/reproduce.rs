//! `scorelab reproduce [--quick] [--out DIR]`: every experiment of the paper, then every figure.
//!
//! The steps, in order (each one is also a command of its own, printed as it starts):
//!
//! 1. `equivalence`: the built-in audit → `results/equivalence.csv`;
//! 2. `equivalence_models`: many models per density → `results/equivalence_models.csv`;
//! 3. `train_mixture_ism`: ISM training with ESM and ISM logged → `results/models/train_mixture_ism/`;
//! 4. `jacobian_cost`: time per training step → `results/jacobian_cost.csv` (a timing file);
//! 5. the experiments of `paper/experiments/` ([`EXPERIMENTS`]) → `results/NAME*.csv`;
//! 6. the figures → `paper/figures/`;
//! 7. the paper: `paper/paper.template.md` with every number from the results → `paper/paper.md`,
//!    and the generated blocks of `README.md` (its pitch and headline numbers) from
//!    `paper/readme.template.md`.
//!
//! **Sharded** (`--shard K/N --stage S`, then `--gather N --stage S`, for S = 1, 2): the shards of
//! a stage run at once (a cluster's job array; `scripts/slurm/`), each doing the whole steps 1–4 it
//! owns (stage 1) and its units of every experiment of the stage ([`crate::experiments::run_shard`]);
//! the gather of a stage writes each experiment's files as a whole run does, and the gather of the
//! last stage draws the figures and writes the paper. Stage 2 ([`STAGE_2`]) holds the experiments
//! that read stage 1's results.
//!
//! With `--out DIR` everything is written under `DIR/results`, `DIR/figures` and `DIR/paper.md` (the
//! PyTorch/JAX baselines and the same-run timing comparison `results/jacobian_cost_runs/`, inputs
//! rather than results, are copied there first). With `--quick` every
//! step runs at reduced size (fewer samples, seeds, steps: each experiment's `[quick]` table) so
//! the whole pipeline is exercised in a few minutes. Every step writes its files whole or not at
//! all; Ctrl-C stops after the current unit of work, keeping the steps already finished.

use crate::experiments::{self, ExperimentArgs, TrainRef};
use crate::{bad, cost, equivalence};
use anyhow::{Context, Result};
use scorelab_pipeline::equivalence::{builtin, EquivalenceConfig, DEFAULT_SAMPLES};
use scorelab_studies::study::Shard;
use scorelab_studies::Overrides;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The experiments of `paper/experiments/`, in the order `reproduce` runs them.
pub const EXPERIMENTS: &[&str] = &[
    "ncsn_toy",
    "ncsn_toy_learned",
    "noise_tradeoff",
    "samplers_cost_mixture",
    "samplers_cost_banana",
    "sampler_zoo",
    "sampler_zoo_four",
    "likelihood_accuracy",
    "old_faithful",
    "digits_likelihood",
    "digits_classifier",
    "digits",
    "digits_inpaint",
    "toy_zoo",
    "solvers",
    "guidance",
    "straight_paths_ncsn",
    "straight_paths_8g",
];

/// The experiments of stage 2 of a sharded reproduce: they read what stage 1 wrote (the digit
/// classifier of `digits_classifier`). A whole reproduce runs them in [`EXPERIMENTS`]' order.
pub const STAGE_2: &[&str] = &["digits", "digits_inpaint"];

/// The number of stages of a sharded reproduce.
pub const STAGES: usize = 2;

/// The stage of experiment `name` in a sharded reproduce.
pub fn stage_of(name: &str) -> usize {
    if STAGE_2.contains(&name) {
        2
    } else {
        1
    }
}

/// Which part of the work a reproduce does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Everything, in order.
    Whole,
    /// Shard K of N of a stage: of stage 1, the whole steps it owns (step j belongs to shard
    /// j mod N + 1) and its units of every stage-1 experiment; of stage 2, its units of the
    /// stage-2 experiments. Shards of a stage run at once (on a cluster, a job array).
    Shard(Shard, usize),
    /// Gather the N shards of every experiment of a stage; after the last, the figures and the
    /// paper.
    Gather(usize, usize),
}

/// What the command line passes to [`run`].
pub struct ReproduceArgs {
    /// Reduced sizes.
    pub quick: bool,
    /// Write under `DIR/results` and `DIR/figures` instead of `results/` and `paper/figures/`.
    pub out: Option<PathBuf>,
    /// The whole run, a shard, or a gather.
    pub part: Part,
}

/// One finished step: its name, seconds, and what it wrote.
pub struct StepReport {
    /// The step.
    pub name: String,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// What it wrote (one line).
    pub wrote: String,
}

/// Copies the files of `from` into `to` (one level; created if needed).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Runs every step (module docs); `on_step(k, n, name)` is called as step k of n starts.
/// Returns the reports of the finished steps, and whether it was interrupted.
///
/// # Errors
/// An [`crate::InputError`] when not run from the repository root, or any step's error.
pub fn run(
    args: &ReproduceArgs,
    stop: &AtomicBool,
    mut on_step: impl FnMut(usize, usize, &str),
) -> Result<(Vec<StepReport>, bool)> {
    let experiments = Path::new("paper/experiments");
    if !experiments.is_dir() {
        return Err(bad(
            "paper/experiments/ not found: run scorelab reproduce from the repository root",
        )
        .into());
    }
    for name in EXPERIMENTS {
        let p = experiments.join(format!("{name}.toml"));
        if !p.is_file() {
            return Err(bad(format!("{} is missing", p.display())).into());
        }
    }
    let (results, figures) = match &args.out {
        Some(dir) => (dir.join("results"), dir.join("figures")),
        None => (PathBuf::from("results"), PathBuf::from("paper/figures")),
    };
    // Every experiment file is checked before the first step, so a broken one is found at once.
    for name in EXPERIMENTS {
        experiments::check(&ExperimentArgs {
            config: experiments.join(format!("{name}.toml")),
            results: results.clone(),
            quick: args.quick,
        })?;
    }
    let stage = match args.part {
        Part::Whole => None,
        Part::Shard(_, s) | Part::Gather(_, s) => Some(s),
    };
    if let Some(s) = stage {
        if s == 0 || s > STAGES {
            return Err(bad(format!("--stage: {s}; give 1 or 2")).into());
        }
    }
    if let Part::Gather(0, _) = args.part {
        return Err(bad("--gather: give the number of shards run (at least 1)").into());
    }
    // Whether this run does the figures and the paper.
    let last = matches!(args.part, Part::Whole | Part::Gather(_, STAGES));
    // One reproduce (or experiment, or train) at a time writes the results folder; the shards of
    // a stage write their own folders, at once.
    let _lock = match args.part {
        Part::Shard(..) => None,
        _ => Some(scorelab_pipeline::files::FolderLock::acquire(
            &results,
            "results folder",
        )?),
    };
    let _figures_lock = match last {
        true => Some(scorelab_pipeline::files::FolderLock::acquire(
            &figures,
            "figures folder",
        )?),
        false => None,
    };
    if args.out.is_some() && last {
        copy_dir(Path::new("results/baselines"), &results.join("baselines"))?;
        copy_dir(
            Path::new("results/jacobian_cost_runs"),
            &results.join("jacobian_cost_runs"),
        )?;
    }
    let q = args.quick;
    // The whole steps (1–4) this run does, and the experiments (step 5) it runs or gathers.
    let owns_step = |j: usize| match args.part {
        Part::Whole => true,
        Part::Shard(shard, 1) => shard.owns(j),
        _ => false,
    };
    let experiments_here: Vec<&str> = EXPERIMENTS
        .iter()
        .copied()
        .filter(|name| stage.is_none_or(|s| stage_of(name) == s))
        .collect();
    let n = (0..4).filter(|&j| owns_step(j)).count()
        + experiments_here.len()
        + if last { 2 } else { 0 };
    let mut k = 0;
    let mut reports = vec![];
    let mut step = |name: &str,
                    reports: &mut Vec<StepReport>,
                    f: &mut dyn FnMut() -> Result<String>|
     -> Result<bool> {
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        k += 1;
        on_step(k, n, name);
        let started = Instant::now();
        let wrote = match f() {
            // A step stopped by Ctrl-C keeps what it finished (it says where); reproduce stops.
            Err(e) if crate::is_interrupted(&e) => {
                eprintln!("interrupted: {e:#}");
                return Ok(false);
            }
            other => other?,
        };
        if stop.load(Ordering::SeqCst) {
            return Ok(false);
        }
        reports.push(StepReport {
            name: name.to_string(),
            seconds: started.elapsed().as_secs_f64(),
            wrote,
        });
        Ok(true)
    };
    let samples = if q { 20_000 } else { DEFAULT_SAMPLES };
    let mut go = !owns_step(0)
        || step("equivalence", &mut reports, &mut || {
            let cfg = builtin(0, samples);
            let out = results.join("equivalence.csv");
            let rows = equivalence::write(&cfg, None, &out)?;
            Ok(format!("{} ({} cases)", out.display(), rows.len()))
        })?;
    if go && owns_step(1) {
        go = step("equivalence_models", &mut reports, &mut || {
            let path = experiments.join("equivalence_models.toml");
            let mut cfg = EquivalenceConfig::from_file(&path, None)?;
            if q {
                cfg.samples = 10_000;
            }
            let out = results.join("equivalence_models.csv");
            let rows = equivalence::write(&cfg, Some(&path), &out)?;
            Ok(format!("{} ({} cases)", out.display(), rows.len()))
        })?;
    }
    if go && owns_step(2) {
        go = step("train_mixture_ism", &mut reports, &mut || {
            let out = results.join("models/train_mixture_ism");
            let mut overrides = Overrides::default();
            if q {
                overrides.train.steps = Some(500);
            }
            let t = TrainRef {
                config: experiments.join("train_mixture_ism.toml"),
                overrides,
            };
            t.train(&out, stop)?;
            Ok(format!("{}/loss.csv", out.display()))
        })?;
    }
    if go && owns_step(3) {
        go = step("jacobian_cost", &mut reports, &mut || {
            let out = results.join("jacobian_cost.csv");
            let ids: Vec<String> = scorelab_pipeline::cost::OBJECTIVES
                .iter()
                .map(|s| s.to_string())
                .collect();
            let (dims, steps): (&[usize], usize) = if q {
                (&[2, 8, 32, 128], 5)
            } else {
                (&[2, 8, 32, 128, 512], 30)
            };
            let rows = cost::run(&ids, dims, 128, 128, steps, &out)?;
            Ok(format!("{} ({} timings)", out.display(), rows.len()))
        })?;
    }
    for name in &experiments_here {
        if !go {
            break;
        }
        go = step(name, &mut reports, &mut || {
            let a = ExperimentArgs {
                config: experiments.join(format!("{name}.toml")),
                results: results.clone(),
                quick: q,
            };
            match args.part {
                Part::Whole => {
                    experiments::run(&a, stop)?;
                    Ok(format!("{}/{name}.csv", results.display()))
                }
                Part::Shard(shard, _) => experiments::run_shard(&a, shard, stop),
                Part::Gather(n, _) => {
                    experiments::gather(&a, n)?;
                    Ok(format!("{}/{name}.csv", results.display()))
                }
            }
        })?;
    }
    if go && last {
        go = step("figures", &mut reports, &mut || {
            let report = scorelab_figures::draw_all(&results, &figures, |_| {})?;
            if let Some((name, file, cmd)) = report.missing.first() {
                anyhow::bail!(
                    "figure {name}: {} is missing (made by `{cmd}`)",
                    file.display()
                );
            }
            Ok(format!(
                "{} figures in {}",
                report.drawn.len(),
                figures.display()
            ))
        })?;
    }
    let finished: Vec<String> = reports.iter().map(|r| r.wrote.clone()).collect();
    if go && last && !stop.load(Ordering::SeqCst) {
        step("paper", &mut reports, &mut || {
            let out = match &args.out {
                Some(dir) => dir.join("paper.md"),
                None => PathBuf::from("paper/paper.md"),
            };
            // A quick run's reduced results are not the paper's: a claim they contradict is
            // marked in its paper.md instead of stopping the run. Both texts are rendered (every
            // check run) before either is written: a failing check leaves both as they were.
            let kept = || {
                format!(
                    "{} and README.md are unchanged; every step before the paper finished and its files are kept: {}",
                    out.display(),
                    finished.join(", ")
                )
            };
            let paper = scorelab_figures::render_paper(
                &results,
                Path::new("paper/paper.template.md"),
                !args.quick,
            )
            .with_context(kept)?;
            let readme = match args.out {
                None => scorelab_figures::render_readme_blocks(
                    &results,
                    Path::new("paper/readme.template.md"),
                    Path::new("README.md"),
                )
                .with_context(kept)?,
                Some(_) => None,
            };
            scorelab_pipeline::files::write_whole(&out, paper.as_bytes())?;
            if let Some(text) = readme {
                scorelab_pipeline::files::write_whole(Path::new("README.md"), text.as_bytes())?;
            }
            if args.out.is_none() {
                return Ok(format!(
                    "{} and the README's generated blocks",
                    out.display()
                ));
            }
            Ok(format!("{}", out.display()))
        })?;
    }
    let interrupted = stop.load(Ordering::SeqCst);
    Ok((reports, interrupted))
}

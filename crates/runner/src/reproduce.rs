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
];

/// What the command line passes to [`run`].
pub struct ReproduceArgs {
    /// Reduced sizes.
    pub quick: bool,
    /// Write under `DIR/results` and `DIR/figures` instead of `results/` and `paper/figures/`.
    pub out: Option<PathBuf>,
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
    // One reproduce (or experiment, or train) at a time writes the results folder.
    let _lock = scorelab_pipeline::files::FolderLock::acquire(&results, "results folder")?;
    let _figures_lock = scorelab_pipeline::files::FolderLock::acquire(&figures, "figures folder")?;
    if args.out.is_some() {
        copy_dir(Path::new("results/baselines"), &results.join("baselines"))?;
        copy_dir(
            Path::new("results/jacobian_cost_runs"),
            &results.join("jacobian_cost_runs"),
        )?;
    }
    let q = args.quick;
    let n = 6 + EXPERIMENTS.len();
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
    let mut go = step("equivalence", &mut reports, &mut || {
        let cfg = builtin(0, samples);
        let out = results.join("equivalence.csv");
        let rows = equivalence::write(&cfg, None, &out)?;
        Ok(format!("{} ({} cases)", out.display(), rows.len()))
    })?;
    if go {
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
    if go {
        go = step("train_mixture_ism", &mut reports, &mut || {
            let out = results.join("models/train_mixture_ism");
            let overrides =
                q.then(|| toml::from_str::<toml::Table>("train = { steps = 500 }").expect("valid"));
            let t = TrainRef {
                config: experiments.join("train_mixture_ism.toml"),
                overrides,
            };
            t.train(&out, stop)?;
            Ok(format!("{}/loss.csv", out.display()))
        })?;
    }
    if go {
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
    for name in EXPERIMENTS {
        if !go {
            break;
        }
        go = step(name, &mut reports, &mut || {
            let a = ExperimentArgs {
                config: experiments.join(format!("{name}.toml")),
                results: results.clone(),
                quick: q,
            };
            experiments::run(&a, stop)?;
            Ok(format!("{}/{name}.csv", results.display()))
        })?;
    }
    if go {
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
    if go && !stop.load(Ordering::SeqCst) {
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

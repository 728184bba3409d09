//! `scorelab train`: a [`TrainPlan`] file trained into an output folder by
//! [`scorelab_pipeline::train::train_in`] (its module docs list the folder's files), with a
//! progress bar, Ctrl-C, `--force` and `--resume`.

use crate::{bad, bar, in_config, provenance};
use anyhow::Result;
use scorelab_pipeline::memory::MemoryLimit;
use scorelab_pipeline::observe::{stopper, Control};
use scorelab_pipeline::train::{
    train_in, Prepared, RunFolder, TrainEvent, TrainPlan, TrainedModel,
};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The flags of `scorelab train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The TOML config (tables data, model, objective and train; see the README).
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// The output folder (refused if it exists and is not empty, unless --force or --resume).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overrides the config's seed.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Worker threads for the matrix products (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// Overwrite an existing output folder's results.
    #[arg(long)]
    pub force: bool,
    /// Continue the run in DIR from its last checkpoint (only the train table may change).
    #[arg(long)]
    pub resume: bool,
}

/// How a run ended.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    /// All steps done.
    Finished,
    /// Ctrl-C: saved at this step.
    Interrupted(u64),
}

/// The files of a run folder that `--force` replaces.
const OWNED: [&str; 4] = [
    "config.toml",
    "loss.csv",
    "model.safetensors",
    "transform.toml",
];

/// Empties `dir` of a previous run's files (those of [`OWNED`] and the checkpoint) and creates it.
fn clear(dir: &Path) -> Result<()> {
    for f in OWNED {
        let p = dir.join(f);
        if p.exists() {
            std::fs::remove_file(&p)
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", p.display()))?;
        }
    }
    let ckpt = dir.join("checkpoint");
    if ckpt.exists() {
        std::fs::remove_dir_all(&ckpt)
            .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", ckpt.display()))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))
}

/// Trains `plan` afresh into `dir` (replacing a previous run's files there), as the experiments
/// and `reproduce` do, stopping with an error on Ctrl-C. The plan is validated before the folder
/// is touched.
pub(crate) fn train_into(plan: &TrainPlan, dir: &Path, stop: &AtomicBool) -> Result<TrainedModel> {
    fit_into(plan.prepare(MemoryLimit::from_env()?)?, dir, stop)
}

/// [`train_into`] for a plan already prepared.
pub(crate) fn fit_into(prepared: Prepared, dir: &Path, stop: &AtomicBool) -> Result<TrainedModel> {
    let steps = prepared.resolved.train.steps();
    clear(dir)?;
    let folder = RunFolder {
        resume: false,
        run: Some(provenance(rayon::current_num_threads())),
    };
    let model = train_in(dir, prepared, folder, &mut stopper(stop))?;
    if model.steps() < steps {
        anyhow::bail!("interrupted while training {}", dir.display());
    }
    Ok(model)
}

/// Runs `scorelab train` (module docs).
///
/// # Errors
/// Input errors (exit 2) for a bad config or folder; other errors for I/O failures or a diverging
/// run (after saving what was finished).
pub fn run(args: &TrainArgs, stop: &AtomicBool) -> Result<Outcome> {
    let mut plan = TrainPlan::from_file(&args.config)?;
    if let Some(s) = args.seed {
        plan.seed = s;
    }
    // Everything is validated before the folder is touched.
    let prepared = plan
        .prepare(MemoryLimit::from_env()?)
        .map_err(in_config(&args.config))?;
    let dir = &args.out;
    if args.resume && args.force {
        return Err(bad("--resume and --force: choose one").into());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(bad(format!("--out {}: is a file; give a folder", dir.display())).into());
    }
    let non_empty = dir.is_dir() && std::fs::read_dir(dir)?.next().is_some();
    if !args.resume && non_empty {
        if !args.force {
            return Err(bad(format!(
                "--out {}: exists and is not empty; use --force to overwrite it or --resume to continue it",
                dir.display()
            ))
            .into());
        }
        clear(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let steps = plan.train.steps();
    let progress = bar(
        steps,
        "{bar:30} {pos}/{len} steps · {per_sec} · ETA {eta} · loss {msg}",
    );
    let mut observe = |e: &TrainEvent| {
        match e {
            TrainEvent::Step { step, loss, .. } => {
                progress.set_position(*step);
                progress.set_message(format!("{loss:.5}"));
            }
            TrainEvent::Resumed { step } => {
                progress.set_position((*step).min(steps));
                eprintln!(
                    "scorelab train: resuming {} at step {step} of {steps}",
                    dir.display()
                );
            }
            _ => {}
        }
        if stop.load(Ordering::SeqCst) {
            Control::Stop
        } else {
            Control::Continue
        }
    };
    let folder = RunFolder {
        resume: args.resume,
        run: Some(provenance(rayon::current_num_threads())),
    };
    let model = train_in(dir, prepared, folder, &mut observe);
    progress.finish_and_clear();
    let model = model?;
    if model.steps() < steps {
        return Ok(Outcome::Interrupted(model.steps()));
    }
    Ok(Outcome::Finished)
}

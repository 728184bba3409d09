//! `scorelab train`: a [`TrainPlan`] file trained into an output folder by
//! [`scorelab_pipeline::train::train_in`] (its module docs list the folder's files), with a
//! progress bar, Ctrl-C, `--force` and `--resume`.

use crate::{bad, bar, in_config, provenance};
use anyhow::Result;
use scorelab_pipeline::files::{same_file, FolderLock};
use scorelab_pipeline::observe::Control;
use scorelab_pipeline::train::{clear_run, train_in, RunFolder, TrainEvent, TrainPlan, RUN_FILES};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

/// The flags of `scorelab train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// The TOML config (tables data, model, objective and train; see docs/reference.md).
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
    let prepared = plan.prepare().map_err(in_config(&args.config))?;
    let dir = &args.out;
    if args.resume && args.force {
        return Err(bad("--resume and --force: choose one").into());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(bad(format!("--out {}: is a file; give a folder", dir.display())).into());
    }
    // The lock is taken before the folder is looked at, and held for the whole run.
    let lock = FolderLock::acquire(dir, "--out")?;
    if !args.resume && lock.has_other_files()? {
        if !args.force {
            return Err(bad(format!(
                "--out {}: exists and is not empty; use --force to overwrite it or --resume to continue it",
                dir.display()
            ))
            .into());
        }
        // The config was read before this point; still, it must not be one of the files
        // --force removes.
        if RUN_FILES
            .iter()
            .any(|f| same_file(&dir.join(f), &args.config))
        {
            return Err(bad(format!(
                "--config {}: is a file of the run in --out {}, which --force replaces; copy it elsewhere first",
                args.config.display(),
                dir.display()
            ))
            .into());
        }
        clear_run(&lock)?;
    }
    let steps = plan.train.steps;
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
    let model = train_in(&lock, prepared, folder, &mut observe);
    progress.finish_and_clear();
    let model = model?;
    if model.steps() < steps {
        return Ok(Outcome::Interrupted(model.steps()));
    }
    Ok(Outcome::Finished)
}

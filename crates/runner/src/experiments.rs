//! `scorelab experiment --config paper/experiments/NAME.toml [--results DIR] [--shard K/N]` and
//! `scorelab gather --config … --shards N`: an experiment file's study
//! ([`scorelab_studies::Experiment`]) run whole or in shards, and its files written.
//!
//! A whole run writes `DIR/NAME.csv`, `DIR/NAME_summary.csv`, the extra tables `DIR/NAME_x.csv`,
//! `DIR/NAME.config.toml` (the config with provenance) and the networks in `DIR/models/NAME/`,
//! all when it completes; Ctrl-C writes the rows finished to `DIR/NAME.partial.csv` and keeps the
//! last complete run's files.
//!
//! A shard (`--shard K/N`) runs the units it owns into `DIR/shards/NAME/K-of-N/` (a file per
//! finished unit, its networks beside them), so N shards can run at once on N machines sharing
//! `DIR`, and a shard run again resumes after its last finished unit. `scorelab gather` then
//! writes from the N folders exactly the files a whole run writes (byte for byte, timing cells
//! and provenance excepted), moves the networks into `DIR/models/NAME/`, and removes the shard
//! folders.

use crate::bad;
use anyhow::Result;
use scorelab_pipeline::files::{AsideFolder, FolderLock, Staged};
use scorelab_pipeline::PipelineError;
use scorelab_studies::study::{self, Context, Ran, Shard, Tables};
use scorelab_studies::Experiment;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

pub use scorelab_studies::TrainRef;

/// The experiment an `experiment` or `gather` command is about (its flags are these).
#[derive(clap::Args)]
pub struct ExperimentArgs {
    /// The experiment file.
    #[arg(long, value_name = "FILE.toml")]
    pub config: PathBuf,
    /// The results folder.
    #[arg(long, value_name = "DIR", default_value = "results")]
    pub results: PathBuf,
    /// Merge the file's `[quick]` table over it first: the reduced-size run of `reproduce --quick`.
    #[arg(long)]
    pub quick: bool,
}

/// Checks an experiment file without running it: its keys, its runs' names, and the train
/// configs it names (what `reproduce` does for every experiment before its first step).
///
/// # Errors
/// An input error naming the file and key.
pub fn check(args: &ExperimentArgs) -> Result<()> {
    Experiment::load(&args.config, args.quick)?;
    Ok(())
}

/// The folder of shard `shard` of experiment `name`.
pub fn shard_dir(results: &Path, name: &str, shard: Shard) -> PathBuf {
    results.join("shards").join(name).join(shard.folder())
}

/// The setup every shard of experiment `name` shares.
fn setup_path(results: &Path, name: &str) -> PathBuf {
    results.join("shards").join(name).join("setup.json")
}

/// Runs an experiment whole (module docs). Returns the summary table's text for the terminal.
///
/// # Errors
/// An input error for bad input; [`crate::Interrupted`] on Ctrl-C; other errors for I/O failures.
pub fn run(args: &ExperimentArgs, stop: &AtomicBool) -> Result<String> {
    let e = Experiment::load(&args.config, args.quick)?;
    // The networks are trained aside and swapped in with the CSVs: an interrupted or failed rerun
    // leaves the last complete run's networks beside its CSVs.
    let aside = AsideFolder::begin(&args.results.join("models").join(&e.name), "model folder")?;
    let ran = study::run_units(e.file.study(), &mut Context::new(aside.dir(), stop));
    // A run refused before any work leaves no model folder; an interrupted one keeps its work.
    let ran = match ran {
        Ok(r) => r,
        Err(err) => {
            aside.abandon();
            return Err(err);
        }
    };
    match ran {
        Ran::Stopped(rows) => {
            let partial = args.results.join(format!("{}.partial.csv", e.name));
            scorelab_pipeline::files::write_whole(&partial, rows.to_csv().as_bytes())?;
            Err(crate::Interrupted(format!(
                "the rows finished are in {} and the networks trained in {}; the last complete run's files are untouched",
                partial.display(),
                aside.dir().display()
            ))
            .into())
        }
        Ran::Done(tables) => write_outputs(args, &e, &tables, aside),
    }
}

/// Runs the units of shard `shard` (module docs). Returns one line saying what it did.
///
/// # Errors
/// As [`run`]; a shard folder of another config.
pub fn run_shard(args: &ExperimentArgs, shard: Shard, stop: &AtomicBool) -> Result<String> {
    let e = Experiment::load(&args.config, args.quick)?;
    let dir = shard_dir(&args.results, &e.name, shard);
    let _lock = FolderLock::acquire(&dir, "shard folder")?;
    let models = dir.join("models");
    let report = study::run_shard(
        e.file.study(),
        &e.config_text(),
        shard,
        &dir,
        &setup_path(&args.results, &e.name),
        &mut Context::new(&models, stop),
    )?;
    if report.stopped {
        return Err(crate::Interrupted(format!(
            "shard {}/{} of {}: {} unit(s) finished and kept in {}; run the same command to resume",
            shard.k,
            shard.n,
            e.name,
            report.ran.len() + report.kept.len(),
            dir.display()
        ))
        .into());
    }
    Ok(format!(
        "shard {}/{} of {}: ran {} unit(s), kept {} finished before, in {}",
        shard.k,
        shard.n,
        e.name,
        report.ran.len(),
        report.kept.len(),
        dir.display()
    ))
}

/// Gathers the `n` shards of an experiment into the files a whole run writes (module docs).
/// Returns the summary table's text.
///
/// # Errors
/// A missing or foreign unit (naming the shard to rerun); I/O failures.
pub fn gather(args: &ExperimentArgs, n: usize) -> Result<String> {
    if n == 0 {
        return Err(bad("--shards: give the number of shards run (at least 1)").into());
    }
    let e = Experiment::load(&args.config, args.quick)?;
    let shards: Vec<Shard> = (1..=n).map(|k| Shard { k, n }).collect();
    let locks = shards
        .iter()
        .map(|s| FolderLock::acquire(&shard_dir(&args.results, &e.name, *s), "shard folder"))
        .collect::<scorelab_pipeline::Result<Vec<_>>>()?;
    let tables = study::gather(
        e.file.study(),
        &e.config_text(),
        n,
        |s| shard_dir(&args.results, &e.name, s),
        &setup_path(&args.results, &e.name),
    )?;
    let aside = AsideFolder::begin(&args.results.join("models").join(&e.name), "model folder")?;
    for s in &shards {
        let models = shard_dir(&args.results, &e.name, *s).join("models");
        let Ok(entries) = std::fs::read_dir(&models) else {
            continue;
        };
        for entry in entries {
            let entry = entry.map_err(|err| PipelineError::io(&models, err))?;
            let to = aside.dir().join(entry.file_name());
            // A network that units of several shards needed was trained by each, to the same
            // weights: the first copy is kept.
            if to.exists() {
                continue;
            }
            std::fs::rename(entry.path(), &to)
                .map_err(|err| PipelineError::io(entry.path(), err))?;
        }
    }
    let summary = write_outputs(args, &e, &tables, aside)?;
    drop(locks);
    let all = args.results.join("shards").join(&e.name);
    std::fs::remove_dir_all(&all).map_err(|err| PipelineError::io(&all, err))?;
    // The shards folder goes when its last experiment is gathered.
    let _ = std::fs::remove_dir(args.results.join("shards"));
    Ok(summary)
}

/// Writes a complete run's files and swaps its networks in; returns the summary's text.
fn write_outputs(
    args: &ExperimentArgs,
    e: &Experiment,
    tables: &Tables,
    aside: AsideFolder,
) -> Result<String> {
    let name = &e.name;
    let mut written = e.written.clone();
    if args.quick {
        written.insert("quick".into(), true.into());
    }
    written.insert(
        "run_info".into(),
        crate::provenance(rayon::current_num_threads()).into(),
    );
    let header = format!(
        "# Written by scorelab experiment: the experiment config as run, with provenance in [run_info].\n\
         # `scorelab experiment --config {}` reruns it.\n",
        args.config.display()
    );
    let mut staged = Staged::default();
    staged.stage(
        &args.results.join(format!("{name}.config.toml")),
        format!("{header}{}", toml::to_string(&written).expect("serialises")).as_bytes(),
    )?;
    for (suffix, table) in tables.iter() {
        if suffix.starts_with('.') {
            continue;
        }
        let file = if suffix.is_empty() {
            format!("{name}.csv")
        } else {
            format!("{name}_{suffix}.csv")
        };
        staged.stage(&args.results.join(file), table.to_csv().as_bytes())?;
    }
    staged.commit()?;
    aside.swap_in()?;
    let partial = args.results.join(format!("{name}.partial.csv"));
    if partial.is_file() {
        std::fs::remove_file(&partial).map_err(|err| PipelineError::io(&partial, err))?;
    }
    Ok(tables
        .get("summary")
        .map(|t| t.to_csv())
        .unwrap_or_default())
}

//! # scorelab: the command line
//!
//! The only binary of the workspace, `scorelab`: clap, files, progress bars, signals, and the
//! mapping from files to [`scorelab_pipeline`] calls. The science lives in the library crates;
//! every subcommand here reads its inputs, calls the pipeline, and writes what it returns.
//!
//! One module per subcommand: [`equivalence`], [`train`], [`cost`], [`score`], [`sample`],
//! [`evaluate`] (`scorelab eval`), [`experiments`] (one file per experiment kind) and
//! [`reproduce`] (every experiment, figure and the paper); `scorelab --help` lists their flags.
//!
//! User input never panics: a bad config is an [`InputError`] (or a [`PipelineError`] about
//! input) that names the case and field, exits with code 2, and writes nothing.
#![warn(missing_docs)]

pub mod cost;
pub mod equivalence;
pub mod evaluate;
pub mod experiments;
pub mod likelihood;
pub mod reproduce;
pub mod sample;
pub mod score;
pub mod train;

use scorelab_pipeline::PipelineError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use thiserror::Error;

/// A problem with the user's input (a config, a flag, a file to read): exit code 2.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// Ctrl-C or SIGTERM stopped the work: exit code 130, like every command's clean stop. The
/// message says what was kept and where.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct Interrupted(pub String);

/// Whether `e` is (or wraps) an [`Interrupted`].
pub fn is_interrupted(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Interrupted>().is_some())
}

/// An [`InputError`] with this message.
pub(crate) fn bad(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

/// Whether `e` is the user's input (exit code 2) rather than the machine's (exit code 1).
pub fn is_input(e: &anyhow::Error) -> bool {
    e.downcast_ref::<InputError>().is_some()
        || e.downcast_ref::<PipelineError>()
            .is_some_and(PipelineError::is_input)
}

/// A pipeline error about the config file `path`: its message under `config PATH: `.
pub(crate) fn in_config(path: &std::path::Path) -> impl Fn(PipelineError) -> anyhow::Error + '_ {
    move |e| {
        if e.is_input() {
            match e {
                PipelineError::Input(m) => InputError(m).into(),
                other => InputError(format!("config {}: {other}", path.display())).into(),
            }
        } else {
            e.into()
        }
    }
}

/// Ctrl-C (or SIGTERM) sets the flag; a second one (or a failure to install the handler) exits at
/// once.
pub fn stop_flag() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    });
    stop
}

/// A progress bar on stderr with indicatif's `template` (hidden when stderr is not a terminal).
pub(crate) fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("a valid template"));
    bar
}

/// An empty table that prints as Markdown.
pub fn markdown_table() -> comfy_table::Table {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::ASCII_MARKDOWN);
    t
}

/// The commit (with `+dirty` when the code, experiment files, data or templates differ from it),
/// compiler, CPU and thread count of this run.
pub fn provenance(threads: usize) -> toml::Table {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(c) => {
            // Dirty when what makes the results differs from the commit: the code, the
            // experiment files, the data and the templates; not the outputs a run (`reproduce`
            // among them) writes itself, which would mark every step after the first.
            let dirty = git(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":/",
                ":(exclude,top)results",
                ":(exclude,top)paper/figures",
                ":(exclude,top)paper/paper.md",
                ":(exclude,top)README.md",
            ])
            .is_some_and(|s| !s.is_empty());
            if dirty {
                format!("{c}+dirty")
            } else {
                c
            }
        }
        None => "unknown".into(),
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let mut t = toml::Table::new();
    t.insert("commit".into(), commit.into());
    t.insert("rustc".into(), env!("SCORELAB_RUSTC_VERSION").into());
    t.insert("cpu".into(), cpu.into());
    t.insert("threads".into(), (threads as i64).into());
    t.insert("scorelab".into(), env!("CARGO_PKG_VERSION").into());
    t
}

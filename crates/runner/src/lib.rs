//! # scorelab: the command line
//!
//! The only binary of the workspace, `scorelab`: clap, files, progress bars, signals, and the
//! mapping from files to [`scorelab_pipeline`] calls. The science lives in the library crates;
//! every subcommand here reads its inputs, calls the pipeline, and writes what it returns.
//!
//! One module per subcommand: [`equivalence`], [`train`], [`cost`], [`score`], [`sample`],
//! [`evaluate`] (`scorelab eval`), [`experiments`] (the studies of [`scorelab_studies`], whole or
//! in shards, and `scorelab gather`) and
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

pub use scorelab_pipeline::Interrupted;

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

pub use scorelab_pipeline::run_info::provenance;

//! # scorelab: the runner
//!
//! The only binary of the workspace, `scorelab`, composes the crates below it:
//! densities and models ← objectives, samplers ← eval ← runner. It alone knows files, configs and the command
//! line. Subcommands:
//!
//! - `scorelab equivalence [--config FILE.toml] [--out FILE.csv] [--seed N] [--samples N]`: the audit of
//!   ESM = ISM + C (+ B) on analytic densities ([`equivalence`]); without `--config`, the built-in
//!   suite ([`suite`]).
//! - `scorelab train --config FILE.toml --out DIR [--seed N] [--threads N] [--force] [--resume]`:
//!   trains a dfdx score network by any objective ([`train`]).
//! - `scorelab cost --dims 2,8,32,128,512 --batch 128 --width 128 --steps 30 --out FILE.csv`: the
//!   Jacobian-cost table, ms per training step per objective and D ([`cost`]).
//! - `scorelab score --model DIR --points IN.csv --out OUT.csv [--sigma S]`: a trained model's score
//!   in the data's units ([`score`]).
//! - `scorelab sample --config FILE.toml --out samples.csv [--seed N]`: a score-based sampler on an
//!   analytic density's (noised) score or a trained model's ([`sample`]).
//! - `scorelab eval --samples S.csv (--density FILE.toml | --reference R.csv) --out metrics.csv`:
//!   MMD², KSD, sliced W₂ and mode weights with standard errors and p-values ([`evaluate`]).
//! - `scorelab experiment --config paper/experiments/NAME.toml [--results DIR]`: one of the paper's
//!   experiments ([`experiment`]).
//!
//! User input never panics: a bad config is an [`InputError`] that names the case and field, exits
//! with code 2, and writes nothing.
#![warn(missing_docs)]

pub mod config;
pub mod cost;
pub mod datafit;
pub mod equivalence;
pub mod evaluate;
pub mod experiment;
pub mod imagefit;
pub mod output;
pub mod reproduce;
pub mod sample;
pub mod score;
pub mod suite;
pub mod table;
pub mod train;

use thiserror::Error;

/// A problem with the user's input (a config, a flag, a file to read): exit code 2.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// An [`InputError`] with this message.
pub(crate) fn bad(msg: impl Into<String>) -> InputError {
    InputError(msg.into())
}

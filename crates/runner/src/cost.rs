//! `scorelab cost`: the Jacobian-cost table — median milliseconds of one training step per
//! objective and input dimension D, in the setting of [`scorelab_pipeline::cost`] (that of the
//! PyTorch and JAX baselines, `results/baselines/`).
//!
//! Timings depend on the machine and its load: the CSV is a measurement, not a reproducible
//! result (everything else scorelab writes is).

use crate::InputError;
use anyhow::Result;
use scorelab_pipeline::cost::{measure, objective, to_csv, CostRow};
use scorelab_pipeline::files::Staged;
use std::path::PathBuf;

/// The flags of `scorelab cost`.
#[derive(clap::Args)]
pub struct CostArgs {
    /// Input dimensions D.
    #[arg(long, value_delimiter = ',', default_value = "2,8,32,128,512")]
    pub dims: Vec<usize>,
    /// Batch size.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Width of the two hidden softplus layers.
    #[arg(long, default_value_t = 128)]
    pub width: usize,
    /// Timed steps per setting (after 5 warm-up steps).
    #[arg(long, default_value_t = 30)]
    pub steps: usize,
    /// Objectives (default all: dsm,ssm,ssm_vr,ism_naive,ism_structured,esm).
    #[arg(long, value_delimiter = ',')]
    pub objectives: Option<Vec<String>>,
    /// Where to write the CSV.
    #[arg(long, default_value = "results/jacobian_cost.csv")]
    pub out: PathBuf,
}

/// Runs `scorelab cost` and writes the CSV.
///
/// # Errors
/// An input error for bad flags, or an I/O error.
pub fn run(
    ids: &[String],
    dims: &[usize],
    batch: usize,
    width: usize,
    steps: usize,
    out: &std::path::Path,
) -> Result<Vec<CostRow>> {
    if dims.is_empty() || dims.contains(&0) {
        return Err(
            InputError("--dims: give positive dimensions, e.g. 2,8,32,128,512".into()).into(),
        );
    }
    if batch == 0 || width == 0 || steps == 0 {
        return Err(InputError("--batch, --width and --steps: must be at least 1".into()).into());
    }
    scorelab_pipeline::files::check_output(out, "--out")?;
    let limit = scorelab_pipeline::memory::MemoryLimit::from_env()?;
    for id in ids {
        objective(id)?;
        for &d in dims {
            scorelab_pipeline::cost::check_size(id, d, batch, width, limit)?;
        }
    }
    let bar = crate::bar(
        (ids.len() * dims.len()) as u64,
        "{bar:30} {pos}/{len} settings · {msg}",
    );
    let mut rows = Vec::new();
    for id in ids {
        for &d in dims {
            bar.set_message(format!("{id} D={d}"));
            rows.push(measure(id, d, batch, width, 5, steps)?);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut staged = Staged::default();
    staged.stage(out, to_csv(&rows, batch, width).as_bytes())?;
    staged.commit()?;
    Ok(rows)
}

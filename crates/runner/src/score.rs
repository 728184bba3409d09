//! `scorelab score`: a trained model's score at given points, in the data's own units.

use crate::bad;
use anyhow::Result;
use scorelab_core::Score;
use scorelab_pipeline::data::read_points;
use scorelab_pipeline::files::{check_distinct, matrix_csv, Staged};
use scorelab_pipeline::train::{run_files, TrainedModel};
use scorelab_pipeline::PipelineError;
use std::path::Path;

/// Writes s(x) for the points of `points` to `out` (header `s0,…,s{D−1}`).
///
/// # Errors
/// An input error for a missing or unreadable model, bad points, or a wrong use of `--sigma`.
pub fn run(model_dir: &Path, points: &Path, out: &Path, sigma: Option<f64>) -> Result<()> {
    let model_files = run_files(model_dir);
    let mut inputs = vec![("--points", points)];
    inputs.extend(
        model_files
            .iter()
            .map(|p| ("a file of --model", p.as_path())),
    );
    check_distinct(&[("--out", out)], &inputs)?;
    let model = TrainedModel::load(model_dir).map_err(|e| match e {
        PipelineError::Input(m) => bad(format!("--model {m}")),
        other => bad(format!("--model: {other}")),
    })?;
    let f = scorelab_models::F32Score::new(&model.network, sigma).map_err(|e| {
        bad(format!(
            "--sigma: {}",
            e.to_string().trim_start_matches("sigma: ")
        ))
    })?;
    // As `sample` and `likelihood` refuse a schedule outside the trained σ̃ range, so does this.
    if let (Some(s), Some((lo, hi))) = (sigma, model.sigma_range) {
        let slack = 1e-9;
        if s < lo * (1.0 - slack) || s > hi * (1.0 + slack) {
            return Err(bad(format!(
                "--sigma {s}: the network in {} was trained on σ̃ from {lo} to {hi} (model units); its score outside that range is an extrapolation nobody checked: give --sigma within it",
                model_dir.display()
            ))
            .into());
        }
    }
    let x = read_points(points, "--points", Some(model.network.spec().dim))?;
    let s = match &model.transform {
        Some(t) => t.score_back(&f.score(t.forward(&x).view())),
        None => f.score(x.view()),
    };
    let mut staged = Staged::default();
    staged.stage(out, matrix_csv(&s, "s").as_bytes())?;
    Ok(staged.commit()?)
}

//! `scorelab score`: a trained model's score at given points, in the data's own units.

use crate::output::Staged;
use crate::table::Table;
use crate::train::Transform;
use crate::{bad, InputError};
use anyhow::Result;
use ndarray::Array2;
use scorelab_models::Network;
use std::path::Path;

/// Reads a points CSV whose header is exactly `x0,…,x{D−1}`: with `dim`, D must be that; without,
/// D is read from the header. `flag` (e.g. `--points`) names the file in errors.
///
/// # Errors
/// An [`InputError`] naming the flag, file, row and column.
pub fn read_points(path: &Path, flag: &str, dim: Option<usize>) -> Result<Array2<f64>, InputError> {
    let label = format!("{flag} {}", path.display());
    let table = Table::open(path, &label)?;
    let d = dim.unwrap_or(table.header.len());
    let want: Vec<String> = (0..d).map(|j| format!("x{j}")).collect();
    if table.header != want || d == 0 {
        return Err(bad(match dim {
            Some(d) => format!(
                "{label}: the header is {} but this {d}-dimensional model needs {}",
                table.header.join(","),
                want.join(",")
            ),
            None => format!(
                "{label}: the header is {:?}; points have the header x0,x1,…,x{{D-1}}",
                table.header.join(",")
            ),
        }));
    }
    let idx: Vec<usize> = (0..d).collect();
    table.read(&idx, &want)
}

/// Writes s(x) for the points of `points` to `out` (header `s0,…,s{D−1}`).
///
/// # Errors
/// An [`InputError`] for a missing or unreadable model, bad points, or a wrong use of `--sigma`.
pub fn run(model_dir: &Path, points: &Path, out: &Path, sigma: Option<f64>) -> Result<()> {
    let model_file = model_dir.join("model.safetensors");
    if !model_file.exists() {
        return Err(bad(format!(
            "--model {}: no model.safetensors; give a folder written by scorelab train",
            model_dir.display()
        ))
        .into());
    }
    let net = Network::load(&model_file).map_err(|e| bad(format!("--model: {e}")))?;
    let transform_file = model_dir.join("transform.toml");
    let transform: Option<Transform> = if transform_file.exists() {
        let text = std::fs::read_to_string(&transform_file)
            .map_err(|e| bad(format!("{}: {e}", transform_file.display())))?;
        Some(toml::from_str(&text).map_err(|e| bad(format!("{}: {e}", transform_file.display())))?)
    } else {
        None
    };
    let f = net.score_function(sigma).map_err(|e| {
        bad(format!(
            "--sigma: {}",
            e.to_string().trim_start_matches("sigma: ")
        ))
    })?;
    let dim = net.spec().dim;
    let x = read_points(points, "--points", Some(dim))?;
    let s = match &transform {
        Some(t) => t.score_back(&f.score(t.forward(&x).view())),
        None => f.score(x.view()),
    };
    let csv = crate::output::matrix_csv(&s, "s");
    let mut staged = Staged::default();
    staged.stage(out, csv.as_bytes())?;
    staged.commit()
}

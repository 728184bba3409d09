//! `scorelab eval`: sample-quality metrics of a samples CSV against an analytic density or a
//! reference sample, one row per metric: `metric,value,se,p_value,target`.
//!
//! - Against a density (`--density FILE.toml`, any TOML file with a `density = {…}` key, a train
//!   config's `[data] density`, or a sample config whose `model_dir` was trained on a density): MMD² against as many fresh exact samples (with its permutation
//!   p-value and the bandwidth used), KSD (needs only the target's score), sliced W₂ against the
//!   fresh samples, and for a Gaussian mixture each component's weight.
//! - If the file is a `scorelab sample` config whose sampler targets p_σ = p ∗ N(0, σ²I) (a
//!   noise-conditional sampler without `denoise`), the metrics compare with p_σ, and the `target`
//!   column says `p_sigma=σ`; otherwise `p` (with `noised_score = "ncsn_toy"`, the target is p
//!   with every covariance replaced by σ²I: see [`crate::sample::target_of`]).
//! - Against a reference CSV (`--reference ref.csv`): MMD² and sliced W₂; `target` is `reference`.
//!
//! Randomness (seed from `--seed`, default 0): the exact reference samples come from stream 0, the
//! MMD permutations from stream 1, the KSD bootstrap from stream 2 and the W₂ projections from
//! stream 3 of `ChaCha8Rng::seed_from_u64(seed)`.

use crate::config::DensitySpec;
use crate::output::{cell, Staged};
use crate::sample::{target_of, NoisedScoreKind, SamplerSpec};
use crate::score::read_points;
use crate::{bad, InputError};
use anyhow::Result;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, Sample};
use scorelab_densities::AnyDensity;
use scorelab_eval::{ksd, mmd2, mode_weights, sliced_w2, Estimate};
use std::path::{Path, PathBuf};

/// The number of random directions of sliced W₂.
pub const PROJECTIONS: usize = 100;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// The metric's name.
    pub metric: String,
    /// Its value.
    pub value: f64,
    /// Its standard error, where it has one.
    pub se: Option<f64>,
    /// Its test's p-value, where it has one.
    pub p_value: Option<f64>,
    /// What it compares against: `p`, `p_sigma=σ` or `reference`.
    pub target: String,
}

impl MetricRow {
    fn of(metric: &str, e: Estimate, target: &str) -> Self {
        MetricRow {
            metric: metric.into(),
            value: e.value,
            se: e.se.is_finite().then_some(e.se),
            p_value: e.p_value,
            target: target.into(),
        }
    }
}

/// What samples are compared against.
pub enum Against {
    /// The target density (p, or p_σ already noised), with its label.
    Density(Box<AnyDensity>, String),
    /// A reference sample.
    Reference(Array2<f64>),
}

/// The header of `metrics.csv`.
pub const METRIC_COLUMNS: &str = "metric,value,se,p_value,target";

/// Every metric of `x` against `against` (module docs for the streams). `tests` is the number of
/// permutations (MMD) and bootstrap replicates (KSD); 0 skips both p-values.
///
/// Points with a non-finite coordinate (chains that diverged) are left out of every metric; the
/// last row, `diverged`, is their fraction. With fewer than two finite points every other value is
/// NaN.
pub fn metrics(x: ArrayView2<f64>, against: &Against, seed: u64, tests: usize) -> Vec<MetricRow> {
    let keep: Vec<usize> = (0..x.nrows())
        .filter(|&i| x.row(i).iter().all(|v| v.is_finite()))
        .collect();
    let label = match against {
        Against::Density(_, label) => label.clone(),
        Against::Reference(_) => "reference".into(),
    };
    let diverged = MetricRow {
        metric: "diverged".into(),
        value: (x.nrows() - keep.len()) as f64 / x.nrows() as f64,
        se: None,
        p_value: None,
        target: label,
    };
    let finite = x.select(ndarray::Axis(0), &keep);
    let mut rows = if keep.len() >= 2 {
        finite_metrics(finite.view(), against, seed, tests)
    } else {
        metric_names(against)
            .into_iter()
            .map(|metric| MetricRow {
                metric,
                value: f64::NAN,
                se: None,
                p_value: None,
                target: diverged.target.clone(),
            })
            .collect()
    };
    rows.push(diverged);
    rows
}

/// The names of the rows [`metrics`] writes before `diverged`, in order.
fn metric_names(against: &Against) -> Vec<String> {
    let mut names = vec!["mmd2".to_string(), "mmd_bandwidth".into()];
    if let Against::Density(p, _) = against {
        names.extend(["ksd".to_string(), "ksd2_u".into()]);
        names.push("sliced_w2".into());
        if let AnyDensity::GaussianMixture(mix) = p.as_ref() {
            names.extend((0..mix.weights().len()).map(|k| format!("mode_weight_{k}")));
        }
    } else {
        names.push("sliced_w2".into());
    }
    names
}

fn finite_metrics(
    x: ArrayView2<f64>,
    against: &Against,
    seed: u64,
    tests: usize,
) -> Vec<MetricRow> {
    let stream = |k: u64| {
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        r.set_stream(k);
        r
    };
    let mut rows = vec![];
    let (reference, label) = match against {
        Against::Density(p, label) => (p.sample(x.nrows(), &mut stream(0)), label.as_str()),
        Against::Reference(y) => (y.clone(), "reference"),
    };
    let m = mmd2(x, reference.view(), None, tests, &mut stream(1));
    rows.push(MetricRow::of("mmd2", m.estimate, label));
    rows.push(MetricRow {
        metric: "mmd_bandwidth".into(),
        value: m.bandwidth,
        se: None,
        p_value: None,
        target: label.into(),
    });
    if let Against::Density(p, _) = against {
        let k = ksd(x, p.as_ref(), tests, &mut stream(2));
        rows.push(MetricRow::of("ksd", k.ksd, label));
        rows.push(MetricRow::of("ksd2_u", k.u_statistic, label));
    }
    let w = sliced_w2(x, reference.view(), PROJECTIONS, &mut stream(3));
    rows.push(MetricRow::of("sliced_w2", w, label));
    if let Against::Density(p, _) = against {
        if let AnyDensity::GaussianMixture(mix) = p.as_ref() {
            for (k, e) in mode_weights(mix, x).into_iter().enumerate() {
                rows.push(MetricRow::of(&format!("mode_weight_{k}"), e, label));
            }
        }
    }
    rows
}

/// `metrics.csv` text.
pub fn to_csv(rows: &[MetricRow]) -> String {
    let mut out = format!("{METRIC_COLUMNS}\n");
    for r in rows {
        out.push_str(&format!(
            "{},{},{},{},{}\n",
            r.metric,
            r.value,
            cell(r.se),
            cell(r.p_value),
            r.target
        ));
    }
    out
}

/// Reads `--density FILE.toml`: the density (from `density` or `[data] density`) and, for a sample
/// config, what its sampler's output targets ([`target_of`]): p, p_σ, or the NCSN toy's density.
///
/// # Errors
/// An [`InputError`] naming the file and key.
pub fn read_target(path: &Path) -> Result<(AnyDensity, String), InputError> {
    let label = format!("--density {}", path.display());
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("{label}: cannot read: {e}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| bad(format!("{label}: {e}")))?;
    // A sample config with model_dir: the density the model was trained on, if it was one.
    let trained: Option<toml::Table> = table
        .get("model_dir")
        .and_then(|d| d.as_str())
        .and_then(|d| std::fs::read_to_string(Path::new(d).join("config.toml")).ok())
        .and_then(|t| toml::from_str(&t).ok());
    let raw = table
        .get("density")
        .or_else(|| table.get("data").and_then(|d| d.get("density")))
        .or_else(|| {
            trained
                .as_ref()
                .and_then(|t| t.get("data"))
                .and_then(|d| d.get("density"))
        })
        .ok_or_else(|| {
            bad(format!(
                "{label}: no density key; give a file with density = {{ kind = …, … }} (a sample config works as is), or compare with --reference"
            ))
        })?;
    let spec: DensitySpec = raw
        .clone()
        .try_into()
        .map_err(|e| bad(format!("{label}: density: {e}")))?;
    let p = spec
        .build()
        .map_err(|e| bad(format!("{label}: density.{e}")))?;
    let sigma = match table.get("sampler") {
        Some(s) => {
            let spec: SamplerSpec = s
                .clone()
                .try_into()
                .map_err(|e| bad(format!("{label}: sampler: {e}")))?;
            spec.build()
                .map_err(|e| bad(format!("{label}: {}", e.0)))?
                .plan()
                .target_sigma()
        }
        None => None,
    };
    let kind: NoisedScoreKind = match table.get("noised_score") {
        Some(v) => v
            .clone()
            .try_into()
            .map_err(|e| bad(format!("{label}: noised_score: {e}")))?,
        None => NoisedScoreKind::Exact,
    };
    target_of(&p, kind, sigma).map_err(|e| bad(format!("{label}: {e}")))
}

/// What the command line passes to [`run`].
pub struct EvalArgs {
    /// The samples CSV.
    pub samples: PathBuf,
    /// A TOML file with the target density.
    pub density: Option<PathBuf>,
    /// Or a reference sample.
    pub reference: Option<PathBuf>,
    /// The seed (default 0).
    pub seed: Option<u64>,
    /// Permutations / bootstrap replicates.
    pub tests: usize,
    /// Where to write.
    pub out: PathBuf,
}

/// Runs `scorelab eval` (module docs) and returns the rows.
///
/// # Errors
/// An [`InputError`] for bad input (nothing is written then).
pub fn run(args: &EvalArgs) -> Result<Vec<MetricRow>> {
    if args.out.is_dir() {
        return Err(bad(format!(
            "--out {}: is a folder; give a file name such as metrics.csv",
            args.out.display()
        ))
        .into());
    }
    let against =
        match (&args.density, &args.reference) {
            (Some(_), Some(_)) => return Err(bad("--density and --reference: give one").into()),
            (None, None) => return Err(bad(
                "give --density FILE.toml (an analytic target) or --reference ref.csv (a sample)",
            )
            .into()),
            (Some(path), None) => {
                let (q, label) = read_target(path)?;
                Against::Density(Box::new(q), label)
            }
            (None, Some(path)) => {
                let y = read_points(path, "--reference", None)?;
                if y.nrows() < 2 {
                    return Err(bad(format!(
                        "--reference {}: needs at least 2 rows",
                        path.display()
                    ))
                    .into());
                }
                Against::Reference(y)
            }
        };
    let dim = match &against {
        Against::Density(p, _) => p.dim(),
        Against::Reference(y) => y.ncols(),
    };
    let x = read_points(&args.samples, "--samples", None)?;
    if x.ncols() != dim {
        return Err(bad(format!(
            "--samples {}: the points are {}-dimensional but the target is {dim}-dimensional",
            args.samples.display(),
            x.ncols()
        ))
        .into());
    }
    if x.nrows() < 2 {
        return Err(bad(format!(
            "--samples {}: needs at least 2 rows",
            args.samples.display()
        ))
        .into());
    }
    let rows = metrics(x.view(), &against, args.seed.unwrap_or(0), args.tests);
    let mut staged = Staged::default();
    staged.stage(&args.out, to_csv(&rows).as_bytes())?;
    staged.commit()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use scorelab_densities::catalogue;

    /// The NaN rows of a run with no finite point name the same metrics as a normal run.
    #[test]
    fn the_rows_without_finite_points_match_the_normal_rows() {
        let x = array![[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [f64::NAN, 0.0]];
        let mix = catalogue::all()
            .into_iter()
            .find(|(n, _)| *n == "mix2")
            .unwrap()
            .1;
        for against in [
            Against::Density(Box::new(mix), "p".into()),
            Against::Reference(array![[0.0, 0.0], [1.0, 1.0]]),
        ] {
            let rows = metrics(x.view(), &against, 0, 0);
            let names: Vec<String> = rows.iter().map(|r| r.metric.clone()).collect();
            let mut want = metric_names(&against);
            want.push("diverged".into());
            assert_eq!(names, want);
            assert_eq!(rows.last().unwrap().value, 0.25);
            assert!(rows[..rows.len() - 1].iter().all(|r| r.value.is_finite()));
            let all_bad = metrics(x.slice(ndarray::s![3.., ..]), &against, 0, 0);
            assert_eq!(all_bad.len(), want.len());
            assert!(all_bad[..want.len() - 1].iter().all(|r| r.value.is_nan()));
            assert_eq!(all_bad.last().unwrap().value, 1.0);
        }
    }
}

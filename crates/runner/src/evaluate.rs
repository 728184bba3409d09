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
//!   with every covariance replaced by σ²I: see [`scorelab_pipeline::sample::target_of`]).
//! - Against a reference CSV (`--reference ref.csv`): MMD² and sliced W₂; `target` is `reference`.
//!   A file naming a toy data set (`toy = "NAME"`, `[data] toy`, or a sample config whose model
//!   was trained on one) is compared the same way with the toy's fixed 10 000 held-out points of
//!   the seed ([`scorelab_densities::Toy::heldout`]).
//!
//! Randomness (seed from `--seed`, default 0): the exact reference samples come from stream 0, the
//! MMD permutations from stream 1, the KSD bootstrap from stream 2 and the W₂ projections from
//! stream 3 of `ChaCha8Rng::seed_from_u64(seed)`.

use crate::{bad, InputError};
use anyhow::Result;
use scorelab_core::Dimension;
use scorelab_densities::AnyDensity;
use scorelab_pipeline::data::read_points;
use scorelab_pipeline::files::{check_distinct, Staged};
use scorelab_pipeline::memory::{self, MemoryLimit};
use scorelab_pipeline::metrics::{metrics, to_csv, Against, MetricRow};
use scorelab_pipeline::sample::{target_of, AnySampler, NoisedScoreKind};
use scorelab_pipeline::spec::DensitySpec;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Reads `--density FILE.toml`: the density (from `density` or `[data] density`) and, for a sample
/// config, what its sampler's output targets ([`target_of`]): p, p_σ, or the NCSN toy's density;
/// or a toy data set (`toy` or `[data] toy`, or the training data of a sample config's model).
///
/// # Errors
/// An [`InputError`] naming the file and key.
pub fn read_target(path: &Path) -> Result<Target, InputError> {
    let label = format!("--density {}", path.display());
    let text =
        std::fs::read_to_string(path).map_err(|e| bad(format!("{label}: cannot read: {e}")))?;
    let file: TargetFile =
        scorelab_pipeline::files::parse_toml(&text).map_err(|e| bad(format!("{label}: {e}")))?;
    // A sample config with model_dir: the data the model was trained on, if it was one.
    let trained: Option<TargetFile> = file
        .model_dir
        .as_ref()
        .and_then(|d| std::fs::read_to_string(d.join("config.toml")).ok())
        .and_then(|t| scorelab_pipeline::files::parse_toml(&t).ok());
    // `key` at the top level, in `[data]`, or in the `[data]` of the model's training config.
    let data = |f: &TargetFile| f.data.clone().unwrap_or_default();
    let trained_data = trained.as_ref().map(data).unwrap_or_default();
    // A toy data set (`toy = "NAME"`, `[data] toy`, or a model trained on one): no density
    // here, its fixed held-out points are the reference.
    if let Some(t) = file.toy.or(data(&file).toy).or(trained_data.toy) {
        return Ok(Target::Toy(t));
    }
    let spec = file
        .density
        .clone()
        .or(data(&file).density)
        .or(trained_data.density)
        .ok_or_else(|| {
            bad(format!(
                "{label}: no density key; give a file with density = {{ kind = …, … }} (a sample config works as is), or compare with --reference"
            ))
        })?;
    let p = spec
        .build()
        .map_err(|e| bad(format!("{label}: {}", e.within("density"))))?;
    let (sigma, scale) = match &file.sampler {
        Some(s) => (s.outline().target_sigma(), s.outline().target_scale()),
        None => (None, 1.0),
    };
    let kind = file.noised_score.unwrap_or_default();
    let (q, l) = target_of(&p, kind, sigma, scale).map_err(|e| bad(format!("{label}: {e}")))?;
    Ok(Target::Density(Box::new(q), l))
}

/// The keys `--density FILE.toml` reads from whatever file it is given (a density file, a
/// sample config, a train config); the file's other keys are left alone.
#[derive(Debug, Default, Deserialize)]
struct TargetFile {
    density: Option<DensitySpec>,
    toy: Option<scorelab_densities::Toy>,
    data: Option<TargetData>,
    model_dir: Option<PathBuf>,
    sampler: Option<AnySampler>,
    noised_score: Option<NoisedScoreKind>,
}

/// `[data]` of a train config, as far as `--density` reads it.
#[derive(Debug, Clone, Default, Deserialize)]
struct TargetData {
    density: Option<DensitySpec>,
    toy: Option<scorelab_densities::Toy>,
}

/// What `--density FILE.toml` names: an analytic density (and the target's label), or a toy
/// data set.
pub enum Target {
    /// The density the samples are compared with, and the `target` column's label.
    Density(Box<AnyDensity>, String),
    /// A toy data set: compared with its fixed held-out points of the seed.
    Toy(scorelab_densities::Toy),
}

/// The flags of `scorelab eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// The samples, header x0..x{D-1}.
    #[arg(long, value_name = "FILE.csv")]
    pub samples: PathBuf,
    /// A TOML file with density = {…} (a sample config works as is, and sets the target to
    /// p_σ when its sampler ends at σ_min without denoise), or toy = "NAME" (compared with the
    /// toy's 10 000 held-out points of the seed).
    #[arg(long, value_name = "FILE.toml")]
    pub density: Option<PathBuf>,
    /// Or a reference sample, header x0..x{D-1}.
    #[arg(long, value_name = "REF.csv")]
    pub reference: Option<PathBuf>,
    /// Seed for the exact reference samples, permutations, bootstrap and projections (default 0).
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Permutations of the MMD test and bootstrap replicates of the KSD test (0: no p-values).
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub tests: usize,
    /// Where to write the metrics.
    #[arg(long, value_name = "FILE.csv")]
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
    let mut inputs = vec![("--samples", args.samples.as_path())];
    inputs.extend(args.density.iter().map(|p| ("--density", p.as_path())));
    inputs.extend(args.reference.iter().map(|p| ("--reference", p.as_path())));
    check_distinct(&[("--out", args.out.as_path())], &inputs)?;
    let against =
        match (&args.density, &args.reference) {
            (Some(_), Some(_)) => return Err(bad("--density and --reference: give one").into()),
            (None, None) => return Err(bad(
                "give --density FILE.toml (an analytic target) or --reference ref.csv (a sample)",
            )
            .into()),
            (Some(path), None) => match read_target(path)? {
                Target::Density(q, label) => Against::Density(q, label),
                Target::Toy(t) => Against::Reference(t.heldout(args.seed.unwrap_or(0))),
            },
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
    let m = match &against {
        Against::Density(..) => x.nrows(),
        Against::Reference(y) => y.nrows(),
    };
    memory::check(
        memory::metrics_bytes(x.nrows(), m, dim, args.tests),
        MemoryLimit::from_env()?,
        || {
            format!(
                "the metrics of {} samples against {m} with {} test replicates",
                x.nrows(),
                args.tests
            )
        },
        "compare fewer samples, or lower --tests",
    )?;
    let rows = metrics(x.view(), &against, args.seed.unwrap_or(0), args.tests);
    let mut staged = Staged::default();
    staged.stage(&args.out, to_csv(&rows).as_bytes())?;
    staged.commit()?;
    Ok(rows)
}

//! # scorelab-pipeline: the science as a library
//!
//! Everything the paper does, from Rust in a few lines, without TOML files or the command line:
//! this crate composes the densities, models, objectives, samplers and metrics of the crates below
//! it into what a study needs, and is what the `scorelab` command line calls.
//!
//! | module | what it gives |
//! | --- | --- |
//! | [`data`] | [`data::Dataset`] from a CSV, its seeded [`data::Split`], dequantisation, the [`data::Transform`] to model units and back |
//! | [`train`] | a validated [`train::TrainPlan`], [`train::train`] (in memory) and [`train::train_in`] (a folder, checkpointed and resumable) returning a [`train::TrainedModel`] with `save`/`load` |
//! | [`sample`] | the sampler registry [`sample::AnySampler`], a [`sample::SamplePlan`] over a density's or a model's score, and [`sample::Sampling::run`] |
//! | [`baselines`] | the energy model's normaliser by quadrature, the held-out ISM loss, a Gaussian fit and the Scott KDE |
//! | [`likelihood`] | a validated [`likelihood::LikelihoodPlan`]: exact log p of an analytic density's or a network's probability-flow ODE (exact or Hutchinson divergence), with dequantisation |
//! | [`digits`] | the digit metric: a classifier's Fréchet distance on a fixed three-way split of labelled images |
//! | [`metrics`] | the metric bundle every evaluation reports (MMD², KSD, sliced W₂, mode weights), nearest-neighbour distances, means over seeds |
//! | [`truth`] | the exact truth of a Gaussian-mixture target a sampler is measured against: starts, the exact flow map, a sample's metrics |
//! | [`equivalence`] | the ESM = ISM + C audit over configs of cases, and the built-in suite |
//! | [`cost`] | the Jacobian-cost benchmark's setting |
//! | [`observe`] | how long calls report progress and are stopped ([`observe::Observe`]) |
//! | [`memory`] | the one size rule: estimated memory against a limit, checked before allocating |
//! | [`spec`], [`files`] | densities as configs spell them; files written whole or not at all |
//! | [`run_info`] | the provenance written beside every result, and the error of a run stopped by Ctrl-C |
//!
//! Parameters are validated where they are defined: an invalid objective, training setting,
//! sampler or density is a [`PipelineError`] naming the field, from the constructor (or from
//! serde, which goes through the constructors), never a NaN loss or a panic. The library never
//! prints: progress and stopping go through observers.
//!
//! ```
//! use scorelab_pipeline::sample::SamplePlan;
//! let plan: SamplePlan = toml::from_str(r#"
//!     seed = 1
//!     chains = 500
//!     density = { kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }
//!     [sampler]
//!     kind = "annealed_langevin"
//!     eps = 0.1
//!     steps = 50
//!     sigma_max = 20.0
//!     sigma_min = 1.0
//!     levels = 10
//!     denoise = true
//! "#).unwrap();
//! let out = plan.prepare()?.run(&mut ());
//! let minority = out.x.rows().into_iter().filter(|r| r[0] < 0.0).count() as f64 / 500.0;
//! assert!((minority - 0.2).abs() < 0.06); // annealing recovers the weights (5 standard errors)
//! # Ok::<(), scorelab_pipeline::PipelineError>(())
//! ```
#![warn(missing_docs)]

pub mod baselines;
pub mod cost;
pub mod data;
pub mod digits;
pub mod equivalence;
mod error;
pub mod files;
pub mod likelihood;
pub mod memory;
pub mod metrics;
pub mod observe;
pub mod run_info;
pub mod sample;
pub mod spec;
pub mod train;
pub mod truth;

pub use error::{PipelineError, Result};

/// What a library user imports: `use scorelab_pipeline::prelude::*;` brings the plans, their
/// parts, the data sets and activations by name, training, sampling, and the metrics.
///
/// ```no_run
/// use scorelab_pipeline::prelude::*;
/// let plan = TrainPlan::new(1, DataSpec::toy(Toy::Moons),
///     ModelSpec::noise_conditional(vec![64, 64], Activation::Silu).edm(),
///     Objective::edm(), TrainSettings::new(500, 256, 2e-3)?);
/// let model = train(&plan, &mut ())?;
/// let x = SamplePlan::new(1, 500, AnySampler::heun(18)?).prepare_with(model)?.run(&mut ()).x;
/// assert_eq!(x.dim(), (500, 2));
/// # Ok::<(), PipelineError>(())
/// ```
pub mod prelude {
    pub use crate::data::{Dataset, Transform};
    pub use crate::likelihood::LikelihoodPlan;
    pub use crate::sample::{AnySampler, SamplePlan};
    pub use crate::spec::DensitySpec;
    pub use crate::train::Objective;
    pub use crate::train::{train, DataSpec, ModelSpec, TrainPlan, TrainSettings, TrainedModel};
    pub use crate::{PipelineError, Result};
    pub use rand::SeedableRng;
    pub use rand_chacha::ChaCha8Rng;
    pub use scorelab_densities::Toy;
    pub use scorelab_eval::{median_bandwidth, mmd2};
    pub use scorelab_models::Activation;
}
pub use run_info::Interrupted;

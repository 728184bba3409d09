//! # scorelab-densities: analytic densities with everything score matching needs
//!
//! Each density p here is known in closed form, so every quantity that score matching and sampling
//! estimate can be checked exactly: the score ∇log p, its Jacobian (JVP and Laplacian Δ log p), exact
//! samples, moments, the constant C = ½E‖∇log p‖² (where closed form), a deterministic quadrature
//! rule for E_p\[g\] in 1-D and 2-D, and, for Gaussians and Gaussian mixtures, the exactly noised
//! density p_σ = p ∗ N(0, σ²I), which is the target of denoising score matching (Vincent 2011).
//!
//! | type | support | C | p_σ | quadrature |
//! | --- | --- | --- | --- | --- |
//! | [`Gaussian`] | ℝᴰ | ½ tr Σ⁻¹ | N(μ, Σ + σ²I) | D ≤ 2 |
//! | [`GaussianMixture`] | ℝᴰ | quadrature / Monte Carlo | Σ wₖN(μₖ, Σₖ + σ²I) | D ≤ 2 |
//! | [`Banana`] | ℝ² | ½(1/a² + 4a²b² + 1) | — | yes |
//! | [`StudentT`] | ℝᴰ | ½(ν+D)/(ν+D+2) tr S⁻¹ | — | — |
//! | [`HalfNormal`] | \[0, ∞) | 1/(2s²) | — | yes |
//!
//! [`Toy`] holds the 2-D toy data sets of FFJORD's experiments (seeded samplers, and the exact
//! density of `8gaussians` and `checkerboard`).
//!
//! Every constructor validates its parameters once and returns a [`DensityError`] that names the
//! field; evaluation afterwards cannot fail. [`AnyDensity`] holds any of them.
//!
//! With the feature `testing`, the module `testing` is the generic checker every density here
//! passes (score against finite differences of log p, JVP and Laplacian against finite
//! differences of the score, sample moments against closed-form moments), for checking your own
//! density with one call each.
//!
//! ```
//! use ndarray::array;
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use scorelab_core::{Sample, ScoreFunction};
//! use scorelab_densities::Gaussian;
//! let g = Gaussian::new(array![0.0, 1.0], array![[1.0, 0.5], [0.5, 2.0]])?;
//! let x = g.sample(4, &mut ChaCha8Rng::seed_from_u64(0));
//! // The Laplacian of log N(μ, Σ) is −tr Σ⁻¹ everywhere.
//! let lap = g.jacobian_trace(x.view());
//! assert!(lap.iter().all(|&v| (v + 3.0 / 1.75).abs() < 1e-12));
//! # Ok::<(), scorelab_densities::DensityError>(())
//! ```
#![warn(missing_docs)]

mod any;
mod banana;
pub mod catalogue;
mod error;
mod gaussian;
mod half_normal;
mod mixture;
pub mod quadrature;
pub mod random;
mod student_t;
#[cfg(feature = "testing")]
pub mod testing;
mod toy;

pub use any::AnyDensity;
pub use banana::Banana;
pub use error::DensityError;
pub use gaussian::Gaussian;
pub use half_normal::HalfNormal;
pub use mixture::{GaussianMixture, MIXTURE_NODES, MIXTURE_PANELS, WEIGHT_SUM_TOL};
pub use student_t::StudentT;
pub use toy::{Toy, HELDOUT as TOY_HELDOUT, TOY_NAMES};

/// s and J v of the noised density `q` = p_σ for k tangents per point
/// ([`scorelab_core::NoisedScoreFunction::noised_score_jvp`]): each point repeated k times.
pub(crate) fn tangents_of<Q: scorelab_core::ScoreFunction>(
    q: &Q,
    x: ndarray::ArrayView2<f64>,
    v: ndarray::ArrayView2<f64>,
) -> (ndarray::Array2<f64>, ndarray::Array2<f64>) {
    let n = x.nrows();
    assert!(
        n > 0 && v.nrows().is_multiple_of(n) && v.ncols() == x.ncols(),
        "{} tangent rows for {n} points",
        v.nrows()
    );
    let k = v.nrows() / n;
    let idx: Vec<usize> = (0..n * k).map(|r| r / k).collect();
    let xr = x.select(ndarray::Axis(0), &idx);
    (q.score(x), q.score_jvp(xr.view(), v))
}

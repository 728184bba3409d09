//! # scorelab-eval: measuring score models and samplers against the truth
//!
//! Two families of measurements, each with its standard error or p-value:
//!
//! - **The equivalence audit** ([`audit()`], module [`mod@audit`]): Hyvärinen's identity
//!   ESM(θ) = ISM(θ) + C + B checked on an analytic density by Monte Carlo and, in 1-D and 2-D, by
//!   quadrature; [`audit_samples`] audits any density that has a log-density and a score (C by
//!   Monte Carlo).
//! - **Sample quality** ([`metrics`]): how far a set of samples (from a sampler, a trained model,
//!   anything) is from a target distribution.
//!
//! | metric | compares | needs | reported with |
//! | --- | --- | --- | --- |
//! | [`fisher_divergence`] | a score to a known score | both scores at samples of p | SE |
//! | [`mmd2`] (unbiased, RBF, median bandwidth) | samples to samples | a reference sample | SE and a permutation p-value |
//! | [`ksd`] (IMQ kernel, c = 1, β = −½) | samples to a density | only the target's score | SE and a wild-bootstrap p-value |
//! | [`sliced_w2`] | samples to samples | a reference sample | SE over projections |
//! | [`mode_weights`] | samples to a Gaussian mixture's weights | the mixture | SE and a binomial p-value |
//! | [`kl_by_cubature`] | a density to a density, KL(p ‖ q) | p's log-density on a cubature rule | the rule's own error (halve its panels) |
//! | [`predicted_mode_weight`] | the weight a deterministic sampler returns from its Gaussian prior | the schedule and a two-component isotropic mixture | (exact) |
//! | [`frechet::frechet_distance`] | feature vectors to feature vectors (FID's construction) | a reference set | a floor: two real sets of the same size |
//!
//! ```
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use scorelab_core::Sample;
//! use scorelab_densities::Gaussian;
//! let p = Gaussian::standard(2);
//! let mut rng = ChaCha8Rng::seed_from_u64(0);
//! let (x, y) = (p.sample(300, &mut rng), p.sample(300, &mut rng));
//! let m = scorelab_eval::mmd2(x.view(), y.view(), None, 99, &mut rng);
//! assert!(m.estimate.p_value.unwrap() > 0.01); // same distribution: no evidence against it
//! let k = scorelab_eval::ksd(x.view(), &p, 99, &mut rng);
//! assert!(k.ksd.value < 0.2);
//! ```
#![warn(missing_docs)]

pub mod audit;
pub mod frechet;
pub mod metrics;

pub use audit::{
    audit, audit_samples, closed_form, Audit, ConstantSource, GradientAudit, QuadratureAudit,
};
pub use metrics::{
    fisher_divergence, kl_by_cubature, ksd, median_bandwidth, mmd2, mode_weights,
    predicted_mode_weight, sliced_w2, Estimate, Ksd, Mmd,
};

//! The built-in suite of `scorelab equivalence`, as an ordinary config (so it is written out in full
//! beside its CSV and can be edited and rerun with `--config`).
//!
//! Densities: Gaussians in 1, 2, 10 and 50 dimensions (the 10- and 50-D ones with a seeded random
//! mean and covariance W Wᵀ/D + ½I, rounded to 4 decimals), the NCSN toy mixture
//! 0.8·N((5,5), I) + 0.2·N((−5,−5), I), two bananas (a = 1, b = ½, and Haario's a = 10, b = 0.03), a
//! 3-D Student-t with ν = 7, and the half-normal with scale 1. Models: per density on ℝᴰ, three
//! random linear models (scale ½, seeds 1–3), a random MLP score (`/mlp`: hidden [32, 32], tanh,
//! seed 1) and a random energy network (`/energy`: hidden [32, 32], softplus, τ = 3, seed 1); on the
//! half-normal, s_θ(x) = −2x + b for b ∈ {0, 1, −1} (boundary term p(0)·b), one random linear model
//! and the random MLP. The networks evaluate in f64 from f32 weights, so the quadrature identity
//! holds for them to rounding as well.

use crate::config::{CaseSpec, DensitySpec, EquivalenceConfig, ModelSpec, DEFAULT_SAMPLES};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// Rounds to 4 decimals so the written config is readable and exact.
fn r4(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// A seeded Gaussian in `d` dimensions: mean N(0, I), covariance W Wᵀ/d + ½I (W i.i.d. N(0, 1)),
/// drawn from `ChaCha8Rng::seed_from_u64(seed)` (W row-major, then the mean) and rounded.
pub fn random_gaussian(d: usize, seed: u64) -> DensitySpec {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w: Vec<Vec<f64>> = (0..d)
        .map(|_| (0..d).map(|_| StandardNormal.sample(&mut rng)).collect())
        .collect();
    let mean = (0..d)
        .map(|_| r4(StandardNormal.sample(&mut rng)))
        .collect();
    let mut cov = vec![vec![0.0; d]; d];
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..d).map(|k| w[i][k] * w[j][k]).sum();
            let v = r4(dot / d as f64 + if i == j { 0.5 } else { 0.0 });
            cov[i][j] = v;
            cov[j][i] = v;
        }
    }
    DensitySpec::Gaussian { mean, cov }
}

/// A random MLP score: hidden [32, 32], tanh, weights from seed 1.
fn mlp() -> ModelSpec {
    ModelSpec::Mlp {
        hidden: vec![32, 32],
        activation: "tanh".into(),
        seed: 1,
    }
}

/// The built-in suite with the given master seed and samples per case.
///
/// # Examples
/// ```
/// let suite = scorelab::suite::builtin(0, 1000);
/// assert_eq!(suite.cases.len(), 45);
/// assert!(suite.build().is_ok());
/// ```
pub fn builtin(seed: u64, samples: usize) -> EquivalenceConfig {
    let eye2 = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
    let densities: Vec<(&str, DensitySpec)> = vec![
        (
            "gaussian_1d",
            DensitySpec::Gaussian {
                mean: vec![0.5],
                cov: vec![vec![2.0]],
            },
        ),
        (
            "gaussian_2d",
            DensitySpec::Gaussian {
                mean: vec![1.0, -0.5],
                cov: vec![vec![1.0, 0.6], vec![0.6, 2.0]],
            },
        ),
        ("gaussian_10d", random_gaussian(10, 10)),
        ("gaussian_50d", random_gaussian(50, 50)),
        (
            "ncsn_mixture",
            DensitySpec::GaussianMixture {
                weights: vec![0.8, 0.2],
                means: vec![vec![5.0, 5.0], vec![-5.0, -5.0]],
                covs: vec![eye2.clone(), eye2],
            },
        ),
        ("banana", DensitySpec::Banana { a: 1.0, b: 0.5 }),
        ("banana_haario", DensitySpec::Banana { a: 10.0, b: 0.03 }),
        (
            "student_t_3d",
            DensitySpec::StudentT {
                mean: vec![0.0, 1.0, -1.0],
                scale: vec![
                    vec![1.0, 0.2, 0.1],
                    vec![0.2, 2.0, -0.3],
                    vec![0.1, -0.3, 0.7],
                ],
                nu: 7.0,
            },
        ),
    ];
    let mut cases = Vec::new();
    for (name, density) in densities {
        for model_seed in 1..=3 {
            cases.push(CaseSpec {
                name: format!("{name}/m{model_seed}"),
                density: density.clone(),
                model: ModelSpec::RandomLinear {
                    seed: model_seed,
                    scale: 0.5,
                },
            });
        }
        cases.push(CaseSpec {
            name: format!("{name}/mlp"),
            density: density.clone(),
            model: mlp(),
        });
        cases.push(CaseSpec {
            name: format!("{name}/energy"),
            density: density.clone(),
            model: ModelSpec::EnergyMlp {
                hidden: vec![32, 32],
                activation: "softplus".into(),
                tau: 3.0,
                seed: 1,
            },
        });
    }
    let half = DensitySpec::HalfNormal { scale: 1.0 };
    for (label, b) in [("b0", 0.0), ("b+1", 1.0), ("b-1", -1.0)] {
        cases.push(CaseSpec {
            name: format!("half_normal/{label}"),
            density: half.clone(),
            model: ModelSpec::Linear {
                a: vec![vec![-2.0]],
                b: vec![b],
            },
        });
    }
    cases.push(CaseSpec {
        name: "half_normal/m1".into(),
        density: half.clone(),
        model: ModelSpec::RandomLinear {
            seed: 1,
            scale: 0.5,
        },
    });
    cases.push(CaseSpec {
        name: "half_normal/mlp".into(),
        density: half,
        model: mlp(),
    });
    EquivalenceConfig {
        seed,
        samples,
        cases,
    }
}

/// The built-in suite with default seed 0 and [`DEFAULT_SAMPLES`].
pub fn default_builtin() -> EquivalenceConfig {
    builtin(0, DEFAULT_SAMPLES)
}

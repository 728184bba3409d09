//! Continuous-σ̃ denoising score matching: its σ̃ draws against their distributions (moments of
//! ln σ̃ within 5 standard errors at fixed seeds; two-sided failure rate 5.7e-7 each), its densities
//! against quadrature, and the likelihood weighting's importance identity
//! E_p[c(σ̃) σ̃²] = (σ_max² − σ_min²)/(2 ln(σ_max/σ_min)) (the integral of 2σ̃ dσ̃ it stands for,
//! normalised), by Monte Carlo within 5 SE, for both distributions.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::tolerance::MONTE_CARLO_SE;
use scorelab_objectives::continuous::{ContinuousDsm, SigmaDistribution, Weighting};

const N: usize = 200_000;

fn mean_se(v: &[f64]) -> (f64, f64) {
    let m = scorelab_core::stats::MeanSe::of_slice(v);
    (m.mean, m.se)
}

/// ∫ₐᵇ f by Simpson on 20 000 panels.
fn simpson(f: impl Fn(f64) -> f64, a: f64, b: f64) -> f64 {
    let m = 20_000;
    let h = (b - a) / m as f64;
    let mut s = f(a) + f(b);
    for i in 1..m {
        s += if i % 2 == 1 { 4.0 } else { 2.0 } * f(a + i as f64 * h);
    }
    s * h / 3.0
}

#[test]
fn draws_follow_their_distributions_and_densities_integrate_to_one() {
    let (lo, hi) = (0.002f64, 80.0f64);
    let cases = [
        SigmaDistribution::LogUniform,
        SigmaDistribution::LogNormal {
            p_mean: -1.2,
            p_std: 1.2,
        },
        // A truncation that bites: most of N(3, 2²) lies above ln 80 = 4.38.
        SigmaDistribution::LogNormal {
            p_mean: 5.0,
            p_std: 2.0,
        },
    ];
    for (k, dist) in cases.into_iter().enumerate() {
        let o = ContinuousDsm::new(
            scorelab_core::SigmaRange { min: lo, max: hi },
            dist,
            Weighting::Sigma2,
        )
        .unwrap();
        // ∫ p(σ) dσ = 1 in u = ln σ: ∫ p(eᵘ) eᵘ du.
        let mass = simpson(|u| o.density(u.exp()) * u.exp(), lo.ln(), hi.ln());
        assert!((mass - 1.0).abs() < 1e-9, "{dist:?}: ∫p = {mass}");
        let want_mean = simpson(|u| u * o.density(u.exp()) * u.exp(), lo.ln(), hi.ln());
        let mut rng = ChaCha8Rng::seed_from_u64(k as u64);
        let logs: Vec<f64> = (0..N).map(|_| o.draw(&mut rng).ln()).collect();
        assert!(logs
            .iter()
            .all(|&u| u >= lo.ln() - 1e-12 && u <= hi.ln() + 1e-12));
        let (m, se) = mean_se(&logs);
        assert!(
            (m - want_mean).abs() < MONTE_CARLO_SE * se,
            "{dist:?}: E ln σ̃ = {m} against {want_mean} (se {se})"
        );
    }
}

#[test]
fn the_likelihood_weighting_integrates_two_sigma_d_sigma() {
    let (lo, hi) = (0.01f64, 50.0f64);
    let want = (hi * hi - lo * lo) / (2.0 * (hi / lo).ln());
    for (k, dist) in [
        SigmaDistribution::LogUniform,
        SigmaDistribution::LogNormal {
            p_mean: 0.5,
            p_std: 2.0,
        },
    ]
    .into_iter()
    .enumerate()
    {
        let o = ContinuousDsm::new(
            scorelab_core::SigmaRange { min: lo, max: hi },
            dist,
            Weighting::Likelihood,
        )
        .unwrap();
        // By quadrature: ∫ c(σ) σ² p(σ) dσ.
        let q = simpson(
            |u| {
                let s = u.exp();
                o.weight(s) * s * s * o.density(s) * s
            },
            lo.ln(),
            hi.ln(),
        );
        assert!(
            (q / want - 1.0).abs() < 1e-8,
            "{dist:?}: quadrature {q} against {want}"
        );
        let mut rng = ChaCha8Rng::seed_from_u64(10 + k as u64);
        let v: Vec<f64> = (0..N)
            .map(|_| {
                let s = o.draw(&mut rng);
                o.weight(s) * s * s
            })
            .collect();
        let (m, se) = mean_se(&v);
        assert!(
            (m - want).abs() < MONTE_CARLO_SE * se,
            "{dist:?}: E[c σ̃²] = {m} against {want} (se {se})"
        );
    }
}

#[test]
fn bad_parameters_are_refused_by_name() {
    let field = |r: Result<ContinuousDsm, scorelab_core::ParamError>| {
        r.unwrap_err()
            .to_string()
            .split(':')
            .next()
            .unwrap()
            .to_string()
    };
    let lu = SigmaDistribution::LogUniform;
    assert_eq!(
        field(ContinuousDsm::new(
            scorelab_core::SigmaRange { min: 0.0, max: 1.0 },
            lu,
            Weighting::Sigma2
        )),
        "sigma_min"
    );
    assert_eq!(
        field(ContinuousDsm::new(
            scorelab_core::SigmaRange { min: 2.0, max: 1.0 },
            lu,
            Weighting::Sigma2
        )),
        "sigma_max"
    );
    let ln = |p_mean, p_std| SigmaDistribution::LogNormal { p_mean, p_std };
    assert_eq!(
        field(ContinuousDsm::new(
            scorelab_core::SigmaRange { min: 0.1, max: 1.0 },
            ln(0.0, 0.0),
            Weighting::Sigma2
        )),
        "p_std"
    );
    assert_eq!(
        field(ContinuousDsm::new(
            scorelab_core::SigmaRange { min: 0.1, max: 1.0 },
            ln(40.0, 1.0),
            Weighting::Sigma2
        )),
        "p_mean"
    );
    assert_eq!(
        field(ContinuousDsm::new(
            scorelab_core::SigmaRange { min: 0.1, max: 1.0 },
            lu,
            Weighting::Edm { sigma_data: -1.0 }
        )),
        "sigma_data"
    );
}

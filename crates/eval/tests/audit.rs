//! The audit against independent references: quadrature against closed forms, the identity
//! ESM − ISM = C + B by quadrature to 1e-6 on every low-dimensional density, and Monte Carlo z-scores.

use ndarray::array;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::tolerance::{MONTE_CARLO_SE, QUADRATURE_REL};
use scorelab_core::{Dimension, Sample, ScoreMatchingConstant};
use scorelab_densities::*;
use scorelab_eval::{audit, audit_samples, closed_form, ConstantSource};
use scorelab_models::{AnyModel, Linear};

/// The catalogue's densities that offer a quadrature rule (1-D and 2-D, all but the Student-t).
fn low_dim_densities() -> Vec<AnyDensity> {
    catalogue::all()
        .into_iter()
        .map(|(_, p)| p)
        .filter(|p| p.dim() <= 2 && p.kind() != "student_t")
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        rng_seed: proptest::test_runner::RngSeed::Fixed(7),
        ..ProptestConfig::default()
    })]

    /// ESM − ISM = C + B by quadrature to 1e-6 relative for random linear models on every 1-D and
    /// 2-D density; where a closed form exists, the quadrature ESM and ISM match it to 1e-6.
    #[test]
    fn quadrature_identity_holds(seed in any::<u64>(), scale in 0.01f64..2.0) {
        for p in low_dim_densities() {
            let m = AnyModel::from(Linear::random(p.dim(), scale, seed).unwrap());
            let x = p.sample(16, &mut ChaCha8Rng::seed_from_u64(seed));
            let q = audit(&p, &m, x.view()).quadrature.expect("low-dimensional densities offer a rule");
            prop_assert!(q.identity_rel_error < QUADRATURE_REL, "{}: {q:?}", p.kind());
            if let Some((esm, ism)) = closed_form(&p, &m) {
                prop_assert!((q.esm - esm).abs() < QUADRATURE_REL * esm.abs().max(1.0), "{}: {} vs {esm}", p.kind(), q.esm);
                prop_assert!((q.ism - ism).abs() < QUADRATURE_REL * ism.abs().max(1.0), "{}: {} vs {ism}", p.kind(), q.ism);
            }
        }
    }
}

/// With the density's own score as the model, the quadrature ISM is −C on every low-dimensional
/// density (the quadrature against the closed-form constant).
#[test]
fn the_true_score_has_quadrature_ism_minus_c() {
    for p in low_dim_densities() {
        let x = p.sample(1000, &mut ChaCha8Rng::seed_from_u64(3));
        let q = audit(&p, &p, x.view()).quadrature.unwrap();
        assert!(
            (q.ism + q.constant).abs() < QUADRATURE_REL * q.constant,
            "{}: {q:?}",
            p.kind()
        );
    }
}

/// A linear model equal to a Gaussian's score, written with the covariance inverted by hand
/// (the 2×2 adjugate, not the density's Cholesky solves), has ESM 0 to rounding on every sample,
/// and ISM = −C = −½ tr Σ⁻¹ within 5 standard errors.
#[test]
fn a_hand_written_true_score_has_zero_esm_and_ism_minus_c() {
    let (mu, cov) = (array![1.0, -0.5], array![[1.0, 0.6], [0.6, 2.0]]);
    let p = Gaussian::new(mu.clone(), cov).unwrap();
    let det = 1.0 * 2.0 - 0.6 * 0.6;
    let prec = array![[2.0 / det, -0.6 / det], [-0.6 / det, 1.0 / det]];
    let a = -&prec;
    let b = prec.dot(&mu);
    let m = AnyModel::from(Linear::new(a, b).unwrap());
    let x = p.sample(20_000, &mut ChaCha8Rng::seed_from_u64(5));
    let r = audit(&p, &m, x.view());
    assert!(r.esm.mean < 1e-24, "ESM {}", r.esm.mean);
    let c = 0.5 * (prec[[0, 0]] + prec[[1, 1]]);
    assert!(
        (r.ism.mean + c).abs() < MONTE_CARLO_SE * r.ism.se,
        "ISM {} ± {} vs −C = {}",
        r.ism.mean,
        r.ism.se,
        -c
    );
    assert!(r.gradient.is_some(), "a linear model has θ-gradients");
}

/// Without a closed-form C or a rule, the audit estimates C by Monte Carlo: within 5 standard
/// errors of the closed form, on the same samples as the full audit.
#[test]
fn the_sample_only_audit_estimates_c_by_monte_carlo() {
    let p = Gaussian::new(array![0.5, 1.0], array![[2.0, 0.3], [0.3, 0.7]]).unwrap();
    let m = AnyModel::from(Linear::random(2, 0.5, 4).unwrap());
    let x = p.sample(50_000, &mut ChaCha8Rng::seed_from_u64(9));
    let a = audit_samples(&p, &m, x.view());
    let ConstantSource::MonteCarlo { se } = a.constant_source else {
        panic!("no closed form was given")
    };
    assert!(a.quadrature.is_none());
    let c = p.score_matching_constant().unwrap();
    assert!(
        (a.constant - c).abs() < MONTE_CARLO_SE * se,
        "{} ± {se} vs {c}",
        a.constant
    );
    assert!(a.z_score.abs() < MONTE_CARLO_SE, "z = {}", a.z_score);
}

/// Monte Carlo z-scores at fixed seeds are within 5 for every density, including the Student-t and a
/// 10-D Gaussian; for the half-normal, ignoring the boundary term would be detected (|z| ≫ 5).
#[test]
fn monte_carlo_z_scores_are_small_and_detect_a_missing_boundary_term() {
    let ds: Vec<AnyDensity> = catalogue::all().into_iter().map(|(_, p)| p).collect();
    for (k, p) in ds.iter().enumerate() {
        for seed in 0..3u64 {
            let m = AnyModel::from(Linear::random(p.dim(), 0.5, seed).unwrap());
            let x = p.sample(
                50_000,
                &mut ChaCha8Rng::seed_from_u64(1000 * k as u64 + seed),
            );
            let a = audit(p, &m, x.view());
            assert!(
                a.z_score.abs() < MONTE_CARLO_SE,
                "{} seed {seed}: z = {}",
                p.kind(),
                a.z_score
            );
            match p.score_matching_constant() {
                Some(c) => assert_eq!(
                    (a.constant, a.constant_source),
                    (c, ConstantSource::ClosedForm)
                ),
                None => assert!(matches!(
                    a.constant_source,
                    ConstantSource::MonteCarlo { .. }
                )),
            }
            if p.kind() == "half_normal" {
                let b = match &m {
                    AnyModel::Linear(l) => l.b()[0],
                    _ => unreachable!(),
                };
                let AnyDensity::HalfNormal(h) = p else {
                    unreachable!()
                };
                let p0 = (2.0 / std::f64::consts::PI).sqrt() / h.scale();
                assert!((a.boundary_term - p0 * b).abs() < 1e-12);
                // With b = 1 the boundary term is p(0) ≈ 0.8/s: ignoring it must be detected, and
                // since it depends on θ, the gradients of ESM and ISM differ at order 1.
                let m1 = Linear::new(array![[-1.0]], array![1.0]).unwrap();
                let a1 = audit(p, &m1, x.view());
                assert!(a1.z_score.abs() < MONTE_CARLO_SE, "z = {}", a1.z_score);
                let naive_z = (a1.gap.mean - a1.constant) / a1.gap.se;
                assert!(
                    naive_z.abs() > 10.0 * MONTE_CARLO_SE,
                    "boundary term {} should be visible: z = {naive_z}",
                    a1.boundary_term
                );
                assert!(a1.gradient.unwrap().rel_diff > 0.1, "{:?}", a1.gradient);
            } else {
                assert!(a.boundary_term == 0.0);
            }
        }
    }
}

/// s_θ(x) = −x/(2s²) on the half-normal makes every per-sample gap equal to C: se = 0 and z = 0.
#[test]
fn a_constant_gap_has_zero_z_not_nan() {
    let p = HalfNormal::new(1.0).unwrap();
    let m = Linear::new(array![[-0.5]], array![0.0]).unwrap();
    let x = p.sample(100, &mut ChaCha8Rng::seed_from_u64(1));
    let a = audit(&p, &m, x.view());
    assert_eq!(a.gap.se, 0.0);
    assert_eq!(a.z_score, 0.0);
}

/// The θ-gradient audit of s = ax + b on the half-normal against its per-sample closed form:
/// ESMᵢ − ISMᵢ = ½tᵢ² − tᵢ(axᵢ + b) − a with t = −x/s², so the per-sample difference of the
/// θ-gradients is (−tᵢxᵢ − 1, −tᵢ), whose mean is ∇_θ B = (0, p(0)). The batch-means standard error
/// agrees with the independent-samples one within 40% (its own relative error is about
/// 1/√(2·31) ≈ 0.13: a 3-sigma band at this fixed seed), the residual after ∇_θ B is within 5 of
/// its standard sizes, and the difference itself is far outside them.
#[test]
fn the_gradient_audit_removes_the_boundary_gradient_with_its_standard_error() {
    let scale = 1.5;
    let p = HalfNormal::new(scale).unwrap();
    let m = Linear::new(array![[-0.7]], array![0.4]).unwrap();
    let x = p.sample(40_000, &mut ChaCha8Rng::seed_from_u64(21));
    let g = audit(&p, &m, x.view()).gradient.unwrap();
    let n = x.nrows() as f64;
    let xs: Vec<f64> = x.column(0).to_vec();
    let t: Vec<f64> = xs.iter().map(|v| -v / (scale * scale)).collect();
    let s: Vec<f64> = xs.iter().map(|v| -0.7 * v + 0.4).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let se = |v: &[f64]| {
        let m = mean(v);
        (v.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt()
    };
    let da: Vec<f64> = xs.iter().zip(&t).map(|(x, t)| -t * x - 1.0).collect();
    let db: Vec<f64> = t.iter().map(|t| -t).collect();
    let ea: Vec<f64> = (0..xs.len()).map(|i| (s[i] - t[i]) * xs[i]).collect();
    let eb: Vec<f64> = (0..xs.len()).map(|i| s[i] - t[i]).collect();
    let esm_norm = mean(&ea).hypot(mean(&eb));
    let p0 = (2.0 / std::f64::consts::PI).sqrt() / scale;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-12);
    assert!(
        close(g.rel_diff, mean(&da).hypot(mean(&db)) / esm_norm),
        "{g:?}"
    );
    assert!(close(g.boundary_rel, p0 / esm_norm), "{g:?}");
    assert!(
        close(g.residual_rel, mean(&da).hypot(mean(&db) - p0) / esm_norm),
        "{g:?}"
    );
    let iid = se(&da).hypot(se(&db)) / esm_norm;
    assert!(
        (g.residual_rel_se / iid - 1.0).abs() < 0.4,
        "{} vs {iid}",
        g.residual_rel_se
    );
    assert!(g.residual_rel < 5.0 * g.residual_rel_se, "{g:?}");
    assert!(g.rel_diff > 10.0 * g.residual_rel_se, "{g:?}");
}

/// The gradient audit's p-values are calibrated: for s = ax + b on N(0, 1), where the identity
/// holds, over 1,000 independent audits the residual's Bonferroni p-value falls below 0.05 at a
/// rate between Bonferroni's bounds for two tests, α/2 = 0.025 and α = 0.05 (one-sided binomial
/// tails of 1e-3 each), and the half-normal's difference without ∇_θ B is rejected every time
/// (p < 1e-6) while its residual after ∇_θ B is not (p > 1e-3).
#[test]
fn the_gradient_audit_p_values_are_calibrated() {
    use statrs::distribution::{Binomial, DiscreteCDF};
    let p = Gaussian::standard(1);
    let m = Linear::new(array![[-0.6]], array![0.3]).unwrap();
    let trials = 1000u64;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let rejected = (0..trials)
        .filter(|_| {
            let x = p.sample(6_400, &mut rng);
            audit(&p, &m, x.view()).gradient.unwrap().residual_p < 0.05
        })
        .count() as u64;
    let above = 1.0
        - Binomial::new(0.05, trials)
            .unwrap()
            .cdf(rejected.saturating_sub(1));
    let below = Binomial::new(0.025, trials).unwrap().cdf(rejected);
    assert!(
        above > 1e-3 && below > 1e-3,
        "{rejected}/{trials} rejected at 0.05: P(≥ that | 0.05) = {above:.2e}, P(≤ that | 0.025) = {below:.2e}"
    );
    let h = HalfNormal::new(1.5).unwrap();
    let m = Linear::new(array![[-0.7]], array![0.4]).unwrap();
    for seed in 0..5 {
        let x = h.sample(40_000, &mut ChaCha8Rng::seed_from_u64(seed));
        let g = audit(&h, &m, x.view()).gradient.unwrap();
        assert!(g.difference_p < 1e-6 && g.residual_p > 1e-3, "{g:?}");
    }
}

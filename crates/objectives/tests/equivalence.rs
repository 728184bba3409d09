//! Property checks of the equivalence ESM = ISM + C (Hyvärinen 2005) on random Gaussians and random
//! linear models, against independent references: finite differences of the closed forms, Monte
//! Carlo estimates at fixed seeds (5 standard errors), and the half-normal's boundary term.

use ndarray::{Array1, Array2, Axis};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::stats::MeanSe;
use scorelab_core::tolerance::{CLOSED_FORM_REL, MONTE_CARLO_SE};
use scorelab_core::{ParameterGradient, Sample, Score, ScoreFunction};
use scorelab_densities::{Gaussian, HalfNormal};
use scorelab_models::Linear;
use scorelab_objectives::closed_form::{gaussian_linear, half_normal_linear, LinearClosedForm};
use scorelab_objectives::{esm_terms, ism_terms};

/// A random SPD Σ = W Wᵀ/d + 0.1·I, a mean and a linear model, all from a seed.
fn random_case(d: usize, seed: u64, scale: f64) -> (Gaussian, Linear) {
    use rand_distr::{Distribution, StandardNormal};
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut draw = || -> f64 { StandardNormal.sample(&mut rng) };
    let w = Array2::from_shape_simple_fn((d, d), &mut draw);
    let sigma = w.dot(&w.t()) / d as f64 + Array2::<f64>::eye(d) * 0.1;
    let mu = Array1::from_shape_simple_fn(d, &mut draw);
    let p = Gaussian::new(mu, sigma).unwrap();
    let m = Linear::random(d, scale, seed.wrapping_add(1)).unwrap();
    (p, m)
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

/// Central differences of the closed-form ESM and ISM in every parameter (A row-major, then b).
fn fd_grads(m: &Linear, f: impl Fn(&Linear) -> LinearClosedForm) -> (Array1<f64>, Array1<f64>) {
    let theta = m.params();
    let mut ge = Array1::zeros(theta.len());
    let mut gi = Array1::zeros(theta.len());
    for k in 0..theta.len() {
        let h = 1e-6 * (1.0 + theta[k].abs());
        let (mut tp, mut tm) = (theta.clone(), theta.clone());
        tp[k] += h;
        tm[k] -= h;
        let (p, q) = (
            f(&m.with_params(&tp).unwrap()),
            f(&m.with_params(&tm).unwrap()),
        );
        ge[k] = (p.esm - q.esm) / (2.0 * h);
        gi[k] = (p.ism - q.ism) / (2.0 * h);
    }
    (ge, gi)
}

fn flat(cf: &LinearClosedForm) -> (Array1<f64>, Array1<f64>) {
    let e = cf
        .esm_grad_a
        .iter()
        .chain(cf.esm_grad_b.iter())
        .copied()
        .collect();
    let i = cf
        .ism_grad_a
        .iter()
        .chain(cf.ism_grad_b.iter())
        .copied()
        .collect();
    (e, i)
}

proptest! {
    // Fixed seed: the Monte Carlo properties are 5-SE tests, so every run draws the same cases
    // (failure rate per comparison 5.7e-7 for a fresh seed).
    #![proptest_config(ProptestConfig {
        cases: 64,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20261128),
        ..ProptestConfig::default()
    })]

    /// ESM − ISM = ½ tr Σ⁻¹ for every A, b (closed forms computed along separate routes).
    #[test]
    fn closed_form_gap_is_half_trace_precision(d in 1usize..12, seed in any::<u64>(), scale in 0.01f64..3.0) {
        let (p, m) = random_case(d, seed, scale);
        let cf = gaussian_linear(&p, &m);
        let c = 0.5 * p.cov().trace_inverse();
        prop_assert!(rel(cf.esm - cf.ism, c) < CLOSED_FORM_REL * (1.0 + cf.esm.abs() / c),
            "gap {} vs C {c}", cf.esm - cf.ism);
    }

    /// ∇_θ ESM = ∇_θ ISM in closed form, and both equal finite differences of their own closed form.
    #[test]
    fn closed_form_gradients_agree_and_match_finite_differences(d in 1usize..6, seed in any::<u64>(), scale in 0.01f64..2.0) {
        let (p, m) = random_case(d, seed, scale);
        let cf = gaussian_linear(&p, &m);
        let (ge, gi) = flat(&cf);
        let (fe, fi) = fd_grads(&m, |m| gaussian_linear(&p, m));
        let norm = ge.dot(&ge).sqrt().max(1.0);
        for k in 0..ge.len() {
            prop_assert!((ge[k] - gi[k]).abs() < CLOSED_FORM_REL * norm, "∇ESM {} vs ∇ISM {}", ge[k], gi[k]);
            // FD of a quadratic: truncation-free, rounding ≈ ε·|f|/h.
            let tol = 1e-6 * (1.0 + cf.esm.abs());
            prop_assert!((ge[k] - fe[k]).abs() < tol, "∇ESM[{k}] {} vs FD {}", ge[k], fe[k]);
            prop_assert!((gi[k] - fi[k]).abs() < tol, "∇ISM[{k}] {} vs FD {}", gi[k], fi[k]);
        }
    }

    /// Monte Carlo ESM, ISM and gap at a fixed sampling seed within 5 standard errors of the closed forms.
    #[test]
    fn monte_carlo_matches_closed_form(d in 1usize..8, seed in 0u64..1000, scale in 0.05f64..1.5) {
        let (p, m) = random_case(d, seed, scale);
        let cf = gaussian_linear(&p, &m);
        let x = p.sample(20_000, &mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
        let (t, s, tr) = (p.score(x.view()), m.score(x.view()), m.jacobian_trace(x.view()));
        let e = esm_terms(t.view(), s.view());
        let i = ism_terms(s.view(), tr.view());
        let gap = &e - &i;
        for (what, v, want) in [("esm", &e, cf.esm), ("ism", &i, cf.ism), ("gap", &gap, cf.esm - cf.ism)] {
            let ms = MeanSe::of(v.view());
            let z = (ms.mean - want) / ms.se;
            prop_assert!(z.abs() < MONTE_CARLO_SE, "{what}: {} ± {} vs {want} (z = {z})", ms.mean, ms.se);
        }
    }

    /// Per-sample θ-gradients through the ParameterGradient door average to the closed-form ∇ESM and
    /// ∇ISM within 5 standard errors, component by component.
    #[test]
    fn monte_carlo_parameter_gradients_match_closed_form(d in 1usize..4, seed in 0u64..1000) {
        let (p, m) = random_case(d, seed, 0.5);
        let cf = gaussian_linear(&p, &m);
        let (ge, gi) = flat(&cf);
        let n = 4000;
        let x = p.sample(n, &mut ChaCha8Rng::seed_from_u64(seed));
        let mut pe = Array2::zeros((n, m.num_params()));
        let mut pi = Array2::zeros((n, m.num_params()));
        for k in 0..n {
            let xk = x.row(k).insert_axis(Axis(0));
            let s = m.score(xk);
            let g = &s - &p.score(xk);
            pe.row_mut(k).assign(&m.score_vjp(xk, g.view()));
            pi.row_mut(k).assign(&(m.score_vjp(xk, s.view()) + m.trace_gradient(xk)));
        }
        for j in 0..m.num_params() {
            for (what, col, want) in [("esm", pe.column(j), ge[j]), ("ism", pi.column(j), gi[j])] {
                let ms = MeanSe::of(col);
                let z = (ms.mean - want) / ms.se;
                prop_assert!(z.abs() < MONTE_CARLO_SE, "∇{what}[{j}] {} ± {} vs {want}", ms.mean, ms.se);
            }
        }
        // The batch objective gradients are the means of the per-sample ones.
        let be = scorelab_objectives::esm_param_grad(&p, &m, x.view());
        let bi = scorelab_objectives::ism_param_grad(&m, x.view());
        for j in 0..m.num_params() {
            prop_assert!(rel(be[j], pe.column(j).mean().unwrap()) < 1e-9 || be[j].abs() < 1e-12);
            prop_assert!(rel(bi[j], pi.column(j).mean().unwrap()) < 1e-9 || bi[j].abs() < 1e-12);
        }
    }

    /// The half-normal breaks the identity by exactly the boundary term p(0)·b: in closed form
    /// (against C + p(0)·b and finite differences), and by Monte Carlo within 5 standard errors.
    #[test]
    fn half_normal_gap_moves_with_the_boundary_term(scale in 0.2f64..4.0, a in -3.0f64..1.0, b in -3.0f64..3.0) {
        let p = HalfNormal::new(scale).unwrap();
        let m = Linear::new(Array2::from_elem((1, 1), a), Array1::from_elem(1, b)).unwrap();
        let cf = half_normal_linear(&p, &m);
        let p0 = (2.0 / std::f64::consts::PI).sqrt() / scale;
        let want = 0.5 / (scale * scale) + p0 * b;
        prop_assert!((cf.esm - cf.ism - want).abs() < CLOSED_FORM_REL * (1.0 + cf.esm.abs()));
        let (fe, fi) = fd_grads(&m, |m| half_normal_linear(&p, m));
        let (ge, gi) = flat(&cf);
        for k in 0..2 {
            prop_assert!((ge[k] - fe[k]).abs() < 1e-6 * (1.0 + cf.esm.abs()));
            prop_assert!((gi[k] - fi[k]).abs() < 1e-6 * (1.0 + cf.esm.abs()));
        }
        // ∂b(ESM − ISM) = p(0): the gradients differ exactly where the boundary term depends on θ.
        prop_assert!((ge[1] - gi[1] - p0).abs() < CLOSED_FORM_REL * (1.0 + p0));
        prop_assert!((ge[0] - gi[0]).abs() < CLOSED_FORM_REL * (1.0 + ge[0].abs()));
        let x = p.sample(20_000, &mut ChaCha8Rng::seed_from_u64(9));
        let s = m.score(x.view());
        let gap = esm_terms(p.score(x.view()).view(), s.view()) - ism_terms(s.view(), m.jacobian_trace(x.view()).view());
        let ms = MeanSe::of(gap.view());
        prop_assert!(((ms.mean - want) / ms.se).abs() < MONTE_CARLO_SE, "{} ± {} vs {want}", ms.mean, ms.se);
    }
}

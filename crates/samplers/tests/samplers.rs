//! Every sampler against an independent reference. On a Gaussian target with the exact (noised)
//! score, ULA, annealed Langevin, the reverse SDE and the predictor–corrector sampler are linear
//! Gaussian recursions: their mean and variance after any number of steps follow in closed form
//! from the start, and the chains' sample moments must match within 5 standard errors (fixed seeds;
//! two-sided failure rate 5.7e-7 per comparison). MALA must leave p exactly invariant even where
//! ULA's bias is large; the ODE must follow the exact flow map with Heun's second order.
//! Value-stability tests pin the first steps of each sampler at a fixed seed.

use ndarray::{array, Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::tolerance::MONTE_CARLO_SE;
use scorelab_core::{Moments, Sample};
use scorelab_densities::{Banana, Gaussian};
use scorelab_samplers::{
    sample, standard_normal, AnnealedLangevin, Langevin, Mala, Ode, Outline, Pc, ReverseSde,
    Sampler, Schedule,
};

mod common;
use common::check_moments;

const N: usize = 20_000;

/// N(0, s² I) in `d` dimensions.
fn gaussian(d: usize, s: f64) -> Gaussian {
    Gaussian::new(Array1::zeros(d), Array2::eye(d) * (s * s)).unwrap()
}

#[test]
fn langevin_matches_the_exact_ula_recursion_and_its_stationary_bias() {
    // p = N(0, 1): x' = (1 − ε/2) x + √ε z, so m' = a m and v' = a² v + ε with a = 1 − ε/2.
    let eps = 0.5;
    let p = gaussian(1, 1.0);
    let a = 1.0 - eps / 2.0;
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let x0 = Array2::from_elem((N, 1), 3.0);
    let x = sample(&Langevin::new(eps, 5).unwrap(), &p, x0.clone(), &mut rng);
    let (mut m, mut v) = (3.0, 0.0);
    for _ in 0..5 {
        m *= a;
        v = a * a * v + eps;
    }
    check_moments(&x, m, v, "ULA after 5 steps");
    // After 200 steps: the stationary law N(0, 1/(1 − ε/4)), not p (ULA's O(ε) bias).
    let x = sample(&Langevin::new(eps, 200).unwrap(), &p, x0, &mut rng);
    check_moments(&x, 0.0, 1.0 / (1.0 - eps / 4.0), "ULA stationary");
}

#[test]
fn mala_leaves_the_target_invariant_where_ula_is_biased() {
    // At ε = 1 ULA's stationary variance on N(0, 1) is 4/3; MALA's is exactly 1.
    let p = gaussian(2, 1.0);
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x0 = p.sample(N / 2, &mut rng);
    let mala = Mala::new(1.0, 20).unwrap();
    let mut state = mala.init(&p, x0);
    let mut rates = vec![];
    for _ in 0..mala.num_steps() {
        let (s, info) = mala.step(&p, state, &mut rng);
        state = s;
        rates.push(info.acceptance_rate.unwrap());
    }
    check_moments(&state.x, 0.0, 1.0, "MALA on N(0, I)");
    let mean_rate = rates.iter().sum::<f64>() / rates.len() as f64;
    assert!(mean_rate > 0.5 && mean_rate < 1.0, "acceptance {mean_rate}");
    let per_chain: usize = state.accepted.iter().sum();
    assert_eq!(per_chain as f64 / (N / 2 * 20) as f64, mean_rate);

    // A non-Gaussian target: started from exact samples of the banana, 20 MALA steps keep its
    // mean and the variance of each coordinate (within 5 SE; the SE of a variance estimate uses the
    // sample fourth moment).
    let b = Banana::new(1.0, 0.5).unwrap();
    let x0 = b.sample(N, &mut rng);
    let x = sample(&Mala::new(0.3, 20).unwrap(), &b, x0, &mut rng);
    let (mean, cov) = (b.mean(), b.covariance());
    for j in 0..2 {
        let c = x.column(j);
        let n = c.len() as f64;
        let m = c.mean().unwrap();
        let var = c.mapv(|v| (v - m).powi(2)).sum() / (n - 1.0);
        let m4 = c.mapv(|v| (v - m).powi(4)).mean().unwrap();
        let se_m = (var / n).sqrt();
        let se_v = ((m4 - var * var) / n).sqrt();
        assert!(
            (m - mean[j]).abs() < MONTE_CARLO_SE * se_m,
            "banana mean[{j}] {m}"
        );
        assert!(
            (var - cov[[j, j]]).abs() < MONTE_CARLO_SE * se_v,
            "banana var[{j}] {var} vs {}",
            cov[[j, j]]
        );
    }
}

#[test]
fn annealed_langevin_matches_the_exact_recursion_with_noised_scores() {
    // p = N(0, s²): with s(x, σ) = −x/(s² + σ²), each step is x' = a x + √α z with
    // a = 1 − α/(2(s² + σ²)).
    let s2: f64 = 0.25;
    let p = gaussian(2, s2.sqrt());
    let ald = AnnealedLangevin::new(
        scorelab_core::SigmaRange {
            min: 0.5,
            max: 10.0,
        },
        5,
        20,
        0.2,
        false,
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x0 = standard_normal(N / 2, 2, &mut rng) * 4.0 + 1.0;
    let x = sample(&ald, &p, x0.clone(), &mut rng);
    let (mut m, mut v) = (1.0, 16.0);
    for k in 0..ald.num_steps() {
        let (i, alpha) = ald.level(k);
        let a = 1.0 - alpha / (2.0 * (s2 + ald.sigmas()[i].powi(2)));
        m *= a;
        v = a * a * v + alpha;
    }
    check_moments(&x, m, v, "annealed Langevin");
    assert_eq!(ald.target_sigma(), Some(0.5));

    // With denoise, Tweedie's step maps x to c x, c = s²/(s² + σ_L²).
    let ald = AnnealedLangevin::new(
        scorelab_core::SigmaRange {
            min: 0.5,
            max: 10.0,
        },
        5,
        20,
        0.2,
        true,
    )
    .unwrap();
    let x = sample(&ald, &p, x0, &mut ChaCha8Rng::seed_from_u64(3));
    let c = s2 / (s2 + 0.25);
    check_moments(&x, c * m, c * c * v, "annealed Langevin, denoised");
    assert_eq!((ald.target_sigma(), ald.extra_score_evals()), (None, 1));
}

/// The reverse-SDE recursion on N(0, s²): x' = (1 − g²h/(s² + σ²)) x + √(g²h) z.
fn reverse_sde_moments(ve: &Schedule, steps: usize, s2: f64, mut m: f64, mut v: f64) -> (f64, f64) {
    let h = 1.0 / steps as f64;
    for k in 0..steps {
        let t = 1.0 - k as f64 * h;
        let a = ve.g2(t) * h;
        let c = 1.0 - a / (s2 + ve.sigma(t).powi(2));
        m *= c;
        v = c * c * v + a;
    }
    (m, v)
}

#[test]
fn reverse_sde_matches_the_exact_recursion_and_reaches_p_sigma_min() {
    let s2 = 1.0;
    let p = gaussian(2, 1.0);
    let ve = Schedule::ve(scorelab_core::SigmaRange {
        min: 0.5,
        max: 20.0,
    })
    .unwrap();
    let sde = ReverseSde::new(ve, 200, false).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let x0 = ve.prior(N / 2, 2, &mut rng);
    let x = sample(&sde, &p, x0, &mut rng);
    let (m, v) = reverse_sde_moments(&ve, 200, s2, 0.0, 400.0);
    check_moments(&x, m, v, "reverse SDE");
    // The discretised chain tends to p_{σ_min} = N(0, s² + σ_min²) as N grows: the recursion's
    // variance is within 2% at N = 200 and 0.2% at N = 2000 (Euler–Maruyama's weak order 1).
    let truth = s2 + 0.25;
    assert!((v / truth - 1.0).abs() < 0.02, "N = 200: {v}");
    let (_, v_fine) = reverse_sde_moments(&ve, 2000, s2, 0.0, 400.0);
    assert!((v_fine / truth - 1.0).abs() < 0.002, "N = 2000: {v_fine}");
}

#[test]
fn pc_without_corrector_is_the_reverse_sde_and_with_it_matches_its_recursion() {
    let p = gaussian(2, 1.0);
    let ve = Schedule::ve(scorelab_core::SigmaRange {
        min: 0.5,
        max: 20.0,
    })
    .unwrap();
    let x0 = ve.prior(64, 2, &mut ChaCha8Rng::seed_from_u64(5));
    let a = sample(
        &Pc::new(ve, 30, 0, 0.16, false).unwrap(),
        &p,
        x0.clone(),
        &mut ChaCha8Rng::seed_from_u64(6),
    );
    let b = sample(
        &ReverseSde::new(ve, 30, false).unwrap(),
        &p,
        x0,
        &mut ChaCha8Rng::seed_from_u64(6),
    );
    assert_eq!(a, b);

    // With one corrector step at r = snr: on a centred Gaussian batch of variance v per coordinate
    // the batch-mean norms give ε = 2r² (s² + σ²)²/v up to O(n^{−½}), and the corrector
    // x + ε s + √(2ε) z is the linear map c = 1 − ε/(s² + σ²) plus variance 2ε.
    let (s2, snr, steps) = (1.0, 0.16, 100);
    let pc = Pc::new(ve, steps, 1, snr, false).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let x0 = ve.prior(N / 2, 2, &mut rng);
    let x = sample(&pc, &p, x0, &mut rng);
    let h = 1.0 / steps as f64;
    let mut v = 400.0;
    for k in 0..steps {
        let t = 1.0 - k as f64 * h;
        let var_t = s2 + ve.sigma(t).powi(2);
        let eps = 2.0 * snr * snr * var_t * var_t / v;
        let c = 1.0 - eps / var_t;
        v = c * c * v + 2.0 * eps;
        let a = ve.g2(t) * h;
        let c = 1.0 - a / var_t;
        v = c * c * v + a;
    }
    check_moments(&x, 0.0, v, "pc");
}

#[test]
fn ode_follows_the_exact_flow_map_with_second_order_error() {
    // On N(0, s²) the flow is x(σ) = x(σ_max) √((s² + σ²)/(s² + σ_max²)), chain by chain.
    let s2: f64 = 2.0;
    let p = gaussian(3, s2.sqrt());
    let ve = Schedule::ve(scorelab_core::SigmaRange {
        min: 0.2,
        max: 15.0,
    })
    .unwrap();
    let x0 = ve.prior(50, 3, &mut ChaCha8Rng::seed_from_u64(8));
    let exact = &x0 * ((s2 + 0.04) / (s2 + 225.0)).sqrt();
    let err = |steps: usize| {
        let x = sample(
            &Ode::new(ve, steps, false).unwrap(),
            &p,
            x0.clone(),
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        (&x - &exact).mapv(f64::abs).fold(0.0f64, |a, &b| a.max(b))
    };
    let (e1, e2, e3) = (err(50), err(100), err(200));
    assert!(e3 < 1e-3, "max error at N = 200: {e3}");
    // Heun is second order: halving h divides the error by 4 (to within 10%).
    for (a, b) in [(e1, e2), (e2, e3)] {
        assert!((a / b - 4.0).abs() < 0.4, "error ratio {}", a / b);
    }
}

#[test]
fn constructors_reject_bad_parameters_by_name() {
    let field = |e: scorelab_core::ParamError| e.to_string();
    assert!(field(Langevin::new(0.0, 10).unwrap_err()).starts_with("eps:"));
    assert!(field(Langevin::new(f64::NAN, 10).unwrap_err()).starts_with("eps:"));
    assert!(field(Mala::new(0.1, 0).unwrap_err()).starts_with("steps:"));
    assert!(field(
        AnnealedLangevin::new(
            scorelab_core::SigmaRange {
                min: 20.0,
                max: 1.0
            },
            10,
            100,
            0.1,
            false
        )
        .unwrap_err()
    )
    .starts_with("sigma_max:"));
    assert!(field(
        AnnealedLangevin::new(
            scorelab_core::SigmaRange {
                min: 1.0,
                max: 20.0
            },
            1,
            100,
            0.1,
            false
        )
        .unwrap_err()
    )
    .starts_with("levels:"));
    assert!(
        field(Schedule::ve(scorelab_core::SigmaRange { min: 1.0, max: 1.0 }).unwrap_err())
            .starts_with("sigma_max:")
    );
    assert!(field(
        Schedule::ve(scorelab_core::SigmaRange {
            min: -1.0,
            max: 1.0
        })
        .unwrap_err()
    )
    .starts_with("sigma_min:"));
    let ve = Schedule::ve(scorelab_core::SigmaRange {
        min: 1.0,
        max: 20.0,
    })
    .unwrap();
    assert!(field(Pc::new(ve, 10, 1, 0.0, false).unwrap_err()).starts_with("snr:"));
    assert!(field(Ode::new(ve, 0, false).unwrap_err()).starts_with("steps:"));
}

/// The first two steps of each sampler on 2 chains in 2-D at seed 42, pinned (rand_distr's
/// value-stability habit): a change of draw order, update or schedule shows here first.
#[test]
fn value_stability_of_the_first_steps() {
    let p = Gaussian::new(array![1.0, -1.0], array![[2.0, 0.5], [0.5, 1.0]]).unwrap();
    let x0 = array![[0.5, -0.25], [3.0, 2.0]];
    let ve = Schedule::ve(scorelab_core::SigmaRange { min: 0.5, max: 5.0 }).unwrap();
    fn two<S: ?Sized, M: Sampler<S>>(m: &M, p: &S, x0: &Array2<f64>) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut s = m.init(p, x0.clone());
        for _ in 0..2 {
            s = m.step(p, s, &mut rng).0;
        }
        scorelab_samplers::Chains::positions(&s).to_owned()
    }
    let got = [
        ("langevin", two(&Langevin::new(0.1, 2).unwrap(), &p, &x0)),
        ("mala", two(&Mala::new(0.5, 2).unwrap(), &p, &x0)),
        (
            "annealed_langevin",
            two(
                &AnnealedLangevin::new(
                    scorelab_core::SigmaRange { min: 0.5, max: 5.0 },
                    3,
                    1,
                    0.1,
                    false,
                )
                .unwrap(),
                &p,
                &x0,
            ),
        ),
        (
            "reverse_sde",
            two(&ReverseSde::new(ve, 10, false).unwrap(), &p, &x0),
        ),
        (
            "pc",
            two(&Pc::new(ve, 10, 1, 0.16, false).unwrap(), &p, &x0),
        ),
        ("ode", two(&Ode::new(ve, 10, false).unwrap(), &p, &x0)),
    ];
    // Printed by this test at the commit that introduced it; "ode" reprinted when the ODE's Heun
    // steps moved from t to σ (so that it equals EDM's Heun sampler on the same grid).
    let pinned = [
        (
            "langevin",
            [
                0.5394932127961249,
                -0.2422130317181892,
                2.590191425031638,
                2.153193228385739,
            ],
        ),
        (
            "mala",
            [
                0.3625786629628629,
                0.6764852708894875,
                4.212762414498144,
                0.4922595966229537,
            ],
        ),
        (
            "annealed_langevin",
            [
                1.547538663740133,
                2.206451154379506,
                0.9245815331012754,
                3.2972968325798773,
            ],
        ),
        (
            "reverse_sde",
            [
                0.47266982138588287,
                -0.7018869726479409,
                -1.391854258391254,
                3.3480071058416696,
            ],
        ),
        (
            "pc",
            [
                9.164232579929893,
                -1.0730346090930807,
                1.2647420623086991,
                0.6658451266090193,
            ],
        ),
        (
            "ode",
            [
                0.673275479595951,
                -0.517195018393873,
                2.3568304176158295,
                0.9645081504242636,
            ],
        ),
    ];
    assert_eq!(got.len(), pinned.len());
    for ((name, x), (pname, want)) in got.iter().zip(pinned.iter()) {
        assert_eq!(name, pname);
        for (g, w) in x.iter().zip(want) {
            assert!(
                (g - w).abs() <= 1e-12 * (1.0 + w.abs()),
                "{name}: {g} vs {w}"
            );
        }
    }
}

//! The schedules, the ODE solvers and the diffusion samplers against independent references.
//!
//! - Schedules: α̇ and σ̃̇ against central differences of α and σ̃; f and g² against the variance
//!   equation dV/dt = 2fV + g² of the forward SDE, integrated numerically from V(0) = v and compared
//!   with α²(v + σ̃²); the EDM grid against Karras et al.'s eq. 5; the marginal score against the
//!   score of the mixture with means α m and covariances α²(Σ + σ̃²I).
//! - Solvers: the order of Euler (1), Heun (2) and the Dormand–Prince step (5) measured on an ODE
//!   with a closed-form solution; rk45's error falls with rtol.
//! - Samplers, with the exact noised score of p = N(m, v I): every stochastic sampler is a linear
//!   Gaussian recursion, so the mean and variance after N steps follow from the start in closed
//!   form; the chains' sample moments must match within 5 standard errors (fixed seeds; two-sided
//!   failure rate 5.7e-7 per comparison), and the recursion itself must approach the target as N
//!   grows. The deterministic samplers are held chain by chain to the exact flow map; DDIM (η = 0)
//!   and Heun (S_churn = 0) to the ODE sampler on the same grid, to rounding.

use ndarray::{array, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::Score;
use scorelab_densities::{Gaussian, GaussianMixture};
use scorelab_samplers::solve::{dopri_step, euler_step, heun_step, integrate, Rk45};
use scorelab_samplers::{
    sample, Ancestral, Churn, Ddim, Heun, Ode, OdeSolver, Outline, Pc, ReverseSde, Sampler,
    Schedule,
};

mod common;
use common::check_moments;

const N: usize = 20_000;
const M: f64 = 0.7;
const V: f64 = 1.5;

fn target() -> Gaussian {
    Gaussian::new(array![M, M], Array2::eye(2) * V).unwrap()
}

fn schedules() -> Vec<Schedule> {
    vec![
        Schedule::ve(scorelab_core::SigmaRange {
            min: 0.05,
            max: 20.0,
        })
        .unwrap(),
        Schedule::vp(0.1, 20.0, 1e-3).unwrap(),
        Schedule::subvp(0.1, 20.0, 1e-3).unwrap(),
        Schedule::edm(
            scorelab_core::SigmaRange {
                min: 0.002,
                max: 80.0,
            },
            7.0,
        )
        .unwrap(),
        Schedule::linear(1e-3, 0.999).unwrap(),
    ]
}

fn run<M: Sampler<Gaussian>>(m: &M, x0: Array2<f64>, seed: u64) -> Array2<f64> {
    sample(m, &target(), x0, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn prior(s: &Schedule, n: usize, seed: u64) -> Array2<f64> {
    s.prior(n, 2, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn max_abs(a: &Array2<f64>) -> f64 {
    a.iter().fold(0.0f64, |m, &v| m.max(v.abs()))
}

#[test]
fn schedule_derivatives_match_central_differences() {
    for s in schedules() {
        let (t0, t1) = (s.t_end(), s.t_max());
        for k in 1..10 {
            let t = t0 + (t1 - t0) * k as f64 / 10.0;
            let h = 1e-6 * (t1 - t0);
            let da = (s.alpha(t + h) - s.alpha(t - h)) / (2.0 * h);
            let ds = (s.sigma(t + h) - s.sigma(t - h)) / (2.0 * h);
            assert!(
                (da - s.alpha_dot(t)).abs() <= 1e-6 * (1.0 + da.abs()),
                "{} α̇({t}): {da} vs {}",
                s.kind(),
                s.alpha_dot(t)
            );
            assert!(
                (ds - s.sigma_dot(t)).abs() <= 1e-6 * (1.0 + ds.abs()),
                "{} σ̃̇({t}): {ds} vs {}",
                s.kind(),
                s.sigma_dot(t)
            );
            assert!((s.drift(t) - s.alpha_dot(t) / s.alpha(t)).abs() < 1e-12);
        }
    }
}

#[test]
fn drift_and_diffusion_carry_the_variance_of_the_kernel() {
    // dV/dt = 2f(t)V + g(t)² from V = α(t₀)²(v + σ̃(t₀)²) must give α(t)²(v + σ̃(t)²) at every t.
    let v = 0.3;
    for s in schedules() {
        let (t0, t1) = (s.t_end(), s.t_max());
        let var = |t: f64| s.alpha(t).powi(2) * (v + s.sigma(t).powi(2));
        let f = |y: ndarray::ArrayView2<f64>, t: f64| y.mapv(|u| 2.0 * s.drift(t) * u + s.g2(t));
        let (y, _) = integrate(
            &f,
            array![[var(t0)]],
            t0,
            t1,
            &Rk45::new(1e-10, 1e-12).unwrap(),
        )
        .unwrap();
        let want = var(t1);
        assert!(
            (y[[0, 0]] / want - 1.0).abs() < 1e-7,
            "{}: V(T) = {} vs α²(v + σ̃²) = {want}",
            s.kind(),
            y[[0, 0]]
        );
    }
}

#[test]
fn edm_grid_is_karras_eq5_and_vp_starts_near_sqrt_beta_min_t_min() {
    let s = Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let n = 18;
    for i in 0..n {
        let want = (80f64.powf(1.0 / 7.0)
            + i as f64 / (n - 1) as f64 * (0.002f64.powf(1.0 / 7.0) - 80f64.powf(1.0 / 7.0)))
        .powf(7.0);
        assert!((s.time(n, i) - want).abs() <= 1e-12 * want, "step {i}");
    }
    assert_eq!(s.time(n, n), 0.0);
    // σ̃(t_min)² = e^{B(t_min)} − 1 ≈ β_min t_min for small t_min.
    let vp = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
    let sig = vp.sigma(1e-3);
    assert!((sig / (0.1f64 * 1e-3 + 0.5 * 19.9 * 1e-6).sqrt() - 1.0).abs() < 1e-3);
    // Uniform grids: t₀ = T, t_N = t_end.
    assert_eq!((vp.time(10, 0), vp.time(10, 10)), (1.0, 1e-3));
}

#[test]
fn marginal_score_is_the_score_of_the_scaled_noised_mixture() {
    let p = GaussianMixture::new(
        array![0.3, 0.7],
        vec![array![-2.0, 1.0], array![1.5, 0.5]],
        vec![
            array![[0.5, 0.1], [0.1, 0.3]],
            array![[1.0, -0.2], [-0.2, 0.8]],
        ],
    )
    .unwrap();
    let x = array![[0.3, -0.4], [2.0, 1.0], [-3.0, 0.0]];
    for s in schedules() {
        for t in [s.t_end(), 0.5 * (s.t_end() + s.t_max()), s.t_max()] {
            let (a, sig) = (s.alpha(t), s.sigma(t));
            let pt = GaussianMixture::new(
                p.weights().clone(),
                p.components().iter().map(|c| c.mean_vector() * a).collect(),
                p.components()
                    .iter()
                    .map(|c| (c.cov().matrix() + &(Array2::<f64>::eye(2) * sig * sig)) * (a * a))
                    .collect(),
            )
            .unwrap();
            let got = s.marginal_score(&p, x.view(), t);
            let want = pt.score(x.view());
            let err = max_abs(&(&got - &want));
            assert!(
                err <= 1e-9 * (1.0 + max_abs(&want)),
                "{} t = {t}: {err}",
                s.kind()
            );
        }
    }
}

/// dy/dt = −2t y with y(0) = y₀: y(t) = y₀ e^{−t²}.
fn gaussian_decay(y: ndarray::ArrayView2<f64>, t: f64) -> Array2<f64> {
    y.mapv(|v| -2.0 * t * v)
}

fn fixed_step_error(stepper: &dyn Fn(Array2<f64>, f64, f64) -> Array2<f64>, n: usize) -> f64 {
    let (t1, y0) = (1.5, array![[1.0, -2.0]]);
    let h = t1 / n as f64;
    let mut y = y0.clone();
    for k in 0..n {
        y = stepper(y, k as f64 * h, h);
    }
    max_abs(&(&y - &(&y0 * (-t1 * t1).exp())))
}

#[test]
fn fixed_step_solvers_have_orders_one_two_and_five() {
    let euler = |y: Array2<f64>, t, h| euler_step(&gaussian_decay, y.view(), t, h);
    let heun = |y: Array2<f64>, t, h| heun_step(&gaussian_decay, y.view(), t, h);
    let dopri = |y: Array2<f64>, t, h| {
        let k1 = gaussian_decay(y.view(), t);
        dopri_step(&gaussian_decay, y.view(), t, h, &k1).0
    };
    for (name, stepper, order, n) in [
        (
            "euler",
            &euler as &dyn Fn(Array2<f64>, f64, f64) -> Array2<f64>,
            1.0,
            400,
        ),
        ("heun", &heun, 2.0, 200),
        ("dopri5", &dopri, 5.0, 40),
    ] {
        let (e1, e2) = (
            fixed_step_error(stepper, n),
            fixed_step_error(stepper, 2 * n),
        );
        let observed = (e1 / e2).log2();
        assert!(
            (observed - order).abs() < 0.15,
            "{name}: observed order {observed} (errors {e1}, {e2})"
        );
    }
}

#[test]
fn rk45_error_falls_with_rtol_and_meets_it() {
    let y0 = array![[1.0, -2.0], [0.5, 3.0]];
    let exact = &y0 * (-(1.5f64 * 1.5)).exp();
    let mut last = (f64::INFINITY, 0);
    for rtol in [1e-3, 1e-5, 1e-7, 1e-9] {
        let tol = Rk45::new(rtol, rtol * 1e-2).unwrap();
        let (y, stats) = integrate(&gaussian_decay, y0.clone(), 0.0, 1.5, &tol).unwrap();
        let err = max_abs(&(&y - &exact)) / max_abs(&exact);
        // The global error of a well-behaved problem stays within a small multiple of rtol.
        assert!(err < 20.0 * rtol, "rtol {rtol}: relative error {err}");
        assert!(
            err < last.0,
            "rtol {rtol}: error {err} did not fall below {}",
            last.0
        );
        assert!(
            stats.evals > last.1,
            "rtol {rtol}: {} evaluations",
            stats.evals
        );
        last = (err, stats.evals);
    }
    // Backwards in time as well.
    let (y, _) = integrate(
        &gaussian_decay,
        exact.clone(),
        1.5,
        0.0,
        &Rk45::new(1e-8, 1e-10).unwrap(),
    )
    .unwrap();
    assert!(max_abs(&(&y - &y0)) < 1e-6);
}

/// The exact flow of dy/dσ̃ = −σ̃ s(y, σ̃) for p = N(m, v): y(σ) = m + (y₀ − m)√((v + σ²)/(v + σ₀²)),
/// to the end of the continuous range; on the `edm` grid then its last step, Euler's from σ_min
/// to 0, which is Tweedie's: u ← u·v/(v + σ_min²).
fn exact_flow(s: &Schedule, x0: &Array2<f64>) -> Array2<f64> {
    let (t0, t1) = (s.t_max(), s.t_end());
    let (a0, s0) = (s.alpha(t0), s.sigma(t0));
    let (a1, s1) = (s.alpha(t1), s.sigma(t1));
    let mut r = ((V + s1 * s1) / (V + s0 * s0)).sqrt();
    if s.ends_at_zero() {
        r *= V / (V + s1 * s1);
    }
    x0.mapv(|x| a1 * (M + (x / a0 - M) * r))
}

#[test]
fn ode_solvers_follow_the_exact_flow_with_their_orders() {
    for s in schedules() {
        let x0 = prior(&s, 40, 1);
        let exact = exact_flow(&s, &x0);
        let err = |solver, steps| {
            let ode = Ode::with_solver(s, solver, steps, false).unwrap();
            max_abs(&(&run(&ode, x0.clone(), 0) - &exact))
        };
        let (e1, e2) = (err(OdeSolver::Euler, 400), err(OdeSolver::Euler, 800));
        assert!(
            (e1 / e2 - 2.0).abs() < 0.2,
            "{} euler ratio {}",
            s.kind(),
            e1 / e2
        );
        // 400 and 800 steps: the linear path's uniform-t grid crosses σ̃ from 999 down in its first
        // few steps, and needs that many for Heun's error ratio to reach its asymptote.
        let (h1, h2) = (err(OdeSolver::Heun, 400), err(OdeSolver::Heun, 800));
        assert!(
            (h1 / h2 - 4.0).abs() < 0.5,
            "{} heun ratio {}",
            s.kind(),
            h1 / h2
        );
        let mut prev = f64::INFINITY;
        // Adaptive error is not monotone in rtol step by step; over two decades it falls.
        for rtol in [1e-3, 1e-5, 1e-7, 1e-9] {
            let e = err(OdeSolver::Rk45(Rk45::new(rtol, rtol).unwrap()), 1);
            assert!(e < prev, "{} rk45 rtol {rtol}: {e} vs {prev}", s.kind());
            assert!(
                e < 100.0 * rtol * (1.0 + max_abs(&exact)),
                "{} rk45 rtol {rtol}: {e}",
                s.kind()
            );
            prev = e;
        }
    }
}

#[test]
fn ddim_without_noise_is_euler_and_heun_without_churn_is_the_ode() {
    for s in schedules() {
        for steps in [1, 7, 40] {
            let x0 = prior(&s, 16, 2);
            let euler = run(
                &Ode::with_solver(s, OdeSolver::Euler, steps, false).unwrap(),
                x0.clone(),
                0,
            );
            let ddim = run(&Ddim::new(s, steps, 0.0, false).unwrap(), x0.clone(), 0);
            let scale = 1.0 + max_abs(&euler);
            assert!(
                max_abs(&(&euler - &ddim)) <= 1e-12 * scale,
                "{} N = {steps}: ddim",
                s.kind()
            );
            let ode = run(
                &Ode::with_solver(s, OdeSolver::Heun, steps, false).unwrap(),
                x0.clone(),
                0,
            );
            let heun = run(
                &Heun::new(s, steps, Churn::default(), false).unwrap(),
                x0,
                0,
            );
            let scale = 1.0 + max_abs(&ode);
            assert!(
                max_abs(&(&ode - &heun)) <= 1e-12 * scale,
                "{} N = {steps}: heun",
                s.kind()
            );
        }
    }
}

/// (mean, variance) of one coordinate after the reverse-SDE recursion
/// x′ = (1 − f h) x + (g² h/α) s(x/α, σ̃) + √(g² h) z with s(y, σ̃) = −(y − m)/(v + σ̃²).
fn reverse_sde_moments(s: &Schedule, steps: usize, mut m: f64, mut var: f64) -> (f64, f64) {
    for k in 0..steps {
        let t = s.time(steps, k);
        let h = t - s.time(steps, k + 1);
        let (a, sig, g2) = (s.alpha(t), s.sigma(t), s.g2(t));
        let w = V + sig * sig;
        let c = 1.0 - s.drift(t) * h - g2 * h / (a * a * w);
        m = c * m + g2 * h / a * M / w;
        var = c * c * var + g2 * h;
    }
    (m, var)
}

/// The target at the end of the grid: α(M, V + σ̃²), or p on the edm grid.
fn end_target(s: &Schedule) -> (f64, f64) {
    if s.ends_at_zero() {
        (M, V)
    } else {
        let t = s.t_end();
        let (a, sig) = (s.alpha(t), s.sigma(t));
        (a * M, a * a * (V + sig * sig))
    }
}

#[test]
fn reverse_sde_and_pc_match_their_recursions_under_every_schedule() {
    for s in schedules() {
        let steps = 300;
        let c = s.prior_std();
        let x = run(
            &ReverseSde::new(s, steps, false).unwrap(),
            prior(&s, N / 2, 3),
            4,
        );
        let (m, v) = reverse_sde_moments(&s, steps, 0.0, c * c);
        check_moments(&x, m, v, &format!("reverse SDE, {}", s.kind()));
        // The recursion reaches the end target as N grows (Euler–Maruyama's weak order 1).
        let (tm, tv) = end_target(&s);
        let (m2, v2) = reverse_sde_moments(&s, 3000, 0.0, c * c);
        assert!(
            (m2 - tm).abs() < 0.01 && (v2 / tv - 1.0).abs() < 0.01,
            "{}: ({m2}, {v2}) vs ({tm}, {tv})",
            s.kind()
        );
        // pc with no corrector steps is the reverse SDE, draw for draw.
        let pc = run(
            &Pc::new(s, 30, 0, 0.16, false).unwrap(),
            prior(&s, 64, 5),
            6,
        );
        let sde = run(&ReverseSde::new(s, 30, false).unwrap(), prior(&s, 64, 5), 6);
        assert_eq!(pc, sde);
    }
}

#[test]
fn ancestral_matches_its_recursion_and_reaches_p() {
    let s = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
    for steps in [100, 1000] {
        let a = Ancestral::new(s, steps).unwrap();
        let x = run(&a, prior(&s, N / 2, 7), 8);
        let (mut m, mut v) = (0.0, 1.0);
        for i in (0..steps).rev() {
            let (beta, ab) = (a.beta(i), a.alpha_bar(i));
            let w = ab * V + 1.0 - ab; // the chain's marginal variance at step i
            let c = (1.0 - beta * 1.0 / w) / (1.0 - beta).sqrt();
            m = c * m + beta * ab.sqrt() * M / w / (1.0 - beta).sqrt();
            v = c * c * v + if i == 0 { 0.0 } else { beta };
        }
        check_moments(&x, m, v, &format!("ancestral, N = {steps}"));
        if steps == 1000 {
            assert!(
                (m - M).abs() < 0.01 && (v / V - 1.0).abs() < 0.01,
                "({m}, {v})"
            );
        }
    }
}

/// (mean, variance) of one coordinate after N DDIM steps from N(m₀, v₀).
fn ddim_moments(s: &Schedule, steps: usize, eta: f64, (mut m, mut v): (f64, f64)) -> (f64, f64) {
    for k in 0..steps {
        let (t, tn) = (s.time(steps, k), s.time(steps, k + 1));
        let (a0, a1, s0, s1) = (s.alpha(t), s.alpha(tn), s.sigma(t), s.sigma(tn));
        let w = V + s0 * s0;
        let c = if s1 > 0.0 {
            eta * s1 * (s0 * s0 - s1 * s1).sqrt() / s0
        } else {
            0.0
        };
        let keep = (s1 * s1 - c * c).sqrt();
        // y′ = ŷ₀ + keep ε̂ with ŷ₀ = (V y + σ̃² M)/w and ε̂ = σ̃(y − M)/w.
        let lin = (V + keep * s0) / w;
        let (my, vy) = (m / a0, v / (a0 * a0));
        m = a1 * (lin * my + (s0 * s0 - keep * s0) * M / w);
        v = a1 * a1 * (lin * lin * vy + c * c);
    }
    (m, v)
}

#[test]
fn ddim_with_noise_and_heun_with_churn_match_their_recursions() {
    for s in schedules() {
        let steps = 200;
        let c0 = s.prior_std();
        for eta in [0.5, 1.0] {
            let x = run(
                &Ddim::new(s, steps, eta, false).unwrap(),
                prior(&s, N / 2, 9),
                10,
            );
            let (m, v) = ddim_moments(&s, steps, eta, (0.0, c0 * c0));
            check_moments(&x, m, v, &format!("ddim η = {eta}, {}", s.kind()));
            // Started from p_T itself (the prior's mismatch removed), the recursion reaches the
            // end target as N grows.
            let (tm, tv) = end_target(&s);
            let (a, sig) = (s.alpha(s.t_max()), s.sigma(s.t_max()));
            let (m, v) = ddim_moments(&s, 5000, eta, (a * M, a * a * (V + sig * sig)));
            assert!(
                (m - tm).abs() < 0.01 && (v / tv - 1.0).abs() < 0.01,
                "{} ddim η = {eta}: ({m}, {v}) vs ({tm}, {tv})",
                s.kind()
            );
        }
        let churn = Churn {
            s_churn: 40.0,
            s_tmin: 0.05,
            s_tmax: 50.0,
            s_noise: 1.003,
        };
        let steps = 40;
        let heun = Heun::new(s, steps, churn, false).unwrap();
        let x = run(&heun, prior(&s, N / 2, 11), 12);
        let (mut m, mut v) = (0.0, c0 * c0);
        for k in 0..steps {
            let (t, tn) = (s.time(steps, k), s.time(steps, k + 1));
            let (a0, a1, si, sn) = (s.alpha(t), s.alpha(tn), s.sigma(t), s.sigma(tn));
            let gamma = if si >= churn.s_tmin && si <= churn.s_tmax {
                (churn.s_churn / steps as f64).min(2f64.sqrt() - 1.0)
            } else {
                0.0
            };
            let sh = si * (1.0 + gamma);
            let (my, mut vy) = (m / a0 - M, v / (a0 * a0));
            vy += (sh * sh - si * si) * churn.s_noise * churn.s_noise;
            // On u = y − M the ODE is du/dσ = σ u/(V + σ²); Heun's amplification of one step:
            let dt = sn - sh;
            let l1 = sh / (V + sh * sh);
            let r = if sn != 0.0 {
                let l2 = sn / (V + sn * sn);
                1.0 + 0.5 * dt * (l1 + l2 * (1.0 + dt * l1))
            } else {
                1.0 + dt * l1
            };
            m = a1 * (M + r * my);
            v = a1 * a1 * r * r * vy;
        }
        check_moments(&x, m, v, &format!("heun with churn, {}", s.kind()));
    }
}

#[test]
fn denoise_returns_the_posterior_mean_and_is_refused_on_the_edm_grid() {
    let vp = Schedule::vp(0.1, 20.0, 1e-2).unwrap();
    let sde = ReverseSde::new(vp, 50, true).unwrap();
    assert_eq!(
        (
            sde.target_sigma(),
            sde.target_scale(),
            sde.extra_score_evals()
        ),
        (None, 1.0, 1)
    );
    let plain = ReverseSde::new(vp, 50, false).unwrap();
    assert_eq!(plain.target_sigma(), Some(vp.sigma(1e-2)));
    assert_eq!(plain.target_scale(), vp.alpha(1e-2));
    // Tweedie on x_t = α(x₀ + σ̃z), p = N(M, V): E[x₀ | x_t] = (V x_t/α + σ̃² M)/(V + σ̃²).
    let x = array![[1.0, -2.0]];
    let state = <ReverseSde as Sampler<Gaussian>>::init(&plain, &target(), x.clone());
    let mut st = state;
    st.step = 50;
    let out = sde.finish(&target(), st);
    let (a, s) = (vp.alpha(1e-2), vp.sigma(1e-2));
    let want = x.mapv(|x| (V * x / a + s * s * M) / (V + s * s));
    assert!(max_abs(&(&out - &want)) < 1e-12);
    let edm = Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    for e in [
        ReverseSde::new(edm, 10, true).err(),
        Pc::new(edm, 10, 1, 0.16, true).err(),
        Ode::new(edm, 10, true).err(),
        Ddim::new(edm, 10, 0.0, true).err(),
        Heun::new(edm, 10, Churn::default(), true).err(),
    ] {
        assert!(e.unwrap().to_string().starts_with("denoise:"));
    }
}

#[test]
fn constructors_reject_bad_parameters_by_name() {
    let field = |e: scorelab_core::ParamError| e.to_string().split(':').next().unwrap().to_string();
    assert_eq!(
        field(Schedule::vp(20.0, 0.1, 1e-3).unwrap_err()),
        "beta_max"
    );
    assert_eq!(
        field(Schedule::vp(-1.0, 0.1, 1e-3).unwrap_err()),
        "beta_min"
    );
    assert_eq!(field(Schedule::subvp(0.1, 20.0, 0.0).unwrap_err()), "t_min");
    assert_eq!(
        field(
            Schedule::edm(
                scorelab_core::SigmaRange {
                    min: 0.002,
                    max: 80.0
                },
                0.0
            )
            .unwrap_err()
        ),
        "rho"
    );
    assert_eq!(
        field(
            Schedule::edm(
                scorelab_core::SigmaRange {
                    min: 0.002,
                    max: 80.0
                },
                -7.0
            )
            .unwrap_err()
        ),
        "rho"
    );
    assert_eq!(
        field(Schedule::edm(scorelab_core::SigmaRange { min: 1.0, max: 0.5 }, 7.0).unwrap_err()),
        "sigma_max"
    );
    assert_eq!(
        field(Schedule::ve(scorelab_core::SigmaRange { min: 0.0, max: 5.0 }).unwrap_err()),
        "sigma_min"
    );
    assert_eq!(field(Rk45::new(0.0, 1e-5).unwrap_err()), "rtol");
    assert_eq!(field(Rk45::new(1e-5, -1.0).unwrap_err()), "atol");
    let edm = Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let bad = |c: Churn| field(Heun::new(edm, 10, c, false).unwrap_err());
    let c = Churn::default();
    assert_eq!(bad(Churn { s_churn: -1.0, ..c }), "s_churn");
    assert_eq!(bad(Churn { s_tmin: -1.0, ..c }), "s_tmin");
    assert_eq!(
        bad(Churn {
            s_tmin: 2.0,
            s_tmax: 1.0,
            ..c
        }),
        "s_tmax"
    );
    assert_eq!(bad(Churn { s_noise: 0.0, ..c }), "s_noise");
    assert_eq!(field(Ancestral::new(edm, 100).unwrap_err()), "schedule");
    let vp = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
    assert_eq!(field(Ancestral::new(vp, 1).unwrap_err()), "steps");
    assert_eq!(field(Ancestral::new(vp, 15).unwrap_err()), "steps");
    assert_eq!(field(Ddim::new(vp, 10, -0.1, false).unwrap_err()), "eta");
    assert_eq!(field(Ddim::new(vp, 0, 0.0, false).unwrap_err()), "steps");
    assert_eq!(field(ReverseSde::new(vp, 0, false).unwrap_err()), "steps");
}

#[test]
fn heun_reports_the_largest_churned_level_it_asks_for() {
    // A level just below s_tmax is lifted by (1 + γ) above σ_max itself.
    let edm = Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let churn = Churn {
        s_churn: 40.0,
        s_tmin: 0.0,
        s_tmax: 79.0,
        s_noise: 1.0,
    };
    let heun = Heun::new(edm, 100, churn, false).unwrap();
    // γ = min(S_churn/N, √2 − 1) = 0.4, and σ₁ ≈ 75.7 on the 100-step grid.
    let gamma = (40.0f64 / 100.0).min(2f64.sqrt() - 1.0);
    let s1 = edm.time(100, 1);
    assert!(s1 < 79.0);
    let (lo, hi) = heun.sigma_needed().unwrap();
    assert_eq!(lo, 0.002);
    assert!((hi - s1 * (1.0 + gamma)).abs() < 1e-12 && hi > 80.0, "{hi}");
    // Without churn: the schedule's range.
    let plain = Heun::new(edm, 10, Churn::default(), false).unwrap();
    assert_eq!(plain.sigma_needed(), Some((0.002, 80.0)));
}

#[test]
fn score_evaluations_are_counted() {
    let edm = Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let x0 = prior(&edm, 4, 0);
    let count = |m: &dyn Fn(&mut ChaCha8Rng) -> usize| m(&mut ChaCha8Rng::seed_from_u64(0));
    let heun = Heun::new(edm, 18, Churn::default(), false).unwrap();
    let evals = count(&|rng| {
        let mut st = heun.init(&target(), x0.clone());
        let mut total = 0;
        for _ in 0..heun.num_steps() {
            let (s, info) = heun.step(&target(), st, rng);
            st = s;
            total += info.score_evals;
        }
        total
    });
    // Karras et al.: 2N − 1 evaluations for N steps ending at 0.
    assert_eq!(evals, 35);
    let ode = Ode::with_solver(
        edm,
        OdeSolver::Rk45(Rk45::new(1e-5, 1e-5).unwrap()),
        1,
        false,
    )
    .unwrap();
    let st = ode.init(&target(), x0);
    let (_, info) = ode.step(&target(), st, &mut ChaCha8Rng::seed_from_u64(0));
    assert_eq!(ode.num_steps(), 1);
    // At least the first-step rule's 2 and one Dormand–Prince step's 6, plus the last step's 1.
    assert!(
        info.score_evals >= 9 && (info.score_evals - 3) % 6 == 0,
        "{}",
        info.score_evals
    );
}

/// The first two steps of each diffusion sampler on 2 chains in 2-D at seed 42, pinned.
#[test]
fn value_stability_of_the_first_steps() {
    let p = Gaussian::new(array![1.0, -1.0], array![[2.0, 0.5], [0.5, 1.0]]).unwrap();
    let x0 = array![[0.5, -0.25], [3.0, 2.0]];
    let vp = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
    let edm = Schedule::edm(
        scorelab_core::SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    fn two<M: Sampler<Gaussian>>(m: &M, p: &Gaussian, x0: &Array2<f64>) -> Vec<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(42);
        let mut s = m.init(p, x0.clone());
        for _ in 0..2 {
            s = m.step(p, s, &mut rng).0;
        }
        scorelab_samplers::Chains::positions(&s)
            .iter()
            .copied()
            .collect()
    }
    let churn = Churn {
        s_churn: 10.0,
        ..Churn::default()
    };
    let got = [
        (
            "reverse_sde vp",
            two(&ReverseSde::new(vp, 10, false).unwrap(), &p, &x0),
        ),
        (
            "pc vp",
            two(&Pc::new(vp, 10, 1, 0.16, false).unwrap(), &p, &x0),
        ),
        ("ancestral", two(&Ancestral::new(vp, 50).unwrap(), &p, &x0)),
        (
            "ddim",
            two(&Ddim::new(vp, 10, 0.5, false).unwrap(), &p, &x0),
        ),
        (
            "heun",
            two(&Heun::new(edm, 10, churn, false).unwrap(), &p, &x0),
        ),
        (
            "ode heun edm",
            two(&Ode::new(edm, 10, false).unwrap(), &p, &x0),
        ),
    ];
    let pinned: [(&str, [f64; 4]); 6] = PINNED;
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

// Printed by `value_stability_of_the_first_steps` at the commit that introduced it.
const PINNED: [(&str, [f64; 4]); 6] = [
    (
        "reverse_sde vp",
        [
            -0.5863954135553491,
            -1.095435912037626,
            -1.3422722664864215,
            1.265425417877715,
        ],
    ),
    (
        "pc vp",
        [
            2.7536226481765063,
            0.296535589141838,
            0.6663657359802144,
            -0.9895874553161867,
        ],
    ),
    (
        "ancestral",
        [
            0.2201299637343388,
            -0.08063935190679217,
            1.083611711237537,
            2.0139489372738435,
        ],
    ),
    (
        "ddim",
        [
            0.395753395519099,
            -0.1056774120787577,
            1.8707847550330412,
            2.1587002948789067,
        ],
    ),
    (
        "heun",
        [
            -1.6671221550826294,
            -0.7564629769436206,
            -15.968610798235186,
            18.127092762035076,
        ],
    ),
    (
        "ode heun edm",
        [
            0.8678429544875179,
            -0.801923626218271,
            1.5297198013893176,
            -0.20696675864682457,
        ],
    ),
];

//! The solvers of `scorelab_samplers::solver` against the truth: each one's order measured on a
//! Gaussian target whose probability-flow map is closed form, DPM-Solver++ of order 1 against
//! DDIM, DPM-Solver++(2M) against a transcription of the published algorithm, the stochastic
//! solvers' output law, the grids, and the configs.

use ndarray::{array, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{NoisedScore, SigmaRange};
use scorelab_densities::Gaussian;
use scorelab_samplers::solver::{Method, Solver, Spacing};
use scorelab_samplers::{sample, AnySampler, Ddim, Schedule};

/// The target N(μ, v) in 1-D: its exact flow in y from σ₀ to σ is μ + √((v + σ²)/(v + σ₀²))(y₀ − μ).
const MU: f64 = 0.7;
const V: f64 = 0.5;

fn target() -> Gaussian {
    Gaussian::new(array![MU], array![[V]]).unwrap()
}

fn flow(y0: &Array2<f64>, s0: f64, s: f64) -> Array2<f64> {
    y0.mapv(|y| MU + ((V + s * s) / (V + s0 * s0)).sqrt() * (y - MU))
}

/// The error at the grid's end of N steps of `method` on VE (σ from 20 to 0.05, log-SNR grid),
/// over starting points spread across the prior.
fn error(method: Method, steps: usize) -> f64 {
    let ve = Schedule::ve(SigmaRange {
        min: 0.05,
        max: 20.0,
    })
    .unwrap();
    let s = Solver::new(ve, steps, Spacing::LogSnr, 7.0, method, false).unwrap();
    let y0 = array![[-30.0], [-5.0], [1.0], [12.0], [40.0]];
    let x = sample(&s, &target(), y0.clone(), &mut ChaCha8Rng::seed_from_u64(0));
    let want = flow(&y0, 20.0, 0.05);
    (&x - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

/// The least-squares slope of −log error against log N.
fn order(method: Method, ns: &[usize]) -> f64 {
    let pts: Vec<(f64, f64)> = ns
        .iter()
        .map(|&n| ((n as f64).ln(), error(method, n).ln()))
        .collect();
    let m = pts.len() as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / m,
        pts.iter().map(|p| p.1).sum::<f64>() / m,
    );
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    -sxy / sxx
}

/// Each solver's measured order is its stated one within 0.15, on N = 32 … 256 steps: DPM-Solver++
/// of order 1 (1) and 2M (2); UniPC (bh2, a predictor of order 2 with UniC, which adds one: 3);
/// DPM-Solver-2 (2); Euler ancestral with η = 0 (Euler, 1); the 2M SDE with η = 0 (2M, 2).
/// DPM-Solver++(3M) as it is run everywhere, starting with one step of order 1 and one of order
/// 2, is globally of order 2: the first step's O(h²) local error is never corrected (UniPC's
/// corrector does correct its first step, hence its 3). Its error is below 2M's at every N.
#[test]
fn every_solver_has_its_stated_order() {
    let ns = [32, 64, 128, 256];
    let cases = [
        (Method::Dpmpp { order: 1 }, 1.0),
        (Method::Dpmpp { order: 2 }, 2.0),
        (Method::Dpmpp { order: 3 }, 2.0),
        (Method::Unipc, 3.0),
        (Method::Dpm2, 2.0),
        (Method::EulerAncestral { eta: 0.0 }, 1.0),
        (Method::DpmppSde { eta: 0.0 }, 2.0),
    ];
    for (m, want) in cases {
        let got = order(m, &ns);
        assert!(
            (got - want).abs() < 0.15,
            "{m:?}: measured order {got:.3}, stated {want} (errors {:?})",
            ns.iter().map(|&n| error(m, n)).collect::<Vec<_>>()
        );
    }
    for n in ns {
        let (e3, e2) = (
            error(Method::Dpmpp { order: 3 }, n),
            error(Method::Dpmpp { order: 2 }, n),
        );
        assert!(e3 < 0.7 * e2, "N = {n}: 3M {e3} against 2M {e2}");
    }
}

/// DPM-Solver++ of order 1 is DDIM (η = 0) on the same grid, to 1e-12, on every schedule.
#[test]
fn first_order_dpm_solver_pp_is_ddim() {
    let edm = Schedule::edm(
        SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let schedules = [
        Schedule::vp(0.1, 20.0, 1e-3).unwrap(),
        Schedule::subvp(0.1, 20.0, 1e-3).unwrap(),
        Schedule::ve(SigmaRange {
            min: 0.01,
            max: 50.0,
        })
        .unwrap(),
        edm,
    ];
    let p = scorelab_densities::random::random_mixture(3, &mut ChaCha8Rng::seed_from_u64(4));
    for sch in schedules {
        let x0 = scorelab_samplers::standard_normal(20, 3, &mut ChaCha8Rng::seed_from_u64(1))
            * sch.prior_std();
        let dpm = Solver::new(
            sch,
            25,
            Spacing::Schedule,
            7.0,
            Method::Dpmpp { order: 1 },
            false,
        )
        .unwrap();
        let ddim = Ddim::new(sch, 25, 0.0, false).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        let a = sample(&dpm, &p, x0.clone(), &mut rng);
        let b = sample(&ddim, &p, x0, &mut rng);
        let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
        let diff = (&a - &b).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            diff < 1e-12 * scale,
            "{}: |dpm++(1) − ddim| = {diff}",
            sch.label()
        );
    }
}

/// DPM-Solver++(2M) as Lu et al. (2022) write it (Algorithm 2, in x with α_t, σ_t and
/// λ_t = log(α_t/σ_t) of the VP schedule, data prediction x_θ = E[x₀ | x_t]), transcribed here
/// independently of the library's y-variables form; on the same grid the two agree to 1e-12.
#[test]
fn dpm_solver_pp_2m_is_the_published_algorithm() {
    let vp = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
    let n = 20;
    let p = scorelab_densities::random::random_mixture(2, &mut ChaCha8Rng::seed_from_u64(9));
    let x0 = scorelab_samplers::standard_normal(10, 2, &mut ChaCha8Rng::seed_from_u64(2));
    let s = Solver::new(
        vp,
        n,
        Spacing::UniformT,
        7.0,
        Method::Dpmpp { order: 2 },
        false,
    )
    .unwrap();
    let got = sample(&s, &p, x0.clone(), &mut ChaCha8Rng::seed_from_u64(0));
    // The published algorithm, on the times t_i of the uniform grid.
    let ts: Vec<f64> = (0..=n).map(|k| vp.time(n, k)).collect();
    let alpha = |t: f64| vp.alpha(t);
    let sig = |t: f64| vp.alpha(t) * vp.sigma(t); // σ_t of x_t = α_t x₀ + σ_t ε
    let lam = |t: f64| (alpha(t) / sig(t)).ln();
    let x_theta = |x: &Array2<f64>, t: f64| {
        let (a, st) = (alpha(t), vp.sigma(t));
        let y = x / a;
        &y + &(p.noised_score(y.view(), st) * (st * st))
    };
    let mut x = x0;
    let mut prev = x_theta(&x, ts[0]);
    let h1 = lam(ts[1]) - lam(ts[0]);
    x = &x * (sig(ts[1]) / sig(ts[0])) - &prev * (alpha(ts[1]) * (-h1).exp_m1());
    for i in 2..=n {
        let now = x_theta(&x, ts[i - 1]);
        let h = lam(ts[i]) - lam(ts[i - 1]);
        let r = (lam(ts[i - 1]) - lam(ts[i - 2])) / h;
        let d = &now * (1.0 + 1.0 / (2.0 * r)) - &prev * (1.0 / (2.0 * r));
        x = &x * (sig(ts[i]) / sig(ts[i - 1])) - &d * (alpha(ts[i]) * (-h).exp_m1());
        prev = now;
    }
    let scale = x.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let diff = (&got - &x).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(diff < 1e-12 * scale, "|library − Algorithm 2| = {diff}");
}

/// The stochastic solvers sample the target: on N(μ, v) from the exact p_T, the output's mean and
/// variance over 20 000 chains are μ and v within 5 standard errors (400 steps, whose bias is
/// far below them).
#[test]
fn stochastic_solvers_sample_the_target() {
    let edm = Schedule::edm(
        SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let n = 20_000;
    for m in [
        Method::DpmppSde { eta: 1.0 },
        Method::EulerAncestral { eta: 1.0 },
    ] {
        let s = Solver::new(edm, 400, Spacing::Karras, 7.0, m, false).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let x0 =
            scorelab_samplers::standard_normal(n, 1, &mut rng) * (V + 80.0f64 * 80.0).sqrt() + MU;
        let x = sample(&s, &target(), x0, &mut rng);
        let mean = x.mean().unwrap();
        let var = x.mapv(|v| (v - mean).powi(2)).sum() / (n - 1) as f64;
        let (se_mean, se_var) = ((V / n as f64).sqrt(), V * (2.0 / (n - 1) as f64).sqrt());
        assert!((mean - MU).abs() < 5.0 * se_mean, "{m:?}: mean {mean}");
        assert!((var - V).abs() < 5.0 * se_var, "{m:?}: variance {var}");
    }
}

/// The grids: Karras's is EDM's own; log-SNR is geometric; `leading` starts below σ̃(T) (the
/// flaw Lin et al. 2024 name) and `trailing` at it; every grid decreases and ends where the
/// schedule does.
#[test]
fn the_grids() {
    let vp = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
    let top = vp.sigma(vp.t_max());
    for g in [
        Spacing::Schedule,
        Spacing::Karras,
        Spacing::LogSnr,
        Spacing::UniformT,
        Spacing::Leading,
        Spacing::Trailing,
    ] {
        let l = g.levels(&vp, 10, 7.0);
        assert_eq!(l.len(), 11);
        assert!(l.windows(2).all(|w| w[1] < w[0]), "{g:?} {l:?}");
        assert!(
            (l[10] - vp.sigma(vp.t_end())).abs() < 1e-12,
            "{g:?} ends at {}",
            l[10]
        );
    }
    assert_eq!(Spacing::Trailing.levels(&vp, 10, 7.0)[0], top);
    let lead = Spacing::Leading.levels(&vp, 10, 7.0);
    // j = 9·100 + 1 = 901 of 1000: t = t_min + 901 (1 − t_min)/999.
    let t0 = 1e-3 + 901.0 * (1.0 - 1e-3) / 999.0;
    assert!((lead[0] - vp.sigma(t0)).abs() < 1e-9 * lead[0] && lead[0] < 0.7 * top);
    let ls = Spacing::LogSnr.levels(&vp, 10, 7.0);
    let ratios: Vec<f64> = ls.windows(2).map(|w| w[0] / w[1]).collect();
    assert!(ratios
        .iter()
        .all(|r| (r - ratios[0]).abs() < 1e-9 * ratios[0]));
}

/// Every solver kind from a config, back to the same config, with its evaluations counted; bad
/// keys named.
#[test]
fn solver_configs() {
    for (kind, evals) in [
        ("dpmpp_2m", 10),
        ("dpmpp_3m", 10),
        ("dpmpp_2m_sde", 10),
        ("unipc", 10),
        ("dpm2", 19),
        ("euler_ancestral", 10),
    ] {
        let s: AnySampler = toml::from_str(&format!(
            "kind = \"{kind}\"\nsteps = 10\ngrid = \"karras\"\nrho = 5.0"
        ))
        .unwrap();
        assert_eq!(s.kind(), kind);
        let back: AnySampler = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        struct Count(std::sync::atomic::AtomicUsize);
        impl scorelab_core::Dimension for Count {
            fn dim(&self) -> usize {
                1
            }
        }
        impl NoisedScore for Count {
            fn noised_score(&self, y: ndarray::ArrayView2<f64>, s: f64) -> Array2<f64> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                &y / -(1.0 + s * s)
            }
        }
        let c = Count(0.into());
        s.sample_noised(&c, array![[1.0]], &mut ChaCha8Rng::seed_from_u64(0))
            .unwrap();
        assert_eq!(c.0.into_inner(), evals, "{kind}");
    }
    let err = |t: &str| {
        toml::from_str::<AnySampler>(t)
            .unwrap_err()
            .message()
            .to_string()
    };
    assert!(err("kind = \"dpmpp_2m\"\nsteps = 10\neta = 0.5")
        .starts_with("eta: dpmpp_2m draws no noise"));
    assert!(err("kind = \"unipc\"\nsteps = 10\nrho = 3.0")
        .starts_with("rho: applies to grid = \"karras\""));
    assert!(err("kind = \"euler_ancestral\"\nsteps = 10\neta = 2.0")
        .starts_with("eta: must lie in [0, 1]"));
    assert!(err("kind = \"dpm2\"\nsteps = 0").starts_with("steps"));
    assert!(err("kind = \"dpmpp_3m\"\nsteps = 10\ngrid = \"cosine\"").contains("cosine"));
    assert!(err("kind = \"dpmpp_3m\"\nsteps = 10\norder = 2").contains("order"));
}

/// The trace reports the step a sampler takes: EDM's Heun with churn integrates from σ̂ = σᵢ(1 + γ)
/// down to σᵢ₊₁, and says so (not the grid's σᵢ − σᵢ₊₁).
#[test]
fn heun_with_churn_reports_the_step_it_takes() {
    use scorelab_samplers::{Churn, Heun, Sampler};
    let edm = Schedule::edm(
        SigmaRange {
            min: 0.002,
            max: 80.0,
        },
        7.0,
    )
    .unwrap();
    let churn = Churn {
        s_churn: 40.0,
        s_tmin: 0.05,
        s_tmax: 50.0,
        s_noise: 1.003,
    };
    let steps = 10;
    let heun = Heun::new(edm, steps, churn, false).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut state = heun.init(&target(), array![[1.0]]);
    for k in 0..steps {
        let (si, sn) = (edm.time(steps, k), edm.time(steps, k + 1));
        let gamma = if (0.05..=50.0).contains(&si) {
            (40.0 / steps as f64).min(2f64.sqrt() - 1.0)
        } else {
            0.0
        };
        let (next, info) = heun.step(&target(), state, &mut rng);
        state = next;
        let want = si * (1.0 + gamma) - sn;
        assert!(
            (info.step_size - want).abs() < 1e-12 * want,
            "step {k}: {} vs {want}",
            info.step_size
        );
    }
}

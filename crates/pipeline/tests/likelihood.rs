//! The probability-flow ODE's log-likelihood against independent references: closed-form
//! marginals of Gaussians and mixtures (every schedule, D up to 32), Hutchinson's estimator against
//! the exact divergence on the same grid (a z-test), the exact divergence of a network against
//! finite differences of its score, and the 2-D normalisation of an untrained network's density by
//! quadrature.

use ndarray::{Array1, Array2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_core::{LogDensity, NoisedScore, NoisedScoreFunction, Sample};
use scorelab_densities::{AnyDensity, Gaussian, GaussianMixture};
use scorelab_models::{Activation, F32Noised, NetworkKind, NetworkSpec, Precondition, TraceMethod};
use scorelab_pipeline::likelihood::DensityFlow;
use scorelab_samplers::likelihood::{
    gaussian_log_prior, Divergence, FlowSolver, Likelihood, Probe,
};
use scorelab_samplers::solve::Rk45;
use scorelab_samplers::{sample, Ode, OdeSolver, Schedule};

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    StandardNormal.sample(rng)
}

/// A random SPD matrix A Aᵀ/D + c I.
fn spd(d: usize, c: f64, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let a = Array2::from_shape_simple_fn((d, d), || normal(rng));
    a.dot(&a.t()) / d as f64 + Array2::<f64>::eye(d) * c
}

fn densities(d: usize, seed: u64) -> [AnyDensity; 2] {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let g = Gaussian::new(
        Array1::from_shape_simple_fn(d, || normal(&mut rng)),
        spd(d, 0.5, &mut rng),
    )
    .unwrap();
    let means = (0..3)
        .map(|_| Array1::from_shape_simple_fn(d, || 2.0 * normal(&mut rng)))
        .collect();
    let covs = (0..3).map(|_| spd(d, 0.3, &mut rng)).collect();
    let m = GaussianMixture::new(Array1::from(vec![0.2, 0.5, 0.3]), means, covs).unwrap();
    [g.into(), m.into()]
}

fn schedules() -> [Schedule; 3] {
    [
        Schedule::vp(0.1, 20.0, 1e-5).unwrap(),
        Schedule::subvp(0.1, 20.0, 1e-5).unwrap(),
        Schedule::ve(scorelab_core::SigmaRange {
            min: 0.01,
            max: 50.0,
        })
        .unwrap(),
    ]
}

/// The largest |log p − log p_{t₀}| over 16 points of p_{t₀}, with the exact prior.
fn worst_error(p: &AnyDensity, schedule: Schedule, rtol: f64, seed: u64) -> f64 {
    let lik = Likelihood::new(
        schedule,
        Divergence::Exact,
        FlowSolver::Rk45(Rk45::new(rtol, rtol).unwrap()),
    )
    .unwrap();
    let (_, a0, s0) = lik.start();
    let (_, a1, s1) = lik.end();
    let start = p.marginal(a0, s0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = start.sample(16, &mut rng);
    let flow = lik
        .flow(&DensityFlow::new(p).unwrap(), x.view(), &mut rng)
        .unwrap();
    let prior = p.marginal(a1, s1).unwrap().log_density(flow.x_end.view());
    let (log_p, se) = flow.log_p(prior.view());
    assert!(se.is_none());
    (&log_p - &start.log_density(x.view()))
        .iter()
        .fold(0.0f64, |a, e| a.max(e.abs()))
}

/// With exact marginal scores and the exact prior, log p converges to the closed-form log p_{t₀}
/// as the tolerance shrinks: below 1e-4 nats at rtol = 1e-7, and at least 10× smaller than at
/// rtol = 1e-5 (a fifth-order solver gains far more; the margin allows for the controller).
#[test]
fn exact_scores_converge_to_the_closed_form_in_every_schedule_and_dimension() {
    for d in [1, 8, 32] {
        for p in densities(d, 10 + d as u64) {
            for schedule in schedules() {
                let coarse = worst_error(&p, schedule, 1e-5, 1);
                let fine = worst_error(&p, schedule, 1e-7, 1);
                let what = format!("{} D = {d} {}", p.kind(), schedule.kind());
                assert!(fine < 1e-4, "{what}: error {fine:e} at rtol 1e-7");
                assert!(
                    fine * 10.0 < coarse || coarse < 1e-6,
                    "{what}: {coarse:e} at 1e-5, {fine:e} at 1e-7"
                );
            }
        }
    }
}

/// The Gaussian prior's error is exactly log N(x_T) − log p_T(x_T) on the same flow, and for a
/// Gaussian p its mean over x_T ∼ p_T is −KL(p_T ‖ N(0, I)) (closed form): checked within 4
/// standard errors over 400 points (failure rate 6e-5 if correct).
#[test]
fn the_gaussian_prior_costs_minus_the_kl_divergence_of_p_t_from_it() {
    let d = 4;
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let g = Gaussian::new(
        Array1::from_shape_simple_fn(d, || 3.0 * normal(&mut rng)),
        spd(d, 2.0, &mut rng),
    )
    .unwrap();
    let p = AnyDensity::from(g);
    // A short VP (β_max = 2) leaves p_T far from N(0, I), so the mismatch is large.
    let lik = Likelihood::new(
        Schedule::vp(0.1, 2.0, 1e-5).unwrap(),
        Divergence::Exact,
        FlowSolver::Rk45(Rk45::new(1e-7, 1e-7).unwrap()),
    )
    .unwrap();
    let (_, a0, s0) = lik.start();
    let (_, a1, s1) = lik.end();
    let start = p.marginal(a0, s0).unwrap();
    let x = start.sample(400, &mut rng);
    let flow = lik
        .flow(&DensityFlow::new(&p).unwrap(), x.view(), &mut rng)
        .unwrap();
    let (gauss, _) = flow.log_p(gaussian_log_prior(flow.x_end.view(), 1.0).view());
    let err = &gauss - &start.log_density(x.view());
    let n = err.len() as f64;
    let mean = err.sum() / n;
    let se = (err.mapv(|e| (e - mean).powi(2)).sum() / (n - 1.0) / n).sqrt();
    let AnyDensity::Gaussian(q) = p.marginal(a1, s1).unwrap() else {
        unreachable!()
    };
    use scorelab_core::Moments;
    let (m, c) = (q.mean(), q.covariance());
    let kl = 0.5 * (c.diag().sum() + m.dot(&m) - d as f64 - q.cov().log_det());
    assert!(kl > 0.1, "the test needs a visible mismatch, KL = {kl}");
    assert!(
        (mean + kl).abs() < 4.0 * se,
        "mean {mean} ± {se} vs −KL {}",
        -kl
    );
}

/// On a fixed Heun grid the trajectory does not depend on the probes, so each probe's integral is
/// an unbiased estimate of the exact divergence integral on the same grid: the mean difference
/// over 32 points × 64 probes is within 4 of its standard errors (failure rate 6e-5 if unbiased).
/// With D = 1 and Rademacher probes (v² = 1) the estimate is exact.
#[test]
fn hutchinson_is_unbiased_on_a_fixed_grid_and_exact_for_rademacher_in_one_dimension() {
    let schedule = Schedule::vp(0.1, 20.0, 1e-5).unwrap();
    let solver = FlowSolver::Heun { steps: 60 };
    for (d, probe) in [
        (8, Probe::Rademacher),
        (8, Probe::Gaussian),
        (1, Probe::Rademacher),
    ] {
        let p = densities(d, 3)[1].clone();
        let exact = Likelihood::new(schedule, Divergence::Exact, solver).unwrap();
        let hut = Likelihood::new(
            schedule,
            Divergence::Hutchinson {
                projections: 64,
                probe,
            },
            solver,
        )
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let (_, a0, s0) = exact.start();
        let x = p.marginal(a0, s0).unwrap().sample(32, &mut rng);
        let src = DensityFlow::new(&p).unwrap();
        let fe = exact.flow(&src, x.view(), &mut rng).unwrap();
        let fh = hut.flow(&src, x.view(), &mut rng).unwrap();
        assert_eq!(fe.x_end, fh.x_end, "the probes do not move the trajectory");
        let (mut diff, mut var) = (0.0, 0.0);
        for i in 0..32 {
            let row = fh.divergence.row(i);
            diff += row.mean().unwrap() - fe.divergence[[i, 0]];
            var += row.var(1.0) / 64.0;
        }
        if d == 1 {
            assert!(diff.abs() < 1e-9 && var < 1e-18, "{diff} {var}");
        } else {
            let (mean, se) = (diff / 32.0, var.sqrt() / 32.0);
            assert!(
                se > 0.0 && mean.abs() < 4.0 * se,
                "D = {d} {probe:?}: {mean} ± {se}"
            );
        }
        // The pipeline's standard error is the spread over probes / √k.
        let (_, se) = fh.log_p(Array1::zeros(32).view());
        let se = se.unwrap();
        assert!((se[0] - (fh.divergence.row(0).var(1.0) / 64.0).sqrt()).abs() < 1e-12);
    }
}

fn network(
    d: usize,
    hidden: Vec<usize>,
    precondition: bool,
    seed: u64,
) -> scorelab_models::Network {
    NetworkSpec {
        kind: NetworkKind::NoiseConditionalMlp,
        dim: d,
        hidden,
        activation: Activation::Softplus,
        tau: None,
        precondition: precondition.then_some(Precondition::Edm { sigma_data: 1.0 }),
    }
    .build(seed)
    .unwrap()
}

/// The exact divergence of a network (structured and naive, with and without EDM's
/// preconditioning) is the trace of its score's Jacobian in x at fixed σ: against central
/// differences of the score (h = 1e-2 in f32, so agreement to ~1e-3 relative), and Hutchinson's
/// multi-tangent JVP against one JVP per tangent.
#[test]
fn a_networks_exact_divergence_is_the_trace_of_its_x_jacobian() {
    for pre in [false, true] {
        let d = 5;
        let net = network(d, vec![16, 16], pre, 3);
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let x = Array2::from_shape_simple_fn((4, d), || normal(&mut rng));
        for sigma in [0.05, 1.0, 20.0] {
            let f = F32Noised::new(&net).unwrap();
            let (_, tr) = f.noised_score_trace(x.view(), sigma);
            let (_, naive) = F32Noised::new(&net)
                .unwrap()
                .with_trace(TraceMethod::Naive)
                .noised_score_trace(x.view(), sigma);
            let h = 1e-2 * (1.0 + sigma);
            for i in 0..4 {
                let mut fd = 0.0;
                for j in 0..d {
                    let (mut a, mut b) = (x.row(i).to_owned(), x.row(i).to_owned());
                    a[j] += h;
                    b[j] -= h;
                    let sa = f.noised_score(a.insert_axis(ndarray::Axis(0)).view(), sigma);
                    let sb = f.noised_score(b.insert_axis(ndarray::Axis(0)).view(), sigma);
                    fd += (sa[[0, j]] - sb[[0, j]]) / (2.0 * h);
                }
                let scale = 1.0 + fd.abs();
                assert!(
                    (tr[i] - fd).abs() < 2e-2 * scale,
                    "pre {pre} σ {sigma}: {} vs {fd}",
                    tr[i]
                );
                assert!((tr[i] - naive[i]).abs() < 1e-4 * scale);
            }
            // Three tangents per point in one call = one call per tangent.
            let v = Array2::from_shape_simple_fn((12, d), || normal(&mut rng));
            let (_, jv) = f.noised_score_jvp(x.view(), v.view(), sigma);
            for r in 0..12 {
                let xi = x.row(r / 3).to_owned().insert_axis(ndarray::Axis(0));
                let vi = v.row(r).to_owned().insert_axis(ndarray::Axis(0));
                let (_, one) = f.noised_score_jvp(xi.view(), vi.view(), sigma);
                for j in 0..d {
                    assert!((jv[[r, j]] - one[[0, j]]).abs() < 1e-5 * (1.0 + one[[0, j]].abs()));
                }
            }
        }
    }
}

/// The density an untrained (EDM-preconditioned) network defines through its ODE integrates to 1:
/// by composite Gauss–Legendre quadrature (12 panels × 8 nodes per axis) of exp(log p) over 1.5×
/// the bounding box of 2000 samples drawn through the same ODE. The quadrature of the exact
/// mixture's log p_{t₀} over the same kind of box is the reference for the rule's own error.
#[test]
fn an_untrained_networks_density_integrates_to_one() {
    let schedule = Schedule::vp(0.1, 20.0, 1e-5).unwrap();
    let tol = Rk45::new(1e-6, 1e-6).unwrap();
    let lik = Likelihood::new(schedule, Divergence::Exact, FlowSolver::Rk45(tol)).unwrap();
    let net = network(2, vec![32, 32], true, 5);
    let f = F32Noised::new(&net).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let ode = Ode::with_solver(schedule, OdeSolver::Rk45(tol), 1, false).unwrap();
    let xs = sample(
        &ode,
        &f as &dyn NoisedScore,
        schedule.prior(2000, 2, &mut rng),
        &mut rng,
    );
    let rule = |j: usize| {
        let c = xs.column(j);
        let lo = c.fold(f64::INFINITY, |a, &b| a.min(b));
        let hi = c.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let (mid, half) = (0.5 * (lo + hi), 0.75 * (hi - lo));
        scorelab_densities::quadrature::legendre(mid - half, mid + half, 12, 8)
    };
    let ((z0, w0), (z1, w1)) = (rule(0), rule(1));
    let m = z0.len();
    let pts = Array2::from_shape_fn(
        (m * m, 2),
        |(i, j)| if j == 0 { z0[i / m] } else { z1[i % m] },
    );
    let mut total = 0.0;
    for start in (0..m * m).step_by(2048) {
        let end = (start + 2048).min(m * m);
        let flow = lik
            .flow(&f, pts.slice(ndarray::s![start..end, ..]), &mut rng)
            .unwrap();
        let (lp, _) = flow.log_p(gaussian_log_prior(flow.x_end.view(), 1.0).view());
        total += (start..end)
            .zip(lp.iter())
            .map(|(i, l)| w0[i / m] * w1[i % m] * l.exp())
            .sum::<f64>();
    }
    assert!((total - 1.0).abs() < 1e-4, "∫ p = {total}");
}

/// Streaming: the rows of consecutive `batch`-row batches (each read from the file by
/// `Rows::next_batch`) are the rows of one run over all points, Hutchinson's probes and the
/// dequantisation draws included; and a bad value's row is counted from the file's start.
#[test]
fn batch_by_batch_runs_give_the_rows_of_one_run() {
    use scorelab_pipeline::data::open_points;
    use scorelab_pipeline::likelihood::LikelihoodPlan;
    let plan: LikelihoodPlan = toml::from_str(
        r#"seed = 4
density = { kind = "gaussian", mean = [0.5, -1.0], cov = [[1.0, 0.3], [0.3, 0.7]] }
divergence = "hutchinson"
projections = 2
dequantize = [1.0, 0.0]
dequantize_draws = 2
batch = 3
rtol = 1e-4
atol = 1e-4
"#,
    )
    .unwrap();
    let est = plan.prepare().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.csv");
    let mut text = String::from("x0,x1\n");
    for i in 0..10 {
        text.push_str(&format!("{},{}\n", i % 4, 0.3 * i as f64 - 1.0));
    }
    std::fs::write(&path, &text).unwrap();
    let all = scorelab_pipeline::data::read_points(&path, "--points", Some(2)).unwrap();
    let whole = est.run(all.view(), &mut ()).unwrap().rows;
    let mut rows = open_points(&path, "--points", Some(2)).unwrap();
    let mut run = est.batches();
    let mut streamed = vec![];
    let mut sizes = vec![];
    while let Some(b) = rows.next_batch(3).unwrap() {
        sizes.push(b.nrows());
        streamed.extend(run.run_batch(b.view()).unwrap());
    }
    assert_eq!(sizes, vec![3, 3, 3, 1]);
    assert_eq!(streamed, whole);
    assert!(whole.iter().all(|r| r.log_p_se.is_some()));
    // Row 8 of the file off the grid: named as row 8 in the third batch.
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[8] = "3.5,1.0".into();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let mut rows = open_points(&path, "--points", Some(2)).unwrap();
    let mut first = 0;
    let mut err = None;
    while let Some(b) = rows.next_batch(3).unwrap() {
        if let Err(e) = est.check_points_from(b.view(), "--points", first) {
            err = Some(e.to_string());
            break;
        }
        first += b.nrows();
    }
    let err = err.expect("refused");
    assert!(err.contains("row 8") && err.contains("dequantize"), "{err}");
}

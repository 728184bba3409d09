//! The inference benchmark: a trained network evaluated outside training, by the f32 inference
//! path the samplers, `score` and `eval` use ([`scorelab_models::Inference`]: weights prepared
//! once, buffers kept, `f32x8` activations), beside the f64 door it replaced there
//! (`ScoreFunction` of a noise-conditional network at one σ: a fresh dfdx device per call, f64
//! weights). Two networks, each at 256 and 4096 points:
//!
//! - `digits`: the digits noise-conditional MLP, 64 → 256 → 256 → 64 (input 65 with log σ), softplus;
//! - `toy`: the NCSN-toy noise-conditional MLP, 2 → 64 → 64 → 2, softplus.
//!
//! `score_f32` and `score` time s(x, σ) on the f32 path and the door; `score_trace_f32` and
//! `score_trace` time s(x, σ) and the exact structured trace tr ∇ₓs(x, σ) together, what a
//! likelihood through the probability-flow ODE needs per evaluation. The weights are those of a
//! fresh network (seed 0): the cost does not depend on their values.
//!
//! The `likelihood` group times one log-likelihood of 64 points through the probability-flow ODE
//! (`vp`, rk45 at rtol = atol = 1e-5, [`scorelab_samplers::likelihood`]) of a noise-conditional
//! MLP D → 128 → 128 → D at D = 2, 8, 64, by the exact divergence with the structured and the naive
//! trace and by Hutchinson's estimator with one probe. The solver's steps do not depend on the
//! divergence, so the three make the same evaluations and their times compare per evaluation.
//! `cargo bench --bench inference` (or `-- likelihood` for that group).

// criterion's macros define undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::SeedableRng;
use scorelab_core::{Score, ScoreFunction};
use scorelab_models::{Activation, Inference, Network, NetworkKind, NetworkSpec, TraceMethod};
use std::time::Duration;

/// The allocator of the `scorelab` binary, so the benchmark times what `scorelab sample` runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const POINTS: [usize; 2] = [256, 4096];

fn network(dim: usize, hidden: &[usize]) -> Network {
    NetworkSpec {
        kind: NetworkKind::NoiseConditionalMlp,
        dim,
        hidden: hidden.to_vec(),
        activation: Activation::Softplus,
        tau: None,
        precondition: None,
    }
    .build(0)
    .expect("a valid architecture")
}

fn inference(c: &mut Criterion) {
    let mut group = c.benchmark_group("inference");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for (name, net) in [
        ("digits", network(64, &[256, 256])),
        ("toy", network(2, &[64, 64])),
    ] {
        let Network::NoiseConditional(nc) = &net else {
            unreachable!("built as noise-conditional")
        };
        let at = nc.at(0.5);
        let mut fast = Inference::new(&net);
        for n in POINTS {
            let x = scorelab_samplers::standard_normal(n, net.spec().dim, &mut rng);
            let x32 = x.mapv(|v| v as f32);
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/score_f32"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        criterion::black_box(fast.score(x32.view(), Some(0.5)).expect("valid"))
                    })
                },
            );
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/score_trace_f32"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        criterion::black_box(
                            fast.score_trace(x32.view(), Some(0.5), TraceMethod::Structured)
                                .expect("valid"),
                        )
                    })
                },
            );
            group.bench_with_input(BenchmarkId::new(format!("{name}/score"), n), &n, |b, _| {
                b.iter(|| criterion::black_box(at.score(x.view())))
            });
            group.bench_with_input(
                BenchmarkId::new(format!("{name}/score_trace"), n),
                &n,
                |b, _| {
                    b.iter(|| {
                        criterion::black_box((at.score(x.view()), at.jacobian_trace(x.view())))
                    })
                },
            );
        }
    }
    group.finish();
}

fn likelihood(c: &mut Criterion) {
    use scorelab_samplers::likelihood::{Divergence, FlowSolver, Likelihood, Probe};
    let mut group = c.benchmark_group("likelihood");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(3));
    let schedule = scorelab_samplers::Schedule::vp(0.1, 20.0, 1e-5).expect("valid");
    let solver = FlowSolver::Rk45(scorelab_samplers::solve::Rk45::new(1e-5, 1e-5).expect("valid"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    for d in [2, 8, 64] {
        let net = network(d, &[128, 128]);
        let x = scorelab_samplers::standard_normal(64, d, &mut rng);
        for (name, div, method) in [
            (
                "exact_structured",
                Divergence::Exact,
                TraceMethod::Structured,
            ),
            ("exact_naive", Divergence::Exact, TraceMethod::Naive),
            (
                "hutchinson_1",
                Divergence::Hutchinson {
                    projections: 1,
                    probe: Probe::Rademacher,
                },
                TraceMethod::Structured,
            ),
        ] {
            let f = scorelab_models::F32Noised::new(&net)
                .expect("noise-conditional")
                .with_trace(method);
            let lik = Likelihood::new(schedule, div, solver).expect("valid");
            group.bench_function(BenchmarkId::new(name, d), |b| {
                b.iter(|| lik.flow(&f, x.view(), &mut rng).expect("solves"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, inference, likelihood);
criterion_main!(benches);

//! The direct f32 training step (`scorelab_objectives::direct`) against the taped one, for every
//! objective it covers, both network kinds, four depths and every activation: the same loss and
//! the same gradient, to f32 rounding. The taped step is itself held to finite differences in θ
//! (tests/taped.rs), so this is a check against an independent implementation.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use scorelab_models::{
    Activation, EnergyMlp, Mlp, Network, NoiseConditionalMlp, Precondition, TraceMethod,
};
use scorelab_objectives::continuous::{ContinuousDsm, SigmaDistribution, Weighting};
use scorelab_objectives::direct;
use scorelab_objectives::taped::{loss_and_gradient, Noise, Objective, Probe};

const ACTIVATIONS: [Activation; 3] = [Activation::Tanh, Activation::Softplus, Activation::Silu];
const DEPTHS: [&[usize]; 4] = [&[], &[8], &[12, 6], &[5, 9, 7]];

fn plain_objectives() -> Vec<Objective> {
    vec![
        Objective::Esm,
        Objective::dsm(0.3).unwrap(),
        Objective::ssm(2, Probe::Gaussian).unwrap(),
        Objective::ssm(1, Probe::Rademacher).unwrap(),
        Objective::ssm_vr(3, Probe::Gaussian).unwrap(),
        Objective::ssm_vr(1, Probe::Rademacher).unwrap(),
        Objective::ism(TraceMethod::Naive),
        Objective::ism(TraceMethod::Structured),
    ]
}

fn nc_objectives() -> Vec<Objective> {
    let log_normal = SigmaDistribution::LogNormal {
        p_mean: -1.2,
        p_std: 1.2,
    };
    let mut v = vec![
        Objective::dsm(0.7).unwrap(),
        Objective::dsm_multi(
            scorelab_core::SigmaRange {
                min: 0.05,
                max: 5.0,
            },
            6,
        )
        .unwrap(),
    ];
    for dist in [SigmaDistribution::LogUniform, log_normal] {
        for w in [
            Weighting::Sigma2,
            Weighting::Edm { sigma_data: 0.6 },
            Weighting::Likelihood,
        ] {
            v.push(Objective::DsmContinuous(
                ContinuousDsm::new(
                    scorelab_core::SigmaRange {
                        min: 0.01,
                        max: 50.0,
                    },
                    dist,
                    w,
                )
                .unwrap(),
            ));
        }
    }
    v
}

/// |a − b| ≤ 1e-4 · (the block's largest |b|) + 1e-7 per entry, and the loss within 1e-5
/// relative: f32 sums in another order, nothing more.
fn check(
    objective: &Objective,
    net: &Network,
    x: &Array2<f64>,
    target: &Array2<f64>,
    seed: u64,
    what: &str,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Noise::draw(objective, x.nrows(), x.ncols(), &mut rng);
    let t = matches!(objective, Objective::Esm).then(|| target.view());
    let Some((loss, grads)) = direct::loss_and_gradient(objective, net, x.view(), t, &noise) else {
        let structured_elsewhere = matches!(
            objective,
            Objective::Ism {
                trace: TraceMethod::Structured
            }
        ) && net.spec().hidden.len() != 2;
        assert!(
            structured_elsewhere,
            "{what}: the direct step covers this pair"
        );
        return;
    };
    let (want, want_grads) = loss_and_gradient::<f32>(objective, net, x.view(), t, &noise);
    assert!(
        (loss - want).abs() <= 1e-5 * want.abs() + 1e-7,
        "{what}: loss {loss} against {want}"
    );
    assert_eq!(grads.len(), want_grads.len(), "{what}: blocks");
    for (k, (a, b)) in grads.iter().zip(&want_grads).enumerate() {
        let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (&a, &b)) in a.iter().zip(b).enumerate() {
            assert!(
                (f64::from(a) - b).abs() <= 1e-4 * scale + 1e-7,
                "{what}: block {k} ({}) entry {i}: {a} against {b} (block max {scale})",
                net.params().names()[k]
            );
        }
    }
}

#[test]
fn the_direct_step_equals_the_taped_step_for_every_objective_and_network() {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for activation in ACTIVATIONS {
        for hidden in DEPTHS {
            for dim in [3, 6] {
                let x = Array2::from_shape_fn((17, dim), |_| rng.gen_range(-2.0..2.0));
                let target = Array2::from_shape_fn((17, dim), |_| rng.gen_range(-1.0..1.0));
                let mlp = Network::Mlp(Mlp::new(dim, hidden, activation, 3).unwrap());
                for (i, o) in plain_objectives().iter().enumerate() {
                    let what = format!("mlp {activation:?} {hidden:?} D={dim} {o}");
                    check(o, &mlp, &x, &target, i as u64, &what);
                }
                if hidden.is_empty() {
                    continue;
                }
                let plain = NoiseConditionalMlp::new(dim, hidden, activation, 4).unwrap();
                let edm = Some(Precondition::Edm { sigma_data: 0.8 });
                for (name, nc) in [
                    ("plain", Network::NoiseConditional(plain.clone())),
                    (
                        "edm",
                        Network::NoiseConditional(plain.clone().with_precondition(edm)),
                    ),
                ] {
                    for (i, o) in nc_objectives().iter().enumerate() {
                        let what = format!(
                            "noise-conditional {name} {activation:?} {hidden:?} D={dim} {o} {o:?}"
                        );
                        check(o, &nc, &x, &target, 100 + i as u64, &what);
                    }
                }
            }
        }
    }
}

#[test]
fn the_energy_network_stays_on_the_tape() {
    let net = Network::Energy(EnergyMlp::new(2, &[8], Activation::Softplus, 2.0, 0).unwrap());
    let x = Array2::from_elem((4, 2), 0.3);
    let o = Objective::ism(TraceMethod::Structured);
    assert!(direct::loss_and_gradient(&o, &net, x.view(), None, &Noise::default()).is_none());
}

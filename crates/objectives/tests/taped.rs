//! The taped training losses against independent references: θ-gradients against central finite
//! differences (in f64), SSM and SSM-VR unbiased for ISM, and DSM equal to ESM on p_σ plus
//! Vincent's constant.

use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_core::stats::MeanSe;
use scorelab_core::tolerance::MONTE_CARLO_SE;
use scorelab_models::{
    Activation, EnergyMlp, Mlp, Network, NoiseConditionalMlp, Params, TraceMethod,
};
use scorelab_objectives::taped::{loss_and_gradient, loss_values, Noise, Objective, Probe};

fn normal(n: usize, d: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| {
        let z: f64 = StandardNormal.sample(&mut rng);
        z
    })
}

fn objectives() -> Vec<Objective> {
    vec![
        Objective::Esm,
        Objective::Ism {
            trace: TraceMethod::Naive,
        },
        Objective::Ism {
            trace: TraceMethod::Structured,
        },
        Objective::Ssm {
            projections: 2,
            probe: Probe::Gaussian,
        },
        Objective::SsmVr {
            projections: 3,
            probe: Probe::Rademacher,
        },
        Objective::Dsm { sigma: 0.3 },
    ]
}

/// Central differences in θ with the realised f32 steps (see the models crate's tests).
fn fd_theta(net: &Network, f: impl Fn(&Network) -> f64) -> Vec<f64> {
    let h = 1e-3f32;
    let f0 = f(net);
    let mut m = net.clone();
    let mut out = Vec::new();
    for b in 0..m.params().len() {
        for i in 0..m.params().values()[b].len() {
            let p: &mut Params = m.params_mut();
            let theta = p.values()[b][i];
            let (up, down) = (theta + h, theta - h);
            let dp = f64::from(up) - f64::from(theta);
            let dm = f64::from(theta) - f64::from(down);
            m.params_mut().values_mut()[b][i] = up;
            let fp = f(&m);
            m.params_mut().values_mut()[b][i] = down;
            let fm = f(&m);
            m.params_mut().values_mut()[b][i] = theta;
            out.push((dm * dm * (fp - f0) + dp * dp * (f0 - fm)) / (dp * dm * (dp + dm)));
        }
    }
    out
}

fn check_gradient(net: &Network, objective: &Objective, what: &str) {
    let d = net.spec().dim;
    let x = normal(4, d, 3);
    let target = normal(4, d, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let noise = Noise::draw(objective, 4, d, &mut rng);
    let t = objective.needs_target().then_some(target.view());
    let (value, grads) = loss_and_gradient::<f64>(objective, net, x.view(), t, &noise);
    let mean = |n: &Network| {
        let v = loss_values::<f64>(objective, n, x.view(), t, &noise);
        v.iter().sum::<f64>() / v.len() as f64
    };
    assert!(
        (value - mean(net)).abs() <= 1e-12 * (1.0 + value.abs()),
        "{what}: taped and untaped values"
    );
    let fd = fd_theta(net, mean);
    for (j, (a, b)) in grads.concat().iter().zip(&fd).enumerate() {
        let tol = 1e-6 * (1.0 + a.abs().max(b.abs()));
        assert!(
            (a - b).abs() <= tol,
            "{what} θ{j}: backward {a} vs finite difference {b}"
        );
    }
}

#[test]
fn every_loss_has_the_finite_difference_gradient() {
    for act in [Activation::Tanh, Activation::Softplus, Activation::Silu] {
        let nets = [
            Network::Mlp(Mlp::new(3, &[4, 5], act, 1).unwrap()),
            Network::Mlp(Mlp::new(3, &[4, 3, 5], act, 2).unwrap()),
            Network::Energy(EnergyMlp::new(3, &[4, 5], act, 2.0, 3).unwrap()),
        ];
        for net in &nets {
            for o in objectives() {
                check_gradient(net, &o, &format!("{act} {:?} {o}", net.spec().hidden));
            }
        }
        let nc = Network::NoiseConditional(NoiseConditionalMlp::new(2, &[4, 3], act, 4).unwrap());
        check_gradient(
            &nc,
            &Objective::Dsm { sigma: 0.5 },
            &format!("{act} nc dsm"),
        );
        let multi =
            Objective::dsm_multi(scorelab_core::SigmaRange { min: 0.1, max: 5.0 }, 4).unwrap();
        check_gradient(&nc, &multi, &format!("{act} nc dsm_multi"));
    }
}

/// Stated failure rate: each comparison is at 5 standard errors (two-sided p ≈ 6e-7), fixed seeds.
#[test]
fn sliced_losses_are_unbiased_for_ism() {
    let net = Network::Mlp(Mlp::new(4, &[8, 8], Activation::Softplus, 7).unwrap());
    let f = net.score_function(None).unwrap();
    let x0 = normal(1, 4, 8);
    let ism = {
        let s = f.score(x0.view());
        0.5 * s.iter().map(|v| v * v).sum::<f64>() + f.jacobian_trace(x0.view())[0]
    };
    let n = 20_000;
    let x = x0.broadcast((n, 4)).unwrap().to_owned();
    for (k, probe) in [
        (1, Probe::Gaussian),
        (1, Probe::Rademacher),
        (3, Probe::Gaussian),
    ] {
        for o in [
            Objective::Ssm {
                projections: k,
                probe,
            },
            Objective::SsmVr {
                projections: k,
                probe,
            },
        ] {
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let noise = Noise::draw(&o, n, 4, &mut rng);
            let v = ndarray::Array1::from(loss_values::<f64>(&o, &net, x.view(), None, &noise));
            let m = MeanSe::of(v.view());
            assert!(
                (m.mean - ism).abs() <= MONTE_CARLO_SE * m.se,
                "{o} {probe:?} k={k}: {} ± {} vs exact ISM {ism}",
                m.mean,
                m.se
            );
        }
    }
}

/// Vincent (2011): E[DSM_σ] = ESM on p_σ + ½E‖ε/σ‖² − ½E‖∇log p_σ‖². For p = N(0, I) in D
/// dimensions p_σ = N(0, (1+σ²)I), so the constant is ½D/σ² − ½D/(1+σ²). 5 standard errors of
/// the paired difference, fixed seed.
#[test]
fn dsm_is_esm_on_the_noised_density_plus_vincents_constant() {
    let d = 2;
    let sigma = 0.5;
    let n = 200_000;
    let net = Network::Mlp(Mlp::new(d, &[8], Activation::Tanh, 11).unwrap());
    let f = net.score_function(None).unwrap();
    let x = normal(n, d, 12);
    let o = Objective::Dsm { sigma };
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    let noise = Noise::draw(&o, n, d, &mut rng);
    let dsm = ndarray::Array1::from(loss_values::<f64>(&o, &net, x.view(), None, &noise));
    let eps = Array2::from_shape_vec((n, d), noise.eps.clone().unwrap()).unwrap();
    let xt = &x + &(&eps * sigma);
    let s = f.score(xt.view());
    let true_noised = &xt * (-1.0 / (1.0 + sigma * sigma));
    let esm_sigma = (&s - &true_noised).mapv(|v| v * v).sum_axis(Axis(1)) * 0.5;
    let constant = 0.5 * d as f64 / (sigma * sigma) - 0.5 * d as f64 / (1.0 + sigma * sigma);
    let diff = &dsm - &esm_sigma;
    let m = MeanSe::of(diff.view());
    assert!(
        (m.mean - constant).abs() <= MONTE_CARLO_SE * m.se,
        "E[DSM − ESM_σ] = {} ± {} vs {constant}",
        m.mean,
        m.se
    );
}

#[test]
fn the_dsm_multi_schedule_is_geometric_and_validated() {
    let Objective::DsmMulti { sigmas } =
        Objective::dsm_multi(scorelab_core::SigmaRange { min: 1.0, max: 8.0 }, 4).unwrap()
    else {
        unreachable!()
    };
    for (a, b) in sigmas.iter().zip([8.0, 4.0, 2.0, 1.0]) {
        assert!((a - b).abs() < 1e-12, "{sigmas:?}");
    }
    assert!(
        Objective::dsm_multi(scorelab_core::SigmaRange { min: 2.0, max: 1.0 }, 3)
            .unwrap_err()
            .to_string()
            .contains("sigma_max")
    );
    assert!(
        Objective::dsm_multi(scorelab_core::SigmaRange { min: 0.0, max: 1.0 }, 3)
            .unwrap_err()
            .to_string()
            .contains("sigma_min")
    );
    assert!(
        Objective::dsm_multi(scorelab_core::SigmaRange { min: 1.0, max: 2.0 }, 0)
            .unwrap_err()
            .to_string()
            .contains("levels")
    );
}

#[test]
fn objectives_refuse_the_wrong_kind_of_network() {
    let nc =
        Network::NoiseConditional(NoiseConditionalMlp::new(2, &[4], Activation::Tanh, 0).unwrap());
    let plain = Network::Mlp(Mlp::new(2, &[4], Activation::Tanh, 0).unwrap());
    assert!(Objective::Ism {
        trace: TraceMethod::Structured
    }
    .check_network(&nc)
    .unwrap_err()
    .contains("noise_conditional_mlp"));
    assert!(
        Objective::dsm_multi(scorelab_core::SigmaRange { min: 1.0, max: 2.0 }, 2)
            .unwrap()
            .check_network(&plain)
            .unwrap_err()
            .contains("noise_conditional_mlp")
    );
    assert!(Objective::Dsm { sigma: 0.1 }.check_network(&nc).is_ok());
}

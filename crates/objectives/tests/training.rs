//! Seeded training runs: the Fisher divergence falls as the issue requires, runs are deterministic,
//! a resumed run equals an uninterrupted one, and a diverging run stops naming its step.

use ndarray::array;
use scorelab_densities::{AnyDensity, Gaussian};
use scorelab_models::{Activation, Mlp, Network, NoiseConditionalMlp, TraceMethod};
use scorelab_objectives::taped::{Objective, Probe};
use scorelab_objectives::training::{TrainData, TrainError, TrainSettings, Trainer};

fn gaussian_2d() -> AnyDensity {
    AnyDensity::from(Gaussian::new(array![1.0, -1.0], array![[1.0, 0.5], [0.5, 2.0]]).unwrap())
}

/// The 2-D two-component mixture (`mix2` of the shared density catalogue).
fn mixture_2d() -> AnyDensity {
    scorelab_densities::catalogue::all()
        .into_iter()
        .find(|(name, _)| *name == "mix2")
        .expect("mix2 is in the catalogue")
        .1
}

fn cfg(steps: u64, lr: f64) -> TrainSettings {
    TrainSettings {
        steps,
        batch: 128,
        lr,
        lr_final: None,
        ema: 0.0,
        val_batch: 512,
        eval_batch: 4096,
        eval_every: 100,
    }
}

fn run(net: Network, o: Objective, data: AnyDensity, c: TrainSettings, seed: u64) -> (f64, f64) {
    let steps = c.steps;
    let mut t = Trainer::new(net, o, TrainData::Density(Box::new(data)), c, seed).unwrap();
    let before = t.evaluate().relative_fisher.unwrap();
    while t.step() < steps {
        t.train_step().unwrap();
    }
    (before, t.evaluate().relative_fisher.unwrap())
}

#[test]
fn training_on_a_2d_gaussian_cuts_the_fisher_divergence_tenfold() {
    let objectives = [
        Objective::Ism {
            trace: TraceMethod::Structured,
        },
        Objective::SsmVr {
            projections: 1,
            probe: Probe::Rademacher,
        },
        Objective::Dsm { sigma: 0.3 },
    ];
    for o in objectives {
        let net = Network::Mlp(Mlp::new(2, &[32, 32], Activation::Softplus, 1).unwrap());
        let start = std::time::Instant::now();
        // DSM's gradient is the noisiest (its target ε/σ has variance D/σ²): average the weights.
        let c = TrainSettings {
            ema: if matches!(o, Objective::Dsm { .. }) {
                0.99
            } else {
                0.0
            },
            ..cfg(1000, 1e-2)
        };
        let (before, after) = run(net, o.clone(), gaussian_2d(), c, 2);
        eprintln!("{o}: {before} -> {after} in {:?}", start.elapsed());
        assert!(after <= 0.1 * before, "{o}: Fisher {before} -> {after}");
    }
}

#[test]
fn structured_ism_fits_a_2d_mixture_to_within_five_percent_of_the_zero_score() {
    let net = Network::Mlp(Mlp::new(2, &[64, 64], Activation::Softplus, 3).unwrap());
    let o = Objective::Ism {
        trace: TraceMethod::Structured,
    };
    let start = std::time::Instant::now();
    let (_, after) = run(net, o, mixture_2d(), cfg(4000, 1e-3), 4);
    eprintln!("mixture: {after} in {:?}", start.elapsed());
    // `relative_fisher` is ESM relative to the zero score's ESM.
    assert!(after < 0.05, "relative Fisher divergence {after}");
}

fn small_trainer(o: Objective, ema: f64) -> Trainer {
    let net = Network::Mlp(Mlp::new(2, &[16, 16], Activation::Tanh, 5).unwrap());
    let c = TrainSettings {
        ema,
        batch: 32,
        ..cfg(40, 1e-2)
    };
    Trainer::new(net, o, TrainData::Density(Box::new(mixture_2d())), c, 6).unwrap()
}

#[test]
fn a_resumed_run_equals_an_uninterrupted_one_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for o in [
        Objective::SsmVr {
            projections: 2,
            probe: Probe::Gaussian,
        },
        Objective::Dsm { sigma: 0.2 },
    ] {
        let mut straight = small_trainer(o.clone(), 0.9);
        while straight.step() < 40 {
            straight.train_step().unwrap();
        }
        let mut first = small_trainer(o.clone(), 0.9);
        while first.step() < 17 {
            first.train_step().unwrap();
        }
        // Through the one file a real run writes.
        let path = dir.path().join("checkpoint.safetensors");
        first.checkpoint(String::new()).save(&path).unwrap();
        let mut resumed = small_trainer(o.clone(), 0.9);
        let ckpt = scorelab_models::Checkpoint::load(&path).unwrap();
        let (raw, state) = (ckpt.raw, ckpt.state);
        resumed.resume(raw, state).unwrap();
        while resumed.step() < 40 {
            resumed.train_step().unwrap();
        }
        assert_eq!(resumed.raw_model(), straight.raw_model(), "{o}");
        assert_eq!(resumed.model(), straight.model(), "{o} (EMA)");
        assert_eq!(resumed.evaluate(), straight.evaluate(), "{o}");
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let o = Objective::Ssm {
        projections: 1,
        probe: Probe::Rademacher,
    };
    let mut a = small_trainer(o.clone(), 0.0);
    let mut b = small_trainer(o, 0.0);
    for _ in 0..10 {
        assert_eq!(a.train_step().unwrap(), b.train_step().unwrap());
    }
    assert_eq!(a.raw_model(), b.raw_model());
}

#[test]
fn a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_weights() {
    let net = Network::Mlp(Mlp::new(2, &[16], Activation::Softplus, 5).unwrap());
    let c = TrainSettings {
        batch: 32,
        ..cfg(100, 1e30)
    };
    let mut t = Trainer::new(
        net,
        Objective::Ism {
            trace: TraceMethod::Naive,
        },
        TrainData::Density(Box::new(mixture_2d())),
        c,
        1,
    )
    .unwrap();
    let err = loop {
        match t.train_step() {
            Ok(_) => assert!(t.step() < 100, "lr = 1e30 should diverge"),
            Err(e) => break e,
        }
    };
    let TrainError::NonFinite {
        step, last_good, ..
    } = err.clone()
    else {
        panic!("{err}")
    };
    assert_eq!((step, last_good), (t.step() + 1, t.step()));
    assert!(
        err.to_string().contains(&format!("at step {step}"))
            && err.to_string().contains("Lower lr"),
        "{err}"
    );
    assert!(t.raw_model().params().all_finite());
}

#[test]
fn multi_level_dsm_trains_a_noise_conditional_score() {
    let net = Network::NoiseConditional(
        NoiseConditionalMlp::new(2, &[32, 32], Activation::Softplus, 7).unwrap(),
    );
    let o = Objective::dsm_multi(scorelab_core::SigmaRange { min: 0.2, max: 2.0 }, 5).unwrap();
    let (before, after) = run(net, o, mixture_2d(), cfg(1000, 1e-2), 8);
    // Evaluated at σ_min = 0.2 against the exact score of p_σ.
    assert!(
        after <= 0.2 * before,
        "relative Fisher at σ_min: {before} -> {after}"
    );
}

#[test]
fn point_data_report_held_out_ism_and_no_relative_fisher() {
    let p = mixture_2d();
    let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(1);
    let train = scorelab_core::Sample::sample(&p, 500, &mut rng);
    let val = scorelab_core::Sample::sample(&p, 100, &mut rng);
    let net = Network::Mlp(Mlp::new(2, &[16], Activation::Tanh, 5).unwrap());
    let data = TrainData::Points {
        train,
        val,
        noise: 0.0,
        dequantize: None,
    };
    let mut t = Trainer::new(
        net,
        Objective::Ism {
            trace: TraceMethod::Structured,
        },
        data.clone(),
        cfg(50, 1e-2),
        2,
    )
    .unwrap();
    let first = t.evaluate();
    while t.step() < 50 {
        t.train_step().unwrap();
    }
    let last = t.evaluate();
    assert!(first.esm.is_none() && first.relative_fisher.is_none());
    // On its own held-out points, held-out ISM is the validation loss (both exact).
    assert!(
        (last.ism.unwrap() - last.val_loss).abs() < 1e-4 * (1.0 + last.val_loss.abs()),
        "{last:?}"
    );
    assert!(last.ism.unwrap() < first.ism.unwrap());
    let net = Network::Mlp(Mlp::new(2, &[16], Activation::Tanh, 5).unwrap());
    let err = Trainer::new(net, Objective::Esm, data, cfg(5, 1e-2), 2)
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("esm needs the true score"),
        "{err}"
    );
}

//! Every invalid parameter is a typed error from the type that defines it, naming the field, and
//! an absurd size is refused by the memory rule before anything is allocated.

use ndarray::array;
use scorelab_models::{Activation, Adam, Ema, Mlp, Network};
use scorelab_objectives::taped::{Objective, Probe};
use scorelab_objectives::training::{TrainData, TrainError, TrainSettings, Trainer};
use scorelab_pipeline::memory::MemoryLimit;
use scorelab_pipeline::sample::SamplePlan;
use scorelab_pipeline::train::TrainPlan;
use scorelab_pipeline::PipelineError;
use scorelab_samplers::{AnnealedLangevin, Langevin, Schedule};

fn param(e: scorelab_core::ParamError) -> String {
    match e {
        scorelab_core::ParamError::Invalid { field, .. } => field,
        other => panic!("not a range error: {other}"),
    }
}

#[test]
fn objectives_refuse_invalid_parameters_in_their_constructors() {
    assert_eq!(
        Objective::dsm(0.0).unwrap_err().to_string(),
        "sigma: must be a finite number > 0, got 0"
    );
    assert!(Objective::dsm(f64::NAN).is_err());
    assert!(Objective::dsm(0.1).is_ok());
    assert!(Objective::ssm(0, Probe::Gaussian)
        .unwrap_err()
        .to_string()
        .starts_with("projections"));
    assert!(Objective::ssm_vr(0, Probe::Rademacher).is_err());
    assert!(Objective::dsm_multi(scorelab_core::SigmaRange { min: 2.0, max: 1.0 }, 10).is_err());
    // A variant written as a literal is refused by the trainer before any loss is computed.
    let net = Network::Mlp(Mlp::new(2, &[4], Activation::Tanh, 0).unwrap());
    let data = TrainData::Density(Box::new(scorelab_densities::Gaussian::standard(2).into()));
    let cfg = TrainSettings {
        steps: 10,
        batch: 8,
        lr: 1e-3,
        lr_final: None,
        ema: 0.0,
        val_batch: 16,
        eval_batch: 16,
        eval_every: 1,
    };
    let Err(TrainError::Setup(m)) = Trainer::new(net, Objective::Dsm { sigma: 0.0 }, data, cfg, 0)
    else {
        panic!("a zero σ must be refused")
    };
    assert!(m.contains("objective.sigma"), "{m}");
}

#[test]
fn training_settings_adam_and_ema_refuse_invalid_values() {
    assert_eq!(
        param(TrainSettings::new(100, 0, 1e-3).unwrap_err()),
        "batch"
    );
    assert_eq!(param(TrainSettings::new(0, 8, 1e-3).unwrap_err()), "steps");
    assert_eq!(param(TrainSettings::new(100, 8, 0.0).unwrap_err()), "lr");
    assert_eq!(
        param(
            TrainSettings::new(100, 8, 1e-3)
                .unwrap()
                .with_ema(1.0)
                .unwrap_err()
        ),
        "ema"
    );
    assert_eq!(
        param(
            TrainSettings::new(100, 8, 1e-3)
                .unwrap()
                .with_eval_every(0)
                .unwrap_err()
        ),
        "eval_every"
    );
    let p = Mlp::new(2, &[4], Activation::Tanh, 0).unwrap();
    assert!(Adam::new(p.params(), -1.0)
        .unwrap_err()
        .to_string()
        .starts_with("lr"));
    assert!(Ema::new(p.params(), 0.0)
        .unwrap_err()
        .to_string()
        .starts_with("ema"));
    // serde goes through the same checks: a config with batch = 0 does not parse.
    let text = "[data]\ndensity = { kind = \"standard_normal\", dim = 2 }\n[model]\nkind = \"mlp\"\n[objective]\nkind = \"ism\"\n[train]\nbatch = 0\n";
    assert!(TrainPlan::from_toml(text)
        .unwrap_err()
        .to_string()
        .contains("train.batch: must be at least 1"));
}

#[test]
fn samplers_and_densities_refuse_invalid_values() {
    assert!(Langevin::new(0.0, 10).is_err());
    assert!(Langevin::new(0.1, 0).is_err());
    assert!(Schedule::ve(scorelab_core::SigmaRange { min: 2.0, max: 1.0 }).is_err());
    assert!(AnnealedLangevin::new(
        scorelab_core::SigmaRange {
            min: 1.0,
            max: 20.0
        },
        1,
        10,
        0.1,
        false
    )
    .is_err());
    assert!(
        scorelab_densities::Gaussian::new(array![0.0, 0.0], array![[1.0, 2.0], [2.0, 1.0]])
            .is_err()
    );
    // serde goes through the constructors: an invalid sampler does not parse, and the config
    // reader puts the table's key path before the constructor's message.
    let text = "chains = 10\ndensity = { kind = \"standard_normal\", dim = 2 }\ninit = { kind = \"gaussian\", std = 1.0 }\n[sampler]\nkind = \"langevin\"\neps = -0.1\nsteps = 10\n";
    let e = toml::from_str::<SamplePlan>(text).unwrap_err();
    assert_eq!(e.message(), "eps: must be a finite number > 0, got -0.1");
    let e = scorelab_pipeline::files::parse_toml::<SamplePlan>(text).unwrap_err();
    assert_eq!(
        e,
        "line 4: sampler.eps: must be a finite number > 0, got -0.1"
    );
    let text = text.replace(
        "kind = \"langevin\"\neps = -0.1",
        "kind = \"ddim\"\nschedule = { kind = \"edm\", rho = 0.0 }",
    );
    let e = scorelab_pipeline::files::parse_toml::<SamplePlan>(&text).unwrap_err();
    assert!(e.starts_with("line 4: sampler.schedule.rho: "), "{e}");
}

/// A training batch of 10¹² points and 10¹² chains are refused with the estimate and the limit,
/// before any allocation (an allocation of that size would abort the process).
#[test]
fn absurd_sizes_are_refused_by_the_memory_rule() {
    let text = "[data]\ndensity = { kind = \"standard_normal\", dim = 2 }\n[model]\nkind = \"mlp\"\n[objective]\nkind = \"ism\"\n[train]\nbatch = 1000000000000\n";
    let plan = TrainPlan::from_toml(text).unwrap();
    let e = plan
        .prepare_within(MemoryLimit::bytes(1 << 30))
        .err()
        .expect("refused");
    assert!(matches!(e, PipelineError::TooLarge { .. }), "{e}");
    assert!(e.to_string().contains("over the limit of 1.0 GiB"), "{e}");
    // The same plan at a sane batch fits.
    let ok = TrainPlan::from_toml(&text.replace("1000000000000", "128")).unwrap();
    assert!(ok.prepare_within(MemoryLimit::bytes(1 << 30)).is_ok());
    let plan: SamplePlan = toml::from_str(
        "chains = 1000000000000\ndensity = { kind = \"standard_normal\", dim = 2 }\ninit = { kind = \"gaussian\", std = 1.0 }\n[sampler]\nkind = \"langevin\"\neps = 0.1\nsteps = 10\n",
    )
    .unwrap();
    assert!(matches!(
        plan.prepare().err(),
        Some(PipelineError::TooLarge { .. })
    ));
    assert!(MemoryLimit::parse("4G").unwrap().get() == 4 << 30);
    assert!(MemoryLimit::parse("lots").is_err());
}

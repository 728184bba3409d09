//! Quick start: a noise-conditional network trained on a 2-D toy (continuous denoising score
//! matching with EDM's preconditioning and σ̃ distribution), sampled by EDM's Heun sampler, and
//! judged by the MMD² between its samples and the toy's held-out points (an unbiased estimate with
//! its standard error; 0 for a perfect sampler).
//!
//! Run: `cargo run --release --example quickstart` (about 10 s on 2 cores).

use scorelab_pipeline::prelude::*;

fn main() -> Result<()> {
    let (seed, toy) = (1, Toy::EightGaussians);
    let net = ModelSpec::noise_conditional(vec![128, 128], Activation::Silu).edm();
    let settings = TrainSettings::new(3000, 256, 2e-3)?.with_ema(0.999)?;
    let objective = Objective::edm();
    let plan = TrainPlan::new(seed, DataSpec::toy(toy), net, objective, settings);
    let model = train(&plan, &mut ())?;
    let sampling = SamplePlan::new(seed, 2000, AnySampler::heun(18)?).prepare_with(model)?;
    let x = sampling.run(&mut ()).x;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = mmd2(x.view(), toy.heldout(seed).view(), None, 0, &mut rng).estimate;
    println!("{}: MMD² {:.5} ± {:.5}", toy.name(), m.value, m.se);
    Ok(())
}

//! The Jacobian-cost benchmark's setting (what `scorelab cost` and `cargo bench` time): one
//! training step (forward, loss, backward, Adam) per objective and input dimension D, in the setting
//! of the PyTorch and JAX baselines: an MLP D → width → width → D with softplus, batch B, f32,
//! Adam(lr = 10⁻³), one Gaussian projection for SSM, σ = 0.1 for DSM, data x ∼ N(0, I) and the ESM
//! target −x. Data and noise are drawn before each step ([`Setting::batch`]), outside the timed
//! region ([`Setting::step`]).

use crate::error::{PipelineError, Result};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_models::{Activation, Adam, Mlp, Network, TraceMethod};
use scorelab_objectives::taped::{Noise, Objective, Probe};
use scorelab_objectives::training::adam_step;
use std::time::Instant;

/// The objective ids of the benchmark, in the order of the table.
pub const OBJECTIVES: [&str; 6] = ["dsm", "ssm", "ssm_vr", "ism_naive", "ism_structured", "esm"];

/// The objective for a benchmark id.
///
/// # Errors
/// [`PipelineError::Invalid`] (`--objectives`) for an unknown id.
pub fn objective(id: &str) -> Result<Objective> {
    Ok(match id {
        "dsm" => Objective::Dsm { sigma: 0.1 },
        "ssm" => Objective::Ssm {
            projections: 1,
            probe: Probe::Gaussian,
        },
        "ssm_vr" => Objective::SsmVr {
            projections: 1,
            probe: Probe::Gaussian,
        },
        "ism_naive" => Objective::Ism {
            trace: TraceMethod::Naive,
        },
        "ism_structured" => Objective::Ism {
            trace: TraceMethod::Structured,
        },
        "esm" => Objective::Esm,
        other => {
            return Err(PipelineError::invalid(
                "--objectives",
                format!("unknown objective {other:?}; use {}", OBJECTIVES.join(", ")),
            ))
        }
    })
}

/// One benchmark setting: the network, its optimiser and a data source, built outside any timing.
pub struct Setting {
    /// The objective.
    pub objective: Objective,
    /// The network.
    pub net: Network,
    /// Its optimiser.
    pub adam: Adam,
    rng: ChaCha8Rng,
    batch: usize,
    dim: usize,
}

/// A batch with what the objective needs.
pub struct Batch {
    /// Points.
    pub x: Array2<f64>,
    /// ESM's target −x.
    pub target: Option<Array2<f64>>,
    /// Probes or noise.
    pub noise: Noise,
}

impl Setting {
    /// The benchmark model for `objective` in D = `dim`, seeded.
    ///
    /// # Panics
    /// If `dim` or `width` is 0 (the CLI validates them).
    pub fn new(objective: Objective, dim: usize, batch: usize, width: usize, seed: u64) -> Self {
        let net = Network::Mlp(
            Mlp::new(dim, &[width, width], Activation::Softplus, seed).expect("validated sizes"),
        );
        let adam = Adam::new(net.params(), 1e-3).expect("a positive learning rate");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(scorelab_core::streams::Stream::Steps.id());
        Setting {
            objective,
            net,
            adam,
            rng,
            batch,
            dim,
        }
    }

    /// The pool the steps should run in (`scorelab_objectives::training::step_pool`).
    pub fn pool(&self) -> Option<&'static rayon::ThreadPool> {
        scorelab_objectives::training::step_pool(&self.objective, &self.net, self.batch, self.dim)
    }

    /// Fresh data and noise (not timed).
    pub fn batch(&mut self) -> Batch {
        let x = Array2::from_shape_fn((self.batch, self.dim), |_| {
            let z: f64 = StandardNormal.sample(&mut self.rng);
            z
        });
        let target = self.objective.needs_target().then(|| -&x);
        let noise = Noise::draw(&self.objective, self.batch, self.dim, &mut self.rng);
        Batch { x, target, noise }
    }

    /// One timed training step.
    pub fn step(&mut self, b: &Batch) -> f64 {
        adam_step(
            &self.objective,
            &mut self.net,
            &mut self.adam,
            b.x.view(),
            b.target.as_ref().map(|t| t.view()),
            &b.noise,
        )
        .unwrap_or(f64::NAN)
    }
}

/// The q-quantile (linear interpolation) of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (pos - lo as f64) * (sorted[hi] - sorted[lo])
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct CostRow {
    /// Objective id.
    pub objective: String,
    /// D.
    pub dim: usize,
    /// Median ms per step.
    pub median_ms: f64,
    /// 10th percentile.
    pub p10_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Timed steps.
    pub steps: usize,
}

/// Times `steps` steps of the benchmark objective `id` after `warmup` untimed ones.
///
/// # Errors
/// [`PipelineError::Invalid`] for an unknown objective id.
pub fn measure(
    id: &str,
    dim: usize,
    batch: usize,
    width: usize,
    warmup: usize,
    steps: usize,
) -> Result<CostRow> {
    let s = Setting::new(objective(id)?, dim, batch, width, 0);
    // Small steps run on one thread, the whole loop inside that pool (see `step_pool`).
    let ms = match s.pool() {
        Some(pool) => pool.install(|| time_steps(s, warmup, steps)),
        None => time_steps(s, warmup, steps),
    };
    Ok(CostRow {
        objective: id.to_string(),
        dim,
        median_ms: quantile(&ms, 0.5),
        p10_ms: quantile(&ms, 0.1),
        p90_ms: quantile(&ms, 0.9),
        steps,
    })
}

/// Refuses a benchmark setting whose training step would need more memory than `limit` (the
/// size rule of [`crate::memory`]), before anything is allocated.
///
/// # Errors
/// [`PipelineError::Invalid`] for an unknown objective id, [`PipelineError::TooLarge`] over the
/// limit.
pub fn check_size(
    id: &str,
    dim: usize,
    batch: usize,
    width: usize,
    limit: crate::memory::MemoryLimit,
) -> Result<()> {
    let objective = objective(id)?;
    let spec = scorelab_models::NetworkSpec {
        kind: scorelab_models::NetworkKind::Mlp,
        dim,
        hidden: vec![width, width],
        activation: scorelab_models::Activation::Softplus,
        tau: None,
        precondition: None,
    };
    let config = scorelab_objectives::training::TrainSettings {
        steps: 1,
        batch,
        lr: 1e-3,
        lr_final: None,
        ema: 0.0,
        val_batch: 0,
        eval_batch: 0,
        eval_every: 1,
    };
    let none = scorelab_objectives::training::TrainData::Points {
        train: ndarray::Array2::zeros((0, dim)),
        val: ndarray::Array2::zeros((0, dim)),
        noise: 0.0,
        dequantize: None,
    };
    crate::memory::check(
        crate::memory::train_bytes(&spec, &objective, &config, &none),
        limit,
        || format!("a {id} step (batch {batch}, D = {dim}, width {width})"),
        "lower --batch, --width or --dims",
    )
}

/// Milliseconds of each of `steps` timed steps after `warmup` untimed ones, sorted.
fn time_steps(mut s: Setting, warmup: usize, steps: usize) -> Vec<f64> {
    for _ in 0..warmup {
        let b = s.batch();
        s.step(&b);
    }
    let mut ms = Vec::with_capacity(steps);
    for _ in 0..steps {
        let b = s.batch();
        let t = Instant::now();
        std::hint::black_box(s.step(&b));
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(f64::total_cmp);
    ms
}

/// The CSV: `objective,dim,batch,width,median_ms,p10_ms,p90_ms,steps`.
pub fn to_csv(rows: &[CostRow], batch: usize, width: usize) -> String {
    let mut s = String::from("objective,dim,batch,width,median_ms,p10_ms,p90_ms,steps\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{batch},{width},{:.4},{:.4},{:.4},{}\n",
            r.objective, r.dim, r.median_ms, r.p10_ms, r.p90_ms, r.steps
        ));
    }
    s
}

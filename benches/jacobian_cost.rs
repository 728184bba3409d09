//! The Jacobian-cost benchmark: one training step (forward, loss, backward, Adam) per objective
//! and input dimension D, in the setting of the PyTorch and JAX baselines: an MLP
//! D → 128 → 128 → D with softplus, batch 128, f32, one Gaussian projection, data and ESM target
//! from N(0, I), DSM at σ = 0.1. Data and noise are drawn outside the timed closure.
//!
//! `cargo bench --bench jacobian_cost` (add `-- ism_structured` to run one objective). The quick
//! table for the paper is `scorelab cost`, which times the same step.

// criterion's macros define undocumented functions.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use scorelab_pipeline::cost::{objective, Setting, OBJECTIVES};
use std::time::Duration;

/// The allocator of the `scorelab` binary, so the benchmark times what `scorelab cost` times.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const DIMS: [usize; 5] = [2, 8, 32, 128, 512];
const BATCH: usize = 128;
const WIDTH: usize = 128;

fn jacobian_cost(c: &mut Criterion) {
    let mut group = c.benchmark_group("jacobian_cost");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    for id in OBJECTIVES {
        for d in DIMS {
            let mut setting = Setting::new(objective(id).expect("known id"), d, BATCH, WIDTH, 0);
            // A pool of fresh batches, drawn before timing and cycled through.
            let batches: Vec<_> = (0..16).map(|_| setting.batch()).collect();
            let mut k = 0;
            // Small steps run on one thread, as in `scorelab cost` (`step_pool`); the timed
            // closure enters that pool once per sample, not per step.
            let pool = setting.pool();
            group.bench_with_input(BenchmarkId::new(id, d), &d, |b, _| {
                b.iter_custom(|iters| {
                    let mut run = || {
                        let start = std::time::Instant::now();
                        for _ in 0..iters {
                            k = (k + 1) % batches.len();
                            criterion::black_box(setting.step(&batches[k]));
                        }
                        start.elapsed()
                    };
                    match pool {
                        Some(p) => p.install(run),
                        None => run(),
                    }
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, jacobian_cost);
criterion_main!(benches);

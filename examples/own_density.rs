//! Your own density in scorelab: implement the core traits, and every tool works on it.
//!
//! The density is a ring in the plane, p(x) ∝ exp(−(‖x‖ − r)²/(2w²)), whose normaliser we never
//! need. We implement `Dimension`, `LogDensity` (unnormalised is enough), `Score` and
//! `ScoreFunction` (the Jacobian–vector product, for the trace), then
//!
//! 1. check the score, its JVP and its Laplacian against finite differences with the generic
//!    checker (`scorelab_densities::testing`, one call each),
//! 2. draw exact-in-the-limit samples with MALA (score and log-density only),
//! 3. audit ESM = ISM + C for a random linear score model on those samples (C by Monte Carlo:
//!    the audit needs nothing but the log-density and the score),
//! 4. measure how far plain Langevin is from MALA by the kernel Stein discrepancy.
//!
//! Run: `cargo run --release --example own_density`

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, LogDensity, Score, ScoreFunction};
use scorelab_densities::testing;
use scorelab_eval::{audit_samples, ksd};
use scorelab_models::Linear;
use scorelab_samplers::{sample, Langevin, Mala};

/// p(x) ∝ exp(−(‖x‖ − r)²/(2w²)) on ℝ².
struct Ring {
    r: f64,
    w: f64,
}

impl Dimension for Ring {
    fn dim(&self) -> usize {
        2
    }
}

impl LogDensity for Ring {
    /// log p up to a constant: −(‖x‖ − r)²/(2w²).
    fn log_density(&self, x: ArrayView2<f64>) -> Array1<f64> {
        x.rows()
            .into_iter()
            .map(|p| {
                let n = p.dot(&p).sqrt();
                -(n - self.r).powi(2) / (2.0 * self.w * self.w)
            })
            .collect()
    }
}

impl Score for Ring {
    /// ∇log p = −(‖x‖ − r)/w² · x/‖x‖.
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let mut s = x.to_owned();
        for mut row in s.rows_mut() {
            let n = row.dot(&row).sqrt().max(1e-300);
            let f = -(n - self.r) / (self.w * self.w * n);
            row.mapv_inplace(|v| f * v);
        }
        s
    }
}

impl ScoreFunction for Ring {
    /// J v with J = −[(1 − r/‖x‖) I + (r/‖x‖³) x xᵀ]/w².
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        let mut out = Array2::zeros(x.raw_dim());
        for ((p, t), mut o) in x.rows().into_iter().zip(v.rows()).zip(out.rows_mut()) {
            let n = p.dot(&p).sqrt().max(1e-300);
            let a = 1.0 - self.r / n;
            let b = self.r / (n * n * n) * p.dot(&t);
            for j in 0..2 {
                o[j] = -(a * t[j] + b * p[j]) / (self.w * self.w);
            }
        }
        out
    }
}

fn main() {
    let ring = Ring { r: 3.0, w: 0.5 };
    let mut rng = ChaCha8Rng::seed_from_u64(7);

    // 1. The score, its JVP and its Laplacian against finite differences, by the generic checker
    //    every density of scorelab passes (feature `testing` of scorelab-densities).
    let x = scorelab_samplers::standard_normal(100, 2, &mut rng) * 2.0;
    testing::check_score(&ring, x.view()).expect("the score is ∇log p");
    testing::check_jvp_and_laplacian(&ring, x.view(), &mut rng).expect("J v and tr J");
    println!("1. score, JVP and Laplacian agree with finite differences at 100 points");

    // 2. MALA: 20 000 independent chains, 300 steps each, from N(0, 4 I).
    let mala = Mala::new(0.05, 300).expect("valid");
    let x0 = scorelab_samplers::standard_normal(20_000, 2, &mut rng) * 2.0;
    let draws = sample(&mala, &ring, x0.clone(), &mut rng);
    let radius = draws.map_axis(Axis(1), |p| p.dot(&p).sqrt());
    println!(
        "2. MALA: mean radius {:.3} (E ρ ≈ r + w²/r = {:.3} for the radial density ρ·e^(−(ρ−r)²/2w²))",
        radius.mean().unwrap_or(f64::NAN),
        ring.r + ring.w * ring.w / ring.r
    );

    // 3. ESM = ISM + C for a random linear score model s(x) = Ax + b, on the MALA samples.
    let model = Linear::random(2, 0.5, 1).expect("valid");
    let a = audit_samples(&ring, &model, draws.view());
    println!(
        "3. audit: ESM {:.4} ± {:.4}, ISM {:.4} ± {:.4}, ESM − ISM {:.4} ± {:.4}, C (Monte Carlo) {:.4}: z = {:.2}",
        a.esm.mean, a.esm.se, a.ism.mean, a.ism.se, a.gap.mean, a.gap.se, a.constant, a.z_score
    );

    // 4. Plain Langevin with a large step is biased; the KSD sees it.
    let ula = Langevin::new(0.3, 300).expect("valid");
    let biased = sample(&ula, &ring, x0, &mut rng);
    let n = 2000;
    let k_mala = ksd(draws.slice(ndarray::s![..n, ..]), &ring, 0, &mut rng);
    let k_ula = ksd(biased.slice(ndarray::s![..n, ..]), &ring, 0, &mut rng);
    println!(
        "4. KSD of {n} draws: MALA {:.3}, ULA with ε = 0.3 {:.3}",
        k_mala.ksd.value, k_ula.ksd.value
    );
}

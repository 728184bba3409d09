//! Conditional flow matching as continuous DSM: its per-sample loss is ½‖v_θ − (ε − x₀)‖² for the
//! velocity of the network's score, its t is uniform, and the optimal-transport coupling is the
//! exact minimum-cost assignment (against every permutation of a small batch).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use scorelab_objectives::continuous::{ContinuousDsm, Coupling};
use scorelab_objectives::taped::Noise;

/// For any score value s at y = x₀ + σ̃ε (σ̃ = t/(1 − t)): ½ c(σ̃)‖σ̃ s + ε‖² = ½‖v − (ε − x₀)‖²
/// with v = −y − σ̃(1 + σ̃)s, the linear path's velocity in x_t = (1 − t)y.
#[test]
fn the_loss_is_half_the_squared_velocity_error() {
    let fm = ContinuousDsm::flow_matching(1e-3, 0.999, Coupling::Independent).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    for _ in 0..200 {
        let sigma = fm.draw(&mut rng);
        let d = 3;
        let x0: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let eps: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let s: Vec<f64> = (0..d)
            .map(|_| 3.0 * rng.sample::<f64, _>(StandardNormal))
            .collect();
        let dsm: f64 =
            0.5 * fm.weight(sigma) * (0..d).map(|k| (sigma * s[k] + eps[k]).powi(2)).sum::<f64>();
        let fm_loss: f64 = 0.5
            * (0..d)
                .map(|k| {
                    let y = x0[k] + sigma * eps[k];
                    let v = -y - sigma * (1.0 + sigma) * s[k];
                    (v - (eps[k] - x0[k])).powi(2)
                })
                .sum::<f64>();
        assert!(
            (dsm - fm_loss).abs() < 1e-9 * (1.0 + fm_loss),
            "σ̃ = {sigma}: {dsm} vs {fm_loss}"
        );
    }
}

/// t = σ̃/(1 + σ̃) of the drawn σ̃'s is uniform on [t_min, t_max]: its mean and variance within 5
/// standard errors of (t_min + t_max)/2 and (t_max − t_min)²/12; the density integrates to 1.
#[test]
fn t_is_uniform_and_the_density_is_normalised() {
    let (a, b) = (0.05, 0.9);
    let fm = ContinuousDsm::flow_matching(a, b, Coupling::Independent).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let n = 100_000;
    let t: Vec<f64> = (0..n)
        .map(|_| {
            let s = fm.draw(&mut rng);
            s / (1.0 + s)
        })
        .collect();
    let mean = t.iter().sum::<f64>() / n as f64;
    let var = t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let (m0, v0) = ((a + b) / 2.0, (b - a).powi(2) / 12.0);
    assert!((mean - m0).abs() < 5.0 * (v0 / n as f64).sqrt());
    // Var of a uniform's sample variance: (μ₄ − σ⁴)/n with μ₄ = (b − a)⁴/80.
    assert!((var - v0).abs() < 5.0 * (((b - a).powi(4) / 80.0 - v0 * v0) / n as f64).sqrt());
    // ∫ p(σ̃) dσ̃ over [σ̃(a), σ̃(b)] by the trapezoid rule in t (p(σ̃) dσ̃ = dt/(b − a)).
    let (lo, hi) = (fm.sigma_min(), fm.sigma_max());
    let m = 200_000;
    let h = (hi.ln() - lo.ln()) / m as f64;
    let total: f64 = (0..=m)
        .map(|i| {
            let s = (lo.ln() + i as f64 * h).exp();
            let w = if i == 0 || i == m { 0.5 } else { 1.0 };
            w * fm.density(s) * s * h
        })
        .sum();
    assert!((total - 1.0).abs() < 1e-6, "∫ p = {total}");
}

/// The OT coupling's pairing costs no more than any other: on batches of 6, against all 720
/// permutations, it attains the minimum.
#[test]
fn the_ot_coupling_is_the_minimum_cost_assignment() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let (n, d) = (6, 2);
    for _ in 0..20 {
        let x = ndarray::Array2::from_shape_simple_fn((n, d), || {
            rng.sample::<f64, _>(StandardNormal) * 2.0
        });
        let eps: Vec<f64> = (0..n * d).map(|_| rng.sample(StandardNormal)).collect();
        let cost = |e: &[f64]| -> f64 {
            (0..n)
                .map(|i| {
                    (0..d)
                        .map(|k| (x[[i, k]] - e[i * d + k]).powi(2))
                        .sum::<f64>()
                })
                .sum()
        };
        let mut noise = Noise {
            eps: Some(eps.clone()),
            ..Noise::default()
        };
        noise.couple(x.view());
        let coupled = noise.eps.clone().unwrap();
        // A permutation of the rows of ε.
        let mut a: Vec<Vec<u64>> = coupled
            .chunks(d)
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        let mut b: Vec<Vec<u64>> = eps
            .chunks(d)
            .map(|r| r.iter().map(|v| v.to_bits()).collect())
            .collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
        let best = permutations(n)
            .into_iter()
            .map(|p| {
                let e: Vec<f64> = p
                    .iter()
                    .flat_map(|&j| eps[j * d..(j + 1) * d].to_vec())
                    .collect();
                cost(&e)
            })
            .fold(f64::INFINITY, f64::min);
        assert!(
            (cost(&coupled) - best).abs() < 1e-9 * best,
            "{} vs {best}",
            cost(&coupled)
        );
    }
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = vec![];
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn configs() {
    let o: scorelab_objectives::taped::Objective =
        toml::from_str("kind = \"flow_matching\"\ncoupling = \"ot\"").unwrap();
    assert_eq!(o.id(), "flow_matching");
    let back: scorelab_objectives::taped::Objective =
        toml::from_str(&toml::to_string(&o).unwrap()).unwrap();
    assert_eq!(back, o);
    let err = |t: &str| {
        toml::from_str::<scorelab_objectives::taped::Objective>(t)
            .unwrap_err()
            .message()
            .to_string()
    };
    assert!(err("kind = \"flow_matching\"\nt_max = 1.0").starts_with("t_max"));
    assert!(err("kind = \"flow_matching\"\ncoupling = \"sinkhorn\"").contains("sinkhorn"));
}

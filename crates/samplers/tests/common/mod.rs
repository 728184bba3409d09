//! What the sampler tests share.

use ndarray::Array2;
use scorelab_core::tolerance::MONTE_CARLO_SE;

/// Checks that the pooled coordinates of `x` have mean `m` and variance `v`, within 5 SE each
/// (exact SEs for Gaussian values: √(v/n) and v√(2/(n − 1))).
pub fn check_moments(x: &Array2<f64>, m: f64, v: f64, what: &str) {
    let vals: Vec<f64> = x.iter().copied().collect();
    let n = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let var = vals.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let (se_m, se_v) = ((v / n).sqrt(), v * (2.0 / (n - 1.0)).sqrt());
    assert!(
        (mean - m).abs() < MONTE_CARLO_SE * se_m,
        "{what}: mean {mean} vs {m} (se {se_m})"
    );
    assert!(
        (var - v).abs() < MONTE_CARLO_SE * se_v,
        "{what}: variance {var} vs {v} (se {se_v})"
    );
}

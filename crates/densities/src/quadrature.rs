//! Gaussian quadrature rules for expectations under N(0, I) and the half-normal, from `gauss-quad`.
//!
//! Gauss–Hermite with m nodes integrates e^{−t²} q(t) exactly for polynomials q of degree ≤ 2m − 1;
//! the substitution z = √2 t turns it into E_{z∼N(0,1)}\[q(z)\] with weights wₖ/√π. Densities that are
//! smooth transforms of a standard normal (Gaussian, mixture components, banana) map these nodes.

use gauss_quad::hermite::GaussHermite;
use gauss_quad::legendre::GaussLegendre;
use ndarray::{Array1, Array2};

/// Gauss–Hermite nodes per dimension used by every density's [`scorelab_core::ExpectationRule`].
pub const HERMITE_NODES: usize = 64;

/// Nodes and weights of an m-point rule for E_{z∼N(0,1)}\[g(z)\]; weights sum to 1.
///
/// # Examples
/// ```
/// // E z⁴ = 3, exact for m ≥ 3.
/// let (z, w) = scorelab_densities::quadrature::std_normal_1d(8);
/// let m4: f64 = z.iter().zip(&w).map(|(z, w)| w * z.powi(4)).sum();
/// assert!((m4 - 3.0).abs() < 1e-12);
/// ```
pub fn std_normal_1d(m: usize) -> (Vec<f64>, Vec<f64>) {
    let rule = GaussHermite::new(m).expect("at least two nodes");
    let norm = std::f64::consts::PI.sqrt();
    rule.as_node_weight_pairs()
        .iter()
        .map(|&(t, w)| (std::f64::consts::SQRT_2 * t, w / norm))
        .unzip()
}

/// The tensor-product Gauss–Hermite rule for E_{z∼N(0, I_d)}\[g(z)\], d ∈ {1, 2}: `(m^d, d)` nodes
/// and weights.
pub fn std_normal(d: usize, m: usize) -> (Array2<f64>, Array1<f64>) {
    let (z, w) = std_normal_1d(m);
    product(d, &z, &w)
}

/// A rule for E_{z∼N(0,1)}\[g(z)\] on \[lo, hi\] by composite Gauss–Legendre: `panels` panels of `m`
/// nodes, each weighted by the normal density φ(z). Robust where g is smooth but not polynomial.
///
/// # Examples
/// ```
/// // P(z ≤ 0) = ½ on [−12, 0].
/// let (_, w) = scorelab_densities::quadrature::std_normal_composite_1d(-12.0, 0.0, 12, 10);
/// assert!((w.iter().sum::<f64>() - 0.5).abs() < 1e-14);
/// ```
pub fn std_normal_composite_1d(lo: f64, hi: f64, panels: usize, m: usize) -> (Vec<f64>, Vec<f64>) {
    let (nodes, w) = legendre(lo, hi, panels, m);
    let weights = nodes
        .iter()
        .zip(w)
        .map(|(z, w)| w * (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt())
        .collect();
    (nodes, weights)
}

/// The product rule of [`legendre`] on the box \[lo₀, hi₀\] × \[lo₁, hi₁\], for
/// ∫∫ g(x₀, x₁) dx₀ dx₁: `(m², 2)` nodes, x₀ varying fastest, each weighted by the product of its
/// two 1-D weights. The one 2-D cubature of the workspace: normalising constants (log Z of an
/// energy network), KL divergences of 2-D densities and the likelihood's normalisation check all
/// integrate with it, so their node order, and with it the rounding of every sum, is one.
///
/// # Examples
/// ```
/// // ∫∫ over [0, 2] × [0, 1] of x₀² x₁ = (8/3)(1/2) = 4/3.
/// let rule = scorelab_densities::quadrature::legendre_box([0.0, 0.0], [2.0, 1.0], 2, 3);
/// let g = rule.nodes.rows().into_iter().map(|r| r[0] * r[0] * r[1]);
/// let v: f64 = g.zip(&rule.weights).map(|(g, w)| g * w).sum();
/// assert!((v - 4.0 / 3.0).abs() < 1e-12);
/// // x₀ varies fastest: the first two nodes share x₁.
/// assert!(rule.nodes[[0, 0]] != rule.nodes[[1, 0]] && rule.nodes[[0, 1]] == rule.nodes[[1, 1]]);
/// ```
///
/// # Panics
/// If `m` < 2.
pub fn legendre_box(
    lo: [f64; 2],
    hi: [f64; 2],
    panels: usize,
    m: usize,
) -> scorelab_core::Cubature {
    let (z0, w0) = legendre(lo[0], hi[0], panels, m);
    let (z1, w1) = legendre(lo[1], hi[1], panels, m);
    let n = z0.len();
    scorelab_core::Cubature {
        nodes: Array2::from_shape_fn(
            (n * n, 2),
            |(i, j)| if j == 0 { z0[i % n] } else { z1[i / n] },
        ),
        weights: Array1::from_shape_fn(n * n, |i| w0[i % n] * w1[i / n]),
    }
}

/// Composite Gauss–Legendre for ∫ₗₒʰⁱ g(t) dt: `panels` equal panels of `m` nodes each (exact for
/// polynomials of degree ≤ 2m − 1 on every panel).
///
/// # Examples
/// ```
/// // ∫₀² t³ dt = 4.
/// let (t, w) = scorelab_densities::quadrature::legendre(0.0, 2.0, 3, 2);
/// let v: f64 = t.iter().zip(&w).map(|(t, w)| w * t.powi(3)).sum();
/// assert!((v - 4.0).abs() < 1e-13);
/// ```
///
/// # Panics
/// If `m` < 2.
pub fn legendre(lo: f64, hi: f64, panels: usize, m: usize) -> (Vec<f64>, Vec<f64>) {
    let rule = GaussLegendre::new(m).expect("at least two nodes");
    let width = (hi - lo) / panels as f64;
    let mut nodes = Vec::with_capacity(panels * m);
    let mut weights = Vec::with_capacity(panels * m);
    for p in 0..panels {
        let (a, b) = (lo + p as f64 * width, lo + (p + 1) as f64 * width);
        for &(t, w) in rule.as_node_weight_pairs() {
            nodes.push(0.5 * (a + b) + 0.5 * (b - a) * t);
            weights.push(0.5 * (b - a) * w);
        }
    }
    (nodes, weights)
}

/// A rule for E\[g(|z|)\], z ∼ N(0,1), i.e. ∫₀^∞ g(t) 2φ(t) dt: composite Gauss–Legendre on \[0, 12\]
/// (`panels` panels of `m` nodes; the tail beyond 12 has mass 2Φ(−12) ≈ 4e-33).
pub fn half_std_normal(panels: usize, m: usize) -> (Vec<f64>, Vec<f64>) {
    let (z, w) = std_normal_composite_1d(0.0, 12.0, panels, m);
    (z, w.into_iter().map(|w| 2.0 * w).collect())
}

/// The tensor product of [`std_normal_composite_1d`] on \[−12, 12\]ᵈ for d ∈ {1, 2}, `panels` panels
/// of `m` nodes per axis; used for mixtures, whose responsibilities are not polynomial.
pub fn std_normal_composite(d: usize, panels: usize, m: usize) -> (Array2<f64>, Array1<f64>) {
    let (z, w) = std_normal_composite_1d(-12.0, 12.0, panels, m);
    product(d, &z, &w)
}

/// The rule every density on ℝᴰ (D ≤ 2) uses for E\[g(z)\], z ∼ N(0, I_d): composite Gauss–Legendre
/// on \[−12, 12\]ᵈ, [`crate::MIXTURE_PANELS`] panels of [`crate::MIXTURE_NODES`] nodes per axis (twice
/// the panels in 1-D). Exact to rounding for the polynomial integrands of linear models, like
/// Gauss–Hermite, and also accurate for the smooth non-polynomial integrands of networks, where
/// 64-node Gauss–Hermite was measured at only 1e-6 (1-D Gaussian) to 3e-5 (Haario's banana).
pub fn smooth_rule(d: usize) -> (Array2<f64>, Array1<f64>) {
    let panels = if d == 1 {
        2 * crate::MIXTURE_PANELS
    } else {
        crate::MIXTURE_PANELS
    };
    std_normal_composite(d, panels, crate::MIXTURE_NODES)
}

/// Tensor-product rule in 1-D or 2-D from a 1-D rule.
fn product(d: usize, z: &[f64], w: &[f64]) -> (Array2<f64>, Array1<f64>) {
    let m = z.len();
    match d {
        1 => (
            Array2::from_shape_vec((m, 1), z.to_vec()).expect("shape"),
            Array1::from(w.to_vec()),
        ),
        2 => {
            let mut nodes = Array2::zeros((m * m, 2));
            let mut weights = Array1::zeros(m * m);
            for i in 0..m {
                for j in 0..m {
                    let k = i * m + j;
                    nodes[[k, 0]] = z[i];
                    nodes[[k, 1]] = z[j];
                    weights[k] = w[i] * w[j];
                }
            }
            (nodes, weights)
        }
        _ => panic!("tensor-product rules are offered in 1-D and 2-D only, not {d}-D"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// E z^{2k} = (2k − 1)!! under N(0,1); exact for the Hermite rule up to degree 2m − 1.
    #[test]
    fn hermite_rule_reproduces_normal_moments() {
        let (z, w) = std_normal_1d(HERMITE_NODES);
        let mut double_factorial = 1.0;
        for k in 0..20 {
            if k > 0 {
                double_factorial *= (2 * k - 1) as f64;
            }
            let m: f64 = z.iter().zip(&w).map(|(z, w)| w * z.powi(2 * k)).sum();
            assert!(
                (m / double_factorial - 1.0).abs() < 1e-10,
                "k={k}: {m} vs {double_factorial}"
            );
        }
    }

    /// E|z| = √(2/π), E z² = 1 under N(0,1).
    #[test]
    fn half_rule_reproduces_folded_moments() {
        let (z, w) = half_std_normal(24, 16);
        let m0: f64 = w.iter().sum();
        let m1: f64 = z.iter().zip(&w).map(|(z, w)| w * z).sum();
        let m2: f64 = z.iter().zip(&w).map(|(z, w)| w * z * z).sum();
        assert!((m0 - 1.0).abs() < 1e-14);
        assert!((m1 - (2.0 / std::f64::consts::PI).sqrt()).abs() < 1e-14);
        assert!((m2 - 1.0).abs() < 1e-14);
    }
}

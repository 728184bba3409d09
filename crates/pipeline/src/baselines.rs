//! What the density experiments measure an energy model with and against: its normaliser Z_θ by
//! quadrature ([`log_partition`]), hence its exact log-likelihood, the held-out ISM loss
//! ([`heldout_ism`]), and the two classical baselines, a Gaussian fitted by its moments
//! ([`fit_gaussian`]) and a Gaussian kernel density estimate with Scott's bandwidth ([`kde_scott`]).
//!
//! ```
//! use ndarray::array;
//! use scorelab_core::Moments;
//! use scorelab_pipeline::baselines::{fit_gaussian, kde_scott};
//! let x = array![[0.0, 0.1], [1.0, -0.4], [-0.5, 0.3], [0.4, 1.2], [-1.1, -0.8]];
//! let (g, k) = (fit_gaussian(x.view())?, kde_scott(x.view())?);
//! // Both have the data's mean; the KDE's covariance is its bandwidth H = n^(−1/3) Σ̂ (Scott, 2-D)
//! // plus the spread of its centres, (n − 1)/n Σ̂.
//! assert!((k.mean() - g.mean()).iter().all(|e| e.abs() < 1e-12));
//! let want = g.covariance() * (5f64.powf(-1.0 / 3.0) + 4.0 / 5.0);
//! assert!((k.covariance() - want).iter().all(|e| e.abs() < 1e-12));
//! # Ok::<(), scorelab_pipeline::PipelineError>(())
//! ```

use crate::error::{PipelineError, Result};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use scorelab_core::ScoreFunction;
use scorelab_densities::{Gaussian, GaussianMixture};
use scorelab_models::EnergyMlp;

/// log Σ exp(aᵢ), stable.
fn log_sum_exp(a: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = a.collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// log Z_θ = log ∫_{[−b,b]²} e^{−f_θ(z)} dz for a 2-D energy network, by composite
/// Gauss–Legendre with `panels` panels of `nodes` nodes per axis (the product rule on the
/// square). Halving `panels` and comparing is the rule's own error estimate.
///
/// # Errors
/// [`PipelineError::Invalid`] unless the network is 2-D, b > 0 is finite, `panels` ≥ 1 and
/// `nodes` ≥ 2.
pub fn log_partition(m: &EnergyMlp, b: f64, panels: usize, nodes: usize) -> Result<f64> {
    if scorelab_core::Dimension::dim(m) != 2 {
        return Err(PipelineError::invalid(
            "model",
            "the quadrature normaliser is for 2-D energy networks",
        ));
    }
    if !(b > 0.0 && b.is_finite()) {
        return Err(PipelineError::invalid(
            "box_half_width",
            "must be positive and finite",
        ));
    }
    if panels == 0 || nodes < 2 {
        return Err(PipelineError::invalid(
            "panels",
            "need at least one panel and two nodes per panel",
        ));
    }
    let rule = gauss_quad::legendre::GaussLegendre::new(nodes).expect("at least two nodes");
    let width = 2.0 * b / panels as f64;
    let mut z = vec![];
    let mut w = vec![];
    for p in 0..panels {
        let (lo, hi) = (-b + p as f64 * width, -b + (p + 1) as f64 * width);
        for &(t, wt) in rule.as_node_weight_pairs() {
            z.push(0.5 * (lo + hi) + 0.5 * (hi - lo) * t);
            w.push(0.5 * (hi - lo) * wt);
        }
    }
    let n = z.len();
    let pts = Array2::from_shape_fn(
        (n * n, 2),
        |(i, j)| if j == 0 { z[i % n] } else { z[i / n] },
    );
    let f = m.energy(pts.view());
    Ok(log_sum_exp(
        (0..n * n).map(|i| -f[i] + w[i % n].ln() + w[i / n].ln()),
    ))
}

/// The held-out ISM loss E[½‖s(z)‖² + tr ∇s(z)] over the rows of `z`, the implicit
/// score-matching objective itself ([`scorelab_objectives::ism_values`]) as a plain mean.
pub fn heldout_ism(f: &dyn ScoreFunction, z: ArrayView2<f64>) -> f64 {
    scorelab_objectives::ism_values(f, z).iter().sum::<f64>() / z.nrows() as f64
}

/// The unbiased sample covariance of the rows.
fn covariance(x: ArrayView2<f64>) -> Array2<f64> {
    let m = x.mean_axis(Axis(0)).expect("rows");
    let c = &x - &m;
    c.t().dot(&c) / (x.nrows() as f64 - 1.0)
}

/// N(x̄, Σ̂): the Gaussian with the rows' mean and unbiased covariance.
///
/// # Errors
/// [`PipelineError::Invalid`] if the covariance is singular (fewer rows than dimensions, or
/// collinear data).
pub fn fit_gaussian(x: ArrayView2<f64>) -> Result<Gaussian> {
    let mean = x.mean_axis(Axis(0)).expect("rows");
    Gaussian::new(mean, covariance(x))
        .map_err(|e| PipelineError::invalid("gaussian fit", e.to_string()))
}

/// The Gaussian kernel density estimate (1/n) Σᵢ N(x; xᵢ, H) with Scott's rule
/// H = n^{−2/(d+4)} Σ̂ (Scott 1992, "Multivariate density estimation", §6.3).
///
/// # Errors
/// [`PipelineError::Invalid`] if the covariance is singular.
pub fn kde_scott(x: ArrayView2<f64>) -> Result<GaussianMixture> {
    let n = x.nrows();
    let d = x.ncols() as f64;
    let h = covariance(x) * (n as f64).powf(-2.0 / (d + 4.0));
    GaussianMixture::new(
        Array1::from_elem(n, 1.0 / n as f64),
        x.rows().into_iter().map(|r| r.to_owned()).collect(),
        vec![h; n],
    )
    .map_err(|e| PipelineError::invalid("kde", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use scorelab_core::Moments;
    use scorelab_models::Activation;

    /// With every weight zero the energy is the confining term alone, f = ‖z‖²/(2τ²), so
    /// Z over [−b, b]² is 2πτ² (1 − 2Φ(−b/τ))² exactly.
    #[test]
    fn the_quadrature_normaliser_of_a_gaussian_energy_is_exact() {
        let tau = 1.5;
        let mut m = EnergyMlp::new(2, &[8], Activation::Softplus, tau, 1).unwrap();
        for v in m.params_mut().values_mut() {
            v.iter_mut().for_each(|w| *w = 0.0);
        }
        // f also carries the MLP's constant output, which is the same at every point; subtract it.
        let c = m.energy(ndarray::array![[0.0, 0.0]].view())[0];
        for b in [2.0, 12.0] {
            let phi = statrs::function::erf::erfc(b / tau / std::f64::consts::SQRT_2) / 2.0;
            let exact =
                (2.0 * std::f64::consts::PI * tau * tau).ln() + 2.0 * (1.0 - 2.0 * phi).ln() - c;
            let got = log_partition(&m, b, 24, 8).unwrap();
            assert!((got - exact).abs() < 1e-10, "b = {b}: {got} vs {exact}");
        }
    }

    /// Scott's bandwidth for n points in d dimensions is n^{−2/(d+4)} times the covariance: in
    /// 2-D, n^{−1/3}, the factor the Old Faithful experiment has always used.
    #[test]
    fn the_kde_bandwidth_follows_scotts_rule() {
        let x = ndarray::array![[0.0, 1.0], [2.0, 0.5], [1.0, -1.0], [-1.0, 0.0], [0.5, 2.0]];
        let k = kde_scott(x.view()).unwrap();
        let want = covariance(x.view()) * 5f64.powf(-1.0 / 3.0);
        let got = k.components()[0].covariance();
        assert!((got - &want).iter().all(|e| e.abs() < 1e-12));
        assert_eq!(k.components()[3].mean_vector(), &x.row(3).to_owned());
    }
}

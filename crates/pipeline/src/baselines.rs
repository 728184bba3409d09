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
    let (z, w) = scorelab_densities::quadrature::legendre(-b, b, panels, nodes);
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

/// The maximum-likelihood fit of a 2-D energy network p_θ = e^{−f_θ}/Z_θ: Adam on the exact
/// negative log-likelihood L(θ) = mean f_θ(x) + log Z_θ of the rows `x` (full batch), with log Z_θ
/// and its gradient ∇_θ log Z_θ = −E_{p_θ}\[∇_θ f_θ\] by the same composite Gauss–Legendre rule
/// as [`log_partition`] (`panels` × `nodes` per axis on [−b, b]²), from the weights of `start`.
/// Returns the fitted network and L after every step (the first entry at `start`). Deterministic:
/// no draws.
///
/// # Errors
/// As [`log_partition`]; [`PipelineError::Invalid`] (`mle.lr`, `mle.steps`) for a learning rate
/// that is not positive or no steps.
pub fn fit_energy_ml(
    start: &EnergyMlp,
    x: ArrayView2<f64>,
    b: f64,
    panels: usize,
    nodes: usize,
    steps: usize,
    lr: f64,
) -> Result<(EnergyMlp, Vec<f64>)> {
    log_partition(start, b, panels, nodes)?;
    if steps == 0 {
        return Err(PipelineError::invalid("mle.steps", "must be at least 1"));
    }
    let mut adam = scorelab_models::Adam::new(start.params(), lr)
        .map_err(|e| PipelineError::invalid("mle.lr", e.to_string()))?;
    let (z, w) = scorelab_densities::quadrature::legendre(-b, b, panels, nodes);
    let m = z.len();
    let nodes_xy = Array2::from_shape_fn(
        (m * m, 2),
        |(i, j)| if j == 0 { z[i % m] } else { z[i / m] },
    );
    let log_w: Vec<f64> = (0..m * m).map(|i| w[i % m].ln() + w[i / m].ln()).collect();
    let n = x.nrows();
    let points = ndarray::concatenate![Axis(0), x, nodes_xy.view()];
    let mut net = start.clone();
    let mut history = vec![];
    for step in 0..=steps {
        let f = net.energy(points.view());
        let log_z = log_sum_exp((0..m * m).map(|k| -f[n + k] + log_w[k]));
        history.push(f.slice(ndarray::s![..n]).mean().expect("rows") + log_z);
        if step == steps {
            break;
        }
        let a: Vec<f64> = (0..n)
            .map(|_| 1.0 / n as f64)
            .chain((0..m * m).map(|k| -(-f[n + k] + log_w[k] - log_z).exp()))
            .collect();
        let g = net.weighted_energy_gradient(points.view(), &a);
        adam.step(net.params_mut(), &g);
    }
    Ok((net, history))
}

/// A K-component Gaussian mixture with full covariances fitted by expectation–maximisation
/// (Dempster, Laird & Rubin 1977; Bishop 2006, §9.2.2): `restarts` runs from seeded starts (means
/// at K distinct rows drawn from `ChaCha8Rng::seed_from_u64(seed)` stream r, covariances Σ̂,
/// equal weights), each iterated until the mean log-likelihood gains less than 1e-10 or after
/// `max_iter` iterations; the best run by training log-likelihood is returned, with its history
/// of mean log-likelihoods (non-decreasing: EM's monotonicity). Each M-step adds 1e-6·I to the
/// covariances so that no component collapses onto a point.
///
/// # Errors
/// [`PipelineError::Invalid`] (`mixture`) unless 1 ≤ K ≤ n and the covariance is regular.
pub fn fit_mixture_em(
    x: ArrayView2<f64>,
    k: usize,
    restarts: usize,
    max_iter: usize,
    seed: u64,
) -> Result<(GaussianMixture, Vec<f64>)> {
    use rand::seq::index::sample;
    use rand::SeedableRng;
    use scorelab_core::LogDensity;
    let (n, d) = x.dim();
    if k == 0 || k > n || restarts == 0 || max_iter == 0 {
        return Err(PipelineError::invalid(
            "mixture",
            format!("need 1 ≤ components ≤ rows ({n}) and at least one restart and iteration"),
        ));
    }
    let sigma = covariance(x);
    let build = |w: Array1<f64>, m: Vec<Array1<f64>>, c: Vec<Array2<f64>>| {
        GaussianMixture::new(w, m, c).map_err(|e| PipelineError::invalid("mixture", e.to_string()))
    };
    let mut best: Option<(GaussianMixture, Vec<f64>)> = None;
    for r in 0..restarts {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(r as u64);
        let start: Vec<Array1<f64>> = sample(&mut rng, n, k)
            .into_iter()
            .map(|i| x.row(i).to_owned())
            .collect();
        let mut q = build(
            Array1::from_elem(k, 1.0 / k as f64),
            start,
            vec![sigma.clone(); k],
        )?;
        let mut history = vec![q.log_density(x).mean().expect("rows")];
        for _ in 0..max_iter {
            // E-step: responsibilities. M-step: weights, means, covariances.
            let (resp, _) = q.responsibilities(x);
            let nk = resp.sum_axis(Axis(0));
            let mut means = vec![];
            let mut covs = vec![];
            for j in 0..k {
                let rj = resp.column(j);
                let m = rj.dot(&x) / nk[j];
                let c = &x - &m;
                let wc = &c * &rj.insert_axis(Axis(1));
                let cov = wc.t().dot(&c) / nk[j] + Array2::<f64>::eye(d) * 1e-6;
                means.push(m);
                covs.push(cov);
            }
            q = build(&nk / n as f64, means, covs)?;
            let ll = q.log_density(x).mean().expect("rows");
            let gain = ll - history.last().copied().expect("one entry");
            history.push(ll);
            if gain.abs() < 1e-10 {
                break;
            }
        }
        let last = *history.last().expect("one entry");
        if best
            .as_ref()
            .is_none_or(|b| last > *b.1.last().expect("one entry"))
        {
            best = Some((q, history));
        }
    }
    Ok(best.expect("at least one restart"))
}

/// The Gaussian KDE (1/n) Σᵢ N(x; xᵢ, h²Σ̂) whose bandwidth factor h maximises the leave-one-out
/// log-likelihood Σᵢ log((1/(n−1)) Σ_{j≠i} N(xᵢ; xⱼ, h²Σ̂)) over `factors` (likelihood
/// cross-validation; Silverman 1986, §3.4.4), returned with the chosen h and every factor's
/// leave-one-out mean log-likelihood. Scott's rule is h² = n^{−2/(d+4)}.
///
/// # Errors
/// [`PipelineError::Invalid`] (`kde`) for fewer than 3 rows, no factor, a factor that is not
/// positive, or a singular covariance.
pub fn kde_cv(x: ArrayView2<f64>, factors: &[f64]) -> Result<(GaussianMixture, f64, Vec<f64>)> {
    let (n, d) = x.dim();
    if n < 3 || factors.is_empty() || factors.iter().any(|h| !(h.is_finite() && *h > 0.0)) {
        return Err(PipelineError::invalid(
            "kde",
            "needs at least 3 rows and bandwidth factors that are finite and > 0",
        ));
    }
    let sigma = covariance(x);
    let base = Gaussian::new(Array1::zeros(d), sigma.clone())
        .map_err(|e| PipelineError::invalid("kde", e.to_string()))?;
    // Squared Mahalanobis distances under Σ̂, once: N(xᵢ; xⱼ, h²Σ̂) is a function of them.
    let white = base.cov().whiten(x);
    let mut q2 = Array2::<f64>::zeros((n, n));
    for i in 0..n {
        for j in 0..n {
            let diff = &white.row(i) - &white.row(j);
            q2[[i, j]] = diff.dot(&diff);
        }
    }
    let log_det = base.cov().log_det();
    let loo = |h: f64| -> f64 {
        let c = -0.5 * (d as f64 * (2.0 * std::f64::consts::PI * h * h).ln() + log_det);
        (0..n)
            .map(|i| {
                log_sum_exp(
                    (0..n)
                        .filter(|&j| j != i)
                        .map(|j| c - 0.5 * q2[[i, j]] / (h * h)),
                ) - ((n - 1) as f64).ln()
            })
            .sum::<f64>()
            / n as f64
    };
    let scores: Vec<f64> = factors.iter().map(|&h| loo(h)).collect();
    let (best, _) =
        scores.iter().enumerate().fold(
            (0, f64::NEG_INFINITY),
            |a, (i, &s)| if s > a.1 { (i, s) } else { a },
        );
    let h = factors[best];
    let kde = GaussianMixture::new(
        Array1::from_elem(n, 1.0 / n as f64),
        x.rows().into_iter().map(|r| r.to_owned()).collect(),
        vec![&sigma * (h * h); n],
    )
    .map_err(|e| PipelineError::invalid("kde", e.to_string()))?;
    Ok((kde, h, scores))
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

    /// EM on 4000 draws of a known 2-component mixture: the log-likelihood never decreases, and
    /// the weights and means come back within 5 standard errors of the truth (sd of a weight
    /// √(w(1 − w)/n) ≈ 0.0072; of a mean coordinate ≈ σ/√(n wₖ)).
    #[test]
    fn em_recovers_a_known_mixture_and_never_lowers_the_likelihood() {
        use rand::SeedableRng;
        use scorelab_core::Sample;
        let truth = GaussianMixture::new(
            ndarray::array![0.3, 0.7],
            vec![ndarray::array![-2.0, 1.0], ndarray::array![1.5, -0.5]],
            vec![
                ndarray::array![[0.5, 0.2], [0.2, 0.4]],
                ndarray::array![[0.8, -0.3], [-0.3, 0.6]],
            ],
        )
        .unwrap();
        let x = truth.sample(4000, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3));
        let (q, hist) = fit_mixture_em(x.view(), 2, 3, 500, 1).unwrap();
        assert!(hist.windows(2).all(|w| w[1] >= w[0] - 1e-12), "{hist:?}");
        // Match the fitted components to the true ones by the sign of the first mean coordinate.
        let first = if q.components()[0].mean()[0] < 0.0 {
            0
        } else {
            1
        };
        let w = q.weights()[first];
        assert!(
            (w - 0.3).abs() < 5.0 * (0.3f64 * 0.7 / 4000.0).sqrt(),
            "weight {w}"
        );
        let m0 = q.components()[first].mean();
        assert!((m0[0] + 2.0).abs() < 5.0 * (0.5f64 / 1200.0).sqrt(), "{m0}");
        assert!((m0[1] - 1.0).abs() < 5.0 * (0.4f64 / 1200.0).sqrt(), "{m0}");
    }

    /// The cross-validated KDE's leave-one-out score is the mean over rows of the log-density of
    /// the KDE built on the other rows (checked by building those KDEs), and the chosen factor is
    /// the best of the grid.
    #[test]
    fn the_kde_bandwidth_maximises_the_leave_one_out_likelihood() {
        use scorelab_core::LogDensity;
        let x = ndarray::array![
            [0.0, 1.0],
            [2.0, 0.5],
            [1.0, -1.0],
            [-1.0, 0.0],
            [0.5, 2.0],
            [0.3, 0.2]
        ];
        let factors = [0.3, 0.6, 1.0];
        let (kde, h, scores) = kde_cv(x.view(), &factors).unwrap();
        let sigma = covariance(x.view());
        for (f, s) in factors.iter().zip(&scores) {
            let mut total = 0.0;
            for i in 0..6 {
                let rest: Vec<usize> = (0..6).filter(|&j| j != i).collect();
                let others = x.select(Axis(0), &rest);
                let q = GaussianMixture::new(
                    Array1::from_elem(5, 0.2),
                    others.rows().into_iter().map(|r| r.to_owned()).collect(),
                    vec![&sigma * (f * f); 5],
                )
                .unwrap();
                total += q.log_density(x.slice(ndarray::s![i..i + 1, ..]))[0];
            }
            assert!((total / 6.0 - s).abs() < 1e-10, "{} vs {s}", total / 6.0);
        }
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(scores[factors.iter().position(|&f| f == h).unwrap()], best);
        assert_eq!(kde.components().len(), 6);
    }

    /// The maximum-likelihood gradient is that of L(θ) = mean f_θ + log Z_θ (a central finite
    /// difference in one weight, through `log_partition`, agrees to 1e-3 relative: f32 tape
    /// against f64 quadrature), and Adam on it lowers L on data drawn from a Gaussian.
    #[test]
    fn the_maximum_likelihood_fit_follows_the_exact_likelihood_gradient() {
        use rand::SeedableRng;
        use scorelab_core::Sample;
        let x = Gaussian::new(
            ndarray::array![0.5, -0.3],
            ndarray::array![[0.6, 0.2], [0.2, 0.3]],
        )
        .unwrap()
        .sample(200, &mut rand_chacha::ChaCha8Rng::seed_from_u64(2));
        let m = EnergyMlp::new(2, &[8], Activation::Softplus, 3.0, 4).unwrap();
        let loss = |m: &EnergyMlp| {
            m.energy(x.view()).mean().unwrap() + log_partition(m, 12.0, 24, 8).unwrap()
        };
        // The gradient at the start, as the fit forms it: data weights 1/n, node weights −wₖe^{−f}/Z.
        let (zq, wq) = scorelab_densities::quadrature::legendre(-12.0, 12.0, 24, 8);
        let q = zq.len();
        let nodes = Array2::from_shape_fn(
            (q * q, 2),
            |(i, j)| if j == 0 { zq[i % q] } else { zq[i / q] },
        );
        let pts = ndarray::concatenate![Axis(0), x.view(), nodes.view()];
        let f = m.energy(pts.view());
        let lw: Vec<f64> = (0..q * q)
            .map(|k| wq[k % q].ln() + wq[k / q].ln())
            .collect();
        let lz = log_sum_exp((0..q * q).map(|k| -f[200 + k] + lw[k]));
        let a: Vec<f64> = (0..200)
            .map(|_| 1.0 / 200.0)
            .chain((0..q * q).map(|k| -(-f[200 + k] + lw[k] - lz).exp()))
            .collect();
        let g = m.weighted_energy_gradient(pts.view(), &a);
        for (block, entry) in [(0, 3), (1, 2), (2, 5)] {
            let h = 1e-3f32;
            let (mut up, mut down) = (m.clone(), m.clone());
            up.params_mut().values_mut()[block][entry] += h;
            down.params_mut().values_mut()[block][entry] -= h;
            let fd = (loss(&up) - loss(&down)) / (2.0 * f64::from(h));
            assert!(
                (g[block][entry] - fd).abs() < 1e-3 * (fd.abs() + 1e-2),
                "{} vs {fd}",
                g[block][entry]
            );
        }
        let (_, hist) = fit_energy_ml(&m, x.view(), 12.0, 24, 8, 100, 1e-2).unwrap();
        assert!((hist[0] - loss(&m)).abs() < 1e-9);
        assert!(hist[100] < hist[0] - 0.05, "{} -> {}", hist[0], hist[100]);
    }
}

//! What the density experiments measure an energy model with and against: its normaliser Z_θ by
//! quadrature ([`log_partition`]), hence its exact log-likelihood, the held-out ISM loss
//! ([`heldout_ism`]), and the two classical baselines, a Gaussian fitted by its moments
//! ([`fit_gaussian`]) and a Gaussian kernel density estimate with Scott's bandwidth ([`kde_scott`]).
//! The likelihood comparisons add references: the exact maximum-likelihood fit of a 2-D energy
//! network ([`fit_energy_ml`]), a Gaussian mixture by EM ([`fit_mixture_em`]), a KDE with a
//! cross-validated bandwidth ([`kde_cv`]), and for discrete (image) data the Gaussian of the
//! dequantised data ([`fit_gaussian_dequantized`]) and independent per-column levels
//! ([`IndependentLevels`]).
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

use scorelab_core::stats::log_sum_exp;

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
    let rule = scorelab_densities::quadrature::legendre_box([-b, -b], [b, b], panels, nodes);
    let f = m.energy(rule.nodes.view());
    Ok(log_sum_exp(
        f.iter().zip(&rule.weights).map(|(f, w)| -f + w.ln()),
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

/// The moment fit of the dequantised data y = x + u, u ∼ U(−q/2, q/2) independently per column:
/// N(x̄, Σ̂ + diag(qⱼ²/12)), the mean and covariance of y (the uniform noise adds its variance
/// q²/12 to each column and nothing to the mean or the cross terms). It is proper even where a
/// column is constant in `x` (an always-blank pixel), which the plain [`fit_gaussian`] refuses.
///
/// ```
/// use ndarray::array;
/// use scorelab_core::Moments;
/// let x = array![[0.0, 2.0], [0.0, 4.0], [0.0, 3.0]];
/// let g = scorelab_pipeline::baselines::fit_gaussian_dequantized(x.view(), &[1.0, 2.0])?;
/// assert_eq!(g.covariance(), array![[1.0 / 12.0, 0.0], [0.0, 1.0 + 4.0 / 12.0]]);
/// # Ok::<(), scorelab_pipeline::PipelineError>(())
/// ```
///
/// # Errors
/// [`PipelineError::Invalid`] if `q` has not one width per column or the covariance is
/// singular (a width of 0 on a constant column).
pub fn fit_gaussian_dequantized(x: ArrayView2<f64>, q: &[f64]) -> Result<Gaussian> {
    if q.len() != x.ncols() {
        return Err(PipelineError::invalid(
            "dequantize",
            format!("{} widths for {} columns", q.len(), x.ncols()),
        ));
    }
    let mean = x.mean_axis(Axis(0)).expect("rows");
    let mut cov = covariance(x);
    for (j, w) in q.iter().enumerate() {
        cov[[j, j]] += w * w / 12.0;
    }
    Gaussian::new(mean, cov).map_err(|e| PipelineError::invalid("gaussian fit", e.to_string()))
}

/// A model of discrete data in which the columns are independent, each a categorical
/// distribution over the grid lo, lo + q, …, hi (L = (hi − lo)/q + 1 levels), fitted by its
/// counts with add-α (Laplace) smoothing: Pⱼ(v) = (nⱼ(v) + α)/(n + Lα). Read as the density of
/// the dequantised data, it is Pⱼ(bin)/q on each bin, so its log-likelihood of a dequantised point
/// is log P(x) − D log q whatever the uniform draw: the "independent pixels" reference of image
/// likelihoods, whose bits/dim −log₂P(x)/D is exact for the discrete data.
///
/// ```
/// use ndarray::array;
/// use scorelab_pipeline::baselines::IndependentLevels;
/// // Two pixels on the levels 0, 1, 2; three images; add-one smoothing.
/// let x = array![[0.0, 2.0], [0.0, 1.0], [1.0, 2.0]];
/// let m = IndependentLevels::fit(x.view(), 0.0, 2.0, 1.0, 1.0)?;
/// assert_eq!(m.levels(), 3);
/// // P₁(0) = (2 + 1)/(3 + 3), P₂(2) = (2 + 1)/(3 + 3).
/// let lp = m.log_prob(array![[0.0, 2.0]].view())?;
/// assert!((lp[0] - (0.25f64).ln()).abs() < 1e-15);
/// # Ok::<(), scorelab_pipeline::PipelineError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct IndependentLevels {
    lo: f64,
    q: f64,
    /// log Pⱼ(level), one row per column.
    log_probs: Array2<f64>,
}

impl IndependentLevels {
    /// The grid level of `v`, if `v` lies on the grid (within 1e-9 of a level) and in range.
    fn level(&self, v: f64) -> Option<usize> {
        let k = (v - self.lo) / self.q;
        let r = k.round();
        ((k - r).abs() < 1e-9 && r >= 0.0 && (r as usize) < self.log_probs.ncols())
            .then_some(r as usize)
    }

    /// Fits the counts of the rows of `x` (type docs).
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming `support` unless lo < hi are finite and (hi − lo)/q is
    /// a whole number, `dequantize` unless q > 0, `smoothing` unless α > 0, and `support` if a
    /// value of `x` is off the grid.
    pub fn fit(x: ArrayView2<f64>, lo: f64, hi: f64, q: f64, alpha: f64) -> Result<Self> {
        if !(q > 0.0 && q.is_finite()) {
            return Err(PipelineError::invalid(
                "dequantize",
                "the bin width q must be positive",
            ));
        }
        if !(alpha > 0.0 && alpha.is_finite()) {
            return Err(PipelineError::invalid(
                "smoothing",
                "α must be positive and finite",
            ));
        }
        let span = (hi - lo) / q;
        if !(lo.is_finite() && hi.is_finite() && span >= 1.0 && (span - span.round()).abs() < 1e-9)
        {
            return Err(PipelineError::invalid(
                "support",
                format!("[{lo}, {hi}] must hold a whole number of bins of width {q}, lo < hi"),
            ));
        }
        let levels = span.round() as usize + 1;
        let mut m = IndependentLevels {
            lo,
            q,
            log_probs: Array2::zeros((x.ncols(), levels)),
        };
        let mut counts = Array2::<f64>::zeros((x.ncols(), levels));
        for (i, row) in x.rows().into_iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let k = m.level(v).ok_or_else(|| off_grid(i, j, v, lo, hi, q))?;
                counts[[j, k]] += 1.0;
            }
        }
        let total = (x.nrows() as f64 + levels as f64 * alpha).ln();
        m.log_probs = counts.mapv(|c| (c + alpha).ln() - total);
        Ok(m)
    }

    /// L, the number of levels of every column.
    pub fn levels(&self) -> usize {
        self.log_probs.ncols()
    }

    /// log P(x) = Σⱼ log Pⱼ(xⱼ) of every row.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] (`support`) if a value is off the grid or a row has the wrong
    /// number of columns.
    pub fn log_prob(&self, x: ArrayView2<f64>) -> Result<Array1<f64>> {
        if x.ncols() != self.log_probs.nrows() {
            return Err(PipelineError::invalid(
                "support",
                format!(
                    "rows of {} values for a {}-column model",
                    x.ncols(),
                    self.log_probs.nrows()
                ),
            ));
        }
        let hi = self.lo + self.q * (self.levels() - 1) as f64;
        let mut out = Array1::zeros(x.nrows());
        for (i, row) in x.rows().into_iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let k = self
                    .level(v)
                    .ok_or_else(|| off_grid(i, j, v, self.lo, hi, self.q))?;
                out[i] += self.log_probs[[j, k]];
            }
        }
        Ok(out)
    }
}

fn off_grid(i: usize, j: usize, v: f64, lo: f64, hi: f64, q: f64) -> PipelineError {
    PipelineError::invalid(
        "support",
        format!(
            "row {}, column {}: {v} is not one of {lo}, {lo} + {q}, …, {hi}",
            i + 1,
            j + 1
        ),
    )
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
    let rule = scorelab_densities::quadrature::legendre_box([-b, -b], [b, b], panels, nodes);
    let mm = rule.weights.len();
    let log_w: Vec<f64> = rule.weights.iter().map(|w| w.ln()).collect();
    let n = x.nrows();
    let points = ndarray::concatenate![Axis(0), x, rule.nodes.view()];
    let mut net = start.clone();
    let mut history = vec![];
    for step in 0..=steps {
        let f = net.energy(points.view());
        let log_z = log_sum_exp((0..mm).map(|k| -f[n + k] + log_w[k]));
        history.push(f.slice(ndarray::s![..n]).mean().expect("rows") + log_z);
        if step == steps {
            break;
        }
        let a: Vec<f64> = (0..n)
            .map(|_| 1.0 / n as f64)
            .chain((0..mm).map(|k| -(-f[n + k] + log_w[k] - log_z).exp()))
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
        rng.set_stream(scorelab_core::streams::Stream::EmRestart(r as u64).id());
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

    /// The dequantised moment fit against the moment fit of many dequantised copies of the data:
    /// 20 000 copies of 4 rows, so each variance entry is within 5 SE (SE of a variance of
    /// N = 80 000 draws ≈ σ²√(2/N) ≤ 0.005) of the rows' covariance plus q²/12.
    #[test]
    fn the_dequantised_gaussian_has_the_moments_of_dequantised_draws() {
        use rand::SeedableRng;
        use scorelab_core::Moments;
        let x = ndarray::array![[0.0, 2.0], [1.0, 4.0], [0.0, 3.0], [3.0, 3.0]];
        let q = [1.0, 2.0];
        let g = fit_gaussian_dequantized(x.view(), &q).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let copies = 20_000;
        let mut y = Array2::zeros((4 * copies, 2));
        for c in 0..copies {
            for i in 0..4 {
                let mut r = x.row(i).to_owned();
                crate::data::add_uniform(r.view_mut(), &q, &mut rng);
                y.row_mut(c * 4 + i).assign(&r);
            }
        }
        // The copies' covariance is that of the 4 rows with divisor n (3/4 of Σ̂) plus the
        // uniform noise's q²/12; the fit is Σ̂ plus the same diagonal.
        let noise = Array2::from_diag(&ndarray::array![1.0 / 12.0, 4.0 / 12.0]);
        let expect = covariance(x.view()) * 0.75 + &noise;
        let pooled = covariance(y.view());
        assert!(
            (&pooled - &expect).iter().all(|e| e.abs() < 0.025),
            "{pooled} vs {expect}"
        );
        let fitted = g.covariance() - &noise;
        assert!((&fitted - &covariance(x.view()))
            .iter()
            .all(|e| e.abs() < 1e-12));
        assert!((g.mean() - y.mean_axis(Axis(0)).unwrap())
            .iter()
            .all(|e| e.abs() < 0.02));
    }

    /// The independent-levels model's probabilities are the smoothed counts, every column's sum to
    /// 1, and values off the grid are refused by name.
    #[test]
    fn independent_levels_are_smoothed_counts() {
        let x = ndarray::array![[0.0, 4.0], [2.0, 4.0], [2.0, 0.0], [2.0, 2.0]];
        let m = IndependentLevels::fit(x.view(), 0.0, 4.0, 2.0, 0.5).unwrap();
        assert_eq!(m.levels(), 3);
        // Column 1: counts 1, 3, 0; column 2: 1, 1, 2; n + Lα = 5.5.
        let p = [[1.5, 3.5, 0.5], [1.5, 1.5, 2.5]];
        for (j, row) in p.iter().enumerate() {
            let s: f64 = row.iter().sum();
            assert!((s - 5.5).abs() < 1e-12);
            for (k, c) in row.iter().enumerate() {
                assert!((m.log_probs[[j, k]] - (c / 5.5f64).ln()).abs() < 1e-14);
            }
        }
        let lp = m.log_prob(ndarray::array![[4.0, 2.0]].view()).unwrap();
        assert!((lp[0] - (0.5f64 / 5.5 * 1.5 / 5.5).ln()).abs() < 1e-14);
        for bad in [1.0, 6.0, -2.0] {
            let e = m.log_prob(ndarray::array![[0.0, bad]].view()).unwrap_err();
            assert!(
                e.to_string().contains("support") && e.to_string().contains("column 2"),
                "{e}"
            );
        }
        assert!(IndependentLevels::fit(x.view(), 0.0, 3.0, 2.0, 1.0).is_err());
        assert!(
            IndependentLevels::fit(x.view(), 0.0, 2.0, 2.0, 1.0).is_err(),
            "4.0 off the grid"
        );
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
        let rule = scorelab_densities::quadrature::legendre_box([-12.0; 2], [12.0; 2], 24, 8);
        let qq = rule.weights.len();
        let pts = ndarray::concatenate![Axis(0), x.view(), rule.nodes.view()];
        let f = m.energy(pts.view());
        let lw: Vec<f64> = rule.weights.iter().map(|w| w.ln()).collect();
        let lz = log_sum_exp((0..qq).map(|k| -f[200 + k] + lw[k]));
        let a: Vec<f64> = (0..200)
            .map(|_| 1.0 / 200.0)
            .chain((0..qq).map(|k| -(-f[200 + k] + lw[k] - lz).exp()))
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

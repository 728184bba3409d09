//! The exact truth a sampler is measured against on a Gaussian-mixture target p, whose noised
//! densities p_σ = p ∗ N(0, σ²I) are closed form: the same pieces serve the solver study
//! (`kind = "solvers"`), the guidance study and the Python package's `scorelab.audit`.
//!
//! In the kernel's variables y = x/α (the samplers' [`scorelab_samplers::Schedule`] docs), every
//! schedule's probability-flow ODE is dy/dσ̃ = −σ̃ ∇log p_σ̃(y), whatever its α(t): so one exact
//! flow map ([`flow_map`], adaptive Dormand–Prince at a tight tolerance) is the reference of
//! every deterministic sampler on every schedule, and three kinds of error separate:
//!
//! - the **flow-map error**: the distance of a deterministic sampler's output from the exact flow
//!   map of its own starting point ([`flow_error`]): discretisation alone;
//! - the **distributional error**: the output against p ([`sample_metrics`]: mean exact log p
//!   beside exact draws', per-mode weights, per-mode means and covariances), which also carries
//!   sampling noise and, from the prior, the prior's mismatch;
//! - the **prior mismatch**: the same sampler from exact draws of p_T ([`starts`] with
//!   `exact`) instead of the Gaussian prior: the difference of the two distributional errors.
//!
//! ```
//! use ndarray::array;
//! use scorelab_densities::GaussianMixture;
//! use scorelab_pipeline::truth::{flow_map, starts, Start};
//! let p = GaussianMixture::new(array![1.0], vec![array![2.0]], vec![array![[0.25]]])?;
//! // N(2, ¼): the flow from σ̃ = 10 to 0 maps y to 2 + ½(y − 2)/√(¼ + 100), exactly.
//! let y = starts(&p, 4, 10.0, Start::Exact, &mut scorelab_core::streams::Stream::AuditStart.rng(0));
//! let x = flow_map(&p, y.view(), 10.0, 0.0, 1e-10)?;
//! for (a, b) in x.iter().zip(&y) {
//!     assert!((a - (2.0 + 0.5 * (b - 2.0) / 100.25f64.sqrt())).abs() < 1e-8);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use crate::{PipelineError, Result};
use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rand::Rng;
use scorelab_core::streams::Stream;
use scorelab_core::{Dimension, LogDensity, NoisedScore, Sample};
use scorelab_densities::GaussianMixture;
use scorelab_samplers::solve::{integrate, Rk45};
use scorelab_samplers::{AnySampler, Schedule};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where a run's chains start, at σ̃(T) in the y = x/α variables.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Start {
    /// The Gaussian prior N(0, c² I) in x (c the schedule's [`Schedule::prior_std`]), so
    /// N(0, (c/α(T))² I) in y: what samplers start from.
    Prior {
        /// c/α(T): the prior's standard deviation in y.
        std: f64,
    },
    /// Exact draws of p_σ̃(T) (x₀ + σ̃(T) z, x₀ ∼ p): no prior mismatch.
    Exact,
}

impl Start {
    /// The prior of `schedule` in y.
    pub fn prior_of(schedule: &Schedule) -> Self {
        Start::Prior {
            std: schedule.prior_std() / schedule.alpha(schedule.t_max()),
        }
    }

    /// `prior` or `exact`, as tables name it.
    pub fn name(&self) -> &'static str {
        match self {
            Start::Prior { .. } => "prior",
            Start::Exact => "exact",
        }
    }
}

/// `n` starting points at σ̃ = `sigma` in the y variables (module docs), from `rng`.
pub fn starts<R: Rng + ?Sized>(
    p: &GaussianMixture,
    n: usize,
    sigma: f64,
    start: Start,
    rng: &mut R,
) -> Array2<f64> {
    let d = p.dim();
    match start {
        Start::Prior { std } => scorelab_samplers::standard_normal(n, d, rng) * std,
        Start::Exact => {
            let mut x = p.sample(n, rng);
            x.scaled_add(sigma, &scorelab_samplers::standard_normal(n, d, rng));
            x
        }
    }
}

/// The exact probability-flow map in the y variables from σ̃ = `from` to `to` < `from`,
/// dy/dσ̃ = −σ̃ ∇log p_σ̃(y), by adaptive Dormand–Prince at `tol` (relative and absolute).
///
/// # Errors
/// An error naming `flow_tol` when the integration fails (a tolerance too tight for f64, or too
/// many steps), or when `tol` is not a valid tolerance.
pub fn flow_map<S: NoisedScore + ?Sized>(
    p: &S,
    y: ArrayView2<f64>,
    from: f64,
    to: f64,
    tol: f64,
) -> Result<Array2<f64>> {
    let mut rk = Rk45::new(tol, tol)?;
    rk.max_steps = 1_000_000;
    let f = |y: ArrayView2<f64>, s: f64| {
        if s == 0.0 {
            return Array2::zeros(y.dim());
        }
        p.noised_score(y, s) * -s
    };
    integrate(&f, y.to_owned(), from, to, &rk)
        .map(|r| r.0)
        .map_err(|e| {
            PipelineError::invalid(
                "flow_tol",
                format!("the exact flow map failed: {e}; loosen it"),
            )
        })
}

/// The reference output of a deterministic sampler on `schedule` from `y` at σ̃(T): the exact
/// flow map to the grid's last level, then, on a schedule that stops above σ̃ = 0, Tweedie's
/// denoising step there (what a sampler with `denoise = true` ends with), so that the difference
/// is discretisation alone.
///
/// # Errors
/// As [`flow_map`].
pub fn flow_reference<S: NoisedScore + ?Sized>(
    p: &S,
    schedule: &Schedule,
    y: ArrayView2<f64>,
    tol: f64,
) -> Result<Array2<f64>> {
    let (lo, hi) = schedule.sigma_range();
    if schedule.ends_at_zero() {
        return flow_map(p, y, hi, 0.0, tol);
    }
    let at = flow_map(p, y, hi, lo, tol)?;
    Ok(scorelab_samplers::tweedie(p, at.view(), lo))
}

/// The root-mean-square distance ‖x − reference‖ over the rows (NaN if a row is not finite).
pub fn flow_error(x: ArrayView2<f64>, reference: ArrayView2<f64>) -> f64 {
    let d2 = (&x - &reference).mapv(|v| v * v).sum_axis(Axis(1));
    d2.mean().map_or(f64::NAN, f64::sqrt)
}

/// A score that counts the rows it is asked for: the evaluations a sampler made.
pub struct Counted<'a, S: ?Sized> {
    source: &'a S,
    rows: AtomicUsize,
}

impl<'a, S: NoisedScore + ?Sized> Counted<'a, S> {
    /// `source`, counted from 0.
    pub fn new(source: &'a S) -> Self {
        Counted {
            source,
            rows: AtomicUsize::new(0),
        }
    }

    /// The rows asked for so far.
    pub fn rows(&self) -> usize {
        self.rows.load(Ordering::Relaxed)
    }
}

impl<S: NoisedScore + ?Sized> Dimension for Counted<'_, S> {
    fn dim(&self) -> usize {
        self.source.dim()
    }
}

impl<S: NoisedScore + ?Sized> NoisedScore for Counted<'_, S> {
    fn noised_score(&self, y: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.rows.fetch_add(y.nrows(), Ordering::Relaxed);
        self.source.noised_score(y, sigma)
    }
}

/// A noise-conditional `sampler` on the score `source` from the starting points `y` (y variables
/// at σ̃(T) of the sampler's schedule `schedule`): its output and the score evaluations per
/// chain. `None` for `langevin` and `mala`, which use the clean score.
pub fn run_sampler<S: NoisedScore + ?Sized, R: Rng + ?Sized>(
    sampler: &AnySampler,
    schedule: &Schedule,
    source: &S,
    y: ArrayView2<f64>,
    rng: &mut R,
) -> Option<(Array2<f64>, f64)> {
    let counted = Counted::new(source);
    let a0 = schedule.alpha(schedule.t_max());
    let x = sampler.sample_noised(&counted, &y * a0, rng)?;
    Some((x, counted.rows() as f64 / y.nrows().max(1) as f64))
}

/// The rows of each sample that MMD² is computed on: its cost grows with their square.
pub const MMD_ROWS: usize = 2000;

/// A sample measured against p ([`sample_metrics`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SampleMetrics {
    /// The fraction of rows that are not finite (left out of everything else).
    pub failed: f64,
    /// The mean exact log p of the finite rows.
    pub log_p: f64,
    /// The fraction of rows assigned to each component (largest responsibility).
    pub weights: Array1<f64>,
    /// Per component, ‖m̂ₖ − μₖ‖ of the rows assigned to it (NaN with fewer than 2).
    pub mean_error: Array1<f64>,
    /// Per component, ‖Ĉₖ − Σₖ‖_F / ‖Σₖ‖_F of the rows assigned to it (NaN with fewer than 2).
    pub cov_error: Array1<f64>,
    /// Per component, tr Ĉₖ / tr Σₖ: the spread found against the truth's (NaN with fewer than 2).
    pub spread: Array1<f64>,
    /// MMD²_u to the reference draws at the stated bandwidth, on the first [`MMD_ROWS`] rows of
    /// each; NaN without reference draws.
    pub mmd2: f64,
}

impl SampleMetrics {
    /// maxₖ |ŵₖ − wₖ| against `truth`.
    pub fn weight_error(&self, truth: &Array1<f64>) -> f64 {
        self.weights
            .iter()
            .zip(truth)
            .map(|(a, b)| (a - b).abs())
            .fold(f64::NAN, f64::max)
    }

    /// The largest of the per-mode values `v` that are defined (NaN if none is).
    pub fn worst(v: &Array1<f64>) -> f64 {
        v.iter()
            .copied()
            .filter(|x| !x.is_nan())
            .fold(f64::NAN, f64::max)
    }
}

/// Measures the sample `x` against the mixture `p` (module docs): mean log p, mode weights,
/// per-mode moments, and with `reference = Some((draws, h))` MMD²_u to those draws at bandwidth h.
pub fn sample_metrics(
    x: ArrayView2<f64>,
    p: &GaussianMixture,
    reference: Option<(ArrayView2<f64>, f64)>,
) -> SampleMetrics {
    let rows: Vec<usize> = (0..x.nrows())
        .filter(|&i| x.row(i).iter().all(|v| v.is_finite()))
        .collect();
    let failed = 1.0 - rows.len() as f64 / x.nrows().max(1) as f64;
    let x = x.select(Axis(0), &rows);
    let k = p.weights().len();
    let nan = |n| Array1::from_elem(n, f64::NAN);
    if x.nrows() < 2 {
        return SampleMetrics {
            failed,
            log_p: f64::NAN,
            weights: nan(k),
            mean_error: nan(k),
            cov_error: nan(k),
            spread: nan(k),
            mmd2: f64::NAN,
        };
    }
    let log_p = p.log_density(x.view()).mean().expect("rows");
    let (resp, _) = p.responsibilities(x.view());
    let assign: Vec<usize> = resp
        .rows()
        .into_iter()
        .map(|r| {
            (0..k)
                .max_by(|&a, &b| r[a].total_cmp(&r[b]))
                .expect("a component")
        })
        .collect();
    let n = x.nrows() as f64;
    let mut weights = Array1::zeros(k);
    let (mut mean_error, mut cov_error, mut spread) = (nan(k), nan(k), nan(k));
    let fro = |a: &Array2<f64>| a.mapv(|v| v * v).sum().sqrt();
    for (c, comp) in p.components().iter().enumerate() {
        let idx: Vec<usize> = (0..assign.len()).filter(|&i| assign[i] == c).collect();
        weights[c] = idx.len() as f64 / n;
        if idx.len() < 2 {
            continue;
        }
        let xc = x.select(Axis(0), &idx);
        let (m, cov) = scorelab_eval::frechet::moments(xc.view());
        mean_error[c] = (&m - comp.mean_vector()).mapv(|v| v * v).sum().sqrt();
        let truth = scorelab_core::Moments::covariance(comp);
        cov_error[c] = fro(&(&cov - &truth)) / fro(&truth);
        spread[c] = cov.diag().sum() / truth.diag().sum();
    }
    let mmd2 = match reference {
        None => f64::NAN,
        Some((e, h)) => {
            let mut rng = Stream::MetricMmd.rng(0);
            let (a, b) = (x.nrows().min(MMD_ROWS), e.nrows().min(MMD_ROWS));
            scorelab_eval::mmd2(
                x.slice(s![..a, ..]),
                e.slice(s![..b, ..]),
                Some(h),
                0,
                &mut rng,
            )
            .estimate
            .value
        }
    };
    SampleMetrics {
        failed,
        log_p,
        weights,
        mean_error,
        cov_error,
        spread,
        mmd2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// A sampler's flow reference on a schedule that stops above 0 is the flow there and then
    /// Tweedie's step: for N(μ, v), D(y, σ) = μ + v(y − μ)/(v + σ²) after the closed-form flow.
    #[test]
    fn the_reference_of_a_vp_run_ends_with_tweedie() {
        let (mu, v) = (1.5, 0.3);
        let p = GaussianMixture::new(array![1.0], vec![array![mu]], vec![array![[v]]]).unwrap();
        let vp = Schedule::vp(0.1, 20.0, 1e-3).unwrap();
        let (lo, hi) = vp.sigma_range();
        let y = array![[-40.0], [3.0], [100.0]];
        let got = flow_reference(&p, &vp, y.view(), 1e-11).unwrap();
        for (g, y0) in got.iter().zip(&y) {
            let at = mu + (y0 - mu) * ((v + lo * lo) / (v + hi * hi)).sqrt();
            let want = mu + v * (at - mu) / (v + lo * lo);
            assert!((g - want).abs() < 1e-8, "{g} vs {want}");
        }
    }

    /// Exact draws of p score at p's own floor: weights within 4 binomial SE, spreads near 1;
    /// a collapsed sample (every row at its mode's mean) has spread 0 and log p higher by D/2.
    #[test]
    fn exact_draws_match_and_a_collapsed_sample_does_not() {
        let p = GaussianMixture::new(
            array![0.3, 0.7],
            vec![array![-4.0, 0.0], array![4.0, 1.0]],
            vec![array![[1.0, 0.3], [0.3, 0.5]], Array2::eye(2)],
        )
        .unwrap();
        let n = 4000;
        let x = p.sample(n, &mut Stream::AuditExact.rng(3));
        let m = sample_metrics(x.view(), &p, None);
        let se = (0.3f64 * 0.7 / n as f64).sqrt();
        assert!(m.weight_error(p.weights()) < 4.0 * se);
        for s in &m.spread {
            assert!((s - 1.0).abs() < 0.1, "{s}");
        }
        let mut c = x.clone();
        let (resp, _) = p.responsibilities(x.view());
        for (mut row, r) in c.rows_mut().into_iter().zip(resp.rows()) {
            let k = usize::from(r[1] > r[0]);
            row.assign(p.components()[k].mean_vector());
        }
        let mc = sample_metrics(c.view(), &p, None);
        assert!(mc.spread.iter().all(|&s| s < 1e-20), "{:?}", mc.spread);
        // At its mode's mean a point gains ½χ²_D in log p over an exact draw: D/2 = 1 in mean
        // (sd of the mean gain 1/√n ≈ 0.016; the other component's mass shifts it by < 1e-6).
        assert!(
            (mc.log_p - m.log_p - 1.0).abs() < 0.08,
            "{} {}",
            mc.log_p,
            m.log_p
        );
    }
}

//! Solvers for batched ODEs dy/dτ = F(y, τ), y an `(n, d)` array: Euler (order 1), Heun (order 2)
//! and Dormand & Prince's 5(4) pair (Dormand & Prince 1980; Hairer, Nørsett & Wanner, *Solving
//! Ordinary Differential Equations I*, §II.4–5), fixed-step or adaptive with a PI step-size
//! controller (Gustafsson 1991).
//!
//! The adaptive solver controls the error of the whole batch with one step size: a step is
//! accepted when err = maxᵢ RMSⱼ(eᵢⱼ / (atol + rtol·max(|yᵢⱼ|, |y′ᵢⱼ|))) ≤ 1, where e is the
//! difference of the 5th- and 4th-order solutions, so that every chain meets the tolerances. The
//! next step is h·min(5, max(0.2, 0.9·err^{−0.7/5}·err_prev^{0.4/5})) after an accepted step and
//! h·max(0.2, 0.9·err^{−1/5}) after a rejected one. The first step comes from Hairer et al.'s
//! starting-step rule (II.4, one extra evaluation). The 5th-order solution is propagated (local
//! extrapolation) and the last stage is the next step's first (FSAL), so an accepted or rejected
//! step costs 6 evaluations.
//!
//! # Examples
//! ```
//! use ndarray::array;
//! use scorelab_samplers::solve::{integrate, Rk45};
//! // dy/dτ = −y from τ = 0 to 1: y(1) = e^{−1} y(0).
//! let f = |y: ndarray::ArrayView2<f64>, _t: f64| y.mapv(|v| -v);
//! let (y, stats) = integrate(&f, array![[1.0, 2.0]], 0.0, 1.0, &Rk45::new(1e-8, 1e-8)?)?;
//! assert!((y[[0, 1]] - 2.0 * (-1.0f64).exp()).abs() < 1e-7);
//! assert!(stats.evals > 6 && stats.rejected <= stats.accepted);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use ndarray::{Array2, ArrayView2, Zip};
use scorelab_core::ParamError;

/// One Euler step y + h F(y, τ).
pub fn euler_step<F>(f: &F, y: ArrayView2<f64>, t: f64, h: f64) -> Array2<f64>
where
    F: Fn(ArrayView2<f64>, f64) -> Array2<f64> + ?Sized,
{
    let mut out = y.to_owned();
    out.scaled_add(h, &f(y, t));
    out
}

/// One step of Heun's method (the explicit trapezoidal rule): k₁ = F(y, τ),
/// k₂ = F(y + h k₁, τ + h), y + (h/2)(k₁ + k₂).
pub fn heun_step<F>(f: &F, y: ArrayView2<f64>, t: f64, h: f64) -> Array2<f64>
where
    F: Fn(ArrayView2<f64>, f64) -> Array2<f64> + ?Sized,
{
    let k1 = f(y, t);
    let mut pred = y.to_owned();
    pred.scaled_add(h, &k1);
    let k2 = f(pred.view(), t + h);
    let mut out = y.to_owned();
    Zip::from(&mut out)
        .and(&k1)
        .and(&k2)
        .for_each(|y, &a, &b| *y += 0.5 * h * (a + b));
    out
}

// The Dormand–Prince 5(4) tableau (Hairer et al. Table II.5.2).
const C: [f64; 7] = [0.0, 1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const A: [&[f64]; 7] = [
    &[],
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];
/// The 5th-order weights (= the last row of A: FSAL).
const B5: [f64; 7] = [
    35.0 / 384.0,
    0.0,
    500.0 / 1113.0,
    125.0 / 192.0,
    -2187.0 / 6784.0,
    11.0 / 84.0,
    0.0,
];
/// The embedded 4th-order weights.
const B4: [f64; 7] = [
    5179.0 / 57600.0,
    0.0,
    7571.0 / 16695.0,
    393.0 / 640.0,
    -92097.0 / 339200.0,
    187.0 / 2100.0,
    1.0 / 40.0,
];

/// One Dormand–Prince step from (y, τ) with step h, given k₁ = F(y, τ): returns the 5th-order
/// solution, the error estimate y₅ − y₄ and F at the new point (the next step's k₁).
pub fn dopri_step<F>(
    f: &F,
    y: ArrayView2<f64>,
    t: f64,
    h: f64,
    k1: &Array2<f64>,
) -> (Array2<f64>, Array2<f64>, Array2<f64>)
where
    F: Fn(ArrayView2<f64>, f64) -> Array2<f64> + ?Sized,
{
    let mut k: Vec<Array2<f64>> = Vec::with_capacity(7);
    k.push(k1.clone());
    for s in 1..7 {
        let mut ys = y.to_owned();
        for (j, &a) in A[s].iter().enumerate() {
            if a != 0.0 {
                ys.scaled_add(h * a, &k[j]);
            }
        }
        k.push(f(ys.view(), t + C[s] * h));
    }
    let mut y5 = y.to_owned();
    let mut err = Array2::zeros(y.raw_dim());
    for s in 0..7 {
        if B5[s] != 0.0 {
            y5.scaled_add(h * B5[s], &k[s]);
        }
        err.scaled_add(h * (B5[s] - B4[s]), &k[s]);
    }
    let k7 = k.pop().expect("seven stages");
    (y5, err, k7)
}

/// The tolerances of the adaptive Dormand–Prince solver.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rk45 {
    /// Relative tolerance > 0.
    pub rtol: f64,
    /// Absolute tolerance > 0.
    pub atol: f64,
    /// The most steps (accepted and rejected) before it gives up (default 100 000).
    pub max_steps: usize,
}

impl Rk45 {
    /// Dormand–Prince 5(4) with these tolerances.
    ///
    /// # Errors
    /// Unless both are finite and > 0 and rtol ≥ 1e-13 (naming `rtol` or `atol`).
    pub fn new(rtol: f64, atol: f64) -> Result<Self, ParamError> {
        // Below this, the error control asks for more than f64 arithmetic resolves (its ε is
        // 2.2e-16) and the step size collapses: every chain ends NaN or the solve gives up.
        const FINEST: f64 = 1e-13;
        if rtol.is_finite() && rtol > 0.0 && rtol < FINEST {
            return Err(ParamError::invalid(
                "rtol",
                format!("{rtol:e} is below {FINEST:e}, finer than f64 arithmetic resolves; give rtol ≥ {FINEST:e} (1e-5 is the default)"),
            ));
        }
        Ok(Rk45 {
            rtol: crate::positive(rtol, "rtol")?,
            atol: crate::positive(atol, "atol")?,
            max_steps: 100_000,
        })
    }
}

/// What an adaptive integration cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SolveStats {
    /// Evaluations of F.
    pub evals: usize,
    /// Accepted steps.
    pub accepted: usize,
    /// Rejected steps.
    pub rejected: usize,
}

/// Why an adaptive integration stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SolveError {
    /// The step size underflowed or F returned a non-finite value.
    #[error("the ODE solver's step size fell to {h:e} at τ = {t}: F is not finite there or the problem is too stiff for rtol/atol")]
    StepTooSmall {
        /// Where.
        t: f64,
        /// The step size.
        h: f64,
    },
    /// The solution or a quantity integrated beside it is not finite at the end.
    #[error("the ODE's solution is not finite at τ = {0}: the score or its divergence returned NaN or ∞")]
    NotFinite(f64),
    /// More than `max_steps` steps.
    #[error("the ODE solver took more than {0} steps; loosen rtol/atol")]
    TooManySteps(usize),
}

fn error_norm(
    err: &Array2<f64>,
    y0: ArrayView2<f64>,
    y1: ArrayView2<f64>,
    tol: &Rk45,
    cols: usize,
) -> f64 {
    let d = cols.max(1) as f64;
    let mut worst = 0.0f64;
    for ((e, a), b) in err.rows().into_iter().zip(y0.rows()).zip(y1.rows()) {
        let mut s = 0.0;
        for ((&e, &a), &b) in e.iter().zip(a.iter()).zip(b.iter()).take(cols) {
            let w = tol.atol + tol.rtol * a.abs().max(b.abs());
            s += (e / w) * (e / w);
        }
        let r = (s / d).sqrt();
        // NaN propagates as "too large".
        worst = if r.is_nan() {
            f64::INFINITY
        } else {
            worst.max(r)
        };
    }
    worst
}

fn scaled_norm(v: ArrayView2<f64>, y: ArrayView2<f64>, tol: &Rk45, cols: usize) -> f64 {
    let d = cols.max(1) as f64;
    let mut worst = 0.0f64;
    for (a, b) in v.rows().into_iter().zip(y.rows()) {
        let s: f64 = a
            .iter()
            .zip(b.iter())
            .take(cols)
            .map(|(&v, &y)| (v / (tol.atol + tol.rtol * y.abs())).powi(2))
            .sum();
        worst = worst.max((s / d).sqrt());
    }
    worst
}

/// Integrates dy/dτ = F(y, τ) from τ₀ to τ₁ (either direction) adaptively (module docs).
///
/// # Errors
/// [`SolveError`] if the step size underflows or `max_steps` is exceeded.
pub fn integrate<F>(
    f: &F,
    y0: Array2<f64>,
    t0: f64,
    t1: f64,
    tol: &Rk45,
) -> Result<(Array2<f64>, SolveStats), SolveError>
where
    F: Fn(ArrayView2<f64>, f64) -> Array2<f64> + ?Sized,
{
    let cols = y0.ncols();
    integrate_controlled(f, y0, t0, t1, tol, cols)
}

/// [`integrate`] with the error controlled on the first `controlled` columns only: the others
/// (quantities carried along, such as an accumulated log-density) are integrated by the same steps
/// but never shorten or reject one, so the steps depend on the controlled columns alone.
///
/// # Examples
/// ```
/// use ndarray::{array, ArrayView2};
/// use scorelab_samplers::solve::{integrate_controlled, Rk45};
/// // y′ = −y with ∫y dτ carried along: the steps are those of y alone.
/// let f = |y: ArrayView2<f64>, _t: f64| array![[-y[[0, 0]], y[[0, 0]]]];
/// let tol = Rk45::new(1e-6, 1e-6)?;
/// let (y, s1) = integrate_controlled(&f, array![[1.0, 0.0]], 0.0, 2.0, &tol, 1)?;
/// let g = |y: ArrayView2<f64>, _t: f64| array![[-y[[0, 0]]]];
/// let (_, s2) = integrate_controlled(&g, array![[1.0]], 0.0, 2.0, &tol, 1)?;
/// assert_eq!(s1, s2);
/// assert!((y[[0, 1]] - (1.0 - (-2.0f64).exp())).abs() < 1e-5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// As [`integrate`].
pub fn integrate_controlled<F>(
    f: &F,
    y0: Array2<f64>,
    t0: f64,
    t1: f64,
    tol: &Rk45,
    controlled: usize,
) -> Result<(Array2<f64>, SolveStats), SolveError>
where
    F: Fn(ArrayView2<f64>, f64) -> Array2<f64> + ?Sized,
{
    let cols = controlled.min(y0.ncols());
    let mut stats = SolveStats::default();
    if t0 == t1 || y0.is_empty() {
        return Ok((y0, stats));
    }
    let dir = (t1 - t0).signum();
    let span = (t1 - t0).abs();
    let mut k1 = f(y0.view(), t0);
    stats.evals += 1;
    // Hairer et al.'s starting step (II.4): h₀ from ‖y₀‖/‖F₀‖, refined by one Euler step.
    let d0 = scaled_norm(y0.view(), y0.view(), tol, cols);
    let d1 = scaled_norm(k1.view(), y0.view(), tol, cols);
    let h0 = if d0 < 1e-5 || d1 < 1e-5 {
        1e-6
    } else {
        0.01 * d0 / d1
    }
    .min(span);
    let mut y_e = y0.clone();
    y_e.scaled_add(dir * h0, &k1);
    let k_e = f(y_e.view(), t0 + dir * h0);
    stats.evals += 1;
    let d2 = scaled_norm((&k_e - &k1).view(), y0.view(), tol, cols) / h0;
    let h1 = if d1.max(d2) <= 1e-15 {
        (h0 * 1e-3).max(1e-6)
    } else {
        (0.01 / d1.max(d2)).powf(1.0 / 5.0)
    };
    let mut h = (100.0 * h0).min(h1).min(span);

    let (mut t, mut y) = (t0, y0);
    let mut err_prev = 1e-4f64;
    let mut last_rejected = false;
    loop {
        let remaining = (t1 - t) * dir;
        if remaining <= 0.0 {
            break;
        }
        if stats.accepted + stats.rejected >= tol.max_steps {
            return Err(SolveError::TooManySteps(tol.max_steps));
        }
        let last = h >= remaining;
        let step = if last { remaining } else { h };
        if step.is_nan() || step <= span * 1e-14 {
            return Err(SolveError::StepTooSmall { t, h: step });
        }
        let (y5, e, k7) = dopri_step(f, y.view(), t, dir * step, &k1);
        stats.evals += 6;
        let err = error_norm(&e, y.view(), y5.view(), tol, cols);
        if err <= 1.0 {
            stats.accepted += 1;
            t = if last { t1 } else { t + dir * step };
            y = y5;
            k1 = k7;
            let err = err.max(1e-10);
            let mut factor = 0.9 * err.powf(-0.7 / 5.0) * err_prev.powf(0.4 / 5.0);
            factor = factor.clamp(0.2, 5.0);
            if last_rejected {
                factor = factor.min(1.0);
            }
            h = step * factor;
            err_prev = err;
            last_rejected = false;
        } else {
            stats.rejected += 1;
            let factor = if err.is_finite() {
                (0.9 * err.powf(-1.0 / 5.0)).max(0.2)
            } else {
                0.2
            };
            h = step * factor;
            last_rejected = true;
        }
    }
    Ok((y, stats))
}

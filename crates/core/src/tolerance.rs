//! The tolerances every scorelab test states, in one place (after statrs `prec.rs`).
//!
//! Each constant says what it bounds and why it is as large as it is.

/// Relative error of a closed form against another closed form or an exact linear-algebra identity
/// in f64 (a few hundred ulps of accumulated rounding in D ≤ 50 sums).
pub const CLOSED_FORM_REL: f64 = 1e-9;

/// Relative error of deterministic quadrature (64-node Gauss–Hermite per dimension, 384-node
/// composite Gauss–Legendre on the half-line) against a closed form: the 1e-6 bound.
pub const QUADRATURE_REL: f64 = 1e-6;

/// Relative error of a central finite difference with step h ≈ 1e-5·(1 + |x|): truncation O(h²)
/// plus cancellation O(ε/h) ≈ 1e-11, with margin for large third derivatives.
pub const FINITE_DIFF_REL: f64 = 1e-6;

/// Central finite-difference step, relative to 1 + |x|.
pub const FINITE_DIFF_STEP: f64 = 1e-5;

/// Monte Carlo checks pass within this many standard errors. For a single Gaussian statistic the
/// two-sided failure rate is 5.7e-7 per comparison; tests run at fixed seeds.
pub const MONTE_CARLO_SE: f64 = 5.0;

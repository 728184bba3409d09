//! Monte Carlo summaries: a mean with its standard deviation and standard error, the one helper
//! every table of the workspace summarises with.
//!
//! **One policy for non-finite values:** they are not dropped. A NaN or infinite value makes the
//! mean, sd and se non-finite, so a diverged run shows in the table instead of vanishing from
//! it; a caller that means to summarise only the finite runs filters them first and says so.

use ndarray::ArrayView1;

/// A Monte Carlo estimate: the sample mean of n values and its standard error s/√n, with s the
/// sample standard deviation (divisor n − 1).
///
/// # Examples
/// ```
/// use scorelab_core::stats::MeanSe;
/// let m = MeanSe::of(ndarray::array![1.0, 2.0, 3.0, 4.0].view());
/// assert_eq!(m.mean, 2.5);
/// // s² = 5/3, se = √(5/3 / 4)
/// assert!((m.se - (5.0f64 / 12.0).sqrt()).abs() < 1e-15);
/// ```
///
/// Fewer than two values have no sd or se (NaN), and no values no mean (NaN):
/// ```
/// use scorelab_core::stats::MeanSe;
/// let one = MeanSe::of_slice(&[5.0]);
/// assert_eq!(one.mean, 5.0);
/// assert!(one.sd.is_nan() && one.se.is_nan());
/// assert!(MeanSe::of_slice(&[1.0, f64::NAN]).mean.is_nan()); // not dropped
/// // Equal values: their mean exactly and sd 0, though 359 × 0.1 rounds in the sum.
/// let same = MeanSe::of_slice(&[0.1; 359]);
/// assert_eq!((same.mean, same.sd), (0.1, 0.0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSe {
    /// The sample mean.
    pub mean: f64,
    /// The sample standard deviation (divisor n − 1); NaN for fewer than two values.
    pub sd: f64,
    /// The mean's standard error sd/√n; NaN for fewer than two values.
    pub se: f64,
}

impl MeanSe {
    /// The mean, sd and standard error of `values`: the sum's mean corrected once by the mean of
    /// the residuals (which removes the sum's rounding, so n equal values have exactly that mean
    /// and sd 0), then the squared deviations from it (two passes, for accuracy).
    pub fn of(values: ArrayView1<f64>) -> Self {
        let n = values.len() as f64;
        let rough = values.sum() / n;
        let mean = rough + values.iter().map(|v| v - rough).sum::<f64>() / n;
        let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let var = if values.len() > 1 {
            ss / (n - 1.0)
        } else {
            f64::NAN
        };
        MeanSe {
            mean,
            sd: var.sqrt(),
            se: (var / n).sqrt(),
        }
    }

    /// [`MeanSe::of`] a slice.
    pub fn of_slice(values: &[f64]) -> Self {
        Self::of(ArrayView1::from(values))
    }
}

/// log Σᵢ exp(aᵢ), computed stably (the largest term factored out); −∞ for no terms or all −∞,
/// and the largest term itself when it is +∞ or NaN.
///
/// ```
/// let v = scorelab_core::stats::log_sum_exp([1000.0, 1000.0].into_iter());
/// assert!((v - (1000.0 + 2f64.ln())).abs() < 1e-12);
/// assert_eq!(scorelab_core::stats::log_sum_exp(std::iter::empty()), f64::NEG_INFINITY);
/// ```
pub fn log_sum_exp(a: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = a.collect();
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

//! Monte Carlo summaries: a mean with its standard error.

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
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MeanSe {
    /// The sample mean.
    pub mean: f64,
    /// Its standard error; NaN for fewer than two values.
    pub se: f64,
}

impl MeanSe {
    /// The mean and standard error of `values` (two passes, for accuracy).
    pub fn of(values: ArrayView1<f64>) -> Self {
        let n = values.len() as f64;
        let mean = values.sum() / n;
        let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
        let se = (ss / (n - 1.0) / n).sqrt();
        MeanSe { mean, se }
    }
}

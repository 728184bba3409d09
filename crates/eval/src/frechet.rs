//! The Fréchet distance between two sets of feature vectors: the 2-Wasserstein distance between
//! the Gaussians with their means and covariances (Dowson & Landau 1982),
//!
//! d² = ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½),
//!
//! the construction of the FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule
//! converge to a local Nash equilibrium") with any feature map in place of Inception's. The square
//! roots of the symmetric positive semi-definite matrices go through nalgebra's `SymmetricEigen`
//! (negative eigenvalues from rounding are set to 0), so the result is symmetric in its arguments
//! up to rounding.
//!
//! ```
//! use ndarray::array;
//! use scorelab_eval::frechet::frechet_gaussians;
//! // Diagonal covariances commute: d² = ‖μ₁ − μ₂‖² + Σᵢ (√aᵢ − √bᵢ)².
//! let d2 = frechet_gaussians(
//!     array![0.0, 1.0].view(), array![[4.0, 0.0], [0.0, 1.0]].view(),
//!     array![1.0, 1.0].view(), array![[1.0, 0.0], [0.0, 9.0]].view(),
//! )?;
//! assert!((d2 - (1.0 + 1.0 + 4.0)).abs() < 1e-12);
//! # Ok::<(), scorelab_eval::frechet::FrechetError>(())
//! ```

use nalgebra::{DMatrix, SymmetricEigen};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};

/// Inputs the Fréchet distance cannot use.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrechetError {
    /// Means and covariances of different dimensions, or a covariance that is not square.
    #[error("frechet: {0}")]
    Shape(String),
    /// A non-finite mean or covariance entry.
    #[error("frechet: a mean or covariance has a non-finite entry")]
    NotFinite,
    /// A set of fewer than two vectors (no covariance).
    #[error("frechet: {0} needs at least two rows")]
    TooFew(&'static str),
}

fn to_na(a: ArrayView2<f64>) -> DMatrix<f64> {
    DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

/// The symmetric PSD square root of a symmetric matrix (its symmetric part is used; negative
/// eigenvalues are set to 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let sym = (m + m.transpose()) * 0.5;
    let e = SymmetricEigen::new(sym);
    let root = e.eigenvalues.map(|v| v.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&root) * e.eigenvectors.transpose()
}

/// d² between N(μ₁, Σ₁) and N(μ₂, Σ₂) (module docs).
///
/// # Errors
/// [`FrechetError::Shape`] for mismatched dimensions, [`FrechetError::NotFinite`] for a
/// non-finite entry.
pub fn frechet_gaussians(
    m1: ArrayView1<f64>,
    s1: ArrayView2<f64>,
    m2: ArrayView1<f64>,
    s2: ArrayView2<f64>,
) -> Result<f64, FrechetError> {
    let d = m1.len();
    if m2.len() != d || s1.dim() != (d, d) || s2.dim() != (d, d) {
        return Err(FrechetError::Shape(format!(
            "means of lengths {} and {}, covariances {:?} and {:?}",
            d,
            m2.len(),
            s1.dim(),
            s2.dim()
        )));
    }
    if m1
        .iter()
        .chain(&m2)
        .chain(&s1)
        .chain(&s2)
        .any(|v| !v.is_finite())
    {
        return Err(FrechetError::NotFinite);
    }
    let (a, b) = (to_na(s1), to_na(s2));
    let ra = sqrt_psd(&a);
    let cross = sqrt_psd(&(&ra * &b * &ra));
    let mean = (&m1 - &m2).mapv(|v| v * v).sum();
    Ok(mean + a.trace() + b.trace() - 2.0 * cross.trace())
}

/// The rows' mean and unbiased covariance.
pub fn moments(x: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
    let m = x.mean_axis(Axis(0)).expect("rows");
    let c = &x - &m;
    let cov = c.t().dot(&c) / (x.nrows() as f64 - 1.0);
    (m, cov)
}

/// d² between two sets of feature vectors (one per row), by their means and unbiased
/// covariances. Like the FID it is biased upwards at finite sizes: two samples of one
/// distribution give d² > 0 that shrinks like 1/n, so compare sets of equal size, and report the
/// distance between two real sets of that size (the floor) beside it.
///
/// # Errors
/// [`FrechetError::TooFew`] for a set of fewer than two rows; as [`frechet_gaussians`].
pub fn frechet_distance(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Result<f64, FrechetError> {
    if x.nrows() < 2 {
        return Err(FrechetError::TooFew("the first set"));
    }
    if y.nrows() < 2 {
        return Err(FrechetError::TooFew("the second set"));
    }
    let (m1, s1) = moments(x);
    let (m2, s2) = moments(y);
    frechet_gaussians(m1.view(), s1.view(), m2.view(), s2.view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn gaussian_rows(n: usize, m: &Array1<f64>, l: &Array2<f64>, seed: u64) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let d = m.len();
        let z = Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng));
        z.dot(&l.t()) + m
    }

    /// In 2-D, tr √M = √(tr M + 2√det M) for a PSD 2 × 2 matrix M, and
    /// det(Σ₁^½Σ₂Σ₁^½) = det Σ₁ det Σ₂, tr(Σ₁^½Σ₂Σ₁^½) = tr(Σ₁Σ₂): a closed form for
    /// non-commuting covariances, independent of the eigendecomposition.
    #[test]
    fn two_dimensional_gaussians_match_the_closed_form() {
        let (s1, s2) = (
            array![[2.0, 0.7], [0.7, 1.0]],
            array![[0.5, -0.3], [-0.3, 1.5]],
        );
        let (m1, m2) = (array![0.0, 1.0], array![0.5, -1.0]);
        let det = |s: &Array2<f64>| s[[0, 0]] * s[[1, 1]] - s[[0, 1]] * s[[1, 0]];
        let tr_prod = s1.dot(&s2).diag().sum();
        let tr_root = (tr_prod + 2.0 * (det(&s1) * det(&s2)).sqrt()).sqrt();
        let want = 0.25 + 4.0 + s1.diag().sum() + s2.diag().sum() - 2.0 * tr_root;
        let got = frechet_gaussians(m1.view(), s1.view(), m2.view(), s2.view()).unwrap();
        assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        let back = frechet_gaussians(m2.view(), s2.view(), m1.view(), s1.view()).unwrap();
        assert!((got - back).abs() < 1e-12, "symmetric: {got} vs {back}");
    }

    /// Identical sets give 0; the distance between sets is symmetric; and for samples of two known
    /// Gaussians in 8-D it approaches the Gaussians' distance (20 000 rows each: the finite-sample
    /// bias is about tr Σ₁ + tr Σ₂ over n plus the means' noise, well under 0.05 here).
    #[test]
    fn sample_sets_give_zero_symmetry_and_the_population_value() {
        let d = 8;
        let m1 = Array1::zeros(d);
        let m2 = Array1::from_shape_fn(d, |i| 0.1 * i as f64);
        let l1 = Array2::from_shape_fn((d, d), |(i, j)| {
            if j <= i {
                0.3 + 0.1 * ((i + j) % 3) as f64
            } else {
                0.0
            }
        });
        let l2 = Array2::from_diag(&Array1::from_shape_fn(d, |i| 0.5 + 0.1 * i as f64));
        let x = gaussian_rows(20_000, &m1, &l1, 1);
        let y = gaussian_rows(20_000, &m2, &l2, 2);
        assert!(frechet_distance(x.view(), x.view()).unwrap().abs() < 1e-9);
        let a = frechet_distance(x.view(), y.view()).unwrap();
        let b = frechet_distance(y.view(), x.view()).unwrap();
        assert!((a - b).abs() < 1e-9 * a.abs().max(1.0), "{a} vs {b}");
        let pop = frechet_gaussians(
            m1.view(),
            l1.dot(&l1.t()).view(),
            m2.view(),
            l2.dot(&l2.t()).view(),
        )
        .unwrap();
        assert!((a - pop).abs() < 0.05, "{a} vs {pop}");
        assert!(frechet_distance(x.slice(ndarray::s![..1, ..]), y.view()).is_err());
        let bad = frechet_gaussians(m1.view(), l1.view(), m2.slice(ndarray::s![..3]), l2.view());
        assert!(matches!(bad, Err(FrechetError::Shape(_))));
    }

    /// The distance grows with a known corruption: Gaussian noise of growing sd added to one set.
    #[test]
    fn it_grows_with_added_noise() {
        let d = 6;
        let m = Array1::zeros(d);
        let l = Array2::eye(d) * 0.5;
        let x = gaussian_rows(5000, &m, &l, 3);
        let y = gaussian_rows(5000, &m, &l, 4);
        let mut last = frechet_distance(x.view(), y.view()).unwrap();
        for (k, s) in [0.2, 0.5, 1.0].iter().enumerate() {
            let noise = gaussian_rows(5000, &m, &(Array2::eye(d) * *s), 10 + k as u64);
            let got = frechet_distance(x.view(), (&y + &noise).view()).unwrap();
            // Per coordinate (√(0.25 + s²) − 0.5)², d of them.
            let want = d as f64 * ((0.25 + s * s).sqrt() - 0.5).powi(2);
            assert!(got > last, "sd {s}: {got} ≤ {last}");
            assert!(
                (got - want).abs() < 0.02 + 0.1 * want,
                "sd {s}: {got} vs {want}"
            );
            last = got;
        }
    }
}

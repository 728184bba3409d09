//! Symmetric positive definite matrices, factorised once (nalgebra's Cholesky) and then only applied.
//!
//! A covariance Σ = L Lᵀ is validated and factorised in [`Spd::new`]; afterwards whitening
//! (L⁻¹ r), colouring (L z), the inverse Σ⁻¹, log det Σ and tr Σ⁻¹ cannot fail.

use crate::CoreError;
use nalgebra::DMatrix;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// Relative tolerance of the symmetry check: |Σᵢⱼ − Σⱼᵢ| ≤ 1e-10 · max(1, |Σᵢⱼ|, |Σⱼᵢ|).
pub const SYMMETRY_TOL: f64 = 1e-10;

/// A validated symmetric positive definite matrix with its Cholesky factor.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::linalg::Spd;
/// let s = Spd::new(array![[4.0, 2.0], [2.0, 3.0]], "cov").unwrap();
/// assert!((s.log_det() - 8f64.ln()).abs() < 1e-12);
/// // Σ⁻¹ = [[3, −2], [−2, 4]] / 8
/// assert!((s.trace_inverse() - 7.0 / 8.0).abs() < 1e-12);
/// assert!(Spd::new(array![[1.0, 2.0], [2.0, 1.0]], "cov").is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Spd {
    matrix: Array2<f64>,
    chol: Array2<f64>,
    chol_inv_t: Array2<f64>,
    inverse: Array2<f64>,
    log_det: f64,
}

impl Spd {
    /// Validates (square, finite, symmetric, positive definite) and factorises `matrix`; `what`
    /// names it in errors (e.g. `"cov"`).
    ///
    /// # Errors
    /// [`CoreError::NotSquare`], [`CoreError::NotFinite`], [`CoreError::NotSymmetric`] or
    /// [`CoreError::NotPositiveDefinite`] (with the smallest eigenvalue).
    pub fn new(matrix: Array2<f64>, what: &str) -> Result<Self, CoreError> {
        let (r, c) = matrix.dim();
        if r != c {
            return Err(CoreError::NotSquare {
                what: what.into(),
                rows: r,
                cols: c,
            });
        }
        check_finite_matrix(matrix.view(), what)?;
        for i in 0..r {
            for j in 0..i {
                let (a, b) = (matrix[[i, j]], matrix[[j, i]]);
                if (a - b).abs() > SYMMETRY_TOL * a.abs().max(b.abs()).max(1.0) {
                    return Err(CoreError::NotSymmetric {
                        what: what.into(),
                        row: i,
                        col: j,
                        a,
                        b,
                    });
                }
            }
        }
        let m = DMatrix::from_fn(r, r, |i, j| 0.5 * (matrix[[i, j]] + matrix[[j, i]]));
        let Some(chol) = m.clone().cholesky() else {
            let min_eigenvalue = m.symmetric_eigenvalues().min();
            return Err(CoreError::NotPositiveDefinite {
                what: what.into(),
                min_eigenvalue,
            });
        };
        let l = chol.l();
        let log_det = 2.0 * l.diagonal().iter().map(|v| v.ln()).sum::<f64>();
        let inv = chol.inverse();
        let l_inv = l
            .solve_lower_triangular(&DMatrix::identity(r, r))
            .expect("a Cholesky factor has a positive diagonal");
        let to_nd = |m: &DMatrix<f64>| Array2::from_shape_fn((r, r), |(i, j)| m[(i, j)]);
        Ok(Spd {
            matrix: to_nd(&m),
            chol: to_nd(&l),
            chol_inv_t: to_nd(&l_inv.transpose()),
            inverse: to_nd(&inv),
            log_det,
        })
    }

    /// The dimension d of the d×d matrix.
    pub fn dim(&self) -> usize {
        self.matrix.nrows()
    }
    /// Σ itself (symmetrised).
    pub fn matrix(&self) -> &Array2<f64> {
        &self.matrix
    }
    /// The lower Cholesky factor L, Σ = L Lᵀ.
    pub fn cholesky(&self) -> &Array2<f64> {
        &self.chol
    }
    /// Σ⁻¹.
    pub fn inverse(&self) -> &Array2<f64> {
        &self.inverse
    }
    /// log det Σ.
    pub fn log_det(&self) -> f64 {
        self.log_det
    }
    /// tr Σ⁻¹.
    pub fn trace_inverse(&self) -> f64 {
        self.inverse.diag().sum()
    }
    /// Whitens each row: yᵢ = L⁻¹ rᵢ, so ‖yᵢ‖² = rᵢᵀ Σ⁻¹ rᵢ. `(n, d)` in and out.
    pub fn whiten(&self, r: ArrayView2<f64>) -> Array2<f64> {
        r.dot(&self.chol_inv_t)
    }
    /// Colours each row: xᵢ = L zᵢ, so z ~ N(0, I) gives x ~ N(0, Σ). `(n, d)` in and out.
    pub fn color(&self, z: ArrayView2<f64>) -> Array2<f64> {
        z.dot(&self.chol.t())
    }
    /// Applies Σ⁻¹ to each row: `(n, d)` in and out.
    pub fn solve_rows(&self, r: ArrayView2<f64>) -> Array2<f64> {
        r.dot(&self.inverse)
    }
}

/// Checks every entry of a vector is finite; the error names `what` and the index.
///
/// # Errors
/// [`CoreError::NotFinite`] at the first NaN or infinity.
pub fn check_finite_vector(v: ArrayView1<f64>, what: &str) -> Result<(), CoreError> {
    match v.iter().position(|x| !x.is_finite()) {
        None => Ok(()),
        Some(i) => Err(CoreError::NotFinite {
            what: what.into(),
            index: format!("[{i}]"),
            value: v[i],
        }),
    }
}

/// Checks every entry of a matrix is finite; the error names `what` and the index.
///
/// # Errors
/// [`CoreError::NotFinite`] at the first NaN or infinity.
pub fn check_finite_matrix(m: ArrayView2<f64>, what: &str) -> Result<(), CoreError> {
    match m.indexed_iter().find(|(_, x)| !x.is_finite()) {
        None => Ok(()),
        Some(((i, j), v)) => Err(CoreError::NotFinite {
            what: what.into(),
            index: format!("[{i}, {j}]"),
            value: *v,
        }),
    }
}

/// Row-wise squared norms ‖xᵢ‖², `(n,)`.
///
/// # Examples
/// ```
/// let x = ndarray::array![[3.0, 4.0], [1.0, 0.0]];
/// assert_eq!(scorelab_core::linalg::row_sq_norms(x.view()).to_vec(), vec![25.0, 1.0]);
/// ```
pub fn row_sq_norms(x: ArrayView2<f64>) -> Array1<f64> {
    x.rows().into_iter().map(|r| r.dot(&r)).collect()
}

/// Row-wise dot products xᵢ · yᵢ, `(n,)`.
///
/// # Examples
/// ```
/// let x = ndarray::array![[1.0, 2.0], [0.0, 1.0]];
/// let y = ndarray::array![[3.0, 4.0], [5.0, 6.0]];
/// assert_eq!(scorelab_core::linalg::row_dots(x.view(), y.view()).to_vec(), vec![11.0, 6.0]);
/// ```
pub fn row_dots(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Array1<f64> {
    x.rows()
        .into_iter()
        .zip(y.rows())
        .map(|(a, b)| a.dot(&b))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn factor_reproduces_matrix_and_inverse() {
        let m = array![[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]];
        let s = Spd::new(m.clone(), "cov").unwrap();
        let l = s.cholesky();
        let llt = l.dot(&l.t());
        let eye = m.dot(s.inverse());
        for i in 0..3 {
            for j in 0..3 {
                assert!((llt[[i, j]] - m[[i, j]]).abs() < 1e-14);
                let e = if i == j { 1.0 } else { 0.0 };
                assert!((eye[[i, j]] - e).abs() < 1e-13);
            }
        }
        // whiten ∘ colour = identity
        let z = array![[0.3, -1.2, 2.0]];
        let back = s.whiten(s.color(z.view()).view());
        for j in 0..3 {
            assert!((back[[0, j]] - z[[0, j]]).abs() < 1e-13);
        }
    }

    #[test]
    fn rejects_bad_matrices_with_named_errors() {
        let e = Spd::new(array![[1.0, 0.5], [0.4, 1.0]], "cov").unwrap_err();
        assert!(
            matches!(e, CoreError::NotSymmetric { row: 1, col: 0, .. }),
            "{e}"
        );
        let e = Spd::new(array![[1.0, 2.0], [2.0, 1.0]], "cov").unwrap_err();
        match e {
            CoreError::NotPositiveDefinite { min_eigenvalue, .. } => {
                assert!((min_eigenvalue + 1.0).abs() < 1e-12)
            }
            other => panic!("{other}"),
        }
        let e = Spd::new(array![[f64::NAN]], "cov").unwrap_err();
        assert!(e.to_string().contains("non-finite"), "{e}");
        let e = Spd::new(Array2::zeros((2, 3)), "cov").unwrap_err();
        assert!(matches!(e, CoreError::NotSquare { .. }));
    }
}

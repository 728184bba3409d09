//! Noise schedules shared by multi-level denoising score matching and the annealed samplers.

use crate::ParamError;

/// The geometric schedule σᵢ = σ_max (σ_min/σ_max)^{(i−1)/(L−1)}, i = 1 … L: σ₁ = σ_max > … > σ_L =
/// σ_min, a constant ratio between neighbours (NCSN, Song & Ermon 2019). L = 1 gives \[σ_max\].
///
/// # Examples
/// ```
/// let s = scorelab_core::schedule::geometric(20.0, 1.0, 3)?;
/// assert_eq!(s[0], 20.0);
/// assert!((s[1] - 20f64.sqrt()).abs() < 1e-12);
/// assert_eq!(s[2], 1.0);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
///
/// # Errors
/// Unless 0 < σ_min < σ_max (both finite) and L ≥ 1, naming `sigma_min`, `sigma_max` or `levels`;
/// σ_min = σ_max is allowed only for L = 1.
pub fn geometric(sigma_max: f64, sigma_min: f64, levels: usize) -> Result<Vec<f64>, ParamError> {
    if !(sigma_min > 0.0 && sigma_min.is_finite()) {
        return Err(ParamError::invalid(
            "sigma_min",
            format!("must be positive and finite, got {sigma_min}"),
        ));
    }
    if !(sigma_max.is_finite() && sigma_max >= sigma_min) || (levels > 1 && sigma_max == sigma_min)
    {
        return Err(ParamError::invalid(
            "sigma_max",
            format!("must be finite and greater than sigma_min = {sigma_min}, got {sigma_max}"),
        ));
    }
    if levels == 0 {
        return Err(ParamError::invalid("levels", "must be at least 1"));
    }
    if levels == 1 {
        return Ok(vec![sigma_max]);
    }
    let ratio = (sigma_min / sigma_max).ln() / (levels - 1) as f64;
    Ok((0..levels)
        .map(|i| {
            if i + 1 == levels {
                sigma_min
            } else {
                sigma_max * (ratio * i as f64).exp()
            }
        })
        .collect())
}

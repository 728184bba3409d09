//! Noise schedules shared by multi-level denoising score matching and the annealed samplers.

use crate::ParamError;

/// A range of noise levels σ ∈ \[`min`, `max`\], named so the two ends cannot be swapped: every
/// constructor that takes a σ range (geometric ladders, VE and EDM schedules, annealed Langevin,
/// multi-level and continuous DSM) takes one, and checks it (0 < min < max, both finite; the
/// errors name `sigma_min` and `sigma_max`) as it checks its other parameters.
///
/// ```
/// use scorelab_core::SigmaRange;
/// let r = SigmaRange { min: 0.002, max: 80.0 };
/// assert!(r.check().is_ok() && r.contains(1.0));
/// assert!(SigmaRange::new(80.0, 0.002).unwrap_err().to_string().contains("sigma_max"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SigmaRange {
    /// The smallest σ.
    pub min: f64,
    /// The largest σ.
    pub max: f64,
}

impl SigmaRange {
    /// A checked range.
    ///
    /// # Errors
    /// Unless 0 < min < max, both finite (naming `sigma_min` or `sigma_max`).
    pub fn new(min: f64, max: f64) -> Result<Self, ParamError> {
        let r = SigmaRange { min, max };
        r.check()?;
        Ok(r)
    }

    /// Whether 0 < min < max, both finite; the error names `sigma_min` or `sigma_max`.
    ///
    /// # Errors
    /// As [`SigmaRange::new`].
    pub fn check(&self) -> Result<(), ParamError> {
        crate::error::noise_level(self.min, "sigma_min")?;
        crate::error::noise_level(self.max, "sigma_max")?;
        if self.max <= self.min {
            return Err(ParamError::invalid(
                "sigma_max",
                format!(
                    "must be finite and greater than sigma_min = {}, got {}",
                    self.min, self.max
                ),
            ));
        }
        Ok(())
    }

    /// Whether min ≤ σ ≤ max.
    pub fn contains(&self, sigma: f64) -> bool {
        self.min <= sigma && sigma <= self.max
    }
}

/// The geometric schedule σᵢ = σ_max (σ_min/σ_max)^{(i−1)/(L−1)}, i = 1 … L: σ₁ = σ_max > … > σ_L =
/// σ_min, a constant ratio between neighbours (NCSN, Song & Ermon 2019). L = 1 gives \[σ_max\].
///
/// # Examples
/// ```
/// use scorelab_core::SigmaRange;
/// let s = scorelab_core::schedule::geometric(SigmaRange { min: 1.0, max: 20.0 }, 3)?;
/// assert_eq!(s[0], 20.0);
/// assert!((s[1] - 20f64.sqrt()).abs() < 1e-12);
/// assert_eq!(s[2], 1.0);
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
///
/// # Errors
/// Unless 0 < σ_min < σ_max (both finite) and L ≥ 1, naming `sigma_min`, `sigma_max` or `levels`;
/// σ_min = σ_max is allowed only for L = 1.
pub fn geometric(range: SigmaRange, levels: usize) -> Result<Vec<f64>, ParamError> {
    let SigmaRange {
        min: sigma_min,
        max: sigma_max,
    } = range;
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

//! Densities as configs spell them: [`DensitySpec`], the serde form of every analytic density of
//! `scorelab_densities`, validated by the density's own constructor.
//!
//! ```
//! use scorelab_pipeline::spec::DensitySpec;
//! let spec: DensitySpec = toml::from_str("kind = \"half_normal\"\nscale = 2.0").unwrap();
//! assert_eq!(spec.kind(), "half_normal");
//! assert!(spec.build().is_ok());
//! let bad: DensitySpec = toml::from_str("kind = \"half_normal\"\nscale = -2.0").unwrap();
//! assert_eq!(bad.build().unwrap_err().to_string(), "scale: must be a finite number > 0, got -2");
//! ```

use crate::error::{PipelineError, Result};
use ndarray::{Array1, Array2};
use scorelab_densities::{AnyDensity, Banana, Gaussian, GaussianMixture, HalfNormal, StudentT};
use serde::{Deserialize, Serialize};

/// A density as the config spells it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DensitySpec {
    /// N(mean, cov).
    Gaussian {
        /// μ.
        mean: Vec<f64>,
        /// Σ, rows.
        cov: Vec<Vec<f64>>,
    },
    /// Σₖ weights\[k\] N(means\[k\], covs\[k\]).
    GaussianMixture {
        /// wₖ, summing to 1.
        weights: Vec<f64>,
        /// μₖ.
        means: Vec<Vec<f64>>,
        /// Σₖ, rows.
        covs: Vec<Vec<Vec<f64>>>,
    },
    /// Haario's banana.
    Banana {
        /// Scale a > 0.
        a: f64,
        /// Curvature b.
        b: f64,
    },
    /// Multivariate Student-t.
    StudentT {
        /// Location.
        mean: Vec<f64>,
        /// Scale matrix S, rows.
        scale: Vec<Vec<f64>>,
        /// Degrees of freedom ν > 4.
        nu: f64,
    },
    /// Half-normal on [0, ∞).
    HalfNormal {
        /// Scale s > 0.
        scale: f64,
    },
    /// N(0, I) in `dim` dimensions (a Gaussian without writing out I).
    StandardNormal {
        /// D ≥ 1.
        dim: usize,
    },
    /// K well-separated anisotropic Gaussians in D, drawn from `seed`
    /// ([`scorelab_densities::random::separated_mixture`]): the same seed is the same mixture.
    SeparatedMixture {
        /// D ≥ 1.
        dim: usize,
        /// K ≥ 1.
        components: usize,
        /// The seed of its `ChaCha8Rng`.
        seed: u64,
    },
}

impl DensitySpec {
    /// The kind as the config spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            DensitySpec::Gaussian { .. } => "gaussian",
            DensitySpec::GaussianMixture { .. } => "gaussian_mixture",
            DensitySpec::Banana { .. } => "banana",
            DensitySpec::StudentT { .. } => "student_t",
            DensitySpec::HalfNormal { .. } => "half_normal",
            DensitySpec::StandardNormal { .. } => "standard_normal",
            DensitySpec::SeparatedMixture { .. } => "separated_mixture",
        }
    }

    /// Validates the spec into a density; errors name the field (`cov`, `covs[1]`, …).
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming the field and what would be valid.
    pub fn build(&self) -> Result<AnyDensity> {
        let d: AnyDensity = match self {
            DensitySpec::Gaussian { mean, cov } => {
                Gaussian::new(Array1::from(mean.clone()), matrix(cov, "cov")?)?.into()
            }
            DensitySpec::GaussianMixture {
                weights,
                means,
                covs,
            } => {
                let covs = covs
                    .iter()
                    .enumerate()
                    .map(|(k, c)| matrix(c, &format!("covs[{k}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let means = means.iter().map(|m| Array1::from(m.clone())).collect();
                GaussianMixture::new(Array1::from(weights.clone()), means, covs)?.into()
            }
            DensitySpec::Banana { a, b } => Banana::new(*a, *b)?.into(),
            DensitySpec::StudentT { mean, scale, nu } => {
                StudentT::new(Array1::from(mean.clone()), matrix(scale, "scale")?, *nu)?.into()
            }
            DensitySpec::HalfNormal { scale } => HalfNormal::new(*scale)?.into(),
            DensitySpec::StandardNormal { dim } => {
                if *dim == 0 {
                    return Err(PipelineError::invalid("dim", "must be at least 1"));
                }
                crate::memory::check(
                    crate::memory::density_bytes(*dim),
                    crate::memory::MemoryLimit::from_env().unwrap_or_default(),
                    || format!("dim: a {dim}-dimensional standard_normal (full covariance)"),
                    "lower dim",
                )?;
                Gaussian::standard(*dim).into()
            }
            DensitySpec::SeparatedMixture {
                dim,
                components,
                seed,
            } => {
                if *dim == 0 {
                    return Err(PipelineError::invalid("dim", "must be at least 1"));
                }
                if *components == 0 {
                    return Err(PipelineError::invalid("components", "must be at least 1"));
                }
                crate::memory::check(
                    crate::memory::density_bytes(*dim).saturating_mul(*components as u64),
                    crate::memory::MemoryLimit::from_env().unwrap_or_default(),
                    || format!("dim, components: {components} dense {dim} × {dim} covariances"),
                    "lower dim or components",
                )?;
                let mut rng = <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(*seed);
                scorelab_densities::random::separated_mixture(*dim, *components, &mut rng).into()
            }
        };
        Ok(d)
    }
}

/// Rows → a matrix; ragged rows are an error naming `field`.
pub(crate) fn matrix(rows: &[Vec<f64>], field: &str) -> Result<Array2<f64>> {
    let r = rows.len();
    let c = rows.first().map_or(0, Vec::len);
    if r == 0 || c == 0 {
        return Err(PipelineError::invalid(
            field,
            "the matrix is empty; give its rows as [[…], […]]",
        ));
    }
    if let Some(i) = rows.iter().position(|row| row.len() != c) {
        return Err(PipelineError::invalid(
            field,
            format!(
                "row {i} has {} entries but row 0 has {c}; every row needs the same length",
                rows[i].len()
            ),
        ));
    }
    Ok(Array2::from_shape_vec((r, c), rows.concat()).expect("rectangular"))
}

/// The density kinds, as configs spell them: the list every error message shows.
pub const DENSITY_KINDS: &[&str] = &[
    "gaussian",
    "gaussian_mixture",
    "banana",
    "student_t",
    "half_normal",
    "standard_normal",
    "separated_mixture",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind the error messages list is one serde parses (its error, with no other keys, is a
    /// missing field, not an unknown variant), and an unknown kind is refused with the list.
    #[test]
    fn the_listed_kinds_are_the_parsed_kinds() {
        for kind in DENSITY_KINDS {
            let e = toml::from_str::<DensitySpec>(&format!("kind = {kind:?}")).unwrap_err();
            assert!(e.to_string().contains("missing field"), "{kind}: {e}");
        }
        let e = toml::from_str::<DensitySpec>("kind = \"cauchy\"").unwrap_err();
        for kind in DENSITY_KINDS {
            assert!(e.to_string().contains(kind), "{kind} not in {e}");
        }
    }
}

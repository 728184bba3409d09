//! Denoising score matching over a continuous noise level σ̃ (the objective every diffusion
//! schedule trains with), its σ̃ distributions and its weightings.
//!
//! The per-sample loss is λ(σ̃) ½‖s_θ(x̃, σ̃) + ε/σ̃‖² with x̃ = x + σ̃ε, ε ∼ N(0, I) and σ̃ drawn from
//! a distribution p(σ̃) on \[σ_min, σ_max\]; written with c(σ̃) = λ(σ̃)/σ̃² it is
//! ½ c(σ̃) ‖σ̃ s_θ + ε‖², whose scale does not depend on σ̃ when c = 1. Its minimiser is the score of
//! p_σ̃ = p ∗ N(0, σ̃²I) at every σ̃ the distribution covers (Vincent 2011, one σ̃ at a time), so one
//! network s_θ(y, σ̃) serves every diffusion schedule (their marginals α(x₀ + σ̃z) are p_σ̃ scaled
//! by α).
//!
//! **σ̃ distributions.** `log_uniform`: ln σ̃ ∼ U(ln σ_min, ln σ_max) (NCSN's geometric levels in the
//! continuum; the VE SDE's t ∼ U(0, 1)). `log_normal`: ln σ̃ ∼ N(P_mean, P_std²) truncated to
//! \[σ_min, σ_max\] (Karras et al. 2022, §5: P_mean = −1.2, P_std = 1.2), drawn by rejection.
//!
//! **Weightings** λ(σ̃), in score units:
//! - `sigma2`: λ = σ̃² (NCSN, Song & Ermon 2019), c = 1;
//! - `edm`: λ = σ̃²(σ̃² + σ_d²)/σ_d², c = (σ̃² + σ_d²)/σ_d²: Karras et al.'s λ(σ) = (σ² + σ_d²)/(σσ_d)²
//!   on ‖D_θ − x‖² = σ̃⁴‖s_θ + ε/σ̃‖² (D = x̃ + σ̃² s);
//! - `likelihood`: Song et al.'s (2021b) λ(t) = g(t)², under which the loss over t ∼ U(t_min, 1)
//!   bounds the negative log-likelihood. In the kernel's variables y = x/α it does not depend on the
//!   schedule: ∇ₓlog p_t = s(y, σ̃)/α and the conditional score is −ε/(ασ̃), so
//!   g² ‖∇ₓlog p_t − ∇ₓlog p(x_t|x₀)‖² dt = (g²/α²) ‖s + ε/σ̃‖² dt = 2σ̃σ̃̇ ‖s + ε/σ̃‖² dt
//!   = 2σ̃ ‖s + ε/σ̃‖² dσ̃ (g² = 2α²σ̃σ̃̇). Drawing σ̃ from p(σ̃) instead, the importance weight is
//!   λ(σ̃) ∝ σ̃/p(σ̃); normalised by 1/ln(σ_max/σ_min) it is c = 1/(σ̃ p(σ̃) ln(σ_max/σ_min)): exactly
//!   `sigma2` under `log_uniform` (the VE SDE's known coincidence, now for every schedule), and
//!   a weight growing where the log-normal puts little mass.
//!
//! # Examples
//! ```
//! use scorelab_objectives::continuous::{ContinuousDsm, SigmaDistribution, Weighting};
//! let o = ContinuousDsm::new(scorelab_core::SigmaRange { min: 0.01, max: 100.0 }, SigmaDistribution::LogUniform, Weighting::Likelihood)?;
//! // Under the log-uniform distribution the likelihood weighting is λ = σ̃² (c = 1).
//! assert!((o.weight(0.3) - 1.0).abs() < 1e-12 && (o.weight(50.0) - 1.0).abs() < 1e-12);
//! let edm = ContinuousDsm::new(scorelab_core::SigmaRange { min: 0.002, max: 80.0 }, SigmaDistribution::LogNormal { p_mean: -1.2, p_std: 1.2 },
//!                              Weighting::Edm { sigma_data: 0.5 })?;
//! assert_eq!(edm.weight(0.5), 2.0);
//! # Ok::<(), scorelab_core::ParamError>(())
//! ```

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_core::ParamError;

/// The distribution of σ̃ (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SigmaDistribution {
    /// ln σ̃ ∼ U(ln σ_min, ln σ_max).
    LogUniform,
    /// ln σ̃ ∼ N(P_mean, P_std²), truncated to \[σ_min, σ_max\].
    LogNormal {
        /// P_mean.
        p_mean: f64,
        /// P_std > 0.
        p_std: f64,
    },
    /// The linear path's t ∼ U(t_min, t_max) with σ̃ = t/(1 − t) (flow matching): the range's
    /// ends are σ̃(t_min) and σ̃(t_max), and p(σ̃) = 1/((1 + σ̃)² (t_max − t_min)).
    LinearPath,
}

/// How a batch's noise is paired with its data points (flow matching).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Coupling {
    /// Independent draws (the conditional flow-matching objective).
    #[default]
    Independent,
    /// The minibatch optimal-transport coupling (Tong et al. 2023; Pooladian et al. 2023): the
    /// batch's ε permuted to minimise Σᵢ ‖xᵢ − ε_π(i)‖², an exact assignment per batch.
    Ot,
}

/// A coupling's name as configs spell it; an unknown one is an error naming the key `coupling`
/// (inside an objective table serde cannot say which key failed, so the message does).
impl TryFrom<String> for Coupling {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "independent" => Ok(Coupling::Independent),
            "ot" => Ok(Coupling::Ot),
            other => Err(format!(
                "coupling: unknown coupling {other:?}; use independent or ot"
            )),
        }
    }
}

/// The weighting λ(σ̃) (module docs).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weighting {
    /// λ = σ̃².
    Sigma2,
    /// λ = σ̃²(σ̃² + σ_d²)/σ_d².
    Edm {
        /// σ_d > 0, the data's standard deviation in model units.
        sigma_data: f64,
    },
    /// λ = g(t)², as an importance weight over the σ̃ distribution.
    Likelihood,
    /// λ = σ̃²(σ̃² + σ_d²)/σ_d² with σ_d the training data's standard deviation, not known yet: a
    /// config's `lambda = "edm"` without `sigma_data`. [`ContinuousDsm::with_data_sigma`] resolves
    /// it before training ([`crate::taped::Objective::validate`] refuses it unresolved).
    EdmOfData,
    /// Flow matching on the linear path x_t = (1 − t)x₀ + tε: c = (1 + σ̃)², so the per-sample
    /// loss ½ c ‖σ̃ s_θ + ε‖² is ½‖v_θ − (ε − x₀)‖² with the velocity v_θ = −y − σ̃(1 + σ̃) s_θ
    /// of the network's score s_θ(y, σ̃) at y = x_t/(1 − t) (module docs).
    FlowMatching,
}

/// Continuous-σ̃ denoising score matching: a validated σ range, distribution and weighting.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ContinuousDsm {
    sigma_min: f64,
    sigma_max: f64,
    distribution: SigmaDistribution,
    weighting: Weighting,
    /// The truncated log-normal's mass in range, Φ(b) − Φ(a) (1 for log-uniform).
    mass: f64,
    coupling: Coupling,
    /// Flow matching: (t_min, t_max) as given.
    t_range: Option<(f64, f64)>,
}

fn phi(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Φ(b) − Φ(a), the standard normal's mass in [a, b] (from the nearer tail, so that a range far
/// out keeps its relative precision).
fn normal_mass(a: f64, b: f64) -> f64 {
    use statrs::distribution::{ContinuousCDF, Normal};
    let n = Normal::standard();
    let m = if a > 0.0 {
        n.cdf(-a) - n.cdf(-b)
    } else {
        n.cdf(b) - n.cdf(a)
    };
    m.max(0.0)
}

impl ContinuousDsm {
    /// σ̃ ∈ \[σ_min, σ_max\] from `distribution`, weighted by `weighting`.
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max (`sigma_min`, `sigma_max`), P_std > 0 and P_mean finite
    /// (`p_std`, `p_mean`), the log-normal puts at least 1e-6 of its mass in range (`p_mean`),
    /// and σ_d > 0 (`sigma_data`).
    pub fn new(
        range: scorelab_core::SigmaRange,
        distribution: SigmaDistribution,
        weighting: Weighting,
    ) -> Result<Self, ParamError> {
        if distribution == SigmaDistribution::LinearPath || weighting == Weighting::FlowMatching {
            return Err(ParamError::invalid(
                "distribution",
                "the linear path and its flow-matching weighting go together: use ContinuousDsm::flow_matching (objective.kind = \"flow_matching\")",
            ));
        }
        Self::checked(range, distribution, weighting)
    }

    fn checked(
        range: scorelab_core::SigmaRange,
        distribution: SigmaDistribution,
        weighting: Weighting,
    ) -> Result<Self, ParamError> {
        let scorelab_core::SigmaRange {
            min: sigma_min,
            max: sigma_max,
        } = range;
        scorelab_core::error::noise_level(sigma_min, "sigma_min")?;
        scorelab_core::error::noise_level(sigma_max, "sigma_max")?;
        if !(sigma_max.is_finite() && sigma_max > sigma_min) {
            return Err(ParamError::invalid(
                "sigma_max",
                format!("must be finite and greater than sigma_min = {sigma_min}, got {sigma_max}"),
            ));
        }
        let mass = match distribution {
            SigmaDistribution::LogUniform | SigmaDistribution::LinearPath => 1.0,
            SigmaDistribution::LogNormal { p_mean, p_std } => {
                scorelab_core::error::positive(p_std, "p_std")?;
                if !p_mean.is_finite() {
                    return Err(ParamError::invalid(
                        "p_mean",
                        format!("must be finite, got {p_mean}"),
                    ));
                }
                let z = |s: f64| (s.ln() - p_mean) / p_std;
                let mass = normal_mass(z(sigma_min), z(sigma_max));
                if mass < 1e-6 {
                    return Err(ParamError::invalid(
                        "p_mean",
                        format!("the log-normal N({p_mean}, {p_std}²) puts {mass:e} of its mass in [ln sigma_min, ln sigma_max]; move p_mean into that range"),
                    ));
                }
                mass
            }
        };
        if let Weighting::Edm { sigma_data } = weighting {
            scorelab_core::error::positive(sigma_data, "sigma_data")?;
        }
        Ok(ContinuousDsm {
            sigma_min,
            sigma_max,
            distribution,
            weighting,
            mass,
            coupling: Coupling::Independent,
            t_range: None,
        })
    }

    /// Conditional flow matching on the linear path x_t = (1 − t)x₀ + tε with t ∼ U(t_min, t_max)
    /// (Lipman et al. 2023; Liu et al. 2023): continuous DSM with the [`SigmaDistribution::LinearPath`]
    /// distribution and the [`Weighting::FlowMatching`] weighting, whose per-sample loss is
    /// ½‖v_θ(x_t, t) − (ε − x₀)‖² exactly, and the batch's pairs drawn by `coupling`.
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::continuous::{ContinuousDsm, Coupling};
    /// let fm = ContinuousDsm::flow_matching(1e-3, 0.999, Coupling::Ot)?;
    /// assert!((fm.sigma_max() - 999.0).abs() < 1e-9 && fm.coupling() == Coupling::Ot);
    /// assert_eq!(fm.weight(1.0), 4.0); // (1 + σ̃)²
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    ///
    /// # Errors
    /// Unless 0 < t_min < t_max < 1 (naming `t_min` or `t_max`).
    pub fn flow_matching(t_min: f64, t_max: f64, coupling: Coupling) -> Result<Self, ParamError> {
        if !(t_min.is_finite() && t_min > 0.0 && t_min < 1.0) {
            return Err(ParamError::invalid(
                "t_min",
                format!("must lie strictly between 0 and 1, got {t_min}"),
            ));
        }
        if !(t_max.is_finite() && t_max > t_min && t_max < 1.0) {
            return Err(ParamError::invalid(
                "t_max",
                format!("must lie strictly between t_min = {t_min} and 1, got {t_max}"),
            ));
        }
        let sigma = |t: f64| t / (1.0 - t);
        let mut c = ContinuousDsm::checked(
            scorelab_core::SigmaRange {
                min: sigma(t_min),
                max: sigma(t_max),
            },
            SigmaDistribution::LinearPath,
            Weighting::FlowMatching,
        )?;
        c.coupling = coupling;
        c.t_range = Some((t_min, t_max));
        Ok(c)
    }

    /// Flow matching's (t_min, t_max); `None` for the other weightings.
    pub fn t_range(&self) -> Option<(f64, f64)> {
        self.t_range
    }

    /// How the batch's noise is paired with its points.
    pub fn coupling(&self) -> Coupling {
        self.coupling
    }

    /// Whether this is flow matching on the linear path.
    pub fn is_flow_matching(&self) -> bool {
        self.weighting == Weighting::FlowMatching
    }

    /// σ_min.
    pub fn sigma_min(&self) -> f64 {
        self.sigma_min
    }

    /// σ_max.
    pub fn sigma_max(&self) -> f64 {
        self.sigma_max
    }

    /// The σ̃ distribution.
    pub fn distribution(&self) -> SigmaDistribution {
        self.distribution
    }

    /// The weighting.
    pub fn weighting(&self) -> Weighting {
        self.weighting
    }

    /// The density p(σ̃) of the σ̃ distribution on \[σ_min, σ_max\].
    pub fn density(&self, sigma: f64) -> f64 {
        match self.distribution {
            SigmaDistribution::LogUniform => 1.0 / (sigma * (self.sigma_max / self.sigma_min).ln()),
            SigmaDistribution::LogNormal { p_mean, p_std } => {
                phi((sigma.ln() - p_mean) / p_std) / (sigma * p_std * self.mass)
            }
            SigmaDistribution::LinearPath => {
                let t = |s: f64| s / (1.0 + s);
                1.0 / ((1.0 + sigma).powi(2) * (t(self.sigma_max) - t(self.sigma_min)))
            }
        }
    }

    /// The same objective with σ_d = `sigma_data` where the weighting is
    /// [`Weighting::EdmOfData`]; unchanged otherwise.
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::continuous::{ContinuousDsm, SigmaDistribution, Weighting};
    /// let o = ContinuousDsm::new(scorelab_core::SigmaRange { min: 0.002, max: 80.0 },
    ///                            SigmaDistribution::LogUniform, Weighting::EdmOfData)?;
    /// assert_eq!(o.with_data_sigma(0.5)?.weighting(), Weighting::Edm { sigma_data: 0.5 });
    /// # Ok::<(), scorelab_core::ParamError>(())
    /// ```
    ///
    /// # Errors
    /// [`ParamError`] naming `sigma_data` unless it is finite and > 0.
    pub fn with_data_sigma(&self, sigma_data: f64) -> Result<Self, ParamError> {
        match self.weighting {
            Weighting::EdmOfData => ContinuousDsm::checked(
                scorelab_core::SigmaRange {
                    min: self.sigma_min,
                    max: self.sigma_max,
                },
                self.distribution,
                Weighting::Edm { sigma_data },
            ),
            _ => Ok(*self),
        }
    }

    /// c(σ̃) = λ(σ̃)/σ̃²: the per-sample loss is ½ c ‖σ̃ s_θ + ε‖² (module docs).
    ///
    /// # Panics
    /// For [`Weighting::EdmOfData`], whose σ_d is not known yet ([`ContinuousDsm::with_data_sigma`]).
    pub fn weight(&self, sigma: f64) -> f64 {
        match self.weighting {
            Weighting::EdmOfData => {
                panic!("the EDM weighting's sigma_data is not resolved; call with_data_sigma first")
            }
            Weighting::Sigma2 => 1.0,
            Weighting::Edm { sigma_data } => {
                (sigma * sigma + sigma_data * sigma_data) / (sigma_data * sigma_data)
            }
            Weighting::Likelihood => match self.distribution {
                SigmaDistribution::LogUniform => 1.0,
                SigmaDistribution::LogNormal { .. } | SigmaDistribution::LinearPath => {
                    1.0 / (sigma * self.density(sigma) * (self.sigma_max / self.sigma_min).ln())
                }
            },
            Weighting::FlowMatching => (1.0 + sigma) * (1.0 + sigma),
        }
    }

    /// One σ̃: log-uniform from one uniform draw; truncated log-normal by rejection of N(0, 1)
    /// draws (at most 10 000; the mass in range is ≥ 1e-6, so more is a 1 − (1 − 1e-6)^10⁴ ≈ 1%
    /// event only at that extreme, and then the range's nearer end is returned).
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        let (lo, hi) = (self.sigma_min.ln(), self.sigma_max.ln());
        match self.distribution {
            SigmaDistribution::LogUniform => {
                let u: f64 = rng.gen();
                (lo + u * (hi - lo))
                    .exp()
                    .clamp(self.sigma_min, self.sigma_max)
            }
            SigmaDistribution::LogNormal { p_mean, p_std } => {
                let mut v = p_mean;
                for _ in 0..10_000 {
                    let z: f64 = StandardNormal.sample(rng);
                    v = p_mean + p_std * z;
                    if (lo..=hi).contains(&v) {
                        return v.exp();
                    }
                }
                v.clamp(lo, hi).exp()
            }
            SigmaDistribution::LinearPath => {
                let t = |s: f64| s / (1.0 + s);
                let (a, b) = (t(self.sigma_min), t(self.sigma_max));
                let u: f64 = rng.gen();
                let tt = a + u * (b - a);
                (tt / (1.0 - tt)).clamp(self.sigma_min, self.sigma_max)
            }
        }
    }
}

//! Taped training losses: every objective as dfdx ops on a [`Network`], so that one `backward()`
//! gives ∇_θ of the loss, JVP and trace terms included (no double backward: the networks write
//! their Jacobian–vector products as ordinary taped ops, docs/ARCHITECTURE.md, "Jacobian traces").
//!
//! | [`Objective`] | per-sample loss ℓ(x) (the loss is the batch mean) | randomness |
//! | --- | --- | --- |
//! | `esm` | ½‖s_θ(x) − ∇log p(x)‖² | none (needs the true score) |
//! | `ism` | ½‖s_θ(x)‖² + tr ∇ₓs_θ(x), exact trace (naive or structured) | none |
//! | `ssm` | (1/K) Σₖ [½(vₖᵀs_θ(x))² + vₖᵀ∇ₓs_θ(x)vₖ] | K probes vₖ |
//! | `ssm_vr` | ½‖s_θ(x)‖² + (1/K) Σₖ vₖᵀ∇ₓs_θ(x)vₖ (Hutchinson's estimate of ISM) | K probes vₖ |
//! | `dsm` | ½‖s_θ(x̃) + ε/σ‖², x̃ = x + σε | ε ∼ N(0, I) |
//! | `dsm_multi` | ½σᵢ²‖s_θ(x̃, σᵢ) + ε/σᵢ‖² = ½‖σᵢ s_θ(x̃, σᵢ) + ε‖², x̃ = x + σᵢε | a level i per sample, ε |
//! | `dsm_continuous` | ½c(σ̃)‖σ̃ s_θ(x̃, σ̃) + ε‖², c = λ(σ̃)/σ̃² ([`crate::continuous`]) | a σ̃ per sample, ε |
//!
//! Probes are Gaussian (N(0, I)) or Rademacher (±1 each with probability ½); both have
//! E\[vvᵀ\] = I, so E_v\[vᵀJv\] = tr J and E_v\[½(vᵀs)²\] = ½‖s‖²: SSM and SSM-VR are unbiased for ISM
//! (Song, Garg, Shi & Ermon 2019, "Sliced score matching"). DSM (Vincent 2011) equals ESM on
//! p_σ = p ∗ N(0, σ²I) plus a constant, so it fits p_σ, not p. `dsm_multi` uses the geometric
//! schedule σ₁ = σ_max > … > σ_L = σ_min and λ(σ) = σ² (Song & Ermon 2019, NCSN), one level per
//! sample drawn uniformly.
//!
//! # Randomness
//! [`Noise::draw`] takes the RNG and draws, in this order: SSM/SSM-VR the `(B, K, D)` probes
//! row-major; DSM the `(B, D)` ε row-major; multi-σ DSM the B level indices, then ε; continuous
//! DSM the B σ̃'s ([`ContinuousDsm::draw`]), then ε. The loss
//! itself ([`loss_terms`]) is deterministic given the noise, which is what the finite-difference
//! tests in θ rely on.

use crate::continuous::ContinuousDsm;
use dfdx::prelude::*;
use ndarray::ArrayView2;
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use scorelab_models::net::{tensor1, tensor2, Dev, Real, Taped, T1};
use scorelab_models::{Bound, Network, Tangents, TraceMethod};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The distribution of the SSM probes v (one type with the likelihood's Hutchinson probes).
pub use scorelab_core::probe::Probe;

/// A score-matching training objective (module docs). It is its own config: a TOML
/// `[objective]` table (`kind = "dsm_multi"`, `sigma_max = 10.0`, …; every key and default in
/// docs/reference.md) deserialises through the same validating constructors as the Rust calls.
///
/// # Examples
/// ```
/// use scorelab_objectives::taped::Objective;
/// let o: Objective = toml::from_str("kind = \"ssm\"\nprobe = \"gaussian\"")?;
/// assert_eq!(o, Objective::ssm(1, scorelab_objectives::taped::Probe::Gaussian)?);
/// let bad = toml::from_str::<Objective>("kind = \"dsm\"\nsigma = -1.0").unwrap_err();
/// assert!(bad.message().starts_with("sigma: must be a finite number > 0"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// ```
/// use scorelab_objectives::taped::Objective;
/// let o = Objective::dsm_multi(scorelab_core::SigmaRange { min: 1.0, max: 20.0 }, 10)?;
/// let Objective::DsmMulti { sigmas } = &o else { unreachable!() };
/// assert_eq!(sigmas.len(), 10);
/// assert!((sigmas[0] - 20.0).abs() < 1e-12 && (sigmas[9] - 1.0).abs() < 1e-12);
/// assert_eq!(o.id(), "dsm_multi");
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    try_from = "crate::config::ObjectiveDef",
    into = "crate::config::ObjectiveDef"
)]
pub enum Objective {
    /// Explicit score matching against the true score.
    Esm,
    /// Implicit score matching with the exact trace.
    Ism {
        /// How the trace is computed.
        trace: TraceMethod,
    },
    /// Sliced score matching.
    Ssm {
        /// K, probes per point.
        projections: usize,
        /// The probe distribution.
        probe: Probe,
    },
    /// Sliced score matching with the variance-reduced ½‖s‖².
    SsmVr {
        /// K, probes per point.
        projections: usize,
        /// The probe distribution.
        probe: Probe,
    },
    /// Denoising score matching at one σ.
    Dsm {
        /// σ.
        sigma: f64,
    },
    /// Multi-level denoising score matching, λ(σ) = σ².
    DsmMulti {
        /// The levels σ₁ > … > σ_L.
        sigmas: Vec<f64>,
    },
    /// Denoising score matching over a continuous σ̃ ([`ContinuousDsm`]).
    DsmContinuous(ContinuousDsm),
}

impl Objective {
    /// Explicit score matching (needs the true score of an analytic density).
    pub fn esm() -> Self {
        Objective::Esm
    }

    /// Implicit score matching with the exact trace computed by `trace`.
    pub fn ism(trace: TraceMethod) -> Self {
        Objective::Ism { trace }
    }

    /// Sliced score matching with `projections` probes per point.
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming `projections` if it is 0.
    pub fn ssm(projections: usize, probe: Probe) -> Result<Self, scorelab_core::ParamError> {
        let o = Objective::Ssm { projections, probe };
        o.validate()?;
        Ok(o)
    }

    /// Variance-reduced sliced score matching with `projections` probes per point.
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming `projections` if it is 0.
    pub fn ssm_vr(projections: usize, probe: Probe) -> Result<Self, scorelab_core::ParamError> {
        let o = Objective::SsmVr { projections, probe };
        o.validate()?;
        Ok(o)
    }

    /// Denoising score matching at noise level σ.
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::taped::Objective;
    /// assert!(Objective::dsm(0.1).is_ok());
    /// assert_eq!(Objective::dsm(0.0).unwrap_err().to_string(),
    ///            "sigma: must be a finite number > 0, got 0");
    /// ```
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming `sigma` unless σ is finite and > 0.
    pub fn dsm(sigma: f64) -> Result<Self, scorelab_core::ParamError> {
        let o = Objective::Dsm { sigma };
        o.validate()?;
        Ok(o)
    }

    /// EDM's training objective (Karras et al. 2022): denoising score matching over a continuous
    /// σ̃ with ln σ̃ ∼ N(−1.2, 1.2²) truncated to \[0.002, 80\] and the weight
    /// λ = σ̃²(σ̃² + σ_d²)/σ_d², σ_d the training data's standard deviation
    /// ([`Weighting::EdmOfData`](crate::continuous::Weighting::EdmOfData), resolved by
    /// [`Objective::with_data_sigma`] when training starts).
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::taped::Objective;
    /// assert_eq!(Objective::edm().sigma_range(), Some((0.002, 80.0)));
    /// assert!(Objective::edm().validate().is_err()); // σ_d not resolved yet
    /// assert!(Objective::edm().with_data_sigma(0.5).unwrap().validate().is_ok());
    /// ```
    pub fn edm() -> Self {
        Objective::DsmContinuous(
            ContinuousDsm::new(
                scorelab_core::SigmaRange {
                    min: crate::config::default_continuous_sigma_min(),
                    max: crate::config::default_continuous_sigma_max(),
                },
                crate::continuous::SigmaDistribution::LogNormal {
                    p_mean: crate::config::EDM_P_MEAN,
                    p_std: crate::config::EDM_P_STD,
                },
                crate::continuous::Weighting::EdmOfData,
            )
            .expect("EDM's constants are valid"),
        )
    }

    /// The same objective with σ_d = `sigma_data` where it is the data's and not yet known
    /// ([`ContinuousDsm::with_data_sigma`]); unchanged otherwise.
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming `sigma_data` unless it is finite and > 0.
    pub fn with_data_sigma(&self, sigma_data: f64) -> Result<Self, scorelab_core::ParamError> {
        match self {
            Objective::DsmContinuous(c) => {
                Ok(Objective::DsmContinuous(c.with_data_sigma(sigma_data)?))
            }
            other => Ok(other.clone()),
        }
    }

    /// Whether σ_d is the data's and not yet known ([`Objective::with_data_sigma`] resolves it).
    pub fn needs_data_sigma(&self) -> bool {
        matches!(self, Objective::DsmContinuous(c) if c.weighting() == crate::continuous::Weighting::EdmOfData)
    }

    /// Checks the parameters the constructors check, for an objective written as a variant
    /// literal: σ finite and > 0, at least one projection, levels positive, finite and decreasing.
    /// [`crate::training::Trainer::new`] calls it, so no invalid objective reaches a loss.
    ///
    /// # Errors
    /// [`scorelab_core::ParamError`] naming the field.
    pub fn validate(&self) -> Result<(), scorelab_core::ParamError> {
        use scorelab_core::ParamError;
        match self {
            Objective::Esm | Objective::Ism { .. } => Ok(()),
            Objective::Ssm { projections, .. } | Objective::SsmVr { projections, .. } => {
                if *projections == 0 {
                    Err(ParamError::invalid("projections", "must be at least 1"))
                } else {
                    Ok(())
                }
            }
            Objective::Dsm { sigma } => noise_level(*sigma, "sigma"),
            // Validated by its constructor, but σ_d may be the data's, not known yet.
            Objective::DsmContinuous(c) => match c.weighting() {
                crate::continuous::Weighting::EdmOfData => Err(ParamError::invalid(
                    "sigma_data",
                    "is the data's standard deviation, not resolved yet; call Objective::with_data_sigma with it",
                )),
                _ => Ok(()),
            },
            Objective::DsmMulti { sigmas } => {
                if sigmas.len() < 2 {
                    return Err(ParamError::invalid(
                        "levels",
                        "must be at least 2 (one level is dsm with that sigma)",
                    ));
                }
                for s in sigmas {
                    noise_level(*s, "sigmas")?;
                }
                if sigmas.windows(2).any(|w| w[0] <= w[1]) {
                    return Err(ParamError::invalid(
                        "sigmas",
                        "must decrease strictly from sigma_max to sigma_min",
                    ));
                }
                Ok(())
            }
        }
    }

    /// The geometric schedule σᵢ = σ_max (σ_min/σ_max)^{(i−1)/(L−1)}, i = 1 … L (σ_max alone for
    /// L = 1).
    ///
    /// # Errors
    /// Unless 0 < σ_min < σ_max (both finite) and L ≥ 1; σ_min = σ_max is allowed only for L = 1.
    pub fn dsm_multi(
        range: scorelab_core::SigmaRange,
        levels: usize,
    ) -> Result<Self, scorelab_core::ParamError> {
        let scorelab_core::SigmaRange {
            min: sigma_min,
            max: sigma_max,
        } = range;
        if levels < 2 {
            return Err(scorelab_core::ParamError::invalid(
                "levels",
                "must be at least 2 (one level is dsm with that sigma)",
            ));
        }
        noise_level(sigma_max, "sigma_max")?;
        noise_level(sigma_min, "sigma_min")?;
        let sigmas = scorelab_core::schedule::geometric(range, levels)?;
        let o = Objective::DsmMulti { sigmas };
        o.validate()?;
        Ok(o)
    }

    /// The objective's id as the benchmark and `scorelab cost` name it: `esm`, `ism_naive`,
    /// `ism_structured`, `ssm`, `ssm_vr`, `dsm`, `dsm_multi`.
    pub fn id(&self) -> &'static str {
        match self {
            Objective::Esm => "esm",
            Objective::Ism {
                trace: TraceMethod::Naive,
            } => "ism_naive",
            Objective::Ism {
                trace: TraceMethod::Structured,
            } => "ism_structured",
            Objective::Ssm { .. } => "ssm",
            Objective::SsmVr { .. } => "ssm_vr",
            Objective::Dsm { .. } => "dsm",
            Objective::DsmMulti { .. } => "dsm_multi",
            Objective::DsmContinuous(c) if c.is_flow_matching() => "flow_matching",
            Objective::DsmContinuous(_) => "dsm_continuous",
        }
    }

    /// The noise levels a network trained by this objective has seen: (smallest, largest) σ̃;
    /// `None` for the objectives without noise.
    pub fn sigma_range(&self) -> Option<(f64, f64)> {
        match self {
            Objective::Dsm { sigma } => Some((*sigma, *sigma)),
            Objective::DsmMulti { sigmas } => Some((
                sigmas.iter().copied().fold(f64::INFINITY, f64::min),
                sigmas.iter().copied().fold(0.0, f64::max),
            )),
            Objective::DsmContinuous(c) => Some((c.sigma_min(), c.sigma_max())),
            _ => None,
        }
    }

    /// Whether the loss needs the true score ∇log p at the data.
    pub fn needs_target(&self) -> bool {
        matches!(self, Objective::Esm)
    }

    /// Checks that `net` can be trained by this objective: a noise-conditional network needs
    /// `dsm` or `dsm_multi`, and `dsm_multi` needs a noise-conditional network.
    ///
    /// # Errors
    /// A message saying which model or objective to use instead.
    pub fn check_network(&self, net: &Network) -> Result<(), String> {
        match (self, net.is_noise_conditional()) {
            (Objective::DsmMulti { .. } | Objective::DsmContinuous(_), false) => Err(format!(
                "objective {} conditions on σ: use model kind = \"noise_conditional_mlp\"",
                self.id()
            )),
            (Objective::Dsm { .. } | Objective::DsmMulti { .. } | Objective::DsmContinuous(_), _) => {
                Ok(())
            }
            (_, true) => Err(format!(
                "a noise_conditional_mlp is trained by dsm, dsm_multi or dsm_continuous, not {}; use kind = \"mlp\" for {}",
                self.id(),
                self.id()
            )),
            (_, false) => Ok(()),
        }
    }
}

impl fmt::Display for Objective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The random inputs of one loss evaluation (module docs for the draw order).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Noise {
    /// SSM probes, `(B, K, D)` row-major.
    pub probes: Option<Vec<f64>>,
    /// DSM ε, `(B, D)` row-major.
    pub eps: Option<Vec<f64>>,
    /// Multi-σ DSM: the σ of each point.
    pub sigmas: Option<Vec<f64>>,
}

impl Noise {
    /// Draws what `objective` needs for `n` points in D = `dim` from `rng`.
    pub fn draw<R: Rng + ?Sized>(
        objective: &Objective,
        n: usize,
        dim: usize,
        rng: &mut R,
    ) -> Noise {
        let normal = |len: usize, rng: &mut R| -> Vec<f64> {
            (0..len).map(|_| StandardNormal.sample(rng)).collect()
        };
        match objective {
            Objective::Esm | Objective::Ism { .. } => Noise::default(),
            Objective::Ssm { projections, probe } | Objective::SsmVr { projections, probe } => {
                let len = n * projections * dim;
                let probes = match probe {
                    Probe::Gaussian => normal(len, rng),
                    Probe::Rademacher => (0..len)
                        .map(|_| if rng.gen::<bool>() { 1.0 } else { -1.0 })
                        .collect(),
                };
                Noise {
                    probes: Some(probes),
                    ..Noise::default()
                }
            }
            Objective::Dsm { .. } => Noise {
                eps: Some(normal(n * dim, rng)),
                ..Noise::default()
            },
            Objective::DsmContinuous(c) => {
                let s: Vec<f64> = (0..n).map(|_| c.draw(rng)).collect();
                Noise {
                    sigmas: Some(s),
                    eps: Some(normal(n * dim, rng)),
                    ..Noise::default()
                }
            }
            Objective::DsmMulti { sigmas } => {
                let s: Vec<f64> = (0..n)
                    .map(|_| sigmas[rng.gen_range(0..sigmas.len())])
                    .collect();
                Noise {
                    sigmas: Some(s),
                    eps: Some(normal(n * dim, rng)),
                    ..Noise::default()
                }
            }
        }
    }
}

impl Noise {
    /// The denoising inputs x̃ᵢ = xᵢ + σᵢεᵢ, row-major: σᵢ = `sigma` for single-σ DSM, or (with
    /// `None`) the level drawn for point i by multi-σ DSM. Both training steps, taped and direct,
    /// take their inputs from here.
    ///
    /// # Panics
    /// If ε (or, for `None`, the levels) were not drawn, or do not fit `x`.
    pub fn perturbed(&self, x: ArrayView2<f64>, sigma: Option<f64>) -> Vec<f64> {
        let (n, d) = x.dim();
        let eps = self.eps.as_ref().expect("DSM needs ε");
        assert_eq!(eps.len(), n * d, "ε is (B, D)");
        let level = |i: usize| match sigma {
            Some(s) => s,
            None => self.sigmas.as_ref().expect("multi-σ DSM needs σ per point")[i],
        };
        let mut out = Vec::with_capacity(n * d);
        for (i, row) in x.rows().into_iter().enumerate() {
            let s = level(i);
            out.extend(
                row.iter()
                    .zip(&eps[i * d..(i + 1) * d])
                    .map(|(x, e)| x + s * e),
            );
        }
        out
    }

    /// Pairs the batch's ε with its points `x` by the minibatch optimal-transport coupling of
    /// flow matching's linear path: the rows of ε are permuted to minimise Σᵢ ‖xᵢ − ε_π(i)‖²,
    /// an exact assignment (Kuhn–Munkres, `pathfinding`) of the squared distances rounded to
    /// 2⁻⁴⁰ of the largest (so only ties closer than that are broken arbitrarily). The σ̃'s keep
    /// their rows.
    ///
    /// # Examples
    /// ```
    /// use scorelab_objectives::taped::Noise;
    /// let mut n = Noise { eps: Some(vec![5.0, 0.0, -5.0, 0.0]), ..Noise::default() };
    /// n.couple(ndarray::array![[-4.0, 0.0], [4.0, 0.0]].view());
    /// assert_eq!(n.eps, Some(vec![-5.0, 0.0, 5.0, 0.0]));
    /// ```
    ///
    /// # Panics
    /// If ε was not drawn or does not fit `x`.
    pub fn couple(&mut self, x: ArrayView2<f64>) {
        let (n, d) = x.dim();
        let eps = self.eps.as_mut().expect("flow matching needs ε");
        assert_eq!(eps.len(), n * d, "ε is (B, D)");
        let cost: Vec<f64> = (0..n)
            .flat_map(|i| {
                let e = &*eps;
                (0..n).map(move |j| {
                    (0..d)
                        .map(|k| (x[[i, k]] - e[j * d + k]).powi(2))
                        .sum::<f64>()
                })
            })
            .collect();
        let largest = cost.iter().copied().fold(0.0f64, f64::max);
        if !(largest.is_finite() && largest > 0.0) {
            return;
        }
        let scale = 2f64.powi(40) / largest;
        let weights: Vec<i64> = cost.iter().map(|c| (c * scale).round() as i64).collect();
        let m = pathfinding::matrix::Matrix::from_vec(n, n, weights).expect("n × n costs");
        let (_, assign) = pathfinding::kuhn_munkres::kuhn_munkres_min(&m);
        let old = eps.clone();
        for (i, &j) in assign.iter().enumerate() {
            eps[i * d..(i + 1) * d].copy_from_slice(&old[j * d..(j + 1) * d]);
        }
    }
}

/// The per-sample losses ℓ(xᵢ) (module docs) on tape `tape`, for points `x` (`(B, D)`), the true
/// scores `target` (ESM only) and drawn `noise`.
///
/// # Panics
/// If `target` is missing for ESM, `noise` lacks what the objective needs, or the network and the
/// objective do not fit ([`Objective::check_network`]): callers validate first.
#[allow(clippy::too_many_arguments)]
pub fn loss_terms<E: Real, T: Tape<E, Dev>>(
    objective: &Objective,
    net: &Network,
    p: &Bound<E>,
    x: ArrayView2<f64>,
    target: Option<ArrayView2<f64>>,
    noise: &Noise,
    tape: T,
) -> T1<E, T>
where
    Dev: Device<E>,
{
    let dev = p.tensors[0].device().clone();
    let (n, d) = x.dim();
    let flat: Vec<f64> = x.iter().copied().collect();
    let half = E::from_f64(0.5).expect("0.5");
    match objective {
        Objective::Esm => {
            let t = target.expect("ESM needs the true score");
            let t: Vec<f64> = t.iter().copied().collect();
            let xt = tensor2::<E>(&dev, &flat, (n, d)).put_tape(tape);
            let o = net.forward(p, xt, None, &Tangents::None);
            (o.score - tensor2::<E>(&dev, &t, (n, d)))
                .square()
                .sum::<(usize,), Axis<1>>()
                * half
        }
        Objective::Ism { trace } => {
            let xt = tensor2::<E>(&dev, &flat, (n, d)).put_tape(tape);
            let o = net.forward(p, xt, None, &Tangents::Trace(*trace));
            o.score.square().sum::<(usize,), Axis<1>>() * half + o.trace.expect("trace asked")
        }
        Objective::Ssm { projections: k, .. } | Objective::SsmVr { projections: k, .. } => {
            let k = *k;
            let probes = noise.probes.as_ref().expect("SSM needs probes");
            let v: Tensor<(usize, usize, usize), E, Dev> = dev.tensor_from_vec(
                probes
                    .iter()
                    .map(|&z| E::from_f64(z).expect("finite"))
                    .collect(),
                (n, k, d),
            );
            let xt = tensor2::<E>(&dev, &flat, (n, d)).put_tape(tape);
            let o = net.forward(p, xt, None, &Tangents::Jvp(v.clone()));
            let kk = E::from_usize(k).expect("k");
            let vjv = (o.jvp.expect("jvp asked") * v.clone())
                .sum::<(usize, usize), Axis<2>>()
                .sum::<(usize,), Axis<1>>()
                / kk;
            let first = if matches!(objective, Objective::Ssm { .. }) {
                let s = o.score.broadcast_like::<_, Axis<1>>(&(n, k, d));
                (s * v)
                    .sum::<(usize, usize), Axis<2>>()
                    .square()
                    .sum::<(usize,), Axis<1>>()
                    * (half / kk)
            } else {
                o.score.square().sum::<(usize,), Axis<1>>() * half
            };
            first + vjv
        }
        Objective::Dsm { sigma } => {
            let eps = noise.eps.as_ref().expect("DSM needs ε");
            let xn = noise.perturbed(x, Some(*sigma));
            let target: Vec<f64> = eps.iter().map(|e| -e / sigma).collect();
            let sig = tensor1::<E>(&dev, &vec![*sigma; n]);
            let xt = tensor2::<E>(&dev, &xn, (n, d)).put_tape(tape);
            let o = net.forward(p, xt, Some(&sig), &Tangents::None);
            (o.score - tensor2::<E>(&dev, &target, (n, d)))
                .square()
                .sum::<(usize,), Axis<1>>()
                * half
        }
        Objective::DsmMulti { .. } | Objective::DsmContinuous(_) => {
            let eps = noise.eps.as_ref().expect("multi-σ DSM needs ε");
            let sigmas = noise
                .sigmas
                .as_ref()
                .expect("multi-σ DSM needs σ per point");
            let xn = noise.perturbed(x, None);
            let weights: Option<Vec<f64>> = match objective {
                Objective::DsmContinuous(c) => {
                    Some(sigmas.iter().map(|&s| 0.5 * c.weight(s)).collect())
                }
                _ => None,
            };
            let scale: Vec<f64> = sigmas
                .iter()
                .flat_map(|&s| std::iter::repeat_n(s, d))
                .collect();
            let neg_eps: Vec<f64> = eps.iter().map(|e| -e).collect();
            let sig = tensor1::<E>(&dev, sigmas);
            let xt = tensor2::<E>(&dev, &xn, (n, d)).put_tape(tape);
            let o = net.forward(p, xt, Some(&sig), &Tangents::None);
            // ½‖σ s + ε‖², times c(σ̃) for the continuous objective
            let r =
                o.score * tensor2::<E>(&dev, &scale, (n, d)) - tensor2::<E>(&dev, &neg_eps, (n, d));
            let sq = r.square().sum::<(usize,), Axis<1>>();
            match weights {
                Some(w) => sq * tensor1::<E>(&dev, &w),
                None => sq * half,
            }
        }
    }
}

/// The batch-mean loss, taped, ready for `backward()`.
///
/// # Panics
/// As [`loss_terms`].
pub fn loss<E: Real>(
    objective: &Objective,
    net: &Network,
    p: &Bound<E>,
    x: ArrayView2<f64>,
    target: Option<ArrayView2<f64>>,
    noise: &Noise,
) -> Tensor<(), E, Dev, Taped<E>>
where
    Dev: Device<E>,
{
    loss_terms(objective, net, p, x, target, noise, Taped::<E>::default()).mean::<(), _>()
}

/// The batch-mean loss and its θ-gradient (blocks in parameter order), in dtype `E`.
///
/// # Panics
/// As [`loss_terms`].
pub fn loss_and_gradient<E: Real>(
    objective: &Objective,
    net: &Network,
    x: ArrayView2<f64>,
    target: Option<ArrayView2<f64>>,
    noise: &Noise,
) -> (f64, Vec<Vec<f64>>)
where
    Dev: Device<E>,
{
    let dev = Dev::default();
    let p = net.params().bind::<E>(&dev);
    let l = loss(objective, net, &p, x, target, noise);
    let value = l.array().to_f64().unwrap_or(f64::NAN);
    let mut grads = l.backward();
    (value, p.gradients(&mut grads))
}

/// The per-sample losses without a tape, as f64 values computed in dtype `E`.
///
/// # Panics
/// As [`loss_terms`].
pub fn loss_values<E: Real>(
    objective: &Objective,
    net: &Network,
    x: ArrayView2<f64>,
    target: Option<ArrayView2<f64>>,
    noise: &Noise,
) -> Vec<f64>
where
    Dev: Device<E>,
{
    let dev = Dev::default();
    let p = net.params().bind::<E>(&dev);
    let t = loss_terms(objective, net, &p, x, target, noise, NoneTape);
    scorelab_models::net::to_f64(&t)
}

fn noise_level(sigma: f64, field: &str) -> Result<(), scorelab_core::ParamError> {
    scorelab_core::error::noise_level(sigma, field).map(|_| ())
}

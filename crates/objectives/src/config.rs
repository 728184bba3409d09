//! How configs spell an [`Objective`]: the serde form every route (a TOML table, a Rust literal
//! through [`Objective`]'s constructors, a Python dict) reaches the same validating constructor
//! through. Private: the library type is its own config (`#[serde(try_from, into)]`).

use crate::continuous::{ContinuousDsm, Coupling, SigmaDistribution, Weighting};
use crate::taped::{Objective, Probe};
use scorelab_core::{ParamError, SigmaRange};
use scorelab_models::TraceMethod;
use serde::{Deserialize, Serialize};

/// `[objective]` as written: `kind` and the fields of that kind, defaults filled in when read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ObjectiveDef {
    Esm {},
    Ism {
        #[serde(default)]
        trace: TraceMethod,
    },
    Ssm {
        #[serde(default = "one")]
        projections: usize,
        #[serde(default)]
        probe: Probe,
    },
    SsmVr {
        #[serde(default = "one")]
        projections: usize,
        #[serde(default)]
        probe: Probe,
    },
    Dsm {
        #[serde(default = "default_sigma")]
        sigma: f64,
    },
    DsmMulti {
        #[serde(default = "default_sigma_max")]
        sigma_max: f64,
        #[serde(default = "default_sigma_min")]
        sigma_min: f64,
        #[serde(default = "default_levels")]
        levels: usize,
    },
    DsmContinuous {
        #[serde(default = "default_continuous_sigma_min")]
        sigma_min: f64,
        #[serde(default = "default_continuous_sigma_max")]
        sigma_max: f64,
        #[serde(default)]
        distribution: DistributionName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p_mean: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p_std: Option<f64>,
        #[serde(default)]
        lambda: LambdaName,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sigma_data: Option<f64>,
    },
    FlowMatching {
        #[serde(default = "default_fm_t_min")]
        t_min: f64,
        #[serde(default = "default_fm_t_max")]
        t_max: f64,
        #[serde(default)]
        coupling: Coupling,
    },
}

fn default_fm_t_min() -> f64 {
    1e-3
}
fn default_fm_t_max() -> f64 {
    0.999
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub(crate) enum DistributionName {
    #[default]
    LogUniform,
    LogNormal,
}

/// Inside an objective table serde cannot say which key failed: the messages name it.
impl TryFrom<String> for DistributionName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "log_uniform" => Ok(DistributionName::LogUniform),
            "log_normal" => Ok(DistributionName::LogNormal),
            other => Err(format!(
                "distribution: unknown distribution {other:?}; use log_uniform or log_normal"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub(crate) enum LambdaName {
    #[default]
    Sigma2,
    Edm,
    Likelihood,
}

impl TryFrom<String> for LambdaName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        match s.as_str() {
            "sigma2" => Ok(LambdaName::Sigma2),
            "edm" => Ok(LambdaName::Edm),
            "likelihood" => Ok(LambdaName::Likelihood),
            other => Err(format!(
                "lambda: unknown weighting {other:?}; use sigma2, edm or likelihood"
            )),
        }
    }
}

/// EDM's log-normal σ̃ distribution (Karras et al. 2022, §5).
pub(crate) const EDM_P_MEAN: f64 = -1.2;
/// EDM's log-normal σ̃ distribution (Karras et al. 2022, §5).
pub(crate) const EDM_P_STD: f64 = 1.2;

fn one() -> usize {
    1
}
fn default_sigma() -> f64 {
    0.1
}
fn default_sigma_max() -> f64 {
    10.0
}
fn default_sigma_min() -> f64 {
    0.01
}
fn default_levels() -> usize {
    10
}
pub(crate) fn default_continuous_sigma_min() -> f64 {
    0.002
}
pub(crate) fn default_continuous_sigma_max() -> f64 {
    80.0
}

impl TryFrom<ObjectiveDef> for Objective {
    type Error = ParamError;
    fn try_from(def: ObjectiveDef) -> Result<Self, ParamError> {
        Ok(match def {
            ObjectiveDef::Esm {} => Objective::esm(),
            ObjectiveDef::Ism { trace } => Objective::ism(trace),
            ObjectiveDef::Ssm { projections, probe } => Objective::ssm(projections, probe)?,
            ObjectiveDef::SsmVr { projections, probe } => Objective::ssm_vr(projections, probe)?,
            ObjectiveDef::Dsm { sigma } => Objective::dsm(sigma)?,
            ObjectiveDef::DsmMulti {
                sigma_max,
                sigma_min,
                levels,
            } => Objective::dsm_multi(
                SigmaRange {
                    min: sigma_min,
                    max: sigma_max,
                },
                levels,
            )?,
            ObjectiveDef::DsmContinuous {
                sigma_min,
                sigma_max,
                distribution,
                p_mean,
                p_std,
                lambda,
                sigma_data,
            } => {
                let distribution = match distribution {
                    DistributionName::LogUniform => {
                        for (key, set) in [("p_mean", p_mean.is_some()), ("p_std", p_std.is_some())]
                        {
                            if set {
                                return Err(ParamError::invalid(
                                    key,
                                    "only the log_normal distribution uses it; set distribution = \"log_normal\" or remove it",
                                ));
                            }
                        }
                        SigmaDistribution::LogUniform
                    }
                    DistributionName::LogNormal => SigmaDistribution::LogNormal {
                        p_mean: p_mean.unwrap_or(EDM_P_MEAN),
                        p_std: p_std.unwrap_or(EDM_P_STD),
                    },
                };
                let weighting = match (lambda, sigma_data) {
                    (LambdaName::Sigma2 | LambdaName::Likelihood, Some(_)) => {
                        return Err(ParamError::invalid(
                            "sigma_data",
                            "only lambda = \"edm\" uses it; remove it",
                        ))
                    }
                    (LambdaName::Sigma2, None) => Weighting::Sigma2,
                    (LambdaName::Likelihood, None) => Weighting::Likelihood,
                    (LambdaName::Edm, Some(sigma_data)) => Weighting::Edm { sigma_data },
                    (LambdaName::Edm, None) => Weighting::EdmOfData,
                };
                Objective::DsmContinuous(ContinuousDsm::new(
                    SigmaRange {
                        min: sigma_min,
                        max: sigma_max,
                    },
                    distribution,
                    weighting,
                )?)
            }
            ObjectiveDef::FlowMatching {
                t_min,
                t_max,
                coupling,
            } => Objective::DsmContinuous(ContinuousDsm::flow_matching(t_min, t_max, coupling)?),
        })
    }
}

impl From<Objective> for ObjectiveDef {
    fn from(o: Objective) -> Self {
        match o {
            Objective::Esm => ObjectiveDef::Esm {},
            Objective::Ism { trace } => ObjectiveDef::Ism { trace },
            Objective::Ssm { projections, probe } => ObjectiveDef::Ssm { projections, probe },
            Objective::SsmVr { projections, probe } => ObjectiveDef::SsmVr { projections, probe },
            Objective::Dsm { sigma } => ObjectiveDef::Dsm { sigma },
            // The geometric levels start at σ_max and end at σ_min exactly, so this round-trips.
            Objective::DsmMulti { sigmas } => ObjectiveDef::DsmMulti {
                sigma_max: sigmas[0],
                sigma_min: sigmas[sigmas.len() - 1],
                levels: sigmas.len(),
            },
            Objective::DsmContinuous(c) if c.t_range().is_some() => {
                let (t_min, t_max) = c.t_range().expect("matched");
                ObjectiveDef::FlowMatching {
                    t_min,
                    t_max,
                    coupling: c.coupling(),
                }
            }
            Objective::DsmContinuous(c) => {
                let (distribution, p_mean, p_std) = match c.distribution() {
                    SigmaDistribution::LogUniform | SigmaDistribution::LinearPath => {
                        (DistributionName::LogUniform, None, None)
                    }
                    SigmaDistribution::LogNormal { p_mean, p_std } => {
                        (DistributionName::LogNormal, Some(p_mean), Some(p_std))
                    }
                };
                let (lambda, sigma_data) = match c.weighting() {
                    Weighting::Sigma2 => (LambdaName::Sigma2, None),
                    Weighting::Likelihood | Weighting::FlowMatching => {
                        (LambdaName::Likelihood, None)
                    }
                    Weighting::Edm { sigma_data } => (LambdaName::Edm, Some(sigma_data)),
                    Weighting::EdmOfData => (LambdaName::Edm, None),
                };
                ObjectiveDef::DsmContinuous {
                    sigma_min: c.sigma_min(),
                    sigma_max: c.sigma_max(),
                    distribution,
                    p_mean,
                    p_std,
                    lambda,
                    sigma_data,
                }
            }
        }
    }
}

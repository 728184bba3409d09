//! Sizes: one rule in one place. Every call that allocates in proportion to its inputs (training
//! batches, sampler chains, audit samples, evaluation tests) estimates its peak memory first and
//! is refused with [`PipelineError::TooLarge`] when the estimate exceeds a [`MemoryLimit`], before
//! it allocates: an absurd size is an error message, never an abort.
//!
//! The estimates are upper bounds of the arrays a call holds at once, in bytes; they are
//! deliberately simple (a factor for the intermediate arrays of a step), since they only need to
//! separate runs that fit from runs that cannot.
//!
//! ```
//! use scorelab_pipeline::memory::{check, MemoryLimit};
//! let limit = MemoryLimit::bytes(1 << 20);
//! assert!(check(1000, limit, || "a small run".into(), "use less").is_ok());
//! let e = check(1 << 30, limit, || "a large run".into(), "use less").unwrap_err();
//! assert!(e.to_string().contains("a large run: needs about 1.0 GiB of memory, over the limit of 1.0 MiB"));
//! ```

use crate::error::{PipelineError, Result};
use scorelab_models::NetworkSpec;
use scorelab_models::TraceMethod;
use scorelab_objectives::taped::Objective;
use scorelab_objectives::training::{TrainData, TrainSettings};

/// The environment variable that overrides the default limit: bytes, or a number with a suffix
/// `K`, `M`, `G` (binary: KiB, MiB, GiB), e.g. `SCORELAB_MEMORY_LIMIT=4G`.
pub const LIMIT_VAR: &str = "SCORELAB_MEMORY_LIMIT";

/// The most memory one call may plan to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimit(u64);

impl MemoryLimit {
    /// A limit of `n` bytes.
    pub fn bytes(n: u64) -> Self {
        MemoryLimit(n)
    }

    /// The limit in bytes.
    pub fn get(self) -> u64 {
        self.0
    }

    /// Half the machine's memory (`MemTotal` of `/proc/meminfo`; 8 GiB where it cannot be read).
    pub fn half_of_machine() -> Self {
        let total = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map(|kb| kb * 1024)
            .unwrap_or(16 << 30);
        MemoryLimit(total / 2)
    }

    /// Parses `4G`, `512M`, `100000`.
    ///
    /// # Errors
    /// [`PipelineError::Invalid`] naming [`LIMIT_VAR`].
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let (num, mult) = match t.chars().last() {
            Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
            Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
            Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
            _ => (t, 1),
        };
        num.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| MemoryLimit((v * mult as f64) as u64))
            .ok_or_else(|| {
                PipelineError::invalid(
                    LIMIT_VAR,
                    format!("{text:?} is not a size; give bytes or e.g. 512M, 4G"),
                )
            })
    }

    /// [`LIMIT_VAR`] if it is set, else [`MemoryLimit::half_of_machine`].
    ///
    /// # Errors
    /// If the variable is set but is not a size.
    pub fn from_env() -> Result<Self> {
        match std::env::var(LIMIT_VAR) {
            Ok(v) => Self::parse(&v),
            Err(_) => Ok(Self::half_of_machine()),
        }
    }
}

impl Default for MemoryLimit {
    /// [`MemoryLimit::from_env`], or half the machine when the variable is not a size.
    fn default() -> Self {
        Self::from_env().unwrap_or_else(|_| Self::half_of_machine())
    }
}

/// `n` bytes in words: `1.5 GiB`.
pub fn human(n: u64) -> String {
    let n = n as f64;
    for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
        if n >= size as f64 {
            return format!("{:.1} {unit}", n / size as f64);
        }
    }
    format!("{n} B")
}

/// Refuses `estimate` bytes over `limit`, naming `what` (built only on failure) and the `hint`.
///
/// # Errors
/// [`PipelineError::TooLarge`].
pub fn check(
    estimate: u64,
    limit: MemoryLimit,
    what: impl FnOnce() -> String,
    hint: &str,
) -> Result<()> {
    if estimate > limit.0 {
        return Err(PipelineError::TooLarge {
            what: what(),
            estimate,
            limit: limit.0,
            hint: format!("{hint}, or raise the limit with {LIMIT_VAR}"),
        });
    }
    Ok(())
}

/// Saturating products, so that absurd sizes estimate to `u64::MAX` rather than wrap.
fn prod(factors: &[u64]) -> u64 {
    factors.iter().fold(1u64, |a, &b| a.saturating_mul(b))
}

/// Peak memory of training: the data, the parameters with Adam's moments, EMA and gradients, the
/// taped activations of one step (points × tangents × widths, f32, a factor 8 for a step's
/// intermediate arrays), and the evaluation batches (f64).
pub fn train_bytes(
    spec: &NetworkSpec,
    objective: &Objective,
    config: &TrainSettings,
    data: &TrainData,
) -> u64 {
    let d = spec.dim as u64;
    let widths: u64 = spec
        .hidden
        .iter()
        .fold(d.saturating_mul(2), |a, &h| a.saturating_add(h as u64));
    let mut params = 0u64;
    let mut fan_in = d + u64::from(matches!(
        spec.kind,
        scorelab_models::NetworkKind::NoiseConditionalMlp
    ));
    for &h in spec.hidden.iter().chain(std::iter::once(&spec.dim)) {
        params = params.saturating_add(prod(&[fan_in.saturating_add(1), h as u64]));
        fan_in = h as u64;
    }
    let tangents: u64 = match objective {
        Objective::Ism {
            trace: TraceMethod::Naive,
        } => 1 + d,
        Objective::Ism { .. } => 3,
        Objective::Ssm { projections, .. } | Objective::SsmVr { projections, .. } => {
            1 + *projections as u64
        }
        _ => 1,
    };
    let step = prod(&[config.batch as u64, tangents, widths, 4, 8]);
    let evals = prod(&[
        (config.val_batch as u64).saturating_add(config.eval_batch as u64),
        d,
        8,
        4,
    ]);
    let data_bytes = match data {
        TrainData::Density(_) | TrainData::Toy(_) => 0,
        TrainData::Points { train, val, .. } => prod(&[(train.len() + val.len()) as u64, 8, 3]),
    };
    prod(&[params, 4, 6])
        .saturating_add(step)
        .saturating_add(evals)
        .saturating_add(data_bytes)
}

/// Peak memory of a sampler run: the chains and a step's intermediate arrays (f64, a factor 8),
/// and the snapshots kept.
pub fn sample_bytes(chains: usize, dim: usize, snapshots: usize) -> u64 {
    prod(&[chains as u64, dim as u64, 8, 8 + snapshots as u64])
}

/// Peak memory of one likelihood batch of `batch` points in D = `dim` with `k` estimates per
/// point: the Dormand–Prince stages of the (batch, D + k) state and the (batch·k, D) probes and
/// tangents (f64, a factor 16), and the naive trace's basis tangents (chunked by the network).
pub fn likelihood_bytes(batch: usize, dim: usize, k: usize) -> u64 {
    prod(&[batch as u64, (dim + k) as u64, 8, 16]).saturating_add(prod(&[
        batch as u64,
        k as u64,
        dim as u64,
        8,
        8,
    ]))
}

/// Peak memory of an audit of `samples` points in D = `dim`: about six `(n, d)` f64 arrays.
pub fn audit_bytes(samples: usize, dim: usize) -> u64 {
    prod(&[samples as u64, dim as u64, 8, 6])
}

/// Peak memory of the sample-quality metrics of `n` points against `m` reference points in D =
/// `dim` with `tests` permutations and bootstrap replicates: the kernel matrices of MMD and KSD
/// (n + m)² f64 (the permutation tests reuse them), the points, and each test's replicate
/// statistics (f64, with a permutation of n + m indices at a time).
pub fn metrics_bytes(n: usize, m: usize, dim: usize, tests: usize) -> u64 {
    let k = (n as u64).saturating_add(m as u64);
    prod(&[k, k, 8, 2])
        .saturating_add(prod(&[k, dim as u64, 8, 4]))
        .saturating_add(prod(&[tests as u64, 8, 2]))
}

/// Peak memory of an analytic density of dimension `dim` with a full covariance: the covariance,
/// its Cholesky factor, the precision and one work matrix, D² f64 each.
pub fn density_bytes(dim: usize) -> u64 {
    prod(&[dim as u64, dim as u64, 8, 4])
}

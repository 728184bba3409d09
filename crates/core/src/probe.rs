//! The probes of trace estimators: Hutchinson's vᵀAv (the likelihood's divergence) and sliced
//! score matching's vᵀ∇s v both draw v from one of two distributions with E\[vvᵀ\] = I, so that
//! E\[vᵀAv\] = tr A.

use ndarray::Array2;
use rand::Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

/// The distribution of the probes v; configs name it (`"rademacher"`, `"gaussian"`).
///
/// For a symmetric A, Var vᵀAv is 2 Σ_{i≠j} A²ᵢⱼ for Rademacher probes and 2‖A‖²_F for Gaussian
/// ones (Hutchinson 1990), so Rademacher is never worse and is the default.
///
/// # Examples
/// ```
/// use scorelab_core::Probe;
/// assert_eq!("gaussian".parse::<Probe>(), Ok(Probe::Gaussian));
/// assert_eq!(Probe::default(), Probe::Rademacher);
/// let p: Probe = serde_json::from_str("\"rademacher\"").unwrap();
/// let v = p.draw(4, 3, &mut <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(0));
/// assert!(v.iter().all(|x| x.abs() == 1.0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Probe {
    /// Independent ±1 entries, each with probability ½ (the default).
    #[default]
    Rademacher,
    /// Independent N(0, 1) entries.
    Gaussian,
}

impl Probe {
    /// The name as configs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Probe::Rademacher => "rademacher",
            Probe::Gaussian => "gaussian",
        }
    }

    /// A `(rows, d)` block of probes, drawn row by row, entry by entry (one `bool` or one
    /// standard normal per entry).
    pub fn draw<R: Rng + ?Sized>(self, rows: usize, d: usize, rng: &mut R) -> Array2<f64> {
        match self {
            Probe::Rademacher => {
                Array2::from_shape_simple_fn(
                    (rows, d),
                    || {
                        if rng.gen::<bool>() {
                            1.0
                        } else {
                            -1.0
                        }
                    },
                )
            }
            Probe::Gaussian => {
                Array2::from_shape_simple_fn((rows, d), || rng.sample::<f64, _>(StandardNormal))
            }
        }
    }
}

impl std::str::FromStr for Probe {
    type Err = String;
    /// `rademacher` or `gaussian`, as configs spell them.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "rademacher" => Ok(Probe::Rademacher),
            "gaussian" => Ok(Probe::Gaussian),
            other => Err(format!(
                "unknown probe {other:?}; use rademacher | gaussian"
            )),
        }
    }
}

impl TryFrom<String> for Probe {
    type Error = String;
    /// [`Probe::from_str`](std::str::FromStr), the message starting with its key.
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|e| format!("probe: {e}"))
    }
}

impl From<Probe> for String {
    fn from(p: Probe) -> String {
        p.name().to_string()
    }
}

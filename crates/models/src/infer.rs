//! [`Inference`]: a trained network's score evaluated in f32 without a tape, from weights prepared
//! once, with the work buffers kept across calls. This is the first part of the inference path:
//! the score of every network kind. The JVP and the exact traces, the vectorised activations and
//! the use by the samplers, `score` and `eval` come next; until then those go through the f64
//! door ([`Network::score_function`]).
//!
//! # What is computed
//! With layers l = 0 … L, hₗ = aₗ Wₗ + bₗ (a₀ = x; Wₗ fan-in × fan-out) and aₗ₊₁ = φ(hₗ):
//! - `mlp`: s(x) = h_L;
//! - `noise_conditional_mlp`: h₀ gains log σ · w_σ (the `sigma.weight` row), and
//!   s(x, σ) = h_L / σ;
//! - `energy_mlp` (L hidden layers, then g = a_L w): s(x) = −∇ₓg − x/τ², with ∇ₓg by the reverse
//!   recursion e_{L−1} = w ⊙ φ′(h_{L−1}), e_{l−1} = (eₗ Wₗᵀ) ⊙ φ′(h_{l−1}), ∇ₓg = e₀ W₀ᵀ.
//!
//! The products go through ndarray's safe `general_mat_mul` (matrixmultiply's kernels) into
//! buffers kept from call to call (reallocated only when the batch size changes). Results
//! agree with the f64 door to f32 rounding: |a − b| ≤ 1e-5·(|b| + 1) per entry, which the tests
//! check for every network kind and activation.
//!
//! ```
//! use scorelab_models::{Activation, Inference, Network, NetworkKind, NetworkSpec};
//! let net = NetworkSpec { kind: NetworkKind::NoiseConditionalMlp, dim: 2, hidden: vec![16],
//!                         activation: Activation::Softplus, tau: None }.build(1)?;
//! let mut f = Inference::new(&net);
//! let s = f.score(ndarray::array![[0.5f32, -1.0]].view(), Some(0.3))?;
//! let door = net.score_function(Some(0.3))?.score(ndarray::array![[0.5, -1.0]].view());
//! assert!((s[[0, 1]] as f64 - door[[0, 1]]).abs() < 1e-5 * (door[[0, 1]].abs() + 1.0));
//! # use scorelab_core::Score;
//! # Ok::<(), scorelab_models::ModelError>(())
//! ```

use crate::network::{Network, NetworkKind};
use crate::{Activation, ModelError};
use ndarray::linalg::general_mat_mul;
use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};

/// A network's weights prepared for f32 evaluation, and the buffers of its last batch size.
#[derive(Debug, Clone)]
pub struct Inference {
    kind: NetworkKind,
    dim: usize,
    activation: Activation,
    /// (Wₗ, bₗ) for every layer (the energy network: its hidden layers).
    layers: Vec<(Array2<f32>, Array1<f32>)>,
    /// `noise_conditional_mlp`: the first layer's weight of log σ.
    sigma_row: Option<Array1<f32>>,
    /// `energy_mlp`: the output weight w and 1/τ².
    energy: Option<(Array1<f32>, f32)>,
    /// Pre-activations hₗ and activations aₗ₊₁ of the last call, reused when the batch size repeats.
    pre: Vec<Array2<f32>>,
    act: Vec<Array2<f32>>,
    /// `energy_mlp`: the backward's eₗ, shaped as hₗ, reused the same way.
    back: Vec<Array2<f32>>,
}

impl Inference {
    /// Prepares `net`'s weights (a copy: later changes to `net` are not seen).
    pub fn new(net: &Network) -> Self {
        let spec = net.spec();
        let p = net.params();
        let block = |name: &str| {
            let i = p
                .names()
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("a {} has block {name}", spec.kind.name()));
            let (r, c) = p.shapes()[i];
            Array2::from_shape_vec((r, c), p.values()[i].clone()).expect("shape of the block")
        };
        let n_layers = p
            .names()
            .iter()
            .filter(|n| n.starts_with("layers.") && n.ends_with(".weight"))
            .count();
        let layers = (0..n_layers)
            .map(|l| {
                let w = block(&format!("layers.{l}.weight"));
                let b = block(&format!("layers.{l}.bias")).row(0).to_owned();
                (w, b)
            })
            .collect();
        let sigma_row = (spec.kind == NetworkKind::NoiseConditionalMlp)
            .then(|| block("sigma.weight").row(0).to_owned());
        let energy = (spec.kind == NetworkKind::EnergyMlp).then(|| {
            let tau = spec.tau.expect("an energy network has τ") as f32;
            (
                block("output.weight").column(0).to_owned(),
                1.0 / (tau * tau),
            )
        });
        Inference {
            kind: spec.kind,
            dim: spec.dim,
            activation: spec.activation,
            layers,
            sigma_row,
            energy,
            pre: vec![],
            act: vec![],
            back: vec![],
        }
    }

    /// The dimension D of the points.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// s(x) (σ-free networks, `sigma = None`) or s(x, σ) (noise-conditional, `sigma = Some(σ)`)
    /// for every row of the `(n, D)` batch `x` (module docs).
    ///
    /// # Errors
    /// A [`ModelError`] naming `sigma` when it is missing, not wanted or not positive and finite,
    /// or naming `x` when its width is not D.
    pub fn score(
        &mut self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        if x.ncols() != self.dim {
            return Err(ModelError::invalid(
                "x",
                format!(
                    "has {} columns but the network takes {}",
                    x.ncols(),
                    self.dim
                ),
            ));
        }
        let log_sigma = match (self.kind, sigma) {
            (NetworkKind::NoiseConditionalMlp, Some(s)) if s > 0.0 && s.is_finite() => Some(s.ln()),
            (NetworkKind::NoiseConditionalMlp, Some(s)) => {
                return Err(ModelError::invalid(
                    "sigma",
                    format!("must be positive and finite, got {s}"),
                ))
            }
            (NetworkKind::NoiseConditionalMlp, None) => {
                return Err(ModelError::invalid(
                    "sigma",
                    "this network is noise-conditional: give σ",
                ))
            }
            (_, Some(_)) => {
                return Err(ModelError::invalid(
                    "sigma",
                    "this network is not noise-conditional: give no σ",
                ))
            }
            (_, None) => None,
        };
        self.forward(x, log_sigma);
        match self.kind {
            NetworkKind::EnergyMlp => Ok(self.energy_score(x)),
            _ => {
                let mut out = self.pre.last().expect("at least one layer").clone();
                if let Some(s) = sigma {
                    out.mapv_inplace(|v| v / s);
                }
                Ok(out)
            }
        }
    }

    /// The forward pass into the kept buffers: `pre[l]` = hₗ for every layer, `act[l]` = φ(hₗ)
    /// for the hidden ones.
    fn forward(&mut self, x: ArrayView2<f32>, log_sigma: Option<f32>) {
        let n = x.nrows();
        let hidden = match self.kind {
            NetworkKind::EnergyMlp => self.layers.len(),
            _ => self.layers.len() - 1,
        };
        if self.pre.first().is_none_or(|h| h.nrows() != n) {
            self.pre = self
                .layers
                .iter()
                .map(|(w, _)| Array2::zeros((n, w.ncols())))
                .collect();
            self.act = self.pre[..hidden].to_vec();
            if self.energy.is_some() {
                self.back = self.pre.clone();
            }
        }
        let act = self.activation;
        for l in 0..self.layers.len() {
            let (w, b) = &self.layers[l];
            let h = &mut self.pre[l];
            // h = aₗ · W + b (+ log σ · w_σ on the first layer).
            h.assign(
                &b.view()
                    .insert_axis(Axis(0))
                    .broadcast(h.dim())
                    .expect("bias"),
            );
            if let (0, Some(ls), Some(row)) = (l, log_sigma, &self.sigma_row) {
                h.scaled_add(ls, &row.view().insert_axis(Axis(0)));
            }
            if l == 0 {
                general_mat_mul(1.0, &x, w, 1.0, h);
            } else {
                general_mat_mul(1.0, &self.act[l - 1], w, 1.0, h);
            }
            if l < hidden {
                Zip::from(&mut self.act[l])
                    .and(&*h)
                    .for_each(|a, &v| *a = act.value_and_aux(v).0);
            }
        }
    }

    /// s = −∇g − x/τ² from the forward buffers (module docs), the eₗ in the kept `back`.
    fn energy_score(&mut self, x: ArrayView2<f32>) -> Array2<f32> {
        let (w_out, inv_tau2) = self.energy.as_ref().expect("an energy network");
        let act = self.activation;
        let last = self.layers.len() - 1;
        // e_{L−1} = w ⊙ φ′(h_{L−1}).
        Zip::from(&mut self.back[last])
            .and(&self.pre[last])
            .and_broadcast(&w_out.view().insert_axis(Axis(0)))
            .for_each(|e, &h, &w| *e = w * act.derivatives(h)[1]);
        // e_{l−1} = (eₗ Wₗᵀ) ⊙ φ′(h_{l−1}).
        for l in (1..=last).rev() {
            let (lower, upper) = self.back.split_at_mut(l);
            general_mat_mul(
                1.0,
                &upper[0],
                &self.layers[l].0.t(),
                0.0,
                &mut lower[l - 1],
            );
            Zip::from(&mut lower[l - 1])
                .and(&self.pre[l - 1])
                .for_each(|e, &h| *e *= act.derivatives(h)[1]);
        }
        // s = −e₀ W₀ᵀ − x/τ².
        let mut s = x.mapv(|v| -v * inv_tau2);
        general_mat_mul(-1.0, &self.back[0], &self.layers[0].0.t(), 1.0, &mut s);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkSpec;
    use rand::{Rng, SeedableRng};

    /// Every network kind and activation, at σ = 0.3 and 2.0 for the noise-conditional one, on
    /// points with coordinates in [−3, 3]: within 1e-5·(|b| + 1) of the f64 door everywhere.
    #[test]
    fn the_f32_score_agrees_with_the_f64_door_for_every_network() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for kind in [
            NetworkKind::Mlp,
            NetworkKind::NoiseConditionalMlp,
            NetworkKind::EnergyMlp,
        ] {
            for activation in [Activation::Tanh, Activation::Softplus, Activation::Silu] {
                for (dim, hidden) in [(2, vec![64, 64]), (7, vec![32, 48, 16])] {
                    let spec = NetworkSpec {
                        kind,
                        dim,
                        hidden,
                        activation,
                        tau: (kind == NetworkKind::EnergyMlp).then_some(3.0),
                    };
                    let net = spec.build(5).unwrap();
                    let x64 = Array2::from_shape_fn((33, dim), |_| rng.gen_range(-3.0..3.0));
                    let x32 = x64.mapv(|v| v as f32);
                    let mut f = Inference::new(&net);
                    let sigmas: Vec<Option<f64>> = match kind {
                        NetworkKind::NoiseConditionalMlp => vec![Some(0.3), Some(2.0)],
                        _ => vec![None],
                    };
                    for sigma in sigmas {
                        let door = net.score_function(sigma).unwrap();
                        let b = scorelab_core::Score::score(door.as_ref(), x64.view());
                        // Twice: the second call reuses the buffers of the first.
                        for _ in 0..2 {
                            let a = f.score(x32.view(), sigma.map(|s| s as f32)).unwrap();
                            Zip::from(&a).and(&b).for_each(|&a, &b| {
                                assert!(
                                    (a as f64 - b).abs() <= 1e-5 * (b.abs() + 1.0),
                                    "{kind:?} {activation:?} D={dim} σ={sigma:?}: {a} against {b}"
                                );
                            });
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_wrong_sigma_or_width_is_a_named_error() {
        let spec = |kind| NetworkSpec {
            kind,
            dim: 2,
            hidden: vec![4],
            activation: Activation::Tanh,
            tau: None,
        };
        let mut nc = Inference::new(&spec(NetworkKind::NoiseConditionalMlp).build(0).unwrap());
        let x = Array2::<f32>::zeros((3, 2));
        assert!(nc
            .score(x.view(), None)
            .unwrap_err()
            .to_string()
            .contains("sigma"));
        assert!(nc.score(x.view(), Some(0.0)).is_err());
        let mut mlp = Inference::new(&spec(NetworkKind::Mlp).build(0).unwrap());
        assert!(mlp.score(x.view(), Some(1.0)).is_err());
        let e = mlp
            .score(Array2::<f32>::zeros((3, 5)).view(), None)
            .unwrap_err();
        assert!(e.to_string().contains("5 columns"), "{e}");
        // A batch of another size after the first: the buffers follow.
        assert_eq!(mlp.score(x.view(), None).unwrap().dim(), (3, 2));
        assert_eq!(
            mlp.score(Array2::zeros((7, 2)).view(), None).unwrap().dim(),
            (7, 2)
        );
    }
}

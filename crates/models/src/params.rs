//! [`Params`]: a network's named, shaped f32 parameters, their initialisation from our own
//! ChaCha8Rng, and binding them as dfdx tensors.

use crate::net::{c, Bound, Dev, Real};
use dfdx::prelude::*;
use rand::Rng;
use rand_distr::{Distribution, Uniform};

/// A network's parameters θ: named `(rows, cols)` f32 blocks in a fixed order (vectors are
/// `(1, n)`). The flat order used by gradients, Adam and the f64
/// [`scorelab_core::ParameterGradient`] door is block by block, row-major within a block.
///
/// # Examples
/// ```
/// use scorelab_models::{Activation, Mlp};
/// let m = Mlp::new(2, &[8], Activation::Tanh, 1)?;
/// let p = m.params();
/// assert_eq!(p.names(), ["layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]);
/// assert_eq!(p.shapes(), [(2, 8), (1, 8), (8, 2), (1, 2)]);
/// assert_eq!(p.num_scalars(), 16 + 8 + 16 + 2);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    names: Vec<String>,
    shapes: Vec<(usize, usize)>,
    values: Vec<Vec<f32>>,
}

impl Params {
    /// An empty parameter list.
    pub(crate) fn empty() -> Self {
        Params {
            names: Vec::new(),
            shapes: Vec::new(),
            values: Vec::new(),
        }
    }

    /// Appends a block drawn i.i.d. from U(−1/√fan_in, 1/√fan_in) (PyTorch's `nn.Linear` default),
    /// row-major, from `rng`.
    pub(crate) fn push_uniform<R: Rng + ?Sized>(
        &mut self,
        name: String,
        shape: (usize, usize),
        fan_in: usize,
        rng: &mut R,
    ) {
        let bound = 1.0 / (fan_in as f64).sqrt();
        let u = Uniform::new_inclusive(-bound, bound);
        let values = (0..shape.0 * shape.1)
            .map(|_| u.sample(rng) as f32)
            .collect();
        self.push(name, shape, values);
    }

    /// Appends `layers.l.weight` (fan-in × fan-out) and `layers.l.bias` (1 × fan-out) for each
    /// consecutive pair of `sizes`, drawn as [`Params::push_uniform`]; the first layer's fan-in
    /// counts `first_extra_inputs` more inputs (a conditioning column kept as its own block).
    pub(crate) fn push_layers<R: Rng + ?Sized>(
        &mut self,
        sizes: &[usize],
        first_extra_inputs: usize,
        rng: &mut R,
    ) {
        for (l, win) in sizes.windows(2).enumerate() {
            let fan_in = if l == 0 {
                win[0] + first_extra_inputs
            } else {
                win[0]
            };
            self.push_uniform(format!("layers.{l}.weight"), (win[0], win[1]), fan_in, rng);
            self.push_uniform(format!("layers.{l}.bias"), (1, win[1]), fan_in, rng);
        }
    }

    /// Appends a block with the given values.
    pub(crate) fn push(&mut self, name: String, shape: (usize, usize), values: Vec<f32>) {
        assert_eq!(values.len(), shape.0 * shape.1, "block {name}");
        self.names.push(name);
        self.shapes.push(shape);
        self.values.push(values);
    }

    /// The block names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The block shapes, in order.
    pub fn shapes(&self) -> &[(usize, usize)] {
        &self.shapes
    }

    /// The block values (row-major), in order.
    pub fn values(&self) -> &[Vec<f32>] {
        &self.values
    }

    /// Mutable block values, for an optimiser. The shapes cannot change.
    pub fn values_mut(&mut self) -> &mut [Vec<f32>] {
        &mut self.values
    }

    /// The number of blocks.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no blocks.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The number of scalar parameters.
    pub fn num_scalars(&self) -> usize {
        self.values.iter().map(Vec::len).sum()
    }

    /// All parameters in the flat order.
    pub fn flat(&self) -> Vec<f32> {
        self.values.concat()
    }

    /// Whether every parameter is finite.
    pub fn all_finite(&self) -> bool {
        self.values.iter().flatten().all(|v| v.is_finite())
    }

    /// The parameters as dfdx tensors of dtype `E` on `dev` (new tensor ids).
    pub fn bind<E: Real>(&self, dev: &Dev) -> Bound<E>
    where
        Dev: Device<E>,
    {
        let tensors = self
            .values
            .iter()
            .zip(&self.shapes)
            .map(|(v, &shape)| {
                dev.tensor_from_vec(v.iter().map(|&x| c::<E>(f64::from(x))).collect(), shape)
            })
            .collect();
        Bound { tensors }
    }
}

//! [`Adam`], a small f32 Adam over [`Params`] (dfdx's optimisers need compile-time shapes), and
//! [`Ema`], an exponential moving average of the weights.

use crate::params::Params;

/// Adam (Kingma & Ba 2015, "Adam: a method for stochastic optimization", Algorithm 1):
///
/// mₜ = β₁mₜ₋₁ + (1 − β₁)gₜ, vₜ = β₂vₜ₋₁ + (1 − β₂)gₜ², θₜ = θₜ₋₁ − lr · m̂ₜ/(√v̂ₜ + ε),
/// with the bias corrections m̂ₜ = mₜ/(1 − β₁ᵗ), v̂ₜ = vₜ/(1 − β₂ᵗ). Defaults β₁ = 0.9,
/// β₂ = 0.999, ε = 10⁻⁸ (PyTorch's and JAX's).
///
/// # Examples
/// ```
/// use scorelab_models::{Activation, Adam, Mlp};
/// let mut m = Mlp::new(1, &[], Activation::Tanh, 0)?; // s = w x + b
/// let mut adam = Adam::new(m.params(), 0.1)?;
/// assert!(Adam::new(m.params(), 0.0).is_err());
/// let before = m.params().flat();
/// // One step against the gradient (1, 1): each parameter moves by lr (Adam's first step is ±lr).
/// adam.step(m.params_mut(), &[vec![1.0], vec![1.0]]);
/// let after = m.params().flat();
/// assert!((before[0] - after[0] - 0.1).abs() < 1e-6);
/// assert_eq!(adam.steps(), 1);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Adam {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: u64,
}

impl Adam {
    /// Adam with zero moments for `params` and learning rate `lr`.
    ///
    /// # Errors
    /// [`crate::ModelError`] naming `lr` unless it is finite and > 0.
    pub fn new(params: &Params, lr: f64) -> Result<Self, crate::ModelError> {
        let lr = scorelab_core::error::positive(lr, "lr")?;
        let zeros: Vec<Vec<f32>> = params.values().iter().map(|b| vec![0.0; b.len()]).collect();
        Ok(Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            m: zeros.clone(),
            v: zeros,
            t: 0,
        })
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// Changes the learning rate (a resumed run may lower it).
    ///
    /// # Errors
    /// [`crate::ModelError`] naming `lr` unless it is finite and > 0.
    pub fn set_lr(&mut self, lr: f64) -> Result<(), crate::ModelError> {
        self.lr = scorelab_core::error::positive(lr, "lr")?;
        Ok(())
    }

    /// The number of steps taken.
    pub fn steps(&self) -> u64 {
        self.t
    }

    /// The first and second moments, block by block (for checkpoints).
    pub fn moments(&self) -> (&[Vec<f32>], &[Vec<f32>]) {
        (&self.m, &self.v)
    }

    /// Restores moments and step count from a checkpoint.
    ///
    /// # Panics
    /// If the block sizes differ from the current ones (checkpoint loading validates first).
    pub fn restore(&mut self, m: Vec<Vec<f32>>, v: Vec<Vec<f32>>, t: u64) {
        let sizes = |x: &[Vec<f32>]| x.iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(sizes(&m), sizes(&self.m), "Adam moments' shapes");
        assert_eq!(sizes(&v), sizes(&self.v), "Adam moments' shapes");
        self.m = m;
        self.v = v;
        self.t = t;
    }

    /// One Adam step on `params` with gradient `grads` (block by block, as
    /// [`crate::Bound::gradients`] returns them).
    ///
    /// # Panics
    /// If `grads` does not have the blocks of `params`.
    pub fn step(&mut self, params: &mut Params, grads: &[Vec<f64>]) {
        self.step_with(params, grads, |g| g as f32)
    }

    /// [`Adam::step`] with f32 gradients (the direct training step's), applied as they are.
    ///
    /// # Panics
    /// If `grads` does not have the blocks of `params`.
    pub fn step_f32(&mut self, params: &mut Params, grads: &[Vec<f32>]) {
        self.step_with(params, grads, |g| g)
    }

    fn step_with<G: Copy>(
        &mut self,
        params: &mut Params,
        grads: &[Vec<G>],
        as_f32: impl Fn(G) -> f32,
    ) {
        assert_eq!(
            grads.len(),
            params.len(),
            "one gradient block per parameter block"
        );
        self.t += 1;
        let t = self.t as i32;
        let c1 = 1.0 - self.beta1.powi(t);
        let c2 = 1.0 - self.beta2.powi(t);
        let (b1, b2) = (self.beta1 as f32, self.beta2 as f32);
        let step = (self.lr / c1) as f32;
        let inv_c2 = (1.0 / c2) as f32;
        let eps = self.eps as f32;
        for (((theta, g), m), v) in params
            .values_mut()
            .iter_mut()
            .zip(grads)
            .zip(&mut self.m)
            .zip(&mut self.v)
        {
            assert_eq!(theta.len(), g.len(), "gradient block size");
            // Zipped slices, no indexing: the loop vectorises.
            for (((t, &gi), mi), vi) in theta.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut())
            {
                let gi = as_f32(gi);
                *mi = b1 * *mi + (1.0 - b1) * gi;
                *vi = b2 * *vi + (1.0 - b2) * gi * gi;
                *t -= step * *mi / ((*vi * inv_c2).sqrt() + eps);
            }
        }
    }
}

/// An exponential moving average of the weights, θ̄ ← γθ̄ + (1 − γ)θ after every step, started at
/// the initial weights (Polyak averaging; NCSNv2 uses γ = 0.999 for sampling).
///
/// # Examples
/// ```
/// use scorelab_models::{Activation, Ema, Mlp};
/// let mut m = Mlp::new(1, &[], Activation::Tanh, 0)?;
/// let mut ema = Ema::new(m.params(), 0.5)?;
/// assert!(Ema::new(m.params(), 1.0).is_err());
/// let start = m.params().flat()[0];
/// m.params_mut().values_mut()[0][0] = start + 2.0;
/// ema.update(m.params());
/// assert!((ema.params().flat()[0] - (start + 1.0)).abs() < 1e-6);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Ema {
    decay: f64,
    shadow: Params,
}

impl Ema {
    /// An average with decay γ = `decay` ∈ (0, 1), started at `params` (γ = 0 would be no
    /// average: leave the EMA out instead).
    ///
    /// # Errors
    /// [`crate::ModelError`] naming `ema` unless 0 < γ < 1.
    pub fn new(params: &Params, decay: f64) -> Result<Self, crate::ModelError> {
        if !(decay > 0.0 && decay < 1.0) {
            return Err(crate::ModelError::invalid(
                "ema",
                format!("the decay must be in (0, 1), got {decay}"),
            ));
        }
        Ok(Ema {
            decay,
            shadow: params.clone(),
        })
    }

    /// γ.
    pub fn decay(&self) -> f64 {
        self.decay
    }

    /// θ̄ ← γθ̄ + (1 − γ)θ.
    pub fn update(&mut self, params: &Params) {
        let g = self.decay as f32;
        for (s, p) in self.shadow.values_mut().iter_mut().zip(params.values()) {
            for (a, b) in s.iter_mut().zip(p) {
                *a = g * *a + (1.0 - g) * b;
            }
        }
    }

    /// θ̄.
    pub fn params(&self) -> &Params {
        &self.shadow
    }

    /// θ̄, mutable (for restoring a checkpoint).
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.shadow
    }
}

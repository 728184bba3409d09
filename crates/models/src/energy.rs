//! [`EnergyMlp`]: the seed's parameterisation, a scalar energy f_θ(x) = MLP(x) + ‖x‖²/(2τ²) with
//! p_θ ∝ e^{−f_θ} and s_θ = −∇ₓf_θ.
//!
//! # Notation
//! Hidden layers l = 1 … L: hₗ = aₗ₋₁ Wₗ₋₁ + bₗ₋₁ (a₀ = x), aₗ = φ(hₗ), dₗ = φ′(hₗ), d̈ₗ = φ″(hₗ);
//! the net energy is g(x) = a_L w (w: H_L × 1, no bias: it would not change the score).
//!
//! # Score: reverse mode written as forward ops
//! δ_L = wᵀ, eₗ = δₗ ⊙ dₗ, δₗ₋₁ = eₗ Wₗ₋₁ᵀ, ∇g = e₁ W₀ᵀ, and s = −∇g − x/τ².
//!
//! # JVP: the Hessian–vector product as taped ops
//! Forward tangent ḣ₁ = v W₀, ḣₗ₊₁ = (dₗ ⊙ ḣₗ) Wₗ, ḋₗ = d̈ₗ ⊙ ḣₗ; backward tangent ė_L = δ_L ⊙ ḋ_L,
//! δ̇ₗ₋₁ = ėₗ Wₗ₋₁ᵀ, ėₗ₋₁ = δ̇ₗ₋₁ ⊙ dₗ₋₁ + δₗ₋₁ ⊙ ḋₗ₋₁; then ∇²g v = ė₁ W₀ᵀ and
//! J v = −∇²g v − v/τ². The naive trace pushes the D basis tangents (ḣ₁ = rows of W₀) through it:
//! tr ∇²g = Σₖ Σᵢ ė₁[k, i] W₀[k, i]. Cost O(B·D·H²).
//!
//! # Structured trace through G = W₀ᵀW₀ (O(B·H³) per batch plus O(D·H₁²) per step)
//! Only the activations are non-linear, so ∇²g = Σₗ Jₗ diag(d̈ₗ ⊙ δₗ) Jₗᵀ, where
//! Jₗ = ∂hₗ/∂x (D × Hₗ) = W₀ Aₗ with A₁ = I and Aₗ₊₁ = Aₗ diag(dₗ) Wₗ (Hₗ is H₁ × Hₗ). Hence
//!
//!   tr ∇²g = Σₗ Σₖ (d̈ₗ ⊙ δₗ)ₖ (Aₗᵀ G Aₗ)ₖₖ,  G = W₀ᵀ W₀ (H₁ × H₁, once per step).
//!
//! Carry Ãₗ = G Aₗ with the same recursion (the column scaling by dₗ commutes with left-multiplying
//! by G): Ã₁ = G, Ãₗ₊₁ = (Ãₗ diag(dₗ)) Wₗ. Then (AₗᵀGAₗ)ₖₖ = Σᵢ Aₗ[i, k] Ãₗ[i, k]; for l = 1 it is
//! Gₖₖ. Per point this costs O(H₁²·Hₗ) per layer and never touches D after G; forming G and its
//! backward cost O(D·H₁²) once per step, so the step still grows with D (as the first layer's
//! matmul of every objective does), but not like the D passes of the naive trace.
//!
//! Where D ≤ H₁ the same sum is cheaper through the D rows of Jₗ themselves:
//! (JₗᵀJₗ)ₖₖ = Σⱼ Jₗ[j, k]², with the rows carried by J₁ = W₀, Jₗ₊₁ = (Jₗ diag(dₗ)) Wₗ, at
//! O(D·H₁·Hₗ) per point and layer (min(D, H₁) tangents, as the MLP's deep structured trace).

use crate::fused::{add_bias, input_matmul};
use crate::mlp::{check_arch, door_impls, door_trace, layer_sizes, DoorForward, CHUNK};
use crate::net::{
    bmm, c, over_batch, over_cols, over_k, per_col, tensor1, tensor2, to_f64, transpose,
    Activation, Bound, Dev, Outputs, Real, Tangents, Taped, TraceMethod, T2, T3,
};
use crate::params::Params;
use crate::ModelError;
use dfdx::prelude::*;
use ndarray::{Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, ParameterGradient, Score, ScoreFunction};

/// f_θ(x) = MLP(x) + ‖x‖²/(2τ²), s_θ = −∇ₓf_θ: a score that is a gradient field by construction,
/// with e^{−f_θ} integrable for any θ when φ grows at most linearly (all three activations do).
///
/// Parameters, in order: `layers.l.weight`, `layers.l.bias` for the L ≥ 1 hidden layers, then
/// `output.weight` (H_L × 1), drawn in that order from U(−1/√fan_in, 1/√fan_in) with
/// `ChaCha8Rng::seed_from_u64(seed)`. τ is fixed, not trained. The maths is in the module docs.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::ScoreFunction;
/// use scorelab_models::{Activation, EnergyMlp, TraceMethod};
/// let m = EnergyMlp::new(4, &[8, 8], Activation::Tanh, 3.0, 2)?;
/// let x = array![[0.1, 0.2, -0.3, 0.4]];
/// let naive = m.trace(x.view(), TraceMethod::Naive)[0];
/// let structured = m.trace(x.view(), TraceMethod::Structured)[0];
/// assert!((naive - structured).abs() < 1e-12);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
///
/// # Errors
/// [`EnergyMlp::new`] fails for D = 0, no hidden layer, a width of 0, or τ not positive and finite.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyMlp {
    dim: usize,
    hidden: Vec<usize>,
    activation: Activation,
    tau: f64,
    params: Params,
}

impl EnergyMlp {
    /// A randomly initialised energy network (type docs for the draw order).
    ///
    /// # Errors
    /// A [`ModelError`] naming `dim`, `hidden` or `tau`.
    pub fn new(
        dim: usize,
        hidden: &[usize],
        activation: Activation,
        tau: f64,
        seed: u64,
    ) -> Result<Self, ModelError> {
        check_arch(dim, hidden)?;
        if hidden.is_empty() {
            return Err(ModelError::invalid(
                "hidden",
                "energy_mlp needs at least one hidden layer, e.g. hidden = [64, 64]",
            ));
        }
        if !(tau > 0.0 && tau.is_finite()) {
            return Err(ModelError::invalid(
                "tau",
                format!("must be positive and finite, got {tau}"),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Params::empty();
        params.push_layers(&layer_sizes(dim, hidden, None), 0, &mut rng);
        let hl = *hidden.last().expect("non-empty");
        params.push_uniform("output.weight".into(), (hl, 1), hl, &mut rng);
        Ok(EnergyMlp {
            dim,
            hidden: hidden.to_vec(),
            activation,
            tau,
            params,
        })
    }

    /// The hidden widths.
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.activation
    }

    /// τ, the width of the confining term ‖x‖²/(2τ²).
    pub fn tau(&self) -> f64 {
        self.tau
    }

    /// θ.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// θ, mutable.
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// f_θ(xᵢ) for each row (unnormalised: p_θ = e^{−f_θ}/Z_θ).
    pub fn energy(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let dev = Dev::default();
        let p = self.params.bind::<f64>(&dev);
        let l = self.hidden.len();
        let inv = 0.5 / (self.tau * self.tau);
        let mut out = Vec::with_capacity(x.nrows());
        for chunk in x.axis_chunks_iter(ndarray::Axis(0), CHUNK) {
            let xs: Vec<f64> = chunk.iter().copied().collect();
            let n = chunk.nrows();
            let mut a: T2<f64> = tensor2(&dev, &xs, chunk.dim());
            for i in 0..l {
                let h =
                    a.matmul(p.mat::<NoneTape>(2 * i)) + per_col(p.vec::<NoneTape>(2 * i + 1), n);
                a = self.activation.apply(h, false, true).0;
            }
            let g = to_f64(&a.matmul(p.mat::<NoneTape>(2 * l)));
            out.extend(
                chunk
                    .rows()
                    .into_iter()
                    .zip(g)
                    .map(|(r, g)| g + inv * r.dot(&r)),
            );
        }
        Array1::from(out)
    }

    /// ∇_θ Σᵢ aᵢ f_θ(xᵢ) for the rows xᵢ of `x` and weights `a`, by one taped pass in f32, in
    /// parameter order (the confining ‖x‖²/(2τ²) has no θ). With aᵢ = 1/n on data and
    /// a = −wₖ e^{−f_θ(zₖ)}/Z_θ on quadrature nodes zₖ it is the gradient of the negative
    /// log-likelihood mean f_θ(x) + log Z_θ, since ∇_θ log Z_θ = −E_{p_θ}\[∇_θ f_θ\].
    ///
    /// # Examples
    /// ```
    /// use scorelab_models::{Activation, EnergyMlp};
    /// let m = EnergyMlp::new(2, &[4], Activation::Tanh, 3.0, 1)?;
    /// let g = m.weighted_energy_gradient(ndarray::array![[0.1, 0.2], [1.0, -1.0]].view(), &[0.5, 0.5]);
    /// assert_eq!(g.len(), m.params().len());
    /// # Ok::<(), scorelab_models::ModelError>(())
    /// ```
    ///
    /// # Panics
    /// Unless `a` has one weight per row of `x` and `x` has D columns.
    pub fn weighted_energy_gradient(&self, x: ArrayView2<f64>, a: &[f64]) -> Vec<Vec<f64>> {
        let (n, d) = x.dim();
        assert!(
            a.len() == n && d == self.dim,
            "one weight per row of D columns"
        );
        let dev = Dev::default();
        let p = self.params.bind::<f32>(&dev);
        let l = self.hidden.len();
        let flat: Vec<f64> = x.iter().copied().collect();
        let mut act = tensor2::<f32>(&dev, &flat, (n, d)).put_tape(Taped::<f32>::default());
        for i in 0..l {
            let h =
                act.matmul(p.mat::<Taped<f32>>(2 * i)) + per_col(p.vec::<Taped<f32>>(2 * i + 1), n);
            act = self.activation.apply(h, false, true).0;
        }
        let g = act.matmul(p.mat::<Taped<f32>>(2 * l)).reshape_like(&(n,));
        let total = (g * tensor1::<f32>(&dev, a)).sum::<(), _>();
        let mut grads = total.backward();
        p.gradients(&mut grads)
    }

    /// The forward on bound parameters: the score and what `tangents` asks for (module docs).
    pub fn forward<E: Real, T: Tape<E, Dev>>(
        &self,
        p: &Bound<E>,
        x: T2<E, T>,
        tangents: &Tangents<E>,
    ) -> Outputs<E, T>
    where
        Dev: Device<E>,
    {
        let (n, dim) = *x.shape();
        let l_count = self.hidden.len();
        let inv_tau2 = c::<E>(1.0 / (self.tau * self.tau));
        let w = |l: usize| p.mat::<T>(2 * l);
        let x_copy = x.retaped::<T>();
        let mut a = x;
        let mut ds = Vec::with_capacity(l_count);
        let mut dds = Vec::with_capacity(l_count);
        for l in 0..l_count {
            let pre = if l == 0 {
                input_matmul(a, w(0))
            } else {
                a.matmul(w(l))
            };
            let h = add_bias(pre, p.mat::<T>(2 * l + 1));
            let (next, d, dd) = self.activation.apply(h, true, false);
            ds.push(d);
            dds.push(dd.expect("second derivative asked"));
            a = next;
        }
        drop(a);
        // Reverse pass as forward ops; keep fresh copies of δₗ and dₗ for the tangents.
        let hl = self.hidden[l_count - 1];
        let w_out = p.mat::<T>(2 * l_count).reshape_like(&(hl,));
        let mut delta = per_col(w_out, n);
        let mut deltas: Vec<T2<E, T>> = Vec::with_capacity(l_count);
        let mut d_copies: Vec<T2<E, T>> = Vec::with_capacity(l_count);
        for (l, d) in ds.into_iter().enumerate().rev() {
            deltas.push(delta.retaped::<T>());
            d_copies.push(d.retaped::<T>());
            let e = delta * d;
            delta = e.matmul(transpose(w(l)));
        }
        deltas.reverse();
        d_copies.reverse();
        let grad = delta; // ∇g, (n, D)
        let score = grad.negate() - x_copy.retaped::<T>() * inv_tau2;
        let mut out = Outputs {
            score,
            jvp: None,
            trace: None,
        };
        match tangents {
            Tangents::None => {}
            Tangents::Jvp(v) => {
                let k = v.shape().1;
                let hdot0 = bmm(v.retaped::<T>(), w(0));
                let e1 = self.tangent_pass(hdot0, &w, &d_copies, dds, &deltas, k);
                let hv = bmm(e1, transpose(w(0)));
                out.jvp = Some(hv.negate() - v.retaped::<T>() * inv_tau2);
            }
            Tangents::Trace(TraceMethod::Naive) => {
                let hdot0 = over_batch(w(0), n);
                let e1 = self.tangent_pass(hdot0, &w, &d_copies, dds, &deltas, dim);
                let tr = (e1 * over_batch(w(0), n)).sum::<(usize,), Axes2<1, 2>>();
                out.trace = Some(tr.negate() - c::<E>(dim as f64) * inv_tau2);
            }
            Tangents::Trace(TraceMethod::Structured) => {
                let tr = self.structured(&w, d_copies, dds, deltas, n);
                out.trace = Some(tr.negate() - c::<E>(dim as f64) * inv_tau2);
            }
        }
        out
    }

    /// ė₁ for K tangents per point with first pre-activation tangent `hdot0` `(B, K, H₁)`.
    fn tangent_pass<E: Real, T: Tape<E, Dev>>(
        &self,
        hdot0: T3<E, T>,
        w: &impl Fn(usize) -> T2<E, T>,
        ds: &[T2<E, T>],
        dds: Vec<T2<E, T>>,
        deltas: &[T2<E, T>],
        k: usize,
    ) -> T3<E, T>
    where
        Dev: Device<E>,
    {
        let l_count = ds.len();
        let mut ddots: Vec<T3<E, T>> = Vec::with_capacity(l_count);
        let mut hdot = Some(hdot0);
        for (l, dd) in dds.into_iter().enumerate() {
            let h = hdot.take().expect("tangent");
            if l + 1 < l_count {
                ddots.push(over_k(dd, k) * h.retaped::<T>());
                hdot = Some(bmm(h * over_k(ds[l].retaped::<T>(), k), w(l + 1)));
            } else {
                ddots.push(over_k(dd, k) * h);
            }
        }
        let mut ddots = ddots.into_iter().rev();
        let mut e = over_k(deltas[l_count - 1].retaped::<T>(), k) * ddots.next().expect("layers");
        for l in (1..l_count).rev() {
            let delta_dot = bmm(e, transpose(w(l)));
            let ddot = ddots.next().expect("layers");
            e = delta_dot * over_k(ds[l - 1].retaped::<T>(), k)
                + over_k(deltas[l - 1].retaped::<T>(), k) * ddot;
        }
        e
    }

    /// tr ∇²g through G = W₀ᵀW₀ (module docs).
    fn structured<E: Real, T: Tape<E, Dev>>(
        &self,
        w: &impl Fn(usize) -> T2<E, T>,
        ds: Vec<T2<E, T>>,
        dds: Vec<T2<E, T>>,
        deltas: Vec<T2<E, T>>,
        n: usize,
    ) -> crate::net::T1<E, T>
    where
        Dev: Device<E>,
    {
        let h1 = self.hidden[0];
        if self.dim <= h1 {
            return self.structured_by_rows(w, ds, dds, deltas, n);
        }
        // dfdx's backward needs distinct ids for the two operands: W₀ᵀ and a copy of W₀.
        let g = transpose(w(0)).matmul(w(0) * E::one());
        let diag_g = w(0).square().sum::<(usize,), Axis<0>>();
        let mut curv = dds.into_iter().zip(deltas).map(|(dd, delta)| dd * delta);
        let c1 = curv.next().expect("layers");
        let mut tr = (c1 * per_col(diag_g, n)).sum::<(usize,), Axis<1>>();
        let mut g = Some(g);
        let mut state: Option<(T3<E, T>, T3<E, T>)> = None;
        for (l, (d_prev, cl)) in ds.into_iter().zip(curv).enumerate() {
            let hl = self.hidden[l + 1];
            let (a, at) = match state.take() {
                None => {
                    let a = over_cols(d_prev.retaped::<T>(), hl) * over_batch(w(1), n);
                    let g = g.take().expect("first use");
                    let at = bmm(over_batch(g, n) * over_k(d_prev, h1), w(1));
                    (a, at)
                }
                Some((a, at)) => {
                    let scale = over_k(d_prev, h1);
                    let a = bmm(a * scale.retaped::<T>(), w(l + 1));
                    let at = bmm(at * scale, w(l + 1));
                    (a, at)
                }
            };
            // The originals (carrying the ops that made them) go into q; the next layer uses copies.
            let keep = (a.retaped::<T>(), at.retaped::<T>());
            let q = (a * at).sum::<(usize, usize), Axis<1>>();
            tr = tr + (cl * q).sum::<(usize,), Axis<1>>();
            state = Some(keep);
        }
        tr
    }

    /// tr ∇²g through the D rows of Jₗ (module docs), for D ≤ H₁: Uₗ = Jₗᵀ per point, U₁ = W₀,
    /// Uₗ₊₁ = (Uₗ diag(dₗ)) Wₗ, and (JₗᵀJₗ)ₖₖ = Σⱼ Uₗ[j, k]².
    fn structured_by_rows<E: Real, T: Tape<E, Dev>>(
        &self,
        w: &impl Fn(usize) -> T2<E, T>,
        ds: Vec<T2<E, T>>,
        dds: Vec<T2<E, T>>,
        deltas: Vec<T2<E, T>>,
        n: usize,
    ) -> crate::net::T1<E, T>
    where
        Dev: Device<E>,
    {
        let dim = self.dim;
        let mut curv = dds.into_iter().zip(deltas).map(|(dd, delta)| dd * delta);
        let c1 = curv.next().expect("layers");
        let diag_g = w(0).square().sum::<(usize,), Axis<0>>();
        let mut tr = (c1 * per_col(diag_g, n)).sum::<(usize,), Axis<1>>();
        let mut rows: Option<T3<E, T>> = None;
        for (l, (d_prev, cl)) in ds.into_iter().zip(curv).enumerate() {
            let prev = rows.take().unwrap_or_else(|| over_batch(w(0), n));
            let next = bmm(prev * over_k(d_prev, dim), w(l + 1));
            // The original (carrying its ops) goes into q; the next layer uses a copy.
            let keep = next.retaped::<T>();
            let q = next.square().sum::<(usize, usize), Axis<1>>();
            tr = tr + (cl * q).sum::<(usize,), Axis<1>>();
            rows = Some(keep);
        }
        tr
    }

    /// The exact trace tr ∇ₓs_θ(xᵢ) = −tr ∇²f_θ(xᵢ) by `method`, in f64.
    pub fn trace(&self, x: ArrayView2<f64>, method: TraceMethod) -> Array1<f64> {
        door_trace(self, x, method)
    }
}

impl Dimension for EnergyMlp {
    fn dim(&self) -> usize {
        self.dim
    }
}

impl DoorForward for EnergyMlp {
    fn door_params(&self) -> &Params {
        &self.params
    }
    /// Naive costs O(B·D·H²), structured O(B·H³): the f64 door takes the cheaper.
    fn door_trace_method(&self) -> TraceMethod {
        if self.dim < self.hidden[0] {
            TraceMethod::Naive
        } else {
            TraceMethod::Structured
        }
    }
    fn door_forward<T: Tape<f64, Dev>>(
        &self,
        p: &Bound<f64>,
        x: T2<f64, T>,
        tangents: &Tangents<f64>,
    ) -> Outputs<f64, T> {
        self.forward(p, x, tangents)
    }
}

door_impls!(EnergyMlp);

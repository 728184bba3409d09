//! [`Mlp`] s_θ(x) = MLP(x) and [`NoiseConditionalMlp`] s_θ(x, σ) = MLP(x, log σ)/σ.
//!
//! # Notation
//! Row vectors: h₁ = x W₀ + b₀, aₗ = φ(hₗ), hₗ₊₁ = aₗ Wₗ + bₗ, s = a_L W_L + b_L with L hidden layers
//! (Wₗ is fan-in × fan-out) and dₗ = φ′(hₗ). The Jacobian J = ∂s/∂x satisfies, for a row tangent v,
//! (Jv)ᵀ = v W₀ D₁ W₁ D₂ ⋯ D_L W_L with Dₗ = diag(dₗ).
//!
//! # The JVP as taped ops
//! Push the tangent alongside the forward: t₁ = d₁ ⊙ (v W₀), tₗ₊₁ = dₗ₊₁ ⊙ (tₗ Wₗ), Jv = t_L W_L.
//! Every step is an ordinary dfdx op (φ′ is built from taped ops), so backward gives ∇_θ of any
//! loss containing Jv: no double backward needed (docs/ARCHITECTURE.md, "Jacobian traces").
//!
//! # Exact traces
//! * **Naive**: the D basis tangents at once. v W₀ for v = eₖ is row k of W₀, so t₁ is the
//!   `(B, D, H₁)` tensor d₁[b] ⊙ W₀[k]; after the last hidden layer
//!   tr J = Σₖ (t_L W_L)[b, k, k] = Σₖ Σⱼ t_L[b, k, j] W_L[j, k]. Cost O(B·D·H²).
//! * **Structured** (cyclic trace): tr J = tr(W₀ D₁ W₁ ⋯ D_L W_L) = tr(D₁ W₁ D₂ ⋯ W_{L−1} D_L M)
//!   with M = W_L W₀ (H_L × H₁, once per step).
//!   - L = 0: tr W₀ (the linear model).
//!   - L = 1: Σᵢ d₁ᵢ Mᵢᵢ.
//!   - L = 2: d₁ᵀ (W₁ ∘ Mᵀ) d₂ per point: one `(B, H₁) × (H₁, H₂)` matmul, O(B·H²) per batch,
//!     plus O(D·H₁H₂) per step to form M and its backward. The step therefore grows with D, like
//!     the input and output layers of every objective: measured beside JAX in one run
//!     (`results/jacobian_cost_comparison.md`), it costs 1–2× a DSM step at every D from 2 to
//!     512, where an exact trace by D passes costs D times more.
//!   - L ≥ 3: min(D, H₁, H_L) tangents: D basis tangents (naive) if D is smallest; otherwise the H₁
//!     rows of D₁ pushed forward (T ← (T Wₗ) ⊙ dₗ₊₁, then Σ T ∘ Mᵀ) or, if H_L is smallest, the H_L
//!     rows of D_L pushed backward through the transposed layers (then Σ T ∘ M).

use crate::fused::{add_bias, diag_contract, input_matmul, outer_rows, scale_k};
use crate::net::{
    bmm, c, over_batch, over_cols, over_k, per_col, per_row, to_f64, transpose, Activation, Bound,
    Dev, Outputs, Real, Tangents, Taped, TraceMethod, T1, T2, T3,
};
use crate::network::{EdmCoefficients, Precondition};
use crate::params::Params;
use crate::ModelError;
use dfdx::prelude::*;
use ndarray::{Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::{Dimension, NoisedScore, ParameterGradient, Score, ScoreFunction};

/// Rows per dfdx call in the f64 door (bounds memory for large batches).
pub(crate) const CHUNK: usize = 1024;

/// [D, H₁, …, H_L] and then `out` if given: the widths of a network's affine layers.
pub(crate) fn layer_sizes(dim: usize, hidden: &[usize], out: Option<usize>) -> Vec<usize> {
    std::iter::once(dim)
        .chain(hidden.iter().copied())
        .chain(out)
        .collect()
}

/// Validates the architecture shared by the networks.
pub(crate) fn check_arch(dim: usize, hidden: &[usize]) -> Result<(), ModelError> {
    if dim == 0 {
        return Err(ModelError::invalid("dim", "must be at least 1"));
    }
    if let Some(i) = hidden.iter().position(|&h| h == 0) {
        return Err(ModelError::invalid(
            "hidden",
            format!("layer {i} has width 0; every hidden width must be at least 1"),
        ));
    }
    Ok(())
}

/// The forward of an MLP whose parameters are `p.tensors[2l]` (weight) and `[2l + 1]` (bias) for
/// layers l = 0 ..= `hidden` (the last is the output layer), with an optional per-point addition
/// `extra` to the first pre-activation. See the module docs for the maths.
pub(crate) fn mlp_forward<E: Real, T: Tape<E, Dev>>(
    act: Activation,
    hidden: usize,
    p: &Bound<E>,
    x: T2<E, T>,
    extra: Option<T2<E, T>>,
    tangents: &Tangents<E>,
) -> Outputs<E, T>
where
    Dev: Device<E>,
{
    let (n, dim) = *x.shape();
    let dev = x.device().clone();
    let mut extra = extra;
    let mut a = x;
    let mut ds: Vec<T2<E, T>> = Vec::with_capacity(hidden);
    for l in 0..hidden {
        let pre = if l == 0 {
            input_matmul(a, p.mat::<T>(0))
        } else {
            a.matmul(p.mat::<T>(2 * l))
        };
        let mut h = add_bias(pre, p.mat::<T>(2 * l + 1));
        if let Some(e) = extra.take() {
            h = h + e;
        }
        let (next, d, _) = act.apply(h, false, true);
        ds.push(d);
        a = next;
    }
    let out = if hidden == 0 {
        input_matmul(a, p.mat::<T>(0))
    } else {
        a.matmul(p.mat::<T>(2 * hidden))
    };
    let mut score = add_bias(out, p.mat::<T>(2 * hidden + 1));
    if let Some(e) = extra.take() {
        score = score + e;
    }
    let w = |l: usize| p.mat::<T>(2 * l);
    let mut out = Outputs {
        score,
        jvp: None,
        trace: None,
    };
    match tangents {
        Tangents::None => {}
        Tangents::Jvp(v) => {
            let mut t: T3<E, T> = bmm(v.retaped::<T>(), w(0));
            for (l, d) in ds.into_iter().enumerate() {
                t = bmm(scale_k(t, d), w(l + 1));
            }
            out.jvp = Some(t);
        }
        Tangents::Trace(method) => {
            let tr = if hidden == 0 {
                linear_trace(&dev, w(0), n)
            } else {
                let naive = *method == TraceMethod::Naive
                    || (hidden >= 3 && dim <= ds[0].shape().1.min(ds[hidden - 1].shape().1));
                if naive {
                    naive_trace(w, ds, dim, hidden)
                } else {
                    structured_trace(w, ds, n, hidden)
                }
            };
            out.trace = Some(tr);
        }
    }
    out
}

/// tr W for a square W, for every one of n points.
fn linear_trace<E: Real, T: Tape<E, Dev>>(dev: &Dev, w: T2<E, T>, n: usize) -> T1<E, T>
where
    Dev: Device<E>,
{
    let d = w.shape().0;
    let mut eye = vec![E::zero(); d * d];
    for i in 0..d {
        eye[i * d + i] = E::one();
    }
    let eye: T2<E> = dev.tensor_from_vec(eye, (d, d));
    (w * eye).sum::<(), _>().broadcast_like::<_, Axis<0>>(&(n,))
}

/// D basis tangents as one `(B, D, H)` batch.
fn naive_trace<E: Real, T: Tape<E, Dev>>(
    w: impl Fn(usize) -> T2<E, T>,
    ds: Vec<T2<E, T>>,
    dim: usize,
    hidden: usize,
) -> T1<E, T>
where
    Dev: Device<E>,
{
    let mut t: Option<T3<E, T>> = None;
    for (l, d) in ds.into_iter().enumerate() {
        t = Some(match t {
            None => outer_rows(w(0), d),
            Some(t) => scale_k(bmm(t, w(l)), d),
        });
    }
    let t = t.expect("at least one hidden layer");
    debug_assert_eq!(t.shape().1, dim);
    diag_contract(t, w(hidden))
}

/// The cyclic-trace formulas (module docs).
fn structured_trace<E: Real, T: Tape<E, Dev>>(
    w: impl Fn(usize) -> T2<E, T>,
    ds: Vec<T2<E, T>>,
    n: usize,
    hidden: usize,
) -> T1<E, T>
where
    Dev: Device<E>,
{
    // M = W_L W₀ (H_L × H₁).
    let m = w(hidden).matmul(w(0));
    let mut ds = ds;
    match hidden {
        1 => {
            let d1 = ds.pop().expect("one layer");
            let diag = (w(1) * transpose(w(0))).sum::<(usize,), Axis<1>>();
            (d1 * per_col(diag, n)).sum::<(usize,), Axis<1>>()
        }
        2 => {
            let d2 = ds.pop().expect("two layers");
            let d1 = ds.pop().expect("two layers");
            let p = w(1) * transpose(m);
            (d1.matmul(p) * d2).sum::<(usize,), Axis<1>>()
        }
        _ => {
            let h1 = ds[0].shape().1;
            let hl = ds[hidden - 1].shape().1;
            if h1 <= hl {
                // Rows of D₁ forward: T[i, j] = d₁ᵢ W₁[i, j] d₂ⱼ, then T ← (T Wₗ) ⊙ dₗ₊₁.
                let mut it = ds.into_iter();
                let d1 = it.next().expect("layers");
                let d2 = it.next().expect("layers");
                let h2 = d2.shape().1;
                let mut t = over_cols(d1, h2) * over_batch(w(1), n) * over_k(d2, h1);
                for (j, d) in it.enumerate() {
                    t = bmm(t, w(j + 2)) * over_k(d, h1);
                }
                (t * over_batch(transpose(m), n)).sum::<(usize,), Axes2<1, 2>>()
            } else {
                // Rows of D_L backward through the transposed layers, then Σ T ∘ M.
                let dl = ds.pop().expect("layers");
                let dl1 = ds.pop().expect("layers");
                let hl1 = dl1.shape().1;
                let mut t =
                    over_cols(dl, hl1) * over_batch(transpose(w(hidden - 1)), n) * over_k(dl1, hl);
                let mut layer = hidden - 2;
                while let Some(d) = ds.pop() {
                    t = bmm(t, transpose(w(layer))) * over_k(d, hl);
                    layer -= 1;
                }
                (t * over_batch(m, n)).sum::<(usize,), Axes2<1, 2>>()
            }
        }
    }
}

/// s_θ(x) = MLP(x): `hidden.len()` hidden layers of activation φ, then a linear output of width D.
/// With no hidden layers it is the linear score x W₀ + b₀ (the `linear` model of `scorelab train`).
///
/// Parameters, in order: `layers.l.weight` (fan-in × fan-out) and `layers.l.bias` (1 × fan-out) for
/// l = 0 … L, drawn in that order, row-major, from U(−1/√fan_in, 1/√fan_in) with
/// `ChaCha8Rng::seed_from_u64(seed)`. The JVP and both exact traces are in the module docs.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::ScoreFunction;
/// use scorelab_models::{Activation, Mlp, TraceMethod};
/// let m = Mlp::new(3, &[16, 16], Activation::Softplus, 7)?;
/// let x = array![[0.1, -0.2, 0.3], [1.0, 0.0, -1.0]];
/// let naive = m.trace(x.view(), TraceMethod::Naive);
/// let structured = m.jacobian_trace(x.view()); // structured
/// for (a, b) in naive.iter().zip(&structured) {
///     assert!((a - b).abs() < 1e-12 * (1.0 + a.abs()));
/// }
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
///
/// # Errors
/// [`Mlp::new`] fails for D = 0 or a hidden width of 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    dim: usize,
    hidden: Vec<usize>,
    activation: Activation,
    params: Params,
}

impl Mlp {
    /// A randomly initialised MLP (see the type docs for the draw order).
    ///
    /// # Errors
    /// A [`ModelError`] naming `dim` or `hidden`.
    pub fn new(
        dim: usize,
        hidden: &[usize],
        activation: Activation,
        seed: u64,
    ) -> Result<Self, ModelError> {
        check_arch(dim, hidden)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Params::empty();
        params.push_layers(&layer_sizes(dim, hidden, Some(dim)), 0, &mut rng);
        Ok(Mlp {
            dim,
            hidden: hidden.to_vec(),
            activation,
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

    /// θ.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// θ, mutable (for an optimiser; shapes are fixed).
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// The forward on bound parameters `p` (from [`Params::bind`]): the score and what `tangents`
    /// asks for, as taped ops on tape `T`.
    pub fn forward<E: Real, T: Tape<E, Dev>>(
        &self,
        p: &Bound<E>,
        x: T2<E, T>,
        tangents: &Tangents<E>,
    ) -> Outputs<E, T>
    where
        Dev: Device<E>,
    {
        mlp_forward(self.activation, self.hidden.len(), p, x, None, tangents)
    }

    /// The exact trace tr ∇ₓs_θ(xᵢ) by `method`, in f64.
    pub fn trace(&self, x: ArrayView2<f64>, method: TraceMethod) -> Array1<f64> {
        door_trace(self, x, method)
    }
}

/// A network seen through the f64 door: forward on f64 tensors, chunked.
pub(crate) trait DoorForward: Dimension + Sync {
    /// The parameters.
    fn door_params(&self) -> &Params;
    /// The exact trace the door uses: the cheaper of the two (both are exact).
    fn door_trace_method(&self) -> TraceMethod {
        TraceMethod::Structured
    }
    /// The forward for the door (σ-free).
    fn door_forward<T: Tape<f64, Dev>>(
        &self,
        p: &Bound<f64>,
        x: T2<f64, T>,
        tangents: &Tangents<f64>,
    ) -> Outputs<f64, T>;
}

impl DoorForward for Mlp {
    fn door_params(&self) -> &Params {
        &self.params
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

fn rows(x: ArrayView2<f64>) -> Vec<f64> {
    x.iter().copied().collect()
}

/// s(x) through the door.
pub(crate) fn door_score<M: DoorForward>(m: &M, x: ArrayView2<f64>) -> Array2<f64> {
    let dev = Dev::default();
    let p = m.door_params().bind::<f64>(&dev);
    let d = m.dim();
    let mut out = Vec::with_capacity(x.len());
    for chunk in x.axis_chunks_iter(ndarray::Axis(0), CHUNK) {
        let t = crate::net::tensor2::<f64>(&dev, &rows(chunk), chunk.dim());
        out.extend(to_f64(&m.door_forward(&p, t, &Tangents::None).score));
    }
    Array2::from_shape_vec((x.nrows(), d), out).expect("shape")
}

/// J(x)v through the door.
pub(crate) fn door_jvp<M: DoorForward>(
    m: &M,
    x: ArrayView2<f64>,
    v: ArrayView2<f64>,
) -> Array2<f64> {
    let dev = Dev::default();
    let p = m.door_params().bind::<f64>(&dev);
    let d = m.dim();
    let mut out = Vec::with_capacity(x.len());
    for (xc, vc) in x
        .axis_chunks_iter(ndarray::Axis(0), CHUNK)
        .zip(v.axis_chunks_iter(ndarray::Axis(0), CHUNK))
    {
        let t = crate::net::tensor2::<f64>(&dev, &rows(xc), xc.dim());
        let vt: T3<f64> = dev.tensor_from_vec(rows(vc), (vc.nrows(), 1, d));
        let o = m.door_forward(&p, t, &Tangents::Jvp(vt));
        out.extend(to_f64(&o.jvp.expect("jvp asked")));
    }
    Array2::from_shape_vec((x.nrows(), d), out).expect("shape")
}

/// tr J(x) through the door.
pub(crate) fn door_trace<M: DoorForward>(
    m: &M,
    x: ArrayView2<f64>,
    method: TraceMethod,
) -> Array1<f64> {
    let dev = Dev::default();
    let p = m.door_params().bind::<f64>(&dev);
    let mut out = Vec::with_capacity(x.nrows());
    for chunk in x.axis_chunks_iter(ndarray::Axis(0), CHUNK) {
        let t = crate::net::tensor2::<f64>(&dev, &rows(chunk), chunk.dim());
        let o = m.door_forward(&p, t, &Tangents::Trace(method));
        out.extend(to_f64(&o.trace.expect("trace asked")));
    }
    Array1::from(out)
}

/// ∇_θ Σᵢ gᵢ · s(xᵢ) through the door (flat parameter order).
pub(crate) fn door_score_vjp<M: DoorForward>(
    m: &M,
    x: ArrayView2<f64>,
    g: ArrayView2<f64>,
) -> Array1<f64> {
    let dev = Dev::default();
    let p = m.door_params().bind::<f64>(&dev);
    let mut total = vec![0.0; m.door_params().num_scalars()];
    for (xc, gc) in x
        .axis_chunks_iter(ndarray::Axis(0), CHUNK)
        .zip(g.axis_chunks_iter(ndarray::Axis(0), CHUNK))
    {
        let t = crate::net::tensor2::<f64>(&dev, &rows(xc), xc.dim()).put_tape(Taped::default());
        let gt = crate::net::tensor2::<f64>(&dev, &rows(gc), gc.dim());
        let o = m.door_forward(&p, t, &Tangents::None);
        let mut grads = (o.score * gt).sum::<(), _>().backward();
        add_flat(&mut total, &p.gradients(&mut grads));
    }
    Array1::from(total)
}

/// ∇_θ Σᵢ tr J(xᵢ) through the door (flat parameter order).
pub(crate) fn door_trace_gradient<M: DoorForward>(m: &M, x: ArrayView2<f64>) -> Array1<f64> {
    let dev = Dev::default();
    let p = m.door_params().bind::<f64>(&dev);
    let mut total = vec![0.0; m.door_params().num_scalars()];
    for xc in x.axis_chunks_iter(ndarray::Axis(0), CHUNK) {
        let t = crate::net::tensor2::<f64>(&dev, &rows(xc), xc.dim()).put_tape(Taped::default());
        let o = m.door_forward(&p, t, &Tangents::Trace(m.door_trace_method()));
        let mut grads = o.merged_trace_sum().expect("trace asked").backward();
        add_flat(&mut total, &p.gradients(&mut grads));
    }
    Array1::from(total)
}

fn add_flat(total: &mut [f64], blocks: &[Vec<f64>]) {
    for (t, g) in total.iter_mut().zip(blocks.iter().flatten()) {
        *t += g;
    }
}

impl Dimension for Mlp {
    fn dim(&self) -> usize {
        self.dim
    }
}

/// The f64 door traits ([`Score`], [`ScoreFunction`] with the cheaper exact trace,
/// [`ParameterGradient`]) of a [`DoorForward`] network.
macro_rules! door_impls {
    ($t:ty) => {
        impl Score for $t {
            fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
                crate::mlp::door_score(self, x)
            }
        }

        impl ScoreFunction for $t {
            fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
                crate::mlp::door_jvp(self, x, v)
            }
            /// The exact trace, by the cheaper of the naive and structured methods.
            fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
                crate::mlp::door_trace(self, x, self.door_trace_method())
            }
            fn as_parameter_gradient(&self) -> Option<&dyn ParameterGradient> {
                Some(self)
            }
        }

        impl ParameterGradient for $t {
            fn num_params(&self) -> usize {
                self.door_params().num_scalars()
            }
            fn score_vjp(&self, x: ArrayView2<f64>, g: ArrayView2<f64>) -> Array1<f64> {
                crate::mlp::door_score_vjp(self, x, g)
            }
            fn trace_gradient(&self, x: ArrayView2<f64>) -> Array1<f64> {
                crate::mlp::door_trace_gradient(self, x)
            }
        }
    };
}
pub(crate) use door_impls;

door_impls!(Mlp);

/// s_θ(x, σ) = MLP([x, log σ]) / σ: the noise-conditional score of multi-level denoising score
/// matching (NCSN).
///
/// **Both** conditioning devices, on purpose. The 1/σ output scaling is NCSNv2's (Song & Ermon 2020,
/// "Improved techniques for training score-based generative models"): the true score of p_σ has
/// magnitude ∝ 1/σ, so the network's output stays O(1) at every level and, with λ(σ) = σ², each
/// level's loss ½‖σ s_θ + ε‖² has the same scale. NCSNv2 drops the σ input because for images the
/// *shape* of the noised score barely changes with σ; in low dimensions it does (at σ = 20 the toy
/// mixture's noised score is −x/(1+σ²)-like, at σ = 0.01 it has two modes), and MLP(x)/σ alone
/// cannot represent both, so log σ is also an input (one extra column of the first layer,
/// `sigma.weight`, drawn after all layers with fan-in D + 1).
///
/// The JVP and traces are with respect to x at fixed σ: those of [`Mlp`] times 1/σ.
///
/// With [`NoiseConditionalMlp::with_precondition`] (a network option `precondition = "edm"`) the
/// score is EDM's preconditioned one (Karras et al. 2022, Table 1): the plain network sees
/// c_in x, of unit scale at every σ, and a skip term −x/(σ² + σ_d²) carries the large-σ limit.
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_core::Score;
/// use scorelab_models::{Activation, NoiseConditionalMlp};
/// let m = NoiseConditionalMlp::new(2, &[8, 8], Activation::Silu, 3)?;
/// let x = array![[0.5, -0.5]];
/// let s1 = m.at(1.0).score(x.view());
/// let s2 = m.at(2.0).score(x.view());
/// assert_ne!(s1, s2);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
///
/// # Errors
/// [`NoiseConditionalMlp::new`] fails for D = 0 or a hidden width of 0.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseConditionalMlp {
    inner: Mlp,
    precondition: Option<Precondition>,
}

impl NoiseConditionalMlp {
    /// A randomly initialised noise-conditional MLP (draw order: [`Mlp::new`]'s, then
    /// `sigma.weight`).
    ///
    /// # Errors
    /// A [`ModelError`] naming `dim` or `hidden`.
    pub fn new(
        dim: usize,
        hidden: &[usize],
        activation: Activation,
        seed: u64,
    ) -> Result<Self, ModelError> {
        check_arch(dim, hidden)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut params = Params::empty();
        let sizes = layer_sizes(dim, hidden, Some(dim));
        // The σ column is part of the first layer: fan-in D + 1.
        params.push_layers(&sizes, 1, &mut rng);
        params.push_uniform("sigma.weight".into(), (1, sizes[1]), dim + 1, &mut rng);
        Ok(NoiseConditionalMlp {
            inner: Mlp {
                dim,
                hidden: hidden.to_vec(),
                activation,
                params,
            },
            precondition: None,
        })
    }

    /// The same weights with EDM's preconditioning ([`Precondition`]; `None`: plain). With
    /// `Some(Edm { σ_d })`, s(x, σ) = −x/(σ² + σ_d²) + σ_d c_in · g(c_in x, σ), g the plain network
    /// ([`crate::EdmCoefficients`]); the JVP and traces follow by the chain rule:
    /// J_s v = −v/(σ² + σ_d²) + σ_d c_in² J_g v and tr J_s = −D/(σ² + σ_d²) + σ_d c_in² tr J_g.
    pub fn with_precondition(mut self, precondition: Option<Precondition>) -> Self {
        self.precondition = precondition;
        self
    }

    /// The preconditioning, if any.
    pub fn precondition(&self) -> Option<Precondition> {
        self.precondition
    }

    /// The hidden widths.
    pub fn hidden(&self) -> &[usize] {
        &self.inner.hidden
    }

    /// The activation.
    pub fn activation(&self) -> Activation {
        self.inner.activation
    }

    /// θ.
    pub fn params(&self) -> &Params {
        &self.inner.params
    }

    /// θ, mutable.
    pub fn params_mut(&mut self) -> &mut Params {
        &mut self.inner.params
    }

    /// The forward at per-point noise levels `sigma` (`(B,)`, each > 0).
    pub fn forward<E: Real, T: Tape<E, Dev>>(
        &self,
        p: &Bound<E>,
        x: T2<E, T>,
        sigma: &T1<E>,
        tangents: &Tangents<E>,
    ) -> Outputs<E, T>
    where
        Dev: Device<E>,
    {
        match self.precondition {
            Some(pre) => self.preconditioned_forward(pre, p, x, sigma, tangents),
            None => self.plain_forward(p, x, sigma, tangents),
        }
    }

    /// The forward of the network without preconditioning: MLP([x, log σ])/σ.
    fn plain_forward<E: Real, T: Tape<E, Dev>>(
        &self,
        p: &Bound<E>,
        x: T2<E, T>,
        sigma: &T1<E>,
        tangents: &Tangents<E>,
    ) -> Outputs<E, T>
    where
        Dev: Device<E>,
    {
        let (n, d) = *x.shape();
        let hidden = self.inner.hidden.len();
        let h1 = p.tensors[1].shape().1;
        let log_sigma = sigma.clone().ln();
        let inv_sigma = sigma.clone().recip();
        let extra = per_row(log_sigma.retaped::<T>(), h1) * per_col(p.vec::<T>(2 * hidden + 2), n);
        let mut o = mlp_forward(self.inner.activation, hidden, p, x, Some(extra), tangents);
        o.score = o.score * per_row(inv_sigma.clone(), d);
        o.jvp = o.jvp.map(|j| {
            let shape = *j.shape();
            j * inv_sigma.clone().broadcast_like::<_, Axes2<1, 2>>(&shape)
        });
        o.trace = o.trace.map(|t| t * inv_sigma.clone());
        o
    }

    /// The forward of the preconditioned network: the plain one at c_in x, combined as
    /// [`NoiseConditionalMlp::with_precondition`] says.
    fn preconditioned_forward<E: Real, T: Tape<E, Dev>>(
        &self,
        pre: Precondition,
        p: &Bound<E>,
        x: T2<E, T>,
        sigma: &T1<E>,
        tangents: &Tangents<E>,
    ) -> Outputs<E, T>
    where
        Dev: Device<E>,
    {
        let (n, d) = *x.shape();
        let dev = x.device().clone();
        let coef: Vec<EdmCoefficients> = to_f64(sigma).iter().map(|&s| pre.at(s)).collect();
        let col = |f: fn(&EdmCoefficients) -> f64| -> T1<E> {
            dev.tensor_from_vec(coef.iter().map(|k| c::<E>(f(k))).collect(), (n,))
        };
        let (c_in, out, skip) = (col(|k| k.c_in), col(|k| k.out), col(|k| k.skip));
        // x carries the tape only (its own history is not needed: no loss differentiates in x).
        let (x, tape) = x.split_tape();
        let x_in = (x.clone() * per_row(c_in.clone(), d)).put_tape(tape);
        // JVP tangents enter the plain network scaled by c_in; the trace methods pass as they are.
        let scaled = match tangents {
            Tangents::Jvp(v) => {
                let shape = *v.shape();
                Some(Tangents::Jvp(
                    v.clone() * c_in.clone().broadcast_like::<_, Axes2<1, 2>>(&shape),
                ))
            }
            _ => None,
        };
        let mut o = self.plain_forward(p, x_in, sigma, scaled.as_ref().unwrap_or(tangents));
        o.score = o.score * per_row(out.clone(), d) - x * per_row(skip.clone(), d);
        if let (Some(j), Tangents::Jvp(v)) = (o.jvp.take(), tangents) {
            let shape = *j.shape();
            let b = |t: &T1<E>| t.clone().broadcast_like::<_, Axes2<1, 2>>(&shape);
            o.jvp = Some(j * b(&out) - v.clone() * b(&skip));
        }
        o.trace = o.trace.map(|t| t * (out * c_in) - skip * c::<E>(d as f64));
        o
    }

    /// This model at one fixed σ, as an f64 [`ScoreFunction`].
    ///
    /// # Panics
    /// Unless σ > 0 and finite (callers validate σ from user input first).
    pub fn at(&self, sigma: f64) -> AtSigma<'_> {
        assert!(sigma > 0.0 && sigma.is_finite(), "σ must be positive");
        AtSigma { model: self, sigma }
    }
}

/// The learned s_θ(x, σ) ≈ ∇ₓ log p_σ(x), for the annealed samplers and the reverse SDE/ODE.
///
/// # Panics
/// If σ is not positive and finite.
impl NoisedScore for NoiseConditionalMlp {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        self.at(sigma).score(x)
    }
}

impl Dimension for NoiseConditionalMlp {
    fn dim(&self) -> usize {
        self.inner.dim
    }
}

/// A [`NoiseConditionalMlp`] at a fixed σ: x ↦ s_θ(x, σ), with its JVP and exact trace in x.
#[derive(Debug, Clone, Copy)]
pub struct AtSigma<'a> {
    model: &'a NoiseConditionalMlp,
    sigma: f64,
}

impl AtSigma<'_> {
    /// σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }
}

impl Dimension for AtSigma<'_> {
    fn dim(&self) -> usize {
        self.model.dim()
    }
}

impl DoorForward for AtSigma<'_> {
    fn door_params(&self) -> &Params {
        self.model.params()
    }
    fn door_forward<T: Tape<f64, Dev>>(
        &self,
        p: &Bound<f64>,
        x: T2<f64, T>,
        tangents: &Tangents<f64>,
    ) -> Outputs<f64, T> {
        let n = x.shape().0;
        let sigma: T1<f64> = x.device().tensor_from_vec(vec![self.sigma; n], (n,));
        self.model.forward(p, x, &sigma, tangents)
    }
}

impl Score for AtSigma<'_> {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        door_score(self, x)
    }
}

impl ScoreFunction for AtSigma<'_> {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        door_jvp(self, x, v)
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        door_trace(self, x, self.door_trace_method())
    }
}

//! The dfdx plumbing every network shares: the dtype bound, tensor aliases, activations with their
//! first and second derivatives as taped ops, and a network's parameters bound as dfdx tensors.
//!
//! # Tapes and why every forward returns its score
//! dfdx 0.13 records each op's backward closure on the tape of the tensor it produced. A tensor used
//! twice is used once as itself (carrying the history that produced it) and otherwise through
//! `retaped()` copies that start empty tapes but share its id, so their gradients reach it. The
//! history therefore lives on exactly one consumer; the forwards in this crate arrange that it is
//! always on the path to the returned score, so **a taped quantity (trace, JVP) must be combined with
//! that score before `backward()`** (every loss does; [`Outputs::merged_trace_sum`] does it for a
//! trace alone).

use dfdx::prelude::*;
use num_traits::{Float, FromPrimitive};
use std::fmt;
use std::str::FromStr;

/// The CPU device every network runs on.
pub type Dev = Cpu;
/// A `(rows, cols)` tensor with tape `T`.
pub type T2<E, T = NoneTape> = Tensor<(usize, usize), E, Dev, T>;
/// A `(batch, k, cols)` tensor with tape `T`.
pub type T3<E, T = NoneTape> = Tensor<(usize, usize, usize), E, Dev, T>;
/// A `(n,)` tensor with tape `T`.
pub type T1<E, T = NoneTape> = Tensor<(usize,), E, Dev, T>;
/// The tape that records a training step.
pub type Taped<E> = OwnedTape<E, Dev>;

/// The floating-point types the networks run in: `f32` for training and `f64` for the f64
/// [`scorelab_core::ScoreFunction`] door and for gradient checks against finite differences.
pub trait Real: Dtype + Float + FromPrimitive + fmt::Display + GradAccess {}
impl Real for f32 {}
impl Real for f64 {}

/// `x` as `E`.
pub(crate) fn c<E: Real>(x: f64) -> E
where
    Dev: Device<E>,
{
    E::from_f64(x).expect("a finite f64 converts to every Real")
}

/// The activation φ of the hidden layers, with φ′ and φ″ (needed by the JVP of every network and by
/// the energy network's Hessian):
///
/// | activation | φ(h) | φ′(h) | φ″(h) |
/// | --- | --- | --- | --- |
/// | tanh | tanh h | 1 − tanh²h | −2 tanh h · φ′ |
/// | softplus | ln(1 + eʰ) = relu(h) + ln(1 + e^{−\|h\|}) | σ(h) | σ(h)(1 − σ(h)) |
/// | silu | h σ(h) | σ(h)(1 + h(1 − σ(h))) | σ(h)(1 − σ(h))(2 + h(1 − 2σ(h))) |
///
/// σ is the logistic sigmoid. Softplus is written in its overflow-free form (docs/ARCHITECTURE.md, "dfdx 0.13").
///
/// # Examples
/// ```
/// use scorelab_models::Activation;
/// let a: Activation = "softplus".parse().unwrap();
/// assert_eq!(a, Activation::Softplus);
/// assert_eq!(a.to_string(), "softplus");
/// assert!("relu".parse::<Activation>().unwrap_err().contains("tanh | softplus | silu"));
/// // A config names it as it prints: serde goes through the same parser.
/// #[derive(serde::Deserialize)]
/// struct Model { activation: Activation }
/// let m: Model = serde_json::from_str(r#"{"activation": "silu"}"#).unwrap();
/// assert_eq!(m.activation, Activation::Silu);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Activation {
    /// tanh.
    Tanh,
    /// ln(1 + eʰ).
    Softplus,
    /// h σ(h) (also called swish).
    Silu,
}

impl Activation {
    /// The names configs use, in order.
    pub const NAMES: [&'static str; 3] = ["tanh", "softplus", "silu"];

    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Tanh => "tanh",
            Activation::Softplus => "softplus",
            Activation::Silu => "silu",
        }
    }

    /// φ(h), φ′(h), φ″(h) of one f64 (see [`Activation::derivatives`] for φ‴ too).
    pub fn eval(self, h: f64) -> (f64, f64, f64) {
        let [a, d, dd, _] = self.derivatives(h);
        (a, d, dd)
    }

    /// [φ(h), φ′(h), φ″(h), φ‴(h)] in any float type: [`Activation::value_and_aux`] then
    /// [`Activation::from_aux`].
    pub fn derivatives<F: Float>(self, h: F) -> [F; 4] {
        let (a, q) = self.value_and_aux(h);
        let [d, dd, ddd] = self.from_aux(h, q);
        [a, d, dd, ddd]
    }

    /// φ(h) and the auxiliary q from which every derivative is algebraic — q = tanh h for tanh,
    /// q = σ(h) for softplus and silu — with one or two transcendental calls: e = e^{−|h|} gives
    /// σ(h) without overflow (1/(1 + e) for h ≥ 0, e/(1 + e) otherwise) and softplus(h) =
    /// max(h, 0) + ln(1 + e).
    #[inline]
    pub fn value_and_aux<F: Float>(self, h: F) -> (F, F) {
        let one = F::one();
        match self {
            Activation::Tanh => {
                let t = h.tanh();
                (t, t)
            }
            Activation::Softplus | Activation::Silu => {
                let e = (-h.abs()).exp();
                let r = one / (one + e);
                let s = if h >= F::zero() { r } else { e * r };
                match self {
                    Activation::Softplus => (h.max(F::zero()) + (one + e).ln(), s),
                    _ => (h * s, s),
                }
            }
        }
    }

    /// [φ′, φ″, φ‴] at h from the auxiliary q of [`Activation::value_and_aux`], by algebra only.
    /// tanh: φ′ = 1 − q², φ″ = −2qφ′, φ‴ = −2φ′(φ′ − 2q²). softplus (q = σ): σ′ = σ(1 − σ),
    /// φ′ = σ, φ″ = σ′, φ‴ = σ′(1 − 2σ). silu: φ′ = σ + hσ′, φ″ = σ′k with k = 2 + h(1 − 2σ),
    /// φ‴ = σ″k + σ′((1 − 2σ) − 2hσ′), σ″ = σ′(1 − 2σ).
    #[inline]
    pub fn from_aux<F: Float>(self, h: F, q: F) -> [F; 3] {
        let one = F::one();
        let two = one + one;
        match self {
            Activation::Tanh => {
                let d = one - q * q;
                [d, -two * q * d, -two * d * (d - two * q * q)]
            }
            Activation::Softplus => {
                let ds = q * (one - q);
                [q, ds, ds * (one - two * q)]
            }
            Activation::Silu => {
                let ds = q * (one - q);
                let u = one - two * q;
                let k = two + h * u;
                [q + h * ds, ds * k, ds * u * k + ds * (u - two * h * ds)]
            }
        }
    }

    /// φ(h), φ′(h) and (if `second`) φ″(h) of the pre-activation `h` as **one fused op**: a single
    /// pass evaluates the activation and its derivatives elementwise, and each output's backward
    /// adds (output gradient) × (its derivative) into h's gradient. dfdx composites of relu, exp,
    /// ln and sigmoid would take five to eight passes, each with its own transcendental calls.
    ///
    /// `h`'s history travels on `a` when `carry_on_a`, else on `d`: the caller must always use that
    /// output. Each output's own backward step is on its own tape.
    pub(crate) fn apply<E: Real, T: Tape<E, Dev>>(
        self,
        h: T2<E, T>,
        second: bool,
        carry_on_a: bool,
    ) -> Activated<E, T>
    where
        Dev: Device<E>,
    {
        let (h, h_tape) = h.split_tape();
        let shape = *h.shape();
        let dev = h.device().clone();
        let hv = contiguous_vec(&h);
        let n = hv.len();
        let (mut a, mut d) = (Vec::with_capacity(n), Vec::with_capacity(n));
        let mut q = Vec::with_capacity(n);
        let mut dd = Vec::with_capacity(if second { n } else { 0 });
        for &x in &hv {
            let (fa, fq) = self.value_and_aux(x);
            let [fd, fdd, _] = self.from_aux(x, fq);
            a.push(fa);
            d.push(fd);
            q.push(fq);
            if second {
                dd.push(fdd);
            }
        }
        // h and q, shared by the backward steps that need φ″ or φ‴ (computed only if they run).
        let hq = std::sync::Arc::new((hv, q));
        let a_t: T2<E> = dev.tensor_from_vec(a, shape);
        let d_t: T2<E> = dev.tensor_from_vec(d.clone(), shape);
        let dd_t: Option<T2<E>> = second.then(|| dev.tensor_from_vec(dd, shape));
        let (mut a_tape, mut d_tape) = if carry_on_a {
            (h_tape, T::default())
        } else {
            (T::default(), h_tape)
        };
        // Each output's backward sits on that output's own tape: an output nobody uses costs
        // nothing. The derivatives a backward needs beyond φ′ are computed only when it runs.
        if T::OWNS_TAPE {
            chain_rule(&mut a_tape, &h, &a_t, move || d);
            let (act, hq) = (self, hq.clone());
            chain_rule(&mut d_tape, &h, &d_t, move || {
                hq.0.iter()
                    .zip(&hq.1)
                    .map(|(&x, &q)| act.from_aux(x, q)[1])
                    .collect()
            });
        }
        let dd_t = dd_t.map(|t| {
            let mut tape = T::default();
            if T::OWNS_TAPE {
                let (act, hq) = (self, hq.clone());
                chain_rule(&mut tape, &h, &t, move || {
                    hq.0.iter()
                        .zip(&hq.1)
                        .map(|(&x, &q)| act.from_aux(x, q)[2])
                        .collect()
                });
            }
            t.put_tape(tape)
        });
        (a_t.put_tape(a_tape), d_t.put_tape(d_tape), dd_t)
    }
}

/// Records on `tape` the backward of the elementwise map `input ↦ output` whose derivative at each
/// element is `derivative()` (evaluated only if the backward runs): grad(input) += grad(output) ⊙
/// derivative. Both tensors are contiguous.
fn chain_rule<E: Real, T: Tape<E, Dev>>(
    tape: &mut T,
    input: &T2<E>,
    output: &T2<E>,
    derivative: impl FnOnce() -> Vec<E> + 'static,
) where
    Dev: Device<E>,
{
    let (input, output) = (input.clone(), output.clone());
    tape.add_backward_op(move |grads| E::accumulate(grads, &input, &output, &derivative()));
}

/// Access to dfdx's gradient buffers for a concrete dtype (in generic code the buffer type is an
/// opaque projection, so the buffer access is written once per dtype).
pub trait GradAccess: Dtype {
    /// grad(input) += grad(output) ⊙ derivative.
    ///
    /// # Errors
    /// dfdx's allocation error.
    fn accumulate(
        grads: &mut Gradients<Self, Dev>,
        input: &T2<Self>,
        output: &T2<Self>,
        derivative: &[Self],
    ) -> Result<(), CpuError> {
        let g_out = Self::grad_copy(grads, output)?;
        let delta: Vec<Self> = g_out.iter().zip(derivative).map(|(&g, &d)| g * d).collect();
        Self::grad_add(grads, input, &delta)
    }

    /// A copy of t's gradient buffer (zeros if none yet).
    ///
    /// # Errors
    /// dfdx's allocation error.
    fn grad_copy<S: Shape>(
        grads: &mut Gradients<Self, Dev>,
        t: &Tensor<S, Self, Dev>,
    ) -> Result<Vec<Self>, CpuError>;

    /// grad(t) += delta, elementwise over t's buffer.
    ///
    /// # Errors
    /// dfdx's allocation error.
    fn grad_add<S: Shape>(
        grads: &mut Gradients<Self, Dev>,
        t: &Tensor<S, Self, Dev>,
        delta: &[Self],
    ) -> Result<(), CpuError>;
}

macro_rules! grad_access {
    ($($t:ty),*) => {$(
        impl GradAccess for $t {
            fn grad_copy<S: Shape>(grads: &mut Gradients<$t, Dev>, t: &Tensor<S, $t, Dev>) -> Result<Vec<$t>, CpuError> {
                Ok(grads.get_or_alloc_mut(t)?.to_vec())
            }
            fn grad_add<S: Shape>(grads: &mut Gradients<$t, Dev>, t: &Tensor<S, $t, Dev>, delta: &[$t]) -> Result<(), CpuError> {
                let g = grads.get_or_alloc_mut(t)?;
                debug_assert_eq!(g.len(), delta.len());
                for (gi, di) in g.iter_mut().zip(delta) {
                    *gi += di;
                }
                Ok(())
            }
        }
    )*};
}
grad_access!(f32, f64);

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<String> for Activation {
    type Error = String;
    /// [`Activation::from_str`](FromStr), the message starting with the key configs give it in.
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|e| format!("activation: {e}"))
    }
}

impl From<Activation> for String {
    fn from(a: Activation) -> String {
        a.name().to_string()
    }
}

impl FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "tanh" => Ok(Activation::Tanh),
            "softplus" => Ok(Activation::Softplus),
            "silu" => Ok(Activation::Silu),
            other => Err(format!(
                "unknown activation {other:?}; use one of tanh | softplus | silu"
            )),
        }
    }
}

/// φ(h), φ′(h) and optionally φ″(h).
pub(crate) type Activated<E, T> = (T2<E, T>, T2<E, T>, Option<T2<E, T>>);

/// Which exact Jacobian trace tr ∇ₓs_θ a network computes.
///
/// * `Naive`: the D basis tangents e₁ … e_D pushed through the network's JVP as one `(B·D, H)`
///   batch, then the diagonal of the D JVPs: cost grows linearly in D.
/// * `Structured`: an algebraic shortcut that needs no per-dimension pass: its cost grows with D
///   only through the per-step products with the input and output layers (O(D·H₁H₂) for the MLP),
///   as every objective's does (each network documents its own); it equals the naive trace up to
///   rounding, which the tests check.
///
/// # Examples
/// ```
/// use scorelab_models::TraceMethod;
/// assert_eq!("structured".parse::<TraceMethod>().unwrap(), TraceMethod::Structured);
/// let t: TraceMethod = serde_json::from_str("\"naive\"").unwrap();
/// assert_eq!(t, TraceMethod::Naive);
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum TraceMethod {
    /// D basis tangents.
    Naive,
    /// The network's D-independent formula (the default).
    #[default]
    Structured,
}

impl TryFrom<String> for TraceMethod {
    type Error = String;
    /// [`TraceMethod::from_str`](FromStr), the message starting with the key configs give it in.
    fn try_from(s: String) -> Result<Self, String> {
        s.parse().map_err(|e| format!("trace: {e}"))
    }
}

impl From<TraceMethod> for String {
    fn from(t: TraceMethod) -> String {
        t.name().to_string()
    }
}

impl TraceMethod {
    /// The name configs use.
    pub fn name(self) -> &'static str {
        match self {
            TraceMethod::Naive => "naive",
            TraceMethod::Structured => "structured",
        }
    }
}

impl fmt::Display for TraceMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TraceMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "naive" => Ok(TraceMethod::Naive),
            "structured" => Ok(TraceMethod::Structured),
            other => Err(format!(
                "unknown trace {other:?}; use one of naive | structured"
            )),
        }
    }
}

/// What a forward pass computes besides the score.
#[derive(Debug, Clone)]
pub enum Tangents<E: Real> {
    /// Only s_θ(x).
    None,
    /// J(x)v for K given tangents per point: a `(B, K, D)` tensor.
    Jvp(T3<E>),
    /// The exact trace tr J(x).
    Trace(TraceMethod),
}

/// A forward pass: the score and, as asked by [`Tangents`], the JVPs or the trace.
#[derive(Debug)]
pub struct Outputs<E: Real, T: Tape<E, Dev>> {
    /// s_θ(x), `(B, D)`. Its tape carries the network's history (module docs).
    pub score: T2<E, T>,
    /// J(x)vₖ, `(B, K, D)`, for [`Tangents::Jvp`].
    pub jvp: Option<T3<E, T>>,
    /// tr J(x), `(B,)`, for [`Tangents::Trace`].
    pub trace: Option<T1<E, T>>,
}

impl<E: Real> Outputs<E, Taped<E>>
where
    Dev: Device<E>,
{
    /// Σᵢ tr J(xᵢ) with the score's tape merged in (its value multiplied by 0), ready for
    /// `backward()`; `None` without a trace.
    pub fn merged_trace_sum(self) -> Option<Tensor<(), E, Dev, Taped<E>>> {
        let trace = self.trace?;
        let zero = self.score.sum::<(), _>() * E::zero();
        Some(trace.sum::<(), _>() + zero)
    }
}

/// A network's parameters as dfdx tensors of dtype `E`, in the network's parameter order. Biases
/// and vectors are `(1, n)` rows.
#[derive(Debug, Clone)]
pub struct Bound<E: Real> {
    /// One tensor per parameter.
    pub tensors: Vec<T2<E>>,
}

impl<E: Real> Bound<E>
where
    Dev: Device<E>,
{
    /// Parameter `i` on tape `T` (a fresh tape sharing its id).
    pub(crate) fn mat<T: Tape<E, Dev>>(&self, i: usize) -> T2<E, T> {
        self.tensors[i].retaped::<T>()
    }

    /// Parameter `i` (a `(1, n)` row) as an `(n,)` vector on tape `T`.
    pub(crate) fn vec<T: Tape<E, Dev>>(&self, i: usize) -> T1<E, T> {
        let n = self.tensors[i].shape().1;
        self.tensors[i].retaped::<T>().reshape_like(&(n,))
    }

    /// The gradient of every parameter from a backward pass, as f64, in parameter order (zeros
    /// for a parameter the loss did not touch).
    pub fn gradients(&self, grads: &mut Gradients<E, Dev>) -> Vec<Vec<f64>> {
        self.tensors
            .iter()
            .map(|t| {
                grads.try_alloc_for(t).expect("CPU allocation");
                contiguous_vec(&grads.get(t))
                    .into_iter()
                    .map(|g| g.to_f64().unwrap_or(f64::NAN))
                    .collect()
            })
            .collect()
    }
}

/// A `(rows, cols)` tensor from row-major f64 values.
pub fn tensor2<E: Real>(dev: &Dev, values: &[f64], shape: (usize, usize)) -> T2<E>
where
    Dev: Device<E>,
{
    debug_assert_eq!(values.len(), shape.0 * shape.1);
    dev.tensor_from_vec(values.iter().map(|&v| c::<E>(v)).collect(), shape)
}

/// A `(n,)` tensor from f64 values.
pub fn tensor1<E: Real>(dev: &Dev, values: &[f64]) -> T1<E>
where
    Dev: Device<E>,
{
    dev.tensor_from_vec(values.iter().map(|&v| c::<E>(v)).collect(), (values.len(),))
}

/// The values of any tensor as f64, row-major.
pub fn to_f64<S: Shape, E: Real, T>(t: &Tensor<S, E, Dev, T>) -> Vec<f64>
where
    Dev: Device<E>,
{
    t.as_vec()
        .into_iter()
        .map(|v| v.to_f64().unwrap_or(f64::NAN))
        .collect()
}

/// The values of a **contiguous** tensor (a plain copy of its buffer; `as_vec` walks indices and is
/// several times slower). Callers guarantee contiguity: parameters, and outputs of matmuls,
/// additions and the fused ops.
pub(crate) fn contiguous_vec<S: Shape, E: Real, T>(t: &Tensor<S, E, Dev, T>) -> Vec<E>
where
    Dev: Device<E>,
{
    let mut v = vec![E::zero(); t.shape().num_elements()];
    t.copy_into(&mut v);
    v
}

/// `(n, k, h) × (h, m) → (n, k, m)` as one `(n·k, h) × (h, m)` matrix product. dfdx's batched
/// product would run n separate small products (one per point), which is far slower.
pub(crate) fn bmm<E: Real, T: Tape<E, Dev>>(t: T3<E, T>, w: T2<E, T>) -> T3<E, T>
where
    Dev: Device<E>,
{
    let (n, k, h) = *t.shape();
    let m = w.shape().1;
    t.reshape_like(&(n * k, h))
        .matmul(w)
        .reshape_like(&(n, k, m))
}

/// `(n, h)` broadcast to `(n, k, h)` (the same row for each of the k tangents).
pub(crate) fn over_k<E: Real, T: Tape<E, Dev>>(t: T2<E, T>, k: usize) -> T3<E, T>
where
    Dev: Device<E>,
{
    let (n, h) = *t.shape();
    t.broadcast_like::<_, Axis<1>>(&(n, k, h))
}

/// `(r, c)` broadcast to `(n, r, c)` (the same matrix for each point).
pub(crate) fn over_batch<E: Real, T: Tape<E, Dev>>(t: T2<E, T>, n: usize) -> T3<E, T>
where
    Dev: Device<E>,
{
    let (r, cols) = *t.shape();
    t.broadcast_like::<_, Axis<0>>(&(n, r, cols))
}

/// `(n, r)` broadcast to `(n, r, c)` (each row's entries repeated along the last axis).
pub(crate) fn over_cols<E: Real, T: Tape<E, Dev>>(t: T2<E, T>, cols: usize) -> T3<E, T>
where
    Dev: Device<E>,
{
    let (n, r) = *t.shape();
    t.broadcast_like::<_, Axis<2>>(&(n, r, cols))
}

/// The transpose of a matrix (a strided view; dfdx's matmul reads it directly).
pub(crate) fn transpose<E: Real, T: Tape<E, Dev>>(t: T2<E, T>) -> T2<E, T>
where
    Dev: Device<E>,
{
    t.permute::<_, Axes2<1, 0>>()
}

/// `(n,)` broadcast to `(n, cols)`.
pub(crate) fn per_row<E: Real, T: Tape<E, Dev>>(t: T1<E, T>, cols: usize) -> T2<E, T>
where
    Dev: Device<E>,
{
    let n = t.shape().0;
    t.broadcast_like::<_, Axis<1>>(&(n, cols))
}

/// `(cols,)` broadcast to `(n, cols)`.
pub(crate) fn per_col<E: Real, T: Tape<E, Dev>>(t: T1<E, T>, n: usize) -> T2<E, T>
where
    Dev: Device<E>,
{
    let cols = t.shape().0;
    t.broadcast_like::<_, Axis<0>>(&(n, cols))
}

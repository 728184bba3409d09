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
pub trait Real: Dtype + Float + FromPrimitive + fmt::Display {}
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
/// σ is the logistic sigmoid. Softplus is written in its overflow-free form (DESIGN.md §3).
///
/// # Examples
/// ```
/// use scorelab_models::Activation;
/// let a: Activation = "softplus".parse().unwrap();
/// assert_eq!(a, Activation::Softplus);
/// assert_eq!(a.to_string(), "softplus");
/// assert!("relu".parse::<Activation>().unwrap_err().contains("tanh | softplus | silu"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

    /// φ(h), φ′(h), φ″(h) of one f64 (the reference the taped versions are tested against).
    pub fn eval(self, h: f64) -> (f64, f64, f64) {
        match self {
            Activation::Tanh => {
                let t = h.tanh();
                let d = 1.0 - t * t;
                (t, d, -2.0 * t * d)
            }
            Activation::Softplus => {
                let s = 1.0 / (1.0 + (-h).exp());
                (h.max(0.0) + (-h.abs()).exp().ln_1p(), s, s * (1.0 - s))
            }
            Activation::Silu => {
                let s = 1.0 / (1.0 + (-h).exp());
                let ds = s * (1.0 - s);
                (h * s, s + h * ds, ds * (2.0 + h * (1.0 - 2.0 * s)))
            }
        }
    }

    /// φ(h), φ′(h) and (if `second`) φ″(h) as taped ops on the pre-activation `h`. The history of
    /// `h`, and every op two outputs share, travels on `a` when `carry_on_a`, else on `d` (module
    /// docs): the caller must always use that output. The other outputs hold only their own ops.
    pub(crate) fn apply<E: Real, T: Tape<E, Dev>>(
        self,
        h: T2<E, T>,
        second: bool,
        carry_on_a: bool,
    ) -> Activated<E, T>
    where
        Dev: Device<E>,
    {
        let one = E::one();
        match self {
            Activation::Tanh => {
                let t = h.tanh();
                let fresh = t.retaped::<T>();
                let (a, t_d) = if carry_on_a { (t, fresh) } else { (fresh, t) };
                let d = t_d.square().negate() + one;
                let dd = second.then(|| (a.retaped::<T>() * d.retaped::<T>()) * c::<E>(-2.0));
                (a, d, dd)
            }
            Activation::Softplus => {
                let fresh = h.retaped::<T>();
                let (h_a, h_d) = if carry_on_a { (h, fresh) } else { (fresh, h) };
                let tail = (h_a.retaped::<T>().abs().negate().exp() + one).ln();
                let a = h_a.relu() + tail;
                let d = h_d.sigmoid();
                let dd = second.then(|| d.retaped::<T>() * (d.retaped::<T>().negate() + one));
                (a, d, dd)
            }
            Activation::Silu => {
                let fresh = h.retaped::<T>();
                let (h_a, h_d) = if carry_on_a { (h, fresh) } else { (fresh, h) };
                let hv = h_a.retaped::<T>();
                let s = h_d.sigmoid();
                let s_copy = s.retaped::<T>();
                let (s_a, s_d) = if carry_on_a { (s, s_copy) } else { (s_copy, s) };
                // σ(1 − σ)
                let ds = s_d.retaped::<T>() * (s_d.retaped::<T>().negate() + one);
                let dd = second.then(|| {
                    let inner =
                        hv.retaped::<T>() * (s_d.retaped::<T>() * c::<E>(-2.0) + one) + c::<E>(2.0);
                    ds.retaped::<T>() * inner
                });
                let a = h_a * s_a;
                let d = s_d + hv * ds;
                (a, d, dd)
            }
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
/// * `Structured`: an algebraic shortcut whose cost does not grow with D (each network documents
///   its own); it equals the naive trace up to rounding, which the tests check.
///
/// # Examples
/// ```
/// use scorelab_models::TraceMethod;
/// assert_eq!("structured".parse::<TraceMethod>().unwrap(), TraceMethod::Structured);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TraceMethod {
    /// D basis tangents.
    Naive,
    /// The network's D-independent formula.
    Structured,
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
                grads
                    .get(t)
                    .as_vec()
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

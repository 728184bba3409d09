//! The f32 inference path: a trained network's score, JVP and exact Jacobian trace (naive and
//! structured), evaluated in f32 without a tape, from weights prepared once, with the forward's
//! buffers kept across calls. [`Inference`] is the engine (it needs `&mut self`); [`F32Score`]
//! and [`F32Noised`] put it behind the f64 traits ([`Score`], [`ScoreFunction`],
//! [`NoisedScore`]) that the samplers, `score`, `eval` and the experiments take. The f64 door
//! ([`Network::score_function`]) stays for the audits and quadratures that need f64.
//!
//! # What is computed
//! With layers l = 0 … L, hₗ = aₗ Wₗ + bₗ (a₀ = x; Wₗ fan-in × fan-out), aₗ₊₁ = φ(hₗ),
//! dₗ = φ′(hₗ), ddₗ = φ″(hₗ):
//! - `mlp`: s(x) = h_L; J v = t_L with t₀ = v W₀, tₗ₊₁ = (tₗ ⊙ dₗ) Wₗ₊₁.
//! - `noise_conditional_mlp`: h₀ gains log σ · w_σ (the `sigma.weight` row), s(x, σ) = h_L / σ, and
//!   the JVP and trace are those of the MLP at fixed σ, divided by σ.
//! - `energy_mlp` (hidden layers 0 … L−1, then g = a_L w): s(x) = −∇ₓg − x/τ², with the backward
//!   δ_{L−1} = w, δ_{l−1} = (δₗ ⊙ dₗ) Wₗᵀ, ∇ₓg = (δ₀ ⊙ d₀) W₀ᵀ. The JVP is forward-over-reverse:
//!   ḣ₀ = v W₀, ḣₗ₊₁ = (ḣₗ ⊙ dₗ) Wₗ₊₁; ė_{L−1} = δ_{L−1} ⊙ dd_{L−1} ⊙ ḣ_{L−1},
//!   ė_{l−1} = (ėₗ Wₗᵀ) ⊙ d_{l−1} + δ_{l−1} ⊙ dd_{l−1} ⊙ ḣ_{l−1}; J v = −ė₀ W₀ᵀ − v/τ².
//!
//! **Naive trace** ([`TraceMethod::Naive`]): the JVP of all D basis vectors, pushed as one batch
//! of (points·D) tangent rows, and the sum of the diagonal: cost D JVPs.
//!
//! **Structured trace** ([`TraceMethod::Structured`]), by the cyclic property of the trace:
//! - MLP, no hidden layer: tr W₀ (the same for every point);
//! - one hidden layer: tr J = d₀ · c with cᵢ = Σⱼ W₁[i, j] W₀[j, i];
//! - two: tr J = Σᵢⱼ d₀ᵢ P[i, j] d₁ⱼ with P = W₁ ⊙ (W₂W₀)ᵀ, prepared once: O(H₁H₂) per point,
//!   whatever D;
//! - three or more: tr J = tr(diag(d₀) W₁ … diag(d_{L−1}) M) with M = W_L W₀, by pushing the H₁
//!   rows of diag(d₀) through the layers instead of D basis tangents (the naive batch is used
//!   where D ≤ H₁, which is then cheaper);
//! - energy: tr ∇²g = Σₗ Σₖ cₗₖ ‖∂hₗₖ/∂x‖² with cₗ = δₗ ⊙ ddₗ (for a layered network the
//!   Hessian is Σₗ Jₗᵀ diag(cₗ) Jₗ with Jₗ = ∂hₗ/∂x), and ‖∂hₗₖ/∂x‖² computed from r = min(D, H₁)
//!   tangents Uₗ = (Uₗ₋₁ ⊙ dₗ₋₁) Wₗ started at any U₀ = F with FᵀF = W₀ᵀW₀ (F = W₀ where D ≤ H₁,
//!   else the Cholesky factor of W₀ᵀW₀, prepared once in f64); the trace of s is −tr ∇²g − D/τ².
//!
//! The products go through ndarray's safe `general_mat_mul` (matrixmultiply's kernels, which pick
//! AVX/FMA at run time); the activations through [`crate::simd`]'s `f32x8` kernels. Tangent
//! batches go in chunks of at most 8192 rows, so memory does not grow with the number of points.
//! The results agree with the f64 door to f32 rounding: on the score and the JVP,
//! |a − b| ≤ 1e-5·(|b| + 1) per entry; on the trace, |a − b| ≤ 1e-5·(|b| + Σᵢ|Jᵢᵢ|) (its terms
//! cancel). The tests check both for every network kind, activation and method.
//!
//! ```
//! use scorelab_models::{Activation, Inference, Network, NetworkKind, NetworkSpec, TraceMethod};
//! let net = NetworkSpec { kind: NetworkKind::NoiseConditionalMlp, dim: 2, hidden: vec![16],
//!                         activation: Activation::Softplus, tau: None,
//!                         precondition: None }.build(1)?;
//! let mut f = Inference::new(&net);
//! let x = ndarray::array![[0.5f32, -1.0]];
//! let s = f.score(x.view(), Some(0.3))?;
//! let door = net.score_function(Some(0.3))?;
//! let b = door.score(ndarray::array![[0.5, -1.0]].view());
//! assert!((s[[0, 1]] as f64 - b[[0, 1]]).abs() < 1e-5 * (b[[0, 1]].abs() + 1.0));
//! let (_, naive) = f.score_trace(x.view(), Some(0.3), TraceMethod::Naive)?;
//! let (_, structured) = f.score_trace(x.view(), Some(0.3), TraceMethod::Structured)?;
//! assert!((naive[0] - structured[0]).abs() < 1e-4 * (naive[0].abs() + 1.0));
//! # use scorelab_core::Score;
//! # Ok::<(), scorelab_models::ModelError>(())
//! ```

use crate::network::{check_sigma, Network, NetworkKind, Precondition};
use crate::simd::{apply, scale_rows, Outs};
use crate::{Activation, ModelError, TraceMethod};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, Axis, Zip};
use scorelab_core::{Dimension, NoisedScore, NoisedScoreFunction, Score, ScoreFunction};
use std::sync::Mutex;

/// Rows of one tangent batch (points × tangents per point).
const CHUNK_ROWS: usize = 8192;

/// The structured trace's prepared matrices (module docs).
#[derive(Debug, Clone)]
enum Structured {
    /// No hidden layer: tr W₀.
    Constant(f32),
    /// One hidden layer: c.
    Diagonal(Array1<f32>),
    /// Two hidden layers: P.
    Pair(Array2<f32>),
    /// Three or more: Mᵀ = (W_L W₀)ᵀ, H₁ × H_L.
    Deep(Array2<f32>),
    /// The energy network: F (r × H₁) and q₀ = the column sums of F ⊙ F.
    Energy(Array2<f32>, Array1<f32>),
}

/// A network's weights prepared for f32 evaluation, and the buffers of its last batch size.
#[derive(Debug, Clone)]
pub struct Inference {
    kind: NetworkKind,
    dim: usize,
    activation: Activation,
    /// (Wₗ, bₗ) for every layer (the energy network: its hidden layers).
    layers: Vec<(Array2<f32>, Array1<f32>)>,
    /// The number of hidden layers.
    hidden: usize,
    /// `noise_conditional_mlp`: the first layer's weight of log σ.
    sigma_row: Option<Array1<f32>>,
    precondition: Option<Precondition>,
    /// `energy_mlp`: the output weight w and 1/τ².
    energy: Option<(Array1<f32>, f32)>,
    structured: Structured,
    /// Kept from call to call: hₗ, φ(hₗ), φ′(hₗ), φ″(hₗ) and (energy) δₗ of the hidden layers;
    /// `pre` also holds the output layer's h_L.
    pre: Vec<Array2<f32>>,
    act: Vec<Array2<f32>>,
    d1: Vec<Array2<f32>>,
    d2: Vec<Array2<f32>>,
    delta: Vec<Array2<f32>>,
}

/// EDM's coefficients in f32 ([`crate::EdmCoefficients`]).
#[derive(Debug, Clone, Copy)]
struct Coefficients {
    c_in: f32,
    out: f32,
    skip: f32,
}

impl Coefficients {
    /// out · raw − skip · x, row by row: the preconditioned score (or JVP, with x the tangents).
    fn combine(&self, mut raw: Array2<f32>, x: ArrayView2<f32>) -> Array2<f32> {
        Zip::from(&mut raw)
            .and(x)
            .for_each(|r, &x| *r = *r * self.out - x * self.skip);
        raw
    }
}

/// What a forward pass must leave besides hₗ and φ(hₗ).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Value,
    First,
    Second,
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
        let layers: Vec<(Array2<f32>, Array1<f32>)> = (0..n_layers)
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
        let hidden = match spec.kind {
            NetworkKind::EnergyMlp => layers.len(),
            _ => layers.len() - 1,
        };
        let structured = prepare_structured(spec.kind, &layers, hidden);
        Inference {
            kind: spec.kind,
            dim: spec.dim,
            activation: spec.activation,
            layers,
            hidden,
            sigma_row,
            precondition: spec.precondition,
            energy,
            structured,
            pre: vec![],
            act: vec![],
            d1: vec![],
            d2: vec![],
            delta: vec![],
        }
    }

    /// The dimension D of the points.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the network takes σ.
    pub fn is_noise_conditional(&self) -> bool {
        self.kind == NetworkKind::NoiseConditionalMlp
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
        if let Some((k, xin)) = self.preconditioned_input(x, sigma) {
            let raw = self.raw_score(xin.view(), sigma)?;
            return Ok(k.combine(raw, x));
        }
        self.raw_score(x, sigma)
    }

    /// EDM's coefficients at σ and the network's input c_in x, for a preconditioned network.
    fn preconditioned_input(
        &self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
    ) -> Option<(Coefficients, Array2<f32>)> {
        let (pre, s) = (self.precondition?, sigma?);
        let k = pre.at(f64::from(s));
        let k = Coefficients {
            c_in: k.c_in as f32,
            out: k.out as f32,
            skip: k.skip as f32,
        };
        Some((k, x.mapv(|v| v * k.c_in)))
    }

    fn raw_score(
        &mut self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        let need = match self.kind {
            NetworkKind::EnergyMlp => Need::First,
            _ => Need::Value,
        };
        self.prepare(x, sigma, need)?;
        Ok(self.take_score(x, sigma))
    }

    /// s and J v for every row of `x` and of the tangents `v` (both `(n, D)`; J = ∇ₓs at fixed σ).
    ///
    /// # Errors
    /// As [`Inference::score`], and naming `v` when its shape is not that of `x`.
    pub fn score_jvp(
        &mut self,
        x: ArrayView2<f32>,
        v: ArrayView2<f32>,
        sigma: Option<f32>,
    ) -> Result<(Array2<f32>, Array2<f32>), ModelError> {
        if v.dim() != x.dim() {
            return Err(ModelError::invalid(
                "v",
                format!("has shape {:?} but x has {:?}", v.dim(), x.dim()),
            ));
        }
        if let Some((k, xin)) = self.preconditioned_input(x, sigma) {
            let vin = v.mapv(|t| t * k.c_in);
            let (s, jv) = self.raw_score_jvp(xin.view(), vin.view(), sigma, 1)?;
            return Ok((k.combine(s, x), k.combine(jv, v)));
        }
        self.raw_score_jvp(x, v, sigma, 1)
    }

    /// s for every row of `x` and J v for k tangents per point: `v` is `(n·k, D)`, point i's
    /// tangents in rows i·k … i·k + k − 1 (one forward, then the tangents in batches; Hutchinson's
    /// estimator with k probes per point).
    ///
    /// # Errors
    /// As [`Inference::score`], and naming `v` unless it has n·k rows (k ≥ 1) of width D.
    pub fn score_jvps(
        &mut self,
        x: ArrayView2<f32>,
        v: ArrayView2<f32>,
        sigma: Option<f32>,
    ) -> Result<(Array2<f32>, Array2<f32>), ModelError> {
        let n = x.nrows();
        if n == 0 || v.ncols() != x.ncols() || !v.nrows().is_multiple_of(n) || v.nrows() == 0 {
            return Err(ModelError::invalid(
                "v",
                format!(
                    "has shape {:?}; it needs k ≥ 1 rows per point of x {:?}",
                    v.dim(),
                    x.dim()
                ),
            ));
        }
        let k = v.nrows() / n;
        if let Some((c, xin)) = self.preconditioned_input(x, sigma) {
            let vin = v.mapv(|t| t * c.c_in);
            let (s, jv) = self.raw_score_jvp(xin.view(), vin.view(), sigma, k)?;
            return Ok((c.combine(s, x), c.combine(jv, v)));
        }
        self.raw_score_jvp(x, v, sigma, k)
    }

    fn raw_score_jvp(
        &mut self,
        x: ArrayView2<f32>,
        v: ArrayView2<f32>,
        sigma: Option<f32>,
        k: usize,
    ) -> Result<(Array2<f32>, Array2<f32>), ModelError> {
        let s = self.score_for_tangents(x, sigma)?;
        let n = x.nrows();
        let mut jv = Array2::zeros((n * k, self.dim));
        let per = (CHUNK_ROWS / k).max(1);
        let mut p0 = 0;
        while p0 < n {
            let p1 = (p0 + per).min(n);
            let out = self.jvp_rows(p0, p1, v.slice(s![p0 * k..p1 * k, ..]), k, sigma);
            jv.slice_mut(s![p0 * k..p1 * k, ..]).assign(&out);
            p0 = p1;
        }
        Ok((s, jv))
    }

    /// s and tr ∇ₓs for every row of `x`, by `method` (module docs).
    ///
    /// # Errors
    /// As [`Inference::score`].
    pub fn score_trace(
        &mut self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
        method: TraceMethod,
    ) -> Result<(Array2<f32>, Array1<f32>), ModelError> {
        if let Some((k, xin)) = self.preconditioned_input(x, sigma) {
            let (s, tr) = self.raw_score_trace(xin.view(), sigma, method)?;
            let d = self.dim as f32;
            let tr = tr.mapv(|t| t * k.out * k.c_in - d * k.skip);
            return Ok((k.combine(s, x), tr));
        }
        self.raw_score_trace(x, sigma, method)
    }

    fn raw_score_trace(
        &mut self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
        method: TraceMethod,
    ) -> Result<(Array2<f32>, Array1<f32>), ModelError> {
        let s = self.score_for_tangents(x, sigma)?;
        let n = x.nrows();
        let d = self.dim;
        let mut tr = Array1::zeros(n);
        let naive = match (&self.structured, method) {
            (_, TraceMethod::Naive) => true,
            (Structured::Deep(_), TraceMethod::Structured) => d <= self.layers[0].0.ncols(),
            _ => false,
        };
        if naive {
            let per = (CHUNK_ROWS / d).max(1);
            let mut basis = Array2::<f32>::zeros((per * d, d));
            for p in 0..per {
                for j in 0..d {
                    basis[[p * d + j, j]] = 1.0;
                }
            }
            let mut p0 = 0;
            while p0 < n {
                let p1 = (p0 + per).min(n);
                let rows = (p1 - p0) * d;
                let out = self.jvp_rows(p0, p1, basis.slice(s![..rows, ..]), d, sigma);
                for p in p0..p1 {
                    tr[p] = (0..d).map(|j| out[[(p - p0) * d + j, j]]).sum();
                }
                p0 = p1;
            }
        } else {
            self.structured_trace(sigma, &mut tr);
        }
        Ok((s, tr))
    }

    /// The forward with the derivatives the tangents need (φ′; the energy network also φ″), and
    /// the score.
    fn score_for_tangents(
        &mut self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
    ) -> Result<Array2<f32>, ModelError> {
        let need = match self.kind {
            NetworkKind::EnergyMlp => Need::Second,
            _ => Need::First,
        };
        self.prepare(x, sigma, need)?;
        Ok(self.take_score(x, sigma))
    }

    /// Validates the inputs and runs the forward into the kept buffers.
    fn prepare(
        &mut self,
        x: ArrayView2<f32>,
        sigma: Option<f32>,
        need: Need,
    ) -> Result<(), ModelError> {
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
        check_sigma(self.kind, sigma.map(f64::from))?;
        let log_sigma = sigma
            .filter(|_| self.kind == NetworkKind::NoiseConditionalMlp)
            .map(f32::ln);
        self.forward(x, log_sigma, need);
        if self.kind == NetworkKind::EnergyMlp {
            self.energy_backward();
        }
        Ok(())
    }

    /// The score from the forward's buffers.
    fn take_score(&self, x: ArrayView2<f32>, sigma: Option<f32>) -> Array2<f32> {
        match self.kind {
            NetworkKind::EnergyMlp => {
                let inv_tau2 = self.energy.as_ref().expect("energy").1;
                // s = −(δ₀ ⊙ d₀) W₀ᵀ − x/τ².
                let e0 = &self.delta[0] * &self.d1[0];
                let mut s = x.mapv(|v| -v * inv_tau2);
                general_mat_mul(-1.0, &e0, &self.layers[0].0.t(), 1.0, &mut s);
                s
            }
            _ => {
                let mut out = self.pre.last().expect("at least one layer").clone();
                if let Some(s) = sigma {
                    out.mapv_inplace(|v| v / s);
                }
                out
            }
        }
    }

    /// The forward pass into the kept buffers: `pre[l]` = hₗ for every layer, `act[l]` = φ(hₗ),
    /// and as `need` asks `d1[l]` = φ′(hₗ), `d2[l]` = φ″(hₗ), for the hidden ones.
    fn forward(&mut self, x: ArrayView2<f32>, log_sigma: Option<f32>, need: Need) {
        let n = x.nrows();
        let hidden = self.hidden;
        if self.pre.first().is_none_or(|h| h.nrows() != n) {
            self.pre = self
                .layers
                .iter()
                .map(|(w, _)| Array2::zeros((n, w.ncols())))
                .collect();
            self.act = self.pre[..hidden].to_vec();
            self.d1 = self.act.clone();
            self.d2 = self.act.clone();
            if self.energy.is_some() {
                self.delta = self.act.clone();
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
                let hv = h.as_slice().expect("standard layout");
                apply(
                    act,
                    hv,
                    Outs {
                        value: Some(self.act[l].as_slice_mut().expect("standard layout")),
                        d1: (need >= Need::First)
                            .then(|| self.d1[l].as_slice_mut().expect("standard layout")),
                        d2: (need >= Need::Second)
                            .then(|| self.d2[l].as_slice_mut().expect("standard layout")),
                    },
                );
            }
        }
    }

    /// The energy network's backward δₗ (module docs) into the kept `delta`.
    fn energy_backward(&mut self) {
        let (w_out, _) = self.energy.as_ref().expect("an energy network");
        let last = self.hidden - 1;
        let shape = self.delta[last].dim();
        self.delta[last].assign(
            &w_out
                .view()
                .insert_axis(Axis(0))
                .broadcast(shape)
                .expect("w"),
        );
        for l in (1..=last).rev() {
            let e = &self.delta[l] * &self.d1[l];
            general_mat_mul(1.0, &e, &self.layers[l].0.t(), 0.0, &mut self.delta[l - 1]);
        }
    }

    /// J v for the points p0..p1 and their `k` tangents each (`v` holds (p1 − p0)·k rows, point
    /// by point), from the forward's buffers.
    fn jvp_rows(
        &self,
        p0: usize,
        p1: usize,
        v: ArrayView2<f32>,
        k: usize,
        sigma: Option<f32>,
    ) -> Array2<f32> {
        let rows = v.nrows();
        debug_assert_eq!(rows, (p1 - p0) * k);
        fn between(a: &Array2<f32>, p0: usize, p1: usize) -> ArrayView2<'_, f32> {
            a.slice(s![p0..p1, ..])
        }
        let points = |a| between(a, p0, p1);
        // ḣ₀ = v W₀.
        let mut t = Array2::zeros((rows, self.layers[0].0.ncols()));
        general_mat_mul(1.0, &v, &self.layers[0].0, 0.0, &mut t);
        match self.kind {
            NetworkKind::EnergyMlp => {
                let inv_tau2 = self.energy.as_ref().expect("energy").1;
                let last = self.hidden - 1;
                let mut hdot = vec![t];
                for l in 0..last {
                    let mut u = hdot[l].clone();
                    scale_rows(u.view_mut(), points(&self.d1[l]), k);
                    let mut next = Array2::zeros((rows, self.layers[l + 1].0.ncols()));
                    general_mat_mul(1.0, &u, &self.layers[l + 1].0, 0.0, &mut next);
                    hdot.push(next);
                }
                // ė_{L−1} = δ ⊙ dd ⊙ ḣ, then down the layers.
                let curv = |l: usize| &points(&self.delta[l]) * &points(&self.d2[l]);
                let mut e = hdot.pop().expect("a hidden layer");
                scale_rows(e.view_mut(), curv(last).view(), k);
                for l in (1..=last).rev() {
                    let mut below = Array2::zeros((rows, self.layers[l - 1].0.ncols()));
                    general_mat_mul(1.0, &e, &self.layers[l].0.t(), 0.0, &mut below);
                    scale_rows(below.view_mut(), points(&self.d1[l - 1]), k);
                    let mut h = hdot.pop().expect("one per layer");
                    scale_rows(h.view_mut(), curv(l - 1).view(), k);
                    below += &h;
                    e = below;
                }
                // J v = −ė₀ W₀ᵀ − v/τ².
                let mut out = v.mapv(|x| -x * inv_tau2);
                general_mat_mul(-1.0, &e, &self.layers[0].0.t(), 1.0, &mut out);
                out
            }
            _ => {
                for l in 0..self.hidden {
                    scale_rows(t.view_mut(), points(&self.d1[l]), k);
                    let mut next = Array2::zeros((rows, self.layers[l + 1].0.ncols()));
                    general_mat_mul(1.0, &t, &self.layers[l + 1].0, 0.0, &mut next);
                    t = next;
                }
                if let Some(s) = sigma {
                    t.mapv_inplace(|x| x / s);
                }
                t
            }
        }
    }

    /// The structured trace (module docs) of every point of the last forward into `tr`.
    fn structured_trace(&self, sigma: Option<f32>, tr: &mut Array1<f32>) {
        let n = tr.len();
        let scale = sigma.map_or(1.0, |s| 1.0 / s);
        match &self.structured {
            Structured::Constant(c) => tr.fill(c * scale),
            Structured::Diagonal(c) => {
                tr.assign(&(self.d1[0].dot(c) * scale));
            }
            Structured::Pair(p) => {
                let mut q = Array2::zeros((n, p.ncols()));
                general_mat_mul(1.0, &self.d1[0], p, 0.0, &mut q);
                Zip::from(tr)
                    .and(q.rows())
                    .and(self.d1[1].rows())
                    .for_each(|t, q, d| *t = q.dot(&d) * scale);
            }
            Structured::Deep(mt) => {
                let h1 = mt.nrows();
                let per = (CHUNK_ROWS / h1).max(1);
                let mut p0 = 0;
                while p0 < n {
                    let p1 = (p0 + per).min(n);
                    // Rows (p, i) = d₀[p, i] eᵢ, then through the hidden layers.
                    let mut t = Array2::<f32>::zeros(((p1 - p0) * h1, h1));
                    for p in p0..p1 {
                        for i in 0..h1 {
                            t[[(p - p0) * h1 + i, i]] = self.d1[0][[p, i]];
                        }
                    }
                    for l in 1..self.hidden {
                        let mut next = Array2::zeros((t.nrows(), self.layers[l].0.ncols()));
                        general_mat_mul(1.0, &t, &self.layers[l].0, 0.0, &mut next);
                        scale_rows(next.view_mut(), self.d1[l].slice(s![p0..p1, ..]), h1);
                        t = next;
                    }
                    for p in p0..p1 {
                        let block = t.slice(s![(p - p0) * h1..(p - p0 + 1) * h1, ..]);
                        tr[p] = Zip::from(&block)
                            .and(mt)
                            .fold(0.0, |acc, &a, &m| acc + a * m)
                            * scale;
                    }
                    p0 = p1;
                }
            }
            Structured::Energy(f, q0) => {
                let inv_tau2 = self.energy.as_ref().expect("energy").1;
                let r = f.nrows();
                let constant = -(self.dim as f32) * inv_tau2;
                // The first layer: Σₖ c₀ₖ q₀ₖ.
                let c0 = &self.delta[0] * &self.d2[0];
                tr.assign(&(-c0.dot(q0) + constant));
                let per = (CHUNK_ROWS / r).max(1);
                let mut p0 = 0;
                while p0 < n {
                    let p1 = (p0 + per).min(n);
                    let m = p1 - p0;
                    let mut u = Array2::<f32>::zeros((m * r, f.ncols()));
                    for p in 0..m {
                        u.slice_mut(s![p * r..(p + 1) * r, ..]).assign(f);
                    }
                    for l in 1..self.hidden {
                        scale_rows(u.view_mut(), self.d1[l - 1].slice(s![p0..p1, ..]), r);
                        let mut next = Array2::zeros((u.nrows(), self.layers[l].0.ncols()));
                        general_mat_mul(1.0, &u, &self.layers[l].0, 0.0, &mut next);
                        u = next;
                        let c = &self.delta[l].slice(s![p0..p1, ..])
                            * &self.d2[l].slice(s![p0..p1, ..]);
                        for p in 0..m {
                            let block = u.slice(s![p * r..(p + 1) * r, ..]);
                            let q = block.map_axis(Axis(0), |col| col.dot(&col));
                            tr[p0 + p] -= q.dot(&c.row(p));
                        }
                    }
                    p0 = p1;
                }
            }
        }
    }
}

/// The structured trace's matrices (module docs), computed once from the weights.
fn prepare_structured(
    kind: NetworkKind,
    layers: &[(Array2<f32>, Array1<f32>)],
    hidden: usize,
) -> Structured {
    let w = |l: usize| &layers[l].0;
    if kind == NetworkKind::EnergyMlp {
        let w0 = w(0);
        let (d, h1) = w0.dim();
        let f = if d <= h1 {
            w0.clone()
        } else {
            // G = W₀ᵀW₀ (H₁ × H₁) = LLᵀ in f64; F = Lᵀ. A singular G (rank below H₁) keeps W₀.
            let w64 = w0.mapv(f64::from);
            let g = w64.t().dot(&w64);
            cholesky(&g).map_or_else(|| w0.clone(), |l| l.t().mapv(|v| v as f32))
        };
        let q0 = f.map_axis(Axis(0), |col| col.dot(&col));
        return Structured::Energy(f, q0);
    }
    match hidden {
        0 => Structured::Constant(w(0).diag().sum()),
        1 => Structured::Diagonal(
            (0..w(0).ncols())
                .map(|i| w(1).row(i).dot(&w(0).column(i)))
                .collect(),
        ),
        2 => {
            let m = w(2).dot(w(0)); // H₂ × H₁
            Structured::Pair(w(1) * &m.t())
        }
        _ => Structured::Deep(
            w(hidden)
                .dot(w(0))
                .reversed_axes()
                .as_standard_layout()
                .to_owned(),
        ),
    }
}

/// The lower-triangular L with L Lᵀ = g, or `None` when g is not positive definite.
fn cholesky(g: &Array2<f64>) -> Option<Array2<f64>> {
    let n = g.nrows();
    let mut l = Array2::<f64>::zeros((n, n));
    for j in 0..n {
        let diag = g[[j, j]] - (0..j).map(|k| l[[j, k]] * l[[j, k]]).sum::<f64>();
        if diag <= 1e-12 * g[[j, j]].abs().max(f64::MIN_POSITIVE) {
            return None;
        }
        l[[j, j]] = diag.sqrt();
        for i in j + 1..n {
            let v = g[[i, j]] - (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum::<f64>();
            l[[i, j]] = v / l[[j, j]];
        }
    }
    Some(l)
}

/// A network's f32 inference path at one fixed σ (or none), behind the f64 [`ScoreFunction`]
/// door: inputs are rounded to f32, results widened back. Its trace is the structured one. A
/// mutex holds the engine's buffers, so it is `Sync` like every score.
///
/// ```
/// use scorelab_core::{Score, ScoreFunction};
/// use scorelab_models::{Activation, F32Score, NetworkKind, NetworkSpec};
/// let net = NetworkSpec { kind: NetworkKind::Mlp, dim: 2, hidden: vec![8, 8],
///                         activation: Activation::Tanh, tau: None,
///                         precondition: None }.build(0)?;
/// let fast = F32Score::new(&net, None)?;
/// let x = ndarray::array![[0.1, 0.2]];
/// let (a, b) = (fast.jacobian_trace(x.view())[0], net.score_function(None)?.jacobian_trace(x.view())[0]);
/// assert!((a - b).abs() < 1e-4 * (b.abs() + 1.0));
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
#[derive(Debug)]
pub struct F32Score {
    engine: Shared,
    sigma: Option<f32>,
}

/// An [`Inference`] behind a mutex, with its D: what [`F32Score`] and [`F32Noised`] share.
#[derive(Debug)]
struct Shared {
    engine: Mutex<Inference>,
    dim: usize,
}

impl Shared {
    fn new(net: &Network) -> Self {
        let engine = Inference::new(net);
        Shared {
            dim: engine.dim(),
            engine: Mutex::new(engine),
        }
    }

    /// Runs `f` on the engine; an error (a caller's bad shape or σ) is a panic naming `who`.
    fn run<R>(&self, who: &str, f: impl FnOnce(&mut Inference) -> Result<R, ModelError>) -> R {
        let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut engine).unwrap_or_else(|e| panic!("{who}: {e}"))
    }
}

impl F32Score {
    /// The inference path of `net` at `sigma`: required for a noise-conditional network, refused
    /// otherwise (the check and messages of [`Network::score_function`]).
    ///
    /// # Errors
    /// A [`ModelError`] naming `sigma`.
    pub fn new(net: &Network, sigma: Option<f64>) -> Result<Self, ModelError> {
        check_sigma(net.spec().kind, sigma)?;
        Ok(F32Score {
            engine: Shared::new(net),
            sigma: sigma.map(|s| s as f32),
        })
    }
}

impl Dimension for F32Score {
    fn dim(&self) -> usize {
        self.engine.dim
    }
}

/// # Panics
/// If `x` is not `(n, D)`.
impl Score for F32Score {
    fn score(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let x = x.mapv(|v| v as f32);
        self.engine
            .run("F32Score", |e| e.score(x.view(), self.sigma))
            .mapv(f64::from)
    }
}

/// # Panics
/// If `x` or `v` is not `(n, D)`.
impl ScoreFunction for F32Score {
    fn score_jvp(&self, x: ArrayView2<f64>, v: ArrayView2<f64>) -> Array2<f64> {
        let (x, v) = (x.mapv(|a| a as f32), v.mapv(|a| a as f32));
        self.engine
            .run("F32Score", |e| e.score_jvp(x.view(), v.view(), self.sigma))
            .1
            .mapv(f64::from)
    }
    fn jacobian_trace(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let x = x.mapv(|a| a as f32);
        self.engine
            .run("F32Score", |e| {
                e.score_trace(x.view(), self.sigma, TraceMethod::Structured)
            })
            .1
            .mapv(f64::from)
    }
}

/// A noise-conditional network's f32 inference path as a [`NoisedScore`], s(x, σ) at any σ, for
/// the annealed samplers and the reverse SDE and ODE (see [`F32Score`] for the conversions).
#[derive(Debug)]
pub struct F32Noised {
    engine: Shared,
    trace: TraceMethod,
}

impl F32Noised {
    /// The inference path of the noise-conditional `net`.
    ///
    /// # Errors
    /// A [`ModelError`] naming `model` when `net` is not noise-conditional.
    pub fn new(net: &Network) -> Result<Self, ModelError> {
        if !net.is_noise_conditional() {
            return Err(ModelError::invalid(
                "model",
                format!(
                    "a {} is not noise-conditional: it has no s(x, σ)",
                    net.spec().kind.name()
                ),
            ));
        }
        Ok(F32Noised {
            engine: Shared::new(net),
            trace: TraceMethod::Structured,
        })
    }

    /// The same, with the exact trace of [`NoisedScoreFunction::noised_score_trace`] computed by
    /// `method` (the default is [`TraceMethod::Structured`]).
    pub fn with_trace(mut self, method: TraceMethod) -> Self {
        self.trace = method;
        self
    }
}

impl Dimension for F32Noised {
    fn dim(&self) -> usize {
        self.engine.dim
    }
}

/// # Panics
/// If `x` is not `(n, D)` or σ is not positive and finite.
impl NoisedScore for F32Noised {
    fn noised_score(&self, x: ArrayView2<f64>, sigma: f64) -> Array2<f64> {
        let x = x.mapv(|v| v as f32);
        self.engine
            .run("F32Noised", |e| e.score(x.view(), Some(sigma as f32)))
            .mapv(f64::from)
    }
}

/// J at fixed σ through the f32 engine (EDM preconditioning included: J = c_out c_in J_raw − c_skip I).
///
/// # Panics
/// If `x` is not `(n, D)`, `v` not `(n·k, D)`, or σ is not positive and finite.
impl NoisedScoreFunction for F32Noised {
    fn noised_score_jvp(
        &self,
        x: ArrayView2<f64>,
        v: ArrayView2<f64>,
        sigma: f64,
    ) -> (Array2<f64>, Array2<f64>) {
        let (x, v) = (x.mapv(|a| a as f32), v.mapv(|a| a as f32));
        let (s, jv) = self.engine.run("F32Noised", |e| {
            e.score_jvps(x.view(), v.view(), Some(sigma as f32))
        });
        (s.mapv(f64::from), jv.mapv(f64::from))
    }
    fn noised_score_trace(&self, x: ArrayView2<f64>, sigma: f64) -> (Array2<f64>, Array1<f64>) {
        let x = x.mapv(|a| a as f32);
        let (s, tr) = self.engine.run("F32Noised", |e| {
            e.score_trace(x.view(), Some(sigma as f32), self.trace)
        });
        (s.mapv(f64::from), tr.mapv(f64::from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NetworkSpec;
    use rand::{Rng, SeedableRng};

    /// Architectures that reach every branch: the closed forms for one and two hidden layers, the
    /// deep path with D ≤ H₁ (naive batch) and D > H₁ (H₁ tangents), and for the energy network
    /// F = W₀ (D ≤ H₁) and the Cholesky factor (D > H₁).
    fn cases(kind: NetworkKind) -> Vec<(usize, Vec<usize>)> {
        let mut c = vec![
            (2, vec![64, 64]),
            (3, vec![5]),
            (7, vec![32, 48, 16]),
            (9, vec![4, 6, 5]),
            (9, vec![4, 6]),
        ];
        if kind == NetworkKind::Mlp {
            c.push((4, vec![]));
        }
        c
    }

    fn sigmas(kind: NetworkKind) -> Vec<Option<f64>> {
        match kind {
            NetworkKind::NoiseConditionalMlp => vec![Some(0.3), Some(2.0)],
            _ => vec![None],
        }
    }

    const KINDS: [NetworkKind; 3] = [
        NetworkKind::Mlp,
        NetworkKind::NoiseConditionalMlp,
        NetworkKind::EnergyMlp,
    ];
    const ACTIVATIONS: [Activation; 3] = [Activation::Tanh, Activation::Softplus, Activation::Silu];

    /// Runs `check(kind, activation, D, net, x64, σ)` for every kind, activation, case and σ, on
    /// 33 points with coordinates in [−3, 3].
    fn each_network(mut check: impl FnMut(String, &Network, &Array2<f64>, Option<f64>)) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for kind in KINDS {
            for activation in ACTIVATIONS {
                for (k, (dim, hidden)) in cases(kind).into_iter().enumerate() {
                    // Every other noise-conditional case with EDM's preconditioning.
                    let precondition = (kind == NetworkKind::NoiseConditionalMlp && k % 2 == 1)
                        .then_some(crate::Precondition::Edm { sigma_data: 1.3 });
                    let spec = NetworkSpec {
                        kind,
                        dim,
                        hidden: hidden.clone(),
                        activation,
                        tau: (kind == NetworkKind::EnergyMlp).then_some(3.0),
                        precondition,
                    };
                    let net = spec.build(5).unwrap();
                    let x = Array2::from_shape_fn((33, dim), |_| rng.gen_range(-3.0..3.0));
                    for sigma in sigmas(kind) {
                        let what = format!(
                            "{kind:?} {activation:?} D={dim} {hidden:?} σ={sigma:?} {precondition:?}"
                        );
                        check(what, &net, &x, sigma);
                    }
                }
            }
        }
    }

    /// On the score and the JVP: within 1e-5·(|b| + 1) of the f64 door, entry by entry, on two
    /// calls (the second reuses the buffers of the first).
    #[test]
    fn the_f32_score_and_jvp_agree_with_the_f64_door_for_every_network() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        each_network(|what, net, x64, sigma| {
            let v64 = Array2::from_shape_fn(x64.dim(), |_| rng.gen_range(-1.0..1.0));
            let door = net.score_function(sigma).unwrap();
            let s_door = door.score(x64.view());
            let jv_door = door.score_jvp(x64.view(), v64.view());
            let (x, v) = (x64.mapv(|a| a as f32), v64.mapv(|a| a as f32));
            let mut f = Inference::new(net);
            let sig = sigma.map(|s| s as f32);
            for _ in 0..2 {
                let s = f.score(x.view(), sig).unwrap();
                let (s2, jv) = f.score_jvp(x.view(), v.view(), sig).unwrap();
                for (a, b, name) in [
                    (&s, &s_door, "score"),
                    (&s2, &s_door, "score"),
                    (&jv, &jv_door, "jvp"),
                ] {
                    Zip::from(a).and(b).for_each(|&a, &b| {
                        assert!(
                            (a as f64 - b).abs() <= 1e-5 * (b.abs() + 1.0),
                            "{what} {name}: {a} against {b}"
                        );
                    });
                }
            }
        });
    }

    /// On the trace, by both methods: within 1e-5·(|b| + Σᵢ|Jᵢᵢ|) of the f64 door, the Jᵢᵢ from
    /// the door's JVPs of the basis vectors.
    #[test]
    fn the_f32_traces_agree_with_the_f64_door_for_every_network() {
        each_network(|what, net, x64, sigma| {
            let door = net.score_function(sigma).unwrap();
            let b = door.jacobian_trace(x64.view());
            let (n, d) = x64.dim();
            let mut abs_diag = Array1::<f64>::zeros(n);
            for j in 0..d {
                let mut e = Array2::zeros((n, d));
                e.column_mut(j).fill(1.0);
                abs_diag += &door
                    .score_jvp(x64.view(), e.view())
                    .column(j)
                    .mapv(f64::abs);
            }
            let x = x64.mapv(|a| a as f32);
            let mut f = Inference::new(net);
            for method in [TraceMethod::Naive, TraceMethod::Structured] {
                let (_, a) = f
                    .score_trace(x.view(), sigma.map(|s| s as f32), method)
                    .unwrap();
                for i in 0..n {
                    let bound = 1e-5 * (b[i].abs() + abs_diag[i]);
                    assert!(
                        (a[i] as f64 - b[i]).abs() <= bound,
                        "{what} {method}: {} against {} (bound {bound:e})",
                        a[i],
                        b[i]
                    );
                }
            }
        });
    }

    /// More points than one tangent chunk holds: the chunked naive trace equals the per-point one.
    #[test]
    fn chunked_tangent_batches_give_each_point_its_own_trace() {
        let spec = NetworkSpec {
            kind: NetworkKind::EnergyMlp,
            dim: 40,
            hidden: vec![8, 8],
            activation: Activation::Softplus,
            tau: Some(2.0),
            precondition: None,
        };
        let net = spec.build(2).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let n = CHUNK_ROWS / 40 + 7;
        let x = Array2::from_shape_fn((n, 40), |_| rng.gen_range(-2.0f32..2.0));
        let mut f = Inference::new(&net);
        let (_, all) = f.score_trace(x.view(), None, TraceMethod::Naive).unwrap();
        for i in [0, n / 2, n - 1] {
            let (_, one) = f
                .score_trace(x.slice(s![i..i + 1, ..]), None, TraceMethod::Naive)
                .unwrap();
            assert!(
                (all[i] - one[0]).abs() <= 1e-5 * (one[0].abs() + 1.0),
                "point {i}"
            );
        }
    }

    #[test]
    fn the_f64_wrappers_match_the_engine_and_refuse_what_the_door_refuses() {
        let spec = NetworkSpec {
            kind: NetworkKind::NoiseConditionalMlp,
            dim: 3,
            hidden: vec![16, 16],
            activation: Activation::Silu,
            tau: None,
            precondition: None,
        };
        let net = spec.build(1).unwrap();
        let x = ndarray::array![[0.1, -0.4, 2.0], [1.0, 0.0, -1.0]];
        let noised = F32Noised::new(&net).unwrap();
        let fixed = F32Score::new(&net, Some(0.5)).unwrap();
        let door = net.score_function(Some(0.5)).unwrap();
        let (a, b, c) = (
            noised.noised_score(x.view(), 0.5),
            fixed.score(x.view()),
            door.score(x.view()),
        );
        Zip::from(&a).and(&b).and(&c).for_each(|&a, &b, &c| {
            assert_eq!(a, b);
            assert!((a - c).abs() <= 1e-5 * (c.abs() + 1.0));
        });
        assert!(F32Score::new(&net, None)
            .unwrap_err()
            .to_string()
            .contains("sigma"));
        let plain = NetworkSpec {
            kind: NetworkKind::Mlp,
            ..spec
        }
        .build(1)
        .unwrap();
        assert!(F32Noised::new(&plain)
            .unwrap_err()
            .to_string()
            .contains("model"));
        assert_eq!(noised.dim(), 3);
    }
    #[test]
    fn a_wrong_sigma_or_width_is_a_named_error() {
        let spec = |kind| NetworkSpec {
            kind,
            dim: 2,
            hidden: vec![4],
            activation: Activation::Tanh,
            tau: None,
            precondition: None,
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

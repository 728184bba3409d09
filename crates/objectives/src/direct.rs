//! The direct training step: the loss and its θ-gradient for the MLP and noise-conditional MLP,
//! written out by hand in f32 — one forward, the tangents where the objective has them, one
//! backward — with ndarray's matrix products (`general_mat_mul`, matrixmultiply's kernels,
//! threaded for large products) and the vectorised activations of [`scorelab_models::simd`].
//! It computes what [`crate::taped::loss_and_gradient`] computes on dfdx's tape, without a tape:
//! no buffer per op, no closure per op, no f64 round trip of the gradients; the tests hold the
//! two together to f32 rounding for every objective, network kind, depth and activation.
//!
//! # What it covers
//! [`loss_and_gradient`] returns `None` (the caller then uses the tape) for what it does not:
//! the energy network, and the structured ISM of an MLP with other than two hidden layers.
//!
//! # The computation
//! Rows are points (B of them); layer l has hₗ = aₗWₗ + bₗ (a₀ = x; for the noise-conditional
//! network h₀ gains log σᵢ · w_σ), aₗ₊₁ = φ(hₗ), dₗ = φ′(hₗ), ddₗ = φ″(hₗ), and the network's
//! output is h_L (the score s = h_L, or h_L/σᵢ). Given ∂L/∂h_L the backward is the textbook one:
//! ∂Wₗ = aₗᵀ gₗ, ∂bₗ = Σ_rows gₗ, ∂w_σ = Σᵢ log σᵢ g₀ᵢ, g_{l−1} = (gₗWₗᵀ) ⊙ d_{l−1}, plus, where the
//! loss depends on d_{l−1} directly (tangents, traces), (∂L/∂d_{l−1}) ⊙ dd_{l−1}.
//! - `esm`, `dsm`, `dsm_multi`: the residual r of ½‖r‖² (`esm` s − ∇log p; `dsm` s + ε/σ; `dsm_multi`
//!   σᵢs + ε = h_L + ε), so ∂L/∂h_L = r/B (r/(σB) for a noise-conditional `dsm`).
//! - `ssm`, `ssm_vr`, and `ism` with the naive trace: K tangents per point (the probes vₖ; for ISM the
//!   D basis vectors), t₀ = vW₀, uₗ = tₗ ⊙ dₗ, tₗ₊₁ = uₗWₗ₊₁, J v = t_L. The tangent terms
//!   c Σₖ vₖᵀJvₖ (c = 1/K, or 1 for ISM) go back through the tangents: with T_L = c v/B,
//!   ∂Wₗ += u_{l−1}ᵀ Tₗ, U = TₗWₗᵀ, ∂L/∂d_{l−1} += Σₖ U ⊙ t_{l−1}, T_{l−1} = U ⊙ d_{l−1}, ∂W₀ += vᵀT₀;
//!   the score terms give ∂L/∂h_L = s/B (`ssm_vr`, `ism`) or Σₖ (vₖᵀs) vₖ/(KB) (`ssm`). From layer 1
//!   on, the B primal rows and the B·K tangent rows are one matrix, so each layer costs one matrix
//!   product forward and two back. For naive ISM the first layer's tangents are the rows of W₀
//!   (no product with the identity), and the output layer computes only the entry (J eⱼ)ⱼ that the
//!   trace uses (and back, only row j of W_Lᵀ and column j of ∂W_L).
//! - `ism`, structured, two hidden layers: tr J = Σᵢⱼ d₀ᵢ P[i, j] d₁ⱼ with P = W₁ ⊙ Mᵀ, M = W₂W₀
//!   (the cyclic trace of `scorelab_models`' MLP docs), so ∂L/∂d₀ = d₁Pᵀ/B, ∂L/∂d₁ = d₀P/B,
//!   ∂P = d₀ᵀd₁/B, and through P: ∂W₁ += ∂P ⊙ Mᵀ, ∂M = (∂P ⊙ W₁)ᵀ, ∂W₂ += ∂M W₀ᵀ, ∂W₀ += W₂ᵀ∂M.
//!
//! The inputs (x, x̃ = x + σε, the targets) are formed in f64 and rounded to f32, as on the tape.

use crate::taped::{Noise, Objective};
use ndarray::linalg::general_mat_mul;
use ndarray::{s, Array1, Array2, ArrayView2, ArrayViewMut2, Zip};
use scorelab_models::simd::{apply, scale_rows, Outs};
use scorelab_models::{Activation, Network, NetworkKind, TraceMethod};

/// The per-row σ of a noise-conditional forward: log σᵢ for h₀, and σᵢ.
struct RowSigma {
    log: Array1<f32>,
    sigma: Array1<f32>,
}

/// The forward's values, kept for the backward.
struct Forward {
    /// a₀ = x.
    x: Array2<f32>,
    /// hₗ for every layer (the last is the output h_L).
    pre: Vec<Array2<f32>>,
    /// φ(hₗ), φ′(hₗ), φ″(hₗ) of the hidden layers (φ″ only where asked).
    act: Vec<Array2<f32>>,
    d1: Vec<Array2<f32>>,
    d2: Vec<Array2<f32>>,
}

/// The network's weights as views, and where each gradient block goes.
struct Layers<'a> {
    w: Vec<ArrayView2<'a, f32>>,
    b: Vec<&'a [f32]>,
    w_sigma: Option<&'a [f32]>,
    /// Block index of Wₗ, bₗ and w_σ in the parameter order.
    w_at: Vec<usize>,
    b_at: Vec<usize>,
    sigma_at: Option<usize>,
    activation: Activation,
    blocks: usize,
    sizes: Vec<usize>,
}

impl<'a> Layers<'a> {
    fn of(net: &'a Network) -> Self {
        let p = net.params();
        let at = |name: &str| {
            p.names()
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("a network has block {name}"))
        };
        let n_layers = p
            .names()
            .iter()
            .filter(|n| n.starts_with("layers.") && n.ends_with(".weight"))
            .count();
        let w_at: Vec<usize> = (0..n_layers)
            .map(|l| at(&format!("layers.{l}.weight")))
            .collect();
        let b_at: Vec<usize> = (0..n_layers)
            .map(|l| at(&format!("layers.{l}.bias")))
            .collect();
        let w = w_at
            .iter()
            .map(|&i| {
                ArrayView2::from_shape(p.shapes()[i], &p.values()[i][..]).expect("block shape")
            })
            .collect();
        let b = b_at.iter().map(|&i| &p.values()[i][..]).collect();
        let sigma_at = net.is_noise_conditional().then(|| at("sigma.weight"));
        Layers {
            w,
            b,
            w_sigma: sigma_at.map(|i| &p.values()[i][..]),
            w_at,
            b_at,
            sigma_at,
            activation: net.spec().activation,
            blocks: p.len(),
            sizes: p.values().iter().map(Vec::len).collect(),
        }
    }

    fn hidden(&self) -> usize {
        self.w.len() - 1
    }

    /// The forward on the f32 points `x`; φ″ when `second`.
    fn forward(&self, x: Array2<f32>, sigma: Option<&RowSigma>, second: bool) -> Forward {
        let n = x.nrows();
        let hidden = self.hidden();
        let mut pre: Vec<Array2<f32>> = Vec::with_capacity(hidden + 1);
        let mut act: Vec<Array2<f32>> = Vec::with_capacity(hidden);
        let mut d1: Vec<Array2<f32>> = Vec::with_capacity(hidden);
        let mut d2: Vec<Array2<f32>> = Vec::with_capacity(hidden);
        for l in 0..=hidden {
            let width = self.w[l].ncols();
            let mut h = Array2::<f32>::zeros((n, width));
            for mut row in h.rows_mut() {
                row.as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(self.b[l]);
            }
            if let (0, Some(rs), Some(ws)) = (l, sigma, self.w_sigma) {
                for (mut row, &ls) in h.rows_mut().into_iter().zip(&rs.log) {
                    row.iter_mut().zip(ws).for_each(|(h, &w)| *h += ls * w);
                }
            }
            let input = if l == 0 { x.view() } else { act[l - 1].view() };
            general_mat_mul(1.0, &input, &self.w[l], 1.0, &mut h);
            if l < hidden {
                let mut a = Array2::<f32>::zeros((n, width));
                let mut d = Array2::<f32>::zeros((n, width));
                let mut dd = Array2::<f32>::zeros(if second { (n, width) } else { (0, 0) });
                apply(
                    self.activation,
                    h.as_slice().expect("standard layout"),
                    Outs {
                        value: a.as_slice_mut(),
                        d1: d.as_slice_mut(),
                        d2: if second { dd.as_slice_mut() } else { None },
                    },
                );
                act.push(a);
                d1.push(d);
                d2.push(dd);
            }
            pre.push(h);
        }
        Forward {
            x,
            pre,
            act,
            d1,
            d2,
        }
    }

    /// The backward from g_L = ∂L/∂h_L, with ∂L/∂dₗ in `dgrad` where the loss has them, added
    /// into `grads`.
    fn backward(
        &self,
        f: &Forward,
        mut g: Array2<f32>,
        dgrad: &[Option<Array2<f32>>],
        sigma: Option<&RowSigma>,
        grads: &mut [Vec<f32>],
    ) {
        for l in (0..=self.hidden()).rev() {
            let input = if l == 0 {
                f.x.view()
            } else {
                f.act[l - 1].view()
            };
            let mut dw = block_mut(grads, self.w_at[l], self.w[l].dim());
            general_mat_mul(1.0, &input.t(), &g, 1.0, &mut dw);
            let db = &mut grads[self.b_at[l]];
            for row in g.rows() {
                db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
            }
            if l == 0 {
                if let (Some(rs), Some(at)) = (sigma, self.sigma_at) {
                    let dws = &mut grads[at];
                    for (row, &ls) in g.rows().into_iter().zip(&rs.log) {
                        dws.iter_mut().zip(row).for_each(|(d, &v)| *d += ls * v);
                    }
                }
                break;
            }
            let mut below = Array2::<f32>::zeros((g.nrows(), self.w[l].nrows()));
            general_mat_mul(1.0, &g, &self.w[l].t(), 0.0, &mut below);
            below *= &f.d1[l - 1];
            if let Some(dg) = &dgrad[l - 1] {
                Zip::from(&mut below)
                    .and(dg)
                    .and(&f.d2[l - 1])
                    .for_each(|b, &dg, &dd| *b += dg * dd);
            }
            g = below;
        }
    }

    /// The tangent objectives (`ssm`, `ssm_vr`, naive `ism`): the loss, with ∂θ added into
    /// `grads` (module docs). From layer 1 on, the primal rows and the tangent rows share one
    /// matrix, rows 0..B the points and B.. their K tangents each, so every layer is one
    /// product forward and two back. `v` is `None` for the D basis vectors (naive ISM), whose
    /// first-layer tangents are the rows of W₀ themselves.
    #[allow(clippy::too_many_arguments)]
    fn tangent_loss(
        &self,
        x: &Array2<f32>,
        v: Option<&Array2<f32>>,
        k: usize,
        c: f32,
        sliced: bool,
        grads: &mut [Vec<f32>],
    ) -> f64 {
        let (n, d) = x.dim();
        let hidden = self.hidden();
        let rows = n + n * k;
        let inv_n = 1.0 / n as f32;
        // Layer 0: [x W₀ + b₀; v W₀].
        let mut z = Array2::<f32>::zeros((rows, self.w[0].ncols()));
        for mut row in z.slice_mut(s![..n, ..]).rows_mut() {
            row.as_slice_mut()
                .expect("standard layout")
                .copy_from_slice(self.b[0]);
        }
        general_mat_mul(1.0, x, &self.w[0], 1.0, &mut z.slice_mut(s![..n, ..]));
        match v {
            Some(v) => general_mat_mul(1.0, v, &self.w[0], 0.0, &mut z.slice_mut(s![n.., ..])),
            None => {
                for p in 0..n {
                    z.slice_mut(s![n + p * d..n + (p + 1) * d, ..])
                        .assign(&self.w[0]);
                }
            }
        }
        let mut zs: Vec<Array2<f32>> = Vec::with_capacity(hidden + 1);
        let mut ins: Vec<Array2<f32>> = Vec::with_capacity(hidden);
        let (mut d1, mut d2) = (Vec::with_capacity(hidden), Vec::with_capacity(hidden));
        for l in 0..hidden {
            let width = z.ncols();
            let mut input = Array2::<f32>::zeros((rows, width));
            let mut dl = Array2::<f32>::zeros((n, width));
            let mut ddl = Array2::<f32>::zeros((n, width));
            {
                let h = z.slice(s![..n, ..]);
                let mut a = input.slice_mut(s![..n, ..]);
                apply(
                    self.activation,
                    h.as_slice().expect("standard layout"),
                    Outs {
                        value: a.as_slice_mut(),
                        d1: dl.as_slice_mut(),
                        d2: ddl.as_slice_mut(),
                    },
                );
            }
            // uₗ = tₗ ⊙ dₗ.
            input.slice_mut(s![n.., ..]).assign(&z.slice(s![n.., ..]));
            scale_rows(input.slice_mut(s![n.., ..]), dl.view(), k);
            let mut next = Array2::<f32>::zeros((rows, self.w[l + 1].ncols()));
            for mut row in next.slice_mut(s![..n, ..]).rows_mut() {
                row.as_slice_mut()
                    .expect("standard layout")
                    .copy_from_slice(self.b[l + 1]);
            }
            if v.is_none() && l + 1 == hidden {
                // Naive ISM needs only (J eⱼ)ⱼ: the output layer's column j for tangent row j.
                general_mat_mul(
                    1.0,
                    &input.slice(s![..n, ..]),
                    &self.w[l + 1],
                    1.0,
                    &mut next.slice_mut(s![..n, ..]),
                );
                let wt = self.w[l + 1].t().as_standard_layout().into_owned(); // D × H, rows contiguous
                for r in n..rows {
                    let j = (r - n) % d;
                    next[[r, j]] = input.row(r).dot(&wt.row(j));
                }
            } else {
                general_mat_mul(1.0, &input, &self.w[l + 1], 1.0, &mut next);
            }
            zs.push(std::mem::replace(&mut z, next));
            ins.push(input);
            d1.push(dl);
            d2.push(ddl);
        }
        // z = [s; J v].
        let mut loss = 0.0f64;
        let mut g = Array2::<f32>::zeros((rows, d));
        for p in 0..n {
            let sp = z.row(p);
            for r in n + p * k..n + (p + 1) * k {
                let jv = z.row(r);
                let vjv = match v {
                    Some(v) => v.row(r - n).dot(&jv),
                    None => jv[r - n - p * k],
                };
                loss += f64::from(c) * f64::from(vjv);
            }
            if sliced {
                let v = v.expect("probes");
                for r in p * k..(p + 1) * k {
                    let vs = v.row(r).dot(&sp);
                    loss += 0.5 * f64::from(c) * f64::from(vs) * f64::from(vs);
                    g.row_mut(p).scaled_add(vs * c * inv_n, &v.row(r));
                }
            } else {
                loss += 0.5 * sp.iter().map(|&a| f64::from(a) * f64::from(a)).sum::<f64>();
                g.row_mut(p).scaled_add(inv_n, &sp);
            }
        }
        // ∂L/∂(J v) = c v / B.
        match v {
            Some(v) => g.slice_mut(s![n.., ..]).scaled_add(c * inv_n, v),
            None => {
                for p in 0..n {
                    for j in 0..d {
                        g[[n + p * d + j, j]] = c * inv_n;
                    }
                }
            }
        }
        for l in (1..=hidden).rev() {
            let mut dw = block_mut(grads, self.w_at[l], self.w[l].dim());
            let mut below = Array2::<f32>::zeros((rows, self.w[l].nrows()));
            if v.is_none() && l == hidden {
                // The tangent rows of ∂L/∂(J v) are c/B eⱼ: row j of W_Lᵀ and column j of ∂W_L.
                let top = g.slice(s![..n, ..]);
                general_mat_mul(1.0, &ins[l - 1].slice(s![..n, ..]).t(), &top, 1.0, &mut dw);
                let cn = c * inv_n;
                let wt = self.w[l].t().as_standard_layout().into_owned(); // D × H
                let mut dwt = Array2::<f32>::zeros((d, self.w[l].nrows()));
                for r in n..rows {
                    let j = (r - n) % d;
                    dwt.row_mut(j).scaled_add(cn, &ins[l - 1].row(r));
                    below.row_mut(r).scaled_add(cn, &wt.row(j));
                }
                dw += &dwt.t();
                general_mat_mul(
                    1.0,
                    &top,
                    &self.w[l].t(),
                    0.0,
                    &mut below.slice_mut(s![..n, ..]),
                );
            } else {
                general_mat_mul(1.0, &ins[l - 1].t(), &g, 1.0, &mut dw);
                general_mat_mul(1.0, &g, &self.w[l].t(), 0.0, &mut below);
            }
            add_column_sums(&mut grads[self.b_at[l]], g.slice(s![..n, ..]));
            let t_prev = zs.pop().expect("one per layer");
            // ∂L/∂d_{l−1} = Σₖ U ⊙ t_{l−1}, then the primal rows gain it times φ″.
            let mut dg = Array2::<f32>::zeros((n, below.ncols()));
            for (p, mut out) in dg.rows_mut().into_iter().enumerate() {
                for r in n + p * k..n + (p + 1) * k {
                    Zip::from(&mut out)
                        .and(below.row(r))
                        .and(t_prev.row(r))
                        .for_each(|o, &a, &b| *o += a * b);
                }
            }
            let (dl, ddl) = (&d1[l - 1], &d2[l - 1]);
            Zip::from(below.slice_mut(s![..n, ..]))
                .and(dl)
                .and(&dg)
                .and(ddl)
                .for_each(|b, &d, &dg, &dd| *b = *b * d + dg * dd);
            scale_rows(below.slice_mut(s![n.., ..]), dl.view(), k);
            g = below;
        }
        let mut dw0 = block_mut(grads, self.w_at[0], self.w[0].dim());
        general_mat_mul(1.0, &x.t(), &g.slice(s![..n, ..]), 1.0, &mut dw0);
        match v {
            Some(v) => general_mat_mul(1.0, &v.t(), &g.slice(s![n.., ..]), 1.0, &mut dw0),
            None => {
                for p in 0..n {
                    dw0 += &g.slice(s![n + p * d..n + (p + 1) * d, ..]);
                }
            }
        }
        add_column_sums(&mut grads[self.b_at[0]], g.slice(s![..n, ..]));
        loss / n as f64
    }
}

/// Adds the column sums of `g` to `db`.
fn add_column_sums(db: &mut [f32], g: ArrayView2<f32>) {
    for row in g.rows() {
        db.iter_mut().zip(row).for_each(|(d, &v)| *d += v);
    }
}

/// A gradient block as a matrix view.
fn block_mut(grads: &mut [Vec<f32>], at: usize, shape: (usize, usize)) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape(shape, &mut grads[at][..]).expect("block shape")
}

/// [`Noise::perturbed`] rounded to f32, as the tape rounds its inputs.
/// ½ mean over rows of ‖rᵢ‖², summed in f64 row by row.
fn half_mean_square(r: &Array2<f32>) -> f64 {
    r.rows()
        .into_iter()
        .map(|row| {
            0.5 * row
                .iter()
                .map(|&v| f64::from(v) * f64::from(v))
                .sum::<f64>()
        })
        .sum::<f64>()
        / r.nrows() as f64
}

fn perturbed_f32(noise: &Noise, x: ArrayView2<f64>, sigma: Option<f64>) -> Array2<f32> {
    let xn = noise.perturbed(x, sigma);
    Array2::from_shape_vec(x.dim(), xn.into_iter().map(|v| v as f32).collect()).expect("(B, D)")
}

fn to_f32(x: ArrayView2<f64>) -> Array2<f32> {
    x.mapv(|v| v as f32)
}

/// The denoising objectives of a noise-conditional network in their general form: with the
/// network's raw output h at its input c_in x̃ (c_in = 1 without preconditioning), the score is
/// s = (o/σ) h − k x̃ (o = σ_d c_in and k = 1/(σ² + σ_d²) with EDM's preconditioning, else o = 1,
/// k = 0), and the residual r = A h + B per row: `dsm` r = s + ε/σ, `dsm_multi` r = σ s + ε,
/// `dsm_continuous` r = √c (σ s + ε). The loss is ½ mean ‖r‖², its gradient in h is A r / n.
fn weighted_dsm(
    objective: &Objective,
    precondition: Option<scorelab_models::Precondition>,
    layers: &Layers,
    x: ArrayView2<f64>,
    noise: &Noise,
    grads: &mut [Vec<f32>],
) -> f64 {
    let (n, d) = x.dim();
    let eps = noise.eps.as_ref().expect("DSM needs ε");
    let (xt, sigmas): (Vec<f64>, Vec<f64>) = match objective {
        Objective::Dsm { sigma } => (noise.perturbed(x, Some(*sigma)), vec![*sigma; n]),
        _ => (
            noise.perturbed(x, None),
            noise.sigmas.clone().expect("multi-σ DSM needs σ per point"),
        ),
    };
    let mut xin = Array2::<f32>::zeros((n, d));
    let mut a = Array1::<f32>::zeros(n);
    let mut b = Array2::<f32>::zeros((n, d));
    for i in 0..n {
        let s = sigmas[i];
        let (c_in, o, k) = match precondition {
            Some(p) => {
                let c = p.at(s);
                (c.c_in, c.out, c.skip)
            }
            None => (1.0, 1.0, 0.0),
        };
        let (ai, m, off) = match objective {
            Objective::Dsm { .. } => (o / s, 1.0, 1.0 / s),
            Objective::DsmContinuous(c) => {
                let w = c.weight(s).sqrt();
                (w * o, w * s, 1.0 / s)
            }
            _ => (o, s, 1.0 / s),
        };
        a[i] = ai as f32;
        for j in 0..d {
            let (xv, e) = (xt[i * d + j], eps[i * d + j]);
            xin[[i, j]] = (c_in * xv) as f32;
            b[[i, j]] = (m * (e * off - k * xv)) as f32;
        }
    }
    let sig = RowSigma {
        log: sigmas.iter().map(|&s| (s as f32).ln()).collect(),
        sigma: sigmas.iter().map(|&s| s as f32).collect(),
    };
    let f = layers.forward(xin, Some(&sig), false);
    let out = f.pre.last().expect("the output layer");
    let mut r = out.clone();
    for (mut row, &ai) in r.rows_mut().into_iter().zip(&a) {
        row.mapv_inplace(|v| v * ai);
    }
    r += &b;
    let loss = half_mean_square(&r);
    let inv_n = 1.0 / n as f32;
    let mut g = r;
    for (mut row, &ai) in g.rows_mut().into_iter().zip(&a) {
        row.mapv_inplace(|v| v * ai * inv_n);
    }
    layers.backward(&f, g, &vec![None; layers.hidden()], Some(&sig), grads);
    loss
}

/// The batch-mean loss and its θ-gradient (blocks in parameter order) of `objective` on `net`,
/// computed directly in f32 (module docs), or `None` where this path does not cover the pair
/// (the energy network; the structured ISM of an MLP with other than two hidden layers).
///
/// # Panics
/// As [`crate::taped::loss_terms`]: if `target` or `noise` lacks what the objective needs, or
/// the network and the objective do not fit (callers validate first).
///
/// # Examples
/// ```
/// use ndarray::Array2;
/// use scorelab_models::{Activation, Mlp, Network};
/// use scorelab_objectives::{direct, taped::{self, Noise, Objective}};
/// let net = Network::Mlp(Mlp::new(2, &[8, 8], Activation::Tanh, 0)?);
/// let x = Array2::from_shape_fn((5, 2), |(i, j)| (i as f64 - 2.0) * 0.3 + j as f64);
/// let o = Objective::dsm(0.1)?;
/// let noise = Noise { eps: Some(vec![0.5; 10]), ..Noise::default() };
/// let (loss, grads) = direct::loss_and_gradient(&o, &net, x.view(), None, &noise).unwrap();
/// let (taped_loss, taped_grads) = taped::loss_and_gradient::<f32>(&o, &net, x.view(), None, &noise);
/// assert!((loss - taped_loss).abs() < 1e-5 * taped_loss.abs());
/// assert!((grads[0][0] as f64 - taped_grads[0][0]).abs() < 1e-4 * (taped_grads[0][0].abs() + 1e-3));
/// # Ok::<(), scorelab_core::ParamError>(())
/// ```
pub fn loss_and_gradient(
    objective: &Objective,
    net: &Network,
    x: ArrayView2<f64>,
    target: Option<ArrayView2<f64>>,
    noise: &Noise,
) -> Option<(f64, Vec<Vec<f32>>)> {
    let kind = net.spec().kind;
    if kind == NetworkKind::EnergyMlp {
        return None;
    }
    let layers = Layers::of(net);
    let (n, d) = x.dim();
    let inv_n = 1.0 / n as f32;
    let mut grads: Vec<Vec<f32>> = layers.sizes.iter().map(|&s| vec![0.0; s]).collect();
    debug_assert_eq!(grads.len(), layers.blocks);
    let precondition = net.spec().precondition;
    let loss = match objective {
        Objective::Dsm { .. } | Objective::DsmMulti { .. } | Objective::DsmContinuous(_)
            if precondition.is_some() || matches!(objective, Objective::DsmContinuous(_)) =>
        {
            weighted_dsm(objective, precondition, &layers, x, noise, &mut grads)
        }
        Objective::DsmContinuous(_) => unreachable!("matched above"),
        Objective::Esm | Objective::Dsm { .. } | Objective::DsmMulti { .. } => {
            let nc = net.is_noise_conditional();
            let (xin, sig, offset) = match objective {
                Objective::Esm => {
                    let t = target.expect("ESM needs the true score");
                    (to_f32(x), None, to_f32(t).mapv(|v| -v))
                }
                Objective::Dsm { sigma } => {
                    let eps = noise.eps.as_ref().expect("DSM needs ε");
                    let e = ArrayView2::from_shape((n, d), &eps[..]).expect("(B, D) ε");
                    let off = e.mapv(|e| (e / sigma) as f32);
                    let sig = nc.then(|| RowSigma {
                        log: Array1::from_elem(n, (*sigma as f32).ln()),
                        sigma: Array1::from_elem(n, *sigma as f32),
                    });
                    (perturbed_f32(noise, x, Some(*sigma)), sig, off)
                }
                Objective::DsmMulti { .. } => {
                    let eps = noise.eps.as_ref().expect("multi-σ DSM needs ε");
                    let sigmas = noise
                        .sigmas
                        .as_ref()
                        .expect("multi-σ DSM needs σ per point");
                    let off = Array2::from_shape_fn((n, d), |(i, j)| eps[i * d + j] as f32);
                    let sig = RowSigma {
                        log: sigmas.iter().map(|&s| (s as f32).ln()).collect(),
                        sigma: sigmas.iter().map(|&s| s as f32).collect(),
                    };
                    (perturbed_f32(noise, x, None), Some(sig), off)
                }
                _ => unreachable!("matched above"),
            };
            let f = layers.forward(xin, sig.as_ref(), false);
            let out = f.pre.last().expect("the output layer");
            // r = s + offset, with s = h_L or h_L/σᵢ; for dsm_multi r = σᵢs + ε = h_L + ε.
            let multi = matches!(objective, Objective::DsmMulti { .. });
            let mut r = out.clone();
            if let (Some(sg), false) = (&sig, multi) {
                for (mut row, &s) in r.rows_mut().into_iter().zip(&sg.sigma) {
                    row.mapv_inplace(|v| v / s);
                }
            }
            r += &offset;
            let loss = half_mean_square(&r);
            let mut g = r * inv_n;
            if let (Some(sg), false) = (&sig, multi) {
                for (mut row, &s) in g.rows_mut().into_iter().zip(&sg.sigma) {
                    row.mapv_inplace(|v| v / s);
                }
            }
            layers.backward(
                &f,
                g,
                &vec![None; layers.hidden()],
                sig.as_ref(),
                &mut grads,
            );
            loss
        }
        Objective::Ssm { .. }
        | Objective::SsmVr { .. }
        | Objective::Ism {
            trace: TraceMethod::Naive,
        } => {
            let (k, v, c) = match objective {
                Objective::Ism { .. } => (d, None, 1.0f32),
                Objective::Ssm { projections: k, .. } | Objective::SsmVr { projections: k, .. } => {
                    let k = *k;
                    let probes = noise.probes.as_ref().expect("SSM needs probes");
                    let v = Array2::from_shape_vec(
                        (n * k, d),
                        probes.iter().map(|&z| z as f32).collect(),
                    )
                    .expect("(B, K, D) probes");
                    (k, Some(v), 1.0 / k as f32)
                }
                _ => unreachable!("matched above"),
            };
            let sliced = matches!(objective, Objective::Ssm { .. });
            layers.tangent_loss(&to_f32(x), v.as_ref(), k, c, sliced, &mut grads)
        }
        Objective::Ism {
            trace: TraceMethod::Structured,
        } => {
            if layers.hidden() != 2 {
                return None;
            }
            let f = layers.forward(to_f32(x), None, true);
            let (w0, w1, w2) = (layers.w[0], layers.w[1], layers.w[2]);
            let m = w2.dot(&w0); // C × A
            let mt = m.t();
            let p = &w1 * &mt; // A × C
            let (d0, d1) = (&f.d1[0], &f.d1[1]);
            let q = d0.dot(&p); // B × C: tr = Σⱼ q ⊙ d₁
            let s = f.pre.last().expect("the output layer");
            let mut loss = 0.0f64;
            for i in 0..n {
                let tr = f64::from(q.row(i).dot(&d1.row(i)));
                let sq = s
                    .row(i)
                    .iter()
                    .map(|&v| f64::from(v) * f64::from(v))
                    .sum::<f64>();
                loss += 0.5 * sq + tr;
            }
            // ∂L/∂d₀ = d₁Pᵀ/B, ∂L/∂d₁ = d₀P/B, ∂P = d₀ᵀd₁/B.
            let dg0 = d1.dot(&p.t()) * inv_n;
            let dg1 = q * inv_n;
            let dp = d0.t().dot(d1) * inv_n;
            // Through P = W₁ ⊙ Mᵀ and M = W₂W₀.
            let mut dw1 = block_mut(&mut grads, layers.w_at[1], w1.dim());
            Zip::from(&mut dw1)
                .and(&dp)
                .and(&mt)
                .for_each(|g, &a, &b| *g += a * b);
            let dm = (&dp * &w1).reversed_axes(); // C × A
            let mut dw2 = block_mut(&mut grads, layers.w_at[2], w2.dim());
            general_mat_mul(1.0, &dm, &w0.t(), 1.0, &mut dw2);
            let mut dw0 = block_mut(&mut grads, layers.w_at[0], w0.dim());
            general_mat_mul(1.0, &w2.t(), &dm, 1.0, &mut dw0);
            let g = s * inv_n;
            layers.backward(&f, g, &[Some(dg0), Some(dg1)], None, &mut grads);
            loss / n as f64
        }
    };
    Some((loss, grads))
}

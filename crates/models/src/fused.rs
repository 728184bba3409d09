//! Fused tangent ops with their own backward (docs/ARCHITECTURE.md, "dfdx 0.13"): the three broadcast products the
//! JVP and the naive trace spend their elementwise time in, each one pass forward and one pass
//! back instead of dfdx's strided broadcast kernels. Shapes: B points, K tangents, H units.
//!
//! | op | forward | backward |
//! | --- | --- | --- |
//! | [`scale_k`] | o\[b,k,j\] = t\[b,k,j\] d\[b,j\] | ∂t = g d, ∂d\[b,j\] = Σₖ g t |
//! | [`outer_rows`] | o\[b,k,j\] = w\[k,j\] d\[b,j\] | ∂w\[k,j\] = Σ_b g d, ∂d\[b,j\] = Σₖ g w |
//! | [`diag_contract`] | o\[b\] = Σₖⱼ t\[b,k,j\] w\[j,k\] | ∂t\[b,k,j\] = g\[b\] w\[j,k\], ∂w\[j,k\] = Σ_b g\[b\] t\[b,k,j\] |
//!
//! Every input must be contiguous (they are: outputs of matmuls, of these ops, or parameters).

use crate::net::{contiguous_vec, Dev, Real, T1, T2, T3};
use dfdx::prelude::*;

/// t ⊙ d broadcast over the K tangents (module docs).
pub(crate) fn scale_k<E: Real, T: Tape<E, Dev>>(t: T3<E, T>, d: T2<E, T>) -> T3<E, T>
where
    Dev: Device<E>,
{
    let (t, tt) = t.split_tape();
    let (d, dt) = d.split_tape();
    let mut tape = tt.merge(dt);
    let (b, k, h) = *t.shape();
    debug_assert_eq!(*d.shape(), (b, h));
    let (tv, dv) = (contiguous_vec(&t), contiguous_vec(&d));
    let mut out = Vec::with_capacity(tv.len());
    for (row, dr) in tv.chunks_exact(k * h).zip(dv.chunks_exact(h)) {
        for tk in row.chunks_exact(h) {
            out.extend(tk.iter().zip(dr).map(|(&x, &y)| x * y));
        }
    }
    let o: T3<E> = t.device().tensor_from_vec(out, (b, k, h));
    if T::OWNS_TAPE {
        let o2 = o.clone();
        tape.add_backward_op(move |grads| {
            let g = E::grad_copy(grads, &o2)?;
            let mut gt = Vec::with_capacity(g.len());
            let mut gd = vec![E::zero(); b * h];
            for ((gr, tr), (dr, gdr)) in g
                .chunks_exact(k * h)
                .zip(tv.chunks_exact(k * h))
                .zip(dv.chunks_exact(h).zip(gd.chunks_exact_mut(h)))
            {
                for (gk, tk) in gr.chunks_exact(h).zip(tr.chunks_exact(h)) {
                    for j in 0..h {
                        gt.push(gk[j] * dr[j]);
                        gdr[j] += gk[j] * tk[j];
                    }
                }
            }
            E::grad_add(grads, &t, &gt)?;
            E::grad_add(grads, &d, &gd)
        });
    }
    o.put_tape(tape)
}

/// w ⊙ d: the rows of w, scaled per point (module docs). `w` is `(K, H)`, `d` is `(B, H)`.
pub(crate) fn outer_rows<E: Real, T: Tape<E, Dev>>(w: T2<E, T>, d: T2<E, T>) -> T3<E, T>
where
    Dev: Device<E>,
{
    let (w, wt) = w.split_tape();
    let (d, dt) = d.split_tape();
    let mut tape = wt.merge(dt);
    let (k, h) = *w.shape();
    let b = d.shape().0;
    let (wv, dv) = (contiguous_vec(&w), contiguous_vec(&d));
    let mut out = Vec::with_capacity(b * k * h);
    for dr in dv.chunks_exact(h) {
        for wk in wv.chunks_exact(h) {
            out.extend(wk.iter().zip(dr).map(|(&x, &y)| x * y));
        }
    }
    let o: T3<E> = w.device().tensor_from_vec(out, (b, k, h));
    if T::OWNS_TAPE {
        let o2 = o.clone();
        tape.add_backward_op(move |grads| {
            let g = E::grad_copy(grads, &o2)?;
            let mut gw = vec![E::zero(); k * h];
            let mut gd = vec![E::zero(); b * h];
            for ((gr, dr), gdr) in g
                .chunks_exact(k * h)
                .zip(dv.chunks_exact(h))
                .zip(gd.chunks_exact_mut(h))
            {
                for ((gk, wk), gwk) in gr
                    .chunks_exact(h)
                    .zip(wv.chunks_exact(h))
                    .zip(gw.chunks_exact_mut(h))
                {
                    for j in 0..h {
                        gwk[j] += gk[j] * dr[j];
                        gdr[j] += gk[j] * wk[j];
                    }
                }
            }
            E::grad_add(grads, &w, &gw)?;
            E::grad_add(grads, &d, &gd)
        });
    }
    o.put_tape(tape)
}

/// Σₖⱼ t\[b,k,j\] w\[j,k\] per point: the diagonal of (t w) summed (module docs). `t` is
/// `(B, K, H)`, `w` is `(H, K)`.
pub(crate) fn diag_contract<E: Real, T: Tape<E, Dev>>(t: T3<E, T>, w: T2<E, T>) -> T1<E, T>
where
    Dev: Device<E>,
{
    let (t, tt) = t.split_tape();
    let (w, wt) = w.split_tape();
    let mut tape = tt.merge(wt);
    let (b, k, h) = *t.shape();
    debug_assert_eq!(*w.shape(), (h, k));
    let (tv, wv) = (contiguous_vec(&t), contiguous_vec(&w));
    // wᵀ as (K, H) rows, so both operands are walked contiguously.
    let mut wt_rows = vec![E::zero(); k * h];
    for j in 0..h {
        for kk in 0..k {
            wt_rows[kk * h + j] = wv[j * k + kk];
        }
    }
    let out: Vec<E> = tv
        .chunks_exact(k * h)
        .map(|row| {
            row.iter()
                .zip(&wt_rows)
                .fold(E::zero(), |acc, (&x, &y)| acc + x * y)
        })
        .collect();
    let o: T1<E> = t.device().tensor_from_vec(out, (b,));
    if T::OWNS_TAPE {
        let o2 = o.clone();
        tape.add_backward_op(move |grads| {
            let g = E::grad_copy(grads, &o2)?;
            let mut gt = Vec::with_capacity(b * k * h);
            let mut gwt = vec![E::zero(); k * h];
            for (&gb, row) in g.iter().zip(tv.chunks_exact(k * h)) {
                gt.extend(wt_rows.iter().map(|&y| gb * y));
                for (acc, &x) in gwt.iter_mut().zip(row) {
                    *acc += gb * x;
                }
            }
            let mut gw = vec![E::zero(); h * k];
            for kk in 0..k {
                for j in 0..h {
                    gw[j * k + kk] = gwt[kk * h + j];
                }
            }
            E::grad_add(grads, &t, &gt)?;
            E::grad_add(grads, &w, &gw)
        });
    }
    o.put_tape(tape)
}

/// x w for data x that needs no gradient: the first layer. dfdx's matmul backward always forms
/// both operand gradients; this op forms only ∂w = xᵀ g, which saves a third of the first layer's
/// backward (a (B, H) × (H, D) product, the largest one when D is large). Any tape on `x` is
/// carried over, but x itself receives no gradient.
pub(crate) fn input_matmul<E: Real, T: Tape<E, Dev>>(x: T2<E, T>, w: T2<E, T>) -> T2<E, T>
where
    Dev: Device<E>,
{
    let (x, xt) = x.split_tape();
    let (w, wt) = w.split_tape();
    let mut tape = xt.merge(wt);
    let o: T2<E> = x.clone().matmul(w.clone());
    if T::OWNS_TAPE {
        let o2 = o.clone();
        tape.add_backward_op(move |grads| {
            let (b, h) = *o2.shape();
            let g: T2<E> = o2
                .device()
                .tensor_from_vec(E::grad_copy(grads, &o2)?, (b, h));
            let gw = x.permute::<_, Axes2<1, 0>>().matmul(g);
            E::grad_add(grads, &w, &contiguous_vec(&gw))
        });
    }
    o.put_tape(tape)
}

/// x + b with the bias row b `(1, H)` broadcast over the B rows of x `(B, H)`: one pass, and a
/// backward that sums the rows of the gradient for b (dfdx's broadcast add walks strided indices
/// both ways).
pub(crate) fn add_bias<E: Real, T: Tape<E, Dev>>(x: T2<E, T>, b: T2<E, T>) -> T2<E, T>
where
    Dev: Device<E>,
{
    let (x, xt) = x.split_tape();
    let (b, bt) = b.split_tape();
    let mut tape = xt.merge(bt);
    let (n, h) = *x.shape();
    debug_assert_eq!(*b.shape(), (1, h));
    let (mut out, bv) = (contiguous_vec(&x), contiguous_vec(&b));
    for row in out.chunks_exact_mut(h) {
        for (o, &bj) in row.iter_mut().zip(&bv) {
            *o += bj;
        }
    }
    let o: T2<E> = x.device().tensor_from_vec(out, (n, h));
    if T::OWNS_TAPE {
        let o2 = o.clone();
        tape.add_backward_op(move |grads| {
            let g = E::grad_copy(grads, &o2)?;
            let mut gb = vec![E::zero(); h];
            for row in g.chunks_exact(h) {
                for (acc, &gj) in gb.iter_mut().zip(row) {
                    *acc += gj;
                }
            }
            E::grad_add(grads, &x, &g)?;
            E::grad_add(grads, &b, &gb)
        });
    }
    o.put_tape(tape)
}

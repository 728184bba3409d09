//! Vectorised activations for the f32 inference path ([`crate::Inference`]): φ(h), φ′(h) and
//! φ″(h) of tanh, softplus and silu over a slice, by branch-free f32 polynomials that the compiler
//! turns into vector code: eight lanes per instruction where the CPU has AVX2 (detected at run
//! time), four (SSE2) otherwise. Both builds run the same IEEE operations in the same order (no
//! fused multiply-add), so they give the same bits.
//!
//! # The functions
//! - e^x for x ≤ 0: x = n ln 2 + r with n = round(x log₂e) (|r| ≤ ½ ln 2, ln 2 split in two parts
//!   as in Cephes), e^r by Cephes' `expf` polynomial of degree 7, times 2ⁿ built from the exponent
//!   bits; e^x = 0 below −87 (where it is below f32's smallest normal).
//! - ln(1 + e) for e ∈ [0, 1]: 2 atanh(u) with u = e/(2 + e) ∈ [0, ⅓], by its odd series
//!   2u Σₖ u²ᵏ/(2k + 1) to k = 7 (truncation below 2·3⁻¹⁷/17 < 1e-9): no cancellation for small e.
//!
//! With e = e^{−|h|} (tanh: t = e^{−2|h|}), the formulas of [`Activation::value_and_aux`] and
//! [`Activation::from_aux`]:
//! - tanh: q = sign(h)(1 − t)/(1 + t), φ′ = 1 − q², φ″ = −2qφ′;
//! - softplus: σ = 1/(1 + e) for h ≥ 0, e/(1 + e) otherwise; φ = max(h, 0) + ln(1 + e), φ′ = σ,
//!   φ″ = σ(1 − σ);
//! - silu: φ = hσ, φ′ = σ + hσ′, φ″ = σ′(2 + h(1 − 2σ)).
//!
//! **Error bound**, checked by the tests against the f64 formulas on a grid of h ∈ [−40, 40] and
//! the extremes: |φ₃₂ − φ| ≤ 1e-6·(|φ| + 1), and the same for φ′ and φ″. (The absolute part covers
//! the cancellation in 1 − t near h = 0, about one f32 ulp of 1.) A NaN entry gives NaN in every
//! output.
//!
//! # Unsafe
//! This module holds the workspace's one `unsafe` call: the AVX2 build of the loop is a
//! `#[target_feature]` function, which may only be called once the CPU is known to have AVX2
//! (its `SAFETY:` comment). Everything else here is safe code.
#![allow(unsafe_code)]

use crate::Activation;
use ndarray::{s, ArrayView2, ArrayViewMut2, Axis};

/// What to write: each output slice, when given, has the length of `h`.
pub struct Outs<'a> {
    /// φ(h).
    pub value: Option<&'a mut [f32]>,
    /// φ′(h).
    pub d1: Option<&'a mut [f32]>,
    /// φ″(h).
    pub d2: Option<&'a mut [f32]>,
}

/// e^x for x ≤ 0 (module docs); 0 below −87.
#[inline(always)]
fn exp_neg(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Round to nearest by the 1.5·2²³ trick (|x log₂e| < 2²²).
    const MAGIC: f32 = 12_582_912.0;
    let xc = x.max(-87.0);
    let shifted = xc * LOG2E + MAGIC;
    // The bits of n + 1.5·2²³ are 0x4B40_0000 + n: 2ⁿ's exponent field without a float-to-int
    // conversion (which the compiler would do lane by lane).
    let scale = f32::from_bits(shifted.to_bits().wrapping_sub(0x4B40_0000 - 127) << 23);
    let n = shifted - MAGIC;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let er = (p * r * r + r) + 1.0;
    let y = er * scale;
    if x < -87.0 {
        0.0
    } else {
        y
    }
}

/// ln(1 + e) for e ∈ [0, 1] (module docs).
#[inline(always)]
fn ln_1p_unit(e: f32) -> f32 {
    let u = e / (2.0 + e);
    let u2 = u * u;
    let s = 1.0 / 15.0;
    let s = s * u2 + 1.0 / 13.0;
    let s = s * u2 + 1.0 / 11.0;
    let s = s * u2 + 1.0 / 9.0;
    let s = s * u2 + 1.0 / 7.0;
    let s = s * u2 + 1.0 / 5.0;
    let s = s * u2 + 1.0 / 3.0;
    let s = s * u2 + 1.0;
    2.0 * u * s
}

/// φ, φ′, φ″ of one entry (module docs); NaN in, NaN out.
#[inline(always)]
fn lane(act: Activation, h: f32) -> (f32, f32, f32) {
    let (a, d, dd) = match act {
        Activation::Tanh => {
            let y = h.abs();
            let t = exp_neg(-2.0 * y);
            let th = (1.0 - t) / (1.0 + t);
            let q = if h < 0.0 { -th } else { th };
            let d = 1.0 - q * q;
            (q, d, -2.0 * q * d)
        }
        Activation::Softplus | Activation::Silu => {
            let e = exp_neg(-h.abs());
            let r = 1.0 / (1.0 + e);
            let s = if h >= 0.0 { r } else { e * r };
            let ds = s * (1.0 - s);
            match act {
                Activation::Softplus => (h.max(0.0) + ln_1p_unit(e), s, ds),
                _ => (h * s, s + h * ds, ds * (2.0 + h * (1.0 - 2.0 * s))),
            }
        }
    };
    if h.is_nan() {
        (h, h, h)
    } else {
        (a, d, dd)
    }
}

/// The loop, monomorphised per activation and per set of outputs so that each copy is one
/// straight-line vectorisable body.
#[inline(always)]
fn run<const A: bool, const D1: bool, const D2: bool>(
    act: Activation,
    h: &[f32],
    a: &mut [f32],
    d: &mut [f32],
    dd: &mut [f32],
) {
    // Blocks of 32 entries (four AVX2 vectors), so that four independent chains of the
    // polynomials are in flight at once (one chain alone waits on each step's latency).
    const BLOCK: usize = 32;
    macro_rules! entries {
        ($act:expr, $from:expr, $to:expr) => {
            for i in $from..$to {
                let (x, y, z) = lane($act, h[i]);
                if A {
                    a[i] = x;
                }
                if D1 {
                    d[i] = y;
                }
                if D2 {
                    dd[i] = z;
                }
            }
        };
    }
    macro_rules! body {
        ($act:expr) => {{
            let whole = h.len() / BLOCK * BLOCK;
            let mut start = 0;
            while start < whole {
                let hb: &[f32; BLOCK] = h[start..start + BLOCK].try_into().expect("a block");
                let mut out = [[0.0f32; BLOCK]; 3];
                for j in 0..BLOCK {
                    let (x, y, z) = lane($act, hb[j]);
                    out[0][j] = x;
                    out[1][j] = y;
                    out[2][j] = z;
                }
                if A {
                    a[start..start + BLOCK].copy_from_slice(&out[0]);
                }
                if D1 {
                    d[start..start + BLOCK].copy_from_slice(&out[1]);
                }
                if D2 {
                    dd[start..start + BLOCK].copy_from_slice(&out[2]);
                }
                start += BLOCK;
            }
            entries!($act, whole, h.len());
        }};
    }
    match act {
        Activation::Tanh => body!(Activation::Tanh),
        Activation::Softplus => body!(Activation::Softplus),
        Activation::Silu => body!(Activation::Silu),
    }
}

#[inline(always)]
fn dispatch(act: Activation, h: &[f32], outs: Outs<'_>) {
    let n = h.len();
    let (mut e1, mut e2, mut e3) = ([0.0f32; 0], [0.0f32; 0], [0.0f32; 0]);
    let flags = (outs.value.is_some(), outs.d1.is_some(), outs.d2.is_some());
    let a = outs.value.unwrap_or(&mut e1);
    let d = outs.d1.unwrap_or(&mut e2);
    let dd = outs.d2.unwrap_or(&mut e3);
    for (on, s) in [(flags.0, a.len()), (flags.1, d.len()), (flags.2, dd.len())] {
        assert!(!on || s == n, "an output of length {s} for {n} entries");
    }
    match flags {
        (true, false, false) => run::<true, false, false>(act, h, a, d, dd),
        (true, true, false) => run::<true, true, false>(act, h, a, d, dd),
        (true, true, true) => run::<true, true, true>(act, h, a, d, dd),
        (false, true, false) => run::<false, true, false>(act, h, a, d, dd),
        (false, true, true) => run::<false, true, true>(act, h, a, d, dd),
        (false, false, true) => run::<false, false, true>(act, h, a, d, dd),
        (true, false, true) => run::<true, false, true>(act, h, a, d, dd),
        (false, false, false) => {}
    }
}

/// The AVX2 build of [`dispatch`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dispatch_avx2(act: Activation, h: &[f32], outs: Outs<'_>) {
    dispatch(act, h, outs)
}

/// Writes the requested outputs for every entry of `h` (module docs).
///
/// ```
/// use scorelab_models::{simd, Activation};
/// let h = [-1.0f32, 0.0, 2.0];
/// let (mut a, mut d) = ([0.0f32; 3], [0.0f32; 3]);
/// simd::apply(Activation::Softplus, &h, simd::Outs { value: Some(&mut a), d1: Some(&mut d), d2: None });
/// assert!((a[1] - std::f32::consts::LN_2).abs() < 1e-7 && (d[1] - 0.5).abs() < 1e-7);
/// ```
///
/// # Panics
/// If a given output's length is not `h.len()`.
pub fn apply(act: Activation, h: &[f32], outs: Outs<'_>) {
    // Large slices in two halves on rayon's pool (each entry is computed the same way wherever
    // it runs, so the bits do not depend on the split).
    if h.len() >= PARALLEL_FROM {
        let mid = h.len() / 2 / 64 * 64;
        let (h0, h1) = h.split_at(mid);
        let (v0, v1) = halves(outs.value, mid);
        let (d0, d1) = halves(outs.d1, mid);
        let (e0, e1) = halves(outs.d2, mid);
        rayon::join(
            || {
                apply_one(
                    act,
                    h0,
                    Outs {
                        value: v0,
                        d1: d0,
                        d2: e0,
                    },
                )
            },
            || {
                apply_one(
                    act,
                    h1,
                    Outs {
                        value: v1,
                        d1,
                        d2: e1,
                    },
                )
            },
        );
        return;
    }
    apply_one(act, h, outs)
}

/// Multiplies each of the `k` rows of point p in `t` ((points·k) × H, point by point) by
/// `d.row(p)`, entry by entry: the tangents' t ⊙ φ′(h) of the inference path and the direct
/// training step.
///
/// ```
/// use ndarray::array;
/// let mut t = array![[1.0f32, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]];
/// scorelab_models::simd::scale_rows(t.view_mut(), array![[1.0f32, 0.5], [2.0, 0.0]].view(), 2);
/// assert_eq!(t, array![[1.0, 0.5], [2.0, 1.0], [6.0, 0.0], [8.0, 0.0]]);
/// ```
///
/// # Panics
/// If `t` does not have `d.nrows()·k` rows of `d.ncols()` entries.
pub fn scale_rows(mut t: ArrayViewMut2<f32>, d: ArrayView2<f32>, k: usize) {
    assert_eq!(t.dim(), (d.nrows() * k, d.ncols()), "scale_rows: shapes");
    for (p, drow) in d.rows().into_iter().enumerate() {
        let mut block = t.slice_mut(s![p * k..(p + 1) * k, ..]);
        block *= &drow.insert_axis(Axis(0));
    }
}

/// An optional output cut at `mid`.
fn halves(o: Option<&mut [f32]>, mid: usize) -> (Option<&mut [f32]>, Option<&mut [f32]>) {
    match o {
        Some(o) => {
            let (a, b) = o.split_at_mut(mid);
            (Some(a), Some(b))
        }
        None => (None, None),
    }
}

/// Entries from which [`apply`] splits the work in two.
const PARALLEL_FROM: usize = 16_384;

/// [`apply`] on the calling thread.
fn apply_one(act: Activation, h: &[f32], outs: Outs<'_>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: `dispatch_avx2` is safe code compiled with AVX2 enabled; its only requirement
        // is a CPU with AVX2, which `is_x86_feature_detected!` has just confirmed.
        unsafe { dispatch_avx2(act, h, outs) };
        return;
    }
    dispatch(act, h, outs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stated bound against the f64 formulas of [`Activation::derivatives`], for every
    /// activation, on 160,001 points of [−40, 40], the extremes, and a slice length that is not a
    /// multiple of 8.
    #[test]
    fn the_vectorised_activations_are_within_the_stated_bound() {
        let mut h: Vec<f32> = (0..=160_000).map(|i| -40.0 + i as f32 * 5e-4).collect();
        h.extend([
            -1e4, 1e4, 0.0, -0.0, 1e-30, -1e-30, 87.0, -87.0, 100.0, -100.0,
        ]);
        h.extend([f32::MAX, -f32::MAX, 1e-7, -1e-7, 0.3]);
        for act in [Activation::Tanh, Activation::Softplus, Activation::Silu] {
            let mut a = vec![0.0; h.len()];
            let mut d = vec![0.0; h.len()];
            let mut dd = vec![0.0; h.len()];
            apply(
                act,
                &h,
                Outs {
                    value: Some(&mut a),
                    d1: Some(&mut d),
                    d2: Some(&mut dd),
                },
            );
            let mut worst = 0.0f64;
            for (i, &x) in h.iter().enumerate() {
                let exact = act.derivatives(x as f64);
                for (got, want, what) in [
                    (a[i], exact[0], "φ"),
                    (d[i], exact[1], "φ′"),
                    (dd[i], exact[2], "φ″"),
                ] {
                    let err = if want.is_finite() {
                        (got as f64 - want).abs() / (want.abs() + 1.0)
                    } else {
                        f64::from(u8::from(got as f64 != want))
                    };
                    worst = worst.max(err);
                    assert!(
                        err <= 1e-6,
                        "{act:?} {what} at h = {x}: {got} against {want}"
                    );
                }
            }
            assert!(worst > 0.0, "{act:?}: f32 cannot be exact everywhere");
        }
    }

    /// e^x and ln(1 + e) on their own, to a relative 2e-7 and 4e-7 (1.7 and 3.4 f32 ulp).
    #[test]
    fn the_kernels_are_accurate_to_a_few_ulp() {
        for i in 0..=86_900 {
            let x = -(i as f32) * 1e-3;
            let (got, want) = (exp_neg(x) as f64, (x as f64).exp());
            assert!(
                (got - want).abs() <= 2e-7 * want,
                "exp({x}): {got} against {want}"
            );
        }
        assert_eq!(exp_neg(-88.0), 0.0);
        assert_eq!(exp_neg(-f32::INFINITY), 0.0);
        for i in 0..=100_000 {
            let e = i as f32 * 1e-5;
            let (got, want) = (ln_1p_unit(e) as f64, (e as f64).ln_1p());
            assert!(
                (got - want).abs() <= 4e-7 * want,
                "ln(1 + {e}): {got} against {want}"
            );
        }
    }

    #[test]
    fn nan_propagates_and_only_the_asked_outputs_are_written() {
        for act in [Activation::Tanh, Activation::Softplus, Activation::Silu] {
            let h = [f32::NAN, 1.0, f32::NAN];
            let mut a = [7.0; 3];
            let mut d = [7.0; 3];
            apply(
                act,
                &h,
                Outs {
                    value: Some(&mut a),
                    d1: None,
                    d2: None,
                },
            );
            assert!(a[0].is_nan() && a[2].is_nan(), "{act:?}: {a:?}");
            assert!((a[1] as f64 - act.derivatives(1.0f64)[0]).abs() < 1e-6);
            apply(
                act,
                &h[1..2],
                Outs {
                    value: None,
                    d1: Some(&mut d[..1]),
                    d2: None,
                },
            );
            assert_eq!(
                d[1..],
                [7.0, 7.0],
                "{act:?}: only the asked length is written"
            );
        }
    }

    /// The AVX2 build and the portable one give the same bits.
    #[test]
    fn both_builds_agree_bit_for_bit() {
        let h: Vec<f32> = (0..10_001).map(|i| -50.0 + i as f32 * 1e-2).collect();
        for act in [Activation::Tanh, Activation::Softplus, Activation::Silu] {
            let mut one = [vec![0.0; h.len()], vec![0.0; h.len()], vec![0.0; h.len()]];
            let mut two = one.clone();
            let [a, d, dd] = &mut one;
            apply(
                act,
                &h,
                Outs {
                    value: Some(a),
                    d1: Some(d),
                    d2: Some(dd),
                },
            );
            let [a, d, dd] = &mut two;
            dispatch(
                act,
                &h,
                Outs {
                    value: Some(a),
                    d1: Some(d),
                    d2: Some(dd),
                },
            );
            for k in 0..3 {
                let same = one[k]
                    .iter()
                    .zip(&two[k])
                    .all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{act:?} output {k}");
            }
        }
    }
}

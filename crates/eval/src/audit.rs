//! The equivalence audit: ESM(θ) = ISM(θ) + C + B on an analytic density.
//!
//! The **equivalence audit** ([`audit`]) checks Hyvärinen's identity ESM(θ) = ISM(θ) + C + B on an
//! analytic density p and a model s_θ:
//!
//! - on n samples xᵢ ∼ p, the per-sample gap gᵢ = ESMᵢ − ISMᵢ = ½‖∇log p(xᵢ)‖² − ∇log p(xᵢ)·s_θ(xᵢ)
//!   − tr ∇ₓs_θ(xᵢ), its mean and standard error;
//! - the constant C = ½E_p‖∇log p‖², in closed form where the density has one, else by Monte Carlo on
//!   the same samples;
//! - the boundary term B = −∮ p s_θ·n dS (0 on ℝᴰ; p(0)·s_θ(0) on \[0, ∞));
//! - z = (gap − C − B)/se, which is approximately N(0, 1) when the identity holds (0 when every
//!   per-sample gap is equal and the residual is rounding-sized). With a closed-form C
//!   the se is that of the gap; with a Monte Carlo C it is that of the paired difference gᵢ − ½‖∇log p(xᵢ)‖²
//!   (C's error is correlated with the gap's on the same samples, so the paired se is the honest one);
//! - for models exposing [`scorelab_core::ParameterGradient`], the θ-gradient identity
//!   ∇_θ ESM = ∇_θ ISM + ∇_θ B ([`GradientAudit`]): the relative difference
//!   ‖∇_θ ESM − ∇_θ ISM‖₂ / ‖∇_θ ESM‖₂ on the same samples (of order n^{−½} when B does not depend
//!   on θ, of order 1 when it does: the half-normal), what ∇_θ B predicts for it, the residual after
//!   ∇_θ B, and the residual's standard error by batch means; ∞ or NaN when ∇_θ ESM is exactly 0 on
//!   the samples (the model is the true score);
//! - in 1-D and 2-D, ESM, ISM and C by deterministic quadrature, where ESM − ISM = C + B holds to 1e-6.
//!
//! ```
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use scorelab_core::Sample;
//! use scorelab_densities::Gaussian;
//! use scorelab_models::Linear;
//! let p = Gaussian::standard(2);
//! let m = Linear::random(2, 0.5, 1)?;
//! let x = p.sample(10_000, &mut ChaCha8Rng::seed_from_u64(0));
//! let a = scorelab_eval::audit(&p, &m, x.view());
//! assert_eq!(a.constant, 1.0); // ½ tr I₂
//! assert!(a.z_score.abs() < 5.0);
//! let q = a.quadrature.unwrap();
//! assert!((q.esm - q.ism - 1.0).abs() < 1e-9);
//! # Ok::<(), scorelab_models::ModelError>(())
//! ```

use ndarray::{Array1, Array2, ArrayView2};
use scorelab_core::linalg::row_sq_norms;
use scorelab_core::stats::MeanSe;
use scorelab_core::{
    Cubature, ExpectationRule, LogDensity, ScoreFunction, ScoreMatchingConstant, Support,
};
use scorelab_densities::AnyDensity;
use scorelab_models::AnyModel;
use scorelab_objectives::closed_form::{gaussian_linear, half_normal_linear};
use scorelab_objectives::{esm_terms, ism_terms};

/// Where the audit's constant C came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConstantSource {
    /// The density's closed form.
    ClosedForm,
    /// Monte Carlo on the audit's samples, with this standard error.
    MonteCarlo {
        /// The standard error of the Monte Carlo C.
        se: f64,
    },
}

/// ESM, ISM and C by the density's deterministic quadrature rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuadratureAudit {
    /// E_p ½‖∇log p − s_θ‖².
    pub esm: f64,
    /// E_p \[½‖s_θ‖² + tr ∇ₓs_θ\].
    pub ism: f64,
    /// C: the closed form if there is one, else ½E_p‖∇log p‖² by the same rule.
    pub constant: f64,
    /// |ESM − ISM − C − B| / max(|C + B|, |ESM|, |ISM|): the identity's relative error.
    pub identity_rel_error: f64,
}

/// The result of [`audit`]: one row of `scorelab equivalence`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    /// The number of samples n.
    pub samples: usize,
    /// Monte Carlo ESM.
    pub esm: MeanSe,
    /// Monte Carlo ISM.
    pub ism: MeanSe,
    /// Monte Carlo gap ESM − ISM on the same samples.
    pub gap: MeanSe,
    /// C = ½E_p‖∇log p‖².
    pub constant: f64,
    /// Where C came from.
    pub constant_source: ConstantSource,
    /// The boundary term B.
    pub boundary_term: f64,
    /// (gap − C − B)/se (see the crate docs for the se).
    pub z_score: f64,
    /// The θ-gradient identity, if the model exposes θ-gradients.
    pub gradient: Option<GradientAudit>,
    /// The quadrature audit, for densities that offer a rule (1-D and 2-D).
    pub quadrature: Option<QuadratureAudit>,
}

/// The θ-gradient half of the audit: ∇_θ ESM = ∇_θ ISM + ∇_θ B on the same samples, every norm
/// relative to ‖∇_θ ESM‖₂.
///
/// The difference d = ∇_θ ESM − ∇_θ ISM is a mean over samples of per-sample vectors, so its error
/// has a standard error per component; it is estimated by batch means over [`GRADIENT_BATCHES`]
/// contiguous batches of the (independent) samples, se_k = sd_b(d_{b,k})/√K, and
/// `residual_rel_se` = √(Σ_k se_k²)/‖∇_θ ESM‖₂ is the size ‖d − ∇_θ B‖ has when the identity holds
/// (E‖d − ∇_θ B‖² = Σ_k se_k²). So `residual_rel / residual_rel_se` is of order 1 when it holds,
/// and `rel_diff` ≈ `boundary_rel` ≫ `residual_rel_se` where B moves with θ.
///
/// That ratio is a size, not a test: its law under the identity depends on the number of
/// parameters and their correlations. The calibrated statistics are `residual_p` and
/// `difference_p`: per parameter k, t_k = (d_k − ∇_θ B_k)/se_k has Student's t law with K − 1
/// degrees of freedom under the identity (K batch means of independent samples, each nearly
/// normal), and the p-value of the case is Bonferroni's over the P parameters,
/// min(1, P · min_k 2(1 − F_{t,K−1}(|t_k|))), which rejects with probability at most α at level α
/// whatever the parameters' correlations. `difference_p` is the same test of d_k = 0 (the
/// identity without the boundary term), which must reject where B moves with θ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GradientAudit {
    /// ‖∇_θ ESM − ∇_θ ISM‖₂ / ‖∇_θ ESM‖₂.
    pub rel_diff: f64,
    /// ‖∇_θ B‖₂ / ‖∇_θ ESM‖₂: the relative difference the boundary term predicts (0 on ℝᴰ).
    pub boundary_rel: f64,
    /// ‖∇_θ ESM − ∇_θ ISM − ∇_θ B‖₂ / ‖∇_θ ESM‖₂.
    pub residual_rel: f64,
    /// √(Σ_k se_k²) / ‖∇_θ ESM‖₂: the residual's standard size under the identity.
    pub residual_rel_se: f64,
    /// Bonferroni's p-value over the parameters of the per-parameter t-tests of
    /// ∇_θ ESM − ∇_θ ISM − ∇_θ B = 0 (K − 1 degrees of freedom): calibrated under the identity.
    pub residual_p: f64,
    /// The same test of ∇_θ ESM − ∇_θ ISM = 0, without the boundary term.
    pub difference_p: f64,
}

/// Bonferroni's p-value over the components of the two-sided t-tests of `mean_k = 0` with
/// standard errors `se_k` on `df` degrees of freedom: min(1, P · min_k p_k). A component with a
/// zero standard error counts as p = 0 unless its mean is 0 too (a parameter the objective does
/// not see, which is left out of P). NaN without components or degrees of freedom.
///
/// ```
/// use ndarray::array;
/// use scorelab_eval::audit::bonferroni_t;
/// // t = 2.0395 is the two-sided 5% point of Student's t on 31 df: P = 2 doubles its p.
/// let p = bonferroni_t(array![2.0395, 0.1].view(), array![1.0, 1.0].view(), 31);
/// assert!((p - 0.1).abs() < 1e-4);
/// ```
pub fn bonferroni_t(
    mean: ndarray::ArrayView1<f64>,
    se: ndarray::ArrayView1<f64>,
    df: usize,
) -> f64 {
    use statrs::distribution::{ContinuousCDF, StudentsT};
    let Ok(t) = StudentsT::new(0.0, 1.0, df as f64) else {
        return f64::NAN;
    };
    let mut count = 0usize;
    let mut least = f64::INFINITY;
    for (&m, &e) in mean.iter().zip(se.iter()) {
        let p = if e > 0.0 {
            2.0 * t.sf((m / e).abs())
        } else if m == 0.0 {
            continue;
        } else {
            0.0
        };
        count += 1;
        least = least.min(p);
    }
    if count == 0 {
        f64::NAN
    } else {
        (count as f64 * least).min(1.0)
    }
}

/// The number of batches of the θ-gradient's batch-means standard error ([`GradientAudit`]).
pub const GRADIENT_BATCHES: usize = 32;

/// ∇_θ B: 0 on ℝᴰ; on [a, ∞), B = p(a)·s_θ(a), so ∇_θ B = p(a) ∇_θ s_θ(a).
fn boundary_gradient<D>(density: &D, model: &dyn scorelab_core::ParameterGradient) -> Array1<f64>
where
    D: LogDensity + ?Sized,
{
    match density.support() {
        Support::Whole => Array1::zeros(model.num_params()),
        Support::HalfLine { lower } => {
            let a = Array2::from_elem((1, 1), lower);
            let p = density.log_density(a.view())[0].exp();
            model.score_vjp(a.view(), Array2::from_elem((1, 1), p).view())
        }
        _ => Array1::from_elem(model.num_params(), f64::NAN),
    }
}

/// [`GradientAudit`] on the samples `x` with the true scores `t` and the model's `s`.
fn gradient_audit<D>(
    density: &D,
    model: &dyn scorelab_core::ParameterGradient,
    x: ArrayView2<f64>,
    t: ArrayView2<f64>,
    s: ArrayView2<f64>,
) -> GradientAudit
where
    D: LogDensity + ?Sized,
{
    let n = x.nrows();
    let k = GRADIENT_BATCHES.min(n);
    let p = model.num_params();
    let (mut esm_sum, mut diff_sum) = (Array1::<f64>::zeros(p), Array1::<f64>::zeros(p));
    let mut batch_means = Array2::<f64>::zeros((k, p));
    for b in 0..k {
        let (lo, hi) = (b * n / k, (b + 1) * n / k);
        let r = ndarray::s![lo..hi, ..];
        let (xb, tb, sb) = (x.slice(r), t.slice(r), s.slice(r));
        // Σᵢ ∇_θ ESMᵢ = vjp(s − t); Σᵢ ∇_θ ISMᵢ = vjp(s) + ∇_θ tr: their difference is vjp(−t) − ∇_θ tr.
        esm_sum += &model.score_vjp(xb, (&sb - &tb).view());
        let diff = model.score_vjp(xb, tb.mapv(|v| -v).view()) - model.trace_gradient(xb);
        batch_means.row_mut(b).assign(&(&diff / (hi - lo) as f64));
        diff_sum += &diff;
    }
    let norm = |v: &Array1<f64>| v.dot(v).sqrt();
    let esm_norm = norm(&(esm_sum / n as f64));
    let d = diff_sum / n as f64;
    let residual = &d - &boundary_gradient(density, model);
    // se_k² by batch means: the variance of the K batch means over K.
    let se: Array1<f64> = if k > 1 {
        batch_means
            .columns()
            .into_iter()
            .map(|c| {
                let m = c.mean().unwrap_or(0.0);
                (c.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (k - 1) as f64 / k as f64).sqrt()
            })
            .collect()
    } else {
        Array1::from_elem(p, f64::NAN)
    };
    let var_sum: f64 = se.iter().map(|e| e * e).sum();
    let df = k.saturating_sub(1);
    GradientAudit {
        rel_diff: norm(&d) / esm_norm,
        boundary_rel: norm(&(&d - &residual)) / esm_norm,
        residual_rel: norm(&residual) / esm_norm,
        residual_rel_se: var_sum.sqrt() / esm_norm,
        residual_p: bonferroni_t(residual.view(), se.view(), df),
        difference_p: bonferroni_t(d.view(), se.view(), df),
    }
}

/// Audits ESM = ISM + C + B for `model` on `density`, with `x` samples of the density (crate
/// docs), using what an analytic density offers besides its score: C in closed form (else a Monte
/// Carlo estimate) and a quadrature rule (else no quadrature audit).
///
/// # Panics
/// If `x`'s columns, the density's and the model's dimensions differ, or `x` has fewer than 2 rows.
pub fn audit<D>(density: &D, model: &dyn ScoreFunction, x: ArrayView2<f64>) -> Audit
where
    D: LogDensity + ScoreFunction + ScoreMatchingConstant + ExpectationRule,
{
    audit_with(
        density,
        model,
        x,
        density.score_matching_constant(),
        density.expectation_rule(),
    )
}

/// [`audit`] for a density that has nothing but a log-density and a score (your own, say): C
/// estimated by Monte Carlo on `x`, no quadrature.
///
/// # Panics
/// As [`audit`].
pub fn audit_samples<D>(density: &D, model: &dyn ScoreFunction, x: ArrayView2<f64>) -> Audit
where
    D: LogDensity + ScoreFunction + ?Sized,
{
    audit_with(density, model, x, None, None)
}

fn audit_with<D>(
    density: &D,
    model: &dyn ScoreFunction,
    x: ArrayView2<f64>,
    closed_constant: Option<f64>,
    rule: Option<Cubature>,
) -> Audit
where
    D: LogDensity + ScoreFunction + ?Sized,
{
    assert_eq!(
        x.ncols(),
        density.dim(),
        "samples and density dimensions differ"
    );
    assert_eq!(
        model.dim(),
        density.dim(),
        "model and density dimensions differ"
    );
    assert!(x.nrows() >= 2, "need at least two samples");
    let n = x.nrows();
    let t = density.score(x);
    let s = model.score(x);
    let tr = model.jacobian_trace(x);
    let esm_i = esm_terms(t.view(), s.view());
    let ism_i = ism_terms(s.view(), tr.view());
    let gap_i = &esm_i - &ism_i;
    let gap = MeanSe::of(gap_i.view());
    let boundary_term = density.boundary_term(model);
    let (constant, constant_source, z_score) = match closed_constant {
        Some(c) => {
            let z = z_score(gap.mean - c - boundary_term, gap.se, gap.mean.abs());
            (c, ConstantSource::ClosedForm, z)
        }
        None => {
            let c_i = row_sq_norms(t.view()) * 0.5;
            let c = MeanSe::of(c_i.view());
            let paired = MeanSe::of((&gap_i - &c_i).view());
            let z = z_score(paired.mean - boundary_term, paired.se, gap.mean.abs());
            (c.mean, ConstantSource::MonteCarlo { se: c.se }, z)
        }
    };
    let gradient = model
        .as_parameter_gradient()
        .map(|m| gradient_audit(density, m, x, t.view(), s.view()));
    let quadrature = rule.map(|rule| {
        let nodes = rule.nodes.view();
        let t = density.score(nodes);
        let s = model.score(nodes);
        let esm = rule.expect(&esm_terms(t.view(), s.view()));
        let ism = rule.expect(&ism_terms(s.view(), model.jacobian_trace(nodes).view()));
        let constant =
            closed_constant.unwrap_or_else(|| 0.5 * rule.expect(&row_sq_norms(t.view())));
        let want = constant + boundary_term;
        let scale = want.abs().max(esm.abs()).max(ism.abs());
        QuadratureAudit {
            esm,
            ism,
            constant,
            identity_rel_error: (esm - ism - want).abs() / scale,
        }
    });
    Audit {
        samples: n,
        esm: MeanSe::of(esm_i.view()),
        ism: MeanSe::of(ism_i.view()),
        gap,
        constant,
        constant_source,
        boundary_term,
        z_score,
        gradient,
        quadrature,
    }
}

/// residual / se; when every per-sample gap is the same number (se = 0, e.g. s_θ = −x/(2s²) on the
/// half-normal), 0 if the residual is rounding-sized relative to `scale` and ±∞ otherwise.
fn z_score(residual: f64, se: f64, scale: f64) -> f64 {
    if se > 0.0 {
        residual / se
    } else if residual.abs() <= 1e-12 * scale.max(1.0) {
        0.0
    } else {
        residual.signum() * f64::INFINITY
    }
}

/// Exact (ESM, ISM) where a closed form exists: a Gaussian or a half-normal with a linear model.
///
/// # Examples
/// ```
/// use scorelab_densities::{AnyDensity, Gaussian};
/// use scorelab_models::{AnyModel, Linear};
/// let p = AnyDensity::from(Gaussian::standard(3));
/// let m = AnyModel::from(Linear::random(3, 0.5, 2)?);
/// let (esm, ism) = scorelab_eval::closed_form(&p, &m).unwrap();
/// assert!((esm - ism - 1.5).abs() < 1e-12);
/// # Ok::<(), scorelab_models::ModelError>(())
/// ```
pub fn closed_form(density: &AnyDensity, model: &AnyModel) -> Option<(f64, f64)> {
    match (density, model) {
        (AnyDensity::Gaussian(p), AnyModel::Linear(m)) => {
            let cf = gaussian_linear(p, m);
            Some((cf.esm, cf.ism))
        }
        (AnyDensity::HalfNormal(p), AnyModel::Linear(m)) => {
            let cf = half_normal_linear(p, m);
            Some((cf.esm, cf.ism))
        }
        _ => None,
    }
}

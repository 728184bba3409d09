//! Sample-quality metrics: Fisher divergence, MMD, KSD, sliced Wasserstein-2 and mode weights.
//!
//! Every function takes batch-first `(n, d)` arrays and, where it draws random numbers
//! (permutations, bootstrap weights, projections), the RNG as an argument: results are
//! deterministic given the seed. Each returns an [`Estimate`]: a value with a standard error and,
//! where a hypothesis test is natural, a p-value.

use ndarray::{s, Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;
use scorelab_core::linalg::row_sq_norms;
use scorelab_core::stats::MeanSe;
use scorelab_core::Score;
use scorelab_densities::GaussianMixture;
use scorelab_objectives::esm_terms;
use statrs::distribution::{ContinuousCDF, Normal};

/// A measured quantity with its uncertainty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error (NaN where none is defined, e.g. from one value).
    pub se: f64,
    /// The p-value of the metric's test of "the samples come from the target", where it has one.
    pub p_value: Option<f64>,
}

/// The Fisher divergence ½ E_x ‖s_model(x) − s_target(x)‖² estimated on the points `x` (usually
/// samples of the target), with its standard error; also the per-point terms, for binning.
///
/// Its expectation under p is ESM(θ); divided by C = ½E_p‖∇log p‖² it is the relative Fisher
/// divergence reported by `scorelab train`.
///
/// # Examples
/// ```
/// use scorelab_densities::Gaussian;
/// // N(0, 1) against N(0, 1/2): s = −x and −2x differ by x, so F = ½ E x² at the points.
/// let x = ndarray::array![[1.0], [-1.0], [2.0]];
/// let (f, terms) = scorelab_eval::fisher_divergence(
///     &Gaussian::standard(1),
///     &Gaussian::new(ndarray::array![0.0], ndarray::array![[0.5]])?,
///     x.view(),
/// );
/// for (t, want) in terms.iter().zip([0.5, 0.5, 2.0]) {
///     assert!((t - want).abs() < 1e-12);
/// }
/// assert!((f.value - 1.0).abs() < 1e-12);
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
pub fn fisher_divergence<M: Score + ?Sized, T: Score + ?Sized>(
    model: &M,
    target: &T,
    x: ArrayView2<f64>,
) -> (Estimate, Array1<f64>) {
    // The per-sample ESM terms, ½‖t − s‖², of the objectives crate: one definition.
    let terms = esm_terms(target.score(x).view(), model.score(x).view());
    let m = MeanSe::of(terms.view());
    (
        Estimate {
            value: m.mean,
            se: m.se,
            p_value: None,
        },
        terms,
    )
}

/// Squared Euclidean distances ‖aᵢ − bⱼ‖² as an `(n, m)` matrix (clamped at 0 against rounding).
fn sq_dists(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let na = row_sq_norms(a);
    let nb = row_sq_norms(b);
    let mut d = a.dot(&b.t()) * -2.0;
    for ((i, j), v) in d.indexed_iter_mut() {
        *v = (*v + na[i] + nb[j]).max(0.0);
    }
    d
}

fn stack(x: ArrayView2<f64>, y: ArrayView2<f64>) -> Array2<f64> {
    ndarray::concatenate(Axis(0), &[x.view(), y.view()]).expect("the same number of columns")
}

/// The median of the pairwise distances ‖zᵢ − zⱼ‖, i < j, of the pooled points z = (x, y): the
/// median heuristic for the RBF bandwidth (Gretton et al. 2012). The mean of the two middle
/// values when their number is even.
///
/// # Examples
/// ```
/// let x = ndarray::array![[0.0], [1.0]];
/// let y = ndarray::array![[3.0]];
/// // distances 1, 3, 2
/// assert_eq!(scorelab_eval::median_bandwidth(x.view(), y.view()), 2.0);
/// ```
///
/// # Panics
/// If fewer than two points are given in all.
pub fn median_bandwidth(x: ArrayView2<f64>, y: ArrayView2<f64>) -> f64 {
    let z = stack(x, y);
    let n = z.nrows();
    assert!(n >= 2, "the median bandwidth needs at least two points");
    let d2 = sq_dists(z.view(), z.view());
    let mut v: Vec<f64> = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        v.extend(d2.slice(s![i, i + 1..]).iter().map(|a| a.sqrt()));
    }
    let k = v.len() / 2;
    let (_, upper, _) = v.select_nth_unstable_by(k, f64::total_cmp);
    let upper = *upper;
    if v.len() % 2 == 1 {
        upper
    } else {
        let lower = v[..k].iter().copied().fold(f64::NEG_INFINITY, f64::max);
        0.5 * (lower + upper)
    }
}

/// The result of [`mmd2`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mmd {
    /// MMD²_u with its standard error and permutation p-value.
    pub estimate: Estimate,
    /// The RBF bandwidth h used.
    pub bandwidth: f64,
}

/// The unbiased squared maximum mean discrepancy between the samples x (n points) and y (m points)
/// with the RBF kernel k(a, b) = exp(−‖a − b‖²/(2h²)) (Gretton et al. 2012, eq. 3):
///
/// MMD²_u = Σ_{i≠j} k(xᵢ, xⱼ)/(n(n−1)) + Σ_{i≠j} k(yᵢ, yⱼ)/(m(m−1)) − 2 Σᵢⱼ k(xᵢ, yⱼ)/(nm).
///
/// - h is `bandwidth`, or the [`median_bandwidth`] of the pooled points when `None`.
/// - The standard error is the first-order (non-degenerate) one of a two-sample U-statistic,
///   √(4 Var(aᵢ)/n + 4 Var(bⱼ)/m) with aᵢ = mean_{j≠i} k(xᵢ, xⱼ) − mean_j k(xᵢ, yⱼ) and bⱼ
///   likewise; when x and y have the same law the statistic is degenerate and this SE understates
///   its spread, so read the p-value there.
/// - The p-value is that of the permutation test with `permutations` random relabellings of the
///   pooled points, (1 + #{MMD²_b ≥ MMD²_u})/(1 + B); `None` for B = 0.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// let x = ndarray::array![[0.0], [0.1], [0.2]];
/// let y = ndarray::array![[5.0], [5.1], [5.2]];
/// let m = scorelab_eval::mmd2(x.view(), y.view(), Some(1.0), 0, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// assert!(m.estimate.value > 1.9); // far apart: k(x, y) ≈ 0, k(x, x') ≈ 1
/// ```
///
/// # Panics
/// If x or y has fewer than two rows, or their columns differ.
pub fn mmd2<R: Rng + ?Sized>(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    bandwidth: Option<f64>,
    permutations: usize,
    rng: &mut R,
) -> Mmd {
    let (n, m) = (x.nrows(), y.nrows());
    assert!(n >= 2 && m >= 2, "MMD needs at least two points per sample");
    let h = bandwidth.unwrap_or_else(|| median_bandwidth(x, y));
    let z = stack(x, y);
    let big = n + m;
    let mut k = sq_dists(z.view(), z.view());
    let c = -0.5 / (h * h);
    k.mapv_inplace(|d| (c * d).exp());
    for i in 0..big {
        k[[i, i]] = 0.0;
    }
    // Row sums over the x block and the y block.
    let rx: Array1<f64> = k.slice(s![.., ..n]).sum_axis(Axis(1));
    let ry: Array1<f64> = k.slice(s![.., n..]).sum_axis(Axis(1));
    let (nf, mf) = (n as f64, m as f64);
    let sxx = rx.slice(s![..n]).sum();
    let syy = ry.slice(s![n..]).sum();
    let sxy = ry.slice(s![..n]).sum();
    let stat = |sxx: f64, syy: f64, sxy: f64| {
        sxx / (nf * (nf - 1.0)) + syy / (mf * (mf - 1.0)) - 2.0 * sxy / (nf * mf)
    };
    let value = stat(sxx, syy, sxy);
    let a: Array1<f64> = (0..n).map(|i| rx[i] / (nf - 1.0) - ry[i] / mf).collect();
    let b: Array1<f64> = (n..big).map(|j| ry[j] / (mf - 1.0) - rx[j] / nf).collect();
    let var = |v: &Array1<f64>| v.var(1.0);
    let se = (4.0 * var(&a) / nf + 4.0 * var(&b) / mf).sqrt();
    let p_value = (permutations > 0).then(|| {
        let total = k.sum();
        let orders: Vec<Vec<usize>> = (0..permutations)
            .map(|_| {
                let mut idx: Vec<usize> = (0..big).collect();
                idx.shuffle(rng);
                idx
            })
            .collect();
        let exceed = orders
            .par_iter()
            .filter(|idx| {
                let mut a = Array1::<f64>::zeros(big);
                for &i in &idx[..n] {
                    a[i] = 1.0;
                }
                let ka = k.dot(&a);
                let kxx = a.dot(&ka);
                let kxy = ka.sum() - kxx;
                let kyy = total - kxx - 2.0 * kxy;
                stat(kxx, kyy, kxy) >= value
            })
            .count();
        (1 + exceed) as f64 / (1 + permutations) as f64
    });
    Mmd {
        estimate: Estimate { value, se, p_value },
        bandwidth: h,
    }
}

/// The Stein kernel of the IMQ base kernel k(x, y) = (c² + ‖x − y‖²)^β with c = 1, β = −½, for a
/// target with score s, as an `(n, n)` matrix uₚ(xᵢ, xⱼ):
///
/// uₚ(x, y) = s(x)·s(y) k + s(x)·∇_y k + s(y)·∇_x k + Σₗ ∂²k/∂xₗ∂yₗ, which with r = x − y and
/// q = c² + ‖r‖² is s(x)·s(y) q^β + 2β q^{β−1} (s(y) − s(x))·r − 2βD q^{β−1} − 4β(β−1) q^{β−2} ‖r‖².
fn stein_imq(x: ArrayView2<f64>, s: ArrayView2<f64>) -> Array2<f64> {
    const C2: f64 = 1.0;
    const BETA: f64 = -0.5;
    let d = x.ncols() as f64;
    let g = x.dot(&x.t()); // xᵢ·xⱼ
    let h = s.dot(&s.t()); // sᵢ·sⱼ
    let c = x.dot(&s.t()); // xᵢ·sⱼ
    let n = x.nrows();
    let mut u = Array2::zeros((n, n));
    for i in 0..n {
        for j in 0..n {
            let r2 = (g[[i, i]] + g[[j, j]] - 2.0 * g[[i, j]]).max(0.0);
            let q = C2 + r2;
            let qb1 = q.powf(BETA - 1.0);
            let qb = qb1 * q;
            let drift = c[[i, j]] - c[[i, i]] - c[[j, j]] + c[[j, i]];
            u[[i, j]] = h[[i, j]] * qb + 2.0 * BETA * qb1 * drift
                - 2.0 * BETA * d * qb1
                - 4.0 * BETA * (BETA - 1.0) * qb1 / q * r2;
        }
    }
    u
}

/// The kernel Stein discrepancy of the samples x from the density whose score is `target`, with
/// the inverse multiquadric kernel k(x, y) = (1 + ‖x − y‖²)^{−½} (Gorham & Mackey 2017, who show it
/// detects non-convergence; Liu, Lee & Jordan 2016 for the test).
///
/// - `ksd.value` is KSD = √V with V = Σᵢⱼ uₚ(xᵢ, xⱼ)/n² (the V-statistic of Gorham & Mackey; ≥ 0);
///   uₚ is the Stein kernel, which needs only the target's score, not its normaliser.
/// - `u_statistic` is the unbiased estimate U = Σ_{i≠j} uₚ/(n(n−1)) of KSD², with the first-order
///   standard error √(4 Var(hᵢ)/n), hᵢ = mean_{j≠i} uₚ(xᵢ, xⱼ); `ksd.se` carries it to √V by
///   the delta method. Under the
///   null the statistic is degenerate and the p-value is the measure to read.
/// - The p-value is the wild bootstrap's (Rademacher weights w, `bootstrap` replicates):
///   (1 + #{Σ_{i≠j} wᵢwⱼuₚ/(n(n−1)) ≥ U})/(1 + B); `None` for B = 0.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// use scorelab_densities::Gaussian;
/// let far = ndarray::Array2::from_elem((50, 1), 3.0);
/// let k = scorelab_eval::ksd(far.view(), &Gaussian::standard(1), 0, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// // Every point at x = 3: r = 0, so uₚ = s·s − 2βD = 9 + 1.
/// assert!((k.ksd.value - 10f64.sqrt()).abs() < 1e-12);
/// ```
///
/// # Panics
/// If x has fewer than two rows.
pub fn ksd<S: Score + ?Sized, R: Rng + ?Sized>(
    x: ArrayView2<f64>,
    target: &S,
    bootstrap: usize,
    rng: &mut R,
) -> Ksd {
    let n = x.nrows();
    assert!(n >= 2, "KSD needs at least two points");
    let s = target.score(x);
    let mut u = stein_imq(x, s.view());
    let nf = n as f64;
    let total = u.sum();
    let v_stat = total / (nf * nf);
    let diag: f64 = u.diag().sum();
    for i in 0..n {
        u[[i, i]] = 0.0;
    }
    let u_stat = (total - diag) / (nf * (nf - 1.0));
    let hbar: Array1<f64> = u.sum_axis(Axis(1)) / (nf - 1.0);
    let se_u = (4.0 * hbar.var(1.0) / nf).sqrt();
    // V ≥ 0 in exact arithmetic (a squared RKHS norm); a NaN (a non-finite point) stays NaN.
    let value = if v_stat.is_nan() {
        f64::NAN
    } else {
        v_stat.max(0.0).sqrt()
    };
    let p_value = (bootstrap > 0).then(|| {
        let weights: Vec<Array1<f64>> = (0..bootstrap)
            .map(|_| {
                (0..n)
                    .map(|_| if rng.gen::<bool>() { 1.0 } else { -1.0 })
                    .collect()
            })
            .collect();
        let exceed = weights
            .par_iter()
            .filter(|w| {
                let b = w.dot(&u.dot(*w)) / (nf * (nf - 1.0));
                b >= u_stat
            })
            .count();
        (1 + exceed) as f64 / (1 + bootstrap) as f64
    });
    Ksd {
        ksd: Estimate {
            value,
            se: se_u / (2.0 * value),
            p_value,
        },
        u_statistic: Estimate {
            value: u_stat,
            se: se_u,
            p_value,
        },
    }
}

/// The result of [`ksd`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ksd {
    /// KSD = √V (Gorham & Mackey's V-statistic), its SE and the wild-bootstrap p-value.
    pub ksd: Estimate,
    /// The unbiased U-statistic of KSD² (can be negative), its SE and the same p-value.
    pub u_statistic: Estimate,
}

/// The squared 1-D Wasserstein-2 distance between the empirical measures of two sorted samples:
/// ∫₀¹ (F⁻¹(t) − G⁻¹(t))² dt over the breakpoints i/n and j/m of the two quantile functions.
fn w2_sorted(a: &[f64], b: &[f64]) -> f64 {
    let (n, m) = (a.len(), b.len());
    let (mut i, mut j) = (0, 0);
    let (mut t, mut total) = (0.0, 0.0);
    while i < n && j < m {
        let ta = (i + 1) as f64 / n as f64;
        let tb = (j + 1) as f64 / m as f64;
        let next = ta.min(tb);
        total += (a[i] - b[j]).powi(2) * (next - t);
        t = next;
        if ta <= tb {
            i += 1;
        }
        if tb <= ta {
            j += 1;
        }
    }
    total
}

/// The sliced Wasserstein-2 distance SW₂(x, y) = (E_θ W₂²(θᵀx, θᵀy))^{½}, θ uniform on the unit
/// sphere, estimated with `projections` seeded directions (Bonneel et al. 2015). Each 1-D W₂² is
/// exact between the two empirical measures (any n and m).
///
/// The standard error is that of the Monte Carlo average over directions (delta method to the
/// square root); the samples' own variability is not in it.
///
/// # Examples
/// ```
/// use rand::SeedableRng;
/// let x = ndarray::array![[0.0, 0.0], [1.0, 1.0]];
/// let y = &x + 2.0; // a shift by (2, 2): W₂²(θ) = (θ·(2, 2))², E_θ = ‖(2, 2)‖²/2 = 4
/// let w = scorelab_eval::sliced_w2(x.view(), y.view(), 2000, &mut rand_chacha::ChaCha8Rng::seed_from_u64(0));
/// assert!((w.value - 2.0).abs() < 5.0 * w.se);
/// ```
///
/// # Panics
/// If x or y is empty, their columns differ, or `projections` is 0.
pub fn sliced_w2<R: Rng + ?Sized>(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    projections: usize,
    rng: &mut R,
) -> Estimate {
    assert!(x.nrows() > 0 && y.nrows() > 0 && projections > 0);
    assert_eq!(x.ncols(), y.ncols(), "x and y must have the same columns");
    let d = x.ncols();
    let mut theta = Array2::<f64>::zeros((projections, d));
    for mut row in theta.rows_mut() {
        row.mapv_inplace(|_| rng.sample(StandardNormal));
        let norm = row.dot(&row).sqrt();
        row /= norm;
    }
    let px = x.dot(&theta.t());
    let py = y.dot(&theta.t());
    let per: Array1<f64> = (0..projections)
        .into_par_iter()
        .map(|l| {
            let sorted = |c: ArrayView1<f64>| {
                let mut v = c.to_vec();
                v.sort_unstable_by(f64::total_cmp);
                v
            };
            w2_sorted(&sorted(px.column(l)), &sorted(py.column(l)))
        })
        .collect::<Vec<_>>()
        .into();
    let m = MeanSe::of(per.view());
    let value = m.mean.sqrt();
    Estimate {
        value,
        se: m.se / (2.0 * value),
        p_value: None,
    }
}

/// The fraction of the samples assigned to each component of a Gaussian mixture, each sample going
/// to the component with the highest responsibility wₖN(x; μₖ, Σₖ)/p(x).
///
/// The standard error is the binomial √(ŵ(1 − ŵ)/n); the p-value tests ŵₖ = wₖ, the component's
/// weight, by the normal approximation to the binomial, 2(1 − Φ(|ŵₖ − wₖ|/√(wₖ(1 − wₖ)/n))).
/// (For components that overlap, even exact samples are misassigned at a small rate, so the
/// fractions then differ from the weights by that rate.)
///
/// # Examples
/// ```
/// use ndarray::array;
/// use scorelab_densities::GaussianMixture;
/// let p = GaussianMixture::new(
///     array![0.8, 0.2],
///     vec![array![5.0, 5.0], array![-5.0, -5.0]],
///     vec![ndarray::Array2::eye(2), ndarray::Array2::eye(2)],
/// )?;
/// let x = array![[4.0, 6.0], [-5.0, -4.0], [5.0, 5.0], [6.0, 4.0]];
/// let w = scorelab_eval::mode_weights(&p, x.view());
/// assert_eq!((w[0].value, w[1].value), (0.75, 0.25));
/// # Ok::<(), scorelab_densities::DensityError>(())
/// ```
pub fn mode_weights(mixture: &GaussianMixture, x: ArrayView2<f64>) -> Vec<Estimate> {
    let (r, _) = mixture.responsibilities(x);
    let k = r.ncols();
    let n = x.nrows() as f64;
    let mut counts = vec![0usize; k];
    for row in r.rows() {
        let best = (0..k)
            .max_by(|&a, &b| row[a].total_cmp(&row[b]))
            .expect("at least one component");
        counts[best] += 1;
    }
    let normal = Normal::standard();
    counts
        .iter()
        .zip(mixture.weights())
        .map(|(&c, &w)| {
            let value = c as f64 / n;
            let z = (value - w).abs() / (w * (1.0 - w) / n).sqrt();
            Estimate {
                value,
                se: (value * (1.0 - value) / n).sqrt(),
                p_value: Some(if z.is_finite() {
                    2.0 * (1.0 - normal.cdf(z))
                } else if value == w {
                    1.0
                } else {
                    0.0
                }),
            }
        })
        .collect()
}

/// KL(p ‖ q) = ∫ p (log p − log q) by a cubature rule over a box that holds p's mass: the nodes
/// where log p is finite (p may vanish on part of the box, like a checkerboard's) are passed to
/// `log_q`, and Σₖ wₖ p(xₖ)(log p(xₖ) − log q(xₖ)) is returned; `None` when `log_q` gives none
/// (e.g. stopped).
///
/// ```
/// use ndarray::{Array1, ArrayView2};
/// // p = N(0, 1)², q = N(1, 1)²: KL = ‖μ_p − μ_q‖²/2 = 1.
/// let rule = scorelab_densities::quadrature::legendre_box([-10.0; 2], [10.0; 2], 10, 8);
/// let log_n = |x: ArrayView2<f64>, m: f64| -> Array1<f64> {
///     x.rows().into_iter().map(|r| -((r[0] - m).powi(2) + (r[1] - m).powi(2)) / 2.0
///         - (2.0 * std::f64::consts::PI).ln()).collect()
/// };
/// let kl = scorelab_eval::kl_by_cubature(&rule, log_n(rule.nodes.view(), 0.0).view(),
///     |x| Some(log_n(x, 1.0))).unwrap();
/// assert!((kl - 1.0).abs() < 1e-10);
/// ```
pub fn kl_by_cubature(
    rule: &scorelab_core::Cubature,
    log_p: ndarray::ArrayView1<f64>,
    log_q: impl FnOnce(ArrayView2<f64>) -> Option<ndarray::Array1<f64>>,
) -> Option<f64> {
    let keep: Vec<usize> = (0..rule.nodes.nrows())
        .filter(|&i| log_p[i].is_finite())
        .collect();
    let xs = rule.nodes.select(ndarray::Axis(0), &keep);
    let lq = log_q(xs.view())?;
    Some(
        keep.iter()
            .zip(lq.iter())
            .map(|(&i, q)| rule.weights[i] * log_p[i].exp() * (log_p[i] - q))
            .sum(),
    )
}

/// The weight of component 1 that a deterministic sampler with exact scores returns when it starts
/// from the Gaussian prior N(0, c²I) at the marginal α(x₀ + σ̃z) of p = w₀N(m₀, vI) + w₁N(m₁, vI).
///
/// In y = x/α the probability-flow ODE moves the coordinate along u = (m₁ − m₀)/‖m₁ − m₀‖ on its own
/// (the responsibilities depend on y only through u·y, and the score's other coordinates are
/// linear and separate), and it carries p_σ̃ to p: so the points that end in mode 1 are those that
/// start above the level b where p_σ̃ has mass w₁ above, w₀Φ̄((b − u·m₀)/s) + w₁Φ̄((b − u·m₁)/s) = w₁
/// with s² = v + σ̃². The prior, N(0, (c/α)²I) in y, puts Φ̄(bα/c) there. `None` unless p is such a
/// mixture.
///
/// `tests/predicted_weight.rs` checks it against 10 000 chains through the exact ODE.
pub fn predicted_mode_weight(
    p: &scorelab_densities::AnyDensity,
    alpha: f64,
    sigma: f64,
    prior_std: f64,
) -> Option<f64> {
    use scorelab_core::{Dimension, Moments};
    use statrs::distribution::{ContinuousCDF, Normal};
    let scorelab_densities::AnyDensity::GaussianMixture(mix) = p else {
        return None;
    };
    let c = mix.components();
    if c.len() != 2 {
        return None;
    }
    let d = c[0].dim();
    let v = c[0].covariance()[[0, 0]];
    let iso = |cov: ndarray::Array2<f64>| {
        (0..d).all(|i| (0..d).all(|j| (cov[[i, j]] - if i == j { v } else { 0.0 }).abs() < 1e-12))
    };
    if !(iso(c[0].covariance()) && iso(c[1].covariance())) {
        return None;
    }
    let diff = c[1].mean_vector() - c[0].mean_vector();
    let u = &diff / diff.dot(&diff).sqrt();
    let (a0, a1) = (u.dot(c[0].mean_vector()), u.dot(c[1].mean_vector()));
    let (w0, w1) = (mix.weights()[0], mix.weights()[1]);
    let n = Normal::standard();
    let s = (v + sigma * sigma).sqrt();
    let above = |b: f64| w0 * (1.0 - n.cdf((b - a0) / s)) + w1 * (1.0 - n.cdf((b - a1) / s));
    // `above` falls from 1 to 0: bisect for above(b) = w₁.
    let (mut lo, mut hi) = (a0.min(a1) - 40.0 * s, a0.max(a1) + 40.0 * s);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if above(mid) > w1 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let b = 0.5 * (lo + hi);
    Some(1.0 - n.cdf(b * alpha / prior_std))
}

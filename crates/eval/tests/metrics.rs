//! Every sample-quality metric against an independent reference: brute-force loops on small inputs,
//! closed forms for Gaussians, exact quadrature, finite differences of the kernel, and the
//! calibration of the tests' p-values under the null (a binomial count checked at a stated failure
//! rate). Fixed seeds throughout; Monte Carlo comparisons within 5 standard errors.

use ndarray::{array, Array1, Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use scorelab_core::tolerance::MONTE_CARLO_SE;
use scorelab_core::{Sample, Score};
use scorelab_densities::quadrature::std_normal_composite_1d;
use scorelab_densities::{Gaussian, GaussianMixture};
use scorelab_eval::{fisher_divergence, ksd, median_bandwidth, mmd2, mode_weights, sliced_w2};
use statrs::distribution::{Binomial, DiscreteCDF};

fn iso(mean: Array1<f64>, s: f64) -> Gaussian {
    let d = mean.len();
    Gaussian::new(mean, Array2::eye(d) * (s * s)).unwrap()
}

fn rbf(a: ArrayView2<f64>, i: usize, b: ArrayView2<f64>, j: usize, h: f64) -> f64 {
    let d2: f64 = (0..a.ncols())
        .map(|k| (a[[i, k]] - b[[j, k]]).powi(2))
        .sum();
    (-d2 / (2.0 * h * h)).exp()
}

/// Asserts that `count` rejections in `trials` null trials are consistent with the test's nominal
/// level `rate`: a two-sided binomial test of Bin(trials, rate) at level 1e-3, i.e. both
/// P(Bin ≥ count) and P(Bin ≤ count) at least 5e-4. A correct test fails this once in a thousand
/// seeds; one that rejects too often (anti-conservative) or too rarely (conservative, low power)
/// fails it.
fn check_null_rejections(count: u64, trials: u64, rate: f64, what: &str) {
    let b = Binomial::new(rate, trials).unwrap();
    let upper = if count == 0 { 1.0 } else { b.sf(count - 1) };
    let lower = b.cdf(count);
    assert!(
        upper >= 5e-4 && lower >= 5e-4,
        "{what}: {count}/{trials} rejections at level {rate} (lower tail {lower:e}, upper tail {upper:e})"
    );
}

#[test]
fn mmd_matches_brute_force_on_small_inputs() {
    let x = array![[0.0, 1.0], [0.5, -0.3], [2.0, 0.1], [-1.0, -1.0]];
    let y = array![[0.3, 0.2], [1.5, 1.0], [-0.4, 0.9]];
    let h = 0.8;
    let m = mmd2(
        x.view(),
        y.view(),
        Some(h),
        0,
        &mut ChaCha8Rng::seed_from_u64(0),
    );
    let (n, mm) = (4.0, 3.0);
    let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
    let mut a = vec![0.0; 4];
    let mut b = vec![0.0; 3];
    for i in 0..4 {
        for j in 0..4 {
            if i != j {
                sxx += rbf(x.view(), i, x.view(), j, h);
                a[i] += rbf(x.view(), i, x.view(), j, h) / (n - 1.0);
            }
        }
        for j in 0..3 {
            sxy += rbf(x.view(), i, y.view(), j, h);
            a[i] -= rbf(x.view(), i, y.view(), j, h) / mm;
            b[j] -= rbf(x.view(), i, y.view(), j, h) / n;
        }
    }
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                syy += rbf(y.view(), i, y.view(), j, h);
                b[i] += rbf(y.view(), i, y.view(), j, h) / (mm - 1.0);
            }
        }
    }
    let want = sxx / (n * (n - 1.0)) + syy / (mm * (mm - 1.0)) - 2.0 * sxy / (n * mm);
    assert!(
        (m.estimate.value - want).abs() < 1e-14,
        "{} vs {want}",
        m.estimate.value
    );
    let var = |v: &[f64]| {
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)
    };
    let se = (4.0 * var(&a) / n + 4.0 * var(&b) / mm).sqrt();
    assert!((m.estimate.se - se).abs() < 1e-14);
    assert_eq!(m.estimate.p_value, None);

    // The median heuristic: the median of the 21 pooled pairwise distances, by sorting.
    let z = ndarray::concatenate(ndarray::Axis(0), &[x.view(), y.view()]).unwrap();
    let mut d = vec![];
    for i in 0..7 {
        for j in i + 1..7 {
            let r: f64 = (0..2).map(|k| (z[[i, k]] - z[[j, k]]).powi(2)).sum();
            d.push(r.sqrt());
        }
    }
    d.sort_by(f64::total_cmp);
    assert!((median_bandwidth(x.view(), y.view()) - d[10]).abs() < 1e-14);
}

#[test]
fn mmd_is_unbiased_for_the_gaussian_closed_form() {
    // x ∼ N(0, I₂), y ∼ N(μ, s² I₂), RBF bandwidth h: with v = h², each expectation is
    // E k = (v/(v + a + b))^{D/2} exp(−‖Δ‖²/(2(v + a + b))) for variances a, b and mean gap Δ.
    let (h, s, mu) = (1.3, 0.7, array![0.8, -0.4]);
    let e = |a: f64, b: f64, gap2: f64| {
        let v = h * h;
        (v / (v + a + b)) * (-gap2 / (2.0 * (v + a + b))).exp()
    };
    let truth = e(1.0, 1.0, 0.0) + e(s * s, s * s, 0.0) - 2.0 * e(1.0, s * s, mu.dot(&mu));
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let x = Gaussian::standard(2).sample(1500, &mut rng);
    let y = iso(mu, s).sample(1500, &mut rng);
    let m = mmd2(x.view(), y.view(), Some(h), 0, &mut rng).estimate;
    assert!(
        (m.value - truth).abs() < MONTE_CARLO_SE * m.se,
        "MMD² {} ± {} vs {truth}",
        m.value,
        m.se
    );
}

#[test]
fn mmd_permutation_test_is_calibrated_and_has_power() {
    // Under the null the permutation test is exact: with B = 49, P(p ≤ 0.04) = 2/50 exactly.
    let p = Gaussian::standard(2);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let trials = 1000;
    let mut rejected = 0;
    for _ in 0..trials {
        let x = p.sample(30, &mut rng);
        let y = p.sample(30, &mut rng);
        if mmd2(x.view(), y.view(), None, 49, &mut rng)
            .estimate
            .p_value
            .unwrap()
            <= 0.04
        {
            rejected += 1;
        }
    }
    check_null_rejections(rejected, trials, 0.04, "MMD permutation test");
    // A shift of one standard deviation is found with 200 points a side.
    let x = p.sample(200, &mut rng);
    let y = iso(array![1.0, 0.0], 1.0).sample(200, &mut rng);
    let pv = mmd2(x.view(), y.view(), None, 99, &mut rng)
        .estimate
        .p_value
        .unwrap();
    assert_eq!(pv, 0.01, "the smallest p-value B = 99 can give");
}

/// The IMQ base kernel k(x, y) = (1 + ‖x − y‖²)^{−½}.
fn imq(x: &[f64], y: &[f64]) -> f64 {
    let r2: f64 = x.iter().zip(y).map(|(a, b)| (a - b).powi(2)).sum();
    (1.0 + r2).powf(-0.5)
}

/// The Stein kernel from its definition, with every derivative of k a central finite difference.
fn stein_fd(x: &[f64], y: &[f64], sx: &[f64], sy: &[f64]) -> f64 {
    let h = 1e-4;
    let d = x.len();
    let shift = |v: &[f64], k: usize, e: f64| {
        let mut w = v.to_vec();
        w[k] += e;
        w
    };
    let mut u = sx.iter().zip(sy).map(|(a, b)| a * b).sum::<f64>() * imq(x, y);
    for k in 0..d {
        let dx = (imq(&shift(x, k, h), y) - imq(&shift(x, k, -h), y)) / (2.0 * h);
        let dy = (imq(x, &shift(y, k, h)) - imq(x, &shift(y, k, -h))) / (2.0 * h);
        let dxy = (imq(&shift(x, k, h), &shift(y, k, h))
            - imq(&shift(x, k, h), &shift(y, k, -h))
            - imq(&shift(x, k, -h), &shift(y, k, h))
            + imq(&shift(x, k, -h), &shift(y, k, -h)))
            / (4.0 * h * h);
        u += sx[k] * dy + sy[k] * dx + dxy;
    }
    u
}

#[test]
fn ksd_matches_the_stein_kernel_by_finite_differences_on_small_inputs() {
    // V = Σᵢⱼ u(xᵢ, xⱼ)/n² and U = Σ_{i≠j} u/(n(n−1)) with u by finite differences (error ~1e-7).
    let p = Gaussian::new(array![0.5, -1.0], array![[1.5, 0.3], [0.3, 0.8]]).unwrap();
    let x = array![
        [0.0, 0.0],
        [1.0, -2.0],
        [0.3, 0.7],
        [-1.2, -0.4],
        [2.0, 1.0]
    ];
    let s = p.score(x.view());
    let n = 5;
    let (mut v, mut u) = (0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            let k = stein_fd(
                x.row(i).as_slice().unwrap(),
                x.row(j).as_slice().unwrap(),
                s.row(i).as_slice().unwrap(),
                s.row(j).as_slice().unwrap(),
            );
            v += k;
            if i != j {
                u += k;
            }
        }
    }
    let (v, u) = (v / 25.0, u / 20.0);
    let k = ksd(x.view(), &p, 0, &mut ChaCha8Rng::seed_from_u64(0));
    assert!(
        (k.ksd.value - v.sqrt()).abs() < 1e-6,
        "{} vs {}",
        k.ksd.value,
        v.sqrt()
    );
    assert!((k.u_statistic.value - u).abs() < 1e-6);
}

#[test]
fn ksd_is_unbiased_for_the_population_value_by_quadrature() {
    // p = N(0, 1), q = N(½, 1): KSD² = ∫∫ uₚ(x, y) q(x) q(y) dx dy by a 2-D tensor of composite
    // Gauss–Legendre rules for N(0, 1) on [−10, 10] (u by finite differences, error ~1e-7).
    let p = Gaussian::standard(1);
    let (z, w) = std_normal_composite_1d(-10.0, 10.0, 20, 12);
    let mut truth = 0.0;
    for (a, wa) in z.iter().zip(&w) {
        for (b, wb) in z.iter().zip(&w) {
            let (x, y) = (a + 0.5, b + 0.5);
            truth += wa * wb * stein_fd(&[x], &[y], &[-x], &[-y]);
        }
    }
    let q = iso(array![0.5], 1.0);
    let x = q.sample(3000, &mut ChaCha8Rng::seed_from_u64(13));
    let k = ksd(x.view(), &p, 0, &mut ChaCha8Rng::seed_from_u64(0)).u_statistic;
    assert!(
        (k.value - truth).abs() < MONTE_CARLO_SE * k.se,
        "U = {} ± {} vs {truth}",
        k.value,
        k.se
    );
    assert!(truth > 0.01, "the shift is visible: {truth}");
}

#[test]
fn ksd_wild_bootstrap_is_calibrated_and_has_power() {
    // The wild bootstrap is asymptotically exact; at n = 100 its null rejection rate is tested
    // at the nominal level 0.05.
    let p = Gaussian::standard(2);
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let trials = 1000;
    let mut rejected = 0;
    for _ in 0..trials {
        let x = p.sample(100, &mut rng);
        if ksd(x.view(), &p, 99, &mut rng).ksd.p_value.unwrap() <= 0.05 {
            rejected += 1;
        }
    }
    check_null_rejections(rejected, trials, 0.05, "KSD wild bootstrap");
    let x = iso(array![0.7, 0.0], 1.0).sample(200, &mut rng);
    let pv = ksd(x.view(), &p, 99, &mut rng).ksd.p_value.unwrap();
    assert_eq!(pv, 0.01, "a shift of 0.7 sd is found");
}

/// W₂² between two empirical measures by brute force: repeat each atom so both have lcm(n, m)
/// equally weighted atoms, then pair them in sorted order.
fn w2_brute(a: &[f64], b: &[f64]) -> f64 {
    let l = a.len() * b.len();
    let rep = |v: &[f64], k: usize| {
        let mut out: Vec<f64> = v.iter().flat_map(|&x| std::iter::repeat_n(x, k)).collect();
        out.sort_by(f64::total_cmp);
        out
    };
    let (ra, rb) = (rep(a, l / a.len()), rep(b, l / b.len()));
    ra.iter()
        .zip(&rb)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        / l as f64
}

#[test]
fn sliced_w2_matches_brute_force_in_1d_and_the_gaussian_closed_form() {
    // In 1-D every direction is ±1, so SW₂² is the exact W₂² of the two empirical measures.
    let a = [0.3, -1.0, 2.5, 0.0];
    let b = [1.0, 1.1, -0.2, 4.0, 0.5, -3.0];
    let x = Array2::from_shape_vec((4, 1), a.to_vec()).unwrap();
    let y = Array2::from_shape_vec((6, 1), b.to_vec()).unwrap();
    let w = sliced_w2(x.view(), y.view(), 3, &mut ChaCha8Rng::seed_from_u64(0));
    assert!((w.value.powi(2) - w2_brute(&a, &b)).abs() < 1e-12);

    // x ∼ N(0, I₂), y ∼ N(μ, s² I₂): W₂²(θ) = (θ·μ)² + (1 − s)², so SW₂² = ‖μ‖²/2 + (1 − s)².
    // With 20 000 points a side the empirical W₂² exceeds the population one by O(log n / n)
    // ≈ 5e-4 (1-D Gaussians); the tolerance is 5 SE of the 500-direction average plus that.
    let (s, mu) = (0.6, array![1.0, 0.5]);
    let truth: f64 = mu.dot(&mu) / 2.0 + (1.0 - s) * (1.0 - s);
    let mut rng = ChaCha8Rng::seed_from_u64(15);
    let x = Gaussian::standard(2).sample(20_000, &mut rng);
    let y = iso(mu, s).sample(20_000, &mut rng);
    let w = sliced_w2(x.view(), y.view(), 500, &mut rng);
    let tol = MONTE_CARLO_SE * 2.0 * w.value * w.se + 5e-4;
    assert!(
        (w.value.powi(2) - truth).abs() < tol,
        "SW₂² {} vs {truth}",
        w.value.powi(2)
    );
}

#[test]
fn mode_weights_match_brute_force_assignment_and_exact_samples() {
    let p = GaussianMixture::new(
        array![0.3, 0.5, 0.2],
        vec![array![0.0, 0.0], array![3.0, 0.0], array![0.0, 3.0]],
        vec![
            Array2::eye(2),
            array![[2.0, 0.5], [0.5, 1.0]],
            Array2::eye(2) * 0.5,
        ],
    )
    .unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(16);
    let x = p.sample(500, &mut rng);
    // Brute force: log wₖ + log N(x; μₖ, Σₖ) from each component's own log-density, argmax.
    let logs: Vec<Array1<f64>> = p
        .components()
        .iter()
        .zip(p.weights())
        .map(|(c, w)| scorelab_core::LogDensity::log_density(c, x.view()) + w.ln())
        .collect();
    let mut counts = [0.0; 3];
    for i in 0..500 {
        let best = (0..3)
            .max_by(|&a, &b| logs[a][i].total_cmp(&logs[b][i]))
            .unwrap();
        counts[best] += 1.0;
    }
    let w = mode_weights(&p, x.view());
    for k in 0..3 {
        assert_eq!(w[k].value, counts[k] / 500.0);
        assert!((w[k].se - (w[k].value * (1.0 - w[k].value) / 500.0).sqrt()).abs() < 1e-15);
    }
    // Well-separated modes: exact samples give the weights (within 5 SE) and no small p-value.
    let far = GaussianMixture::new(
        array![0.8, 0.2],
        vec![array![5.0, 5.0], array![-5.0, -5.0]],
        vec![Array2::eye(2), Array2::eye(2)],
    )
    .unwrap();
    let x = far.sample(20_000, &mut rng);
    let w = mode_weights(&far, x.view());
    assert!((w[1].value - 0.2).abs() < MONTE_CARLO_SE * w[1].se);
    assert!(w[1].p_value.unwrap() > 5.7e-7);
    // Half and half is far from 0.8/0.2.
    let half = ndarray::concatenate(
        ndarray::Axis(0),
        &[
            x.slice(ndarray::s![..100, ..]),
            (-&x.slice(ndarray::s![..100, ..])).view(),
        ],
    )
    .unwrap();
    let w = mode_weights(&far, half.view());
    assert!(w[1].p_value.unwrap() < 1e-6);
}

#[test]
fn fisher_divergence_matches_its_closed_form() {
    // p = N(0, I₂), model N(μ, I₂): s_model − s_p = μ everywhere, so F = ½‖μ‖² exactly (SE 0);
    // model N(0, ½I₂): the difference is −x, F = ½ E‖x‖² = 1, within 5 SE on samples of p.
    let p = Gaussian::standard(2);
    let x = p.sample(5000, &mut ChaCha8Rng::seed_from_u64(17));
    let (f, _) = fisher_divergence(&iso(array![0.6, 0.8], 1.0), &p, x.view());
    assert!((f.value - 0.5).abs() < 1e-12 && f.se < 1e-12);
    let (f, terms) = fisher_divergence(&iso(array![0.0, 0.0], 0.5f64.sqrt()), &p, x.view());
    assert!((f.value - 1.0).abs() < MONTE_CARLO_SE * f.se);
    assert_eq!(terms.len(), 5000);
}

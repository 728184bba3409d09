"""Targets, schedules and the exact diffusion, each against an independent numpy/scipy computation."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

import scorelab as sl

# Tolerances: closed forms agree to rounding (1e-10 relative); central differences with step h
# have error O(h²) times the third derivative, 1e-5 at h = 1e-4 for these densities.
CLOSED = 1e-10
FD = 1e-5


def mixture3():
    """A 3-component, 3-D mixture with full covariances (weights, means, covs as numpy)."""
    w = np.array([0.5, 0.3, 0.2])
    m = np.array([[0.0, 1.0, -1.0], [2.0, -1.0, 0.5], [-2.0, 0.0, 1.0]])
    a = np.array([[1.0, 0.3, 0.0], [0.3, 0.5, 0.1], [0.0, 0.1, 0.8]])
    c = np.stack([a, a @ a.T + 0.2 * np.eye(3), np.diag([0.3, 1.5, 0.7])])
    return w, m, c


def np_log_mixture(x, w, m, c):
    comps = np.stack([np.log(wk) + multivariate_normal(mk, ck).logpdf(x) for wk, mk, ck in zip(w, m, c)])
    return np.logaddexp.reduce(comps, axis=0)


@pytest.fixture
def mix():
    w, m, c = mixture3()
    return sl.Density.mixture(w, m, c), (w, m, c)


def test_log_density_matches_scipy(mix, rng):
    p, (w, m, c) = mix
    x = rng.normal(size=(50, 3)) * 2
    np.testing.assert_allclose(p.log_density(x), np_log_mixture(x, w, m, c), rtol=CLOSED, atol=CLOSED)


def central_grad(f, x, h=1e-4):
    g = np.zeros_like(x)
    for j in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[j] = h
        g[:, j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def test_score_is_gradient_of_log_density(mix, rng):
    p, _ = mix
    x = rng.normal(size=(20, 3))
    np.testing.assert_allclose(p.score(x), central_grad(p.log_density, x), atol=FD)


def test_noised_is_the_convolution(mix, rng):
    p, (w, m, c) = mix
    s = 0.7
    x = rng.normal(size=(20, 3))
    want = np_log_mixture(x, w, m, c + s * s * np.eye(3))
    np.testing.assert_allclose(p.noised(s).log_density(x), want, rtol=CLOSED)
    np.testing.assert_allclose(p.noised_score(x, s), central_grad(lambda y: np_log_mixture(y, w, m, c + s * s * np.eye(3)), x), atol=FD)
    # One σ per row: row i at σᵢ.
    sig = np.linspace(0.1, 2.0, 20)
    per = p.noised_score(x, sig)
    for i in [0, 7, 19]:
        np.testing.assert_allclose(per[i], p.noised_score(x[i : i + 1], sig[i])[0], rtol=CLOSED)


def test_samples_have_the_moments(mix):
    p, (w, m, c) = mix
    x = p.sample(200_000, seed=3)
    mean = (w[:, None] * m).sum(0)
    # The mean of 200 000 draws: 5 standard errors of each coordinate.
    se = np.sqrt(np.diag(p.cov()) / len(x))
    assert np.all(np.abs(x.mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(p.mean(), mean, rtol=CLOSED)
    # The same seed, the same draws; another seed, others.
    assert np.array_equal(p.sample(10, seed=3), x[:10])
    assert not np.array_equal(p.sample(10, seed=4), x[:10])


SCHEDULES = [
    sl.Schedule.ve(0.01, 50.0),
    sl.Schedule.vp(),
    sl.Schedule.subvp(),
    sl.Schedule.edm(),
    sl.Schedule.linear(),
]


def np_alpha_sigma(spec, t):
    if spec["kind"] == "ve":
        return 1.0, spec["sigma_min"] * (spec["sigma_max"] / spec["sigma_min"]) ** t
    if spec["kind"] == "edm":
        return 1.0, t
    if spec["kind"] == "linear":
        return 1.0 - t, t / (1.0 - t)
    b = spec["beta_min"] * t + 0.5 * (spec["beta_max"] - spec["beta_min"]) * t * t
    a = np.exp(-0.5 * b)
    return a, (np.sqrt(a ** -2 - 1) if spec["kind"] == "vp" else (1 - a * a) / a)


@pytest.mark.parametrize("s", SCHEDULES, ids=lambda s: s.kind)
def test_schedule_against_its_formulas(s):
    ts = np.linspace(max(s.t_end, 0.05), s.t_max * 0.95, 7)
    for t in ts:
        a, sig = np_alpha_sigma(s.spec, t)
        assert abs(s.alpha(t) - a) < CLOSED * max(1, a)
        assert abs(s.sigma(t) - sig) < CLOSED * max(1, sig)
        h = 1e-6 * max(1.0, t)
        assert abs(s.alpha_dot(t) - (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)) < 1e-5 * max(1, abs(s.alpha_dot(t)))
        assert abs(s.sigma_dot(t) - (s.sigma(t + h) - s.sigma(t - h)) / (2 * h)) < 1e-5 * max(1, abs(s.sigma_dot(t)))
        # The SDE's coefficients from the kernel: f = α̇/α, g² = 2α²σ̃σ̃̇.
        assert abs(s.drift(t) - s.alpha_dot(t) / s.alpha(t)) < CLOSED * max(1, abs(s.drift(t)))
        assert abs(s.g2(t) - 2 * s.alpha(t) ** 2 * s.sigma(t) * s.sigma_dot(t)) < 1e-9 * max(1, s.g2(t))
    np.testing.assert_allclose(s.alpha(ts), [s.alpha(t) for t in ts])
    grid = s.times(10)
    assert grid.shape == (11,) and grid[0] == s.t_max and np.all(np.diff(grid) < 0)
    np.testing.assert_allclose(s.sigmas(10), [s.sigma(t) for t in grid])


def test_edm_grid_is_karras():
    s = sl.Schedule.edm(0.002, 80.0, 7.0)
    n = 18
    i = np.arange(n)
    want = (80.0 ** (1 / 7) + i / (n - 1) * (0.002 ** (1 / 7) - 80.0 ** (1 / 7))) ** 7
    np.testing.assert_allclose(s.sigmas(n)[:-1], want, rtol=1e-12)
    assert s.sigmas(n)[-1] == 0.0


@pytest.mark.parametrize("s", SCHEDULES, ids=lambda s: s.kind)
def test_diffusion_marginal_score_denoiser_velocity(mix, s, rng):
    p, (w, m, c) = mix
    d = sl.Diffusion(p, s)
    t = 0.3 if s.kind != "edm" else 1.7
    a, sig = s.alpha(t), s.sigma(t)
    cov_t = a * a * (c + sig * sig * np.eye(3))
    x = rng.normal(size=(15, 3)) * a * 2
    # p_t: means α μₖ, covariances α²(Σₖ + σ̃²I).
    np.testing.assert_allclose(d.marginal(t).log_density(x), np_log_mixture(x, w, a * m, cov_t), rtol=1e-9)
    np.testing.assert_allclose(d.score(x, t), central_grad(lambda y: np_log_mixture(y, w, a * m, cov_t), x, h=1e-4 * a), rtol=1e-4, atol=1e-4)
    # E[x₀ | x_t]: posterior component weights times each component's Gaussian posterior mean.
    y = x / a
    post = np.stack([np.log(wk) + multivariate_normal(mk, ck + sig * sig * np.eye(3)).logpdf(y) for wk, mk, ck in zip(w, m, c)])
    post = np.exp(post - np.logaddexp.reduce(post, axis=0))
    means = np.stack([mk + (y - mk) @ np.linalg.solve(ck + sig * sig * np.eye(3), ck).T for mk, ck in zip(m, c)])
    want = (post[:, :, None] * means).sum(0)
    np.testing.assert_allclose(d.denoiser(x, t), want, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(d.noise(x, t), (y - want) / sig, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("s", SCHEDULES, ids=lambda s: s.kind)
def test_velocity_is_the_derivative_of_the_gaussian_flow(s):
    # For p = N(μ, v I) the probability-flow map is x(t) = α(t)(μ + √(v + σ̃(t)²) u), u fixed.
    mu, v = np.array([1.0, -2.0]), 0.6
    p = sl.Density.gaussian(mu, v * np.eye(2))
    d = sl.Diffusion(p, s)
    u = np.array([[0.3, -1.2], [2.0, 0.1]])
    x_of = lambda t: s.alpha(t) * (mu + np.sqrt(v + s.sigma(t) ** 2) * u)
    t = 0.4 if s.kind != "edm" else 2.0
    h = 1e-5 * max(1.0, t)
    fd = (x_of(t + h) - x_of(t - h)) / (2 * h)
    np.testing.assert_allclose(d.velocity(x_of(t), t), fd, rtol=1e-6, atol=1e-6)


def test_denoiser_callable_in_k_diffusion_convention(mix, rng):
    p, _ = mix
    den = p.denoiser()
    x = rng.normal(size=(6, 3))
    d = sl.Diffusion(p, sl.Schedule.edm())
    np.testing.assert_allclose(den(x, 1.5), d.denoiser(x, 1.5), rtol=1e-12)
    sig = np.array([0.5, 0.5, 1.0, 1.0, 2.0, 0.0])
    out = den(x, sig)
    for i, s_i in enumerate(sig):
        want = x[i] if s_i == 0 else d.denoiser(x[i : i + 1], s_i)[0]
        np.testing.assert_allclose(out[i], want, rtol=1e-12)
    assert den.calls == 2 and den.evals == 12
    den.reset()
    assert den.calls == 0


def test_toys():
    t = sl.Toy("checkerboard")
    x = t.sample(500, seed=0)
    assert np.all(t.log_density(x) == -np.log(32.0))
    g = sl.Toy("8gaussians").density()
    np.testing.assert_allclose(sl.Toy("8gaussians").log_density(x), g.log_density(x), rtol=CLOSED)
    with pytest.raises(sl.ScorelabError, match="no closed-form density"):
        sl.Toy("moons").log_density(x)
    with pytest.raises(sl.ScorelabError, match="name"):
        sl.Toy("donut")


def test_separated_mixture_family():
    p = sl.targets.separated_mixture(64, 16, seed=0)
    assert p.dim == 64 and len(p.spec["weights"]) == 16
    assert p.spec == sl.targets.separated_mixture(64, 16, seed=0).spec
    # Exact draws are assigned to their own modes: the fractions match the weights.
    w = sl.mode_weights(p.sample(20_000, seed=1), p)
    assert np.all(np.abs(w["value"] - w["truth"]) < 5 * np.sqrt(w["truth"] * (1 - w["truth"]) / 20_000))


def test_the_linear_paths_velocity_is_the_flow_matching_target():
    # x_t = (1 − t)x₀ + tε with x₀ ~ N(μ, Σ), ε ~ N(0, I): the flow-matching target
    # u = E[ε − x₀ | x_t] by Gaussian conditioning of the joint (x₀, ε, x_t), in numpy.
    mu = np.array([1.0, -0.5])
    cov = np.array([[1.0, 0.3], [0.3, 0.4]])
    p = sl.Density.gaussian(mu, cov)
    d = sl.Diffusion(p, sl.Schedule.linear())
    rng = np.random.default_rng(0)
    for t in [0.1, 0.5, 0.9]:
        x = rng.normal(size=(6, 2))
        a = 1 - t
        c_xx = a * a * cov + t * t * np.eye(2)
        # Cov(ε − x₀, x_t) = t I − a Σ; E[ε − x₀] = −μ; E[x_t] = aμ.
        c_ux = t * np.eye(2) - a * cov
        want = -mu + (x - a * mu) @ np.linalg.solve(c_xx, c_ux.T)
        np.testing.assert_allclose(d.velocity(x, t), want, rtol=1e-9, atol=1e-12)
        # and as the parameterisations convert: u = (x − D)/t.
        np.testing.assert_allclose(d.velocity(x, t), (x - d.denoiser(x, t)) / t, rtol=1e-9, atol=1e-12)


def test_the_likelihood_through_the_linear_paths_ode():
    p = sl.Density.gaussian([0.5, -1.0], [[1.0, 0.4], [0.4, 0.6]])
    x = p.sample(6, seed=2)
    s = sl.Schedule.linear()
    # The marginal at the ODE's start t_min, closed form; with the exact p_T at the end (the
    # Gaussian prior N(0, t_max² I) would leave out p_T's (1 − t_max)x₀ part), to solver tolerance.
    want = sl.Diffusion(p, s).marginal(s.t_end).log_density(x)
    exact_prior = sl.likelihood(x, target=p, schedule=s, rtol=1e-8, atol=1e-8, prior="exact")
    np.testing.assert_allclose(exact_prior.log_p, want, atol=1e-6)

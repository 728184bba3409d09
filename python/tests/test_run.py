"""Sampling and likelihoods: the CLI's numbers, Python callables, and a scipy ODE."""

import os
import pathlib
import subprocess

import numpy as np
import pytest
from scipy.integrate import solve_ivp

import scorelab as sl

ROOT = pathlib.Path(__file__).resolve().parents[2]


def cli():
    b = os.environ.get("SCORELAB_BIN") or str(ROOT / "target" / "release" / "scorelab")
    if not os.path.exists(b):
        pytest.skip("the scorelab binary is not built (cargo build --release, or set SCORELAB_BIN)")
    return b


def read_csv(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)


MIXTURE = """
seed = 7
chains = 64
density = { kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }
[sampler]
kind = "pc"
steps = 30
snr = 0.16
schedule = { kind = "vp" }
"""


def test_sample_matches_the_cli_byte_for_byte(tmp_path):
    (tmp_path / "s.toml").write_text(MIXTURE)
    subprocess.run([cli(), "sample", "--config", str(tmp_path / "s.toml"), "--out", str(tmp_path / "s.csv")], check=True, capture_output=True)
    want = read_csv(tmp_path / "s.csv")
    p = sl.targets.paper_mixture()
    got = sl.sample({"kind": "pc", "steps": 30, "snr": 0.16, "schedule": {"kind": "vp"}}, target=p, chains=64, seed=7)
    assert got.shape == (64, 2)
    # The CLI writes shortest round-trip decimals: parsed back they are the same doubles.
    assert np.array_equal(got, want)


def test_likelihood_matches_the_cli_byte_for_byte(tmp_path):
    p = sl.targets.paper_mixture()
    x = p.sample(20, seed=1)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header="x0,x1", comments="", fmt="%.17g")
    (tmp_path / "l.toml").write_text(
        'seed = 3\ndivergence = "hutchinson"\nprojections = 4\n'
        'density = { kind = "gaussian_mixture", weights = [0.8, 0.2], means = [[5.0, 5.0], [-5.0, -5.0]], covs = [[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]] }\n'
    )
    subprocess.run([cli(), "likelihood", "--config", str(tmp_path / "l.toml"), "--points", str(tmp_path / "x.csv"), "--out", str(tmp_path / "l.csv")], check=True, capture_output=True)
    want = read_csv(tmp_path / "l.csv")
    r = sl.likelihood(x, target=p, divergence="hutchinson", projections=4, seed=3)
    assert np.array_equal(r.log_p, want[:, 0]) and np.array_equal(r.log_p_se, want[:, 1])
    assert np.array_equal(r.bits_per_dim, want[:, 2])


def test_a_python_denoiser_gives_the_targets_chains():
    p = sl.targets.paper_mixture()
    spec = {"kind": "heun", "steps": 12}
    exact = sl.sample(spec, target=p, chains=50, seed=2)
    den = p.denoiser()
    got, evals = sl.sample(spec, denoiser=den, dim=2, chains=50, seed=2, return_evals=True)
    # s = (D − x)/σ² against the closed form: equal up to rounding.
    np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-9)
    assert evals == 2 * 12 - 1 and den.calls == evals


def test_a_python_score_drives_langevin():
    g = sl.Density.gaussian([1.0, -1.0], np.eye(2))
    x = sl.sample({"kind": "langevin", "eps": 0.05, "steps": 400}, score=g.score, dim=2, chains=4000, seed=0,
                  init={"kind": "gaussian", "std": 1.0})
    # ULA's stationary law on N(μ, I) is N(μ, I/(1 − ε/4)): the mean within 5 SE.
    assert np.all(np.abs(x.mean(0) - [1.0, -1.0]) < 5 * np.sqrt(1 / (1 - 0.05 / 4) / 4000))


def gaussian_fns(mu, cov):
    """A Gaussian's exact noised score and its JVP in numpy: s = −(Σ + σ²I)⁻¹(x − μ)."""
    d = len(mu)
    inv = lambda s: np.linalg.inv(cov + s * s * np.eye(d))
    score = lambda x, s: -(x - mu) @ inv(s).T
    jvp = lambda x, s, v: -(v @ inv(s).T)
    return score, jvp


def scipy_likelihood(x0, mu, cov, beta=(0.1, 20.0), t_min=1e-5):
    """log p_{t_min}(x) under VP by the instantaneous change of variables, with scipy's RK45."""
    d = len(mu)
    b0, b1 = beta
    B = lambda t: b0 * t + 0.5 * (b1 - b0) * t * t
    out = []
    for x in x0:
        def f(t, z):
            y = z[:d]
            beta_t = b0 + t * (b1 - b0)
            a = np.exp(-0.5 * B(t))
            sig2 = np.expm1(B(t))
            # p_t = N(αμ, α²(Σ + σ̃²I)); dx/dt = −½β(x + ∇log p_t(x)).
            ct = a * a * (cov + sig2 * np.eye(d))
            inv = np.linalg.inv(ct)
            s = -inv @ (y - a * mu)
            dy = -0.5 * beta_t * (y + s)
            div = -0.5 * beta_t * (d - np.trace(inv))
            return np.concatenate([dy, [div]])
        sol = solve_ivp(f, (t_min, 1.0), np.concatenate([x, [0.0]]), rtol=1e-10, atol=1e-10)
        zT, dl = sol.y[:d, -1], sol.y[d, -1]
        log_prior = -0.5 * zT @ zT - 0.5 * d * np.log(2 * np.pi)
        out.append(log_prior + dl)
    return np.array(out)


def test_likelihood_of_a_gaussian_against_a_scipy_ode():
    mu = np.array([0.5, -1.0])
    cov = np.array([[1.0, 0.4], [0.4, 0.6]])
    p = sl.Density.gaussian(mu, cov)
    x = p.sample(8, seed=5)
    want = scipy_likelihood(x, mu, cov)
    r = sl.likelihood(x, target=p, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(r.log_p, want, atol=1e-5)
    # With a Python score and its JVP: the exact trace by D products.
    score, jvp = gaussian_fns(mu, cov)
    rp = sl.likelihood(x, score=score, jvp=jvp, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(rp.log_p, r.log_p, atol=1e-7)
    # And as a denoiser: D = x + σ²s, its JVP I + σ²J.
    den = lambda y, s: y + s * s * score(y, s)
    den_jvp = lambda y, s, v: v + s * s * jvp(y, s, v)
    rd = sl.likelihood(x, denoiser=den, jvp=den_jvp, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(rd.log_p, r.log_p, atol=1e-6)


def test_hutchinson_from_python_is_unbiased():
    # A full covariance: with a diagonal Jacobian a Rademacher probe would be exact (v_i² = 1).
    mu, cov = np.zeros(3), np.array([[1.0, 0.6, 0.2], [0.6, 1.0, -0.3], [0.2, -0.3, 0.5]])
    score, jvp = gaussian_fns(mu, cov)
    x = np.array([[0.3, -0.2, 1.0]])
    exact = sl.likelihood(x, score=score, jvp=jvp).log_p[0]
    h = sl.likelihood(np.repeat(x, 400, axis=0), score=score, jvp=jvp, divergence="hutchinson", probe="gaussian", seed=1)
    se = h.log_p.std(ddof=1) / np.sqrt(len(h.log_p))
    assert se > 1e-3  # the probes do vary
    assert abs(h.log_p.mean() - exact) < 5 * se


def test_a_python_score_without_a_jvp_is_refused():
    score, _ = gaussian_fns(np.zeros(2), np.eye(2))
    with pytest.raises(sl.ScorelabError, match="jvp"):
        sl.likelihood(np.zeros((2, 2)), score=score)
    with pytest.raises(sl.ScorelabError, match="jvp.*Hutchinson|Hutchinson"):
        sl.likelihood(np.zeros((2, 2)), score=score, divergence="hutchinson")


def test_train_a_model_from_a_dict_and_use_it(tmp_path):
    config = {
        "seed": 0,
        "data": {"density": {"kind": "standard_normal", "dim": 2}},
        "model": {"kind": "noise_conditional_mlp", "hidden": [32]},
        "objective": {"kind": "dsm_continuous", "sigma_min": 0.01, "sigma_max": 5.0},
        "train": {"steps": 300, "batch": 128},
    }
    m = sl.train(config, out=tmp_path / "run")
    assert m.steps == 300 and m.dim == 2 and m.noise_conditional
    loaded = sl.Model(tmp_path / "run")
    x = np.random.default_rng(0).normal(size=(10, 2))
    np.testing.assert_array_equal(loaded.noised_score(x, 1.0), m.noised_score(x, 1.0))
    np.testing.assert_allclose(m.denoiser(x, 1.0), x + m.noised_score(x, 1.0), rtol=1e-12)
    # The structured trace against central differences of the f32 score (f32: 1e-2).
    h = 1e-2
    fd = sum((m.noised_score(x + h * e, 1.0)[:, j] - m.noised_score(x - h * e, 1.0)[:, j]) / (2 * h)
             for j, e in enumerate(np.eye(2)))
    np.testing.assert_allclose(m.trace(x, 1.0), fd, atol=2e-2)
    # Sampling and likelihood through the model, as the CLI would from the folder.
    y = sl.sample({"kind": "heun", "steps": 10, "schedule": {"kind": "edm", "sigma_min": 0.01, "sigma_max": 5.0}},
                  model=tmp_path / "run", chains=20, seed=0)
    assert y.shape == (20, 2) and np.all(np.isfinite(y))
    r = sl.likelihood(x, model=m, schedule={"kind": "ve", "sigma_min": 0.01, "sigma_max": 5.0})
    assert np.all(np.isfinite(r.log_p))
    with pytest.raises(sl.ScorelabError, match="not empty"):
        sl.train(config, out=tmp_path / "run")
    with pytest.raises(sl.ScorelabError, match=r"config\[train.steps\]|train.steps"):
        sl.train({**config, "train": {"steps": -1}})


def test_every_solver_from_python_and_a_start_from_given_points():
    p = sl.targets.paper_mixture()
    x0 = np.array([[80.0, -3.0], [0.5, 0.25], [-40.0, 12.0]])
    for kind in ["dpmpp_2m", "dpmpp_3m", "dpmpp_2m_sde", "unipc", "dpm2", "euler_ancestral"]:
        x = sl.sample({"kind": kind, "steps": 30, "grid": "karras"}, target=p, chains=3, seed=0, init=x0)
        assert x.shape == (3, 2) and np.all(np.isfinite(x))
    # Deterministic solvers from the same points: the same output whatever the seed.
    a = sl.sample({"kind": "unipc", "steps": 30}, target=p, chains=3, seed=0, init=x0)
    b = sl.sample({"kind": "unipc", "steps": 30}, target=p, chains=3, seed=9, init=x0)
    assert np.array_equal(a, b)
    with pytest.raises(sl.ScorelabError, match="init"):
        sl.sample({"kind": "unipc", "steps": 30}, target=p, chains=4, seed=0, init=x0)
    with pytest.raises(sl.ScorelabError, match="eta"):
        sl.sample({"kind": "unipc", "steps": 30, "eta": 0.5}, target=p, chains=3)


def test_guidance_from_python():
    p = sl.targets.paper_mixture()
    g = sl.sample({"kind": "heun", "steps": 18}, target=p, chains=500, seed=0, guidance={"weight": 2.0, "class": [1]})
    # The class is the (−5, −5) component: guided samples all land there.
    w = sl.mode_weights(g, p)
    assert w["value"][1] > 0.99
    with pytest.raises(sl.ScorelabError, match="guidance.class"):
        sl.sample({"kind": "heun", "steps": 18}, target=p, chains=5, guidance={"weight": 2.0, "class": [5]})


def test_flow_matching_trains_and_samples_on_its_path():
    mu = np.array([2.0, -1.0])
    config = {
        "seed": 0,
        "data": {"density": {"kind": "gaussian", "mean": mu.tolist(), "cov": [[0.5, 0.0], [0.0, 0.5]]}},
        # EDM's preconditioning feeds the network c_in·y, of unit scale at every σ̃ (y = x_t/(1 − t)
        # reaches 1000 at t = 0.999).
        "model": {"kind": "noise_conditional_mlp", "hidden": [64, 64], "precondition": "edm"},
        "objective": {"kind": "flow_matching", "coupling": "ot"},
        "train": {"steps": 1500, "batch": 128, "lr": 2e-3},
    }
    m = sl.train(config)
    assert m.sigma_range == pytest.approx((1e-3 / (1 - 1e-3), 0.999 / 0.001))
    x = sl.sample({"kind": "ode", "solver": "euler", "steps": 50, "schedule": {"kind": "linear"}},
                  model=m, chains=4000, seed=0)
    # Started from N(0, I), the learned flow carries the points to the target: the mean moves
    # from 0 to μ (within 0.2 of each coordinate; an untrained flow would leave it near 0).
    assert np.all(np.abs(x.mean(0) - mu) < 0.2)


def test_guided_sampling_is_not_the_tilted_law():
    # Two classes of one unit Gaussian each at (∓1, 0); class c = the one at (+1, 0). Guidance at
    # σ = 0 is the score of p(x|c)^{1+w} p(x)^{−w}, whose mean (by quadrature on a grid) is what
    # guided sampling is often said to reach. The probability-flow ODE with guidance at every σ
    # overshoots it: its samples' mean lies beyond the tilted law's by far more than their
    # standard error; at w = 0 both are p(x|c).
    from scipy.stats import multivariate_normal as mvn

    p = sl.Density.mixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], [np.eye(2), np.eye(2)])
    g = np.linspace(-8, 8, 641)
    xx, yy = np.meshgrid(g, g)
    pts = np.stack([xx.ravel(), yy.ravel()], 1)
    lc, lp = mvn([1.0, 0.0], np.eye(2)).logpdf(pts), p.log_density(pts)
    ode = {"kind": "ode", "solver": "rk45", "schedule": {"kind": "edm"}}
    for w in [0.0, 3.0]:
        lt = (1 + w) * lc - w * lp
        t = np.exp(lt - lt.max())
        t /= t.sum()
        tilted_mean = (pts[:, 0] * t).sum()
        x = sl.sample(ode, target=p, chains=5000, seed=1, guidance={"weight": w, "class": [1]})
        se = x[:, 0].std(ddof=1) / np.sqrt(len(x))
        if w == 0:
            assert abs(x[:, 0].mean() - tilted_mean) < 5 * se
        else:
            assert x[:, 0].mean() - tilted_mean > 20 * se

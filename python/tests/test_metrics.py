"""Metrics against independent numpy/scipy computations, and the ESM = ISM + C audit."""

import numpy as np
import pytest
from scipy.linalg import sqrtm

import scorelab as sl


def np_mmd2(x, y, h):
    k = lambda a, b: np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * h * h))
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    return (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()


def test_mmd2_against_numpy(rng):
    x, y = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) + 0.5
    e = sl.mmd2(x, y, bandwidth=1.3, permutations=0)
    assert abs(e.value - np_mmd2(x, y, 1.3)) < 1e-12 and e.bandwidth == 1.3 and e.p_value is None
    # The default bandwidth is the pooled median distance.
    z = np.vstack([x, y])
    dist = np.sqrt(((z[:, None] - z[None]) ** 2).sum(-1))[np.triu_indices(len(z), 1)]
    assert abs(sl.mmd2(x, y, permutations=0).bandwidth - np.median(dist)) < 1e-9


def test_mmd2_permutation_test_at_its_level():
    # Same law: p-values uniform; at 5% about 5 of 100 reject (binomial: at most 13 at 1e-3).
    p = sl.Density.standard_normal(2)
    rejections = sum(
        sl.mmd2(p.sample(40, seed=2 * i), p.sample(40, seed=2 * i + 1), permutations=99, seed=i).p_value < 0.05
        for i in range(100)
    )
    assert rejections <= 13
    far = sl.mmd2(p.sample(40, seed=0), p.sample(40, seed=1) + 2.0, permutations=99)
    assert far.p_value == 0.01


def test_frechet_against_scipy(rng):
    x, y = rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) @ np.diag([1.0, 2.0, 0.5]) + 1.0
    mx, my = x.mean(0), y.mean(0)
    cx, cy = np.cov(x.T), np.cov(y.T)
    want = ((mx - my) ** 2).sum() + np.trace(cx + cy - 2 * np.real(sqrtm(cx @ cy)))
    assert abs(sl.frechet_distance(x, y) - want) < 1e-8 * max(1, want)


def test_sliced_w2_in_one_dimension_is_w2(rng):
    # In 1-D every direction is ±1: SW₂ is W₂ between the empirical laws, the sorted differences.
    x, y = rng.normal(size=(100, 1)), rng.normal(size=(100, 1)) * 2 + 1
    want = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    e = sl.sliced_w2(x, y, projections=10)
    assert abs(e.value - want) < 1e-12
    g = sl.Density.standard_normal(1)
    e, floor = sl.sliced_w2(x, y, projections=10, floor=g)
    assert floor.value < e.value


def test_ksd_is_zero_in_expectation_for_the_target():
    p = sl.targets.paper_mixture()
    k = sl.ksd(p.sample(500, seed=0), p, bootstrap=200)
    assert k.p_value > 0.01
    bad = sl.ksd(p.sample(500, seed=0) * 1.3, p, bootstrap=200)
    assert bad.p_value < 0.01 and bad.value > k.value


def test_mode_weights_against_numpy_responsibilities(rng):
    p = sl.targets.paper_mixture()
    x = rng.normal(size=(400, 2)) * 4
    w = sl.mode_weights(x, p)
    # Component of largest wₖN(x; μₖ, I): the nearer mean, the 0.8 one winning ties by log 4.
    d0 = ((x - 5) ** 2).sum(1) / 2 - np.log(0.8)
    d1 = ((x + 5) ** 2).sum(1) / 2 - np.log(0.2)
    frac1 = np.mean(d1 < d0)
    np.testing.assert_allclose(w["value"], [1 - frac1, frac1], atol=1e-12)
    np.testing.assert_allclose(w["truth"], [0.8, 0.2])


def test_esm_audit_recovers_the_constant():
    # Model N(0, ½) on N(0, 1): s_m = −2x, s_p = −x. ESM = ½E[x²] = ½, ISM = E[2x² − 2] = 0,
    # C = ½E[x²] = ½: the gap ESM − ISM is C, z of order 1.
    p = sl.Density.standard_normal(1)
    q = sl.Density.gaussian([0.0], [[0.5]])
    a = sl.esm_audit(p, q, n=20000, seed=0)
    assert a["constant"] == 0.5
    assert abs(a["esm"]["value"] - 0.5) < 5 * a["esm"]["se"]
    assert abs(a["ism"]["value"] - 0.0) < 5 * a["ism"]["se"]
    assert abs(a["z"]) < 5
    # A trained clean model goes through the same audit.
    m = sl.train({
        "seed": 1,
        "data": {"density": {"kind": "standard_normal", "dim": 1}},
        "model": {"kind": "mlp", "hidden": [16]},
        "objective": {"kind": "ism"},
        "train": {"steps": 200, "batch": 64},
    })
    b = sl.esm_audit(p, m, n=5000)
    assert abs(b["z"]) < 5 and b["samples"] == 5000
    x = np.linspace(-2, 2, 5)[:, None]
    assert m.score(x).shape == (5, 1)

"""The sampler audit against known answers: a correct sampler converges to the truth, a wrong one
shows up in the numbers that its error predicts."""

import numpy as np
import pytest

import scorelab as sl


def euler(denoiser, x, sigmas):
    """Euler on the probability-flow ODE dx/dσ = (x − D(x, σ))/σ (DDIM with η = 0)."""
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):
        x = x + (s1 - s0) * (x - denoiser(x, s0)) / s0
    return x


def euler_off_by_one(denoiser, x, sigmas):
    """The scheduler bug: every step evaluates the denoiser at the next σ instead of this one."""
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):
        s_eval = s1 if s1 > 0 else s0
        x = x + (s1 - s0) * (x - denoiser(x, s_eval)) / s_eval
    return x


def euler_no_final_step(denoiser, x, sigmas):
    """The other classic: the last step, to σ = 0 (the final denoising), is skipped."""
    return euler(denoiser, x, sigmas[:-1])


def ancestral(denoiser, x, sigmas, rng):
    """Euler ancestral (k-diffusion's sample_euler_ancestral with η = 1)."""
    for s0, s1 in zip(sigmas[:-1], sigmas[1:]):
        d = denoiser(x, s0)
        s_up = min(s1, np.sqrt(s1 ** 2 * (s0 ** 2 - s1 ** 2) / s0 ** 2))
        s_down = np.sqrt(s1 ** 2 - s_up ** 2)
        x = x + (s_down - s0) * (x - d) / s0
        if s1 > 0:
            x = x + rng.standard_normal(x.shape) * s_up
    return x


@pytest.fixture(scope="module")
def correct():
    return sl.audit(euler, sl.targets.paper_mixture(), nfe=[4, 16, 64, 256], chains=400, seeds=[0, 1, 2, 3])


def test_a_correct_sampler_converges_to_the_truth(correct):
    rows = correct.select("euler")
    flow = [r["flow_error"] for r in rows]
    # Euler is first order: the flow-map error falls with the budget, by about 4× per 4× here.
    assert all(b < a for a, b in zip(flow, flow[1:]))
    assert flow[-1] < flow[-2] / 2.5
    last = rows[-1]
    f = correct.floor
    # At 256 evaluations the samples' mean log p and mode weights are at the exact draws' level.
    assert abs(last["log_p"] - f["log_p"]) < 5 * np.hypot(last["log_p_se"], f["log_p_se"])
    assert last["weight_error"] < 0.05
    assert [r["evals"] for r in rows] == [4, 16, 64, 256]
    # Per mode: exact draws' mean errors are sampling error, E‖m̂ₖ − μₖ‖ = √(π/(2nₖ)) for nₖ
    # unit-covariance 2-D draws (a Rayleigh mean); the minority mode (nₖ = 80 of 400) has twice
    # the majority's (320). Four seeds: within a factor 2 of the prediction.
    assert last["mean_errors"].shape == (2,) and last["cov_errors"].shape == (2,)
    pred = np.sqrt(np.pi / (2 * 400 * np.array([0.8, 0.2])))
    assert np.all(np.abs(np.log(correct.floor["mean_errors"] / pred)) < np.log(2))
    assert correct.floor["mean_errors"][1] > correct.floor["mean_errors"][0]


def test_the_reference_curves_run_through_the_same_loop(correct):
    heun = correct.select("scorelab heun")
    assert len(heun) == 4 and all(r["evals"] <= b for r, b in zip(heun, [4, 16, 64, 256]))
    # Heun is second order: at the largest budget it is closer to the flow map than Euler.
    assert heun[-1]["flow_error"] < correct.select("euler")[-1]["flow_error"]


def test_an_off_by_one_sigma_grid_shows_up():
    p = sl.targets.paper_mixture()
    a = sl.audit(euler_off_by_one, p, nfe=[16, 64, 256], chains=400, seeds=[0, 1, 2, 3], reference=[])
    good = sl.audit(euler, p, nfe=[16, 64, 256], chains=400, seeds=[0, 1, 2, 3], reference=[])
    bad, ok = a.select("euler_off_by_one")[-1], good.select("euler")[-1]
    # Evaluating at the wrong σ is an O(1) error per step on the coarse part of the grid: the
    # flow-map error at 256 evaluations stays far above the correct sampler's.
    assert bad["flow_error"] > 5 * ok["flow_error"]
    assert bad["flow_error"] - ok["flow_error"] > 10 * np.hypot(bad["flow_error_se"], ok["flow_error_se"])


def test_a_missing_final_denoising_step_shows_up():
    # A VE grid that ends at σ = 0.3: skipping the last step leaves noise of sd 0.3 in the
    # samples, and for unit-covariance modes E log p(x₀ + 0.3z) − E log p(x₀) ≈ ½·0.09·tr ∇²log p
    # = −0.09: the mean log p falls by 0.09 below the exact draws'. The correct sampler's last
    # step to σ = 0 is the denoiser E[x₀ | x], a posterior mean that contracts the spread: its
    # mean log p rises above the floor instead (collapsed, not over-dispersed).
    p = sl.targets.paper_mixture()
    s = sl.Schedule.ve(0.3, 50.0)
    kw = dict(nfe=[64], chains=4000, seeds=[0, 1, 2, 3, 4, 5], schedule=s, start="exact", reference=[])
    bad = sl.audit(euler_no_final_step, p, **kw)
    ok = sl.audit(euler, p, **kw)
    floor, b, o = bad.floor, bad.rows[0], ok.rows[0]
    drop = floor["log_p"] - b["log_p"]
    assert abs(drop - 0.09) < 5 * np.hypot(b["log_p_se"], floor["log_p_se"])
    assert drop > 5 * np.hypot(b["log_p_se"], floor["log_p_se"])
    assert o["log_p"] > floor["log_p"]


def test_a_stochastic_sampler_gets_no_flow_error_and_converges():
    p = sl.targets.paper_mixture()
    a = sl.audit(ancestral, p, nfe=[8, 128], chains=500, seeds=[0, 1, 2], reference=[], plot=None)
    rows = a.select("ancestral")
    assert all(np.isnan(r["flow_error"]) for r in rows)
    assert rows[-1]["mmd2"] < rows[0]["mmd2"]
    # Reproducible: the same seeds, the same numbers.
    b = sl.audit(ancestral, p, nfe=[8, 128], chains=500, seeds=[0, 1, 2], reference=[])
    assert a.rows[0]["mmd2"] == b.rows[0]["mmd2"]


def test_the_figure_and_the_csv(tmp_path, correct):
    correct.plot(tmp_path / "audit.png")
    assert (tmp_path / "audit.png").stat().st_size > 10_000 and (tmp_path / "audit.svg").exists()
    correct.to_csv(tmp_path / "audit.csv")
    lines = (tmp_path / "audit.csv").read_text().splitlines()
    assert lines[0].startswith("sampler,nfe,steps,evals,log_p,log_p_se") and len(lines) == 1 + 1 + 12
    assert "euler" in correct.table()


def test_a_high_dimensional_mixture():
    p = sl.targets.separated_mixture(64, 16, seed=0)
    a = sl.audit(euler, p, nfe=[8, 32], chains=200, seeds=[0, 1], reference=[])
    r = a.select("euler")
    assert r[1]["flow_error"] < r[0]["flow_error"]
    assert r[1]["weight_error"] < r[0]["weight_error"] or r[1]["weight_error"] < 0.05


def test_bad_samplers_raise_clearly():
    p = sl.targets.paper_mixture()
    with pytest.raises(sl.ScorelabError, match="sampler: raised ZeroDivisionError"):
        sl.audit(lambda d, x, s: 1 / 0, p, nfe=[4], chains=10, seeds=[0, 1], reference=[])
    with pytest.raises(sl.ScorelabError, match="samples"):
        sl.audit(lambda d, x, s: x[:, :1].copy(), p, nfe=[4], chains=10, seeds=[0, 1], reference=[])
    with pytest.raises(sl.ScorelabError, match="nfe"):
        sl.audit(euler, p, nfe=[0], chains=10, seeds=[0, 1])
    with pytest.raises(sl.ScorelabError, match="seeds"):
        sl.audit(euler, p, nfe=[4], chains=10, seeds=[0])
    with pytest.raises(sl.ScorelabError, match="target"):
        sl.audit(euler, sl.Density({"kind": "banana", "a": 1.0, "b": 0.5}), nfe=[4], chains=10, seeds=[0, 1])

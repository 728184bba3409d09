"""Bad input: a clear ScorelabError (a ValueError) naming the argument, before any work; nothing
corrupted; the interpreter released during the work."""

import threading
import time

import numpy as np
import pytest

import scorelab as sl


@pytest.fixture
def p():
    return sl.targets.paper_mixture()


def test_the_error_class():
    assert issubclass(sl.ScorelabError, ValueError)


@pytest.mark.parametrize(
    "x, match",
    [
        (np.zeros(2), r"x: expected shape \(n, 2\), got \[2\]"),
        (np.zeros((3, 3)), r"x: expected shape \(n, 2\), got \(3, 3\)"),
        (np.zeros((0, 2)), "x: has no rows"),
        (np.zeros((3, 2), dtype=np.float32), "float64.*astype"),
        (np.zeros((3, 2), dtype=np.int64), "float64"),
        (np.array([[0.0, np.nan]]), "x: row 0, column 1 is NaN"),
        (np.array([[np.inf, 0.0]]), "x: row 0, column 0 is inf"),
        ("abc", "x: expected a float64 numpy array"),
    ],
)
def test_bad_points(p, x, match):
    with pytest.raises(sl.ScorelabError, match=match):
        p.score(x)


def test_lists_and_strided_arrays_are_read(p, rng):
    x = rng.normal(size=(10, 4))
    strided = x[:, ::2]
    assert not strided.flags.c_contiguous
    np.testing.assert_array_equal(p.score(strided), p.score(np.ascontiguousarray(strided)))
    np.testing.assert_array_equal(p.score(strided.tolist()), p.score(np.ascontiguousarray(strided)))
    fortran = np.asfortranarray(x[:, :2])
    np.testing.assert_array_equal(p.log_density(fortran), p.log_density(np.ascontiguousarray(fortran)))


def test_inputs_are_not_modified(p, rng):
    x = rng.normal(size=(20, 2))
    before = x.copy()
    p.score(x)
    sl.likelihood(x, target=p)
    p.denoiser()(x, 1.0)
    assert np.array_equal(x, before)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sl.Density({"kind": "gaussian", "mean": [0.0], "cov": [[-1.0]]}), "cov"),
        (lambda: sl.Density({"kind": "gaussian_mixture", "weights": [0.5, 0.6], "means": [[0.0], [1.0]], "covs": [[[1.0]], [[1.0]]]}), "weights"),
        (lambda: sl.Density({"kind": "gaussien"}), "gaussien"),
        (lambda: sl.Density({"kind": "gaussian", "mean": [0.0], "cov": [[1.0]], "extra": 1}), "extra"),
        (lambda: sl.Density([1, 2]), "spec: expected a dict"),
        (lambda: sl.Schedule.vp(beta_min=20.0, beta_max=0.1), "beta"),
        (lambda: sl.Schedule({"kind": "ve", "sigma_min": 1.0, "sigma_max": 0.5}), "sigma_max"),
        (lambda: sl.Schedule.edm().sigma(1000.0), "t: 1000 is outside"),
        (lambda: sl.targets.paper_mixture().sample(0, seed=0), "n: must be at least 1"),
        (lambda: sl.targets.paper_mixture().sample(5, seed=-1), "seed"),
        (lambda: sl.targets.paper_mixture().noised(-1.0), "sigma"),
        (lambda: sl.targets.paper_mixture().denoiser()(np.zeros((2, 2)), np.array([1.0, -1.0])), "sigma"),
        (lambda: sl.targets.paper_mixture().denoiser()(np.zeros((2, 2)), np.ones(3)), r"sigma: expected a float or shape \(2,\)"),
        (lambda: sl.Density({"kind": "banana", "a": 1.0, "b": 0.5}).noised(1.0), "closed form"),
        (lambda: sl.sample({"kind": "heun", "steps": 0}, target=sl.targets.paper_mixture()), r"steps"),
        (lambda: sl.sample({"kind": "heun", "steps": 5}), "density or model_dir"),
        (lambda: sl.sample({"kind": "mala", "eps": 0.1, "steps": 5}, score=lambda x: x, dim=2), "mala"),
        (lambda: sl.sample({"kind": "heun", "steps": 5}, score=lambda x, s: x), "dim"),
        (lambda: sl.sample({"kind": "heun", "steps": 5}, score=3, dim=2), "score: must be callable"),
        (lambda: sl.sample({"kind": "heun", "steps": 5}, target=sl.targets.paper_mixture(), chains=0), "chains"),
        (lambda: sl.likelihood(np.zeros((2, 3)), target=sl.targets.paper_mixture()), "3 columns"),
        (lambda: sl.Model("/nonexistent/folder"), "path"),
        (lambda: sl.mmd2(np.zeros((5, 2)), np.zeros((5, 3))), "columns"),
        (lambda: sl.mmd2(np.zeros((5, 2)), np.zeros((5, 2)), bandwidth=0.0), "bandwidth"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(sl.ScorelabError, match=match):
        call()


def test_a_callable_that_raises_or_misbehaves(p):
    spec = {"kind": "heun", "steps": 5}

    def boom(x, s):
        raise RuntimeError("user bug")

    with pytest.raises(RuntimeError, match="user bug"):
        sl.sample(spec, denoiser=boom, dim=2, chains=4)
    with pytest.raises(sl.ScorelabError, match=r"denoiser: must return shape \(4, 2\)"):
        sl.sample(spec, denoiser=lambda x, s: x[:, :1].copy(), dim=2, chains=4)
    with pytest.raises(sl.ScorelabError, match="denoiser: must return a float64 array"):
        sl.sample(spec, denoiser=lambda x, s: x.tolist(), dim=2, chains=4)
    with pytest.raises(sl.ScorelabError, match="denoiser: returned NaN"):
        sl.sample(spec, denoiser=lambda x, s: x * np.nan, dim=2, chains=4)
    # The run stops at the first failure: the callable is not called again after it raised.
    calls = []

    def once(x, s):
        calls.append(s)
        raise KeyError("k")

    with pytest.raises(KeyError):
        sl.sample({"kind": "heun", "steps": 50}, denoiser=once, dim=2, chains=4)
    assert len(calls) == 1


def test_the_interpreter_is_released(p):
    # While one thread integrates likelihoods in Rust, this thread keeps running Python: were the
    # interpreter held for the call, the counter could not advance until it returned.
    x = p.sample(3000, seed=0)
    started, done = threading.Event(), threading.Event()

    def work():
        started.set()
        sl.likelihood(x, target=p, rtol=1e-7, atol=1e-7)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    started.wait()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    assert ticks >= 20, f"the main thread ran only {ticks} times during the call"


def test_the_readme_shows_the_examples_core():
    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    example = (root / "examples" / "python" / "audit_your_sampler.py").read_text()
    section = readme.split("## From Python", 1)[1].split("\n## ", 1)[0]
    blocks = [b.split("```", 1)[0] for b in section.split("```python\n")[1:]]
    assert len(blocks) == 2
    for b in blocks:
        assert b in example, f"README block not in the example:\n{b}"


def test_the_stubs_name_what_the_module_has():
    import ast
    import pathlib

    stub = pathlib.Path(sl.__file__).with_name("_scorelab.pyi")
    tree = ast.parse(stub.read_text())
    named = {n.name for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef))}
    have = {k for k in dir(sl._scorelab) if not k.startswith("__")}
    assert named == have

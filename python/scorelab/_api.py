"""Sampling, likelihoods, training and metrics: thin keyword wrappers over the native module."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Union

import numpy as np

from . import _scorelab as _n
from ._scorelab import Density, Model, Schedule, ScorelabError

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with its standard error and, where the metric has a test of
    "x comes from the target", its p-value."""

    value: float
    se: float
    p_value: Optional[float] = None


@dataclass(frozen=True)
class LikelihoodResult:
    """log p of every point (nats), its standard error over Hutchinson probes (``None`` for
    the exact divergence or one probe), bits/dim, and score evaluations per point."""

    log_p: np.ndarray
    log_p_se: Optional[np.ndarray]
    bits_per_dim: np.ndarray
    score_evals: int


def _spec(obj: Any, arg: str) -> Any:
    if isinstance(obj, (Density, Schedule)):
        return obj.spec
    if obj is None or isinstance(obj, Mapping):
        return obj
    raise ScorelabError(f"{arg}: expected a scorelab.{'Density' if arg == 'target' else 'Schedule'} or a dict, got {type(obj).__name__}")


def _source(config: dict, target: Any, model: Any) -> Optional[Model]:
    if target is not None and model is not None:
        raise ScorelabError("target and model: give one score source, not both")
    if target is not None:
        config["density"] = _spec(target, "target")
    if model is None or isinstance(model, Model):
        return model
    if isinstance(model, (str, os.PathLike)):
        config["model_dir"] = os.fspath(model)
        return None
    raise ScorelabError(f"model: expected a scorelab.Model or a folder path, got {type(model).__name__}")


def sample(
    sampler: Mapping[str, Any],
    *,
    target: Optional[Density] = None,
    model: Union[Model, PathLike, None] = None,
    denoiser: Optional[Callable[[np.ndarray, float], np.ndarray]] = None,
    score: Optional[Callable[..., np.ndarray]] = None,
    dim: Optional[int] = None,
    chains: int = 1280,
    seed: int = 0,
    init: Union[Mapping[str, Any], np.ndarray, None] = None,
    prior: Optional[str] = None,
    noised_score: Optional[str] = None,
    guidance: Optional[Mapping[str, Any]] = None,
    return_evals: bool = False,
) -> Any:
    """Samples with any scorelab sampler, as ``scorelab sample`` does.

    ``sampler`` is a dict with the keys of a config's ``[sampler]`` table, e.g.
    ``{"kind": "heun", "steps": 18}`` or ``{"kind": "ddim", "steps": 50, "schedule": {"kind": "vp"}}``.
    The score comes from exactly one of: ``target`` (an analytic :class:`Density`, its exact
    noised score), ``model`` (a :class:`Model` or a model folder), ``denoiser(x, sigma)`` (a Python
    function returning E[x₀ | x₀ + σz = x], k-diffusion's convention; s = (D − x)/σ²) or
    ``score(x, sigma)`` (``score(x)`` for ``langevin``), called once per evaluation with the whole
    batch ``(chains, dim)`` and ``sigma`` a float. Starting points and noise come from ``seed`` as in
    the CLI, so the same config and seed give the CLI's numbers, bit for bit. ``init`` is a dict
    (``{"kind": "uniform", "low": -8, "high": 8}``, ``{"csv": "start.csv"}``, …) or the starting
    points themselves, an array ``(chains, d)``. ``guidance`` (a mixture ``target`` only) is
    classifier-free guidance, ``{"weight": w, "class": [k, …], "interval": [σ_lo, σ_hi]}``: the
    sampler runs on (1 + w) s(x, σ | c) − w s(x, σ), the class c being the listed components
    (diffusers' guidance scale is 1 + w).

    Returns the samples ``(chains, d)``; with ``return_evals=True`` also the score evaluations per
    chain.
    """
    config: dict[str, Any] = {"seed": seed, "chains": chains, "sampler": dict(sampler)}
    m = _source(config, target, model)
    x0 = None
    if init is not None and not isinstance(init, Mapping):
        x0 = init
    elif init is not None:
        config["init"] = dict(init)
    for k, v in (("prior", prior), ("noised_score", noised_score), ("guidance", guidance)):
        if v is not None:
            config[k] = v
    if (denoiser is not None or score is not None) and (target is not None or model is not None):
        raise ScorelabError("denoiser/score: give one score source; a Python function replaces target and model")
    x, evals = _n._sample(config, model=m, score=score, denoiser=denoiser, dim=dim, x0=x0)
    return (x, evals) if return_evals else x


def likelihood(
    x: np.ndarray,
    *,
    target: Optional[Density] = None,
    model: Union[Model, PathLike, None] = None,
    denoiser: Optional[Callable[[np.ndarray, float], np.ndarray]] = None,
    score: Optional[Callable[[np.ndarray, float], np.ndarray]] = None,
    jvp: Optional[Callable[[np.ndarray, float, np.ndarray], np.ndarray]] = None,
    schedule: Union[Schedule, Mapping[str, Any], None] = None,
    divergence: Optional[str] = None,
    trace: Optional[str] = None,
    projections: Optional[int] = None,
    probe: Optional[str] = None,
    solver: Optional[str] = None,
    rtol: Optional[float] = None,
    atol: Optional[float] = None,
    steps: Optional[int] = None,
    prior: Optional[str] = None,
    dequantize: Any = None,
    dequantize_draws: Optional[int] = None,
    batch: Optional[int] = None,
    seed: int = 0,
) -> LikelihoodResult:
    """log p of every row of ``x`` through the probability-flow ODE, as ``scorelab likelihood``.

    log p₀(x) = log p_T(x_T) + ∫ ∇·F dt with the exact divergence (``divergence="exact"``,
    default) or Hutchinson's estimator (``"hutchinson"``, ``projections`` probes). The score is a
    ``target`` (exact marginal scores), a noise-conditional ``model`` (exact structured trace), or
    a Python ``score(x, sigma)``/``denoiser(x, sigma)`` with ``jvp(x, sigma, v)``, its
    Jacobian–vector product in x (rows of v paired with rows of x); the exact divergence then takes
    D products per evaluation. Without ``jvp`` a Python score is refused: no divergence can be
    formed from values alone. The keys are those of the CLI's config (``schedule`` defaults to VP
    with t_min = 1e-5; ``rtol``/``atol`` 1e-5).
    """
    config: dict[str, Any] = {"seed": seed}
    m = _source(config, target, model)
    if schedule is not None:
        config["schedule"] = _spec(schedule, "schedule")
    for k, v in (
        ("divergence", divergence), ("trace", trace), ("projections", projections), ("probe", probe),
        ("solver", solver), ("rtol", rtol), ("atol", atol), ("steps", steps), ("prior", prior),
        ("dequantize", dequantize), ("dequantize_draws", dequantize_draws), ("batch", batch),
    ):
        if v is not None:
            config[k] = v
    if (denoiser is not None or score is not None) and (target is not None or model is not None):
        raise ScorelabError("denoiser/score: give one score source; a Python function replaces target and model")
    lp, se, bpd, evals = _n._likelihood(x, config, model=m, score=score, denoiser=denoiser, jvp=jvp)
    return LikelihoodResult(lp, se, bpd, evals)


def train(config: Mapping[str, Any], *, out: Optional[PathLike] = None, resume: bool = False) -> Model:
    """Trains a plan given as a dict with the keys of ``scorelab train``'s config, through the
    same validating constructors: in memory (``out=None``), or into the folder ``out`` with its
    checkpoints (an empty or new folder; ``resume=True`` continues the run saved there). Ctrl-C
    stops after the current step; in a folder the last checkpoint is kept."""
    return _n._train(dict(config), out=None if out is None else os.fspath(out), resume=resume)


def mmd2(x: np.ndarray, y: np.ndarray, *, bandwidth: Optional[float] = None, permutations: int = 200, seed: int = 0) -> Estimate:
    """Unbiased MMD² between samples x and y with the RBF kernel exp(−‖a − b‖²/(2h²)) (h the
    pooled median distance unless given; ``.bandwidth`` on the result is the h used), its SE and
    the permutation test's p-value (Gretton et al. 2012)."""
    r = _n._mmd2(x, y, bandwidth=bandwidth, permutations=permutations, seed=seed)
    e = _MmdEstimate(r["value"], r["se"], r["p_value"], r["bandwidth"])
    return e


@dataclass(frozen=True)
class _MmdEstimate(Estimate):
    bandwidth: float = float("nan")


def ksd(x: np.ndarray, target: Density, *, bootstrap: int = 200, seed: int = 0) -> Estimate:
    """Kernel Stein discrepancy of x against the target's score (IMQ kernel, Gorham & Mackey
    2017): √V with its SE and the wild-bootstrap p-value."""
    r = _n._ksd(x, target, bootstrap=bootstrap, seed=seed)
    return Estimate(r["value"], r["se"], r["p_value"])


def sliced_w2(x: np.ndarray, y: np.ndarray, *, projections: int = 200, seed: int = 0, floor: Optional[Density] = None) -> Any:
    """Sliced W₂ between x and y; with ``floor=`` a density, returns ``(estimate, floor)``, the
    floor being the same distance between two exact samples of that density of the same sizes."""
    r = _n._sliced_w2(x, y, projections=projections, seed=seed, floor=floor)
    e = Estimate(r["value"], r["se"], r["p_value"])
    if floor is None:
        return e
    f = r["floor"]
    return e, Estimate(f["value"], f["se"], f["p_value"])


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Squared Fréchet distance ‖μx − μy‖² + tr(Σx + Σy − 2(ΣxΣy)^½) between the Gaussians
    fitted to x and y."""
    return _n._frechet_distance(x, y)


def mode_weights(x: np.ndarray, mixture: Density) -> dict:
    """The fraction of x nearest (by responsibility) each component of ``mixture``: ``value``,
    binomial ``se``, ``p_value`` of ŵₖ = wₖ, and the ``truth`` wₖ."""
    return _n._mode_weights(x, mixture)


def esm_audit(density: Density, model: Union[Model, Density], *, n: int = 20000, seed: int = 0) -> dict:
    """ESM = ISM + C + B (Hyvärinen 2005) for ``model`` on ``density``, on ``n`` exact draws: the
    Monte Carlo ESM, ISM, their paired gap (value, se), C, the boundary term B, and
    z = (gap − C − B)/se, which is of order 1 where the identity holds."""
    return _n._esm_audit(density, model, n=n, seed=seed)

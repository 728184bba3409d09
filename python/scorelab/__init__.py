"""scorelab: the exact truth of score-based generative modelling, from numpy.

For Gaussian and Gaussian-mixture targets everything a diffusion model approximates is known in
closed form: the marginal p_t of x_t = α(t)(x₀ + σ̃(t)z) under every schedule (VE, VP, sub-VP,
EDM), its score, the denoiser E[x₀ | x_t], the noise prediction and the probability-flow
velocity. scorelab computes them exactly, samples with its samplers from a target, a trained
model or your own Python denoiser, integrates exact likelihoods through the probability-flow ODE,
and audits your sampler against the truth (:func:`audit`).

Conventions: points are float64 arrays of shape ``(n, d)``; randomness is given as ``seed=``
(``ChaCha8Rng``; the same seed gives the same numbers on every machine); configs are dicts with
the keys of scorelab's TOML files; bad input raises :class:`ScorelabError` (a ``ValueError``)
naming the argument. Every computation releases the interpreter. ``docs/python.md`` is the guide.
"""

from ._scorelab import (
    Denoiser,
    Density,
    Diffusion,
    Model,
    Schedule,
    ScorelabError,
    Toy,
)
from ._api import (
    Estimate,
    LikelihoodResult,
    esm_audit,
    frechet_distance,
    ksd,
    likelihood,
    mmd2,
    mode_weights,
    sample,
    sliced_w2,
    train,
)
from .audit import AuditResult, audit
from . import targets

__all__ = [
    "AuditResult",
    "Denoiser",
    "Density",
    "Diffusion",
    "Estimate",
    "LikelihoodResult",
    "Model",
    "Schedule",
    "ScorelabError",
    "Toy",
    "audit",
    "esm_audit",
    "frechet_distance",
    "ksd",
    "likelihood",
    "mmd2",
    "mode_weights",
    "sample",
    "sliced_w2",
    "targets",
    "train",
]

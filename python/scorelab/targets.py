"""The audit's targets, each with its exact truth (Gaussian mixtures: every p_σ closed form).

- :func:`paper_mixture`: the paper's 2-D target, 0.8 N((5, 5), I) + 0.2 N((−5, −5), I) (the NCSN
  toy of Song & Ermon 2019), whose minority weight a sampler must recover.
- :func:`eight_gaussians`: FFJORD's ``8gaussians``, eight equal isotropic modes on a circle.
- :func:`separated_mixture`: a stated family in higher dimensions, K well-separated anisotropic
  components in D (default D = 64, K = 16): covariances W Wᵀ/D + ¼I (W with N(0, 1) entries),
  means at radius 16 in uniformly random directions, weights ∝ 1, 2, …, K; drawn from
  ``ChaCha8Rng`` with ``seed`` and rounded to 4 decimals, so the same seed is the same target
  everywhere.
"""

from __future__ import annotations

from . import _scorelab as _n
from ._scorelab import Density, Toy


def paper_mixture() -> Density:
    """0.8 N((5, 5), I) + 0.2 N((−5, −5), I)."""
    eye = [[1.0, 0.0], [0.0, 1.0]]
    return Density.mixture([0.8, 0.2], [[5.0, 5.0], [-5.0, -5.0]], [eye, eye])


def eight_gaussians() -> Density:
    """FFJORD's 8gaussians as the mixture it is."""
    return Toy("8gaussians").density()


def separated_mixture(dim: int = 64, components: int = 16, *, seed: int = 0) -> Density:
    """K well-separated anisotropic Gaussians in D (module docs)."""
    return _n._separated_mixture(dim, components, seed=seed)

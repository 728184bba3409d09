"""The sampler audit: your sampler against the exact truth, budget by budget.

``audit(sampler, target, nfe=[…])`` runs a sampler written in Python — any function
``sampler(denoiser, x, sigmas)`` in k-diffusion's convention (``denoiser(x, sigma)`` returns
E[x₀ | x₀ + σz = x]; ``x`` are the starting points at ``sigmas[0]``; ``sigmas`` decreases to 0) —
on scorelab's exact denoiser of a Gaussian-mixture target, at each evaluation budget and seed, and
measures its output against the truth. Per budget, as the mean over seeds with its standard error:

- ``log_p``: the samples' mean exact log p, beside that of exact draws (``floor``): it falls for
  over-dispersed samples and rises for collapsed ones;
- ``weights`` and ``weight_error`` = maxₖ |ŵₖ − wₖ|: the mass found in each mode (each sample
  assigned to the component of largest responsibility);
- ``mean_errors`` and ``cov_errors``: each mode's ‖m̂ₖ − μₖ‖ and ‖Ĉₖ − Σₖ‖_F/‖Σₖ‖_F (mean over
  seeds), and ``mean_error``, ``cov_error``: the worst mode's, with standard errors;
- ``mmd2``: unbiased MMD² to exact draws at the stated ``bandwidth``, on the first 2000 samples
  of each (the floor is 0 in expectation);
- ``flow_error`` (deterministic samplers): the root-mean-square distance of each output from the
  exact probability-flow map of its own starting point (adaptive Dormand–Prince at ``flow_tol``),
  which isolates the discretisation error from the prior's and the sampling noise.

The budget is the number of denoiser evaluations per sample; the grid for a budget has
``nfe // evals_per_step`` steps, and the evaluations actually made are counted and reported
(``evals``). scorelab's own samplers (``reference``) run through the same loop on the same starting
points, as reference curves. ``.plot(path)`` draws error against evaluations.
"""

from __future__ import annotations

import csv
import inspect
import warnings
import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import numpy as np

from . import _scorelab as _n
from ._scorelab import Density, Schedule, ScorelabError

Sampler = Callable[..., np.ndarray]

#: The metrics summarised per budget (mean and standard error over seeds).
METRICS = ("log_p", "weight_error", "mean_error", "cov_error", "mmd2", "flow_error", "failed")


@dataclass
class AuditResult:
    """What :func:`audit` measured. ``rows``: one dict per (sampler, budget) with ``sampler``,
    ``nfe`` (the budget), ``steps``, ``evals`` (measured per sample), the per-mode ``weights``,
    ``mean_errors`` and ``cov_errors`` (means over seeds) and each of :data:`METRICS` with
    ``<metric>_se``. ``floor``: the same metrics of exact
    draws. ``truth``: the target's weights; ``bandwidth``: MMD's h."""

    rows: list
    floor: dict
    truth: np.ndarray
    bandwidth: float
    chains: int
    seeds: tuple
    schedule: dict
    start: str

    def __repr__(self) -> str:
        return (
            f"AuditResult(samplers={sorted({r['sampler'] for r in self.rows})}, "
            f"budgets={sorted({r['nfe'] for r in self.rows})}, chains={self.chains}, seeds={len(self.seeds)})"
        )

    def select(self, sampler: str) -> list:
        """The rows of one sampler, by budget."""
        return [r for r in self.rows if r["sampler"] == sampler]

    def table(self) -> str:
        """The rows as aligned text: mean ± SE over seeds."""
        cols = ["sampler", "nfe", "evals"] + [m for m in METRICS if m != "failed"]
        out = ["  ".join(f"{c:>16}" for c in cols)]
        for r in [{"sampler": "exact draws", "nfe": 0, "evals": 0, **self.floor}] + self.rows:
            cells = [f"{r['sampler']:>16}", f"{r['nfe']:>16}", f"{r['evals']:>16.1f}"]
            for m in cols[3:]:
                v, s = r.get(m, math.nan), r.get(m + "_se", math.nan)
                cells.append(f"{v:>9.3g}±{s:<6.2g}" if np.isfinite(v) else f"{'—':>16}")
            out.append("  ".join(cells))
        return "\n".join(out)

    def to_csv(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the rows (and the floor as sampler ``exact``) as CSV, whole or not at all."""
        path = os.fspath(path)
        if os.path.exists(path) and not os.path.isfile(path):
            raise ScorelabError(f"path: {path} exists and is not a regular file")
        keys = ["sampler", "nfe", "steps", "evals"] + [k for m in METRICS for k in (m, m + "_se")]
        tmp = f"{path}.tmp{os.getpid()}"
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(keys)
            for r in [{"sampler": "exact", "nfe": 0, "steps": 0, "evals": 0, **self.floor}] + self.rows:
                w.writerow([repr(r.get(k, math.nan)) if isinstance(r.get(k), float) else r.get(k, "") for k in keys])
        os.replace(tmp, path)

    def plot(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Error against evaluations per sample: MMD², weight error, mean log p (dashed: exact
        draws) and, where a sampler is deterministic, the flow-map error; ±1 SE over seeds.
        Writes ``path`` with the extension replaced by ``.svg`` and ``.png``."""
        stem = os.path.splitext(os.fspath(path))[0]
        names = list(dict.fromkeys(r["sampler"] for r in self.rows))

        def series(metric: str) -> list:
            out = []
            for n in names:
                rows = [r for r in self.select(n) if np.isfinite(r[metric])]
                if rows:
                    out.append((n, [float(r["evals"]) for r in rows], [float(r[metric]) for r in rows],
                                [float(r[metric + "_se"]) if np.isfinite(r[metric + "_se"]) else math.nan for r in rows]))
            return out

        panels = [
            ("MMD²", True, None, series("mmd2")),
            ("mode weights, exact draws dashed: max |ŵ − w|", False, self.floor["weight_error"], series("weight_error")),
            ("exact draws dashed: mean log p", False, self.floor["log_p"], series("log_p")),
        ]
        flow = series("flow_error")
        if flow:
            panels.append(("flow map: RMS error", True, None, flow))
        _n._error_curves(stem, [p for p in panels if p[3]])


def _grid(schedule: Schedule, steps: int) -> np.ndarray:
    """``steps`` intervals from σ̃(T) to 0: the schedule's grid, with a last step to 0 where the
    schedule's own grid ends above it (then its grid of steps − 1 steps)."""
    if schedule.kind == "edm":
        return schedule.sigmas(steps)
    if steps == 1:
        return np.array([schedule.sigma(schedule.t_max), 0.0])
    return np.append(schedule.sigmas(steps - 1), 0.0)


def _summary(per_seed: list) -> dict:
    out: dict[str, Any] = {}
    for m in METRICS:
        v = np.array([r[m] for r in per_seed], dtype=float)
        ok = v[np.isfinite(v)]
        out[m] = float(ok.mean()) if len(ok) else math.nan
        out[m + "_se"] = float(ok.std(ddof=1) / math.sqrt(len(ok))) if len(ok) > 1 else math.nan
    for k in ("weights", "mean_errors", "cov_errors"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a mode empty in every seed: NaN
            out[k] = np.nanmean([r[k] for r in per_seed], axis=0)
    return out


def _scalars(m: dict, truth: np.ndarray) -> dict:
    with np.errstate(invalid="ignore"):
        return {
            "log_p": m["log_p"],
            "weights": m["weights"],
            "mean_errors": m["mean_error"],
            "cov_errors": m["cov_error"],
            "weight_error": float(np.max(np.abs(m["weights"] - truth))),
            "mean_error": float(np.nanmax(m["mean_error"])) if np.isfinite(m["mean_error"]).any() else math.nan,
            "cov_error": float(np.nanmax(m["cov_error"])) if np.isfinite(m["cov_error"]).any() else math.nan,
            "mmd2": m["mmd2"],
            "failed": m["failed"],
            "flow_error": math.nan,
        }


def _takes_rng(f: Callable) -> bool:
    try:
        return "rng" in inspect.signature(f).parameters
    except (TypeError, ValueError):
        return False


def _reference_steps(spec: Mapping[str, Any], budget: int) -> int:
    kind = spec.get("kind")
    if kind in ("heun", "dpm2"):  # two evaluations a step, one for the last step to σ = 0
        return max(1, (budget + 1) // 2)
    if kind == "pc":
        return max(1, budget // (1 + int(spec.get("corrector_steps", 1))))
    return max(1, budget)


def audit(
    sampler: Union[Sampler, Mapping[str, Any], str],
    target: Density,
    *,
    nfe: Sequence[int],
    chains: int = 1000,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    schedule: Optional[Schedule] = None,
    start: str = "prior",
    evals_per_step: int = 1,
    deterministic: Optional[bool] = None,
    bandwidth: Optional[float] = None,
    flow_tol: float = 1e-8,
    label: Optional[str] = None,
    reference: Sequence[Mapping[str, Any]] = ({"kind": "heun"}, {"kind": "ddim"}),
    plot: Optional[Union[str, "os.PathLike[str]"]] = None,
) -> AuditResult:
    """Audits ``sampler`` on ``target`` at each budget in ``nfe`` (module docs for the metrics).

    ``sampler``: a function ``sampler(denoiser, x, sigmas)`` (with an ``rng`` parameter it also
    receives a ``numpy.random.Generator`` seeded per seed and budget, and is taken as stochastic),
    or one of scorelab's samplers as a dict of ``[sampler]`` keys or a kind name. ``target``: a
    Gaussian or mixture :class:`Density` (:mod:`scorelab.targets`). ``schedule``: whose σ̃ grid
    ``sigmas`` follows (default EDM's: σ from 80 to 0.002, ρ = 7, then 0). ``start``: ``"prior"``
    (N(0, c²I) in the α = 1 variables, c = prior std/α(T)) or ``"exact"`` (draws of p_σ(T), which
    separates the prior's mismatch from the discretisation error). ``deterministic``: whether to
    compare with the exact flow map (default: a function without ``rng``, or a scorelab sampler
    that draws nothing). ``reference``: scorelab samplers run beside it (``()`` for none).
    ``plot``: a path to draw the figure to.
    """
    if not isinstance(target, Density):
        raise ScorelabError(f"target: expected a scorelab.Density, got {type(target).__name__}")
    if target.kind not in ("gaussian", "gaussian_mixture", "standard_normal"):
        raise ScorelabError(f"target: must be a gaussian or gaussian_mixture (its p_σ is closed form), got {target.kind}")
    budgets = [int(b) for b in nfe]
    if not budgets or any(b < 1 for b in budgets):
        raise ScorelabError(f"nfe: give a list of budgets ≥ 1, got {list(nfe)}")
    seeds = tuple(int(s) for s in seeds)
    if len(seeds) < 2 or any(s < 0 for s in seeds):
        raise ScorelabError(f"seeds: give at least two non-negative seeds (standard errors are over seeds), got {seeds}")
    if int(chains) < 2:
        raise ScorelabError(f"chains: must be at least 2, got {chains}")
    if start not in ("prior", "exact"):
        raise ScorelabError(f"start: must be 'prior' or 'exact', got {start!r}")
    if int(evals_per_step) < 1:
        raise ScorelabError(f"evals_per_step: must be at least 1, got {evals_per_step}")
    schedule = schedule if schedule is not None else Schedule.edm()
    if not isinstance(schedule, Schedule):
        raise ScorelabError(f"schedule: expected a scorelab.Schedule, got {type(schedule).__name__}")
    chains = int(chains)
    sigma_max = float(schedule.sigma(schedule.t_max))
    prior_std = float(schedule.prior_std / schedule.alpha(schedule.t_max))
    mix = target if target.kind == "gaussian_mixture" else None
    truth = np.array(mix.spec["weights"]) if mix is not None else np.ones(1)

    exact = {s: _n._audit_exact(target, 2 * chains, seed=s) for s in seeds}
    if bandwidth is None:
        e = exact[seeds[0]]
        bandwidth = float(_n._mmd2(e[: min(chains, 1000)], e[chains : chains + min(chains, 1000)], permutations=0)["bandwidth"])
    starts = {s: _n._audit_start(target, chains, seed=s, sigma=sigma_max, std=prior_std, exact=start == "exact") for s in seeds}
    floor = _summary([_scalars(_n._audit_metrics(exact[s][chains:], target, exact[s][:chains], bandwidth=bandwidth), truth) for s in seeds])
    flows: dict[int, np.ndarray] = {}

    def flow(s: int) -> np.ndarray:
        if s not in flows:
            flows[s] = _n._flow_map(target, starts[s], sigma=sigma_max, tol=flow_tol)
        return flows[s]

    runs: list[tuple[str, Any, bool]] = []
    if callable(sampler):
        det = not _takes_rng(sampler) if deterministic is None else bool(deterministic)
        runs.append((label or getattr(sampler, "__name__", "sampler"), sampler, det))
    else:
        spec = {"kind": sampler} if isinstance(sampler, str) else dict(sampler)
        runs.append((label or f"scorelab {spec.get('kind')}", spec, deterministic))
    for ref in reference:
        spec = {"kind": ref} if isinstance(ref, str) else dict(ref)
        runs.append((f"scorelab {spec.get('kind')}", spec, None))

    rows = []
    for name, run, det in runs:
        for b in budgets:
            per_seed = []
            evals_seen = []
            steps = max(1, b // int(evals_per_step))
            for s in seeds:
                x0 = starts[s]
                if callable(run):
                    den = target.denoiser()
                    sigmas = _grid(schedule, steps)
                    kwargs = {"rng": np.random.default_rng([s, b])} if _takes_rng(run) else {}
                    try:
                        out = run(den, x0.copy(), sigmas.copy(), **kwargs)
                    except ScorelabError:
                        raise
                    except Exception as e:
                        raise ScorelabError(f"sampler: raised {type(e).__name__}: {e} (budget {b}, seed {s})") from e
                    out = np.asarray(out)
                    if out.dtype != np.float64:
                        raise ScorelabError(f"sampler: must return a float64 array of shape ({chains}, {target.dim}), got dtype {out.dtype}")
                    evals_seen.append(den.evals / chains)
                    deterministic_run = det
                else:
                    steps = _reference_steps(run, b)
                    if schedule.kind != "edm":
                        steps = max(1, steps - 1)
                    out, ev = _n._audit_scorelab(run, target, x0, schedule=schedule, steps=steps, seed=s)
                    evals_seen.append(ev)
                    kind_det = run.get("kind") == "ode" or (run.get("kind") == "ddim" and float(run.get("eta", 0.0)) == 0.0) or (
                        run.get("kind") == "heun" and float(run.get("s_churn", 0.0)) == 0.0)
                    deterministic_run = kind_det if det is None else det
                m = _scalars(_n._audit_metrics(out, target, exact[s][:chains], bandwidth=bandwidth), truth)
                if deterministic_run:
                    diff = out - flow(s)
                    with np.errstate(invalid="ignore"):
                        m["flow_error"] = float(np.sqrt(np.mean(np.sum(diff * diff, axis=1))))
                per_seed.append(m)
            row = {"sampler": name, "nfe": b, "steps": steps, "evals": float(np.mean(evals_seen))}
            row.update(_summary(per_seed))
            rows.append(row)
    result = AuditResult(rows, floor, truth, bandwidth, chains, seeds, schedule.spec, start)
    if plot is not None:
        result.plot(plot)
    return result

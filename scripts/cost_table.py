#!/usr/bin/env python3
"""Markdown table of scorelab's and JAX's ms per training step over interleaved repeats (written by
scripts/compare_jacobian_cost.sh).

Usage: cost_table.py COMMIT CPU STEPS OURS_1.csv JAX_1.csv [OURS_2.csv JAX_2.csv ...]

Each cell of the time table is the median over repeats of that repeat's median ms per step; each
ratio is the median over repeats of the ratio within the same repeat (the two measured back to
back), with its range over the repeats."""
import csv
import statistics
import sys

commit, cpu, steps = sys.argv[1:4]
files = sys.argv[4:]
assert files and len(files) % 2 == 0, "pairs of OURS.csv JAX.csv"
repeats = []
for ours_path, jax_path in zip(files[::2], files[1::2]):
    ours = {(r["objective"], int(r["dim"])): float(r["median_ms"]) for r in csv.DictReader(open(ours_path))}
    jax = {(r["objective"], int(r["D"])): float(r["median_step_ms"]) for r in csv.DictReader(open(jax_path))}
    repeats.append((ours, jax))
dims = sorted({d for _, d in repeats[0][0]})


def row(label, values):
    return "| " + label + " | " + " | ".join(values) + " |"


def fmt(v):
    return "–" if v is None else (f"{v:.3g}" if v < 100 else f"{v:.0f}")


def median_of(which, key):
    vals = [rep[which].get(key) for rep in repeats]
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def ratio_cell(num, den):
    """num and den are (which, objective); the same repeat's ratio, median and range."""
    cells = []
    for d in dims:
        rs = []
        for rep in repeats:
            a, b = rep[num[0]].get((num[1], d)), rep[den[0]].get((den[1], d))
            if a is not None and b is not None:
                rs.append(a / b)
        if not rs:
            cells.append("–")
        elif len(rs) == 1:
            cells.append(f"{rs[0]:.2f}")
        else:
            cells.append(f"{statistics.median(rs):.2f} ({min(rs):.2f}–{max(rs):.2f})")
    return cells


n = len(repeats)
print("# Jacobian cost: ms per training step, scorelab beside JAX in one run on one machine\n")
print(f"Commit {commit}, CPU {cpu} (both sides), 2 threads each. MLP D → 128 → 128 → D, softplus, batch 128,")
print("f32, Adam; one Gaussian projection for SSM; σ = 0.1 for DSM; data drawn outside the timed step.")
print(f"Command: `REPEATS={n} STEPS={steps} bash scripts/compare_jacobian_cost.sh`, which runs")
print(f"`python results/baselines/jax_sm_bench.py --steps {steps} --min-steps 20 --budget-s 10` and")
print(f"`scorelab cost --steps {steps}` back to back, {n} times interleaved (JAX first in each repeat).")
print(f"Times: the median over the {n} repeats of each run's median ms per step. Ratios: the median")
print("over repeats of the ratio within one repeat, with its range in parentheses.\n")
print(row("objective", [f"D={d}" for d in dims]))
print(row("---", ["---:"] * len(dims)))
for o in ["dsm", "ssm", "ssm_vr", "ism_naive", "ism_structured", "esm"]:
    print(row(f"scorelab {o}", [fmt(median_of(0, (o, d))) for d in dims]))
for o in ["dsm", "ssm", "ssm_vr", "ism_structured", "ism_jacrev", "ism_jacfwd"]:
    print(row(f"JAX {o}", [fmt(median_of(1, (o, d))) for d in dims]))
print("\nRatios (< 1: scorelab faster):\n")
print(row("ratio", [f"D={d}" for d in dims]))
print(row("---", ["---:"] * len(dims)))
print(row("scorelab dsm / JAX dsm", ratio_cell((0, "dsm"), (1, "dsm"))))
print(row("scorelab ssm / JAX ssm", ratio_cell((0, "ssm"), (1, "ssm"))))
print(row("scorelab ssm_vr / JAX ssm_vr", ratio_cell((0, "ssm_vr"), (1, "ssm_vr"))))
print(row("scorelab ism_structured / JAX ism_structured", ratio_cell((0, "ism_structured"), (1, "ism_structured"))))
print(row("scorelab ism_structured / scorelab ssm_vr", ratio_cell((0, "ism_structured"), (0, "ssm_vr"))))
print(row("scorelab ism_naive / JAX ism_jacrev", ratio_cell((0, "ism_naive"), (1, "ism_jacrev"))))
print(row("scorelab ism_structured / scorelab dsm", ratio_cell((0, "ism_structured"), (0, "dsm"))))
print(row("JAX ism_jacrev / JAX dsm", ratio_cell((1, "ism_jacrev"), (1, "dsm"))))

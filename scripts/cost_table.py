#!/usr/bin/env python3
"""Markdown table of scorelab's and JAX's median ms per training step (written by
scripts/compare_jacobian_cost.sh). Usage: cost_table.py OURS.csv JAX.csv COMMIT CPU"""
import csv
import sys

ours_path, jax_path, commit, cpu = sys.argv[1:5]
ours = {(r["objective"], int(r["dim"])): float(r["median_ms"]) for r in csv.DictReader(open(ours_path))}
jax = {(r["objective"], int(r["D"])): float(r["median_step_ms"]) for r in csv.DictReader(open(jax_path))}
dims = sorted({d for _, d in ours})


def row(label, values):
    return "| " + label + " | " + " | ".join(values) + " |"


def fmt(v):
    return "–" if v is None else (f"{v:.3g}" if v < 100 else f"{v:.0f}")


print(f"# Jacobian cost: median ms per training step, one run on one machine\n")
print(f"Commit {commit}, CPU {cpu}, 2 threads each. MLP D → 128 → 128 → D, softplus, batch 128, f32, Adam;")
print("one Gaussian projection for SSM; σ = 0.1 for DSM; data drawn outside the timed step.")
print("Commands: `bash scripts/compare_jacobian_cost.sh` (runs both of the following back to back):")
print("`python results/baselines/jax_sm_bench.py --steps 30 --min-steps 20 --budget-s 10` and")
print("`scorelab cost --steps 30`. The machine is shared and noisy: treat ratios under ~1.5× as noise.\n")
print(row("objective", [f"D={d}" for d in dims]))
print(row("---", ["---:"] * len(dims)))
for o in ["dsm", "ssm", "ssm_vr", "ism_naive", "ism_structured", "esm"]:
    print(row(f"scorelab {o}", [fmt(ours.get((o, d))) for d in dims]))
for o in ["dsm", "ssm", "ssm_vr", "ism_jacrev", "ism_jacfwd"]:
    print(row(f"JAX {o}", [fmt(jax.get((o, d))) for d in dims]))
print()
print("Ratios (< 1: scorelab faster):\n")
print(row("ratio", [f"D={d}" for d in dims]))
print(row("---", ["---:"] * len(dims)))


def ratio(a, b):
    return "–" if a is None or b is None else f"{a / b:.2f}"


for ours_o, theirs_o, label in [
    ("dsm", "dsm", "scorelab dsm / JAX dsm"),
    ("ssm", "ssm", "scorelab ssm / JAX ssm"),
    ("ssm_vr", "ssm_vr", "scorelab ssm_vr / JAX ssm_vr"),
    ("ism_naive", "ism_jacrev", "scorelab ism_naive / JAX ism_jacrev"),
]:
    print(row(label, [ratio(ours.get((ours_o, d)), jax.get((theirs_o, d))) for d in dims]))
print(row("scorelab ism_structured / scorelab dsm", [ratio(ours.get(("ism_structured", d)), ours.get(("dsm", d))) for d in dims]))
print(row("JAX ism_jacrev / JAX dsm", [ratio(jax.get(("ism_jacrev", d)), jax.get(("dsm", d))) for d in dims]))

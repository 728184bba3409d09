#!/usr/bin/env python3
"""One-run sampling-speed comparison: `scorelab sample` beside PyTorch and JAX running the same
network (a scorelab model file), the same annealed-Langevin schedule and the same chains.

scorelab's time per score evaluation is the difference of two whole `scorelab sample` runs,
levels x LONG and levels x SHORT evaluations, divided by the difference in evaluations, so start-up
(loading, the initial draw, writing the CSV) cancels; it includes everything a step does (the
score, the update, the normal draws). The peers time their inner loop only, with the normal draws
made beforehand (results/baselines/sample_bench.py). The three are run interleaved, REPEATS
times, and each ratio is reported as the median over repeats with its range.

Usage: python3 scripts/compare_sampling.py [--repeats 5] [--model DIR]
Needs the virtual environments of results/baselines/README.md (TORCH_PY, JAX_PY; defaults
/tmp/bl-venv/bin/python and /tmp/bl-venv-jax/bin/python). Writes results/sampling_speed.csv and
results/sampling_speed_comparison.md.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """# Written by scripts/compare_sampling.py.
seed = 0
chains = {chains}
model_dir = "{model}"
init = {{ kind = "uniform", low = 0.0, high = 1.0 }}

[sampler]
kind = "annealed_langevin"
eps = {eps}
steps = {steps}
sigma_max = {sigma_max}
sigma_min = {sigma_min}
levels = {levels}
"""


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def cpu_name():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", default="results/models/digits/dsm_multi_seed1")
    ap.add_argument("--chains", type=int, default=256)
    ap.add_argument("--levels", type=int, default=20)
    ap.add_argument("--long", type=int, default=60, help="steps per level of the long run")
    ap.add_argument("--short", type=int, default=10, help="steps per level of the short run")
    ap.add_argument("--peer-steps", type=int, default=50, help="steps per level of the peers' loop")
    ap.add_argument("--eps", type=float, default=2.5e-4)
    a = ap.parse_args()
    torch_py = os.environ.get("TORCH_PY", "/tmp/bl-venv/bin/python")
    jax_py = os.environ.get("JAX_PY", "/tmp/bl-venv-jax/bin/python")
    os.chdir(ROOT)
    run(["cargo", "build", "--release", "--quiet"])
    binary = ROOT / "target" / "release" / "scorelab"
    model_file = Path(a.model) / "model.safetensors"
    commit = run(["git", "rev-parse", "--short", "HEAD"]).stdout.strip()
    dirty = run(["git", "status", "--porcelain", "--untracked-files=no"]).stdout.strip()
    commit += "+dirty" if dirty else ""

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        configs = {}
        for name, steps in [("long", a.long), ("short", a.short)]:
            path = Path(tmp) / f"{name}.toml"
            path.write_text(CONFIG.format(chains=a.chains, model=a.model, eps=a.eps, steps=steps,
                                          sigma_max=5.0, sigma_min=0.05, levels=a.levels))
            configs[name] = path
        peer = ["--chains", str(a.chains), "--levels", str(a.levels),
                "--steps", str(a.peer_steps), "--eps", str(a.eps), "--threads", "2"]
        for r in range(a.repeats):
            seconds = {}
            for name in ["long", "short"]:
                start = time.perf_counter()
                run([str(binary), "sample", "--config", str(configs[name]),
                     "--out", str(Path(tmp) / f"{name}.csv")])
                seconds[name] = time.perf_counter() - start
            evals = a.levels * (a.long - a.short)
            ours = 1000 * (seconds["long"] - seconds["short"]) / evals
            peers = {}
            for fw, py in [("torch", torch_py), ("jax", jax_py)]:
                out = run([py, "results/baselines/sample_bench.py", fw, str(model_file)] + peer)
                fields = out.stdout.strip().splitlines()[-1].split(",")
                peers[fw] = (fields[1], float(fields[5]))
            rows.append((r + 1, ours, peers["torch"][1], peers["jax"][1]))
            print(f"repeat {r + 1}: scorelab {ours:.3f} ms, torch {peers['torch'][1]:.3f} ms, "
                  f"jax {peers['jax'][1]:.3f} ms per evaluation", file=sys.stderr)

    out_csv = ROOT / "results" / "sampling_speed.csv"
    with open(out_csv, "w") as f:
        f.write("repeat,scorelab_ms,torch_ms,jax_ms\n")
        for r, o, t, j in rows:
            f.write(f"{r},{o:.4f},{t:.4f},{j:.4f}\n")

    def med(xs):
        return statistics.median(xs)

    ours = [r[1] for r in rows]
    torch_ms = [r[2] for r in rows]
    jax_ms = [r[3] for r in rows]
    vs_torch = [o / t for o, t in zip(ours, torch_ms)]
    vs_jax = [o / j for o, j in zip(ours, jax_ms)]
    md = [
        "# Sampling speed: `scorelab sample` beside PyTorch and JAX",
        "",
        f"Written by `python3 scripts/compare_sampling.py --repeats {a.repeats}` at commit {commit}, "
        f"on one machine: {cpu_name()}, {os.cpu_count()} cores, no GPU. All three in one run, "
        "interleaved.",
        "",
        f"Annealed Langevin with the digits noise-conditional MLP ({a.model}: 64 + log σ → 256 → 256 → 64, "
        f"softplus, output / σ), {a.chains} chains, {a.levels} geometric levels σ = 5 → 0.05, "
        f"ε = {a.eps}, f32 network. scorelab: the difference of a {a.levels}×{a.long}- and a "
        f"{a.levels}×{a.short}-evaluation `scorelab sample` run over the difference in evaluations "
        "(the whole step: score, update, normal draws). PyTorch (eager, `no_grad`, 2 threads) and JAX "
        f"(`jit` + `lax.scan`): their inner loop of {a.levels}×{a.peer_steps} evaluations, normal "
        "draws made beforehand (`results/baselines/sample_bench.py`).",
        "",
        "| implementation | ms per evaluation of 256 points (median) | range over repeats |",
        "| --- | ---: | ---: |",
        f"| scorelab `sample` | {med(ours):.3f} | {min(ours):.3f}–{max(ours):.3f} |",
        f"| PyTorch {peers['torch'][0]} | {med(torch_ms):.3f} | {min(torch_ms):.3f}–{max(torch_ms):.3f} |",
        f"| JAX {peers['jax'][0]} | {med(jax_ms):.3f} | {min(jax_ms):.3f}–{max(jax_ms):.3f} |",
        "",
        f"Ratio scorelab / PyTorch: {med(vs_torch):.2f} (range {min(vs_torch):.2f}–{max(vs_torch):.2f}); "
        f"scorelab / JAX: {med(vs_jax):.2f} (range {min(vs_jax):.2f}–{max(vs_jax):.2f}), "
        "each the median over repeats of the same repeat's ratio.",
        "",
    ]
    out_md = ROOT / "results" / "sampling_speed_comparison.md"
    out_md.write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The Jacobian-cost comparison, measured in one run on this machine: JAX's training step
# (results/baselines/jax_sm_bench.py) and ours (`scorelab cost`) back to back, REPEATS times
# interleaved (JAX, ours, JAX, ours, …), then the markdown table
# results/jacobian_cost_comparison.md: medians over the repeats, and each ratio as the median of
# the same repeat's ratios with its range.
#
# Needs the JAX virtual environment of results/baselines/README.md (JAX_PY, default
# /tmp/bl-venv-jax/bin/python). STEPS (default 30) timed steps per setting after 5 warm-up steps;
# REPEATS (default 3). Every repeat's CSVs go to results/jacobian_cost_runs/; the last repeat's
# are also results/jacobian_cost.csv and results/jacobian_cost_jax.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
JAX_PY=${JAX_PY:-/tmp/bl-venv-jax/bin/python}
STEPS=${STEPS:-30}
REPEATS=${REPEATS:-3}
cargo build --release --quiet
# The commit of the binary measured, read before anything runs.
commit="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- crates Cargo.toml Cargo.lock || echo +dirty)"
runs=results/jacobian_cost_runs
rm -rf "$runs"
mkdir -p "$runs"
pairs=()
for r in $(seq "$REPEATS"); do
  echo "repeat $r of $REPEATS: JAX" >&2
  "$JAX_PY" results/baselines/jax_sm_bench.py --steps "$STEPS" --min-steps 20 --budget-s 10 --retries 1 \
    --csv "$runs/jax_$r.csv"
  echo "repeat $r of $REPEATS: scorelab" >&2
  target/release/scorelab cost --steps "$STEPS" --out "$runs/scorelab_$r.csv"
  pairs+=("$runs/scorelab_$r.csv" "$runs/jax_$r.csv")
done
cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
# The machine both sides ran on, read by the paper, its figure and checks (scorelab_figures::cost).
printf 'commit,cpu,threads,steps\n%s,"%s",%s,%s\n' "$commit" "$cpu" "$(nproc)" "$STEPS" > "$runs/machine.csv"
cp "$runs/scorelab_$REPEATS.csv" results/jacobian_cost.csv
cp "$runs/jax_$REPEATS.csv" results/jacobian_cost_jax.csv
python3 scripts/cost_table.py "$commit" "$cpu" "$STEPS" "${pairs[@]}" \
  > results/jacobian_cost_comparison.md
cat results/jacobian_cost_comparison.md

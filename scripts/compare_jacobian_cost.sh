#!/usr/bin/env bash
# The Jacobian-cost comparison, measured in one run on this machine: JAX's training step
# (results/baselines/jax_sm_bench.py) and ours (`scorelab cost`) back to back, then the markdown
# table results/jacobian_cost_comparison.md.
#
# Needs the JAX virtual environment of results/baselines/README.md (JAX_PY, default
# /tmp/bl-venv-jax/bin/python). STEPS (default 30) timed steps per setting after 5 warm-up steps.
set -euo pipefail
cd "$(dirname "$0")/.."
JAX_PY=${JAX_PY:-/tmp/bl-venv-jax/bin/python}
STEPS=${STEPS:-30}
cargo build --release --quiet
"$JAX_PY" results/baselines/jax_sm_bench.py --steps "$STEPS" --min-steps 20 --budget-s 10 --retries 1 \
  --csv results/jacobian_cost_jax.csv
target/release/scorelab cost --steps "$STEPS" --out results/jacobian_cost.csv
python3 scripts/cost_table.py results/jacobian_cost.csv results/jacobian_cost_jax.csv \
  "$(git rev-parse --short HEAD)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" \
  > results/jacobian_cost_comparison.md
cat results/jacobian_cost_comparison.md

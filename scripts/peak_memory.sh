#!/usr/bin/env bash
# Peak resident memory of a 100-step `scorelab train` run per objective, in the benchmark's setting
# (data N(0, I_D), MLP D → 128 → 128 → D softplus, batch 128), measured with /usr/bin/time -v.
# Usage: bash scripts/peak_memory.sh [DIMS...]   (default 128 512)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dims=("${@:-128 512}")
echo "objective,dim,peak_rss_mb"
for d in ${dims[@]}; do
  for o in dsm ssm ssm_vr ism_naive ism_structured esm; do
    case $o in
      dsm) obj='kind = "dsm"' ;;
      ssm) obj='kind = "ssm"
probe = "gaussian"' ;;
      ssm_vr) obj='kind = "ssm_vr"
probe = "gaussian"' ;;
      ism_naive) obj='kind = "ism"
trace = "naive"' ;;
      ism_structured) obj='kind = "ism"
trace = "structured"' ;;
      esm) obj='kind = "esm"' ;;
    esac
    cat >"$tmp/c.toml" <<TOML
[data]
density = { kind = "standard_normal", dim = $d }
[model]
kind = "mlp"
hidden = [128, 128]
[objective]
$obj
[train]
steps = 100
eval_every = 50
TOML
    /usr/bin/time -v target/release/scorelab train --config "$tmp/c.toml" --out "$tmp/run" --force \
      2>"$tmp/time.txt" >/dev/null
    kb=$(grep 'Maximum resident' "$tmp/time.txt" | awk '{print $NF}')
    echo "$o,$d,$((kb / 1024))"
  done
done

#!/bin/bash
# Submits scorelab's work to Slurm as job arrays of shards, each followed by a dependent gather.
#
#   scripts/slurm/submit.sh N [-- ARGS…]                       # the whole paper: 4 jobs
#   scripts/slurm/submit.sh --experiment FILE.toml N [-- ARGS…]  # one experiment: 2 jobs
#
# The whole paper is two stages (stage 2's experiments read stage 1's results): an array of N
# shards of stage 1, its gather, an array of N shards of stage 2, and its gather, which also draws
# the figures and writes the paper; each job starts only when the one before succeeded. ARGS go to
# every scorelab command (e.g. --quick, --out DIR). Extra sbatch options (partition, account, time
# limit) are taken from SBATCH_* environment variables as sbatch reads them. Run it from the
# repository root after `cargo build --release`; it prints the job ids, the last one on its own line
# (for `sbatch --dependency` or `scontrol`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
experiment=
if [[ "${1:-}" == --experiment ]]; then
    experiment=${2:?give the experiment file}
    shift 2
fi
n=${1:?give the number of shards N}
shift
if [[ "${1:-}" == -- ]]; then
    shift
fi
export SCORELAB_ARGS="$*"
export SHARDS=$n
submit() { sbatch --parsable "$@" | cut -d';' -f1; }
if [[ -n "$experiment" ]]; then
    export EXPERIMENT=$experiment
    array=$(submit --array="1-$n" "$here/shard.sbatch")
    gather=$(submit --dependency="afterok:$array" "$here/gather.sbatch")
    echo "experiment $experiment: shards $array, gather $gather" >&2
    echo "$gather"
    exit 0
fi
after=
for stage in 1 2; do
    export STAGE=$stage
    array=$(submit ${after:+--dependency=afterok:$after} --array="1-$n" "$here/shard.sbatch")
    after=$(submit --dependency="afterok:$array" "$here/gather.sbatch")
    echo "stage $stage: shards $array, gather $after" >&2
done
echo "$after"

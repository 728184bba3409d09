#!/bin/bash
# Brings up a single-node Slurm on this machine (Debian's slurm-wlm and munge, every file under a
# temporary folder, the daemons stopped on exit), submits a small experiment as a job array of
# shards with a dependent gather (submit.sh --experiment), and checks that the gathered files are
# byte for byte those of a serial run. Run from the repository root after `cargo build --release`,
# as root or as a user who may start slurmctld and slurmd. Exit 0 when they match.
#
#   scripts/slurm/test_local.sh [EXPERIMENT.toml] [SHARDS]
set -euo pipefail
experiment=${1:-paper/experiments/noise_tradeoff.toml}
shards=${2:-3}
export SCORELAB=${SCORELAB:-$PWD/target/release/scorelab}
for tool in munged slurmctld slurmd sbatch squeue scontrol; do
    command -v "$tool" >/dev/null || { echo "test_local.sh: $tool not found (apt-get install slurm-wlm munge)" >&2; exit 2; }
done
[[ -x "$SCORELAB" ]] || { echo "test_local.sh: $SCORELAB not built (cargo build --release)" >&2; exit 2; }
tmp=$(mktemp -d /tmp/scorelab-slurm.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in slurmd.pid slurmctld.pid munge/munged.pid; do
        [[ -f "$tmp/$f" ]] && kill "$(cat "$tmp/$f")" 2>/dev/null || true
    done
    sleep 1
    rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp"/{state,spool,log,munge}
chmod 700 "$tmp/munge"
head -c 1024 /dev/urandom >"$tmp/munge/munge.key"
chmod 600 "$tmp/munge/munge.key"
host=$(hostname)
user=$(id -un)
# Ports from the process id, so two tests on one machine do not collide.
port=$((20000 + ($$ % 20000)))
cat >"$tmp/slurm.conf" <<CONF
ClusterName=scorelab-test
SlurmctldHost=$host
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge/munge.socket
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MinJobAge=3600
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$tmp/slurm.conf
munged --key-file="$tmp/munge/munge.key" --socket="$tmp/munge/munge.socket" \
    --pid-file="$tmp/munge/munged.pid" --log-file="$tmp/log/munged.log" --seed-file="$tmp/munge/seed" -f
slurmctld -i
slurmd
for _ in $(seq 60); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && break
    sleep 1
done
sinfo -h -o %t | grep -q idle || { echo "test_local.sh: the node did not come up" >&2; cat "$tmp"/log/*.log >&2; exit 1; }
echo "slurm up: $(sinfo -h -o '%P %D %t %N')"

# The serial run, then the same experiment as a job array and a dependent gather.
"$SCORELAB" experiment --config "$experiment" --quick --results "$tmp/serial" >/dev/null
cd "$(dirname "$0")/../.."
export SBATCH_OUTPUT="$tmp/log/job-%x-%A_%a.out"
last=$(scripts/slurm/submit.sh --experiment "$experiment" "$shards" -- --quick --results "$tmp/sharded")
for _ in $(seq 600); do
    [[ -z "$(squeue -h)" ]] && break
    sleep 1
done
state=$(scontrol show job "$last" | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
cat "$tmp"/log/job-*.out
if [[ "$state" != COMPLETED ]]; then
    echo "test_local.sh: the gather job ended $state" >&2
    exit 1
fi
# Every file of the serial run, byte for byte (not the lock files; the config's provenance
# records the same commit, machine and thread count), but for the timing files (`*_timing.csv`:
# wall-clock seconds), which must be there with the same rows.
status=0
while IFS= read -r f; do
    if [[ "$f" == *_timing.csv ]]; then
        same_rows=$(cut -d, -f1-3 "$tmp/serial/$f" | cmp -s - <(cut -d, -f1-3 "$tmp/sharded/$f") && echo yes || echo no)
        [[ $same_rows == yes ]] || { echo "differs (rows): $f" >&2; status=1; }
    elif ! cmp -s "$tmp/serial/$f" "$tmp/sharded/$f"; then
        echo "differs: $f" >&2
        status=1
    fi
done < <(cd "$tmp/serial" && find . -type f ! -name .scorelab.lock | sort)
extra=$(cd "$tmp/sharded" && find . -type f ! -name .scorelab.lock | sort | comm -13 <(cd "$tmp/serial" && find . -type f ! -name .scorelab.lock | sort) -)
if [[ -n "$extra" ]]; then
    echo "only in the sharded run: $extra" >&2
    status=1
fi
[[ $status == 0 ]] && echo "test_local.sh: $shards Slurm shards of $experiment gathered into the serial run's files, byte for byte"
exit $status

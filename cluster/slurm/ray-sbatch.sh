#!/bin/bash
# One harness sweep on a Ray cluster that lives inside one Slurm allocation: a Ray head on the node that
# runs this script, a Ray worker on every other node, the driver on the head, and Ray stopped at the end.
#
#   sbatch cluster/slurm/ray-sbatch.sh experiments/glue.yaml
#   sbatch --nodes=8 cluster/slurm/ray-sbatch.sh experiments/superglue.yaml    # more nodes, same script
#
# Resubmitting the same file after a time-out or a crash runs only the trials not done yet: the store
# is the truth, results are written atomically, and leases keep two jobs from training one trial.
#
# Site settings: export them before sbatch (sbatch passes the environment on) or edit the defaults.
#   HARNESS_VENV        a virtualenv with the harness installed (`pip install -e .` in a checkout), on a
#                       file system that every node mounts
#   HARNESS_STORE       the results store: a folder on shared storage (NFS, Lustre, GPFS) that every node
#                       reads and writes; Ray does not copy files between nodes
#   MLFLOW_TRACKING_URI an MLflow server (cluster/mlflow/); unset, the driver writes the store's own
#                       SQLite database, read with `harness ui --store "$HARNESS_STORE"`
#   RAY_HEAD_IP, RAY_PORT  the head's address for the other nodes (default: its first address, port 6379)
#
# Clusters without internet: nothing is downloaded at run time, so fetch everything ahead, on a machine
# that has internet, onto storage the compute nodes mount:
#   task data   harness data prepare glue,superglue --out /shared/scalearn/data
#               (the folder that SCALEARN_DATA_DIR and --data-dir name below)
#   models      HF_HOME=/shared/hf hf download roberta-base    (and every model of the experiment file)
# The job then runs with HF_HUB_OFFLINE=1, HF_DATASETS_OFFLINE=1 and TRANSFORMERS_OFFLINE=1, so a
# missing model or task fails at once with a message instead of hanging on the network.
#
#SBATCH --job-name=scalearn
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --cpus-per-task=32
#SBATCH --gpus-per-node=4
#SBATCH --mem=0
#SBATCH --time=24:00:00
#SBATCH --output=scalearn-%j.out

set -euo pipefail

EXPERIMENT=${1:?usage: sbatch cluster/slurm/ray-sbatch.sh experiments/FILE.yaml}
HARNESS_VENV=${HARNESS_VENV:-$HOME/scalearn/.venv}
HARNESS_STORE=${HARNESS_STORE:-/shared/scalearn/store}
RAY_PORT=${RAY_PORT:-6379}
export SCALEARN_DATA_DIR=${SCALEARN_DATA_DIR:-/shared/scalearn/data}
export HF_HOME=${HF_HOME:-/shared/hf}
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export RAY_USAGE_STATS_ENABLED=0 MLFLOW_DISABLE_TELEMETRY=true TOKENIZERS_PARALLELISM=false

# shellcheck source=/dev/null
source "$HARNESS_VENV/bin/activate"

head_node=$SLURMD_NODENAME  # the node running this script hosts the Ray head and the driver
# The head's first address (`hostname --ip-address` can answer 127.0.x.1 from /etc/hosts, which the other
# nodes cannot reach). Set RAY_HEAD_IP to pick another network, e.g. the InfiniBand one.
head_ip=${RAY_HEAD_IP:-$(hostname -I | awk '{print $1}')}
head_address=$head_ip:$RAY_PORT
num_workers=$((SLURM_JOB_NUM_NODES - 1))
cpus_per_node=${SLURM_CPUS_PER_TASK:-$(nproc)}
gpus_per_node=${SLURM_GPUS_ON_NODE:-0}

# Ray's token authentication: a fresh token per job, readable by you alone, in your home folder (which
# the nodes share). Every Ray process and the driver find it through RAY_AUTH_TOKEN_PATH.
mkdir -p "$HOME/.ray"
export RAY_AUTH_MODE=token
export RAY_AUTH_TOKEN_PATH=$HOME/.ray/scalearn-$SLURM_JOB_ID.token
(umask 077 && python -c 'import secrets; print(secrets.token_hex(32))' >"$RAY_AUTH_TOKEN_PATH")

ray_steps=()
# shellcheck disable=SC2329  # called by the EXIT trap below
cleanup() {
    # Stop Ray on every node, then end the `ray start --block` steps and wait for them.
    srun --overlap --nodes="$SLURM_JOB_NUM_NODES" --ntasks-per-node=1 ray stop >/dev/null 2>&1 || true
    if ((${#ray_steps[@]})); then
        kill "${ray_steps[@]}" 2>/dev/null || true
        wait "${ray_steps[@]}" 2>/dev/null || true
    fi
    rm -f "$RAY_AUTH_TOKEN_PATH"
}
trap cleanup EXIT

# --overlap: the Ray steps share the allocation with each other and with `ray stop`. The dashboard stays
# on 127.0.0.1; reach it with an SSH tunnel to the head node (ssh -L 8265:127.0.0.1:8265 HEAD_NODE).
srun --overlap --nodes=1 --ntasks=1 --nodelist="$head_node" \
    ray start --head --block --node-ip-address="$head_ip" --port="$RAY_PORT" \
    --num-cpus="$cpus_per_node" --num-gpus="$gpus_per_node" --dashboard-host=127.0.0.1 &
ray_steps+=($!)

if ((num_workers > 0)); then
    sleep 5  # let the head open its port before the workers dial it; the wait below checks for real
    srun --overlap --nodes="$num_workers" --ntasks="$num_workers" --ntasks-per-node=1 --exclude="$head_node" \
        ray start --block --address="$head_address" \
        --num-cpus="$cpus_per_node" --num-gpus="$gpus_per_node" &
    ray_steps+=($!)
fi

# Wait until every node has joined (at most 10 minutes), so the first trials spread over all of them.
python - "$head_address" "$SLURM_JOB_NUM_NODES" <<'PY'
import sys
import time

import ray

address, expected = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 600
while True:
    try:
        ray.init(address=address, log_to_driver=False)
        break
    except ConnectionError:
        if time.monotonic() > deadline:
            sys.exit(f"no Ray head at {address} after 10 minutes")
        time.sleep(5)
while (alive := sum(node["Alive"] for node in ray.nodes())) < expected:
    if time.monotonic() > deadline:
        sys.exit(f"only {alive} of {expected} Ray nodes joined in 10 minutes")
    time.sleep(5)
print(f"Ray cluster up: {alive} nodes, {ray.cluster_resources()}")
PY

status=0
if [[ -n ${MLFLOW_TRACKING_URI:-} ]]; then
    harness submit "$EXPERIMENT" --address "$head_address" --store "$HARNESS_STORE" \
        --data-dir "$SCALEARN_DATA_DIR" --tracking-uri "$MLFLOW_TRACKING_URI" || status=$?
else
    harness submit "$EXPERIMENT" --address "$head_address" --store "$HARNESS_STORE" \
        --data-dir "$SCALEARN_DATA_DIR" || status=$?
fi
harness status "$EXPERIMENT" --store "$HARNESS_STORE" || true
exit "$status"

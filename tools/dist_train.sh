#!/usr/bin/env bash
# Distributed training with torchrun.
# Usage: tools/dist_train.sh CONFIG GPUS [train.py arguments]
# Python: $PYTHON if set, else the repository's .venv/bin/python, else python3.
# Multi-node: NNODES, NODE_RANK, MASTER_ADDR and PORT in the environment.
# Without CUDA the processes use the gloo backend on the CPU.
# Restarts: MAX_RESTARTS=N (default 0) lets torchrun restart all processes
# up to N times when one of them fails; the restarted processes resume from
# the latest checkpoint of the work dir by themselves.
# Stopping: torchrun passes SIGTERM, SIGINT, SIGHUP, SIGQUIT and SIGUSR1 on
# to the processes, which save a checkpoint and exit with code 75 when the
# config has mmitpn.PreemptionHook; it kills them SHUTDOWN_TIMEOUT seconds
# later (default 120).
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 2 ]; then
  usage >&2
  exit 2
fi

CONFIG=$1
GPUS=$2
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
MAX_RESTARTS=${MAX_RESTARTS:-0}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The repository's .venv (made by make) unless PYTHON names another one.
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
# Read by torchrun as its --signals-to-handle and --shutdown-timeout
# (versions without these options ignore them).
export PET_SIGNALS_TO_HANDLE="${PET_SIGNALS_TO_HANDLE:-SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1}"
export PET_SHUTDOWN_TIMEOUT="${SHUTDOWN_TIMEOUT:-120}"

PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
"$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    --max-restarts="$MAX_RESTARTS" \
    "$ROOT/tools/train.py" "$CONFIG" --launcher pytorch "${@:3}"

#!/usr/bin/env bash
# Training on a Slurm cluster.
# Usage: [GPUS=16 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SRUN_ARGS=...] \
#     tools/slurm_train.sh PARTITION JOB_NAME CONFIG WORK_DIR [train.py args]
# Python: $PYTHON if set, else the repository's .venv/bin/python, else python3.
# Time limits and preemption: when this script starts the job (from a login
# node), Slurm sends it SIGNAL before the time limit (default USR1@120:
# SIGUSR1 120 s before; SIGNAL= sends none); inside an sbatch job, request
# it with `#SBATCH --signal=USR1@120 --requeue`. With mmitpn.PreemptionHook
# the processes then save a checkpoint and stop, and the job requeues itself,
# at most MAX_REQUEUES times (default 10; 0 never): inside sbatch with
# `scontrol requeue`, from a login node by starting srun again. Either way
# training resumes from the latest checkpoint of WORK_DIR.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
case "${1:-}" in
  -h|--help) usage; exit 0 ;;
esac
if [ $# -lt 4 ]; then
  usage >&2
  exit 2
fi

PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
SIGNAL=${SIGNAL-USR1@120}
MAX_REQUEUES=${MAX_REQUEUES:-10}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The repository's .venv (made by make) unless PYTHON names another one.
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
# Written by the training's main process once it saved a checkpoint on a
# signal (mmitpn.PreemptionHook): the sign to requeue, whatever srun's exit
# code (it is 128 + 9 when srun killed a process that was still exiting).
STOP_RECORD="$WORK_DIR/preempted.json"
STOPPED=75

options=()
if [ -z "${SLURM_JOB_ID:-}" ] && [ -n "$SIGNAL" ]; then
  options+=(--signal="$SIGNAL")  # only for the allocation srun makes
fi
resume=()
requeues=0
while true; do
  rm -f "$STOP_RECORD"
  status=0
  # shellcheck disable=SC2086
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" \
  srun -p "$PARTITION" \
      --job-name="$JOB_NAME" \
      --gres=gpu:"$GPUS_PER_NODE" \
      --ntasks="$GPUS" \
      --ntasks-per-node="$GPUS_PER_NODE" \
      --cpus-per-task="$CPUS_PER_TASK" \
      --kill-on-bad-exit=1 \
      ${options[@]+"${options[@]}"} \
      $SRUN_ARGS \
      "$PYTHON" -u "$ROOT/tools/train.py" "$CONFIG" \
      --work-dir="$WORK_DIR" --launcher=slurm "${@:5}" \
      ${resume[@]+"${resume[@]}"} || status=$?
  if [ ! -f "$STOP_RECORD" ]; then
    exit "$status"
  fi
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    done_requeues=${SLURM_RESTART_COUNT:-0}
  else
    done_requeues=$requeues
  fi
  if [ "$done_requeues" -ge "$MAX_REQUEUES" ]; then
    echo "slurm_train.sh: training stopped on a signal after saving a checkpoint; not requeued ($done_requeues of MAX_REQUEUES=$MAX_REQUEUES done). Run the same command again to resume." >&2
    exit "$STOPPED"
  fi
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    echo "slurm_train.sh: training stopped on a signal after saving a checkpoint; requeueing job $SLURM_JOB_ID." >&2
    if ! scontrol requeue "$SLURM_JOB_ID"; then
      echo "slurm_train.sh: scontrol could not requeue job $SLURM_JOB_ID (only sbatch jobs submitted with --requeue can be); run the same command again to resume." >&2
    fi
    exit "$STOPPED"
  fi
  requeues=$((requeues + 1))
  resume=(--resume)
  echo "slurm_train.sh: training stopped on a signal after saving a checkpoint; starting it again ($requeues of MAX_REQUEUES=$MAX_REQUEUES), resuming from $WORK_DIR." >&2
done

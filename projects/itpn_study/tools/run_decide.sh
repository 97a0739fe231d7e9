#!/usr/bin/env bash
# Run the plan decide in the background, resumably, and commit its record
# after every finished run.
#
#   projects/itpn_study/tools/run_decide.sh [LOG_DIR]
#
# Starts, from the repository root of the checkout it lives in: the plan
# (one process, OMP_NUM_THREADS=1, nice 19; recorded runs are skipped, so
# starting it again resumes it) with its interim report written into its
# work dir, and the committer (tools/commit_record.py), which commits
# records/itpn_study_decide_results.json alone to the checked-out branch
# each time runs are added, until the plan ends. Logs and the two process
# ids go to LOG_DIR (default work_dirs/itpn_decide/logs). Python is
# $PYTHON, else .venv/bin/python. Stop the plan, its training process and
# the committer with:
#   kill $(pgrep -P "$(cut -d" " -f1 LOG_DIR/pids)") $(cat LOG_DIR/pids)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$repo"
python=${PYTHON:-$repo/.venv/bin/python}
log_dir=${1:-$repo/work_dirs/itpn_decide/logs}
work_dir=work_dirs/itpn_decide
record=projects/itpn_study/records/itpn_study_decide_results.json
mkdir -p "$log_dir" "$work_dir/report"
if [ -f "$log_dir/pids" ]; then
    read -r running _ <"$log_dir/pids"
    # A process id left by an earlier working period may now name another
    # process: only a running plan counts.
    if ps -p "$running" -o args= 2>/dev/null | grep -q 'itpn_study --plan decide'; then
        echo "the plan is already running (process $running)" >&2
        exit 1
    fi
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1
nohup nice -n 19 "$python" -m projects.itpn_study.tools.itpn_study \
    --plan decide --work-dir "$work_dir" \
    --out "$work_dir/report/itpn_study_decide.md" \
    --fig-dir "$work_dir/report/figures" >>"$log_dir/plan.log" 2>&1 &
plan=$!
nohup nice -n 19 "$python" -m projects.itpn_study.tools.commit_record \
    --record "$record" --follow "$plan" >>"$log_dir/commits.log" 2>&1 &
echo "$plan $!" >"$log_dir/pids"
echo "plan $plan, committer $! (logs in $log_dir)"

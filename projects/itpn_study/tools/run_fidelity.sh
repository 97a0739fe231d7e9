#!/usr/bin/env bash
# Run the token-reduction fidelity study in the background, resumably, and
# commit its record after every finished run.
#
#   projects/itpn_study/tools/run_fidelity.sh [LOG_DIR]
#
# Starts, from the repository root of the checkout it lives in: the study
# (tools/token_reduction_fidelity.py: one process, OMP_NUM_THREADS=1, nice
# 19; recorded runs are skipped and an interrupted run resumes from its last
# checkpoint, so starting it again resumes it) with its interim report in
# its work dir, and the committer (tools/commit_record.py), which commits
# records/token_reduction_fidelity.json alone to the checked-out branch each
# time runs are added, until the study ends. Logs and the two process ids go
# to LOG_DIR (default work_dirs/fidelity/logs). Python is $PYTHON, else
# .venv/bin/python. Stop the study, its training process and the committer
# with:
#   kill $(pgrep -P "$(cut -d" " -f1 LOG_DIR/pids)") $(cat LOG_DIR/pids)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../../.." && pwd)
cd "$repo"
python=${PYTHON:-$repo/.venv/bin/python}
log_dir=${1:-$repo/work_dirs/fidelity/logs}
work_dir=work_dirs/fidelity
record=projects/itpn_study/records/token_reduction_fidelity.json
mkdir -p "$log_dir"
if [ -f "$log_dir/pids" ]; then
    read -r running _ <"$log_dir/pids"
    # A process id left by an earlier working period may now name another
    # process: only a running study counts.
    if ps -p "$running" -o args= 2>/dev/null | grep -q 'token_reduction_fidelity'; then
        echo "the study is already running (process $running)" >&2
        exit 1
    fi
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" OMP_NUM_THREADS=1
nohup nice -n 19 "$python" -m projects.itpn_study.tools.token_reduction_fidelity \
    --work-dir "$work_dir" --out "$work_dir/report.md" >>"$log_dir/study.log" 2>&1 &
study=$!
nohup nice -n 19 "$python" -m projects.itpn_study.tools.commit_record \
    --record "$record" --follow "$study" >>"$log_dir/commits.log" 2>&1 &
echo "$study $!" >"$log_dir/pids"
echo "study $study, committer $! (logs in $log_dir)"

# Copyright (c) mmitpn contributors. All rights reserved.
"""Commit a study record, and nothing else, each time runs are added to it.

Compares the record with the version of the current commit and, when runs
were added or changed, commits the record alone (``git commit -- <record>``;
other staged or changed files stay as they are), the message naming each new
run and its headline number. With ``--follow PID`` it checks every
``--interval`` seconds while process ``PID`` (the plan) runs, and once more
after it ends.

Example (from the repository root)::

    python -m projects.itpn_study.tools.commit_record \\
        --record projects/itpn_study/records/itpn_study_decide_results.json \\
        --follow 12345
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import time
from typing import List, Optional

from mmitpn.utils.cli import add_debug_argument, run_tool
from projects.itpn_study.study.record import load_record, new_runs


def git(repo: str, *args: str, check: bool = True) -> str:
    return subprocess.run(['git', '-C', repo, *args],
                          check=check,
                          capture_output=True,
                          text=True).stdout


def committed_record(repo: str, path: str) -> dict:
    """The record as the current commit holds it (empty when it does
    not)."""
    result = subprocess.run(['git', '-C', repo, 'show', f'HEAD:{path}'],
                            capture_output=True,
                            text=True)
    return json.loads(result.stdout) if result.returncode == 0 else {}


def message(runs: dict, plan: str) -> str:
    """The commit message: the first new run and its headline (and how many
    more), then one line per run."""
    first, *rest = runs
    subject = f'Record {plan}: {first} finished, {runs[first]}'
    if rest:
        subject += f' (+{len(rest)} more)'
    body = '\n'.join(f'- {key}: {text}' for key, text in runs.items())
    return f'{subject}\n\n{body}\n'


def commit_once(record: str) -> Optional[str]:
    """Commit ``record`` if runs were added since the current commit;
    returns the message, or None when there was nothing to commit."""
    folder = osp.dirname(osp.abspath(record))
    repo = git(folder, 'rev-parse', '--show-toplevel').strip()
    path = osp.relpath(osp.abspath(record), repo)
    runs = new_runs(committed_record(repo, path), load_record(record))
    if not runs:
        return None
    plan = osp.splitext(osp.basename(record))[0].replace('itpn_study_',
                                                         '').replace(
                                                             '_results', '')
    text = message(runs, plan)
    git(repo, 'add', '--', path)
    git(repo, 'commit', '--quiet', '-m', text, '--', path)
    return text


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--record', required=True, help='the record file')
    parser.add_argument(
        '--follow',
        type=int,
        help='keep committing while the process with this id runs')
    parser.add_argument(
        '--interval',
        type=float,
        default=60.,
        help='seconds between checks with --follow')
    add_debug_argument(parser)
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> None:
    args = parse_args(argv)
    while True:
        running = args.follow is not None and alive(args.follow)
        try:
            text = commit_once(args.record)
        except subprocess.CalledProcessError as error:
            # e.g. another git process holds the index lock: next time
            text = None
            print(
                f'[{time.strftime("%H:%M:%S")}] git failed: '
                f'{error.stderr.strip()}',
                flush=True)
        if text:
            print(
                f'[{time.strftime("%H:%M:%S")}] committed: '
                f'{text.splitlines()[0]}',
                flush=True)
        if not running:
            return
        time.sleep(args.interval)


if __name__ == '__main__':
    run_tool(main)

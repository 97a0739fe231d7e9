# Copyright (c) mmitpn contributors. All rights reserved.
"""The shell launchers run the repository's .venv Python after ``make``
(no activated environment needed), or ``$PYTHON`` when it is set, and answer
``--help``."""
import os
import os.path as osp
import shutil
import stat
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
LAUNCHERS = {
    'dist_train.sh': ['CONFIG', '2'],
    'dist_test.sh': ['CONFIG', 'CHECKPOINT', '2'],
    'slurm_train.sh': ['PARTITION', 'JOB', 'CONFIG', 'WORK_DIR'],
    'slurm_test.sh': ['PARTITION', 'JOB', 'CONFIG', 'CHECKPOINT'],
}


def recording_program(path):
    """An executable that appends its own path and arguments to ``$CALLS``."""
    path.write_text('#!/usr/bin/env bash\necho "$0 $*" >> "$CALLS"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def repo_copy(tmp_path):
    """The launchers in a repository layout with a recording .venv python
    and a recording ``srun`` on ``PATH``."""
    (tmp_path / 'tools').mkdir()
    for name in LAUNCHERS:
        shutil.copy(osp.join(REPO, 'tools', name), tmp_path / 'tools')
    (tmp_path / '.venv' / 'bin').mkdir(parents=True)
    recording_program(tmp_path / '.venv' / 'bin' / 'python')
    (tmp_path / 'bin').mkdir()
    recording_program(tmp_path / 'bin' / 'srun')
    recording_program(tmp_path / 'other-python')
    return tmp_path


def run(launcher, args, env):
    return subprocess.run(
        [str(launcher)] + args,
        capture_output=True,
        text=True,
        env=env,
        timeout=30)


@pytest.mark.parametrize('name', sorted(LAUNCHERS))
def test_launcher_runs_the_venv_python_or_python_env(repo_copy, name):
    """dist_*.sh run the interpreter, slurm_*.sh hand it to srun."""
    calls = repo_copy / 'calls'
    env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
    env.update(PATH=f'{repo_copy / "bin"}:{env["PATH"]}', CALLS=str(calls))
    launcher = repo_copy / 'tools' / name
    result = run(launcher, LAUNCHERS[name], env)
    assert result.returncode == 0, result.stderr
    assert str(repo_copy / '.venv' / 'bin' / 'python') in calls.read_text()
    calls.unlink()
    other = str(repo_copy / 'other-python')
    result = run(launcher, LAUNCHERS[name], dict(env, PYTHON=other))
    assert result.returncode == 0, result.stderr
    text = calls.read_text()
    assert other in text and '.venv' not in text


@pytest.mark.parametrize('name', sorted(LAUNCHERS))
def test_launcher_help_and_missing_arguments(name):
    launcher = osp.join(REPO, 'tools', name)
    result = run(launcher, ['--help'], dict(os.environ))
    assert result.returncode == 0
    assert f'tools/{name}' in result.stdout and 'PYTHON' in result.stdout
    result = run(launcher, [], dict(os.environ))
    assert result.returncode == 2 and 'Usage' in result.stderr

# Copyright (c) mmitpn contributors. All rights reserved.
""".dev_scripts/device_bundle.sh: its pins, arguments and size check, on fake
wheel folders (no network)."""
import os
import os.path as osp
import re
import subprocess

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, '.dev_scripts', 'device_bundle.sh')
PINS = osp.join(REPO, '.dev_scripts', 'device_requirements.txt')


def run(*args):
    return subprocess.run(['bash', SCRIPT, *map(str, args)],
                          capture_output=True,
                          text=True,
                          cwd=REPO)


def pins(path=PINS):
    lines = (line.split('#')[0].strip() for line in open(path))
    return [line for line in lines if line]


def fake_bundle(folder, wheels):
    """Sparse files of the given MiB, named as wheels."""
    os.makedirs(folder, exist_ok=True)
    for name, mib in wheels.items():
        with open(osp.join(folder, name), 'wb') as file:
            file.truncate(int(mib * 2**20))


@pytest.fixture
def requirements(tmp_path):
    path = tmp_path / 'device.txt'
    path.write_text('# two wheels\nfoo-bar==1.0\nBaz.Qux==2.0.post1  # note\n')
    return path


def test_pins_are_exact_and_use_mmcv_lite():
    lines = pins()
    assert all(
        re.fullmatch(r'[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+', line)
        for line in lines), lines
    names = [line.split('==')[0].lower() for line in lines]
    assert len(set(names)) == len(names)
    assert 'mmcv-lite==2.1.0' in lines and 'mmcv' not in names
    # The machine's image holds these: carrying another copy would shadow it.
    assert not {'torch', 'torchvision', 'numpy'} & set(names)
    assert {'mmengine', 'mmpretrain', 'open_clip_torch'} <= set(names)


def test_dry_run_prints_the_download_and_the_install_line():
    result = run('--dry-run')
    assert result.returncode == 0, result.stderr
    command = result.stdout.splitlines()[0]
    assert ' -m pip download --no-deps --only-binary=:all: --python-version ' \
        '3.12 --implementation cp ' in command
    assert '--platform manylinux2014_x86_64' in command
    assert command.split()[-len(pins()):] == pins()
    assert 'install line: python3 -m pip install -q --no-index --no-deps ' \
        '--no-compile --no-cache-dir --upgrade --target /tmp/site ' \
        'build/device-wheels/*.whl && export PYTHONPATH=/tmp/site:$PWD ' \
        '|| exit;' in result.stdout


def test_dry_run_with_cache_and_target(tmp_path):
    result = run('--dry-run', '--cache', tmp_path / 'cache', '--target',
                 '/opt/x', tmp_path / 'bundle')
    assert result.returncode == 0, result.stderr
    assert f'-d {tmp_path / "cache"} ' in result.stdout
    assert f'--target /opt/x {tmp_path / "bundle"}/*.whl' in result.stdout


def test_check_only_accepts_a_bundle_within_the_limit(tmp_path, requirements):
    fake_bundle(
        tmp_path / 'b', {
            'foo_bar-1.0-py3-none-any.whl': 1,
            'baz_qux-2.0.post1-cp312-cp312-manylinux_2_17_x86_64.whl': 2
        })
    result = run('--check-only', '--requirements', requirements,
                 tmp_path / 'b')
    assert result.returncode == 0, result.stderr
    assert 'bundle 3.0 MiB (2 wheels) + project' in result.stdout
    assert 'within the 64 MiB carry limit (margin 8 MiB kept free)' \
        in result.stdout


def test_size_check_fails_over_the_limit(tmp_path, requirements):
    fake_bundle(
        tmp_path / 'b', {
            'foo_bar-1.0-py3-none-any.whl': 50,
            'baz_qux-2.0.post1-py3-none-any.whl': 5
        })
    result = run('--check-only', '--requirements', requirements,
                 tmp_path / 'b')
    assert result.returncode == 1
    assert 'over the 64 MiB carry limit less the 8 MiB margin' \
        in result.stderr
    # The same bundle passes with a smaller margin.
    assert run('--check-only', '--requirements', requirements, '--margin-mib',
               '2', tmp_path / 'b').returncode == 0


@pytest.mark.parametrize(
    'wheels, message', [({
        'foo_bar-1.0-py3-none-any.whl': 1
    }, 'no wheel for Baz.Qux==2.0.post1'),
                        ({
                            'foo_bar-1.0-py3-none-any.whl': 1,
                            'baz_qux-2.0.post1-py3-none-any.whl': 1,
                            'foo_bar-0.9-py3-none-any.whl': 1
                        }, 'foo_bar-0.9-py3-none-any.whl is not pinned'),
                        ({
                            'foo_bar-1.0-py3-none-any.whl': 1,
                            'foo_bar-1.0-cp312-cp312-manylinux1_x86_64.whl': 1,
                            'baz_qux-2.0.post1-py3-none-any.whl': 1
                        }, 'two wheels for foo-bar==1.0')])
def test_check_only_wants_exactly_one_wheel_per_pin(tmp_path, requirements,
                                                    wheels, message):
    fake_bundle(tmp_path / 'b', wheels)
    result = run('--check-only', '--requirements', requirements,
                 tmp_path / 'b')
    assert result.returncode == 1
    assert message in result.stderr, result.stderr


@pytest.mark.parametrize('args, message', [
    (['--limit-mib', '6x'], 'take whole MiB'),
    (['--frobnicate'], 'unknown option --frobnicate'),
    (['--requirements', '/no/such/file'], '/no/such/file not found'),
])
def test_bad_arguments_end_with_one_line(args, message):
    result = run('--dry-run', *args)
    assert result.returncode == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unpinned_line_names_the_file_and_line(tmp_path):
    path = tmp_path / 'device.txt'
    path.write_text('foo==1.0\n\nbar>=2\n')
    result = run('--dry-run', '--requirements', path)
    assert result.returncode == 1
    assert f"{path}:3: 'bar>=2' is not NAME==VERSION" in result.stderr

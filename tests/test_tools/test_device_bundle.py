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


def pins(path=PINS, local=None):
    """The pins of ``path``; with ``local`` given, only the lines marked
    ``# local`` (True) or only the others (False)."""
    found = []
    for line in open(path):
        pin, _, comment = line.partition('#')
        if pin.strip() and (local is None
                            or comment.strip().startswith('local') == local):
            found.append(pin.strip())
    return found


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


def test_pins_are_exact_and_carry_the_cuda_mmcv_built_here():
    lines = pins()
    assert all(
        re.fullmatch(r'[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+', line)
        for line in lines), lines
    names = [line.split('==')[0].lower() for line in lines]
    assert len(set(names)) == len(names)
    # mmcv with CUDA ops, which the registry has only as source, is built
    # here; detection and segmentation come with it.
    assert pins(local=True) == ['mmcv==2.1.0']
    assert 'mmcv-lite' not in names
    assert {'mmdet==3.3.0', 'mmsegmentation==1.2.2'} <= set(lines)
    # The machine's image holds these: carrying another copy would shadow it.
    assert not {'torch', 'torchvision', 'numpy', 'scipy'} & set(names)
    assert {'mmengine', 'mmpretrain', 'open_clip_torch'} <= set(names)


def test_dry_run_prints_the_download_and_the_install_line(tmp_path):
    result = run('--dry-run', '--find-links', tmp_path / 'built')
    assert result.returncode == 0, result.stderr
    command = result.stdout.splitlines()[0]
    assert ' -m pip download --no-deps --only-binary=:all: --python-version ' \
        '3.12 --implementation cp ' in command
    assert '--platform manylinux2014_x86_64' in command
    registry = pins(local=False)
    assert command.split()[-len(registry):] == registry
    assert f'copy the local wheels mmcv==2.1.0 from {tmp_path / "built"}' \
        in result.stdout
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


@pytest.fixture
def local_requirements(tmp_path):
    """Only wheels built here, so that collecting them needs no network."""
    path = tmp_path / 'local.txt'
    path.write_text('mmcv==2.1.0  # local: built with CUDA ops\n'
                    'foo==1.0  # local\n')
    return path


def test_local_wheels_are_copied_from_find_links(tmp_path, local_requirements):
    fake_bundle(
        tmp_path / 'built', {
            'mmcv-2.1.0-cp312-cp312-linux_x86_64.whl': 6,
            'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl': 9,
            'foo-1.0-py3-none-any.whl': 1
        })
    fake_bundle(tmp_path / 'b', {'stale-0.1-py3-none-any.whl': 1})
    result = run('--requirements', local_requirements, '--find-links',
                 tmp_path / 'built', tmp_path / 'b')
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path / 'b')) == [
        'foo-1.0-py3-none-any.whl', 'mmcv-2.1.0-cp312-cp312-linux_x86_64.whl'
    ]
    assert 'downloading' not in result.stdout
    assert 'bundle 7.0 MiB (2 wheels)' in result.stdout


@pytest.mark.parametrize('built, message', [
    ({}, 'no CPython 3.12 x86-64 wheel for mmcv==2.1.0 in'),
    ({
        'mmcv-2.1.0-cp311-cp311-linux_x86_64.whl': 1
    }, 'no CPython 3.12 x86-64 wheel for mmcv==2.1.0 in'),
    ({
        'mmcv-2.1.0-cp312-cp312-linux_x86_64.whl': 1,
        'mmcv-2.1.0-cp312-cp312-manylinux_2_28_x86_64.whl': 1
    }, 'two wheels for mmcv==2.1.0'),
])
def test_a_missing_local_wheel_says_how_to_build_it(tmp_path,
                                                    local_requirements, built,
                                                    message):
    fake_bundle(tmp_path / 'built', {'foo-1.0-py3-none-any.whl': 1, **built})
    result = run('--requirements', local_requirements, '--find-links',
                 tmp_path / 'built', tmp_path / 'b')
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    if not built:
        assert 'device_mmcv_wheel.sh' in result.stderr

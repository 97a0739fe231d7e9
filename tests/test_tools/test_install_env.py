# Copyright (c) mmitpn contributors. All rights reserved.
"""tools/misc/install_env.sh's CUDA-or-CPU decision (--dry-run, with a fake
nvidia-smi on PATH), the nvcc C++20 wrapper and the Makefile's interpreter
hand-over, and the alias distribution of the onedl stack; nothing is
installed."""
import base64
import hashlib
import importlib.metadata
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'misc', 'install_env.sh')
NVCC20 = osp.join(REPO, 'tools', 'misc', 'nvcc20')
# What the script runs besides bash's builtins.
TOOLS = ('bash', 'sh', 'sed', 'grep', 'tr', 'sort', 'dirname', 'cat')


def write_script(path, text):
    path.write_text('#!/bin/sh\n' + text)
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path):
    """A PATH of the tools the script needs and nothing else (no nvidia-smi
    unless a test writes one)."""
    folder = tmp_path / 'bin'
    folder.mkdir()
    for tool in TOOLS:
        os.symlink(shutil.which(tool), folder / tool)
    return folder


def fake_nvidia_smi(bin_dir, body):
    """A nvidia-smi that logs its arguments to ``calls`` beside it."""
    write_script(bin_dir / 'nvidia-smi',
                 f'echo "$*" >> "{bin_dir}/calls"\n{body}')


def decide(bin_dir, *args, **env):
    environ = {'PATH': str(bin_dir), 'HOME': os.environ.get('HOME', '/')}
    environ.update(env)
    result = subprocess.run(['bash', SCRIPT, '--dry-run', *args],
                            capture_output=True,
                            text=True,
                            env=environ,
                            cwd=REPO)
    return result.returncode, result.stdout + result.stderr


def test_no_nvidia_smi_builds_cpu_ops(bin_dir, tmp_path):
    code, out = decide(bin_dir, str(tmp_path / 'venv'))
    assert code == 0, out
    assert 'mmcv ops: CPU only (no visible GPU' in out
    assert f'environment: {tmp_path}/venv' in out
    # A dry run creates nothing.
    assert not (tmp_path / 'venv').exists()


def test_visible_gpus_give_their_archs(bin_dir):
    fake_nvidia_smi(bin_dir, 'printf "9.0\\n 8.0\\n9.0\\n"')
    code, out = decide(bin_dir)
    assert code == 0, out
    assert 'mmcv ops: CUDA for TORCH_CUDA_ARCH_LIST="8.0;9.0" ' \
        '(the visible GPUs; nvidia-smi lists visible GPUs of compute ' \
        'capability 8.0,9.0)' in out
    assert '--query-gpu=compute_cap --format=csv,noheader' in (
        bin_dir / 'calls').read_text()


def test_cuda_visible_devices_selects_and_hides(bin_dir):
    fake_nvidia_smi(bin_dir,
                    'case "$*" in "-i 1 "*) echo 8.6 ;; *) echo 9.0 ;; esac')
    code, out = decide(bin_dir, CUDA_VISIBLE_DEVICES='1')
    assert code == 0 and 'TORCH_CUDA_ARCH_LIST="8.6"' in out, out
    for hidden in ('', '-1'):
        code, out = decide(bin_dir, CUDA_VISIBLE_DEVICES=hidden)
        assert code == 0 and 'mmcv ops: CPU only' in out, out


def test_failing_or_empty_nvidia_smi_builds_cpu_ops(bin_dir):
    # What nvidia-smi says where the driver is not loaded.
    fake_nvidia_smi(bin_dir, 'echo "NVIDIA-SMI has failed"; exit 9')
    assert 'mmcv ops: CPU only' in decide(bin_dir)[1]
    fake_nvidia_smi(bin_dir, 'echo "No devices were found"; exit 6')
    assert 'mmcv ops: CPU only' in decide(bin_dir)[1]


def test_old_driver_without_compute_cap_uses_the_default(bin_dir):
    fake_nvidia_smi(
        bin_dir, 'case "$*" in *-L*) echo "GPU 0: NVIDIA A100 (UUID: x)" ;;\n'
        '*) echo "Field \\"compute_cap\\" is not a valid field"; exit 2 ;;'
        ' esac')
    code, out = decide(bin_dir)
    assert code == 0, out
    assert 'TORCH_CUDA_ARCH_LIST="8.0;9.0" (default: A100 sm_80, H100 and ' \
        'H200 sm_90; nvidia-smi lists visible GPUs of compute capability ' \
        'unknown)' in out


def test_explicit_choices_beat_detection(bin_dir):
    fake_nvidia_smi(bin_dir, 'echo 9.0')
    code, out = decide(bin_dir, FORCE_CUDA='0')
    assert code == 0 and 'mmcv ops: CPU only (FORCE_CUDA=0)' in out, out
    code, out = decide(bin_dir, '--cuda', 'no', FORCE_CUDA='1')
    assert code == 0 and 'mmcv ops: CPU only (--cuda no)' in out, out
    code, out = decide(bin_dir, TORCH_CUDA_ARCH_LIST='9.0+PTX')
    assert 'TORCH_CUDA_ARCH_LIST="9.0+PTX" (TORCH_CUDA_ARCH_LIST;' in out
    os.remove(bin_dir / 'nvidia-smi')
    for args, env in [((), dict(FORCE_CUDA='1')), (('--cuda=yes', ), {})]:
        code, out = decide(bin_dir, *args, **env)
        assert code == 0, out
        assert 'mmcv ops: CUDA for TORCH_CUDA_ARCH_LIST="8.0;9.0" (default' \
            in out


@pytest.mark.parametrize('args,env,message', [
    (('--cuda', 'maybe'), {}, "--cuda 'maybe' is unknown"),
    ((), dict(FORCE_CUDA='yes'), "FORCE_CUDA='yes': use 1"),
    (('--stack', 'mmlab'), {}, "--stack 'mmlab' is unknown"),
    (('--cuda', 'yes'), dict(TORCH_CUDA_ARCH_LIST='7.0;8.0'),
     'compute capability 7.0 is below 7.5'),
    (('--frobnicate', ), {}, 'unknown option --frobnicate'),
])
def test_bad_choices_fail_with_one_line(bin_dir, args, env, message):
    code, out = decide(bin_dir, *args, **env)
    assert code == 2
    assert message in out and len(out.strip().splitlines()) == 1, out


def test_nvcc20_rewrites_the_standard_only(tmp_path):
    fake = tmp_path / 'nvcc'
    write_script(fake, 'for a; do echo "[$a]"; done')
    result = subprocess.run([
        NVCC20, '-std=c++17', '-c', 'a b.cu', '-Xcompiler', '-std=c++14',
        '-gencode=arch=compute_90,code=sm_90'
    ],
                            capture_output=True,
                            text=True,
                            env=dict(os.environ, MMITPN_REAL_NVCC=str(fake)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split('\n')[:-1] == [
        '[-std=c++20]', '[-c]', '[a b.cu]', '[-Xcompiler]', '[-std=c++20]',
        '[-gencode=arch=compute_90,code=sm_90]'
    ]


def test_nvcc20_runs_the_toolkit_of_cuda_home(tmp_path):
    (tmp_path / 'bin').mkdir()
    write_script(tmp_path / 'bin' / 'nvcc', 'echo "nvcc of CUDA_HOME $*"')
    env = {k: v for k, v in os.environ.items() if k != 'MMITPN_REAL_NVCC'}
    result = subprocess.run([NVCC20, '--version'],
                            capture_output=True,
                            text=True,
                            env=dict(env, CUDA_HOME=str(tmp_path)))
    assert result.stdout == 'nvcc of CUDA_HOME --version\n'
    env.pop('CUDA_HOME', None)
    result = subprocess.run([NVCC20], capture_output=True, text=True, env=env)
    assert result.returncode != 0 and 'CUDA_HOME' in result.stderr


def test_make_hands_the_users_interpreter_to_the_script(tmp_path):
    venv = tmp_path / 'venv'
    commands = {}
    for python in ('python3.12', None):
        env = {k: v for k, v in os.environ.items() if k != 'PYTHON'}
        if python:
            env['PYTHON'] = python
        result = subprocess.run([
            'make', '-n', 'install', f'VENV={venv}', 'test-onedl',
            f'ONEDL_VENV={venv}-onedl'
        ],
                                capture_output=True,
                                text=True,
                                env=env,
                                cwd=REPO)
        assert result.returncode == 0, result.stderr
        commands[python] = result.stdout
    assert f'PYTHON=python3.12 tools/misc/install_env.sh {venv} ' in \
        commands['python3.12']
    assert f'tools/misc/install_env.sh --stack onedl {venv}-onedl ' in \
        commands['python3.12']
    assert f'PYTHON=python3 tools/misc/install_env.sh {venv} ' in \
        commands[None]
    assert f'{venv}-onedl/bin/python -m pytest -n auto' in commands[None]


ALIAS = osp.join(REPO, 'tools', 'misc', 'alias_dist.py')


def fake_site(tmp_path):
    """A site-packages with the fork's distribution and its module mmseg."""
    site = tmp_path / 'site'
    (site / 'mmseg').mkdir(parents=True)
    (site / 'mmseg' / '__init__.py').write_text('')
    dist_info = site / 'onedl_mmsegmentation-1.4.2.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: onedl-mmsegmentation\nVersion: 1.4.2\n')
    return site


def alias(site, *args, provider='onedl-mmsegmentation'):
    return subprocess.run([
        sys.executable, ALIAS, 'mmsegmentation', provider, 'mmseg', '--site',
        str(site), *args
    ],
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, PYTHONPATH=str(site)))


def read_alias(site):
    """What importlib.metadata (mmengine's source) reads of the alias."""
    dist = next(
        importlib.metadata.distributions(
            name='mmsegmentation', path=[str(site)]))
    return (dist.version, dist.requires, dist.read_text('top_level.txt'),
            [str(f) for f in dist.files], str(dist.locate_file('')))


def test_alias_distribution_names_the_fork(tmp_path):
    site = fake_site(tmp_path)
    for _ in range(2):  # idempotent: the older alias is replaced
        result = alias(site)
        assert result.returncode == 0, result.stderr
    version, requires, top_level, files, location = read_alias(site)
    assert version == '1.4.2'
    assert requires == ['onedl-mmsegmentation==1.4.2']
    assert top_level == 'mmseg\n'
    assert osp.join(location, top_level.strip()) == str(site / 'mmseg')
    folder = site / 'mmsegmentation-1.4.2.dist-info'
    assert sorted(files) == sorted(f'mmsegmentation-1.4.2.dist-info/{name}'
                                   for name in ('METADATA', 'INSTALLER',
                                                'top_level.txt', 'RECORD'))
    for line in (folder / 'RECORD').read_text().splitlines():
        path, digest, size = line.split(',')
        if digest:
            data = (site / path).read_bytes()
            assert int(size) == len(data)
            assert digest == 'sha256=' + base64.urlsafe_b64encode(
                hashlib.sha256(data).digest()).rstrip(b'=').decode()


def test_alias_leaves_a_real_distribution_alone(tmp_path):
    site = fake_site(tmp_path)
    real = site / 'mmsegmentation-1.2.2.dist-info'
    real.mkdir()
    (real / 'INSTALLER').write_text('pip\n')
    result = alias(site)
    assert result.returncode == 1
    assert 'is a real distribution of mmsegmentation' in result.stderr
    assert sorted(os.listdir(site)) == [
        'mmseg', 'mmsegmentation-1.2.2.dist-info',
        'onedl_mmsegmentation-1.4.2.dist-info'
    ]


def test_alias_needs_the_provider(tmp_path):
    site = tmp_path / 'empty'
    site.mkdir()
    # A provider no environment has (the onedl stack has the real one).
    result = alias(site, provider='no-such-mmseg-provider')
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'no-such-mmseg-provider is not installed: install it before aliasing '
        'mmsegmentation to it')

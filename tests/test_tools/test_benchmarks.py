# Copyright (c) mmitpn contributors. All rights reserved.
"""The benchmark scripts run end to end (tiny settings on the CPU; the GPU
check's dry run is in test_gpu_check.py)."""
import json
import os.path as osp
import subprocess
import sys

import torch

from mmitpn.utils import cpu_has_native_bf16

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'analysis_tools')
DEMO = osp.join(REPO, 'configs', 'pretrain', 'demo',
                'itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py')


def run(*args):
    result = subprocess.run([sys.executable, *args],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout


def test_downstream_benchmark_tiny(tmp_path):
    # One case per task and detector / segmentor type, and one generated
    # token-reduction case (the backbone options are tested with the
    # models).
    out = run(
        osp.join(TOOLS, 'benchmark_downstream.py'), '--tiny', '--cases',
        'mask-rcnn itpn-base clip', 'upernet itpn-base',
        'finetune vit-b (mmpretrain)',
        'upernet fast-itpn-base, windows + 8 gathering tokens + migration '
        'keep 0.5', 'dino fast-itpn-base', 'mask2former itpn-base', '--iters',
        '1', '--warmup', '0', '--json', str(tmp_path / 'results.json'))
    results = json.load(open(tmp_path / 'results.json'))['results']
    assert [r['batch_size'] for r in results] == [1, 2, 8, 2, 1, 2]
    for result in results:
        assert result['train_s'] > 0 and result['train_peak_mb'] > 0
    assert '| upernet itpn-base | 64x64 | 2 |' in out
    assert '| dino fast-itpn-base | 96x64 | 1 |' in out
    assert '| mask2former itpn-base | 64x64 | 2 |' in out

    # Resuming re-measures nothing already in the file, and refuses a file
    # measured with other settings.
    resumed = run(
        osp.join(TOOLS, 'benchmark_downstream.py'), '--tiny', '--cases',
        'upernet itpn-base', 'upernet swin-b (mmseg)', '--iters', '1',
        '--warmup', '0', '--json', str(tmp_path / 'results.json'), '--resume')
    again = json.load(open(tmp_path / 'results.json'))['results']
    assert again[:len(results)] == results
    assert [r['case']
            for r in again[len(results):]] == ['upernet swin-b (mmseg)']
    assert 'upernet itpn-base / upernet swin-b (mmseg): train step' in resumed
    refused = subprocess.run([
        sys.executable,
        osp.join(TOOLS, 'benchmark_downstream.py'), '--tiny', '--cases',
        'upernet itpn-base', '--iters', '2', '--json',
        str(tmp_path / 'results.json'), '--resume'
    ],
                             capture_output=True,
                             text=True,
                             cwd=REPO)
    assert refused.returncode != 0
    assert 'pass the same --iters' in refused.stderr + refused.stdout


def test_attention_benchmark_tiny():
    out = run(
        osp.join(TOOLS, 'benchmark_attention.py'), '--tiny', '--rounds', '1')
    rows = [line for line in out.splitlines() if line.startswith('| ')][1:]
    assert len(rows) == 18, out
    assert '| fast-itpn-base | windows 6 + 8 gathering tokens |' in out


def test_pretraining_benchmark_takes_fast_itpn():
    config = osp.join(
        REPO, 'configs', 'pretrain',
        'fast-itpn-pixel_fast-itpn-base_64xb64-amp-coslr-1600e_in1k.py')
    out = run(
        osp.join(TOOLS, 'benchmark_pretrain.py'), config, '--runs', 'mmitpn',
        'mmpretrain', '--batch-size', '1', '--iters', '1', '--warmup', '0')
    assert 'mmpretrain skipped: mmpretrain has no FastiTPN' in out
    assert 'mmitpn fp32' in out


def test_pretraining_benchmark_separates_model_and_optimizer():
    out = run(
        osp.join(TOOLS, 'benchmark_pretrain.py'), DEMO, '--amp', '--runs',
        'mmitpn', 'mmitpn-mmpretrain-optim', '--batch-size', '2', '--iters',
        '1', '--warmup', '0')
    assert 'mmitpn-mmpretrain-optim fp32' in out
    assert "optimizer settings (fp32): shipped / mmpretrain's on mmitpn" in out
    if torch.cuda.is_available() or cpu_has_native_bf16():
        assert 'mmitpn amp' in out
    else:
        assert '--amp skipped' in out and 'mmitpn amp' not in out


def test_benchmarked_models_are_initialised_as_the_runner_does():
    # DINO creates level_embed with torch.Tensor (uninitialised memory,
    # which once held NaN and made the matcher fail) and fills it in
    # init_weights.
    sys.path.insert(0, TOOLS)
    import benchmark_downstream
    cfg = benchmark_downstream.load_case_config(
        benchmark_downstream.CASES['dino fast-itpn-base'], tiny=True)
    model = benchmark_downstream.build_case_model(cfg)
    level_embed = model.level_embed.detach()
    assert torch.isfinite(level_embed).all()
    assert 0.8 < level_embed.std() < 1.2, 'normal_ of DINO.init_weights'

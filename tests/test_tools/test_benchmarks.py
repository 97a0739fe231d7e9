# Copyright (c) mmitpn contributors. All rights reserved.
"""The benchmark scripts run end to end (tiny settings on the CPU; the GPU
check's dry run is in test_gpu_check.py)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmitpn.benchmarks import describe_machine, time_steps
from mmitpn.benchmarks.downstream import (CASES, RATIOS, SPEED_VARIANTS,
                                          build_case_model, load_case_config,
                                          roi_heads_macs, select_cases)
from mmitpn.utils import cpu_has_native_bf16

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools', 'benchmarks')
CONFIGS = osp.join(REPO, 'configs')
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
        # CPU time beside wall time, and the MACs of one image.
        assert result['train_cpu_s'] > 0 and result['infer_cpu_s'] > 0
        assert result['pyramid_gmacs'] > 0
    # The whole segmentor's MACs are counted, a detector's heads are not,
    # nor Mask2Former's (its head needs data samples); a two-stage
    # detector's RoI heads are, on the RoIs its sampler keeps.
    assert [r['model_gmacs'] is not None
            for r in results] == [False, True, False, True, False, False]
    assert results[1]['model_gmacs'] > results[1]['pyramid_gmacs']
    assert [r['roi_heads_gmacs'] is not None
            for r in results] == [True, False, False, False, False, False]
    assert results[0]['roi_heads_gmacs'] > 0
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


def test_downstream_benchmark_inference_only(tmp_path):
    """``--inference-only`` times no training step: the training columns
    read ``-``, the ratios give inference alone, and such a file resumes
    only as an inference-only run."""
    args = [
        osp.join(TOOLS, 'benchmark_downstream.py'), '--tiny', '--cases',
        'upernet itpn-base', 'upernet swin-b (mmseg)', '--iters', '1',
        '--warmup', '0', '--json',
        str(tmp_path / 'infer.json')
    ]
    out = run(*args, '--inference-only')
    saved = json.load(open(tmp_path / 'infer.json'))
    assert saved['settings']['inference_only'] is True
    for result in saved['results']:
        assert result['train_s'] is None and result['train_peak_mb'] is None
        assert result['infer_s'] > 0 and result['infer_cpu_s'] > 0
    assert '| upernet itpn-base | 64x64 | 2 |' in out
    row = next(line for line in out.splitlines()
               if line.startswith('| upernet itpn-base |'))
    assert row.split(' | ')[7:10] == ['-', '-', '-']
    ratio = next(line for line in out.splitlines()
                 if line.startswith('upernet itpn-base / upernet swin-b'))
    assert 'train step' not in ratio and 'inference ' in ratio
    refused = subprocess.run([sys.executable, *args, '--resume'],
                             capture_output=True,
                             text=True,
                             cwd=REPO)
    assert refused.returncode != 0
    assert '--inference-only' in refused.stderr + refused.stdout


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
    cfg = load_case_config(CASES['dino fast-itpn-base'], CONFIGS, tiny=True)
    model = build_case_model(cfg)
    level_embed = model.level_embed.detach()
    assert torch.isfinite(level_embed).all()
    assert 0.8 < level_embed.std() < 1.2, 'normal_ of DINO.init_weights'


def test_cases_name_existing_configs_and_ratios_name_cases():
    for name, case in CASES.items():
        assert case['task'] in ('det', 'seg', 'cls'), name
        if '::' not in case['config']:
            assert osp.isfile(osp.join(CONFIGS, case['config'])), name
    assert {name for pair in RATIOS for name in pair} <= set(CASES)
    speed = select_cases(['speed'])
    # Two peers, and every variant for 2 tasks x 2 families.
    assert len(SPEED_VARIANTS) == 11
    assert len(speed) == 2 + 2 * 2 * len(SPEED_VARIANTS)
    # with_cp: global attention and the recommended setting with and
    # without activation checkpointing, the peers, and Swin-B with iTPN's
    # RoI heads.
    with_cp = select_cases(['with_cp'])
    swin_itpn_heads = 'mask-rcnn swin-b (mmdet), roi heads of itpn'
    assert len(with_cp) == 3 + 2 * 2 * 4
    assert set(with_cp) - set(speed) == {swin_itpn_heads}
    for name in with_cp[3:]:
        backbone = CASES[name]['backbone']
        assert backbone['with_cp'] == name.endswith(', with_cp'), name
        if 'window migration' in name:
            assert backbone['token_reduction']['type'] == 'window_migration'
            assert backbone['window_size'] == (14
                                               if 'mask-rcnn' in name else 16)
    assert select_cases(['base', 'mask-rcnn itpn-base']) == \
        select_cases(['base'])
    with pytest.raises(ValueError, match="Unknown case 'no such case'"):
        select_cases(['no such case'])


def test_swin_b_with_the_roi_heads_of_itpn():
    """The like-for-like peer keeps Swin and its FPN and takes iTPN's RoI
    heads, whose MACs then equal iTPN's (counted on the meta device)."""
    macs = {}
    for name in ('mask-rcnn swin-b (mmdet)',
                 'mask-rcnn swin-b (mmdet), roi heads of itpn',
                 'mask-rcnn itpn-base'):
        # Tiny backbones; the heads keep their size.
        cfg = load_case_config(CASES[name], CONFIGS, tiny=True)
        model = build_case_model(cfg).to('meta')
        macs[name] = roi_heads_macs(model)
        if 'swin' in name:
            assert model.backbone.__class__.__name__ == 'SwinTransformer'
    swin, swin_itpn_heads, itpn = macs.values()
    assert swin_itpn_heads == itpn > swin > 0


def test_time_steps_warms_up_and_stops_when_told():
    calls = []
    times = time_steps(lambda: calls.append(1), iters=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3
    assert all(t >= 0 for t in times)
    # A stop that is already true skips warm-up and times one step.
    calls.clear()
    assert len(time_steps(lambda: calls.append(1), 5, 2, stop=lambda: True)) \
        == 1 and len(calls) == 1


def test_the_machine_is_named_as_lscpu_names_it():
    line = describe_machine(threads=3, gpu=False)
    assert line.endswith(f'3 threads, torch {torch.__version__}')
    listing = subprocess.run(['lscpu'],
                             capture_output=True,
                             text=True,
                             env={
                                 'LC_ALL': 'C',
                                 'PATH': '/usr/bin:/bin'
                             })
    if listing.returncode == 0:
        model = [
            row.split(':', 1)[1].strip()
            for row in listing.stdout.splitlines()
            if row.startswith('Model name:')
        ]
        assert line.startswith(model[0]), line


def test_onnx_benchmark_times_both_runtimes():
    pytest.importorskip('onnxruntime')
    config = osp.join(
        REPO, 'configs', 'cls', 'demo',
        'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
    out = run(
        osp.join(TOOLS, 'benchmark_onnx.py'), config, '--shape', '64',
        '--rounds', '1', '--number', '1')
    assert 'machine: ' in out and '1 thread, torch' in out
    rows = [line for line in out.splitlines() if line.startswith('| ')]
    assert [row.split(' | ')[0] for row in rows[1:]] == \
        ['| PyTorch (eager)', '| ONNX Runtime']

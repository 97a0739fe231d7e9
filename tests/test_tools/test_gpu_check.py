# Copyright (c) mmitpn contributors. All rights reserved.
"""The GPU check (mmitpn.benchmarks.gpu_check, tools/benchmarks/gpu_check.py):
the row order, skips, the time limit and the written results (tiny models on
the CPU), and the full dry run."""
import json
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

from mmitpn.benchmarks import gpu_check

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools', 'benchmarks', 'gpu_check.py')

PEAKS = {'bf16': dict(nominal=None, measured=1.0)}


class Attention(torch.nn.Module):

    def __init__(self, fused: bool):
        super().__init__()
        self.proj = torch.nn.Linear(8, 24)
        self.fused = fused

    def forward(self, x):
        q, k, v = self.proj(x).view(2, 16, 3, 2, 4).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if self.fused:
            return F.scaled_dot_product_attention(q, k, v)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


def tiny_check(name,
               fused=True,
               sleep=0.0,
               fail=False,
               missing=None,
               compiled=False):

    def build():
        if fail:
            raise RuntimeError('broken path')
        model = Attention(fused)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

        def step():
            time.sleep(sleep)
            model(torch.randn(2, 16, 8)).sum().backward()
            optimizer.step()
            optimizer.zero_grad()

        return model, step, 2

    return gpu_check.Check(
        name, 'bf16', build, missing=lambda: missing, compiled=compiled)


def run(rows, out_dir=None, time_limit=None, **settings):
    deadline = gpu_check.Deadline(time_limit)
    report = gpu_check.Report(
        dict(started_utc='now', _start=deadline.start), out_dir)
    failures = gpu_check.run_checks(rows, report, deadline, PEAKS, **settings)
    return failures, report.rows


def run_tool(*argv):
    return subprocess.run([sys.executable, TOOL, *argv],
                          capture_output=True,
                          text=True,
                          cwd=REPO)


def test_rows_report_rates_flops_and_the_attention_kernel(tmp_path):
    rows = [
        tiny_check(gpu_check.BENCHMARK.format('mmitpn')),
        tiny_check(gpu_check.BENCHMARK.format('mmpretrain'), fused=False),
        tiny_check('needs ops', missing='skipped: no ops here'),
        tiny_check('broken', fail=True)
    ]
    failures, rows = run(rows, str(tmp_path), iters=3, warmup=1)
    assert failures == 1
    assert [row['status'] for row in rows] == \
        ['ok', 'ok', 'skipped', 'failed']
    fused, explicit = rows[:2]
    for row in (fused, explicit):
        assert row['timed_steps'] == 3 and row['batch'] == 2
        assert row['img_per_s'] == pytest.approx(2 / row['step_s'])
        assert row['tflop_per_step'] > 0
        # No nominal peak for this "GPU": MFU against the measured one.
        assert row['mfu'] == pytest.approx(row['tflop_per_step'] /
                                           row['step_s'])
    assert fused['attention'] in ('flash (CPU) x1', 'math x1')
    assert explicit['attention'] == 'no scaled_dot_product_attention call'
    assert rows[2]['note'] == 'skipped: no ops here'
    assert rows[3]['note'] == 'failed: RuntimeError: broken path'
    data = json.load(open(tmp_path / 'gpu_check.json'))
    assert [row['check'] for row in data['rows']] == \
        [row['check'] for row in rows]
    ratio = fused['img_per_s'] / explicit['img_per_s']
    assert data['comparisons'] == [
        f'mmitpn / mmpretrain (bf16, same network and batch): {ratio:.2f}x '
        'images/s'
    ]
    markdown = (tmp_path / 'gpu_check.md').read_text()
    assert '| needs ops | bf16 | eager |' + '  |' * 8 + \
        ' skipped: no ops here |' in markdown
    assert data['comparisons'][0] in markdown


def test_a_compiled_row_reports_its_compile_time_apart(monkeypatch):
    """The compile time is what the untimed calls took beyond the steps:
    here a "compiler" whose first call sleeps 1 s and whose second (a
    recompilation) 0.5 s, around a step of about 10 ms (more on a loaded
    machine: the steps' own time is subtracted, hence the tolerance)."""

    def fake_compile(step, options=None):
        pauses = [1.0, 0.5]

        def compiled():
            time.sleep(pauses.pop(0) if pauses else 0.0)
            step()

        return compiled

    monkeypatch.setattr(gpu_check, 'compile_step', fake_compile)
    rows = [
        tiny_check('pretrain', sleep=0.01),
        tiny_check('pretrain', sleep=0.01, compiled=True)
    ]
    failures, (eager, compiled) = run(rows, iters=5, warmup=2)
    assert failures == 0
    assert (eager['mode'], compiled['mode']) == ('eager', 'compiled')
    assert 'compile_s' not in eager
    assert compiled['compile_s'] == pytest.approx(1.5, abs=0.4)
    assert compiled['tflop_per_step'] == eager['tflop_per_step'] > 0


def test_torch_compile_runs_a_compiled_row(monkeypatch):
    """The real ``torch.compile`` path (dynamo's eager backend: no code
    generation, so that it takes seconds), and the comparison line."""
    monkeypatch.setattr(gpu_check, 'COMPILE_OPTIONS', dict(backend='eager'))
    rows = [tiny_check('attention'), tiny_check('attention', compiled=True)]
    report = gpu_check.Report(dict(started_utc='now', _start=0), None)
    assert gpu_check.run_checks(
        rows, report, gpu_check.Deadline(None), PEAKS, iters=2, warmup=1) == 0
    eager, compiled = report.rows
    assert compiled['status'] == 'ok' and compiled['compile_s'] > 0
    assert compiled['attention'] == eager['attention']
    ratio = compiled['img_per_s'] / eager['img_per_s']
    assert report.comparisons() == [
        f'compiled / eager (attention, bf16): {ratio:.2f}x images/s'
    ]


def test_the_time_limit_stops_timing_and_leaves_the_rest_out(tmp_path):
    rows = [
        tiny_check('slow', sleep=0.05),
        tiny_check('after'),
        tiny_check('skipped anyway', missing='skipped: no ops here')
    ]
    failures, rows = run(
        rows,
        str(tmp_path),
        time_limit=0.5,
        iters=1000,
        warmup=0,
        min_check_time=0.1)
    assert failures == 0
    slow, after, skipped = rows
    assert slow['status'] == 'ok' and 1 <= slow['timed_steps'] < 1000
    assert slow['note'] == \
        f'{slow["timed_steps"]} of 1000 timed steps (time limit)'
    assert after['status'] == 'not run'
    assert after['note'] == 'time limit: 0 s of 0.5 s left'
    # A check that cannot run here is reported as skipped even past the
    # limit: the table says why, not only that time ran out.
    assert skipped['status'] == 'skipped'
    written = json.load(open(tmp_path / 'gpu_check.json'))['rows']
    assert [row['status'] for row in written] == ['ok', 'not run', 'skipped']


def test_the_order_puts_the_mmpretrain_comparison_and_bf16_first():
    checks = gpu_check.gpu_checks(
        osp.join(REPO, 'configs'), '', ['bf16', 'fp16'], dry_run=False)
    names = [(c.name, c.dtype, c.mode) for c in checks]
    benchmark = [(gpu_check.BENCHMARK.format(run), 'bf16', 'eager')
                 for run in ('mmitpn', 'mmpretrain')]
    assert names[:2] == benchmark
    # Per dtype (bf16 first): the 7 eager rows of pretraining and
    # fine-tuning, the 3 downstream rows (eager, short), then the 6
    # pretraining rows compiled, which take the longest.
    for start, dtype in ((0, 'bf16'), (16, 'fp16')):
        rows = names[start:start + 16]
        assert [row[1:] for row in rows] == \
            [(dtype, 'eager')] * 10 + [(dtype, 'compiled')] * 6
        assert rows[6][0] == 'finetune itpn-base (IN-1K, 224)'
        assert all(
            name.startswith(('mask-rcnn', 'upernet'))
            for name, _, _ in rows[7:10])
        assert [row[0] for row in rows[10:]] == \
            [row[0] for row in rows[:6]]
    assert len(names) == 32
    no_compile = gpu_check.gpu_checks(
        osp.join(REPO, 'configs'), '', ['bf16'], dry_run=False, compiled=False)
    assert [check.mode for check in no_compile] == ['eager'] * 10


def test_skip_reasons():
    assert gpu_check.missing_module('no_such_module_x', 'no-such') == \
        'skipped: no-such is not installed'
    assert gpu_check.missing_mmcv_ops('no_such_module_x', 'no-such') == \
        'skipped: no-such is not installed'


@pytest.mark.parametrize('argv, message', [
    (['--iters', '0'], '--iters 0: give at least 1'),
    (['--time-limit', '-1'], '--time-limit -1: give seconds >= 0'),
])
def test_bad_arguments(argv, message):
    result = run_tool('--dry-run', *argv)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith(message + '.')


def test_a_zero_time_limit_still_writes_every_row(tmp_path):
    result = run_tool('--dry-run', '--time-limit', '0', '--out-dir',
                      str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.load(open(tmp_path / 'gpu_check.json'))
    assert data['info']['finished'] is True
    assert len(data['rows']) == 11
    assert {row['status'] for row in data['rows']} <= {'not run', 'skipped'}
    assert {row['dtype'] for row in data['rows']} == {'fp32'}


def test_dry_run_builds_and_steps_every_path(tmp_path):
    result = run_tool('--dry-run', '--out-dir', str(tmp_path))
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    rows = json.load(open(tmp_path / 'gpu_check.json'))['rows']
    assert [row['check'] for row in rows] == [
        'pretrain benchmark mmitpn (mmpretrain-base)',
        'pretrain benchmark mmpretrain (mmpretrain-base)',
        'pretrain pixel itpn-base', 'pretrain pixel+mfm itpn-base',
        'pretrain clip-b itpn-base', 'pretrain pixel fast-itpn-base',
        'finetune itpn-base (IN-1K, 224)', 'mask-rcnn itpn-base (1344x800)',
        'mask-rcnn fast-itpn-base (1344x800)', 'upernet itpn-base (512)',
        'pretrain pixel hivit-demo'
    ]
    assert [row['mode'] for row in rows] == \
        ['eager'] * 10 + ['compiled (aot_eager)']
    # This environment has mmcv's compiled ops: every path runs.
    assert all(row['status'] == 'built' for row in rows), rows
    assert all('one step in' in row['note'] for row in rows)
    assert 'compiled in' in rows[10]['note'] and rows[10]['compile_s'] > 0
    # The iTPN blocks call scaled_dot_product_attention.
    assert all(row['attention'] != 'no scaled_dot_product_attention call'
               for row in rows), rows


def test_compiled_train_step_loss_equals_eager():
    """mmengine's ``compile=True`` (``torch.compile`` of ``model.train_step``
    with default options, the inductor backend: ``gpu_check.compile_step``)
    gives the eager losses
    of the iTPN pixel objective: a tiny model, the pixel configs' optimizer
    (fused AdamW, layer-decay constructor, built from the config's
    ConfigDict), the same seed, batch and masks, two steps (the second after
    the first update). Tolerance 1e-5 relative: fp32, where inductor's fused
    kernels sum in another order (measured: 1.2e-7 at a loss of 1.0)."""
    from mmengine.config import Config
    from mmengine.logging import MessageHub
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.structures import DataSample
    from tiny_models import tiny_arch, tiny_pixel_itpn

    from mmitpn.registry import MODELS
    cfg = Config.fromfile(
        osp.join(REPO, 'configs', 'pretrain',
                 gpu_check.PRETRAIN_CONFIGS['pixel itpn-base']))
    cfg.optim_wrapper.type = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    cfg.optim_wrapper.pop('loss_scale')
    images = torch.randint(
        0,
        256, (2, 3, 64, 64),
        dtype=torch.uint8,
        generator=torch.Generator().manual_seed(1))
    hub = MessageHub.get_current_instance()
    hub.update_info('max_iters', 100)
    losses = {}
    for mode in ('eager', 'compiled'):
        torch.manual_seed(0)
        model = MODELS.build(
            tiny_pixel_itpn(
                tiny_arch(embed_dims=32, depth=1, num_heads=2), fpn_dim=16))
        with DefaultScope.overwrite_default_scope('mmitpn'):
            optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        train_step = model.train_step
        if mode == 'compiled':
            train_step = gpu_check.compile_step(train_step)
        losses[mode] = []
        for step in range(2):
            hub.update_info('iter', step)
            # Masks from the samples' dataset indices (as in training), not
            # from the global generator, which inductor replaces by its own.
            data = dict(
                inputs=images.clone(),
                data_samples=[DataSample(sample_idx=i) for i in range(2)])
            losses[mode].append(train_step(data, optim_wrapper)['loss'])
    eager, compiled = (
        torch.stack(losses[mode]).detach() for mode in ('eager', 'compiled'))
    assert eager[1] != eager[0]  # the update changed the model
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=0)

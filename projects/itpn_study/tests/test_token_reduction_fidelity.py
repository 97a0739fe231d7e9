# Copyright (c) mmitpn contributors. All rights reserved.
"""The token-reduction fidelity study: its variants at the demo's size, its
registered design and order, a tiny end-to-end run that resumes per run and
records what the registration asks for, and a report derived from the record
alone."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch

from mmitpn.models.backbones import HiViT
from mmitpn.utils.statistics import format_difference, paired_difference
from projects.itpn_study.study import token_reduction_design as design
from projects.itpn_study.study.plan import PAGES, REPO
from projects.itpn_study.study.power import (non_inferiority_power,
                                             seeds_for_non_inferiority)
from projects.itpn_study.study.token_reduction import load_report, option_items
from projects.itpn_study.study.token_reduction_report import report
from projects.itpn_study.tests.study_records import RUN_FIELDS

TOOL = 'projects.itpn_study.tools.token_reduction_fidelity'
DEMO_ARCH = dict(embed_dims=192, stem_mlp_blocks=(1, 1), depth=4, num_heads=3)


def run(*args):
    result = subprocess.run([sys.executable, '-m', TOOL, *args],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout


# (tokens of each main block, (windows, slots per window) of each windowed
# block) at 128 px: an 8x8 grid, 2x2 windows of 4x4 units, 8 kept of 16.
EXPECTED_TOKENS = {
    'global': ([64] * 4, [None] * 4),
    'windows': ([64] * 4, [(4, 16)] * 3 + [None]),
    'gathering': ([64] * 4, [(4, 16)] * 4),
    'reduction': ([64, 32, 32, 32], [(4, 16), (4, 8), (4, 8), None]),
    'recommended': ([64, 32, 32, 32], [(4, 16), (4, 8), (4, 8), (4, 8)]),
}


@pytest.mark.parametrize('variant', list(design.VARIANTS))
def test_each_variant_runs_on_the_tokens_the_registration_says(variant):
    torch.manual_seed(0)
    model = HiViT(
        arch=DEMO_ARCH,
        img_size=96,
        out_indices=(0, 1, 2),
        **design.VARIANTS[variant]).eval()
    seen = []
    run_block = model._run_main_block

    def spy(block, x, gather, grid, rel_pos, windows):
        parts = None if windows is None else windows.partition(x).shape
        seen.append((x.shape[1], parts and (parts[0] // x.shape[0], parts[1])))
        return run_block(block, x, gather, grid, rel_pos, windows)

    model._run_main_block = spy
    with torch.no_grad():
        outs = model(torch.randn(2, 3, 128, 128))
    assert [tuple(out.shape) for out in outs] == [(2, 48, 32, 32),
                                                  (2, 96, 16, 16),
                                                  (2, 192, 8, 8)]
    tokens, windows = EXPECTED_TOKENS[variant]
    assert [s[0] for s in seen] == tokens
    assert [s[1] for s in seen] == windows
    assert (model.gathering_tokens is not None) == (
        variant in ('gathering', 'recommended'))


def test_the_registered_order_is_seed_major_with_detection_pairs_first():
    order = design.run_order()
    assert len(order) == 30 and len(set(order)) == 30
    seg, det = order[:15], order[15:]
    assert [seed for _, _, seed in seg] == [0] * 5 + [1] * 5 + [2] * 5
    assert [v for _, v, _ in seg[:5]] == list(design.VARIANTS)
    assert det[:6] == [('det', v, s) for s in (0, 1, 2)
                       for v in ('global', 'recommended')]
    assert {v for _, v, _ in det[6:]} == {'windows', 'gathering', 'reduction'}
    # A subset keeps the order.
    assert design.run_order(('det', ), (1, ),
                            ('windows', 'global')) == [('det', 'global', 1),
                                                       ('det', 'windows', 1)]


def test_non_inferiority_power_matches_a_simulation():
    rng = torch.Generator().manual_seed(0)
    sd, n, margin = 0.6, 3, 1.
    diffs = torch.randn(200000, n, generator=rng).double() * sd
    low = diffs.mean(1) - 4.302653 * diffs.std(1) / n**0.5
    simulated = (low > -margin).double().mean().item()
    assert non_inferiority_power(0., sd, n, margin) == pytest.approx(
        simulated, abs=0.005)
    n80 = seeds_for_non_inferiority(sd, margin)
    assert non_inferiority_power(0., sd, n80, margin) >= 0.8 > \
        non_inferiority_power(0., sd, n80 - 1, margin)


def test_the_registration_states_what_the_code_computes():
    with open(design.PREREGISTRATION_PAGE, encoding='utf-8') as f:
        page = f.read()
    for table in (design.power_analysis(), design.gates_table(),
                  design.order_table()):
        assert '\n'.join(table) in page
    rows = {line.split(' | ')[0][2:]: line for line in design.power_analysis()}
    # The pooled recorded standard deviations, and what 3 seeds give.
    assert '(0.56) | 1.40 | 0.40 | 0.40 | 5 / 7 |' in rows['seg (mIoU)']
    assert '(1.00) | 2.48 | 0.18 | 0.40 | 10 / 16 |' in rows['det (box mAP)']


def test_verdicts_follow_the_registered_rule():

    def diff(values):
        return paired_difference(
            dict(enumerate(values)), {
                0: 0.,
                1: 0.,
                2: 0.
            })

    assert design.verdict(diff([-0.2, 0.1, -0.1]), 1., 3,
                          []).startswith('non-inferior')
    assert design.verdict(diff([-2.2, -2.1, -2.0]), 1., 3,
                          []).startswith('inferior')
    assert design.verdict(diff([-1.5, 0.5, 0.]), 1., 3,
                          []).startswith('no verdict (the interval')
    assert design.verdict(diff([0., 0., 0.1]), 1., 3,
                          ['G1']) == 'no verdict (G1 failed)'
    assert design.verdict(
        paired_difference({
            0: 1.,
            1: 1.
        }, {
            0: 0.,
            1: 0.
        }), 1., 3, []) == 'in progress (2 of 3 pairs)'


def test_options_and_load_reports_are_read_as_mmengine_writes_them(tmp_path):
    assert option_items('model.backbone', design.VARIANTS['reduction']) == [
        'model.backbone.window_size=4', 'model.backbone.global_blocks=(3,)',
        'model.backbone.token_reduction.type=window_migration',
        'model.backbone.token_reduction.start_block=1',
        'model.backbone.token_reduction.keep_ratio=0.5'
    ]
    log = tmp_path / 'train.log'
    log.write_text(
        '12/07 10:00:00 - mmengine - INFO - load backbone. in model from: '
        'work_dirs/demo/epoch_40.pth\n'
        '12/07 10:00:00 - mmengine - WARNING - The model and loaded state '
        'dict do not match exactly\n\nunexpected key in source state_dict: '
        'mask_token\n\nmissing keys in source state_dict: gathering_tokens\n'
        '12/07 10:00:01 - mmengine - INFO - load neck. in model from: '
        'work_dirs/demo/epoch_40.pth\n')
    assert load_report(str(log)) == dict(
        loaded={
            'backbone.': 'work_dirs/demo/epoch_40.pth',
            'neck.': 'work_dirs/demo/epoch_40.pth'
        },
        missing=['gathering_tokens'],
        unexpected=['mask_token'])


def test_fidelity_study_runs_resumes_and_records_every_run(tmp_path):
    data = tmp_path / 'shapes_seg'
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes_seg.py'),
        str(data), '--train', '4', '--val', '2'
    ],
                   check=True,
                   capture_output=True,
                   cwd=REPO)
    record_path = tmp_path / 'record.json'
    args = ('--tasks', 'seg', '--seeds', '0', '--variants', 'global',
            'recommended', '--work-dir', str(tmp_path / 'study'), '--record',
            str(record_path), '--data-root', str(data), '--max-iters', '2',
            '--no-pretrained')
    run(*args)
    record = json.loads(record_path.read_text())
    assert sorted(record) == [
        'prepare/seg-data/0', 'seg/global/0', 'seg/recommended/0'
    ]
    trained = record['seg/recommended/0']
    # Validation every 100 iterations, or at the end of a shorter run.
    assert [step for step, _ in trained['curves']['mIoU']] == [2]
    assert trained['final']['mIoU'] == trained['curves']['mIoU'][-1][1]
    assert trained['backbone'] == design.VARIANTS['recommended']
    assert 'model.backbone.token_reduction.type=window_migration' in \
        trained['cfg_options']
    assert trained['inputs'] == dict(
        data=record['prepare/seg-data/0']['digest'])
    assert trained['machine']['omp_num_threads'] is None or \
        trained['machine']['omp_num_threads'].isdigit()
    for key in ('utc_start', 'utc_end', 'wall_s', 'cpu_s'):
        assert trained[key]
    assert trained['attempts'][0]['load_start']
    assert trained['headline'] == \
        f'mIoU {trained["final"]["mIoU"]:.2f} at iteration 2'
    # Keeping every token must not change the segmentation (G3).
    tests = record['seg/global/0']['migration']
    assert sorted(tests) == ['keep0.5', 'keep0.75', 'keep1', 'none']
    assert tests['keep1']['metrics'] == tests['none']['metrics']
    out = run(*args)
    assert json.loads(record_path.read_text()) == record
    assert '**2 of 2 training runs recorded**' in out
    assert '| G3 switch (seg) | met |' in out
    # Without a pretraining checkpoint G0 denies the pair.
    assert 'no pretraining checkpoint' in out


def fake_run(variant, seed, value, curve=None, inputs=None):
    steps = curve or [value - 10, value]
    return dict(
        task='seg',
        variant=variant,
        seed=seed,
        backbone=design.VARIANTS[variant],
        utc_start=f'2026-01-0{seed + 1}T00:00:00Z',
        utc_end=f'2026-01-0{seed + 1}T00:30:00Z',
        wall_s=1800.,
        cpu_s=1500.,
        attempts=[dict(load_start=[3., 3., 3.], load_end=[4., 4., 4.])],
        machine=RUN_FIELDS['machine'],
        inputs=inputs or dict(data='d', checkpoint='c'),
        load=dict(
            loaded={
                'backbone.': 'x',
                'neck.': 'x'
            },
            # The segmentation demo's bias tables start at zero.
            missing=['blocks.4.attn.relative_position_bias_table'] +
            (['gathering_tokens']
             if 'gathering_tokens' in design.VARIANTS[variant] else []),
            unexpected=[]),
        curves=dict(mIoU=[[250 * (i + 1), v] for i, v in enumerate(steps)]),
        final=dict(mIoU=value),
        headline=f'mIoU {value:.2f} at iteration 500')


def test_the_report_is_derived_from_the_record_alone():
    glob_ = {0: 36.0, 1: 35.0, 2: 35.5}
    gath = {0: 35.8, 1: 34.9, 2: 35.4}
    record = {}
    for seed in range(3):
        record[f'seg/global/{seed}'] = fake_run('global', seed, glob_[seed])
        record[f'seg/global/{seed}']['migration'] = {
            name: dict(metrics=dict(mIoU=glob_[seed] + shift))
            for name, shift in (('none', 0.), ('keep1', 0.), ('keep0.75', 0.1),
                                ('keep0.5', -0.2))
        }
        record[f'seg/gathering/{seed}'] = fake_run('gathering', seed,
                                                   gath[seed])
    # Windows diverged at seed 1 (G2) and ran from another checkpoint at
    # seed 2 (G0).
    record['seg/windows/0'] = fake_run('windows', 0, 35.0)
    record['seg/windows/1'] = fake_run('windows', 1, 31.0, [35.0, 31.0])
    record['seg/windows/2'] = fake_run(
        'windows', 2, 35.0, inputs=dict(data='d', checkpoint='other'))
    record['seg/reduction/0'] = fake_run('reduction', 0, 35.0)
    record['seg/reduction/0']['load']['missing'].append('blocks.5.attn.qkv')
    # Its first attempt was interrupted: only its start is known.
    record['seg/reduction/0']['attempts'].insert(
        0, dict(utc_start='2026-01-01T00:00:00Z'))
    text = report(record, ('seg', ))
    assert "run's UTC end also covers its training-free migration tests" \
        in text
    assert '| seg/reduction/0 | 2026-01-01T00:00:00Z | 2026-01-01T00:30:00Z ' \
        '| 30.0 | 25.0 | 3.0 → 4.0 | 2 | mIoU 35.00 at iteration 500 |' \
        in text
    expected = format_difference(paired_difference(gath, glob_))
    assert f'| gathering | 35.80 | 34.90 | 35.40 | 35.37 ± 0.45 | ' \
        f'{expected} | 0.06 | 2 | non-inferior (lower bound above -1) |' \
        in text
    assert '| windows | 35.00 | 31.00 | 35.00 |' in text
    assert 'no verdict (G2 failed) |' in text
    assert 'seg/windows/2: inputs differ' in text
    assert "seg/reduction/0: missing keys ['blocks.5.attn.qkv']" in text
    assert '| 0.5 | 35.80 | 34.80 | 35.30 | -0.20 [-0.20, -0.20] (n=3) | ' \
        'non-inferior (lower bound above -1) |' in text
    assert '| G1 regime (seg) | met (mean 35.50 in [30, 50.4]) |' in text
    assert '| G3 switch (seg) | met |' in text
    assert '| 500 | 35.50 | 33.67 | 35.37 | 35.00 |' in text
    assert '**10 of 15 training runs recorded**; next in the registered ' \
        'order: `seg/recommended/0`.' in text
    assert 'AMD EPYC, family 25, model 17, 2 CPUs; OMP_NUM_THREADS=1, ' \
        'nice 19' in text
    assert osp.basename(design.PREREGISTRATION_PAGE) in text
    assert osp.dirname(design.PREREGISTRATION_PAGE) == PAGES

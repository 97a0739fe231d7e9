# Copyright (c) mmitpn contributors. All rights reserved.
"""The fidelity study of token reduction runs end to end on a tiny schedule,
resumes per run, and reports what its results file holds."""
import json
import os.path as osp
import subprocess
import sys

from mmitpn.utils.statistics import format_difference, paired_difference
from projects.itpn_study.study.plan import REPO

TOOL = 'projects.itpn_study.tools.token_reduction_fidelity'


def run(*args):
    result = subprocess.run([sys.executable, '-m', TOOL, *args],
                            capture_output=True,
                            text=True,
                            cwd=REPO)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    return result.stdout


def test_fidelity_study_runs_resumes_and_checks_the_switch(tmp_path):
    data = tmp_path / 'shapes_seg'
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters', 'make_shapes_seg.py'),
        str(data), '--train', '4', '--val', '2'
    ],
                   check=True,
                   capture_output=True,
                   cwd=REPO)
    args = ('--tasks', 'seg', '--seeds', '0', '--variants',
            'global', '--keep-ratios', '1.0', '--work-dir',
            str(tmp_path / 'study'), '--data-root', str(data), '--max-iters',
            '2', '--val-interval', '1', '--no-pretrained')
    run(*args)
    results = json.load(open(tmp_path / 'study' / 'fidelity.json'))
    trained = results['train']['seg/global/seed0']
    assert sorted(trained['curve']['mIoU'], key=int) == ['1', '2']
    tests = results['test']
    # Keeping every token must not change the segmentation.
    assert tests['seg/global/seed0/keep1']['metrics'] == \
        tests['seg/global/seed0/none']['metrics']
    out = run(*args)
    assert json.load(open(tmp_path / 'study' / 'fidelity.json')) == results
    assert '| none | ' in out and '| 1 | ' in out


def test_fidelity_report_is_derived_from_the_results(tmp_path):
    study = tmp_path / 'study'
    study.mkdir()
    miou = {0: (40.0, 39.0, 41.5), 1: (42.0, 40.5, 41.0)}
    results = dict(train={}, test={})
    for seed, (global_, gathering, migrated) in miou.items():
        for variant, value in (('global', global_), ('gathering', gathering)):
            results['train'][f'seg/{variant}/seed{seed}'] = dict(
                checkpoint='-',
                wall_s=60.0,
                curve=dict(mIoU={
                    '100': value - 10,
                    '200': value
                }))
        results['test'][f'seg/global/seed{seed}/none'] = dict(
            wall_s=1.0, metrics=dict(mIoU=global_))
        results['test'][f'seg/global/seed{seed}/keep0.5'] = dict(
            wall_s=1.0, metrics=dict(mIoU=migrated))
    (study / 'fidelity.json').write_text(json.dumps(results))
    out = run('--tasks', 'seg', '--seeds', '0', '1', '--variants',
              'global', 'gathering', '--keep-ratios', '0.5', '--work-dir',
              str(study), '--report-only')
    gathering = format_difference(
        paired_difference({
            0: 39.0,
            1: 40.5
        }, {
            0: 40.0,
            1: 42.0
        }))
    migrated = format_difference(
        paired_difference({
            0: 41.5,
            1: 41.0
        }, {
            0: 40.0,
            1: 42.0
        }))
    row = f'| gathering | 39.00 | 40.50 | 39.75 ± 1.06 | {gathering} | 1.0 |'
    assert row in out
    assert f'| 0.5 | 41.50 | 41.00 | {migrated} |' in out
    assert '| 100 | 31.00 | 29.75 |' in out
    assert gathering.startswith('-1.25') and migrated.startswith('+0.25')

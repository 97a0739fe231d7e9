# Copyright (c) mmitpn contributors. All rights reserved.
"""Runs are made once, resume where they stopped, share one record between
processes, and keep what regenerations find."""
import json
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image

from projects.itpn_study.study import runs as study_runs
from projects.itpn_study.study.runs import Study, last_checkpoint, read_scalars
from projects.itpn_study.tests.study_records import pilot_record
from projects.itpn_study.tools.itpn_study import parse_args


def test_study_runs_resume_per_run_and_log_wall_times(tmp_path):
    args = parse_args([
        '--quick', '--work-dir',
        str(tmp_path / 'wd'), '--out',
        str(tmp_path / 'study.md')
    ])
    runs = Study(args)
    calls = []

    def fn(work_dir):
        calls.append(work_dir)
        return dict(value=len(calls))

    first = runs.run('probe', 'mae', 0, fn)
    assert runs.run('probe', 'mae', 0, fn) == first and len(calls) == 1
    assert first['wall_s'] >= 0 and first['value'] == 1
    shutil.rmtree(tmp_path / 'wd' / 'probe')
    again = Study(args)  # a new session: the record is enough
    assert again.run('probe', 'mae', 0, fn)['value'] == 1
    assert len(calls) == 1
    # A pretraining run is repeated when its checkpoints are gone.
    runs.run('pretrain', 'mae', 0, fn)
    shutil.rmtree(tmp_path / 'wd' / 'pretrain')
    assert Study(args).run('pretrain', 'mae', 0, fn)['value'] == 3
    log = (tmp_path / 'wd' / 'study.log').read_text()
    assert log.count('done in') == 3 and 'probe mae seed 0' in log
    record = json.load(open(args.record))
    assert set(record) == {'probe/mae/0', 'pretrain/mae/0'}


def test_interrupted_training_resumes_from_its_last_checkpoint(tmp_path):
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    assert last_checkpoint(str(work_dir)) is None
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    assert last_checkpoint(str(work_dir)) is None  # file gone
    (work_dir / 'epoch_2.pth').write_bytes(b'')
    assert last_checkpoint(str(work_dir)) == str(work_dir / 'epoch_2.pth')
    # The resumed session's scalars replace the first session's from its
    # first step on (steps 3-4 were logged again after resuming at 2).
    sessions = (('20261202_010000', (1, 2, 3, 4), 0), ('20261202_020000',
                                                       (3, 4, 5), 2))
    for stamp, steps, offset in sessions:
        folder = work_dir / stamp / 'vis_data'
        folder.mkdir(parents=True)
        (folder / 'scalars.json').write_text(''.join(
            json.dumps(dict(step=step, loss=float(step + offset))) + '\n'
            for step in steps))
    records = read_scalars(str(work_dir))
    assert [(r['step'], r['loss']) for r in records] == [(1, 1.), (2, 2.),
                                                         (3, 5.), (4, 6.),
                                                         (5, 7.)]


def test_processes_sharing_a_record_keep_each_others_runs(tmp_path):
    args = parse_args([
        '--plan', 'prereg', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json'), '--out',
        str(tmp_path / 'report.md')
    ])
    first, second = Study(args), Study(args)  # seeds 1 and 2
    first.run('probe', 'none', 1, lambda work_dir: dict(value=1))
    second.run('probe', 'none', 2, lambda work_dir: dict(value=2))
    first.run('probe', 'mae@1', 1, lambda work_dir: dict(value=3))
    record = json.load(open(args.record))
    assert {
        k: v['value']
        for k, v in record.items()
    } == {
        'probe/none/1': 1,
        'probe/none/2': 2,
        'probe/mae@1/1': 3
    }
    assert sorted(os.listdir(tmp_path)) == ['record.json', 'wd']
    # A run found in the work dir but not in the record is recorded.
    os.remove(args.record)
    assert set(Study(args).record) == set(record)
    assert set(json.load(open(args.record))) == set(record)


def test_regeneration_keeps_the_original_run_and_its_own_curve(
        tmp_path, monkeypatch):
    args = parse_args([
        '--plan', 'prereg', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json')
    ])
    runs = Study(args)
    original = dict(
        stage='pretrain',
        name='itpn-pixel',
        seed=0,
        losses=dict(loss_pixel=[[20, 1.0], [40, 0.9], [60, 0.8]]))
    runs.record['pretrain/itpn-pixel/0'] = original
    trained = []

    def fake_train_run(cfg, work_dir, log):
        trained.append(
            (cfg.train_cfg.max_epochs, cfg.param_scheduler[-1], work_dir))
        folder = osp.join(work_dir, '20261202_000000', 'vis_data')
        os.makedirs(folder)
        with open(osp.join(folder, 'scalars.json'), 'w') as f:
            for step, loss in ((20, 1.0), (40, 0.9), (60, 0.75)):
                f.write(json.dumps(dict(step=step, loss_pixel=loss)) + '\n')
        return 12.

    monkeypatch.setattr(study_runs, 'train_run', fake_train_run)
    result = runs.regenerate('itpn-pixel', 0, 2)
    (epochs, cosine, work_dir), = trained
    # Stopped after 2 epochs of the original 7-epoch schedule, where
    # checkpoint() looks for it.
    assert epochs == 2 and cosine['end'] == 7
    assert work_dir == osp.join(args.work_dir, 'pretrain', 'itpn-pixel',
                                'seed0')
    agreement = result['agreement']['loss_pixel']
    assert agreement['steps'] == 3 and agreement['first_difference'] == 60
    assert agreement['max_abs_diff'] == pytest.approx(0.05)
    record = json.load(open(args.record))
    assert record['pretrain/itpn-pixel/0'] == original
    regenerated = record['regenerate/itpn-pixel@2/0']
    assert regenerated['epochs'] == 2
    # Its own curve is kept: the agreement can be checked from the record.
    assert regenerated['losses'] == dict(
        loss_pixel=[[20, 1.0], [40, 0.9], [60, 0.75]])


def test_dense_pilot_and_run_train_and_record_their_curves(
        tmp_path, make_fashion_mnist):
    work_dir = tmp_path / 'wd'
    args = parse_args([
        '--plan', 'prereg', '--quick', '--work-dir',
        str(work_dir), '--fashion-mnist-root',
        make_fashion_mnist(40)
    ])
    runs = Study(args)
    with pytest.raises(RuntimeError, match='length is not decided'):
        runs.transfer('seg', 'd: no pretraining', 1)
    pilot = runs.dense_pilot(10)
    assert [step for step, _ in pilot['curves']['mIoU']] == [2, 4, 6, 8, 10]
    # Whatever the pilot gave, a converged one fixes the length.
    runs.record.update(pilot_record(10, 0.))
    result = runs.transfer('seg', 'd: no pretraining', 1)
    assert result['downstream_seed'] == 101 and result['iters'] == 10
    assert [step for step, _ in result['curves']['mIoU']] == [2, 4, 6, 8, 10]
    assert sorted(os.listdir(
        work_dir / 'data')) == ['garments_seg', 'garments_seg_pilot']
    assert len(
        os.listdir(work_dir / 'data' / 'garments_seg' / 'images' /
                   'val')) == 16
    pilot_image, study_image = (
        np.asarray(
            Image.open(work_dir / 'data' / name / 'images' / 'val' /
                       '00000.png'))
        for name in ('garments_seg_pilot', 'garments_seg'))
    assert not np.array_equal(pilot_image, study_image)
    record = json.load(open(args.record))
    assert record['seg/d/1']['curves'] == result['curves']
    saved = json.load(
        open(work_dir / 'pilot' / 'd@10' / 'seed99' / 'result.json'))
    assert saved['curves'] == pilot['curves'] and saved['iters'] == 10

# Copyright (c) mmitpn contributors. All rights reserved.
"""The probe CLI, the study's smoke run and honest reconstruction pictures."""
import gzip
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

from mmitpn.visualization import draw_reconstruction

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOLS = osp.join(REPO, 'tools')
FASHION_MNIST = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                         'fashion-mnist_64px.py')
TINY_HIVIT = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)


def run(*args, cwd=REPO):
    result = subprocess.run([sys.executable, *args],
                            capture_output=True,
                            text=True,
                            cwd=cwd)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return output


def tiny_pixel_config(tmp_path, fpn_dim=32):
    cfg = Config(
        dict(
            model=dict(
                type='iTPN',
                backbone=dict(type='HiViT', arch=TINY_HIVIT, img_size=64),
                neck=dict(
                    type='iTPNPyramid',
                    embed_dims=TINY_HIVIT['embed_dims'],
                    fpn_dim=fpn_dim,
                    fpn_depth=2),
                head=dict(
                    type='iTPNPixelHead',
                    fpn_dim=fpn_dim,
                    decoder_embed_dims=32,
                    decoder_depth=1,
                    decoder_num_heads=2,
                    img_size=64))))
    path = str(tmp_path / 'tiny_pixel.py')
    cfg.dump(path)
    return path


def learnable_fashion_mnist(folder, count):
    """IDX files in Debian's layout whose images show their class (a
    brightness step per class, plus noise), so every probe has an
    interior optimum to find."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    labels = (np.arange(count) % 10).astype(np.uint8)
    for prefix in ('train', 't10k'):
        images = labels[:, None, None] * 24. + rng.normal(
            0, 30, (count, 28, 28))
        images = images.clip(0, 255).astype(np.uint8)
        header = (0x0803).to_bytes(4, 'big') + b''.join(
            n.to_bytes(4, 'big') for n in (count, 28, 28))
        with gzip.open(folder / f'{prefix}-images-idx3-ubyte.gz', 'wb') as f:
            f.write(header + images.tobytes())
        header = (0x0801).to_bytes(4, 'big') + count.to_bytes(4, 'big')
        with gzip.open(folder / f'{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
            f.write(header + labels.tobytes())
    return str(folder)


def test_feature_probe_tool_reports_baselines(tmp_path,
                                              pretraining_checkpoint):
    checkpoint, _ = pretraining_checkpoint()
    root = learnable_fashion_mnist(tmp_path / 'fm', 60)
    data = Config.fromfile(FASHION_MNIST)
    for loader in ('train_dataloader', 'test_dataloader'):
        data[loader].dataset.data_root = root
    data_path = str(tmp_path / 'data.py')
    data.dump(data_path)
    out = str(tmp_path / 'probe.json')
    log = run(
        osp.join(TOOLS, 'analysis_tools', 'feature_probe.py'),
        tiny_pixel_config(tmp_path), checkpoint, '--data', data_path,
        '--features', 'backbone', 'pyramid', '--pool', 'mean', 'grid',
        '--weight-decays', '1e-2', '1e-1', '1', '--baselines', 'random',
        '--out', out)
    rows = json.load(open(out))
    models = [(r['model'], r['features'], r['pool']) for r in rows]
    assert models == [('pretrain.pth', 'backbone', 'mean'),
                      ('pretrain.pth', 'backbone', 'grid'),
                      ('pretrain.pth', 'pyramid', 'mean'),
                      ('pretrain.pth', 'pyramid', 'grid'),
                      ('random init', 'backbone', 'mean'),
                      ('random init', 'backbone', 'grid'),
                      ('random init', 'pyramid', 'mean'),
                      ('random init', 'pyramid', 'grid')]
    assert rows[0]['dims'] == 64 and rows[1]['dims'] == 64 * 16
    reported = [r for r in rows if 'refused' not in r]
    assert reported, rows
    for row in reported:
        assert row['method'] == 'logistic'
        assert row['grad_norm'] <= row['tolerance'] == 1e-4
        assert min(map(float, row['val_top1'])) < row['weight_decay'] < \
            max(map(float, row['val_top1']))
    # Every model was probed on the same fit / validation split.
    assert len({r['split_id'] for r in reported}) == 1
    assert '60 training and 60 test images' in log
    assert 'missing keys []' in log and '| random init | pyramid |' in log


def study_tool():
    sys.path.insert(0, osp.join(TOOLS, 'analysis_tools'))
    import itpn_study
    return itpn_study


def probe_entry(top1, method='logistic'):
    return dict(
        top1=top1,
        method=method,
        weight_decay=1e-3,
        val_top1={
            '0.0001': top1 - 1,
            '0.001': top1,
            '0.01': top1 - 2
        },
        grad_norm=1e-5 if method == 'logistic' else 1e-9,
        tolerance=1e-4 if method == 'logistic' else 0.)


def probe_record(name, seed, top1):
    probes = {
        'backbone/mean': probe_entry(top1 - 3, 'ridge'),
        'backbone/mean/logistic': probe_entry(top1)
    }
    return {
        f'probe/{name}/{seed}':
        dict(stage='probe', name=name, seed=seed, probes=probes, wall_s=1.)
    }


def test_study_report_gives_paired_intervals_and_no_best_column(tmp_path):
    study = study_tool()
    record = {}
    for seed, (mae, itpn) in enumerate([(76., 75.), (77., 75.), (78., 75.)]):
        record.update(probe_record('mae', seed, mae))
        record.update(probe_record('itpn-pixel', seed, itpn))
        curve = [[30, 20.], [60, 30. + seed]]
        for name, offset in (('a', 1.), ('b', 0.)):
            record[f'seg/{name}/{seed}'] = dict(
                stage='seg',
                name=name,
                seed=seed,
                wall_s=60.,
                curves={'mIoU': [[s, v + offset * seed] for s, v in curve]})
    path = tmp_path / 'record.json'
    path.write_text(json.dumps(record))
    out = tmp_path / 'study.md'
    study.main([
        '--report-only', '--record',
        str(path), '--out',
        str(out), '--work-dir',
        str(tmp_path / 'wd'), '--fig-dir',
        str(tmp_path / 'fig')
    ])
    report = out.read_text()
    assert 'best' not in report
    # mae - itpn-pixel = 1, 2, 3: mean 2, sd 1, t(0.975, 2) = 4.303.
    assert ('| backbone/mean/logistic: mae - itpn-pixel | 3 | +2.00 '
            '[-0.48, +4.48] (+1.00, +2.00, +3.00) |') in report
    assert '| backbone/mean: mae - itpn-pixel | 3 | +2.00' in report
    assert 'probes, logistic regression (the headline)' in report
    assert report.count('on the edge of the penalties tried in 0 of 6') == 2
    # a - b at the last validation: 0, 1, 2.
    assert '| a - b | 3 | +1.00 [-1.48, +3.48] (+0.00, +1.00, +2.00) |' \
        in report
    assert 'last validation minus the one before' in report
    # The curves behind the tables are linked, relative to the report.
    assert '![segmentation mIoU](fig/itpn_study_mIoU.png)' in report
    assert (tmp_path / 'fig' / 'itpn_study_mIoU.png').is_file()


def test_study_runs_resume_per_run_and_log_wall_times(tmp_path):
    study = study_tool()
    args = study.parse_args([
        '--quick', '--work-dir',
        str(tmp_path / 'wd'), '--out',
        str(tmp_path / 'study.md')
    ])
    runs = study.Study(args)
    calls = []

    def fn(work_dir):
        calls.append(work_dir)
        return dict(value=len(calls))

    first = runs.run('probe', 'mae', 0, fn)
    assert runs.run('probe', 'mae', 0, fn) == first and len(calls) == 1
    assert first['wall_s'] >= 0 and first['value'] == 1
    shutil.rmtree(tmp_path / 'wd' / 'probe')
    again = study.Study(args)  # a new session: the record is enough
    assert again.run('probe', 'mae', 0, fn)['value'] == 1
    assert len(calls) == 1
    # A pretraining run is repeated when its checkpoints are gone.
    runs.run('pretrain', 'mae', 0, fn)
    shutil.rmtree(tmp_path / 'wd' / 'pretrain')
    assert study.Study(args).run('pretrain', 'mae', 0, fn)['value'] == 3
    log = (tmp_path / 'wd' / 'study.log').read_text()
    assert log.count('done in') == 3 and 'probe mae seed 0' in log
    record = json.load(open(args.record))
    assert set(record) == {'probe/mae/0', 'pretrain/mae/0'}


def test_interrupted_training_resumes_from_its_last_checkpoint(tmp_path):
    study = study_tool()
    work_dir = tmp_path / 'run'
    work_dir.mkdir()
    assert study.last_checkpoint(str(work_dir)) is None
    (work_dir / 'last_checkpoint').write_text(str(work_dir / 'epoch_2.pth'))
    assert study.last_checkpoint(str(work_dir)) is None  # file gone
    (work_dir / 'epoch_2.pth').write_bytes(b'')
    assert study.last_checkpoint(str(work_dir)) == str(work_dir /
                                                       'epoch_2.pth')
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
    records = study.read_scalars(str(work_dir))
    assert [(r['step'], r['loss']) for r in records] == [(1, 1.), (2, 2.),
                                                         (3, 5.), (4, 6.),
                                                         (5, 7.)]


def test_preregistered_plan_configs(tmp_path):
    study = study_tool()
    args = study.parse_args(['--plan', 'prereg'])
    assert (args.pretrain_images, args.pretrain_epochs, args.continue_from,
            args.probe_max_iter) == (60000, 7, 3, 1000)
    assert study.parse_args([]).probe_max_iter == 1000
    assert args.record == osp.join('docs', 'itpn_study_prereg_results.json')
    assert args.work_dir == osp.join('work_dirs', 'itpn_prereg')
    assert args.fig_dir == osp.join('docs', 'figures', 'itpn_prereg')
    cfg = study.pretrain_config('mae', args, 0)
    assert cfg.train_cfg.max_epochs == 7
    assert cfg.train_dataloader.dataset.indices == 60000
    checkpoint = cfg.default_hooks.checkpoint
    assert (checkpoint.interval, checkpoint.max_keep_ckpts,
            checkpoint.save_optimizer) == (1, -1, True)
    base = cfg.optim_wrapper.optimizer.lr
    assert study.lr_after(1, args) == pytest.approx(base)
    assert study.lr_after(7, args) == pytest.approx(1e-5)
    arms = {
        arm: study.continuation_config(arm, 'pixel_epoch_3.pth', args, 5)
        for arm in ('cont-pixel', 'cont-mfm')
    }
    for arm, cfg in arms.items():
        assert cfg.load_from == 'pixel_epoch_3.pth'
        assert cfg.train_cfg.max_epochs == 4
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
            study.lr_after(3, args))
        assert cfg.param_scheduler[0]['end'] == 4
        assert cfg.default_hooks.checkpoint.type == 'CheckpointHook'
        assert cfg.randomness.seed == 5
    assert 'mfm_head' in arms['cont-mfm'].model
    assert 'mfm_head' not in arms['cont-pixel'].model
    # Apart from MFM the two arms are the same run.
    pixel, mfm = (arms[a].to_dict() for a in ('cont-pixel', 'cont-mfm'))
    for cfg in (pixel, mfm):
        cfg['model'].pop('mfm_head', None)
        cfg['model'].pop('ema', None)
    assert pixel == mfm


class PlanRecorder:
    """Stands in for ``Study`` in ``run_prereg``: notes the calls."""

    def __init__(self, root, record, converges_at=8000):
        self.root, self.record, self.calls = str(root), dict(record), []
        self.converges_at = converges_at

    def log(self, text):
        pass

    def pretrain(self, objective, seed):
        self.calls.append(('pretrain', objective))

    def regenerate(self, objective, seed, epochs):
        self.calls.append(('regenerate', objective, epochs))

    def probe(self, objective, seed, data, epoch=None):
        self.calls.append(('probe', objective, epoch))

    def continuation(self, arm, seed):
        self.calls.append(('continuation', arm))

    def transfer(self, task, init, seed):
        self.calls.append((task, init.split(':')[0]))

    def dense_pilot(self, iters):
        self.calls.append(('pilot', iters))
        self.record.update(
            pilot_record(iters, 0.5 if iters >= self.converges_at else 3.))


def curve_rising_at_end(final, rise_at_end, iters):
    """An mIoU curve evaluated every 10 % of ``iters`` whose last 20 %
    adds ``rise_at_end``."""
    step = iters // 10
    points = [[step * i, final - 10. + i] for i in range(1, 8)]
    return points + [[8 * step, final - rise_at_end],
                     [9 * step, final - rise_at_end / 2], [iters, final]]


def pilot_record(iters, rise_at_end):
    return {
        f'pilot/d@{iters}/99':
        dict(
            stage='pilot',
            name=f'd@{iters}',
            seed=99,
            iters=iters,
            curves=dict(mIoU=curve_rising_at_end(40., rise_at_end, iters)))
    }


# Pilots that fixed the dense transfer's length at 8,000 iterations.
PILOTS = {**pilot_record(4000, 3.), **pilot_record(8000, 0.4)}


class NoReport:

    def write(self):
        pass


def test_preregistered_plan_probes_each_pretraining_right_after_it(
        tmp_path, monkeypatch):
    # A session's work dir may not outlive it: the checkpoints of a
    # pretraining run are probed before the next run starts.
    study = study_tool()
    monkeypatch.setattr(study, 'load_probe_data', lambda args: [])
    args = study.parse_args(['--plan', 'prereg', '--seeds', '0'])
    runs = PlanRecorder(tmp_path, {})
    study.run_prereg(args, runs, NoReport())
    assert runs.calls[2:] == [('probe', 'none', None), ('pretrain', 'mae'),
                              ('probe', 'mae', 1), ('probe', 'mae', 3),
                              ('probe', 'mae', 7), ('pretrain', 'itpn-pixel'),
                              ('probe', 'itpn-pixel', 1),
                              ('probe', 'itpn-pixel', 3),
                              ('probe', 'itpn-pixel', 7),
                              ('continuation', 'cont-pixel'),
                              ('probe', 'cont-pixel', None),
                              ('continuation', 'cont-mfm'),
                              ('probe', 'cont-mfm', None), ('seg', 'a'),
                              ('seg', 'b'), ('seg', 'd')]
    assert runs.calls[:2] == [('pilot', 4000), ('pilot', 8000)]
    # No pilot length converged: the dense runs are not run, and their
    # checkpoints not trained for.
    runs = PlanRecorder(tmp_path, {}, converges_at=10**6)
    study.run_prereg(args, runs, NoReport())
    assert runs.calls[:3] == [('pilot', 4000), ('pilot', 8000),
                              ('pilot', 16000)]
    assert not any(c[0] == 'seg' for c in runs.calls)


def test_preregistered_plan_trains_again_only_what_unrecorded_runs_need(
        tmp_path, monkeypatch):
    study = study_tool()
    monkeypatch.setattr(study, 'load_probe_data', lambda args: [])
    args = study.parse_args(['--plan', 'prereg', '--seeds', '0'])
    probed = {
        f'probe/{name}/0': {}
        for name in ('none', 'mae@1', 'mae@3', 'mae@7', 'itpn-pixel@1',
                     'itpn-pixel@3', 'itpn-pixel@7')
    }
    trained = {'pretrain/mae/0': {}, 'pretrain/itpn-pixel/0': {}}
    dense = {f'seg/{init}/0': {} for init in 'abd'}
    # A new session: both pretrainings and their probes recorded, the work
    # dir gone. MAE is not trained again; the pixel run only to the epoch
    # the continuation arms start from.
    runs = PlanRecorder(tmp_path, {**probed, **trained, **dense})
    study.run_prereg(args, runs, NoReport())
    assert not any(c[0] == 'pilot' for c in runs.calls)
    assert [c for c in runs.calls
            if c[0] != 'probe'] == [('regenerate', 'itpn-pixel', 3),
                                    ('continuation', 'cont-pixel'),
                                    ('continuation', 'cont-mfm')]
    # The arms recorded too, the dense runs not: both pretrainings are
    # trained again to their last epoch, and only the missing runs run.
    arms = {'probe/cont-pixel/0': {}, 'probe/cont-mfm/0': {}}
    runs = PlanRecorder(tmp_path, {
        **probed,
        **trained,
        **arms,
        **PILOTS, 'seg/a/0': {},
        'seg/d/0': {}
    })
    study.run_prereg(args, runs, NoReport())
    assert runs.calls == [('probe', 'none', None),
                          ('regenerate', 'itpn-pixel', 7),
                          ('probe', 'itpn-pixel', 1),
                          ('probe', 'itpn-pixel', 3),
                          ('probe', 'itpn-pixel', 7), ('seg', 'b')]
    # Its work dir still there: nothing to regenerate (the run's own
    # record shortcut skips it).
    done = tmp_path / 'pretrain' / 'itpn-pixel' / 'seed0'
    done.mkdir(parents=True)
    (done / 'result.json').write_text('{}')
    runs = PlanRecorder(tmp_path, {**probed, **trained, **dense})
    study.run_prereg(args, runs, NoReport())
    assert ('pretrain', 'itpn-pixel') in runs.calls
    assert not any(c[0] == 'regenerate' for c in runs.calls)
    # Everything recorded: nothing is trained.
    runs = PlanRecorder(tmp_path, {**probed, **trained, **arms, **dense})
    study.run_prereg(args, runs, NoReport())
    assert runs.calls == [('probe', 'none', None)]


def test_processes_sharing_a_record_keep_each_others_runs(tmp_path):
    study = study_tool()
    args = study.parse_args([
        '--plan', 'prereg', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json'), '--out',
        str(tmp_path / 'report.md')
    ])
    first, second = study.Study(args), study.Study(args)  # seeds 1 and 2
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


def test_regeneration_keeps_the_original_run_and_compares_its_losses(
        tmp_path, monkeypatch):
    study = study_tool()
    args = study.parse_args([
        '--plan', 'prereg', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json')
    ])
    runs = study.Study(args)
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

    monkeypatch.setattr(study, 'train_run', fake_train_run)
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
    assert record['regenerate/itpn-pixel@2/0']['epochs'] == 2


def prereg_record(itpn_minus_mae, refuse=False):
    record = {}
    for seed in range(3):
        for name, top1 in (('none', 60.), ('mae@1', 64.), ('mae@3', 66.),
                           ('mae@7', 70. + seed), ('itpn-pixel@1',
                                                   64.), ('itpn-pixel@3', 66.),
                           ('itpn-pixel@7', 70. + seed + itpn_minus_mae[seed]),
                           ('cont-pixel', 70.), ('cont-mfm', 70. + seed)):
            record.update(probe_record(name, seed, top1))
    if refuse:
        record['probe/none/0']['probes']['backbone/mean/logistic'] = dict(
            method='logistic', refused='on the edge')
    return record


def test_preregistered_verdicts_follow_the_gates():
    study = study_tool()
    args = study.parse_args(['--plan', 'prereg'])
    text = '\n'.join(study.prereg_verdicts(prereg_record([1., 2., 3.]), args))
    assert '| G1: every probe converged, penalty inside the grid | met |' \
        in text
    assert 'G2: MAE@7 >= 5 points above random init' in text
    assert '| iTPN probes better than MAE | itpn-pixel@7 - mae@7: +2.00 ' \
        '[-0.48, +4.48] (+1.00, +2.00, +3.00) | G1, G2 | no difference ' \
        'shown (interval includes 0) |' in text
    assert 'cont-mfm - cont-pixel: +1.00' in text
    assert 'than a fresh one | - | G1, G3 | no verdict (not reached) |' in text
    text = '\n'.join(
        study.prereg_verdicts(prereg_record([2., 2.1, 2.2]), args))
    assert 'G1, G2 | itpn-pixel@7 higher |' in text
    text = '\n'.join(
        study.prereg_verdicts(prereg_record([2., 2.1, 2.2], True), args))
    assert 'FAILED: 1 probe(s) refused' in text
    assert text.count('no verdict (gate not met)') == 2
    assert 'not reached (needs mae and none' in text
    partial = {
        k: v
        for k, v in prereg_record([1., 1., 1.]).items() if k.endswith('/0')
    }
    text = '\n'.join(study.prereg_verdicts(partial, args))
    assert 'not reached (9 of 27 probe runs done)' in text
    assert text.count('no verdict (not reached)') == 3
    assert 'not reached (length undecided: no pilot run yet)' in text


def dense_record(finals, rise_at_end=0.5, iters=8000):
    """Segmentation runs whose last 20 % adds ``rise_at_end``; ``finals``
    maps an initialisation to its final mIoU per seed."""
    record = {}
    for init, values in finals.items():
        for seed, final in enumerate(values):
            record[f'seg/{init}/{seed}'] = dict(
                stage='seg',
                name=init,
                seed=seed,
                curves=dict(
                    mIoU=curve_rising_at_end(final, rise_at_end, iters)),
                wall_s=1.)
    return record


def test_dense_transfer_gate_and_verdict():
    study = study_tool()
    args = study.parse_args(['--plan', 'prereg'])
    probes = {**prereg_record([2., 2.1, 2.2]), **PILOTS}
    finals = dict(a=[43., 44.5, 46.], b=[40., 41., 42.], d=[35., 36., 37.])

    def verdicts(record):
        return '\n'.join(study.prereg_verdicts(record, args))

    text = verdicts({**probes, **dense_record(finals)})
    assert ('| G3: dense transfer long enough (fresh pyramid - none >= 2 '
            'mIoU, last 20 % adds < 1 mIoU) | met: b - d +5.00 [+5.00, '
            '+5.00] (+5.00, +5.00, +5.00); last 20 % adds +0.50 mIoU (mean '
            'of all runs; 8000 iterations, pilot of 4000: final 40.00, last '
            '20 % adds +3.00; pilot of 8000: final 40.00, last 20 % adds '
            '+0.40) |') in text
    assert ('| pretrained pyramid better than a fresh one | a - b, final '
            'mIoU: +3.50 [+2.26, +4.74] (+3.00, +3.50, +4.00) | G1, G3 | a '
            'higher |') in text
    # Still rising at the end: the runs were too short, no verdict.
    text = verdicts({**probes, **dense_record(finals, rise_at_end=1.5)})
    assert 'FAILED: b - d +5.00' in text and 'adds +1.50 mIoU' in text
    assert 'G1, G3 | no verdict (gate not met) |' in text
    # A fresh pyramid no better than no pretraining: no verdict either.
    text = verdicts({**probes, **dense_record(dict(finals, d=finals['b']))})
    assert 'FAILED: b - d +0.00' in text
    missing = dense_record(finals)
    missing.pop('seg/d/2')
    text = verdicts({**probes, **missing})
    assert 'not reached (8 of 9 dense runs of 8000 iterations done' in text
    assert 'a - b, final mIoU: +3.50' in text  # computed, not decided
    assert 'G1, G3 | no verdict (gate not met) |' in text
    # The length is fixed by the pilots alone.
    unsettled = {**prereg_record([2., 2.1, 2.2]), **pilot_record(4000, 3.)}
    assert 'not reached (length undecided: pilot of 4000: final 40.00, ' \
        'last 20 % adds +3.00)' in verdicts(unsettled)
    none_converged = {
        **unsettled,
        **pilot_record(8000, 2.),
        **pilot_record(16000, 1.2)
    }
    assert '| FAILED: no pilot length converged (pilot of 4000' in \
        verdicts(none_converged)
    assert study.dense_length(PILOTS, args) == 8000
    assert study.dense_length({
        **PILOTS,
        **pilot_record(4000, 0.9)
    }, args) == 4000


def test_preregistered_report_states_the_budgets_it_ran(tmp_path):
    study = study_tool()
    args = study.parse_args([
        '--plan', 'prereg', '--work-dir',
        str(tmp_path / 'wd'), '--record',
        str(tmp_path / 'record.json')
    ])
    runs = study.Study(args)
    report = study.Report(args, runs)
    assert 'dense transfer: length not yet fixed' in report.header()
    runs.record.update(PILOTS)
    header = report.header()
    # The dense length is the pilot's, not the 3-epoch study's seg_iters;
    # the budgets the plan does not run are not listed.
    assert 'dense transfer: 8000 iterations (fixed by the pilot)' in header
    assert 'seg_iters' not in header and 'det_epochs' not in header
    assert 'pretrain_epochs=7' in header
    assert 'dense runs train with seed 100 + k' in header
    assert 'One seed drives' not in header


def test_dense_transfer_configs():
    study = study_tool()
    args = study.parse_args(['--plan', 'prereg'])
    assert args.seg_points == 10
    args.seg_iters = 8000
    configs = {
        init.split(':')[0]:
        study.garments_seg_config(
            None if objective == 'none' else f'{objective}.pth', pyramid,
            'data/garments', args, 101)
        for init, (objective, pyramid) in study.TRANSFER_INITS.items()
        if init[0] in study.PREREG_DENSE_INITS
    }
    assert sorted(configs) == ['a', 'b', 'd']
    for init, cfg in configs.items():
        assert cfg.model.decode_head.num_classes == 11
        assert cfg.model.auxiliary_head.num_classes == 11
        assert cfg.model.data_preprocessor.size == (64, 64)
        assert cfg.train_dataloader.dataset.metainfo.classes[:2] == (
            'background', 'T-shirt/top')
        assert cfg.test_dataloader.dataset.metainfo.classes == \
            cfg.val_dataloader.dataset.metainfo.classes
        warmup, decay = cfg.param_scheduler
        assert (warmup['type'], warmup['end']) == ('LinearLR', 800)
        assert (decay['type'], decay['begin'], decay['end'],
                decay['eta_min']) == ('PolyLR', 800, 8000, 0.)
        assert cfg.train_cfg.max_iters == 8000
        assert cfg.train_cfg.val_interval == 800
        assert cfg.randomness.seed == 101
    assert configs['a'].model.neck.init_cfg.checkpoint == 'itpn-pixel.pth'
    assert 'init_cfg' not in configs['b'].model.neck
    assert configs['b'].model.backbone.init_cfg.checkpoint == \
        'itpn-pixel.pth'
    assert 'init_cfg' not in configs['d'].model.backbone
    # Apart from the initialisation the runs are the same.
    plain = []
    for cfg in configs.values():
        cfg = cfg.to_dict()
        cfg['model']['backbone'].pop('init_cfg', None)
        cfg['model']['neck'].pop('init_cfg', None)
        plain.append(cfg)
    assert all(cfg == plain[0] for cfg in plain)


def test_reconstruction_never_uses_hidden_units(tmp_path,
                                                pretraining_checkpoint):
    from mmitpn.visualization import load_reconstruction_model
    checkpoint, _ = pretraining_checkpoint()
    model = load_reconstruction_model(tiny_pixel_config(tmp_path), checkpoint)
    torch.manual_seed(0)
    image = torch.rand(1, 3, 64, 64) * 255
    torch.manual_seed(1)
    _, mask = model.reconstruct(torch.zeros(1, 3, 64, 64))
    hidden = int(mask[0].nonzero()[0])
    row, col = divmod(hidden, 4)
    changed = image.clone()
    box = (slice(None), slice(None), slice(row * 16, row * 16 + 16),
           slice(col * 16, col * 16 + 16))
    changed[box] = changed[box] * 0.2 + 100  # other contrast and brightness

    def columns(img):
        torch.manual_seed(1)  # the same mask
        panel = draw_reconstruction(model, img, True)[14:]
        return np.split(panel, 5, axis=1)

    original, modified = columns(image), columns(changed)
    unit = (slice(row * 16, row * 16 + 16), slice(col * 16, col * 16 + 16))
    # input, masked, prediction, pattern, true unit stats
    assert not np.array_equal(original[0][unit], modified[0][unit])
    assert np.array_equal(original[1], modified[1])
    assert np.array_equal(original[2][unit], modified[2][unit])
    assert np.array_equal(original[3][unit], modified[3][unit])
    assert not np.array_equal(original[4][unit], modified[4][unit])
    out = run(
        osp.join(TOOLS, 'visualization', 'vis_reconstruction.py'),
        tiny_pixel_config(tmp_path), checkpoint,
        *[str(p) for p in write_images(tmp_path)], '--out-dir',
        str(tmp_path / 'vis'))
    picture = Image.open(tmp_path / 'vis' / 'a_recon.png')
    assert picture.size == (4 * 64, 14 + 64) and 'a_recon.png' in out
    assert 'pattern R2 of the hidden units of 1 image(s): ' in out


def write_images(tmp_path):
    path = tmp_path / 'a.png'
    Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (80, 70, 3),
                                          dtype=np.uint8)).save(path)
    return [path]


def test_reconstruction_scores_all_images_and_draws_a_few(
        tmp_path, pretraining_checkpoint):
    checkpoint, _ = pretraining_checkpoint()
    images = []
    for index in range(3):
        path = tmp_path / f'img{index}.png'
        Image.fromarray(
            np.random.default_rng(index).integers(
                0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
        images.append(str(path))
    tool = osp.join(TOOLS, 'visualization', 'vis_reconstruction.py')
    config = tiny_pixel_config(tmp_path)
    out = run(tool, config, checkpoint, *images, '--draw', '2', '--out-dir',
              str(tmp_path / 'vis'), '--montage',
              str(tmp_path / 'montage' / 'all.png'))
    assert 'pattern R2 of the hidden units of 3 image(s): ' in out
    drawn = sorted(os.listdir(tmp_path / 'vis'))
    assert drawn == ['img0_recon.png', 'img1_recon.png']
    montage = Image.open(tmp_path / 'montage' / 'all.png')
    assert montage.size == (4 * 64, 2 * (14 + 64))


def test_dense_pilot_and_run_train_and_record_their_curves(
        tmp_path, make_fashion_mnist):
    study = study_tool()
    work_dir = tmp_path / 'wd'
    args = study.parse_args([
        '--plan', 'prereg', '--quick', '--work-dir',
        str(work_dir), '--fashion-mnist-root',
        make_fashion_mnist(40)
    ])
    runs = study.Study(args)
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

# Copyright (c) mmitpn contributors. All rights reserved.
"""The plan decide's runs: saved initialisations shared by the runs a
comparison pairs and written again bit for bit, the probes' held-out test,
the fine-tuning recipes, the order of a unit and its resumption, when and
where each run is recorded, and the committing of the record."""
import json
import os
import os.path as osp
import shutil
import subprocess

import pytest
import torch

from projects.itpn_study.study import configs, order
from projects.itpn_study.study.costs import RUN_COUNTS, budget_table
from projects.itpn_study.study.decide import DecideStudy
from projects.itpn_study.study.inits import dense_init
from projects.itpn_study.study.probes import (load_held_out_probe_data,
                                              load_probe_data)
from projects.itpn_study.study.runs import Study
from projects.itpn_study.tests.study_records import RUN_FIELDS, decide_record
from projects.itpn_study.tools import commit_record
from projects.itpn_study.tools.itpn_study import parse_args


def quick_args(tmp_path, *extra):
    return parse_args([
        '--plan', 'decide', '--quick', '--work-dir',
        str(tmp_path / 'wd'), *extra
    ])


def tensors(path):
    return torch.load(path, weights_only=True)['state_dict']


def test_both_objectives_start_from_one_saved_initialisation(tmp_path):
    study = DecideStudy(quick_args(tmp_path))
    made = study.pretraining_init(0)
    paths = study.init_paths(0)
    itpn, mae = tensors(paths['itpn-pixel']), tensors(paths['mae'])
    shared = [k for k in mae if k in itpn and mae[k].shape == itpn[k].shape]
    assert len(shared) == made['shared'] > 100
    assert all(torch.equal(mae[k], itpn[k]) for k in shared)
    assert any(k.startswith('backbone.') for k in shared)
    # What only one objective has: the pyramid, the decoders' input layers.
    assert set(made['own']['mae']) == {'head.decoder_embed'}
    assert 'neck.fpn_modules' in made['own']['itpn-pixel']
    assert study.record['init/pretraining/0']['started_utc'].endswith('Z')
    # Both pretraining configs load their file.
    for objective, path in paths.items():
        assert study.pretrain_config(objective, 0).load_from == path
    # Another seed, other weights.
    study.pretraining_init(1)
    other = tensors(study.init_paths(1)['itpn-pixel'])
    assert not torch.equal(other['backbone.patch_embed.proj.weight'],
                           itpn['backbone.patch_embed.proj.weight'])
    # A new working period writes the files again, bit for bit.
    shutil.rmtree(tmp_path / 'wd' / 'init')
    again = DecideStudy(quick_args(tmp_path))
    assert again.pretraining_init(0) == made
    assert torch.equal(
        tensors(paths['itpn-pixel'])['backbone.patch_embed.proj.weight'],
        itpn['backbone.patch_embed.proj.weight'])
    # Files that differ from the recorded ones are recorded too.
    shutil.rmtree(tmp_path / 'wd' / 'init')
    again.record['init/pretraining/0']['files']['mae'] = 'something else'
    assert again.pretraining_init(0)['files'] == made['files']
    assert again.record['init/rewritten/0']['files'] == made['files']
    # The random initialisation probed as 'none' is that file.
    assert again.checkpoint('none', 0) == paths['itpn-pixel']


def test_dense_inits_differ_only_in_the_part_compared(tmp_path):
    study = DecideStudy(quick_args(tmp_path))
    study.pretraining_init(0)
    random = study.init_paths(0)['itpn-pixel']
    # A stand-in for a pretrained checkpoint: other backbone and pyramid.
    study.pretraining_init(1)
    pretrained = study.init_paths(1)['itpn-pixel']
    cfg = configs.decide_seg_config('shipped', 'init.pth', 'data', study.args,
                                    200, study.dense)
    states, made = {}, {}
    for init, backbone, pyramid in (('a', pretrained, pretrained),
                                    ('b', pretrained, None), ('d', random,
                                                              None)):
        path = str(tmp_path / f'{init}.pth')
        made[init] = dense_init(cfg.model, 200, path, backbone, pyramid)
        states[init] = tensors(path)

    def differ(x, y):
        return {
            k.split('.')[0]
            for k in states[x] if not torch.equal(states[x][k], states[y][k])
        }

    assert differ('a', 'b') == {'neck'}
    assert differ('b', 'd') == {'backbone'}
    assert made['a']['heads'] == made['b']['heads'] == made['d']['heads']
    # The pretraining checkpoint has no relative position tables: they are
    # reported, and shared too.
    missing = made['a']['loaded']['backbone']['missing']
    assert missing and all('relative_position' in k for k in missing)
    assert made['a']['loaded']['neck'] == dict(missing=[], unexpected=[])
    # Another downstream seed: other heads.
    other = dense_init(cfg.model, 201, str(tmp_path / 'b201.pth'), pretrained,
                       None)
    assert other['heads'] != made['b']['heads']


def test_fine_tuning_recipes_and_pretraining_configs():
    args = parse_args(['--plan', 'decide'])
    dense = dict(train=300, val=500, iters=600, points=10, last=3)
    shipped = configs.decide_seg_config('shipped', 'i.pth', 'd', args, 200,
                                        dense)
    assert shipped.load_from == 'i.pth'
    assert 'init_cfg' not in shipped.model.backbone
    assert 'init_cfg' not in shipped.model.neck
    assert shipped.train_cfg.max_iters == 600
    assert shipped.train_cfg.val_interval == 60
    assert shipped.optim_wrapper.paramwise_cfg == dict(layer_decay_rate=0.9)
    lower = configs.decide_seg_config('backbone-lr-0.1', 'i.pth', 'd', args,
                                      200, dense)
    assert lower.optim_wrapper.paramwise_cfg.custom_keys == {
        'backbone.': dict(lr_mult=0.1)
    }
    frozen = configs.decide_seg_config('frozen-backbone', 'i.pth', 'd', args,
                                       200, dense)
    assert frozen.model.backbone.frozen_stages == 3
    with pytest.raises(ValueError, match='unknown recipe'):
        configs.decide_seg_config('other', 'i.pth', 'd', args, 200, dense)
    pretrain = configs.decide_pretrain_config('mae', args, 3, 'init.pth')
    assert pretrain.load_from == 'init.pth'
    assert pretrain.train_dataloader.dataset.indices == 40000
    assert pretrain.train_cfg.max_epochs == 8
    assert pretrain.randomness.seed == 3
    assert pretrain.default_hooks.checkpoint == dict(
        type='mmitpn.SafeCheckpointHook',
        interval=1,
        max_keep_ckpts=-1,
        save_optimizer=True)
    # Masks and crops are functions of the seed and the iteration in both
    # objectives alike.
    itpn = configs.decide_pretrain_config('itpn-pixel', args, 3, 'init.pth')
    assert pretrain.train_dataloader == itpn.train_dataloader
    assert pretrain.train_dataloader.num_workers == 0
    assert dict(type='IterationSeedHook') in itpn.custom_hooks


def test_the_probe_test_holds_only_images_pretraining_never_saw(
        tmp_path, make_fashion_mnist):
    root = make_fashion_mnist(64)
    args = quick_args(tmp_path, '--fashion-mnist-root', root,
                      '--probe-train-images', '32')
    (train, train_labels), (test, test_labels) = load_held_out_probe_data(args)
    assert train.shape == (32, 3, 64, 64) and len(train_labels) == 32
    # 16 held-out training images (48-63) and 16 test images.
    assert test.shape[0] == len(test_labels) == 32
    # The same images and normalisation as the other plans' probes.
    reference = parse_args([
        '--plan', 'prereg', '--quick', '--fashion-mnist-root', root,
        '--probe-train-images', '64', '--test-images', '16'
    ])
    (all_train, labels), (all_test, _) = load_probe_data(reference)
    assert torch.allclose(train[:], all_train[:32])
    assert torch.allclose(test[:16], all_train[48:64])
    assert torch.allclose(test[16:], all_test)
    assert torch.equal(test_labels[:16], labels[48:64])
    args.probe_train_images = 49
    with pytest.raises(ValueError, match='trains on pretraining images only'):
        load_held_out_probe_data(args)
    args.probe_train_images, args.held_out_images = 32, 40
    with pytest.raises(ValueError, match='has 64 images, fewer than'):
        load_held_out_probe_data(args)


def test_every_run_records_when_and_where_it_ran(tmp_path):
    study = Study(quick_args(tmp_path))
    result = study.run('probe', 'x', 0, lambda work_dir: {})
    assert result['started_utc'] <= result['ended_utc']
    assert len(result['started_utc']) == 20
    machine = result['machine']
    assert set(machine) == {
        'model_name', 'cpu_family', 'model', 'cpus', 'omp_num_threads', 'nice'
    }
    assert machine['model_name'] and machine['cpus']
    assert len(result['load_avg']) == 2


def test_one_tiny_dense_run(tmp_path, make_fashion_mnist):
    args = quick_args(tmp_path, '--fashion-mnist-root', make_fashion_mnist(40))
    study = DecideStudy(args)
    study.pretraining_init(0)
    # The saved initialisation stands in for the pretrained checkpoint.
    folder = tmp_path / 'wd' / 'pretrain' / 'itpn-pixel' / 'seed0'
    folder.mkdir(parents=True)
    shutil.copy(study.init_paths(0)['itpn-pixel'], folder / 'epoch_2.pth')
    result = study.dense_run('a', 0, 200, 'backbone-lr-0.1')
    points = result['curves']['mIoU']
    assert [step for step, _ in points] == [2, 4, 6, 8, 10]
    assert result['metric'] == pytest.approx(
        sum(v for _, v in points[-3:]) / 3)
    assert result['recipe'] == 'backbone-lr-0.1'
    assert 'neck' in result['init_file']['loaded']
    work_dir = tmp_path / 'wd' / 'seg' / 'a.ds200' / 'seed0'
    log = (work_dir / 'stdout.log').read_text()
    assert 'Load checkpoint from' in log and 'init.pth' in log
    assert sorted(os.listdir(tmp_path / 'wd' / 'data')) == ['garments_seg']
    assert len(
        os.listdir(tmp_path / 'wd' / 'data' / 'garments_seg' / 'images' /
                   'train')) == 24


class UnitRecorder:
    """Stands in for ``DecideStudy`` in ``run_decide``: notes each run not
    yet recorded and records it from ``truth``."""

    def __init__(self, root, truth, record=None):
        self.root, self.truth = str(root), truth
        self.record, self.calls = dict(record or {}), []

    def log(self, text):
        pass

    def _make(self, key, call):
        if key not in self.record:
            self.calls.append(call)
            self.record[key] = self.truth.get(key, dict(RUN_FIELDS))

    def pretraining_init(self, seed):
        self.record.setdefault(f'init/pretraining/{seed}', {})

    def pretrain(self, objective, seed):
        self.calls.append(('pretrain', objective, seed))
        self.record[f'pretrain/{objective}/{seed}'] = dict(RUN_FIELDS)

    def regenerate(self, objective, seed, epochs):
        self.calls.append(('regenerate', objective, seed, epochs))

    def probe(self, objective, seed, data, epoch=None):
        name = objective if epoch is None else f'{objective}@{epoch}'
        self._make(f'probe/{name}/{seed}', ('probe', name, seed))

    def continuation(self, arm, seed):
        self._make(f'continue/{arm}/{seed}', ('continuation', arm, seed))

    def pilot_run(self, init, downstream, recipe):
        self._make(f'pilot/{init}.{recipe}.ds{downstream}/0',
                   ('pilot', init, recipe, downstream))

    def dense_run(self, init, seed, downstream, recipe):
        self._make(f'seg/{init}.ds{downstream}/{seed}',
                   ('seg', init, seed, downstream, recipe))


class NoReport:

    def write(self):
        pass


def test_a_unit_uses_its_pixel_checkpoint_at_once_then_trains_mae(
        tmp_path, monkeypatch):
    monkeypatch.setattr(order, 'load_held_out_probe_data', lambda args: [])
    args = parse_args(['--plan', 'decide', '--seeds', '0'])
    truth = decide_record(
        [0.] * 6, [0.] * 6,
        pilots=(('shipped', 1., 2.), ('backbone-lr-0.1', 3., 2.)))
    runs = UnitRecorder(tmp_path, truth)
    order.run_decide(args, runs, NoReport())
    pilots = [('pilot', init, recipe, ds)
              for recipe in ('shipped', 'backbone-lr-0.1') for ds in (98, 99)
              for init in 'bd']
    dense = [('seg', init, 0, ds, 'backbone-lr-0.1') for ds in (200, 201)
             for init in 'ab']
    assert runs.calls == [('probe', 'none', 0), ('pretrain', 'itpn-pixel', 0),
                          ('probe', 'itpn-pixel@8', 0),
                          ('continuation', 'cont-pixel', 0),
                          ('probe', 'cont-pixel', 0),
                          ('continuation', 'cont-mfm', 0),
                          ('probe', 'cont-mfm', 0)
                          ] + pilots + dense + [('pretrain', 'mae', 0),
                                                ('probe', 'mae@8', 0)]
    # A unit without arms or pilot.
    runs = UnitRecorder(tmp_path, truth, runs.record)
    order.run_decide(
        parse_args(['--plan', 'decide', '--seeds', '5']), runs, NoReport())
    assert runs.calls == [('probe', 'none', 5), ('pretrain', 'itpn-pixel', 5),
                          ('probe', 'itpn-pixel@8', 5)] + [
                              ('seg', init, 5, ds, 'backbone-lr-0.1')
                              for ds in (210, 211) for init in 'ab'
                          ] + [('pretrain', 'mae', 5), ('probe', 'mae@8', 5)]


def test_a_new_working_period_trains_again_only_what_is_needed(
        tmp_path, monkeypatch):
    monkeypatch.setattr(order, 'load_held_out_probe_data', lambda args: [])
    args = parse_args(['--plan', 'decide', '--seeds', '1'])
    truth = decide_record([0.] * 6, [0.] * 6)
    done = {
        k: v
        for k, v in truth.items() if k.endswith('/1') or k.startswith('pilot')
    }
    # Unit 1 recorded up to its arms; its dense runs and MAE are not, and
    # the work dir is gone: the pixel run is trained again to its end.
    partial = {
        k: v
        for k, v in done.items() if not k.startswith('seg/') and 'mae' not in k
    }
    runs = UnitRecorder(tmp_path, truth, partial)
    order.run_decide(args, runs, NoReport())
    assert runs.calls == [('regenerate', 'itpn-pixel', 1, 8)] + [
        ('seg', init, 1, ds, 'shipped') for ds in (202, 203) for init in 'ab'
    ] + [('pretrain', 'mae', 1), ('probe', 'mae@8', 1)]
    # Only the arms missing: trained again to the epoch they start from.
    partial = {k: v for k, v in done.items() if 'cont-' not in k}
    runs = UnitRecorder(tmp_path, truth, partial)
    order.run_decide(args, runs, NoReport())
    assert runs.calls == [('regenerate', 'itpn-pixel', 1, 4),
                          ('continuation', 'cont-pixel', 1),
                          ('probe', 'cont-pixel', 1),
                          ('continuation', 'cont-mfm', 1),
                          ('probe', 'cont-mfm', 1)]
    # Everything recorded: nothing runs.
    runs = UnitRecorder(tmp_path, truth, done)
    order.run_decide(args, runs, NoReport())
    assert runs.calls == []


def test_the_full_plan_adds_extension_units_by_the_sequential_rule(
        tmp_path, monkeypatch):
    monkeypatch.setattr(order, 'load_held_out_probe_data', lambda args: [])
    args = parse_args(['--plan', 'decide'])
    narrow = [0.1, -0.1, 0.05, 0.0, 0.1, -0.05]
    wide = [1.5, -1.5, 1., -1., 0.5, -0.5]
    runs = UnitRecorder(tmp_path, decide_record(narrow, narrow))
    order.run_decide(args, runs, NoReport())
    assert not any(call[2:3] == (6, ) for call in runs.calls)
    # C3 too wide after six units: the seventh, then (still wide) the
    # eighth, each without a probe of its random initialisation.
    truth = decide_record(narrow + [0., 0.], wide + [1.5, -1.5])
    runs = UnitRecorder(tmp_path, truth)
    order.run_decide(args, runs, NoReport())
    seventh = [c for c in runs.calls if c[2:3] == (6, )]
    assert seventh[:2] == [('pretrain', 'itpn-pixel', 6),
                           ('probe', 'itpn-pixel@8', 6)]
    assert ('probe', 'none', 6) not in runs.calls
    assert ('probe', 'mae@8', 7) in runs.calls


def test_the_record_is_committed_alone_with_its_new_runs(tmp_path):
    repo = tmp_path / 'repo'
    repo.mkdir()

    def git(*args):
        return subprocess.run(['git', '-C', str(repo), *args],
                              check=True,
                              capture_output=True,
                              text=True).stdout

    git('init', '-q')
    git('config', 'user.name', 'test')
    git('config', 'user.email', 'test@example.com')
    record = repo / 'records' / 'itpn_study_decide_results.json'
    record.parent.mkdir()
    other = repo / 'notes.md'
    other.write_text('one\n')
    git('add', 'notes.md')
    git('commit', '-q', '-m', 'start')
    truth = decide_record([0.] * 6, [0.] * 6)
    runs = {k: truth[k] for k in ('probe/none/0', 'pretrain/mae/0')}
    record.write_text(json.dumps(runs))
    other.write_text('two\n')
    text = commit_record.commit_once(str(record))
    assert text.splitlines()[0] == (
        'Record decide: pretrain/mae/0 finished, final loss_pixel 0.8000 '
        '(+1 more)')
    assert '- probe/none/0: headline top-1 70.00' in text
    assert git('show', '--stat', '--format=', 'HEAD').split()[0] == \
        'records/itpn_study_decide_results.json'
    assert 'notes.md' in git('status', '--porcelain')
    assert commit_record.commit_once(str(record)) is None
    runs['seg/a.ds200/0'] = truth['seg/a.ds200/0']
    record.write_text(json.dumps(runs))
    assert commit_record.commit_once(str(record)).splitlines()[0] == (
        'Record decide: seg/a.ds200/0 finished, mIoU 30.00 (mean of the last '
        'evaluations)')
    assert osp.basename(git('log', '-1', '--name-only',
                            '--format=').strip()) == record.name


def test_the_budget_is_projected_from_the_measured_costs():
    costs = {
        kind: dict(full_run_min=60., cpu_s=1., wall_s=2.)
        for kind, *_ in RUN_COUNTS
    }
    costs['dense a']['s_per_iter'] = 0.5
    lines = budget_table(costs)
    # 6 + 6 + 4 + 4 + 6 + 14 + 6 + 28 runs of an hour each, half of it on
    # the CPU; an extension unit: 2 pretrainings, 2 probes, 4 dense runs.
    assert ('| **all** | | | | | **74.0 / 37.0** | 8.0 / 4.0 h per '
            'extension unit |') in lines
    assert '| dense a | 0.50 | 0.50 | 60.0 / 30.0 | 28 | 28.00 / 14.00 | 4 |' \
        in lines
    assert lines[-1] == ('Each further pilot rung adds 4.0 / 2.0 '
                         'process-hours; the largest plan (three rungs, two '
                         'extension units) 98.0 / 49.0.')

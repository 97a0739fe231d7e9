# Copyright (c) mmitpn contributors. All rights reserved.
"""The plans' budgets and places, and the generated configs of their runs:
schedules are the demo configs' rescaled to the study's lengths."""
import os.path as osp

import pytest

from projects.itpn_study.study import configs
from projects.itpn_study.study.plan import (PREREG_DENSE_INITS, PROJECT,
                                            TRANSFER_INITS)
from projects.itpn_study.tools.itpn_study import parse_args


def test_plans_keep_their_records_and_pages_in_the_project():
    for plan, page, figures in (('study', 'itpn_study.md', 'study'),
                                ('rerun', 'itpn_study_rerun.md', 'rerun'),
                                ('prereg', 'itpn_study_prereg.md', 'prereg')):
        args = parse_args(['--plan', plan])
        assert args.out == osp.join(PROJECT, 'docs', page)
        assert args.fig_dir == osp.join(PROJECT, 'docs', 'figures', figures)
        assert osp.dirname(args.record) == osp.join(PROJECT, 'records')
        assert osp.isfile(args.record), args.record
    args = parse_args(['--plan', 'prereg'])
    assert args.work_dir == osp.join('work_dirs', 'itpn_prereg')
    assert args.record.endswith('itpn_study_prereg_results.json')
    # A smoke run keeps its record in its work dir.
    quick = parse_args(['--quick', '--work-dir', 'wd'])
    assert quick.record == osp.join('wd', 'itpn_study_results.json')


def lr_schedule(cfg):
    return [{k: v for k, v in s.items()} for s in cfg.param_scheduler]


def test_schedules_are_the_demo_configs_rescaled():
    """The schedules the study's records were measured with, now derived
    from the demo configs."""
    study = parse_args([])
    warmup = dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0)
    cosine = dict(
        type='CosineAnnealingLR',
        eta_min=1e-5,
        by_epoch=True,
        convert_to_iter_based=True)
    pretrain = configs.pretrain_config('mae', study, 0)
    assert lr_schedule(pretrain) == [
        dict(warmup, end=1, convert_to_iter_based=True),
        dict(cosine, begin=1, end=3)
    ]
    assert pretrain.optim_wrapper.optimizer.lr == pytest.approx(6e-4)
    assert pretrain.train_dataloader.batch_size == 128
    # A 1-epoch run has no warm-up.
    quick = parse_args(['--quick'])
    assert lr_schedule(configs.pretrain_config(
        'mae', quick, 0)) == [dict(cosine, begin=0, end=1)]
    assert lr_schedule(configs.finetune_config(None, study, 0)) == [
        dict(warmup, end=1, convert_to_iter_based=True),
        dict(cosine, begin=1, end=3)
    ]
    assert lr_schedule(configs.seg_config(None, False, 'd', study, 0)) == [
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=False,
            begin=0,
            end=18),
        dict(
            type='PolyLR',
            eta_min=0.,
            power=1.,
            begin=18,
            end=180,
            by_epoch=False)
    ]
    assert lr_schedule(configs.det_config(None, False, 'd', study, 0)) == [
        dict(
            type='LinearLR',
            start_factor=1e-3,
            by_epoch=False,
            begin=0,
            end=50),
        dict(
            type='MultiStepLR',
            begin=0,
            end=6,
            by_epoch=True,
            milestones=[5],
            gamma=0.1)
    ]
    prereg = parse_args(['--plan', 'prereg'])
    # Cosine from 1.5e-4 x 128 / 256 x 8 after the warm-up epoch to 1e-5
    # after epoch 7.
    assert configs.lr_after(1, prereg) == pytest.approx(6e-4)
    assert configs.lr_after(4, prereg) == pytest.approx((6e-4 + 1e-5) / 2)
    assert configs.lr_after(7, prereg) == pytest.approx(1e-5)


def test_a_schedule_the_study_cannot_rescale_is_named():
    with pytest.raises(ValueError, match='cfg.py: the study rescales'):
        configs.epoch_schedule([dict(type='CosineAnnealingLR')], 3, 'cfg.py')


def test_preregistered_plan_configs():
    args = parse_args(['--plan', 'prereg'])
    assert (args.pretrain_images, args.pretrain_epochs, args.continue_from,
            args.probe_max_iter) == (60000, 7, 3, 1000)
    assert parse_args([]).probe_max_iter == 1000
    cfg = configs.pretrain_config('mae', args, 0)
    assert cfg.train_cfg.max_epochs == 7
    assert cfg.train_dataloader.dataset.indices == 60000
    checkpoint = cfg.default_hooks.checkpoint
    assert (checkpoint.interval, checkpoint.max_keep_ckpts,
            checkpoint.save_optimizer) == (1, -1, True)
    arms = {
        arm: configs.continuation_config(arm, 'pixel_epoch_3.pth', args, 5)
        for arm in ('cont-pixel', 'cont-mfm')
    }
    for arm, cfg in arms.items():
        assert cfg.load_from == 'pixel_epoch_3.pth'
        assert cfg.train_cfg.max_epochs == 4
        assert cfg.optim_wrapper.optimizer.lr == pytest.approx(
            configs.lr_after(3, args))
        assert cfg.param_scheduler[0]['begin'] == 0
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


def test_dense_transfer_configs():
    args = parse_args(['--plan', 'prereg'])
    assert args.seg_points == 10
    args.seg_iters = 8000
    built = {
        init.split(':')[0]:
        configs.garments_seg_config(
            None if objective == 'none' else f'{objective}.pth', pyramid,
            'data/garments', args, 101)
        for init, (objective, pyramid) in TRANSFER_INITS.items()
        if init[0] in PREREG_DENSE_INITS
    }
    assert sorted(built) == ['a', 'b', 'd']
    for init, cfg in built.items():
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
    assert built['a'].model.neck.init_cfg.checkpoint == 'itpn-pixel.pth'
    assert 'init_cfg' not in built['b'].model.neck
    assert built['b'].model.backbone.init_cfg.checkpoint == 'itpn-pixel.pth'
    assert 'init_cfg' not in built['d'].model.backbone
    # Apart from the initialisation the runs are the same.
    plain = []
    for cfg in built.values():
        cfg = cfg.to_dict()
        cfg['model']['backbone'].pop('init_cfg', None)
        cfg['model']['neck'].pop('init_cfg', None)
        plain.append(cfg)
    assert all(cfg == plain[0] for cfg in plain)

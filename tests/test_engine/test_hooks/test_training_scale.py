# Copyright (c) mmitpn contributors. All rights reserved.
"""Shipped recipes train with their lr rule at any world size."""
import glob
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
SHIPPED = sorted(
    path for task in ('pretrain', 'cls', 'det', 'seg')
    for path in glob.glob(osp.join(REPO, 'configs', task, '*.py')))
PIXEL = osp.join(REPO, 'configs', 'pretrain',
                 'itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k.py')


@pytest.mark.parametrize('path', SHIPPED, ids=osp.basename)
def test_shipped_configs_scale_lr_from_their_nominal_batch(path):
    gpus, per_gpu = map(
        int,
        re.search(r'_(\d+)xb(\d+)', osp.basename(path)).groups())
    cfg = Config.fromfile(path)
    assert cfg.auto_scale_lr.enable is True
    assert cfg.auto_scale_lr.base_batch_size == gpus * per_gpu
    assert cfg.train_dataloader.batch_size == per_gpu


class Toy(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 2)

    def forward(self, inputs, mode='tensor'):
        return dict(loss=self.linear(inputs).sum())


@pytest.mark.parametrize('world_size', [1, 8, 64])
def test_pixel_recipe_lr_for_any_world_size(tmp_path, world_size, caplog):
    cfg = Config.fromfile(PIXEL)
    optimizer = dict(cfg.optim_wrapper.optimizer, fused=False)
    runner = Runner(
        model=Toy(),
        work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=[torch.ones(2)] * 4,
            sampler=dict(type='DefaultSampler', shuffle=False),
            batch_size=cfg.train_dataloader.batch_size,
            num_workers=0),
        optim_wrapper=dict(optimizer=optimizer),
        train_cfg=dict(by_epoch=True, max_epochs=1),
        auto_scale_lr=cfg.auto_scale_lr,
        custom_hooks=[dict(type='mmitpn.TrainingScaleLoggerHook')],
        default_scope='mmitpn')
    runner._world_size = world_size
    runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
    runner.scale_lr(runner.optim_wrapper, runner.auto_scale_lr)
    total = world_size * 64
    # The official rule: lr = 1.5e-4 * total batch / 256.
    expected = 1.5e-4 * total / 256
    lr = runner.optim_wrapper.optimizer.param_groups[0]['lr']
    assert lr == pytest.approx(expected, rel=1e-9)
    runner.call_hook('before_train')
    log = open(glob.glob(osp.join(tmp_path, '*', '*.log'))[0]).read()
    assert f'{world_size} process(es) x 64 images x 1 accumulation ' \
           f'step(s) = total batch {total}' in log
    assert f'effective lr {expected:.4g}..{expected:.4g}' in log

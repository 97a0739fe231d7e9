# Copyright (c) mmitpn contributors. All rights reserved.
"""Every classification config builds at full size and trains one iteration
with tiny overrides, its backbone (and pyramid) loaded from a pretraining
checkpoint written by the iTPN algorithm."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from PIL import Image

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'cls', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'cls', 'demo', '*.py')))
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)


def write_imagenet_like(folder):
    rng = np.random.default_rng(0)
    for label in ('a', 'b'):
        (folder / label).mkdir(parents=True)
        pixels = rng.integers(0, 255, (80, 80, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / label / '0.png')
    return str(folder)


def resize_pipeline(pipeline):
    for step in pipeline:
        if step.type in ('RandomResizedCrop', 'CenterCrop'):
            step.update({'scale' if 'scale' in step else 'crop_size': 64})
        elif step.type == 'ResizeEdge':
            step.scale = 73
        elif step.type == 'Resize':
            step.scale = (64, 64)


def shrink(cfg, tmp_path, checkpoint, fashion_mnist_root):
    backbone = cfg.model.backbone
    backbone.update(arch=TINY, img_size=64)
    backbone.init_cfg.checkpoint = checkpoint
    neck = cfg.model.get('neck')
    if neck and neck.type == 'mmitpn.iTPNLinearProbeNeck':
        neck.pyramid.update(embed_dims=64, fpn_dim=32)
        neck.pyramid.init_cfg.checkpoint = checkpoint
        cfg.model.head.in_channels = 3 * 32 + 64
    elif neck:
        neck.input_features = 64
        cfg.model.head.in_channels = 64
    else:
        cfg.model.head.in_channels = 64
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    if loader.dataset.type == 'mmitpn.FashionMNIST':
        loader.dataset.update(data_root=fashion_mnist_root, indices=2)
    else:
        loader.dataset = dict(
            type='CustomDataset',
            data_root=write_imagenet_like(tmp_path / 'images'),
            pipeline=loader.dataset.pipeline)
    resize_pipeline(loader.dataset.pipeline)
    cfg.train_cfg.update(max_epochs=1, val_interval=100)
    for scheduler in cfg.param_scheduler:
        scheduler.update(begin=0, end=1)
    return cfg


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_cls_config_builds_and_trains_one_iteration(config, tmp_path,
                                                    fashion_mnist_root,
                                                    pretraining_checkpoint,
                                                    train_one_iteration):
    cfg = Config.fromfile(config)
    assert cfg.model.backbone.init_cfg.prefix == 'backbone.'
    with DefaultScope.overwrite_default_scope('mmpretrain'), \
            torch.device('meta'):
        MMPRETRAIN_MODELS.build(cfg.model)

    checkpoint, pretrained = pretraining_checkpoint()
    runner = train_one_iteration(
        shrink(cfg, tmp_path, checkpoint, fashion_mnist_root))
    backbone = runner.model.backbone
    if backbone.frozen_stages == 3:
        # Linear probing: the backbone still holds the pretrained weights.
        assert torch.equal(backbone.blocks[0].mlp.fc1.weight,
                           pretrained.backbone.blocks[0].mlp.fc1.weight)

# Copyright (c) mmitpn contributors. All rights reserved.
"""Every pretraining config builds at full size; one of each training group
(tests/shipped_configs.py) trains one iteration with tiny overrides
(architecture, image size, batch)."""
import glob
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope
from PIL import Image
from shipped_configs import group_ids, load_config, training_groups

from mmitpn.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'pretrain', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'pretrain', 'demo', '*.py')))
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
# The test keeps each config's training pipeline (resized).
TRAINED = training_groups(
    CONFIGS, ('model', 'optim_wrapper', 'train_dataloader.dataset.pipeline'))


def tiny_teacher(tmp_path, model_name, embed_dim, image_size=64):
    """A random open_clip tower saved as a CLIP-style state dict."""
    from mmitpn.models.target_generators import build_vision_tower
    patch = 14 if '-14' in model_name else 16
    vision_cfg = dict(
        image_size=image_size // 16 * patch,
        layers=1,
        width=32,
        head_width=16,
        patch_size=patch)
    tower = build_vision_tower(embed_dim, vision_cfg)
    path = str(tmp_path / f'clip_{patch}_{embed_dim}.pth')
    torch.save({f'visual.{k}': v for k, v in tower.state_dict().items()}, path)
    return dict(vision_cfg=vision_cfg, embed_dim=embed_dim, ckpt=path)


def write_images(folder, count=2, size=80):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f'{i}.png')
    return str(folder)


def shrink(cfg, tmp_path):
    """Tiny architecture, 64 px images from a temporary folder, batch 2."""
    model = cfg.model
    model.backbone.update(arch=TINY, img_size=64)
    model.neck.update(embed_dims=64, fpn_dim=32)
    head = model.head
    if head.type == 'iTPNPixelHead':
        head.update(
            fpn_dim=32,
            decoder_embed_dims=32,
            decoder_depth=1,
            decoder_num_heads=2,
            img_size=64)
    else:
        head.update(
            embed_dims=64,
            fpn_dim=32,
            teacher_dims=32,
            num_heads=4,
            grid_size=(4, 4))
        model.teacher.update(
            tiny_teacher(tmp_path, model.teacher.model_name, 32))
    if model.get('mfm_head'):
        model.mfm_head.update(
            fpn_dim=32,
            teacher_dims=(16, 32, 64),
            embed_dims=32,
            depth=1,
            num_heads=2,
            img_size=64)
    loader = cfg.train_dataloader
    loader.update(batch_size=2, num_workers=0, persistent_workers=False)
    images = write_images(tmp_path / 'images')
    loader.dataset = dict(
        type='mmpretrain.CustomDataset',
        data_root=images,
        with_label=False,
        pipeline=loader.dataset.pipeline)
    for step in loader.dataset.pipeline:
        if step.type == 'mmpretrain.RandomResizedCrop':
            step.scale = 64
        if step.type == ('mmpretrain.'
                         'RandomResizedCropAndInterpolationWithTwoPic'):
            patch = model.teacher.vision_cfg['patch_size']
            step.update(size=64, second_size=4 * patch)
        if step.type == 'mmpretrain.BEiTMaskGenerator':
            step.update(
                input_size=(4, 4),
                num_masking_patches=6,
                max_num_patches=6,
                min_num_patches=2)
    cfg.train_cfg.max_epochs = 1
    # Squeeze every scheduler into the single epoch (types kept).
    for scheduler in cfg.param_scheduler:
        scheduler.update(begin=0, end=1)
    cfg.resume = False
    return cfg


def full_size_model_cfg(cfg, tmp_path):
    """The config's model; a CLIP teacher gets a tiny tower of the right
    output width (its real weights are a local file users provide)."""
    model = cfg.model.copy()
    if 'teacher' in model:
        model.teacher = dict(model.teacher)
        model.teacher.update(
            tiny_teacher(
                tmp_path,
                model.teacher['model_name'],
                model.head.teacher_dims,
                image_size=224))
    return model


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_config_builds_at_full_size(config, tmp_path):
    cfg = load_config(config)
    with DefaultScope.overwrite_default_scope('mmitpn'), \
            torch.device('meta'):
        model = MODELS.build(full_size_model_cfg(cfg, tmp_path))
    assert model.backbone.img_size in ((224, 224), (96, 96), (64, 64))


@pytest.mark.parametrize('config', list(TRAINED), ids=group_ids(TRAINED))
def test_config_trains_one_iteration(config, tmp_path, train_one_iteration):
    cfg = load_config(config)
    train_one_iteration(shrink(cfg, tmp_path))

# Copyright (c) mmitpn contributors. All rights reserved.
"""Pretraining configs made tiny for the tests: a tiny architecture, 64 px
images from a temporary folder, batch 2, one epoch, and random CLIP towers
for the CLIP teachers.

Test modules import these by name (``from pretrain_shrink import shrink``),
as they import :mod:`tiny_models`.
"""
import numpy as np
import torch
from PIL import Image
from tiny_models import tiny_arch


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
    model.backbone.update(arch=tiny_arch(), img_size=64)
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

# Copyright (c) mmitpn contributors. All rights reserved.
"""Tiny HiViT-family architectures and iTPN models for the tests.

Test modules import these by name (``from tiny_models import tiny_arch``),
as they import :mod:`shipped_configs`: pytest puts ``tests/``, where the
root ``conftest.py`` lives, on ``sys.path``. A test that depends on a
particular depth or width passes it explicitly, so that the number stays
visible where the test uses it.
"""
from typing import Optional, Tuple

from mmitpn.models.backbones.unit_pyramid_backbone import (ArchSettings,
                                                           arch_settings)


def tiny_arch(embed_dims: int = 64,
              stem_mlp_blocks: Tuple[int, int] = (1, 1),
              depth: int = 2,
              num_heads: int = 4) -> ArchSettings:
    """A custom ``arch`` dict of HiViT and Fast-iTPN, new at each call.

    The arguments are those of the backbones' ``arch_zoo`` entries, in their
    order; the defaults give a 64-wide backbone with one MLP block at stride
    4, one at stride 8 and two main blocks of four attention heads.
    """
    return arch_settings(embed_dims, stem_mlp_blocks, depth, num_heads)


def tiny_pixel_itpn(arch: Optional[ArchSettings] = None,
                    backbone: str = 'HiViT',
                    fpn_dim: int = 32,
                    **backbone_kwargs) -> dict:
    """The config of a tiny iTPN pixel-pretraining model on 64 px images.

    Args:
        arch: The backbone's ``arch``; :func:`tiny_arch` ``()`` if None.
        backbone: The backbone's type, ``'HiViT'`` or ``'FastiTPN'``.
        fpn_dim: Width of the pyramid and of the pixel head's input.
        **backbone_kwargs: Further arguments of the backbone.
    """
    arch = tiny_arch() if arch is None else arch
    return dict(
        type='iTPN',
        backbone=dict(
            type=backbone, arch=arch, img_size=64, **backbone_kwargs),
        neck=dict(
            type='iTPNPyramid', embed_dims=arch['embed_dims'],
            fpn_dim=fpn_dim),
        head=dict(
            type='iTPNPixelHead',
            fpn_dim=fpn_dim,
            decoder_embed_dims=32,
            decoder_depth=1,
            decoder_num_heads=2,
            img_size=64))

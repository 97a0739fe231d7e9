# Copyright (c) mmitpn contributors. All rights reserved.
"""Multiply-accumulate counting for models of this package."""
from typing import Callable, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.utils.flop_counter import FlopCounterMode

# The input sizes of the model zoo's FLOPs: the largest training size of
# the detection recipes and the segmentation crop.
ZOO_SIZES = dict(det=(800, 1344), seg=(512, 512))
TASK_SCOPES = dict(cls='mmpretrain', det='mmdet', seg='mmseg')


def count_macs(fn: Callable[[], object]) -> int:
    """Multiply-accumulates of the matrix products and convolutions run by
    ``fn()`` (attention included; norms and activations are not counted,
    matching the reference tables). Works on the meta device, so large
    models can be measured without memory or time."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def zoo_complexity(cfg: Config, task: str) -> Tuple[int, int]:
    """``(parameters, MACs)`` of a config's model at full size, as the model
    zoo's metafiles give them, computed on the meta device.

    - ``pretrain``: the trained parts (backbone, pyramid, heads; frozen
      teachers excluded), MACs of the backbone on the full image;
    - ``cls``: the whole classifier at its input size;
    - ``det`` / ``seg``: the whole detector / segmentor, MACs of the
      backbone and pyramid at :data:`ZOO_SIZES`.
    """
    model_cfg = cfg.model
    with torch.device('meta'):
        if task == 'pretrain':
            from mmitpn.registry import MODELS
            with DefaultScope.overwrite_default_scope('mmitpn'):
                parts = [
                    MODELS.build(model_cfg[key])
                    for key in ('backbone', 'neck', 'head', 'mfm_head')
                    if model_cfg.get(key)
                ]
            backbone = parts[0]
            images = torch.randn(1, 3, *backbone.img_size)
            return sum(_count(p)
                       for p in parts), count_macs(lambda: backbone(images))
        scope = TASK_SCOPES[task]
        models = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
        with DefaultScope.overwrite_default_scope(scope):
            model = models.build(model_cfg).eval()
        if task == 'cls':
            images = torch.randn(1, 3, *model.backbone.img_size)
            return _count(model), count_macs(
                lambda: model(images, mode='tensor'))
        images = torch.randn(1, 3, *ZOO_SIZES[task])
        return _count(model), count_macs(
            lambda: model.neck(model.backbone(images)))

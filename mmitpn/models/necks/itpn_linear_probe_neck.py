# Copyright (c) mmitpn contributors. All rights reserved.
"""Linear probing on the frozen pretrained pyramid."""
from typing import Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.builder import build_part


@MODELS.register_module()
class iTPNLinearProbeNeck(BaseModule):
    """Pool every level of a frozen iTPN pyramid and concatenate them.

    The pyramid (loaded from the pretraining checkpoint with its own
    ``init_cfg=dict(type='Pretrained', prefix='neck.')``) stays frozen and in
    eval mode; each of its levels (and, with ``with_backbone``, the
    backbone's stride-16 map) is averaged over space, the results are
    concatenated and normalised by a BatchNorm without affine parameters,
    MAE's linear-probing recipe. Use it with HiViT ``out_indices=(0, 1, 2)``,
    ``out_type='featmap'`` and ``frozen_stages=3``.

    Args:
        pyramid (dict): iTPNPyramid config.
        with_backbone (bool): Also pool the backbone's stride-16 map.
            Defaults to True.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 pyramid: dict,
                 with_backbone: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.pyramid = build_part(pyramid)
        self.pyramid.requires_grad_(False)
        self.with_backbone = with_backbone
        channels = sum(self.pyramid.out_channels)
        if with_backbone:
            channels += self.pyramid.embed_dims
        self.out_channels = channels
        self.bn = nn.BatchNorm1d(channels, affine=False, eps=1e-6)

    def train(self, mode: bool = True) -> 'iTPNLinearProbeNeck':
        super().train(mode)
        self.pyramid.eval()
        return self

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor]:
        with torch.no_grad():
            levels = list(self.pyramid(inputs))
        if self.with_backbone:
            levels.append(inputs[-1])
        pooled = torch.cat([level.mean(dim=(2, 3)) for level in levels], 1)
        return (self.bn(pooled), )

# Copyright (c) mmitpn contributors. All rights reserved.
"""The iTPN feature pyramid: one module for pretraining and dense transfer."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.transformer_blocks import MlpBlock
from ..utils.unit_ops import PatchSplit, map_to_units, units_to_map
from ..utils.weight_init import (check_checkpoint_shapes,
                                 check_pretrained_file, init_linear_layers)


@MODELS.register_module()
class iTPNPyramid(BaseModule):
    """Top-down pyramid of channel-wise MLP blocks (16 -> 8 -> 4).

    From the HiViT outputs ``(F4, F8, X16)`` (stride 4, 8, 16)::

        P16 = align_dim_16tofpn(X16)
        P8  = block_16to8(split_16to8(X16) + align_dim_16to8(F8))
        P4  = block_8to4(split_8to4(P8) + align_dim_8to4(F4))

    and each level then passes its own ``fpn_modules`` block (0: P16, 1: P8,
    2: P4). Every operation stays inside a 16x16 unit, so the pyramid runs
    on the visible units only during masked pretraining.

    The same class, with the same parameter names, serves three uses:

    - **pretraining**: inputs in the HiViT ``'raw'`` unit layout (possibly
      masked); outputs ``(B, L, 4, 4, f)``, ``(B, L, 2, 2, f)``,
      ``(B, L, f)``.
    - **detection**: NCHW inputs (HiViT ``out_type='featmap'``,
      ``out_indices=(0, 1, 2)``); ``num_outs=5`` adds stride-32 and 64
      levels by ``extra_pool`` pooling; all outputs have ``fpn_dim``
      channels, ordered by increasing stride as mmdet's FPN.
    - **segmentation**: as detection, with ``concat_inputs=True`` each level
      is concatenated with the backbone feature of its stride (the official
      UperNet input, ``[384, 512, 768, 768]`` channels for base with
      ``num_outs=4`` and ``extra_pool='max'``).

    Args:
        embed_dims (int): Backbone width D (stride-16 channels; the stem
            has D/4 and D/2). Defaults to 512.
        fpn_dim (int): Pyramid channels. Defaults to 256.
        fpn_depth (int): MLP blocks in each top-down step (2 in pixel
            pretraining, 1 in CLIP pretraining). Defaults to 2.
        mlp_ratio (float): MLP ratio of the pyramid blocks. Defaults to 4.
        drop_rate (float): Dropout in the pyramid MLPs. Defaults to 0.
        num_outs (int): 3 levels (stride 4-16), 4 (+32) or 5 (+32, +64).
            Extra levels need NCHW inputs. Defaults to 3.
        extra_pool (str): ``'avg'`` (official detection) or ``'max'``
            (official segmentation) pooling for the extra levels.
        concat_inputs (bool): Concatenate each level with the backbone
            feature of the same stride. Defaults to False.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        with_cp (bool): Gradient checkpointing of the pyramid blocks.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 embed_dims: int = 512,
                 fpn_dim: int = 256,
                 fpn_depth: int = 2,
                 mlp_ratio: float = 4.,
                 drop_rate: float = 0.,
                 num_outs: int = 3,
                 extra_pool: str = 'avg',
                 concat_inputs: bool = False,
                 norm_eps: float = 1e-6,
                 with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if num_outs not in (3, 4, 5):
            raise ValueError(f'num_outs must be 3, 4 or 5, got {num_outs}.')
        if extra_pool not in ('avg', 'max'):
            raise ValueError("extra_pool must be 'avg' or 'max', got "
                             f'{extra_pool!r}.')
        if fpn_depth < 1:
            raise ValueError(f'fpn_depth must be >= 1, got {fpn_depth}.')
        self.embed_dims = embed_dims
        self.fpn_dim = fpn_dim
        self.num_outs = num_outs
        self.extra_pool = extra_pool
        self.concat_inputs = concat_inputs
        self.with_cp = with_cp

        def mlp_blocks(num: int) -> nn.Sequential:
            return nn.Sequential(*[
                MlpBlock(fpn_dim, mlp_ratio, drop_rate, norm_eps=norm_eps)
                for _ in range(num)
            ])

        self.align_dim_16tofpn = nn.Linear(
            embed_dims, fpn_dim) if embed_dims != fpn_dim else nn.Identity()
        self.split_16to8 = PatchSplit(embed_dims, fpn_dim, norm_eps)
        self.align_dim_16to8 = nn.Linear(embed_dims // 2, fpn_dim, bias=False)
        self.block_16to8 = mlp_blocks(fpn_depth)
        self.split_8to4 = PatchSplit(fpn_dim, fpn_dim, norm_eps)
        self.align_dim_8to4 = nn.Linear(embed_dims // 4, fpn_dim, bias=False)
        self.block_8to4 = mlp_blocks(fpn_depth)
        self.fpn_modules = nn.ModuleList([
            MlpBlock(fpn_dim, mlp_ratio, drop_rate, norm_eps=norm_eps)
            for _ in range(3)
        ])
        init_linear_layers(self)

    def init_weights(self) -> None:
        check_pretrained_file(self.init_cfg, type(self).__name__)
        super().init_weights()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        check_checkpoint_shapes(self, state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output level, by increasing stride."""
        if not self.concat_inputs:
            return (self.fpn_dim, ) * self.num_outs
        d = self.embed_dims
        levels = (self.fpn_dim + d // 4, self.fpn_dim + d // 2,
                  self.fpn_dim + d)
        return levels + (levels[-1], ) * (self.num_outs - 3)

    def _run(self, module: nn.Module, x: Tensor) -> Tensor:
        if self.with_cp and self.training and x.requires_grad:
            return torch.utils.checkpoint.checkpoint(
                module, x, use_reentrant=False)
        return module(x)

    def forward_units(self, f4: Tensor, f8: Tensor,
                      x16: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """The pyramid on unit layouts.

        Args:
            f4 (Tensor): ``(B, L, 4, 4, D/4)`` stride-4 stem features.
            f8 (Tensor): ``(B, L, 2, 2, D/2)`` stride-8 stem features.
            x16 (Tensor): ``(B, L, 1, 1, D)`` main-stage tokens.

        Returns:
            tuple[Tensor]: P4 ``(B, L, 4, 4, f)``, P8 ``(B, L, 2, 2, f)``
            and P16 ``(B, L, 1, 1, f)``.
        """
        p16 = self.align_dim_16tofpn(x16)
        p8 = self._run(self.block_16to8,
                       self.split_16to8(x16) + self.align_dim_16to8(f8))
        p4 = self._run(self.block_8to4,
                       self.split_8to4(p8) + self.align_dim_8to4(f4))
        return (self._run(self.fpn_modules[2],
                          p4), self._run(self.fpn_modules[1], p8),
                self._run(self.fpn_modules[0], p16))

    def forward(self, inputs: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """Build the pyramid from HiViT's stride-4, 8 and 16 outputs.

        Args:
            inputs (Sequence[Tensor]): ``(F4, F8, X16)``, either all in the
                unit layout (pretraining) or all NCHW maps (dense tasks).

        Returns:
            tuple[Tensor]: Levels by increasing stride, in the layout of the
            inputs.
        """
        if len(inputs) != 3:
            raise ValueError('iTPNPyramid needs the stride-4, 8 and 16 '
                             'backbone outputs (HiViT out_indices=(0, 1, 2)), '
                             f'got {len(inputs)} inputs.')
        f4, f8, x16 = inputs
        if x16.dim() == 3:
            if self.num_outs != 3 or self.concat_inputs:
                raise ValueError('Extra levels and concat_inputs need NCHW '
                                 "inputs (HiViT out_type='featmap').")
            p4, p8, p16 = self.forward_units(f4, f8, x16[:, :, None, None])
            return p4, p8, p16[:, :, 0, 0]

        grid = x16.shape[2:]
        p4, p8, p16 = self.forward_units(
            map_to_units(f4, 4), map_to_units(f8, 2), map_to_units(x16, 1))
        outs = [units_to_map(p, grid) for p in (p4, p8, p16)]
        if self.concat_inputs:
            outs = [torch.cat([p, f], dim=1) for p, f in zip(outs, inputs)]
        pool = F.avg_pool2d if self.extra_pool == 'avg' else F.max_pool2d
        for _ in range(self.num_outs - 3):
            outs.append(pool(outs[-1], kernel_size=2, stride=2))
        return tuple(outs)

# Copyright (c) mmitpn contributors. All rights reserved.
"""Fused pixel decoder of iTPN pixel pretraining."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.level_decoding import embed_level, level_embeddings, unshuffle
from ..utils.position_encoding import (build_2d_sincos_pos_embed,
                                       resize_pos_embed)
from ..utils.transformer_blocks import AttentionBlock
from ..utils.unit_ops import (UNIT_SIZE, grid_of_size, normalize_patches,
                              patchify, unit_grid)
from ..utils.weight_init import init_linear_layers


@MODELS.register_module()
class iTPNPixelHead(BaseModule):
    """Reconstruct normalised pixels of masked units from all pyramid levels.

    Each level (stride 16, 8, 4; visible units only) is embedded by its own
    ``decoder_embed[i]`` (LayerNorm + Linear to ``d``, ``d/4`` or ``d/16``
    per sub-token, flattened to ``d`` per unit), padded with the shared
    ``mask_token`` and put back in unit order; the three streams and a fixed
    sin-cos ``decoder_pos_embed`` are summed and decoded by transformer
    blocks, then ``decoder_pred`` predicts the 16x16x3 pixels of each unit.
    The loss is the MSE to per-patch normalised pixels, averaged over masked
    units only.

    Args:
        fpn_dim (int): Channels of the input levels. Defaults to 256.
        levels (Sequence[int]): Strides of the levels that feed the decoder.
            Defaults to (4, 8, 16); ``(16, )`` with ``fpn_dim`` = backbone
            width and no pyramid is MAE on HiViT.
        decoder_embed_dims (int): Decoder width ``d``. Defaults to 512.
        decoder_depth (int): Decoder blocks (8 in the official code, 6 in
            mmpretrain). Defaults to 8.
        decoder_num_heads (int): Decoder heads. Defaults to 16.
        mlp_ratio (float): Decoder MLP ratio. Defaults to 4.
        img_size (int | tuple[int, int]): Input size the position embedding
            is made for (resized for other sizes). Defaults to 224.
        in_channels (int): Image channels. Defaults to 3.
        norm_pix (bool): Normalise each target patch. Defaults to True.
        norm_eps (float): LayerNorm epsilon of the decoder. Defaults to 1e-6.
        embed_norm_eps (float): LayerNorm epsilon of ``decoder_embed``
            (mmpretrain uses 1e-5). Defaults to 1e-6.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 fpn_dim: int = 256,
                 levels: Sequence[int] = (4, 8, 16),
                 decoder_embed_dims: int = 512,
                 decoder_depth: int = 8,
                 decoder_num_heads: int = 16,
                 mlp_ratio: float = 4.,
                 img_size: Union[int, Sequence[int]] = 224,
                 in_channels: int = 3,
                 norm_pix: bool = True,
                 norm_eps: float = 1e-6,
                 embed_norm_eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if decoder_embed_dims % 16 != 0:
            raise ValueError('decoder_embed_dims must be divisible by 16 (the '
                             'stride-4 level has 16 sub-tokens per unit), '
                             f'got {decoder_embed_dims}.')
        self.grid_size = grid_of_size(img_size)
        self.in_channels = in_channels
        self.norm_pix = norm_pix
        if not levels or not set(levels) <= {4, 8, 16}:
            raise ValueError(f'levels must be strides out of (4, 8, 16), got '
                             f'{levels!r}.')
        self.levels = tuple(sorted(levels, reverse=True))
        self.decoder_embed = level_embeddings(fpn_dim, decoder_embed_dims,
                                              self.levels, embed_norm_eps)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dims))
        self.decoder_pos_embed = nn.Parameter(
            build_2d_sincos_pos_embed(self.grid_size, decoder_embed_dims),
            requires_grad=False)
        self.decoder_blocks = nn.ModuleList([
            AttentionBlock(
                decoder_embed_dims,
                decoder_num_heads,
                mlp_ratio,
                norm_eps=norm_eps) for _ in range(decoder_depth)
        ])
        self.decoder_norm = nn.LayerNorm(decoder_embed_dims, eps=norm_eps)
        self.decoder_pred = nn.Linear(decoder_embed_dims,
                                      UNIT_SIZE**2 * in_channels)
        init_linear_layers(self)
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self, levels: Sequence[Tensor], ids_restore: Tensor,
                grid_size: Tuple[int, int]) -> Tensor:
        """Predict the pixels of every unit.

        Args:
            levels (Sequence[Tensor]): Stride-4, 8 and 16 features on the
                visible units: the :class:`iTPNPyramid` outputs, or the
                HiViT ``'raw'`` outputs for a model without pyramid.
            ids_restore (Tensor): ``(B, N)`` unshuffle indices.
            grid_size (tuple[int, int]): Unit grid of the input.

        Returns:
            Tensor: ``(B, N, 16*16*C)`` predicted (normalised) pixels.
        """
        by_stride = dict(zip((4, 8, 16), levels))
        streams = [
            unshuffle(
                embed_level(embed, by_stride[stride]), self.mask_token,
                ids_restore)
            for embed, stride in zip(self.decoder_embed, self.levels)
        ]
        x = streams[0] + resize_pos_embed(self.decoder_pos_embed,
                                          self.grid_size, grid_size)
        for stream in streams[1:]:
            x = x + stream
        for block in self.decoder_blocks:
            x = block(x, grid_size)
        return self.decoder_pred(self.decoder_norm(x))

    def construct_target(self, images: Tensor) -> Tensor:
        """Per-unit pixel targets ``(B, N, 16*16*C)`` of the input images."""
        target = patchify(images)
        return normalize_patches(target) if self.norm_pix else target

    def loss(self, levels: Sequence[Tensor], images: Tensor, mask: Tensor,
             ids_restore: Tensor) -> Tensor:
        """Masked-unit MSE between predicted and target pixels.

        Args:
            levels (Sequence[Tensor]): Pyramid outputs on visible units.
            images (Tensor): The (normalised) input images.
            mask (Tensor): ``(B, N)``, 1 for masked units.
            ids_restore (Tensor): ``(B, N)`` unshuffle indices.
        """
        pred = self(levels, ids_restore, unit_grid(*images.shape[2:]))
        target = self.construct_target(images)
        per_unit = (pred.float() - target).square().mean(dim=-1)
        return (per_unit * mask).sum() / mask.sum()

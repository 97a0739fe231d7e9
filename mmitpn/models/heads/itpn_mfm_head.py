# Copyright (c) mmitpn contributors. All rights reserved.
"""Masked feature modelling: every pyramid level predicts teacher features."""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmitpn.registry import MODELS
from ..utils.level_decoding import embed_level, level_embeddings, unshuffle
from ..utils.position_encoding import (build_2d_sincos_pos_embed,
                                       resize_pos_embed)
from ..utils.transformer_blocks import AttentionBlock
from ..utils.unit_ops import STRIDES, SUB_TOKENS, grid_of_size
from ..utils.weight_init import init_linear_layers


@MODELS.register_module()
class iTPNMFMHead(BaseModule):
    """Masked feature modelling (MFM) head: multi-stage supervision of the
    pyramid by a teacher's features at the same strides.

    Each pyramid level (P4, P8, P16, visible units only) is its own stream:
    embedded per sub-token and flattened to ``embed_dims`` per unit, padded
    with the level's own mask token, plus a fixed sin-cos position
    embedding, then decoded by transformer blocks shared by the three
    streams. A per-level linear layer predicts, for every unit, the
    teacher's features of that stride (the ``s x s`` sub-tokens of the
    stride-4/8 stem outputs, or the stride-16 token). Targets pass a
    parameter-free LayerNorm per sub-token; the loss of a level is the MSE
    over masked units only, and levels are weighted by ``level_weights``.

    The released iTPN code has no MFM; this is mmitpn's reading of the
    paper (per-level targets from a moving-averaged backbone), see
    ``docs`` and the README.

    Args:
        fpn_dim (int): Pyramid channels. Defaults to 256.
        teacher_dims (Sequence[int]): Teacher channels at stride 4, 8, 16
            (HiViT: D/4, D/2, D). Defaults to (128, 256, 512).
        embed_dims (int): Decoder width. Defaults to 256.
        depth (int): Decoder blocks shared by the levels. Defaults to 2.
        num_heads (int): Decoder heads. Defaults to 8.
        mlp_ratio (float): Decoder MLP ratio. Defaults to 4.
        level_weights (Sequence[float]): Loss weights of the stride-4, 8
            and 16 levels. Defaults to (1., 1., 1.).
        img_size (int | tuple[int, int]): Input size the position embedding
            is made for. Defaults to 224.
        norm_eps (float): LayerNorm epsilon. Defaults to 1e-6.
        init_cfg (dict, optional): mmengine initialisation config.
    """

    def __init__(self,
                 fpn_dim: int = 256,
                 teacher_dims: Sequence[int] = (128, 256, 512),
                 embed_dims: int = 256,
                 depth: int = 2,
                 num_heads: int = 8,
                 mlp_ratio: float = 4.,
                 level_weights: Sequence[float] = (1., 1., 1.),
                 img_size: Union[int, Sequence[int]] = 224,
                 norm_eps: float = 1e-6,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(teacher_dims) != 3 or len(level_weights) != 3:
            raise ValueError('teacher_dims and level_weights need one value '
                             'per stride (4, 8, 16).')
        if embed_dims % 16 != 0:
            raise ValueError('embed_dims must be divisible by 16, got '
                             f'{embed_dims}.')
        self.teacher_dims = tuple(teacher_dims)
        self.level_weights = tuple(level_weights)
        self.grid_size = grid_of_size(img_size)
        self.embed = level_embeddings(fpn_dim, embed_dims, STRIDES, norm_eps)
        self.mask_tokens = nn.Parameter(torch.zeros(3, 1, 1, embed_dims))
        self.pos_embed = nn.Parameter(
            build_2d_sincos_pos_embed(self.grid_size, embed_dims),
            requires_grad=False)
        self.blocks = nn.ModuleList([
            AttentionBlock(
                embed_dims, num_heads, mlp_ratio, norm_eps=norm_eps)
            for _ in range(depth)
        ])
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)
        self.pred = nn.ModuleList([
            nn.Linear(embed_dims, SUB_TOKENS[stride] * dims)
            for stride, dims in zip(STRIDES, self.teacher_dims)
        ])
        init_linear_layers(self)
        nn.init.normal_(self.mask_tokens, std=.02)

    def forward(self, levels: Sequence[Tensor], ids_restore: Tensor,
                grid_size: Tuple[int, int]) -> Tuple[Tensor, ...]:
        """Predict teacher features of every unit from each level.

        Returns:
            tuple[Tensor]: ``(B, N, 16, D4)``, ``(B, N, 4, D8)`` and
            ``(B, N, 1, D16)`` for stride 4, 8 and 16.
        """
        pos_embed = resize_pos_embed(self.pos_embed, self.grid_size, grid_size)
        preds = []
        for i, level in enumerate(levels):
            x = unshuffle(
                embed_level(self.embed[i], level), self.mask_tokens[i],
                ids_restore) + pos_embed
            for block in self.blocks:
                x = block(x, grid_size)
            pred = self.pred[i](self.norm(x))
            preds.append(
                pred.reshape(*pred.shape[:2], SUB_TOKENS[STRIDES[i]],
                             self.teacher_dims[i]))
        return tuple(preds)

    @staticmethod
    def construct_targets(teacher_outs: Sequence[Tensor]) -> Tuple[Tensor]:
        """Teacher outputs in the HiViT unit layout -> ``(B, N, s*s, C)``
        targets after a parameter-free LayerNorm."""
        targets = []
        for out in teacher_outs:
            out = out.reshape(out.shape[0], out.shape[1], -1, out.shape[-1])
            targets.append(F.layer_norm(out.float(), out.shape[-1:]))
        return tuple(targets)

    def loss(self, levels: Sequence[Tensor], teacher_outs: Sequence[Tensor],
             mask: Tensor, ids_restore: Tensor, grid_size: Tuple[int,
                                                                 int]) -> dict:
        """Per-level weighted MSE on masked units.

        Args:
            levels (Sequence[Tensor]): Student pyramid P4, P8, P16 (visible).
            teacher_outs (Sequence[Tensor]): Teacher stride-4, 8, 16
                outputs on all units.
            mask (Tensor): ``(B, N)``, 1 for masked units.
            ids_restore (Tensor): ``(B, N)`` unshuffle indices.
            grid_size (tuple[int, int]): Unit grid of the input.

        Returns:
            dict: ``loss_mfm_s4``, ``loss_mfm_s8``, ``loss_mfm_s16``.
        """
        preds = self(levels, ids_restore, grid_size)
        targets = self.construct_targets(teacher_outs)
        losses = {}
        for stride, pred, target, weight in zip(STRIDES, preds, targets,
                                                self.level_weights):
            per_unit = (pred.float() - target).square().mean(dim=(2, 3))
            losses[f'loss_mfm_s{stride}'] = weight * (per_unit *
                                                      mask).sum() / mask.sum()
        return losses

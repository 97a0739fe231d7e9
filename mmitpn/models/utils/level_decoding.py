# Copyright (c) mmitpn contributors. All rights reserved.
"""Turning pyramid levels into one token per unit, for the pretraining
heads (pixel, MFM and CLIP decoders)."""
from typing import Sequence

import torch
from torch import Tensor, nn

from .unit_ops import SUB_TOKENS


def level_embeddings(fpn_dim: int, out_dims: int, strides: Sequence[int],
                     norm_eps: float) -> nn.ModuleList:
    """LayerNorm + Linear per pyramid level, to ``out_dims / s**2`` channels
    per sub-token for a level with ``s**2`` sub-tokens per unit.

    Args:
        fpn_dim (int): Channels of the levels.
        out_dims (int): Channels of one unit after flattening.
        strides (Sequence[int]): Stride (4, 8 or 16) of each level.
        norm_eps (float): LayerNorm epsilon.
    """
    return nn.ModuleList([
        nn.Sequential(
            nn.LayerNorm(fpn_dim, eps=norm_eps),
            nn.Linear(fpn_dim, out_dims // SUB_TOKENS[stride]))
        for stride in strides
    ])


def embed_level(embed: nn.Module, level: Tensor) -> Tensor:
    """Embed a pyramid level and flatten each unit: ``(B, L, d)``.

    A level ``(B, L, s, s, f)`` is embedded per sub-token to ``d / s**2``
    channels and the ``s x s`` sub-tokens of a unit are concatenated
    (row-major), so every level gives one ``d``-dim vector per unit.
    """
    out = embed(level)
    return out.reshape(out.shape[0], out.shape[1], -1)


def unshuffle(tokens: Tensor, mask_token: Tensor,
              ids_restore: Tensor) -> Tensor:
    """Append mask tokens to the visible ``tokens`` and restore unit order.

    Args:
        tokens (Tensor): ``(B, L, d)`` visible units, in ``ids_keep`` order.
        mask_token (Tensor): ``(1, 1, d)``.
        ids_restore (Tensor): ``(B, N)`` position of each unit in the
            shuffled order (visible first).
    """
    batch, visible, dims = tokens.shape
    num_units = ids_restore.shape[1]
    tokens = torch.cat(
        [tokens, mask_token.expand(batch, num_units - visible, dims)], dim=1)
    return tokens.gather(1, ids_restore.unsqueeze(-1).expand(-1, -1, dims))

# Copyright (c) mmitpn contributors. All rights reserved.
"""Building blocks of Fast-iTPN (the iTPN authors' successor backbone).

Parameter names follow the official Fast-iTPN code (``norm2``,
``mlp.fc1``, ``mlp.ffn_ln``, ``reduction``, ``attn.q_proj``, ``q_bias``,
``mlp.w1`` ... ``w3``, ``gamma_1``), so official checkpoints convert with a
prefix change only.
"""
from typing import Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import LayerNorm2d
from torch import Tensor, nn

from .transformer_blocks import Attention, AttentionBlock, MlpBlock, dropout


class ConvPatchEmbed(nn.Module):
    """4x4 stride-4 convolution to an NCHW map (no norm), as Fast-iTPN's
    ``patch_embed.proj``."""

    def __init__(self, in_channels: int, embed_dims: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel_size=4, stride=4)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class ConvMlp(nn.Module):
    """1x1 convolution, GELU, sub-LN over the hidden channels, 1x1
    convolution."""

    def __init__(self,
                 channels: int,
                 hidden_channels: int,
                 drop: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, hidden_channels, 1)
        self.act = nn.GELU()
        self.ffn_ln = LayerNorm2d(hidden_channels, eps=norm_eps)
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1)
        self.drop = dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.ffn_ln(self.drop(self.act(self.fc1(x))))
        return self.drop(self.fc2(x))


class ConvMlpBlock(MlpBlock):
    """Stem block on NCHW maps: ``x + drop_path(mlp(norm2(x)))`` with
    mmpretrain's ``LayerNorm2d`` and :class:`ConvMlp` (no layer scale)."""

    def __init__(self,
                 channels: int,
                 mlp_ratio: float,
                 drop: float = 0.,
                 drop_path: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__(channels, mlp_ratio, drop, drop_path, 0., norm_eps)

    @staticmethod
    def build_norm(dim: int, norm_eps: float) -> nn.Module:
        return LayerNorm2d(dim, eps=norm_eps)

    @staticmethod
    def build_mlp(dim: int, hidden_dim: int, drop: float,
                  norm_eps: float) -> nn.Module:
        return ConvMlp(dim, hidden_dim, drop, norm_eps)


class ConvPatchMerge(nn.Module):
    """LayerNorm over channels, then a 2x2 stride-2 convolution that doubles
    them."""

    def __init__(self, channels: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = LayerNorm2d(channels, eps=norm_eps)
        self.reduction = nn.Conv2d(channels, 2 * channels, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.reduction(self.norm(x))


class SeparateQKVAttention(Attention):
    """:class:`Attention` with separate q/k/v projections (no weight biases)
    and learned ``q_bias`` / ``v_bias`` (k has none), as Fast-iTPN.

    With ``upcast=True`` (what :class:`SwiGLUAttentionBlock` passes by
    default) the scaled q·k product and the softmax run in float32 under
    autocast, as in the official code, through the fused kernel."""

    def _build_projections(self, dim: int, qkv_bias: bool) -> None:
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None

    def project_qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        batch, length, _ = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.reshape(batch, length, self.num_heads,
                             self.head_dims).transpose(1, 2)

        return (heads(F.linear(x, self.q_proj.weight, self.q_bias)),
                heads(F.linear(x, self.k_proj.weight)),
                heads(F.linear(x, self.v_proj.weight, self.v_bias)))


class SwiGLU(nn.Module):
    """``w3(ffn_ln(silu(w1 x) * w2 x))``.

    mmpretrain's ``SwiGLUFFN`` (``norm_cfg=dict(type='LN')``,
    ``add_identity=False``) computes the same, but with ``w1`` and ``w2``
    fused into one ``w12`` layer; this one keeps the official parameter
    names, so Fast-iTPN checkpoints load without re-packing.
    """

    def __init__(self,
                 dim: int,
                 hidden_dim: int,
                 drop: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden_dim)
        self.w2 = nn.Linear(dim, hidden_dim)
        self.act = nn.SiLU()
        self.ffn_ln = nn.LayerNorm(hidden_dim, eps=norm_eps)
        self.w3 = nn.Linear(hidden_dim, dim)
        self.drop = dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.ffn_ln(self.act(self.w1(x)) * self.w2(x))
        return self.drop(self.w3(hidden))


class SwiGLUAttentionBlock(AttentionBlock):
    """Fast-iTPN's main block: :class:`AttentionBlock` with
    :class:`SeparateQKVAttention` and a :class:`SwiGLU` MLP (windows as any
    :class:`AttentionBlock`). :class:`FastiTPN` builds it with the official
    settings: MLP ratio 3, layer scale 0.1, float32 attention."""

    @staticmethod
    def build_attention(dim: int, num_heads: int, **kwargs) -> nn.Module:
        return SeparateQKVAttention(dim, num_heads, **kwargs)

    @staticmethod
    def build_mlp(dim: int, hidden_dim: int, drop: float,
                  norm_eps: float) -> nn.Module:
        return SwiGLU(dim, hidden_dim, drop, norm_eps)

# Copyright (c) mmitpn contributors. All rights reserved.
"""Building blocks of Fast-iTPN (the iTPN authors' successor backbone).

Parameter names follow the official Fast-iTPN code (``norm2``,
``mlp.fc1``, ``mlp.ffn_ln``, ``reduction``, ``attn.q_proj``, ``q_bias``,
``mlp.w1`` ... ``w3``, ``gamma_1``), so official checkpoints convert with a
prefix change only.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from .transformer_blocks import dropout


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW map."""

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


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
        self.ffn_ln = ChannelLayerNorm(hidden_channels, eps=norm_eps)
        self.fc2 = nn.Conv2d(hidden_channels, channels, 1)
        self.drop = dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        x = self.ffn_ln(self.drop(self.act(self.fc1(x))))
        return self.drop(self.fc2(x))


class ConvMlpBlock(nn.Module):
    """Stem block on NCHW maps: ``x + drop_path(mlp(norm2(x)))``."""

    def __init__(self,
                 channels: int,
                 mlp_ratio: float,
                 drop: float = 0.,
                 drop_path: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm2 = ChannelLayerNorm(channels, eps=norm_eps)
        self.mlp = ConvMlp(channels, int(channels * mlp_ratio), drop, norm_eps)
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ConvPatchMerge(nn.Module):
    """LayerNorm over channels, then a 2x2 stride-2 convolution that doubles
    them."""

    def __init__(self, channels: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = ChannelLayerNorm(channels, eps=norm_eps)
        self.reduction = nn.Conv2d(channels, 2 * channels, 2, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        return self.reduction(self.norm(x))


class SeparateQKVAttention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections (no weight
    biases) and learned ``q_bias`` / ``v_bias`` (k has none). The scaled
    q·k product and the softmax run in fp32, the softmax is cast back to
    the input dtype."""

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.scale = (dim // num_heads)**-0.5
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.attn_drop = dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = dropout(proj_drop)

    def forward(self, x: Tensor) -> Tensor:
        batch, num_tokens, dim = x.shape

        def heads(t: Tensor) -> Tensor:
            return t.reshape(batch, num_tokens, self.num_heads,
                             -1).transpose(1, 2)

        q = heads(F.linear(x, self.q_proj.weight, self.q_bias))
        k = heads(F.linear(x, self.k_proj.weight))
        v = heads(F.linear(x, self.v_proj.weight, self.v_bias))
        attn = (q * self.scale).float() @ k.float().transpose(-2, -1)
        attn = self.attn_drop(attn.softmax(dim=-1).type_as(x))
        x = (attn @ v).transpose(1, 2).reshape(batch, num_tokens, dim)
        return self.proj_drop(self.proj(x))


class SwiGLU(nn.Module):
    """``w3(ffn_ln(silu(w1 x) * w2 x))``."""

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


class SwiGLUAttentionBlock(nn.Module):
    """Pre-norm attention and SwiGLU, each with layer scale and drop path."""

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 3.,
                 qkv_bias: bool = True,
                 drop: float = 0.,
                 attn_drop: float = 0.,
                 drop_path: float = 0.,
                 layer_scale_init_value: float = 0.1,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = SeparateQKVAttention(dim, num_heads, qkv_bias, attn_drop,
                                         drop)
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = SwiGLU(dim, int(dim * mlp_ratio), drop, norm_eps)
        self.gamma_1: Optional[nn.Parameter] = None
        self.gamma_2: Optional[nn.Parameter] = None
        if layer_scale_init_value > 0:
            self.gamma_1 = nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value)))
            self.gamma_2 = nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value)))

    def forward(self, x: Tensor) -> Tensor:
        y = self.attn(self.norm1(x))
        if self.gamma_1 is not None:
            y = self.gamma_1 * y
        x = x + self.drop_path(y)
        y = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            y = self.gamma_2 * y
        return x + self.drop_path(y)

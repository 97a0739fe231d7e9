# Copyright (c) mmitpn contributors. All rights reserved.
"""Transformer building blocks of HiViT and the iTPN pyramid.

Parameter names follow the official iTPN code (``norm1``, ``attn.qkv``,
``norm2``, ``mlp.fc1``, ``gamma_1``, ...), so official checkpoints convert
with a prefix change only. That is why layer scale is a plain ``gamma_1`` /
``gamma_2`` parameter and not mmpretrain's ``LayerScale`` module (the same
product, stored as ``gamma_1.weight``).
"""
from typing import Dict, Optional, Tuple, Union

import torch
import torch.nn.functional as F
from mmcv.cnn.bricks import DropPath
from torch import Tensor, nn

from .position_encoding import (decomposed_rel_pos, relative_position_index,
                                resize_rel_pos_bias_table)
from .token_gathering import gathered_block_forward
from .windows import Windows, as_windows

REL_POS_TYPES = (None, 'bias_table', 'decomposed')
# A window size (ViTDet windows of the grid), a grouping, or None (global).
WindowsArg = Union[int, Windows, None]


def dropout(p: float) -> nn.Module:
    """Dropout, or nothing at all for ``p == 0`` (a zero-rate dropout still
    copies its input in training)."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class Mlp(nn.Module):
    """Two linear layers with a GELU in between."""

    def __init__(self,
                 in_features: int,
                 hidden_features: int,
                 drop: float = 0.) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features)
        self.drop = dropout(drop)

    def forward(self, x: Tensor) -> Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def attend(q: Tensor,
           k: Tensor,
           v: Tensor,
           bias: Optional[Tensor] = None,
           dropout_p: float = 0.,
           upcast: bool = False,
           fused: bool = True) -> Tensor:
    """Scaled dot-product attention of ``(B, heads, L, d)`` tensors.

    Runs :func:`torch.nn.functional.scaled_dot_product_attention` (flash or
    memory-efficient kernels: no ``(L, L)`` matrix is kept for backward)
    except where the explicit product is the better choice: ``fused=False``
    (the reference path, e.g. for export targets without a fused kernel),
    and low-precision inputs on the CPU, where PyTorch's fused kernel is
    3-4x slower than plain matrix products (bfloat16 fwd+bwd, 8x8x49x64:
    11.3 vs 3.1 ms; in float32 and on GPUs the fused kernel is faster).

    Args:
        q, k, v (Tensor): Queries, keys and values.
        bias (Tensor, optional): Additive attention bias, broadcastable to
            ``(B, heads, L, L)``.
        dropout_p (float): Dropout on the attention weights (pass 0 in
            eval mode).
        upcast (bool): Compute the product and the softmax in float32 even
            under autocast (the official Fast-iTPN semantics); the result
            is cast back to the dtype of ``v``.
        fused (bool): Allow the fused kernel.
    """
    dtype = v.dtype
    device_type = q.device.type
    autocast = torch.amp.is_autocast_available(device_type) and \
        torch.is_autocast_enabled(device_type)
    if upcast and (dtype != torch.float32 or autocast):
        with torch.autocast(device_type, enabled=False):
            out = attend(q.float(), k.float(), v.float(),
                         None if bias is None else bias.float(), dropout_p,
                         False, fused)
        return out.to(dtype)
    if fused and not (q.device.type == 'cpu' and q.dtype != torch.float32):
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=bias, dropout_p=dropout_p)
    attn = (q * q.shape[-1]**-0.5) @ k.transpose(-2, -1)
    if bias is not None:
        attn = attn + bias
    attn = F.dropout(attn.softmax(dim=-1), dropout_p, dropout_p > 0)
    return attn @ v


class Attention(nn.Module):
    """Global multi-head self-attention with optional relative positions.

    Args:
        dim (int): Token channels.
        num_heads (int): Attention heads.
        qkv_bias (bool): Bias in the qkv projection.
        attn_drop (float): Dropout on attention weights.
        proj_drop (float): Dropout after the output projection.
        rel_pos_type (str, optional): ``None``, ``'bias_table'`` (a learned
            bias per relative offset and head, as in HiViT/Swin) or
            ``'decomposed'`` (query-dependent per-axis embeddings, as in
            ViTDet).
        grid_size (tuple[int, int]): Token grid the relative position
            parameters are made for; other grids resize them on the fly.
        upcast (bool): q·k and softmax in float32 under autocast (see
            :func:`attend`). Defaults to False.
        fused (bool): Use the fused attention kernel where it is the faster
            one (see :func:`attend`). Defaults to True.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 qkv_bias: bool = True,
                 attn_drop: float = 0.,
                 proj_drop: float = 0.,
                 rel_pos_type: Optional[str] = None,
                 grid_size: Tuple[int, int] = (14, 14),
                 upcast: bool = False,
                 fused: bool = True) -> None:
        super().__init__()
        if rel_pos_type not in REL_POS_TYPES:
            raise ValueError(f'rel_pos_type must be one of {REL_POS_TYPES}, '
                             f'got {rel_pos_type!r}.')
        if dim % num_heads != 0:
            raise ValueError(f'dim {dim} is not divisible by num_heads '
                             f'{num_heads}.')
        self.num_heads = num_heads
        self.head_dims = dim // num_heads
        self.attn_drop = attn_drop
        self.rel_pos_type = rel_pos_type
        self.grid_size = tuple(grid_size)
        self.upcast = upcast
        self.fused = fused
        h, w = self.grid_size
        if rel_pos_type == 'bias_table':
            self.relative_position_bias_table = nn.Parameter(
                torch.zeros((2 * h - 1) * (2 * w - 1), num_heads))
        elif rel_pos_type == 'decomposed':
            self.rel_pos_h = nn.Parameter(
                torch.zeros(2 * h - 1, self.head_dims))
            self.rel_pos_w = nn.Parameter(
                torch.zeros(2 * w - 1, self.head_dims))
        self._build_projections(dim, qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = dropout(proj_drop)

    def _build_projections(self, dim: int, qkv_bias: bool) -> None:
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)

    def project_qkv(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values ``(B, heads, L, d)`` of ``(B, L, C)``."""
        batch, length, _ = x.shape
        qkv = self.qkv(x).reshape(batch, length, 3, self.num_heads,
                                  self.head_dims).permute(2, 0, 3, 1, 4)
        return qkv.unbind(0)

    def forward(self,
                x: Tensor,
                grid_size: Tuple[int, int],
                rel_pos: Optional[Tensor] = None) -> Tensor:
        """Attend over all tokens of ``x``.

        Args:
            x (Tensor): ``(B, L, C)`` tokens.
            grid_size (tuple[int, int]): Unit grid of the full input.
            rel_pos (Tensor, optional): Where the tokens present are, as
                :func:`relative_positions` gives it for this module's
                ``rel_pos_type``: ``(B or 1, L, L)`` indices into the bias
                table (needed for ``'bias_table'``), or ``(B, L)`` grid
                indices for ``'decomposed'`` (None: the whole grid).
        """
        q, k, v = self.project_qkv(x)
        return self.project_out(
            self.attend(q, k, v, self.position_bias(q, grid_size, rel_pos)))

    def attend(self,
               q: Tensor,
               k: Tensor,
               v: Tensor,
               bias: Optional[Tensor] = None) -> Tensor:
        """:func:`attend` with this module's dropout and kernel settings."""
        return attend(q, k, v, bias, self.attn_drop if self.training else 0.,
                      self.upcast, self.fused)

    def project_out(self, x: Tensor) -> Tensor:
        """Heads ``(B, heads, L, d)`` merged and projected: ``(B, L, C)``."""
        batch, _, length, _ = x.shape
        x = x.transpose(1, 2).reshape(batch, length, -1)
        return self.proj_drop(self.proj(x))

    def position_bias(self, q: Tensor, grid_size: Tuple[int, int],
                      rel_pos: Optional[Tensor]) -> Optional[Tensor]:
        """The relative position bias of the queries ``q`` on
        ``grid_size``, ``(B or 1, heads, L, L)``, or None; ``rel_pos`` as
        in :meth:`forward`."""
        if self.rel_pos_type == 'bias_table':
            table = resize_rel_pos_bias_table(
                self.relative_position_bias_table, self.grid_size, grid_size)
            # Gather from the table in the compute dtype: the (L, L) bias is
            # materialised once, in bf16/fp16 under autocast, not in fp32.
            return table.to(q.dtype)[rel_pos].permute(0, 3, 1, 2)
        if self.rel_pos_type == 'decomposed':
            return self._decomposed_bias(q, grid_size, rel_pos)
        return None

    def _decomposed_bias(self,
                         q: Tensor,
                         grid_size: Tuple[int, int],
                         ids: Optional[Tensor] = None) -> Tensor:
        h, w = grid_size
        batch, heads, length, channels = q.shape
        rel_h = decomposed_rel_pos(self.rel_pos_h, h, h)
        rel_w = decomposed_rel_pos(self.rel_pos_w, w, w)
        if ids is not None:
            return self._decomposed_bias_at(q, rel_h, rel_w, ids // w, ids % w)
        if length != h * w:
            raise ValueError('Decomposed relative positions need the full '
                             f'{h}x{w} grid or the grid indices of the '
                             f'tokens, got {length} tokens and no indices.')
        grid_q = q.reshape(batch, heads, h, w, channels)
        bias_h = torch.einsum('bnhwc,hkc->bnhwk', grid_q, rel_h.to(q.dtype))
        bias_w = torch.einsum('bnhwc,wkc->bnhwk', grid_q, rel_w.to(q.dtype))
        bias = bias_h[..., :, None] + bias_w[..., None, :]
        return bias.reshape(batch, heads, length, length)

    @staticmethod
    def _decomposed_bias_at(q: Tensor, rel_h: Tensor, rel_w: Tensor,
                            rows: Tensor, cols: Tensor) -> Tensor:
        """The decomposed bias between tokens at ``(rows, cols)``
        ``(B, L)`` of the grid (e.g. the tokens a migration keeps): every
        query's products with its row of the per-axis tables, ``(B, heads,
        L, H)`` and ``(B, heads, L, W)``, taken at each key's row and
        column."""
        batch, heads, length, _ = q.shape
        dtype = q.dtype
        bias_h = torch.einsum('bnlc,blkc->bnlk', q, rel_h.to(dtype)[rows])
        bias_w = torch.einsum('bnlc,blkc->bnlk', q, rel_w.to(dtype)[cols])
        shape = (batch, heads, length, length)
        return bias_h.gather(3, rows[:, None, None, :].expand(shape)) + \
            bias_w.gather(3, cols[:, None, None, :].expand(shape))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # Checkpoints made at another resolution carry tables for another
        # grid; resize them to this module's grid (official det/seg do too).
        key = prefix + 'relative_position_bias_table'
        if self.rel_pos_type == 'bias_table' and key in state_dict:
            table = state_dict[key]
            own = self.relative_position_bias_table
            if table.shape != own.shape and table.shape[1:] == own.shape[1:]:
                side = round(table.shape[0]**0.5)
                if side * side != table.shape[0] or side % 2 == 0:
                    raise ValueError(
                        f'{key}: cannot infer the square grid of a table '
                        f'with {table.shape[0]} rows.')
                src = ((side + 1) // 2, ) * 2
                state_dict[key] = resize_rel_pos_bias_table(
                    table, src, self.grid_size)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class MlpBlock(nn.Module):
    """Pre-norm residual MLP block without token mixing (HiViT stem, C-MLP).

    ``x + DropPath(gamma_2 * MLP(LN(x)))``; it works on any leading shape,
    so it runs on the sub-tokens of each 16x16 unit independently.
    Subclasses change the norm and the MLP through :meth:`build_norm` and
    :meth:`build_mlp` (Fast-iTPN: the same on NCHW maps).
    """

    def __init__(self,
                 dim: int,
                 mlp_ratio: float,
                 drop: float = 0.,
                 drop_path: float = 0.,
                 layer_scale_init_value: float = 0.,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm2 = self.build_norm(dim, norm_eps)
        self.mlp = self.build_mlp(dim, int(dim * mlp_ratio), drop, norm_eps)
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()
        self.gamma_2 = nn.Parameter(
            torch.full((dim, ), float(layer_scale_init_value))
        ) if layer_scale_init_value > 0 else None

    @staticmethod
    def build_norm(dim: int, norm_eps: float) -> nn.Module:
        return nn.LayerNorm(dim, eps=norm_eps)

    @staticmethod
    def build_mlp(dim: int, hidden_dim: int, drop: float,
                  norm_eps: float) -> nn.Module:
        return Mlp(dim, hidden_dim, drop)

    def forward(self, x: Tensor) -> Tensor:
        y = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            y = self.gamma_2 * y
        return x + self.drop_path(y)


class AttentionBlock(nn.Module):
    """Pre-norm transformer block with self-attention.

    ``x + DropPath(gamma_1 * attn(norm1(x)))``, then
    ``x + DropPath(gamma_2 * mlp(norm2(x)))``; attention is global, or
    within ViTDet windows (see :meth:`forward`). Subclasses change the
    attention and the MLP through :meth:`build_attention` and
    :meth:`build_mlp` (Fast-iTPN: separate q/k/v and SwiGLU).

    Args:
        dim (int): Token channels.
        num_heads (int): Attention heads.
        mlp_ratio (float): Hidden/feature ratio of the MLP.
        qkv_bias (bool): Bias in the qkv projection.
        drop (float): Dropout after the MLP and the projection.
        attn_drop (float): Dropout on attention weights.
        drop_path (float): Stochastic depth rate.
        layer_scale_init_value (float): Initial ``gamma_1``/``gamma_2``;
            0 disables layer scale.
        rel_pos_type (str, optional): See :class:`Attention`.
        grid_size (tuple[int, int]): See :class:`Attention`.
        norm_eps (float): LayerNorm epsilon.
        upcast_attention (bool): See :class:`Attention` ``upcast``.
        fused_attention (bool): See :class:`Attention` ``fused``.
    """

    def __init__(self,
                 dim: int,
                 num_heads: int,
                 mlp_ratio: float = 4.,
                 qkv_bias: bool = True,
                 drop: float = 0.,
                 attn_drop: float = 0.,
                 drop_path: float = 0.,
                 layer_scale_init_value: float = 0.,
                 rel_pos_type: Optional[str] = None,
                 grid_size: Tuple[int, int] = (14, 14),
                 norm_eps: float = 1e-6,
                 upcast_attention: bool = False,
                 fused_attention: bool = True) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = self.build_attention(
            dim,
            num_heads,
            qkv_bias=qkv_bias,
            attn_drop=attn_drop,
            proj_drop=drop,
            rel_pos_type=rel_pos_type,
            grid_size=grid_size,
            upcast=upcast_attention,
            fused=fused_attention)
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = self.build_mlp(dim, int(dim * mlp_ratio), drop, norm_eps)
        self.drop_path = DropPath(
            drop_path) if drop_path > 0 else nn.Identity()
        if layer_scale_init_value > 0:
            self.gamma_1 = nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value)))
            self.gamma_2 = nn.Parameter(
                torch.full((dim, ), float(layer_scale_init_value)))
        else:
            self.gamma_1 = self.gamma_2 = None

    @staticmethod
    def build_attention(dim: int, num_heads: int, **kwargs) -> nn.Module:
        """The token mixer: :class:`Attention`."""
        return Attention(dim, num_heads, **kwargs)

    @staticmethod
    def build_mlp(dim: int, hidden_dim: int, drop: float,
                  norm_eps: float) -> nn.Module:
        """The channel mixer: :class:`Mlp`."""
        return Mlp(dim, hidden_dim, drop)

    def forward(self,
                x: Tensor,
                grid_size: Tuple[int, int],
                rel_pos: Optional[Tensor] = None,
                windows: WindowsArg = None) -> Tensor:
        """Run the block on ``(B, L, C)`` tokens of a ``grid_size`` grid.

        With ``windows`` (a window size, or a :mod:`windows
        <mmitpn.models.utils.windows>` grouping), attention runs inside
        non-overlapping windows as in ViTDet: the normalised tokens are
        partitioned (zero-padded) after ``norm1`` and put back before the
        residual, so the MLP and the residual path see the real tokens only
        and drop path removes whole images; ``rel_pos`` is then that of the
        windows (:class:`Attention`).
        """
        windows = as_windows(windows, grid_size)
        y = self.norm1(x)
        if windows is not None:
            y = windows.partition(y)
            y = self.attn(y, windows.window_grid, rel_pos)
            y = windows.unpartition(y, x.shape[0])
        else:
            y = self.attn(y, grid_size, rel_pos)
        if self.gamma_1 is not None:
            y = self.gamma_1 * y
        x = x + self.drop_path(y)
        y = self.mlp(self.norm2(x))
        if self.gamma_2 is not None:
            y = self.gamma_2 * y
        return x + self.drop_path(y)

    def forward_gathered(self,
                         x: Tensor,
                         gather: Tensor,
                         grid_size: Tuple[int, int],
                         rel_pos: Optional[Tensor] = None,
                         windows: WindowsArg = None) -> Tuple[Tensor, Tensor]:
        """The block with gathering tokens ``gather`` ``(B, G, C)``: see
        :func:`~mmitpn.models.utils.token_gathering.gathered_block_forward`.

        Returns:
            tuple[Tensor]: The tokens and the gathering tokens.
        """
        return gathered_block_forward(self, x, gather, grid_size, rel_pos,
                                      as_windows(windows, grid_size))


_REL_POS_INDEX_CACHE: Dict[Tuple[Tuple[int, int], str], Tensor] = {}


def cached_rel_pos_index(grid_size: Tuple[int, int],
                         device: torch.device) -> Tensor:
    """:func:`relative_position_index` of ``grid_size`` on ``device``,
    computed once per (grid, device): at 1344x800 (N = 4200 units) it is a
    141 MB tensor that every forward would otherwise rebuild and copy."""
    key = (tuple(grid_size), str(device))
    index = _REL_POS_INDEX_CACHE.get(key)
    if index is None:
        index = relative_position_index(grid_size).to(device)
        _REL_POS_INDEX_CACHE[key] = index
    return index


def gather_rel_pos_index(grid_size: Tuple[int,
                                          int], ids_keep: Optional[Tensor],
                         device: torch.device) -> Tensor:
    """Bias-table indices for the tokens present, ``(B or 1, L, L)``.

    With masking, the rows and columns of the kept units are gathered per
    sample, so relative positions stay correct for dropped tokens.
    """
    index = cached_rel_pos_index(grid_size, device)
    if ids_keep is None:
        return index.unsqueeze(0)
    rows = index[ids_keep]  # (B, L, N)
    return rows.gather(2,
                       ids_keep.unsqueeze(1).expand(-1, ids_keep.shape[1], -1))


def relative_positions(rel_pos_type: Optional[str], grid_size: Tuple[int, int],
                       ids: Optional[Tensor],
                       device: torch.device) -> Optional[Tensor]:
    """What an :class:`Attention` of ``rel_pos_type`` needs to know of the
    positions of tokens at grid indices ``ids`` ``(B, L)`` (None: the whole
    grid, row-major): bias-table indices (:func:`gather_rel_pos_index`) for
    ``'bias_table'``, the indices themselves for ``'decomposed'``, nothing
    without relative positions."""
    if rel_pos_type == 'bias_table':
        return gather_rel_pos_index(grid_size, ids, device)
    if rel_pos_type == 'decomposed':
        return ids
    return None

# Copyright (c) mmitpn contributors. All rights reserved.
"""Absolute and relative position encodings for grids of 16x16 units."""
from typing import Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def build_2d_sincos_pos_embed(grid_size: Tuple[int, int],
                              embed_dims: int,
                              temperature: float = 10000.) -> Tensor:
    """Fixed 2-D sine-cosine position embedding, shape ``(1, H*W, C)``.

    A quarter of the channels each holds sin(y), cos(y), sin(x), cos(x) at
    geometrically spaced frequencies; tokens are in row-major order.

    Kept instead of mmpretrain's ``build_2d_sincos_position_embedding``:
    on square grids both agree (to 2e-7: this one is computed in float64),
    but for an ``H x W`` grid mmpretrain's builds the embedding of the
    transposed ``W x H`` grid, so on the non-square grids of e.g. a
    ``(256, 192)`` input its rows do not fit the row-major tokens of
    HiViT.
    """
    if embed_dims % 4 != 0:
        raise ValueError('The sin-cos position embedding needs embed_dims '
                         f'divisible by 4, got {embed_dims}.')
    h, w = grid_size
    grid_y, grid_x = torch.meshgrid(
        torch.arange(h, dtype=torch.float64),
        torch.arange(w, dtype=torch.float64),
        indexing='ij')
    quarter = embed_dims // 4
    omega = 1. / temperature**(
        torch.arange(quarter, dtype=torch.float64) / quarter)
    out_y = grid_y.flatten()[:, None] * omega[None]
    out_x = grid_x.flatten()[:, None] * omega[None]
    pos = torch.cat(
        [out_y.sin(), out_y.cos(),
         out_x.sin(), out_x.cos()], dim=1)
    return pos.float().unsqueeze(0)


def same_grid(src_grid: Tuple[int, int], dst_grid: Tuple[int, int]) -> bool:
    """Whether a resize from ``src_grid`` to ``dst_grid`` can be skipped.

    Never while a graph is traced (ONNX) or exported (``torch.export``):
    the shortcut would freeze the traced size into the graph, which then
    fails at every other size; the resize it records is the identity at
    the same size. Eager results are unchanged.
    """
    if torch.jit.is_tracing() or torch.compiler.is_exporting():
        return False
    return tuple(src_grid) == tuple(dst_grid)


def resize_pos_embed(pos_embed: Tensor, src_grid: Tuple[int, int],
                     dst_grid: Tuple[int, int]) -> Tensor:
    """Bicubically resize a ``(1, H*W, C)`` position embedding.

    The same resize as mmpretrain's ``resize_pos_embed`` with
    ``num_extra_tokens=0`` (tested), kept because that one returns its input
    whenever the grids match, also while a graph is traced or exported,
    which freezes the traced size into ONNX / ``torch.export`` graphs.
    """
    if same_grid(src_grid, dst_grid):
        return pos_embed
    channels = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, *src_grid, channels).permute(0, 3, 1, 2)
    grid = F.interpolate(
        grid.float(), size=dst_grid, mode='bicubic', align_corners=False)
    return grid.to(pos_embed.dtype).permute(0, 2, 3,
                                            1).reshape(1, -1, channels)


def resample_with_offset(pos_embed: Tensor, grid: Tuple[int, int],
                         offset: float) -> Tensor:
    """DINO's interpolation of a ``(1, H*W, C)`` embedding onto its own grid.

    ``F.interpolate`` with scale factor ``(g + offset) / g`` per side keeps
    the size (``floor(g + offset) = g``) but samples at
    ``(i + 0.5) * g / (g + offset) - 0.5``, so the embedding shifts slightly
    (the official masked forward does this with ``offset=0.1``).
    """
    channels = pos_embed.shape[-1]
    maps = pos_embed.reshape(1, *grid, channels).permute(0, 3, 1, 2)
    maps = F.interpolate(
        maps.float(),
        scale_factor=tuple((g + offset) / g for g in grid),
        mode='bicubic',
        align_corners=False)
    if tuple(maps.shape[-2:]) != tuple(grid):
        raise ValueError(f'Resampling a {grid} grid with offset {offset} '
                         f'gave {tuple(maps.shape[-2:])}.')
    return maps.to(pos_embed.dtype).permute(0, 2, 3,
                                            1).reshape(1, -1, channels)


def relative_position_index(grid_size: Tuple[int, int]) -> Tensor:
    """Index of every (query, key) pair into a ``(2H-1)*(2W-1)`` bias table.

    Returns:
        Tensor: ``(H*W, H*W)`` long tensor, tokens in row-major order.
    """
    h, w = grid_size
    coords = torch.stack(
        torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij'))
    coords = coords.flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    return (relative[..., 0] + h - 1) * (2 * w - 1) + relative[..., 1] + w - 1


def resize_rel_pos_bias_table(table: Tensor, src_grid: Tuple[int, int],
                              dst_grid: Tuple[int, int]) -> Tensor:
    """Bicubically resize a relative position bias table between grids.

    As the official HiViT detection and segmentation code does (and Swin's
    bicubic resize). mmpretrain's ``resize_relative_position_bias_table``
    is another method (BEiT's geometric-progression cubic spline) and
    needs ``scipy.interpolate.interp2d``, which SciPy 1.14 removed.

    Args:
        table (Tensor): ``((2*sh-1)*(2*sw-1), num_heads)``.
        src_grid (tuple[int, int]): Grid ``(sh, sw)`` the table was made for.
        dst_grid (tuple[int, int]): Target grid ``(dh, dw)``.
    """
    if same_grid(src_grid, dst_grid):
        return table
    num_heads = table.shape[-1]
    src = (2 * src_grid[0] - 1, 2 * src_grid[1] - 1)
    dst = (2 * dst_grid[0] - 1, 2 * dst_grid[1] - 1)
    grid = table.T.reshape(1, num_heads, *src)
    grid = F.interpolate(
        grid.float(), size=dst, mode='bicubic', align_corners=False)
    return grid.to(table.dtype).reshape(num_heads, -1).T


def decomposed_rel_pos(rel_pos: Tensor, q_size: int, k_size: int) -> Tensor:
    """Relative embeddings along one axis for every (query, key) pair.

    Decomposed relative positions (ViTDet) keep one ``(2S-1, C)`` table per
    axis; it is linearly resized when the grid differs from the one it was
    made for.

    Returns:
        Tensor: ``(q_size, k_size, C)``.
    """
    max_dist = 2 * max(q_size, k_size) - 1
    if rel_pos.shape[0] != max_dist:
        rel_pos = F.interpolate(
            rel_pos.T.unsqueeze(0).float(), size=max_dist,
            mode='linear').to(rel_pos.dtype)[0].T
    q_coords = torch.arange(q_size)[:, None] * max(k_size / q_size, 1.)
    k_coords = torch.arange(k_size)[None, :] * max(q_size / k_size, 1.)
    relative = q_coords - k_coords + (k_size - 1) * max(q_size / k_size, 1.)
    return rel_pos[relative.long().to(rel_pos.device)]

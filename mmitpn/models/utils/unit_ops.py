# Copyright (c) mmitpn contributors. All rights reserved.
"""Operations on the unit layout ``(B, N, s, s, C)`` of HiViT.

An image of ``H x W`` pixels is split into ``N = (H/16)*(W/16)`` units of
16x16 pixels (row-major); inside each unit, stride-4 features form a 4x4 grid
of sub-tokens and stride-8 features a 2x2 grid. Every operation here works
within a unit, which is why masked units can be dropped in every stage.
"""
from typing import Sequence, Tuple, Union

import torch
from mmpretrain.models.utils import to_2tuple
from torch import Tensor, nn

UNIT_SIZE = 16
STRIDES = (4, 8, 16)
SUB_TOKENS = {4: 16, 8: 4, 16: 1}  # sub-tokens per unit at each stride


def unit_grid(height: int, width: int) -> Tuple[int, int]:
    """Unit grid ``(H/16, W/16)`` of an input size; raises if a side is not
    a multiple of 16."""
    if height % UNIT_SIZE or width % UNIT_SIZE:
        raise ValueError(
            f'HiViT-family models need input sides that are multiples of '
            f'{UNIT_SIZE}, got {height}x{width} (H x W); resize or pad the '
            'input.')
    return height // UNIT_SIZE, width // UNIT_SIZE


def grid_of_size(size: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """:func:`unit_grid` of an ``img_size`` argument (int or (H, W))."""
    return unit_grid(*to_2tuple(size))


class PatchEmbed(nn.Module):
    """4x4 convolution patches grouped into 16x16 units.

    Args:
        in_channels (int): Image channels.
        embed_dims (int): Sub-token channels (``D / 4``).
        inner_patches (int): Sub-tokens per unit side. Defaults to 4.
        norm_eps (float): LayerNorm epsilon.
    """

    def __init__(self,
                 in_channels: int,
                 embed_dims: int,
                 inner_patches: int = 4,
                 norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.inner_patches = inner_patches
        stride = UNIT_SIZE // inner_patches
        self.proj = nn.Conv2d(
            in_channels, embed_dims, kernel_size=stride, stride=stride)
        self.norm = nn.LayerNorm(embed_dims, eps=norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, N, 4, 4, C)``."""
        batch = x.shape[0]
        grid_h, grid_w = x.shape[2] // UNIT_SIZE, x.shape[3] // UNIT_SIZE
        s = self.inner_patches
        x = self.proj(x).reshape(batch, -1, grid_h, s, grid_w, s)
        x = x.permute(0, 2, 4, 3, 5, 1).reshape(batch, grid_h * grid_w, s, s,
                                                -1)
        return self.norm(x)


class PatchMerge(nn.Module):
    """Merge 2x2 neighbouring sub-tokens inside each unit: ``C -> 2C``.

    Neighbours are concatenated in the order (0,0), (1,0), (0,1), (1,1) of
    (row, column), then LayerNorm and a bias-free linear reduction.
    """

    def __init__(self, dim: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=norm_eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, s, s, C)`` -> ``(B, N, s/2, s/2, 2C)``."""
        x = torch.cat([
            x[..., 0::2, 0::2, :], x[..., 1::2, 0::2, :],
            x[..., 0::2, 1::2, :], x[..., 1::2, 1::2, :]
        ],
                      dim=-1)
        return self.reduction(self.norm(x))


class PatchSplit(nn.Module):
    """Split each sub-token into 2x2 finer ones: a learned pixel shuffle.

    LayerNorm, a bias-free linear layer to ``4 * out_dim`` channels, then the
    four channel blocks fill the 2x2 neighbours in (row, column) order.
    """

    def __init__(self, dim: int, out_dim: int, norm_eps: float = 1e-6) -> None:
        super().__init__()
        self.out_dim = out_dim
        self.norm = nn.LayerNorm(dim, eps=norm_eps)
        self.reduction = nn.Linear(dim, 4 * out_dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, N, s, s, C)`` -> ``(B, N, 2s, 2s, out_dim)``."""
        batch, num_units, s = x.shape[:3]
        x = self.reduction(self.norm(x))
        x = x.reshape(batch, num_units, s, s, 2, 2, self.out_dim)
        x = x.permute(0, 1, 2, 4, 3, 5, 6)
        return x.reshape(batch, num_units, 2 * s, 2 * s, self.out_dim)


def units_to_map(x: Tensor, grid_size: Tuple[int, int]) -> Tensor:
    """``(B, N, s, s, C)`` or ``(B, N, C)`` -> ``(B, C, H*s, W*s)``."""
    if x.dim() == 3:
        x = x[:, :, None, None, :]
    batch, _, s, _, channels = x.shape
    h, w = grid_size
    x = x.reshape(batch, h, w, s, s, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(batch, channels, h * s, w * s)


def map_to_units(x: Tensor, inner_size: int) -> Tensor:
    """``(B, C, H*s, W*s)`` -> ``(B, N, s, s, C)``, inverse of units_to_map."""
    batch, channels, height, width = x.shape
    s = inner_size
    h, w = height // s, width // s
    x = x.reshape(batch, channels, h, s, w, s).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch, h * w, s, s, channels)


def gather_units(x: Tensor, ids_keep: Tensor) -> Tensor:
    """Keep the units ``ids_keep`` ``(B, L)`` of ``x`` ``(B, N, ...)``."""
    index = ids_keep.reshape(*ids_keep.shape, *([1] * (x.dim() - 2))).expand(
        -1, -1, *x.shape[2:])
    return x.gather(1, index)


def fill_masked(x: Tensor, mask: Tensor, token: Tensor) -> Tensor:
    """Replace every sub-token of the masked units by ``token``.

    Args:
        x (Tensor): Unit layout ``(B, N, s, s, C)``, tokens ``(B, N, C)`` or
            an NCHW map ``(B, C, H*s, W*s)`` (``s`` sub-tokens per unit side).
        mask (Tensor): ``(B, N)``, true/1 for masked units (row-major).
        token (Tensor): ``C`` values (any shape with ``C`` elements).
    """
    channels = token.numel()
    if x.dim() == 4:  # NCHW map
        batch, _, height, width = x.shape
        side = int(round((height * width / mask.shape[1])**0.5))
        weight = mask.reshape(batch, 1, height // side, width // side)
        weight = weight.to(x.dtype).repeat_interleave(side, 2)
        weight = weight.repeat_interleave(side, 3)
        token = token.reshape(1, channels, 1, 1)
    else:
        weight = mask.reshape(*mask.shape, *([1] * (x.dim() - 2))).to(x.dtype)
        token = token.reshape(channels)
    return x * (1 - weight) + token.to(x.dtype) * weight


def patchify(images: Tensor, patch_size: int = UNIT_SIZE) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, N, p*p*C)``, pixels in (row, col, channel)
    order within each patch (as MAE and mmpretrain)."""
    batch, channels, height, width = images.shape
    p = patch_size
    x = images.reshape(batch, channels, height // p, p, width // p, p)
    x = x.permute(0, 2, 4, 3, 5, 1)
    return x.reshape(batch, (height // p) * (width // p), p * p * channels)


def unpatchify(patches: Tensor,
               grid_size: Tuple[int, int],
               channels: int = 3) -> Tensor:
    """Inverse of :func:`patchify`."""
    batch = patches.shape[0]
    h, w = grid_size
    p = round((patches.shape[-1] // channels)**0.5)
    x = patches.reshape(batch, h, w, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(batch, channels, h * p, w * p)


def normalize_patches(patches: Tensor, eps: float = 1e-6) -> Tensor:
    """Per-patch normalisation of the pixel targets (MAE's norm_pix)."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps)**.5

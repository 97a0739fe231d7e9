# Copyright (c) mmitpn contributors. All rights reserved.
"""Windows of windowed attention: how ``(B, L, C)`` tokens are grouped into
``(B * num_windows, S, C)`` windows and back.

Two groupings share one interface (``partition``, ``unpartition``,
``real_slots``, ``window_grid``, ``local_ids``), so an attention block and
the gathering attention run either:

- :class:`GridWindows`: ViTDet's non-overlapping windows of the full unit
  grid, zero-padded at the bottom and right;
- :class:`SlotWindows`: windows made of given tokens, e.g. the tokens a
  window migration keeps in each window (see
  :mod:`mmitpn.models.utils.token_migration`).
"""
from typing import Optional, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor


def window_partition(x: Tensor, grid_size: Tuple[int, int],
                     window_size: int) -> Tensor:
    """``(B, H*W, C)`` tokens to zero-padded windows
    ``(B * num_windows, window_size**2, C)``."""
    batch, _, channels = x.shape
    height, width = grid_size
    x = x.view(batch, height, width, channels)
    pad_h, pad_w = -height % window_size, -width % window_size
    x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))
    rows, cols = (height + pad_h) // window_size, (width +
                                                   pad_w) // window_size
    x = x.view(batch, rows, window_size, cols, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size**2, channels)


def window_unpartition(windows: Tensor, grid_size: Tuple[int, int],
                       window_size: int, batch: int) -> Tensor:
    """Inverse of :func:`window_partition`, padding removed."""
    height, width = grid_size
    # Ceiling division without negative operands: traced into ONNX, a
    # floor division of negative sizes truncates towards zero instead.
    rows = (height + window_size - 1) // window_size
    cols = (width + window_size - 1) // window_size
    channels = windows.shape[-1]
    x = windows.view(batch, rows, cols, window_size, window_size, channels)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(batch, rows * window_size,
                                            cols * window_size, channels)
    return x[:, :height, :width].reshape(batch, height * width, channels)


class GridWindows:
    """ViTDet windows of ``size x size`` units over a full ``grid_size``
    grid (row-major tokens), zero-padded at the bottom and right.

    Args:
        grid_size (tuple[int, int]): The unit grid of the tokens.
        size (int): Window side in units.
    """

    def __init__(self, grid_size: Tuple[int, int], size: int) -> None:
        self.grid_size = tuple(grid_size)
        self.size = size

    @property
    def window_grid(self) -> Tuple[int, int]:
        """The grid of one window (what relative positions are made for)."""
        return self.size, self.size

    @property
    def local_ids(self) -> None:
        """Every window holds its whole grid, in row-major order."""
        return None

    @property
    def num_windows(self) -> int:
        height, width = self.grid_size
        return -(-height // self.size) * -(-width // self.size)

    def partition(self, x: Tensor) -> Tensor:
        return window_partition(x, self.grid_size, self.size)

    def unpartition(self, windows: Tensor, batch: int) -> Tensor:
        return window_unpartition(windows, self.grid_size, self.size, batch)

    def real_slots(self, x: Tensor) -> Tensor:
        """``(num_windows * size**2, )``: which window slots hold a token
        (the others are padding)."""
        ones = x.new_ones(1, self.grid_size[0] * self.grid_size[1], 1)
        return self.partition(ones).flatten().bool()


class SlotWindows:
    """Windows made of given tokens ``(B, L, C)``.

    Window ``w`` holds slots ``slots[w*S:(w+1)*S]``: a token index below
    ``L``, or ``L`` for a padding slot (zeros, as ViTDet's padding). The
    slots that are not padding take the tokens in order (every token once),
    and are the same for every image; the position of each slot in its
    window may differ per image (``local_ids``).

    Args:
        slots (Tensor): ``(num_windows * S, )`` long.
        local_ids (Tensor): ``(B * num_windows, S)`` row-major position of
            every slot in its ``size x size`` window.
        size (int): Window side in units.
        num_tokens (int): ``L``.
        padded (bool): Whether any slot is padding; without, the windows
            are the tokens as they are (``slots`` is ``0 ... L-1``).
    """

    def __init__(self, slots: Tensor, local_ids: Tensor, size: int,
                 num_tokens: int, padded: bool) -> None:
        self.slots = slots
        self.local_ids = local_ids
        self.size = size
        self.num_tokens = num_tokens
        self.padded = padded
        self.slot_count = local_ids.shape[1]
        self.real = torch.nonzero(slots < num_tokens).flatten() \
            if padded else None

    @property
    def window_grid(self) -> Tuple[int, int]:
        return self.size, self.size

    def partition(self, x: Tensor) -> Tensor:
        batch, _, channels = x.shape
        if self.padded:
            x = torch.cat([x, x.new_zeros(batch, 1, channels)], 1)
            x = x[:, self.slots]
        return x.reshape(-1, self.slot_count, channels)

    def unpartition(self, windows: Tensor, batch: int) -> Tensor:
        x = windows.reshape(batch, -1, windows.shape[-1])
        return x[:, self.real] if self.padded else x

    def real_slots(self, x: Tensor) -> Tensor:
        return self.slots < self.num_tokens


Windows = Union[GridWindows, SlotWindows]


def as_windows(windows: Union[int, Windows, None],
               grid_size: Tuple[int, int]) -> Optional[Windows]:
    """A window size (ViTDet windows of ``grid_size``), a grouping, or
    None / 0 for global attention."""
    if isinstance(windows, int):
        return GridWindows(grid_size, windows) if windows else None
    return windows

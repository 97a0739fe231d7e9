# Copyright (c) mmitpn contributors. All rights reserved.
"""Token migration (Fast-iTPN's "dropping redundant tokens of the backbone
while replenishing them in the feature pyramid without attention"), in
mmitpn's reading: the paper's code is not public.

Redundant tokens are found by bipartite matching as in token merging
(ToMe): the tokens are split into two sets, every token of the first set is
matched to its most similar token of the second (cosine similarity of the
features), and the best-matched ones are dropped. A dropped token then
follows the kept token it was matched to: it is restored as that token's
current features plus the difference the two had when it was dropped, so
the stride-16 grid the pyramid receives is complete again.

Two selections are made here:

- :func:`start_migration`: over the whole grid (alternating tokens, at most
  half dropped);
- :func:`start_window_migration`: within each ViTDet window, the same number
  of slots kept in every window (checkerboard sets), so that windowed
  attention runs on the kept tokens as windows of fewer slots
  (:class:`~mmitpn.models.utils.windows.SlotWindows`).
"""
from dataclasses import dataclass
from typing import Dict, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .unit_ops import gather_units
from .windows import SlotWindows, window_partition


@dataclass
class MigrationState:
    """Which tokens run and how the others are restored.

    Attributes:
        kept_ids (Tensor): ``(B, K)`` grid indices of the kept tokens, in
            the order they run (ascending for :func:`start_migration`).
        dropped_ids (Tensor): ``(B, M)`` grid indices of the dropped tokens.
        match (Tensor): ``(B, M)`` position in ``kept_ids`` of the kept
            token each dropped token follows.
        delta (Tensor): ``(B, M, C)`` dropped minus matched features.
    """
    kept_ids: Tensor
    dropped_ids: Tensor
    match: Tensor
    delta: Tensor

    @property
    def num_tokens(self) -> int:
        return self.kept_ids.shape[1] + self.dropped_ids.shape[1]


def num_dropped(num_tokens: int, keep_ratio: float) -> int:
    """Tokens dropped at ``keep_ratio`` (at most half: one match each)."""
    return min(num_tokens - round(keep_ratio * num_tokens), num_tokens // 2)


def start_migration(x: Tensor, keep_ratio: float) -> MigrationState:
    """Match the tokens of ``x`` ``(B, N, C)`` and drop the most redundant.

    Returns:
        MigrationState: With ``delta`` of the tokens as they are now.
    """
    batch, num_tokens, _ = x.shape
    # A Python int even while traced (where sizes are tensors): the count
    # of dropped tokens, hence the graph, is fixed per input size.
    drop = num_dropped(int(num_tokens), keep_ratio)
    with torch.no_grad():
        normed = F.normalize(x.float(), dim=-1)
        source, target = normed[:, 0::2], normed[:, 1::2]
        score, best = (source @ target.transpose(1, 2)).max(dim=-1)
        order = score.argsort(dim=-1, descending=True)
        dropped_source = order[:, :drop]  # positions in the first set
        kept_source = order[:, drop:]
        dropped_ids = 2 * dropped_source
        match_ids = 2 * best.gather(1, dropped_source) + 1
        kept_ids = torch.cat([
            2 * kept_source,
            torch.arange(1, num_tokens, 2, device=x.device).expand(batch, -1)
        ], 1).sort(dim=1).values
        # Position of every grid index among the kept tokens.
        position = torch.zeros(
            batch, num_tokens, dtype=torch.long, device=x.device)
        position.scatter_(
            1, kept_ids,
            torch.arange(kept_ids.shape[1], device=x.device).expand(batch, -1))
        match = position.gather(1, match_ids)
    delta = gather_units(x, dropped_ids) - gather_units(x, match_ids)
    return MigrationState(kept_ids, dropped_ids, match, delta)


def keep_tokens(x: Tensor, state: MigrationState) -> Tensor:
    """The kept tokens of a full grid ``x`` ``(B, N, C)``."""
    return gather_units(x, state.kept_ids)


def restore_tokens(kept: Tensor, state: MigrationState) -> Tensor:
    """The full grid ``(B, N, C)`` from the kept tokens ``(B, K, C)``."""
    batch, _, channels = kept.shape
    dropped = gather_units(kept, state.match) + state.delta.to(kept.dtype)
    full = kept.new_empty(batch, state.num_tokens, channels)
    full.scatter_(1,
                  state.kept_ids.unsqueeze(-1).expand(-1, -1, channels), kept)
    return full.scatter(
        1,
        state.dropped_ids.unsqueeze(-1).expand(-1, -1, channels), dropped)


def refresh(full: Tensor, state: MigrationState) -> Tensor:
    """After a block that ran on the full grid: the kept tokens, and the
    dropped tokens' differences to their matches updated in ``state``."""
    kept = keep_tokens(full, state)
    state.delta = gather_units(full, state.dropped_ids) - gather_units(
        kept, state.match)
    return kept


def window_keep_count(window_size: int, keep_ratio: float) -> int:
    """Slots every window keeps in a window migration (at least half)."""
    slots = window_size**2
    return slots - num_dropped(slots, keep_ratio)


class WindowLayout:
    """What a window migration needs that is the same for every image of a
    grid.

    Every window of ``window_size`` units keeps ``K`` slots
    (:func:`window_keep_count`): padding slots go first, then
    ``max(R - K, 0)`` of its ``R`` real tokens, taken from the first half
    of a checkerboard (row + column even) and matched to the second half.
    ``K`` is at least half of the slots, so every window, padded or not,
    has enough tokens in the first half. A window with fewer than ``K``
    real tokens drops none and fills up with its first padding slots.

    The kept tokens are held window by window, row-major in each window;
    this fixes how many each window holds, hence :attr:`slots` of the
    :class:`~mmitpn.models.utils.windows.SlotWindows` over them, for every
    image.

    Args:
        grid_size (tuple[int, int]): The unit grid.
        window_size (int): Window side in units.
        keep_ratio (float): Fraction of a window's slots kept, in
            ``[0.5, 1]``.
        device (torch.device): Where the index tensors live.
    """

    def __init__(self, grid_size: Tuple[int, int], window_size: int,
                 keep_ratio: float, device: torch.device) -> None:
        # Made with NumPy: constants of the graph when traced for export.
        height, width = grid_size
        size = self.window_size = window_size
        slots = self.slot_count = size * size
        rows, cols = -(-height // size), -(-width // size)
        self.grid_size = tuple(grid_size)
        self.num_windows = rows * cols
        keep = window_keep_count(size, keep_ratio)
        local_row, local_col = np.divmod(np.arange(slots), size)
        window_row, window_col = np.divmod(np.arange(self.num_windows), cols)
        grid_row = window_row[:, None] * size + local_row  # (windows, S)
        grid_col = window_col[:, None] * size + local_col
        real = (grid_row < height) & (grid_col < width)
        real_count = real.sum(1)
        kept_count = np.minimum(real_count, keep)
        drop_count = real_count - kept_count
        checker = (local_row + local_col) % 2 == 0
        self.keep = keep
        self.num_kept = int(kept_count.sum())
        self.num_dropped = int(drop_count.sum())
        self.padded = bool((kept_count < keep).any())
        slot_tokens, pad_local = [], []
        offset = 0
        for window in range(self.num_windows):
            is_real = real[window]
            if kept_count[window] == keep:  # which ones differs per image
                chosen = [None] * keep
            else:  # all its real tokens and its first padding slots
                pads = np.flatnonzero(~is_real)[:keep - kept_count[window]]
                chosen = sorted(
                    np.flatnonzero(is_real).tolist() + pads.tolist())
            for i in chosen:
                real_slot = i is None or bool(is_real[i])
                # Padding slots point past the kept tokens (a zero row).
                slot_tokens.append(offset if real_slot else self.num_kept)
                pad_local.append(0 if real_slot else i)
                offset += real_slot

        def tensor(array) -> Tensor:
            return torch.as_tensor(np.asarray(array), device=device)

        self.real = tensor(real)
        # Grid index of every slot (0 for padding, never read as a token).
        self.grid_ids = tensor(
            np.where(real, grid_row * width + grid_col, 0).ravel())
        self.drop_count = tensor(drop_count)
        self.source = tensor(np.flatnonzero(checker))
        self.target = tensor(np.flatnonzero(~checker))
        self.slots = tensor(slot_tokens)
        # The window position of every kept padding slot (0 elsewhere).
        self.pad_local = tensor(pad_local)

    def select(self, x: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Match the tokens of ``x`` ``(B, N, C)`` in every window.

        Returns:
            tuple[Tensor]: Which slots ``(B, num_windows * S)`` are kept and
            which dropped (real tokens only), and the slot each dropped
            token follows (flat slot indices).
        """
        batch = x.shape[0]
        shape = (batch, self.num_windows, self.slot_count)
        windows = window_partition(x.float(), self.grid_size, self.window_size)
        normed = F.normalize(windows, dim=-1).view(*shape, -1)
        source, target = normed[:, :, self.source], normed[:, :, self.target]
        score = source @ target.transpose(-1, -2)
        score = score.masked_fill(~self.real[None, :, None, self.target],
                                  float('-inf'))
        score, best = score.max(dim=-1)
        score = score.masked_fill(~self.real[None, :, self.source],
                                  float('-inf'))
        rank = score.argsort(dim=-1, descending=True).argsort(dim=-1)
        # From the first half of every window to all its slots.
        index = self.source.expand(batch, self.num_windows, -1)
        dropped_source = rank < self.drop_count[None, :, None]
        dropped = x.new_zeros(shape, dtype=torch.bool)
        dropped = dropped.scatter(2, index, dropped_source)
        window_start = torch.arange(self.num_windows, device=x.device)
        target = window_start[None, :, None] * self.slot_count + \
            self.target[best]
        match = x.new_zeros(shape, dtype=torch.long)
        match = match.scatter(2, index, target)
        kept = self.real[None] & ~dropped
        return kept.flatten(1), dropped.flatten(1), match.flatten(1)


_LAYOUT_CACHE: Dict[tuple, WindowLayout] = {}


def window_layout(grid_size: Tuple[int, int], window_size: int,
                  keep_ratio: float, device: torch.device) -> WindowLayout:
    """:class:`WindowLayout`, made once per grid, window, ratio and
    device."""
    # Python ints even while traced (where sizes are tensors).
    grid_size = (int(grid_size[0]), int(grid_size[1]))
    key = (grid_size, window_size, keep_ratio, str(device))
    if key not in _LAYOUT_CACHE:
        _LAYOUT_CACHE[key] = WindowLayout(grid_size, window_size, keep_ratio,
                                          device)
    return _LAYOUT_CACHE[key]


def first_true(mask: Tensor, count: int) -> Tensor:
    """Positions of the ``count`` true entries of every row of ``mask``
    ``(B, S)`` (each row holds ``count``), ascending."""
    total = mask.shape[1]
    order = torch.arange(total, device=mask.device) + (~mask).long() * total
    return order.sort(dim=1).values[:, :count]


def start_window_migration(
        x: Tensor, grid_size: Tuple[int, int], window_size: int,
        keep_ratio: float) -> Tuple[MigrationState, SlotWindows]:
    """Match the tokens of ``x`` ``(B, N, C)`` within every window and drop
    the most redundant (see :class:`WindowLayout`).

    Returns:
        tuple: The :class:`MigrationState` (kept tokens window by window,
        row-major in each window; ``delta`` of the tokens as they are now)
        and the windows of the kept tokens.
    """
    layout = window_layout(grid_size, window_size, keep_ratio, x.device)
    batch = x.shape[0]
    with torch.no_grad():
        kept, dropped, match = layout.select(x)
        kept_slots = first_true(kept, layout.num_kept)
        dropped_slots = first_true(dropped, layout.num_dropped)
        match_slots = match.gather(1, dropped_slots)
        # Position of every slot among the kept tokens.
        order = torch.arange(layout.num_kept, device=x.device)
        position = torch.zeros_like(kept, dtype=torch.long)
        position = position.scatter(1, kept_slots, order.expand(batch, -1))
        kept_ids = layout.grid_ids[kept_slots]
        dropped_ids = layout.grid_ids[dropped_slots]
        match_ids = layout.grid_ids[match_slots]
        # Position in its window of every slot of the kept windows.
        local = kept_slots % layout.slot_count
        local = torch.cat([local, local.new_zeros(batch, 1)], 1)
        local = local[:, layout.slots] + layout.pad_local
    delta = gather_units(x, dropped_ids) - gather_units(x, match_ids)
    state = MigrationState(kept_ids, dropped_ids,
                           position.gather(1, match_slots), delta)
    windows = SlotWindows(layout.slots, local.view(-1, layout.keep),
                          window_size, layout.num_kept, layout.padded)
    return state, windows

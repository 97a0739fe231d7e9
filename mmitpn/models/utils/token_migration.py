# Copyright (c) mmitpn contributors. All rights reserved.
"""Token migration (Fast-iTPN's "dropping redundant tokens of the backbone
while replenishing them in the feature pyramid without attention"), in
mmitpn's reading: the paper's code is not public.

Redundant tokens are found by bipartite matching as in token merging
(ToMe): the tokens are split into two alternating sets, every token of the
first set is matched to its most similar token of the second (cosine
similarity of the features), and the best-matched ones are dropped. A
dropped token then follows the kept token it was matched to: it is restored
as that token's current features plus the difference the two had when it
was dropped, so the stride-16 grid the pyramid receives is complete again.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .unit_ops import gather_units


@dataclass
class MigrationState:
    """Which tokens run and how the others are restored.

    Attributes:
        kept_ids (Tensor): ``(B, K)`` grid indices of the kept tokens,
            ascending.
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

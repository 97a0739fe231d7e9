# Copyright (c) mmitpn contributors. All rights reserved.
"""Token reduction in the main stage: which tokens the main blocks run on.

A backbone holds one strategy, built from its ``token_reduction`` config
(:func:`build_token_reduction`):

- ``None``: every main block sees every token (:class:`TokenReduction`);
- ``dict(type='migration', start_block=k, keep_ratio=r)``: token
  migration over the whole grid (:class:`TokenMigration`);
- ``dict(type='window_migration', start_block=k, keep_ratio=r)``: token
  migration within ViTDet windows, which also shrinks windowed blocks
  (:class:`WindowTokenMigration`).

Each forward walks the main stage with a :class:`MainStageTokens` the
strategy makes; its fixed points in the loop over main blocks are
:meth:`~MainStageTokens.keep` (drop tokens before the start block),
:meth:`~MainStageTokens.block_input` / :meth:`~MainStageTokens.block_output`
(what a block runs on, and refreshing what it ran on the full grid) and
:meth:`~MainStageTokens.restore` (the full grid, for outputs).
"""
from typing import Dict, Optional, Tuple, Type

from torch import Tensor

from .token_migration import (MigrationState, keep_tokens, refresh,
                              restore_tokens, start_migration,
                              start_window_migration)
from .transformer_blocks import relative_positions
from .windows import GridWindows, SlotWindows, Windows

Grid = Tuple[int, int]


class TokenReduction:
    """No reduction: every main block runs on all tokens (or, in masked
    pretraining, on the visible units)."""

    type = 'none'
    start_block: Optional[int] = None

    def check(self, depth: int, window_size: Optional[int]) -> None:
        """Raise if the strategy does not fit the backbone."""

    def begin(self, x: Tensor, grid: Grid, ids: Optional[Tensor],
              rel_pos_type: Optional[str],
              window_size: Optional[int]) -> 'MainStageTokens':
        """The tokens of one forward (``ids``: the visible units, if any)."""
        return MainStageTokens(self, x, grid, ids, rel_pos_type, window_size)

    def select(
        self, x: Tensor, grid: Grid, window_size: Optional[int]
    ) -> Tuple[MigrationState, Optional[SlotWindows]]:
        """Which tokens of the full grid ``x`` to keep before
        :attr:`start_block`, and the windows of the kept tokens if windowed
        blocks run on them (None: on the restored full grid)."""
        raise NotImplementedError

    def static_shape_reason(self) -> Optional[str]:
        """Why a traced graph holds for its input size only, or None."""
        return None

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


class TokenMigration(TokenReduction):
    """Token migration over the whole grid (Fast-iTPN's "dropping
    redundant tokens", in mmitpn's reading; see
    :func:`~mmitpn.models.utils.token_migration.start_migration`).

    Before main block ``start_block`` the ``1 - keep_ratio`` most redundant
    tokens are dropped (bipartite matching, at most half); global blocks
    from there on run on the kept tokens only, windowed blocks on the full
    grid with every dropped token following its match, and the outputs
    hold the full grid again. Training-free: any checkpoint takes it.

    Args:
        start_block (int): Main block (0-based) before which tokens drop.
        keep_ratio (float): Fraction of tokens kept, in ``[0.5, 1]``.
    """

    type = 'migration'

    def __init__(self, start_block: int, keep_ratio: float) -> None:
        if not isinstance(start_block, int) or isinstance(start_block, bool):
            raise ValueError('token_reduction start_block must be an int '
                             f'(a main block), got {start_block!r}.')
        if not 0.5 <= keep_ratio <= 1:
            raise ValueError(
                'token_reduction keep_ratio must be in [0.5, 1] (bipartite '
                f'matching drops at most half), got {keep_ratio}.')
        self.start_block = start_block
        self.keep_ratio = keep_ratio

    def check(self, depth: int, window_size: Optional[int]) -> None:
        if not 0 <= self.start_block < depth:
            raise ValueError(
                f'token_reduction start_block {self.start_block} is not a '
                f'block of the {depth}-block main stage; use 0 to '
                f'{depth - 1}.')

    def select(self, x, grid, window_size):
        return start_migration(x, self.keep_ratio), None

    def static_shape_reason(self) -> Optional[str]:
        return (f'token_reduction ({self.type}) drops a number of tokens '
                'computed in Python from the input size, which the graph '
                'keeps fixed')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(start_block={self.start_block}, '
                f'keep_ratio={self.keep_ratio})')


class WindowTokenMigration(TokenMigration):
    """Token migration within ViTDet windows, so that windowed blocks shrink
    too (mmitpn's design; see
    :func:`~mmitpn.models.utils.token_migration.start_window_migration`).

    Before main block ``start_block`` every window of the backbone's
    ``window_size`` keeps ``round(keep_ratio * window_size**2)`` slots
    (padding dropped first, then its most redundant tokens, each matched
    to a kept token of its own window). From there on windowed blocks
    attend within the kept slots of each window and global blocks over all
    kept tokens; the outputs hold the full grid again, every dropped token
    following its match as in :class:`TokenMigration`. At ``keep_ratio=1``
    nothing is dropped and the backbone computes what it computes without
    reduction.

    Args:
        start_block (int): Main block (0-based) before which tokens drop.
        keep_ratio (float): Fraction of each window's slots kept, in
            ``[0.5, 1]``.
    """

    type = 'window_migration'

    def check(self, depth: int, window_size: Optional[int]) -> None:
        super().check(depth, window_size)
        if not window_size:
            raise ValueError("token_reduction type 'window_migration' keeps "
                             'tokens per window: set window_size too, or use '
                             "type 'migration'.")

    def select(self, x, grid, window_size):
        return start_window_migration(x, grid, window_size, self.keep_ratio)


TOKEN_REDUCTIONS: Dict[str, Type[TokenReduction]] = {
    cls.type: cls
    for cls in (TokenReduction, TokenMigration, WindowTokenMigration)
}


def build_token_reduction(cfg: Optional[dict]) -> TokenReduction:
    """The strategy of a ``token_reduction`` config: None, or a dict with
    ``type`` (one of :data:`TOKEN_REDUCTIONS`) and that type's arguments."""
    if cfg is None:
        return TokenReduction()
    if isinstance(cfg, TokenReduction):
        return cfg
    if not isinstance(cfg, dict) or cfg.get('type') not in TOKEN_REDUCTIONS:
        raise ValueError(
            'token_reduction must be None or a dict with type one of '
            f'{sorted(TOKEN_REDUCTIONS)}, e.g. dict(type=\'migration\', '
            f'start_block=6, keep_ratio=0.5); got {cfg!r}.')
    kwargs = dict(cfg)
    cls = TOKEN_REDUCTIONS[kwargs.pop('type')]
    expected = () if cls is TokenReduction else ('start_block', 'keep_ratio')
    if set(kwargs) != set(expected):
        raise ValueError(
            f"token_reduction of type {cfg['type']!r} takes "
            f'{list(expected) or "no other keys"}, got {sorted(kwargs)}.')
    return cls(**kwargs)


class MainStageTokens:
    """The tokens of one forward through the main stage.

    Holds the tokens the main blocks run on (the full grid, the visible
    units of masked pretraining, or the tokens a strategy keeps), where
    they are, and what the attention needs of their positions; made by
    :meth:`TokenReduction.begin`. For every main block ``index``, the loop
    calls :meth:`keep`, runs the block on :meth:`block_input`, and hands
    the result to :meth:`block_output`; :meth:`restore` gives the full grid.

    Args:
        reduction (TokenReduction): The strategy.
        x (Tensor): ``(B, L, C)`` tokens entering the main stage.
        grid (tuple[int, int]): The unit grid of the input.
        ids (Tensor, optional): ``(B, L)`` grid indices of the tokens
            (masked pretraining); None for the full grid.
        rel_pos_type (str, optional): The attention's relative positions.
        window_size (int, optional): ViTDet windows of windowed blocks.
    """

    def __init__(self, reduction: TokenReduction, x: Tensor, grid: Grid,
                 ids: Optional[Tensor], rel_pos_type: Optional[str],
                 window_size: Optional[int]) -> None:
        self.reduction = reduction
        self.x = x
        self.grid = grid
        self.ids = ids
        self.rel_pos_type = rel_pos_type
        self.grid_windows = GridWindows(grid, window_size) \
            if window_size else None
        self.migration: Optional[MigrationState] = None
        self.kept_windows: Optional[SlotWindows] = None
        self._rel_pos: Dict[str, Optional[Tensor]] = {}

    def keep(self, index: int) -> None:
        """Before main block ``index``: drop tokens if the strategy starts
        there."""
        if index != self.reduction.start_block:
            return
        window_size = self.grid_windows.size if self.grid_windows else None
        self.migration, self.kept_windows = self.reduction.select(
            self.x, self.grid, window_size)
        self.x = keep_tokens(self.x, self.migration)
        self.ids = self.migration.kept_ids
        self._rel_pos.clear()

    def block_input(
            self, windowed: bool
    ) -> Tuple[Tensor, Optional[Tensor], Optional[Windows]]:
        """The tokens a block runs on, their relative positions and windows
        (None: global attention)."""
        if not windowed:
            return self.x, self._positions('global', self.grid, self.ids), None
        windows = self.kept_windows or self.grid_windows
        x = restore_tokens(self.x, self.migration) \
            if self._full_grid_windows() else self.x
        return x, self._positions('windows', windows.window_grid,
                                  windows.local_ids), windows

    def block_output(self, x: Tensor, windowed: bool) -> None:
        """Take a block's output (of :meth:`block_input`'s tokens)."""
        if windowed and self._full_grid_windows():
            x = refresh(x, self.migration)
        self.x = x

    def restore(self) -> Tensor:
        """The full grid ``(B, N, C)`` (the visible units when masked)."""
        if self.migration is None:
            return self.x
        return restore_tokens(self.x, self.migration)

    def _full_grid_windows(self) -> bool:
        """Whether windowed blocks run on the restored full grid (global
        migration)."""
        return self.migration is not None and self.kept_windows is None

    def _positions(self, key: str, grid: Grid,
                   ids: Optional[Tensor]) -> Optional[Tensor]:
        """:func:`relative_positions`, once per set of tokens."""
        if key not in self._rel_pos:
            self._rel_pos[key] = relative_positions(self.rel_pos_type, grid,
                                                    ids, self.x.device)
        return self._rel_pos[key]

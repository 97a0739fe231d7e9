# Copyright (c) mmitpn contributors. All rights reserved.
from .position_encoding import (build_2d_sincos_pos_embed, decomposed_rel_pos,
                                relative_position_index, resize_pos_embed,
                                resize_rel_pos_bias_table)
from .token_reduction import (TOKEN_REDUCTIONS, TokenMigration, TokenReduction,
                              WindowTokenMigration, build_token_reduction)
from .transformer_blocks import (Attention, AttentionBlock, Mlp, MlpBlock,
                                 gather_rel_pos_index)
from .unit_ops import (UNIT_SIZE, PatchEmbed, PatchMerge, PatchSplit,
                       gather_units, map_to_units, units_to_map)
from .windows import GridWindows, SlotWindows

__all__ = [
    'build_2d_sincos_pos_embed', 'decomposed_rel_pos',
    'relative_position_index', 'resize_pos_embed', 'resize_rel_pos_bias_table',
    'TOKEN_REDUCTIONS', 'TokenMigration', 'TokenReduction',
    'WindowTokenMigration', 'build_token_reduction', 'Attention',
    'AttentionBlock', 'Mlp', 'MlpBlock', 'gather_rel_pos_index', 'UNIT_SIZE',
    'PatchEmbed', 'PatchMerge', 'PatchSplit', 'gather_units', 'map_to_units',
    'units_to_map', 'GridWindows', 'SlotWindows'
]

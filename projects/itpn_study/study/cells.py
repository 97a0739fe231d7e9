# Copyright (c) mmitpn contributors. All rights reserved.
"""Table cells of the study's reports."""
from typing import Optional

import numpy as np


def mean_std(values) -> str:
    """``mean ± sample std`` of the values given (``-`` for none)."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    if len(values) == 1:
        return f'{values[0]:.2f} (1 seed)'
    return f'{np.mean(values):.2f} ± {np.std(values, ddof=1):.2f}'


def difference_cell(diff: Optional[dict]) -> str:
    """``mean [low, high] (per seed)`` of a paired difference."""
    if diff is None:
        return '-'
    per_seed = ', '.join(f'{d:+.2f}' for d in diff['diffs'])
    return (f'{diff["mean"]:+.2f} [{diff["low"]:+.2f}, {diff["high"]:+.2f}]'
            f' ({per_seed})')

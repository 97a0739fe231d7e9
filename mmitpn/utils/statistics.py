# Copyright (c) mmitpn contributors. All rights reserved.
"""Paired comparisons over seeds, as the studies and fidelity tables report
them."""
from typing import Dict, Optional

import numpy as np


def paired_difference(first: Dict[int, float],
                      second: Dict[int, float],
                      confidence: float = 0.95) -> Optional[dict]:
    """Mean of ``first - second`` over the keys (seeds, checkpoints) both
    have, with a t-based interval.

    Args:
        first (dict): Value per seed.
        second (dict): Value per seed of what ``first`` is compared with.
        confidence (float): Two-sided coverage of the interval.

    Returns:
        dict or None: ``mean``, ``low``, ``high`` (the interval), ``diffs``
        and ``seeds``; None with fewer than 2 common seeds (no interval).
    """
    from scipy import stats
    seeds = sorted(set(first) & set(second))
    if len(seeds) < 2:
        return None
    diffs = np.array([first[s] - second[s] for s in seeds])
    half = stats.t.ppf(0.5 + confidence / 2,
                       len(diffs) - 1) * diffs.std(ddof=1) / np.sqrt(
                           len(diffs))
    return dict(
        mean=float(diffs.mean()),
        low=float(diffs.mean() - half),
        high=float(diffs.mean() + half),
        diffs=[float(d) for d in diffs],
        seeds=seeds)


def format_difference(diff: Optional[dict]) -> str:
    """``mean [low, high] (n)`` of a :func:`paired_difference`, or ``-``."""
    if diff is None:
        return '-'
    return (f'{diff["mean"]:+.2f} [{diff["low"]:+.2f}, {diff["high"]:+.2f}] '
            f'(n={len(diff["seeds"])})')

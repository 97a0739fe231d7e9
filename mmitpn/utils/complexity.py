# Copyright (c) mmitpn contributors. All rights reserved.
"""Multiply-accumulate counting for models of this package."""
from typing import Callable

from torch.utils.flop_counter import FlopCounterMode


def count_macs(fn: Callable[[], object]) -> int:
    """Multiply-accumulates of the matrix products and convolutions run by
    ``fn()`` (attention included; norms and activations are not counted,
    matching the reference tables). Works on the meta device, so large
    models can be measured without memory or time."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops() // 2

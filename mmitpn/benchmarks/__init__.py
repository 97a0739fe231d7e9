# Copyright (c) mmitpn contributors. All rights reserved.
"""The measurements behind ``tools/benchmarks/``: shared helpers here, the
cases in :mod:`.pretrain`, :mod:`.downstream` and :mod:`.gpu_check`."""
from .utils import (describe_machine, device, matmul_flops, peak_memory_mb,
                    reset_peak_memory, run_worker, synchronize, time_steps,
                    timed_steps)

__all__ = [
    'describe_machine', 'device', 'matmul_flops', 'peak_memory_mb',
    'reset_peak_memory', 'run_worker', 'synchronize', 'time_steps',
    'timed_steps'
]

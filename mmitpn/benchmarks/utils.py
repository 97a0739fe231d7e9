# Copyright (c) mmitpn contributors. All rights reserved.
"""What every benchmark measures with: the device, synchronisation, step
timing, peak memory, a worker process per measurement and the machine's
description."""
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from mmitpn.utils import describe_cpu


def device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def synchronize() -> None:
    """Wait for the work queued on the GPU (the CPU runs synchronously)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_peak_memory() -> None:
    """Start the GPU's peak-memory count afresh (see :func:`peak_memory_mb`).
    """
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb() -> float:
    """Peak allocated GPU memory since :func:`reset_peak_memory`, in MiB; on
    the CPU the process's peak resident memory, which only grows (run each
    measurement in its own process: :func:`run_worker`)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Wall seconds and CPU seconds of one timed call.
Timing = Tuple[float, float]


def time_steps(step: Callable[[], object],
               iters: int,
               warmup: int = 0,
               stop: Optional[Callable[[], bool]] = None) -> List[float]:
    """Seconds of each timed call of ``step``: the wall times of
    :func:`timed_steps`."""
    return [wall for wall, _ in timed_steps(step, iters, warmup, stop)]


def timed_steps(step: Callable[[], object],
                iters: int,
                warmup: int = 0,
                stop: Optional[Callable[[], bool]] = None) -> List[Timing]:
    """``(wall seconds, CPU seconds)`` of each timed call of ``step``.

    ``warmup`` untimed calls come first, then up to ``iters`` timed ones,
    each between two synchronisations of the device, in the process's own
    threads (``torch.get_num_threads()``; set ``OMP_NUM_THREADS`` to choose
    them). The CPU seconds are the time this process computed (all its
    threads, :func:`time.process_time`): on a shared machine the wall time
    also counts the time other processes held the core, the CPU time does
    not. When ``stop()`` becomes true, warm-up ends and timing ends after
    the step in progress (at least one step is always timed).
    """
    for _ in range(warmup):
        if stop is not None and stop():
            break
        step()
    times: List[Timing] = []
    while len(times) < iters and not (times and stop is not None and stop()):
        synchronize()
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        synchronize()
        times.append(
            (time.perf_counter() - start, time.process_time() - start_cpu))
    return times


def matmul_flops(dtype: torch.dtype,
                 size: int = 2048,
                 iters: int = 10) -> float:
    """Measured FLOP/s of ``size``-square matrix products on
    :func:`device` (median of ``iters``), the peak a step is compared to
    where no nominal one is known."""
    a = torch.randn(size, size, device=device(), dtype=dtype)
    seconds = statistics.median(time_steps(lambda: a @ a, iters, warmup=2))
    return 2 * size**3 / seconds


def cpu_name() -> str:
    """The CPU as ``lscpu`` names it (model name, family, model), or as
    :mod:`platform` does where there is no ``lscpu``."""
    try:
        listing = subprocess.run(['lscpu'],
                                 capture_output=True,
                                 text=True,
                                 check=True,
                                 env=dict(os.environ, LC_ALL='C')).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or platform.machine()
    fields: Dict[str, str] = {}
    for line in listing.splitlines():
        key, _, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
    name = fields.get('Model name') or platform.machine()
    if fields.get('CPU family') and fields.get('Model'):
        name += f', family {fields["CPU family"]}, model {fields["Model"]}'
    return name


def describe_machine(threads: Optional[int] = None,
                     gpu: Optional[bool] = None) -> str:
    """The line every result table starts with: the GPU by name (``gpu``;
    default: when there is one), else the CPU (:func:`cpu_name`, its
    vector capability and bf16 support) and the ``threads`` measured with
    (default: the process's); then the torch version."""
    if torch.cuda.is_available() if gpu is None else gpu:
        where = (f'{torch.cuda.get_device_name()} (CUDA '
                 f'{torch.version.cuda})')
    else:
        threads = threads or torch.get_num_threads()
        where = (f'{cpu_name()} CPU ({describe_cpu()}), {threads} '
                 f'thread{"s" if threads > 1 else ""}')
    return f'{where}, torch {torch.__version__}'


def run_worker(script: str, argv: Sequence[str], what: str) -> dict:
    """Run ``python script argv`` in a fresh process (its own thread pools
    and peak memory) and return the JSON object its last output line holds.

    Raises:
        RuntimeError: The worker failed; the message names ``what`` and
            ends with the worker's error output.
    """
    result = subprocess.run([sys.executable, script, *argv],
                            capture_output=True,
                            text=True)
    if result.returncode != 0:
        # A negative code is the signal that ended it (-9: the kernel's
        # out-of-memory killer, or a user).
        raise RuntimeError(f'{what} failed with exit code '
                           f'{result.returncode}:\n{result.stderr[-4000:]}')
    return json.loads(result.stdout.strip().splitlines()[-1])

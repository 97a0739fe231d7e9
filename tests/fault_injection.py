# Copyright (c) mmitpn contributors. All rights reserved.
"""Hooks that break their own training run: a kill, a failed write."""
import glob
import os
import resource
import signal

from mmengine.hooks import Hook
from mmengine.registry import HOOKS


@HOOKS.register_module()
class KillAtIterationHook(Hook):
    """SIGKILL the process before the given iteration: no clean-up runs."""

    def __init__(self, iteration: int) -> None:
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.iteration:
            os.kill(os.getpid(), signal.SIGKILL)


@HOOKS.register_module()
class FailCheckpointWriteHook(Hook):
    """Make the write of checkpoint number ``failing_save`` (1-based) fail
    half way: the process may not grow a file beyond half the size of the
    previous checkpoint (``RLIMIT_FSIZE``), as a disk that fills up would.
    """

    def __init__(self, failing_save: int) -> None:
        self.failing_save = failing_save
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        self.saves += 1
        if self.saves != self.failing_save:
            return
        previous = max(
            glob.glob(os.path.join(runner.work_dir, '*.pth')),
            key=os.path.getmtime)
        limit = os.path.getsize(previous) // 2
        # Over-limit writes then fail with EFBIG instead of killing us.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

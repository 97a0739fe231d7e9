# Copyright (c) mmitpn contributors. All rights reserved.
"""Hooks that break their own training run: a kill, a failed write, a
signal, a crash, a slow save."""
import glob
import os
import resource
import signal

import torch
from mmengine.dist import get_rank
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


@HOOKS.register_module()
class SignalAtIterationHook(Hook):
    """Send ``signal`` to this very process before the given iteration, on
    the given ranks only (all by default): a preemption notice that reaches
    the processes of a job at different times, or only some of them."""

    def __init__(self, iteration: int, signal='SIGUSR1', ranks=None) -> None:
        self.iteration = iteration
        self.signal = signal
        self.ranks = ranks

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.iteration and (self.ranks is None
                                              or get_rank() in self.ranks):
            os.kill(os.getpid(), getattr(signal, self.signal))


@HOOKS.register_module()
class CrashAtIterationHook(Hook):
    """Exit at once (no clean-up, as a lost node) before the given
    iteration on the given rank, in the first attempt of a torchrun job
    only (``TORCHELASTIC_RESTART_COUNT`` 0)."""

    def __init__(self, iteration: int, rank: int = 0) -> None:
        self.iteration = iteration
        self.rank = rank

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.iteration and get_rank() == self.rank and \
                os.environ.get('TORCHELASTIC_RESTART_COUNT', '0') == '0':
            os._exit(1)


@HOOKS.register_module()
class SlowSaveHook(Hook):
    """Make checkpoints large (``megabytes`` of padding) so that writing
    them takes a while, and create ``<work_dir>/saving`` when a save
    begins: a test can then signal the process during the save."""

    def __init__(self, megabytes: int = 64) -> None:
        self.megabytes = megabytes

    def before_save_checkpoint(self, runner, checkpoint) -> None:
        checkpoint['padding'] = torch.zeros(self.megabytes * 2**18)
        open(os.path.join(runner.work_dir, 'saving'), 'w').close()

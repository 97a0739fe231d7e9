# Copyright (c) mmitpn contributors. All rights reserved.
"""Turn a scheduler's signal into a checkpoint and a clean exit."""
import json
import os
import os.path as osp
import signal
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.dist import all_reduce, barrier, is_main_process
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop, IterBasedTrainLoop

from mmitpn.registry import HOOKS
from mmitpn.utils.atomic_file import write_atomically
from ..loops import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop
from .safe_checkpoint_hook import SafeCheckpointHook

# EX_TEMPFAIL of sysexits.h: stopped on request, to be run again.
PREEMPTED_EXIT_CODE = 75
# Written in the work dir by the main process once the checkpoint of a
# stop is complete; tools/slurm_train.sh requeues the job when it is there.
STOP_RECORD = 'preempted.json'

SignalName = Union[str, int]


class TrainingPreempted(SystemExit):
    """Training stopped on a signal after saving a checkpoint; exits the
    process with :data:`PREEMPTED_EXIT_CODE`."""


def parse_signal(name: SignalName) -> signal.Signals:
    """``'SIGUSR1'``, ``'USR1'`` or ``10`` as a :class:`signal.Signals`."""
    try:
        if isinstance(name, int):
            return signal.Signals(name)
        name = name.upper()
        return signal.Signals[name if name.startswith('SIG') else 'SIG' + name]
    except (KeyError, ValueError):
        raise ValueError(
            f'PreemptionHook: {name!r} is not a signal of this system; use '
            'a name such as SIGTERM or SIGUSR1.') from None


@HOOKS.register_module()
class PreemptionHook(Hook):
    """On SIGTERM or SIGUSR1, finish the iteration, save a checkpoint that
    resumes exactly there, and exit with code 75 on every process.

    Cluster schedulers announce the end of a job with a signal some seconds
    before they kill it (Slurm's ``--signal=USR1@120``, ``scancel``,
    preemption, torchrun forwarding its own SIGTERM, Kubernetes). With this
    hook training does not die mid-epoch but:

    1. the signal handler only sets a flag, whatever the process is doing
       (a second or third signal, during the save too, changes nothing);
    2. every ``sync_interval`` iterations all processes agree whether any
       of them received a signal (an all-reduce of one flag), so that they
       stop after the same iteration even when the signal reached only
       some of them, or reached them at different times; with gradient
       accumulation they go on to the next optimizer step;
    3. the main process writes ``iter_<n>.pth`` through the config's
       :class:`SafeCheckpointHook` (atomic, ``last_checkpoint`` updated),
       with the loop's position inside the epoch, then ``preempted.json``
       (which checkpoint, which signals) in the work dir;
    4. all processes wait for the save, then exit with
       :data:`PREEMPTED_EXIT_CODE` (75) by raising
       :class:`TrainingPreempted`.

    A signal during validation inside training is acted upon when the
    validation ends. The time from the signal to the exit is at most
    ``sync_interval`` iterations (plus the rest of a validation run) plus
    the save; the log states it. The data-loader workers of
    :class:`~mmitpn.engine.loops.ResumableEpochBasedTrainLoop` and
    :class:`~mmitpn.engine.loops.ResumableIterBasedTrainLoop` leave the
    signals to the training process, so that one sent to every process of
    the job (as torchrun and Slurm do) does not kill them.

    Needs ``default_hooks.checkpoint`` to be ``mmitpn.SafeCheckpointHook``,
    and for an exact resume
    :class:`~mmitpn.engine.loops.ResumableEpochBasedTrainLoop` (or
    :class:`~mmitpn.engine.loops.ResumableIterBasedTrainLoop`) and
    :class:`~mmitpn.engine.hooks.IterationSeedHook`.

    Args:
        signals (Sequence[str | int]): Signals that stop training. Defaults
            to ``('SIGTERM', 'SIGUSR1')``.
        sync_interval (int): Iterations between agreements. Each costs one
            all-reduce of a single number. Defaults to 1.
    """

    priority = 'LOWEST'  # after the logger and checkpoint hooks

    def __init__(self,
                 signals: Sequence[SignalName] = ('SIGTERM', 'SIGUSR1'),
                 sync_interval: int = 1) -> None:
        if isinstance(signals, (str, int)):
            signals = [signals]
        self.signals = [parse_signal(name) for name in signals]
        if sync_interval < 1:
            raise ValueError(
                f'PreemptionHook: sync_interval={sync_interval}, it must be '
                '>= 1 (iterations between agreements).')
        self.sync_interval = sync_interval
        self.received: List[Tuple[signal.Signals, float]] = []
        self._previous: Dict[signal.Signals, object] = {}
        self._stop_requested = False
        self.checkpoint_hook: Optional[SafeCheckpointHook] = None

    def _on_signal(self, signum: int, frame) -> None:
        # Only record: a handler may run at any point of the main thread.
        self.received.append((signal.Signals(signum), time.monotonic()))

    def before_train(self, runner) -> None:
        hooks = [h for h in runner.hooks if isinstance(h, SafeCheckpointHook)]
        if not hooks:
            raise ValueError(
                'PreemptionHook saves through mmitpn.SafeCheckpointHook; set '
                "default_hooks.checkpoint.type='mmitpn.SafeCheckpointHook'.")
        self.checkpoint_hook = hooks[0]
        loop = runner.train_loop
        if isinstance(loop, EpochBasedTrainLoop) and not isinstance(
                loop, ResumableEpochBasedTrainLoop):
            runner.logger.warning(
                'PreemptionHook: with EpochBasedTrainLoop a checkpoint saved '
                'on a signal resumes at the start of its epoch (mmengine '
                "does); train_cfg.type='mmitpn.ResumableEpochBasedTrainLoop' "
                'resumes it where it stopped.')
        elif isinstance(loop, IterBasedTrainLoop) and not isinstance(
                loop, ResumableIterBasedTrainLoop):
            runner.logger.warning(
                'PreemptionHook: IterBasedTrainLoop does not resume '
                'exactly: the batches after the checkpoint get other '
                'augmentations, and mmengine 0.10.7 loads and discards the '
                "batches already trained; train_cfg.type='mmitpn."
                "ResumableIterBasedTrainLoop' skips them without loading "
                'and resumes exactly.')
        if is_main_process():
            record = osp.join(runner.work_dir, STOP_RECORD)
            if osp.isfile(record):
                os.remove(record)
        if threading.current_thread() is not threading.main_thread():
            runner.logger.warning(
                'PreemptionHook: training runs outside the main thread, '
                'where signals cannot be handled; it stays inactive.')
            return
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._on_signal)

    def after_train(self, runner) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _any_process_signalled(self) -> bool:
        flag = torch.tensor([1 if self.received else 0])
        all_reduce(flag, op='max')
        return bool(flag.item())

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        if not self._previous:
            return
        finished = runner.iter + 1
        if not self._stop_requested and finished % self.sync_interval == 0:
            self._stop_requested = self._any_process_signalled()
        if self._stop_requested and finished % \
                self.checkpoint_hook.accumulation_steps(runner) == 0:
            self._stop(runner, runner.epoch, finished)

    def after_val_epoch(self, runner, metrics=None) -> None:
        # Only validation inside training: every process runs it.
        if self._previous and (self._stop_requested
                               or self._any_process_signalled()):
            self._stop(runner, runner.epoch, runner.iter)

    def _stop(self, runner, epoch: int, iteration: int) -> None:
        """Save a checkpoint at (epoch, iteration) and exit."""
        names = sorted({signum.name for signum, _ in self.received})
        cause = ', '.join(names) + ' received' if names else \
            'another process received a signal'
        runner.logger.warning(f'{cause}: saving a checkpoint after iteration '
                              f'{iteration}, then stopping.')
        began = time.monotonic()
        path = self.checkpoint_hook.save_iteration_checkpoint(
            runner, epoch, iteration)
        if is_main_process():
            write_atomically(
                json.dumps(
                    dict(
                        checkpoint=path,
                        epoch=epoch,
                        iteration=iteration,
                        signals=names,
                        exit_code=PREEMPTED_EXIT_CODE)),
                osp.join(runner.work_dir, STOP_RECORD))
        barrier()
        saved = time.monotonic()
        timing = f'saved in {saved - began:.2f} s'
        if self.received:
            timing += f', {saved - self.received[0][1]:.2f} s after the signal'
        during = sum(began <= at <= saved for _, at in self.received[1:])
        if during:
            timing += (f'; {during} more signal(s) arrived during the save '
                       'and changed nothing')
        runner.logger.warning(
            f'{path} {timing}. Exiting with code {PREEMPTED_EXIT_CODE}; '
            'the next run with --resume continues from here (Slurm requeues '
            'and torchrun restarts resume by themselves).')
        self._restore_handlers()
        runner.visualizer.close()
        raise TrainingPreempted(PREEMPTED_EXIT_CODE)

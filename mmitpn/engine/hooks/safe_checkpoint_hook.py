# Copyright (c) mmitpn contributors. All rights reserved.
"""Checkpoints that are safe to write, to read and to resume from."""
import glob
import os.path as osp
from typing import List, Optional

import numpy as np
import torch
from mmengine.dist import barrier, is_main_process
from mmengine.hooks import CheckpointHook
from mmengine.logging import HistoryBuffer
from mmengine.optim import OptimWrapperDict
from mmengine.runner import find_latest_checkpoint

from mmitpn.registry import HOOKS
from mmitpn.utils.atomic_file import ATOMIC_BACKEND, write_atomically
from mmitpn.utils.checkpoint import (checkpoint_problem,
                                     refuse_unsafe_checkpoint)

BUFFER_KEYS = {'log_history', 'count_history', 'max_length'}
KEPT_KEY = 'mmitpn_kept_checkpoints'
KEPT_ITERATIONS_KEY = 'mmitpn_kept_iteration_checkpoints'
ITERATION_TEMPLATE = 'iter_{}.pth'


def plain_data(value):
    """numpy scalars and arrays as Python numbers and lists, recursively."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return type(value)((k, plain_data(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(v) for v in value)
    return value


def message_hub_as_tensors(state: dict) -> dict:
    """A message hub state dict with tensors in place of its history
    buffers and plain numbers in place of numpy scalars, so that a
    tensors-only ``torch.load`` reads it exactly."""
    scalars = {
        name:
        dict(
            log_history=torch.from_numpy(np.asarray(buffer.data[0])),
            count_history=torch.from_numpy(np.asarray(buffer.data[1])),
            max_length=buffer.max_length)
        for name, buffer in state['log_scalars'].items()
    }
    return dict(
        state,
        log_scalars=scalars,
        runtime_info=plain_data(state['runtime_info']))


def message_hub_from_tensors(state: dict) -> None:
    """Rebuild, in place, the history buffers that
    :func:`message_hub_as_tensors` stored (mmengine's own ones are left as
    loaded)."""
    scalars = state.get('log_scalars', {})
    for name, value in list(scalars.items()):
        if isinstance(value, dict) and set(value) == BUFFER_KEYS:
            scalars[name] = HistoryBuffer(value['log_history'].numpy(),
                                          value['count_history'].numpy(),
                                          value['max_length'])


@HOOKS.register_module()
class SafeCheckpointHook(CheckpointHook):
    """mmengine's ``CheckpointHook`` whose checkpoints are written
    atomically, load exactly as tensors only, and are skipped by auto
    resume when unreadable.

    - **Atomic writes**: by default (``backend_args=None``) files go
      through :class:`~mmitpn.utils.atomic_file.AtomicLocalBackend`: a
      checkpoint is complete or absent, never half written, and one that
      does not fit on the disk fails before it is written. ``last_checkpoint``
      is updated only after a checkpoint is complete, and with
      ``max_keep_ckpts`` old checkpoints are removed only after the new one
      is complete (mmengine removes them before saving, so a failed save
      with ``max_keep_ckpts=1`` would leave none).
    - **Exact, safe resume under any launcher**: the message hub is stored
      as tensors and numbers (mmengine stores ``HistoryBuffer`` and numpy
      objects, which torch's weights-only load reads only where mmitpn is
      imported) and rebuilt when the checkpoint is loaded. A run's own
      checkpoints therefore resume exactly through mmitpn's, mmpretrain's,
      mmdet's or mmseg's ``train.py`` or a plain ``Runner.from_cfg``, while
      no checkpoint, own or foreign, is ever fully unpickled; a checkpoint
      to be loaded that holds other objects is refused, naming the file.
    - **Auto resume past an unreadable checkpoint** (``resume=True`` without
      ``load_from``, i.e. ``--resume``): if the checkpoint that
      ``last_checkpoint`` names is truncated or not a checkpoint, the run
      resumes from the newest readable checkpoint of the same folder, with
      a warning naming the unreadable one, and ``last_checkpoint`` is
      updated.
    - **Checkpoints inside long epochs** (``iter_interval``): with
      ``by_epoch=True``, also every ``iter_interval`` iterations as
      ``iter_<n>.pth``, of which the newest ``max_keep_iter_ckpts`` are kept
      (apart from the epoch checkpoints), so that a run killed without
      warning loses at most ``iter_interval`` iterations. With
      :class:`~mmitpn.engine.loops.ResumableEpochBasedTrainLoop` they
      resume exactly. :class:`~mmitpn.engine.hooks.PreemptionHook` writes
      its checkpoints the same way (:meth:`save_iteration_checkpoint`).

    Accepts every argument of mmengine's ``CheckpointHook``, and:

    Args:
        iter_interval (int): Save an iteration checkpoint every this many
            iterations inside epochs (a multiple of the optimizer's
            gradient accumulation). 0 (default) saves none.
        max_keep_iter_ckpts (int): Iteration checkpoints kept; -1 keeps all.
            Defaults to 1.
    """

    def __init__(self,
                 *args,
                 max_keep_ckpts: int = -1,
                 iter_interval: int = 0,
                 max_keep_iter_ckpts: int = 1,
                 backend_args: Optional[dict] = None,
                 **kwargs):
        if backend_args is None and kwargs.get('file_client_args') is None:
            backend_args = dict(backend=ATOMIC_BACKEND)
        super().__init__(
            *args, max_keep_ckpts=-1, backend_args=backend_args, **kwargs)
        if iter_interval < 0 or (iter_interval and not self.by_epoch):
            raise ValueError(
                f'iter_interval={iter_interval}: it adds iteration '
                'checkpoints to epoch ones (by_epoch=True) and must be >= 0; '
                'with by_epoch=False, interval counts iterations already.')
        if max_keep_iter_ckpts == 0 or max_keep_iter_ckpts < -1:
            raise ValueError(
                f'max_keep_iter_ckpts={max_keep_iter_ckpts}: keep at least '
                'one iteration checkpoint, or all with -1.')
        self.keep = max_keep_ckpts
        self.kept: List[str] = []
        self.iter_interval = iter_interval
        self.keep_iterations = max_keep_iter_ckpts
        self.kept_iterations: List[str] = []
        # The iteration checkpoint being written, and the last one written.
        self._saving: Optional[str] = None
        self._saved: Optional[str] = None

    def before_train(self, runner) -> None:
        super().before_train(runner)
        self.kept = list(runner.message_hub.get_info(KEPT_KEY, []))
        self.kept_iterations = list(
            runner.message_hub.get_info(KEPT_ITERATIONS_KEY, []))
        steps = self.accumulation_steps(runner)
        if self.iter_interval % steps:
            raise ValueError(
                f'default_hooks.checkpoint.iter_interval={self.iter_interval} '
                f'is not a multiple of the gradient accumulation ({steps} '
                'steps): a checkpoint inside an accumulation would lose the '
                'gradients gathered so far. Use a multiple of it.')

    @staticmethod
    def accumulation_steps(runner) -> int:
        """The optimizer's gradient accumulation (1 without)."""
        wrappers = runner.optim_wrapper
        wrappers = list(wrappers.values()) if isinstance(
            wrappers, OptimWrapperDict) else [wrappers]
        return max(
            getattr(wrapper, '_accumulative_counts', 1)
            for wrapper in wrappers)

    def after_train_epoch(self, runner) -> None:
        super().after_train_epoch(runner)
        self._remove_old(runner)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        super().after_train_iter(runner, batch_idx, data_batch, outputs)
        self._remove_old(runner)
        due = self.iter_interval and self.every_n_train_iters(
            runner, self.iter_interval)
        if due and not self._epoch_checkpoint_next(runner, batch_idx):
            self.save_iteration_checkpoint(runner, runner.epoch,
                                           runner.iter + 1)

    def _epoch_checkpoint_next(self, runner, batch_idx: int) -> bool:
        """Whether an epoch checkpoint follows this iteration at once."""
        return self.end_of_epoch(runner.train_dataloader, batch_idx) and (
            self.every_n_epochs(runner, self.interval, self.save_begin)
            or self.save_last and self.is_last_train_epoch(runner))

    def save_iteration_checkpoint(self, runner, epoch: int,
                                  iteration: int) -> str:
        """Save ``iter_<iteration>.pth`` (once per iteration), whose meta
        resumes at ``epoch`` (0-based) after ``iteration`` iterations; point
        ``last_checkpoint`` at it and drop the oldest iteration checkpoints
        beyond ``max_keep_iter_ckpts``. Called on every rank; the main
        process writes. Returns the checkpoint's path."""
        path = self.file_backend.join_path(
            self.out_dir, ITERATION_TEMPLATE.format(iteration))
        if path == self._saved:
            return path
        self._saving = path
        try:
            runner.save_checkpoint(
                self.out_dir,
                ITERATION_TEMPLATE.format(iteration),
                self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler,
                meta=dict(epoch=epoch, iter=iteration),
                by_epoch=False,
                backend_args=self.backend_args,
                **self.args)
        finally:
            self._saving = None
        self._saved = path
        keep = self._iterations_to_keep(path)
        if is_main_process():
            write_atomically(path, osp.join(runner.work_dir,
                                            'last_checkpoint'))
            for old in self.kept_iterations:
                if old not in keep and self.file_backend.isfile(old):
                    self.file_backend.remove(old)
        self.kept_iterations = keep
        runner.message_hub.update_info(KEPT_ITERATIONS_KEY, keep)
        return path

    def _iterations_to_keep(self, path: str) -> List[str]:
        """The iteration checkpoints to keep once ``path`` is complete."""
        kept = [old for old in self.kept_iterations if old != path] + [path]
        return kept if self.keep_iterations < 0 else \
            kept[-self.keep_iterations:]

    def after_val_epoch(self, runner, metrics) -> None:
        super().after_val_epoch(runner, metrics)
        self._remove_old(runner)

    def _to_keep(self) -> List[str]:
        """The checkpoints to keep once the one being saved is complete."""
        kept = [path for path in self.kept if path != self.last_ckpt]
        return (kept + [self.last_ckpt])[-self.keep:]

    def _remove_old(self, runner) -> None:
        """Once a new checkpoint is complete, drop the oldest beyond
        ``max_keep_ckpts``."""
        if self.keep <= 0 or self.last_ckpt is None or \
                self.kept[-1:] == [self.last_ckpt]:
            return
        keep = self._to_keep()
        for path in self.kept:
            if path not in keep and is_main_process() and \
                    self.file_backend.isfile(path):
                self.file_backend.remove(path)
        self.kept = keep
        runner.message_hub.update_info(KEPT_KEY, keep)

    def before_run(self, runner) -> None:
        super().before_run(runner)
        self._skip_unreadable_latest(runner)
        load = runner.cfg.get('load_from')
        if load is None and runner.cfg.get('resume', False):
            load = find_latest_checkpoint(runner.work_dir)
        if load is not None and osp.isfile(osp.expanduser(load)):
            # mmengine's loader would refuse it without naming it.
            refuse_unsafe_checkpoint(osp.expanduser(load))

    def _skip_unreadable_latest(self, runner) -> None:
        if not runner.cfg.get('resume', False) or \
                runner.cfg.get('load_from') is not None:
            return
        latest = find_latest_checkpoint(runner.work_dir)
        problem = None if latest is None else checkpoint_problem(latest)
        if problem is None:
            return
        # An empty last_checkpoint (cut short while written) names no file.
        folder = osp.dirname(latest) if latest else runner.work_dir
        fallback = self._newest_readable(folder, latest)
        if fallback is None:
            raise ValueError(
                f'Cannot resume: the latest checkpoint {latest} is unreadable '
                f'({problem}) and no other checkpoint beside it is readable. '
                'Restore a checkpoint there, or train afresh without '
                '--resume.')
        runner.logger.warning(
            f'Auto resume: the latest checkpoint {latest} is unreadable '
            f'({problem}); resuming from {fallback}, the newest readable '
            'checkpoint beside it.')
        if is_main_process():
            write_atomically(fallback,
                             osp.join(runner.work_dir, 'last_checkpoint'))
        barrier()

    @staticmethod
    def _newest_readable(folder: str, unreadable: str) -> Optional[str]:
        candidates = sorted(
            glob.glob(osp.join(folder, '*.pth')), key=osp.getmtime)
        for path in reversed(candidates):
            if osp.abspath(path) != osp.abspath(unreadable) and \
                    checkpoint_problem(path) is None:
                return path
        return None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if 'message_hub' in checkpoint:
            # What a run resumed from this checkpoint will have to prune.
            runtime_info = checkpoint['message_hub']['runtime_info']
            if self.keep > 0 and self.last_ckpt is not None:
                runtime_info[KEPT_KEY] = self._to_keep()
            if self._saving is not None:
                runtime_info[KEPT_ITERATIONS_KEY] = \
                    self._iterations_to_keep(self._saving)
            checkpoint['message_hub'] = message_hub_as_tensors(
                checkpoint['message_hub'])
        if 'meta' in checkpoint:
            checkpoint['meta'] = plain_data(checkpoint['meta'])

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        message_hub_from_tensors(checkpoint.get('message_hub', {}))

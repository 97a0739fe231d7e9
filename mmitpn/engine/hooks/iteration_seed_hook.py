# Copyright (c) mmitpn contributors. All rights reserved.
"""Seed every training iteration, so that resumed runs continue exactly."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmitpn.registry import HOOKS
from ..loops import ResumableEpochBasedTrainLoop

# The forward's stream, apart from the data-loading one of the same
# iteration.
MODEL_STREAM = 1


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Re-seed Python, numpy and torch from (seed, rank, iteration).

    mmengine seeds once at start-up, so after a resume the masks drawn in
    the model and the augmentations of in-process data loading would differ
    from an uninterrupted run. Here the random streams of iteration ``i``
    are a function of the run's seed, the rank and ``i`` only, twice over:

    - after iteration ``i - 1`` (and at the start of a run resumed at
      ``i``), for what is drawn while batch ``i`` is loaded in the training
      process;
    - just before iteration ``i``'s forward, from a second stream, for the
      model (drop path, dropout, masks not drawn per sample), whatever data
      loading, hooks or a resumed run's start-up drew meanwhile.

    A run resumed from any checkpoint therefore reproduces the
    uninterrupted one exactly, on any number of ranks. Re-seeding costs
    microseconds per iteration.

    What is exact after a resume: everything drawn in the training process
    (masks, drop path, dropout, and the augmentations when the data loader
    has ``num_workers=0``). Data-loader *worker processes* draw their
    augmentations from their own random streams, which restart with the
    workers; with ``num_workers > 0`` a resumed run sees differently
    augmented images than an uninterrupted one (the same images, in the
    same order), unless the loop seeds every sample itself
    (:class:`~mmitpn.engine.loops.ResumableEpochBasedTrainLoop` does). A
    resumed run logs which case applies.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _reseed(runner, step: int, *stream: int) -> None:
        seed = runner.seed if runner.seed is not None else 0
        state = np.random.SeedSequence([seed, get_rank(), step, *stream])
        value = int(state.generate_state(1, dtype=np.uint32)[0])
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)

    def before_train(self, runner) -> None:
        self._reseed(runner, runner.iter)
        if runner.iter == 0:
            return
        workers = runner.train_dataloader.num_workers
        if isinstance(runner.train_loop, ResumableEpochBasedTrainLoop):
            runner.logger.info(
                f'Resumed at iteration {runner.iter}: every sample is '
                'augmented from its own seed, the continuation is exact.')
        elif workers > 0:
            runner.logger.warning(
                f'Resumed at iteration {runner.iter}: model randomness '
                '(masks, drop path) continues exactly, but the data loader\'s '
                f'{workers} worker processes restart their random streams, '
                'so augmentations differ from an uninterrupted run. Set '
                'train_dataloader.num_workers=0 for an exact continuation.')
        else:
            runner.logger.info(
                f'Resumed at iteration {runner.iter}: data loading runs in '
                'the training process, the continuation is exact.')

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        self._reseed(runner, runner.iter, MODEL_STREAM)

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        # runner.iter still counts the finished iteration here.
        self._reseed(runner, runner.iter + 1)

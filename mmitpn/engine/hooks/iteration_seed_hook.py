# Copyright (c) mmitpn contributors. All rights reserved.
"""Seed every training iteration, so that resumed runs continue exactly."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmitpn.registry import HOOKS


@HOOKS.register_module()
class IterationSeedHook(Hook):
    """Re-seed Python, numpy and torch from (seed, rank, iteration).

    mmengine seeds once at start-up, so after a resume the masks drawn in
    the model and the augmentations of in-process data loading would differ
    from an uninterrupted run. Here the random streams of iteration ``i``
    (its model forward and the loading of batch ``i + 1``) are a function
    of the run's seed, the rank and ``i`` only: a run resumed from an
    epoch-end checkpoint reproduces the uninterrupted one exactly, on any
    number of ranks. Re-seeding costs microseconds per iteration.

    What is exact after a resume: everything drawn in the training process
    (masks, drop path, dropout, and the augmentations when the data loader
    has ``num_workers=0``). Data-loader *worker processes* draw their
    augmentations from their own random streams, which restart with the
    workers; with ``num_workers > 0`` a resumed run sees differently
    augmented images than an uninterrupted one (the same images, in the
    same order). A resumed run logs which case applies.
    """

    priority = 'VERY_HIGH'

    @staticmethod
    def _reseed(runner, step: int) -> None:
        seed = runner.seed if runner.seed is not None else 0
        state = np.random.SeedSequence([seed, get_rank(), step])
        value = int(state.generate_state(1, dtype=np.uint32)[0])
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)

    def before_train(self, runner) -> None:
        self._reseed(runner, runner.iter)
        if runner.iter == 0:
            return
        workers = runner.train_dataloader.num_workers
        if workers > 0:
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

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        # runner.iter still counts the finished iteration here.
        self._reseed(runner, runner.iter + 1)

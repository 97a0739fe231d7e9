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
    number of ranks. Re-seeding costs microseconds per iteration. Worker
    processes of the data loader are seeded by mmengine and need nothing.
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

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs=None) -> None:
        # runner.iter still counts the finished iteration here.
        self._reseed(runner, runner.iter + 1)

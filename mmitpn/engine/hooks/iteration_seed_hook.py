# Copyright (c) mmitpn contributors. All rights reserved.
"""Seed every training iteration, so that resumed runs continue exactly."""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from mmitpn.registry import HOOKS
from ..loops import ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop

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

    A run resumed from any checkpoint therefore draws what the
    uninterrupted one draws, on any number of ranks. Re-seeding costs
    microseconds per iteration.

    What this makes exact after a resume: everything the model draws
    (masks, drop path, dropout). The data is exact only if the loop
    continues the interrupted batch stream and seeds every sample itself,
    as :class:`~mmitpn.engine.loops.ResumableEpochBasedTrainLoop` and
    :class:`~mmitpn.engine.loops.ResumableIterBasedTrainLoop` do; mmengine's
    loops restart the epoch, or load and discard the batches already
    trained, and augment from restarted random streams. A resumed run logs
    which case applies.
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
        loop = runner.train_loop
        resumable = (ResumableEpochBasedTrainLoop, ResumableIterBasedTrainLoop)
        if isinstance(loop, resumable):
            runner.logger.info(
                f'Resumed at iteration {runner.iter}: every sample is '
                'augmented from its own seed, the continuation is exact.')
        else:
            runner.logger.warning(
                f'Resumed at iteration {runner.iter} with '
                f'{type(loop).__name__}: model randomness (masks, drop path) '
                'continues exactly, the data does not (mmengine\'s loops '
                'restart the epoch, or load and discard the batches already '
                'trained, drawing augmentations from restarted streams). '
                "train_cfg.type='mmitpn.ResumableEpochBasedTrainLoop' or "
                "'mmitpn.ResumableIterBasedTrainLoop' continues exactly.")

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

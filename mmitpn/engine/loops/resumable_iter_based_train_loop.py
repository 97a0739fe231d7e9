# Copyright (c) mmitpn contributors. All rights reserved.
"""An iteration-based training loop that resumes exactly without reloading
the batches already trained."""
from typing import Dict, List, Optional, Tuple, Union

from mmengine.runner import BaseLoop, IterBasedTrainLoop
from mmengine.runner.utils import calc_dynamic_intervals
from torch.utils.data import DataLoader

from mmitpn.registry import LOOPS
from .seeded_loader import IterationBatches, build_seeded_loader

# The sampler seed the run shuffles with, in the message hub (and so in
# every checkpoint).
SAMPLER_SEED_KEY = 'mmitpn_sampler_seed'


@LOOPS.register_module()
class ResumableIterBasedTrainLoop(IterBasedTrainLoop):
    """mmengine's ``IterBasedTrainLoop`` whose resume is exact and does not
    load the batches already trained.

    mmengine resumes an iteration-based run at iteration ``n`` by loading
    and discarding ``n`` batches (at 80,000 of a 160k-iteration ADE20K
    schedule, every image decoded and augmented once more before training
    goes on), and the batches after that are augmented from the restarted
    random streams of the data loader's workers. This loop instead:

    - skips the first ``n`` batches by drawing their indices only (no data
      is loaded), so it trains on exactly the samples the interrupted run
      had not yet seen, in the same order, batched the same way;
    - augments every sample from generators seeded by (seed, iteration,
      dataset index), in the training process or in any data-loader worker
      (:func:`~mmitpn.utils.sample_seeding.sample_random_state`);
    - shuffles with the sampler seed of the interrupted run, also when the
      config leaves it random (``randomness.seed=None``);
    - leaves the stop signals handled by the training process
      (:class:`~mmitpn.engine.hooks.PreemptionHook`'s) to it in its
      data-loader workers.

    With :class:`~mmitpn.engine.hooks.IterationSeedHook` for the model's
    randomness, a run interrupted anywhere and resumed ends with the same
    weights as an uninterrupted one. ``runner.train_dataloader`` stays the
    configured loader.

    A sampler that ends (mmengine's ``DefaultSampler``) is read again with
    its epoch set to the number of passes, as mmengine's loop does; with
    mmengine's ``InfiniteSampler`` (mmseg's and mmdet's iteration-based
    configs) the index stream is the configured one.

    Accepts the arguments of mmengine's ``IterBasedTrainLoop``.
    """

    def __init__(
            self,
            runner,
            dataloader: Union[DataLoader, Dict],
            max_iters: int,
            val_begin: int = 1,
            val_interval: int = 1000,
            dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        # Not IterBasedTrainLoop.__init__: it starts iterating the loader at
        # once (its workers prefetch and mmengine's InfiniteSampler shares
        # one index stream between iterators), before a resumed run knows
        # its sampler seed and position.
        BaseLoop.__init__(self, runner, dataloader)
        if int(max_iters) != max_iters:
            raise ValueError(f'train_cfg.max_iters={max_iters!r} is not an '
                             'integer.')
        self._max_iters = int(max_iters)
        self._max_epochs = 1
        self._epoch = 0
        self._iter = 0
        self.val_begin = val_begin
        self.val_interval = val_interval
        self.stop_training = False  # set by EarlyStoppingHook
        if hasattr(self.dataloader.dataset, 'metainfo'):
            self.runner.visualizer.dataset_meta = \
                self.dataloader.dataset.metainfo
        self.dynamic_milestones, self.dynamic_intervals = \
            calc_dynamic_intervals(self.val_interval, dynamic_intervals)
        self._loader, self._batches, self._worker_start = build_seeded_loader(
            self.dataloader, IterationBatches)

    def run(self):
        """Train from the current (possibly resumed) iteration to
        ``max_iters``."""
        self.runner.call_hook('before_train')
        # As in mmengine's loop: the whole run is one big epoch for hooks.
        self.runner.call_hook('before_train_epoch')
        self._restore_sampler_seed()
        if self._iter > 0:
            self.runner.logger.info(
                f'Resuming at iteration {self._iter}: the batches already '
                'trained are skipped without being loaded.')
        self._batches.begin(self.runner.seed, self._iter)
        self._worker_start.take_handled_signals()
        batches = iter(self._loader)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            self.run_iter(next(batches))
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model

    def _restore_sampler_seed(self) -> None:
        """Shuffle with the seed of the run this one resumes (recorded in
        the message hub, which checkpoints carry), and record it."""
        sampler = self._batches.sampler
        if not hasattr(sampler, 'seed'):
            return
        hub = self.runner.message_hub
        seed = hub.get_info(SAMPLER_SEED_KEY)
        if seed is not None:
            sampler.seed = seed
        elif self._iter > 0:
            self.runner.logger.warning(
                f'Resumed at iteration {self._iter} from a checkpoint that '
                'does not record its sampler seed (not written with '
                'ResumableIterBasedTrainLoop): the batches after it are '
                'drawn with this run\'s seed.')
        hub.update_info(SAMPLER_SEED_KEY, sampler.seed)

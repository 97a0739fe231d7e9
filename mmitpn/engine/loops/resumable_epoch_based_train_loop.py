# Copyright (c) mmitpn contributors. All rights reserved.
"""An epoch-based training loop that resumes inside an epoch exactly."""
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from mmitpn.registry import LOOPS
from .seeded_loader import build_seeded_loader

# Where the loop is, in the message hub (and so in every checkpoint).
POSITION_KEY = 'mmitpn_epoch_position'


@LOOPS.register_module()
class ResumableEpochBasedTrainLoop(EpochBasedTrainLoop):
    """mmengine's ``EpochBasedTrainLoop`` whose checkpoints resume exactly
    from any iteration, not only from the end of an epoch.

    mmengine resumes a checkpoint written inside an epoch by starting that
    epoch again from its first batch. This loop records its position (the
    epoch, the batches of it already trained, the batches per epoch and the
    sampler's seed) in the message hub after every iteration, so that every
    checkpoint carries it, and a resumed run:

    - skips the batches already trained without loading them (only their
      indices are drawn), so it trains on exactly the samples the
      interrupted run had not yet seen, in the same order, batched the same
      way (also with a batch sampler that groups images, such as mmdet's
      ``AspectRatioBatchSampler``);
    - sees the same augmentations: every sample's pipeline draws from
      generators seeded by (seed, epoch, dataset index), in the training
      process or in any data-loader worker, persistent or not
      (:func:`~mmitpn.utils.sample_seeding.sample_random_state`);
    - shuffles with the sampler seed of the interrupted run, also when the
      config leaves it random (``randomness.seed=None`` or
      ``diff_rank_seed=True``).

    Its data-loader workers leave the stop signals that the training
    process handles (:class:`~mmitpn.engine.hooks.PreemptionHook`'s) to
    it, so that a signal sent to every process of the job does not kill
    them (:class:`~mmitpn.engine.loops.seeded_loader.WorkerStart`).

    With :class:`~mmitpn.engine.hooks.IterationSeedHook` for the model's
    randomness, a run interrupted anywhere and resumed ends with the same
    weights as an uninterrupted one. The epoch is read through a data loader
    built from the configured one (same dataset, batch sampler, workers and
    collate function); ``runner.train_dataloader`` stays the configured
    loader, for hooks that read its dataset or set its sampler's epoch.

    A checkpoint written inside an epoch resumes only with the same number
    of batches per epoch (processes and batch size); otherwise the run
    stops with an error naming both.

    Accepts the arguments of mmengine's ``EpochBasedTrainLoop``.
    """

    def __init__(
            self,
            runner,
            dataloader: Union[DataLoader, Dict],
            max_epochs: int,
            val_begin: int = 1,
            val_interval: int = 1,
            dynamic_intervals: Optional[List[Tuple[int, int]]] = None) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin,
                         val_interval, dynamic_intervals)
        self._loader, self._batches, self._worker_start = build_seeded_loader(
            self.dataloader)
        self._start = 0

    def run(self):
        self._start = self._resumed_position()
        return super().run()

    def run_epoch(self) -> None:
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        start, self._start = self._start, 0
        self._batches.begin_epoch(self.runner.seed, self._epoch, start)
        self._worker_start.take_handled_signals()
        for idx, data_batch in enumerate(self._loader, start):
            self.run_iter(idx, data_batch)
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1

    def run_iter(self, idx, data_batch: Sequence[dict]) -> None:
        self.runner.call_hook(
            'before_train_iter', batch_idx=idx, data_batch=data_batch)
        outputs = self.runner.model.train_step(
            data_batch, optim_wrapper=self.runner.optim_wrapper)
        # Where a checkpoint written after this iteration resumes.
        self.runner.message_hub.update_info(
            POSITION_KEY,
            dict(
                epoch=self._epoch,
                batches=idx + 1,
                batches_per_epoch=len(self.dataloader),
                sampler_seed=getattr(self._batches.sampler, 'seed', None)))
        self.runner.call_hook(
            'after_train_iter',
            batch_idx=idx,
            data_batch=data_batch,
            outputs=outputs)
        self._iter += 1

    def _resumed_position(self) -> int:
        """The batches of the current epoch that the resumed checkpoint had
        trained (0 for a new run or one resumed at an epoch's end); puts
        back the sampler seed it shuffled with."""
        position = self.runner.message_hub.get_info(POSITION_KEY)
        if position is None:
            if self._iter != self._epoch * len(self.dataloader):
                self.runner.logger.warning(
                    f'Resumed at iteration {self._iter}, inside epoch '
                    f'{self._epoch + 1}, from a checkpoint that does not '
                    'record the position in the epoch (not written with '
                    'ResumableEpochBasedTrainLoop): the epoch restarts from '
                    'its first batch.')
            return 0
        seed = position.get('sampler_seed')
        if seed is not None and hasattr(self._batches.sampler, 'seed'):
            self._batches.sampler.seed = seed
        if position['epoch'] != self._epoch:
            return 0
        batches, per_epoch = position['batches'], len(self.dataloader)
        if position['batches_per_epoch'] != per_epoch:
            raise ValueError(
                f'Cannot resume inside epoch {self._epoch + 1}: the '
                f'checkpoint stopped after batch {batches} of '
                f'{position["batches_per_epoch"]} per epoch, this run has '
                f'{per_epoch} batches per epoch (another number of processes '
                'or batch size). Resume with the same number of processes '
                'and train_dataloader.batch_size, or from an epoch '
                'checkpoint.')
        self.runner.logger.info(
            f'Resuming epoch {self._epoch + 1} after its batch {batches} of '
            f'{per_epoch}: the batches already trained are skipped without '
            'being loaded.')
        return batches

# Copyright (c) mmitpn contributors. All rights reserved.
"""The loader of a run's batches from any position, each sample seeded by
itself.

What :class:`~mmitpn.engine.loops.ResumableEpochBasedTrainLoop` and
:class:`~mmitpn.engine.loops.ResumableIterBasedTrainLoop` iterate instead
of the configured data loader: the same dataset, batch sampler, workers and
collate function, with three changes. The batch stream can start at any
batch (of an epoch, or of an iteration-based run) without loading the
batches before it; every sample's pipeline runs with random generators
seeded from (seed, epoch or iteration, dataset index), so that its
augmentations do not depend on which process or worker loads it, nor on
what was loaded before; and the workers leave the stop signals that the
training process handles to it.
"""
import os
import signal
import threading
from typing import Callable, Iterator, List, Optional, Tuple, Type, Union

from torch.utils.data import DataLoader, Dataset

from mmitpn.utils.sample_seeding import sample_random_state

# (seed, epoch or iteration, dataset index)
SampleKey = Tuple[int, int, int]


class SeededSamples(Dataset):
    """A dataset read by :class:`SampleKey`: ``samples[(seed, epoch, i)]``
    is ``dataset[i]`` with its pipeline's randomness drawn from
    :func:`~mmitpn.utils.sample_seeding.sample_random_state`.

    Args:
        dataset (Dataset): The dataset to read.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: SampleKey):
        seed, epoch, index = key
        with sample_random_state(seed, epoch, index):
            return self.dataset[index]


class EpochBatches:
    """The batches of a batch sampler from a given position of the epoch on,
    as lists of :class:`SampleKey`.

    The batch sampler's indices before ``start`` are drawn (cheaply, no data
    is loaded) and dropped, so a batch sampler whose batches depend on the
    ones before (mmdet's ``AspectRatioBatchSampler`` groups images by shape)
    yields the same batches as in an uninterrupted epoch.

    Args:
        batch_sampler: The configured loader's batch sampler; its
            ``sampler`` gets ``set_epoch`` from the usual hooks.
    """

    def __init__(self, batch_sampler) -> None:
        self.batch_sampler = batch_sampler
        self.seed = 0
        self.epoch = 0
        self.start = 0

    @property
    def sampler(self):
        """The sampler under the batch sampler."""
        return self.batch_sampler.sampler

    def begin_epoch(self, seed: int, epoch: int, start: int) -> None:
        """Read ``epoch`` of the run seeded ``seed`` from batch ``start``."""
        self.seed, self.epoch, self.start = seed, epoch, start

    def __iter__(self) -> Iterator[List[SampleKey]]:
        for position, batch in enumerate(self.batch_sampler):
            if position >= self.start:
                yield [(self.seed, self.epoch, int(i)) for i in batch]

    def __len__(self) -> int:
        return max(len(self.batch_sampler) - self.start, 0)


class IterationBatches:
    """The batches of an iteration-based run from a given iteration on, as
    lists of :class:`SampleKey` keyed by the iteration that trains them.

    The batch sampler is read again whenever it ends, its sampler's epoch
    set to the number of passes before (as mmengine's iteration-based loop
    does); an infinite one (mmengine's ``InfiniteSampler``) is read once.
    The indices of the batches before ``start`` are drawn (cheaply, no data
    is loaded) and dropped.

    Args:
        batch_sampler: The configured loader's batch sampler.
    """

    def __init__(self, batch_sampler) -> None:
        self.batch_sampler = batch_sampler
        self.seed = 0
        self.start = 0

    @property
    def sampler(self):
        """The sampler under the batch sampler."""
        return self.batch_sampler.sampler

    def begin(self, seed: int, start: int) -> None:
        """Read the run seeded ``seed`` from iteration ``start``."""
        self.seed, self.start = seed, start

    def __iter__(self) -> Iterator[List[SampleKey]]:
        iteration, passes = 0, 0
        while True:
            if hasattr(self.sampler, 'set_epoch'):
                self.sampler.set_epoch(passes)
            read = iteration
            for batch in self.batch_sampler:
                if iteration >= self.start:
                    yield [(self.seed, iteration, int(i)) for i in batch]
                iteration += 1
            if iteration == read:
                raise ValueError('The training data loader yields no batch '
                                 '(an empty dataset, or drop_last with fewer '
                                 'samples than a batch).')
            passes += 1


# Signals that ask a process to stop, which a scheduler may send to every
# process of a job.
STOP_SIGNALS = ('SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2')


def _take_signals(signals: Tuple[int, ...], parent: int) -> None:
    """Consume ``signals`` (blocked in every thread) for good; exit when
    the parent process sends SIGTERM, as torch's workers do."""
    while True:
        info = signal.sigwaitinfo(signals)
        if info.si_signo == signal.SIGTERM and info.si_pid == parent:
            os._exit(0)


class WorkerStart:
    """The ``worker_init_fn`` of the seeded loader: leave to the training
    process the stop signals that it handles, then call the configured
    ``init_fn``.

    A scheduler may signal every process of a job: torchrun signals each
    process group, Slurm every process of a step. A torch data-loader
    worker dies of SIGTERM sent by anyone but its parent (and of SIGUSR1
    from anyone), which ends training with an error before it can save. A
    worker started here instead blocks the signals that the training
    process handles and takes them in a thread, which ends the worker only
    on its parent's SIGTERM (how torch and multiprocessing end workers).
    """

    def __init__(self, init_fn: Optional[Callable[[int], None]]) -> None:
        self.init_fn = init_fn
        self.signals: Tuple[int, ...] = ()

    def take_handled_signals(self) -> None:
        """Take over, in workers started from now on, the stop signals that
        the calling process handles in Python now."""
        self.signals = tuple(
            getattr(signal, name) for name in STOP_SIGNALS
            if callable(signal.getsignal(getattr(signal, name))))

    def __call__(self, worker_id: int) -> None:
        if self.signals:
            signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)
            threading.Thread(
                target=_take_signals,
                args=(self.signals, os.getppid()),
                name='worker signals',
                daemon=True).start()
        if self.init_fn is not None:
            self.init_fn(worker_id)


Batches = Union[EpochBatches, IterationBatches]


def build_seeded_loader(
    loader: DataLoader,
    batches_type: Type[Batches] = EpochBatches
) -> Tuple[DataLoader, Batches, WorkerStart]:
    """A data loader over :class:`SeededSamples` of ``loader``'s dataset and
    the ``batches_type`` (:class:`EpochBatches` or
    :class:`IterationBatches`) of its batch sampler, with ``loader``'s
    workers, collate function and memory settings; returns it, its batches
    (to position before reading) and its :class:`WorkerStart` (to update
    before workers start)."""
    if loader.batch_sampler is None:
        raise ValueError(
            'The training data loader has no batch sampler (batch_size=None);'
            ' set train_dataloader.batch_size.')
    batches = batches_type(loader.batch_sampler)
    worker_start = WorkerStart(loader.worker_init_fn)
    options = dict(
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=worker_start,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
        pin_memory_device=loader.pin_memory_device)
    if hasattr(loader, 'in_order'):  # torch >= 2.6
        options['in_order'] = loader.in_order
    return DataLoader(
        SeededSamples(loader.dataset), batch_sampler=batches,
        **options), batches, worker_start

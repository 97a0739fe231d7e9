# Copyright (c) mmitpn contributors. All rights reserved.
from .epoch_batches import (EpochBatches, SeededSamples, WorkerStart,
                            seeded_loader)
from .resumable_epoch_based_train_loop import ResumableEpochBasedTrainLoop

__all__ = [
    'EpochBatches', 'ResumableEpochBasedTrainLoop', 'SeededSamples',
    'WorkerStart', 'seeded_loader'
]

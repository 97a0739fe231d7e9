# Copyright (c) mmitpn contributors. All rights reserved.
"""Randomness that belongs to a sample, not to the rank that loads it."""
import random
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

import numpy as np
import torch
from mmengine.logging import MessageHub
from torch import Tensor


def sample_noise(sample_ids: Sequence[int],
                 num_units: int,
                 device: Optional[torch.device] = None,
                 seed: Optional[int] = None,
                 step: Optional[int] = None) -> Tensor:
    """Uniform noise ``(B, num_units)`` whose row for a sample depends only
    on the run's seed, the training iteration and the sample's dataset
    index.

    Drawn from the global generator (``torch.rand``), MAE masks depend on
    the rank and on the sample's position in the per-rank batch, so a run
    on two processes masks the same images differently from a run on one
    with the same total batch. Rows from this function do not: a sample
    gets the same mask at the same iteration however the global batch is
    split, and after a resume.

    Args:
        sample_ids (Sequence[int]): Dataset index of each sample
            (``data_sample.sample_idx``, which mmengine datasets set).
        num_units (int): Length of each row.
        device (torch.device, optional): Where to put the noise.
        seed (int, optional): The run's seed. Defaults to the ``seed`` of
            the current message hub (0 without one).
        step (int, optional): The iteration. Defaults to the ``iter`` of
            the current message hub (0 without one).
    """
    hub = MessageHub.get_current_instance()
    if seed is None:
        seed = hub.get_info('seed') or 0
    if step is None:
        step = hub.get_info('iter', 0)
    rows = []
    for index in sample_ids:
        state = np.random.SeedSequence([int(seed), int(step), int(index)])
        generator = torch.Generator().manual_seed(
            int(state.generate_state(1, dtype=np.uint64)[0] >> 1))
        rows.append(torch.rand(num_units, generator=generator))
    return torch.stack(rows).to(device)


# Keeps the augmentation streams apart from the mask noise above, which is
# keyed by (seed, iteration, index).
AUGMENTATION_STREAM = 1


@contextmanager
def sample_random_state(seed: int, epoch: int, index: int) -> Iterator[None]:
    """Seed Python's, numpy's and torch's global generators from the run's
    seed, the epoch and a sample's dataset index for the body of the
    ``with``, and give them back their previous state afterwards.

    A data pipeline run inside draws the same augmentations for a sample in
    a given epoch in any process, worker or run (an uninterrupted one or
    one resumed in the middle of the epoch), and the caller's random
    streams are left as they were.

    Args:
        seed (int): The run's seed.
        epoch (int): The epoch that reads the sample.
        index (int): The sample's dataset index.
    """
    state = np.random.SeedSequence(
        [int(seed), AUGMENTATION_STREAM,
         int(epoch), int(index)])
    value = int(state.generate_state(1, dtype=np.uint32)[0])
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        random.seed(value)
        np.random.seed(value)
        torch.manual_seed(value)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)

# Copyright (c) mmitpn contributors. All rights reserved.
"""What a training process saw, to compare runs on one and two processes.

``SampleSeediTPN`` is iTPN with the change its ``random_masking`` needs for
layout-independent masks: noise from :func:`mmitpn.utils.sample_noise` (per
sample index) instead of ``torch.rand`` (per rank).
"""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmitpn.models import iTPN
from mmitpn.registry import HOOKS, MODELS
from mmitpn.utils import sample_noise


@MODELS.register_module()
class SampleSeediTPN(iTPN):

    def loss(self, inputs, data_samples=None):
        self.sample_ids = [sample.sample_idx for sample in data_samples]
        return super().loss(inputs, data_samples)

    def random_masking(self, batch_size, grid, device):
        num_visible = self._check_visible_units(grid)
        noise = sample_noise(self.sample_ids, grid[0] * grid[1], device)
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        mask = torch.ones_like(noise)
        mask[:, :num_visible] = 0
        self.last_mask = mask.gather(1, ids_restore)
        return ids_shuffle[:, :num_visible], ids_restore, self.last_mask


@HOOKS.register_module()
class RecordBatchesHook(Hook):
    """Save, per rank, each iteration's sample indices and masks and the
    final model (teacher included) to ``<work_dir>/rank<r>.pt``."""

    def __init__(self):
        self.records = []

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        model = self._model(runner)
        self.records.append(
            dict(ids=list(model.sample_ids), mask=model.last_mask.clone()))

    def after_train(self, runner):
        torch.save(
            dict(
                records=self.records,
                state_dict=self._model(runner).state_dict()),
            osp.join(runner.work_dir, f'rank{get_rank()}.pt'))

# Copyright (c) mmitpn contributors. All rights reserved.
"""What a training process saw, to compare runs on one and two processes.

``SampleSeediTPN`` is iTPN that keeps its last masks (iTPN draws them per
sample index with :func:`mmitpn.utils.sample_noise`, not per rank).
"""
import os.path as osp

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmitpn.models import iTPN
from mmitpn.registry import HOOKS, MODELS


@MODELS.register_module()
class SampleSeediTPN(iTPN):

    def random_masking(self, batch_size, grid, device, sample_ids=None):
        self.sample_ids = sample_ids
        ids_keep, ids_restore, self.last_mask = super().random_masking(
            batch_size, grid, device, sample_ids)
        return ids_keep, ids_restore, self.last_mask


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

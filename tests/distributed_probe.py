# Copyright (c) mmitpn contributors. All rights reserved.
"""What a training process saw, to compare runs on one and two processes,
or interrupted and uninterrupted ones.

``SampleSeediTPN`` is iTPN that keeps its last masks (iTPN draws them per
sample index with :func:`mmitpn.utils.sample_noise`, not per rank).
"""
import hashlib
import json
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


def _tensors(value):
    """The tensors in ``value`` (a tensor or nested lists of them)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    return []


def _sample_id(sample):
    for key in ('sample_idx', 'img_id'):
        if key in sample:
            return int(sample.get(key))
    raise KeyError('data sample without sample_idx or img_id')


@HOOKS.register_module()
class RecordSamplesHook(Hook):
    """Append, per rank and iteration, the samples trained on, a digest of
    their inputs (and BEiT masks), the loss and the learning rate to
    ``<work_dir>/samples_rank<r>.jsonl``, and save the final weights to
    ``<work_dir>/final_rank<r>.pt``: an interrupted run and its resumed
    continuation write one file to compare with an uninterrupted run's."""

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        digest = hashlib.sha1()
        samples = data_batch.get('data_samples') or []
        masks = [s.mask for s in samples if 'mask' in s]
        for tensor in _tensors(data_batch['inputs']) + _tensors(masks):
            digest.update(tensor.contiguous().numpy().tobytes())
        record = dict(
            iter=runner.iter,
            samples=[_sample_id(s) for s in samples],
            inputs=digest.hexdigest(),
            loss=outputs['loss'].item(),
            lr=runner.optim_wrapper.get_lr()['lr'][0])
        path = osp.join(runner.work_dir, f'samples_rank{get_rank()}.jsonl')
        with open(path, 'a') as f:
            f.write(json.dumps(record) + '\n')

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        torch.save(model.state_dict(),
                   osp.join(runner.work_dir, f'final_rank{get_rank()}.pt'))

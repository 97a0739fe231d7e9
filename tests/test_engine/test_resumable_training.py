# Copyright (c) mmitpn contributors. All rights reserved.
"""PreemptionHook, ResumableEpochBasedTrainLoop,
ResumableIterBasedTrainLoop and iteration checkpoints on a toy run (in this
process, a real signal): a run stopped anywhere and resumed ends exactly as
an uninterrupted one."""
import json
import math
import os
import random
import uuid

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import InfiniteSampler
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.registry import DATA_SAMPLERS, DATASETS, HOOKS, MODELS
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmitpn.engine import (PREEMPTED_EXIT_CODE, PreemptionHook,
                           TrainingPreempted)
from mmitpn.utils.sample_seeding import sample_random_state


@MODELS.register_module()
class DropoutToyModel(BaseModel):
    """Draws from torch in its forward and records the samples it saw."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)
        self.dropout = nn.Dropout(0.5)
        self.seen = []

    def forward(self, inputs, index=None, mode='tensor'):
        self.seen.append(index.tolist())
        return dict(loss=self.linear(self.dropout(inputs)).square().mean())


@DATASETS.register_module()
class NoisyToyData(Dataset):
    """Augments each sample with Python's, numpy's and torch's generators;
    counts its reads."""

    def __init__(self):
        self.reads = 0

    def __len__(self):
        return 10

    def __getitem__(self, index):
        self.reads += 1
        noise = np.random.rand(4) + random.random() + torch.rand(4).numpy()
        return dict(
            inputs=torch.tensor(index / 10 + 0.1 * noise, dtype=torch.float),
            index=index)


@DATA_SAMPLERS.register_module()
class ParityBatchSampler:
    """Batches even and odd indices apart, as mmdet's
    AspectRatioBatchSampler groups images by shape: a batch depends on the
    indices drawn before it."""

    def __init__(self, sampler, batch_size, drop_last=False):
        self.sampler, self.batch_size = sampler, batch_size

    def __iter__(self):
        buckets = ([], [])
        for index in self.sampler:
            bucket = buckets[index % 2]
            bucket.append(index)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                del bucket[:]
        rest = buckets[0] + buckets[1]
        while rest:
            yield rest[:self.batch_size]
            rest = rest[self.batch_size:]

    def __len__(self):
        return math.ceil(len(self.sampler) / self.batch_size)


@HOOKS.register_module()
class CrashBeforeIterationHook(Hook):

    def __init__(self, iteration):
        self.iteration = iteration

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter == self.iteration:
            raise RuntimeError('lost the node')


def make_cfg(work_dir,
             resume=False,
             hooks=(),
             batch_size=2,
             seed=0,
             accumulation=1,
             **checkpoint):
    """3 epochs of 5 iterations (10 samples, batch 2)."""
    import fault_injection  # noqa: F401 (registers its hooks)
    cfg = Config(
        dict(
            model=dict(type='DropoutToyModel'),
            work_dir=str(work_dir),
            train_dataloader=dict(
                dataset=dict(type='NoisyToyData'),
                sampler=dict(type='DefaultSampler', shuffle=True),
                batch_sampler=dict(type='ParityBatchSampler'),
                collate_fn=dict(type='default_collate'),
                batch_size=batch_size,
                num_workers=0),
            train_cfg=dict(
                type='mmitpn.ResumableEpochBasedTrainLoop', max_epochs=3),
            optim_wrapper=dict(
                optimizer=dict(type='SGD', lr=0.1, momentum=0.9),
                accumulative_counts=accumulation),
            param_scheduler=dict(
                type='LinearLR', start_factor=0.5, end=12, by_epoch=False),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(
                    type='mmitpn.SafeCheckpointHook',
                    interval=1,
                    max_keep_ckpts=2,
                    **checkpoint)),
            custom_hooks=[
                dict(type='mmitpn.IterationSeedHook'),
                dict(type='mmitpn.PreemptionHook'), *hooks
            ],
            randomness=dict(seed=seed),
            resume=resume,
            default_scope='mmengine',
            # Runners built within one second would share a message hub.
            experiment_name=f'preemption_{uuid.uuid4().hex}'))
    return cfg


def make_iter_cfg(work_dir, sampler='DefaultSampler', **kwargs):
    """15 iterations of an iteration-based run over the same data (3
    passes of 5 batches with ``DefaultSampler``, one infinite stream with
    ``InfiniteSampler``); no regular checkpoints."""
    cfg = make_cfg(work_dir, **kwargs)
    cfg.train_dataloader.sampler.type = sampler
    cfg.train_cfg = dict(
        type='mmitpn.ResumableIterBasedTrainLoop', max_iters=15)
    cfg.default_hooks.checkpoint.update(by_epoch=False, interval=100)
    return cfg


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def stopped_run(cfg, error=TrainingPreempted):
    """Train ``cfg`` until ``error`` stops it; returns the runner."""
    runner = Runner.from_cfg(cfg)
    with pytest.raises(error) as stop:
        runner.train()
    if error is TrainingPreempted:
        assert stop.value.code == PREEMPTED_EXIT_CODE == 75
    return runner


def assert_same_run(reference, stopped, resumed, iterations):
    """The stopped and resumed runs together saw the reference's samples in
    the same order, logged its losses and learning rates, and end with its
    weights, bit for bit."""
    assert stopped.model.seen[:iterations] + resumed.model.seen == \
        reference.model.seen
    for name in ('train/loss', 'train/lr'):
        expected, actual = (
            r.message_hub.get_scalar(name).data[0]
            for r in (reference, resumed))
        assert len(expected) == 15
        np.testing.assert_array_equal(actual, expected, err_msg=name)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


# Data-loader workers are tested through tools/train.py
# (tests/test_tools/test_preemption.py): in this process, a runner with
# persistent workers that the garbage collector frees takes 10 s to stop
# them (mmengine's loop too).
@pytest.mark.parametrize('seed', [0, None], ids=['fixed seed', 'random seed'])
def test_signal_mid_epoch_resumes_exactly(tmp_path, capsys, seed):
    work_dir = tmp_path / 'stopped'
    # The signal arrives before the 7th iteration (the 2nd of epoch 2); the
    # run finishes that iteration, saves and stops.
    signal_hook = dict(type='SignalAtIterationHook', iteration=6)
    stopped = stopped_run(make_cfg(work_dir, hooks=[signal_hook], seed=seed))
    assert stopped.iter == 6
    # Without a seed in the config the run drew one, which the resumed run
    # (drawing another) must take from the checkpoint.
    reference = train(make_cfg(tmp_path / 'reference', seed=stopped.seed))
    checkpoint = work_dir / 'iter_7.pth'
    assert (work_dir / 'last_checkpoint').read_text() == str(checkpoint)
    record = json.loads((work_dir / 'preempted.json').read_text())
    assert record == dict(
        checkpoint=str(checkpoint),
        epoch=1,
        iteration=7,
        signals=['SIGUSR1'],
        exit_code=75)
    meta = torch.load(checkpoint, weights_only=True)['meta']
    assert (meta['epoch'], meta['iter']) == (1, 7)
    log = ''.join(capsys.readouterr())
    assert 'SIGUSR1 received: saving a checkpoint after iteration 7' in log
    assert 'after the signal. Exiting with code 75' in log

    resumed = train(make_cfg(work_dir, resume=True, seed=seed))
    log = ''.join(capsys.readouterr())
    assert 'Resuming epoch 2 after its batch 2 of 5' in log
    assert 'every sample is augmented from its own seed' in log
    assert not (work_dir / 'preempted.json').exists()
    assert_same_run(reference, stopped, resumed, 7)


@pytest.mark.parametrize('seed', [0, None], ids=['fixed seed', 'random seed'])
@pytest.mark.parametrize('sampler', ['DefaultSampler', 'InfiniteSampler'])
def test_signal_in_iteration_based_run_resumes_exactly(tmp_path, capsys,
                                                       sampler, seed):
    work_dir = tmp_path / 'stopped'
    # The signal arrives before the 7th iteration (in the second pass over
    # the data with DefaultSampler).
    signal_hook = dict(type='SignalAtIterationHook', iteration=6)
    stopped = stopped_run(
        make_iter_cfg(
            work_dir, sampler=sampler, hooks=[signal_hook], seed=seed))
    assert os.path.isfile(work_dir / 'iter_7.pth')
    reference = train(
        make_iter_cfg(
            tmp_path / 'reference', sampler=sampler, seed=stopped.seed))

    resumed = train(
        make_iter_cfg(work_dir, sampler=sampler, resume=True, seed=seed))
    log = ''.join(capsys.readouterr())
    assert ('Resuming at iteration 7: the batches already trained are '
            'skipped without being loaded') in log
    assert 'every sample is augmented from its own seed' in log
    assert_same_run(reference, stopped, resumed, 7)
    # Only the 8 batches trained after the resume were read.
    assert resumed.train_dataloader.dataset.reads == 8 * 2


def test_iteration_based_resume_with_data_loader_workers(tmp_path):
    """Two workers draw the augmentations: the same run, bit for bit."""

    def cfg(path, **kwargs):
        cfg = make_iter_cfg(path, sampler='InfiniteSampler', **kwargs)
        cfg.train_dataloader.update(num_workers=2, persistent_workers=True)
        return cfg

    signal_hook = dict(type='SignalAtIterationHook', iteration=6)
    stopped = stopped_run(cfg(tmp_path / 'stopped', hooks=[signal_hook]))
    reference = train(cfg(tmp_path / 'reference'))
    resumed = train(cfg(tmp_path / 'stopped', resume=True))
    assert_same_run(reference, stopped, resumed, 7)


def test_mmengine_iteration_loop_does_not_resume_exactly(tmp_path, capsys):
    """Why the loop exists: mmengine's IterBasedTrainLoop augments the
    batches after the checkpoint differently, and reloads the batches
    already trained (mmengine 0.10.7; onedl-mmengine's loop skips them in a
    sampler that has ``skip``, such as its ``InfiniteSampler``)."""
    work_dir = tmp_path / 'stopped'

    def cfg(path, **kwargs):
        # (InfiniteSampler: mmengine's loop sleeps 2 s after each pass.)
        cfg = make_iter_cfg(path, sampler='InfiniteSampler', **kwargs)
        cfg.train_cfg.type = 'IterBasedTrainLoop'
        return cfg

    signal_hook = dict(type='SignalAtIterationHook', iteration=6)
    stopped_run(cfg(work_dir, hooks=[signal_hook]))
    log = ''.join(capsys.readouterr())
    assert 'IterBasedTrainLoop does not resume exactly' in log
    reference = train(cfg(tmp_path / 'reference'))
    resumed = train(cfg(work_dir, resume=True))
    log = ''.join(capsys.readouterr())
    assert 'with IterBasedTrainLoop: model randomness' in log
    # Stopped after iteration 7 of 15: the 8 batches left, plus the 7
    # trained ones where the installed loop reloads them.
    skipped_in_sampler = hasattr(InfiniteSampler, 'skip')
    assert resumed.train_dataloader.dataset.reads == \
        (8 if skipped_in_sampler else 15) * 2
    assert not torch.equal(reference.model.linear.weight,
                           resumed.model.linear.weight)


def test_iteration_checkpoints_bound_a_crash(tmp_path):
    """Every 2 iterations a checkpoint (at most 2 kept, apart from the
    epoch ones): a run that dies before iteration 9 resumes from iteration
    8 exactly."""
    reference = train(make_cfg(tmp_path / 'reference'))
    work_dir = tmp_path / 'crashed'
    crash = dict(type='CrashBeforeIterationHook', iteration=8)
    crashed = stopped_run(
        make_cfg(
            work_dir, hooks=[crash], iter_interval=2, max_keep_iter_ckpts=2),
        error=RuntimeError)
    assert sorted(p for p in os.listdir(work_dir) if p.endswith('.pth')) == [
        'epoch_1.pth', 'iter_6.pth', 'iter_8.pth'
    ]
    resumed = train(
        make_cfg(
            work_dir, resume=True, iter_interval=2, max_keep_iter_ckpts=2))
    assert_same_run(reference, crashed, resumed, 8)
    # Iteration 10 and 15 end epochs: epoch checkpoints instead.
    assert sorted(p for p in os.listdir(work_dir) if p.endswith('.pth')) == [
        'epoch_2.pth', 'epoch_3.pth', 'iter_12.pth', 'iter_14.pth'
    ]


def test_stop_waits_for_the_optimizer_step(tmp_path):
    """With 2 accumulation steps a signal before the 3rd iteration stops
    after the 4th (a checkpoint between would lose gradients)."""
    reference = train(make_cfg(tmp_path / 'reference', accumulation=2))
    work_dir = tmp_path / 'stopped'
    stopped = stopped_run(
        make_cfg(
            work_dir,
            hooks=[dict(type='SignalAtIterationHook', iteration=2)],
            accumulation=2))
    assert os.path.isfile(work_dir / 'iter_4.pth')
    resumed = train(make_cfg(work_dir, resume=True, accumulation=2))
    assert_same_run(reference, stopped, resumed, 4)
    with pytest.raises(ValueError, match='iter_interval=3 is not a multiple'):
        train(make_cfg(tmp_path / 'odd', accumulation=2, iter_interval=3))


def test_mid_epoch_resume_needs_the_same_batches_per_epoch(tmp_path):
    work_dir = tmp_path / 'stopped'
    stopped_run(
        make_cfg(
            work_dir, hooks=[dict(type='SignalAtIterationHook', iteration=1)]))
    with pytest.raises(
            ValueError,
            match=r'inside epoch 1: the checkpoint stopped after batch 2 of '
            r'5 per epoch, this run has 4 batches'):
        train(make_cfg(work_dir, resume=True, batch_size=3))


def test_preemption_hook_needs_safe_checkpoints(tmp_path):
    cfg = make_cfg(tmp_path)
    cfg.default_hooks.checkpoint.type = 'CheckpointHook'
    with pytest.raises(ValueError, match='mmitpn.SafeCheckpointHook'):
        train(cfg)


def test_mmengine_loop_is_named_as_not_resuming_inside_epochs(
        tmp_path, capsys):
    cfg = make_cfg(tmp_path)
    cfg.train_cfg.update(type='EpochBasedTrainLoop', max_epochs=1)
    train(cfg)
    assert 'resumes at the start of its epoch' in ''.join(capsys.readouterr())


def test_preemption_hook_arguments():
    assert PreemptionHook(['TERM', 'sigusr2', 10]).signals == [15, 12, 10]
    with pytest.raises(ValueError, match="'SIGNOPE' is not a signal"):
        PreemptionHook('SIGNOPE')
    with pytest.raises(ValueError, match='sync_interval=0'):
        PreemptionHook(sync_interval=0)


def test_sample_random_state_is_the_sample_s_own():
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    before = (torch.rand(1), np.random.rand(), random.random())

    def draw(*key):
        with sample_random_state(*key):
            return torch.rand(2), np.random.rand(2), random.random()

    first, again, other = draw(0, 1, 5), draw(0, 1, 5), draw(0, 2, 5)
    for a, b, c in zip(first, again, other):
        assert np.array_equal(a, b) and not np.array_equal(a, c)
    # The caller's streams continue as if nothing had been drawn.
    torch.manual_seed(1)
    np.random.seed(1)
    random.seed(1)
    draw(3, 4, 5)
    after = (torch.rand(1), np.random.rand(), random.random())
    assert all(a == b for a, b in zip(after, before))

# Copyright (c) mmitpn contributors. All rights reserved.
"""A model that is not mmitpn's, trained by a plain mmengine Runner with
mmengine's own ``CheckpointHook``.

As a script it trains in a fresh process, optionally resuming and
optionally importing mmitpn first, and can pickle the message hub as the
resumed run starts::

    python mmengine_toy_run.py WORK_DIR --epochs 2 [--resume-from CKPT]
        [--import-mmitpn] [--dump-hub FILE]
"""
import argparse
import importlib
import pickle
import uuid
from collections.abc import Mapping

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset


class ToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return dict(loss=self.linear(inputs).square().mean())


class ToyData(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(inputs=torch.full((4, ), index / 8))


class DumpHubHook(Hook):
    """Pickle the message hub as training starts (after any resume)."""

    priority = 'HIGHEST'

    def __init__(self, path):
        self.path = path

    def before_train(self, runner):
        with open(self.path, 'wb') as f:
            pickle.dump(runner.message_hub.state_dict(), f)


def train(work_dir, epochs, resume_from=None, dump_hub=None):
    """Train for ``epochs`` (in all), saving every epoch; return the
    Runner."""
    runner = Runner(
        model=ToyModel(),
        work_dir=work_dir,
        train_dataloader=dict(
            dataset=ToyData(),
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate'),
            batch_size=2,
            num_workers=0),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        param_scheduler=dict(type='LinearLR', start_factor=0.5, end=6),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=1)),
        custom_hooks=[DumpHubHook(dump_hub)] if dump_hub else None,
        randomness=dict(seed=0),
        resume=resume_from is not None,
        load_from=resume_from,
        default_scope='mmengine',
        # Runners built within one second would share a message hub.
        experiment_name=f'toy_{uuid.uuid4().hex}')
    runner.train()
    return runner


def assert_same(expected, actual, where='checkpoint'):
    """Assert that two loaded checkpoints (or parts) are equal in type,
    dtype and value, down to every history buffer and numpy scalar."""
    assert type(actual) is type(expected), \
        f'{where}: {type(actual)} instead of {type(expected)}'
    if isinstance(expected, HistoryBuffer):
        assert actual.max_length == expected.max_length, where
        for name, want, got in zip(('log', 'count'), expected.data,
                                   actual.data):
            assert_same(want, got, f'{where} {name} history')
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype, where
        assert np.array_equal(actual, expected), where
    elif isinstance(expected, torch.Tensor):
        assert actual.dtype == expected.dtype, where
        assert torch.equal(actual, expected), where
    elif isinstance(expected, Mapping):
        assert list(actual) == list(expected), where
        for key, value in expected.items():
            assert_same(value, actual[key], f'{where}[{key!r}]')
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for index, (want, got) in enumerate(zip(expected, actual)):
            assert_same(want, got, f'{where}[{index}]')
    else:
        assert actual == expected, f'{where}: {actual!r} != {expected!r}'


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('work_dir')
    parser.add_argument('--epochs', type=int, required=True)
    parser.add_argument('--resume-from')
    parser.add_argument('--import-mmitpn', action='store_true')
    parser.add_argument('--dump-hub')
    args = parser.parse_args()
    if args.import_mmitpn:
        importlib.import_module('mmitpn')
    train(args.work_dir, args.epochs, args.resume_from, args.dump_hub)


if __name__ == '__main__':
    main()

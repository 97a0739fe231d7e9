# Copyright (c) mmitpn contributors. All rights reserved.
"""SafeCheckpointHook through a plain ``Runner.from_cfg``, as mmpretrain's,
mmdet's and mmseg's train.py build it."""
import errno
import os
import os.path as osp
import uuid

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, MODELS
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

from mmitpn.utils import UnsafeCheckpointError, atomic_file, write_atomically

HUB_WARNINGS = ('is not HistoryBuffer', 'is not defined in message_hub')


@MODELS.register_module()
class SafeCheckpointToyModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 1)

    def forward(self, inputs, mode='tensor'):
        return dict(loss=self.linear(inputs).square().mean())


@DATASETS.register_module()
class SafeCheckpointToyData(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, index):
        return dict(inputs=torch.full((4, ), index / 8))


def make_cfg(work_dir, max_epochs, resume=False, load_from=None):
    return Config(
        dict(
            model=dict(type='SafeCheckpointToyModel'),
            work_dir=str(work_dir),
            train_dataloader=dict(
                dataset=dict(type='SafeCheckpointToyData'),
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='default_collate'),
                batch_size=2,
                num_workers=0),
            train_cfg=dict(by_epoch=True, max_epochs=max_epochs),
            optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
            param_scheduler=dict(type='LinearLR', start_factor=0.5, end=6),
            default_hooks=dict(
                logger=dict(type='LoggerHook', interval=1),
                checkpoint=dict(
                    type='mmitpn.SafeCheckpointHook',
                    interval=1,
                    max_keep_ckpts=2)),
            randomness=dict(seed=0),
            resume=resume,
            load_from=load_from,
            default_scope='mmengine',
            # Runners built within one second would share a message hub.
            experiment_name=f'safe_checkpoint_{uuid.uuid4().hex}'))


def train(cfg):
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def assert_resumed_exactly(reference, resumed, log):
    """The run resumed after epoch 2 ends as the uninterrupted one."""
    assert 'resumed epoch: 2, iter: 8' in log
    assert not [w for w in HUB_WARNINGS if w in log]
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for name in ('train/loss', 'train/lr'):
        expected, actual = (
            r.message_hub.get_scalar(name).data for r in (reference, resumed))
        assert len(actual[0]) == 12
        assert (expected[0] == actual[0]).all() and \
            (expected[1] == actual[1]).all(), name


def test_plain_runner_resumes_exactly(tmp_path, capsys):
    reference = train(make_cfg(tmp_path / 'reference', 3))
    train(make_cfg(tmp_path / 'resumed', 2))
    resumed = train(make_cfg(tmp_path / 'resumed', 3, resume=True))
    assert_resumed_exactly(reference, resumed, ''.join(capsys.readouterr()))
    # max_keep_ckpts=2, pruned after each complete save, also after resume.
    assert sorted(
        p for p in os.listdir(tmp_path / 'resumed')
        if p.endswith('.pth')) == ['epoch_2.pth', 'epoch_3.pth']
    torch.load(tmp_path / 'resumed' / 'epoch_3.pth', weights_only=True)


class WritesMarker:
    """Unpickling this would create ``path``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_no_checkpoint_is_fully_unpickled_not_even_own(tmp_path):
    """The run's own work dir is not a licence to run pickled code."""
    work_dir = tmp_path / 'work_dir'
    train(make_cfg(work_dir, 1))
    marker = str(tmp_path / 'code_ran')
    checkpoint = torch.load(work_dir / 'epoch_1.pth', weights_only=True)
    checkpoint['meta']['payload'] = WritesMarker(marker)
    torch.save(checkpoint, work_dir / 'epoch_1.pth')
    with pytest.raises(UnsafeCheckpointError, match='epoch_1.pth'):
        train(make_cfg(work_dir, 2, resume=True))
    assert not osp.exists(marker)


def test_auto_resume_skips_a_truncated_checkpoint(tmp_path, capsys):
    work_dir = tmp_path / 'work_dir'
    train(make_cfg(work_dir, 2))
    latest = work_dir / 'epoch_2.pth'
    latest.write_bytes(latest.read_bytes()[:1000])
    runner = train(make_cfg(work_dir, 3, resume=True))
    log = ''.join(capsys.readouterr())
    assert f'the latest checkpoint {latest} is unreadable' in log
    assert f'resuming from {work_dir / "epoch_1.pth"}' in log
    assert 'resumed epoch: 1, iter: 4' in log
    assert runner.epoch == 3
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_3.pth')


def test_auto_resume_without_readable_checkpoint_names_it(tmp_path):
    work_dir = tmp_path / 'work_dir'
    train(make_cfg(work_dir, 1))
    (work_dir / 'epoch_1.pth').write_bytes(b'half a checkpoint')
    with pytest.raises(ValueError, match=r'epoch_1.pth is unreadable'):
        train(make_cfg(work_dir, 2, resume=True))


def test_write_that_cannot_fit_fails_before_writing(tmp_path, monkeypatch):
    target = tmp_path / 'epoch_9.pth'
    target.write_bytes(b'previous')

    class Usage:
        free = 10

    monkeypatch.setattr(atomic_file.shutil, 'disk_usage', lambda _: Usage)
    with pytest.raises(OSError, match='No space left for .*epoch_9.pth') as e:
        write_atomically(b'x' * 100, target)
    assert e.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == ['epoch_9.pth']
    assert target.read_bytes() == b'previous'


def test_resuming_an_mmengine_checkpoint_is_exact(tmp_path, capsys):
    """mmengine's own CheckpointHook pickles the message hub's history
    buffers; they resume exactly into a run with SafeCheckpointHook."""
    reference = train(make_cfg(tmp_path / 'reference', 3))
    work_dir = tmp_path / 'work_dir'
    cfg = make_cfg(work_dir, 2)
    cfg.default_hooks.checkpoint.type = 'CheckpointHook'
    train(cfg)
    resumed = train(make_cfg(work_dir, 3, resume=True))
    assert_resumed_exactly(reference, resumed, ''.join(capsys.readouterr()))


def test_auto_resume_survives_an_empty_last_checkpoint(tmp_path, capsys):
    work_dir = tmp_path / 'work_dir'
    train(make_cfg(work_dir, 2))
    (work_dir / 'last_checkpoint').write_text('')
    train(make_cfg(work_dir, 3, resume=True))
    log = ''.join(capsys.readouterr())
    assert f'resuming from {work_dir / "epoch_2.pth"}' in log
    assert 'resumed epoch: 2, iter: 8' in log

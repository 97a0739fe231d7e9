# Copyright (c) mmitpn contributors. All rights reserved.
import ast
import io
import logging
import math
import os
import os.path as osp
from collections import OrderedDict, defaultdict

import pytest
import torch
from dataset_layouts import write_fashion_mnist
from mmengine.logging import HistoryBuffer, MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner import Runner
from tiny_models import tiny_arch, tiny_pixel_itpn

from mmitpn.registry import MODELS
from mmitpn.utils import adapt_cfg_to_device


def pytest_configure(config):
    """Under pytest-xdist (``make test`` runs ``-n auto``) each worker, and
    every tool it starts, computes on one thread: as many workers as cores,
    none oversubscribed."""
    if os.environ.get('PYTEST_XDIST_WORKER'):
        os.environ['OMP_NUM_THREADS'] = '1'
        torch.set_num_threads(1)


def pytest_terminal_summary(terminalreporter):
    """Print the time of each test file (setup, call and teardown of its
    tests; with pytest-xdist, summed over workers), slowest first, so that
    CI's log shows where the suite's time goes and which file grew.
    Imports and collection are not included."""
    seconds = defaultdict(float)
    for reports in terminalreporter.stats.values():
        for report in reports:
            if isinstance(report, pytest.TestReport):
                seconds[report.nodeid.split('::')[0]] += report.duration
    if not seconds:
        return
    terminalreporter.write_sep('=', 'time per test file')
    for path, total in sorted(seconds.items(), key=lambda item: -item[1]):
        terminalreporter.write_line(f'{total:8.1f} s  {path}')
    terminalreporter.write_line(
        f'{sum(seconds.values()):8.1f} s  in {len(seconds)} file'
        f'{"s" if len(seconds) > 1 else ""}')


KEY_LISTINGS = osp.join(
    osp.dirname(osp.abspath(__file__)), 'data', 'official_keys')


@pytest.fixture
def fashion_mnist_root(tmp_path):
    return write_fashion_mnist(tmp_path / 'fashion-mnist')


@pytest.fixture
def make_fashion_mnist(tmp_path):
    """``make(count)``: synthetic Fashion-MNIST with ``count`` images per
    split; returns its root."""
    return lambda count: write_fashion_mnist(tmp_path / f'fm{count}', count)


@pytest.fixture
def mm_log():
    """Text logged through mmengine's current logger during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)


@pytest.fixture
def pretraining_checkpoint(tmp_path):
    """Factory of what ``tools/train.py`` writes for a tiny iTPN pixel model.

    ``save(name, arch, fpn_dim)`` returns the checkpoint's path and the model
    (``arch`` defaults to ``tiny_arch()``).
    Like a Runner checkpoint, it holds a message hub with an object that a
    tensors-only load must not rebuild.
    """

    def save(name='pretrain.pth', arch=None, fpn_dim=32):
        with DefaultScope.overwrite_default_scope('mmitpn'):
            model = MODELS.build(tiny_pixel_itpn(arch, fpn_dim=fpn_dim))
        path = str(tmp_path / name)
        torch.save(
            dict(
                meta=dict(epoch=1),
                state_dict=model.state_dict(),
                message_hub=dict(
                    log_scalars=dict(loss=HistoryBuffer([1.0], [1])))), path)
        return path, model

    return save


@pytest.fixture
def fast_itpn_checkpoint(tmp_path):
    """A tiny Fast-iTPN saved as the converter writes official weights
    (``backbone.*``, no pyramid); returns the path and the backbone."""
    from mmitpn.models import FastiTPN

    def save(name='fast_itpn.pth', arch=None, img_size=64):
        backbone = FastiTPN(
            arch or tiny_arch(), img_size=img_size, out_type='avg_featmap')
        path = str(tmp_path / name)
        torch.save(
            dict(state_dict={
                f'backbone.{k}': v
                for k, v in backbone.state_dict().items()
            }), path)
        return path, backbone

    return save


@pytest.fixture
def family_checkpoint(pretraining_checkpoint, fast_itpn_checkpoint):
    """``save(cfg, fpn_dim=32)``: a tiny checkpoint of the family of
    ``cfg``'s backbone (the converter's Fast-iTPN layout, or an iTPN
    pretraining checkpoint with that pyramid width); returns the path and
    the saved backbone."""

    def save(cfg, fpn_dim=32):
        if cfg.model.backbone.type == 'mmitpn.FastiTPN':
            return fast_itpn_checkpoint()
        path, model = pretraining_checkpoint(fpn_dim=fpn_dim)
        return path, model.backbone

    return save


@pytest.fixture
def check_checkpoint_errors(pretraining_checkpoint, tmp_path):
    """``check(build, fpn_dim)`` asserts that ``build(checkpoint)``'s
    ``init_weights`` names the mismatching tensors of a checkpoint of a wider
    HiViT and the path of a missing checkpoint."""

    def check(build, fpn_dim=32):
        wide, _ = pretraining_checkpoint(
            'wide.pth', arch=tiny_arch(embed_dims=96), fpn_dim=fpn_dim)
        with pytest.raises(
                ValueError,
                match=r'patch_embed.proj.weight: '
                r'checkpoint \(24, 3, 4, 4\), model \(16, 3, 4, 4\)'):
            build(wide).init_weights()
        missing = str(tmp_path / 'nowhere' / 'epoch_1600.pth')
        with pytest.raises(FileNotFoundError, match='nowhere/epoch_1600.pth'):
            build(missing).init_weights()

    return check


@pytest.fixture
def key_listing():
    """``read(*names, prefixes=None, realistic=False)``: random tensors (seed
    0) with the names and shapes of the official key listings in
    ``tests/data/official_keys``, each listing's keys under its prefix.

    ``realistic`` draws small weights with norms and layer scales near one,
    so that deep forwards stay well conditioned.
    """

    def read(*names, prefixes=None, realistic=False):
        generator = torch.Generator().manual_seed(0)
        state_dict = OrderedDict()
        for name, prefix in zip(names, prefixes or [''] * len(names)):
            with open(osp.join(KEY_LISTINGS, name)) as f:
                for line in f:
                    if line.startswith('#') or not line.strip():
                        continue
                    key, shape = line.rstrip('\n').split('\t')
                    value = torch.randn(
                        ast.literal_eval(shape), generator=generator)
                    if realistic:
                        value *= 0.02
                        if 'norm' in key and key.endswith('weight') \
                                or 'gamma' in key:
                            value += 1
                    state_dict[prefix + key] = value
        return state_dict

    return read


@pytest.fixture
def train_one_iteration(tmp_path):
    """``train(cfg)``: run a config already shrunk to one training iteration
    (tiny model and data) without validation, testing, checkpoints or
    drawing, check that it ran one iteration with a finite loss, and return
    the runner."""

    def train(cfg):
        for stage in ('val', 'test'):
            for key in ('dataloader', 'evaluator', 'cfg'):
                cfg[f'{stage}_{key}'] = None
        cfg.work_dir = str(tmp_path / 'work_dir')
        cfg.default_hooks.checkpoint = None
        # PreemptionHook saves through the checkpoint hook.
        cfg.custom_hooks = [
            hook for hook in cfg.get('custom_hooks', [])
            if hook.type.split('.')[-1] != 'PreemptionHook'
        ]
        cfg.default_hooks.pop('visualization', None)
        cfg.default_hooks.logger.interval = 1
        runner = Runner.from_cfg(adapt_cfg_to_device(cfg))
        runner.train()
        assert runner.iter == 1
        loss = runner.message_hub.get_scalar('train/loss').data[0][-1]
        assert math.isfinite(float(loss))
        return runner

    return train

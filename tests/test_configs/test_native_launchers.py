# Copyright (c) mmitpn contributors. All rights reserved.
"""Shipped configs run under the launcher of the library their task belongs
to (what ``mim train mmpretrain ...`` runs), not only under mmitpn's."""
import glob
import os
import os.path as osp
import subprocess
import sys

import mmpretrain
import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMPRETRAIN_TRAIN = osp.join(
    osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
CLS_DEMO = osp.join(
    REPO, 'configs', 'cls', 'demo',
    'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
SHIPPED = sorted(
    p for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '/_base_/' not in p)
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


@pytest.mark.parametrize(
    'config', SHIPPED, ids=[osp.relpath(p, REPO) for p in SHIPPED])
def test_loaders_suit_every_launcher(config):
    """OpenMMLab launchers default to ``persistent_workers=True``, which
    torch refuses without worker processes; every shipped config checkpoints
    through SafeCheckpointHook whatever launches it."""
    cfg = Config.fromfile(config)
    for name in LOADERS:
        loader = cfg.get(name)
        if loader and loader.get('num_workers') == 0:
            assert loader.get('persistent_workers') is False, name
    assert cfg.default_hooks.checkpoint.type.endswith('SafeCheckpointHook')


@pytest.mark.skipif(
    not osp.isfile(MMPRETRAIN_TRAIN),
    reason="mmpretrain's tools/train.py is not installed")
def test_cls_demo_trains_under_mmpretrain_launcher(tmp_path,
                                                   fashion_mnist_root,
                                                   pretraining_checkpoint):
    checkpoint, _ = pretraining_checkpoint()
    config = tmp_path / 'tiny_cls_demo.py'
    config.write_text(f"""_base_ = {CLS_DEMO!r}
model = dict(
    backbone=dict(
        arch=dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2,
                  num_heads=4),
        init_cfg=dict(checkpoint={checkpoint!r})),
    head=dict(in_channels=64))
train_dataloader = dict(
    batch_size=2, dataset=dict(data_root={fashion_mnist_root!r}, indices=2))
val_dataloader = dict(
    batch_size=2, dataset=dict(data_root={fashion_mnist_root!r}, indices=2))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True)]
default_hooks = dict(checkpoint=dict(interval=1))
""")
    work_dir = tmp_path / 'work_dir'
    env = dict(os.environ, PYTHONPATH=REPO)
    run = subprocess.run([
        sys.executable, MMPRETRAIN_TRAIN,
        str(config), '--work-dir',
        str(work_dir)
    ],
                         capture_output=True,
                         text=True,
                         env=env,
                         cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert 'accuracy/top1' in run.stdout + run.stderr
    torch.load(work_dir / 'epoch_1.pth', weights_only=True)


@pytest.mark.skipif(
    not osp.isfile(MMPRETRAIN_TRAIN),
    reason="mmpretrain's tools/train.py is not installed")
def test_pretrain_demo_trains_and_resumes_under_mmpretrain_launcher(tmp_path):
    # The pretraining run of tools/train.py's resume test (tests/ is on
    # sys.path under pytest, as for shipped_configs).
    from test_tools.test_train_resume_and_dist import write_configs
    base, _ = write_configs(tmp_path, kill_at=0)
    work_dir = str(tmp_path / 'work_dir')
    env = dict(os.environ, PYTHONPATH=REPO)

    def train(*args):
        return subprocess.run([
            sys.executable, MMPRETRAIN_TRAIN, base, '--work-dir', work_dir,
            *args
        ],
                              capture_output=True,
                              text=True,
                              env=env)

    run = train('--cfg-options', 'train_cfg.max_epochs=2')
    assert run.returncode == 0, run.stderr[-3000:]
    run = train('--resume', '--cfg-options', 'train_cfg.max_epochs=3')
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert 'resumed epoch: 2, iter: 8' in output
    assert 'is not HistoryBuffer' not in output
    assert 'is not defined in message_hub' not in output

# Copyright (c) mmitpn contributors. All rights reserved.
"""tools/train.py end to end: an interrupted and resumed run repeats the
uninterrupted one exactly; dist_train.sh runs two processes on the CPU."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import torch
from PIL import Image
from tiny_models import tiny_arch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DEMO = osp.join(REPO, 'configs', 'pretrain', 'demo',
                'itpn-pixel_hivit-demo_1xb32-coslr-40e_skimage-96px.py')
TRAIN = osp.join(REPO, 'tools', 'train.py')


def write_images(folder, count):
    os.makedirs(folder)
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(osp.join(folder, f'{i}.png'))


def write_configs(tmp_path, kill_at):
    """A small pixel + MFM run (4 epochs x 4 iterations) and its twin that
    kills itself before iteration ``kill_at``."""
    images = str(tmp_path / 'images')
    write_images(images, 16)
    base = tmp_path / 'base.py'
    base.write_text(f"""_base_ = {DEMO!r}
model = dict(
    backbone=dict(arch={tiny_arch(num_heads=2)!r}),
    neck=dict(embed_dims=64, fpn_dim=32),
    head=dict(fpn_dim=32, decoder_embed_dims=32, decoder_depth=1,
              decoder_num_heads=2),
    mfm_head=dict(type='iTPNMFMHead', fpn_dim=32, teacher_dims=(16, 32, 64),
                  embed_dims=32, depth=1, num_heads=2, img_size=96),
    ema=dict(momentum=0.1, end_momentum=0.))
train_dataloader = dict(batch_size=4, dataset=dict(data_root={images!r}))
train_cfg = dict(max_epochs=4)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=1,
         convert_to_iter_based=True),
]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval=1, max_keep_ckpts=10))
log_processor = dict(window_size=1)
""")
    killed = tmp_path / 'killed.py'
    killed.write_text(f"""_base_ = './base.py'
custom_imports = dict(imports=['fault_injection'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='IterationSeedHook'),
                dict(type='KillAtIterationHook', iteration={kill_at})]
""")
    return str(base), str(killed)


def train(config, work_dir, *args):
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([REPO, osp.join(REPO, 'tests')]))
    return subprocess.run(
        [sys.executable, TRAIN, config, '--work-dir', work_dir, *args],
        capture_output=True,
        text=True,
        env=env)


def logged_losses(work_dir):
    losses = {}
    for path in sorted(
            glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        with open(path) as f:
            for line in f:
                record = json.loads(line)
                if 'iter' not in record:  # e.g. reconstruction/pattern_r2
                    continue
                losses[record['iter']] = {
                    k: v
                    for k, v in record.items() if k.startswith('loss')
                }
    return losses


def test_killed_run_resumes_exactly(tmp_path):
    base, killed = write_configs(tmp_path, kill_at=6)
    reference_dir = str(tmp_path / 'reference')
    run = train(base, reference_dir)
    assert run.returncode == 0, run.stderr[-3000:]

    resumed_dir = str(tmp_path / 'resumed')
    run = train(killed, resumed_dir)
    assert run.returncode == -9, 'the run was not killed'
    assert osp.exists(osp.join(resumed_dir, 'epoch_1.pth'))
    assert not osp.exists(osp.join(resumed_dir, 'epoch_2.pth'))
    run = train(base, resumed_dir, '--resume')
    assert run.returncode == 0, run.stderr[-3000:]
    # The demo config's ResumableEpochBasedTrainLoop seeds every sample.
    assert 'Resumed at iteration 4: every sample is augmented from its own ' \
        'seed, the continuation is exact.' in run.stdout + run.stderr

    expected, actual = logged_losses(reference_dir), logged_losses(resumed_dir)
    assert sorted(expected) == list(range(1, 17))
    assert sorted(actual) == list(range(1, 17))
    for iteration in range(1, 17):
        assert actual[iteration] == expected[iteration], iteration
    assert set(expected[16]) >= {'loss_pixel', 'loss_mfm_s4', 'loss_mfm_s16'}

    final = [
        torch.load(osp.join(d, 'epoch_4.pth'), weights_only=False)
        for d in (reference_dir, resumed_dir)
    ]
    teacher_keys = [
        k for k in final[0]['state_dict'] if k.startswith('teacher.')
    ]
    assert len(teacher_keys) > 10
    for key, value in final[0]['state_dict'].items():
        assert torch.equal(value, final[1]['state_dict'][key]), key


def test_dist_train_sh_runs_two_processes_on_cpu(tmp_path):
    base, _ = write_configs(tmp_path, kill_at=0)
    work_dir = str(tmp_path / 'dist')
    env = dict(os.environ, PYTHON=sys.executable, PORT='29533')
    run = subprocess.run([
        osp.join(REPO, 'tools', 'dist_train.sh'), base, '2', '--work-dir',
        work_dir, '--cfg-options', 'train_cfg.max_epochs=2'
    ],
                         capture_output=True,
                         text=True,
                         env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert 'Distributed training: True' in output
    assert 'gloo backend' in output
    # 16 images on 2 ranks with batch 4: 2 iterations per epoch.
    assert sorted(logged_losses(work_dir)) == [1, 2, 3, 4]
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))


def test_tensorboard_switch_writes_event_files(tmp_path):
    base, _ = write_configs(tmp_path, kill_at=0)
    work_dir = str(tmp_path / 'tb')
    run = train(base, work_dir, '--tensorboard', '--cfg-options',
                'train_cfg.max_epochs=2')
    assert run.returncode == 0, run.stderr[-3000:]
    events = glob.glob(
        osp.join(work_dir, '*', 'vis_data', '**', 'events.out.tfevents.*'),
        recursive=True)
    assert events and os.path.getsize(events[0]) > 0

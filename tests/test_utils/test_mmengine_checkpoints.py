# Copyright (c) mmitpn contributors. All rights reserved.
"""Checkpoints that mmengine's own ``CheckpointHook`` writes for a model
that is not mmitpn's resume exactly in a process that imported mmitpn, and
mmitpn's loader reads them exactly."""
import os
import os.path as osp
import pickle
import subprocess
import sys

import torch
from mmengine.runner import CheckpointLoader
from mmengine_toy_run import assert_same, train

from mmitpn.utils import load_checkpoint_file

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOY_RUN = osp.join(osp.dirname(osp.abspath(__file__)), 'mmengine_toy_run.py')
# What mmengine logs when a resumed message hub holds something other than
# history buffers, and what mmitpn logged when it replaced them.
PLACEHOLDER_SIGNS = ('is not HistoryBuffer', 'is not defined in message_hub',
                     'Ignored', 'not written by mmitpn')


def toy_run(work_dir, *args):
    """Train the toy model in a fresh process."""
    return subprocess.run([sys.executable, TOY_RUN,
                           str(work_dir), *args],
                          capture_output=True,
                          text=True,
                          env=dict(os.environ, PYTHONPATH=REPO))


def trusted_load(path):
    """The test's own file, fully unpickled: the ground truth."""
    return torch.load(path, weights_only=False)


def test_foreign_checkpoint_resumes_exactly_with_mmitpn_imported(tmp_path):
    reference = tmp_path / 'reference'
    run = toy_run(reference, '--epochs', '2')
    assert run.returncode == 0, run.stderr[-3000:]

    resumed, hub = tmp_path / 'resumed', tmp_path / 'hub.pkl'
    run = toy_run(resumed, '--epochs', '2', '--resume-from',
                  str(reference / 'epoch_1.pth'), '--import-mmitpn',
                  '--dump-hub', str(hub))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert 'resumed epoch: 1, iter: 4' in output
    assert not [sign for sign in PLACEHOLDER_SIGNS if sign in output]

    # As the resumed run starts, its message hub holds every history buffer
    # (values, counts, dtypes, maximum length) and every runtime entry of
    # the checkpoint, exactly.
    saved = trusted_load(reference / 'epoch_1.pth')['message_hub']
    with open(hub, 'rb') as f:
        restored = pickle.load(f)
    assert sorted(saved['log_scalars']) == [
        'train/data_time', 'train/loss', 'train/lr', 'train/time'
    ]
    assert_same(saved['log_scalars'], restored['log_scalars'], 'log_scalars')
    assert 'eta' in saved['runtime_info']  # a numpy scalar
    for key, value in saved['runtime_info'].items():
        assert_same(value, restored['runtime_info'][key],
                    f'runtime_info[{key!r}]')

    # It ends where the uninterrupted run ends: weights, and 8 entries of
    # every history, of which the timings of epoch 2 are measured anew.
    expected, actual = (
        trusted_load(folder / 'epoch_2.pth')
        for folder in (reference, resumed))
    assert_same(expected['state_dict'], actual['state_dict'], 'state_dict')
    for name, buffer in expected['message_hub']['log_scalars'].items():
        logs, counts = actual['message_hub']['log_scalars'][name].data
        assert len(logs) == 8, name
        assert_same(buffer.data[1], counts, name)
        if name.endswith('time'):
            assert_same(buffer.data[0][:4], logs[:4], name)
        else:
            assert_same(buffer.data[0], logs, name)


def test_mmitpn_loader_reads_a_foreign_checkpoint_exactly(tmp_path):
    train(str(tmp_path), 1)
    path = str(tmp_path / 'epoch_1.pth')
    expected = trusted_load(path)
    for loaded in (load_checkpoint_file(path),
                   CheckpointLoader.load_checkpoint(path, map_location='cpu')):
        assert_same(expected, loaded)
        loss = loaded['message_hub']['log_scalars']['train/loss']
        assert loss.statistics('mean') == \
            expected['message_hub']['log_scalars']['train/loss'].mean()

# Copyright (c) mmitpn contributors. All rights reserved.
"""tools/train.py when a checkpoint write fails half way: no partial file,
the previous checkpoint intact and named by last_checkpoint, and --resume
ends where an uninterrupted run ends, message hub included."""
import glob
import os.path as osp

import torch
from test_train_resume_and_dist import train, write_configs

HUB_WARNINGS = ('is not HistoryBuffer', 'is not defined in message_hub')


def test_failed_write_leaves_previous_checkpoint_and_resumes(tmp_path):
    base, _ = write_configs(tmp_path, kill_at=0)
    failing = tmp_path / 'failing.py'
    failing.write_text(f"""_base_ = {base!r}
custom_imports = dict(imports=['fault_injection'],
                      allow_failed_imports=False)
custom_hooks = [dict(type='IterationSeedHook'),
                dict(type='FailCheckpointWriteHook', failing_save=2)]
""")
    two_epochs = ('--cfg-options', 'train_cfg.max_epochs=2')
    reference_dir = str(tmp_path / 'reference')
    run = train(base, reference_dir, *two_epochs)
    assert run.returncode == 0, run.stderr[-3000:]

    work_dir = tmp_path / 'failed'
    run = train(str(failing), str(work_dir), *two_epochs)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert 'Could not write' in last, run.stderr[-3000:]
    assert 'epoch_2.pth (File too large)' in last, last
    print(last)
    assert 'Traceback' not in run.stderr
    assert sorted(p.name for p in work_dir.iterdir()
                  if p.is_file() and p.suffix != '.py') == [
                      'epoch_1.pth', 'last_checkpoint'
                  ]  # no epoch_2.pth, no temporary file
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_1.pth')
    torch.load(work_dir / 'epoch_1.pth', weights_only=True)

    run = train(base, str(work_dir), '--resume', *two_epochs)
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert 'resumed epoch: 1, iter: 4' in output
    assert not [w for w in HUB_WARNINGS if w in output]
    # The run's own checkpoints are plain data: torch's tensors-only load
    # reads them without any allow-listing.
    reference, resumed = (
        torch.load(osp.join(d, 'epoch_2.pth'), weights_only=True)
        for d in (reference_dir, str(work_dir)))
    for key, value in reference['state_dict'].items():
        assert torch.equal(value, resumed['state_dict'][key]), key
    scalars = reference['message_hub']['log_scalars']
    assert 'train/loss' in scalars
    assert sorted(scalars) == sorted(resumed['message_hub']['log_scalars'])
    for name, buffer in scalars.items():
        restored = resumed['message_hub']['log_scalars'][name]
        # Epoch 1's history came back through the checkpoint; timings
        # differ from run to run, losses and learning rates do not.
        assert torch.equal(buffer['count_history'], restored['count_history'])
        if not name.endswith('time'):
            assert torch.equal(buffer['log_history'],
                               restored['log_history']), name
    assert not glob.glob(str(work_dir / '.*.tmp'))

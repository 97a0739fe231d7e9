# Copyright (c) mmitpn contributors. All rights reserved.
"""``make demo``'s script end to end on a tiny set: data, 3 pretraining
epochs, held-out pattern R², the probe against random init, times."""
import os
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_run_demo_closes_with_its_numbers(tmp_path):
    env = dict(
        os.environ,
        PYTHON=sys.executable,
        PYTHONPATH=REPO,
        DEMO_DATA=str(tmp_path / 'objects'),
        DEMO_TRAIN='40',
        DEMO_TEST='10',
        DEMO_HELD_OUT='6',
        DEMO_PROBE_TRAIN='40',
        INSTALL_STAMP=str(tmp_path / 'no-stamp'))
    work_dir = tmp_path / 'work'
    result = subprocess.run(
        [osp.join(REPO, 'tools', 'misc', 'run_demo.sh'),
         str(work_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    closing = result.stdout.split('[make demo] what it showed')[1]
    assert 'pattern R2 of the hidden units of 6 image(s): ' in closing
    probes = [
        line for line in closing.splitlines() if line.startswith('probe: ')
    ]
    assert len(probes) == 2 and 'epoch_3.pth' in probes[0]
    assert 'random init' in probes[1]
    assert 'wall times: install ? s' in closing and 'CPU times' in closing
    assert (work_dir / 'reconstructions' / 'held_out.png').is_file()
    assert len(list((work_dir / 'reconstructions').glob('*_recon.png'))) == 4
    assert (tmp_path / 'objects' / 'meta' / 'train.txt').is_file()

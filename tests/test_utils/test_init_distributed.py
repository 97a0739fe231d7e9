# Copyright (c) mmitpn contributors. All rights reserved.
"""A job that torchrun restarts starts its process group again although
the store still holds the first attempt's addresses: rank 1 of the second
attempt is up before rank 0, as on a loaded machine, and must not connect
to the address of the rank 0 that died with the first attempt."""
import os
import os.path as osp
import subprocess
import sys

WORKER = '''
import os, time
import torch
import torch.distributed as dist
from mmitpn.utils import init_distributed

attempt = os.environ['TORCHELASTIC_RESTART_COUNT']
rank = int(os.environ['RANK'])
if attempt != '0' and rank == 0:
    time.sleep(3)
init_distributed('pytorch')
dist.barrier()
if attempt == '0' and rank == 1:
    os._exit(1)
total = torch.ones(1)
dist.all_reduce(total)
print(f'attempt {attempt} rank {rank} sum {total.item():g}', flush=True)
dist.destroy_process_group()
'''


def test_restarted_job_starts_its_group_afresh(tmp_path):
    worker = tmp_path / 'worker.py'
    worker.write_text(WORKER)
    run = subprocess.run([
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node', '2',
        '--max-restarts', '1', '--master_port', '29627',
        str(worker)
    ],
                         capture_output=True,
                         text=True,
                         timeout=120,
                         cwd=osp.dirname(osp.abspath(__file__)),
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert run.returncode == 0, run.stderr[-2000:]
    assert 'attempt 1 rank 0 sum 2' in run.stdout
    assert 'attempt 1 rank 1 sum 2' in run.stdout

# Copyright (c) mmitpn contributors. All rights reserved.
"""docs/user_guides/train.md: the learning-rate table states each config's
per-GPU batch, ``auto_scale_lr.base_batch_size`` and lr, and the lr that
mmengine's linear scaling gives on 8 GPUs; the Slurm CPUs table states each
task's ``num_workers``; the multi-node example gives each node its own
``NODE_RANK``. The configs are read from the suite's record of what each
resolves to (``tests/shipped_configs.py``, compared with the configs by
``tests/test_configs/test_config_layout.py``), which takes no parsing."""
import math
import os.path as osp
import re

import pytest
from shipped_configs import read_record

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = osp.join(REPO, 'docs', 'user_guides', 'train.md')
with open(PAGE, encoding='utf-8') as f:
    TEXT = f.read()


def table_rows(header_start: str):
    """The cells of the rows of the table whose header starts so."""
    lines = TEXT.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith('|'):
            break
        rows.append([cell.strip() for cell in line.strip('|').split('|')])
    return rows


CONFIGS = read_record()['configs']


def config_path(name: str) -> str:
    """``<task>/<name>.py``, relative to ``configs/``."""
    paths = [path for path in CONFIGS if osp.basename(path) == f'{name}.py']
    assert len(paths) == 1, name
    return paths[0]


def resolved(name: str) -> dict:
    return CONFIGS[config_path(name)]


LR_ROWS = table_rows('| config | images per GPU |')


def test_lr_table_has_every_task():
    tasks = {config_path(row[0].strip('`')).split('/')[0] for row in LR_ROWS}
    assert tasks == {'pretrain', 'cls', 'det', 'seg'}


@pytest.mark.parametrize('row', LR_ROWS, ids=[r[0] for r in LR_ROWS])
def test_lr_table_matches_the_configs(row):
    name, per_gpu, base, lr, lr_on_8 = row
    cfg = resolved(name.strip('`'))
    batch = cfg['train_dataloader']['batch_size']
    base_batch = cfg['auto_scale_lr']['base_batch_size']
    config_lr = cfg['optim_wrapper']['optimizer']['lr']
    assert int(per_gpu.split()[0]) == batch
    assert int(base) == base_batch
    assert cfg['auto_scale_lr']['enable']
    assert math.isclose(float(lr), config_lr)
    # mmengine: lr x (processes x batch per process) / base_batch_size.
    assert math.isclose(float(lr_on_8), config_lr * 8 * batch / base_batch)


def test_pixel_recipe_arithmetic():
    cfg = resolved('itpn-pixel_itpn-base_64xb64-amp-coslr-1600e_in1k')
    lr = cfg['optim_wrapper']['optimizer']['lr']
    assert math.isclose(lr, 1.5e-4 * 4096 / 256)
    assert 'lr is\n1.5e-4 x 4,096 / 256 = 2.4e-3' in TEXT
    assert math.isclose(lr * 8 * 64 / 4096, 3e-4)


@pytest.mark.parametrize(
    'row', table_rows('| configs | `num_workers`'), ids=lambda row: row[0])
def test_cpus_table_states_num_workers(row):
    folder = re.search(r'`configs/(\w+)/`', row[0]).group(1)
    workers = {
        cfg['train_dataloader']['num_workers']
        for path, cfg in CONFIGS.items()
        if path.startswith(f'{folder}/') and '/demo/' not in path
    }
    assert workers == {int(row[1])}
    assert int(row[2].split()[0]) >= int(row[1])


def test_every_node_gets_its_own_rank():
    ranks = re.findall(r'NNODES=2 NODE_RANK=(\d) ', TEXT)
    assert ranks == ['0', '1']

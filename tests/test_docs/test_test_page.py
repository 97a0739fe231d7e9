# Copyright (c) mmitpn contributors. All rights reserved.
"""The "Test a model" page works as written.

In a folder that holds ``configs/``, ``tools/``, the detection demo's data
(generated small) and stand-ins for its checkpoints (a random detector as
``work_dirs/demo_det/epoch_6.pth``, a random photograph-demo pretraining
model as ``work_dirs/demo/epoch_40.pth``), the page's commands run as
written: ``--out`` writes what its Python block reads, ``--show-dir``
draws, a pretraining checkpoint stops with the line the page shows and
``--allow-missing`` evaluates it anyway. Segmentation and classification
draw where the page's table says.
"""
import contextlib
import glob
import io
import os
import os.path as osp
import re
import runpy
import subprocess
import sys

import pytest
import torch
from mmengine.registry import MODELS, DefaultScope
from shipped_configs import load_config
from test_doc_commands import commands_of

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAGE = 'docs/user_guides/test.md'
COMMANDS = [
    c.argv[1:] for c in commands_of(PAGE)
    if c.argv[1:2] == ['tools/test.py'] and 'CONFIG' not in c.argv
]
DEMOS = {
    'det':
    'configs/det/demo/hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_'
    'shapes-coco-128px.py',
    'seg':
    'configs/seg/demo/hivit-demo_skimage-pre_upernet_1xb8-1k_'
    'shapes-seg-128px.py',
    'cls':
    'configs/cls/demo/hivit-demo_skimage-pre_1xb64-coslr-6e_'
    'fashion-mnist-64px.py',
    'pretrain':
    'configs/pretrain/demo/itpn-pixel_hivit-demo_1xb32-coslr-'
    '40e_skimage-96px.py',
}


def blocks(language):
    with open(osp.join(REPO, PAGE)) as f:
        return re.findall(rf'```{language}\n(.*?)```', f.read(), re.S)


def save_random(config, path):
    """A checkpoint of ``config``'s model at its random initialisation."""
    cfg = load_config(osp.join(REPO, config))
    for part in ('backbone', 'neck'):
        if cfg.model.get(part) and 'init_cfg' in cfg.model[part]:
            cfg.model[part].init_cfg = None
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(cfg.model)
    os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(dict(state_dict=model.state_dict()), path)


@pytest.fixture(scope='module')
def sandbox(tmp_path_factory):
    root = tmp_path_factory.mktemp('test_page')
    for folder in ('configs', 'tools'):
        os.symlink(osp.join(REPO, folder), root / folder)
    for task in ('coco', 'seg'):
        subprocess.run([
            sys.executable,
            osp.join(REPO, 'tools', 'dataset_converters',
                     f'make_shapes_{task}.py'),
            str(root / 'data' / f'shapes_{task}'), '--train', '2', '--val',
            '2', '--size', '64'
        ],
                       check=True,
                       capture_output=True)
    for task, path in (('det', 'demo_det/epoch_6.pth'), ('pretrain',
                                                         'demo/epoch_40.pth'),
                       ('seg', 'demo_seg/iter_1000.pth'),
                       ('cls', 'demo_cls/epoch_6.pth')):
        save_random(DEMOS[task], str(root / 'work_dirs' / path))
    return root


def run_test_tool(argv, monkeypatch, capsys):
    """Run ``tools/test.py`` as written; its exit status and stderr."""
    monkeypatch.setattr(sys, 'argv', argv)
    status = 0
    try:
        runpy.run_path(argv[0], run_name='__main__')
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().err


def test_out_and_show_dir_as_written(sandbox, monkeypatch, capsys):
    monkeypatch.chdir(sandbox)
    argv = [a for a in COMMANDS if '--out' in a][0]
    status, _ = run_test_tool(argv, monkeypatch, capsys)
    assert status == 0
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(blocks('python')[0], {})
    assert out.getvalue() == blocks('text')[1]
    drawn = glob.glob('work_dirs/demo_det/*/vis/*.png')
    assert len(drawn) == 2, drawn


def test_a_pretraining_checkpoint_needs_allow_missing(sandbox, monkeypatch,
                                                      capsys):
    monkeypatch.chdir(sandbox)
    refused, allowed = [a for a in COMMANDS if 'epoch_40.pth' in a[2]]
    status, err = run_test_tool(refused, monkeypatch, capsys)
    assert status == 1
    assert err.strip().splitlines()[-1] == blocks('text')[0].strip()
    status, _ = run_test_tool(allowed, monkeypatch, capsys)
    assert status == 0


# mmseg 1.2.2 names the drawing after the runner's iteration (0),
# onedl-mmsegmentation after the image's position in the test (1).
SEG_DRAWN = 'vis/vis_data/vis_image/test_00000.png_[01].png'


@pytest.mark.parametrize('task, drawn, options', [
    ('seg', SEG_DRAWN,
     ['default_hooks.visualization.type=SegVisualizationHook']),
    ('cls', 'vis/0_0.png', ['test_dataloader.dataset.indices=2']),
])
def test_show_dir_of_the_other_tasks(task, drawn, options, sandbox, tmp_path,
                                     monkeypatch, capsys, fashion_mnist_root):
    """The paths of the page's table (the demo segmentor has no drawing
    hook of its own; the classifier reads generated Fashion-MNIST)."""
    monkeypatch.chdir(sandbox)
    checkpoint = glob.glob(f'work_dirs/demo_{task}/*.pth')[0]
    argv = [
        'tools/test.py', DEMOS[task], checkpoint, '--work-dir',
        str(tmp_path / 'work_dir'), '--show-dir',
        str(tmp_path / 'vis'), '--cfg-options', *options
    ]
    if task == 'cls':
        argv.append(f'test_dataloader.dataset.data_root={fashion_mnist_root}')
    status, err = run_test_tool(argv, monkeypatch, capsys)
    assert status == 0, err[-2000:]
    assert len(glob.glob(str(tmp_path / drawn))) == 1


def test_show_dir_after_other_runners_in_the_process(sandbox, tmp_path,
                                                     monkeypatch, capsys):
    """A process that already built visualizers named as the task bases name
    theirs ('visualizer', with another save_dir), and a plain one after them,
    still draws where ``--show-dir`` says (the tools are run in-process by
    notebooks and by this suite)."""
    from mmdet.visualization import DetLocalVisualizer
    from mmengine.visualization import Visualizer
    from mmseg.visualization import SegLocalVisualizer
    for kind in (DetLocalVisualizer, SegLocalVisualizer):
        if not kind.check_instance_created('visualizer'):
            kind.get_instance('visualizer', save_dir=str(tmp_path / 'old'))
    Visualizer.get_instance(f'plain_{tmp_path.name}')
    monkeypatch.chdir(sandbox)
    argv = [
        'tools/test.py', DEMOS['seg'], 'work_dirs/demo_seg/iter_1000.pth',
        '--work-dir',
        str(tmp_path / 'work_dir'), '--show-dir',
        str(tmp_path / 'vis'), '--cfg-options',
        'default_hooks.visualization.type=SegVisualizationHook'
    ]
    status, err = run_test_tool(argv, monkeypatch, capsys)
    assert status == 0, err[-2000:]
    assert len(glob.glob(str(tmp_path / SEG_DRAWN))) == 1

# Copyright (c) mmitpn contributors. All rights reserved.
"""User errors end mmitpn's tools in one line naming the file (a traceback
only with --debug), and evaluation refuses checkpoints that lack tensors of
the model."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from tiny_models import tiny_arch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CLS_DEMO = osp.join(
    REPO, 'configs', 'cls', 'demo',
    'hivit-demo_skimage-pre_1xb64-coslr-6e_fashion-mnist-64px.py')
MISSING = 'nowhere/missing'


def run_tool(tool, *args, cwd=None):
    env = dict(os.environ, PYTHONPATH=REPO, PYTHONWARNINGS='ignore')
    return subprocess.run(
        [sys.executable, osp.join(REPO, tool), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd)


def assert_one_line(run, *fragments):
    assert run.returncode == 1, run.stderr[-3000:]
    assert 'Traceback' not in run.stderr, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert ': error: ' in last, run.stderr[-3000:]
    for fragment in fragments:
        assert fragment in last, last
    return last


TOOL_CASES = {
    'tools/train.py': (f'{MISSING}.py', ),
    'tools/test.py': (CLS_DEMO, f'{MISSING}.pth'),
    'demo/image_demo.py': ('image.png', CLS_DEMO, f'{MISSING}.pth'),
    'tools/benchmarks/benchmark_pretrain.py': (f'{MISSING}.py', ),
    'tools/analysis_tools/feature_probe.py':
    (f'{MISSING}.py', f'{MISSING}.pth'),
    'tools/analysis_tools/get_flops.py': (f'{MISSING}.py', ),
    'tools/misc/publish_model.py': (f'{MISSING}.pth', 'published.pth'),
    'tools/visualization/vis_reconstruction.py':
    (f'{MISSING}.py', f'{MISSING}.pth', 'image.png'),
}


@pytest.mark.parametrize('tool', sorted(TOOL_CASES))
def test_missing_file_is_one_line(tool, tmp_path):
    run = run_tool(tool, *TOOL_CASES[tool], cwd=str(tmp_path))
    assert_one_line(run, 'missing')
    run = run_tool(tool, *TOOL_CASES[tool], '--debug', cwd=str(tmp_path))
    assert 'Traceback' in run.stderr


def write_tiny_classifier_config(tmp_path, fashion_mnist_root):
    config = tmp_path / 'tiny_cls_demo.py'
    config.write_text(f"""_base_ = {CLS_DEMO!r}
model = dict(
    backbone=dict(
        arch={tiny_arch(embed_dims=64)!r},
        init_cfg=None),
    head=dict(in_channels=64))
test_dataloader = dict(
    batch_size=2, dataset=dict(data_root={fashion_mnist_root!r}, indices=2))
""")
    return str(config)


def test_test_py_refuses_a_pretraining_checkpoint(tmp_path, fashion_mnist_root,
                                                  pretraining_checkpoint):
    """A pretraining checkpoint has no classification head: evaluating a
    classifier with it would report the accuracy of a random head."""
    config = write_tiny_classifier_config(tmp_path, fashion_mnist_root)
    checkpoint, _ = pretraining_checkpoint()
    work_dir = str(tmp_path / 'work_dir')
    run = run_tool('tools/test.py', config, checkpoint, '--work-dir', work_dir)
    assert_one_line(run, f'{checkpoint} lacks', 'head.fc (weight, bias)',
                    '--allow-missing')
    run = run_tool('tools/test.py', config, checkpoint, '--work-dir', work_dir,
                   '--allow-missing')
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert 'they keep their random initialisation' in output
    assert 'accuracy/top1' in output


def test_malformed_coco_annotations_are_named(tmp_path):
    config = osp.join(
        REPO, 'configs', 'det', 'demo',
        'hivit-demo_skimage-pre_mask-rcnn_1xb4-6e_shapes-coco-'
        '128px.py')
    annotations = tmp_path / 'data' / 'shapes_coco' / 'annotations'
    annotations.mkdir(parents=True)
    (annotations / 'instances_train.json').write_text("{'images': []}")
    (annotations / 'instances_val.json').write_text('{"images": []}')
    run = run_tool('tools/train.py', config, cwd=str(tmp_path))
    assert_one_line(run, 'data/shapes_coco/annotations/instances_train.json',
                    'train_dataloader.dataset.ann_file', 'not valid JSON',
                    'line 1 column 2')
    (annotations / 'instances_val.json').unlink()
    (tmp_path / 'model.pth').write_bytes(b'')
    run = run_tool('tools/test.py', config, 'model.pth', cwd=str(tmp_path))
    assert_one_line(run, 'instances_val.json, which does not exist')

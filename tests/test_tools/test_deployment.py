# Copyright (c) mmitpn contributors. All rights reserved.
"""ONNX and torch.export of tiny HiViT, iTPN-pyramid and Fast-iTPN models
(windows, gathering tokens, token reduction) match PyTorch within 1e-4
(fp32); dynamic graphs are checked at a second size, batch and aspect."""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from tiny_models import tiny_arch

from mmitpn.deployment import (build_export_model, export_onnx, export_program,
                               onnx_max_abs_diff, program_max_abs_diff,
                               static_shape_reason)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ATOL = 1e-4
TINY = tiny_arch(depth=3, embed_dims=64)
# Windows of 2 units with a 3-unit-wide grid: padded windows.
WINDOWS = dict(window_size=2, global_blocks=(2, ))
MIGRATION = dict(
    token_reduction=dict(type='migration', start_block=1, keep_ratio=0.75))
WINDOW_MIGRATION = dict(
    token_reduction=dict(
        type='window_migration', start_block=1, keep_ratio=0.5))


def backbone(family='HiViT', **kwargs):
    return dict(
        type=f'mmitpn.{family}',
        arch=TINY,
        img_size=32,
        out_indices=(0, 1, 2),
        **kwargs)


def detector_cfg(family='HiViT', **kwargs):
    """A tiny RetinaNet on the backbone and the iTPN pyramid (as the det
    configs, with four levels: a fifth would be empty at 32 pixels)."""
    return Config(
        dict(
            default_scope='mmdet',
            model=dict(
                type='RetinaNet',
                backbone=backbone(family, **kwargs),
                neck=dict(
                    type='mmitpn.iTPNPyramid',
                    embed_dims=64,
                    fpn_dim=32,
                    fpn_depth=1,
                    num_outs=4),
                bbox_head=dict(
                    type='RetinaHead',
                    num_classes=2,
                    in_channels=32,
                    stacked_convs=1,
                    feat_channels=32,
                    anchor_generator=dict(
                        type='AnchorGenerator',
                        octave_base_scale=4,
                        scales_per_octave=1,
                        ratios=[1.0],
                        strides=[4, 8, 16, 32]),
                    bbox_coder=dict(type='DeltaXYWHBBoxCoder'),
                    loss_cls=dict(type='FocalLoss', use_sigmoid=True),
                    loss_bbox=dict(type='L1Loss')))))


def classifier_cfg(family='FastiTPN', **kwargs):
    model_backbone = backbone(family, out_type='avg_featmap', **kwargs)
    del model_backbone['out_indices']
    return Config(
        dict(
            default_scope='mmpretrain',
            model=dict(
                type='ImageClassifier',
                backbone=model_backbone,
                head=dict(type='LinearClsHead', num_classes=5,
                          in_channels=64))))


def images(batch, height, width, seed):
    return torch.randn(
        batch, 3, height, width, generator=torch.Generator().manual_seed(seed))


CASES = {
    'hivit-backbone': (lambda: detector_cfg(), 'backbone'),
    'hivit-pyramid-windows-gathering-bias': (lambda: detector_cfg(
        rel_pos_type='bias_table', gathering_tokens=2, **WINDOWS), 'pyramid'),
    'fast-itpn-classifier': (lambda: classifier_cfg(), 'classifier'),
    'fast-itpn-pyramid-windows-gathering':
    (lambda: detector_cfg('FastiTPN', gathering_tokens=2, **WINDOWS),
     'pyramid'),
    'hivit-classifier-migration-windows':
    (lambda: classifier_cfg('HiViT', **MIGRATION, **WINDOWS), 'classifier'),
    'fast-itpn-pyramid-migration-gathering':
    (lambda: detector_cfg('FastiTPN', gathering_tokens=2, **MIGRATION),
     'pyramid'),
    'hivit-pyramid-window-migration-gathering-bias': (lambda: detector_cfg(
        rel_pos_type='bias_table',
        gathering_tokens=2,
        **WINDOW_MIGRATION,
        **WINDOWS), 'pyramid'),
    'fast-itpn-backbone-window-migration':
    (lambda: detector_cfg('FastiTPN', **WINDOW_MIGRATION, **WINDOWS),
     'backbone'),
}


@pytest.mark.parametrize('case', list(CASES))
def test_onnx_and_torch_export_match_pytorch(case, tmp_path):
    make_cfg, part = CASES[case]
    torch.manual_seed(0)
    model = build_export_model(make_cfg(), part)
    dynamic = static_shape_reason(model) is None
    assert dynamic == ('migration' not in case)
    path = str(tmp_path / 'model.onnx')
    example = images(1, 32, 48, 0)
    export_onnx(model, example, path, dynamic=dynamic)
    # The export size, then (dynamic graphs) another batch, size and aspect
    # with padded windows and a grid at the position embedding's own size.
    sizes = [(1, 32, 48)] + ([(2, 48, 32), (1, 32, 32)] if dynamic else [])
    for seed, size in enumerate(sizes, 1):
        diffs = onnx_max_abs_diff(path, model, images(*size, seed))
        assert max(diffs) < ATOL, (size, diffs)
    program = export_program(model, example)
    diffs = program_max_abs_diff(program, model, images(1, 32, 48, 5))
    assert max(diffs) < ATOL, diffs


def test_a_dynamic_migration_graph_is_refused_as_it_would_be_wrong(tmp_path):
    cfg = detector_cfg(**MIGRATION)
    model = build_export_model(cfg, 'backbone')
    with pytest.raises(
            ValueError, match=r'token_reduction \(migration\) drops a number'):
        export_onnx(model, images(1, 32, 48, 0), str(tmp_path / 'm.onnx'))
    # One graph per size instead: exact at its size.
    path = str(tmp_path / 'static.onnx')
    export_onnx(model, images(1, 32, 48, 0), path, dynamic=False)
    assert max(onnx_max_abs_diff(path, model, images(1, 32, 48, 1))) < ATOL


def test_the_tool_exports_a_checkpoint_and_prints_the_differences(tmp_path):
    cfg = classifier_cfg(**WINDOWS)
    config = str(tmp_path / 'cls.py')
    cfg.dump(config)
    model = build_export_model(cfg, 'classifier')
    with torch.no_grad():
        model.classifier.head.fc.bias.add_(3.)
    checkpoint = str(tmp_path / 'cls.pth')
    torch.save(dict(state_dict=model.classifier.state_dict()), checkpoint)
    out = str(tmp_path / 'cls.onnx')
    command = [
        sys.executable,
        osp.join(REPO, 'tools', 'deployment',
                 'pytorch2onnx.py'), config, '--checkpoint', checkpoint,
        '--part', 'classifier', '--shape', '32', '--out', out, '--torch-export'
    ]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert 'dynamic batch, height and width' in lines[0]
    # Export size, then the second size (64x96, batch 2), for both.
    checks = [line for line in lines if 'max |diff|' in line]
    assert [line.split(':')[0].strip() for line in checks] == [
        'ONNX Runtime logits (1, 5)', 'torch.export logits (1, 5)',
        'ONNX Runtime logits (2, 5)', 'torch.export logits (2, 5)'
    ]
    assert osp.isfile(out) and osp.isfile(out[:-len('.onnx')] + '.pt2')
    # The checkpoint's weights are in the graph (bias +3).
    import onnxruntime
    session = onnxruntime.InferenceSession(
        out, providers=['CPUExecutionProvider'])
    logits = session.run(None, {'images': images(1, 32, 32, 0).numpy()})[0]
    with torch.no_grad():
        expected = model(images(1, 32, 32, 0))[0]
    assert abs(logits - expected.numpy()).max() < ATOL
    assert expected.mean() > 2

    # A classifier config has no pyramid: one line naming what to export.
    with pytest.raises(
            ValueError,
            match='part pyramid needs model.neck of '
            'type mmitpn.iTPNPyramid, got NoneType; export part '
            'backbone instead'):
        build_export_model(cfg, 'pyramid')

# Copyright (c) mmitpn contributors. All rights reserved.
"""ONNX graphs of a backbone's stride maps (static and dynamic) match
PyTorch within 1e-4 under ONNX Runtime, and the two command lines export
and check them (tiny architectures, random weights)."""
import contextlib
import io
import json
import os.path as osp
import runpy
import sys

import pytest
import torch
from tiny_models import tiny_arch

from mmitpn.apis import create_backbone
from mmitpn.deployment.backbone_export import (NORMALIZATION_KEY,
                                               backbone_parity,
                                               export_backbone_onnx,
                                               parity_table, parse_size)

onnx = pytest.importorskip('onnx', reason='onnx is not installed')
pytest.importorskip(
    'onnxruntime',
    reason='onnxruntime is not installed (requirements/optional.txt); no '
    'other runtime runs ONNX graphs here')

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = tiny_arch()
ATOL = 1e-4
OPTIONS = [
    'arch.embed_dims=64', 'arch.stem_mlp_blocks=(1,1)', 'arch.depth=2',
    'arch.num_heads=4'
]


def worst(results):
    return max(result.max_abs_diff for result in results)


@pytest.mark.parametrize('family', ['FastiTPN', 'HiViT'])
def test_static_and_dynamic_graphs_match_pytorch(family, tmp_path):
    torch.manual_seed(0)
    backbone = create_backbone(family, arch=TINY, img_size=64, in_channels=6)
    static = str(tmp_path / 'template.onnx')
    shapes = export_backbone_onnx(backbone, static, (32, 32), dynamic=False)
    assert shapes == dict(
        stride4=(1, 16, 8, 8), stride8=(1, 32, 4, 4), stride16=(1, 64, 2, 2))
    graph = onnx.load(static)
    assert [
        d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim
    ] == [1, 6, 32, 32]
    props = {prop.key: prop.value for prop in graph.metadata_props}
    assert json.loads(props[NORMALIZATION_KEY]) == dict(
        mean=[123.675, 116.28, 103.53] * 2,
        std=[58.395, 57.12, 57.375] * 2,
        channel_order='RGB',
        value_range=255.)
    results = backbone_parity(static, backbone, [(32, 32)])
    assert [r.output for r in results] == ['stride4', 'stride8', 'stride16']
    assert worst(results) < ATOL
    with pytest.raises(ValueError, match='static graph for input'):
        backbone_parity(static, backbone, [(64, 64)])

    dynamic = str(tmp_path / 'encoder.onnx')
    export_backbone_onnx(backbone, dynamic, (64, 64))
    # The size it was traced at, the template size, a non-square search
    # region and a batch of two.
    sizes = [(64, 64), (32, 32), (48, 80)]
    results = backbone_parity(dynamic, backbone, sizes, batch=2)
    inputs = [result.input_shape for result in results[::3]]
    assert inputs == [(2, 6, 64, 64), (2, 6, 32, 32), (2, 6, 48, 80)]
    assert results[-1].output_shape == (2, 64, 3, 5)
    assert worst(results) < ATOL
    table = parity_table(results).splitlines()
    assert table[0].startswith('| input | stride4 max abs diff')
    assert table[2].startswith('| 2x6x64x64 | ')
    assert len(table) == 2 + len(sizes)


def test_only_the_stride_maps_export():
    backbone = create_backbone(
        'FastiTPN', arch=TINY, img_size=64, out_type='raw')
    with pytest.raises(ValueError, match="out_type='featmap'"):
        export_backbone_onnx(backbone, 'unused.onnx', (32, 32))
    assert parse_size('192x320') == (192, 320) and parse_size('64') == (64, 64)
    for bad in ('40', '64x', 'big'):
        with pytest.raises(ValueError):
            parse_size(bad)


def run_tool(script, *args):
    """Run a tool in this process; returns its stdout."""
    argv = [script, *args]
    out = io.StringIO()
    old_argv, sys.argv = sys.argv, argv
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(
                osp.join(REPO, 'tools', 'deployment', script),
                run_name='__main__')
    finally:
        sys.argv = old_argv
    return out.getvalue()


def test_the_tools_export_a_checkpoint_and_print_the_parity_table(
        tmp_path, capsys, mm_log):
    rgb = create_backbone('FastiTPN', arch=TINY, img_size=64)
    with torch.no_grad():
        rgb.blocks[-1].mlp.w3.bias.add_(1.)
    checkpoint = str(tmp_path / 'rgb.pth')
    torch.save(dict(state_dict=rgb.state_dict()), checkpoint)
    out = str(tmp_path / 'encoder.onnx')
    printed = run_tool('backbone2onnx.py', 'FastiTPN', '--checkpoint',
                       checkpoint, '--in-channels', '6', '--img-size', '64',
                       '--shape', '64', '--out', out, '--backbone-options',
                       *OPTIONS)
    log = mm_log.getvalue()
    assert 'missing keys: none\nunexpected keys: none\nadapted: ' \
        'patch_embed.proj.weight 3 -> 6' in log
    lines = [
        line for line in printed.splitlines() if ' - mmengine - ' not in line
    ]
    assert lines[0] == f'FastiTPN -> {out} (opset 17, dynamic batch, ' \
        'height and width)'
    assert lines[1:4] == [
        '  stride4: (1, 16, 16, 16)', '  stride8: (1, 32, 8, 8)',
        '  stride16: (1, 64, 4, 4)'
    ]
    assert 'RGB order, pixel values 0-255' in lines[4]
    # The parity tool rebuilds the backbone from the graph's metadata.
    printed = run_tool('backbone_parity.py', out, '--sizes', '32', '48x80',
                       '--batch', '2')
    lines = [
        line for line in printed.splitlines() if ' - mmengine - ' not in line
    ]
    assert lines[0].startswith(f'{out} (FastiTPN): ONNX Runtime ')
    assert [line.split(' | ')[0]
            for line in lines[3:]] == ['| 2x6x32x32', '| 2x6x48x80']
    # The checkpoint's weights are in the graph (its +1 bias).
    import onnxruntime
    session = onnxruntime.InferenceSession(
        out, providers=['CPUExecutionProvider'])
    x = torch.randn(1, 3, 32, 32)
    stride16 = session.run(None, {'images': torch.cat([x, x], 1).numpy()})[2]
    with torch.no_grad():
        expected = rgb(x)[2]
    assert abs(stride16 - expected.numpy()).max() < ATOL

    # A static graph is checked at its own size only: one line saying so.
    static = str(tmp_path / 'static.onnx')
    run_tool('backbone2onnx.py', 'FastiTPN', '--img-size', '64', '--shape',
             '32', '--static', '--out', static, '--backbone-options', *OPTIONS)
    with pytest.raises(SystemExit) as exit:
        run_tool('backbone_parity.py', static, '--sizes', '48')
    assert exit.value.code == 1
    # One line from the tool (stderr may also hold logging's complaints
    # about a log stream of an earlier test).
    errors = [
        line for line in capsys.readouterr().err.splitlines()
        if line.startswith('backbone_parity.py: error: ')
    ]
    assert len(errors) == 1
    assert 'is a static graph for input [1, 3, 32, 32], it cannot run ' \
        '[1, 3, 48, 48]; export one graph per size or a dynamic one. ' \
        '(--debug shows the traceback)' in errors[0]

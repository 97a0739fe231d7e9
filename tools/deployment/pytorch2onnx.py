# Copyright (c) mmitpn contributors. All rights reserved.
"""Export the backbone, backbone + iTPN pyramid or classifier of a config
to ONNX and check it against PyTorch with ONNX Runtime.

The graph takes normalised images ``(B, 3, H, W)`` (H and W multiples of
16) named ``images``; batch, height and width are dynamic unless the model
needs one graph per size (token migration), and the check runs at the
export size and, for dynamic graphs, at a second size. Every output's max
|ONNX Runtime - PyTorch| is printed; a difference over
``--atol + --rtol * max|PyTorch|`` is an error. ``--torch-export`` also
exports the same module with ``torch.export`` (``.pt2``, one program per
size) and checks it the same way.

Examples:
    python tools/deployment/pytorch2onnx.py \
    configs/cls/fast-itpn-base_clip-l-1600e-pre_32xb32-amp-coslr-20e_in1k.py \
        --checkpoint fast_itpn_base_in1k.pth --part classifier \
        --out work_dirs/fast_itpn_base_cls.onnx
    python tools/deployment/pytorch2onnx.py \
        configs/det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py \
        --part pyramid --shape 800 1344 --torch-export \
        --cfg-options model.backbone.window_size=14 \
        "model.backbone.global_blocks=[5,11,17,23]"
"""
import argparse
import os
import os.path as osp
from typing import List, Sequence, Tuple

import torch
from mmengine.config import Config, DictAction

import mmitpn  # noqa: F401  (registers the mmitpn:: config prefix)
from mmitpn.deployment import (DEFAULT_OPSET, PARTS, ExportModel,
                               build_export_model, export_onnx, export_program,
                               onnx_max_abs_diff, output_names,
                               program_max_abs_diff, static_shape_reason)
from mmitpn.models.utils.unit_ops import unit_grid
from mmitpn.utils.cli import (add_debug_argument, add_shape_argument,
                              image_shape, run_tool)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--checkpoint',
        help='whole-model checkpoint (read as tensors only); without it the '
        'weights are random, which is enough for a parity check')
    parser.add_argument(
        '--part',
        choices=PARTS,
        default='backbone',
        help='backbone (as the config builds it), pyramid (backbone + '
        'iTPN pyramid neck, det/seg configs) or classifier (logits)')
    parser.add_argument(
        '--out',
        help='output .onnx file (default: work_dirs/<config>_<part>'
        '.onnx)')
    add_shape_argument(parser, 'export')
    parser.add_argument(
        '--check-shape',
        type=int,
        nargs='+',
        help='second size a dynamic graph is checked at (default: export '
        'size + 32 rows and + 64 columns)')
    parser.add_argument(
        '--batch', type=int, default=1, help='batch of the example input')
    parser.add_argument(
        '--static',
        action='store_true',
        help='fixed batch, height and width (one graph per size)')
    parser.add_argument(
        '--opset',
        type=int,
        default=DEFAULT_OPSET,
        help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument(
        '--atol', type=float, default=1e-4, help='absolute tolerance')
    parser.add_argument(
        '--rtol',
        type=float,
        default=1e-4,
        help='tolerance relative to the largest |output| of PyTorch')
    parser.add_argument(
        '--torch-export',
        action='store_true',
        help='also torch.export the module to <out>.pt2 and check it')
    parser.add_argument(
        '--seed', type=int, default=0, help='seed of the random inputs')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys, e.g. model.backbone.window_size=14')
    add_debug_argument(parser)
    args = parser.parse_args()
    for name in ('shape', 'check_shape'):
        value = getattr(args, name)
        if value is not None and len(value) not in (1, 2):
            parser.error(f'--{name.replace("_", "-")} takes one or two '
                         f'values, got {value}.')
    return args


def to_shape(values: Sequence[int]) -> Tuple[int, int]:
    shape = image_shape(values)
    unit_grid(*shape)  # one-line error unless multiples of 16
    return shape


def check(name: str, diffs: List[float], refs, names: List[str], atol: float,
          rtol: float) -> None:
    """Print the differences of every output; raise if one is too large."""
    failed = []
    for out_name, diff, ref in zip(names, diffs, refs):
        scale = float(ref.abs().max())
        bound = atol + rtol * scale
        print(f'  {name} {out_name} {tuple(ref.shape)}: max |diff| '
              f'{diff:.3g} (max |PyTorch| {scale:.3g}, bound {bound:.3g})')
        if not diff <= bound:
            failed.append(out_name)
    if failed:
        raise ValueError(f'{name} differs from PyTorch beyond '
                         f'{atol} + {rtol} * max|output| in {failed}.')


def check_size(model: ExportModel, shape: Tuple[int, int], batch: int,
               seed: int, onnx_path: str, program, args) -> None:
    images = torch.randn(
        batch, 3, *shape, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        refs = model(images)
    names = output_names(model)
    print(f'{batch}x3x{shape[0]}x{shape[1]}:')
    check('ONNX Runtime', onnx_max_abs_diff(onnx_path, model, images), refs,
          names, args.atol, args.rtol)
    if program is not None:
        check('torch.export', program_max_abs_diff(program, model, images),
              refs, names, args.atol, args.rtol)


def main():
    args = parse_args()
    shape = to_shape(args.shape)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    model = build_export_model(cfg, args.part, args.checkpoint)
    out = args.out or osp.join(
        'work_dirs',
        f'{osp.splitext(osp.basename(args.config))[0]}_{args.part}.onnx')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    dynamic = not args.static
    reason = static_shape_reason(model)
    if dynamic and reason is not None:
        print(f'note: {reason}: exporting for {shape[0]}x{shape[1]} only '
              '(export once per input size).')
        dynamic = False
    images = torch.randn(
        args.batch,
        3,
        *shape,
        generator=torch.Generator().manual_seed(args.seed))
    export_onnx(model, images, out, dynamic=dynamic, opset=args.opset)
    kind = 'dynamic batch, height and width' if dynamic else 'static shape'
    print(f'{args.part} of {args.config} -> {out} (opset {args.opset}, '
          f'{kind})')
    program = None
    if args.torch_export:
        program = export_program(model, images)
        program_path = osp.splitext(out)[0] + '.pt2'
        torch.export.save(program, program_path)
        print(f'torch.export -> {program_path} (static shape)')
    check_size(model, shape, args.batch, args.seed + 1, out, program, args)
    if dynamic:
        second = to_shape(args.check_shape or (shape[0] + 32, shape[1] + 64))
        program = None
        if args.torch_export:
            program = export_program(model,
                                     torch.randn(args.batch + 1, 3, *second))
        check_size(model, second, args.batch + 1, args.seed + 2, out, program,
                   args)


if __name__ == '__main__':
    run_tool(main)

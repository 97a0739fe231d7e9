# Copyright (c) mmitpn contributors. All rights reserved.
"""Export the stride-4/8/16 maps of a HiViT / iTPN / Fast-iTPN backbone,
built by name, to ONNX.

The graph takes normalised images ``images`` ``(B, C, H, W)`` (H and W
multiples of 16; mean, std and channel order are in the graph's metadata,
``mmitpn.input_normalization``) and returns ``stride4``, ``stride8`` and
``stride16`` (those of ``--out-indices``). ``--static`` fixes batch, height
and width to ``--batch`` and ``--shape`` (one graph per input size);
otherwise all three are dynamic. Check the graph against PyTorch with
``tools/deployment/backbone_parity.py``, which reads how the backbone was
built from the graph.

Example (a 6-channel Fast-iTPN-T tracker encoder, template 128 px):
    python tools/deployment/backbone2onnx.py fast-itpn-tiny \
        --checkpoint fast_itpn_tiny_1600e_1k.pt --in-channels 6 \
        --img-size 256 --shape 128 --static --out template_128.onnx
"""
import argparse
import os
import os.path as osp

from mmitpn.deployment.backbone_export import (add_backbone_arguments,
                                               build_backbone, build_settings,
                                               export_backbone_onnx)
from mmitpn.deployment.onnx_export import DEFAULT_OPSET
from mmitpn.utils.cli import (add_debug_argument, add_shape_argument,
                              image_shape, run_tool)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backbone_arguments(parser)
    add_shape_argument(parser, 'traced (static: the graph\'s)')
    parser.add_argument(
        '--batch', type=int, default=1, help='batch of the traced input')
    parser.add_argument(
        '--static',
        action='store_true',
        help='fixed batch, height and width (one graph per input size)')
    parser.add_argument(
        '--opset',
        type=int,
        default=DEFAULT_OPSET,
        help=f'ONNX opset (default {DEFAULT_OPSET})')
    parser.add_argument(
        '--out',
        help='output .onnx file (default: work_dirs/<name>_<H>x<W>.onnx)')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    size = image_shape(args.shape)
    settings = build_settings(args)
    backbone = build_backbone(settings)
    out = args.out or osp.join('work_dirs',
                               f'{args.name}_{size[0]}x{size[1]}.onnx')
    if osp.dirname(out):
        os.makedirs(osp.dirname(out), exist_ok=True)
    shapes = export_backbone_onnx(
        backbone,
        out,
        size,
        batch=args.batch,
        dynamic=not args.static,
        opset=args.opset,
        settings=settings,
        seed=args.seed)
    kind = f'static {args.batch}x{args.in_channels}x{size[0]}x{size[1]}' \
        if args.static else 'dynamic batch, height and width'
    print(f'{args.name} -> {out} (opset {args.opset}, {kind})')
    for name, shape in shapes.items():
        print(f'  {name}: {shape}')
    norm = backbone.input_normalization
    print(f'input: {norm.channel_order} order, pixel values 0-'
          f'{norm.value_range:g}, mean {list(norm.mean)}, std '
          f'{list(norm.std)} (not in the graph)')


if __name__ == '__main__':
    run_tool(main)

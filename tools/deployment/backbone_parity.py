# Copyright (c) mmitpn contributors. All rights reserved.
"""Check a backbone's ONNX graph against PyTorch: max |ONNX Runtime -
PyTorch| of every output at every given input size.

The backbone is rebuilt as ``tools/deployment/backbone2onnx.py`` built it
(the settings are in the graph's metadata; ``--checkpoint`` replaces the
stored path, e.g. on another machine). Both run on the same random
normalised inputs; ONNX Runtime on its CPU execution provider. Prints a
Markdown table (one row per input, ``max |diff| (max |PyTorch|)`` per
output); a difference over ``--atol + --rtol * max|PyTorch|`` is an error.

Example (a dynamic graph at the template and search sizes and a
non-square one):
    python tools/deployment/backbone_parity.py encoder.onnx \
        --sizes 128 256 192x320
"""
import argparse

import torch

from mmitpn.deployment.backbone_export import (backbone_parity, build_backbone,
                                               parity_table, parse_size,
                                               read_build_settings)
from mmitpn.utils.cli import add_debug_argument, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('onnx', help='graph written by backbone2onnx.py')
    parser.add_argument(
        '--sizes',
        nargs='+',
        required=True,
        help='input sizes, SIDE or HxW (e.g. 128 256 192x320); a static '
        'graph takes its own size only')
    parser.add_argument(
        '--batch', type=int, default=1, help='batch of the inputs')
    parser.add_argument(
        '--checkpoint',
        help='checkpoint to load instead of the one stored in the graph')
    parser.add_argument(
        '--atol', type=float, default=1e-4, help='absolute tolerance')
    parser.add_argument(
        '--rtol',
        type=float,
        default=1e-4,
        help='tolerance relative to the largest |output| of PyTorch')
    parser.add_argument(
        '--seed', type=int, default=1, help='seed of the random inputs')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    import onnxruntime
    args = parse_args()
    sizes = [parse_size(size) for size in args.sizes]
    settings = read_build_settings(args.onnx)
    if args.checkpoint:
        settings['checkpoint'] = args.checkpoint
    backbone = build_backbone(settings)
    results = backbone_parity(
        args.onnx, backbone, sizes, batch=args.batch, seed=args.seed)
    print(f'{args.onnx} ({settings["name"]}): ONNX Runtime '
          f'{onnxruntime.__version__} (CPU) vs PyTorch {torch.__version__}, '
          'fp32')
    print(parity_table(results))
    failed = [
        f'{result.output} at {"x".join(map(str, result.input_shape))}'
        for result in results if not result.max_abs_diff <= args.atol +
        args.rtol * result.max_abs_torch
    ]
    if failed:
        raise ValueError(f'ONNX Runtime differs from PyTorch beyond '
                         f'{args.atol} + {args.rtol} * max|output|: '
                         f'{", ".join(failed)}.')


if __name__ == '__main__':
    run_tool(main)

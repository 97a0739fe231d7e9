# Copyright (c) mmitpn contributors. All rights reserved.
"""Build every HiViT architecture and print its size, cost and one forward.

For each arch of ``HiViT.arch_zoo``: parameters (with relative position
bias and a 1000-class head, as published), multiply-accumulates at the given
size for the full image and for 75 %-masked pretraining (only visible units
are computed), the output shapes at stride 4/8/16, and the wall time of one
forward pass on this machine.

Example:
    python tools/analysis_tools/hivit_summary.py --archs hivit-tiny itpn-base
"""
import argparse
import time

import torch

from mmitpn.models import HiViT
from mmitpn.utils import count_macs
from mmitpn.utils.cli import add_debug_argument, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--archs',
        nargs='+',
        default=list(HiViT.arch_zoo),
        choices=list(HiViT.arch_zoo),
        help='architectures to summarise (default: all)')
    parser.add_argument(
        '--size', type=int, default=224, help='input side (multiple of 16)')
    parser.add_argument(
        '--mask-ratio',
        type=float,
        default=0.75,
        help='fraction of units dropped for the masked-cost column')
    add_debug_argument(parser)
    return parser.parse_args()


def summarise(arch, size, mask_ratio):
    torch.manual_seed(0)
    classifier = HiViT(
        arch, img_size=size, rel_pos_type='bias_table', out_type='avg_featmap')
    head = torch.nn.Linear(classifier.embed_dims, 1000)
    params = sum(p.numel() for m in (classifier, head) for p in m.parameters())
    images = torch.randn(1, 3, size, size)
    macs = count_macs(lambda: head(classifier(images)[0]))

    encoder = HiViT(
        arch,
        img_size=size,
        rel_pos_type='bias_table',
        out_indices=(0, 1, 2),
        out_type='raw').eval()
    num_units = (size // 16)**2
    ids_keep = torch.randperm(num_units)[:round(num_units *
                                                (1 - mask_ratio))][None]
    masked_macs = count_macs(lambda: encoder(images, ids_keep))
    full_macs = count_macs(lambda: encoder(images))

    dense = HiViT(arch, img_size=size, out_indices=(0, 1, 2)).eval()
    with torch.no_grad():
        start = time.perf_counter()
        outs = dense(images)
        seconds = time.perf_counter() - start
    shapes = ' '.join('x'.join(map(str, o.shape[1:])) for o in outs)
    return (f'{arch:16s} {params / 1e6:9.2f} {macs / 1e9:10.2f} '
            f'{masked_macs / full_macs:9.2f} {seconds * 1e3:9.0f}  {shapes}')


def main():
    args = parse_args()
    print(f'HiViT architectures at {args.size}x{args.size} (MACs count '
          'matrix products, convolutions and attention; params include '
          'relative position bias and a 1000-class head)')
    print(f'{"arch":16s} {"params(M)":>9s} {"GMACs":>10s} '
          f'{"masked/full":>9s} {"fwd(ms)":>9s}  outputs (C x H x W)')
    for arch in args.archs:
        print(summarise(arch, args.size, args.mask_ratio), flush=True)


if __name__ == '__main__':
    run_tool(main)

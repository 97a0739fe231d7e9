# Copyright (c) mmitpn contributors. All rights reserved.
"""Make the garments segmentation set from Fashion-MNIST, offline.

Each image is a black canvas with 1-3 Fashion-MNIST garments composited on
it; the class map labels each garment's pixels (brighter than a threshold,
prints filled) with 1 + its class, 0 the background: 11 classes. Training
canvases use the training garments, validation canvases the test garments
(:func:`projects.itpn_study.study.garments.make_garments_seg`). The same
seed gives the same set.

Example (from the repository root)::

    python -m projects.itpn_study.tools.make_garments_seg data/garments_seg
"""
import argparse

from mmitpn.datasets.fashion_mnist import DEBIAN_ROOT
from mmitpn.utils.cli import add_debug_argument, run_tool
from projects.itpn_study.study.garments import make_garments_seg


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='root of the data set')
    parser.add_argument('--train', type=int, default=2000, help='images')
    parser.add_argument('--val', type=int, default=500, help='images')
    parser.add_argument('--size', type=int, default=64, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--fashion-mnist-root',
        default=DEBIAN_ROOT,
        help="folder of Fashion-MNIST's IDX files (default: Debian's)")
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    for line in make_garments_seg(args.out_dir, args.train, args.val,
                                  args.size, args.seed,
                                  args.fashion_mnist_root):
        print(line)


if __name__ == '__main__':
    run_tool(main)

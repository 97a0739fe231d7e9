# Copyright (c) mmitpn contributors. All rights reserved.
"""Make an in-domain segmentation set from Fashion-MNIST, offline.

Each image is a black canvas with 1-3 Fashion-MNIST garments composited on
it (``mmitpn.utils.demo_data.paste_garments``); the class map labels each
garment's pixels (brighter than a threshold) with 1 + its class, 0 the
background: 11 classes. Training canvases use the training garments (the
images the pre-registered study pretrains on), validation canvases the
test garments. Writes ``images/{train,val}/*.png`` and
``annotations/{train,val}/*.png`` under ``out_dir``, the layout mmseg's
``BaseSegDataset`` reads. The same seed gives the same set.

Example:
    python tools/dataset_converters/make_garments_seg.py data/garments_seg \
        --train 2000 --val 500 --size 64
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image

from mmitpn.datasets import FashionMNIST
from mmitpn.datasets.fashion_mnist import DEBIAN_ROOT
from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.demo_data import paste_garments

CLASSES = ('background', ) + FashionMNIST.METAINFO['classes']


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
    rng = np.random.default_rng(args.seed)
    for split, source, count in (('train', 'train', args.train),
                                 ('val', 'test', args.val)):
        dataset = FashionMNIST(
            data_root=args.fashion_mnist_root,
            split=source,
            serialize_data=False)
        garments = np.stack([info['img'] for info in dataset.data_list])
        labels = np.array([info['gt_label'] for info in dataset.data_list])
        for folder in ('images', 'annotations'):
            os.makedirs(osp.join(args.out_dir, folder, split), exist_ok=True)
        pixels = np.zeros(len(CLASSES), dtype=np.int64)
        for index in range(count):
            image, label = paste_garments(garments, labels, args.size, rng)
            name = f'{index:05d}.png'
            Image.fromarray(image).save(
                osp.join(args.out_dir, 'images', split, name))
            Image.fromarray(label).save(
                osp.join(args.out_dir, 'annotations', split, name))
            pixels += np.bincount(label.ravel(), minlength=len(CLASSES))
        share = ', '.join(f'{name} {100 * p / pixels.sum():.1f}%'
                          for name, p in zip(CLASSES, pixels))
        print(f'{split}: {count} images from the {source} garments; '
              f'pixels: {share}')


if __name__ == '__main__':
    run_tool(main)

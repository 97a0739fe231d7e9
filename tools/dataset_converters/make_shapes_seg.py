# Copyright (c) mmitpn contributors. All rights reserved.
"""Make a small semantic segmentation set, offline.

Backgrounds are random crops of the photographs scikit-image ships; on each,
1-4 solid circles, squares and triangles are painted with ``skimage.draw``.
Writes ``images/{train,val}/*.png`` and class-index masks
``annotations/{train,val}/*.png`` (0 background, 1 circle, 2 square,
3 triangle) under ``out_dir``, the layout mmseg's ``BaseSegDataset`` reads.
The same seed gives the same set.

Example:
    python tools/dataset_converters/make_shapes_seg.py data/shapes_seg \
        --train 400 --val 100 --size 128
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image

from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.demo_data import load_photos, paste_shapes, random_crop


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='root of the data set')
    parser.add_argument('--train', type=int, default=400, help='images')
    parser.add_argument('--val', type=int, default=100, help='images')
    parser.add_argument('--size', type=int, default=128, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    photos = load_photos()
    for split, count in (('train', args.train), ('val', args.val)):
        for folder in ('images', 'annotations'):
            os.makedirs(osp.join(args.out_dir, folder, split), exist_ok=True)
        pixels = np.zeros(4, dtype=np.int64)
        for index in range(count):
            _, photo = photos[int(rng.integers(len(photos)))]
            image, instances = paste_shapes(
                random_crop(photo, args.size, 0.3, rng), rng)
            label = np.zeros(image.shape[:2], dtype=np.uint8)
            for kind, mask in instances:
                label[mask] = kind + 1
            name = f'{index:05d}.png'
            Image.fromarray(image).save(
                osp.join(args.out_dir, 'images', split, name))
            Image.fromarray(label).save(
                osp.join(args.out_dir, 'annotations', split, name))
            pixels += np.bincount(label.ravel(), minlength=4)
        share = ', '.join(f'{100 * p / pixels.sum():.1f}%' for p in pixels)
        print(f'{split}: {count} images; pixels of background, circle, '
              f'square, triangle: {share}')


if __name__ == '__main__':
    run_tool(main)

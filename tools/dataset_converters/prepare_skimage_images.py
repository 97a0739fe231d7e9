# Copyright (c) mmitpn contributors. All rights reserved.
"""Make a small unlabeled image set from the photographs scikit-image ships.

Random crops (random scale, position and flip) of 17 real photographs from
``skimage.data`` (astronaut, coffee, rocket, Hubble deep field, retina,
microscopy, textures, ...; CC0 or public domain per their docstrings) are
written as PNG files into one folder, which mmpretrain's ``CustomDataset``
reads with ``with_label=False``. Nothing is downloaded. The same seed gives
the same files.

Example:
    python tools/dataset_converters/prepare_skimage_images.py \
        data/skimage_unlabeled --num-images 1024 --size 128
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image

from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.demo_data import load_photos, random_crop


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='folder to write the PNG files to')
    parser.add_argument('--num-images', type=int, default=1024)
    parser.add_argument(
        '--size', type=int, default=128, help='side of the saved crops')
    parser.add_argument(
        '--min-scale',
        type=float,
        default=0.15,
        help='smallest crop side as a fraction of the shorter photo side')
    parser.add_argument(
        '--max-scale',
        type=float,
        default=1.0,
        help='largest crop side as a fraction of the shorter photo side')
    parser.add_argument('--seed', type=int, default=0)
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    photos = load_photos()
    for index in range(args.num_images):
        name, image = photos[index % len(photos)]
        crop = random_crop(image, args.size, args.min_scale, rng,
                           args.max_scale)
        Image.fromarray(crop).save(
            osp.join(args.out_dir, f'{name}_{index:05d}.png'))
    print(f'wrote {args.num_images} crops of {len(photos)} photographs to '
          f'{args.out_dir}')


if __name__ == '__main__':
    run_tool(main)

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

PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field',
          'immunohistochemistry', 'retina', 'camera', 'moon', 'coins', 'page',
          'text', 'brick', 'grass', 'gravel', 'clock', 'cell')


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
    parser.add_argument('--seed', type=int, default=0)
    return parser.parse_args()


def load_photos():
    import skimage.data
    photos = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append((name, image[..., :3]))
    return photos


def random_crop(image, size, min_scale, rng):
    height, width = image.shape[:2]
    side = int(min(height, width) * rng.uniform(min_scale, 1.0))
    top = rng.integers(0, height - side + 1)
    left = rng.integers(0, width - side + 1)
    crop = Image.fromarray(image[top:top + side, left:left + side])
    crop = crop.resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return crop


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out_dir, exist_ok=True)
    photos = load_photos()
    for index in range(args.num_images):
        name, image = photos[index % len(photos)]
        crop = random_crop(image, args.size, args.min_scale, rng)
        crop.save(osp.join(args.out_dir, f'{name}_{index:05d}.png'))
    print(f'wrote {args.num_images} crops of {len(photos)} photographs to '
          f'{args.out_dir}')


if __name__ == '__main__':
    main()

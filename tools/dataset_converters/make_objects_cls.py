# Copyright (c) mmitpn contributors. All rights reserved.
"""Make a small labelled image set of centred objects, offline.

Each image holds one light object (circle, square, triangle, star or ring,
:data:`mmitpn.utils.demo_data.OBJECTS`) of random size, rotation, offset
and shading near the centre of a black background, drawn exactly with
``skimage.draw``: smooth, centred objects like Fashion-MNIST's, which an
iTPN pixel model learns to complete within minutes on a CPU (``make demo``).
Writes ``{train,test}/<index>.png``, ``meta/{train,test}.txt`` (``<file>
<label>`` per line, in the random order the images were drawn, so the
first N of a split hold every class) and ``meta/classes.txt`` under
``out_dir``: mmpretrain's ``CustomDataset`` reads a split with labels
(``ann_file='meta/train.txt'``) or, without an ``ann_file`` and with
``with_label=False``, as unlabeled images. The same seed gives the same
set.

Example:
    python tools/dataset_converters/make_objects_cls.py data/objects \
        --train 8000 --test 1000 --size 64
"""
import argparse
import os
import os.path as osp

import numpy as np
from PIL import Image

from mmitpn.utils.demo_data import OBJECTS, centred_object


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='root of the data set')
    parser.add_argument('--train', type=int, default=8000, help='images')
    parser.add_argument('--test', type=int, default=1000, help='images')
    parser.add_argument('--size', type=int, default=64, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    if args.size < 16 or args.train < 1 or args.test < 1:
        parser.error('--size must be at least 16 and --train/--test at '
                     f'least 1; got {args.size}, {args.train}, {args.test}.')
    return args


def write_split(out_dir: str, split: str, count: int, size: int,
                rng: np.random.Generator) -> None:
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    lines = []
    for index in range(count):
        image, kind = centred_object(size, rng)
        file_name = f'{index:05d}.png'
        Image.fromarray(image).save(osp.join(out_dir, split, file_name))
        lines.append(f'{file_name} {kind}\n')
    with open(osp.join(out_dir, 'meta', f'{split}.txt'), 'w') as f:
        f.writelines(lines)


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(osp.join(args.out_dir, 'meta'), exist_ok=True)
    with open(osp.join(args.out_dir, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(name + '\n' for name in OBJECTS)
    for split, count in (('train', args.train), ('test', args.test)):
        write_split(args.out_dir, split, count, args.size, rng)
        print(f'{split}: {count} images of {len(OBJECTS)} classes in '
              f'{osp.join(args.out_dir, split)}')


if __name__ == '__main__':
    main()

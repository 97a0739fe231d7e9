# Copyright (c) mmitpn contributors. All rights reserved.
"""Make a small COCO-format instance segmentation set, offline.

Backgrounds are random crops of the photographs scikit-image ships; on each,
1-4 solid circles, squares and triangles (3 classes) are painted with
``skimage.draw``, so every instance has an exact mask (occluded parts
removed). Writes ``{train,val}/*.png`` and
``annotations/instances_{train,val}.json`` (RLE masks) under ``out_dir``,
the layout mmdet's ``CocoDataset`` reads. The same seed gives the same set.

Example:
    python tools/dataset_converters/make_shapes_coco.py data/shapes_coco \
        --train 400 --val 100 --size 128
"""
import argparse
import json
import os
import os.path as osp

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from mmitpn.utils.cli import add_debug_argument, run_tool
from mmitpn.utils.demo_data import (SHAPES, load_photos, paste_shapes,
                                    random_crop)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir', help='root of the data set')
    parser.add_argument('--train', type=int, default=400, help='images')
    parser.add_argument('--val', type=int, default=100, help='images')
    parser.add_argument('--size', type=int, default=128, help='image side')
    parser.add_argument('--seed', type=int, default=0)
    add_debug_argument(parser)
    return parser.parse_args()


def write_split(out_dir, split, count, size, photos, rng):
    os.makedirs(osp.join(out_dir, split), exist_ok=True)
    images, annotations = [], []
    for index in range(count):
        _, photo = photos[int(rng.integers(len(photos)))]
        image, instances = paste_shapes(
            random_crop(photo, size, 0.3, rng), rng)
        file_name = f'{index:05d}.png'
        Image.fromarray(image).save(osp.join(out_dir, split, file_name))
        images.append(
            dict(id=index, file_name=file_name, height=size, width=size))
        for kind, mask in instances:
            rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
            rle['counts'] = rle['counts'].decode('ascii')
            annotations.append(
                dict(
                    id=len(annotations) + 1,
                    image_id=index,
                    category_id=kind + 1,
                    segmentation=rle,
                    area=float(mask.sum()),
                    bbox=[float(v) for v in mask_utils.toBbox(rle)],
                    iscrowd=0))
    categories = [
        dict(id=i + 1, name=name, supercategory='shape')
        for i, name in enumerate(SHAPES)
    ]
    os.makedirs(osp.join(out_dir, 'annotations'), exist_ok=True)
    with open(
            osp.join(out_dir, 'annotations', f'instances_{split}.json'),
            'w') as f:
        json.dump(
            dict(
                images=images, annotations=annotations, categories=categories),
            f)
    return len(annotations)


def main():
    args = parse_args()
    rng = np.random.default_rng(args.seed)
    photos = load_photos()
    for split, count in (('train', args.train), ('val', args.val)):
        instances = write_split(args.out_dir, split, count, args.size, photos,
                                rng)
        print(f'{split}: {count} images, {instances} instances of '
              f'{len(SHAPES)} classes')


if __name__ == '__main__':
    run_tool(main)

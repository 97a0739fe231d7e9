# Copyright (c) mmitpn contributors. All rights reserved.
"""Tiny datasets in the layouts the shipped configs read (the dataset
preparation page): ImageNet (``data/imagenet``), COCO (``data/coco``) and
ADE20K (``data/ade/ADEChallengeData2016``), a few random images each; and
Fashion-MNIST's IDX files (the demo's dataset).

Test modules import these by name (``from dataset_layouts import
write_coco``), as they import :mod:`tiny_models`.
"""
import gzip
import json
import os.path as osp
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

SIZE = 64
# Two of COCO's categories, with their official ids.
COCO_CATEGORIES = [dict(id=1, name='person'), dict(id=3, name='car')]


def write_images(folder: Path,
                 names: List[str],
                 size: int = SIZE,
                 seed: int = 0) -> None:
    """Random RGB images ``folder/name`` (the suffix picks the format)."""
    rng = np.random.default_rng(seed)
    for name in names:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)


def write_imagenet(root: Path, per_class: int = 2) -> str:
    """``root/{train,val}`` and ``root/meta/{train,val}.txt`` with two
    classes (0 and 1): training images in class folders, validation
    images in one folder, as ImageNet is distributed."""
    train = {
        f'n0144076{label}/{label}_{i}.JPEG': label
        for label in (0, 1)
        for i in range(per_class)
    }
    val = {f'ILSVRC2012_val_{i:08d}.JPEG': i % 2 for i in range(2 * per_class)}
    (root / 'meta').mkdir(parents=True)
    for split, labels in (('train', train), ('val', val)):
        write_images(root / split, list(labels), seed=len(split))
        (root / 'meta' / f'{split}.txt').write_text(''.join(
            f'{name} {label}\n' for name, label in labels.items()))
    return str(root)


def write_coco(root: Path, images: int = 2) -> str:
    """``root/{train2017,val2017}`` and
    ``root/annotations/instances_{train,val}2017.json``: one box with its
    polygon per image."""
    for split in ('train2017', 'val2017'):
        names = [f'{index:012d}.jpg' for index in range(images)]
        write_images(root / split, names, seed=len(split))
        annotations = [
            dict(
                id=index + 1,
                image_id=index,
                category_id=COCO_CATEGORIES[index % 2]['id'],
                bbox=[8., 8., 32., 24.],
                area=768.,
                iscrowd=0,
                segmentation=[[8., 8., 40., 8., 40., 32., 8., 32.]])
            for index in range(images)
        ]
        coco = dict(
            images=[
                dict(id=index, file_name=name, width=SIZE, height=SIZE)
                for index, name in enumerate(names)
            ],
            annotations=annotations,
            categories=COCO_CATEGORIES)
        (root / 'annotations').mkdir(parents=True, exist_ok=True)
        with open(root / 'annotations' / f'instances_{split}.json', 'w') as f:
            json.dump(coco, f)
    return str(root)


def write_ade(root: Path, images: int = 2) -> str:
    """``root/images/{training,validation}/*.jpg`` and
    ``root/annotations/{training,validation}/*.png`` (labels 0-150, 0
    being "other", which the configs ignore)."""
    rng = np.random.default_rng(0)
    for split in ('training', 'validation'):
        stems = [f'ADE_{split[:5]}_{index:08d}' for index in range(images)]
        write_images(root / 'images' / split, [f'{s}.jpg' for s in stems])
        (root / 'annotations' / split).mkdir(parents=True)
        for stem in stems:
            labels = rng.integers(0, 151, (SIZE, SIZE), dtype=np.uint8)
            Image.fromarray(labels).save(
                osp.join(root, 'annotations', split, f'{stem}.png'))
    return str(root)


def write_fashion_mnist(folder: Path, count: int = 4) -> str:
    """Synthetic IDX files in the layout of Debian's dataset-fashion-mnist."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix in ('train', 't10k'):
        images = rng.integers(0, 255, (count, 28, 28), dtype=np.uint8)
        header = (0x0803).to_bytes(4, 'big') + b''.join(
            n.to_bytes(4, 'big') for n in (count, 28, 28))
        with gzip.open(folder / f'{prefix}-images-idx3-ubyte.gz', 'wb') as f:
            f.write(header + images.tobytes())
        labels = (np.arange(count) % 10).astype(np.uint8)
        header = (0x0801).to_bytes(4, 'big') + count.to_bytes(4, 'big')
        with gzip.open(folder / f'{prefix}-labels-idx1-ubyte.gz', 'wb') as f:
            f.write(header + labels.tobytes())
    return str(folder)

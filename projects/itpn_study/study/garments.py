# Copyright (c) mmitpn contributors. All rights reserved.
"""An in-domain segmentation set from Fashion-MNIST, made offline: garments
composited onto black canvases, their masks taken from the images."""
import os
import os.path as osp
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image
from scipy import ndimage

from mmitpn.datasets import FashionMNIST
from mmitpn.datasets.fashion_mnist import DEBIAN_ROOT
from .plan import GARMENT_CLASSES


def paste_garments(garments: np.ndarray,
                   labels: np.ndarray,
                   size: int,
                   rng: np.random.Generator,
                   max_garments: int = 3,
                   scale: Tuple[float, float] = (1.0, 1.6),
                   threshold: int = 10) -> Tuple[np.ndarray, np.ndarray]:
    """Composite 1-``max_garments`` random Fashion-MNIST garments onto a
    black ``size`` x ``size`` canvas.

    Each garment is resized (bicubic) by a factor drawn from ``scale`` and
    placed wholly inside the canvas. Its mask comes from the 28 x 28 image:
    the pixels brighter than ``threshold`` (Fashion-MNIST's background is
    black), closed and with holes filled so that dark stripes and prints
    stay the garment's, then resized with the image (nearest). Later
    garments occlude earlier ones, in the image and the mask alike.

    Args:
        garments (np.ndarray): N x 28 x 28 uint8 images.
        labels (np.ndarray): Their N classes (0-9).
        size (int): Canvas side in pixels.
        rng (np.random.Generator): Draws garments, scales and places.
        max_garments (int): Most garments per canvas.
        scale (tuple): Range of the resize factor.
        threshold (int): Grey level above which a pixel is the garment's.

    Returns:
        tuple: The size x size x 3 uint8 image and the size x size uint8
        class map (0 background, 1 + the garment's class elsewhere).
    """
    image = np.zeros((size, size), dtype=np.uint8)
    label = np.zeros((size, size), dtype=np.uint8)
    for _ in range(rng.integers(1, max_garments + 1)):
        index = int(rng.integers(len(garments)))
        side = min(size, int(round(garments.shape[1] * rng.uniform(*scale))))
        garment = np.asarray(
            Image.fromarray(garments[index]).resize((side, side),
                                                    Image.BICUBIC))
        silhouette = ndimage.binary_fill_holes(
            ndimage.binary_closing(
                garments[index] > threshold, iterations=1, border_value=0))
        mask = np.asarray(
            Image.fromarray(silhouette).resize((side, side),
                                               Image.NEAREST)).astype(bool)
        top, left = rng.integers(0, size - side + 1, size=2)
        window = (slice(top, top + side), slice(left, left + side))
        image[window][mask] = garment[mask]
        label[window][mask] = 1 + int(labels[index])
    return np.repeat(image[..., None], 3, axis=2), label


def make_garments_seg(out_dir: str,
                      train: int = 2000,
                      val: int = 500,
                      size: int = 64,
                      seed: int = 0,
                      fashion_mnist_root: Optional[str] = None) -> List[str]:
    """Write the garments set under ``out_dir`` in the layout mmseg's
    ``BaseSegDataset`` reads (``images/{train,val}/*.png``,
    ``annotations/{train,val}/*.png``): 11 classes, background and the 10
    garment classes. Training canvases use the training garments (the
    images the pre-registered study pretrains on), validation canvases the
    test garments; the same seed gives the same set.

    Args:
        out_dir (str): Root of the set.
        train (int): Training canvases.
        val (int): Validation canvases.
        size (int): Canvas side in pixels.
        seed (int): Seed of the composition.
        fashion_mnist_root (str, optional): Folder of Fashion-MNIST's IDX
            files (default: Debian's).

    Returns:
        list[str]: One line per split: its size and the share of each
        class's pixels.
    """
    rng = np.random.default_rng(seed)
    summary = []
    for split, source, count in (('train', 'train', train), ('val', 'test',
                                                             val)):
        dataset = FashionMNIST(
            data_root=fashion_mnist_root or DEBIAN_ROOT,
            split=source,
            serialize_data=False)
        garments = np.stack([info['img'] for info in dataset.data_list])
        labels = np.array([info['gt_label'] for info in dataset.data_list])
        for folder in ('images', 'annotations'):
            os.makedirs(osp.join(out_dir, folder, split), exist_ok=True)
        pixels = np.zeros(len(GARMENT_CLASSES), dtype=np.int64)
        for index in range(count):
            image, label = paste_garments(garments, labels, size, rng)
            name = f'{index:05d}.png'
            Image.fromarray(image).save(
                osp.join(out_dir, 'images', split, name))
            Image.fromarray(label).save(
                osp.join(out_dir, 'annotations', split, name))
            pixels += np.bincount(label.ravel(), minlength=len(pixels))
        share = ', '.join(f'{name} {100 * p / pixels.sum():.1f}%'
                          for name, p in zip(GARMENT_CLASSES, pixels))
        summary.append(f'{split}: {count} images from the {source} '
                       f'garments; pixels: {share}')
    return summary

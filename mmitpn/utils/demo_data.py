# Copyright (c) mmitpn contributors. All rights reserved.
"""Offline demo data: scikit-image's photographs and shapes drawn on them."""
from typing import List, Sequence, Tuple

import numpy as np
from PIL import Image

# Real photographs shipped inside scikit-image (CC0 or public domain per
# their docstrings); others in skimage.data need a download.
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'hubble_deep_field',
          'immunohistochemistry', 'retina', 'camera', 'moon', 'coins', 'page',
          'text', 'brick', 'grass', 'gravel', 'clock', 'cell')
SHAPES = ('circle', 'square', 'triangle')


def load_photos() -> List[Tuple[str, np.ndarray]]:
    """The photographs as (name, HxWx3 uint8 RGB) pairs."""
    import skimage.data
    photos = []
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        photos.append((name, image[..., :3]))
    return photos


def random_crop(image: np.ndarray,
                size: int,
                min_scale: float,
                rng: np.random.Generator,
                max_scale: float = 1.0) -> np.ndarray:
    """A random square crop (side in [min_scale, max_scale] of the shorter
    side), resized to ``size`` and flipped with probability 0.5."""
    height, width = image.shape[:2]
    side = int(min(height, width) * rng.uniform(min_scale, max_scale))
    top = rng.integers(0, height - side + 1)
    left = rng.integers(0, width - side + 1)
    crop = Image.fromarray(image[top:top + side, left:left + side])
    crop = crop.resize((size, size), Image.BICUBIC)
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    return np.asarray(crop)


def shape_mask(kind: str, size: int, center: Sequence[float], radius: float,
               angle: float) -> np.ndarray:
    """Exact boolean mask of a circle, square or triangle."""
    from skimage.draw import disk, polygon
    mask = np.zeros((size, size), dtype=bool)
    if kind == 'circle':
        rows, cols = disk(center, radius, shape=mask.shape)
    else:
        corners = 4 if kind == 'square' else 3
        angles = angle + 2 * np.pi * np.arange(corners) / corners
        rows, cols = polygon(center[0] + radius * np.sin(angles),
                             center[1] + radius * np.cos(angles), mask.shape)
    mask[rows, cols] = True
    return mask


def paste_shapes(
    background: np.ndarray,
    rng: np.random.Generator,
    max_shapes: int = 4,
    min_radius: float = 0.08,
    max_radius: float = 0.22
) -> Tuple[np.ndarray, List[Tuple[int, np.ndarray]]]:
    """Paint 1-``max_shapes`` solid shapes on a square background.

    Later shapes occlude earlier ones; every returned mask is the visible
    part of its shape (shapes hidden to under 20 pixels are dropped).

    Returns:
        tuple: The image and ``(class index into SHAPES, mask)`` pairs.
    """
    image = background.copy()
    size = image.shape[0]
    instances: List[Tuple[int, np.ndarray]] = []
    for _ in range(rng.integers(1, max_shapes + 1)):
        kind = int(rng.integers(len(SHAPES)))
        radius = size * rng.uniform(min_radius, max_radius)
        center = rng.uniform(radius, size - radius, size=2)
        mask = shape_mask(SHAPES[kind], size, center, radius,
                          rng.uniform(0, 2 * np.pi))
        image[mask] = rng.integers(0, 256, size=3)
        instances = [(k, m & ~mask) for k, m in instances]
        instances.append((kind, mask))
    return image, [(k, m) for k, m in instances if m.sum() >= 20]

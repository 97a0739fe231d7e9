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


# Classes of the centred-object set (``centred_object``); the polygons are
# regular, the star has 5 points.
OBJECTS = ('circle', 'square', 'triangle', 'star', 'ring')


def object_mask(kind: str, size: int, center: Sequence[float], radius: float,
                angle: float) -> np.ndarray:
    """Exact boolean mask of one of :data:`OBJECTS`."""
    from skimage.draw import disk, polygon
    if kind in SHAPES:
        return shape_mask(kind, size, center, radius, angle)
    mask = np.zeros((size, size), dtype=bool)
    if kind == 'ring':
        rows, cols = disk(center, radius, shape=mask.shape)
        mask[rows, cols] = True
        rows, cols = disk(center, 0.55 * radius, shape=mask.shape)
        mask[rows, cols] = False
        return mask
    if kind != 'star':
        raise ValueError(f'kind must be one of {OBJECTS}, got {kind!r}.')
    angles = angle + np.pi * np.arange(10) / 5
    radii = np.where(np.arange(10) % 2 == 0, radius, 0.45 * radius)
    rows, cols = polygon(center[0] + radii * np.sin(angles),
                         center[1] + radii * np.cos(angles), mask.shape)
    mask[rows, cols] = True
    return mask


def centred_object(size: int,
                   rng: np.random.Generator) -> Tuple[np.ndarray, int]:
    """One light object near the centre of a black image, and its class.

    Like Fashion-MNIST's clothes, the object fills most of the image and
    sits near its centre; its size, rotation, offset and brightness are
    random, and it is shaded with a linear gradient, so the units inside it
    carry structure too. The background is black: a flat unit has no
    pattern, as in Fashion-MNIST, whereas noise would become full-contrast
    noise after per-unit normalisation, which nothing can predict.

    Returns:
        tuple: An ``(size, size, 3)`` uint8 grey image and the class index
        into :data:`OBJECTS`.
    """
    kind = int(rng.integers(len(OBJECTS)))
    radius = size * rng.uniform(0.28, 0.45)
    center = size / 2 + rng.uniform(-0.08, 0.08, size=2) * size
    mask = object_mask(OBJECTS[kind], size, center, radius,
                       rng.uniform(0, 2 * np.pi))
    rows, cols = np.mgrid[:size, :size] / size
    direction = rng.uniform(0, 2 * np.pi)
    gradient = np.cos(direction) * rows + np.sin(direction) * cols
    shade = rng.uniform(140, 230) + rng.uniform(40, 90) * (gradient - 0.5)
    image = np.zeros((size, size))
    image[mask] = shade[mask]
    grey = np.clip(image, 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2), kind

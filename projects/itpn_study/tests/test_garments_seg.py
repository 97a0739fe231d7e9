# Copyright (c) mmitpn contributors. All rights reserved.
"""The garments segmentation set: composited Fashion-MNIST garments with
masks taken from the images (the pre-registered study's dense transfer)."""
import subprocess
import sys

import numpy as np
from PIL import Image

from projects.itpn_study.study.garments import paste_garments
from projects.itpn_study.study.plan import REPO


def ring_garment() -> np.ndarray:
    """A bright square outline around a dark print: the print is the
    garment's too."""
    garment = np.zeros((28, 28), dtype=np.uint8)
    garment[4:24, 4:24] = 200
    garment[8:20, 8:20] = 3
    return garment


def test_masks_come_from_the_image_with_prints_filled():
    garments = np.stack([ring_garment()])
    image, label = paste_garments(
        garments,
        np.array([4]),
        28,
        np.random.default_rng(0),
        max_garments=1,
        scale=(1., 1.))
    # One garment at scale 1 fills the canvas exactly.
    assert image.shape == (28, 28, 3) and label.shape == (28, 28)
    assert (image[..., 0] == garments[0]).all()
    expected = np.zeros((28, 28), dtype=np.uint8)
    expected[4:24, 4:24] = 5  # 1 + class 4, the dark print included
    assert (label == expected).all()


def test_later_garments_occlude_earlier_ones_and_stay_inside():
    rng = np.random.default_rng(3)
    garments = rng.integers(0, 2, (6, 28, 28)).astype(np.uint8) * 255
    labels = np.arange(6)
    for _ in range(20):
        image, label = paste_garments(garments, labels, 64, rng)
        assert set(np.unique(label)) <= set(range(7))
        # A labelled pixel shows its garment's grey, background is black.
        assert (image[label == 0] == 0).all()
        assert (image[..., 0][label > 0] > 0).mean() > 0.5
    again = paste_garments(garments, labels, 64, np.random.default_rng(5))
    first = paste_garments(garments, labels, 64, np.random.default_rng(5))
    assert all((a == b).all() for a, b in zip(first, again))


def test_converter_writes_the_seg_layout_deterministically(
        tmp_path, make_fashion_mnist):
    root = make_fashion_mnist(12)
    outputs = []
    for name in ('first', 'second'):
        out = tmp_path / name
        subprocess.run([
            sys.executable, '-m',
            'projects.itpn_study.tools.make_garments_seg',
            str(out), '--train', '3', '--val', '2', '--size', '48',
            '--fashion-mnist-root', root
        ],
                       check=True,
                       capture_output=True,
                       cwd=REPO)
        outputs.append(out)
    for split, count in (('train', 3), ('val', 2)):
        for folder in ('images', 'annotations'):
            names = sorted(
                p.name for p in (outputs[0] / folder / split).iterdir())
            assert names == [f'{i:05d}.png' for i in range(count)]
            for name in names:
                first, second = (
                    np.asarray(Image.open(out / folder / split / name))
                    for out in outputs)
                assert (first == second).all()
                assert first.shape[:2] == (48, 48)
        label = np.asarray(
            Image.open(outputs[0] / 'annotations' / split / '00000.png'))
        assert label.max() <= 10 and label.max() > 0

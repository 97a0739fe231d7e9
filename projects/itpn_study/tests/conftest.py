# Copyright (c) mmitpn contributors. All rights reserved.
"""Fixtures of the study's tests (the suite's own are in tests/conftest.py,
which applies to tests/ only)."""
import gzip

import numpy as np
import pytest


@pytest.fixture
def make_fashion_mnist(tmp_path):
    """``make(count)``: IDX files in the layout of Debian's
    dataset-fashion-mnist, ``count`` random images per split (labels
    ``index % 10``); returns their folder."""

    def make(count):
        folder = tmp_path / f'fashion-mnist-{count}'
        folder.mkdir()
        rng = np.random.default_rng(0)
        labels = (np.arange(count) % 10).astype(np.uint8)
        for prefix in ('train', 't10k'):
            images = rng.integers(0, 255, (count, 28, 28), dtype=np.uint8)
            for kind, magic, shape, data in (('images', 0x0803, (count, 28,
                                                                 28), images),
                                             ('labels', 0x0801, (count, ),
                                              labels)):
                header = magic.to_bytes(4, 'big') + b''.join(
                    n.to_bytes(4, 'big') for n in shape)
                path = folder / f'{prefix}-{kind}-idx{len(shape)}-ubyte.gz'
                with gzip.open(path, 'wb') as f:
                    f.write(header + data.tobytes())
        return str(folder)

    return make

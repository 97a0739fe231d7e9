# Copyright (c) mmitpn contributors. All rights reserved.
import gzip

import numpy as np
import pytest


def write_fashion_mnist(folder, count=4):
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


@pytest.fixture
def fashion_mnist_root(tmp_path):
    return write_fashion_mnist(tmp_path / 'fashion-mnist')

# Copyright (c) mmitpn contributors. All rights reserved.
import gzip
import io
import logging

import numpy as np
import pytest
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope


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


@pytest.fixture(autouse=True)
def isolated_mmengine_globals():
    """Restore mmengine's default scope and current logger after each test.

    A runner built by one test makes e.g. ``mmseg`` the global default scope,
    which would make later ``MODELS.build`` calls look up ``mmseg``'s registry.
    """
    scopes = DefaultScope._instance_dict.copy()
    loggers = MMLogger._instance_dict.copy()
    yield
    for manager, saved in ((DefaultScope, scopes), (MMLogger, loggers)):
        manager._instance_dict.clear()
        manager._instance_dict.update(saved)


@pytest.fixture
def mm_log():
    """Text logged through mmengine's current logger during the test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)

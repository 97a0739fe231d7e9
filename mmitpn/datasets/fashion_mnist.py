# Copyright (c) mmitpn contributors. All rights reserved.
"""Fashion-MNIST read from its IDX files, as RGB images for HiViT."""
import gzip
import os.path as osp
from typing import List, Optional

import numpy as np
from mmpretrain.datasets import BaseDataset

from mmitpn.registry import DATASETS

DEBIAN_ROOT = '/usr/share/datasets/fashion-mnist'


def read_idx(path: str) -> np.ndarray:
    """Read an (optionally gzipped) IDX file of unsigned bytes."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[:4], 'big')
    if magic >> 8 != 0x08:
        raise ValueError(f'{path} is not an unsigned-byte IDX file.')
    num_dims = magic & 0xFF
    shape = [
        int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big')
        for i in range(num_dims)
    ]
    return np.frombuffer(
        data, dtype=np.uint8, offset=4 + 4 * num_dims).reshape(shape)


@DATASETS.register_module()
class FashionMNIST(BaseDataset):
    """Fashion-MNIST (Zalando, MIT licence), 10 classes of 28x28 clothes.

    Reads the IDX files that Debian's ``dataset-fashion-mnist`` package
    installs (``apt-get install dataset-fashion-mnist``; gzipped or not);
    nothing is downloaded. mmpretrain's ``FashionMNIST`` needs the files
    decompressed next to each other and downloads them when they are not
    (its default), so it cannot read Debian's read-only ``.gz`` files.
    Samples are 28x28x3 uint8 images (the grey channel repeated) for
    pipelines that resize them to a multiple of 16.

    Args:
        data_root (str): Folder with ``train-images-idx3-ubyte[.gz]`` and
            the other three files. Defaults to Debian's location.
        split (str): ``'train'`` (60,000) or ``'test'`` (10,000).
        **kwargs: mmpretrain ``BaseDataset`` arguments, e.g. ``indices=5000``
            for the first 5,000 samples, ``pipeline``, ``test_mode``.
    """

    METAINFO = {
        'classes': ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                    'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
    }
    PREFIXES = {'train': 'train', 'test': 't10k'}

    def __init__(self,
                 data_root: str = DEBIAN_ROOT,
                 split: str = 'train',
                 metainfo: Optional[dict] = None,
                 **kwargs) -> None:
        if split not in self.PREFIXES:
            raise ValueError(f"split must be 'train' or 'test', got "
                             f'{split!r}.')
        self.split = split
        super().__init__(
            ann_file='', metainfo=metainfo, data_root=data_root, **kwargs)

    def _find(self, kind: str) -> str:
        stem = osp.join(self.data_root,
                        f'{self.PREFIXES[self.split]}-{kind}-ubyte')
        for path in (stem + '.gz', stem):
            if osp.isfile(path):
                return path
        raise FileNotFoundError(
            f'Fashion-MNIST file {stem}[.gz] not found; install Debian\'s '
            'dataset-fashion-mnist package (apt-get install '
            'dataset-fashion-mnist) or set data_root.')

    def load_data_list(self) -> List[dict]:
        images = read_idx(self._find('images-idx3'))
        labels = read_idx(self._find('labels-idx1'))
        if len(images) != len(labels):
            raise ValueError(f'{self.data_root}: {len(images)} images but '
                             f'{len(labels)} labels in the {self.split} '
                             'split.')
        return [
            dict(img=image, gt_label=int(label))
            for image, label in zip(images, labels)
        ]

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info['img'] = np.repeat(info['img'][..., None], 3, axis=2)
        info['img_shape'] = info['ori_shape'] = info['img'].shape[:2]
        return info

# Copyright (c) mmitpn contributors. All rights reserved.
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from mmitpn.datasets import FashionMNIST


def test_reads_idx_files_as_rgb_samples(fashion_mnist_root):
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        dataset = FashionMNIST(
            data_root=fashion_mnist_root,
            split='test',
            pipeline=[
                dict(type='Resize', scale=(32, 32)),
                dict(type='PackInputs')
            ])
    assert len(dataset) == 4
    assert dataset.metainfo['classes'][9] == 'Ankle boot'
    sample = dataset[3]
    assert sample['inputs'].shape == (3, 32, 32)
    assert sample['data_samples'].gt_label.item() == 3
    raw = dataset.get_data_info(1)['img']
    assert raw.shape == (28, 28, 3) and raw.dtype == np.uint8
    assert (raw[..., 0] == raw[..., 2]).all()


def test_subset_and_errors(fashion_mnist_root, tmp_path):
    assert len(FashionMNIST(data_root=fashion_mnist_root, indices=2)) == 2
    with pytest.raises(FileNotFoundError, match='dataset-fashion-mnist'):
        FashionMNIST(data_root=str(tmp_path / 'empty'))
    with pytest.raises(ValueError, match='split'):
        FashionMNIST(data_root=fashion_mnist_root, split='val')

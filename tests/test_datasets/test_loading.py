# Copyright (c) mmitpn contributors. All rights reserved.
import numpy as np
import pytest
from mmengine.registry import DefaultScope
from PIL import Image

from mmitpn.datasets.transforms import LoadImageFromFileOrSkip


@pytest.fixture
def folder(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / 'a.png')
    (tmp_path / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not an image')
    return tmp_path


def test_unreadable_image_is_named(folder):
    loader = LoadImageFromFileOrSkip()
    assert loader(dict(img_path=str(folder / 'a.png')))['img'].shape == (32,
                                                                         32, 3)
    with pytest.raises(ValueError, match='broken.png'):
        loader(dict(img_path=str(folder / 'broken.png')))
    with pytest.raises(ValueError, match='missing.png'):
        loader(dict(img_path=str(folder / 'missing.png')))


def test_unreadable_image_is_skipped(folder):
    loader = LoadImageFromFileOrSkip(on_error='skip')
    assert loader(dict(img_path=str(folder / 'broken.png'))) is None


def test_training_dataset_draws_another_sample(folder):
    from mmpretrain.datasets import CustomDataset
    with DefaultScope.overwrite_default_scope('mmitpn'):
        dataset = CustomDataset(
            data_root=str(folder),
            with_label=False,
            pipeline=[
                dict(type='LoadImageFromFileOrSkip', on_error='skip'),
                dict(type='mmpretrain.PackInputs')
            ])
        for index in range(len(dataset)):
            assert dataset[index]['inputs'].shape == (3, 32, 32)


def test_bad_policy():
    with pytest.raises(ValueError, match='on_error'):
        LoadImageFromFileOrSkip(on_error='ignore')

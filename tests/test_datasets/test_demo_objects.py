# Copyright (c) mmitpn contributors. All rights reserved.
"""The generated centred-object set of ``make demo``: exact, reproducible,
readable by mmpretrain with labels (the probe) and without (pretraining)."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from mmengine.config import Config

from mmitpn.evaluation import load_labelled_images
from mmitpn.utils.demo_data import OBJECTS, centred_object, object_mask

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROBE_DATA = osp.join(REPO, 'configs', 'cls', 'demo', '_base_',
                      'objects_64px.py')
PRETRAIN = osp.join(REPO, 'configs', 'pretrain', 'demo',
                    'itpn-pixel_hivit-demo_1xb128-coslr-3e_objects-64px.py')


def test_centred_object_is_a_light_object_on_black():
    rng = np.random.default_rng(0)
    kinds = set()
    for _ in range(40):
        image, kind = centred_object(64, rng)
        kinds.add(kind)
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        grey = image[..., 0]
        assert (image == grey[..., None]).all()
        lit = grey > 0
        # Black corners, an object covering a good part of the image near
        # its centre.
        assert not lit[:4, :4].any() and not lit[-4:, -4:].any()
        assert 0.05 < lit.mean() < 0.7
        rows, cols = np.nonzero(lit)
        assert abs(rows.mean() - 32) < 12 and abs(cols.mean() - 32) < 12
    assert kinds == set(range(len(OBJECTS)))


def test_object_masks_differ_by_kind():
    masks = {
        kind: object_mask(kind, 64, (32, 32), 20, 0.3)
        for kind in OBJECTS
    }
    assert masks['ring'].sum() < masks['circle'].sum()
    assert not masks['ring'][32, 32] and masks['circle'][32, 32]
    assert masks['star'].sum() < masks['square'].sum()
    with pytest.raises(ValueError, match='kind must be one of'):
        object_mask('hexagon', 64, (32, 32), 20, 0.)


def make_set(out_dir, *extra):
    subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'dataset_converters', 'make_objects_cls.py'),
        str(out_dir), '--train', '12', '--test', '5', *extra
    ],
                   check=True,
                   capture_output=True,
                   text=True,
                   cwd=REPO)


def test_generated_set_reads_with_and_without_labels(tmp_path):
    make_set(tmp_path / 'a')
    make_set(tmp_path / 'b')
    for split, count in (('train', 12), ('test', 5)):
        lines = (tmp_path / 'a' / 'meta' / f'{split}.txt').read_text()
        assert lines == (tmp_path / 'b' / 'meta' / f'{split}.txt').read_text()
        assert len(lines.splitlines()) == count
    assert (tmp_path / 'a' / 'meta' / 'classes.txt').read_text().split() == \
        list(OBJECTS)
    assert (tmp_path / 'a' / 'train' / '00003.png').read_bytes() == \
        (tmp_path / 'b' / 'train' / '00003.png').read_bytes()

    data = Config.fromfile(PROBE_DATA)
    train = dict(data.train_dataloader.dataset, data_root=str(tmp_path / 'a'))
    images, labels = load_labelled_images(train, data.test_pipeline,
                                          data.data_preprocessor)
    expected = [
        int(line.split()[1])
        for line in (tmp_path / 'a' / 'meta' /
                     'train.txt').read_text().splitlines()
    ]
    assert images.shape == (12, 3, 64, 64) and labels.tolist() == expected

    from mmengine.registry import DefaultScope
    from mmpretrain.registry import DATASETS
    pretrain = Config.fromfile(PRETRAIN).train_dataloader.dataset
    pretrain.update(data_root=str(tmp_path / 'a'), pipeline=[])
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        unlabelled = DATASETS.build(pretrain)
    assert len(unlabelled) == 12 and 'gt_label' not in unlabelled[0]


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as error:
        make_set(tmp_path, '--size', '8')
    assert '--size must be at least 16' in error.value.stderr

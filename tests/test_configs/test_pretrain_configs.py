# Copyright (c) mmitpn contributors. All rights reserved.
"""Every pretraining config builds at full size; one of each training group
(tests/shipped_configs.py) trains one iteration with tiny overrides
(architecture, image size, batch)."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.registry import DefaultScope
from pretrain_shrink import shrink, tiny_teacher
from shipped_configs import group_ids, load_config, training_groups

from mmitpn.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(
    glob.glob(osp.join(REPO, 'configs', 'pretrain', '*.py')) +
    glob.glob(osp.join(REPO, 'configs', 'pretrain', 'demo', '*.py')))
# The test keeps each config's training pipeline (resized).
TRAINED = training_groups(
    CONFIGS, ('model', 'optim_wrapper', 'train_dataloader.dataset.pipeline'))


def full_size_model_cfg(cfg, tmp_path):
    """The config's model; a CLIP teacher gets a tiny tower of the right
    output width (its real weights are a local file users provide)."""
    model = cfg.model.copy()
    if 'teacher' in model:
        model.teacher = dict(model.teacher)
        model.teacher.update(
            tiny_teacher(
                tmp_path,
                model.teacher['model_name'],
                model.head.teacher_dims,
                image_size=224))
    return model


@pytest.mark.parametrize(
    'config', CONFIGS, ids=[osp.basename(c)[:-3] for c in CONFIGS])
def test_config_builds_at_full_size(config, tmp_path):
    cfg = load_config(config)
    with DefaultScope.overwrite_default_scope('mmitpn'), \
            torch.device('meta'):
        model = MODELS.build(full_size_model_cfg(cfg, tmp_path))
    assert model.backbone.img_size in ((224, 224), (96, 96), (64, 64))


@pytest.mark.parametrize('config', list(TRAINED), ids=group_ids(TRAINED))
def test_config_trains_one_iteration(config, tmp_path, train_one_iteration):
    cfg = load_config(config)
    train_one_iteration(shrink(cfg, tmp_path))

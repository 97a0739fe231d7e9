# Copyright (c) mmitpn contributors. All rights reserved.
"""The recommended fast dense-prediction configs (``*-win14-gather8-wmig0.5_*``
for detection, ``*-win16-gather8-wmig0.5_*`` for segmentation): one per
backbone and head, each its family's plain config with the setting of its
task's ``_base_/fast_dense.py``, and the setting in its name reaches the
built backbone. They build at full size and train one iteration (then
predict with the setting on) with the other configs of their task
(test_det_configs.py, test_seg_configs.py)."""
import glob
import itertools
import os.path as osp
import re

import pytest
import torch
from mmengine.registry import DefaultScope
from shipped_configs import differences, kept_tokens, load_config
from tiny_models import tiny_arch

from mmitpn.models.utils.token_reduction import WindowTokenMigration
from mmitpn.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The setting in a config's name: windows, gathering tokens, and the keep
# ratio of window migration.
TAG = re.compile(r'^(?P<arch>[a-z-]+)-win(?P<window>\d+)-gather(?P<gather>\d+)'
                 r'-wmig(?P<keep>[\d.]+)_(?P<pretraining>[^_]+)_(?P<rest>.+)$')
ARCHS = ('itpn-base', 'itpn-large', 'fast-itpn-tiny', 'fast-itpn-small',
         'fast-itpn-base', 'fast-itpn-large')
HEADS = dict(
    det=('mask-rcnn_32xb2-amp-1x_coco', 'mask-rcnn_32xb2-amp-3x_coco',
         'cascade-mask-rcnn_32xb2-amp-3x_coco', 'dino-5scale_8xb2-12e_coco'),
    seg=('upernet_8xb2-amp-160k_ade20k-512x512',
         'mask2former_8xb2-160k_ade20k-512x512'))
# What the recommended configs add at the top level: the setting's parts.
SETTING_VARIABLES = ('fast_backbone', 'fast_with_cp', 'fast_dino_with_cp',
                     'token_reduction_start')
RECOMMENDED = sorted(
    path for task in HEADS
    for path in glob.glob(osp.join(REPO, 'configs', task, '*.py'))
    if TAG.match(osp.basename(path)[:-3]))
IDS = [osp.basename(path)[:-3] for path in RECOMMENDED]


def parse(path):
    """The task and the name's parts of a recommended config."""
    task = osp.basename(osp.dirname(path))
    return task, TAG.match(osp.basename(path)[:-3]).groupdict()


def plain_config(path):
    """The config of the same backbone, pretraining and head without the
    setting, or None if the family has none."""
    task, name = parse(path)
    plain = osp.join(
        REPO, 'configs', task,
        f'{name["arch"]}_{name["pretraining"]}_{name["rest"]}.py')
    return plain if osp.isfile(plain) else None


def with_cp(cfg, config):
    """The task's activation checkpointing of the config's arch: DINO's
    per arch (its memory estimate), the others' one for the task."""
    if '_dino-' in config:
        return cfg.fast_dino_with_cp[cfg.model.backbone.arch]
    return cfg.fast_with_cp


def test_every_backbone_and_head_has_one():
    found = {(parse(path)[0], parse(path)[1]['arch'], parse(path)[1]['rest'])
             for path in RECOMMENDED}
    expected = {(task, arch, head)
                for task, heads in HEADS.items()
                for arch, head in itertools.product(ARCHS, heads)}
    assert found == expected
    assert len(RECOMMENDED) == len(expected) == 36


@pytest.mark.parametrize('config', RECOMMENDED, ids=IDS)
def test_it_is_the_plain_config_with_the_setting(config):
    """Resolved, a recommended config is its plain counterpart with the
    task's setting in backbone and neck; where the family has no plain
    config of that size and head (Mask2Former of iTPN-L and Fast-iTPN-T/S),
    backbone, neck and head inputs are those of the same size's
    recommended UperNet."""
    cfg = load_config(config)
    arch = cfg.model.backbone.arch
    plain = plain_config(config)
    if plain is None:
        upernet = config.replace('mask2former_8xb2-160k',
                                 'upernet_8xb2-amp-160k')
        reference = load_config(upernet)
        for part in ('backbone', 'neck'):
            assert cfg.model[part] == reference.model[part], part
        assert cfg.model.decode_head.in_channels == \
            reference.model.decode_head.in_channels
        assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == \
            reference.optim_wrapper.paramwise_cfg.layer_decay_rate
        return
    expected = load_config(plain).to_dict()
    expected['model']['backbone'].update(cfg.fast_backbone[arch].to_dict())
    expected['model']['backbone']['with_cp'] = with_cp(cfg, config)
    expected['model']['neck']['with_cp'] = with_cp(cfg, config)
    actual = cfg.to_dict()
    for name in SETTING_VARIABLES:
        actual.pop(name, None)
    assert list(differences(expected, actual)) == []


@pytest.mark.parametrize('config', RECOMMENDED, ids=IDS)
def test_the_setting_in_the_name_reaches_the_backbone(config):
    """Backbone and neck built from the config (full size, meta device)
    hold the name's windows, gathering tokens and keep ratio, window
    migration from a quarter of the main blocks, windows in every main
    block, and the task's activation checkpointing."""
    cfg = load_config(config)
    _, name = parse(config)
    with DefaultScope.overwrite_default_scope('mmitpn'), \
            torch.device('meta'):
        backbone = MODELS.build(cfg.model.backbone)
        neck = MODELS.build(cfg.model.neck)
    assert backbone.window_size == int(name['window'])
    assert backbone.global_blocks == ()
    assert backbone.gathering_tokens.shape[1] == int(name['gather'])
    reduction = backbone.token_reduction
    assert isinstance(reduction, WindowTokenMigration)
    assert reduction.keep_ratio == float(name['keep'])
    assert reduction.start_block == backbone.depth // 4
    assert backbone.with_cp is neck.with_cp is with_cp(cfg, config)


@pytest.mark.parametrize('guide,config,start_block', [
    ('detection.md',
     'det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py', 6),
    ('detection.md',
     'det/itpn-large_clip-l-300e-pre_mask-rcnn_32xb2-amp-1x_coco.py', 10),
    ('segmentation.md',
     'seg/itpn-base_pixel-1600e-pre_upernet_8xb2-amp-160k_ade20k-512x512.py',
     6),
])
def test_the_guides_training_free_switch(guide, config, start_block):
    """The guides' ``--cfg-options`` switch token migration on for a plain
    config's checkpoint (the iTPN-L CLIP detector's decomposed relative
    positions included): no parameter is added, keep ratio 1 computes what
    the plain backbone computes, keep ratio 0.5 keeps half of the tokens.
    Tiny backbones, the config's other backbone settings kept."""
    options = {
        'model.backbone.token_reduction.type': 'migration',
        'model.backbone.token_reduction.start_block': start_block,
        'model.backbone.token_reduction.keep_ratio': 0.5,
    }
    with open(osp.join(REPO, 'docs', 'user_guides', guide)) as f:
        text = f.read()
    assert f'configs/{config}' in text
    for key, value in options.items():
        assert f'{key}={value}' in text

    def tiny_backbone(cfg):
        backbone = cfg.model.backbone
        backbone.update(arch=tiny_arch(), img_size=64, init_cfg=None)
        if backbone.get('token_reduction'):
            backbone.token_reduction.start_block = 1
        with DefaultScope.overwrite_default_scope('mmitpn'):
            return MODELS.build(backbone).eval()

    plain = tiny_backbone(load_config(osp.join(REPO, 'configs', config)))
    outputs = {}
    for keep_ratio in (1, 0.5):
        cfg = load_config(osp.join(REPO, 'configs', config))
        cfg.merge_from_dict(options)
        cfg.model.backbone.token_reduction.keep_ratio = keep_ratio
        switched = tiny_backbone(cfg)
        switched.load_state_dict(plain.state_dict(), strict=True)
        images = torch.randn(
            2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
        with torch.no_grad(), kept_tokens(switched) as kept:
            outputs[keep_ratio] = switched(images)
        assert kept == [16 if keep_ratio == 1 else 8]
    with torch.no_grad():
        reference = plain(images)
    for exact, halved, expected in zip(outputs[1], outputs[0.5], reference):
        torch.testing.assert_close(exact, expected, rtol=1e-5, atol=1e-5)
        assert halved.shape == expected.shape
        assert torch.isfinite(halved).all()

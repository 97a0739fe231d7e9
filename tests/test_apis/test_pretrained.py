# Copyright (c) mmitpn contributors. All rights reserved.
"""``mmitpn.apis.fill_pretrained`` (``tools/train.py --pretrained``): every
Pretrained init of backbone and neck filled with the right prefix, one line
each for what was filled and what the file does not hold, and one-line
errors for files it cannot fill from (the converter command for official
ones)."""
import os
import os.path as osp
import subprocess
import sys
from collections import OrderedDict

import pytest
import torch
from shipped_configs import load_config
from tiny_models import tiny_arch

from mmitpn.apis import fill_pretrained, read_pretrained_file
from mmitpn.models import FastiTPN, HiViT

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET = 'det/itpn-base_pixel-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'
FAST_DET = 'det/fast-itpn-tiny_clip-l-1600e-pre_mask-rcnn_32xb2-amp-1x_coco.py'
LINEAR_PYRAMID = ('cls/itpn-base_pixel-1600e-pre_linear-pyramid_8xb2048-'
                  'coslr-90e_in1k.py')
IN1K_FT = ('seg/itpn-base_pixel-1600e-in1k-ft-pre_upernet_8xb2-amp-160k_'
           'ade20k-512x512.py')
CLS = 'cls/itpn-base_pixel-1600e-pre_32xb32-amp-coslr-100e_in1k.py'


def config(name, neck_width=64):
    """A shipped config with the tiny backbone (and pyramid) of the
    checkpoint fixtures."""
    cfg = load_config(osp.join(REPO, 'configs', name))
    cfg.model.backbone.arch = tiny_arch()
    neck = cfg.model.get('neck') or {}
    for pyramid in (neck, neck.get('pyramid') or {}):
        if str(pyramid.get('type')).endswith('iTPNPyramid'):
            pyramid.update(embed_dims=neck_width, fpn_dim=32)
    return cfg


def save(path, state_dict, container='state_dict'):
    torch.save({container: state_dict} if container else state_dict, path)
    return str(path)


def classifier_checkpoint(tmp_path):
    """A tiny fine-tuned classifier: backbone and head, no pyramid."""
    backbone = HiViT(tiny_arch(), img_size=64, out_type='avg_featmap')
    state_dict = OrderedDict(
        (f'backbone.{k}', v) for k, v in backbone.state_dict().items())
    state_dict.update({
        'head.fc.weight': torch.zeros(10, 64),
        'head.fc.bias': torch.zeros(10)
    })
    return save(tmp_path / 'classifier.pth', state_dict)


def init(module):
    return dict(module.init_cfg) if module.get('init_cfg') else None


def count(module):
    return len(module.state_dict())


def test_pretraining_checkpoint_fills_backbone_and_pyramid(
        pretraining_checkpoint):
    path, model = pretraining_checkpoint()
    cfg = config(DET)
    lines = fill_pretrained(cfg, path)
    assert init(cfg.model.backbone) == dict(
        type='Pretrained', checkpoint=path, prefix='backbone.')
    assert init(cfg.model.neck) == dict(
        type='Pretrained', checkpoint=path, prefix='neck.')
    assert lines == [
        f"backbone: {path} ({count(model.backbone)} tensors, prefix "
        "'backbone.')",
        f"neck: {path} (pyramid fpn_dim 32, fpn_depth 2, prefix 'neck.')",
        f'not used from {path}: head ({count(model.head)})'
    ]


def test_a_pyramid_nested_in_the_neck_is_filled(pretraining_checkpoint):
    path, _ = pretraining_checkpoint()
    cfg = config(LINEAR_PYRAMID)
    fill_pretrained(cfg, path)
    assert init(cfg.model.neck.pyramid) == dict(
        type='Pretrained', checkpoint=path, prefix='neck.')


def test_without_a_pyramid_the_neck_starts_fresh(tmp_path):
    path = classifier_checkpoint(tmp_path)
    cfg = config(DET)
    lines = fill_pretrained(cfg, path)
    assert cfg.model.backbone.init_cfg.checkpoint == path
    assert cfg.model.neck.init_cfg is None
    assert lines[1:] == [
        f'neck: {path} has no pyramid: the neck starts fresh',
        f'not used from {path}: head (2)'
    ]


def test_fast_itpn_into_a_config_whose_pyramid_starts_fresh(
        fast_itpn_checkpoint):
    path, _ = fast_itpn_checkpoint()
    cfg = config(FAST_DET)
    lines = fill_pretrained(cfg, path)
    assert cfg.model.backbone.init_cfg.checkpoint == path
    assert cfg.model.neck.init_cfg is None
    assert lines[1] == f'neck: {path} has no pyramid: the neck starts fresh'


def test_a_config_whose_neck_starts_fresh_keeps_it_unless_asked(
        pretraining_checkpoint):
    path, _ = pretraining_checkpoint()
    cfg = config(DET)
    cfg.model.neck.init_cfg = None
    lines = fill_pretrained(cfg, path)
    assert 'starts fresh, as this config has it' in lines[1]
    assert cfg.model.neck.init_cfg is None
    fill_pretrained(cfg, path, path)
    assert init(cfg.model.neck) == dict(
        type='Pretrained', checkpoint=path, prefix='neck.')


def test_two_files_backbone_from_a_classifier_pyramid_from_pretraining(
        tmp_path, pretraining_checkpoint):
    classifier = classifier_checkpoint(tmp_path)
    pretrained, model = pretraining_checkpoint()
    cfg = config(IN1K_FT)
    lines = fill_pretrained(cfg, classifier, pretrained)
    assert cfg.model.backbone.init_cfg.checkpoint == classifier
    assert init(cfg.model.neck) == dict(
        type='Pretrained', checkpoint=pretrained, prefix='neck.')
    assert lines[2:] == [
        f'not used from {classifier}: head (2)',
        f'not used from {pretrained}: backbone ({count(model.backbone)}), '
        f'head ({count(model.head)})'
    ]


def test_a_backbone_without_init_cfg_gets_one(tmp_path):
    path = classifier_checkpoint(tmp_path)
    cfg = config(CLS)
    cfg.model.backbone.init_cfg = None
    backbone = HiViT(tiny_arch(), img_size=64, out_type='avg_featmap')
    assert fill_pretrained(cfg, path) == [
        f"backbone: {path} ({count(backbone)} tensors, prefix 'backbone.')",
        f'not used from {path}: head (2)'
    ]
    assert init(cfg.model.backbone) == dict(
        type='Pretrained', checkpoint=path, prefix='backbone.')


def test_nothing_to_fill_changes_nothing():
    cfg = config(DET)
    before = cfg.model.to_dict()
    assert fill_pretrained(cfg) == []
    assert cfg.model.to_dict() == before


@pytest.mark.parametrize('layout, described, converter', [
    ('iTPN', 'an official iTPN/HiViT', 'itpn_to_mmitpn.py'),
    ('Fast-iTPN', 'an official Fast-iTPN', 'fast_itpn_to_mmitpn.py'),
    ('mmpretrain', 'an mmpretrain HiViT / iTPN', 'mmpretrain_to_mmitpn.py'),
    ('detector', 'an official iTPN/HiViT', 'itpn_to_mmitpn.py'),
])
def test_files_in_other_layouts_get_the_converter_command(
        layout, described, converter, tmp_path, pretraining_checkpoint):
    _, model = pretraining_checkpoint()
    backbone = model.backbone.state_dict()
    if layout == 'iTPN':
        path = save(tmp_path / 'itpn.pth', backbone, 'model')
    elif layout == 'Fast-iTPN':
        path = save(tmp_path / 'fast.pt',
                    FastiTPN(tiny_arch(), img_size=64).state_dict(), None)
    elif layout == 'mmpretrain':
        renamed = OrderedDict(
            (f'backbone.{k.replace("absolute_pos_embed", "pos_embed")}', v)
            for k, v in backbone.items())
        path = save(tmp_path / 'mmpretrain.pth', renamed)
    else:
        merged = OrderedDict((f'backbone.{k.split(".", 1)[1]}', v)
                             for k, v in model.state_dict().items()
                             if k.startswith(('backbone.', 'neck.')))
        path = save(tmp_path / 'detector.pth', merged)
    with pytest.raises(ValueError) as error:
        fill_pretrained(config(DET), path)
    stem = osp.splitext(osp.basename(path))[0]
    assert str(error.value) == (
        f'{path} is {described} checkpoint, not in mmitpn\'s layout '
        '(backbone.* and neck.* keys in a state_dict); convert it first: '
        f'.venv/bin/python tools/model_converters/{converter} {path} '
        f'checkpoints/{stem}.pth, then pass the converted file.')


def test_other_family_and_other_pyramid_are_named(fast_itpn_checkpoint,
                                                  pretraining_checkpoint):
    fast, _ = fast_itpn_checkpoint()
    with pytest.raises(
            ValueError,
            match='holds a Fast-iTPN backbone '
            r'\(mmitpn.FastiTPN\), this config builds '
            'mmitpn.HiViT; use a config of the mmitpn.FastiTPN'):
        fill_pretrained(config(DET), fast)
    pretrained, _ = pretraining_checkpoint()
    cfg = config(DET)
    cfg.model.neck.fpn_depth = 1
    with pytest.raises(
            ValueError,
            match='holds a pyramid with fpn_depth=2, '
            'this config builds model.neck.fpn_depth=1; pass '
            '--cfg-options model.neck.fpn_depth=2'):
        fill_pretrained(cfg, pretrained)


def test_a_neck_file_needs_a_pyramid_and_files_must_exist(tmp_path):
    classifier = classifier_checkpoint(tmp_path)
    with pytest.raises(
            ValueError,
            match='classifier.pth holds no iTPN '
            r'pyramid \(no neck.align_dim_16to8 key\)'):
        fill_pretrained(config(IN1K_FT), classifier, classifier)
    with pytest.raises(FileNotFoundError, match='nowhere.pth'):
        fill_pretrained(config(DET), str(tmp_path / 'nowhere.pth'))


def test_read_pretrained_file_describes_the_parts(pretraining_checkpoint):
    path, model = pretraining_checkpoint()
    read = read_pretrained_file(path)
    assert (read.family, read.backbone) == ('HiViT', count(model.backbone))
    assert read.pyramid == dict(embed_dims=64, fpn_dim=32, fpn_depth=2)
    assert read.parts == dict(
        backbone=count(model.backbone),
        neck=count(model.neck),
        head=count(model.head))


def test_train_py_flags_fail_in_one_line_on_an_official_file(tmp_path):
    official = save(tmp_path / 'fast_itpn_tiny_1600e_1k.pt',
                    FastiTPN(tiny_arch(), img_size=64).state_dict(), 'model')
    result = subprocess.run([
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'),
        osp.join(REPO, 'configs', FAST_DET), '--pretrained', official
    ],
                            capture_output=True,
                            text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f'train.py: error: {official} is an official '
                                'Fast-iTPN checkpoint'), result.stderr
    assert 'fast_itpn_to_mmitpn.py' in lines[-1]

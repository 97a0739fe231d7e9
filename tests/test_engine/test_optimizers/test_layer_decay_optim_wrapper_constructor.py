# Copyright (c) mmitpn contributors. All rights reserved.
import os.path as osp
import tempfile

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from tiny_models import tiny_arch
from torch import nn

from mmitpn.models import HiViT

# 1 + 1 stem MLP blocks and 2 attention blocks: layer ids 0..5.
TINY = tiny_arch(depth=2, embed_dims=64, stem_mlp_blocks=(1, 1))


class ToyClassifier(nn.Module):
    """A model without get_layer_depth: the constructor asks the backbone."""

    def __init__(self):
        super().__init__()
        self.backbone = HiViT(
            TINY,
            img_size=32,
            rel_pos_type='bias_table',
            out_type='avg_featmap')
        self.head = nn.Linear(64, 10)


def lr_and_wd(optim_wrapper):
    table = {}
    for group in optim_wrapper.optimizer.param_groups:
        for name in group['param_names']:
            table[name] = (group['lr'], group['weight_decay'])
    return table


def build(model, **paramwise_cfg):
    return build_optim_wrapper(
        model,
        dict(
            optimizer=dict(type='AdamW', lr=1., weight_decay=0.05),
            constructor='mmitpn.LayerDecayOptimWrapperConstructor',
            paramwise_cfg=paramwise_cfg))


EXPECTED_SCALE_EXPONENT = {
    'backbone.absolute_pos_embed': 5,
    'backbone.patch_embed.proj.weight': 5,
    'backbone.patch_embed.norm.weight': 5,
    'backbone.blocks.0.mlp.fc1.weight': 4,
    'backbone.blocks.1.reduction.weight': 4,
    'backbone.blocks.2.mlp.fc2.bias': 3,
    'backbone.blocks.3.norm.weight': 3,
    'backbone.blocks.4.attn.qkv.weight': 2,
    'backbone.blocks.4.attn.relative_position_bias_table': 2,
    'backbone.blocks.5.norm1.bias': 1,
    'backbone.blocks.5.mlp.fc1.weight': 1,
    'backbone.fc_norm.weight': 0,
    'head.weight': 0,
    'head.bias': 0,
}
NO_DECAY = {
    'backbone.absolute_pos_embed', 'backbone.patch_embed.norm.weight',
    'backbone.blocks.2.mlp.fc2.bias', 'backbone.blocks.3.norm.weight',
    'backbone.blocks.4.attn.relative_position_bias_table',
    'backbone.blocks.5.norm1.bias', 'backbone.fc_norm.weight', 'head.bias'
}


@pytest.mark.parametrize('rescale_depth,per_layer', [(None, 2), (9, 4)])
def test_exact_lr_and_weight_decay_per_parameter(rescale_depth, per_layer):
    # rate 2 with rescale_depth 9 decays as 2 ** (10 / 5) = 4 per layer.
    optim_wrapper = build(
        ToyClassifier(), layer_decay_rate=2., rescale_depth=rescale_depth)
    table = lr_and_wd(optim_wrapper)
    assert len(table) == len(list(ToyClassifier().parameters()))
    for name, exponent in EXPECTED_SCALE_EXPONENT.items():
        expected_wd = 0. if name in NO_DECAY else 0.05
        assert table[name] == (per_layer**exponent, expected_wd), name


def test_groups_share_lr_and_weight_decay():
    optim_wrapper = build(ToyClassifier(), layer_decay_rate=2.)
    keys = [(g['lr'], g['weight_decay'])
            for g in optim_wrapper.optimizer.param_groups]
    assert len(keys) == len(set(keys)) < 20


def test_custom_keys_and_frozen_parameters():
    model = ToyClassifier()
    model.backbone.blocks[0].mlp.fc1.weight.requires_grad = False
    table = lr_and_wd(
        build(
            model,
            layer_decay_rate=2.,
            custom_keys={'head': dict(lr_mult=10., decay_mult=0.)}))
    assert table['head.weight'] == (10., 0.)
    assert 'backbone.blocks.0.mlp.fc1.weight' not in table


def test_mmpretrain_classifier_uses_its_own_get_layer_depth():
    from mmpretrain.models import ImageClassifier
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = ImageClassifier(
            backbone=dict(
                type='mmitpn.HiViT',
                arch=TINY,
                img_size=32,
                out_type='avg_featmap'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=64))
    table = lr_and_wd(build(model, layer_decay_rate=2.))
    assert table['backbone.patch_embed.proj.weight'] == (32., 0.05)
    assert table['head.fc.weight'] == (1., 0.05)


def test_bad_paramwise_cfg():
    with pytest.raises(ValueError, match='layer_decay_rate'):
        build(ToyClassifier(), rescale_depth=12)
    with pytest.raises(ValueError, match='decay_typo'):
        build(ToyClassifier(), layer_decay_rate=0.5, decay_typo=1)
    with pytest.raises(TypeError, match='get_layer_depth'):
        build(nn.Linear(2, 2), layer_decay_rate=0.5)


def _from_base(base, model_updates):
    with tempfile.TemporaryDirectory() as tmp:
        path = osp.join(tmp, 'cfg.py')
        with open(path, 'w') as f:
            f.write(f'_base_ = {base!r}\nmodel = {model_updates!r}\n')
        return Config.fromfile(path).model


def test_builds_for_mmdet_mask_rcnn_with_hivit_and_pyramid():
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    model_cfg = _from_base(
        'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
        dict(
            backbone=dict(
                _delete_=True,
                type='mmitpn.HiViT',
                arch=TINY,
                img_size=64,
                out_indices=(0, 1, 2)),
            neck=dict(
                _delete_=True,
                type='mmitpn.iTPNPyramid',
                embed_dims=64,
                fpn_dim=256,
                num_outs=5)))
    with DefaultScope.overwrite_default_scope('mmdet'):
        detector = MODELS.build(model_cfg)
    table = lr_and_wd(build(detector, layer_decay_rate=2.))
    assert table['backbone.patch_embed.proj.weight'] == (32., 0.05)
    assert table['backbone.blocks.5.attn.qkv.weight'] == (2., 0.05)
    assert table['neck.fpn_modules.0.mlp.fc1.weight'] == (1., 0.05)
    assert table['roi_head.bbox_head.fc_cls.weight'] == (1., 0.05)
    assert table['rpn_head.rpn_conv.bias'] == (1., 0.)
    # The detector runs on its pyramid.
    with torch.no_grad():
        feats = detector.extract_feat(torch.randn(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2, 1]


def test_builds_for_mmseg_upernet_with_hivit_and_pyramid():
    import mmseg.models  # noqa: F401
    from mmseg.registry import MODELS
    model_cfg = _from_base(
        'mmseg::_base_/models/upernet_r50.py',
        dict(
            pretrained=None,
            data_preprocessor=dict(size=(64, 64)),
            backbone=dict(
                _delete_=True,
                type='mmitpn.HiViT',
                arch=TINY,
                img_size=64,
                out_indices=(0, 1, 2)),
            neck=dict(
                type='mmitpn.iTPNPyramid',
                embed_dims=64,
                fpn_dim=32,
                num_outs=4,
                extra_pool='max',
                concat_inputs=True),
            decode_head=dict(
                in_channels=[48, 64, 96, 96],
                channels=32,
                norm_cfg=dict(type='BN', requires_grad=True)),
            auxiliary_head=dict(
                in_channels=96,
                channels=16,
                norm_cfg=dict(type='BN', requires_grad=True))))
    with DefaultScope.overwrite_default_scope('mmseg'):
        segmentor = MODELS.build(model_cfg)
    table = lr_and_wd(build(segmentor, layer_decay_rate=2.))
    assert table['backbone.blocks.0.mlp.fc1.weight'] == (16., 0.05)
    assert table['decode_head.conv_seg.weight'] == (1., 0.05)
    segmentor.eval()
    with torch.no_grad():
        logits = segmentor(torch.randn(1, 3, 64, 64), mode='tensor')
    assert logits.shape[-2:] == (16, 16)

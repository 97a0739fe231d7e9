# Copyright (c) mmitpn contributors. All rights reserved.
"""Every official key listing converts and loads strictly into mmitpn."""

import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.models.heads import LinearClsHead
from torch import nn

from mmitpn.converters import convert_mmpretrain, convert_official
from mmitpn.models import HiViT, iTPNPyramid
from mmitpn.registry import MODELS

PIXEL_HEAD = {
    'mask_token', 'decoder_pos_embed', 'decoder_embed', 'decoder_blocks',
    'decoder_norm', 'decoder_pred'
}
CLIP_HEAD = {
    'decoder_embed', 'norm', 'lm_head', 'norm_cls', 'lm_cls_head',
    'cls_pt_layers'
}


def build_target(conversion):
    """mmitpn modules for the converted layout, built on the meta device."""
    model = nn.Module()
    with torch.device('meta'), \
            DefaultScope.overwrite_default_scope('mmpretrain'):
        model.backbone = HiViT(**conversion.backbone)
        if conversion.neck is not None:
            model.neck = iTPNPyramid(**conversion.neck)
        if conversion.head is not None:
            model.head = MODELS.build(conversion.head)
        elif 'head.fc.weight' in conversion.state_dict:
            num_classes, channels = conversion.state_dict[
                'head.fc.weight'].shape
            model.head = LinearClsHead(num_classes, channels)
        if 'mask_token' in conversion.state_dict:
            model.mask_token = nn.Parameter(
                torch.empty(conversion.state_dict['mask_token'].shape))
    return model


def load_strictly(conversion):
    model = build_target(conversion)
    model.load_state_dict(conversion.state_dict, strict=True, assign=True)
    return model


@pytest.mark.parametrize('listing,head_modules,expected', [
    ('keys_pixel_pretrain_base.txt', PIXEL_HEAD,
     dict(stem=(3, 3), depth=24, dims=512, fpn_depth=2, rel=None, ls=0.)),
    ('keys_pixel_pretrain_large.txt', PIXEL_HEAD,
     dict(stem=(2, 2), depth=40, dims=768, fpn_depth=2, rel=None, ls=0.)),
    ('keys_clip_pretrain_base.txt', CLIP_HEAD,
     dict(
         stem=(3, 3),
         depth=24,
         dims=512,
         fpn_depth=1,
         rel='bias_table',
         ls=0.1)),
    ('keys_clip_pretrain_large.txt', CLIP_HEAD,
     dict(
         stem=(2, 2),
         depth=40,
         dims=768,
         fpn_depth=1,
         rel='bias_table',
         ls=0.1)),
    ('keys_pixel_ft_base.txt', set(),
     dict(
         stem=(3, 3),
         depth=24,
         dims=512,
         fpn_depth=None,
         rel='bias_table',
         ls=0.)),
    ('keys_pixel_ft_large.txt', set(),
     dict(
         stem=(2, 2),
         depth=40,
         dims=768,
         fpn_depth=None,
         rel='bias_table',
         ls=0.)),
    ('keys_clip_ft_base.txt', set(),
     dict(
         stem=(3, 3),
         depth=24,
         dims=512,
         fpn_depth=None,
         rel='bias_table',
         ls=0.1)),
    ('keys_det_pixel_base.txt', set(),
     dict(stem=(3, 3), depth=24, dims=512, fpn_depth=1, rel=None, ls=0.)),
    ('keys_det_clip_base.txt', set(),
     dict(stem=(3, 3), depth=24, dims=512, fpn_depth=1, rel=None, ls=0.1)),
    ('keys_det_clip_large.txt', set(),
     dict(
         stem=(2, 2),
         depth=40,
         dims=768,
         fpn_depth=1,
         rel='decomposed',
         ls=0.1)),
    ('keys_seg_base.txt', set(),
     dict(
         stem=(3, 3), depth=24, dims=512, fpn_depth=2, rel='bias_table',
         ls=0.)),
])
def test_official_listing_loads_strictly(listing, head_modules, expected,
                                         key_listing):
    state_dict = key_listing(listing)
    conversion = convert_official(state_dict)
    arch = conversion.backbone['arch']
    assert arch['stem_mlp_blocks'] == expected['stem']
    assert arch['depth'] == expected['depth']
    assert arch['embed_dims'] == expected['dims']
    assert arch['num_heads'] == expected['dims'] // 64
    assert conversion.backbone['rel_pos_type'] == expected['rel']
    assert conversion.backbone['layer_scale_init_value'] == expected['ls']
    if expected['fpn_depth'] is None:
        assert conversion.neck is None
    else:
        assert conversion.neck['fpn_depth'] == expected['fpn_depth']

    model = load_strictly(conversion)
    # Only the derived relative position indices are left out; pretraining
    # heads load into mmitpn's heads under their official names.
    assert all(
        key.endswith('relative_position_index') for key in conversion.dropped)
    assert len(state_dict) - len(conversion.dropped) == len(
        conversion.state_dict)
    assert {key.split('.')[0]
            for key in conversion.part('head')} - {'fc'} == head_modules
    if 'cls_pt_layers' in head_modules:
        # The official auxiliary blocks use PyTorch's LayerNorm eps.
        for block in model.head.cls_pt_layers:
            assert block.norm1.eps == block.norm2.eps == 1e-5
    # Values arrive unchanged (same grid) under their new names.
    assert torch.equal(
        model.backbone.blocks[-1].mlp.fc2.weight,
        state_dict[f'blocks.{len(model.backbone.blocks) - 1}'
                   '.mlp.fc2.weight'])


def test_seg_layout_builds_for_its_512_grid(key_listing):
    conversion = convert_official(key_listing('keys_seg_base.txt'))
    assert conversion.backbone['img_size'] == 512
    model = load_strictly(conversion)
    # The 14x14 pretraining position embedding is resized to 32x32.
    assert model.backbone.absolute_pos_embed.shape == (1, 1024, 512)


def test_detector_checkpoint_moves_pyramid_to_neck_and_keeps_heads(
        key_listing):
    state_dict = key_listing('keys_det_pixel_base.txt', prefixes=['backbone.'])
    state_dict['rpn_head.rpn_cls.weight'] = torch.zeros(3, 256, 1, 1)
    conversion = convert_official(state_dict)
    assert 'neck.fpn_modules.0.mlp.fc1.weight' in conversion.state_dict
    assert 'backbone.blocks.0.mlp.fc1.weight' in conversion.state_dict
    assert 'rpn_head.rpn_cls.weight' in conversion.state_dict


def test_unknown_key_is_named(key_listing):
    state_dict = key_listing('keys_pixel_ft_base.txt')
    state_dict['something_new.weight'] = torch.zeros(1)
    with pytest.raises(ValueError, match='something_new.weight'):
        convert_official(state_dict)


@pytest.mark.parametrize('listings,prefixes,head_type', [
    (('keys_mmp_hivit_base_norpe.txt', 'keys_mmp_neck_pixel_base.txt'),
     ('backbone.', 'neck.'), 'iTPNPixelHead'),
    (('keys_mmp_hivit_base_rpe_ls.txt', 'keys_mmp_neck_clip_base.txt'),
     ('backbone.', 'neck.'), 'iTPNCLIPHead'),
    (('keys_mmp_hivit_large.txt', ), ('', ), None),
])
def test_mmpretrain_listing_loads_strictly(listings, prefixes, head_type,
                                           key_listing):
    state_dict = key_listing(*listings, prefixes=prefixes)
    if head_type == 'iTPNCLIPHead':
        # mmpretrain's iTPNClipHead (not in the neck listing).
        state_dict['head.cls_head.weight'] = torch.randn(512, 512)
        state_dict['head.cls_head.bias'] = torch.randn(512)
    conversion = convert_mmpretrain(state_dict)
    assert conversion.backbone['arch']['stem_mlp_blocks'] == (4, 4)
    assert all(
        key.endswith('relative_position_index') for key in conversion.dropped)
    assert (conversion.head or {}).get('type') == (
        head_type and f'mmitpn.{head_type}')
    load_strictly(conversion)

# Copyright (c) mmitpn contributors. All rights reserved.
"""A CLIP-pretraining checkpoint fills the CLIP classification, detection
and segmentation configs: every backbone and pyramid parameter that exists
in pretraining is loaded; only the parts the recipe adds are fresh."""
import os.path as osp

import pytest
import torch
from mmdet.registry import MODELS as MMDET_MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS
from mmseg.registry import MODELS as MMSEG_MODELS

from mmitpn.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=2, num_heads=4)
PRETRAIN = osp.join(REPO, 'configs', 'pretrain',
                    'itpn-clip-b_itpn-base_64xb32-amp-coslr-300e_in1k.py')


@pytest.fixture(scope='module')
def clip_checkpoint(tmp_path_factory):
    """What ``tools/train.py`` writes for the CLIP-B recipe at tiny size."""
    from mmitpn.models.target_generators import build_vision_tower
    folder = tmp_path_factory.mktemp('clip')
    vision_cfg = dict(
        image_size=64, layers=1, width=32, head_width=16, patch_size=16)
    tower = build_vision_tower(32, vision_cfg)
    teacher = str(folder / 'teacher.pth')
    torch.save({
        f'visual.{k}': v
        for k, v in tower.state_dict().items()
    }, teacher)
    model_cfg = Config.fromfile(PRETRAIN).model
    model_cfg.backbone.update(arch=TINY, img_size=64, drop_path_rate=0.1)
    model_cfg.neck.update(embed_dims=64, fpn_dim=32)
    model_cfg.head.update(
        embed_dims=64,
        fpn_dim=32,
        teacher_dims=32,
        num_heads=4,
        grid_size=(4, 4))
    model_cfg.teacher.update(vision_cfg=vision_cfg, embed_dim=32, ckpt=teacher)
    with DefaultScope.overwrite_default_scope('mmitpn'):
        model = MODELS.build(model_cfg)
    # Non-zero relative position tables and layer scales, so that loading
    # them is visible.
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn_like(param) * 0.01)
    path = str(folder / 'epoch_1.pth')
    torch.save(dict(meta=dict(epoch=1), state_dict=model.state_dict()), path)
    return path, model


CASES = {
    'cls':
    ('cls/itpn-base_clip-b-800e-pre_32xb32-amp-coslr-100e_in1k.py',
     'mmpretrain', 64, {'backbone.fc_norm.weight', 'backbone.fc_norm.bias'}),
    'det-b': ('det/itpn-base_clip-b-800e-pre_mask-rcnn_32xb2-amp-1x_coco.py',
              'mmdet', 64, set()),
    'det-b-cascade':
    ('det/itpn-base_clip-b-800e-pre_cascade-mask-rcnn_32xb2-amp-3x_coco.py',
     'mmdet', 64, set()),
    # ViTDet's decomposed relative positions are new in the L detector.
    'det-l': ('det/itpn-large_clip-l-300e-pre_mask-rcnn_32xb2-amp-1x_coco.py',
              'mmdet', 64, {
                  f'backbone.blocks.{i}.attn.rel_pos_{axis}'
                  for i in (4, 5)
                  for axis in 'hw'
              }),
    # 128 px: the 4x4-grid relative position tables are resized to 8x8.
    'seg': ('seg/itpn-base_clip-b-800e-pre_upernet_8xb2-amp-160k_'
            'ade20k-512x512.py', 'mmseg', 128, set()),
}


@pytest.mark.parametrize('case', CASES)
def test_clip_checkpoint_fills_downstream_config(case, clip_checkpoint,
                                                 mm_log):
    config, scope, img_size, fresh = CASES[case]
    checkpoint, pretrained = clip_checkpoint
    model_cfg = Config.fromfile(osp.join(REPO, 'configs', config)).model
    model_cfg.backbone.update(arch=TINY, img_size=img_size)
    model_cfg.backbone.init_cfg.checkpoint = checkpoint
    parts = ['backbone']
    if model_cfg.get('neck', None) is not None:
        model_cfg.neck.update(embed_dims=64, fpn_dim=32)
        model_cfg.neck.init_cfg.checkpoint = checkpoint
        parts.append('neck')
    registry = dict(
        mmpretrain=MMPRETRAIN_MODELS, mmdet=MMDET_MODELS,
        mmseg=MMSEG_MODELS)[scope]
    with DefaultScope.overwrite_default_scope(scope):
        model = registry.build(model_cfg)
    model.init_weights()
    log = mm_log.getvalue()
    for part in parts:
        assert f'load {part}. in model from: {checkpoint}' in log, log
    source = pretrained.state_dict()
    missing, resized = set(), []
    for part in parts:
        for name, value in getattr(model, part).state_dict().items():
            key = f'{part}.{name}'
            if key not in source:
                missing.add(key)
            elif source[key].shape == value.shape:
                assert torch.equal(source[key], value), key
            else:
                resized.append(key)
    assert missing == fresh
    if img_size == 128:
        assert sorted(resized) == [
            'backbone.absolute_pos_embed',
            'backbone.blocks.4.attn.relative_position_bias_table',
            'backbone.blocks.5.attn.relative_position_bias_table'
        ]
    else:
        assert not resized

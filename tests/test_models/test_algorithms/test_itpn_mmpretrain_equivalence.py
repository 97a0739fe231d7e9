# Copyright (c) mmitpn contributors. All rights reserved.
"""The pixel loss equals mmpretrain 1.2.0's iTPN loss for the same weights,
mask and input (mmpretrain-compatible settings)."""
import torch
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS as MMPRETRAIN_MODELS

from mmitpn.converters import convert_mmpretrain
from mmitpn.registry import MODELS

MMPRETRAIN_ITPN = dict(
    type='iTPN',
    backbone=dict(
        type='iTPNHiViT',
        arch='base',
        reconstruction_type='pixel',
        mask_ratio=0.75),
    neck=dict(
        type='iTPNPretrainDecoder',
        num_patches=196,
        patch_size=16,
        in_chans=3,
        embed_dim=512,
        decoder_embed_dim=512,
        decoder_depth=6,
        decoder_num_heads=16,
        mlp_ratio=4.,
        reconstruction_type='pixel',
        fpn_dim=256,
        fpn_depth=2,
        num_outs=3),
    head=dict(
        type='MAEPretrainHead',
        norm_pix=True,
        patch_size=16,
        loss=dict(type='PixelReconstructionLoss', criterion='L2')))

MMITPN_COMPATIBLE = dict(
    type='iTPN',
    backbone=dict(type='HiViT', arch='mmpretrain-base'),
    neck=dict(type='iTPNPyramid', embed_dims=512, fpn_dim=256, fpn_depth=2),
    head=dict(
        type='iTPNPixelHead',
        decoder_depth=6,
        # mmpretrain's decoder_embed uses PyTorch's default LayerNorm eps.
        embed_norm_eps=1e-5),
    mask_ratio=0.75)


def test_pixel_loss_equals_mmpretrain():
    import mmpretrain.models  # noqa: F401  registers mmpretrain's iTPN
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        reference = MMPRETRAIN_MODELS.build(MMPRETRAIN_ITPN)
        reference.init_weights()
    with DefaultScope.overwrite_default_scope('mmitpn'):
        ours = MODELS.build(MMITPN_COMPATIBLE)
    conversion = convert_mmpretrain(reference.state_dict())
    ours.load_state_dict(conversion.state_dict, strict=True)
    reference.eval()
    ours.eval()
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.manual_seed(1)
        expected = reference.loss(images, None)['loss']
        torch.manual_seed(1)
        actual = ours.loss(images)['loss_pixel']
    assert abs(actual.item() - expected.item()) < 1e-5
    assert expected.item() > 0.5  # a real reconstruction error

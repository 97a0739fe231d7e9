# Copyright (c) mmitpn contributors. All rights reserved.
"""mmitpn's HiViT reproduces mmpretrain 1.2.0's HiViT after conversion."""
import pytest
import torch
from mmpretrain.models.backbones import HiViT as MMPretrainHiViT

from mmitpn.converters import convert_mmpretrain
from mmitpn.models import HiViT


@pytest.mark.parametrize('arch,kwargs', [
    ('tiny', {}),
    ('tiny', dict(rpe=True, layer_scale_init_value=0.1)),
    ('base', {}),
])
def test_outputs_equal_mmpretrain_hivit(arch, kwargs):
    torch.manual_seed(0)
    reference = MMPretrainHiViT(arch=arch, **kwargs)
    reference.eval()
    conversion = convert_mmpretrain(reference.state_dict())
    # mmpretrain builds its LayerNorms with the PyTorch default epsilon.
    ours = HiViT(norm_eps=1e-5, **conversion.backbone).eval()
    ours.load_state_dict(conversion.part('backbone'), strict=True)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        (expected, ) = reference(images)
        (actual, ) = ours(images)
    assert actual.shape == expected.shape
    assert (actual - expected).abs().max() < 1e-5
    if arch == 'base':
        assert conversion.backbone['arch']['stem_mlp_blocks'] == (4, 4)
        assert ours.arch_settings == HiViT.arch_zoo['mmpretrain-base']

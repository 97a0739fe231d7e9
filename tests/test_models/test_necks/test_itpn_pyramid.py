# Copyright (c) mmitpn contributors. All rights reserved.
import pytest
import torch
from tiny_models import tiny_arch

from mmitpn.models import HiViT, iTPNPyramid
from mmitpn.models.utils import gather_units

TINY = tiny_arch(embed_dims=64)


def _backbone(out_type):
    torch.manual_seed(0)
    return HiViT(
        TINY, img_size=64, out_indices=(0, 1, 2), out_type=out_type).eval()


def test_parameter_names_and_count_match_official_base():
    neck = iTPNPyramid(embed_dims=512, fpn_dim=256, fpn_depth=2)
    params = sum(p.numel() for p in neck.parameters())
    assert round(params / 1e6, 2) == 4.70  # reference: B, depth 2
    names = {name.split('.')[0] for name, _ in neck.named_parameters()}
    assert names == {
        'align_dim_16tofpn', 'split_16to8', 'align_dim_16to8', 'block_16to8',
        'split_8to4', 'align_dim_8to4', 'block_8to4', 'fpn_modules'
    }
    assert round(
        sum(p.numel()
            for p in iTPNPyramid(512, fpn_depth=1).parameters()) / 1e6,
        2) == 3.65


def test_unit_layout_on_visible_units_equals_dense_at_those_units():
    backbone = _backbone('raw')
    neck = iTPNPyramid(embed_dims=64, fpn_dim=32).eval()
    images = torch.randn(2, 3, 64, 64)
    ids_keep = torch.rand(2, 16).argsort(dim=1)[:, :5]
    with torch.no_grad():
        dense = neck(backbone(images))
        masked = neck(backbone(images, ids_keep))
    assert [tuple(o.shape) for o in masked] == [(2, 5, 4, 4, 32),
                                                (2, 5, 2, 2, 32), (2, 5, 32)]
    # The stem and the pyramid are per unit: masked levels equal the full
    # ones at the kept units (the attention stage sees fewer tokens, so
    # compare the pyramid on identical inputs).
    with torch.no_grad():
        full_inputs = backbone(images)
        gathered = [gather_units(x, ids_keep) for x in full_inputs]
        on_gathered = neck(gathered)
    for level_dense, level_gathered in zip(dense, on_gathered):
        assert torch.allclose(
            gather_units(level_dense, ids_keep), level_gathered, atol=1e-6)


def test_dense_outputs_for_detection():
    backbone = _backbone('featmap')
    neck = iTPNPyramid(embed_dims=64, fpn_dim=32, num_outs=5)
    outs = neck(backbone(torch.randn(1, 3, 64, 128)))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 32), (1, 32, 8, 16),
                                              (1, 32, 4, 8), (1, 32, 2, 4),
                                              (1, 32, 1, 2)]
    assert neck.out_channels == (32, ) * 5


def test_dense_maps_equal_unit_layout_results():
    backbone_raw, backbone_map = _backbone('raw'), _backbone('featmap')
    neck = iTPNPyramid(embed_dims=64, fpn_dim=32).eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        p4_units = neck(backbone_raw(images))[0]
        p4_map = neck(backbone_map(images))[0]
    # Unit 5 is row 1, column 1 of the 4x4 grid; its sub-token (2, 3)
    # sits at pixel row 1*4+2, column 1*4+3 of the stride-4 map.
    assert torch.allclose(p4_units[0, 5, 2, 3], p4_map[0, :, 6, 7])


def test_segmentation_concatenates_backbone_features_and_max_pools():
    backbone = _backbone('featmap')
    neck = iTPNPyramid(
        embed_dims=64,
        fpn_dim=32,
        num_outs=4,
        extra_pool='max',
        concat_inputs=True)
    inputs = backbone(torch.randn(1, 3, 64, 64))
    outs = neck(inputs)
    assert neck.out_channels == (48, 64, 96, 96)
    assert [o.shape[1] for o in outs] == list(neck.out_channels)
    assert torch.equal(outs[2][:, 32:], inputs[2])
    assert torch.equal(outs[3], torch.nn.functional.max_pool2d(outs[2], 2))


def test_official_base_seg_channels():
    neck = iTPNPyramid(
        embed_dims=512, num_outs=4, extra_pool='max', concat_inputs=True)
    assert neck.out_channels == (384, 512, 768, 768)


@pytest.mark.parametrize('kwargs,message', [
    (dict(num_outs=2), 'num_outs'),
    (dict(extra_pool='median'), 'extra_pool'),
    (dict(fpn_depth=0), 'fpn_depth'),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        iTPNPyramid(**kwargs)


def test_extra_levels_need_dense_inputs():
    backbone = _backbone('raw')
    neck = iTPNPyramid(embed_dims=64, fpn_dim=32, num_outs=5)
    with pytest.raises(ValueError, match='NCHW'):
        neck(backbone(torch.randn(1, 3, 64, 64)))


def test_wrong_number_of_inputs_names_out_indices():
    with pytest.raises(ValueError, match='out_indices'):
        iTPNPyramid(embed_dims=64)([torch.zeros(1, 64, 4, 4)])

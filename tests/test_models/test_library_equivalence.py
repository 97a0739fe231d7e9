# Copyright (c) mmitpn contributors. All rights reserved.
"""Where mmitpn calls library code instead of its own copy, the result is
what the copy computed; where it keeps its own, the test shows the
difference its docstring names (docs/notes/library_code.md)."""
import json

import torch
import torch.nn.functional as F
from mmpretrain.models.utils import (SwiGLUFFN,
                                     build_2d_sincos_position_embedding)

from mmitpn.models.target_generators import build_vision_tower
from mmitpn.models.utils import build_2d_sincos_pos_embed, resize_pos_embed
from mmitpn.models.utils.fast_itpn_blocks import ConvPatchMerge, SwiGLU


def test_resize_pos_embed_is_a_bicubic_resize_of_the_grid():
    pos = torch.randn(1, 6 * 4, 8)
    resized = resize_pos_embed(pos, (6, 4), (5, 7))
    grid = pos.reshape(1, 6, 4, 8).permute(0, 3, 1, 2)
    expected = F.interpolate(
        grid, size=(5, 7), mode='bicubic', align_corners=False)
    assert torch.equal(resized, expected.flatten(2).transpose(1, 2))
    assert resize_pos_embed(pos, (6, 4), (6, 4)) is pos
    # The resize mmpretrain's computes (kept apart for its traced shortcut).
    from mmpretrain.models.utils import resize_pos_embed as mmpretrain_resize
    torch.testing.assert_close(
        resized, mmpretrain_resize(pos, (6, 4), (5, 7), num_extra_tokens=0))


def test_fast_itpn_channel_norm_is_a_layer_norm_per_pixel():
    merge = ConvPatchMerge(8)
    merge.norm.weight.data.normal_()
    maps = torch.randn(2, 8, 4, 6)
    per_pixel = F.layer_norm(
        maps.permute(0, 2, 3, 1), (8, ), merge.norm.weight, merge.norm.bias,
        merge.norm.eps).permute(0, 3, 1, 2)
    assert torch.allclose(merge.norm(maps), per_pixel, atol=1e-6)


def test_sincos_embedding_differs_from_mmpretrain_only_off_square():
    ours = build_2d_sincos_pos_embed((5, 5), 16)
    theirs = build_2d_sincos_position_embedding((5, 5), 16)
    assert torch.allclose(ours, theirs, atol=1e-6)
    # For a 2x3 grid mmpretrain builds the embedding of the transposed 3x2
    # grid, which does not fit row-major 2x3 tokens.
    theirs = build_2d_sincos_position_embedding((2, 3), 16)
    assert not torch.allclose(
        build_2d_sincos_pos_embed((2, 3), 16), theirs, atol=1e-3)
    assert torch.allclose(
        build_2d_sincos_pos_embed((3, 2), 16), theirs, atol=1e-6)


def test_swiglu_is_mmpretrains_swiglu_ffn_with_unfused_weights():
    ours = SwiGLU(16, 24)
    theirs = SwiGLUFFN(
        16, 24, norm_cfg=dict(type='LN', eps=1e-6), add_identity=False)
    theirs.w12.weight.data = torch.cat([ours.w1.weight, ours.w2.weight])
    theirs.w12.bias.data = torch.cat([ours.w1.bias, ours.w2.bias])
    theirs.norm.load_state_dict(ours.ffn_ln.state_dict())
    theirs.w3.load_state_dict(ours.w3.state_dict())
    x = torch.randn(2, 5, 16)
    assert torch.allclose(ours(x), theirs(x), atol=1e-6)
    assert {'w1.weight', 'w2.weight', 'w3.weight'} <= set(ours.state_dict())


def test_clip_vision_tower_is_open_clips(tmp_path):
    import open_clip
    vision_cfg = dict(
        image_size=32, layers=1, width=32, head_width=16, patch_size=16)
    text_cfg = dict(
        context_length=4, vocab_size=8, width=16, heads=1, layers=1)
    model_cfg = dict(
        embed_dim=24,
        vision_cfg=vision_cfg,
        text_cfg=text_cfg,
        quick_gelu=True)
    (tmp_path / 'open_clip_config.json').write_text(
        json.dumps(dict(model_cfg=model_cfg)))
    reference = open_clip.create_model(
        f'local-dir:{tmp_path}', load_weights=False).visual
    tower = build_vision_tower(24, vision_cfg, quick_gelu=True)
    assert {k: v.shape for k, v in tower.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    tower.load_state_dict(reference.state_dict())
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(tower(images), reference(images), atol=1e-6)
    activation = type(tower.transformer.resblocks[0].mlp.gelu).__name__
    assert activation == 'QuickGELU'

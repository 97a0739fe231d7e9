# Copyright (c) mmitpn contributors. All rights reserved.
"""Fast-iTPN against the official code: the fixture's outputs, the
parameter counts of the four released models and their key layouts.

The fixture (official code's outputs for a tiny model with random weights,
2.2 MB) is not in the repository: it is read from the project's shared
reference folder, or from ``$MMITPN_FAST_ITPN_FIXTURE``; without it the
equivalence test is skipped and says where to put it."""
import os
import os.path as osp

import pytest
import torch
from tiny_models import tiny_arch

from mmitpn.converters import convert_fast_itpn
from mmitpn.models import FastiTPN, iTPNPyramid
from mmitpn.models.utils import map_to_units

REPO = osp.dirname(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))
FIXTURE = os.environ.get(
    'MMITPN_FAST_ITPN_FIXTURE',
    osp.join(
        osp.dirname(REPO), 'shared', 'reference', 'fast-itpn',
        'fast_itpn_tiny_fixture.pt'))
# The fixture's architecture (official constructor arguments img_size 64,
# embed_dim 128, stem depths 1/1, 2 attention blocks, 2 heads).
TINY = tiny_arch(depth=2, embed_dims=128, num_heads=2, stem_mlp_blocks=(1, 1))
# name: (listing, arch, img_size, parameters in M with a 1000-class head)
RELEASED = {
    'fast-itpn-tiny': ('keys_fast_itpn_tiny_1112_patch16_224.txt', 224, 24.22),
    'fast-itpn-small':
    ('keys_fast_itpn_small_2220_patch16_224.txt', 224, 39.90),
    'fast-itpn-base': ('keys_fast_itpn_base_3324_patch16_224.txt', 224, 84.83),
    'fast-itpn-large':
    ('keys_fast_itpn_large_2240_patch16_256.txt', 256, 312.06),
}


def tiny(**kwargs):
    return FastiTPN(TINY, img_size=64, **kwargs).eval()


@pytest.mark.skipif(
    not osp.isfile(FIXTURE),
    reason=f'official Fast-iTPN fixture not found at {FIXTURE} (set '
    'MMITPN_FAST_ITPN_FIXTURE)')
def test_outputs_equal_the_official_code():
    fixture = torch.load(FIXTURE, weights_only=True)['tiny']
    cfg = fixture['cfg']
    assert (cfg['embed_dim'], cfg['depth_stage1'], cfg['depth_stage2'],
            cfg['depth'], cfg['num_heads'], cfg['img_size']) == (128, 1, 1, 2,
                                                                 2, 64)
    conversion = convert_fast_itpn(fixture['state_dict'])
    assert conversion.backbone['arch']['stem_mlp_blocks'] == (1, 1)
    model = tiny(out_indices=(0, 1, 2), out_type='featmap')
    model.load_state_dict(
        {
            k: v
            for k, v in conversion.part('backbone').items()
            if not k.startswith('fc_norm.')
        },
        strict=True)
    with torch.no_grad():
        stride4, stride8, stride16 = model(fixture['x'])
    for ours, key in ((stride4, 'stride4'), (stride8, 'stride8')):
        assert (ours - fixture[key]).abs().max() < 1e-5, key
    tokens = stride16.flatten(2).transpose(1, 2)
    assert (tokens - fixture['tokens']).abs().max() < 1e-5

    classifier = tiny(out_type='avg_featmap')
    classifier.load_state_dict(conversion.part('backbone'), strict=True)
    head = torch.nn.Linear(128, 10)
    head.load_state_dict({
        k[len('fc.'):]: v
        for k, v in conversion.part('head').items()
    })
    with torch.no_grad():
        pooled = classifier(fixture['x'])[0]
    assert (pooled - fixture['pooled']).abs().max() < 1e-5
    assert (head(pooled) - fixture['logits']).abs().max() < 1e-5


@pytest.mark.parametrize('arch', RELEASED)
def test_released_models_parameters_and_strict_conversion(arch, key_listing):
    listing, img_size, params = RELEASED[arch]
    state_dict = key_listing(listing)
    conversion = convert_fast_itpn(state_dict)
    assert conversion.backbone['arch'] == FastiTPN.arch_zoo[arch]
    assert conversion.backbone['img_size'] == img_size
    assert conversion.backbone['layer_scale_init_value'] == 0.1
    assert conversion.backbone_type == 'mmitpn.FastiTPN'
    assert not conversion.dropped
    with torch.device('meta'):
        model = FastiTPN(arch, img_size=img_size, out_type='avg_featmap')
        head = torch.nn.Linear(model.embed_dims, 1000)
    total = sum(p.numel()
                for p in model.parameters()) + sum(p.numel()
                                                   for p in head.parameters())
    assert round(total / 1e6, 2) == params
    result = model.load_state_dict(
        conversion.part('backbone'), strict=True, assign=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert set(conversion.part('head')) == {'fc.weight', 'fc.bias'}


def test_any_multiple_of_16_and_raw_unit_layout():
    model = tiny(out_indices=(0, 1, 2))
    raw = tiny(out_indices=(0, 1, 2), out_type='raw')
    raw.load_state_dict(model.state_dict())
    images = torch.randn(1, 3, 48, 80)
    with torch.no_grad():
        maps = model(images)
        units = raw(images)
    assert [tuple(m.shape) for m in maps] == [(1, 32, 12, 20), (1, 64, 6, 10),
                                              (1, 128, 3, 5)]
    assert torch.equal(units[0], map_to_units(maps[0], 4))
    assert torch.equal(units[1], map_to_units(maps[1], 2))
    assert torch.equal(units[2], maps[2].flatten(2).transpose(1, 2))
    # The iTPN pyramid takes the raw outputs as it takes HiViT's.
    pyramid = iTPNPyramid(embed_dims=128, fpn_dim=32, fpn_depth=1)
    levels = pyramid(units)
    assert [tuple(level.shape[:2]) for level in levels][0] == (1, 15)
    with pytest.raises(ValueError, match='multiple'):
        model(torch.randn(1, 3, 40, 64))


def test_layer_depth_counts_merges_as_the_official_code():
    model = FastiTPN('fast-itpn-tiny')
    assert model.num_layers == 16  # 1 + merge + 1 + merge + 12
    assert model.get_layer_depth('backbone.pos_embed', 'backbone.') == (0, 18)
    assert model.get_layer_depth('backbone.blocks.1.reduction.weight',
                                 'backbone.') == (2, 18)
    assert model.get_layer_depth('backbone.blocks.15.attn.q_bias',
                                 'backbone.') == (16, 18)
    assert model.get_layer_depth('head.fc.weight', 'backbone.') == (17, 18)


def test_drop_path_frozen_stages_and_checkpointing():
    model = FastiTPN('fast-itpn-tiny', drop_path_rate=0.1)
    rates = [
        getattr(block.drop_path, 'drop_prob', 0.) for block in model.blocks
        if hasattr(block, 'drop_path')
    ]
    assert len(rates) == 14 and rates[0] == 0 and rates[-1] == \
        pytest.approx(0.1)
    frozen = tiny(frozen_stages=2)
    frozen.train()
    trainable = {n for n, p in frozen.named_parameters() if p.requires_grad}
    assert 'pos_embed' not in trainable
    assert 'blocks.3.reduction.weight' in trainable  # opens stage 3
    assert 'blocks.2.mlp.fc1.weight' not in trainable
    assert not frozen.blocks[0].training and frozen.blocks[4].training
    plain = tiny(out_indices=(0, 1, 2)).train()
    checkpointed = tiny(out_indices=(0, 1, 2), with_cp=True).train()
    checkpointed.load_state_dict(plain.state_dict())
    images = torch.randn(2, 3, 64, 64)
    for a, b in zip(plain(images), checkpointed(images)):
        torch.testing.assert_close(a, b)


def test_pretraining_mask_token_fills_masked_units_after_patch_embed():
    """A masked unit's 16 sub-tokens become the D/4 mask token right after
    the patch embedding: its pixels reach no stage and no output."""
    model = tiny()
    assert model.mask_token_dims == 32
    mask = torch.zeros(2, 16, dtype=torch.bool)
    mask[:, [0, 5, 10]] = True
    token = torch.randn(32)
    images = torch.randn(2, 3, 64, 64)
    changed = images.clone()
    changed[:, :, 16:32, 16:32] += 5  # unit 5 (row 1, column 1)
    with torch.no_grad():
        first = model.forward_stem(images, mask=mask, mask_token=token)
        second = model.forward_stem(changed, mask=mask, mask_token=token)
        for a, b in zip(first[0] + [first[1]], second[0] + [second[1]]):
            assert torch.equal(a, b)
        unmasked = model.forward_stem(changed)
        assert not torch.equal(unmasked[1], second[1])
        embedded = model.patch_embed.proj(images)
    # What the first stem block sees at a masked unit is the token.
    stride4 = first[0][0]  # (B, N, 4, 4, C) after the stride-4 blocks
    block = model.blocks[0]
    expected = block(token.reshape(1, 32, 1, 1).expand(1, 32, 4, 4))
    torch.testing.assert_close(stride4[0, 5], expected[0].permute(1, 2, 0))
    assert not torch.equal(stride4[0, 6].flatten(), expected.flatten())
    assert embedded.shape == (2, 32, 16, 16)

# Copyright (c) mmitpn contributors. All rights reserved.
import math

import pytest
import torch
from tiny_models import tiny_arch

from mmitpn.models import HiViT
from mmitpn.models.utils import relative_position_index, units_to_map
from mmitpn.utils import count_macs

TINY = tiny_arch(depth=3, embed_dims=64, stem_mlp_blocks=(1, 2))

# Published parameter counts with relative position bias and a 1000-class
# head (mmpretrain metafile and the iTPN README), and multiply-accumulates
# at 224x224 (reference table; mmpretrain metafile for T/S/mmpretrain-base).
PUBLISHED = {
    'hivit-tiny': (19.18, 4.60),
    'hivit-small': (37.53, 9.07),
    'hivit-base': (66.42, 15.8),
    'itpn-base': (78.56, 17.8),
    'itpn-large': (288.49, 61.1),
    'mmpretrain-base': (79.05, 18.47),
}


def _classifier_on_meta(arch):
    with torch.device('meta'):
        backbone = HiViT(
            arch, rel_pos_type='bias_table', out_type='avg_featmap')
        head = torch.nn.Linear(backbone.embed_dims, 1000)
    return backbone, head


@pytest.mark.parametrize('arch', sorted(PUBLISHED))
def test_parameter_count_matches_published(arch):
    backbone, head = _classifier_on_meta(arch)
    params = sum(p.numel() for m in (backbone, head) for p in m.parameters())
    assert round(params / 1e6, 2) == PUBLISHED[arch][0]


@pytest.mark.parametrize('arch', sorted(PUBLISHED))
def test_macs_within_two_percent_of_reference(arch):
    backbone, head = _classifier_on_meta(arch)
    with torch.device('meta'):
        images = torch.empty(1, 3, 224, 224)
    macs = count_macs(lambda: head(backbone(images)[0])) / 1e9
    assert macs == pytest.approx(PUBLISHED[arch][1], rel=0.02)


def test_arch_zoo_block_layout():
    model = HiViT('itpn-base')
    kinds = [type(block).__name__ for block in model.blocks]
    assert kinds[:8] == ['MlpBlock'] * 3 + ['PatchMerge'] + \
        ['MlpBlock'] * 3 + ['PatchMerge']
    assert kinds[8:] == ['AttentionBlock'] * 24
    assert model.num_layers == 30


@pytest.mark.parametrize('arch,message', [
    ('vit-base', 'Unknown HiViT arch'),
    (dict(embed_dims=64, depth=2), 'custom HiViT arch'),
    (tiny_arch(num_heads=2, stem_mlp_blocks=(1, 1, 1)), 'stem_mlp_blocks'),
])
def test_bad_arch_is_rejected(arch, message):
    with pytest.raises(ValueError, match=message):
        HiViT(arch)


def test_input_size_not_multiple_of_16_names_the_size():
    model = HiViT(TINY, img_size=64)
    with pytest.raises(ValueError, match='70x64'):
        model(torch.randn(1, 3, 70, 64))


def test_featmap_outputs_and_strides():
    model = HiViT(TINY, img_size=64, out_indices=(0, 1, 2))
    outs = model(torch.randn(2, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 16, 24), (2, 32, 8, 12),
                                              (2, 64, 4, 6)]


def test_units_to_map_places_sub_tokens_in_pixel_order():
    # Unit (row 0, col 1) of a 1x2 grid, sub-token (row 1, col 0).
    units = torch.zeros(1, 2, 2, 2, 1)
    units[0, 1, 1, 0, 0] = 1.
    feature_map = units_to_map(units, (1, 2))
    assert feature_map.shape == (1, 1, 2, 4)
    assert feature_map[0, 0, 1, 2] == 1. and feature_map.sum() == 1.


def test_negative_out_indices_and_avg_featmap():
    model = HiViT(TINY, img_size=64, out_indices=-1, out_type='avg_featmap')
    (pooled, ) = model(torch.randn(3, 3, 64, 64))
    assert pooled.shape == (3, 64)
    with pytest.raises(ValueError, match='avg_featmap'):
        HiViT(TINY, out_indices=(1, 2), out_type='avg_featmap')
    with pytest.raises(ValueError, match='out_indices'):
        HiViT(TINY, out_indices=(3, ))


@pytest.mark.parametrize('rel_pos_type', [None, 'bias_table', 'decomposed'])
def test_other_resolutions_resize_position_parameters(rel_pos_type):
    model = HiViT(
        TINY, img_size=64, rel_pos_type=rel_pos_type,
        out_indices=(2, )).eval()
    (out, ) = model(torch.randn(1, 3, 80, 48))
    assert out.shape == (1, 64, 5, 3)
    assert torch.isfinite(out).all()


def test_sincos_position_embedding_is_fixed_when_not_trainable():
    model = HiViT(TINY, img_size=64, pos_embed_trainable=False)
    assert not model.absolute_pos_embed.requires_grad
    # Row-major tokens: the first quarter of channels encodes the row.
    pos = model.absolute_pos_embed[0]
    assert torch.allclose(pos[0, :16], pos[3, :16])
    assert not torch.allclose(pos[0, :16], pos[4, :16])


def _reference_attention_stage(model, tokens, ids_keep, grid):
    """Blocks run by hand on the gathered tokens, with an explicit softmax
    and the relative position bias looked up for every kept pair."""
    index = relative_position_index(grid)
    pos = model.absolute_pos_embed[0]
    outs = []
    for b in range(tokens.shape[0]):
        keep = ids_keep[b]
        x = tokens[b] + pos[keep]
        pair_index = index[keep][:, keep]
        for block in model.blocks[model.main_start:]:
            attn = block.attn
            y = block.norm1(x)
            q, k, v = attn.qkv(y).reshape(len(keep), 3, attn.num_heads,
                                          -1).permute(1, 2, 0, 3)
            logits = q @ k.transpose(-1, -2) / math.sqrt(attn.head_dims)
            bias = attn.relative_position_bias_table[pair_index]
            logits = logits + bias.permute(2, 0, 1)
            y = (logits.softmax(-1) @ v).transpose(0, 1).reshape(len(keep), -1)
            x = x + attn.proj(y)
            x = x + block.mlp(block.norm2(x))
        outs.append(x)
    return torch.stack(outs)


def test_masked_attention_stage_equals_blocks_on_gathered_tokens():
    torch.manual_seed(0)
    model = HiViT(
        TINY,
        img_size=64,
        rel_pos_type='bias_table',
        out_indices=(2, ),
        out_type='raw').eval()
    images = torch.randn(2, 3, 64, 64)
    ids_keep = torch.rand(2, 16).argsort(dim=1)[:, :6]
    with torch.no_grad():
        _, tokens = model.forward_stem(images, ids_keep)
        expected = _reference_attention_stage(model, tokens, ids_keep, (4, 4))
        (masked, ) = model(images, ids_keep)
    assert torch.allclose(masked, expected, atol=1e-5)


def test_masked_forward_needs_raw_outputs():
    model = HiViT(TINY, img_size=64)
    with pytest.raises(ValueError, match="out_type='raw'"):
        model(torch.randn(1, 3, 64, 64), torch.zeros(1, 4, dtype=torch.long))


def test_decomposed_rel_pos_of_visible_units_are_those_of_the_grid():
    """Masked, decomposed relative positions are indexed by the visible
    units' grid positions: one main block (no MLP stem between the units)
    gives at the visible units what the full grid gives with the hidden
    units masked out of attention."""
    torch.manual_seed(0)
    model = HiViT(
        dict(TINY, depth=1),
        img_size=64,
        rel_pos_type='decomposed',
        out_type='raw').eval()
    attn = model.blocks[model.main_start].attn
    torch.nn.init.normal_(attn.rel_pos_h)
    torch.nn.init.normal_(attn.rel_pos_w)
    images = torch.randn(2, 3, 64, 64)
    ids_keep = torch.rand(2, 16).argsort(dim=1)[:, :6]
    hidden = torch.ones(2, 16).scatter(1, ids_keep, 0.).bool()
    original = attn.position_bias

    def masked_bias(q, grid_size, rel_pos):
        bias = original(q, grid_size, rel_pos)
        return bias.masked_fill(hidden[:, None, None, :], float('-inf'))

    with torch.no_grad():
        (masked, ) = model(images, ids_keep)
        attn.position_bias = masked_bias
        (full, ) = model(images)
    expected = full.gather(1, ids_keep[..., None].expand(-1, -1, 64))
    torch.testing.assert_close(masked, expected)


def test_drop_path_ramps_over_stem_and_attention_blocks():
    model = HiViT(TINY, img_size=64, drop_path_rate=0.5)
    rates = [
        block.drop_path.drop_prob for block in model.blocks if
        hasattr(block, 'drop_path') and hasattr(block.drop_path, 'drop_prob')
    ]
    assert rates == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert not hasattr(model.blocks[0].drop_path, 'drop_prob')


def test_layer_scale_parameters():
    model = HiViT(TINY, img_size=64, layer_scale_init_value=0.1)
    names = {name for name, _ in model.named_parameters()}
    assert 'blocks.0.gamma_2' in names and 'blocks.0.gamma_1' not in names
    assert {'blocks.5.gamma_1', 'blocks.5.gamma_2'} <= names
    assert torch.allclose(model.blocks[5].gamma_1, torch.full((64, ), 0.1))


@pytest.mark.parametrize('frozen_stages,trainable_prefixes', [
    (0, ('blocks.', 'fc_norm.')),
    (1, ('blocks.1.', 'blocks.2.', 'blocks.3.', 'blocks.4.', 'blocks.5.',
         'blocks.6.', 'blocks.7.', 'blocks.8.', 'fc_norm.')),
    (3, ()),
])
def test_frozen_stages(frozen_stages, trainable_prefixes):
    model = HiViT(
        TINY, img_size=64, frozen_stages=frozen_stages, out_type='avg_featmap')
    model.train()
    for name, param in model.named_parameters():
        expected = name.startswith(trainable_prefixes)
        assert param.requires_grad == expected, name
    assert not model.patch_embed.training
    if frozen_stages == 3:
        assert not any(m.training for m in model.blocks)
        assert not model.fc_norm.training


def test_with_cp_gives_same_outputs_and_gradients():
    torch.manual_seed(0)
    plain = HiViT(TINY, img_size=64, out_indices=(0, 1, 2))
    checkpointed = HiViT(
        TINY, img_size=64, out_indices=(0, 1, 2), with_cp=True)
    checkpointed.load_state_dict(plain.state_dict())
    images = torch.randn(2, 3, 64, 64)
    grads = []
    for model in (plain, checkpointed):
        model.zero_grad()
        sum(o.square().mean() for o in model(images)).backward()
        grads.append(model.blocks[0].mlp.fc1.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_get_layer_depth_of_itpn_base():
    model = HiViT('itpn-base')
    expected = {
        'backbone.patch_embed.proj.weight': 0,
        'backbone.absolute_pos_embed': 0,
        'backbone.blocks.0.mlp.fc1.weight': 1,
        'backbone.blocks.2.norm2.bias': 3,
        'backbone.blocks.3.reduction.weight': 3,  # PatchMerge: block before
        'backbone.blocks.4.norm2.weight': 4,
        'backbone.blocks.7.norm.weight': 6,
        'backbone.blocks.8.attn.qkv.weight': 7,
        'backbone.blocks.31.mlp.fc2.bias': 30,
        'backbone.fc_norm.weight': 31,
        'neck.fpn_modules.0.mlp.fc1.weight': 31,
        'head.fc.weight': 31,
    }
    for name, layer_id in expected.items():
        assert model.get_layer_depth(name, 'backbone.') == (layer_id, 32), name


def test_pos_embed_of_another_grid_is_resized_on_load():
    source = HiViT(TINY, img_size=64)
    target = HiViT(TINY, img_size=96)
    target.load_state_dict(source.state_dict(), strict=True)
    assert target.absolute_pos_embed.shape == (1, 36, 64)


def test_ape_resample_offset_reproduces_the_official_masked_forward():
    """``ape_resample_offset=0.1``: with units dropped, the position
    embedding is DINO's bicubic interpolation with scale (g + 0.1) / g onto
    the same grid; full-grid forwards are unchanged."""
    torch.manual_seed(0)
    shifted = HiViT(
        TINY, img_size=64, out_type='raw', ape_resample_offset=0.1).eval()
    plain = HiViT(TINY, img_size=64, out_type='raw').eval()
    plain.load_state_dict(shifted.state_dict())
    images = torch.randn(2, 3, 64, 64)
    ids_keep = torch.stack([torch.randperm(16)[:5] for _ in range(2)])
    with torch.no_grad():
        for a, b in zip(shifted(images), plain(images)):
            assert torch.equal(a, b)
        pos = plain.absolute_pos_embed.data
        maps = pos.reshape(1, 4, 4, 64).permute(0, 3, 1, 2)
        by_hand = torch.nn.functional.interpolate(
            maps, scale_factor=(4.1 / 4, 4.1 / 4), mode='bicubic')
        by_hand = by_hand.permute(0, 2, 3, 1).reshape(1, 16, 64)
        change = (by_hand - pos).norm() / pos.norm()
        assert 0.005 < change < 0.05
        plain.absolute_pos_embed.copy_(by_hand)
        for a, b in zip(shifted(images, ids_keep), plain(images, ids_keep)):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='ape_resample_offset'):
        HiViT(TINY, ape_resample_offset=1.0)

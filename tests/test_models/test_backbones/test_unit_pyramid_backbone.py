# Copyright (c) mmitpn contributors. All rights reserved.
"""What the backbone template gives both families: unit dropping, ViTDet
windows and fused attention."""
import pytest
import torch
from tiny_models import tiny_arch
from torch.autograd.graph import saved_tensors_hooks

from mmitpn.models import FastiTPN, HiViT
from mmitpn.models.utils import gather_units

TINY = tiny_arch(depth=3, embed_dims=64, stem_mlp_blocks=(1, 2))
FAMILIES = [
    pytest.param(HiViT, dict(rel_pos_type='bias_table'), id='HiViT'),
    pytest.param(FastiTPN, {}, id='FastiTPN'),
]


@pytest.mark.parametrize('family,kwargs', FAMILIES)
def test_dropped_units_stem_equals_full_stem_at_kept_units(family, kwargs):
    """The stems are unit-local, so dropping hidden units right after the
    patch embedding computes exactly the full image's stem at the visible
    units (Fast-iTPN's convolutions included)."""
    torch.manual_seed(0)
    model = family(TINY, img_size=64, **kwargs).eval()
    images = torch.randn(2, 3, 64, 96)
    ids_keep = torch.rand(2, 24).argsort(dim=1)[:, :7]
    with torch.no_grad():
        full_stem, full_tokens = model.forward_stem(images)
        kept_stem, kept_tokens = model.forward_stem(images, ids_keep)
    for full, kept in zip(full_stem + [full_tokens],
                          kept_stem + [kept_tokens]):
        assert kept.shape[1] == 7
        assert torch.equal(gather_units(full, ids_keep), kept)


@pytest.mark.parametrize('family,kwargs', FAMILIES)
def test_one_window_covering_the_grid_equals_global_attention(family, kwargs):
    torch.manual_seed(0)
    global_model = family(TINY, img_size=64, **kwargs).eval()
    windowed = family(TINY, img_size=64, window_size=4, **kwargs).eval()
    windowed.load_state_dict(global_model.state_dict())
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(
            windowed(images)[0], global_model(images)[0], atol=1e-5)


@pytest.mark.parametrize('family', [HiViT, FastiTPN])
def test_padded_windows_and_global_blocks(family):
    torch.manual_seed(0)
    model = family(
        TINY, img_size=64, window_size=2, global_blocks=(1, ),
        out_type='raw').eval()
    assert model._windowed(0) and not model._windowed(1)
    (out, ) = model(torch.randn(1, 3, 80, 48))  # 5x3 units: padded windows
    assert out.shape == (1, 15, 64)
    with pytest.raises(ValueError, match='full unit grid'):
        model(torch.randn(1, 3, 64, 64), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match='global_blocks'):
        family(TINY, window_size=2, global_blocks=(7, ))


def _window_reference(block, x, grid, size):
    """ViTDet's windowed block written out window by window: norm1, zero
    padding and attention per window, then the residual and the MLP on the
    real tokens only (layer scale where the block has it)."""
    batch, _, channels = x.shape
    height, width = grid
    rows, cols = -(-height // size), -(-width // size)
    normed = torch.zeros(batch, rows * size, cols * size, channels)
    normed[:, :height, :width] = block.norm1(x).view(batch, height, width, -1)
    attended = torch.zeros_like(normed)
    for r in range(rows):
        for c in range(cols):
            window = normed[:, r * size:(r + 1) * size,
                            c * size:(c + 1) * size].reshape(
                                batch, -1, channels)
            out = block.attn(window, (size, size), None)
            attended[:, r * size:(r + 1) * size,
                     c * size:(c + 1) * size] = out.view(
                         batch, size, size, -1)
    gamma_1 = 1 if block.gamma_1 is None else block.gamma_1
    gamma_2 = 1 if block.gamma_2 is None else block.gamma_2
    x = x + gamma_1 * attended[:, :height, :width].reshape(
        batch, height * width, -1)
    return x + gamma_2 * block.mlp(block.norm2(x))


@pytest.mark.parametrize('family', [HiViT, FastiTPN])
def test_window_attention_is_vitdet_partition_after_norm1(family):
    torch.manual_seed(0)
    model = family(TINY, img_size=64, window_size=2, out_type='raw').eval()
    block = model.blocks[model.main_start]
    # Non-zero LayerNorm shifts: padding before norm1 would turn into
    # non-zero keys and change the real tokens.
    torch.nn.init.normal_(block.norm1.bias)
    grid = (5, 3)
    x = torch.randn(2, 15, 64)
    with torch.no_grad():
        out = block(x, grid, None, 2)
        assert torch.allclose(
            out, _window_reference(block, x, grid, 2), atol=1e-5)


@pytest.mark.parametrize('family', [HiViT, FastiTPN])
def test_window_drop_path_drops_whole_images(family):
    torch.manual_seed(0)
    model = family(
        TINY, img_size=64, window_size=2, drop_path_rate=0.9, out_type='raw')
    block = model.blocks[-1].train()
    for param in block.mlp.parameters():
        torch.nn.init.zeros_(param)  # only attention changes x
    x = torch.randn(16, 16, 64)
    with torch.no_grad():
        changed = (block(x, (4, 4), None, 2) - x).abs().sum(-1) > 0
    per_image = changed.all(dim=1) | (~changed).all(dim=1)
    assert per_image.all(), 'drop path must keep or drop whole images'
    assert changed.any() and not changed.all()


def _saved_shapes(module, x):
    shapes = []

    def pack(tensor):
        shapes.append(tuple(tensor.shape))
        return tensor

    with saved_tensors_hooks(pack, lambda tensor: tensor):
        module(x)[0].sum().backward()
    return shapes


@pytest.mark.parametrize('family,kwargs', FAMILIES)
def test_fused_attention_keeps_no_token_by_token_matrix_at_detection_size(
        family, kwargs):
    """At 1344x800 (4,200 units) a global attention block keeps no
    ``(B, heads, N, N)`` tensor for backward unless fused attention is off
    (the relative position bias itself is an ``(N, N)`` input, so HiViT is
    checked with no bias tables)."""
    arch = tiny_arch(depth=1, embed_dims=32, num_heads=2)
    kwargs = dict(kwargs, rel_pos_type=None) if family is HiViT else kwargs
    images = torch.randn(1, 3, 800, 1344)
    square = (1, 2, 4200, 4200)
    fused = family(arch, img_size=64, **kwargs)
    assert square not in _saved_shapes(fused, images)
    unfused = family(arch, img_size=64, fused_attention=False, **kwargs)
    assert square in _saved_shapes(unfused, images)


def test_upcast_attention_runs_in_float32_under_autocast():
    """With ``upcast`` the product and softmax of bf16 inputs run in
    float32 under autocast (Fast-iTPN's official semantics): the result is
    the float32 attention of the same inputs, rounded once to bf16; without
    it the attention runs in bf16 and differs."""
    from mmitpn.models.utils.transformer_blocks import attend
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 64, 32).bfloat16() for _ in range(3))
    expected = attend(q.float(), k.float(), v.float()).bfloat16()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        upcast = attend(q, k, v, upcast=True)
        lowered = attend(q, k, v, upcast=False)
    assert upcast.dtype == lowered.dtype == torch.bfloat16
    assert torch.equal(upcast, expected)
    assert not torch.equal(lowered, expected)
    # The Fast-iTPN block asks for it by default, HiViT's does not.
    arch = tiny_arch(depth=1, num_heads=2)
    fast, hivit = FastiTPN(arch, img_size=64), HiViT(arch, img_size=64)
    assert fast.blocks[fast.main_start].attn.upcast
    assert not hivit.blocks[hivit.main_start].attn.upcast

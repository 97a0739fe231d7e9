# Copyright (c) mmitpn contributors. All rights reserved.
"""Token gathering and token migration, for both families."""
import pytest
import torch

from mmitpn.models import FastiTPN, HiViT
from mmitpn.models.utils.token_migration import (keep_tokens, restore_tokens,
                                                 start_migration)

TINY = dict(embed_dims=64, stem_mlp_blocks=(1, 1), depth=4, num_heads=4)
FAMILIES = [HiViT, FastiTPN]


def main_block(family, **kwargs):
    torch.manual_seed(0)
    model = family(TINY, img_size=64, **kwargs).eval()
    block = model.blocks[model.main_start]
    torch.nn.init.normal_(block.norm1.bias)  # padding must stay invisible
    return block


@pytest.mark.parametrize('family', FAMILIES)
def test_gathering_without_windows_is_attention_over_all_tokens(family):
    """Over the whole grid, a gathered block is the block itself run on the
    image tokens and the gathering tokens together."""
    block = main_block(family)
    x, gather = torch.randn(2, 15, 64), torch.randn(2, 3, 64)
    with torch.no_grad():
        tokens, gathered = block.forward_gathered(x, gather, (5, 3))
        expected = block(torch.cat([x, gather], 1), (18, 1))
    torch.testing.assert_close(tokens, expected[:, :15])
    torch.testing.assert_close(gathered, expected[:, 15:])


@pytest.mark.parametrize('family', FAMILIES)
def test_gathering_tokens_see_every_real_token_in_padded_windows(family):
    """With padded 2x2 windows on a 5x3 grid the gathering tokens still
    attend to exactly the 15 real tokens (padding masked out), and the
    image tokens to their window and the gathering tokens."""
    block = main_block(family)
    x, gather = torch.randn(2, 15, 64), torch.randn(2, 3, 64)
    with torch.no_grad():
        _, gathered = block.forward_gathered(x, gather, (5, 3), None, 2)
        expected = block(torch.cat([x, gather], 1), (18, 1))[:, 15:]
        torch.testing.assert_close(gathered, expected)
        # Windows exchange information only through the gathering tokens:
        # a change in window (0, 0) reaches the last row (another window)
        # in the next block, through them.
        changed = x.clone()
        changed[:, 0] += torch.randn(64)
        far = slice(12, 15)

        def two_blocks(tokens, gathering):
            if gathering is None:
                return block(block(tokens, (5, 3), None, 2), (5, 3), None, 2)
            tokens, gathering = block.forward_gathered(tokens, gathering,
                                                       (5, 3), None, 2)
            return block.forward_gathered(tokens, gathering, (5, 3), None,
                                          2)[0]

        assert torch.equal(
            two_blocks(x, None)[:, far],
            two_blocks(changed, None)[:, far])
        assert not torch.allclose(
            two_blocks(x, gather)[:, far],
            two_blocks(changed, gather)[:, far])


def test_migration_drops_duplicates_and_restores_the_grid():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 8)
    x[:, 0] = x[:, 5]  # token 0 (first set) duplicates token 5 (second)
    x[:, 6] = 2 * x[:, 9]  # the same direction: cosine 1
    state = start_migration(x, keep_ratio=0.875)  # drop 2 of 16
    assert state.kept_ids.shape == (2, 14)
    assert state.dropped_ids.sort(1).values.tolist() == [[0, 6], [0, 6]]
    kept = keep_tokens(x, state)
    matched = state.kept_ids.gather(1, state.match).sort(1).values
    assert matched.tolist() == [[5, 9], [5, 9]]
    torch.testing.assert_close(restore_tokens(kept, state), x)
    # Dropped tokens follow their match: a shift of the kept tokens moves
    # them too.
    torch.testing.assert_close(restore_tokens(kept + 1, state), x + 1)


@pytest.mark.parametrize('family', FAMILIES)
def test_migration_runs_global_blocks_on_the_kept_tokens(family):
    torch.manual_seed(0)
    migration = dict(start_block=1, keep_ratio=0.5)
    model = family(
        TINY,
        img_size=64,
        window_size=2,
        global_blocks=(2, 3),
        token_migration=migration).eval()
    lengths = []
    for block in model.blocks[model.main_start:]:
        block.register_forward_pre_hook(
            lambda _, args: lengths.append(args[0].shape[1]))
    images = torch.randn(2, 3, 80, 112)  # 5x7 = 35 units
    with torch.no_grad():
        (out, ) = model(images)
    # Windowed blocks 0 and 1 on the grid; global blocks 2, 3 on 35 - 17.
    assert lengths == [35, 35, 18, 18]
    assert out.shape == (2, 64, 5, 7)
    full = family(
        TINY, img_size=64, window_size=2, global_blocks=(2, 3)).eval()
    full.load_state_dict(model.state_dict())
    with torch.no_grad():
        (reference, ) = full(images)
    assert not torch.equal(out, reference)
    model.token_migration = dict(migration, keep_ratio=1.)
    with torch.no_grad():
        assert torch.equal(model(images)[0], reference)


@pytest.mark.parametrize('family', FAMILIES)
def test_both_options_train_from_a_checkpoint_without_gathering_tokens(family):
    torch.manual_seed(0)
    pretrained = family(TINY, img_size=64)
    model = family(
        TINY,
        img_size=64,
        window_size=2,
        gathering_tokens=4,
        token_migration=dict(start_block=2, keep_ratio=0.75),
        out_indices=(0, 1, 2))
    result = model.load_state_dict(pretrained.state_dict(), strict=False)
    assert result.missing_keys == ['gathering_tokens']
    assert not result.unexpected_keys
    outs = model.train()(torch.randn(2, 3, 64, 96))
    sum(out.sum() for out in outs).backward()
    assert model.gathering_tokens.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.blocks.parameters()
               if p.requires_grad)


@pytest.mark.parametrize('kwargs,message', [
    (dict(token_migration=dict(start_block=1, keep_ratio=0.4)), r'\[0.5, 1\]'),
    (dict(token_migration=dict(start_block=9, keep_ratio=0.5)),
     'start_block 9 is not a block'),
    (dict(token_migration=dict(start=1)), 'must be dict'),
    (dict(gathering_tokens=-1), 'gathering_tokens must be >= 0'),
    (dict(
        rel_pos_type='decomposed',
        token_migration=dict(start_block=1, keep_ratio=0.5)), 'decomposed'),
])
def test_bad_token_reduction_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HiViT(TINY, img_size=64, **kwargs)

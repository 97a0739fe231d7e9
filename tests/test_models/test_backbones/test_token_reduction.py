# Copyright (c) mmitpn contributors. All rights reserved.
"""Token reduction (none, migration, window migration) and token gathering,
for both families."""
import importlib.util
import json
import os.path as osp
import warnings

import numpy as np
import pytest
import torch
from tiny_models import tiny_arch

from mmitpn.models import FastiTPN, HiViT
from mmitpn.models.utils.token_migration import (WindowLayout, keep_tokens,
                                                 restore_tokens,
                                                 start_migration,
                                                 start_window_migration)
from mmitpn.models.utils.token_reduction import (TokenMigration,
                                                 TokenReduction,
                                                 WindowTokenMigration,
                                                 build_token_reduction)
from mmitpn.models.utils.transformer_blocks import (Attention,
                                                    gather_rel_pos_index)
from mmitpn.models.utils.windows import (GridWindows, SlotWindows,
                                         window_partition)

TINY = tiny_arch(depth=4)
FAMILIES = [HiViT, FastiTPN]
RECORD_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'data',
    'main_stage_outputs')


def load_record_module():
    spec = importlib.util.spec_from_file_location(
        'main_stage_record', osp.join(RECORD_DIR, 'record.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RECORD = load_record_module()
RECORDED = np.load(osp.join(RECORD_DIR, 'main_stage_outputs.npz'))
RECORDED_SETTINGS = json.loads(str(RECORDED['settings']))


def current_kwargs(kwargs: dict) -> dict:
    """The recorded constructor keywords with ``token_reduction``."""
    kwargs = dict(kwargs)
    migration = kwargs.pop('token_migration', None)
    if migration is not None:
        kwargs['token_reduction'] = dict(type='migration', **migration)
    return kwargs


def assert_as_recorded(actual: torch.Tensor, key: str) -> None:
    """Equal to the record up to float rounding (bitwise with one thread on
    the machine that made it; other thread counts and CPUs round
    differently, by about 1e-6 of the values)."""
    expected = torch.from_numpy(RECORDED[key])
    scale = expected.abs().max().item()
    torch.testing.assert_close(actual, expected, rtol=1e-4, atol=1e-5 * scale)


@pytest.mark.parametrize('key', list(RECORDED_SETTINGS))
def test_main_stage_outputs_are_those_recorded_before_the_rewrite(key):
    """The main-stage loop, rewritten around the strategy object, computes
    what the loop before it computed, in every windows / gathering /
    migration / relative-position setting of both families: outputs,
    collected block outputs and gradients (training mode, checkpointing)
    against a record made at the old code; the deprecated keyword gives
    exactly the same model."""
    family = RECORDED_SETTINGS[key]['family']
    kwargs = RECORDED_SETTINGS[key]['kwargs']
    outputs = RECORD.outputs(family, current_kwargs(kwargs))
    for name, tensor in outputs.items():
        assert_as_recorded(tensor, f'{key}/{name}')
    if 'token_migration' in kwargs:
        with pytest.warns(FutureWarning, match='token_reduction='):
            deprecated = RECORD.outputs(family, kwargs)
        for name, tensor in outputs.items():
            assert torch.equal(deprecated[name], tensor)


@pytest.mark.parametrize('family', list(RECORD.FAMILIES))
def test_masked_forward_is_the_one_recorded_before_the_rewrite(family):
    outputs = RECORD.masked_outputs(family)
    ids_keep = torch.from_numpy(RECORDED[f'{family}/masked/ids_keep'])
    assert torch.equal(outputs.pop('ids_keep'), ids_keep)
    for name, tensor in outputs.items():
        assert_as_recorded(tensor, f'{family}/masked/{name}')


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


def test_no_reduction_keeps_every_token_at_every_fixed_point():
    x = torch.randn(2, 15, 8)
    tokens = TokenReduction().begin(x, (3, 5), None, 'bias_table', 2)
    for index in range(4):
        tokens.keep(index)
    kept, rel_pos, windows = tokens.block_input(windowed=False)
    assert kept is x and windows is None
    assert torch.equal(rel_pos, gather_rel_pos_index((3, 5), None, 'cpu'))
    _, rel_pos, windows = tokens.block_input(windowed=True)
    assert isinstance(windows, GridWindows) and windows.window_grid == (2, 2)
    assert rel_pos.shape == (1, 4, 4)
    tokens.block_output(x + 1, windowed=True)
    assert torch.equal(tokens.restore(), x + 1)


def test_migration_fixed_points():
    """keep drops before the start block only; global blocks get the kept
    tokens and their positions, windowed blocks the restored full grid,
    whose output refreshes what dropped tokens restore to."""
    torch.manual_seed(0)
    x = torch.randn(2, 15, 8)
    tokens = TokenMigration(
        start_block=1, keep_ratio=0.5).begin(x, (3, 5), None, 'bias_table', 2)
    tokens.keep(0)
    assert tokens.block_input(windowed=False)[0] is x
    tokens.keep(1)
    kept, rel_pos, windows = tokens.block_input(windowed=False)
    ids = tokens.migration.kept_ids
    assert kept.shape == (2, 8, 8) and windows is None
    assert torch.equal(kept, keep_tokens(x, tokens.migration))
    assert torch.equal(rel_pos, gather_rel_pos_index((3, 5), ids, 'cpu'))
    torch.testing.assert_close(tokens.restore(), x)
    full, _, windows = tokens.block_input(windowed=True)
    assert full.shape == (2, 15, 8) and isinstance(windows, GridWindows)
    changed = full + torch.randn_like(full)
    tokens.block_output(changed, windowed=True)
    assert tokens.x.shape == (2, 8, 8)
    torch.testing.assert_close(tokens.restore(), changed)


def test_window_migration_fixed_points():
    """Window migration keeps the tokens window by window; windowed blocks
    get them as windows of K slots (padding where a window has fewer
    tokens), with their positions in the window."""
    torch.manual_seed(0)
    x = torch.randn(2, 35, 8)  # a 5x7 grid: 3x4 windows of 2x2, padded
    tokens = WindowTokenMigration(
        start_block=0, keep_ratio=0.5).begin(x, (5, 7), None, 'bias_table', 2)
    tokens.keep(0)
    kept, rel_pos, windows = tokens.block_input(windowed=True)
    assert isinstance(windows, SlotWindows)
    # Two slots per window; one window (bottom right) has one token.
    assert kept.shape == (2, 23, 8) and windows.slot_count == 2
    grouped = windows.partition(kept)
    assert grouped.shape == (2 * 12, 2, 8)
    reference = window_partition(x, (5, 7), 2).view(2, 12, 4, 8)
    local = windows.local_ids.view(2, 12, 2)
    expected = reference.gather(2, local[..., None].expand(-1, -1, -1, 8))
    expected[:, -1, 1] = 0  # the padding slot of the last window
    assert torch.equal(grouped.view(2, 12, 2, 8), expected)
    assert torch.equal(rel_pos,
                       gather_rel_pos_index((2, 2), windows.local_ids, 'cpu'))
    assert torch.equal(windows.unpartition(grouped, 2), kept)
    # Every dropped token follows a kept token of its own window.
    state = tokens.migration
    # Grid index + 1 of every window slot (0: padding).
    window_of = window_partition(
        torch.arange(1., 36.).view(1, 35, 1), (5, 7), 2).view(12, 4)
    window_id = {
        int(v) - 1: w
        for w, row in enumerate(window_of)
        for v in row if v
    }
    followed = state.kept_ids.gather(1, state.match)
    for dropped, match in zip(state.dropped_ids.flatten().tolist(),
                              followed.flatten().tolist()):
        assert window_id[dropped] == window_id[match]
    torch.testing.assert_close(tokens.restore(), x)
    _, rel_pos, windows = tokens.block_input(windowed=False)
    assert windows is None and rel_pos.shape == (2, 23, 23)


def test_window_migration_drops_the_most_redundant_token_of_a_window():
    """In a 4x4 window at keep 0.75 (12 of 16 slots) the four tokens of the
    first checkerboard half most similar to a token of the second are
    dropped, each following that token."""
    torch.manual_seed(0)
    x = torch.randn(1, 16, 8)
    # Checkerboard first half: (row + col) even, e.g. 0, 2, 5, 7, 8, ...
    for source, target in [(0, 1), (5, 6), (10, 14), (15, 11)]:
        x[:, source] = 3 * x[:, target]
    state, _ = start_window_migration(x, (4, 4), 4, keep_ratio=0.75)
    assert state.dropped_ids.tolist() == [[0, 5, 10, 15]]
    followed = state.kept_ids.gather(1, state.match)
    assert followed.tolist() == [[1, 6, 14, 11]]
    assert state.kept_ids.shape == (1, 12)


def test_window_layout_at_detection_size():
    """1344x800 with windows of 14 (ViTDet's): every window, the padded
    bottom row too, keeps 98 tokens at keep 0.5, so the windows of the kept
    tokens need no padding at all (a reshape)."""
    layout = WindowLayout((50, 84), 14, 0.5, torch.device('cpu'))
    assert layout.num_windows == 24 and layout.num_kept == 24 * 98
    assert layout.num_kept + layout.num_dropped == 50 * 84
    assert torch.equal(layout.slots, torch.arange(24 * 98))
    # Bottom-row windows hold 8x14 tokens: they drop 14, the others 98.
    assert layout.drop_count.tolist() == [98] * 18 + [14] * 6


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('global_blocks', [(), (2, )])
def test_window_migration_at_keep_1_computes_what_windows_compute(
        family, global_blocks):
    """Nothing dropped: windowed blocks compute exactly what ViTDet windows
    compute; global blocks the same up to float rounding (they take the
    tokens window by window, not row by row)."""
    kwargs = dict(window_size=2, global_blocks=global_blocks)
    if family is HiViT:
        kwargs['rel_pos_type'] = 'bias_table'
    torch.manual_seed(0)
    reference = family(TINY, img_size=64, **kwargs).eval()
    reduced = family(
        TINY,
        img_size=64,
        token_reduction=dict(
            type='window_migration', start_block=1, keep_ratio=1.),
        **kwargs).eval()
    reduced.load_state_dict(reference.state_dict())
    images = torch.randn(2, 3, 80, 112)  # 5x7 units: padded windows
    with torch.no_grad():
        out, expected = reduced(images)[0], reference(images)[0]
    if global_blocks:
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)
    else:
        assert torch.equal(out, expected)


def run_recording_lengths(model, images):
    """The output of ``model`` and the number of tokens every main block
    and its attention took (the attention: tokens per window)."""
    lengths, attention_lengths = [], []
    for block in model.blocks[model.main_start:]:
        block.register_forward_pre_hook(
            lambda _, args: lengths.append(args[0].shape[1]))
        block.attn.register_forward_pre_hook(
            lambda _, args: attention_lengths.append(args[0].shape[1]))
    with torch.no_grad():
        (out, ) = model(images)
    return out, lengths, attention_lengths


@pytest.mark.parametrize('family', FAMILIES)
def test_window_migration_runs_every_block_on_the_kept_tokens(family):
    torch.manual_seed(0)
    reduction = dict(type='window_migration', start_block=1, keep_ratio=0.5)
    model = family(
        TINY,
        img_size=64,
        window_size=2,
        global_blocks=(3, ),
        token_reduction=reduction).eval()
    images = torch.randn(2, 3, 80, 112)  # 5x7 = 35 units, 12 windows
    out, lengths, attention_lengths = run_recording_lengths(model, images)
    # Block 0 on the grid; windowed block 1-2 and global block 3 on the 23
    # kept tokens; windows of 4, then 2 slots; global attention over 23.
    assert lengths == [35, 23, 23, 23]
    assert attention_lengths == [4, 2, 2, 23]
    assert out.shape == (2, 64, 5, 7)


@pytest.mark.parametrize('family', FAMILIES)
def test_migration_runs_global_blocks_on_the_kept_tokens(family):
    torch.manual_seed(0)
    migration = dict(type='migration', start_block=1, keep_ratio=0.5)
    model = family(
        TINY,
        img_size=64,
        window_size=2,
        global_blocks=(2, 3),
        token_reduction=migration).eval()
    images = torch.randn(2, 3, 80, 112)  # 5x7 = 35 units
    out, lengths, attention_lengths = run_recording_lengths(model, images)
    # Windowed blocks 0 and 1 on the grid; global blocks 2, 3 on 35 - 17.
    assert lengths == [35, 35, 18, 18]
    assert attention_lengths == [4, 4, 18, 18]
    assert out.shape == (2, 64, 5, 7)
    full = family(
        TINY, img_size=64, window_size=2, global_blocks=(2, 3)).eval()
    full.load_state_dict(model.state_dict())
    with torch.no_grad():
        (reference, ) = full(images)
    assert not torch.equal(out, reference)
    model.token_reduction = build_token_reduction(
        dict(migration, keep_ratio=1.))
    with torch.no_grad():
        assert torch.equal(model(images)[0], reference)


@pytest.mark.parametrize('family', FAMILIES)
@pytest.mark.parametrize('reduction', ['migration', 'window_migration'])
def test_reduction_and_gathering_train_from_a_checkpoint_without_them(
        family, reduction):
    torch.manual_seed(0)
    pretrained = family(TINY, img_size=64)
    model = family(
        TINY,
        img_size=64,
        window_size=2,
        gathering_tokens=4,
        token_reduction=dict(type=reduction, start_block=2, keep_ratio=0.75),
        out_indices=(0, 1, 2),
        with_cp=True)
    result = model.load_state_dict(pretrained.state_dict(), strict=False)
    assert result.missing_keys == ['gathering_tokens']
    assert not result.unexpected_keys
    outs = model.train()(torch.randn(2, 3, 64, 96))
    sum(out.sum() for out in outs).backward()
    assert model.gathering_tokens.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.blocks.parameters()
               if p.requires_grad)


def test_decomposed_bias_of_kept_tokens_is_the_dense_bias_at_them():
    """The decomposed relative positions of tokens at given grid indices,
    in any order, are the rows and columns of the full grid's bias."""
    torch.manual_seed(0)
    attn = Attention(16, 2, rel_pos_type='decomposed', grid_size=(4, 6)).eval()
    torch.nn.init.normal_(attn.rel_pos_h)
    torch.nn.init.normal_(attn.rel_pos_w)
    grid = (5, 7)  # another grid: the tables are resized
    q = torch.randn(2, 2, 35, 8)
    dense = attn.position_bias(q, grid, None)
    ids = torch.stack([torch.randperm(35)[:20] for _ in range(2)])
    kept_q = q.gather(2, ids[:, None, :, None].expand(-1, 2, -1, 8))
    bias = attn.position_bias(kept_q, grid, ids)
    expected = torch.stack(
        [dense[b][:, ids[b]][:, :, ids[b]] for b in range(2)])
    torch.testing.assert_close(bias, expected)


def test_attention_with_decomposed_positions_on_kept_tokens_is_dense_masked():
    """Global attention of the kept tokens equals the full grid's attention
    with the dropped keys masked out, at the kept queries."""
    torch.manual_seed(0)
    attn = Attention(16, 2, rel_pos_type='decomposed', grid_size=(5, 7))
    torch.nn.init.normal_(attn.rel_pos_h)
    torch.nn.init.normal_(attn.rel_pos_w)
    attn.eval()
    x = torch.randn(2, 35, 16)
    ids = torch.stack([torch.randperm(35)[:20] for _ in range(2)])
    with torch.no_grad():
        out = attn(keep_tokens(x, _ids_state(ids)), (5, 7), ids)
        q, k, v = attn.project_qkv(x)
        mask = torch.full((2, 1, 1, 35), float('-inf'))
        mask.scatter_(3, ids[:, None, None, :], 0.)
        dense = attn.project_out(
            attn.attend(q, k, v,
                        attn.position_bias(q, (5, 7), None) + mask))
    torch.testing.assert_close(
        out, dense.gather(1, ids[..., None].expand(-1, -1, 16)))


def _ids_state(ids):
    """A stand-in migration state that keeps ``ids``."""

    class Kept:
        kept_ids = ids

    return Kept()


@pytest.mark.parametrize('reduction', ['migration', 'window_migration'])
def test_migration_takes_decomposed_relative_positions(reduction):
    """The shipped iTPN-L CLIP detector's decomposed positions work with
    both migrations: nothing dropped equals no reduction; at keep 0.5 the
    output differs and has the full grid."""
    torch.manual_seed(0)
    kwargs = dict(
        rel_pos_type='decomposed', window_size=2, global_blocks=(2, 3))
    reference = HiViT(TINY, img_size=64, **kwargs).eval()
    for block in reference.blocks[reference.main_start:]:
        torch.nn.init.normal_(block.attn.rel_pos_h)
        torch.nn.init.normal_(block.attn.rel_pos_w)
    images = torch.randn(2, 3, 80, 112)
    outs = {}
    for keep_ratio in (1., 0.5):
        model = HiViT(
            TINY,
            img_size=64,
            token_reduction=dict(
                type=reduction, start_block=1, keep_ratio=keep_ratio),
            **kwargs).eval()
        model.load_state_dict(reference.state_dict())
        with torch.no_grad():
            outs[keep_ratio] = model(images)[0]
    with torch.no_grad():
        expected = reference(images)[0]
    torch.testing.assert_close(outs[1.], expected, rtol=0, atol=1e-5)
    assert outs[0.5].shape == expected.shape
    assert (outs[0.5] - expected).abs().max() > 1e-3


@pytest.mark.parametrize('kwargs,message', [
    (dict(
        token_reduction=dict(type='migration', start_block=1, keep_ratio=0.4)),
     r'keep_ratio .*\[0.5, 1\]'),
    (dict(
        token_reduction=dict(type='migration', start_block=9, keep_ratio=0.5)),
     'start_block 9 is not a block of the 4-block main stage; use 0 to 3'),
    (dict(token_reduction=dict(type='migration', start_block=1)),
     r"type 'migration' takes \['start_block', 'keep_ratio'\], got "
     r"\['start_block'\]"),
    (dict(token_reduction=dict(type='merging')),
     "token_reduction must be None or a dict with type one of "
     r"\['migration', 'none', 'window_migration'\]"),
    (dict(
        token_reduction=dict(
            type='window_migration', start_block=1, keep_ratio=0.5)),
     "'window_migration' keeps tokens per window: set window_size"),
    (dict(
        token_reduction=dict(
            type='migration', start_block='6', keep_ratio=0.5)),
     'start_block must be an int'),
    (dict(token_migration=dict(start=1)), 'token_migration must be dict'),
    (dict(
        token_migration=dict(start_block=1, keep_ratio=0.5),
        token_reduction=dict(type='migration', start_block=1,
                             keep_ratio=0.5)), 'Set token_reduction only'),
    (dict(gathering_tokens=-1), 'gathering_tokens must be >= 0'),
])
def test_bad_token_reduction_settings_are_refused_in_one_line(kwargs, message):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', FutureWarning)
        with pytest.raises(ValueError, match=message) as error:
            HiViT(TINY, img_size=64, **kwargs)
    assert '\n' not in str(error.value)


def test_the_deprecated_keyword_names_its_replacement():
    with pytest.warns(
            FutureWarning,
            match=r"token_reduction=dict\(type='migration', start_block=2, "
            r'keep_ratio=0.5\)'):
        model = HiViT(
            TINY,
            img_size=64,
            token_migration=dict(start_block=2, keep_ratio=0.5))
    assert repr(model.token_reduction) == \
        'TokenMigration(start_block=2, keep_ratio=0.5)'

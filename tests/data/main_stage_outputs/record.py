# Copyright (c) mmitpn contributors. All rights reserved.
"""Record the main-stage outputs of tiny HiViT and Fast-iTPN backbones in
every windows / gathering / migration setting, to prove that a rewrite of
the main-stage loop changes none of them.

Run from the repository root (the outputs were recorded at commit 1f84071,
before the token-reduction strategy existed, with the constructor keywords
of that time, which the backbones still accept)::

    python tests/data/main_stage_outputs/record.py

Every parameter is filled from its own name (not from the order of
construction), so the record does not depend on how modules are built.
"""
import json
import os.path as osp
import zlib

import numpy as np
import torch

from mmitpn.models import FastiTPN, HiViT

HERE = osp.dirname(osp.abspath(__file__))
TINY = dict(embed_dims=16, stem_mlp_blocks=(1, 1), depth=4, num_heads=2)
IMAGE_SHAPE = (2, 3, 48, 80)  # a 3x5 unit grid: 2x2 windows are padded
WINDOWS = dict(window_size=2, global_blocks=[2])
MIGRATION = dict(token_migration=dict(start_block=1, keep_ratio=0.5))
# name -> (family, constructor keywords as of 1f84071)
SETTINGS = {
    'global':
    dict(),
    'global-bias':
    dict(rel_pos_type='bias_table'),
    'windows':
    dict(WINDOWS),
    'windows-bias':
    dict(WINDOWS, rel_pos_type='bias_table'),
    'windows-decomposed':
    dict(WINDOWS, rel_pos_type='decomposed'),
    'gathering':
    dict(gathering_tokens=3),
    'windows-gathering':
    dict(WINDOWS, gathering_tokens=3),
    'windows-gathering-bias':
    dict(WINDOWS, gathering_tokens=3, rel_pos_type='bias_table'),
    'migration':
    dict(MIGRATION),
    'migration-0.75-bias':
    dict(
        token_migration=dict(start_block=2, keep_ratio=0.75),
        rel_pos_type='bias_table'),
    'migration-windows':
    dict(MIGRATION, window_size=2, global_blocks=[0, 2]),
    'migration-windows-gathering-bias':
    dict(
        MIGRATION,
        window_size=2,
        global_blocks=[2],
        gathering_tokens=3,
        rel_pos_type='bias_table'),
    'migration-gathering':
    dict(MIGRATION, gathering_tokens=3),
}
FAMILIES = dict(HiViT=HiViT, FastiTPN=FastiTPN)
COLLECT = (2, )


def fill_by_name(model: torch.nn.Module) -> None:
    """Every parameter from a generator seeded with its name: weights
    scaled by ``fan_in ** -0.5``, norm weights near 1, everything else
    (biases, tables, embeddings, layer scale) of size 0.1-1."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            generator = torch.Generator().manual_seed(
                zlib.crc32(name.encode()))
            values = torch.randn(param.shape, generator=generator)
            if param.dim() >= 2 and 'pos' not in name and \
                    'gathering' not in name and 'table' not in name:
                values = values * param[0].numel()**-0.5
            elif 'norm' in name and name.endswith('weight'):
                values = 1 + 0.1 * values
            elif 'gathering' not in name:
                values = 0.3 * values
            param.copy_(values)


def images() -> torch.Tensor:
    return torch.randn(IMAGE_SHAPE, generator=torch.Generator().manual_seed(0))


def build(family: str, kwargs: dict, **extra) -> torch.nn.Module:
    model = FAMILIES[family](
        TINY, img_size=64, out_type='raw', **kwargs, **extra)
    fill_by_name(model)
    return model.eval()


def cases():
    """(key, family, kwargs): Fast-iTPN has no relative positions."""
    for name, kwargs in SETTINGS.items():
        for family in FAMILIES:
            if family == 'FastiTPN' and 'rel_pos_type' in kwargs:
                continue
            yield f'{family}/{name}', family, kwargs


def outputs(family: str, kwargs: dict) -> dict:
    """The stride-16 tokens, the collected block outputs and (in training
    mode, with checkpointing) the gradients of the position embedding and of
    the gathering tokens."""
    x = images()
    model = build(family, kwargs)
    grid = model.grid_of(*x.shape[2:])
    result = {}
    with torch.no_grad():
        _, tokens = model.forward_stem(x)
        out, collected = model.forward_main(tokens, grid, collect=COLLECT)
    result['out'] = out
    for index, tensor in zip(COLLECT, collected):
        result[f'collect{index}'] = tensor
    model = build(family, kwargs, with_cp=True).train()
    _, tokens = model.forward_stem(x)
    out, _ = model.forward_main(tokens, grid)
    out.square().mean().backward()
    result['grad_pos_embed'] = getattr(model, model.pos_embed_name).grad
    if model.gathering_tokens is not None:
        result['grad_gathering'] = model.gathering_tokens.grad
    return result


def masked_outputs(family: str) -> dict:
    """Masked pretraining's forward (visible units only, relative position
    bias gathered per sample, the official position resampling)."""
    kwargs = dict(rel_pos_type='bias_table', ape_resample_offset=0.1) \
        if family == 'HiViT' else {}
    model = build(family, kwargs, out_indices=(1, 2))
    ids_keep = torch.rand(
        2, 15, generator=torch.Generator().manual_seed(1)).argsort(1)[:, :5]
    with torch.no_grad():
        stride8, out = model(images(), ids_keep)
    return dict(ids_keep=ids_keep, out=out, stride8=stride8)


def main():
    torch.set_num_threads(1)
    arrays, settings = {}, {}
    for key, family, kwargs in cases():
        settings[key] = dict(family=family, kwargs=kwargs)
        for name, tensor in outputs(family, kwargs).items():
            arrays[f'{key}/{name}'] = tensor.numpy()
    for family in FAMILIES:
        for name, tensor in masked_outputs(family).items():
            arrays[f'{family}/masked/{name}'] = tensor.numpy()
    arrays['settings'] = np.array(json.dumps(settings))
    np.savez_compressed(osp.join(HERE, 'main_stage_outputs.npz'), **arrays)
    print(f'{len(settings)} settings, {len(arrays)} arrays')


if __name__ == '__main__':
    main()

# Copyright (c) mmitpn contributors. All rights reserved.
"""Estimated training-step GPU memory of the shipped downstream configs,
with and without activation checkpointing (``with_cp``), for global
attention and the recommended token reduction, and the ``with_cp`` each
should ship with.

For every config (its own per-GPU batch and precision: Mask R-CNN and
Cascade 2 images at 1344x800 under fp16 AMP, DINO 2 in fp32; UperNet 2 at
512x512 under AMP, Mask2Former 2 in fp32): backbone and neck counted on the
meta device per setting (``mmitpn.benchmarks.train_memory.count_features``),
the heads once per config on the CPU (``count_heads``; they do not depend
on the backbone setting), then parameters, gradients, AdamW states and a
20 % margin (``estimate_config``'s sum). A setting ships ``with_cp=False``
when its estimate without checkpointing leaves at least 25 % of an 80 GB
GPU free (at most 60 GB).

Run from the repository root (the heads of about 20 configs run on the CPU:
about 15 minutes on one free core)::

    OMP_NUM_THREADS=1 .venv/bin/python .dev_scripts/train_memory_table.py \\
        --json work_dirs/train_memory.json
"""
import argparse
import json
import os.path as osp
from typing import Optional

from mmengine.logging import MMLogger

from mmitpn.benchmarks.downstream import SIZES, recommended_backbone
from mmitpn.benchmarks.train_memory import (GIB, MemoryEstimate, SavedBytes,
                                            combine, count_features,
                                            count_heads, load_train_config,
                                            optimizer_states)
from mmitpn.utils import write_atomically

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DET = 'configs/det/{}_{}_32xb2-amp-{}_coco.py'
MODELS = {
    'iTPN-B': ('itpn-base', 'pixel-1600e-pre'),
    'iTPN-L': ('itpn-large', 'pixel-1600e-pre'),
    'iTPN-L CLIP': ('itpn-large', 'clip-l-300e-pre'),
    'Fast-iTPN-T': ('fast-itpn-tiny', 'clip-l-1600e-pre'),
    'Fast-iTPN-S': ('fast-itpn-small', 'clip-l-1600e-pre'),
    'Fast-iTPN-B': ('fast-itpn-base', 'clip-l-1600e-pre'),
    'Fast-iTPN-L': ('fast-itpn-large', 'clip-l-1600e-pre'),
}
# Detector / segmentor -> (task, window of the recommended setting, config
# name pattern).
RECIPES = {
    'Mask R-CNN': ('det', 14, '{}_{}_mask-rcnn_32xb2-amp-1x_coco.py'),
    'Cascade Mask R-CNN':
    ('det', 14, '{}_{}_cascade-mask-rcnn_32xb2-amp-3x_coco.py'),
    'DINO': ('det', 14, '{}_{}_dino-5scale_8xb2-12e_coco.py'),
    'UperNet': ('seg', 16, '{}_{}_upernet_8xb2-amp-160k_ade20k-512x512.py'),
    'Mask2Former':
    ('seg', 16, '{}_{}_mask2former_8xb2-160k_ade20k-512x512.py'),
}
SETTINGS = ('global attention', 'recommended')
LIMIT_GB = 80 * (1 - 0.25)
MARGIN = 0.2


def heads_count(cfg, shapes, batch: int, size, amp: bool,
                heads_batch: Optional[int]) -> SavedBytes:
    """:func:`count_heads` on ``heads_batch`` images (every feature shape's
    first dimension cut to it), scaled to ``batch``."""
    counted = min(heads_batch or batch, batch)
    if counted == batch:
        return count_heads(cfg, shapes, batch, size, amp)
    heads = count_heads(cfg, [(counted, *shape[1:]) for shape in shapes],
                        counted, size, amp)
    return SavedBytes(
        saved=heads.saved * batch // counted,
        held=heads.held * batch // counted,
        by_part={
            part: nbytes * batch // counted
            for part, nbytes in heads.by_part.items()
        })


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--recipes', nargs='+', default=list(RECIPES), choices=RECIPES)
    parser.add_argument(
        '--models', nargs='+', default=list(MODELS), choices=MODELS)
    parser.add_argument(
        '--heads-batch',
        type=int,
        help='count the heads on this many images and scale the count to '
        "the config's batch (what the heads keep grows with the images: "
        'for machines without the memory for a whole batch; default: the '
        "config's batch)")
    parser.add_argument(
        '--json',
        help='write the rows here (after every config); rows already in it '
        'are kept and not counted again')
    return parser.parse_args()


def backbone_options(setting: str, window: int, with_cp: bool) -> dict:
    options = {'model.backbone.with_cp': with_cp}
    if setting == 'recommended':
        for key, value in recommended_backbone(window).items():
            options[f'model.backbone.{key}'] = value
    return options


def heads_config(cfg) -> str:
    """What the heads' count depends on besides the features' shapes."""
    model = {
        k: v
        for k, v in cfg.model.to_dict().items()
        if k not in ('backbone', 'neck', 'init_cfg')
    }
    return json.dumps(
        dict(model=model, batch=cfg.train_dataloader.batch_size),
        sort_keys=True,
        default=str)


def main():
    args = parse_args()
    MMLogger.get_instance('train_memory_table', log_level='ERROR')
    rows = []
    if args.json and osp.exists(args.json):  # resume
        with open(args.json) as f:
            rows = json.load(f)['rows']
    done = {(r['recipe'], r['model'], r['setting']) for r in rows}
    heads_cache = {}
    print('| recipe | model | setting | batch, precision | saved without '
          'with_cp (GB) | saved with with_cp (GB) | estimate without (GB) '
          '| estimate with (GB) | ships |')
    print('|---|---|---|---|---|---|---|---|---|')
    for recipe in args.recipes:
        task, window, pattern = RECIPES[recipe]
        for model in args.models:
            path = osp.join(REPO, 'configs', task,
                            pattern.format(*MODELS[model]))
            if not osp.isfile(path):
                continue
            for setting in SETTINGS:
                if (recipe, model, setting) in done:
                    continue
                estimates = {}
                for with_cp in (False, True):
                    cfg, amp = load_train_config(
                        path, backbone_options(setting, window, with_cp))
                    batch = cfg.train_dataloader.batch_size
                    size = SIZES[task]
                    features = count_features(cfg, batch, size, amp)
                    # The heads see the same features whatever the
                    # backbone: counted once per heads config and shapes.
                    key = (heads_config(cfg), tuple(features.shapes))
                    if key not in heads_cache:
                        heads_cache[key] = heads_count(cfg, features.shapes,
                                                       batch, size, amp,
                                                       args.heads_batch)
                    estimates[with_cp] = MemoryEstimate(
                        activations=combine(features.activations,
                                            heads_cache[key]),
                        params=features.params,
                        trainable=features.trainable,
                        optimizer_states=optimizer_states(cfg),
                        margin=MARGIN)
                without, with_ = estimates[False], estimates[True]
                ships = without.total / GIB <= LIMIT_GB
                row = dict(
                    recipe=recipe,
                    model=model,
                    setting=setting,
                    config=osp.relpath(path, REPO),
                    batch=batch,
                    heads_batch=min(args.heads_batch or batch, batch),
                    size=list(size),
                    amp=amp,
                    params_m=without.params / 1e6,
                    saved_gb={
                        'no_cp': without.activations.total / GIB,
                        'cp': with_.activations.total / GIB
                    },
                    by_part_gb={
                        'no_cp': {
                            k: v / GIB
                            for k, v in without.activations.by_part.items()
                        },
                        'cp': {
                            k: v / GIB
                            for k, v in with_.activations.by_part.items()
                        }
                    },
                    estimate_gb={
                        'no_cp': without.total / GIB,
                        'cp': with_.total / GIB
                    },
                    with_cp=not ships)
                rows.append(row)
                print(
                    f'| {recipe} | {model} | {setting} | {batch}, '
                    f'{"fp16 AMP" if amp else "fp32"} | '
                    f'{row["saved_gb"]["no_cp"]:.1f} | '
                    f'{row["saved_gb"]["cp"]:.1f} | '
                    f'{row["estimate_gb"]["no_cp"]:.1f} | '
                    f'{row["estimate_gb"]["cp"]:.1f} | '
                    f'`with_cp={not ships}` |',
                    flush=True)
                if args.json:
                    write_atomically(
                        json.dumps(
                            dict(margin=MARGIN, limit_gb=LIMIT_GB, rows=rows),
                            indent=1), args.json)


if __name__ == '__main__':
    main()

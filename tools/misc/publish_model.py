# Copyright (c) mmitpn contributors. All rights reserved.
"""Prepare a checkpoint for release, as OpenMMLab does.

Keeps the weights (``state_dict``, the EMA weights where the run kept them)
and what inference needs from ``meta`` (``dataset_meta`` with classes and
palette, the config, versions, the converters' architecture notes); drops
the optimizer, the parameter schedulers and the message hub. The output is
named ``<name>-<first 8 hex digits of its sha256>.pth``.

mmpretrain's and mmdet's ``publish_model.py`` are scripts (nothing
importable does this in mmpretrain, mmdet or mmengine). They read the
checkpoint with a bare ``torch.load``, which under torch >= 2.6
(``weights_only=True``) refuses a training checkpoint's message hub, and
keep all of ``meta``; this one reads tensors and plain data only unless
``--unsafe-load`` is given, and keeps only what inference needs.

Example:
    python tools/misc/publish_model.py work_dirs/run/epoch_100.pth \
        itpn-base_pixel-1600e_in1k.pth
"""
import argparse
import hashlib
import os
import os.path as osp

import torch

from mmitpn.utils import load_checkpoint_file
from mmitpn.utils.cli import add_debug_argument, run_tool

TRAINING_STATE = ('optimizer', 'param_schedulers', 'message_hub')
KEPT_META = ('dataset_meta', 'cfg', 'mmengine_version', 'mmitpn_version',
             'converted_from', 'backbone', 'neck', 'epoch', 'iter', 'seed',
             'experiment_name', 'time')


def publish(src: str, dst: str, allow_pickle: bool = False) -> str:
    """Write the slimmed checkpoint; returns its final path."""
    checkpoint = load_checkpoint_file(src, allow_pickle=allow_pickle)
    if 'state_dict' not in checkpoint:
        raise ValueError(f'{src} has no state_dict: expected a checkpoint '
                         'written by tools/train.py or by a converter.')
    meta = checkpoint.get('meta') or {}
    published = dict(
        state_dict=checkpoint['state_dict'],
        meta={key: meta[key]
              for key in KEPT_META if key in meta})
    if 'ema_state_dict' in checkpoint:
        published['ema_state_dict'] = checkpoint['ema_state_dict']
    dropped = sorted(set(checkpoint) - set(published))
    stem = dst[:-4] if dst.endswith('.pth') else dst
    os.makedirs(osp.dirname(osp.abspath(stem)), exist_ok=True)
    temporary = stem + '.tmp.pth'
    torch.save(published, temporary)
    with open(temporary, 'rb') as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    final = f'{stem}-{digest[:8]}.pth'
    os.replace(temporary, final)
    print(f'dropped {dropped or "nothing"}; kept meta '
          f'{sorted(published["meta"])}; wrote {final}')
    return final


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('src', help='checkpoint to publish')
    parser.add_argument('dst', help='output name (the hash is appended)')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load the source as a full pickle (only for trusted files); '
        'the default reads tensors and plain data only')
    add_debug_argument(parser)
    return parser.parse_args()


def main():
    args = parse_args()
    publish(args.src, args.dst, args.unsafe_load)


if __name__ == '__main__':
    run_tool(main)

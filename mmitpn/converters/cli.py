# Copyright (c) mmitpn contributors. All rights reserved.
"""Shared command-line flow of the checkpoint converters."""
import argparse
import os
import os.path as osp
from typing import Callable, Mapping

import torch
from torch import Tensor

from mmitpn.models import iTPNPyramid
from mmitpn.registry import MODELS
from mmitpn.utils import extract_state_dict, load_checkpoint_file
from .itpn_official import Conversion

Converter = Callable[[Mapping[str, Tensor]], Conversion]


def build_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help='checkpoint to convert (local file)')
    parser.add_argument('dst', help='where to save the mmitpn checkpoint')
    parser.add_argument(
        '--unsafe-load',
        action='store_true',
        help='load the source as a full pickle (can run code: only for '
        'files from a trusted source); the default loads tensors only')
    parser.add_argument(
        '--debug',
        action='store_true',
        help='show the traceback of a checkpoint that cannot be converted')
    return parser


def check_loading(conversion: Conversion) -> None:
    """Load the converted weights into the inferred mmitpn modules and print
    missing and unexpected keys, part by part."""
    parts = {
        'backbone':
        MODELS.build(
            dict(type=conversion.backbone_type, **conversion.backbone))
    }
    if conversion.neck is not None:
        parts['neck'] = iTPNPyramid(**conversion.neck)
    if conversion.head is not None:
        parts['head'] = MODELS.build(conversion.head)
    for name, module in parts.items():
        weights = conversion.part(name)
        result = module.load_state_dict(weights, strict=False)
        print(f'{name}: {len(weights)} tensors, missing keys: '
              f'{result.missing_keys or "none"}, unexpected keys: '
              f'{result.unexpected_keys or "none"}')


def run(converter: Converter, args: argparse.Namespace) -> Conversion:
    """Convert ``args.src`` to ``args.dst``; a checkpoint the converter
    cannot read ends in one line naming the file (a traceback only with
    ``--debug``)."""
    try:
        checkpoint = load_checkpoint_file(
            args.src, allow_pickle=args.unsafe_load)
        conversion = converter(extract_state_dict(checkpoint))
    except (ValueError, KeyError, OSError) as error:
        if args.debug:
            raise
        message = error.args[0] if error.args else error
        raise SystemExit(f'error: {args.src}: {message}') from None
    print(f'backbone: {conversion.backbone_type} {conversion.backbone}')
    print(f'neck: mmitpn.iTPNPyramid {conversion.neck}')
    if conversion.head is not None:
        print(f'pretraining head: {conversion.head}')
    checked = ('backbone', 'neck') + (('head', ) if conversion.head else ())
    others = sorted({
        key.split('.')[0]
        for key in conversion.state_dict if key.split('.')[0] not in checked
    })
    if others:
        print(f'other parts kept under their names: {others}')
    for key, reason in conversion.dropped.items():
        print(f'left out {key}: {reason}')
    check_loading(conversion)
    dst_dir = osp.dirname(osp.abspath(args.dst))
    os.makedirs(dst_dir, exist_ok=True)
    torch.save(
        dict(
            state_dict=conversion.state_dict,
            meta=dict(
                converted_from=osp.basename(args.src),
                backbone=dict(
                    type=conversion.backbone_type, **conversion.backbone),
                neck=conversion.neck)), args.dst)
    print(f'saved {len(conversion.state_dict)} tensors to {args.dst}')
    return conversion

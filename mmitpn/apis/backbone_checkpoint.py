# Copyright (c) mmitpn contributors. All rights reserved.
"""Backbone weights from any HiViT / iTPN / Fast-iTPN checkpoint layout.

A checkpoint is read as tensors only, its backbone found (bare, or under
``backbone.`` as in every whole-model checkpoint: mmitpn's and mmpretrain's
classifiers and pretraining models, mmdet detectors, mmseg segmentors and the
official detection / segmentation code) and converted in memory by the
converters of :mod:`mmitpn.converters`: official Fast-iTPN and iTPN names
(also mmitpn's) or mmpretrain's HiViT names. Loading it into a backbone
adapts the patch embedding to the backbone's input channels and reports
missing and unexpected keys.
"""
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Type, Union

from mmengine.logging import print_log
from torch import Tensor

from mmitpn.converters import (convert_fast_itpn, convert_mmpretrain,
                               convert_official)
from mmitpn.converters.arch_inference import FAMILIES, detect_family
from mmitpn.models.backbones import FastiTPN, HiViT
from mmitpn.models.backbones.unit_pyramid_backbone import UnitPyramidBackbone
from mmitpn.utils import extract_state_dict, load_checkpoint_file
from mmitpn.utils.checkpoint import summarise_keys

# The backbone class of each family :func:`detect_family` tells apart.
BACKBONE_CLASSES: Dict[str, Type[UnitPyramidBackbone]] = {
    'HiViT': HiViT,
    'FastiTPN': FastiTPN
}
INPUT_CONV = 'patch_embed.proj.weight'
# Backbone parameters of mmitpn options that no official layout has.
MMITPN_ONLY_KEYS = ('gathering_tokens', )
BACKBONE_PREFIX = 'backbone.'
# Constructor arguments read off a checkpoint that a backbone must be built
# with for the checkpoint to fit it.
LAYOUT_SETTINGS = ('stem_mlp_ratio', 'mlp_ratio', 'rel_pos_type',
                   'layer_scale_init_value')


@dataclass
class BackboneCheckpoint:
    """The backbone tensors of a checkpoint, in mmitpn's names.

    Attributes:
        path (str): The file.
        family (str): ``'HiViT'`` or ``'FastiTPN'``.
        layout (str): The key names found: ``'Fast-iTPN'``, ``'iTPN'``
            (official names, which mmitpn keeps) or ``'mmpretrain HiViT'``.
        prefix (str): Where the backbone was found (``''`` or
            ``'backbone.'``).
        state_dict (dict): Backbone tensors without prefix.
        arch (dict): ``embed_dims``, ``stem_mlp_blocks``, ``depth`` and
            ``num_heads`` read off the keys (heads are exact only where
            relative position tables give them; otherwise width / 64, as
            in the released models).
        settings (dict): Other constructor arguments the keys fix
            (:data:`LAYOUT_SETTINGS`).
        img_size (int): Input size of the stored position embedding.
        left_out (dict): Parts of the checkpoint that are not the
            backbone (necks, heads, decoders), with their tensor counts.
    """
    path: str
    family: str
    layout: str
    prefix: str
    state_dict: Dict[str, Tensor]
    arch: dict
    settings: dict
    img_size: int
    left_out: Dict[str, int] = field(default_factory=dict)


def _count_modules(keys) -> Dict[str, int]:
    counts: Dict[str, int] = OrderedDict()
    for key in keys:
        module = key.split('.')[0]
        counts[module] = counts.get(module, 0) + 1
    return counts


def read_backbone_checkpoint(path: str,
                             prefix: Optional[str] = None,
                             allow_pickle: bool = False) -> BackboneCheckpoint:
    """Find, identify and convert the backbone of checkpoint ``path``.

    Args:
        path (str): Local checkpoint file: an official release (``.pt`` /
            ``.pth``; ``model`` / ``module`` / ``state_dict`` containers or
            bare), a file written by mmitpn's converters or any mmitpn,
            mmpretrain, mmdet or mmseg checkpoint of a HiViT-family model.
        prefix (str, optional): Prefix of the backbone keys. Defaults to
            ``'backbone.'`` when keys carry it, else none.
        allow_pickle (bool): Unpickle arbitrary objects (only for trusted
            files; see :func:`mmitpn.utils.load_checkpoint_file`). Defaults
            to False: tensors only.

    Raises:
        ValueError: The file holds no HiViT-family backbone, or a key that
            belongs to no part of one; the message names the file.
    """
    state_dict = extract_state_dict(
        load_checkpoint_file(path, allow_pickle=allow_pickle))
    if prefix is None:
        prefix = BACKBONE_PREFIX if any(
            key.startswith(BACKBONE_PREFIX) for key in state_dict) else ''
    bare = OrderedDict((key[len(prefix):], value)
                       for key, value in state_dict.items()
                       if key.startswith(prefix))
    left_out = _count_modules(
        key for key in state_dict if not key.startswith(prefix))
    family = detect_family(bare)
    if family is None:
        attention = ' or '.join(f'blocks.N.{signs["attention"]}'
                                for signs in FAMILIES.values())
        raise ValueError(
            f'{path}: no HiViT, iTPN or Fast-iTPN backbone under prefix '
            f'{prefix!r} (no key {attention}; the file has '
            f'{", ".join(list(_count_modules(state_dict))[:6])}). Pass the '
            'prefix of its backbone keys, or a checkpoint of these models.')
    extras = {key: bare.pop(key) for key in MMITPN_ONLY_KEYS if key in bare}
    if family == 'FastiTPN':
        convert, layout = convert_fast_itpn, 'Fast-iTPN'
    elif FAMILIES['HiViT']['pos_embed'] in bare:
        convert, layout = convert_official, 'iTPN'
    else:
        convert, layout = convert_mmpretrain, 'mmpretrain HiViT'
    try:
        conversion = convert(bare)
    except (ValueError, KeyError) as error:
        raise ValueError(
            f'{path}: {error.args[0] if error.args else error}') from error
    backbone = conversion.part('backbone')
    # The converters keep backbone names (mmpretrain's pos_embed aside) and
    # leave out derived buffers; the rest are other parts.
    kept = set(backbone) | {'pos_embed'} | set(conversion.dropped)
    for name, count in _count_modules(key for key in bare
                                      if key not in kept).items():
        left_out[f'{prefix}{name}'] = count
    backbone.update(extras)
    settings = conversion.backbone
    return BackboneCheckpoint(
        path=path,
        family=family,
        layout=layout,
        prefix=prefix,
        state_dict=backbone,
        arch=settings['arch'],
        settings={
            key: settings[key]
            for key in LAYOUT_SETTINGS if key in settings
        },
        img_size=settings['img_size'],
        left_out=left_out)


def adapt_input_channels(weight: Tensor, in_channels: int) -> Tensor:
    """The patch embedding's input convolution ``(O, 3, k, k)`` of RGB
    weights for ``in_channels`` input channels, with timm's
    ``adapt_input_conv``: the RGB filters repeated over the channels and
    scaled by ``3 / in_channels`` (an input holding the same RGB image in
    every group of three channels gives the RGB model's response), or summed
    for one channel."""
    try:
        from timm.models import adapt_input_conv
    except ImportError as error:
        raise ImportError(
            f'Adapting RGB weights to {in_channels} input channels uses '
            "timm's adapt_input_conv: pip install timm (requirements/"
            'optional.txt).') from error
    if weight.shape[1] != 3:
        raise ValueError(f'{INPUT_CONV} of the checkpoint has '
                         f'{weight.shape[1]} input channels; only RGB '
                         f'(3-channel) weights adapt to {in_channels}.')
    return adapt_input_conv(in_channels, weight)


@dataclass
class BackboneLoadReport:
    """What loading a checkpoint into a backbone did.

    Attributes:
        path (str): The checkpoint.
        layout (str): Its key names (see :class:`BackboneCheckpoint`).
        prefix (str): Where its backbone was.
        missing_keys (list[str]): Backbone tensors the checkpoint lacks
            (they keep their initialisation).
        unexpected_keys (list[str]): Checkpoint backbone tensors the
            backbone has no place for.
        adapted (list[str]): Tensors changed to fit (input channels,
            position grids).
        left_out (dict): Other parts of the checkpoint and their tensor
            counts.
    """
    path: str
    layout: str
    prefix: str
    missing_keys: List[str]
    unexpected_keys: List[str]
    adapted: List[str]
    left_out: Dict[str, int]

    def lines(self) -> List[str]:
        """One line each: source, missing keys, unexpected keys, and (when
        there are any) adapted tensors and left-out parts."""
        lines = [
            f'{self.path}: {self.layout} backbone '
            f'(prefix {self.prefix!r})',
            f'missing keys: {summarise_keys(self.missing_keys) or "none"}',
            'unexpected keys: '
            f'{summarise_keys(self.unexpected_keys) or "none"}'
        ]
        if self.adapted:
            lines.append('adapted: ' + '; '.join(self.adapted))
        if self.left_out:
            lines.append('left out (not the backbone): ' +
                         ', '.join(f'{name} ({count})'
                                   for name, count in self.left_out.items()))
        return lines


def _grid(tokens: int) -> str:
    side = math.isqrt(tokens)
    return f'{side}x{side}' if side * side == tokens else f'{tokens} tokens'


def load_backbone_checkpoint(model: UnitPyramidBackbone,
                             checkpoint: Union[str, BackboneCheckpoint],
                             strict: bool = False,
                             prefix: Optional[str] = None,
                             allow_pickle: bool = False,
                             verbose: bool = True) -> BackboneLoadReport:
    """Load the backbone of a checkpoint into ``model`` and report keys.

    The position embedding and relative position tables are resized to the
    model's grid (bicubic) and an RGB patch embedding is adapted to the
    model's input channels (:func:`adapt_input_channels`). A ``fc_norm``
    (the classifier's norm after pooling) that the model does not use is
    left out.

    Args:
        model (UnitPyramidBackbone): A ``HiViT`` or ``FastiTPN``.
        checkpoint (str | BackboneCheckpoint): A file (see
            :func:`read_backbone_checkpoint`) or what it returned.
        strict (bool): Raise if keys are missing or unexpected. Defaults to
            False (report them).
        prefix (str, optional): See :func:`read_backbone_checkpoint`.
        allow_pickle (bool): See :func:`read_backbone_checkpoint`.
        verbose (bool): Log the report (one line each for missing and
            unexpected keys). Defaults to True.

    Raises:
        ValueError: The checkpoint is of the other family or does not fit
            the model, or (``strict``) keys are missing or unexpected.
    """
    if not isinstance(checkpoint, BackboneCheckpoint):
        checkpoint = read_backbone_checkpoint(checkpoint, prefix, allow_pickle)
    if not isinstance(model, BACKBONE_CLASSES[checkpoint.family]):
        raise ValueError(
            f'{checkpoint.path} holds a {checkpoint.layout} backbone '
            f'(mmitpn.{checkpoint.family}), not one for '
            f'{type(model).__name__}.')
    state_dict = OrderedDict(checkpoint.state_dict)
    own = model.state_dict()
    adapted = []
    weight = state_dict.get(INPUT_CONV)
    if weight is not None and weight.shape[1] != own[INPUT_CONV].shape[1]:
        in_channels = own[INPUT_CONV].shape[1]
        state_dict[INPUT_CONV] = adapt_input_channels(weight, in_channels)
        adapted.append(f'{INPUT_CONV} {weight.shape[1]} -> {in_channels} '
                       "input channels (timm's adapt_input_conv)")
    left_out = dict(checkpoint.left_out)
    fc_norm = [key for key in state_dict if key.startswith('fc_norm.')]
    if fc_norm and not any(key.startswith('fc_norm.') for key in own):
        for key in fc_norm:
            del state_dict[key]
        left_out[f'{checkpoint.prefix}fc_norm'] = len(fc_norm)
    for key, value in state_dict.items():
        if key in own and value.shape != own[key].shape and \
                key != INPUT_CONV:
            what = _grid(value.shape[1]) + ' -> ' + _grid(
                own[key].shape[1]) if key == model.pos_embed_name else \
                f'{tuple(value.shape)} -> {tuple(own[key].shape)}'
            adapted.append(f'{key} resized {what}')
    result = model.load_state_dict(state_dict, strict=False)
    report = BackboneLoadReport(checkpoint.path, checkpoint.layout,
                                checkpoint.prefix, list(result.missing_keys),
                                list(result.unexpected_keys), adapted,
                                left_out)
    if strict and (report.missing_keys or report.unexpected_keys):
        raise ValueError(
            f'{checkpoint.path} does not fill {type(model).__name__} '
            f'exactly (strict): {report.lines()[1]}; {report.lines()[2]}.')
    if verbose:
        for line in report.lines():
            print_log(line, logger='current')
    return report

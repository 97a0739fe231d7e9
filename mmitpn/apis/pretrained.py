# Copyright (c) mmitpn contributors. All rights reserved.
"""Start a config's run from a given checkpoint: backbone and pyramid.

Downstream configs load their backbone and their iTPN pyramid through
``init_cfg=dict(type='Pretrained', checkpoint=..., prefix=...)`` entries,
the backbone's and the neck's, which name the pretraining run's default
work dir. :func:`fill_pretrained` points them at other files: it reads each
file's keys (tensors only), checks that it is a checkpoint in mmitpn's
layout (keys under ``backbone.`` and, for a pyramid, ``neck.``: what
``tools/train.py`` and the converters of ``tools/model_converters/``
write), fills every ``Pretrained`` entry of the backbone and of the neck
with the file and prefix, and says in one line each what it filled and
what the file does not hold. Official release files are refused with the
converter command to run first, so that the converted file, and the
missing and unexpected keys its conversion printed, can be kept and read.
"""
import inspect
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from mmengine.config import Config
from mmengine.logging import print_log
from torch import Tensor

from mmitpn.converters.arch_inference import (FAMILIES, detect_family,
                                              infer_pyramid_arch)
from mmitpn.converters.itpn_official import PYRAMID_MODULES
from mmitpn.models.necks import iTPNPyramid
from mmitpn.utils import extract_state_dict, load_checkpoint_file
from .backbone_checkpoint import BACKBONE_CLASSES, BACKBONE_PREFIX

NECK_PREFIX = 'neck.'
MMPRETRAIN_CONVERTER = 'tools/model_converters/mmpretrain_to_mmitpn.py'
# What the config's pyramid must share with a checkpoint's to load it.
PYRAMID_SETTINGS = ('embed_dims', 'fpn_dim', 'fpn_depth')


@dataclass
class PretrainedFile:
    """The parts of a checkpoint in mmitpn's layout.

    Attributes:
        path (str): The file.
        family (str): The backbone's family, ``'HiViT'`` or ``'FastiTPN'``.
        backbone (int): Number of backbone tensors (``backbone.*``).
        pyramid (dict, optional): ``embed_dims``, ``fpn_dim`` and
            ``fpn_depth`` of the iTPN pyramid under ``neck.``, or None
            when the file has none.
        parts (dict): Tensor counts of the file's top-level parts
            (``backbone``, ``neck``, ``head``, ...).
    """
    path: str
    family: str
    backbone: int
    pyramid: Optional[dict]
    parts: Dict[str, int] = field(default_factory=dict)


def _convert_command(path: str, converter: str) -> str:
    stem = osp.splitext(osp.basename(path))[0]
    return (f'.venv/bin/python {converter} {path} checkpoints/{stem}.pth, '
            'then pass the converted file')


def _needs_conversion(path: str, state_dict: Mapping[str, Tensor]) -> str:
    """The one-line error for a file that is not in mmitpn's layout."""
    family = detect_family(state_dict)
    if family is None:
        attention = ' or '.join(f'blocks.N.{signs["attention"]}'
                                for signs in FAMILIES.values())
        return (f'{path} holds no HiViT, iTPN or Fast-iTPN backbone (no key '
                f'{attention}); pass a checkpoint of one of these models.')
    signs = FAMILIES[family]
    if family == 'HiViT' and not any(
            key.endswith(signs['pos_embed']) for key in state_dict):
        layout, converter = 'an mmpretrain HiViT / iTPN', MMPRETRAIN_CONVERTER
    else:
        layout, converter = f'an official {signs["name"]}', signs['converter']
    return (f'{path} is {layout} checkpoint, not in mmitpn\'s layout '
            '(backbone.* and neck.* keys in a state_dict); convert it first: '
            f'{_convert_command(path, converter)}.')


def read_pretrained_file(path: str) -> PretrainedFile:
    """Read the keys of checkpoint ``path`` (tensors only) and describe its
    backbone and pyramid.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file is not in mmitpn's layout: an official or
            mmpretrain checkpoint (the message gives the converter command)
            or no checkpoint of a HiViT-family model.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'Pretrained checkpoint not found: {path}')
    checkpoint = load_checkpoint_file(path)
    # mmengine's Pretrained init reads 'state_dict', else the whole dict.
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, Mapping) or not any(
            str(key).startswith(BACKBONE_PREFIX) for key in state_dict):
        raise ValueError(
            _needs_conversion(path, extract_state_dict(checkpoint)))
    backbone = OrderedDict((key[len(BACKBONE_PREFIX):], value)
                           for key, value in state_dict.items()
                           if key.startswith(BACKBONE_PREFIX))
    family = detect_family(backbone)
    inside = {name.split('.')[0] for name in backbone} & set(PYRAMID_MODULES)
    if family is None or inside or FAMILIES[family]['pos_embed'] not in \
            backbone:
        # Official detectors hold the pyramid inside the backbone,
        # mmpretrain's HiViT names its position embedding pos_embed.
        raise ValueError(_needs_conversion(path, state_dict))
    neck = {
        key[len(NECK_PREFIX):]: value
        for key, value in state_dict.items()
        if key.startswith(NECK_PREFIX) and key.split('.')[1] in PYRAMID_MODULES
    }
    embed_dims = backbone[FAMILIES[family]['pos_embed']].shape[-1]
    parts: Dict[str, int] = OrderedDict()
    for key in state_dict:
        part = key.split('.')[0]
        parts[part] = parts.get(part, 0) + 1
    return PretrainedFile(path, family, len(backbone),
                          infer_pyramid_arch(neck, embed_dims), parts)


def _pretrained_entries(init_cfg) -> List[dict]:
    entries = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
    return [
        entry for entry in entries
        if isinstance(entry, Mapping) and entry.get('type') == 'Pretrained'
    ]


def _owners(node, path: str) -> List[Tuple[str, dict]]:
    """``(config path, module dict)`` of every module config under ``node``
    with a ``Pretrained`` entry in its ``init_cfg``."""
    found = []
    if isinstance(node, Mapping):
        if _pretrained_entries(node.get('init_cfg')):
            found.append((path, node))
        for key, value in node.items():
            if key != 'init_cfg':
                found += _owners(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            found += _owners(value, f'{path}.{index}')
    return found


def _point(module: dict, path: str, prefix: str) -> None:
    """Point the ``Pretrained`` entries of ``module``'s init_cfg at
    ``path``, or add one."""
    entries = _pretrained_entries(module.get('init_cfg'))
    for entry in entries:
        entry.update(checkpoint=path, prefix=prefix)
    if not entries:
        entry = dict(type='Pretrained', checkpoint=path, prefix=prefix)
        init_cfg = module.get('init_cfg')
        module['init_cfg'] = list(init_cfg) + [entry] if isinstance(
            init_cfg, (list, tuple)) else entry


def _drop_pretrained(module: dict) -> None:
    """Remove the ``Pretrained`` entries of ``module``'s init_cfg."""
    init_cfg = module.get('init_cfg')
    kept = [entry for entry in init_cfg if not _pretrained_entries(entry)] \
        if isinstance(init_cfg, (list, tuple)) else []
    module['init_cfg'] = kept or None


def _is_pyramid(module: Optional[Mapping]) -> bool:
    return isinstance(module, Mapping) and \
        str(module.get('type', '')).split('.')[-1] == iTPNPyramid.__name__


def _check_pyramid(module: Mapping, path: str, pretrained: PretrainedFile):
    """Raise a one-line error if the pyramid config ``module`` (at ``path``)
    differs from the file's in width or depth."""
    defaults = inspect.signature(iTPNPyramid).parameters
    for name in PYRAMID_SETTINGS:
        ours = module.get(name, defaults[name].default)
        theirs = pretrained.pyramid[name]
        if ours != theirs:
            raise ValueError(
                f'{pretrained.path} holds a pyramid with {name}={theirs}, '
                f'this config builds {path}.{name}={ours}; pass --cfg-options '
                f'{path}.{name}={theirs} (or a config made for this '
                'checkpoint).')


def _fill_neck(model: dict, pretrained: PretrainedFile,
               explicit: bool) -> Tuple[List[str], bool]:
    """Point the neck's ``Pretrained`` entries at ``pretrained``'s pyramid
    (``explicit``: as the neck checkpoint); the lines that say what was
    done, and whether the pyramid was used."""
    neck = model.get('neck')
    owners = _owners(neck, 'model.neck')
    if pretrained.pyramid is None:
        if explicit:
            raise ValueError(
                f'{pretrained.path} holds no iTPN pyramid (no '
                f'{NECK_PREFIX}align_dim_16to8 key): the neck needs a '
                'pretraining checkpoint, or the output of a converter run on '
                'an official pretraining file.')
        for _, module in owners:
            _drop_pretrained(module)
        lines = [] if neck is None else [
            f'neck: {pretrained.path} has no pyramid: the neck starts fresh'
        ]
        return lines, False
    if not owners and explicit:
        if not _is_pyramid(neck):
            raise ValueError(
                f'This config\'s neck ({(neck or {}).get("type")}) is no '
                'iTPN pyramid to load a pretrained pyramid into.')
        owners = [('model.neck', neck)]
    if not owners:
        if neck is None:
            return [
                f'neck: this model has none; the pyramid of '
                f'{pretrained.path} is not used'
            ], False
        return [
            'neck: starts fresh, as this config has it (no Pretrained '
            f'init_cfg); --pretrained-neck {pretrained.path} loads the '
            'pyramid the file holds'
        ], False
    for path, module in owners:
        if _is_pyramid(module):
            _check_pyramid(module, path, pretrained)
        _point(module, pretrained.path, NECK_PREFIX)
    pyramid = pretrained.pyramid
    return [
        f'neck: {pretrained.path} (pyramid fpn_dim {pyramid["fpn_dim"]}, '
        f'fpn_depth {pyramid["fpn_depth"]}, prefix {NECK_PREFIX!r})'
    ], True


def _fill_backbone(backbone: dict, pretrained: PretrainedFile) -> str:
    """Point the backbone's ``Pretrained`` init at ``pretrained`` (adding
    one if there is none); the line that says so."""
    kind = str(backbone.get('type', '')).split('.')[-1]
    if kind != pretrained.family:
        expected = ' or '.join(f'mmitpn.{name}' for name in BACKBONE_CLASSES)
        raise ValueError(
            f'{pretrained.path} holds a '
            f'{FAMILIES[pretrained.family]["name"]} backbone '
            f'(mmitpn.{pretrained.family}), this config builds '
            f'{backbone.get("type")}; use a config of the '
            f'mmitpn.{pretrained.family} family'
            f'{"" if kind in BACKBONE_CLASSES else f" ({expected})"}.')
    _point(backbone, pretrained.path, BACKBONE_PREFIX)
    return (f'backbone: {pretrained.path} ({pretrained.backbone} tensors, '
            f'prefix {BACKBONE_PREFIX!r})')


def _unused(pretrained: PretrainedFile, used: Tuple[str, ...]) -> List[str]:
    parts = [
        f'{part} ({count})' for part, count in pretrained.parts.items()
        if part not in used
    ]
    return [f'not used from {pretrained.path}: {", ".join(parts)}'
            ] if parts else []


def fill_pretrained(cfg: Config,
                    checkpoint: Optional[str] = None,
                    neck_checkpoint: Optional[str] = None,
                    verbose: bool = True) -> List[str]:
    """Make ``cfg``'s run start from the given checkpoint(s).

    ``checkpoint`` fills the backbone's ``Pretrained`` init (adding one if
    the config has none) and every ``Pretrained`` init of the neck (the
    iTPN pyramid, also one nested as in ``iTPNLinearProbeNeck``) when the
    file holds a pyramid; when it holds none, those inits are removed and
    the neck starts fresh. ``neck_checkpoint`` fills the neck from another
    file, as the ``in1k-ft`` segmentation recipes do (backbone from a
    fine-tuned classifier, pyramid from pretraining), adding an init to an
    ``iTPNPyramid`` neck that has none. Heads start as the config has them.
    Files are read as tensors only and must be in mmitpn's layout
    (``backbone.*``, ``neck.*``): what training and the converters write.

    Args:
        cfg (Config): The config, changed in place.
        checkpoint (str, optional): Backbone (and pyramid) checkpoint.
        neck_checkpoint (str, optional): Pyramid checkpoint.
        verbose (bool): Log the returned lines. Defaults to True.

    Returns:
        list[str]: One line each: what filled the backbone, what filled the
        neck or why it starts fresh, and the parts of each file not used.

    Raises:
        FileNotFoundError: A file does not exist.
        ValueError: A file is not in mmitpn's layout (the message gives the
            converter command), is of another backbone family than the
            config's, holds a pyramid of another width or depth than the
            config's (the message gives the ``--cfg-options`` to set), or
            ``neck_checkpoint`` holds no pyramid.
    """
    if checkpoint is None and neck_checkpoint is None:
        return []
    model = cfg.model
    lines = []
    used: Dict[str, List[str]] = OrderedDict()
    files: Dict[str, PretrainedFile] = OrderedDict()
    if checkpoint is not None:
        files[checkpoint] = read_pretrained_file(checkpoint)
        lines.append(_fill_backbone(model.backbone, files[checkpoint]))
        used[checkpoint] = ['backbone']
    neck_source = checkpoint if neck_checkpoint is None else neck_checkpoint
    if neck_source not in files:
        files[neck_source] = read_pretrained_file(neck_source)
    explicit = neck_checkpoint is not None
    neck_lines, filled = _fill_neck(model, files[neck_source], explicit)
    lines += neck_lines
    if filled or explicit:
        used.setdefault(neck_source, []).append('neck')
    for path, parts in used.items():
        lines += _unused(files[path], tuple(parts))
    if verbose:
        for line in lines:
            print_log(line, logger='current')
    return lines

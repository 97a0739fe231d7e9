# Copyright (c) mmitpn contributors. All rights reserved.
"""Official Fast-iTPN checkpoints -> mmitpn key layout."""
from collections import OrderedDict
from typing import Dict, Mapping

from torch import Tensor

from .arch_inference import (check_family, infer_backbone_arch,
                             infer_pyramid_arch)
from .itpn_official import PYRAMID_MODULES, Conversion

FAST_BACKBONE_MODULES = ('pos_embed', 'patch_embed', 'blocks', 'fc_norm')


def convert_fast_itpn(state_dict: Mapping[str, Tensor]) -> Conversion:
    """Map an official Fast-iTPN state dict to mmitpn names.

    Backbone keys keep their names under ``backbone.`` (for
    :class:`mmitpn.FastiTPN`), the classifier ``head`` becomes mmpretrain's
    ``head.fc`` and iTPN pyramid tensors, where a checkpoint has them, move
    to ``neck.``. The architecture (widths, stem and main depths, layer
    scale, the stem and main MLP ratios, the grid of the position
    embedding) is read off the keys; the released models use 64-channel
    heads.

    Raises:
        ValueError: A key that belongs to no known part of Fast-iTPN.
    """
    check_family(state_dict, 'FastiTPN')
    converted: Dict[str, Tensor] = OrderedDict()
    dropped: Dict[str, str] = OrderedDict()
    backbone: Dict[str, Tensor] = {}
    pyramid: Dict[str, Tensor] = {}
    for key, value in state_dict.items():
        module = key.split('.')[0]
        if key.endswith('relative_position_index'):
            dropped[key] = 'derived buffer'
        elif module in FAST_BACKBONE_MODULES:
            converted['backbone.' + key] = value
            backbone[key] = value
        elif module == 'head':
            converted['head.fc.' + key[len('head.'):]] = value
        elif module in PYRAMID_MODULES:
            converted['neck.' + key] = value
            pyramid[key] = value
        else:
            raise ValueError(f'Unknown key {key!r}: not part of an official '
                             'Fast-iTPN backbone, pyramid or classifier.')
    backbone_cfg = infer_backbone_arch(backbone, 'FastiTPN')
    if backbone_cfg.pop('rel_pos_type') is not None:
        raise ValueError('Fast-iTPN has no relative position bias, but the '
                         'checkpoint holds relative position tables.')
    if 'fc_norm.weight' in backbone:
        backbone_cfg['out_type'] = 'avg_featmap'
    neck_cfg = infer_pyramid_arch(pyramid, backbone_cfg['arch']['embed_dims'])
    return Conversion(
        converted,
        backbone_cfg,
        neck_cfg,
        None,
        dropped,
        backbone_type='mmitpn.FastiTPN')

# Copyright (c) mmitpn contributors. All rights reserved.
"""Official iTPN / HiViT checkpoints -> mmitpn key layout."""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

from torch import Tensor

from .arch_inference import (check_family, infer_backbone_arch,
                             infer_pretrain_head_arch, infer_pyramid_arch)

PYRAMID_MODULES = ('align_dim_16tofpn', 'split_16to8', 'align_dim_16to8',
                   'block_16to8', 'split_8to4', 'align_dim_8to4', 'block_8to4',
                   'fpn_modules')
BACKBONE_MODULES = ('absolute_pos_embed', 'patch_embed', 'blocks', 'fc_norm')
PIXEL_HEAD_MODULES = ('mask_token', 'decoder_pos_embed', 'decoder_embed',
                      'decoder_blocks', 'decoder_norm', 'decoder_pred')
CLIP_HEAD_MODULES = ('decoder_embed', 'norm', 'lm_head', 'norm_cls',
                     'lm_cls_head', 'cls_pt_layers')


@dataclass
class Conversion:
    """A converted state dict with what was left out and the architecture.

    Attributes:
        state_dict: Keys under ``backbone.``, ``neck.``, ``head.`` (and the
            CLIP algorithm's ``mask_token``; detector/segmentor heads keep
            their names).
        backbone: ``HiViT`` arguments that rebuild the checkpoint's layout.
        neck: ``iTPNPyramid`` arguments, or None without a pyramid.
        head: Pretraining head type and arguments (``iTPNPixelHead`` or
            ``iTPNCLIPHead``), or None.
        dropped: Keys left out, each with the reason.
        backbone_type: The registered backbone class ``backbone`` is for.
    """
    state_dict: Dict[str, Tensor]
    backbone: dict
    neck: Optional[dict] = None
    head: Optional[dict] = None
    dropped: Dict[str, str] = field(default_factory=dict)
    backbone_type: str = 'mmitpn.HiViT'

    def part(self, name: str) -> Dict[str, Tensor]:
        """The tensors under ``name.`` with that prefix removed."""
        prefix = name + '.'
        return OrderedDict((key[len(prefix):], value)
                           for key, value in self.state_dict.items()
                           if key.startswith(prefix))


def convert_official(state_dict: Mapping[str, Tensor]) -> Conversion:
    """Map an official iTPN/HiViT state dict to mmitpn names.

    Backbone keys keep their names under ``backbone.``, the pyramid moves to
    ``neck.``, the classifier ``head`` becomes mmpretrain's ``head.fc``, the
    pixel decoder and the CLIP heads go to ``head.`` (names unchanged) and
    the CLIP encoder's ``mask_token`` stays at the top level, as in
    :class:`iTPNCLIP`. Relative position indices (derived buffers) are left
    out. Checkpoints of the official OpenMMLab-based detection and
    segmentation code (``backbone.*`` holding the pyramid) are accepted too;
    their other heads keep their names.

    Raises:
        ValueError: A key that belongs to no known part of iTPN.
    """
    check_family(state_dict, 'HiViT')
    wrapped = any(key.startswith('backbone.') for key in state_dict)
    is_pixel = 'decoder_pred.weight' in state_dict
    head_modules = PIXEL_HEAD_MODULES if is_pixel else CLIP_HEAD_MODULES
    converted: Dict[str, Tensor] = OrderedDict()
    dropped: Dict[str, str] = OrderedDict()
    backbone: Dict[str, Tensor] = {}
    pyramid: Dict[str, Tensor] = {}
    head: Dict[str, Tensor] = {}
    for key, value in state_dict.items():
        if wrapped and not key.startswith('backbone.'):
            converted[key] = value
            continue
        name = key[len('backbone.'):] if wrapped else key
        module = name.split('.')[0]
        if name.endswith('relative_position_index'):
            dropped[key] = 'derived buffer, recomputed for the input grid'
        elif module in BACKBONE_MODULES:
            converted['backbone.' + name] = value
            backbone[name] = value
        elif module == 'head':
            converted['head.fc.' + name[len('head.'):]] = value
        elif module in PYRAMID_MODULES:
            converted['neck.' + name] = value
            pyramid[name] = value
        elif module == 'mask_token' and not is_pixel:
            converted[name] = value
        elif module in head_modules:
            converted['head.' + name] = value
            head[name] = value
        else:
            raise ValueError(f'Unknown key {key!r}: not part of an official '
                             'iTPN/HiViT backbone, pyramid or head.')
    backbone_cfg = infer_backbone_arch(backbone)
    if 'fc_norm.weight' in backbone:
        backbone_cfg['out_type'] = 'avg_featmap'
    dims = backbone_cfg['arch']['embed_dims']
    neck_cfg = infer_pyramid_arch(pyramid, dims)
    head_cfg = infer_pretrain_head_arch(head, dims, backbone_cfg)
    return Conversion(converted, backbone_cfg, neck_cfg, head_cfg, dropped)

# Copyright (c) mmitpn contributors. All rights reserved.
"""Official iTPN / HiViT checkpoints -> mmitpn key layout."""
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, Mapping, Optional

from torch import Tensor

from .arch_inference import infer_hivit_arch, infer_pyramid_arch

PYRAMID_MODULES = ('align_dim_16tofpn', 'split_16to8', 'align_dim_16to8',
                   'block_16to8', 'split_8to4', 'align_dim_8to4', 'block_8to4',
                   'fpn_modules')
BACKBONE_MODULES = ('absolute_pos_embed', 'patch_embed', 'blocks', 'fc_norm')
PRETRAIN_ONLY_MODULES = {
    'mask_token': 'pretraining mask token',
    'decoder_pos_embed': 'pixel decoder',
    'decoder_embed': 'pretraining head (level embeddings)',
    'decoder_blocks': 'pixel decoder',
    'decoder_norm': 'pixel decoder',
    'decoder_pred': 'pixel decoder',
    'norm': 'CLIP head',
    'lm_head': 'CLIP head',
    'norm_cls': 'CLIP auxiliary head',
    'lm_cls_head': 'CLIP auxiliary head',
    'cls_pt_layers': 'CLIP auxiliary head',
}


@dataclass
class Conversion:
    """A converted state dict with what was left out and the architecture.

    Attributes:
        state_dict: Keys under ``backbone.``, ``neck.`` and ``head.`` (plus
            detector/segmentor heads, unchanged).
        backbone: ``HiViT`` arguments that rebuild the checkpoint's layout.
        neck: ``iTPNPyramid`` arguments, or None without a pyramid.
        dropped: Keys left out, each with the reason.
    """
    state_dict: Dict[str, Tensor]
    backbone: dict
    neck: Optional[dict] = None
    dropped: Dict[str, str] = field(default_factory=dict)

    def part(self, name: str) -> Dict[str, Tensor]:
        """The tensors under ``name.`` with that prefix removed."""
        prefix = name + '.'
        return OrderedDict((key[len(prefix):], value)
                           for key, value in self.state_dict.items()
                           if key.startswith(prefix))


def convert_official(state_dict: Mapping[str, Tensor]) -> Conversion:
    """Map an official iTPN/HiViT state dict to mmitpn names.

    Backbone keys keep their names under ``backbone.``, the pyramid moves to
    ``neck.``, the classifier ``head`` becomes mmpretrain's ``head.fc``.
    Relative position indices (derived buffers) and pretraining-only heads
    are left out and reported. Checkpoints of the official OpenMMLab-based
    detection and segmentation code (``backbone.*`` holding the pyramid)
    are accepted too; their other heads keep their names.

    Raises:
        ValueError: A key that belongs to no known part of iTPN.
    """
    wrapped = any(key.startswith('backbone.') for key in state_dict)
    converted: Dict[str, Tensor] = OrderedDict()
    dropped: Dict[str, str] = OrderedDict()
    backbone: Dict[str, Tensor] = {}
    pyramid: Dict[str, Tensor] = {}
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
        elif module in PRETRAIN_ONLY_MODULES:
            dropped[key] = PRETRAIN_ONLY_MODULES[module]
        else:
            raise ValueError(f'Unknown key {key!r}: not part of an official '
                             'iTPN/HiViT backbone, pyramid or head.')
    backbone_cfg = infer_hivit_arch(backbone)
    if 'fc_norm.weight' in backbone:
        backbone_cfg['out_type'] = 'avg_featmap'
    neck_cfg = infer_pyramid_arch(pyramid, backbone_cfg['arch']['embed_dims'])
    return Conversion(converted, backbone_cfg, neck_cfg, dropped)

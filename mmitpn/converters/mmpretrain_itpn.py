# Copyright (c) mmitpn contributors. All rights reserved.
"""mmpretrain 1.2.0 HiViT / iTPN checkpoints -> mmitpn key layout."""
from collections import OrderedDict
from typing import Dict, Mapping

from torch import Tensor

from .arch_inference import infer_hivit_arch, infer_pyramid_arch
from .itpn_official import PYRAMID_MODULES, Conversion

PRETRAIN_ONLY = {
    'backbone.mask_token': 'CLIP pretraining mask token',
    'neck.mask_token': 'pixel decoder',
    'neck.decoder_pos_embed': 'pixel decoder',
    'neck.decoder_embed': 'pretraining head (level embeddings)',
    'neck.decoder_blocks': 'pixel decoder',
    'neck.ln1': 'pixel decoder',
    'neck.decoder_pred': 'pixel decoder',
    'neck.norm': 'CLIP head',
    'head.cls_head': 'CLIP head',
    'target_generator': 'CLIP teacher (rebuilt from its own checkpoint)',
}


def convert_mmpretrain(state_dict: Mapping[str, Tensor]) -> Conversion:
    """Map an mmpretrain ``HiViT``/``iTPN``/``ImageClassifier`` state dict.

    Both full models (``backbone.*``, ``neck.*``, ``head.*``) and bare
    ``HiViT`` state dicts are accepted; the output always has the
    ``backbone.`` prefix. The only
    renames are ``pos_embed`` -> ``absolute_pos_embed`` and the removal of
    the derived ``relative_position_index`` buffers (mmpretrain keeps one per
    attention block).
    """
    bare = not any(key.startswith('backbone.') for key in state_dict)
    prefix = '' if bare else 'backbone.'
    converted: Dict[str, Tensor] = OrderedDict()
    dropped: Dict[str, str] = OrderedDict()
    backbone: Dict[str, Tensor] = {}
    pyramid: Dict[str, Tensor] = {}
    for key, value in state_dict.items():
        pretrain_only = next((reason for name, reason in PRETRAIN_ONLY.items()
                              if key == name or key.startswith(name + '.')),
                             None)
        if key.endswith('relative_position_index'):
            dropped[key] = 'derived buffer, recomputed for the input grid'
        elif pretrain_only is not None:
            dropped[key] = pretrain_only
        elif key.startswith(prefix):
            name = key[len(prefix):]
            if name == 'pos_embed':
                name = 'absolute_pos_embed'
            converted['backbone.' + name] = value
            backbone[name] = value
        else:
            if key.startswith('neck.') and key.split('.')[1] in \
                    PYRAMID_MODULES:
                pyramid[key[len('neck.'):]] = value
            converted[key] = value
    backbone_cfg = infer_hivit_arch(backbone)
    neck_cfg = infer_pyramid_arch(pyramid, backbone_cfg['arch']['embed_dims'])
    return Conversion(converted, backbone_cfg, neck_cfg, dropped)

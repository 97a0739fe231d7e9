# Copyright (c) mmitpn contributors. All rights reserved.
"""mmpretrain 1.2.0 HiViT / iTPN checkpoints -> mmitpn key layout."""
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional

from torch import Tensor

from .arch_inference import (infer_backbone_arch, infer_pretrain_head_arch,
                             infer_pyramid_arch)
from .itpn_official import PYRAMID_MODULES, Conversion

# mmpretrain's pixel decoder (in its neck) -> iTPNPixelHead names.
DECODER_RENAMES = (
    (re.compile(r'^neck\.decoder_blocks\.(\d+)\.ln1\.'),
     r'head.decoder_blocks.\1.norm1.'),
    (re.compile(r'^neck\.decoder_blocks\.(\d+)\.ln2\.'),
     r'head.decoder_blocks.\1.norm2.'),
    (re.compile(r'^neck\.decoder_blocks\.(\d+)\.ffn\.layers\.0\.0\.'),
     r'head.decoder_blocks.\1.mlp.fc1.'),
    (re.compile(r'^neck\.decoder_blocks\.(\d+)\.ffn\.layers\.1\.'),
     r'head.decoder_blocks.\1.mlp.fc2.'),
    (re.compile(r'^neck\.decoder_blocks\.(\d+)\.attn\.'),
     r'head.decoder_blocks.\1.attn.'),
    (re.compile(r'^neck\.ln1\.'), 'head.decoder_norm.'),
    (re.compile(r'^neck\.(mask_token|decoder_pos_embed)$'), r'head.\1'),
    (re.compile(r'^neck\.(decoder_embed|decoder_pred|norm)\.'), r'head.\1.'),
    # CLIP: mmpretrain's head.cls_head is the official lm_head and the
    # encoder mask token sits in its backbone.
    (re.compile(r'^head\.cls_head\.'), 'head.lm_head.'),
    (re.compile(r'^backbone\.mask_token$'), 'mask_token'),
)


def _rename(key: str) -> Optional[str]:
    for pattern, replacement in DECODER_RENAMES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return None


def convert_mmpretrain(state_dict: Mapping[str, Tensor]) -> Conversion:
    """Map an mmpretrain ``HiViT``/``iTPN``/``ImageClassifier`` state dict.

    Full models (``backbone.*``, ``neck.*``, ``head.*``) and bare ``HiViT``
    state dicts are accepted; the output always has the ``backbone.``
    prefix. Renames: ``pos_embed`` -> ``absolute_pos_embed``, the pixel
    decoder from the neck to ``head.`` with official block names, the CLIP
    ``cls_head`` to ``lm_head``; the derived ``relative_position_index``
    buffers (one per attention block in mmpretrain) and the CLIP teacher
    (``target_generator``, rebuilt from its own checkpoint) are left out.
    """
    bare = not any(key.startswith('backbone.') for key in state_dict)
    prefix = '' if bare else 'backbone.'
    converted: Dict[str, Tensor] = OrderedDict()
    dropped: Dict[str, str] = OrderedDict()
    backbone: Dict[str, Tensor] = {}
    pyramid: Dict[str, Tensor] = {}
    head: Dict[str, Tensor] = {}
    for key, value in state_dict.items():
        renamed = None if bare else _rename(key)
        if key.endswith('relative_position_index'):
            dropped[key] = 'derived buffer, recomputed for the input grid'
        elif key.startswith('target_generator.'):
            dropped[key] = 'CLIP teacher, rebuilt from its own checkpoint'
        elif renamed is not None:
            converted[renamed] = value
            if renamed.startswith('head.'):
                head[renamed[len('head.'):]] = value
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
    backbone_cfg = infer_backbone_arch(backbone)
    dims = backbone_cfg['arch']['embed_dims']
    neck_cfg = infer_pyramid_arch(pyramid, dims)
    head_cfg = infer_pretrain_head_arch(head, dims, backbone_cfg)
    return Conversion(converted, backbone_cfg, neck_cfg, head_cfg, dropped)

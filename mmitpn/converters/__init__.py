# Copyright (c) mmitpn contributors. All rights reserved.
"""Checkpoint converters from the official iTPN code and from mmpretrain."""
from .arch_inference import infer_backbone_arch, infer_pyramid_arch
from .fast_itpn_official import convert_fast_itpn
from .itpn_official import Conversion, convert_official
from .mmpretrain_itpn import convert_mmpretrain

__all__ = [
    'Conversion', 'convert_fast_itpn', 'convert_mmpretrain',
    'convert_official', 'infer_backbone_arch', 'infer_pyramid_arch'
]

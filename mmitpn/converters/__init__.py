# Copyright (c) mmitpn contributors. All rights reserved.
"""Checkpoint converters from the official iTPN code and from mmpretrain."""
from .arch_inference import infer_hivit_arch, infer_pyramid_arch
from .itpn_official import Conversion, convert_official
from .mmpretrain_itpn import convert_mmpretrain

__all__ = [
    'Conversion', 'convert_mmpretrain', 'convert_official', 'infer_hivit_arch',
    'infer_pyramid_arch'
]

# Copyright (c) mmitpn contributors. All rights reserved.
from .itpn_clip_head import iTPNCLIPHead
from .itpn_mfm_head import iTPNMFMHead
from .itpn_pixel_head import iTPNPixelHead

__all__ = ['iTPNCLIPHead', 'iTPNMFMHead', 'iTPNPixelHead']

# Copyright (c) mmitpn contributors. All rights reserved.
from .reconstruction import draw_reconstruction, load_image, pattern_r2

__all__ = ['draw_reconstruction', 'load_image', 'pattern_r2']

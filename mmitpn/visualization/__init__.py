# Copyright (c) mmitpn contributors. All rights reserved.
from .reconstruction import (draw_reconstruction, load_image,
                             load_reconstruction_model, pattern_r2)

__all__ = [
    'draw_reconstruction', 'load_image', 'load_reconstruction_model',
    'pattern_r2'
]

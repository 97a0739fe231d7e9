# Copyright (c) mmitpn contributors. All rights reserved.
from .itpn_pyramid import iTPNPyramid

__all__ = ['iTPNPyramid']

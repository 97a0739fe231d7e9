# Copyright (c) mmitpn contributors. All rights reserved.
from .itpn_linear_probe_neck import iTPNLinearProbeNeck
from .itpn_pyramid import iTPNPyramid

__all__ = ['iTPNLinearProbeNeck', 'iTPNPyramid']

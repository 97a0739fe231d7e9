# Copyright (c) mmitpn contributors. All rights reserved.
from .fast_itpn import FastiTPN
from .hivit import HiViT

__all__ = ['FastiTPN', 'HiViT']

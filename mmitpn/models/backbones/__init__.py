# Copyright (c) mmitpn contributors. All rights reserved.
from .hivit import HiViT

__all__ = ['HiViT']

# Copyright (c) mmitpn contributors. All rights reserved.
from .loading import LoadImageFromFileOrSkip

__all__ = ['LoadImageFromFileOrSkip']

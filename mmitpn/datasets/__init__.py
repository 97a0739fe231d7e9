# Copyright (c) mmitpn contributors. All rights reserved.
from .fashion_mnist import FashionMNIST
from .transforms import *  # noqa: F401,F403

__all__ = ['FashionMNIST']

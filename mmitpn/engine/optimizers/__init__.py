# Copyright (c) mmitpn contributors. All rights reserved.
from .autocast_optim_wrapper import AutocastOptimWrapper
from .layer_decay_optim_wrapper_constructor import \
    LayerDecayOptimWrapperConstructor

__all__ = ['AutocastOptimWrapper', 'LayerDecayOptimWrapperConstructor']

# Copyright (c) mmitpn contributors. All rights reserved.
from .iteration_seed_hook import IterationSeedHook

__all__ = ['IterationSeedHook']

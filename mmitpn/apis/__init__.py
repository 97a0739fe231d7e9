# Copyright (c) mmitpn contributors. All rights reserved.
from .model_hub import register_model_index

__all__ = ['register_model_index']
